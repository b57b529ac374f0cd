/* Public API glue: tokenizer wrappers and memory accounting over the model
 * and context internals. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/gguf.h"
#include "model/model.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

int zc_model_tokenize(const zc_model *m, const char *text, size_t len, int add_bos, int parse_special,
                      int32_t **ids, int *n_ids) {
    return zc_tokenize(m->tok, text, len, add_bos != 0, parse_special != 0, ids, n_ids);
}

/* The public zc_detok mirrors the tokenizer's zc_tok_decoder field by field,
 * so the public header needs no internal type. */
static void to_internal(const zc_detok *d, zc_tok_decoder *t) {
    memcpy(t->pending, d->pending, sizeof t->pending);
    t->n_pending = d->n_pending;
    t->at_start = d->at_start != 0;
}

static void from_internal(const zc_tok_decoder *t, zc_detok *d) {
    memcpy(d->pending, t->pending, sizeof d->pending);
    d->n_pending = t->n_pending;
    d->at_start = t->at_start;
}

void zc_detok_init(zc_detok *d) {
    zc_tok_decoder t;
    zc_tok_decoder_init(&t);
    from_internal(&t, d);
}

int zc_detokenize(const zc_model *m, zc_detok *d, int32_t id, char *out, size_t cap, size_t *len) {
    zc_tok_decoder t;
    to_internal(d, &t);
    int rc = zc_tok_decode(m->tok, &t, id, out, cap, len);
    if (rc == ZC_OK) from_internal(&t, d);
    return rc;
}

int zc_detok_flush(zc_detok *d, char *out, size_t cap, size_t *len) {
    zc_tok_decoder t;
    to_internal(d, &t);
    int rc = zc_tok_decoder_flush(&t, out, cap, len);
    if (rc == ZC_OK) from_internal(&t, d);
    return rc;
}

int zc_model_is_eog(const zc_model *m, int32_t id) { return zc_tokenizer_is_eog(m->tok, id); }

void zc_context_kv_usage(const zc_context *c, zc_kv_usage *u) { c->kv->ops->usage(c->kv, u); }

const zc_kv_config *zc_context_kv_config(const zc_context *c) { return &c->kv_cfg; }

void zc_context_kv_describe(const zc_context *c, char *buf, size_t cap) {
    if (cap) zc_kv_config_describe(&c->kv_cfg, buf, cap);
}

void zc_context_memory(const zc_context *c, zc_memory *mem) {
    zc_kv_usage u;
    zc_context_kv_usage(c, &u);
    mem->weights_mapped = c->m->info.mapped_bytes;
    mem->weights_resident = c->m->info.resident_bytes;
    mem->kv = u.total;
    mem->scratch = c->act_bytes + c->mm.cap + (size_t)c->m->n_rot / 2 * sizeof(double);
}

/* ---- Sequences ------------------------------------------------------------- */

static int n_seq_of(const zc_context *c) { return c->n_seq > 0 ? c->n_seq : 1; }

static int bad_seq(const zc_context *c, int seq) {
    return zc_error(ZC_ERR_ARG, "sequence %d: the context holds sequences 0..%d", seq, n_seq_of(c) - 1);
}

void zc_context_seqs_free(zc_context *c) {
    for (int s = 1; s < c->n_seq; s++) zc_kv_free(c->seq_kv[s]);
    free(c->seq_kv);
    free(c->seq_pos);
    c->seq_kv = NULL;
    c->seq_pos = NULL;
    c->n_seq = 0;
}

static int new_cache(const zc_context *c, zc_kv_cache **out) {
    const zc_model_info *h = &c->m->info;
    zc_kv_shape shape = {h->n_layers, h->n_heads, h->n_kv_heads, h->head_dim, c->n_ctx, NULL};
    return zc_kv_create_windowed(&c->kv_cfg, &shape, c->m->window, c->pool, out); /* as the context's own cache */
}

