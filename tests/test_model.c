/* The model and the forward pass through the public API.
 *
 * Real models: tinystories656K (HF) reproduces the golden greedy ids of
 * ASSETS.md; batched prefill equals token-by-token decoding; fp16 and fp32
 * caches agree; the context limit, reset and the Q/K/V observer behave.
 * Synthetic models written here with the GGUF writer: qwen2 (QKV biases,
 * NeoX RoPE, GQA) and llama (f16 weights, Llama 3 rope_freqs, tied output)
 * against a plain double-precision reference forward in this file; and one
 * malformed model per error class the loader owns. */
#include "tt.h"

#include <unistd.h>

#include "kv/kv.h"
#include "model/gguf.h"
#include "quant/ggml_blocks.h"
#include "zipcache.h"

static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int slot;
    char *p = buf[slot++ & 3];
    snprintf(p, 256, "/tmp/zc_test_model_%d_%s", (int)getpid(), name);
    return p;
}

static zc_context *make_ctx(const zc_model *m, const char *kv, int n_ctx, int n_batch) {
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    if (kv) zc_kv_config_parse_arg(&cfg, "--kv", kv);
    zc_context_params p;
    zc_context_params_default(&p);
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_threads = 2;
    p.kv = &cfg;
    zc_context *c = NULL;
    TT_CHECK(zc_context_create(m, &p, &c) == ZC_OK, "%s", zc_last_error());
    return c;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= w)) w = d; /* NaN propagates */
    }
    return w;
}

/* ---- Real models --------------------------------------------------------- */

static void test_golden_tinystories656K(void) {
    const char *dir = tt_asset("models/tinystories656K");
    if (!dir) TT_SKIP("models/tinystories656K not found");
    static const int golden[48] = {147, 201, 282, 215, 286, 598, 1662, 356, 499, 826, 1363, 1145, 1652, 615, 242, 1482,
                                   951, 628, 499, 826, 872, 921, 318, 385, 628, 499, 826, 617, 242, 198, 1047, 425,
                                   1939, 122, 1924, 1171, 94, 303, 328, 229, 521, 776, 115, 1139, 312, 447, 1456, 319};
    zc_model *m = NULL;
    TT_CHECK(zc_model_load(dir, &m) == ZC_OK, "%s", zc_last_error());
    if (!m) return;
    const zc_model_info *h = zc_model_get_info(m);
    TT_CHECK(!strcmp(h->format, "hf") && h->n_layers == 2 && h->n_embd == 128 && h->n_heads == 8 &&
                 h->n_kv_heads == 4 && h->head_dim == 16 && h->n_vocab == 2048 && h->bos == 1,
             "hparams");
    const char *policies[] = {"fp16", "fp32"};
    for (int p = 0; p < 2; p++) {
        zc_context *c = make_ctx(m, policies[p], 0, 512);
        float *logits = malloc(2048 * sizeof *logits);
        int32_t tok = 1, got[48];
        for (int i = 0; i < 48; i++) {
            TT_CHECK(zc_decode(c, &tok, 1, ZC_LOGITS_LAST, logits) == ZC_OK, "%s", zc_last_error());
            int best = 0;
            for (int j = 1; j < 2048; j++)
                if (logits[j] > logits[best]) best = j;
            got[i] = tok = best;
        }
        int first_bad = -1;
        for (int i = 0; i < 48 && first_bad < 0; i++)
            if (got[i] != golden[i]) first_bad = i;
        TT_CHECK(first_bad < 0, "%s cache: step %d gave %d, golden %d", policies[p], first_bad,
                 first_bad >= 0 ? got[first_bad] : 0, first_bad >= 0 ? golden[first_bad] : 0);
        free(logits);
        zc_context_free(c);
    }
    zc_model_free(m);
}

static zc_model *load_stories(void) {
    const char *path = tt_asset("models/stories260K/stories260K.gguf");
    if (!path) TT_SKIP("models/stories260K/stories260K.gguf not found");
    zc_model *m = NULL;
    TT_CHECK(zc_model_load(path, &m) == ZC_OK, "%s", zc_last_error());
    return m;
}

/* 60 tokens: BOS then a fixed pseudo-random walk through the vocabulary. */
static void some_tokens(int32_t *ids, int n, int n_vocab) {
    unsigned long long s = 7;
    ids[0] = 1;
    for (int i = 1; i < n; i++) ids[i] = 3 + (int)(tt_rand_u64(&s) % (unsigned long long)(n_vocab - 3));
}

/* All logits of a sequence run (a) in one batch, (b) in batches of 7,
 * (c) one token at a time: equal within 1e-4, for both fp caches. */
