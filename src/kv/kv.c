/* KV cache configuration (defaults, --kv* options, description), the policy
 * registry and the ratio helpers. The policies themselves live one per file
 * (kv_fp.c, ...); this file only knows their constructors. */
#include "kv/kv.h"
#include "kv/kv_impl.h"
#include "kv/zipcache_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/ggml_blocks.h"
#include "util/error.h"
#include "util/fp16.h"

/* ---- Registry ------------------------------------------------------------
 * Adding a policy: define its constructor in src/kv/kv_<name>.c, declare it
 * here and add one row to POLICIES. Nothing else in the engine changes. */
typedef int (*zc_kv_create_fn)(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool,
                               zc_kv_cache **out);

int zc_kv_create_fp32(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);
int zc_kv_create_fp16(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);
int zc_kv_create_q8_0(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);
int zc_kv_create_q4_0(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);
int zc_kv_create_q4_0r(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);
int zc_kv_create_h2o(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);
int zc_kv_create_kivi(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);
int zc_kv_create_zipcache(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);
int zc_kv_create_uniform(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);
int zc_kv_create_mikv(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);

static const struct {
    const char *name;
    zc_kv_create_fn create;
} POLICIES[] = {
    {"fp32", zc_kv_create_fp32},
    {"fp16", zc_kv_create_fp16},
    {"q8_0", zc_kv_create_q8_0},
    {"q4_0", zc_kv_create_q4_0},
    {"q4_0r", zc_kv_create_q4_0r},
    {"h2o", zc_kv_create_h2o},
    {"kivi", zc_kv_create_kivi},
    {"zipcache", zc_kv_create_zipcache},
    {"uniform", zc_kv_create_uniform},
    {"mikv", zc_kv_create_mikv},
};
#define N_POLICIES (sizeof POLICIES / sizeof POLICIES[0])

static zc_kv_create_fn find_policy(const char *name) {
    for (size_t i = 0; i < N_POLICIES; i++)
        if (!strcmp(POLICIES[i].name, name)) return POLICIES[i].create;
    return NULL;
}

static int unknown_policy(const char *name) {
    char avail[256] = "";
    size_t n = 0;
    for (size_t i = 0; i < N_POLICIES && n < sizeof avail; i++)
        n += (size_t)snprintf(avail + n, sizeof avail - n, "%s%s", i ? ", " : "", POLICIES[i].name);
    return zc_error(ZC_ERR_ARG, "unknown KV policy '%s' (available: %s)", name, avail);
}

int zc_kv_create(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out) {
    *out = NULL;
    zc_kv_create_fn create = find_policy(cfg->policy);
    if (!create) return unknown_policy(cfg->policy);
    const zc_kv_shape *s = shape;
    if (s->n_layers <= 0 || s->n_heads <= 0 || s->n_kv_heads <= 0 || s->head_dim <= 0 || s->max_ctx <= 0 ||
        s->n_heads % s->n_kv_heads)
        return zc_error(ZC_ERR_ARG, "kv cache: bad shape (layers %d, heads %d/%d, head_dim %d, max_ctx %d)",
                        s->n_layers, s->n_heads, s->n_kv_heads, s->head_dim, s->max_ctx);
    return create(cfg, shape, pool, out);
}

/* ---- Configuration ------------------------------------------------------ */
void zc_kv_config_default(zc_kv_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->policy, "zipcache"); /* the product's point: what a user gets without --kv */
    cfg->k_hi_bits = cfg->v_hi_bits = 0; /* 0: chosen by zipcache/mikv for the bit budget (kv_zipcache.c) */
    cfg->k_lo_bits = cfg->v_lo_bits = 0;
    cfg->bits = 0; /* the policy's default: zc_kv_config_bits */
    cfg->salient_ratio = 0.6f;
    cfg->target_bits = 0;
    strcpy(cfg->probes, "random+recent:0.05:0.05");
    cfg->denom = ZC_DENOM_CAUSAL;
    cfg->decode_rule = ZC_KV_DECODE_PAPER;
    cfg->int8_query = 1; /* the integer path: attn_packed.h, kv_zipcache.c */
    cfg->stream_gap = 100;
    cfg->sinks = 0;
    cfg->key_group = 0;
    cfg->group_size = 32;
    cfg->residual = 32;
    cfg->budget_ratio = 0.2f;
    cfg->seed = 0;
    cfg->budget_bytes = 0;
}

