/* Tests for src/quant/ggml_blocks: the type table, row sizes, hand-checked
 * blocks of every loadable format, and quantize/dequantize round trips.
 *
 * Bit-exactness against an independent implementation is checked by
 * tests/py/test_ggml_blocks.py, which drives this binary's file modes:
 *   test_ggml_blocks --dequant TYPE in.bin out.f32   (n inferred from the size)
 *   test_ggml_blocks --quant   TYPE in.f32 out.bin
 */
#include "tt.h"

#include "quant/ggml_blocks.h"
#include "util/cpu.h"
#include "util/error.h"
#include "util/fp16.h"

#include <float.h>

static void test_type_table(void) {
    static const struct { int type; const char *name; int elems, bytes; bool load; } want[] = {
        {ZC_TYPE_F32, "f32", 1, 4, true},       {ZC_TYPE_F16, "f16", 1, 2, true},
        {ZC_TYPE_Q4_0, "q4_0", 32, 18, true},   {ZC_TYPE_Q4_1, "q4_1", 32, 20, true},
        {ZC_TYPE_Q5_0, "q5_0", 32, 22, true},   {ZC_TYPE_Q5_1, "q5_1", 32, 24, true},
        {ZC_TYPE_Q8_0, "q8_0", 32, 34, true},   {ZC_TYPE_Q8_1, "q8_1", 32, 36, false},
        {ZC_TYPE_Q2_K, "q2_K", 256, 84, false}, {ZC_TYPE_Q3_K, "q3_K", 256, 110, false},
        {ZC_TYPE_Q4_K, "q4_K", 256, 144, true}, {ZC_TYPE_Q5_K, "q5_K", 256, 176, true},
        {ZC_TYPE_Q6_K, "q6_K", 256, 210, true}, {ZC_TYPE_Q8_K, "q8_K", 256, 292, false},
        {ZC_TYPE_BF16, "bf16", 1, 2, true},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const zc_type_info *ti = zc_type_get(want[i].type);
        TT_CHECK(ti != NULL, "type %d missing", want[i].type);
        if (!ti) continue;
        TT_CHECK(strcmp(ti->name, want[i].name) == 0, "type %d is named %s", want[i].type, ti->name);
        TT_CHECK(ti->block_elems == want[i].elems && ti->block_bytes == want[i].bytes, "%s: %d elems in %d bytes",
                 ti->name, ti->block_elems, ti->block_bytes);
        TT_CHECK(ti->can_load == want[i].load, "%s: can_load", ti->name);
        TT_CHECK(zc_type_from_name(want[i].name) == want[i].type, "from_name(%s)", want[i].name);
    }
    TT_CHECK(zc_type_from_name("Q4_k") == ZC_TYPE_Q4_K, "names are case-insensitive");
    TT_CHECK(zc_type_from_name("q4") == -1 && zc_type_from_name("q4_0x") == -1 && zc_type_from_name("") == -1,
             "prefixes and extensions of names do not match");
    const int unknown[] = {-1, 4, 5, 16, 29, 31, 1000, -2147483647 - 1, 2147483647};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        TT_CHECK(zc_type_get(unknown[i]) == NULL, "type %d should be unknown", unknown[i]);
}

static void test_row_bytes(void) {
    size_t n = 0;
    TT_CHECK(zc_type_row_bytes(ZC_TYPE_Q4_K, 4096, &n) == ZC_OK && n == 16 * 144, "q4_K 4096 -> %zu", n);
    TT_CHECK(zc_type_row_bytes(ZC_TYPE_Q8_0, 96, &n) == ZC_OK && n == 3 * 34, "q8_0 96 -> %zu", n);
    TT_CHECK(zc_type_row_bytes(ZC_TYPE_F16, 7, &n) == ZC_OK && n == 14, "f16 7 -> %zu", n);
    TT_CHECK(zc_type_row_bytes(ZC_TYPE_Q8_0, 0, &n) == ZC_OK && n == 0, "empty row");
    TT_CHECK(zc_type_row_bytes(ZC_TYPE_Q4_0, 33, &n) == ZC_ERR_FORMAT, "33 is not a multiple of 32");
    TT_CHECK(zc_type_row_bytes(ZC_TYPE_Q6_K, -256, &n) == ZC_ERR_FORMAT, "negative count");
    TT_CHECK(zc_type_row_bytes(4, 32, &n) == ZC_ERR_UNSUPPORTED, "retired type id");
    TT_CHECK(zc_type_row_bytes(ZC_TYPE_F32, INT64_MAX, &n) == ZC_ERR_LIMIT, "overflow");
}

