/* ggml/GGUF tensor types: block layouts, row sizes, reference (scalar)
 * dequantization and quantization, bit-exact with ggml.
 *
 * Block layouts (little-endian, fp16 = IEEE half):
 *   Q8_0  32 elems, 34 B: d(fp16), qs[32] int8;            x = d*q
 *   Q4_0  32 elems, 18 B: d(fp16), qs[16] (lo nibble = elems 0..15, hi = 16..31); x = d*(q-8)
 *   Q4_1  32 elems, 20 B: d, m(fp16), qs[16];               x = d*q + m
 *   Q5_0  32 elems, 22 B: d, qh[4] (bit 5 of each), qs[16]; x = d*(q-16)
 *   Q5_1  32 elems, 24 B: d, m, qh[4], qs[16];              x = d*q + m
 *   Q4_K 256 elems, 144 B: d, dmin(fp16), scales[12] (8 x 6-bit scale+min), qs[128]
 *   Q5_K 256 elems, 176 B: d, dmin, scales[12], qh[32], qs[128]
 *   Q6_K 256 elems, 210 B: ql[128], qh[64], scales[16] int8, d(fp16)
 *   F32, F16, BF16: 1 elem per block.
 *
 * The structs below mirror those layouts byte for byte (every member has
 * alignment 1 or 2 and the sizes are checked with static asserts), so kernels
 * can read blocks straight out of an mmapped file.
 */
#ifndef ZC_QUANT_GGML_BLOCKS_H
#define ZC_QUANT_GGML_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum {
    ZC_TYPE_F32 = 0, ZC_TYPE_F16 = 1, ZC_TYPE_Q4_0 = 2, ZC_TYPE_Q4_1 = 3,
    ZC_TYPE_Q5_0 = 6, ZC_TYPE_Q5_1 = 7, ZC_TYPE_Q8_0 = 8, ZC_TYPE_Q8_1 = 9,
    ZC_TYPE_Q2_K = 10, ZC_TYPE_Q3_K = 11, ZC_TYPE_Q4_K = 12, ZC_TYPE_Q5_K = 13,
    ZC_TYPE_Q6_K = 14, ZC_TYPE_Q8_K = 15, ZC_TYPE_BF16 = 30,
} zc_type;

#define ZC_QK 32    /* elements per block of the _0/_1 formats */
#define ZC_QK_K 256 /* elements per super-block of the K formats */

typedef struct { uint16_t d; int8_t qs[32]; } zc_block_q8_0;
typedef struct { uint16_t d; uint8_t qs[16]; } zc_block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } zc_block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } zc_block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } zc_block_q5_1;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } zc_block_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } zc_block_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } zc_block_q6_K;

typedef struct {
    const char *name;  /* "q4_K", as ggml prints it */
    int block_elems;   /* elements per block */
    int block_bytes;   /* bytes per block */
    bool can_load;     /* this engine computes with it */
} zc_type_info;

/* Info for a ggml type id, or NULL if the id is unknown to us (any id, even
 * one from a hostile file, is safe to pass). */
const zc_type_info *zc_type_get(int type);
/* Type id for a name such as "q8_0" (case-insensitive), or -1. */
int zc_type_from_name(const char *name);

/* Bytes of n elements; ZC_ERR_FORMAT if n is not a multiple of the block
 * size, ZC_ERR_LIMIT on overflow, ZC_ERR_UNSUPPORTED for unknown types. */
int zc_type_row_bytes(int type, int64_t n, size_t *out);

/* 6-bit scale and min number j (0..7) of a Q4_K/Q5_K super-block, unpacked
 * from its 12-byte scales field the way ggml's get_scale_min_k4 does. */
static inline void zc_k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* All eight scales and mins of a Q4_K/Q5_K super-block at once (the same
 * values as zc_k4_scale_min for j = 0..7), working on 32-bit words: bytes
 * 0-3 hold scales 0-3 in their low 6 bits and the top 2 bits of scales 4-7,
 * bytes 4-7 likewise for the mins, bytes 8-11 the low 4 bits of scales 4-7
 * (low nibble) and mins 4-7 (high nibble). */
static inline void zc_k4_scales_mins(const uint8_t q[12], uint8_t sc[8], uint8_t m[8]) {
    uint32_t w0, w1, w2, out[4];
    memcpy(&w0, q, 4);
    memcpy(&w1, q + 4, 4);
    memcpy(&w2, q + 8, 4);
    out[0] = w0 & 0x3f3f3f3fu;
    out[1] = (w2 & 0x0f0f0f0fu) | ((w0 >> 6) & 0x03030303u) << 4;
    out[2] = w1 & 0x3f3f3f3fu;
    out[3] = ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 6) & 0x03030303u) << 4;
    memcpy(sc, out, 8);
    memcpy(m, out + 2, 8);
}

/* Scalar reference dequantization of n elements (n a multiple of the block)
 * of a type with can_load; other types leave dst untouched. */
void zc_dequantize_row(int type, const void *src, float *dst, int64_t n);
/* Reference quantization, bit-exact with ggml's quantize_row_*_ref, for
 * F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (n a multiple of the block).
 * ZC_ERR_UNSUPPORTED otherwise. Q8_0 and Q4_0 run the AVX2 versions below
 * when zc_cpu_has_avx2() (same bytes). */
int zc_quantize_row(int type, const float *src, void *dst, int64_t n);

/* AVX2 Q8_0 / Q4_0 quantization of nb blocks (ggml_blocks_avx2.c), byte-
 * identical to the scalar references; zc_quantize_row uses them when
 * zc_cpu_has_avx2(). Call only after that check. */
void zc_quant_q8_0_avx2(const float *x, zc_block_q8_0 *b, int64_t nb);
void zc_quant_q4_0_avx2(const float *x, zc_block_q4_0 *b, int64_t nb);

#endif
