/* Tokenizers: one vocabulary representation, three encoders.
 *
 *   SPM  (GGUF "llama"): llama.cpp's llm_tokenizer_spm. Spaces become U+2581,
 *        adjacent symbols are merged best-score-first, symbols that are not
 *        tokens fall back to <0xXX> byte tokens.
 *   BPE  (GGUF "gpt2"): llama.cpp's llm_tokenizer_bpe. A pre-tokenizer regex
 *        splits the text into words, each word is byte-level encoded (GPT-2's
 *        bytes_to_unicode) and merged lowest-rank-first.
 *   HF   (tokenizer.json, model.type "BPE"): Hugging Face tokenizers' BPE with
 *        the normalizers, pre-tokenizers and decoders real Llama-family files
 *        use; it shares the BPE merge loop and the pre-tokenizers.
 *
 * Special tokens are cut out of the text first (GGUF: llama.cpp's
 * tokenizer_st_partition; tokenizer.json: the added-token matching of HF's
 * AddedVocabulary); every remaining text fragment is encoded on its own.
 * Merging uses a binary heap, so a word of n symbols costs O(n log n).
 */
#include "model/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/gguf.h"
#include "model/unicode.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

/* Token types, numbered as GGUF's tokenizer.ggml.token_type. */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

typedef enum { ALGO_SPM, ALGO_BPE } algo_kind;

/* Normalizer steps of a tokenizer.json, applied in order to each fragment. */
typedef enum { NORM_PREPEND, NORM_REPLACE, NORM_NFC } norm_kind;
typedef struct {
    norm_kind kind;
    char *from, *to; /* REPLACE: every `from` becomes `to`; PREPEND: `to` is prepended; NFC: neither */
    size_t from_len, to_len;
} norm_op;

/* A tokenizer.json added token as its input pattern: the content itself
 * (normalized = false) or the content passed through the normalizer, which
 * is then matched in normalized text. lstrip / rstrip: the whitespace
 * before / after a match goes with it (Phi-3's <|user|>, <|end|>, ...). */
typedef struct {
    char *content, *pat;
    size_t content_len, len;
    int32_t id;
    bool normalized, special, lstrip, rstrip;
} hf_added;

typedef struct {
    uint64_t key; /* merge_key(left, right); 0 marks an empty slot */
    int32_t rank, id;
} merge_slot;

struct zc_tokenizer {
    char *path; /* for error messages */
    algo_kind algo;
    bool hf;    /* tokenizer.json semantics: added tokens, normalizer, unknown characters */
    int n_vocab;

    char *text;        /* all token texts, concatenated */
    size_t *text_off;  /* [n_vocab + 1] */
    float *score;      /* [n_vocab] SPM merge priority */
    uint8_t *type;     /* [n_vocab] TT_* */
    uint8_t *eog;      /* [n_vocab] 1 if generation stops there */
    size_t max_token_len;

    int32_t *hash;     /* [hash_mask + 1] open addressing, token ids, -1 empty */
    size_t hash_mask;

    merge_slot *merges; /* [merge_mask + 1] open addressing, BPE only */
    size_t merge_mask;

    char *piece;       /* decoded bytes of every token, concatenated */
    size_t *piece_off; /* [n_vocab + 1] */
    size_t max_piece;

    int32_t *special;  /* CONTROL/USER/UNKNOWN ids, longest text first (GGUF partition) */
    int n_special;

    /* SPM */
    bool add_space_prefix;
    /* No token has U+2581 right after another character, so no merge can
     * cross the start of a "\u2581word": words merge independently, with
     * the same result and small heaps (SentencePiece vocabularies trained
     * with split_by_whitespace). */
    bool spm_word_split;
    int32_t byte_tok[256]; /* byte fallback id per byte, -1 if none */
    /* BPE */
    bool has_pretok;
    zc_pretok_kind pretok;
    bool byte_level;
    bool ignore_merges;
    /* HF */
    norm_op *norm;
    int n_norm;
    bool byte_fallback, fuse_unk;
    int unk;
    /* Metaspace pre-tokenizer: ' ' -> U+2581, a U+2581 put first (always,
     * or only for text at the start of the input) unless there is one,
     * words cut before each U+2581 (ms_split) */
    bool metaspace, ms_prepend_always, ms_prepend_first, ms_split;
    hf_added *added; /* longest pattern first */
    int n_added;
    bool added_first[256]; /* bytes that start an added-token pattern */
    /* decoding */
    bool strip_first_space;
    /* zc_tokenizer_set_space_prefix(false): no SPM dummy space, no
     * tokenizer.json Prepend, and so no space stripped when decoding */
    bool no_prefix;

    int bos, eos;
    bool add_bos, add_eos;
};

/* ---- small helpers -------------------------------------------------------- */

static const char *tok_str(const zc_tokenizer *t, int id, size_t *len) {
    *len = t->text_off[id + 1] - t->text_off[id];
    return t->text + t->text_off[id];
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix so low bits are usable */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

/* Token id of text s[0..n), or -1. */
static int lookup(const zc_tokenizer *t, const char *s, size_t n) {
    if (n == 0 || n > t->max_token_len) return -1;
    for (size_t i = hash_bytes(s, n) & t->hash_mask;; i = (i + 1) & t->hash_mask) {
        int id = t->hash[i];
        if (id < 0) return -1;
        size_t len;
        const char *ts = tok_str(t, id, &len);
        if (len == n && memcmp(ts, s, n) == 0) return id;
    }
}

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

/* Ids are below 2^24, so the +1 keeps every key nonzero. */
static uint64_t merge_key(int a, int b) { return ((uint64_t)(a + 1) << 32) | (uint32_t)(b + 1); }

static const merge_slot *merge_find(const zc_tokenizer *t, int a, int b) {
    uint64_t key = merge_key(a, b);
    for (size_t i = hash_bytes((const char *)&key, 8) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        if (t->merges[i].key == key) return &t->merges[i];
        if (t->merges[i].key == 0) return NULL;
    }
}

/* Growable byte and id buffers. */
typedef struct {
    char *p;
    size_t n, cap;
} bytes;

static int bytes_reserve(bytes *b, size_t extra) {
    size_t need;
    if (zc_add_size(b->n, extra, &need)) return zc_error(ZC_ERR_LIMIT, "text too long");
    if (need <= b->cap) return ZC_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *p = zc_realloc(b->p, cap);
    if (!p) return ZC_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return ZC_OK;
}

static int bytes_put(bytes *b, const void *s, size_t n) {
    int rc = bytes_reserve(b, n);
    if (rc) return rc;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return ZC_OK;
}

typedef struct {
    int32_t *v;
    size_t n, cap;
} ids;

static int ids_push(ids *a, int32_t id) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *v = zc_realloc(a->v, cap * sizeof *v);
        if (!v) return ZC_ERR_NOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = id;
    return ZC_OK;
}

/* ---- building the vocabulary ---------------------------------------------- */

void zc_tokenizer_free(zc_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_norm; i++) {
        free(t->norm[i].from);
        free(t->norm[i].to);
    }
    free(t->norm);
    for (int i = 0; i < t->n_added; i++) {
        free(t->added[i].content);
        free(t->added[i].pat);
    }
    free(t->added);
    free(t->path);
    free(t->text);
    free(t->text_off);
    free(t->score);
    free(t->type);
    free(t->eog);
    free(t->hash);
    free(t->merges);
    free(t->piece);
    free(t->piece_off);
    free(t->special);
    free(t);
}

static int tok_new(const char *path, algo_kind algo, zc_tokenizer **out) {
    zc_tokenizer *t = zc_calloc(1, sizeof *t);
    if (!t) return ZC_ERR_NOMEM;
    t->path = zc_strdup(path);
    if (!t->path) {
        free(t);
        return zc_error(ZC_ERR_NOMEM, "%s: out of memory", path);
    }
    t->algo = algo;
    t->bos = t->eos = t->unk = -1;
    for (int b = 0; b < 256; b++) t->byte_tok[b] = -1;
    *out = t;
    return ZC_OK;
}

/* Allocate the per-token arrays for n tokens whose texts total text_bytes. */
static int vocab_alloc(zc_tokenizer *t, uint64_t n, size_t text_bytes) {
    if (n == 0) return zc_error(ZC_ERR_FORMAT, "%s: empty vocabulary", t->path);
    if (n > (1u << 24)) return zc_error(ZC_ERR_FORMAT, "%s: vocabulary of %llu tokens is too large", t->path,
                                        (unsigned long long)n);
    t->n_vocab = (int)n;
    t->text = zc_malloc(text_bytes ? text_bytes : 1);
    t->text_off = zc_calloc(n + 1, sizeof *t->text_off);
    t->score = zc_calloc(n, sizeof *t->score);
    t->type = zc_calloc(n, 1);
    t->eog = zc_calloc(n, 1);
    if (!t->text || !t->text_off || !t->score || !t->type || !t->eog) return ZC_ERR_NOMEM;
    return ZC_OK;
}

/* Token texts must be well-formed UTF-8: every tokenizer here compares them
 * with UTF-8 text cut at character boundaries. */
static int check_utf8(const zc_tokenizer *t, const char *s, size_t n, int id) {
    for (size_t i = 0; i < n;) {
        int r = zc_utf8_check((const uint8_t *)s + i, n - i);
        if (r <= 0) return zc_error(ZC_ERR_FORMAT, "%s: token %d is not valid UTF-8", t->path, id);
        i += (size_t)r;
    }
    return ZC_OK;
}

/* Build the text -> id table once all texts are in place; duplicates are errors. */
static int vocab_index(zc_tokenizer *t) {
    size_t cap = pow2_at_least((size_t)t->n_vocab * 2);
    t->hash = zc_malloc(cap * sizeof *t->hash);
    if (!t->hash) return ZC_ERR_NOMEM;
    memset(t->hash, 0xFF, cap * sizeof *t->hash);
    t->hash_mask = cap - 1;
    for (int id = 0; id < t->n_vocab; id++) {
        size_t len = t->text_off[id + 1] - t->text_off[id];
        if (len > t->max_token_len) t->max_token_len = len;
    }
    for (int id = 0; id < t->n_vocab; id++) {
        size_t len;
        const char *s = tok_str(t, id, &len);
        if (len == 0) continue; /* an empty token can never be produced */
        int dup = lookup(t, s, len);
        if (dup >= 0)
            return zc_error(ZC_ERR_FORMAT, "%s: token '%.*s' appears twice (ids %d and %d)", t->path, (int)len, s,
                            dup, id);
        size_t i = hash_bytes(s, len) & t->hash_mask;
        while (t->hash[i] >= 0) i = (i + 1) & t->hash_mask;
        t->hash[i] = id;
    }
    return ZC_OK;
}

static int merges_alloc(zc_tokenizer *t, uint64_t n) {
    if (n > (1u << 26)) return zc_error(ZC_ERR_FORMAT, "%s: %llu merges is too many", t->path, (unsigned long long)n);
    size_t cap = pow2_at_least((size_t)n * 2);
    t->merges = zc_calloc(cap, sizeof *t->merges);
    if (!t->merges) return ZC_ERR_NOMEM;
    t->merge_mask = cap - 1;
    return ZC_OK;
}

