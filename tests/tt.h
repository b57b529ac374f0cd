/* tt.h: the tiny test harness used by every tests/test_*.c.
 *
 * A test file defines test functions and runs them from main():
 *
 *     static void test_roundtrip(void) { TT_CHECK(x == y, "x=%d y=%d", x, y); }
 *     int main(void) { TT_RUN(test_roundtrip); return tt_finish(); }
 *
 * Each test prints "PASS name", "FAIL name" or "SKIP name: reason" on its own
 * line; tests/run.sh counts those lines across all test programs. A test
 * fails if any TT_CHECK in it fails, and also if it made no check at all (a
 * test that checks nothing cannot fail, so it must not pass); TT_SKIP ends it
 * as skipped (used when an asset in ../shared is missing: never count a
 * missing asset as a pass).
 */
#ifndef ZC_TESTS_TT_H
#define ZC_TESTS_TT_H

#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int tt_failed_checks, tt_n_checks, tt_n_pass, tt_n_fail, tt_n_skip;
static jmp_buf tt_skip_jmp;
static char tt_skip_reason[256];

#define TT_CHECK(cond, ...)                                                  \
    do {                                                                     \
        tt_n_checks++;                                                       \
        if (!(cond)) {                                                       \
            tt_failed_checks++;                                              \
            fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

/* Compare floats with an absolute + relative tolerance. */
#define TT_NEAR(a, b, tol)                                                          \
    TT_CHECK(fabs((double)(a) - (double)(b)) <= (tol) * (1.0 + fabs((double)(b))), \
             "%s=%.9g %s=%.9g tol=%g", #a, (double)(a), #b, (double)(b), (double)(tol))

#define TT_SKIP(...)                                                          \
    do {                                                                      \
        snprintf(tt_skip_reason, sizeof tt_skip_reason, __VA_ARGS__);         \
        longjmp(tt_skip_jmp, 1);                                              \
    } while (0)

#define TT_RUN(fn) tt_run(#fn, fn)

static inline void tt_run(const char *name, void (*fn)(void)) {
    tt_failed_checks = 0;
    tt_n_checks = 0;
    if (setjmp(tt_skip_jmp) == 0) {
        fn();
        if (!tt_n_checks) fprintf(stderr, "  %s: made no check\n", name);
        if (tt_failed_checks || !tt_n_checks) {
            printf("FAIL %s\n", name);
            tt_n_fail++;
        } else {
            printf("PASS %s\n", name);
            tt_n_pass++;
        }
    } else {
        printf("SKIP %s: %s\n", name, tt_skip_reason);
        tt_n_skip++;
    }
    fflush(stdout);
}

static inline int tt_finish(void) { return tt_n_fail ? 1 : 0; }

/* Path of an asset under the shared folder ($ZIPCACHE_ASSETS, default ../shared),
 * or NULL if it does not exist. The returned buffer is static per call site use. */
static inline const char *tt_asset(const char *rel) {
    static char buf[8][1024];
    static int slot;
    const char *root = getenv("ZIPCACHE_ASSETS");
    if (!root || !*root) root = "../shared";
    char *out = buf[slot++ & 7];
    snprintf(out, 1024, "%s/%s", root, rel);
    struct stat st;
    return stat(out, &st) == 0 ? out : NULL;
}

/* A private temporary folder for the files a test program writes:
 * tt_tmp_open("gguf") in main before the tests (0 on success; a FAIL line
 * otherwise), tt_tmp_path("a.gguf") for a file in it (the last 4 results
 * stay valid), tt_tmp_close() at the end removes it with its contents. */
static char tt_tmp_dir[256];
static inline int tt_tmp_open(const char *tag) {
    const char *base = getenv("TMPDIR");
    snprintf(tt_tmp_dir, sizeof tt_tmp_dir, "%s/zc-test-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (mkdtemp(tt_tmp_dir)) return 0;
    printf("FAIL mkdtemp %s\n", tt_tmp_dir);
    return 1;
}
static inline const char *tt_tmp_path(const char *name) {
    static char buf[4][512];
    static int slot;
    char *p = buf[slot++ & 3];
    snprintf(p, 512, "%s/%s", tt_tmp_dir, name);
    return p;
}
static inline void tt_tmp_close(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tt_tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tt_tmp_dir);
}

/* Deterministic PRNG for tests (xorshift64*). */
static inline unsigned long long tt_rand_u64(unsigned long long *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}
static inline float tt_randf(unsigned long long *s) { /* uniform in [-1, 1) */
    return (float)((tt_rand_u64(s) >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

#endif
