/* The byte writer and bounded reader behind the policies' save/load (kv.h). */
#include <string.h>

#include "kv/kv.h"
#include "kv/kv_impl.h"
#include "util/error.h"

int zc_kvw_put(zc_kv_writer *w, const void *data, size_t n) {
    if (n == 0) return ZC_OK;
    size_t need;
    if (zc_add_size(w->len, n, &need)) return zc_error(ZC_ERR_LIMIT, "kv state: larger than the address space");
    if (need > w->cap) {
        size_t cap = w->cap * 2 > need ? w->cap * 2 : need;
        if (cap < 4096) cap = 4096;
        uint8_t *b = zc_realloc(w->buf, cap);
        if (!b) return ZC_ERR_NOMEM;
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, data, n);
    w->len = need;
    return ZC_OK;
}

int zc_kvw_i32(zc_kv_writer *w, int32_t v) { return zc_kvw_put(w, &v, sizeof v); }

int zc_kvr_get(zc_kv_reader *r, void *out, size_t n, const char *what) {
    if (n > r->len - r->off)
        return zc_error(ZC_ERR_FORMAT, "kv state: %s: %zu bytes needed at offset %zu, %zu left", what, n, r->off,
                        r->len - r->off);
    if (n) memcpy(out, r->p + r->off, n);
    r->off += n;
    return ZC_OK;
}

int zc_kvr_i32(zc_kv_reader *r, int32_t lo, int32_t hi, const char *what, int32_t *out) {
    int32_t v = 0;
    int rc = zc_kvr_get(r, &v, sizeof v, what);
    if (rc) return rc;
    if (v < lo || v > hi) return zc_error(ZC_ERR_FORMAT, "kv state: %s %d is outside [%d, %d]", what, v, lo, hi);
    *out = v;
    return ZC_OK;
}

int zc_kv_save_dense(const zc_kv_cache *c, zc_kv_writer *w, const uint8_t *k, const uint8_t *v, size_t layer_stride,
                     size_t row_bytes) {
    size_t bytes = (size_t)c->n_tokens * row_bytes;
    int rc = zc_kvw_i32(w, c->n_tokens);
    for (int l = 0; rc == ZC_OK && l < c->shape.n_layers; l++)
        if ((rc = zc_kvw_put(w, k + (size_t)l * layer_stride, bytes)) == ZC_OK)
            rc = zc_kvw_put(w, v + (size_t)l * layer_stride, bytes);
    return rc;
}

int zc_kv_load_dense(zc_kv_cache *c, zc_kv_reader *r, uint8_t *k, uint8_t *v, size_t layer_stride, size_t row_bytes,
                     int *n_layer) {
    int32_t n;
    int rc = zc_kvr_i32(r, 0, c->shape.max_ctx, "token count", &n);
    size_t bytes = (size_t)n * row_bytes;
    for (int l = 0; rc == ZC_OK && l < c->shape.n_layers; l++)
        if ((rc = zc_kvr_get(r, k + (size_t)l * layer_stride, bytes, "K rows")) == ZC_OK)
            rc = zc_kvr_get(r, v + (size_t)l * layer_stride, bytes, "V rows");
    if (rc) return rc;
    for (int l = 0; l < c->shape.n_layers; l++) n_layer[l] = n;
    c->n_tokens = n;
    return ZC_OK;
}
