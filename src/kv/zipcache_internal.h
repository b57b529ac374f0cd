/* The zipcache KV policy's inspection hooks (for tests and the evaluation
 * code) and the pieces of its registry entry that the policies built on its
 * machinery (kv_variants.c: uniform, mikv) share. Its options, including the
 * choices where the paper and the reference code disagree (denominator,
 * decode rule), are zc_kv_config's, declared in zc_zip_options. */
#ifndef ZC_KV_ZIPCACHE_INTERNAL_H
#define ZC_KV_ZIPCACHE_INTERNAL_H

#include "kv/kv.h"
#include "kv/kv_options.h"
#include "quant/saliency.h"

/* How a segment is stored: key / value code widths of its salient [0] and
 * regular [1] sets, and the key parameter group along tokens (0 = one per set). */
typedef struct {
    int kb[2], vb[2];
    int kg;
} zc_zip_plan;

/* The budget --kv zipcache runs at when neither --kv-bits nor any width is
 * given: bits per compressed K/V element, everything the segments store
 * counted (the fp16 window adds at most --kv-window-share of it). */
#define ZC_ZIP_DEFAULT_BITS 4.0

int zc_kv_create_zipcache(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);

/* The options of the zipcache machinery (kv_options.h), read by zipcache,
 * uniform and mikv alike. */
extern const zc_kv_option zc_zip_options[];
/* The description of zipcache and mikv (items marked for one of them). */
extern const zc_kv_shown zc_zip_shown[];
/* The budget hook of a mixed-precision policy: the budget is the plan's target. */
void zc_zip_budget(zc_kv_config *cfg, double bits);

/* The saliency scores behind the latest compression of `layer`:
 * *scores = [n_kv_heads][*n] (window order, one row per KV head), valid until
 * the next call on the cache. ZC_ERR_ARG when the layer has not compressed. */
int zc_zip_last_scores(const zc_kv_cache *c, int layer, const float **scores, int *n);

/* --kv-rotate, cfg.rotate_keys: keys stored as they are, Hadamard-rotated,
 * or chosen per layer at its first compression (kv_zipcache.c, zip_plan). */
enum { ZC_ZIP_ROTATE_OFF, ZC_ZIP_ROTATE_ON, ZC_ZIP_ROTATE_AUTO };

/* --kv-plan, cfg.plan_rule: how the automatic plan of a segment is chosen
 * among those that fit the budget (kv_zipcache.c): by the salient fraction
 * nearest 0.5 (zip_plan), or by the output error the probes would see
 * (choose_plan). */
enum { ZC_ZIP_PLAN_FRACTION, ZC_ZIP_PLAN_ERROR };

/* Does `layer` store its keys rotated: 1, 0, -1 not chosen yet (auto before
 * its first compression); ZC_ERR_ARG for a cache of another policy. */
int zc_zip_rotated(const zc_kv_cache *c, int layer);
/* Layers of a zipcache-family cache that store rotated keys; *n_chosen: the
 * layers that have compressed (so chose). 0 and 0 for other policies. */
int zc_zip_rotation_count(const zc_kv_cache *c, int *n_chosen);
/* "keys rotated per layer (auto)" under --kv-rotate auto, else "" (descriptions). */
void zc_zip_show_rotate_auto(const zc_kv_config *c, char *buf, size_t cap);

/* "local layers exact" under --kv-local exact, else "" (descriptions). */
void zc_zip_show_local(const zc_kv_config *c, char *buf, size_t cap);

/* What `layer` holds, as attention reads it: positions *first..*first+*n-1
 * (a sliding-window layer has dropped the earlier ones), into k, v
 * [*n][kv_dim] (fp32, dequantized, keys rotated back) unless k is NULL.
 * For tests; uses the cache's scratch. ZC_ERR_ARG for another policy. */
int zc_zip_held(const zc_kv_cache *c, int layer, int *first, int *n, float *k, float *v);

/* The plan of the latest segment of `layer` (ZC_ERR_ARG before any). */
int zc_zip_last_plan(const zc_kv_cache *c, int layer, zc_zip_plan *plan);

/* Salient tokens per KV head of the latest segment of `layer`. */
int zc_zip_last_salient(const zc_kv_cache *c, int layer, int head, int *n_salient, int *n_tokens);

#endif
