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
    int heap;            /* 1: data was read into a heap buffer (zc_file_load_mode copy), not mapped */
} zc_mapped_file;

/* How zc_map_file works on the calling thread while a model loads
 * (zc_model_load_params sets it and resets it before returning): copy
 * reads the file into memory instead of mapping it, calling progress with
 * the fraction of the file read (a nonzero return stops the read with
 * ZC_ERR_ABORTED). NULL restores the default (map, no callback). */
typedef struct {
    int copy;
    int (*progress)(float fraction, void *user);
    void *user;
} zc_file_load_mode;
void zc_file_set_load_mode(const zc_file_load_mode *mode);

/* Map `path` read-only (or read it, see zc_file_load_mode). On failure
 * returns ZC_ERR_IO with "path: reason", ZC_ERR_NOMEM or ZC_ERR_ABORTED. */
int zc_map_file(const char *path, zc_mapped_file *out);
void zc_unmap_file(zc_mapped_file *f);

/* Read a whole file into a NUL-terminated heap buffer (caller frees).
 * Refuses files larger than max_bytes with ZC_ERR_LIMIT. */
int zc_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len);

/* Write `len` bytes atomically enough for our purposes (write to path). */
int zc_write_file(const char *path, const void *data, size_t len);

#endif
