/* KV registry, configuration parsing and the fp32/fp16 policies: stored
 * values read back through attention against the double reference,
 * incremental writes equal one batched write, exact usage, truncation and
 * every error path. */
#include "tt.h"

#include "attn/attn.h"
#include "kv/kv.h"
#include "quant/ggml_blocks.h"
#include "util/fp16.h"
#include "zipcache.h"

#include "kv_test_util.h"

/* The K/V a policy should behave as if it stored (fp16 rounds). */
static void rounded(const float *x, float *out, size_t n, int type) {
    for (size_t i = 0; i < n; i++) out[i] = type == ZC_TYPE_F16 ? zc_fp16_to_f32(zc_f32_to_fp16(x[i])) : x[i];
}

/* Write in uneven chunks, attend each chunk, compare with the reference
 * over the rounded K/V of positions 0..pos+i. */
static void check_policy(const char *policy, int type, zc_pool *pool) {
    data d = make_data(3, 8, 2, 16, 37, 42);
    zc_kv_cache *c = create(policy, &d.s, pool);
    if (!c) return;
    zc_attn_dims ad = {8, 2, 16};
    size_t nk = (size_t)d.n * d.kv_dim;
    float *kr = malloc(nk * sizeof(float)), *vr = malloc(nk * sizeof(float));
    float *out = malloc((size_t)d.n * d.q_dim * sizeof(float)), *ref = malloc((size_t)d.n * d.q_dim * sizeof(float));
    const int chunks[] = {1, 16, 1, 1, 7, 11};
    double worst = 0;
    int pos = 0;
    for (int ci = 0; ci < 6; ci++) {
        int n = chunks[ci];
        for (int l = 0; l < 3; l++) {
            const float *k = rows_of(&d, d.k, l, pos, d.kv_dim), *v = rows_of(&d, d.v, l, pos, d.kv_dim);
            const float *q = rows_of(&d, d.q, l, pos, d.q_dim);
            TT_CHECK(c->ops->write(c, l, pos, n, k, v) == ZC_OK, "%s", zc_last_error());
            TT_CHECK(c->ops->attend(c, l, pos, n, q, out) == ZC_OK, "%s", zc_last_error());
            rounded(d.k + (size_t)l * d.n * d.kv_dim, kr, (size_t)(pos + n) * d.kv_dim, type);
            rounded(d.v + (size_t)l * d.n * d.kv_dim, vr, (size_t)(pos + n) * d.kv_dim, type);
            zc_attn_reference(&ad, q, n, pos, kr, vr, ZC_TYPE_F32, (size_t)d.kv_dim, pos + n, ref, NULL);
            for (size_t i = 0; i < (size_t)n * d.q_dim; i++) {
                double e = fabs((double)out[i] - ref[i]);
                if (e > worst) worst = e;
            }
        }
        pos += n;
        TT_CHECK(c->n_tokens == pos, "n_tokens %d, expected %d", c->n_tokens, pos);
    }
    TT_CHECK(worst < 1e-5, "%s: max |attention - reference| = %g", policy, worst);

    zc_kv_usage u;
    c->ops->usage(c, &u);
    size_t elem = type == ZC_TYPE_F16 ? 2 : 4;
    TT_CHECK(u.codes == 2 * (size_t)pos * 3 * d.kv_dim * elem && u.total == u.codes, "codes %zu total %zu", u.codes,
             u.total);
    TT_CHECK(u.n_tokens == pos && u.elements == 2LL * pos * 3 * d.kv_dim, "tokens %lld elements %lld",
             (long long)u.n_tokens, (long long)u.elements);
    TT_NEAR(zc_kv_bits_per_element(&u), 8.0 * elem, 1e-12);
    TT_NEAR(zc_kv_ratio(&u), 2.0 / elem, 1e-12);

    /* Truncate to 10, rewrite positions 10.. and get the same attention. */
    TT_CHECK(c->ops->truncate(c, 10) == ZC_OK, "%s", zc_last_error());
    c->ops->usage(c, &u);
    TT_CHECK(u.n_tokens == 10 && u.total == 2 * (size_t)10 * 3 * d.kv_dim * elem, "after truncate %zu", u.total);
    for (int l = 0; l < 3; l++) {
        int n = d.n - 10;
        const float *k = d.k + ((size_t)l * d.n + 10) * d.kv_dim, *v = d.v + ((size_t)l * d.n + 10) * d.kv_dim;
        const float *q = d.q + ((size_t)l * d.n + 10) * d.q_dim;
        TT_CHECK(c->ops->write(c, l, 10, n, k, v) == ZC_OK, "%s", zc_last_error());
        TT_CHECK(c->ops->attend(c, l, 10, n, q, out) == ZC_OK, "%s", zc_last_error());
        rounded(d.k + (size_t)l * d.n * d.kv_dim, kr, nk, type);
        rounded(d.v + (size_t)l * d.n * d.kv_dim, vr, nk, type);
        zc_attn_reference(&ad, q, n, 10, kr, vr, ZC_TYPE_F32, (size_t)d.kv_dim, d.n, ref, NULL);
        for (size_t i = 0; i < (size_t)n * d.q_dim; i++) TT_NEAR(out[i], ref[i], 1e-5);
    }

    /* Errors: a gap, a past-the-context write, attention beyond what is stored. */
    TT_CHECK(c->ops->write(c, 0, d.n + 1, 1, d.k, d.v) == ZC_ERR_ARG, "gap accepted");
    TT_CHECK(c->ops->write(c, 0, d.n, 9, d.k, d.v) == ZC_ERR_LIMIT, "overflow accepted");
    TT_CHECK(strstr(zc_last_error(), "exceed the context") != NULL, "%s", zc_last_error());
    TT_CHECK(c->ops->attend(c, 0, d.n, 1, d.q, out) == ZC_ERR_ARG, "attention past the end accepted");
    TT_CHECK(c->ops->truncate(c, d.n + 1) == ZC_ERR_ARG, "truncate beyond accepted");
    TT_CHECK(c->ops->truncate(c, 0) == ZC_OK && c->n_tokens == 0, "truncate 0");
    zc_kv_free(c);
    free(kr), free(vr), free(out), free(ref);
    free_data(&d);
}

