/* Model loading: hyperparameters and weights from a GGUF file or a Hugging
 * Face directory, each tensor checked against the hyperparameters before it
 * is used. Both formats go through one binder (a tensor "source" that finds
 * a tensor by its role and layer), so validation is written once. */
#include "model/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/gguf.h"
#include "kernels/matmul_packed.h"
#include "model/hfconfig.h"
#include "quant/ggml_blocks.h"
#include "util/error.h"
#include "util/file.h"

/* ---- Tensor sources ------------------------------------------------------ */

/* The weights a model uses, by role. */
typedef enum {
    T_TOK_EMBD, T_OUT_NORM, T_OUTPUT, T_ROPE_FREQS,
    T_ATTN_NORM, T_WQ, T_WK, T_WV, T_BQ, T_BK, T_BV, T_WO, T_FFN_NORM, T_GATE, T_UP, T_DOWN,
    T_Q_NORM, T_K_NORM, T_ATTN_POST_NORM, T_FFN_POST_NORM, T_WQKV, T_GATE_UP, T_ROPE_LONG, T_ROPE_SHORT,
    T_COUNT
} tensor_role;

/* Names in each format; %d is the layer. */
static const char *const GGUF_NAMES[T_COUNT] = {
    "token_embd.weight", "output_norm.weight", "output.weight", "rope_freqs.weight",
    "blk.%d.attn_norm.weight", "blk.%d.attn_q.weight", "blk.%d.attn_k.weight", "blk.%d.attn_v.weight",
    "blk.%d.attn_q.bias", "blk.%d.attn_k.bias", "blk.%d.attn_v.bias", "blk.%d.attn_output.weight",
    "blk.%d.ffn_norm.weight", "blk.%d.ffn_gate.weight", "blk.%d.ffn_up.weight", "blk.%d.ffn_down.weight",
    "blk.%d.attn_q_norm.weight", "blk.%d.attn_k_norm.weight", "blk.%d.post_attention_norm.weight",
    "blk.%d.post_ffw_norm.weight", "blk.%d.attn_qkv.weight", "blk.%d.ffn_up.weight", "rope_factors_long.weight",
    "rope_factors_short.weight",
};
static const char *const HF_NAMES[T_COUNT] = {
    "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", NULL,
    "model.layers.%d.input_layernorm.weight", "model.layers.%d.self_attn.q_proj.weight",
    "model.layers.%d.self_attn.k_proj.weight", "model.layers.%d.self_attn.v_proj.weight",
    "model.layers.%d.self_attn.q_proj.bias", "model.layers.%d.self_attn.k_proj.bias",
    "model.layers.%d.self_attn.v_proj.bias", "model.layers.%d.self_attn.o_proj.weight",
    "model.layers.%d.post_attention_layernorm.weight", "model.layers.%d.mlp.gate_proj.weight",
    "model.layers.%d.mlp.up_proj.weight", "model.layers.%d.mlp.down_proj.weight",
    "model.layers.%d.self_attn.q_norm.weight", "model.layers.%d.self_attn.k_norm.weight", NULL, NULL,
    "model.layers.%d.self_attn.qkv_proj.weight", "model.layers.%d.mlp.gate_up_proj.weight", NULL, NULL,
};
/* gemma3 names three roles differently (llama.cpp maps them so, see
 * GGUF_NAMES): post_attention_layernorm follows the attention and the FFN
 * norm is pre_feedforward_layernorm. NULL entries: HF_NAMES'. */
static const char *const HF_GEMMA_NAMES[T_COUNT] = {
    [T_FFN_NORM] = "model.layers.%d.pre_feedforward_layernorm.weight",
    [T_ATTN_POST_NORM] = "model.layers.%d.post_attention_layernorm.weight",
    [T_FFN_POST_NORM] = "model.layers.%d.post_feedforward_layernorm.weight",
};

/* One tensor as the binder sees it, in ggml dimension order (ne[0] is the
 * contiguous row length) whatever the file's own convention. */
