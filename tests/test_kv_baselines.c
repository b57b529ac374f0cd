/* The baseline KV policies driven through kv.h with random K/V/Q:
 *   q8_0 / q4_0  stored blocks bit-exact with zc_quantize_row; attention equal
 *                to the double reference on the dequantized cache (with the
 *                query quantized to q8_0 as the integer kernel does: tight;
 *                with the exact query: loose); AVX2 vs scalar kernels; usage.
 *   kivi         the fp16 residual window, quantized groups as tokens stream in,
 *                attention against a reference built from the stored formats.
 *   h2o          the budget, the recent window, heavy hitters on a hand-made
 *                case, attention over exactly the kept tokens.
 */
#include "tt.h"

#include "attn/attn.h"
#include "kv/kv.h"
#include "kv/kv_blocks.h"
#include "kv/zipcache_internal.h"
#include "quant/ggml_blocks.h"
#include "quant/kvquant.h"
#include "util/cpu.h"
#include "util/fp16.h"
#include "util/threads.h"
#include "zipcache.h"

#include "kv_test_util.h"

/* ---- helpers --------------------------------------------------------------- */

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= w)) w = e; /* NaN sticks */
    }
    return w;
}

/* Write all layers' tokens [pos, pos+n) and attend them, output [n_layers][n][q_dim]. */
static int step(zc_kv_cache *c, const data *d, int pos, int n, float *out) {
    for (int l = 0; l < d->s.n_layers; l++) {
        int rc = c->ops->write(c, l, pos, n, rows_of(d, d->k, l, pos, d->kv_dim), rows_of(d, d->v, l, pos, d->kv_dim));
        if (rc == ZC_OK)
            rc = c->ops->attend(c, l, pos, n, rows_of(d, d->q, l, pos, d->q_dim), out + (size_t)l * n * d->q_dim);
        if (rc) return rc;
    }
    return ZC_OK;
}

/* ---- q8_0 / q4_0 -------------------------------------------------------------- */

/* Scaled query quantized to q8_0 and back, then unscaled: the query the
 * integer kernel effectively uses. */
static void q8_query(const float *q, float *out, int n_rows, int hd) {
    float scale = 1.0f / sqrtf((float)hd);
    zc_block_q8_0 b[8];
    float row[256];
    for (int r = 0; r < n_rows; r++) {
        for (int e = 0; e < hd; e++) row[e] = q[(size_t)r * hd + e] * scale;
        zc_quantize_row(ZC_TYPE_Q8_0, row, b, hd);
        zc_dequantize_row(ZC_TYPE_Q8_0, b, row, hd);
        for (int e = 0; e < hd; e++) out[(size_t)r * hd + e] = row[e] / scale;
    }
}

/* Chunks of a prefill-sized block and single decode tokens: the stored rows
 * are the blocks zc_quantize_row makes, attention matches the reference on
 * the dequantized cache. */
static void check_blocks(const char *policy, int type, zc_pool *pool) {
    const int n_layers = 2, nh = 8, nkv = 2, hd = 64;
    data d = make_data(n_layers, nh, nkv, hd, 90, 7);
    zc_kv_cache *c = create(policy, &d.s, pool);
    if (!c) return;
    zc_attn_dims ad = {nh, nkv, hd};
    const zc_type_info *ti = zc_type_get(type);
    size_t row_bytes = (size_t)d.kv_dim / 32 * ti->block_bytes;
    uint8_t *expect = malloc(row_bytes * d.n);
    float *kd = malloc((size_t)d.n * d.kv_dim * sizeof(float)), *vd = malloc((size_t)d.n * d.kv_dim * sizeof(float));
    size_t qn = (size_t)d.n * d.q_dim;
    float *out = malloc(n_layers * qn * sizeof(float)), *ref = malloc(qn * sizeof(float));
    float *qq = malloc(qn * sizeof(float));
    const int chunks[] = {40, 1, 1, 17, 1, 30}; /* 40 > ZC_ATTN_BQ: the prefill split; 1: decode */
    double tight = 0, loose = 0;
    int pos = 0, bad_bytes = 0;
    for (int ci = 0; ci < 6; ci++) {
        int n = chunks[ci];
        TT_CHECK(step(c, &d, pos, n, out) == ZC_OK, "%s", zc_last_error());
        for (int l = 0; l < n_layers; l++) {
            const uint8_t *ks, *vs;
            size_t rb;
            TT_CHECK(zc_kv_blocks_rows(c, l, &ks, &vs, &rb) == ZC_OK && rb == row_bytes, "rows");
            zc_quantize_row(type, rows_of(&d, d.k, l, 0, d.kv_dim), expect, (int64_t)(pos + n) * d.kv_dim);
            bad_bytes += memcmp(expect, ks, row_bytes * (pos + n)) != 0;
            zc_quantize_row(type, rows_of(&d, d.v, l, 0, d.kv_dim), expect, (int64_t)(pos + n) * d.kv_dim);
            bad_bytes += memcmp(expect, vs, row_bytes * (pos + n)) != 0;
            zc_dequantize_row(type, ks, kd, (int64_t)(pos + n) * d.kv_dim);
            zc_dequantize_row(type, vs, vd, (int64_t)(pos + n) * d.kv_dim);
            const float *q = rows_of(&d, d.q, l, pos, d.q_dim);
            const float *o = out + (size_t)l * n * d.q_dim;
            q8_query(q, qq, n * nh, hd);
            zc_attn_reference(&ad, qq, n, pos, kd, vd, ZC_TYPE_F32, d.kv_dim, pos + n, ref, NULL);
            double e = max_abs_diff(o, ref, (size_t)n * d.q_dim);
            if (e > tight) tight = e;
            zc_attn_reference(&ad, q, n, pos, kd, vd, ZC_TYPE_F32, d.kv_dim, pos + n, ref, NULL);
            e = max_abs_diff(o, ref, (size_t)n * d.q_dim);
            if (e > loose) loose = e;
        }
        pos += n;
    }
    fprintf(stderr, "  %s: max |out - ref| %.3g (q8_0 query), %.3g (exact query)\n", policy, tight, loose);
    /* fp32 online softmax vs double: a few ulp of |v| <= 1 */
    TT_CHECK(tight < 2e-6, "%s: vs reference with the q8_0 query: %g", policy, tight);
    /* q8_0 query rounding: |dq| <= amax/254 per element shifts scores by ~1e-2 */
    TT_CHECK(loose < 2e-2, "%s: vs reference with the exact query: %g", policy, loose);
    TT_CHECK(bad_bytes == 0, "%s: %d layers' stored rows differ from zc_quantize_row", policy, bad_bytes);

    zc_kv_usage u;
    c->ops->usage(c, &u);
    size_t blocks = 2 * (size_t)n_layers * pos * nkv * (hd / 32);
    TT_CHECK(u.total == blocks * ti->block_bytes && u.params == blocks * 2 && u.codes == blocks * (ti->block_bytes - 2),
             "%s usage total %zu codes %zu params %zu, want %zu blocks of %d", policy, u.total, u.codes, u.params,
             blocks, ti->block_bytes);
    TT_CHECK(u.n_tokens == pos && u.elements == 2LL * n_layers * pos * d.kv_dim, "tokens %lld", (long long)u.n_tokens);
    double bits = zc_kv_bits_per_element(&u);
    TT_CHECK(fabs(bits - (type == ZC_TYPE_Q8_0 ? 8.5 : 4.5)) < 1e-12, "%s: %g bits per element", policy, bits);

    /* truncate to 0 and write again: same as a fresh cache */
    TT_CHECK(c->ops->truncate(c, 0) == ZC_OK, "%s", zc_last_error());
    c->ops->usage(c, &u);
    TT_CHECK(u.total == 0 && u.n_tokens == 0, "after truncate: %zu bytes", u.total);
    float *again = malloc(n_layers * (size_t)40 * d.q_dim * sizeof(float));
    zc_kv_cache *fresh = create(policy, &d.s, pool);
    TT_CHECK(step(c, &d, 0, 40, out) == ZC_OK && fresh && step(fresh, &d, 0, 40, again) == ZC_OK, "rewrite");
    TT_CHECK(!memcmp(out, again, n_layers * (size_t)40 * d.q_dim * sizeof(float)), "rewrite differs");
    zc_kv_free(fresh);
    free(again);
    zc_kv_free(c);
    free(expect), free(kd), free(vd), free(out), free(ref), free(qq);
    free_data(&d);
}

