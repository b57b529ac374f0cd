/* zipcache bench: micro-benchmarks and the model benchmark.
 *
 *   zipcache bench quant [--tokens T] [--channels C] [-t N] [--json FILE]
 *       KV quantizer throughput per format, width and code path
 *   zipcache bench kernels [-t N]
 *       weight-matrix kernels (src/kernels)
 *   zipcache bench attn [-d DEPTHS] [-t N] ...
 *       decode attention per layer, fp16 vs packed codes (bench_attn.c)
 *   zipcache bench -m MODEL ...
 *       prefill/decode per KV policy and context depth (bench_model.c)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_attn.h"
#include "bench_model.h"
#include "cli.h"
#include "cmds.h"
#include "kernels/matmul.h"
#include "quant/kvquant.h"
#include "quant/tiled.h"
#include "util/cpu.h"
#include "util/error.h"
#include "util/membw.h"
#include "util/threads.h"
#include "util/timer.h"

/* ---- bench quant ------------------------------------------------------------ */


typedef struct {
    const zc_kvq *q;
    const float *x; /* [T][C] */
    float *y;       /* [T][C] */
    uint8_t *blob;  /* n_slices blobs of slice_bytes */
    size_t slice_bytes;
    int T, C, n_slices, dequant;
    int rc;
    double *cpu_s; /* [n_slices] thread CPU seconds of each slice's last run */
} quant_job;

/* CPU time of the calling thread: unlike wall time it does not count the
 * slices the scheduler gives to other processes on a busy machine. */
static double thread_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One slice of T / n_slices tokens per task, one task per thread: every
 * thread streams its own part, so the rate is bandwidth- or compute-bound
 * per core. */
static void quant_task(void *ctx, int task, int thread) {
    quant_job *j = ctx;
    int t0 = (int)((long long)j->T * task / j->n_slices), t1 = (int)((long long)j->T * (task + 1) / j->n_slices);
    uint8_t *blob = j->blob + j->slice_bytes * (size_t)task;
    size_t off = (size_t)t0 * j->C;
    double c0 = thread_cpu_seconds();
    int rc = j->dequant ? zc_kvq_dequantize(j->q, blob, t1 - t0, j->C, j->y + off, (size_t)j->C)
                        : zc_kvq_quantize(j->q, j->x + off, (size_t)j->C, t1 - t0, j->C, blob);
    j->cpu_s[task] = thread_cpu_seconds() - c0;
    if (rc) j->rc = rc; /* any failing slice fails the run */
}

/* Run the job until min_seconds have passed (at least twice) and keep the
 * fastest repetition, the one least disturbed by other work on the machine:
 * *wall its wall time, *cpu its slices' CPU seconds summed (the fastest
 * repetition by that measure). */
static void time_best(zc_pool *pool, quant_job *j, double min_seconds, double *wall, double *cpu) {
    double start = zc_now();
    *wall = *cpu = 1e30;
    for (int rep = 0; rep < 2 || zc_now() - start < min_seconds; rep++) {
        double t = zc_now(), c = 0;
        zc_pool_run(pool, j->n_slices, quant_task, j);
        t = zc_now() - t;
        for (int i = 0; i < j->n_slices; i++) c += j->cpu_s[i];
        *wall = t < *wall ? t : *wall;
        *cpu = c < *cpu ? c : *cpu;
    }
}

typedef struct {
    zc_kvq q;
    const char *path;
    double quant_gbps, dequant_gbps;         /* fp16-equivalent input GB/s per core, wall time */
    double quant_cpu_gbps, dequant_cpu_gbps; /* the same per CPU-second of the working threads */
    double bits_per_elem;
} bench_row;

/* The zipcache policy's last compression step: packed rows -> the tiled
 * layouts of the integer attention path (quant/tiled.h), head by head
 * (128 channels, or 64 when C % 128 != 0). */
typedef struct {
    zc_tiled_kind kind;
    int bits;
    const char *path;
    double gbps; /* fp16-equivalent input per second, one thread */
} tiled_row;

