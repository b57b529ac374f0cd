/* zipcache: run Llama-family language models on the CPU with a compressed
 * (ZipCache) KV cache. This header is the whole public API: a program needs
 * nothing else (`pkg-config --cflags --libs zipcache`); examples/simple.c is
 * a complete program.
 *
 * Conventions for the whole API:
 *  - Functions that can fail return int: ZC_OK (0) on success or a negative
 *    ZC_ERR_* code. zc_last_error() then holds a one-line reason naming the
 *    file (if any) and the problem. The message is per thread.
 *  - Handles are opaque; every create or load function has a matching free function, and the
 *    free functions accept NULL.
 *  - Parameter structs are filled by their *_default function first, then
 *    changed field by field, so that fields added later keep their defaults.
 *
 * Threads (the contract):
 *  - A zc_model is immutable after zc_model_load: any number of threads may
 *    use one model at once (tokenize, detokenize, info, contexts on it).
 *  - A zc_context (and its KV cache) and a zc_sampler are used by one thread
 *    at a time: calls on the same context must not overlap; different
 *    contexts may run concurrently. A context runs its own thread pool
 *    (n_threads) inside zc_decode; callbacks (observer, abort) are called
 *    on the thread that called zc_decode.
 *  - The error state (zc_last_error) is per thread.
 *  - No function of this header keeps global mutable state besides the
 *    CPU feature detection, which is done once and is thread-safe (the
 *    error message is per thread, see above).
 */
