/* KV quantizers: parameter fitting, the block-level primitives, the generic
 * per-format interface and the scalar row kernels. Formats, arithmetic and
 * stored layouts are specified in kvquant.h. */
#include "quant/kvquant.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "quant/ggml_blocks.h"
#include "quant/pack.h"
#include "util/cpu.h"
#include "util/error.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* decode is multiply, then add: never an FMA */
#endif

/* Columns per stack buffer when fitting channel statistics (wide enough
 * that a layer's K/V rows are one pass over the block, in row order); longest
 * row normalized into a stack buffer by CSTQuant (longer rows divide twice). */
enum { COLS = 2048, ROWBUF = 4096 };

static const float *row_ptr(const float *x, size_t ldx, const int32_t *rows, int t) {
    return x + (size_t)(rows ? rows[t] : t) * ldx;
}

/* ---- Scalar row kernels ------------------------------------------------ */

static int s_col_stats(const float *x, size_t ldx, const int32_t *rows, int T, int n, float *mn, float *mx,
                       float *absmax) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        mn[i] = INFINITY;
        mx[i] = -INFINITY;
        if (absmax) absmax[i] = 0.0f;
    }
    for (int t = 0; t < T; t++) {
        const float *r = row_ptr(x, ldx, rows, t);
        for (int i = 0; i < n; i++) {
            float v = r[i];
            bad |= !(v - v == 0.0f); /* NaN for NaN and +-inf */
            mn[i] = v < mn[i] ? v : mn[i];
            mx[i] = v > mx[i] ? v : mx[i];
            if (absmax) absmax[i] = fabsf(v) > absmax[i] ? fabsf(v) : absmax[i];
        }
    }
    return bad;
}

static void s_row_div(const float *x, const zc_fp16 *div, int n, float *out) {
    for (int i = 0; i < n; i++) out[i] = x[i] / zc_fp16_to_f32(div[i]);
}

static int s_row_stats(const float *x, const zc_fp16 *div, int n, float *mn, float *mx) {
    int bad = 0;
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        float v = div ? x[i] / zc_fp16_to_f32(div[i]) : x[i];
        bad |= !(v - v == 0.0f);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    *mn = lo;
    *mx = hi;
    return bad;
}

/* Codes go through a small buffer and are packed per chunk; the chunk is a
 * multiple of 8 codes, so every chunk's packed bytes start on a byte. */
enum { KCHUNK = 256 };

static void s_enc_chan(const float *x, int n, int bits, const zc_fp16 *mn, const zc_fp16 *st, uint8_t *dst) {
    const float maxq = (float)((1 << bits) - 1);
    uint8_t codes[KCHUNK];
    for (int i0 = 0; i0 < n; i0 += KCHUNK) {
        int m = n - i0 < KCHUNK ? n - i0 : KCHUNK;
        for (int i = 0; i < m; i++)
            codes[i] = zc_kvq_code(x[i0 + i], zc_fp16_to_f32(mn[i0 + i]), zc_fp16_to_f32(st[i0 + i]), maxq);
        zc_pack_scalar(codes, (size_t)m, bits, dst + (size_t)i0 * bits / 8);
    }
}

static void s_enc_tok(const float *x, const zc_fp16 *div, int n, int bits, zc_fp16 mn, zc_fp16 st, uint8_t *dst) {
    const float maxq = (float)((1 << bits) - 1), m16 = zc_fp16_to_f32(mn), s16 = zc_fp16_to_f32(st);
    uint8_t codes[KCHUNK];
    for (int i0 = 0; i0 < n; i0 += KCHUNK) {
        int m = n - i0 < KCHUNK ? n - i0 : KCHUNK;
        for (int i = 0; i < m; i++) {
            float v = div ? x[i0 + i] / zc_fp16_to_f32(div[i0 + i]) : x[i0 + i];
            codes[i] = zc_kvq_code(v, m16, s16, maxq);
        }
        zc_pack_scalar(codes, (size_t)m, bits, dst + (size_t)i0 * bits / 8);
    }
}

