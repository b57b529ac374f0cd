/* The AVX-512 VNNI kernels live in files compiled without -m flags (only
 * *_avx2.c get -mavx2 ..., see the Makefile): the functions between
 * ZC_TARGET_AVX512_BEGIN and ZC_TARGET_AVX512_END are compiled for AVX2,
 * FMA, F16C and AVX-512 F/BW/VL/VNNI instead. Enter them only after
 * zc_cpu_has_avx512vnni() (util/cpu.h). */
#ifndef ZC_UTIL_TARGET_AVX512_H
#define ZC_UTIL_TARGET_AVX512_H

#if defined(__clang__)
#define ZC_TARGET_AVX512_BEGIN                                                                                  \
    _Pragma("clang attribute push(__attribute__((target(\"avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni\"))), \
             apply_to = function)")
#define ZC_TARGET_AVX512_END _Pragma("clang attribute pop")
#else
#define ZC_TARGET_AVX512_BEGIN \
    _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni\")")
#define ZC_TARGET_AVX512_END _Pragma("GCC pop_options")
#endif

#endif
