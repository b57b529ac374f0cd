/* Kernels shared by the attention files (not part of the library API).
 *
 * attn.c holds the scalar versions and the drivers; attn_avx2.c and
 * attn_packed_avx2.c the AVX2 versions, entered only after zc_cpu_has_avx2().
 */
#ifndef ZC_ATTN_IMPL_H
#define ZC_ATTN_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "attn/attn.h"

/* Keys per K/V tile: 64 keys x 128 dims x 4 bytes = 32 KiB per tile, so a
 * K tile, a V tile and the scores of a query block stay in L2 while every
 * query row of the block (all G heads of the group) passes over them. */
#define ZC_ATTN_BK 64
/* Queries per prefill block: its BQ * G rows share each K/V tile, so the
 * fp16 -> fp32 tile conversion and the tile's trip from memory are paid once
 * per 64 queries (16 measured 12-15% slower prefill at head_dim 128). The
 * block's state (64 x 8 rows x 128 floats = 256 KiB at G = 8) stays in L2.
 * Fewer queries than this take the split-KV decode path. */
#define ZC_ATTN_BQ 64

/* Online-softmax update of a block of query rows with one K/V tile.
 *   q       [n_rows][hd]   query rows, already multiplied by 1/sqrt(hd);
 *                          row r belongs to query r / G of the block
 *   nvalid  [n_rows / G]   keys 0..nvalid[i]-1 of the tile are visible to query i
 *                          (0 <= nvalid[i] <= nk; causal masking)
 *   k, v    [nk] rows of hd floats at strides ks, vs (floats)
 *   s       [2*ZC_ATTN_BK] scratch for two score rows
 *   m, l    [n_rows]       running max and running sum of exp(score - m)
 *   acc     [n_rows][hd]   running sum of exp(score - m) * v
 * Rows start as m = -inf, l = 0, acc = 0. */
typedef void (*zc_attn_tile_fn)(int n_rows, int G, const int *nvalid, const float *q, int hd, int nk,
                                const float *k, size_t ks, const float *v, size_t vs, float *s, float *m,
                                float *l, float *acc);

void zc_attn_tile_scalar(int n_rows, int G, const int *nvalid, const float *q, int hd, int nk, const float *k,
                         size_t ks, const float *v, size_t vs, float *s, float *m, float *l, float *acc);
void zc_attn_tile_avx2(int n_rows, int G, const int *nvalid, const float *q, int hd, int nk, const float *k,
                       size_t ks, const float *v, size_t vs, float *s, float *m, float *l, float *acc);

/* The hot loops of attention on packed codes (attn_packed.c drives them;
 * scalar and AVX2 tables below). One call covers one tile of nt <= 128 tokens.
 * The fp32 path (sets in quant/pack.h's row layout):
 *   unpack      n codes of `bits` bits -> bytes (quant/pack.h layout)
 *   to_f32      dst[i] = src[i] for n codes
 *   h2f         dst[i] = half src[i] for n values (exact)
 *   fold        for R rows of queries qb [R][hd] and a key group's kstep, kmin [hd]:
 *               qs[r][c] = qb[r][c] kstep[c], qmin[r] = sum_c qb[r][c] kmin[c]; unless
 *               qq is NULL also the int8 query qq[r][c] = round-half-away(qs[r][c] / qa[r]),
 *               qa[r] = max_c |qs[r][c]| / 127 (every version computes the same qq, qa)
 *   scores_f32  s[t] = bias + dot(qs, kf[t])          kf [nt][hd] codes as floats
 *   softmax     online-softmax step of one row over its scores s [nt]: with
 *               M = max(*m, max_t s[t]), s[t] = exp(s[t] - M) in place (s has room
 *               for nt rounded up to 8; the tail may be overwritten),
 *               *l = *l * exp(*m - M) + sum_t s[t], *m = M; returns exp(m_old - M)
 *   value_row   one row's value update from its probabilities p [nt]:
 *               acc[c] = acc[c] * corr + norm[c] * (sum_t p[t] step[t] vf[t][c] + sum_t p[t] min[t])
 *               (w [nt] scratch; vf [nt][hd] value codes as floats)
 *   scores2_f32, value_row2: the same for two rows at once (each code vector
 *               loaded once for both rows)
 * The integer path (sets in quant/tiled.h's layouts: 2- or 4-bit codes,
 * hd % 32 == 0); tiles start on a multiple of 8 tokens and nt is a multiple
 * of 8; R <= ZC_PACKED_RB rows at a time, row r's data r*hd (queries) or
 * r*ss (scores, weights) elements apart:
 *   scores_t    s[r][t] = qmin[r] + qa[r] * sum_c qq[r][c] k[t][c] for t < nt,
 *               kt the tile's tiled key codes; the integer dot is exact
 *   weights     a row's P.V weights as bytes: w_t = p_t step_t, wmax = max_t w_t,
 *               wq_t = (int)fma(w_t, 255 / wmax, 0.5) (0 when wmax is 0),
 *               *scale = wmax / 255, *pmin = sum_t p_t min_t
 *   value_t     acc[r][c] = acc[r][c] corr[r] + norm[c] fma(scale[r], u, pmin[r]),
 *               u = sum_t wq[r][t] v[t][c] exactly, vt the tile's tiled value codes
 * Every version computes the same bytes wq, integer sums and (by the same
 * fused multiply-adds) the same floats; only pmin's summation order differs. */
