/* ggml block formats: type table and scalar reference (de)quantization.
 *
 * Every formula here follows ggml's dequantize_row_* / quantize_row_*_ref in
 * operation order as well as in meaning, because "bit-exact with ggml" means
 * the same float rounding: d*q with d already widened from fp16, Q6_K's
 * (d*scale)*q, Q4_K's (d*scale)*q - dmin*min.
 *
 * Q8_0 and Q4_0 quantization dispatch to ggml_blocks_avx2.c when AVX2 is
 * available; quant_q8_0 / quant_q4_0 stay the reference and fallback.
 */
#include "quant/ggml_blocks.h"

#include <assert.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "util/cpu.h"
#include "util/error.h"
#include "util/fp16.h"

static_assert(sizeof(zc_block_q8_0) == 34, "q8_0 layout");
static_assert(sizeof(zc_block_q4_0) == 18, "q4_0 layout");
static_assert(sizeof(zc_block_q4_1) == 20, "q4_1 layout");
static_assert(sizeof(zc_block_q5_0) == 22, "q5_0 layout");
static_assert(sizeof(zc_block_q5_1) == 24, "q5_1 layout");
static_assert(sizeof(zc_block_q4_K) == 144, "q4_K layout");
static_assert(sizeof(zc_block_q5_K) == 176, "q5_K layout");
static_assert(sizeof(zc_block_q6_K) == 210, "q6_K layout");

/* Indexed by ggml type id; ids ggml retired (4, 5) or that we do not know
 * have a NULL name. Sizes of the types we only describe (Q8_1, Q2_K, Q3_K,
 * Q8_K) let the GGUF reader skip their tensors and print them. */
static const zc_type_info g_types[] = {
    [ZC_TYPE_F32] = {"f32", 1, 4, true},
    [ZC_TYPE_F16] = {"f16", 1, 2, true},
    [ZC_TYPE_Q4_0] = {"q4_0", ZC_QK, 18, true},
    [ZC_TYPE_Q4_1] = {"q4_1", ZC_QK, 20, true},
    [ZC_TYPE_Q5_0] = {"q5_0", ZC_QK, 22, true},
    [ZC_TYPE_Q5_1] = {"q5_1", ZC_QK, 24, true},
    [ZC_TYPE_Q8_0] = {"q8_0", ZC_QK, 34, true},
    [ZC_TYPE_Q8_1] = {"q8_1", ZC_QK, 36, false},  /* d, s (fp16), qs[32] */
    [ZC_TYPE_Q2_K] = {"q2_K", ZC_QK_K, 84, false}, /* scales[16], qs[64], d, dmin */
    [ZC_TYPE_Q3_K] = {"q3_K", ZC_QK_K, 110, false}, /* hmask[32], qs[64], scales[12], d */
    [ZC_TYPE_Q4_K] = {"q4_K", ZC_QK_K, 144, true},
    [ZC_TYPE_Q5_K] = {"q5_K", ZC_QK_K, 176, true},
    [ZC_TYPE_Q6_K] = {"q6_K", ZC_QK_K, 210, true},
    [ZC_TYPE_Q8_K] = {"q8_K", ZC_QK_K, 292, false}, /* d (f32), qs[256], bsums[16] int16 */
    [ZC_TYPE_BF16] = {"bf16", 1, 2, true},
};

const zc_type_info *zc_type_get(int type) {
    if (type < 0 || type >= (int)(sizeof g_types / sizeof g_types[0])) return NULL;
    return g_types[type].name ? &g_types[type] : NULL;
}

int zc_type_from_name(const char *name) {
    for (int t = 0; t < (int)(sizeof g_types / sizeof g_types[0]); t++) {
        const char *a = g_types[t].name, *b = name;
        if (!a) continue;
        while (*a && tolower((unsigned char)*a) == tolower((unsigned char)*b)) a++, b++;
        if (!*a && !*b) return t;
    }
    return -1;
}

