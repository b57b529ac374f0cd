/* safetensors reader: single files and sharded Hugging Face checkpoints
 * (model.safetensors.index.json), memory-mapped, F32/F16/BF16 only.
 *
 * File layout: u64 header length N (little-endian), N bytes of JSON
 *   { "name": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [begin, end]},
 *     ..., "__metadata__": {string: string} }
 * then the data section; offsets are relative to its start (byte 8 + N).
 *
 * Everything is validated at open: header length inside the file, JSON well
 * formed, dtype supported, shape non-negative without overflow, begin <= end
 * inside the data section, end - begin == product(shape) * dtype size, no two
 * tensors overlapping, no duplicate names (also across shards), data aligned
 * to its element size (writers pad the header to a multiple of 8; files that
 * do not are refused as unsupported rather than read misaligned). Errors are
 * ZC_ERR_FORMAT (ZC_ERR_UNSUPPORTED for a valid but unsupported dtype) with
 * "<path>: <problem> (<where>)".
 */
#ifndef ZC_MODEL_SAFETENSORS_H
#define ZC_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ZC_ST_MAX_DIMS 8

typedef struct {
    const char *name;                 /* HF name, e.g. "model.layers.0.self_attn.q_proj.weight" */
    int type;                         /* ZC_TYPE_F32, ZC_TYPE_F16 or ZC_TYPE_BF16 (quant/ggml_blocks.h) */
    int n_dims;                       /* 0..ZC_ST_MAX_DIMS (0 = scalar) */
    int64_t shape[ZC_ST_MAX_DIMS];    /* row-major as PyTorch: shape[n_dims-1] is contiguous */
    int64_t n_elems;                  /* product of shape */
    const void *data;                 /* into the mapping, aligned to the element size */
    size_t nbytes;
    size_t offset;                    /* data_offsets begin: from the start of the file's data section */
    const char *file;                 /* path of the file holding it */
} zc_st_tensor;

/* One or more safetensors files seen as one set of uniquely named tensors. */
typedef struct zc_safetensors zc_safetensors;

/* Open one .safetensors file. */
int zc_st_open_file(const char *path, zc_safetensors **out);
/* Open the weights of a Hugging Face model directory: model.safetensors.index.json
 * (weight_map -> shard files in the same directory; every mapped tensor must
 * be in the shard named for it) if present, else model.safetensors. */
int zc_st_open_dir(const char *dir, zc_safetensors **out);
void zc_st_close(zc_safetensors *st);

int zc_st_n_tensors(const zc_safetensors *st);
/* Tensors in name order. */
const zc_st_tensor *zc_st_tensor_at(const zc_safetensors *st, int i);
/* By HF name (binary search); NULL if absent. */
const zc_st_tensor *zc_st_find(const zc_safetensors *st, const char *name);

#endif
