/* The KV options as data (src/kv/kv_options.h): every row of every policy's
 * table, and the common ones, checked through the generic path alone, so an
 * option added to a policy's table is checked here without an edit:
 *   - the rows are well formed, and rows of one name in several tables agree;
 *   - zc_kv_config_default holds each row's default;
 *   - a value parses ("--kv-NAME V" and "NAME=V"), reads back as text and
 *     parses again to the same bytes;
 *   - out-of-range, malformed and unknown options are refused with a message
 *     naming the option, leaving the configuration as it was;
 *   - every item a policy's description shows resolves to an option and
 *     changes when that option does; the --help listing names every option
 *     once and every policy;
 *   - a session saved with a shown option changed restores into a context
 *     of the same options and is refused by one with the defaults (the
 *     header stores the description). Model: stories260K (head_dim 8, so the
 *     q8_0/q4_0 policies, which need multiples of 32, skip that part). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"
#include "kv/kv_options.h"
#include "tt.h"
#include "zipcache.h"

/* Every row of every table: the common ones, then each policy's (a table
 * that policies share once); filled by main. */
#define MAX_ROWS 256
static const zc_kv_option *ROWS[MAX_ROWS];
static int N_ROWS;

static int all_rows(const zc_kv_option **rows) {
    const zc_kv_option *tables[64];
    int nt = 0, n = 0;
    tables[nt++] = zc_kv_common_options();
    for (int i = 0; zc_kv_policy_at(i) && nt < 64; i++) {
        const zc_kv_option *t = zc_kv_policy_at(i)->options;
        int seen = !t;
        for (int j = 0; j < nt && !seen; j++) seen = tables[j] == t;
        if (!seen) tables[nt++] = t;
    }
    for (int i = 0; i < nt; i++)
        for (const zc_kv_option *o = tables[i]; o->name && n < MAX_ROWS; o++) rows[n++] = o;
    return n;
}

/* Whether description item s shows in policy p's description. */
static int item_of(const zc_kv_policy *p, const zc_kv_shown *s) { return !s->only || !strcmp(s->only, p->name); }

static int n_choices(const zc_kv_option *o) {
    int n = 0;
    while (o->choices && o->choices[n]) n++;
    return n;
}

/* A valid value other than the default, as text: the generic rule per type
 * (TEXT options name theirs here: their syntax is their check()'s). */
static void sample(const zc_kv_option *o, char *buf, size_t cap) {
    switch (o->type) {
    case ZC_KV_OPT_INT: snprintf(buf, cap, "%.0f", o->def == o->lo ? o->lo + 1 : o->lo); break;
    case ZC_KV_OPT_FLOAT: snprintf(buf, cap, "%g", o->def == o->hi ? (o->lo + o->hi) / 2 : o->hi); break;
    case ZC_KV_OPT_CHOICE: snprintf(buf, cap, "%s", o->choices[((int)o->def + 1) % n_choices(o)]); break;
    case ZC_KV_OPT_TEXT: snprintf(buf, cap, "%s", !strcmp(o->name, "probes") ? "all" : ""); break;
    case ZC_KV_OPT_U64: snprintf(buf, cap, "%.0f", o->def + 7); break;
    case ZC_KV_OPT_BYTES: snprintf(buf, cap, "3M"); break;
    }
}

static size_t type_size(zc_kv_opt_type t) {
    switch (t) {
    case ZC_KV_OPT_INT: case ZC_KV_OPT_CHOICE: return sizeof(int);
    case ZC_KV_OPT_FLOAT: return sizeof(float);
    case ZC_KV_OPT_U64: return sizeof(uint64_t);
    case ZC_KV_OPT_BYTES: return sizeof(size_t);
    case ZC_KV_OPT_TEXT: return 0;
    }
    return 0;
}

