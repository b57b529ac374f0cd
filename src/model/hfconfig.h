/* Hugging Face checkpoints: config.json hyperparameters (ZC_HF_MODEL_TYPES) and
 * the checkpoint directory as one source (config + safetensors weights). */
#ifndef ZC_MODEL_HFCONFIG_H
#define ZC_MODEL_HFCONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "model/gguf.h"
#include "model/safetensors.h"

#define ZC_HF_MAX_EOS 8
#define ZC_HF_MAX_ROPE_FACTORS 256 /* longrope factors: n_rot/2 of them, n_rot <= 512 */
/* The model_type values config.json may name, for messages. */
#define ZC_HF_MODEL_TYPES "llama, mistral, qwen2, qwen3, gemma3_text, phi3, smollm3"

typedef struct {
    char arch[16];          /* GGUF architecture: "llama", "qwen2", "qwen3", "gemma3", "phi3", "smollm3" (from model_type) */
    int n_layers;           /* num_hidden_layers */
    int n_embd;             /* hidden_size */
    int n_heads;            /* num_attention_heads */
    int n_kv_heads;         /* num_key_value_heads (default n_heads) */
    int head_dim;           /* head_dim (default n_embd / n_heads) */
    int n_ff;               /* intermediate_size */
    int n_vocab;            /* vocab_size */
    int max_pos;            /* max_position_embeddings */
    float rope_theta;       /* default 10000 */
    float rms_eps;          /* rms_norm_eps, default 1e-6 */
    bool attention_bias;    /* q/k/v projections have biases: qwen2 always, llama if attention_bias */
    bool qk_norm;           /* per-head RMSNorm of q and k before RoPE (qwen3, gemma3: q_norm, k_norm [head_dim]) */
    bool gemma;             /* gemma3: embedding * sqrt(n_embd), RMSNorm by (1 + w), norms after attention and
                               MLP too (pre_feedforward_layernorm is the FFN norm), GELU-tanh gate */
    int sliding_window;     /* keys a local layer's query sees, itself included (0 = no local layers) */
    int swa_pattern;        /* with a window: every swa_pattern-th layer is global (gemma3: 6); 0 = all local */
    float rope_local_theta; /* RoPE base of the local layers (gemma3 rope_local_base_freq; 0 = rope_theta) */
    float query_pre_attn_scalar; /* gemma3: scores scaled by its^-1/2 instead of head_dim^-1/2 (0 = head_dim) */
    float rope_linear;      /* rope_scaling linear: positions divided by it (1 = none; gemma3: global layers) */
    int n_rot;              /* rotated channels per head: head_dim * partial_rotary_factor (phi3), else head_dim */
    int nope_interval;      /* smollm3: every nope_interval-th layer skips RoPE (NoPE); 0 = all rotate */
    bool fused;             /* phi3: qkv_proj [(heads + 2 kv_heads) * head_dim] and gate_up_proj [2 n_ff] */
    /* rope_scaling {"rope_type": "longrope" (or "su"), "long_factor", "short_factor"}: frequency divisors
     * [n_rot/2] for contexts above / up to rope_orig_ctx, cos and sin scaled by rope_attn_factor. */
    bool rope_longrope;
    float rope_long[ZC_HF_MAX_ROPE_FACTORS], rope_short[ZC_HF_MAX_ROPE_FACTORS];
    float rope_attn_factor;
    /* rope_scaling {"rope_type": "yarn", "factor", "original_max_position_embeddings" (rope_orig_ctx),
     * "beta_fast" 32, "beta_slow" 1, "attention_factor" (default 0.1 ln(factor) + 1, into rope_attn_factor)} */
    bool rope_yarn;
    float rope_yarn_factor, rope_yarn_beta_fast, rope_yarn_beta_slow;
    bool tie_word_embeddings;
    /* rope_scaling {"rope_type": "llama3", ...}; other scaling types are refused. */
    bool rope_llama3;
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_ctx;      /* original_max_position_embeddings */
    int bos_id;             /* -1 if absent */
    int eos_ids[ZC_HF_MAX_EOS]; /* eos_token_id (an int or a list) */
    int n_eos;
} zc_hf_config;

/* Parse config.json text; `source` names it in messages. ZC_ERR_FORMAT for
 * missing/ill-typed/out-of-range fields, ZC_ERR_UNSUPPORTED for other
 * model types or rope scaling types. */
int zc_hf_config_parse(const char *json, size_t len, const char *source, zc_hf_config *out);
/* Read and parse a config.json file. */
int zc_hf_config_load(const char *path, zc_hf_config *out);

/* Write the GGUF architecture metadata of c as llama.cpp names it:
 * general.architecture, general.name, <arch>.block_count, context_length,
 * embedding_length, feed_forward_length, attention.head_count(_kv),
 * rope.freq_base, attention.layer_norm_rms_epsilon, vocab_size,
 * rope.dimension_count (+ attention.key_length/value_length when head_dim
 * is not n_embd/n_heads), sliding-window and rope-scaling keys. Used by
 * convert and synth. (Tensors such as longrope factors are the caller's.) */
int zc_hf_config_write_gguf(const zc_hf_config *c, const char *name, zc_gguf_writer *w);

/* A checkpoint directory: config.json + model.safetensors(.index.json). */
typedef struct zc_hf_source {
    char dir[4096];
    zc_hf_config config;
    zc_safetensors *st;
} zc_hf_source;

int zc_hf_source_open(const char *dir, zc_hf_source **out);
void zc_hf_source_free(zc_hf_source *src);

/* llama.cpp's Llama 3 RoPE frequency factors (the GGUF rope_freqs tensor):
 * for each of the head_dim/2 rotary frequencies f_i = theta^(-2i/head_dim),
 * wavelength w = 2*pi/f_i: factor 1 when w < orig_ctx/high_freq_factor,
 * rope_factor when w > orig_ctx/low_freq_factor, else 1/((1-s)/factor + s)
 * with s = (orig_ctx/w - low)/(high - low). Positions are divided by them. */
void zc_hf_llama3_rope_freqs(const zc_hf_config *c, float *out /* [head_dim/2] */);

#endif
