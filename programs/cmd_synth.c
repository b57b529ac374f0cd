/* zipcache synth --shape NAME --type TYPE -o FILE [--layers N] [--seed S] [-t N]
 *
 * Writes a random-weight GGUF in the exact shape of a real model, for speed
 * measurements at real sizes (weight values do not change speed). Weights
 * are ~N(0, 0.02^2) like a real initialisation, norms are 1, biases small.
 * Every row is generated from its own seed (seed, tensor, row), so the file
 * is identical for any thread count. Data is produced row chunk by row chunk
 * while the file is written: memory stays at a few MiB whatever the model.
 *
 * The vocabulary is SentencePiece-style llama metadata: <unk>=0, <s>=1,
 * </s>=2, the 256 byte tokens <0x00>..<0xFF> (type 6), then "<unused%d>"
 * placeholders (type 5) up to the real vocab size, so other GGUF readers
 * accept the file and any text tokenizes (as bytes).
 */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmds.h"
#include "model/gguf.h"
#include "model/hfconfig.h"
#include "quant/ggml_blocks.h"
#include "util/error.h"
#include "util/threads.h"
#include "util/timer.h"
#include "zipcache.h"
#include "util/small.h"

#define WEIGHT_STD 0.02f
#define BIAS_STD 0.02f

typedef struct {
    const char *name;
    zc_hf_config c; /* only the fields the GGUF metadata and tensor shapes need */
} shape;

