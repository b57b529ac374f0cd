/* Tests for src/util: fp16/bf16 conversion, the thread pool, the JSON reader,
 * checked-size helpers. */
#include <stdatomic.h>

#include "tt.h"
#include "util/error.h"
#include "util/cpu.h"
#include "util/fp16.h"
#include "util/json.h"
#include "util/threads.h"

/* Reference fp16 rounding in double arithmetic: the nearest representable
 * half (ties to even), computed by brute force over the finite halves. */
static uint16_t fp16_nearest_ref(float f) {
    double x = f;
    uint16_t best = 0;
    double best_err = INFINITY;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        double v = zc_fp16_to_f32((uint16_t)h);
        double err = fabs(fabs(x) - v);
        if (err < best_err || (err == best_err && !(h & 1))) {
            best_err = err;
            best = (uint16_t)h;
        }
    }
    /* beyond the largest half plus half an ulp: infinity */
    if (fabs(x) >= 65520.0) best = 0x7c00;
    return (uint16_t)(best | (signbit(f) ? 0x8000 : 0));
}

static void test_fp16_roundtrip_all_halves(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = zc_fp16_to_f32((uint16_t)h);
        if (isnan(f)) {
            bad += !isnan(zc_fp16_to_f32(zc_f32_to_fp16(f)));
            continue;
        }
        bad += zc_f32_to_fp16(f) != h;
    }
    TT_CHECK(bad == 0, "%d halves do not round-trip", bad);
}

static void test_fp16_rounding_matches_reference(void) {
    unsigned long long s = 42;
    int bad = 0;
    for (int i = 0; i < 300; i++) {
        /* spread over the normal, subnormal and overflow ranges, plus exact midpoints */
        float f = tt_randf(&s) * ldexpf(1.0f, (int)(tt_rand_u64(&s) % 44) - 28);
        if (i % 3 == 0) {
            uint16_t h = (uint16_t)(tt_rand_u64(&s) % 0x7bff);
            f = 0.5f * (zc_fp16_to_f32(h) + zc_fp16_to_f32((uint16_t)(h + 1))); /* a tie */
        }
        uint16_t got = zc_f32_to_fp16(f), want = fp16_nearest_ref(f);
        if (got != want) {
            if (bad < 5) fprintf(stderr, "  f=%.9g got %04x want %04x\n", f, got, want);
            bad++;
        }
    }
    TT_CHECK(bad == 0, "%d mismatches", bad);
}

/* The F16C rows against the scalar references: every fp16 bit pattern
 * widened, and random, edge (overflow, subnormal, halfway) and special
 * floats narrowed, at lengths that leave every tail size. */
static void test_fp16_rows(void) {
    if (!zc_cpu_has_avx2()) TT_SKIP("no AVX2/F16C on this CPU");
    static zc_fp16 all[65536];
    static float wide_a[65536], wide_b[65536];
    for (int i = 0; i < 65536; i++) all[i] = (zc_fp16)i;
    zc_fp16_to_f32_row_avx2(all, wide_a, 65536);
    zc_fp16_to_f32_row_scalar(all, wide_b, 65536);
    int bad = 0;
    for (int i = 0; i < 65536; i++) bad += memcmp(&wide_a[i], &wide_b[i], 4) != 0 && !(isnan(wide_a[i]) && isnan(wide_b[i]));
    TT_CHECK(bad == 0, "%d halves widen differently", bad);
    enum { N = 4099 };
    static float f[N];
    static zc_fp16 ha[N], hb[N];
    unsigned long long seed = 42;
    const float edge[] = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e9f, -1e9f, 6.1035156e-05f, 6.0e-08f,
                          2.9802322e-08f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, INFINITY, -INFINITY, NAN};
    for (int i = 0; i < N; i++) {
        unsigned long long r = tt_rand_u64(&seed);
        if (i < (int)(sizeof edge / sizeof edge[0]))
            f[i] = edge[i];
        else if (i % 3 == 0) /* any bit pattern */
            memcpy(&f[i], &(uint32_t){(uint32_t)r}, 4);
        else
            f[i] = tt_randf(&seed) * (float)(1 << (r % 20)) / 64.0f;
    }
    for (int len = 0; len <= 17; len++) {
        memset(ha, 0, sizeof ha), memset(hb, 0, sizeof hb);
        zc_f32_to_fp16_row_avx2(f + 3, ha, (size_t)len);
        zc_f32_to_fp16_row_scalar(f + 3, hb, (size_t)len);
        TT_CHECK(!memcmp(ha, hb, sizeof ha), "length %d", len);
    }
    zc_f32_to_fp16_row(f, ha, N);
    zc_f32_to_fp16_row_scalar(f, hb, N);
    bad = 0;
    for (int i = 0; i < N; i++) {
        int nan_a = (ha[i] & 0x7c00) == 0x7c00 && (ha[i] & 0x3ff), nan_b = (hb[i] & 0x7c00) == 0x7c00 && (hb[i] & 0x3ff);
        bad += nan_a != nan_b || (!nan_a && ha[i] != hb[i]);
    }
    TT_CHECK(bad == 0, "%d of %d floats narrow differently", bad, N);
}

static void test_bf16(void) {
    TT_CHECK(zc_f32_to_bf16(1.0f) == 0x3f80, "1.0");
    /* 1 + 2^-8 is a tie between 1.0 and 1 + 2^-7: ties to even gives 1.0 */
    TT_CHECK(zc_f32_to_bf16(1.00390625f) == 0x3f80, "tie to even");
    TT_CHECK(zc_f32_to_bf16(1.01171875f) == 0x3f82, "tie up to even");
    TT_CHECK(zc_bf16_to_f32(0xc000) == -2.0f, "-2");
    TT_CHECK(isnan(zc_bf16_to_f32(zc_f32_to_bf16(NAN))), "nan stays nan");
}

