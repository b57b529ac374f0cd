/* Dense bit packing of b-bit codes, b = 1..8.
 *
 * Layout (the one every packed KV row in zipcache uses):
 *   - n codes, each in [0, 2^b), form a little-endian bitstream: code i
 *     occupies stream bits [i*b, (i+1)*b), its least significant bit first;
 *     stream bit k is bit (k % 8) of byte k / 8.
 *   - A row of n codes takes zc_pack_bytes(n, b) = ceil(n*b/8) bytes, nothing
 *     more; the unused high bits of the last byte are written as zero.
 *   Concretely, for the widths the decode kernels care about:
 *     b = 8: byte i = code i.
 *     b = 4: byte j = code[2j] | code[2j+1] << 4            (low nibble first)
 *     b = 2: byte j = code[4j] | code[4j+1] << 2 | code[4j+2] << 4 | code[4j+3] << 6
 *     b = 3: every 8 codes fill 3 bytes: the 24-bit little-endian word
 *            w = byte[3g] | byte[3g+1] << 8 | byte[3g+2] << 16 holds code 8g+k
 *            at bits [3k, 3k+3).
 *   This is *not* the planar layout of the ZipCache reference code (which
 *   puts code j and code j + C/2 in one byte); dense interleaving works for
 *   any n and any width, and a row of 64 codes is 8*b bytes.
 *
 * Functions below dispatch at run time to AVX2 (b = 2, 3, 4, 8) or to the
 * scalar reference (all widths); both produce identical bytes. The dispatch
 * asks zc_cpu_has_avx2() on every call; a loop over many short rows can ask
 * once and call zc_pack_avx2 / zc_unpack_avx2 directly.
 *
 * SIMD users (decode attention on packed rows): a translation unit compiled
 * with AVX2 (a *_avx2.c file) gets the inline row helpers at the end of this
 * header, which turn one row of 64 codes (8*b bytes, read exactly) into 64
 * uint8 codes in two registers, codes 0..31 and 32..63 in order. */
#ifndef ZC_QUANT_PACK_H
#define ZC_QUANT_PACK_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of a packed row of n codes of `bits` bits: ceil(n*bits/8). */
static inline size_t zc_pack_bytes(size_t n, int bits) { return (n * (size_t)bits + 7) / 8; }

/* Pack n codes (each < 2^bits; higher bits are ignored) into dst[zc_pack_bytes(n, bits)]. */
void zc_pack(const uint8_t *codes, size_t n, int bits, uint8_t *dst);
/* Unpack n codes from src[zc_pack_bytes(n, bits)]; reads no byte beyond that. */
void zc_unpack(const uint8_t *src, size_t n, int bits, uint8_t *codes);

/* Scalar references (any width 1..8), used by tests and as the fallback. */
void zc_pack_scalar(const uint8_t *codes, size_t n, int bits, uint8_t *dst);
void zc_unpack_scalar(const uint8_t *src, size_t n, int bits, uint8_t *codes);

/* AVX2 versions for bits = 2, 3, 4, 8 (other widths fall back to scalar).
 * Call only when zc_cpu_has_avx2(); zc_pack/zc_unpack do that check. */
void zc_pack_avx2(const uint8_t *codes, size_t n, int bits, uint8_t *dst);
void zc_unpack_avx2(const uint8_t *src, size_t n, int bits, uint8_t *codes);

#if defined(__AVX2__)
#include <immintrin.h>

/* 64 codes of 4 bits: src[32] -> codes 0..31 in *c0, 32..63 in *c1. */
static inline void zc_unpack64_b4(const uint8_t *src, __m256i *c0, __m256i *c1) {
    const __m256i m = _mm256_set1_epi8(0x0f);
    __m256i v = _mm256_loadu_si256((const __m256i *)src);
    __m256i lo = _mm256_and_si256(v, m);                        /* codes 2j   */
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);  /* codes 2j+1 */
    __m256i a = _mm256_unpacklo_epi8(lo, hi);                   /* codes 0..15 | 32..47 */
    __m256i b = _mm256_unpackhi_epi8(lo, hi);                   /* codes 16..31 | 48..63 */
    *c0 = _mm256_permute2x128_si256(a, b, 0x20);
    *c1 = _mm256_permute2x128_si256(a, b, 0x31);
}

