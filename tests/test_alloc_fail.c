/* Allocation-failure testing, SQLite style: for every N, the Nth allocation
 * of the library (zc_malloc & co., src/util/error.h) fails, over
 *   - loading each model (GGUF and HF directory),
 *   - for each KV cache policy: creating a context, a prefill of two
 *     batches, decoding across two streaming compressions, freeing.
 * Every injected failure must surface as ZC_ERR_NOMEM (with that code in
 * zc_last_error_code); afterwards, with allocation working again, the same
 * context, reset, must reproduce the logits of a run that never failed
 * (no later misbehaviour). Leaks are left to the ASan build (make asan),
 * which runs this test too. The count of failure points is printed.
 */
#include "tt.h"

#include "kv/kv.h"
#include "util/error.h"
#include "zipcache.h"

#define N_PROMPT 20 /* two prefill batches of N_BATCH */
#define N_BATCH 12
#define N_GEN 20    /* with stream gap 8: two compressions of the decode window */
#define N_CTX 64

static long g_points; /* failure points exercised, all sweeps */

/* Load a model with allocation `fail_at` failing (-1: none). */
static int load(const char *path, long fail_at, zc_model **m, long *n_alloc) {
    zc_clear_error();
    zc_alloc_fail_at(fail_at);
    int rc = zc_model_load(path, m);
    *n_alloc = zc_alloc_count();
    zc_alloc_fail_at(-1);
    return rc;
}

static void sweep_load(const char *rel) {
    const char *path = tt_asset(rel);
    if (!path) TT_SKIP("%s missing", rel);
    long n_alloc = 0, absorbed = 0, n;
    for (n = 0;; n++) {
        zc_model *m = NULL;
        int rc = load(path, n, &m, &n_alloc);
        if (n >= n_alloc) { /* the run made fewer allocations: none failed */
            TT_CHECK(rc == ZC_OK && m, "clean load: %s", zc_last_error());
            zc_model_free(m);
            break;
        }
        if (rc == ZC_OK) {
            absorbed++;
            zc_model_free(m);
            continue;
        }
        TT_CHECK(rc == ZC_ERR_NOMEM && zc_last_error_code() == ZC_ERR_NOMEM && !m,
                 "allocation %ld of %s: rc %d, code %d: %s", n, rel, rc, zc_last_error_code(), zc_last_error());
        if (tt_failed_checks > 20) break;
    }
    g_points += n;
    printf("# load %s: %ld allocations, each failed once (%ld absorbed without an error)\n", rel, n, absorbed);
    TT_CHECK(n > 10, "only %ld allocations while loading %s", n, rel);
}

static void test_load_gguf(void) { sweep_load("models/stories260K/stories260K.gguf"); }
static void test_load_hf(void) { sweep_load("models/tinystories656K"); }

/* The prompt and decode tokens: fixed ids, no sampling involved. */
static int32_t token_at(int i, int n_vocab) { return (int32_t)((i * 37 + 11) % n_vocab); }

/* Prefill N_PROMPT tokens then decode N_GEN one at a time; the logits of
 * the last step in last[n_vocab]. Returns the first failing code. */
static int run_steps(zc_context *c, int n_vocab, float *logits) {
    int32_t toks[N_PROMPT];
    for (int i = 0; i < N_PROMPT; i++) toks[i] = token_at(i, n_vocab);
    int rc = zc_decode(c, toks, N_PROMPT, ZC_LOGITS_LAST, logits);
    for (int i = 0; rc == ZC_OK && i < N_GEN; i++) {
        int32_t t = token_at(N_PROMPT + i, n_vocab);
        rc = zc_decode(c, &t, 1, ZC_LOGITS_LAST, logits);
    }
    return rc;
}

static int make_ctx(const zc_model *m, const char *policy, zc_context **c) {
    zc_context_params p;
    zc_context_params_default(&p);
    p.n_ctx = N_CTX;
    p.n_batch = N_BATCH;
    p.n_threads = 1; /* one thread: the allocation order is deterministic */
    p.kv_policy = policy;
    p.kv_options = "--kv-stream-gap 8 --kv-residual 4 --kv-group 4";
    return zc_context_create(m, &p, c);
}

