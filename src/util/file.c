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

static _Thread_local zc_file_load_mode g_mode; /* zero: map, no callback */

void zc_file_set_load_mode(const zc_file_load_mode *mode) {
    if (mode)
        g_mode = *mode;
    else
        memset(&g_mode, 0, sizeof g_mode);
}

/* Read size bytes of fd into a 64-byte aligned heap buffer, in chunks, with
 * g_mode's progress callback after each. */
static int read_whole(int fd, const char *path, size_t size, void **out) {
    uint8_t *buf = zc_malloc_aligned(size);
    if (!buf) return zc_error_prefix(ZC_ERR_NOMEM, "%s", path);
    size_t done = 0, chunk = (size_t)16 << 20;
    while (done < size) {
        ssize_t r = pread(fd, buf + done, size - done < chunk ? size - done : chunk, (off_t)done);
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            zc_free_aligned(buf);
            return zc_error(ZC_ERR_IO, "%s: cannot read: %s", path, strerror(e));
        }
        done += (size_t)r;
        if (g_mode.progress && g_mode.progress((float)((double)done / (double)size), g_mode.user)) {
            zc_free_aligned(buf);
            return zc_error(ZC_ERR_ABORTED, "%s: loading stopped by the progress callback", path);
        }
    }
    *out = buf;
    return ZC_OK;
}

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
    if (out->size > 0 && g_mode.copy) {
        void *p = NULL;
        int rc = read_whole(fd, path, out->size, &p);
        if (rc != ZC_OK) {
            close(fd);
            out->size = 0;
            return rc;
        }
        out->data = p;
        out->heap = 1;
    } else if (out->size > 0) {
        void *p = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return zc_error(ZC_ERR_IO, "%s: cannot map %zu bytes: %s", path, out->size, strerror(e));
        }
        out->data = p;
    }
    close(fd);
    out->path = zc_strdup(path);
    if (!out->path) {
        zc_unmap_file(out);
        return ZC_ERR_NOMEM;
    }
    return ZC_OK;
}

void zc_unmap_file(zc_mapped_file *f) {
    if (f->heap)
        zc_free_aligned((void *)f->data);
    else if (f->data)
        munmap((void *)f->data, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

int zc_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return zc_error(ZC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = max_bytes < (1 << 16) ? max_bytes : 1 << 16, len = 0;
    char *buf = zc_malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return zc_error_prefix(ZC_ERR_NOMEM, "%s", path);
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
            char *nb = zc_realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return zc_error_prefix(ZC_ERR_NOMEM, "%s", path);
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
