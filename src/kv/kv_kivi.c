/* The kivi KV cache policy (Liu et al., "KIVI: A Tuning-Free Asymmetric 2bit
 * Quantization for KV Cache", ICML 2024).
 *
 * Keys are quantized per channel over groups of G tokens (G = group_size),
 * values per token over groups of G channels within a head (G capped at
 * head_dim), both at `bits` bits with fp16 (min, step) per group
 * (quant/kvquant.h: channelwise and tokenwise primitives, dense packing).
 * The most recent tokens stay in fp16 (R = residual):
 *   values  leave the window one token at a time: the last min(n, R) tokens
 *           are fp16, the rest quantized;
 *   keys    need a whole group of G tokens, so a group is quantized only once
 *           the fp16 window holds R + G keys: the last R..R+G-1 keys are fp16.
 * After n tokens: quantized keys nkq = floor(max(0, n - R) / G) * G, quantized
 * values nvq = max(0, n - R). Tokens are rounded to fp16 on arrival and
 * quantized from those fp16 values, so the result does not depend on how the
 * tokens were split into writes.
 *
 * Storage, per layer (arrays sized for max_ctx with calloc: pages are
 * committed by the kernel only when written):
 *   kq           [max_ctx][n_kv_heads][krow]   key codes, krow = ceil(head_dim*bits/8)
 *   kmin, kstep  [max_ctx/G + 1][kv_dim]       fp16, per key group and channel
 *   vq           [max_ctx][n_kv_heads][vrow]   value codes, each channel group from a byte boundary
 *   vmin, vstep  [n_kv_heads][vng][max_ctx]    fp16, per (head, channel group) over tokens
 *   kwin         [R + G][kv_dim]               fp16 keys of tokens nkq..n-1
 *   vwin         [R + 1][kv_dim]               fp16 values of tokens nvq..n-1
 *
 * Attention: attn.c's tiled driver walks 64-key tiles; each tile of one KV head is
 * decoded into fp32 scratch (quantized part and window alike) and folded in
 * by the full-precision tile kernel. There is never a dequantized copy of
 * the cache, only one tile per thread.
 */
#include <stdlib.h>
#include <string.h>

#include "attn/attn_impl.h"
#include "attn/attn_tiled.h"
#include "kv/kv.h"
#include "kv/kv_impl.h"
#include "kv/kv_options.h"
#include "quant/kvquant.h"
#include "quant/pack.h"
#include "util/cpu.h"
#include "util/error.h"
#include "util/fp16.h"

typedef struct {
    uint8_t *kq, *vq;
    zc_fp16 *kmin, *kstep, *vmin, *vstep;
    zc_fp16 *kwin, *vwin;
    int n;    /* tokens written */
    int nkq;  /* keys quantized: tokens 0..nkq-1 (a multiple of G) */
    int nvq;  /* values quantized: tokens 0..nvq-1 */
} kivi_layer;

typedef struct {
    zc_kv_cache base;
    int bits, G, R;        /* width, key token group, fp16 residual */
    int kv_dim, hd, n_kv;
    int vg, vng;           /* value channel group (G capped at head_dim) and groups per head */
    size_t vgroup_bytes;   /* bytes of one full value channel group */
    size_t krow, vrow;     /* packed bytes of one (token, head) */
    size_t kstride, vstride; /* one token, all heads: n_kv * krow, n_kv * vrow */
    kivi_layer *layers;
    float *stage;          /* [max(G, ZC_ATTN_BK)][kv_dim] rows on their way into a quantizer */
    int stage_rows;
    zc_attn_scratch scratch;
} kv_kivi;

/* Width of value channel group i of a head. */
static int vgroup_len(const kv_kivi *c, int i) { return i < c->vng - 1 ? c->vg : c->hd - (c->vng - 1) * c->vg; }

static void to_f16(const float *src, zc_fp16 *dst, size_t n) { zc_f32_to_fp16_row(src, dst, n); }

/* Row j of (window ++ new rows), as the fp32 value of its fp16. */
static void stage_row(const kv_kivi *c, const zc_fp16 *win, int wn, const float *x, int j, float *dst) {
    if (j < wn) {
        for (int e = 0; e < c->kv_dim; e++) dst[e] = zc_fp16_to_f32(win[(size_t)j * c->kv_dim + e]);
    } else {
        const float *r = x + (size_t)(j - wn) * c->kv_dim;
        for (int e = 0; e < c->kv_dim; e++) dst[e] = zc_fp16_to_f32(zc_f32_to_fp16(r[e]));
    }
}

