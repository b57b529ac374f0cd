/* Saliency: scores on hand-made attention matrices with known answers,
 * probe denominators, GQA grouping, probe selection (reproducible, sorted,
 * distinct, the spec's counts and L < 20 cases), top-r selection (ties, sinks,
 * bitmap and index outputs). */
#include <stdint.h>

#include "quant/saliency.h"
#include "tt.h"
#include "zipcache.h"

/* Dyadic causal rows, so every sum below is exact in float:
 *   row 0: 1
 *   row 1: .5   .5
 *   row 2: .25  .25  .5
 *   row 3: .125 .125 .25 .5 */
static const float A4[4][4] = {{1, 0, 0, 0}, {0.5f, 0.5f, 0, 0}, {0.25f, 0.25f, 0.5f, 0}, {0.125f, 0.125f, 0.25f, 0.5f}};

static void test_exact_scores(void) {
    float s[4];
    TT_CHECK(zc_sal_scores(&A4[0][0], 4, 0, 1, NULL, 4, 4, ZC_DENOM_NONE, s) == ZC_OK, "accumulated");
    TT_CHECK(s[0] == 1.875f && s[1] == 0.875f && s[2] == 0.75f && s[3] == 0.5f, "acc %g %g %g %g", s[0], s[1], s[2],
             s[3]);
    TT_CHECK(zc_sal_scores(&A4[0][0], 4, 0, 1, NULL, 4, 4, ZC_DENOM_CAUSAL, s) == ZC_OK, "normalized");
    TT_CHECK(s[0] == 1.875f / 4 && s[1] == 0.875f / 3 && s[2] == 0.375f && s[3] == 0.5f, "norm %g %g %g %g", s[0],
             s[1], s[2], s[3]);
    /* The paper's point: accumulated favours early tokens, normalized does not.
     * Top 2: accumulated {0, 1}; normalized {3, 0}. */
    int32_t idx[4];
    float acc[4];
    zc_sal_scores(&A4[0][0], 4, 0, 1, NULL, 4, 4, ZC_DENOM_NONE, acc);
    TT_CHECK(zc_sal_select(acc, 4, 2, 0, NULL, idx, NULL) == 2 && idx[0] == 0 && idx[1] == 1, "acc top2 %d %d", idx[0],
             idx[1]);
    TT_CHECK(zc_sal_select(s, 4, 2, 0, NULL, idx, NULL) == 2 && idx[0] == 0 && idx[1] == 3, "norm top2 %d %d", idx[0],
             idx[1]);
}

/* Probes at positions 1 and 3 (rows 1 and 3): column sums .625 .625 .25 .5;
 * CAUSAL divides by 4 3 2 1, PROBES by the probes that see j: 2 2 1 1. */
static void test_probe_denominators(void) {
    const float rows[2][4] = {{0.5f, 0.5f, 0, 0}, {0.125f, 0.125f, 0.25f, 0.5f}};
    const int32_t pos[2] = {1, 3};
    float s[4];
    TT_CHECK(zc_sal_scores(&rows[0][0], 4, 0, 1, pos, 2, 4, ZC_DENOM_CAUSAL, s) == ZC_OK, "causal");
    TT_CHECK(s[0] == 0.625f / 4 && s[1] == 0.625f / 3 && s[2] == 0.125f && s[3] == 0.5f, "causal %g %g %g %g", s[0],
             s[1], s[2], s[3]);
    TT_CHECK(zc_sal_scores(&rows[0][0], 4, 0, 1, pos, 2, 4, ZC_DENOM_PROBES, s) == ZC_OK, "probes");
    TT_CHECK(s[0] == 0.3125f && s[1] == 0.3125f && s[2] == 0.25f && s[3] == 0.5f, "probes %g %g %g %g", s[0], s[1],
             s[2], s[3]);
    /* a column no probe can see scores 0 under PROBES */
    const int32_t pos1[1] = {1};
    TT_CHECK(zc_sal_scores(&rows[0][0], 4, 0, 1, pos1, 1, 4, ZC_DENOM_PROBES, s) == ZC_OK, "one probe");
    TT_CHECK(s[0] == 0.5f && s[1] == 0.5f && s[2] == 0 && s[3] == 0, "one probe %g %g %g %g", s[0], s[1], s[2], s[3]);
    /* bad arguments */
    const int32_t unsorted[2] = {3, 1}, outside[2] = {1, 4};
    TT_CHECK(zc_sal_scores(&rows[0][0], 4, 0, 1, unsorted, 2, 4, ZC_DENOM_CAUSAL, s) == ZC_ERR_ARG, "unsorted");
    TT_CHECK(zc_sal_scores(&rows[0][0], 4, 0, 1, outside, 2, 4, ZC_DENOM_CAUSAL, s) == ZC_ERR_ARG, "outside");
}

