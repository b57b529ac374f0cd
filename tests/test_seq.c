/* Several sequences per context (include/zipcache.h, "Sequences"): each
 * sequence behaves exactly like a context of its own, a batched step of n
 * sequences matches n single steps, truncation, and save/restore of every
 * policy that serializes (the restored sequence continues bit-identically;
 * truncated, corrupted, other-policy and other-model buffers are refused and
 * change nothing). Model: stories260K (head_dim 8), tinystories656K for the
 * other-model check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv/kv.h"
#include "tt.h"
#include "zipcache.h"

static zc_model *load(const char *rel) {
    const char *path = tt_asset(rel);
    if (!path) TT_SKIP("%s not found", rel);
    zc_model *m = NULL;
    if (zc_model_load(path, &m) != ZC_OK) TT_SKIP("cannot load %s: %s", path, zc_last_error());
    return m;
}

static zc_model *stories(void) { return load("models/stories260K/stories260K.gguf"); }

static zc_context *context(const zc_model *m, const char *policy, int n_ctx, size_t budget) {
    zc_kv_config kv;
    zc_kv_config_default(&kv);
    snprintf(kv.policy, sizeof kv.policy, "%s", policy);
    kv.stream_gap = 16; /* several segments and a partial window within a short test */
    kv.budget_bytes = budget;
    zc_context_params p;
    zc_context_params_default(&p);
    p.n_ctx = n_ctx;
    p.n_threads = 2;
    p.n_batch = 64;
    p.kv = &kv;
    zc_context *c = NULL;
    int rc = zc_context_create(m, &p, &c);
    TT_CHECK(rc == ZC_OK, "context %s: %s", policy, zc_last_error());
    return c;
}

/* Token i of a deterministic stream s (avoiding the special ids 0..2). */
static int32_t tok(int s, int i, int n_vocab) { return 3 + (int32_t)((i * 7 + s * 131 + (i * i) % 11) % (n_vocab - 3)); }

static float max_diff(const float *a, const float *b, int n) {
    float d = 0;
    for (int i = 0; i < n; i++) d = fabsf(a[i] - b[i]) > d ? fabsf(a[i] - b[i]) : d;
    return d;
}

/* Sequences of one context match separate contexts bit for bit (the same
 * single-sequence path runs on each), interleaved in any order. */
/* The model of the sequence tests: stories260K, or the GGUF named on the
 * command line (tests/test_seq_arch.sh passes the other architectures'). */
static const char *g_model;

static zc_model *test_model(void) {
    zc_model *m = NULL;
    if (!g_model) return stories();
    TT_CHECK(zc_model_load(g_model, &m) == ZC_OK, "%s: %s", g_model, zc_last_error());
    return m;
}

static void test_sequences_are_independent(void) {
    zc_model *m = test_model();
    if (!m) return;
    int nv = zc_model_get_info(m)->n_vocab;
    zc_context *multi = context(m, "zipcache", 256, 0), *solo[3];
    TT_CHECK(zc_context_set_n_seq(multi, 3) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(zc_context_n_seq(multi) == 3 && zc_seq_pos(multi, 3) == -1, "n_seq");
    for (int s = 0; s < 3; s++) solo[s] = context(m, "zipcache", 256, 0);
    float *a = malloc(sizeof(float) * nv), *b = malloc(sizeof(float) * nv);
    int32_t prompt[3][20];
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 20; i++) prompt[s][i] = tok(s, i, nv);
    for (int s = 2; s >= 0; s--) {
        TT_CHECK(zc_decode_seq(multi, s, prompt[s], 10 + 5 * s, ZC_LOGITS_LAST, a) == ZC_OK, "%s", zc_last_error());
        TT_CHECK(zc_decode(solo[s], prompt[s], 10 + 5 * s, ZC_LOGITS_LAST, b) == ZC_OK, "%s", zc_last_error());
        TT_CHECK(max_diff(a, b, nv) == 0.0f, "prompt of sequence %d differs by %g", s, max_diff(a, b, nv));
    }
    for (int step = 0; step < 40; step++)
        for (int s = 0; s < 3; s++) {
            int32_t t = tok(s + 5, step, nv);
            zc_decode_seq(multi, s, &t, 1, ZC_LOGITS_LAST, a);
            zc_decode(solo[s], &t, 1, ZC_LOGITS_LAST, b);
            TT_CHECK(max_diff(a, b, nv) == 0.0f, "step %d of sequence %d", step, s);
        }
    for (int s = 0; s < 3; s++) TT_CHECK(zc_seq_pos(multi, s) == zc_context_pos(solo[s]), "pos of %d", s);
    TT_CHECK(zc_decode_seq(multi, 3, prompt[0], 1, ZC_LOGITS_LAST, a) == ZC_ERR_ARG, "sequence 3 accepted");
    /* shrinking frees sequences past the new count, keeps the others */
    TT_CHECK(zc_context_set_n_seq(multi, 2) == ZC_OK && zc_seq_pos(multi, 2) == -1 &&
                 zc_seq_pos(multi, 1) == zc_context_pos(solo[1]),
             "shrink");
    for (int s = 0; s < 3; s++) zc_context_free(solo[s]);
    zc_context_free(multi);
    free(a);
    free(b);
    zc_model_free(m);
}

