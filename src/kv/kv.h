/* The KV cache policy interface: the only way the model touches its cache.
 *
 * Data flows one way. For each layer the forward pass
 *   1. writes the new tokens' keys (after RoPE) and values:   ops->write
 *   2. asks for attention of the new tokens' queries:          ops->attend
 * A policy stores K/V however it likes (fp32, fp16, packed low-bit codes,
 * evicted...) and decides itself when to measure saliency and compress:
 * e.g. the zipcache policy computes probe scores inside attend() of a
 * prefill block and compresses that block afterwards, and compresses its
 * decode window every stream-gap tokens. The model code never knows which
 * policy is active; adding a policy means one new file (its constructor,
 * options and description: kv_options.h) plus its line in the registry in
 * kv.c.
 *
 * Shapes (per layer):
 *   k, v  [n][n_kv_heads * head_dim]   token-major, head-major within a token
 *   q,out [n][n_heads * head_dim]      query head h uses KV head h / (n_heads / n_kv_heads)
 */
#ifndef ZC_KV_KV_H
#define ZC_KV_KV_H

#include <stddef.h>
#include <stdint.h>

#include "quant/saliency.h"
#include "zipcache.h"
#include "util/threads.h"

typedef struct {
    int n_layers;
    int n_heads;     /* query heads */
    int n_kv_heads;  /* n_heads % n_kv_heads == 0 */
    int head_dim;
    int max_ctx;     /* positions 0..max_ctx-1 */
    const int *band; /* [n_layers] sliding window: the query at p of layer l sees keys p - band[l] + 1..p
                        where 0 < band[l] < max_ctx; NULL or 0: every earlier key. Only the policies whose
                        registry entry is `banded` accept one (zc_kv_create_windowed hands it over). Borrowed. */
} zc_kv_shape;

/* Which queries measure the saliency of a zipcache decode window before it
 * is compressed (spec §10, §13.1). */
typedef enum {
    ZC_KV_DECODE_PAPER = 0,     /* Algorithm 3: rows of the window's last ~5% queries plus ~5% random ones,
                                   gathered as the window fills, normalized by cfg.denom */
    ZC_KV_DECODE_REFERENCE = 1, /* the reference code: the compressing step's query row only, unnormalized */
} zc_kv_decode_rule;

/* Every option of every policy; a policy reads the ones it uses. Each field
 * an option sets is declared, with its flag, range, default and help, in the
 * option table of the policy that reads it (kv_options.h); the CLI fills
 * this from --kv* flags (zc_kv_config_parse_arg). (Tagged so that
 * include/zipcache.h can forward-declare it.) */
typedef struct zc_kv_config {
    char policy[16];         /* a registered policy's name (zc_kv_policy_name): "zipcache", "fp16", ... */
    int k_hi_bits, k_lo_bits;  /* salient / regular bits for keys (zipcache, mikv); all four 0 (default):
                                  the policy chooses widths per segment for target_bits */
    int v_hi_bits, v_lo_bits;  /* same for values */
    int bits;                  /* uniform / kivi width; 0 = the policy's default (zc_kv_config_bits) */
    float salient_ratio;       /* fraction of tokens kept at hi bits (default 0.6; with widths given) */
    float target_bits;         /* if > 0: stored bits per compressed element, everything counted (--kv-bits) */
    char probes[48];           /* "random+recent:0.05:0.05", "random:0.1", "recent:0.1", "all" */
    zc_sal_denom denom;        /* zipcache: normalization of probe column sums (default ZC_DENOM_CAUSAL, L - j) */
    zc_kv_decode_rule decode_rule; /* zipcache: decode-window saliency (default ZC_KV_DECODE_PAPER) */
    int int8_query;            /* zipcache, mikv, uniform: packed attention in integers (default 1) */
    int stream_gap;            /* decode tokens per compression (default 100; under a budget the most) */
    float window_share;        /* zipcache, mikv under target_bits: the fp16 window's most mean share of the
                                  stored bits, which shortens the stream gap while the context is short
                                  (default 0.2; 0: a fixed gap) */
    int sinks;                 /* first N tokens always hi bits */
    int key_group;             /* channelwise key parameter group along tokens (0 = whole segment) */
    int plan_rule;             /* zipcache, mikv: ZC_ZIP_PLAN_* (zipcache_internal.h), how widths are chosen */
    int local_layers;          /* zipcache, mikv, uniform: sliding-window layers compressed by the policy
                                  within their window (ZC_KV_LOCAL_COMPRESS, the default) or kept exact in
                                  fp16 beside it (ZC_KV_LOCAL_EXACT; zc_kv_create_windowed) */
    float local_bits;          /* zipcache, mikv under target_bits and ZC_KV_LOCAL_COMPRESS: the budget of the
                                  sliding-window layers (0: target_bits) */
    int rotate_keys;           /* zipcache, mikv, uniform: keys Hadamard-rotated before quantization (--kv-rotate):
                                  ZC_ZIP_ROTATE_OFF, _ON, _AUTO (chosen per layer; zipcache_internal.h) */
    int group_size;            /* kivi group size (default 32) */
    int residual;              /* kivi fp16 residual window (default 32) */
    float budget_ratio;        /* h2o: fraction of tokens kept (default 0.2) */
    uint64_t seed;             /* probe sampling seed */
    size_t budget_bytes;       /* --kv-budget: cap on total cache bytes (0 = none) */
} zc_kv_config;