#ifndef ZIPCACHE_H
#define ZIPCACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Functions the shared library exports; everything else is hidden
 * (the library is built with -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define ZC_API __attribute__((visibility("default")))
#else
#define ZC_API
#endif

/* ---- Version ------------------------------------------------------------ */
#define ZC_VERSION_MAJOR 0
#define ZC_VERSION_MINOR 12
#define ZC_VERSION_PATCH 0
#define ZC_VERSION_NUMBER (ZC_VERSION_MAJOR * 10000 + ZC_VERSION_MINOR * 100 + ZC_VERSION_PATCH)
/* The library's version as "MAJOR.MINOR.PATCH" (compare with the macros to
 * detect a header/library mismatch) and as ZC_VERSION_NUMBER. */
ZC_API const char *zc_version(void);
ZC_API int zc_version_number(void);

/* ---- Error codes -------------------------------------------------------- */
enum {
    ZC_OK = 0,
    ZC_ERR_IO = -1,          /* a file could not be opened, read or written */
    ZC_ERR_FORMAT = -2,      /* a file's contents are malformed or inconsistent */
    ZC_ERR_UNSUPPORTED = -3, /* valid input that this build does not handle */
    ZC_ERR_NOMEM = -4,       /* an allocation failed */
    ZC_ERR_ARG = -5,         /* a caller passed an invalid argument or option */
    ZC_ERR_LIMIT = -6,       /* a size, count or budget limit was exceeded */
    ZC_ERR_ABORTED = -7,     /* a progress or abort callback asked to stop */
};

/* The reason for the most recent failure on this thread ("no error" if none). */
ZC_API const char *zc_last_error(void);
/* The code passed with the most recent failure on this thread. */
ZC_API int zc_last_error_code(void);
/* Reset the thread's error state. */
ZC_API void zc_clear_error(void);
/* A short fixed description of an error code. */
ZC_API const char *zc_strerror(int code);

/* ---- Models ------------------------------------------------------------- */
/* A loaded model: hyperparameters, memory-mapped weights and its tokenizer.
 * Immutable after loading, so one model can serve several contexts. */
typedef struct zc_model zc_model;

/* Read-only facts about a loaded model. */
typedef struct {
    const char *arch;        /* "llama" or "qwen2" */
    const char *format;      /* "gguf" or "hf" (config.json + safetensors) */
    int n_layers;
    int n_embd;              /* hidden size */
    int n_ff;                /* feed-forward size */
    int n_heads, n_kv_heads; /* query heads, key/value heads (GQA when fewer) */
    int head_dim;
    int n_vocab;
    int n_ctx_train;         /* context length the file declares */
    float rope_base;
    float norm_eps;
    int weight_type;         /* ggml type id of the attention/FFN weights (the most common one) */
    const char *weight_type_name;
    int64_t n_params;        /* scalars in the weights the engine uses */
    size_t weight_bytes;     /* bytes of those weights */
    size_t mapped_bytes;     /* bytes mapped read-only (GGUF: the file; HF: the tensors), in the page cache */
    size_t resident_bytes;   /* weight bytes the engine holds in its own memory (converted tensors and
                                repacked matrices) */
    size_t repacked_bytes;   /* of those, the matrices repacked for the CPU's GEMM (zc_model_params.repack);
                                their mapped originals are released */
    int bos, eos;            /* token ids, -1 if none */
    int add_bos;             /* 1 if prompts start with BOS by default */
} zc_model_info;

/* Load a model from a GGUF file or a Hugging Face directory (config.json,
 * *.safetensors, tokenizer.json). Weights are mapped, not copied, when the
 * engine can compute with their type. Every tensor's presence, type and
 * shape is checked against the hyperparameters.
 * Errors: ZC_ERR_IO (cannot open), ZC_ERR_FORMAT (malformed file, missing or
 * mis-shaped tensor, missing tokenizer, absurd hyperparameters),
 * ZC_ERR_UNSUPPORTED (unknown architecture or weight type), ZC_ERR_NOMEM. */
ZC_API int zc_model_load(const char *path, zc_model **out);

/* Called on the loading thread with a fraction in [0, 1]: 0 first, 1 last,
 * and with use_mmap 0 the fraction of the weight file being read after each
 * 16 MiB (a sharded checkpoint goes 0..1 once per shard). Return nonzero to
 * stop: the load then fails with ZC_ERR_ABORTED and frees what it had. */
typedef int (*zc_progress_fn)(float fraction, void *user);

typedef struct {
    int use_mmap;            /* 1 (default): map the weight files; 0: read them into memory (files
                                on slow or network storage; zc_model_info.mapped_bytes then counts
                                the bytes read) */
    zc_progress_fn progress; /* optional */
    void *progress_user;
    int repack;              /* 1 (default): q8_0, q4_0, q4_K, f16 and bf16 matrices are copied at load
                                into the layout of the AVX-512 GEMM on CPUs with AVX-512 VNNI (3-4.5x
                                the prefill GEMM throughput, decode as fast or faster; quantized types
                                give the scalar kernels' bits; the mapped originals are released);
                                0: used in place */
} zc_model_params;

/* Defaults: use_mmap 1, repack 1, no progress callback. */
ZC_API void zc_model_params_default(zc_model_params *p);
/* zc_model_load with parameters (p NULL = the defaults). Errors: those of
 * zc_model_load, ZC_ERR_ABORTED. */
ZC_API int zc_model_load_params(const char *path, const zc_model_params *p, zc_model **out);
ZC_API void zc_model_free(zc_model *m);
/* Never NULL for a loaded model; valid until zc_model_free. */
ZC_API const zc_model_info *zc_model_get_info(const zc_model *m);

/* Tokens of `len` bytes of text. add_bos: prepend BOS (pass info->add_bos
 * for the model's default); parse_special: match special-token texts such
 * as "<|start_story|>". *ids is malloc'ed (caller frees); *n_ids its count.
 * Errors: the tokenizer's (ZC_ERR_NOMEM; ZC_ERR_LIMIT for a text too long). */
ZC_API int zc_model_tokenize(const zc_model *m, const char *text, size_t len, int add_bos, int parse_special,
                      int32_t **ids, int *n_ids);

/* Streaming detokenizer state: holds back the bytes of a UTF-8 character
 * split across tokens. Initialize with zc_detok_init before the first token. */
typedef struct {
    char pending[8];
    int n_pending;
    int at_start;
} zc_detok;
ZC_API void zc_detok_init(zc_detok *d);
/* Append the text of token `id` to out (cap bytes), *len receives the bytes
 * written (only complete UTF-8 characters). Errors: ZC_ERR_ARG (id outside
 * the vocab), ZC_ERR_LIMIT (cap too small: nothing written, state unchanged,
 * so the call can be repeated with a larger buffer). */
ZC_API int zc_detokenize(const zc_model *m, zc_detok *d, int32_t id, char *out, size_t cap, size_t *len);
/* At the end of a stream: a character left unfinished becomes U+FFFD
 * (3 bytes; cap >= 3). Errors: ZC_ERR_LIMIT. */
ZC_API int zc_detok_flush(zc_detok *d, char *out, size_t cap, size_t *len);
/* Whether generation should stop after token `id` (EOS, end of turn...). */
ZC_API int zc_model_is_eog(const zc_model *m, int32_t id);

/* ---- KV cache policies ---------------------------------------------------- */
/* A context's KV cache is chosen by a policy name and an option string in
 * the command line's syntax, e.g. policy "zipcache" with options
 * "--kv-bits 2.7 --kv-stream-gap 100" (or the same as "bits=2.7 stream-gap=100"):
 * space-separated; each option as "--kv-NAME VALUE", "--kv-NAME=VALUE" or
 * "NAME=VALUE". `zipcache --help` lists the options; each policy reads the
 * ones that apply to it. The default policy is "zipcache" (4/2-bit salient /
 * regular tokens, probe saliency, streaming compression every 100 tokens). */

/* Name of policy i (0, 1, ...), NULL past the last. */
ZC_API const char *zc_kv_policy_name(int i);
/* Check a policy and its options without creating anything; on success
 * writes a one-line description of the effective configuration into
 * desc (cap bytes; desc may be NULL). Errors: ZC_ERR_ARG (unknown policy,
 * unknown option, bad value; the message names it). */
ZC_API int zc_kv_describe(const char *policy, const char *options, char *desc, size_t cap);

/* Exact bytes held by a cache, by part. */
typedef struct zc_kv_usage {
    size_t codes;    /* quantized codes / raw K,V values */
    size_t params;   /* scales, zero points, channel normalizers */
    size_t window;   /* full-precision window awaiting compression */
    size_t index;    /* saliency bitmaps / index lists / position maps */
    size_t other;    /* anything else the policy holds */
    size_t total;    /* sum of the above */
    int64_t n_tokens;   /* tokens represented (per layer) */
    int64_t elements;   /* K+V scalars represented: 2 * n_tokens * layers * kv_heads * head_dim */
    int64_t n_compressions; /* times the policy compressed a window (streaming) */
} zc_kv_usage;

/* Compression ratio vs an fp16 cache holding the same tokens:
 * 16 * elements / (8 * total); 0 for an empty cache. */
ZC_API double zc_kv_ratio(const zc_kv_usage *u);
/* Stored bits per K/V element, everything counted; 0 for an empty cache. */
ZC_API double zc_kv_bits_per_element(const zc_kv_usage *u);

/* ---- Contexts (one sequence with its KV cache) -------------------------- */
typedef struct zc_context zc_context;
struct zc_kv_config; /* internal (src/kv/kv.h); see zc_context_params.kv */

/* Called by zc_decode before each batch of at most n_batch tokens; return
 * nonzero to stop: zc_decode then returns ZC_ERR_ABORTED, keeping the
 * batches already processed (zc_context_pos tells how far it got). */
typedef int (*zc_abort_fn)(void *user);

/* Called after RoPE in every layer of every zc_decode, for research code that
 * needs the real queries, keys and values: tokens pos..pos+n-1 of `layer`,
 * q [n][n_heads*head_dim], k and v [n][n_kv_heads*head_dim], valid only
 * during the call. Keys are in the layout the cache sees (for HF llama
 * weights the rotate-half channel order, see src/model/model.h). */
typedef void (*zc_observer_fn)(void *user, int layer, int pos, int n, const float *q, const float *k,
                               const float *v);

typedef struct {
    int n_ctx;            /* positions the context holds; 0 = the model's n_ctx_train. May exceed
                             n_ctx_train (callers should warn: quality may drop past it). */
    int n_threads;        /* threads of the context's pool; 0 = all cores */
    int n_batch;          /* most tokens one forward step processes (bounds scratch memory) */
    const char *kv_policy;  /* KV cache policy; NULL = "zipcache" */
    const char *kv_options; /* its options (see "KV cache policies"); NULL = none */
    const struct zc_kv_config *kv; /* for programs built inside the tree (src/kv/kv.h): a parsed
                                      configuration that replaces kv_policy/kv_options; NULL otherwise */
    zc_observer_fn observer;       /* optional, see above */
    void *observer_user;
    zc_abort_fn abort_callback;    /* optional, see above */
    void *abort_user;
} zc_context_params;

/* Defaults: n_ctx 0, n_threads 0, n_batch 512, kv_policy/kv_options/kv
 * NULL (zipcache with its defaults), no observer, no abort callback. */
ZC_API void zc_context_params_default(zc_context_params *p);
/* Create a context for `model` (which must outlive it): thread pool, KV
 * cache of the chosen policy, activations for n_batch tokens.
 * Errors: ZC_ERR_ARG (n_ctx outside [1, 2^24], n_batch < 1, unknown KV policy
 * or bad policy options, a policy that cannot serve the model's shape),
 * ZC_ERR_LIMIT or ZC_ERR_NOMEM (the cache or the activations do not fit). */
ZC_API int zc_context_create(const zc_model *model, const zc_context_params *p, zc_context **out);
ZC_API void zc_context_free(zc_context *c);

enum {
    ZC_LOGITS_NONE = 0, /* no logits (e.g. the prompt before the last chunk) */
    ZC_LOGITS_LAST = 1, /* logits of the last token: out[n_vocab] */
    ZC_LOGITS_ALL = 2,  /* logits of every token: out[n][n_vocab] (perplexity) */
};

/* Run the model over n tokens appended at the current position (batched in
 * chunks of n_batch; a prompt and a single decode step are the same call)
 * and write the logits asked for by logits_mode into `logits`.
 * Context rule: if position + n would exceed n_ctx, nothing is processed and
 * ZC_ERR_LIMIT is returned (callers stop generating there).
 * Budget rule (kv->budget_bytes, --kv-budget): if the cache's bytes plus n
 * tokens at its average bytes per token so far (fp16 size when empty) would
 * exceed the budget, nothing is processed and ZC_ERR_LIMIT is returned;
 * compressed policies reach it at later positions.
 * Errors: ZC_ERR_ARG (token id outside the vocab, n < 1, NULL logits when
 * asked for), ZC_ERR_LIMIT, ZC_ERR_NOMEM, ZC_ERR_ABORTED (the abort callback
 * asked to stop between batches), or an error of the KV policy. After
 * a failure inside the forward pass the partial batch is dropped from the
 * cache when the policy can truncate; otherwise the context must be reset. */
ZC_API int zc_decode(zc_context *c, const int32_t *tokens, int n, int logits_mode, float *logits);
/* Tokens processed so far (the next token's position). */
ZC_API int zc_context_pos(const zc_context *c);
ZC_API int zc_context_n_ctx(const zc_context *c);
/* Forget everything: position 0, empty cache. */
ZC_API int zc_context_reset(zc_context *c);
/* Bytes the KV cache holds, by part. */
ZC_API void zc_context_kv_usage(const zc_context *c, zc_kv_usage *u);
/* One line naming the context's KV policy and its effective options
 * (as zc_kv_describe writes it), truncated to cap bytes. */
ZC_API void zc_context_kv_describe(const zc_context *c, char *buf, size_t cap);

/* Memory of a context and its model, in bytes. */
typedef struct {
    size_t weights_mapped;   /* model files mapped read-only */
    size_t weights_resident; /* weights converted into engine memory */
    size_t kv;               /* the KV cache (details: zc_context_kv_usage) */
    size_t scratch;          /* activations and kernel scratch */
} zc_memory;
ZC_API void zc_context_memory(const zc_context *c, zc_memory *m);

/* ---- Sampling ----------------------------------------------------------- */
/* Chain in llama.cpp's order: repetition penalty over the last
 * repeat_last_n accepted tokens, top-k, top-p, min-p, temperature, then a
 * draw from the softmax. temp <= 0 means greedy (argmax after penalties). */
typedef struct {
    float temp;            /* default 0.8 */
    int top_k;             /* 0 = off; default 40 */
    float top_p;           /* 1 = off; default 0.95 */
    float min_p;           /* 0 = off; default 0.05 */
    float repeat_penalty;  /* 1 = off (default) */
    int repeat_last_n;     /* tokens the penalty looks back; default 64 */
    uint64_t seed;         /* same seed, same logits -> same tokens */
} zc_sampler_params;
typedef struct zc_sampler zc_sampler;

ZC_API void zc_sampler_params_default(zc_sampler_params *p);
/* Errors: ZC_ERR_ARG (n_vocab < 1, a parameter out of range), ZC_ERR_NOMEM. */
ZC_API int zc_sampler_create(const zc_sampler_params *p, int n_vocab, zc_sampler **out);
ZC_API void zc_sampler_free(zc_sampler *s);
/* Pick a token from logits[n_vocab] (not modified) and remember it for the
 * repetition penalty. */
ZC_API int32_t zc_sampler_sample(zc_sampler *s, const float *logits);
/* Remember a token that was not sampled (prompt tokens) for the penalty. */
ZC_API void zc_sampler_accept(zc_sampler *s, int32_t id);


/* ---- Sequences: several sessions in one context, truncation, save/restore --
 * A context holds n_seq independent sequences (1 as created). Each has its
 * own KV cache, of the context's policy and n_ctx, and its own position; all
 * share the model, the thread pool and the activation buffers, so calls on
 * one context must not run concurrently. Sequence 0 is the one zc_decode,
 * zc_context_pos, zc_context_reset and zc_context_kv_usage see. The KV
 * budget (kv->budget_bytes, --kv-budget) covers all sequences together in
 * zc_decode_seq and zc_decode_batch. */

/* Make the context hold n_seq sequences: new ones start empty, sequences
 * n_seq.. are freed (their tokens lost). Errors: ZC_ERR_ARG (n_seq outside
 * [1, 4096]), ZC_ERR_NOMEM / ZC_ERR_LIMIT (a cache cannot be created;
 * nothing changes then). */
ZC_API int zc_context_set_n_seq(zc_context *c, int n_seq);
ZC_API int zc_context_n_seq(const zc_context *c);
/* Tokens sequence `seq` holds (its next position), -1 if there is no such sequence. */
ZC_API int zc_seq_pos(const zc_context *c, int seq);
/* zc_decode on sequence `seq` (same rules; the budget check counts every
 * sequence's bytes). Errors: as zc_decode, ZC_ERR_ARG for a bad seq. */
ZC_API int zc_decode_seq(zc_context *c, int seq, const int32_t *tokens, int n, int logits_mode, float *logits);
/* One decode step of n sequences in one forward pass: token tokens[i] is
 * appended to sequence seqs[i] (all distinct) at its position, and the
 * logits of every row go to logits[n][n_vocab]. The weight products take the
 * n rows together, so a step of n sessions costs far less than n steps.
 * n <= the context's n_batch. Checks as zc_decode for every row, then the
 * budget for all rows together; on an error nothing is kept (the partial
 * step is dropped from every cache that can truncate).
 * Errors: ZC_ERR_ARG (n outside [1, n_batch], a bad or repeated sequence, a
 * token outside the vocab), ZC_ERR_LIMIT (a sequence is full, the budget),
 * ZC_ERR_NOMEM, or an error of the KV policy. */
ZC_API int zc_decode_batch(zc_context *c, int n, const int *seqs, const int32_t *tokens, float *logits);
/* Keep the first n_keep tokens of sequence `seq` (regenerate, edit, reuse a
 * prefix). Policies that compress or evict can only cut what they still hold
 * uncompressed (zipcache: inside its fp16 window; h2o: nothing): otherwise
 * ZC_ERR_UNSUPPORTED and the sequence is unchanged; n_keep 0 always works.
 * Errors: ZC_ERR_ARG (bad seq, n_keep outside [0, pos]), ZC_ERR_UNSUPPORTED. */
ZC_API int zc_seq_truncate(zc_context *c, int seq, int n_keep);
/* Bytes held by sequence seq's cache (ZC_ERR_ARG for a bad seq). */
ZC_API int zc_seq_kv_usage(const zc_context *c, int seq, struct zc_kv_usage *u);
/* Bytes held by the caches of all sequences together. */
ZC_API size_t zc_context_kv_bytes(const zc_context *c);

/* Save sequence `seq` with the n_tokens = zc_seq_pos tokens it holds
 * (tokens[n_tokens], given by the caller, who knows them; NULL when it holds
 * none) into a malloc'ed buffer (*buf, *len; caller frees). The format
 * (docs/SESSION-FORMAT.md) is versioned and checksummed: a header naming the
 * model (a fingerprint of its shape and embeddings), the cache's shape and
 * policy with its options, then the tokens and the cache's state exactly as
 * held in memory (compressed codes stay compressed), then a CRC-32.
 * Errors: ZC_ERR_ARG (bad seq, NULL tokens with tokens held),
 * ZC_ERR_UNSUPPORTED (a policy without save/load; every built-in one has
 * them), ZC_ERR_NOMEM. */
ZC_API int zc_seq_save(const zc_context *c, int seq, const int32_t *tokens, uint8_t **buf, size_t *len);
/* Replace sequence `seq` with the state in buf[len] and return its tokens
 * (*tokens malloc'ed, caller frees; NULL when none). The buffer is untrusted:
 * a truncated or corrupted buffer (checksum), another model, another cache
 * policy or options, or more tokens than the context holds are refused
 * with a message, and the sequence is left unchanged.
 * Errors: ZC_ERR_ARG (bad seq), ZC_ERR_FORMAT (truncated, corrupt, not a
 * session, another model, policy or options), ZC_ERR_UNSUPPORTED (another
 * format version), ZC_ERR_LIMIT (n_ctx too small, or the restored cache
 * would take all sequences over the KV budget), ZC_ERR_NOMEM. */
ZC_API int zc_seq_load(zc_context *c, int seq, const uint8_t *buf, size_t len, int32_t **tokens, int *n_tokens);
/* The same through a file (written whole to path.tmp, then renamed over
 * path). Errors: the above, ZC_ERR_IO naming the path. */
ZC_API int zc_seq_save_file(const zc_context *c, int seq, const int32_t *tokens, const char *path);
ZC_API int zc_seq_load_file(zc_context *c, int seq, const char *path, int32_t **tokens, int *n_tokens);

/* The model's chat template (Jinja source), for front ends that format
 * conversations: GGUF metadata tokenizer.chat_template, or a Hugging Face
 * directory's tokenizer_config.json "chat_template" (a string, or the entry
 * named "default" of a list of {name, template}). *out is malloc'ed (caller
 * frees), NULL when the model has none. Errors: ZC_ERR_FORMAT (a malformed
 * tokenizer_config.json), ZC_ERR_NOMEM. */
ZC_API int zc_model_chat_template(const zc_model *m, char **out);
/* Id of the token whose text is exactly text[0..len) (e.g. "<|im_end|>"), -1 if none. */
ZC_API int zc_model_token_id(const zc_model *m, const char *text, size_t len);

#ifdef __cplusplus
}
#endif
#endif
