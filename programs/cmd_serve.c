/* zipcache serve: an OpenAI-compatible HTTP server (libmicrohttpd) over one
 * context holding --parallel sequences ("slots") under one --kv-budget.
 *
 * Threads: libmicrohttpd runs one thread per connection; those parse and
 * check requests, format the conversation, tokenize, and queue a job. One
 * scheduler thread owns the context: it admits queued jobs into free slots
 * (prefilling only what the slot's cache does not already hold: a chat's
 * second turn reuses the first), then runs decode steps in which every active
 * slot samples its next token and all of them go through one batched forward
 * pass (zc_decode_batch). Jobs and counters are shared under one mutex; each
 * job has a condition variable its connection waits on.
 *
 * Bad input never crashes or reaches the model unchecked: the body is read up
 * to --max-body (413 beyond), parsed strictly (400 naming the parameter), a
 * prompt longer than the context is 400, a full queue is 503, and a prompt
 * that cannot fit the KV budget even with the other slots idle is 503. When
 * the budget runs out during decoding, idle slots' caches are dropped first,
 * then the longest running session ends with finish_reason "length". */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "cmds.h"
#include "kv/kv.h"
#include "serve.h"
#include "util/file.h"
#include "util/json.h"
#include "util/timer.h"
#include "zipcache.h"

static const char USAGE[] =
    "usage: zipcache serve [-m MODEL] [--host 127.0.0.1] [--port 8080] [options]\n"
    "  -m PATH                GGUF file or Hugging Face directory (default: stories260K from the assets)\n"
    "  --host ADDR            IPv4 address to listen on (default 127.0.0.1; localhost = 127.0.0.1)\n"
    "  --port N               TCP port (default 8080; 0 = any free port, printed on stderr)\n"
    "  --parallel N, -np N    sessions decoded together, each with its own KV cache (default 4)\n"
    "  -c N                   context per session in tokens (default: the model's, at most 8192)\n"
    "  -t N                   threads (default: all cores)\n"
    "  -b N                   prompt tokens per forward batch (default 512)\n"
    "  --queue N              requests waiting for a slot before 503 (default 64)\n"
    "  --max-body BYTES       largest request body (default 8M; K/M suffixes), 413 beyond\n"
    "  --chat-template NAME   llama3, chatml, mistral, gemma, llama2, phi3 (default: the model's template)\n"
    "  --chat-template-file F a Jinja chat template to recognize instead of the model's\n"
    "  --slot-save-path DIR   enables POST /slots/ID?action=save|restore {\"filename\": NAME}\n"
    "  --apply-template FILE  print the conversation in FILE ({\"messages\": [...]}) formatted with the\n"
    "                         chat template, and exit\n"
    "  --kv POLICY, --kv-*    KV cache policy and options as in zipcache run; --kv-budget BYTES caps the\n"
    "                         caches of all sessions together\n"
    "endpoints: POST /v1/completions, POST /v1/chat/completions (\"stream\": true for server-sent events),\n"
    "           GET /v1/models, GET /health, GET /metrics (Prometheus), GET /slots, POST /slots/ID?action=...\n";

enum { JOB_GEN, JOB_SAVE, JOB_RESTORE };

typedef struct job job;
struct job {
    int kind;
    serve_request req;
    int32_t *prompt; /* [n_prompt] */
    int n_prompt;
    int max_tokens;
    int slot;                 /* JOB_SAVE/RESTORE: the slot; JOB_GEN: the slot it ran in */
    char path[4200], filename[256];
    /* results, under S.mu */
    serve_buf out;            /* generated text released to the client (stop strings held back) */
    int done, cancelled, n_gen, n_reused;
    const char *finish;       /* "stop" or "length" */
    int status;               /* 0, or the HTTP status of an error */
    char err[512];
    serve_buf result;         /* JOB_SAVE/RESTORE: the response body */
    int refs;
    pthread_cond_t cv;
    job *next;
    uint64_t id;              /* JOB_GEN: the response's id and creation time */
    long created;
};

typedef struct {
    job *j;
    int32_t *toks;            /* [n_ctx] the tokens the slot's cache holds */
    int n_toks;
    float *logits;            /* [n_vocab] after the last decoded token */
    zc_sampler *smp;
    int32_t next;             /* the token sampled for this step */
    zc_detok dt;
    serve_buf text;           /* all text of the current job (stop-string search) */
    size_t released;          /* bytes of text handed to the job */
    uint64_t last_used;
    size_t kv_bytes;          /* snapshot for /metrics, under S.mu */
} slot;

static struct {
    zc_model *m;
    const zc_model_info *info;
    zc_context *ctx;
    zc_kv_config kv;
    serve_template tmpl;
    char bos[64], eos[64];
    int32_t eot_tok;          /* the template's end-of-turn token, -1 if none */
    int n_par, n_ctx, queue_max;
    size_t max_body;
    const char *slot_dir;
    char model_id[256];
    slot *slots;
    float *batch_logits;      /* [n_par][n_vocab] */
    int *step_seqs;           /* [n_par] rows of a decode step: slot ids */
    int32_t *step_toks;       /* [n_par] and their tokens */
    uint64_t use_clock;
    pthread_mutex_t mu;
    pthread_cond_t work;
    job *qhead, *qtail, *ctl;
    int n_queued, n_active, admit_blocked, stopping;
    uint64_t next_id;
    /* metrics */
    uint64_t status_count[600];
    uint64_t prompt_tokens, prompt_reused, gen_tokens, steps, step_rows;
    double t_decode, t_prefill;
    size_t kv_total;
} S;

static double now_s(void) { return zc_now(); }

/* ---- Jobs ------------------------------------------------------------------ */

static job *job_new(int kind) {
    job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->kind = kind;
    j->refs = 2; /* the connection and the scheduler */
    pthread_cond_init(&j->cv, NULL);
    return j;
}