static void test_batched_equals_stepwise(void) {
    zc_model *m = load_stories();
    if (!m) return;
    enum { N = 60 };
    int V = zc_model_get_info(m)->n_vocab;
    int32_t ids[N];
    some_tokens(ids, N, V);
    float *a = malloc((size_t)N * V * sizeof *a), *b = malloc((size_t)N * V * sizeof *b),
          *s = malloc((size_t)N * V * sizeof *s);
    const char *policies[] = {"fp32", "fp16"};
    for (int p = 0; p < 2; p++) {
        zc_context *ca = make_ctx(m, policies[p], 256, 512), *cb = make_ctx(m, policies[p], 256, 7),
                   *cs = make_ctx(m, policies[p], 256, 512);
        TT_CHECK(zc_decode(ca, ids, N, ZC_LOGITS_ALL, a) == ZC_OK, "%s", zc_last_error());
        TT_CHECK(zc_decode(cb, ids, N, ZC_LOGITS_ALL, b) == ZC_OK, "%s", zc_last_error());
        for (int i = 0; i < N; i++)
            TT_CHECK(zc_decode(cs, ids + i, 1, ZC_LOGITS_LAST, s + (size_t)i * V) == ZC_OK, "%s", zc_last_error());
        double e1 = max_diff(a, s, (size_t)N * V), e2 = max_diff(b, s, (size_t)N * V);
        TT_CHECK(e1 <= 1e-4 && e2 <= 1e-4, "%s: batched vs stepwise %g, batches of 7 vs stepwise %g", policies[p], e1,
                 e2);
        TT_CHECK(zc_context_pos(ca) == N && zc_context_pos(cb) == N && zc_context_pos(cs) == N, "positions");
        /* LAST of a batch equals the last row of ALL. */
        float *last = malloc((size_t)V * sizeof *last);
        TT_CHECK(zc_context_reset(ca) == ZC_OK && zc_context_pos(ca) == 0, "reset");
        TT_CHECK(zc_decode(ca, ids, N, ZC_LOGITS_LAST, last) == ZC_OK, "%s", zc_last_error());
        TT_CHECK(max_diff(last, a + (size_t)(N - 1) * V, (size_t)V) == 0, "LAST after reset differs from ALL's row");
        free(last);
        zc_context_free(ca), zc_context_free(cb), zc_context_free(cs);
    }
    free(a), free(b), free(s);
    zc_model_free(m);
}

