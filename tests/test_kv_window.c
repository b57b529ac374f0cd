/* Sliding-window layers around a policy (src/kv/kv_window.c): attention of
 * a local layer against the double reference over exactly the window, in
 * uneven chunks that force the buffer to drop and to grow; the global layer
 * is the policy's own (the same as a plain cache of it); memory bounded by
 * the window; truncation while the window is still held, refusal once it
 * is not; save/load continues exactly where the original goes on, and
 * refuses damaged states; no binding window = the plain policy. */
#include "tt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "attn/attn.h"
#include "quant/ggml_blocks.h"
#include "kv/kv.h"
#include "kv/zipcache_internal.h"
#include "util/fp16.h"
#include "zipcache.h"

#include "kv_test_util.h"

#define W 5

static void rounded16(const float *x, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = zc_fp16_to_f32(zc_f32_to_fp16(x[i]));
}

/* The worst relative difference of out [n][q_dim] (layer l's queries at
 * pos..pos+n-1) from the double reference over exactly each query's window
 * of the original K/V (rounded to fp16 unless fp32). */
static double window_error(const data *d, int w, int l, int pos, int n, const float *out, int fp32) {
    zc_attn_dims ad = {d->s.n_heads, d->s.n_kv_heads, d->s.head_dim};
    float *kr = malloc((size_t)w * d->kv_dim * sizeof(float)), *vr = malloc((size_t)w * d->kv_dim * sizeof(float));
    float *ref = malloc((size_t)d->q_dim * sizeof(float)), lse[64];
    double worst = 0;
    for (int i = 0; i < n; i++) { /* query at p sees keys max(0, p - w + 1)..p */
        int p = pos + i, lo = p - w + 1 > 0 ? p - w + 1 : 0, nk = p - lo + 1;
        const float *ks = rows_of(d, d->k, l, lo, d->kv_dim), *vs = rows_of(d, d->v, l, lo, d->kv_dim);
        if (fp32) {
            memcpy(kr, ks, (size_t)nk * d->kv_dim * sizeof(float));
            memcpy(vr, vs, (size_t)nk * d->kv_dim * sizeof(float));
        } else {
            rounded16(ks, kr, (size_t)nk * d->kv_dim);
            rounded16(vs, vr, (size_t)nk * d->kv_dim);
        }
        zc_attn_reference(&ad, rows_of(d, d->q, l, p, d->q_dim), 1, nk - 1, kr, vr, ZC_TYPE_F32, (size_t)d->kv_dim,
                          nk, ref, lse);
        for (int e = 0; e < d->q_dim; e++) {
            double err = fabs(out[(size_t)i * d->q_dim + e] - ref[e]) / (1 + fabs(ref[e]));
            worst = err > worst ? err : worst;
        }
    }
    free(kr);
    free(vr);
    free(ref);
    return worst;
}

/* Uneven chunks: 16 grows a local buffer past 2W; 7 and 16 are prompt chunks
 * for a stream gap of 4, the rest decode steps and a short block. */
static const int CHUNKS[] = {1, 2, 16, 1, 1, 1, 7, 1, 3, 1, 1, 1, 1, 1, 1, 1};
#define N_CHUNKS (int)(sizeof CHUNKS / sizeof CHUNKS[0])

/* Layers 0 and 2 local (window W), layer 1 global, the policy of cfg. The
 * local layers match the windowed reference within tol (a policy that
 * compresses them: within its rounding); the global layer is exactly a
 * plain cache's (layer 0 of one created with cfg). */
