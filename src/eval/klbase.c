/* The KL base file: the reference (fp16-cache) run's next-token distributions,
 * one record per scored token. Layout and size are documented in eval.h. */
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "util/error.h"
#include "util/file.h"

static const char KLBASE_MAGIC[8] = {'Z', 'C', 'K', 'L', 'B', 'A', 'S', 'E'};
enum { KLBASE_VERSION = 1, KLBASE_RECORD_FIXED = 12 /* target, argmax, nll */ };

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static void make_header(uint8_t h[ZC_KLBASE_HEADER_BYTES], int n_vocab, int ctx, int first_chunk, uint64_t n_records) {
    memset(h, 0, ZC_KLBASE_HEADER_BYTES);
    memcpy(h, KLBASE_MAGIC, 8);
    put_u32(h + 8, KLBASE_VERSION);
    put_u32(h + 12, (uint32_t)n_vocab);
    put_u32(h + 16, (uint32_t)ctx);
    put_u32(h + 20, (uint32_t)first_chunk);
    put_u64(h + 24, n_records);
}

int zc_klbase_create(zc_klbase_writer *w, const char *path, int n_vocab, int ctx, int first_chunk) {
    memset(w, 0, sizeof *w);
    if (n_vocab <= 0 || ctx <= 0 || first_chunk < 0) return zc_error(ZC_ERR_ARG, "%s: bad KL base shape (vocab %d, ctx %d)", path, n_vocab, ctx);
    w->path = strdup(path);
    w->row = zc_malloc((size_t)n_vocab * sizeof *w->row);
    if (!w->path || !w->row) {
        free(w->path);
        free(w->row);
        return zc_error(ZC_ERR_NOMEM, "%s: out of memory", path);
    }
    w->n_vocab = n_vocab;
    w->ctx = ctx;
    w->first_chunk = first_chunk;
    w->f = fopen(path, "wb");
    uint8_t h[ZC_KLBASE_HEADER_BYTES];
    make_header(h, n_vocab, ctx, first_chunk, 0);
    if (!w->f || fwrite(h, 1, sizeof h, w->f) != sizeof h) {
        int rc = zc_error(ZC_ERR_IO, "%s: cannot write KL base file", path);
        zc_klbase_abandon(w);
        return rc;
    }
    return ZC_OK;
}

int zc_klbase_append(zc_klbase_writer *w, const float *logits, int target) {
    double lse = zc_eval_logsumexp(logits, w->n_vocab);
    for (int i = 0; i < w->n_vocab; i++) w->row[i] = zc_f32_to_fp16((float)(logits[i] - lse));
    uint8_t fixed[KLBASE_RECORD_FIXED];
    float nll = (float)(lse - logits[target]);
    uint32_t nll_bits;
    memcpy(&nll_bits, &nll, 4);
    put_u32(fixed, (uint32_t)target);
    put_u32(fixed + 4, (uint32_t)zc_eval_argmax(logits, w->n_vocab));
    put_u32(fixed + 8, nll_bits);
    /* The fp16 row goes out in host order: the library targets little-endian
     * hosts (x86-64), which is the file's order. */
    if (fwrite(fixed, 1, sizeof fixed, w->f) != sizeof fixed ||
        fwrite(w->row, 2, (size_t)w->n_vocab, w->f) != (size_t)w->n_vocab)
        return zc_error(ZC_ERR_IO, "%s: write failed", w->path);
    w->n_records++;
    return ZC_OK;
}

int zc_klbase_close(zc_klbase_writer *w) {
    /* The record count is known only now: rewrite the header. */
    uint8_t h[ZC_KLBASE_HEADER_BYTES];
    make_header(h, w->n_vocab, w->ctx, w->first_chunk, w->n_records);
    int rc = ZC_OK;
    if (fseek(w->f, 0, SEEK_SET) || fwrite(h, 1, sizeof h, w->f) != sizeof h)
        rc = zc_error(ZC_ERR_IO, "%s: write failed", w->path);
    if (fclose(w->f) && rc == ZC_OK) rc = zc_error(ZC_ERR_IO, "%s: write failed", w->path);
    w->f = NULL;
    if (rc != ZC_OK) remove(w->path);
    free(w->path);
    free(w->row);
    memset(w, 0, sizeof *w);
    return rc;
}

