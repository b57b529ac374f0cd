/* Tests for src/kernels/matmul: every loadable weight type, AVX2 and forced
 * scalar, against zc_matmul_ref (dequantize + double dot).
 *
 * Tolerance. Quantized types multiply with activations rounded to int8 per
 * block of B = 32 (256 for the K formats) with scale amax_B/127, so each x_c
 * moves by at most amax_B(c)/254. The bound for one output is therefore
 *     Σ_c |w_c| · amax_B(c) / 254   (+ 1e-5 · Σ_c |w_c x_c| for fp32 sums),
 * computed per output from the dequantized weights; the float types get
 * only the second term.
 */
#include "tt.h"

#include "kernels/matmul.h"
#include "kernels/matmul_kernels.h"
#include "kernels/matmul_packed.h"
#include "quant/ggml_blocks.h"
#include "util/cpu.h"
#include "util/error.h"
#include "util/fp16.h"
#include "util/threads.h"

static const int LOADABLE[] = {ZC_TYPE_F32,  ZC_TYPE_F16,  ZC_TYPE_BF16, ZC_TYPE_Q8_0, ZC_TYPE_Q4_0, ZC_TYPE_Q4_1,
                               ZC_TYPE_Q5_0, ZC_TYPE_Q5_1, ZC_TYPE_Q4_K, ZC_TYPE_Q5_K, ZC_TYPE_Q6_K};
#define N_LOADABLE (int)(sizeof LOADABLE / sizeof LOADABLE[0])

static unsigned long long g_seed = 12345;

/* Enable SIMD for this test even under ZIPCACHE_NO_SIMD=1 (the scalar path
 * is tested by forcing it), or skip if the CPU lacks it. */
static void require_avx2(void) {
    zc_cpu_set_simd(1);
    if (!zc_cpu_has_avx2()) {
        zc_cpu_set_simd(-1);
        TT_SKIP("the CPU lacks AVX2/FMA/F16C");
    }
}

static uint16_t random_scale(void) { /* signed, magnitude in [2^-9, 2^-5) */
    float v = (1.0f + 0.5f * (tt_randf(&g_seed) + 1.0f)) * ldexpf(1.0f, -9 + (int)(tt_rand_u64(&g_seed) % 4));
    return zc_f32_to_fp16(tt_rand_u64(&g_seed) & 1 ? v : -v);
}

/* A weight matrix of random blocks: random code bytes (every code value,
 * including q8_0's -128) with finite random fp16 scales. */
static zc_mat random_matrix(int type, int64_t rows, int64_t cols) {
    zc_mat w = {.type = type, .rows = rows, .cols = cols};
    const zc_type_info *ti = zc_type_get(type);
    zc_type_row_bytes(type, cols, &w.row_bytes);
    uint8_t *p = malloc(w.row_bytes * (size_t)rows);
    for (size_t i = 0; i < w.row_bytes * (size_t)rows; i++) p[i] = (uint8_t)tt_rand_u64(&g_seed);
    const int64_t nb = rows * cols / ti->block_elems;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = p + b * ti->block_bytes;
        uint16_t h[2] = {random_scale(), random_scale()};
        switch (type) {
        case ZC_TYPE_F32: {
            float f = tt_randf(&g_seed);
            memcpy(blk, &f, 4);
            break;
        }
        case ZC_TYPE_F16: h[0] = zc_f32_to_fp16(tt_randf(&g_seed)); memcpy(blk, h, 2); break;
        case ZC_TYPE_BF16: h[0] = zc_f32_to_bf16(tt_randf(&g_seed)); memcpy(blk, h, 2); break;
        case ZC_TYPE_Q4_1: case ZC_TYPE_Q5_1: case ZC_TYPE_Q4_K: case ZC_TYPE_Q5_K: memcpy(blk, h, 4); break;
        case ZC_TYPE_Q6_K: memcpy(blk + 208, h, 2); break;
        default: memcpy(blk, h, 2); break; /* q8_0, q4_0, q5_0 */
        }
    }
    w.data = p;
    return w;
}

static float *random_x(int m, int64_t cols) {
    float *x = malloc(sizeof(float) * (size_t)m * (size_t)cols);
    for (int64_t i = 0; i < m * cols; i++) x[i] = tt_randf(&g_seed) * (1.0f + (float)(i % 7)); /* uneven blocks */
    return x;
}

