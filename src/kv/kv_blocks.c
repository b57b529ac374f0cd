/* The q8_0 and q4_0 KV cache policies: llama.cpp's per-token block formats.
 *
 * Storage, per policy:
 *   K, V  [n_layers][max_ctx][n_kv_heads][nb] blocks, nb = head_dim / 32
 * Every token's K and V rows are quantized on write, 32 elements along
 * head_dim per block, exactly as llama.cpp's set_rows does; the blocks are
 * bit-exact GGUF blocks (zc_quantize_row). A q8_0 block is 34 bytes (fp16
 * scale + 32 int8), a q4_0 block 18 bytes (fp16 scale + 32 nibbles): 8.5 and
 * 4.5 bits per element.
 *
 * The arrays are reserved for max_ctx tokens with one calloc: glibc serves
 * large requests with fresh anonymous mappings whose pages the kernel
 * commits only when first written, so the memory actually held grows with
 * the tokens stored and the decode loop never allocates.
 *
 * q4_0r is q4_0 with every K and V row of a head rotated by the orthonormal
 * Walsh-Hadamard matrix before quantization (quant/hadamard.h), what
 * llama.cpp does to its quantized caches by default (PR #21038): the query
 * is rotated instead of the keys (q.k = Hq.Hk) and the attention output is
 * rotated back (sum p Hv = H sum p v). head_dim must be a power of two.
 *
 * Attention (attn_tiled.h drives the work split): the query is quantized to
 * q8_0 blocks and K.q is an integer dot product per block, as ggml does (K
 * is never dequantized: a tile's codes are unpacked to int8 once for all G
 * query heads of its KV head); each V tile is dequantized once into scratch
 * for those G heads before the p-weighted accumulation.
 */
#include <stdlib.h>
#include <string.h>

#include "attn/attn_impl.h"
#include "attn/attn_tiled.h"
#include "kv/kv.h"
#include "kv/kv_impl.h"
#include "kv/kv_options.h"
#include "kv/kv_blocks.h"
#include "quant/hadamard.h"
#include "util/cpu.h"
#include "util/error.h"
#include "util/fp16.h"

/* ---- Scalar kernels (the reference for the AVX2 ones) -------------------- */

static void unpack_keys_scalar(int type, const uint8_t *k, size_t kstride, int n, int nb, int8_t *kc, float *dk) {
    for (int j = 0; j < n; j++) {
        const uint8_t *row = k + (size_t)j * kstride;
        for (int b = 0; b < nb; b++) {
            int8_t *o = kc + ((size_t)j * nb + b) * 32;
            if (type == ZC_TYPE_Q8_0) {
                const zc_block_q8_0 *x = (const zc_block_q8_0 *)row + b;
                memcpy(o, x->qs, 32);
                dk[b * ZC_ATTN_BK + j] = zc_fp16_to_f32(x->d);
            } else {
                const zc_block_q4_0 *x = (const zc_block_q4_0 *)row + b;
                for (int i = 0; i < 16; i++) {
                    o[i] = (int8_t)((x->qs[i] & 15) - 8);
                    o[i + 16] = (int8_t)((x->qs[i] >> 4) - 8);
                }
                dk[b * ZC_ATTN_BK + j] = zc_fp16_to_f32(x->d);
            }
        }
    }
}

static void scores_scalar(const zc_block_q8_0 *qx, const int8_t *kc, const float *dk, int n, int nb, float *s) {
    for (int j = 0; j < n; j++) {
        float sum = 0.0f;
        for (int b = 0; b < nb; b++) {
            const int8_t *x = kc + ((size_t)j * nb + b) * 32, *y = qx[b].qs;
            int isum = 0;
            for (int i = 0; i < 32; i++) isum += x[i] * y[i];
            sum += (float)isum * (dk[b * ZC_ATTN_BK + j] * zc_fp16_to_f32(qx[b].d));
        }
        s[j] = sum;
    }
}

static void dequant_scalar(int type, const uint8_t *v, size_t vstride, int n, int nb, float *out) {
    for (int j = 0; j < n; j++) zc_dequantize_row(type, v + (size_t)j * vstride, out + (size_t)j * nb * 32, nb * 32);
}

static void update_scalar(float *s, int n, const float *vt, int hd, float *m, float *l, float *acc) {
    zc_attn_softmax_step(s, n, m, l, acc, hd);
    for (int j = 0; j < n; j++)
        for (int d = 0; d < hd; d++) acc[d] += s[j] * vt[(size_t)j * hd + d];
}

const zc_kvb_kernels zc_kvb_scalar = {unpack_keys_scalar, scores_scalar, dequant_scalar, update_scalar};