static void s_dec_chan(const uint8_t *src, int n, int bits, const zc_fp16 *mn, const zc_fp16 *st, float *y) {
    uint8_t codes[KCHUNK];
    for (int i0 = 0; i0 < n; i0 += KCHUNK) {
        int m = n - i0 < KCHUNK ? n - i0 : KCHUNK;
        zc_unpack_scalar(src + (size_t)i0 * bits / 8, (size_t)m, bits, codes);
        for (int i = 0; i < m; i++) {
            float p = (float)codes[i] * zc_fp16_to_f32(st[i0 + i]);
            y[i0 + i] = p + zc_fp16_to_f32(mn[i0 + i]);
        }
    }
}

static void s_dec_tok(const uint8_t *src, int n, int bits, zc_fp16 mn, zc_fp16 st, const zc_fp16 *mul, float *y) {
    const float m16 = zc_fp16_to_f32(mn), s16 = zc_fp16_to_f32(st);
    uint8_t codes[KCHUNK];
    for (int i0 = 0; i0 < n; i0 += KCHUNK) {
        int m = n - i0 < KCHUNK ? n - i0 : KCHUNK;
        zc_unpack_scalar(src + (size_t)i0 * bits / 8, (size_t)m, bits, codes);
        for (int i = 0; i < m; i++) {
            float p = (float)codes[i] * s16;
            p = p + m16;
            y[i0 + i] = mul ? p * zc_fp16_to_f32(mul[i0 + i]) : p;
        }
    }
}

const zc_kvq_kernels zc_kvq_kernels_scalar = {s_col_stats, s_row_div,  s_row_stats, s_enc_chan,
                                              s_enc_tok,   s_dec_chan, s_dec_tok};

const zc_kvq_kernels *zc_kvq_kernels_get(void) {
    return zc_cpu_has_avx2() ? &zc_kvq_kernels_avx2 : &zc_kvq_kernels_scalar;
}

/* ---- Parameters ---------------------------------------------------------- */

static bool fp16_finite(zc_fp16 h) { return (h & 0x7c00) != 0x7c00; }

/* Largest fp16 <= v (v finite or not; overflow gives -inf). */
static zc_fp16 fp16_down(float v) {
    zc_fp16 h = zc_f32_to_fp16(v);
    if (zc_fp16_to_f32(h) > v) h = (h & 0x8000) ? (zc_fp16)(h + 1) : h == 0 ? (zc_fp16)0x8001 : (zc_fp16)(h - 1);
    return h;
}

/* Smallest fp16 >= v. */
static zc_fp16 fp16_up(float v) { return (zc_fp16)(fp16_down(-v) ^ 0x8000); }

/* (min16, step16) for the range [lo, hi] as specified in kvquant.h. */
static int fit_params(float lo, float hi, int bits, zc_fp16 *min16, zc_fp16 *step16) {
    lo += 0.0f; /* -0 -> +0: the kernels may see the zeros in any order */
    hi += 0.0f;
    zc_fp16 m = fp16_down(lo);
    if (!fp16_finite(m)) return zc_error(ZC_ERR_ARG, "kvquant: value %g outside the fp16 range", (double)lo);
    float s = (hi - zc_fp16_to_f32(m)) / (float)((1 << bits) - 1);
    zc_fp16 st = fp16_up(s);
    if (!fp16_finite(st))
        return zc_error(ZC_ERR_ARG, "kvquant: range [%g, %g] too wide for an fp16 step", (double)lo, (double)hi);
    *min16 = m;
    *step16 = st;
    return ZC_OK;
}

static int check_block(int T, int C, int bits, size_t ldx) {
    if (T < 1 || C < 1) return zc_error(ZC_ERR_ARG, "kvquant: empty block %d x %d", T, C);
    if (bits < 1 || bits > 8) return zc_error(ZC_ERR_ARG, "kvquant: bit width %d outside 1..8", bits);
    if (ldx < (size_t)C) return zc_error(ZC_ERR_ARG, "kvquant: row stride %zu < %d channels", ldx, C);
    return ZC_OK;
}

