/* zc_kernels_bench: weight-streaming speed of zc_matmul against the
 * machine's copy bandwidth, measured in the same run.
 *
 * Decode multiplies every weight once per token, so a matvec (m = 1) can go
 * no faster than memory delivers the weights; its GB/s of weight bytes over
 * the streaming-read GB/s (util/membw.h) says how close it gets, and the
 * memcpy GB/s (read + write, as STREAM counts) is printed beside it. Several copies of each matrix
 * (>= 256 MiB together) are cycled so the weights come from DRAM, not from
 * the last-level cache, as a model's would. Prefill (m = 64) reuses each
 * weight block for 4 tokens at a time and is reported in GFLOP/s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/matmul.h"
#include "kernels/matmul_packed.h"
#include "quant/ggml_blocks.h"
#include "util/cpu.h"
#include "util/error.h"
#include "util/fp16.h"
#include "util/membw.h"
#include "util/timer.h"

#define BENCH_ROWS 2048
#define BENCH_COLS 8192
#define STREAM_BYTES ((size_t)256 << 20)

static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random code bytes; every fp16 field that could be a scale gets 0.01 so
 * the numbers stay finite (the kernels' speed does not depend on values). */
static void fill_matrix(int type, void *data, size_t bytes, uint64_t *seed) {
    uint8_t *p = data;
    for (size_t i = 0; i < bytes; i++) p[i] = (uint8_t)next_rand(seed);
    const zc_type_info *ti = zc_type_get(type);
    const uint16_t h = zc_f32_to_fp16(0.01f);
    if (ti->block_elems == 1) {
        for (size_t i = 0; i + 2 <= bytes; i += 2) memcpy(p + i, &h, 2); /* f16: all 0.01 */
        return;
    }
    for (size_t b = 0; b + (size_t)ti->block_bytes <= bytes; b += (size_t)ti->block_bytes) {
        memcpy(p + b + (type == ZC_TYPE_Q6_K ? 208 : 0), &h, 2);
        if (type == ZC_TYPE_Q4_1 || type == ZC_TYPE_Q5_1 || type == ZC_TYPE_Q4_K || type == ZC_TYPE_Q5_K)
            memcpy(p + b + 2, &h, 2);
    }
}

/* Seconds per call, best of `reps` passes over all copies. */
static double time_matmul(zc_pool *pool, zc_mat *mats, int n_mats, const float *x, float *y, int m,
                          zc_matmul_scratch *s, int reps) {
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = zc_now();
        for (int i = 0; i < n_mats; i++)
            if (zc_matmul(pool, &mats[i], x, y, m, s)) return -1.0;
        double t = (zc_now() - t0) / n_mats;
        if (t < best) best = t;
    }
    return best;
}