typedef struct {
    int type;
    int n_dims;
    int64_t ne[ZC_ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
} tensor_view;

typedef struct {
    const char *path;              /* for messages */
    const char *const *names;      /* GGUF_NAMES or HF_NAMES */
    const char *const *overrides;  /* NULL, or names that replace names' where not NULL (HF_GEMMA_NAMES) */
    bool row_major_shapes;         /* print shapes as [rows, cols] (HF) instead of ggml's [ne0, ne1] */
    /* Find a tensor by name; false if absent. */
    bool (*find)(void *src, const char *name, tensor_view *out);
    void *src;
} tensor_source;

static const char *role_name(const tensor_source *s, tensor_role r) {
    return s->overrides && s->overrides[r] ? s->overrides[r] : s->names[r];
}

static void tensor_name(const tensor_source *s, tensor_role r, int layer, char *buf, size_t cap) {
    snprintf(buf, cap, role_name(s, r), layer);
}

static void format_shape(const tensor_source *s, int n_dims, const int64_t *ne, char *buf, size_t cap) {
    size_t n = 0;
    n += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n_dims && n < cap; i++) {
        int d = s->row_major_shapes ? n_dims - 1 - i : i;
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)ne[d]);
    }
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* Find tensor (role, layer) and check its shape is exactly ne[0..n_dims). */
static int find_shaped(const tensor_source *s, tensor_role r, int layer, int n_dims, const int64_t *ne,
                       bool optional, tensor_view *t) {
    char name[128];
    tensor_name(s, r, layer, name, sizeof name);
    if (!s->find(s->src, name, t)) {
        if (optional) return 0;
        return zc_error(ZC_ERR_FORMAT, "%s: tensor '%s' is missing", s->path, name);
    }
    bool ok = t->n_dims == n_dims;
    for (int i = 0; ok && i < n_dims; i++) ok = t->ne[i] == ne[i];
    if (!ok) {
        char got[96], want[96];
        format_shape(s, t->n_dims, t->ne, got, sizeof got);
        format_shape(s, n_dims, ne, want, sizeof want);
        return zc_error(ZC_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s", s->path, name, got, want);
    }
    const zc_type_info *ti = zc_type_get(t->type);
    if (!ti) return zc_error(ZC_ERR_FORMAT, "%s: tensor '%s' has unknown type %d", s->path, name, t->type);
    size_t row_bytes, bytes;
    int rc = zc_type_row_bytes(t->type, ne[0], &row_bytes);
    if (rc != ZC_OK) return zc_error_prefix(rc, "%s: tensor '%s'", s->path, name);
    int64_t rows = n_dims == 2 ? ne[1] : 1;
    if (zc_mul_size(row_bytes, (size_t)rows, &bytes) != ZC_OK || bytes != t->nbytes)
        return zc_error(ZC_ERR_FORMAT, "%s: tensor '%s' holds %zu bytes, its shape needs %zu", s->path, name,
                        t->nbytes, bytes);
    return 1;
}

/* An owned buffer of `bytes`, freed with the model and counted as resident. */
static void *own(zc_model *m, size_t bytes) {
    void **owned = zc_realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *owned);
    if (!owned) return NULL;
    m->owned = owned;
    void *p = zc_malloc_aligned(bytes ? bytes : 1);
    if (!p) return NULL;
    m->owned[m->n_owned++] = p;
    m->info.resident_bytes += bytes;
    return p;
}

/* A weight matrix [rows][cols] used by the matmul kernels, in place: both
 * readers guarantee data aligned at least to the element size (GGUF to 32
 * bytes, safetensors refuses misaligned tensors). */
static int bind_mat(zc_model *m, const tensor_source *s, tensor_role r, int layer, int64_t rows, int64_t cols,
                    bool optional, zc_mat *out) {
    tensor_view t;
    int64_t ne[2] = {cols, rows};
    int rc = find_shaped(s, r, layer, 2, ne, optional, &t);
    if (rc <= 0) return rc;
    const zc_type_info *ti = zc_type_get(t.type);
    if (!ti->can_load) {
        char name[128];
        tensor_name(s, r, layer, name, sizeof name);
        return zc_error(ZC_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which this engine cannot compute with",
                        s->path, name, ti->name);
    }
    *out = (zc_mat){.type = t.type, .rows = rows, .cols = cols, .data = t.data, .row_bytes = t.nbytes / (size_t)rows};
    m->info.n_params += rows * cols;
    m->info.weight_bytes += t.nbytes;
    return 1;
}

/* A 1-D fp32 vector of n elements; f16/bf16 ones are converted into an
 * owned copy (they are tiny: norms, biases). */
static int bind_vec(zc_model *m, const tensor_source *s, tensor_role r, int layer, int64_t n, bool optional,
                    const float **out) {
    tensor_view t;
    int rc = find_shaped(s, r, layer, 1, &n, optional, &t);
    if (rc <= 0) return rc;
    m->info.n_params += n;
    m->info.weight_bytes += t.nbytes;
    if (t.type == ZC_TYPE_F32) {
        *out = t.data;
        return 1;
    }
    if (t.type != ZC_TYPE_F16 && t.type != ZC_TYPE_BF16 && t.type != ZC_TYPE_F32) {
        char name[128];
        tensor_name(s, r, layer, name, sizeof name);
        return zc_error(ZC_ERR_FORMAT, "%s: tensor '%s' has type %s, expected f32, f16 or bf16", s->path, name,
                        zc_type_get(t.type)->name);
    }
    float *v = own(m, (size_t)n * sizeof *v);
    if (!v) return ZC_ERR_NOMEM;
    zc_dequantize_row(t.type, t.data, v, n);
    *out = v;
    return 1;
}

/* Rows [r0, r0 + n) of w as a matrix of its own (rows are independent in
 * every type: quantized blocks never span rows). */
static zc_mat row_view(const zc_mat *w, int64_t r0, int64_t n) {
    zc_mat v = *w;
    v.rows = n;
    v.data = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
    return v;
}

/* Bind every tensor the hyperparameters call for. qkv_bias: the
 * architecture has Q/K/V biases (required then); tied: the output matrix
 * may be absent (the embedding serves). */