int zc_context_set_n_seq(zc_context *c, int n_seq) {
    if (n_seq < 1 || n_seq > 4096) return zc_error(ZC_ERR_ARG, "context: %d sequences (1..4096)", n_seq);
    int old = n_seq_of(c);
    if (n_seq == old) return ZC_OK;
    if (n_seq < old) {
        for (int s = n_seq; s < old; s++) zc_kv_free(c->seq_kv[s]);
        c->n_seq = n_seq;
        return ZC_OK;
    }
    /* grow: create every new cache before changing anything */
    zc_kv_cache **kv = zc_calloc((size_t)n_seq, sizeof *kv);
    int *pos = zc_calloc((size_t)n_seq, sizeof *pos);
    int rc = kv && pos ? ZC_OK : ZC_ERR_NOMEM;
    for (int s = old; rc == ZC_OK && s < n_seq; s++) rc = new_cache(c, &kv[s]);
    if (rc != ZC_OK) {
        for (int s = old; kv && s < n_seq; s++) zc_kv_free(kv[s]);
        free(kv);
        free(pos);
        return rc;
    }
    for (int s = 1; s < old; s++) {
        kv[s] = c->seq_kv[s];
        pos[s] = c->seq_pos[s];
    }
    free(c->seq_kv);
    free(c->seq_pos);
    c->seq_kv = kv;
    c->seq_pos = pos;
    c->n_seq = n_seq;
    return ZC_OK;
}

int zc_context_n_seq(const zc_context *c) { return n_seq_of(c); }

int zc_seq_pos(const zc_context *c, int seq) { return seq < 0 || seq >= n_seq_of(c) ? -1 : zc_ctx_seq_pos(c, seq); }

int zc_ctx_check_budget(const zc_context *c, int count, const int *seqs, const int *n_add) {
    size_t budget = c->kv_cfg.budget_bytes;
    if (!budget) return ZC_OK;
    const zc_model_info *h = &c->m->info;
    double now = 0, more = 0; /* doubles: no overflow for any n_ctx */
    for (int s = 0; s < n_seq_of(c); s++) {
        zc_kv_usage u;
        zc_ctx_seq_kv(c, s)->ops->usage(zc_ctx_seq_kv(c, s), &u);
        now += (double)u.total;
        for (int i = 0; i < count; i++)
            if (seqs[i] == s)
                more += (n_add ? n_add[i] : 1) *
                        (u.n_tokens > 0 ? (double)u.total / (double)u.n_tokens
                                        : 2.0 * h->n_layers * h->n_kv_heads * h->head_dim * sizeof(uint16_t));
    }
    if (now + more <= (double)budget) return ZC_OK;
    return zc_error(ZC_ERR_LIMIT,
                    "KV cache budget of %zu bytes reached (policy %s): %d sequence%s hold %.0f bytes, the step would "
                    "add about %.0f",
                    budget, c->kv_cfg.policy, n_seq_of(c), n_seq_of(c) == 1 ? "" : "s", now, more);
}

/* Run f on sequence seq by swapping it into the context's own slot (kv, pos),
 * so every single-sequence path serves every sequence unchanged. */
static void swap_in(zc_context *c, int seq) {
    if (seq == 0) return;
    zc_kv_cache *kv = c->kv;
    int pos = c->pos;
    c->kv = c->seq_kv[seq];
    c->pos = c->seq_pos[seq];
    c->seq_kv[seq] = kv;
    c->seq_pos[seq] = pos;
}

int zc_decode_seq(zc_context *c, int seq, const int32_t *tokens, int n, int logits_mode, float *logits) {
    if (seq < 0 || seq >= n_seq_of(c)) return bad_seq(c, seq);
    if (n >= 1) {
        int rc = zc_ctx_check_budget(c, 1, &seq, &n);
        if (rc) return rc;
    }
    swap_in(c, seq);
    int rc = zc_decode(c, tokens, n, logits_mode, logits);
    swap_in(c, seq); /* the same swap undoes itself */
    return rc;
}

int zc_seq_truncate(zc_context *c, int seq, int n_keep) {
    if (seq < 0 || seq >= n_seq_of(c)) return bad_seq(c, seq);
    int pos = zc_ctx_seq_pos(c, seq);
    if (n_keep < 0 || n_keep > pos)
        return zc_error(ZC_ERR_ARG, "sequence %d: cannot keep %d of its %d tokens", seq, n_keep, pos);
    zc_kv_cache *kv = zc_ctx_seq_kv(c, seq);
    int rc = kv->ops->truncate(kv, n_keep);
    if (rc == ZC_OK) zc_ctx_seq_advance(c, seq, n_keep - pos);
    return rc;
}

int zc_seq_kv_usage(const zc_context *c, int seq, zc_kv_usage *u) {
    if (seq < 0 || seq >= n_seq_of(c)) return bad_seq(c, seq);
    zc_ctx_seq_kv(c, seq)->ops->usage(zc_ctx_seq_kv(c, seq), u);
    return ZC_OK;
}