/* Real shapes, from the models' config.json files, plus tiny ones for tests. */
static const shape SHAPES[] = {
    {"llama-3.2-1b",
     {.arch = "llama", .n_layers = 16, .n_embd = 2048, .n_heads = 32, .n_kv_heads = 8, .head_dim = 64, .n_ff = 8192,
      .n_vocab = 128256, .max_pos = 131072, .rope_theta = 500000.0f, .rms_eps = 1e-5f, .tie_word_embeddings = true,
      .rope_llama3 = true, .rope_factor = 32.0f, .rope_low_freq_factor = 1.0f, .rope_high_freq_factor = 4.0f,
      .rope_orig_ctx = 8192}},
    {"llama-3.1-8b",
     {.arch = "llama", .n_layers = 32, .n_embd = 4096, .n_heads = 32, .n_kv_heads = 8, .head_dim = 128, .n_ff = 14336,
      .n_vocab = 128256, .max_pos = 131072, .rope_theta = 500000.0f, .rms_eps = 1e-5f, .rope_llama3 = true,
      .rope_factor = 8.0f, .rope_low_freq_factor = 1.0f, .rope_high_freq_factor = 4.0f, .rope_orig_ctx = 8192}},
    {"qwen2.5-0.5b",
     {.arch = "qwen2", .n_layers = 24, .n_embd = 896, .n_heads = 14, .n_kv_heads = 2, .head_dim = 64, .n_ff = 4864,
      .n_vocab = 151936, .max_pos = 32768, .rope_theta = 1000000.0f, .rms_eps = 1e-6f, .attention_bias = true,
      .tie_word_embeddings = true}},
    {"qwen3-0.6b",
     {.arch = "qwen3", .n_layers = 28, .n_embd = 1024, .n_heads = 16, .n_kv_heads = 8, .head_dim = 128, .n_ff = 3072,
      .n_vocab = 151936, .max_pos = 40960, .rope_theta = 1000000.0f, .rms_eps = 1e-6f, .qk_norm = true,
      .tie_word_embeddings = true}},
    {"qwen3-4b",
     {.arch = "qwen3", .n_layers = 36, .n_embd = 2560, .n_heads = 32, .n_kv_heads = 8, .head_dim = 128, .n_ff = 9728,
      .n_vocab = 151936, .max_pos = 40960, .rope_theta = 1000000.0f, .rms_eps = 1e-6f, .qk_norm = true,
      .tie_word_embeddings = true}},
    {"gemma-3-1b",
     {.arch = "gemma3", .n_layers = 26, .n_embd = 1152, .n_heads = 4, .n_kv_heads = 1, .head_dim = 256, .n_ff = 6912,
      .n_vocab = 262144, .max_pos = 32768, .rope_theta = 1000000.0f, .rms_eps = 1e-6f, .qk_norm = true,
      .gemma = true, .sliding_window = 512, .swa_pattern = 6, .rope_local_theta = 10000.0f,
      .query_pre_attn_scalar = 256.0f, .rope_linear = 1.0f, .tie_word_embeddings = true}},
    {"phi-4-mini", /* LongRoPE factors written as 1 (speed does not depend on them) */
     {.arch = "phi3", .n_layers = 32, .n_embd = 3072, .n_heads = 24, .n_kv_heads = 8, .head_dim = 128, .n_ff = 8192,
      .n_vocab = 200064, .max_pos = 131072, .rope_theta = 10000.0f, .rms_eps = 1e-5f, .n_rot = 96, .fused = true,
      .rope_longrope = true, .rope_orig_ctx = 4096, .rope_attn_factor = 1.1902380714238083f,
      .tie_word_embeddings = true}},
    {"smollm3-3b", /* every 4th layer NoPE */
     {.arch = "smollm3", .n_layers = 36, .n_embd = 2048, .n_heads = 16, .n_kv_heads = 4, .head_dim = 128,
      .n_ff = 11008, .n_vocab = 128256, .max_pos = 65536, .rope_theta = 5000000.0f, .rms_eps = 1e-6f,
      .nope_interval = 4, .tie_word_embeddings = true}},
    {"mistral-7b", /* v0.3: no sliding window */
     {.arch = "llama", .n_layers = 32, .n_embd = 4096, .n_heads = 32, .n_kv_heads = 8, .head_dim = 128, .n_ff = 14336,
      .n_vocab = 32768, .max_pos = 32768, .rope_theta = 1000000.0f, .rms_eps = 1e-5f}},
    {"tiny-llama",
     {.arch = "llama", .n_layers = 2, .n_embd = 64, .n_heads = 4, .n_kv_heads = 2, .head_dim = 16, .n_ff = 128,
      .n_vocab = 320, .max_pos = 512, .rope_theta = 10000.0f, .rms_eps = 1e-5f}},
    {"tiny-llama3",
     {.arch = "llama", .n_layers = 2, .n_embd = 128, .n_heads = 4, .n_kv_heads = 1, .head_dim = 32, .n_ff = 256,
      .n_vocab = 384, .max_pos = 1024, .rope_theta = 500000.0f, .rms_eps = 1e-5f, .tie_word_embeddings = true,
      .rope_llama3 = true, .rope_factor = 32.0f, .rope_low_freq_factor = 1.0f, .rope_high_freq_factor = 4.0f,
      .rope_orig_ctx = 64}},
    {"tiny-qwen2",
     {.arch = "qwen2", .n_layers = 2, .n_embd = 64, .n_heads = 4, .n_kv_heads = 2, .head_dim = 16, .n_ff = 160,
      .n_vocab = 320, .max_pos = 512, .rope_theta = 1000000.0f, .rms_eps = 1e-6f, .attention_bias = true,
      .tie_word_embeddings = true}},
    {"tiny-gemma3", /* window 32 on layers 0, 2; 1, 3 global */
     {.arch = "gemma3", .n_layers = 4, .n_embd = 64, .n_heads = 4, .n_kv_heads = 1, .head_dim = 256, .n_ff = 128,
      .n_vocab = 320, .max_pos = 512, .rope_theta = 1000000.0f, .rms_eps = 1e-6f, .qk_norm = true, .gemma = true,
      .sliding_window = 32, .swa_pattern = 2, .rope_local_theta = 10000.0f, .query_pre_attn_scalar = 256.0f,
      .rope_linear = 1.0f, .tie_word_embeddings = true}},
    {"tiny-phi3",
     {.arch = "phi3", .n_layers = 2, .n_embd = 128, .n_heads = 4, .n_kv_heads = 2, .head_dim = 32, .n_ff = 128,
      .n_vocab = 320, .max_pos = 512, .rope_theta = 10000.0f, .rms_eps = 1e-5f, .n_rot = 24, .fused = true,
      .rope_longrope = true, .rope_orig_ctx = 64, .rope_attn_factor = 1.2247448713915890f,
      .tie_word_embeddings = true}},
    {"tiny-smollm3",
     {.arch = "smollm3", .n_layers = 4, .n_embd = 64, .n_heads = 2, .n_kv_heads = 1, .head_dim = 32, .n_ff = 128,
      .n_vocab = 320, .max_pos = 512, .rope_theta = 5000000.0f, .rms_eps = 1e-6f, .nope_interval = 4,
      .tie_word_embeddings = true}},
    {"tiny-qwen3",
     {.arch = "qwen3", .n_layers = 2, .n_embd = 64, .n_heads = 4, .n_kv_heads = 2, .head_dim = 128, .n_ff = 160,
      .n_vocab = 320, .max_pos = 512, .rope_theta = 1000000.0f, .rms_eps = 1e-6f, .qk_norm = true,
      .tie_word_embeddings = true}},
};

