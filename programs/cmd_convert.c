/* zipcache convert IN -o OUT.gguf --type TYPE
 *
 * IN is a GGUF file (requantized: every tensor dequantized and quantized
 * again, metadata copied, general.file_type updated) or a Hugging Face
 * llama/mistral/qwen2/qwen3/gemma3/phi3 directory (config.json + safetensors + tokenizer.json).
 * Tensors are produced row by row while the output is written, so memory
 * stays at one row of scratch whatever the model size.
 *
 * Type rules (as llama.cpp): 1-D tensors (norms, biases, rope factors) are
 * always F32; 2-D tensors take the requested type when their row length is
 * a multiple of its block size, else they keep a float type (F16 when the
 * source is F16, F32 otherwise), with a note on stderr.
 *
 * RoPE layout. HF llama checkpoints store Q/K rows in "rotate-half" order
 * (channel i of a head pairs with i + head_dim/2); GGUF llama rotates
 * adjacent pairs (2i, 2i+1). Like llama.cpp's convert_hf_to_gguf.py, which
 * reshapes rows to (n_head, 2, head_dim/2) and swaps the last two axes, we
 * write output row h*hd + 2j + s from input row h*hd + s*hd/2 + j (K with
 * n_kv_heads). Q/K biases get the same permutation. qwen2 and qwen3 are
 * rotate-half in GGUF too (NeoX RoPE), so they are not permuted.
 *
 * Tokenizer conventions written for tokenizer.json input (the GGUF tokenizer
 * reads exactly these):
 *  - BPE with a ByteFallback decoder (SentencePiece-style, '▁' for space):
 *    tokenizer.ggml.model = "llama"; tokens = vocab strings by id ('▁' kept);
 *    scores: a token produced by merge number r (0-based, first merge that
 *    yields it) scores -(r+1), so SentencePiece's "merge the best-scoring
 *    pair" reproduces BPE's "apply the lowest-ranked merge"; tokens no merge
 *    yields (single characters, specials, unreachable pieces) score -1e9.
 *    (llama.cpp's converter writes -1000 for every token of such vocabs,
 *    which loses the merge order.) token_type: 1 normal, 2 the unk_token,
 *    3 special added tokens, 4 other added tokens, 5 padding ids up to
 *    vocab_size (text "[PAD<id>]"), 6 "<0xXX>" byte tokens.
 *    tokenizer.ggml.add_space_prefix: whether the tokenizer.json puts '▁'
 *    before a prompt that follows BOS (zc_tokenizer_gguf_space_prefix):
 *    true for Llama 2, Mistral and Phi-3 (Prepend normalizer, BOS matched
 *    in the raw text), false where BOS is a normalized added token, whose
 *    text the normalizer prefixed instead (tinystories656K; ASSETS.md:
 *    encode without a leading dummy space).
 *  - BPE with a ByteLevel decoder (GPT-2 style, Llama 3, Qwen2, o200k):
 *    tokenizer.ggml.model = "gpt2", tokens as in the vocab, merges as
 *    "a b" strings in rank order, tokenizer.ggml.pre named after the
 *    tokenizer's own pre-tokenizer regex, not the architecture: "llama-bpe"
 *    (Llama 3, SmolLM3), "qwen2", "gpt-4o" (Phi-4-mini's o200k), "gpt-2";
 *    zipcache.tokenizer.ignore_merges = the tokenizer.json's (a name
 *    implies it only for llama.cpp's own pairings: tools/retrieval's Qwen2
 *    regex with ignore_merges has none); token_type 1 normal / 3 special
 *    added / 4 other added / 5 padding. A pre-tokenizer with no GGUF name
 *    is refused. Qwen's NFC normalizer is left out, as llama.cpp does.
 *  - bos/eos ids from config.json (else tokenizer_config.json's bos_token /
 *    eos_token looked up in the vocab), unknown_token_id from the model's
 *    unk_token, add_bos_token / add_eos_token as the tokenizer.json encodes
 *    (its TemplateProcessing, then tokenizer_config.json's add_bos_token /
 *    add_eos_token).
 *  The tokenizer.json is loaded as the engine loads it first, so a
 *  tokenizer it cannot run is refused here rather than written.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cmds.h"
#include "model/gguf.h"
#include "model/hfconfig.h"
#include "model/safetensors.h"
#include "model/tokenizer.h"
#include "quant/ggml_blocks.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"
#include "zipcache.h"

#define TOKENIZER_MAX_BYTES (64u << 20)
#define SCORE_UNMERGED (-1e9f)

enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER = 4, TOK_UNUSED = 5, TOK_BYTE = 6 };

/* ---- tensor conversion jobs ------------------------------------------------ */

/* RoPE permutation: output row r (head h, position p = 2j + s) comes from
 * input row h*hd + s*hd/2 + j. */
