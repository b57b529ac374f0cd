/* Full-precision attention: the tiled / split-KV kernels against the plain
 * double-precision reference, for fp32 and fp16 K/V, GQA ratios 1-8, head
 * dims 8-128, decode at many positions and prefill continuing a cache.
 *
 * Tolerance: |fast - ref| <= 1e-5 * (1 + |ref|) for every output element
 * and every lse. The fast path accumulates in fp32 (dot products of <= 128
 * terms, an online softmax over <= 3000 keys) against a double reference,
 * so typical errors are ~1e-7; 1e-5 leaves room without hiding a wrong
 * mask, scale or merge (those show up as errors of 1e-2 and more).
 */
#include <stdint.h>

#include "attn/attn.h"
#include "quant/ggml_blocks.h"
#include "tt.h"
#include "util/cpu.h"
#include "util/fp16.h"
#include "zipcache.h"

#define TOL 1e-5

typedef struct {
    zc_attn_dims d;
    int n_q, pos0, n_kv, kv_type;
    size_t stride;
    float *q;  /* [n_q][n_heads*hd] */
    void *k;   /* [n_kv][stride] */
    void *v;   /* [n_kv][stride] */
} problem;

static unsigned long long g_seed = 0x1234567ull;

static void problem_make(problem *p, int n_kv_heads, int G, int hd, int n_q, int pos0, int n_kv, int kv_type,
                         int pad) {
    p->d = (zc_attn_dims){n_kv_heads * G, n_kv_heads, hd};
    p->n_q = n_q;
    p->pos0 = pos0;
    p->n_kv = n_kv;
    p->kv_type = kv_type;
    p->stride = (size_t)n_kv_heads * hd + pad;
    size_t nq = (size_t)n_q * p->d.n_heads * hd, nkv = (size_t)n_kv * p->stride;
    p->q = malloc(nq * sizeof(float));
    size_t esz = kv_type == ZC_TYPE_F32 ? 4 : 2;
    p->k = malloc(nkv * esz);
    p->v = malloc(nkv * esz);
    /* Queries scaled up so softmax rows are peaked (scores of several units),
     * which is where a wrong max or merge would show. */
    for (size_t i = 0; i < nq; i++) p->q[i] = 3.0f * tt_randf(&g_seed);
    for (size_t i = 0; i < nkv; i++) {
        float a = tt_randf(&g_seed), b = tt_randf(&g_seed);
        if (kv_type == ZC_TYPE_F32) {
            ((float *)p->k)[i] = a;
            ((float *)p->v)[i] = b;
        } else {
            ((zc_fp16 *)p->k)[i] = zc_f32_to_fp16(a);
            ((zc_fp16 *)p->v)[i] = zc_f32_to_fp16(b);
        }
    }
}

static void problem_free(problem *p) {
    free(p->q);
    free(p->k);
    free(p->v);
}

static double max_err(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]) / (1.0 + fabs((double)b[i]));
        if (!(e <= worst)) worst = e; /* NaN propagates as a failure */
    }
    return worst;
}

/* Run fast (with `pool`) and reference; return the worst relative error of
 * outputs and lse together. */
static double run_case(const problem *p, zc_pool *pool, zc_attn_scratch *scr) {
    size_t no = (size_t)p->n_q * p->d.n_heads * p->d.head_dim, nl = (size_t)p->n_q * p->d.n_heads;
    float *o1 = malloc(no * sizeof(float)), *o2 = malloc(no * sizeof(float));
    float *l1 = malloc(nl * sizeof(float)), *l2 = malloc(nl * sizeof(float));
    int rc = zc_attn_forward(pool, &p->d, p->q, p->n_q, p->pos0, p->k, p->v, p->kv_type, p->stride, p->n_kv, o1,
                             l1, scr);
    TT_CHECK(rc == 0, "zc_attn_forward rc=%d", rc);
    zc_attn_reference(&p->d, p->q, p->n_q, p->pos0, p->k, p->v, p->kv_type, p->stride, p->n_kv, o2, l2);
    double e = max_err(o1, o2, no), el = max_err(l1, l2, nl);
    free(o1);
    free(o2);
    free(l1);
    free(l2);
    return e > el ? e : el;
}

