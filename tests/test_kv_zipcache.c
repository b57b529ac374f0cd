/* The zipcache KV policy through its ops, on random K/V/Q (small shapes so
 * the suite stays fast): agreement with the fp16 policy at 8 bits, exact
 * probe scores, the streaming schedule, byte accounting, truncation. */
#include <stdint.h>
#include <stdlib.h>

#include "kv/kv.h"
#include "kv/zipcache_internal.h"
#include "quant/tiled.h"
#include "tt.h"
#include "util/fp16.h"
#include "zipcache.h"

static unsigned long long g_seed = 0xc0ffee11ull;

static void fill(float *x, size_t n, float amp) {
    for (size_t i = 0; i < n; i++) x[i] = amp * tt_randf(&g_seed);
}

static zc_pool *g_pool; /* pool for make(); NULL = single-threaded */

static zc_kv_config config(const char *policy, int hi, int lo, float ratio, int gap, const char *probes,
                           int key_group) {
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    snprintf(cfg.policy, sizeof cfg.policy, "%s", policy);
    cfg.k_hi_bits = cfg.v_hi_bits = hi;
    cfg.k_lo_bits = cfg.v_lo_bits = lo;
    cfg.salient_ratio = ratio;
    cfg.stream_gap = gap;
    cfg.key_group = key_group;
    if (probes) snprintf(cfg.probes, sizeof cfg.probes, "%s", probes);
    return cfg;
}

/* The default configuration of `policy` under a budget of `bits` (--kv-bits). */
static zc_kv_config budget_config(const char *policy, float bits) {
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    snprintf(cfg.policy, sizeof cfg.policy, "%s", policy);
    cfg.target_bits = bits;
    return cfg;
}

static zc_kv_cache *create(const zc_kv_config *cfg, zc_kv_shape sh) {
    zc_kv_cache *c = NULL;
    int rc = zc_kv_create(cfg, &sh, g_pool, &c);
    TT_CHECK(rc == 0 && c, "create %s: %s", cfg->policy, zc_last_error());
    return c;
}

static zc_kv_cache *make(const char *policy, zc_kv_shape sh, int hi, int lo, float ratio, int gap, const char *probes,
                         int key_group) {
    zc_kv_config cfg = config(policy, hi, lo, ratio, gap, probes, key_group);
    return create(&cfg, sh);
}

/* Feed n tokens (one block, or one by one) to every layer of every cache,
 * attending after each write; returns the worst |out_a - out_b| over the
 * attends counted from step `from` on. */
typedef struct {
    zc_kv_shape sh;
    float *k, *v, *q, *o1, *o2; /* one block: [n][kv_dim] x2, [n][q_dim] x3 */
} feeder;

static void feeder_init(feeder *f, zc_kv_shape sh, int max_n) {
    f->sh = sh;
    size_t kd = (size_t)sh.n_kv_heads * sh.head_dim, qd = (size_t)sh.n_heads * sh.head_dim;
    f->k = malloc(max_n * kd * 4);
    f->v = malloc(max_n * kd * 4);
    f->q = malloc(max_n * qd * 4);
    f->o1 = malloc(max_n * qd * 4);
    f->o2 = malloc(max_n * qd * 4);
}

static void feeder_free(feeder *f) {
    free(f->k);
    free(f->v);
    free(f->q);
    free(f->o1);
    free(f->o2);
}

/* One block of n tokens at pos into a (and b when not NULL); returns the
 * worst output difference between the two. */
static double feed(feeder *f, zc_kv_cache *a, zc_kv_cache *b, int pos, int n) {
    size_t kd = (size_t)f->sh.n_kv_heads * f->sh.head_dim, qd = (size_t)f->sh.n_heads * f->sh.head_dim;
    double worst = 0.0;
    for (int l = 0; l < f->sh.n_layers; l++) {
        fill(f->k, n * kd, 1.0f);
        fill(f->v, n * kd, 1.0f);
        fill(f->q, n * qd, 2.0f);
        int rc = a->ops->write(a, l, pos, n, f->k, f->v);
        rc = rc ? rc : a->ops->attend(a, l, pos, n, f->q, f->o1);
        TT_CHECK(rc == 0, "a: layer %d pos %d n %d: %s", l, pos, n, zc_last_error());
        if (!b) continue;
        rc = b->ops->write(b, l, pos, n, f->k, f->v);
        rc = rc ? rc : b->ops->attend(b, l, pos, n, f->q, f->o2);
        TT_CHECK(rc == 0, "b: layer %d pos %d n %d: %s", l, pos, n, zc_last_error());
        for (size_t i = 0; i < n * qd; i++) {
            double e = fabs((double)f->o1[i] - (double)f->o2[i]);
            if (!(e <= worst)) worst = e;
        }
    }
    return worst;
}

