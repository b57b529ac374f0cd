/* config.json -> zc_hf_config, and the HF checkpoint source. Defaults follow
 * transformers' LlamaConfig / Qwen2Config where a field may be omitted; the
 * shape fields (hidden_size, layers, heads, intermediate_size, vocab_size)
 * are required because their library defaults never describe a real
 * checkpoint that omits them. */
#include "model/hfconfig.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

/* Dimension bound: generous for any real model, small enough that products
 * of two of them cannot overflow int64 in users' size arithmetic. */
#define HF_MAX_DIM (1 << 24)
#define HF_MAX_CONFIG (1u << 20)

typedef struct {
    const zc_json *root;
    const char *src;
} cfg_ctx;

/* Integer field in [lo, hi]; absent -> *out = def (or error if def < lo). */
static int get_int(const cfg_ctx *c, const char *key, int lo, int hi, int def, int *out) {
    const zc_json *v = zc_json_get(c->root, key);
    if (!v || v->type == ZC_JSON_NULL) {
        if (def < lo) return zc_error(ZC_ERR_FORMAT, "%s: missing '%s' (config)", c->src, key);
        *out = def;
        return ZC_OK;
    }
    int64_t x;
    if (!zc_json_int(v, &x)) return zc_error(ZC_ERR_FORMAT, "%s: '%s' is not an integer (config)", c->src, key);
    if (x < lo || x > hi)
        return zc_error(ZC_ERR_FORMAT, "%s: '%s' = %lld is out of range [%d, %d] (config)", c->src, key, (long long)x,
                        lo, hi);
    *out = (int)x;
    return ZC_OK;
}

/* Positive finite number from object obj (config root or rope_scaling). */
static int get_num(const cfg_ctx *c, const zc_json *obj, const char *key, double def, float *out) {
    const zc_json *v = zc_json_get(obj, key);
    double x = def;
    if (v && v->type != ZC_JSON_NULL && !zc_json_num(v, &x))
        return zc_error(ZC_ERR_FORMAT, "%s: '%s' is not a number (config)", c->src, key);
    if (!(x > 0) || !isfinite((float)x))
        return zc_error(ZC_ERR_FORMAT, "%s: '%s' = %g must be positive and finite (config)", c->src, key, x);
    *out = (float)x;
    return ZC_OK;
}

static int get_bool(const cfg_ctx *c, const char *key, bool def, bool *out) {
    const zc_json *v = zc_json_get(c->root, key);
    *out = def;
    if (v && v->type != ZC_JSON_NULL && !zc_json_bool(v, out))
        return zc_error(ZC_ERR_FORMAT, "%s: '%s' is not a boolean (config)", c->src, key);
    return ZC_OK;
}