/* The bound from the header comment, for output (i, r). */
static double bound(const zc_mat *w, const float *wrow, const float *xi) {
    const zc_type_info *ti = zc_type_get(w->type);
    const int B = ti->block_elems == 1 ? 0 : ti->block_elems == 32 ? 32 : 256;
    double q = 0, f = 0;
    for (int64_t c0 = 0; c0 < w->cols; c0 += B ? B : w->cols) {
        const int64_t c1 = B ? c0 + B : w->cols;
        double amax = 0;
        for (int64_t c = c0; c < c1; c++) amax = fmax(amax, fabs(xi[c]));
        for (int64_t c = c0; c < c1; c++) {
            if (B) q += fabs(wrow[c]) * amax / 254.0;
            f += fabs((double)wrow[c] * xi[c]);
        }
    }
    return q + 1e-5 * f;
}

/* zc_matmul against the reference for one type and shape; returns the
 * worst error as a fraction of the bound (<= 1 passes). */
static double check_shape(zc_pool *pool, int type, int64_t rows, int64_t cols, int m, zc_matmul_scratch *s) {
    zc_mat w = random_matrix(type, rows, cols);
    float *x = random_x(m, cols), *y = malloc(sizeof(float) * (size_t)m * rows);
    float *ref = malloc(sizeof(float) * (size_t)m * rows), *row = malloc(sizeof(float) * (size_t)cols);
    int rc = zc_matmul(pool, &w, x, y, m, s);
    TT_CHECK(rc == ZC_OK, "%s: %s", zc_type_get(type)->name, zc_last_error());
    zc_matmul_ref(&w, x, ref, m);
    double worst = 0;
    for (int64_t r = 0; r < rows; r++) {
        zc_mat_get_row(&w, r, row);
        for (int i = 0; i < m; i++) {
            double err = fabs((double)y[i * rows + r] - ref[i * rows + r]);
            double b = bound(&w, row, x + (size_t)i * cols);
            worst = fmax(worst, err / b);
        }
    }
    free((void *)w.data), free(x), free(y), free(ref), free(row);
    return worst;
}

static void run_all_shapes(bool simd) {
    static const struct { int64_t rows, cols; } shapes[] = {{1, 256}, {7, 512}, {33, 768}, {67, 256}};
    static const int ms[] = {1, 3, 17, 64};
    zc_cpu_set_simd(simd ? 1 : 0);
    zc_pool *pool = zc_pool_create(2);
    zc_matmul_scratch s = {0};
    for (int t = 0; t < N_LOADABLE; t++) {
        double worst = 0;
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
            for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
                worst = fmax(worst, check_shape(pool, LOADABLE[t], shapes[sh].rows, shapes[sh].cols, ms[mi], &s));
        /* odd block counts and, for the float types, a tail after the last 16 */
        if (zc_type_get(LOADABLE[t])->block_elems == 32) worst = fmax(worst, check_shape(pool, LOADABLE[t], 9, 96, 5, &s));
        if (zc_type_get(LOADABLE[t])->block_elems == 1) worst = fmax(worst, check_shape(pool, LOADABLE[t], 9, 37, 5, &s));
        TT_CHECK(worst <= 1.0, "%s (%s): error %.3g of the bound", zc_type_get(LOADABLE[t])->name,
                 simd ? "simd" : "scalar", worst);
    }
    zc_matmul_scratch_free(&s);
    zc_pool_destroy(pool);
    zc_cpu_set_simd(-1);
}

static void test_matmul_simd_vs_ref(void) {
    require_avx2();
    run_all_shapes(true);
}

static void test_matmul_scalar_vs_ref(void) { run_all_shapes(false); }

/* Rows of one call must not depend on the thread split nor on how many
 * activation rows share a kernel call: compare bits. */
