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
#include "util/target_avx512.h"

#if defined(__x86_64__)

ZC_TARGET_AVX512_BEGIN

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

/* q8_0 and q4_0, two groups (32 rows) at once: each activation broadcast
 * then feeds two VPDPBUSD and each weight vector four, 6 loads per 8
 * instead of 9 (a core issues 2 loads and 2 VPDPBUSD per cycle, so the
 * one-group kernel is bound by its loads). Per row and activation the same
 * integer sum, conversion, scaling and add as gemm_nx: the same bits. */
#define G2X 4
ALWAYS_INLINE void gemm2_nx(int type, int64_t nb, const uint8_t *g0, const uint8_t *g1, const zc_act_q8 *const act[],
                            const int32_t *const sums[], int nx, float out0[][ZC_PACK_ROWS],
                            float out1[][ZC_PACK_ROWS]) {
    const int bias = type == ZC_TYPE_Q8_0 ? 128 : 8;
    const size_t bytes = type == ZC_TYPE_Q8_0 ? 544 : 288;
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    __m512 acc0[G2X], acc1[G2X];
    UNROLL8 for (int k = 0; k < nx; k++) acc0[k] = acc1[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *b0 = g0 + (size_t)i * bytes, *b1 = g1 + (size_t)i * bytes;
        const uint8_t *q0 = b0 + 2 * ZC_PACK_ROWS, *q1 = b1 + 2 * ZC_PACK_ROWS;
        __m512i s0[G2X], s1[G2X];
        UNROLL8 for (int k = 0; k < nx; k++) s0[k] = s1[k] = _mm512_set1_epi32(-bias * sums[k][i]);
        if (type == ZC_TYPE_Q8_0) {
            UNROLL8 for (int j = 0; j < 8; j++) {
                const __m512i w0 = _mm512_loadu_si512(q0 + 64 * j), w1 = _mm512_loadu_si512(q1 + 64 * j);
                UNROLL8 for (int k = 0; k < nx; k++) {
                    const __m512i x = _mm512_set1_epi32(((const int32_t *)(const void *)act[k][i].qs)[j]);
                    s0[k] = _mm512_dpbusd_epi32(s0[k], w0, x);
                    s1[k] = _mm512_dpbusd_epi32(s1[k], w1, x);
                }
            }
        } else {
            UNROLL8 for (int j = 0; j < 4; j++) { /* elements 4j.. (low nibbles) and 16+4j.. (high) */
                const __m512i v0 = _mm512_loadu_si512(q0 + 64 * j), v1 = _mm512_loadu_si512(q1 + 64 * j);
                const __m512i l0 = _mm512_and_si512(v0, low4), h0 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), low4);
                const __m512i l1 = _mm512_and_si512(v1, low4), h1 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), low4);
                UNROLL8 for (int k = 0; k < nx; k++) {
                    const int32_t *x4 = (const int32_t *)(const void *)act[k][i].qs;
                    const __m512i xl = _mm512_set1_epi32(x4[j]), xh = _mm512_set1_epi32(x4[j + 4]);
                    s0[k] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(s0[k], l0, xl), h0, xh);
                    s1[k] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(s1[k], l1, xl), h1, xh);
                }
            }
        }
        const __m512 d0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)b0));
        const __m512 d1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)b1));
        UNROLL8 for (int k = 0; k < nx; k++) {
            const __m512 dx = _mm512_set1_ps(act[k][i].d);
            acc0[k] = _mm512_add_ps(acc0[k], _mm512_mul_ps(_mm512_cvtepi32_ps(s0[k]), _mm512_mul_ps(d0, dx)));
            acc1[k] = _mm512_add_ps(acc1[k], _mm512_mul_ps(_mm512_cvtepi32_ps(s1[k]), _mm512_mul_ps(d1, dx)));
        }
    }
    UNROLL8 for (int k = 0; k < nx; k++) {
        _mm512_storeu_ps(out0[k], acc0[k]);
        _mm512_storeu_ps(out1[k], acc1[k]);
    }
}