static void test_fp16_close_to_fp32(void) {
    zc_model *m = load_stories();
    if (!m) return;
    enum { N = 100 };
    int V = zc_model_get_info(m)->n_vocab;
    int32_t ids[N];
    some_tokens(ids, N, V);
    float *a = malloc((size_t)N * V * sizeof *a), *b = malloc((size_t)N * V * sizeof *b);
    zc_context *c32 = make_ctx(m, "fp32", 0, 512), *c16 = make_ctx(m, "fp16", 0, 512);
    TT_CHECK(zc_decode(c32, ids, N, ZC_LOGITS_ALL, a) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(zc_decode(c16, ids, N, ZC_LOGITS_ALL, b) == ZC_OK, "%s", zc_last_error());
    double e = max_diff(a, b, (size_t)N * V);
    /* fp16 keeps 11 significant bits of each K/V element: errors of ~1e-3
     * relative reach the logits attenuated, but not to zero (measured:
     * 0.014 on logits of magnitude ~10). The greedy choice must not move. */
    TT_CHECK(e > 0 && e < 3e-2, "max |fp16 - fp32| logit difference %g", e);
    int same = 0;
    for (int i = 0; i < N; i++) {
        int ba = 0, bb = 0;
        for (int j = 1; j < V; j++) {
            if (a[(size_t)i * V + j] > a[(size_t)i * V + ba]) ba = j;
            if (b[(size_t)i * V + j] > b[(size_t)i * V + bb]) bb = j;
        }
        same += ba == bb;
    }
    TT_CHECK(same >= N - 1, "greedy token differs at %d of %d positions", N - same, N);
    zc_kv_usage u16, u32;
    zc_context_kv_usage(c16, &u16);
    zc_context_kv_usage(c32, &u32);
    TT_CHECK(u16.total * 2 == u32.total && u16.n_tokens == N, "fp16 %zu bytes, fp32 %zu", u16.total, u32.total);
    TT_NEAR(zc_kv_ratio(&u16), 1.0, 1e-12);
    zc_context_free(c32), zc_context_free(c16);
    free(a), free(b);
    zc_model_free(m);
}

static void test_context_limit(void) {
    zc_model *m = load_stories();
    if (!m) return;
    int V = zc_model_get_info(m)->n_vocab;
    int32_t ids[20];
    some_tokens(ids, 20, V);
    float *l = malloc((size_t)V * sizeof *l);
    /* -c above the declared 128 is allowed (the model was trained at 512). */
    zc_context *big = make_ctx(m, NULL, 512, 64);
    TT_CHECK(big && zc_context_n_ctx(big) == 512, "n_ctx 512");
    zc_context_free(big);
    zc_context *c = make_ctx(m, NULL, 16, 4);
    TT_CHECK(zc_decode(c, ids, 10, ZC_LOGITS_LAST, l) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(zc_decode(c, ids, 7, ZC_LOGITS_LAST, l) == ZC_ERR_LIMIT && zc_context_pos(c) == 10, "overflow accepted");
    TT_CHECK(strstr(zc_last_error(), "context full") != NULL, "%s", zc_last_error());
    TT_CHECK(zc_decode(c, ids, 6, ZC_LOGITS_LAST, l) == ZC_OK && zc_context_pos(c) == 16, "%s", zc_last_error());
    TT_CHECK(zc_decode(c, ids, 1, ZC_LOGITS_LAST, l) == ZC_ERR_LIMIT, "past the end");
    /* Bad arguments leave the context as it was. */
    TT_CHECK(zc_context_reset(c) == ZC_OK, "reset");
    int32_t bad[2] = {1, V};
    TT_CHECK(zc_decode(c, bad, 2, ZC_LOGITS_LAST, l) == ZC_ERR_ARG && zc_context_pos(c) == 0, "token id == n_vocab");
    bad[1] = -1;
    TT_CHECK(zc_decode(c, bad, 2, ZC_LOGITS_LAST, l) == ZC_ERR_ARG, "negative token id");
    TT_CHECK(zc_decode(c, ids, 0, ZC_LOGITS_LAST, l) == ZC_ERR_ARG, "zero tokens");
    TT_CHECK(zc_decode(c, ids, 1, ZC_LOGITS_LAST, NULL) == ZC_ERR_ARG, "no logits buffer");
    TT_CHECK(zc_decode(c, ids, 1, 7, l) == ZC_ERR_ARG, "bad logits mode");
    TT_CHECK(zc_decode(c, ids, 1, ZC_LOGITS_NONE, NULL) == ZC_OK, "no logits wanted");
    zc_context_free(c);
    zc_context_params p;
    zc_context_params_default(&p);
    p.n_batch = 0;
    TT_CHECK(zc_context_create(m, &p, &c) == ZC_ERR_ARG && !c, "n_batch 0");
    p.n_batch = 8;
    p.n_ctx = -5;
    TT_CHECK(zc_context_create(m, &p, &c) == ZC_ERR_ARG, "negative n_ctx");
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    strcpy(cfg.policy, "nosuch");
    p.n_ctx = 0;
    p.kv = &cfg;
    TT_CHECK(zc_context_create(m, &p, &c) == ZC_ERR_ARG && strstr(zc_last_error(), "unknown KV policy"), "%s",
             zc_last_error());
    free(l);
    zc_model_free(m);
}

/* The observer sees each layer once per batch with the post-RoPE q, k and v;
 * keys observed batched equal keys observed token by token. */
typedef struct {
    int calls, layers_seen, bad;
    int n_layers, kv_dim;
    float *k0; /* [n][kv_dim] keys of layer 0 */
} obs;

static void observe(void *user, int layer, int pos, int n, const float *q, const float *k, const float *v) {
    obs *o = user;
    o->calls++;
    if (layer < 0 || layer >= o->n_layers || !q || !v) o->bad++;
    if (layer == 0) memcpy(o->k0 + (size_t)pos * o->kv_dim, k, (size_t)n * o->kv_dim * sizeof(float));
}

static void test_observer(void) {
    zc_model *m = load_stories();
    if (!m) return;
    const zc_model_info *h = zc_model_get_info(m);
    enum { N = 24 };
    int32_t ids[N];
    some_tokens(ids, N, h->n_vocab);
    int kv_dim = h->n_kv_heads * h->head_dim;
    obs a = {0, 0, 0, h->n_layers, kv_dim, calloc((size_t)N * kv_dim, sizeof(float))};
    obs b = a;
    b.k0 = calloc((size_t)N * kv_dim, sizeof(float));
    zc_context_params p;
    zc_context_params_default(&p);
    p.n_batch = 10;
    p.observer = observe;
    zc_context *c = NULL;
    p.observer_user = &a;
    TT_CHECK(zc_context_create(m, &p, &c) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(zc_decode(c, ids, N, ZC_LOGITS_NONE, NULL) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(a.calls == 3 * h->n_layers && !a.bad, "%d calls for 3 batches of %d layers", a.calls, h->n_layers);
    zc_context_free(c);
    p.observer_user = &b;
    TT_CHECK(zc_context_create(m, &p, &c) == ZC_OK, "%s", zc_last_error());
    for (int i = 0; i < N; i++) TT_CHECK(zc_decode(c, ids + i, 1, ZC_LOGITS_NONE, NULL) == ZC_OK, "step %d", i);
    TT_CHECK(b.calls == N * h->n_layers, "%d calls", b.calls);
    double e = max_diff(a.k0, b.k0, (size_t)N * kv_dim);
    TT_CHECK(e < 1e-5, "observed keys differ by %g", e);
    zc_context_free(c);
    free(a.k0), free(b.k0);
    zc_model_free(m);
}

/* ---- Synthetic models ---------------------------------------------------- */

typedef struct {
    char name[64];
    int n_dims;
    int64_t ne[2];
    float *f;    /* values (already rounded to the stored type) */
    void *raw;   /* stored bytes */
    int type;
} syn_tensor;

typedef struct {
    const char *arch;
    int layers, d, ff, heads, kv_heads, vocab, head_dim;
    int n_rot;            /* rope.dimension_count; 0 = head_dim */
    const char *rope_scaling; /* rope.scaling.type, or NULL */
    float rope_factor;        /* rope.scaling.factor */
    int wtype;            /* type of the 2-D matrices */
    bool rope_freqs, tied, biases;
    /* faults */
    const char *skip;     /* leave this tensor out */
    const char *misshape; /* give this tensor one row too many */
    const char *retype;   /* store this (1-D) tensor as q8_0 */
    bool no_tokenizer;
    int meta_heads, meta_kv_heads, meta_layers; /* 0 = real value; -1 = write 0 */
    int experts;          /* write <arch>.expert_count when > 0 */
    const char *meta_arch;
    syn_tensor t[64];
    int n;
} synth;

static syn_tensor *syn_add(synth *s, const char *name, int64_t cols, int64_t rows, int type, unsigned long long *rng,
                           float scale, float offset) {
    syn_tensor *t = &s->t[s->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = rows ? 2 : 1;
    t->ne[0] = cols;
    t->ne[1] = rows ? rows : 1;
    size_t n = (size_t)cols * t->ne[1], row_bytes;
    t->type = type;
    t->f = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) t->f[i] = offset + scale * tt_randf(rng);
    zc_type_row_bytes(type, cols, &row_bytes);
    t->raw = malloc(row_bytes * t->ne[1]);
    for (int64_t r = 0; r < t->ne[1]; r++) {
        zc_quantize_row(type, t->f + r * cols, (char *)t->raw + r * row_bytes, cols);
        zc_dequantize_row(type, (char *)t->raw + r * row_bytes, t->f + r * cols, cols);
    }
    return t;
}

static const float *syn_get(const synth *s, const char *fmt, int layer) {
    char name[64];
    snprintf(name, sizeof name, fmt, layer);
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return s->t[i].f;
    return NULL;
}

static void syn_free(synth *s) {
    for (int i = 0; i < s->n; i++) free(s->t[i].f), free(s->t[i].raw);
    s->n = 0;
}

/* Build the tensors and write the GGUF. */
static int syn_write(synth *s, const char *path) {
    unsigned long long rng = 12345;
    int hd = s->head_dim, qd = s->heads * hd, kvd = s->kv_heads * hd;
    char nm[64];
    syn_add(s, "token_embd.weight", s->d, s->vocab, s->wtype, &rng, 1.0f, 0);
    syn_add(s, "output_norm.weight", s->d, 0, ZC_TYPE_F32, &rng, 0.2f, 1.0f);
    if (!s->tied) syn_add(s, "output.weight", s->d, s->vocab, s->wtype, &rng, 0.3f, 0);
    int n_rot = s->n_rot ? s->n_rot : hd;
    if (s->rope_freqs) {
        syn_tensor *t = syn_add(s, "rope_freqs.weight", n_rot / 2, 0, ZC_TYPE_F32, &rng, 0, 1.0f);
        for (int i = 0; i < n_rot / 2; i++) t->f[i] = ((float *)t->raw)[i] = 1.0f + (float)i; /* strong scaling */
    }
    for (int l = 0; l < s->layers; l++) {
#define ADD(fmt, cols, rows, type, scale, off) \
    (snprintf(nm, sizeof nm, fmt, l), syn_add(s, nm, cols, rows, type, &rng, scale, off))
        ADD("blk.%d.attn_norm.weight", s->d, 0, ZC_TYPE_F32, 0.2f, 1.0f);
        ADD("blk.%d.attn_q.weight", s->d, qd, s->wtype, 0.4f, 0);
        ADD("blk.%d.attn_k.weight", s->d, kvd, s->wtype, 0.4f, 0);
        ADD("blk.%d.attn_v.weight", s->d, kvd, s->wtype, 0.4f, 0);
        if (s->biases) {
            ADD("blk.%d.attn_q.bias", qd, 0, ZC_TYPE_F32, 0.5f, 0);
            ADD("blk.%d.attn_k.bias", kvd, 0, ZC_TYPE_F32, 0.5f, 0);
            ADD("blk.%d.attn_v.bias", kvd, 0, ZC_TYPE_F32, 0.5f, 0);
        }
        ADD("blk.%d.attn_output.weight", qd, s->d, s->wtype, 0.3f, 0);
        ADD("blk.%d.ffn_norm.weight", s->d, 0, ZC_TYPE_F32, 0.2f, 1.0f);
        ADD("blk.%d.ffn_gate.weight", s->d, s->ff, s->wtype, 0.4f, 0);
        ADD("blk.%d.ffn_up.weight", s->d, s->ff, s->wtype, 0.4f, 0);
        ADD("blk.%d.ffn_down.weight", s->ff, s->d, s->wtype, 0.3f, 0);
#undef ADD
    }
    zc_gguf_writer *w = zc_gguf_writer_new();
    const char *arch = s->meta_arch ? s->meta_arch : s->arch;
    char key[96];
#define KEY(k) (snprintf(key, sizeof key, "%s." k, arch), key)
#define META(v) ((v) < 0 ? 0u : (uint32_t)(v))
    zc_gguf_set_str(w, "general.architecture", arch);
    zc_gguf_set_u32(w, KEY("block_count"), s->meta_layers ? META(s->meta_layers) : (uint32_t)s->layers);
    zc_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)s->d);
    zc_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)s->ff);
    zc_gguf_set_u32(w, KEY("attention.head_count"), s->meta_heads ? META(s->meta_heads) : (uint32_t)s->heads);
    zc_gguf_set_u32(w, KEY("attention.head_count_kv"),
                    s->meta_kv_heads ? META(s->meta_kv_heads) : (uint32_t)s->kv_heads);
    if (hd * s->heads != s->d) zc_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)hd);
    if (s->n_rot) zc_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)s->n_rot);
    if (s->experts) zc_gguf_set_u32(w, KEY("expert_count"), (uint32_t)s->experts);
    if (s->rope_scaling) {
        zc_gguf_set_str(w, KEY("rope.scaling.type"), s->rope_scaling);
        zc_gguf_set_f32(w, KEY("rope.scaling.factor"), s->rope_factor);
    }
    zc_gguf_set_u32(w, KEY("context_length"), 64);
    zc_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    zc_gguf_set_f32(w, KEY("rope.freq_base"), 500.0f);
