/* Public API glue: tokenizer wrappers and memory accounting over the model
 * and context internals. */
#include <string.h>

#include "model/model.h"
#include "util/error.h"

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