/* With hi = lo = 8 bits the policy is the fp16 cache up to 8-bit rounding:
 * the prompt's own attention is identical (both run on fp16 K/V), decode
 * steps over compressed tokens differ by ~1e-3; at 2 bits by far more. */
static void test_8bit_matches_fp16(void) {
    zc_kv_shape sh = {2, 4, 2, 16, 2048, NULL};
    feeder f;
    feeder_init(&f, sh, 300);
    double worst8 = 0, worst2 = 0;
    for (int bits = 8; bits >= 2; bits -= 6) {
        zc_kv_cache *z = make("zipcache", sh, bits, bits, 0.5f, 50, NULL, 0), *h = make("fp16", sh, 4, 2, 0.6f, 50, NULL, 0);
        unsigned long long s0 = g_seed;
        double e = feed(&f, z, h, 0, 300);
        TT_CHECK(e <= 1e-6, "bits %d: prefill differs from fp16 by %.3g", bits, e);
        double wd = 0;
        for (int p = 300; p < 420; p++) {
            e = feed(&f, z, h, p, 1);
            wd = e > wd ? e : wd;
        }
        if (bits == 8) worst8 = wd; else worst2 = wd;
        zc_kv_usage u;
        z->ops->usage(z, &u);
        TT_CHECK(u.n_compressions == 2 && u.n_tokens == 420, "compressions %lld tokens %lld",
                 (long long)u.n_compressions, (long long)u.n_tokens);
        zc_kv_free(z);
        zc_kv_free(h);
        g_seed = s0; /* the same data for both widths */
    }
    printf("  decode vs fp16: worst |diff| %.3g at 8 bits, %.3g at 2 bits\n", worst8, worst2);
    TT_CHECK(worst8 <= 5e-3, "8-bit decode differs from fp16 by %.3g", worst8);
    TT_CHECK(worst8 > 0 && worst2 > 4 * worst8, "2-bit error %.3g should dwarf 8-bit error %.3g", worst2, worst8);
    feeder_free(&f);
}

/* Exact normalized scores of a fresh prompt: column j gets
 * sum_{i >= j} sum_{h in group} softmax_{i,h}(j) / (n - j). */
static void exact_scores(const zc_kv_shape *sh, int n, const float *q, const float *k, double *out) {
    int hd = sh->head_dim, nh = sh->n_heads, nkv = sh->n_kv_heads, G = nh / nkv, kd = nkv * hd;
    double *row = malloc((size_t)n * sizeof(double));
    memset(out, 0, (size_t)nkv * n * sizeof(double));
    for (int i = 0; i < n; i++)
        for (int h = 0; h < nh; h++) {
            int g = h / G;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j <= i; j++) {
                double d = 0;
                for (int e = 0; e < hd; e++)
                    d += (double)q[(size_t)i * nh * hd + h * hd + e] *
                         (double)zc_fp16_to_f32(zc_f32_to_fp16(k[(size_t)j * kd + g * hd + e]));
                row[j] = d / sqrt((double)hd);
                mx = row[j] > mx ? row[j] : mx;
            }
            for (int j = 0; j <= i; j++) sum += (row[j] = exp(row[j] - mx));
            for (int j = 0; j <= i; j++) out[(size_t)g * n + j] += row[j] / sum / (double)(n - j);
        }
    free(row);
}