#undef KEY
#undef META
    if (!s->no_tokenizer) {
        const char *toks[64];
        char pieces[64][8];
        float scores[64];
        int32_t types[64];
        for (int i = 0; i < s->vocab; i++) {
            snprintf(pieces[i], sizeof pieces[i], i == 0 ? "<unk>" : i == 1 ? "<s>" : i == 2 ? "</s>" : "t%d", i);
            toks[i] = pieces[i];
            scores[i] = -(float)i;
            types[i] = i == 0 ? 2 : i < 3 ? 3 : 1;
        }
        zc_gguf_set_str(w, "tokenizer.ggml.model", "llama");
        zc_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)s->vocab);
        zc_gguf_set_arr(w, "tokenizer.ggml.scores", ZC_GGUF_F32, scores, (uint64_t)s->vocab);
        zc_gguf_set_arr(w, "tokenizer.ggml.token_type", ZC_GGUF_I32, types, (uint64_t)s->vocab);
        zc_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        zc_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    }
    for (int i = 0; i < s->n; i++) {
        syn_tensor *t = &s->t[i];
        if (s->skip && !strcmp(t->name, s->skip)) continue;
        int64_t ne[2] = {t->ne[0], t->ne[1]};
        int type = t->type;
        size_t row_bytes;
        zc_type_row_bytes(type, ne[0], &row_bytes);
        const void *data = t->raw;
        size_t nbytes = row_bytes * (size_t)ne[1];
        static char spare[1 << 16];
        if (s->misshape && !strcmp(t->name, s->misshape)) { /* one more row, filled with zeros */
            ne[t->n_dims == 2 ? 1 : 0] += t->n_dims == 2 ? 1 : 32;
            zc_type_row_bytes(type, ne[0], &row_bytes);
            nbytes = row_bytes * (size_t)ne[1];
            data = spare;
        }
        if (s->retype && !strcmp(t->name, s->retype)) {
            type = ZC_TYPE_Q8_0;
            zc_type_row_bytes(type, ne[0], &row_bytes);
            nbytes = row_bytes * (size_t)ne[1];
            data = spare;
        }
        zc_gguf_add_tensor(w, t->name, type, t->n_dims, ne, data, nbytes);
    }
    int rc = zc_gguf_write(w, path);
    zc_gguf_writer_free(w);
    return rc;
}

