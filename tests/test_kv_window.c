/* Sliding-window layers around a policy (src/kv/kv_window.c): attention of
 * a local layer against the double reference over exactly the window, in
 * uneven chunks that force the buffer to drop and to grow; the global layer
 * is the policy's own (the same as a plain cache of it); memory bounded by
 * the window; truncation while the window is still held, refusal once it
 * is not; save/load continues exactly where the original goes on, and
 * refuses damaged states; no binding window = the plain policy. */
#include "tt.h"

#include <string.h>

#include <math.h>

#include "attn/attn.h"
#include "quant/ggml_blocks.h"
#include "kv/kv.h"
#include "util/fp16.h"
#include "zipcache.h"

#include "kv_test_util.h"

#define W 5

static void rounded16(const float *x, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = zc_fp16_to_f32(zc_f32_to_fp16(x[i]));
}

/* Layers 0 and 2 local (window W), layer 1 global; fp16 or fp32 policy. */
static void check(const char *policy, int fp32, zc_pool *pool) {
    data d = make_data(3, 4, 2, 16, 40, 7);
    static const int window[3] = {W, 0, W};
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    zc_kv_config_parse_arg(&cfg, "--kv", policy);
    zc_kv_cache *c = NULL, *plain = create(policy, &d.s, pool);
    TT_CHECK(zc_kv_create_windowed(&cfg, &d.s, window, pool, &c) == ZC_OK, "%s", zc_last_error());
    if (!c || !plain) return;
    zc_attn_dims ad = {4, 2, 16};
    float kr[W * 32], vr[W * 32], out[16 * 64], ref[16 * 64], lse[16 * 4];
    const int chunks[] = {1, 2, 16, 1, 1, 1, 7, 1, 3, 1, 1, 1, 1, 1, 1, 1}; /* 16: grows past 2W */
    double worst = 0;
    int pos = 0;
    for (int ci = 0; ci < 16; ci++) {
        int n = chunks[ci];
        for (int l = 0; l < 3; l++) {
            const float *k = rows_of(&d, d.k, l, pos, d.kv_dim), *v = rows_of(&d, d.v, l, pos, d.kv_dim);
            const float *q = rows_of(&d, d.q, l, pos, d.q_dim);
            TT_CHECK(c->ops->write(c, l, pos, n, k, v) == ZC_OK, "%s", zc_last_error());
            TT_CHECK(c->ops->attend(c, l, pos, n, q, out) == ZC_OK, "%s", zc_last_error());
            if (!window[l]) { /* the policy's own layer: exactly a plain cache's result */
                TT_CHECK(plain->ops->write(plain, 0, pos, n, k, v) == ZC_OK, "%s", zc_last_error());
                TT_CHECK(plain->ops->attend(plain, 0, pos, n, q, ref) == ZC_OK, "%s", zc_last_error());
                TT_CHECK(!memcmp(out, ref, (size_t)n * d.q_dim * sizeof(float)), "global layer differs at %d", pos);
                continue;
            }
            for (int i = 0; i < n; i++) { /* query at p sees keys max(0, p - W + 1)..p */
                int p = pos + i, lo = p - W + 1 > 0 ? p - W + 1 : 0, nk = p - lo + 1;
                const float *ks = rows_of(&d, d.k, l, lo, d.kv_dim), *vs = rows_of(&d, d.v, l, lo, d.kv_dim);
                if (fp32) {
                    memcpy(kr, ks, (size_t)nk * d.kv_dim * sizeof(float));
                    memcpy(vr, vs, (size_t)nk * d.kv_dim * sizeof(float));
                } else {
                    rounded16(ks, kr, (size_t)nk * d.kv_dim);
                    rounded16(vs, vr, (size_t)nk * d.kv_dim);
                }
                zc_attn_reference(&ad, q + (size_t)i * d.q_dim, 1, nk - 1, kr, vr, ZC_TYPE_F32,
                                  (size_t)d.kv_dim, nk, ref, lse);
                for (int e = 0; e < d.q_dim; e++) {
                    double err = fabs(out[(size_t)i * d.q_dim + e] - ref[e]) / (1 + fabs(ref[e]));
                    worst = err > worst ? err : worst;
                }
            }
        }
        pos += n;
    }
    TT_CHECK(worst < 1e-5, "%s: local layers differ from the windowed reference by %.3g", policy, worst);
    /* Memory: the local layers hold at most the last batch plus W - 1 tokens. */
    zc_kv_usage u, up;
    c->ops->usage(c, &u);
    plain->ops->usage(plain, &up);
    size_t row = (size_t)d.kv_dim * (fp32 ? 4 : 2);
    TT_CHECK(u.window <= 2 * 2 * (size_t)(2 * W) * row && u.window > 0, "%s: window bytes %zu", policy, u.window);
    TT_CHECK(u.total == up.total + u.window && u.n_tokens == pos && u.elements == 2 * 3 * (int64_t)pos * d.kv_dim,
             "%s: usage %zu = %zu + %zu, %lld tokens, %lld elements", policy, u.total, up.total, u.window,
             (long long)u.n_tokens, (long long)u.elements);
    /* Truncation: back to pos - 2 (its window is held), not to 3 (dropped), to 0. */
    TT_CHECK(c->ops->truncate(c, pos - 2) == ZC_OK && c->n_tokens == pos - 2, "%s", zc_last_error());
    TT_CHECK(c->ops->truncate(c, 3) == ZC_ERR_UNSUPPORTED, "truncate into dropped positions");
    TT_CHECK(c->ops->truncate(c, 0) == ZC_OK && c->n_tokens == 0, "%s", zc_last_error());
    TT_CHECK(c->ops->write(c, 0, 0, 2, d.k, d.v) == ZC_OK, "%s", zc_last_error()); /* usable again */
    zc_kv_free(c);
    zc_kv_free(plain);
    free_data(&d);
}

