/* GGUF reader/writer: round trip of every value type and tensor kind, the
 * streaming fill path, metadata copy, the real stories260K file, and one test
 * per class of malformed input. Malformed files are made by writing a valid
 * file with the writer and patching bytes located by searching for the
 * encoded field (so the tests do not hard-code the writer's offsets). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/gguf.h"
#include "quant/ggml_blocks.h"
#include "tt.h"
#include "util/error.h"
#include "util/fp16.h"
#include "zipcache.h"

typedef struct {
    uint8_t *data;
    size_t size;
} blob;

static blob slurp(const char *path) {
    blob b = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return b;
    fseek(f, 0, SEEK_END);
    b.size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    b.data = malloc(b.size ? b.size : 1);
    if (fread(b.data, 1, b.size, f) != b.size) b.size = 0;
    fclose(f);
    return b;
}

static void spit(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

/* Offset of the first occurrence of needle in b, or SIZE_MAX. */
static size_t find(const blob *b, const void *needle, size_t n) {
    for (size_t i = 0; i + n <= b->size; i++)
        if (memcmp(b->data + i, needle, n) == 0) return i;
    return SIZE_MAX;
}

/* Offset just after the encoded string s (u64 length + bytes) in b. */
static size_t after_str(const blob *b, const char *s) {
    uint8_t enc[128];
    uint64_t n = strlen(s);
    memcpy(enc, &n, 8);
    memcpy(enc + 8, s, n);
    size_t at = find(b, enc, 8 + n);
    return at == SIZE_MAX ? at : at + 8 + n;
}

static void put_u32(blob *b, size_t off, uint32_t v) { memcpy(b->data + off, &v, 4); }
static void put_u64(blob *b, size_t off, uint64_t v) { memcpy(b->data + off, &v, 8); }

/* Test tensors: t0 F32 [8 x 3], t1 Q8_0 [64 x 2], t2 F16 [5], t3 F32 [2 x 2 x 2 x 2]. */
static float t0_data[24];
static uint8_t t1_data[2 * 2 * 34];
static zc_fp16 t2_data[5];
static float t3_data[16];

static const char *const k_strs[] = {"alpha", "", "g\xc3\xa4mma", "<0x0A>"};
static const int32_t k_ints[] = {-3, 0, 7, 2147483647};

/* Build a writer holding one key of each scalar type, two arrays and the four tensors. */
static zc_gguf_writer *make_writer(void) {
    for (int i = 0; i < 24; i++) t0_data[i] = (float)i * 0.5f - 3.0f;
    float q[128];
    for (int i = 0; i < 128; i++) q[i] = (float)((i * 37) % 19) - 9.0f;
    zc_quantize_row(ZC_TYPE_Q8_0, q, t1_data, 128);
    for (int i = 0; i < 5; i++) t2_data[i] = zc_f32_to_fp16((float)i + 0.25f);
    for (int i = 0; i < 16; i++) t3_data[i] = (float)-i;

    zc_gguf_writer *w = zc_gguf_writer_new();
    zc_gguf_set_str(w, "general.architecture", "test");
    zc_gguf_set_u32(w, "test.u32", 4000000000u);
    zc_gguf_set_i32(w, "test.i32", -12345);
    zc_gguf_set_f32(w, "test.f32", 0.125f);
    zc_gguf_set_bool(w, "test.bool", true);
    zc_gguf_set_str(w, "test.str", "hello \"world\"\n");
    zc_gguf_set_arr(w, "test.ints", ZC_GGUF_I32, k_ints, 4);
    zc_gguf_set_arr_str(w, "test.strs", k_strs, 4);
    zc_gguf_set_i32(w, "test.replaced", 1);
    zc_gguf_set_i32(w, "test.replaced", 2); /* replaces, does not duplicate */
    int64_t ne0[] = {8, 3}, ne1[] = {64, 2}, ne2[] = {5}, ne3[] = {2, 2, 2, 2};
    zc_gguf_add_tensor(w, "t0", ZC_TYPE_F32, 2, ne0, t0_data, sizeof t0_data);
    zc_gguf_add_tensor(w, "t1", ZC_TYPE_Q8_0, 2, ne1, t1_data, sizeof t1_data);
    zc_gguf_add_tensor(w, "t2", ZC_TYPE_F16, 1, ne2, t2_data, sizeof t2_data);
    zc_gguf_add_tensor(w, "t3", ZC_TYPE_F32, 4, ne3, t3_data, sizeof t3_data);
    return w;
}