/* 4 query heads on 2 KV heads: heads 0,1 -> KV 0, heads 2,3 -> KV 1. Head h
 * is A4 scaled by (h + 1), so the group sums are 3*A4 and 7*A4. */
static void test_gqa(void) {
    static float A[4][4][4];
    for (int h = 0; h < 4; h++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) A[h][i][j] = A4[i][j] * (float)(h + 1);
    float s[2][4], l[4];
    TT_CHECK(zc_sal_scores_gqa(&A[0][0][0], 4, 16, 4, 2, 0, NULL, 4, 4, ZC_DENOM_NONE, &s[0][0]) == ZC_OK, "per kv");
    TT_CHECK(zc_sal_scores_gqa(&A[0][0][0], 4, 16, 4, 2, 1, NULL, 4, 4, ZC_DENOM_NONE, l) == ZC_OK, "per layer");
    const float acc[4] = {1.875f, 0.875f, 0.75f, 0.5f};
    for (int j = 0; j < 4; j++) {
        TT_CHECK(s[0][j] == 3 * acc[j] && s[1][j] == 7 * acc[j], "j=%d %g %g", j, s[0][j], s[1][j]);
        TT_CHECK(l[j] == 10 * acc[j], "layer j=%d %g", j, l[j]);
    }
    TT_CHECK(zc_sal_scores_gqa(&A[0][0][0], 4, 16, 4, 3, 0, NULL, 4, 4, ZC_DENOM_NONE, l) == ZC_ERR_ARG, "4 on 3");
}

static int ascending_distinct(const int32_t *p, int n, int L) {
    for (int i = 0; i < n; i++)
        if (p[i] < 0 || p[i] >= L || (i && p[i] <= p[i - 1])) return 0;
    return 1;
}

