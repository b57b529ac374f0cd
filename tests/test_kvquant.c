/* KV quantizers: error bounds, hand-computed values, edge cases, AVX2 ==
 * scalar bit for bit, bit accounting against the bytes actually written.
 *
 * Also a helper mode for tests/py/test_kvquant_ref.py (the independent numpy
 * reference):
 *   test_kvquant --ref IN.f32 T C FORMAT BITS GROUP NORM BLOB_OUT Y_OUT
 * quantizes the raw float32 block IN (T x C), writes the blob and the
 * dequantized float32 block. FORMAT is a zc_kvq_format_name, NORM is
 * "sqrt" or "max". Exit 0 on success, 1 with the library message if refused. */
#include <stdint.h>

#include "quant/kvquant.h"
#include "quant/ggml_blocks.h"
#include "quant/pack.h"
#include "tt.h"
#include "util/cpu.h"
#include "zipcache.h"

/* Random block with outlier channels (x30) and outlier tokens (x10), the
 * structure K/V activations have. x: [T][C]. */
static void fill_block(unsigned long long *s, float *x, int T, int C) {
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) {
            float v = tt_randf(s) + 0.3f * tt_randf(s);
            if (c % 13 == 5) v = v * 30.0f + 4.0f;
            if (t % 17 == 3) v *= 10.0f;
            x[(size_t)t * C + c] = v;
        }
}

static const zc_kvq formats[] = {
    {ZC_KVQ_CHANNEL, 0, 0, ZC_CST_SQRT_MAX}, {ZC_KVQ_CST, 0, 0, ZC_CST_SQRT_MAX}, {ZC_KVQ_CST, 0, 0, ZC_CST_MAX},
    {ZC_KVQ_TOKEN, 0, 0, ZC_CST_SQRT_MAX},   {ZC_KVQ_GROUP_CH, 0, 32, 0},       {ZC_KVQ_GROUP_TOK, 0, 32, 0},
    {ZC_KVQ_GROUP_CH, 0, 8, 0},              {ZC_KVQ_GROUP_TOK, 0, 5, 0},
};
enum { N_FORMATS = sizeof formats / sizeof formats[0] };

/* fp32 slack on top of the step/2 bound: a few ulp of the magnitudes involved. */
static double slack(double a, double b) { return 1e-6 * (fabs(a) + fabs(b)); }

/* Check |x - y| <= step/2 (+ fp32 slack) with the step that applies to each
 * element, read back from the stored parameters. */
static void check_bound(const zc_kvq *q, const float *x, const float *y, const void *blob, int T, int C) {
    const zc_fp16 *p = blob;
    double worst = 0;
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) {
            double xv = x[(size_t)t * C + c], err = fabs(xv - y[(size_t)t * C + c]);
            double st, mn, n = 1;
            int g;
            switch (q->format) {
            case ZC_KVQ_CHANNEL: mn = zc_fp16_to_f32(p[c]); st = zc_fp16_to_f32(p[C + c]); break;
            case ZC_KVQ_CST:
                n = zc_fp16_to_f32(p[c]);
                mn = zc_fp16_to_f32(p[C + t]);
                st = zc_fp16_to_f32(p[C + T + t]);
                break;
            case ZC_KVQ_TOKEN: mn = zc_fp16_to_f32(p[t]); st = zc_fp16_to_f32(p[T + t]); break;
            case ZC_KVQ_GROUP_CH: {
                int ng = (C + q->group - 1) / q->group;
                g = t * ng + c / q->group;
                mn = zc_fp16_to_f32(p[g]);
                st = zc_fp16_to_f32(p[T * ng + g]);
                break;
            }
            default: { /* GROUP_TOK */
                int ng = (T + q->group - 1) / q->group;
                g = (t / q->group) * C + c;
                mn = zc_fp16_to_f32(p[g]);
                st = zc_fp16_to_f32(p[ng * C + g]);
                break;
            }
            }
            double maxq = (1 << q->bits) - 1;
            double bound = n * (st / 2 + slack(xv / n, fabs(mn) + maxq * st)) + slack(xv, 0);
            if (err > bound) {
                TT_CHECK(err <= bound, "%s b=%d t=%d c=%d x=%.9g y=%.9g err=%g bound=%g",
                         zc_kvq_format_name(q->format), q->bits, t, c, xv, (double)y[(size_t)t * C + c], err, bound);
                return;
            }
            if (err / (bound + 1e-30) > worst) worst = err / (bound + 1e-30);
        }
}