static void ref_rmsnorm(double *o, const double *x, const float *w, int d) {
    double ss = 0;
    for (int i = 0; i < d; i++) ss += x[i] * x[i];
    double sc = 1.0 / sqrt(ss / d + 1e-5);
    for (int i = 0; i < d; i++) o[i] = x[i] * sc * w[i];
}

/* y[rows] = W[rows][cols] x */
static void ref_matvec(double *y, const float *W, const double *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) s += (double)W[(size_t)r * cols + c] * x[c];
        y[r] = s;
    }
}

/* Rotate the first n_rot channels of a head; the rest pass through. */
static void ref_rope(double *v, double pos, int n_rot, bool neox, const float *freqs) {
    for (int i = 0; i < n_rot / 2; i++) {
        double a = pos * pow(500.0, -2.0 * i / n_rot) / (freqs ? freqs[i] : 1.0);
        int i0 = neox ? i : 2 * i, i1 = neox ? i + n_rot / 2 : 2 * i + 1;
        double x0 = v[i0], x1 = v[i1];
        v[i0] = x0 * cos(a) - x1 * sin(a);
        v[i1] = x0 * sin(a) + x1 * cos(a);
    }
}

/* Plain per-token reference with a full K/V history: logits [n][vocab]. */
static void ref_forward(const synth *s, const int32_t *ids, int n, double *logits) {
    int d = s->d, hd = s->head_dim, qd = s->heads * hd, kvd = s->kv_heads * hd, ff = s->ff;
    int n_rot = s->n_rot ? s->n_rot : hd;
    bool neox = !strcmp(s->arch, "qwen2");
    double *K = calloc((size_t)s->layers * n * kvd, sizeof *K), *Vv = calloc((size_t)s->layers * n * kvd, sizeof *Vv);
    double *x = malloc(d * sizeof *x), *xb = malloc(d * sizeof *xb), *q = malloc(qd * sizeof *q),
           *att = malloc(qd * sizeof *att), *o = malloc(d * sizeof *o), *g = malloc(ff * sizeof *g),
           *u = malloc(ff * sizeof *u), *sc = malloc(n * sizeof *sc);
    const float *freqs = syn_get(s, "rope_freqs.weight", 0);
    const float *emb = syn_get(s, "token_embd.weight", 0), *out = s->tied ? emb : syn_get(s, "output.weight", 0);
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < d; i++) x[i] = emb[(size_t)ids[t] * d + i];
        for (int l = 0; l < s->layers; l++) {
            double *k = K + ((size_t)l * n + t) * kvd, *v = Vv + ((size_t)l * n + t) * kvd;
            ref_rmsnorm(xb, x, syn_get(s, "blk.%d.attn_norm.weight", l), d);
            ref_matvec(q, syn_get(s, "blk.%d.attn_q.weight", l), xb, qd, d);
            ref_matvec(k, syn_get(s, "blk.%d.attn_k.weight", l), xb, kvd, d);
            ref_matvec(v, syn_get(s, "blk.%d.attn_v.weight", l), xb, kvd, d);
            if (s->biases) {
                const float *bq = syn_get(s, "blk.%d.attn_q.bias", l), *bk = syn_get(s, "blk.%d.attn_k.bias", l),
                            *bv = syn_get(s, "blk.%d.attn_v.bias", l);
                for (int i = 0; i < qd; i++) q[i] += bq[i];
                for (int i = 0; i < kvd; i++) k[i] += bk[i], v[i] += bv[i];
            }
            double rpos = s->rope_scaling ? t / s->rope_factor : t; /* linear scaling */
            for (int h = 0; h < s->heads; h++) ref_rope(q + h * hd, rpos, n_rot, neox, freqs);
            for (int h = 0; h < s->kv_heads; h++) ref_rope(k + h * hd, rpos, n_rot, neox, freqs);
            for (int h = 0; h < s->heads; h++) {
                int gq = h / (s->heads / s->kv_heads);
                double mx = -INFINITY, z = 0;
                for (int j = 0; j <= t; j++) {
                    const double *kj = K + ((size_t)l * n + j) * kvd + gq * hd;
                    double dot = 0;
                    for (int i = 0; i < hd; i++) dot += q[h * hd + i] * kj[i];
                    sc[j] = dot / sqrt(hd);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int i = 0; i < hd; i++) att[h * hd + i] = 0;
                for (int j = 0; j <= t; j++) {
                    double p = exp(sc[j] - mx);
                    z += p;
                    const double *vj = Vv + ((size_t)l * n + j) * kvd + gq * hd;
                    for (int i = 0; i < hd; i++) att[h * hd + i] += p * vj[i];
                }
                for (int i = 0; i < hd; i++) att[h * hd + i] /= z;
            }
            ref_matvec(o, syn_get(s, "blk.%d.attn_output.weight", l), att, d, qd);
            for (int i = 0; i < d; i++) x[i] += o[i];
            ref_rmsnorm(xb, x, syn_get(s, "blk.%d.ffn_norm.weight", l), d);
            ref_matvec(g, syn_get(s, "blk.%d.ffn_gate.weight", l), xb, ff, d);
            ref_matvec(u, syn_get(s, "blk.%d.ffn_up.weight", l), xb, ff, d);
            for (int i = 0; i < ff; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            ref_matvec(o, syn_get(s, "blk.%d.ffn_down.weight", l), g, d, ff);
            for (int i = 0; i < d; i++) x[i] += o[i];
        }
        ref_rmsnorm(xb, x, syn_get(s, "output_norm.weight", 0), d);
        ref_matvec(logits + (size_t)t * s->vocab, out, xb, s->vocab, d);
    }
    free(K), free(Vv), free(x), free(xb), free(q), free(att), free(o), free(g), free(u), free(sc);
}