size_t zc_context_kv_bytes(const zc_context *c) {
    size_t total = 0;
    for (int s = 0; s < n_seq_of(c); s++) {
        zc_kv_usage u;
        zc_ctx_seq_kv(c, s)->ops->usage(zc_ctx_seq_kv(c, s), &u);
        total += u.total;
    }
    return total;
}

/* ---- Save / restore (docs/SESSION-FORMAT.md) ------------------------------- */

#define SEQ_MAGIC "ZCKVSEQ"
#define SEQ_VERSION 1u

/* The fixed header, little-endian (x86-64 and every target we build for). */
typedef struct {
    char magic[8];          /* "ZCKVSEQ\0" */
    uint32_t version;       /* SEQ_VERSION */
    uint32_t header_bytes;  /* sizeof(seq_header) */
    uint64_t model;         /* model fingerprint (model_fingerprint) */
    int32_t n_layers, n_kv_heads, head_dim, n_tokens;
    char policy[16];        /* zc_kv_config.policy */
    char options[256];      /* zc_kv_config_describe without the budget, NUL-padded */
    uint64_t state_bytes;   /* bytes of the policy state after the tokens */
} seq_header;
_Static_assert(sizeof(seq_header) == 320, "docs/SESSION-FORMAT.md documents a 320-byte header");

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32) of n bytes, continuing crc. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* A model's identity: architecture, shape and the first and last rows of its
 * token embeddings (two models of one shape differ there). */
static uint64_t model_fingerprint(const zc_model *m) {
    const zc_model_info *h = &m->info;
    int32_t dims[8] = {h->n_layers, h->n_embd, h->n_ff, h->n_heads, h->n_kv_heads, h->head_dim, h->n_vocab, m->n_rot};
    uint64_t f = fnv1a(0xcbf29ce484222325ull, m->arch, strlen(m->arch));
    f = fnv1a(f, dims, sizeof dims);
    float *row = zc_malloc((size_t)h->n_embd * sizeof(float));
    if (row) {
        int64_t ends[2] = {0, (int64_t)h->n_vocab - 1};
        for (int i = 0; i < 2; i++) {
            zc_mat_get_row(&m->tok_embd, ends[i], row);
            f = fnv1a(f, row, (size_t)h->n_embd * sizeof(float));
        }
        free(row);
    }
    return f;
}

static void fill_header(const zc_context *c, int n_tokens, seq_header *hd) {
    const zc_model_info *h = &c->m->info;
    memset(hd, 0, sizeof *hd);
    memcpy(hd->magic, SEQ_MAGIC, sizeof SEQ_MAGIC);
    hd->version = SEQ_VERSION;
    hd->header_bytes = sizeof *hd;
    hd->model = model_fingerprint(c->m);
    hd->n_layers = h->n_layers;
    hd->n_kv_heads = h->n_kv_heads;
    hd->head_dim = h->head_dim;
    hd->n_tokens = n_tokens;
    snprintf(hd->policy, sizeof hd->policy, "%s", c->kv_cfg.policy);
    zc_kv_config cfg = c->kv_cfg;
    cfg.budget_bytes = 0;
    zc_kv_config_describe(&cfg, hd->options, sizeof hd->options);
}

int zc_seq_save(const zc_context *c, int seq, const int32_t *tokens, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    if (seq < 0 || seq >= n_seq_of(c)) return bad_seq(c, seq);
    const zc_kv_cache *kv = zc_ctx_seq_kv(c, seq);
    int n = zc_ctx_seq_pos(c, seq);
    if (n > 0 && !tokens) return zc_error(ZC_ERR_ARG, "sequence %d: save needs its %d tokens", seq, n);
    if (!kv->ops->save)
        return zc_error(ZC_ERR_UNSUPPORTED, "sequence %d: the %s cache cannot be saved", seq, kv->ops->name);
    seq_header hd;
    fill_header(c, n, &hd);
    zc_kv_writer w = {0};
    int rc = zc_kvw_put(&w, &hd, sizeof hd);
    if (rc == ZC_OK) rc = zc_kvw_put(&w, tokens, (size_t)n * sizeof(int32_t));
    size_t state_at = w.len;
    if (rc == ZC_OK) rc = kv->ops->save(kv, &w);
    if (rc == ZC_OK) {
        uint64_t state = w.len - state_at;
        memcpy(w.buf + offsetof(seq_header, state_bytes), &state, sizeof state);
        uint32_t crc = crc32_update(0, w.buf, w.len);
        rc = zc_kvw_put(&w, &crc, sizeof crc);
    }
    if (rc != ZC_OK) {
        free(w.buf);
        return rc;
    }
    *buf = w.buf;
    *len = w.len;
    return ZC_OK;
}