/* ---- random rows ----------------------------------------------------------- */

/* n values ~ N(0, std^2), approximated by the Irwin-Hall sum of four 16-bit
 * uniforms from one 64-bit draw (variance 4 * (2^32 - 1) / 12, tails cut at
 * 3.5 sigma): several times faster than Box-Muller, and for speed tests only
 * the scale matters. */
static void random_row(uint64_t seed, float std, float *out, int64_t n) {
    const float scale = std / sqrtf(4.0f * (65536.0f * 65536.0f - 1.0f) / 12.0f);
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = zc_splitmix64(&s);
        uint32_t sum = (uint32_t)(r & 0xffff) + (uint32_t)((r >> 16) & 0xffff) + (uint32_t)((r >> 32) & 0xffff) +
                       (uint32_t)(r >> 48);
        out[i] = ((float)sum - 2.0f * 65535.0f) * scale;
    }
}

typedef enum { FILL_RANDOM, FILL_ONES, FILL_BIAS } fill_kind;

typedef struct synth synth;

typedef struct {
    synth *s;
    int index;        /* tensor number, part of every row's seed */
    fill_kind kind;
    int type;
    int64_t ne0;
    size_t row_bytes;
} synth_tensor;

struct synth {
    uint64_t seed;
    zc_pool *pool;
    float *scratch;   /* [n_threads][max_ne0] */
    int64_t max_ne0;
    synth_tensor *t;  /* [n_t] */
    int n_t;
    /* progress */
    uint64_t total_bytes, done_bytes;
    double t0;
    int last_pct;
    bool tty;
    /* the chunk being filled, shared with the pool tasks */
    const synth_tensor *cur;
    int64_t row0, n_rows;
    uint8_t *dst;
    atomic_int err;
};

#define ROWS_PER_TASK 16

static void fill_task(void *ctx, int task, int thread) {
    synth *s = ctx;
    const synth_tensor *t = s->cur;
    float *row = s->scratch + (size_t)thread * (size_t)s->max_ne0;
    int64_t r0 = (int64_t)task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < s->n_rows ? r0 + ROWS_PER_TASK : s->n_rows;
    for (int64_t r = r0; r < r1; r++) {
        int64_t grow = s->row0 + r;
        uint64_t seed = s->seed ^ ((uint64_t)t->index << 40) ^ (uint64_t)grow * 0xd1342543de82ef95ULL;
        if (t->kind == FILL_ONES)
            for (int64_t i = 0; i < t->ne0; i++) row[i] = 1.0f;
        else
            random_row(seed, t->kind == FILL_BIAS ? BIAS_STD : WEIGHT_STD, row, t->ne0);
        if (zc_quantize_row(t->type, row, s->dst + (size_t)r * t->row_bytes, t->ne0) != ZC_OK)
            atomic_store(&s->err, 1);
    }
}