static void test_q8_0(void) { check_blocks("q8_0", ZC_TYPE_Q8_0, NULL); }
static void test_q4_0(void) { check_blocks("q4_0", ZC_TYPE_Q4_0, NULL); }

static void test_blocks_threads(void) {
    zc_pool *pool = zc_pool_create(3);
    check_blocks("q8_0", ZC_TYPE_Q8_0, pool);
    check_blocks("q4_0", ZC_TYPE_Q4_0, pool);
    zc_pool_destroy(pool);
}

/* Kernel level: key unpacking, scores and dequantization bit-identical,
 * softmax update within a few ulp (exp polynomial). */
static void test_blocks_avx2_vs_scalar(void) {
    zc_cpu_set_simd(-1);
    if (!zc_cpu_has_avx2()) TT_SKIP("AVX2 unavailable or disabled (ZIPCACHE_NO_SIMD)");
    unsigned long long seed = 99;
    enum { HD = 128, NB = HD / 32, N = 61 }; /* 61: seven groups of 8 keys and a tail */
    static float x[N * HD], vt[N * HD], dk0[NB * ZC_ATTN_BK], dk1[NB * ZC_ATTN_BK];
    static int8_t kc0[N * HD], kc1[N * HD];
    static uint8_t kb[N * NB * 34];
    float q[HD], s0[64], s1[64], acc0[HD], acc1[HD];
    zc_block_q8_0 qx[NB];
    for (int i = 0; i < HD; i++) q[i] = tt_randf(&seed);
    zc_quantize_row(ZC_TYPE_Q8_0, q, qx, HD);
    for (int t = 0; t < 2; t++) {
        int type = t ? ZC_TYPE_Q4_0 : ZC_TYPE_Q8_0;
        const char *name = zc_type_get(type)->name;
        size_t rb = (size_t)NB * zc_type_get(type)->block_bytes;
        for (int i = 0; i < N * HD; i++) x[i] = 3 * tt_randf(&seed);
        zc_quantize_row(type, x, kb, N * HD);
        zc_kvb_scalar.unpack_keys(type, kb, rb, N, NB, kc0, dk0);
        zc_kvb_avx2.unpack_keys(type, kb, rb, N, NB, kc1, dk1);
        TT_CHECK(!memcmp(kc0, kc1, sizeof kc0), "%s key codes differ", name);
        int dk_same = 1;
        for (int b = 0; b < NB; b++) dk_same &= !memcmp(dk0 + b * ZC_ATTN_BK, dk1 + b * ZC_ATTN_BK, N * sizeof(float));
        TT_CHECK(dk_same, "%s key scales differ", name);
        zc_kvb_scalar.scores(qx, kc0, dk0, N, NB, s0);
        zc_kvb_avx2.scores(qx, kc0, dk0, N, NB, s1);
        TT_CHECK(!memcmp(s0, s1, sizeof(float) * N), "%s scores differ", name);
        /* the scores are the dot products of the dequantized rows (up to float rounding) */
        zc_dequantize_row(type, kb, x, N * HD);
        float qd[HD];
        zc_dequantize_row(ZC_TYPE_Q8_0, qx, qd, HD);
        for (int j = 0; j < N; j++) {
            double dot = 0;
            for (int e = 0; e < HD; e++) dot += (double)qd[e] * x[j * HD + e];
            TT_NEAR(s0[j], dot, 1e-5);
        }
        zc_kvb_scalar.dequant(type, kb, rb, N, NB, x);
        zc_kvb_avx2.dequant(type, kb, rb, N, NB, vt);
        TT_CHECK(!memcmp(x, vt, sizeof(float) * N * HD), "%s dequant differs", name);
        float m0 = 0.5f, l0 = 2.0f, m1 = m0, l1 = l0;
        for (int e = 0; e < HD; e++) acc0[e] = acc1[e] = tt_randf(&seed);
        zc_kvb_scalar.update(s0, N, vt, HD, &m0, &l0, acc0);
        zc_kvb_avx2.update(s1, N, vt, HD, &m1, &l1, acc1);
        TT_CHECK(m0 == m1, "max %g vs %g", m0, m1);
        TT_NEAR(l1, l0, 1e-6);
        TT_CHECK(max_abs_diff(acc0, acc1, HD) < 1e-5 * l0, "acc differs by %g", max_abs_diff(acc0, acc1, HD));
    }
}