#define ZC_PACKED_RB 8 /* rows per integer-path kernel call */
typedef struct {
    void (*unpack)(const uint8_t *src, size_t n, int bits, uint8_t *codes);
    void (*to_f32)(const uint8_t *src, size_t n, float *dst);
    void (*h2f)(const uint16_t *src, int n, float *dst);
    void (*fold)(int R, int hd, const float *qb, const float *kstep, const float *kmin, float *qs, float *qmin,
                 int8_t *qq, float *qa);
    void (*scores_f32)(int nt, int hd, const float *qs, float bias, const float *kf, float *s);
    float (*softmax)(int nt, float *s, float *m, float *l);
    void (*value_row)(int nt, int hd, const float *p, const float *step, const float *min, const float *vf,
                      const float *norm, float corr, float *w, float *acc);
    void (*scores2_f32)(int nt, int hd, const float *qs0, const float *qs1, float bias0, float bias1,
                        const float *kf, float *s0, float *s1);
    void (*value_row2)(int nt, int hd, const float *p0, const float *p1, const float *step, const float *min,
                       const float *vf, const float *norm, float corr0, float corr1, float *w0, float *w1,
                       float *acc0, float *acc1);
    void (*scores_t)(int nt, int hd, int bits, const uint8_t *kt, int R, const int8_t *qq, const float *qa,
                     const float *qmin, float *s, int ss);
    void (*weights)(int nt, const float *p, const float *step, const float *min, uint8_t *wq, float *scale,
                    float *pmin);
    void (*value_t)(int nt, int hd, int bits, const uint8_t *vt, int R, const uint8_t *wq, int ss,
                    const float *scale, const float *pmin, const float *corr, const float *norm, float *acc);
} zc_packed_kernels;

extern const zc_packed_kernels zc_packed_kernels_scalar;
extern const zc_packed_kernels zc_packed_kernels_avx2;
/* Replace the integer-path entries of k by AVX-512 VNNI ones (call only when
 * zc_cpu_has_avx512vnni()). */
void zc_packed_kernels_use_vnni(zc_packed_kernels *k);


/* col[j] += exp(dot(qh, k_j) * scale - lse) for j < n; k rows ks floats apart;
 * s [ZC_ATTN_BK] scratch. */
typedef void (*zc_attn_colsum_fn)(const float *qh, float scale, float lse, int n, int hd, const float *k, size_t ks,
                                  float *s, float *col);
void zc_attn_colsum_row_scalar(const float *qh, float scale, float lse, int n, int hd, const float *k, size_t ks,
                               float *s, float *col);