static void sweep_policy(const zc_model *m, const char *policy) {
    int n_vocab = zc_model_get_info(m)->n_vocab;
    float *want = malloc((size_t)n_vocab * sizeof *want), *got = malloc((size_t)n_vocab * sizeof *got);
    TT_CHECK(want && got, "test buffers");
    if (!want || !got) goto out;
    /* The reference run, nothing failing. */
    zc_context *c = NULL;
    int rc = make_ctx(m, policy, &c);
    if (rc == ZC_ERR_ARG || rc == ZC_ERR_UNSUPPORTED) { /* q8_0/q4_0 need head_dim % 32: test_kv_retry covers them */
        printf("# policy %s: not applicable to this model: %s\n", policy, zc_last_error());
        goto out;
    }
    TT_CHECK(rc == ZC_OK, "%s: %s", policy, zc_last_error());
    if (rc != ZC_OK) goto out;
    TT_CHECK(run_steps(c, n_vocab, want) == ZC_OK, "%s: reference run: %s", policy, zc_last_error());
    zc_kv_usage u;
    zc_context_kv_usage(c, &u);
    int64_t want_compressions = u.n_compressions;
    zc_context_free(c);

    long n, n_alloc = 0, absorbed = 0;
    for (n = 0;; n++) {
        zc_clear_error();
        zc_alloc_fail_at(n);
        c = NULL;
        rc = make_ctx(m, policy, &c);
        if (rc == ZC_OK) rc = run_steps(c, n_vocab, got);
        n_alloc = zc_alloc_count();
        int code = zc_last_error_code();
        zc_alloc_fail_at(-1);
        if (n >= n_alloc) { /* nothing failed: the whole run made fewer allocations */
            TT_CHECK(rc == ZC_OK, "%s: clean run: %s", policy, zc_last_error());
            zc_context_free(c);
            break;
        }
        if (rc == ZC_OK) {
            absorbed++;
        } else {
            TT_CHECK(rc == ZC_ERR_NOMEM && code == ZC_ERR_NOMEM, "%s: allocation %ld: rc %d, code %d: %s", policy,
                     n, rc, code, zc_last_error());
        }
        if (c) {
            /* Allocation works again: the context, reset, must run exactly as
             * one that never failed. */
            int r2 = zc_context_reset(c);
            if (r2 == ZC_OK) r2 = run_steps(c, n_vocab, got);
            TT_CHECK(r2 == ZC_OK, "%s: after failing allocation %ld: %s", policy, n, zc_last_error());
            if (r2 == ZC_OK) {
                TT_CHECK(!memcmp(got, want, (size_t)n_vocab * sizeof *got),
                         "%s: after failing allocation %ld the logits differ from the reference", policy, n);
                zc_context_kv_usage(c, &u);
                TT_CHECK(u.n_compressions >= want_compressions, "%s: %lld compressions after the rerun, want %lld",
                         policy, (long long)u.n_compressions, (long long)want_compressions);
            }
            zc_context_free(c);
        }
        if (tt_failed_checks > 20) break;
    }
    g_points += n;
    printf("# policy %s: %ld allocations (create, prefill, decode over %lld compressions), each failed once "
           "(%ld absorbed without an error)\n",
           policy, n, (long long)want_compressions, absorbed);
out:
    free(want);
    free(got);
}

static void test_policies(void) {
    const char *path = tt_asset("models/stories260K/stories260K.gguf");
    if (!path) TT_SKIP("models/stories260K/stories260K.gguf missing");
    zc_model *m = NULL;
    TT_CHECK(zc_model_load(path, &m) == ZC_OK, "%s", zc_last_error());
    if (!m) return;
    int n = 0;
    for (const char *p; (p = zc_kv_policy_name(n)); n++) sweep_policy(m, p);
    TT_CHECK(n >= 9, "%d policies", n);
    zc_model_free(m);
}

/* At the cache level, with a retry: each write and attend whose allocation
 * failed is repeated once allocation works again, and the whole sequence
 * must then produce exactly the outputs of a run that never failed. Chunk
 * sizes mix prefill blocks and single decode tokens so that a zipcache
 * decode window grows while it holds tokens (window_reserve moving its
 * probe sums to a wider stride: the ncol failure there once left wcap at
 * the old stride and later probe sums read garbage). */
static const int CHUNKS[] = {4, 1, 1, 1, 1, 1, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, 1, 1, 1, 0};
/* For a cache whose layer 0 is a sliding-window layer of 12 (zc_kv_shape.band):
 * prompt chunks longer than the band (stored in pieces), then decode steps
 * whose band starts inside a segment. */