/* Hand-built blocks with values worked out from the format description. */
static void test_hand_blocks(void) {
    float y[256];
    zc_block_q4_0 b40 = {zc_f32_to_fp16(0.5f), {0}};
    b40.qs[0] = 0x1F; /* elem 0 = 15, elem 16 = 1 */
    b40.qs[15] = 0x80; /* elem 15 = 0, elem 31 = 8 */
    zc_dequantize_row(ZC_TYPE_Q4_0, &b40, y, 32);
    TT_CHECK(y[0] == 3.5f && y[16] == -3.5f && y[15] == -4.0f && y[31] == 0.0f && y[1] == -4.0f,
             "q4_0: %g %g %g %g %g", y[0], y[16], y[15], y[31], y[1]);

    zc_block_q5_1 b51 = {zc_f32_to_fp16(2.0f), zc_f32_to_fp16(-1.0f), {0x01, 0, 0x01, 0x80}, {0}};
    b51.qs[0] = 0x32; /* elem 0: lo 2 + bit0 of qh -> 18; elem 16: hi 3 + bit16 -> 19 */
    zc_dequantize_row(ZC_TYPE_Q5_1, &b51, y, 32);
    TT_CHECK(y[0] == 35.0f && y[16] == 37.0f && y[31] == 31.0f && y[1] == -1.0f, "q5_1: %g %g %g %g", y[0], y[16],
             y[31], y[1]);

    /* q4_K: sub-block 5 takes scale (scales[9] & 15) | (scales[1] >> 6) << 4 and
     * min (scales[9] >> 4) | (scales[5] >> 6) << 4; its elements are the high
     * nibbles of qs[64..95]. */
    zc_block_q4_K b4k;
    memset(&b4k, 0, sizeof b4k);
    b4k.d = zc_f32_to_fp16(0.25f);
    b4k.dmin = zc_f32_to_fp16(1.0f);
    b4k.scales[9] = 0x73;         /* sc low 3, min low 7 */
    b4k.scales[1] = 0x80;         /* sc high bits 2 -> sc = 35 */
    b4k.scales[5] = 0x40;         /* min high bits 1 -> min = 23 */
    b4k.scales[0] = 0x3F;         /* sub-block 0: sc 63, min 0 */
    b4k.qs[64] = 0xA0;            /* elem 160 = 10 */
    b4k.qs[0] = 0x0F;             /* elem 0 = 15 */
    zc_dequantize_row(ZC_TYPE_Q4_K, &b4k, y, 256);
    TT_CHECK(y[160] == 0.25f * 35 * 10 - 23 && y[161] == -23.0f && y[0] == 0.25f * 63 * 15 && y[32] == 0.0f,
             "q4_K: %g %g %g %g", y[160], y[161], y[0], y[32]);

    /* q6_K: elem 128 + 64 + 17 (k = 2, l = 17) = low nibble... high nibble of ql[64+17],
     * bits 4..5 of qh[32+17], scale scales[8 + 1 + 4]. */
    zc_block_q6_K b6k;
    memset(&b6k, 0, sizeof b6k);
    b6k.d = zc_f32_to_fp16(0.5f);
    b6k.ql[64 + 17] = 0x50;
    b6k.qh[32 + 17] = 0x30;
    b6k.scales[13] = -3;
    zc_dequantize_row(ZC_TYPE_Q6_K, &b6k, y, 256);
    TT_CHECK(y[128 + 64 + 17] == 0.5f * -3 * ((5 | 3 << 4) - 32), "q6_K: %g", y[128 + 64 + 17]);
    TT_CHECK(y[0] == 0.0f, "q6_K: zero scale gives zero, got %g", y[0]);
}

