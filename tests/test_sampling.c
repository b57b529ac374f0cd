/* Sampling on hand-made distributions: each stage of the chain alone
 * (greedy, penalty, top-k, top-p, min-p, temperature), frequencies of the
 * final draw against the exact probabilities, and seed determinism. */
#include "tt.h"

#include "zipcache.h"

static zc_sampler *make(float temp, int top_k, float top_p, float min_p, float pen, int last_n, uint64_t seed,
                        int n_vocab) {
    zc_sampler_params p = {temp, top_k, top_p, min_p, pen, last_n, seed};
    zc_sampler *s = NULL;
    TT_CHECK(zc_sampler_create(&p, n_vocab, &s) == ZC_OK, "%s", zc_last_error());
    return s;
}

/* Draw `n` tokens and count them. */
static void histogram(zc_sampler *s, const float *logits, int n_vocab, int n, int *counts) {
    memset(counts, 0, (size_t)n_vocab * sizeof *counts);
    for (int i = 0; i < n; i++) {
        int t = zc_sampler_sample(s, logits);
        TT_CHECK(t >= 0 && t < n_vocab, "token %d", t);
        if (t >= 0 && t < n_vocab) counts[t]++;
    }
}

/* Five tokens with probabilities 0.4, 0.3, 0.15, 0.1, 0.05 (logits = ln p). */
static const float P5[5] = {0.4f, 0.3f, 0.15f, 0.1f, 0.05f};
static void logits5(float *l) {
    for (int i = 0; i < 5; i++) l[i] = logf(P5[i]);
}

/* |observed frequency - expected| within 5 standard deviations for each token. */
static void check_freq(const int *counts, const double *expect, int n_vocab, int n) {
    for (int i = 0; i < n_vocab; i++) {
        double f = (double)counts[i] / n, sd = sqrt(expect[i] * (1 - expect[i]) / n);
        TT_CHECK(fabs(f - expect[i]) <= 5 * sd + 1e-12, "token %d: frequency %.4f, expected %.4f", i, f, expect[i]);
    }
}

/* Draw 20000 tokens from s over the five tokens of P5, compare their
 * frequencies with the expected e[5], free s. */
static void check_draws5(zc_sampler *s, const double *e) {
    float l[5];
    logits5(l);
    int counts[5];
    const int n = 20000;
    histogram(s, l, 5, n, counts);
    check_freq(counts, e, 5, n);
    zc_sampler_free(s);
}

static void test_greedy(void) {
    float l[6] = {0.1f, 2.0f, -1.0f, 2.0f, 1.9f, -5.0f};
    zc_sampler *s = make(0, 40, 0.95f, 0.05f, 1.0f, 64, 1, 6);
    for (int i = 0; i < 5; i++) TT_CHECK(zc_sampler_sample(s, l) == 1, "greedy picks the first of the tied best");
    zc_sampler_free(s);
}

static void test_repeat_penalty(void) {
    /* Penalty 2 on token 1 (logit 2 -> 1) and token 2 (logit -1 -> -2): the
     * best is then token 3 (1.5). Token 1 is accepted twice but penalized once. */
    float l[4] = {0.5f, 2.0f, -1.0f, 1.5f};
    zc_sampler *s = make(0, 0, 1, 0, 2.0f, 3, 1, 4);
    zc_sampler_accept(s, 1);
    zc_sampler_accept(s, 1);
    zc_sampler_accept(s, 2);
    TT_CHECK(zc_sampler_sample(s, l) == 3, "penalty applied");
    /* The window holds 3 tokens: after 3 then 3, only [2, 3, 3] remain... */
    float l2[4] = {0.5f, 2.0f, -1.0f, 1.9f};
    zc_sampler_accept(s, 3);
    TT_CHECK(zc_sampler_sample(s, l2) == 1, "token 1 left the window, 3 is penalized");
    zc_sampler_free(s);
    /* Exact frequencies with the penalty: token 0 logit ln .4 (< 0) times 2. */
    float l5[5];
    logits5(l5);
    s = make(1.0f, 0, 1, 0, 2.0f, 1, 7, 5);
    zc_sampler_accept(s, 0);
    double w[5], z = 0, e[5];
    for (int i = 0; i < 5; i++) z += (w[i] = i == 0 ? 0.4 * 0.4 : P5[i]);
    for (int i = 0; i < 5; i++) e[i] = w[i] / z;
    /* Each draw is then accepted and penalized next; reset by accepting 0 again. */
    int counts[5] = {0};
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        zc_sampler_accept(s, 0);
        counts[zc_sampler_sample(s, l5)]++;
    }
    check_freq(counts, e, 5, n);
    zc_sampler_free(s);
}

