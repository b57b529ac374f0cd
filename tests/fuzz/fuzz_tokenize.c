/* Fuzz target: encoding arbitrary bytes (invalid UTF-8 included) with the
 * real tokenizers in ../shared, and streaming-decoding arbitrary id
 * sequences. The tokenizers are loaded once; missing assets make the
 * target a no-op (the replay test then reports it as skipped). */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/gguf.h"
#include "model/tokenizer.h"

const char *const FUZZ_TARGET_NAME = "tokenize";

static zc_tokenizer *g_tok[3];
static int g_n_tok = -1;

static void load_tokenizers(void) {
    const char *root = getenv("ZIPCACHE_ASSETS");
    if (!root || !*root) root = "../shared";
    static const char *ggufs[] = {"data/tokenizer-vectors/ggml-vocab-llama-spm.gguf",
                                  "data/tokenizer-vectors/ggml-vocab-gpt-2.gguf"};
    char path[1024];
    g_n_tok = 0;
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", root, ggufs[i]);
        zc_gguf *g;
        if (zc_gguf_open(path, &g) != 0) continue;
        if (zc_tokenizer_from_gguf(g, &g_tok[g_n_tok]) == 0) g_n_tok++;
        zc_gguf_close(g);
    }
    snprintf(path, sizeof path, "%s/models/tinystories656K/tokenizer.json", root);
    if (zc_tokenizer_from_hf(path, &g_tok[g_n_tok]) == 0) g_n_tok++;
}

const char *fuzz_target_missing(void);
const char *fuzz_target_missing(void) {
    if (g_n_tok < 0) load_tokenizers();
    return g_n_tok < 3 ? "the tokenizers in ../shared (tokenizer-vectors, tinystories656K) are missing" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g_n_tok < 0) load_tokenizers();
    if (size < 1) return 0;
    for (int k = 0; k < g_n_tok; k++) {
        const zc_tokenizer *t = g_tok[k];
        int32_t *ids = NULL;
        int n = 0;
        if (zc_tokenize(t, (const char *)data + 1, size - 1, data[0] & 1, data[0] & 2, &ids, &n) == 0) free(ids);
        /* the same bytes read as token ids, valid or not */
        zc_tok_decoder d;
        zc_tok_decoder_init(&d);
        char out[64];
        size_t len;
        for (size_t i = 0; i + 4 <= size; i += 4) {
            int32_t id;
            memcpy(&id, data + i, 4);
            zc_tok_decode(t, &d, id % (zc_tokenizer_n_vocab(t) + 8), out, sizeof out, &len);
        }
    }
    return 0;
}
