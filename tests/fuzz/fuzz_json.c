/* Fuzz target: the JSON reader (config.json, tokenizer.json, safetensors
 * headers and JSONL data all go through it). */
#include <stdint.h>
#include <string.h>

#include "util/json.h"

const char *const FUZZ_TARGET_NAME = "json";

/* Walk the whole tree so every node the parser built is read back. */
static size_t walk(const zc_json *v) {
    size_t n = 1;
    if (v->type == ZC_JSON_STRING) n += v->len ? (unsigned char)v->str[v->len - 1] : 0;
    if (v->type == ZC_JSON_ARRAY || v->type == ZC_JSON_OBJECT)
        for (size_t i = 0; i < v->len; i++) {
            n += walk(&v->items[i]);
            if (v->type == ZC_JSON_OBJECT) n += v->key_lens[i] ? (unsigned char)v->keys[i][0] : 0;
        }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    zc_json_doc *doc;
    const zc_json *root;
    if (zc_json_parse((const char *)data, size, "fuzz.json", &doc, &root) == 0) {
        volatile size_t sink = walk(root);
        (void)sink;
        (void)zc_json_get(root, "model");
        zc_json_free(doc);
    }
    return 0;
}