/* Progress on stderr: a live line on a terminal, a line per 10% in logs. */
static void progress(synth *s, bool final) {
    int pct = s->total_bytes ? (int)(100.0 * (double)s->done_bytes / (double)s->total_bytes) : 100;
    int step = s->tty ? pct : pct / 10 * 10;
    if (step == s->last_pct && !(final && s->tty)) return;
    s->last_pct = step;
    fprintf(stderr, "%ssynth: %7.1f / %.1f MiB (%3d%%), %.1f s%s", s->tty ? "\r" : "",
            (double)s->done_bytes / 1048576.0, (double)s->total_bytes / 1048576.0, pct, zc_now() - s->t0,
            s->tty && !final ? "" : "\n");
}

static int fill_synth(void *ctx, const char *name, int64_t row0, int64_t n_rows, void *dst) {
    synth_tensor *t = ctx;
    synth *s = t->s;
    s->cur = t;
    s->row0 = row0;
    s->n_rows = n_rows;
    s->dst = dst;
    atomic_store(&s->err, 0);
    zc_pool_run(s->pool, (int)((n_rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK), fill_task, s);
    if (atomic_load(&s->err))
        return zc_error(ZC_ERR_UNSUPPORTED, "tensor '%s': cannot quantize to %s", name, zc_type_get(t->type)->name);
    s->done_bytes += (uint64_t)n_rows * t->row_bytes;
    progress(s, false);
    return ZC_OK;
}

/* ---- model layout ---------------------------------------------------------- */

static int add(synth *s, zc_gguf_writer *w, const char *name, fill_kind kind, int want, int64_t ne0, int64_t ne1) {
    synth_tensor *t = &s->t[s->n_t];
    bool is_1d = ne1 == 0;
    int type = is_1d ? ZC_TYPE_F32 : want; /* norms and biases stay F32, as llama.cpp */
    if (ne0 % zc_type_get(type)->block_elems != 0) {
        fprintf(stderr, "zipcache synth: %s: row length %" PRId64 " is not a multiple of %d, written as f32\n", name,
                ne0, zc_type_get(type)->block_elems);
        type = ZC_TYPE_F32;
    }
    *t = (synth_tensor){s, s->n_t, kind, type, ne0, 0};
    int rc = zc_type_row_bytes(type, ne0, &t->row_bytes);
    if (rc) return rc;
    int64_t ne[2] = {ne0, is_1d ? 1 : ne1};
    rc = zc_gguf_add_tensor_fill(w, name, type, is_1d ? 1 : 2, ne, fill_synth, t);
    if (rc) return rc;
    s->n_t++;
    s->total_bytes += (uint64_t)t->row_bytes * (uint64_t)ne[1];
    if (ne0 > s->max_ne0) s->max_ne0 = ne0;
    return ZC_OK;
}

static int add_layers(synth *s, zc_gguf_writer *w, const zc_hf_config *c, int want) {
    int64_t E = c->n_embd, Q = (int64_t)c->n_heads * c->head_dim, KV = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t F = c->n_ff;
    char n[96];
    int rc = ZC_OK;
#define ADD(fmt, kind, ne0, ne1) \
    if (!rc) rc = (snprintf(n, sizeof n, fmt, l), add(s, w, n, kind, want, ne0, ne1))
    for (int l = 0; l < c->n_layers && !rc; l++) {
        ADD("blk.%d.attn_norm.weight", FILL_ONES, E, 0);
        if (c->fused) {
            ADD("blk.%d.attn_qkv.weight", FILL_RANDOM, E, Q + 2 * KV);
        } else {
            ADD("blk.%d.attn_q.weight", FILL_RANDOM, E, Q);
            ADD("blk.%d.attn_k.weight", FILL_RANDOM, E, KV);
            ADD("blk.%d.attn_v.weight", FILL_RANDOM, E, KV);
        }
        if (c->attention_bias) {
            ADD("blk.%d.attn_q.bias", FILL_BIAS, Q, 0);
            ADD("blk.%d.attn_k.bias", FILL_BIAS, KV, 0);
            ADD("blk.%d.attn_v.bias", FILL_BIAS, KV, 0);
        }
        if (c->qk_norm) {
            ADD("blk.%d.attn_q_norm.weight", FILL_ONES, c->head_dim, 0);
            ADD("blk.%d.attn_k_norm.weight", FILL_ONES, c->head_dim, 0);
        }
        ADD("blk.%d.attn_output.weight", FILL_RANDOM, Q, E);
        if (c->gemma) ADD("blk.%d.post_attention_norm.weight", FILL_ONES, E, 0);
        ADD("blk.%d.ffn_norm.weight", FILL_ONES, E, 0);
        if (c->fused) {
            ADD("blk.%d.ffn_up.weight", FILL_RANDOM, E, 2 * F); /* gate rows, then up rows */
        } else {
            ADD("blk.%d.ffn_gate.weight", FILL_RANDOM, E, F);
            ADD("blk.%d.ffn_up.weight", FILL_RANDOM, E, F);
        }
        ADD("blk.%d.ffn_down.weight", FILL_RANDOM, F, E);
        if (c->gemma) ADD("blk.%d.post_ffw_norm.weight", FILL_ONES, E, 0);
    }
#undef ADD
    return rc;
}

/* SentencePiece-style vocabulary (see the file comment). */
static int add_vocab(zc_gguf_writer *w, int n_vocab) {
    const char **text = zc_malloc((size_t)n_vocab * sizeof *text);
    char *store = zc_malloc((size_t)n_vocab * 24);
    float *scores = zc_calloc((size_t)n_vocab, sizeof *scores);
    int32_t *types = zc_malloc((size_t)n_vocab * sizeof *types);
    int rc = text && store && scores && types ? ZC_OK : ZC_ERR_NOMEM;
    char *p = store;
    for (int i = 0; i < n_vocab && !rc; i++) {
        text[i] = p;
        if (i < 3) {
            static const char *const specials[] = {"<unk>", "<s>", "</s>"};
            p += sprintf(p, "%s", specials[i]) + 1;
            types[i] = i == 0 ? 2 : 3; /* unknown, control */
        } else if (i < 3 + 256) {
            p += sprintf(p, "<0x%02X>", i - 3) + 1;
            types[i] = 6; /* byte */
        } else {
            p += sprintf(p, "<unused%d>", i - 259) + 1;
            types[i] = 5; /* unused */
        }
    }
    if (!rc) rc = zc_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    if (!rc) rc = zc_gguf_set_arr_str(w, "tokenizer.ggml.tokens", text, (uint64_t)n_vocab);
    if (!rc) rc = zc_gguf_set_arr(w, "tokenizer.ggml.scores", ZC_GGUF_F32, scores, (uint64_t)n_vocab);
    if (!rc) rc = zc_gguf_set_arr(w, "tokenizer.ggml.token_type", ZC_GGUF_I32, types, (uint64_t)n_vocab);
    if (!rc) rc = zc_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    if (!rc) rc = zc_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    if (!rc) rc = zc_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    if (!rc) rc = zc_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    free(text);
    free(store);
    free(scores);
    free(types);
    return rc;
}

static int synthesize(const shape *sh, const zc_hf_config *c, int want, uint64_t seed, int threads, const char *out) {
    zc_gguf_writer *w = zc_gguf_writer_new();
    synth s = {.seed = seed, .t0 = zc_now(), .last_pct = -1, .tty = isatty(2)};
    /* Tensor count: embedding, rope factors, output norm, output, up to 16 per layer. */
    s.t = zc_calloc((size_t)c->n_layers * 16 + 4, sizeof *s.t);
    s.pool = zc_pool_create(threads);
    int rc = w && s.t && s.pool ? ZC_OK : ZC_ERR_NOMEM;
    float *rope = NULL, *rope_ones = NULL;
    if (!rc) rc = zc_hf_config_write_gguf(c, sh->name, w);
    if (!rc) rc = zc_gguf_set_file_type(w, want);
    if (!rc) rc = add_vocab(w, c->n_vocab);
    if (!rc) rc = add(&s, w, "token_embd.weight", FILL_RANDOM, want, c->n_embd, c->n_vocab);
    if (!rc && c->rope_llama3) {
        int64_t half = c->head_dim / 2;
        rope = zc_malloc((size_t)half * sizeof *rope);
        if (!rope) rc = ZC_ERR_NOMEM;
        else zc_hf_llama3_rope_freqs(c, rope);
        if (!rc) rc = zc_gguf_add_tensor(w, "rope_freqs.weight", ZC_TYPE_F32, 1, &half, rope, (size_t)half * 4);
    }
    if (!rc && c->rope_longrope) { /* the real factors shape accuracy, not speed: 1s */
        int64_t half = c->n_rot / 2;
        float *ones = zc_malloc((size_t)half * sizeof *ones);
        if (!ones) rc = ZC_ERR_NOMEM;
        for (int64_t i = 0; !rc && i < half; i++) ones[i] = 1.0f;
        if (!rc) rc = zc_gguf_add_tensor(w, "rope_factors_long.weight", ZC_TYPE_F32, 1, &half, ones, (size_t)half * 4);
        if (!rc) rc = zc_gguf_add_tensor(w, "rope_factors_short.weight", ZC_TYPE_F32, 1, &half, ones, (size_t)half * 4);
        rope_ones = ones;
    }
    if (!rc) rc = add_layers(&s, w, c, want);
    if (!rc) rc = add(&s, w, "output_norm.weight", FILL_ONES, want, c->n_embd, 0);
    if (!rc && !c->tie_word_embeddings) rc = add(&s, w, "output.weight", FILL_RANDOM, want, c->n_embd, c->n_vocab);
    if (!rc) {
        s.scratch = zc_malloc((size_t)zc_pool_size(s.pool) * (size_t)s.max_ne0 * sizeof(float));
        if (!s.scratch) rc = ZC_ERR_NOMEM;
    }
    if (!rc) rc = zc_gguf_write(w, out);
    if (!rc) progress(&s, true);
    free(s.scratch);
    free(rope);
    free(rope_ones);
    free(s.t);
    zc_pool_destroy(s.pool);
    zc_gguf_writer_free(w);
    return rc;
}

static void help(FILE *f) {
    fprintf(f, "usage: zipcache synth --shape NAME -o FILE [--type TYPE] [--layers N] [--seed S] [-t N]\n"
               "  --shape NAME   ");
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) fprintf(f, "%s%s", i ? ", " : "", SHAPES[i].name);
    fprintf(f, "\n  --type TYPE    f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1 (default q8_0)\n"
               "  --layers N     fewer layers than the real model (default: all)\n"
               "  --seed S       weights' seed (default 1)\n"
               "  -t N           threads (default: all cores)\n");
}