/* Drop one reference (under S.mu). */
static void job_release(job *j) {
    if (--j->refs > 0) return;
    serve_request_free(&j->req);
    free(j->prompt);
    sb_free(&j->out);
    sb_free(&j->result);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static void job_fail(job *j, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void job_fail(job *j, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err, sizeof j->err, fmt, ap);
    va_end(ap);
    j->status = status;
}

/* ---- Slots (scheduler thread; S.mu where noted) ---------------------------- */

static void release_text(slot *s, size_t upto) { /* under S.mu */
    if (upto > s->released) {
        sb_put(&s->j->out, s->text.s + s->released, upto - s->released);
        s->released = upto;
    }
}

/* End the slot's job (under S.mu): the rest of its text, the reason, wake the client. */
static void slot_finish(int si, const char *finish, int release_all) {
    slot *s = &S.slots[si];
    job *j = s->j;
    if (release_all) release_text(s, s->text.len);
    j->finish = finish;
    j->done = 1;
    pthread_cond_broadcast(&j->cv);
    job_release(j);
    s->j = NULL;
    zc_sampler_free(s->smp);
    s->smp = NULL;
    sb_free(&s->text);
    s->released = 0;
    S.n_active--;
    S.admit_blocked = 0; /* memory may be free again */
}

/* Drop the caches of idle slots (the budget ran out). Returns how many. */
static int drop_idle_caches(void) {
    int n = 0;
    for (int i = 0; i < S.n_par; i++)
        if (!S.slots[i].j && S.slots[i].n_toks > 0 && zc_seq_truncate(S.ctx, i, 0) == ZC_OK) {
            S.slots[i].n_toks = 0;
            n++;
        }
    return n;
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int n = 0;
    while (n < na && n < nb && a[n] == b[n]) n++;
    return n;
}

/* A free slot for job j: the longest cached prefix of its prompt, else the least recently used. */
static int pick_slot(const job *j) {
    int best = -1, best_len = -1;
    for (int i = 0; i < S.n_par; i++) {
        const slot *s = &S.slots[i];
        if (s->j) continue;
        int len = common_prefix(s->toks, s->n_toks, j->prompt, j->n_prompt);
        if (len <= 1) len = 0; /* a shared BOS alone is no reason to evict a conversation */
        if (len > best_len || (len == best_len && s->last_used < S.slots[best].last_used)) {
            best = i;
            best_len = len;
        }
    }
    return best;
}

static int make_sampler(slot *s, const serve_request *r) {
    zc_sampler_params p;
    zc_sampler_params_default(&p);
    p.temp = (float)r->temperature;
    p.top_k = r->top_k;
    p.top_p = (float)r->top_p;
    p.min_p = (float)r->min_p;
    p.repeat_penalty = (float)r->repeat_penalty;
    static uint64_t draws; /* the scheduler thread's own counter */
    p.seed = r->has_seed ? r->seed : (uint64_t)time(NULL) ^ (++draws * 0x9e3779b97f4a7c15ull);
    return zc_sampler_create(&p, S.info->n_vocab, &s->smp);
}

/* Bring slot si's cache to the job's prompt, decoding only what it lacks.
 * Returns 0 (ready), 1 (the job failed, j->status set), 2 (the budget is
 * full while other slots run: requeue). Runs without S.mu. */
static int prefill(int si, job *j) {
    slot *s = &S.slots[si];
    int keep = common_prefix(s->toks, s->n_toks, j->prompt, j->n_prompt);
    if (keep == j->n_prompt) keep--; /* the last prompt token is decoded again for its logits */
    if (keep < s->n_toks && zc_seq_truncate(S.ctx, si, keep) != ZC_OK) {
        keep = 0; /* a compressed cache cannot be cut there: start over */
        zc_seq_truncate(S.ctx, si, 0);
    }
    pthread_mutex_lock(&S.mu); /* n_toks is read by GET /slots */
    s->n_toks = keep;
    pthread_mutex_unlock(&S.mu);
    if (make_sampler(s, &j->req) != ZC_OK) {
        job_fail(j, 500, "sampler: %s", zc_last_error());
        return 1;
    }
    for (int i = 0; i < j->n_prompt; i++) zc_sampler_accept(s->smp, j->prompt[i]);
    double t0 = now_s();
    int rc = zc_decode_seq(S.ctx, si, j->prompt + keep, j->n_prompt - keep, ZC_LOGITS_LAST, s->logits);
    if (rc == ZC_ERR_LIMIT && strstr(zc_last_error(), "budget")) {
        pthread_mutex_lock(&S.mu);
        int others = S.n_active > 1, dropped = drop_idle_caches();
        pthread_mutex_unlock(&S.mu);
        if (dropped) rc = zc_decode_seq(S.ctx, si, j->prompt + keep, j->n_prompt - keep, ZC_LOGITS_LAST, s->logits);
        if (rc == ZC_ERR_LIMIT && others && strstr(zc_last_error(), "budget")) return 2;
        if (rc == ZC_ERR_LIMIT) {
            job_fail(j, 503, "the prompt of %d tokens does not fit the KV cache budget: %s", j->n_prompt, zc_last_error());
            return 1;
        }
    }
    if (rc != ZC_OK) {
        job_fail(j, rc == ZC_ERR_LIMIT ? 400 : 500, "prefill: %s", zc_last_error());
        zc_seq_truncate(S.ctx, si, 0);
        pthread_mutex_lock(&S.mu);
        s->n_toks = 0;
        pthread_mutex_unlock(&S.mu);
        return 1;
    }
    memcpy(s->toks + keep, j->prompt + keep, (size_t)(j->n_prompt - keep) * sizeof(int32_t));
    pthread_mutex_lock(&S.mu);
    s->n_toks = j->n_prompt;
    S.t_prefill += now_s() - t0;
    S.prompt_tokens += (uint64_t)j->n_prompt;
    S.prompt_reused += (uint64_t)keep;
    j->n_reused = keep;
    pthread_mutex_unlock(&S.mu);
    zc_detok_init(&s->dt);
    s->dt.at_start = 0; /* the text continues the prompt: keep a leading space */
    s->last_used = ++S.use_clock;
    return 0;
}

/* Append token tok's text; returns 1 when a stop string completed (text
 * released up to it), else releases what cannot start a stop string. Under S.mu. */
static int take_text(slot *s, int32_t tok) {
    char piece[256];
    size_t len = 0;
    if (zc_detokenize(S.m, &s->dt, tok, piece, sizeof piece, &len) == ZC_OK) sb_put(&s->text, piece, len);
    const serve_request *r = &s->j->req;
    size_t maxlen = 0;
    for (int k = 0; k < r->n_stop; k++) maxlen = strlen(r->stop[k]) > maxlen ? strlen(r->stop[k]) : maxlen;
    if (!maxlen) {
        release_text(s, s->text.len);
        return 0;
    }
    size_t from = s->released > maxlen ? s->released - maxlen : 0, cut = (size_t)-1;
    for (int k = 0; k < r->n_stop; k++) {
        const char *hit = s->text.len ? memmem(s->text.s + from, s->text.len - from, r->stop[k], strlen(r->stop[k])) : NULL;
        if (hit && (size_t)(hit - s->text.s) < cut) cut = (size_t)(hit - s->text.s);
    }
    if (cut != (size_t)-1) {
        release_text(s, cut);
        return 1;
    }
    /* hold back the longest tail that is a prefix of a stop string */
    size_t hold = 0;
    for (int k = 0; k < r->n_stop; k++)
        for (size_t n = strlen(r->stop[k]) - 1; n > hold; n--)
            if (n <= s->text.len && !memcmp(s->text.s + s->text.len - n, r->stop[k], n)) {
                hold = n;
                break;
            }
    release_text(s, s->text.len - hold);
    return 0;
}

/* One decode step of every active slot. Runs without S.mu except where taken. */
static void step(void) {
    int *seqs = S.step_seqs, nb = 0;
    int32_t *toks = S.step_toks;
    /* sample without S.mu: only this thread assigns slots and touches their samplers and logits */
    for (int i = 0; i < S.n_par; i++)
        if (S.slots[i].j) S.slots[i].next = zc_sampler_sample(S.slots[i].smp, S.slots[i].logits);
    pthread_mutex_lock(&S.mu);
    for (int i = 0; i < S.n_par; i++) {
        slot *s = &S.slots[i];
        if (!s->j) continue;
        if (s->j->cancelled) {
            slot_finish(i, "cancelled", 0);
            continue;
        }
        int32_t tok = s->next;
        if (zc_model_is_eog(S.m, tok) || tok == S.eot_tok) {
            slot_finish(i, "stop", 1);
            continue;
        }
        s->j->n_gen++;
        S.gen_tokens++;
        if (take_text(s, tok)) {
            slot_finish(i, "stop", 0);
            continue;
        }
        pthread_cond_broadcast(&s->j->cv);
        if (s->j->n_gen >= s->j->max_tokens || s->n_toks >= S.n_ctx) {
            slot_finish(i, "length", 1);
            continue;
        }
        seqs[nb] = i;
        toks[nb++] = tok;
    }
    pthread_mutex_unlock(&S.mu);
    if (!nb) return;
    double t0 = now_s();
    int rc = zc_decode_batch(S.ctx, nb, seqs, toks, S.batch_logits);
    while (rc == ZC_ERR_LIMIT && nb > 0) {
        /* the budget: idle caches first, then the longest session stops */
        pthread_mutex_lock(&S.mu);
        if (!drop_idle_caches()) {
            int w = 0;
            for (int r = 1; r < nb; r++)
                if (S.slots[seqs[r]].n_toks > S.slots[seqs[w]].n_toks) w = r;
            slot_finish(seqs[w], "length", 1);
            seqs[w] = seqs[nb - 1];
            toks[w] = toks[nb - 1];
            nb--;
        }
        pthread_mutex_unlock(&S.mu);
        rc = nb ? zc_decode_batch(S.ctx, nb, seqs, toks, S.batch_logits) : ZC_OK;
    }
    pthread_mutex_lock(&S.mu);
    if (rc != ZC_OK) {
        for (int r = 0; r < nb; r++) {
            job_fail(S.slots[seqs[r]].j, 500, "decode: %s", zc_last_error());
            slot_finish(seqs[r], "error", 0);
        }
        nb = 0;
    }
    for (int r = 0; r < nb; r++) {
        slot *s = &S.slots[seqs[r]];
        memcpy(s->logits, S.batch_logits + (size_t)r * S.info->n_vocab, sizeof(float) * (size_t)S.info->n_vocab);
        s->toks[s->n_toks++] = toks[r];
    }
    S.t_decode += now_s() - t0;
    S.steps++;
    S.step_rows += (uint64_t)nb;
    pthread_mutex_unlock(&S.mu);
}

/* Save or restore a slot (JOB_SAVE/JOB_RESTORE), without S.mu; the slot is idle. */
static void run_control(job *j) {
    slot *s = &S.slots[j->slot];
    double t0 = now_s();
    if (j->kind == JOB_SAVE) {
        if (zc_seq_save_file(S.ctx, j->slot, s->toks, j->path) != ZC_OK) {
            job_fail(j, 500, "%s", zc_last_error());
            return;
        }
        struct stat st;
        long long bytes = stat(j->path, &st) == 0 ? (long long)st.st_size : -1;
        sb_printf(&j->result, "{\"id_slot\":%d,\"filename\":", j->slot);
        sb_json_str(&j->result, j->filename, strlen(j->filename));
        sb_printf(&j->result, ",\"n_saved\":%d,\"n_written\":%lld,\"timings\":{\"save_ms\":%.3f}}", s->n_toks, bytes,
                  (now_s() - t0) * 1e3);
    } else {
        int32_t *ids = NULL;
        int n = 0;
        int rc = zc_seq_load_file(S.ctx, j->slot, j->path, &ids, &n);
        if (rc != ZC_OK) {
            job_fail(j, rc == ZC_ERR_IO ? 404 : 400, "%s", zc_last_error());
            return;
        }
        if (n) memcpy(s->toks, ids, (size_t)n * sizeof(int32_t));
        pthread_mutex_lock(&S.mu);
        s->n_toks = n;
        pthread_mutex_unlock(&S.mu);
        free(ids);
        sb_printf(&j->result, "{\"id_slot\":%d,\"filename\":", j->slot);
        sb_json_str(&j->result, j->filename, strlen(j->filename));
        sb_printf(&j->result, ",\"n_restored\":%d,\"timings\":{\"restore_ms\":%.3f}}", n, (now_s() - t0) * 1e3);
    }
}

static void *scheduler(void *arg) {
    (void)arg;
    pthread_mutex_lock(&S.mu);
    while (!S.stopping) {
        while (S.ctl) {
            job *j = S.ctl;
            S.ctl = j->next;
            if (S.slots[j->slot].j) {
                job_fail(j, 409, "slot %d is busy with a request", j->slot);
            } else {
                pthread_mutex_unlock(&S.mu);
                run_control(j);
                pthread_mutex_lock(&S.mu);
            }
            j->done = 1;
            pthread_cond_broadcast(&j->cv);
            job_release(j);
        }
        while (S.qhead && !S.admit_blocked) {
            int si = pick_slot(S.qhead);
            if (si < 0) break;
            job *j = S.qhead;
            S.qhead = j->next;
            if (!S.qhead) S.qtail = NULL;
            S.n_queued--;
            if (j->cancelled) {
                j->done = 1;
                job_release(j);
                continue;
            }
            S.slots[si].j = j;
            j->slot = si;
            S.n_active++;
            pthread_mutex_unlock(&S.mu);
            int rc = prefill(si, j);
            pthread_mutex_lock(&S.mu);
            if (rc == 1) {
                slot_finish(si, "error", 0);
            } else if (rc == 2) { /* back to the head of the queue until a session ends */
                S.slots[si].j = NULL;
                zc_sampler_free(S.slots[si].smp);
                S.slots[si].smp = NULL;
                S.n_active--;
                j->next = S.qhead;
                S.qhead = j;
                if (!S.qtail) S.qtail = j;
                S.n_queued++;
                S.admit_blocked = 1;
            }
        }
        if (!S.n_active) {
            pthread_cond_wait(&S.work, &S.mu);
            continue;
        }
        pthread_mutex_unlock(&S.mu);
        step();
        pthread_mutex_lock(&S.mu);
        size_t total = 0;
        for (int i = 0; i < S.n_par; i++) {
            zc_kv_usage u;
            zc_seq_kv_usage(S.ctx, i, &u);
            S.slots[i].kv_bytes = u.total;
            total += u.total;
        }
        S.kv_total = total;
    }
    pthread_mutex_unlock(&S.mu);
    return NULL;
}

/* ---- HTTP ------------------------------------------------------------------- */

typedef struct {
    serve_buf body;
    int too_big;
} conn;

static const char *error_type(int status) {
    return status == 503 ? "server_error" : status >= 500 ? "server_error" : status == 404 ? "not_found_error"
                                                                                           : "invalid_request_error";
}

static enum MHD_Result send_text(struct MHD_Connection *c, int status, const char *type, const char *s, size_t n) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)s, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    pthread_mutex_lock(&S.mu);
    S.status_count[status < 600 ? status : 599]++;
    pthread_mutex_unlock(&S.mu);
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, serve_buf *b) {
    if (b->oom) return send_text(c, 500, "application/json", "{\"error\":{\"message\":\"out of memory\"}}", 36);
    return send_text(c, status, "application/json", b->s ? b->s : "{}", b->s ? b->len : 2);
}

