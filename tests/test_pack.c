/* Dense bit packing: layout against hand-built bitstreams, exact round trip
 * for every width and odd lengths, AVX2 == scalar byte for byte. Tiled
 * layouts (quant/tiled.h): hand-placed codes, round trip, zero padding. */
#include <stdint.h>

#include "quant/pack.h"
#include "quant/tiled.h"
#include "tt.h"
#include "util/cpu.h"

enum { NMAX = 1000 };

/* Independent bit-at-a-time definition of the layout in pack.h. */
static void pack_bitwise(const uint8_t *codes, size_t n, int bits, uint8_t *dst) {
    memset(dst, 0, zc_pack_bytes(n, bits));
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < bits; k++) {
            size_t s = i * (size_t)bits + (size_t)k; /* stream bit */
            if ((codes[i] >> k) & 1) dst[s / 8] |= (uint8_t)(1u << (s % 8));
        }
}

static void random_codes(unsigned long long *s, uint8_t *c, size_t n, int bits) {
    for (size_t i = 0; i < n; i++) c[i] = (uint8_t)(tt_rand_u64(s) & ((1u << bits) - 1));
}

static void test_layout_examples(void) {
    /* b = 4: low nibble first */
    uint8_t c4[3] = {0x1, 0x2, 0x3}, o[4] = {0};
    zc_pack_scalar(c4, 3, 4, o);
    TT_CHECK(o[0] == 0x21 && o[1] == 0x03, "b4: %02x %02x", o[0], o[1]);
    /* b = 2: byte = c0 | c1<<2 | c2<<4 | c3<<6 */
    uint8_t c2[5] = {1, 2, 3, 0, 3};
    zc_pack_scalar(c2, 5, 2, o);
    TT_CHECK(o[0] == (1 | 2 << 2 | 3 << 4) && o[1] == 3, "b2: %02x %02x", o[0], o[1]);
    /* b = 3: codes 0..7 = 7,0,...,0,5 -> 24-bit word 7 | 5 << 21 */
    uint8_t c3[8] = {7, 0, 0, 0, 0, 0, 0, 5};
    zc_pack_scalar(c3, 8, 3, o);
    uint32_t w = (uint32_t)o[0] | (uint32_t)o[1] << 8 | (uint32_t)o[2] << 16;
    TT_CHECK(w == (7u | 5u << 21), "b3: %06x", w);
    TT_CHECK(zc_pack_bytes(5, 3) == 2 && zc_pack_bytes(64, 3) == 24 && zc_pack_bytes(1, 1) == 1 &&
                 zc_pack_bytes(0, 7) == 0,
             "row bytes");
}

/* Every width 1..8, lengths 0..NMAX-ish including odd ones: scalar pack
 * equals the bitwise definition, unpack inverts it, and codes' high bits
 * beyond the width are ignored. */
static void test_roundtrip_scalar(void) {
    static uint8_t codes[NMAX], back[NMAX], ref[NMAX], got[NMAX + 1];
    unsigned long long s = 42;
    const size_t lens[] = {0, 1, 2, 3, 5, 7, 8, 9, 31, 63, 64, 65, 127, 129, 200, 333, 999};
    for (int bits = 1; bits <= 8; bits++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            size_t n = lens[li], nb = zc_pack_bytes(n, bits);
            random_codes(&s, codes, n, bits);
            pack_bitwise(codes, n, bits, ref);
            got[nb] = 0xa5; /* sentinel: no write past the row */
            uint8_t dirty[NMAX];
            for (size_t i = 0; i < n; i++) dirty[i] = (uint8_t)(codes[i] | (0xffu << bits));
            zc_pack_scalar(dirty, n, bits, got);
            TT_CHECK(memcmp(got, ref, nb) == 0 && got[nb] == 0xa5, "bits=%d n=%zu pack", bits, n);
            zc_unpack_scalar(got, n, bits, back);
            TT_CHECK(memcmp(back, codes, n) == 0, "bits=%d n=%zu unpack", bits, n);
        }
}

/* Dispatched (AVX2 where present) pack/unpack == scalar for the SIMD widths
 * and the fallback widths, random lengths. */
static void test_simd_equals_scalar(void) {
    if (!zc_cpu_has_avx2()) TT_SKIP("no AVX2 on this machine (or ZIPCACHE_NO_SIMD)");
    static uint8_t codes[NMAX], a[NMAX], b[NMAX], ua[NMAX], ub[NMAX];
    unsigned long long s = 7;
    for (int iter = 0; iter < 400; iter++) {
        int bits = 1 + (int)(tt_rand_u64(&s) % 8);
        size_t n = (size_t)(tt_rand_u64(&s) % NMAX);
        if (iter < 8) n = 64 * (size_t)(iter + 1); /* whole chunks */
        random_codes(&s, codes, n, bits);
        size_t nb = zc_pack_bytes(n, bits);
        a[nb] = b[nb] = 0x5a;
        zc_pack_scalar(codes, n, bits, a);
        zc_pack_avx2(codes, n, bits, b);
        TT_CHECK(memcmp(a, b, nb + 1) == 0, "pack bits=%d n=%zu", bits, n);
        zc_unpack_scalar(a, n, bits, ua);
        zc_unpack_avx2(a, n, bits, ub);
        TT_CHECK(memcmp(ua, ub, n) == 0 && memcmp(ua, codes, n) == 0, "unpack bits=%d n=%zu", bits, n);
    }
}

