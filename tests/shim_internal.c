/* Internal functions exported for the Python reference tests (ctypes):
 * libzipcache.so exports only the public API, so tests/py load this
 * library ($BUILD/tests/libzipcache_internal.so, linked with the static
 * library) instead. One wrapper per internal function a test calls. */
#include "model/unicode.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT size_t zc_test_pretok_split(int kind, const uint32_t *cps, size_t n, uint8_t *flags, uint32_t *lens) {
    return zc_pretok_split((zc_pretok_kind)kind, cps, n, flags, lens);
}
EXPORT int zc_test_utf8_nfc(const char *s, size_t n, char **out, size_t *out_len) {
    return zc_utf8_nfc(s, n, out, out_len);
}

/* The tokenizers, for tests/py/test_tokenizer_families.py. */
#include "model/gguf.h"
#include "model/tokenizer.h"

EXPORT int zc_test_tokenizer_from_hf(const char *path, zc_tokenizer **out) { return zc_tokenizer_from_hf(path, out); }
EXPORT int zc_test_gguf_open(const char *path, zc_gguf **out) { return zc_gguf_open(path, out); }
EXPORT void zc_test_gguf_close(zc_gguf *g) { zc_gguf_close(g); }
EXPORT int zc_test_tokenizer_from_gguf(const zc_gguf *g, zc_tokenizer **out) { return zc_tokenizer_from_gguf(g, out); }
EXPORT void zc_test_tokenizer_free(zc_tokenizer *t) { zc_tokenizer_free(t); }
EXPORT int zc_test_tokenizer_eos(const zc_tokenizer *t) { return zc_tokenizer_eos(t); }
EXPORT bool zc_test_tokenizer_add_bos(const zc_tokenizer *t) { return zc_tokenizer_add_bos(t); }
EXPORT bool zc_test_tokenizer_add_eos(const zc_tokenizer *t) { return zc_tokenizer_add_eos(t); }
EXPORT int zc_test_tokenize(const zc_tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                            int32_t **ids, int *n) {
    return zc_tokenize(t, text, len, add_bos, parse_special, ids, n);
}