static int parse_rope_scaling(const cfg_ctx *c, zc_hf_config *h) {
    const zc_json *rs = zc_json_get(c->root, "rope_scaling");
    if (!rs || rs->type == ZC_JSON_NULL) return ZC_OK;
    if (rs->type != ZC_JSON_OBJECT)
        return zc_error(ZC_ERR_FORMAT, "%s: 'rope_scaling' is not an object (config)", c->src);
    const char *type = zc_json_str(zc_json_get(rs, "rope_type"));
    if (!type) type = zc_json_str(zc_json_get(rs, "type")); /* older configs */
    if (!type) return zc_error(ZC_ERR_FORMAT, "%s: 'rope_scaling' has no 'rope_type' (config)", c->src);
    if (strcmp(type, "default") == 0) return ZC_OK;
    if (strcmp(type, "linear") == 0) {
        int rc = get_num(c, rs, "factor", -1, &h->rope_linear);
        if (!rc && !(h->rope_linear >= 1 && h->rope_linear <= 1024))
            rc = zc_error(ZC_ERR_FORMAT, "%s: rope_scaling factor %g is out of range [1, 1024] (config)", c->src,
                          (double)h->rope_linear);
        return rc;
    }
    if (strcmp(type, "longrope") == 0 || strcmp(type, "su") == 0) return ZC_OK; /* parse_longrope, once n_rot is known */
    if (strcmp(type, "yarn") == 0) {
        /* transformers' _compute_yarn_parameters with the defaults of
         * Qwen2.5/Qwen3 configs; DeepSeek's mscale / mscale_all_dim and
         * truncate false are other models' and refused. */
        if (zc_json_get(rs, "mscale") || zc_json_get(rs, "mscale_all_dim") || zc_json_get(rs, "truncate"))
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: yarn with mscale, mscale_all_dim or truncate is not supported "
                            "(config)", c->src);
        h->rope_yarn = true;
        int rc = get_num(c, rs, "factor", -1, &h->rope_yarn_factor);
        if (!rc) rc = get_num(c, rs, "beta_fast", 32.0, &h->rope_yarn_beta_fast);
        if (!rc) rc = get_num(c, rs, "beta_slow", 1.0, &h->rope_yarn_beta_slow);
        if (rc) return rc;
        if (!(h->rope_yarn_factor >= 1 && h->rope_yarn_factor <= 1024))
            return zc_error(ZC_ERR_FORMAT, "%s: yarn factor %g is out of range [1, 1024] (config)", c->src,
                            (double)h->rope_yarn_factor);
        const zc_json *oc = zc_json_get(rs, "original_max_position_embeddings");
        int64_t ctx = 0;
        if (oc && oc->type != ZC_JSON_NULL && (!zc_json_int(oc, &ctx) || ctx < 1 || ctx > HF_MAX_DIM))
            return zc_error(ZC_ERR_FORMAT, "%s: rope_scaling original_max_position_embeddings is invalid (config)",
                            c->src);
        h->rope_orig_ctx = (int)ctx; /* 0: max_position_embeddings, filled in once read */
        return get_num(c, rs, "attention_factor", 0.1 * log(h->rope_yarn_factor) + 1.0, &h->rope_attn_factor);
    }
    if (strcmp(type, "llama3") != 0)
        return zc_error(ZC_ERR_UNSUPPORTED,
                        "%s: rope_scaling type '%.32s' is not supported (linear, llama3, longrope, yarn) (config)", c->src,
                        type);
    h->rope_llama3 = true;
    /* Defaults as in llama.cpp's converter. */
    int rc = get_num(c, rs, "factor", 8.0, &h->rope_factor);
    if (!rc) rc = get_num(c, rs, "low_freq_factor", 1.0, &h->rope_low_freq_factor);
    if (!rc) rc = get_num(c, rs, "high_freq_factor", 4.0, &h->rope_high_freq_factor);
    if (rc) return rc;
    if (!(h->rope_high_freq_factor > h->rope_low_freq_factor))
        return zc_error(ZC_ERR_FORMAT, "%s: rope_scaling high_freq_factor must exceed low_freq_factor (config)",
                        c->src);
    const zc_json *oc = zc_json_get(rs, "original_max_position_embeddings");
    int64_t ctx = 8192;
    if (oc && (!zc_json_int(oc, &ctx) || ctx < 1 || ctx > HF_MAX_DIM))
        return zc_error(ZC_ERR_FORMAT, "%s: rope_scaling original_max_position_embeddings is invalid (config)", c->src);
    h->rope_orig_ctx = (int)ctx;
    return ZC_OK;
}

/* partial_rotary_factor (phi3, default 1): the first head_dim * f channels rotate. */
static int parse_partial_rotary(const cfg_ctx *c, zc_hf_config *h) {
    float f;
    int rc = get_num(c, c->root, "partial_rotary_factor", 1.0, &f);
    if (rc) return rc;
    if (f > 1) return zc_error(ZC_ERR_FORMAT, "%s: partial_rotary_factor %g exceeds 1 (config)", c->src, (double)f);
    h->n_rot = (int)((float)h->head_dim * f);
    if (h->n_rot < 2 || h->n_rot % 2)
        return zc_error(ZC_ERR_FORMAT, "%s: partial_rotary_factor %g leaves %d rotated channels, not a positive even "
                        "number (config)", c->src, (double)f, h->n_rot);
    return ZC_OK;
}