static void error_json(serve_buf *b, int status, const char *msg, const char *param, const char *code) {
    sb_str(b, "{\"error\":{\"message\":");
    sb_json_str(b, msg, strlen(msg));
    sb_printf(b, ",\"type\":\"%s\",\"param\":", error_type(status));
    if (param && *param)
        sb_json_str(b, param, strlen(param));
    else
        sb_str(b, "null");
    sb_str(b, ",\"code\":");
    if (code)
        sb_json_str(b, code, strlen(code));
    else
        sb_str(b, "null");
    sb_str(b, "}}");
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *param, const char *code,
                                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *param, const char *code,
                                  const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    serve_buf b = {0};
    error_json(&b, status, msg, param, code);
    enum MHD_Result ok = send_json(c, status, &b);
    sb_free(&b);
    return ok;
}

static void usage_json(serve_buf *b, const job *j) {
    sb_printf(b, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
                 "\"prompt_tokens_details\":{\"cached_tokens\":%d}}",
              j->n_prompt, j->n_gen, j->n_prompt + j->n_gen, j->n_reused);
}

/* The head of every completion object: id, object, created, model. */
static void head_json(serve_buf *b, const job *j, const char *object, uint64_t id, long created) {
    sb_printf(b, "{\"id\":\"%s-%llu\",\"object\":\"%s\",\"created\":%ld,\"model\":", j->req.chat ? "chatcmpl" : "cmpl",
              (unsigned long long)id, object, created);
    sb_json_str(b, S.model_id, strlen(S.model_id));
}