/* The whole policy, scalar vs AVX2: outputs within float rounding. */
static void test_blocks_simd_end_to_end(void) {
    zc_cpu_set_simd(-1);
    if (!zc_cpu_has_avx2()) TT_SKIP("AVX2 unavailable or disabled (ZIPCACHE_NO_SIMD)");
    data d = make_data(1, 8, 2, 64, 70, 5);
    size_t qn = (size_t)d.n * d.q_dim;
    float *o[2] = {malloc(qn * sizeof(float)), malloc(qn * sizeof(float))};
    for (int simd = 0; simd < 2; simd++) {
        zc_cpu_set_simd(simd);
        zc_kv_cache *c = create("q4_0", &d.s, NULL);
        if (!c) break;
        TT_CHECK(step(c, &d, 0, 50, o[simd]) == ZC_OK, "%s", zc_last_error());
        for (int p = 50; p < d.n; p++)
            TT_CHECK(step(c, &d, p, 1, o[simd] + (size_t)p * d.q_dim) == ZC_OK, "%s", zc_last_error());
        zc_kv_free(c);
    }
    zc_cpu_set_simd(-1);
    double e = max_abs_diff(o[0], o[1], qn);
    TT_CHECK(e < 1e-5, "scalar vs avx2: %g", e);
    free(o[0]), free(o[1]);
    free_data(&d);
}

static void test_blocks_refuse_head_dim(void) {
    zc_kv_shape s = {1, 8, 4, 8, 64, NULL}; /* stories260K: head_dim 8 */
    const char *names[] = {"q8_0", "q4_0"};
    for (int i = 0; i < 2; i++) {
        zc_kv_config cfg;
        zc_kv_config_default(&cfg);
        snprintf(cfg.policy, sizeof cfg.policy, "%s", names[i]);
        zc_kv_cache *c = NULL;
        int rc = zc_kv_create(&cfg, &s, NULL, &c);
        TT_CHECK(rc == ZC_ERR_UNSUPPORTED && !c, "%s: rc %d", names[i], rc);
        TT_CHECK(strstr(zc_last_error(), names[i]) && strstr(zc_last_error(), "head_dim 8"), "message: %s",
                 zc_last_error());
    }
}

/* ---- h2o -------------------------------------------------------------------- */

/* An independent model of H2O in double: per KV head a kept flag and an
 * accumulated score per position, softmax rows over exactly the kept
 * positions, the documented budget / recent / sink / tie rules. */
typedef struct {
    const data *d;
    double ratio;
    int sinks;
    char *kept;    /* [n_kv][n] */
    double *score; /* [n_kv][n] */
} h2o_ref;

static int ref_budget(double ratio, int n_seen) {
    int b = (int)floor(round(ratio * 1e6) / 1e6 * n_seen + 1e-9);
    return b < 1 ? 1 : b;
}

static double f16r(float x) { return zc_fp16_to_f32(zc_f32_to_fp16(x)); }

/* Block [pos, pos+n) of layer 0: out [n][q_dim], then evict. */
static void h2o_ref_step(h2o_ref *r, int pos, int n, float *out) {
    const data *d = r->d;
    int nh = d->s.n_heads, nkv = d->s.n_kv_heads, hd = d->s.head_dim, G = nh / nkv, N = d->n;
    double *p = malloc((size_t)N * sizeof(double));
    for (int g = 0; g < nkv; g++)
        for (int t = pos; t < pos + n; t++) r->kept[g * N + t] = 1, r->score[g * N + t] = 0;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < nh; h++) {
            int g = h / G;
            const float *q = rows_of(d, d->q, 0, pos + i, d->q_dim) + h * hd;
            double mx = -INFINITY, sum = 0;
            for (int t = 0; t <= pos + i; t++) {
                if (!r->kept[g * N + t]) continue;
                const float *k = rows_of(d, d->k, 0, t, d->kv_dim) + g * hd;
                double dot = 0;
                for (int e = 0; e < hd; e++) dot += (double)q[e] * f16r(k[e]);
                p[t] = dot / sqrt((double)hd);
                if (p[t] > mx) mx = p[t];
            }
            for (int t = 0; t <= pos + i; t++)
                if (r->kept[g * N + t]) sum += (p[t] = exp(p[t] - mx));
            for (int e = 0; e < hd; e++) {
                double o = 0;
                for (int t = 0; t <= pos + i; t++)
                    if (r->kept[g * N + t]) o += p[t] * f16r(rows_of(d, d->v, 0, t, d->kv_dim)[g * hd + e]);
                out[(size_t)i * d->q_dim + h * hd + e] = (float)(o / sum);
            }
            for (int t = 0; t <= pos + i; t++)
                if (r->kept[g * N + t]) r->score[g * N + t] += p[t] / sum;
        }
    int n_seen = pos + n, budget = ref_budget(r->ratio, n_seen);
    int recent = budget / 2, heavy = budget - recent, sinks = r->sinks < heavy ? r->sinks : heavy;
    for (int g = 0; g < nkv; g++) {
        int held = 0;
        for (int t = 0; t < n_seen; t++) held += r->kept[g * N + t];
        for (; held > budget; held--) { /* drop the lowest score, older first on ties */
            int worst = -1;
            for (int t = sinks; t < n_seen - recent; t++)
                if (r->kept[g * N + t] && (worst < 0 || r->score[g * N + t] < r->score[g * N + worst])) worst = t;
            r->kept[g * N + worst] = 0;
        }
    }
    free(p);
}

