/* AVX2 row kernels for the KV quantizers: the same fp32 operations as the
 * scalar kernels in kvquant.c (subtract, divide, round half-even, clamp;
 * multiply, then add), eight lanes at a time, so the results are identical
 * bit for bit. fp16 parameters are widened with F16C, which is exact. */
#include <immintrin.h>
#include <math.h>

#include "quant/kvquant.h"
#include "quant/pack.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* keep multiply and add separate, as in the scalar reference */
#endif

enum { KCHUNK = 256 }; /* codes per pack call: a multiple of 64, so AVX2 packing covers it */

static inline __m256 ld_h8(const zc_fp16 *h) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h)); }

/* NaN lanes of (v - v) mark NaN and +-inf inputs. */
static inline __m256 nonfinite_acc(__m256 acc, __m256 v) {
    return _mm256_or_ps(acc, _mm256_cmp_ps(_mm256_sub_ps(v, v), _mm256_sub_ps(v, v), _CMP_UNORD_Q));
}

/* Rows in tiles of 32; within a tile, columns in blocks of 32 (then 8)
 * accumulate in registers, so the statistics arrays are touched once per
 * tile, the input is read once in near row order (no page-per-row strides
 * across the whole block), and 32 rows of up to COLS columns stay in L2. */
enum { ROW_TILE = 32 };

static int a_col_stats(const float *x, size_t ldx, const int32_t *rows, int T, int n, float *mn, float *mx,
                       float *absmax) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 bad = _mm256_setzero_ps();
    int sbad = 0;
    for (int i = 0; i < n; i++) {
        mn[i] = INFINITY;
        mx[i] = -INFINITY;
        if (absmax) absmax[i] = 0.0f;
    }
    for (int t0 = 0; t0 < T; t0 += ROW_TILE) {
        int t1 = T - t0 < ROW_TILE ? T : t0 + ROW_TILE, i = 0;
        for (int width = 32; width >= 8; width -= 24) /* 32-column blocks, then 8-column blocks */
            for (; i + width <= n; i += width) {
                const int nv = width / 8;
                __m256 lo[4], hi[4], ab[4];
                for (int k = 0; k < nv; k++) {
                    lo[k] = _mm256_loadu_ps(mn + i + 8 * k);
                    hi[k] = _mm256_loadu_ps(mx + i + 8 * k);
                    ab[k] = absmax ? _mm256_loadu_ps(absmax + i + 8 * k) : _mm256_setzero_ps();
                }
                for (int t = t0; t < t1; t++) {
                    const float *r = x + (size_t)(rows ? rows[t] : t) * ldx + i;
                    for (int k = 0; k < nv; k++) {
                        __m256 v = _mm256_loadu_ps(r + 8 * k);
                        bad = nonfinite_acc(bad, v);
                        lo[k] = _mm256_min_ps(v, lo[k]);
                        hi[k] = _mm256_max_ps(v, hi[k]);
                        ab[k] = _mm256_max_ps(_mm256_andnot_ps(sign, v), ab[k]);
                    }
                }
                for (int k = 0; k < nv; k++) {
                    _mm256_storeu_ps(mn + i + 8 * k, lo[k]);
                    _mm256_storeu_ps(mx + i + 8 * k, hi[k]);
                    if (absmax) _mm256_storeu_ps(absmax + i + 8 * k, ab[k]);
                }
            }
        for (int t = t0; t < t1; t++) /* columns past the last multiple of 8 */
            for (int c = i; c < n; c++) {
                float v = x[(size_t)(rows ? rows[t] : t) * ldx + c];
                sbad |= !(v - v == 0.0f);
                mn[c] = v < mn[c] ? v : mn[c];
                mx[c] = v > mx[c] ? v : mx[c];
                if (absmax) absmax[c] = fabsf(v) > absmax[c] ? fabsf(v) : absmax[c];
            }
    }
    return sbad | (_mm256_movemask_ps(bad) != 0);
}

static inline float hmin8(__m256 v) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static inline float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static void a_row_div(const float *x, const zc_fp16 *div, int n, float *out) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_div_ps(_mm256_loadu_ps(x + i), ld_h8(div + i)));
    for (; i < n; i++) out[i] = x[i] / zc_fp16_to_f32(div[i]);
}

static int a_row_stats(const float *x, const zc_fp16 *div, int n, float *mn, float *mx) {
    __m256 lo = _mm256_set1_ps(INFINITY), hi = _mm256_set1_ps(-INFINITY), bad = _mm256_setzero_ps();
    int i = 0, sbad = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (div) v = _mm256_div_ps(v, ld_h8(div + i));
        bad = nonfinite_acc(bad, v);
        lo = _mm256_min_ps(v, lo);
        hi = _mm256_max_ps(v, hi);
    }
    float l = hmin8(lo), h = hmax8(hi);
    for (; i < n; i++) {
        float v = div ? x[i] / zc_fp16_to_f32(div[i]) : x[i];
        sbad |= !(v - v == 0.0f);
        l = v < l ? v : l;
        h = v > h ? v : h;
    }
    *mn = l;
    *mx = h;
    return sbad | (_mm256_movemask_ps(bad) != 0);
}

/* code lanes = clamp(round((v - m) / s), 0, maxq), 0 where s == 0. */
static inline __m256i code8(__m256 v, __m256 m, __m256 s, __m256 maxq) {
    __m256 q = _mm256_round_ps(_mm256_div_ps(_mm256_sub_ps(v, m), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm256_min_ps(_mm256_max_ps(q, _mm256_setzero_ps()), maxq); /* max first: NaN -> 0 */
    q = _mm256_andnot_ps(_mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_EQ_OQ), q);
    return _mm256_cvtps_epi32(q);
}

/* Four vectors of 8 int32 codes (each 0..255) -> 32 bytes in order. */
static inline void store_codes32(uint8_t *dst, __m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    __m256i r = _mm256_packus_epi16(ab, cd); /* lanes interleaved in dwords: 0 2 4 6 | 1 3 5 7 */
    r = _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)dst, r);
}

