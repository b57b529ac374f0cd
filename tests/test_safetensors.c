/* safetensors reader (single files, sharded index), config.json parsing and
 * the HF source. Files are built here byte by byte: header length + JSON +
 * data, with one test per class of malformed input. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/hfconfig.h"
#include "model/safetensors.h"
#include "quant/ggml_blocks.h"
#include "tt.h"
#include "util/fp16.h"
#include "zipcache.h"

/* Write a safetensors file: u64 len(header) + header + data (data_len bytes).
 * Like the reference writer, pad the header with spaces to a multiple of 8
 * unless pad is false. */
static const char *write_st_pad(const char *name, const char *header, const void *data, size_t data_len, bool pad) {
    const char *p = tt_tmp_path(name);
    FILE *f = fopen(p, "wb");
    uint64_t len = strlen(header), n = pad ? (len + 7) / 8 * 8 : len;
    fwrite(&n, 8, 1, f);
    fwrite(header, 1, len, f);
    for (uint64_t i = len; i < n; i++) fputc(' ', f);
    if (data_len) fwrite(data, 1, data_len, f);
    fclose(f);
    return p;
}

static const char *write_st(const char *name, const char *header, const void *data, size_t data_len) {
    return write_st_pad(name, header, data, data_len, true);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

/* Data of the valid file: a F32 [2,3] at 0, b F16 [4] at 24, c BF16 [2,2] at 32, s F32 [] at 40. */
static uint8_t g_data[44];

static const char *k_valid_header =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"c\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[32,40]},"
    "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[40,44]}}";

static void fill_data(void) {
    for (int i = 0; i < 6; i++) {
        float v = (float)i - 2.5f;
        memcpy(g_data + 4 * i, &v, 4);
    }
    for (int i = 0; i < 4; i++) {
        zc_fp16 h = zc_f32_to_fp16((float)i * 0.5f);
        memcpy(g_data + 24 + 2 * i, &h, 2);
        zc_bf16 b = zc_f32_to_bf16((float)-i);
        memcpy(g_data + 32 + 2 * i, &b, 2);
    }
    float s = 42.0f;
    memcpy(g_data + 40, &s, 4);
}

static void test_valid(void) {
    fill_data();
    const char *p = write_st("valid.safetensors", k_valid_header, g_data, sizeof g_data);
    zc_safetensors *st = NULL;
    int rc = zc_st_open_file(p, &st);
    TT_CHECK(rc == ZC_OK, "open: %s", zc_last_error());
    if (rc) return;
    TT_CHECK(zc_st_n_tensors(st) == 4, "n %d", zc_st_n_tensors(st));
    const char *order[] = {"a", "b", "c", "s"};
    for (int i = 0; i < 4 && i < zc_st_n_tensors(st); i++)
        TT_CHECK(strcmp(zc_st_tensor_at(st, i)->name, order[i]) == 0, "name order %d", i);
    const zc_st_tensor *a = zc_st_find(st, "a"), *b = zc_st_find(st, "b"), *c = zc_st_find(st, "c");
    const zc_st_tensor *s = zc_st_find(st, "s");
    TT_CHECK(a && b && c && s && !zc_st_find(st, "__metadata__") && !zc_st_find(st, "d"), "find");
    if (!(a && b && c && s)) goto out;
    TT_CHECK(a->type == ZC_TYPE_F32 && a->n_dims == 2 && a->shape[0] == 2 && a->shape[1] == 3 && a->n_elems == 6 &&
                 a->nbytes == 24,
             "a meta");
    float a5;
    memcpy(&a5, (const uint8_t *)a->data + 20, 4);
    TT_CHECK(a5 == 2.5f, "a[1][2] = %g", a5);
    TT_CHECK(b->type == ZC_TYPE_F16 && b->n_dims == 1 && b->nbytes == 8 && memcmp(b->data, g_data + 24, 8) == 0, "b");
    TT_CHECK(c->type == ZC_TYPE_BF16 && c->shape[1] == 2 && memcmp(c->data, g_data + 32, 8) == 0, "c");
    TT_CHECK(s->n_dims == 0 && s->n_elems == 1 && s->nbytes == 4, "scalar");
    TT_CHECK(strcmp(a->file, p) == 0, "file %s", a->file);
out:
    zc_st_close(st);
}

/* A header with no tensors is valid and yields an empty set (found by fuzzing:
 * the empty table must not reach qsort/bsearch). */
static void test_empty(void) {
    const char *headers[] = {"{}", "{\"__metadata__\":{\"format\":\"pt\"}}"};
    for (int i = 0; i < 2; i++) {
        zc_safetensors *st = NULL;
        int rc = zc_st_open_file(write_st("empty.safetensors", headers[i], NULL, 0), &st);
        TT_CHECK(rc == ZC_OK, "header %d: %s", i, zc_last_error());
        if (rc) continue;
        TT_CHECK(zc_st_n_tensors(st) == 0 && !zc_st_find(st, "a"), "empty set");
        zc_st_close(st);
    }
}

/* Open and expect failure `code` with every '|'-separated part of want in the message. */
static void expect_bad_file(const char *p, int code, const char *want, const char *label) {
    zc_safetensors *st = NULL;
    int rc = zc_st_open_file(p, &st);
    TT_CHECK(rc == code, "%s: rc %d, want %d (%s)", label, rc, code, rc ? zc_last_error() : "opened");
    TT_CHECK(!st, "%s: handle must be NULL", label);
    zc_st_close(st);
    if (!rc) return;
    TT_CHECK(strncmp(zc_last_error(), p, strlen(p)) == 0, "%s: message lacks the path: %s", label, zc_last_error());
    char parts[256];
    snprintf(parts, sizeof parts, "%s", want);
    for (char *save = NULL, *w = strtok_r(parts, "|", &save); w; w = strtok_r(NULL, "|", &save))
        TT_CHECK(strstr(zc_last_error(), w), "%s: '%s' lacks '%s'", label, zc_last_error(), w);
}

static void expect_bad(const char *header, size_t data_len, int code, const char *want, const char *label) {
    fill_data();
    expect_bad_file(write_st("bad.safetensors", header, g_data, data_len), code, want, label);
}

static void test_bad_header_length(void) {
    const char *p = tt_tmp_path("short.safetensors");
    write_text(p, "abc");
    expect_bad_file(p, ZC_ERR_FORMAT, "file truncated: 3 bytes", "3-byte file");
    /* Header length larger than the file. */
    const char *v = write_st("hl.safetensors", k_valid_header, g_data, sizeof g_data);
    FILE *f = fopen(v, "r+b");
    uint64_t big = 1ULL << 40;
    fwrite(&big, 8, 1, f);
    fclose(f);
    expect_bad_file(v, ZC_ERR_FORMAT, "header length 1099511627776 runs past end of file|(header)", "huge length");
    expect_bad("[1,2]", 0, ZC_ERR_FORMAT, "header is not a JSON object", "array header");
}

static void test_bad_json(void) {
    expect_bad("{\"a\":{\"dtype\":\"F32\",", 0, ZC_ERR_FORMAT, "bad JSON header", "truncated JSON");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} trailing", 4, ZC_ERR_FORMAT,
               "bad JSON header", "trailing garbage");
    expect_bad("{\"a\":7}", 0, ZC_ERR_FORMAT, "entry is not an object (tensor 'a')", "entry type");
    expect_bad("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ZC_ERR_FORMAT, "missing string 'dtype'",
               "no dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, ZC_ERR_FORMAT,
               "shape[0] is not a non-negative integer", "negative dim");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, ZC_ERR_FORMAT,
               "'data_offsets' is not [begin, end]", "offsets arity");
}

