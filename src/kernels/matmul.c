/* Weight matrix products: Y[m][rows] = X[m][cols] · Wᵀ.
 *
 * zc_matmul quantizes the activations once (see matmul_kernels.h), then
 * splits the weight rows into chunks that the pool hands out dynamically.
 * Inside a chunk, activation rows go ZC_NX at a time through every weight
 * row of the chunk: the ZC_NX activation rows stay in L1 while the chunk
 * of weights (sized to stay in L2) is decoded once per ZC_NX tokens.
 *
 * This file also holds the scalar kernels. They decode each block to int8
 * codes and integer scales, the form in which every format's dot product
 * is an exact integer sum, and are the readable statement of what the AVX2
 * kernels compute.
 */
#include "kernels/matmul.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/matmul_kernels.h"
#include "kernels/matmul_packed.h"
#include "quant/ggml_blocks.h"
#include "util/cpu.h"
#include "util/error.h"
#include "util/fp16.h"

/* ---- activation quantization ------------------------------------------- */

/* amax/127 scale, codes rounded to nearest even (lrintf in the default
 * rounding mode, like the AVX2 cvtps): the bytes match the AVX2 quantizer.
 * A NaN makes the scale NaN, as _mm256_max_ps does, so that it reaches the
 * output instead of vanishing into a code. */
static float quantize_act_block(const float *x, int8_t *q, int n) {
    float amax = 0.0f;
    bool nan = false;
    for (int j = 0; j < n; j++) {
        amax = fmaxf(amax, fabsf(x[j]));
        nan |= isnan(x[j]);
    }
    if (nan) amax = NAN;
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int j = 0; j < n; j++) q[j] = (int8_t)lrintf(x[j] * id);
    return amax / 127.0f;
}

void zc_quantize_act_q8(const float *x, zc_act_q8 *y, int64_t n) {
    for (int64_t i = 0; i < n / ZC_QK; i++, x += ZC_QK) {
        y[i].d = quantize_act_block(x, y[i].qs, ZC_QK);
        int sum = 0;
        for (int j = 0; j < ZC_QK; j++) sum += y[i].qs[j];
        y[i].s = y[i].d * (float)sum;
    }
}

void zc_quantize_act_q8k(const float *x, zc_act_q8k *y, int64_t n) {
    for (int64_t i = 0; i < n / ZC_QK_K; i++, x += ZC_QK_K) {
        y[i].d = quantize_act_block(x, y[i].qs, ZC_QK_K);
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += y[i].qs[16 * g + j];
            y[i].bsums[g] = (int16_t)sum;
        }
    }
}

/* ---- scalar kernels ---------------------------------------------------- */

static const void *act_row(const void *x, size_t x_stride, int k) { return (const char *)x + (size_t)k * x_stride; }

static float load_weight(int type, const void *w, int64_t c) {
    switch (type) {
    case ZC_TYPE_F16: return zc_fp16_to_f32(((const uint16_t *)w)[c]);
    case ZC_TYPE_BF16: return zc_bf16_to_f32(((const uint16_t *)w)[c]);
    default: return ((const float *)w)[c];
    }
}

static void dot_float(int type, int64_t n, const void *w, const void *x, size_t x_stride, int nx, float *out) {
    for (int k = 0; k < nx; k++) {
        const float *xk = act_row(x, x_stride, k);
        float acc = 0.0f;
        for (int64_t c = 0; c < n; c++) acc += load_weight(type, w, c) * xk[c];
        out[k] = acc;
    }
}
static void dot_f32(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) {
    dot_float(ZC_TYPE_F32, n, w, x, xs, nx, out);
}
static void dot_f16(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) {
    dot_float(ZC_TYPE_F16, n, w, x, xs, nx, out);
}
static void dot_bf16(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) {
    dot_float(ZC_TYPE_BF16, n, w, x, xs, nx, out);
}

/* A 32-element block as x = d*q + m with integer codes q. */
typedef struct {
    int8_t q[32];
    float d, m;
} block32;