static int64_t rope_perm(int64_t r, int64_t hd) {
    int64_t h = r / hd, p = r % hd;
    return h * hd + (p % 2) * (hd / 2) + p / 2;
}

typedef struct {
    const uint8_t *src;  /* source tensor data */
    int src_type, dst_type;
    int64_t ne0;         /* row length in elements */
    size_t src_row_bytes, dst_row_bytes;
    int64_t perm_rows;   /* > 0: permute rows within heads of this many rows */
    int64_t perm_elems;  /* > 0: permute the elements of the (single) row likewise (1-D biases) */
    float add;           /* added to every element (gemma3 norms: HF stores w - 1, GGUF 1 + w) */
    float *row, *tmp;    /* shared scratch, [max ne0] each */
} conv_job;

static int fill_conv(void *ctx, const char *name, int64_t row0, int64_t n_rows, void *dst) {
    const conv_job *j = ctx;
    for (int64_t r = 0; r < n_rows; r++) {
        int64_t sr = j->perm_rows ? rope_perm(row0 + r, j->perm_rows) : row0 + r;
        zc_dequantize_row(j->src_type, j->src + (size_t)sr * j->src_row_bytes, j->row, j->ne0);
        for (int64_t i = 0; j->add != 0 && i < j->ne0; i++) j->row[i] += j->add;
        const float *x = j->row;
        if (j->perm_elems) {
            for (int64_t i = 0; i < j->ne0; i++) j->tmp[i] = j->row[rope_perm(i, j->perm_elems)];
            x = j->tmp;
        }
        int rc = zc_quantize_row(j->dst_type, x, (uint8_t *)dst + (size_t)r * j->dst_row_bytes, j->ne0);
        if (rc) return zc_error_prefix(rc, "tensor '%s'", name);
    }
    return ZC_OK;
}

typedef struct {
    zc_gguf_writer *w;
    int want;           /* requested type */
    conv_job *jobs;     /* [cap] stable: the writer keeps pointers to them */
    int n_jobs, cap;
    int64_t max_ne0;
    int n_kept;         /* tensors kept in a float type */
} converter;

static int pick_type(converter *cv, const char *name, int n_dims, int64_t ne0, int src_type) {
    if (n_dims == 1) return ZC_TYPE_F32;
    int be = zc_type_get(cv->want)->block_elems;
    if (ne0 % be == 0) return cv->want;
    int keep = src_type == ZC_TYPE_F16 ? ZC_TYPE_F16 : ZC_TYPE_F32;
    fprintf(stderr, "zipcache convert: %s: row length %" PRId64 " is not a multiple of %d, kept as %s\n", name, ne0,
            be, zc_type_get(keep)->name);
    cv->n_kept++;
    return keep;
}

/* Queue tensor `name` (ggml dims ne[0..n_dims)) from src data of src_type. */
static int convert_tensor(converter *cv, const char *name, int n_dims, const int64_t *ne, const void *src,
                          int src_type, int64_t perm_heads, float add) {
    int dst = pick_type(cv, name, n_dims, ne[0], src_type);
    int64_t n_rows = 1;
    for (int d = 1; d < n_dims; d++) n_rows *= ne[d];
    if (dst == src_type && perm_heads == 0 && add == 0) {
        size_t bytes, row;
        if (zc_type_row_bytes(src_type, ne[0], &row) || zc_mul_size(row, (size_t)n_rows, &bytes)) return ZC_ERR_LIMIT;
        return zc_gguf_add_tensor(cv->w, name, dst, n_dims, ne, src, bytes);
    }
    if (!zc_type_get(src_type)->can_load)
        return zc_error(ZC_ERR_UNSUPPORTED, "tensor '%s': cannot convert from %s", name, zc_type_get(src_type)->name);
    if (cv->n_jobs == cv->cap) return zc_error(ZC_ERR_LIMIT, "more tensors than expected");
    conv_job *j = &cv->jobs[cv->n_jobs++];
    *j = (conv_job){.src = src, .src_type = src_type, .dst_type = dst, .ne0 = ne[0], .add = add};
    int rc = zc_type_row_bytes(src_type, ne[0], &j->src_row_bytes);
    if (!rc) rc = zc_type_row_bytes(dst, ne[0], &j->dst_row_bytes);
    if (rc) return rc;
    if (perm_heads) {
        int64_t rows = n_dims == 1 ? ne[0] : n_rows;
        if (rows % perm_heads || (rows / perm_heads) % 2)
            return zc_error(ZC_ERR_FORMAT, "tensor '%s': %" PRId64 " rows do not split into %" PRId64
                            " heads of even size", name, rows, perm_heads);
        if (n_dims == 1) j->perm_elems = rows / perm_heads;
        else j->perm_rows = rows / perm_heads;
    }
    if (ne[0] > cv->max_ne0) cv->max_ne0 = ne[0];
    return zc_gguf_add_tensor_fill(cv->w, name, dst, n_dims, ne, fill_conv, j);
}