static void test_probe_scores(void) {
    zc_kv_shape sh = {1, 4, 2, 16, 1024, NULL};
    int n = 200, kd = 32, qd = 64;
    float *k = malloc(n * kd * 4), *v = malloc(n * kd * 4), *q = malloc(n * qd * 4), *out = malloc(n * qd * 4);
    double *ex = malloc(2 * n * sizeof(double));
    fill(k, n * kd, 1.0f);
    fill(v, n * kd, 1.0f);
    fill(q, n * qd, 2.0f);
    exact_scores(&sh, n, q, k, ex);
    for (int mode = 0; mode < 3; mode++) {
        /* 0: probes all, full denominator; 1: all, probe denominator (the same
         * counts); 2: default random+recent probes, full denominator */
        zc_kv_config cfg = config("zipcache", 4, 2, 0.6f, 100, mode < 2 ? "all" : NULL, 0);
        TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv-denom", mode == 1 ? "probes" : "causal") == 1, "denom");
        zc_kv_cache *z = create(&cfg, sh);
        TT_CHECK(z->ops->write(z, 0, 0, n, k, v) == 0 && z->ops->attend(z, 0, 0, n, q, out) == 0, "prefill");
        const float *sc;
        int m;
        TT_CHECK(zc_zip_last_scores(z, 0, &sc, &m) == 0 && m == n, "scores of %d tokens", m);
        double worst = 0, worst_tail = 0;
        int tail = n - (int)ceil(0.05 * n); /* columns only recent probes see: exact under any probe set */
        for (int g = 0; g < 2; g++)
            for (int j = 0; j < n; j++) {
                double e = fabs(sc[g * n + j] - ex[g * n + j]) / (1e-3 + ex[g * n + j]);
                worst = e > worst ? e : worst;
                if (j >= tail) worst_tail = e > worst_tail ? e : worst_tail;
            }
        if (mode < 2)
            TT_CHECK(worst <= 1e-4, "mode %d: scores vs exact rel err %.3g", mode, worst);
        else
            TT_CHECK(worst_tail <= 1e-4 && worst > 1e-2, "sampled probes: tail err %.3g, overall %.3g", worst_tail,
                     worst);
        int ns, nt;
        TT_CHECK(zc_zip_last_salient(z, 0, 1, &ns, &nt) == 0 && ns == 120 && nt == n, "salient %d of %d", ns, nt);
        zc_kv_free(z);
    }
    free(k);
    free(v);
    free(q);
    free(out);
    free(ex);
}

/* --kv-int8-query reaches the packed attention: the prompt's attention (no
 * segment yet) is identical, decode over the compressed prompt moves by the
 * integer path's rounding (int8 queries, byte weights; attn_packed.h), no more. */
static void test_int8_query_option(void) {
    zc_kv_shape sh = {1, 4, 2, 32, 1024, NULL}; /* head_dim % 32 == 0: the int8 path applies */
    feeder f;
    feeder_init(&f, sh, 200);
    zc_kv_config cfg = config("zipcache", 4, 2, 0.6f, 50, NULL, 0);
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv-int8-query", "off") == 1, "%s", zc_last_error());
    zc_kv_cache *a = create(&cfg, sh);
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv-int8-query", "on") == 1, "%s", zc_last_error());
    zc_kv_cache *b = create(&cfg, sh);
    double prefill = feed(&f, a, b, 0, 200), decode = 0;
    for (int p = 200; p < 260; p++) {
        double e = feed(&f, a, b, p, 1);
        decode = e > decode ? e : decode;
    }
    TT_CHECK(prefill == 0, "prefill differs by %.3g", prefill);
    TT_CHECK(decode > 0 && decode < 1e-2, "decode with int8 queries differs by %.3g", decode);
    zc_kv_free(a);
    zc_kv_free(b);
    feeder_free(&f);
}

/* A 1000-token prompt then 2000 decode steps: one compression per stream_gap
 * decode tokens, the rest waiting in the window. */
static void test_stream_schedule(void) {
    zc_kv_shape sh = {2, 2, 1, 8, 4096, NULL};
    feeder f;
    feeder_init(&f, sh, 1000);
    static const int gaps[] = {100, 128};
    for (int gi = 0; gi < 2; gi++) {
        int gap = gaps[gi];
        for (int rule = 0; rule < 3; rule++) { /* paper, last row, paper with 4 tokens per call */
            zc_kv_config cfg = config("zipcache", 4, 2, 0.6f, gap, NULL, 0);
            cfg.decode_rule = rule == 1 ? ZC_KV_DECODE_REFERENCE : ZC_KV_DECODE_PAPER;
            zc_kv_cache *z = create(&cfg, sh);
            feed(&f, z, NULL, 0, 1000);
            int step = rule == 2 ? 4 : 1; /* short blocks stream like single tokens */
            for (int p = 1000; p < 3000; p += step) feed(&f, z, NULL, p, step);
            zc_kv_usage u;
            z->ops->usage(z, &u);
            int left = 2000 % gap;
            TT_CHECK(u.n_compressions == 2000 / gap, "gap %d rule %d: %lld compressions, want %d", gap, rule,
                     (long long)u.n_compressions, 2000 / gap);
            /* 2 layers x (K, V) x left tokens x 8 values x 2 bytes */
            TT_CHECK(u.window == (size_t)2 * 2 * left * 8 * 2, "gap %d: window bytes %zu, want %d", gap, u.window,
                     2 * 2 * left * 8 * 2);
            TT_CHECK(u.n_tokens == 3000 && u.elements == 2LL * 3000 * 2 * 8, "tokens %lld", (long long)u.n_tokens);
            zc_kv_free(z);
        }
    }
    feeder_free(&f);
}

