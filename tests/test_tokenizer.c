/* Tokenizer tests: llama.cpp's test vectors (SentencePiece and GPT-2
 * vocabularies), round trips, special tokens, streaming UTF-8 decoding,
 * tinystories656K's tokenizer.json, malformed vocabularies and speed.
 * The tinystories656K ids are also checked against an independent Python
 * BPE in tests/py/test_tokenizer_hf.py. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/gguf.h"
#include "model/tokenizer.h"
#include "model/unicode.h"
#include "tt.h"
#include "util/error.h"
#include "util/file.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLOW 20.0 /* time limits are for optimized builds */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLOW 20.0
#endif
#endif
#ifndef SLOW
#define SLOW 1.0
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static zc_tokenizer *load_gguf_tok(const char *rel) {
    const char *path = tt_asset(rel);
    if (!path) TT_SKIP("asset %s not found", rel);
    zc_gguf *g;
    zc_tokenizer *t = NULL;
    int rc = zc_gguf_open(path, &g);
    TT_CHECK(rc == ZC_OK, "open %s: %s", path, zc_last_error());
    if (rc) return NULL;
    rc = zc_tokenizer_from_gguf(g, &t);
    TT_CHECK(rc == ZC_OK, "tokenizer %s: %s", path, zc_last_error());
    zc_gguf_close(g);
    return t;
}

/* Decode ids with a fresh streaming decoder, one token at a time. */
static char *decode_all(const zc_tokenizer *t, const int32_t *ids, int n, size_t *out_len) {
    size_t cap = zc_tok_decode_bound(t), len = 0, total = 16;
    char *piece = malloc(cap), *out = malloc(total);
    zc_tok_decoder d;
    zc_tok_decoder_init(&d);
    for (int i = 0; i <= n; i++) {
        size_t k;
        int rc = i < n ? zc_tok_decode(t, &d, ids[i], piece, cap, &k) : zc_tok_decoder_flush(&d, piece, cap, &k);
        TT_CHECK(rc == ZC_OK, "decode %d: %s", i < n ? ids[i] : -1, zc_last_error());
        if (rc) k = 0;
        while (len + k + 1 > total) out = realloc(out, total *= 2);
        memcpy(out + len, piece, k);
        len += k;
    }
    out[len] = 0;
    free(piece);
    *out_len = len;
    return out;
}

/* llama.cpp's test-tokenizer-0: inputs separated by "\n__ggml_vocab_test__\n",
 * expected ids one line per input, tokenized without BOS and without
 * parsing special tokens. Also checks decode(encode(x)) == x. */
static void run_vectors(const char *vocab) {
    char rel[256], path_inp[1024], path_out[1024];
    snprintf(rel, sizeof rel, "data/tokenizer-vectors/%s", vocab);
    zc_tokenizer *t = load_gguf_tok(rel);
    if (!t) return;
    snprintf(path_inp, sizeof path_inp, "%s.inp", tt_asset(rel));
    snprintf(path_out, sizeof path_out, "%s.out", tt_asset(rel));
    char *inp, *out;
    size_t ninp, nout;
    TT_CHECK(zc_read_file(path_inp, 1 << 20, &inp, &ninp) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(zc_read_file(path_out, 1 << 20, &out, &nout) == ZC_OK, "%s", zc_last_error());
    static const char sep[] = "\n__ggml_vocab_test__\n";
    int n_tests = 0, n_bad = 0, n_roundtrip_bad = 0;
    char *p = inp, *line = out;
    while (p < inp + ninp) {
        char *end = memmem(p, (size_t)(inp + ninp - p), sep, sizeof sep - 1);
        if (!end) end = inp + ninp;
        char *eol = strchr(line, '\n');
        TT_CHECK(eol != NULL, "%s: fewer expected lines than inputs", path_out);
        if (!eol) break;
        *eol = 0;
        int32_t *ids;
        int n;
        int rc = zc_tokenize(t, p, (size_t)(end - p), false, false, &ids, &n);
        TT_CHECK(rc == ZC_OK, "tokenize: %s", zc_last_error());
        /* compare with the expected line */
        char *q = line;
        bool same = rc == ZC_OK;
        for (int i = 0; same && i < n; i++) {
            char *e;
            long v = strtol(q, &e, 10);
            same = e != q && v == ids[i];
            q = e;
        }
        while (same && *q == ' ') q++;
        same = same && *q == 0;
        if (!same) {
            n_bad++;
            fprintf(stderr, "  %s input %d '%.*s': expected [%s], got [", vocab, n_tests, (int)(end - p), p, line);
            for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, " ]\n");
        }
        size_t dl;
        char *back = decode_all(t, ids, n, &dl);
        if (dl != (size_t)(end - p) || memcmp(back, p, dl)) {
            n_roundtrip_bad++;
            fprintf(stderr, "  %s input %d: round trip gave '%s'\n", vocab, n_tests, back);
        }
        free(back);
        free(ids);
        n_tests++;
        line = eol + 1;
        p = end + sizeof sep - 1;
    }
    printf("  %s: %d inputs, %d mismatching lines, %d round-trip failures\n", vocab, n_tests, n_bad,
           n_roundtrip_bad);
    TT_CHECK(n_tests == 46, "%d inputs", n_tests);
    TT_CHECK(n_bad == 0, "%d of %d lines differ from %s", n_bad, n_tests, path_out);
    TT_CHECK(n_roundtrip_bad == 0, "%d round trips differ", n_roundtrip_bad);
    free(inp);
    free(out);
    zc_tokenizer_free(t);
}

static void test_vectors_llama_spm(void) { run_vectors("ggml-vocab-llama-spm.gguf"); }
static void test_vectors_gpt2(void) { run_vectors("ggml-vocab-gpt-2.gguf"); }

