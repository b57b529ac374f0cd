/* KV cache configuration and the policy registry: the generic walk over the
 * policies' option tables (kv_options.h) for defaults, --kv* parsing,
 * description and help, and the helpers every policy shares. The policies
 * themselves live one per file (kv_fp.c, ...) with their options; this file
 * only lists them. */
#include "kv/kv.h"
#include "kv/kv_impl.h"
#include "kv/kv_options.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/ggml_blocks.h"
#include "util/error.h"
#include "util/fp16.h"
#include "util/small.h"

/* ---- Registry ------------------------------------------------------------
 * Adding a policy: define its zc_kv_policy (constructor, options, what its
 * description shows) in src/kv/kv_<name>.c, declare it here and add one row
 * to POLICIES. Nothing else in the engine changes. */
extern const zc_kv_policy zc_kv_policy_fp32, zc_kv_policy_fp16;            /* kv_fp.c */
extern const zc_kv_policy zc_kv_policy_q8_0, zc_kv_policy_q4_0, zc_kv_policy_q4_0r; /* kv_blocks.c */
extern const zc_kv_policy zc_kv_policy_h2o;                                /* kv_h2o.c */
extern const zc_kv_policy zc_kv_policy_kivi;                               /* kv_kivi.c */
extern const zc_kv_policy zc_kv_policy_zipcache;                           /* kv_zipcache.c */
extern const zc_kv_policy zc_kv_policy_uniform, zc_kv_policy_mikv;         /* kv_variants.c */

static const zc_kv_policy *const POLICIES[] = {
    &zc_kv_policy_fp32, &zc_kv_policy_fp16, &zc_kv_policy_q8_0,     &zc_kv_policy_q4_0,    &zc_kv_policy_q4_0r,
    &zc_kv_policy_h2o,  &zc_kv_policy_kivi, &zc_kv_policy_zipcache, &zc_kv_policy_uniform, &zc_kv_policy_mikv,
};
#define N_POLICIES (sizeof POLICIES / sizeof POLICIES[0])

const zc_kv_policy *zc_kv_policy_at(int i) { return i >= 0 && (size_t)i < N_POLICIES ? POLICIES[i] : NULL; }

const zc_kv_policy *zc_kv_policy_find(const char *name) {
    for (size_t i = 0; i < N_POLICIES; i++)
        if (!strcmp(POLICIES[i]->name, name)) return POLICIES[i];
    return NULL;
}

const char *zc_kv_policy_name(int i) { return i >= 0 && (size_t)i < N_POLICIES ? POLICIES[i]->name : NULL; }

static int unknown_policy(const char *name) {
    char avail[256] = "";
    size_t n = 0;
    for (size_t i = 0; i < N_POLICIES && n < sizeof avail; i++)
        n += (size_t)snprintf(avail + n, sizeof avail - n, "%s%s", i ? ", " : "", POLICIES[i]->name);
    return zc_error(ZC_ERR_ARG, "unknown KV policy '%s' (available: %s)", name, avail);
}

int zc_kv_create(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out) {
    *out = NULL;
    const zc_kv_policy *p = zc_kv_policy_find(cfg->policy);
    if (!p) return unknown_policy(cfg->policy);
    const zc_kv_shape *s = shape;
    if (s->n_layers <= 0 || s->n_heads <= 0 || s->n_kv_heads <= 0 || s->head_dim <= 0 || s->max_ctx <= 0 ||
        s->n_heads % s->n_kv_heads)
        return zc_error(ZC_ERR_ARG, "kv cache: bad shape (layers %d, heads %d/%d, head_dim %d, max_ctx %d)",
                        s->n_layers, s->n_heads, s->n_kv_heads, s->head_dim, s->max_ctx);
    for (int l = 0; s->band && l < s->n_layers; l++)
        if (s->band[l] < 0 || (s->band[l] > 0 && s->band[l] < s->max_ctx && !p->banded))
            return zc_error(s->band[l] < 0 ? ZC_ERR_ARG : ZC_ERR_UNSUPPORTED,
                            "kv %s: layer %d's sliding window %d %s", p->name, l, s->band[l],
                            s->band[l] < 0 ? "is negative" : "cannot be held inside this policy");
    return p->create(cfg, shape, pool, out);
}

