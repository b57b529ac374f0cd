/* The h2o KV cache policy: Heavy-Hitter Oracle eviction (Zhang et al.,
 * NeurIPS 2023). Evicted tokens are gone: they take no memory and no part in
 * attention (the ZipCache reference code's "h2o" mode zeroes K/V instead, and
 * a zero key still gets weight exp(0); this is the real thing).
 *
 * Budget: after each attended block the cache keeps, per KV head,
 *   budget = max(1, floor(budget_ratio * n_seen))   n_seen = tokens written so far
 * tokens (so with the default 0.2 it holds a fifth of the context as the
 * context grows), split as in the H2O paper:
 *   recent = budget / 2      the most recent tokens, always kept
 *   heavy  = budget - recent the rest with the highest accumulated attention;
 *                            the first min(sinks, heavy) positions are kept
 *                            ahead of them (--kv-sinks, default 0)
 * Ties in score evict the older token first. Between a write and the attend
 * that follows it the new block is held on top of the budget: it has to be
 * attended before anything can be said about it.
 *
 * Scores: the accumulated attention of each kept token, per KV head summed
 * over its G query heads, from every query that ever saw it (prompt and
 * decode). They need explicit softmax rows, which flash attention never
 * forms: attend() runs zc_attn_forward with the log-sum-exp of every row,
 * then zc_attn_colsum recomputes each row p = exp(q.k/sqrt(d) - lse) against
 * the kept keys and adds it up (one more pass over K per block).
 *
 * Storage, per layer (max_ctx slots reserved with calloc, pages committed by
 * the kernel on first touch):
 *   k, v   [max_ctx][n_kv_heads*head_dim] fp16   slot s of KV head g at s*kv_dim + g*head_dim
 *   score  [n_kv_heads][max_ctx] float           accumulated attention of the slot
 *   pos    [n_kv_heads][max_ctx] int32           its position (recency, sinks)
 * Every head keeps the same number of slots, so the K/V arrays stay
 * token-major and zc_attn_forward runs on them directly; heads differ in which
 * position a slot holds. Eviction fills each hole with the head's last slot
 * (no compaction): attention does not care about the order of the old
 * tokens, and each new block is appended after them in order, which is all
 * the causal mask needs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "kv/kv.h"
#include "kv/kv_impl.h"
#include "kv/kv_options.h"
#include "quant/ggml_blocks.h"
#include "util/error.h"
#include "util/fp16.h"

typedef struct {
    zc_fp16 *k, *v;  /* [max_ctx][kv_dim] */
    float *score;    /* [n_kv_heads][max_ctx] */
    int32_t *pos;    /* [n_kv_heads][max_ctx] */
    int n_slots;     /* slots held by every head */
    int n_seen;      /* tokens written */
    int n_new;       /* tokens written and not yet attended (the last n_new slots) */
} h2o_layer;

/* An eviction candidate. */
typedef struct {
    float score;
    int32_t pos, slot;
} cand;

typedef struct {
    zc_kv_cache base;
    int kv_dim;
    double ratio;         /* budget_ratio, rounded to 1e-6 so that 0.7 means 0.7 */
    h2o_layer *layers;    /* [n_layers] */
    int n_threads;
    /* per-thread scratch of the eviction tasks */
    cand *cands;          /* [threads][max_ctx] */
    uint8_t *marks;       /* [threads][max_ctx] */
    float *lse;           /* [q_cap][n_heads] log-sum-exp of each query row of a block */
    int *rows;            /* [q_cap] 0, 1, 2, ...: every query of a block is scored */
    size_t q_cap;
    zc_attn_scratch scratch;
} kv_h2o;

static int budget_for(const kv_h2o *c, int n_seen) {
    int b = (int)floor(c->ratio * n_seen + 1e-9);
    return b < 1 ? 1 : b;
}

