/* Helpers for the policies that append every token to dense per-layer
 * arrays and count them in n_layer[n_layers] (kv_fp.c, kv_blocks.c): the
 * header set-up, the argument checks of write/attend/truncate with their
 * messages (naming the policy by ops->name), and the bookkeeping. */
#ifndef ZC_KV_KV_IMPL_H
#define ZC_KV_KV_IMPL_H

#include "kv/kv.h"

void zc_kv_base_init(zc_kv_cache *c, const zc_kv_ops *ops, const zc_kv_config *cfg, const zc_kv_shape *shape,
                     zc_pool *pool);
/* The argument checks of every policy, with their messages, on the count
 * `have` of tokens the layer holds (pass -1 when !zc_kv_has_layer: it is
 * not read then). A write of n tokens at pos: ZC_ERR_ARG unless the layer
 * exists and pos == have; ZC_ERR_LIMIT past max_ctx. Attention for
 * pos..pos+n-1: ZC_ERR_ARG unless the layer holds them. */
static inline int zc_kv_has_layer(const zc_kv_cache *c, int layer) { return layer >= 0 && layer < c->shape.n_layers; }
int zc_kv_check_write(const zc_kv_cache *c, int layer, int pos, int n, int have);
int zc_kv_check_read(const zc_kv_cache *c, int layer, int pos, int n, int have);
/* After a write that leaves `layer` with `have` tokens: n_tokens follows the last layer. */
void zc_kv_written(zc_kv_cache *c, int layer, int have);
/* The same for the policies that count tokens in n_layer[n_layers]: */
int zc_kv_check_append(const zc_kv_cache *c, const int *n_layer, int layer, int pos, int n);
/* After such a write: n_layer[layer] = pos + n (and c->n_tokens on the last layer). */
void zc_kv_appended(zc_kv_cache *c, int *n_layer, int layer, int pos, int n);
/* Attention for positions pos..pos+n-1 of `layer`: ZC_ERR_ARG unless written. */
int zc_kv_check_attend(const zc_kv_cache *c, const int *n_layer, int layer, int pos, int n);
/* Keep the first n_keep tokens of every layer: ZC_ERR_ARG outside [0, n_tokens]. */
int zc_kv_truncate_counts(zc_kv_cache *c, int *n_layer, int n_keep);
/* n_elems values of src stored as type (ZC_TYPE_F32 copied, else fp16). */
void zc_kv_store_rows(int type, uint8_t *dst, const float *src, size_t n_elems);
/* The state of a dense cache (save/load, kv_state.c): n_tokens (int32), then
 * per layer its K rows and V rows [n_tokens][row_bytes] as stored, layer l's
 * at k + l*layer_stride and v + l*layer_stride. Load fills the rows and
 * n_layer[] of a fresh cache. */
int zc_kv_save_dense(const zc_kv_cache *c, zc_kv_writer *w, const uint8_t *k, const uint8_t *v, size_t layer_stride,
                     size_t row_bytes);
int zc_kv_load_dense(zc_kv_cache *c, zc_kv_reader *r, uint8_t *k, uint8_t *v, size_t layer_stride, size_t row_bytes,
                     int *n_layer);

#endif