/* Quantizing then dequantizing each format stays within half a step, except
 * that q4_0/q5_0 map the largest magnitude to -8 (-16) and clamp its mirror
 * image to +7 (+15): a full step there. */
static void test_roundtrip_error(void) {
    static const struct { int type; float step_frac; } cases[] = {
        {ZC_TYPE_Q8_0, 1.0f / 127}, {ZC_TYPE_Q4_0, 2.0f / 8}, {ZC_TYPE_Q4_1, 1.0f / 15},
        {ZC_TYPE_Q5_0, 2.0f / 16},  {ZC_TYPE_Q5_1, 1.0f / 31},
    };
    enum { N = 32 * 64 };
    static float x[N], y[N];
    static uint8_t q[N * 4];
    unsigned long long s = 7;
    for (int i = 0; i < N; i++) x[i] = tt_randf(&s) * (float)(1 + i / 32 % 5);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        TT_CHECK(zc_quantize_row(cases[c].type, x, q, N) == ZC_OK, "quantize %d", cases[c].type);
        zc_dequantize_row(cases[c].type, q, y, N);
        double worst = 0;
        for (int b = 0; b < N / 32; b++) {
            float amax = 0, mn = x[b * 32], mx = x[b * 32];
            for (int j = 0; j < 32; j++) {
                amax = fmaxf(amax, fabsf(x[b * 32 + j]));
                mn = fminf(mn, x[b * 32 + j]);
                mx = fmaxf(mx, x[b * 32 + j]);
            }
            /* the step relative to max|x| (symmetric) or max-min (with a min) */
            bool asym = cases[c].type == ZC_TYPE_Q4_1 || cases[c].type == ZC_TYPE_Q5_1;
            double step = (asym ? mx - mn : amax) * cases[c].step_frac;
            for (int j = 0; j < 32; j++) {
                /* half a step, plus fp16 rounding of the scale (and min) */
                double err = fabs(x[b * 32 + j] - y[b * 32 + j]) / (0.5 * step + 2e-3 * amax);
                worst = fmax(worst, err);
            }
        }
        TT_CHECK(worst <= 1.0, "%s: error %.3f of the bound", zc_type_get(cases[c].type)->name, worst);
    }
    /* the float formats are plain conversions */
    uint16_t h[N];
    zc_quantize_row(ZC_TYPE_F16, x, h, N);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += h[i] != zc_f32_to_fp16(x[i]);
    zc_quantize_row(ZC_TYPE_BF16, x, h, N);
    for (int i = 0; i < N; i++) bad += h[i] != zc_f32_to_bf16(x[i]);
    TT_CHECK(bad == 0, "%d f16/bf16 conversions differ", bad);
    TT_CHECK(zc_quantize_row(ZC_TYPE_Q4_K, x, q, 256) == ZC_ERR_UNSUPPORTED, "q4_K quantization not offered");
    TT_CHECK(zc_quantize_row(ZC_TYPE_Q8_0, x, q, 33) == ZC_ERR_ARG, "partial block");
}

/* ggml's edge cases: an all-zero block has d = 0 (-0: 0 / -8) and mid codes; the element
 * of largest magnitude maps to code 0 of q4_0 and -8 is never clamped. */
static void test_quant_edges(void) {
    float x[32] = {0};
    zc_block_q4_0 b;
    zc_quantize_row(ZC_TYPE_Q4_0, x, &b, 32);
    TT_CHECK(zc_fp16_to_f32(b.d) == 0.0f && b.qs[0] == 0x88 && b.qs[15] == 0x88, "zeros: d=%04x qs=%02x", b.d, b.qs[0]);
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16) / 2.0f; /* -8 .. 7.5 */
    zc_quantize_row(ZC_TYPE_Q4_0, x, &b, 32);
    TT_CHECK(zc_fp16_to_f32(b.d) == 1.0f, "d = -8 / -8 = 1, got %g", zc_fp16_to_f32(b.d));
    TT_CHECK((b.qs[0] & 0xF) == 0 && (b.qs[15] >> 4) == 15, "codes %02x %02x", b.qs[0], b.qs[15]);
    zc_block_q8_0 b8;
    zc_quantize_row(ZC_TYPE_Q8_0, x, &b8, 32);
    TT_CHECK(b8.qs[0] == -127 && b8.qs[16] == 0, "q8_0 codes %d %d", b8.qs[0], b8.qs[16]);
}

