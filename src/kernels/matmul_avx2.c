/* AVX2 + FMA + F16C dot kernels (entered only after zc_cpu_has_avx2()).
 *
 * Integer products follow ggml's x86 scheme: _mm256_maddubs_epi16 multiplies
 * unsigned weight codes with signed activation codes into 16-bit pair sums
 * (at most 2*63*127 here, no saturation), _mm256_madd_epi16 widens them to
 * 32 bits, optionally weighting each 16-bit pair sum by a sub-block scale.
 * Signed weight codes (q8_0, and q4_0/q5_0 once their zero point 8/16 is
 * subtracted) go in as |w| with w's sign moved onto x. q6_K keeps its
 * unsigned code and subtracts 32 × Σ activation codes per group of 16, from
 * the sums the activation blocks carry.
 *
 * Each kernel is written once for nx activation rows and instantiated for
 * nx = 1..ZC_NX, so the per-row accumulators live in registers; a weight
 * block is decoded once and used nx times. The order of operations for one
 * activation row does not depend on nx.
 */
#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "kernels/matmul_kernels.h"
#include "kernels/matmul_x86.h"
#include "quant/ggml_blocks.h"
#include "util/fp16.h"

static inline int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* ---- activation quantization (same bytes as the scalar quantizer) ------- */

/* 32 floats to int8 codes x * id, rounded to nearest even (cvtps in the
 * default MXCSR mode), in element order; *sum_lo and *sum_hi get the sums
 * of codes 0..15 and 16..31. */
static inline __m256i quantize32(const float *x, __m256 id, int *sum_lo, int *sum_hi) {
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id));
    *sum_lo = hsum_epi32(_mm256_add_epi32(i0, i1));
    *sum_hi = hsum_epi32(_mm256_add_epi32(i2, i3));
    /* packs work within 128-bit lanes: the permute restores element order */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* max |x_j|, or NaN if any x_j is NaN (max_ps alone would drop it), as the
 * scalar quantizer does. */
static inline float absmax(const float *x, int n) {
    const __m256 mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    for (int j = 0; j < n; j += 8) {
        const __m256 v = _mm256_loadu_ps(x + j);
        m = _mm256_max_ps(m, _mm256_and_ps(v, mask));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    if (_mm256_movemask_ps(nan)) return NAN;
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void zc_quantize_act_q8_avx2(const float *x, zc_act_q8 *y, int64_t n) {
    for (int64_t i = 0; i < n / ZC_QK; i++, x += ZC_QK) {
        const float amax = absmax(x, ZC_QK);
        int lo, hi;
        __m256i q = quantize32(x, _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f), &lo, &hi);
        _mm256_storeu_si256((__m256i *)y[i].qs, q);
        y[i].d = amax / 127.0f;
        y[i].s = y[i].d * (float)(lo + hi);
    }
}

void zc_quantize_act_q8k_avx2(const float *x, zc_act_q8k *y, int64_t n) {
    for (int64_t i = 0; i < n / ZC_QK_K; i++, x += ZC_QK_K) {
        const float amax = absmax(x, ZC_QK_K);
        const __m256 id = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        for (int j = 0; j < ZC_QK_K / 32; j++) {
            int lo, hi;
            _mm256_storeu_si256((__m256i *)(y[i].qs + 32 * j), quantize32(x + 32 * j, id, &lo, &hi));
            y[i].bsums[2 * j] = (int16_t)lo;
            y[i].bsums[2 * j + 1] = (int16_t)hi;
        }
        y[i].d = amax / 127.0f;
    }
}

/* ---- f32 / f16 / bf16: fp32 FMA ------------------------------------------ */

static inline __m256 load8(int type, const void *w, int64_t c) {
    switch (type) {
    case ZC_TYPE_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + c)));
    case ZC_TYPE_BF16: {
        __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + c)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
    }
    default: return _mm256_loadu_ps((const float *)w + c);
    }
}

static inline float load1(int type, const void *w, int64_t c) {
    switch (type) {
    case ZC_TYPE_F16: return zc_fp16_to_f32(((const uint16_t *)w)[c]);
    case ZC_TYPE_BF16: return zc_bf16_to_f32(((const uint16_t *)w)[c]);
    default: return ((const float *)w)[c];
    }
}

