/* AVX2 kernels of the q8_0 / q4_0 KV cache (contract in kv_blocks.h).
 *
 * Scores: each 32-element block's integer dot product is formed with
 * maddubs (|x| times sign-adjusted y, as ggml does) and reduced to int32,
 * which is exact; the per-block float math then follows the scalar kernel
 * step for step, so scores are bit-identical to it. No code overflows int16
 * in maddubs: q8_0 codes lie in [-127, 127] and q4_0 codes in [-8, 7].
 * Dequantization is d * q per element in both versions: bit-identical too.
 * The softmax update uses zc_exp256 (within 2 ulp of expf) and FMA.
 */
#include <math.h>

#include "attn/attn_impl.h"
#include "kv/kv_blocks.h"

/* 16 bytes of q4_0 nibbles -> 32 int8 codes minus 8, elements 0..15 then 16..31. */
static inline __m256i q4_codes(const uint8_t *qs) {
    const __m128i m = _mm_set1_epi8(15);
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m128i lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
    __m256i x = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
    return _mm256_sub_epi8(x, _mm256_set1_epi8(8));
}

/* The 8 int32 partial sums of x[i] * y[i] over 32 int8 pairs (exact). */
static inline __m256i dot_parts(__m256i x, __m256i y) {
    __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* Transpose-reduce eight int32 vectors: lane i of the result = sum of p_i. */
static inline __m256i hsum8x8_epi32(__m256i p0, __m256i p1, __m256i p2, __m256i p3, __m256i p4, __m256i p5,
                                    __m256i p6, __m256i p7) {
    __m256i t0 = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
    __m256i t1 = _mm256_hadd_epi32(_mm256_hadd_epi32(p4, p5), _mm256_hadd_epi32(p6, p7));
    return _mm256_add_epi32(_mm256_permute2x128_si256(t0, t1, 0x20), _mm256_permute2x128_si256(t0, t1, 0x31));
}

static inline int hsum_epi32(__m256i p) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static void unpack_keys_avx2(int type, const uint8_t *k, size_t kstride, int n, int nb, int8_t *kc, float *dk) {
    for (int j = 0; j < n; j++) {
        const uint8_t *row = k + (size_t)j * kstride;
        for (int b = 0; b < nb; b++) {
            __m256i x;
            uint16_t d;
            if (type == ZC_TYPE_Q8_0) {
                const zc_block_q8_0 *blk = (const zc_block_q8_0 *)row + b;
                x = _mm256_loadu_si256((const __m256i *)blk->qs);
                d = blk->d;
            } else {
                const zc_block_q4_0 *blk = (const zc_block_q4_0 *)row + b;
                x = q4_codes(blk->qs);
                d = blk->d;
            }
            _mm256_storeu_si256((__m256i *)(kc + ((size_t)j * nb + b) * 32), x);
            dk[b * ZC_ATTN_BK + j] = _cvtsh_ss(d);
        }
    }
}

/* Eight keys at a time: their per-block integer dots are reduced together
 * (exact), then the float math is the scalar kernel's, lane by lane, with
 * separate multiplies and adds (no FMA) so the scores match it bit for bit. */
static void scores_avx2(const zc_block_q8_0 *qx, const int8_t *kc, const float *dk, int n, int nb, float *s) {
    size_t rs = (size_t)nb * 32; /* bytes per key row of codes */
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 sum = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            __m256i y = _mm256_loadu_si256((const __m256i *)qx[b].qs);
            const int8_t *x = kc + (size_t)j * rs + (size_t)b * 32;
#define KEY(i) dot_parts(_mm256_loadu_si256((const __m256i *)(x + (i) * rs)), y)
            __m256i isum = hsum8x8_epi32(KEY(0), KEY(1), KEY(2), KEY(3), KEY(4), KEY(5), KEY(6), KEY(7));
#undef KEY
            __m256 d = _mm256_mul_ps(_mm256_loadu_ps(dk + b * ZC_ATTN_BK + j), _mm256_set1_ps(_cvtsh_ss(qx[b].d)));
            sum = _mm256_add_ps(sum, _mm256_mul_ps(_mm256_cvtepi32_ps(isum), d));
        }
        _mm256_storeu_ps(s + j, sum);
    }
    for (; j < n; j++) {
        float sum = 0.0f;
        for (int b = 0; b < nb; b++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(kc + (size_t)j * rs + (size_t)b * 32));
            int isum = hsum_epi32(dot_parts(x, _mm256_loadu_si256((const __m256i *)qx[b].qs)));
            sum += (float)isum * (dk[b * ZC_ATTN_BK + j] * _cvtsh_ss(qx[b].d));
        }
        s[j] = sum;
    }
}