static void test_bad_dtype(void) {
    expect_bad("{\"a\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ZC_ERR_FORMAT,
               "unknown dtype 'Q9' (tensor 'a')", "unknown dtype");
    expect_bad("{\"pos\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, ZC_ERR_UNSUPPORTED,
               "dtype I64 is not supported, only F32, F16 and BF16 (tensor 'pos')", "I64");
}

static void test_bad_offsets(void) {
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[32,44]}}", 40, ZC_ERR_FORMAT,
               "data_offsets [32, 44] outside the 40-byte data section (tensor 'a')", "end past data");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 40, ZC_ERR_FORMAT,
               "data_offsets [8, 4] outside", "begin after end");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               12, ZC_ERR_FORMAT, "data of 'b' overlaps 'a'", "overlap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, ZC_ERR_FORMAT, "duplicate tensor name (tensor 'a'", "duplicate");
}

static void test_bad_alignment(void) {
    /* 61-byte header: data starts at file offset 69, F32 elements misaligned. */
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    fill_data();
    const char *p = write_st_pad("unpadded.safetensors", h, g_data, 4, false);
    char want[128];
    snprintf(want, sizeof want, "data at file offset %zu is not aligned to its 4-byte elements", 8 + strlen(h));
    expect_bad_file(p, ZC_ERR_UNSUPPORTED, want, "unpadded header");
    /* F32 at data offset 2 of a padded header: misaligned too. */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 8, ZC_ERR_UNSUPPORTED,
               "not aligned to its 4-byte elements (tensor 'a')", "odd offset");
}

