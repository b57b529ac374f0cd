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
#include <string.h>

#include "quant/ggml_blocks.h"
#include "util/cpu.h"
#include "util/target_avx512.h"

#if defined(__x86_64__)

ZC_TARGET_AVX512_BEGIN

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL8 _Pragma("GCC unroll 8") /* registers, not stack arrays: every k and j loop is unrolled */

/* Activation rows a kernel body holds in registers; the callers go through
 * nx rows in chunks of NX, each chunk's count a compile-time constant
 * (CALL(n)) so that the k loops unroll. */
#define NX 4
#define NX_CHUNKS(CALL)                                  \
    for (int k0 = 0; k0 < nx; k0 += NX) {                \
        switch (nx - k0 < NX ? nx - k0 : NX) {           \
        case 1: CALL(1); break;                          \
        case 2: CALL(2); break;                          \
        case 3: CALL(3); break;                          \
        default: CALL(NX); break;                        \
        }                                                \
    }

/* q8_0 and q4_0, ng (1 or 2) groups of 16 rows at once, group gi at
 * g0 + gi * gbytes: each activation broadcast feeds ng VPDPBUSD and each
 * weight vector nx, so two groups need 6 loads per 8 VPDPBUSD where one
 * needs 9 (a core issues 2 loads and 2 VPDPBUSD per cycle: one group is
 * load-bound). Per row and activation: the integer block sum started from
 * -bias Σ x, converted, scaled by d_w d_x and added, whatever ng and nx. */
ALWAYS_INLINE void gemm32_nx(int type, int ng, int64_t nb, const uint8_t *g0, size_t gbytes,
                             const zc_act_q8 *const act[], const int32_t *const sums[], int nx,
                             float out[][ZC_PACK_NX][ZC_PACK_ROWS], int k0) {
    const int bias = type == ZC_TYPE_Q8_0 ? 128 : 8;
    const size_t bytes = type == ZC_TYPE_Q8_0 ? 544 : 288;
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    __m512 acc[2][NX];
    UNROLL8 for (int gi = 0; gi < ng; gi++) UNROLL8 for (int k = 0; k < nx; k++) acc[gi][k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk[2] = {g0 + (size_t)i * bytes, g0 + gbytes + (size_t)i * bytes};
        __m512i s[2][NX];
        UNROLL8 for (int k = 0; k < nx; k++) s[0][k] = s[1][k] = _mm512_set1_epi32(-bias * sums[k][i]);
        if (type == ZC_TYPE_Q8_0) {
            UNROLL8 for (int j = 0; j < 8; j++) {
                __m512i w[2];
                UNROLL8 for (int gi = 0; gi < ng; gi++) w[gi] = _mm512_loadu_si512(blk[gi] + 2 * ZC_PACK_ROWS + 64 * j);
                UNROLL8 for (int k = 0; k < nx; k++) {
                    const __m512i x = _mm512_set1_epi32(((const int32_t *)(const void *)act[k][i].qs)[j]);
                    UNROLL8 for (int gi = 0; gi < ng; gi++) s[gi][k] = _mm512_dpbusd_epi32(s[gi][k], w[gi], x);
                }
            }
        } else {
            UNROLL8 for (int j = 0; j < 4; j++) { /* byte j of a lane: elements 4j.. (low nibble), 16+4j.. (high) */
                __m512i lo[2], hi[2];
                UNROLL8 for (int gi = 0; gi < ng; gi++) {
                    const __m512i v = _mm512_loadu_si512(blk[gi] + 2 * ZC_PACK_ROWS + 64 * j);
                    lo[gi] = _mm512_and_si512(v, low4);
                    hi[gi] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
                }
                UNROLL8 for (int k = 0; k < nx; k++) {
                    const int32_t *x4 = (const int32_t *)(const void *)act[k][i].qs;
                    const __m512i xl = _mm512_set1_epi32(x4[j]), xh = _mm512_set1_epi32(x4[j + 4]);
                    UNROLL8 for (int gi = 0; gi < ng; gi++)
                        s[gi][k] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(s[gi][k], lo[gi], xl), hi[gi], xh);
                }
            }
        }
        UNROLL8 for (int gi = 0; gi < ng; gi++) {
            const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk[gi]));
            UNROLL8 for (int k = 0; k < nx; k++) {
                const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(act[k][i].d));
                acc[gi][k] = _mm512_add_ps(acc[gi][k], _mm512_mul_ps(_mm512_cvtepi32_ps(s[gi][k]), scale));
            }
        }
    }
    UNROLL8 for (int gi = 0; gi < ng; gi++) UNROLL8 for (int k = 0; k < nx; k++) _mm512_storeu_ps(out[gi][k0 + k], acc[gi][k]);
}