static void test_rows_well_formed(void) {
    for (int i = 0; i < N_ROWS; i++) {
        const zc_kv_option *o = ROWS[i];
        TT_CHECK(o->name[0] && strspn(o->name, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(o->name),
                 "name '%s'", o->name);
        TT_CHECK(o->help && o->help[0], "%s: no help", o->name);
        TT_CHECK(o->size || o->set, "%s: neither a field nor set()", o->name);
        if (o->size && o->type != ZC_KV_OPT_TEXT)
            TT_CHECK(o->size == type_size(o->type), "%s: field of %zu bytes for its type", o->name, o->size);
        if (o->type == ZC_KV_OPT_INT || o->type == ZC_KV_OPT_FLOAT) {
            TT_CHECK(o->lo < o->hi, "%s: range [%g, %g]", o->name, o->lo, o->hi);
            /* a default outside the range means "the policy chooses": 0 only */
            TT_CHECK(o->def == 0 || (o->def >= o->lo && o->def <= o->hi && !(o->lo_open && o->def == o->lo)),
                     "%s: default %g outside [%g, %g]", o->name, o->def, o->lo, o->hi);
        }
        if (o->type == ZC_KV_OPT_CHOICE)
            TT_CHECK(n_choices(o) >= 2 && o->def >= 0 && o->def < n_choices(o), "%s: choices", o->name);
        if (o->type == ZC_KV_OPT_TEXT) {
            TT_CHECK(o->size > 0 && o->def_text && strlen(o->def_text) < o->size, "%s: text field", o->name);
            TT_CHECK(!o->check || o->check("--kv-x", o->def_text) == ZC_OK, "%s: default refused", o->name);
            char v[64];
            sample(o, v, sizeof v);
            TT_CHECK(v[0], "%s: a TEXT option needs its sample value in this test", o->name);
        }
        for (const zc_kv_option *p = o + 1; p->name; p++)
            TT_CHECK(strcmp(o->name, p->name), "%s twice in one table", o->name);
        /* the same name in another table: the same option */
        const zc_kv_option *f = zc_kv_option_find(o->name);
        int same_text = f && (f->def_text == o->def_text ||
                              (f->def_text && o->def_text && !strcmp(f->def_text, o->def_text)));
        TT_CHECK(same_text && f->type == o->type && f->offset == o->offset && f->size == o->size && f->lo == o->lo &&
                     f->hi == o->hi && f->lo_open == o->lo_open && f->def == o->def && f->choices == o->choices &&
                     f->set == o->set,
                 "%s: two tables disagree", o->name);
    }
    TT_CHECK(N_ROWS >= 20 && N_ROWS < MAX_ROWS, "%d rows", N_ROWS);
    TT_CHECK(zc_kv_option_find("stream-gap") && !zc_kv_option_find("nosuch") && !zc_kv_option_find(""), "find");
}

static void test_defaults(void) {
    zc_kv_config d;
    zc_kv_config_default(&d);
    for (int i = 0; i < N_ROWS; i++) {
        const zc_kv_option *o = ROWS[i];
        char got[96], want[96];
        if (zc_kv_option_value(o, &d, got, sizeof got) < 0) continue; /* no field */
        if (o->type == ZC_KV_OPT_TEXT) snprintf(want, sizeof want, "%s", o->def_text);
        else if (o->type == ZC_KV_OPT_CHOICE) snprintf(want, sizeof want, "%s", o->choices[(int)o->def]);
        else if (o->type == ZC_KV_OPT_FLOAT) snprintf(want, sizeof want, "%.9g", (double)(float)o->def);
        else snprintf(want, sizeof want, "%.0f", o->def);
        TT_CHECK(!strcmp(got, want), "%s: default %s, table says %s", o->name, got, want);
    }
}

static void test_parse_roundtrip(void) {
    for (int i = 0; i < N_ROWS; i++) {
        const zc_kv_option *o = ROWS[i];
        char v[64], flag[64], str[128], text[96];
        sample(o, v, sizeof v);
        snprintf(flag, sizeof flag, "--kv-%s", o->name);
        zc_kv_config a, b, c;
        zc_kv_config_default(&a);
        c = b = a;
        TT_CHECK(zc_kv_config_parse_arg(&a, flag, v) == 1, "%s %s: %s", flag, v, zc_last_error());
        snprintf(str, sizeof str, " %s=%s ", o->name, v);
        TT_CHECK(zc_kv_config_parse_string(&b, NULL, str) == ZC_OK && !memcmp(&a, &b, sizeof a), "'%s': %s", str,
                 zc_last_error());
        if (zc_kv_option_value(o, &a, text, sizeof text) < 0) continue;
        TT_CHECK(zc_kv_config_parse_arg(&c, flag, text) == 1 && !memcmp(&a, &c, sizeof a),
                 "%s: %s reads back as '%s', which parses to other bytes", o->name, v, text);
        zc_kv_config_default(&c);
        TT_CHECK(memcmp(&a, &c, sizeof a), "%s %s left the defaults", flag, v);
    }
}

/* opt val must be refused with ZC_ERR_ARG, a message naming opt and containing
 * why, and cfg unchanged. */
static void refused(zc_kv_config *cfg, const char *opt, const char *val, const char *why) {
    zc_kv_config before = *cfg;
    int rc = zc_kv_config_parse_arg(cfg, opt, val);
    TT_CHECK(rc == ZC_ERR_ARG && strstr(zc_last_error(), opt) && strstr(zc_last_error(), why), "%s '%s' -> %d: %s",
             opt, val ? val : "(null)", rc, zc_last_error());
    TT_CHECK(!memcmp(&before, cfg, sizeof before), "%s '%s' changed the configuration", opt, val ? val : "(null)");
}

static void test_refusals(void) {
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    /* refused whichever policy is named: the options are global */
    TT_CHECK(zc_kv_config_parse_string(&cfg, "kivi", "stream-gap=7") == ZC_OK, "%s", zc_last_error());
    for (int i = 0; i < N_ROWS; i++) {
        const zc_kv_option *o = ROWS[i];
        char flag[64], v[64];
        snprintf(flag, sizeof flag, "--kv-%s", o->name);
        refused(&cfg, flag, NULL, "needs a value");
        switch (o->type) {
        case ZC_KV_OPT_INT:
            snprintf(v, sizeof v, "%.0f", o->hi + 1);
            refused(&cfg, flag, v, "out of range");
            snprintf(v, sizeof v, "%.0f", o->lo - 1);
            refused(&cfg, flag, v, "out of range");
            refused(&cfg, flag, "3x", "not an integer");
            break;
        case ZC_KV_OPT_FLOAT:
            snprintf(v, sizeof v, "%g", o->hi + 1);
            refused(&cfg, flag, v, "out of range");
            snprintf(v, sizeof v, "%g", o->lo_open ? o->lo : o->lo - 1);
            refused(&cfg, flag, v, "out of range");
            refused(&cfg, flag, "inf", "not a number");
            break;
        case ZC_KV_OPT_CHOICE: refused(&cfg, flag, "maybe", "is not one of"); break;
        case ZC_KV_OPT_TEXT: {
            char longer[1024];
            memset(longer, 'a', o->size);
            longer[o->size] = 0; /* one byte too many for the field with its NUL */
            refused(&cfg, flag, longer, "too long");
            break;
        }
        case ZC_KV_OPT_U64: refused(&cfg, flag, "-1", "non-negative"); break;
        case ZC_KV_OPT_BYTES: refused(&cfg, flag, "0", "positive"); break;
        }
        /* unknown: a name one letter longer, both spellings */
        char bad[80], str[96];
        snprintf(bad, sizeof bad, "--kv-%sx", o->name);
        TT_CHECK(zc_kv_config_parse_arg(&cfg, bad, "1") == 0, "%s consumed", bad);
        snprintf(str, sizeof str, "%sx=1", o->name);
        zc_kv_config before = cfg;
        TT_CHECK(zc_kv_config_parse_string(&cfg, NULL, str) == ZC_ERR_ARG &&
                     strstr(zc_last_error(), "unknown option") && strstr(zc_last_error(), bad) &&
                     !memcmp(&before, &cfg, sizeof cfg),
                 "'%s': %s", str, zc_last_error());
    }
}

/* The option a description item shows, through the same lookup as kv.c: the
 * policy's own table, else the common one. */
static const zc_kv_option *shown(const zc_kv_policy *p, const char *name) {
    for (const zc_kv_option *o = p->options; o && o->name; o++)
        if (!strcmp(o->name, name)) return o;
    for (const zc_kv_option *o = zc_kv_common_options(); o->name; o++)
        if (!strcmp(o->name, name)) return o;
    return NULL;
}

static void test_describe_items(void) {
    int policies = 0;
    for (int i = 0; zc_kv_policy_at(i); i++, policies++) {
        const zc_kv_policy *p = zc_kv_policy_at(i);
        TT_CHECK(zc_kv_policy_find(p->name) == p && !strcmp(zc_kv_policy_name(i), p->name), "%s: registry", p->name);
        char base[400], d[400];
        TT_CHECK(zc_kv_describe(p->name, NULL, base, sizeof base) == ZC_OK && !strncmp(base, p->name, strlen(p->name)),
                 "%s: %s", p->name, base);
        for (const zc_kv_shown *s = p->shown; s && (s->option || s->text || s->fn); s++) {
            TT_CHECK(!!s->fn + !!s->text >= 1, "%s: an empty item", p->name);
            TT_CHECK(!s->only || zc_kv_policy_find(s->only), "%s: an item for policy '%s'", p->name, s->only);
            if (!s->option || !item_of(p, s)) continue;
            const zc_kv_option *o = shown(p, s->option);
            TT_CHECK(o && o->size, "%s shows '%s', which is none of its options", p->name, s->option);
            TT_CHECK(s->text && strstr(s->text, "{}"), "%s: item of %s has no {}", p->name, s->option);
            if (!o || !o->size) continue;
            char v[64], opts[96], text[96];
            sample(o, v, sizeof v);
            snprintf(opts, sizeof opts, "%s=%s", o->name, v);
            TT_CHECK(zc_kv_describe(p->name, opts, d, sizeof d) == ZC_OK && strcmp(d, base), "%s %s: '%s'", p->name,
                     opts, d);
            zc_kv_config c;
            zc_kv_config_default(&c);
            zc_kv_config_parse_string(&c, p->name, opts);
            zc_kv_option_value(o, &c, text, sizeof text);
            if (o->type != ZC_KV_OPT_FLOAT) TT_CHECK(strstr(d, text), "%s %s: '%s' lacks %s", p->name, opts, d, text);
        }
    }
    TT_CHECK(policies >= 10, "%d policies", policies);
    char d[64];
    TT_CHECK(zc_kv_describe("zstd", NULL, d, sizeof d) == ZC_ERR_ARG && strstr(zc_last_error(), "'zstd'"), "%s",
             zc_last_error());
}

static void test_help_lists_all(void) {
    size_t n = zc_kv_options_help(NULL, 0);
    char *h = malloc(n + 1);
    TT_CHECK(h && zc_kv_options_help(h, n + 1) == n && strlen(h) == n, "help of %zu bytes", n);
    if (!h) return;
    for (int i = 0; i < N_ROWS; i++) {
        const zc_kv_option *o = ROWS[i];
        char flag[64];
        snprintf(flag, sizeof flag, "  --kv-%s ", o->name);
        const char *at = strstr(h, flag);
        TT_CHECK(at && !strstr(at + 1, flag), "%s listed %s", flag, at ? "twice" : "never");
    }
    for (int i = 0; zc_kv_policy_name(i); i++) TT_CHECK(strstr(h, zc_kv_policy_name(i)), "%s", zc_kv_policy_name(i));
    char small[16];
    TT_CHECK(zc_kv_options_help(small, sizeof small) == n && strlen(small) == sizeof small - 1, "truncated help");
    free(h);
}

static zc_context *context(const zc_model *m, const char *policy, const char *options) {
    zc_context_params p;
    zc_context_params_default(&p);
    p.n_ctx = 128;
    p.n_threads = 1;
    p.kv_policy = policy;
    p.kv_options = options;
    zc_context *c = NULL;
    return zc_context_create(m, &p, &c) == ZC_OK ? c : NULL;
}

static void test_sessions_tell_options_apart(void) {
    const char *path = tt_asset("models/stories260K/stories260K.gguf");
    if (!path) TT_SKIP("stories260K not found");
    zc_model *m = NULL;
    if (zc_model_load(path, &m) != ZC_OK) TT_SKIP("cannot load %s: %s", path, zc_last_error());
    int32_t toks[40];
    for (int i = 0; i < 40; i++) toks[i] = 3 + (i * 7) % 200;
    int tried = 0;
    for (int i = 0; zc_kv_policy_at(i); i++) {
        const zc_kv_policy *p = zc_kv_policy_at(i);
        zc_context *plain = context(m, p->name, NULL);
        if (!plain) continue; /* a shape the policy does not take (q8_0, q4_0: head_dim 8) */
        for (const zc_kv_shown *s = p->shown; s && (s->option || s->text || s->fn); s++) {
            const zc_kv_option *o = s->option && item_of(p, s) ? shown(p, s->option) : NULL;
            if (!o || !o->size) continue;
            char v[64], opts[96];
            sample(o, v, sizeof v);
            snprintf(opts, sizeof opts, "%s=%s", o->name, v);
            zc_context *a = context(m, p->name, opts), *b = context(m, p->name, opts);
            TT_CHECK(a && b, "%s %s: %s", p->name, opts, zc_last_error());
            uint8_t *buf = NULL;
            size_t len = 0;
            int rc = a && b ? zc_decode(a, toks, 40, ZC_LOGITS_NONE, NULL) : ZC_ERR_ARG;
            if (rc == ZC_OK) rc = zc_seq_save(a, 0, toks, &buf, &len);
            TT_CHECK(rc == ZC_OK || rc == ZC_ERR_UNSUPPORTED, "%s %s: %s", p->name, opts, zc_last_error());
            if (rc == ZC_OK) { /* (a policy that cannot save has no sessions to tell apart) */
                int32_t *ids = NULL;
                int n = 0;
                tried++;
                TT_CHECK(zc_seq_load(b, 0, buf, len, &ids, &n) == ZC_OK && n == 40, "%s %s: restore: %s", p->name,
                         opts, zc_last_error());
                free(ids);
                ids = NULL;
                TT_CHECK(zc_seq_load(plain, 0, buf, len, &ids, &n) == ZC_ERR_FORMAT &&
                             strstr(zc_last_error(), "another KV cache") && zc_context_pos(plain) == 0,
                         "%s %s: restored into the defaults: %s", p->name, opts, zc_last_error());
                free(ids);
            }
            free(buf);
            zc_context_free(a);
            zc_context_free(b);
        }
        zc_context_free(plain);
    }
    TT_CHECK(tried >= 15, "%d options tried", tried);
    zc_model_free(m);
}

int main(void) {
    N_ROWS = all_rows(ROWS);
    TT_RUN(test_rows_well_formed);
    TT_RUN(test_defaults);
    TT_RUN(test_parse_roundtrip);
    TT_RUN(test_refusals);
    TT_RUN(test_describe_items);
    TT_RUN(test_help_lists_all);
    TT_RUN(test_sessions_tell_options_apart);
    return tt_finish();
}
