/* The integer path of attention on packed codes (sets in quant/tiled.h's
 * layouts), x86 version, included by attn_packed_avx2.c with ZC_DPBUSD =
 * maddubs + madd + add and by attn_packed_vnni.c with ZC_DPBUSD = the VNNI
 * dpbusd, which does all three in one instruction. Contracts in attn_impl.h
 * (zc_packed_kernels: scores_t, value_t); the scalar versions in
 * attn_packed.c define the arithmetic, which both x86 versions reproduce
 * exactly.
 *
 * ZC_DPBUSD(acc, u, s): acc + 8 int32 lanes, lane i += sum_{j<4} u[4i+j] s[4i+j]
 * (u unsigned bytes, s signed bytes). The maddubs form is exact here because
 * every code is < 16: a pair sum is at most 2 * 255 * 15, far from the int16
 * saturation.
 *
 * The tiled layouts make both products free of shuffles: a key lane vector
 * holds 4 channels of each of 8 tokens, so a ZC_DPBUSD against 4 broadcast
 * query bytes adds those channels into the 8 tokens' scores; a value lane
 * vector holds 4 tokens of each of 8 channels, so a ZC_DPBUSD against 4
 * broadcast weight bytes adds those tokens into the 8 channels' sums. Each
 * lane vector is a shift and a mask of a loaded word, and is used by every
 * row of the block (the G query heads sharing a KV head), held in registers.
 *
 * I8X86_VROWS: rows per value block (4 x 4 accumulators need AVX-512's 32
 * vector registers; AVX2's 16 hold 2 x 4).
 */
#ifndef ZC_DPBUSD
#error "define ZC_DPBUSD before including attn_packed_i8_x86.h"
#endif

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* acc_c = acc_c * corr + norm_c * (scale * u_c + pmin) for c in [c0, c0 + 8*n) */
static inline void i8x86_finish(const __m256i *u, int n, const float *norm, float scale, float pmin, float corr,
                                float *acc) {
    __m256 vs = _mm256_set1_ps(scale), vp = _mm256_set1_ps(pmin), vc = _mm256_set1_ps(corr);
    for (int j = 0; j < n; j++) {
        __m256 val = _mm256_fmadd_ps(vs, _mm256_cvtepi32_ps(u[j]), vp);
        __m256 prev = _mm256_mul_ps(_mm256_loadu_ps(acc + 8 * j), vc);
        _mm256_storeu_ps(acc + 8 * j, _mm256_fmadd_ps(_mm256_loadu_ps(norm + 8 * j), val, prev));
    }
}

/* Lane vector j of the stored word w (quant/tiled.h): its codes, one per byte. */
static inline __m256i i8x86_lane(__m256i w, int j, int bits) {
    const __m256i mask = _mm256_set1_epi8((char)((1 << bits) - 1));
    return _mm256_and_si256(j ? _mm256_srli_epi16(w, j * bits) : w, mask);
}

static inline __m256i i8x86_bcast4(const void *p) {
    int32_t x;
    memcpy(&x, p, 4);
    return _mm256_set1_epi32(x);
}

/* Scores of nr rows (<= 4) x no groups of 8 tokens (<= 2) from kt, the key
 * words of the first group. Inlined with constant nr, no and bits, so the
 * accumulators stay in registers and the loops unroll. */
