/* The uncompressed KV cache policies: fp32 and fp16.
 *
 * Storage, per policy:  K, V  [n_layers][max_ctx][n_kv_heads*head_dim]  (fp32 or fp16)
 *
 * The address space for max_ctx positions is reserved once with an
 * anonymous no-reserve mapping; the kernel commits pages on first touch.
 * So memory actually held grows in page-sized chunks with the tokens
 * stored, growing never copies, and the decode loop never allocates.
 * Truncation hands the pages past the new end back (MADV_DONTNEED).
 * Attention runs directly on the stored rows via zc_attn_forward.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "attn/attn.h"
#include "kv/kv.h"
#include "kv/kv_impl.h"
#include "kv/kv_options.h"
#include "quant/ggml_blocks.h"
#include "util/error.h"
#include "util/fp16.h"

typedef struct {
    zc_kv_cache base;
    int type;           /* ZC_TYPE_F32 or ZC_TYPE_F16 */
    size_t row_bytes;   /* one token of one layer: kv_dim elements */
    size_t layer_bytes; /* reserved per layer, page-aligned: >= max_ctx * row_bytes */
    size_t map_bytes;   /* whole reservation: 2 * n_layers * layer_bytes */
    uint8_t *map;       /* K of layer l at l*layer_bytes, V of layer l at (n_layers + l)*layer_bytes */
    int *n_layer;       /* [n_layers] tokens written to each layer */
    zc_attn_scratch scratch;
} kv_fp;

static inline int kv_dim(const kv_fp *c) { return c->base.shape.n_kv_heads * c->base.shape.head_dim; }
static uint8_t *k_rows(kv_fp *c, int layer) { return c->map + (size_t)layer * c->layer_bytes; }
static uint8_t *v_rows(kv_fp *c, int layer) {
    return c->map + (size_t)(c->base.shape.n_layers + layer) * c->layer_bytes;
}

static int fp_write(zc_kv_cache *base, int layer, int pos, int n, const float *k, const float *v) {
    kv_fp *c = (kv_fp *)base;
    int rc = zc_kv_check_append(base, c->n_layer, layer, pos, n);
    if (rc) return rc;
    size_t off = (size_t)pos * c->row_bytes, elems = (size_t)n * (size_t)kv_dim(c);
    zc_kv_store_rows(c->type, k_rows(c, layer) + off, k, elems);
    zc_kv_store_rows(c->type, v_rows(c, layer) + off, v, elems);
    zc_kv_appended(base, c->n_layer, layer, pos, n);
    return ZC_OK;
}

static int fp_attend(zc_kv_cache *base, int layer, int pos, int n, const float *q, float *out) {
    kv_fp *c = (kv_fp *)base;
    int rc = zc_kv_check_attend(base, c->n_layer, layer, pos, n);
    if (rc) return rc;
    zc_attn_dims d = {base->shape.n_heads, base->shape.n_kv_heads, base->shape.head_dim};
    return zc_attn_forward(base->pool, &d, q, n, pos, k_rows(c, layer), v_rows(c, layer), c->type,
                           (size_t)kv_dim(c), pos + n, out, NULL, &c->scratch);
}

static int fp_truncate(zc_kv_cache *base, int n_keep) {
    kv_fp *c = (kv_fp *)base;
    int rc = zc_kv_truncate_counts(base, c->n_layer, n_keep);
    if (rc) return rc;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t keep = ((size_t)n_keep * c->row_bytes + page - 1) / page * page;
    for (int l = 0; l < 2 * base->shape.n_layers; l++)
        if (keep < c->layer_bytes) madvise(c->map + (size_t)l * c->layer_bytes + keep, c->layer_bytes - keep,
                                           MADV_DONTNEED);
    return ZC_OK;
}

static void fp_usage(const zc_kv_cache *base, zc_kv_usage *u) {
    const kv_fp *c = (const kv_fp *)base;
    memset(u, 0, sizeof *u);
    for (int l = 0; l < base->shape.n_layers; l++) u->codes += 2 * (size_t)c->n_layer[l] * c->row_bytes;
    u->total = u->codes;
    u->n_tokens = base->n_tokens;
    u->elements = 2 * (int64_t)base->n_tokens * base->shape.n_layers * kv_dim(c);
}