/* Write, load, run every position and compare with the reference. */
static void check_synth(synth *s, double tol) {
    const char *path = tmp_path("synth.gguf");
    TT_CHECK(syn_write(s, path) == ZC_OK, "%s", zc_last_error());
    zc_model *m = NULL;
    TT_CHECK(zc_model_load(path, &m) == ZC_OK, "%s", zc_last_error());
    if (m) {
        enum { N = 19 };
        int32_t ids[N];
        some_tokens(ids, N, s->vocab);
        float *got = malloc((size_t)N * s->vocab * sizeof *got);
        double *want = malloc((size_t)N * s->vocab * sizeof *want);
        zc_context *c = make_ctx(m, "fp32", 0, 8);
        TT_CHECK(zc_decode(c, ids, N, ZC_LOGITS_ALL, got) == ZC_OK, "%s", zc_last_error());
        ref_forward(s, ids, N, want);
        double e = 0;
        for (size_t i = 0; i < (size_t)N * s->vocab; i++) {
            double d = fabs(got[i] - want[i]);
            if (!(d <= e)) e = d;
        }
        TT_CHECK(e <= tol, "%s: max |logit - reference| = %g", s->arch, e);
        zc_context_free(c);
        free(got), free(want);
        zc_model_free(m);
    }
    syn_free(s);
    unlink(path);
}

