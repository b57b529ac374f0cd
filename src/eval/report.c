/* Run-time reporting shared by every eval: the progress line, JSON building
 * and the resumable per-item results file. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/eval.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"
#include "util/timer.h"

/* ---- Progress ------------------------------------------------------------------ */
void zc_eval_progress_start(zc_eval_progress *p, const char *what, int64_t total, int64_t already_done) {
    p->what = what;
    p->total = total;
    p->t0 = p->last = zc_now();
    p->done_at_start = already_done;
}

void zc_eval_progress_update(zc_eval_progress *p, int64_t done, bool final) {
    double now = zc_now();
    bool tty = isatty(STDERR_FILENO);
    /* A log file gets a line every 10 s; a terminal a redraw every 0.2 s. */
    if (!final && now - p->last < (tty ? 0.2 : 10.0)) return;
    p->last = now;
    double dt = now - p->t0;
    int64_t fresh = done - p->done_at_start;
    double rate = dt > 0 ? (double)fresh / dt : 0;
    char eta[32] = "?";
    if (rate > 0) snprintf(eta, sizeof eta, "%.0fs", (double)(p->total - done) / rate);
    fprintf(stderr, "%s%s: %lld/%lld items  %.2f items/s  ETA %s  (%.0fs)%s", tty ? "\r" : "", p->what,
            (long long)done, (long long)p->total, rate, final ? "0s" : eta, dt, tty && !final ? "\033[K" : "\n");
    fflush(stderr);
}

/* ---- String building --------------------------------------------------------- */
static bool sb_reserve(zc_strbuf *b, size_t extra) {
    if (b->err) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *s = zc_realloc(b->s, cap);
    if (!s) {
        b->err = ZC_ERR_NOMEM;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void zc_sb_append(zc_strbuf *b, const char *s, size_t n) {
    if (!sb_reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void zc_sb_printf(zc_strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void zc_sb_json_str(zc_strbuf *b, const char *s, size_t n) {
    zc_sb_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': zc_sb_append(b, "\\\"", 2); break;
        case '\\': zc_sb_append(b, "\\\\", 2); break;
        case '\n': zc_sb_append(b, "\\n", 2); break;
        case '\r': zc_sb_append(b, "\\r", 2); break;
        case '\t': zc_sb_append(b, "\\t", 2); break;
        default:
            if (c < 0x20)
                zc_sb_printf(b, "\\u%04x", c);
            else
                zc_sb_append(b, (const char *)&s[i], 1);
        }
    }
    zc_sb_append(b, "\"", 1);
}

void zc_sb_json_num(zc_strbuf *b, double x) {
    if (isfinite(x))
        zc_sb_printf(b, "%.17g", x);
    else
        zc_sb_append(b, "null", 4);
}

void zc_sb_free(zc_strbuf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* ---- Resumable results --------------------------------------------------------- */
static int cmp_done(const void *a, const void *b) {
    int64_t x = ((const zc_eval_done *)a)->item, y = ((const zc_eval_done *)b)->item;
    return (x > y) - (x < y);
}

/* Read the records of an existing results file. A last line without newline
 * is a record cut off by an interrupted run: it is ignored (the item runs
 * again) and the file is truncated back to the last complete line. */
static int results_load(zc_eval_results *r, const char *path, const char *run, size_t *keep_bytes) {
    char *text;
    size_t len;
    int rc = zc_read_file(path, (size_t)1 << 32, &text, &len);
    if (rc != ZC_OK) return rc;
    size_t cap = 0, line_no = 0, pos = 0;
    *keep_bytes = 0;
    while (pos < len) {
        char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl) break;
        size_t n = (size_t)(nl - (text + pos));
        line_no++;
        if (n > 0) {
            zc_json_doc *doc;
            const zc_json *root;
            char src[64];
            snprintf(src, sizeof src, "line %zu", line_no);
            rc = zc_json_parse(text + pos, n, src, &doc, &root);
            if (rc != ZC_OK) {
                free(text);
                return zc_error_prefix(rc, "%s", path);
            }
            int64_t item;
            double score = NAN;
            const char *rec_run = zc_json_str(zc_json_get(root, "run"));
            bool ok = zc_json_int(zc_json_get(root, "item"), &item) && zc_json_num(zc_json_get(root, "score"), &score) &&
                      rec_run;
            bool same = ok && !strcmp(rec_run, run);
            zc_json_free(doc);
            if (!ok || !same) {
                free(text);
                return zc_error(ZC_ERR_FORMAT,
                                !ok ? "%s: line %zu: record without integer \"item\", numeric \"score\" and \"run\""
                                    : "%s: line %zu: record of a different run (options or model changed); use "
                                      "another --results file",
                                path, line_no);
            }
            if (r->n == cap) {
                cap = cap ? 2 * cap : 64;
                zc_eval_done *done = zc_realloc(r->done, cap * sizeof *done);
                if (!done) {
                    free(text);
                    return ZC_ERR_NOMEM;
                }
                r->done = done;
            }
            char *json = strndup(text + pos, n);
            if (!json) {
                free(text);
                return zc_error(ZC_ERR_NOMEM, "out of memory");
            }
            r->done[r->n++] = (zc_eval_done){item, score, json};
        }
        pos += n + 1;
        *keep_bytes = pos;
    }
    free(text);
    if (r->n) qsort(r->done, r->n, sizeof *r->done, cmp_done); /* done is NULL for an empty file */
    return ZC_OK;
}

int zc_eval_results_open(zc_eval_results *r, const char *path, const char *run) {
    memset(r, 0, sizeof *r);
    if (!path) return ZC_OK;
    r->path = strdup(path);
    if (!r->path) return zc_error(ZC_ERR_NOMEM, "out of memory");
    size_t keep = 0;
    if (access(path, F_OK) == 0) {
        int rc = results_load(r, path, run, &keep);
        if (rc == ZC_OK && truncate(path, (off_t)keep) != 0)
            rc = zc_error(ZC_ERR_IO, "%s: cannot drop the incomplete last record", path);
        if (rc != ZC_OK) {
            zc_eval_results_close(r);
            return rc;
        }
    }
    r->f = fopen(path, "a");
    if (!r->f) {
        zc_eval_results_close(r);
        return zc_error(ZC_ERR_IO, "%s: cannot open results file for appending", path);
    }
    return ZC_OK;
}

const zc_eval_done *zc_eval_results_find(const zc_eval_results *r, int64_t item) {
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->done[mid].item < item)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->n && r->done[lo].item == item ? &r->done[lo] : NULL;
}

int zc_eval_results_append(zc_eval_results *r, const char *json_record) {
    if (!r->f) return ZC_OK;
    if (fprintf(r->f, "%s\n", json_record) < 0 || fflush(r->f))
        return zc_error(ZC_ERR_IO, "%s: write failed", r->path);
    return ZC_OK;
}

void zc_eval_results_close(zc_eval_results *r) {
    if (r->f) fclose(r->f);
    free(r->path);
    for (size_t i = 0; i < r->n; i++) free(r->done[i].json);
    free(r->done);
    memset(r, 0, sizeof *r);
}
