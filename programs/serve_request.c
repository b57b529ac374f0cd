/* Request parsing and JSON text output for zipcache serve (serve.h). The
 * body is untrusted: zc_json_parse validates the syntax, UTF-8 and nesting;
 * here every field is checked for type and range before use. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/unicode.h"
#include "serve.h"
#include "util/error.h"
#include "util/json.h"
#include "zipcache.h"

/* ---- Text buffer ----------------------------------------------------------- */

void sb_put(serve_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void sb_str(serve_buf *b, const char *s) { sb_put(b, s, strlen(s)); }

void sb_printf(serve_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_put(b, big, (size_t)n);
    free(big);
}

void sb_free(serve_buf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

void sb_json_str(serve_buf *b, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    sb_put(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed before each escape */
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        const char *esc = NULL;
        char u[8];
        int adv = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 0x20 || c == 0x7f) {
            snprintf(u, sizeof u, "\\u%04x", c);
            esc = u;
        } else if (c >= 0x80) {
            adv = zc_utf8_check(s + i, n - i); /* > 0: a whole character; else ill-formed bytes */
            if (adv <= 0) {
                esc = "\xef\xbf\xbd"; /* one U+FFFD for the ill-formed part (or a cut-off tail) */
                adv = adv < 0 ? -adv : (int)(n - i);
            }
        }
        if (esc) {
            sb_put(b, (const char *)s + i - run, run);
            run = 0;
            sb_str(b, esc);
        } else {
            run += (size_t)adv;
        }
        i += (size_t)adv;
    }
    sb_put(b, (const char *)s + n - run, run);
    sb_put(b, "\"", 1);
}

/* ---- Requests -------------------------------------------------------------- */

static int fail(serve_error *e, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(serve_error *e, const char *param, const char *fmt, ...) {
    e->status = 400;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* A number field within [lo, hi] (absent: keep *out). */
static int get_num(const zc_json *root, const char *key, double lo, double hi, double *out, serve_error *e) {
    const zc_json *v = zc_json_get(root, key);
    if (!v || v->type == ZC_JSON_NULL) return 0;
    double x;
    if (!zc_json_num(v, &x)) return fail(e, key, "'%s' must be a number", key);
    if (!(x >= lo && x <= hi)) return fail(e, key, "'%s' is %g; it must be within [%g, %g]", key, x, lo, hi);
    *out = x;
    return 0;
}

static int get_int(const zc_json *root, const char *key, long long lo, long long hi, long long *out, serve_error *e) {
    const zc_json *v = zc_json_get(root, key);
    if (!v || v->type == ZC_JSON_NULL) return 0;
    int64_t x;
    if (!zc_json_int(v, &x)) return fail(e, key, "'%s' must be an integer", key);
    if (x < lo || x > hi) return fail(e, key, "'%s' is %lld; it must be within [%lld, %lld]", key, (long long)x, lo, hi);
    *out = x;
    return 0;
}

static int get_bool(const zc_json *root, const char *key, int *out, serve_error *e) {
    const zc_json *v = zc_json_get(root, key);
    if (!v || v->type == ZC_JSON_NULL) return 0;
    bool x;
    if (!zc_json_bool(v, &x)) return fail(e, key, "'%s' must be a boolean", key);
    *out = x;
    return 0;
}

/* Message content: a string, null, or an array of parts whose "text" parts are concatenated. */
static int get_content(const zc_json *v, int i, char **out, serve_error *e) {
    if (!v || v->type == ZC_JSON_NULL) {
        *out = zc_strndup("", 0);
    } else if (v->type == ZC_JSON_STRING) {
        *out = zc_strndup(v->str, v->len);
    } else if (v->type == ZC_JSON_ARRAY) {
        serve_buf b = {0};
        sb_put(&b, "", 0);
        for (size_t k = 0; k < v->len; k++) {
            const zc_json *part = &v->items[k];
            const char *type = zc_json_str(zc_json_get(part, "type"));
            const zc_json *text = zc_json_get(part, "text");
            if (!type || strcmp(type, "text") || !text || text->type != ZC_JSON_STRING) {
                sb_free(&b);
                return fail(e, "messages", "messages[%d].content[%zu]: only parts {\"type\": \"text\", \"text\": ...} are "
                            "supported", i, k);
            }
            sb_put(&b, text->str, text->len);
        }
        if (b.oom) {
            sb_free(&b);
            *out = NULL;
        } else {
            *out = b.s;
        }
    } else {
        return fail(e, "messages", "messages[%d].content must be a string, an array of text parts or null", i);
    }
    if (!*out) return fail(e, NULL, "out of memory");
    return 0;
}

static int parse_messages(const zc_json *root, serve_request *r, serve_error *e) {
    const zc_json *m = zc_json_get(root, "messages");
    if (!m) return fail(e, "messages", "'messages' is required");
    if (m->type != ZC_JSON_ARRAY) return fail(e, "messages", "'messages' must be an array");
    if (m->len == 0) return fail(e, "messages", "'messages' must not be empty");
    if (m->len > 1000000) return fail(e, "messages", "'messages' has %zu entries", m->len);
    r->msgs = calloc(m->len, sizeof *r->msgs);
    if (!r->msgs) return fail(e, NULL, "out of memory");
    static const char *const ROLES[] = {"system", "user", "assistant", "tool", "developer"};
    for (size_t i = 0; i < m->len; i++) {
        const zc_json *msg = &m->items[i];
        if (msg->type != ZC_JSON_OBJECT) return fail(e, "messages", "messages[%zu] must be an object", i);
        const zc_json *role = zc_json_get(msg, "role");
        if (!role || role->type != ZC_JSON_STRING) return fail(e, "messages", "messages[%zu].role must be a string", i);
        int known = 0;
        for (size_t k = 0; k < sizeof ROLES / sizeof *ROLES; k++) known |= !strcmp(role->str, ROLES[k]);
        if (!known || strlen(role->str) != role->len)
            return fail(e, "messages", "messages[%zu].role must be system, user, assistant, tool or developer", i);
        r->msgs[i].role = zc_strndup(role->str, role->len);
        r->n_msgs = (int)i + 1;
        if (!r->msgs[i].role) return fail(e, NULL, "out of memory");
        if (get_content(zc_json_get(msg, "content"), (int)i, &r->msgs[i].content, e)) return -1;
    }
    return 0;
}

static int parse_prompt(const zc_json *root, serve_request *r, serve_error *e) {
    const zc_json *p = zc_json_get(root, "prompt");
    if (!p) return fail(e, "prompt", "'prompt' is required");
    if (p->type == ZC_JSON_ARRAY) { /* a batch of prompts: one only */
        if (p->len != 1 || p->items[0].type != ZC_JSON_STRING)
            return fail(e, "prompt", "'prompt' must be a string or an array of exactly one string");
        p = &p->items[0];
    }
    if (p->type != ZC_JSON_STRING) return fail(e, "prompt", "'prompt' must be a string");
    if (!(r->prompt = zc_strndup(p->str, p->len))) return fail(e, NULL, "out of memory");
    return 0;
}

static int parse_stop(const zc_json *root, serve_request *r, serve_error *e) {
    const zc_json *s = zc_json_get(root, "stop");
    if (!s || s->type == ZC_JSON_NULL) return 0;
    const zc_json *one = s->type == ZC_JSON_STRING ? s : NULL;
    size_t n = one ? 1 : s->type == ZC_JSON_ARRAY ? s->len : (size_t)-1;
    if (n == (size_t)-1) return fail(e, "stop", "'stop' must be a string or an array of strings");
    if (n > SERVE_MAX_STOP) return fail(e, "stop", "'stop' has %zu strings; at most %d", n, SERVE_MAX_STOP);
    for (size_t i = 0; i < n; i++) {
        const zc_json *v = one ? one : &s->items[i];
        if (v->type != ZC_JSON_STRING) return fail(e, "stop", "'stop' must be a string or an array of strings");
        if (v->len == 0) continue; /* an empty stop string never matches */
        if (!(r->stop[r->n_stop] = zc_strndup(v->str, v->len))) return fail(e, NULL, "out of memory");
        r->n_stop++;
    }
    return 0;
}

int serve_parse_request(const char *body, size_t len, int chat, serve_request *r, serve_error *e) {
    memset(r, 0, sizeof *r);
    memset(e, 0, sizeof *e);
    r->chat = chat;
    r->max_tokens = -1;
    zc_sampler_params sp;
    zc_sampler_params_default(&sp);
    r->temperature = 1.0; /* OpenAI's default */
    r->top_p = 1.0;
    r->top_k = sp.top_k;
    r->min_p = sp.min_p;
    r->repeat_penalty = 1.0;
    zc_json_doc *doc = NULL;
    const zc_json *root;
    if (zc_json_parse(body, len, "request body", &doc, &root) != ZC_OK) {
        fail(e, NULL, "malformed JSON: %s", zc_last_error());
        zc_clear_error();
        return -1;
    }
    int rc = -1;
    long long n = 1, top_k = r->top_k, seed = 0;
    const zc_json *so;
    if (root->type != ZC_JSON_OBJECT) {
        fail(e, NULL, "the request body must be a JSON object");
        goto done;
    }
    const zc_json *model = zc_json_get(root, "model");
    if (model && model->type != ZC_JSON_STRING && model->type != ZC_JSON_NULL) {
        fail(e, "model", "'model' must be a string");
        goto done;
    }
    if ((chat ? parse_messages(root, r, e) : parse_prompt(root, r, e)) ||
        get_int(root, "n", INT64_MIN, INT64_MAX, &n, e) ||
        get_int(root, "max_tokens", 1, INT32_MAX, &r->max_tokens, e) ||
        get_int(root, "max_completion_tokens", 1, INT32_MAX, &r->max_tokens, e) ||
        get_num(root, "temperature", 0, 2, &r->temperature, e) || get_num(root, "top_p", 0, 1, &r->top_p, e) ||
        get_int(root, "top_k", 0, 1 << 24, &top_k, e) || get_num(root, "min_p", 0, 1, &r->min_p, e) ||
        get_num(root, "repeat_penalty", 0.01, 100, &r->repeat_penalty, e) ||
        get_int(root, "seed", INT64_MIN, INT64_MAX, &seed, e) || get_bool(root, "stream", &r->stream, e) ||
        parse_stop(root, r, e))
        goto done;
    if (n != 1) { /* one choice per request */
        fail(e, "n", "'n' is %lld: only n = 1 is supported (send several requests)", n);
        goto done;
    }
    double ignored = 0; /* accepted for compatibility, not applied */
    if (get_num(root, "presence_penalty", -2, 2, &ignored, e) || get_num(root, "frequency_penalty", -2, 2, &ignored, e))
        goto done;
    if (r->top_p <= 0) {
        fail(e, "top_p", "'top_p' must be greater than 0");
        goto done;
    }
    r->top_k = (int)top_k;
    if (zc_json_get(root, "seed") && zc_json_get(root, "seed")->type != ZC_JSON_NULL) {
        r->has_seed = 1;
        r->seed = (uint64_t)seed;
    }
    if ((so = zc_json_get(root, "stream_options")) && so->type != ZC_JSON_NULL) {
        if (so->type != ZC_JSON_OBJECT) {
            fail(e, "stream_options", "'stream_options' must be an object");
            goto done;
        }
        if (get_bool(so, "include_usage", &r->include_usage, e)) goto done;
    }
    rc = 0;
done:
    zc_json_free(doc);
    if (rc) serve_request_free(r);
    return rc;
}

void serve_request_free(serve_request *r) {
    free(r->prompt);
    for (int i = 0; i < r->n_msgs; i++) {
        free(r->msgs[i].role);
        free(r->msgs[i].content);
    }
    free(r->msgs);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}
