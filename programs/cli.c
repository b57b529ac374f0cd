#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kv/kv.h"
#include "kv/kv_options.h"
#include "util/error.h"
#include "zipcache.h"

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "zipcache %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_lib_error(void) {
    fprintf(stderr, "zipcache: %s\n", zc_last_error());
    return zc_last_error_code() == ZC_ERR_ARG ? CLI_EXIT_USAGE : CLI_EXIT_DATA;
}

bool cli_int(const char *cmd, const char *opt, const char *val, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (!*val || *end || errno) {
        cli_usage_error(cmd, "%s: '%s' is not an integer", opt, val);
        return false;
    }
    if (v < lo || v > hi) {
        cli_usage_error(cmd, "%s: %lld is out of range [%lld, %lld]", opt, v, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_float(const char *cmd, const char *opt, const char *val, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (!*val || *end || errno || isnan(v)) {
        cli_usage_error(cmd, "%s: '%s' is not a number", opt, val);
        return false;
    }
    if (v < lo || v > hi) {
        cli_usage_error(cmd, "%s: %g is out of range [%g, %g]", opt, v, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_int_list(const char *cmd, const char *opt, const char *val, long long lo, long long hi, long long *out,
                  int cap, int *n) {
    char buf[1024];
    if (strlen(val) >= sizeof buf) {
        cli_usage_error(cmd, "%s: list too long", opt);
        return false;
    }
    strcpy(buf, val);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n >= cap) {
            cli_usage_error(cmd, "%s: at most %d values", opt, cap);
            return false;
        }
        if (!cli_int(cmd, opt, tok, lo, hi, &out[*n])) return false;
        (*n)++;
    }
    if (*n == 0) {
        cli_usage_error(cmd, "%s: empty list", opt);
        return false;
    }
    return true;
}

bool cli_value(const char *cmd, int argc, char **argv, int *i, const char **val) {
    /* Commands fetch the value before looking the option up, so a stray
     * word lands here: name it as such rather than as an option. */
    if (argv[*i][0] != '-') {
        cli_usage_error(cmd, "unexpected argument '%s' (options start with -)", argv[*i]);
        return false;
    }
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "option %s needs a value", argv[*i]);
        return false;
    }
    *val = argv[++*i];
    return true;
}

bool cli_option_value(const char *cmd, int argc, char **argv, int *i, const char *const *known,
                      const zc_kv_config *kv, const char **val) {
    const char *a = argv[*i];
    bool found = false;
    for (const char *const *k = known; *k && !found; k++) found = !strcmp(a, *k);
    if (!found && kv && a[0] == '-') {
        zc_kv_config scratch = *kv;
        found = zc_kv_config_parse_arg(&scratch, a, NULL) != 0;
    }
    if (!found && a[0] == '-') {
        cli_usage_error(cmd, "unknown option %s (see zipcache %s --help)", a, cmd);
        return false;
    }
    return cli_value(cmd, argc, argv, i, val); /* names a stray word or a missing value */
}

const char *cli_default_model(void) {
    static char path[1024];
    const char *root = getenv("ZIPCACHE_ASSETS");
    if (!root || !*root) root = "../shared";
    snprintf(path, sizeof path, "%s/models/stories260K/stories260K.gguf", root);
    struct stat st;
    return stat(path, &st) == 0 ? path : NULL;
}

/* The KV policies and options, listed from the policies' own tables, so a
 * new option appears here without an edit. */
static void print_kv_options(void) {
    size_t n = zc_kv_options_help(NULL, 0) + 1;
    char *text = zc_malloc(n);
    if (!text) return;
    zc_kv_options_help(text, n);
    printf("\nKV cache (--kv POLICY, --kv-NAME VALUE; [the policies that read an option]):\n%s", text);
    free(text);
}

int cli_next_option(const char *cmd, const char *usage, int argc, char **argv, int *i, const char *const *known,
                    struct zc_kv_config *kv, const char **val, int *exit_code) {
    const char *a = argv[*i];
    *exit_code = CLI_EXIT_OK;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
        fputs(usage, stdout);
        if (kv) print_kv_options();
        return CLI_NEXT_EXIT;
    }
    *exit_code = CLI_EXIT_USAGE;
    if (!cli_option_value(cmd, argc, argv, i, known, kv, val)) return CLI_NEXT_EXIT;
    int rc = zc_kv_config_parse_arg(kv, a, *val);
    if (rc < 0) {
        cli_usage_error(cmd, "%s", zc_last_error());
        return CLI_NEXT_EXIT;
    }
    return rc == 1 ? CLI_NEXT_DONE : CLI_NEXT_OPTION;
}