static void decode_block32(int type, const void *blk, block32 *b) {
    int lo_bias = 0; /* subtracted from the 4- or 5-bit code */
    uint32_t qh = 0; /* fifth bits, element j at bit j */
    const uint8_t *qs = NULL;
    b->m = 0.0f;
    switch (type) {
    case ZC_TYPE_Q8_0: {
        const zc_block_q8_0 *p = blk;
        b->d = zc_fp16_to_f32(p->d);
        memcpy(b->q, p->qs, 32);
        return;
    }
    case ZC_TYPE_Q4_0: {
        const zc_block_q4_0 *p = blk;
        b->d = zc_fp16_to_f32(p->d), qs = p->qs, lo_bias = 8;
        break;
    }
    case ZC_TYPE_Q4_1: {
        const zc_block_q4_1 *p = blk;
        b->d = zc_fp16_to_f32(p->d), b->m = zc_fp16_to_f32(p->m), qs = p->qs;
        break;
    }
    case ZC_TYPE_Q5_0: {
        const zc_block_q5_0 *p = blk;
        b->d = zc_fp16_to_f32(p->d), qs = p->qs, lo_bias = 16;
        memcpy(&qh, p->qh, 4);
        break;
    }
    default: { /* ZC_TYPE_Q5_1 */
        const zc_block_q5_1 *p = blk;
        b->d = zc_fp16_to_f32(p->d), b->m = zc_fp16_to_f32(p->m), qs = p->qs;
        memcpy(&qh, p->qh, 4);
        break;
    }
    }
    for (int j = 0; j < 16; j++) {
        b->q[j] = (int8_t)((qs[j] & 0xF) + (int)((qh >> j) & 1) * 16 - lo_bias);
        b->q[j + 16] = (int8_t)((qs[j] >> 4) + (int)((qh >> (j + 16)) & 1) * 16 - lo_bias);
    }
}

/* Σ (d q + m) (dx qx) = d dx Σ q qx + m dx Σ qx, per block. */
static void dot_blocks32(int type, int64_t n, const void *w, const void *x, size_t x_stride, int nx, float *out) {
    const int bytes = zc_type_get(type)->block_bytes;
    for (int k = 0; k < nx; k++) {
        const zc_act_q8 *a = act_row(x, x_stride, k);
        float acc = 0.0f;
        for (int64_t i = 0; i < n / ZC_QK; i++) {
            block32 b;
            decode_block32(type, (const char *)w + i * bytes, &b);
            int sumi = 0;
            for (int j = 0; j < 32; j++) sumi += b.q[j] * a[i].qs[j];
            acc += (float)sumi * (b.d * a[i].d) + b.m * a[i].s;
        }
        out[k] = acc;
    }
}
#define DOT32(name, type)                                                                \
    static void name(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) { \
        dot_blocks32(type, n, w, x, xs, nx, out);                                          \
    }
DOT32(dot_q8_0, ZC_TYPE_Q8_0)
DOT32(dot_q4_0, ZC_TYPE_Q4_0)
DOT32(dot_q4_1, ZC_TYPE_Q4_1)
DOT32(dot_q5_0, ZC_TYPE_Q5_0)
DOT32(dot_q5_1, ZC_TYPE_Q5_1)

/* A K super-block as x = d * sc[g] * q - dmin * mn[g] over groups g of
 * `group` elements: 8 groups of 32 for q4_K/q5_K, 16 of 16 for q6_K (whose
 * scales are signed and which has no mins: its -32 is folded into q). */
typedef struct {
    int8_t q[256];
    int sc[16], mn[16];
    float d, dmin;
    int group;
} blockK;

