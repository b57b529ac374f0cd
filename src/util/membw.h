/* Memory bandwidth of this machine, measured, for benchmark floors.
 *
 * Decode on a CPU is bound by the bytes it reads per token (weights plus the
 * whole KV cache), so every decode measurement is reported against the read
 * bandwidth measured in the same run. Buffers are far larger than the last
 * level cache so the numbers are DRAM numbers.
 */
#ifndef ZC_UTIL_MEMBW_H
#define ZC_UTIL_MEMBW_H

#include <stddef.h>

#include "util/threads.h"

typedef struct {
    double read_gbs;  /* GB/s (1e9 bytes) streaming reads (a sum over the buffer) */
    double copy_gbs;  /* GB/s of memcpy counted as STREAM does: bytes read + bytes written */
    size_t bytes;     /* buffer size used */
    int n_threads;
} zc_membw;

/* Measure with `bytes` per buffer (0 = 512 MiB), best of `reps` (0 = 5), on
 * the pool's threads. Returns ZC_ERR_NOMEM if the buffers cannot be had. */
int zc_membw_measure(zc_pool *pool, size_t bytes, int reps, zc_membw *out);

/* Arithmetic peaks (membw_peak.c), for the floors of compute-bound work
 * such as prefill: int8 multiply-adds as the quantized GEMM issues them
 * (VPDPBUSD, or AVX2's maddubs + madd) and fp32 FMA, each in giga-operations
 * per second (a multiply-add counts 2) on all of the pool's threads at once.
 * Zero where the CPU lacks AVX2 (no floor is then printed). */
typedef struct {
    double int8_gops;
    double fp32_gflops;
} zc_peak;

void zc_peak_measure(zc_pool *pool, zc_peak *out);

#endif
