/* Weight matrix products for every loadable weight type.
 *
 * A weight matrix W has `rows` output rows of `cols` inputs each, stored
 * row-major in ggml type `type` (one row = cols/block_elems blocks).
 * Y[m][rows] = X[m][cols] · Wᵀ. For quantized types the activations are
 * quantized once per call to int8 blocks (amax/127 scale per 32, or per 256
 * for the K formats) and every block product is an exact integer sum, as in
 * ggml; this costs at most amax/254 of error per activation. f32/f16/bf16
 * weights use the fp32 activations. Work is split across the pool by chunks
 * of rows; the scratch is owned by the caller and reused, so a decode step
 * allocates nothing once the scratch has grown to its largest size.
 *
 * Results are deterministic: the same bits whatever the pool size, and a
 * row of X gives the same output row whether it comes alone (decode) or
 * among m rows (prefill).
 */
#ifndef ZC_KERNELS_MATMUL_H
#define ZC_KERNELS_MATMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/threads.h"

typedef struct {
    int type;          /* zc_type */
    int64_t rows;      /* output features */
    int64_t cols;      /* input features (row length) */
    const void *data;  /* rows * row_bytes */
    size_t row_bytes;
    const void *packed; /* NULL, or the rows repacked for the AVX-512 GEMM by zc_mat_repack
                           (src/kernels/matmul_packed.h); data stays valid beside it */
} zc_mat;

typedef struct {
    void *buf;   /* quantized activations: [m][cols / block] activation blocks */
    size_t cap;  /* bytes allocated; start from {0} */
} zc_matmul_scratch;

/* Y = X · Wᵀ: x is [m][cols], y is [m][rows] (m >= 1; m <= 0 does nothing).
 * Returns ZC_ERR_NOMEM if the scratch cannot grow, ZC_ERR_UNSUPPORTED for a
 * type we cannot compute, ZC_ERR_ARG if cols is not a multiple of the
 * type's block or row_bytes is shorter than a row. */
int zc_matmul(zc_pool *pool, const zc_mat *w, const float *x, float *y, int m, zc_matmul_scratch *scratch);
/* The reference for tests: dequantize each row, dot in double with the
 * unquantized x. Allocates one row (silently does nothing if it cannot). */
void zc_matmul_ref(const zc_mat *w, const float *x, float *y, int m);
void zc_matmul_scratch_free(zc_matmul_scratch *s);

/* Repack w for the AVX-512 VNNI GEMM (src/kernels/matmul_packed.h):
 * q8_0, q4_0, q4_K, q6_K, f16 and bf16 matrices of at least 16 rows, on a
 * CPU with AVX-512 VNNI; 3-4.5x the row-major kernels' GFLOP/s at m = 64.
 * On success with something packed, *buf is a new buffer of *bytes bytes
 * (free it with zc_free_aligned after the last use of w) and w->packed
 * points into it; otherwise *buf is NULL, *bytes 0 and w is unchanged.
 * Errors: ZC_ERR_NOMEM (w unchanged). */
int zc_mat_repack(zc_mat *w, void **buf, size_t *bytes);
/* Whether a model's matrices of this type are worth repacking at load:
 * prefill gains and decode (m = 1) loses nothing. Not q6_K: its packed
 * decode runs at ~2/3 of the row-major kernel's speed (bench kernels). */
bool zc_repack_pays(int type);

/* Embedding lookup: dequantize row `row` of w into out[cols], from w's
 * packed copy where it has one of a type that keeps its rows
 * (zc_mat_repack_keeps_rows: the same floats as from the original). */
void zc_mat_get_row(const zc_mat *w, int64_t row, float *out);
/* q8_0, q4_0, f16, bf16: zc_mat_get_row reads rows back from the packed copy,
 * so a tied embedding/output matrix can be repacked and its original released. */
bool zc_mat_repack_keeps_rows(int type);

/* Micro-benchmark for `zipcache bench kernels`: read and memcpy bandwidth, then for
 * 2048x8192 q8_0/q4_0/q4_K/q6_K/f16 matrices (and the repacked layouts) the matvec (m = 1) weight bandwidth
 * and the m = 64 GFLOP/s, on 1 and n_threads threads (0 = all cores).
 * Prints to out; ZC_OK or ZC_ERR_NOMEM. Takes ~10 s and ~1 GiB. */
int zc_kernels_bench(FILE *out, int n_threads);

#endif