/* The window keeps rows [used, wn + n) of (window ++ new rows). */
static void slide_window(const kv_kivi *c, zc_fp16 *win, int wn, const float *x, int n, int used) {
    size_t row = (size_t)c->kv_dim;
    if (used < wn) {
        memmove(win, win + (size_t)used * row, (size_t)(wn - used) * row * sizeof(zc_fp16));
        to_f16(x, win + (size_t)(wn - used) * row, (size_t)n * row);
    } else {
        to_f16(x + (size_t)(used - wn) * row, win, (size_t)(wn + n - used) * row);
    }
}

/* Quantize the keys of the whole groups that leave the window with these n
 * tokens, past the committed ones (nothing else changes); *used = tokens
 * quantized. */
static int quantize_keys(kv_kivi *c, kivi_layer *L, const float *k, int n, int *used) {
    int wn = L->n - L->nkq, total = wn + n;
    int groups = total > c->R ? (total - c->R) / c->G : 0;
    for (int gi = 0; gi < groups; gi++) {
        for (int j = 0; j < c->G; j++) stage_row(c, L->kwin, wn, k, gi * c->G + j, c->stage + (size_t)j * c->kv_dim);
        size_t grp = (size_t)(L->nkq / c->G + gi) * c->kv_dim, t0 = (size_t)L->nkq + (size_t)gi * c->G;
        int rc = zc_chan_params(c->stage, c->kv_dim, NULL, c->G, c->kv_dim, c->bits, L->kmin + grp, L->kstep + grp);
        if (rc) return rc;
        for (int h = 0; h < c->n_kv; h++)
            zc_chan_encode(c->stage + (size_t)h * c->hd, c->kv_dim, NULL, c->G, c->hd, c->bits,
                           L->kmin + grp + (size_t)h * c->hd, L->kstep + grp + (size_t)h * c->hd,
                           L->kq + t0 * c->kstride + (size_t)h * c->krow, c->kstride);
    }
    *used = groups * c->G;
    return ZC_OK;
}

/* Quantize the values of the tokens that leave the window, a stage at a
 * time, past the committed ones; *used = tokens quantized. */
static int quantize_values(kv_kivi *c, kivi_layer *L, const float *v, int n, int *used) {
    int wn = L->n - L->nvq, total = wn + n, cap = c->base.shape.max_ctx;
    int out = total > c->R ? total - c->R : 0;
    for (int j0 = 0; j0 < out; j0 += c->stage_rows) {
        int rows = out - j0 < c->stage_rows ? out - j0 : c->stage_rows;
        for (int j = 0; j < rows; j++) stage_row(c, L->vwin, wn, v, j0 + j, c->stage + (size_t)j * c->kv_dim);
        size_t t0 = (size_t)L->nvq + j0;
        for (int h = 0; h < c->n_kv; h++)
            for (int i = 0; i < c->vng; i++) {
                size_t p = ((size_t)h * c->vng + i) * cap + t0;
                int rc = zc_token_quant(c->stage + (size_t)h * c->hd + (size_t)i * c->vg, c->kv_dim, NULL, rows,
                                        vgroup_len(c, i), c->bits, NULL,
                                        L->vq + t0 * c->vstride + (size_t)h * c->vrow + i * c->vgroup_bytes,
                                        c->vstride, L->vmin + p, L->vstep + p);
                if (rc) return rc;
            }
    }
    *used = out;
    return ZC_OK;
}

static int kivi_write(zc_kv_cache *base, int layer, int pos, int n, const float *k, const float *v) {
    kv_kivi *c = (kv_kivi *)base;
    int rc = zc_kv_check_write(base, layer, pos, n, zc_kv_has_layer(base, layer) ? c->layers[layer].n : -1);
    if (rc) return rc;
    kivi_layer *L = &c->layers[layer];
    /* Quantize first, commit after: the quantizers only write past the
     * committed codes and read the windows, so a refusal (non-finite input)
     * leaves the cache as it was. */
    int kused, vused;
    rc = quantize_keys(c, L, k, n, &kused);
    if (rc == ZC_OK) rc = quantize_values(c, L, v, n, &vused);
    if (rc) return zc_error_prefix(rc, "kv kivi: layer %d tokens %d..%d", layer, pos, pos + n - 1);
    slide_window(c, L->kwin, L->n - L->nkq, k, n, kused);
    slide_window(c, L->vwin, L->n - L->nvq, v, n, vused);
    L->nkq += kused;
    L->nvq += vused;
    L->n = pos + n;
    zc_kv_written(base, layer, L->n);
    return ZC_OK;
}

