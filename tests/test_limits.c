/* Resource limits through the library: the --kv-budget rule and the context
 * rule of zc_decode (include/zipcache.h), --kv-budget parsing, the size limit
 * of zc_read_file and the JSON nesting limit. The CLI side of the same rules
 * is tests/test_hostile_cli.sh. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kv/kv.h"
#include "tt.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"
#include "zipcache.h"

/* stories260K: 2 (K, V) x 5 layers x 4 KV heads x 8 dims x 2 bytes per fp16 token. */
#define FP16_TOKEN_BYTES 640

static zc_model *load_stories(void) {
    const char *path = tt_asset("models/stories260K/stories260K.gguf");
    if (!path) TT_SKIP("models/stories260K/stories260K.gguf not found");
    zc_model *m = NULL;
    if (zc_model_load(path, &m) != ZC_OK) TT_SKIP("cannot load %s: %s", path, zc_last_error());
    return m;
}

/* A single-threaded context of n_ctx positions with the given KV policy and budget. */
static zc_context *context(const zc_model *m, const char *policy, size_t budget, int n_ctx) {
    zc_kv_config kv;
    zc_kv_config_default(&kv);
    snprintf(kv.policy, sizeof kv.policy, "%s", policy);
    kv.budget_bytes = budget;
    zc_context_params p;
    zc_context_params_default(&p);
    p.n_ctx = n_ctx;
    p.n_threads = 1;
    p.kv = &kv; /* copied by zc_context_create */
    zc_context *c = NULL;
    int rc = zc_context_create(m, &p, &c);
    TT_CHECK(rc == ZC_OK, "context %s: %s", policy, zc_last_error());
    return c;
}

/* Decode single tokens (ids 3, 4, ... wrapping in the vocab) until a call
 * fails; returns the position reached, *rc the failing call's code. */
static int decode_until_refused(zc_context *c, float *logits, int n_vocab, int *rc) {
    *rc = ZC_OK;
    while (*rc == ZC_OK && zc_context_pos(c) < zc_context_n_ctx(c)) {
        int32_t tok = 3 + zc_context_pos(c) % (n_vocab - 3);
        *rc = zc_decode(c, &tok, 1, ZC_LOGITS_LAST, logits);
    }
    return zc_context_pos(c);
}

/* fp16 with a budget of exactly k tokens holds k tokens: the refused call
 * processes nothing (position, cache bytes and the logits buffer unchanged),
 * names the budget, position and policy, and the context stays usable. */
static void test_budget_fp16_exact(void) {
    zc_model *m = load_stories();
    const int n_vocab = zc_model_get_info(m)->n_vocab, k = 37;
    zc_context *c = context(m, "fp16", (size_t)k * FP16_TOKEN_BYTES, 128);
    if (!c) {
        zc_model_free(m);
        return;
    }
    float logits[512]; /* [n_vocab] */
    TT_CHECK(n_vocab == 512, "n_vocab %d", n_vocab);
    int rc, pos = decode_until_refused(c, logits, n_vocab, &rc);
    TT_CHECK(rc == ZC_ERR_LIMIT && pos == k, "rc %d at position %d, want ZC_ERR_LIMIT at %d", rc, pos, k);
    char want[160];
    snprintf(want, sizeof want, "KV cache budget of %d bytes reached at position %d (policy fp16)",
             k * FP16_TOKEN_BYTES, k);
    TT_CHECK(strstr(zc_last_error(), want) != NULL, "message '%s'", zc_last_error());

    zc_kv_usage before, after;
    zc_context_kv_usage(c, &before);
    for (int i = 0; i < n_vocab; i++) logits[i] = -7.0f;
    int32_t toks[3] = {5, 6, 7};
    TT_CHECK(zc_decode(c, toks, 3, ZC_LOGITS_LAST, logits) == ZC_ERR_LIMIT, "batch past the budget");
    zc_context_kv_usage(c, &after);
    int untouched = 1;
    for (int i = 0; i < n_vocab; i++) untouched &= logits[i] == -7.0f;
    TT_CHECK(zc_context_pos(c) == k && after.total == before.total && after.n_tokens == k && untouched,
             "refused call changed state: pos %d, bytes %zu -> %zu, logits %s", zc_context_pos(c), before.total,
             after.total, untouched ? "kept" : "written");
    TT_CHECK(before.total == (size_t)k * FP16_TOKEN_BYTES, "fp16 bytes %zu", before.total);

    /* After a reset the same budget admits a k-token prompt in one call, not k + 1. */
    TT_CHECK(zc_context_reset(c) == ZC_OK, "reset");
    int32_t prompt[64]; /* [k + 1] */
    for (int i = 0; i <= k; i++) prompt[i] = 3 + i;
    TT_CHECK(zc_decode(c, prompt, k + 1, ZC_LOGITS_LAST, logits) == ZC_ERR_LIMIT && zc_context_pos(c) == 0,
             "prompt of k+1 tokens into an empty cache");
    TT_CHECK(strstr(zc_last_error(), "reached at position 0 (policy fp16)") != NULL, "%s", zc_last_error());
    TT_CHECK(zc_decode(c, prompt, k, ZC_LOGITS_LAST, logits) == ZC_OK && zc_context_pos(c) == k,
             "prompt of k tokens: %s", zc_last_error());
    zc_context_free(c);
    zc_model_free(m);
}