static void test_top_k(void) {
    check_draws5(make(1.0f, 2, 1, 0, 1, 0, 3, 5), (double[]){0.4 / 0.7, 0.3 / 0.7, 0, 0, 0});
    float l[5];
    logits5(l);
    zc_sampler *s = make(5.0f, 1, 1, 0, 1, 0, 3, 5);
    for (int i = 0; i < 50; i++) TT_CHECK(zc_sampler_sample(s, l) == 0, "top-k 1 is greedy whatever the temperature");
    zc_sampler_free(s);
}

static void test_top_p(void) {
    /* 0.4 + 0.3 = 0.7 < 0.75, + 0.15 = 0.85 >= 0.75: keep three. */
    check_draws5(make(1.0f, 0, 0.75f, 0, 1, 0, 5, 5), (double[]){0.4 / 0.85, 0.3 / 0.85, 0.15 / 0.85, 0, 0});
}

static void test_min_p(void) {
    /* min-p 0.3: keep p >= 0.12 -> tokens 0, 1, 2. */
    check_draws5(make(1.0f, 0, 1, 0.3f, 1, 0, 9, 5), (double[]){0.4 / 0.85, 0.3 / 0.85, 0.15 / 0.85, 0, 0});
}

static void test_temperature(void) {
    /* Temperature 0.5 squares the probabilities (then renormalizes). */
    double e[5], z = 0;
    for (int i = 0; i < 5; i++) z += (double)P5[i] * P5[i];
    for (int i = 0; i < 5; i++) e[i] = (double)P5[i] * P5[i] / z;
    check_draws5(make(0.5f, 0, 1, 0, 1, 0, 11, 5), e);
    /* Plain sampling (all filters off) reproduces the distribution. */
    double p[5];
    for (int i = 0; i < 5; i++) p[i] = P5[i];
    check_draws5(make(1.0f, 0, 1, 0, 1, 0, 13, 5), p);
}

/* The order matters: top-k before top-p (llama.cpp's chain). top-k 4 leaves
 * 0.4/0.95, 0.3/0.95, ...; top-p 0.72 then keeps two (0.42 + 0.32 >= 0.72),
 * where top-p alone would keep three (0.4 + 0.3 < 0.72). */
static void test_chain_order(void) {
    check_draws5(make(1.0f, 4, 0.72f, 0, 1, 0, 17, 5), (double[]){0.4 / 0.7, 0.3 / 0.7, 0, 0, 0});
}

/* top-p on an 8k vocabulary whose nucleus needs several hundred tokens
 * (the partial sort has to grow past its first steps): every draw lies in
 * the nucleus computed here by a full sort, and the draws cover it. */
static int desc_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