int zc_kv_config_bits(const zc_kv_config *cfg) {
    if (cfg->bits > 0) return cfg->bits;
    return !strcmp(cfg->policy, "kivi") ? 2 : 4;
}

/* Names of the enumerated options, indexed by their values (the CLI's spelling). */
static const char *const DENOM_NAMES[] = {"accumulated", "causal", "probes"}; /* zc_sal_denom */
static const char *const DECODE_NAMES[] = {"paper", "reference"};             /* zc_kv_decode_rule */
static const char *const ONOFF_NAMES[] = {"off", "on"};

/* names[i], or "?" for a value set from code outside the enumeration. */
static const char *name_of(const char *const *names, int n, int i) {
    return i >= 0 && i < n ? names[i] : "?";
}

static int bad_value(const char *opt, const char *val, const char *why) {
    return zc_error(ZC_ERR_ARG, "%s: '%s' %s", opt, val, why);
}

static int parse_long(const char *opt, const char *val, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (!*val || *end || errno) return bad_value(opt, val, "is not an integer");
    if (v < lo || v > hi) return zc_error(ZC_ERR_ARG, "%s: %ld is out of range [%ld, %ld]", opt, v, lo, hi);
    *out = (int)v;
    return ZC_OK;
}

/* A float in (lo, hi] or [lo, hi] depending on lo_open. */
static int parse_float(const char *opt, const char *val, double lo, double hi, int lo_open, float *out) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (!*val || *end || errno || !isfinite(v)) return bad_value(opt, val, "is not a number");
    if ((lo_open ? v <= lo : v < lo) || v > hi)
        return zc_error(ZC_ERR_ARG, "%s: %g is out of range %c%g, %g]", opt, v, lo_open ? '(' : '[', lo, hi);
    *out = (float)v;
    return ZC_OK;
}

/* "all" | "random:F" | "recent:F" | "random+recent:F:F", fractions in (0, 1]. */
static int check_probes(const char *opt, const char *val) {
    if (!strcmp(val, "all")) return ZC_OK;
    const char *kinds[] = {"random+recent:", "random:", "recent:"};
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(kinds[k]);
        if (strncmp(val, kinds[k], n)) continue;
        const char *p = val + n;
        for (int f = 0; f < (k == 0 ? 2 : 1); f++) {
            char *end;
            errno = 0;
            double x = strtod(p, &end);
            if (end == p || errno || !(x > 0 && x <= 1))
                return bad_value(opt, val, "needs fractions in (0, 1], e.g. random+recent:0.05:0.05");
            p = end;
            if (k == 0 && f == 0) {
                if (*p != ':') return bad_value(opt, val, "needs two fractions: random+recent:R:S");
                p++;
            }
        }
        if (*p) return bad_value(opt, val, "has trailing characters");
        return ZC_OK;
    }
    return bad_value(opt, val, "is not a probe policy (all, random:F, recent:F, random+recent:F:F)");
}