static void test_fp32(void) { check_policy("fp32", ZC_TYPE_F32, NULL); }
static void test_fp16(void) { check_policy("fp16", ZC_TYPE_F16, NULL); }
static void test_fp16_threads(void) {
    zc_pool *pool = zc_pool_create(2);
    check_policy("fp16", ZC_TYPE_F16, pool);
    zc_pool_destroy(pool);
}

static void test_registry(void) {
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    TT_CHECK(!strcmp(cfg.policy, "zipcache") && cfg.k_hi_bits == 0 && cfg.k_lo_bits == 0 && cfg.v_hi_bits == 0 &&
                 cfg.v_lo_bits == 0 && cfg.bits == 0 && cfg.rotate_keys == 2 && cfg.int8_query == 1,
             "defaults: policy %s (widths 0: chosen by the policy; rotation auto)", cfg.policy);
    TT_CHECK(cfg.salient_ratio == 0.6f && !strcmp(cfg.probes, "random+recent:0.05:0.05") && cfg.stream_gap == 100 &&
                 cfg.group_size == 32 && cfg.residual == 32 && cfg.budget_ratio == 0.2f && cfg.seed == 0 &&
                 cfg.sinks == 0 && cfg.key_group == 0 && cfg.budget_bytes == 0 && cfg.target_bits == 0,
             "defaults");
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv", "nosuch") == ZC_ERR_ARG, "unknown accepted");
    TT_CHECK(strstr(zc_last_error(), "unknown KV policy 'nosuch' (available: fp32, fp16") != NULL, "%s",
             zc_last_error());
    strcpy(cfg.policy, "nosuch");
    zc_kv_shape s = {1, 2, 1, 8, 16, NULL};
    zc_kv_cache *c = (zc_kv_cache *)&cfg; /* must be overwritten with NULL */
    TT_CHECK(zc_kv_create(&cfg, &s, NULL, &c) == ZC_ERR_ARG && c == NULL, "create of unknown policy");
    zc_kv_config_default(&cfg);
    zc_kv_shape bad = {1, 3, 2, 8, 16, NULL};
    TT_CHECK(zc_kv_create(&cfg, &bad, NULL, &c) == ZC_ERR_ARG, "kv heads not dividing heads");
    strcpy(cfg.policy, "fp16"); /* reserves its address space up front */
    zc_kv_shape huge = {1000, 8, 8, 128, 1 << 30, NULL};
    int rc = zc_kv_create(&cfg, &huge, NULL, &c);
    TT_CHECK(rc == ZC_ERR_LIMIT || rc == ZC_ERR_NOMEM, "absurd context accepted (%d)", rc);
}