typedef struct {
    const kv_kivi *c;
    const kivi_layer *L;
    zc_attn_tile_fn kernel;
    int simd;
} layer_view;

/* fp16 rows [n] at stride kv_dim (one head's slice) -> dst [n][hd]. */
static void window_rows(const layer_view *lv, const zc_fp16 *src, int n, float *dst) {
    const kv_kivi *c = lv->c;
    if (lv->simd) {
        zc_attn_f16_rows_avx2(src, (size_t)c->kv_dim, n, c->hd, dst);
        return;
    }
    for (int j = 0; j < n; j++)
        for (int e = 0; e < c->hd; e++) dst[(size_t)j * c->hd + e] = zc_fp16_to_f32(src[(size_t)j * c->kv_dim + e]);
}

/* Keys [a, b) of head g -> kt [b-a][hd]. */
static void key_rows(const layer_view *lv, int g, int a, int b, float *kt) {
    const kv_kivi *c = lv->c;
    const kivi_layer *L = lv->L;
    int t = a;
    while (t < b && t < L->nkq) { /* quantized groups, one run per group */
        int gi = t / c->G, end = (gi + 1) * c->G < b ? (gi + 1) * c->G : b;
        size_t p = (size_t)gi * c->kv_dim + (size_t)g * c->hd;
        zc_chan_decode(L->kq + (size_t)t * c->kstride + (size_t)g * c->krow, c->kstride, end - t, c->hd, c->bits,
                       L->kmin + p, L->kstep + p, kt + (size_t)(t - a) * c->hd, (size_t)c->hd);
        t = end;
    }
    if (t < b) window_rows(lv, L->kwin + (size_t)(t - L->nkq) * c->kv_dim + (size_t)g * c->hd, b - t,
                           kt + (size_t)(t - a) * c->hd);
}

/* Values [a, b) of head g -> vt [b-a][hd]. */
static void value_rows(const layer_view *lv, int g, int a, int b, float *vt) {
    const kv_kivi *c = lv->c;
    const kivi_layer *L = lv->L;
    int q = b < L->nvq ? b : L->nvq, cap = c->base.shape.max_ctx;
    if (a < q)
        for (int i = 0; i < c->vng; i++) {
            size_t p = ((size_t)g * c->vng + i) * cap + a;
            zc_token_decode(L->vq + (size_t)a * c->vstride + (size_t)g * c->vrow + i * c->vgroup_bytes, c->vstride,
                            q - a, vgroup_len(c, i), c->bits, NULL, L->vmin + p, L->vstep + p, vt + (size_t)i * c->vg,
                            (size_t)c->hd);
        }
    int t = a > q ? a : q;
    if (t < b) window_rows(lv, L->vwin + (size_t)(t - L->nvq) * c->kv_dim + (size_t)g * c->hd, b - t,
                           vt + (size_t)(t - a) * c->hd);
}

/* Keys [t0, t0+nk) of KV heads g0..g0+ng-1, one head at a time (the tmp
 * tiles are reused): the keys any query sees decoded to fp32 once for all G
 * query heads of the group, then the full-precision tile kernel. */
static void kivi_tile(const void *ctx, int g0, int ng, int t0, int nk, const zc_attn_rows *rows, float *tmp) {
    const layer_view *lv = ctx;
    int hd = lv->c->hd, nq = rows->n_rows / rows->G, nmax = 0; /* keys of the tile any query sees */
    for (int i = 0; i < nq; i++)
        if (rows->nvalid[i] > nmax) nmax = rows->nvalid[i];
    if (!nmax) return;
    (void)nk;
    float *kt = tmp, *vt = tmp + (size_t)ZC_ATTN_BK * hd; /* [BK][hd] each */
    for (int i = 0; i < ng; i++) {
        const zc_attn_rows *r = &rows[i];
        key_rows(lv, g0 + i, t0, t0 + nmax, kt);
        value_rows(lv, g0 + i, t0, t0 + nmax, vt);
        lv->kernel(r->n_rows, r->G, r->nvalid, r->q, hd, nmax, kt, (size_t)hd, vt, (size_t)hd, r->s, r->m, r->l,
                   r->acc);
    }
}

