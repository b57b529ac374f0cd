/* Tokenizers: SentencePiece-style BPE with byte fallback (GGUF "llama"),
 * GPT-2 byte-level BPE (GGUF "gpt2", with the GPT-2, Llama 3, Qwen2 and
 * o200k pre-tokenizer rules) and Hugging Face tokenizer.json BPE.
 *
 * Encoding follows the reference tokenizers exactly (llama.cpp's test vectors
 * in ../shared/data/tokenizer-vectors must be reproduced). Decoding is
 * streaming: zc_tok_decoder emits only complete UTF-8 characters, holding
 * back the bytes of a character that spans tokens.
 *
 * tokenizer.json support covers what Llama-family files use: normalizers
 * Sequence/Prepend/Replace/NFC (Qwen's; a GGUF tokenizer applies no NFC, as
 * llama.cpp's); pre-tokenizers ByteLevel and Split with the GPT-2, Llama 3,
 * Qwen2 or o200k (GPT-4o, Phi-4-mini) regex, or Metaspace; decoders
 * Replace(U+2581 -> ' ')/ByteFallback/Fuse/Strip, ByteLevel and Metaspace;
 * post-processor TemplateProcessing (BOS/EOS). Anything else is
 * ZC_ERR_UNSUPPORTED naming the file.
 *
 * A tokenizer is immutable once built: all functions may be called from
 * several threads at once.
 */
#ifndef ZC_MODEL_TOKENIZER_H
#define ZC_MODEL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zc_tokenizer zc_tokenizer;
struct zc_gguf;

/* Build from GGUF metadata (tokenizer.ggml.*); works on vocab-only files.
 * Errors: ZC_ERR_FORMAT (missing or inconsistent metadata: tokens, scores or
 * token types of the wrong length, token type outside 1..6, ill-formed UTF-8
 * or duplicate token texts, merges naming unknown tokens, special-token ids
 * outside the vocabulary), ZC_ERR_UNSUPPORTED (tokenizer model or
 * pre-tokenizer), ZC_ERR_NOMEM. */
int zc_tokenizer_from_gguf(const struct zc_gguf *g, zc_tokenizer **out);
/* Build from a Hugging Face tokenizer.json (+ tokenizer_config.json beside
 * it, if any: add_bos_token/add_eos_token, bos_token/eos_token). Ids no
 * token names (gaps below the largest) are unused tokens.
 * Errors: ZC_ERR_IO, ZC_ERR_FORMAT (bad JSON, vocabulary ids invalid,
 * repeated or out of range, merges naming unknown tokens, ill-formed UTF-8),
 * ZC_ERR_UNSUPPORTED (a model, normalizer, pre-tokenizer, decoder or
 * post-processor this file does not implement), ZC_ERR_NOMEM. */
int zc_tokenizer_from_hf(const char *tokenizer_json_path, zc_tokenizer **out);
void zc_tokenizer_free(zc_tokenizer *t);
/* The tokenizer.ggml.pre name that makes zc_tokenizer_from_gguf split as
 * this byte-level BPE tokenizer does ("gpt-2", "llama-bpe", "qwen2",
 * "gpt-4o", ...), or NULL when a GGUF "gpt2" tokenizer cannot express it
 * (SentencePiece-style, no regex, a normalizer other than NFC, which is
 * dropped as llama.cpp's converter drops it). *ignore_merges: whether a
 * word that is itself a token is taken whole, which the name implies only
 * for some (llama-bpe yes, qwen2 no): zc_tokenizer_from_gguf reads it from
 * zipcache.tokenizer.ignore_merges where present. For `zipcache convert`. */
const char *zc_tokenizer_gguf_pre(const zc_tokenizer *t, bool *ignore_merges);
/* The tokenizer.ggml.add_space_prefix (the dummy "\u2581" before text)
 * that makes a GGUF SentencePiece tokenizer encode a prompt after BOS as
 * this one does: for a tokenizer.json, whether it prepends "\u2581"
 * (Prepend normalizer, Metaspace) to the text after BOS. Not when BOS is a
 * normalized added token: such a model saw its BOS text normalized with the
 * text (tinystories656K: "\u2581<|start_story|>Once"), so the "\u2581" went
 * before BOS and the prompt starts without one. For `zipcache convert`. */
