/* Tiled causal attention over a cache that hands out its keys and values one
 * tile at a time (internal to the baseline KV policies: q8_0/q4_0, kivi).
 *
 * attn.c does this for K/V stored as plain fp32/fp16 rows. The baseline
 * policies store blocks, packed codes or a mix of quantized groups and an
 * fp16 window, so they supply a tile callback instead and reuse the same
 * work split (zc_attn_split_plan) and scratch (zc_attn_scratch):
 *   prefill  tasks = (KV head g, block of ZC_ATTN_BQ queries); each task owns
 *            its rows' online-softmax state and walks every visible tile,
 *            so a tile is decoded once for all G query heads of the group.
 *   decode   n_q <= ZC_ATTN_BQ: tasks = chunks of keys, each covering every
 *            KV head tile by tile; each leaves an unnormalized partial
 *            (m, l, acc) per head and the partials are merged by log-sum-exp.
 * Tiles start at multiples of ZC_ATTN_BK keys and hold at most ZC_ATTN_BK.
 */
#ifndef ZC_KV_KV_TILED_H
#define ZC_KV_KV_TILED_H

#include <stddef.h>

#include "attn/attn.h"
#include "util/threads.h"

/* The query rows of one task and their running state, as a tile sees them. */
typedef struct {
    int n_rows;          /* nq * G rows; row r is query r / G, head g*G + r % G */
    int G;               /* query heads per KV head */
    const int *nvalid;   /* [n_rows / G] keys of the tile visible to each query (0..nk) */
    const float *q;      /* [n_rows][head_dim] query rows times 1/sqrt(head_dim) */
    const void *qx;      /* [n_rows][qx_bytes] the rows as prepare() left them, or NULL */
    float *s;            /* [2 * ZC_ATTN_BK] score rows (two: the zc_attn_tile_* contract) */
    float *m, *l;        /* [n_rows] running max, running sum of exp(score - m) */
    float *acc;          /* [n_rows][head_dim] running sum of exp(score - m) * v */
    float *tmp;          /* [tmp_floats] the thread's scratch for the tile */
} zc_kvt_rows;

typedef struct {
    const void *ctx;     /* the policy's layer view, passed back to the callbacks */
    int n_heads, n_kv_heads, head_dim;
    size_t tmp_floats;   /* per-thread scratch the tile callback needs (floats) */
    size_t qx_bytes;     /* bytes per prepared query row; 0: no prepare() */
    /* Convert n_rows scaled query rows [n_rows][head_dim] to qx [n_rows][qx_bytes]. */
    void (*prepare)(const void *ctx, int n_rows, const float *q, void *qx);
    /* Fold keys [t0, t0 + nk) of KV head g into the rows' state (nk <= ZC_ATTN_BK). */
    void (*tile)(const void *ctx, int g, int t0, int nk, const zc_kvt_rows *rows);
} zc_kvt_source;


/* Queries i = 0..n_q-1 at positions pos0 + i see keys 0..min(pos0 + i, n_kv - 1).
 * q, out: [n_q][n_heads * head_dim]. ZC_ERR_NOMEM / ZC_ERR_LIMIT if the scratch cannot grow. */
int zc_kvt_attend(zc_pool *pool, const zc_kvt_source *src, const float *q, int n_q, int pos0, int n_kv,
                  float *out, zc_attn_scratch *scratch);

/* The online-softmax step shared by tile callbacks that compute their own
 * scores: row r has scores s[0..n) (n >= 1) for the tile's first n keys;
 * rescale its state to the new max and turn s into exp(s - m) in place. */
void zc_kvt_softmax_step(float *s, int n, float *m, float *l, float *acc_row, int head_dim);

#endif