static const char *valid_path(void) {
    const char *p = tt_tmp_path("valid.gguf");
    zc_gguf_writer *w = make_writer();
    int rc = zc_gguf_write(w, p);
    zc_gguf_writer_free(w);
    return rc == ZC_OK ? p : NULL;
}

static void test_roundtrip(void) {
    const char *p = valid_path();
    TT_CHECK(p, "write failed: %s", zc_last_error());
    zc_gguf *g = NULL;
    int rc = zc_gguf_open(p, &g);
    TT_CHECK(rc == ZC_OK, "open: %s", zc_last_error());
    if (rc) return;
    TT_CHECK(zc_gguf_version(g) == 3, "version %u", zc_gguf_version(g));
    TT_CHECK(zc_gguf_alignment(g) == 32, "alignment %zu", zc_gguf_alignment(g));
    TT_CHECK(zc_gguf_data_offset(g) % 32 == 0, "data offset %zu", zc_gguf_data_offset(g));
    TT_CHECK(zc_gguf_n_kv(g) == 9, "n_kv %d", zc_gguf_n_kv(g));
    size_t len;
    const char *s = zc_gguf_get_str(g, "general.architecture", &len);
    TT_CHECK(s && len == 4 && memcmp(s, "test", 4) == 0, "arch");
    uint32_t u;
    int64_t i64;
    float f;
    bool b;
    TT_CHECK(zc_gguf_get_u32(g, "test.u32", &u) && u == 4000000000u, "u32");
    TT_CHECK(zc_gguf_get_i64(g, "test.u32", &i64) && i64 == 4000000000LL, "u32 as i64");
    TT_CHECK(zc_gguf_get_i64(g, "test.i32", &i64) && i64 == -12345, "i32");
    TT_CHECK(!zc_gguf_get_u32(g, "test.i32", &u), "negative value must not fit u32");
    TT_CHECK(zc_gguf_get_f32(g, "test.f32", &f) && f == 0.125f, "f32");
    TT_CHECK(!zc_gguf_get_f32(g, "test.i32", &f), "int is not a float");
    TT_CHECK(zc_gguf_get_bool(g, "test.bool", &b) && b, "bool");
    TT_CHECK(zc_gguf_get_i64(g, "test.replaced", &i64) && i64 == 2, "replaced value %lld", (long long)i64);
    TT_CHECK(!zc_gguf_get_u32(g, "absent", &u) && zc_gguf_find_key(g, "absent") == -1, "absent key");

    zc_gguf_vtype et;
    uint64_t n;
    const void *data;
    TT_CHECK(zc_gguf_get_arr(g, "test.ints", &et, &n, &data) && et == ZC_GGUF_I32 && n == 4, "int array");
    TT_CHECK(data && ((uintptr_t)data % 4) == 0 && memcmp(data, k_ints, sizeof k_ints) == 0, "int array data aligned");
    TT_CHECK(zc_gguf_get_arr(g, "test.strs", &et, &n, &data) && et == ZC_GGUF_STRING && n == 4 && !data, "str array");
    for (int i = 0; i < 4; i++) {
        s = zc_gguf_arr_str(g, "test.strs", (uint64_t)i, &len);
        TT_CHECK(s && len == strlen(k_strs[i]) && memcmp(s, k_strs[i], len) == 0, "string %d", i);
    }
    TT_CHECK(!zc_gguf_arr_str(g, "test.strs", 4, &len), "index past end");

    char buf[256];
    int ki = zc_gguf_find_key(g, "test.str");
    zc_gguf_format_value(g, ki, buf, sizeof buf);
    TT_CHECK(strcmp(buf, "\"hello \\\"world\\\"\\n\"") == 0, "formatted string: %s", buf);
    zc_gguf_format_value(g, zc_gguf_find_key(g, "test.ints"), buf, sizeof buf);
    TT_CHECK(strcmp(buf, "[i32 x 4] [-3, 0, 7, 2147483647]") == 0, "formatted ints: %s", buf);
    zc_gguf_format_value(g, zc_gguf_find_key(g, "test.u32"), buf, sizeof buf);
    TT_CHECK(strcmp(buf, "4000000000") == 0, "formatted u32: %s", buf);
    zc_gguf_format_value(g, zc_gguf_find_key(g, "test.strs"), buf, 12); /* truncation is safe */
    TT_CHECK(strlen(buf) == 11, "truncated format: %s", buf);

    TT_CHECK(zc_gguf_n_tensors(g) == 4, "n_tensors %d", zc_gguf_n_tensors(g));
    const zc_gguf_tensor *t0 = zc_gguf_find_tensor(g, "t0"), *t1 = zc_gguf_find_tensor(g, "t1");
    const zc_gguf_tensor *t2 = zc_gguf_find_tensor(g, "t2"), *t3 = zc_gguf_find_tensor(g, "t3");
    TT_CHECK(t0 && t1 && t2 && t3 && !zc_gguf_find_tensor(g, "t4"), "find tensors");
    if (!(t0 && t1 && t2 && t3)) goto out;
    TT_CHECK(t0->n_dims == 2 && t0->ne[0] == 8 && t0->ne[1] == 3 && t0->ne[2] == 1 && t0->type == ZC_TYPE_F32, "t0");
    TT_CHECK(t0->nbytes == sizeof t0_data && memcmp(t0->data, t0_data, sizeof t0_data) == 0, "t0 data");
    TT_CHECK(t1->type == ZC_TYPE_Q8_0 && t1->nbytes == sizeof t1_data && memcmp(t1->data, t1_data, sizeof t1_data) == 0,
             "t1");
    TT_CHECK(t2->n_dims == 1 && t2->nbytes == 10 && memcmp(t2->data, t2_data, 10) == 0, "t2");
    TT_CHECK(t3->n_dims == 4 && t3->ne[3] == 2 && memcmp(t3->data, t3_data, sizeof t3_data) == 0, "t3");
    for (int i = 0; i < 4; i++) {
        const zc_gguf_tensor *t = zc_gguf_tensor_at(g, i);
        TT_CHECK(t->offset % 32 == 0 && ((uintptr_t)t->data % 32) == 0, "tensor %d aligned", i);
    }
out:
    zc_gguf_close(g);
}

