/* The zipcache KV policy's own knobs and inspection hooks (beyond zc_kv_config).
 *
 * zc_kv_config carries the paper's parameters (bits, ratio, probes, gap,
 * sinks, key group). The choices below are this implementation's (where the
 * paper and the reference code disagree); tests and the evaluation code set
 * them directly.
 */
#ifndef ZC_KV_ZIPCACHE_INTERNAL_H
#define ZC_KV_ZIPCACHE_INTERNAL_H

#include "kv/kv.h"
#include "quant/saliency.h"

/* Which queries measure saliency of the decode window (spec §10, §13.1). */
typedef enum {
    ZC_ZIP_DECODE_PAPER = 0, /* Algorithm 3: rows of the window's last ~5% queries plus ~5% random ones,
                                gathered as the window fills, normalized by opts.denom */
    ZC_ZIP_DECODE_LAST = 1,  /* the reference code: the compressing step's query row only, unnormalized */
} zc_zip_decode_rule;

typedef struct {
    zc_sal_denom denom;  /* normalization of probe column sums (quant/saliency.h); default ZC_DENOM_CAUSAL */
    zc_zip_decode_rule decode_rule;
    int int8_query; /* packed key scores with int8-quantized queries (attn_packed.h, ZC_PACKED_INT8Q) */
} zc_zip_opts;

int zc_kv_create_zipcache(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);

/* Read / change the options of a zipcache cache (ZC_ERR_ARG for another policy). */
int zc_zip_get_opts(const zc_kv_cache *c, zc_zip_opts *o);
int zc_zip_set_opts(zc_kv_cache *c, const zc_zip_opts *o);

/* The saliency scores behind the latest compression of `layer`:
 * *scores = [n_kv_heads][*n] (window order, one row per KV head), valid until
 * the next call on the cache. ZC_ERR_ARG when the layer has not compressed. */
int zc_zip_last_scores(const zc_kv_cache *c, int layer, const float **scores, int *n);

/* Salient tokens per KV head of the latest segment of `layer`. */
int zc_zip_last_salient(const zc_kv_cache *c, int layer, int head, int *n_salient, int *n_tokens);

#endif