static int bind_weights(zc_model *m, const tensor_source *s, bool qkv_bias, bool tied) {
    const zc_model_info *h = &m->info;
    int64_t d = h->n_embd, q_dim = (int64_t)h->n_heads * h->head_dim, kv_dim = (int64_t)h->n_kv_heads * h->head_dim;
    int rc;
    /* Tied embeddings: GGUF files store only the embedding, some HF
     * checkpoints only lm_head; either one then serves both ends. */
    int has_embd, has_out;
    if ((has_out = bind_mat(m, s, T_OUTPUT, 0, h->n_vocab, d, tied, &m->output)) < 0) return has_out;
    if ((has_embd = bind_mat(m, s, T_TOK_EMBD, 0, h->n_vocab, d, has_out, &m->tok_embd)) < 0) return has_embd;
    if (!has_embd) m->tok_embd = m->output;
    if (!has_out) m->output = m->tok_embd;
    if ((rc = bind_vec(m, s, T_OUT_NORM, 0, d, false, &m->out_norm)) < 0) return rc;
    if (role_name(s, T_ROPE_FREQS) && (rc = bind_vec(m, s, T_ROPE_FREQS, 0, m->n_rot / 2, true, &m->rope_freqs)) < 0)
        return rc;
    if (role_name(s, T_ROPE_LONG) && ((rc = bind_vec(m, s, T_ROPE_LONG, 0, m->n_rot / 2, true, &m->rope_long)) < 0 ||
                                  (rc = bind_vec(m, s, T_ROPE_SHORT, 0, m->n_rot / 2, !m->rope_long,
                                                 &m->rope_short)) < 0))
        return rc;
    const float *const factors[] = {m->rope_freqs, m->rope_long, m->rope_short};
    static const char *const factor_names[] = {"rope_freqs", "rope_factors_long", "rope_factors_short"};
    for (int f = 0; f < 3; f++) /* the frequencies are divided by these */
        for (int i = 0; factors[f] && i < m->n_rot / 2; i++)
            if (!(factors[f][i] > 0 && isfinite(factors[f][i])))
                return zc_error(ZC_ERR_FORMAT, "%s: tensor '%s.weight' has value %g at %d, expected > 0", s->path,
                                factor_names[f], (double)factors[f][i], i);
    m->layers = zc_calloc((size_t)h->n_layers, sizeof *m->layers);
    if (!m->layers) return ZC_ERR_NOMEM;
    for (int l = 0; l < h->n_layers; l++) {
        zc_layer *L = &m->layers[l];
        if ((rc = bind_vec(m, s, T_ATTN_NORM, l, d, false, &L->attn_norm)) < 0) return rc;
        if (m->fused) { /* phi3: q, k, v and gate, up are consecutive row ranges of one matrix each */
            zc_mat qkv, gu;
            if ((rc = bind_mat(m, s, T_WQKV, l, q_dim + 2 * kv_dim, d, false, &qkv)) < 0 ||
                (rc = bind_mat(m, s, T_GATE_UP, l, 2 * (int64_t)h->n_ff, d, false, &gu)) < 0)
                return rc;
            L->wq = row_view(&qkv, 0, q_dim);
            L->wk = row_view(&qkv, q_dim, kv_dim);
            L->wv = row_view(&qkv, q_dim + kv_dim, kv_dim);
            L->w_gate = row_view(&gu, 0, h->n_ff);
            L->w_up = row_view(&gu, h->n_ff, h->n_ff);
        } else if ((rc = bind_mat(m, s, T_WQ, l, q_dim, d, false, &L->wq)) < 0 ||
                   (rc = bind_mat(m, s, T_WK, l, kv_dim, d, false, &L->wk)) < 0 ||
                   (rc = bind_mat(m, s, T_WV, l, kv_dim, d, false, &L->wv)) < 0 ||
                   (rc = bind_mat(m, s, T_GATE, l, h->n_ff, d, false, &L->w_gate)) < 0 ||
                   (rc = bind_mat(m, s, T_UP, l, h->n_ff, d, false, &L->w_up)) < 0)
            return rc;
        if ((rc = bind_mat(m, s, T_WO, l, d, q_dim, false, &L->wo)) < 0 ||
            (rc = bind_vec(m, s, T_FFN_NORM, l, d, false, &L->ffn_norm)) < 0 ||
            (rc = bind_mat(m, s, T_DOWN, l, d, h->n_ff, false, &L->w_down)) < 0)
            return rc;
        /* Biases: required by qwen2; a llama file may carry them too (some
         * HF checkpoints set attention_bias), and then they are used. */
        if ((rc = bind_vec(m, s, T_BQ, l, q_dim, !qkv_bias, &L->bq)) < 0 ||
            (rc = bind_vec(m, s, T_BK, l, kv_dim, !qkv_bias, &L->bk)) < 0 ||
            (rc = bind_vec(m, s, T_BV, l, kv_dim, !qkv_bias, &L->bv)) < 0)
            return rc;
        if (m->qk_norm && ((rc = bind_vec(m, s, T_Q_NORM, l, h->head_dim, false, &L->q_norm)) < 0 ||
                           (rc = bind_vec(m, s, T_K_NORM, l, h->head_dim, false, &L->k_norm)) < 0))
            return rc;
        if (m->gemma && ((rc = bind_vec(m, s, T_ATTN_POST_NORM, l, d, false, &L->post_attn_norm)) < 0 ||
                         (rc = bind_vec(m, s, T_FFN_POST_NORM, l, d, false, &L->post_ffn_norm)) < 0))
            return rc;
    }
    /* The type most of the per-layer matrices have, for display. */
    int counts[64] = {0}, best = m->layers[0].wq.type;
    for (int l = 0; l < h->n_layers; l++) {
        const zc_mat *mats[] = {&m->layers[l].wq, &m->layers[l].wk, &m->layers[l].wv, &m->layers[l].wo,
                                &m->layers[l].w_gate, &m->layers[l].w_up, &m->layers[l].w_down};
        for (int i = 0; i < 7; i++)
            if (mats[i]->type >= 0 && mats[i]->type < 64 && ++counts[mats[i]->type] > counts[best])
                best = mats[i]->type;
    }
    m->info.weight_type = best;
    m->info.weight_type_name = zc_type_get(best)->name;
    return ZC_OK;
}

/* ---- Hyperparameters ----------------------------------------------------- */

#define MAX_DIM (1 << 20)   /* widest embedding / FFN / vocab we accept */
#define MAX_LAYERS 1024
#define MAX_HEADS 4096

/* Hyperparameters in m->info (and n_rot) positive, bounded, heads dividing
 * evenly, head_dim and n_rot even: checked before any tensor is looked at. */