static bool ids_equal(const zc_tokenizer *t, const char *text, bool bos, bool special, const int32_t *want, int n_want) {
    int32_t *ids;
    int n;
    if (zc_tokenize(t, text, strlen(text), bos, special, &ids, &n) != ZC_OK) return false;
    bool ok = n == n_want && !memcmp(ids, want, (size_t)n * sizeof *ids);
    if (!ok) {
        fprintf(stderr, "  '%s':", text);
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}

static void test_special_tokens(void) {
    zc_tokenizer *spm = load_gguf_tok("data/tokenizer-vectors/ggml-vocab-llama-spm.gguf");
    TT_CHECK(zc_tokenizer_bos(spm) == 1 && zc_tokenizer_eos(spm) == 2 && zc_tokenizer_add_bos(spm), "spm bos/eos");
    TT_CHECK(zc_tokenizer_is_eog(spm, 2) && !zc_tokenizer_is_eog(spm, 1), "spm eog");
    /* After a special token the text gets the dummy space again. */
    TT_CHECK(ids_equal(spm, "<s>Hello</s>", false, true, (int32_t[]){1, 15043, 2}, 3), "spm parse_special");
    TT_CHECK(ids_equal(spm, "Hello world", true, false, (int32_t[]){1, 15043, 3186}, 3), "spm bos");
    int32_t *ids;
    int n;
    TT_CHECK(zc_tokenize(spm, "<s>", 3, false, false, &ids, &n) == ZC_OK && n > 1 && ids[0] != 1,
             "<s> is text without parse_special");
    free(ids);
    TT_CHECK(zc_tokenize(spm, "", 0, true, false, &ids, &n) == ZC_OK && n == 1 && ids[0] == 1, "empty + BOS");
    free(ids);
    zc_tokenizer_free(spm);

    zc_tokenizer *gpt2 = load_gguf_tok("data/tokenizer-vectors/ggml-vocab-gpt-2.gguf");
    TT_CHECK(ids_equal(gpt2, "Hello<|endoftext|> world", false, true, (int32_t[]){15496, 50256, 995}, 3),
             "gpt2 parse_special");
    TT_CHECK(zc_tokenize(gpt2, "<|endoftext|>", 13, false, false, &ids, &n) == ZC_OK && n > 1, "gpt2 literal");
    free(ids);
    TT_CHECK(!zc_tokenizer_add_bos(gpt2) && zc_tokenizer_is_eog(gpt2, 50256), "gpt2 bos/eog");
    zc_tokenizer_free(gpt2);
}

/* Characters split across byte tokens come out whole; ill-formed bytes
 * become U+FFFD; a character left unfinished is flushed as U+FFFD. */
static void test_streaming_decode(void) {
    zc_tokenizer *t = load_gguf_tok("data/tokenizer-vectors/ggml-vocab-llama-spm.gguf");
    int byte = 3; /* <0x00> */
    char out[64];
    size_t len;
    zc_tok_decoder d;
    zc_tok_decoder_init(&d);
    const uint8_t llama[] = {0xF0, 0x9F, 0xA6, 0x99}; /* U+1F999 */
    for (int i = 0; i < 4; i++) {
        TT_CHECK(zc_tok_decode(t, &d, byte + llama[i], out, sizeof out, &len) == ZC_OK, "%s", zc_last_error());
        TT_CHECK(len == (i < 3 ? 0u : 4u) && (i < 3 || !memcmp(out, llama, 4)), "byte %d: %zu bytes", i, len);
    }
    /* E2 82 then 'a' piece ("▁a" minus nothing: not at start) */
    TT_CHECK(zc_tok_decode(t, &d, byte + 0xE2, out, sizeof out, &len) == ZC_OK && len == 0, "E2 held");
    TT_CHECK(zc_tok_decode(t, &d, byte + 0x82, out, sizeof out, &len) == ZC_OK && len == 0, "82 held");
    int a = zc_tokenizer_token_id(t, "\xE2\x96\x81" "a", 4);
    TT_CHECK(zc_tok_decode(t, &d, a, out, sizeof out, &len) == ZC_OK && len == 5 && !memcmp(out, "\xEF\xBF\xBD a", 5),
             "E2 82 then ' a': %zu", len);
    TT_CHECK(zc_tok_decode(t, &d, byte + 0xFF, out, sizeof out, &len) == ZC_OK && len == 3, "FF");
    TT_CHECK(zc_tok_decode(t, &d, byte + 0xC3, out, sizeof out, &len) == ZC_OK && len == 0, "C3 held");
    /* too small a buffer leaves the decoder as it was */
    TT_CHECK(zc_tok_decode(t, &d, byte + 0xA9, out, 1, &len) == ZC_ERR_LIMIT, "cap 1");
    TT_CHECK(zc_tok_decode(t, &d, byte + 0xA9, out, sizeof out, &len) == ZC_OK && len == 2 && !memcmp(out, "\xC3\xA9", 2),
             "e acute");
    TT_CHECK(zc_tok_decode(t, &d, byte + 0xE2, out, sizeof out, &len) == ZC_OK && len == 0, "E2 held");
    TT_CHECK(zc_tok_decoder_flush(&d, out, sizeof out, &len) == ZC_OK && len == 3, "flush");
    TT_CHECK(zc_tok_decode(t, &d, 1 << 20, out, sizeof out, &len) == ZC_ERR_ARG, "bad id");
    /* The leading dummy space goes, after BOS too; later spaces stay. */
    zc_tok_decoder_init(&d);
    TT_CHECK(zc_tok_decode(t, &d, 1, out, sizeof out, &len) == ZC_OK && len == 0, "BOS prints nothing");
    TT_CHECK(zc_tok_decode(t, &d, 15043, out, sizeof out, &len) == ZC_OK && len == 5 && !memcmp(out, "Hello", 5),
             "first piece");
    TT_CHECK(zc_tok_decode(t, &d, 15043, out, sizeof out, &len) == ZC_OK && len == 6 && !memcmp(out, " Hello", 6),
             "second piece");
    TT_CHECK(zc_token_to_bytes(t, 13, out, sizeof out, &len) == ZC_OK && len == 1 && out[0] == '\n', "<0x0A>");
    zc_tokenizer_free(t);
}

static void test_tinystories_hf(void) {
    const char *path = tt_asset("models/tinystories656K/tokenizer.json");
    if (!path) TT_SKIP("tinystories656K not found");
    zc_tokenizer *t;
    int rc = zc_tokenizer_from_hf(path, &t);
    TT_CHECK(rc == ZC_OK, "%s", zc_last_error());
    if (rc) return;
    TT_CHECK(zc_tokenizer_n_vocab(t) == 2048, "n_vocab %d", zc_tokenizer_n_vocab(t));
    TT_CHECK(zc_tokenizer_bos(t) == 1 && zc_tokenizer_eos(t) == 2 && zc_tokenizer_add_bos(t), "bos/eos");
    TT_CHECK(zc_tokenizer_is_eog(t, 2) && !zc_tokenizer_is_eog(t, 1), "eog");
    /* The Prepend normalizer puts "▁" (id 80) first; ids match the Python BPE. */
    TT_CHECK(ids_equal(t, "Once upon a time", true, false, (int32_t[]){1, 80, 147, 201, 282, 57}, 6), "once");
    /* No byte tokens: unknown characters are <unk> (0), consecutive ones fused. */
    int32_t *ids;
    int n;
    TT_CHECK(zc_tokenize(t, "\xE2\x82\xAC\xE2\x82\xAC", 6, false, false, &ids, &n) == ZC_OK, "euro");
    TT_CHECK(n == 2 && ids[0] == 80 && ids[1] == 0, "euro ids n=%d", n);
    free(ids);
    /* Special tokens in the text only with parse_special. */
    TT_CHECK(zc_tokenize(t, "<|end_story|>", 13, false, true, &ids, &n) == ZC_OK && n == 1 && ids[0] == 2, "special");
    free(ids);
    /* Without the dummy space a story starts as the model's own generations
     * do ("On", "ce\u2581", ...), and a leading space survives decoding. */
    TT_CHECK(zc_tokenizer_set_space_prefix(t, false) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(ids_equal(t, "Once upon a time", true, false, (int32_t[]){1, 147, 201, 282, 57}, 5), "no prefix");
    TT_CHECK(ids_equal(t, "<|end_story|>", false, true, (int32_t[]){2}, 1), "special without prefix");
    size_t len;
    char *back = decode_all(t, (int32_t[]){1, 80, 147, 201}, 4, &len);
    TT_CHECK(!strcmp(back, " Once "), "decoded '%s'", back);
    free(back);
    TT_CHECK(zc_tokenizer_set_space_prefix(t, true) == ZC_OK, "%s", zc_last_error());
    const char *story = "Lily and Ben went to the park. They saw a big dog!\nThe dog said \"hi\".";
    TT_CHECK(zc_tokenize(t, story, strlen(story), true, false, &ids, &n) == ZC_OK, "story");
    back = decode_all(t, ids, n, &len);
    TT_CHECK(len == strlen(story) && !memcmp(back, story, len), "round trip '%s'", back);
    free(back);
    free(ids);
    zc_tokenizer_free(t);
}

/* ---- malformed vocabularies ------------------------------------------------ */

typedef enum {
    BAD_NONE, BAD_NO_TOKENS, BAD_SCORES_LEN, BAD_MERGE, BAD_TYPE, BAD_UTF8, BAD_EMPTY, BAD_BOS, BAD_DUP
} bad_kind;

/* A small vocab-only GGUF ("gpt2" model: tokens a, b, ab), broken as asked. */
static int write_vocab(const char *path, bad_kind bad) {
    zc_gguf_writer *w = zc_gguf_writer_new();
    const char *toks[] = {"a", "b", bad == BAD_UTF8 ? "\xC3(" : bad == BAD_DUP ? "a" : "ab", "<|endoftext|>"};
    int32_t types[] = {1, 1, 1, bad == BAD_TYPE ? 9 : 3};
    float scores[] = {0, 0, 0};
    const char *merges[] = {bad == BAD_MERGE ? "a c" : "a b"};
    zc_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    zc_gguf_set_str(w, "tokenizer.ggml.pre", "gpt-2");
    if (bad != BAD_NO_TOKENS) zc_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, bad == BAD_EMPTY ? 0 : 4);
    zc_gguf_set_arr(w, "tokenizer.ggml.token_type", ZC_GGUF_I32, types, bad == BAD_EMPTY ? 0 : 4);
    if (bad == BAD_SCORES_LEN) zc_gguf_set_arr(w, "tokenizer.ggml.scores", ZC_GGUF_F32, scores, 3);
    zc_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    zc_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", bad == BAD_BOS ? 1000000 : 3);
    int rc = zc_gguf_write(w, path);
    zc_gguf_writer_free(w);
    return rc;
}

static void test_malformed_gguf(void) {
    static const struct {
        bad_kind kind;
        const char *name, *needle;
    } cases[] = {
        {BAD_NO_TOKENS, "no-tokens.gguf", "tokenizer.ggml.tokens"},
        {BAD_SCORES_LEN, "scores-len.gguf", "scores has 3 entries"},
        {BAD_MERGE, "merge.gguf", "not in the vocabulary"},
        {BAD_TYPE, "type.gguf", "token type 9"},
        {BAD_UTF8, "utf8.gguf", "not valid UTF-8"},
        {BAD_EMPTY, "empty.gguf", "empty vocabulary"},
        {BAD_BOS, "huge-id.gguf", "outside the vocabulary"},
        {BAD_DUP, "dup.gguf", "appears twice"},
    };
    /* the well-formed version loads and merges */
    const char *good = tt_tmp_path("good.gguf");
    TT_CHECK(write_vocab(good, BAD_NONE) == ZC_OK, "%s", zc_last_error());
    zc_gguf *g = NULL;
    zc_tokenizer *t = NULL;
    TT_CHECK(zc_gguf_open(good, &g) == ZC_OK && zc_tokenizer_from_gguf(g, &t) == ZC_OK, "%s", zc_last_error());
    if (t) TT_CHECK(ids_equal(t, "ab", false, false, (int32_t[]){2}, 1), "merge a b");
    zc_tokenizer_free(t);
    zc_gguf_close(g);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s", tt_tmp_path(cases[i].name));
        TT_CHECK(write_vocab(path, cases[i].kind) == ZC_OK, "%s", zc_last_error());
        if (zc_gguf_open(path, &g) != ZC_OK) {
            TT_CHECK(0, "%s: %s", path, zc_last_error());
            continue;
        }
        t = NULL;
        int rc = zc_tokenizer_from_gguf(g, &t);
        const char *msg = zc_last_error();
        TT_CHECK(rc == ZC_ERR_FORMAT && t == NULL, "%s: rc %d", cases[i].name, rc);
        TT_CHECK(strstr(msg, path) && strstr(msg, cases[i].needle), "%s: message '%s'", cases[i].name, msg);
        zc_gguf_close(g);
        unlink(path);
    }
    unlink(good);
}

