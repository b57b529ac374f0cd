/* The generation tasks: LongEval line retrieval, GSM8K and HumanEval. They
 * share one driver (gen_run): for each JSONL item build the prompt, skip it
 * if it does not fit the context, generate greedily until a stop string,
 * judge the output and append a --results record. A task is three small
 * functions: prompt, judge, and what to keep from resumed records. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/run.h"
#include "util/error.h"

typedef struct gen_task gen_task;
struct gen_task {
    const char *name, *score_name;
    int default_max_new;
    const char *const *stops;
    int n_stops;
    /* The prompt text of data row `row`. */
    int (*prompt)(gen_task *t, size_t row, zc_strbuf *out);
    /* Score the generated text (1 = correct) and append task fields to the record. */
    int (*judge)(gen_task *t, size_t row, const char *text, double *score, zc_strbuf *rec);
    /* Called for every finished item, run now or resumed (NULL: nothing to keep). */
    int (*keep)(gen_task *t, size_t row, const zc_json *record);
    /* Called once after all items, while the data is loaded (NULL: nothing). */
    int (*finish)(gen_task *t);
    const char *path;
    zc_eval_jsonl data;
    const zc_eval_gen_opts *g;
    char **completions; /* HumanEval: [n_completions] completion per item (NULL if not run), for --out */
    size_t n_completions;
};