static const char *finish_reason(const job *j) { return j->finish && !strcmp(j->finish, "length") ? "length" : "stop"; }

/* A server-sent-events stream of one job. */
typedef struct {
    job *j;
    serve_buf pending;       /* formatted events not yet handed to MHD */
    size_t off;
    size_t sent;             /* bytes of j->out already sent */
    int started, ended;
    uint64_t id;
    long created;
} sse;

static void sse_event(sse *e, serve_buf *b) {
    sb_str(&e->pending, "data: ");
    sb_put(&e->pending, b->s, b->len);
    sb_str(&e->pending, "\n\n");
    sb_free(b);
}

/* Format what the job produced since the last call (under S.mu). */
static void sse_format(sse *e) {
    job *j = e->j;
    int chat = j->req.chat;
    const char *object = chat ? "chat.completion.chunk" : "text_completion";
    if (j->status && j->done) {
        serve_buf b = {0};
        error_json(&b, j->status, j->err, NULL, NULL);
        sse_event(e, &b);
        sb_str(&e->pending, "data: [DONE]\n\n");
        e->ended = 1;
        return;
    }
    if (chat && !e->started) {
        serve_buf b = {0};
        head_json(&b, j, object, e->id, e->created);
        sb_str(&b, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
                   "\"finish_reason\":null}]}");
        sse_event(e, &b);
    }
    e->started = 1;
    if (j->out.len > e->sent) {
        serve_buf b = {0};
        head_json(&b, j, object, e->id, e->created);
        sb_str(&b, chat ? ",\"choices\":[{\"index\":0,\"delta\":{\"content\":" : ",\"choices\":[{\"index\":0,\"text\":");
        sb_json_str(&b, j->out.s + e->sent, j->out.len - e->sent);
        sb_str(&b, chat ? "},\"logprobs\":null,\"finish_reason\":null}]}" : ",\"logprobs\":null,\"finish_reason\":null}]}");
        sse_event(e, &b);
        e->sent = j->out.len;
    }
    if (j->done) {
        serve_buf b = {0};
        head_json(&b, j, object, e->id, e->created);
        sb_printf(&b, chat ? ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}],"
                           : ",\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"%s\"}],",
                  finish_reason(j));
        usage_json(&b, j);
        sb_str(&b, "}");
        sse_event(e, &b);
        sb_str(&e->pending, "data: [DONE]\n\n");
        e->ended = 1;
    }
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    sse *e = cls;
    for (;;) {
        if (e->off < e->pending.len) {
            size_t n = e->pending.len - e->off < max ? e->pending.len - e->off : max;
            memcpy(buf, e->pending.s + e->off, n);
            e->off += n;
            if (e->off == e->pending.len) e->off = e->pending.len = 0;
            return (ssize_t)n;
        }
        if (e->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        if (e->pending.oom) return MHD_CONTENT_READER_END_WITH_ERROR;
        pthread_mutex_lock(&S.mu);
        while (!e->j->done && e->j->out.len == e->sent && (e->started || !e->j->req.chat) && !S.stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&e->j->cv, &S.mu, &ts);
            if (!e->started) break; /* send the role chunk / headers early */
        }
        if (S.stopping && !e->j->done) {
            job_fail(e->j, 503, "the server is shutting down");
            e->j->done = 1;
        }
        sse_format(e);
        pthread_mutex_unlock(&S.mu);
    }
}

