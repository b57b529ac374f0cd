/* Internal to src/kernels: x86 helpers shared by the AVX2 and AVX-512
 * kernel files. Include it from a file compiled for (or a region targeted
 * at) AVX2 + FMA + F16C or more. */
#ifndef ZC_KERNELS_MATMUL_X86_H
#define ZC_KERNELS_MATMUL_X86_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 4")

/* Dispatcher over the compile-time tile width: name(n, w, x, xs, nx, out)
 * calls name_nx(..., nx) with nx a constant so the k loops unroll. */
#define TILED(name)                                                                      \
    static void name(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) { \
        switch (nx) {                                                                      \
        case 1: name##_nx(n, w, x, xs, 1, out); break;                                     \
        case 2: name##_nx(n, w, x, xs, 2, out); break;                                     \
        case 3: name##_nx(n, w, x, xs, 3, out); break;                                     \
        default: name##_nx(n, w, x, xs, 4, out); break;                                    \
        }                                                                                  \
    }

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline const void *act_row(const void *x, size_t xs, int k) { return (const char *)x + (size_t)k * xs; }

#endif