static void test_parse(void) {
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "-n", "5") == 0, "non-KV option consumed");
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kvx", "5") == 0, "unknown --kv* option consumed");
    struct { const char *opt, *val; } good[] = {
        {"--kv", "fp32"}, {"--kv-hi-bits", "8"}, {"--kv-lo-bits", "3"}, {"--kv-k-hi-bits", "6"},
        {"--kv-v-lo-bits", "1"}, {"--kv-bits", "2.5"}, {"--kv-probes", "random:0.1"}, {"--kv-stream-gap", "64"},
        {"--kv-sinks", "4"}, {"--kv-key-group", "128"}, {"--kv-group", "64"}, {"--kv-residual", "0"},
        {"--kv-budget-ratio", "0.5"}, {"--kv-seed", "18446744073709551615"}, {"--kv-budget", "3M"},
        {"--kv-denom", "probes"}, {"--kv-decode-rule", "reference"}, {"--kv-int8-query", "on"},
        {"--kv-rotate", "on"},
    };
    TT_CHECK(cfg.bits == 0 && cfg.denom == ZC_DENOM_CAUSAL && cfg.decode_rule == ZC_KV_DECODE_PAPER &&
                 cfg.int8_query == 1,
             "defaults: bits %d denom %d rule %d int8 %d", cfg.bits, (int)cfg.denom, (int)cfg.decode_rule,
             cfg.int8_query);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        TT_CHECK(zc_kv_config_parse_arg(&cfg, good[i].opt, good[i].val) == 1, "%s %s: %s", good[i].opt, good[i].val,
                 zc_last_error());
    TT_CHECK(!strcmp(cfg.policy, "fp32") && cfg.k_hi_bits == 6 && cfg.v_hi_bits == 8 && cfg.k_lo_bits == 3 &&
                 cfg.v_lo_bits == 1,
             "bits %d %d %d %d", cfg.k_hi_bits, cfg.v_hi_bits, cfg.k_lo_bits, cfg.v_lo_bits);
    TT_CHECK(cfg.rotate_keys == 1, "--kv-rotate on");
    const char *rot_names[] = {"off", "on", "auto"};
    for (int i = 0; i < 3; i++)
        TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv-rotate", rot_names[i]) == 1 && cfg.rotate_keys == i,
                 "--kv-rotate %s: %d %s", rot_names[i], cfg.rotate_keys, zc_last_error());
    cfg.rotate_keys = 1;
    TT_CHECK(cfg.target_bits == 2.5f && cfg.bits == 0, "--kv-bits 2.5: target %g bits %d", (double)cfg.target_bits,
             cfg.bits);
    TT_CHECK(!strcmp(cfg.probes, "random:0.1") && cfg.stream_gap == 64 && cfg.sinks == 4 && cfg.key_group == 128 &&
                 cfg.group_size == 64 && cfg.residual == 0 && cfg.budget_ratio == 0.5f &&
                 cfg.seed == 18446744073709551615ull && cfg.budget_bytes == 3u << 20,
             "values");
    TT_CHECK(cfg.denom == ZC_DENOM_PROBES && cfg.decode_rule == ZC_KV_DECODE_REFERENCE && cfg.int8_query == 1,
             "denom %d rule %d int8 %d", (int)cfg.denom, (int)cfg.decode_rule, cfg.int8_query);
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv-denom", "accumulated") == 1 && cfg.denom == ZC_DENOM_NONE &&
                 zc_kv_config_parse_arg(&cfg, "--kv-denom", "causal") == 1 && cfg.denom == ZC_DENOM_CAUSAL &&
                 zc_kv_config_parse_arg(&cfg, "--kv-decode-rule", "paper") == 1 &&
                 cfg.decode_rule == ZC_KV_DECODE_PAPER && zc_kv_config_parse_arg(&cfg, "--kv-int8-query", "off") == 1 &&
                 cfg.int8_query == 0,
             "choices back to the defaults");
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv-bits", "3") == 1 && cfg.bits == 3 && cfg.target_bits == 3.0f, "bits 3");
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv-salient-ratio", "0.25") == 1 && cfg.salient_ratio == 0.25f &&
                 cfg.target_bits == 0,
             "explicit ratio clears the budget");
    const char *probes[] = {"all", "recent:1", "random+recent:0.05:0.1"};
    for (int i = 0; i < 3; i++) TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv-probes", probes[i]) == 1, "%s", probes[i]);
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv-budget", "7") == 1 && cfg.budget_bytes == 7, "plain bytes");
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv-budget", "2g") == 1 && cfg.budget_bytes == 2ull << 30, "2g");

    struct { const char *opt, *val, *msg; } bad[] = {
        {"--kv-hi-bits", "9", "out of range"},      {"--kv-lo-bits", "0", "out of range"},
        {"--kv-hi-bits", "4x", "not an integer"},   {"--kv-bits", "nan", "not a number"},
        {"--kv-bits", "0.5", "out of range"},       {"--kv-salient-ratio", "1.5", "out of range"},
        {"--kv-probes", "random", "not a probe policy"}, {"--kv-probes", "random:0", "fractions"},
        {"--kv-probes", "random+recent:0.1", "two fractions"}, {"--kv-probes", "recent:0.1x", "trailing"},
        {"--kv-stream-gap", "0", "out of range"},   {"--kv-sinks", "-1", "out of range"},
        {"--kv-group", "", "not an integer"},       {"--kv-budget-ratio", "0", "out of range"},
        {"--kv-seed", "-3", "non-negative"},        {"--kv-budget", "0", "positive"},
        {"--kv-budget", "12T", "suffix"},           {"--kv-budget", "1Gb", "trailing"},
        {"--kv-budget", "99999999999999999999", "byte count"},
        {"--kv-denom", "Causal", "not one of accumulated, causal, probes"}, {"--kv-denom", "", "not one of"},
        {"--kv-decode-rule", "last", "not one of paper, reference"},
        {"--kv-int8-query", "1", "not one of off, on"},     {"--kv-int8-query", "on ", "not one of"},
        {"--kv-rotate", "yes", "not one of off, on, auto"}, {"--kv-rotate", "Auto", "not one of"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zc_kv_config before = cfg;
        int rc = zc_kv_config_parse_arg(&cfg, bad[i].opt, bad[i].val);
        TT_CHECK(rc == ZC_ERR_ARG && strstr(zc_last_error(), bad[i].msg) && strstr(zc_last_error(), bad[i].opt),
                 "%s '%s' -> %d: %s", bad[i].opt, bad[i].val, rc, zc_last_error());
        TT_CHECK(!memcmp(&before, &cfg, sizeof cfg), "%s '%s' changed the config", bad[i].opt, bad[i].val);
    }
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv-seed", NULL) == ZC_ERR_ARG && strstr(zc_last_error(), "needs a value"),
             "missing value");
    /* without a value an unknown option is still unknown (the CLI reports it so) */
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv-bogus", NULL) == 0 && zc_kv_config_parse_arg(&cfg, "-m", NULL) == 0,
             "unknown option without a value");
}

