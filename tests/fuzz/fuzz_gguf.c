/* Fuzz target: the GGUF reader, then every accessor a loader would use on
 * what it accepted (metadata values, string arrays, tensor table). */
#include <stdint.h>

#include "fuzz_util.h"
#include "model/gguf.h"
#include "model/tokenizer.h"

const char *const FUZZ_TARGET_NAME = "gguf";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_file f;
    if (fuzz_file_open(&f, data, size)) return 0;
    zc_gguf *g;
    if (zc_gguf_open(f.path, &g) == 0) {
        char buf[256];
        for (int i = 0; i < zc_gguf_n_kv(g); i++) zc_gguf_format_value(g, i, buf, sizeof buf);
        volatile uint8_t sink = 0;
        for (int i = 0; i < zc_gguf_n_tensors(g); i++) {
            const zc_gguf_tensor *t = zc_gguf_tensor_at(g, i);
            if (t->nbytes) sink ^= ((const uint8_t *)t->data)[t->nbytes - 1];
        }
        (void)sink;
        zc_tokenizer *tok;
        if (zc_tokenizer_from_gguf(g, &tok) == 0) zc_tokenizer_free(tok);
        zc_gguf_close(g);
    }
    fuzz_file_close(&f);
    return 0;
}
