/* zipcache: run Llama-family language models on the CPU with a compressed
 * (ZipCache) KV cache.
 *
 * Conventions for the whole API:
 *  - Functions that can fail return int: ZC_OK (0) on success or a negative
 *    ZC_ERR_* code. zc_last_error() then holds a one-line reason naming the
 *    file (if any) and the problem. The message is per thread.
 *  - Handles are opaque; every create or load function has a matching free function, and the
 *    free functions accept NULL.
 */
#ifndef ZIPCACHE_H
#define ZIPCACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Error codes -------------------------------------------------------- */
enum {
    ZC_OK = 0,
    ZC_ERR_IO = -1,          /* a file could not be opened, read or written */
    ZC_ERR_FORMAT = -2,      /* a file's contents are malformed or inconsistent */
    ZC_ERR_UNSUPPORTED = -3, /* valid input that this build does not handle */
    ZC_ERR_NOMEM = -4,       /* an allocation failed */
    ZC_ERR_ARG = -5,         /* a caller passed an invalid argument or option */
    ZC_ERR_LIMIT = -6,       /* a size, count or budget limit was exceeded */
};

/* The reason for the most recent failure on this thread ("no error" if none). */
const char *zc_last_error(void);
/* The code passed with the most recent failure on this thread. */
int zc_last_error_code(void);
/* Reset the thread's error state. */
void zc_clear_error(void);
/* A short fixed description of an error code. */
const char *zc_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