static int non_finite(void) { return zc_error(ZC_ERR_ARG, "kvquant: NaN or infinite input"); }

/* ---- Block primitives ---------------------------------------------------- */

int zc_chan_params(const float *x, size_t ldx, const int32_t *rows, int T, int C, int bits, zc_fp16 *min,
                   zc_fp16 *step) {
    int rc = check_block(T, C, bits, ldx);
    if (rc) return rc;
    const zc_kvq_kernels *k = zc_kvq_kernels_get();
    float mn[COLS], mx[COLS]; /* [COLS] statistics of one column slice */
    for (int c0 = 0; c0 < C; c0 += COLS) {
        int n = C - c0 < COLS ? C - c0 : COLS;
        if (k->col_stats(x + c0, ldx, rows, T, n, mn, mx, NULL)) return non_finite();
        for (int i = 0; i < n; i++)
            if ((rc = fit_params(mn[i], mx[i], bits, &min[c0 + i], &step[c0 + i]))) return rc;
    }
    return ZC_OK;
}

void zc_chan_encode(const float *x, size_t ldx, const int32_t *rows, int T, int C, int bits, const zc_fp16 *min,
                    const zc_fp16 *step, uint8_t *codes, size_t ldc) {
    const zc_kvq_kernels *k = zc_kvq_kernels_get();
    for (int t = 0; t < T; t++) k->enc_chan(row_ptr(x, ldx, rows, t), C, bits, min, step, codes + (size_t)t * ldc);
}

void zc_chan_decode(const uint8_t *codes, size_t ldc, int T, int C, int bits, const zc_fp16 *min,
                    const zc_fp16 *step, float *y, size_t ldy) {
    const zc_kvq_kernels *k = zc_kvq_kernels_get();
    for (int t = 0; t < T; t++) k->dec_chan(codes + (size_t)t * ldc, C, bits, min, step, y + (size_t)t * ldy);
}

/* n[c] = sqrt(max|x|) (Eq. 6 and the reference code) or max|x|: the square
 * root halves the log-spread of the channel ranges instead of flattening it,
 * so outlier channels keep a proportionate share of each token's range.
 * Measured, relative MSE of values at 2 / 3 / 4 bits, rows of all KV heads:
 *   tinystories656K real V (eval recon, 4 x 512 tokens): sqrt 0.214 / 0.0390 /
 *     0.0084, max 0.232 / 0.0423 / 0.0092 (tokenwise 0.219 / 0.0399 / 0.0087);
 *   stories260K real V: sqrt 0.159 / 0.0290 / 0.0063, max 0.174 / 0.0315 / 0.0068;
 *   synthetic outlier channels (tests/py/test_kvquant_ref.py): sqrt 0.101 /
 *     0.0150 / 0.0037, max 0.202 / 0.0386 / 0.0085.
 * So sqrt(max|x|) reconstructs better everywhere; it is the default. */
int zc_cst_norms(const float *x, size_t ldx, const int32_t *rows, int T, int C, zc_cst_norm kind, zc_fp16 *n) {
    int rc = check_block(T, C, 1, ldx);
    if (rc) return rc;
    const zc_kvq_kernels *k = zc_kvq_kernels_get();
    float mn[COLS], mx[COLS], am[COLS];
    for (int c0 = 0; c0 < C; c0 += COLS) {
        int m = C - c0 < COLS ? C - c0 : COLS;
        if (k->col_stats(x + c0, ldx, rows, T, m, mn, mx, am)) return non_finite();
        for (int i = 0; i < m; i++) {
            zc_fp16 h = zc_f32_to_fp16(kind == ZC_CST_MAX ? am[i] : sqrtf(am[i]));
            if (!fp16_finite(h))
                return zc_error(ZC_ERR_ARG, "kvquant: channel %d normalizer of %g overflows fp16", c0 + i,
                                (double)am[i]);
            n[c0 + i] = (h & 0x7fff) == 0 ? (zc_fp16)0x3c00 : h; /* all-zero channel: 1.0 */
        }
    }
    return ZC_OK;
}