static int factor_list(const cfg_ctx *c, const zc_json *rs, const char *key, int n, float *out) {
    const zc_json *v = zc_json_get(rs, key);
    if (!v || v->type != ZC_JSON_ARRAY || (int)v->len != n)
        return zc_error(ZC_ERR_FORMAT, "%s: rope_scaling '%s' must list %d numbers (rotated channels / 2) (config)",
                        c->src, key, n);
    for (int i = 0; i < n; i++) {
        double x;
        if (!zc_json_num(&v->items[i], &x) || !(x > 0) || !isfinite((float)x))
            return zc_error(ZC_ERR_FORMAT, "%s: rope_scaling %s[%d] is not a positive number (config)", c->src, key, i);
        out[i] = (float)x;
    }
    return ZC_OK;
}

/* LongRoPE (Phi-3 "su", Phi-4 "longrope"), as transformers computes it:
 * per-pair divisors long_factor / short_factor, the original context from
 * the config (or rope_scaling), and attention_factor (default
 * sqrt(1 + ln(max_pos / orig) / ln(orig)) when max_pos > orig, else 1). */
static int parse_longrope(const cfg_ctx *c, zc_hf_config *h) {
    const zc_json *rs = zc_json_get(c->root, "rope_scaling");
    if (!rs || rs->type != ZC_JSON_OBJECT) return ZC_OK;
    const char *type = zc_json_str(zc_json_get(rs, "rope_type"));
    if (!type) type = zc_json_str(zc_json_get(rs, "type"));
    if (!type || (strcmp(type, "longrope") != 0 && strcmp(type, "su") != 0)) return ZC_OK;
    int half = h->n_rot / 2;
    if (half > ZC_HF_MAX_ROPE_FACTORS)
        return zc_error(ZC_ERR_UNSUPPORTED, "%s: longrope with %d rotated channels is not supported (config)", c->src,
                        h->n_rot);
    h->rope_longrope = true;
    int rc = factor_list(c, rs, "long_factor", half, h->rope_long);
    if (!rc) rc = factor_list(c, rs, "short_factor", half, h->rope_short);
    if (!rc) rc = get_int(c, "original_max_position_embeddings", 1, HF_MAX_DIM, h->max_pos, &h->rope_orig_ctx);
    const zc_json *oc = zc_json_get(rs, "original_max_position_embeddings");
    int64_t ctx;
    if (!rc && oc && oc->type != ZC_JSON_NULL) {
        if (!zc_json_int(oc, &ctx) || ctx < 1 || ctx > HF_MAX_DIM)
            return zc_error(ZC_ERR_FORMAT, "%s: rope_scaling original_max_position_embeddings is invalid (config)",
                            c->src);
        h->rope_orig_ctx = (int)ctx;
    }
    if (rc) return rc;
    double scale = (double)h->max_pos / h->rope_orig_ctx;
    double def = scale > 1 && h->rope_orig_ctx > 1 ? sqrt(1 + log(scale) / log((double)h->rope_orig_ctx)) : 1.0;
    return get_num(c, rs, "attention_factor", def, &h->rope_attn_factor);
}

static bool token_id(const zc_json *v, int *out) {
    int64_t id;
    if (!zc_json_int(v, &id) || id < 0 || id > INT32_MAX) return false;
    *out = (int)id;
    return true;
}

/* bos_token_id: an id or absent/null; eos_token_id: an id, a list of ids
 * (Llama 3.1 lists its three end tokens), or absent/null. */