static int check_hparams(const zc_model *m) {
    const zc_model_info *h = &m->info;
    const char *p = m->path;
    if (h->n_layers < 1 || h->n_layers > MAX_LAYERS)
        return zc_error(ZC_ERR_FORMAT, "%s: block count %d is out of range [1, %d]", p, h->n_layers, MAX_LAYERS);
    if (h->n_embd < 1 || h->n_embd > MAX_DIM)
        return zc_error(ZC_ERR_FORMAT, "%s: embedding length %d is out of range [1, %d]", p, h->n_embd, MAX_DIM);
    if (h->n_ff < 1 || h->n_ff > MAX_DIM)
        return zc_error(ZC_ERR_FORMAT, "%s: feed-forward length %d is out of range [1, %d]", p, h->n_ff, MAX_DIM);
    if (h->n_heads < 1 || h->n_heads > MAX_HEADS)
        return zc_error(ZC_ERR_FORMAT, "%s: head count %d is out of range [1, %d]", p, h->n_heads, MAX_HEADS);
    if (h->n_kv_heads < 1 || h->n_kv_heads > h->n_heads || h->n_heads % h->n_kv_heads)
        return zc_error(ZC_ERR_FORMAT, "%s: %d key/value heads do not divide %d query heads", p, h->n_kv_heads,
                        h->n_heads);
    if (h->head_dim < 2 || h->head_dim % 2 || (int64_t)h->head_dim * h->n_heads > MAX_DIM)
        return zc_error(ZC_ERR_FORMAT, "%s: head dimension %d is not a positive even number (embedding %d, %d heads)",
                        p, h->head_dim, h->n_embd, h->n_heads);
    if (m->n_rot < 2 || m->n_rot % 2 || m->n_rot > h->head_dim)
        return zc_error(ZC_ERR_FORMAT, "%s: rope dimension %d must be even and in [2, %d]", p, m->n_rot,
                        h->head_dim);
    if (h->n_vocab < 1 || h->n_vocab > MAX_DIM)
        return zc_error(ZC_ERR_FORMAT, "%s: vocabulary size %d is out of range [1, %d]", p, h->n_vocab, MAX_DIM);
    if (h->n_ctx_train < 1)
        return zc_error(ZC_ERR_FORMAT, "%s: context length %d is not positive", p, h->n_ctx_train);
    if (!(h->norm_eps > 0 && h->norm_eps < 1))
        return zc_error(ZC_ERR_FORMAT, "%s: RMS norm epsilon %g is out of range (0, 1)", p, (double)h->norm_eps);
    if (!(h->rope_base > 1 && isfinite(h->rope_base)))
        return zc_error(ZC_ERR_FORMAT, "%s: rope frequency base %g must be finite and > 1", p, (double)h->rope_base);
    return ZC_OK;
}

/* ---- GGUF ------------------------------------------------------------------ */

static bool gguf_find(void *src, const char *name, tensor_view *out) {
    const zc_gguf_tensor *t = zc_gguf_find_tensor(src, name);
    if (!t) return false;
    *out = (tensor_view){t->type, t->n_dims, {t->ne[0], t->ne[1], t->ne[2], t->ne[3]}, t->data, t->nbytes};
    return true;
}

/* <arch>.<key> as a positive int; `def` if absent and def >= 0. */
static int gguf_hparam(const zc_gguf *g, const char *path, const char *arch, const char *key, int def, int *out) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int64_t v;
    if (zc_gguf_find_key(g, full) < 0) {
        if (def >= 0) {
            *out = def;
            return ZC_OK;
        }
        return zc_error(ZC_ERR_FORMAT, "%s: metadata key '%s' is missing", path, full);
    }
    if (!zc_gguf_get_i64(g, full, &v) || v < 0 || v > INT32_MAX)
        return zc_error(ZC_ERR_FORMAT, "%s: metadata key '%s' is not a non-negative 32-bit integer", path, full);
    *out = (int)v;
    return ZC_OK;
}

static int gguf_hparam_f32(const zc_gguf *g, const char *path, const char *arch, const char *key, float def,
                           float *out) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    if (zc_gguf_find_key(g, full) < 0) {
        if (def > 0) {
            *out = def;
            return ZC_OK;
        }
        return zc_error(ZC_ERR_FORMAT, "%s: metadata key '%s' is missing", path, full);
    }
    if (!zc_gguf_get_f32(g, full, out)) return zc_error(ZC_ERR_FORMAT, "%s: metadata key '%s' is not a float", path, full);
    return ZC_OK;
}

/* <arch>.rope.scaling.type: none, or linear (positions divided by
 * rope.scaling.factor, as llama.cpp's freq_scale = 1/factor). YaRN and the
 * other long-context schemes are refused rather than run wrong. */
static int gguf_rope_scaling(const zc_gguf *g, const char *path, const char *arch, float *linear) {
    char key[128];
    size_t len;
    *linear = 1.0f;
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *type = zc_gguf_get_str(g, key, &len);
    if (!type || (len == 4 && !memcmp(type, "none", 4))) return ZC_OK;
    if (len == 8 && !memcmp(type, "longrope", 8)) return ZC_OK; /* phi3: rope_factors_long/short tensors */
    if (len == 4 && !memcmp(type, "yarn", 4)) return ZC_OK;     /* gguf_yarn */
    if (len != 6 || memcmp(type, "linear", 6))
        return zc_error(ZC_ERR_UNSUPPORTED, "%s: rope scaling '%.*s' is not supported (none, linear, longrope, yarn)", path,
                        (int)(len < 32 ? len : 32), type);
    int rc = gguf_hparam_f32(g, path, arch, "rope.scaling.factor", -1, linear);
    if (rc != ZC_OK) return rc;
    if (!(*linear >= 1 && *linear <= 1024))
        return zc_error(ZC_ERR_FORMAT, "%s: rope scaling factor %g is out of range [1, 1024]", path, (double)*linear);
    return ZC_OK;
}

