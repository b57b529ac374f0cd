#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"

int zc_map_file(const char *path, zc_mapped_file *out) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return zc_error(ZC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return zc_error(ZC_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return zc_error(ZC_ERR_IO, "%s: not a regular file", path);
    }
    out->size = (size_t)st.st_size;
    if (out->size > 0) {
        void *p = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return zc_error(ZC_ERR_IO, "%s: cannot map %zu bytes: %s", path, out->size, strerror(e));
        }
        out->data = p;
    }
    close(fd);
    out->path = strdup(path);
    if (!out->path) {
        zc_unmap_file(out);
        return zc_error(ZC_ERR_NOMEM, "out of memory");
    }
    return ZC_OK;
}

void zc_unmap_file(zc_mapped_file *f) {
    if (f->data) munmap((void *)f->data, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

int zc_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return zc_error(ZC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = max_bytes < (1 << 16) ? max_bytes : 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return zc_error(ZC_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (len == cap) {
            /* A file of exactly max_bytes is allowed: refuse only when one
             * more byte exists. */
            if (cap >= max_bytes && getc(f) == EOF) break;
            if (cap >= max_bytes) {
                free(buf);
                fclose(f);
                return zc_error(ZC_ERR_LIMIT, "%s: file larger than the %zu-byte limit", path, max_bytes);
            }
            cap = cap * 2 > max_bytes ? max_bytes : cap * 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return zc_error(ZC_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int err = ferror(f) ? (errno ? errno : EIO) : 0; /* before fclose can change errno */
    fclose(f);
    if (err) {
        free(buf);
        return zc_error(ZC_ERR_IO, "%s: read error: %s", path, strerror(err));
    }
    buf[len] = 0;
    *out = buf;
    if (out_len) *out_len = len;
    return ZC_OK;
}

int zc_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return zc_error(ZC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    size_t put = fwrite(data, 1, len, f);
    int bad = put != len || fclose(f) != 0;
    if (bad) return zc_error(ZC_ERR_IO, "%s: write failed", path);
    return ZC_OK;
}