/* Merge number `rank`: the tokens `a` and `b` become the token a+b. All three
 * must be in the vocabulary. A repeated pair keeps its first rank in GGUF
 * files (llama.cpp) and its last in tokenizer.json (HF builds a map). */
static int merge_add(zc_tokenizer *t, int rank, const char *a, size_t na, const char *b, size_t nb) {
    int ia = lookup(t, a, na), ib = lookup(t, b, nb), ic = -1;
    if (na + nb <= t->max_token_len) { /* else a + b cannot be a token */
        char small[256], *buf = na + nb <= sizeof small ? small : zc_malloc(na + nb);
        if (!buf) return ZC_ERR_NOMEM;
        memcpy(buf, a, na);
        memcpy(buf + na, b, nb);
        ic = lookup(t, buf, na + nb);
        if (buf != small) free(buf);
    }
    if (ia < 0 || ib < 0 || ic < 0)
        return zc_error(ZC_ERR_FORMAT, "%s: merge %d ('%.*s' '%.*s') references a token not in the vocabulary",
                        t->path, rank, (int)na, a, (int)nb, b);
    uint64_t key = merge_key(ia, ib);
    size_t i = hash_bytes((const char *)&key, 8) & t->merge_mask;
    while (t->merges[i].key != 0 && t->merges[i].key != key) i = (i + 1) & t->merge_mask;
    if (t->merges[i].key == 0 || t->hf) t->merges[i] = (merge_slot){key, rank, ic};
    return ZC_OK;
}

/* Byte value of a "<0xXX>" token text, or -1. */
static int parse_byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decoded bytes of one token into b: what detokenization prints. */
static int piece_of(const zc_tokenizer *t, int id, bool replace_space, bytes *b) {
    size_t len;
    const char *s = tok_str(t, id, &len);
    switch (t->type[id]) {
    case TT_USER:
        return bytes_put(b, s, len);
    case TT_BYTE: {
        uint8_t v = (uint8_t)parse_byte_token(s, len);
        return bytes_put(b, &v, 1);
    }
    case TT_NORMAL:
        break;
    default:
        return ZC_OK; /* control, unknown and unused tokens print nothing */
    }
    if (t->byte_level) {
        for (size_t i = 0; i < len;) {
            size_t adv;
            uint32_t cp = zc_utf8_decode_lenient((const uint8_t *)s + i, len - i, &adv);
            int v = zc_cp_to_byte(cp);
            uint8_t v8 = (uint8_t)v;
            /* A character outside the byte alphabet is printed as itself. */
            int rc = v >= 0 ? bytes_put(b, &v8, 1) : bytes_put(b, s + i, adv);
            if (rc) return rc;
            i += adv;
        }
        return ZC_OK;
    }
    for (size_t i = 0; i < len;) {
        int rc;
        if (replace_space && i + 3 <= len && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
            rc = bytes_put(b, " ", 1);
            i += 3;
        } else {
            rc = bytes_put(b, s + i, 1);
            i++;
        }
        if (rc) return rc;
    }
    return ZC_OK;
}

static int cmp_special(const void *pa, const void *pb, void *ctx) {
    const zc_tokenizer *t = ctx;
    int a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    size_t la = t->text_off[a + 1] - t->text_off[a], lb = t->text_off[b + 1] - t->text_off[b];
    if (la != lb) return la > lb ? -1 : 1;
    return a < b ? -1 : a > b;
}

static bool is_eog_text(const char *s, size_t n) {
    static const char *const names[] = {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|endoftext|>",
                                        "<|end_of_text|>", "<|end|>", "<end_of_turn>", "<EOT>"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0) return true;
    return false;
}

/* Everything derived from the vocabulary: pieces, special-token list,
 * byte fallback table, end-of-generation set. */
static int vocab_finish(zc_tokenizer *t, bool replace_space) {
    int rc;
    bytes pb = {0};
    t->piece_off = zc_calloc((size_t)t->n_vocab + 1, sizeof *t->piece_off);
    t->special = zc_malloc((size_t)t->n_vocab * sizeof *t->special);
    if (!t->piece_off || !t->special) return ZC_ERR_NOMEM;
    for (int id = 0; id < t->n_vocab; id++) {
        if ((rc = piece_of(t, id, replace_space, &pb)) != ZC_OK) {
            free(pb.p);
            return rc;
        }
        t->piece_off[id + 1] = pb.n;
        size_t plen = pb.n - t->piece_off[id];
        if (plen > t->max_piece) t->max_piece = plen;

        int ty = t->type[id];
        if (ty == TT_CONTROL || ty == TT_USER || ty == TT_UNKNOWN) t->special[t->n_special++] = id;
        size_t len;
        const char *s = tok_str(t, id, &len);
        if (ty == TT_BYTE) {
            int v = parse_byte_token(s, len);
            if (v < 0) {
                free(pb.p);
                return zc_error(ZC_ERR_FORMAT, "%s: byte token %d is not of the form <0xXX>", t->path, id);
            }
            if (t->byte_tok[v] < 0) t->byte_tok[v] = id;
        }
        if (is_eog_text(s, len)) t->eog[id] = 1;
    }
    t->piece = pb.p ? pb.p : zc_malloc(1);
    if (!t->piece) return ZC_ERR_NOMEM;
    qsort_r(t->special, (size_t)t->n_special, sizeof *t->special, cmp_special, t);
    /* Without <0xXX> tokens, a byte falls back to a one-byte token, then to <unk>. */
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        if (t->byte_tok[b] < 0) t->byte_tok[b] = lookup(t, &c, 1);
        if (t->byte_tok[b] < 0) t->byte_tok[b] = t->unk;
    }
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->add_bos && t->bos < 0) return zc_error(ZC_ERR_FORMAT, "%s: BOS must be added but no BOS token is set", t->path);
    if (t->add_eos && t->eos < 0) return zc_error(ZC_ERR_FORMAT, "%s: EOS must be added but no EOS token is set", t->path);
    return ZC_OK;
}

/* True if no token contains U+2581 right after a character other than U+2581. */
static bool no_inner_space(const zc_tokenizer *t) {
    static const char sp[] = "\xE2\x96\x81";
    for (int id = 0; id < t->n_vocab; id++) {
        size_t len;
        const char *s = tok_str(t, id, &len);
        for (const char *p = s; (p = memmem(p, len - (size_t)(p - s), sp, 3)) != NULL; p += 3)
            if (p > s && !(p - s >= 3 && !memcmp(p - 3, sp, 3))) return false;
    }
    return true;
}

/* ---- GGUF ----------------------------------------------------------------- */

/* Optional special-token id: absent (or -1 / 0xFFFFFFFF, the "none" that
 * converters write) leaves *id; anything else must be a token id. */
static int gguf_token_id(const zc_gguf *g, const zc_tokenizer *t, const char *key, int *id) {
    if (zc_gguf_find_key(g, key) < 0) return ZC_OK;
    int64_t v;
    if (!zc_gguf_get_i64(g, key, &v)) return zc_error(ZC_ERR_FORMAT, "%s: %s is not an integer", t->path, key);
    if (v == -1 || v == 0xFFFFFFFFll) {
        *id = -1;
        return ZC_OK;
    }
    if (v < 0 || v >= t->n_vocab)
        return zc_error(ZC_ERR_FORMAT, "%s: %s = %lld is outside the vocabulary (%d tokens)", t->path, key,
                        (long long)v, t->n_vocab);
    *id = (int)v;
    return ZC_OK;
}

static int gguf_bool(const zc_gguf *g, const zc_tokenizer *t, const char *key, bool *v) {
    if (zc_gguf_find_key(g, key) < 0) return ZC_OK;
    if (!zc_gguf_get_bool(g, key, v)) return zc_error(ZC_ERR_FORMAT, "%s: %s is not a boolean", t->path, key);
    return ZC_OK;
}

/* Element i of an I32/U32/I8/U8 array as int64 (elements may be unaligned in the mapping). */
static int64_t arr_int(zc_gguf_vtype et, const void *data, uint64_t i) {
    const uint8_t *p = data;
    switch (et) {
    case ZC_GGUF_I32: { int32_t x; memcpy(&x, p + i * 4, 4); return x; }
    case ZC_GGUF_U32: { uint32_t x; memcpy(&x, p + i * 4, 4); return x; }
    case ZC_GGUF_I8: return (int8_t)p[i];
    default: return p[i];
    }
}

static int load_gguf_vocab(const zc_gguf *g, zc_tokenizer *t) {
    int rc;
    zc_gguf_vtype et;
    uint64_t n;
    if (!zc_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, NULL))
        return zc_error(ZC_ERR_FORMAT, "%s: tokenizer.ggml.tokens is missing or not an array", t->path);
    if (et != ZC_GGUF_STRING) return zc_error(ZC_ERR_FORMAT, "%s: tokenizer.ggml.tokens is not a string array", t->path);
    size_t total = 0;
    for (uint64_t i = 0; i < n && i <= (1u << 24); i++) {
        size_t len;
        zc_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &len);
        if (zc_add_size(total, len, &total)) return zc_error(ZC_ERR_LIMIT, "%s: vocabulary too large", t->path);
    }
    if ((rc = vocab_alloc(t, n, total)) != ZC_OK) return rc;

    zc_gguf_vtype st = 0, tt = 0;
    uint64_t ns = 0, nt = 0;
    const void *scores = NULL, *types = NULL;
    if (zc_gguf_find_key(g, "tokenizer.ggml.scores") >= 0) {
        if (!zc_gguf_get_arr(g, "tokenizer.ggml.scores", &st, &ns, &scores) ||
            (st != ZC_GGUF_F32 && st != ZC_GGUF_I32))
            return zc_error(ZC_ERR_FORMAT, "%s: tokenizer.ggml.scores is not an f32 or i32 array", t->path);
        if (ns != n)
            return zc_error(ZC_ERR_FORMAT, "%s: tokenizer.ggml.scores has %llu entries for %llu tokens", t->path,
                            (unsigned long long)ns, (unsigned long long)n);
    }
    if (zc_gguf_find_key(g, "tokenizer.ggml.token_type") >= 0) {
        if (!zc_gguf_get_arr(g, "tokenizer.ggml.token_type", &tt, &nt, &types) ||
            !(tt == ZC_GGUF_I32 || tt == ZC_GGUF_U32 || tt == ZC_GGUF_I8 || tt == ZC_GGUF_U8))
            return zc_error(ZC_ERR_FORMAT, "%s: tokenizer.ggml.token_type is not an integer array", t->path);
        if (nt != n)
            return zc_error(ZC_ERR_FORMAT, "%s: tokenizer.ggml.token_type has %llu entries for %llu tokens", t->path,
                            (unsigned long long)nt, (unsigned long long)n);
    }
    size_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        const char *s = zc_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &len);
        if ((rc = check_utf8(t, s, len, (int)i)) != ZC_OK) return rc;
        memcpy(t->text + off, s, len);
        off += len;
        t->text_off[i + 1] = off;
        if (scores) {
            if (st == ZC_GGUF_F32) memcpy(&t->score[i], (const uint8_t *)scores + i * 4, 4);
            else {
                int32_t v;
                memcpy(&v, (const uint8_t *)scores + i * 4, 4);
                t->score[i] = (float)v;
            }
        }
        int64_t ty = types ? arr_int(tt, types, i) : TT_NORMAL;
        if (ty < TT_NORMAL || ty > TT_BYTE)
            return zc_error(ZC_ERR_FORMAT, "%s: token %llu has token type %lld (expected 1..6)", t->path,
                            (unsigned long long)i, (long long)ty);
        t->type[i] = (uint8_t)ty;
    }
    return vocab_index(t);
}