static void test_synth_qwen2(void) {
    synth s = {.arch = "qwen2", .layers = 2, .d = 32, .ff = 48, .heads = 4, .kv_heads = 2, .vocab = 40,
               .head_dim = 8, .wtype = ZC_TYPE_F32, .biases = true};
    check_synth(&s, 1e-4);
    /* Partial rotary (rope.dimension_count 4 of 8) in NeoX style. */
    synth p = {.arch = "qwen2", .layers = 2, .d = 32, .ff = 48, .heads = 4, .kv_heads = 2, .vocab = 40,
               .head_dim = 8, .n_rot = 4, .wtype = ZC_TYPE_F32, .biases = true};
    check_synth(&p, 1e-4);
}

static void test_synth_llama_f16_rope_freqs(void) {
    /* head_dim 12 from attention.key_length (not d / heads), GQA 6/2,
     * f16 matrices, Llama 3 style rope_freqs, tied output, rotary on 8 of
     * the 12 channels. */
    synth s = {.arch = "llama", .layers = 3, .d = 32, .ff = 40, .heads = 6, .kv_heads = 2, .vocab = 48,
               .head_dim = 12, .n_rot = 8, .wtype = ZC_TYPE_F16, .rope_freqs = true, .tied = true};
    check_synth(&s, 1e-4);
}

static void test_synth_linear_rope_scaling(void) {
    synth s = {.arch = "llama", .layers = 2, .d = 32, .ff = 48, .heads = 4, .kv_heads = 2, .vocab = 40,
               .head_dim = 8, .wtype = ZC_TYPE_F32, .rope_scaling = "linear", .rope_factor = 4.0f};
    check_synth(&s, 1e-4);
}

/* Each malformed model: load fails with `code` and a message containing `msg`. */
static void expect_bad(synth *s, int code, const char *msg) {
    const char *path = tmp_path("bad.gguf");
    TT_CHECK(syn_write(s, path) == ZC_OK, "%s", zc_last_error());
    zc_model *m = NULL;
    int rc = zc_model_load(path, &m);
    TT_CHECK(rc == code && !m && strstr(zc_last_error(), msg) && strstr(zc_last_error(), path),
             "expected %d '%s', got %d '%s'", code, msg, rc, zc_last_error());
    zc_model_free(m);
    syn_free(s);
    unlink(path);
}

