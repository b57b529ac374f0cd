/* Kernels of the q8_0 / q4_0 KV cache (internal): scalar versions in
 * kv_blocks.c, AVX2 in kv_blocks_avx2.c (entered only after zc_cpu_has_avx2()).
 *
 * Keys and values are ggml blocks along head_dim, one row of nb = head_dim/32
 * blocks per (token, KV head). The query is quantized to q8_0 per 32-element
 * block (ggml's vec_dot_type for both formats), so K.q is a sum over blocks
 * of d_k * d_q * (integer dot product of the codes): K is never dequantized.
 */
#ifndef ZC_KV_KV_BLOCKS_H
#define ZC_KV_KV_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "attn/attn_impl.h"
#include "quant/ggml_blocks.h"

/* Key tiles are unpacked once for all query rows of a task: codes to int8
 * (q4_0 nibbles minus 8), block scales to fp32, so the score loop is the
 * same for both formats and never converts an fp16 twice. */
typedef struct {
    /* n key rows of `type` at k + j*kstride bytes -> kc [n][nb*32] int8 codes,
     * dk [nb][ZC_ATTN_BK] block scales (dk[b*ZC_ATTN_BK + j]); n <= ZC_ATTN_BK. */
    void (*unpack_keys)(int type, const uint8_t *k, size_t kstride, int n, int nb, int8_t *kc, float *dk);
    /* s[j] = sum over blocks b, in order, of (float)idot(kc_j,b, qx_b) * (dk_b,j * d(qx_b)), j < n.
     * qx [nb] q8_0 blocks. */
    void (*scores)(const zc_block_q8_0 *qx, const int8_t *kc, const float *dk, int n, int nb, float *s);
    /* out [n][nb*32] = the n value rows at v + j*vstride, dequantized (exact, as ggml). */
    void (*dequant)(int type, const uint8_t *v, size_t vstride, int n, int nb, float *out);
    /* Online-softmax update of one row with scores s[0..n) (n >= 1) and the
     * value tile vt [n][hd]: m, l rescaled, acc [hd] += exp(s - m) . vt. */
    void (*update)(float *s, int n, const float *vt, int hd, float *m, float *l, float *acc);
} zc_kvb_kernels;

extern const zc_kvb_kernels zc_kvb_scalar;
extern const zc_kvb_kernels zc_kvb_avx2;

/* The kernel set for this CPU (honours ZIPCACHE_NO_SIMD / zc_cpu_set_simd). */
const zc_kvb_kernels *zc_kvb_kernels_get(void);

struct zc_kv_cache;
/* The stored blocks of `layer` of a q8_0 / q4_0 cache (for tests and
 * inspection): *k, *v point at [n_tokens][n_kv_heads][nb] blocks, one token
 * row_bytes long. ZC_ERR_ARG if c is another policy or layer is out of range. */
int zc_kv_blocks_rows(const struct zc_kv_cache *c, int layer, const uint8_t **k, const uint8_t **v,
                      size_t *row_bytes);

#endif