/* ---- The common options ----------------------------------------------------- */
const char *const zc_kv_onoff[] = {"off", "on", NULL};

/* One flag, two readings: an average bit budget for mixed-precision policies
 * (target_bits) and, when integral, the width of the uniform ones (bits). */
static void set_bits(zc_kv_config *cfg, double b) {
    cfg->target_bits = (float)b;
    if (b == floor(b)) cfg->bits = (int)b;
}

static const zc_kv_option COMMON[] = {
    {.name = "bits", .type = ZC_KV_OPT_FLOAT, .lo = 1, .hi = 8, .set = set_bits,
     .help = "stored bits per element: the budget of a mixed-precision policy (zipcache: default 4, its widths "
             "chosen for it unless a --kv-*-bits width is given), and when whole the width of a uniform one"},
    {.name = "budget", .type = ZC_KV_OPT_BYTES, ZC_KV_FIELD(budget_bytes), .def = 0,
     .help = "cap on the cache's total bytes (suffix K, M or G); default none"},
    {0},
};

const zc_kv_option *zc_kv_common_options(void) { return COMMON; }

static const zc_kv_option *find_in(const zc_kv_option *table, const char *name) {
    for (const zc_kv_option *o = table; o && o->name; o++)
        if (!strcmp(o->name, name)) return o;
    return NULL;
}

const zc_kv_option *zc_kv_option_find(const char *name) {
    const zc_kv_option *o = find_in(COMMON, name);
    for (size_t i = 0; !o && i < N_POLICIES; i++) o = find_in(POLICIES[i]->options, name);
    return o;
}

void zc_kv_show_width(const zc_kv_config *cfg, char *buf, size_t cap) {
    snprintf(buf, cap, "%d bits", zc_kv_config_bits(cfg));
}

void zc_kv_budget_width(zc_kv_config *cfg, double bits) {
    int b = (int)floor(bits + 1e-9); /* never above the budget */
    cfg->bits = b < 1 ? 1 : b;
}

int zc_kv_config_for_budget(zc_kv_config *cfg, const char *policy, double bits) {
    snprintf(cfg->policy, sizeof cfg->policy, "%s", policy);
    const zc_kv_policy *p = zc_kv_policy_find(policy);
    if (!p) return 0;
    if (p->budget) p->budget(cfg, bits);
    return 1;
}

/* ---- Values: parse, store, format ---------------------------------------- */
typedef union {
    int i;      /* INT, CHOICE */
    float f;    /* FLOAT */
    uint64_t u; /* U64 */
    size_t z;   /* BYTES */
} opt_value;

static void *field_of(const zc_kv_option *o, zc_kv_config *cfg) { return (char *)cfg + o->offset; }
static const void *cfield_of(const zc_kv_option *o, const zc_kv_config *cfg) { return (const char *)cfg + o->offset; }

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

static int n_choices(const char *const *names) {
    int n = 0;
    while (names[n]) n++;
    return n;
}

/* val must be one of names[], exactly: *out = its index. */
static int parse_choice(const char *opt, const char *val, const char *const *names, int *out) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(val, names[i])) {
            *out = i;
            return ZC_OK;
        }
    char list[96] = "";
    size_t len = 0;
    for (int i = 0; names[i] && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
    return zc_error(ZC_ERR_ARG, "%s: '%s' is not one of %s", opt, val, list);
}