static int kivi_attend(zc_kv_cache *base, int layer, int pos, int n, const float *q, float *out) {
    kv_kivi *c = (kv_kivi *)base;
    int rc = zc_kv_check_read(base, layer, pos, n, zc_kv_has_layer(base, layer) ? c->layers[layer].n : -1);
    if (rc) return rc;
    int simd = zc_cpu_has_avx2();
    layer_view lv = {c, &c->layers[layer], simd ? zc_attn_tile_avx2 : zc_attn_tile_scalar, simd};
    zc_attn_source src = {
        .ctx = &lv, .n_heads = base->shape.n_heads, .n_kv_heads = c->n_kv, .head_dim = c->hd,
        .tmp_floats = 2 * (size_t)ZC_ATTN_BK * c->hd, .tile = kivi_tile,
    };
    return zc_attn_tiled(base->pool, &src, q, n, pos, pos + n, out, NULL, &c->scratch);
}

static int kivi_truncate(zc_kv_cache *base, int n_keep) {
    kv_kivi *c = (kv_kivi *)base;
    /* Nothing to drop only if every layer is there: a write that failed in
     * a middle layer leaves the layers before it one batch ahead. */
    int all_at = n_keep == base->n_tokens;
    for (int l = 0; all_at && l < base->shape.n_layers; l++) all_at = c->layers[l].n == n_keep;
    if (all_at) return ZC_OK;
    if (n_keep != 0)
        return zc_error(ZC_ERR_UNSUPPORTED, "kv kivi: cannot keep %d of %d tokens: quantized groups cannot be split "
                        "(only truncation to 0 is supported)", n_keep, base->n_tokens);
    for (int l = 0; l < base->shape.n_layers; l++) c->layers[l].n = c->layers[l].nkq = c->layers[l].nvq = 0;
    base->n_tokens = 0;
    return ZC_OK;
}

static void kivi_usage(const zc_kv_cache *base, zc_kv_usage *u) {
    const kv_kivi *c = (const kv_kivi *)base;
    memset(u, 0, sizeof *u);
    for (int l = 0; l < base->shape.n_layers; l++) {
        const kivi_layer *L = &c->layers[l];
        u->codes += (size_t)L->nkq * c->kstride + (size_t)L->nvq * c->vstride;
        u->params += 2 * sizeof(zc_fp16) * ((size_t)(L->nkq / c->G) * c->kv_dim + (size_t)L->nvq * c->n_kv * c->vng);
        u->window += sizeof(zc_fp16) * (size_t)c->kv_dim * (size_t)((L->n - L->nkq) + (L->n - L->nvq));
    }
    u->total = u->codes + u->params + u->window;
    u->n_tokens = base->n_tokens;
    u->elements = 2 * (int64_t)base->n_tokens * base->shape.n_layers * c->kv_dim;
}

static void kivi_destroy(zc_kv_cache *base) {
    kv_kivi *c = (kv_kivi *)base;
    if (c->layers)
        for (int l = 0; l < base->shape.n_layers; l++) {
            kivi_layer *L = &c->layers[l];
            free(L->kq), free(L->vq), free(L->kmin), free(L->kstep), free(L->vmin), free(L->vstep);
            free(L->kwin), free(L->vwin);
        }
    free(c->layers);
    free(c->stage);
    zc_attn_scratch_free(&c->scratch);
    free(c);
}

/* State, per layer: n, nkq, nvq (int32; the two follow from n, see the top
 * of the file, and are checked on load); key codes [nkq][kstride] and their
 * kmin, kstep [nkq/G][kv_dim]; value codes [nvq][vstride]; per (KV head,
 * channel group) the vmin and vstep of the nvq quantized tokens; the fp16
 * windows kwin [n - nkq][kv_dim] and vwin [n - nvq][kv_dim]. */
typedef struct {
    void *p;
    size_t bytes;
} kivi_part;

/* The parts of layer L holding n tokens (nkq, nvq as set), in file order;
 * the per-(head, group) value parameters are strided and handled apart. */