static int parse_special_ids(const cfg_ctx *c, zc_hf_config *h) {
    const zc_json *b = zc_json_get(c->root, "bos_token_id");
    h->bos_id = -1;
    if (b && b->type != ZC_JSON_NULL && !token_id(b, &h->bos_id))
        return zc_error(ZC_ERR_FORMAT, "%s: 'bos_token_id' is not a token id (config)", c->src);
    const zc_json *e = zc_json_get(c->root, "eos_token_id");
    h->n_eos = 0;
    if (!e || e->type == ZC_JSON_NULL) return ZC_OK;
    const zc_json *items = e->type == ZC_JSON_ARRAY ? e->items : e;
    size_t n = e->type == ZC_JSON_ARRAY ? e->len : 1;
    if (n > ZC_HF_MAX_EOS)
        return zc_error(ZC_ERR_FORMAT, "%s: more than %d eos_token_id values (config)", c->src, ZC_HF_MAX_EOS);
    for (size_t i = 0; i < n; i++)
        if (!token_id(&items[i], &h->eos_ids[h->n_eos++]))
            return zc_error(ZC_ERR_FORMAT, "%s: 'eos_token_id' is not a token id or a list of them (config)", c->src);
    return ZC_OK;
}

/* What each model_type is, with transformers' defaults for the fields a
 * config may omit (max_position_embeddings; head_dim where the config class
 * has a fixed default instead of hidden_size / heads; Gemma3TextConfig ties
 * the embeddings by default). Mistral is llama
 * in GGUF (llama.cpp converts it so). */
typedef struct {
    const char *model_type, *arch;
    int max_pos, head_dim;
    bool bias, qk_norm, gemma, fused;
} hf_arch;

static const hf_arch HF_ARCHS[] = {
    {"llama", "llama", 2048, 0, false, false, false, false},
    {"mistral", "llama", 32768, 0, false, false, false, false},
    {"qwen2", "qwen2", 32768, 0, true, false, false, false},
    {"qwen3", "qwen3", 32768, 128, false, true, false, false},
    {"gemma3_text", "gemma3", 131072, 256, false, true, true, false},
    {"phi3", "phi3", 4096, 0, false, false, false, true},
    {"smollm3", "smollm3", 32768, 0, false, false, false, false},
};

/* SmolLM3's NoPE layers: no_rope_layer_interval (default 4) makes every
 * interval-th layer skip RoPE; an explicit no_rope_layers list (1 = rotate)
 * must follow that pattern (llama.cpp can express nothing else). */
static int parse_nope(const cfg_ctx *c, const hf_arch *a, zc_hf_config *h) {
    if (strcmp(a->model_type, "smollm3") != 0) return ZC_OK;
    int rc = get_int(c, "no_rope_layer_interval", 1, 4096, 4, &h->nope_interval);
    const zc_json *list = zc_json_get(c->root, "no_rope_layers");
    if (rc || !list || list->type == ZC_JSON_NULL) return rc;
    bool ok = list->type == ZC_JSON_ARRAY && (int)list->len == h->n_layers;
    for (int l = 0; ok && l < h->n_layers; l++) {
        int64_t v;
        ok = zc_json_int(&list->items[l], &v) && v == ((l + 1) % h->nope_interval != 0);
    }
    if (!ok)
        return zc_error(ZC_ERR_UNSUPPORTED, "%s: no_rope_layers is not every %d-th layer (num_hidden_layers %d), the "
                        "only NoPE pattern supported (config)", c->src, h->nope_interval, h->n_layers);
    return ZC_OK;
}

/* Local attention. mistral, phi3: sliding_window (null = none) on every layer.
 * gemma3: sliding_window (default 4096) on all layers but every
 * sliding_window_pattern-th (default 6), which are global; the local ones
 * rotate with rope_local_base_freq (default 10000). qwen2/qwen3 configs
 * carry a sliding_window that only counts with use_sliding_window, which
 * no released model sets: refused rather than run wrong. */
static int parse_window(const cfg_ctx *c, const hf_arch *a, zc_hf_config *h) {
    bool use = strcmp(a->model_type, "mistral") == 0 || a->gemma || a->fused;
    if (!use) {
        bool on = false;
        int rc = get_bool(c, "use_sliding_window", false, &on);
        if (rc) return rc;
        if (on)
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: use_sliding_window is not supported for %s (config)", c->src,
                            a->model_type);
        return ZC_OK;
    }
    int rc = get_int(c, "sliding_window", 0, HF_MAX_DIM, a->gemma ? 4096 : 0, &h->sliding_window);
    if (!rc && a->gemma) rc = get_int(c, "sliding_window_pattern", 1, 4096, 6, &h->swa_pattern);
    if (!rc && a->gemma) rc = get_num(c, c->root, "rope_local_base_freq", 10000.0, &h->rope_local_theta);
    if (!rc && a->gemma) rc = get_num(c, c->root, "query_pre_attn_scalar", h->head_dim, &h->query_pre_attn_scalar);
    return rc;
}