static void test_malformed_hf(void) {
    static const struct {
        const char *json, *needle;
        int rc;
    } cases[] = {
        {"{\"model\":{\"type\":\"BPE\",\"merges\":[]}}", "model.vocab", ZC_ERR_FORMAT},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a c\"]}}", "not in the vocabulary",
         ZC_ERR_FORMAT},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}", "token id 0 is used twice",
         ZC_ERR_FORMAT},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":99999999999},\"merges\":[]}}", "invalid token id",
         ZC_ERR_FORMAT},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":16000000},\"merges\":[]}}",
         "token ids are too sparse: the largest is 16000000 but only 2 tokens are named", ZC_ERR_FORMAT},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}", "empty vocabulary", ZC_ERR_FORMAT},
        {"{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", "Unigram", ZC_ERR_UNSUPPORTED},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"normalizer\":{\"type\":\"NFKC\"}}", "NFKC",
         ZC_ERR_UNSUPPORTED},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}", "", ZC_ERR_FORMAT},
    };
    const char *path = tt_tmp_path("tokenizer.json");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        TT_CHECK(zc_write_file(path, cases[i].json, strlen(cases[i].json)) == ZC_OK, "%s", zc_last_error());
        zc_tokenizer *t = NULL;
        int rc = zc_tokenizer_from_hf(path, &t);
        const char *msg = zc_last_error();
        TT_CHECK(rc == cases[i].rc && t == NULL, "case %zu: rc %d (%s)", i, rc, msg);
        TT_CHECK(strstr(msg, path) && strstr(msg, cases[i].needle), "case %zu: message '%s'", i, msg);
    }
    unlink(path);
}