/* YaRN from <arch>.rope.scaling.*: factor, original_context_length
 * (default the training context), yarn_beta_fast/slow (32, 1) and
 * attn_factor (default 0.1 ln(factor) + 1, as llama.cpp's mscale). */
static int gguf_yarn(const zc_gguf *g, zc_model *m, const char *an) {
    char key[128];
    size_t len;
    snprintf(key, sizeof key, "%s.rope.scaling.type", an);
    const char *type = zc_gguf_get_str(g, key, &len);
    if (!type || len != 4 || memcmp(type, "yarn", 4)) return ZC_OK;
    const char *path = m->path;
    float attn;
    int rc;
    if ((rc = gguf_hparam_f32(g, path, an, "rope.scaling.factor", -1, &m->yarn_factor)) ||
        (rc = gguf_hparam(g, path, an, "rope.scaling.original_context_length", m->info.n_ctx_train,
                          &m->rope_orig_ctx)) ||
        (rc = gguf_hparam_f32(g, path, an, "rope.scaling.yarn_beta_fast", 32.0f, &m->yarn_beta_fast)) ||
        (rc = gguf_hparam_f32(g, path, an, "rope.scaling.yarn_beta_slow", 1.0f, &m->yarn_beta_slow)))
        return rc;
    if (!(m->yarn_factor >= 1 && m->yarn_factor <= 1024) || m->rope_orig_ctx < 1 || !(m->yarn_beta_fast > 0) ||
        !(m->yarn_beta_slow > 0))
        return zc_error(ZC_ERR_FORMAT, "%s: yarn factor %g / original context %d / betas %g, %g out of range", path,
                        (double)m->yarn_factor, m->rope_orig_ctx, (double)m->yarn_beta_fast,
                        (double)m->yarn_beta_slow);
    if ((rc = gguf_hparam_f32(g, path, an, "rope.scaling.attn_factor", 0.1f * logf(m->yarn_factor) + 1.0f, &attn)))
        return rc;
    m->rope_mscale = attn;
    return ZC_OK;
}

static const struct {
    const char *name;
    zc_rope_style rope;
    bool qkv_bias, qk_norm, gemma, fused;
} ARCHS[] = {
    {"llama", ZC_ROPE_ADJACENT, false, false, false, false},
    {"qwen2", ZC_ROPE_NEOX, true, false, false, false},
    {"qwen3", ZC_ROPE_NEOX, false, true, false, false},
    {"gemma3", ZC_ROPE_NEOX, false, true, true, false},
    {"phi3", ZC_ROPE_NEOX, false, false, false, true},
    {"smollm3", ZC_ROPE_ADJACENT, false, false, false, false},
};
#define ARCH_LIST "llama, qwen2, qwen3, gemma3, phi3, smollm3"

/* NoPE layers: every step-th layer (smollm3; 0 = none). */
static void set_nope(zc_model *m, int step) {
    for (int l = 0; step > 0 && l < m->info.n_layers; l++) m->layers[l].no_rope = (l + 1) % step == 0;
}

/* Sliding-window layers and the gemma3 constants, once the hyperparameters
 * are known: window[l] = `window` on local layers (all of them when
 * pattern is 0, else all but every pattern-th), 0 on global ones;
 * local_base > 0 gives local layers their own RoPE base. q_scale turns the
 * cache's 1/sqrt(head_dim) into 1/sqrt(qpas). */
static int set_layout(zc_model *m, int window, int pattern, float local_base, float qpas) {
    const zc_model_info *h = &m->info;
    if (window < 0 || pattern < 0)
        return zc_error(ZC_ERR_FORMAT, "%s: sliding window %d / pattern %d is negative", m->path, window, pattern);
    if (!(qpas > 0 && isfinite(qpas)))
        return zc_error(ZC_ERR_FORMAT, "%s: query_pre_attn_scalar %g must be positive", m->path, (double)qpas);
    if (window > 0 && !(m->window = own(m, (size_t)h->n_layers * sizeof *m->window))) return ZC_ERR_NOMEM;
    for (int l = 0; m->window && l < h->n_layers; l++) {
        bool local = pattern == 0 || (l + 1) % pattern != 0;
        m->window[l] = local ? window : 0;
        m->layers[l].local_rope = local && local_base > 0;
    }
    m->rope_base_local = local_base;
    m->embd_scale = m->gemma ? sqrtf((float)h->n_embd) : 1.0f;
    m->q_scale = sqrtf((float)h->head_dim / qpas);
    return ZC_OK;
}