static inline __attribute__((always_inline)) void i8x86_scores_block(int nr, int no, int bits, int hd,
                                                                      const uint8_t *kt, const int8_t *qq,
                                                                      const float *qa, const float *qmin, float *s,
                                                                      int ss) {
    const int per_word = 8 / bits;
    const size_t gstride = (size_t)hd * bits; /* bytes per 8 tokens */
    __m256i acc[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 2
        for (int o = 0; o < no; o++) acc[r][o] = _mm256_setzero_si256();
    for (int cq = 0; cq < hd / 4; cq += per_word) { /* channels 4cq.. of the words at kt + 8cq */
        __m256i w[2];
#pragma GCC unroll 2
        for (int o = 0; o < no; o++) w[o] = _mm256_loadu_si256((const __m256i *)(kt + o * gstride + (size_t)cq * 32 / per_word));
#pragma GCC unroll 4
        for (int j = 0; j < per_word; j++) {
            __m256i kv[2];
#pragma GCC unroll 2
            for (int o = 0; o < no; o++) kv[o] = i8x86_lane(w[o], j, bits);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                __m256i qb = i8x86_bcast4(qq + (size_t)r * hd + 4 * (cq + j));
#pragma GCC unroll 2
                for (int o = 0; o < no; o++) acc[r][o] = ZC_DPBUSD(acc[r][o], kv[o], qb);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 2
        for (int o = 0; o < no; o++)
            _mm256_storeu_ps(s + (size_t)r * ss + 8 * o, _mm256_fmadd_ps(_mm256_set1_ps(qa[r]), _mm256_cvtepi32_ps(acc[r][o]),
                                                                       _mm256_set1_ps(qmin[r])));
}

static inline __attribute__((always_inline)) void i8x86_scores_bits(int bits, int nt, int hd, const uint8_t *kt, int R,
                                                                     const int8_t *qq, const float *qa,
                                                                     const float *qmin, float *s, int ss) {
    const size_t gstride = (size_t)hd * bits;
    for (int r = 0; r < R;) {
        int nr = R - r >= 4 ? 4 : R - r >= 2 ? 2 : 1;
        const int8_t *qr = qq + (size_t)r * hd;
        for (int o = 0; o < nt / 8;) {
            int no = nt / 8 - o >= 2 ? 2 : 1;
            const uint8_t *k = kt + o * gstride;
            float *so = s + (size_t)r * ss + 8 * o;
            if (nr == 4)
                no == 2 ? i8x86_scores_block(4, 2, bits, hd, k, qr, qa + r, qmin + r, so, ss)
                        : i8x86_scores_block(4, 1, bits, hd, k, qr, qa + r, qmin + r, so, ss);
            else if (nr == 2)
                no == 2 ? i8x86_scores_block(2, 2, bits, hd, k, qr, qa + r, qmin + r, so, ss)
                        : i8x86_scores_block(2, 1, bits, hd, k, qr, qa + r, qmin + r, so, ss);
            else
                no == 2 ? i8x86_scores_block(1, 2, bits, hd, k, qr, qa + r, qmin + r, so, ss)
                        : i8x86_scores_block(1, 1, bits, hd, k, qr, qa + r, qmin + r, so, ss);
            o += no;
        }
        r += nr;
    }
}

static void I8X86(scores_t)(int nt, int hd, int bits, const uint8_t *kt, int R, const int8_t *qq, const float *qa,
                            const float *qmin, float *s, int ss) {
    if (bits == 4)
        i8x86_scores_bits(4, nt, hd, kt, R, qq, qa, qmin, s, ss);
    else
        i8x86_scores_bits(2, nt, hd, kt, R, qq, qa, qmin, s, ss);
}

/* P.V of nr rows (<= I8X86_VROWS) over channels [c0, c0 + 32) and nq groups
 * of 4 tokens, from vt, the value words of the tile (inlined like the scores). */
static inline __attribute__((always_inline)) void i8x86_value_block(int nr, int bits, int nq, int hd, int c0,
                                                                     const uint8_t *vt, const uint8_t *wq, int ss,
                                                                     const float *scale, const float *pmin,
                                                                     const float *corr, const float *norm,
                                                                     float *acc) {
    const int per_word = 8 / bits, words = 4 / per_word; /* words per 4 tokens x 32 channels */
    const size_t qstride = (size_t)hd * bits / 2;       /* bytes per 4 tokens */
    const uint8_t *v = vt + (size_t)c0 / 8 / per_word * 32;
    __m256i u[I8X86_VROWS][4];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) u[r][j] = _mm256_setzero_si256();
    for (int tq = 0; tq < nq; tq++, v += qstride) {
        __m256i wb[I8X86_VROWS];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) wb[r] = i8x86_bcast4(wq + (size_t)r * ss + 4 * tq);
#pragma GCC unroll 2
        for (int k = 0; k < words; k++) {
            __m256i w = _mm256_loadu_si256((const __m256i *)(v + 32 * k));
#pragma GCC unroll 4
            for (int j = 0; j < per_word; j++) {
                __m256i vv = i8x86_lane(w, j, bits);
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++) u[r][k * per_word + j] = ZC_DPBUSD(u[r][k * per_word + j], wb[r], vv);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) i8x86_finish(u[r], 4, norm + c0, scale[r], pmin[r], corr[r], acc + (size_t)r * hd + c0);
}

static inline __attribute__((always_inline)) void i8x86_value_bits(int bits, int nt, int hd, const uint8_t *vt, int R,
                                                                    const uint8_t *wq, int ss, const float *scale,
                                                                    const float *pmin, const float *corr,
                                                                    const float *norm, float *acc) {
    for (int c0 = 0; c0 < hd; c0 += 32)
        for (int r = 0; r < R;) {
            int nr = R - r >= I8X86_VROWS ? I8X86_VROWS : R - r >= 2 ? 2 : 1;
            const uint8_t *wr = wq + (size_t)r * ss;
            float *ar = acc + (size_t)r * hd;
            if (nr == I8X86_VROWS)
                i8x86_value_block(I8X86_VROWS, bits, nt / 4, hd, c0, vt, wr, ss, scale + r, pmin + r, corr + r, norm, ar);
            else if (nr == 2)
                i8x86_value_block(2, bits, nt / 4, hd, c0, vt, wr, ss, scale + r, pmin + r, corr + r, norm, ar);
            else
                i8x86_value_block(1, bits, nt / 4, hd, c0, vt, wr, ss, scale + r, pmin + r, corr + r, norm, ar);
            r += nr;
        }
}

static void I8X86(value_t)(int nt, int hd, int bits, const uint8_t *vt, int R, const uint8_t *wq, int ss,
                           const float *scale, const float *pmin, const float *corr, const float *norm, float *acc) {
    if (bits == 4)
        i8x86_value_bits(4, nt, hd, vt, R, wq, ss, scale, pmin, corr, norm, acc);
    else
        i8x86_value_bits(2, nt, hd, vt, R, wq, ss, scale, pmin, corr, norm, acc);
}
