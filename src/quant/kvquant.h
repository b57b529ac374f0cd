/* KV quantizers: the ZipCache formats (channelwise keys, CSTQuant values)
 * and the baselines (tokenwise, KIVI-style groupwise, ggml q8_0 / q4_0), on
 * plain arrays.
 *
 * A block is T tokens x C channels of fp32, row-major: x[t*ldx + c]. C is
 * whatever the caller groups: one KV head's head_dim (x = k + h*head_dim,
 * ldx = n_kv_heads*head_dim) or a whole layer's n_kv_heads*head_dim.
 *
 * ---------------------------------------------------------------------------
 * Arithmetic (all fp32, every operation rounded to nearest-even, no FMA; the
 * AVX2 paths perform the same operations and give identical bits):
 *
 *   parameters from a range [lo, hi] of the (possibly normalized) values:
 *       maxq  = 2^bits - 1
 *       min16 = lo rounded DOWN to fp16                  (stored)
 *       step16 = ((hi - min16) / maxq) rounded UP to fp16 (stored)
 *     Directed rounding makes the stored grid min16 + [0, maxq]*step16 cover
 *     [lo, hi], so the only error is the rounding to the grid (below). The
 *     reference code stores fp16 (min, step) rounded to nearest instead.
 *   code   = clamp(round_half_even((x - min16) / step16), 0, maxq)
 *            or 0 for every element when step16 == 0 (zero range);
 *            NaN input gives code 0, +-inf clamps (only reachable through the
 *            *_encode functions with given parameters).
 *   decode = code * step16 + min16
 *            code * step16 is exact in fp32 (8 x 11 significant bits), so
 *            this is one rounding and an FMA gives the same bits.
 *   Bound, parameters fitted to the data: |x - decode| <= step16/2, plus
 *   fp32 rounding (a few ulp of max(|x|, |min16| + maxq*step16)).
 *
 * Rounding is half-to-even (the reference code uses torch.round, which is
 * half-to-even too); tests/py/kvquant_ref.py uses np.rint.
 *
 * Refusals: fitting parameters to data that contains NaN or +-inf, or whose
 * parameters do not fit a finite fp16 (|x| > 65504, or a range above
 * 65504*maxq; for CSTQuant these limits apply to x / n and to n), returns
 * ZC_ERR_ARG and writes nothing meaningful. K/V in fp16-trained models are far
 * inside that range.
 *
 * ---------------------------------------------------------------------------
 * Channelwise (keys; paper Sec. 5.1): per channel c over the block's tokens,
 *   min[c], step[c] fp16 from [min_t x[t][c], max_t x[t][c]];
 *   y[t][c] = code[t][c] * step[c] + min[c].
 *
 * CSTQuant (values; paper Eq. 6): channel normalizer n[c] fp16:
 *   ZC_CST_SQRT_MAX: n[c] = sqrt(max_t |x[t][c]|)  (Eq. 6 and the reference code)
 *   ZC_CST_MAX:      n[c] = max_t |x[t][c]|        (the other reading)
 *   computed in fp32, rounded to nearest fp16; n[c] == 0 (an all-zero channel)
 *   is stored as 1 so no division by zero ever happens.
 *   Then per token t over the C channels of x'[t][c] = x[t][c] / n[c]:
 *   min[t], step[t] fp16 as above;
 *   y[t][c] = (code[t][c] * step[t] + min[t]) * n[c]   (two roundings).
 *
 * Tokenwise: CSTQuant without normalizer (n[c] = 1, not stored).
 *
 * Groupwise (KIVI-style), group size G:
 *   ZC_KVQ_GROUP_CH  (values): per token, per group of G consecutive channels;
 *                    G must be a multiple of 8 (each group's codes start on a
 *                    byte); the last group may be shorter.
 *   ZC_KVQ_GROUP_TOK (keys):   per channel, per group of G consecutive tokens;
 *                    the last group may be shorter.
 *
 * q8_0 / q4_0: each token row is a ggml row (quant/ggml_blocks.h), bit-exact
 *   with ggml; C must be a multiple of 32. bits is 8 / 4 implicitly.
 *
 * ---------------------------------------------------------------------------
 * Codes: each token row's C codes are packed densely (quant/pack.h):
 *   row_bytes = ceil(C*bits/8), code[t][c] at bits [c*bits, (c+1)*bits) of
 *   the row. Rows are ldc bytes apart in the low-level functions.
 *
 * Stored block (zc_kvq_quantize): one contiguous blob, parameters first (so
 * every fp16 is 2-byte aligned), then codes[T][row_bytes]:
 *   CHANNEL:   min[C], step[C],                 codes
 *   CST:       n[C], min[T], step[T],           codes
 *   TOKEN:     min[T], step[T],                 codes
 *   GROUP_CH:  min[T][ng], step[T][ng],         codes    ng = ceil(C/G)
 *   GROUP_TOK: min[ng][C], step[ng][C],         codes    ng = ceil(T/G)
 *   Q8_0/Q4_0: T ggml rows (scales inside the blocks)
 * Stored bits = 8 * zc_kvq_layout.total_bytes, everything included; the
 * compression ratio vs fp16 is 16*T*C / stored_bits.
 */
