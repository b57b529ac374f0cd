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
#include "quant/ggml_blocks.h"
#include "util/cpu.h"
#include "util/fp16.h"
#include "util/threads.h"
#include "zipcache.h"

/* ---- helpers --------------------------------------------------------------- */

typedef struct {
    zc_kv_shape s;
    int n, kv_dim, q_dim;
    float *k, *v, *q; /* k, v [n_layers][n][kv_dim], q [n_layers][n][q_dim] */
} data;

static data make_data(int n_layers, int n_heads, int n_kv, int hd, int n, unsigned long long seed) {
    data d = {{n_layers, n_heads, n_kv, hd, n + 8}, n, n_kv * hd, n_heads * hd, NULL, NULL, NULL};
    size_t nk = (size_t)n_layers * n * d.kv_dim, nq = (size_t)n_layers * n * d.q_dim;
    d.k = malloc(nk * sizeof(float));
    d.v = malloc(nk * sizeof(float));
    d.q = malloc(nq * sizeof(float));
    for (size_t i = 0; i < nk; i++) d.k[i] = 2 * tt_randf(&seed), d.v[i] = tt_randf(&seed);
    for (size_t i = 0; i < nq; i++) d.q[i] = 2 * tt_randf(&seed);
    return d;
}

static void free_data(data *d) { free(d->k), free(d->v), free(d->q); }

static const float *rows_of(const data *d, const float *x, int layer, int t, int width) {
    return x + ((size_t)layer * d->n + t) * width;
}

static zc_kv_cache *create_cfg(const zc_kv_config *cfg, const zc_kv_shape *s, zc_pool *pool) {
    zc_kv_cache *c = NULL;
    int rc = zc_kv_create(cfg, s, pool, &c);
    TT_CHECK(rc == ZC_OK, "%s: %s", cfg->policy, zc_last_error());
    return rc == ZC_OK ? c : NULL;
}

static zc_kv_cache *create(const char *policy, const zc_kv_shape *s, zc_pool *pool) {
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv", policy) == 1, "%s", zc_last_error());
    return create_cfg(&cfg, s, pool);
}

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
    TT_CHECK(tight < 2e-5, "%s: vs reference with the q8_0 query: %g", policy, tight);
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

/* Kernel level: scores and dequantization bit-identical, softmax update
 * within a few ulp (exp polynomial). */
static void test_blocks_avx2_vs_scalar(void) {
    zc_cpu_set_simd(-1);
    if (!zc_cpu_has_avx2()) TT_SKIP("no AVX2 on this CPU");
    unsigned long long seed = 99;
    enum { HD = 128, NB = HD / 32, N = 61 };
    float x[N * HD], q[HD], vt[N * HD], s0[64], s1[64], acc0[HD], acc1[HD];
    zc_block_q8_0 qx[NB];
    static uint8_t kb[N * NB * 34];
    for (int i = 0; i < HD; i++) q[i] = tt_randf(&seed);
    zc_quantize_row(ZC_TYPE_Q8_0, q, qx, HD);
    for (int t = 0; t < 2; t++) {
        int type = t ? ZC_TYPE_Q4_0 : ZC_TYPE_Q8_0;
        size_t rb = (size_t)NB * zc_type_get(type)->block_bytes;
        for (int i = 0; i < N * HD; i++) x[i] = 3 * tt_randf(&seed);
        zc_quantize_row(type, x, kb, N * HD);
        zc_kvb_scalar.scores(type, qx, kb, rb, N, NB, s0);
        zc_kvb_avx2.scores(type, qx, kb, rb, N, NB, s1);
        TT_CHECK(!memcmp(s0, s1, sizeof(float) * N), "%s scores differ", zc_type_get(type)->name);
        zc_kvb_scalar.dequant(type, kb, rb, N, NB, x);
        zc_kvb_avx2.dequant(type, kb, rb, N, NB, vt);
        TT_CHECK(!memcmp(x, vt, sizeof(float) * N * HD), "%s dequant differs", zc_type_get(type)->name);
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
    if (!zc_cpu_has_avx2()) TT_SKIP("no AVX2 on this CPU");
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
    zc_kv_shape s = {1, 8, 4, 8, 64}; /* stories260K: head_dim 8 */
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

int main(void) {
    TT_RUN(test_q8_0);
    TT_RUN(test_q4_0);
    TT_RUN(test_blocks_threads);
    TT_RUN(test_blocks_avx2_vs_scalar);
    TT_RUN(test_blocks_simd_end_to_end);
    TT_RUN(test_blocks_refuse_head_dim);
    return tt_finish();
}