static int load_gguf_merges(const zc_gguf *g, zc_tokenizer *t) {
    int rc;
    zc_gguf_vtype et;
    uint64_t n;
    if (!zc_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n, NULL) || et != ZC_GGUF_STRING)
        return zc_error(ZC_ERR_FORMAT, "%s: tokenizer.ggml.merges is missing or not a string array", t->path);
    if ((rc = merges_alloc(t, n)) != ZC_OK) return rc;
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        const char *s = zc_gguf_arr_str(g, "tokenizer.ggml.merges", i, &len);
        /* "a b": the first space after the first byte separates the parts
         * (a part may itself be a space in non-byte-level vocabularies). */
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp) return zc_error(ZC_ERR_FORMAT, "%s: merge %llu ('%.*s') is not of the form 'a b'", t->path,
                                 (unsigned long long)i, (int)len, s);
        size_t na = (size_t)(sp - s);
        if ((rc = merge_add(t, (int)i, s, na, sp + 1, len - na - 1)) != ZC_OK) return rc;
    }
    return ZC_OK;
}

/* tokenizer.ggml.pre values that select each pre-tokenizer (as llama.cpp).
 * llama3: a word that is itself a token is taken as is (ignore_merges), and
 * BOS is added. zc_tokenizer_gguf_pre gives the first entry of a (kind,
 * llama3), else of the kind. */
static const struct {
    const char *name;
    zc_pretok_kind kind;
    bool llama3;
} gguf_pretoks[] = {
    {"gpt-2", ZC_PRETOK_GPT2, false},      {"default", ZC_PRETOK_GPT2, false},     {"gpt2", ZC_PRETOK_GPT2, false},
    {"llama-bpe", ZC_PRETOK_LLAMA3, true}, {"llama3", ZC_PRETOK_LLAMA3, true},     {"llama-v3", ZC_PRETOK_LLAMA3, true},
    {"smaug-bpe", ZC_PRETOK_LLAMA3, false}, {"dbrx", ZC_PRETOK_LLAMA3, false},    {"qwen2", ZC_PRETOK_QWEN2, false},
    {"deepseek-r1-qwen", ZC_PRETOK_QWEN2, false}, {"stablelm2", ZC_PRETOK_QWEN2, false},
    {"gpt-4o", ZC_PRETOK_GPT4O, false},    {"llama4", ZC_PRETOK_GPT4O, false},
};

static int gguf_pretok(const zc_gguf *g, zc_tokenizer *t) {
    size_t len = 0;
    const char *pre = zc_gguf_get_str(g, "tokenizer.ggml.pre", &len);
    t->has_pretok = true;
    t->pretok = ZC_PRETOK_GPT2;
    if (!pre) return ZC_OK; /* llama.cpp's fallback is GPT-2's regex */
    for (size_t i = 0; i < sizeof gguf_pretoks / sizeof *gguf_pretoks; i++) {
        if (strlen(gguf_pretoks[i].name) == len && memcmp(gguf_pretoks[i].name, pre, len) == 0) {
            t->pretok = gguf_pretoks[i].kind;
            t->ignore_merges = gguf_pretoks[i].llama3;
            t->add_bos = gguf_pretoks[i].llama3;
            return ZC_OK;
        }
    }
    return zc_error(ZC_ERR_UNSUPPORTED, "%s: pre-tokenizer '%.*s' is not supported", t->path, (int)len, pre);
}

const char *zc_tokenizer_gguf_pre(const zc_tokenizer *t, bool *ignore_merges) {
    *ignore_merges = t->ignore_merges;
    if (t->algo != ALGO_BPE || !t->byte_level || !t->has_pretok || t->byte_fallback) return NULL;
    for (int k = 0; k < t->n_norm; k++) /* NFC is left out, as llama.cpp's converter does */
        if (t->norm[k].kind != NORM_NFC) return NULL;
    const char *name = NULL;
    for (size_t i = 0; i < sizeof gguf_pretoks / sizeof *gguf_pretoks; i++) {
        if (gguf_pretoks[i].kind != t->pretok) continue;
        if (gguf_pretoks[i].llama3 == t->ignore_merges) return gguf_pretoks[i].name;
        if (!name) name = gguf_pretoks[i].name;
    }
    return name;
}

bool zc_tokenizer_gguf_space_prefix(const zc_tokenizer *t) {
    if (!t->hf) return t->add_space_prefix;
    bool prepend = t->metaspace && (t->ms_prepend_always || t->ms_prepend_first);
    for (int k = 0; k < t->n_norm; k++)
        if (t->norm[k].kind == NORM_PREPEND && t->norm[k].to_len == 3 && !memcmp(t->norm[k].to, "\xE2\x96\x81", 3))
            prepend = true;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id == t->bos && t->added[i].normalized) return false;
    return prepend;
}

int zc_tokenizer_from_gguf(const zc_gguf *g, zc_tokenizer **out) {
    *out = NULL;
    const char *path = zc_gguf_path(g);
    size_t mlen = 0;
    const char *model = zc_gguf_get_str(g, "tokenizer.ggml.model", &mlen);
    if (!model) return zc_error(ZC_ERR_FORMAT, "%s: tokenizer.ggml.model is missing", path);
    algo_kind algo;
    if (mlen == 5 && memcmp(model, "llama", 5) == 0) algo = ALGO_SPM;
    else if (mlen == 4 && memcmp(model, "gpt2", 4) == 0) algo = ALGO_BPE;
    else return zc_error(ZC_ERR_UNSUPPORTED, "%s: tokenizer model '%.*s' is not supported", path, (int)mlen, model);

    zc_tokenizer *t;
    int rc = tok_new(path, algo, &t);
    if (rc) return rc;
    if ((rc = load_gguf_vocab(g, t)) != ZC_OK) goto fail;
    if (algo == ALGO_SPM) {
        /* llama.cpp's defaults for SentencePiece vocabularies. */
        t->bos = t->n_vocab > 1 ? 1 : -1;
        t->eos = t->n_vocab > 2 ? 2 : -1;
        t->unk = 0;
        t->add_bos = true;
        t->add_space_prefix = true;
    } else {
        t->byte_level = true;
        /* zipcache.tokenizer.ignore_merges: written by `zipcache convert`
         * where no tokenizer.ggml.pre name implies the tokenizer.json's */
        if ((rc = gguf_pretok(g, t)) != ZC_OK ||
            (rc = gguf_bool(g, t, "zipcache.tokenizer.ignore_merges", &t->ignore_merges)) != ZC_OK ||
            (rc = load_gguf_merges(g, t)) != ZC_OK)
            goto fail;
    }
    int eot = -1, eom = -1;
    if ((rc = gguf_token_id(g, t, "tokenizer.ggml.bos_token_id", &t->bos)) != ZC_OK ||
        (rc = gguf_token_id(g, t, "tokenizer.ggml.eos_token_id", &t->eos)) != ZC_OK ||
        (rc = gguf_token_id(g, t, "tokenizer.ggml.eot_token_id", &eot)) != ZC_OK ||
        (rc = gguf_token_id(g, t, "tokenizer.ggml.eom_token_id", &eom)) != ZC_OK ||
        (rc = gguf_token_id(g, t, "tokenizer.ggml.unknown_token_id", &t->unk)) != ZC_OK ||
        (rc = gguf_bool(g, t, "tokenizer.ggml.add_bos_token", &t->add_bos)) != ZC_OK ||
        (rc = gguf_bool(g, t, "tokenizer.ggml.add_eos_token", &t->add_eos)) != ZC_OK ||
        (rc = gguf_bool(g, t, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix)) != ZC_OK)
        goto fail;
    t->strip_first_space = t->add_space_prefix;
    if ((rc = vocab_finish(t, algo == ALGO_SPM)) != ZC_OK) goto fail;
    if (eot >= 0) t->eog[eot] = 1;
    if (eom >= 0) t->eog[eom] = 1;
    if (algo == ALGO_SPM) t->spm_word_split = no_inner_space(t);
    *out = t;
    return ZC_OK;
fail:
    zc_tokenizer_free(t);
    return rc;
}

/* ---- Hugging Face tokenizer.json ------------------------------------------ */

static bool jstr_is(const zc_json *v, const char *s) {
    const char *x = zc_json_str(v);
    return x && v->len == strlen(s) && memcmp(x, s, v->len) == 0;
}

static const char *jtype(const zc_json *v) { return zc_json_str(zc_json_get(v, "type")); }

static bool jbool_or(const zc_json *v, const char *key, bool dflt) {
    bool b;
    return zc_json_bool(zc_json_get(v, key), &b) ? b : dflt;
}


static int hf_normalizer(zc_tokenizer *t, const zc_json *n) {
    if (!n || n->type == ZC_JSON_NULL) return ZC_OK;
    const char *type = jtype(n);
    if (!type) return zc_error(ZC_ERR_FORMAT, "%s: normalizer without a type", t->path);
    if (!strcmp(type, "Sequence")) {
        const zc_json *list = zc_json_get(n, "normalizers");
        if (!list || list->type != ZC_JSON_ARRAY)
            return zc_error(ZC_ERR_FORMAT, "%s: Sequence normalizer without a normalizers array", t->path);
        for (size_t i = 0; i < list->len; i++) {
            int rc = hf_normalizer(t, &list->items[i]);
            if (rc) return rc;
        }
        return ZC_OK;
    }
    norm_op op = {0};
    const zc_json *to = NULL;
    if (!strcmp(type, "NFC")) { /* Qwen2, Qwen3 */
        op.kind = NORM_NFC;
    } else if (!strcmp(type, "Prepend")) {
        op.kind = NORM_PREPEND;
        to = zc_json_get(n, "prepend");
    } else if (!strcmp(type, "Replace")) {
        op.kind = NORM_REPLACE;
        const zc_json *from = zc_json_get(zc_json_get(n, "pattern"), "String");
        if (!zc_json_str(from) || from->len == 0)
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: Replace normalizer: only non-empty String patterns are supported",
                            t->path);
        op.from = zc_strndup(from->str, from->len);
        op.from_len = from->len;
        to = zc_json_get(n, "content");
    } else {
        return zc_error(ZC_ERR_UNSUPPORTED, "%s: normalizer '%s' is not supported", t->path, type);
    }
    if (op.kind != NORM_NFC && !zc_json_str(to)) {
        free(op.from);
        return zc_error(ZC_ERR_FORMAT, "%s: %s normalizer without its string", t->path, type);
    }
    if (to) {
        op.to = zc_strndup(to->str, to->len);
        op.to_len = to->len;
    }
    norm_op *v = zc_realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *v);
    if (!v || (op.kind == NORM_REPLACE && !op.from) || (op.kind != NORM_NFC && !op.to)) {
        free(op.from);
        free(op.to);
        if (v) t->norm = v;
        return ZC_ERR_NOMEM;
    }
    t->norm = v;
    t->norm[t->n_norm++] = op;
    return ZC_OK;
}