/* 64 codes of 2 bits: src[16] -> codes 0..31 in *c0, 32..63 in *c1. */
static inline void zc_unpack64_b2(const uint8_t *src, __m256i *c0, __m256i *c1) {
    const __m128i m = _mm_set1_epi8(3);
    __m128i v = _mm_loadu_si128((const __m128i *)src);
    __m128i f0 = _mm_and_si128(v, m);                     /* codes 4j   */
    __m128i f1 = _mm_and_si128(_mm_srli_epi16(v, 2), m);  /* codes 4j+1 */
    __m128i f2 = _mm_and_si128(_mm_srli_epi16(v, 4), m);  /* codes 4j+2 */
    __m128i f3 = _mm_and_si128(_mm_srli_epi16(v, 6), m);  /* codes 4j+3 */
    __m128i p01l = _mm_unpacklo_epi8(f0, f1), p01h = _mm_unpackhi_epi8(f0, f1);
    __m128i p23l = _mm_unpacklo_epi8(f2, f3), p23h = _mm_unpackhi_epi8(f2, f3);
    __m128i q0 = _mm_unpacklo_epi16(p01l, p23l); /* codes 0..15  */
    __m128i q1 = _mm_unpackhi_epi16(p01l, p23l); /* codes 16..31 */
    __m128i q2 = _mm_unpacklo_epi16(p01h, p23h); /* codes 32..47 */
    __m128i q3 = _mm_unpackhi_epi16(p01h, p23h); /* codes 48..63 */
    *c0 = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
    *c1 = _mm256_inserti128_si256(_mm256_castsi128_si256(q2), q3, 1);
}

/* Two 8-code groups of 3 bits, one per 128-bit lane, whose 3 bytes start at
 * lane-local offsets o0 (low lane) and o1 (high lane) of `v`; returns the 16
 * codes as 16-bit integers. Code k of a group sits at bit 3k of the group's
 * 24 bits: gather the 16-bit window holding it, multiply by 2^(8 - (3k mod 8))
 * (a per-element left shift AVX2 lacks for 16-bit lanes) so its bits land at
 * 8..10, then shift right by 8 and mask. */
static inline __m256i zc__unpack16_b3(__m256i v, int o0, int o1) {
    /* byte index of code k's window: (3k)/8 = 0,0,0,1,1,1,2,2; bytes past the
     * group read as zero (-1 in pshufb), which codes 6 and 7 do not need. */
#define ZC__B3_LANE(o)                                                                                        \
    (char)(o), (char)((o) + 1), (char)(o), (char)((o) + 1), (char)(o), (char)((o) + 1), (char)((o) + 1),        \
        (char)((o) + 2), (char)((o) + 1), (char)((o) + 2), (char)((o) + 1), (char)((o) + 2), (char)((o) + 2), -1, \
        (char)((o) + 2), -1
    const __m256i sh = _mm256_setr_epi8(ZC__B3_LANE(o0), ZC__B3_LANE(o1));
#undef ZC__B3_LANE
    const __m256i mul = _mm256_setr_epi16(256, 32, 4, 128, 16, 2, 64, 8, 256, 32, 4, 128, 16, 2, 64, 8);
    __m256i w = _mm256_mullo_epi16(_mm256_shuffle_epi8(v, sh), mul);
    return _mm256_and_si256(_mm256_srli_epi16(w, 8), _mm256_set1_epi16(7));
}

/* 64 codes of 3 bits: src[24] -> codes 0..31 in *c0, 32..63 in *c1. */
static inline void zc_unpack64_b3(const uint8_t *src, __m256i *c0, __m256i *c1) {
    __m256i a = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)src));       /* bytes 0..15 */
    __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(src + 8))); /* bytes 8..23 */
    __m256i g01 = zc__unpack16_b3(a, 0, 3);  /* groups 0, 1 at bytes 0, 3   */
    __m256i g23 = zc__unpack16_b3(a, 6, 9);  /* groups 2, 3 at bytes 6, 9   */
    __m256i g45 = zc__unpack16_b3(b, 4, 7);  /* groups 4, 5 at bytes 12, 15 */
    __m256i g67 = zc__unpack16_b3(b, 10, 13);/* groups 6, 7 at bytes 18, 21 */
    /* packus interleaves lanes: (g0, g2 | g1, g3); restore group order */
    *c0 = _mm256_permute4x64_epi64(_mm256_packus_epi16(g01, g23), 0xd8);
    *c1 = _mm256_permute4x64_epi64(_mm256_packus_epi16(g45, g67), 0xd8);
}

/* 64 codes of 8 bits: src[64]. */
static inline void zc_unpack64_b8(const uint8_t *src, __m256i *c0, __m256i *c1) {
    *c0 = _mm256_loadu_si256((const __m256i *)src);
    *c1 = _mm256_loadu_si256((const __m256i *)(src + 32));
}
#endif /* __AVX2__ */

#endif