static int h2o_write(zc_kv_cache *base, int layer, int pos, int n, const float *k, const float *v) {
    kv_h2o *c = (kv_h2o *)base;
    int rc = zc_kv_check_write(base, layer, pos, n, zc_kv_has_layer(base, layer) ? c->layers[layer].n_seen : -1);
    if (rc) return rc;
    h2o_layer *L = &c->layers[layer];
    /* Slots never outnumber positions, so the new block fits after them. */
    size_t first = (size_t)L->n_slots * c->kv_dim, elems = (size_t)n * c->kv_dim;
    zc_f32_to_fp16_row(k, L->k + first, elems);
    zc_f32_to_fp16_row(v, L->v + first, elems);
    for (int g = 0; g < base->shape.n_kv_heads; g++)
        for (int i = 0; i < n; i++) {
            size_t s = (size_t)g * base->shape.max_ctx + L->n_slots + i;
            L->score[s] = 0.0f;
            L->pos[s] = pos + i;
        }
    L->n_slots += n;
    L->n_seen += n;
    L->n_new += n;
    zc_kv_written(base, layer, L->n_seen);
    return ZC_OK;
}

static int cand_less(const cand *a, const cand *b) {
    return a->score < b->score || (a->score == b->score && a->pos < b->pos);
}

static void cand_swap(cand *a, cand *b) {
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Reorder c[0..n) so that its k smallest (by cand_less) come first. */
static void select_smallest(cand *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2; /* median of three as the pivot, moved to hi */
        if (cand_less(&c[mid], &c[lo])) cand_swap(&c[mid], &c[lo]);
        if (cand_less(&c[hi], &c[lo])) cand_swap(&c[hi], &c[lo]);
        if (cand_less(&c[mid], &c[hi])) cand_swap(&c[mid], &c[hi]);
        cand pivot = c[hi];
        int store = lo;
        for (int i = lo; i < hi; i++)
            if (cand_less(&c[i], &pivot)) cand_swap(&c[i], &c[store++]);
        cand_swap(&c[store], &c[hi]);
        if (store == k - 1 || store == k) return; /* c[0..k) are the k smallest */
        if (store < k) lo = store + 1;
        else hi = store - 1;
    }
}

typedef struct {
    kv_h2o *c;
    h2o_layer *L;
    int budget;
} task_ctx;

/* Evict head g's slots down to the budget. */
static void evict(const task_ctx *t, int g, cand *cands, uint8_t *marks) {
    const kv_h2o *c = t->c;
    h2o_layer *L = t->L;
    int hd = c->base.shape.head_dim, cap = c->base.shape.max_ctx;
    int excess = L->n_slots - t->budget;
    if (excess <= 0) return;
    int recent = t->budget / 2, heavy = t->budget - recent;
    int sinks = c->base.cfg.sinks < heavy ? c->base.cfg.sinks : heavy;
    int recent_from = L->n_seen - recent; /* positions >= this are recent */
    float *score = L->score + (size_t)g * cap;
    int32_t *pos = L->pos + (size_t)g * cap;
    int nc = 0;
    for (int s = 0; s < L->n_slots; s++)
        if (pos[s] >= sinks && pos[s] < recent_from) cands[nc++] = (cand){score[s], pos[s], s};
    /* recent and sink slots number at most recent + sinks <= budget, so there
     * are at least `excess` candidates */
    select_smallest(cands, nc, excess);
    memset(marks, 0, (size_t)L->n_slots);
    for (int i = 0; i < excess; i++) marks[cands[i].slot] = 1;
    /* Fill each hole, highest first, with the current last slot: every slot
     * above the hole is already a kept one. */
    int last = L->n_slots - 1;
    for (int s = L->n_slots - 1; s >= 0; s--) {
        if (!marks[s]) continue;
        if (s != last) {
            size_t dst = (size_t)s * c->kv_dim + (size_t)g * hd, src = (size_t)last * c->kv_dim + (size_t)g * hd;
            memcpy(L->k + dst, L->k + src, (size_t)hd * sizeof(zc_fp16));
            memcpy(L->v + dst, L->v + src, (size_t)hd * sizeof(zc_fp16));
            score[s] = score[last];
            pos[s] = pos[last];
        }
        last--;
    }
}