#define GEMM2_TYPE(name, T)                                                                                      \
    static void name(int64_t nb, const uint8_t *g0, const uint8_t *g1, const void *const act[],                 \
                     const int32_t *const sums[], int nx, float out0[][ZC_PACK_ROWS], float out1[][ZC_PACK_ROWS]) { \
        const zc_act_q8 *const *a = (const zc_act_q8 *const *)act;                                              \
        for (int k0 = 0; k0 < nx; k0 += G2X) {                                                                  \
            switch (nx - k0 < G2X ? nx - k0 : G2X) {                                                            \
            case 1: gemm2_nx(T, nb, g0, g1, a + k0, sums + k0, 1, out0 + k0, out1 + k0); break;                 \
            case 2: gemm2_nx(T, nb, g0, g1, a + k0, sums + k0, 2, out0 + k0, out1 + k0); break;                 \
            case 3: gemm2_nx(T, nb, g0, g1, a + k0, sums + k0, 3, out0 + k0, out1 + k0); break;                 \
            default: gemm2_nx(T, nb, g0, g1, a + k0, sums + k0, G2X, out0 + k0, out1 + k0); break;              \
            }                                                                                                    \
        }                                                                                                        \
    }
GEMM2_TYPE(gemm2_q8_0, ZC_TYPE_Q8_0)
GEMM2_TYPE(gemm2_q4_0, ZC_TYPE_Q4_0)

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

/* q6_K: one super-block (16 sub-blocks of 16, signed 8-bit scales, codes
 * q - 32 in 6 bits) of 16 rows per step, in the format's own bytes: for
 * each half h and 4-byte column k, the low bits A = ql[4k..], B =
 * ql[32+4k..] and the high bits H = qh[4k..] give the unsigned codes (q) of
 * elements 4k+j, 32+4k+j, 64+4k+j, 96+4k+j of the half. Two passes per half
 * (k < 4, k >= 4) each fill 4 sub-block sums per activation row, weighted by
 * their scales (VPMULLD) into sumi. The -32 is Σ_g sc_g (-32 Σ_g x): one
 * VPDPWSSD per sub-block pair with the activation's sums, started first. */
