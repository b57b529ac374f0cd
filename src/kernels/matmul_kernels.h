/* Internal to src/kernels: activation formats and the per-type dot kernels
 * behind zc_matmul.
 *
 * Quantized weights are multiplied with activations quantized once per call
 * to int8, so every block product is an exact integer sum and only the
 * per-block scaling is floating point (as ggml's ggml_vec_dot_*_q8_*):
 *   - the 32-element formats (q8_0, q4_0, q4_1, q5_0, q5_1) pair with
 *     zc_act_q8 blocks of 32 activations;
 *   - the K formats (q4_K, q5_K, q6_K) pair with zc_act_q8k super-blocks of
 *     256, whose per-16 sums turn the formats' offsets (mins, the -32 of
 *     q6_K) into one multiply-add per sub-block instead of per element;
 *   - f32, f16 and bf16 weights take the fp32 activations directly.
 * Activations are rounded to nearest-even (x * 127/amax) by both the scalar
 * and the AVX2 quantizer, which therefore produce identical bytes.
 *
 * A dot kernel multiplies one weight row with nx <= ZC_NX activation rows at
 * once, so each weight block is decoded once for nx tokens during prefill.
 * A row's result does not depend on nx or on which thread runs it: each
 * activation row is accumulated in the same order whatever its neighbours.
 */
#ifndef ZC_KERNELS_MATMUL_KERNELS_H
#define ZC_KERNELS_MATMUL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define ZC_NX 4 /* activation rows per kernel call */

typedef struct {
    float d;       /* scale: x ≈ d * qs */
    float s;       /* d * Σ qs ≈ Σ x, for the formats with a min (q4_1, q5_1) */
    int8_t qs[32]; /* codes in [-127, 127] */
} zc_act_q8;

typedef struct {
    float d;           /* scale: x ≈ d * qs */
    int16_t bsums[16]; /* Σ qs over each 16 consecutive codes */
    int8_t qs[256];    /* codes in [-127, 127] */
} zc_act_q8k;

typedef enum { ZC_ACT_F32, ZC_ACT_Q8, ZC_ACT_Q8K } zc_act_kind;

/* out[k] = Σ_c W[c] · X_k[c] for k < nx, where X_k starts x_stride bytes after
 * X_{k-1}. w is one weight row of n elements; x points at activation row 0 in
 * the kind of activations the weight type takes. */
typedef void (*zc_dot_fn)(int64_t n, const void *w, const void *x, size_t x_stride, int nx, float *out);

/* Quantize n activations (n a multiple of 32, resp. 256). */
void zc_quantize_act_q8(const float *x, zc_act_q8 *y, int64_t n);
void zc_quantize_act_q8k(const float *x, zc_act_q8k *y, int64_t n);
void zc_quantize_act_q8_avx2(const float *x, zc_act_q8 *y, int64_t n);
void zc_quantize_act_q8k_avx2(const float *x, zc_act_q8k *y, int64_t n);

/* The dot kernel for a weight type (NULL if none): scalar, AVX2, or AVX-512
 * VNNI (the 32-element formats only; the others use AVX2 there). */
zc_dot_fn zc_dot_scalar(int type);
zc_dot_fn zc_dot_avx2(int type);
zc_dot_fn zc_dot_avx512vnni(int type);

/* The types every complete backend (scalar, AVX2) has a kernel for, as
 * X(type, kernel): such a backend defines static kernels of these names and
 * dispatches with switch (type) { ZC_DOT_KERNELS(ZC_DOT_CASE) default: ... }. */
#define ZC_DOT_KERNELS(X)                                                                                     \
    X(ZC_TYPE_F32, dot_f32) X(ZC_TYPE_F16, dot_f16) X(ZC_TYPE_BF16, dot_bf16) X(ZC_TYPE_Q8_0, dot_q8_0)       \
    X(ZC_TYPE_Q4_0, dot_q4_0) X(ZC_TYPE_Q4_1, dot_q4_1) X(ZC_TYPE_Q5_0, dot_q5_0) X(ZC_TYPE_Q5_1, dot_q5_1)   \
    X(ZC_TYPE_Q4_K, dot_q4_K) X(ZC_TYPE_Q5_K, dot_q5_K) X(ZC_TYPE_Q6_K, dot_q6_K)
#define ZC_DOT_CASE(type, kernel) case type: return kernel;

#endif