static void test_error_bound(void) {
    unsigned long long s = 1;
    const int T = 67, C = 96;
    static float x[67 * 96], y[67 * 96];
    static uint8_t blob[67 * 96 * 2 + 4096];
    fill_block(&s, x, T, C);
    for (int f = 0; f < N_FORMATS; f++)
        for (int bits = 1; bits <= 8; bits++) {
            zc_kvq q = formats[f];
            q.bits = bits;
            int rc = zc_kvq_quantize(&q, x, C, T, C, blob);
            TT_CHECK(rc == ZC_OK, "%s b=%d: %s", zc_kvq_format_name(q.format), bits, zc_last_error());
            TT_CHECK(zc_kvq_dequantize(&q, blob, T, C, y, C) == ZC_OK, "dequantize");
            check_bound(&q, x, y, blob, T, C);
        }
}

/* Hand-computed: channel 0 = 0,1,2,3 at 2 bits -> min 0, step 1, codes = x.
 * Channel 1 = 0, 0.5, 1.5, 6 -> step 2: 0.25 -> 0, 0.75 -> 1, 3 -> 3:
 * half-even rounding sends 0.5/2 = 0.25 to 0 and 1.5/2 = 0.75 to 1 (no tie);
 * channel 2 = 0, 2, 6, 10 with step 10/3 -> fp16 rounded up. Ties: channel 3
 * = 0, 1, 3, 6 -> step 2: 0.5 -> 0 and 1.5 -> 2 (half to even). */
static void test_known_values(void) {
    const float x[4][4] = {{0, 0, 0, 0}, {1, 0.5f, 2, 1}, {2, 1.5f, 6, 3}, {3, 6, 10, 6}};
    zc_fp16 mn[4], st[4];
    uint8_t codes[4][1], c[4];
    TT_CHECK(zc_chan_params(&x[0][0], 4, NULL, 4, 4, 2, mn, st) == ZC_OK, "params");
    TT_CHECK(zc_fp16_to_f32(st[0]) == 1.0f && zc_fp16_to_f32(mn[0]) == 0.0f, "ch0 step %g", zc_fp16_to_f32(st[0]));
    TT_CHECK(zc_fp16_to_f32(st[1]) == 2.0f && zc_fp16_to_f32(st[3]) == 2.0f, "steps");
    /* 10/3 = 3.3333 -> fp16 neighbours 3.33203125 and 3.333984375: rounded up */
    TT_CHECK(zc_fp16_to_f32(st[2]) == 3.333984375f, "ch2 step %.9g", zc_fp16_to_f32(st[2]));
    zc_chan_encode(&x[0][0], 4, NULL, 4, 4, 2, mn, st, &codes[0][0], 1);
    const uint8_t want[4][4] = {{0, 0, 0, 0}, {1, 0, 1, 0}, {2, 1, 2, 2}, {3, 3, 3, 3}};
    for (int t = 0; t < 4; t++) {
        zc_unpack_scalar(codes[t], 4, 2, c);
        TT_CHECK(memcmp(c, want[t], 4) == 0, "row %d codes %d %d %d %d", t, c[0], c[1], c[2], c[3]);
    }
    /* CSTQuant normalizers: sqrt(max|x|) per channel, and 0 -> 1 */
    const float v[2][3] = {{-4, 0, 9}, {1, 0, -16}};
    zc_fp16 n[3];
    TT_CHECK(zc_cst_norms(&v[0][0], 3, NULL, 2, 3, ZC_CST_SQRT_MAX, n) == ZC_OK, "norms");
    TT_CHECK(zc_fp16_to_f32(n[0]) == 2.0f && zc_fp16_to_f32(n[1]) == 1.0f && zc_fp16_to_f32(n[2]) == 4.0f,
             "norms %g %g %g", zc_fp16_to_f32(n[0]), zc_fp16_to_f32(n[1]), zc_fp16_to_f32(n[2]));
    TT_CHECK(zc_cst_norms(&v[0][0], 3, NULL, 2, 3, ZC_CST_MAX, n) == ZC_OK && zc_fp16_to_f32(n[2]) == 16.0f, "max");
}

