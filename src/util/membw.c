#include "util/membw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/cpu.h"
#include "util/error.h"
#include "util/timer.h"

/* Read kernel in membw_avx2.c; the scalar one keeps 8 independent sums so
 * the loads are not serialized behind one add chain. */
uint64_t zc_membw_read_avx2(const uint8_t *p, size_t n);

static uint64_t read_scalar(const uint8_t *p, size_t n) {
    uint64_t s[8] = {0};
    const uint64_t *w = (const uint64_t *)p;
    size_t words = n / 8;
    for (size_t i = 0; i + 8 <= words; i += 8)
        for (int k = 0; k < 8; k++) s[k] += w[i + k];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

#define PARTS 64

typedef struct {
    const uint8_t *src;
    uint8_t *dst;
    size_t part;
    uint64_t sums[PARTS];
    int simd;
} bw_job;

static void read_task(void *ctx, int task, int thread) {
    (void)thread;
    bw_job *j = ctx;
    const uint8_t *p = j->src + (size_t)task * j->part;
    j->sums[task] = j->simd ? zc_membw_read_avx2(p, j->part) : read_scalar(p, j->part);
}

static void copy_task(void *ctx, int task, int thread) {
    (void)thread;
    bw_job *j = ctx;
    memcpy(j->dst + (size_t)task * j->part, j->src + (size_t)task * j->part, j->part);
}

static double best_seconds(zc_pool *pool, zc_task_fn fn, bw_job *j, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = zc_now();
        zc_pool_run(pool, PARTS, fn, j);
        double t = zc_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

int zc_membw_measure(zc_pool *pool, size_t bytes, int reps, zc_membw *out) {
    if (!bytes) bytes = (size_t)512 << 20;
    if (!reps) reps = 5;
    bytes = bytes / (PARTS * 64) * (PARTS * 64);
    uint8_t *src = zc_malloc_aligned(bytes), *dst = zc_malloc_aligned(bytes);
    if (!src || !dst) {
        zc_free_aligned(src);
        zc_free_aligned(dst);
        return ZC_ERR_NOMEM;
    }
    memset(src, 1, bytes); /* touch every page before timing */
    memset(dst, 0, bytes);
    bw_job j = {.src = src, .dst = dst, .part = bytes / PARTS, .simd = zc_cpu_has_avx2()};
    double t_read = best_seconds(pool, read_task, &j, reps);
    double t_copy = best_seconds(pool, copy_task, &j, reps);
    uint64_t check = 0;
    for (int i = 0; i < PARTS; i++) check += j.sums[i];
    out->read_gbs = check ? (double)bytes / t_read * 1e-9 : 0; /* check keeps the reads alive */
    out->copy_gbs = 2.0 * (double)bytes / t_copy * 1e-9;
    out->bytes = bytes;
    out->n_threads = zc_pool_size(pool);
    zc_free_aligned(src);
    zc_free_aligned(dst);
    return ZC_OK;
}
