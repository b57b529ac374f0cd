/* Shared machinery of the task runners: see run.h. */
#include "eval/run.h"

#include <stdlib.h>
#include <string.h>

#include "kv/zipcache_internal.h"
#include "model/model.h"
#include "util/error.h"
#include "util/file.h"
#include "util/timer.h"

int zc_eval_session_open(zc_eval_session *s, const zc_model *m, const char *model_path, const zc_eval_opts *o,
                         const char *task, const char *data, const char *task_opts, int logits_rows,
                         zc_eval_summary *sum) {
    memset(s, 0, sizeof *s);
    memset(sum, 0, sizeof *sum);
    s->model = m;
    s->info = zc_model_get_info(m);
    s->sum = sum;
    s->show_progress = o->progress;
    snprintf(sum->task, sizeof sum->task, "%s", task);
    snprintf(sum->model, sizeof sum->model, "%s", model_path);
    snprintf(sum->data, sizeof sum->data, "%s", data ? data : "");
    sum->kv = o->kv;
    zc_kv_config_describe(&o->kv, sum->kv_desc, sizeof sum->kv_desc);

    zc_context_params cp;
    zc_context_params_default(&cp);
    cp.n_ctx = o->n_ctx;
    cp.n_threads = o->n_threads;
    if (o->n_batch > 0) cp.n_batch = o->n_batch;
    cp.kv = &o->kv;
    if (logits_rows > cp.n_batch) cp.n_batch = logits_rows;
    int rc = zc_context_create(m, &cp, &s->ctx);
    if (rc != ZC_OK) return rc;
    s->n_ctx = zc_context_n_ctx(s->ctx);
    s->n_vocab = s->info->n_vocab;
    sum->n_ctx = s->n_ctx;
    /* The context may have normalized the options: report what runs. */
    sum->kv = *zc_context_kv_config(s->ctx);
    zc_kv_config_describe(&sum->kv, sum->kv_desc, sizeof sum->kv_desc);
    size_t n;
    if (zc_mul_size((size_t)logits_rows, (size_t)s->n_vocab * sizeof(float), &n) ||
        !(s->logits = zc_malloc(n))) {
        zc_eval_session_close(s);
        return ZC_ERR_NOMEM;
    }
    /* The description leaves out the probe seed and the group/residual/budget
     * knobs of other policies; the key names them all so a resumed file never
     * mixes configurations (a batch size other than the default included). */
    const zc_kv_config *k = &sum->kv;
    char batch_key[32] = "";
    if (o->n_batch > 0) snprintf(batch_key, sizeof batch_key, " batch %d", o->n_batch);
    snprintf(s->run, sizeof s->run, "%s|%s|%s|ctx %d|%s|seed %llu group %d residual %d keep %g bits %d|%s%s", task,
             model_path, sum->data, s->n_ctx, sum->kv_desc, (unsigned long long)k->seed, k->group_size, k->residual,
             (double)k->budget_ratio, zc_kv_config_bits(k), task_opts, batch_key);
    rc = zc_eval_results_open(&s->results, o->results, s->run);
    if (rc != ZC_OK) zc_eval_session_close(s);
    return rc;
}

void zc_eval_session_close(zc_eval_session *s) {
    zc_eval_results_close(&s->results);
    zc_context_free(s->ctx);
    free(s->logits);
    s->ctx = NULL;
    s->logits = NULL;
}

void zc_eval_session_sample_kv(zc_eval_session *s, zc_eval_cost *c) {
    zc_kv_usage u;
    zc_context_kv_usage(s->ctx, &u);
    c->kv_total = (double)u.total;
    c->kv_window = (double)u.window;
    c->kv_elements = (double)u.elements;
    int chosen;
    c->kv_rot_layers = zc_zip_rotation_count(zc_ctx_seq_kv(s->ctx, 0), &chosen);
    c->kv_rot_chosen = chosen;
}

void zc_eval_record_begin(zc_strbuf *b, const zc_eval_session *s, int64_t item, double score, const zc_eval_cost *c) {
    zc_sb_printf(b, "{\"run\":");
    zc_sb_json_str(b, s->run, strlen(s->run));
    zc_sb_printf(b, ",\"item\":%lld,\"score\":", (long long)item);
    zc_sb_json_num(b, score);
    zc_sb_printf(b, ",\"tokens\":%.0f,\"seconds\":", c->tokens);
    zc_sb_json_num(b, c->seconds);
    zc_sb_printf(b, ",\"kv_total\":%.0f,\"kv_window\":%.0f,\"kv_elements\":%.0f", c->kv_total, c->kv_window,
                 c->kv_elements);
}

int zc_eval_record_resume(zc_eval_session *s, const zc_eval_done *d) {
    zc_json_doc *doc;
    const zc_json *root;
    int rc = zc_json_parse(d->json, strlen(d->json), s->results.path, &doc, &root);
    if (rc != ZC_OK) return rc;
    zc_eval_cost c = {0};
    bool ok = zc_json_num(zc_json_get(root, "tokens"), &c.tokens) &&
              zc_json_num(zc_json_get(root, "seconds"), &c.seconds) &&
              zc_json_num(zc_json_get(root, "kv_total"), &c.kv_total) &&
              zc_json_num(zc_json_get(root, "kv_window"), &c.kv_window) &&
              zc_json_num(zc_json_get(root, "kv_elements"), &c.kv_elements);
    zc_json_free(doc);
    if (!ok)
        return zc_error(ZC_ERR_FORMAT, "%s: item %lld: record lacks tokens/seconds/kv fields", s->results.path,
                        (long long)d->item);
    zc_eval_summary_add_cost(s->sum, &c);
    return ZC_OK;
}

