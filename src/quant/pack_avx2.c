/* AVX2 bit packing for widths 2, 3, 4 and 8, in chunks of 64 codes (8*bits
 * bytes, so every chunk starts on a byte boundary). A tail shorter than 64
 * goes through a zero-padded chunk, so short rows (e.g. 32-channel groups)
 * stay on the SIMD path; the bytes equal the scalar reference's. Unpacking
 * uses the inline row helpers of pack.h. */
#include <immintrin.h>
#include <string.h>

#include "quant/pack.h"

/* 64 codes of 4 bits -> 32 bytes: pair (c[2j], c[2j+1]) -> c[2j] + 16*c[2j+1]. */
static void pack64_b4(const uint8_t *codes, uint8_t *dst) {
    const __m256i m = _mm256_set1_epi8(0x0f), w = _mm256_set1_epi16(0x1001); /* bytes 1, 16 */
    __m256i c0 = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)codes), m);
    __m256i c1 = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(codes + 32)), m);
    __m256i r0 = _mm256_maddubs_epi16(c0, w); /* out bytes 0..15 as 16-bit */
    __m256i r1 = _mm256_maddubs_epi16(c1, w); /* out bytes 16..31 */
    /* packus interleaves the lanes: (0..7, 16..23 | 8..15, 24..31) */
    __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi16(r0, r1), 0xd8);
    _mm256_storeu_si256((__m256i *)dst, p);
}

/* 64 codes of 2 bits -> 16 bytes: quad -> c0 + 4c1 + 16c2 + 64c3. */
static void pack64_b2(const uint8_t *codes, uint8_t *dst) {
    const __m256i m = _mm256_set1_epi8(3);
    const __m256i w1 = _mm256_set1_epi16(0x0401); /* bytes 1, 4 */
    const __m256i w2 = _mm256_set1_epi32(0x00100001); /* words 1, 16 */
    __m256i c0 = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)codes), m);
    __m256i c1 = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(codes + 32)), m);
    __m256i r0 = _mm256_madd_epi16(_mm256_maddubs_epi16(c0, w1), w2); /* out bytes 0..7 as 32-bit */
    __m256i r1 = _mm256_madd_epi16(_mm256_maddubs_epi16(c1, w1), w2); /* out bytes 8..15 */
    /* packs: (0..3, 8..11 | 4..7, 12..15) as 16-bit; reorder, then to bytes */
    __m256i h = _mm256_permute4x64_epi64(_mm256_packs_epi32(r0, r1), 0xd8);
    __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm_storeu_si128((__m128i *)dst, b);
}

/* 32 codes of 3 bits -> 12 bytes, as two 6-byte halves in the low 6 bytes
 * of each 128-bit lane. */
static __m256i pack32_b3(const uint8_t *codes) {
    const __m256i m = _mm256_set1_epi8(7);
    const __m256i w1 = _mm256_set1_epi16(0x0801);     /* bytes 1, 8: 6 bits per pair */
    const __m256i w2 = _mm256_set1_epi32(0x00400001); /* words 1, 64: 12 bits per quad */
    __m256i c = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)codes), m);
    __m256i q = _mm256_madd_epi16(_mm256_maddubs_epi16(c, w1), w2);
    /* each 64-bit lane = q_even | q_odd << 32; want q_even | q_odd << 12 (24 bits) */
    __m256i x = _mm256_or_si256(_mm256_and_si256(q, _mm256_set1_epi64x(0xfff)),
                                _mm256_and_si256(_mm256_srli_epi64(q, 20), _mm256_set1_epi64x(0xfff000)));
    const __m256i sh = _mm256_setr_epi8(0, 1, 2, 8, 9, 10, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* */
                                        0, 1, 2, 8, 9, 10, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    return _mm256_shuffle_epi8(x, sh);
}

static void pack64_b3(const uint8_t *codes, uint8_t *dst) {
    __m256i a = pack32_b3(codes), b = pack32_b3(codes + 32);
    uint64_t h[4] = {(uint64_t)_mm256_extract_epi64(a, 0), (uint64_t)_mm256_extract_epi64(a, 2),
                     (uint64_t)_mm256_extract_epi64(b, 0), (uint64_t)_mm256_extract_epi64(b, 2)};
    for (int k = 0; k < 4; k++) memcpy(dst + 6 * k, &h[k], 6); /* little-endian: low 6 bytes */
}

static void pack64(const uint8_t *codes, int bits, uint8_t *dst) {
    switch (bits) {
    case 2: pack64_b2(codes, dst); break;
    case 3: pack64_b3(codes, dst); break;
    default: pack64_b4(codes, dst); break;
    }
}

void zc_pack_avx2(const uint8_t *codes, size_t n, int bits, uint8_t *dst) {
    if (bits == 8) {
        memcpy(dst, codes, n);
        return;
    }
    if (bits != 2 && bits != 3 && bits != 4) {
        zc_pack_scalar(codes, n, bits, dst);
        return;
    }
    size_t n64 = n / 64, rest = n - 64 * n64;
    for (size_t i = 0; i < n64; i++) pack64(codes + 64 * i, bits, dst + 8 * (size_t)bits * i);
    if (rest) {
        /* zero codes pack to zero bits, so a zero-padded chunk yields the
         * tail's bytes with the unused high bits of its last byte clear */
        uint8_t in[64] = {0}, out[64];
        memcpy(in, codes + 64 * n64, rest);
        pack64(in, bits, out);
        memcpy(dst + 8 * (size_t)bits * n64, out, zc_pack_bytes(rest, bits));
    }
}

static void unpack64(const uint8_t *src, int bits, uint8_t *codes) {
    __m256i c0, c1;
    switch (bits) {
    case 2: zc_unpack64_b2(src, &c0, &c1); break;
    case 3: zc_unpack64_b3(src, &c0, &c1); break;
    default: zc_unpack64_b4(src, &c0, &c1); break;
    }
    _mm256_storeu_si256((__m256i *)codes, c0);
    _mm256_storeu_si256((__m256i *)(codes + 32), c1);
}

/* n64 whole chunks of 64 codes, the width chosen once (the attention kernels
 * unpack a 64-token tile per call: 64+ chunks) */
#define UNPACK_CHUNKS(fn)                                                   \
    for (size_t i = 0; i < n64; i++) {                                      \
        __m256i c0, c1;                                                     \
        fn(src + 8 * (size_t)bits * i, &c0, &c1);                           \
        _mm256_storeu_si256((__m256i *)(codes + 64 * i), c0);               \
        _mm256_storeu_si256((__m256i *)(codes + 64 * i + 32), c1);          \
    }

void zc_unpack_avx2(const uint8_t *src, size_t n, int bits, uint8_t *codes) {
    if (bits == 8) {
        memcpy(codes, src, n);
        return;
    }
    if (bits != 2 && bits != 3 && bits != 4) {
        zc_unpack_scalar(src, n, bits, codes);
        return;
    }
    size_t n64 = n / 64, rest = n - 64 * n64;
    switch (bits) {
    case 2: UNPACK_CHUNKS(zc_unpack64_b2); break;
    case 3: UNPACK_CHUNKS(zc_unpack64_b3); break;
    default: UNPACK_CHUNKS(zc_unpack64_b4); break;
    }
    if (rest) { /* read only the tail's bytes: copy them into a padded chunk */
        uint8_t in[64] = {0}, out[64];
        memcpy(in, src + 8 * (size_t)bits * n64, zc_pack_bytes(rest, bits));
        unpack64(in, bits, out);
        memcpy(codes + 64 * n64, out, rest);
    }
}