static void test_matmul_deterministic(void) {
    zc_pool *pools[3] = {NULL, zc_pool_create(2), zc_pool_create(3)};
    zc_matmul_scratch s = {0};
    const int64_t rows = 131, cols = 512;
    const int m = 7;
    for (int simd = 0; simd < 2; simd++) {
        zc_cpu_set_simd(simd);
        for (int t = 0; t < N_LOADABLE; t++) {
            zc_mat w = random_matrix(LOADABLE[t], rows, cols);
            void *packed = NULL; /* where the CPU has the GEMM: the packed path (131 rows: 8 groups + 3) */
            size_t packed_bytes;
            if (simd) zc_mat_repack(&w, &packed, &packed_bytes);
            float *x = random_x(m, cols);
            float *y[3], *y1 = malloc(sizeof(float) * rows);
            for (int p = 0; p < 3; p++) {
                y[p] = malloc(sizeof(float) * m * rows);
                zc_matmul(pools[p], &w, x, y[p], m, &s);
            }
            int bad = memcmp(y[0], y[1], sizeof(float) * m * rows) != 0 || memcmp(y[0], y[2], sizeof(float) * m * rows) != 0;
            for (int i = 0; i < m; i++) { /* one activation row alone */
                zc_matmul(pools[1], &w, x + (size_t)i * cols, y1, 1, &s);
                bad += memcmp(y1, y[0] + (size_t)i * rows, sizeof(float) * rows) != 0;
            }
            TT_CHECK(bad == 0, "%s (%s): %d results differ", zc_type_get(LOADABLE[t])->name, simd ? "simd" : "scalar", bad);
            for (int p = 0; p < 3; p++) free(y[p]);
            free(y1), free(x), free((void *)w.data);
            zc_free_aligned(packed);
        }
    }
    zc_cpu_set_simd(-1);
    zc_matmul_scratch_free(&s);
    zc_pool_destroy(pools[1]);
    zc_pool_destroy(pools[2]);
}

/* The AVX2 activation quantizers produce the scalar quantizers' bytes. */
static void test_act_quant_simd_matches_scalar(void) {
    require_avx2();
    enum { N = 1024 };
    float x[N];
    for (int i = 0; i < N; i++) x[i] = tt_randf(&g_seed) * (float)(1 + i / 256);
    for (int i = 0; i < 32; i++) x[i] = (float)(i - 16) * 0.5f; /* ties at x*id = k + 0.5 */
    for (int i = 32; i < 64; i++) x[i] = 0.0f;
    x[64] = 127.0f, x[65] = 2.5f, x[66] = -3.5f;  /* id = 1: exact ties */
    static zc_act_q8 a[N / 32], b[N / 32];
    static zc_act_q8k ak[N / 256], bk[N / 256];
    zc_quantize_act_q8(x, a, N);
    zc_quantize_act_q8_avx2(x, b, N);
    zc_quantize_act_q8k(x, ak, N);
    zc_quantize_act_q8k_avx2(x, bk, N);
    TT_CHECK(memcmp(a, b, sizeof a) == 0, "q8 activation blocks differ");
    TT_CHECK(memcmp(ak, bk, sizeof ak) == 0, "q8k activation blocks differ");
    TT_CHECK(a[2].qs[1] == 2 && a[2].qs[2] == -4 && a[1].d == 0.0f && a[1].s == 0.0f,
             "ties to even: %d %d, zero block d=%g", a[2].qs[1], a[2].qs[2], a[1].d);
    zc_cpu_set_simd(-1);
}

/* The kernels directly, on the same quantized activations: AVX-512 VNNI must
 * equal AVX2 bit for bit (same integer sums, same float steps), and AVX2
 * must match the scalar kernels up to float summation order. This is what
 * tests the AVX2 kernels that zc_matmul passes over on a VNNI machine. */
static void test_kernels_agree(void) {
    require_avx2();
    const int64_t cols = 1024;
    float *x = random_x(ZC_NX, cols), *row = malloc(sizeof(float) * cols);
    static zc_act_q8 a8[ZC_NX][1024 / 32];
    static zc_act_q8k ak[ZC_NX][1024 / 256];
    for (int k = 0; k < ZC_NX; k++) {
        zc_quantize_act_q8(x + k * cols, a8[k], cols);
        zc_quantize_act_q8k(x + k * cols, ak[k], cols);
    }
    int n_vnni = 0;
    for (int t = 0; t < N_LOADABLE; t++) {
        const int type = LOADABLE[t];
        const zc_type_info *ti = zc_type_get(type);
        zc_mat w = random_matrix(type, 3, cols);
        const void *xa = ti->block_elems == 1 ? (const void *)x : ti->block_elems == 32 ? (const void *)a8 : (const void *)ak;
        const size_t xs = ti->block_elems == 1 ? sizeof(float) * cols : ti->block_elems == 32 ? sizeof a8[0] : sizeof ak[0];
        zc_dot_fn vnni = zc_cpu_has_avx512vnni() ? zc_dot_avx512vnni(type) : NULL;
        int bad_vnni = 0;
        double worst = 0;
        for (int64_t r = 0; r < w.rows; r++) {
            const void *wr = (const char *)w.data + r * w.row_bytes;
            zc_mat_get_row(&w, r, row);
            for (int nx = 1; nx <= ZC_NX; nx++) {
                float o_s[ZC_NX], o_a[ZC_NX], o_v[ZC_NX];
                zc_dot_scalar(type)(cols, wr, xa, xs, nx, o_s);
                zc_dot_avx2(type)(cols, wr, xa, xs, nx, o_a);
                if (vnni) {
                    vnni(cols, wr, xa, xs, nx, o_v);
                    bad_vnni += memcmp(o_v, o_a, sizeof(float) * nx) != 0;
                }
                for (int k = 0; k < nx; k++) {
                    double mag = 0;
                    for (int64_t c = 0; c < cols; c++) mag += fabs((double)row[c] * x[k * cols + c]);
                    worst = fmax(worst, fabs((double)o_a[k] - o_s[k]) / (1e-5 * mag));
                }
            }
        }
        n_vnni += vnni != NULL;
        TT_CHECK(bad_vnni == 0, "%s: %d VNNI results differ from AVX2", ti->name, bad_vnni);
        TT_CHECK(worst <= 1.0, "%s: AVX2 vs scalar %.3g of 1e-5 sum|w x|", ti->name, worst);
        free((void *)w.data);
    }
    TT_CHECK(!zc_cpu_has_avx512vnni() || n_vnni == 5, "VNNI kernels for the 5 formats of 32, got %d", n_vnni);
    free(x), free(row);
    zc_cpu_set_simd(-1);
}

