/* A loaded model: hyperparameters, weights and tokenizer (the struct behind
 * the public zc_model handle), and the forward pass that uses them.
 *
 * Weights are used in place: every zc_mat points into the mapped GGUF or
 * safetensors file. Only 1-D tensors (norm weights, biases, RoPE factors)
 * stored as f16/bf16 are converted into owned fp32 copies.
 *
 * RoPE. GGUF llama files rotate adjacent channel pairs (2i, 2i+1): the
 * converter permuted the Q/K rows of the original checkpoint for that.
 * Hugging Face llama checkpoints keep the original "rotate-half" order,
 * pairing channel i with i + n_rot/2, which is exactly NeoX-style RoPE. So
 * instead of permuting the HF Q/K weights at load time we run NeoX-style
 * rotation on them: the attention scores are identical (the permutation
 * applies to q and k alike), the weights stay mapped, and the cache simply
 * sees the keys in rotate-half channel order. qwen2, qwen3, gemma3 and phi3
 * are NeoX-style in both formats; smollm3 GGUF files are permuted like
 * llama's.
 */
#ifndef ZC_MODEL_MODEL_H
#define ZC_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/matmul.h"
#include "kv/kv.h"
#include "model/tokenizer.h"
#include "zipcache.h"

typedef enum {
    ZC_ROPE_ADJACENT = 0, /* pairs (2i, 2i+1): GGUF llama */
    ZC_ROPE_NEOX = 1,     /* pairs (i, i + n_rot/2): qwen2, HF llama */
} zc_rope_style;

typedef struct {
    const float *attn_norm;      /* [n_embd] */
    zc_mat wq;                   /* [n_heads*head_dim][n_embd] */
    zc_mat wk, wv;               /* [n_kv_heads*head_dim][n_embd] */
    const float *bq, *bk, *bv;   /* biases of q, k, v (qwen2) or NULL */
    const float *q_norm, *k_norm; /* [head_dim] per-head RMSNorm weights of q and k before RoPE (qwen3) or NULL */
    const float *post_attn_norm; /* [n_embd] RMSNorm of the attention output before the residual (gemma3) or NULL */
    const float *post_ffn_norm;  /* [n_embd] likewise for the MLP output (gemma3) or NULL */
    bool local_rope;             /* rotates with the local tables (gemma3 sliding-window layers) */
    bool no_rope;                /* NoPE layer: q and k not rotated (smollm3: every 4th) */
    zc_mat wo;                   /* [n_embd][n_heads*head_dim] */
    const float *ffn_norm;       /* [n_embd] */
    zc_mat w_gate, w_up;         /* [n_ff][n_embd] */
    zc_mat w_down;               /* [n_embd][n_ff] */
} zc_layer;

struct zc_gguf;
struct zc_hf_source;

struct zc_model {
    zc_model_info info;
    char path[1024];
    char arch[16];
    zc_rope_style rope_style;
    bool qk_norm;                /* layers have q_norm/k_norm (qwen3, gemma3) */
    bool gemma;                  /* gemma3: post-norms, GELU-tanh gate, HF norm weights stored as w - 1 */
    bool fused;                  /* phi3: one QKV and one gate+up matrix, bound as row views (wq/wk/wv, w_gate/w_up) */
    float embd_scale;            /* embedding rows multiplied by this (gemma3: sqrt(n_embd); else 1) */
    float q_scale;               /* q multiplied by this before attention, which scales by 1/sqrt(head_dim):
                                    sqrt(head_dim / query_pre_attn_scalar) (gemma3; else 1) */
    float rope_mscale;           /* cos and sin of the rotated channels scaled by this (the LongRoPE / YaRN
                                    attention factor; else 1) */
    int *window;                 /* [n_layers] sliding window per layer, 0 = global; NULL: none
                                    (zc_kv_create_windowed) */
    float rope_base_local;       /* RoPE base of local_rope layers (no linear scaling, no factors); 0 = none */
    int n_rot;                   /* channels rotated per head (even, <= head_dim) */
    const float *rope_freqs;     /* [n_rot/2] frequency divisors (Llama 3 scaling) or NULL */
    const float *rope_long, *rope_short; /* [n_rot/2] LongRoPE divisors (phi3): long when the context exceeds
                                            rope_orig_ctx (as llama.cpp chooses), else short; or NULL */
    int rope_orig_ctx;           /* LongRoPE / YaRN: the context the model was trained at */
    float yarn_factor;           /* YaRN (0 = none): interpolation factor, ramp between the dimensions of */
    float yarn_beta_fast, yarn_beta_slow; /* beta_fast and beta_slow rotations over rope_orig_ctx; cos and sin
                                             scaled by rope_mscale */
    float rope_linear;           /* linear RoPE scaling: positions divided by this (1 = none) */
    zc_mat tok_embd;             /* [n_vocab][n_embd] */
    zc_layer *layers;            /* [n_layers] */
    const float *out_norm;       /* [n_embd] */
    zc_mat output;               /* [n_vocab][n_embd]; the embedding when tied */
    zc_tokenizer *tok;
    struct zc_gguf *gguf;        /* the GGUF file, or NULL */
    struct zc_hf_source *hf;     /* the HF checkpoint, or NULL */
    void **owned;                /* converted tensors, freed with the model */
    int n_owned;
};

