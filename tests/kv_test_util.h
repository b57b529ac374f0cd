/* Helpers shared by the KV policy tests (test_kv_fp.c, test_kv_baselines.c):
 * random per-layer K/V/Q and cache creation that reports failures. */
#ifndef ZC_TESTS_KV_TEST_UTIL_H
#define ZC_TESTS_KV_TEST_UTIL_H

#include <stdlib.h>

#include "kv/kv.h"
#include "tt.h"
#include "zipcache.h"

/* A random layer set: k, v [n_layers][n][kv_dim], q [n_layers][n][q_dim];
 * the shape leaves 8 positions of room after the n tokens. */
typedef struct {
    zc_kv_shape s;
    int n, kv_dim, q_dim;
    float *k, *v, *q;
} data;

static inline data make_data(int n_layers, int n_heads, int n_kv, int hd, int n, unsigned long long seed) {
    data d = {{n_layers, n_heads, n_kv, hd, n + 8, NULL}, n, n_kv * hd, n_heads * hd, NULL, NULL, NULL};
    size_t nk = (size_t)n_layers * n * d.kv_dim, nq = (size_t)n_layers * n * d.q_dim;
    d.k = malloc(nk * sizeof(float));
    d.v = malloc(nk * sizeof(float));
    d.q = malloc(nq * sizeof(float));
    for (size_t i = 0; i < nk; i++) d.k[i] = 2 * tt_randf(&seed), d.v[i] = tt_randf(&seed);
    for (size_t i = 0; i < nq; i++) d.q[i] = 2 * tt_randf(&seed);
    return d;
}

static inline void free_data(data *d) { free(d->k), free(d->v), free(d->q); }

/* Row t of layer `layer` of x (k, v or q of d; width kv_dim or q_dim). */
static inline const float *rows_of(const data *d, const float *x, int layer, int t, int width) {
    return x + ((size_t)layer * d->n + t) * width;
}

/* A cache for cfg, or NULL after a failed check. */
static inline zc_kv_cache *create_cfg(const zc_kv_config *cfg, const zc_kv_shape *s, zc_pool *pool) {
    zc_kv_cache *c = NULL;
    int rc = zc_kv_create(cfg, s, pool, &c);
    TT_CHECK(rc == ZC_OK, "%s: %s", cfg->policy, zc_last_error());
    return rc == ZC_OK ? c : NULL;
}

/* A cache of `policy` with the default options. */
static inline zc_kv_cache *create(const char *policy, const zc_kv_shape *s, zc_pool *pool) {
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    TT_CHECK(zc_kv_config_parse_arg(&cfg, "--kv", policy) == 1, "%s", zc_last_error());
    return create_cfg(&cfg, s, pool);
}

#endif
