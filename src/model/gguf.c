/* GGUF reader and writer.
 *
 * File layout (little-endian throughout; v2 and v3 are identical for
 * little-endian files, v3 only added big-endian variants, which we refuse):
 *
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv
 *   n_kv x { string key, u32 value_type, value }
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *   padding to general.alignment (default 32)
 *   data section: tensor i at data_start + offset_i (offset_i aligned)
 *
 *   string = u64 length + bytes (no terminator)
 *   array  = u32 element type + u64 count + elements (strings and arrays nest)
 *
 * The reader never trusts a count: before allocating for n items it checks
 * that n times the smallest encoding of one item fits in the remaining bytes,
 * so a 100-byte file cannot make us allocate more than ~100 entries.
 */
#include "model/gguf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/ggml_blocks.h"
#include "util/error.h"
#include "util/file.h"
#include "util/small.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_TENSOR_NAME 64 /* ggml's GGML_MAX_NAME, terminator included */
/* Arrays of arrays are legal in the format but no model uses them; we parse
 * them (so such files still open) up to this depth and refuse deeper ones,
 * which bounds the parser's recursion. */
#define GGUF_MAX_ARRAY_DEPTH 4

/* Smallest possible encodings, used to bound counts by the bytes left. */
#define MIN_KV_BYTES 13     /* u64 key len + u32 type + 1-byte value */
#define MIN_TENSOR_BYTES 32 /* u64 name len + u32 n_dims + 1 x u64 ne + u32 type + u64 offset */

/* ---- small helpers shared by reader and writer ---------------------------- */

/* Byte size of one scalar value type, 0 for string/array/unknown. */
static size_t scalar_size(uint32_t t) {
    switch (t) {
    case ZC_GGUF_U8: case ZC_GGUF_I8: case ZC_GGUF_BOOL: return 1;
    case ZC_GGUF_U16: case ZC_GGUF_I16: return 2;
    case ZC_GGUF_U32: case ZC_GGUF_I32: case ZC_GGUF_F32: return 4;
    case ZC_GGUF_U64: case ZC_GGUF_I64: case ZC_GGUF_F64: return 8;
    default: return 0;
    }
}