/* A tokenizer loaded from tokenizer.json text (through a temporary file),
 * or NULL after a failed check. */
static zc_tokenizer *hf_from_json(const char *json) {
    const char *path = tt_tmp_path("tokenizer.json");
    TT_CHECK(zc_write_file(path, json, strlen(json)) == ZC_OK, "%s", zc_last_error());
    zc_tokenizer *t = NULL;
    int rc = zc_tokenizer_from_hf(path, &t);
    TT_CHECK(rc == ZC_OK, "%s", zc_last_error());
    unlink(path);
    return rc == ZC_OK ? t : NULL;
}

/* A byte-level tokenizer.json with "a b" and [a, b] merges, a Llama 3 Split
 * regex, a non-special added token and ignore_merges. */
static void test_hf_byte_level(void) {
    const char *json =
        "{\"added_tokens\":[{\"id\":6,\"content\":\"<|x|>\",\"special\":false},"
        "{\"id\":7,\"content\":\"<|eot_id|>\",\"special\":true}],"
        "\"normalizer\":null,"
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
        "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+"
        "[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false},"
        "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false}]},"
        "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<|x|>\"}},"
        "{\"Sequence\":{\"id\":\"A\"}}]},"
        "\"decoder\":{\"type\":\"ByteLevel\"},"
        "\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{\"a\":0,\"b\":1,\"\\u0120\":2,\"ab\":3,"
        "\"\\u0120ab\":4,\"ba\":5},\"merges\":[\"a b\",[\"\\u0120\",\"ab\"]]}}";
    zc_tokenizer *t = hf_from_json(json);
    if (!t) return;
    TT_CHECK(zc_tokenizer_add_bos(t) && zc_tokenizer_bos(t) == 6 && zc_tokenizer_is_eog(t, 7), "bos/eog");
    bool im;
    const char *pre = zc_tokenizer_gguf_pre(t, &im);
    TT_CHECK(pre && !strcmp(pre, "llama-bpe") && im == true, "GGUF name %s", pre);
    /* "ab ab": words "ab", " ab" -> 3, 4; "ba" is a token taken whole (ignore_merges);
     * user-defined <|x|> is matched even without parse_special. */
    TT_CHECK(ids_equal(t, "ab ab<|x|>ba", true, false, (int32_t[]){6, 3, 4, 6, 5}, 5), "ids");
    size_t len;
    char *back = decode_all(t, (int32_t[]){3, 4, 7, 5}, 4, &len);
    TT_CHECK(!strcmp(back, "ab abba"), "decoded '%s'", back);
    free(back);
    zc_tokenizer_free(t);
}