/* One block of 32 values meant to break a SIMD port of the Q8_0/Q4_0
 * quantizers. M is the format's largest code magnitude (127 for q8_0, 8 for
 * q4_0): a block whose largest element is M*2^e has d = +-2^e exactly, so
 * half-integer multiples of 2^e land exactly on rounding ties. */
enum { ADV_KINDS = 11 };
static void adversarial_block(float *x, int kind, int M, unsigned long long *s) {
    unsigned long long u = tt_rand_u64(s);
    switch (kind) {
    case 0: { /* plain random at a random scale */
        float sc = ldexpf(1.0f, (int)(u % 61) - 30);
        for (int j = 0; j < 32; j++) x[j] = tt_randf(s) * sc;
        break;
    }
    case 1:   /* exact ties (x*id = k + 0.5) and exact integers */
    case 2: { /* near ties: the same at a scale that is not a power of two */
        float p = ldexpf(1.0f, (int)(u % 41) - 20);
        if (kind == 2) p *= 1.0f + 0.5f * (tt_randf(s) + 1.0f);
        for (int j = 0; j < 32; j++) {
            float k = (float)(int)(tt_rand_u64(s) % (unsigned)(2 * M)) - (float)M; /* -M .. M-1 */
            x[j] = ((tt_rand_u64(s) & 1) ? k + 0.5f : k) * p;
        }
        x[(u >> 8) % 32] = ((u >> 16) & 1 ? (float)M : -(float)M) * p;
        break;
    }
    case 3: /* zeros of both signs, sometimes one tiny value */
        for (int j = 0; j < 32; j++) x[j] = (tt_rand_u64(s) & 1) ? -0.0f : 0.0f;
        if (u & 1) x[(u >> 8) % 32] = ldexpf(tt_randf(s), -(int)((u >> 16) % 150));
        break;
    case 4: { /* all equal (the maximum is the first element) */
        float v = (u & 1) ? (float)((u & 2) ? M : -M) : tt_randf(s) * 100.0f;
        for (int j = 0; j < 32; j++) x[j] = v;
        break;
    }
    case 5: { /* a negative maximum, sometimes tied in magnitude by a positive one before or after it */
        for (int j = 0; j < 32; j++) x[j] = tt_randf(s);
        int a = (int)((u >> 8) % 32), b = (int)((u >> 16) % 32);
        x[a] = -1.5f - (float)(u % 7);
        if (u & (1 << 30)) x[b] = -x[a];
        break;
    }
    case 6: /* huge: the scale overflows fp16, some elements at +-FLT_MAX */
        for (int j = 0; j < 32; j++) x[j] = ldexpf(tt_randf(s), 100 + (int)(tt_rand_u64(s) % 28));
        if (u & 1) x[(u >> 8) % 32] = (u & 2) ? FLT_MAX : -FLT_MAX;
        break;
    case 7: /* tiny normals: d and 1/d near the ends of the float range */
        for (int j = 0; j < 32; j++) x[j] = ldexpf(1.0f + fabsf(tt_randf(s)), -126 + (int)(tt_rand_u64(s) % 20));
        for (int j = 0; j < 32; j++)
            if (tt_rand_u64(s) & 1) x[j] = -x[j];
        break;
    case 8: /* denormals, sometimes with one small normal (d then underflows or not) */
        for (int j = 0; j < 32; j++) {
            uint32_t bits = (uint32_t)(tt_rand_u64(s) >> 20) & 0x807fffffu; /* exponent 0 */
            memcpy(&x[j], &bits, 4);
        }
        if (u & 1) x[(u >> 8) % 32] = ldexpf(1.0f, -126 + (int)((u >> 16) % 12));
        break;
    case 9: /* random finite bit patterns: every exponent in one block */
        for (int j = 0; j < 32; j++) {
            uint32_t bits;
            do bits = (uint32_t)(tt_rand_u64(s) >> 32);
            while ((bits & 0x7f800000u) == 0x7f800000u);
            memcpy(&x[j], &bits, 4);
        }
        break;
    default: /* non-finite elements among ordinary ones */
        for (int j = 0; j < 32; j++) x[j] = tt_randf(s) * 4.0f;
        for (int k = 0; k < 1 + (int)(u % 3); k++) {
            unsigned long long v = tt_rand_u64(s);
            x[v % 32] = (v >> 8) % 3 == 0 ? INFINITY : (v >> 8) % 3 == 1 ? -INFINITY : NAN;
        }
        break;
    }
}