/* Zero ranges, zero channels and refused inputs. */
static void test_edge_cases(void) {
    float x[6 * 16], y[6 * 16];
    uint8_t blob[1024];
    for (int i = 0; i < 6 * 16; i++) x[i] = 0.1f; /* constant: min16 < 0.1 (rounded down), tiny step */
    for (int f = 0; f < N_FORMATS; f++) {
        zc_kvq q = formats[f];
        q.bits = 3;
        TT_CHECK(zc_kvq_quantize(&q, x, 16, 6, 16, blob) == ZC_OK, "constant %s", zc_kvq_format_name(q.format));
        zc_kvq_dequantize(&q, blob, 6, 16, y, 16);
        for (int i = 0; i < 6 * 16; i++) TT_CHECK(fabsf(y[i] - 0.1f) < 1e-4f && y[i] == y[i], "const y=%g", y[i]);
    }
    /* exactly representable constant: step 0, all codes 0, y == min exactly */
    for (int i = 0; i < 6 * 16; i++) x[i] = (i % 16 == 3) ? 0.0f : -2.5f;
    zc_kvq ch = {ZC_KVQ_CHANNEL, 4, 0, 0};
    TT_CHECK(zc_kvq_quantize(&ch, x, 16, 6, 16, blob) == ZC_OK, "channel");
    const zc_fp16 *p = (const zc_fp16 *)blob;
    TT_CHECK(p[16 + 0] == 0 && p[16 + 3] == 0, "zero steps %04x %04x", p[16], p[19]);
    zc_kvq_dequantize(&ch, blob, 6, 16, y, 16);
    TT_CHECK(memcmp(x, y, sizeof x) == 0, "exact reconstruction of constant channels");
    /* CST with an all-zero channel: normalizer 1, no NaN */
    zc_kvq cst = {ZC_KVQ_CST, 2, 0, ZC_CST_SQRT_MAX};
    TT_CHECK(zc_kvq_quantize(&cst, x, 16, 6, 16, blob) == ZC_OK, "cst");
    TT_CHECK(p[3] == 0x3c00, "zero channel normalizer %04x", p[3]);
    zc_kvq_dequantize(&cst, blob, 6, 16, y, 16);
    for (int i = 0; i < 6 * 16; i++) TT_CHECK(fabsf(y[i] - x[i]) < 2e-3f, "cst zero/constant i=%d y=%g", i, y[i]);
    /* refused: NaN, inf, beyond fp16, bad widths and groups */
    const float bad[] = {NAN, INFINITY, -INFINITY, 1e6f};
    for (int b = 0; b < 4; b++) {
        x[37] = bad[b];
        for (int f = 0; f < N_FORMATS; f++) {
            zc_kvq q = formats[f];
            q.bits = 4;
            /* 1e6 is fine for CSTQuant with sqrt: n = 1000 and x / n = 1000 fit fp16 */
            int want = (b == 3 && q.format == ZC_KVQ_CST && q.norm == ZC_CST_SQRT_MAX) ? ZC_OK : ZC_ERR_ARG;
            TT_CHECK(zc_kvq_quantize(&q, x, 16, 6, 16, blob) == want, "%s: %g", zc_kvq_format_name(q.format),
                     (double)bad[b]);
        }
        if (b < 3) {
            zc_kvq q8 = {ZC_KVQ_Q8_0, 0, 0, 0};
            float xr[32] = {0};
            xr[5] = bad[b];
            TT_CHECK(zc_kvq_quantize(&q8, xr, 32, 1, 32, blob) == ZC_ERR_ARG, "q8_0 accepted %g", (double)bad[b]);
        }
    }
    x[37] = 0;
    zc_kvq q = {ZC_KVQ_TOKEN, 0, 0, 0};
    TT_CHECK(zc_kvq_quantize(&q, x, 16, 6, 16, blob) == ZC_ERR_ARG, "bits 0");
    q.bits = 9;
    TT_CHECK(zc_kvq_quantize(&q, x, 16, 6, 16, blob) == ZC_ERR_ARG, "bits 9");
    zc_kvq g = {ZC_KVQ_GROUP_CH, 2, 12, 0};
    TT_CHECK(zc_kvq_quantize(&g, x, 16, 6, 16, blob) == ZC_ERR_ARG, "group 12");
    zc_kvq q4 = {ZC_KVQ_Q4_0, 0, 0, 0};
    TT_CHECK(zc_kvq_quantize(&q4, x, 16, 6, 16, blob) == ZC_ERR_ARG, "q4_0 with 16 channels");
    /* encode with given parameters clamps out-of-range values */
    zc_fp16 mn = zc_f32_to_fp16(0.0f), st = zc_f32_to_fp16(1.0f);
    float big[2] = {-5.0f, 100.0f};
    uint8_t code, c2[2];
    zc_fp16 mns[2] = {mn, mn}, sts[2] = {st, st};
    zc_chan_encode(big, 2, NULL, 1, 2, 3, mns, sts, &code, 1);
    zc_unpack_scalar(&code, 2, 3, c2);
    TT_CHECK(c2[0] == 0 && c2[1] == 7, "clamped codes %d %d", c2[0], c2[1]);
}