/* val must be one of names[0..n-1], exactly: *out = its index. */
static int parse_choice(const char *opt, const char *val, const char *const *names, int n, int *out) {
    for (int i = 0; i < n; i++)
        if (!strcmp(val, names[i])) {
            *out = i;
            return ZC_OK;
        }
    char list[96] = "";
    size_t len = 0;
    for (int i = 0; i < n && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
    return zc_error(ZC_ERR_ARG, "%s: '%s' is not one of %s", opt, val, list);
}

/* Bytes with an optional binary K/M/G suffix ("512M"). */
static int parse_bytes(const char *opt, const char *val, size_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    /* A digit first: strtoull would skip spaces and wrap " -5" to a huge count. */
    if (*val < '0' || *val > '9' || errno) return bad_value(opt, val, "is not a byte count");
    unsigned shift = 0;
    if (*end) {
        switch (*end) {
        case 'K': case 'k': shift = 10; break;
        case 'M': case 'm': shift = 20; break;
        case 'G': case 'g': shift = 30; break;
        default: return bad_value(opt, val, "has an unknown suffix (use K, M or G)");
        }
        if (end[1]) return bad_value(opt, val, "has trailing characters");
    }
    if (v == 0) return bad_value(opt, val, "must be positive");
    if (v > (SIZE_MAX >> shift)) return bad_value(opt, val, "is too large");
    *out = (size_t)(v << shift);
    return ZC_OK;
}

int zc_kv_config_parse_arg(zc_kv_config *cfg, const char *opt, const char *val) {
    int rc = ZC_OK, bits;
    if (strncmp(opt, "--kv", 4)) return 0;
    if (!val) {
        /* Known or not decides the message (a caller asks before fetching the
         * value): any value on a scratch copy consumes or refuses a known
         * option; only an unknown one gives 0. */
        zc_kv_config scratch = *cfg;
        if (!zc_kv_config_parse_arg(&scratch, opt, "")) return 0;
        return zc_error(ZC_ERR_ARG, "option %s needs a value", opt);
    }
    if (!strcmp(opt, "--kv")) {
        if (!find_policy(val)) return unknown_policy(val);
        snprintf(cfg->policy, sizeof cfg->policy, "%s", val);
    } else if (!strcmp(opt, "--kv-hi-bits")) {
        if ((rc = parse_long(opt, val, 1, 8, &bits)) == ZC_OK) cfg->k_hi_bits = cfg->v_hi_bits = bits;
    } else if (!strcmp(opt, "--kv-lo-bits")) {
        if ((rc = parse_long(opt, val, 1, 8, &bits)) == ZC_OK) cfg->k_lo_bits = cfg->v_lo_bits = bits;
    } else if (!strcmp(opt, "--kv-k-hi-bits")) {
        rc = parse_long(opt, val, 1, 8, &cfg->k_hi_bits);
    } else if (!strcmp(opt, "--kv-k-lo-bits")) {
        rc = parse_long(opt, val, 1, 8, &cfg->k_lo_bits);
    } else if (!strcmp(opt, "--kv-v-hi-bits")) {
        rc = parse_long(opt, val, 1, 8, &cfg->v_hi_bits);
    } else if (!strcmp(opt, "--kv-v-lo-bits")) {
        rc = parse_long(opt, val, 1, 8, &cfg->v_lo_bits);
    } else if (!strcmp(opt, "--kv-bits")) {
        /* One flag, two readings: an average bit budget for mixed-precision
         * policies (target_bits) and, when integral, the width of the uniform
         * ones (bits). */
        float b;
        if ((rc = parse_float(opt, val, 1, 8, 0, &b)) == ZC_OK) {
            cfg->target_bits = b;
            if (b == floorf(b)) cfg->bits = (int)b;
        }
    } else if (!strcmp(opt, "--kv-salient-ratio")) {
        /* An explicit ratio replaces any bit budget given before it. */
        if ((rc = parse_float(opt, val, 0, 1, 0, &cfg->salient_ratio)) == ZC_OK) cfg->target_bits = 0;
    } else if (!strcmp(opt, "--kv-probes")) {
        if (strlen(val) >= sizeof cfg->probes) return bad_value(opt, val, "is too long");
        if ((rc = check_probes(opt, val)) == ZC_OK) snprintf(cfg->probes, sizeof cfg->probes, "%s", val);
    } else if (!strcmp(opt, "--kv-denom")) {
        int d;
        if ((rc = parse_choice(opt, val, DENOM_NAMES, 3, &d)) == ZC_OK) cfg->denom = (zc_sal_denom)d;
    } else if (!strcmp(opt, "--kv-decode-rule")) {
        int d;
        if ((rc = parse_choice(opt, val, DECODE_NAMES, 2, &d)) == ZC_OK) cfg->decode_rule = (zc_kv_decode_rule)d;
    } else if (!strcmp(opt, "--kv-int8-query")) {
        rc = parse_choice(opt, val, ONOFF_NAMES, 2, &cfg->int8_query);
    } else if (!strcmp(opt, "--kv-stream-gap")) {
        rc = parse_long(opt, val, 1, 1 << 20, &cfg->stream_gap);
    } else if (!strcmp(opt, "--kv-sinks")) {
        rc = parse_long(opt, val, 0, 1 << 20, &cfg->sinks);
    } else if (!strcmp(opt, "--kv-rotate")) {
        rc = parse_choice(opt, val, ONOFF_NAMES, 2, &cfg->rotate_keys);
    } else if (!strcmp(opt, "--kv-key-group")) {
        rc = parse_long(opt, val, 0, 1 << 20, &cfg->key_group);
    } else if (!strcmp(opt, "--kv-group")) {
        rc = parse_long(opt, val, 1, 1 << 16, &cfg->group_size);
    } else if (!strcmp(opt, "--kv-residual")) {
        rc = parse_long(opt, val, 0, 1 << 20, &cfg->residual);
    } else if (!strcmp(opt, "--kv-budget-ratio")) {
        rc = parse_float(opt, val, 0, 1, 1, &cfg->budget_ratio);
    } else if (!strcmp(opt, "--kv-seed")) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(val, &end, 10);
        if (*val < '0' || *val > '9' || *end || errno) return bad_value(opt, val, "is not a non-negative integer");
        cfg->seed = s;
    } else if (!strcmp(opt, "--kv-budget")) {
        rc = parse_bytes(opt, val, &cfg->budget_bytes);
    } else {
        return 0;
    }
    return rc == ZC_OK ? 1 : rc;
}

