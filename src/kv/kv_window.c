/* Sliding-window layers (Gemma 3's local layers, Mistral, Phi-3) around any
 * KV policy: zc_kv_create_windowed.
 *
 * A local layer's query at position p sees only keys p - W + 1..p, so the
 * layer needs its last W - 1 positions plus the batch being written, never
 * more: each local layer keeps them in one uncompressed buffer
 *   K, V  [cap][n_kv_heads*head_dim]  (fp16, or fp32 under policy fp32)
 * holding positions pos0..pos0+held-1. A write that does not fit moves the
 * W - 1 positions the batch still needs to the front (so a decode step
 * moves them once every cap - W + 1 tokens); the buffer starts at 2W
 * positions and grows only for a batch longer than that (a prompt chunk),
 * never in a decode step.
 *
 * The policy itself sees only the global layers (its layer i is the i-th
 * global one): for zipcache under --kv-local exact that is the stated rule
 * that probes, saliency and streaming compression run on global layers
 * only, local layers (W tokens, read in full by every query) stay exact.
 * The default rule for a `banded` policy (zipcache, uniform, mikv),
 * --kv-local compress (cfg.local_layers), is not this file's: the policy
 * gets every layer with the windows as shape.band and compresses the local
 * ones within them (kv_zipcache.c). Both are measured in EVALUATION.md
 * ("Sliding-window layers") and BENCHMARKS.md.
 *
 * Accounting: local buffers count their held tokens (at most W - 1 + the
 * last batch) under `window`; elements are those of the whole model's cache
 * (every layer, every token), so the ratio against fp16 shows what
 * dropping old local positions saves.
 *
 * Save/load (sessions): the local layers' held rows, then the policy's own
 * state of the global layers (win_save).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "kv/kv.h"
#include "kv/kv_impl.h"
#include "kv/kv_options.h"
#include "quant/ggml_blocks.h"
#include "util/error.h"

typedef struct {
    uint8_t *k, *v;  /* [cap][kv_dim] elements of the buffer type */
    int cap;         /* positions the buffer can hold */
    int pos0;        /* position of row 0 */
    int held;        /* rows 0..held-1 hold positions pos0..pos0+held-1 */
} local_layer;

typedef struct {
    zc_kv_cache base;     /* the model's shape: every layer */
    zc_kv_cache *inner;   /* the policy over the global layers, NULL if every layer is local */
    const int *window;    /* [n_layers] borrowed */
    int *inner_layer;     /* [n_layers] the policy's layer index, -1 for a local layer */
    int *n_layer;         /* [n_layers] tokens written (kv_impl.h bookkeeping) */
    local_layer *loc;     /* [n_layers] used where inner_layer is -1 */
    int type;             /* ZC_TYPE_F16 or ZC_TYPE_F32 */
    size_t row_bytes;     /* one token of one layer */
    zc_attn_scratch scratch;
} kv_win;

static bool binds(const zc_kv_shape *s, const int *window, int l) { return window[l] > 0 && window[l] < s->max_ctx; }

static int kv_dim(const kv_win *c) { return c->base.shape.n_kv_heads * c->base.shape.head_dim; }

static int grow(kv_win *c, local_layer *L, int cap) {
    size_t bytes;
    if (zc_mul_size((size_t)cap, c->row_bytes, &bytes)) return zc_error(ZC_ERR_LIMIT, "kv window: %d rows", cap);
    uint8_t *k = zc_realloc(L->k, bytes), *v = k ? zc_realloc(L->v, bytes) : NULL;
    if (k) L->k = k;
    if (v) L->v = v;
    if (!k || !v) return zc_error(ZC_ERR_NOMEM, "kv window: cannot hold %d positions", cap);
    L->cap = cap;
    return ZC_OK;
}