#define K6 4
ALWAYS_INLINE void gemm6_nx(int64_t nb, const uint8_t *group, const zc_act_q8k *const act[],
                            const int32_t *const sums[], int nx, float out[][ZC_PACK_ROWS]) {
    const __m512i low4 = _mm512_set1_epi8(0x0F), low2 = _mm512_set1_epi8(0x03);
    __m512 acc[K6];
    UNROLL8 for (int k = 0; k < nx; k++) acc[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk = group + (size_t)i * ZC_PACK_Q6K_BYTES;
        const uint8_t *scp = blk + 32, *ql = blk + 288, *qh = blk + 288 + 2048;
        __m512i sumi[K6];
        UNROLL8 for (int k = 0; k < nx; k++) sumi[k] = _mm512_setzero_si512();
        UNROLL8 for (int p = 0; p < 8; p++) { /* the scales' pairs (sub-blocks 2p, 2p+1): Σ_g sc_g Σ_g x */
            const __m512i pair = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(scp + 32 * p)));
            UNROLL8 for (int k = 0; k < nx; k++)
                sumi[k] = _mm512_dpwssd_epi32(sumi[k], pair, _mm512_set1_epi32(sums[k][8 * i + p]));
        }
        UNROLL8 for (int k = 0; k < nx; k++) sumi[k] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sumi[k], 5));
        for (int h = 0; h < 2; h++)
            for (int pass = 0; pass < 2; pass++) {
                __m512i sb[K6][4]; /* sub-blocks 8h + 2t + pass, t < 4 */
                UNROLL8 for (int k = 0; k < nx; k++) sb[k][0] = sb[k][1] = sb[k][2] = sb[k][3] = _mm512_setzero_si512();
                UNROLL8 for (int kk = 4 * pass; kk < 4 * pass + 4; kk++) {
                    const __m512i A = _mm512_loadu_si512(ql + 1024 * h + 64 * kk);
                    const __m512i B = _mm512_loadu_si512(ql + 1024 * h + 64 * (8 + kk));
                    const __m512i H = _mm512_loadu_si512(qh + 512 * h + 64 * kk);
                    __m512i e[4];
                    e[0] = _mm512_or_si512(_mm512_and_si512(A, low4), _mm512_slli_epi16(_mm512_and_si512(H, low2), 4));
                    e[1] = _mm512_or_si512(_mm512_and_si512(B, low4),
                                           _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(H, 2), low2), 4));
                    e[2] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(A, 4), low4),
                                           _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(H, 4), low2), 4));
                    e[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(B, 4), low4),
                                           _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(H, 6), low2), 4));
                    UNROLL8 for (int k = 0; k < nx; k++) {
                        const int32_t *x4 = (const int32_t *)(const void *)(act[k][i].qs + 128 * h);
                        UNROLL8 for (int t = 0; t < 4; t++)
                            sb[k][t] = _mm512_dpbusd_epi32(sb[k][t], e[t], _mm512_set1_epi32(x4[8 * t + kk]));
                    }
                }
                UNROLL8 for (int t = 0; t < 4; t++) { /* sc of sub-block 8h + 2t + pass: a half of pair 4h + t */
                    const __m512i pair = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(scp + 32 * (4 * h + t))));
                    const __m512i sc = pass ? _mm512_srai_epi32(pair, 16) : _mm512_srai_epi32(_mm512_slli_epi32(pair, 16), 16);
                    UNROLL8 for (int k = 0; k < nx; k++) sumi[k] = _mm512_add_epi32(sumi[k], _mm512_mullo_epi32(sb[k][t], sc));
                }
            }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        UNROLL8 for (int k = 0; k < nx; k++)
            acc[k] = _mm512_add_ps(acc[k], _mm512_mul_ps(_mm512_mul_ps(d, _mm512_set1_ps(act[k][i].d)),
                                                         _mm512_cvtepi32_ps(sumi[k])));
    }
    UNROLL8 for (int k = 0; k < nx; k++) _mm512_storeu_ps(out[k], acc[k]);
}

static void gemm_q6_K(int64_t nb, const uint8_t *group, const void *const act[], const int32_t *const sums[], int nx,
                      float out[][ZC_PACK_ROWS]) {
    const zc_act_q8k *const *a = (const zc_act_q8k *const *)act;
    for (int k0 = 0; k0 < nx; k0 += K6) {
        switch (nx - k0 < K6 ? nx - k0 : K6) {
        case 1: gemm6_nx(nb, group, a + k0, sums + k0, 1, out + k0); break;
        case 2: gemm6_nx(nb, group, a + k0, sums + k0, 2, out + k0); break;
        case 3: gemm6_nx(nb, group, a + k0, sums + k0, 3, out + k0); break;
        default: gemm6_nx(nb, group, a + k0, sums + k0, K6, out + k0); break;
        }
    }
}

/* f16 and bf16: group block c is column c of the 16 rows (32 bytes); each
 * activation row keeps two partial sums (even and odd columns, added at the
 * end) whatever nx, so that a row's result does not depend on its
 * neighbours and decode (nx = 1) still has two FMA chains. Float weights take
 * fp32 activations (act[k] = x row k), as the row-major kernels do. */
ALWAYS_INLINE __m512 column16(int type, const uint8_t *p) {
    const __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return type == ZC_TYPE_F16 ? _mm512_cvtph_ps(h)
                               : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); /* bf16 */
}