static const int kRatios[] = {1, 2, 4, 8};
static const int kDims[] = {8, 16, 64, 128};

static void test_decode(void) {
    static const int pos[] = {0, 1, 7, 63, 64, 65, 255, 256, 1000, 2999};
    zc_attn_scratch scr = {0};
    zc_pool *pool = zc_pool_create(2);
    for (int t = 0; t < 2; t++)
        for (int ri = 0; ri < 4; ri++)
            for (int di = 0; di < 4; di++)
                for (int pi = 0; pi < 10; pi++) {
                    int type = t ? ZC_TYPE_F16 : ZC_TYPE_F32;
                    problem p;
                    problem_make(&p, 2, kRatios[ri], kDims[di], 1, pos[pi], pos[pi] + 1, type, pi & 1 ? 5 : 0);
                    double e = run_case(&p, pool, &scr);
                    TT_CHECK(e <= TOL, "decode type=%d G=%d hd=%d pos=%d err=%.3g", type, kRatios[ri], kDims[di],
                             pos[pi], e);
                    problem_free(&p);
                }
    zc_pool_destroy(pool);
    zc_attn_scratch_free(&scr);
}

static void test_prefill(void) {
    static const int nqs[] = {2, 5, 16, 17, 33, 100, 300};
    zc_attn_scratch scr = {0};
    zc_pool *pool = zc_pool_create(2);
    for (int t = 0; t < 2; t++)
        for (int ri = 0; ri < 4; ri++)
            for (int di = 0; di < 4; di++)
                for (int ni = 0; ni < 7; ni++) {
                    int type = t ? ZC_TYPE_F16 : ZC_TYPE_F32;
                    int n_q = nqs[ni], pos0 = (ni * 131 + di * 17) % 400 + 1;
                    /* keep the reference cheap at the largest shapes */
                    int hkv = kRatios[ri] * kDims[di] >= 256 ? 1 : 2;
                    problem p;
                    problem_make(&p, hkv, kRatios[ri], kDims[di], n_q, pos0, pos0 + n_q, type, ni & 1 ? 3 : 0);
                    double e = run_case(&p, pool, &scr);
                    TT_CHECK(e <= TOL, "prefill type=%d G=%d hd=%d n_q=%d pos0=%d err=%.3g", type, kRatios[ri],
                             kDims[di], n_q, pos0, e);
                    problem_free(&p);
                }
    zc_pool_destroy(pool);
    zc_attn_scratch_free(&scr);
}

/* A fresh prompt (pos0 = 0), a long one continuing a long cache, and queries
 * beyond the stored keys (they see keys up to n_kv - 1 only). */
static void test_edges(void) {
    zc_attn_scratch scr = {0};
    problem p;
    problem_make(&p, 4, 2, 16, 257, 0, 257, ZC_TYPE_F32, 0);
    double e = run_case(&p, NULL, &scr);
    TT_CHECK(e <= TOL, "prompt from 0 err=%.3g", e);
    problem_free(&p);
    problem_make(&p, 1, 4, 64, 40, 2500, 2540, ZC_TYPE_F16, 0);
    e = run_case(&p, NULL, &scr);
    TT_CHECK(e <= TOL, "prefill at 2500 err=%.3g", e);
    problem_free(&p);
    for (int n_q = 1; n_q <= 40; n_q += 39) {
        problem_make(&p, 2, 2, 16, n_q, 90, 50, ZC_TYPE_F32, 0);
        e = run_case(&p, NULL, &scr);
        TT_CHECK(e <= TOL, "keys capped at n_kv n_q=%d err=%.3g", n_q, e);
        problem_free(&p);
    }
    zc_attn_scratch_free(&scr);
}

/* The thread count changes the decode chunking and the task order, never
 * the answer beyond rounding. */