static void decode_blockK(int type, const void *blk, blockK *b) {
    if (type == ZC_TYPE_Q6_K) {
        const zc_block_q6_K *p = blk;
        b->d = zc_fp16_to_f32(p->d), b->dmin = 0.0f, b->group = 16;
        for (int g = 0; g < 16; g++) b->sc[g] = p->scales[g], b->mn[g] = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = p->ql + 64 * h, *qh = p->qh + 32 * h;
            int8_t *q = b->q + 128 * h;
            for (int l = 0; l < 32; l++) {
                q[l] = (int8_t)(((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32);
                q[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32);
                q[l + 64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
                q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
            }
        }
        return;
    }
    /* q4_K and q5_K share the header and the nibble order; q5_K adds qh */
    const zc_block_q4_K *p4 = blk;
    const zc_block_q5_K *p5 = blk;
    const uint8_t *qs = type == ZC_TYPE_Q5_K ? p5->qs : p4->qs;
    uint8_t sc[8], mn[8];
    zc_k4_scales_mins(p4->scales, sc, mn);
    b->d = zc_fp16_to_f32(p4->d), b->dmin = zc_fp16_to_f32(p4->dmin), b->group = 32;
    for (int g = 0; g < 8; g++) b->sc[g] = sc[g], b->mn[g] = mn[g];
    for (int g = 0; g < 8; g++) {
        for (int l = 0; l < 32; l++) {
            int v = g & 1 ? qs[32 * (g / 2) + l] >> 4 : qs[32 * (g / 2) + l] & 0xF;
            if (type == ZC_TYPE_Q5_K) v |= ((p5->qh[l] >> g) & 1) << 4;
            b->q[32 * g + l] = (int8_t)v;
        }
    }
}

/* Σ_g (d sc_g q - dmin mn_g) dx qx = d dx Σ_g sc_g Σ q qx - dmin dx Σ_g mn_g Σ qx */
static void dot_blocksK(int type, int64_t n, const void *w, const void *x, size_t x_stride, int nx, float *out) {
    const int bytes = zc_type_get(type)->block_bytes;
    for (int k = 0; k < nx; k++) {
        const zc_act_q8k *a = act_row(x, x_stride, k);
        float acc = 0.0f;
        for (int64_t i = 0; i < n / ZC_QK_K; i++) {
            blockK b;
            decode_blockK(type, (const char *)w + i * bytes, &b);
            int sumi = 0, summ = 0;
            for (int g = 0; g < ZC_QK_K / b.group; g++) {
                int s = 0;
                for (int l = 0; l < b.group; l++) s += b.q[g * b.group + l] * a[i].qs[g * b.group + l];
                sumi += b.sc[g] * s;
                for (int h = 0; h < b.group / 16; h++) summ += b.mn[g] * a[i].bsums[g * b.group / 16 + h];
            }
            acc += b.d * a[i].d * (float)sumi - b.dmin * a[i].d * (float)summ;
        }
        out[k] = acc;
    }
}
#define DOTK(name, type)                                                                 \
    static void name(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) { \
        dot_blocksK(type, n, w, x, xs, nx, out);                                           \
    }
DOTK(dot_q4_K, ZC_TYPE_Q4_K)
DOTK(dot_q5_K, ZC_TYPE_Q5_K)
DOTK(dot_q6_K, ZC_TYPE_Q6_K)

zc_dot_fn zc_dot_scalar(int type) {
    switch (type) {
    ZC_DOT_KERNELS(ZC_DOT_CASE)
    default: return NULL;
    }
}

/* ---- driver ------------------------------------------------------------ */

static zc_act_kind act_kind(int type) {
    switch (type) {
    case ZC_TYPE_F32: case ZC_TYPE_F16: case ZC_TYPE_BF16: return ZC_ACT_F32;
    case ZC_TYPE_Q4_K: case ZC_TYPE_Q5_K: case ZC_TYPE_Q6_K: return ZC_ACT_Q8K;
    default: return ZC_ACT_Q8;
    }
}

typedef struct {
    const zc_mat *w;
    zc_dot_fn dot;
    const char *xa;   /* activation rows, [m][xa_stride] bytes: fp32 x or its quantized blocks */
    size_t xa_stride;
    float *y;         /* [m][rows] */
    int m;
    int64_t chunk;    /* weight rows per task (a multiple of ZC_PACK_ROWS on the packed path) */
    /* the packed path (gemm != NULL): rows [0, packed_rows) from w->packed, the rest row-major */
    zc_gemm_fn gemm;
    const int32_t *sums; /* [m][blocks * zc_pack_sums_per_block] the activation blocks' sums */
    int64_t packed_rows;
} job;

/* Rows [r0, r1) through the row-major dot kernel. */
static void rows_by_dot(const job *j, int64_t r0, int64_t r1) {
    const zc_mat *w = j->w;
    float out[ZC_NX];
    for (int i0 = 0; i0 < j->m; i0 += ZC_NX) {
        const int nx = j->m - i0 < ZC_NX ? j->m - i0 : ZC_NX;
        for (int64_t r = r0; r < r1; r++) {
            j->dot(w->cols, (const char *)w->data + (size_t)r * w->row_bytes, j->xa + (size_t)i0 * j->xa_stride,
                   j->xa_stride, nx, out);
            for (int k = 0; k < nx; k++) j->y[(size_t)(i0 + k) * (size_t)w->rows + (size_t)r] = out[k];
        }
    }
}

/* Rows [r0, r1) (whole groups) through the packed GEMM, ZC_PACK_NX activation
 * rows and up to zc_pack_groups_per_call groups at a time. */
static void rows_by_gemm(const job *j, int64_t r0, int64_t r1) {
    const zc_mat *w = j->w;
    const int64_t nb = w->cols / zc_type_get(w->type)->block_elems;
    const size_t gbytes = (size_t)zc_pack_block_bytes(w->type) * (size_t)nb;
    const size_t sums_stride = (size_t)nb * (size_t)zc_pack_sums_per_block(w->type);
    const int per_call = zc_pack_groups_per_call(w->type);
    float out[2][ZC_PACK_NX][ZC_PACK_ROWS];
    const void *act[ZC_PACK_NX];
    const int32_t *sums[ZC_PACK_NX];
    for (int i0 = 0; i0 < j->m; i0 += ZC_PACK_NX) {
        const int nx = j->m - i0 < ZC_PACK_NX ? j->m - i0 : ZC_PACK_NX;
        for (int k = 0; k < nx; k++) {
            act[k] = j->xa + (size_t)(i0 + k) * j->xa_stride;
            sums[k] = j->sums ? j->sums + (size_t)(i0 + k) * sums_stride : NULL; /* float weights: none */
        }
        for (int64_t r = r0; r < r1;) {
            const int ng = r + (int64_t)per_call * ZC_PACK_ROWS <= r1 ? per_call : 1;
            j->gemm(w->type, nb, (const uint8_t *)w->packed + (size_t)(r / ZC_PACK_ROWS) * gbytes, gbytes, ng, act, sums,
                    nx, out);
            for (int gi = 0; gi < ng; gi++)
                for (int k = 0; k < nx; k++)
                    memcpy(j->y + (size_t)(i0 + k) * (size_t)w->rows + (size_t)r + (size_t)gi * ZC_PACK_ROWS, out[gi][k],
                           sizeof out[gi][k]);
            r += (int64_t)ng * ZC_PACK_ROWS;
        }
    }
}

/* The packed GEMM's activation sums (matmul_packed.h) of n activation
 * blocks: each q8 block's code sum, or each q8k super-block's 4 pairs of
 * 32-element sums (q4_K) as int16 halves (the even sub-block low). q6_K's
 * pairs of 16-element sums are the block's own bsums: none here. */
static void activation_sums(int type, const void *act, size_t n, int32_t *out) {
    if (type != ZC_TYPE_Q4_K) {
        const zc_act_q8 *a = act;
        for (size_t b = 0; b < n; b++) {
            int32_t sum = 0;
            for (int e = 0; e < ZC_QK; e++) sum += a[b].qs[e];
            out[b] = sum;
        }
        return;
    }
    const zc_act_q8k *a = act;
    for (size_t b = 0; b < n; b++)
        for (int p = 0; p < 4; p++) {
            const int16_t *bs = a[b].bsums + 4 * p; /* sub-block g = 2p + h covers bsums 2g, 2g + 1 */
            const uint16_t lo = (uint16_t)(bs[0] + bs[1]), hi = (uint16_t)(bs[2] + bs[3]);
            out[4 * b + (size_t)p] = (int32_t)((uint32_t)hi << 16 | lo);
        }
}

static void run_chunk(void *ctx, int task, int thread) {
    (void)thread;
    const job *j = ctx;
    const int64_t rows = j->w->rows;
    const int64_t r0 = (int64_t)task * j->chunk, r1 = r0 + j->chunk < rows ? r0 + j->chunk : rows;
    const int64_t split = j->gemm ? (r1 < j->packed_rows ? r1 : j->packed_rows) : r0;
    if (split > r0) rows_by_gemm(j, r0, split);
    if (r1 > split) rows_by_dot(j, split > r0 ? split : r0, r1);
}

static int scratch_reserve(zc_matmul_scratch *s, size_t need) {
    if (s->cap >= need) return ZC_OK;
    void *p = zc_malloc_aligned(need);
    if (!p) return ZC_ERR_NOMEM;
    zc_free_aligned(s->buf);
    s->buf = p;
    s->cap = need;
    return ZC_OK;
}

/* Rows per task: a chunk of weights small enough to stay in L2 while the
 * activations sweep over it, and enough chunks (8 per thread) for the
 * dynamic hand-out to balance, but at least MIN_TASK_MACS multiply-adds per
 * task so that small matrices (the tiny models' 64x64) run as one task on
 * the caller instead of paying the pool's wake-up for microseconds of work. */
#define MIN_TASK_MACS 65536
static int64_t chunk_rows(const zc_mat *w, int m, int n_threads) {
    int64_t by_cache = (int64_t)((256u << 10) / (w->row_bytes ? w->row_bytes : 1));
    int64_t by_balance = w->rows / (8 * (int64_t)n_threads);
    int64_t by_work = MIN_TASK_MACS / (w->cols * m) + 1;
    int64_t c = by_balance < by_cache ? by_balance : by_cache;
    if (c < by_work) c = by_work;
    c = c < w->rows ? c : w->rows;
    return w->packed ? (c + ZC_PACK_ROWS - 1) / ZC_PACK_ROWS * ZC_PACK_ROWS : c;
}

int zc_matmul(zc_pool *pool, const zc_mat *w, const float *x, float *y, int m, zc_matmul_scratch *scratch) {
    const zc_type_info *ti = zc_type_get(w->type);
    if (!ti || !ti->can_load) return zc_error(ZC_ERR_UNSUPPORTED, "matmul: weight type %d is not supported", w->type);
    size_t row_bytes;
    if (zc_type_row_bytes(w->type, w->cols, &row_bytes) || row_bytes > w->row_bytes)
        return zc_error(ZC_ERR_ARG, "matmul: %s matrix with %lld columns and rows of %zu bytes", ti->name,
                        (long long)w->cols, w->row_bytes);
    if (m <= 0 || w->rows <= 0) return ZC_OK;
    if (w->cols == 0) { /* empty sums */
        memset(y, 0, sizeof(float) * (size_t)m * (size_t)w->rows);
        return ZC_OK;
    }
    const bool simd = zc_cpu_has_avx2();
    const zc_act_kind kind = act_kind(w->type);
    zc_dot_fn dot = zc_cpu_has_avx512vnni() ? zc_dot_avx512vnni(w->type) : NULL;
    if (!dot) dot = simd ? zc_dot_avx2(w->type) : zc_dot_scalar(w->type);
    job j = {w, dot, (const char *)x, (size_t)w->cols * sizeof(float), y, m, 0, NULL, NULL, 0};
    if (w->packed) j.gemm = zc_gemm_avx512vnni();
    if (kind != ZC_ACT_F32) {
        /* [m][cols / block] activation blocks, then on the packed path their sums (activation_sums) */
        const size_t bsize = kind == ZC_ACT_Q8 ? sizeof(zc_act_q8) : sizeof(zc_act_q8k);
        const int64_t nb = w->cols / (kind == ZC_ACT_Q8 ? ZC_QK : ZC_QK_K);
        size_t acts, sums = 0, need;
        const size_t sums_per_row = (size_t)nb * (size_t)zc_pack_sums_per_block(w->type);
        j.xa_stride = (size_t)nb * bsize;
        if (zc_mul_size(j.xa_stride, (size_t)m, &acts) || (j.gemm && zc_mul_size(sums_per_row * 4, (size_t)m, &sums)) ||
            zc_add_size(acts, sums, &need))
            return zc_error(ZC_ERR_LIMIT, "matmul: scratch overflows");
        int rc = scratch_reserve(scratch, need);
        if (rc) return rc;
        for (int i = 0; i < m; i++) {
            const float *xi = x + (size_t)i * (size_t)w->cols;
            char *dst = (char *)scratch->buf + (size_t)i * j.xa_stride;
            if (kind == ZC_ACT_Q8)
                (simd ? zc_quantize_act_q8_avx2 : zc_quantize_act_q8)(xi, (zc_act_q8 *)dst, w->cols);
            else
                (simd ? zc_quantize_act_q8k_avx2 : zc_quantize_act_q8k)(xi, (zc_act_q8k *)dst, w->cols);
        }
        j.xa = scratch->buf;
        if (j.gemm && sums_per_row) {
            int32_t *s = (int32_t *)(void *)((char *)scratch->buf + acts);
            activation_sums(w->type, scratch->buf, (size_t)m * (size_t)nb, s);
            j.sums = s;
        }
    }
    if (j.gemm) j.packed_rows = w->rows / ZC_PACK_ROWS * ZC_PACK_ROWS;
    j.chunk = chunk_rows(w, m, zc_pool_size(pool));
    zc_pool_run(pool, (int)((w->rows + j.chunk - 1) / j.chunk), run_chunk, &j);
    return ZC_OK;
}

void zc_matmul_ref(const zc_mat *w, const float *x, float *y, int m) {
    float *row = zc_malloc((size_t)w->cols * sizeof(float));
    if (!row) return;
    for (int64_t r = 0; r < w->rows; r++) {
        zc_mat_get_row(w, r, row);
        for (int i = 0; i < m; i++) {
            const float *xi = x + (size_t)i * (size_t)w->cols;
            double s = 0.0;
            for (int64_t c = 0; c < w->cols; c++) s += (double)row[c] * (double)xi[c];
            y[(size_t)i * (size_t)w->rows + (size_t)r] = (float)s;
        }
    }
    free(row);
}

void zc_matmul_scratch_free(zc_matmul_scratch *s) {
    zc_free_aligned(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

/* Block i of row r of a packed q8_0 / q4_0 / f16 / bf16 matrix, back in
 * the type's own bytes (dst: one block; for f16/bf16 one element). */
static void unpack_block(const zc_mat *w, int64_t r, int64_t i, uint8_t *dst) {
    const int64_t nb = w->cols / zc_type_get(w->type)->block_elems;
    const int gb = zc_pack_block_bytes(w->type), j = (int)(r % ZC_PACK_ROWS);
    const uint8_t *g = (const uint8_t *)w->packed + (size_t)((r / ZC_PACK_ROWS) * nb + i) * (size_t)gb;
    memcpy(dst, g + 2 * j, 2); /* d, or the element itself */
    if (w->type != ZC_TYPE_Q8_0 && w->type != ZC_TYPE_Q4_0) return;
    const bool q8 = w->type == ZC_TYPE_Q8_0;
    for (int k = 0; k < (q8 ? 8 : 4); k++) { /* the inverse of pack_group_block32 */
        uint32_t v;
        memcpy(&v, g + 2 * ZC_PACK_ROWS + 64 * k + 4 * j, 4);
        if (q8) v ^= 0x80808080u;
        memcpy(dst + 2 + 4 * k, &v, 4);
    }
}

/* From the packed copy where the matrix has one whose rows it can give
 * back (zc_mat_repack_keeps_rows): the originals may have been released. */
void zc_mat_get_row(const zc_mat *w, int64_t row, float *out) {
    if (!w->packed || !zc_mat_repack_keeps_rows(w->type) || row >= w->rows / ZC_PACK_ROWS * ZC_PACK_ROWS) {
        zc_dequantize_row(w->type, (const char *)w->data + (size_t)row * w->row_bytes, out, w->cols);
        return;
    }
    const int elems = zc_type_get(w->type)->block_elems;
    uint8_t blk[64];
    for (int64_t i = 0; i < w->cols / elems; i++) {
        unpack_block(w, row, i, blk);
        zc_dequantize_row(w->type, blk, out + i * elems, elems);
    }
}

bool zc_mat_repack_keeps_rows(int type) {
    return type == ZC_TYPE_Q8_0 || type == ZC_TYPE_Q4_0 || type == ZC_TYPE_F16 || type == ZC_TYPE_BF16;
}

/* ---- repacking (layout: matmul_packed.h) ------------------------------- */

int zc_pack_block_bytes(int type) {
    switch (type) {
    case ZC_TYPE_Q8_0: return 16 * (int)sizeof(zc_block_q8_0);
    case ZC_TYPE_Q4_0: return 16 * (int)sizeof(zc_block_q4_0);
    case ZC_TYPE_Q4_K: return ZC_PACK_Q4K_BYTES;
    case ZC_TYPE_Q6_K: return ZC_PACK_Q6K_BYTES;
    case ZC_TYPE_F16: case ZC_TYPE_BF16: return 2 * ZC_PACK_ROWS; /* a "block" is one column */
    default: return 0;
    }
}

bool zc_repack_pays(int type) { return type != ZC_TYPE_Q6_K && zc_pack_block_bytes(type) > 0; }

int zc_pack_groups_per_call(int type) { return type == ZC_TYPE_Q8_0 || type == ZC_TYPE_Q4_0 ? 2 : 1; }

int zc_pack_sums_per_block(int type) {
    return type == ZC_TYPE_Q4_K ? 4 : type == ZC_TYPE_Q6_K || !zc_type_get(type) || zc_type_get(type)->block_elems == 1 ? 0 : 1;
}

/* Group block i of the 16 q8_0 or q4_0 rows starting at row r0 into dst. */
static void pack_group_block32(const zc_mat *w, int64_t r0, int64_t i, uint8_t *dst) {
    const bool q8 = w->type == ZC_TYPE_Q8_0;
    const int K = q8 ? 8 : 4;
    for (int r = 0; r < ZC_PACK_ROWS; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes;
        const uint8_t *blk = row + (size_t)i * (q8 ? sizeof(zc_block_q8_0) : sizeof(zc_block_q4_0));
        memcpy(dst + 2 * r, blk, 2); /* d */
        const uint8_t *qs = blk + 2;
        for (int k = 0; k < K; k++) { /* 4 code bytes at a time; q8_0: each code + 128 */
            uint32_t v;
            memcpy(&v, qs + 4 * k, 4);
            if (q8) v ^= 0x80808080u;
            memcpy(dst + 2 * ZC_PACK_ROWS + 64 * k + 4 * r, &v, 4);
        }
    }
}

/* Super-block i of the 16 q4_K rows starting at row r0 into dst (2496 bytes). */
static void pack_group_block_q4K(const zc_mat *w, int64_t r0, int64_t i, uint8_t *dst) {
    uint8_t *sc = dst + 64, *q = dst + 448;
    int16_t *mn = (int16_t *)(void *)(dst + 192);
    for (int r = 0; r < ZC_PACK_ROWS; r++) {
        const zc_block_q4_K *b =
            (const zc_block_q4_K *)(const void *)((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes) + i;
        memcpy(dst + 2 * r, &b->d, 2);
        memcpy(dst + 32 + 2 * r, &b->dmin, 2);
        uint8_t s[8], m[8];
        zc_k4_scales_mins(b->scales, s, m);
        for (int g = 0; g < 8; g++) sc[16 * g + r] = s[g];
        for (int p = 0; p < 4; p++) {
            mn[32 * p + 2 * r] = m[2 * p];
            mn[32 * p + 2 * r + 1] = m[2 * p + 1];
            for (int k = 0; k < 8; k++) memcpy(q + 512 * p + 64 * k + 4 * r, b->qs + 32 * p + 4 * k, 4);
        }
    }
}

/* Column i of the 16 f16 or bf16 rows starting at row r0 into dst (32 bytes). */
static void pack_group_column16(const zc_mat *w, int64_t r0, int64_t i, uint8_t *dst) {
    for (int r = 0; r < ZC_PACK_ROWS; r++)
        memcpy(dst + 2 * r, (const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes + 2 * (size_t)i, 2);
}

/* Super-block i of the 16 q6_K rows starting at row r0 into dst (3360 bytes). */
static void pack_group_block_q6K(const zc_mat *w, int64_t r0, int64_t i, uint8_t *dst) {
    int8_t *scp = (int8_t *)(void *)(dst + 32);
    uint8_t *ql = dst + 288, *qh = dst + 288 + 2048;
    for (int r = 0; r < ZC_PACK_ROWS; r++) {
        const zc_block_q6_K *b =
            (const zc_block_q6_K *)(const void *)((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes) + i;
        memcpy(dst + 2 * r, &b->d, 2);
        for (int g = 0; g < 16; g++) scp[32 * (g / 2) + 2 * r + g % 2] = b->scales[g];
        for (int h = 0; h < 2; h++) {
            for (int k = 0; k < 16; k++) memcpy(ql + 1024 * h + 64 * k + 4 * r, b->ql + 64 * h + 4 * k, 4);
            for (int k = 0; k < 8; k++) memcpy(qh + 512 * h + 64 * k + 4 * r, b->qh + 32 * h + 4 * k, 4);
        }
    }
}

int zc_mat_repack(zc_mat *w, void **buf, size_t *bytes) {
    *buf = NULL;
    *bytes = 0;
    const int gb = zc_pack_block_bytes(w->type);
    if (!gb || !zc_gemm_avx512vnni() || w->rows < ZC_PACK_ROWS || w->cols <= 0) return ZC_OK;
    const int elems = zc_type_get(w->type)->block_elems;
    if (w->cols % elems) return ZC_OK;
    const int64_t groups = w->rows / ZC_PACK_ROWS, nb = w->cols / elems;
    const size_t need = (size_t)groups * (size_t)nb * (size_t)gb;
    uint8_t *p = zc_malloc_aligned(need);
    if (!p) return zc_error(ZC_ERR_NOMEM, "matmul: cannot repack a %lldx%lld %s matrix (%zu bytes)",
                            (long long)w->rows, (long long)w->cols, zc_type_get(w->type)->name, need);
    for (int64_t g = 0; g < groups; g++)
        for (int64_t i = 0; i < nb; i++) {
            uint8_t *dst = p + (size_t)(g * nb + i) * (size_t)gb;
            if (w->type == ZC_TYPE_Q4_K) pack_group_block_q4K(w, g * ZC_PACK_ROWS, i, dst);
            else if (w->type == ZC_TYPE_Q6_K) pack_group_block_q6K(w, g * ZC_PACK_ROWS, i, dst);
            else if (w->type == ZC_TYPE_F16 || w->type == ZC_TYPE_BF16) pack_group_column16(w, g * ZC_PACK_ROWS, i, dst);
            else pack_group_block32(w, g * ZC_PACK_ROWS, i, dst);
        }
    w->packed = p;
    *buf = p;
    *bytes = need;
    return ZC_OK;
}