/* Fill callback: row r of a [6 x 1000] F32 tensor holds r*1000 + column. */
static int fill_rows(void *ctx, const char *name, int64_t row0, int64_t n_rows, void *dst) {
    int *calls = ctx;
    (*calls)++;
    float *out = dst;
    for (int64_t r = 0; r < n_rows; r++)
        for (int c = 0; c < 6; c++) out[r * 6 + c] = (float)((row0 + r) * 1000 + c);
    return strcmp(name, "big") == 0 ? ZC_OK : ZC_ERR_ARG;
}

static void test_fill_and_copy(void) {
    /* 6 x 400000 F32 = 9.6 MB: at least 3 fill calls of ~4 MiB each. */
    zc_gguf_writer *w = make_writer();
    int calls = 0;
    int64_t ne[] = {6, 400000};
    TT_CHECK(zc_gguf_add_tensor_fill(w, "big", ZC_TYPE_F32, 2, ne, fill_rows, &calls) == ZC_OK, "add fill");
    const char *p = tt_tmp_path("fill.gguf");
    TT_CHECK(zc_gguf_write(w, p) == ZC_OK, "write: %s", zc_last_error());
    zc_gguf_writer_free(w);
    TT_CHECK(calls >= 3, "fill called %d times", calls);
    zc_gguf *g = NULL;
    if (zc_gguf_open(p, &g) != ZC_OK) {
        TT_CHECK(0, "open: %s", zc_last_error());
        return;
    }
    const zc_gguf_tensor *t = zc_gguf_find_tensor(g, "big");
    TT_CHECK(t && t->nbytes == 6 * 400000 * 4, "big tensor");
    if (t) {
        const float *x = t->data;
        int bad = 0;
        for (int64_t r = 0; r < 400000; r++)
            for (int c = 0; c < 6; c++) bad += x[r * 6 + c] != (float)(r * 1000 + c);
        TT_CHECK(bad == 0, "%d wrong values", bad);
    }
    /* Copy every key into a new file, override one, and compare. */
    zc_gguf_writer *w2 = zc_gguf_writer_new();
    TT_CHECK(zc_gguf_copy_kv(w2, g) == ZC_OK, "copy");
    zc_gguf_set_u32(w2, "test.u32", 7);
    const char *p2 = tt_tmp_path("copy.gguf");
    TT_CHECK(zc_gguf_write(w2, p2) == ZC_OK, "write copy: %s", zc_last_error());
    zc_gguf_writer_free(w2);
    zc_gguf *g2 = NULL;
    if (zc_gguf_open(p2, &g2) == ZC_OK) {
        TT_CHECK(zc_gguf_n_kv(g2) == zc_gguf_n_kv(g) && zc_gguf_n_tensors(g2) == 0, "copied kv count");
        char a[256], b[256];
        for (int i = 0; i < zc_gguf_n_kv(g); i++) {
            TT_CHECK(strcmp(zc_gguf_key_name(g, i), zc_gguf_key_name(g2, i)) == 0, "key order %d", i);
            if (strcmp(zc_gguf_key_name(g, i), "test.u32") == 0) continue;
            zc_gguf_format_value(g, i, a, sizeof a);
            zc_gguf_format_value(g2, i, b, sizeof b);
            TT_CHECK(strcmp(a, b) == 0, "key %s: %s vs %s", zc_gguf_key_name(g, i), a, b);
        }
        uint32_t u = 0;
        TT_CHECK(zc_gguf_get_u32(g2, "test.u32", &u) && u == 7, "override u=%u", u);
        zc_gguf_close(g2);
    } else {
        TT_CHECK(0, "open copy: %s", zc_last_error());
    }
    zc_gguf_close(g);
}

