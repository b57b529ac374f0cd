/* IEEE half and bfloat16 conversions (scalar, bit-exact, round-to-nearest-even).
 * SIMD code converts with F16C directly; these are the references. */
#ifndef ZC_UTIL_FP16_H
#define ZC_UTIL_FP16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint16_t zc_fp16;
typedef uint16_t zc_bf16;

static inline uint32_t zc_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float zc_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float zc_fp16_to_f32(zc_fp16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return zc_bits_f32(sign | 0x7f800000u | (man << 13)); /* inf/nan */
    if (exp == 0) {                                                        /* zero/subnormal */
        float v = (float)man * (1.0f / 16777216.0f);                       /* man * 2^-24 */
        return sign ? -v : v;
    }
    return zc_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

static inline zc_fp16 zc_f32_to_fp16(float f) {
    uint32_t x = zc_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) return (zc_fp16)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) return (zc_fp16)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (absx < 0x38800000u) {                                 /* below fp16 normal range */
        /* subnormal: value = absx as float; result = round(value * 2^24) */
        float v = zc_bits_f32(absx) * 16777216.0f;
        /* round half to even via the float's own rounding when adding 2^23 */
        float r = (v + 8388608.0f) - 8388608.0f;
        return (zc_fp16)(sign | (uint32_t)r);
    }
    uint32_t mant_odd = (absx >> 13) & 1;
    absx += 0xfffu + mant_odd; /* round to nearest even at bit 13 */
    return (zc_fp16)(sign | ((absx - 0x38000000u) >> 13));
}

static inline float zc_bf16_to_f32(zc_bf16 h) { return zc_bits_f32((uint32_t)h << 16); }

static inline zc_bf16 zc_f32_to_bf16(float f) {
    uint32_t x = zc_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (zc_bf16)((x >> 16) | 0x40); /* quiet nan */
    x += 0x7fffu + ((x >> 16) & 1);
    return (zc_bf16)(x >> 16);
}

/* Rows: dst[i] = zc_f32_to_fp16(src[i]) / zc_fp16_to_f32(src[i]) for i < n,
 * with F16C when the CPU has AVX2 (bit-identical to the scalar loops for
 * every non-NaN input; a NaN stays a NaN). src/util/fp16.c, fp16_avx2.c. */
void zc_f32_to_fp16_row(const float *src, zc_fp16 *dst, size_t n);
void zc_fp16_to_f32_row(const zc_fp16 *src, float *dst, size_t n);
void zc_f32_to_fp16_row_scalar(const float *src, zc_fp16 *dst, size_t n);
void zc_fp16_to_f32_row_scalar(const zc_fp16 *src, float *dst, size_t n);
void zc_f32_to_fp16_row_avx2(const float *src, zc_fp16 *dst, size_t n);
void zc_fp16_to_f32_row_avx2(const zc_fp16 *src, float *dst, size_t n);

#endif