static int load_gguf(zc_model *m) {
    const char *path = m->path;
    int rc = zc_gguf_open(path, &m->gguf);
    if (rc != ZC_OK) return rc;
    zc_gguf *g = m->gguf;
    size_t len;
    const char *arch = zc_gguf_get_str(g, "general.architecture", &len);
    if (!arch) return zc_error(ZC_ERR_FORMAT, "%s: metadata key 'general.architecture' is missing", path);
    int a = -1;
    for (int i = 0; i < (int)(sizeof ARCHS / sizeof ARCHS[0]); i++)
        if (len == strlen(ARCHS[i].name) && !memcmp(arch, ARCHS[i].name, len)) a = i;
    if (a < 0)
        return zc_error(ZC_ERR_UNSUPPORTED, "%s: architecture '%.*s' is not supported (" ARCH_LIST ")", path,
                        (int)(len < 64 ? len : 64), arch);
    snprintf(m->arch, sizeof m->arch, "%s", ARCHS[a].name);
    m->rope_style = ARCHS[a].rope;
    m->qk_norm = ARCHS[a].qk_norm;
    m->gemma = ARCHS[a].gemma;
    m->fused = ARCHS[a].fused;

    zc_model_info *h = &m->info;
    const char *an = m->arch;
    if ((rc = gguf_hparam(g, path, an, "block_count", -1, &h->n_layers)) ||
        (rc = gguf_hparam(g, path, an, "embedding_length", -1, &h->n_embd)) ||
        (rc = gguf_hparam(g, path, an, "feed_forward_length", -1, &h->n_ff)) ||
        (rc = gguf_hparam(g, path, an, "attention.head_count", -1, &h->n_heads)) ||
        (rc = gguf_hparam(g, path, an, "attention.head_count_kv", h->n_heads, &h->n_kv_heads)) ||
        (rc = gguf_hparam(g, path, an, "context_length", -1, &h->n_ctx_train)) ||
        (rc = gguf_hparam_f32(g, path, an, "attention.layer_norm_rms_epsilon", -1, &h->norm_eps)) ||
        (rc = gguf_hparam_f32(g, path, an, "rope.freq_base", 10000.0f, &h->rope_base)))
        return rc;
    int n_expert;
    if ((rc = gguf_hparam(g, path, an, "expert_count", 0, &n_expert))) return rc;
    if (n_expert > 0)
        return zc_error(ZC_ERR_UNSUPPORTED, "%s: mixture-of-experts models (%d experts) are not supported", path,
                        n_expert);
    /* head_dim defaults to n_embd / n_heads; attention.key_length overrides. */
    if (h->n_heads < 1 || h->n_heads > MAX_HEADS)
        return zc_error(ZC_ERR_FORMAT, "%s: head count %d is out of range [1, %d]", path, h->n_heads, MAX_HEADS);
    int def_head_dim = h->n_embd % h->n_heads ? 0 : h->n_embd / h->n_heads;
    if ((rc = gguf_hparam(g, path, an, "attention.key_length", def_head_dim, &h->head_dim)) ||
        (rc = gguf_hparam(g, path, an, "rope.dimension_count", h->head_dim, &m->n_rot)) ||
        (rc = gguf_rope_scaling(g, path, an, &m->rope_linear)))
        return rc;

    if (zc_gguf_find_key(g, "tokenizer.ggml.tokens") < 0)
        return zc_error(ZC_ERR_FORMAT, "%s: the file has no tokenizer (metadata 'tokenizer.ggml.tokens' missing)",
                        path);
    if ((rc = zc_tokenizer_from_gguf(g, &m->tok)) != ZC_OK) return rc;
    h->n_vocab = zc_tokenizer_n_vocab(m->tok);
    if ((rc = check_hparams(m)) != ZC_OK) return rc;

    tensor_source s = {path, GGUF_NAMES, NULL, false, gguf_find, g};
    /* GGUF files mark tied embeddings by leaving output.weight out. */
    if ((rc = bind_weights(m, &s, ARCHS[a].qkv_bias, true)) != ZC_OK) return rc;
    /* Local attention: <arch>.attention.sliding_window on every layer, or
     * for gemma3 on all but every sliding_window_pattern-th (default 6),
     * rotating with rope.freq_base_swa (default 10000), as llama.cpp. */
    int window, pattern;
    float local_base = 0, qpas = (float)h->head_dim;
    if ((rc = gguf_hparam(g, path, an, "attention.sliding_window", 0, &window)) ||
        (rc = gguf_hparam(g, path, an, "attention.sliding_window_pattern", m->gemma ? 6 : 0, &pattern)) ||
        (m->gemma && (rc = gguf_hparam_f32(g, path, an, "rope.freq_base_swa", 10000.0f, &local_base))) ||
        (rc = gguf_hparam_f32(g, path, an, "attention.query_pre_attn_scalar", qpas, &qpas)) ||
        (rc = set_layout(m, window, pattern, local_base, qpas)))
        return rc;
    if ((rc = gguf_yarn(g, m, an))) return rc;
    /* smollm3: llama.cpp hard-codes a NoPE layer every 4 (no key); ours
     * writes no_rope_layer_step only when a checkpoint differs. */
    int nope_step = 0;
    if (!strcmp(an, "smollm3") && (rc = gguf_hparam(g, path, an, "no_rope_layer_step", 4, &nope_step))) return rc;
    set_nope(m, nope_step);
    /* LongRoPE (phi3): the factor tensors bound above, the context they
     * switch at and the attention factor, as llama.cpp writes them. */
    float attn_factor;
    if (m->rope_long && ((rc = gguf_hparam(g, path, an, "rope.scaling.original_context_length", h->n_ctx_train,
                                           &m->rope_orig_ctx)) ||
                         (rc = gguf_hparam_f32(g, path, an, "rope.scaling.attn_factor", 1.0f, &attn_factor))))
        return rc;
    if (m->rope_long) m->rope_mscale = attn_factor;
    h->format = "gguf";
    h->mapped_bytes = zc_gguf_file_size(g);
    return ZC_OK;
}

/* ---- Hugging Face directories ---------------------------------------------- */

