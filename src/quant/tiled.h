/* Tiled code layouts: how the integer attention kernels want K and V codes
 * laid out in memory, so that decode reads them with a shift and a mask
 * instead of unpacking and transposing every tile (attn_packed.h).
 *
 * A set of n tokens' codes, code (t, c) for token t < n and channel c < hd,
 * each < 2^bits with bits = 2 or 4 and hd % 32 == 0, is cut into "lane
 * vectors" of 32 codes, one per byte:
 *   keys   (ZC_TILED_K) lane vector (t/8)*(hd/4) + c/4, byte (t%8)*4 + c%4:
 *          a 32-bit lane holds 4 consecutive channels of one token, so one
 *          u8 x s8 dot-product instruction (VPDPBUSD, or maddubs + madd)
 *          against 4 broadcast query bytes adds 4 channels into the scores
 *          of 8 tokens, with no horizontal sum.
 *   values (ZC_TILED_V) lane vector (t/4)*(hd/8) + c/8, byte (c%8)*4 + t%4:
 *          a lane holds one channel of 4 consecutive tokens, so one such
 *          instruction against 4 broadcast weight bytes adds 4 tokens into
 *          8 channels.
 * S = 8/bits consecutive lane vectors share one stored 32-byte word: lane
 * vector L sits in word L/S at bits [bits*(L%S), bits*(L%S) + bits) of every
 * byte, so lane vector j of a word w is (w >> bits*j) & (2^bits - 1) per byte.
 * Tokens are padded with zero codes to a multiple of 8; every 8 tokens take
 * hd*bits bytes in both layouts, so token t0 (a multiple of 8) starts at byte
 * (t0/8)*hd*bits of either.
 */
#ifndef ZC_QUANT_TILED_H
#define ZC_QUANT_TILED_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ZC_TILED_K = 0, ZC_TILED_V = 1 } zc_tiled_kind;

/* Can codes of this width and head dim use the tiled layouts? */
static inline int zc_tiled_ok(int hd, int bits) { return (bits == 2 || bits == 4) && hd > 0 && hd % 32 == 0; }

/* Bytes of n tokens' codes in a tiled layout (the padding included). */
static inline size_t zc_tiled_bytes(int n, int hd, int bits) {
    return ((size_t)n + 7) / 8 * (size_t)hd * (size_t)bits;
}

/* Byte and shift of code (t, c) in a tiled layout of width `bits`. */
static inline size_t zc_tiled_where(zc_tiled_kind kind, int t, int c, int hd, int bits, int *shift) {
    size_t lane = kind == ZC_TILED_K ? (size_t)(t >> 3) * (size_t)(hd >> 2) + (size_t)(c >> 2)
                                     : (size_t)(t >> 2) * (size_t)(hd >> 3) + (size_t)(c >> 3);
    int byte = kind == ZC_TILED_K ? (t & 7) * 4 + (c & 3) : (c & 7) * 4 + (t & 3);
    int lg = bits == 4 ? 1 : 2; /* log2 of the lane vectors per word */
    *shift = bits * (int)(lane & (((size_t)1 << lg) - 1));
    return (lane >> lg) * 32 + (size_t)byte;
}

/* Code (t, c) of a tiled layout. */
static inline int zc_tiled_get(zc_tiled_kind kind, const uint8_t *src, int t, int c, int hd, int bits) {
    int shift;
    size_t at = zc_tiled_where(kind, t, c, hd, bits, &shift);
    return src[at] >> shift & ((1 << bits) - 1);
}

/* n tokens of packed rows (quant/pack.h layout, rows `ld` bytes apart, hd
 * codes each) -> dst [zc_tiled_bytes(n, hd, bits)], padding zeroed.
 * Requires zc_tiled_ok(hd, bits). */
void zc_tiled_from_rows(zc_tiled_kind kind, const uint8_t *rows, size_t ld, int n, int hd, int bits, uint8_t *dst);

/* The scalar reference of zc_tiled_from_rows, and its AVX2 version (call only
 * when zc_cpu_has_avx2(); returns 0 without writing for head dims over 512). */
void zc_tiled_from_rows_scalar(zc_tiled_kind kind, const uint8_t *rows, size_t ld, int n, int hd, int bits,
                               uint8_t *dst);
int zc_tiled_from_rows_avx2(zc_tiled_kind kind, const uint8_t *rows, size_t ld, int n, int hd, int bits, uint8_t *dst);

/* Codes of tokens [t0, t0 + nt) of a tiled layout -> codes [nt][hd], one per
 * byte (references, tests, the fp32 attention path). */
void zc_tiled_unpack(zc_tiled_kind kind, const uint8_t *src, int t0, int nt, int hd, int bits, uint8_t *codes);

#endif