/* A batched step of several sequences gives each the logits of its own single
 * step (within float reassociation of the weight products) and leaves every
 * cache as a single step would: later single steps agree. */
static void test_batch_matches_single_steps(void) {
    zc_model *m = test_model();
    if (!m) return;
    int nv = zc_model_get_info(m)->n_vocab;
    const char *policies[] = {"fp16", "zipcache", "h2o"};
    for (int pi = 0; pi < 3; pi++) {
        zc_context *bat = context(m, policies[pi], 256, 0), *one = context(m, policies[pi], 256, 0);
        TT_CHECK(zc_context_set_n_seq(bat, 4) == ZC_OK && zc_context_set_n_seq(one, 4) == ZC_OK, "n_seq");
        float *a = malloc(sizeof(float) * nv * 4), *b = malloc(sizeof(float) * nv);
        for (int s = 0; s < 4; s++) {
            int32_t p[12];
            for (int i = 0; i < 12; i++) p[i] = tok(s, i, nv);
            zc_decode_seq(bat, s, p, 3 + 3 * s, ZC_LOGITS_LAST, b);
            zc_decode_seq(one, s, p, 3 + 3 * s, ZC_LOGITS_LAST, b);
        }
        float worst = 0;
        for (int step = 0; step < 30; step++) {
            int seqs[4] = {3, 1, 0, 2}, n = step % 7 == 3 ? 2 : 4; /* some steps leave sequences out */
            int32_t toks[4];
            for (int r = 0; r < n; r++) toks[r] = tok(seqs[r] + 9, step, nv);
            int rc = zc_decode_batch(bat, n, seqs, toks, a);
            TT_CHECK(rc == ZC_OK, "%s step %d: %s", policies[pi], step, zc_last_error());
            for (int r = 0; r < n; r++) {
                zc_decode_seq(one, seqs[r], &toks[r], 1, ZC_LOGITS_LAST, b);
                float d = max_diff(a + (size_t)r * nv, b, nv);
                worst = d > worst ? d : worst;
            }
        }
        TT_CHECK(worst < 1e-3f, "%s: batched logits differ by %g", policies[pi], worst);
        for (int s = 0; s < 4; s++) TT_CHECK(zc_seq_pos(bat, s) == zc_seq_pos(one, s), "%s pos %d", policies[pi], s);
        int dup[2] = {1, 1};
        int32_t t2[2] = {5, 6};
        TT_CHECK(zc_decode_batch(bat, 2, dup, t2, a) == ZC_ERR_ARG, "a repeated sequence was accepted");
        int bad[1] = {4};
        TT_CHECK(zc_decode_batch(bat, 1, bad, t2, a) == ZC_ERR_ARG, "sequence 4 of 4 accepted");
        free(a);
        free(b);
        zc_context_free(bat);
        zc_context_free(one);
    }
    zc_model_free(m);
}

