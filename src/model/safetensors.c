/* safetensors reader (see safetensors.h for the format and the checks). */
#include "model/safetensors.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "quant/ggml_blocks.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

/* The reference implementation caps headers at 100 MB; a real 8B model's is ~30 KB. */
#define ST_MAX_HEADER (100u << 20)
#define ST_MAX_INDEX (64u << 20)

typedef struct {
    zc_mapped_file map;
    zc_json_doc *doc; /* owns the tensor names */
} st_file;

struct zc_safetensors {
    st_file *files; /* [n_files] */
    int n_files;
    zc_st_tensor *t; /* [n] sorted by name once opened */
    int n, cap;
};

static const struct {
    const char *name;
    int type; /* zc_type, or -1: a real safetensors dtype we do not load */
} k_dtypes[] = {
    {"F32", ZC_TYPE_F32}, {"F16", ZC_TYPE_F16}, {"BF16", ZC_TYPE_BF16},
    {"F64", -1}, {"I64", -1}, {"I32", -1}, {"I16", -1}, {"I8", -1}, {"U8", -1}, {"U16", -1},
    {"U32", -1}, {"U64", -1}, {"BOOL", -1}, {"F8_E4M3", -1}, {"F8_E5M2", -1}, {"F8_E8M0", -1},
};

void zc_st_close(zc_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_files; i++) {
        zc_json_free(st->files[i].doc);
        zc_unmap_file(&st->files[i].map);
    }
    free(st->files);
    free(st->t);
    free(st);
}

static int push_tensor(zc_safetensors *st, const zc_st_tensor *t) {
    if (st->n == st->cap) {
        int cap = st->cap ? 2 * st->cap : 64;
        zc_st_tensor *nt = zc_realloc(st->t, (size_t)cap * sizeof *nt);
        if (!nt) return ZC_ERR_NOMEM;
        st->t = nt;
        st->cap = cap;
    }
    st->t[st->n++] = *t;
    return ZC_OK;
}

/* Parse one tensor entry `v` named `name` of file `path` into *t. */
/* data: the data section, at file offset data_file_off. */
static int parse_entry(const char *path, const char *name, const zc_json *v, const uint8_t *data,
                       size_t data_file_off, size_t data_size, zc_st_tensor *t) {
    if (!v || v->type != ZC_JSON_OBJECT)
        return zc_error(ZC_ERR_FORMAT, "%s: entry is not an object (tensor '%s')", path, name);
    const char *dtype = zc_json_str(zc_json_get(v, "dtype"));
    if (!dtype) return zc_error(ZC_ERR_FORMAT, "%s: missing string 'dtype' (tensor '%s')", path, name);
    size_t esize = 0;
    t->type = -2;
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (strcmp(dtype, k_dtypes[i].name) == 0) t->type = k_dtypes[i].type;
    if (t->type == -2) return zc_error(ZC_ERR_FORMAT, "%s: unknown dtype '%.40s' (tensor '%s')", path, dtype, name);
    if (t->type == -1)
        return zc_error(ZC_ERR_UNSUPPORTED, "%s: dtype %s is not supported, only F32, F16 and BF16 (tensor '%s')",
                        path, dtype, name);
    esize = t->type == ZC_TYPE_F32 ? 4 : 2;

    const zc_json *shape = zc_json_get(v, "shape");
    if (!shape || shape->type != ZC_JSON_ARRAY)
        return zc_error(ZC_ERR_FORMAT, "%s: missing array 'shape' (tensor '%s')", path, name);
    if (shape->len > ZC_ST_MAX_DIMS)
        return zc_error(ZC_ERR_FORMAT, "%s: %zu dimensions, at most %d supported (tensor '%s')", path, shape->len,
                        ZC_ST_MAX_DIMS, name);
    t->n_dims = (int)shape->len;
    t->n_elems = 1;
    for (int d = 0; d < t->n_dims; d++) {
        int64_t s;
        if (!zc_json_int(&shape->items[d], &s) || s < 0)
            return zc_error(ZC_ERR_FORMAT, "%s: shape[%d] is not a non-negative integer (tensor '%s')", path, d, name);
        t->shape[d] = s;
        if (__builtin_mul_overflow(t->n_elems, s, &t->n_elems))
            return zc_error(ZC_ERR_FORMAT, "%s: shape element count overflows (tensor '%s')", path, name);
    }
    for (int d = t->n_dims; d < ZC_ST_MAX_DIMS; d++) t->shape[d] = 1;

    const zc_json *offs = zc_json_get(v, "data_offsets");
    int64_t begin, end;
    if (!offs || offs->type != ZC_JSON_ARRAY || offs->len != 2 || !zc_json_int(&offs->items[0], &begin) ||
        !zc_json_int(&offs->items[1], &end))
        return zc_error(ZC_ERR_FORMAT, "%s: 'data_offsets' is not [begin, end] (tensor '%s')", path, name);
    if (begin < 0 || end < begin || (uint64_t)end > data_size)
        return zc_error(ZC_ERR_FORMAT,
                        "%s: data_offsets [%" PRId64 ", %" PRId64 "] outside the %zu-byte data section (tensor '%s')",
                        path, begin, end, data_size, name);
    size_t want;
    if (zc_mul_size((size_t)t->n_elems, esize, &want) || want != (size_t)(end - begin))
        return zc_error(ZC_ERR_FORMAT,
                        "%s: data_offsets span %" PRId64 " bytes but shape x %s needs %" PRId64 " x %zu (tensor '%s')",
                        path, end - begin, dtype, t->n_elems, esize, name);
    /* Consumers read elements in place (as float*, uint16_t*): refuse data
     * that is not aligned to its element size. The mapping is page aligned,
     * so this is the file offset's alignment; writers pad the header to a
     * multiple of 8 bytes precisely so that it holds. */
    if ((uintptr_t)(data + begin) % esize)
        return zc_error(ZC_ERR_UNSUPPORTED,
                        "%s: data at file offset %zu is not aligned to its %zu-byte elements (tensor '%s')",
                        path, data_file_off + (size_t)begin, esize, name);
    t->name = name;
    t->data = data + begin;
    t->nbytes = (size_t)(end - begin);
    t->offset = (size_t)begin;
    return ZC_OK;
}

