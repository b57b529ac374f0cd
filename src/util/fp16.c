/* fp32 <-> fp16 rows: the scalar references and the dispatch (fp16.h). */
#include "util/fp16.h"

#include "util/cpu.h"

void zc_f32_to_fp16_row_scalar(const float *src, zc_fp16 *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = zc_f32_to_fp16(src[i]);
}

void zc_fp16_to_f32_row_scalar(const zc_fp16 *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = zc_fp16_to_f32(src[i]);
}

void zc_f32_to_fp16_row(const float *src, zc_fp16 *dst, size_t n) {
    if (zc_cpu_has_avx2())
        zc_f32_to_fp16_row_avx2(src, dst, n);
    else
        zc_f32_to_fp16_row_scalar(src, dst, n);
}

void zc_fp16_to_f32_row(const zc_fp16 *src, float *dst, size_t n) {
    if (zc_cpu_has_avx2())
        zc_fp16_to_f32_row_avx2(src, dst, n);
    else
        zc_fp16_to_f32_row_scalar(src, dst, n);
}