ALWAYS_INLINE void gemmf_nx(int type, int64_t cols, const uint8_t *group, const float *const x[], int nx,
                            float out[][ZC_PACK_ROWS]) {
    __m512 acc[ZC_PACK_NX][2];
    UNROLL8 for (int k = 0; k < nx; k++) acc[k][0] = acc[k][1] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 2 <= cols; c += 2) {
        const __m512 w0 = column16(type, group + 32 * c), w1 = column16(type, group + 32 * (c + 1));
        UNROLL8 for (int k = 0; k < nx; k++) {
            acc[k][0] = _mm512_fmadd_ps(w0, _mm512_set1_ps(x[k][c]), acc[k][0]);
            acc[k][1] = _mm512_fmadd_ps(w1, _mm512_set1_ps(x[k][c + 1]), acc[k][1]);
        }
    }
    if (c < cols) {
        const __m512 w0 = column16(type, group + 32 * c);
        UNROLL8 for (int k = 0; k < nx; k++) acc[k][0] = _mm512_fmadd_ps(w0, _mm512_set1_ps(x[k][c]), acc[k][0]);
    }
    UNROLL8 for (int k = 0; k < nx; k++) _mm512_storeu_ps(out[k], _mm512_add_ps(acc[k][0], acc[k][1]));
}

#define GEMMF_TYPE(name, T)                                                                                       \
    static void name(int64_t cols, const uint8_t *group, const void *const act[], int nx, float out[][ZC_PACK_ROWS]) { \
        const float *const *x = (const float *const *)act;                                                       \
        switch (nx) {                                                                                            \
        case 1: gemmf_nx(T, cols, group, x, 1, out); break;                                                      \
        case 2: gemmf_nx(T, cols, group, x, 2, out); break;                                                      \
        case 3: gemmf_nx(T, cols, group, x, 3, out); break;                                                      \
        case 4: gemmf_nx(T, cols, group, x, 4, out); break;                                                      \
        case 5: gemmf_nx(T, cols, group, x, 5, out); break;                                                      \
        case 6: gemmf_nx(T, cols, group, x, 6, out); break;                                                      \
        case 7: gemmf_nx(T, cols, group, x, 7, out); break;                                                      \
        default: gemmf_nx(T, cols, group, x, 8, out); break;                                                     \
        }                                                                                                        \
    }
GEMMF_TYPE(gemm_f16, ZC_TYPE_F16)
GEMMF_TYPE(gemm_bf16, ZC_TYPE_BF16)

static void gemm(int type, int64_t nb, const uint8_t *group, const void *const act[], const int32_t *const sums[],
                 int nx, float out[][ZC_PACK_ROWS]) {
    switch (type) {
    case ZC_TYPE_Q8_0: gemm_q8_0(nb, group, act, sums, nx, out); break;
    case ZC_TYPE_Q4_0: gemm_q4_0(nb, group, act, sums, nx, out); break;
    case ZC_TYPE_Q4_K: gemm_q4_K(nb, group, act, sums, nx, out); break;
    case ZC_TYPE_Q6_K: gemm_q6_K(nb, group, act, sums, nx, out); break;
    case ZC_TYPE_F16: gemm_f16(nb, group, act, nx, out); break;
    default: gemm_bf16(nb, group, act, nx, out); break;
    }
}

ZC_TARGET_AVX512_END

zc_gemm_fn zc_gemm_avx512vnni(void) { return zc_cpu_has_avx512vnni() ? gemm : NULL; }

zc_gemm2_fn zc_gemm2_avx512vnni(int type) {
    if (!zc_cpu_has_avx512vnni()) return NULL;
    return type == ZC_TYPE_Q8_0 ? gemm2_q8_0 : type == ZC_TYPE_Q4_0 ? gemm2_q4_0 : NULL;
}

#else

zc_gemm_fn zc_gemm_avx512vnni(void) { return NULL; }

zc_gemm2_fn zc_gemm2_avx512vnni(int type) {
    (void)type;
    return NULL;
}

#endif