int zc_kv_config_parse_string(zc_kv_config *cfg, const char *policy, const char *options) {
    int rc;
    if (policy && (rc = zc_kv_config_parse_arg(cfg, "--kv", policy)) < 0) return rc;
    const char *p = options ? options : "";
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        if (!*p) return ZC_OK;
        /* One word: "--kv-NAME", "--kv-NAME=VALUE" or "NAME=VALUE". */
        size_t len = strcspn(p, " \t\n");
        char opt[64], val[64];
        const char *eq = memchr(p, '=', len);
        size_t name_len = eq ? (size_t)(eq - p) : len;
        int dashed = name_len > 2 && p[0] == '-' && p[1] == '-';
        if (!dashed && !eq)
            return zc_error(ZC_ERR_ARG, "KV options: '%.*s' is neither --kv-NAME VALUE nor NAME=VALUE",
                            (int)(len < 64 ? len : 64), p);
        int n = snprintf(opt, sizeof opt, "%s%.*s", dashed ? "" : "--kv-", (int)name_len, p);
        if (n < 0 || (size_t)n >= sizeof opt)
            return zc_error(ZC_ERR_ARG, "KV options: option '%.*s' is too long", (int)(name_len < 64 ? name_len : 64),
                            p);
        p += len;
        const char *v;
        size_t vlen;
        if (eq) {
            v = eq + 1;
            vlen = len - name_len - 1;
        } else { /* the value is the next word */
            while (*p == ' ' || *p == '\t' || *p == '\n') p++;
            v = p;
            vlen = strcspn(p, " \t\n");
            if (!vlen) return zc_error(ZC_ERR_ARG, "KV options: option %s needs a value", opt);
            p += vlen;
        }
        if (vlen >= sizeof val) return zc_error(ZC_ERR_ARG, "KV options: the value of %s is too long", opt);
        memcpy(val, v, vlen);
        val[vlen] = 0;
        if (!strcmp(opt, "--kv"))
            return zc_error(ZC_ERR_ARG, "KV options: the policy is named apart from its options");
        rc = zc_kv_config_parse_arg(cfg, opt, val);
        if (rc == 0) return zc_error(ZC_ERR_ARG, "KV options: unknown option %s", opt);
        if (rc < 0) return rc;
    }
}