/* Exact bytes for a small case, computed by hand:
 * 1 layer, 2 KV heads x head_dim 8, 4/2 bits, r = 0.5, prefill of 10 tokens
 * (5 salient + 5 regular per head), then 3 decode tokens in the window.
 *   params per head (fp16): v_norm 8 + per set (k min+step 2*8, v min+step 2*5) 26 x2 = 60 -> 120 B
 *   codes per head: salient 5 tokens * 8 * (4+4)/8 = 40, regular 5 * 8 * (2+2)/8 = 20 -> 60 B
 *   index per head: ceil(10/8) = 2 B
 *   window: K and V, 3 tokens * 16 values * 2 B = 192 B
 * With key_group 4 each set of 5 has 2 key groups: 8 + 2*(2*2*8 + 10) = 92 halves per head. */
static void test_usage_by_hand(void) {
    zc_kv_shape sh = {1, 2, 2, 8, 64, NULL};
    feeder f;
    feeder_init(&f, sh, 10);
    for (int kg = 0; kg <= 4; kg += 4) {
        zc_kv_cache *z = make("zipcache", sh, 4, 2, 0.5f, 100, NULL, kg);
        feed(&f, z, NULL, 0, 10);
        for (int p = 10; p < 13; p++) feed(&f, z, NULL, p, 1);
        zc_kv_usage u;
        z->ops->usage(z, &u);
        size_t params = 2 * (kg ? 92 : 60) * 2;
        TT_CHECK(u.params == params && u.codes == 120 && u.index == 4 && u.window == 192 && u.other == 0,
                 "kg %d: params %zu (want %zu) codes %zu index %zu window %zu other %zu", kg, u.params, params,
                 u.codes, u.index, u.window, u.other);
        TT_CHECK(u.total == params + 120 + 4 + 192, "total %zu", u.total);
        TT_CHECK(u.elements == 2 * 13 * 16 && u.n_compressions == 0, "elements %lld", (long long)u.elements);
        double want = 16.0 * 2 * 13 * 16 / (8.0 * (double)u.total);
        TT_NEAR(zc_kv_ratio(&u), want, 1e-12);
        zc_kv_free(z);
    }
    feeder_free(&f);
}

static void test_truncate(void) {
    zc_kv_shape sh = {1, 2, 1, 8, 256, NULL};
    feeder f;
    feeder_init(&f, sh, 40);
    zc_kv_cache *z = make("zipcache", sh, 4, 2, 0.6f, 100, NULL, 0);
    TT_CHECK(z->ops->truncate(z, 0) == 0, "reset of a fresh cache");
    feed(&f, z, NULL, 0, 40);
    for (int p = 40; p < 50; p++) feed(&f, z, NULL, p, 1);
    TT_CHECK(z->ops->truncate(z, 30) == ZC_ERR_UNSUPPORTED, "cut into compressed tokens must fail");
    TT_CHECK(z->ops->truncate(z, 45) == 0 && z->n_tokens == 45, "cut inside the window");
    feed(&f, z, NULL, 45, 1);
    TT_CHECK(z->ops->truncate(z, 0) == 0 && z->n_tokens == 0, "reset");
    zc_kv_usage u;
    z->ops->usage(z, &u);
    TT_CHECK(u.total == 0 && u.n_tokens == 0, "empty after reset: %zu bytes", u.total);
    feed(&f, z, NULL, 0, 40); /* reusable after the reset */
    z->ops->usage(z, &u);
    TT_CHECK(u.n_tokens == 40 && u.codes > 0 && u.window == 0, "refill");
    zc_kv_free(z);
    feeder_free(&f);
}

/* First tokens forced salient; target_bits picks the salient count that
 * fills the budget of stored bits, everything counted. */