static int parse_u64(const char *opt, const char *val, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long s = strtoull(val, &end, 10);
    /* A digit first: strtoull would accept a sign and wrap "-3". */
    if (*val < '0' || *val > '9' || *end || errno) return bad_value(opt, val, "is not a non-negative integer");
    *out = s;
    return ZC_OK;
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

/* Parse val for option o (opt: the flag as given, for the message). */
static int parse_value(const zc_kv_option *o, const char *opt, const char *val, opt_value *v) {
    switch (o->type) {
    case ZC_KV_OPT_INT: return parse_long(opt, val, (long)o->lo, (long)o->hi, &v->i);
    case ZC_KV_OPT_FLOAT: return parse_float(opt, val, o->lo, o->hi, o->lo_open, &v->f);
    case ZC_KV_OPT_CHOICE: return parse_choice(opt, val, o->choices, &v->i);
    case ZC_KV_OPT_TEXT:
        if (strlen(val) >= o->size) return bad_value(opt, val, "is too long");
        return o->check ? o->check(opt, val) : ZC_OK;
    case ZC_KV_OPT_U64: return parse_u64(opt, val, &v->u);
    case ZC_KV_OPT_BYTES: return parse_bytes(opt, val, &v->z);
    }
    return zc_error(ZC_ERR_ARG, "%s: option of unknown type %d", opt, (int)o->type);
}

/* Store a parsed value (text: val) into o's field, if it has one. */
static void store_value(const zc_kv_option *o, zc_kv_config *cfg, const opt_value *v, const char *val) {
    if (!o->size) return;
    if (o->type == ZC_KV_OPT_TEXT)
        snprintf(field_of(o, cfg), o->size, "%s", val);
    else
        memcpy(field_of(o, cfg), v, o->size); /* the union's member of the type sits at its start */
}

static double numeric(const zc_kv_option *o, const opt_value *v) {
    switch (o->type) {
    case ZC_KV_OPT_INT: case ZC_KV_OPT_CHOICE: return v->i;
    case ZC_KV_OPT_FLOAT: return v->f;
    case ZC_KV_OPT_U64: return (double)v->u;
    case ZC_KV_OPT_BYTES: return (double)v->z;
    default: return 0;
    }
}

/* The value of o's field as text: floats to `digits` significant digits,
 * a choice by its name ("?" for a value outside the names). -1: no field. */
static int format_value(const zc_kv_option *o, const zc_kv_config *cfg, int digits, char *buf, size_t cap) {
    if (!o->size) return -1;
    const void *f = cfield_of(o, cfg);
    opt_value v;
    memset(&v, 0, sizeof v);
    if (o->type != ZC_KV_OPT_TEXT) memcpy(&v, f, o->size);
    switch (o->type) {
    case ZC_KV_OPT_INT: return snprintf(buf, cap, "%d", v.i);
    case ZC_KV_OPT_FLOAT: return snprintf(buf, cap, "%.*g", digits, (double)v.f);
    case ZC_KV_OPT_CHOICE:
        return snprintf(buf, cap, "%s", v.i >= 0 && v.i < n_choices(o->choices) ? o->choices[v.i] : "?");
    case ZC_KV_OPT_TEXT: return snprintf(buf, cap, "%s", (const char *)f);
    case ZC_KV_OPT_U64: return snprintf(buf, cap, "%llu", (unsigned long long)v.u);
    case ZC_KV_OPT_BYTES: return snprintf(buf, cap, "%zu", v.z);
    }
    return -1;
}

int zc_kv_option_value(const zc_kv_option *o, const zc_kv_config *cfg, char *buf, size_t cap) {
    return format_value(o, cfg, 9, buf, cap); /* 9 digits: every float reads back as itself */
}

/* ---- Configuration ------------------------------------------------------ */

/* Every table's defaults into cfg's fields (shared rows agree: the test). */
static void apply_defaults(const zc_kv_option *table, zc_kv_config *cfg) {
    for (const zc_kv_option *o = table; o && o->name; o++) {
        if (!o->size) continue;
        opt_value v;
        memset(&v, 0, sizeof v);
        switch (o->type) {
        case ZC_KV_OPT_INT: case ZC_KV_OPT_CHOICE: v.i = (int)o->def; break;
        case ZC_KV_OPT_FLOAT: v.f = (float)o->def; break;
        case ZC_KV_OPT_U64: v.u = (uint64_t)o->def; break;
        case ZC_KV_OPT_BYTES: v.z = (size_t)o->def; break;
        case ZC_KV_OPT_TEXT: break;
        }
        store_value(o, cfg, &v, o->def_text ? o->def_text : "");
    }
}

void zc_kv_config_default(zc_kv_config *cfg) {
    memset(cfg, 0, sizeof *cfg); /* fields no option owns (target_bits, bits) start at 0 */
    strcpy(cfg->policy, "zipcache"); /* the product's point: what a user gets without --kv */
    apply_defaults(COMMON, cfg);
    for (size_t i = 0; i < N_POLICIES; i++) apply_defaults(POLICIES[i]->options, cfg);
}

int zc_kv_config_bits(const zc_kv_config *cfg) {
    if (cfg->bits > 0) return cfg->bits;
    const zc_kv_policy *p = zc_kv_policy_find(cfg->policy);
    return p && p->default_bits ? p->default_bits : 4;
}

int zc_kv_config_parse_arg(zc_kv_config *cfg, const char *opt, const char *val) {
    if (strncmp(opt, "--kv", 4)) return 0;
    int policy = !strcmp(opt, "--kv");
    const zc_kv_option *o = !policy && !strncmp(opt, "--kv-", 5) ? zc_kv_option_find(opt + 5) : NULL;
    if (!policy && !o) return 0;
    if (!val) return zc_error(ZC_ERR_ARG, "option %s needs a value", opt);
    if (policy) {
        if (!zc_kv_policy_find(val)) return unknown_policy(val);
        snprintf(cfg->policy, sizeof cfg->policy, "%s", val);
        return 1;
    }
    opt_value v;
    memset(&v, 0, sizeof v);
    int rc = parse_value(o, opt, val, &v);
    if (rc) return rc; /* cfg untouched */
    store_value(o, cfg, &v, val);
    if (o->set) o->set(cfg, numeric(o, &v));
    return 1;
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

int zc_kv_describe(const char *policy, const char *options, char *desc, size_t cap) {
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    int rc = zc_kv_config_parse_string(&cfg, policy, options);
    if (rc != ZC_OK) return rc;
    if (desc && cap) zc_kv_config_describe(&cfg, desc, cap);
    return ZC_OK;
}

/* The row of `name` a policy's description shows: its own table's, else the common one. */
static const zc_kv_option *shown_option(const zc_kv_policy *p, const char *name) {
    const zc_kv_option *o = find_in(p->options, name);
    return o ? o : find_in(COMMON, name);
}

/* One description item into buf ("" when it shows nothing). */
static void show_item(const zc_kv_policy *p, const zc_kv_shown *s, const zc_kv_config *c, char *buf, size_t cap) {
    buf[0] = 0;
    if (s->fn) {
        s->fn(c, buf, cap);
        return;
    }
    const char *t = s->text ? s->text : "", *hole = s->option ? strstr(t, "{}") : NULL;
    if (!hole) {
        snprintf(buf, cap, "%s", t);
        return;
    }
    char val[64] = "?";
    const zc_kv_option *o = shown_option(p, s->option);
    if (o) format_value(o, c, 3, val, sizeof val);
    snprintf(buf, cap, "%.*s%s%s", (int)(hole - t), t, val, hole + 2);
}

void zc_kv_config_describe(const zc_kv_config *c, char *buf, size_t cap) {
    const zc_kv_policy *p = zc_kv_policy_find(c->policy);
    char text[1024];
    zc_text b = {text, sizeof text, 0};
    zc_text_printf(&b, "%s", c->policy);
    int n = 0;
    for (const zc_kv_shown *s = p ? p->shown : NULL; s && (s->option || s->text || s->fn); s++) {
        if (s->only && strcmp(s->only, p->name)) continue;
        char item[256];
        show_item(p, s, c, item, sizeof item);
        if (item[0]) zc_text_printf(&b, "%s%s", n++ ? ", " : " (", item);
    }
    if (n) zc_text_printf(&b, ")");
    if (c->budget_bytes) zc_text_printf(&b, ", budget %zu bytes", c->budget_bytes);
    if (cap) snprintf(buf, cap, "%s", text);
}

/* "zipcache, uniform, mikv": the policies whose table holds `name` ("" for a common option). */
static void readers(const char *name, char *buf, size_t cap) {
    zc_text b = {buf, cap, 0};
    buf[0] = 0;
    for (size_t i = 0; i < N_POLICIES; i++)
        if (find_in(POLICIES[i]->options, name)) zc_text_printf(&b, "%s%s", b.len ? ", " : "", POLICIES[i]->name);
}

static void help_row(zc_text *b, const zc_kv_option *o) {
    char flag[64], range[96] = "", def[64] = "", who[128];
    static const char *const meta[] = {"N", "X", "", "TEXT", "N", "BYTES"}; /* by zc_kv_opt_type */
    if (o->type == ZC_KV_OPT_CHOICE) {
        zc_text c = {flag, sizeof flag, 0};
        zc_text_printf(&c, "--kv-%s ", o->name);
        for (int i = 0; o->choices[i]; i++) zc_text_printf(&c, "%s%s", i ? "|" : "", o->choices[i]);
    } else {
        snprintf(flag, sizeof flag, "--kv-%s %s", o->name, meta[o->type]);
    }
    if (o->type == ZC_KV_OPT_INT) snprintf(range, sizeof range, "%.0f..%.0f", o->lo, o->hi);
    if (o->type == ZC_KV_OPT_FLOAT) snprintf(range, sizeof range, "%c%g, %g]", o->lo_open ? '(' : '[', o->lo, o->hi);
    zc_kv_config d;
    zc_kv_config_default(&d);
    if (o->size && (o->type != ZC_KV_OPT_BYTES || o->def)) {
        char v[48];
        format_value(o, &d, 3, v, sizeof v);
        snprintf(def, sizeof def, "%sdefault %s", range[0] ? "; " : "", v);
    }
    readers(o->name, who, sizeof who);
    zc_text_printf(b, "  %-30s %s", flag, o->help);
    if (range[0] || def[0]) zc_text_printf(b, " (%s%s)", range, def);
    if (who[0]) zc_text_printf(b, " [%s]", who);
    zc_text_printf(b, "\n");
}

/* The first policy whose table holds row o (policies may share a table). */
static size_t first_with(const zc_kv_option *o) {
    size_t i = 0;
    while (i < N_POLICIES && find_in(POLICIES[i]->options, o->name) != o) i++;
    return i;
}

size_t zc_kv_options_help(char *buf, size_t cap) {
    zc_text b = {buf, cap, 0};
    if (cap) buf[0] = 0;
    zc_text_printf(&b, "  %-30s %s\n", "--kv POLICY", "the KV cache policy (default zipcache):");
    for (size_t i = 0; i < N_POLICIES; i++) zc_text_printf(&b, "%s%s", i ? ", " : "      ", POLICIES[i]->name);
    zc_text_printf(&b, "\n");
    /* each option once, where it parses (the first table naming it) */
    for (const zc_kv_option *o = COMMON; o->name; o++) help_row(&b, o);
    for (size_t i = 0; i < N_POLICIES; i++)
        for (const zc_kv_option *o = POLICIES[i]->options; o && o->name; o++)
            if (zc_kv_option_find(o->name) == o && first_with(o) == i) help_row(&b, o);
    return b.len;
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