/* Without a budget the same decode runs to the context limit, and the
 * context rule refuses the next call without processing it. */
static void test_no_budget_context_rule(void) {
    zc_model *m = load_stories();
    const int n_vocab = zc_model_get_info(m)->n_vocab;
    zc_context *c = context(m, "fp16", 0, 16);
    if (!c) {
        zc_model_free(m);
        return;
    }
    float logits[512]; /* [n_vocab] */
    int rc, pos = decode_until_refused(c, logits, n_vocab, &rc);
    TT_CHECK(rc == ZC_OK && pos == 16, "rc %d at %d", rc, pos);
    int32_t tok = 9;
    TT_CHECK(zc_decode(c, &tok, 1, ZC_LOGITS_LAST, logits) == ZC_ERR_LIMIT && zc_context_pos(c) == 16,
             "decode past n_ctx");
    TT_CHECK(strstr(zc_last_error(), "context full: 1 tokens at position 16 exceed the context of 16 tokens") != NULL,
             "%s", zc_last_error());
    zc_context_free(c);
    zc_model_free(m);
}

/* A compressed policy averages fewer bytes per token, so under the same
 * budget it decodes further; every policy stays within one fp16 token of it. */
static void test_budget_compressed_later(void) {
    zc_model *m = load_stories();
    const int n_vocab = zc_model_get_info(m)->n_vocab;
    const size_t budget = 100 << 10;
    const char *policies[] = {"fp32", "fp16", "kivi", "zipcache", "h2o"};
    int reached[5] = {0};
    float logits[512]; /* [n_vocab] */
    for (int i = 0; i < 5; i++) {
        zc_context *c = context(m, policies[i], budget, 512);
        if (!c) continue;
        int rc;
        reached[i] = decode_until_refused(c, logits, n_vocab, &rc);
        zc_kv_usage u;
        zc_context_kv_usage(c, &u);
        /* h2o evicts down to a fixed share of the tokens: it may run to n_ctx. */
        TT_CHECK(rc == ZC_ERR_LIMIT || (i == 4 && rc == ZC_OK && reached[i] == 512), "%s: rc %d at %d",
                 policies[i], rc, reached[i]);
        TT_CHECK(u.total <= budget + FP16_TOKEN_BYTES, "%s holds %zu bytes", policies[i], u.total);
        zc_context_free(c);
    }
    TT_CHECK(reached[0] == 80 && reached[1] == 160, "fp32 %d, fp16 %d", reached[0], reached[1]);
    for (int i = 2; i < 5; i++)
        TT_CHECK(reached[i] > reached[1], "%s stopped at %d, fp16 at %d", policies[i], reached[i], reached[1]);
    zc_model_free(m);
}