/* Every byte of [0, total_bytes) is written and nothing after it, and the
 * layout's bit counts add up to the formula for each format. */
static void test_bit_accounting(void) {
    unsigned long long s = 3;
    const int T = 37, C = 96;
    static float x[37 * 96];
    static uint8_t a[16384], b[16384];
    fill_block(&s, x, T, C);
    for (int f = 0; f < N_FORMATS + 2; f++)
        for (int bits = 1; bits <= 8; bits++) {
            zc_kvq q = f < N_FORMATS ? formats[f] : (zc_kvq){f == N_FORMATS ? ZC_KVQ_Q8_0 : ZC_KVQ_Q4_0, bits, 0, 0};
            q.bits = bits;
            zc_kvq_layout l;
            TT_CHECK(zc_kvq_layout_of(&q, T, C, &l) == ZC_OK, "layout");
            memset(a, 0xaa, sizeof a);
            memset(b, 0x55, sizeof b);
            zc_kvq_quantize(&q, x, C, T, C, a);
            zc_kvq_quantize(&q, x, C, T, C, b);
            size_t first_diff = 0;
            while (first_diff < sizeof a && a[first_diff] == b[first_diff]) first_diff++;
            TT_CHECK(first_diff == l.total_bytes, "%s b=%d: written %zu bytes, layout says %zu",
                     zc_kvq_format_name(q.format), bits, first_diff, l.total_bytes);
            uint64_t params = 0, codes = (uint64_t)T * ((C * bits + 7) / 8) * 8;
            switch (q.format) {
            case ZC_KVQ_CHANNEL: params = 2 * C; break;
            case ZC_KVQ_CST: params = C + 2 * T; break;
            case ZC_KVQ_TOKEN: params = 2 * T; break;
            case ZC_KVQ_GROUP_CH: params = 2 * (uint64_t)T * ((C + q.group - 1) / q.group); break;
            case ZC_KVQ_GROUP_TOK: params = 2 * (uint64_t)C * ((T + q.group - 1) / q.group); break;
            case ZC_KVQ_Q8_0: codes = (uint64_t)T * C * 8; params = (uint64_t)T * C / 32; break;
            case ZC_KVQ_Q4_0: codes = (uint64_t)T * C * 4; params = (uint64_t)T * C / 32; break;
            default: break;
            }
            TT_CHECK(l.code_bits == codes && l.param_bits == 16 * params &&
                         zc_kvq_stored_bits(&q, T, C) == codes + 16 * params &&
                         8 * (uint64_t)l.total_bytes == codes + 16 * params,
                     "%s b=%d: bits %llu + %llu", zc_kvq_format_name(q.format), bits,
                     (unsigned long long)l.code_bits, (unsigned long long)l.param_bits);
        }
}

