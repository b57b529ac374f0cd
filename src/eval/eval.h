/* The evaluation suite's building blocks: scoring arithmetic (perplexity,
 * KL divergence, top-1 agreement, percentiles, Wilson intervals), answer
 * parsing (numbers, stop sequences), the KL base-logits file, progress lines
 * and resumable JSONL results. The task runners (eval_tasks.h) and the
 * `zipcache eval` command are built from these.
 *
 * Everything here works on plain arrays so it is testable without a model:
 * a logits row is float[n_vocab], a log-probability row is the same shape.
 */
#ifndef ZC_EVAL_EVAL_H
#define ZC_EVAL_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/fp16.h"

/* ---- Scoring --------------------------------------------------------------- */

/* log(sum_i exp(x_i)) in double, shifted by the max (stable for any finite x). */
double zc_eval_logsumexp(const float *x, int n);
/* Negative log-likelihood of `target` under softmax(logits): lse - logits[target]. */
double zc_eval_nll(const float *logits, int n_vocab, int target);
/* Index of the largest value; the lowest index wins ties. */
int zc_eval_argmax(const float *x, int n);

/* KL(base || run) = sum_i p_i (log p_i - log q_i) for one next-token
 * distribution: base given as fp16 log-probabilities (as stored in a KL base
 * file; renormalized here so their rounding cannot make the sum leave 1), run
 * as raw logits. Computed in double; clamped at 0 (tiny negative values are
 * rounding). */
double zc_eval_kl_fp16(const zc_fp16 *base_logp, const float *run_logits, int n_vocab);

/* Summary of a sample: mean, median and 99th percentile (linear interpolation
 * between order statistics, numpy's default), max. Sorts `x` in place. */
typedef struct {
    double mean, median, p99, max;
    size_t n;
} zc_eval_stats;
void zc_eval_summarize(double *x, size_t n, zc_eval_stats *out);
/* Percentile q in [0, 100] of an ascending array (numpy's "linear" rule). */
double zc_eval_percentile_sorted(const double *x, size_t n, double q);

/* Wilson score interval for k successes in n trials at 95% (z = 1.959964).
 * n == 0 gives [0, 1]. */
void zc_eval_wilson(int64_t k, int64_t n, double *lo, double *hi);

/* Perplexity / KL accumulator for one run. Every scored token adds its NLL;
 * with a base it also adds its KL, top-1 agreement and the base NLL. */
typedef struct {
    double sum_nll;       /* run */
    double sum_base_nll;  /* base (only with a base) */
    int64_t n_scored;
    int64_t n_top1_same;  /* argmax(run) == argmax(base) */
    int64_t n_compressed; /* scored tokens whose step saw compressed cache entries */
    double *kl;           /* [n_kl] per-token KL(base || run); n_kl == n_scored with a base, else 0 */
    size_t n_kl, kl_cap;
} zc_eval_ppl_acc;

/* Add one scored token. base_logp/base_top1/base_nll: that token's base
 * record, or base_logp == NULL without a base. */
int zc_eval_ppl_add(zc_eval_ppl_acc *a, const float *logits, int n_vocab, int target, const zc_fp16 *base_logp,
                    int base_top1, double base_nll, bool saw_compressed);
/* Add everything `part` holds to `a` (resumed chunks, per-chunk totals). */
int zc_eval_ppl_merge(zc_eval_ppl_acc *a, const zc_eval_ppl_acc *part);
void zc_eval_ppl_acc_free(zc_eval_ppl_acc *a);

/* ---- KL base file -------------------------------------------------------------
 * The fp16-cache run's next-token distributions for every scored token, so a
 * later run can be compared without recomputing the base. Layout (little
 * endian):
 *   header  "ZCKLBASE" u32 version=1, u32 n_vocab, u32 ctx, u32 first_chunk, u64 n_records
 *           (records cover chunks first_chunk, first_chunk+1, ... in order, ctx - ctx/2 per chunk)
 *   record  i32 target, i32 argmax of the base logits, f32 base NLL of target,
 *           fp16 log_softmax(logits)[n_vocab]
 * Log-probabilities (not logits) in fp16 because they are <= 0 and the
 * probable tokens, the ones that dominate KL, sit near 0 where fp16 is
 * finest (half-ulp 2^-12 below magnitude 1). Size: 12 + 2*n_vocab bytes per scored
 * token: 1036 B at vocab 512, 4108 B at 2048, 256 KiB at 128256. The argmax
 * and NLL are kept exactly so top-1 agreement and the perplexity ratio do not
 * depend on the fp16 rounding. */
