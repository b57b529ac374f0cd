/* The integer path of attention on packed codes (ZC_PACKED_INT8Q), x86
 * version, included by attn_packed_avx2.c with ZC_DPBUSD = maddubs + madd +
 * add and by attn_packed_vnni.c with ZC_DPBUSD = the VNNI dpbusd, which does
 * all three in one instruction. Contracts in attn_impl.h (zc_packed_kernels:
 * scores_i8, value_i8; unpack_v is attn_packed_avx2.c's, built on
 * i8x86_quad32); the scalar versions in attn_packed.c
 * define the arithmetic, which both x86 versions reproduce exactly in the
 * integer parts.
 *
 * ZC_DPBUSD(acc, u, s): acc + 8 int32 lanes, lane i += sum_{j<4} u[4i+j] s[4i+j]
 * (u unsigned bytes, s signed bytes). The maddubs form is exact here because
 * every code is < 16: a pair sum is at most 2 * 255 * 15, far from the int16
 * saturation.
 *
 * Value codes go through one transposition per tile (unpack_v) so that
 * the P.V sums need no horizontal adds: 32 bytes hold 8 channels x 4
 * consecutive tokens, and one ZC_DPBUSD against the 4 tokens' broadcast
 * weights adds 4 tokens into 8 channel lanes.
 */
#ifndef ZC_DPBUSD
#error "define ZC_DPBUSD before including attn_packed_i8_x86.h"
#endif

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* lane i of the result = sum of the 8 lanes of a_i, exact */
static inline __m256i i8x86_hsum8x8(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m256i a4, __m256i a5,
                                    __m256i a6, __m256i a7) {
    __m256i t0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    __m256i t1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a4, a5), _mm256_hadd_epi32(a6, a7));
    return _mm256_add_epi32(_mm256_permute2x128_si256(t0, t1, 0x20), _mm256_permute2x128_si256(t0, t1, 0x31));
}

static void I8X86(scores_i8)(int nt, int hd, const int8_t *qq, float qa, float bias, const uint8_t *kc, float *s) {
    __m256 vb = _mm256_set1_ps(bias), va = _mm256_set1_ps(qa);
    int t = 0;
    for (; t + 8 <= nt; t += 8) {
        const uint8_t *k0 = kc + (size_t)t * hd;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int c = 0; c < hd; c += 32) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(qq + c));
            const uint8_t *k = k0 + c;
            a0 = ZC_DPBUSD(a0, _mm256_loadu_si256((const __m256i *)k), qv);
            a1 = ZC_DPBUSD(a1, _mm256_loadu_si256((const __m256i *)(k + hd)), qv);
            a2 = ZC_DPBUSD(a2, _mm256_loadu_si256((const __m256i *)(k + 2 * hd)), qv);
            a3 = ZC_DPBUSD(a3, _mm256_loadu_si256((const __m256i *)(k + 3 * hd)), qv);
            a4 = ZC_DPBUSD(a4, _mm256_loadu_si256((const __m256i *)(k + 4 * hd)), qv);
            a5 = ZC_DPBUSD(a5, _mm256_loadu_si256((const __m256i *)(k + 5 * hd)), qv);
            a6 = ZC_DPBUSD(a6, _mm256_loadu_si256((const __m256i *)(k + 6 * hd)), qv);
            a7 = ZC_DPBUSD(a7, _mm256_loadu_si256((const __m256i *)(k + 7 * hd)), qv);
        }
        __m256i dots = i8x86_hsum8x8(a0, a1, a2, a3, a4, a5, a6, a7);
        _mm256_storeu_ps(s + t, _mm256_fmadd_ps(va, _mm256_cvtepi32_ps(dots), vb));
    }
    for (; t < nt; t++) {
        __m256i a = _mm256_setzero_si256();
        for (int c = 0; c < hd; c += 32)
            a = ZC_DPBUSD(a, _mm256_loadu_si256((const __m256i *)(kc + (size_t)t * hd + c)),
                          _mm256_loadu_si256((const __m256i *)(qq + c)));
        __m128i h = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
        s[t] = fmaf(qa, (float)_mm_cvtsi128_si32(h), bias);
    }
}

/* value_i8's layout, vi [ceil(nt/4)][hd/8][8 channels][4 tokens] (missing
 * tokens of the last group are zero codes), for 32 channels of 4 token rows
 * x0..x3: two rounds of unpacks build 4-token quads per channel; the unpacks
 * work within 128-bit lanes, so the results hold channels {0-3, 16-19},
 * {4-7, 20-23}, {8-11, 24-27}, {12-15, 28-31} and one lane swap restores
 * channel order. out: the 128 bytes of those channels in the group. */
static inline void i8x86_quad32(__m256i x0, __m256i x1, __m256i x2, __m256i x3, uint8_t *out) {
    __m256i lo01 = _mm256_unpacklo_epi8(x0, x1), hi01 = _mm256_unpackhi_epi8(x0, x1);
    __m256i lo23 = _mm256_unpacklo_epi8(x2, x3), hi23 = _mm256_unpackhi_epi8(x2, x3);
    __m256i a = _mm256_unpacklo_epi16(lo01, lo23), b = _mm256_unpackhi_epi16(lo01, lo23);
    __m256i d = _mm256_unpacklo_epi16(hi01, hi23), e = _mm256_unpackhi_epi16(hi01, hi23);
    __m256i *o = (__m256i *)out;
    _mm256_storeu_si256(o, _mm256_permute2x128_si256(a, b, 0x20));     /* channels 0..7   */
    _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(d, e, 0x20)); /* channels 8..15  */
    _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(a, b, 0x31)); /* channels 16..23 */
    _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(d, e, 0x31)); /* channels 24..31 */
}