static int win_write(zc_kv_cache *base, int layer, int pos, int n, const float *k, const float *v) {
    kv_win *c = (kv_win *)base;
    int rc = zc_kv_check_append(base, c->n_layer, layer, pos, n);
    if (rc) return rc;
    if (c->inner_layer[layer] >= 0) {
        if ((rc = c->inner->ops->write(c->inner, c->inner_layer[layer], pos, n, k, v))) return rc;
    } else {
        local_layer *L = &c->loc[layer];
        int w = c->window[layer];
        if (L->held + n > L->cap) { /* keep the w - 1 positions before pos, drop older ones */
            int keep_from = pos - (w - 1) > L->pos0 ? pos - (w - 1) : L->pos0, drop = keep_from - L->pos0;
            memmove(L->k, L->k + (size_t)drop * c->row_bytes, (size_t)(L->held - drop) * c->row_bytes);
            memmove(L->v, L->v + (size_t)drop * c->row_bytes, (size_t)(L->held - drop) * c->row_bytes);
            L->pos0 = keep_from;
            L->held -= drop;
            if (L->held + n > L->cap && (rc = grow(c, L, L->held + n))) return rc;
        }
        size_t off = (size_t)L->held * c->row_bytes, elems = (size_t)n * (size_t)kv_dim(c);
        zc_kv_store_rows(c->type, L->k + off, k, elems);
        zc_kv_store_rows(c->type, L->v + off, v, elems);
        L->held += n;
    }
    zc_kv_appended(base, c->n_layer, layer, pos, n);
    return ZC_OK;
}

static int win_attend(zc_kv_cache *base, int layer, int pos, int n, const float *q, float *out) {
    kv_win *c = (kv_win *)base;
    int rc = zc_kv_check_attend(base, c->n_layer, layer, pos, n);
    if (rc) return rc;
    if (c->inner_layer[layer] >= 0) return c->inner->ops->attend(c->inner, c->inner_layer[layer], pos, n, q, out);
    const local_layer *L = &c->loc[layer];
    zc_attn_dims d = {base->shape.n_heads, base->shape.n_kv_heads, base->shape.head_dim};
    int w = c->window[layer], rel = pos - L->pos0; /* buffer row of position pos */
    /* Rows whose window starts at or before the buffer's first position see
     * rows 0..their own: one causal call. (Positions before pos0 are out of
     * every window here: pos0 <= pos - (w - 1) or pos0 == 0.) */
    int n_full = 0;
    while (n_full < n && pos + n_full - (w - 1) <= L->pos0) n_full++;
    if (n_full && (rc = zc_attn_forward(base->pool, &d, q, n_full, rel, L->k, L->v, c->type, (size_t)kv_dim(c),
                                        rel + n_full, out, NULL, &c->scratch)))
        return rc;
    /* The others one by one over their own w rows (the last is the query's
     * own position, so pos0 = w - 1 sees them all). */
    size_t q_dim = (size_t)d.n_heads * d.head_dim;
    for (int i = n_full; i < n; i++) {
        size_t lo = (size_t)(rel + i - (w - 1)) * c->row_bytes;
        if ((rc = zc_attn_forward(base->pool, &d, q + i * q_dim, 1, w - 1, L->k + lo, L->v + lo, c->type,
                                  (size_t)kv_dim(c), w, out + i * q_dim, NULL, &c->scratch)))
            return rc;
    }
    return ZC_OK;
}

/* Local layers can go back to n_keep only while they still hold the w - 1
 * positions before it (or to 0). */