static void evict_task(void *ctx, int g, int thread) {
    const task_ctx *t = ctx;
    int cap = t->c->base.shape.max_ctx;
    evict(t, g, t->c->cands + (size_t)thread * cap, t->c->marks + (size_t)thread * cap);
}

static int h2o_attend(zc_kv_cache *base, int layer, int pos, int n, const float *q, float *out) {
    kv_h2o *c = (kv_h2o *)base;
    int rc = zc_kv_check_read(base, layer, pos, n, zc_kv_has_layer(base, layer) ? c->layers[layer].n_seen : -1);
    if (rc) return rc;
    h2o_layer *L = &c->layers[layer];
    if (n != L->n_new || pos != L->n_seen - L->n_new)
        return zc_error(ZC_ERR_ARG, "kv h2o: attention at %d..%d of layer %d, but h2o attends each written block "
                        "once, right after writing it (unattended: %d..%d)", pos, pos + n - 1, layer,
                        L->n_seen - L->n_new, L->n_seen - 1);
    if (n == 0) return ZC_OK;
    if ((size_t)n > c->q_cap) { /* grown for a longer block; decode steps reuse it */
        float *lse = zc_realloc(c->lse, (size_t)n * base->shape.n_heads * sizeof(float));
        if (lse) c->lse = lse;
        int *rows = lse ? zc_realloc(c->rows, (size_t)n * sizeof(int)) : NULL;
        if (!rows) return ZC_ERR_NOMEM;
        c->rows = rows;
        for (size_t i = c->q_cap; i < (size_t)n; i++) c->rows[i] = (int)i;
        c->q_cap = (size_t)n;
    }
    zc_attn_dims d = {base->shape.n_heads, base->shape.n_kv_heads, base->shape.head_dim};
    int first = L->n_slots - n; /* slot of query 0 */
    rc = zc_attn_forward(base->pool, &d, q, n, first, L->k, L->v, ZC_TYPE_F16, (size_t)c->kv_dim, L->n_slots, out,
                         c->lse, &c->scratch);
    /* every query's softmax row, recomputed from its lse, added to its KV head's slot scores */
    if (rc == ZC_OK)
        rc = zc_attn_colsum(base->pool, &d, q, c->rows, n, first, L->k, ZC_TYPE_F16, (size_t)c->kv_dim, L->n_slots,
                            c->lse, L->score, (size_t)base->shape.max_ctx, &c->scratch);
    if (rc) return rc;
    task_ctx t = {c, L, budget_for(c, L->n_seen)};
    zc_pool_run(base->pool, base->shape.n_kv_heads, evict_task, &t);
    if (L->n_slots > t.budget) L->n_slots = t.budget;
    L->n_new = 0;
    return ZC_OK;
}

static int h2o_truncate(zc_kv_cache *base, int n_keep) {
    kv_h2o *c = (kv_h2o *)base;
    /* Nothing to drop only if every layer is there: a write that failed in
     * a middle layer leaves the layers before it one batch ahead. */
    int all_at = n_keep == base->n_tokens;
    for (int l = 0; all_at && l < base->shape.n_layers; l++) all_at = c->layers[l].n_seen == n_keep;
    if (all_at) return ZC_OK;
    if (n_keep != 0)
        return zc_error(ZC_ERR_UNSUPPORTED, "kv h2o: cannot keep %d of %d tokens: evicted tokens are gone (only "
                        "truncation to 0 is supported)", n_keep, base->n_tokens);
    for (int l = 0; l < base->shape.n_layers; l++) c->layers[l].n_slots = c->layers[l].n_seen = c->layers[l].n_new = 0;
    base->n_tokens = 0;
    return ZC_OK;
}

