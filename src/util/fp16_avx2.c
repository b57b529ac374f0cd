/* fp32 <-> fp16 rows with F16C, 8 at a time (round to nearest even, as the
 * scalar reference); the tail goes through the scalar conversion. */
#include <immintrin.h>

#include "util/fp16.h"

void zc_f32_to_fp16_row_avx2(const float *src, zc_fp16 *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = zc_f32_to_fp16(src[i]);
}

void zc_fp16_to_f32_row_avx2(const zc_fp16 *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = zc_fp16_to_f32(src[i]);
}