static void test_writer_rejects(void) {
    zc_gguf_writer *w = zc_gguf_writer_new();
    int64_t ne[] = {48, 2};
    float x[96] = {0};
    TT_CHECK(zc_gguf_add_tensor(w, "a", ZC_TYPE_F32, 2, ne, x, sizeof x) == ZC_OK, "add");
    TT_CHECK(zc_gguf_add_tensor(w, "a", ZC_TYPE_F32, 2, ne, x, sizeof x) == ZC_ERR_ARG, "duplicate");
    TT_CHECK(strstr(zc_last_error(), "duplicate tensor 'a'"), "msg: %s", zc_last_error());
    TT_CHECK(zc_gguf_add_tensor(w, "b", ZC_TYPE_F32, 2, ne, x, 10) == ZC_ERR_ARG, "size mismatch");
    TT_CHECK(zc_gguf_add_tensor(w, "c", ZC_TYPE_Q8_0, 2, ne, x, 10) != ZC_OK, "48 not a multiple of 32");
    TT_CHECK(zc_gguf_add_tensor(w, "d", 77, 2, ne, x, 10) == ZC_ERR_ARG, "unknown type");
    TT_CHECK(zc_gguf_add_tensor(w, "e", ZC_TYPE_F32, 5, ne, x, 10) == ZC_ERR_ARG, "n_dims 5");
    char long_name[80];
    memset(long_name, 'n', 64);
    long_name[64] = 0;
    TT_CHECK(zc_gguf_add_tensor(w, long_name, ZC_TYPE_F32, 2, ne, x, sizeof x) == ZC_ERR_ARG &&
                 strstr(zc_last_error(), "is longer than 63 bytes"),
             "64-byte name: %s", zc_last_error());
    long_name[63] = 0;
    TT_CHECK(zc_gguf_add_tensor(w, long_name, ZC_TYPE_F32, 2, ne, x, sizeof x) == ZC_OK, "63-byte name");
    zc_gguf_set_u32(w, "general.alignment", 24);
    TT_CHECK(zc_gguf_write(w, tt_tmp_path("bad_align.gguf")) == ZC_ERR_ARG, "alignment 24");
    TT_CHECK(access(tt_tmp_path("bad_align.gguf"), F_OK) != 0, "no file left behind");
    zc_gguf_set_u32(w, "general.alignment", 64);
    const char *p = tt_tmp_path("align64.gguf");
    TT_CHECK(zc_gguf_write(w, p) == ZC_OK, "alignment 64: %s", zc_last_error());
    zc_gguf_writer_free(w);
    zc_gguf *g = NULL;
    TT_CHECK(zc_gguf_open(p, &g) == ZC_OK && zc_gguf_alignment(g) == 64 && zc_gguf_data_offset(g) % 64 == 0,
             "alignment 64 honoured");
    zc_gguf_close(g);
}

/* ---- malformed inputs -------------------------------------------------------- */

/* Write b to a file, open it, and expect ZC_ERR_FORMAT with the file's path
 * at the start of the message and each '|'-separated part of `want` in it. */
static void expect_bad(const blob *b, const char *want, const char *label) {
    const char *p = tt_tmp_path("bad.gguf");
    spit(p, b->data, b->size);
    zc_gguf *g = NULL;
    int rc = zc_gguf_open(p, &g);
    TT_CHECK(rc == ZC_ERR_FORMAT, "%s: rc %d (%s)", label, rc, rc ? zc_last_error() : "opened");
    TT_CHECK(!g, "%s: handle must be NULL on failure", label);
    if (rc) {
        TT_CHECK(strncmp(zc_last_error(), p, strlen(p)) == 0, "%s: message does not start with the path: %s", label,
                 zc_last_error());
        char parts[256];
        snprintf(parts, sizeof parts, "%s", want);
        for (char *save = NULL, *w = strtok_r(parts, "|", &save); w; w = strtok_r(NULL, "|", &save))
            TT_CHECK(strstr(zc_last_error(), w), "%s: message '%s' lacks '%s'", label, zc_last_error(), w);
    }
    zc_gguf_close(g);
}

