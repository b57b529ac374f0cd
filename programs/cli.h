/* Helpers shared by the zipcache sub-commands: option parsing with the
 * project's exit-code rules (usage errors exit 2 with one line, data errors
 * exit 1 with the file and the problem). */
#ifndef ZC_PROGRAMS_CLI_H
#define ZC_PROGRAMS_CLI_H

#include <stdbool.h>
#include <stdint.h>

enum { CLI_EXIT_OK = 0, CLI_EXIT_DATA = 1, CLI_EXIT_USAGE = 2 };

/* Print "zipcache <cmd>: <message>" to stderr; return CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "zipcache: <zc_last_error()>" to stderr; return CLI_EXIT_DATA or
 * CLI_EXIT_USAGE when the library error code is ZC_ERR_ARG. */
int cli_lib_error(void);

/* Strict number parsing of an option value; false (with a usage message
 * printed) on garbage, trailing characters or a value outside [lo, hi]. */
bool cli_int(const char *cmd, const char *opt, const char *val, long long lo, long long hi, long long *out);
bool cli_float(const char *cmd, const char *opt, const char *val, double lo, double hi, double *out);
/* Comma-separated integer list, e.g. "0,4096,16384". At most cap items. */
bool cli_int_list(const char *cmd, const char *opt, const char *val, long long lo, long long hi, long long *out,
                  int cap, int *n);

/* Fetch the value of option argv[*i] (advancing *i); usage error if missing
 * or if argv[*i] is a stray word rather than an option. */
bool cli_value(const char *cmd, int argc, char **argv, int *i, const char **val);

struct zc_kv_config;
/* The value of option argv[*i] (advancing *i), for a command whose options
 * taking a value are `known` (NULL-terminated) and, when kv is not NULL, the
 * KV options (zc_kv_config_parse_arg). The option is looked up before its
 * value is fetched, so the usage errors are, in this order: a stray word, an
 * unknown option (also when it is the last argument), a missing value. */
bool cli_option_value(const char *cmd, int argc, char **argv, int *i, const char *const *known,
                      const struct zc_kv_config *kv, const char **val);

/* One turn of a command's option loop at argv[*i] (advancing *i past a
 * value): -h/--help prints usage to stdout and gives CLI_NEXT_EXIT with
 * *exit_code 0; a KV option is applied to kv and gives CLI_NEXT_DONE; any
 * other option of `known` gives CLI_NEXT_OPTION with its value in *val; a
 * usage error prints its line and gives CLI_NEXT_EXIT with *exit_code 2. */
enum { CLI_NEXT_OPTION, CLI_NEXT_DONE, CLI_NEXT_EXIT };
int cli_next_option(const char *cmd, const char *usage, int argc, char **argv, int *i, const char *const *known,
                    struct zc_kv_config *kv, const char **val, int *exit_code);

/* Default model path: $ZIPCACHE_ASSETS (or ../shared)/models/stories260K/stories260K.gguf if present. */
const char *cli_default_model(void);

#endif