/* The budget counts all sequences together. */
static void test_budget_covers_all_sequences(void) {
    zc_model *m = stories();
    const zc_model_info *h = zc_model_get_info(m);
    size_t per_token = 2u * h->n_layers * h->n_kv_heads * h->head_dim * 2; /* fp16 */
    zc_context *c = context(m, "fp16", 256, 100 * per_token);
    zc_context_set_n_seq(c, 2);
    int32_t p[60];
    for (int i = 0; i < 60; i++) p[i] = tok(1, i, h->n_vocab);
    TT_CHECK(zc_decode_seq(c, 0, p, 60, ZC_LOGITS_NONE, NULL) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(zc_decode_seq(c, 1, p, 60, ZC_LOGITS_NONE, NULL) == ZC_ERR_LIMIT, "120 tokens fit a budget of 100");
    TT_CHECK(zc_seq_pos(c, 1) == 0, "a refused decode changed the sequence");
    TT_CHECK(zc_decode_seq(c, 1, p, 40, ZC_LOGITS_NONE, NULL) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(zc_context_kv_bytes(c) == 100 * per_token, "bytes %zu", zc_context_kv_bytes(c));
    /* a restore is held to the budget too: sequence 0's 60 tokens over sequence 1's 40 would make 120 */
    uint8_t *buf;
    size_t len;
    int32_t *ids;
    int n;
    TT_CHECK(zc_seq_save(c, 0, p, &buf, &len) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(zc_seq_load(c, 1, buf, len, &ids, &n) == ZC_ERR_LIMIT && zc_seq_pos(c, 1) == 40, "restore over the budget");
    TT_CHECK(zc_seq_load(c, 0, buf, len, &ids, &n) == ZC_OK && n == 60, "restore in place: %s", zc_last_error());
    free(ids);
    free(buf);
    zc_context_free(c);
    zc_model_free(m);
}

/* Truncation then the same tokens again: the same logits (fp16: exact). */
static void test_truncate(void) {
    zc_model *m = stories();
    int nv = zc_model_get_info(m)->n_vocab;
    const char *policies[] = {"fp16", "zipcache"};
    for (int pi = 0; pi < 2; pi++) {
        zc_context *c = context(m, policies[pi], 256, 0);
        zc_context_set_n_seq(c, 2);
        int32_t p[40];
        for (int i = 0; i < 40; i++) p[i] = tok(2, i, nv);
        float *a = malloc(sizeof(float) * nv), *b = malloc(sizeof(float) * nv);
        /* zipcache compresses a prompt chunk at once: 30 prompt tokens, then 10
         * decode tokens that stay in its window (stream gap 16) */
        zc_decode_seq(c, 1, p, 30, ZC_LOGITS_LAST, a);
        for (int i = 30; i < 40; i++) zc_decode_seq(c, 1, &p[i], 1, ZC_LOGITS_LAST, a);
        TT_CHECK(zc_seq_truncate(c, 1, 34) == ZC_OK, "%s: %s", policies[pi], zc_last_error());
        TT_CHECK(zc_seq_pos(c, 1) == 34, "pos %d", zc_seq_pos(c, 1));
        for (int i = 34; i < 40; i++) zc_decode_seq(c, 1, &p[i], 1, ZC_LOGITS_LAST, b);
        TT_CHECK(max_diff(a, b, nv) == 0.0f, "%s: logits after truncation differ by %g", policies[pi], max_diff(a, b, nv));
        TT_CHECK(zc_seq_truncate(c, 1, 41) == ZC_ERR_ARG, "keeping more than held");
        int rc = zc_seq_truncate(c, 1, 10);
        if (!strcmp(policies[pi], "zipcache"))
            TT_CHECK(rc == ZC_ERR_UNSUPPORTED && zc_seq_pos(c, 1) == 40, "cut inside compressed tokens: rc %d", rc);
        else
            TT_CHECK(rc == ZC_OK && zc_seq_pos(c, 1) == 10, "fp16 cut to 10: rc %d", rc);
        TT_CHECK(zc_seq_truncate(c, 1, 0) == ZC_OK && zc_seq_pos(c, 1) == 0, "reset");
        free(a);
        free(b);
        zc_context_free(c);
    }
    zc_model_free(m);
}

/* Save after a prompt and some decode steps, restore into another sequence
 * of another context: both continue with identical logits; the buffer is
 * the cache's accounted bytes plus the header, tokens and checksum. */
static void test_save_restore_roundtrip(void) {
    zc_model *m = test_model();
    if (!m) return;
    int nv = zc_model_get_info(m)->n_vocab;
    const char *policies[] = {"fp16", "fp32", "zipcache", "uniform", "mikv", "h2o", "kivi"};
    for (int pi = 0; pi < 7; pi++) {
        const char *pol = policies[pi];
        zc_context *src = context(m, pol, 256, 0), *dst = context(m, pol, 256, 0);
        zc_context_set_n_seq(dst, 3);
        int32_t p[80];
        for (int i = 0; i < 80; i++) p[i] = tok(3, i, nv);
        float *a = malloc(sizeof(float) * nv), *b = malloc(sizeof(float) * nv);
        zc_decode(src, p, 40, ZC_LOGITS_LAST, a);
        for (int i = 40; i < 61; i++) zc_decode(src, &p[i], 1, ZC_LOGITS_LAST, a);
        uint8_t *buf;
        size_t len;
        TT_CHECK(zc_seq_save(src, 0, p, &buf, &len) == ZC_OK, "%s: %s", pol, zc_last_error());
        zc_kv_usage u;
        zc_context_kv_usage(src, &u);
        size_t extra = len - u.total;
        if (!strcmp(pol, "zipcache"))
            TT_CHECK(u.codes > 0 && u.window > 0 && u.n_compressions > 0, "zipcache state without segments and window");
        /* header (~330 bytes) + 61 tokens + per-layer counts; zipcache also keeps its window's probe sums */
        TT_CHECK(len >= u.total && extra < 2048 + 61 * 4, "%s: %zu bytes for a cache of %zu", pol, len, u.total);
        int32_t *ids = NULL;
        int n_ids = 0;
        TT_CHECK(zc_seq_load(dst, 2, buf, len, &ids, &n_ids) == ZC_OK, "%s: %s", pol, zc_last_error());
        TT_CHECK(n_ids == 61 && ids && !memcmp(ids, p, 61 * sizeof *p), "%s: tokens back %d", pol, n_ids);
        TT_CHECK(zc_seq_pos(dst, 2) == 61, "%s: pos %d", pol, zc_seq_pos(dst, 2));
        zc_kv_usage v;
        zc_seq_kv_usage(dst, 2, &v);
        TT_CHECK(v.total == u.total && v.n_tokens == u.n_tokens, "%s: usage %zu vs %zu", pol, v.total, u.total);
        for (int i = 61; i < 80; i++) {
            zc_decode(src, &p[i], 1, ZC_LOGITS_LAST, a);
            zc_decode_seq(dst, 2, &p[i], 1, ZC_LOGITS_LAST, b);
            TT_CHECK(max_diff(a, b, nv) == 0.0f, "%s: step %d after restore differs by %g", pol, i, max_diff(a, b, nv));
        }
        free(ids);
        free(buf);
        free(a);
        free(b);
        zc_context_free(src);
        zc_context_free(dst);
    }
    zc_model_free(m);
}

/* Damaged, foreign and mismatched buffers are refused; the sequence keeps
 * its tokens and cache. */
static void test_restore_refusals(void) {
    zc_model *m = stories();
    int nv = zc_model_get_info(m)->n_vocab;
    zc_context *c = context(m, "zipcache", 256, 0);
    int32_t p[50];
    for (int i = 0; i < 50; i++) p[i] = tok(4, i, nv);
    zc_decode(c, p, 30, ZC_LOGITS_NONE, NULL);
    uint8_t *buf;
    size_t len;
    TT_CHECK(zc_seq_save(c, 0, p, &buf, &len) == ZC_OK, "%s", zc_last_error());
    free(buf);
    TT_CHECK(zc_seq_save(c, 1, p, &buf, &len) == ZC_ERR_ARG && !buf, "sequence 1 of 1 saved");
    zc_seq_save(c, 0, p, &buf, &len);
    zc_context *d = context(m, "zipcache", 256, 0);
    zc_decode(d, p + 10, 7, ZC_LOGITS_NONE, NULL);
    zc_kv_usage before;
    zc_context_kv_usage(d, &before);
    int32_t *ids;
    int n;
    struct {
        const char *what;
        size_t cut;
        size_t flip;
        int want;
    } cases[] = {
        {"empty", 0, 0, ZC_ERR_FORMAT},       {"header only", 300, 0, ZC_ERR_FORMAT},
        {"one byte short", 1, 0, ZC_ERR_FORMAT}, {"flipped state byte", 0, 1, ZC_ERR_FORMAT},
        {"flipped checksum", 0, 2, ZC_ERR_FORMAT}, {"wrong magic", 0, 3, ZC_ERR_FORMAT},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t *bad = malloc(len);
        memcpy(bad, buf, len);
        size_t bl = cases[k].cut == 0 && !strcmp(cases[k].what, "empty") ? 0 : len - (cases[k].cut == 1 ? 1 : 0);
        if (cases[k].cut == 300) bl = 300;
        if (cases[k].flip == 1) bad[len - 100] ^= 0x10;
        if (cases[k].flip == 2) bad[len - 1] ^= 0x01;
        if (cases[k].flip == 3) bad[0] = 'X';
        int rc = zc_seq_load(d, 0, bad, bl, &ids, &n);
        TT_CHECK(rc == cases[k].want && !ids && n == 0, "%s: rc %d (%s)", cases[k].what, rc, zc_last_error());
        free(bad);
    }
    /* another policy / options */
    zc_context *f = context(m, "fp16", 256, 0);
    TT_CHECK(zc_seq_load(f, 0, buf, len, &ids, &n) == ZC_ERR_FORMAT, "zipcache session into fp16: %s", zc_last_error());
    TT_CHECK(zc_context_pos(f) == 0, "fp16 context changed");
    zc_context_free(f);
    /* a context too short */
    zc_context *s = context(m, "zipcache", 16, 0);
    TT_CHECK(zc_seq_load(s, 0, buf, len, &ids, &n) == ZC_ERR_LIMIT, "30 tokens into a context of 16");
    zc_context_free(s);
    zc_kv_usage after;
    zc_context_kv_usage(d, &after);
    TT_CHECK(zc_context_pos(d) == 7 && after.total == before.total, "a refused restore changed the sequence");
    /* a file, and another model */
    char path[] = "/tmp/zc_test_seq_XXXXXX";
    int fd = mkstemp(path);
    TT_CHECK(fd >= 0, "mkstemp");
    close(fd);
    TT_CHECK(zc_seq_save_file(c, 0, p, path) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(zc_seq_load_file(d, 0, path, &ids, &n) == ZC_OK && n == 30, "file: %s", zc_last_error());
    free(ids);
    TT_CHECK(zc_seq_load_file(d, 0, "/nonexistent/x.session", &ids, &n) == ZC_ERR_IO, "missing file");
    const char *other = tt_asset("models/tinystories656K");
    if (other) {
        zc_model *m2 = NULL;
        if (zc_model_load(other, &m2) == ZC_OK) {
            zc_context *o = context(m2, "zipcache", 256, 0);
            int rc = zc_seq_load_file(o, 0, path, &ids, &n);
            TT_CHECK(rc == ZC_ERR_FORMAT && strstr(zc_last_error(), "another model"), "other model: %s", zc_last_error());
            zc_context_free(o);
            zc_model_free(m2);
        }
    }
    remove(path);
    free(buf);
    zc_context_free(c);
    zc_context_free(d);
    zc_model_free(m);
}

/* Every serializing policy at the cache level, at head_dim 32 (the block
 * formats need it; the test models have 8 and 16): write random K/V, save,
 * load into a fresh cache, and the two attend identically afterwards; a
 * state cut short is refused. */
static void test_policy_state_roundtrip(void) {
    const char *policies[] = {"fp16", "fp32", "q8_0", "q4_0", "zipcache", "uniform", "mikv", "h2o", "kivi"};
    zc_kv_shape sh = {2, 4, 2, 32, 128, NULL};
    int kvd = sh.n_kv_heads * sh.head_dim, qd = sh.n_heads * sh.head_dim;
    float *k = malloc(sizeof(float) * 80 * kvd), *v = malloc(sizeof(float) * 80 * kvd), *q = malloc(sizeof(float) * 40 * qd);
    float *o1 = malloc(sizeof(float) * 40 * qd), *o2 = malloc(sizeof(float) * qd);
    uint64_t x = 42;
    for (int i = 0; i < 80 * kvd; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        k[i] = (float)((x >> 33) % 2001) / 1000.0f - 1.0f;
        v[i] = (float)((x >> 13) % 2001) / 1000.0f - 1.0f;
    }
    for (size_t pi = 0; pi < sizeof policies / sizeof *policies; pi++) {
        zc_kv_config cfg;
        zc_kv_config_default(&cfg);
        snprintf(cfg.policy, sizeof cfg.policy, "%s", policies[pi]);
        cfg.stream_gap = 16;
        zc_kv_cache *a = NULL, *b = NULL;
        TT_CHECK(zc_kv_create(&cfg, &sh, NULL, &a) == ZC_OK && zc_kv_create(&cfg, &sh, NULL, &b) == ZC_OK, "%s: %s",
                 policies[pi], zc_last_error());
        if (!a || !b) continue;
        /* a 40-token prompt, then 30 single steps */
        for (int l = 0; l < sh.n_layers; l++) {
            for (int t = 0; t < 40; t++) { /* queries [40][qd]: the keys twice */
                memcpy(q + (size_t)t * qd, k + (size_t)t * kvd, sizeof(float) * kvd);
                memcpy(q + (size_t)t * qd + kvd, k + (size_t)t * kvd, sizeof(float) * kvd);
            }
            a->ops->write(a, l, 0, 40, k, v);
            a->ops->attend(a, l, 0, 40, q, o1); /* zipcache: the prompt chunk is scored and compressed */
        }
        for (int t = 40; t < 70; t++)
            for (int l = 0; l < sh.n_layers; l++) {
                a->ops->write(a, l, t, 1, k + (size_t)t * kvd, v + (size_t)t * kvd);
                memcpy(q, k + (size_t)t * kvd, sizeof(float) * kvd);
                memcpy(q + kvd, v + (size_t)t * kvd, sizeof(float) * kvd);
                a->ops->attend(a, l, t, 1, q, o1);
            }
        zc_kv_writer w = {0};
        TT_CHECK(a->ops->save(a, &w) == ZC_OK, "%s save: %s", policies[pi], zc_last_error());
        zc_kv_reader short_r = {w.buf, w.len - 1, 0};
        TT_CHECK(b->ops->load(b, &short_r) == ZC_ERR_FORMAT, "%s: a state one byte short was accepted", policies[pi]);
        zc_kv_free(b);
        zc_kv_create(&cfg, &sh, NULL, &b);
        zc_kv_reader r = {w.buf, w.len, 0};
        TT_CHECK(b->ops->load(b, &r) == ZC_OK && r.off == w.len, "%s load: %s", policies[pi], zc_last_error());
        zc_kv_usage ua, ub;
        a->ops->usage(a, &ua);
        b->ops->usage(b, &ub);
        if (!strcmp(policies[pi], "zipcache")) TT_CHECK(ua.n_compressions > 0 && ua.window > 0, "zipcache state");
        if (!strcmp(policies[pi], "kivi")) TT_CHECK(ua.codes > 0 && ua.window > 0, "kivi state: codes and window");
        TT_CHECK(ua.total == ub.total && ua.n_tokens == 70 && ub.n_tokens == 70, "%s usage %zu/%zu", policies[pi],
                 ua.total, ub.total);
        float worst = 0;
        for (int t = 70; t < 80; t++)
            for (int l = 0; l < sh.n_layers; l++) {
                zc_kv_cache *cs[2] = {a, b};
                float *os[2] = {o1, o2};
                memcpy(q, v + (size_t)t * kvd, sizeof(float) * kvd);
                memcpy(q + kvd, k + (size_t)t * kvd, sizeof(float) * kvd);
                for (int j = 0; j < 2; j++) {
                    cs[j]->ops->write(cs[j], l, t, 1, k + (size_t)t * kvd, v + (size_t)t * kvd);
                    cs[j]->ops->attend(cs[j], l, t, 1, q, os[j]);
                }
                float d = max_diff(o1, o2, qd);
                worst = d > worst ? d : worst;
            }
        TT_CHECK(worst == 0.0f, "%s: attention after load differs by %g", policies[pi], worst);
        free(w.buf);
        zc_kv_free(a);
        zc_kv_free(b);
    }
    free(k);
    free(v);
    free(q);
    free(o1);
    free(o2);
}

int main(int argc, char **argv) {
    if (argc == 2) { /* a model of another architecture: the sequence and batch tests */
        g_model = argv[1];
        TT_RUN(test_sequences_are_independent);
        TT_RUN(test_batch_matches_single_steps);
        TT_RUN(test_save_restore_roundtrip); /* gemma3: local layers past their window */
        return tt_finish();
    }
    TT_RUN(test_policy_state_roundtrip);
    TT_RUN(test_sequences_are_independent);
    TT_RUN(test_batch_matches_single_steps);
    TT_RUN(test_budget_covers_all_sequences);
    TT_RUN(test_truncate);
    TT_RUN(test_save_restore_roundtrip);
    TT_RUN(test_restore_refusals);
    return tt_finish();
}