static void test_bad_size(void) {
    expect_bad("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24, ZC_ERR_FORMAT,
               "data_offsets span 24 bytes but shape x F16 needs 6 x 2 (tensor 'a')", "size mismatch");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,4]}}", 4,
               ZC_ERR_FORMAT, "data_offsets span 4 bytes", "huge shape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
               ZC_ERR_FORMAT, "shape element count overflows", "overflowing shape");
}

/* Two shards + index in a subdirectory. */
static const char *make_sharded(const char *sub, const char *index) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", tt_tmp_path(sub));
    mkdir(dir, 0700);
    char p[600];
    float x[4] = {1, 2, 3, 4};
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", sub);
    write_st(p, "{\"w1\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", x, 8);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", sub);
    write_st(p, "{\"w2\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", x, 16);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_text(p, index);
    return dir;
}

static void test_sharded(void) {
    const char *dir = make_sharded("sh", "{\"metadata\":{\"total_size\":24},\"weight_map\":{"
                                         "\"w1\":\"model-00001-of-00002.safetensors\","
                                         "\"w2\":\"model-00002-of-00002.safetensors\"}}");
    zc_safetensors *st = NULL;
    int rc = zc_st_open_dir(dir, &st);
    TT_CHECK(rc == ZC_OK, "open: %s", zc_last_error());
    if (!rc) {
        const zc_st_tensor *w1 = zc_st_find(st, "w1"), *w2 = zc_st_find(st, "w2");
        TT_CHECK(zc_st_n_tensors(st) == 2 && w1 && w2, "both shards");
        TT_CHECK(w2 && w2->shape[0] == 2 && ((const float *)w2->data)[3] == 4.0f, "w2 data");
        TT_CHECK(w1 && strstr(w1->file, "model-00001-of-00002"), "w1 file %s", w1 ? w1->file : "");
        zc_st_close(st);
    }
    dir = make_sharded("wrong", "{\"weight_map\":{\"w1\":\"model-00002-of-00002.safetensors\","
                                "\"w2\":\"model-00002-of-00002.safetensors\"}}");
    rc = zc_st_open_dir(dir, &st);
    TT_CHECK(rc == ZC_ERR_FORMAT && strstr(zc_last_error(), "tensor 'w1' is not in its shard"), "wrong shard: %s",
             zc_last_error());
    dir = make_sharded("escape", "{\"weight_map\":{\"w1\":\"../valid.safetensors\"}}");
    rc = zc_st_open_dir(dir, &st);
    TT_CHECK(rc == ZC_ERR_FORMAT && strstr(zc_last_error(), "is not a plain file name"), "escape: %s",
             zc_last_error());
    dir = make_sharded("dup", "{\"weight_map\":{\"w1\":\"model-00001-of-00002.safetensors\","
                              "\"w2\":\"model-00002-of-00002.safetensors\"}}");
    char p[600];
    float x[2] = {0};
    snprintf(p, sizeof p, "dup/model-00002-of-00002.safetensors");
    write_st(p, "{\"w1\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", x, 8);
    rc = zc_st_open_dir(dir, &st);
    TT_CHECK(rc == ZC_ERR_FORMAT && strstr(zc_last_error(), "duplicate tensor name (tensor 'w1', also in"),
             "dup across shards: %s", zc_last_error());
    snprintf(p, sizeof p, "%s", tt_tmp_path("none"));
    mkdir(p, 0700);
    rc = zc_st_open_dir(p, &st);
    TT_CHECK(rc == ZC_ERR_IO && strstr(zc_last_error(), "no model.safetensors"), "empty dir: %s", zc_last_error());
}

