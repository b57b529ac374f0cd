/* Monotonic wall-clock time in seconds. */
#ifndef ZC_UTIL_TIMER_H
#define ZC_UTIL_TIMER_H

#include <time.h>

static inline double zc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
