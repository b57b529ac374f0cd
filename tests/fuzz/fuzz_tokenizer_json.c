/* Fuzz target: loading a Hugging Face tokenizer.json, then encoding and
 * decoding a fixed text with whatever it accepted. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "model/tokenizer.h"

const char *const FUZZ_TARGET_NAME = "tokenizer_json";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_file f;
    if (fuzz_file_open(&f, data, size)) return 0;
    zc_tokenizer *t;
    if (zc_tokenizer_from_hf(f.path, &t) == 0) {
        static const char text[] = "Once upon a time, \xc3\xa9t\xc3\xa9 <|start_story|> 123 \xf0\x9f\x98\x80!";
        int32_t *ids = NULL;
        int n = 0;
        if (zc_tokenize(t, text, sizeof text - 1, true, true, &ids, &n) == 0) {
            zc_tok_decoder d;
            zc_tok_decoder_init(&d);
            char out[256];
            size_t len;
            for (int i = 0; i < n; i++) zc_tok_decode(t, &d, ids[i], out, sizeof out, &len);
        }
        free(ids);
        zc_tokenizer_free(t);
    }
    fuzz_file_close(&f);
    return 0;
}
