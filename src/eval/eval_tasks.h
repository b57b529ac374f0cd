/* The eval task runners: perplexity/KL, LongEval line retrieval, GSM8K,
 * HumanEval, and the compression sweep built on perplexity/KL.
 *
 * Every runner takes the same common options (KV policy, context size,
 * --limit/--offset, --results for resumption), prints a progress line on
 * stderr and fills a zc_eval_summary, which prints as a human table and as
 * one JSON record. The runners only use the public model API
 * (include/zipcache.h); which KV policy runs is entirely in opts->kv.
 */
#ifndef ZC_EVAL_EVAL_TASKS_H
#define ZC_EVAL_EVAL_TASKS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "eval/eval.h"
#include "kv/kv.h"
#include "zipcache.h"

/* Options every eval takes. */
typedef struct {
    zc_kv_config kv;
    int n_ctx;           /* 0: the model's trained context */
    int n_threads;       /* 0: all cores */
    int n_batch;         /* prompt tokens per forward step (0: the library's default, 512) */
    int64_t limit;       /* items to run (0: all) */
    int64_t offset;      /* items to skip first */
    const char *results; /* --results FILE.jsonl (NULL: none) */
    bool progress;       /* progress line on stderr */
} zc_eval_opts;

void zc_eval_opts_default(zc_eval_opts *o);

typedef struct {
    const char *name;
    double value;
} zc_eval_metric;

#define ZC_EVAL_MAX_METRICS 24

typedef struct {
    char task[16];                 /* "ppl", "lines", "gsm8k", "humaneval" */
    char model[512];               /* model path */
    char data[512];                /* data / text path */
    zc_kv_config kv;
    char kv_desc[320];             /* zc_kv_config_describe */
    int n_ctx;
    const char *score_name;        /* "perplexity", "accuracy", "pass@1" */
    double score;
    zc_eval_metric metrics[ZC_EVAL_MAX_METRICS]; /* task-specific numbers, in print order */
    int n_metrics;
    /* KV usage summed over items (zc_eval_cost); kv_window_bytes is the part
     * held in the policy's full-precision window. */
    double kv_total_bytes, kv_window_bytes, kv_elements;
    /* zipcache-family caches: layers that stored rotated keys / that chose
     * (compressed), summed over items (--kv-rotate auto decides per sequence) */
    double kv_rot_layers, kv_rot_chosen;
    double tokens;                 /* tokens run through the model (prompt + generated) */
    double seconds;                /* model time */
    char note[512];                /* caveats the table prints below itself */
} zc_eval_summary;

/* What one item (a chunk, a prompt) cost, summed into the summary. */
typedef struct {
    double tokens, seconds;
    double kv_total, kv_window, kv_elements; /* KV usage at the item's end; ppl: summed over its scored steps */
    double kv_rot_layers, kv_rot_chosen;      /* its layers with rotated keys / that compressed (zipcache family) */
} zc_eval_cost;
void zc_eval_summary_add_cost(zc_eval_summary *s, const zc_eval_cost *c);

/* Add a named number to the summary (names are string literals). */
void zc_eval_metric_add(zc_eval_summary *s, const char *name, double value);
/* Compression ratio vs fp16 (16*elements / stored bits) and stored bits per element. */
double zc_eval_summary_ratio(const zc_eval_summary *s);
double zc_eval_summary_bits(const zc_eval_summary *s);
void zc_eval_summary_print(FILE *f, const zc_eval_summary *s);
/* The summary as one JSON object (no newline). */
void zc_eval_summary_json(const zc_eval_summary *s, zc_strbuf *out);

/* ---- Perplexity / KL ---------------------------------------------------------- */
typedef struct {
    const char *text;          /* -f: raw text file */
    int64_t chunks;            /* --chunks: at most this many (0: all that fit) */
    int block;                 /* scored tokens per decode call (1: token by token, as generation) */
    const char *kl_base;       /* --kl-base: compare against this base file */
    const char *save_kl_base;  /* --save-kl-base: write this run's distributions */
} zc_eval_ppl_opts;

int zc_eval_ppl(const zc_model *m, const char *model_path, const zc_eval_opts *o, const zc_eval_ppl_opts *p,
                zc_eval_summary *s);

/* ---- Generation tasks --------------------------------------------------------- */
typedef struct {
    const char *data;      /* --data FILE.jsonl */
    int max_new;           /* generated tokens per item (0: the task's default) */
    int shots;             /* GSM8K exemplars (0..8; default 8) */
    bool execute;          /* HumanEval: run the tests */
    const char *out;       /* HumanEval: --out completions.jsonl */
    const char *python;    /* HumanEval: interpreter (default /usr/bin/python3) */
    int timeout_s;         /* HumanEval: per-program wall/CPU limit */
    bool answer_kl;        /* lines: KL(fp16 cache || this cache) over the expected answer's tokens */
} zc_eval_gen_opts;

int zc_eval_lines(const zc_model *m, const char *model_path, const zc_eval_opts *o, const zc_eval_gen_opts *g,
                  zc_eval_summary *s);
int zc_eval_gsm8k(const zc_model *m, const char *model_path, const zc_eval_opts *o, const zc_eval_gen_opts *g,
                  zc_eval_summary *s);
int zc_eval_humaneval(const zc_model *m, const char *model_path, const zc_eval_opts *o, const zc_eval_gen_opts *g,
                      zc_eval_summary *s);

/* The standard 8-shot GSM8K chain-of-thought prompt (Wei et al. 2022, the
 * exemplars lm-eval-harness uses) for the first `shots` exemplars followed by
 * `question`, into out. */
void zc_eval_gsm8k_prompt(int shots, const char *question, zc_strbuf *out);
#define ZC_GSM8K_MAX_SHOTS 8

/* Run `program` (Python source) under `python` in a fresh temporary directory
 * with CPU-time, address-space and file-size limits and a wall-clock timeout.
 * *passed: exited with status 0 in time. */
int zc_eval_run_python(const char *python, const char *program, size_t len, int timeout_s, bool *passed,
                       char *why, size_t why_cap);

/* ---- Sweep -------------------------------------------------------------------- */
/* Map an average bit budget to a policy's knobs in cfg (which holds the
 * defaults and any user options): zipcache/mikv get it as target_bits,
 * uniform/kivi the widest integer width not above it, h2o keeps budget/16 of
 * the tokens at fp16; fixed-width policies (fp16, fp32, q8_0, q4_0) ignore it.
 * Returns false for an unknown policy name. */
bool zc_eval_budget_config(const char *policy, double bits, zc_kv_config *cfg);

typedef struct {
    const char *policies;  /* comma-separated policy names */
    const double *bits;    /* [n_bits] average bit budgets */
    int n_bits;
    const char *preset;    /* NULL, "ablation-saliency", "ablation-probes", "bits" or "ablation-bits" */
    const char *csv;       /* output CSV path */
    const char *plot;      /* output SVG path (NULL: none); its gnuplot script goes beside it as .gp */
} zc_eval_sweep_opts;

/* Perplexity/KL for every policy (or preset variant) x bit budget on the
 * same chunks, against an fp16 base computed first (or p->kl_base if given).
 * Prints one line per run to `log` and a table at the end. */
int zc_eval_sweep(const zc_model *m, const char *model_path, const zc_eval_opts *o, const zc_eval_ppl_opts *p,
                  const zc_eval_sweep_opts *sw, FILE *log);

#endif