/* o200k (Phi-4-mini): its Split is written Removed + inverted, "aBa" splits
 * into the case runs "a", "Ba" (one word "aBa" would merge a+B first), and
 * ids no token names (4 here) are unused tokens that decode to nothing. */
static void test_hf_o200k(void) {
    const char *json =
        "{\"added_tokens\":[{\"id\":5,\"content\":\"<|endoftext|>\",\"special\":true}],"
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
        "\"[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?[\\\\p{Lu}\\\\p{Lt}\\\\p{Lm}\\\\p{Lo}\\\\p{M}]*[\\\\p{Ll}\\\\p{Lm}\\\\p{Lo}"
        "\\\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?[\\\\p{Lu}\\\\p{Lt}\\\\p{Lm}\\\\p{Lo}"
        "\\\\p{M}]+[\\\\p{Ll}\\\\p{Lm}\\\\p{Lo}\\\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\\\p{N}{1,3}| ?"
        "[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n/]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
        "\"behavior\":\"Removed\",\"invert\":true},"
        "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false}]},"
        "\"decoder\":{\"type\":\"ByteLevel\"},"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"B\":1,\"aB\":2,\"Ba\":3},\"merges\":[\"a B\",\"B a\"]}}";
    zc_tokenizer *t = hf_from_json(json);
    if (!t) return;
    TT_CHECK(ids_equal(t, "aBa", false, false, (int32_t[]){0, 3}, 2), "a|Ba");
    bool im;
    const char *pre = zc_tokenizer_gguf_pre(t, &im);
    TT_CHECK(pre && !strcmp(pre, "gpt-4o") && im == false, "GGUF name %s", pre);
    char buf[8];
    size_t len = 99;
    TT_CHECK(zc_tokenizer_n_vocab(t) == 6 && zc_token_to_bytes(t, 4, buf, sizeof buf, &len) == ZC_OK && len == 0,
             "id 4: %zu bytes", len);
    zc_tokenizer_free(t);
}

/* NFC (Qwen's normalizer): zc_utf8_nfc on a reordered and composed run of
 * marks (the long-run sort), Hangul, ASCII (unchanged, no copy); then a
 * tokenizer.json whose NFC makes "e" + U+0301 the token of "\u00e9". */
static void test_hf_nfc(void) {
    char in[64] = "a", *out = NULL;
    size_t n = 1, len = 0;
    for (int i = 0; i < 10; i++) n += (size_t)sprintf(in + n, "\xCC\x81\xCC\x96"); /* U+0301 (230), U+0316 (220) */
    TT_CHECK(zc_utf8_nfc(in, n, &out, &len) == ZC_OK && out, "%s", zc_last_error());
    /* a + the first U+0301 -> U+00E1 (U+0316 sorts first and does not block it), the other 9 stay */
    char want[64] = "\xC3\xA1";
    size_t wn = 2;
    for (int i = 0; i < 10; i++) wn += (size_t)sprintf(want + wn, "\xCC\x96");
    for (int i = 0; i < 9; i++) wn += (size_t)sprintf(want + wn, "\xCC\x81");
    TT_CHECK(out && len == wn && !memcmp(out, want, wn), "reordered and composed (%zu bytes)", len);
    free(out);
    TT_CHECK(zc_utf8_nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", 9, &out, &len) == ZC_OK && out && len == 3 &&
                 !memcmp(out, "\xEA\xB0\x81", 3), "Hangul L V T -> U+AC01");
    free(out);
    TT_CHECK(zc_utf8_nfc("plain", 5, &out, &len) == ZC_OK && !out, "ASCII needs no copy");

    const char *json = "{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"}]},"
                       "\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"},"
                       "\"model\":{\"type\":\"BPE\",\"vocab\":{\"\\u00c3\":0,\"\\u00a9\":1,\"\\u00c3\\u00a9\":2,\"e\":3,"
                       "\"\\u00cc\":4,\"\\u0123\":5},\"merges\":[\"\\u00c3 \\u00a9\"]}}";
    zc_tokenizer *t = hf_from_json(json);
    if (!t) return;
    TT_CHECK(ids_equal(t, "e\xCC\x81", false, false, (int32_t[]){2}, 1), "e + U+0301 -> \\u00e9");
    bool im;
    const char *pre = zc_tokenizer_gguf_pre(t, &im);
    TT_CHECK(pre && !strcmp(pre, "gpt-2") && im == false, "GGUF name %s", pre);
    zc_tokenizer_free(t);
}

/* Added tokens with lstrip / rstrip (Phi-3's chat markers) take the
 * whitespace before / after them, across lines and multi-byte spaces. */
static void test_hf_added_strip(void) {
    const char *json = "{\"added_tokens\":[{\"id\":4,\"content\":\"<R>\",\"rstrip\":true},"
                       "{\"id\":5,\"content\":\"<L>\",\"lstrip\":true}],"
                       "\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"},"
                       "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"\\u0120\":2,\"\\u010a\":3},"
                       "\"merges\":[]}}";
    zc_tokenizer *t = hf_from_json(json);
    if (!t) return;
    /* "a \u00a0<L>" -> a <L>; " b" stays; "<R>\n a" -> <R> a */
    TT_CHECK(ids_equal(t, "a \xC2\xA0<L> b<R>\n a", false, false, (int32_t[]){0, 5, 2, 1, 4, 0}, 6), "stripped");
    TT_CHECK(ids_equal(t, "<R>  ", false, false, (int32_t[]){4}, 1), "rstrip to the end");
    zc_tokenizer_free(t);
}