/* The AVX2 Q8_0/Q4_0 quantizers give the scalar reference's bytes exactly,
 * through zc_quantize_row's dispatch and called directly. Tolerance: none. */
static void test_quant_avx2_matches_scalar(void) {
    if (!zc_cpu_has_avx2()) TT_SKIP("no AVX2+FMA+F16C (or ZIPCACHE_NO_SIMD=1)");
    enum { MAX_NB = 8, ROWS = 4000 };
    static float x[MAX_NB * 32];
    static uint8_t ref[MAX_NB * 34], got[MAX_NB * 34], direct[MAX_NB * 34];
    static const int types[2] = {ZC_TYPE_Q8_0, ZC_TYPE_Q4_0};
    for (int t = 0; t < 2; t++) {
        const int type = types[t], bb = zc_type_get(type)->block_bytes, M = type == ZC_TYPE_Q8_0 ? 127 : 8;
        unsigned long long s = 0x9e3779b97f4a7c15ULL + (unsigned long long)t;
        int bad_blocks = 0, bad_kind[ADV_KINDS] = {0}, n_blocks = 0;
        for (int r = 0; r < ROWS; r++) {
            const int nb = 1 + (int)(tt_rand_u64(&s) % MAX_NB);
            int kinds[MAX_NB];
            for (int b = 0; b < nb; b++) {
                kinds[b] = r < ADV_KINDS * 100 ? (r + b) % ADV_KINDS : (int)(tt_rand_u64(&s) % ADV_KINDS);
                adversarial_block(x + 32 * b, kinds[b], M, &s);
            }
            zc_cpu_set_simd(0);
            int rc0 = zc_quantize_row(type, x, ref, 32 * nb);
            zc_cpu_set_simd(1);
            int rc1 = zc_quantize_row(type, x, got, 32 * nb);
            if (type == ZC_TYPE_Q8_0)
                zc_quant_q8_0_avx2(x, (zc_block_q8_0 *)direct, nb);
            else
                zc_quant_q4_0_avx2(x, (zc_block_q4_0 *)direct, nb);
            TT_CHECK(rc0 == ZC_OK && rc1 == ZC_OK, "rc %d %d", rc0, rc1);
            for (int b = 0; b < nb; b++, n_blocks++) {
                const size_t o = (size_t)b * (size_t)bb;
                if (memcmp(ref + o, got + o, (size_t)bb) == 0 && memcmp(ref + o, direct + o, (size_t)bb) == 0)
                    continue;
                if (bad_blocks++ < 3) {
                    int j = 0;
                    while (j < bb && ref[o + j] == got[o + j]) j++;
                    printf("  %s row %d block %d (kind %d): byte %d scalar %02x avx2 %02x\n",
                           zc_type_get(type)->name, r, b, kinds[b], j, j < bb ? ref[o + j] : 0,
                           j < bb ? got[o + j] : 0);
                }
                bad_kind[kinds[b]]++;
            }
        }
        TT_CHECK(bad_blocks == 0, "%s: %d of %d blocks differ (by kind: %d %d %d %d %d %d %d %d %d %d %d)",
                 zc_type_get(type)->name, bad_blocks, n_blocks, bad_kind[0], bad_kind[1], bad_kind[2],
                 bad_kind[3], bad_kind[4], bad_kind[5], bad_kind[6], bad_kind[7], bad_kind[8], bad_kind[9],
                 bad_kind[10]);
    }

    /* ties round away from zero (roundf), not to even as _mm256_round_ps would */
    float t[32] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 1.5f, -1.5f};
    zc_block_q8_0 b8;
    zc_quantize_row(ZC_TYPE_Q8_0, t, &b8, 32);
    TT_CHECK(b8.qs[1] == 3 && b8.qs[2] == -3 && b8.qs[3] == 1 && b8.qs[4] == -1 && b8.qs[5] == 2 && b8.qs[6] == -2,
             "q8_0 ties: %d %d %d %d %d %d", b8.qs[1], b8.qs[2], b8.qs[3], b8.qs[4], b8.qs[5], b8.qs[6]);
    /* q4_0: max -8 -> d = 1, id = 1; x + 8.5 = 9.0 exactly -> 9; -0.5 + 8.5 = 8; x = 8 -> 16.5 -> clamp 15 */
    float t4[32] = {-8.0f, 0.5f, -0.5f, 8.0f};
    zc_block_q4_0 b4;
    zc_quantize_row(ZC_TYPE_Q4_0, t4, &b4, 32);
    TT_CHECK(b4.qs[0] == 0x80 && b4.qs[1] == 0x89 && b4.qs[2] == 0x88 && b4.qs[3] == 0x8f, "q4_0 codes %02x %02x %02x %02x",
             b4.qs[0], b4.qs[1], b4.qs[2], b4.qs[3]);
    zc_cpu_set_simd(-1);
}