/* Scratch rows for every job, allocated once the widest row is known. */
static int write_out(converter *cv, const char *out, float **scratch) {
    *scratch = zc_malloc((size_t)(cv->max_ne0 ? cv->max_ne0 : 1) * 2 * sizeof(float));
    if (!*scratch) return ZC_ERR_NOMEM;
    for (int i = 0; i < cv->n_jobs; i++) {
        cv->jobs[i].row = *scratch;
        cv->jobs[i].tmp = *scratch + cv->max_ne0;
    }
    return zc_gguf_write(cv->w, out);
}

/* ---- GGUF -> GGUF ---------------------------------------------------------- */

static int convert_gguf(converter *cv, const char *in, const char *out) {
    zc_gguf *g;
    int rc = zc_gguf_open(in, &g);
    if (rc) return rc;
    float *scratch = NULL;
    cv->cap = zc_gguf_n_tensors(g);
    cv->jobs = zc_calloc((size_t)(cv->cap ? cv->cap : 1), sizeof *cv->jobs);
    if (!cv->jobs) rc = ZC_ERR_NOMEM;
    if (!rc) rc = zc_gguf_copy_kv(cv->w, g);
    if (!rc) rc = zc_gguf_set_file_type(cv->w, cv->want);
    for (int i = 0; i < zc_gguf_n_tensors(g) && !rc; i++) {
        const zc_gguf_tensor *t = zc_gguf_tensor_at(g, i);
        rc = convert_tensor(cv, t->name, t->n_dims, t->ne, t->data, t->type, 0, 0);
        if (rc) rc = zc_error_prefix(rc, "%s", in);
    }
    if (!rc) rc = write_out(cv, out, &scratch);
    free(scratch);
    zc_gguf_close(g);
    return rc;
}

/* ---- tokenizer.json -> tokenizer.ggml.* ------------------------------------ */

typedef struct {
    const char *s;
    size_t len;
    int id;
} vocab_ent;