static const char *k_llama31 =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":4096,"
    "\"intermediate_size\":14336,\"num_hidden_layers\":32,\"num_attention_heads\":32,\"num_key_value_heads\":8,"
    "\"vocab_size\":128256,\"max_position_embeddings\":131072,\"rms_norm_eps\":1e-05,\"rope_theta\":500000.0,"
    "\"rope_scaling\":{\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
    "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"},"
    "\"bos_token_id\":128000,\"eos_token_id\":[128001,128008,128009],\"tie_word_embeddings\":false}";

static void test_config(void) {
    zc_hf_config c;
    int rc = zc_hf_config_parse(k_llama31, strlen(k_llama31), "cfg", &c);
    TT_CHECK(rc == ZC_OK, "parse: %s", zc_last_error());
    TT_CHECK(strcmp(c.arch, "llama") == 0 && c.n_layers == 32 && c.n_embd == 4096 && c.n_heads == 32 &&
                 c.n_kv_heads == 8 && c.head_dim == 128 && c.n_ff == 14336 && c.n_vocab == 128256 &&
                 c.max_pos == 131072,
             "dims");
    TT_CHECK(c.rope_theta == 500000.0f && c.rms_eps == 1e-5f && !c.tie_word_embeddings && !c.attention_bias, "scalars");
    TT_CHECK(c.rope_llama3 && c.rope_factor == 8.0f && c.rope_orig_ctx == 8192, "rope scaling");
    TT_CHECK(c.bos_id == 128000 && c.n_eos == 3 && c.eos_ids[2] == 128009, "special ids");
    float f[64];
    zc_hf_llama3_rope_freqs(&c, f);
    /* High frequencies unscaled, low ones divided by 8, a smooth ramp between. */
    TT_CHECK(f[0] == 1.0f && f[63] == 8.0f, "ends %g %g", f[0], f[63]);
    int n_mid = 0;
    for (int i = 1; i < 64; i++) {
        TT_CHECK(f[i] >= f[i - 1], "monotonic at %d", i);
        n_mid += f[i] > 1.0f && f[i] < 8.0f;
    }
    TT_CHECK(n_mid > 0 && n_mid < 16, "ramp width %d", n_mid);
    /* One ramp value from the formula, computed independently in double. */
    for (int i = 0; i < 64; i++) {
        double freq = pow(500000.0, -(2.0 * i) / 128.0), wl = 2 * M_PI / freq;
        if (wl >= 2048 && wl <= 8192) {
            double s = (8192 / wl - 1.0) / 3.0;
            TT_NEAR(f[i], 1.0 / ((1 - s) / 8 + s), 1e-5);
        }
    }

    const char *qwen = "{\"model_type\":\"qwen2\",\"hidden_size\":896,\"intermediate_size\":4864,"
                       "\"num_hidden_layers\":24,\"num_attention_heads\":14,\"num_key_value_heads\":2,"
                       "\"vocab_size\":151936,\"rope_theta\":1000000.0,\"tie_word_embeddings\":true,"
                       "\"rope_scaling\":null,\"bos_token_id\":151643,\"eos_token_id\":151645}";
    rc = zc_hf_config_parse(qwen, strlen(qwen), "qwen", &c);
    TT_CHECK(rc == ZC_OK && c.head_dim == 64 && c.attention_bias && c.tie_word_embeddings && c.max_pos == 32768 &&
                 c.rms_eps == 1e-6f && !c.rope_llama3 && c.n_eos == 1,
             "qwen2: %s", zc_last_error());
}

static void expect_bad_config(const char *json, int code, const char *want) {
    zc_hf_config c;
    int rc = zc_hf_config_parse(json, strlen(json), "config.json", &c);
    TT_CHECK(rc == code && strstr(zc_last_error(), want) && strncmp(zc_last_error(), "config.json: ", 13) == 0,
             "rc %d: '%s' lacks '%s'", rc, zc_last_error(), want);
}