static void test_budget_parse(void) {
    struct {
        const char *val;
        size_t want; /* 0: refused */
    } cases[] = {
        {"512", 512}, {"4K", 4096}, {"4k", 4096}, {"3M", 3u << 20}, {"2G", (size_t)2 << 30},
        {"17179869183G", (size_t)17179869183 << 30}, {"17179869184G", 0}, {"0", 0}, {"-1", 0}, {"1.5K", 0},
        {"K", 0}, {"", 0}, {"12KB", 0}, {"99999999999999999999", 0}, {" 5", 0}, {" -5", 0}, {"+5", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zc_kv_config cfg;
        zc_kv_config_default(&cfg);
        int rc = zc_kv_config_parse_arg(&cfg, "--kv-budget", cases[i].val);
        if (cases[i].want)
            TT_CHECK(rc == 1 && cfg.budget_bytes == cases[i].want, "'%s': rc %d, %zu", cases[i].val, rc,
                     cfg.budget_bytes);
        else
            TT_CHECK(rc == ZC_ERR_ARG && cfg.budget_bytes == 0 && strstr(zc_last_error(), "--kv-budget"),
                     "'%s' accepted: rc %d, %zu", cases[i].val, rc, cfg.budget_bytes);
    }
}

/* zc_read_file takes a file of exactly the limit and refuses one byte more
 * with ZC_ERR_LIMIT and the path in the message, whatever the limit. */
static void test_read_file_limit(void) {
    char path[] = "/tmp/zc_limits_XXXXXX";
    int fd = mkstemp(path);
    TT_CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    static char block[100001];
    memset(block, 'x', sizeof block);
    TT_CHECK(write(fd, block, sizeof block) == (ssize_t)sizeof block, "write");
    close(fd);
    char *text = NULL;
    size_t len = 0;
    TT_CHECK(zc_read_file(path, sizeof block, &text, &len) == ZC_OK && len == sizeof block && text[len] == 0,
             "at the limit: %s", zc_last_error());
    free(text);
    TT_CHECK(zc_read_file(path, sizeof block - 1, &text, &len) == ZC_ERR_LIMIT && !text, "one byte over");
    TT_CHECK(strstr(zc_last_error(), path) && strstr(zc_last_error(), "file larger than the 100000-byte limit"), "%s",
             zc_last_error());
    /* Limits below the first read's 64 KiB are enforced too. */
    TT_CHECK(zc_read_file(path, 1000, &text, &len) == ZC_ERR_LIMIT && !text, "limit 1000 on %zu bytes", sizeof block);
    unlink(path);
}

/* Nesting at the limit parses; one level more and 100000 levels are refused
 * with an error (no recursion past the limit, so no stack overflow). */
static void test_json_depth(void) {
    static char text[200001];
    const int depths[] = {ZC_JSON_MAX_DEPTH, ZC_JSON_MAX_DEPTH + 1, 100000};
    for (int i = 0; i < 3; i++) {
        int d = depths[i];
        memset(text, '[', (size_t)d);
        memset(text + d, ']', (size_t)d);
        zc_json_doc *doc = NULL;
        const zc_json *root = NULL;
        int rc = zc_json_parse(text, 2 * (size_t)d, "deep.json", &doc, &root);
        if (d <= ZC_JSON_MAX_DEPTH)
            TT_CHECK(rc == ZC_OK && root && root->type == ZC_JSON_ARRAY, "depth %d: %s", d, zc_last_error());
        else
            TT_CHECK(rc == ZC_ERR_FORMAT && strstr(zc_last_error(), "deep.json: invalid JSON at byte 128: nesting too deep"),
                     "depth %d: rc %d, %s", d, rc, zc_last_error());
        zc_json_free(doc);
    }
}

int main(void) {
    TT_RUN(test_budget_fp16_exact);
    TT_RUN(test_no_budget_context_rule);
    TT_RUN(test_budget_compressed_later);
    TT_RUN(test_budget_parse);
    TT_RUN(test_read_file_limit);
    TT_RUN(test_json_depth);
    return tt_finish();
}