/* Run the normalizer steps, in order, on b. */
static int normalize(const zc_tokenizer *t, bytes *b) {
    for (int k = 0; k < t->n_norm; k++) {
        const norm_op *op = &t->norm[k];
        bytes out = {0};
        int rc = ZC_OK;
        if (op->kind == NORM_NFC) {
            if ((rc = zc_utf8_nfc(b->p, b->n, &out.p, &out.n))) return rc;
            if (!out.p) continue; /* NFC already */
            out.cap = out.n;
        } else if (op->kind == NORM_PREPEND) {
            if (b->n && !t->no_prefix) rc = bytes_put(&out, op->to, op->to_len);
            if (!rc) rc = bytes_put(&out, b->p, b->n);
        } else {
            for (size_t i = 0; !rc && i < b->n;) {
                if (i + op->from_len <= b->n && !memcmp(b->p + i, op->from, op->from_len)) {
                    rc = bytes_put(&out, op->to, op->to_len);
                    i += op->from_len;
                } else {
                    rc = bytes_put(&out, b->p + i, 1);
                    i++;
                }
            }
        }
        if (rc) {
            free(out.p);
            return rc;
        }
        free(b->p);
        *b = out;
    }
    return ZC_OK;
}

static int cmp_added(const void *pa, const void *pb) {
    const hf_added *a = pa, *b = pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Added tokens with normalized = true are looked for in normalized text, as
 * their normalized content (so with a Prepend("\u2581") normalizer
 * "<|end_story|>" is found as "\u2581<|end_story|>"). Longest first. */
static int hf_added_patterns(zc_tokenizer *t) {
    for (int i = 0; i < t->n_added; i++) {
        hf_added *a = &t->added[i];
        free(a->pat);
        a->pat = NULL;
        bytes b = {0};
        int rc = bytes_put(&b, a->content, a->content_len);
        if (!rc && a->normalized) rc = normalize(t, &b);
        a->pat = b.p;
        a->len = b.n;
        if (rc) return rc;
    }
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added);
    memset(t->added_first, 0, sizeof t->added_first);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len) t->added_first[(uint8_t)t->added[i].pat[0]] = true;
    return ZC_OK;
}