typedef struct {
    atomic_long sum;
    atomic_int max_thread;
} pool_ctx;

static void add_task(void *ctx, int task, int thread) {
    pool_ctx *c = ctx;
    atomic_fetch_add(&c->sum, task + 1);
    int m = atomic_load(&c->max_thread);
    while (thread > m && !atomic_compare_exchange_weak(&c->max_thread, &m, thread)) {}
}

static void test_pool_runs_every_task_once(void) {
    zc_pool *pool = zc_pool_create(4);
    TT_CHECK(pool != NULL, "pool");
    for (int rep = 0; rep < 200; rep++) {
        pool_ctx c = {0};
        int n = 1 + rep % 37;
        zc_pool_run(pool, n, add_task, &c);
        long want = (long)n * (n + 1) / 2;
        TT_CHECK(atomic_load(&c.sum) == want, "rep %d: sum %ld want %ld", rep, atomic_load(&c.sum), want);
        TT_CHECK(atomic_load(&c.max_thread) < zc_pool_size(pool), "thread index in range");
    }
    zc_pool_destroy(pool);
    pool_ctx c = {0};
    zc_pool_run(NULL, 10, add_task, &c); /* NULL pool runs inline */
    TT_CHECK(atomic_load(&c.sum) == 55, "inline");
}

static int parse(const char *text, zc_json_doc **doc, const zc_json **root) {
    return zc_json_parse(text, strlen(text), "t.json", doc, root);
}

static void test_json_valid(void) {
    zc_json_doc *doc;
    const zc_json *r;
    int rc = parse(" {\"a\": [1, -2.5e1, true, null, \"x\\u00e9\\ud83d\\ude00\\n\"], \"b\": {\"c\": 9007199254740993}, \"a\": 3}", &doc, &r);
    TT_CHECK(rc == ZC_OK, "parse: %s", zc_last_error());
    if (rc) return;
    int64_t i;
    TT_CHECK(zc_json_int(zc_json_get(r, "a"), &i) && i == 3, "duplicate key: last wins");
    const zc_json *b = zc_json_get(r, "b");
    TT_CHECK(zc_json_int(zc_json_get(b, "c"), &i) && i == 9007199254740993LL, "exact int64");
    const zc_json *arr = &r->items[0];
    TT_CHECK(arr->type == ZC_JSON_ARRAY && arr->len == 5, "array");
    double d;
    TT_CHECK(zc_json_num(&arr->items[1], &d) && d == -25.0, "exponent");
    TT_CHECK(!arr->items[1].is_integer, "-2.5e1 not written as an integer");
    const char *s = zc_json_str(&arr->items[4]);
    TT_CHECK(s && !strcmp(s, "x\xc3\xa9\xf0\x9f\x98\x80\n"), "escapes and surrogate pair");
    TT_CHECK(zc_json_get(r, "zzz") == NULL && zc_json_get(&arr->items[0], "a") == NULL, "missing keys");
    zc_json_free(doc);
}

static void test_json_rejects_malformed(void) {
    static const char *bad[] = {
        "", "{", "[1,]", "{\"a\" 1}", "[1 2]", "01", "1.", "-", "\"abc", "\"\\x\"", "\"\\ud800\"",
        "\"\\udc00x\"", "tru", "nul", "[1] 2", "{\"a\":1,}", "\"\x01\"", "\"\xff\"", "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"", "1e", "[\"a\" : 1]",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        zc_json_doc *doc = NULL;
        const zc_json *r;
        int rc = parse(bad[k], &doc, &r);
        TT_CHECK(rc == ZC_ERR_FORMAT, "accepted malformed input #%zu", k);
        TT_CHECK(strstr(zc_last_error(), "t.json: invalid JSON at byte") != NULL, "message: %s", zc_last_error());
        zc_json_free(doc);
    }
}

static void test_json_depth_limit(void) {
    char buf[600];
    memset(buf, '[', 300);
    memset(buf + 300, ']', 300);
    zc_json_doc *doc = NULL;
    const zc_json *r;
    TT_CHECK(zc_json_parse(buf, 600, "deep.json", &doc, &r) == ZC_ERR_FORMAT, "300 levels refused");
    TT_CHECK(strstr(zc_last_error(), "nesting too deep") != NULL, "%s", zc_last_error());
    zc_json_free(doc);
    TT_CHECK(zc_json_parse(buf + 300 - 100, 200, "ok.json", &doc, &r) == ZC_OK, "100 levels accepted");
    zc_json_free(doc);
}

static void test_checked_sizes(void) {
    size_t out;
    TT_CHECK(zc_mul_size((size_t)1 << 40, (size_t)1 << 30, &out) == ZC_ERR_LIMIT, "mul overflow");
    TT_CHECK(zc_add_size(SIZE_MAX, 1, &out) == ZC_ERR_LIMIT, "add overflow");
    TT_CHECK(zc_mul_size(3, 5, &out) == ZC_OK && out == 15, "mul");
}

int main(void) {
    TT_RUN(test_fp16_roundtrip_all_halves);
    TT_RUN(test_fp16_rounding_matches_reference);
    TT_RUN(test_fp16_rows);
    TT_RUN(test_bf16);
    TT_RUN(test_pool_runs_every_task_once);
    TT_RUN(test_json_valid);
    TT_RUN(test_json_rejects_malformed);
    TT_RUN(test_json_depth_limit);
    TT_RUN(test_checked_sizes);
    return tt_finish();
}
