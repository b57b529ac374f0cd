#include "util/cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_simd_mode = -1;

void zc_cpu_set_simd(int mode) { g_simd_mode = mode; }

static bool simd_allowed(void) {
    if (g_simd_mode >= 0) return g_simd_mode == 1;
    const char *e = getenv("ZIPCACHE_NO_SIMD");
    return !(e && *e && strcmp(e, "0") != 0);
}

bool zc_cpu_has_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return simd_allowed() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
#else
    return false;
#endif
}

bool zc_cpu_has_avx512vnni(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return simd_allowed() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
    return false;
#endif
}

int zc_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

const char *zc_cpu_name(void) {
    static char name[256];
    if (name[0]) return name;
    char model[160] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    c += 2;
                    c[strcspn(c, "\n")] = 0;
                    snprintf(model, sizeof model, "%s", c);
                }
                break;
            }
        }
        fclose(f);
    }
    snprintf(name, sizeof name, "%s (%d cores%s%s)", model, zc_cpu_count(), zc_cpu_has_avx2() ? ", avx2 fma f16c" : "",
             zc_cpu_has_avx512vnni() ? ", avx512-vnni" : "");
    return name;
}