int zc_token_quant(const float *x, size_t ldx, const int32_t *rows, int T, int C, int bits, const zc_fp16 *n,
                   uint8_t *codes, size_t ldc, zc_fp16 *min, zc_fp16 *step) {
    int rc = check_block(T, C, bits, ldx);
    if (rc) return rc;
    const zc_kvq_kernels *k = zc_kvq_kernels_get();
    float xn[ROWBUF]; /* [C] the normalized row, when it fits: one division per element, not two */
    for (int t = 0; t < T; t++) {
        const float *r = row_ptr(x, ldx, rows, t);
        const zc_fp16 *div = n;
        if (n && C <= ROWBUF) {
            k->row_div(r, n, C, xn);
            r = xn;
            div = NULL;
        }
        float lo, hi;
        if (k->row_stats(r, div, C, &lo, &hi)) return non_finite();
        if ((rc = fit_params(lo, hi, bits, &min[t], &step[t]))) return rc;
        k->enc_tok(r, div, C, bits, min[t], step[t], codes + (size_t)t * ldc);
    }
    return ZC_OK;
}

void zc_token_decode(const uint8_t *codes, size_t ldc, int T, int C, int bits, const zc_fp16 *n,
                     const zc_fp16 *min, const zc_fp16 *step, float *y, size_t ldy) {
    const zc_kvq_kernels *k = zc_kvq_kernels_get();
    for (int t = 0; t < T; t++) k->dec_tok(codes + (size_t)t * ldc, C, bits, min[t], step[t], n, y + (size_t)t * ldy);
}

/* ---- Generic interface ------------------------------------------------- */

const char *zc_kvq_format_name(zc_kvq_format f) {
    static const char *names[ZC_KVQ_N_FORMATS] = {"channel", "cst", "token", "group-ch", "group-tok", "q8_0", "q4_0"};
    return (unsigned)f < ZC_KVQ_N_FORMATS ? names[f] : "?";
}

static int ggml_type_of(zc_kvq_format f) { return f == ZC_KVQ_Q8_0 ? ZC_TYPE_Q8_0 : ZC_TYPE_Q4_0; }

static int n_groups(int len, int g) { return (len + g - 1) / g; }

int zc_kvq_layout_of(const zc_kvq *q, int T, int C, zc_kvq_layout *out) {
    memset(out, 0, sizeof *out);
    if (T < 1 || C < 1) return zc_error(ZC_ERR_ARG, "kvquant: empty block %d x %d", T, C);
    size_t params = 0; /* fp16 parameter count */
    switch (q->format) {
    case ZC_KVQ_Q8_0:
    case ZC_KVQ_Q4_0: {
        size_t rb;
        if (C % 32) return zc_error(ZC_ERR_ARG, "kvquant: %s needs channels %% 32 == 0, got %d",
                                    zc_kvq_format_name(q->format), C);
        int rc = zc_type_row_bytes(ggml_type_of(q->format), C, &rb);
        if (rc) return rc;
        out->row_bytes = rb;
        if (zc_mul_size(rb, (size_t)T, &out->total_bytes)) return zc_error(ZC_ERR_LIMIT, "kvquant: block too large");
        int code_bits = q->format == ZC_KVQ_Q8_0 ? 8 : 4;
        out->code_bits = (uint64_t)T * (uint64_t)C * (uint64_t)code_bits;
        out->param_bits = (uint64_t)out->total_bytes * 8 - out->code_bits;
        return ZC_OK;
    }
    case ZC_KVQ_CHANNEL: params = 2 * (size_t)C; break;
    case ZC_KVQ_CST: params = (size_t)C + 2 * (size_t)T; break;
    case ZC_KVQ_TOKEN: params = 2 * (size_t)T; break;
    case ZC_KVQ_GROUP_CH:
        if (q->group < 8 || q->group % 8)
            return zc_error(ZC_ERR_ARG, "kvquant: channel group %d must be a positive multiple of 8", q->group);
        params = 2 * (size_t)T * (size_t)n_groups(C, q->group);
        break;
    case ZC_KVQ_GROUP_TOK:
        if (q->group < 1) return zc_error(ZC_ERR_ARG, "kvquant: token group %d must be positive", q->group);
        params = 2 * (size_t)C * (size_t)n_groups(T, q->group);
        break;
    default: return zc_error(ZC_ERR_ARG, "kvquant: unknown format %d", (int)q->format);
    }
    if (q->bits < 1 || q->bits > 8) return zc_error(ZC_ERR_ARG, "kvquant: bit width %d outside 1..8", q->bits);
    size_t codes;
    out->row_bytes = zc_pack_bytes((size_t)C, q->bits);
    out->param_bytes = 2 * params;
    if (zc_mul_size(out->row_bytes, (size_t)T, &codes) || zc_add_size(codes, out->param_bytes, &out->total_bytes))
        return zc_error(ZC_ERR_LIMIT, "kvquant: block too large");
    out->code_bits = (uint64_t)codes * 8;
    out->param_bits = (uint64_t)out->param_bytes * 8;
    return ZC_OK;
}