static const char *vtype_name(uint32_t t) {
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static uint64_t hash_bytes(const char *s, size_t n) { /* FNV-1a */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h;
}

/* Open-addressing name -> index table (indices stored +1, 0 = empty). */
typedef struct {
    int32_t *slots;
    size_t mask;
} name_table;

static int table_init(name_table *t, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    t->slots = zc_calloc(cap, sizeof *t->slots);
    t->mask = cap - 1;
    return t->slots ? ZC_OK : ZC_ERR_NOMEM;
}

/* Slot holding `name`, or the empty slot where it would go. `name_of`
 * gives the stored name of an index. */
static size_t table_slot(const name_table *t, const char *name, size_t len,
                         const char *(*name_of)(const void *, int), const void *owner) {
    for (size_t s = hash_bytes(name, len) & t->mask;; s = (s + 1) & t->mask) {
        int32_t v = t->slots[s];
        if (v == 0) return s;
        const char *other = name_of(owner, v - 1);
        if (strlen(other) == len && memcmp(other, name, len) == 0) return s;
    }
}

/* Index stored under name, or -1. */
static int table_find(const name_table *t, const char *name, const char *(*name_of)(const void *, int),
                      const void *owner) {
    if (!t->slots) return -1; /* no table: the file failed to open before it was built */
    return t->slots[table_slot(t, name, strlen(name), name_of, owner)] - 1;
}

/* Insert idx under name; false if the name is already present. */
static bool table_insert(name_table *t, const char *name, int idx, const char *(*name_of)(const void *, int),
                         const void *owner) {
    size_t s = table_slot(t, name, strlen(name), name_of, owner);
    if (t->slots[s]) return false;
    t->slots[s] = idx + 1;
    return true;
}

/* ---- reader ---------------------------------------------------------------- */

typedef struct {
    char *key;               /* NUL-terminated copy */
    zc_gguf_vtype type;
    size_t val_off, val_size; /* serialized value: file offset and length */
    /* arrays only */
    zc_gguf_vtype arr_type;
    uint64_t arr_n;
    const void *arr_data;    /* numeric: element data aligned to the element size */
    void *arr_copy;          /* owned copy when the mapping was misaligned */
    uint64_t *str_off;       /* string arrays: [arr_n] file offset of each u64 length */
} gguf_kv;

struct zc_gguf {
    zc_mapped_file file;
    uint32_t version;
    size_t alignment;
    size_t data_start;
    int n_kv, n_tensors;
    gguf_kv *kv;              /* [n_kv] */
    zc_gguf_tensor *tensors;  /* [n_tensors] */
    name_table kv_index, tensor_index;
};

/* Parsing cursor: position plus a description of what is being read, so
 * every error says where it happened. */
typedef struct {
    const uint8_t *base;
    size_t size, pos;
    const char *path;
    char where[160];
} cursor;

static int fail(const cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const cursor *c, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return zc_error(ZC_ERR_FORMAT, "%s: %s (%s, byte %zu)", c->path, what, c->where, c->pos);
}

static int need(const cursor *c, size_t n, const char *what) {
    if (n > c->size - c->pos)
        return fail(c, "file truncated: %s needs %zu bytes, %zu left", what, n, c->size - c->pos);
    return ZC_OK;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
    int rc = need(c, 4, what);
    if (rc) return rc;
    memcpy(v, c->base + c->pos, 4);
    c->pos += 4;
    return ZC_OK;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
    int rc = need(c, 8, what);
    if (rc) return rc;
    memcpy(v, c->base + c->pos, 8);
    c->pos += 8;
    return ZC_OK;
}

/* A string: on success *s points into the mapping, *len is its length. */
static int rd_str(cursor *c, const char **s, uint64_t *len, const char *what) {
    int rc = rd_u64(c, len, what);
    if (rc) return rc;
    if (*len > c->size - c->pos) {
        c->pos -= 8;
        return fail(c, "%s length %" PRIu64 " runs past end of file (%zu bytes left)", what, *len,
                    c->size - c->pos - 8);
    }
    *s = (const char *)c->base + c->pos;
    c->pos += (size_t)*len;
    return ZC_OK;
}

/* A name (key or tensor name) copied NUL-terminated; embedded NULs refused
 * since names are looked up as C strings. */
static int rd_name(cursor *c, char **out, const char *what) {
    const char *s = NULL;
    uint64_t len;
    int rc = rd_str(c, &s, &len, what);
    if (rc) return rc;
    if (memchr(s, 0, (size_t)len)) return fail(c, "%s contains a NUL byte", what);
    *out = zc_malloc((size_t)len + 1);
    if (!*out) return ZC_ERR_NOMEM;
    memcpy(*out, s, (size_t)len);
    (*out)[len] = 0;
    return ZC_OK;
}

/* Skip one value of type t, validating it; depth counts array nesting. */
static int skip_value(cursor *c, uint32_t t, int depth);

static int skip_array(cursor *c, int depth, uint32_t *elem_type, uint64_t *count) {
    if (depth > GGUF_MAX_ARRAY_DEPTH) return fail(c, "arrays nested deeper than %d", GGUF_MAX_ARRAY_DEPTH);
    int rc = rd_u32(c, elem_type, "array element type");
    if (!rc) rc = rd_u64(c, count, "array length");
    if (rc) return rc;
    uint32_t et = *elem_type;
    size_t es = scalar_size(et);
    size_t min = es ? es : et == ZC_GGUF_STRING ? 8 : et == ZC_GGUF_ARRAY ? 12 : 0;
    if (min == 0) return fail(c, "unknown array element type %" PRIu32, et);
    if (*count > (c->size - c->pos) / min)
        return fail(c, "array of %" PRIu64 " %s elements runs past end of file (%zu bytes left)", *count,
                    vtype_name(et), c->size - c->pos);
    if (es) {
        if (et == ZC_GGUF_BOOL)
            for (uint64_t i = 0; i < *count; i++)
                if (c->base[c->pos + i] > 1) {
                    c->pos += (size_t)i;
                    return fail(c, "bool array element %" PRIu64 " is %u, not 0 or 1", i, c->base[c->pos]);
                }
        c->pos += (size_t)(*count * es);
        return ZC_OK;
    }
    for (uint64_t i = 0; i < *count; i++) {
        rc = skip_value(c, et, depth + 1);
        if (rc) return rc;
    }
    return ZC_OK;
}

static int skip_value(cursor *c, uint32_t t, int depth) {
    size_t es = scalar_size(t);
    if (es) {
        int rc = need(c, es, vtype_name(t));
        if (rc) return rc;
        if (t == ZC_GGUF_BOOL && c->base[c->pos] > 1) return fail(c, "bool value %u is not 0 or 1", c->base[c->pos]);
        c->pos += es;
        return ZC_OK;
    }
    if (t == ZC_GGUF_STRING) {
        const char *s;
        uint64_t len;
        return rd_str(c, &s, &len, "string");
    }
    if (t == ZC_GGUF_ARRAY) {
        uint32_t et;
        uint64_t n;
        return skip_array(c, depth, &et, &n);
    }
    return fail(c, "unknown value type %" PRIu32, t);
}

static const char *kv_name_of(const void *owner, int i) { return ((const zc_gguf *)owner)->kv[i].key; }
static const char *tensor_name_of(const void *owner, int i) {
    return ((const zc_gguf *)owner)->tensors[i].name;
}

/* Parse an array value in place: record element type/count and build the
 * string offset table or the aligned numeric view. */
static int parse_array(cursor *c, gguf_kv *kv) {
    uint32_t et;
    uint64_t n;
    size_t start = c->pos;
    int rc = skip_array(c, 1, &et, &n);
    if (rc) return rc;
    kv->arr_type = (zc_gguf_vtype)et;
    kv->arr_n = n;
    size_t data_off = start + 12;
    size_t es = scalar_size(et);
    if (es) {
        const uint8_t *p = c->base + data_off;
        if ((uintptr_t)p % es) { /* mappings are page aligned, so this is the file offset's alignment */
            kv->arr_copy = zc_malloc((size_t)n * es);
            if (!kv->arr_copy) return ZC_ERR_NOMEM;
            memcpy(kv->arr_copy, p, (size_t)n * es);
            p = kv->arr_copy;
        }
        kv->arr_data = p;
    } else if (et == ZC_GGUF_STRING) {
        /* n <= bytes/8 was checked by skip_array, so this allocation is bounded. */
        kv->str_off = zc_malloc((size_t)(n ? n : 1) * sizeof *kv->str_off);
        if (!kv->str_off) return ZC_ERR_NOMEM;
        size_t off = data_off;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t len;
            kv->str_off[i] = off;
            memcpy(&len, c->base + off, 8);
            off += 8 + (size_t)len; /* validated by skip_array */
        }
    }
    return ZC_OK;
}