int zc_hf_config_parse(const char *json, size_t len, const char *source, zc_hf_config *out) {
    memset(out, 0, sizeof *out);
    zc_json_doc *doc;
    const zc_json *root;
    int rc = zc_json_parse(json, len, source, &doc, &root);
    if (rc) return rc;
    cfg_ctx c = {root, source};
    zc_hf_config *h = out;
    const char *mt = zc_json_str(zc_json_get(root, "model_type"));
    if (root->type != ZC_JSON_OBJECT || !mt) {
        rc = zc_error(ZC_ERR_FORMAT, "%s: missing string 'model_type' (config)", source);
        goto out;
    }
    const hf_arch *a = NULL;
    for (size_t i = 0; i < sizeof HF_ARCHS / sizeof HF_ARCHS[0]; i++)
        if (strcmp(mt, HF_ARCHS[i].model_type) == 0) a = &HF_ARCHS[i];
    if (!a) {
        rc = zc_error(ZC_ERR_UNSUPPORTED, "%s: model_type '%.32s' is not supported (" ZC_HF_MODEL_TYPES ") (config)",
                      source, mt);
        goto out;
    }
    snprintf(h->arch, sizeof h->arch, "%s", a->arch);
    h->qk_norm = a->qk_norm;
    h->gemma = a->gemma;
    h->fused = a->fused;
    h->rope_linear = 1.0f;
    h->rope_attn_factor = 1.0f;
    int def_head_dim = a->head_dim ? a->head_dim : 0;
    if ((rc = get_int(&c, "hidden_size", 1, HF_MAX_DIM, -1, &h->n_embd)) ||
        (rc = get_int(&c, "num_hidden_layers", 1, 4096, -1, &h->n_layers)) ||
        (rc = get_int(&c, "num_attention_heads", 1, 65536, -1, &h->n_heads)) ||
        (rc = get_int(&c, "num_key_value_heads", 1, 65536, h->n_heads, &h->n_kv_heads)) ||
        (rc = get_int(&c, "head_dim", 1, 65536, def_head_dim ? def_head_dim : h->n_embd / h->n_heads, &h->head_dim)) ||
        (rc = get_int(&c, "intermediate_size", 1, HF_MAX_DIM, -1, &h->n_ff)) ||
        (rc = get_int(&c, "vocab_size", 1, HF_MAX_DIM, -1, &h->n_vocab)) ||
        (rc = get_int(&c, "max_position_embeddings", 1, HF_MAX_DIM, a->max_pos, &h->max_pos)) ||
        (rc = get_num(&c, root, "rope_theta", 10000.0, &h->rope_theta)) ||
        (rc = get_num(&c, root, "rms_norm_eps", 1e-6, &h->rms_eps)) ||
        (rc = get_bool(&c, "tie_word_embeddings", a->gemma, &h->tie_word_embeddings)) ||
        (rc = get_bool(&c, "attention_bias", a->bias, &h->attention_bias)) || (rc = parse_rope_scaling(&c, h)) ||
        (rc = parse_special_ids(&c, h)) || (rc = parse_window(&c, a, h)) || (rc = parse_partial_rotary(&c, h)) ||
        (rc = parse_longrope(&c, h)) || (rc = parse_nope(&c, a, h)))
        goto out;
    if (a->bias) h->attention_bias = true; /* Qwen2's q/k/v always carry biases */
    if (h->rope_yarn && !h->rope_orig_ctx) h->rope_orig_ctx = h->max_pos;
    if (!zc_json_get(root, "head_dim") && !def_head_dim && h->n_embd % h->n_heads != 0)
        rc = zc_error(ZC_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d (config)", source,
                      h->n_embd, h->n_heads);
    else if (h->n_heads % h->n_kv_heads != 0)
        rc = zc_error(ZC_ERR_FORMAT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d (config)",
                      source, h->n_heads, h->n_kv_heads);
    else if (h->head_dim % 2 != 0)
        rc = zc_error(ZC_ERR_FORMAT, "%s: head_dim %d is odd, RoPE needs pairs (config)", source, h->head_dim);
out:
    zc_json_free(doc);
    return rc;
}