static bool hf_find(void *src, const char *name, tensor_view *out) {
    const zc_st_tensor *t = zc_st_find(src, name);
    if (!t) return false;
    /* safetensors shapes are row-major [rows, cols]; the binder wants ne[0] = cols */
    *out = (tensor_view){t->type, t->n_dims, {0}, t->data, t->nbytes};
    for (int i = 0; i < t->n_dims; i++) out->ne[i] = t->shape[t->n_dims - 1 - i];
    return true;
}

/* Gemma's HF RMSNorm multiplies by (1 + w); GGUF files store 1 + w (llama.cpp's
 * converter adds it), so the forward pass is the same for both: add 1 here,
 * into owned copies (the mapped weights stay read-only). */
static int shift_norm(zc_model *m, const float **w, int n) {
    float *v = own(m, (size_t)n * sizeof *v);
    if (!v) return ZC_ERR_NOMEM;
    for (int i = 0; i < n; i++) v[i] = (*w)[i] + 1.0f;
    *w = v;
    return ZC_OK;
}

static int gemma_norms_plus_one(zc_model *m) {
    const zc_model_info *h = &m->info;
    int rc = shift_norm(m, &m->out_norm, h->n_embd);
    for (int l = 0; l < h->n_layers && !rc; l++) {
        zc_layer *L = &m->layers[l];
        if ((rc = shift_norm(m, &L->attn_norm, h->n_embd)) || (rc = shift_norm(m, &L->ffn_norm, h->n_embd)) ||
            (rc = shift_norm(m, &L->post_attn_norm, h->n_embd)) ||
            (rc = shift_norm(m, &L->post_ffn_norm, h->n_embd)) || (rc = shift_norm(m, &L->q_norm, h->head_dim)))
            break;
        rc = shift_norm(m, &L->k_norm, h->head_dim);
    }
    return rc;
}

static int load_hf(zc_model *m) {
    const char *dir = m->path;
    int rc = zc_hf_source_open(dir, &m->hf);
    if (rc != ZC_OK) return rc;
    const zc_hf_config *c = &m->hf->config;
    zc_model_info *h = &m->info;
    snprintf(m->arch, sizeof m->arch, "%s", c->arch);
    /* Every HF checkpoint rotates halves: see model.h. */
    m->rope_style = ZC_ROPE_NEOX;
    m->qk_norm = c->qk_norm;
    m->gemma = c->gemma;
    m->fused = c->fused;
    m->rope_linear = c->rope_linear;
    h->n_layers = c->n_layers;
    h->n_embd = c->n_embd;
    h->n_ff = c->n_ff;
    h->n_heads = c->n_heads;
    h->n_kv_heads = c->n_kv_heads;
    h->head_dim = c->head_dim;
    h->n_vocab = c->n_vocab;
    h->n_ctx_train = c->max_pos;
    h->rope_base = c->rope_theta;
    h->norm_eps = c->rms_eps;
    m->n_rot = c->n_rot;

    char tok_path[4200];
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", dir);
    struct stat st;
    if (stat(tok_path, &st) != 0)
        return zc_error(ZC_ERR_FORMAT, "%s: the checkpoint has no tokenizer (tokenizer.json missing)", dir);
    if ((rc = check_hparams(m)) != ZC_OK) return rc;
    if ((rc = zc_tokenizer_from_hf(tok_path, &m->tok)) != ZC_OK) return rc;
    /* Control tokens past the model's rows are tolerated (Gemma 3's
     * tokenizer.json has <image_soft_token> = 262144 for every size, the 1B
     * text model 262144 rows): only text that names them with parse_special
     * can produce them, and decoding refuses those ids. Text tokens cannot. */
    for (int id = h->n_vocab; id < zc_tokenizer_n_vocab(m->tok); id++) {
        char piece[8];
        size_t len;
        if (zc_token_to_bytes(m->tok, id, piece, sizeof piece, &len) != ZC_OK || len != 0)
            return zc_error(ZC_ERR_FORMAT, "%s: the tokenizer has %d tokens, more than vocab_size %d (token %d is "
                            "not a control token)", dir, zc_tokenizer_n_vocab(m->tok), h->n_vocab, id);
    }

    tensor_source s = {dir, HF_NAMES, c->gemma ? HF_GEMMA_NAMES : NULL, true, hf_find, m->hf->st};
    if ((rc = bind_weights(m, &s, c->attention_bias, c->tie_word_embeddings)) != ZC_OK) return rc;
    if (c->gemma && (rc = gemma_norms_plus_one(m)) != ZC_OK) return rc;
    if ((rc = set_layout(m, c->sliding_window, c->swa_pattern, c->rope_local_theta,
                         c->query_pre_attn_scalar > 0 ? c->query_pre_attn_scalar : (float)c->head_dim)))
        return rc;
    set_nope(m, c->nope_interval);
    if (c->rope_yarn) {
        m->yarn_factor = c->rope_yarn_factor;
        m->yarn_beta_fast = c->rope_yarn_beta_fast;
        m->yarn_beta_slow = c->rope_yarn_beta_slow;
        m->rope_orig_ctx = c->rope_orig_ctx;
        m->rope_mscale = c->rope_attn_factor;
    }
    if (c->rope_longrope) { /* the factors GGUF files carry as rope_factors_long/short */
        float *f = own(m, (size_t)m->n_rot * sizeof *f);
        if (!f) return ZC_ERR_NOMEM;
        memcpy(f, c->rope_long, (size_t)m->n_rot / 2 * sizeof *f);
        memcpy(f + m->n_rot / 2, c->rope_short, (size_t)m->n_rot / 2 * sizeof *f);
        m->rope_long = f;
        m->rope_short = f + m->n_rot / 2;
        m->rope_orig_ctx = c->rope_orig_ctx;
        m->rope_mscale = c->rope_attn_factor;
    }
    if (c->rope_llama3) { /* the factors GGUF files carry as rope_freqs */
        float *f = own(m, (size_t)m->n_rot / 2 * sizeof *f);
        if (!f) return ZC_ERR_NOMEM;
        zc_hf_llama3_rope_freqs(c, f);
        m->rope_freqs = f;
    }
    h->format = "hf";
    for (int i = 0; i < zc_st_n_tensors(m->hf->st); i++) h->mapped_bytes += zc_st_tensor_at(m->hf->st, i)->nbytes;
    return ZC_OK;
}

