#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static _Thread_local char g_msg[1024];
static _Thread_local int g_code;

static void format_into(char *dst, size_t cap, const char *fmt, va_list ap) {
    vsnprintf(dst, cap, fmt, ap);
}

int zc_error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    format_into(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    g_code = code;
    return code;
}

int zc_error_prefix(int code, const char *fmt, ...) {
    char prefix[512], old[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    format_into(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    size_t n = strlen(prefix);
    memcpy(g_msg, prefix, n);
    memcpy(g_msg + n, ": ", 2);
    n += 2;
    size_t rest = strnlen(old, sizeof g_msg - n - 1);
    memcpy(g_msg + n, old, rest);
    g_msg[n + rest] = 0;
    g_code = code;
    return code;
}

const char *zc_last_error(void) { return g_msg[0] ? g_msg : "no error"; }
int zc_last_error_code(void) { return g_code; }

void zc_clear_error(void) {
    g_msg[0] = 0;
    g_code = ZC_OK;
}

const char *zc_strerror(int code) {
    switch (code) {
    case ZC_OK: return "ok";
    case ZC_ERR_IO: return "i/o error";
    case ZC_ERR_FORMAT: return "malformed input";
    case ZC_ERR_UNSUPPORTED: return "unsupported";
    case ZC_ERR_NOMEM: return "out of memory";
    case ZC_ERR_ARG: return "invalid argument";
    case ZC_ERR_LIMIT: return "limit exceeded";
    case ZC_ERR_ABORTED: return "aborted";
    default: return "unknown error";
    }
}

/* Allocation-failure testing: the allocation numbered g_fail_at (counted
 * from the last zc_alloc_fail_at call) fails, the others succeed. Relaxed
 * atomics: allocations happen on the pool's threads too, and the count
 * only has to be exact for a single-threaded sweep. */
static _Atomic long g_fail_at = -1, g_alloc_count;

void zc_alloc_fail_at(long n) {
    g_alloc_count = 0;
    g_fail_at = n;
}

long zc_alloc_count(void) { return g_alloc_count; }

/* True when this allocation is the one to fail. */
static int injected_failure(void) {
    long i = g_alloc_count++;
    return i == g_fail_at;
}

void *zc_malloc(size_t n) {
    void *p = injected_failure() ? NULL : malloc(n ? n : 1);
    if (!p) zc_error(ZC_ERR_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *zc_calloc(size_t count, size_t size) {
    void *p = injected_failure() ? NULL : calloc(count ? count : 1, size ? size : 1);
    if (!p) zc_error(ZC_ERR_NOMEM, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *zc_realloc(void *p, size_t n) {
    void *q = injected_failure() ? NULL : realloc(p, n ? n : 1);
    if (!q) zc_error(ZC_ERR_NOMEM, "out of memory reallocating %zu bytes", n);
    return q;
}

char *zc_strdup(const char *s) { return zc_strndup(s, strlen(s)); }

char *zc_strndup(const char *s, size_t n) {
    char *p = n < SIZE_MAX ? zc_malloc(n + 1) : NULL;
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

void *zc_malloc_aligned(size_t n) {
    void *p = NULL;
    size_t rounded = (n + 63) & ~(size_t)63;
    if (rounded < n || injected_failure() || posix_memalign(&p, 64, rounded ? rounded : 64) != 0) {
        zc_error(ZC_ERR_NOMEM, "out of memory allocating %zu aligned bytes", n);
        return NULL;
    }
    return p;
}

void zc_free_aligned(void *p) { free(p); }

int zc_mul_size(size_t a, size_t b, size_t *out) {
    if (__builtin_mul_overflow(a, b, out)) return zc_error(ZC_ERR_LIMIT, "size overflow (%zu x %zu)", a, b);
    return ZC_OK;
}

int zc_add_size(size_t a, size_t b, size_t *out) {
    if (__builtin_add_overflow(a, b, out)) return zc_error(ZC_ERR_LIMIT, "size overflow (%zu + %zu)", a, b);
    return ZC_OK;
}

const char *zc_version(void) {
#define ZC_STR2(x) #x
#define ZC_STR(x) ZC_STR2(x)
    return ZC_STR(ZC_VERSION_MAJOR) "." ZC_STR(ZC_VERSION_MINOR) "." ZC_STR(ZC_VERSION_PATCH);
}

int zc_version_number(void) { return ZC_VERSION_NUMBER; }
