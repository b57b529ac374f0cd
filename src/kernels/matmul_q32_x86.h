/* Internal to src/kernels: the dot kernels of the 32-element formats (q8_0,
 * q4_0, q4_1, q5_0, q5_1), written once and compiled twice: by
 * matmul_avx2.c with ZC_DOT_U8S8 = maddubs + madd, and by matmul_avx512.c
 * with ZC_DOT_U8S8 = the VNNI dpbusd, which does both in one instruction.
 * The two give the same bits: maddubs never saturates here (|w| <= 128,
 * |x| <= 127, so a pair sums to at most 32512).
 *
 * ZC_DOT_U8S8(u, x): 8 int32 lanes summing to Σ u_j x_j over 32 bytes,
 * u unsigned, x signed. Define it, then include this file once, after
 * matmul_x86.h; it defines static functions dot_q8_0 .. dot_q5_1.
 */
#ifndef ZC_KERNELS_MATMUL_Q32_X86_H
#define ZC_KERNELS_MATMUL_Q32_X86_H

#include <stdbool.h>
#include <string.h>

#include "kernels/matmul_kernels.h"
#include "kernels/matmul_x86.h"
#include "quant/ggml_blocks.h"

/* Byte j of the result is 0xFF where bit j of the 32-bit word is set. */
static inline __m256i bits_to_bytes(uint32_t bits) {
    /* byte j takes byte j/8 of the word, then tests bit j%8 */
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                            3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* 16 bytes of nibble pairs -> 32 codes: low nibbles are elements 0..15, high 16..31. */
static inline __m256i nibbles(const uint8_t *qs) {
    const __m128i b = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

static inline __m256i fifth_bits(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, 4);
    return _mm256_and_si256(bits_to_bytes(bits), _mm256_set1_epi8(0x10));
}

static inline float half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* One 32-element weight block as w = d q + m: the zero-point formats
 * (q8_0, q4_0, q5_0) give signed codes q and m = 0, the min formats (q4_1,
 * q5_1) unsigned codes and their min m. */
typedef struct {
    __m256i q;
    float d, m;
} wblock;

static inline bool has_min(int type) { return type == ZC_TYPE_Q4_1 || type == ZC_TYPE_Q5_1; }

ALWAYS_INLINE wblock decode32(int type, const uint8_t *p) {
    const __m256i eight = _mm256_set1_epi8(8), sixteen = _mm256_set1_epi8(16);
    switch (type) {
    case ZC_TYPE_Q8_0: return (wblock){_mm256_loadu_si256((const __m256i *)(p + 2)), half_at(p), 0.0f};
    case ZC_TYPE_Q4_0: return (wblock){_mm256_sub_epi8(nibbles(p + 2), eight), half_at(p), 0.0f};
    case ZC_TYPE_Q4_1: return (wblock){nibbles(p + 4), half_at(p), half_at(p + 2)};
    case ZC_TYPE_Q5_0:
        return (wblock){_mm256_sub_epi8(_mm256_or_si256(nibbles(p + 6), fifth_bits(p + 2)), sixteen), half_at(p), 0.0f};
    default: /* ZC_TYPE_Q5_1 */
        return (wblock){_mm256_or_si256(nibbles(p + 8), fifth_bits(p + 4)), half_at(p), half_at(p + 2)};
    }
}

/* One weight block times block i of nx activation rows, added to acc[k]
 * (and the min term to mins[k]). Signed codes: |q| times x with q's sign,
 * as maddubs wants its first operand unsigned. */
ALWAYS_INLINE void block32(int type, const uint8_t *blk, const zc_act_q8 *const a[], int64_t i, int nx, __m256 acc[],
                           float mins[]) {
    const wblock b = decode32(type, blk);
    const __m256i u = has_min(type) ? b.q : _mm256_sign_epi8(b.q, b.q);
    UNROLL for (int k = 0; k < nx; k++) {
        __m256i xv = _mm256_loadu_si256((const __m256i *)a[k][i].qs);
        if (!has_min(type)) xv = _mm256_sign_epi8(xv, b.q);
        const __m256i s = ZC_DOT_U8S8(u, xv);
        acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(b.d * a[k][i].d), acc[k]);
        if (has_min(type)) mins[k] += b.m * a[k][i].s;
    }
}

/* Even and odd blocks go to separate accumulators: two dependency chains. */
ALWAYS_INLINE void dot32_nx(int type, int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) {
    const size_t bytes = type == ZC_TYPE_Q8_0 ? sizeof(zc_block_q8_0) : type == ZC_TYPE_Q4_0 ? sizeof(zc_block_q4_0)
                         : type == ZC_TYPE_Q4_1 ? sizeof(zc_block_q4_1) : type == ZC_TYPE_Q5_0 ? sizeof(zc_block_q5_0)
                                                                                              : sizeof(zc_block_q5_1);
    const uint8_t *wb = w;
    const zc_act_q8 *a[ZC_NX];
    __m256 acc0[ZC_NX], acc1[ZC_NX];
    float mins0[ZC_NX], mins1[ZC_NX];
    UNROLL for (int k = 0; k < nx; k++) {
        a[k] = act_row(x, xs, k);
        acc0[k] = acc1[k] = _mm256_setzero_ps();
        mins0[k] = mins1[k] = 0.0f;
    }
    const int64_t nb = n / ZC_QK;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        block32(type, wb + i * bytes, a, i, nx, acc0, mins0);
        block32(type, wb + (i + 1) * bytes, a, i + 1, nx, acc1, mins1);
    }
    if (i < nb) block32(type, wb + i * bytes, a, i, nx, acc0, mins0);
    UNROLL for (int k = 0; k < nx; k++) out[k] = hsum_ps(_mm256_add_ps(acc0[k], acc1[k])) + (mins0[k] + mins1[k]);
}
#define BLOCK32_KERNEL(name, type)                                                                 \
    ALWAYS_INLINE void name##_nx(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) { \
        dot32_nx(type, n, w, x, xs, nx, out);                                                        \
    }                                                                                                \
    TILED(name)
BLOCK32_KERNEL(dot_q8_0, ZC_TYPE_Q8_0)
BLOCK32_KERNEL(dot_q4_0, ZC_TYPE_Q4_0)
BLOCK32_KERNEL(dot_q4_1, ZC_TYPE_Q4_1)
BLOCK32_KERNEL(dot_q5_0, ZC_TYPE_Q5_0)
BLOCK32_KERNEL(dot_q5_1, ZC_TYPE_Q5_1)

#endif
