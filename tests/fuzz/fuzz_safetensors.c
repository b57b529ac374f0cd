/* Fuzz target: the safetensors reader (header JSON, offsets, dtypes). */
#include <stdint.h>

#include "fuzz_util.h"
#include "model/safetensors.h"

const char *const FUZZ_TARGET_NAME = "safetensors";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_file f;
    if (fuzz_file_open(&f, data, size)) return 0;
    zc_safetensors *st;
    if (zc_st_open_file(f.path, &st) == 0) {
        volatile uint8_t sink = 0;
        for (int i = 0; i < zc_st_n_tensors(st); i++) {
            const zc_st_tensor *t = zc_st_tensor_at(st, i);
            if (t->nbytes) sink ^= ((const uint8_t *)t->data)[t->nbytes - 1];
            (void)zc_st_find(st, t->name);
        }
        (void)sink;
        zc_st_close(st);
    }
    fuzz_file_close(&f);
    return 0;
}