static int cmp_ent(const void *a, const void *b) {
    const vocab_ent *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int vocab_find(const vocab_ent *v, size_t n, const char *s, size_t len) {
    vocab_ent key = {s, len, 0};
    const vocab_ent *e = bsearch(&key, v, n, sizeof *v, cmp_ent);
    return e ? e->id : -1;
}

typedef struct {
    int n;              /* vocab_size of the model */
    const char **text;  /* [n] token strings (into the JSON docs or pad_text) */
    float *score;       /* [n] */
    int32_t *type;      /* [n] */
    char *pad_text;     /* storage for "[PAD<id>]" strings */
    vocab_ent *sorted;  /* [n_sorted] by text, for merges and special-token lookup */
    size_t n_sorted;
    int unk_id;         /* the model's unk_token, -1 if none */
} vocab;

static void vocab_free(vocab *v) {
    free(v->text);
    free(v->score);
    free(v->type);
    free(v->pad_text);
    free(v->sorted);
}

static bool is_byte_token(const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    return strlen(s) == 6 && !memcmp(s, "<0x", 3) && strchr(hex, s[3]) && strchr(hex, s[4]) && s[5] == '>';
}

/* Merge i as the two pieces (strings "a b" or pairs ["a","b"]). */
static bool merge_pieces(const zc_json *m, const char **a, size_t *alen, const char **b, size_t *blen) {
    if (m->type == ZC_JSON_STRING) {
        const char *sp = memchr(m->str, ' ', m->len);
        if (!sp) return false;
        *a = m->str;
        *alen = (size_t)(sp - m->str);
        *b = sp + 1;
        *blen = m->len - *alen - 1;
        return true;
    }
    if (m->type == ZC_JSON_ARRAY && m->len == 2 && m->items[0].type == ZC_JSON_STRING &&
        m->items[1].type == ZC_JSON_STRING) {
        *a = m->items[0].str;
        *alen = m->items[0].len;
        *b = m->items[1].str;
        *blen = m->items[1].len;
        return true;
    }
    return false;
}

/* Build tokens/types (and scores for SentencePiece-style vocabs). */
static int build_vocab(const char *src, const zc_json *model, const zc_json *added, int n_vocab, bool spm,
                       vocab *v) {
    const zc_json *vj = zc_json_get(model, "vocab");
    if (!vj || vj->type != ZC_JSON_OBJECT) return zc_error(ZC_ERR_FORMAT, "%s: model.vocab is not an object", src);
    memset(v, 0, sizeof *v);
    v->n = n_vocab;
    v->text = zc_calloc((size_t)n_vocab, sizeof *v->text);
    v->score = zc_malloc((size_t)n_vocab * sizeof *v->score);
    v->type = zc_malloc((size_t)n_vocab * sizeof *v->type);
    size_t n_added = added && added->type == ZC_JSON_ARRAY ? added->len : 0;
    v->sorted = zc_malloc((vj->len + n_added + 1) * sizeof *v->sorted);
    if (!v->text || !v->score || !v->type || !v->sorted) return ZC_ERR_NOMEM;
    for (size_t i = 0; i < vj->len; i++) {
        int64_t id;
        if (!zc_json_int(&vj->items[i], &id) || id < 0 || id >= n_vocab)
            return zc_error(ZC_ERR_FORMAT, "%s: token '%.40s' has id outside [0, %d) (vocab_size)", src, vj->keys[i],
                            n_vocab);
        if (v->text[id]) return zc_error(ZC_ERR_FORMAT, "%s: id %" PRId64 " used twice (vocab)", src, id);
        if (strlen(vj->keys[i]) != vj->key_lens[i])
            return zc_error(ZC_ERR_FORMAT, "%s: token %" PRId64 " contains a NUL byte (vocab)", src, id);
        v->text[id] = vj->keys[i];
        v->type[id] = spm && is_byte_token(vj->keys[i]) ? TOK_BYTE : TOK_NORMAL;
        v->score[id] = SCORE_UNMERGED;
        v->sorted[v->n_sorted++] = (vocab_ent){vj->keys[i], vj->key_lens[i], (int)id};
    }
    for (size_t i = 0; i < n_added; i++) {
        const zc_json *a = &added->items[i];
        int64_t id;
        const char *content = zc_json_str(zc_json_get(a, "content"));
        bool special = false;
        zc_json_bool(zc_json_get(a, "special"), &special);
        if (special && zc_json_int(zc_json_get(a, "id"), &id) && id >= n_vocab) { /* no row: dropped */
            fprintf(stderr, "zipcache convert: %s: special token %" PRId64 " '%.40s' is past vocab_size %d, left out\n",
                    src, id, content ? content : "?", n_vocab);
            continue;
        }
        if (!zc_json_int(zc_json_get(a, "id"), &id) || !content || id < 0 || id >= n_vocab ||
            strlen(content) != zc_json_get(a, "content")->len)
            return zc_error(ZC_ERR_FORMAT, "%s: added_tokens[%zu] has no valid id/content (vocab_size %d)", src, i,
                            n_vocab);
        if (v->text[id] && strcmp(v->text[id], content) != 0)
            return zc_error(ZC_ERR_FORMAT, "%s: added token %" PRId64 " '%.40s' differs from the vocab's '%.40s'", src,
                            id, content, v->text[id]);
        if (!v->text[id]) { /* added beyond the BPE vocab (Qwen2's specials) */
            v->text[id] = content;
            v->score[id] = SCORE_UNMERGED;
            v->sorted[v->n_sorted++] = (vocab_ent){content, strlen(content), (int)id};
        }
        v->type[id] = special ? TOK_CONTROL : TOK_USER;
    }
    qsort(v->sorted, v->n_sorted, sizeof *v->sorted, cmp_ent);
    int n_pad = 0;
    for (int id = 0; id < n_vocab; id++) n_pad += !v->text[id];
    v->pad_text = zc_malloc((size_t)n_pad * 24 + 1);
    if (!v->pad_text) return ZC_ERR_NOMEM;
    char *p = v->pad_text;
    for (int id = 0; id < n_vocab; id++)
        if (!v->text[id]) {
            v->text[id] = p;
            p += sprintf(p, "[PAD%d]", id) + 1;
            v->score[id] = SCORE_UNMERGED;
            v->type[id] = TOK_UNUSED;
        }
    const char *unk = zc_json_str(zc_json_get(model, "unk_token"));
    v->unk_id = unk ? vocab_find(v->sorted, v->n_sorted, unk, strlen(unk)) : -1;
    if (v->unk_id >= 0) v->type[v->unk_id] = TOK_UNKNOWN;
    return ZC_OK;
}

/* Scores from merge ranks (SentencePiece-style vocabs). */
static int score_merges(const char *src, const zc_json *merges, vocab *v) {
    char buf[1024];
    for (size_t r = 0; r < merges->len; r++) {
        const char *a, *b;
        size_t alen, blen;
        if (!merge_pieces(&merges->items[r], &a, &alen, &b, &blen))
            return zc_error(ZC_ERR_FORMAT, "%s: merges[%zu] is not \"a b\" or [a, b]", src, r);
        if (alen + blen > sizeof buf) continue; /* pieces over 1 KiB keep SCORE_UNMERGED */
        memcpy(buf, a, alen);
        memcpy(buf + alen, b, blen);
        int id = vocab_find(v->sorted, v->n_sorted, buf, alen + blen);
        if (id >= 0 && v->score[id] == SCORE_UNMERGED) v->score[id] = -(float)(r + 1);
    }
    return ZC_OK;
}

/* GPT-2 style merges as "a b" strings (arrays of pairs are joined). */
static int write_merges(zc_gguf_writer *w, const char *src, const zc_json *merges) {
    const char **strs = zc_malloc((merges->len + 1) * sizeof *strs);
    char *store = NULL;
    size_t total = 0;
    int rc = strs ? ZC_OK : ZC_ERR_NOMEM;
    for (size_t r = 0; r < merges->len && !rc; r++) {
        const char *a, *b;
        size_t alen, blen;
        if (!merge_pieces(&merges->items[r], &a, &alen, &b, &blen))
            rc = zc_error(ZC_ERR_FORMAT, "%s: merges[%zu] is not \"a b\" or [a, b]", src, r);
        else
            total += alen + blen + 2;
    }
    if (!rc && !(store = zc_malloc(total + 1))) rc = ZC_ERR_NOMEM;
    char *p = store;
    for (size_t r = 0; r < merges->len && !rc; r++) {
        const char *a, *b;
        size_t alen, blen;
        merge_pieces(&merges->items[r], &a, &alen, &b, &blen);
        strs[r] = p;
        memcpy(p, a, alen);
        p[alen] = ' ';
        memcpy(p + alen + 1, b, blen);
        p[alen + 1 + blen] = 0;
        p += alen + blen + 2;
    }
    if (!rc) rc = zc_gguf_set_arr_str(w, "tokenizer.ggml.merges", strs, merges->len);
    free(strs);
    free(store);
    return rc;
}

/* Special token id: config.json's, else tokenizer_config.json's token text
 * (a string or {"content": ...}) looked up in the vocab; -1 if neither. */
static int special_id(int from_config, const zc_json *tcfg, const char *key, const vocab *v) {
    if (from_config >= 0) return from_config;
    const zc_json *t = zc_json_get(tcfg, key);
    const char *s = zc_json_str(t) ? zc_json_str(t) : zc_json_str(zc_json_get(t, "content"));
    return s ? vocab_find(v->sorted, v->n_sorted, s, strlen(s)) : -1;
}

static int load_json(const char *path, bool required, char **text, zc_json_doc **doc, const zc_json **root) {
    size_t len;
    *doc = NULL;
    *root = NULL;
    struct stat sb;
    if (!required && stat(path, &sb) != 0) return ZC_OK;
    int rc = zc_read_file(path, TOKENIZER_MAX_BYTES, text, &len);
    if (!rc) rc = zc_json_parse(*text, len, path, doc, root);
    free(*text);
    *text = NULL;
    return rc;
}

static int convert_tokenizer(zc_gguf_writer *w, const char *dir, const zc_hf_config *cfg) {
    char path[4200], *text = NULL;
    zc_json_doc *tdoc = NULL, *cdoc = NULL;
    const zc_json *tok, *tcfg;
    vocab v = {0};
    zc_tokenizer *ht = NULL; /* the engine's reading of tokenizer.json */
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    int rc = load_json(path, true, &text, &tdoc, &tok);
    if (rc) return rc;
    char cpath[4200];
    snprintf(cpath, sizeof cpath, "%s/tokenizer_config.json", dir);
    if ((rc = load_json(cpath, false, &text, &cdoc, &tcfg))) goto out;
    const zc_json *model = zc_json_get(tok, "model");
    const char *mtype = zc_json_str(zc_json_get(model, "type"));
    if (!mtype || strcmp(mtype, "BPE") != 0) {
        rc = zc_error(ZC_ERR_UNSUPPORTED, "%s: tokenizer model type '%s' is not supported (only BPE)", path,
                      mtype ? mtype : "?");
        goto out;
    }
    bool byte_fallback = false;
    zc_json_bool(zc_json_get(model, "byte_fallback"), &byte_fallback);
    const zc_json *merges = zc_json_get(model, "merges");
    if (!merges || merges->type != ZC_JSON_ARRAY) {
        rc = zc_error(ZC_ERR_FORMAT, "%s: model.merges is not an array", path);
        goto out;
    }
    if ((rc = zc_tokenizer_from_hf(path, &ht))) goto out;
    if ((rc = build_vocab(path, model, zc_json_get(tok, "added_tokens"), cfg->n_vocab, byte_fallback, &v))) goto out;
    if (byte_fallback) {
        rc = score_merges(path, merges, &v);
        if (!rc) rc = zc_gguf_set_str(w, "tokenizer.ggml.model", "llama");
        if (!rc) rc = zc_gguf_set_arr(w, "tokenizer.ggml.scores", ZC_GGUF_F32, v.score, (uint64_t)v.n);
        if (!rc) rc = zc_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", zc_tokenizer_gguf_space_prefix(ht));
    } else {
        bool ignore_merges;
        const char *pre = zc_tokenizer_gguf_pre(ht, &ignore_merges);
        rc = pre ? zc_gguf_set_str(w, "tokenizer.ggml.model", "gpt2")
                 : zc_error(ZC_ERR_UNSUPPORTED, "%s: its pre-tokenizer has no tokenizer.ggml.pre equivalent", path);
        if (!rc) rc = zc_gguf_set_str(w, "tokenizer.ggml.pre", pre);
        if (!rc) rc = zc_gguf_set_bool(w, "zipcache.tokenizer.ignore_merges", ignore_merges);
        if (!rc) rc = write_merges(w, path, merges);
    }
    if (!rc) rc = zc_gguf_set_arr_str(w, "tokenizer.ggml.tokens", v.text, (uint64_t)v.n);
    if (!rc) rc = zc_gguf_set_arr(w, "tokenizer.ggml.token_type", ZC_GGUF_I32, v.type, (uint64_t)v.n);
    int bos = special_id(cfg->bos_id, tcfg, "bos_token", &v);
    int eos = special_id(cfg->n_eos ? cfg->eos_ids[0] : -1, tcfg, "eos_token", &v);
    bool add_bos = zc_tokenizer_add_bos(ht), add_eos = zc_tokenizer_add_eos(ht);
    if (!rc && bos >= 0) rc = zc_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (!rc && eos >= 0) rc = zc_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (!rc && v.unk_id >= 0) rc = zc_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v.unk_id);
    if (!rc) rc = zc_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos);
    if (!rc) rc = zc_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", add_eos);