/* AVX2 and scalar kernels write identical blobs and reconstructions, on odd
 * shapes that exercise every SIMD tail. */
static void test_simd_equals_scalar(void) {
    zc_cpu_set_simd(-1);
    if (!zc_cpu_has_avx2()) TT_SKIP("no AVX2 on this machine (or ZIPCACHE_NO_SIMD)");
    unsigned long long s = 11;
    static float x[70 * 300], ya[70 * 300], yb[70 * 300];
    static uint8_t a[70 * 300 * 2 + 4096], b[70 * 300 * 2 + 4096];
    /* 3 x 4100: rows longer than CSTQuant's stack buffer take the two-division path */
    const int shapes[][2] = {{70, 300}, {1, 8}, {5, 64}, {33, 129}, {64, 72}, {9, 260}, {3, 4100}, {4, 5}, {40, 3}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int T = shapes[si][0], C = shapes[si][1];
        fill_block(&s, x, T, C);
        for (int f = 0; f < N_FORMATS; f++)
            for (int bits = 1; bits <= 8; bits++) {
                zc_kvq q = formats[f];
                q.bits = bits;
                zc_kvq_layout l;
                zc_kvq_layout_of(&q, T, C, &l);
                zc_cpu_set_simd(0);
                int ra = zc_kvq_quantize(&q, x, C, T, C, a);
                zc_kvq_dequantize(&q, a, T, C, ya, C);
                zc_cpu_set_simd(1);
                int rb = zc_kvq_quantize(&q, x, C, T, C, b);
                zc_kvq_dequantize(&q, b, T, C, yb, C);
                TT_CHECK(ra == ZC_OK && rb == ZC_OK, "rc %d %d", ra, rb);
                TT_CHECK(memcmp(a, b, l.total_bytes) == 0, "blob %s b=%d T=%d C=%d", zc_kvq_format_name(q.format),
                         bits, T, C);
                TT_CHECK(memcmp(ya, yb, sizeof(float) * (size_t)T * C) == 0, "y %s b=%d T=%d C=%d",
                         zc_kvq_format_name(q.format), bits, T, C);
            }
    }
    zc_cpu_set_simd(-1);
}

/* A gathered subset (rows list) gives what the same rows copied out give. */
static void test_row_subset(void) {
    unsigned long long s = 5;
    enum { T = 40, C = 72, N = 13 };
    static float x[T * C], g[N * C];
    const int32_t rows[N] = {0, 2, 3, 5, 8, 13, 21, 22, 30, 31, 35, 38, 39};
    fill_block(&s, x, T, C);
    for (int i = 0; i < N; i++) memcpy(g + i * C, x + rows[i] * C, C * sizeof(float));
    zc_fp16 m1[C], s1[C], m2[C], s2[C], n1[C], n2[C], tm1[N], ts1[N], tm2[N], ts2[N];
    uint8_t c1[N * C], c2[N * C];
    TT_CHECK(zc_chan_params(x, C, rows, N, C, 3, m1, s1) == ZC_OK && zc_chan_params(g, C, NULL, N, C, 3, m2, s2) == ZC_OK,
             "params");
    zc_chan_encode(x, C, rows, N, C, 3, m1, s1, c1, 27);
    zc_chan_encode(g, C, NULL, N, C, 3, m2, s2, c2, 27);
    TT_CHECK(!memcmp(m1, m2, sizeof m1) && !memcmp(s1, s2, sizeof s1) && !memcmp(c1, c2, N * 27), "channel subset");
    TT_CHECK(zc_cst_norms(x, C, rows, N, C, ZC_CST_SQRT_MAX, n1) == ZC_OK &&
                 zc_cst_norms(g, C, NULL, N, C, ZC_CST_SQRT_MAX, n2) == ZC_OK,
             "norms");
    zc_token_quant(x, C, rows, N, C, 4, n1, c1, 36, tm1, ts1);
    zc_token_quant(g, C, NULL, N, C, 4, n2, c2, 36, tm2, ts2);
    TT_CHECK(!memcmp(n1, n2, sizeof n1) && !memcmp(tm1, tm2, sizeof tm1) && !memcmp(ts1, ts2, sizeof ts1) &&
                 !memcmp(c1, c2, N * 36),
             "token subset");
}