/* The regexes of Split pre-tokenizers we match by hand. */
static int regex_kind(const char *re, zc_pretok_kind *kind) {
    static const struct {
        const char *re;
        zc_pretok_kind kind;
    } known[] = {
        {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", ZC_PRETOK_GPT2},
        {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)", ZC_PRETOK_GPT2},
        {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
         "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
         ZC_PRETOK_LLAMA3},
        {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
         "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
         ZC_PRETOK_QWEN2},
        {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
         "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
         "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
         "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
         ZC_PRETOK_GPT4O},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(known[i].re, re)) {
            *kind = known[i].kind;
            return 0;
        }
    return -1;
}

/* A Split on the literal string s changes nothing when the normalizer has
 * already replaced every s by text without s (Gemma 3: Replace ' ' -> '▁',
 * then Split ' ', MergedWithPrevious): the pre-tokenizer sees no s left. */
static bool split_string_is_noop(const zc_tokenizer *t, const char *s, size_t len) {
    bool gone = false;
    for (int k = 0; k < t->n_norm; k++) {
        const norm_op *op = &t->norm[k];
        bool to_has = op->to_len >= len && memmem(op->to, op->to_len, s, len) != NULL;
        if (op->kind == NORM_REPLACE && op->from_len == len && !memcmp(op->from, s, len) && !to_has)
            gone = true;
        else if (to_has)
            gone = false;
    }
    return gone;
}

static int hf_pre_tokenizer(zc_tokenizer *t, const zc_json *p) {
    if (!p || p->type == ZC_JSON_NULL) return ZC_OK;
    const char *type = jtype(p);
    if (!type) return zc_error(ZC_ERR_FORMAT, "%s: pre_tokenizer without a type", t->path);
    if (!strcmp(type, "Sequence")) {
        const zc_json *list = zc_json_get(p, "pretokenizers");
        if (!list || list->type != ZC_JSON_ARRAY)
            return zc_error(ZC_ERR_FORMAT, "%s: Sequence pre_tokenizer without a pretokenizers array", t->path);
        for (size_t i = 0; i < list->len; i++) {
            int rc = hf_pre_tokenizer(t, &list->items[i]);
            if (rc) return rc;
        }
        return ZC_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        if (jbool_or(p, "add_prefix_space", false))
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: ByteLevel add_prefix_space is not supported", t->path);
        t->byte_level = true;
        if (jbool_or(p, "use_regex", true)) {
            if (t->has_pretok)
                return zc_error(ZC_ERR_UNSUPPORTED, "%s: two splitting pre-tokenizers are not supported", t->path);
            t->has_pretok = true;
            t->pretok = ZC_PRETOK_GPT2;
        }
        return ZC_OK;
    }
    if (!strcmp(type, "Split")) {
        const zc_json *str = zc_json_get(zc_json_get(p, "pattern"), "String");
        if (zc_json_str(str) && str->len && split_string_is_noop(t, str->str, str->len)) return ZC_OK;
        const char *re = zc_json_str(zc_json_get(zc_json_get(p, "pattern"), "Regex"));
        const char *behavior = zc_json_str(zc_json_get(p, "behavior"));
        /* Isolated keeps the matches and the text between them as words;
         * Removed with invert keeps only the matches (o200k files write
         * that). The same split for these regexes, which match every
         * character: there is nothing between the matches. */
        bool invert = jbool_or(p, "invert", false);
        if (!re || !behavior ||
            !((!strcmp(behavior, "Isolated") && !invert) || (!strcmp(behavior, "Removed") && invert)))
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: only Split pre-tokenizers with a Regex, behavior Isolated (or "
                            "Removed, inverted), are supported", t->path);
        if (t->has_pretok)
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: two splitting pre-tokenizers are not supported", t->path);
        if (regex_kind(re, &t->pretok))
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: Split regex '%s' is not supported", t->path, re);
        t->has_pretok = true;
        return ZC_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        if (!jstr_is(zc_json_get(p, "replacement"), "\xE2\x96\x81"))
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: Metaspace replacement other than U+2581", t->path);
        const char *scheme = zc_json_str(zc_json_get(p, "prepend_scheme"));
        if (!scheme) scheme = jbool_or(p, "add_prefix_space", true) ? "always" : "never"; /* older files */
        if (strcmp(scheme, "always") && strcmp(scheme, "first") && strcmp(scheme, "never"))
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: Metaspace prepend_scheme '%s'", t->path, scheme);
        t->ms_prepend_always = !strcmp(scheme, "always");
        t->ms_prepend_first = !strcmp(scheme, "first");
        t->ms_split = jbool_or(p, "split", true);
        t->metaspace = true;
        return ZC_OK;
    }
    return zc_error(ZC_ERR_UNSUPPORTED, "%s: pre_tokenizer '%s' is not supported", t->path, type);
}

/* What a tokenizer.json decoder does to each token. */
typedef struct {
    bool replace_space; /* Replace U+2581 -> ' ' */
    bool byte_fallback; /* <0xXX> tokens are bytes */
    bool byte_level;    /* GPT-2 byte alphabet -> bytes */
    bool fused;         /* a Fuse came before: later steps see the whole text */
} hf_dec;

static int hf_decoder(zc_tokenizer *t, const zc_json *d, hf_dec *dec) {
    if (!d || d->type == ZC_JSON_NULL) return ZC_OK;
    const char *type = jtype(d);
    if (!type) return zc_error(ZC_ERR_FORMAT, "%s: decoder without a type", t->path);
    if (!strcmp(type, "Sequence")) {
        const zc_json *list = zc_json_get(d, "decoders");
        if (!list || list->type != ZC_JSON_ARRAY)
            return zc_error(ZC_ERR_FORMAT, "%s: Sequence decoder without a decoders array", t->path);
        for (size_t i = 0; i < list->len; i++) {
            int rc = hf_decoder(t, &list->items[i], dec);
            if (rc) return rc;
        }
    } else if (!strcmp(type, "ByteLevel")) {
        dec->byte_level = true;
    } else if (!strcmp(type, "ByteFallback")) {
        dec->byte_fallback = true;
    } else if (!strcmp(type, "Fuse")) {
        dec->fused = true;
    } else if (!strcmp(type, "Metaspace")) {
        /* U+2581 -> ' ', and the first token loses its leading space unless
         * nothing was prepended. */
        if (!jstr_is(zc_json_get(d, "replacement"), "\xE2\x96\x81"))
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: Metaspace replacement other than U+2581", t->path);
        const char *scheme = zc_json_str(zc_json_get(d, "prepend_scheme"));
        dec->replace_space = true;
        t->strip_first_space = scheme ? strcmp(scheme, "never") != 0 : jbool_or(d, "add_prefix_space", true);
    } else if (!strcmp(type, "Replace")) {
        if (!jstr_is(zc_json_get(zc_json_get(d, "pattern"), "String"), "\xE2\x96\x81") ||
            !jstr_is(zc_json_get(d, "content"), " "))
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: only the Replace decoder U+2581 -> ' ' is supported", t->path);
        dec->replace_space = true;
    } else if (!strcmp(type, "Strip")) {
        /* After Fuse, Strip(' ', 1, 0) removes the leading space of the text:
         * the streaming decoder's at_start rule. */
        int64_t start = 0, stop = 0;
        zc_json_int(zc_json_get(d, "start"), &start);
        zc_json_int(zc_json_get(d, "stop"), &stop);
        if (!dec->fused || !jstr_is(zc_json_get(d, "content"), " ") || start != 1 || stop != 0)
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: only Strip(' ', 1, 0) after Fuse is supported", t->path);
        t->strip_first_space = true;
    } else {
        return zc_error(ZC_ERR_UNSUPPORTED, "%s: decoder '%s' is not supported", t->path, type);
    }
    return ZC_OK;
}

/* Post-processor: a TemplateProcessing "single" template starting with a
 * special token adds BOS; one ending with a special token adds EOS. */
static int hf_post_processor(zc_tokenizer *t, const zc_json *p) {
    if (!p || p->type == ZC_JSON_NULL) return ZC_OK;
    const char *type = jtype(p);
    if (!type) return zc_error(ZC_ERR_FORMAT, "%s: post_processor without a type", t->path);
    if (!strcmp(type, "Sequence")) {
        const zc_json *list = zc_json_get(p, "processors");
        if (!list || list->type != ZC_JSON_ARRAY)
            return zc_error(ZC_ERR_FORMAT, "%s: Sequence post_processor without a processors array", t->path);
        for (size_t i = 0; i < list->len; i++) {
            int rc = hf_post_processor(t, &list->items[i]);
            if (rc) return rc;
        }
        return ZC_OK;
    }
    if (!strcmp(type, "ByteLevel")) return ZC_OK; /* only adjusts offsets */
    if (strcmp(type, "TemplateProcessing"))
        return zc_error(ZC_ERR_UNSUPPORTED, "%s: post_processor '%s' is not supported", t->path, type);
    const zc_json *single = zc_json_get(p, "single");
    if (!single || single->type != ZC_JSON_ARRAY)
        return zc_error(ZC_ERR_FORMAT, "%s: TemplateProcessing without a single template", t->path);
    for (size_t i = 0; i < single->len; i++) {
        const zc_json *sp = zc_json_get(&single->items[i], "SpecialToken");
        if (!sp) continue;
        const zc_json *name = zc_json_get(sp, "id");
        int id = zc_json_str(name) ? lookup(t, name->str, name->len) : -1;
        if (id < 0) return zc_error(ZC_ERR_FORMAT, "%s: TemplateProcessing names an unknown special token", t->path);
        if (i == 0) {
            t->bos = id;
            t->add_bos = true;
        } else if (i == single->len - 1) {
            t->eos = id;
            t->add_eos = true;
        } else {
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: TemplateProcessing with a special token inside", t->path);
        }
    }
    return ZC_OK;
}

/* tokenizer_config.json's token fields are a string or {"content": ...}. */
static int config_token(const zc_tokenizer *t, const zc_json *v, const char *cfg, const char *key, int *id) {
    if (!v || v->type == ZC_JSON_NULL) return ZC_OK;
    if (v->type == ZC_JSON_OBJECT) v = zc_json_get(v, "content");
    if (!zc_json_str(v)) return zc_error(ZC_ERR_FORMAT, "%s: %s is not a string", cfg, key);
    *id = lookup(t, v->str, v->len);
    if (*id < 0) return zc_error(ZC_ERR_FORMAT, "%s: %s '%s' is not in the vocabulary", cfg, key, v->str);
    return ZC_OK;
}

/* tokenizer_config.json beside tokenizer.json, if present, overrides BOS/EOS. */
static int hf_config(zc_tokenizer *t) {
    const char *slash = strrchr(t->path, '/');
    size_t dir = slash ? (size_t)(slash - t->path + 1) : 0;
    char *cfg = zc_malloc(dir + sizeof "tokenizer_config.json");
    if (!cfg) return ZC_ERR_NOMEM;
    memcpy(cfg, t->path, dir);
    strcpy(cfg + dir, "tokenizer_config.json");
    if (access(cfg, F_OK) != 0) {
        free(cfg);
        return ZC_OK;
    }
    char *buf = NULL;
    size_t len;
    zc_json_doc *doc = NULL;
    const zc_json *root;
    int rc = zc_read_file(cfg, 64u << 20, &buf, &len);
    if (!rc) rc = zc_json_parse(buf, len, cfg, &doc, &root);
    if (!rc && root->type != ZC_JSON_OBJECT) rc = zc_error(ZC_ERR_FORMAT, "%s: not a JSON object", cfg);
    if (!rc) rc = config_token(t, zc_json_get(root, "bos_token"), cfg, "bos_token", &t->bos);
    if (!rc) rc = config_token(t, zc_json_get(root, "eos_token"), cfg, "eos_token", &t->eos);
    if (!rc) {
        /* transformers ignores add_*_token when the token itself is unset. */
        t->add_bos = jbool_or(root, "add_bos_token", t->add_bos) && t->bos >= 0;
        t->add_eos = jbool_or(root, "add_eos_token", t->add_eos) && t->eos >= 0;
    }
    zc_json_free(doc);
    free(buf);
    free(cfg);
    return rc;
}

/* Token id of a vocab/added_tokens entry, checked against the id limit. */
static int hf_id(const zc_tokenizer *t, const zc_json *v, const char *what, int64_t *id) {
    if (!zc_json_int(v, id) || *id < 0 || *id >= (1 << 24))
        return zc_error(ZC_ERR_FORMAT, "%s: %s has an invalid token id", t->path, what);
    return ZC_OK;
}

static int hf_vocab(zc_tokenizer *t, const zc_json *model, const zc_json *added, bool byte_tokens) {
    int rc;
    const zc_json *vocab = zc_json_get(model, "vocab");
    if (!vocab || vocab->type != ZC_JSON_OBJECT)
        return zc_error(ZC_ERR_FORMAT, "%s: model.vocab is missing or not an object", t->path);
    if (added && added->type != ZC_JSON_ARRAY)
        return zc_error(ZC_ERR_FORMAT, "%s: added_tokens is not an array", t->path);
    size_t n_added = added ? added->len : 0;
    int64_t n = 0, id;
    for (size_t i = 0; i < vocab->len; i++) {
        if ((rc = hf_id(t, &vocab->items[i], "a model.vocab entry", &id)) != ZC_OK) return rc;
        if (id + 1 > n) n = id + 1;
    }
    for (size_t i = 0; i < n_added; i++) {
        if (!zc_json_str(zc_json_get(&added->items[i], "content")))
            return zc_error(ZC_ERR_FORMAT, "%s: added token %zu has no content", t->path, i);
        if ((rc = hf_id(t, zc_json_get(&added->items[i], "id"), "an added token", &id)) != ZC_OK) return rc;
        if (id + 1 > n) n = id + 1;
    }
    /* Unused ids are allowed (o200k leaves 19 free) but not a table of
     * millions from a few named tokens: "x": 16000000 alone would cost
     * seconds and hundreds of MB. */
    size_t named = vocab->len + n_added, max_unused = named + 1024;
    if ((uint64_t)n > named + max_unused)
        return zc_error(ZC_ERR_FORMAT,
                        "%s: token ids are too sparse: the largest is %lld but only %zu tokens are named (at most "
                        "%zu unused ids are allowed)",
                        t->path, (long long)(n - 1), named, max_unused);
    /* id -> text, from the model vocabulary then the added tokens. */
    const char **txt = zc_calloc((size_t)n ? (size_t)n : 1, sizeof *txt);
    size_t *tlen = zc_calloc((size_t)n ? (size_t)n : 1, sizeof *tlen);
    uint8_t *ty = zc_calloc((size_t)n ? (size_t)n : 1, 1);
    size_t total = 0;
    t->added = zc_calloc(n_added ? n_added : 1, sizeof *t->added);
    rc = (!txt || !tlen || !ty || !t->added) ? ZC_ERR_NOMEM : ZC_OK;
    for (size_t i = 0; !rc && i < vocab->len; i++) {
        zc_json_int(&vocab->items[i], &id);
        if (txt[id]) rc = zc_error(ZC_ERR_FORMAT, "%s: token id %lld is used twice", t->path, (long long)id);
        txt[id] = vocab->keys[i];
        tlen[id] = vocab->key_lens[i];
        ty[id] = byte_tokens && parse_byte_token(txt[id], tlen[id]) >= 0 ? TT_BYTE : TT_NORMAL;
    }
    for (size_t i = 0; !rc && i < n_added; i++) {
        const zc_json *a = &added->items[i], *content = zc_json_get(a, "content");
        zc_json_int(zc_json_get(a, "id"), &id);
        if (txt[id] && (tlen[id] != content->len || memcmp(txt[id], content->str, content->len)))
            rc = zc_error(ZC_ERR_FORMAT, "%s: added token %lld differs from the vocabulary's", t->path, (long long)id);
        if (jbool_or(a, "single_word", false))
            rc = zc_error(ZC_ERR_UNSUPPORTED, "%s: added token %lld: single_word is not supported", t->path,
                          (long long)id);
        txt[id] = content->str;
        tlen[id] = content->len;
        bool special = jbool_or(a, "special", false);
        ty[id] = special ? TT_CONTROL : TT_USER;
        char *copy = zc_strndup(content->str, content->len);
        if (!copy) rc = ZC_ERR_NOMEM;
        else t->added[t->n_added++] = (hf_added){copy, NULL, content->len, 0, (int32_t)id,
                                                 jbool_or(a, "normalized", !special), special,
                                                 jbool_or(a, "lstrip", false), jbool_or(a, "rstrip", false)};
    }
    /* An id that neither names (o200k leaves 199998 and 200000..200017
     * free) stays an unused token without text: never produced, decoded
     * as nothing. */
    for (int64_t i = 0; !rc && i < n; i++) {
        if (!txt[i]) {
            txt[i] = "";
            ty[i] = TT_UNUSED;
        } else if (zc_add_size(total, tlen[i], &total)) {
            rc = zc_error(ZC_ERR_LIMIT, "%s: vocabulary too large", t->path);
        }
    }
    if (!rc) rc = vocab_alloc(t, (uint64_t)n, total);
    size_t off = 0;
    for (int64_t i = 0; !rc && i < n; i++) {
        rc = check_utf8(t, txt[i], tlen[i], (int)i);
        memcpy(t->text + off, txt[i], tlen[i]);
        off += tlen[i];
        t->text_off[i + 1] = off;
        t->type[i] = ty[i];
    }
    free(txt);
    free(tlen);
    free(ty);
    return rc ? rc : vocab_index(t);
}

static int hf_merges(zc_tokenizer *t, const zc_json *merges) {
    if (!merges || merges->type != ZC_JSON_ARRAY)
        return zc_error(ZC_ERR_FORMAT, "%s: model.merges is missing or not an array", t->path);
    int rc = merges_alloc(t, merges->len);
    for (size_t i = 0; !rc && i < merges->len; i++) {
        const zc_json *m = &merges->items[i];
        if (m->type == ZC_JSON_STRING) { /* "a b" */
            const char *sp = memchr(m->str, ' ', m->len);
            if (!sp || memchr(sp + 1, ' ', m->len - (size_t)(sp - m->str) - 1))
                return zc_error(ZC_ERR_FORMAT, "%s: merge %zu is not of the form 'a b'", t->path, i);
            size_t na = (size_t)(sp - m->str);
            rc = merge_add(t, (int)i, m->str, na, sp + 1, m->len - na - 1);
        } else if (m->type == ZC_JSON_ARRAY && m->len == 2 && zc_json_str(&m->items[0]) && zc_json_str(&m->items[1])) {
            rc = merge_add(t, (int)i, m->items[0].str, m->items[0].len, m->items[1].str, m->items[1].len);
        } else {
            return zc_error(ZC_ERR_FORMAT, "%s: merge %zu is neither 'a b' nor [a, b]", t->path, i);
        }
    }
    return rc;
}

static int hf_model_options(zc_tokenizer *t, const zc_json *model) {
    const zc_json *dropout = zc_json_get(model, "dropout");
    if (dropout && dropout->type != ZC_JSON_NULL)
        return zc_error(ZC_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", t->path);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const zc_json *v = zc_json_get(model, affixes[i]);
        if (v && v->type != ZC_JSON_NULL && !(zc_json_str(v) && v->len == 0))
            return zc_error(ZC_ERR_UNSUPPORTED, "%s: BPE %s is not supported", t->path, affixes[i]);
    }
    t->byte_fallback = jbool_or(model, "byte_fallback", false);
    t->fuse_unk = jbool_or(model, "fuse_unk", false);
    t->ignore_merges = jbool_or(model, "ignore_merges", false);
    const zc_json *unk = zc_json_get(model, "unk_token");
    if (zc_json_str(unk)) {
        t->unk = lookup(t, unk->str, unk->len);
        if (t->unk < 0) return zc_error(ZC_ERR_FORMAT, "%s: unk_token '%s' is not in the vocabulary", t->path, unk->str);
    }
    return ZC_OK;
}

int zc_tokenizer_from_hf(const char *path, zc_tokenizer **out) {
    *out = NULL;
    zc_tokenizer *t;
    int rc = tok_new(path, ALGO_BPE, &t);
    if (rc) return rc;
    t->hf = true;
    char *buf = NULL;
    size_t len;
    zc_json_doc *doc = NULL;
    const zc_json *root = NULL, *model = NULL;
    hf_dec dec = {0};
    if ((rc = zc_read_file(path, 1u << 30, &buf, &len)) != ZC_OK) goto done;
    if ((rc = zc_json_parse(buf, len, path, &doc, &root)) != ZC_OK) goto done;
    model = zc_json_get(root, "model");
    if (!model || model->type != ZC_JSON_OBJECT) {
        rc = zc_error(ZC_ERR_FORMAT, "%s: no model object", path);
        goto done;
    }
    const char *type = jtype(model);
    if (type && strcmp(type, "BPE")) {
        rc = zc_error(ZC_ERR_UNSUPPORTED, "%s: model type '%s' is not supported (only BPE)", path, type);
        goto done;
    }
    /* The decoder decides whether <0xXX> tokens are bytes, so it comes first. */
    if ((rc = hf_decoder(t, zc_json_get(root, "decoder"), &dec)) != ZC_OK ||
        (rc = hf_vocab(t, model, zc_json_get(root, "added_tokens"),
                       jbool_or(model, "byte_fallback", false) || dec.byte_fallback)) != ZC_OK ||
        (rc = hf_model_options(t, model)) != ZC_OK || (rc = hf_merges(t, zc_json_get(model, "merges"))) != ZC_OK ||
        (rc = hf_normalizer(t, zc_json_get(root, "normalizer"))) != ZC_OK || (rc = hf_added_patterns(t)) != ZC_OK ||
        (rc = hf_pre_tokenizer(t, zc_json_get(root, "pre_tokenizer"))) != ZC_OK ||
        (rc = hf_post_processor(t, zc_json_get(root, "post_processor"))) != ZC_OK || (rc = hf_config(t)) != ZC_OK)
        goto done;
    if (dec.byte_level != t->byte_level) {
        rc = zc_error(ZC_ERR_UNSUPPORTED, "%s: ByteLevel pre-tokenizer and decoder must come together", path);
        goto done;
    }
    if (t->metaspace && (t->byte_level || t->has_pretok)) {
        rc = zc_error(ZC_ERR_UNSUPPORTED, "%s: Metaspace combined with another pre-tokenizer", path);
        goto done;
    }
    rc = vocab_finish(t, dec.replace_space);
done:
    zc_json_free(doc);
    free(buf);
    if (rc) zc_tokenizer_free(t);
    else *out = t;
    return rc;
}

/* ---- encoding ------------------------------------------------------------- */

/* A pending merge of symbol `left` with the symbol after it. key orders
 * the heap (larger first, ties: smaller left, i.e. leftmost). aux: SPM: the
 * merged byte length; BPE: the merged token. An entry is stale when the
 * pair at `left` no longer has that length (SPM) or no longer merges into
 * that token (BPE): symbols only grow, so that identifies exactly the
 * entries whose pair has changed. 12 bytes: the heap of a long text is
 * large and its traffic dominates. */
typedef struct {
    int32_t key, left, aux;
} qent;

typedef struct {
    const zc_tokenizer *t;
    ids out;
    /* symbols of the current word: token id (BPE), byte offset and length in
     * the word (length 0 = merged away), doubly linked list */
    int32_t *sid, *prev, *next;
    uint32_t *off, *len;
    size_t sym_cap;
    qent *q;
    size_t nq, q_cap;
    bytes text, word;   /* normalized fragment, current word */
    bytes ms;           /* a fragment after the Metaspace pre-tokenizer */
    uint32_t *cps, *wlen; /* [n code points] of the fragment, word lengths */
    uint8_t *flags;
    size_t cp_cap;
} session;

static void session_free(session *s) {
    free(s->sid);
    free(s->prev);
    free(s->next);
    free(s->off);
    free(s->len);
    free(s->q);
    free(s->text.p);
    free(s->word.p);
    free(s->ms.p);
    free(s->cps);
    free(s->wlen);
    free(s->flags);
}

static bool q_before(const qent *x, const qent *y) {
    return x->key > y->key || (x->key == y->key && x->left < y->left);
}

static int q_push(session *s, qent e) {
    if (s->nq == s->q_cap) {
        size_t cap = s->q_cap ? s->q_cap * 2 : 256;
        qent *q = zc_realloc(s->q, cap * sizeof *q);
        if (!q) return ZC_ERR_NOMEM;
        s->q = q;
        s->q_cap = cap;
    }
    size_t i = s->nq++;
    while (i > 0 && q_before(&e, &s->q[(i - 1) / 2])) {
        s->q[i] = s->q[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->q[i] = e;
    return ZC_OK;
}

static qent q_pop(session *s) {
    qent top = s->q[0], last = s->q[--s->nq];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->nq) break;
        if (c + 1 < s->nq && q_before(&s->q[c + 1], &s->q[c])) c++;
        if (!q_before(&s->q[c], &last)) break;
        s->q[i] = s->q[c];
        i = c;
    }
    if (s->nq) s->q[i] = last;
    return top;
}

static int syms_reserve(session *s, size_t n) {
    if (n <= s->sym_cap) return ZC_OK;
    size_t cap = s->sym_cap ? s->sym_cap : 64;
    while (cap < n) cap *= 2;
    int32_t *a = zc_realloc(s->sid, cap * 4);
    if (a) s->sid = a;
    int32_t *b = a ? zc_realloc(s->prev, cap * 4) : NULL;
    if (b) s->prev = b;
    int32_t *c = b ? zc_realloc(s->next, cap * 4) : NULL;
    if (c) s->next = c;
    uint32_t *d = c ? zc_realloc(s->off, cap * 4) : NULL;
    if (d) s->off = d;
    uint32_t *e = d ? zc_realloc(s->len, cap * 4) : NULL;
    if (e) s->len = e;
    if (!e) return ZC_ERR_NOMEM;
    s->sym_cap = cap;
    return ZC_OK;
}

/* Append a symbol (token id, bytes [off, off+len) of the word) to the list. */
static void sym_add(session *s, size_t *n, int32_t id, size_t off, size_t len) {
    size_t i = (*n)++;
    s->sid[i] = id;
    s->off[i] = (uint32_t)off;
    s->len[i] = (uint32_t)len;
    s->prev[i] = (int32_t)i - 1;
    s->next[i] = -1;
    if (i > 0) s->next[i - 1] = (int32_t)i;
}

/* Remove symbol r, merged into its left neighbour l. */
static void sym_merge(session *s, int32_t l, int32_t r) {
    s->len[l] += s->len[r];
    s->len[r] = 0;
    s->next[l] = s->next[r];
    if (s->next[r] >= 0) s->prev[s->next[r]] = l;
}

/* SPM: higher score first. Map the float to an integer with the same order
 * (+0.0f folds -0 into +0, which compare equal as floats). */
static int32_t score_key(float f) {
    f += 0.0f;
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? -(int32_t)(u & 0x7FFFFFFFu) : (int32_t)u;
}

static int spm_try(session *s, const char *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return ZC_OK;
    size_t n = (size_t)s->len[l] + s->len[r];
    int id = lookup(s->t, w + s->off[l], n);
    if (id < 0) return ZC_OK;
    return q_push(s, (qent){score_key(s->t->score[id]), l, (int32_t)n});
}

/* Whether symbol i (not merged yet) is the escaped space U+2581. */
static bool is_escaped_space(const session *s, const char *w, size_t i) {
    return s->len[i] == 3 && !memcmp(w + s->off[i], "\xE2\x96\x81", 3);
}

/* llama.cpp's llm_tokenizer_spm_session on one fragment. */
static int spm_encode(session *s, const char *text, size_t len, bool space_prefix) {
    const zc_tokenizer *t = s->t;
    int rc;
    /* Escape spaces as U+2581, with the dummy prefix. */
    s->word.n = 0;
    if (space_prefix && (rc = bytes_put(&s->word, "\xE2\x96\x81", 3))) return rc;
    for (size_t i = 0; i < len; i++)
        if ((rc = text[i] == ' ' ? bytes_put(&s->word, "\xE2\x96\x81", 3) : bytes_put(&s->word, text + i, 1))) return rc;
    const char *w = s->word.p;
    size_t wn = s->word.n, n = 0;
    if (wn == 0) return ZC_OK;
    if ((rc = syms_reserve(s, wn))) return rc;
    for (size_t i = 0; i < wn;) {
        size_t cl = zc_utf8_len_from_lead((uint8_t)w[i]);
        if (cl > wn - i) cl = wn - i;
        sym_add(s, &n, -1, i, cl);
        i += cl;
    }
    /* Merge each chunk [start, end) on its own; with spm_word_split a chunk
     * ends before every U+2581 that follows another character. */
    for (size_t start = 0, end = 1; end <= n; end++) {
        if (end < n && !(t->spm_word_split && is_escaped_space(s, w, end) && !is_escaped_space(s, w, end - 1)))
            continue;
        s->nq = 0;
        for (size_t i = start + 1; i < end; i++)
            if ((rc = spm_try(s, w, (int32_t)i - 1, (int32_t)i))) return rc;
        while (s->nq) {
            qent e = q_pop(s);
            int32_t r = s->next[e.left];
            if (s->len[e.left] == 0 || r < 0 || s->len[e.left] + s->len[r] != (uint32_t)e.aux)
                continue; /* one side was merged since */
            sym_merge(s, e.left, r);
            if ((rc = spm_try(s, w, s->prev[e.left], e.left)) || (rc = spm_try(s, w, e.left, s->next[e.left])))
                return rc;
        }
        start = end;
    }
    for (int32_t i = 0; i >= 0; i = s->next[i]) {
        int id = lookup(t, w + s->off[i], s->len[i]);
        if (id >= 0) {
            if ((rc = ids_push(&s->out, id))) return rc;
            continue;
        }
        for (uint32_t j = 0; j < s->len[i]; j++) { /* not a token: its bytes */
            int b = t->byte_tok[(uint8_t)w[s->off[i] + j]];
            if (b >= 0 && (rc = ids_push(&s->out, b))) return rc;
        }
    }
    return ZC_OK;
}

static int bpe_try(session *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0 || s->sid[l] < 0 || s->sid[r] < 0) return ZC_OK;
    const merge_slot *m = merge_find(s->t, s->sid[l], s->sid[r]);
    if (!m) return ZC_OK;
    return q_push(s, (qent){-m->rank, l, m->id});
}