/* ---- Public entry points -------------------------------------------------- */

void zc_model_params_default(zc_model_params *p) {
    memset(p, 0, sizeof *p);
    p->use_mmap = 1;
    p->repack = 1;
}

/* The mapped pages of w's packed rows, given back to the kernel: they are
 * read again only if w's row-major data is (the packed path never does). */
static void release_mapped(const zc_mat *w) {
    const long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t a = (uintptr_t)w->data, b = a + (size_t)(w->rows / ZC_PACK_ROWS * ZC_PACK_ROWS) * w->row_bytes;
    a = (a + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    b = b / (uintptr_t)page * (uintptr_t)page;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Every layer matrix and the output matrix repacked for the GEMM where the
 * CPU and the type allow (zc_mat_repack); the copies are owned and counted
 * as resident. With the file mapped, the originals' pages are released, so
 * the weights are held once. A tied output (the embedding) is repacked only
 * if the embedding lookups can read its rows back from the packed copy
 * (zc_mat_repack_keeps_rows); the lookups then share it. */
static int repack_weights(zc_model *m, bool mapped) {
    const bool tied = m->output.data == m->tok_embd.data;
    for (int l = 0; l < m->info.n_layers; l++) {
        zc_layer *L = &m->layers[l];
        zc_mat *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down, NULL};
        if (l == 0 && (!tied || zc_mat_repack_keeps_rows(m->output.type))) mats[7] = &m->output;
        for (int i = 0; i < 8 && mats[i]; i++) {
            if (!zc_repack_pays(mats[i]->type)) continue;
            void **owned = zc_realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *owned); /* room for the copy */
            if (!owned) return ZC_ERR_NOMEM;
            m->owned = owned;
            void *buf;
            size_t bytes;
            int rc = zc_mat_repack(mats[i], &buf, &bytes);
            if (rc != ZC_OK) return rc;
            if (!buf) continue;
            m->owned[m->n_owned++] = buf;
            m->info.resident_bytes += bytes;
            m->info.repacked_bytes += bytes;
            if (mats[i] == &m->output && tied) m->tok_embd.packed = m->output.packed;
            if (mapped) release_mapped(mats[i]);
        }
    }
    return ZC_OK;
}

int zc_model_load(const char *path, zc_model **out) { return zc_model_load_params(path, NULL, out); }

static int load_path(const char *path, zc_model **out);

int zc_model_load_params(const char *path, const zc_model_params *p, zc_model **out) {
    *out = NULL;
    zc_model_params def;
    if (!p) zc_model_params_default(&def), p = &def;
    if (p->progress && p->progress(0.0f, p->progress_user))
        return zc_error(ZC_ERR_ABORTED, "%s: loading stopped by the progress callback", path);
    /* The weight files are read (or mapped) on this thread: file.c takes
     * the mode from a thread-local, reset before returning. */
    zc_file_load_mode mode = {!p->use_mmap, p->progress, p->progress_user};
    zc_file_set_load_mode(&mode);
    int rc = load_path(path, out);
    zc_file_set_load_mode(NULL);
    if (rc == ZC_OK && p->repack && (rc = repack_weights(*out, p->use_mmap)) != ZC_OK) {
        zc_model_free(*out);
        *out = NULL;
        return rc;
    }
    if (rc == ZC_OK && p->progress && p->progress(1.0f, p->progress_user)) {
        zc_model_free(*out);
        *out = NULL;
        return zc_error(ZC_ERR_ABORTED, "%s: loading stopped by the progress callback", path);
    }
    return rc;
}

static int load_path(const char *path, zc_model **out) {
    *out = NULL;
    zc_model *m = zc_calloc(1, sizeof *m);
    if (!m) return ZC_ERR_NOMEM;
    snprintf(m->path, sizeof m->path, "%s", path);
    m->rope_linear = 1.0f;
    m->embd_scale = m->q_scale = m->rope_mscale = 1.0f; /* set once the format is read */
    struct stat st;
    int rc;
    if (stat(path, &st) != 0)
        rc = zc_error(ZC_ERR_IO, "%s: cannot open: %s", path, strerror(errno)); /* as zc_map_file says it */
    else if (S_ISDIR(st.st_mode))
        rc = load_hf(m);
    else
        rc = load_gguf(m);
    if (rc != ZC_OK) {
        zc_model_free(m);
        return rc;
    }
    zc_model_info *h = &m->info;
    h->arch = m->arch;
    h->bos = zc_tokenizer_bos(m->tok);
    h->eos = zc_tokenizer_eos(m->tok);
    h->add_bos = zc_tokenizer_add_bos(m->tok);
    *out = m;
    return ZC_OK;
}

void zc_model_free(zc_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) zc_free_aligned(m->owned[i]);
    free(m->owned);
    free(m->layers);
    zc_tokenizer_free(m->tok);
    zc_gguf_close(m->gguf);
    zc_hf_source_free(m->hf);
    free(m);
}

const zc_model_info *zc_model_get_info(const zc_model *m) { return &m->info; }