static void sse_free(void *cls) {
    sse *e = cls;
    pthread_mutex_lock(&S.mu);
    if (!e->j->done) e->j->cancelled = 1; /* the client went away: the slot stops at its next step */
    pthread_cond_signal(&S.work);
    job_release(e->j);
    pthread_mutex_unlock(&S.mu);
    sb_free(&e->pending);
    free(e);
}

static void complete_json(serve_buf *b, const job *j, uint64_t id, long created) {
    head_json(b, j, j->req.chat ? "chat.completion" : "text_completion", id, created);
    if (j->req.chat) {
        sb_str(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        sb_json_str(b, j->out.s ? j->out.s : "", j->out.len);
        sb_printf(b, "},\"logprobs\":null,\"finish_reason\":\"%s\"}],", finish_reason(j));
    } else {
        sb_str(b, ",\"choices\":[{\"index\":0,\"text\":");
        sb_json_str(b, j->out.s ? j->out.s : "", j->out.len);
        sb_printf(b, ",\"logprobs\":null,\"finish_reason\":\"%s\"}],", finish_reason(j));
    }
    usage_json(b, j);
    sb_str(b, "}");
}

/* Wait (holding S.mu, which it releases) until the scheduler is done with
 * job j, then answer: its error, its completion, or its save/restore result. */
static enum MHD_Result wait_and_reply(struct MHD_Connection *c, job *j) {
    while (!j->done && !S.stopping) pthread_cond_wait(&j->cv, &S.mu);
    serve_buf b = {0};
    int status = j->done ? j->status : 503;
    if (status)
        error_json(&b, status, j->done ? j->err : "the server is shutting down", NULL, NULL);
    else if (j->kind == JOB_GEN)
        complete_json(&b, j, j->id, j->created);
    else
        sb_put(&b, j->result.s, j->result.len);
    if (!j->done) j->cancelled = 1;
    job_release(j);
    pthread_mutex_unlock(&S.mu);
    enum MHD_Result ok = send_json(c, status ? status : 200, &b);
    sb_free(&b);
    return ok;
}

/* Format the conversation (chat) or take the prompt, and tokenize it. */
static int prepare_prompt(job *j, serve_error *err) {
    serve_buf text = {0};
    const char *src = j->req.prompt;
    size_t len = src ? strlen(src) : 0;
    int special = 0, add_bos = S.info->add_bos;
    if (j->req.chat) {
        if (!S.tmpl.kind) {
            err->status = 400;
            snprintf(err->message, sizeof err->message, "the model has no chat template: start the server with "
                     "--chat-template NAME (%s), or use /v1/completions", serve_template_names());
            return -1;
        }
        if (serve_template_apply(&S.tmpl, j->req.msgs, j->req.n_msgs, 1, S.bos, S.eos, &text, err)) {
            sb_free(&text);
            return -1;
        }
        src = text.s;
        len = text.len;
        special = 1; /* the template's markers are special tokens */
        if (S.bos[0] && !strncmp(src, S.bos, strlen(S.bos))) add_bos = 0;
    }
    int rc = zc_model_tokenize(S.m, src ? src : "", len, add_bos, special, &j->prompt, &j->n_prompt);
    sb_free(&text);
    if (rc != ZC_OK) {
        err->status = rc == ZC_ERR_LIMIT ? 400 : 500;
        snprintf(err->message, sizeof err->message, "tokenizer: %s", zc_last_error());
        return -1;
    }
    if (j->n_prompt == 0) {
        err->status = 400;
        snprintf(err->message, sizeof err->message, "the prompt is empty (the model adds no BOS token)");
        return -1;
    }
    if (j->n_prompt >= S.n_ctx) {
        err->status = 400;
        snprintf(err->param, sizeof err->param, j->req.chat ? "messages" : "prompt");
        snprintf(err->message, sizeof err->message,
                 "the prompt is %d tokens; this server's context holds %d (prompt and completion together)",
                 j->n_prompt, S.n_ctx);
        return -1;
    }
    long long room = S.n_ctx - j->n_prompt;
    long long want = j->req.max_tokens > 0 ? j->req.max_tokens : j->req.chat ? room : 16;
    j->max_tokens = (int)(want < room ? want : room);
    return 0;
}

static enum MHD_Result handle_generate(struct MHD_Connection *c, conn *st, int chat) {
    job *j = job_new(JOB_GEN);
    if (!j) return send_error(c, 503, NULL, NULL, "out of memory");
    serve_error err;
    if (serve_parse_request(st->body.s ? st->body.s : "", st->body.len, chat, &j->req, &err) ||
        prepare_prompt(j, &err)) {
        j->refs = 1;
        pthread_mutex_lock(&S.mu);
        job_release(j);
        pthread_mutex_unlock(&S.mu);
        return send_error(c, err.status ? err.status : 400, err.param, err.status == 400 && strstr(err.message, "context")
                                                                               ? "context_length_exceeded"
                                                                               : NULL,
                          "%s", err.message);
    }
    for (int k = 0; chat && k < SERVE_MAX_STOP && S.eot_tok < 0 && *serve_template_eot(&S.tmpl); k++)
        if (!j->req.stop[k]) { /* an end-of-turn text that is not one token: a stop string */
            j->req.stop[k] = strdup(serve_template_eot(&S.tmpl));
            if (j->req.stop[k]) j->req.n_stop = k + 1;
            break;
        }
    pthread_mutex_lock(&S.mu);
    if (S.n_queued >= S.queue_max) {
        int q = S.n_queued;
        j->refs = 1;
        job_release(j);
        pthread_mutex_unlock(&S.mu);
        return send_error(c, 503, NULL, "server_busy", "the server is busy: %d requests are waiting; retry later", q);
    }
    uint64_t id = ++S.next_id;
    long created = (long)time(NULL);
    if (S.qtail)
        S.qtail->next = j;
    else
        S.qhead = j;
    S.qtail = j;
    S.n_queued++;
    pthread_cond_signal(&S.work);
    if (j->req.stream) {
        pthread_mutex_unlock(&S.mu);
        sse *e = calloc(1, sizeof *e);
        struct MHD_Response *r = e ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, e, sse_free) : NULL;
        if (!r) {
            pthread_mutex_lock(&S.mu);
            j->cancelled = 1;
            job_release(j);
            pthread_mutex_unlock(&S.mu);
            free(e);
            return send_error(c, 503, NULL, NULL, "out of memory");
        }
        e->j = j;
        e->id = id;
        e->created = created;
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        enum MHD_Result ok = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        pthread_mutex_lock(&S.mu);
        S.status_count[200]++;
        pthread_mutex_unlock(&S.mu);
        return ok;
    }
    j->id = id;
    j->created = created;
    return wait_and_reply(c, j);
}