static void test_sinks_and_target(void) {
    zc_kv_shape sh = {1, 2, 1, 8, 256, NULL};
    feeder f;
    feeder_init(&f, sh, 100);
    zc_kv_config cfg = config("zipcache", 4, 2, 0.0f, 100, NULL, 0);
    cfg.sinks = 4;
    zc_kv_cache *z;
    TT_CHECK(zc_kv_create_zipcache(&cfg, &sh, NULL, &z) == 0, "create");
    feed(&f, z, NULL, 0, 100);
    int ns, nt;
    zc_zip_last_salient(z, 0, 0, &ns, &nt);
    TT_CHECK(ns == 4, "sinks: %d salient", ns);
    zc_kv_free(z);
    cfg.sinks = 0;
    /* 100 tokens x 8 channels x K,V = 1600 elements, 6 bits each = 1200 bytes.
     * fp16 parameters: v_norm 8 + per set K min/step 2x8 + V min/step 2 per
     * token = 8 + 32 + 200 halves = 480 bytes; bitmap 13 bytes; codes 8 bytes
     * per salient token (4+4 bits x 8), 4 per regular: 893 + 4 ns <= 1200. */
    cfg.target_bits = 6.0f;
    TT_CHECK(zc_kv_create_zipcache(&cfg, &sh, NULL, &z) == 0, "create");
    feed(&f, z, NULL, 0, 100);
    zc_zip_last_salient(z, 0, 0, &ns, &nt);
    TT_CHECK(ns == 76, "budget 6 bits: %d salient of 100", ns);
    zc_kv_usage u;
    z->ops->usage(z, &u);
    TT_CHECK(u.codes + u.params + u.index == 1197 && u.window == 0, "bytes %zu + %zu + %zu", u.codes, u.params,
             u.index);
    zc_kv_free(z);
    feeder_free(&f);
}

/* Under a budget the fp16 window's share is bounded (the default window
 * share, 0.2): over a decode after a prompt, the segments' bits average the
 * budget (within 0.05 above, a few tenths below), everything the steps read
 * (the window included) stays within (1 + share) x budget, and the stream
 * gap shortens while the context is short (more compressions than at the
 * fixed gap); with a fixed gap (share 0) the window holds more than the
 * share allows. The means over steps are what `eval ppl` reports. */
static void test_window_share(void) {
    for (int tiled = 0; tiled < 2; tiled++) {
        zc_kv_shape sh = {2, 4, 2, tiled ? 32 : 16, 1024, NULL};
        /* (at head_dim 16 the cheapest plan needs ~3.9 bits: value parameters alone cost 2) */
        const float budgets[3] = {tiled ? 4.0f : 5.0f, tiled ? 4.5f : 5.5f, tiled ? 5.0f : 6.0f};
        for (int b = 0; b < 3; b++)
            for (int bounded = 0; bounded < 2; bounded++) {
                feeder f;
                feeder_init(&f, sh, 555);
                zc_kv_config cfg = budget_config("zipcache", budgets[b]);
                if (!bounded) cfg.window_share = 0;
                zc_kv_cache *z = create(&cfg, sh);
                if (!z) return;
                feed(&f, z, NULL, 0, 255);
                double total = 0, window = 0, elements = 0;
                zc_kv_usage u;
                for (int p = 255; p < 555; p++) {
                    feed(&f, z, NULL, p, 1);
                    z->ops->usage(z, &u);
                    total += 8.0 * (double)u.total, window += 8.0 * (double)u.window;
                    elements += (double)u.elements;
                }
                double all = total / elements, seg = (total - window) / (elements - window / 16.0);
                double share = window / total, B = budgets[b];
                if (getenv("ZC_TEST_VERBOSE"))
                    printf("  head_dim %d budget %g share %s: %.3f bits in all, segments %.3f, window %.1f%%, "
                           "%lld compressions\n", sh.head_dim, B, bounded ? "0.2" : "0 (fixed gap)", all, seg,
                           100 * share, (long long)u.n_compressions);
                TT_CHECK(seg <= B + 0.05 && seg >= B - 0.35, "head_dim %d budget %g: segments hold %.3f bits",
                         sh.head_dim, B, seg);
                if (bounded)
                    TT_CHECK(all <= B * 1.2 + 0.05 && share <= 0.2 + 0.01 && u.n_compressions > 3,
                             "head_dim %d budget %g: %.3f bits in all, window %.1f%%, %lld compressions",
                             sh.head_dim, B, all, 100 * share, (long long)u.n_compressions);
                else
                    TT_CHECK(share > 0.25 && u.n_compressions == 3,
                             "head_dim %d budget %g, fixed gap: window %.1f%%, %lld compressions", sh.head_dim, B,
                             100 * share, (long long)u.n_compressions);
                zc_kv_free(z);
                feeder_free(&f);
            }
    }
}