static void test_bad_models(void) {
    const synth base = {.arch = "llama", .layers = 2, .d = 32, .ff = 48, .heads = 4, .kv_heads = 2, .vocab = 40,
                        .head_dim = 8, .wtype = ZC_TYPE_F32};
    synth s;
    s = base, s.skip = "blk.1.ffn_up.weight";
    expect_bad(&s, ZC_ERR_FORMAT, "tensor 'blk.1.ffn_up.weight' is missing");
    s = base, s.misshape = "blk.1.attn_k.weight";
    expect_bad(&s, ZC_ERR_FORMAT, "tensor 'blk.1.attn_k.weight' has shape [32,17], expected [32,16]");
    s = base, s.misshape = "output_norm.weight";
    expect_bad(&s, ZC_ERR_FORMAT, "tensor 'output_norm.weight' has shape [64], expected [32]");
    s = base, s.retype = "blk.0.ffn_norm.weight";
    expect_bad(&s, ZC_ERR_FORMAT, "'blk.0.ffn_norm.weight' has type q8_0, expected f32, f16 or bf16");
    s = base, s.no_tokenizer = true;
    expect_bad(&s, ZC_ERR_FORMAT, "no tokenizer");
    s = base, s.meta_heads = -1;
    expect_bad(&s, ZC_ERR_FORMAT, "head count 0 is out of range");
    s = base, s.meta_kv_heads = 3;
    expect_bad(&s, ZC_ERR_FORMAT, "3 key/value heads do not divide 4 query heads");
    s = base, s.meta_layers = -1;
    expect_bad(&s, ZC_ERR_FORMAT, "block count 0 is out of range");
    s = base, s.meta_layers = 3; /* the file declares a layer it does not have */
    expect_bad(&s, ZC_ERR_FORMAT, "tensor 'blk.2.attn_norm.weight' is missing");
    s = base, s.heads = 8, s.kv_heads = 8, s.head_dim = 4; /* d 32 / 8 = 4 is fine ... */
    s.head_dim = 5, s.d = 40;                                /* ... an odd head_dim is not */
    expect_bad(&s, ZC_ERR_FORMAT, "head dimension 5 is not a positive even number");
    s = base, s.heads = 3, s.kv_heads = 3, s.head_dim = 10; /* 32 % 3 != 0: key_length 10 written */
    check_synth(&s, 1e-4);                                  /* ... and then valid */
    s = base, s.n_rot = 10;
    expect_bad(&s, ZC_ERR_FORMAT, "rope dimension 10 must be even and in [2, 8]");
    s = base, s.rope_scaling = "dynamic", s.rope_factor = 4.0f;
    expect_bad(&s, ZC_ERR_UNSUPPORTED, "rope scaling 'dynamic' is not supported");
    s = base, s.rope_scaling = "linear", s.rope_factor = 0.0f;
    expect_bad(&s, ZC_ERR_FORMAT, "rope scaling factor 0 is out of range");
    s = base, s.experts = 8;
    expect_bad(&s, ZC_ERR_UNSUPPORTED, "mixture-of-experts models (8 experts) are not supported");
    s = base, s.meta_arch = "gpt2";
    expect_bad(&s, ZC_ERR_UNSUPPORTED, "architecture 'gpt2' is not supported");
    s = base, s.biases = false, s.arch = "qwen2";
    expect_bad(&s, ZC_ERR_FORMAT, "tensor 'blk.0.attn_q.bias' is missing");

    zc_model *m = NULL;
    TT_CHECK(zc_model_load("/nonexistent/model.gguf", &m) == ZC_ERR_IO && !m, "%s", zc_last_error());
}

/* HF directory without tokenizer.json: a clear error naming the directory. */
static void test_hf_missing_tokenizer(void) {
    const char *src = tt_asset("models/tinystories656K");
    if (!src) TT_SKIP("models/tinystories656K not found");
    char dir[256], a[4200], b[512];
    snprintf(dir, sizeof dir, "%s", tmp_path("hfdir"));
    TT_CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    char abs_src[4096];
    TT_CHECK(realpath(src, abs_src) != NULL, "realpath");
    const char *files[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/%s", abs_src, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        TT_CHECK(symlink(a, b) == 0, "symlink %s", b);
    }
    zc_model *m = NULL;
    TT_CHECK(zc_model_load(dir, &m) == ZC_ERR_FORMAT && !m && strstr(zc_last_error(), "tokenizer.json missing"), "%s",
             zc_last_error());
    for (int i = 0; i < 2; i++) {
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        unlink(b);
    }
    rmdir(dir);
}

int main(void) {
    TT_RUN(test_golden_tinystories656K);
    TT_RUN(test_batched_equals_stepwise);
    TT_RUN(test_fp16_close_to_fp32);
    TT_RUN(test_context_limit);
    TT_RUN(test_observer);
    TT_RUN(test_synth_qwen2);
    TT_RUN(test_synth_llama_f16_rope_freqs);
    TT_RUN(test_synth_linear_rope_scaling);
    TT_RUN(test_bad_models);
    TT_RUN(test_hf_missing_tokenizer);
    return tt_finish();
}