void zc_eval_item_range(const zc_eval_opts *o, int64_t total, int64_t *first, int64_t *end) {
    *first = o->offset < total ? o->offset : total;
    *end = total;
    if (o->limit > 0 && *first + o->limit < total) *end = *first + o->limit;
}

/* ---- Greedy generation -------------------------------------------------------- */
int zc_eval_generate(zc_eval_session *s, const int32_t *prompt, int n_prompt, int max_new,
                     const char *const *stops, int n_stops, zc_strbuf *out, zc_eval_gen_result *r) {
    memset(r, 0, sizeof *r);
    out->len = 0;
    if (out->s) out->s[0] = 0;
    int rc = zc_context_reset(s->ctx);
    if (rc != ZC_OK) return rc;
    double t0 = zc_now();
    rc = zc_decode(s->ctx, prompt, n_prompt, ZC_LOGITS_LAST, s->logits);
    if (rc != ZC_OK) return rc;
    r->cost.tokens = n_prompt;
    zc_detok dt;
    zc_detok_init(&dt);
    size_t longest = 0;
    for (int k = 0; k < n_stops; k++)
        if (strlen(stops[k]) > longest) longest = strlen(stops[k]);
    while (r->n_generated < max_new) {
        int32_t tok = zc_eval_argmax(s->logits, s->n_vocab);
        if (zc_model_is_eog(s->model, tok)) {
            r->hit_eos = true;
            break;
        }
        char piece[64];
        size_t n;
        if ((rc = zc_detokenize(s->model, &dt, tok, piece, sizeof piece, &n)) != ZC_OK) return rc;
        /* Only a stop string ending in the new piece can be new: search the
         * tail that could hold one. */
        size_t before = out->len;
        zc_sb_append(out, piece, n);
        if (out->err) return out->err;
        r->n_generated++;
        size_t from = before > longest ? before - longest : 0;
        size_t cut = from + zc_eval_stop_at(out->s + from, out->len - from, stops, n_stops);
        if (cut < out->len) {
            out->len = cut;
            out->s[cut] = 0;
            r->hit_stop = true;
            break;
        }
        if (r->n_generated == max_new) break;
        if (zc_context_pos(s->ctx) + 1 > s->n_ctx) {
            r->hit_ctx = true;
            break;
        }
        rc = zc_decode(s->ctx, &tok, 1, ZC_LOGITS_LAST, s->logits);
        if (rc == ZC_ERR_LIMIT) { /* the context fits (checked above): the cache reached --kv-budget */
            r->hit_budget = true;
            break;
        }
        if (rc != ZC_OK) return rc;
        r->cost.tokens += 1;
    }
    r->cost.seconds = zc_now() - t0;
    zc_eval_session_sample_kv(s, &r->cost);
    return ZC_OK;
}

/* ---- JSONL data ---------------------------------------------------------------- */
int zc_eval_jsonl_read(const char *path, zc_eval_jsonl *out) {
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    int rc = zc_read_file(path, (size_t)1 << 32, &text, &len);
    if (rc != ZC_OK) return rc;
    size_t cap = 0, line = 0;
    for (size_t pos = 0; pos < len;) {
        char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        line++;
        bool blank = true;
        for (size_t i = 0; i < n && blank; i++) blank = text[pos + i] == ' ' || text[pos + i] == '\r';
        if (!blank) {
            if (out->n == cap) {
                cap = cap ? 2 * cap : 256;
                zc_json_doc **docs = zc_realloc(out->docs, cap * sizeof *docs);
                if (docs) out->docs = docs;
                const zc_json **rows = docs ? zc_realloc(out->rows, cap * sizeof *rows) : NULL;
                if (rows) out->rows = rows;
                if (!docs || !rows) {
                    rc = ZC_ERR_NOMEM;
                    break;
                }
            }
            char src[1100];
            snprintf(src, sizeof src, "%s: line %zu", path, line);
            rc = zc_json_parse(text + pos, n, src, &out->docs[out->n], &out->rows[out->n]);
            if (rc != ZC_OK) break;
            if (out->rows[out->n]->type != ZC_JSON_OBJECT) {
                zc_json_free(out->docs[out->n]);
                rc = zc_error(ZC_ERR_FORMAT, "%s: line %zu: not a JSON object", path, line);
                break;
            }
            out->n++;
        }
        pos += n + 1;
    }
    free(text);
    if (rc != ZC_OK) zc_eval_jsonl_free(out);
    return rc;
}

void zc_eval_jsonl_free(zc_eval_jsonl *j) {
    for (size_t i = 0; i < j->n; i++) zc_json_free(j->docs[i]);
    free(j->docs);
    free(j->rows);
    memset(j, 0, sizeof *j);
}

const char *zc_eval_jsonl_str(const zc_eval_jsonl *j, const char *path, size_t row, const char *key) {
    const char *v = zc_json_str(zc_json_get(j->rows[row], key));
    if (!v) zc_error(ZC_ERR_FORMAT, "%s: record %zu: missing string \"%s\"", path, row + 1, key);
    return v;
}