/* ---- Driver ----------------------------------------------------------------------- */
static int gen_run(gen_task *t, const zc_model *m, const char *model_path, const zc_eval_opts *o,
                   zc_eval_summary *sum) {
    if (!t->g->data) return zc_error(ZC_ERR_ARG, "eval %s: a data file is needed (--data FILE.jsonl)", t->name);
    int rc = zc_eval_jsonl_read(t->g->data, &t->data);
    if (rc != ZC_OK) return rc;
    t->path = t->g->data;
    int max_new = t->g->max_new > 0 ? t->g->max_new : t->default_max_new;
    char task_opts[128];
    snprintf(task_opts, sizeof task_opts, "max_new %d shots %d execute %d", max_new, t->g->shots, t->g->execute);
    zc_eval_session s;
    if ((rc = zc_eval_session_open(&s, m, model_path, o, t->name, t->g->data, task_opts, 1, sum)) != ZC_OK) {
        zc_eval_jsonl_free(&t->data);
        return rc;
    }
    int64_t first, end;
    zc_eval_item_range(o, (int64_t)t->data.n, &first, &end);
    zc_strbuf prompt = {0}, text = {0}, rec = {0};
    int32_t *ids = NULL;
    int n_ids = 0;
    int64_t n_scored = 0, n_skipped = 0, n_stop = 0, n_eos = 0, generated = 0, longest = 0;
    double correct = 0;
    int64_t resumed = 0;
    for (int64_t i = first; i < end; i++) resumed += zc_eval_results_find(&s.results, i) != NULL;
    zc_eval_progress_start(&s.progress, t->name, end - first, resumed);
    int64_t done_items = resumed;
    for (int64_t i = first; i < end && rc == ZC_OK; i++) {
        const zc_eval_done *d = zc_eval_results_find(&s.results, i);
        if (d) {
            zc_json_doc *doc;
            const zc_json *root;
            if ((rc = zc_eval_record_resume(&s, d)) != ZC_OK) break;
            if ((rc = zc_json_parse(d->json, strlen(d->json), s.results.path, &doc, &root)) != ZC_OK) break;
            int64_t gen_n = 0;
            zc_json_int(zc_json_get(root, "generated"), &gen_n);
            generated += gen_n;
            if (t->keep) rc = t->keep(t, (size_t)i, root);
            zc_json_free(doc);
            correct += d->score;
            n_scored++;
            continue;
        }
        prompt.len = 0;
        if ((rc = t->prompt(t, (size_t)i, &prompt)) != ZC_OK || (rc = prompt.err) != ZC_OK) break;
        free(ids);
        ids = NULL;
        if ((rc = zc_model_tokenize(m, prompt.s, prompt.len, s.info->add_bos, 0, &ids, &n_ids)) != ZC_OK) break;
        if (n_ids > longest) longest = n_ids;
        if (n_ids + 1 > s.n_ctx) { /* not even one answer token fits */
            n_skipped++;
            if (s.show_progress) zc_eval_progress_update(&s.progress, ++done_items, false);
            continue;
        }
        zc_eval_gen_result g;
        if ((rc = zc_eval_generate(&s, ids, n_ids, max_new, t->stops, t->n_stops, &text, &g)) != ZC_OK) break;
        const char *out = text.s ? text.s : "";
        zc_eval_summary_add_cost(sum, &g.cost);
        generated += g.n_generated;
        n_stop += g.hit_stop;
        n_eos += g.hit_eos;
        double score = 0;
        zc_strbuf fields = {0};
        rc = t->judge(t, (size_t)i, out, &score, &fields);
        if (rc == ZC_OK) rc = fields.err;
        if (rc == ZC_OK) {
            rec.len = 0;
            zc_eval_record_begin(&rec, &s, i, score, &g.cost);
            zc_sb_printf(&rec, ",\"prompt_tokens\":%d,\"generated\":%d,\"stop\":\"%s\",\"output\":", n_ids,
                         g.n_generated, g.hit_stop ? "string" : g.hit_eos ? "eos" : g.hit_ctx ? "context" : "length");
            zc_sb_json_str(&rec, out, strlen(out));
            zc_sb_append(&rec, fields.s ? fields.s : "", fields.len);
            zc_sb_append(&rec, "}", 1);
            rc = rec.err;
        }
        zc_sb_free(&fields);
        if (rc == ZC_OK) rc = zc_eval_results_append(&s.results, rec.s);
        if (rc == ZC_OK && t->keep) {
            zc_json_doc *doc;
            const zc_json *root;
            if ((rc = zc_json_parse(rec.s, rec.len, "record", &doc, &root)) == ZC_OK) {
                rc = t->keep(t, (size_t)i, root);
                zc_json_free(doc);
            }
        }
        correct += score;
        n_scored++;
        if (s.show_progress) zc_eval_progress_update(&s.progress, ++done_items, false);
    }
    if (rc == ZC_OK) {
        if (s.show_progress) zc_eval_progress_update(&s.progress, end - first, true);
        double lo, hi;
        zc_eval_wilson((int64_t)llround(correct), n_scored, &lo, &hi);
        sum->score_name = t->score_name;
        sum->score = n_scored ? correct / (double)n_scored : NAN;
        zc_eval_metric_add(sum, "items", (double)(end - first));
        zc_eval_metric_add(sum, "scored", (double)n_scored);
        zc_eval_metric_add(sum, "correct", correct);
        zc_eval_metric_add(sum, "skipped_too_long", (double)n_skipped);
        zc_eval_metric_add(sum, "wilson95_lo", n_scored ? lo : NAN);
        zc_eval_metric_add(sum, "wilson95_hi", n_scored ? hi : NAN);
        zc_eval_metric_add(sum, "generated_tokens", (double)generated);
        zc_eval_metric_add(sum, "stopped_by_string", (double)n_stop);
        zc_eval_metric_add(sum, "stopped_by_eos", (double)n_eos);
        zc_eval_metric_add(sum, "max_new", max_new);
        if (t->finish) rc = t->finish(t);
        snprintf(sum->note, sizeof sum->note,
                 "the model context is %d tokens (the bundled tiny models were trained at 512): %lld of %lld prompts "
                 "were longer and skipped (longest seen: %lld tokens); counts and stop reasons cover this session's "
                 "items",
                 s.n_ctx, (long long)n_skipped, (long long)(end - first), (long long)longest);
    }
    free(ids);
    zc_sb_free(&prompt);
    zc_sb_free(&text);
    zc_sb_free(&rec);
    zc_eval_session_close(&s);
    zc_eval_jsonl_free(&t->data);
    return rc;
}

/* Append `"key":number-or-null` to a record. */
static void field_num(zc_strbuf *b, const char *key, bool have, double v) {
    zc_sb_printf(b, ",\"%s\":", key);
    if (have)
        zc_sb_json_num(b, v);
    else
        zc_sb_append(b, "null", 4);
}