/* POST /slots/ID?action=save|restore {"filename": NAME} */
static enum MHD_Result handle_slot(struct MHD_Connection *c, conn *st, const char *url) {
    if (!S.slot_dir) return send_error(c, 400, NULL, NULL, "slot save/restore is off: start with --slot-save-path DIR");
    char *end;
    long id = strtol(url + strlen("/slots/"), &end, 10);
    if (end == url + strlen("/slots/") || *end || id < 0 || id >= S.n_par)
        return send_error(c, 404, NULL, NULL, "no slot '%s' (slots 0..%d)", url + strlen("/slots/"), S.n_par - 1);
    const char *action = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "action");
    int kind = action && !strcmp(action, "save") ? JOB_SAVE : action && !strcmp(action, "restore") ? JOB_RESTORE : -1;
    if (kind < 0) return send_error(c, 400, "action", NULL, "action must be save or restore");
    zc_json_doc *doc = NULL;
    const zc_json *root;
    if (zc_json_parse(st->body.s ? st->body.s : "", st->body.len, "request body", &doc, &root) != ZC_OK)
        return send_error(c, 400, NULL, NULL, "malformed JSON: %s", zc_last_error());
    const char *name = zc_json_str(zc_json_get(root, "filename"));
    char fname[256] = "";
    int ok_name = name && *name && strlen(name) < sizeof fname && strcmp(name, ".") && strcmp(name, "..");
    for (const char *p = name; ok_name && *p; p++)
        ok_name = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
                  *p == '_' || *p == '-';
    if (ok_name) snprintf(fname, sizeof fname, "%s", name);
    zc_json_free(doc);
    if (!ok_name)
        return send_error(c, 400, "filename", NULL, "filename must be 1-255 characters of [A-Za-z0-9._-] (no paths)");
    job *j = job_new(kind);
    if (!j) return send_error(c, 503, NULL, NULL, "out of memory");
    j->slot = (int)id;
    snprintf(j->filename, sizeof j->filename, "%s", fname);
    snprintf(j->path, sizeof j->path, "%s/%s", S.slot_dir, fname);
    pthread_mutex_lock(&S.mu);
    j->next = S.ctl;
    S.ctl = j;
    pthread_cond_signal(&S.work);
    return wait_and_reply(c, j);
}

static enum MHD_Result handle_metrics(struct MHD_Connection *c) {
    serve_buf b = {0};
    pthread_mutex_lock(&S.mu);
    sb_str(&b, "# HELP zipcache_requests_total HTTP responses by status code.\n# TYPE zipcache_requests_total counter\n");
    for (int s = 100; s < 600; s++)
        if (S.status_count[s]) sb_printf(&b, "zipcache_requests_total{code=\"%d\"} %llu\n", s, (unsigned long long)S.status_count[s]);
    struct {
        const char *name, *type, *help;
        double v;
    } rows[] = {
        {"prompt_tokens_total", "counter", "Prompt tokens of admitted requests.", (double)S.prompt_tokens},
        {"prompt_tokens_reused_total", "counter", "Prompt tokens found in a slot's cache (not prefilled again).",
         (double)S.prompt_reused},
        {"generated_tokens_total", "counter", "Tokens generated.", (double)S.gen_tokens},
        {"decode_steps_total", "counter", "Batched decode steps.", (double)S.steps},
        {"decode_rows_total", "counter", "Sequences decoded, summed over steps.", (double)S.step_rows},
        {"decode_seconds_total", "counter", "Time in batched decode steps.", S.t_decode},
        {"prefill_seconds_total", "counter", "Time prefilling prompts.", S.t_prefill},
        {"decode_tokens_per_second", "gauge", "Aggregate decode rate over the server's life.",
         S.t_decode > 0 ? (double)S.step_rows / S.t_decode : 0},
        {"sessions_active", "gauge", "Slots generating.", (double)S.n_active},
        {"sessions_queued", "gauge", "Requests waiting for a slot.", (double)S.n_queued},
        {"slots", "gauge", "Slots (--parallel).", (double)S.n_par},
        {"kv_budget_bytes", "gauge", "The --kv-budget for all slots (0 = none).", (double)S.kv.budget_bytes},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        sb_printf(&b, "# HELP zipcache_%s %s\n# TYPE zipcache_%s %s\nzipcache_%s %.17g\n", rows[i].name, rows[i].help,
                  rows[i].name, rows[i].type, rows[i].name, rows[i].v);
    sb_printf(&b, "# HELP zipcache_kv_bytes KV cache bytes of all slots.\n# TYPE zipcache_kv_bytes gauge\n"
                  "zipcache_kv_bytes{policy=\"%s\"} %zu\n", S.kv.policy, S.kv_total);
    sb_str(&b, "# HELP zipcache_kv_session_bytes KV cache bytes per slot.\n# TYPE zipcache_kv_session_bytes gauge\n");
    for (int i = 0; i < S.n_par; i++)
        sb_printf(&b, "zipcache_kv_session_bytes{slot=\"%d\",policy=\"%s\"} %zu\n", i, S.kv.policy, S.slots[i].kv_bytes);
    pthread_mutex_unlock(&S.mu);
    enum MHD_Result ok = b.oom ? send_error(c, 503, NULL, NULL, "out of memory")
                               : send_text(c, 200, "text/plain; version=0.0.4", b.s, b.len);
    sb_free(&b);
    return ok;
}

static enum MHD_Result handle_get(struct MHD_Connection *c, const char *url) {
    serve_buf b = {0};
    if (!strcmp(url, "/health")) {
        sb_str(&b, "{\"status\":\"ok\"}");
    } else if (!strcmp(url, "/v1/models") || !strcmp(url, "/models")) {
        sb_str(&b, "{\"object\":\"list\",\"data\":[{\"id\":");
        sb_json_str(&b, S.model_id, strlen(S.model_id));
        sb_printf(&b, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"zipcache\",\"meta\":{\"n_ctx\":%d,"
                      "\"n_vocab\":%d,\"kv\":\"%s\",\"chat_template\":\"%s\"}}]}",
                  (long)time(NULL), S.n_ctx, S.info->n_vocab, S.kv.policy, serve_template_name(S.tmpl.kind));
    } else if (!strcmp(url, "/slots")) {
        sb_str(&b, "[");
        pthread_mutex_lock(&S.mu);
        for (int i = 0; i < S.n_par; i++)
            sb_printf(&b, "%s{\"id\":%d,\"is_processing\":%s,\"n_tokens\":%d,\"kv_bytes\":%zu}", i ? "," : "", i,
                      S.slots[i].j ? "true" : "false", S.slots[i].n_toks, S.slots[i].kv_bytes);
        pthread_mutex_unlock(&S.mu);
        sb_str(&b, "]");
    } else {
        return 0;
    }
    enum MHD_Result ok = send_json(c, 200, &b);
    sb_free(&b);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)cls;
    (void)version;
    conn *st = *con_cls;
    if (!st) {
        if (!(st = calloc(1, sizeof *st))) return MHD_NO;
        *con_cls = st;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > S.max_body) {
            st->too_big = 1;
            return send_error(c, 413, NULL, NULL, "the request body of %s bytes exceeds the limit of %zu", cl, S.max_body);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!st->too_big && st->body.len + *upload_size <= S.max_body)
            sb_put(&st->body, upload, *upload_size);
        else
            st->too_big = 1;
        *upload_size = 0;
        return MHD_YES;
    }
    if (st->too_big) return send_error(c, 413, NULL, NULL, "the request body exceeds the limit of %zu bytes", S.max_body);
    if (st->body.oom) return send_error(c, 503, NULL, NULL, "out of memory reading the request");
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (get) {
        enum MHD_Result r = handle_get(c, url);
        if (r) return r;
    }
    int chat = !strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions");
    int comp = !strcmp(url, "/v1/completions") || !strcmp(url, "/completions");
    int slots = !strncmp(url, "/slots/", 7);
    if (post && (chat || comp)) return handle_generate(c, st, chat);
    if (post && slots) return handle_slot(c, st, url);
    int known = chat || comp || slots || !strcmp(url, "/health") || !strcmp(url, "/v1/models") ||
                !strcmp(url, "/metrics") || !strcmp(url, "/slots") || !strcmp(url, "/models");
    if (get && !strcmp(url, "/metrics")) return handle_metrics(c);
    if (known) return send_error(c, 405, NULL, NULL, "%s is not allowed on %s", method, url);
    return send_error(c, 404, NULL, NULL, "no endpoint %s %s", method, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    conn *st = *con_cls;
    if (st) {
        sb_free(&st->body);
        free(st);
        *con_cls = NULL;
    }
}