static blob valid_blob(void) {
    const char *p = valid_path();
    return p ? slurp(p) : (blob){0};
}

static blob copy_blob(const blob *b) {
    blob c = {malloc(b->size), b->size};
    memcpy(c.data, b->data, b->size);
    return c;
}

/* Field offsets of tensor `name` in the encoded tensor info. */
typedef struct {
    size_t n_dims, ne0, type, offset; /* type/offset valid for the tensor's own n_dims */
} tinfo;

static tinfo locate(const blob *b, const char *name, int n_dims) {
    tinfo t;
    t.n_dims = after_str(b, name);
    t.ne0 = t.n_dims + 4;
    t.type = t.ne0 + 8 * (size_t)n_dims;
    t.offset = t.type + 4;
    return t;
}

static void test_bad_truncated(void) {
    blob v = valid_blob();
    TT_CHECK(v.size > 0, "valid file");
    tinfo t3 = locate(&v, "t3", 4);
    uint64_t last_off;
    memcpy(&last_off, v.data + t3.offset, 8);
    /* Every cut before the end of the last tensor's data must be refused
     * (cuts in the trailing padding leave a valid file). */
    size_t hdr_end = t3.offset + 8;
    zc_gguf *g = NULL;
    size_t data_off = 0;
    if (zc_gguf_open(valid_path(), &g) == ZC_OK) {
        data_off = zc_gguf_data_offset(g);
        zc_gguf_close(g);
    }
    size_t end = data_off + (size_t)last_off + sizeof t3_data;
    TT_CHECK(end <= v.size && data_off > 0, "layout");
    int checked = 0, bad = 0;
    for (size_t cut = 0; cut < end; cut += cut < hdr_end ? 1 : 7) {
        blob c = {v.data, cut};
        const char *p = tt_tmp_path("cut.gguf");
        spit(p, c.data, c.size);
        int rc = zc_gguf_open(p, &g);
        const char *m = zc_last_error();
        bool ok = rc == ZC_ERR_FORMAT && (strstr(m, "truncated") || strstr(m, "past end") || strstr(m, "bad magic") ||
                                          strstr(m, "impossible"));
        if (!ok) {
            if (bad++ < 5) fprintf(stderr, "  cut at %zu: rc %d: %s\n", cut, rc, rc ? m : "opened");
            zc_gguf_close(rc ? NULL : g);
        }
        checked++;
    }
    TT_CHECK(bad == 0, "%d of %d cut points not refused as truncated", bad, checked);
    /* Named cut points give the specific messages. */
    blob c = {v.data, 6};
    expect_bad(&c, "file truncated: version needs 4 bytes", "cut in version");
    c.size = after_str(&v, "test.replaced") + 2;
    expect_bad(&c, "file truncated: value type", "cut in value type");
    c.size = t3.ne0 + 3;
    expect_bad(&c, "file truncated: dimension", "cut in dimension");
    c.size = end - 1;
    expect_bad(&c, "runs past end of file", "cut in last tensor");
    free(v.data);
}

static void test_bad_magic(void) {
    blob v = valid_blob();
    v.data[0] = 'X';
    expect_bad(&v, "not a GGUF file (bad magic)", "magic");
    blob tiny = {v.data, 2};
    expect_bad(&tiny, "bad magic", "2-byte file");
    free(v.data);
}

static void test_bad_version(void) {
    blob v = valid_blob();
    put_u32(&v, 4, 1);
    expect_bad(&v, "GGUF version 1 is not supported (only 2 and 3)", "v1");
    put_u32(&v, 4, 4);
    expect_bad(&v, "unsupported GGUF version 4", "v4");
    put_u32(&v, 4, 0x03000000u);
    expect_bad(&v, "big-endian GGUF", "big endian");
    put_u32(&v, 4, 2); /* v2 is read like v3 */
    const char *p = tt_tmp_path("v2.gguf");
    spit(p, v.data, v.size);
    zc_gguf *g = NULL;
    TT_CHECK(zc_gguf_open(p, &g) == ZC_OK && zc_gguf_version(g) == 2, "v2 opens: %s", zc_last_error());
    zc_gguf_close(g);
    free(v.data);
}