const zc_kvb_kernels *zc_kvb_kernels_get(void) { return zc_cpu_has_avx2() ? &zc_kvb_avx2 : &zc_kvb_scalar; }

/* ---- The policy ------------------------------------------------------------ */

typedef struct {
    zc_kv_cache base;
    int type;            /* ZC_TYPE_Q8_0 or ZC_TYPE_Q4_0 */
    int nb;              /* blocks per (token, KV head): head_dim / 32 */
    size_t block_bytes;  /* 34 or 18 */
    size_t row_bytes;    /* one token of one layer, all KV heads: n_kv_heads * nb * block_bytes */
    uint8_t *k, *v;      /* [n_layers][max_ctx][row_bytes] */
    int *n_layer;        /* [n_layers] tokens written to each layer */
    int rot;             /* q4_0r: rows Hadamard-rotated per head */
    float *rbuf;         /* rot: [rcap] rotated K/V rows before quantization, then rotated queries */
    size_t rcap;         /* floats */
    zc_attn_scratch scratch;
} kv_blocks;

/* c->rbuf holds at least `need` floats (grown once to the largest call, so
 * steady decode does not allocate). */
static int rbuf_reserve(kv_blocks *c, size_t need) {
    if (need <= c->rcap) return ZC_OK;
    float *p = zc_realloc(c->rbuf, need * sizeof(float));
    if (!p) return ZC_ERR_NOMEM;
    c->rbuf = p;
    c->rcap = need;
    return ZC_OK;
}

/* q4_0r: rows [n_rows][head_dim] of x copied to c->rbuf and rotated. */
static int rotated(kv_blocks *c, const float *x, size_t n_rows, const float **out) {
    int hd = c->base.shape.head_dim;
    size_t m = n_rows * (size_t)hd;
    int rc = rbuf_reserve(c, m);
    if (rc) return rc;
    memcpy(c->rbuf, x, m * sizeof(float));
    zc_hadamard_rows(c->rbuf, (size_t)hd, (int)n_rows, hd);
    *out = c->rbuf;
    return ZC_OK;
}

/* One layer as the tile callbacks see it. */
typedef struct {
    const kv_blocks *c;
    const uint8_t *k, *v;  /* the layer's rows [max_ctx][row_bytes] */
    const zc_kvb_kernels *kern;
} layer_view;

static size_t layer_offset(const kv_blocks *c, int layer) {
    return (size_t)layer * (size_t)c->base.shape.max_ctx * c->row_bytes;
}

static int blocks_write(zc_kv_cache *base, int layer, int pos, int n, const float *k, const float *v) {
    kv_blocks *c = (kv_blocks *)base;
    int rc = zc_kv_check_append(base, c->n_layer, layer, pos, n);
    if (rc) return rc;
    /* Blocks never straddle heads (head_dim % 32 == 0), so the n tokens'
     * rows quantize as one run of n * n_kv_heads * head_dim elements. */
    int64_t elems = (int64_t)n * base->shape.n_kv_heads * base->shape.head_dim;
    size_t off = layer_offset(c, layer) + (size_t)pos * c->row_bytes, heads = (size_t)n * base->shape.n_kv_heads;
    if (c->rot && (rc = rotated(c, k, heads, &k)) != ZC_OK) return rc;
    rc = zc_quantize_row(c->type, k, c->k + off, elems);
    if (rc == ZC_OK && c->rot && (rc = rotated(c, v, heads, &v)) != ZC_OK) return rc;
    if (rc == ZC_OK) rc = zc_quantize_row(c->type, v, c->v + off, elems);
    if (rc) return zc_error_prefix(rc, "kv %s", base->ops->name);
    zc_kv_appended(base, c->n_layer, layer, pos, n);
    return ZC_OK;
}

/* Query rows [n_rows][hd] -> q8_0 blocks [n_rows][nb]. */
static void blocks_prepare(const void *ctx, int n_rows, const float *q, void *qx) {
    const layer_view *lv = ctx;
    int hd = lv->c->base.shape.head_dim;
    zc_block_q8_0 *out = qx;
    for (int r = 0; r < n_rows; r++)
        zc_quantize_row(ZC_TYPE_Q8_0, q + (size_t)r * hd, out + (size_t)r * lv->c->nb, hd);
}

/* Keys [t0, t0+nk) of KV heads g0..g0+ng-1, one head at a time (the tmp
 * tiles are reused): the keys any query sees unpacked and their values
 * dequantized once for all G query heads of the group. */
