/* Tiled code layouts (tiled.h): conversion from packed rows and back.
 * Both run once per code (compression, references), not in decode; the
 * conversion has an AVX2 version (tiled_avx2.c), as it is part of every
 * prefill's compression. */
#include "quant/tiled.h"

#include <string.h>

#include "quant/pack.h"
#include "util/cpu.h"

enum { PIECE = 256 }; /* codes unpacked at a time; a multiple of 8, so pieces start on whole bytes */

void zc_tiled_from_rows(zc_tiled_kind kind, const uint8_t *rows, size_t ld, int n, int hd, int bits, uint8_t *dst) {
    if (zc_cpu_has_avx2() && zc_tiled_from_rows_avx2(kind, rows, ld, n, hd, bits, dst)) return;
    zc_tiled_from_rows_scalar(kind, rows, ld, n, hd, bits, dst);
}

void zc_tiled_from_rows_scalar(zc_tiled_kind kind, const uint8_t *rows, size_t ld, int n, int hd, int bits,
                               uint8_t *dst) {
    uint8_t codes[PIECE];
    memset(dst, 0, zc_tiled_bytes(n, hd, bits));
    for (int t = 0; t < n; t++)
        for (int c0 = 0; c0 < hd; c0 += PIECE) {
            int m = hd - c0 < PIECE ? hd - c0 : PIECE;
            zc_unpack(rows + (size_t)t * ld + (size_t)c0 * bits / 8, (size_t)m, bits, codes);
            for (int i = 0; i < m; i++) {
                int shift;
                size_t at = zc_tiled_where(kind, t, c0 + i, hd, bits, &shift);
                dst[at] |= (uint8_t)(codes[i] << shift);
            }
        }
}

void zc_tiled_unpack(zc_tiled_kind kind, const uint8_t *src, int t0, int nt, int hd, int bits, uint8_t *codes) {
    for (int t = 0; t < nt; t++)
        for (int c = 0; c < hd; c++) codes[(size_t)t * hd + c] = (uint8_t)zc_tiled_get(kind, src, t0 + t, c, hd, bits);
}
