/* The AVX-512 VNNI GEMM on repacked weights (layout: matmul_packed.h).
 *
 * Per group block: the 16 rows' codes are 8 zmm registers (q8_0 loads them,
 * q4_0 splits 4 loads into low and high nibbles), each holding 4 elements of
 * each row. For each activation row, 8 VPDPBUSD with the row's 4-byte code
 * groups broadcast give the 16 integer block sums, started from -bias Σ x;
 * then one conversion, one multiply by d_w * d_x and one add: 13
 * instructions for 1024 flops, where the row-major kernel needs about 100.
 * The multiply and the add stay separate (no FMA) so that the bits equal
 * the scalar kernel's.
 *
 * Like matmul_avx512.c, compiled without -m flags; the instruction sets are
 * enabled for the functions below by a target region.
 */
#include "kernels/matmul_packed.h"

#include <immintrin.h>

#include "quant/ggml_blocks.h"
#include "util/cpu.h"

#if defined(__x86_64__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL8 _Pragma("GCC unroll 8") /* registers, not stack arrays: every k and j loop is unrolled */

/* The 8 code vectors of one group block: w[j] holds elements 4j..4j+3 of
 * each of the 16 rows, as unsigned bytes. */
ALWAYS_INLINE void group_codes(int type, const uint8_t *blk, __m512i w[8]) {
    const uint8_t *q = blk + 2 * ZC_PACK_ROWS;
    if (type == ZC_TYPE_Q8_0) {
        UNROLL8 for (int j = 0; j < 8; j++) w[j] = _mm512_loadu_si512(q + 64 * j);
        return;
    }
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    UNROLL8 for (int j = 0; j < 4; j++) { /* q4_0: byte k holds elements 4j+k (low) and 16+4j+k (high) */
        const __m512i v = _mm512_loadu_si512(q + 64 * j);
        w[j] = _mm512_and_si512(v, low4);
        w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
    }
}

ALWAYS_INLINE void gemm_nx(int type, int64_t nb, const uint8_t *group, const zc_act_q8 *const act[],
                           const int32_t *const sums[], int nx, float out[][ZC_PACK_ROWS]) {
    const int bias = type == ZC_TYPE_Q8_0 ? 128 : 8;
    const size_t bytes = type == ZC_TYPE_Q8_0 ? 544 : 288;
    __m512 acc[ZC_PACK_NX];
    UNROLL8 for (int k = 0; k < nx; k++) acc[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk = group + (size_t)i * bytes;
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        __m512i w[8];
        group_codes(type, blk, w);
        UNROLL8 for (int k = 0; k < nx; k++) {
            const zc_act_q8 *a = &act[k][i];
            const int32_t *x4 = (const int32_t *)(const void *)a->qs; /* 4 codes at a time */
            __m512i s = _mm512_set1_epi32(-bias * sums[k][i]);
            UNROLL8 for (int j = 0; j < 8; j++) s = _mm512_dpbusd_epi32(s, w[j], _mm512_set1_epi32(x4[j]));
            const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(a->d));
            acc[k] = _mm512_add_ps(acc[k], _mm512_mul_ps(_mm512_cvtepi32_ps(s), scale));
        }
    }
    UNROLL8 for (int k = 0; k < nx; k++) _mm512_storeu_ps(out[k], acc[k]);
}

/* nx as a compile-time constant, so that the k loops unroll. */
#define GEMM_CASE(n) \
    case n: gemm_nx(type, nb, group, act, sums, n, out); break;
#define GEMM_TYPE(name, T)                                                                                        \
    static void name(int64_t nb, const uint8_t *group, const zc_act_q8 *const act[], const int32_t *const sums[], \
                     int nx, float out[][ZC_PACK_ROWS]) {                                                        \
        const int type = T;                                                                                      \
        switch (nx) {                                                                                            \
            GEMM_CASE(1) GEMM_CASE(2) GEMM_CASE(3) GEMM_CASE(4) GEMM_CASE(5) GEMM_CASE(6) GEMM_CASE(7)           \
        default: gemm_nx(type, nb, group, act, sums, 8, out); break;                                              \
        }                                                                                                        \
    }
GEMM_TYPE(gemm_q8_0, ZC_TYPE_Q8_0)
GEMM_TYPE(gemm_q4_0, ZC_TYPE_Q4_0)

static void gemm(int type, int64_t nb, const uint8_t *group, const zc_act_q8 *const act[],
                 const int32_t *const sums[], int nx, float out[][ZC_PACK_ROWS]) {
    (type == ZC_TYPE_Q8_0 ? gemm_q8_0 : gemm_q4_0)(nb, group, act, sums, nx, out);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

zc_gemm_fn zc_gemm_avx512vnni(void) { return zc_cpu_has_avx512vnni() ? gemm : NULL; }

#else

zc_gemm_fn zc_gemm_avx512vnni(void) { return NULL; }

#endif
