/* Dense bit packing: scalar reference for every width and run-time dispatch.
 * Layout in pack.h. */
#include "quant/pack.h"

#include "util/cpu.h"

void zc_pack_scalar(const uint8_t *codes, size_t n, int bits, uint8_t *dst) {
    const uint32_t mask = (1u << bits) - 1;
    uint32_t acc = 0; /* pending stream bits, oldest at bit 0; never more than 7 + 8 */
    int have = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= (codes[i] & mask) << have;
        have += bits;
        while (have >= 8) {
            dst[o++] = (uint8_t)acc;
            acc >>= 8;
            have -= 8;
        }
    }
    if (have > 0) dst[o] = (uint8_t)acc; /* high bits of the last byte stay zero */
}

void zc_unpack_scalar(const uint8_t *src, size_t n, int bits, uint8_t *codes) {
    const uint32_t mask = (1u << bits) - 1;
    uint32_t acc = 0;
    int have = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (have < bits) { /* the next byte exists: code i ends inside it */
            acc |= (uint32_t)src[o++] << have;
            have += 8;
        }
        codes[i] = (uint8_t)(acc & mask);
        acc >>= bits;
        have -= bits;
    }
}

static int has_simd_width(int bits) { return bits == 2 || bits == 3 || bits == 4 || bits == 8; }

void zc_pack(const uint8_t *codes, size_t n, int bits, uint8_t *dst) {
    if (has_simd_width(bits) && zc_cpu_has_avx2())
        zc_pack_avx2(codes, n, bits, dst);
    else
        zc_pack_scalar(codes, n, bits, dst);
}

void zc_unpack(const uint8_t *src, size_t n, int bits, uint8_t *codes) {
    if (has_simd_width(bits) && zc_cpu_has_avx2())
        zc_unpack_avx2(src, n, bits, codes);
    else
        zc_unpack_scalar(src, n, bits, codes);
}