uint64_t zc_kvq_stored_bits(const zc_kvq *q, int T, int C) {
    zc_kvq_layout l;
    return zc_kvq_layout_of(q, T, C, &l) ? 0 : (uint64_t)l.total_bytes * 8;
}

static int check_finite_rows(const float *x, size_t ldx, int T, int C) {
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) {
            float v = x[(size_t)t * ldx + (size_t)c];
            if (!(v - v == 0.0f)) return non_finite();
        }
    return ZC_OK;
}

int zc_kvq_quantize(const zc_kvq *q, const float *x, size_t ldx, int T, int C, void *blob) {
    zc_kvq_layout l;
    int rc = zc_kvq_layout_of(q, T, C, &l);
    if (rc) return rc;
    if (ldx < (size_t)C) return zc_error(ZC_ERR_ARG, "kvquant: row stride %zu < %d channels", ldx, C);
    zc_fp16 *p = blob;                        /* [l.param_bytes / 2] parameters */
    uint8_t *codes = (uint8_t *)blob + l.param_bytes; /* [T][row_bytes] */
    const int b = q->bits;
    switch (q->format) {
    case ZC_KVQ_CHANNEL:
        if ((rc = zc_chan_params(x, ldx, NULL, T, C, b, p, p + C))) return rc;
        zc_chan_encode(x, ldx, NULL, T, C, b, p, p + C, codes, l.row_bytes);
        return ZC_OK;
    case ZC_KVQ_CST:
        if ((rc = zc_cst_norms(x, ldx, NULL, T, C, q->norm, p))) return rc;
        return zc_token_quant(x, ldx, NULL, T, C, b, p, codes, l.row_bytes, p + C, p + C + T);
    case ZC_KVQ_TOKEN: return zc_token_quant(x, ldx, NULL, T, C, b, NULL, codes, l.row_bytes, p, p + T);
    case ZC_KVQ_GROUP_CH: {
        /* min[T][ng], step[T][ng]: tokenwise over each group of channels */
        const int G = q->group, ng = n_groups(C, G);
        const zc_kvq_kernels *k = zc_kvq_kernels_get();
        zc_fp16 *mn = p, *st = p + (size_t)T * ng;
        for (int t = 0; t < T; t++)
            for (int g = 0; g < ng; g++) {
                const float *r = x + (size_t)t * ldx + (size_t)g * G;
                int len = C - g * G < G ? C - g * G : G;
                size_t pi = (size_t)t * ng + g;
                float lo, hi;
                if (k->row_stats(r, NULL, len, &lo, &hi)) return non_finite();
                if ((rc = fit_params(lo, hi, b, &mn[pi], &st[pi]))) return rc;
                k->enc_tok(r, NULL, len, b, mn[pi], st[pi], codes + (size_t)t * l.row_bytes + (size_t)g * G * b / 8);
            }
        return ZC_OK;
    }
    case ZC_KVQ_GROUP_TOK: {
        /* min[ng][C], step[ng][C]: channelwise over each group of tokens */
        const int G = q->group, ng = n_groups(T, G);
        zc_fp16 *mn = p, *st = p + (size_t)ng * C;
        for (int g = 0; g < ng; g++) {
            int len = T - g * G < G ? T - g * G : G;
            const float *xg = x + (size_t)g * G * ldx;
            if ((rc = zc_chan_params(xg, ldx, NULL, len, C, b, mn + (size_t)g * C, st + (size_t)g * C))) return rc;
            zc_chan_encode(xg, ldx, NULL, len, C, b, mn + (size_t)g * C, st + (size_t)g * C,
                           codes + (size_t)g * G * l.row_bytes, l.row_bytes);
        }
        return ZC_OK;
    }
    case ZC_KVQ_Q8_0:
    case ZC_KVQ_Q4_0:
        /* ggml would quantize NaN silently into garbage; refuse like the others */
        if ((rc = check_finite_rows(x, ldx, T, C))) return rc;
        for (int t = 0; t < T; t++)
            if ((rc = zc_quantize_row(ggml_type_of(q->format), x + (size_t)t * ldx,
                                      (uint8_t *)blob + (size_t)t * l.row_bytes, C)))
                return rc;
        return ZC_OK;
    default: return zc_error(ZC_ERR_ARG, "kvquant: unknown format %d", (int)q->format);
    }
}