/* tokenizer.json byte fallback: a character not in the vocabulary becomes
 * its <0xXX> tokens when all exist, else <unk> (not fused here). */
static void test_hf_byte_fallback(void) {
    const char *json =
        "{\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"},"
        "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":"
        "\"\\u2581\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]},"
        "\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"fuse_unk\":false,\"unk_token\":\"<unk>\","
        "\"vocab\":{\"<unk>\":0,\"<0xC3>\":1,\"<0xA9>\":2,\"a\":3,\"\\u2581\":4,\"\\u2581a\":5},"
        "\"merges\":[\"\\u2581 a\"]}}";
    zc_tokenizer *t = hf_from_json(json);
    if (!t) return;
    /* "a é€€ a": a, ▁, C3 A9, ▁, <unk>, <unk>, ▁a */
    TT_CHECK(ids_equal(t, "a \xC3\xA9 \xE2\x82\xAC\xE2\x82\xAC a", false, false, (int32_t[]){3, 4, 1, 2, 4, 0, 0, 5}, 8),
             "ids");
    size_t len;
    char *back = decode_all(t, (int32_t[]){3, 4, 1, 2, 0, 5}, 6, &len);
    /* <unk> is an ordinary vocabulary entry here (not an added special token), so it prints. */
    TT_CHECK(!strcmp(back, "a \xC3\xA9<unk> a"), "decoded '%s'", back);
    free(back);
    zc_tokenizer_free(t);
}

/* tokenizer.json with the Metaspace pre-tokenizer and decoder (newer
 * SentencePiece-style files): ' ' -> U+2581, U+2581 first only at the start
 * of the input (prepend_scheme "first"), words cut before each U+2581. */
static void test_hf_metaspace(void) {
    static const char json_first[] =
        "{\"added_tokens\":[{\"id\":6,\"content\":\"<s>\",\"special\":true,\"normalized\":false}],"
        "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"first\","
        "\"split\":true},"
        "\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"first\","
        "\"split\":true},"
        "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"vocab\":{\"<unk>\":0,\"\\u2581\":1,\"a\":2,"
        "\"b\":3,\"\\u2581a\":4,\"\\u2581b\":5},\"merges\":[\"\\u2581 a\",\"\\u2581 b\"]}}";
    for (int always = 0; always < 2; always++) {
        char json[sizeof json_first + 8];
        snprintf(json, sizeof json, "%s", json_first);
        if (always) { /* the same file with prepend_scheme "always" */
            char *f;
            while ((f = strstr(json, "\"first\""))) {
                memmove(f + 8, f + 7, strlen(f + 7) + 1);
                memcpy(f, "\"always\"", 8);
            }
        }
        zc_tokenizer *t = hf_from_json(json);
        if (!t) continue;
        TT_CHECK(ids_equal(t, "a b", false, false, (int32_t[]){4, 5}, 2), "a b");
        TT_CHECK(ids_equal(t, " a", false, false, (int32_t[]){4}, 1), "leading space, nothing prepended");
        TT_CHECK(ids_equal(t, "ab  b", false, false, (int32_t[]){4, 3, 1, 5}, 4), "words");
        /* After <s> the text is not at the start of the input. */
        if (always) TT_CHECK(ids_equal(t, "<s>a", false, true, (int32_t[]){6, 4}, 2), "always");
        else TT_CHECK(ids_equal(t, "<s>a", false, true, (int32_t[]){6, 2}, 2), "first");
        size_t len;
        char *back = decode_all(t, (int32_t[]){6, 4, 5, 3}, 4, &len);
        TT_CHECK(!strcmp(back, "a bb"), "decoded '%s'", back);
        free(back);
        zc_tokenizer_free(t);
    }
}

/* A repeated merge keeps its first rank in GGUF (llama.cpp's emplace) and
 * its last in tokenizer.json (HF's map): with merges "b c", "a b", "b c",
 * "abc" is a+bc from GGUF and ab+c from tokenizer.json. */
static void test_repeated_merge(void) {
    const char *toks[] = {"a", "b", "c", "ab", "bc"};
    const char *merges[] = {"b c", "a b", "b c"};
    zc_gguf_writer *w = zc_gguf_writer_new();
    zc_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    zc_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 5);
    zc_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, 3);
    char path[512];
    snprintf(path, sizeof path, "%s", tt_tmp_path("repeated.gguf"));
    TT_CHECK(zc_gguf_write(w, path) == ZC_OK, "%s", zc_last_error());
    zc_gguf_writer_free(w);
    zc_gguf *g = NULL;
    zc_tokenizer *t = NULL;
    TT_CHECK(zc_gguf_open(path, &g) == ZC_OK && zc_tokenizer_from_gguf(g, &t) == ZC_OK, "%s", zc_last_error());
    if (t) TT_CHECK(ids_equal(t, "abc", false, false, (int32_t[]){0, 4}, 2), "gguf: a + bc");
    zc_tokenizer_free(t);
    zc_gguf_close(g);
    unlink(path);

    const char *json = "{\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"},"
                       "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"bc\":4},"
                       "\"merges\":[\"b c\",\"a b\",\"b c\"]}}";
    t = hf_from_json(json);
    if (t) TT_CHECK(ids_equal(t, "abc", false, false, (int32_t[]){3, 2}, 2), "json: ab + c");
    zc_tokenizer_free(t);
}