/* 32 int8 codes times d -> out[32]. */
static inline void scale_codes(__m256i x, float d, float *out) {
    __m256 vd = _mm256_set1_ps(d);
    __m128i lo = _mm256_castsi256_si128(x), hi = _mm256_extracti128_si256(x, 1);
    _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), vd));
    _mm256_storeu_ps(out + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), vd));
    _mm256_storeu_ps(out + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), vd));
    _mm256_storeu_ps(out + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), vd));
}

static void dequant_avx2(int type, const uint8_t *v, size_t vstride, int n, int nb, float *out) {
    for (int j = 0; j < n; j++) {
        const uint8_t *row = v + (size_t)j * vstride;
        float *o = out + (size_t)j * nb * 32;
        for (int b = 0; b < nb; b++) {
            if (type == ZC_TYPE_Q8_0) {
                const zc_block_q8_0 *x = (const zc_block_q8_0 *)row + b;
                scale_codes(_mm256_loadu_si256((const __m256i *)x->qs), _cvtsh_ss(x->d), o + 32 * b);
            } else {
                const zc_block_q4_0 *x = (const zc_block_q4_0 *)row + b;
                scale_codes(q4_codes(x->qs), _cvtsh_ss(x->d), o + 32 * b);
            }
        }
    }
}

/* hd is a multiple of 32 here (the policy refuses other head dims). */
static void update_avx2(float *s, int n, const float *vt, int hd, float *m, float *l, float *acc) {
    int j = 0;
    __m256 vmax = _mm256_set1_ps(*m);
    for (; j + 8 <= n; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(s + j));
    float mx = zc_hmax256(vmax);
    for (; j < n; j++)
        if (s[j] > mx) mx = s[j];
    float corr = expf(*m - mx); /* 0 while *m is still -inf */

    /* p = exp(s - mx) in place; lanes past n are masked off */
    __m256 vm = _mm256_set1_ps(mx), vsum = _mm256_setzero_ps();
    for (j = 0; j < n; j += 8) {
        __m256i live = zc_mask8(n - j);
        __m256 p = zc_exp256(_mm256_sub_ps(_mm256_maskload_ps(s + j, live), vm));
        p = _mm256_and_ps(p, _mm256_castsi256_ps(live));
        _mm256_maskstore_ps(s + j, live, p);
        vsum = _mm256_add_ps(vsum, p);
    }
    *l = *l * corr + zc_hsum256(vsum);
    *m = mx;

    __m256 vc = _mm256_set1_ps(corr);
    for (int d = 0; d < hd; d += 32) {
        __m256 a0 = _mm256_mul_ps(_mm256_loadu_ps(acc + d), vc);
        __m256 a1 = _mm256_mul_ps(_mm256_loadu_ps(acc + d + 8), vc);
        __m256 a2 = _mm256_mul_ps(_mm256_loadu_ps(acc + d + 16), vc);
        __m256 a3 = _mm256_mul_ps(_mm256_loadu_ps(acc + d + 24), vc);
        for (j = 0; j < n; j++) {
            const float *vr = vt + (size_t)j * hd + d;
            __m256 p = _mm256_set1_ps(s[j]);
            a0 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vr), a0);
            a1 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vr + 8), a1);
            a2 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vr + 16), a2);
            a3 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vr + 24), a3);
        }
        _mm256_storeu_ps(acc + d, a0);
        _mm256_storeu_ps(acc + d + 8, a1);
        _mm256_storeu_ps(acc + d + 16, a2);
        _mm256_storeu_ps(acc + d + 24, a3);
    }
}

const zc_kvb_kernels zc_kvb_avx2 = {unpack_keys_avx2, scores_avx2, dequant_avx2, update_avx2};
