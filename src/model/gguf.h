/* GGUF reader (v2 and v3, memory-mapped) and writer (v3).
 *
 * The reader validates everything before use: magic, version (1 and
 * big-endian files refused), counts against the file size before any
 * allocation, every string and array length (arrays of arrays parsed up to a
 * bounded depth), value types, duplicate keys and tensor names, general.alignment
 * (u32 power of two), tensor dimension counts (1..4), dimensions (>= 1, element
 * and byte counts without overflow, ne[0] a multiple of the type's block),
 * tensor types known to quant/ggml_blocks.h, data offsets aligned, inside the
 * file and not overlapping each other. Any violation returns ZC_ERR_FORMAT
 * with "<path>: <problem> (<where>, byte <offset>)".
 * Tensor data is never copied: zc_gguf_tensor.data points into the mapping
 * and is aligned to the file's alignment.
 */
#ifndef ZC_MODEL_GGUF_H
#define ZC_MODEL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Metadata value types, numbered as in the GGUF specification. */
typedef enum {
    ZC_GGUF_U8 = 0, ZC_GGUF_I8 = 1, ZC_GGUF_U16 = 2, ZC_GGUF_I16 = 3,
    ZC_GGUF_U32 = 4, ZC_GGUF_I32 = 5, ZC_GGUF_F32 = 6, ZC_GGUF_BOOL = 7,
    ZC_GGUF_STRING = 8, ZC_GGUF_ARRAY = 9, ZC_GGUF_U64 = 10, ZC_GGUF_I64 = 11,
    ZC_GGUF_F64 = 12,
} zc_gguf_vtype;

typedef struct {
    const char *name;  /* NUL-terminated copy */
    int type;          /* zc_type (ggml numbering), see quant/ggml_blocks.h */
    int n_dims;        /* 1..4 */
    int64_t ne[4];     /* ne[0] = row length (contiguous), unused dims = 1 */
    uint64_t offset;   /* from the start of the data section */
    const void *data;  /* into the mapping */
    size_t nbytes;
} zc_gguf_tensor;

typedef struct zc_gguf zc_gguf;

/* Open and validate a GGUF file. */
int zc_gguf_open(const char *path, zc_gguf **out);
void zc_gguf_close(zc_gguf *g);

const char *zc_gguf_path(const zc_gguf *g);
uint32_t zc_gguf_version(const zc_gguf *g);
size_t zc_gguf_alignment(const zc_gguf *g);
/* File offset where the data section starts (tensor offsets are relative to it). */
size_t zc_gguf_data_offset(const zc_gguf *g);
size_t zc_gguf_file_size(const zc_gguf *g);

/* Metadata: keys are iterated by index 0..n_kv-1 or looked up by name (-1 if absent). */
int zc_gguf_n_kv(const zc_gguf *g);
int zc_gguf_find_key(const zc_gguf *g, const char *key);
const char *zc_gguf_key_name(const zc_gguf *g, int i);
zc_gguf_vtype zc_gguf_key_type(const zc_gguf *g, int i);
/* For arrays: element type and count. */
zc_gguf_vtype zc_gguf_arr_type(const zc_gguf *g, int i);
uint64_t zc_gguf_arr_len(const zc_gguf *g, int i);

/* Typed getters by key name. Integer getters accept any integer type whose
 * value fits; float getters accept F32/F64. Return false if absent or of an
 * incompatible type or out of range. */
bool zc_gguf_get_u32(const zc_gguf *g, const char *key, uint32_t *out);
bool zc_gguf_get_i64(const zc_gguf *g, const char *key, int64_t *out);
bool zc_gguf_get_f32(const zc_gguf *g, const char *key, float *out);
bool zc_gguf_get_bool(const zc_gguf *g, const char *key, bool *out);
/* String value (not NUL-terminated in the file; *len receives the length). */
const char *zc_gguf_get_str(const zc_gguf *g, const char *key, size_t *len);

/* Arrays by key: element type, number of elements and the element data for
 * numeric arrays, aligned to the element size (a copy is made at open when
 * the file placed it misaligned), so `((const float *)data)[i]` is fine.
 * data is NULL for string arrays and arrays of arrays. Strings by element
 * index in O(1) (an offset table is built at open). */
bool zc_gguf_get_arr(const zc_gguf *g, const char *key, zc_gguf_vtype *elem_type, uint64_t *n, const void **data);
const char *zc_gguf_arr_str(const zc_gguf *g, const char *key, uint64_t idx, size_t *len);

/* Render any metadata value as text for `zipcache info` (arrays abbreviated). */
void zc_gguf_format_value(const zc_gguf *g, int i, char *buf, size_t cap);

/* Tensors. */
int zc_gguf_n_tensors(const zc_gguf *g);
const zc_gguf_tensor *zc_gguf_tensor_at(const zc_gguf *g, int i);
const zc_gguf_tensor *zc_gguf_find_tensor(const zc_gguf *g, const char *name);

/* ---- Writer ------------------------------------------------------------- */
typedef struct zc_gguf_writer zc_gguf_writer;

zc_gguf_writer *zc_gguf_writer_new(void);
void zc_gguf_writer_free(zc_gguf_writer *w);
int zc_gguf_set_u32(zc_gguf_writer *w, const char *key, uint32_t v);
int zc_gguf_set_i32(zc_gguf_writer *w, const char *key, int32_t v);
int zc_gguf_set_f32(zc_gguf_writer *w, const char *key, float v);
int zc_gguf_set_bool(zc_gguf_writer *w, const char *key, bool v);
int zc_gguf_set_str(zc_gguf_writer *w, const char *key, const char *v);
/* Setting an existing key replaces its value in place. */
/* Numeric array (elements copied) and string array (strings copied). */
int zc_gguf_set_arr(zc_gguf_writer *w, const char *key, zc_gguf_vtype elem_type, const void *data, uint64_t n);
int zc_gguf_set_arr_str(zc_gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Copy every metadata key of an open file (used by convert); values are
 * copied byte for byte, so any type, nested arrays included, survives. */
int zc_gguf_copy_kv(zc_gguf_writer *w, const zc_gguf *src);
/* Add a tensor; `data` (nbytes of type `type`) must stay valid until write. */
int zc_gguf_add_tensor(zc_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                       const void *data, size_t nbytes);
/* Producer of tensor data at write time, so a model larger than memory can be
 * streamed: fill rows [row0, row0+n_rows) (a row is ne[0] elements of the
 * tensor's type, rows are ne[1..3] flattened) into dst. Called in row order
 * with chunks of about 4 MiB. Return ZC_OK or an error (aborts the write). */
typedef int (*zc_gguf_fill_fn)(void *ctx, const char *name, int64_t row0, int64_t n_rows, void *dst);
int zc_gguf_add_tensor_fill(zc_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                            zc_gguf_fill_fn fill, void *ctx);
/* llama.cpp's general.file_type for a model whose weights are all `type`
 * (0 f32, 1 f16, 2 q4_0, 3 q4_1, 7 q8_0, 8 q5_0, 9 q5_1, 32 bf16), -1 for
 * types we do not write. */
int zc_gguf_file_type_of(int type);
/* Set general.file_type, and general.quantization_version = 2 (the ggml
 * block format revision) for quantized types. ZC_ERR_ARG if -1 above. */
int zc_gguf_set_file_type(zc_gguf_writer *w, int type);
/* Write GGUF v3, 32-byte alignment unless general.alignment was set (u32,
 * power of two). Metadata in insertion order, tensors in insertion order. A
 * partial file is removed on failure. */
int zc_gguf_write(zc_gguf_writer *w, const char *path);

#endif