static void test_threads(void) {
    zc_attn_scratch s1 = {0}, s2 = {0};
    zc_pool *pools[3] = {NULL, zc_pool_create(2), zc_pool_create(3)};
    for (int c = 0; c < 2; c++) {
        problem p;
        if (c == 0)
            problem_make(&p, 1, 4, 64, 1, 3000, 3001, ZC_TYPE_F16, 0); /* decode: 1 KV head, many chunks */
        else
            problem_make(&p, 2, 4, 32, 200, 100, 300, ZC_TYPE_F32, 0);
        size_t no = (size_t)p.n_q * p.d.n_heads * p.d.head_dim, nl = (size_t)p.n_q * p.d.n_heads;
        float *o0 = malloc(no * 4), *o1 = malloc(no * 4), *l0 = malloc(nl * 4), *l1 = malloc(nl * 4);
        zc_attn_forward(NULL, &p.d, p.q, p.n_q, p.pos0, p.k, p.v, p.kv_type, p.stride, p.n_kv, o0, l0, &s1);
        for (int i = 1; i < 3; i++) {
            zc_attn_forward(pools[i], &p.d, p.q, p.n_q, p.pos0, p.k, p.v, p.kv_type, p.stride, p.n_kv, o1, l1, &s2);
            double e = max_err(o1, o0, no), el = max_err(l1, l0, nl);
            TT_CHECK(e <= 1e-6 && el <= 1e-6, "case %d threads=%d err=%.3g lse err=%.3g", c, i + 1, e, el);
        }
        free(o0);
        free(o1);
        free(l0);
        free(l1);
        problem_free(&p);
    }
    zc_pool_destroy(pools[1]);
    zc_pool_destroy(pools[2]);
    zc_attn_scratch_free(&s1);
    zc_attn_scratch_free(&s2);
}

/* Forced scalar against AVX2, each against the reference and against each
 * other (the kernels differ only in summation order and exp rounding). */
static void test_scalar_vs_simd(void) {
    zc_cpu_set_simd(1);
    if (!zc_cpu_has_avx2()) {
        zc_cpu_set_simd(-1);
        TT_SKIP("no AVX2 on this CPU");
    }
    zc_attn_scratch scr = {0};
    static const int shapes[][4] = {{1, 13, 1, 700}, {2, 64, 1, 2100}, {4, 8, 37, 60}, {8, 128, 20, 150}};
    for (int t = 0; t < 2; t++)
        for (int si = 0; si < 4; si++) {
            problem p;
            int G = shapes[si][0], hd = shapes[si][1], n_q = shapes[si][2], pos0 = shapes[si][3];
            problem_make(&p, 1, G, hd, n_q, pos0, pos0 + n_q, t ? ZC_TYPE_F16 : ZC_TYPE_F32, 0);
            size_t no = (size_t)n_q * G * hd, nl = (size_t)n_q * G;
            float *o[2], *l[2];
            for (int s = 0; s < 2; s++) {
                o[s] = malloc(no * 4);
                l[s] = malloc(nl * 4);
                zc_cpu_set_simd(s);
                double e = run_case(&p, NULL, &scr);
                TT_CHECK(e <= TOL, "simd=%d G=%d hd=%d err=%.3g", s, G, hd, e);
                zc_attn_forward(NULL, &p.d, p.q, n_q, pos0, p.k, p.v, p.kv_type, p.stride, p.n_kv, o[s], l[s], &scr);
            }
            double e = max_err(o[1], o[0], no), el = max_err(l[1], l[0], nl);
            TT_CHECK(e <= 2e-6 && el <= 2e-6, "scalar vs avx2 G=%d hd=%d err=%.3g lse err=%.3g", G, hd, e, el);
            for (int s = 0; s < 2; s++) {
                free(o[s]);
                free(l[s]);
            }
            problem_free(&p);
        }
    zc_cpu_set_simd(-1);
    zc_attn_scratch_free(&scr);
}

/* Probe column sums against a double computation of the same softmax rows:
 * |fast - ref| <= 1e-5 (1 + |ref|); threads and scalar/AVX2 within tolerance. */