static void check_cfg(const zc_kv_config *cfg, int fp32, zc_pool *pool, double tol, zc_kv_usage *u) {
    data d = make_data(3, 4, 2, 16, 40, 7);
    static const int window[3] = {W, 0, W};
    zc_kv_cache *c = NULL, *plain = create_cfg(cfg, &d.s, pool);
    TT_CHECK(zc_kv_create_windowed(cfg, &d.s, window, pool, &c) == ZC_OK, "%s", zc_last_error());
    if (!c || !plain) return;
    float out[16 * 64], ref[16 * 64];
    double worst = 0;
    int pos = 0;
    for (int ci = 0; ci < N_CHUNKS; ci++) {
        int n = CHUNKS[ci];
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
            double e = window_error(&d, W, l, pos, n, out, fp32);
            worst = e > worst ? e : worst;
        }
        pos += n;
    }
    if (getenv("ZC_TEST_VERBOSE")) printf("  %s: local layers within %.3g of the windowed reference\n", cfg->policy, worst);
    TT_CHECK(worst < tol, "%s: local layers differ from the windowed reference by %.3g", cfg->policy, worst);
    zc_kv_usage up;
    c->ops->usage(c, u);
    plain->ops->usage(plain, &up);
    TT_CHECK(u->n_tokens == pos && u->elements == 2 * 3 * (int64_t)pos * d.kv_dim, "%lld tokens, %lld elements",
             (long long)u->n_tokens, (long long)u->elements);
    if (cfg->local_layers == ZC_KV_LOCAL_EXACT) {
        /* Memory: the local layers hold at most the last batch plus W - 1 tokens. */
        size_t row = (size_t)d.kv_dim * (fp32 ? 4 : 2), local = u->total - up.total;
        TT_CHECK(u->total > up.total && local == u->window - up.window && local <= 2 * 2 * (size_t)(2 * W) * row,
                 "%s: local bytes %zu (total %zu, plain %zu)", cfg->policy, local, u->total, up.total);
    }
    /* Truncation: back to pos - 2 (its window is held), not to 3 (dropped), to 0. */
    TT_CHECK(c->ops->truncate(c, pos - 2) == ZC_OK && c->n_tokens == pos - 2, "%s", zc_last_error());
    TT_CHECK(c->ops->truncate(c, 3) == ZC_ERR_UNSUPPORTED, "truncate into dropped positions");
    TT_CHECK(c->ops->truncate(c, 0) == ZC_OK && c->n_tokens == 0, "%s", zc_last_error());
    TT_CHECK(c->ops->write(c, 0, 0, 2, d.k, d.v) == ZC_OK, "%s", zc_last_error()); /* usable again */
    zc_kv_free(c);
    zc_kv_free(plain);
    free_data(&d);
}

static void check(const char *policy, int fp32, zc_pool *pool) {
    zc_kv_config cfg;
    zc_kv_usage u;
    zc_kv_config_default(&cfg);
    zc_kv_config_parse_arg(&cfg, "--kv", policy);
    check_cfg(&cfg, fp32, pool, 1e-5, &u);
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
    /* zipcache and mikv keep their local layers exact here; the last two hold them themselves
       (--kv-local compress, the default), in segments of 4 tokens */
    static const char *const policies[] = {"fp16", "fp32", "zipcache", "kivi", "h2o", "mikv", "zipcache", "uniform"};
    static const int window[3] = {W, 0, W};
    data d = make_data(3, 4, 2, 16, 40, 11);
    float a[3 * 16 * 64], b[3 * 16 * 64];
    for (int pi = 0; pi < 8; pi++) {
        zc_kv_config cfg;
        zc_kv_config_default(&cfg);
        const char *opts = pi >= 6 ? "local=compress stream-gap=4" : "local=exact";
        TT_CHECK(zc_kv_config_parse_string(&cfg, policies[pi], opts) == ZC_OK, "%s", zc_last_error());
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
        /* damaged: cut short; the first local layer's first held position past n - (W - 1)
           (kv_window.c's pos0 after the token count; zipcache's p0 after its layer head and rotation) */
        for (int bad = 0; bad < 2; bad++) {
            TT_CHECK(zc_kv_create_windowed(&cfg, &d.s, window, NULL, &r) == ZC_OK, "%s", zc_last_error());
            int32_t far = 23 - (W - 1) + 1, was;
            uint8_t *at = w.buf + (pi >= 6 ? 6 * 4 : 4);
            memcpy(&was, at, 4);
            if (bad) memcpy(at, &far, 4);
            zc_kv_reader cut = {w.buf, bad ? w.len : w.len / 2, 0};
            TT_CHECK(r->ops->load(r, &cut) == ZC_ERR_FORMAT, "%s: damaged state %d loaded", policies[pi], bad);
            memcpy(at, &was, 4);
            zc_kv_free(r);
        }
        /* hostile: each of ~400 bytes spread over the state flipped in turn loads or is refused with
           ZC_ERR_FORMAT, and a cache that loaded goes on without a fault (ASan) */
        size_t stride = w.len / 400 + 1, loaded = 0, tried = 0;
        for (size_t at = 0; at < w.len; at += stride, tried++) {
            TT_CHECK(zc_kv_create_windowed(&cfg, &d.s, window, NULL, &r) == ZC_OK, "%s", zc_last_error());
            w.buf[at] ^= 0xa5;
            zc_kv_reader rd2 = {w.buf, w.len, 0};
            int rc = r->ops->load(r, &rd2);
            w.buf[at] ^= 0xa5;
            TT_CHECK(rc == ZC_OK || rc == ZC_ERR_FORMAT, "%s: byte %zu flipped: %d %s", policies[pi], at, rc,
                     zc_last_error());
            loaded += rc == ZC_OK;
            if (rc == ZC_OK && r->n_tokens < 40) {
                int p = r->n_tokens;
                for (int l = 0; l < 3; l++)
                    if (r->ops->write(r, l, p, 1, rows_of(&d, d.k, l, p, d.kv_dim), rows_of(&d, d.v, l, p, d.kv_dim)) ==
                        ZC_OK)
                        r->ops->attend(r, l, p, 1, rows_of(&d, d.q, l, p, d.q_dim), b);
            }
            zc_kv_free(r);
        }
        if (getenv("ZC_TEST_VERBOSE"))
            printf("  %s%s: %zu-byte state, %zu of %zu single-byte damages loaded, the rest refused\n", policies[pi],
                   pi >= 6 ? " (local layers compressed)" : "", w.len, loaded, tried);
        zc_clear_error();
        free(w.buf);
        zc_kv_free(c);
    }
    free_data(&d);
}