/* --kv-plan error (the default) against fraction on the same random keys,
 * values and queries (one key channel scaled up, as real keys have outlier
 * channels): over decode steps after a prompt, the mean squared attention
 * output error against the fp16 cache is no larger (2% slack) at every
 * budget, and smaller in total. */
static void test_plan_by_error(void) {
    double total[2] = {0, 0};
    for (int tiled = 0; tiled < 2; tiled++) {
        zc_kv_shape sh = {1, 4, 2, tiled ? 32 : 16, 512, NULL};
        size_t kd = (size_t)sh.n_kv_heads * sh.head_dim, qd = (size_t)sh.n_heads * sh.head_dim;
        const float budgets[2] = {tiled ? 4.0f : 5.0f, tiled ? 4.5f : 6.0f};
        for (int b = 0; b < 2; b++) {
            zc_kv_cache *c[3];
            for (int r = 0; r < 3; r++) {
                zc_kv_config cfg = budget_config(r == 0 ? "fp16" : "zipcache", budgets[b]);
                cfg.plan_rule = r == 1 ? ZC_ZIP_PLAN_ERROR : ZC_ZIP_PLAN_FRACTION;
                c[r] = create(&cfg, sh);
                if (!c[r]) return;
            }
            float *k = malloc(300 * kd * 4), *v = malloc(300 * kd * 4), *q = malloc(300 * qd * 4),
                  *o = malloc(300 * qd * 4 * 3);
            fill(k, 300 * kd, 1.0f);
            fill(v, 300 * kd, 1.0f);
            fill(q, 300 * qd, 2.0f);
            for (int t = 0; t < 300; t++) k[(size_t)t * kd + 3] *= 8.0f; /* an outlier channel */
            double mse[2] = {0, 0};
            for (int pos = 0; pos < 300;) {
                int n = pos == 0 ? 200 : 1;
                for (int r = 0; r < 3; r++) {
                    int rc = c[r]->ops->write(c[r], 0, pos, n, k + (size_t)pos * kd, v + (size_t)pos * kd);
                    rc = rc ? rc : c[r]->ops->attend(c[r], 0, pos, n, q + (size_t)pos * qd, o + (size_t)r * 300 * qd);
                    TT_CHECK(rc == 0, "%s", zc_last_error());
                }
                for (int r = 1; r < 3 && pos > 0; r++)
                    for (size_t i = 0; i < qd; i++) {
                        double e = (double)o[(size_t)r * 300 * qd + i] - o[i];
                        mse[r - 1] += e * e;
                    }
                pos += n;
            }
            if (getenv("ZC_TEST_VERBOSE"))
                printf("  head_dim %d budget %g: output mse by error %.4g, by fraction %.4g\n", sh.head_dim,
                       (double)budgets[b], mse[0], mse[1]);
            TT_CHECK(mse[0] <= 1.02 * mse[1], "head_dim %d budget %g: the error rule's output mse %.4g > %.4g",
                     sh.head_dim, (double)budgets[b], mse[0], mse[1]);
            total[0] += mse[0], total[1] += mse[1];
            for (int r = 0; r < 3; r++) zc_kv_free(c[r]);
            free(k), free(v), free(q), free(o);
        }
    }
    TT_CHECK(total[0] < total[1], "the error rule gains nothing: %.4g vs %.4g", total[0], total[1]);
}

/* Widths left to the policy (all 0, the default), a fixed stream gap
 * (--kv-window-share 0): every segment fills the
 * budget of stored bits per element (codes + parameters + index) to within
 * a few hundredths of a bit, never above it; dearer budgets get wider keys;
 * on shapes the integer path serves (head_dim % 32 == 0) only 2- and 4-bit
 * widths are chosen, so every set stays tiled. Given widths are kept. */
