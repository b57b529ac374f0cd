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
    /* The expected answer's text, for --answer-kl (NULL: the task has none). */
    int (*answer)(gen_task *t, size_t row, zc_strbuf *out);
    zc_context *ref;     /* --answer-kl: the same model with an fp16 cache */
    const char *path;
    zc_eval_jsonl data;
    const zc_eval_gen_opts *g;
    char **completions; /* HumanEval: [n_completions] completion per item (NULL if not run), for --out */
    size_t n_completions;
};

static void field_num(zc_strbuf *b, const char *key, bool have, double v);

/* ---- Driver ----------------------------------------------------------------------- */
typedef struct {
    int64_t scored, skipped, by_stop, by_eos, generated, longest_prompt, kl_items;
    double correct, kl_sum;
} gen_tally;

/* Buffers reused across items. */
typedef struct {
    zc_strbuf prompt, text, rec;
    int32_t *ids;
} gen_bufs;

/* An item finished by an earlier run: take its numbers from the record. */
static int gen_resume(gen_task *t, zc_eval_session *s, const zc_eval_done *d, gen_tally *y) {
    int rc = zc_eval_record_resume(s, d);
    zc_json_doc *doc;
    const zc_json *root;
    if (rc != ZC_OK || (rc = zc_json_parse(d->json, strlen(d->json), s->results.path, &doc, &root)) != ZC_OK)
        return rc;
    int64_t n = 0;
    zc_json_int(zc_json_get(root, "generated"), &n);
    y->generated += n;
    double kl;
    if (zc_json_num(zc_json_get(root, "answer_kl"), &kl)) {
        y->kl_sum += kl;
        y->kl_items++;
    }
    if (t->keep) rc = t->keep(t, (size_t)d->item, root);
    zc_json_free(doc);
    y->correct += d->score;
    y->scored++;
    return rc;
}

static const char *stop_reason(const zc_eval_gen_result *g) {
    if (g->hit_stop) return "string";
    if (g->hit_eos) return "eos";
    if (g->hit_ctx) return "context";
    if (g->hit_budget) return "budget";
    return "length";
}

/* Teacher-force the answer after the prompt in ctx, one token per decode call as generation feeds
 * them: logp receives the log-probabilities before each answer token, [n_ans][n_vocab]. */
static int answer_logprobs(zc_context *ctx, const int32_t *prompt, int n_prompt, const int32_t *ans, int n_ans,
                           int n_vocab, float *logits, double *logp) {
    int rc = zc_context_reset(ctx);
    if (rc == ZC_OK) rc = zc_decode(ctx, prompt, n_prompt, ZC_LOGITS_LAST, logits);
    for (int k = 0; k < n_ans && rc == ZC_OK; k++) {
        double *lp = logp + (size_t)k * n_vocab, max = -INFINITY, sum = 0;
        for (int v = 0; v < n_vocab; v++) max = fmax(max, logits[v]);
        for (int v = 0; v < n_vocab; v++) sum += exp((double)logits[v] - max);
        for (int v = 0; v < n_vocab; v++) lp[v] = (double)logits[v] - max - log(sum);
        if (k + 1 < n_ans) rc = zc_decode(ctx, &ans[k], 1, ZC_LOGITS_LAST, logits);
    }
    return rc;
}

/* --answer-kl: mean over the expected answer's tokens of KL(fp16 cache || this cache), each
 * position given the right answer tokens before it. */
static int answer_kl(gen_task *t, zc_eval_session *s, size_t row, const int32_t *ids, int n_ids, double *kl) {
    zc_strbuf text = {0};
    int32_t *ans = NULL;
    int n_ans = 0, rc = t->answer(t, row, &text);
    if (rc == ZC_OK) rc = text.err;
    if (rc == ZC_OK) rc = zc_model_tokenize(s->model, text.s, text.len, false, 0, &ans, &n_ans);
    zc_sb_free(&text);
    if (rc == ZC_OK && n_ids + n_ans > s->n_ctx) rc = ZC_ERR_LIMIT;
    size_t n = (size_t)n_ans * (size_t)s->n_vocab;
    double *ref = rc == ZC_OK ? zc_malloc(2 * n * sizeof *ref + 1) : NULL, *pol = NULL;
    if (rc == ZC_OK && !ref) rc = ZC_ERR_NOMEM;
    if (ref) pol = ref + n;
    if (rc == ZC_OK) rc = answer_logprobs(t->ref, ids, n_ids, ans, n_ans, s->n_vocab, s->logits, ref);
    if (rc == ZC_OK) rc = answer_logprobs(s->ctx, ids, n_ids, ans, n_ans, s->n_vocab, s->logits, pol);
    if (rc == ZC_OK) {
        double sum = 0;
        for (int k = 0; k < n_ans; k++) {
            const double *r = ref + (size_t)k * s->n_vocab, *q = pol + (size_t)k * s->n_vocab;
            double d = 0;
            for (int v = 0; v < s->n_vocab; v++) d += exp(r[v]) * (r[v] - q[v]);
            sum += fmax(d, 0.0); /* >= 0 but for rounding, which near-equal rows can turn negative */
        }
        *kl = n_ans ? sum / n_ans : 0;
    }
    free(ref);
    free(ans);
    return rc;
}