static int kivi_parts(const kv_kivi *c, const kivi_layer *L, kivi_part out[7]) {
    size_t kg = (size_t)(L->nkq / c->G) * c->kv_dim * sizeof(zc_fp16), h = sizeof(zc_fp16) * (size_t)c->kv_dim;
    kivi_part parts[7] = {{L->kq, (size_t)L->nkq * c->kstride}, {L->kmin, kg}, {L->kstep, kg},
                          {L->vq, (size_t)L->nvq * c->vstride}, {NULL, 0},
                          {L->kwin, (size_t)(L->n - L->nkq) * h}, {L->vwin, (size_t)(L->n - L->nvq) * h}};
    memcpy(out, parts, sizeof parts);
    return 7;
}

static int kivi_save(const zc_kv_cache *base, zc_kv_writer *w) {
    const kv_kivi *c = (const kv_kivi *)base;
    size_t cap = (size_t)base->shape.max_ctx;
    int rc = ZC_OK;
    for (int l = 0; rc == ZC_OK && l < base->shape.n_layers; l++) {
        const kivi_layer *L = &c->layers[l];
        int32_t head[3] = {L->n, L->nkq, L->nvq};
        kivi_part parts[7];
        int n = kivi_parts(c, L, parts);
        rc = zc_kvw_put(w, head, sizeof head);
        for (int i = 0; rc == ZC_OK && i < n; i++) {
            if (parts[i].p) {
                rc = zc_kvw_put(w, parts[i].p, parts[i].bytes);
                continue;
            }
            for (size_t hg = 0; rc == ZC_OK && hg < (size_t)c->n_kv * c->vng; hg++)
                if ((rc = zc_kvw_put(w, L->vmin + hg * cap, (size_t)L->nvq * sizeof(zc_fp16))) == ZC_OK)
                    rc = zc_kvw_put(w, L->vstep + hg * cap, (size_t)L->nvq * sizeof(zc_fp16));
        }
    }
    return rc;
}

static int kivi_load(zc_kv_cache *base, zc_kv_reader *r) {
    kv_kivi *c = (kv_kivi *)base;
    size_t cap = (size_t)base->shape.max_ctx;
    int rc;
    for (int l = 0; l < base->shape.n_layers; l++) {
        kivi_layer *L = &c->layers[l];
        int32_t n, nkq, nvq;
        if ((rc = zc_kvr_i32(r, 0, base->shape.max_ctx, "token count", &n))) return rc;
        int past = n > c->R ? n - c->R : 0; /* the counts the writes leave after n tokens */
        if ((rc = zc_kvr_i32(r, past / c->G * c->G, past / c->G * c->G, "quantized keys", &nkq)) ||
            (rc = zc_kvr_i32(r, past, past, "quantized values", &nvq)))
            return rc;
        if (l > 0 && n != c->layers[0].n) return zc_error(ZC_ERR_FORMAT, "kv kivi: layers hold different token counts");
        L->n = n;
        L->nkq = nkq;
        L->nvq = nvq;
        kivi_part parts[7];
        int np = kivi_parts(c, L, parts);
        for (int i = 0; i < np; i++) {
            if (parts[i].p) {
                if ((rc = zc_kvr_get(r, parts[i].p, parts[i].bytes, "kivi state"))) return rc;
                continue;
            }
            for (size_t hg = 0; hg < (size_t)c->n_kv * c->vng; hg++)
                if ((rc = zc_kvr_get(r, L->vmin + hg * cap, (size_t)nvq * sizeof(zc_fp16), "value minima")) ||
                    (rc = zc_kvr_get(r, L->vstep + hg * cap, (size_t)nvq * sizeof(zc_fp16), "value steps")))
                    return rc;
        }
    }
    base->n_tokens = c->layers[base->shape.n_layers - 1].n;
    return ZC_OK;
}

static const zc_kv_ops KIVI_OPS = {"kivi", kivi_write, kivi_attend, kivi_truncate, kivi_usage, kivi_destroy,
                                   kivi_save, kivi_load};