static void test_fp32(void) { check("fp32", 1, NULL); }
static void test_fp16_threads(void) {
    zc_pool *pool = zc_pool_create(3);
    check("fp16", 0, pool);
    zc_pool_destroy(pool);
}

/* Feed positions pos..pos+n-1 of every layer to c and attend them into out [n][q_dim]. */
static void step(zc_kv_cache *c, const data *d, int pos, int n, float *out) {
    for (int l = 0; l < 3; l++) {
        TT_CHECK(c->ops->write(c, l, pos, n, rows_of(d, d->k, l, pos, d->kv_dim), rows_of(d, d->v, l, pos, d->kv_dim)) ==
                     ZC_OK, "%s", zc_last_error());
        TT_CHECK(c->ops->attend(c, l, pos, n, rows_of(d, d->q, l, pos, d->q_dim), out + (size_t)l * n * d->q_dim) ==
                     ZC_OK, "%s", zc_last_error());
    }
}

/* Save after 23 tokens (the local buffers have dropped old positions), load
 * into a fresh cache: both then give the same bits for the next 17. A state
 * cut short, or whose local layer starts past the window it must hold, is
 * refused with ZC_ERR_FORMAT. */
static void test_save_load(void) {
    static const char *const policies[] = {"fp16", "fp32", "zipcache", "kivi", "h2o", "mikv"};
    static const int window[3] = {W, 0, W};
    data d = make_data(3, 4, 2, 16, 40, 11);
    float a[3 * 16 * 64], b[3 * 16 * 64];
    for (int pi = 0; pi < 6; pi++) {
        zc_kv_config cfg;
        zc_kv_config_default(&cfg);
        zc_kv_config_parse_arg(&cfg, "--kv", policies[pi]);
        zc_kv_cache *c = NULL, *r = NULL;
        TT_CHECK(zc_kv_create_windowed(&cfg, &d.s, window, NULL, &c) == ZC_OK, "%s", zc_last_error());
        TT_CHECK(zc_kv_create_windowed(&cfg, &d.s, window, NULL, &r) == ZC_OK, "%s", zc_last_error());
        if (!c || !r) return;
        step(c, &d, 0, 16, a);
        for (int p = 16; p < 23; p++) step(c, &d, p, 1, a);
        zc_kv_writer w = {0};
        TT_CHECK(c->ops->save(c, &w) == ZC_OK, "%s: %s", policies[pi], zc_last_error());
        zc_kv_reader rd = {w.buf, w.len, 0};
        TT_CHECK(r->ops->load(r, &rd) == ZC_OK && rd.off == w.len && r->n_tokens == 23, "%s: %s", policies[pi],
                 zc_last_error());
        for (int p = 23; p < 40; p++) {
            step(c, &d, p, 1, a);
            step(r, &d, p, 1, b);
            TT_CHECK(!memcmp(a, b, 3 * (size_t)d.q_dim * sizeof(float)), "%s: restored cache differs at %d",
                     policies[pi], p);
        }
        zc_kv_free(r);
        /* damaged: cut short; the first local layer's pos0 past n - (W - 1) */
        for (int bad = 0; bad < 2; bad++) {
            TT_CHECK(zc_kv_create_windowed(&cfg, &d.s, window, NULL, &r) == ZC_OK, "%s", zc_last_error());
            int32_t far = 23 - (W - 1) + 1;
            if (bad) memcpy(w.buf + 4, &far, 4);
            zc_kv_reader cut = {w.buf, bad ? w.len : w.len / 2, 0};
            TT_CHECK(r->ops->load(r, &cut) == ZC_ERR_FORMAT, "%s: damaged state %d loaded", policies[pi], bad);
            zc_kv_free(r);
        }
        free(w.buf);
        zc_kv_free(c);
    }
    free_data(&d);
}

/* Windows that never bind (0, or >= max_ctx) give the plain policy (the default one here). */
static void test_no_binding_window(void) {
    zc_kv_shape s = {2, 4, 2, 16, 64};
    static const int window[2] = {0, 64};
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    zc_kv_cache *c = NULL;
    TT_CHECK(zc_kv_create_windowed(&cfg, &s, window, NULL, &c) == ZC_OK && !strcmp(c->ops->name, cfg.policy),
             "%s", c ? c->ops->name : zc_last_error());
    zc_kv_free(c);
    c = NULL;
    TT_CHECK(zc_kv_create_windowed(&cfg, &s, NULL, NULL, &c) == ZC_OK && !strcmp(c->ops->name, cfg.policy), "NULL");
    zc_kv_free(c);
}

int main(void) {
    TT_RUN(test_fp32);
    TT_RUN(test_fp16_threads);
    TT_RUN(test_save_load);
    TT_RUN(test_no_binding_window);
    return tt_finish();
}