static void blocks_tile(const void *ctx, int g0, int ng, int t0, int nk, const zc_attn_rows *rows, float *tmp) {
    (void)nk;
    const layer_view *lv = ctx;
    const kv_blocks *c = lv->c;
    int hd = c->base.shape.head_dim, nb = c->nb, nq = rows->n_rows / rows->G;
    int nmax = 0; /* keys of the tile any query sees (every head's rows share nvalid) */
    for (int i = 0; i < nq; i++)
        if (rows->nvalid[i] > nmax) nmax = rows->nvalid[i];
    if (!nmax) return;
    float *vt = tmp;                             /* [BK][hd] values */
    float *dk = vt + (size_t)ZC_ATTN_BK * hd;    /* [nb][BK] key block scales */
    int8_t *kc = (int8_t *)(dk + (size_t)nb * ZC_ATTN_BK); /* [BK][hd] key codes */
    for (int i = 0; i < ng; i++) {
        const zc_attn_rows *r = &rows[i];
        size_t off = (size_t)t0 * c->row_bytes + (size_t)(g0 + i) * nb * c->block_bytes;
        lv->kern->unpack_keys(c->type, lv->k + off, c->row_bytes, nmax, nb, kc, dk);
        lv->kern->dequant(c->type, lv->v + off, c->row_bytes, nmax, nb, vt);
        const zc_block_q8_0 *qx = r->qx;
        for (int row = 0; row < r->n_rows; row++) {
            int n = r->nvalid[row / r->G];
            if (!n) continue;
            lv->kern->scores(qx + (size_t)row * nb, kc, dk, n, nb, r->s);
            lv->kern->update(r->s, n, vt, hd, &r->m[row], &r->l[row], r->acc + (size_t)row * hd);
        }
    }
}

static int blocks_attend(zc_kv_cache *base, int layer, int pos, int n, const float *q, float *out) {
    kv_blocks *c = (kv_blocks *)base;
    int rc = zc_kv_check_attend(base, c->n_layer, layer, pos, n);
    if (rc) return rc;
    layer_view lv = {c, c->k + layer_offset(c, layer), c->v + layer_offset(c, layer), zc_kvb_kernels_get()};
    zc_attn_source src = {
        .ctx = &lv, .n_heads = base->shape.n_heads, .n_kv_heads = base->shape.n_kv_heads,
        .head_dim = base->shape.head_dim,
        .tmp_floats = (size_t)ZC_ATTN_BK * (base->shape.head_dim + c->nb + base->shape.head_dim / 4),
        .qx_bytes = (size_t)c->nb * sizeof(zc_block_q8_0), .prepare = blocks_prepare, .tile = blocks_tile,
    };
    size_t rows = (size_t)n * base->shape.n_heads;
    if (c->rot && (rc = rotated(c, q, rows, &q)) != ZC_OK) return rc;
    rc = zc_attn_tiled(base->pool, &src, q, n, pos, pos + n, out, NULL, &c->scratch);
    if (rc == ZC_OK && c->rot) zc_hadamard_rows(out, (size_t)base->shape.head_dim, (int)rows, base->shape.head_dim);
    return rc;
}

static int blocks_truncate(zc_kv_cache *base, int n_keep) {
    return zc_kv_truncate_counts(base, ((kv_blocks *)base)->n_layer, n_keep);
}

static void blocks_usage(const zc_kv_cache *base, zc_kv_usage *u) {
    const kv_blocks *c = (const kv_blocks *)base;
    memset(u, 0, sizeof *u);
    size_t blocks = 0; /* K and V blocks held, all layers */
    for (int l = 0; l < base->shape.n_layers; l++)
        blocks += 2 * (size_t)c->n_layer[l] * (size_t)base->shape.n_kv_heads * (size_t)c->nb;
    u->params = blocks * sizeof(uint16_t);              /* the fp16 scale d of each block */
    u->codes = blocks * (c->block_bytes - sizeof(uint16_t)); /* 32 int8 or 32 nibbles */
    u->total = u->codes + u->params;
    u->n_tokens = base->n_tokens;
    u->elements = 2 * (int64_t)base->n_tokens * base->shape.n_layers * base->shape.n_kv_heads * base->shape.head_dim;
}

static void blocks_destroy(zc_kv_cache *base) {
    kv_blocks *c = (kv_blocks *)base;
    free(c->k);
    free(c->v);
    free(c->n_layer);
    free(c->rbuf);
    zc_attn_scratch_free(&c->scratch);
    free(c);
}

/* State: zc_kv_save_dense of the K and V block arrays. */
static int blocks_save(const zc_kv_cache *base, zc_kv_writer *w) {
    const kv_blocks *c = (const kv_blocks *)base;
    return zc_kv_save_dense(base, w, c->k, c->v, layer_offset(c, 1), c->row_bytes);
}

