/* AVX2 Q8_0 and Q4_0 row quantizers, byte-identical to the scalar
 * references quant_q8_0 / quant_q4_0 in ggml_blocks.c (ggml's
 * quantize_row_q8_0_ref / quantize_row_q4_0_ref) for every input, NaN and
 * infinities included.
 *
 * Why each step is exact:
 * - The block maximum is a max over |x|, which is order-independent; NaN
 *   elements are skipped as fmaxf / the scalar `amax < fabsf(x)` skip them
 *   (maxps returns its second operand when either is NaN, so |x| goes first
 *   and the accumulator, never NaN, second).
 * - d and id are computed per block in scalar code with the same operations
 *   as the reference; elements use one multiply (and for Q4_0 one separate
 *   add: no FMA, which would skip the product's rounding).
 * - roundf rounds half away from zero; _mm256_round_ps has no such mode, so
 *   round = trunc(v) + sign(v) where |v - trunc(v)| >= 0.5. v - trunc(v) is
 *   exact in float and trunc(v) +- 1 is exact where it matters (|v| < 2^23;
 *   above that v is already an integer). For inf/NaN the difference is NaN,
 *   the compare false and v passes through as roundf would.
 * - The scalar code converts to int8_t through cvttss2si (32-bit, INT_MIN
 *   for NaN and out of range) and keeps the low byte; cvttps2dq gives the
 *   same int32 and the byte packing below keeps the low byte (masked before
 *   the saturating packs, so no value saturates differently). Those cases
 *   are reached by blocks whose d underflows (e.g. all-denormal blocks give
 *   id = inf), and match the reference as compiled on x86.
 * - Q4_0 clamps the sign-extended byte at 15 (signed byte min) and packs
 *   lo | hi << 4 truncated to 8 bits, as the scalar int arithmetic does. */
#include <immintrin.h>

#include "quant/ggml_blocks.h"
#include "util/fp16.h"

/* Low byte of each of 32 int32 (a = elements 0..7, ..., d = 24..31), in order. */
static inline __m256i low_bytes_32(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ff = _mm256_set1_epi32(0xff);
    a = _mm256_and_si256(a, ff);
    b = _mm256_and_si256(b, ff);
    c = _mm256_and_si256(c, ff);
    d = _mm256_and_si256(d, ff);
    /* per 128-bit lane: ab = (0-3, 8-11 | 4-7, 12-15), cd = (16-19, 24-27 | 20-23, 28-31) */
    __m256i ab = _mm256_packus_epi32(a, b), cd = _mm256_packus_epi32(c, d);
    /* 4-byte groups: 0-3, 8-11, 16-19, 24-27 | 4-7, 12-15, 20-23, 28-31 */
    __m256i r = _mm256_packus_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* roundf: half away from zero (see the header comment). */
static inline __m256 round_away(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    __m256 up = _mm256_and_ps(_mm256_cmp_ps(frac, half, _CMP_GE_OQ), _mm256_or_ps(one, _mm256_and_ps(v, sign)));
    return _mm256_add_ps(t, up);
}

void zc_quant_q8_0_avx2(const float *x, zc_block_q8_0 *b, int64_t nb) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), zero = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++, x += ZC_QK) {
        __m256 v[4], m[4];
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m[k] = _mm256_max_ps(_mm256_and_ps(v[k], abs_mask), zero); /* NaN -> 0 */
        }
        const float amax = hmax8(_mm256_max_ps(_mm256_max_ps(m[0], m[1]), _mm256_max_ps(m[2], m[3])));
        const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        b[i].d = zc_f32_to_fp16(d);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v[k], vid)));
        _mm256_storeu_si256((__m256i *)b[i].qs, low_bytes_32(q[0], q[1], q[2], q[3]));
    }
}

void zc_quant_q4_0_avx2(const float *x, zc_block_q4_0 *b, int64_t nb) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), zero = _mm256_setzero_ps();
    const __m256 bias = _mm256_set1_ps(8.5f);
    for (int64_t i = 0; i < nb; i++, x += ZC_QK) {
        __m256 v[4], a[4], m[4];
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            a[k] = _mm256_and_ps(v[k], abs_mask);
            m[k] = _mm256_max_ps(a[k], zero); /* NaN -> 0 */
        }
        const float amax = hmax8(_mm256_max_ps(_mm256_max_ps(m[0], m[1]), _mm256_max_ps(m[2], m[3])));
        /* signed_absmax: the first element of magnitude amax, or +0 when amax
         * is 0 (the reference never updates its initial 0.0f then, even for -0) */
        float max = 0.0f;
        if (amax > 0.0f) {
            const __m256 va = _mm256_set1_ps(amax);
            uint32_t hit = 0;
            for (int k = 0; k < 4; k++)
                hit |= (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a[k], va, _CMP_EQ_OQ)) << (8 * k);
            max = x[__builtin_ctz(hit)]; /* hit != 0: amax is one of the |x| */
        }
        const float d = max / -8.0f, id = d ? 1.0f / d : 0.0f;
        b[i].d = zc_f32_to_fp16(d);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v[k], vid), bias));
        /* (int8_t) then min 15, elements 0..31 in order */
        __m256i c = _mm256_min_epi8(low_bytes_32(q[0], q[1], q[2], q[3]), _mm256_set1_epi8(15));
        __m128i lo = _mm256_castsi256_si128(c), hi = _mm256_extracti128_si256(c, 1);
        hi = _mm_and_si128(_mm_slli_epi16(hi, 4), _mm_set1_epi8((char)0xf0)); /* (hi << 4) & 0xff */
        _mm_storeu_si128((__m128i *)b[i].qs, _mm_or_si128(lo, hi));
    }
}
