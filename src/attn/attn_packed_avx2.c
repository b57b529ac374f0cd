/* AVX2 kernels for attention on packed codes (contracts in attn_impl.h).
 * head_dim is a multiple of 8 here (zc_attn_packed checks), so rows need no
 * masked tails; the integer path additionally has head_dim % 32 == 0. */
#include <math.h>

#include "attn/attn_impl.h"
#include "quant/pack.h"

/* the integer path with AVX2's u8 x s8 products: maddubs pair sums, widened
 * to int32 lanes by madd with ones */
#define ZC_DPBUSD(acc, u, s) \
    _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#define I8X86(name) name##_avx2
#define I8X86_VROWS 2
#include "attn/attn_packed_i8_x86.h"

static void scores_f32_avx2(int nt, int hd, const float *qs, float bias, const float *kf, float *s) {
    __m256 vb = _mm256_set1_ps(bias);
    int t = 0;
    for (; t + 8 <= nt; t += 8) {
        const float *k0 = kf + (size_t)t * hd;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int c = 0; c < hd; c += 8) {
            __m256 qv = _mm256_loadu_ps(qs + c);
            const float *kc = k0 + c;
            a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kc), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kc + hd), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kc + 2 * hd), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kc + 3 * hd), a3);
            a4 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kc + 4 * hd), a4);
            a5 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kc + 5 * hd), a5);
            a6 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kc + 6 * hd), a6);
            a7 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kc + 7 * hd), a7);
        }
        _mm256_storeu_ps(s + t, _mm256_add_ps(vb, zc_hsum8x8(a0, a1, a2, a3, a4, a5, a6, a7)));
    }
    for (; t < nt; t++) {
        __m256 a = _mm256_setzero_ps();
        for (int c = 0; c < hd; c += 8)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(qs + c), _mm256_loadu_ps(kf + (size_t)t * hd + c), a);
        s[t] = bias + zc_hsum256(a);
    }
}

static float softmax_avx2(int nt, float *s, float *m, float *l) {
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int t = 0;
    for (; t + 8 <= nt; t += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(s + t));
    float mx = zc_hmax256(vmax);
    for (; t < nt; t++) mx = s[t] > mx ? s[t] : mx;
    return zc_softmax_row_avx2(s, nt, mx, m, l);
}

/* w = p * step and sum_t p_t min_t for one row. */
static float row_weights_avx2(int nt, const float *p, const float *step, const float *min, float *w) {
    int n8 = nt & ~7;
    __m256 pm = _mm256_setzero_ps();
    for (int t = 0; t < n8; t += 8) {
        __m256 pt = _mm256_loadu_ps(p + t);
        _mm256_storeu_ps(w + t, _mm256_mul_ps(pt, _mm256_loadu_ps(step + t)));
        pm = _mm256_fmadd_ps(pt, _mm256_loadu_ps(min + t), pm);
    }
    float pmin = zc_hsum256(pm);
    for (int t = n8; t < nt; t++) {
        w[t] = p[t] * step[t];
        pmin += p[t] * min[t];
    }
    return pmin;
}

/* acc = acc * corr + norm * (u + pmin), u the row's token sum. */
static void finish_row(int nc, const float *u, const float *norm, float corr, float pmin, float *acc) {
    __m256 vc = _mm256_set1_ps(corr), vp = _mm256_set1_ps(pmin);
    for (int c = 0; c < nc; c += 8) {
        __m256 sum = _mm256_add_ps(_mm256_loadu_ps(u + c), vp);
        _mm256_storeu_ps(acc + c, _mm256_fmadd_ps(_mm256_loadu_ps(norm + c), sum, _mm256_mul_ps(_mm256_loadu_ps(acc + c), vc)));
    }
}

static void value_row_avx2(int nt, int hd, const float *p, const float *step, const float *min, const float *vf,
                           const float *norm, float corr, float *w, float *acc) {
    float pmin = row_weights_avx2(nt, p, step, min, w);
    float u[256];
    for (int c0 = 0; c0 < hd; c0 += 256) { /* u holds up to 256 channels at a time */
        int nc = hd - c0 < 256 ? hd - c0 : 256;
        for (int c = 0; c < nc; c += 8) _mm256_storeu_ps(u + c, _mm256_setzero_ps());
        zc_axpy_rows(nt, w, vf + c0, (size_t)hd, nc, u);
        finish_row(nc, u, norm + c0, corr, pmin, acc + c0);
    }
}

static void to_f32_avx2(const uint8_t *src, size_t n, float *dst) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(src + i)))));
    for (; i < n; i++) dst[i] = (float)src[i];
}

static void h2f_avx2(const uint16_t *src, int n, float *dst) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}

static void scores2_f32_avx2(int nt, int hd, const float *qs0, const float *qs1, float bias0, float bias1,
                             const float *kf, float *s0, float *s1) {
    float mx0, mx1;
    zc_scores2(qs0, qs1, hd, nt, kf, (size_t)hd, s0, s1, &mx0, &mx1);
    for (int t = 0; t < nt; t++) {
        s0[t] += bias0;
        s1[t] += bias1;
    }
}