/* Prefill block then decode steps: outputs equal the model's at every step
 * (so exactly its tokens are kept), slots never above the budget. */
static void check_h2o(double ratio, int sinks, zc_pool *pool) {
    data d = make_data(1, 4, 2, 16, 75, 11);
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    strcpy(cfg.policy, "h2o");
    cfg.budget_ratio = (float)ratio;
    cfg.sinks = sinks;
    zc_kv_cache *c = create_cfg(&cfg, &d.s, pool);
    if (!c) return;
    h2o_ref r = {&d, ratio, sinks, calloc((size_t)2 * d.n, 1), calloc((size_t)2 * d.n, sizeof(double))};
    float *out = malloc((size_t)d.n * d.q_dim * sizeof(float)), *ref = malloc((size_t)d.n * d.q_dim * sizeof(float));
    double worst = 0;
    int pos = 0, over = 0;
    while (pos < d.n) {
        int n = pos == 0 ? 40 : pos < 60 ? 1 : 5; /* a prompt block, decode steps, a second block */
        if (n > d.n - pos) n = d.n - pos;
        TT_CHECK(step(c, &d, pos, n, out) == ZC_OK, "%s", zc_last_error());
        h2o_ref_step(&r, pos, n, ref);
        double e = max_abs_diff(out, ref, (size_t)n * d.q_dim);
        if (e > worst) worst = e;
        pos += n;
        zc_kv_usage u;
        c->ops->usage(c, &u);
        size_t slots = u.codes / (2 * (size_t)d.kv_dim * sizeof(zc_fp16));
        int budget = ref_budget(ratio, pos);
        over += slots != (size_t)(pos < budget ? pos : budget);
        /* hand computation: fp16 K+V of the kept slots, int32 position and float score per (slot, KV head) */
        TT_CHECK(u.codes == slots * 2 * d.kv_dim * 2 && u.index == slots * 2 * 4 && u.other == slots * 2 * 4 &&
                 u.total == u.codes + u.index + u.other && u.n_tokens == pos && u.elements == 2LL * pos * d.kv_dim,
                 "usage at %d: codes %zu index %zu other %zu", pos, u.codes, u.index, u.other);
    }
    TT_CHECK(over == 0, "%d steps held a slot count other than the budget", over);
    TT_CHECK(worst < 1e-5, "ratio %g sinks %d: max |out - model| %g", ratio, sinks, worst);
    zc_kv_free(c);
    free(r.kept), free(r.score), free(out), free(ref);
    free_data(&d);
}

static void test_h2o_matches_model(void) {
    check_h2o(0.2, 0, NULL);
    check_h2o(0.3, 2, NULL);
    zc_pool *pool = zc_pool_create(2);
    check_h2o(0.25, 1, pool);
    zc_pool_destroy(pool);
}

/* Hand-made heavy hitters: every query points along u, and only tokens 3 and
 * 11 have keys along u. With 40 tokens and ratio 0.1 the budget is 4: the two
 * most recent (38, 39) plus the two heavy hitters. A zero query then attends
 * uniformly to whatever is kept: its output is the mean of the kept values. */
static void test_h2o_heavy_hitters(void) {
    enum { HD = 16, N = 41 };
    zc_kv_shape s = {1, 2, 1, HD, 64, NULL};
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    strcpy(cfg.policy, "h2o");
    cfg.budget_ratio = 0.1f;
    zc_kv_cache *c = create_cfg(&cfg, &s, NULL);
    if (!c) return;
    unsigned long long seed = 3;
    static float k[N * HD], v[N * HD], q[N * 2 * HD], out[N * 2 * HD];
    for (int t = 0; t < N; t++)
        for (int e = 0; e < HD; e++) {
            k[t * HD + e] = (t == 3 || t == 11) && e == 0 ? 8.0f : 0.05f * tt_randf(&seed);
            v[t * HD + e] = tt_randf(&seed);
            q[t * 2 * HD + e] = q[t * 2 * HD + HD + e] = e == 0 ? 4.0f : 0.0f;
        }
    memset(q + 40 * 2 * HD, 0, 2 * HD * sizeof(float)); /* the probe query at position 40 */
    TT_CHECK(c->ops->write(c, 0, 0, 40, k, v) == ZC_OK && c->ops->attend(c, 0, 0, 40, q, out) == ZC_OK, "%s",
             zc_last_error());
    zc_kv_usage u;
    c->ops->usage(c, &u);
    TT_CHECK(u.codes == 4 * 2 * HD * 2, "kept %zu bytes of K/V, want 4 tokens", u.codes);
    TT_CHECK(c->ops->write(c, 0, 40, 1, k + 40 * HD, v + 40 * HD) == ZC_OK &&
                 c->ops->attend(c, 0, 40, 1, q + 40 * 2 * HD, out) == ZC_OK,
             "%s", zc_last_error());
    const int expect[] = {3, 11, 38, 39, 40};
    for (int e = 0; e < HD; e++) {
        double mean = 0;
        for (int i = 0; i < 5; i++) mean += f16r(v[expect[i] * HD + e]) / 5;
        TT_NEAR(out[e], mean, 1e-5);
        TT_NEAR(out[HD + e], mean, 1e-5);
    }
    /* with one sink, position 0 takes a heavy place instead of the weaker hitter */
    zc_kv_free(c);
    cfg.sinks = 1;
    c = create_cfg(&cfg, &s, NULL);
    if (!c) return;
    k[11 * HD] = 7.0f; /* token 11 now a little lighter than 3 */
    TT_CHECK(c->ops->write(c, 0, 0, 40, k, v) == ZC_OK && c->ops->attend(c, 0, 0, 40, q, out) == ZC_OK &&
                 c->ops->write(c, 0, 40, 1, k + 40 * HD, v + 40 * HD) == ZC_OK &&
                 c->ops->attend(c, 0, 40, 1, q + 40 * 2 * HD, out) == ZC_OK,
             "%s", zc_last_error());
    const int expect_sink[] = {0, 3, 38, 39, 40};
    for (int e = 0; e < HD; e++) {
        double mean = 0;
        for (int i = 0; i < 5; i++) mean += f16r(v[expect_sink[i] * HD + e]) / 5;
        TT_NEAR(out[e], mean, 1e-5);
    }
    zc_kv_free(c);
}

