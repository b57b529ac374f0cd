/* Baselines that are configurations of the zipcache machinery (kv_zipcache.c):
 *
 *   uniform  ZipCache's quantizers (channelwise keys, CSTQuant values, the
 *            same fp16 decode window and streaming) at one width for every
 *            token, zc_kv_config_bits(cfg): no saliency split. Implemented as zipcache with
 *            hi = lo = bits and every token in the (single) salient set, so
 *            the two policies differ in nothing but the bit allocation, which
 *            is the point of the comparison. The machinery still keeps its
 *            per-segment salient bitmaps (1 bit per token and KV head,
 *            reported in usage().index) and runs its probe pass, whose result
 *            cannot change anything here.
 *
 *   mikv     MiKV ("No Token Left Behind", Yang et al. 2024): mixed precision
 *            (cfg's hi/lo bits and salient ratio or bit target) with saliency
 *            from the ACCUMULATED attention score, H2O-style: every query's
 *            softmax row computed explicitly (probes "all"), summed over the
 *            G query heads, no normalization by the number of queries that
 *            see a token (ZC_DENOM_NONE). During decode every query's row
 *            adds to the window's scores too (the paper's decode rule with
 *            every query a probe). So mikv is zipcache with --kv-probes all
 *            --kv-denom accumulated --kv-decode-rule paper; it overrides
 *            those three options. What remains is ZipCache's
 *            machinery (quantizers, streaming), so a mikv / zipcache
 *            comparison isolates the saliency metric and the probe
 *            approximation.
 */
#include <string.h>

#include "kv/kv.h"
#include "kv/kv_options.h"
#include "kv/zipcache_internal.h"

static int create_uniform(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out) {
    zc_kv_config z = *cfg;
    z.k_hi_bits = z.k_lo_bits = z.v_hi_bits = z.v_lo_bits = zc_kv_config_bits(cfg);
    z.salient_ratio = 1.0f;
    z.target_bits = 0.0f;
    z.sinks = 0;
    return zc_kv_create_zipcache(&z, shape, pool, out);
}

static int create_mikv(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out) {
    zc_kv_config z = *cfg;
    strcpy(z.probes, "all");
    z.denom = ZC_DENOM_NONE;
    z.decode_rule = ZC_KV_DECODE_PAPER;
    return zc_kv_create_zipcache(&z, shape, pool, out);
}

/* Both read zipcache's options, --kv-rotate auto (the default) included:
 * mikv stays zipcache but for the saliency metric, and uniform zipcache's
 * quantizers but for the bit allocation. mikv shares zipcache's description
 * (items marked for one of them); uniform keeps the description it always had
 * (width, key group, int8 query), which leaves out its stream gap and keys
 * rotated on or off: changing it would make its saved sessions unreadable.
 * It does show auto, whose state layout differs (a choice per layer). */
static const zc_kv_shown UNIFORM_SHOWN[] = {
    {.fn = zc_kv_show_width},
    ZC_KV_SHOW("key-group", "key group {}"),
    ZC_KV_SHOW("int8-query", "int8 query {}"),
    {.fn = zc_zip_show_rotate_auto},
    {.fn = zc_zip_show_local},
    {0},
};

const zc_kv_policy zc_kv_policy_uniform = {"uniform", create_uniform, zc_zip_options, UNIFORM_SHOWN, 4,
                                           zc_kv_budget_width, 1};
const zc_kv_policy zc_kv_policy_mikv = {"mikv", create_mikv, zc_zip_options, zc_zip_shown, 0, zc_zip_budget, 1};