int zc_kvq_dequantize(const zc_kvq *q, const void *blob, int T, int C, float *y, size_t ldy) {
    zc_kvq_layout l;
    int rc = zc_kvq_layout_of(q, T, C, &l);
    if (rc) return rc;
    if (ldy < (size_t)C) return zc_error(ZC_ERR_ARG, "kvquant: output stride %zu < %d channels", ldy, C);
    const zc_fp16 *p = blob;
    const uint8_t *codes = (const uint8_t *)blob + l.param_bytes;
    const int b = q->bits;
    switch (q->format) {
    case ZC_KVQ_CHANNEL: zc_chan_decode(codes, l.row_bytes, T, C, b, p, p + C, y, ldy); return ZC_OK;
    case ZC_KVQ_CST: zc_token_decode(codes, l.row_bytes, T, C, b, p, p + C, p + C + T, y, ldy); return ZC_OK;
    case ZC_KVQ_TOKEN: zc_token_decode(codes, l.row_bytes, T, C, b, NULL, p, p + T, y, ldy); return ZC_OK;
    case ZC_KVQ_GROUP_CH: {
        const int G = q->group, ng = n_groups(C, G);
        const zc_kvq_kernels *k = zc_kvq_kernels_get();
        const zc_fp16 *mn = p, *st = p + (size_t)T * ng;
        for (int t = 0; t < T; t++)
            for (int g = 0; g < ng; g++) {
                int len = C - g * G < G ? C - g * G : G;
                size_t pi = (size_t)t * ng + g;
                k->dec_tok(codes + (size_t)t * l.row_bytes + (size_t)g * G * b / 8, len, b, mn[pi], st[pi], NULL,
                           y + (size_t)t * ldy + (size_t)g * G);
            }
        return ZC_OK;
    }
    case ZC_KVQ_GROUP_TOK: {
        const int G = q->group, ng = n_groups(T, G);
        const zc_fp16 *mn = p, *st = p + (size_t)ng * C;
        for (int g = 0; g < ng; g++) {
            int len = T - g * G < G ? T - g * G : G;
            zc_chan_decode(codes + (size_t)g * G * l.row_bytes, l.row_bytes, len, C, b, mn + (size_t)g * C,
                           st + (size_t)g * C, y + (size_t)g * G * ldy, ldy);
        }
        return ZC_OK;
    }
    case ZC_KVQ_Q8_0:
    case ZC_KVQ_Q4_0:
        for (int t = 0; t < T; t++)
            zc_dequantize_row(ggml_type_of(q->format), (const uint8_t *)blob + (size_t)t * l.row_bytes,
                              y + (size_t)t * ldy, C);
        return ZC_OK;
    default: return zc_error(ZC_ERR_ARG, "kvquant: unknown format %d", (int)q->format);
    }
}