static void h2o_usage(const zc_kv_cache *base, zc_kv_usage *u) {
    const kv_h2o *c = (const kv_h2o *)base;
    memset(u, 0, sizeof *u);
    for (int l = 0; l < base->shape.n_layers; l++) {
        size_t slots = (size_t)c->layers[l].n_slots;
        u->codes += 2 * slots * c->kv_dim * sizeof(zc_fp16);                  /* kept K and V */
        u->index += slots * base->shape.n_kv_heads * sizeof(int32_t);         /* positions */
        u->other += slots * base->shape.n_kv_heads * sizeof(float);           /* accumulated scores */
    }
    u->total = u->codes + u->index + u->other;
    u->n_tokens = base->n_tokens;
    u->elements = 2 * (int64_t)base->n_tokens * base->shape.n_layers * c->kv_dim;
}

static void h2o_destroy(zc_kv_cache *base) {
    kv_h2o *c = (kv_h2o *)base;
    if (c->layers)
        for (int l = 0; l < base->shape.n_layers; l++) {
            free(c->layers[l].k);
            free(c->layers[l].v);
            free(c->layers[l].score);
            free(c->layers[l].pos);
        }
    free(c->layers);
    free(c->cands);
    free(c->marks);
    free(c->lse);
    free(c->rows);
    zc_attn_scratch_free(&c->scratch);
    free(c);
}

/* State, per layer: n_slots, n_seen, n_new; the kept K and V rows
 * [n_slots][kv_dim] fp16; per KV head the slots' scores and positions
 * [n_slots]. */
static int h2o_save(const zc_kv_cache *base, zc_kv_writer *w) {
    const kv_h2o *c = (const kv_h2o *)base;
    int rc = ZC_OK;
    for (int l = 0; rc == ZC_OK && l < base->shape.n_layers; l++) {
        const h2o_layer *L = &c->layers[l];
        int32_t head[3] = {L->n_slots, L->n_seen, L->n_new};
        size_t rows = (size_t)L->n_slots * c->kv_dim * sizeof(zc_fp16);
        if ((rc = zc_kvw_put(w, head, sizeof head)) || (rc = zc_kvw_put(w, L->k, rows)) || (rc = zc_kvw_put(w, L->v, rows)))
            return rc;
        for (int g = 0; rc == ZC_OK && g < base->shape.n_kv_heads; g++) {
            size_t at = (size_t)g * base->shape.max_ctx;
            if ((rc = zc_kvw_put(w, L->score + at, (size_t)L->n_slots * sizeof(float))) == ZC_OK)
                rc = zc_kvw_put(w, L->pos + at, (size_t)L->n_slots * sizeof(int32_t));
        }
    }
    return rc;
}

static int h2o_load(zc_kv_cache *base, zc_kv_reader *r) {
    kv_h2o *c = (kv_h2o *)base;
    int rc;
    for (int l = 0; l < base->shape.n_layers; l++) {
        h2o_layer *L = &c->layers[l];
        int32_t slots, seen, fresh;
        if ((rc = zc_kvr_i32(r, 0, base->shape.max_ctx, "slot count", &slots)) ||
            (rc = zc_kvr_i32(r, slots, base->shape.max_ctx, "token count", &seen)) ||
            (rc = zc_kvr_i32(r, 0, slots, "unattended count", &fresh)))
            return rc;
        if (l > 0 && seen != c->layers[0].n_seen) return zc_error(ZC_ERR_FORMAT, "kv h2o: layers hold different token counts");
        size_t rows = (size_t)slots * c->kv_dim * sizeof(zc_fp16);
        if ((rc = zc_kvr_get(r, L->k, rows, "K rows")) || (rc = zc_kvr_get(r, L->v, rows, "V rows"))) return rc;
        for (int g = 0; g < base->shape.n_kv_heads; g++) {
            size_t at = (size_t)g * base->shape.max_ctx;
            if ((rc = zc_kvr_get(r, L->score + at, (size_t)slots * sizeof(float), "scores")) ||
                (rc = zc_kvr_get(r, L->pos + at, (size_t)slots * sizeof(int32_t), "positions")))
                return rc;
            for (int s = 0; s < slots; s++)
                if (L->pos[at + s] < 0 || L->pos[at + s] >= seen)
                    return zc_error(ZC_ERR_FORMAT, "kv h2o: slot position %d outside [0, %d)", L->pos[at + s], seen);
        }
        L->n_slots = slots;
        L->n_seen = seen;
        L->n_new = fresh;
    }
    base->n_tokens = c->layers[base->shape.n_layers - 1].n_seen;
    return ZC_OK;
}