/* acc_c = acc_c * corr + norm_c * (scale * u_c + pmin) for c in [c0, c0 + 8*n) */
static inline void i8x86_finish(const __m256i *u, int n, const float *norm, float scale, float pmin, float corr,
                                float *acc) {
    __m256 vs = _mm256_set1_ps(scale), vp = _mm256_set1_ps(pmin), vc = _mm256_set1_ps(corr);
    for (int j = 0; j < n; j++) {
        __m256 val = _mm256_fmadd_ps(vs, _mm256_cvtepi32_ps(u[j]), vp);
        __m256 prev = _mm256_mul_ps(_mm256_loadu_ps(acc + 8 * j), vc);
        _mm256_storeu_ps(acc + 8 * j, _mm256_fmadd_ps(_mm256_loadu_ps(norm + 8 * j), val, prev));
    }
}

/* zc_packed_kernels.value_i8's weights, as the scalar version computes them
 * (the same products, maximum, fused multiply-add and truncation, so the
 * same bytes; only pmin's summation order differs). */
static inline void i8x86_quantize_weights(int nt, const float *p, const float *step, const float *min, uint8_t *wq,
                                          float *wmax, float *pmin) {
    int n8 = nt & ~7, t;
    __m256 mx = _mm256_setzero_ps(), pm = _mm256_setzero_ps();
    for (t = 0; t < n8; t += 8) {
        __m256 pt = _mm256_loadu_ps(p + t);
        mx = _mm256_max_ps(mx, _mm256_mul_ps(pt, _mm256_loadu_ps(step + t)));
        pm = _mm256_fmadd_ps(pt, _mm256_loadu_ps(min + t), pm);
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    float m = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(pm), _mm256_extractf128_ps(pm, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    float pmn = _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
    for (; t < nt; t++) {
        float w = p[t] * step[t];
        m = w > m ? w : m;
        pmn += p[t] * min[t];
    }
    float inv = m > 0.0f ? 255.0f / m : 0.0f;
    __m256 vi = _mm256_set1_ps(inv), half = _mm256_set1_ps(0.5f);
    for (t = 0; t < n8; t += 8) {
        __m256 w = _mm256_mul_ps(_mm256_loadu_ps(p + t), _mm256_loadu_ps(step + t));
        __m256i q = _mm256_cvttps_epi32(_mm256_fmadd_ps(w, vi, half));
        __m128i q16 = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(wq + t), _mm_packus_epi16(q16, q16));
    }
    for (; t < nt; t++) wq[t] = (uint8_t)(int)fmaf(p[t] * step[t], inv, 0.5f);
    for (; t & 3; t++) wq[t] = 0;
    *wmax = m;
    *pmin = pmn;
}

/* u [n] (n = 8 or 4, inlined as a constant and the loops unrolled, so u stays
 * in registers; without the unrolling gcc kept u in memory): the
 * integer sums of 8n channels over ng groups of 4 tokens, v the channels'
 * first group (groups gstride bytes apart), wq the byte weights. */
static inline __attribute__((always_inline)) void i8x86_value_sums(int n, int ng, size_t gstride, const uint8_t *v,
                                                                    const uint8_t *wq, __m256i *u) {
#pragma GCC unroll 8
    for (int j = 0; j < n; j++) u[j] = _mm256_setzero_si256();
    for (int g = 0; g < ng; g++, v += gstride) {
        int32_t w4;
        memcpy(&w4, wq + 4 * g, 4);
        __m256i w = _mm256_set1_epi32(w4);
#pragma GCC unroll 8
        for (int j = 0; j < n; j++) u[j] = ZC_DPBUSD(u[j], w, _mm256_loadu_si256((const __m256i *)v + j));
    }
}

static void I8X86(value_i8)(int nt, int hd, const float *p, const float *step, const float *min, const uint8_t *vi,
                            const float *norm, float corr, uint8_t *wq, float *acc) {
    float wmax, pmin;
    i8x86_quantize_weights(nt, p, step, min, wq, &wmax, &pmin);
    float scale = wmax * (1.0f / 255.0f);
    int ng = (nt + 3) / 4;
    size_t gstride = (size_t)hd * 4; /* bytes per 4-token group */
    int c = 0;
    __m256i u[8];
    for (; c + 64 <= hd; c += 64) { /* 8 accumulators: 64 channels */
        i8x86_value_sums(8, ng, gstride, vi + (size_t)c * 4, wq, u);
        i8x86_finish(u, 8, norm + c, scale, pmin, corr, acc + c);
    }
    for (; c < hd; c += 32) { /* head_dim % 64 == 32 */
        i8x86_value_sums(4, ng, gstride, vi + (size_t)c * 4, wq, u);
        i8x86_finish(u, 4, norm + c, scale, pmin, corr, acc + c);
    }
}