static int cmp_by_data(const void *a, const void *b) {
    const zc_st_tensor *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(((const zc_st_tensor *)a)->name, ((const zc_st_tensor *)b)->name);
}

/* Map and parse one file, appending its tensors to st. */
static int add_file(zc_safetensors *st, const char *path) {
    st_file *nf = zc_realloc(st->files, (size_t)(st->n_files + 1) * sizeof *nf);
    if (!nf) return ZC_ERR_NOMEM;
    st->files = nf;
    st_file *f = &st->files[st->n_files];
    memset(f, 0, sizeof *f);
    int rc = zc_map_file(path, &f->map);
    if (rc) return rc;
    st->n_files++; /* from here on zc_st_close releases it */
    path = f->map.path;
    if (f->map.size < 8)
        return zc_error(ZC_ERR_FORMAT, "%s: file truncated: %zu bytes, the header length alone needs 8 (header)", path,
                        f->map.size);
    uint64_t hlen;
    memcpy(&hlen, f->map.data, 8);
    if (hlen > f->map.size - 8)
        return zc_error(ZC_ERR_FORMAT, "%s: header length %" PRIu64 " runs past end of file (%zu bytes) (header)",
                        path, hlen, f->map.size);
    if (hlen > ST_MAX_HEADER)
        return zc_error(ZC_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the %u-byte limit (header)", path, hlen,
                        ST_MAX_HEADER);
    const char *json = (const char *)f->map.data + 8;
    if (hlen < 2 || json[0] != '{')
        return zc_error(ZC_ERR_FORMAT, "%s: header is not a JSON object (header)", path);
    const zc_json *root;
    /* The parser's messages start with its source: "<path>: bad JSON header: invalid JSON at byte N: ..." */
    char source[1100];
    snprintf(source, sizeof source, "%s: bad JSON header", path);
    rc = zc_json_parse(json, (size_t)hlen, source, &f->doc, &root);
    if (rc) return rc;
    if (root->type != ZC_JSON_OBJECT) return zc_error(ZC_ERR_FORMAT, "%s: header is not a JSON object (header)", path);

    const uint8_t *data = f->map.data + 8 + hlen;
    size_t data_size = f->map.size - 8 - (size_t)hlen;
    int first = st->n;
    for (size_t i = 0; i < root->len; i++) {
        const char *name = root->keys[i];
        if (strlen(name) != root->key_lens[i])
            return zc_error(ZC_ERR_FORMAT, "%s: tensor name contains a NUL byte (header entry %zu)", path, i);
        if (strcmp(name, "__metadata__") == 0) {
            if (root->items[i].type != ZC_JSON_OBJECT)
                return zc_error(ZC_ERR_FORMAT, "%s: __metadata__ is not an object (header)", path);
            continue;
        }
        zc_st_tensor t = {.file = path};
        rc = parse_entry(path, name, &root->items[i], data, 8 + (size_t)hlen, data_size, &t);
        if (rc || (rc = push_tensor(st, &t))) return rc;
    }
    /* Overlap check within this file: sort its tensors by position. Empty
     * tensors occupy no bytes and cannot overlap anything. */
    if (st->n == first) return ZC_OK; /* no tensors (st->t may still be NULL) */
    qsort(st->t + first, (size_t)(st->n - first), sizeof *st->t, cmp_by_data);
    for (int i = first + 1; i < st->n; i++) {
        const zc_st_tensor *a = &st->t[i - 1], *b = &st->t[i];
        if (a->nbytes && b->nbytes && (const uint8_t *)a->data + a->nbytes > (const uint8_t *)b->data)
            return zc_error(ZC_ERR_FORMAT, "%s: data of '%s' overlaps '%s' (tensor '%s')", path, b->name, a->name,
                            b->name);
    }
    return ZC_OK;
}

