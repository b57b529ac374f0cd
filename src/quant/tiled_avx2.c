/* AVX2 conversion of packed rows to the tiled layouts (tiled.h): rows are
 * unpacked to bytes a group at a time, then transposed in registers (keys:
 * an 8x8 transposition of 4-byte channel quads; values: a byte interleave of
 * 4 rows) and sliced into words. The same bytes as the scalar version. */
#include <immintrin.h>
#include <string.h>

#include "quant/pack.h"
#include "quant/tiled.h"

enum { MAX_HD = 512 }; /* head dims the stack buffer holds; larger ones take the scalar path */

/* Rows t0.. of the set as bytes in buf [count][hd]; rows past n are zero. */
static void rows_to_bytes(const uint8_t *rows, size_t ld, int n, int t0, int count, int hd, int bits, uint8_t *buf) {
    for (int t = 0; t < count; t++) {
        if (t0 + t < n)
            zc_unpack_avx2(rows + (size_t)(t0 + t) * ld, (size_t)hd, bits, buf + (size_t)t * hd);
        else
            memset(buf + (size_t)t * hd, 0, (size_t)hd);
    }
}

/* Store the lane vectors lv[0..count) (count a multiple of 8/bits), sliced into words from dst. */
static void store_words(const __m256i *lv, int count, int bits, uint8_t *dst) {
    int per_word = 8 / bits;
    for (int j = 0; j < count; j += per_word) {
        __m256i w = lv[j];
        for (int s = 1; s < per_word; s++) w = _mm256_or_si256(w, _mm256_slli_epi16(lv[j + s], s * bits));
        _mm256_storeu_si256((__m256i *)(dst + (size_t)(j / per_word) * 32), w);
    }
}

/* 8 tokens' codes buf [8][hd] -> the keys' hd/4 lane vectors of their group of 8. */
static void key_group(const uint8_t *buf, int hd, int bits, uint8_t *dst) {
    for (int q0 = 0; q0 < hd / 4; q0 += 8) { /* channel quads q0..q0+7 */
        __m256i r[8], t[8], u[8], lv[8];
        for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_si256((const __m256i *)(buf + (size_t)k * hd + 4 * q0));
        for (int k = 0; k < 8; k += 2) {
            t[k] = _mm256_unpacklo_epi32(r[k], r[k + 1]);
            t[k + 1] = _mm256_unpackhi_epi32(r[k], r[k + 1]);
        }
        for (int k = 0; k < 8; k += 4) {
            u[k] = _mm256_unpacklo_epi64(t[k], t[k + 2]);
            u[k + 1] = _mm256_unpackhi_epi64(t[k], t[k + 2]);
            u[k + 2] = _mm256_unpacklo_epi64(t[k + 1], t[k + 3]);
            u[k + 3] = _mm256_unpackhi_epi64(t[k + 1], t[k + 3]);
        }
        for (int k = 0; k < 4; k++) { /* lane vector q0+k: quad q0+k of tokens 0..7 */
            lv[k] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20);
            lv[k + 4] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);
        }
        store_words(lv, 8, bits, dst + (size_t)q0 / (8 / bits) * 32);
    }
}

/* 4 tokens' codes buf [4][hd] -> the values' hd/8 lane vectors of their group of 4.
 * The unpacks work within 128-bit lanes, so they give channels {0-3, 16-19},
 * {4-7, 20-23}, {8-11, 24-27}, {12-15, 28-31}; one lane swap restores the order. */
static void value_group(const uint8_t *buf, int hd, int bits, uint8_t *dst) {
    for (int c0 = 0; c0 < hd; c0 += 32) {
        __m256i x[4], lv[4];
        for (int k = 0; k < 4; k++) x[k] = _mm256_loadu_si256((const __m256i *)(buf + (size_t)k * hd + c0));
        __m256i lo01 = _mm256_unpacklo_epi8(x[0], x[1]), hi01 = _mm256_unpackhi_epi8(x[0], x[1]);
        __m256i lo23 = _mm256_unpacklo_epi8(x[2], x[3]), hi23 = _mm256_unpackhi_epi8(x[2], x[3]);
        __m256i a = _mm256_unpacklo_epi16(lo01, lo23), b = _mm256_unpackhi_epi16(lo01, lo23);
        __m256i d = _mm256_unpacklo_epi16(hi01, hi23), e = _mm256_unpackhi_epi16(hi01, hi23);
        lv[0] = _mm256_permute2x128_si256(a, b, 0x20); /* channels c0..c0+7 */
        lv[1] = _mm256_permute2x128_si256(d, e, 0x20); /* +8..15 */
        lv[2] = _mm256_permute2x128_si256(a, b, 0x31); /* +16..23 */
        lv[3] = _mm256_permute2x128_si256(d, e, 0x31); /* +24..31 */
        store_words(lv, 4, bits, dst + (size_t)c0 / 8 / (8 / bits) * 32);
    }
}

int zc_tiled_from_rows_avx2(zc_tiled_kind kind, const uint8_t *rows, size_t ld, int n, int hd, int bits, uint8_t *dst) {
    if (hd > MAX_HD) return 0;
    uint8_t buf[8 * MAX_HD];
    int group = kind == ZC_TILED_K ? 8 : 4, padded = (n + 7) & ~7;
    size_t group_bytes = (size_t)hd * bits * (size_t)group / 8;
    for (int t0 = 0; t0 < padded; t0 += group) {
        rows_to_bytes(rows, ld, n, t0, group, hd, bits, buf);
        uint8_t *out = dst + (size_t)(t0 / group) * group_bytes;
        if (kind == ZC_TILED_K)
            key_group(buf, hd, bits, out);
        else
            value_group(buf, hd, bits, out);
    }
    return 1;
}