static void test_config_errors(void) {
    expect_bad_config("{\"model_type\":\"gpt2\"}", ZC_ERR_UNSUPPORTED, "model_type 'gpt2' is not supported");
    expect_bad_config("{\"hidden_size\":8}", ZC_ERR_FORMAT, "missing string 'model_type'");
    expect_bad_config("{\"model_type\":\"llama\",\"num_hidden_layers\":2}", ZC_ERR_FORMAT, "missing 'hidden_size'");
    const char *base = "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,"
                       "\"num_hidden_layers\":2,\"vocab_size\":100,";
    char buf[512];
    snprintf(buf, sizeof buf, "%s\"num_attention_heads\":6,\"num_key_value_heads\":4}", base);
    expect_bad_config(buf, ZC_ERR_FORMAT, "hidden_size 64 is not a multiple of num_attention_heads 6");
    snprintf(buf, sizeof buf, "%s\"num_attention_heads\":8,\"num_key_value_heads\":3}", base);
    expect_bad_config(buf, ZC_ERR_FORMAT, "num_attention_heads 8 is not a multiple of num_key_value_heads 3");
    snprintf(buf, sizeof buf, "%s\"num_attention_heads\":8,\"rope_scaling\":{\"rope_type\":\"dynamic\"}}", base);
    expect_bad_config(buf, ZC_ERR_UNSUPPORTED, "rope_scaling type 'dynamic' is not supported");
    snprintf(buf, sizeof buf, "%s\"num_attention_heads\":8,\"rms_norm_eps\":-1}", base);
    expect_bad_config(buf, ZC_ERR_FORMAT, "'rms_norm_eps' = -1 must be positive");
    snprintf(buf, sizeof buf, "%s\"num_attention_heads\":0}", base);
    expect_bad_config(buf, ZC_ERR_FORMAT, "'num_attention_heads' = 0 is out of range");
    snprintf(buf, sizeof buf, "%s\"num_attention_heads\":8,\"eos_token_id\":\"x\"}", base);
    expect_bad_config(buf, ZC_ERR_FORMAT, "'eos_token_id' is not a token id");
    snprintf(buf, sizeof buf, "%s\"num_attention_heads\":8,\"tie_word_embeddings\":1}", base);
    expect_bad_config(buf, ZC_ERR_FORMAT, "'tie_word_embeddings' is not a boolean");
}

static void test_tinystories_source(void) {
    const char *dir = tt_asset("models/tinystories656K");
    if (!dir || !tt_asset("models/tinystories656K/model.safetensors")) TT_SKIP("models/tinystories656K not found");
    zc_hf_source *s = NULL;
    int rc = zc_hf_source_open(dir, &s);
    TT_CHECK(rc == ZC_OK, "open: %s", zc_last_error());
    if (rc) return;
    const zc_hf_config *c = &s->config;
    TT_CHECK(c->n_layers == 2 && c->n_embd == 128 && c->n_heads == 8 && c->n_kv_heads == 4 && c->head_dim == 16 &&
                 c->n_ff == 384 && c->n_vocab == 2048 && c->max_pos == 512 && c->tie_word_embeddings &&
                 c->rms_eps == 1e-6f && c->bos_id == 1 && c->eos_ids[0] == 2,
             "config");
    TT_CHECK(zc_st_n_tensors(s->st) == 20, "n_tensors %d", zc_st_n_tensors(s->st));
    const zc_st_tensor *q = zc_st_find(s->st, "model.layers.1.self_attn.q_proj.weight");
    const zc_st_tensor *k = zc_st_find(s->st, "model.layers.0.self_attn.k_proj.weight");
    TT_CHECK(q && q->shape[0] == 128 && q->shape[1] == 128 && q->type == ZC_TYPE_F32, "q_proj");
    TT_CHECK(k && k->shape[0] == 64 && k->shape[1] == 128, "k_proj");
    TT_CHECK(zc_st_find(s->st, "lm_head.weight") && !zc_st_find(s->st, "model.embed_tokens.weight"),
             "only lm_head stored (tied)");
    zc_hf_source_free(s);
}

int main(void) {
    if (tt_tmp_open("st")) return 1;
    TT_RUN(test_valid);
    TT_RUN(test_empty);
    TT_RUN(test_bad_header_length);
    TT_RUN(test_bad_json);
    TT_RUN(test_bad_dtype);
    TT_RUN(test_bad_offsets);
    TT_RUN(test_bad_alignment);
    TT_RUN(test_bad_size);
    TT_RUN(test_sharded);
    TT_RUN(test_config);
    TT_RUN(test_config_errors);
    TT_RUN(test_tinystories_source);
    tt_tmp_close();
    return tt_finish();
}