/* Four accumulators per activation row (32 elements a step) cover the FMA
 * latency; with 16 registers that allows two rows per pass, so the kernel
 * takes activation rows in pairs. */
ALWAYS_INLINE void dot_float_pair(int type, int64_t n, const void *w, const float *const xk[], int nx, float *out) {
    __m256 acc[2][4];
    UNROLL for (int k = 0; k < nx; k++) acc[k][0] = acc[k][1] = acc[k][2] = acc[k][3] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= n; c += 32) {
        UNROLL for (int v = 0; v < 4; v++) {
            const __m256 wv = load8(type, w, c + 8 * v);
            UNROLL for (int k = 0; k < nx; k++) acc[k][v] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xk[k] + c + 8 * v), acc[k][v]);
        }
    }
    UNROLL for (int k = 0; k < nx; k++) {
        float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[k][0], acc[k][1]), _mm256_add_ps(acc[k][2], acc[k][3])));
        for (int64_t t = c; t < n; t++) s += load1(type, w, t) * xk[k][t];
        out[k] = s;
    }
}

ALWAYS_INLINE void dot_float_nx(int type, int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) {
    const float *xk[ZC_NX];
    UNROLL for (int k = 0; k < nx; k++) xk[k] = act_row(x, xs, k);
    if (nx >= 2) dot_float_pair(type, n, w, xk, 2, out);
    if (nx == 1 || nx == 3) dot_float_pair(type, n, w, xk + nx - 1, 1, out + nx - 1);
    if (nx == 4) dot_float_pair(type, n, w, xk + 2, 2, out + 2);
}
#define FLOAT_KERNEL(name, type)                                                                  \
    ALWAYS_INLINE void name##_nx(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) { \
        dot_float_nx(type, n, w, x, xs, nx, out);                                                   \
    }                                                                                               \
    TILED(name)
FLOAT_KERNEL(dot_f32, ZC_TYPE_F32)
FLOAT_KERNEL(dot_f16, ZC_TYPE_F16)
FLOAT_KERNEL(dot_bf16, ZC_TYPE_BF16)

/* ---- 32-element formats: the shared kernel with maddubs + madd ---------- */

#define ZC_DOT_U8S8(u, x) _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1))
#include "kernels/matmul_q32_x86.h"

/* ---- K formats ------------------------------------------------------------ */

/* q4_K / q5_K: 8 sub-blocks of 32 with 6-bit scales sc and mins mn:
 * Σ = d dx Σ_g sc_g Σ u x - dmin dx Σ_g mn_g (bsum_2g + bsum_2g+1). */