static int blocks_load(zc_kv_cache *base, zc_kv_reader *r) {
    kv_blocks *c = (kv_blocks *)base;
    return zc_kv_load_dense(base, r, c->k, c->v, layer_offset(c, 1), c->row_bytes, c->n_layer);
}

static const zc_kv_ops Q8_0_OPS = {"q8_0", blocks_write, blocks_attend, blocks_truncate, blocks_usage, blocks_destroy,
                                   blocks_save, blocks_load};
static const zc_kv_ops Q4_0_OPS = {"q4_0", blocks_write, blocks_attend, blocks_truncate, blocks_usage, blocks_destroy,
                                   blocks_save, blocks_load};
static const zc_kv_ops Q4_0R_OPS = {"q4_0r", blocks_write, blocks_attend, blocks_truncate, blocks_usage,
                                    blocks_destroy, blocks_save, blocks_load};

int zc_kv_blocks_rows(const zc_kv_cache *base, int layer, const uint8_t **k, const uint8_t **v,
                      size_t *row_bytes) {
    if (!base || (base->ops != &Q8_0_OPS && base->ops != &Q4_0_OPS && base->ops != &Q4_0R_OPS) || layer < 0 ||
        layer >= base->shape.n_layers)
        return zc_error(ZC_ERR_ARG, "kv: not a q8_0/q4_0/q4_0r cache or no layer %d", layer);
    const kv_blocks *c = (const kv_blocks *)base;
    *k = c->k + layer_offset(c, layer);
    *v = c->v + layer_offset(c, layer);
    *row_bytes = c->row_bytes;
    return ZC_OK;
}

static int create_blocks(const zc_kv_ops *ops, int type, const zc_kv_config *cfg, const zc_kv_shape *shape,
                         zc_pool *pool, zc_kv_cache **out) {
    if (shape->head_dim % ZC_QK)
        return zc_error(ZC_ERR_UNSUPPORTED, "kv %s: head_dim %d is not a multiple of %d (a ggml block spans %d "
                        "elements of one head)", ops->name, shape->head_dim, ZC_QK, ZC_QK);
    int rot = ops == &Q4_0R_OPS;
    if (rot && !zc_hadamard_ok(shape->head_dim))
        return zc_error(ZC_ERR_UNSUPPORTED, "kv %s: head_dim %d is not a power of two (the Hadamard rotation)",
                        ops->name, shape->head_dim);
    kv_blocks *c = zc_calloc(1, sizeof *c);
    if (!c) return ZC_ERR_NOMEM;
    zc_kv_base_init(&c->base, ops, cfg, shape, pool);
    c->type = type;
    c->rot = rot;
    c->nb = shape->head_dim / ZC_QK;
    c->block_bytes = (size_t)zc_type_get(type)->block_bytes;
    c->row_bytes = (size_t)shape->n_kv_heads * (size_t)c->nb * c->block_bytes;
    size_t rows;
    if (zc_mul_size((size_t)shape->n_layers, (size_t)shape->max_ctx, &rows) ||
        zc_mul_size(rows, c->row_bytes, &(size_t){0})) {
        blocks_destroy(&c->base);
        return zc_error(ZC_ERR_LIMIT, "kv %s: a context of %d tokens is too large", ops->name, shape->max_ctx);
    }
    c->k = zc_calloc(rows, c->row_bytes);
    c->v = zc_calloc(rows, c->row_bytes);
    c->n_layer = zc_calloc((size_t)shape->n_layers, sizeof *c->n_layer);
    if (!c->k || !c->v || !c->n_layer) {
        blocks_destroy(&c->base);
        return ZC_ERR_NOMEM;
    }
    *out = &c->base;
    return ZC_OK;
}

static int create_q8_0(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out) {
    return create_blocks(&Q8_0_OPS, ZC_TYPE_Q8_0, cfg, shape, pool, out);
}

static int create_q4_0(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out) {
    return create_blocks(&Q4_0_OPS, ZC_TYPE_Q4_0, cfg, shape, pool, out);
}

static int create_q4_0r(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out) {
    return create_blocks(&Q4_0R_OPS, ZC_TYPE_Q4_0, cfg, shape, pool, out);
}

/* No options: llama.cpp's formats have no knobs, and a budget does not move them. */
const zc_kv_policy zc_kv_policy_q8_0 = {"q8_0", create_q8_0, NULL, NULL, 0, NULL, 0};
const zc_kv_policy zc_kv_policy_q4_0 = {"q4_0", create_q4_0, NULL, NULL, 0, NULL, 0};
const zc_kv_policy zc_kv_policy_q4_0r = {"q4_0r", create_q4_0r, NULL, NULL, 0, NULL, 0};