int zc_hf_config_load(const char *path, zc_hf_config *out) {
    char *text;
    size_t len;
    int rc = zc_read_file(path, HF_MAX_CONFIG, &text, &len);
    if (rc) return rc;
    rc = zc_hf_config_parse(text, len, path, out);
    free(text);
    return rc;
}

int zc_hf_source_open(const char *dir, zc_hf_source **out) {
    *out = NULL;
    zc_hf_source *s = zc_calloc(1, sizeof *s);
    if (!s) return ZC_ERR_NOMEM;
    char cfg[4096 + 16];
    int rc = ZC_OK;
    if ((size_t)snprintf(s->dir, sizeof s->dir, "%s", dir) >= sizeof s->dir)
        rc = zc_error(ZC_ERR_ARG, "%s: path too long", dir);
    if (!rc) {
        snprintf(cfg, sizeof cfg, "%s/config.json", dir);
        rc = zc_hf_config_load(cfg, &s->config);
    }
    if (!rc) rc = zc_st_open_dir(dir, &s->st);
    if (rc) {
        zc_hf_source_free(s);
        return rc;
    }
    *out = s;
    return ZC_OK;
}

void zc_hf_source_free(zc_hf_source *src) {
    if (!src) return;
    zc_st_close(src->st);
    free(src);
}

void zc_hf_llama3_rope_freqs(const zc_hf_config *c, float *out) {
    /* Same arithmetic as llama.cpp's convert_hf_to_gguf.py: frequencies in
     * float32 (as torch computes them), the rest in double. */
    int half = c->head_dim / 2;
    double low_wavelen = c->rope_orig_ctx / (double)c->rope_low_freq_factor;
    double high_wavelen = c->rope_orig_ctx / (double)c->rope_high_freq_factor;
    for (int i = 0; i < half; i++) {
        float freq = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
        double wavelen = 2.0 * M_PI / freq;
        if (wavelen < high_wavelen) {
            out[i] = 1.0f;
        } else if (wavelen > low_wavelen) {
            out[i] = c->rope_factor;
        } else {
            double smooth = (c->rope_orig_ctx / wavelen - c->rope_low_freq_factor) /
                            (c->rope_high_freq_factor - c->rope_low_freq_factor);
            out[i] = (float)(1.0 / ((1.0 - smooth) / c->rope_factor + smooth));
        }
    }
}