/* --kv-local compress (the default): zipcache holds the local layers
 * itself, compressed within their window (8-bit codes here, so within their
 * rounding of the windowed reference; a key too many or too few in a band of
 * W = 5 moves outputs by ~1e-1). Segments of 4 tokens: decode steps see a
 * segment in part, prompt chunks longer than the band drop their older
 * tokens. The same with exact local layers (--kv-local exact) for the
 * bytes: compressing them must hold fewer. */
static void test_compress_local(void) {
    zc_kv_usage exact, comp;
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    TT_CHECK(zc_kv_config_parse_string(&cfg, "zipcache", "hi-bits=8 lo-bits=8 stream-gap=4 rotate=on local=exact") ==
             ZC_OK, "%s", zc_last_error());
    check_cfg(&cfg, 0, NULL, 2e-2, &exact);
    cfg.local_layers = ZC_KV_LOCAL_COMPRESS;
    zc_pool *pool = zc_pool_create(3);
    check_cfg(&cfg, 0, pool, 2e-2, &comp);
    zc_pool_destroy(pool);
    TT_CHECK(comp.total < exact.total && comp.window < exact.window, "compressed local layers hold %zu bytes "
             "(window %zu), exact ones %zu (%zu)", comp.total, comp.window, exact.total, exact.window);
    /* a policy that cannot hold a band keeps the exact rule */
    strcpy(cfg.policy, "kivi");
    zc_kv_shape s = {3, 4, 2, 16, 64, NULL};
    static const int window[3] = {W, 0, W};
    zc_kv_cache *c = NULL;
    TT_CHECK(zc_kv_create_windowed(&cfg, &s, window, NULL, &c) == ZC_OK && !strcmp(c->ops->name, "windowed"), "%s",
             c ? c->ops->name : zc_last_error());
    zc_kv_free(c);
    s.band = window;
    TT_CHECK(zc_kv_create(&cfg, &s, NULL, &c) == ZC_ERR_UNSUPPORTED, "kivi accepted a band");
}

/* The same at head_dim 32 and 4 bits: tiled sets (the integer path) in key
 * groups of 8, keys rotated, a band of 48, segments of 16 (decode) and 24
 * (a prompt's tail). A decode step's band starts inside a segment whose
 * visible part is read packed from its next tile on and dequantized before
 * it (banded_decode): checked against the double reference over exactly
 * the band of what the layer holds, dequantized (zc_zip_held), within the
 * integer path's error (attn_packed.h); a key too many or too few moves
 * outputs by more. */
