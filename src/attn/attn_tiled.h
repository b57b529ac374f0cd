/* The causal attention driver (attn.c) over K/V that a caller hands out one
 * tile at a time (internal: zc_attn_forward's fp32/fp16 rows, and the KV
 * policies that store ggml blocks, packed codes or a mix of quantized groups
 * and an fp16 window: q8_0/q4_0/q4_0r, kivi).
 *
 * The driver owns everything but the tile: the work split, the queries'
 * gathering and scaling, the causal clamp, the online-softmax state, the
 * scratch, the decode merge. The source owns how keys [t0, t0 + nk) become
 * scores and value sums:
 *   prefill  tasks = (KV head g, block of ZC_ATTN_BQ queries); each task owns
 *            its rows' online-softmax state and walks every visible tile,
 *            so a tile is decoded once for all G query heads of the group.
 *            Heavier (later) query blocks are handed out first.
 *   decode   n_q <= ZC_ATTN_BQ: too few query blocks to keep the threads
 *            busy, so tasks = chunks of keys, each covering every KV head
 *            tile by tile (one tile call for all heads: a token's row holds
 *            every head, so a source can read it in address order); each
 *            leaves an unnormalized partial (m, l, acc) per head and the
 *            partials of a row are merged by their log-sum-exp afterwards.
 * Tiles start at multiples of ZC_ATTN_BK keys and hold at most ZC_ATTN_BK.
 */
#ifndef ZC_ATTN_ATTN_TILED_H
#define ZC_ATTN_ATTN_TILED_H

#include <stddef.h>

#include "attn/attn.h"
#include "util/threads.h"

/* The query rows of one KV head in one task and their running state, as a
 * tile sees them. */
typedef struct {
    int n_rows;          /* nq * G rows; row r is query r / G, head g*G + r % G */
    int G;               /* query heads per KV head */
    const int *nvalid;   /* [n_rows / G] keys of the tile visible to each query (0..nk) */
    const float *q;      /* [n_rows][head_dim] query rows times 1/sqrt(head_dim) */
    const void *qx;      /* [n_rows][qx_bytes] the rows as prepare() left them, or NULL */
    float *s;            /* [2 * ZC_ATTN_BK] score rows (two: the zc_attn_tile_* contract) */
    float *m, *l;        /* [n_rows] running max, running sum of exp(score - m) */
    float *acc;          /* [n_rows][head_dim] running sum of exp(score - m) * v */
} zc_attn_rows;

typedef struct {
    const void *ctx;        /* the source's data (a layer view), passed back to the callbacks */
    int n_heads, n_kv_heads, head_dim;
    size_t tmp_floats;      /* per-thread scratch a tile call needs (floats)... */
    size_t tmp_head_floats; /* ...plus this much per KV head the call covers */
    size_t qx_bytes;        /* bytes per prepared query row; 0: no prepare() */
    /* Convert n_rows scaled query rows [n_rows][head_dim] to qx [n_rows][qx_bytes]. */
    void (*prepare)(const void *ctx, int n_rows, const float *q, void *qx);
    /* Fold keys [t0, t0 + nk) (nk <= ZC_ATTN_BK) of KV heads g0 .. g0+ng-1 into
     * their rows: rows[i] are head g0+i's. ng is 1 (prefill) or n_kv_heads
     * (decode); tmp: the thread's tmp_floats + ng * tmp_head_floats. */
    void (*tile)(const void *ctx, int g0, int ng, int t0, int nk, const zc_attn_rows *rows, float *tmp);
} zc_attn_source;

/* Queries i = 0..n_q-1 at positions pos0 + i see keys 0..min(pos0 + i, n_kv - 1).
 * q, out: [n_q][n_heads * head_dim]; lse [n_q][n_heads] unless NULL (see
 * attn.h). ZC_ERR_ARG for bad counts; ZC_ERR_NOMEM / ZC_ERR_LIMIT if the
 * scratch cannot grow. */
int zc_attn_tiled(zc_pool *pool, const zc_attn_source *src, const float *q, int n_q, int pos0, int n_kv, float *out,
                  float *lse, zc_attn_scratch *scratch);

/* The online-softmax step shared by tile callbacks that compute their own
 * scores: row r has scores s[0..n) (n >= 1) for the tile's first n keys;
 * rescale its state to the new max and turn s into exp(s - m) in place. */
void zc_attn_softmax_step(float *s, int n, float *m, float *l, float *acc_row, int head_dim);

#endif