static void test_colsum(void) {
    static const int shapes[][2] = {{1, 8}, {4, 64}, {2, 13}, {8, 128}};
    zc_attn_scratch scr = {0};
    zc_pool *pool = zc_pool_create(2);
    for (int t = 0; t < 2; t++)
        for (int si = 0; si < 4; si++) {
            int G = shapes[si][0], hd = shapes[si][1], n_q = 50, pos0 = 120, hkv = 2;
            problem p;
            problem_make(&p, hkv, G, hd, n_q, pos0, pos0 + n_q, t ? ZC_TYPE_F16 : ZC_TYPE_F32, 0);
            int nh = hkv * G, n_kv = p.n_kv;
            float *out = malloc((size_t)n_q * nh * hd * 4), *lse = malloc((size_t)n_q * nh * 4);
            zc_attn_reference(&p.d, p.q, n_q, pos0, p.k, p.v, p.kv_type, p.stride, n_kv, out, lse);
            int rows[20], n_rows = 0;
            for (int i = 1; i < n_q; i += 3) rows[n_rows++] = i;
            double *ref = calloc((size_t)hkv * n_kv, sizeof(double));
            for (int r = 0; r < n_rows; r++)
                for (int h = 0; h < nh; h++) {
                    int i = rows[r], g = h / G;
                    for (int j = 0; j <= pos0 + i; j++) {
                        double dot = 0;
                        for (int e = 0; e < hd; e++) {
                            size_t at = (size_t)j * p.stride + (size_t)g * hd + e;
                            double kv = t ? zc_fp16_to_f32(((zc_fp16 *)p.k)[at]) : ((float *)p.k)[at];
                            dot += (double)p.q[(size_t)i * nh * hd + (size_t)h * hd + e] * kv;
                        }
                        ref[(size_t)g * n_kv + j] += exp(dot / sqrt((double)hd) - lse[(size_t)i * nh + h]);
                    }
                }
            float *col[3];
            for (int v = 0; v < 3; v++) { /* 0: avx2 single, 1: avx2 two threads, 2: scalar */
                col[v] = calloc((size_t)hkv * n_kv, sizeof(float));
                zc_cpu_set_simd(v == 2 ? 0 : -1);
                int rc = zc_attn_colsum(v == 1 ? pool : NULL, &p.d, p.q, rows, n_rows, pos0, p.k, p.kv_type, p.stride,
                                        n_kv, lse, col[v], (size_t)n_kv, &scr);
                TT_CHECK(rc == 0, "colsum rc %d", rc);
                double worst = 0;
                for (size_t j = 0; j < (size_t)hkv * n_kv; j++) {
                    double e = fabs(col[v][j] - ref[j]) / (1.0 + fabs(ref[j]));
                    worst = e > worst ? e : worst;
                }
                TT_CHECK(worst <= TOL, "colsum variant %d type %d G=%d hd=%d err %.3g", v, t, G, hd, worst);
                free(col[v]);
            }
            zc_cpu_set_simd(-1);
            free(ref);
            free(out);
            free(lse);
            problem_free(&p);
        }
    zc_pool_destroy(pool);
    zc_attn_scratch_free(&scr);
}

static void test_bad_args(void) {
    zc_attn_scratch scr = {0};
    float q[8] = {0}, kv[8] = {0}, out[8];
    zc_attn_dims bad = {3, 2, 4}, ok = {1, 1, 8};
    TT_CHECK(zc_attn_forward(NULL, &bad, q, 1, 0, kv, kv, ZC_TYPE_F32, 8, 1, out, NULL, &scr) == ZC_ERR_ARG, "G");
    TT_CHECK(zc_attn_forward(NULL, &ok, q, 1, 0, kv, kv, ZC_TYPE_Q4_0, 8, 1, out, NULL, &scr) == ZC_ERR_ARG, "type");
    TT_CHECK(zc_attn_forward(NULL, &ok, q, 1, 0, kv, kv, ZC_TYPE_F32, 4, 1, out, NULL, &scr) == ZC_ERR_ARG, "stride");
    TT_CHECK(zc_attn_forward(NULL, &ok, q, 1, 0, kv, kv, ZC_TYPE_F32, 8, 0, out, NULL, &scr) == ZC_ERR_ARG, "n_kv");
    TT_CHECK(zc_attn_forward(NULL, &ok, q, 1, -1, kv, kv, ZC_TYPE_F32, 8, 1, out, NULL, &scr) == ZC_ERR_ARG, "pos");
    zc_attn_scratch_free(&scr);
}

int main(void) {
    TT_RUN(test_decode);
    TT_RUN(test_prefill);
    TT_RUN(test_edges);
    TT_RUN(test_threads);
    TT_RUN(test_scalar_vs_simd);
    TT_RUN(test_colsum);
    TT_RUN(test_bad_args);
    return tt_finish();
}