static int parse_kvs(zc_gguf *g, cursor *c, uint64_t n_kv) {
    g->kv = zc_calloc((size_t)(n_kv ? n_kv : 1), sizeof *g->kv);
    if (!g->kv) return ZC_ERR_NOMEM;
    int rc = table_init(&g->kv_index, (size_t)n_kv);
    if (rc) return rc;
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        snprintf(c->where, sizeof c->where, "key %" PRIu64, i);
        rc = rd_name(c, &kv->key, "key");
        if (rc) return rc;
        g->n_kv = (int)i + 1; /* so close() frees what was parsed so far */
        snprintf(c->where, sizeof c->where, "key %" PRIu64 " '%.100s'", i, kv->key);
        if (!table_insert(&g->kv_index, kv->key, (int)i, kv_name_of, g)) return fail(c, "duplicate key");
        uint32_t t;
        rc = rd_u32(c, &t, "value type");
        if (rc) return rc;
        if (t > ZC_GGUF_F64) {
            c->pos -= 4;
            return fail(c, "unknown value type %" PRIu32, t);
        }
        kv->type = (zc_gguf_vtype)t;
        kv->val_off = c->pos;
        rc = t == ZC_GGUF_ARRAY ? parse_array(c, kv) : skip_value(c, t, 0);
        if (rc) return rc;
        kv->val_size = c->pos - kv->val_off;
    }
    return ZC_OK;
}

static int parse_alignment(zc_gguf *g, cursor *c) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int i = zc_gguf_find_key(g, "general.alignment");
    if (i < 0) return ZC_OK;
    snprintf(c->where, sizeof c->where, "key 'general.alignment'");
    c->pos = g->kv[i].val_off;
    if (g->kv[i].type != ZC_GGUF_U32) return fail(c, "alignment must be u32, not %s", vtype_name(g->kv[i].type));
    uint32_t a;
    memcpy(&a, c->base + g->kv[i].val_off, 4);
    if (a == 0 || (a & (a - 1)) != 0) return fail(c, "alignment %" PRIu32 " is not a power of two", a);
    g->alignment = a;
    return ZC_OK;
}

static int parse_tensor_infos(zc_gguf *g, cursor *c, uint64_t n_tensors) {
    g->tensors = zc_calloc((size_t)(n_tensors ? n_tensors : 1), sizeof *g->tensors);
    if (!g->tensors) return ZC_ERR_NOMEM;
    int rc = table_init(&g->tensor_index, (size_t)n_tensors);
    if (rc) return rc;
    for (uint64_t i = 0; i < n_tensors; i++) {
        zc_gguf_tensor *t = &g->tensors[i];
        snprintf(c->where, sizeof c->where, "tensor %" PRIu64, i);
        char *name;
        rc = rd_name(c, &name, "tensor name");
        if (rc) return rc;
        t->name = name;
        g->n_tensors = (int)i + 1;
        snprintf(c->where, sizeof c->where, "tensor %" PRIu64 " '%.100s'", i, name);
        if (!table_insert(&g->tensor_index, name, (int)i, tensor_name_of, g)) return fail(c, "duplicate tensor name");
        uint32_t n_dims;
        rc = rd_u32(c, &n_dims, "n_dims");
        if (rc) return rc;
        if (n_dims < 1 || n_dims > 4) {
            c->pos -= 4;
            return fail(c, "n_dims %" PRIu32 " is not in 1..4", n_dims);
        }
        t->n_dims = (int)n_dims;
        int64_t n_elems = 1;
        for (int d = 0; d < 4; d++) {
            uint64_t ne = 1;
            if (d < (int)n_dims) {
                rc = rd_u64(c, &ne, "dimension");
                if (rc) return rc;
            }
            if (ne == 0 || ne > INT64_MAX) {
                c->pos -= 8;
                return fail(c, "dimension %d is %" PRIu64 ", must be in 1..2^63-1", d, ne);
            }
            if (__builtin_mul_overflow(n_elems, (int64_t)ne, &n_elems)) {
                c->pos -= 8;
                return fail(c, "element count overflows at dimension %d (%" PRIu64 ")", d, ne);
            }
            t->ne[d] = (int64_t)ne;
        }
        uint32_t type;
        rc = rd_u32(c, &type, "tensor type");
        if (rc) return rc;
        const zc_type_info *ti = zc_type_get((int)type);
        if (!ti) {
            c->pos -= 4;
            return fail(c, "unknown tensor type %" PRIu32, type);
        }
        t->type = (int)type;
        if (t->ne[0] % ti->block_elems != 0) {
            c->pos -= 4;
            return fail(c, "row length %" PRId64 " is not a multiple of the %s block size %d", t->ne[0], ti->name,
                        ti->block_elems);
        }
        size_t row_bytes, nbytes;
        if (zc_type_row_bytes(t->type, t->ne[0], &row_bytes) ||
            zc_mul_size(row_bytes, (size_t)(n_elems / t->ne[0]), &nbytes)) {
            c->pos -= 4;
            return fail(c, "tensor byte size overflows");
        }
        t->nbytes = nbytes;
        rc = rd_u64(c, &t->offset, "tensor offset");
        if (rc) return rc;
    }
    return ZC_OK;
}

