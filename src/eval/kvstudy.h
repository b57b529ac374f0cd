/* Studies of the ZipCache compression core on a real model's activations:
 *
 *   zc_eval_saliency_report: how well cheap saliency estimates (accumulated
 *     scores, locality, probe subsets with either denominator) recover the
 *     exact normalized-attention salient set, per (layer, KV head).
 *   zc_eval_recon_report: reconstruction error of every KV quantizer on the
 *     real keys (after RoPE) and values, per width, with its stored bits.
 *
 * Both run the model over chunks of a text (each chunk = BOS + the next
 * tokens of the text) and read Q/K/V through the observer hook of
 * include/zipcache.h; they print markdown tables and, with json_path, one
 * JSON document. The quantizers and saliency functions are src/quant's.
 */
#ifndef ZC_EVAL_KVSTUDY_H
#define ZC_EVAL_KVSTUDY_H

#include <stdint.h>
#include <stdio.h>

#include "eval/eval_tasks.h"

typedef struct {
    const char *text; /* -f: raw text file */
    int tokens;       /* tokens per chunk, BOS included (0: the context size) */
    int64_t chunks;   /* chunks to run (0: 4) */
    int seeds;        /* probe draws per (chunk, layer, head) for random strategies (0: 4) */
} zc_eval_study_opts;

/* Activations of one chunk, all layers, as the observer saw them. */
typedef struct {
    int n_layers, n_heads, n_kv_heads, head_dim, L;
    float *q; /* [n_layers][L][n_heads*head_dim] */
    float *k; /* [n_layers][L][n_kv_heads*head_dim], after RoPE */
    float *v; /* [n_layers][L][n_kv_heads*head_dim] */
} zc_kv_capture;

/* Run tokens[0..L) through a fresh context of model m (KV policy o->kv) and
 * capture every layer's Q/K/V into cap (allocated on first use, reused while
 * L and the model stay the same). */
int zc_kv_capture_run(const zc_model *m, const zc_eval_opts *o, const int32_t *tokens, int L, zc_kv_capture *cap);
void zc_kv_capture_free(zc_kv_capture *cap);

/* The token chunks of p->text for model m: *tokens [n_chunks][L] (malloc'ed),
 * each BOS then L-1 consecutive text tokens. */
int zc_kv_study_chunks(const zc_model *m, const zc_eval_opts *o, const zc_eval_study_opts *p, int32_t **tokens,
                       int *L, int *n_chunks);

/* Causal softmax attention weights of one query row over keys 0..last of
 * KV head g: row[j] = softmax_j(qi . k_j / sqrt(d)), qi [d], k [last+1][kw]
 * (head g at columns g*d..g*d+d-1), row [last+1]. */
void zc_kv_study_attn_row(const float *qi, const float *k, size_t kw, int g, int d, int last, float *row);

/* JSON output: {"study": ..., "model": ..., "text": ..., "chunks": n, "tokens": L
 * (the caller appends its fields and the closing brace), then written to path. */
void zc_kv_study_json_begin(zc_strbuf *b, const char *study, const char *model_path, const char *text, int n_chunks,
                            int L);
int zc_kv_study_json_write(zc_strbuf *b, const char *path);

int zc_eval_saliency_report(const zc_model *m, const char *model_path, const zc_eval_opts *o,
                            const zc_eval_study_opts *p, FILE *out, const char *json_path);
int zc_eval_recon_report(const zc_model *m, const char *model_path, const zc_eval_opts *o,
                         const zc_eval_study_opts *p, FILE *out, const char *json_path);

#endif