/* cfg.local_layers (--kv-local). */
enum { ZC_KV_LOCAL_EXACT, ZC_KV_LOCAL_COMPRESS };

/* zc_kv_usage (bytes held by a cache, by part) is public: include/zipcache.h. */

typedef struct zc_kv_cache zc_kv_cache;

/* A growing byte buffer a policy's save() appends to, and a bounded cursor
 * its load() reads from (kv_state.c). */
typedef struct zc_kv_writer {
    uint8_t *buf;
    size_t len, cap;
} zc_kv_writer;
typedef struct zc_kv_reader {
    const uint8_t *p;
    size_t len, off;
} zc_kv_reader;
/* Append n bytes (ZC_ERR_NOMEM / ZC_ERR_LIMIT). */
int zc_kvw_put(zc_kv_writer *w, const void *data, size_t n);
int zc_kvw_i32(zc_kv_writer *w, int32_t v);
/* Read n bytes into out; ZC_ERR_FORMAT (naming `what`) when fewer remain. */
int zc_kvr_get(zc_kv_reader *r, void *out, size_t n, const char *what);
/* Read an int32 that must lie in [lo, hi]; ZC_ERR_FORMAT otherwise. */
int zc_kvr_i32(zc_kv_reader *r, int32_t lo, int32_t hi, const char *what, int32_t *out);

typedef struct {
    const char *name;
    /* Store K/V of positions pos..pos+n-1 of `layer`; pos equals the number
     * of tokens already written to that layer. k, v: [n][n_kv_heads*head_dim]. */
    int (*write)(zc_kv_cache *c, int layer, int pos, int n, const float *k, const float *v);
    /* Attention for queries at positions pos..pos+n-1 (already written):
     * query i sees positions 0..pos+i (causal), scores scaled by
     * 1/sqrt(head_dim), softmax in fp32. q, out: [n][n_heads*head_dim]. */
    int (*attend)(zc_kv_cache *c, int layer, int pos, int n, const float *q, float *out);
    /* Forget everything from position n_keep on (n_keep <= n_tokens). A
     * policy that cannot un-compress returns ZC_ERR_UNSUPPORTED unless n_keep == 0. */
    int (*truncate)(zc_kv_cache *c, int n_keep);
    void (*usage)(const zc_kv_cache *c, zc_kv_usage *u);
    void (*destroy)(zc_kv_cache *c);
    /* Serialization (sequence save/restore, kv_state.c): `save` appends the
     * cache's state, a raw dump of the buffers it owns plus the counts that
     * describe them, to w; `load` rebuilds that state into a freshly created,
     * empty cache of the same policy, configuration and shape, checking
     * every count against the shape and the bytes available (the bytes are
     * untrusted even though the file they came from was checksummed).
     * NULL when the policy cannot serialize (save/restore then fail with
     * ZC_ERR_UNSUPPORTED). */
    int (*save)(const zc_kv_cache *c, struct zc_kv_writer *w);
    int (*load)(zc_kv_cache *c, struct zc_kv_reader *r);
} zc_kv_ops;