static int cmp_by_offset(const void *a, const void *b) {
    const zc_gguf_tensor *x = *(const zc_gguf_tensor *const *)a, *y = *(const zc_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Data placement: aligned, inside the file, no two tensors overlapping. */
static int place_tensors(zc_gguf *g, cursor *c) {
    size_t header_end = c->pos;
    size_t pad = (g->alignment - header_end % g->alignment) % g->alignment;
    g->data_start = header_end + pad;
    if (g->n_tensors == 0) return ZC_OK; /* vocab-only files may end without padding */
    if (g->data_start > c->size) {
        snprintf(c->where, sizeof c->where, "data section");
        return fail(c, "file truncated: data section would start at %zu past end of file %zu", g->data_start,
                    c->size);
    }
    size_t data_size = c->size - g->data_start;
    const zc_gguf_tensor **order = zc_malloc((size_t)g->n_tensors * sizeof *order);
    if (!order) return ZC_ERR_NOMEM;
    int rc = ZC_OK;
    for (int i = 0; i < g->n_tensors && !rc; i++) {
        zc_gguf_tensor *t = &g->tensors[i];
        order[i] = t;
        snprintf(c->where, sizeof c->where, "tensor %d '%.100s'", i, t->name);
        c->pos = header_end;
        if (t->offset % g->alignment)
            rc = fail(c, "data offset %" PRIu64 " is not a multiple of the alignment %zu", t->offset, g->alignment);
        else if (t->offset > data_size || t->nbytes > data_size - t->offset)
            rc = fail(c, "data [%" PRIu64 ", +%zu) runs past end of file (data section is %zu bytes)", t->offset,
                      t->nbytes, data_size);
        else
            t->data = c->base + g->data_start + t->offset;
    }
    if (!rc) {
        qsort(order, (size_t)g->n_tensors, sizeof *order, cmp_by_offset);
        for (int i = 1; i < g->n_tensors && !rc; i++)
            if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset) {
                snprintf(c->where, sizeof c->where, "tensor '%.70s'", order[i]->name);
                rc = fail(c, "data overlaps tensor '%.70s'", order[i - 1]->name);
            }
    }
    free(order);
    return rc;
}

int zc_gguf_open(const char *path, zc_gguf **out) {
    *out = NULL;
    zc_gguf *g = zc_calloc(1, sizeof *g);
    if (!g) return ZC_ERR_NOMEM;
    int rc = zc_map_file(path, &g->file);
    if (rc) {
        free(g);
        return rc;
    }
    cursor c = {.base = g->file.data, .size = g->file.size, .path = g->file.path};
    snprintf(c.where, sizeof c.where, "header");
    uint64_t n_tensors = 0, n_kv = 0;
    if (c.size < 4 || memcmp(c.base, GGUF_MAGIC, 4) != 0) {
        rc = fail(&c, "not a GGUF file (bad magic)");
        goto done;
    }
    c.pos = 4;
    if ((rc = rd_u32(&c, &g->version, "version"))) goto done;
    if (g->version == 1) {
        c.pos -= 4;
        rc = fail(&c, "GGUF version 1 is not supported (only 2 and 3)");
        goto done;
    }
    if (g->version != 2 && g->version != 3) {
        c.pos -= 4;
        /* A byte-swapped small version means a big-endian file. */
        if ((g->version & 0xffff) == 0 && g->version != 0)
            rc = fail(&c, "big-endian GGUF (version 0x%08" PRIx32 ") is not supported", g->version);
        else
            rc = fail(&c, "unsupported GGUF version %" PRIu32 " (only 2 and 3)", g->version);
        goto done;
    }
    if ((rc = rd_u64(&c, &n_tensors, "tensor count")) || (rc = rd_u64(&c, &n_kv, "key count"))) goto done;
    /* Bound both counts by the bytes left before allocating anything. */
    size_t left = c.size - c.pos;
    if (n_kv > left / MIN_KV_BYTES || n_kv > INT32_MAX) {
        c.pos -= 8;
        rc = fail(&c, "key count %" PRIu64 " is impossible for %zu remaining bytes", n_kv, left);
        goto done;
    }
    if (n_tensors > left / MIN_TENSOR_BYTES || n_tensors > INT32_MAX ||
        n_tensors * MIN_TENSOR_BYTES + n_kv * MIN_KV_BYTES > left) {
        c.pos -= 16;
        rc = fail(&c, "tensor count %" PRIu64 " is impossible for %zu remaining bytes", n_tensors, left);
        goto done;
    }
    if ((rc = parse_kvs(g, &c, n_kv))) goto done;
    size_t after_kv = c.pos;
    if ((rc = parse_alignment(g, &c))) goto done;
    c.pos = after_kv;
    if ((rc = parse_tensor_infos(g, &c, n_tensors))) goto done;
    rc = place_tensors(g, &c);
done:
    if (rc) {
        zc_gguf_close(g);
        return rc;
    }
    *out = g;
    return ZC_OK;
}

void zc_gguf_close(zc_gguf *g) {
    if (!g) return;
    for (int i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].arr_copy);
        free(g->kv[i].str_off);
    }
    free(g->kv);
    for (int i = 0; i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->tensors);
    free(g->kv_index.slots);
    free(g->tensor_index.slots);
    zc_unmap_file(&g->file);
    free(g);
}

const char *zc_gguf_path(const zc_gguf *g) { return g->file.path; }
uint32_t zc_gguf_version(const zc_gguf *g) { return g->version; }
size_t zc_gguf_alignment(const zc_gguf *g) { return g->alignment; }
size_t zc_gguf_data_offset(const zc_gguf *g) { return g->data_start; }
size_t zc_gguf_file_size(const zc_gguf *g) { return g->file.size; }

int zc_gguf_n_kv(const zc_gguf *g) { return g->n_kv; }

int zc_gguf_find_key(const zc_gguf *g, const char *key) {
    return table_find(&g->kv_index, key, kv_name_of, g);
}