static void value_row2_avx2(int nt, int hd, const float *p0, const float *p1, const float *step, const float *min,
                            const float *vf, const float *norm, float corr0, float corr1, float *w0, float *w1,
                            float *acc0, float *acc1) {
    float pmin0 = row_weights_avx2(nt, p0, step, min, w0), pmin1 = row_weights_avx2(nt, p1, step, min, w1);
    float u0[256], u1[256];
    for (int c0 = 0; c0 < hd; c0 += 256) { /* u0, u1 hold up to 256 channels at a time */
        int nc = hd - c0 < 256 ? hd - c0 : 256;
        for (int c = 0; c < nc; c += 8) {
            _mm256_storeu_ps(u0 + c, _mm256_setzero_ps());
            _mm256_storeu_ps(u1 + c, _mm256_setzero_ps());
        }
        zc_axpy2(nt, w0, w1, vf + c0, (size_t)hd, nc, u0, u1);
        finish_row(nc, u0, norm + c0, corr0, pmin0, acc0 + c0);
        finish_row(nc, u1, norm + c0, corr1, pmin1, acc1 + c0);
    }
}

/* The integer path's byte weights (nt % 8 == 0), as weights_scalar computes
 * them: the same products, maximum, fused multiply-add and truncation, so the
 * same bytes; only pmin's summation order differs. No dot products, so one
 * AVX2 version serves the VNNI table too. */
static void weights_avx2(int nt, const float *p, const float *step, const float *min, uint8_t *wq, float *scale,
                         float *pmin) {
    __m256 mx = _mm256_setzero_ps(), pm = _mm256_setzero_ps();
    for (int t = 0; t < nt; t += 8) {
        __m256 pt = _mm256_loadu_ps(p + t);
        mx = _mm256_max_ps(mx, _mm256_mul_ps(pt, _mm256_loadu_ps(step + t)));
        pm = _mm256_fmadd_ps(pt, _mm256_loadu_ps(min + t), pm);
    }
    float wmax = zc_hmax256(mx), inv = wmax > 0.0f ? 255.0f / wmax : 0.0f;
    __m256 vi = _mm256_set1_ps(inv), half = _mm256_set1_ps(0.5f);
    for (int t = 0; t < nt; t += 8) {
        __m256 w = _mm256_mul_ps(_mm256_loadu_ps(p + t), _mm256_loadu_ps(step + t));
        __m256i q = _mm256_cvttps_epi32(_mm256_fmadd_ps(w, vi, half));
        __m128i q16 = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(wq + t), _mm_packus_epi16(q16, q16));
    }
    *scale = wmax * (1.0f / 255.0f);
    *pmin = zc_hsum256(pm);
}

/* hd % 8 == 0 here; the same products, comparisons and roundings as fold_scalar. */
static void fold_avx2(int R, int hd, const float *qb, const float *kstep, const float *kmin, float *qs, float *qmin,
                      int8_t *qq, float *qa) {
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f);
    for (int r = 0; r < R; r++) {
        const float *qr = qb + (size_t)r * hd;
        float *qsr = qs + (size_t)r * hd;
        __m256 bias = _mm256_setzero_ps(), amax = _mm256_setzero_ps();
        for (int e = 0; e < hd; e += 8) {
            __m256 q = _mm256_loadu_ps(qr + e), x = _mm256_mul_ps(q, _mm256_loadu_ps(kstep + e));
            _mm256_storeu_ps(qsr + e, x);
            bias = _mm256_fmadd_ps(q, _mm256_loadu_ps(kmin + e), bias);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, x));
        }
        qmin[r] = zc_hsum256(bias);
        if (!qq) continue;
        float mx = zc_hmax256(amax), inv = mx > 0.0f ? 127.0f / mx : 0.0f;
        __m256 vi = _mm256_set1_ps(inv);
        for (int e = 0; e < hd; e += 8) {
            __m256 x = _mm256_mul_ps(_mm256_loadu_ps(qsr + e), vi);
            /* x + copysign(0.5, x), truncated: half away from zero */
            __m256i q = _mm256_cvttps_epi32(_mm256_add_ps(x, _mm256_or_ps(half, _mm256_and_ps(sign, x))));
            __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
            _mm_storel_epi64((__m128i *)(qq + (size_t)r * hd + e), _mm_packs_epi16(q16, q16));
        }
        qa[r] = mx / 127.0f;
    }
}

const zc_packed_kernels zc_packed_kernels_avx2 = {zc_unpack_avx2,   to_f32_avx2,      h2f_avx2,
                                                  fold_avx2,        scores_f32_avx2,  softmax_avx2,
                                                  value_row_avx2,   scores2_f32_avx2, value_row2_avx2,
                                                  scores_t_avx2,    weights_avx2,     value_t_avx2};