static int read_file(const char *path, void **buf, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = len > 0 ? (size_t)len : 0;
    size_t got = *buf ? fread(*buf, 1, *n, f) : 0;
    fclose(f);
    return got == *n ? 0 : -1;
}

static int write_file(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = fwrite(buf, 1, n, f);
    return (fclose(f) == 0 && put == n) ? 0 : -1;
}

/* --dequant/--quant TYPE IN OUT for the Python reference. */
static int file_mode(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s --dequant|--quant TYPE IN OUT\n", argv[0]);
        return 2;
    }
    int type = zc_type_from_name(argv[2]);
    const zc_type_info *ti = zc_type_get(type);
    void *in = NULL;
    size_t n_in = 0;
    if (!ti || read_file(argv[3], &in, &n_in)) {
        fprintf(stderr, "%s: bad type or unreadable input %s\n", argv[2], argv[3]);
        free(in);
        return 2;
    }
    bool deq = strcmp(argv[1], "--dequant") == 0;
    int64_t n = deq ? (int64_t)(n_in / (size_t)ti->block_bytes) * ti->block_elems : (int64_t)(n_in / sizeof(float));
    size_t n_out = deq ? (size_t)n * sizeof(float) : (size_t)(n / ti->block_elems) * (size_t)ti->block_bytes;
    void *out = malloc(n_out ? n_out : 1);
    int rc = 0;
    if (deq)
        zc_dequantize_row(type, in, out, n);
    else
        rc = zc_quantize_row(type, in, out, n);
    if (rc || write_file(argv[4], out, n_out)) {
        fprintf(stderr, "%s: %s\n", argv[4], rc ? zc_last_error() : "cannot write");
        rc = 2;
    }
    free(in);
    free(out);
    return rc;
}

int main(int argc, char **argv) {
    if (argc > 1) return file_mode(argc, argv);
    TT_RUN(test_type_table);
    TT_RUN(test_row_bytes);
    TT_RUN(test_hand_blocks);
    TT_RUN(test_roundtrip_error);
    TT_RUN(test_quant_edges);
    TT_RUN(test_quant_avx2_matches_scalar);
    return tt_finish();
}