static int win_truncate(zc_kv_cache *base, int n_keep) {
    kv_win *c = (kv_win *)base;
    const zc_kv_shape *s = &base->shape;
    if (n_keep < 0 || n_keep > base->n_tokens)
        return zc_error(ZC_ERR_ARG, "kv %s: truncate to %d of %d tokens", base->ops->name, n_keep, base->n_tokens);
    for (int l = 0; l < s->n_layers; l++) {
        const local_layer *L = &c->loc[l];
        int need = n_keep - (c->window[l] - 1) > 0 ? n_keep - (c->window[l] - 1) : 0;
        if (c->inner_layer[l] < 0 && n_keep > 0 && need < L->pos0)
            return zc_error(ZC_ERR_UNSUPPORTED, "kv %s: layer %d no longer holds positions %d..%d (sliding window)",
                            base->ops->name, l, need, L->pos0 - 1);
    }
    int rc = c->inner ? c->inner->ops->truncate(c->inner, n_keep) : ZC_OK;
    if (rc) return rc;
    for (int l = 0; l < s->n_layers; l++) {
        local_layer *L = &c->loc[l];
        if (n_keep == 0) L->pos0 = 0;
        if (L->held > n_keep - L->pos0) L->held = n_keep - L->pos0;
    }
    return zc_kv_truncate_counts(base, c->n_layer, n_keep);
}

static void win_usage(const zc_kv_cache *base, zc_kv_usage *u) {
    const kv_win *c = (const kv_win *)base;
    const zc_kv_shape *s = &base->shape;
    memset(u, 0, sizeof *u);
    if (c->inner) c->inner->ops->usage(c->inner, u);
    for (int l = 0; l < s->n_layers; l++)
        if (c->inner_layer[l] < 0) {
            u->window += 2 * (size_t)c->loc[l].held * c->row_bytes;
            u->elements += 2 * (int64_t)c->n_layer[l] * kv_dim(c);
        }
    u->total = u->codes + u->params + u->window + u->index + u->other;
    u->n_tokens = base->n_tokens;
}

static void win_destroy(zc_kv_cache *base) {
    kv_win *c = (kv_win *)base;
    zc_kv_free(c->inner);
    for (int l = 0; c->loc && l < base->shape.n_layers; l++) {
        free(c->loc[l].k);
        free(c->loc[l].v);
    }
    free(c->loc);
    free(c->inner_layer);
    free(c->n_layer);
    zc_attn_scratch_free(&c->scratch);
    free(c);
}

/* State: n_tokens (int32); per local layer, in layer order, pos0 and held
 * (int32) and its held K rows then V rows [held][row_bytes] as stored; then
 * the inner policy's own state when there are global layers. The inner
 * policy must serialize (h2o, say, does not: ZC_ERR_UNSUPPORTED). */
static int win_save(const zc_kv_cache *base, zc_kv_writer *w) {
    const kv_win *c = (const kv_win *)base;
    if (c->inner && !c->inner->ops->save)
        return zc_error(ZC_ERR_UNSUPPORTED, "the %s cache cannot be saved", c->inner->ops->name);
    int rc = zc_kvw_i32(w, base->n_tokens);
    for (int l = 0; rc == ZC_OK && l < base->shape.n_layers; l++) {
        const local_layer *L = &c->loc[l];
        if (c->inner_layer[l] >= 0) continue;
        size_t bytes = (size_t)L->held * c->row_bytes;
        if ((rc = zc_kvw_i32(w, L->pos0)) || (rc = zc_kvw_i32(w, L->held)) || (rc = zc_kvw_put(w, L->k, bytes)))
            break;
        rc = zc_kvw_put(w, L->v, bytes);
    }
    return rc == ZC_OK && c->inner ? c->inner->ops->save(c->inner, w) : rc;
}

/* Into a fresh cache: every local layer must hold positions pos0..n-1 and
 * pos0 must leave the window of the next position complete (pos0 == 0 or
 * pos0 <= n - (w - 1)), as a running cache always does. */