#ifndef ZC_QUANT_KVQUANT_H
#define ZC_QUANT_KVQUANT_H

#include <stddef.h>
#include <stdint.h>

#include "util/fp16.h"

typedef enum { ZC_CST_SQRT_MAX = 0, ZC_CST_MAX = 1 } zc_cst_norm;

/* ---- Low-level primitives (what the compressed cache calls) --------------
 * rows: NULL for tokens 0..T-1, else T row indices into x (a gathered subset,
 * e.g. the salient tokens), x row = x + rows[t]*ldx.
 * Parameters are fp16 arrays; codes rows are ldc >= ceil(C*bits/8) bytes apart. */

/* Channelwise parameters min[C], step[C] fitted to the T rows. ZC_ERR_ARG on
 * bad sizes, non-finite input or fp16 overflow. */
int zc_chan_params(const float *x, size_t ldx, const int32_t *rows, int T, int C, int bits, zc_fp16 *min,
                   zc_fp16 *step);
/* Codes for T rows against given channel parameters (clamped to [0, maxq];
 * lets a cache reuse a previous block's parameters). */
void zc_chan_encode(const float *x, size_t ldx, const int32_t *rows, int T, int C, int bits, const zc_fp16 *min,
                    const zc_fp16 *step, uint8_t *codes, size_t ldc);
/* y[t][c] = code * step[c] + min[c]; y rows ldy floats apart. */
void zc_chan_decode(const uint8_t *codes, size_t ldc, int T, int C, int bits, const zc_fp16 *min,
                    const zc_fp16 *step, float *y, size_t ldy);

/* CSTQuant channel normalizers n[C] over the T rows (see above). */
int zc_cst_norms(const float *x, size_t ldx, const int32_t *rows, int T, int C, zc_cst_norm kind, zc_fp16 *n);
/* Tokenwise quantization of T rows, each divided by n[C] first when n is not
 * NULL (CSTQuant) : fits min[t], step[t] and writes the codes. */
int zc_token_quant(const float *x, size_t ldx, const int32_t *rows, int T, int C, int bits, const zc_fp16 *n,
                   uint8_t *codes, size_t ldc, zc_fp16 *min, zc_fp16 *step);
/* y[t][c] = (code * step[t] + min[t]) * n[c]  (the last factor only if n). */
void zc_token_decode(const uint8_t *codes, size_t ldc, int T, int C, int bits, const zc_fp16 *n,
                     const zc_fp16 *min, const zc_fp16 *step, float *y, size_t ldy);

/* ---- One interface for every format (benchmarks, reports, baselines) ---- */

typedef enum {
    ZC_KVQ_CHANNEL,
    ZC_KVQ_CST,
    ZC_KVQ_TOKEN,
    ZC_KVQ_GROUP_CH,
    ZC_KVQ_GROUP_TOK,
    ZC_KVQ_Q8_0,
    ZC_KVQ_Q4_0,
    ZC_KVQ_N_FORMATS
} zc_kvq_format;

typedef struct {
    zc_kvq_format format;
    int bits;         /* 1..8 (ignored by q8_0 / q4_0) */
    int group;        /* G for GROUP_CH / GROUP_TOK */
    zc_cst_norm norm; /* CST only */
} zc_kvq;

