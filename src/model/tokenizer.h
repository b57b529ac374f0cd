/* Tokenizers: SentencePiece-style BPE with byte fallback (GGUF "llama"),
 * GPT-2 byte-level BPE (GGUF "gpt2", with the GPT-2, Llama 3 and Qwen2
 * pre-tokenizer rules) and Hugging Face tokenizer.json BPE.
 *
 * Encoding follows the reference tokenizers exactly (llama.cpp's test vectors
 * in ../shared/data/tokenizer-vectors must be reproduced). Decoding is
 * streaming: zc_tok_decoder emits only complete UTF-8 characters, holding
 * back the bytes of a character that spans tokens.
 */
#ifndef ZC_MODEL_TOKENIZER_H
#define ZC_MODEL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zc_tokenizer zc_tokenizer;
struct zc_gguf;

/* Build from GGUF metadata (tokenizer.ggml.*); works on vocab-only files. */
int zc_tokenizer_from_gguf(const struct zc_gguf *g, zc_tokenizer **out);
/* Build from a Hugging Face tokenizer.json (+ tokenizer_config.json beside it, if any). */
int zc_tokenizer_from_hf(const char *tokenizer_json_path, zc_tokenizer **out);
void zc_tokenizer_free(zc_tokenizer *t);

int zc_tokenizer_n_vocab(const zc_tokenizer *t);
int zc_tokenizer_bos(const zc_tokenizer *t); /* -1 if none */
int zc_tokenizer_eos(const zc_tokenizer *t); /* -1 if none */
/* Whether BOS should be prepended by default (tokenizer.ggml.add_bos_token / HF post-processor). */
bool zc_tokenizer_add_bos(const zc_tokenizer *t);
/* Whether generation should stop at token id (EOS, EOT and other end tokens). */
bool zc_tokenizer_is_eog(const zc_tokenizer *t, int id);

/* Encode `len` bytes of text. add_bos: prepend BOS. parse_special: match
 * control/special token texts in the input (as llama.cpp's parse_special).
 * *ids is malloc'ed (caller frees), *n_ids its length. */
int zc_tokenize(const zc_tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                int32_t **ids, int *n_ids);

/* The raw piece for a token after byte decoding (e.g. "<0x0A>" -> "\n",
 * "Ġthe" -> " the", "▁the" -> " the"); control tokens give "". */
int zc_token_to_bytes(const zc_tokenizer *t, int id, char *buf, size_t cap, size_t *len);

/* Streaming UTF-8-safe detokenization. */
typedef struct {
    char pending[8];
    int n_pending;
    bool at_start;  /* strip the SentencePiece leading space of the first piece */
} zc_tok_decoder;
void zc_tok_decoder_init(zc_tok_decoder *d);
/* Append the text of token `id` to out (cap bytes), writing only complete
 * UTF-8 sequences; invalid bytes become U+FFFD. *len gets bytes written. */
int zc_tok_decode(const zc_tokenizer *t, zc_tok_decoder *d, int id, char *out, size_t cap, size_t *len);

#endif