#define ZC_KLBASE_HEADER_BYTES 32
#define ZC_KLBASE_RECORD_BYTES(n_vocab) (12 + 2 * (size_t)(n_vocab))

typedef struct {
    FILE *f;
    char *path;
    int n_vocab, ctx, first_chunk;
    uint64_t n_records;
    zc_fp16 *row; /* [n_vocab] scratch */
} zc_klbase_writer;

int zc_klbase_create(zc_klbase_writer *w, const char *path, int n_vocab, int ctx, int first_chunk);
int zc_klbase_append(zc_klbase_writer *w, const float *logits, int target);
/* Writes the record count into the header and closes. */
int zc_klbase_close(zc_klbase_writer *w);
/* Closes and deletes the file (used when a run fails halfway). */
void zc_klbase_abandon(zc_klbase_writer *w);

typedef struct {
    uint8_t *data; /* whole file */
    size_t size;
    int n_vocab, ctx, first_chunk;
    uint64_t n_records;
} zc_klbase;

int zc_klbase_open(zc_klbase *b, const char *path);
void zc_klbase_close_reader(zc_klbase *b);
/* Record i (i < n_records): target, argmax, NLL and the fp16 log-probs.
 * The pointer is only 2-byte aligned; it points into b->data. */
void zc_klbase_record(const zc_klbase *b, uint64_t i, int *target, int *top1, double *nll, const zc_fp16 **logp);

/* ---- Answer parsing ------------------------------------------------------------ */

/* The first / last number in `s`: optional '-' (when not preceded by a letter
 * or digit), digits with optional thousands commas ("1,234": a comma followed
 * by exactly three digits), optional ".digits". '$' and other symbols are
 * just separators. Returns true and the value if a number was found. */
bool zc_eval_first_number(const char *s, double *out);
bool zc_eval_last_number(const char *s, double *out);
/* GSM8K reference: the number after the last "####". */
bool zc_eval_gsm8k_reference(const char *answer, double *out);

/* Length of the prefix of text[0..len) before the earliest occurrence of any
 * stop string; len if none occurs. */
size_t zc_eval_stop_at(const char *text, size_t len, const char *const *stops, int n_stops);

/* ---- Progress and results ------------------------------------------------------ */

/* "ppl: 12/40 items  3.1 items/s  ETA 9s" on stderr, rewritten in place on
 * a terminal and at most every few seconds otherwise. */
typedef struct {
    const char *what;
    int64_t total;
    double t0, last;
    int64_t done_at_start; /* items skipped by --results resumption: not in the rate */
} zc_eval_progress;
void zc_eval_progress_start(zc_eval_progress *p, const char *what, int64_t total, int64_t already_done);
void zc_eval_progress_update(zc_eval_progress *p, int64_t done, bool final);

/* Growable string for building JSON records. */
typedef struct {
    char *s;
    size_t len, cap;
    int err; /* first failure (ZC_ERR_NOMEM); later appends are ignored */
} zc_strbuf;
void zc_sb_printf(zc_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void zc_sb_append(zc_strbuf *b, const char *s, size_t n);
/* A JSON string literal with escapes (quotes included). */
void zc_sb_json_str(zc_strbuf *b, const char *s, size_t n);
/* A JSON number: finite doubles with %.17g round-trip precision, else null. */
void zc_sb_json_num(zc_strbuf *b, double x);
void zc_sb_free(zc_strbuf *b);

/* Resumable per-item results: a JSONL file with one record per finished item,
 * each carrying an integer "item", a numeric "score" (the task's per-item
 * metric) and a string "run" naming the configuration that produced it.
 * Opening reads the records already there and then appends; a record of a
 * different run is an error, so two configurations never mix in one file. */
typedef struct {
    int64_t item;
    double score;
    char *json; /* the whole record, for tasks that keep more than a score */
} zc_eval_done;

typedef struct {
    FILE *f;
    char *path;
    zc_eval_done *done; /* [n] items already recorded, ascending by item */
    size_t n;
} zc_eval_results;

/* path == NULL: an inactive results object (nothing read or written). */
int zc_eval_results_open(zc_eval_results *r, const char *path, const char *run);
/* The record of `item`, or NULL if it has not been done. */
const zc_eval_done *zc_eval_results_find(const zc_eval_results *r, int64_t item);
/* Append one record (a complete JSON object without newline); flushed at once
 * so an interrupted run loses at most the item in progress. */
int zc_eval_results_append(zc_eval_results *r, const char *json_record);
void zc_eval_results_close(zc_eval_results *r);

#endif
