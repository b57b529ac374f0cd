/* Read-only file access: whole-file memory mapping (weights are mapped, never
 * copied) and small-file slurping (JSON, text). */
#ifndef ZC_UTIL_FILE_H
#define ZC_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *data; /* mapped bytes, read-only; NULL for an empty file */
    size_t size;         /* file size in bytes */
    char *path;          /* copy of the path, for error messages */
} zc_mapped_file;

/* Map `path` read-only. On failure returns ZC_ERR_IO with "path: reason". */
int zc_map_file(const char *path, zc_mapped_file *out);
void zc_unmap_file(zc_mapped_file *f);

/* Read a whole file into a NUL-terminated heap buffer (caller frees).
 * Refuses files larger than max_bytes with ZC_ERR_LIMIT. */
int zc_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len);

/* Write `len` bytes atomically enough for our purposes (write to path). */
int zc_write_file(const char *path, const void *data, size_t len);

#endif