void zc_attn_colsum_row_avx2(const float *qh, float scale, float lse, int n, int hd, const float *k, size_t ks,
                             float *s, float *col);

/* n rows of hd halves at stride `stride` (halves) -> dst [n][hd] floats. Exact. */
void zc_attn_f16_rows_avx2(const uint16_t *src, size_t stride, int n, int hd, float *dst);

/* Grow s to hold at least `floats` floats (32-byte aligned; the old contents
 * are dropped). Shared by every attention driver's scratch. */
int zc_attn_scratch_reserve(zc_attn_scratch *s, size_t floats);

#ifdef __AVX2__
#include <immintrin.h>
#include <math.h>

/* exp(x) for 8 floats, within 2 ulp of expf on [-87, 88]; exactly 0 below
 * -87.3 (so -inf padding contributes nothing). Cephes' expf polynomial on
 * the reduced argument r = x - n*ln2, |r| <= ln2/2, then scaled by 2^n. */
static inline __m256 zc_exp256(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.3f);
    __m256 live = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), live);
}

static inline float zc_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float zc_hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Online-softmax bookkeeping of one row whose scores s[0..n) have maximum
 * smax: s becomes exp(s - m_new) (zero-padded to a multiple of 8), m and l
 * are updated; returns the factor exp(m_old - m_new) for the row's acc. */
static inline float zc_softmax_row_avx2(float *s, int n, float smax, float *m, float *l) {
    float mx = *m > smax ? *m : smax;
    int n8 = (n + 7) & ~7;
    for (int j = n; j < n8; j++) s[j] = -INFINITY; /* exp gives exact zeros */
    __m256 vm = _mm256_set1_ps(mx), vsum = _mm256_setzero_ps();
    for (int j = 0; j < n8; j += 8) {
        __m256 p = zc_exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
        _mm256_storeu_ps(s + j, p);
        vsum = _mm256_add_ps(vsum, p);
    }
    float corr = expf(*m - mx); /* 0 while m is still -inf */
    *m = mx;
    *l = *l * corr + zc_hsum256(vsum);
    return corr;
}

/* Transpose-reduce eight accumulators: lane i of the result = sum of a[i]. */
static inline __m256 zc_hsum8x8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6,
                                __m256 a7) {
    __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
    return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
}

/* acc[c] += sum_{j<n} w[j] * v[j*vs + c] for c < hd8 (hd8 a multiple of 8).
 * FMA latency (4 cycles) times n would bound a single accumulator chain, so
 * 64-channel slices run 8 independent chains and the last narrow slices
 * split the tokens over 4 chains instead. */
static inline void zc_axpy_rows(int n, const float *w, const float *v, size_t vs, int hd8, float *acc) {
    int c = 0;
    for (; c + 64 <= hd8; c += 64) {
        __m256 a0 = _mm256_loadu_ps(acc + c), a1 = _mm256_loadu_ps(acc + c + 8), a2 = _mm256_loadu_ps(acc + c + 16),
               a3 = _mm256_loadu_ps(acc + c + 24), a4 = _mm256_loadu_ps(acc + c + 32),
               a5 = _mm256_loadu_ps(acc + c + 40), a6 = _mm256_loadu_ps(acc + c + 48),
               a7 = _mm256_loadu_ps(acc + c + 56);
        for (int j = 0; j < n; j++) {
            __m256 wj = _mm256_broadcast_ss(w + j);
            const float *vj = v + (size_t)j * vs + c;
            a0 = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj), a0);
            a1 = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj + 8), a1);
            a2 = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj + 16), a2);
            a3 = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj + 24), a3);
            a4 = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj + 32), a4);
            a5 = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj + 40), a5);
            a6 = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj + 48), a6);
            a7 = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj + 56), a7);
        }
        _mm256_storeu_ps(acc + c, a0);
        _mm256_storeu_ps(acc + c + 8, a1);
        _mm256_storeu_ps(acc + c + 16, a2);
        _mm256_storeu_ps(acc + c + 24, a3);
        _mm256_storeu_ps(acc + c + 32, a4);
        _mm256_storeu_ps(acc + c + 40, a5);
        _mm256_storeu_ps(acc + c + 48, a6);
        _mm256_storeu_ps(acc + c + 56, a7);
    }
    for (; c < hd8; c += 8) {
        __m256 a0 = _mm256_loadu_ps(acc + c), a1 = _mm256_setzero_ps(), a2 = a1, a3 = a1;
        const float *vc = v + c;
        int j = 0;
        for (; j + 4 <= n; j += 4) {
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + j), _mm256_loadu_ps(vc + (size_t)j * vs), a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + j + 1), _mm256_loadu_ps(vc + (size_t)(j + 1) * vs), a1);
            a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + j + 2), _mm256_loadu_ps(vc + (size_t)(j + 2) * vs), a2);
            a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + j + 3), _mm256_loadu_ps(vc + (size_t)(j + 3) * vs), a3);
        }
        for (; j < n; j++) a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + j), _mm256_loadu_ps(vc + (size_t)j * vs), a0);
        _mm256_storeu_ps(acc + c, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    }
}