static void test_budget_plans(void) {
    for (int tiled = 0; tiled < 2; tiled++) {
        zc_kv_shape sh = {2, 4, 2, tiled ? 32 : 16, 1024, NULL};
        int key_bits[3] = {0};
        /* (the dearest tiled plan, 4-bit K and V in key groups, stores ~5.2 bits at head_dim 32) */
        const float budgets[3] = {tiled ? 3.5f : 4.0f, 4.5f, tiled ? 5.0f : 6.0f};
        for (int b = 0; b < 3; b++) {
            feeder f;
            feeder_init(&f, sh, 200);
            zc_kv_config cfg = budget_config("zipcache", budgets[b]);
            cfg.window_share = 0;
            cfg.plan_rule = ZC_ZIP_PLAN_FRACTION; /* (the error rule may leave bits unused: test_plan_by_error) */
            zc_kv_cache *z = create(&cfg, sh);
            if (!z) return;
            feed(&f, z, NULL, 0, 200);
            for (int p = 200; p < 300; p++) feed(&f, z, NULL, p, 1);
            zc_kv_usage u;
            z->ops->usage(z, &u);
            double bits = 8.0 * (double)(u.codes + u.params + u.index) / (double)u.elements;
            TT_CHECK(u.window == 0 && u.n_compressions == 1, "window %zu compressions %lld", u.window,
                     (long long)u.n_compressions);
            TT_CHECK(bits <= budgets[b] && bits >= budgets[b] - 0.05, "head_dim %d budget %g: %.4f bits stored",
                     sh.head_dim, (double)budgets[b], bits);
            for (int l = 0; l < sh.n_layers; l++) {
                zc_zip_plan p;
                TT_CHECK(zc_zip_last_plan(z, l, &p) == ZC_OK, "%s", zc_last_error());
                key_bits[b] += p.kb[0] + p.kb[1];
                for (int st = 0; st < 2 && tiled; st++)
                    TT_CHECK(zc_tiled_ok(sh.head_dim, p.kb[st]) && zc_tiled_ok(sh.head_dim, p.vb[st]),
                             "budget %g: set %d K %d V %d bits is not tiled", (double)budgets[b], st, p.kb[st],
                             p.vb[st]);
            }
            zc_kv_free(z);
            feeder_free(&f);
        }
        TT_CHECK(key_bits[0] <= key_bits[1] && key_bits[1] <= key_bits[2] && key_bits[0] < key_bits[2],
                 "head_dim %d: key bits %d, %d, %d as the budget grows", sh.head_dim, key_bits[0], key_bits[1],
                 key_bits[2]);
    }
    zc_kv_shape sh = {1, 2, 1, 16, 256, NULL};
    feeder f;
    feeder_init(&f, sh, 100);
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    strcpy(cfg.policy, "zipcache");
    cfg.target_bits = 2.0f; /* below every plan at head_dim 16: the cheapest, no salient token */
    zc_kv_cache *z = create(&cfg, sh);
    zc_zip_plan p;
    int ns, nt;
    feed(&f, z, NULL, 0, 100);
    TT_CHECK(zc_zip_last_plan(z, 0, &p) == ZC_OK && p.kb[0] == 3 && p.kb[1] == 3 && p.vb[0] == 2 && p.vb[1] == 2 &&
                 zc_zip_last_salient(z, 0, 0, &ns, &nt) == ZC_OK && ns == 0,
             "budget 2: K %d/%d V %d/%d, %d salient", p.kb[0], p.kb[1], p.vb[0], p.vb[1], ns);
    zc_kv_free(z);
    cfg.k_lo_bits = 3; /* the others: the paper's 4/2 */
    cfg.target_bits = 5.0f;
    z = create(&cfg, sh);
    feed(&f, z, NULL, 0, 100);
    TT_CHECK(zc_zip_last_plan(z, 0, &p) == ZC_OK && p.kb[0] == 4 && p.kb[1] == 3 && p.vb[0] == 4 && p.vb[1] == 2 &&
                 p.kg == 0,
             "given widths: K %d/%d V %d/%d group %d", p.kb[0], p.kb[1], p.vb[0], p.vb[1], p.kg);
    zc_kv_free(z);
    feeder_free(&f);
}

/* A pool of two threads changes the work split of every kernel (decode
 * chunks, probe column chunks), never the result beyond rounding, and never
 * the saliency decisions or the bytes. The fp32 path agrees within float
 * rounding; the integer path rounds each tile's P.V weights to bytes against
 * the chunk's running maximum, which the split moves, so it agrees within
 * that rounding (attn_packed.h). */