/* ---- LongEval line retrieval --------------------------------------------------- */
static int lines_prompt(gen_task *t, size_t row, zc_strbuf *out) {
    const char *p = zc_eval_jsonl_str(&t->data, t->path, row, "prompt");
    if (!p) return ZC_ERR_FORMAT;
    zc_sb_append(out, p, strlen(p));
    return ZC_OK;
}

static int lines_judge(gen_task *t, size_t row, const char *text, double *score, zc_strbuf *rec) {
    int64_t expected;
    if (!zc_json_int(zc_json_get(t->data.rows[row], "expected_number"), &expected))
        return zc_error(ZC_ERR_FORMAT, "%s: record %zu: missing integer \"expected_number\"", t->path, row + 1);
    double got = 0;
    bool have = zc_eval_first_number(text, &got);
    *score = have && got == (double)expected;
    zc_sb_printf(rec, ",\"expected\":%lld", (long long)expected);
    field_num(rec, "got", have, got);
    return ZC_OK;
}

int zc_eval_lines(const zc_model *m, const char *model_path, const zc_eval_opts *o, const zc_eval_gen_opts *g,
                  zc_eval_summary *s) {
    /* No stop string: the answer ("line x-y: REGISTER_CONTENT is <N>") may
     * follow a newline, and 32 tokens bound the work; the first number counts. */
    gen_task t = {.name = "lines", .score_name = "accuracy", .default_max_new = 32, .prompt = lines_prompt,
                  .judge = lines_judge, .g = g};
    return gen_run(&t, m, model_path, o, s);
}

/* ---- GSM8K ---------------------------------------------------------------------- */
static int gsm8k_prompt(gen_task *t, size_t row, zc_strbuf *out) {
    const char *q = zc_eval_jsonl_str(&t->data, t->path, row, "question");
    if (!q) return ZC_ERR_FORMAT;
    zc_eval_gsm8k_prompt(t->g->shots, q, out);
    return ZC_OK;
}

static int gsm8k_judge(gen_task *t, size_t row, const char *text, double *score, zc_strbuf *rec) {
    const char *answer = zc_eval_jsonl_str(&t->data, t->path, row, "answer");
    double expected, got = 0;
    if (!answer) return ZC_ERR_FORMAT;
    if (!zc_eval_gsm8k_reference(answer, &expected))
        return zc_error(ZC_ERR_FORMAT, "%s: record %zu: answer has no \"#### <number>\"", t->path, row + 1);
    bool have = zc_eval_last_number(text, &got);
    *score = have && got == expected;
    field_num(rec, "expected", true, expected);
    field_num(rec, "got", have, got);
    return ZC_OK;
}

int zc_eval_gsm8k(const zc_model *m, const char *model_path, const zc_eval_opts *o, const zc_eval_gen_opts *g,
                  zc_eval_summary *s) {
    static const char *const stops[] = {"Question:", "\n\n"};
    if (g->shots < 0 || g->shots > ZC_GSM8K_MAX_SHOTS)
        return zc_error(ZC_ERR_ARG, "eval gsm8k: --shots %d is outside [0, %d]", g->shots, ZC_GSM8K_MAX_SHOTS);
    gen_task t = {.name = "gsm8k", .score_name = "accuracy", .default_max_new = 256, .stops = stops, .n_stops = 2,
                  .prompt = gsm8k_prompt, .judge = gsm8k_judge, .g = g};
    return gen_run(&t, m, model_path, o, s);
}

/* ---- HumanEval ------------------------------------------------------------------ */
static int humaneval_prompt(gen_task *t, size_t row, zc_strbuf *out) {
    const char *p = zc_eval_jsonl_str(&t->data, t->path, row, "prompt");
    if (!p) return ZC_ERR_FORMAT;
    zc_sb_append(out, p, strlen(p));
    return ZC_OK;
}