/* Two query rows against keys 0..n-1 (hd % 8 == 0): each K vector loaded once
 * feeds both rows, halving the loads per FMA. Four keys x two rows fill the
 * eight accumulators of one transposing reduction. */
static inline void zc_scores2(const float *q0, const float *q1, int hd, int n, const float *k, size_t ks, float *s0,
                              float *s1, float *mx0, float *mx1) {
    __m256 vmax = _mm256_set1_ps(-INFINITY); /* lanes 0..3 row 0, 4..7 row 1 */
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *kj = k + (size_t)j * ks;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (int d = 0; d < hd; d += 8) {
            __m256 x = _mm256_loadu_ps(q0 + d), y = _mm256_loadu_ps(q1 + d);
            __m256 k0 = _mm256_loadu_ps(kj + d), k1 = _mm256_loadu_ps(kj + ks + d);
            __m256 k2 = _mm256_loadu_ps(kj + 2 * ks + d), k3 = _mm256_loadu_ps(kj + 3 * ks + d);
            a0 = _mm256_fmadd_ps(x, k0, a0);
            b0 = _mm256_fmadd_ps(y, k0, b0);
            a1 = _mm256_fmadd_ps(x, k1, a1);
            b1 = _mm256_fmadd_ps(y, k1, b1);
            a2 = _mm256_fmadd_ps(x, k2, a2);
            b2 = _mm256_fmadd_ps(y, k2, b2);
            a3 = _mm256_fmadd_ps(x, k3, a3);
            b3 = _mm256_fmadd_ps(y, k3, b3);
        }
        __m256 sv = zc_hsum8x8(a0, a1, a2, a3, b0, b1, b2, b3);
        _mm_storeu_ps(s0 + j, _mm256_castps256_ps128(sv));
        _mm_storeu_ps(s1 + j, _mm256_extractf128_ps(sv, 1));
        vmax = _mm256_max_ps(vmax, sv);
    }
    __m128 m0 = _mm256_castps256_ps128(vmax), m1 = _mm256_extractf128_ps(vmax, 1);
    m0 = _mm_max_ps(m0, _mm_movehl_ps(m0, m0));
    m1 = _mm_max_ps(m1, _mm_movehl_ps(m1, m1));
    float x0 = _mm_cvtss_f32(_mm_max_ss(m0, _mm_movehdup_ps(m0)));
    float x1 = _mm_cvtss_f32(_mm_max_ss(m1, _mm_movehdup_ps(m1)));
    for (; j < n; j++) {
        __m256 a = _mm256_setzero_ps(), b = a;
        for (int d = 0; d < hd; d += 8) {
            __m256 kv = _mm256_loadu_ps(k + (size_t)j * ks + d);
            a = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + d), kv, a);
            b = _mm256_fmadd_ps(_mm256_loadu_ps(q1 + d), kv, b);
        }
        s0[j] = zc_hsum256(a);
        s1[j] = zc_hsum256(b);
        x0 = s0[j] > x0 ? s0[j] : x0;
        x1 = s1[j] > x1 ? s1[j] : x1;
    }
    *mx0 = x0;
    *mx1 = x1;
}