/* Common header embedded first in every policy's struct. */
struct zc_kv_cache {
    const zc_kv_ops *ops;
    zc_kv_shape shape;
    zc_kv_config cfg;
    zc_pool *pool;   /* borrowed; may be NULL (single-threaded) */
    int n_tokens;    /* positions written to the last layer */
};

/* Defaults: policy zipcache (what a user gets without --kv), then every
 * option's default from the tables (kv_options.h): widths chosen by the
 * policy (0), ratio 0.6, random+recent 5%+5%, gap 100, denominator L - j,
 * the paper's decode rule, int8 queries on...; fields no option owns
 * (bits, target_bits: set by --kv-bits) 0. The zipcache choices are
 * measured in kv_zipcache.c. */
void zc_kv_config_default(zc_kv_config *cfg);
/* The width a uniform-width policy runs at: cfg->bits, or when 0 the
 * policy's default (zc_kv_policy.default_bits: 2 for kivi, KIVI-2 being the
 * paper's reference point), 4 for the others. */
int zc_kv_config_bits(const zc_kv_config *cfg);
/* Apply one CLI option ("--kv", "--kv-hi-bits", ...) with its value.
 * Returns 1 if the option was consumed, 0 if it is not a KV option (val
 * given or not), ZC_ERR_ARG (with a message naming the option) on a bad or
 * missing (NULL) value, leaving cfg as it was. Any policy's option is
 * accepted whichever policy cfg names. */
int zc_kv_config_parse_arg(zc_kv_config *cfg, const char *opt, const char *val);
/* Apply a policy name (NULL: keep cfg's) and an option string (NULL or
 * ""): space-separated "--kv-NAME VALUE", "--kv-NAME=VALUE" or "NAME=VALUE"
 * (the public API's syntax, include/zipcache.h). ZC_ERR_ARG names the
 * unknown or bad option. */
int zc_kv_config_parse_string(zc_kv_config *cfg, const char *policy, const char *options);
/* One line describing the policy and its effective parameters: its name,
 * then the items its registry entry shows (kv_options.h), then any
 * budget. Session files store it (minus the budget) to tell caches apart. */
void zc_kv_config_describe(const zc_kv_config *cfg, char *buf, size_t cap);

/* Create a cache for the policy named in cfg->policy. */
int zc_kv_create(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);
/* The same for a model with sliding-window layers (kv_window.c): the query
 * at position p of layer l sees keys max(0, p - window[l] + 1)..p. Layers
 * whose window (> 0) is shorter than max_ctx keep only their last window[l]
 * positions. A banded policy (zipcache, uniform, mikv) under
 * cfg.local_layers ZC_KV_LOCAL_COMPRESS (the default) holds every layer,
 * the windows as shape.band, and compresses the local layers' windows too.
 * Otherwise (ZC_KV_LOCAL_EXACT, and every other policy) the local layers
 * keep their positions uncompressed (fp32 for policy fp32, else fp16) and
 * are never seen by the policy, which holds the other (global) layers:
 * zipcache's probes, saliency and streaming then run on global layers only. window NULL, or no window that
 * binds: exactly zc_kv_create. window is borrowed. */
int zc_kv_create_windowed(const zc_kv_config *cfg, const zc_kv_shape *shape, const int *window, zc_pool *pool,
                          zc_kv_cache **out);
static inline void zc_kv_free(zc_kv_cache *c) { if (c) c->ops->destroy(c); }

/* zc_kv_ratio and zc_kv_bits_per_element: include/zipcache.h. */

/* The effective configuration of a context's cache (src/model/api.c). */
const zc_kv_config *zc_context_kv_config(const zc_context *c);

#endif