/* Run item i: prompt, skip if too long, generate, judge, record. */
static int gen_item(gen_task *t, zc_eval_session *s, int64_t i, int max_new, gen_bufs *b, gen_tally *y) {
    b->prompt.len = 0;
    int rc = t->prompt(t, (size_t)i, &b->prompt), n_ids = 0;
    if (rc == ZC_OK) rc = b->prompt.err;
    free(b->ids);
    b->ids = NULL;
    if (rc == ZC_OK) rc = zc_model_tokenize(s->model, b->prompt.s, b->prompt.len, s->info->add_bos, 0, &b->ids, &n_ids);
    if (rc != ZC_OK) return rc;
    if (n_ids > y->longest_prompt) y->longest_prompt = n_ids;
    if (n_ids + 1 > s->n_ctx) { /* not even one answer token fits: counted, never scored */
        y->skipped++;
        return ZC_OK;
    }
    zc_eval_gen_result g;
    rc = zc_eval_generate(s, b->ids, n_ids, max_new, t->stops, t->n_stops, &b->text, &g);
    if (rc == ZC_ERR_LIMIT) { /* the prompt fits the context but not --kv-budget: skipped like a long one */
        y->skipped++;
        return ZC_OK;
    }
    if (rc != ZC_OK) return rc;
    const char *out = b->text.s ? b->text.s : "";
    zc_eval_summary_add_cost(s->sum, &g.cost);
    y->generated += g.n_generated;
    y->by_stop += g.hit_stop;
    y->by_eos += g.hit_eos;
    double score = 0, kl = 0;
    bool have_kl = t->ref != NULL;
    zc_strbuf fields = {0};
    rc = t->judge(t, (size_t)i, out, &score, &fields);
    if (rc == ZC_OK && have_kl) {
        /* after the judge: the generated text lives in the session's buffers, untouched here */
        rc = answer_kl(t, s, (size_t)i, b->ids, n_ids, &kl);
        if (rc == ZC_ERR_LIMIT) {  /* the answer does not fit after the prompt: no KL for this item */
            rc = ZC_OK;
            have_kl = false;
        }
        if (have_kl) {
            field_num(&fields, "answer_kl", true, kl);
            y->kl_sum += kl;
            y->kl_items++;
        }
    }
    if (rc == ZC_OK) rc = fields.err;
    if (rc == ZC_OK) {
        zc_strbuf *r = &b->rec;
        r->len = 0;
        zc_eval_record_begin(r, s, i, score, &g.cost);
        zc_sb_printf(r, ",\"prompt_tokens\":%d,\"generated\":%d,\"stop\":\"%s\",\"output\":", n_ids, g.n_generated,
                     stop_reason(&g));
        zc_sb_json_str(r, out, strlen(out));
        zc_sb_append(r, fields.s ? fields.s : "", fields.len);
        zc_sb_append(r, "}", 1);
        rc = r->err;
    }
    zc_sb_free(&fields);
    if (rc == ZC_OK) rc = zc_eval_results_append(&s->results, b->rec.s);
    if (rc == ZC_OK && t->keep) {
        zc_json_doc *doc;
        const zc_json *root;
        if ((rc = zc_json_parse(b->rec.s, b->rec.len, "record", &doc, &root)) == ZC_OK) {
            rc = t->keep(t, (size_t)i, root);
            zc_json_free(doc);
        }
    }
    y->correct += score;
    y->scored++;
    return rc;
}