/* acc0 += sum_j w0[j] v_j and acc1 += sum_j w1[j] v_j (hd % 8 == 0): each V
 * vector loaded once for both rows; 32-channel slices keep 8 FMA chains in
 * flight, the narrow rest splits the tokens over two chains per row. */
static inline void zc_axpy2(int n, const float *w0, const float *w1, const float *v, size_t vs, int hd, float *acc0,
                            float *acc1) {
    int c = 0;
    for (; c + 32 <= hd; c += 32) {
        __m256 a0 = _mm256_loadu_ps(acc0 + c), a1 = _mm256_loadu_ps(acc0 + c + 8), a2 = _mm256_loadu_ps(acc0 + c + 16),
               a3 = _mm256_loadu_ps(acc0 + c + 24);
        __m256 b0 = _mm256_loadu_ps(acc1 + c), b1 = _mm256_loadu_ps(acc1 + c + 8), b2 = _mm256_loadu_ps(acc1 + c + 16),
               b3 = _mm256_loadu_ps(acc1 + c + 24);
        for (int j = 0; j < n; j++) {
            __m256 x = _mm256_broadcast_ss(w0 + j), y = _mm256_broadcast_ss(w1 + j);
            const float *vj = v + (size_t)j * vs + c;
            __m256 v0 = _mm256_loadu_ps(vj), v1 = _mm256_loadu_ps(vj + 8), v2 = _mm256_loadu_ps(vj + 16),
                   v3 = _mm256_loadu_ps(vj + 24);
            a0 = _mm256_fmadd_ps(x, v0, a0);
            b0 = _mm256_fmadd_ps(y, v0, b0);
            a1 = _mm256_fmadd_ps(x, v1, a1);
            b1 = _mm256_fmadd_ps(y, v1, b1);
            a2 = _mm256_fmadd_ps(x, v2, a2);
            b2 = _mm256_fmadd_ps(y, v2, b2);
            a3 = _mm256_fmadd_ps(x, v3, a3);
            b3 = _mm256_fmadd_ps(y, v3, b3);
        }
        _mm256_storeu_ps(acc0 + c, a0);
        _mm256_storeu_ps(acc0 + c + 8, a1);
        _mm256_storeu_ps(acc0 + c + 16, a2);
        _mm256_storeu_ps(acc0 + c + 24, a3);
        _mm256_storeu_ps(acc1 + c, b0);
        _mm256_storeu_ps(acc1 + c + 8, b1);
        _mm256_storeu_ps(acc1 + c + 16, b2);
        _mm256_storeu_ps(acc1 + c + 24, b3);
    }
    for (; c < hd; c += 8) {
        __m256 a0 = _mm256_loadu_ps(acc0 + c), b0 = _mm256_loadu_ps(acc1 + c), a1 = _mm256_setzero_ps(), b1 = a1;
        int j = 0;
        for (; j + 2 <= n; j += 2) {
            __m256 v0 = _mm256_loadu_ps(v + (size_t)j * vs + c), v1 = _mm256_loadu_ps(v + (size_t)(j + 1) * vs + c);
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w0 + j), v0, a0);
            b0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w1 + j), v0, b0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(w0 + j + 1), v1, a1);
            b1 = _mm256_fmadd_ps(_mm256_broadcast_ss(w1 + j + 1), v1, b1);
        }
        if (j < n) {
            __m256 v0 = _mm256_loadu_ps(v + (size_t)j * vs + c);
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w0 + j), v0, a0);
            b0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w1 + j), v0, b0);
        }
        _mm256_storeu_ps(acc0 + c, _mm256_add_ps(a0, a1));
        _mm256_storeu_ps(acc1 + c, _mm256_add_ps(b0, b1));
    }
}

/* Lane mask selecting the first n (0..8) of 8 floats, for maskload/maskstore. */
static inline __m256i zc_mask8(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

#endif