const char *zc_gguf_key_name(const zc_gguf *g, int i) { return g->kv[i].key; }
zc_gguf_vtype zc_gguf_key_type(const zc_gguf *g, int i) { return g->kv[i].type; }
zc_gguf_vtype zc_gguf_arr_type(const zc_gguf *g, int i) { return g->kv[i].arr_type; }
uint64_t zc_gguf_arr_len(const zc_gguf *g, int i) { return g->kv[i].type == ZC_GGUF_ARRAY ? g->kv[i].arr_n : 0; }

/* Integer value of a scalar at p of type t, widened; false for non-integers. */
static bool read_int(const uint8_t *p, uint32_t t, int64_t *s, uint64_t *u, bool *is_signed) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64; int64_t i64; } v;
    memcpy(&v, p, scalar_size(t) ? scalar_size(t) : 1);
    *is_signed = true;
    switch (t) {
    case ZC_GGUF_U8: *s = v.u8; break;
    case ZC_GGUF_I8: *s = v.i8; break;
    case ZC_GGUF_U16: *s = v.u16; break;
    case ZC_GGUF_I16: *s = v.i16; break;
    case ZC_GGUF_U32: *s = v.u32; break;
    case ZC_GGUF_I32: *s = v.i32; break;
    case ZC_GGUF_I64: *s = v.i64; break;
    case ZC_GGUF_U64: *u = v.u64; *is_signed = false; return true;
    default: return false;
    }
    return true;
}

static const gguf_kv *find_kv(const zc_gguf *g, const char *key) {
    int i = zc_gguf_find_key(g, key);
    return i < 0 ? NULL : &g->kv[i];
}

bool zc_gguf_get_i64(const zc_gguf *g, const char *key, int64_t *out) {
    const gguf_kv *kv = find_kv(g, key);
    int64_t s;
    uint64_t u;
    bool sg;
    if (!kv || !read_int(g->file.data + kv->val_off, kv->type, &s, &u, &sg)) return false;
    if (!sg) {
        if (u > INT64_MAX) return false;
        s = (int64_t)u;
    }
    *out = s;
    return true;
}

