/* Attention computed directly on packed low-bit K/V codes (ZipCache segments).
 *
 * A segment is a run of tokens compressed together, per KV head split into
 * two sets (salient at hi bits, regular at lo bits). Each set is a
 * uniform-width packed array with its own parameters, so the inner loops
 * never branch per token:
 *   keys    channelwise: k[t][c] = code[t][c] * step[c] + min[c], (step, min)
 *           per channel per group of key_group tokens of the set
 *   values  CSTQuant:   v[t][c] = (code[t][c] * step[t] + min[t]) * norm[c],
 *           (step, min) per token, norm = sqrt(max |v|) per channel over the
 *           whole segment (shared by both sets)
 * The dequantized cache is never built. Scores use the factorization
 *   q.k_t = sum_c (q_c step_c) code_tc + sum_c q_c min_c
 * (the query folded with the step once per key group; the min term is one dot
 * product per group), and outputs
 *   out_c = norm_c * (sum_t (p_t step_t) code_tc + sum_t p_t min_t)
 * (per-token weights, the normalizer applied once per tile to the output).
 *
 * Codes are stored in one of two layouts, chosen per set when it is written:
 *   rows   (tiled = 0) dense little-endian bit streams (quant/pack.h),
 *          token-major: row t holds the head_dim codes of token t in
 *          head_dim*bits/8 bytes (head_dim a multiple of 8). Any width 1..8.
 *          Attention unpacks each tile's codes to floats (the fp32 path).
 *   tiled  (tiled = 1) quant/tiled.h's layouts, keys ZC_TILED_K and values
 *          ZC_TILED_V: 2- or 4-bit codes, head_dim % 32 == 0, tokens padded
 *          to a multiple of 8. Attention runs in integers on the stored words
 *          (the integer path):
 *   scores  the folded query of each key group is quantized to int8
 *           (symmetric, scale max|q_c step_c|/127) and the code dot products
 *           are u8 x s8 integer sums (VNNI dpbusd, or AVX2 maddubs + madd),
 *           exact; each folded query element moves by at most half a step,
 *           so a score moves by at most (max_c |q_c step_c| / 254) sum_c code_tc
 *   values  per tile and row the weights p_t step_t are rounded to bytes
 *           against the tile's largest and summed against the value codes in
 *           integers (4 tokens per dpbusd): each weight moves by at most wmax/510
 * tests/test_attn_packed.c bounds both on random data (outputs within ~6e-3
 * relative of the fp32 reference; the value update within its bound).
 */
#ifndef ZC_ATTN_PACKED_H
#define ZC_ATTN_PACKED_H

#include <stddef.h>
#include <stdint.h>

#include "attn/attn.h"
#include "quant/tiled.h"
#include "util/fp16.h"
#include "util/threads.h"

typedef struct {
    int n;                    /* tokens in the set (0 = empty) */
    int k_bits, v_bits;       /* code widths, 1..8 */
    int key_group;            /* tokens per key-parameter group (>= 1; the last group may be shorter) */
    int tiled;                /* code layout: 0 rows, 1 tiled (see above) */
    const uint8_t *k_codes;   /* rows: [n][head_dim*k_bits/8]; tiled: [zc_tiled_bytes(n, head_dim, k_bits)] */
    const zc_fp16 *k_step;    /* [ceil(n/key_group)][head_dim] */
    const zc_fp16 *k_min;     /* [ceil(n/key_group)][head_dim] */
    const uint8_t *v_codes;   /* rows: [n][head_dim*v_bits/8]; tiled: [zc_tiled_bytes(n, head_dim, v_bits)] */
    const zc_fp16 *v_step;    /* [n] */
    const zc_fp16 *v_min;     /* [n] */
} zc_packed_set;

/* Bytes of n tokens' codes of `bits` bits in either layout (tiled: n padded to 8). */
static inline size_t zc_packed_code_bytes(int n, int hd, int bits, int tiled) {
    return tiled ? zc_tiled_bytes(n, hd, bits) : (size_t)n * hd * (size_t)bits / 8;
}

typedef struct {
    zc_packed_set set[2];     /* [0] salient (hi bits), [1] regular (lo bits) */
    const zc_fp16 *v_norm;    /* [head_dim] channel normalizer of the segment */
} zc_packed_seg;

/* Attention of n_q queries over every token of n_segs segments (all of them
 * precede the queries: no causal mask). segs is [n_segs][n_kv_heads]: the
 * segment s of KV head g is segs[s * n_kv_heads + g]; both sets of a segment
 * together hold the same token count in every head.
 *   q    [n_q][n_heads*head_dim]
 *   out  [n_q][n_heads*head_dim]   softmax-normalized over the packed tokens
 *   lse  [n_q][n_heads]            log-sum-exp of the scaled scores (required:
 *                                  callers merge with other parts by it)
 * With no tokens at all, out = 0 and lse = -inf. Work is split over (KV head,
 * chunk of tokens, block of queries) with a log-sum-exp merge.
 * Returns ZC_ERR_ARG for bad dims or a tiled set whose widths or head_dim the
 * tiled layouts do not allow, ZC_ERR_UNSUPPORTED for head_dim % 8 != 0,
 * ZC_ERR_NOMEM if the scratch cannot grow. */
int zc_attn_packed(zc_pool *pool, const zc_attn_dims *d, const float *q, int n_q, const zc_packed_seg *segs,
                   int n_segs, float *out, float *lse, zc_attn_scratch *scratch);

/* Reference for tests: dequantize every token to fp32 and run
 * zc_attn_reference (double accumulation). Returns ZC_ERR_NOMEM on failure. */
int zc_attn_packed_reference(const zc_attn_dims *d, const float *q, int n_q, const zc_packed_seg *segs, int n_segs,
                             float *out, float *lse);

/* Dequantize one set into k, v [set->n][head_dim] (fp32; v includes the
 * channel normalizer norm [head_dim]). */
void zc_packed_set_dequant(const zc_packed_set *set, const zc_fp16 *norm, int head_dim, float *k, float *v);
/* The same for tokens t0..t0+nt-1 of the set (within 0..set->n) into k, v [nt][head_dim]. */
void zc_packed_set_dequant_rows(const zc_packed_set *set, const zc_fp16 *norm, int head_dim, int t0, int nt, float *k,
                                float *v);

#endif