typedef struct {
    size_t row_bytes;   /* bytes of one token row of codes (ggml: the whole row) */
    size_t param_bytes; /* fp16 parameters, at the start of the blob (ggml: 0) */
    size_t total_bytes; /* param_bytes + T*row_bytes: everything stored */
    uint64_t code_bits; /* bits spent on codes (ggml: T*C*bits) */
    uint64_t param_bits;/* bits spent on parameters (ggml: the per-block scales) */
} zc_kvq_layout;

/* "channel", "cst", "token", "group-ch", "group-tok", "q8_0", "q4_0". */
const char *zc_kvq_format_name(zc_kvq_format f);
/* Validates the spec for a T x C block (ZC_ERR_ARG with a message) and fills *out. */
int zc_kvq_layout_of(const zc_kvq *q, int T, int C, zc_kvq_layout *out);
/* Exact stored bits of a T x C block, parameters included (0 if invalid). */
uint64_t zc_kvq_stored_bits(const zc_kvq *q, int T, int C);
/* Quantize a block into blob[layout.total_bytes]. */
int zc_kvq_quantize(const zc_kvq *q, const float *x, size_t ldx, int T, int C, void *blob);
/* Reconstruct y[t*ldy + c] from a blob written by zc_kvq_quantize. */
int zc_kvq_dequantize(const zc_kvq *q, const void *blob, int T, int C, float *y, size_t ldy);

/* ---- Row kernels (scalar reference and AVX2, same results bit for bit) ----
 * Exposed for the dispatch in kvquant.c and for tests. Parameters are the
 * stored fp16 values (converted inside: F16C in the AVX2 kernels). A packed
 * row segment written or read by one call starts at a byte boundary. */
typedef struct {
    /* Column min / max of T rows (x + rows[t]*ldx, or x + t*ldx when rows is
     * NULL), n columns; with absmax != NULL also max |x| per column. Returns 1
     * if any input is NaN or infinite, else 0. */
    int (*col_stats)(const float *x, size_t ldx, const int32_t *rows, int T, int n, float *mn, float *mx,
                     float *absmax);
    /* out[i] = x[i] / div[i] (the CSTQuant normalization, done once per row
     * when the row fits a stack buffer instead of inside both passes). */
    void (*row_div)(const float *x, const zc_fp16 *div, int n, float *out);
    /* Min / max over x[i] / div[i] (div NULL: x[i]); 1 if any is non-finite. */
    int (*row_stats)(const float *x, const zc_fp16 *div, int n, float *mn, float *mx);
    /* Quantize + pack n elements with per-element parameters (channelwise). */
    void (*enc_chan)(const float *x, int n, int bits, const zc_fp16 *mn, const zc_fp16 *st, uint8_t *dst);
    /* Quantize + pack n elements x[i] / div[i] (div NULL: x[i]) with one (mn, st). */
    void (*enc_tok)(const float *x, const zc_fp16 *div, int n, int bits, zc_fp16 mn, zc_fp16 st, uint8_t *dst);
    /* Unpack + dequantize: y[i] = code[i] * st[i] + mn[i]. */
    void (*dec_chan)(const uint8_t *src, int n, int bits, const zc_fp16 *mn, const zc_fp16 *st, float *y);
    /* Unpack + dequantize: y[i] = (code[i] * st + mn) * mul[i] (mul NULL: no factor). */
    void (*dec_tok)(const uint8_t *src, int n, int bits, zc_fp16 mn, zc_fp16 st, const zc_fp16 *mul, float *y);
} zc_kvq_kernels;

/* The code of one element (the formula above); shared by both kernel sets. */
static inline uint8_t zc_kvq_code(float x, float mn, float st, float maxq) {
    if (st == 0.0f) return 0;
    float q = __builtin_rintf((x - mn) / st); /* default rounding mode: half to even */
    q = q > 0.0f ? q : 0.0f;                  /* NaN -> 0, like _mm256_max_ps(q, 0) */
    q = q < maxq ? q : maxq;
    return (uint8_t)q;
}

extern const zc_kvq_kernels zc_kvq_kernels_scalar;
extern const zc_kvq_kernels zc_kvq_kernels_avx2; /* only after zc_cpu_has_avx2() */
/* The kernels in use now: AVX2 when available and allowed, else scalar. */
const zc_kvq_kernels *zc_kvq_kernels_get(void);

#endif