bool zc_tokenizer_gguf_space_prefix(const zc_tokenizer *t);

int zc_tokenizer_n_vocab(const zc_tokenizer *t);
int zc_tokenizer_bos(const zc_tokenizer *t); /* -1 if none */
int zc_tokenizer_eos(const zc_tokenizer *t); /* -1 if none */
/* Whether BOS should be prepended by default (tokenizer.ggml.add_bos_token / HF post-processor). */
bool zc_tokenizer_add_bos(const zc_tokenizer *t);
/* Whether the model expects EOS appended to a prompt (tokenizer.ggml.add_eos_token). */
bool zc_tokenizer_add_eos(const zc_tokenizer *t);
/* Id of the token whose text is exactly text[0..len), or -1. */
int zc_tokenizer_token_id(const zc_tokenizer *t, const char *text, size_t len);
/* The dummy leading space: SentencePiece's add_space_prefix and a
 * tokenizer.json Prepend normalizer put "\u2581" before each text fragment,
 * as the reference tokenizers do (the default). Models trained on text
 * encoded without it (tinystories656K: a story starts "On", "ce\u2581")
 * want prompts encoded with on = false; the decoder then keeps a leading
 * space too. Call before the tokenizer is shared between threads.
 * Errors: ZC_ERR_NOMEM. */
int zc_tokenizer_set_space_prefix(zc_tokenizer *t, bool on);
/* Whether generation should stop at token id (EOS, EOT and other end tokens). */
bool zc_tokenizer_is_eog(const zc_tokenizer *t, int id);

/* Encode `len` bytes of text. add_bos: prepend BOS (if the tokenizer has
 * one). parse_special: also match control token texts in the input, e.g.
 * "<s>" (as llama.cpp's parse_special; user-defined tokens are always
 * matched, as in llama.cpp and HF). SentencePiece vocabularies put the dummy
 * "\u2581" before the text and after each special token. tokenizer.json
 * added tokens are matched as HF does: normalized=false ones in the raw
 * text, the others (as their normalized content) in the normalized text
 * between those; one with lstrip / rstrip drops the whitespace before /
 * after it. *ids is malloc'ed (caller frees), *n_ids its length. Errors: ZC_ERR_LIMIT (over 512 MiB of
 * text), ZC_ERR_NOMEM. */
int zc_tokenize(const zc_tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                int32_t **ids, int *n_ids);

/* The raw piece for a token after byte decoding (e.g. "<0x0A>" -> "\n",
 * "Ġthe" -> " the", "▁the" -> " the"); control tokens give "". */
int zc_token_to_bytes(const zc_tokenizer *t, int id, char *buf, size_t cap, size_t *len);

/* Streaming UTF-8-safe detokenization. */
typedef struct {
    char pending[8]; /* bytes of a character continued by the next token (at most 3) */
    int n_pending;
    /* Strip the leading space of the first non-empty piece, where the
     * tokenizer adds a dummy space (SentencePiece add_space_prefix,
     * tokenizer.json Strip decoder): as SentencePiece's and HF's decode do,
     * so [BOS, "\u2581Once"] decodes to "Once". Set it to false when
     * continuing text whose start was decoded elsewhere (e.g. feeding only
     * the generated tokens after a prompt). */
    bool at_start;
} zc_tok_decoder;
void zc_tok_decoder_init(zc_tok_decoder *d);
/* Append the text of token `id` to out (cap bytes), writing only complete,
 * well-formed UTF-8 characters; each maximal ill-formed subsequence becomes
 * U+FFFD. Control tokens print nothing. *len gets bytes written.
 * Errors: ZC_ERR_ARG (id outside the vocabulary), ZC_ERR_LIMIT (cap too
 * small; the decoder is then unchanged). */
int zc_tok_decode(const zc_tokenizer *t, zc_tok_decoder *d, int id, char *out, size_t cap, size_t *len);
/* A cap for zc_tok_decode that is always enough for any token. */
size_t zc_tok_decode_bound(const zc_tokenizer *t);
/* End of text: a character still held back is unfinished and becomes U+FFFD
 * (cap >= 3). */
int zc_tok_decoder_flush(zc_tok_decoder *d, char *out, size_t cap, size_t *len);

#endif