static void fp_destroy(zc_kv_cache *base) {
    kv_fp *c = (kv_fp *)base;
    if (c->map) munmap(c->map, c->map_bytes);
    zc_attn_scratch_free(&c->scratch);
    free(c->n_layer);
    free(c);
}

/* State: zc_kv_save_dense of the K and V halves of the reservation. */
static int fp_save(const zc_kv_cache *base, zc_kv_writer *w) {
    const kv_fp *c = (const kv_fp *)base;
    return zc_kv_save_dense(base, w, c->map, c->map + (size_t)base->shape.n_layers * c->layer_bytes, c->layer_bytes,
                            c->row_bytes);
}

static int fp_load(zc_kv_cache *base, zc_kv_reader *r) {
    kv_fp *c = (kv_fp *)base;
    return zc_kv_load_dense(base, r, k_rows(c, 0), v_rows(c, 0), c->layer_bytes, c->row_bytes, c->n_layer);
}

static const zc_kv_ops FP32_OPS = {"fp32", fp_write, fp_attend, fp_truncate, fp_usage, fp_destroy, fp_save, fp_load};
static const zc_kv_ops FP16_OPS = {"fp16", fp_write, fp_attend, fp_truncate, fp_usage, fp_destroy, fp_save, fp_load};

static int create_fp(const zc_kv_ops *ops, int type, const zc_kv_config *cfg, const zc_kv_shape *shape,
                     zc_pool *pool, zc_kv_cache **out) {
    kv_fp *c = zc_calloc(1, sizeof *c);
    if (!c) return ZC_ERR_NOMEM;
    zc_kv_base_init(&c->base, ops, cfg, shape, pool);
    c->type = type;
    c->row_bytes = (size_t)shape->n_kv_heads * (size_t)shape->head_dim * (type == ZC_TYPE_F32 ? 4 : 2);
    size_t page = (size_t)sysconf(_SC_PAGESIZE), bytes;
    int rc = zc_mul_size(c->row_bytes, (size_t)shape->max_ctx, &bytes);
    if (rc == ZC_OK) rc = zc_add_size(bytes, page - 1, &bytes);
    if (rc == ZC_OK) c->layer_bytes = bytes / page * page;
    if (rc == ZC_OK) rc = zc_mul_size(c->layer_bytes, 2 * (size_t)shape->n_layers, &c->map_bytes);
    if (rc != ZC_OK) {
        fp_destroy(&c->base);
        return zc_error(ZC_ERR_LIMIT, "kv %s: a context of %d tokens is too large", ops->name, shape->max_ctx);
    }
    void *m = mmap(NULL, c->map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        size_t bytes_wanted = c->map_bytes;
        fp_destroy(&c->base);
        return zc_error(ZC_ERR_NOMEM, "kv %s: cannot reserve %zu bytes of address space", ops->name, bytes_wanted);
    }
    c->map = m;
    c->n_layer = zc_calloc((size_t)shape->n_layers, sizeof *c->n_layer);
    if (!c->n_layer) {
        fp_destroy(&c->base);
        return ZC_ERR_NOMEM;
    }
    *out = &c->base;
    return ZC_OK;
}

static int create_fp32(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out) {
    return create_fp(&FP32_OPS, ZC_TYPE_F32, cfg, shape, pool, out);
}

static int create_fp16(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out) {
    return create_fp(&FP16_OPS, ZC_TYPE_F16, cfg, shape, pool, out);
}

/* No options of their own: the description states the storage. */
static const zc_kv_shown FP32_SHOWN[] = {{.text = "uncompressed, 32 bits/element"}, {0}};
static const zc_kv_shown FP16_SHOWN[] = {{.text = "uncompressed, 16 bits/element"}, {0}};

const zc_kv_policy zc_kv_policy_fp32 = {"fp32", create_fp32, NULL, FP32_SHOWN, 0, NULL, 0};
const zc_kv_policy zc_kv_policy_fp16 = {"fp16", create_fp16, NULL, FP16_SHOWN, 0, NULL, 0};