static const int BAND_CHUNKS[] = {20, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
static const int BAND[] = {12, 0};
#define KV_LAYERS 2
#define KV_HEADS 4
#define KV_KV_HEADS 2
#define KV_HD 32

/* One pass; outputs of every attend appended to out. fail_at -1: no
 * injected failure. Returns the number of failures seen (each retried),
 * 1000 when the create failed (nothing ran), -1 after a check failed. */
static int kv_pass(const char *policy, const int *band, long fail_at, const float *q, const float *k, const float *v,
                   float *out, long *n_alloc) {
    const int *chunks = band ? BAND_CHUNKS : CHUNKS;
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    int rc = zc_kv_config_parse_string(&cfg, policy, "--kv-stream-gap 8 --kv-residual 4 --kv-group 4");
    TT_CHECK(rc == ZC_OK, "%s", zc_last_error());
    zc_kv_shape shape = {KV_LAYERS, KV_HEADS, KV_KV_HEADS, KV_HD, 64, band};
    zc_kv_cache *c = NULL;
    int failures = 0;
    size_t qd = KV_HEADS * KV_HD, kd = KV_KV_HEADS * KV_HD;
    zc_alloc_fail_at(fail_at);
    rc = zc_kv_create(&cfg, &shape, NULL, &c);
    if (rc != ZC_OK) {
        *n_alloc = zc_alloc_count();
        zc_alloc_fail_at(-1);
        TT_CHECK(rc == ZC_ERR_NOMEM && !c, "%s: create: %d %s", policy, rc, zc_last_error());
        return tt_failed_checks ? -1 : 1000; /* nothing ran: no outputs to compare */
    }
    int pos = 0;
    for (int i = 0; chunks[i]; i++) {
        int n = chunks[i];
        for (int l = 0; l < KV_LAYERS; l++) {
            const float *kl = k + ((size_t)l * 64 + pos) * kd, *vl = v + ((size_t)l * 64 + pos) * kd;
            for (int attempt = 0; attempt < 2; attempt++) {
                rc = c->ops->write(c, l, pos, n, kl, vl);
                if (rc == ZC_OK) break;
                TT_CHECK(rc == ZC_ERR_NOMEM && attempt == 0, "%s: write %d of layer %d: %d %s", policy, i, l, rc,
                         zc_last_error());
                failures++;
                zc_alloc_fail_at(-1);
            }
            if (rc != ZC_OK) break;
            for (int attempt = 0; attempt < 2; attempt++) {
                rc = c->ops->attend(c, l, pos, n, q + ((size_t)l * 64 + pos) * qd, out + ((size_t)l * 64 + pos) * qd);
                if (rc == ZC_OK) break;
                TT_CHECK(rc == ZC_ERR_NOMEM && attempt == 0, "%s: attend %d of layer %d: %d %s", policy, i, l, rc,
                         zc_last_error());
                failures++;
                zc_alloc_fail_at(-1);
            }
            if (rc != ZC_OK) break;
        }
        if (rc != ZC_OK) break;
        pos += n;
    }
    *n_alloc = zc_alloc_count();
    zc_alloc_fail_at(-1);
    zc_kv_free(c);
    return tt_failed_checks ? -1 : failures;
}

static void test_kv_retry(void) {
    size_t qd = KV_HEADS * KV_HD, kd = KV_KV_HEADS * KV_HD, rows = (size_t)KV_LAYERS * 64;
    float *q = malloc(rows * qd * sizeof *q), *k = malloc(rows * kd * sizeof *k), *v = malloc(rows * kd * sizeof *v);
    float *want = calloc(rows * qd, sizeof *want), *got = calloc(rows * qd, sizeof *got);
    TT_CHECK(q && k && v && want && got, "buffers");
    unsigned long long seed = 7;
    for (size_t i = 0; q && i < rows * qd; i++) q[i] = tt_randf(&seed) * 2;
    for (size_t i = 0; k && v && i < rows * kd; i++) k[i] = tt_randf(&seed) * 2, v[i] = tt_randf(&seed);
    /* every policy, then the banded ones again with a sliding-window layer */
    static const char *const BANDED[] = {"zipcache", "uniform", "mikv"};
    int n_policies = 0;
    while (zc_kv_policy_name(n_policies)) n_policies++;
    for (int pi = 0; q && k && v && want && got && pi < n_policies + 3; pi++) {
        const char *policy = pi < n_policies ? zc_kv_policy_name(pi) : BANDED[pi - n_policies];
        const int *band = pi < n_policies ? NULL : BAND;
        long n_alloc = 0, n;
        memset(want, 0, rows * qd * sizeof *want);
        if (kv_pass(policy, band, -1, q, k, v, want, &n_alloc) != 0) break;
        for (n = 0; n < n_alloc; n++) {
            memset(got, 0, rows * qd * sizeof *got);
            long n2;
            int f = kv_pass(policy, band, n, q, k, v, got, &n2);
            if (f < 0) break;
            if (f == 1000) continue; /* the create failed: nothing ran */
            TT_CHECK(f == 1 && !memcmp(got, want, rows * qd * sizeof *got),
                     "%s: after allocation %ld failed (%d failures) and was retried, the attention outputs differ", policy, n, f);
        }
        g_points += n;
        printf("# kv %s%s: %ld allocations, each failed once and retried\n", policy, band ? " (sliding window)" : "",
               n_alloc);
        if (tt_failed_checks) break;
    }
    free(q), free(k), free(v), free(want), free(got);
}

/* The hook itself: exactly the chosen allocation fails, with ZC_ERR_NOMEM. */
static void test_hook(void) {
    zc_alloc_fail_at(1);
    void *a = zc_malloc(8), *b = zc_malloc(8), *c = zc_calloc(2, 8);
    TT_CHECK(a && !b && c && zc_last_error_code() == ZC_ERR_NOMEM, "a %p b %p c %p", a, b, c);
    TT_CHECK(zc_alloc_count() == 3, "count %ld", zc_alloc_count());
    zc_alloc_fail_at(-1);
    void *d = zc_malloc_aligned(64);
    TT_CHECK(d != NULL, "after -1");
    free(a), free(c), zc_free_aligned(d);
}

int main(void) {
    TT_RUN(test_hook);
    TT_RUN(test_load_gguf);
    TT_RUN(test_load_hf);
    TT_RUN(test_kv_retry);
    TT_RUN(test_policies);
    printf("# %ld allocation failure points in all\n", g_points);
    return tt_finish();
}