out:
    zc_tokenizer_free(ht);
    vocab_free(&v);
    zc_json_free(tdoc);
    zc_json_free(cdoc);
    return rc;
}

/* ---- HF -> GGUF ------------------------------------------------------------ */

typedef enum { ROWS_E, ROWS_Q, ROWS_KV, ROWS_F, ROWS_HD, ROWS_QKV, ROWS_F2 } dim_kind;

/* One per-layer tensor kind: HF and GGUF name patterns, HF shape [rows, cols]
 * (cols 0 for 1-D), and whether RoPE permutation applies (llama only). */
typedef struct {
    const char *hf, *gguf;
    dim_kind rows, cols;
    bool is_1d, perm, bias, qk_norm;
    enum { ANY, NOT_GEMMA, GEMMA, SPLIT, FUSED } only; /* gemma3 names the norms differently; phi3 fuses
                                                           q/k/v and gate/up */
} layer_kind;

static const layer_kind LAYER_KINDS[] = {
    {"model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", ROWS_E, ROWS_E, true, false, false, false, ANY},
    {"model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", ROWS_Q, ROWS_E, false, true, false, false, SPLIT},
    {"model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", ROWS_KV, ROWS_E, false, true, false, false, SPLIT},
    {"model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", ROWS_KV, ROWS_E, false, false, false, false, SPLIT},
    {"model.layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias", ROWS_Q, ROWS_E, true, true, true, false, ANY},
    {"model.layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias", ROWS_KV, ROWS_E, true, true, true, false, ANY},
    {"model.layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias", ROWS_KV, ROWS_E, true, false, true, false, ANY},
    {"model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", ROWS_E, ROWS_Q, false, false, false, false, ANY},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", ROWS_E, ROWS_E, true, false, false, false, NOT_GEMMA},
    {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.post_attention_norm.weight", ROWS_E, ROWS_E, true, false, false, false, GEMMA},
    {"model.layers.%d.pre_feedforward_layernorm.weight", "blk.%d.ffn_norm.weight", ROWS_E, ROWS_E, true, false, false, false, GEMMA},
    {"model.layers.%d.post_feedforward_layernorm.weight", "blk.%d.post_ffw_norm.weight", ROWS_E, ROWS_E, true, false, false, false, GEMMA},
    {"model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", ROWS_F, ROWS_E, false, false, false, false, SPLIT},
    {"model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", ROWS_F, ROWS_E, false, false, false, false, SPLIT},
    {"model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", ROWS_E, ROWS_F, false, false, false, false, ANY},
    {"model.layers.%d.self_attn.qkv_proj.weight", "blk.%d.attn_qkv.weight", ROWS_QKV, ROWS_E, false, false, false, false, FUSED},
    {"model.layers.%d.mlp.gate_up_proj.weight", "blk.%d.ffn_up.weight", ROWS_F2, ROWS_E, false, false, false, false, FUSED},
    {"model.layers.%d.self_attn.q_norm.weight", "blk.%d.attn_q_norm.weight", ROWS_HD, ROWS_E, true, false, false, true, ANY},
    {"model.layers.%d.self_attn.k_norm.weight", "blk.%d.attn_k_norm.weight", ROWS_HD, ROWS_E, true, false, false, true, ANY},
};

static int64_t dim_of(const zc_hf_config *c, dim_kind k) {
    switch (k) {
    case ROWS_E: return c->n_embd;
    case ROWS_Q: return (int64_t)c->n_heads * c->head_dim;
    case ROWS_KV: return (int64_t)c->n_kv_heads * c->head_dim;
    case ROWS_F: return c->n_ff;
    case ROWS_HD: return c->head_dim;
    case ROWS_QKV: return (int64_t)(c->n_heads + 2 * c->n_kv_heads) * c->head_dim;
    case ROWS_F2: return 2 * (int64_t)c->n_ff;
    }
    return 0;
}

typedef struct {
    const zc_hf_source *src;
    converter *cv;
    bool *used;         /* [n safetensors tensors] consumed by some GGUF tensor */
} hf_ctx;

/* Convert HF tensor hf_name (expected shape [rows] or [rows, cols]) to gguf_name. */
static int hf_tensor(hf_ctx *h, const char *hf_name, const char *gguf_name, int64_t rows, int64_t cols,
                     int64_t perm_heads) {
    const zc_st_tensor *t = zc_st_find(h->src->st, hf_name);
    if (!t) return zc_error(ZC_ERR_FORMAT, "%s: missing tensor '%s'", h->src->dir, hf_name);
    h->used[t - zc_st_tensor_at(h->src->st, 0)] = true;
    int n_dims = cols ? 2 : 1;
    if (t->n_dims != n_dims || t->shape[0] != rows || (cols && t->shape[1] != cols))
        return zc_error(ZC_ERR_FORMAT,
                        "%s: tensor '%s' has %d dims [%" PRId64 ", %" PRId64 "], config.json implies [%" PRId64
                        ", %" PRId64 "]",
                        t->file, hf_name, t->n_dims, t->shape[0], t->n_dims > 1 ? t->shape[1] : 0, rows, cols);
    int64_t ne[2] = {cols ? cols : rows, rows}; /* ggml order: contiguous dimension first */
    size_t len = strlen(hf_name);
    bool norm = len >= 11 && strcmp(hf_name + len - 11, "norm.weight") == 0;
    return convert_tensor(h->cv, gguf_name, n_dims, ne, t->data, t->type, perm_heads,
                          norm && h->src->config.gemma ? 1.0f : 0.0f);
}

static int convert_hf(converter *cv, const char *dir, const char *out) {
    zc_hf_source *src;
    int rc = zc_hf_source_open(dir, &src);
    if (rc) return rc;
    const zc_hf_config *c = &src->config;
    int n_st = zc_st_n_tensors(src->st);
    float *scratch = NULL;
    float *rope = NULL;
    hf_ctx h = {src, cv, zc_calloc((size_t)(n_st ? n_st : 1), sizeof(bool))};
    cv->cap = n_st + 1;
    cv->jobs = zc_calloc((size_t)cv->cap, sizeof *cv->jobs);
    if (!h.used || !cv->jobs) {
        rc = ZC_ERR_NOMEM;
        goto out;
    }
    bool llama = strcmp(c->arch, "llama") == 0 || strcmp(c->arch, "smollm3") == 0; /* adjacent-pair RoPE */
    const char *base = strrchr(dir, '/');
    base = base && base[1] ? base + 1 : dir;
    if ((rc = zc_hf_config_write_gguf(c, base, cv->w)) || (rc = zc_gguf_set_file_type(cv->w, cv->want)) ||
        (rc = convert_tokenizer(cv->w, dir, c)))
        goto out;
    /* Embedding: embed_tokens, or lm_head when tied and only that is stored. */
    const char *embd = zc_st_find(src->st, "model.embed_tokens.weight") || !c->tie_word_embeddings
                           ? "model.embed_tokens.weight"
                           : "lm_head.weight";
    if ((rc = hf_tensor(&h, embd, "token_embd.weight", c->n_vocab, c->n_embd, 0))) goto out;
    if (c->rope_llama3) {
        rope = zc_malloc((size_t)c->head_dim / 2 * sizeof *rope);
        if (!rope) {
            rc = ZC_ERR_NOMEM;
            goto out;
        }
        zc_hf_llama3_rope_freqs(c, rope);
        int64_t ne = c->head_dim / 2;
        if ((rc = zc_gguf_add_tensor(cv->w, "rope_freqs.weight", ZC_TYPE_F32, 1, &ne, rope, (size_t)ne * 4))) goto out;
    }
    if (c->rope_longrope) { /* phi3: as llama.cpp writes them */
        int64_t ne = c->n_rot / 2;
        if ((rc = zc_gguf_add_tensor(cv->w, "rope_factors_long.weight", ZC_TYPE_F32, 1, &ne, c->rope_long,
                                     (size_t)ne * 4)) ||
            (rc = zc_gguf_add_tensor(cv->w, "rope_factors_short.weight", ZC_TYPE_F32, 1, &ne, c->rope_short,
                                     (size_t)ne * 4)))
            goto out;
    }
    for (int l = 0; l < c->n_layers && !rc; l++) {
        for (size_t k = 0; k < sizeof LAYER_KINDS / sizeof LAYER_KINDS[0] && !rc; k++) {
            const layer_kind *lk = &LAYER_KINDS[k];
            if ((lk->bias && !c->attention_bias) || (lk->qk_norm && !c->qk_norm) ||
                (lk->only == GEMMA && !c->gemma) || (lk->only == NOT_GEMMA && c->gemma) ||
                (lk->only == FUSED && !c->fused) || (lk->only == SPLIT && c->fused))
                continue;
            char hn[128], gn[128];
            snprintf(hn, sizeof hn, lk->hf, l);
            snprintf(gn, sizeof gn, lk->gguf, l);
            int64_t heads = !llama || !lk->perm ? 0 : lk->rows == ROWS_Q ? c->n_heads : c->n_kv_heads;
            rc = hf_tensor(&h, hn, gn, dim_of(c, lk->rows), lk->is_1d ? 0 : dim_of(c, lk->cols), heads);
        }
    }
    if (!rc) rc = hf_tensor(&h, "model.norm.weight", "output_norm.weight", c->n_embd, 0, 0);
    if (!rc && !c->tie_word_embeddings) rc = hf_tensor(&h, "lm_head.weight", "output.weight", c->n_vocab, c->n_embd, 0);
    if (!rc && c->tie_word_embeddings && zc_st_find(src->st, "lm_head.weight")) /* tied: a stored copy is redundant */
        h.used[zc_st_find(src->st, "lm_head.weight") - zc_st_tensor_at(src->st, 0)] = true;
    for (int i = 0; i < n_st && !rc; i++) {
        const char *name = zc_st_tensor_at(src->st, i)->name;
        size_t len = strlen(name);
        bool inv_freq = len >= 8 && strcmp(name + len - 8, "inv_freq") == 0; /* recomputed from rope_theta */
        if (!h.used[i] && !inv_freq)
            rc = zc_error(ZC_ERR_FORMAT, "%s: tensor '%s' has no GGUF counterpart for %s", dir, name, c->arch);
    }
    if (!rc) rc = write_out(cv, out, &scratch);
out:
    free(scratch);
    free(rope);
    free(h.used);
    zc_hf_source_free(src);
    return rc;
}

/* ---- command --------------------------------------------------------------- */

static void help(FILE *f) {
    fprintf(f, "usage: zipcache convert IN -o OUT.gguf [--type TYPE]\n"
               "  IN            GGUF file, or Hugging Face directory (config.json, safetensors, tokenizer.json)\n"
               "  -o, --output  output GGUF path (must not be IN)\n"
               "  -t, --type    f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1 (default f16)\n");
}

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *type = "f16";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!cli_value("convert", argc, argv, &i, &out)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--type")) {
            if (!cli_value("convert", argc, argv, &i, &type)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            return CLI_EXIT_OK;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("convert", "unknown option '%s' (try --help)", a);
        } else if (!in) {
            in = a;
        } else {
            return cli_usage_error("convert", "more than one input ('%s' and '%s')", in, a);
        }
    }
    if (!in || !out) return cli_usage_error("convert", "need IN and -o OUT.gguf (try --help)");
    int want = zc_type_from_name(type);
    if (want < 0 || zc_gguf_file_type_of(want) < 0)
        return cli_usage_error("convert", "--type '%s' is not one of f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1",
                               type);
    struct stat si, so;
    if (stat(in, &si) != 0) { /* a missing input is a data error, like every command's */
        fprintf(stderr, "zipcache: %s: cannot open: %s\n", in, strerror(errno));
        return CLI_EXIT_DATA;
    }
    if (stat(out, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
        return cli_usage_error("convert", "output %s is the input", out);
    converter cv = {.w = zc_gguf_writer_new(), .want = want};
    if (!cv.w) return cli_lib_error();
    int rc = S_ISDIR(si.st_mode) ? convert_hf(&cv, in, out) : convert_gguf(&cv, in, out);
    zc_gguf_writer_free(cv.w);
    free(cv.jobs);
    if (rc) return cli_lib_error();
    fprintf(stderr, "zipcache convert: wrote %s (%s%s)\n", out, zc_type_get(want)->name,
            cv.n_kept ? ", some tensors kept as float, see above" : "");
    return CLI_EXIT_OK;
}