static int create_kivi(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out) {
    int bits = zc_kv_config_bits(cfg);
    if (bits < 1 || bits > 8) return zc_error(ZC_ERR_ARG, "kv kivi: %d bits (1..8)", bits);
    if (cfg->group_size < 1 || cfg->group_size > shape->max_ctx)
        return zc_error(ZC_ERR_ARG, "kv kivi: group size %d outside 1..%d (the context)", cfg->group_size,
                        shape->max_ctx);
    if (cfg->residual < 0 || cfg->residual > shape->max_ctx)
        return zc_error(ZC_ERR_ARG, "kv kivi: residual %d outside 0..%d (the context)", cfg->residual, shape->max_ctx);
    kv_kivi *c = zc_calloc(1, sizeof *c);
    if (!c) return ZC_ERR_NOMEM;
    c->base.ops = &KIVI_OPS;
    c->base.shape = *shape;
    c->base.cfg = *cfg;
    c->base.pool = pool;
    c->bits = bits;
    c->G = cfg->group_size;
    c->R = cfg->residual;
    c->hd = shape->head_dim;
    c->n_kv = shape->n_kv_heads;
    c->kv_dim = c->n_kv * c->hd;
    c->vg = c->G < c->hd ? c->G : c->hd;
    c->vng = (c->hd + c->vg - 1) / c->vg;
    c->vgroup_bytes = zc_pack_bytes((size_t)c->vg, c->bits);
    c->krow = zc_pack_bytes((size_t)c->hd, c->bits);
    c->vrow = (size_t)(c->vng - 1) * c->vgroup_bytes + zc_pack_bytes((size_t)vgroup_len(c, c->vng - 1), c->bits);
    c->kstride = (size_t)c->n_kv * c->krow;
    c->vstride = (size_t)c->n_kv * c->vrow;
    c->stage_rows = c->G > ZC_ATTN_BK ? c->G : ZC_ATTN_BK;
    size_t cap = (size_t)shape->max_ctx, groups = cap / (size_t)c->G + 1, vparams;
    if (zc_mul_size(cap, c->kstride + c->vstride, &(size_t){0}) ||
        zc_mul_size(cap, (size_t)c->n_kv * c->vng, &vparams) || zc_mul_size(groups, (size_t)c->kv_dim, &(size_t){0})) {
        kivi_destroy(&c->base);
        return zc_error(ZC_ERR_LIMIT, "kv kivi: a context of %d tokens is too large", shape->max_ctx);
    }
    c->layers = zc_calloc((size_t)shape->n_layers, sizeof *c->layers);
    c->stage = zc_calloc((size_t)c->stage_rows * c->kv_dim, sizeof(float));
    int ok = c->layers && c->stage;
    for (int l = 0; ok && l < shape->n_layers; l++) {
        kivi_layer *L = &c->layers[l];
        L->kq = zc_calloc(cap, c->kstride);
        L->vq = zc_calloc(cap, c->vstride);
        L->kmin = zc_calloc(groups * c->kv_dim, sizeof(zc_fp16));
        L->kstep = zc_calloc(groups * c->kv_dim, sizeof(zc_fp16));
        L->vmin = zc_calloc(vparams, sizeof(zc_fp16));
        L->vstep = zc_calloc(vparams, sizeof(zc_fp16));
        L->kwin = zc_calloc((size_t)(c->R + c->G) * c->kv_dim, sizeof(zc_fp16));
        L->vwin = zc_calloc((size_t)(c->R + 1) * c->kv_dim, sizeof(zc_fp16));
        ok = L->kq && L->vq && L->kmin && L->kstep && L->vmin && L->vstep && L->kwin && L->vwin;
    }
    if (!ok) {
        kivi_destroy(&c->base);
        return ZC_ERR_NOMEM;
    }
    *out = &c->base;
    return ZC_OK;
}

/* ---- Options (kv_options.h) ---------------------------------------------- */
static const zc_kv_option KIVI_OPTIONS[] = {
    {.name = "group", .type = ZC_KV_OPT_INT, ZC_KV_FIELD(group_size), .lo = 1, .hi = 1 << 16, .def = 32,
     .help = "tokens per key quantization group"},
    {.name = "residual", .type = ZC_KV_OPT_INT, ZC_KV_FIELD(residual), .lo = 0, .hi = 1 << 20, .def = 32,
     .help = "most recent tokens kept in fp16"},
    {0},
};

static const zc_kv_shown KIVI_SHOWN[] = {
    {.fn = zc_kv_show_width},
    ZC_KV_SHOW("group", "group {}"),
    ZC_KV_SHOW("residual", "fp16 residual {}"),
    {0},
};

/* Width 2 by default: KIVI-2 is the paper's reference point. */
const zc_kv_policy zc_kv_policy_kivi = {"kivi", create_kivi, KIVI_OPTIONS, KIVI_SHOWN, 2, zc_kv_budget_width, 0};