/* A NaN activation poisons its whole output row on every path. */
static void test_matmul_nan_propagates(void) {
    const int64_t cols = 256;
    for (int simd = 0; simd < 2; simd++) {
        zc_cpu_set_simd(simd);
        for (int t = 0; t < N_LOADABLE; t++) {
            zc_mat w = random_matrix(LOADABLE[t], 5, cols);
            float *x = random_x(2, cols), y[10];
            x[cols + 77] = NAN;
            zc_matmul_scratch s = {0};
            zc_matmul(NULL, &w, x, y, 2, &s);
            int finite0 = 0, nan1 = 0;
            for (int r = 0; r < 5; r++) finite0 += isfinite(y[r]), nan1 += isnan(y[5 + r]);
            TT_CHECK(finite0 == 5 && nan1 == 5, "%s (%s): %d finite in row 0, %d NaN in row 1",
                     zc_type_get(LOADABLE[t])->name, simd ? "simd" : "scalar", finite0, nan1);
            zc_matmul_scratch_free(&s);
            free(x), free((void *)w.data);
        }
    }
    zc_cpu_set_simd(-1);
}

/* The repacked GEMM (matmul_packed.h) against the scalar row-major kernels:
 * the same integer block sums, scaled and added in the same order, so the
 * same floats (compared with ==: only the sign of a zero may differ). Shapes
 * with a tail of rows after the last group of 16 (row-major there), one
 * block, and m over and under the kernel's 8 activation rows. */
