/* Internal functions exported for the Python reference tests (ctypes):
 * libzipcache.so exports only the public API, so tests/py load this
 * library ($BUILD/tests/libzipcache_internal.so, linked with the static
 * library) instead. One wrapper per internal function a test calls. */
#include "model/unicode.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT size_t zc_test_pretok_split(int kind, const uint32_t *cps, size_t n, uint8_t *flags, uint32_t *lens) {
    return zc_pretok_split((zc_pretok_kind)kind, cps, n, flags, lens);
}