static void test_bad_counts(void) {
    blob v = valid_blob();
    blob c = copy_blob(&v);
    put_u64(&c, 8, 1ULL << 60);
    expect_bad(&c, "tensor count 1152921504606846976 is impossible", "2^60 tensors");
    memcpy(c.data, v.data, v.size);
    put_u64(&c, 16, 1ULL << 60);
    expect_bad(&c, "key count 1152921504606846976 is impossible", "2^60 keys");
    memcpy(c.data, v.data, v.size);
    put_u64(&c, 16, 100); /* plausible count, but the keys run into the tensor infos and past the end */
    expect_bad(&c, "", "100 keys");
    /* Array count larger than the bytes left. */
    memcpy(c.data, v.data, v.size);
    size_t at = after_str(&c, "test.ints") + 8; /* skip value type and element type */
    put_u64(&c, at, 1ULL << 40);
    expect_bad(&c, "array of 1099511627776 i32 elements runs past end of file", "array count");
    free(c.data);
    free(v.data);
}

static void test_bad_string_length(void) {
    blob v = valid_blob();
    blob c = copy_blob(&v);
    size_t at = after_str(&c, "test.str") + 4; /* the value's u64 length */
    put_u64(&c, at, 1ULL << 50);
    expect_bad(&c, "string length 1125899906842624 runs past end of file", "value string");
    memcpy(c.data, v.data, v.size);
    put_u64(&c, 24, 1ULL << 50); /* first key's length */
    expect_bad(&c, "key length 1125899906842624 runs past end of file|(key 0, byte 24)", "key string");
    memcpy(c.data, v.data, v.size);
    at = after_str(&c, "test.strs") + 16; /* first element's length */
    put_u64(&c, at, v.size);
    expect_bad(&c, "string length", "string array element");
    free(c.data);
    free(v.data);
}

static void test_bad_tensor_offset(void) {
    blob v = valid_blob();
    tinfo t = locate(&v, "t2", 1);
    put_u64(&v, t.offset, 1ULL << 40);
    expect_bad(&v, "data [1099511627776, +10) runs past end of file (data section is", "offset past end");
    put_u64(&v, t.offset, UINT64_MAX - 31); /* aligned, and offset + size overflows */
    expect_bad(&v, "runs past end of file", "offset wraps");
    free(v.data);
}

static void test_bad_misaligned(void) {
    blob v = valid_blob();
    tinfo t = locate(&v, "t2", 1);
    uint64_t off;
    memcpy(&off, v.data + t.offset, 8);
    put_u64(&v, t.offset, off + 4);
    expect_bad(&v, "not a multiple of the alignment 32 (tensor 2 't2'", "misaligned");
    free(v.data);
}

static void test_bad_n_dims(void) {
    blob v = valid_blob();
    tinfo t = locate(&v, "t0", 2);
    put_u32(&v, t.n_dims, 0);
    expect_bad(&v, "n_dims 0 is not in 1..4 (tensor 0 't0'", "n_dims 0");
    put_u32(&v, t.n_dims, 5);
    expect_bad(&v, "n_dims 5 is not in 1..4", "n_dims 5");
    free(v.data);
}

static void test_bad_ne_overflow(void) {
    blob v = valid_blob();
    blob c = copy_blob(&v);
    tinfo t = locate(&c, "t0", 2);
    put_u64(&c, t.ne0, 1ULL << 62);
    put_u64(&c, t.ne0 + 8, 4);
    expect_bad(&c, "element count overflows at dimension 1", "ne product");
    memcpy(c.data, v.data, v.size);
    put_u64(&c, t.ne0, 1ULL << 63);
    expect_bad(&c, "dimension 0 is 9223372036854775808", "ne above int64");
    memcpy(c.data, v.data, v.size);
    put_u64(&c, t.ne0 + 8, 0);
    expect_bad(&c, "dimension 1 is 0", "zero dimension");
    /* Element count fits int64 but the byte size does not fit size_t... only for
     * types wider than a byte per element: 2^62 F32 elements. */
    memcpy(c.data, v.data, v.size);
    put_u64(&c, t.ne0, 1ULL << 31);
    put_u64(&c, t.ne0 + 8, 1ULL << 31);
    expect_bad(&c, "tensor byte size overflows", "byte size");
    free(c.data);
    free(v.data);
}

static void test_bad_block_multiple(void) {
    blob v = valid_blob();
    tinfo t = locate(&v, "t1", 2);
    put_u64(&v, t.ne0, 48);
    expect_bad(&v, "row length 48 is not a multiple of the q8_0 block size 32 (tensor 1 't1'", "ne0 % 32");
    free(v.data);
}