static void test_packed_gemm_matches_scalar(void) {
    zc_cpu_set_simd(1);
    if (!zc_gemm_avx512vnni()) {
        zc_cpu_set_simd(-1);
        TT_SKIP("the CPU lacks AVX-512 VNNI: no packed GEMM");
    }
    static const struct { int64_t rows, cols; } shapes[] = {{16, 32}, {33, 96}, {48, 512}, {130, 256}, {17, 768}};
    static const int ms[] = {1, 3, 5, 8, 9, 17};
    static const int types[] = {ZC_TYPE_Q8_0, ZC_TYPE_Q4_0, ZC_TYPE_Q4_K, ZC_TYPE_Q6_K, ZC_TYPE_F16, ZC_TYPE_BF16};
    zc_pool *pool = zc_pool_create(2);
    zc_matmul_scratch s = {0};
    for (int t = 0; t < 6; t++)
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
            if (shapes[sh].cols % zc_type_get(types[t])->block_elems) continue;
            zc_mat w = random_matrix(types[t], shapes[sh].rows, shapes[sh].cols), wp = w;
            zc_cpu_set_simd(1);
            void *buf;
            size_t bytes;
            TT_CHECK(zc_mat_repack(&wp, &buf, &bytes) == ZC_OK && buf && wp.packed == buf, "%s: repacked",
                     zc_type_get(types[t])->name);
            const size_t group_bytes = types[t] == ZC_TYPE_Q4_K ? (size_t)w.cols / 256 * 2496 : w.row_bytes * 16;
            /* q8_0, q4_0, q6_K keep their bytes; q4_K's unpacked scales and paired mins take 2496 for 2304 */
            TT_CHECK(bytes == (size_t)(w.rows / 16) * group_bytes, "%s: %zu bytes for %lld groups",
                     zc_type_get(types[t])->name, bytes, (long long)(w.rows / 16));
            for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
                const int m = ms[mi];
                float *x = random_x(m, w.cols);
                float *yp = malloc(sizeof(float) * m * w.rows), *ys = malloc(sizeof(float) * m * w.rows);
                float *yr = malloc(sizeof(float) * m * w.rows);
                zc_cpu_set_simd(1);
                int rc = zc_matmul(pool, &wp, x, yp, m, &s);
                rc |= zc_matmul(pool, &w, x, yr, m, &s); /* the row-major SIMD kernels */
                zc_cpu_set_simd(0); /* scalar kernels, row-major data */
                rc |= zc_matmul(pool, &wp, x, ys, m, &s);
                int bad = 0;
                const bool exact = zc_type_get(types[t])->block_elems > 1; /* f16/bf16: FMAs, within the bound of ref */
                if (!exact) zc_matmul_ref(&w, x, yr, m); /* their yr: the double reference */
                float *row = malloc(sizeof(float) * (size_t)w.cols);
                for (int i = 0; i < m; i++)
                    for (int64_t r = 0; r < w.rows; r++) { /* the tail rows go row-major */
                        const size_t o = (size_t)i * (size_t)w.rows + (size_t)r;
                        if (exact) {
                            bad += yp[o] != (r < w.rows / 16 * 16 ? ys[o] : yr[o]);
                            continue;
                        }
                        zc_mat_get_row(&w, r, row);
                        bad += !(fabs((double)yp[o] - yr[o]) <= bound(&w, row, x + (size_t)i * (size_t)w.cols));
                    }
                free(row);
                TT_CHECK(rc == ZC_OK && bad == 0, "%s %lldx%lld, m=%d: %d of %lld outputs differ from scalar",
                         zc_type_get(types[t])->name, (long long)w.rows, (long long)w.cols, m, bad,
                         (long long)(m * w.rows));
                free(x), free(yp), free(ys), free(yr);
            }
            zc_free_aligned(buf);
            free((void *)w.data);
        }
    zc_matmul_scratch_free(&s);
    zc_pool_destroy(pool);
    zc_cpu_set_simd(-1);
}

/* Rows read back from the packed copy (a tied embedding's lookups) equal
 * the original's, tail rows included; the other packed types keep reading
 * the original. */
static void test_get_row_from_packed(void) {
    zc_cpu_set_simd(1);
    if (!zc_gemm_avx512vnni()) {
        zc_cpu_set_simd(-1);
        TT_SKIP("the CPU lacks AVX-512 VNNI: nothing is repacked");
    }
    static const int types[] = {ZC_TYPE_Q8_0, ZC_TYPE_Q4_0, ZC_TYPE_F16, ZC_TYPE_BF16, ZC_TYPE_Q4_K};
    for (int t = 0; t < 5; t++) {
        zc_mat w = random_matrix(types[t], 37, 512), wp = w;
        void *buf;
        size_t bytes;
        zc_mat_repack(&wp, &buf, &bytes);
        if (zc_mat_repack_keeps_rows(types[t])) wp.data = NULL; /* the original may be gone: never read */
        else memset(buf, 0, bytes); /* q4_K: the packed copy must not be read */
        float a[512], b[512];
        int bad = 0;
        for (int64_t r = 0; r < w.rows; r++) {
            if (!wp.data && r >= 32) wp.data = w.data; /* the 5 tail rows stay row-major */
            zc_mat_get_row(&w, r, a);
            zc_mat_get_row(&wp, r, b);
            bad += memcmp(a, b, sizeof a) != 0;
        }
        TT_CHECK(buf && bad == 0, "%s: %d rows differ", zc_type_get(types[t])->name, bad);
        zc_free_aligned(buf);
        free((void *)w.data);
    }
    zc_cpu_set_simd(-1);
}