static void test_compress_local_tiled(void) {
    enum { BAND = 48, N = 160 };
    data d = make_data(2, 4, 2, 32, N, 5);
    static const int window[2] = {BAND, 0};
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    TT_CHECK(zc_kv_config_parse_string(&cfg, "zipcache", "hi-bits=4 lo-bits=4 key-group=8 stream-gap=16 rotate=on "
                                                         "local=compress") == ZC_OK, "%s", zc_last_error());
    zc_kv_cache *c = NULL;
    TT_CHECK(zc_kv_create_windowed(&cfg, &d.s, window, NULL, &c) == ZC_OK, "%s", zc_last_error());
    if (!c) return;
    zc_attn_dims ad = {4, 2, 32};
    size_t kd = (size_t)d.kv_dim;
    float *out = malloc((size_t)100 * d.q_dim * sizeof(float)), *hk = malloc(N * kd * sizeof(float)),
          *hv = malloc(N * kd * sizeof(float)), ref[128], lse[4];
    double worst = 0, orig = 0;
    for (int pos = 0, n = 100; pos < N; pos += n, n = 1)
        for (int l = 0; l < 2; l++) {
            int first = 0, held = 0, lo = pos - BAND + 1 > 0 ? pos - BAND + 1 : 0;
            TT_CHECK(c->ops->write(c, l, pos, n, rows_of(&d, d.k, l, pos, d.kv_dim), rows_of(&d, d.v, l, pos, d.kv_dim)) ==
                         ZC_OK, "%s", zc_last_error());
            /* what attention will read (it compresses only after) */
            TT_CHECK(l || zc_zip_held(c, 0, &first, &held, hk, hv) == ZC_OK, "%s", zc_last_error());
            TT_CHECK(c->ops->attend(c, l, pos, n, rows_of(&d, d.q, l, pos, d.q_dim), out) == ZC_OK, "%s", zc_last_error());
            if (l || n != 1) continue;
            TT_CHECK(first <= lo && first + held == pos + 1, "held %d..%d at %d", first, first + held - 1, pos);
            zc_attn_reference(&ad, rows_of(&d, d.q, 0, pos, d.q_dim), 1, pos - lo, hk + (lo - first) * kd,
                              hv + (lo - first) * kd, ZC_TYPE_F32, kd, pos - lo + 1, ref, lse);
            for (int e = 0; e < d.q_dim; e++) {
                double err = fabs(out[e] - ref[e]) / (1 + fabs(ref[e]));
                worst = err > worst ? err : worst;
            }
            double e0 = window_error(&d, BAND, 0, pos, 1, out, 0);
            orig = e0 > orig ? e0 : orig;
        }
    if (getenv("ZC_TEST_VERBOSE"))
        printf("  4-bit tiled local layer: within %.3g of its held band, %.3g of the original one\n", worst, orig);
    TT_CHECK(worst < 1e-2, "4-bit local layer differs from its held band by %.3g", worst);
    TT_CHECK(orig < 0.06, "4-bit local layer differs from the windowed reference by %.3g", orig);
    zc_kv_free(c);
    free(out);
    free(hk);
    free(hv);
    free_data(&d);
}

/* --kv-local-bits: under a budget, the local layers' own budget. Equal to
 * --kv-bits it changes nothing (the same outputs, bit for bit); above it the
 * local layers store more bytes and come closer to the windowed reference.
 * (head_dim 32 and a band of 64: at smaller sizes parameters alone fill a
 * 3-bit budget and no plan is left to choose.) */
static void test_local_bits(void) {
    enum { BAND = 64, N = 200, PROMPT = 100 };
    static const int window[3] = {BAND, 0, BAND};
    static const char *const opts[3] = {"bits=3 stream-gap=16", "bits=3 local-bits=3 stream-gap=16",
                                        "bits=3 local-bits=6 stream-gap=16"};
    data d = make_data(3, 4, 2, 32, N, 13);
    size_t per = (size_t)3 * PROMPT * d.q_dim;
    float *out = malloc(3 * per * sizeof(float));
    zc_kv_usage u[3];
    double err[3] = {0, 0, 0};
    for (int k = 0; k < 3 && out; k++) {
        zc_kv_config cfg;
        zc_kv_config_default(&cfg);
        zc_kv_cache *c = NULL;
        TT_CHECK(zc_kv_config_parse_string(&cfg, "zipcache", opts[k]) == ZC_OK &&
                     zc_kv_create_windowed(&cfg, &d.s, window, NULL, &c) == ZC_OK, "%s", zc_last_error());
        if (!c) break;
        float *o = out + (size_t)k * per;
        for (int pos = 0, n = PROMPT; pos < N; pos += n, n = 1) {
            step(c, &d, pos, n, o);
            for (int l = 0; l < 3; l += 2)
                err[k] += window_error(&d, BAND, l, pos, n, o + (size_t)l * n * d.q_dim, 0);
        }
        c->ops->usage(c, &u[k]);
        zc_kv_free(c);
    }
    TT_CHECK(out && !memcmp(out, out + per, per * sizeof(float)) && u[0].total == u[1].total,
             "local-bits = bits changed the cache");
    TT_CHECK(u[2].total > u[0].total && err[2] < err[0], "local-bits 6: %zu bytes (error %.3g) vs %zu (%.3g) at 3",
             u[2].total, err[2], u[0].total, err[0]);
    if (getenv("ZC_TEST_VERBOSE"))
        printf("  local layers at 3 / 6 bits: %zu / %zu bytes held, summed error %.3g / %.3g\n", u[0].total,
               u[2].total, err[0], err[2]);
    free(out);
    free_data(&d);
}

/* Windows that never bind (0, or >= max_ctx) give the plain policy (the default one here). */
static void test_no_binding_window(void) {
    zc_kv_shape s = {2, 4, 2, 16, 64, NULL};
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
    TT_RUN(test_compress_local);
    TT_RUN(test_compress_local_tiled);
    TT_RUN(test_local_bits);
    return tt_finish();
}
