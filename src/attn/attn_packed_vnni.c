/* AVX-512 VNNI versions of the integer path of attention on packed codes
 * (entered only after zc_cpu_has_avx512vnni()): attn_packed_i8_x86.h with
 * the 256-bit VPDPBUSD, which multiplies u8 x s8, sums groups of four and
 * accumulates in one instruction where AVX2 needs maddubs + madd + add.
 *
 * Compiled without -m flags (the Makefile gives those only to *_avx2.c); the
 * instruction sets are enabled for the functions below by a target region.
 */
#include <math.h>

#include "attn/attn_impl.h"
#include "util/target_avx512.h"

#if defined(__x86_64__)

ZC_TARGET_AVX512_BEGIN

#define ZC_DPBUSD(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#define I8X86(name) name##_vnni
#define I8X86_VROWS 4
#include "attn/attn_packed_i8_x86.h"

void zc_packed_kernels_use_vnni(zc_packed_kernels *k) {
    k->scores_t = scores_t_vnni;
    k->value_t = value_t_vnni;
}

ZC_TARGET_AVX512_END

#else

void zc_packed_kernels_use_vnni(zc_packed_kernels *k) { (void)k; }

#endif
