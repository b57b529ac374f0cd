/* Small helpers with one definition for the whole tree. */
#ifndef ZC_UTIL_SMALL_H
#define ZC_UTIL_SMALL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* n rounded up to a multiple of 16 (scratch layouts: 64-byte aligned float slices). */
static inline size_t zc_round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* SplitMix64 (Steele, Lea, Flood 2014): the output for state x, i.e. the
 * finalizer applied to x + the golden gamma. */
static inline uint64_t zc_splitmix64_at(uint64_t x) {
    uint64_t z = x + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The next number of the generator whose state is *s (advances it). */
static inline uint64_t zc_splitmix64(uint64_t *s) {
    uint64_t r = zc_splitmix64_at(*s);
    *s += 0x9e3779b97f4a7c15ull;
    return r;
}

/* Text appended to a fixed buffer: truncated at cap (NUL-terminated when
 * cap > 0, like snprintf), while len counts every byte asked for, as
 * snprintf's result does, so a first pass at cap 0 sizes the buffer. */
typedef struct {
    char *buf;
    size_t cap, len;
} zc_text;

static inline void zc_text_printf(zc_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void zc_text_printf(zc_text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int room = t->len < t->cap;
    int n = vsnprintf(room ? t->buf + t->len : NULL, room ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) t->len += (size_t)n;
}

#endif