/* Why a buffer is not a session of this context, or ZC_OK. */
static int check_header(const zc_context *c, const uint8_t *buf, size_t len, seq_header *hd) {
    if (len < sizeof *hd + sizeof(uint32_t) || memcmp(buf, SEQ_MAGIC, sizeof SEQ_MAGIC))
        return zc_error(ZC_ERR_FORMAT, "not a zipcache session (%zu bytes, no ZCKVSEQ header)", len);
    memcpy(hd, buf, sizeof *hd);
    if (hd->version != SEQ_VERSION || hd->header_bytes != sizeof *hd)
        return zc_error(ZC_ERR_UNSUPPORTED, "session format version %u (header %u bytes); this build reads version %u",
                        hd->version, hd->header_bytes, SEQ_VERSION);
    uint64_t want = (uint64_t)sizeof *hd + (uint64_t)(hd->n_tokens < 0 ? 0 : hd->n_tokens) * 4 + hd->state_bytes + 4;
    if (hd->n_tokens < 0 || hd->state_bytes > len || want != len)
        return zc_error(ZC_ERR_FORMAT, "session truncated or padded: %zu bytes, its header describes %llu", len,
                        (unsigned long long)want);
    uint32_t crc;
    memcpy(&crc, buf + len - 4, 4);
    if (crc32_update(0, buf, len - 4) != crc) return zc_error(ZC_ERR_FORMAT, "session corrupted: checksum mismatch");
    seq_header mine;
    fill_header(c, 0, &mine);
    if (hd->model != mine.model || hd->n_layers != mine.n_layers || hd->n_kv_heads != mine.n_kv_heads ||
        hd->head_dim != mine.head_dim)
        return zc_error(ZC_ERR_FORMAT, "session of another model (%d layers, %d KV heads of %d; this model: %d, %d, %d%s)",
                        hd->n_layers, hd->n_kv_heads, hd->head_dim, mine.n_layers, mine.n_kv_heads, mine.head_dim,
                        hd->model != mine.model ? ", and other weights" : "");
    hd->policy[sizeof hd->policy - 1] = hd->options[sizeof hd->options - 1] = 0;
    if (strcmp(hd->options, mine.options))
        return zc_error(ZC_ERR_FORMAT, "session of another KV cache: %s; this context: %s", hd->options, mine.options);
    if (hd->n_tokens > c->n_ctx)
        return zc_error(ZC_ERR_LIMIT, "session of %d tokens does not fit the context of %d", hd->n_tokens, c->n_ctx);
    return ZC_OK;
}