static void test_probe_selection(void) {
    static int32_t a[840], b[840];
    zc_probe_cfg cfg;
    zc_probe_default(&cfg);
    cfg.seed = 1234;
    /* L = 840: 42 random in [0, 798) + recent [798, 840) */
    int n = zc_probe_select(&cfg, 840, 0, a);
    TT_CHECK(n == 84 && ascending_distinct(a, n, 840), "n=%d", n);
    TT_CHECK(a[41] < 798 && a[42] == 798 && a[83] == 839, "split %d %d %d", a[41], a[42], a[83]);
    /* reproducible for (seed, stream), different for another seed or stream */
    TT_CHECK(zc_probe_select(&cfg, 840, 0, b) == 84 && memcmp(a, b, sizeof(int32_t) * 84) == 0, "same seed");
    zc_probe_select(&cfg, 840, 1, b);
    TT_CHECK(memcmp(a, b, sizeof(int32_t) * 42) != 0, "stream 1 draws the same");
    cfg.seed = 1235;
    zc_probe_select(&cfg, 840, 0, b);
    TT_CHECK(memcmp(a, b, sizeof(int32_t) * 42) != 0, "seed 1235 draws the same");
    /* L < 20: no random probes, at least one recent */
    const int Ls[] = {1, 2, 10, 19};
    for (int i = 0; i < 4; i++) {
        n = zc_probe_select(&cfg, Ls[i], 0, a);
        int want = Ls[i] - (int)(0.95 * Ls[i] + 1e-9);
        TT_CHECK(n == want && a[n - 1] == Ls[i] - 1 && ascending_distinct(a, n, Ls[i]), "L=%d n=%d", Ls[i], n);
    }
    n = zc_probe_select(&cfg, 20, 0, a);
    TT_CHECK(n == 2 && a[0] < 19 && a[1] == 19, "L=20 n=%d", n);
    /* other strategies */
    TT_CHECK(zc_probe_parse("random:0.1", &cfg) == ZC_OK && cfg.kind == ZC_PROBES_RANDOM, "parse random");
    n = zc_probe_select(&cfg, 200, 0, a);
    TT_CHECK(n == 20 && ascending_distinct(a, n, 200), "random n=%d", n);
    n = zc_probe_select(&cfg, 10, 0, a);
    TT_CHECK(n == 1 && a[0] == 9, "random, L=10: n=%d", n);
    TT_CHECK(zc_probe_parse("recent:0.1", &cfg) == ZC_OK && zc_probe_select(&cfg, 200, 0, a) == 20 && a[0] == 180,
             "recent");
    TT_CHECK(zc_probe_parse("all", &cfg) == ZC_OK && zc_probe_select(&cfg, 37, 0, a) == 37 && a[36] == 36, "all");
    TT_CHECK(zc_probe_parse("random+recent:0.1:0.2", &cfg) == ZC_OK && cfg.random_frac == 0.1 &&
                 cfg.recent_frac == 0.2,
             "parse pair");
    TT_CHECK(zc_probe_parse("random:0", &cfg) == ZC_ERR_ARG && zc_probe_parse("recent:0.1x", &cfg) == ZC_ERR_ARG &&
                 zc_probe_parse("random+recent:0.1", &cfg) == ZC_ERR_ARG && zc_probe_parse("first", &cfg) == ZC_ERR_ARG,
             "bad specs");
    /* uniform without replacement: over 4000 seeds each of 100 positions is
     * drawn 4000 * 10/100 = 400 times on average; allow +-25% */
    static int count[100];
    zc_probe_parse("random:0.1", &cfg);
    for (uint64_t seed = 0; seed < 4000; seed++) {
        cfg.seed = seed;
        n = zc_probe_select(&cfg, 100, 0, a);
        for (int i = 0; i < n; i++) count[a[i]]++;
    }
    int lo = 1 << 30, hi = 0;
    for (int i = 0; i < 100; i++) {
        lo = count[i] < lo ? count[i] : lo;
        hi = count[i] > hi ? count[i] : hi;
    }
    TT_CHECK(lo > 300 && hi < 500, "position frequencies %d..%d", lo, hi);
}

