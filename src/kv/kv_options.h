/* KV cache options as data: each policy file declares the options it reads
 * in a table and its registry entry (zc_kv_policy) lists them with what its
 * description shows; kv.c walks the tables for everything generic: parsing
 * ("--kv-NAME VALUE", option strings), validation and its messages, the
 * defaults, the one-line description (which the session header stores, so
 * it is also what tells sessions of two configurations apart), the
 * --help listing, the width default and the bit-budget mapping of sweeps.
 *
 * A new option of a policy: a row in that policy's table (and an item in its
 * `shown` list if the description should show it) in the policy's file, plus
 * its field in zc_kv_config (kv.h), the one line of registry an option needs.
 *
 * Options are global, as the CLI always had them: any policy's option is
 * accepted whatever --kv names (before or after it) and read only by the
 * policies that use it. Two tables may declare the same name (h2o and
 * zipcache both read --kv-sinks); such rows must agree on field, type, range
 * and default (tests/test_kv_options.c checks), the first one parses. */
#ifndef ZC_KV_KV_OPTIONS_H
#define ZC_KV_KV_OPTIONS_H

#include <stddef.h>

#include "kv/kv.h"

typedef enum {
    ZC_KV_OPT_INT,     /* int field; a decimal integer in [lo, hi] */
    ZC_KV_OPT_FLOAT,   /* float field; a finite number in [lo, hi], or (lo, hi] with lo_open */
    ZC_KV_OPT_CHOICE,  /* int (or enum) field; one of choices[], stored as its index */
    ZC_KV_OPT_TEXT,    /* char[] field; text that check() accepts, shorter than the field */
    ZC_KV_OPT_U64,     /* uint64_t field; a non-negative decimal integer */
    ZC_KV_OPT_BYTES,   /* size_t field; a positive byte count with an optional K/M/G suffix */
} zc_kv_opt_type;

/* The zc_kv_config field an option stores into: ZC_KV_FIELD(stream_gap). */
#define ZC_KV_FIELD(f) .offset = offsetof(zc_kv_config, f), .size = sizeof(((zc_kv_config *)0)->f)

typedef struct zc_kv_option {
    const char *name;            /* "stream-gap": --kv-stream-gap, stream-gap=N in option strings */
    zc_kv_opt_type type;
    size_t offset, size;         /* the field (ZC_KV_FIELD); size 0: none, set() applies the value */
    double lo, hi;               /* INT, FLOAT: the accepted range */
    int lo_open;                 /* FLOAT: lo itself is refused */
    const char *const *choices;  /* CHOICE: the names, indexed by value, NULL-terminated */
    double def;                  /* the default of a numeric field (may lie outside [lo, hi]: 0 = "the policy chooses") */
    const char *def_text;        /* TEXT: the default */
    /* TEXT: ZC_OK, or ZC_ERR_ARG with a message naming opt and val. */
    int (*check)(const char *opt, const char *val);
    /* The option's further effects, after the field (if any) is stored;
     * numeric types only. */
    void (*set)(zc_kv_config *cfg, double value);
    const char *help;            /* one line for --help: what it does, for whom */
} zc_kv_option;

/* One item of a policy's description "NAME (item, item, ...)": an option's
 * value in a template ("stream gap {}": {} becomes the value as parsed, a
 * choice by its name, a float to 3 significant digits), a fixed text
 * (option NULL, fn NULL) or text written by fn (an empty one is left out).
 * Policies built on one machinery can share a list: an item with `only`
 * set shows in that policy's description alone. */
typedef struct {
    const char *option;
    const char *text;
    void (*fn)(const zc_kv_config *cfg, char *buf, size_t cap);
    const char *only;
} zc_kv_shown;
/* An option's value in a template: ZC_KV_SHOW("stream-gap", "stream gap {}"). */
#define ZC_KV_SHOW(opt, tmpl) {.option = (opt), .text = (tmpl)}

typedef struct zc_kv_policy {
    const char *name;
    int (*create)(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out);
    const zc_kv_option *options; /* the options it reads besides the common ones, ended by a row with no name;
                                    policies built on another's machinery may share its table */
    const zc_kv_shown *shown;    /* its description's items in order, ended by {0}; NULL: the name alone */
    int default_bits;            /* zc_kv_config_bits when cfg->bits is 0; 0: not a uniform-width policy */
    /* Set cfg for a budget of `bits` stored bits per element (sweeps);
     * NULL: the policy's size is fixed, the budget changes nothing. */
    void (*budget)(zc_kv_config *cfg, double bits);
    int banded;                  /* create() honours shape.band (sliding-window layers inside the policy) */
} zc_kv_policy;

/* The registry (kv.c), in --help and zc_kv_policy_name order; NULL past the end. */
const zc_kv_policy *zc_kv_policy_at(int i);
const zc_kv_policy *zc_kv_policy_find(const char *name);
/* The options every policy shares (kv.c: --kv-bits, --kv-budget), ended by a row with no name. */
const zc_kv_option *zc_kv_common_options(void);
/* The row that parses --kv-<name> (the common ones first, then the policies' in registry order), or NULL. */
const zc_kv_option *zc_kv_option_find(const char *name);
/* The option's value in cfg as text that parses back to the same bytes
 * (floats to 9 significant digits). Returns the length snprintf would
 * write; -1 for an option without a field. */
int zc_kv_option_value(const zc_kv_option *o, const zc_kv_config *cfg, char *buf, size_t cap);
/* The --help listing of every option, one line each (with the policies that
 * read it, its values and default), into buf; returns the length snprintf
 * would need, so a caller can size the buffer. */
size_t zc_kv_options_help(char *buf, size_t cap);
/* Map a bit budget onto `policy` (sets cfg->policy first): 1 if the policy
 * exists (a fixed-size one is left as it is), 0 if not. */
int zc_kv_config_for_budget(zc_kv_config *cfg, const char *policy, double bits);

/* Shared pieces of the policies' tables (kv.c). */
extern const char *const zc_kv_onoff[];           /* {"off", "on", NULL} */
/* "N bits": the width of a uniform-width policy (zc_kv_config_bits). */
void zc_kv_show_width(const zc_kv_config *cfg, char *buf, size_t cap);
/* The budget hook of a uniform-width policy: the widest whole width within it, at least 1. */
void zc_kv_budget_width(zc_kv_config *cfg, double bits);

#endif