int zc_kernels_bench(FILE *out, int n_threads) {
    static const int types[] = {ZC_TYPE_Q8_0, ZC_TYPE_Q4_0, ZC_TYPE_Q4_K, ZC_TYPE_Q6_K, ZC_TYPE_F16};
    const int m_prefill = 64;
    if (n_threads < 1) n_threads = zc_cpu_count();
    const int thread_counts[2] = {1, n_threads};
    const int n_counts = n_threads > 1 ? 2 : 1;
    zc_pool *pools[2] = {zc_pool_create(1), n_threads > 1 ? zc_pool_create(n_threads) : NULL};
    float *x = zc_malloc(sizeof(float) * BENCH_COLS * m_prefill);
    float *y = zc_malloc(sizeof(float) * BENCH_ROWS * m_prefill);
    void *weights = zc_malloc_aligned(STREAM_BYTES + ((size_t)64 << 20));
    zc_matmul_scratch s = {0};
    int rc = ZC_OK;
    if (!pools[0] || (n_threads > 1 && !pools[1]) || !x || !y || !weights) {
        rc = zc_error(ZC_ERR_NOMEM, "kernel bench: out of memory");
        goto done;
    }
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < BENCH_COLS * m_prefill; i++) x[i] = (float)(int)(next_rand(&seed) % 2001 - 1000) / 1000.0f;

    fprintf(out, "kernel bench on %s, %s kernels\n", zc_cpu_name(),
            zc_cpu_has_avx512vnni() ? "AVX-512 VNNI (32-element formats; packed: q8_0 q4_0 q4_K q6_K f16 bf16) + AVX2"
            : zc_cpu_has_avx2()     ? "AVX2"
                                    : "scalar");
    zc_membw bw[2];
    zc_peak peak[2];
    for (int c = 0; c < n_counts; c++) {
        if ((rc = zc_membw_measure(pools[c], STREAM_BYTES, 5, &bw[c])) != ZC_OK) goto done;
        zc_peak_measure(pools[c], &peak[c]);
        fprintf(out,
                "memory, %d thread%s: read %.1f GB/s, memcpy %.1f GB/s (read + write); arithmetic peak: int8 %.0f "
                "GOP/s, fp32 %.0f GFLOP/s\n",
                thread_counts[c], thread_counts[c] > 1 ? "s" : "", bw[c].read_gbs, bw[c].copy_gbs, peak[c].int8_gops,
                peak[c].fp32_gflops);
    }
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        size_t row_bytes;
        zc_type_row_bytes(types[t], BENCH_COLS, &row_bytes);
        const size_t mat_bytes = row_bytes * BENCH_ROWS;
        zc_mat mats[64];
        int n_mats = (int)((STREAM_BYTES + mat_bytes - 1) / mat_bytes);
        if (n_mats > 64) n_mats = 64;
        fill_matrix(types[t], weights, mat_bytes * (size_t)n_mats, &seed);
        for (int i = 0; i < n_mats; i++)
            mats[i] = (zc_mat){.type = types[t], .rows = BENCH_ROWS, .cols = BENCH_COLS,
                               .data = (char *)weights + (size_t)i * mat_bytes, .row_bytes = row_bytes};
        /* q8_0/q4_0 again in the repacked layout, where the CPU has the GEMM */
        void *packed[64] = {NULL};
        size_t packed_bytes;
        const int layouts = zc_pack_block_bytes(types[t]) && zc_gemm_avx512vnni() ? 2 : 1;
        for (int layout = 0; layout < layouts && rc == ZC_OK; layout++) {
            for (int i = 0; layout == 1 && i < n_mats && rc == ZC_OK; i++)
                rc = zc_mat_repack(&mats[i], &packed[i], &packed_bytes);
            for (int c = 0; c < n_counts && rc == ZC_OK; c++) {
                double t1 = time_matmul(pools[c], mats, n_mats, x, y, 1, &s, 10);
                double t64 = time_matmul(pools[c], mats, 1, x, y, m_prefill, &s, 3);
                if (t1 < 0 || t64 < 0) {
                    rc = zc_last_error_code();
                    break;
                }
                const double gbs = (double)mat_bytes / t1 * 1e-9;
                const double gflops = 2.0 * BENCH_ROWS * BENCH_COLS * m_prefill / t64 * 1e-9;
                fprintf(out,
                        "%-4s%s %dx%d, %d thread%s: m=1 %6.3f ms %5.1f GB/s (%3.0f%% of read, %3.0f%% of memcpy)   "
                        "m=%d %6.1f GFLOP/s (%3.0f%% of peak)\n",
                        zc_type_get(types[t])->name, layout ? " packed" : "       ", BENCH_ROWS, BENCH_COLS,
                        thread_counts[c], thread_counts[c] > 1 ? "s" : " ", t1 * 1e3, gbs,
                        100.0 * gbs / bw[c].read_gbs, 100.0 * gbs / bw[c].copy_gbs, m_prefill, gflops,
                        100.0 * gflops / (zc_type_get(types[t])->block_elems > 1 ? peak[c].int8_gops
                                                                                 : peak[c].fp32_gflops));
            }
        }
        for (int i = 0; i < n_mats; i++) zc_free_aligned(packed[i]);
        if (rc != ZC_OK) goto done;
    }
done:
    zc_matmul_scratch_free(&s);
    zc_free_aligned(weights);
    free(x);
    free(y);
    zc_pool_destroy(pools[0]);
    zc_pool_destroy(pools[1]);
    return rc;
}