static void test_top_p_large_vocab(void) {
    enum { V = 8000, HEAD = 400, N = 3000 };
    float *l = malloc(V * sizeof *l);
    double *sorted = malloc(V * sizeof *sorted);
    unsigned long long r = 5;
    for (int i = 0; i < V; i++) l[i] = -20.0f + tt_randf(&r); /* the tail */
    int *head = malloc(HEAD * sizeof *head);
    for (int j = 0; j < HEAD; j++) { /* the head at scattered ids, slowly decreasing */
        int id;
        do id = (int)(tt_rand_u64(&r) % V); while (l[id] > -15.0f);
        head[j] = id;
        l[id] = -0.005f * (float)j;
    }
    double z = 0, cum = 0;
    for (int i = 0; i < V; i++) z += exp((double)l[i]);
    for (int i = 0; i < V; i++) sorted[i] = exp((double)l[i]) / z;
    qsort(sorted, V, sizeof *sorted, desc_double);
    int K = 0;
    while (cum < 0.9) cum += sorted[K++];
    TT_CHECK(K > 256 && K < HEAD, "nucleus of %d tokens", K);
    double cut = sorted[K - 1] * z; /* smallest kept exp(logit) */
    zc_sampler *s = make(1.0f, 0, 0.9f, 0, 1, 0, 21, V);
    int outside = 0, *seen = calloc(V, sizeof *seen), distinct = 0;
    for (int i = 0; i < N; i++) {
        int t = zc_sampler_sample(s, l);
        if (exp((double)l[t]) < cut * (1 - 1e-9)) outside++;
        if (!seen[t]++) distinct++;
    }
    TT_CHECK(outside == 0, "%d draws outside the nucleus", outside);
    TT_CHECK(distinct > K * 9 / 10 && distinct <= K, "%d distinct tokens for a nucleus of %d", distinct, K);
    zc_sampler_free(s);
    free(l), free(sorted), free(head), free(seen);
}

static void test_seed(void) {
    enum { V = 1000, N = 200 };
    float *l = malloc(V * sizeof *l);
    unsigned long long r = 99;
    for (int i = 0; i < V; i++) l[i] = 3 * tt_randf(&r);
    int a[N], b[N], c[N];
    zc_sampler *s1 = make(0.9f, 50, 0.9f, 0.02f, 1.1f, 16, 1234, V), *s2 = make(0.9f, 50, 0.9f, 0.02f, 1.1f, 16, 1234, V);
    zc_sampler *s3 = make(0.9f, 50, 0.9f, 0.02f, 1.1f, 16, 4321, V);
    int same = 0;
    for (int i = 0; i < N; i++) {
        a[i] = zc_sampler_sample(s1, l), b[i] = zc_sampler_sample(s2, l), c[i] = zc_sampler_sample(s3, l);
        same += a[i] == c[i];
    }
    TT_CHECK(!memcmp(a, b, sizeof a), "same seed, different tokens");
    TT_CHECK(same < N, "another seed gave the very same %d tokens", N);
    zc_sampler_free(s1), zc_sampler_free(s2), zc_sampler_free(s3);
    free(l);
}

static void test_bad_params(void) {
    zc_sampler_params p;
    zc_sampler_params_default(&p);
    TT_CHECK(p.temp == 0.8f && p.top_k == 40 && p.top_p == 0.95f && p.min_p == 0.05f && p.repeat_penalty == 1.0f &&
                 p.repeat_last_n == 64,
             "defaults");
    zc_sampler *s = NULL;
    TT_CHECK(zc_sampler_create(&p, 0, &s) == ZC_ERR_ARG && !s, "empty vocab");
    zc_sampler_params bad[5];
    for (int i = 0; i < 5; i++) bad[i] = p;
    bad[0].top_p = 0;
    bad[1].min_p = 1.5f;
    bad[2].repeat_penalty = 0;
    bad[3].top_k = -1;
    bad[4].temp = NAN;
    for (int i = 0; i < 5; i++) TT_CHECK(zc_sampler_create(&bad[i], 10, &s) == ZC_ERR_ARG && !s, "bad params %d", i);
    zc_sampler_free(NULL);
}

int main(void) {
    TT_RUN(test_greedy);
    TT_RUN(test_repeat_penalty);
    TT_RUN(test_top_k);
    TT_RUN(test_top_p);
    TT_RUN(test_min_p);
    TT_RUN(test_temperature);
    TT_RUN(test_chain_order);
    TT_RUN(test_top_p_large_vocab);
    TT_RUN(test_seed);
    TT_RUN(test_bad_params);
    return tt_finish();
}