static int humaneval_judge(gen_task *t, size_t row, const char *text, double *score, zc_strbuf *rec) {
    const char *id = zc_eval_jsonl_str(&t->data, t->path, row, "task_id");
    if (!id) return ZC_ERR_FORMAT;
    zc_sb_printf(rec, ",\"task_id\":");
    zc_sb_json_str(rec, id, strlen(id));
    zc_sb_printf(rec, ",\"completion\":");
    zc_sb_json_str(rec, text, strlen(text));
    *score = 0;
    if (!t->g->execute) return ZC_OK;
    const char *prompt = zc_eval_jsonl_str(&t->data, t->path, row, "prompt");
    const char *test = zc_eval_jsonl_str(&t->data, t->path, row, "test");
    const char *entry = zc_eval_jsonl_str(&t->data, t->path, row, "entry_point");
    if (!prompt || !test || !entry) return ZC_ERR_FORMAT;
    /* The standard HumanEval check program. */
    zc_strbuf prog = {0};
    zc_sb_printf(&prog, "%s%s\n%s\ncheck(%s)\n", prompt, text, test, entry);
    if (prog.err) return prog.err;
    bool passed;
    char why[64];
    int rc = zc_eval_run_python(t->g->python, prog.s, prog.len, t->g->timeout_s, &passed, why, sizeof why);
    zc_sb_free(&prog);
    if (rc != ZC_OK) return rc;
    *score = passed;
    zc_sb_printf(rec, ",\"passed\":%s,\"result\":", passed ? "true" : "false");
    zc_sb_json_str(rec, why, strlen(why));
    return ZC_OK;
}

static int humaneval_keep(gen_task *t, size_t row, const zc_json *record) {
    const char *c = zc_json_str(zc_json_get(record, "completion"));
    if (!c) return zc_error(ZC_ERR_FORMAT, "item %zu: record without \"completion\"", row);
    if (!t->completions) {
        if (!(t->completions = zc_calloc(t->data.n, sizeof *t->completions))) return ZC_ERR_NOMEM;
        t->n_completions = t->data.n;
    }
    free(t->completions[row]);
    t->completions[row] = strdup(c);
    return t->completions[row] ? ZC_OK : zc_error(ZC_ERR_NOMEM, "out of memory");
}

/* --out: {task_id, completion} per finished item, in data order (the format
 * of the HumanEval harness's evaluate_functional_correctness). */
static int humaneval_finish(gen_task *t) {
    const char *path = t->g->out;
    if (!path) return ZC_OK;
    FILE *f = fopen(path, "w");
    if (!f) return zc_error(ZC_ERR_IO, "%s: cannot create", path);
    zc_strbuf b = {0};
    for (size_t i = 0; i < t->n_completions; i++) {
        if (!t->completions[i]) continue;
        const char *id = zc_json_str(zc_json_get(t->data.rows[i], "task_id"));
        b.len = 0;
        zc_sb_printf(&b, "{\"task_id\":");
        zc_sb_json_str(&b, id ? id : "", id ? strlen(id) : 0);
        zc_sb_printf(&b, ",\"completion\":");
        zc_sb_json_str(&b, t->completions[i], strlen(t->completions[i]));
        zc_sb_printf(&b, "}\n");
        if (b.err || fwrite(b.s, 1, b.len, f) != b.len) break;
    }
    int rc = b.err;
    if (ferror(f) && !rc) rc = ZC_ERR_IO;
    if (fclose(f) && !rc) rc = ZC_ERR_IO;
    zc_sb_free(&b);
    return rc == ZC_ERR_IO ? zc_error(rc, "%s: write failed", path) : rc;
}

int zc_eval_humaneval(const zc_model *m, const char *model_path, const zc_eval_opts *o, const zc_eval_gen_opts *g,
                      zc_eval_summary *s) {
    static const char *const stops[] = {"\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#"};
    gen_task t = {.name = "humaneval", .score_name = g->execute ? "pass@1" : "pass@1 (not executed)",
                  .default_max_new = 256, .stops = stops, .n_stops = 5, .prompt = humaneval_prompt,
                  .judge = humaneval_judge, .keep = humaneval_keep, .finish = humaneval_finish, .g = g};
    if (g->execute && (g->timeout_s < 1 || !g->python))
        return zc_error(ZC_ERR_ARG, "eval humaneval: --execute needs a python path and a timeout >= 1 s");
    int rc = gen_run(&t, m, model_path, o, s);
    if (rc == ZC_OK && !g->execute) s->score = NAN; /* nothing was run, so there is no pass rate */
    for (size_t i = 0; i < t.n_completions; i++) free(t.completions[i]);
    free(t.completions);
    return rc;
}
