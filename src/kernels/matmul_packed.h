/* Internal to src/kernels: weights repacked for the AVX-512 VNNI GEMM.
 *
 * Why. The row-major kernels (matmul_q32_x86.h) multiply one weight row with
 * a few activation rows and must scale every 32-element block product by
 * its own d_w * d_x: per block and activation row, a sign fix, a dot, a
 * conversion and a scalar broadcast for 64 flops. Interleaving 16 rows puts
 * the 16 rows' block products in the 16 int32 lanes of one zmm register, so
 * that one VPDPBUSD advances 16 rows by 4 elements, and the block scaling is
 * one vector multiply for 16 rows (as llama.cpp's CPU repacking does).
 *
 * Layout (`zc_mat.packed`, built by zc_mat_repack at model load): the first
 * rows - rows % 16 rows, in groups of 16; group g, block i (32 elements) at
 * packed + (g * nb + i) * ZC_PACK_BYTES(type), nb = cols / 32:
 *   uint16_t d[16]                  fp16 scales of the group's 16 rows
 *   uint8_t  q[K][16][4]            q[k][r][j]: row r's code byte 4k + j
 * q8_0: K = 8, each byte the code + 128 (unsigned, as VPDPBUSD's first
 * operand must be); q4_0: K = 4, the format's own bytes (low nibble element
 * 4k + j, high nibble element 16 + 4k + j), i.e. unsigned codes 0..15.
 * So a group block has the bytes of the 16 original blocks: 544 (q8_0) and
 * 288 (q4_0).
 * q4_K (super-blocks of 256 = 8 sub-blocks of 32, w = d sc_g q - dmin mn_g):
 *   uint16_t d[16], dmin[16]        fp16
 *   uint8_t  sc[8][16]              6-bit sub-block scales, unpacked
 *   int16_t  mn[4][16][2]           mins, sub-blocks 2p and 2p+1 as a pair
 *   uint8_t  q[4][8][16][4]         q[p][k][r][j]: row r's byte 32p + 4k + j:
 *                                   low nibble sub-block 2p, high 2p+1
 * (2496 bytes for 16 x 144 original).
 * q6_K (16 sub-blocks of 16, w = d sc_g (q - 32), q in 6 bits):
 *   uint16_t d[16]                  fp16
 *   int8_t   sc[8][16][2]           the scales of sub-blocks 2p and 2p+1 as a pair
 *   uint8_t  ql[2][16][16][4]       ql[h][k][r][j]: row r's ql byte 64h + 4k + j
 *   uint8_t  qh[2][8][16][4]        qh[h][k][r][j]: row r's qh byte 32h + 4k + j
 * (3360 bytes, the 16 originals' own).
 * f16, bf16: a group block is one column: the 16 rows' element c (32 bytes).
 * The rows % 16 rows after the last
 * group stay row-major in zc_mat.data and go through the row-major kernels.
 *
 * Arithmetic. With unsigned codes u = q + bias (bias 128 for q8_0, 8 for
 * q4_0), Σ q x = Σ u x - bias Σ x, where Σ x is the activation block's code
 * sum, computed once per block. The block's integer sum is then converted
 * and scaled by (d_w * d_x) and added to the row's sum in block order, which
 * is exactly the scalar kernel's arithmetic (matmul.c, dot_blocks32): the
 * packed GEMM gives the scalar kernel's bits. q4_K likewise (dot_blocksK):
 * per super-block Σ_g sc_g Σ q x in int32, the mins' Σ_g mn_g Σ_g x by
 * VPDPWSSD on the pairs (mn_2p, mn_2p+1) and the activation's sub-block sums
 * (its `sums`: 4 int16 pairs per super-block), then d d_x sumi - dmin d_x summ.
 * q6_K: unsigned codes q = (q - 32) + 32, so Σ (q - 32) x = Σ q x - 32 Σ x per
 * sub-block; sumi = Σ_g sc_g Σ q x - 32 Σ_g sc_g Σ_g x, the second sum by
 * VPDPWSSD on the scale pairs and the activation block's own 16-sums, two at a time.
 */
#ifndef ZC_KERNELS_MATMUL_PACKED_H
#define ZC_KERNELS_MATMUL_PACKED_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/matmul_kernels.h"

#define ZC_PACK_ROWS 16 /* rows per group */
#define ZC_PACK_NX 8    /* activation rows per kernel call */
#define ZC_PACK_Q4K_BYTES 2496 /* one q4_K group block */
#define ZC_PACK_Q6K_BYTES 3360 /* one q6_K group block */

/* Bytes of one group block (16 rows x one block of the type), 0 for a type that is not packed. */
int zc_pack_block_bytes(int type);
/* int32 `sums` per activation block: 1 (the code sum: q8_0, q4_0), 4 (the pairs of 32-sums: q4_K) or 0
 * (q6_K reads the block's own 16-sums; f16/bf16 need none). */
int zc_pack_sums_per_block(int type);

/* How many groups one kernel call takes: 2 for q8_0 and q4_0 (each
 * activation broadcast then feeds two groups), 1 for the others. */
int zc_pack_groups_per_call(int type);

/* out[gi][k][r] = Σ_c W[r][c] X_k[c] for the 16 rows r of group gi < ng
 * (ng <= zc_pack_groups_per_call(type); group gi's first block at group +
 * gi * group_bytes, nb blocks long) and activation row k < nx
 * (nx <= ZC_PACK_NX): act[k] is row k's nb blocks (zc_act_q8, zc_act_q8k
 * for the K formats, fp32 for f16/bf16) and sums[k] their sums
 * (zc_pack_sums_per_block). A row's result does not depend on ng, nx or
 * its neighbours. */
typedef void (*zc_gemm_fn)(int type, int64_t nb, const uint8_t *group, size_t group_bytes, int ng,
                           const void *const act[], const int32_t *const sums[], int nx,
                           float out[][ZC_PACK_NX][ZC_PACK_ROWS]);

/* The AVX-512 VNNI kernel, or NULL where the CPU (or the build) lacks it. */
zc_gemm_fn zc_gemm_avx512vnni(void);

#endif