/* type and ng constants at each call site (gemm), so the body specializes. */
ALWAYS_INLINE void gemm32(int type, int ng, int64_t nb, const uint8_t *group, size_t gbytes, const void *const act[],
                          const int32_t *const sums[], int nx, float out[][ZC_PACK_NX][ZC_PACK_ROWS]) {
    const zc_act_q8 *const *a = (const zc_act_q8 *const *)act;
#define CALL32(n) gemm32_nx(type, ng, nb, group, gbytes, a + k0, sums + k0, n, out, k0)
    NX_CHUNKS(CALL32)
#undef CALL32
}

/* q4_K: one super-block (256 elements) of 16 rows per step. For each pair p
 * of sub-blocks, 8 loads give the codes of both (low and high nibbles); each
 * activation row takes 16 VPDPBUSD into two sub-block sums, weighted by the
 * sub-blocks' scales (VPMULLD) into sumi; the mins take one VPDPWSSD per
 * pair. Then, per row, d d_x sumi - dmin d_x summ in the scalar kernel's
 * order. 4 activation rows at a time keep it all in registers. */
ALWAYS_INLINE void gemmk_nx(int64_t nb, const uint8_t *group, const zc_act_q8k *const act[],
                            const int32_t *const sums[], int nx, float out[][ZC_PACK_ROWS]) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    __m512 acc[NX];
    UNROLL8 for (int k = 0; k < nx; k++) acc[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk = group + (size_t)i * ZC_PACK_Q4K_BYTES;
        const uint8_t *sc = blk + 64, *mn = blk + 192, *q = blk + 448;
        __m512i sumi[NX], summ[NX];
        UNROLL8 for (int k = 0; k < nx; k++) sumi[k] = summ[k] = _mm512_setzero_si512();
        for (int p = 0; p < 4; p++) {
            /* With 1 or 2 activation rows, even and odd j go to separate sums: shorter dependency chains
             * (decode); with more, the rows give enough independent chains. */
            const int split = nx <= 2 ? 2 : 1;
            __m512i slo[NX][2], shi[NX][2];
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
#define CALLK(n) gemmk_nx(nb, group, a + k0, sums + k0, n, out + k0)
    NX_CHUNKS(CALLK)
#undef CALLK
}

/* q6_K: one super-block (16 sub-blocks of 16, signed 8-bit scales, codes
 * q - 32 in 6 bits) of 16 rows per step, in the format's own bytes: for
 * each half h and 4-byte column k, the low bits A = ql[4k..], B =
 * ql[32+4k..] and the high bits H = qh[4k..] give the unsigned codes (q) of
 * elements 4k+j, 32+4k+j, 64+4k+j, 96+4k+j of the half. Two passes per half
 * (k < 4, k >= 4) each fill 4 sub-block sums per activation row, weighted by
 * their scales (VPMULLD) into sumi. The -32 is Σ_g sc_g (-32 Σ_g x): one
 * VPDPWSSD per sub-block pair with the activation's sums, started first. */
ALWAYS_INLINE void gemm6_nx(int64_t nb, const uint8_t *group, const zc_act_q8k *const act[],
                            const int32_t *const sums[], int nx, float out[][ZC_PACK_ROWS]) {
    const __m512i low4 = _mm512_set1_epi8(0x0F), low2 = _mm512_set1_epi8(0x03);
    __m512 acc[NX];
    UNROLL8 for (int k = 0; k < nx; k++) acc[k] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk = group + (size_t)i * ZC_PACK_Q6K_BYTES;
        const uint8_t *scp = blk + 32, *ql = blk + 288, *qh = blk + 288 + 2048;
        __m512i sumi[NX];
        UNROLL8 for (int k = 0; k < nx; k++) sumi[k] = _mm512_setzero_si512();
        UNROLL8 for (int p = 0; p < 8; p++) { /* the scales' pairs (sub-blocks 2p, 2p+1): Σ_g sc_g Σ_g x */
            const __m512i pair = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(scp + 32 * p)));
            UNROLL8 for (int k = 0; k < nx; k++) { /* bsums 2p, 2p + 1 as one int32: the pair, low half first */
                int32_t bs;
                memcpy(&bs, act[k][i].bsums + 2 * p, 4);
                sumi[k] = _mm512_dpwssd_epi32(sumi[k], pair, _mm512_set1_epi32(bs));
            }
        }
        UNROLL8 for (int k = 0; k < nx; k++) sumi[k] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sumi[k], 5));
        for (int h = 0; h < 2; h++)
            for (int pass = 0; pass < 2; pass++) {
                __m512i sb[NX][4]; /* sub-blocks 8h + 2t + pass, t < 4 */
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
#define CALL6(n) gemm6_nx(nb, group, a + k0, sums + k0, n, out + k0)
    NX_CHUNKS(CALL6)
#undef CALL6
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
    __m512 acc[NX][2];
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

ALWAYS_INLINE void gemmf(int type, int64_t cols, const uint8_t *group, const void *const act[], int nx,
                         float out[][ZC_PACK_ROWS]) {
    const float *const *x = (const float *const *)act;
#define CALLF(n) gemmf_nx(type, cols, group, x + k0, n, out + k0)
    NX_CHUNKS(CALLF)
#undef CALLF
}

/* zc_gemm_fn: one group (q4_K, q6_K, f16, bf16) or up to two (q8_0, q4_0). */
static void gemm(int type, int64_t nb, const uint8_t *group, size_t group_bytes, int ng, const void *const act[],
                 const int32_t *const sums[], int nx, float out[][ZC_PACK_NX][ZC_PACK_ROWS]) {
    switch (type) {
    case ZC_TYPE_Q8_0:
        if (ng == 2) gemm32(ZC_TYPE_Q8_0, 2, nb, group, group_bytes, act, sums, nx, out);
        else gemm32(ZC_TYPE_Q8_0, 1, nb, group, group_bytes, act, sums, nx, out);
        break;
    case ZC_TYPE_Q4_0:
        if (ng == 2) gemm32(ZC_TYPE_Q4_0, 2, nb, group, group_bytes, act, sums, nx, out);
        else gemm32(ZC_TYPE_Q4_0, 1, nb, group, group_bytes, act, sums, nx, out);
        break;
    case ZC_TYPE_Q4_K: gemm_q4_K(nb, group, act, sums, nx, out[0]); break;
    case ZC_TYPE_Q6_K: gemm_q6_K(nb, group, act, sums, nx, out[0]); break;
    case ZC_TYPE_F16: gemmf(ZC_TYPE_F16, nb, group, act, nx, out[0]); break;
    default: gemmf(ZC_TYPE_BF16, nb, group, act, nx, out[0]); break;
    }
}

ZC_TARGET_AVX512_END

zc_gemm_fn zc_gemm_avx512vnni(void) { return zc_cpu_has_avx512vnni() ? gemm : NULL; }

#else

zc_gemm_fn zc_gemm_avx512vnni(void) { return NULL; }

#endif