const char *zc_kv_policy_name(int i) { return i >= 0 && (size_t)i < N_POLICIES ? POLICIES[i].name : NULL; }

int zc_kv_describe(const char *policy, const char *options, char *desc, size_t cap) {
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    int rc = zc_kv_config_parse_string(&cfg, policy, options);
    if (rc != ZC_OK) return rc;
    if (desc && cap) zc_kv_config_describe(&cfg, desc, cap);
    return ZC_OK;
}

void zc_kv_config_describe(const zc_kv_config *c, char *buf, size_t cap) {
    const char *p = c->policy;
    char budget[48] = "";
    if (c->budget_bytes) snprintf(budget, sizeof budget, ", budget %zu bytes", c->budget_bytes);
    const char *int8 = ONOFF_NAMES[c->int8_query != 0];
    int zip = !strcmp(p, "zipcache");
    if (!strcmp(p, "fp32") || !strcmp(p, "fp16")) {
        snprintf(buf, cap, "%s (uncompressed, %s bits/element)%s", p, p + 2, budget);
    } else if (zip || !strcmp(p, "mikv")) {
        char mix[64], sal[128];
        if (c->target_bits > 0)
            snprintf(mix, sizeof mix, "budget %.3g bits", (double)c->target_bits);
        else if (!c->k_hi_bits && !c->k_lo_bits && !c->v_hi_bits && !c->v_lo_bits)
            snprintf(mix, sizeof mix, "budget %.3g bits (default)", ZC_ZIP_DEFAULT_BITS);
        else
            snprintf(mix, sizeof mix, "salient ratio %.3g", (double)c->salient_ratio);
        /* mikv fixes its saliency (kv_variants.c): the probe options do not apply */
        if (zip)
            snprintf(sal, sizeof sal, "probes %s, denom %s, decode rule %s", c->probes,
                     name_of(DENOM_NAMES, 3, (int)c->denom), name_of(DECODE_NAMES, 2, (int)c->decode_rule));
        else
            snprintf(sal, sizeof sal, "accumulated scores of all queries");
        char widths[64] = "widths chosen per segment"; /* all 0 (kv_zipcache.c); any given: 0 = 4 hi, 2 lo */
        if (c->k_hi_bits || c->k_lo_bits || c->v_hi_bits || c->v_lo_bits)
            snprintf(widths, sizeof widths, "K %d/%d bits, V %d/%d bits", c->k_hi_bits ? c->k_hi_bits : 4,
                     c->k_lo_bits ? c->k_lo_bits : 2, c->v_hi_bits ? c->v_hi_bits : 4, c->v_lo_bits ? c->v_lo_bits : 2);
        snprintf(buf, cap, "%s (%s, %s, %s, stream gap %d, sinks %d, key group %d,%s int8 query %s)%s", p, widths,
                 mix, sal, c->stream_gap, c->sinks, c->key_group, c->rotate_keys ? " rotated keys," : "", int8, budget);
    } else if (!strcmp(p, "uniform")) {
        snprintf(buf, cap, "uniform (%d bits, key group %d, int8 query %s)%s", zc_kv_config_bits(c), c->key_group,
                 int8, budget);
    } else if (!strcmp(p, "kivi")) {
        snprintf(buf, cap, "kivi (%d bits, group %d, fp16 residual %d)%s", zc_kv_config_bits(c), c->group_size,
                 c->residual, budget);
    } else if (!strcmp(p, "h2o")) {
        snprintf(buf, cap, "h2o (keep %.3g of tokens, sinks %d)%s", (double)c->budget_ratio, c->sinks, budget);
    } else {
        snprintf(buf, cap, "%s%s", p, budget);
    }
}

