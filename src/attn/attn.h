/* Attention over full-precision K/V (fp32 or fp16 storage).
 *
 * Causal multi-head attention with grouped KV heads: query head h reads KV
 * head h / (n_heads / n_kv_heads). Prefill is tiled flash-style with an
 * online softmax (never holds the n_q x n_kv score matrix); each K/V tile is
 * loaded once for all query heads of its group. Decode (n_q small) splits the
 * keys across threads by chunk and merges partial results with their
 * log-sum-exp. Scores are scaled by 1/sqrt(head_dim); softmax in fp32.
 *
 * Layouts:
 *   q, out  [n_q][n_heads * head_dim]           query i is at position pos0 + i
 *   k, v    [n_kv][kv_stride] (elements)        KV head g of token t starts at t*kv_stride + g*head_dim
 *   lse     [n_q][n_heads] (optional)           natural-log sum of exp(scaled scores) per row,
 *                                               so exact softmax rows can be recomputed for probes
 * Query i sees keys 0..min(pos0 + i, n_kv - 1).
 */
#ifndef ZC_ATTN_ATTN_H
#define ZC_ATTN_ATTN_H

#include <stddef.h>

#include "util/threads.h"

typedef struct {
    int n_heads;
    int n_kv_heads;
    int head_dim;
} zc_attn_dims;

typedef struct {
    float *buf;  /* per-thread tiles and partial results; grown on demand, reused */
    size_t cap;  /* floats */
} zc_attn_scratch;

/* kv_type: ZC_TYPE_F32 or ZC_TYPE_F16 (quant/ggml_blocks.h). lse may be NULL.
 * Returns ZC_ERR_NOMEM if the scratch cannot grow, ZC_ERR_ARG for bad dims. */
int zc_attn_forward(zc_pool *pool, const zc_attn_dims *d, const float *q, int n_q, int pos0, const void *k,
                    const void *v, int kv_type, size_t kv_stride, int n_kv, float *out, float *lse,
                    zc_attn_scratch *scratch);

/* Column sums of exact softmax rows, for saliency probes: for each listed
 * query row i = rows[r] (position pos0 + i, seeing keys 0..min(pos0+i, n_kv-1))
 * and each query head h of KV head g,
 *   colsum[g*ldc + j] += exp(q_{i,h} . k_j / sqrt(head_dim) - lse[i*n_heads + h])
 * i.e. the row's softmax weight on key j, given the row's total log-sum-exp
 * (from zc_attn_forward, possibly merged with other parts of the cache).
 * The rows are recomputed from scores, never stored: cost n_rows x n_kv dot
 * products, memory O(tile). Work is split over (KV head, key chunk), each
 * task owning its slice of colsum. rows ascending. */
int zc_attn_colsum(zc_pool *pool, const zc_attn_dims *d, const float *q, const int *rows, int n_rows, int pos0,
                   const void *k, int kv_type, size_t kv_stride, int n_kv, const float *lse, float *colsum,
                   size_t ldc, zc_attn_scratch *scratch);

/* Plain reference: materializes each score row, double accumulation. For tests. */
void zc_attn_reference(const zc_attn_dims *d, const float *q, int n_q, int pos0, const void *k, const void *v,
                       int kv_type, size_t kv_stride, int n_kv, float *out, float *lse);

void zc_attn_scratch_free(zc_attn_scratch *s);

#endif