bool zc_gguf_get_u32(const zc_gguf *g, const char *key, uint32_t *out) {
    int64_t v;
    if (!zc_gguf_get_i64(g, key, &v) || v < 0 || v > UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

bool zc_gguf_get_f32(const zc_gguf *g, const char *key, float *out) {
    const gguf_kv *kv = find_kv(g, key);
    if (!kv) return false;
    const uint8_t *p = g->file.data + kv->val_off;
    if (kv->type == ZC_GGUF_F32) {
        memcpy(out, p, 4);
        return true;
    }
    if (kv->type == ZC_GGUF_F64) {
        double d;
        memcpy(&d, p, 8);
        *out = (float)d;
        return true;
    }
    return false;
}

bool zc_gguf_get_bool(const zc_gguf *g, const char *key, bool *out) {
    const gguf_kv *kv = find_kv(g, key);
    if (!kv || kv->type != ZC_GGUF_BOOL) return false;
    *out = g->file.data[kv->val_off] != 0;
    return true;
}

const char *zc_gguf_get_str(const zc_gguf *g, const char *key, size_t *len) {
    const gguf_kv *kv = find_kv(g, key);
    if (!kv || kv->type != ZC_GGUF_STRING) return NULL;
    uint64_t n;
    memcpy(&n, g->file.data + kv->val_off, 8);
    if (len) *len = (size_t)n;
    return (const char *)g->file.data + kv->val_off + 8;
}

bool zc_gguf_get_arr(const zc_gguf *g, const char *key, zc_gguf_vtype *elem_type, uint64_t *n, const void **data) {
    const gguf_kv *kv = find_kv(g, key);
    if (!kv || kv->type != ZC_GGUF_ARRAY) return false;
    if (elem_type) *elem_type = kv->arr_type;
    if (n) *n = kv->arr_n;
    if (data) *data = kv->arr_data;
    return true;
}

static const char *arr_str_at(const zc_gguf *g, const gguf_kv *kv, uint64_t idx, size_t *len) {
    uint64_t n;
    memcpy(&n, g->file.data + kv->str_off[idx], 8);
    if (len) *len = (size_t)n;
    return (const char *)g->file.data + kv->str_off[idx] + 8;
}

const char *zc_gguf_arr_str(const zc_gguf *g, const char *key, uint64_t idx, size_t *len) {
    const gguf_kv *kv = find_kv(g, key);
    if (!kv || kv->type != ZC_GGUF_ARRAY || kv->arr_type != ZC_GGUF_STRING || idx >= kv->arr_n) return NULL;
    return arr_str_at(g, kv, idx, len);
}

/* ---- value formatting (for `zipcache info`) -------------------------------- */

/* Quote a string, escaping control bytes, showing at most max bytes. */
static void sb_quoted(zc_text *b, const char *s, size_t n, size_t max) {
    zc_text_printf(b, "\"");
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') zc_text_printf(b, "\\%c", ch);
        else if (ch == '\n') zc_text_printf(b, "\\n");
        else if (ch < 0x20 || ch == 0x7f) zc_text_printf(b, "\\x%02x", ch);
        else zc_text_printf(b, "%c", ch);
    }
    zc_text_printf(b, n > max ? "\"...(%zu bytes)" : "\"", n);
}

static void sb_scalar(zc_text *b, const uint8_t *p, uint32_t t) {
    int64_t s;
    uint64_t u;
    bool sg;
    if (read_int(p, t, &s, &u, &sg)) {
        if (sg) zc_text_printf(b, "%" PRId64, s);
        else zc_text_printf(b, "%" PRIu64, u);
    } else if (t == ZC_GGUF_F32) {
        float f;
        memcpy(&f, p, 4);
        zc_text_printf(b, "%.9g", f);
    } else if (t == ZC_GGUF_F64) {
        double d;
        memcpy(&d, p, 8);
        zc_text_printf(b, "%.17g", d);
    } else if (t == ZC_GGUF_BOOL) {
        zc_text_printf(b, "%s", *p ? "true" : "false");
    }
}

#define FORMAT_MAX_ITEMS 8

/* Format the value starting at file offset off; returns the offset after it.
 * Values were validated at open, so no bounds checks are needed here. */
static size_t format_at(const zc_gguf *g, zc_text *b, size_t off, uint32_t t) {
    const uint8_t *base = g->file.data;
    if (scalar_size(t)) {
        sb_scalar(b, base + off, t);
        return off + scalar_size(t);
    }
    uint64_t n;
    memcpy(&n, base + off, 8);
    if (t == ZC_GGUF_STRING) {
        sb_quoted(b, (const char *)base + off + 8, (size_t)n, 80);
        return off + 8 + (size_t)n;
    }
    uint32_t et;
    memcpy(&et, base + off, 4);
    memcpy(&n, base + off + 4, 8);
    off += 12;
    zc_text_printf(b, "[%s x %" PRIu64 "] [", vtype_name(et), n);
    for (uint64_t i = 0; i < n; i++) {
        bool show = i < FORMAT_MAX_ITEMS;
        if (show) zc_text_printf(b, i ? ", " : "");
        if (!show && scalar_size(et)) { /* fixed-size tail: jump over it */
            off += (size_t)(n - i) * scalar_size(et);
            break;
        }
        if (show) {
            off = format_at(g, b, off, et);
        } else { /* variable-size tail: format into a scratch sink to advance */
            char scratch[1];
            zc_text nul = {scratch, 1, 0};
            off = format_at(g, &nul, off, et);
        }
    }
    zc_text_printf(b, n > FORMAT_MAX_ITEMS ? ", ...]" : "]");
    return off;
}

void zc_gguf_format_value(const zc_gguf *g, int i, char *buf, size_t cap) {
    if (cap == 0) return;
    buf[0] = 0;
    zc_text b = {buf, cap, 0};
    const gguf_kv *kv = &g->kv[i];
    if (kv->type == ZC_GGUF_ARRAY && kv->arr_type == ZC_GGUF_STRING) {
        /* Fast path for 150k-entry vocabularies: use the offset table. */
        zc_text_printf(&b, "[string x %" PRIu64 "] [", kv->arr_n);
        for (uint64_t k = 0; k < kv->arr_n && k < FORMAT_MAX_ITEMS; k++) {
            size_t len;
            const char *s = arr_str_at(g, kv, k, &len);
            zc_text_printf(&b, k ? ", " : "");
            sb_quoted(&b, s, len, 40);
        }
        zc_text_printf(&b, kv->arr_n > FORMAT_MAX_ITEMS ? ", ...]" : "]");
        return;
    }
    format_at(g, &b, kv->val_off, kv->type);
}

int zc_gguf_n_tensors(const zc_gguf *g) { return g->n_tensors; }
const zc_gguf_tensor *zc_gguf_tensor_at(const zc_gguf *g, int i) { return &g->tensors[i]; }

const zc_gguf_tensor *zc_gguf_find_tensor(const zc_gguf *g, const char *name) {
    int i = table_find(&g->tensor_index, name, tensor_name_of, g);
    return i < 0 ? NULL : &g->tensors[i];
}

/* ---- writer ---------------------------------------------------------------- */

typedef struct {
    char *key;
    uint32_t type;
    uint8_t *val; /* serialized value */
    size_t val_size;
} wkv;

typedef struct {
    char *name;
    int type, n_dims;
    int64_t ne[4];
    size_t nbytes, row_bytes;
    int64_t n_rows;
    const void *data;          /* whole tensor, or NULL when produced by fill */
    zc_gguf_fill_fn fill;
    void *fill_ctx;
} wtensor;

struct zc_gguf_writer {
    wkv *kv;
    int n_kv, cap_kv;
    wtensor *t;
    int n_t, cap_t;
};

zc_gguf_writer *zc_gguf_writer_new(void) { return zc_calloc(1, sizeof(zc_gguf_writer)); }

void zc_gguf_writer_free(zc_gguf_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (int i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

/* Set key to an already serialized value (takes ownership of val); an
 * existing key is replaced in place so its position is kept. */
static int set_raw(zc_gguf_writer *w, const char *key, uint32_t type, uint8_t *val, size_t size) {
    for (int i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val);
            w->kv[i].type = type;
            w->kv[i].val = val;
            w->kv[i].val_size = size;
            return ZC_OK;
        }
    if (w->n_kv == w->cap_kv) {
        int cap = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *nk = zc_realloc(w->kv, (size_t)cap * sizeof *nk);
        if (!nk) goto nomem;
        w->kv = nk;
        w->cap_kv = cap;
    }
    char *k = zc_strdup(key);
    if (!k) goto nomem;
    w->kv[w->n_kv++] = (wkv){k, type, val, size};
    return ZC_OK;
nomem:
    free(val);
    return zc_error(ZC_ERR_NOMEM, "gguf writer: out of memory");
}

static int set_scalar(zc_gguf_writer *w, const char *key, uint32_t type, const void *v) {
    size_t n = scalar_size(type);
    uint8_t *val = zc_malloc(n);
    if (!val) return ZC_ERR_NOMEM;
    memcpy(val, v, n);
    return set_raw(w, key, type, val, n);
}

int zc_gguf_set_u32(zc_gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, ZC_GGUF_U32, &v); }
int zc_gguf_set_i32(zc_gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, ZC_GGUF_I32, &v); }
int zc_gguf_set_f32(zc_gguf_writer *w, const char *key, float v) { return set_scalar(w, key, ZC_GGUF_F32, &v); }
int zc_gguf_set_bool(zc_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v;
    return set_scalar(w, key, ZC_GGUF_BOOL, &b);
}