int zc_hf_config_write_gguf(const zc_hf_config *c, const char *name, zc_gguf_writer *w) {
    const struct {
        const char *suffix;
        uint32_t v;
    } u32s[] = {
        {"block_count", (uint32_t)c->n_layers},
        {"context_length", (uint32_t)c->max_pos},
        {"embedding_length", (uint32_t)c->n_embd},
        {"feed_forward_length", (uint32_t)c->n_ff},
        {"attention.head_count", (uint32_t)c->n_heads},
        {"attention.head_count_kv", (uint32_t)c->n_kv_heads},
        {"vocab_size", (uint32_t)c->n_vocab},
        {"rope.dimension_count", (uint32_t)(c->n_rot ? c->n_rot : c->head_dim)},
        /* last two: only for an explicit head_dim, as llama.cpp writes them */
        {"attention.key_length", (uint32_t)c->head_dim},
        {"attention.value_length", (uint32_t)c->head_dim},
    };
    bool explicit_head_dim = c->head_dim * c->n_heads != c->n_embd;
    size_t n_u32 = sizeof u32s / sizeof u32s[0] - (explicit_head_dim ? 0 : 2);
    char key[96];
    int rc = zc_gguf_set_str(w, "general.architecture", c->arch);
    if (!rc) rc = zc_gguf_set_str(w, "general.name", name);
    for (size_t i = 0; i < n_u32 && !rc; i++) {
        snprintf(key, sizeof key, "%s.%s", c->arch, u32s[i].suffix);
        rc = zc_gguf_set_u32(w, key, u32s[i].v);
    }
    if (!rc) {
        snprintf(key, sizeof key, "%s.rope.freq_base", c->arch);
        rc = zc_gguf_set_f32(w, key, c->rope_theta);
    }
    if (!rc) {
        snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", c->arch);
        rc = zc_gguf_set_f32(w, key, c->rms_eps);
    }
    /* Local attention, as llama.cpp reads it: the window, the pattern
     * (gemma3; its loader defaults to 6 and a local base of 10000), the
     * local RoPE base. query_pre_attn_scalar has no llama.cpp key (it uses
     * head_dim for every gemma3 but 27B): written under our own name only
     * when it differs. */
    if (!rc && c->sliding_window) {
        snprintf(key, sizeof key, "%s.attention.sliding_window", c->arch);
        rc = zc_gguf_set_u32(w, key, (uint32_t)c->sliding_window);
        if (!rc && c->gemma) {
            snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", c->arch);
            rc = zc_gguf_set_u32(w, key, (uint32_t)c->swa_pattern);
        }
        if (!rc && c->rope_local_theta > 0) {
            snprintf(key, sizeof key, "%s.rope.freq_base_swa", c->arch);
            rc = zc_gguf_set_f32(w, key, c->rope_local_theta);
        }
    }
    if (!rc && c->query_pre_attn_scalar > 0 && c->query_pre_attn_scalar != (float)c->head_dim) {
        snprintf(key, sizeof key, "%s.attention.query_pre_attn_scalar", c->arch);
        rc = zc_gguf_set_f32(w, key, c->query_pre_attn_scalar);
    }
    if (!rc && c->nope_interval && c->nope_interval != 4) { /* llama.cpp hard-codes 4 */
        snprintf(key, sizeof key, "%s.no_rope_layer_step", c->arch);
        rc = zc_gguf_set_u32(w, key, (uint32_t)c->nope_interval);
    }
    if (!rc && c->rope_longrope) { /* the factors are tensors: rope_factors_long/short.weight */
        snprintf(key, sizeof key, "%s.rope.scaling.attn_factor", c->arch);
        rc = zc_gguf_set_f32(w, key, c->rope_attn_factor);
        snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", c->arch);
        if (!rc) rc = zc_gguf_set_u32(w, key, (uint32_t)c->rope_orig_ctx);
    }
    if (!rc && c->rope_yarn) { /* as llama.cpp's converter names them */
        snprintf(key, sizeof key, "%s.rope.scaling.type", c->arch);
        rc = zc_gguf_set_str(w, key, "yarn");
        const struct {
            const char *suffix;
            float v;
        } f32s[] = {{"rope.scaling.factor", c->rope_yarn_factor},
                    {"rope.scaling.yarn_beta_fast", c->rope_yarn_beta_fast},
                    {"rope.scaling.yarn_beta_slow", c->rope_yarn_beta_slow},
                    {"rope.scaling.attn_factor", c->rope_attn_factor}};
        for (size_t i = 0; i < sizeof f32s / sizeof f32s[0] && !rc; i++) {
            snprintf(key, sizeof key, "%s.%s", c->arch, f32s[i].suffix);
            rc = zc_gguf_set_f32(w, key, f32s[i].v);
        }
        snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", c->arch);
        if (!rc) rc = zc_gguf_set_u32(w, key, (uint32_t)c->rope_orig_ctx);
    }
    if (!rc && c->rope_linear > 1) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", c->arch);
        rc = zc_gguf_set_str(w, key, "linear");
        snprintf(key, sizeof key, "%s.rope.scaling.factor", c->arch);
        if (!rc) rc = zc_gguf_set_f32(w, key, c->rope_linear);
    }
    return rc;
}