int zc_seq_load(zc_context *c, int seq, const uint8_t *buf, size_t len, int32_t **tokens, int *n_tokens) {
    *tokens = NULL;
    *n_tokens = 0;
    if (seq < 0 || seq >= n_seq_of(c)) return bad_seq(c, seq);
    seq_header hd;
    int rc = check_header(c, buf, len, &hd);
    if (rc) return rc;
    zc_kv_cache *fresh = NULL;
    if ((rc = new_cache(c, &fresh))) return rc;
    if (!fresh->ops->load) {
        zc_kv_free(fresh);
        return zc_error(ZC_ERR_UNSUPPORTED, "the %s cache cannot be restored", fresh->ops->name);
    }
    size_t tok_bytes = (size_t)hd.n_tokens * sizeof(int32_t);
    zc_kv_reader r = {buf + sizeof hd + tok_bytes, (size_t)hd.state_bytes, 0};
    rc = fresh->ops->load(fresh, &r);
    if (rc == ZC_OK && (r.off != r.len || fresh->n_tokens != hd.n_tokens))
        rc = zc_error(ZC_ERR_FORMAT, "session state holds %d tokens in %zu of %zu bytes; the header says %d",
                      fresh->n_tokens, r.off, r.len, hd.n_tokens);
    int32_t *ids = NULL;
    if (rc == ZC_OK && hd.n_tokens > 0) {
        if (!(ids = zc_malloc(tok_bytes))) rc = ZC_ERR_NOMEM;
        else memcpy(ids, buf + sizeof hd, tok_bytes);
        for (int i = 0; rc == ZC_OK && i < hd.n_tokens; i++)
            if (ids[i] < 0 || ids[i] >= c->m->info.n_vocab)
                rc = zc_error(ZC_ERR_FORMAT, "session token %d (index %d) is outside the vocabulary", ids[i], i);
    }
    if (rc == ZC_OK && c->kv_cfg.budget_bytes) { /* the budget covers the restored cache too */
        zc_kv_usage u, mine;
        fresh->ops->usage(fresh, &u);
        zc_seq_kv_usage(c, seq, &mine);
        size_t after = zc_context_kv_bytes(c) - mine.total + u.total;
        if (after > c->kv_cfg.budget_bytes)
            rc = zc_error(ZC_ERR_LIMIT, "restoring %zu bytes of cache would take the context to %zu bytes, over the KV "
                          "budget of %zu", u.total, after, c->kv_cfg.budget_bytes);
    }
    if (rc != ZC_OK) {
        zc_kv_free(fresh);
        free(ids);
        return zc_error_prefix(rc, "session");
    }
    /* commit: the new cache replaces the sequence's */
    if (seq == 0) {
        zc_kv_free(c->kv);
        c->kv = fresh;
        c->pos = hd.n_tokens;
    } else {
        zc_kv_free(c->seq_kv[seq]);
        c->seq_kv[seq] = fresh;
        c->seq_pos[seq] = hd.n_tokens;
    }
    *tokens = ids;
    *n_tokens = hd.n_tokens;
    return ZC_OK;
}

int zc_seq_save_file(const zc_context *c, int seq, const int32_t *tokens, const char *path) {
    uint8_t *buf;
    size_t len;
    int rc = zc_seq_save(c, seq, tokens, &buf, &len);
    if (rc) return rc;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        free(buf);
        return zc_error(ZC_ERR_ARG, "%s: path too long", path);
    }
    rc = zc_write_file(tmp, buf, len);
    free(buf);
    if (rc) return rc;
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return zc_error(ZC_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(e));
    }
    return ZC_OK;
}

int zc_seq_load_file(zc_context *c, int seq, const char *path, int32_t **tokens, int *n_tokens) {
    *tokens = NULL;
    *n_tokens = 0;
    char *buf;
    size_t len;
    int rc = zc_read_file(path, (size_t)1 << 40, &buf, &len);
    if (rc) return rc;
    rc = zc_seq_load(c, seq, (const uint8_t *)buf, len, tokens, n_tokens);
    free(buf);
    return rc ? zc_error_prefix(rc, "%s", path) : ZC_OK;
}

/* ---- Chat template ---------------------------------------------------------- */

static int dup_str(const char *s, size_t len, char **out) {
    if (!(*out = zc_malloc(len + 1))) return ZC_ERR_NOMEM;
    memcpy(*out, s, len);
    (*out)[len] = 0;
    return ZC_OK;
}

int zc_model_chat_template(const zc_model *m, char **out) {
    *out = NULL;
    if (m->gguf) {
        size_t len;
        const char *t = zc_gguf_get_str(m->gguf, "tokenizer.chat_template", &len);
        return t ? dup_str(t, len, out) : ZC_OK;
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", m->path);
    char *text;
    size_t len;
    if (zc_read_file(path, (size_t)64 << 20, &text, &len) != ZC_OK) {
        zc_clear_error();
        return ZC_OK; /* no tokenizer_config.json: no template */
    }
    zc_json_doc *doc;
    const zc_json *root;
    int rc = zc_json_parse(text, len, path, &doc, &root);
    free(text);
    if (rc) return rc;
    const zc_json *t = zc_json_get(root, "chat_template");
    if (t && t->type == ZC_JSON_ARRAY) { /* [{name, template}]: the default one, else the first */
        const zc_json *pick = NULL;
        for (size_t i = 0; i < t->len; i++) {
            const char *name = zc_json_str(zc_json_get(&t->items[i], "name"));
            if (!pick || (name && !strcmp(name, "default"))) pick = zc_json_get(&t->items[i], "template");
        }
        t = pick;
    }
    if (t && t->type == ZC_JSON_STRING) rc = dup_str(t->str, t->len, out);
    zc_json_free(doc);
    return rc;
}

int zc_model_token_id(const zc_model *m, const char *text, size_t len) { return zc_tokenizer_token_id(m->tok, text, len); }