static void test_selection(void) {
    /* ties: higher score first, then lower position */
    const float s[10] = {0.1f, 0.5f, 0.5f, 0.2f, 0.5f, 0.9f, 0.0f, NAN, 0.5f, 0.3f};
    int32_t idx[10];
    uint8_t bm[2];
    uint64_t scratch[10];
    TT_CHECK(zc_sal_select(s, 10, 3, 0, bm, idx, scratch) == 3, "count");
    TT_CHECK(idx[0] == 1 && idx[1] == 2 && idx[2] == 5, "ties %d %d %d", idx[0], idx[1], idx[2]);
    TT_CHECK(bm[0] == (1 << 1 | 1 << 2 | 1 << 5) && bm[1] == 0, "bitmap %02x %02x", bm[0], bm[1]);
    /* sinks: 0 and 1 forced, then the best 2 of the rest: 5, then 2 (tie with 4, 8) */
    TT_CHECK(zc_sal_select(s, 10, 4, 2, bm, idx, NULL) == 4, "sinks count");
    TT_CHECK(idx[0] == 0 && idx[1] == 1 && idx[2] == 2 && idx[3] == 5, "sinks %d %d %d %d", idx[0], idx[1], idx[2],
             idx[3]);
    /* more sinks than the budget: sinks only; all tokens; NaN last */
    TT_CHECK(zc_sal_select(s, 10, 1, 3, bm, idx, NULL) == 3 && idx[2] == 2, "sinks over budget");
    TT_CHECK(zc_sal_select(s, 10, 9, 0, bm, idx, NULL) == 9 && !(bm[0] >> 7 & 1) && bm[1] == 3, "NaN last %02x %02x",
             bm[0], bm[1]);
    TT_CHECK(zc_sal_select(s, 10, 99, 0, bm, NULL, NULL) == 10 && bm[0] == 0xff && bm[1] == 3, "all");
    TT_CHECK(zc_sal_select(s, 10, 0, 0, bm, idx, NULL) == 0 && bm[0] == 0 && bm[1] == 0, "none");
    /* counts as in the reference code: regular = int((1 - r) * L) */
    TT_CHECK(zc_sal_count(0.6, 840) == 504 && zc_sal_count(0.6, 10) == 6 && zc_sal_count(0, 7) == 0 &&
                 zc_sal_count(1, 7) == 7 && zc_sal_count(0.4, 100) == 40,
             "counts %d %d", zc_sal_count(0.6, 840), zc_sal_count(0.6, 10));
    /* ratios that arrive as float count as their decimal value */
    TT_CHECK(zc_sal_count(0.6f, 200) == 120 && zc_sal_count(0.7f, 1000) == 700 && zc_sal_count(0.05f, 840) == 42,
             "float ratios %d %d %d", zc_sal_count(0.6f, 200), zc_sal_count(0.7f, 1000), zc_sal_count(0.05f, 840));
}

/* On a random causal softmax matrix, all-rows probes with the CAUSAL
 * denominator are the exact normalized score, and selecting from it agrees
 * with a brute-force top-k. */
static void test_random_matrix(void) {
    enum { L = 97 };
    static float A[L][L], s[L], e[L];
    unsigned long long r = 77;
    for (int i = 0; i < L; i++) {
        float sum = 0;
        for (int j = 0; j <= i; j++) sum += (A[i][j] = expf(3 * tt_randf(&r)));
        for (int j = 0; j <= i; j++) A[i][j] /= sum;
        for (int j = i + 1; j < L; j++) A[i][j] = 1e9f; /* never read */
    }
    static int32_t all[L], idx[L];
    for (int i = 0; i < L; i++) all[i] = i;
    TT_CHECK(zc_sal_scores(&A[0][0], L, 0, 1, all, L, L, ZC_DENOM_CAUSAL, s) == ZC_OK, "scores");
    for (int j = 0; j < L; j++) {
        double acc = 0;
        for (int i = j; i < L; i++) acc += A[i][j];
        e[j] = (float)(acc / (L - j));
        TT_NEAR(s[j], e[j], 1e-5);
    }
    int k = zc_sal_count(0.6, L);
    TT_CHECK(zc_sal_select(s, L, k, 0, NULL, idx, NULL) == k, "select");
    for (int a = 0; a < k; a++) { /* every picked token beats every unpicked one */
        int j = idx[a];
        for (int u = 0; u < L; u++) {
            int picked = 0;
            for (int b = 0; b < k; b++) picked |= idx[b] == u;
            if (!picked) TT_CHECK(s[j] > s[u] || (s[j] == s[u] && j < u), "picked %d over %d", j, u);
        }
    }
}

int main(void) {
    TT_RUN(test_exact_scores);
    TT_RUN(test_probe_denominators);
    TT_RUN(test_gqa);
    TT_RUN(test_probe_selection);
    TT_RUN(test_selection);
    TT_RUN(test_random_matrix);
    return tt_finish();
}