/* Initial symbols of a word, Hugging Face style: a character not in the
 * vocabulary becomes its <0xXX> byte tokens (byte_fallback, if all exist),
 * else <unk> (consecutive ones fused into one with fuse_unk), else nothing. */
static size_t hf_symbols(session *s, const char *w, size_t wn) {
    const zc_tokenizer *t = s->t;
    size_t n = 0, unk_off = 0, unk_len = 0;
    for (size_t i = 0; i < wn;) {
        size_t cl = zc_utf8_len_from_lead((uint8_t)w[i]);
        if (cl > wn - i) cl = wn - i;
        int id = lookup(t, w + i, cl);
        bool as_bytes = id < 0 && t->byte_fallback;
        for (size_t j = 0; as_bytes && j < cl; j++) {
            int b = t->byte_tok[(uint8_t)w[i + j]];
            as_bytes = b >= 0 && t->type[b] == TT_BYTE;
        }
        if (id >= 0 || as_bytes) {
            if (unk_len) sym_add(s, &n, t->unk, unk_off, unk_len);
            unk_len = 0;
            if (id >= 0) sym_add(s, &n, id, i, cl);
            else
                for (size_t j = 0; j < cl; j++) sym_add(s, &n, t->byte_tok[(uint8_t)w[i + j]], i + j, 1);
        } else if (t->unk >= 0) {
            if (unk_len && !t->fuse_unk) {
                sym_add(s, &n, t->unk, unk_off, unk_len);
                unk_len = 0;
            }
            if (!unk_len) unk_off = i;
            unk_len += cl;
        }
        i += cl;
    }
    if (unk_len) sym_add(s, &n, t->unk, unk_off, unk_len);
    return n;
}