/* ---- Command --------------------------------------------------------------- */

static void token_text(int32_t id, char *out, size_t cap) {
    static const char *const CANDIDATES[] = {"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", "<|endoftext|>",
                                             "</s>", "<eos>", "<|end_of_text|>", "<|eot_id|>", "<|im_end|>"};
    out[0] = 0;
    for (size_t i = 0; id >= 0 && i < sizeof CANDIDATES / sizeof *CANDIDATES; i++)
        if (zc_model_token_id(S.m, CANDIDATES[i], strlen(CANDIDATES[i])) == id) {
            snprintf(out, cap, "%s", CANDIDATES[i]);
            return;
        }
}

/* --apply-template FILE: print the formatted conversation. */
static int apply_template_file(const char *path) {
    char *text;
    size_t len;
    if (zc_read_file(path, 64u << 20, &text, &len) != ZC_OK) return cli_lib_error();
    serve_request r;
    serve_error err;
    int rc = serve_parse_request(text, len, 1, &r, &err);
    free(text);
    if (rc) {
        fprintf(stderr, "zipcache: %s: %s\n", path, err.message);
        return CLI_EXIT_DATA;
    }
    serve_buf b = {0};
    rc = serve_template_apply(&S.tmpl, r.msgs, r.n_msgs, 1, S.bos, S.eos, &b, &err);
    serve_request_free(&r);
    if (rc) {
        fprintf(stderr, "zipcache: %s: %s\n", path, err.message);
        sb_free(&b);
        return CLI_EXIT_DATA;
    }
    fwrite(b.s, 1, b.len, stdout);
    sb_free(&b);
    return CLI_EXIT_OK;
}

static const char *const OPTIONS[] = {"-m", "--host", "--port", "--parallel", "-np", "-c", "-t", "-b", "--queue",
                                      "--max-body", "--chat-template", "--chat-template-file", "--slot-save-path",
                                      "--apply-template", NULL};