int zc_gguf_set_str(zc_gguf_writer *w, const char *key, const char *v) {
    uint64_t n = strlen(v);
    uint8_t *val = zc_malloc(8 + (size_t)n);
    if (!val) return ZC_ERR_NOMEM;
    memcpy(val, &n, 8);
    memcpy(val + 8, v, (size_t)n);
    return set_raw(w, key, ZC_GGUF_STRING, val, 8 + (size_t)n);
}

int zc_gguf_set_arr(zc_gguf_writer *w, const char *key, zc_gguf_vtype elem_type, const void *data, uint64_t n) {
    size_t es = scalar_size(elem_type), bytes, total;
    if (!es) return zc_error(ZC_ERR_ARG, "gguf writer: key '%s': element type %d is not numeric", key, elem_type);
    if (zc_mul_size(es, (size_t)n, &bytes) || zc_add_size(bytes, 12, &total)) return ZC_ERR_LIMIT;
    uint8_t *val = zc_malloc(total);
    if (!val) return ZC_ERR_NOMEM;
    uint32_t et = elem_type;
    memcpy(val, &et, 4);
    memcpy(val + 4, &n, 8);
    if (bytes) memcpy(val + 12, data, bytes);
    return set_raw(w, key, ZC_GGUF_ARRAY, val, total);
}

int zc_gguf_set_arr_str(zc_gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    size_t total = 12;
    for (uint64_t i = 0; i < n; i++)
        if (zc_add_size(total, 8 + strlen(strs[i]), &total)) return ZC_ERR_LIMIT;
    uint8_t *val = zc_malloc(total);
    if (!val) return ZC_ERR_NOMEM;
    uint32_t et = ZC_GGUF_STRING;
    memcpy(val, &et, 4);
    memcpy(val + 4, &n, 8);
    size_t off = 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = strlen(strs[i]);
        memcpy(val + off, &len, 8);
        memcpy(val + off + 8, strs[i], (size_t)len);
        off += 8 + (size_t)len;
    }
    return set_raw(w, key, ZC_GGUF_ARRAY, val, total);
}

int zc_gguf_copy_kv(zc_gguf_writer *w, const zc_gguf *src) {
    for (int i = 0; i < src->n_kv; i++) {
        const gguf_kv *kv = &src->kv[i];
        uint8_t *val = zc_malloc(kv->val_size);
        if (!val) return ZC_ERR_NOMEM;
        memcpy(val, src->file.data + kv->val_off, kv->val_size);
        int rc = set_raw(w, kv->key, kv->type, val, kv->val_size);
        if (rc) return rc;
    }
    return ZC_OK;
}

static int add_tensor(zc_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne, wtensor t) {
    if (n_dims < 1 || n_dims > 4) return zc_error(ZC_ERR_ARG, "gguf writer: tensor '%s': n_dims %d", name, n_dims);
    if (!zc_type_get(type)) return zc_error(ZC_ERR_ARG, "gguf writer: tensor '%s': unknown type %d", name, type);
    /* ggml keeps names in char[64]; llama.cpp refuses files with longer ones. */
    if (strlen(name) >= GGUF_MAX_TENSOR_NAME)
        return zc_error(ZC_ERR_ARG, "gguf writer: tensor name '%.40s...' is longer than %d bytes", name,
                        GGUF_MAX_TENSOR_NAME - 1);
    for (int i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return zc_error(ZC_ERR_ARG, "gguf writer: duplicate tensor '%s'", name);
    t.type = type;
    t.n_dims = n_dims;
    t.n_rows = 1;
    for (int d = 0; d < 4; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 1)
            return zc_error(ZC_ERR_ARG, "gguf writer: tensor '%s': dimension %d is %" PRId64, name, d, t.ne[d]);
        if (d > 0 && __builtin_mul_overflow(t.n_rows, t.ne[d], &t.n_rows))
            return zc_error(ZC_ERR_LIMIT, "gguf writer: tensor '%s' too large", name);
    }
    int rc = zc_type_row_bytes(type, t.ne[0], &t.row_bytes);
    if (rc) return zc_error_prefix(rc, "gguf writer: tensor '%s'", name);
    if (zc_mul_size(t.row_bytes, (size_t)t.n_rows, &t.nbytes)) return ZC_ERR_LIMIT;
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *nt = zc_realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt) return ZC_ERR_NOMEM;
        w->t = nt;
        w->cap_t = cap;
    }
    t.name = zc_strdup(name);
    if (!t.name) return zc_error(ZC_ERR_NOMEM, "gguf writer: out of memory");
    w->t[w->n_t++] = t;
    return ZC_OK;
}

int zc_gguf_add_tensor(zc_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                       const void *data, size_t nbytes) {
    int rc = add_tensor(w, name, type, n_dims, ne, (wtensor){.data = data});
    if (rc) return rc;
    if (w->t[w->n_t - 1].nbytes != nbytes) {
        size_t want = w->t[w->n_t - 1].nbytes;
        free(w->t[--w->n_t].name);
        return zc_error(ZC_ERR_ARG, "gguf writer: tensor '%s': %zu bytes given, shape needs %zu", name, nbytes, want);
    }
    return ZC_OK;
}