/* q8_0 / q4_0 are ggml's rows, byte for byte. */
static void test_ggml_wrap(void) {
    unsigned long long s = 9;
    enum { T = 5, C = 64 };
    float x[T * C], y[T * C], yr[C];
    uint8_t blob[T * 68], row[68];
    fill_block(&s, x, T, C);
    const zc_kvq_format fm[2] = {ZC_KVQ_Q8_0, ZC_KVQ_Q4_0};
    const int ty[2] = {ZC_TYPE_Q8_0, ZC_TYPE_Q4_0};
    for (int k = 0; k < 2; k++) {
        zc_kvq q = {fm[k], 0, 0, 0};
        zc_kvq_layout l;
        TT_CHECK(zc_kvq_layout_of(&q, T, C, &l) == ZC_OK && l.row_bytes == (k ? 36u : 68u), "row bytes");
        TT_CHECK(zc_kvq_quantize(&q, x, C, T, C, blob) == ZC_OK, "quantize");
        TT_CHECK(zc_kvq_dequantize(&q, blob, T, C, y, C) == ZC_OK, "dequantize");
        for (int t = 0; t < T; t++) {
            zc_quantize_row(ty[k], x + t * C, row, C);
            TT_CHECK(memcmp(row, blob + t * l.row_bytes, l.row_bytes) == 0, "row %d", t);
            zc_dequantize_row(ty[k], row, yr, C);
            TT_CHECK(memcmp(yr, y + t * C, sizeof yr) == 0, "y row %d", t);
        }
    }
}

/* ---- --ref mode for the numpy reference ---------------------------------- */

static int ref_mode(char **argv) {
    int T = atoi(argv[3]), C = atoi(argv[4]);
    zc_kvq q = {ZC_KVQ_N_FORMATS, atoi(argv[6]), atoi(argv[7]), strcmp(argv[8], "max") == 0 ? ZC_CST_MAX : ZC_CST_SQRT_MAX};
    for (int f = 0; f < ZC_KVQ_N_FORMATS; f++)
        if (strcmp(argv[5], zc_kvq_format_name((zc_kvq_format)f)) == 0) q.format = (zc_kvq_format)f;
    zc_kvq_layout l;
    if (T < 1 || C < 1 || zc_kvq_layout_of(&q, T, C, &l)) {
        fprintf(stderr, "test_kvquant --ref: %s\n", zc_last_error());
        return 2;
    }
    size_t n = (size_t)T * C;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    void *blob = malloc(l.total_bytes);
    FILE *f = fopen(argv[2], "rb");
    int ok = x && y && blob && f && fread(x, sizeof *x, n, f) == n;
    if (f) fclose(f);
    int rc = ok ? zc_kvq_quantize(&q, x, C, T, C, blob) : ZC_ERR_IO;
    if (rc == ZC_OK) rc = zc_kvq_dequantize(&q, blob, T, C, y, C);
    if (rc == ZC_OK) {
        FILE *fb = fopen(argv[9], "wb"), *fy = fopen(argv[10], "wb");
        ok = fb && fy && fwrite(blob, 1, l.total_bytes, fb) == l.total_bytes && fwrite(y, sizeof *y, n, fy) == n;
        if (fb) fclose(fb);
        if (fy) fclose(fy);
        if (!ok) rc = ZC_ERR_IO;
    }
    if (rc) fprintf(stderr, "test_kvquant --ref: %s\n", rc == ZC_ERR_IO ? "I/O error" : zc_last_error());
    free(x);
    free(y);
    free(blob);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 11 && strcmp(argv[1], "--ref") == 0) return ref_mode(argv);
    TT_RUN(test_known_values);
    TT_RUN(test_error_bound);
    TT_RUN(test_edge_cases);
    TT_RUN(test_bit_accounting);
    TT_RUN(test_simd_equals_scalar);
    TT_RUN(test_row_subset);
    TT_RUN(test_ggml_wrap);
    return tt_finish();
}