int zc_type_row_bytes(int type, int64_t n, size_t *out) {
    const zc_type_info *ti = zc_type_get(type);
    if (!ti) return zc_error(ZC_ERR_UNSUPPORTED, "unknown ggml type %d", type);
    if (n < 0 || n % ti->block_elems)
        return zc_error(ZC_ERR_FORMAT, "%s: %lld elements is not a multiple of the block size %d", ti->name,
                        (long long)n, ti->block_elems);
    if ((uint64_t)n > SIZE_MAX) return zc_error(ZC_ERR_LIMIT, "%s: %lld elements is too many", ti->name, (long long)n);
    if (zc_mul_size((size_t)(n / ti->block_elems), (size_t)ti->block_bytes, out))
        return zc_error(ZC_ERR_LIMIT, "%s: row of %lld elements overflows size_t", ti->name, (long long)n);
    return ZC_OK;
}

/* ---- dequantization -------------------------------------------------- */

static void dequant_q8_0(const zc_block_q8_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += ZC_QK) {
        const float d = zc_fp16_to_f32(b[i].d);
        for (int j = 0; j < ZC_QK; j++) y[j] = b[i].qs[j] * d;
    }
}

static void dequant_q4_0(const zc_block_q4_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += ZC_QK) {
        const float d = zc_fp16_to_f32(b[i].d);
        for (int j = 0; j < ZC_QK / 2; j++) {
            y[j] = ((b[i].qs[j] & 0xF) - 8) * d;
            y[j + ZC_QK / 2] = ((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequant_q4_1(const zc_block_q4_1 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += ZC_QK) {
        const float d = zc_fp16_to_f32(b[i].d), m = zc_fp16_to_f32(b[i].m);
        for (int j = 0; j < ZC_QK / 2; j++) {
            y[j] = (b[i].qs[j] & 0xF) * d + m;
            y[j + ZC_QK / 2] = (b[i].qs[j] >> 4) * d + m;
        }
    }
}

/* Element j's fifth bit is bit j of the little-endian 32-bit qh. */
static uint32_t load_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

static void dequant_q5_0(const zc_block_q5_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += ZC_QK) {
        const float d = zc_fp16_to_f32(b[i].d);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < ZC_QK / 2; j++) {
            int lo = (b[i].qs[j] & 0xF) | (int)((qh >> j) & 1) << 4;
            int hi = (b[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (lo - 16) * d;
            y[j + ZC_QK / 2] = (hi - 16) * d;
        }
    }
}

static void dequant_q5_1(const zc_block_q5_1 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += ZC_QK) {
        const float d = zc_fp16_to_f32(b[i].d), m = zc_fp16_to_f32(b[i].m);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < ZC_QK / 2; j++) {
            int lo = (b[i].qs[j] & 0xF) | (int)((qh >> j) & 1) << 4;
            int hi = (b[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = lo * d + m;
            y[j + ZC_QK / 2] = hi * d + m;
        }
    }
}

/* Q4_K: 8 sub-blocks of 32; each 64-element stretch takes the low nibbles of
 * 32 qs bytes (sub-block 2k) then their high nibbles (sub-block 2k+1). */
static void dequant_q4_K(const zc_block_q4_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = zc_fp16_to_f32(b[i].d), dmin = zc_fp16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int j = 0; j < 8; j += 2, q += 32) {
            uint8_t sc, m;
            zc_k4_scale_min(j, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            zc_k4_scale_min(j + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

/* Q5_K: as Q4_K, with sub-block s's fifth bit in bit s of qh[l]. */
static void dequant_q5_K(const zc_block_q5_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = zc_fp16_to_f32(b[i].d), dmin = zc_fp16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs, *qh = b[i].qh;
        for (int j = 0; j < 8; j += 2, q += 32) {
            uint8_t sc, m;
            zc_k4_scale_min(j, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            zc_k4_scale_min(j + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((q[l] & 0xF) + ((qh[l] >> j) & 1) * 16) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((q[l] >> 4) + ((qh[l] >> (j + 1)) & 1) * 16) - m2;
        }
    }
}

/* Q6_K: two halves of 128; in each, element 32*k + l (k = 0..3) has its low
 * 4 bits in ql[l + 32*(k&1)] (low nibble for k < 2, high for k >= 2), its
 * high 2 bits at bits 2k of qh[l], and scale scales[l/16 + 2k]. */
static void dequant_q6_K(const zc_block_q6_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = zc_fp16_to_f32(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

void zc_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    const zc_type_info *ti = zc_type_get(type);
    if (!ti || !ti->can_load || n <= 0) return;
    const int64_t nb = n / ti->block_elems;
    switch (type) {
    case ZC_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case ZC_TYPE_F16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = zc_fp16_to_f32(h[i]);
        break;
    }
    case ZC_TYPE_BF16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = zc_bf16_to_f32(h[i]);
        break;
    }
    case ZC_TYPE_Q8_0: dequant_q8_0(src, dst, nb); break;
    case ZC_TYPE_Q4_0: dequant_q4_0(src, dst, nb); break;
    case ZC_TYPE_Q4_1: dequant_q4_1(src, dst, nb); break;
    case ZC_TYPE_Q5_0: dequant_q5_0(src, dst, nb); break;
    case ZC_TYPE_Q5_1: dequant_q5_1(src, dst, nb); break;
    case ZC_TYPE_Q4_K: dequant_q4_K(src, dst, nb); break;
    case ZC_TYPE_Q5_K: dequant_q5_K(src, dst, nb); break;
    case ZC_TYPE_Q6_K: dequant_q6_K(src, dst, nb); break;
    default: break;
    }
}

/* ---- quantization (ggml's quantize_row_*_ref) -------------------------- */

/* The element of largest magnitude, sign kept (first one on ties), as the
 * symmetric formats scale so that it maps to the most negative code. */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, int n, float *mn, float *mx) {
    *mn = FLT_MAX;
    *mx = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < *mn) *mn = x[j];
        if (x[j] > *mx) *mx = x[j];
    }
}

static void quant_q8_0(const float *x, zc_block_q8_0 *b, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += ZC_QK) {
        float amax = 0.0f;
        for (int j = 0; j < ZC_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        b[i].d = zc_f32_to_fp16(d);
        for (int j = 0; j < ZC_QK; j++) b[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void quant_q4_0(const float *x, zc_block_q4_0 *b, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += ZC_QK) {
        const float d = signed_absmax(x, ZC_QK) / -8.0f, id = d ? 1.0f / d : 0.0f;
        b[i].d = zc_f32_to_fp16(d);
        for (int j = 0; j < ZC_QK / 2; j++) {
            /* ggml truncates x*id + 8.5 through int8_t: round half up, then clamp 16 to 15 */
            int lo = (int8_t)(x[j] * id + 8.5f), hi = (int8_t)(x[j + ZC_QK / 2] * id + 8.5f);
            lo = lo < 15 ? lo : 15;
            hi = hi < 15 ? hi : 15;
            b[i].qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

static void quant_q4_1(const float *x, zc_block_q4_1 *b, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += ZC_QK) {
        float mn, mx;
        min_max(x, ZC_QK, &mn, &mx);
        const float d = (mx - mn) / 15.0f, id = d ? 1.0f / d : 0.0f;
        b[i].d = zc_f32_to_fp16(d);
        b[i].m = zc_f32_to_fp16(mn);
        for (int j = 0; j < ZC_QK / 2; j++) {
            int lo = (int8_t)((x[j] - mn) * id + 0.5f), hi = (int8_t)((x[j + ZC_QK / 2] - mn) * id + 0.5f);
            lo = lo < 15 ? lo : 15;
            hi = hi < 15 ? hi : 15;
            b[i].qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

static void store_qh(uint8_t qh[4], uint32_t v) {
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(v >> (8 * k));
}

static void quant_q5_0(const float *x, zc_block_q5_0 *b, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += ZC_QK) {
        const float d = signed_absmax(x, ZC_QK) / -16.0f, id = d ? 1.0f / d : 0.0f;
        b[i].d = zc_f32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < ZC_QK / 2; j++) {
            int lo = (int8_t)(x[j] * id + 16.5f), hi = (int8_t)(x[j + ZC_QK / 2] * id + 16.5f);
            lo = lo < 31 ? lo : 31;
            hi = hi < 31 ? hi : 31;
            b[i].qs[j] = (uint8_t)((lo & 0xF) | (hi & 0xF) << 4);
            qh |= (uint32_t)(lo >> 4) << j | (uint32_t)(hi >> 4) << (j + 16);
        }
        store_qh(b[i].qh, qh);
    }
}

static void quant_q5_1(const float *x, zc_block_q5_1 *b, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += ZC_QK) {
        float mn, mx;
        min_max(x, ZC_QK, &mn, &mx);
        const float d = (mx - mn) / 31.0f, id = d ? 1.0f / d : 0.0f;
        b[i].d = zc_f32_to_fp16(d);
        b[i].m = zc_f32_to_fp16(mn);
        uint32_t qh = 0;
        for (int j = 0; j < ZC_QK / 2; j++) {
            /* ggml does not clamp here: (x - min)*id <= 31 + rounding */
            int lo = (uint8_t)((x[j] - mn) * id + 0.5f), hi = (uint8_t)((x[j + ZC_QK / 2] - mn) * id + 0.5f);
            b[i].qs[j] = (uint8_t)((lo & 0xF) | (hi & 0xF) << 4);
            qh |= (uint32_t)((lo >> 4) & 1) << j | (uint32_t)((hi >> 4) & 1) << (j + 16);
        }
        store_qh(b[i].qh, qh);
    }
}

int zc_quantize_row(int type, const float *src, void *dst, int64_t n) {
    const zc_type_info *ti = zc_type_get(type);
    if (!ti) return zc_error(ZC_ERR_UNSUPPORTED, "unknown ggml type %d", type);
    if (n < 0 || n % ti->block_elems)
        return zc_error(ZC_ERR_ARG, "%s: %lld elements is not a multiple of the block size %d", ti->name,
                        (long long)n, ti->block_elems);
    const int64_t nb = n / ti->block_elems;
    switch (type) {
    case ZC_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return ZC_OK;
    case ZC_TYPE_F16: {
        zc_f32_to_fp16_row(src, dst, (size_t)n);
        return ZC_OK;
    }
    case ZC_TYPE_BF16: {
        uint16_t *h = dst;
        for (int64_t i = 0; i < n; i++) h[i] = zc_f32_to_bf16(src[i]);
        return ZC_OK;
    }
    case ZC_TYPE_Q8_0:
        if (zc_cpu_has_avx2()) zc_quant_q8_0_avx2(src, dst, nb);
        else quant_q8_0(src, dst, nb);
        return ZC_OK;
    case ZC_TYPE_Q4_0:
        if (zc_cpu_has_avx2()) zc_quant_q4_0_avx2(src, dst, nb);
        else quant_q4_0(src, dst, nb);
        return ZC_OK;
    case ZC_TYPE_Q4_1: quant_q4_1(src, dst, nb); return ZC_OK;
    case ZC_TYPE_Q5_0: quant_q5_0(src, dst, nb); return ZC_OK;
    case ZC_TYPE_Q5_1: quant_q5_1(src, dst, nb); return ZC_OK;
    default: return zc_error(ZC_ERR_UNSUPPORTED, "%s: quantization is not implemented", ti->name);
    }
}
