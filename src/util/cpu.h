/* Run-time CPU feature detection. SIMD paths (files named *_avx2.c) are only
 * entered when zc_cpu_has_avx2() is true. ZIPCACHE_NO_SIMD=1 in the environment
 * forces the scalar paths (used by tests to compare both). */
#ifndef ZC_UTIL_CPU_H
#define ZC_UTIL_CPU_H

#include <stdbool.h>

/* AVX2 + FMA + F16C all present and not disabled by ZIPCACHE_NO_SIMD. */
bool zc_cpu_has_avx2(void);
/* AVX-512 F/BW/VL + VNNI present and not disabled. */
bool zc_cpu_has_avx512vnni(void);
/* Override for tests: -1 = auto (default), 0 = force scalar, 1 = allow SIMD. */
void zc_cpu_set_simd(int mode);
/* Number of online cores. */
int zc_cpu_count(void);
/* A short description such as "AMD EPYC 9B14 (avx2 fma f16c avx512-vnni)". */
const char *zc_cpu_name(void);

#endif