static void threads_agree(int int8, double tol) {
    zc_kv_shape sh = {2, 8, 2, 32, 1024, NULL};
    feeder f;
    feeder_init(&f, sh, 400);
    float *o[2];
    zc_kv_usage u[2];
    size_t qd = (size_t)sh.n_heads * sh.head_dim;
    for (int t = 0; t < 2; t++) {
        g_pool = t ? zc_pool_create(2) : NULL;
        zc_kv_config cfg = config("zipcache", 4, 2, 0.6f, 64, NULL, 0);
        cfg.int8_query = int8;
        zc_kv_cache *z = create(&cfg, sh);
        unsigned long long s0 = g_seed;
        feed(&f, z, NULL, 0, 400);
        for (int p = 400; p < 530; p++) feed(&f, z, NULL, p, 1);
        o[t] = malloc(qd * sizeof(float));
        memcpy(o[t], f.o1, qd * sizeof(float)); /* the last decode step's output (last layer) */
        z->ops->usage(z, &u[t]);
        zc_kv_free(z);
        zc_pool_destroy(g_pool);
        g_pool = NULL;
        if (!t) g_seed = s0;
    }
    double worst = 0;
    for (size_t i = 0; i < qd; i++) worst = fmax(worst, fabs(o[0][i] - o[1][i]) / (1 + fabs(o[0][i])));
    TT_CHECK(worst <= tol, "int8 %d: threaded decode output differs by %.3g", int8, worst);
    TT_CHECK(u[0].total == u[1].total && u[0].n_compressions == u[1].n_compressions && u[0].n_compressions == 2,
             "bytes %zu vs %zu, compressions %lld vs %lld", u[0].total, u[1].total, (long long)u[0].n_compressions,
             (long long)u[1].n_compressions);
    free(o[0]);
    free(o[1]);
    feeder_free(&f);
}

static void test_threads_agree(void) {
    threads_agree(0, 1e-5);
    threads_agree(1, 5e-3);
}

/* A random schedule of prompt chunks (after decode leftovers, so a block's
 * window holds older tokens too), decode runs and cuts inside the window, fed
 * to zipcache at 8/8 bits and to fp16 alike: outputs stay close at every
 * step, token counts agree, every compressed or windowed token is counted. */
static void test_random_schedule(void) {
    zc_kv_shape sh = {2, 4, 2, 16, 4096, NULL};
    feeder f;
    feeder_init(&f, sh, 200);
    zc_kv_cache *z = make("zipcache", sh, 8, 8, 0.5f, 37, NULL, 8), *h = make("fp16", sh, 4, 2, 0.6f, 37, NULL, 0);
    unsigned long long rs = 0x5eed;
    int pos = 0;
    double worst = 0;
    for (int step = 0; step < 60 && pos < 3500; step++) {
        int kind = (int)(tt_rand_u64(&rs) % 3);
        if (kind == 0) { /* a prompt chunk of 2..200 tokens */
            int n = 2 + (int)(tt_rand_u64(&rs) % 199);
            worst = fmax(worst, feed(&f, z, h, pos, n));
            pos += n;
        } else if (kind == 1) { /* a decode run */
            int n = 1 + (int)(tt_rand_u64(&rs) % 60);
            for (int i = 0; i < n; i++, pos++) worst = fmax(worst, feed(&f, z, h, pos, 1));
        } else { /* cut a few window tokens, where the window has them */
            int cut = pos - (int)(tt_rand_u64(&rs) % 5);
            if (z->ops->truncate(z, cut) == 0) {
                TT_CHECK(h->ops->truncate(h, cut) == 0, "fp16 truncate");
                pos = cut;
            }
        }
        TT_CHECK(z->n_tokens == pos && h->n_tokens == pos, "tokens %d / %d, want %d", z->n_tokens, h->n_tokens, pos);
    }
    zc_kv_usage u;
    z->ops->usage(z, &u);
    TT_CHECK(u.n_tokens == pos && u.total == u.codes + u.params + u.window + u.index + u.other,
             "usage tokens %lld of %d", (long long)u.n_tokens, pos);
    printf("  random schedule: %d tokens, worst |diff| vs fp16 %.3g, %.2fx\n", pos, worst, zc_kv_ratio(&u));
    TT_CHECK(worst <= 5e-3, "8-bit zipcache drifts %.3g from fp16", worst);
    zc_kv_free(z);
    zc_kv_free(h);
    feeder_free(&f);
}

int main(void) {
    TT_RUN(test_8bit_matches_fp16);
    TT_RUN(test_probe_scores);
    TT_RUN(test_stream_schedule);
    TT_RUN(test_int8_query_option);
    TT_RUN(test_usage_by_hand);
    TT_RUN(test_truncate);
    TT_RUN(test_sinks_and_target);
    TT_RUN(test_budget_plans);
    TT_RUN(test_window_share);
    TT_RUN(test_plan_by_error);
    TT_RUN(test_threads_agree);
    TT_RUN(test_random_schedule);
    return tt_finish();
}