int cmd_synth(int argc, char **argv) {
    const char *name = NULL, *out = NULL, *type = "q8_0";
    long long layers = 0, seed = 1, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return CLI_EXIT_OK;
        }
        static const char *const options[] = {"--shape", "-o", "--output", "--type", "--layers", "--seed", "-t",
                                              "--threads", NULL};
        if (!cli_option_value("synth", argc, argv, &i, options, NULL, &v)) return CLI_EXIT_USAGE;
        if (!strcmp(a, "--shape")) name = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--type")) type = v;
        else if (!strcmp(a, "--layers")) {
            if (!cli_int("synth", a, v, 1, 4096, &layers)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--seed")) {
            if (!cli_int("synth", a, v, 0, INT64_MAX, &seed)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!cli_int("synth", a, v, 0, 1024, &threads)) return CLI_EXIT_USAGE;
        } else
            return cli_usage_error("synth", "unknown option '%s' (try --help)", a);
    }
    if (!name || !out) return cli_usage_error("synth", "need --shape NAME and -o FILE (try --help)");
    const shape *sh = NULL;
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
        if (!strcmp(SHAPES[i].name, name)) sh = &SHAPES[i];
    if (!sh) return cli_usage_error("synth", "unknown shape '%s' (see --help)", name);
    int want = zc_type_from_name(type);
    if (want < 0 || zc_gguf_file_type_of(want) < 0)
        return cli_usage_error("synth", "--type '%s' is not one of f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1", type);
    zc_hf_config c = sh->c;
    if (layers) c.n_layers = (int)layers;
    if (synthesize(sh, &c, want, (uint64_t)seed, (int)threads, out) != ZC_OK) return cli_lib_error();
    return CLI_EXIT_OK;
}