/* The pre-tokenizer matchers on cases where the regex alternatives interact. */
static void test_pretok(void) {
    static const struct {
        zc_pretok_kind kind;
        const char *text, *words; /* words separated by '|' */
    } cases[] = {
        {ZC_PRETOK_GPT2, "Hello  world's 123abc\t\n x", "Hello| | world|'s| 123|abc|\t\n| x"},
        {ZC_PRETOK_GPT2, "a  ", "a|  "},
        {ZC_PRETOK_GPT2, "?!  .. 'RE", "?!| | ..| '|RE"},
        {ZC_PRETOK_LLAMA3, "I'M 12345 x\r\n\n  y", "I|'M| |123|45| x|\r\n\n| | y"},
        {ZC_PRETOK_LLAMA3, "(a) ..\n\nb", "(a|)| ..\n\n|b"},
        {ZC_PRETOK_LLAMA3, "x ", "x| "},
        {ZC_PRETOK_QWEN2, "v1234 'Ll", "v|1|2|3|4| '|Ll"},
        {ZC_PRETOK_GPT4O, "HTTPServer getHTTPResponse I'M THEY'RE don't a/b/\n/c 12345",
         "HTTPServer| get|HTTPResponse| I'M| THEY'RE| don't| a|/b|/\n/|c| |123|45"},
        {ZC_PRETOK_GPT4O, "x  ", "x|  "},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        uint32_t cps[64], lens[64];
        uint8_t fl[64];
        size_t n = 0;
        const char *s = cases[k].text;
        for (size_t i = 0, l = strlen(s); i < l;) {
            size_t adv;
            cps[n++] = zc_utf8_decode_lenient((const uint8_t *)s + i, l - i, &adv);
            i += adv;
        }
        size_t nw = zc_pretok_split(cases[k].kind, cps, n, fl, lens);
        char got[256];
        size_t g = 0, c = 0;
        for (size_t w = 0; w < nw; w++) {
            if (w) got[g++] = '|';
            for (uint32_t j = 0; j < lens[w]; j++) got[g++] = (char)cps[c++];
        }
        got[g] = 0;
        TT_CHECK(!strcmp(got, cases[k].words), "case %zu: '%s' want '%s'", k, got, cases[k].words);
    }
    TT_CHECK(zc_ucd_flags(0x00E9) == (ZC_UCD_LETTER | ZC_UCD_LOWER) && zc_ucd_flags(0x0663) == ZC_UCD_NUMBER &&
                 zc_ucd_flags(0x3000) == ZC_UCD_WHITESPACE && zc_ucd_flags(0x1F999) == 0 && zc_ucd_flags(0x1C) == 0,
             "properties");
    /* o200k's case classes: Lu and Lt upper, Ll lower, Lo neither, marks */
    TT_CHECK(zc_ucd_flags(0x00C9) == (ZC_UCD_LETTER | ZC_UCD_UPPER) &&
                 zc_ucd_flags(0x01C5) == (ZC_UCD_LETTER | ZC_UCD_UPPER) && zc_ucd_flags(0x4F60) == ZC_UCD_LETTER &&
                 zc_ucd_flags(0x0301) == ZC_UCD_MARK && zc_ucd_flags(0x0903) == ZC_UCD_MARK,
             "case properties");
    for (int b = 0; b < 256; b++) TT_CHECK(zc_cp_to_byte(zc_byte_to_cp((uint8_t)b)) == b, "byte %d", b);
}

/* ---- speed -------------------------------------------------------------- */

/* A synthetic byte-level vocabulary of the size of Llama 3's: 128k tokens
 * (all strings of 1..4 letters of a 20-letter alphabet, cut at 128000) and
 * about 300k merges (each token of 2+ letters split three ways), as a
 * vocabulary-only GGUF and as a tokenizer.json. */
