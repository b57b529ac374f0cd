/* Arithmetic peaks of this machine, measured, for the prefill floors of
 * `zipcache bench` (declared in membw.h beside the bandwidth).
 *
 * Each thread runs 16 independent accumulator chains of the widest
 * instruction the kernels use: VPDPBUSD (64 int8 multiply-adds per zmm) for
 * the quantized GEMM, FMA on 16 floats for fp32 work (attention, f16/f32
 * weights); with AVX2 only, the 256-bit forms (the int8 one as maddubs +
 * madd + add, the AVX2 kernels' sequence). 16 chains hide the latency, so
 * the loop is bound by issue throughput: what no kernel can beat.
 *
 * Compiled without -m flags; the functions that use wider instructions are
 * entered only after the CPU checks, with target attributes.
 */
#include "util/membw.h"

#include <stdbool.h>

#include "util/cpu.h"
#include "util/timer.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define CHAINS 16
#define ITERS 500000
/* Every chain read from a register at each iteration: nothing folds away. */
#define KEEP(acc, r)                                                                                          \
    __asm__ volatile("" ::r(acc[0]), r(acc[1]), r(acc[2]), r(acc[3]), r(acc[4]), r(acc[5]), r(acc[6]), r(acc[7]), \
                     r(acc[8]), r(acc[9]), r(acc[10]), r(acc[11]), r(acc[12]), r(acc[13]), r(acc[14]), r(acc[15]))

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static double loop_vnni512(void) {
    __m512i acc[CHAINS];
    const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_epi32(c);
    for (int i = 0; i < ITERS; i++) {
        _Pragma("GCC unroll 16") for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
        KEEP(acc, "v"); /* keep the loop */
    }
    return 2.0 * 64 * CHAINS * ITERS; /* ops: 2 per multiply-add */
}

__attribute__((target("avx2"))) static double loop_int8_avx2(void) {
    __m256i acc[CHAINS];
    const __m256i a = _mm256_set1_epi8(1), b = _mm256_set1_epi8(2), one = _mm256_set1_epi16(1);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_epi32(c);
    for (int i = 0; i < ITERS; i++) {
        _Pragma("GCC unroll 16") for (int c = 0; c < CHAINS; c++) acc[c] =
            _mm256_add_epi32(acc[c], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), one));
        KEEP(acc, "x");
    }
    return 2.0 * 32 * CHAINS * ITERS;
}

__attribute__((target("avx512f"))) static double loop_fma512(void) {
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.001f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (int i = 0; i < ITERS; i++) {
        _Pragma("GCC unroll 16") for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
        KEEP(acc, "v");
    }
    return 2.0 * 16 * CHAINS * ITERS;
}

__attribute__((target("avx2,fma"))) static double loop_fma256(void) {
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.001f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    for (int i = 0; i < ITERS; i++) {
        _Pragma("GCC unroll 16") for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
        KEEP(acc, "x");
    }
    return 2.0 * 8 * CHAINS * ITERS;
}

typedef struct {
    int fp32; /* 0: the int8 loop, 1: the fp32 loop */
    double ops[256];
} peak_job;

static void peak_task(void *ctx, int task, int thread) {
    (void)thread;
    peak_job *j = ctx;
    const bool vnni = zc_cpu_has_avx512vnni();
    j->ops[task] = j->fp32 ? (vnni ? loop_fma512() : loop_fma256()) : (vnni ? loop_vnni512() : loop_int8_avx2());
}

/* Operations per second of one loop kind on every thread of the pool at once, best of 5. */
static double measure(zc_pool *pool, int fp32) {
    int n = zc_pool_size(pool);
    if (n > 256) n = 256;
    peak_job j = {.fp32 = fp32};
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = zc_now();
        zc_pool_run(pool, n, peak_task, &j);
        double t = zc_now() - t0, ops = 0;
        for (int i = 0; i < n; i++) ops += j.ops[i];
        if (t > 0 && ops / t > best) best = ops / t;
    }
    return best;
}

void zc_peak_measure(zc_pool *pool, zc_peak *out) {
    out->int8_gops = out->fp32_gflops = 0;
    if (!zc_cpu_has_avx2()) return;
    out->int8_gops = measure(pool, 0) * 1e-9;
    out->fp32_gflops = measure(pool, 1) * 1e-9;
}

#else

void zc_peak_measure(zc_pool *pool, zc_peak *out) {
    (void)pool;
    out->int8_gops = out->fp32_gflops = 0;
}

#endif