int zc_gguf_add_tensor_fill(zc_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                            zc_gguf_fill_fn fill, void *ctx) {
    return add_tensor(w, name, type, n_dims, ne, (wtensor){.fill = fill, .fill_ctx = ctx});
}

int zc_gguf_file_type_of(int type) {
    switch (type) {
    case ZC_TYPE_F32: return 0;
    case ZC_TYPE_F16: return 1;
    case ZC_TYPE_Q4_0: return 2;
    case ZC_TYPE_Q4_1: return 3;
    case ZC_TYPE_Q8_0: return 7;
    case ZC_TYPE_Q5_0: return 8;
    case ZC_TYPE_Q5_1: return 9;
    case ZC_TYPE_BF16: return 32;
    default: return -1;
    }
}

int zc_gguf_set_file_type(zc_gguf_writer *w, int type) {
    int ft = zc_gguf_file_type_of(type);
    if (ft < 0) return zc_error(ZC_ERR_ARG, "gguf writer: no general.file_type for type %d", type);
    int rc = zc_gguf_set_u32(w, "general.file_type", (uint32_t)ft);
    bool quant = type != ZC_TYPE_F32 && type != ZC_TYPE_F16 && type != ZC_TYPE_BF16;
    if (!rc && quant) rc = zc_gguf_set_u32(w, "general.quantization_version", 2);
    return rc;
}

/* Buffered output with error tracking; the position is needed for padding. */
typedef struct {
    FILE *f;
    uint64_t pos;
    bool bad;
} wout;

static void put(wout *o, const void *p, size_t n) {
    if (!o->bad && n && fwrite(p, 1, n, o->f) != n) o->bad = true;
    o->pos += n;
}
static void put_u32(wout *o, uint32_t v) { put(o, &v, 4); }
static void put_u64(wout *o, uint64_t v) { put(o, &v, 8); }
static void put_str(wout *o, const char *s) {
    put_u64(o, strlen(s));
    put(o, s, strlen(s));
}
static void put_pad(wout *o, size_t align) {
    static const uint8_t zeros[256];
    size_t pad = (align - o->pos % align) % align;
    while (pad) {
        size_t n = pad < sizeof zeros ? pad : sizeof zeros;
        put(o, zeros, n);
        pad -= n;
    }
}

/* Rows produced per fill call: about 4 MiB, at least one row. */
#define FILL_CHUNK_BYTES (4u << 20)

static int write_tensor_data(wout *o, const wtensor *t, uint8_t **chunk, size_t *chunk_cap) {
    if (t->data) {
        put(o, t->data, t->nbytes);
        return ZC_OK;
    }
    int64_t rows_per = (int64_t)(FILL_CHUNK_BYTES / t->row_bytes);
    if (rows_per < 1) rows_per = 1;
    if (rows_per > t->n_rows) rows_per = t->n_rows;
    size_t need_bytes = (size_t)rows_per * t->row_bytes;
    if (need_bytes > *chunk_cap) {
        uint8_t *nc = zc_realloc(*chunk, need_bytes);
        if (!nc) return ZC_ERR_NOMEM;
        *chunk = nc;
        *chunk_cap = need_bytes;
    }
    for (int64_t r = 0; r < t->n_rows; r += rows_per) {
        int64_t n = t->n_rows - r < rows_per ? t->n_rows - r : rows_per;
        int rc = t->fill(t->fill_ctx, t->name, r, n, *chunk);
        if (rc) return rc;
        put(o, *chunk, (size_t)n * t->row_bytes);
    }
    return ZC_OK;
}

int zc_gguf_write(zc_gguf_writer *w, const char *path) {
    size_t align = GGUF_DEFAULT_ALIGNMENT;
    for (int i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, "general.alignment") == 0) {
            uint32_t a = 0;
            if (w->kv[i].type == ZC_GGUF_U32) memcpy(&a, w->kv[i].val, 4);
            if (a == 0 || (a & (a - 1)))
                return zc_error(ZC_ERR_ARG, "%s: general.alignment must be a u32 power of two", path);
            align = a;
        }
    FILE *f = fopen(path, "wb");
    if (!f) return zc_error(ZC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    wout o = {f, 0, false};
    put(&o, GGUF_MAGIC, 4);
    put_u32(&o, 3);
    put_u64(&o, (uint64_t)w->n_t);
    put_u64(&o, (uint64_t)w->n_kv);
    for (int i = 0; i < w->n_kv; i++) {
        put_str(&o, w->kv[i].key);
        put_u32(&o, w->kv[i].type);
        put(&o, w->kv[i].val, w->kv[i].val_size);
    }
    uint64_t offset = 0;
    for (int i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(&o, t->name);
        put_u32(&o, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(&o, (uint64_t)t->ne[d]);
        put_u32(&o, (uint32_t)t->type);
        put_u64(&o, offset);
        offset += t->nbytes;
        offset += (align - offset % align) % align;
    }
    put_pad(&o, align);
    uint8_t *chunk = NULL;
    size_t chunk_cap = 0;
    int rc = ZC_OK;
    for (int i = 0; i < w->n_t && !rc && !o.bad; i++) {
        rc = write_tensor_data(&o, &w->t[i], &chunk, &chunk_cap);
        put_pad(&o, align);
    }
    free(chunk);
    if (fclose(f) != 0) o.bad = true;
    if (!rc && o.bad) rc = zc_error(ZC_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (rc) remove(path);
    return rc;
}