/* BPE on one word (already byte-level encoded where that applies). */
static int bpe_word(session *s, const char *w, size_t wn) {
    const zc_tokenizer *t = s->t;
    int rc;
    if (t->ignore_merges) {
        int id = lookup(t, w, wn);
        if (id >= 0) return ids_push(&s->out, id);
    }
    if ((rc = syms_reserve(s, wn))) return rc;
    size_t n = 0;
    if (t->hf) {
        n = hf_symbols(s, w, wn);
    } else {
        for (size_t i = 0; i < wn;) {
            size_t cl = zc_utf8_len_from_lead((uint8_t)w[i]);
            if (cl > wn - i) cl = wn - i;
            sym_add(s, &n, lookup(t, w + i, cl), i, cl);
            i += cl;
        }
    }
    if (n == 0) return ZC_OK;
    s->nq = 0;
    for (size_t i = 1; i < n; i++)
        if ((rc = bpe_try(s, (int32_t)i - 1, (int32_t)i))) return rc;
    while (s->nq) {
        qent e = q_pop(s);
        int32_t r = s->next[e.left];
        if (s->len[e.left] == 0 || r < 0 || s->sid[r] < 0) continue;
        const merge_slot *m = merge_find(t, s->sid[e.left], s->sid[r]);
        if (!m || m->id != e.aux) continue; /* stale: a side was merged since */
        sym_merge(s, e.left, r);
        s->sid[e.left] = e.aux;
        if ((rc = bpe_try(s, s->prev[e.left], e.left)) || (rc = bpe_try(s, e.left, s->next[e.left]))) return rc;
    }
    for (int32_t i = 0; i >= 0; i = s->next[i]) {
        if (s->sid[i] >= 0) {
            if ((rc = ids_push(&s->out, s->sid[i]))) return rc;
            continue;
        }
        /* A character with no token (llama.cpp): its bytes, where single-byte tokens exist. */
        for (uint32_t j = 0; j < s->len[i]; j++) {
            int id = lookup(t, w + s->off[i] + j, 1);
            if (id >= 0 && (rc = ids_push(&s->out, id))) return rc;
        }
    }
    return ZC_OK;
}

/* Append cps[0..n) to the current word, UTF-8, through the byte alphabet if byte-level. */
static int word_put_cps(session *s, const uint32_t *cps, size_t n) {
    int rc;
    for (size_t i = 0; i < n; i++) {
        uint8_t u[4], e[4];
        size_t ul = zc_utf8_encode(cps[i], u);
        if (!s->t->byte_level) {
            if ((rc = bytes_put(&s->word, u, ul))) return rc;
            continue;
        }
        for (size_t j = 0; j < ul; j++)
            if ((rc = bytes_put(&s->word, e, zc_utf8_encode(zc_byte_to_cp(u[j]), e)))) return rc;
    }
    return ZC_OK;
}

/* Hugging Face input is Unicode text: ill-formed UTF-8 becomes U+FFFD
 * first, then the normalizer runs. Result in s->text. */
static int hf_normalize(session *s, const char *text, size_t len) {
    int rc;
    s->text.n = 0;
    for (size_t i = 0; i < len;) {
        int r = zc_utf8_check((const uint8_t *)text + i, len - i);
        if (r == 0) r = -(int)(len - i); /* truncated at the end */
        rc = r > 0 ? bytes_put(&s->text, text + i, (size_t)r) : bytes_put(&s->text, "\xEF\xBF\xBD", 3);
        if (rc) return rc;
        i += (size_t)(r > 0 ? r : -r);
    }
    return normalize(s->t, &s->text);
}

/* BPE (GGUF or tokenizer.json) on one text fragment. */
static int bpe_encode(session *s, const char *text, size_t len) {
    const zc_tokenizer *t = s->t;
    int rc;
    /* Code points, decoded as llama.cpp does (ill-formed bytes -> U+FFFD). */
    if (len > s->cp_cap) {
        free(s->cps);
        free(s->wlen);
        free(s->flags);
        s->cps = zc_malloc(len * sizeof *s->cps);
        s->wlen = zc_malloc(len * sizeof *s->wlen);
        s->flags = zc_malloc(len);
        if (!s->cps || !s->wlen || !s->flags) {
            s->cp_cap = 0;
            return ZC_ERR_NOMEM;
        }
        s->cp_cap = len;
    }
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t adv;
        s->cps[n++] = zc_utf8_decode_lenient((const uint8_t *)text + i, len - i, &adv);
        i += adv;
    }
    size_t n_words = 1;
    if (t->has_pretok) n_words = zc_pretok_split(t->pretok, s->cps, n, s->flags, s->wlen);
    else s->wlen[0] = (uint32_t)n;
    const uint32_t *cp = s->cps;
    for (size_t k = 0; k < n_words; k++) {
        s->word.n = 0;
        if ((rc = word_put_cps(s, cp, s->wlen[k]))) return rc;
        cp += s->wlen[k];
        if (s->word.n && (rc = bpe_word(s, s->word.p, s->word.n))) return rc;
    }
    return ZC_OK;
}

/* tokenizer.json Metaspace pre-tokenizer, then BPE on each word.
 * at_input_start: the text begins the input (prepend_scheme "first"). */
static int metaspace_encode(session *s, const char *text, size_t len, bool at_input_start) {
    static const char sp[] = "\xE2\x96\x81";
    const zc_tokenizer *t = s->t;
    int rc = ZC_OK;
    bytes *m = &s->ms;
    m->n = 0;
    for (size_t i = 0; !rc && i < len; i++) rc = text[i] == ' ' ? bytes_put(m, sp, 3) : bytes_put(m, text + i, 1);
    bool prepend = (t->ms_prepend_always || (t->ms_prepend_first && at_input_start)) && !t->no_prefix &&
                   !(m->n >= 3 && !memcmp(m->p, sp, 3));
    if (!rc && prepend && m->n) {
        if ((rc = bytes_reserve(m, 3))) return rc;
        memmove(m->p + 3, m->p, m->n);
        memcpy(m->p, sp, 3);
        m->n += 3;
    }
    /* Words start at each U+2581 (split), else the whole text is one word. */
    for (size_t start = 0, i = 1; !rc && start < m->n; i++) {
        if (i < m->n && !(t->ms_split && i + 3 <= m->n && !memcmp(m->p + i, sp, 3))) continue;
        rc = bpe_word(s, m->p + start, (i < m->n ? i : m->n) - start);
        start = i;
    }
    return rc;
}

/* A piece of the input: raw text [off, off+len) or a special token (id >= 0). */
typedef struct {
    size_t off, len;
    int32_t id;
} frag;

/* llama.cpp's tokenizer_st_partition: for each special token, longest text
 * first, cut every occurrence out of the remaining text fragments.
 * User-defined tokens are always matched; control and unknown tokens only
 * with parse_special. */
static int partition(const zc_tokenizer *t, const char *text, size_t len, bool parse_special, frag **out, size_t *n_out) {
    size_t cap = 16, n = 0;
    frag *a = zc_malloc(cap * sizeof *a), *b = zc_malloc(cap * sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return ZC_ERR_NOMEM;
    }
    if (len) a[n++] = (frag){0, len, -1};
    for (int k = 0; k < t->n_special; k++) {
        int id = t->special[k];
        if (!parse_special && t->type[id] != TT_USER) continue;
        size_t sl;
        const char *st = tok_str(t, id, &sl);
        if (sl == 0) continue;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            /* Each text fragment yields at most 2 * (occurrences) + 1 pieces. */
            size_t pos = a[i].off, end = a[i].off + a[i].len;
            for (;;) {
                const char *hit = a[i].id < 0 ? memmem(text + pos, end - pos, st, sl) : NULL;
                if (m + 2 >= cap) {
                    cap *= 2;
                    frag *na = zc_realloc(a, cap * sizeof *a);
                    if (na) a = na;
                    frag *nb = na ? zc_realloc(b, cap * sizeof *b) : NULL;
                    if (!nb) {
                        free(a);
                        free(b);
                        return ZC_ERR_NOMEM;
                    }
                    b = nb;
                }
                if (!hit) {
                    if (a[i].id >= 0) b[m++] = a[i];
                    else if (end > pos) b[m++] = (frag){pos, end - pos, -1};
                    break;
                }
                size_t h = (size_t)(hit - text);
                if (h > pos) b[m++] = (frag){pos, h - pos, -1};
                b[m++] = (frag){h, sl, id};
                pos = h + sl;
            }
        }
        frag *tmp = a;
        a = b;
        b = tmp;
        n = m;
    }
    free(b);
    *out = a;
    *n_out = n;
    return ZC_OK;
}