/* ---- Helpers of the dense policies (kv_impl.h) ---------------------------- */
void zc_kv_base_init(zc_kv_cache *c, const zc_kv_ops *ops, const zc_kv_config *cfg, const zc_kv_shape *shape,
                     zc_pool *pool) {
    c->ops = ops;
    c->shape = *shape;
    c->cfg = *cfg;
    c->pool = pool;
}

int zc_kv_check_write(const zc_kv_cache *c, int layer, int pos, int n, int have) {
    const zc_kv_shape *s = &c->shape;
    if (!zc_kv_has_layer(c, layer) || n < 0 || pos != have)
        return zc_error(ZC_ERR_ARG, "kv %s: write of layer %d at %d, expected position %d", c->ops->name, layer, pos,
                        zc_kv_has_layer(c, layer) ? have : -1);
    if (n > s->max_ctx - pos)
        return zc_error(ZC_ERR_LIMIT, "kv %s: %d tokens at position %d exceed the context of %d", c->ops->name, n,
                        pos, s->max_ctx);
    return ZC_OK;
}

int zc_kv_check_read(const zc_kv_cache *c, int layer, int pos, int n, int have) {
    if (!zc_kv_has_layer(c, layer) || pos < 0 || n < 0 || pos + n > have)
        return zc_error(ZC_ERR_ARG, "kv %s: attention at %d..%d of layer %d, which holds %d tokens", c->ops->name,
                        pos, pos + n - 1, layer, zc_kv_has_layer(c, layer) ? have : -1);
    return ZC_OK;
}

void zc_kv_written(zc_kv_cache *c, int layer, int have) {
    if (layer == c->shape.n_layers - 1) c->n_tokens = have;
}

int zc_kv_check_append(const zc_kv_cache *c, const int *n_layer, int layer, int pos, int n) {
    return zc_kv_check_write(c, layer, pos, n, zc_kv_has_layer(c, layer) ? n_layer[layer] : -1);
}

void zc_kv_appended(zc_kv_cache *c, int *n_layer, int layer, int pos, int n) {
    n_layer[layer] = pos + n;
    zc_kv_written(c, layer, pos + n);
}

int zc_kv_check_attend(const zc_kv_cache *c, const int *n_layer, int layer, int pos, int n) {
    return zc_kv_check_read(c, layer, pos, n, zc_kv_has_layer(c, layer) ? n_layer[layer] : -1);
}

int zc_kv_truncate_counts(zc_kv_cache *c, int *n_layer, int n_keep) {
    if (n_keep < 0 || n_keep > c->n_tokens)
        return zc_error(ZC_ERR_ARG, "kv %s: cannot keep %d of %d tokens", c->ops->name, n_keep, c->n_tokens);
    for (int l = 0; l < c->shape.n_layers; l++)
        if (n_layer[l] > n_keep) n_layer[l] = n_keep;
    c->n_tokens = n_keep;
    return ZC_OK;
}

/* ---- Ratios ------------------------------------------------------------- */
double zc_kv_ratio(const zc_kv_usage *u) {
    return u->total ? 16.0 * (double)u->elements / (8.0 * (double)u->total) : 0.0;
}

double zc_kv_bits_per_element(const zc_kv_usage *u) {
    return u->elements ? 8.0 * (double)u->total / (double)u->elements : 0.0;
}

void zc_kv_store_rows(int type, uint8_t *dst, const float *src, size_t n_elems) {
    if (type == ZC_TYPE_F32) {
        memcpy(dst, src, n_elems * sizeof(float));
    } else {
        zc_f32_to_fp16_row(src, (zc_fp16 *)dst, n_elems);
    }
}