static void time_tiled(tiled_row *r, int T, int C, const uint8_t *rows, uint8_t *out, double min_time) {
    int hd = C % 128 ? 64 : 128;
    size_t ld = (size_t)C * r->bits / 8, head = (size_t)hd * r->bits / 8;
    double best = 1e30, start = zc_now();
    for (int rep = 0; rep < 2 || zc_now() - start < min_time; rep++) {
        double t = zc_now();
        for (int h = 0; h < C / hd; h++) {
            if (strcmp(r->path, "avx2") == 0)
                zc_tiled_from_rows_avx2(r->kind, rows + h * head, ld, T, hd, r->bits, out);
            else
                zc_tiled_from_rows_scalar(r->kind, rows + h * head, ld, T, hd, r->bits, out);
        }
        t = zc_now() - t;
        best = t < best ? t : best;
    }
    r->gbps = 2.0 * T * C / best / 1e9;
}

static int bench_quant(int argc, char **argv) {
    const char *cmd = "bench quant", *json = NULL, *val;
    long long T = 4096, C = 1024, nt = 1;
    double min_time = 0.15;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tokens")) {
            if (!cli_value(cmd, argc, argv, &i, &val) || !cli_int(cmd, a, val, 32, 1 << 20, &T)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--channels")) {
            if (!cli_value(cmd, argc, argv, &i, &val) || !cli_int(cmd, a, val, 32, 1 << 16, &C)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!cli_value(cmd, argc, argv, &i, &val) || !cli_int(cmd, a, val, 0, 1024, &nt)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--min-time")) {
            if (!cli_value(cmd, argc, argv, &i, &val) || !cli_float(cmd, a, val, 0, 60, &min_time)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--json")) {
            if (!cli_value(cmd, argc, argv, &i, &json)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: zipcache bench quant [--tokens T] [--channels C] [-t N] [--json FILE] [--min-time S]\n"
                   "  quantize+pack and unpack+dequantize throughput of each KV format and width, scalar and AVX2,\n"
                   "  in GB/s of fp16-equivalent input (2 bytes per element) per core, next to memcpy bandwidth.\n"
                   "  Defaults: 4096 tokens x 1024 channels (8 KV heads x 128), 1 thread (0 = all cores);\n"
                   "  each timing repeats for --min-time seconds (default 0.15) and keeps the fastest run.\n");
            return CLI_EXIT_OK;
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        }
    }
    if (C % 32) return cli_usage_error(cmd, "--channels must be a multiple of 32 (q8_0/q4_0 blocks)");
    if (nt == 0) nt = zc_cpu_count();
    if (T < nt) return cli_usage_error(cmd, "--tokens %lld is fewer than the %lld threads", T, nt);

    static const zc_kvq formats[] = {
        {ZC_KVQ_CHANNEL, 0, 0, ZC_CST_SQRT_MAX}, {ZC_KVQ_CST, 0, 0, ZC_CST_SQRT_MAX}, {ZC_KVQ_TOKEN, 0, 0, 0},
        {ZC_KVQ_GROUP_CH, 0, 32, 0},             {ZC_KVQ_GROUP_TOK, 0, 32, 0},
    };
    static const int widths[] = {2, 3, 4, 8};
    enum { N_ROWS = (5 * 4 + 2) * 2 };
    bench_row rows[N_ROWS];
    int n_rows = 0;
    const int has_avx2 = zc_cpu_has_avx2();
    for (int path = 0; path < 1 + has_avx2; path++)
        for (int f = 0; f < 5 + 2; f++)
            for (int w = 0; w < (f < 5 ? 4 : 1); w++) {
                bench_row *r = &rows[n_rows++];
                r->q = f < 5 ? formats[f] : (zc_kvq){f == 5 ? ZC_KVQ_Q8_0 : ZC_KVQ_Q4_0, f == 5 ? 8 : 4, 0, 0};
                if (f < 5) r->q.bits = widths[w];
                r->path = path ? "avx2" : "scalar";
            }

    size_t n = (size_t)T * (size_t)C;
    zc_pool *pool = zc_pool_create((int)nt);
    float *x = zc_malloc_aligned(n * sizeof *x), *y = zc_malloc_aligned(n * sizeof *y);
    /* largest blob of a slice: 8-bit codes plus fp16 parameters, generously */
    size_t slice_bytes = ((size_t)(T / nt + 1) * (size_t)C) * 2 + 4 * (size_t)C + 4 * (size_t)T + 64;
    uint8_t *blob = zc_malloc_aligned(slice_bytes * (size_t)nt);
    double *cpu_s = zc_calloc((size_t)nt, sizeof *cpu_s); /* [nt] */
    int exit_code = CLI_EXIT_OK;
    if (!pool || !x || !y || !blob || !cpu_s) {
        exit_code = cli_lib_error();
        goto done;
    }
    /* K/V-like data: most channels ~N(0,1)-ish, every 16th channel 30x with
     * an offset, every 20th token 8x (outliers keep parameters realistic). */
    unsigned long long s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
        float v = (float)((s * 2685821657736338717ull) >> 40) * (1.0f / 8388608.0f) - 1.0f;
        if (i % (size_t)C % 16 == 3) v = v * 30.0f + 2.0f;
        if (i / (size_t)C % 20 == 7) v *= 8.0f;
        x[i] = v;
    }
    /* memcpy bandwidth in the STREAM convention (bytes read + written);
     * --min-time 0 is for smoke tests and shrinks the buffers to 16 MiB,
     * which then measure cache rather than DRAM */
    zc_membw bw;
    if (zc_membw_measure(pool, min_time > 0 ? (size_t)256 << 20 : (size_t)16 << 20, 3, &bw)) {
        exit_code = cli_lib_error();
        goto done;
    }
    double copy_gbps = bw.copy_gbs / (double)nt;

    const double in_bytes = 2.0 * (double)n; /* fp16-equivalent input */
    for (int i = 0; i < n_rows; i++) {
        bench_row *r = &rows[i];
        zc_cpu_set_simd(strcmp(r->path, "avx2") == 0 ? 1 : 0);
        quant_job j = {&r->q, x, y, blob, slice_bytes, (int)T, (int)C, (int)nt, 0, ZC_OK, cpu_s};
        double tq, td, cq, cd;
        time_best(pool, &j, min_time, &tq, &cq);
        j.dequant = 1;
        time_best(pool, &j, min_time, &td, &cd);
        if (j.rc) {
            exit_code = cli_lib_error();
            goto done;
        }
        r->quant_gbps = in_bytes / tq / 1e9 / (double)nt;
        r->dequant_gbps = in_bytes / td / 1e9 / (double)nt;
        r->quant_cpu_gbps = in_bytes / cq / 1e9;
        r->dequant_cpu_gbps = in_bytes / cd / 1e9;
        r->bits_per_elem = (double)zc_kvq_stored_bits(&r->q, (int)T, (int)C) / (double)n;
    }
    zc_cpu_set_simd(-1);
    tiled_row tiled[8];
    int n_tiled = 0;
    for (int path = 0; path < 1 + has_avx2; path++)
        for (int kind = 0; kind < 2; kind++)
            for (int bits = 2; bits <= 4; bits += 2) {
                tiled_row *r = &tiled[n_tiled++];
                *r = (tiled_row){(zc_tiled_kind)kind, bits, path ? "avx2" : "scalar", 0};
                /* any bytes are valid codes; blob holds a slice, so the rows reuse x's bytes */
                time_tiled(r, (int)T, (int)C, (const uint8_t *)x, blob, min_time);
            }

    printf("# zipcache bench quant: %lld tokens x %lld channels, %lld thread(s), %s\n", T, C, nt, zc_cpu_name());
    printf("# GB/s = fp16-equivalent input bytes (2 per element) per second per core; fastest of repeated runs;\n"
           "# 'cpu' columns divide by the working threads' CPU time instead of wall time (robust on a busy machine)\n");
    printf("# memcpy: %.2f GB/s per core (bytes read + written, %zu MiB buffers); streaming read %.2f GB/s per core\n\n",
           copy_gbps, bw.bytes >> 20, bw.read_gbs / (double)nt);
    printf("| format | bits | path | bits/elem stored | quant+pack GB/s | of memcpy | unpack+dequant GB/s | of memcpy "
           "| quant+pack cpu | unpack+dequant cpu |\n");
    printf("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n_rows; i++) {
        const bench_row *r = &rows[i];
        printf("| %s | %d | %s | %.3f | %.2f | %.0f%% | %.2f | %.0f%% | %.2f | %.2f |\n", zc_kvq_format_name(r->q.format),
               r->q.bits, r->path, r->bits_per_elem, r->quant_gbps, 100 * r->quant_gbps / copy_gbps, r->dequant_gbps,
               100 * r->dequant_gbps / copy_gbps, r->quant_cpu_gbps, r->dequant_cpu_gbps);
    }
    printf("\nThe zipcache policy's last compression step, packed rows -> tiled layout (quant/tiled.h), heads of %d "
           "channels, 1 thread:\n\n| layout | bits | path | GB/s |\n|---|---:|---|---:|\n", C % 128 ? 64 : 128);
    for (int i = 0; i < n_tiled; i++)
        printf("| %s | %d | %s | %.2f |\n", tiled[i].kind == ZC_TILED_K ? "tiled keys" : "tiled values", tiled[i].bits,
               tiled[i].path, tiled[i].gbps);
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            fprintf(stderr, "zipcache bench quant: %s: cannot open for writing\n", json);
            exit_code = CLI_EXIT_DATA;
            goto done;
        }
        fprintf(f, "{\"bench\": \"quant\", \"tokens\": %lld, \"channels\": %lld, \"threads\": %lld, \"cpu\": \"%s\",\n",
                T, C, nt, zc_cpu_name());
        fprintf(f, " \"unit\": \"GB/s of fp16-equivalent input per core\", \"memcpy_gbps_per_core\": %.4f,\n \"rows\": [\n",
                copy_gbps);
        for (int i = 0; i < n_rows; i++) {
            const bench_row *r = &rows[i];
            fprintf(f,
                    "  {\"format\": \"%s\", \"bits\": %d, \"path\": \"%s\", \"stored_bits_per_element\": %.4f, "
                    "\"quant_gbps\": %.4f, \"quant_frac_memcpy\": %.4f, \"dequant_gbps\": %.4f, "
                    "\"dequant_frac_memcpy\": %.4f, \"quant_cpu_gbps\": %.4f, \"dequant_cpu_gbps\": %.4f}%s\n",
                    zc_kvq_format_name(r->q.format), r->q.bits, r->path, r->bits_per_elem, r->quant_gbps,
                    r->quant_gbps / copy_gbps, r->dequant_gbps, r->dequant_gbps / copy_gbps, r->quant_cpu_gbps, r->dequant_cpu_gbps,
                    i + 1 < n_rows ? "," : "");
        }
        fprintf(f, " ],\n \"tiled\": [\n");
        for (int i = 0; i < n_tiled; i++)
            fprintf(f, "  {\"layout\": \"%s\", \"bits\": %d, \"path\": \"%s\", \"gbps\": %.4f}%s\n",
                    tiled[i].kind == ZC_TILED_K ? "keys" : "values", tiled[i].bits, tiled[i].path, tiled[i].gbps,
                    i + 1 < n_tiled ? "," : "");
        fprintf(f, " ]}\n");
        if (fclose(f)) {
            fprintf(stderr, "zipcache bench quant: %s: write failed\n", json);
            exit_code = CLI_EXIT_DATA;
        }
    }
done:
    zc_free_aligned(x);
    zc_free_aligned(y);
    zc_free_aligned(blob);
    free(cpu_s);
    zc_pool_destroy(pool);
    return exit_code;
}

/* ---- bench kernels ------------------------------------------------------------ */

static int bench_kernels(int argc, char **argv) {
    const char *cmd = "bench kernels", *val;
    long long nt = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!cli_value(cmd, argc, argv, &i, &val) || !cli_int(cmd, a, val, 0, 1024, &nt)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: zipcache bench kernels [-t N]   (weight-matrix kernels; N = 0: all cores)\n");
            return CLI_EXIT_OK;
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        }
    }
    return zc_kernels_bench(stdout, (int)nt) == ZC_OK ? CLI_EXIT_OK : cli_lib_error();
}

/* ---- dispatch -------------------------------------------------------------- */

int cmd_bench(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "quant")) return bench_quant(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "kernels")) return bench_kernels(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "attn")) return bench_attn_main(argc - 1, argv + 1);
    return bench_model_main(argc, argv);
}