static int finish(zc_safetensors *st) {
    if (st->n == 0) return ZC_OK;
    qsort(st->t, (size_t)st->n, sizeof *st->t, cmp_by_name);
    for (int i = 1; i < st->n; i++)
        if (strcmp(st->t[i - 1].name, st->t[i].name) == 0)
            return zc_error(ZC_ERR_FORMAT, "%s: duplicate tensor name (tensor '%s', also in %s)", st->t[i].file,
                            st->t[i].name, st->t[i - 1].file);
    return ZC_OK;
}

int zc_st_open_file(const char *path, zc_safetensors **out) {
    *out = NULL;
    zc_safetensors *st = zc_calloc(1, sizeof *st);
    if (!st) return ZC_ERR_NOMEM;
    int rc = add_file(st, path);
    if (!rc) rc = finish(st);
    if (rc) {
        zc_st_close(st);
        return rc;
    }
    *out = st;
    return ZC_OK;
}

static bool file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int join(char *buf, size_t cap, const char *dir, const char *name) {
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, name) >= cap)
        return zc_error(ZC_ERR_ARG, "%s: path too long", dir);
    return ZC_OK;
}

/* Shard file names come from a file: accept plain names only, so an index
 * cannot point outside its directory. */
static bool plain_file_name(const char *s) {
    return *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int open_index(zc_safetensors *st, const char *dir, const char *index_path) {
    char *text;
    size_t len;
    int rc = zc_read_file(index_path, ST_MAX_INDEX, &text, &len);
    if (rc) return rc;
    zc_json_doc *doc = NULL;
    const zc_json *root;
    rc = zc_json_parse(text, len, index_path, &doc, &root);
    free(text);
    if (rc) return rc;
    const zc_json *map = zc_json_get(root, "weight_map");
    char path[4096];
    if (!map || map->type != ZC_JSON_OBJECT || map->len == 0) {
        rc = zc_error(ZC_ERR_FORMAT, "%s: missing or empty object 'weight_map' (index)", index_path);
        goto out;
    }
    /* Open each distinct shard once, in order of first mention. */
    for (size_t i = 0; i < map->len && !rc; i++) {
        const char *shard = zc_json_str(&map->items[i]);
        if (!shard || !plain_file_name(shard)) {
            rc = zc_error(ZC_ERR_FORMAT, "%s: shard of '%s' is not a plain file name (weight_map)", index_path,
                          map->keys[i]);
            break;
        }
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) seen = strcmp(zc_json_str(&map->items[j]), shard) == 0;
        if (!seen && !(rc = join(path, sizeof path, dir, shard))) rc = add_file(st, path);
    }
    if (!rc) rc = finish(st);
    /* Every mapped tensor must be where the index says. */
    for (size_t i = 0; i < map->len && !rc; i++) {
        const zc_st_tensor *t = zc_st_find(st, map->keys[i]);
        if ((rc = join(path, sizeof path, dir, zc_json_str(&map->items[i])))) break;
        if (!t || strcmp(t->file, path) != 0)
            rc = zc_error(ZC_ERR_FORMAT, "%s: tensor '%s' is not in its shard %s (weight_map)", index_path,
                          map->keys[i], zc_json_str(&map->items[i]));
    }
out:
    zc_json_free(doc);
    return rc;
}

int zc_st_open_dir(const char *dir, zc_safetensors **out) {
    *out = NULL;
    char index[4096], single[4096];
    int rc = join(index, sizeof index, dir, "model.safetensors.index.json");
    if (!rc) rc = join(single, sizeof single, dir, "model.safetensors");
    if (rc) return rc;
    if (file_exists(index)) {
        zc_safetensors *st = zc_calloc(1, sizeof *st);
        if (!st) return ZC_ERR_NOMEM;
        rc = open_index(st, dir, index);
        if (rc) {
            zc_st_close(st);
            return rc;
        }
        *out = st;
        return ZC_OK;
    }
    if (file_exists(single)) return zc_st_open_file(single, out);
    return zc_error(ZC_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json", dir);
}

int zc_st_n_tensors(const zc_safetensors *st) { return st->n; }
const zc_st_tensor *zc_st_tensor_at(const zc_safetensors *st, int i) { return &st->t[i]; }

const zc_st_tensor *zc_st_find(const zc_safetensors *st, const char *name) {
    zc_st_tensor key = {.name = name};
    if (st->n == 0) return NULL;
    return bsearch(&key, st->t, (size_t)st->n, sizeof *st->t, cmp_by_name);
}
