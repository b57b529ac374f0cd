/* Error reporting shared by the whole library.
 *
 * Every fallible function returns an int status: ZC_OK (0) or a negative
 * ZC_ERR_* code from include/zipcache.h. The human-readable reason is kept in a
 * thread-local buffer set with zc_error(); it names the file and the problem,
 * e.g. "model.gguf: tensor 'blk.0.attn_q.weight': offset past end of file".
 */
#ifndef ZC_UTIL_ERROR_H
#define ZC_UTIL_ERROR_H

#include "zipcache.h"

/* Record an error and return `code` so callers can write `return zc_error(...)`. */
int zc_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepend context to the current message: "ctx: <old message>". Returns code. */
int zc_error_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocation helpers that record ZC_ERR_NOMEM (with the size) on failure. */
void *zc_malloc(size_t n);
void *zc_calloc(size_t count, size_t size);
void *zc_realloc(void *p, size_t n);
char *zc_strdup(const char *s);
/* The n bytes at s (which may hold NULs) and a terminating NUL. */
char *zc_strndup(const char *s, size_t n);
/* 64-byte aligned allocation (for SIMD buffers); free with zc_free_aligned. */
void *zc_malloc_aligned(size_t n);
void zc_free_aligned(void *p);

/* Allocation-failure testing (tests/test_alloc_fail.c): after
 * zc_alloc_fail_at(n) the allocation numbered n (0 = the next one) through
 * the helpers above fails with ZC_ERR_NOMEM and every other one succeeds;
 * n = -1 turns it off. zc_alloc_count: allocations since that call. Every
 * allocation of the library goes through these helpers. */
void zc_alloc_fail_at(long n);
long zc_alloc_count(void);

/* Overflow-checked size arithmetic: return 0 on success, ZC_ERR_LIMIT on overflow. */
int zc_mul_size(size_t a, size_t b, size_t *out);
int zc_add_size(size_t a, size_t b, size_t *out);

#endif