static const zc_kv_ops H2O_OPS = {"h2o", h2o_write, h2o_attend, h2o_truncate, h2o_usage, h2o_destroy, h2o_save, h2o_load};

static int create_h2o(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out) {
    if (!(cfg->budget_ratio > 0.0f && cfg->budget_ratio <= 1.0f))
        return zc_error(ZC_ERR_ARG, "kv h2o: budget ratio %g is not in (0, 1]", (double)cfg->budget_ratio);
    if (cfg->sinks < 0) return zc_error(ZC_ERR_ARG, "kv h2o: %d sinks", cfg->sinks);
    kv_h2o *c = zc_calloc(1, sizeof *c);
    if (!c) return ZC_ERR_NOMEM;
    c->base.ops = &H2O_OPS;
    c->base.shape = *shape;
    c->base.cfg = *cfg;
    c->base.pool = pool;
    c->kv_dim = shape->n_kv_heads * shape->head_dim;
    c->ratio = round((double)cfg->budget_ratio * 1e6) / 1e6;
    c->n_threads = zc_pool_size(pool);
    size_t cap = (size_t)shape->max_ctx, per_head;
    if (zc_mul_size(cap, (size_t)c->kv_dim, &(size_t){0}) || zc_mul_size(cap, (size_t)shape->n_kv_heads, &per_head)) {
        h2o_destroy(&c->base);
        return zc_error(ZC_ERR_LIMIT, "kv h2o: a context of %d tokens is too large", shape->max_ctx);
    }
    c->layers = zc_calloc((size_t)shape->n_layers, sizeof *c->layers);
    c->cands = zc_calloc((size_t)c->n_threads * cap, sizeof(cand));
    c->marks = zc_calloc((size_t)c->n_threads, cap);
    int ok = c->layers && c->cands && c->marks;
    for (int l = 0; ok && l < shape->n_layers; l++) {
        h2o_layer *L = &c->layers[l];
        L->k = zc_calloc(cap * c->kv_dim, sizeof(zc_fp16));
        L->v = zc_calloc(cap * c->kv_dim, sizeof(zc_fp16));
        L->score = zc_calloc(per_head, sizeof(float));
        L->pos = zc_calloc(per_head, sizeof(int32_t));
        ok = L->k && L->v && L->score && L->pos;
    }
    if (!ok) {
        h2o_destroy(&c->base);
        return ZC_ERR_NOMEM;
    }
    *out = &c->base;
    return ZC_OK;
}

/* ---- Options (kv_options.h) ---------------------------------------------- */
static const zc_kv_option H2O_OPTIONS[] = {
    {.name = "budget-ratio", .type = ZC_KV_OPT_FLOAT, ZC_KV_FIELD(budget_ratio), .lo = 0, .hi = 1, .lo_open = 1,
     .def = 0.2, .help = "fraction of the tokens kept (heavy hitters and recent ones)"},
    {.name = "sinks", .type = ZC_KV_OPT_INT, ZC_KV_FIELD(sinks), .lo = 0, .hi = 1 << 20, .def = 0,
     .help = "first N tokens never evicted"},
    {0},
};

static const zc_kv_shown H2O_SHOWN[] = {
    ZC_KV_SHOW("budget-ratio", "keep {} of tokens"),
    ZC_KV_SHOW("sinks", "sinks {}"),
    {0},
};

/* Kept tokens stay fp16 (16 bits each), evicted ones cost nothing. */
static void h2o_budget(zc_kv_config *cfg, double bits) {
    double keep = bits / 16.0;
    cfg->budget_ratio = (float)(keep > 1 ? 1 : keep);
}

const zc_kv_policy zc_kv_policy_h2o = {"h2o", create_h2o, H2O_OPTIONS, H2O_SHOWN, 0, h2o_budget, 0};