static void test_describe(void) {
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    strcpy(cfg.policy, "fp16");
    char buf[256];
    zc_kv_config_describe(&cfg, buf, sizeof buf);
    TT_CHECK(!strcmp(buf, "fp16 (uncompressed, 16 bits/element)"), "%s", buf);
    strcpy(cfg.policy, "zipcache");
    zc_kv_config_describe(&cfg, buf, sizeof buf);
    TT_CHECK(strstr(buf, "widths chosen per segment, budget 4 bits (default), probes"), "%s", buf);
    cfg.target_bits = 3;
    zc_kv_config_describe(&cfg, buf, sizeof buf);
    TT_CHECK(strstr(buf, "widths chosen per segment, budget 3 bits, probes random+recent:0.05:0.05, denom causal, "
                         "decode rule paper, stream gap 100") && strstr(buf, "keys rotated per layer (auto), int8 query on"),
             "%s", buf);
    cfg.rotate_keys = 0; /* off shows nothing, as before auto existed (saved sessions keep matching) */
    zc_kv_config_describe(&cfg, buf, sizeof buf);
    TT_CHECK(!strstr(buf, "rotat"), "%s", buf);
    cfg.k_lo_bits = 3; /* one width given: the others are the paper's 4/2 */
    cfg.rotate_keys = 1;
    zc_kv_config_describe(&cfg, buf, sizeof buf);
    TT_CHECK(strstr(buf, "K 4/3 bits, V 4/2 bits, budget 3 bits") && strstr(buf, "rotated keys"), "%s", buf);
    cfg.k_lo_bits = 0;
    cfg.rotate_keys = 2;
    /* mikv fixes probes, denominator and decode rule: the description does not show the ignored options */
    strcpy(cfg.policy, "mikv");
    zc_kv_config_describe(&cfg, buf, sizeof buf);
    TT_CHECK(strstr(buf, "accumulated scores of all queries") && !strstr(buf, "probes") && !strstr(buf, "denom") &&
                 !strstr(buf, "decode rule"),
             "%s", buf);
    /* bits 0: each uniform-width policy's own default */
    strcpy(cfg.policy, "kivi");
    zc_kv_config_describe(&cfg, buf, sizeof buf);
    TT_CHECK(!strncmp(buf, "kivi (2 bits,", 13) && zc_kv_config_bits(&cfg) == 2, "%s", buf);
    strcpy(cfg.policy, "uniform");
    zc_kv_config_describe(&cfg, buf, sizeof buf);
    TT_CHECK(!strncmp(buf, "uniform (4 bits,", 16) && zc_kv_config_bits(&cfg) == 4, "%s", buf);
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv-bits", "3") == 1 && zc_kv_config_bits(&cfg) == 3, "explicit width");
    strcpy(cfg.policy, "kivi");
    TT_CHECK(zc_kv_config_bits(&cfg) == 3, "explicit width for kivi");
    strcpy(cfg.policy, "zipcache");
    cfg.bits = 0;
    char tiny[8];
    zc_kv_config_describe(&cfg, tiny, sizeof tiny);
    TT_CHECK(strlen(tiny) == 7, "truncated to the buffer: '%s'", tiny);
}

static void test_ratio_empty(void) {
    zc_kv_usage u = {0};
    TT_CHECK(zc_kv_ratio(&u) == 0 && zc_kv_bits_per_element(&u) == 0, "empty cache ratios");
}

int main(void) {
    TT_RUN(test_fp32);
    TT_RUN(test_fp16);
    TT_RUN(test_fp16_threads);
    TT_RUN(test_registry);
    TT_RUN(test_parse);
    TT_RUN(test_describe);
    TT_RUN(test_ratio_empty);
    return tt_finish();
}