/* The byte length of the whitespace character (White_Space, as Rust's
 * char::is_whitespace that HF strips with) that ends at text[end], not
 * reaching back before text[lo]; 0 if none. */
static size_t space_before(const char *text, size_t lo, size_t end) {
    for (size_t k = 1; k <= 3 && k <= end - lo; k++) {
        size_t adv;
        uint32_t cp = zc_utf8_decode_lenient((const uint8_t *)text + end - k, k, &adv);
        if (adv == k && cp != 0xFFFD) return zc_ucd_flags(cp) & ZC_UCD_WHITESPACE ? k : 0;
    }
    return 0;
}

/* The same for the whitespace character that starts at text[pos] (< len). */
static size_t space_at(const char *text, size_t pos, size_t len) {
    size_t adv;
    uint32_t cp = zc_utf8_decode_lenient((const uint8_t *)text + pos, len - pos, &adv);
    return zc_ucd_flags(cp) & ZC_UCD_WHITESPACE ? adv : 0;
}

/* Hugging Face added tokens: leftmost-longest matches of the patterns of
 * one kind (normalized or not) in text[0..len); special ones only with
 * parse_special; the whitespace an lstrip / rstrip token takes is dropped.
 * Appends the pieces to *v (n, cap: its size and capacity). */
static int split_added(const zc_tokenizer *t, const char *text, size_t len, bool normalized, bool parse_special,
                       frag **v, size_t *n, size_t *cap) {
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        int hit = -1;
        for (int k = 0; i < len && t->added_first[(uint8_t)text[i]] && k < t->n_added; k++) {
            const hf_added *a = &t->added[k];
            if (a->normalized != normalized || (a->special && !parse_special) || a->len == 0 || a->len > len - i ||
                memcmp(text + i, a->pat, a->len))
                continue;
            hit = k;
            break;
        }
        if (hit < 0 && i < len) continue;
        if (*n + 2 > *cap) {
            size_t c = *cap ? *cap * 2 : 16;
            frag *nv = zc_realloc(*v, c * sizeof *nv);
            if (!nv) return ZC_ERR_NOMEM;
            *v = nv;
            *cap = c;
        }
        const hf_added *a = hit >= 0 ? &t->added[hit] : NULL;
        size_t end = i, k;
        while (a && a->lstrip && (k = space_before(text, start, end)) > 0) end -= k;
        if (end > start) (*v)[(*n)++] = (frag){start, end - start, -1};
        if (!a) break;
        (*v)[(*n)++] = (frag){i, a->len, a->id};
        start = i + a->len;
        while (a->rstrip && start < len && (k = space_at(text, start, len)) > 0) start += k;
        i = start - 1;
    }
    return ZC_OK;
}

/* tokenizer.json: added tokens are cut out of the raw text (normalized =
 * false ones) and, after normalization, out of each normalized piece; the
 * rest goes through the pre-tokenizer and BPE. */
static int hf_encode(session *s, const char *text, size_t len, bool parse_special) {
    frag *raw = NULL, *norm = NULL;
    size_t n_raw = 0, cap_raw = 0, cap_norm = 0;
    int rc = split_added(s->t, text, len, false, parse_special, &raw, &n_raw, &cap_raw);
    for (size_t i = 0; !rc && i < n_raw; i++) {
        if (raw[i].id >= 0) {
            rc = ids_push(&s->out, raw[i].id);
            continue;
        }
        size_t n_norm = 0;
        if ((rc = hf_normalize(s, text + raw[i].off, raw[i].len)) ||
            (rc = split_added(s->t, s->text.p, s->text.n, true, parse_special, &norm, &n_norm, &cap_norm)))
            break;
        for (size_t j = 0; !rc && j < n_norm; j++) {
            const char *piece = s->text.p + norm[j].off;
            if (norm[j].id >= 0) rc = ids_push(&s->out, norm[j].id);
            else if (s->t->metaspace) rc = metaspace_encode(s, piece, norm[j].len, raw[i].off == 0 && norm[j].off == 0);
            else rc = bpe_encode(s, piece, norm[j].len);
        }
    }
    free(raw);
    free(norm);
    return rc;
}

int zc_tokenize(const zc_tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special, int32_t **ids_out,
                int *n_ids) {
    *ids_out = NULL;
    *n_ids = 0;
    /* Symbol offsets and counts are 32-bit; the escaped text can triple. */
    if (len > (1u << 29)) return zc_error(ZC_ERR_LIMIT, "text of %zu bytes is too long to tokenize", len);
    session s = {.t = t};
    int rc = add_bos && t->bos >= 0 ? ids_push(&s.out, t->bos) : ZC_OK;
    frag *fr = NULL;
    size_t n_fr = 0;
    if (!rc && t->hf) rc = hf_encode(&s, text, len, parse_special);
    else if (!rc) rc = partition(t, text, len, parse_special, &fr, &n_fr);
    bool prev_special = true; /* SPM: a dummy space before text that starts the input or follows a special token */
    for (size_t i = 0; !rc && i < n_fr; i++) {
        if (fr[i].id >= 0) {
            rc = ids_push(&s.out, fr[i].id);
            prev_special = true;
        } else if (t->algo == ALGO_SPM) {
            rc = spm_encode(&s, text + fr[i].off, fr[i].len, t->add_space_prefix && !t->no_prefix && prev_special);
            prev_special = false;
        } else {
            rc = bpe_encode(&s, text + fr[i].off, fr[i].len);
        }
    }
    free(fr);
    if (!rc && s.out.n > (size_t)INT32_MAX) rc = zc_error(ZC_ERR_LIMIT, "too many tokens");
    if (rc) {
        free(s.out.v);
    } else {
        *ids_out = s.out.v ? s.out.v : zc_malloc(sizeof(int32_t));
        *n_ids = (int)s.out.n;
        if (!*ids_out) rc = ZC_ERR_NOMEM;
    }
    session_free(&s);
    return rc;
}

/* ---- queries and decoding ------------------------------------------------- */

int zc_tokenizer_n_vocab(const zc_tokenizer *t) { return t->n_vocab; }
int zc_tokenizer_bos(const zc_tokenizer *t) { return t->bos; }
int zc_tokenizer_eos(const zc_tokenizer *t) { return t->eos; }
bool zc_tokenizer_add_bos(const zc_tokenizer *t) { return t->add_bos; }
bool zc_tokenizer_add_eos(const zc_tokenizer *t) { return t->add_eos; }
bool zc_tokenizer_is_eog(const zc_tokenizer *t, int id) { return id >= 0 && id < t->n_vocab && t->eog[id]; }

int zc_tokenizer_token_id(const zc_tokenizer *t, const char *text, size_t len) { return lookup(t, text, len); }

int zc_tokenizer_set_space_prefix(zc_tokenizer *t, bool on) {
    t->no_prefix = !on;
    return t->hf ? hf_added_patterns(t) : ZC_OK;
}

size_t zc_tok_decode_bound(const zc_tokenizer *t) {
    /* Every byte, held-back ones included, may become a 3-byte U+FFFD. */
    return 3 * (t->max_piece + sizeof ((zc_tok_decoder *)0)->pending);
}

int zc_token_to_bytes(const zc_tokenizer *t, int id, char *buf, size_t cap, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return zc_error(ZC_ERR_ARG, "token id %d is outside the vocabulary (%d)", id, t->n_vocab);
    size_t n = t->piece_off[id + 1] - t->piece_off[id];
    *len = n;
    if (n > cap) return zc_error(ZC_ERR_LIMIT, "token %d needs %zu bytes, buffer has %zu", id, n, cap);
    memcpy(buf, t->piece + t->piece_off[id], n);
    return ZC_OK;
}

void zc_tok_decoder_init(zc_tok_decoder *d) {
    memset(d, 0, sizeof *d);
    d->at_start = true;
}

/* Output cursor that fails (without writing past cap) when full. */
typedef struct {
    char *p;
    size_t n, cap;
    bool full;
} sink;

static void sink_put(sink *o, const void *s, size_t n) {
    if (o->full || n > o->cap - o->n) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

int zc_tok_decode(const zc_tokenizer *t, zc_tok_decoder *d, int id, char *out, size_t cap, size_t *len) {
    *len = 0;
    if (id < 0 || id >= t->n_vocab) return zc_error(ZC_ERR_ARG, "token id %d is outside the vocabulary (%d)", id, t->n_vocab);
    const uint8_t *p = (const uint8_t *)t->piece + t->piece_off[id];
    size_t n = t->piece_off[id + 1] - t->piece_off[id];
    bool at_start = d->at_start;
    if (at_start && n > 0) {
        if (t->strip_first_space && !t->no_prefix && p[0] == ' ') p++, n--;
        at_start = false;
    }
    sink o = {out, 0, cap, false};
    /* Bytes held back from earlier tokens, followed by this piece. */
    uint8_t buf[sizeof d->pending + 4];
    size_t np = (size_t)d->n_pending, i = 0, new_pending = 0;
    memcpy(buf, d->pending, np);
    if (np) {
        size_t extra = n < 4 ? n : 4;
        memcpy(buf + np, p, extra);
        int r = zc_utf8_check(buf, np + extra);
        if (r == 0) { /* still incomplete: hold everything */
            new_pending = np + extra;
            i = n;
        } else {
            /* A held-back prefix is well-formed, so the character or the
             * ill-formed subpart extends past it into this piece. */
            size_t k = (size_t)(r > 0 ? r : -r);
            if (r > 0) sink_put(&o, buf, k);
            else sink_put(&o, "\xEF\xBF\xBD", 3);
            i = k - np;
        }
    }
    while (i < n) {
        int r = zc_utf8_check(p + i, n - i);
        if (r == 0) { /* a character continued by the next token */
            memcpy(buf, p + i, n - i);
            new_pending = n - i;
            break;
        }
        if (r > 0) sink_put(&o, p + i, (size_t)r);
        else sink_put(&o, "\xEF\xBF\xBD", 3);
        i += (size_t)(r > 0 ? r : -r);
    }
    if (o.full) return zc_error(ZC_ERR_LIMIT, "detokenize: buffer of %zu bytes too small for token %d", cap, id);
    memcpy(d->pending, buf, new_pending);
    d->n_pending = (int)new_pending;
    d->at_start = at_start;
    *len = o.n;
    return ZC_OK;
}

int zc_tok_decoder_flush(zc_tok_decoder *d, char *out, size_t cap, size_t *len) {
    *len = 0;
    if (!d->n_pending) return ZC_OK;
    if (cap < 3) return zc_error(ZC_ERR_LIMIT, "detokenize: buffer of %zu bytes too small", cap);
    memcpy(out, "\xEF\xBF\xBD", 3); /* an unfinished character */
    *len = 3;
    d->n_pending = 0;
    return ZC_OK;
}
