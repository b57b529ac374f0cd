/* A small, strict JSON reader (RFC 8259) building an immutable tree.
 *
 * Used for config.json, tokenizer.json, safetensors headers and JSONL data.
 * Input is untrusted: nesting depth is limited (ZC_JSON_MAX_DEPTH), strings are
 * validated as UTF-8 and \u escapes (surrogate pairs included) are decoded,
 * numbers are parsed strictly. Errors name the source and the byte offset.
 * All nodes live in one arena freed by zc_json_free.
 */
#ifndef ZC_UTIL_JSON_H
#define ZC_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZC_JSON_MAX_DEPTH 128

typedef enum {
    ZC_JSON_NULL,
    ZC_JSON_BOOL,
    ZC_JSON_NUMBER,
    ZC_JSON_STRING,
    ZC_JSON_ARRAY,
    ZC_JSON_OBJECT,
} zc_json_type;

typedef struct zc_json zc_json;
struct zc_json {
    zc_json_type type;
    bool boolean;     /* ZC_JSON_BOOL */
    double number;    /* ZC_JSON_NUMBER */
    bool is_integer;  /* number had no fraction/exponent and fits int64 */
    int64_t integer;  /* exact value when is_integer */
    const char *str;  /* ZC_JSON_STRING: decoded UTF-8, NUL-terminated (may contain NUL) */
    size_t len;       /* string length in bytes; item count for arrays/objects */
    zc_json *items;   /* ARRAY: len values; OBJECT: len values, keys in `keys` */
    const char **keys;/* OBJECT: decoded keys, key_lens[i] bytes each */
    size_t *key_lens;
};

typedef struct zc_json_doc zc_json_doc;

/* Parse `len` bytes of `text`. `source` names the input in error messages
 * (e.g. a file path). On success *doc owns all memory and *root is its value. */
int zc_json_parse(const char *text, size_t len, const char *source, zc_json_doc **doc, const zc_json **root);
void zc_json_free(zc_json_doc *doc);

/* Object member by key (NULL if `obj` is not an object or has no such key).
 * Duplicate keys: the last one wins, as in most parsers. Lookup is linear. */
const zc_json *zc_json_get(const zc_json *obj, const char *key);

/* Typed accessors: return true and store the value when the node has that
 * type (ints must be exact integers in range), false otherwise (incl. NULL). */
bool zc_json_int(const zc_json *v, int64_t *out);
bool zc_json_num(const zc_json *v, double *out);
bool zc_json_bool(const zc_json *v, bool *out);
const char *zc_json_str(const zc_json *v); /* NULL unless a string */

#endif