static void test_load_speed(void) {
    enum { N = 128000 };
    char(*tok)[8] = malloc(N * sizeof *tok);
    const char **tp = malloc(N * sizeof *tp);
    int n = 0;
    for (int len = 1; len <= 4 && n < N; len++) {
        int count = 1;
        for (int i = 0; i < len; i++) count *= 20;
        for (int v = 0; v < count && n < N; v++, n++) {
            for (int i = 0, x = v; i < len; i++, x /= 20) tok[n][len - 1 - i] = (char)('a' + x % 20);
            tok[n][len] = 0;
            tp[n] = tok[n];
        }
    }
    char(*mg)[16] = malloc(3 * N * sizeof *mg);
    const char **mp = malloc(3 * N * sizeof *mp);
    int m = 0;
    for (int cut = 1; cut <= 3; cut++)
        for (int i = 0; i < n; i++) {
            int len = (int)strlen(tok[i]);
            if (cut >= len) continue;
            snprintf(mg[m], sizeof mg[m], "%.*s %s", cut, tok[i], tok[i] + cut);
            mp[m] = mg[m];
            m++;
        }
    zc_gguf_writer *w = zc_gguf_writer_new();
    zc_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    zc_gguf_set_str(w, "tokenizer.ggml.pre", "llama-bpe");
    zc_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tp, (uint64_t)n);
    zc_gguf_set_arr_str(w, "tokenizer.ggml.merges", mp, (uint64_t)m);
    zc_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 0);
    char path[512], json_path[512];
    snprintf(path, sizeof path, "%s", tt_tmp_path("big-vocab.gguf"));
    snprintf(json_path, sizeof json_path, "%s", tt_tmp_path("tokenizer.json"));
    TT_CHECK(zc_gguf_write(w, path) == ZC_OK, "%s", zc_last_error());
    zc_gguf_writer_free(w);
    /* The same as tokenizer.json, merges as [a, b] pairs. */
    FILE *f = fopen(json_path, "w");
    TT_CHECK(f != NULL, "%s", json_path);
    if (f) {
        fputs("{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false},\"decoder\":{\"type\":"
              "\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{", f);
        for (int i = 0; i < n; i++) fprintf(f, "%s\"%s\":%d", i ? "," : "", tok[i], i);
        fputs("},\"merges\":[", f);
        for (int i = 0; i < m; i++) {
            const char *sp = strchr(mg[i], ' ');
            fprintf(f, "%s[\"%.*s\",\"%s\"]", i ? "," : "", (int)(sp - mg[i]), mg[i], sp + 1);
        }
        fputs("]}}", f);
        fclose(f);
    }
    free(tok);
    free(tp);
    free(mg);
    free(mp);
    double t0 = now();
    zc_gguf *g = NULL;
    zc_tokenizer *t = NULL;
    TT_CHECK(zc_gguf_open(path, &g) == ZC_OK && zc_tokenizer_from_gguf(g, &t) == ZC_OK, "%s", zc_last_error());
    double dt = now() - t0;
    printf("  load %d tokens + %d merges: %.3f s\n", n, m, dt);
    /* About 0.3 s on an idle core; the margin is for a loaded machine. */
    TT_CHECK(dt < 10.0 * SLOW, "load took %.3f s", dt);
    /* "abcd" is token 20 + 400 + 8000 + ((1 * 20) + 2) * 20 + 3 = 8863, taken whole. */
    if (t) TT_CHECK(ids_equal(t, "abcd", false, false, (int32_t[]){8863}, 1), "abcd");
    zc_tokenizer_free(t);
    zc_gguf_close(g);
    unlink(path);

    t0 = now();
    t = NULL;
    TT_CHECK(zc_tokenizer_from_hf(json_path, &t) == ZC_OK, "%s", zc_last_error());
    dt = now() - t0;
    printf("  load the same as tokenizer.json: %.3f s\n", dt);
    TT_CHECK(dt < 10.0 * SLOW, "load took %.3f s", dt);
    /* No ignore_merges here: "abcd" is built by merges, ending in the same token. */
    if (t) TT_CHECK(ids_equal(t, "abcd", false, false, (int32_t[]){8863}, 1), "abcd (json)");
    zc_tokenizer_free(t);
    unlink(json_path);
}

/* 1 MB inputs, including single words of a million symbols, must take
 * seconds at most: merging is O(n log n) (a quadratic merge would take
 * hours; the limits leave room for a loaded machine). */
static void time_tokenize(const char *what, const zc_tokenizer *t, const char *text, size_t len, double limit) {
    int32_t *ids;
    int n;
    double t0 = now();
    int rc = zc_tokenize(t, text, len, true, false, &ids, &n);
    double dt = now() - t0;
    TT_CHECK(rc == ZC_OK, "%s: %s", what, zc_last_error());
    printf("  %-34s %8zu bytes -> %7d tokens in %.3f s\n", what, len, rc ? 0 : n, dt);
    TT_CHECK(dt < limit * SLOW, "%s took %.2f s", what, dt);
    if (!rc) free(ids);
}

static void test_encode_speed(void) {
    const char *story = tt_asset("data/tinystories/validation_head.txt");
    if (!story) TT_SKIP("validation_head.txt not found");
    char *text;
    size_t len;
    TT_CHECK(zc_read_file(story, 8u << 20, &text, &len) == ZC_OK, "%s", zc_last_error());
    size_t big = 1u << 20;
    char *same = malloc(big);
    memset(same, 'a', big);
    zc_tokenizer *spm = load_gguf_tok("data/tokenizer-vectors/ggml-vocab-llama-spm.gguf");
    zc_tokenizer *gpt2 = load_gguf_tok("data/tokenizer-vectors/ggml-vocab-gpt-2.gguf");
    time_tokenize("llama-spm, TinyStories", spm, text, len, 30.0);
    time_tokenize("llama-spm, 1 MiB of 'a'", spm, same, big, 30.0);
    time_tokenize("gpt-2, TinyStories", gpt2, text, len, 30.0);
    time_tokenize("gpt-2, 1 MiB of 'a' (one word)", gpt2, same, big, 30.0);
    const char *hf = tt_asset("models/tinystories656K/tokenizer.json");
    zc_tokenizer *ts = NULL;
    if (hf && zc_tokenizer_from_hf(hf, &ts) == ZC_OK) {
        time_tokenize("tinystories656K, TinyStories", ts, text, len, 30.0);
        zc_tokenizer_free(ts);
    }
    zc_tokenizer_free(spm);
    zc_tokenizer_free(gpt2);
    free(same);
    free(text);
}

int main(void) {
    if (tt_tmp_open("tok")) return 1;
    TT_RUN(test_pretok);
    TT_RUN(test_vectors_llama_spm);
    TT_RUN(test_vectors_gpt2);
    TT_RUN(test_special_tokens);
    TT_RUN(test_streaming_decode);
    TT_RUN(test_tinystories_hf);
    TT_RUN(test_hf_byte_level);
    TT_RUN(test_hf_o200k);
    TT_RUN(test_hf_nfc);
    TT_RUN(test_hf_added_strip);
    TT_RUN(test_hf_byte_fallback);
    TT_RUN(test_repeated_merge);
    TT_RUN(test_hf_metaspace);
    TT_RUN(test_malformed_gguf);
    TT_RUN(test_malformed_hf);
    TT_RUN(test_load_speed);
    TT_RUN(test_encode_speed);
    tt_tmp_close();
    return tt_finish();
}
