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

ALWAYS_INLINE void gemm_nx(int type, int64_t nb, const uint8_t *group, const void *const acts[],
                           const int32_t *const sums[], int nx, float out[][ZC_PACK_ROWS]) {
    const zc_act_q8 *const *act = (const zc_act_q8 *const *)acts;
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
    static void name(int64_t nb, const uint8_t *group, const void *const act[], const int32_t *const sums[],      \
                     int nx, float out[][ZC_PACK_ROWS]) {                                                        \
        const int type = T;                                                                                      \
        switch (nx) {                                                                                            \
            GEMM_CASE(1) GEMM_CASE(2) GEMM_CASE(3) GEMM_CASE(4) GEMM_CASE(5) GEMM_CASE(6) GEMM_CASE(7)           \
        default: gemm_nx(type, nb, group, act, sums, 8, out); break;                                              \
        }                                                                                                        \
    }
GEMM_TYPE(gemm_q8_0, ZC_TYPE_Q8_0)
GEMM_TYPE(gemm_q4_0, ZC_TYPE_Q4_0)

/* q4_K: one super-block (256 elements) of 16 rows per step. For each pair p
 * of sub-blocks, 8 loads give the codes of both (low and high nibbles); each
 * activation row takes 16 VPDPBUSD into two sub-block sums, weighted by the
 * sub-blocks' scales (VPMULLD) into sumi; the mins take one VPDPWSSD per
 * pair. Then, per row, d d_x sumi - dmin d_x summ in the scalar kernel's
 * order. 4 activation rows at a time keep it all in registers. */
#define KX 4
ALWAYS_INLINE void gemmk_nx(int64_t nb, const uint8_t *group, const zc_act_q8k *const act[],
                            const int32_t *const sums[], int nx, float out[][ZC_PACK_ROWS]) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    __m512 acc[KX];
    UNROLL8 for (int k = 0; k < nx; k++) acc[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk = group + (size_t)i * ZC_PACK_Q4K_BYTES;
        const uint8_t *sc = blk + 64, *mn = blk + 192, *q = blk + 448;
        __m512i sumi[KX], summ[KX];
        UNROLL8 for (int k = 0; k < nx; k++) sumi[k] = summ[k] = _mm512_setzero_si512();
        for (int p = 0; p < 4; p++) {
            /* With 1 or 2 activation rows, even and odd j go to separate sums: shorter dependency chains
             * (decode); with more, the rows give enough independent chains. */
            const int split = nx <= 2 ? 2 : 1;
            __m512i slo[KX][2], shi[KX][2];
            UNROLL8 for (int k = 0; k < nx; k++) slo[k][0] = shi[k][0] = slo[k][1] = shi[k][1] = _mm512_setzero_si512();
            UNROLL8 for (int j = 0; j < 8; j++) {
                const __m512i v = _mm512_loadu_si512(q + 512 * p + 64 * j);
                const __m512i lo = _mm512_and_si512(v, low4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
                UNROLL8 for (int k = 0; k < nx; k++) {
                    const int32_t *x4 = (const int32_t *)(const void *)(act[k][i].qs + 64 * p);
                    slo[k][j % split] = _mm512_dpbusd_epi32(slo[k][j % split], lo, _mm512_set1_epi32(x4[j]));
                    shi[k][j % split] = _mm512_dpbusd_epi32(shi[k][j % split], hi, _mm512_set1_epi32(x4[8 + j]));
                }
            }
            const __m512i sclo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sc + 32 * p)));
            const __m512i schi = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sc + 32 * p + 16)));
            const __m512i mnp = _mm512_loadu_si512(mn + 64 * p);
            UNROLL8 for (int k = 0; k < nx; k++) {
                const __m512i lo = _mm512_add_epi32(slo[k][0], slo[k][1]), hi = _mm512_add_epi32(shi[k][0], shi[k][1]);
                sumi[k] = _mm512_add_epi32(sumi[k], _mm512_add_epi32(_mm512_mullo_epi32(lo, sclo), _mm512_mullo_epi32(hi, schi)));
                summ[k] = _mm512_dpwssd_epi32(summ[k], mnp, _mm512_set1_epi32(sums[k][4 * i + p]));
            }
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32)));
        UNROLL8 for (int k = 0; k < nx; k++) {
            const __m512 dx = _mm512_set1_ps(act[k][i].d);
            const __m512 t = _mm512_sub_ps(_mm512_mul_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(sumi[k])),
                                           _mm512_mul_ps(_mm512_mul_ps(dmin, dx), _mm512_cvtepi32_ps(summ[k])));
            acc[k] = _mm512_add_ps(acc[k], t);
        }
    }
    UNROLL8 for (int k = 0; k < nx; k++) _mm512_storeu_ps(out[k], acc[k]);
}

static void gemm_q4_K(int64_t nb, const uint8_t *group, const void *const act[], const int32_t *const sums[], int nx,
                      float out[][ZC_PACK_ROWS]) {
    const zc_act_q8k *const *a = (const zc_act_q8k *const *)act;
    for (int k0 = 0; k0 < nx; k0 += KX) {
        switch (nx - k0 < KX ? nx - k0 : KX) {
        case 1: gemmk_nx(nb, group, a + k0, sums + k0, 1, out + k0); break;
        case 2: gemmk_nx(nb, group, a + k0, sums + k0, 2, out + k0); break;
        case 3: gemmk_nx(nb, group, a + k0, sums + k0, 3, out + k0); break;
        default: gemmk_nx(nb, group, a + k0, sums + k0, KX, out + k0); break;
        }
    }
}

static void gemm(int type, int64_t nb, const uint8_t *group, const void *const act[], const int32_t *const sums[],
                 int nx, float out[][ZC_PACK_ROWS]) {
    switch (type) {
    case ZC_TYPE_Q8_0: gemm_q8_0(nb, group, act, sums, nx, out); break;
    case ZC_TYPE_Q4_0: gemm_q4_0(nb, group, act, sums, nx, out); break;
    default: gemm_q4_K(nb, group, act, sums, nx, out); break;
    }
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