/* One code set alone in a tiled layout lands where tiled.h's text says. */
static void test_tiled_examples(void) {
    enum { HD = 64, N = 16 };
    static uint8_t codes[N * HD], rows[N * HD / 2], tiled[N * HD / 2];
    struct { zc_tiled_kind kind; int bits, t, c; size_t byte; int shift; } ex[] = {
        /* keys, 4 bits: lane vector (9/8)*16 + 5/4 = 17 -> word 8, slice 1; byte (9%8)*4 + 5%4 = 5 */
        {ZC_TILED_K, 4, 9, 5, 8 * 32 + 5, 4},
        /* keys, 2 bits: lane vector 0*16 + 63/4 = 15 -> word 3, slice 3; byte 2*4 + 3 = 11 */
        {ZC_TILED_K, 2, 2, 63, 3 * 32 + 11, 6},
        /* values, 4 bits: lane vector (6/4)*8 + 13/8 = 9 -> word 4, slice 1; byte (13%8)*4 + 6%4 = 22 */
        {ZC_TILED_V, 4, 6, 13, 4 * 32 + 22, 4},
        /* values, 2 bits: lane vector (15/4)*8 + 40/8 = 29 -> word 7, slice 1; byte 0*4 + 3 = 3 */
        {ZC_TILED_V, 2, 15, 40, 7 * 32 + 3, 2},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        memset(codes, 0, sizeof codes);
        int code = (1 << ex[i].bits) - 1;
        codes[ex[i].t * HD + ex[i].c] = (uint8_t)code;
        zc_pack_scalar(codes, (size_t)N * HD, ex[i].bits, rows);
        zc_tiled_from_rows(ex[i].kind, rows, (size_t)HD * ex[i].bits / 8, N, HD, ex[i].bits, tiled);
        int shift, ok = 1;
        TT_CHECK(zc_tiled_where(ex[i].kind, ex[i].t, ex[i].c, HD, ex[i].bits, &shift) == ex[i].byte &&
                     shift == ex[i].shift, "example %zu: where", i);
        for (size_t b = 0; b < zc_tiled_bytes(N, HD, ex[i].bits); b++)
            ok &= tiled[b] == (b == ex[i].byte ? code << ex[i].shift : 0);
        TT_CHECK(ok, "example %zu: byte %zu should hold the only code", i, ex[i].byte);
    }
}

/* Random codes through the tiled layouts and back, odd token counts padded
 * with zeros; the AVX2 conversion gives the scalar one's bytes. */
static void test_tiled_roundtrip(void) {
    static const int dims[] = {32, 64, 96, 128, 256}, counts[] = {1, 7, 8, 61, 100};
    static uint8_t codes[100 * 256], back[104 * 256], rows[100 * 256], tiled[104 * 256];
    unsigned long long seed = 11;
    for (int kind = 0; kind < 2; kind++)
        for (int bits = 2; bits <= 4; bits += 2)
            for (int di = 0; di < 5; di++)
                for (int ci = 0; ci < 5; ci++) {
                    int hd = dims[di], n = counts[ci];
                    for (int i = 0; i < n * hd; i++) codes[i] = (uint8_t)(tt_rand_u64(&seed) & ((1u << bits) - 1));
                    zc_pack(codes, (size_t)n * hd, bits, rows);
                    zc_tiled_from_rows((zc_tiled_kind)kind, rows, (size_t)hd * bits / 8, n, hd, bits, tiled);
                    static uint8_t ref[104 * 128];
                    zc_tiled_from_rows_scalar((zc_tiled_kind)kind, rows, (size_t)hd * bits / 8, n, hd, bits, ref);
                    TT_CHECK(!memcmp(ref, tiled, zc_tiled_bytes(n, hd, bits)), "kind %d, %d bits, hd %d, n %d: "
                             "dispatched (AVX2 where present) and scalar bytes differ", kind, bits, hd, n);
                    int pad = (n + 7) / 8 * 8;
                    zc_tiled_unpack((zc_tiled_kind)kind, tiled, 0, pad, hd, bits, back);
                    int ok = !memcmp(codes, back, (size_t)n * hd);
                    for (int i = n * hd; i < pad * hd; i++) ok &= back[i] == 0;
                    TT_CHECK(ok, "kind %d, %d bits, hd %d, n %d: round trip", kind, bits, hd, n);
                    /* a window starting inside: tokens 8.. */
                    if (n > 8) {
                        zc_tiled_unpack((zc_tiled_kind)kind, tiled, 8, n - 8, hd, bits, back);
                        TT_CHECK(!memcmp(codes + 8 * hd, back, (size_t)(n - 8) * hd), "kind %d, %d bits, hd %d, n %d: window from token 8", kind, bits, hd, n);
                    }
                }
    TT_CHECK(!zc_tiled_ok(64, 3) && !zc_tiled_ok(48, 4) && zc_tiled_ok(96, 2), "zc_tiled_ok");
}

int main(void) {
    TT_RUN(test_tiled_examples);
    TT_RUN(test_tiled_roundtrip);
    TT_RUN(test_layout_examples);
    TT_RUN(test_roundtrip_scalar);
    TT_RUN(test_simd_equals_scalar);
    return tt_finish();
}
