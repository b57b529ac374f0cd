#include "util/cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_simd_mode = -1;

void zc_cpu_set_simd(int mode) { g_simd_mode = mode; }

/* ZIPCACHE_NO_SIMD is read once: kernels ask for the CPU features on every call. */
static int g_env_no_simd = -1;

static bool simd_allowed(void) {
    if (g_simd_mode >= 0) return g_simd_mode == 1;
    return !g_env_no_simd;
}

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* CPUID feature bits plus the OS's XSAVE state (XCR0): a feature is only
 * usable if the OS saves its registers on context switches. */
typedef struct {
    bool avx2_fma_f16c;
    bool avx512_vnni;
} cpu_features;

static unsigned long long read_xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (unsigned long long)hi << 32 | lo;
}

static cpu_features detect(void) {
    cpu_features f = {false, false};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!osxsave || !avx) return f;
    unsigned long long xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return f; /* SSE and AVX state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    bool avx2 = b & (1u << 5);
    f.avx2_fma_f16c = avx2 && fma && f16c;
    bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31), vnni = c & (1u << 11);
    f.avx512_vnni = f.avx2_fma_f16c && avx512f && avx512bw && avx512vl && vnni && (xcr0 & 0xe0) == 0xe0;
    return f;
}
#else
typedef struct {
    bool avx2_fma_f16c;
    bool avx512_vnni;
} cpu_features;
static cpu_features detect(void) { return (cpu_features){false, false}; }
#endif

static cpu_features g_features;
static pthread_once_t g_features_once = PTHREAD_ONCE_INIT;
static void detect_once(void) {
    const char *e = getenv("ZIPCACHE_NO_SIMD");
    g_env_no_simd = e && *e && strcmp(e, "0") != 0;
    g_features = detect();
}

static cpu_features features(void) {
    pthread_once(&g_features_once, detect_once);
    return g_features;
}

bool zc_cpu_has_avx2(void) { return features().avx2_fma_f16c && simd_allowed(); }

bool zc_cpu_has_avx512vnni(void) { return features().avx512_vnni && simd_allowed(); }

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