ALWAYS_INLINE void dot_q45K_nx(int type, int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) {
    const int bytes = type == ZC_TYPE_Q5_K ? 176 : 144;
    const zc_act_q8k *a[ZC_NX];
    __m256 acc[ZC_NX];
    UNROLL for (int k = 0; k < nx; k++) {
        a[k] = act_row(x, xs, k);
        acc[k] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < n / ZC_QK_K; i++) {
        const zc_block_q4_K *b4 = (const void *)((const uint8_t *)w + i * bytes);
        const zc_block_q5_K *b5 = (const void *)b4;
        const uint8_t *qs = type == ZC_TYPE_Q5_K ? b5->qs : b4->qs;
        uint8_t sc[8], mn[8];
        zc_k4_scales_mins(b4->scales, sc, mn);
        /* each min twice, to pair with the two 16-element sums of its sub-block */
        const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)mn),
                                                                       _mm_loadl_epi64((const __m128i *)mn)));
        const __m256i qh = type == ZC_TYPE_Q5_K ? _mm256_loadu_si256((const __m256i *)b5->qh) : _mm256_setzero_si256();
        __m256i sumi[ZC_NX];
        UNROLL for (int k = 0; k < nx; k++) sumi[k] = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) { /* 32 bytes of qs: sub-blocks 2c (low nibbles) and 2c+1 (high) */
            const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i u0 = _mm256_and_si256(q, _mm256_set1_epi8(0x0F));
            __m256i u1 = _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0x0F));
            if (type == ZC_TYPE_Q5_K) { /* bit g of qh[l] is the fifth bit of sub-block g */
                const __m256i one = _mm256_set1_epi8(1);
                u0 = _mm256_or_si256(u0, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4));
                u1 = _mm256_or_si256(u1, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4));
            }
            const __m256i s0 = _mm256_set1_epi16(sc[2 * c]), s1 = _mm256_set1_epi16(sc[2 * c + 1]);
            UNROLL for (int k = 0; k < nx; k++) {
                const int8_t *xq = a[k][i].qs + 64 * c;
                const __m256i p0 = _mm256_maddubs_epi16(u0, _mm256_loadu_si256((const __m256i *)xq));
                const __m256i p1 = _mm256_maddubs_epi16(u1, _mm256_loadu_si256((const __m256i *)(xq + 32)));
                sumi[k] = _mm256_add_epi32(sumi[k], _mm256_add_epi32(_mm256_madd_epi16(p0, s0), _mm256_madd_epi16(p1, s1)));
            }
        }
        const float d = _cvtsh_ss(b4->d), dmin = _cvtsh_ss(b4->dmin);
        UNROLL for (int k = 0; k < nx; k++) {
            const __m256i m = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[k][i].bsums), mins16);
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[k]), _mm256_set1_ps(d * a[k][i].d), acc[k]);
            acc[k] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(dmin * a[k][i].d), acc[k]);
        }
    }
    UNROLL for (int k = 0; k < nx; k++) out[k] = hsum_ps(acc[k]);
}
ALWAYS_INLINE void dot_q4_K_nx(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) {
    dot_q45K_nx(ZC_TYPE_Q4_K, n, w, x, xs, nx, out);
}
ALWAYS_INLINE void dot_q5_K_nx(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) {
    dot_q45K_nx(ZC_TYPE_Q5_K, n, w, x, xs, nx, out);
}
TILED(dot_q4_K)
TILED(dot_q5_K)

/* q6_K: 16 groups of 16 with signed 8-bit scales; codes u = q + 32 in 0..63:
 * Σ = d dx Σ_g sc_g (Σ u x - 32 bsum_g). */
ALWAYS_INLINE void dot_q6_K_nx(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) {
    /* quarter t of a half uses scales 2t (elements 0..15) and 2t+1 (16..31):
     * pick those int16s into the low and high 128-bit lanes */
    const __m256i pick[4] = {
        _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3),
        _mm256_setr_epi8(4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7),
        _mm256_setr_epi8(8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11,
                         10, 11, 10, 11),
        _mm256_setr_epi8(12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14,
                         15, 14, 15, 14, 15, 14, 15, 14, 15),
    };
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
    const zc_act_q8k *a[ZC_NX];
    __m256 acc[ZC_NX];
    UNROLL for (int k = 0; k < nx; k++) {
        a[k] = act_row(x, xs, k);
        acc[k] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < n / ZC_QK_K; i++) {
        const zc_block_q6_K *b = (const zc_block_q6_K *)w + i;
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
        __m256i sumi[ZC_NX];
        UNROLL for (int k = 0; k < nx; k++) /* start from -32 Σ_g sc_g bsum_g */
            sumi[k] = _mm256_slli_epi32(
                _mm256_sub_epi32(_mm256_setzero_si256(),
                                 _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[k][i].bsums), sc16)),
                5);
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
            const __m256i s8 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(b->scales + 8 * h))));
            const __m256i u[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4)),
                _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4)),
            };
            for (int t = 0; t < 4; t++) {
                const __m256i s = _mm256_shuffle_epi8(s8, pick[t]);
                UNROLL for (int k = 0; k < nx; k++) {
                    const __m256i xv = _mm256_loadu_si256((const __m256i *)(a[k][i].qs + 128 * h + 32 * t));
                    sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(_mm256_maddubs_epi16(u[t], xv), s));
                }
            }
        }
        const float d = _cvtsh_ss(b->d);
        UNROLL for (int k = 0; k < nx; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[k]), _mm256_set1_ps(d * a[k][i].d), acc[k]);
    }
    UNROLL for (int k = 0; k < nx; k++) out[k] = hsum_ps(acc[k]);
}
TILED(dot_q6_K)

zc_dot_fn zc_dot_avx2(int type) {
    switch (type) {
    ZC_DOT_KERNELS(ZC_DOT_CASE)
    default: return NULL;
    }
}