static void gen_summary(const gen_task *t, const zc_eval_session *s, const gen_tally *y, int64_t items, int max_new,
                        zc_eval_summary *sum) {
    double lo, hi;
    zc_eval_wilson((int64_t)llround(y->correct), y->scored, &lo, &hi);
    sum->score_name = t->score_name;
    sum->score = y->scored ? y->correct / (double)y->scored : NAN;
    zc_eval_metric_add(sum, "items", (double)items);
    zc_eval_metric_add(sum, "scored", (double)y->scored);
    zc_eval_metric_add(sum, "correct", y->correct);
    zc_eval_metric_add(sum, "skipped_too_long", (double)y->skipped);
    zc_eval_metric_add(sum, "wilson95_lo", y->scored ? lo : NAN);
    zc_eval_metric_add(sum, "wilson95_hi", y->scored ? hi : NAN);
    zc_eval_metric_add(sum, "generated_tokens", (double)y->generated);
    zc_eval_metric_add(sum, "stopped_by_string", (double)y->by_stop);
    zc_eval_metric_add(sum, "stopped_by_eos", (double)y->by_eos);
    zc_eval_metric_add(sum, "max_new", max_new);
    if (t->ref) {
        zc_eval_metric_add(sum, "answer_kl", y->kl_items ? y->kl_sum / (double)y->kl_items : NAN);
        zc_eval_metric_add(sum, "answer_kl_items", (double)y->kl_items);
    }
    snprintf(sum->note, sizeof sum->note,
             "the model context is %d tokens (the bundled tiny models were trained at 512): %lld of %lld prompts "
             "were longer (or over --kv-budget) and skipped (longest seen: %lld tokens); stop reasons cover this "
             "session's items",
             s->n_ctx, (long long)y->skipped, (long long)items, (long long)y->longest_prompt);
}

/* --answer-kl's reference: the same model and context size with an fp16 cache. */
static int open_reference(gen_task *t, const zc_model *m, const zc_eval_opts *o) {
    if (!t->answer) return zc_error(ZC_ERR_ARG, "eval %s: --answer-kl needs a task with an expected answer", t->name);
    zc_context_params cp;
    zc_context_params_default(&cp);
    cp.n_ctx = o->n_ctx;
    cp.n_threads = o->n_threads;
    cp.kv_policy = "fp16";
    return zc_context_create(m, &cp, &t->ref);
}

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
    if (t->g->answer_kl && (rc = open_reference(t, m, o)) != ZC_OK) {
        zc_eval_session_close(&s);
        zc_eval_jsonl_free(&t->data);
        return rc;
    }
    int64_t first, end, resumed = 0;
    zc_eval_item_range(o, (int64_t)t->data.n, &first, &end);
    for (int64_t i = first; i < end; i++) resumed += zc_eval_results_find(&s.results, i) != NULL;
    zc_eval_progress_start(&s.progress, t->name, end - first, resumed);
    gen_tally y = {0};
    gen_bufs b = {0};
    int64_t done = resumed;
    for (int64_t i = first; i < end && rc == ZC_OK; i++) {
        const zc_eval_done *d = zc_eval_results_find(&s.results, i);
        if (d) {
            rc = gen_resume(t, &s, d, &y);
            continue;
        }
        rc = gen_item(t, &s, i, max_new, &b, &y);
        if (s.show_progress) zc_eval_progress_update(&s.progress, ++done, false);
    }
    if (rc == ZC_OK) {
        if (s.show_progress) zc_eval_progress_update(&s.progress, end - first, true);
        gen_summary(t, &s, &y, end - first, max_new, sum);
        if (t->finish) rc = t->finish(t);
    }
    free(b.ids);
    zc_sb_free(&b.prompt);
    zc_sb_free(&b.text);
    zc_sb_free(&b.rec);
    zc_eval_session_close(&s);
    zc_context_free(t->ref);
    t->ref = NULL;
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

static int lines_expected(gen_task *t, size_t row, int64_t *expected) {
    if (!zc_json_int(zc_json_get(t->data.rows[row], "expected_number"), expected))
        return zc_error(ZC_ERR_FORMAT, "%s: record %zu: missing integer \"expected_number\"", t->path, row + 1);
    return ZC_OK;
}

/* The answer the retrieval model is trained to give: "<N>". */
static int lines_answer(gen_task *t, size_t row, zc_strbuf *out) {
    int64_t expected;
    int rc = lines_expected(t, row, &expected);
    if (rc == ZC_OK) zc_sb_printf(out, "<%lld>", (long long)expected);
    return rc;
}

static int lines_judge(gen_task *t, size_t row, const char *text, double *score, zc_strbuf *rec) {
    int64_t expected;
    int rc = lines_expected(t, row, &expected);
    if (rc != ZC_OK) return rc;
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
                  .judge = lines_judge, .answer = lines_answer, .g = g};
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
