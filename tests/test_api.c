/* The public API as an embedding program sees it (include/zipcache.h):
 * version, KV policies by name + option string, the default policy,
 * model-load parameters (read instead of map, progress, stopping), the
 * abort callback, and the usage helpers. */
#include "tt.h"

#include "zipcache.h"

static const char *model_path(void) { return tt_asset("models/stories260K/stories260K.gguf"); }

static void test_version(void) {
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", ZC_VERSION_MAJOR, ZC_VERSION_MINOR, ZC_VERSION_PATCH);
    TT_CHECK(!strcmp(zc_version(), want), "%s vs %s", zc_version(), want);
    TT_CHECK(zc_version_number() == ZC_VERSION_NUMBER, "%d", zc_version_number());
    TT_CHECK(!strcmp(zc_strerror(ZC_ERR_ABORTED), "aborted"), "%s", zc_strerror(ZC_ERR_ABORTED));
}

static void test_kv_options(void) {
    char d[400];
    /* no policy named: the default, zipcache */
    TT_CHECK(zc_kv_describe(NULL, NULL, d, sizeof d) == ZC_OK && !strncmp(d, "zipcache (widths chosen per segment, budget 4 bits", 50), "%s", d);
    /* the three spellings of an option, mixed */
    TT_CHECK(zc_kv_describe("zipcache", " --kv-hi-bits 3 lo-bits=1\t--kv-stream-gap=50 --kv-bits 2.5 ", d,
                            sizeof d) == ZC_OK,
             "%s", zc_last_error());
    TT_CHECK(strstr(d, "K 3/1 bits, V 3/1 bits, budget 2.5 bits") && strstr(d, "stream gap 50"), "%s", d);
    TT_CHECK(zc_kv_describe("kivi", "group=16 residual=8", d, sizeof d) == ZC_OK &&
                 !strcmp(d, "kivi (2 bits, group 16, fp16 residual 8)"),
             "%s", d);
    struct {
        const char *policy, *options, *msg;
    } bad[] = {
        {"zstd", NULL, "unknown KV policy 'zstd'"},
        {"zipcache", "--kv-hi-bits", "option --kv-hi-bits needs a value"},
        {"zipcache", "hi-bits=12", "--kv-hi-bits: 12 is out of range"},
        {"zipcache", "--kv-nosuch 3", "unknown option --kv-nosuch"},
        {"zipcache", "nosuch=3", "unknown option --kv-nosuch"},
        {"zipcache", "hi-bits", "neither --kv-NAME VALUE nor NAME=VALUE"},
        {"zipcache", "--kv fp16", "the policy is named apart"},
        {"zipcache", "probes=random:2", "needs fractions in (0, 1]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = zc_kv_describe(bad[i].policy, bad[i].options, d, sizeof d);
        TT_CHECK(rc == ZC_ERR_ARG && strstr(zc_last_error(), bad[i].msg), "%s '%s': rc %d: %s", bad[i].policy,
                 bad[i].options, rc, zc_last_error());
    }
    int n = 0;
    while (zc_kv_policy_name(n)) n++;
    TT_CHECK(n == 10 && !strcmp(zc_kv_policy_name(7), "zipcache") && !zc_kv_policy_name(-1), "%d policies", n);
}

/* Progress callback: records the fractions; stops at the call numbered stop_at. */
typedef struct {
    float seen[4096];
    int n, stop_at;
} progress_log;

static int on_progress(float f, void *user) {
    progress_log *p = user;
    if (p->n < 4096) p->seen[p->n] = f;
    return p->n++ == p->stop_at;
}

static void test_model_params(void) {
    const char *path = model_path();
    if (!path) TT_SKIP("stories260K missing");
    zc_model_params mp;
    zc_model_params_default(&mp);
    TT_CHECK(mp.use_mmap == 1 && !mp.progress, "defaults");
    static progress_log log;
    memset(&log, 0, sizeof log);
    log.stop_at = -1;
    mp.use_mmap = 0; /* read: progress follows the bytes */
    mp.progress = on_progress;
    mp.progress_user = &log;
    zc_model *a = NULL, *b = NULL;
    TT_CHECK(zc_model_load_params(path, &mp, &a) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(zc_model_load(path, &b) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(log.n >= 3 && log.seen[0] == 0.0f && log.seen[log.n - 1] == 1.0f, "%d calls", log.n);
    for (int i = 1; i < log.n && i < 4096; i++) TT_CHECK(log.seen[i] >= 0 && log.seen[i] <= 1, "%g", log.seen[i]);
    if (a && b) {
        /* read and mapped models compute the same logits */
        const zc_model_info *info = zc_model_get_info(a);
        float *la = malloc(sizeof(float) * (size_t)info->n_vocab), *lb = malloc(sizeof(float) * (size_t)info->n_vocab);
        zc_context_params cp;
        zc_context_params_default(&cp);
        cp.n_ctx = 32;
        cp.n_threads = 1;
        cp.kv_policy = "fp16";
        zc_context *ca = NULL, *cb = NULL;
        int32_t toks[4] = {1, 100, 200, 300};
        TT_CHECK(zc_context_create(a, &cp, &ca) == ZC_OK && zc_context_create(b, &cp, &cb) == ZC_OK, "%s",
                 zc_last_error());
        TT_CHECK(ca && cb && la && lb && zc_decode(ca, toks, 4, ZC_LOGITS_LAST, la) == ZC_OK &&
                     zc_decode(cb, toks, 4, ZC_LOGITS_LAST, lb) == ZC_OK &&
                     !memcmp(la, lb, sizeof(float) * (size_t)info->n_vocab),
                 "read vs mapped: %s", zc_last_error());
        zc_context_free(ca);
        zc_context_free(cb);
        free(la);
        free(lb);
    }
    zc_model_free(a);
    zc_model_free(b);
    /* stopping: at the first call, in the middle of the read, at the last call */
    int stops[] = {0, 1, log.n - 1};
    for (int i = 0; i < 3; i++) {
        memset(&log, 0, sizeof log);
        log.stop_at = stops[i];
        zc_model *m = (zc_model *)&log; /* must become NULL */
        int rc = zc_model_load_params(path, &mp, &m);
        TT_CHECK(rc == ZC_ERR_ABORTED && !m && log.n == stops[i] + 1, "stop at %d: rc %d, %d calls: %s", stops[i],
                 rc, log.n, zc_last_error());
    }
}

static int abort_after(void *user) {
    int *left = user;
    return (*left)-- <= 0;
}

static void test_context_kv_and_abort(void) {
    const char *path = model_path();
    if (!path) TT_SKIP("stories260K missing");
    zc_model *m = NULL;
    TT_CHECK(zc_model_load(path, &m) == ZC_OK, "%s", zc_last_error());
    if (!m) return;
    int n_vocab = zc_model_get_info(m)->n_vocab;
    float *logits = malloc(sizeof(float) * (size_t)n_vocab);
    zc_context_params cp;
    zc_context_params_default(&cp);
    TT_CHECK(!cp.kv_policy && !cp.kv_options && !cp.kv && !cp.abort_callback, "defaults");
    cp.n_ctx = 64;
    cp.n_batch = 8;
    cp.n_threads = 1;
    zc_context *c = NULL;
    char d[400];
    /* the default policy is zipcache */
    TT_CHECK(zc_context_create(m, &cp, &c) == ZC_OK, "%s", zc_last_error());
    if (c) zc_context_kv_describe(c, d, sizeof d);
    TT_CHECK(c && !strncmp(d, "zipcache (", 10), "%s", d);
    zc_context_free(c);
    /* options reach the cache: a stream gap of 4 compresses 4 decoded tokens */
    cp.kv_policy = "zipcache";
    cp.kv_options = "stream-gap=4";
    int left = 1000;
    cp.abort_callback = abort_after;
    cp.abort_user = &left;
    c = NULL;
    TT_CHECK(zc_context_create(m, &cp, &c) == ZC_OK, "%s", zc_last_error());
    if (c) {
        int32_t toks[20];
        for (int i = 0; i < 20; i++) toks[i] = (i * 7 + 3) % n_vocab;
        TT_CHECK(zc_decode(c, toks, 4, ZC_LOGITS_LAST, logits) == ZC_OK, "%s", zc_last_error());
        for (int i = 4; i < 8; i++) TT_CHECK(zc_decode(c, toks + i, 1, ZC_LOGITS_LAST, logits) == ZC_OK, "%s",
                                             zc_last_error());
        zc_kv_usage u;
        zc_context_kv_usage(c, &u);
        TT_CHECK(u.n_tokens == 8 && u.n_compressions >= 1 && zc_kv_ratio(&u) > 1 &&
                     zc_kv_bits_per_element(&u) < 16 && u.total == u.codes + u.params + u.window + u.index + u.other,
                 "%lld tokens, %lld compressions, ratio %g", (long long)u.n_tokens, (long long)u.n_compressions,
                 zc_kv_ratio(&u));
        /* abort between batches: 12 tokens in batches of 8 -> the first batch runs, the second is refused */
        left = 1;
        int rc = zc_decode(c, toks + 8, 12, ZC_LOGITS_LAST, logits);
        TT_CHECK(rc == ZC_ERR_ABORTED && zc_context_pos(c) == 16 && strstr(zc_last_error(), "abort callback"),
                 "rc %d pos %d: %s", rc, zc_context_pos(c), zc_last_error());
        /* and the context goes on */
        left = 1000;
        TT_CHECK(zc_decode(c, toks + 16, 4, ZC_LOGITS_LAST, logits) == ZC_OK && zc_context_pos(c) == 20, "%s",
                 zc_last_error());
    }
    zc_context_free(c);
    /* a bad option fails the create with its message */
    cp.kv_options = "stream-gap=0";
    c = (zc_context *)logits;
    TT_CHECK(zc_context_create(m, &cp, &c) == ZC_ERR_ARG && !c && strstr(zc_last_error(), "--kv-stream-gap"), "%s",
             zc_last_error());
    free(logits);
    zc_model_free(m);
}

int main(void) {
    TT_RUN(test_version);
    TT_RUN(test_kv_options);
    TT_RUN(test_model_params);
    TT_RUN(test_context_kv_and_abort);
    return tt_finish();
}