static void a_enc_chan(const float *x, int n, int bits, const zc_fp16 *mn, const zc_fp16 *st, uint8_t *dst) {
    const float fmaxq = (float)((1 << bits) - 1);
    const __m256 maxq = _mm256_set1_ps(fmaxq);
    uint8_t codes[KCHUNK];
    for (int i0 = 0; i0 < n; i0 += KCHUNK) {
        int m = n - i0 < KCHUNK ? n - i0 : KCHUNK, i = 0;
        const float *xc = x + i0;
        const zc_fp16 *mc = mn + i0, *sc = st + i0;
        for (; i + 32 <= m; i += 32) {
            __m256i q[4];
            for (int j = 0; j < 4; j++)
                q[j] = code8(_mm256_loadu_ps(xc + i + 8 * j), ld_h8(mc + i + 8 * j), ld_h8(sc + i + 8 * j), maxq);
            store_codes32(codes + i, q[0], q[1], q[2], q[3]);
        }
        for (; i < m; i++) codes[i] = zc_kvq_code(xc[i], zc_fp16_to_f32(mc[i]), zc_fp16_to_f32(sc[i]), fmaxq);
        zc_pack_avx2(codes, (size_t)m, bits, dst + (size_t)i0 * bits / 8);
    }
}

static void a_enc_tok(const float *x, const zc_fp16 *div, int n, int bits, zc_fp16 mn, zc_fp16 st, uint8_t *dst) {
    const float fmaxq = (float)((1 << bits) - 1), m16 = zc_fp16_to_f32(mn), s16 = zc_fp16_to_f32(st);
    const __m256 maxq = _mm256_set1_ps(fmaxq), vm = _mm256_set1_ps(m16), vs = _mm256_set1_ps(s16);
    uint8_t codes[KCHUNK];
    for (int i0 = 0; i0 < n; i0 += KCHUNK) {
        int m = n - i0 < KCHUNK ? n - i0 : KCHUNK, i = 0;
        const float *xc = x + i0;
        const zc_fp16 *dc = div ? div + i0 : NULL;
        for (; i + 32 <= m; i += 32) {
            __m256i q[4];
            for (int j = 0; j < 4; j++) {
                __m256 v = _mm256_loadu_ps(xc + i + 8 * j);
                if (dc) v = _mm256_div_ps(v, ld_h8(dc + i + 8 * j));
                q[j] = code8(v, vm, vs, maxq);
            }
            store_codes32(codes + i, q[0], q[1], q[2], q[3]);
        }
        for (; i < m; i++) codes[i] = zc_kvq_code(dc ? xc[i] / zc_fp16_to_f32(dc[i]) : xc[i], m16, s16, fmaxq);
        zc_pack_avx2(codes, (size_t)m, bits, dst + (size_t)i0 * bits / 8);
    }
}

static inline __m256 codes_f8(const uint8_t *c) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)c)));
}

static void a_dec_chan(const uint8_t *src, int n, int bits, const zc_fp16 *mn, const zc_fp16 *st, float *y) {
    uint8_t codes[KCHUNK];
    for (int i0 = 0; i0 < n; i0 += KCHUNK) {
        int m = n - i0 < KCHUNK ? n - i0 : KCHUNK, i = 0;
        zc_unpack_avx2(src + (size_t)i0 * bits / 8, (size_t)m, bits, codes);
        for (; i + 8 <= m; i += 8) {
            __m256 p = _mm256_mul_ps(codes_f8(codes + i), ld_h8(st + i0 + i));
            _mm256_storeu_ps(y + i0 + i, _mm256_add_ps(p, ld_h8(mn + i0 + i)));
        }
        for (; i < m; i++) {
            float p = (float)codes[i] * zc_fp16_to_f32(st[i0 + i]);
            y[i0 + i] = p + zc_fp16_to_f32(mn[i0 + i]);
        }
    }
}

static void a_dec_tok(const uint8_t *src, int n, int bits, zc_fp16 mn, zc_fp16 st, const zc_fp16 *mul, float *y) {
    const float m16 = zc_fp16_to_f32(mn), s16 = zc_fp16_to_f32(st);
    const __m256 vm = _mm256_set1_ps(m16), vs = _mm256_set1_ps(s16);
    uint8_t codes[KCHUNK];
    for (int i0 = 0; i0 < n; i0 += KCHUNK) {
        int m = n - i0 < KCHUNK ? n - i0 : KCHUNK, i = 0;
        zc_unpack_avx2(src + (size_t)i0 * bits / 8, (size_t)m, bits, codes);
        for (; i + 8 <= m; i += 8) {
            __m256 p = _mm256_add_ps(_mm256_mul_ps(codes_f8(codes + i), vs), vm);
            if (mul) p = _mm256_mul_ps(p, ld_h8(mul + i0 + i));
            _mm256_storeu_ps(y + i0 + i, p);
        }
        for (; i < m; i++) {
            float p = (float)codes[i] * s16;
            p = p + m16;
            y[i0 + i] = mul ? p * zc_fp16_to_f32(mul[i0 + i]) : p;
        }
    }
}

const zc_kvq_kernels zc_kvq_kernels_avx2 = {a_col_stats, a_row_div,  a_row_stats, a_enc_chan,
                                            a_enc_tok,   a_dec_chan, a_dec_tok};