static int win_load(zc_kv_cache *base, zc_kv_reader *r) {
    kv_win *c = (kv_win *)base;
    if (c->inner && !c->inner->ops->load)
        return zc_error(ZC_ERR_UNSUPPORTED, "the %s cache cannot be restored", c->inner->ops->name);
    int32_t n, pos0, held;
    int rc = zc_kvr_i32(r, 0, base->shape.max_ctx, "token count", &n);
    for (int l = 0; rc == ZC_OK && l < base->shape.n_layers; l++) {
        local_layer *L = &c->loc[l];
        if (c->inner_layer[l] >= 0) continue;
        int w = c->window[l], first = n - (w - 1) > 0 ? n - (w - 1) : 0; /* the oldest position still needed */
        if ((rc = zc_kvr_i32(r, 0, first, "local layer's first position", &pos0)) ||
            (rc = zc_kvr_i32(r, n - pos0, n - pos0, "local layer's held positions", &held)))
            break;
        if (held > L->cap && (rc = grow(c, L, held))) break;
        size_t bytes = (size_t)held * c->row_bytes;
        if ((rc = zc_kvr_get(r, L->k, bytes, "local K rows")) || (rc = zc_kvr_get(r, L->v, bytes, "local V rows")))
            break;
        L->pos0 = pos0;
        L->held = held;
    }
    if (rc == ZC_OK && c->inner && (rc = c->inner->ops->load(c->inner, r)) == ZC_OK && c->inner->n_tokens != n)
        rc = zc_error(ZC_ERR_FORMAT, "kv state: the global layers hold %d tokens, the local ones %d",
                      c->inner->n_tokens, n);
    if (rc) return rc;
    for (int l = 0; l < base->shape.n_layers; l++) c->n_layer[l] = n;
    base->n_tokens = n;
    return ZC_OK;
}

static const zc_kv_ops WIN_OPS = {"windowed", win_write, win_attend, win_truncate, win_usage, win_destroy,
                                  win_save, win_load};

int zc_kv_create_windowed(const zc_kv_config *cfg, const zc_kv_shape *shape, const int *window, zc_pool *pool,
                          zc_kv_cache **out) {
    *out = NULL;
    int n_local = 0;
    for (int l = 0; window && l < shape->n_layers; l++) n_local += binds(shape, window, l);
    if (!n_local) return zc_kv_create(cfg, shape, pool, out);
    const zc_kv_policy *p = zc_kv_policy_find(cfg->policy);
    if (p && p->banded && cfg->local_layers == ZC_KV_LOCAL_COMPRESS) { /* the policy holds the windows itself */
        zc_kv_shape banded = *shape;
        banded.band = window;
        return zc_kv_create(cfg, &banded, pool, out);
    }
    kv_win *c = zc_calloc(1, sizeof *c);
    if (!c) return ZC_ERR_NOMEM;
    zc_kv_base_init(&c->base, &WIN_OPS, cfg, shape, pool);
    c->window = window;
    c->type = strcmp(cfg->policy, "fp32") == 0 ? ZC_TYPE_F32 : ZC_TYPE_F16;
    c->row_bytes = (size_t)kv_dim(c) * (c->type == ZC_TYPE_F32 ? 4 : 2);
    c->inner_layer = zc_calloc((size_t)shape->n_layers, sizeof *c->inner_layer);
    c->n_layer = zc_calloc((size_t)shape->n_layers, sizeof *c->n_layer);
    c->loc = zc_calloc((size_t)shape->n_layers, sizeof *c->loc);
    int rc = c->inner_layer && c->n_layer && c->loc ? ZC_OK : ZC_ERR_NOMEM;
    int n_global = 0;
    for (int l = 0; l < shape->n_layers && !rc; l++) {
        c->inner_layer[l] = binds(shape, window, l) ? -1 : n_global++;
        if (c->inner_layer[l] < 0) rc = grow(c, &c->loc[l], 2 * window[l]);
    }
    if (!rc && n_global) {
        zc_kv_shape inner = *shape;
        inner.n_layers = n_global;
        rc = zc_kv_create(cfg, &inner, pool, &c->inner);
    }
    if (rc) {
        win_destroy(&c->base);
        return rc;
    }
    *out = &c->base;
    return ZC_OK;
}
