/* AVX2 + FMA + F16C attention kernels (contracts in attn_impl.h).
 *
 * Scores: query rows go in pairs where they see the same keys (the G heads
 * of one query always do), so each K vector loaded feeds two rows; four keys
 * x two rows fill eight accumulators reduced by one transposing hadd tree
 * (zc_scores2). A lone row takes eight keys at a time the same way. The P.V
 * sums likewise share each V vector between the two rows and keep eight FMA
 * chains in flight (zc_axpy2 / zc_axpy_rows). A head_dim that is not a
 * multiple of 8 takes the single-row path, whose tail uses masked loads.
 */
#include <math.h>

#include "attn/attn_impl.h"

static inline float dot_one(const float *q, const float *k, int hd, int hd8, __m256i tail) {
    __m256 a = _mm256_setzero_ps();
    for (int d = 0; d < hd8; d += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), a);
    if (hd8 < hd) a = _mm256_fmadd_ps(_mm256_maskload_ps(q + hd8, tail), _mm256_maskload_ps(k + hd8, tail), a);
    return zc_hsum256(a);
}

/* s[j] = dot(qr, k_j) for j < n; returns max_j s[j] (-inf when n == 0). */
static float scores_avx2(const float *qr, int hd, int n, const float *k, size_t ks, float *s) {
    int hd8 = hd & ~7;
    __m256i tail = zc_mask8(hd - hd8);
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const float *kj = k + (size_t)j * ks;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int d = 0; d < hd8; d += 8) {
            __m256 qv = _mm256_loadu_ps(qr + d);
            a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kj + d), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kj + ks + d), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kj + 2 * ks + d), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kj + 3 * ks + d), a3);
            a4 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kj + 4 * ks + d), a4);
            a5 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kj + 5 * ks + d), a5);
            a6 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kj + 6 * ks + d), a6);
            a7 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kj + 7 * ks + d), a7);
        }
        if (hd8 < hd) {
            __m256 qv = _mm256_maskload_ps(qr + hd8, tail);
            const float *kt = kj + hd8;
            a0 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(kt, tail), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(kt + ks, tail), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(kt + 2 * ks, tail), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(kt + 3 * ks, tail), a3);
            a4 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(kt + 4 * ks, tail), a4);
            a5 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(kt + 5 * ks, tail), a5);
            a6 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(kt + 6 * ks, tail), a6);
            a7 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(kt + 7 * ks, tail), a7);
        }
        __m256 sv = zc_hsum8x8(a0, a1, a2, a3, a4, a5, a6, a7);
        _mm256_storeu_ps(s + j, sv);
        vmax = _mm256_max_ps(vmax, sv);
    }
    float mx = zc_hmax256(vmax);
    for (; j < n; j++) {
        s[j] = dot_one(qr, k + (size_t)j * ks, hd, hd8, tail);
        if (s[j] > mx) mx = s[j];
    }
    return mx;
}

static void scale_row(float *a, int hd8, float corr) {
    __m256 vc = _mm256_set1_ps(corr);
    for (int d = 0; d < hd8; d += 8) _mm256_storeu_ps(a + d, _mm256_mul_ps(_mm256_loadu_ps(a + d), vc));
}

void zc_attn_tile_avx2(int n_rows, int G, const int *nvalid, const float *q, int hd, int nk, const float *k,
                       size_t ks, const float *v, size_t vs, float *s, float *m, float *l, float *acc) {
    (void)nk;
    int hd8 = hd & ~7;
    __m256i tail = zc_mask8(hd - hd8);
    float *s1 = s + ZC_ATTN_BK;
    for (int r = 0; r < n_rows;) {
        int n = nvalid[r / G];
        if (n <= 0) {
            r++;
            continue;
        }
        float *ar = acc + (size_t)r * hd;
        if (hd8 == hd && r + 1 < n_rows && nvalid[(r + 1) / G] == n) { /* two rows that see the same keys */
            float mx0, mx1;
            zc_scores2(q + (size_t)r * hd, q + (size_t)(r + 1) * hd, hd, n, k, ks, s, s1, &mx0, &mx1);
            float c0 = zc_softmax_row_avx2(s, n, mx0, m + r, l + r), c1 = zc_softmax_row_avx2(s1, n, mx1, m + r + 1, l + r + 1);
            scale_row(ar, hd, c0);
            scale_row(ar + hd, hd, c1);
            zc_axpy2(n, s, s1, v, vs, hd, ar, ar + hd);
            r += 2;
            continue;
        }
        float corr = zc_softmax_row_avx2(s, n, scores_avx2(q + (size_t)r * hd, hd, n, k, ks, s), m + r, l + r);
        scale_row(ar, hd8, corr);
        zc_axpy_rows(n, s, v, vs, hd8, ar);
        if (hd8 < hd) {
            __m256 a = _mm256_mul_ps(_mm256_maskload_ps(ar + hd8, tail), _mm256_set1_ps(corr));
            const float *vd = v + hd8;
            for (int j = 0; j < n; j++)
                a = _mm256_fmadd_ps(_mm256_set1_ps(s[j]), _mm256_maskload_ps(vd + (size_t)j * vs, tail), a);
            _mm256_maskstore_ps(ar + hd8, tail, a);
        }
        r++;
    }
}

void zc_attn_colsum_row_avx2(const float *qh, float scale, float lse, int n, int hd, const float *k, size_t ks,
                             float *s, float *col) {
    scores_avx2(qh, hd, n, k, ks, s);
    int j = 0;
    __m256 vs = _mm256_set1_ps(scale), vl = _mm256_set1_ps(lse);
    for (; j + 8 <= n; j += 8) {
        __m256 p = zc_exp256(_mm256_fmsub_ps(_mm256_loadu_ps(s + j), vs, vl));
        _mm256_storeu_ps(col + j, _mm256_add_ps(_mm256_loadu_ps(col + j), p));
    }
    for (; j < n; j++) col[j] += expf(s[j] * scale - lse);
}

void zc_attn_f16_rows_avx2(const uint16_t *src, size_t stride, int n, int hd, float *dst) {
    int hd8 = hd & ~7;
    for (int j = 0; j < n; j++) {
        const uint16_t *sr = src + (size_t)j * stride;
        float *o = dst + (size_t)j * hd;
        int d = 0;
        for (; d < hd8; d += 8) _mm256_storeu_ps(o + d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sr + d))));
        for (; d < hd; d++) o[d] = _cvtsh_ss(sr[d]);
    }
}