/* A context: one sequence, its KV cache and the activations of one batch
 * of up to n_batch tokens, all allocated at creation (forward.c). */
struct zc_context {
    const zc_model *m;
    int n_ctx, n_batch;
    int pos;                     /* tokens processed = next position */
    zc_pool *pool;
    zc_kv_config kv_cfg;
    zc_kv_cache *kv;
    zc_observer_fn observer;
    void *observer_user;
    zc_abort_fn abort_callback;
    void *abort_user;
    /* Activations for one batch of n <= n_batch tokens: */
    float *x;                    /* [n_batch][n_embd] residual stream */
    float *xb;                   /* [n_batch][n_embd] normed input of a sublayer, then its output */
    float *q;                    /* [n_batch][n_heads*head_dim] queries */
    float *k, *v;                /* [n_batch][n_kv_heads*head_dim] new keys and values */
    float *att;                  /* [n_batch][n_heads*head_dim] attention output */
    float *hb, *hb2;             /* [n_batch][n_ff] FFN gate and up */
    double *inv_freq;            /* [n_rot/2] RoPE angle per position of each channel pair */
    float *rope_cos, *rope_sin;  /* [n_batch][n_rot/2] per position of the batch */
    double *inv_freq_local;      /* [n_rot/2] as inv_freq, for local_rope layers (NULL without them) */
    float *rope_cos_local, *rope_sin_local; /* [n_batch][n_rot/2] likewise */
    zc_matmul_scratch mm;
    size_t act_bytes;            /* bytes of the activation buffers above */
    /* Sequences 1..n_seq-1 (api.c, zc_context_set_n_seq); sequence 0 is kv and pos above.
     * n_seq 0 means 1 (a context as created). */
    int n_seq;
    zc_kv_cache **seq_kv;        /* [n_seq], [0] unused */
    int *seq_pos;                /* [n_seq], [0] unused */
};

/* Sequence s's cache and position (s < n_seq). */
static inline zc_kv_cache *zc_ctx_seq_kv(const zc_context *c, int s) { return s == 0 ? c->kv : c->seq_kv[s]; }
static inline int zc_ctx_seq_pos(const zc_context *c, int s) { return s == 0 ? c->pos : c->seq_pos[s]; }
static inline void zc_ctx_seq_advance(zc_context *c, int s, int n) {
    if (s == 0)
        c->pos += n;
    else
        c->seq_pos[s] += n;
}
/* Free sequences 1.. (zc_context_free). */
void zc_context_seqs_free(zc_context *c);
/* The --kv-budget over all sequences together: ZC_ERR_LIMIT (processing
 * nothing) if the caches' bytes plus n_add[i] (NULL: 1) tokens of sequence seqs[i], at
 * that sequence's average bytes per token (fp16 size when empty), would
 * exceed kv_cfg.budget_bytes. */
int zc_ctx_check_budget(const zc_context *c, int count, const int *seqs, const int *n_add);

#endif