void zc_klbase_abandon(zc_klbase_writer *w) {
    if (w->f) {
        fclose(w->f);
        remove(w->path);
    }
    free(w->path);
    free(w->row);
    memset(w, 0, sizeof *w);
}

int zc_klbase_open(zc_klbase *b, const char *path) {
    memset(b, 0, sizeof *b);
    char *data;
    size_t size;
    int rc = zc_read_file(path, (size_t)1 << 40, &data, &size);
    if (rc != ZC_OK) return rc;
    const uint8_t *h = (const uint8_t *)data;
    if (size < ZC_KLBASE_HEADER_BYTES || memcmp(h, KLBASE_MAGIC, 8)) {
        free(data);
        return zc_error(ZC_ERR_FORMAT, "%s: not a KL base file (made by eval ppl --save-kl-base)", path);
    }
    uint32_t version = get_u32(h + 8), n_vocab = get_u32(h + 12), ctx = get_u32(h + 16), first = get_u32(h + 20);
    uint64_t n = get_u64(h + 24);
    if (version != KLBASE_VERSION) {
        free(data);
        return zc_error(ZC_ERR_FORMAT, "%s: KL base version %u, expected %d", path, version, KLBASE_VERSION);
    }
    if (n_vocab == 0 || n_vocab > (1u << 24) || ctx == 0 || ctx > (1u << 30) || first > (1u << 30)) {
        free(data);
        return zc_error(ZC_ERR_FORMAT, "%s: bad KL base header (vocab %u, ctx %u)", path, n_vocab, ctx);
    }
    /* The records must fill the file exactly: n * (12 + 2*vocab) + header. */
    size_t rec = ZC_KLBASE_RECORD_BYTES(n_vocab), body;
    if (n > SIZE_MAX || zc_mul_size((size_t)n, rec, &body) || body != size - ZC_KLBASE_HEADER_BYTES) {
        free(data);
        return zc_error(ZC_ERR_FORMAT, "%s: size %zu does not match %llu records of vocab %u (truncated?)", path,
                        size, (unsigned long long)n, n_vocab);
    }
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *p = (const uint8_t *)data + ZC_KLBASE_HEADER_BYTES + (size_t)i * rec;
        if (get_u32(p) >= n_vocab || get_u32(p + 4) >= n_vocab) {
            free(data);
            return zc_error(ZC_ERR_FORMAT, "%s: record %llu: token id out of range [0, %u)", path,
                            (unsigned long long)i, n_vocab);
        }
    }
    b->data = (uint8_t *)data;
    b->size = size;
    b->n_vocab = (int)n_vocab;
    b->ctx = (int)ctx;
    b->first_chunk = (int)first;
    b->n_records = n;
    return ZC_OK;
}

void zc_klbase_close_reader(zc_klbase *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

void zc_klbase_record(const zc_klbase *b, uint64_t i, int *target, int *top1, double *nll, const zc_fp16 **logp) {
    size_t rec = ZC_KLBASE_RECORD_BYTES(b->n_vocab);
    const uint8_t *p = b->data + ZC_KLBASE_HEADER_BYTES + (size_t)i * rec;
    uint32_t nll_bits = get_u32(p + 8);
    float f;
    memcpy(&f, &nll_bits, 4);
    *target = (int)get_u32(p);
    *top1 = (int)get_u32(p + 4);
    *nll = f;
    *logp = (const zc_fp16 *)(const void *)(p + KLBASE_RECORD_FIXED);
}