static void test_h2o_truncate_and_misuse(void) {
    data d = make_data(2, 4, 2, 16, 30, 17);
    zc_kv_cache *c = create("h2o", &d.s, NULL);
    if (!c) return;
    float *out = malloc((size_t)d.n * 2 * d.q_dim * sizeof(float)), *again = malloc((size_t)d.n * 2 * d.q_dim * sizeof(float));
    TT_CHECK(step(c, &d, 0, 20, out) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(c->ops->attend(c, 0, 10, 5, d.q, out) == ZC_ERR_ARG, "attending evicted positions must fail");
    TT_CHECK(c->ops->write(c, 0, 20, 2, d.k, d.v) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(c->ops->attend(c, 0, 21, 1, d.q, out) == ZC_ERR_ARG, "attending half a block must fail");
    TT_CHECK(c->ops->truncate(c, 5) == ZC_ERR_UNSUPPORTED, "truncating into the evicted past must fail");
    TT_CHECK(c->ops->truncate(c, 0) == ZC_OK, "%s", zc_last_error());
    zc_kv_usage u;
    c->ops->usage(c, &u);
    TT_CHECK(u.total == 0 && u.n_tokens == 0, "after truncate: %zu bytes", u.total);
    zc_kv_cache *fresh = create("h2o", &d.s, NULL);
    TT_CHECK(step(c, &d, 0, 20, out) == ZC_OK && fresh && step(fresh, &d, 0, 20, again) == ZC_OK, "rewrite");
    TT_CHECK(!memcmp(out, again, (size_t)20 * 2 * d.q_dim * sizeof(float)), "rewrite differs");
    zc_kv_free(fresh);
    zc_kv_free(c);
    free(out), free(again);
    free_data(&d);
}

/* ---- kivi ------------------------------------------------------------------- */

/* The cache KIVI should hold after n tokens of layer l, decoded: keys of whole
 * G-token groups before n - R quantized per channel (kvquant's group-tok
 * format), values before n - R per token in channel groups of min(G, hd)
 * (group-ch, per head), everything else the fp16 of the input. */
static void kivi_model(const data *d, int l, int n, int bits, int G, int R, float *k, float *v) {
    int kv = d->kv_dim, hd = d->s.head_dim, nkq = n > R ? (n - R) / G * G : 0, nvq = n > R ? n - R : 0;
    for (size_t i = 0; i < (size_t)n * kv; i++) {
        k[i] = (float)f16r(rows_of(d, d->k, l, 0, kv)[i]);
        v[i] = (float)f16r(rows_of(d, d->v, l, 0, kv)[i]);
    }
    zc_kvq kq = {ZC_KVQ_GROUP_TOK, bits, G, ZC_CST_SQRT_MAX}, vq = {ZC_KVQ_GROUP_CH, bits, G < hd ? G : hd, 0};
    zc_kvq_layout lay;
    for (int t0 = 0; t0 < nkq; t0 += G) {
        TT_CHECK(zc_kvq_layout_of(&kq, G, kv, &lay) == ZC_OK, "%s", zc_last_error());
        void *blob = malloc(lay.total_bytes);
        zc_kvq_quantize(&kq, k + (size_t)t0 * kv, kv, G, kv, blob);
        zc_kvq_dequantize(&kq, blob, G, kv, k + (size_t)t0 * kv, kv);
        free(blob);
    }
    if (nvq)
        for (int h = 0; h < d->s.n_kv_heads; h++) {
            TT_CHECK(zc_kvq_layout_of(&vq, nvq, hd, &lay) == ZC_OK, "%s", zc_last_error());
            void *blob = malloc(lay.total_bytes);
            zc_kvq_quantize(&vq, v + h * hd, kv, nvq, hd, blob);
            zc_kvq_dequantize(&vq, blob, nvq, hd, v + h * hd, kv);
            free(blob);
        }
}

/* Stream tokens in uneven writes; after each: attention equals the reference
 * on the modelled cache, and usage() equals the hand count of quantized key
 * groups, quantized value tokens and fp16 window rows. */
static void check_kivi(int nh, int nkv, int hd, int bits, int G, int R, zc_pool *pool) {
    const int n_layers = 2;
    data d = make_data(n_layers, nh, nkv, hd, 170, 23 + hd + G + R);
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    strcpy(cfg.policy, "kivi");
    cfg.bits = bits, cfg.group_size = G, cfg.residual = R;
    zc_kv_cache *c = create_cfg(&cfg, &d.s, pool);
    if (!c) return;
    zc_attn_dims ad = {nh, nkv, hd};
    float *k = malloc((size_t)d.n * d.kv_dim * sizeof(float)), *v = malloc((size_t)d.n * d.kv_dim * sizeof(float));
    float *out = malloc((size_t)n_layers * d.n * d.q_dim * sizeof(float)), *ref = malloc((size_t)d.n * d.q_dim * sizeof(float));
    int vg = G < hd ? G : hd, vng = (hd + vg - 1) / vg;
    size_t krow = (size_t)(hd * bits + 7) / 8, vrow = 0;
    for (int i = 0; i < vng; i++) vrow += (size_t)((i < vng - 1 ? vg : hd - (vng - 1) * vg) * bits + 7) / 8;
    const int chunks[] = {20, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 50, 1, 1, 1, 64, 2};
    double worst = 0;
    int pos = 0, bad_usage = 0;
    for (size_t ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
        int n = chunks[ci];
        TT_CHECK(step(c, &d, pos, n, out) == ZC_OK, "%s", zc_last_error());
        int end = pos + n;
        for (int l = 0; l < n_layers; l++) {
            kivi_model(&d, l, end, bits, G, R, k, v);
            zc_attn_reference(&ad, rows_of(&d, d.q, l, pos, d.q_dim), n, pos, k, v, ZC_TYPE_F32, d.kv_dim, end, ref, NULL);
            double e = max_abs_diff(out + (size_t)l * n * d.q_dim, ref, (size_t)n * d.q_dim);
            if (e > worst) worst = e;
        }
        pos = end;
        size_t nkq = pos > R ? (size_t)(pos - R) / G * G : 0, nvq = pos > R ? (size_t)(pos - R) : 0;
        zc_kv_usage u;
        c->ops->usage(c, &u);
        size_t codes = n_layers * nkv * (nkq * krow + nvq * vrow);
        size_t params = n_layers * 2 * 2 * (nkq / G * d.kv_dim + nvq * nkv * vng);
        size_t window = n_layers * 2 * d.kv_dim * ((pos - nkq) + (pos - nvq));
        bad_usage += u.codes != codes || u.params != params || u.window != window ||
                     u.total != codes + params + window || u.n_tokens != pos;
        /* the window holds at least the last R tokens of both K and V */
        TT_CHECK(pos - (int)nkq >= (pos < R ? pos : R) && pos - (int)nvq == (pos < R ? pos : R), "window at %d", pos);
    }
    TT_CHECK(bad_usage == 0, "usage differed from the hand count at %d steps", bad_usage);
    TT_CHECK(worst < 2e-5, "kivi %d bits G %d R %d hd %d: max |out - model| %g", bits, G, R, hd, worst);
    TT_CHECK(c->ops->truncate(c, 3) == ZC_ERR_UNSUPPORTED && c->ops->truncate(c, 0) == ZC_OK, "truncate");
    zc_kv_usage u;
    c->ops->usage(c, &u);
    TT_CHECK(u.total == 0 && u.n_tokens == 0, "after truncate: %zu bytes", u.total);
    TT_CHECK(step(c, &d, 0, 70, out) == ZC_OK, "%s", zc_last_error());
    kivi_model(&d, 1, 70, bits, G, R, k, v);
    zc_attn_reference(&ad, rows_of(&d, d.q, 1, 0, d.q_dim), 70, 0, k, v, ZC_TYPE_F32, d.kv_dim, 70, ref, NULL);
    TT_CHECK(max_abs_diff(out + (size_t)70 * d.q_dim, ref, (size_t)70 * d.q_dim) < 2e-5, "after truncate to 0");
    zc_kv_free(c);
    free(k), free(v), free(out), free(ref);
    free_data(&d);
}

static void test_kivi_stream(void) {
    check_kivi(8, 2, 64, 2, 32, 32, NULL);  /* KIVI-2 as published, head_dim 64 */
    check_kivi(8, 4, 16, 3, 16, 0, NULL);   /* no residual, odd width, groups = head_dim */
    check_kivi(8, 4, 8, 4, 32, 40, NULL);   /* head_dim 8 < G: value groups are whole heads */
    zc_pool *pool = zc_pool_create(2);
    check_kivi(8, 2, 64, 2, 24, 8, pool);   /* G not dividing anything, threads */
    zc_pool_destroy(pool);
}

static void test_kivi_bits_per_element(void) {
    /* 2 bits, G = 32, R = 32, head_dim 64, 4096 tokens: codes 2 bits, key
     * params 2*16/32 = 1 bit, value params 2*16/32 = 1 bit, window 32 (+ up
     * to 31 key) tokens at 16 bits. Width 2 is kivi's default (bits 0). */
    zc_kv_shape s = {1, 8, 8, 64, 4096, NULL};
    float *x = calloc((size_t)4096 * 512, sizeof(float));
    unsigned long long seed = 1;
    for (size_t i = 0; i < (size_t)4096 * 512; i++) x[i] = tt_randf(&seed);
    for (int bits = 0; bits <= 2; bits += 2) {
        zc_kv_config cfg;
        zc_kv_config_default(&cfg);
        strcpy(cfg.policy, "kivi");
        cfg.bits = bits;
        zc_kv_cache *c = create_cfg(&cfg, &s, NULL);
        if (!c) break;
        TT_CHECK(c->ops->write(c, 0, 0, 4096, x, x) == ZC_OK, "%s", zc_last_error());
        zc_kv_usage u;
        c->ops->usage(c, &u);
        /* keys: 4064 quantized (127 groups), 32 fp16; values: 4064 quantized, 32 fp16 */
        double want = (4064.0 * 3 * 2 + 32.0 * 16 * 2) / (2 * 4096.0);
        TT_NEAR(zc_kv_bits_per_element(&u), want, 1e-12);
        zc_kv_free(c);
    }
    free(x);
}

/* ---- uniform ---------------------------------------------------------------- */

/* uniform is zipcache with one width and every token in one set: outputs
 * identical to zipcache configured so by hand, codes exactly `bits` per
 * element once the prompt is compressed. */
static void test_uniform(void) {
    data d = make_data(2, 8, 2, 64, 230, 31);
    zc_kv_config cu, cz;
    zc_kv_config_default(&cu);
    TT_CHECK(zc_kv_config_parse_arg(&cu, "--kv", "uniform") == 1 && zc_kv_config_parse_arg(&cu, "--kv-bits", "3") == 1,
             "%s", zc_last_error());
    cz = cu;
    strcpy(cz.policy, "zipcache");
    cz.k_hi_bits = cz.k_lo_bits = cz.v_hi_bits = cz.v_lo_bits = 3;
    cz.salient_ratio = 1.0f, cz.target_bits = 0;
    zc_kv_cache *u = create_cfg(&cu, &d.s, NULL), *z = create_cfg(&cz, &d.s, NULL);
    if (!u || !z) return;
    size_t qn = (size_t)2 * d.n * d.q_dim;
    float *ou = malloc(qn * sizeof(float)), *oz = malloc(qn * sizeof(float));
    TT_CHECK(step(u, &d, 0, 100, ou) == ZC_OK && step(z, &d, 0, 100, oz) == ZC_OK, "%s", zc_last_error());
    zc_kv_usage us;
    u->ops->usage(u, &us);
    TT_CHECK(us.window == 0 && us.codes == (size_t)2 * 2 * 100 * d.kv_dim * 3 / 8, "after the prompt: codes %zu window %zu",
             us.codes, us.window);
    int same = !memcmp(ou, oz, (size_t)2 * 100 * d.q_dim * sizeof(float));
    for (int p = 100; p < d.n; p++) { /* decode through a stream compression (gap 100) */
        TT_CHECK(step(u, &d, p, 1, ou) == ZC_OK && step(z, &d, p, 1, oz) == ZC_OK, "%s", zc_last_error());
        same &= !memcmp(ou, oz, (size_t)2 * d.q_dim * sizeof(float));
    }
    TT_CHECK(same, "uniform differs from zipcache at one width");
    zc_kv_free(u), zc_kv_free(z);
    free(ou), free(oz);
    free_data(&d);
}

/* ---- mikv ------------------------------------------------------------------- */

/* mikv's saliency after a prompt block is the accumulated attention of every
 * query (explicit softmax rows, summed over the G heads of a KV head, not
 * normalized): compare with a double computation on the fp16 keys, and check
 * that mikv equals zipcache with --kv-probes all --kv-denom accumulated. */
static void test_mikv(void) {
    enum { N = 96 };
    data d = make_data(1, 8, 2, 32, N + 40, 41);
    zc_kv_config cm;
    zc_kv_config_default(&cm);
    strcpy(cm.policy, "mikv");
    zc_kv_config cz = cm;
    TT_CHECK(zc_kv_config_parse_arg(&cz, "--kv", "zipcache") == 1 &&
                 zc_kv_config_parse_arg(&cz, "--kv-probes", "all") == 1 &&
                 zc_kv_config_parse_arg(&cz, "--kv-denom", "accumulated") == 1,
             "%s", zc_last_error());
    zc_kv_cache *m = create_cfg(&cm, &d.s, NULL), *z = create_cfg(&cz, &d.s, NULL);
    if (!m || !z) return;
    float *om = malloc((size_t)N * d.q_dim * sizeof(float)), *oz = malloc((size_t)N * d.q_dim * sizeof(float));
    TT_CHECK(step(m, &d, 0, N, om) == ZC_OK && step(z, &d, 0, N, oz) == ZC_OK, "%s", zc_last_error());
    int same = !memcmp(om, oz, (size_t)N * d.q_dim * sizeof(float));
    const float *sc;
    int n = 0;
    TT_CHECK(zc_zip_last_scores(m, 0, &sc, &n) == ZC_OK && n == N, "%s (n %d)", zc_last_error(), n);
    int hd = 32, G = 4;
    double worst = 0, total = 0;
    for (int g = 0; g < 2 && n == N; g++) {
        double acc[N] = {0}, row[N];
        for (int i = 0; i < N; i++)
            for (int h = g * G; h < (g + 1) * G; h++) {
                const float *q = rows_of(&d, d.q, 0, i, d.q_dim) + h * hd;
                double mx = -INFINITY, sum = 0;
                for (int t = 0; t <= i; t++) {
                    const float *k = rows_of(&d, d.k, 0, t, d.kv_dim) + g * hd;
                    double dot = 0;
                    for (int e = 0; e < hd; e++) dot += (double)q[e] * f16r(k[e]);
                    row[t] = dot / sqrt((double)hd);
                    if (row[t] > mx) mx = row[t];
                }
                for (int t = 0; t <= i; t++) sum += (row[t] = exp(row[t] - mx));
                for (int t = 0; t <= i; t++) acc[t] += row[t] / sum;
            }
        for (int t = 0; t < N; t++) {
            double e = fabs(sc[g * N + t] - acc[t]) / (1 + acc[t]);
            if (e > worst) worst = e;
            total += acc[t];
        }
    }
    /* every row sums to 1: N queries x G heads x 2 KV heads */
    TT_NEAR(total, (double)N * G * 2, 1e-9);
    TT_CHECK(worst < 1e-4, "mikv scores vs accumulated attention: %g", worst);
    for (int p = N; p < d.n; p++) {
        TT_CHECK(step(m, &d, p, 1, om) == ZC_OK && step(z, &d, p, 1, oz) == ZC_OK, "%s", zc_last_error());
        same &= !memcmp(om, oz, (size_t)d.q_dim * sizeof(float));
    }
    TT_CHECK(same, "mikv differs from zipcache with probes all and accumulated scores");
    zc_kv_free(m), zc_kv_free(z);
    free(om), free(oz);
    free_data(&d);
}

/* ---- long-context decode: the split-KV path --------------------------------- */

/* Decode at 700+ keys splits the keys into chunks merged by log-sum-exp
 * (attn.c's tiled driver); the outputs must still match the references. */
static void test_split_kv_decode(void) {
    enum { N = 706, PRE = 700 };
    data d = make_data(1, 8, 2, 64, N, 53);
    zc_attn_dims ad = {8, 2, 64};
    float *out = malloc((size_t)PRE * d.q_dim * sizeof(float)), *ref = malloc((size_t)d.q_dim * sizeof(float));
    float *qq = malloc((size_t)d.q_dim * sizeof(float));
    float *k = malloc((size_t)N * d.kv_dim * sizeof(float)), *v = malloc((size_t)N * d.kv_dim * sizeof(float));
    zc_pool *pool = zc_pool_create(3);
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    const char *policies[] = {"q4_0", "kivi"};
    for (int pi = 0; pi < 2; pi++) {
        snprintf(cfg.policy, sizeof cfg.policy, "%s", policies[pi]);
        cfg.bits = 2;
        zc_kv_cache *c = create_cfg(&cfg, &d.s, pool);
        if (!c) continue;
        double worst = 0;
        TT_CHECK(step(c, &d, 0, PRE, out) == ZC_OK, "%s", zc_last_error());
        for (int p = PRE; p < N; p++) {
            TT_CHECK(step(c, &d, p, 1, out) == ZC_OK, "%s", zc_last_error());
            const float *q = rows_of(&d, d.q, 0, p, d.q_dim);
            if (pi == 0) {
                const uint8_t *ks, *vs;
                size_t rb;
                zc_kv_blocks_rows(c, 0, &ks, &vs, &rb);
                zc_dequantize_row(ZC_TYPE_Q4_0, ks, k, (int64_t)(p + 1) * d.kv_dim);
                zc_dequantize_row(ZC_TYPE_Q4_0, vs, v, (int64_t)(p + 1) * d.kv_dim);
                q8_query(q, qq, 8, 64);
                q = qq;
            } else {
                kivi_model(&d, 0, p + 1, 2, cfg.group_size, cfg.residual, k, v);
            }
            zc_attn_reference(&ad, q, 1, p, k, v, ZC_TYPE_F32, d.kv_dim, p + 1, ref, NULL);
            double e = max_abs_diff(out, ref, d.q_dim);
            if (e > worst) worst = e;
        }
        TT_CHECK(worst < 2e-5, "%s decode at %d keys: max |out - ref| %g", policies[pi], N, worst);
        zc_kv_free(c);
    }
    zc_pool_destroy(pool);
    free(out), free(ref), free(qq), free(k), free(v);
    free_data(&d);
}

/* A write the quantizers refuse (a NaN key) fails and leaves the cache as it
 * was: the same write without the NaN then gives the modelled cache. */
static void test_kivi_refusal_is_atomic(void) {
    data d = make_data(1, 4, 2, 16, 48, 61);
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    strcpy(cfg.policy, "kivi");
    cfg.bits = 2, cfg.group_size = 16, cfg.residual = 0;
    zc_kv_cache *c = create_cfg(&cfg, &d.s, NULL);
    if (!c) return;
    zc_attn_dims ad = {4, 2, 16};
    float *out = malloc((size_t)d.n * d.q_dim * sizeof(float)), *ref = malloc((size_t)d.n * d.q_dim * sizeof(float));
    float *k = malloc((size_t)d.n * d.kv_dim * sizeof(float)), *v = malloc((size_t)d.n * d.kv_dim * sizeof(float));
    TT_CHECK(step(c, &d, 0, 20, out) == ZC_OK, "%s", zc_last_error());
    zc_kv_usage before, after;
    c->ops->usage(c, &before);
    float *bad = d.k + (size_t)30 * d.kv_dim + 3, keep = *bad; /* token 30, layer 0 */
    *bad = NAN;
    TT_CHECK(c->ops->write(c, 0, 20, 28, rows_of(&d, d.k, 0, 20, d.kv_dim), rows_of(&d, d.v, 0, 20, d.kv_dim)) == ZC_ERR_ARG,
             "a NaN key must be refused");
    *bad = keep;
    c->ops->usage(c, &after);
    TT_CHECK(!memcmp(&before, &after, sizeof before), "a refused write changed the cache");
    TT_CHECK(step(c, &d, 20, 28, out) == ZC_OK, "%s", zc_last_error());
    kivi_model(&d, 0, 48, 2, 16, 0, k, v);
    zc_attn_reference(&ad, rows_of(&d, d.q, 0, 20, d.q_dim), 28, 20, k, v, ZC_TYPE_F32, d.kv_dim, 48, ref, NULL);
    TT_CHECK(max_abs_diff(out, ref, (size_t)28 * d.q_dim) < 2e-5, "after the refused write: %g",
             max_abs_diff(out, ref, (size_t)28 * d.q_dim));
    zc_kv_free(c);
    free(out), free(ref), free(k), free(v);
    free_data(&d);
}

int main(void) {
    TT_RUN(test_q8_0);
    TT_RUN(test_q4_0);
    TT_RUN(test_blocks_threads);
    TT_RUN(test_blocks_avx2_vs_scalar);
    TT_RUN(test_blocks_simd_end_to_end);
    TT_RUN(test_blocks_refuse_head_dim);
    TT_RUN(test_h2o_matches_model);
    TT_RUN(test_h2o_heavy_hitters);
    TT_RUN(test_h2o_truncate_and_misuse);
    TT_RUN(test_kivi_stream);
    TT_RUN(test_kivi_bits_per_element);
    TT_RUN(test_kivi_refusal_is_atomic);
    TT_RUN(test_uniform);
    TT_RUN(test_mikv);
    TT_RUN(test_split_kv_decode);
    return tt_finish();
}