/* Out of memory: ZC_ERR_NOMEM, nothing allocated, w unchanged. */
static void test_repack_nomem(void) {
    zc_cpu_set_simd(1);
    if (!zc_gemm_avx512vnni()) {
        zc_cpu_set_simd(-1);
        TT_SKIP("the CPU lacks AVX-512 VNNI: nothing is repacked");
    }
    zc_mat w = random_matrix(ZC_TYPE_Q8_0, 32, 64);
    void *buf = &w;
    size_t bytes = 1;
    zc_alloc_fail_at(0);
    int rc = zc_mat_repack(&w, &buf, &bytes);
    zc_alloc_fail_at(-1);
    TT_CHECK(rc == ZC_ERR_NOMEM && !buf && !bytes && !w.packed, "rc %d: %s", rc, zc_last_error());
    free((void *)w.data);
    zc_cpu_set_simd(-1);
}

/* What is not packed: other types, fewer than 16 rows; w stays unchanged.
 * And what a model repacks at load: not q6_K, whose packed decode is slower. */
static void test_repack_declines(void) {
    TT_CHECK(zc_repack_pays(ZC_TYPE_Q8_0) && zc_repack_pays(ZC_TYPE_Q4_0) && zc_repack_pays(ZC_TYPE_Q4_K) &&
                 zc_repack_pays(ZC_TYPE_F16) && zc_repack_pays(ZC_TYPE_BF16) && !zc_repack_pays(ZC_TYPE_Q6_K) &&
                 !zc_repack_pays(ZC_TYPE_F32),
             "repacked at load: q8_0, q4_0, q4_K, f16, bf16");
    zc_cpu_set_simd(1);
    const struct { int type; int64_t rows; } cases[] = {{ZC_TYPE_Q5_K, 32}, {ZC_TYPE_F32, 32}, {ZC_TYPE_Q8_0, 15}};
    for (int c = 0; c < 3; c++) {
        zc_mat w = random_matrix(cases[c].type, cases[c].rows, 256);
        void *buf = &w;
        size_t bytes = 1;
        TT_CHECK(zc_mat_repack(&w, &buf, &bytes) == ZC_OK && !buf && !bytes && !w.packed, "%s, %lld rows: not packed",
                 zc_type_get(cases[c].type)->name, (long long)cases[c].rows);
        free((void *)w.data);
    }
    zc_cpu_set_simd(-1);
}

static void test_matmul_errors_and_scratch(void) {
    zc_mat w = random_matrix(ZC_TYPE_Q4_0, 8, 64);
    float x[2 * 64] = {0}, y[16];
    zc_matmul_scratch s = {0};
    TT_CHECK(zc_matmul(NULL, &w, x, y, 2, &s) == ZC_OK, "%s", zc_last_error());
    void *buf = s.buf;
    TT_CHECK(zc_matmul(NULL, &w, x, y, 1, &s) == ZC_OK && s.buf == buf, "scratch is reused, not reallocated");
    zc_mat bad = w;
    bad.row_bytes = 35;
    TT_CHECK(zc_matmul(NULL, &bad, x, y, 1, &s) == ZC_ERR_ARG, "row_bytes shorter than the row");
    bad = w;
    bad.cols = 48;
    TT_CHECK(zc_matmul(NULL, &bad, x, y, 1, &s) == ZC_ERR_ARG, "cols not a multiple of the block");
    bad = w;
    bad.type = ZC_TYPE_Q2_K;
    TT_CHECK(zc_matmul(NULL, &bad, x, y, 1, &s) == ZC_ERR_UNSUPPORTED, "q2_K cannot be computed");
    bad.type = 77;
    TT_CHECK(zc_matmul(NULL, &bad, x, y, 1, &s) == ZC_ERR_UNSUPPORTED, "unknown type");
    bad = w;
    bad.cols = 0;
    y[0] = y[15] = 1.0f;
    TT_CHECK(zc_matmul(NULL, &bad, x, y, 2, &s) == ZC_OK && y[0] == 0.0f && y[15] == 0.0f, "no columns: zeros");
    zc_matmul_scratch_free(&s);
    TT_CHECK(s.buf == NULL && s.cap == 0, "freed scratch is empty");
    free((void *)w.data);
}

int main(void) {
    TT_RUN(test_act_quant_simd_matches_scalar);
    TT_RUN(test_matmul_scalar_vs_ref);
    TT_RUN(test_matmul_simd_vs_ref);
    TT_RUN(test_matmul_deterministic);
    TT_RUN(test_kernels_agree);
    TT_RUN(test_matmul_nan_propagates);
    TT_RUN(test_matmul_errors_and_scratch);
    TT_RUN(test_packed_gemm_matches_scalar);
    TT_RUN(test_repack_declines);
    TT_RUN(test_repack_nomem);
    TT_RUN(test_get_row_from_packed);
    return tt_finish();
}
