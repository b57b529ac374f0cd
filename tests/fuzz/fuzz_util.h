/* Helpers for fuzz targets whose parsers take a path: the input is written to
 * an anonymous in-memory file and opened through /proc/self/fd. */
#ifndef ZC_FUZZ_UTIL_H
#define ZC_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
    int fd;
    char path[64];
} fuzz_file;

/* Returns 0 on success; the caller closes with fuzz_file_close. */
static inline int fuzz_file_open(fuzz_file *f, const uint8_t *data, size_t size) {
    f->fd = memfd_create("fuzz", 0);
    if (f->fd < 0) return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(f->fd, data + off, size - off);
        if (w <= 0) {
            close(f->fd);
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    return 0;
}

static inline void fuzz_file_close(fuzz_file *f) { close(f->fd); }

#endif