static void test_bad_tensor_type(void) {
    blob v = valid_blob();
    tinfo t = locate(&v, "t0", 2);
    put_u32(&v, t.type, 99);
    expect_bad(&v, "unknown tensor type 99 (tensor 0 't0'", "type 99");
    put_u32(&v, t.type, 4); /* ggml's removed Q4_2 */
    expect_bad(&v, "unknown tensor type 4", "type 4");
    free(v.data);
}

static void test_bad_duplicates(void) {
    blob v = valid_blob();
    blob c = copy_blob(&v);
    size_t at = after_str(&c, "t1");
    c.data[at - 1] = '0'; /* rename t1 -> t0 */
    expect_bad(&c, "duplicate tensor name (tensor 1 't0'", "duplicate tensor");
    memcpy(c.data, v.data, v.size);
    at = after_str(&c, "test.i32");
    memcpy(c.data + at - 3, "u32", 3);
    expect_bad(&c, "duplicate key (key 2 'test.u32'", "duplicate key");
    free(c.data);
    free(v.data);
}

static void test_bad_values(void) {
    blob v = valid_blob();
    blob c = copy_blob(&v);
    size_t at = after_str(&c, "test.bool");
    put_u32(&c, at, 13);
    expect_bad(&c, "unknown value type 13 (key 4 'test.bool'", "value type 13");
    memcpy(c.data, v.data, v.size);
    c.data[at + 4] = 2;
    expect_bad(&c, "bool value 2 is not 0 or 1", "bool 2");
    memcpy(c.data, v.data, v.size);
    at = after_str(&c, "test.ints");
    put_u32(&c, at + 4, 13);
    expect_bad(&c, "unknown array element type 13", "array element type");
    free(c.data);
    free(v.data);
}

static void test_bad_alignment_key(void) {
    zc_gguf_writer *w = make_writer();
    zc_gguf_set_u32(w, "general.alignment", 64);
    const char *p = tt_tmp_path("a64.gguf");
    TT_CHECK(zc_gguf_write(w, p) == ZC_OK, "write");
    zc_gguf_writer_free(w);
    blob v = slurp(p);
    size_t at = after_str(&v, "general.alignment") + 4;
    put_u32(&v, at, 48);
    expect_bad(&v, "alignment 48 is not a power of two (key 'general.alignment'", "alignment 48");
    put_u32(&v, at, 0);
    expect_bad(&v, "alignment 0 is not a power of two", "alignment 0");
    put_u32(&v, at - 4, ZC_GGUF_I32);
    expect_bad(&v, "alignment must be u32, not i32", "alignment type");
    free(v.data);
}

static void test_bad_overlap(void) {
    blob v = valid_blob();
    tinfo t0 = locate(&v, "t0", 2), t1 = locate(&v, "t1", 2);
    uint64_t off0;
    memcpy(&off0, v.data + t0.offset, 8);
    put_u64(&v, t1.offset, off0 + 64); /* t0 is 96 bytes long */
    expect_bad(&v, "data overlaps tensor 't0'", "overlap");
    free(v.data);
}

/* A hand-encoded file with arrays of arrays: [[1,2],[3]] of u8 parses and
 * formats; nesting deeper than the limit is refused. */
static size_t enc_nested(uint8_t *p, int depth) {
    size_t n = 0;
    uint32_t et = depth > 1 ? ZC_GGUF_ARRAY : ZC_GGUF_U8;
    uint64_t cnt = 1;
    memcpy(p + n, &et, 4);
    memcpy(p + n + 4, &cnt, 8);
    n += 12;
    if (depth > 1) return n + enc_nested(p + n, depth - 1);
    p[n++] = 9;
    return n;
}

static blob nested_file(int depth) {
    blob b = {calloc(1, 4096), 0};
    uint8_t *p = b.data;
    uint32_t ver = 3, t_arr = ZC_GGUF_ARRAY;
    uint64_t n_t = 0, n_kv = 1, klen = 6;
    memcpy(p, "GGUF", 4);
    memcpy(p + 4, &ver, 4);
    memcpy(p + 8, &n_t, 8);
    memcpy(p + 16, &n_kv, 8);
    memcpy(p + 24, &klen, 8);
    memcpy(p + 32, "nested", 6);
    memcpy(p + 38, &t_arr, 4);
    b.size = 42 + enc_nested(p + 42, depth);
    return b;
}

