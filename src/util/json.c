/* Strict recursive-descent JSON parser into an arena-allocated tree.
 * Arrays and objects are first collected on a growable stack of values,
 * then copied into the arena once their size is known. */
#include "util/json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_block;

struct zc_json_doc {
    arena_block *blocks;
    zc_json root;
};

typedef struct {
    const char *p, *end, *start;
    const char *source;
    zc_json_doc *doc;
    int depth;
    /* scratch stack for array/object members under construction */
    zc_json *stack;
    const char **key_stack;
    size_t *key_len_stack;
    size_t stack_len, stack_cap;
    int err;
} parser;

static void *arena_alloc(zc_json_doc *doc, size_t n) {
    n = (n + 15) & ~(size_t)15;
    arena_block *b = doc->blocks;
    if (!b || b->cap - b->used < n) {
        /* blocks grow from 4 KiB, doubling up to 1 MiB: a small document (a
         * config.json, a request body) costs one small allocation, a large one
         * (tokenizer.json) still few */
        size_t cap = b ? (b->cap < (1u << 19) ? b->cap * 2 : (1u << 20)) : (1u << 12);
        if (cap < n) cap = n;
        b = zc_malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = doc->blocks;
        doc->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static int fail(parser *ps, const char *what) {
    if (!ps->err)
        ps->err = zc_error(ZC_ERR_FORMAT, "%s: invalid JSON at byte %zu: %s", ps->source,
                           (size_t)(ps->p - ps->start), what);
    return ps->err;
}

static int nomem(parser *ps) {
    if (!ps->err) ps->err = zc_error(ZC_ERR_NOMEM, "%s: out of memory parsing JSON", ps->source);
    return ps->err;
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(parser *ps, unsigned *out) {
    if (ps->end - ps->p < 4) return fail(ps, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(ps->p[i]);
        if (h < 0) return fail(ps, "bad hex digit in \\u escape");
        v = v << 4 | (unsigned)h;
    }
    ps->p += 4;
    *out = v;
    return ZC_OK;
}

static size_t put_utf8(char *dst, unsigned cp) {
    if (cp < 0x80) { dst[0] = (char)cp; return 1; }
    if (cp < 0x800) { dst[0] = (char)(0xC0 | cp >> 6); dst[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        dst[0] = (char)(0xE0 | cp >> 12);
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | cp >> 18);
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of a valid UTF-8 sequence starting at s (max n bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

/* Parse a string at ps->p (which points at the opening quote). */
static int parse_string(parser *ps, const char **out, size_t *out_len) {
    ps->p++; /* opening quote */
    /* The decoded string is never longer than the raw text up to the closing quote. */
    const char *q = ps->p;
    while (q < ps->end && *q != '"') q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
    if (q >= ps->end) return fail(ps, "unterminated string");
    char *dst = arena_alloc(ps->doc, (size_t)(q - ps->p) + 1);
    if (!dst) return nomem(ps);
    size_t n = 0;
    while (ps->p < ps->end) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            dst[n] = 0;
            *out = dst;
            *out_len = n;
            return ZC_OK;
        }
        if (c < 0x20) return fail(ps, "control character in string");
        if (c == '\\') {
            if (ps->end - ps->p < 2) return fail(ps, "truncated escape");
            char e = ps->p[1];
            ps->p += 2;
            switch (e) {
            case '"': dst[n++] = '"'; break;
            case '\\': dst[n++] = '\\'; break;
            case '/': dst[n++] = '/'; break;
            case 'b': dst[n++] = '\b'; break;
            case 'f': dst[n++] = '\f'; break;
            case 'n': dst[n++] = '\n'; break;
            case 'r': dst[n++] = '\r'; break;
            case 't': dst[n++] = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (read_hex4(ps, &cp)) return ps->err;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u')
                        return fail(ps, "unpaired surrogate in \\u escape");
                    ps->p += 2;
                    if (read_hex4(ps, &lo)) return ps->err;
                    if (lo < 0xDC00 || lo > 0xDFFF) return fail(ps, "invalid low surrogate in \\u escape");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return fail(ps, "unpaired low surrogate in \\u escape");
                }
                n += put_utf8(dst + n, cp);
                break;
            }
            default: return fail(ps, "invalid escape");
            }
            continue;
        }
        size_t len = utf8_seq_len((const unsigned char *)ps->p, (size_t)(ps->end - ps->p));
        if (!len) return fail(ps, "invalid UTF-8 in string");
        memcpy(dst + n, ps->p, len);
        n += len;
        ps->p += len;
    }
    return fail(ps, "unterminated string");
}

static int parse_number(parser *ps, zc_json *v) {
    const char *s = ps->p;
    const char *q = s;
    bool integral = true;
    if (q < ps->end && *q == '-') q++;
    if (q >= ps->end || !(*q >= '0' && *q <= '9')) return fail(ps, "invalid number");
    if (*q == '0') q++;
    else while (q < ps->end && *q >= '0' && *q <= '9') q++;
    if (q < ps->end && *q == '.') {
        integral = false;
        q++;
        if (q >= ps->end || !(*q >= '0' && *q <= '9')) return fail(ps, "invalid number fraction");
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        integral = false;
        q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (q >= ps->end || !(*q >= '0' && *q <= '9')) return fail(ps, "invalid number exponent");
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    char buf[64];
    size_t len = (size_t)(q - s);
    char *heap = NULL, *text = buf;
    if (len >= sizeof buf) {
        heap = zc_malloc(len + 1);
        if (!heap) return nomem(ps);
        text = heap;
    }
    memcpy(text, s, len);
    text[len] = 0;
    v->type = ZC_JSON_NUMBER;
    v->number = strtod(text, NULL);
    if (integral) {
        errno = 0;
        long long iv = strtoll(text, NULL, 10);
        if (errno == 0) {
            v->is_integer = true;
            v->integer = iv;
        }
    }
    free(heap);
    ps->p = q;
    return ZC_OK;
}

static int parse_value(parser *ps, zc_json *v);

static int push(parser *ps, const zc_json *v, const char *key, size_t key_len) {
    if (ps->stack_len == ps->stack_cap) {
        size_t cap = ps->stack_cap ? ps->stack_cap * 2 : 256;
        zc_json *s = zc_realloc(ps->stack, cap * sizeof *s);
        if (!s) return nomem(ps);
        ps->stack = s;
        const char **ks = zc_realloc(ps->key_stack, cap * sizeof *ks);
        if (!ks) return nomem(ps);
        ps->key_stack = ks;
        size_t *kl = zc_realloc(ps->key_len_stack, cap * sizeof *kl);
        if (!kl) return nomem(ps);
        ps->key_len_stack = kl;
        ps->stack_cap = cap;
    }
    ps->stack[ps->stack_len] = *v;
    ps->key_stack[ps->stack_len] = key;
    ps->key_len_stack[ps->stack_len] = key_len;
    ps->stack_len++;
    return ZC_OK;
}

/* Move the members pushed since `base` into arena arrays of v. */
static int pop_into(parser *ps, size_t base, zc_json *v, bool with_keys) {
    size_t n = ps->stack_len - base;
    v->len = n;
    if (n) {
        v->items = arena_alloc(ps->doc, n * sizeof *v->items);
        if (!v->items) return nomem(ps);
        memcpy(v->items, ps->stack + base, n * sizeof *v->items);
        if (with_keys) {
            v->keys = arena_alloc(ps->doc, n * sizeof *v->keys);
            v->key_lens = arena_alloc(ps->doc, n * sizeof *v->key_lens);
            if (!v->keys || !v->key_lens) return nomem(ps);
            memcpy(v->keys, ps->key_stack + base, n * sizeof *v->keys);
            memcpy(v->key_lens, ps->key_len_stack + base, n * sizeof *v->key_lens);
        }
    }
    ps->stack_len = base;
    return ZC_OK;
}

static int parse_container(parser *ps, zc_json *v, bool is_object) {
    if (++ps->depth > ZC_JSON_MAX_DEPTH) return fail(ps, "nesting too deep");
    char close = is_object ? '}' : ']';
    v->type = is_object ? ZC_JSON_OBJECT : ZC_JSON_ARRAY;
    ps->p++;
    size_t base = ps->stack_len;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return pop_into(ps, base, v, is_object);
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        skip_ws(ps);
        if (is_object) {
            if (ps->p >= ps->end || *ps->p != '"') return fail(ps, "expected a string key");
            if (parse_string(ps, &key, &key_len)) return ps->err;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return fail(ps, "expected ':'");
            ps->p++;
            skip_ws(ps);
        }
        zc_json member;
        if (parse_value(ps, &member)) return ps->err;
        if (push(ps, &member, key, key_len)) return ps->err;
        skip_ws(ps);
        if (ps->p >= ps->end) return fail(ps, is_object ? "unterminated object" : "unterminated array");
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == close) {
            ps->p++;
            break;
        }
        return fail(ps, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    ps->depth--;
    return pop_into(ps, base, v, is_object);
}

static bool match_word(parser *ps, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, w, n) == 0) {
        ps->p += n;
        return true;
    }
    return false;
}

static int parse_value(parser *ps, zc_json *v) {
    memset(v, 0, sizeof *v);
    skip_ws(ps);
    if (ps->p >= ps->end) return fail(ps, "unexpected end of input");
    switch (*ps->p) {
    case '{': return parse_container(ps, v, true);
    case '[': return parse_container(ps, v, false);
    case '"':
        v->type = ZC_JSON_STRING;
        return parse_string(ps, &v->str, &v->len);
    case 't':
        if (!match_word(ps, "true")) return fail(ps, "invalid literal");
        v->type = ZC_JSON_BOOL;
        v->boolean = true;
        return ZC_OK;
    case 'f':
        if (!match_word(ps, "false")) return fail(ps, "invalid literal");
        v->type = ZC_JSON_BOOL;
        return ZC_OK;
    case 'n':
        if (!match_word(ps, "null")) return fail(ps, "invalid literal");
        v->type = ZC_JSON_NULL;
        return ZC_OK;
    default: return parse_number(ps, v);
    }
}

void zc_json_free(zc_json_doc *doc) {
    if (!doc) return;
    for (arena_block *b = doc->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(doc);
}

int zc_json_parse(const char *text, size_t len, const char *source, zc_json_doc **doc_out, const zc_json **root) {
    *doc_out = NULL;
    *root = NULL;
    parser ps = {.p = text, .end = text + len, .start = text, .source = source ? source : "<json>"};
    ps.doc = zc_calloc(1, sizeof *ps.doc);
    if (!ps.doc) return zc_error(ZC_ERR_NOMEM, "%s: out of memory parsing JSON", ps.source);
    if (len >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB && (unsigned char)text[2] == 0xBF)
        ps.p += 3; /* UTF-8 byte order mark */
    int rc = parse_value(&ps, &ps.doc->root);
    if (rc == ZC_OK) {
        skip_ws(&ps);
        if (ps.p != ps.end) rc = fail(&ps, "trailing characters after the value");
    }
    free(ps.stack);
    free(ps.key_stack);
    free(ps.key_len_stack);
    if (rc != ZC_OK) {
        zc_json_free(ps.doc);
        return rc;
    }
    *doc_out = ps.doc;
    *root = &ps.doc->root;
    return ZC_OK;
}

const zc_json *zc_json_get(const zc_json *obj, const char *key) {
    if (!obj || obj->type != ZC_JSON_OBJECT) return NULL;
    size_t klen = strlen(key);
    for (size_t i = obj->len; i-- > 0;)
        if (obj->key_lens[i] == klen && memcmp(obj->keys[i], key, klen) == 0) return &obj->items[i];
    return NULL;
}

bool zc_json_int(const zc_json *v, int64_t *out) {
    if (!v || v->type != ZC_JSON_NUMBER) return false;
    if (v->is_integer) {
        *out = v->integer;
        return true;
    }
    /* 1e3 or 2.0 are integers too when exact and in range */
    double d = v->number;
    if (isfinite(d) && d == floor(d) && d >= -9.2e18 && d <= 9.2e18) {
        *out = (int64_t)d;
        return true;
    }
    return false;
}

bool zc_json_num(const zc_json *v, double *out) {
    if (!v || v->type != ZC_JSON_NUMBER) return false;
    *out = v->number;
    return true;
}

bool zc_json_bool(const zc_json *v, bool *out) {
    if (!v || v->type != ZC_JSON_BOOL) return false;
    *out = v->boolean;
    return true;
}

const char *zc_json_str(const zc_json *v) { return v && v->type == ZC_JSON_STRING ? v->str : NULL; }