int cmd_serve(int argc, char **argv) {
    const char *cmd = "serve", *model = NULL, *host = "127.0.0.1", *tmpl_name = NULL, *tmpl_file = NULL, *apply = NULL;
    long long port = 8080, n_par = 4, n_ctx = 0, threads = 0, n_batch = 512, queue = 64;
    size_t max_body = 8u << 20;
    zc_kv_config_default(&S.kv);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int rc, next = cli_next_option(cmd, USAGE, argc, argv, &i, OPTIONS, &S.kv, &v, &rc);
        if (next == CLI_NEXT_EXIT) return rc;
        if (next == CLI_NEXT_DONE) continue;
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "--host")) host = !strcmp(v, "localhost") ? "127.0.0.1" : v;
        else if (!strcmp(a, "--port")) { if (!cli_int(cmd, a, v, 0, 65535, &port)) return CLI_EXIT_USAGE; }
        else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) { if (!cli_int(cmd, a, v, 1, 256, &n_par)) return CLI_EXIT_USAGE; }
        else if (!strcmp(a, "-c")) { if (!cli_int(cmd, a, v, 1, 1 << 24, &n_ctx)) return CLI_EXIT_USAGE; }
        else if (!strcmp(a, "-t")) { if (!cli_int(cmd, a, v, 0, 1024, &threads)) return CLI_EXIT_USAGE; }
        else if (!strcmp(a, "-b")) { if (!cli_int(cmd, a, v, 1, 1 << 16, &n_batch)) return CLI_EXIT_USAGE; }
        else if (!strcmp(a, "--queue")) { if (!cli_int(cmd, a, v, 0, 1 << 20, &queue)) return CLI_EXIT_USAGE; }
        else if (!strcmp(a, "--max-body")) {
            zc_kv_config tmp; /* the byte-size syntax of --kv-budget */
            if (zc_kv_config_parse_arg(&tmp, "--kv-budget", v) < 0) return cli_usage_error(cmd, "--max-body: bad size '%s'", v);
            max_body = tmp.budget_bytes;
        }
        else if (!strcmp(a, "--chat-template")) tmpl_name = v;
        else if (!strcmp(a, "--chat-template-file")) tmpl_file = v;
        else if (!strcmp(a, "--slot-save-path")) S.slot_dir = v;
        else if (!strcmp(a, "--apply-template")) apply = v;
        else return cli_usage_error(cmd, "unknown option %s (see zipcache serve --help)", a);
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return cli_usage_error(cmd, "--host: '%s' is not an IPv4 address", host);
    if (tmpl_name && serve_template_by_name(tmpl_name, &S.tmpl))
        return cli_usage_error(cmd, "--chat-template: unknown template '%s' (%s)", tmpl_name, serve_template_names());
    if (!model && !(model = cli_default_model()))
        return cli_usage_error(cmd, "no model: give -m (the default stories260K was not found)");
    if (zc_model_load(model, &S.m) != ZC_OK) return cli_lib_error();
    S.info = zc_model_get_info(S.m);
    token_text(S.info->bos, S.bos, sizeof S.bos);
    token_text(S.info->eos, S.eos, sizeof S.eos);
    if (!tmpl_name) {
        char *jinja = NULL;
        size_t jlen;
        if (tmpl_file ? zc_read_file(tmpl_file, 1u << 20, &jinja, &jlen) : zc_model_chat_template(S.m, &jinja)) {
            zc_model_free(S.m);
            return cli_lib_error();
        }
        if (jinja && serve_template_detect(jinja, &S.tmpl)) {
            fprintf(stderr, "zipcache: %s: unknown chat template (it starts \"%.60s\"); give --chat-template NAME (%s)\n",
                    tmpl_file ? tmpl_file : model, jinja, serve_template_names());
            free(jinja);
            zc_model_free(S.m);
            return CLI_EXIT_DATA;
        }
        free(jinja);
    }
    const char *eot = serve_template_eot(&S.tmpl);
    S.eot_tok = *eot ? zc_model_token_id(S.m, eot, strlen(eot)) : -1;
    if (apply) {
        if (!S.tmpl.kind) {
            fprintf(stderr, "zipcache: %s: the model has no chat template; give --chat-template NAME\n", model);
            zc_model_free(S.m);
            return CLI_EXIT_DATA;
        }
        int rc = apply_template_file(apply);
        zc_model_free(S.m);
        return rc;
    }
    const char *slash = strrchr(model, '/');
    snprintf(S.model_id, sizeof S.model_id, "%s", slash && slash[1] ? slash + 1 : model);
    S.n_par = (int)n_par;
    S.queue_max = (int)queue;
    S.max_body = max_body;
    zc_context_params cp;
    zc_context_params_default(&cp);
    cp.n_ctx = n_ctx ? (int)n_ctx : S.info->n_ctx_train < 8192 ? S.info->n_ctx_train : 8192;
    cp.n_threads = (int)threads;
    cp.n_batch = (int)(n_batch > n_par ? n_batch : n_par);
    cp.kv = &S.kv;
    if (zc_context_create(S.m, &cp, &S.ctx) != ZC_OK || zc_context_set_n_seq(S.ctx, S.n_par) != ZC_OK) {
        int rc = cli_lib_error();
        zc_context_free(S.ctx);
        zc_model_free(S.m);
        return rc;
    }
    S.n_ctx = zc_context_n_ctx(S.ctx);
    S.slots = calloc((size_t)S.n_par, sizeof *S.slots);
    S.batch_logits = malloc(sizeof(float) * (size_t)S.n_par * (size_t)S.info->n_vocab);
    S.step_seqs = malloc(sizeof(int) * (size_t)S.n_par);
    S.step_toks = malloc(sizeof(int32_t) * (size_t)S.n_par);
    int ok = S.slots && S.batch_logits && S.step_seqs && S.step_toks;
    for (int i = 0; ok && i < S.n_par; i++) {
        S.slots[i].toks = malloc(sizeof(int32_t) * (size_t)S.n_ctx);
        S.slots[i].logits = malloc(sizeof(float) * (size_t)S.info->n_vocab);
        ok = S.slots[i].toks && S.slots[i].logits;
    }
    if (!ok) {
        fprintf(stderr, "zipcache: out of memory for %d slots\n", S.n_par);
        return CLI_EXIT_DATA;
    }
    pthread_mutex_init(&S.mu, NULL);
    pthread_cond_init(&S.work, NULL);
    /* signals: only the main thread takes SIGINT/SIGTERM (sigwait); SIGPIPE is ignored */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_t sched;
    pthread_create(&sched, NULL, scheduler, NULL);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
        NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600, MHD_OPTION_END);
    int rc = CLI_EXIT_OK;
    if (!d) {
        fprintf(stderr, "zipcache: cannot listen on %s:%lld: %s\n", host, port, strerror(errno));
        rc = CLI_EXIT_DATA;
    } else {
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        char desc[512];
        zc_kv_config_describe(&S.kv, desc, sizeof desc);
        fprintf(stderr, "zipcache serve: %s, %d slots of %d tokens, KV %s, chat template %s\n", S.model_id, S.n_par,
                S.n_ctx, desc, serve_template_name(S.tmpl.kind));
        fprintf(stderr, "zipcache serve: listening on http://%s:%u\n", host, di ? (unsigned)di->port : (unsigned)port);
        fflush(stderr);
        int sig;
        sigwait(&sigs, &sig);
        fprintf(stderr, "zipcache serve: signal %d, stopping\n", sig);
    }
    pthread_mutex_lock(&S.mu);
    S.stopping = 1;
    pthread_cond_broadcast(&S.work);
    for (job *j = S.qhead; j; j = j->next) pthread_cond_broadcast(&j->cv);
    for (int i = 0; i < S.n_par; i++)
        if (S.slots[i].j) pthread_cond_broadcast(&S.slots[i].j->cv);
    pthread_mutex_unlock(&S.mu);
    pthread_join(sched, NULL);
    if (d) MHD_stop_daemon(d);
    /* the connections are gone: drop the scheduler's references of unfinished jobs */
    while (S.qhead) {
        job *j = S.qhead;
        S.qhead = j->next;
        job_release(j);
    }
    while (S.ctl) {
        job *j = S.ctl;
        S.ctl = j->next;
        job_release(j);
    }
    for (int i = 0; i < S.n_par; i++) {
        if (S.slots[i].j) job_release(S.slots[i].j);
        free(S.slots[i].toks);
        free(S.slots[i].logits);
        zc_sampler_free(S.slots[i].smp);
        sb_free(&S.slots[i].text);
    }
    free(S.slots);
    free(S.batch_logits);
    free(S.step_seqs);
    free(S.step_toks);
    zc_context_free(S.ctx);
    zc_model_free(S.m);
    return rc;
}