static void test_nested_arrays(void) {
    blob b = nested_file(3);
    const char *p = tt_tmp_path("nested.gguf");
    spit(p, b.data, b.size);
    zc_gguf *g = NULL;
    TT_CHECK(zc_gguf_open(p, &g) == ZC_OK, "open nested: %s", zc_last_error());
    if (g) {
        char buf[128];
        zc_gguf_format_value(g, 0, buf, sizeof buf);
        TT_CHECK(strcmp(buf, "[array x 1] [[array x 1] [[u8 x 1] [9]]]") == 0, "format: %s", buf);
        zc_gguf_vtype et;
        uint64_t n;
        const void *d;
        TT_CHECK(zc_gguf_get_arr(g, "nested", &et, &n, &d) && et == ZC_GGUF_ARRAY && n == 1 && !d, "get_arr");
        zc_gguf_close(g);
    }
    free(b.data);
    b = nested_file(5);
    expect_bad(&b, "arrays nested deeper than 4 (key 0 'nested'", "depth 5");
    free(b.data);
}

static void test_stories260k(void) {
    const char *p = tt_asset("models/stories260K/stories260K.gguf");
    if (!p) TT_SKIP("models/stories260K/stories260K.gguf not found");
    zc_gguf *g = NULL;
    TT_CHECK(zc_gguf_open(p, &g) == ZC_OK, "open: %s", zc_last_error());
    if (!g) return;
    uint32_t u = 0;
    TT_CHECK(zc_gguf_n_tensors(g) == 48, "n_tensors %d", zc_gguf_n_tensors(g));
    TT_CHECK(zc_gguf_get_u32(g, "llama.embedding_length", &u) && u == 64, "dim %u", u);
    TT_CHECK(zc_gguf_get_u32(g, "llama.block_count", &u) && u == 5, "layers %u", u);
    size_t len;
    const char *s = zc_gguf_arr_str(g, "tokenizer.ggml.tokens", 3, &len);
    TT_CHECK(s && len == 6 && memcmp(s, "<0x00>", 6) == 0, "token 3");
    const zc_gguf_tensor *e = zc_gguf_find_tensor(g, "token_embd.weight"), *o = zc_gguf_find_tensor(g, "output.weight");
    TT_CHECK(e && o && e->ne[0] == 64 && e->ne[1] == 512 && e->nbytes == 64 * 512 * 4, "token_embd");
    TT_CHECK(e && o && memcmp(e->data, o->data, e->nbytes) == 0, "output equals token_embd (ASSETS.md)");
    zc_gguf_close(g);
}

static void test_vocab_150k_speed(void) {
    /* 150k-entry string array: random access must not rescan the array. */
    enum { N = 150000 };
    char **strs = malloc(N * sizeof *strs);
    for (int i = 0; i < N; i++) {
        strs[i] = malloc(16);
        snprintf(strs[i], 16, "tok%d", i);
    }
    zc_gguf_writer *w = zc_gguf_writer_new();
    zc_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)strs, N);
    const char *p = tt_tmp_path("vocab.gguf");
    TT_CHECK(zc_gguf_write(w, p) == ZC_OK, "write");
    zc_gguf_writer_free(w);
    zc_gguf *g = NULL;
    TT_CHECK(zc_gguf_open(p, &g) == ZC_OK, "open");
    if (g) {
        int bad = 0;
        for (int i = N - 1; i >= 0; i--) { /* backwards: quadratic if each lookup scanned */
            size_t len;
            const char *s = zc_gguf_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)i, &len);
            bad += !s || len != strlen(strs[i]) || memcmp(s, strs[i], len) != 0;
        }
        TT_CHECK(bad == 0, "%d wrong strings", bad);
        zc_gguf_close(g);
    }
    for (int i = 0; i < N; i++) free(strs[i]);
    free(strs);
}

int main(void) {
    if (tt_tmp_open("gguf")) return 1;
    TT_RUN(test_roundtrip);
    TT_RUN(test_fill_and_copy);
    TT_RUN(test_writer_rejects);
    TT_RUN(test_bad_truncated);
    TT_RUN(test_bad_magic);
    TT_RUN(test_bad_version);
    TT_RUN(test_bad_counts);
    TT_RUN(test_bad_string_length);
    TT_RUN(test_bad_tensor_offset);
    TT_RUN(test_bad_misaligned);
    TT_RUN(test_bad_n_dims);
    TT_RUN(test_bad_ne_overflow);
    TT_RUN(test_bad_block_multiple);
    TT_RUN(test_bad_tensor_type);
    TT_RUN(test_bad_duplicates);
    TT_RUN(test_bad_values);
    TT_RUN(test_bad_alignment_key);
    TT_RUN(test_bad_overlap);
    TT_RUN(test_nested_arrays);
    TT_RUN(test_stories260k);
    TT_RUN(test_vocab_150k_speed);
    tt_tmp_close();
    return tt_finish();
}
