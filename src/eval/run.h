/* Private to src/eval: the machinery the task runners share (a context with
 * the chosen KV policy, resumable results, progress, KV usage and speed
 * accounting, greedy generation with stop strings). */
#ifndef ZC_EVAL_RUN_H
#define ZC_EVAL_RUN_H

#include "eval/eval_tasks.h"
#include "util/json.h"

typedef struct {
    const zc_model *model;
    const zc_model_info *info;
    zc_context *ctx;
    int n_ctx, n_vocab;
    float *logits;          /* [n_batch_max][n_vocab] */
    zc_eval_results results;
    zc_eval_progress progress;
    bool show_progress;
    char run[1024];         /* identifies the configuration in --results records */
    zc_eval_summary *sum;
} zc_eval_session;

/* Fill the summary's identity fields, create the context (policy from
 * o->kv) with room for `logits_rows` rows of logits, open --results.
 * `task_opts` names the task options that change results (part of the run key). */
int zc_eval_session_open(zc_eval_session *s, const zc_model *m, const char *model_path, const zc_eval_opts *o,
                         const char *task, const char *data, const char *task_opts, int logits_rows,
                         zc_eval_summary *sum);
void zc_eval_session_close(zc_eval_session *s);

/* Store the cache's current usage in c (call when an item's cache is fullest). */
void zc_eval_session_sample_kv(zc_eval_session *s, zc_eval_cost *c);

/* The common fields of an item record: run, item, score and its cost.
 * The caller appends its own fields and the closing brace. */
void zc_eval_record_begin(zc_strbuf *b, const zc_eval_session *s, int64_t item, double score, const zc_eval_cost *c);
/* Read those common fields back from a resumed record into the summary. */
int zc_eval_record_resume(zc_eval_session *s, const zc_eval_done *d);

/* Greedy generation from a prompt: decode `prompt`, then pick the argmax
 * token until EOS, a stop string (text cut before it), max_new tokens, the
 * end of the context or the cache's --kv-budget. The context is reset first.
 * out receives the text. ZC_ERR_LIMIT when the prompt itself does not fit. */
typedef struct {
    int n_generated;
    bool hit_stop, hit_eos, hit_ctx, hit_budget;
    zc_eval_cost cost;
} zc_eval_gen_result;
int zc_eval_generate(zc_eval_session *s, const int32_t *prompt, int n_prompt, int max_new,
                     const char *const *stops, int n_stops, zc_strbuf *out, zc_eval_gen_result *r);

/* Items [offset, offset+limit) of total after --offset/--limit. */
void zc_eval_item_range(const zc_eval_opts *o, int64_t total, int64_t *first, int64_t *end);

/* Read a JSONL data file: one parsed document per non-empty line. */
typedef struct {
    zc_json_doc **docs;
    const zc_json **rows;
    size_t n;
} zc_eval_jsonl;
int zc_eval_jsonl_read(const char *path, zc_eval_jsonl *out);
void zc_eval_jsonl_free(zc_eval_jsonl *j);
/* A required string field of a row; NULL (with an error naming the file, line and key) if absent. */
const char *zc_eval_jsonl_str(const zc_eval_jsonl *j, const char *path, size_t row, const char *key);

#endif
