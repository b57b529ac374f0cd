/* The zipcache KV policy: mixed-precision compression by token saliency
 * (He et al., ZipCache, NeurIPS 2024; /work/shared/reference/ZIPCACHE-SPEC.md).
 *
 * Per layer, tokens live in
 *   - compressed segments: runs of tokens compressed together. Per KV head a
 *     segment splits into a salient set (hi bits) and a regular set (lo
 *     bits); each set is its own uniform-width packed array with its own
 *     parameters (attn_packed.h), so attention on it never branches per token:
 *       keys    channelwise per set (min, step per channel; per key group of
 *               cfg->key_group tokens when set)
 *       values  CSTQuant per set: channel normalizer sqrt(max |v|) over the
 *               whole segment (both sets share it, as the reference code),
 *               then (min, step) per token per KV head row of head_dim values
 *   - a window of recent tokens in fp16 (2 bytes per element, counted in
 *     usage().window), awaiting compression.
 *
 * Widths and budget (zip_plan, choose_plan): each segment has a plan, the
 * key and value code widths of its two sets and the key grouping. Given
 * widths (cfg.k_hi_bits...; 0 = 4 hi, 2 lo when any is given) are used as
 * they are, with cfg.salient_ratio or, under a budget (cfg.target_bits,
 * --kv-bits), the largest salient count whose segment stays within it. With
 * all four widths 0 (the default) the policy plans every segment itself:
 * of a measured list, the plans that fill the budget (ZC_ZIP_DEFAULT_BITS
 * when none is given), each with its salient count, and of those the one
 * with the least output error its probe queries would see. The budget counts
 * every bit the segments store per K/V element (codes, fp16 parameters,
 * bitmaps; seg_budget keeps their running total at it). The fp16 window
 * comes on top, bounded: while the context is short the stream gap shortens
 * so that the window holds at most cfg.window_share of the stored bits on
 * average (window_gap); with a share of 0 the gap is fixed. With
 * cfg.rotate_keys the keys are stored rotated by the Walsh-Hadamard matrix
 * (quant/hadamard.h) and the packed part of attention gets the rotated query;
 * under ZC_ZIP_ROTATE_AUTO (the default) each layer chooses at its first
 * compression (choose_plan, or choose_rotation under given widths or
 * --kv-plan fraction) and keeps the choice (zlayer.rot).
 *
 * Value parameters per (token, KV head), spec §15 option (b): 2 fp16 per
 * head_dim values = 32/head_dim extra bits per value element (0.25 bit at
 * d = 128, 0.5 at d = 64, 4 at d = 8) where the reference code's rows of
 * n_kv_heads*head_dim (the j-th salient token of every head in one row) cost
 * 32/(n_kv_heads*head_dim). We pay it because heads then stay independent:
 * a token's parameters never depend on which tokens other heads chose, each
 * head's sets are contiguous for the kernels, and a row's range is that of
 * one head's values instead of the widest head's.
 *
 * Prefill (attend of a prompt chunk: n > 1 tokens starting the sequence, or
 * at least stream_gap of them later on): the block's own attention runs on
 * the fp16 window (zc_attn_forward, which also returns each row's lse) plus
 * the packed segments, merged by log-sum-exp. The probe queries' exact
 * softmax rows are then recomputed from that total lse (one light pass over
 * the probes only), summed over the G query heads of each KV head into
 * column scores, normalized (zc_zip_denom), and the top ceil(r*L) tokens of
 * every (layer, KV head) are salient (the first cfg->sinks positions always).
 * The window is then compressed into one segment and its fp16 copy dropped.
 *
 * Decode (attend of one token, or of a short block later on): packed segments
 * + fp16 window, merged by log-sum-exp. Probe rows of window queries are gathered as the window fills
 * (or, with ZC_KV_DECODE_REFERENCE, only the compressing step's row is used);
 * every window_gap tokens (cfg->stream_gap, or fewer under a budget while
 * the context is short) the window becomes a new segment. Older
 * segments are never touched again: the reference code re-quantizes the
 * whole cache every gap with fresh parameters, so old tokens go through
 * quantize -> dequantize -> quantize again and their error compounds; here a
 * token is quantized exactly once.
 *
 * Sliding-window layers (shape.band, given by zc_kv_create_windowed under
 * --kv-local compress, the default; under exact such layers stay out of the
 * policy, in fp16, kv_window.c): a query at p sees positions
 * p - band + 1..p. Such a layer compresses like a global one (probes,
 * saliency, streaming; the budget, or cfg.local_bits when given: zlayer.budget)
 * but keeps only what a later query can see (band_trim): a prompt chunk
 * leaves out its rows before the next query's band, its tail is stored in
 * even segments of at most half the band (band_piece, compress_pieces),
 * decode segments leave once they end before the band. Attention reads the
 * band from the packed segments, dequantizing only the part of the segment
 * the band starts in that cannot be read packed (banded_attend,
 * banded_decode). Measured both ways in EVALUATION.md ("Sliding-window
 * layers") and BENCHMARKS.md (Gemma 3 1B).
 *
 * truncate: segments are never un-compressed, so the cache can be reset (0)
 * or cut inside its fp16 window (n_keep >= the window start of every layer);
 * anything else is ZC_ERR_UNSUPPORTED with the position that blocks it.
 *
 * Defaults, measured (KL(fp16 || zipcache) per scored token, `zipcache eval
 * ppl -c 512 --chunks 24 --kv zipcache --kl-base ...` on TinyStories
 * validation text: 255-token prefill, 256 decoded tokens per chunk, 4/2 bits,
 * r = 0.6; stories260K / tinystories656K):
 *   decode rule  paper 0.0333 / 0.0531, reference code's last row 0.0336 / 0.0548
 *                (gap 50: 0.0350 / 0.0536 vs 0.0346 / 0.0543)  -> paper (ZC_KV_DECODE_PAPER)
 *   denominator  L - j 0.0333 / 0.0531, probe count 0.0420 / 0.0515 -> L - j (ZC_DENOM_CAUSAL),
 *                the reference code's, as the two models disagree
 * These are zc_kv_config's defaults (--kv-decode-rule, --kv-denom).
 * The integer path of the packed attention (cfg.int8_query, --kv-int8-query; attn_packed.h)
 * is on by default: sets whose key and value widths are 2 or 4 bits, at head_dim % 32 == 0,
 * store their codes tiled (quant/tiled.h) and attention multiplies int8 queries against the
 * key codes and byte P.V weights against the value codes as stored. It moves outputs by
 * <= ~6e-3 relative on random data (tests/test_attn_packed.c), small beside the 2-4-bit
 * value codes' own error. The tiled layouts pad each set to a multiple of 8 tokens (counted
 * in usage().codes). Off stores packed rows and keeps fp32 arithmetic on the codes.
 *
 * Storage of a segment: one blob in the layer's arena (a byte buffer grown by
 * doubling, so steady decode allocates nothing but the rare doubling):
 *   params  fp16, per head g: v_norm[hd], then per set (salient, regular):
 *           k_min[ng][hd], k_step[ng][hd], v_min[n_set], v_step[n_set]
 *   codes   per head, per set: k codes, then v codes, as packed rows ([n_set][hd*bits/8])
 *           or tiled (zc_tiled_bytes(n_set, hd, bits) each)
 *   index   per head: salient bitmap [ceil(n/8)] (bit j = token j of the segment)
 * Blobs start 8-byte aligned; the padding is reported as usage().other.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "attn/attn_packed.h"
#include "kernels/matmul.h"
#include "kv/kv_impl.h"
#include "kv/kv_options.h"
#include "kv/zipcache_internal.h"
#include "quant/ggml_blocks.h"
#include "quant/hadamard.h"
#include "quant/kvquant.h"
#include "quant/saliency.h"
#include "quant/tiled.h"
#include "util/error.h"
#include "util/fp16.h"
#include "util/small.h"

/* How one segment is stored (zc_zip_plan, zipcache_internal.h): widths and
 * key grouping per set, the same for every KV head. */
typedef zc_zip_plan zplan;

typedef struct {
    size_t off;                  /* blob offset in the layer arena (8-aligned) */
    size_t codes, params, index; /* bytes of each part; the blob is their sum */
    int n;                       /* tokens */
    zplan plan;
} seg_info;

typedef struct {
    int n_tok;            /* tokens written */
    int w0;               /* position of the first window token; earlier ones are in segments */
    int wlen;             /* tokens in the window (n_tok - w0) */
    int wcap;             /* window capacity, tokens */
    zc_fp16 *wk, *wv;     /* [wcap][kv_dim] window K and V */
    float *col;           /* [n_kv_heads][wcap] decode probe column sums */
    int *ncol;            /* [wcap] decode probes that saw column j */
    int n_segs;
    size_t segs_cap;
    zc_packed_seg *heads; /* [segs_cap][n_kv_heads] */
    seg_info *info;       /* [segs_cap] */
    uint8_t *arena;       /* segment blobs */
    size_t arena_used, arena_cap;
    float *last_scores;   /* [n_kv_heads][last_n] scores of the latest compression */
    int last_n;
    size_t last_cap;      /* floats */
    int n_stream;         /* compressions of a full decode window */
    int rot;              /* segments hold Hadamard-rotated keys (1) or not (0); -1: not chosen yet
                             (--kv-rotate auto before the layer's first compression, choose_rotation) */
    int band;             /* sliding window (shape.band), 0 = a global layer */
    double budget;        /* stored bits per compressed element (c->budget, or cfg.local_bits on a
                             sliding-window layer); 0 = fixed widths at c->ratio */
    int p0;               /* first position held: segments cover p0..w0-1 (0 but on a sliding-window layer) */
} zlayer;

typedef struct {
    zc_kv_cache base;
    int kv_dim;
    double ratio;             /* salient fraction r (fixed widths without a budget) */
    int auto_plan;            /* widths and key grouping chosen per segment for the budget (zip_plan_choose) */
    double budget;            /* stored bits per compressed element, everything counted; 0 = use ratio */
    zplan fixed;              /* the widths given (auto_plan = 0) */
    zc_probe_cfg probes;      /* from cfg->probes and cfg->seed */
    zlayer *L;                /* [n_layers] */
    /* scratch, grown on demand and reused */
    float *out_p, *lse_p, *lse_t, *lse_w; /* [n][n_heads*hd], [n][n_heads] x3 */
    float *qrot;              /* [n][n_heads*hd] rotated queries (cfg.rotate_keys) */
    size_t cap_q;             /* queries the above hold */
    float *xk, *xv;           /* [n][kv_dim] window in fp32 for the quantizers */
    float *sc;                /* [n_kv_heads][n] scores */
    uint8_t *cbuf;            /* [n][head_dim] bytes: one set's packed rows on their way to the tiled layout */
    int32_t *ibuf;            /* [3][n]: salient rows | regular rows | probes; denominators use the first third before the rows are built */
    uint64_t *u64;            /* [n] zc_sal_select scratch */
    float *kq;                /* [n][head_dim] one head's keys or values as stored, decoded (the trials) */
    size_t cap_w;             /* tokens the above hold */
    float *hk, *hv;           /* [rows][kv_dim] a sliding-window layer's visible tokens in fp32 (banded_attend) */
    size_t cap_h;             /* floats each of the above holds */
    float *dk, *dv;           /* [n][head_dim] one head's sets of a segment, dequantized (seg_dequant) */
    size_t cap_d;             /* floats each of the above holds */
    zc_packed_seg *views;     /* [n_kv_heads] the visible part of a segment a decode step's band starts in */
    int keep_seg, keep_pos;   /* compress_pieces dropping rows: the segments from keep_seg on, from position
                                 keep_pos, stay (seg_budget counts those); keep_pos -1 otherwise */
    zc_attn_scratch s_fwd, s_packed;
} kv_zip;

static const zc_kv_ops ZIP_OPS;

/* ---- small helpers ------------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elsize) {
    if (need <= *cap) return ZC_OK;
    size_t n = *cap * 2 > need ? *cap * 2 : need, bytes;
    if (zc_mul_size(n, elsize, &bytes)) return zc_error(ZC_ERR_LIMIT, "kv zipcache: buffer too large");
    void *q = zc_realloc(*p, bytes);
    if (!q) return ZC_ERR_NOMEM;
    *p = q;
    *cap = n;
    return ZC_OK;
}

static double unit_rand(uint64_t *state) { /* uniform in [0, 1) */
    *state = zc_splitmix64_at(*state);
    return (double)(*state >> 11) * (1.0 / 9007199254740992.0);
}

static int key_groups(const zplan *p, int n) {
    if (n == 0) return 0;
    return p->kg > 0 ? (n + p->kg - 1) / p->kg : 1;
}

static int set_bits(const zplan *p, int st, int keys) { return keys ? p->kb[st] : p->vb[st]; }

/* Are set st's codes stored tiled (attn_packed.h), for the integer path? */
static int set_tiled(const kv_zip *c, const zplan *p, int st) {
    int hd = c->base.shape.head_dim;
    return c->base.cfg.int8_query && zc_tiled_ok(hd, p->kb[st]) && zc_tiled_ok(hd, p->vb[st]);
}

/* Bytes of the K (keys = 1) or V codes of m tokens of set st. */
static size_t set_code_bytes(const kv_zip *c, const zplan *p, int st, int m, int keys) {
    return zc_packed_code_bytes(m, c->base.shape.head_dim, set_bits(p, st, keys), set_tiled(c, p, st));
}

/* ---- segment layout ------------------------------------------------------ */

/* Bytes of each part of a segment of n tokens with ns salient per head. */
static void seg_sizes(const kv_zip *c, const zplan *p, int n, int ns, seg_info *si) {
    int hd = c->base.shape.head_dim, nkv = c->base.shape.n_kv_heads;
    size_t halves = (size_t)hd, codes = 0;
    for (int st = 0; st < 2; st++) {
        int m = st == 0 ? ns : n - ns;
        halves += 2 * (size_t)key_groups(p, m) * hd + 2 * (size_t)m;
        codes += set_code_bytes(c, p, st, m, 1) + set_code_bytes(c, p, st, m, 0);
    }
    si->n = n;
    si->plan = *p;
    si->params = (size_t)nkv * halves * sizeof(zc_fp16);
    si->codes = (size_t)nkv * codes;
    si->index = (size_t)nkv * (((size_t)n + 7) / 8);
}

/* Point the zc_packed_seg of every head of segment s into the arena. The
 * sets' n, bits and key_group are already filled. */
static void seg_bind(const kv_zip *c, zlayer *L, int s) {
    int hd = c->base.shape.head_dim, nkv = c->base.shape.n_kv_heads;
    uint8_t *base = L->arena + L->info[s].off;
    zc_fp16 *h = (zc_fp16 *)base;
    uint8_t *b = base + L->info[s].params;
    for (int g = 0; g < nkv; g++) {
        zc_packed_seg *seg = &L->heads[(size_t)s * nkv + g];
        seg->v_norm = h;
        h += hd;
        for (int st = 0; st < 2; st++) {
            zc_packed_set *set = &seg->set[st];
            size_t ng = (size_t)key_groups(&L->info[s].plan, set->n);
            set->k_min = h;
            h += ng * hd;
            set->k_step = h;
            h += ng * hd;
            set->v_min = h;
            h += set->n;
            set->v_step = h;
            h += set->n;
        }
    }
    for (int g = 0; g < nkv; g++)
        for (int st = 0; st < 2; st++) {
            zc_packed_set *set = &L->heads[(size_t)s * nkv + g].set[st];
            set->k_codes = b;
            b += set_code_bytes(c, &L->info[s].plan, st, set->n, 1);
            set->v_codes = b;
            b += set_code_bytes(c, &L->info[s].plan, st, set->n, 0);
        }
}

static uint8_t *seg_bitmap(const zlayer *L, int s, int g) {
    const seg_info *si = &L->info[s];
    return L->arena + si->off + si->params + si->codes + (size_t)g * (((size_t)si->n + 7) / 8);
}

/* ---- window -------------------------------------------------------------- */

static int window_reserve(kv_zip *c, zlayer *L, int need) {
    if (need <= L->wcap) return ZC_OK;
    int nkv = c->base.shape.n_kv_heads;
    int cap = L->wcap * 2 > need ? L->wcap * 2 : need;
    if (cap < c->base.cfg.stream_gap) cap = c->base.cfg.stream_gap;
    if (cap > c->base.shape.max_ctx) cap = c->base.shape.max_ctx;
    if (cap < need) cap = need;
    size_t rows = (size_t)cap * c->kv_dim;
    zc_fp16 *wk = zc_realloc(L->wk, rows * sizeof(zc_fp16));
    if (!wk) return ZC_ERR_NOMEM;
    L->wk = wk;
    zc_fp16 *wv = zc_realloc(L->wv, rows * sizeof(zc_fp16));
    if (!wv) return ZC_ERR_NOMEM;
    L->wv = wv;
    /* ncol before col: once col's rows move to the new stride, wcap must
     * follow in the same step, so nothing may fail after the move. */
    int *ncol = zc_realloc(L->ncol, (size_t)cap * sizeof(int));
    if (!ncol) return ZC_ERR_NOMEM;
    memset(ncol + L->wcap, 0, (size_t)(cap - L->wcap) * sizeof(int));
    L->ncol = ncol;
    float *col = zc_realloc(L->col, (size_t)nkv * cap * sizeof(float));
    if (!col) return ZC_ERR_NOMEM;
    /* rows of col are [wcap] long: move head rows to their new stride (last
     * first, as they move up), and zero the new columns */
    for (int g = nkv - 1; g >= 0; g--) {
        memmove(col + (size_t)g * cap, col + (size_t)g * L->wcap, (size_t)L->wcap * sizeof(float));
        memset(col + (size_t)g * cap + L->wcap, 0, (size_t)(cap - L->wcap) * sizeof(float));
    }
    L->col = col;
    L->wcap = cap;
    return ZC_OK;
}

static void probe_stats_clear(kv_zip *c, zlayer *L) {
    if (!L->wcap) return; /* no window allocated yet (a reset before any write) */
    memset(L->col, 0, (size_t)c->base.shape.n_kv_heads * L->wcap * sizeof(float));
    memset(L->ncol, 0, (size_t)L->wcap * sizeof(int));
}

/* ---- scratch ------------------------------------------------------------- */

static int reserve_queries(kv_zip *c, int n) {
    if ((size_t)n <= c->cap_q) return ZC_OK;
    size_t nh = (size_t)c->base.shape.n_heads, hd = (size_t)c->base.shape.head_dim, cap = (size_t)n;
    float *a = zc_realloc(c->out_p, cap * nh * hd * sizeof(float));
    if (!a) return ZC_ERR_NOMEM;
    c->out_p = a;
    if (c->base.cfg.rotate_keys != ZC_ZIP_ROTATE_OFF) {
        a = zc_realloc(c->qrot, cap * nh * hd * sizeof(float));
        if (!a) return ZC_ERR_NOMEM;
        c->qrot = a;
    }
    float **ls[3] = {&c->lse_p, &c->lse_t, &c->lse_w};
    for (int i = 0; i < 3; i++) {
        float *b = zc_realloc(*ls[i], cap * nh * sizeof(float));
        if (!b) return ZC_ERR_NOMEM;
        *ls[i] = b;
    }
    c->cap_q = cap;
    return ZC_OK;
}

static int reserve_window_scratch(kv_zip *c, int n) {
    if ((size_t)n <= c->cap_w) return ZC_OK;
    size_t cap = (size_t)n, nkv = (size_t)c->base.shape.n_kv_heads;
    float *xk = zc_realloc(c->xk, cap * c->kv_dim * sizeof(float));
    if (!xk) return ZC_ERR_NOMEM;
    c->xk = xk;
    float *xv = zc_realloc(c->xv, cap * c->kv_dim * sizeof(float));
    if (!xv) return ZC_ERR_NOMEM;
    c->xv = xv;
    float *sc = zc_realloc(c->sc, cap * nkv * sizeof(float));
    if (!sc) return ZC_ERR_NOMEM;
    c->sc = sc;
    uint8_t *cb = zc_realloc(c->cbuf, cap * (size_t)c->base.shape.head_dim);
    if (!cb) return ZC_ERR_NOMEM;
    c->cbuf = cb;
    int32_t *ib = zc_realloc(c->ibuf, 3 * cap * sizeof(int32_t));
    if (!ib) return ZC_ERR_NOMEM;
    c->ibuf = ib;
    uint64_t *u = zc_realloc(c->u64, cap * sizeof(uint64_t));
    if (!u) return ZC_ERR_NOMEM;
    c->u64 = u;
    if (c->base.cfg.rotate_keys == ZC_ZIP_ROTATE_AUTO || c->auto_plan) {
        float *kq = zc_realloc(c->kq, cap * (size_t)c->base.shape.head_dim * sizeof(float));
        if (!kq) return ZC_ERR_NOMEM;
        c->kq = kq;
    }
    c->cap_w = cap;
    return ZC_OK;
}

/* ---- saliency -------------------------------------------------------------- */

/* Is the decode query at window index i (position pos) a probe, in a window
 * compressed at gap tokens? Algorithm 3: the window's last recent_frac of gap
 * queries, plus each query with probability random_frac (a hash of seed and
 * position, so every layer agrees and runs repeat). */
static int decode_probe(const kv_zip *c, int i, int pos, int gap) {
    const zc_probe_cfg *p = &c->probes;
    if (p->kind == ZC_PROBES_ALL) return 1;
    if (p->kind != ZC_PROBES_RANDOM && i >= gap - (int)ceil(p->recent_frac * gap - 1e-9)) return 1;
    if (p->kind == ZC_PROBES_RECENT) return 0;
    uint64_t st = p->seed ^ 0x5bd1e9955bd1e995ull ^ (uint64_t)(unsigned)pos;
    return unit_rand(&st) < p->random_frac;
}

/* ---- compression ----------------------------------------------------------- */

/* Room for `need` segments in both per-segment arrays. */
static int segs_reserve(zlayer *L, int nkv, int need) {
    if ((size_t)need <= L->segs_cap) return ZC_OK;
    size_t cap = L->segs_cap * 2 > (size_t)need ? L->segs_cap * 2 : (size_t)need;
    zc_packed_seg *h = zc_realloc(L->heads, cap * nkv * sizeof *h);
    if (!h) return ZC_ERR_NOMEM;
    L->heads = h;
    seg_info *i = zc_realloc(L->info, cap * sizeof *i);
    if (!i) return ZC_ERR_NOMEM;
    L->info = i;
    L->segs_cap = cap;
    return ZC_OK;
}

static int arena_reserve(kv_zip *c, zlayer *L, size_t need) {
    if (need <= L->arena_cap) return ZC_OK;
    size_t cap = L->arena_cap * 2 > need ? L->arena_cap * 2 : need;
    uint8_t *a = zc_realloc(L->arena, cap);
    if (!a) return ZC_ERR_NOMEM;
    L->arena = a;
    L->arena_cap = cap;
    for (int s = 0; s < L->n_segs; s++) seg_bind(c, L, s); /* the blobs moved */
    return ZC_OK;
}

/* Stored bits of a segment of n tokens, ns of them salient, under plan p:
 * codes + parameters + index (zc_kv_usage counts the same bytes). */
static double seg_bits(const kv_zip *c, const zplan *p, int n, int ns) {
    seg_info si;
    seg_sizes(c, p, n, ns, &si);
    return 8.0 * (double)(si.codes + si.params + si.index);
}

/* Tokens the window of a layer whose first w0 tokens are compressed
 * collects before it becomes a segment. Under a bit budget the fp16 window
 * must not swamp it: while the context is short, a window of
 * cfg.stream_gap tokens would hold most of the bits (99 fp16 tokens beside
 * 255 compressed ones at 4 bits: 60% of them), so the gap shrinks until the
 * window's mean cost, 16 bits for each of its (gap - 1) / 2 tokens on
 * average, is at most cfg.window_share of the budget over the w0 tokens
 * already compressed; never below ZIP_MIN_GAP
 * (smaller segments spend their bits on parameters), never above
 * cfg.stream_gap, reached once w0 >= ~8 * stream_gap / (share * B). A
 * sequence decoded from its start (w0 = 0) stays exact for its first
 * cfg.stream_gap tokens, as without a budget: compressing a few dozen
 * tokens early saves a few hundred bytes and costs their precision. A
 * function of w0 alone, so every layer agrees and a loaded session goes on
 * as it would have. No budget or a share of 0: cfg.stream_gap. */
#define ZIP_MIN_GAP 16
#define ZIP_WINDOW_SHARE 0.2 /* --kv-window-share's default */
static int window_gap(const kv_zip *c, double budget, int w0) {
    int gap = c->base.cfg.stream_gap;
    double share = c->base.cfg.window_share;
    if (budget <= 0 || share <= 0 || w0 == 0) return gap;
    double g = 1.0 + 2.0 * share * budget * w0 / 16.0;
    int want = g < ZIP_MIN_GAP ? ZIP_MIN_GAP : g > gap ? gap : (int)g;
    return want < gap ? want : gap; /* (a --kv-stream-gap below ZIP_MIN_GAP wins) */
}

/* The stream gap of layer L. A sliding-window layer holds at most its band
 * compressed, so its window's share is measured against that, and its gap
 * is at most half the band (ZIP_MIN_GAP at least): else a short band would
 * never fill a window and stay in fp16. */
static int layer_gap(const kv_zip *c, const zlayer *L) {
    if (!L->band) return window_gap(c, L->budget, L->w0);
    int gap = window_gap(c, L->budget, L->w0 < L->band ? L->w0 : L->band), cap = L->band / 2;
    cap = cap > ZIP_MIN_GAP ? cap : ZIP_MIN_GAP;
    return gap < cap ? gap : cap;
}

/* The budget, bits per element, of layer L's next segment of n tokens: what
 * keeps the layer's segments, those so far and this one, at c->budget per
 * element, so a segment that could not fit (nothing is cheaper than the
 * cheapest plan) is paid back by the next ones. The fp16 window is not paid
 * from it: a reserve made when a prompt is compressed is wasted when only a
 * short answer follows (measured on the retrieval model, 800-token prompts
 * at 4 bits: exact answers 0.69 with the reserve, 0.95 without; EVALUATION.md);
 * the window's share is bounded instead (window_gap). */
static double seg_budget(const kv_zip *c, const zlayer *L, int n) {
    double per_tok = 2.0 * c->kv_dim, held = 0; /* elements per token; bits in segments */
    int keep = c->keep_pos >= 0; /* segments about to be dropped do not count */
    for (int s = keep ? c->keep_seg : 0; s < L->n_segs; s++)
        held += 8.0 * (double)(L->info[s].codes + L->info[s].params + L->info[s].index);
    double b = (L->budget * per_tok * (L->w0 - (keep ? c->keep_pos : L->p0) + n) - held) / (per_tok * n);
    return b > 0 ? b : 0;
}

/* The most salient tokens (>= sinks) whose segment stays within `budget`
 * bits per element; sinks when even that does not fit. The cost is not
 * monotone in ns (tile padding, key groups), so every count is tried: O(n)
 * size sums per window. */
static int fit_budget(const kv_zip *c, const zplan *p, int n, int sinks, double budget) {
    double cap = budget * 2.0 * n * c->kv_dim;
    for (int ns = n; ns > sinks; ns--)
        if (seg_bits(c, p, n, ns) <= cap) return ns;
    return sinks;
}

/* The automatic plans (plan_candidates), cheapest first. Which of those that
 * fit the budget a segment takes (cfg.plan_rule): by default the one whose
 * stored window the probes would see with the least output error
 * (choose_plan, which also makes a layer's first --kv-rotate auto choice,
 * every plan tried both ways); or, without looking at the data, the one
 * whose salient fraction comes nearest 0.5 (zip_plan). Measured
 * (EVALUATION.md, the ablation 'plan by salient fraction'): the error rule's
 * KL is 0.38-0.52x the fraction rule's at budgets 6.5-7.5 on tinystories656K,
 * 0.66-1.06x on stories260K, within 15% either way below 6.5; on the
 * retrieval model at 4 bits it answers 0.95/0.92/0.92 exactly against
 * 0.91/0.88/0.88 (--grid budget). What the list holds, measured with the fraction rule
 * (EVALUATION.md, "Bit allocation"): keys need >= 3 bits on every token, 4 for most (2-bit
 * keys per channel over a segment wreck attention, KL x10-50); values take 2
 * on regular tokens; keys in groups of 32 tokens pay off only once keys have
 * 4 bits and values at least 3. The best salient fraction differs by model: on
 * stories260K ~20% (a small salient set also isolates the tokens whose keys
 * are outliers into their own channel ranges: at equal widths a 20% set beats
 * an 80% one), on tinystories656K the KL keeps falling up to 80%; the plan is
 * the one whose budget-filling salient fraction lands nearest 0.5, between
 * the two. Rotating keys (--kv-rotate) hurts channelwise keys on stories260K
 * (head_dim 8, KL x1.5-2), changes little on tinystories656K (16), and is the
 * largest gain on the retrieval model (64: exact answers 0.84/0.76/0.80 ->
 * 0.89/0.91/0.91 at 50/100/150 lines, answer KL 0.22 -> 0.06, EVALUATION.md),
 * so no plan fixes it: under --kv-rotate auto (the default) each layer
 * chooses at its first compression. With the default plan rule the choice is
 * choose_plan's, every plan both ways by output error (retrieval model at 4
 * bits: 84-88% of layers rotated, exact 0.95/0.92/0.92, EVALUATION.md's
 * --grid budget table); with given widths or --kv-plan fraction it is
 * choose_rotation's, with the segment's plan, by the probes' logit error
 * (two estimates of one thing; folding the second into the first would
 * change those ablations' rotations and is left for a rerun of them).
 * Measured for choose_rotation before the error rule (EVALUATION.md then): it
 * rotates no layer of stories260K at any budget (KL = off's, on's is 1.3-2.3x),
 * 0-9% of tinystories656K's up to 5 bits and 28-72% at 5.5-6 (KL within 1% of
 * the better of off and on), 2 of the retrieval model's 3 layers at 4 bits
 * (exact 0.91/0.87/0.86, answer KL 0.07/0.16/0.09: off 0.84/0.76/0.80 and
 * 0.20-0.25, on 0.89/0.91/0.91 and 0.06-0.17) and at 3.2 (0.54/0.51/0.52,
 * above both). So the probes' logit error predicts which way wins; no
 * head_dim rule is needed.
 * 3- and 8-bit codes have no tiled layout, so shapes the integer path serves
 * (attn_packed.h) choose among 2/4-bit plans only, keeping decode on it. */
static const zplan PLANS_ANY[] = {
    {{3, 3}, {2, 2}, 0}, {{4, 3}, {2, 2}, 0}, {{4, 3}, {3, 2}, 0}, {{4, 4}, {3, 2}, 0},
    {{4, 4}, {4, 2}, 0}, {{4, 4}, {4, 3}, 0}, {{5, 4}, {4, 3}, 0}, {{4, 4}, {4, 3}, 32}, {{5, 5}, {4, 4}, 0},
    {{8, 4}, {4, 4}, 32}, {{4, 4}, {4, 4}, 32}, {{6, 5}, {5, 4}, 0}, {{6, 6}, {5, 5}, 0},
};
static const zplan PLANS_TILED[] = {
    {{4, 2}, {2, 2}, 0}, {{4, 4}, {4, 2}, 0}, {{4, 4}, {4, 2}, 32}, {{4, 4}, {4, 4}, 32},
};
#define ZIP_MAX_PLANS ((int)(sizeof PLANS_ANY / sizeof *PLANS_ANY))
#define ZIP_SALIENT_AIM 0.5 /* --kv-plan fraction: the salient fraction the plans are chosen around */

/* The automatic plans that fit the budget of layer L's next segment of n
 * tokens, into cand[] with their budget-filling salient counts (>= sinks);
 * when none fits, the cheapest with the sinks only. Returns how many. */
static int plan_candidates(const kv_zip *c, const zlayer *L, int n, int sinks, zplan *cand, int *cand_ns) {
    double budget = seg_budget(c, L, n);
    int hd = c->base.shape.head_dim, tiled = c->base.cfg.int8_query && zc_tiled_ok(hd, 2);
    const zplan *plans = tiled ? PLANS_TILED : PLANS_ANY;
    int n_plans = tiled ? (int)(sizeof PLANS_TILED / sizeof *plans) : ZIP_MAX_PLANS;
    int kg = c->base.cfg.key_group, nc = 0;
    for (int i = 0; i < n_plans; i++) {
        zplan p = plans[i];
        if (kg > 0) p.kg = kg; /* --kv-key-group given: every plan groups keys so */
        int ns = fit_budget(c, &p, n, sinks, budget);
        if (seg_bits(c, &p, n, ns) > budget * 2.0 * n * c->kv_dim) continue; /* too dear */
        cand[nc] = p, cand_ns[nc++] = ns;
    }
    if (nc == 0) { /* nothing fits: the cheapest plan, salient tokens only the sinks */
        cand[0] = plans[0];
        if (kg > 0) cand[0].kg = kg;
        cand_ns[nc++] = sinks;
    }
    return nc;
}

/* The plan of the next segment of n tokens and its salient count (>= sinks)
 * without looking at the data: given widths, those; otherwise (--kv-plan
 * fraction), of the plans that fill the budget, the one whose salient
 * fraction comes closest to ZIP_SALIENT_AIM (ties: the dearer). */
static int zip_plan(const kv_zip *c, const zlayer *L, int n, int sinks, zplan *plan) {
    if (!c->auto_plan) {
        *plan = c->fixed;
        int ns = L->budget > 0 ? fit_budget(c, plan, n, sinks, seg_budget(c, L, n)) : zc_sal_count(c->ratio, n);
        return ns < sinks ? sinks : ns; /* zc_sal_select keeps every sink */
    }
    zplan cand[ZIP_MAX_PLANS];
    int cand_ns[ZIP_MAX_PLANS], best = 0, nc = plan_candidates(c, L, n, sinks, cand, cand_ns);
    for (int i = 1; i < nc; i++)
        if (fabs((double)cand_ns[i] / n - ZIP_SALIENT_AIM) <= fabs((double)cand_ns[best] / n - ZIP_SALIENT_AIM))
            best = i;
    *plan = cand[best];
    return cand_ns[best];
}

/* Lay out segment L->n_segs (not yet counted) of n tokens, ns of them
 * salient in every head, stored under plan p: sizes, its 8-aligned place
 * after the arena's used bytes (reserved), and every head's set descriptors
 * bound into the blob. */
static int seg_layout(kv_zip *c, zlayer *L, int n, int ns, const zplan *p) {
    int nkv = c->base.shape.n_kv_heads, rc;
    if ((rc = segs_reserve(L, nkv, L->n_segs + 1))) return rc;
    int s = L->n_segs;
    seg_info *si = &L->info[s];
    seg_sizes(c, p, n, ns, si);
    si->off = (L->arena_used + 7) & ~(size_t)7;
    if ((rc = arena_reserve(c, L, si->off + si->params + si->codes + si->index))) return rc;
    for (int g = 0; g < nkv; g++)
        for (int st = 0; st < 2; st++) {
            zc_packed_set *set = &L->heads[(size_t)s * nkv + g].set[st];
            set->n = st == 0 ? ns : n - ns;
            set->k_bits = set_bits(p, st, 1);
            set->v_bits = set_bits(p, st, 0);
            set->key_group = p->kg > 0 ? p->kg : (set->n > 0 ? set->n : 1);
            set->tiled = set_tiled(c, p, st);
        }
    seg_bind(c, L, s);
    return ZC_OK;
}

/* The probe queries whose logits choose_rotation compares: at most this many
 * rows of a block, evenly spaced over its probes (the cost is rows x G x
 * window x head_dim multiply-adds per KV head and way, once per layer, as
 * one fp32 matrix product: ~2% of a 512-token prefill). */
#define ZIP_ROT_QUERIES 32

/* Head g's rows of the window: the ns salient ones (>= the sinks) into sal
 * and segment s's bitmap, the others into reg, in position order. */
static int split_head(kv_zip *c, zlayer *L, int s, int g, const float *sc, int ns, int sinks, int32_t *sal,
                      int32_t *reg) {
    int n = L->wlen;
    uint8_t *bm = seg_bitmap(L, s, g);
    int got = zc_sal_select(sc + (size_t)g * n, n, ns, sinks, bm, sal, c->u64);
    if (got != ns)
        return got < 0 ? got : zc_error(ZC_ERR_FORMAT, "kv zipcache: picked %d salient tokens, sized %d", got, ns);
    for (int j = 0, b = 0; j < n; j++)
        if (!(bm[j >> 3] >> (j & 7) & 1)) reg[b++] = j;
    return ZC_OK;
}

/* Key group grp of a set (its cnt rows `rows` of xk, rows kd floats apart)
 * quantized channelwise at the set's width into the set's own parameters,
 * as compress_window stores it; the keys' errors k - k^ go to c->kq and
 * their logit errors against the query rows of qm to y [cnt][qm rows], one
 * matrix product (kernels/matmul.h). 1 when fp16 parameters cannot hold
 * the keys, else ZC_OK or an error. */
static int key_logit_errors(kv_zip *c, const zc_packed_set *set, int grp, const int32_t *rows, int cnt,
                            const float *xk, const zc_mat *qm, float *y) {
    int hd = c->base.shape.head_dim, kd = c->kv_dim;
    size_t krow = (size_t)hd * set->k_bits / 8;
    zc_fp16 *mn = (zc_fp16 *)set->k_min + (size_t)grp * hd, *step = (zc_fp16 *)set->k_step + (size_t)grp * hd;
    if (zc_chan_params(xk, (size_t)kd, rows, cnt, hd, set->k_bits, mn, step)) return 1;
    zc_chan_encode(xk, (size_t)kd, rows, cnt, hd, set->k_bits, mn, step, c->cbuf, krow);
    zc_chan_decode(c->cbuf, krow, cnt, hd, set->k_bits, mn, step, c->kq, (size_t)hd);
    for (int t = 0; t < cnt; t++) {
        float *e = c->kq + (size_t)t * hd;
        const float *x = xk + (size_t)rows[t] * kd;
        for (int i = 0; i < hd; i++) e[i] = x[i] - e[i];
    }
    zc_matmul_scratch none = {0}; /* fp32 weights take the activations as they are: no scratch */
    return zc_matmul(NULL, qm, c->kq, y, cnt, &none);
}

/* Add to *err the squared error of the logits q.k that the query rows qg
 * [PG][hd] (head g's query heads at the chosen probe rows) see when head
 * g's window keys xk (rows kd floats apart) are stored as segment s's sets
 * store them: set st's rows (sal / reg) channelwise at its width and key
 * grouping (key_logit_errors; the segment's own parameters hold the trial,
 * compress_window writes them again). */
static int logit_error(kv_zip *c, zlayer *L, int s, int g, const int32_t *sal, const int32_t *reg, const float *qg,
                       int PG, float *y, double *err) {
    const zc_kv_shape *sh = &c->base.shape;
    int hd = sh->head_dim;
    const float *xk = c->xk + (size_t)g * hd;
    zc_packed_seg *seg = &L->heads[(size_t)s * sh->n_kv_heads + g];
    const zc_mat qm = {.type = ZC_TYPE_F32, .rows = PG, .cols = hd, .data = qg, .row_bytes = (size_t)hd * sizeof(float)};
    for (int st = 0; st < 2; st++) {
        const zc_packed_set *set = &seg->set[st];
        const int32_t *rows = st == 0 ? sal : reg;
        for (int t0 = 0, grp = 0; t0 < set->n; t0 += set->key_group, grp++) {
            int cnt = set->n - t0 < set->key_group ? set->n - t0 : set->key_group;
            int rc = key_logit_errors(c, set, grp, rows + t0, cnt, xk, &qm, y);
            if (rc == 1) {
                *err = INFINITY; /* keys fp16 cannot hold this way: never chosen over the other */
                return ZC_OK;
            }
            if (rc) return rc;
            for (size_t i = 0; i < (size_t)cnt * (size_t)PG; i++) *err += (double)y[i] * y[i];
        }
    }
    return ZC_OK;
}

/* Head g's query heads at P probe rows evenly spaced over rows qrows[0..nq)
 * (NULL: 0..nq-1) of q [.][n_heads*hd], into qg [P][G][hd]. */
static void gather_probe_rows(const kv_zip *c, int g, const float *q, const int32_t *qrows, int nq, int P, float *qg) {
    const zc_kv_shape *sh = &c->base.shape;
    int hd = sh->head_dim, nh = sh->n_heads, G = nh / sh->n_kv_heads;
    for (int p = 0; p < P; p++) {
        int i = (int)((int64_t)p * nq / P);
        memcpy(qg + (size_t)p * G * hd, q + (size_t)(qrows ? qrows[i] : i) * nh * hd + (size_t)g * G * hd,
               (size_t)G * hd * sizeof(float));
    }
}

/* --kv-rotate auto: does layer L store its keys rotated? Decided at its
 * first compression (segment s, laid out, ns salient of n per head) from
 * the window keys c->xk (fp32, not rotated) and the block's probe queries
 * q [.][n_heads*hd] (rows qrows[0..nq), NULL: 0..nq-1): both ways quantize
 * the keys with the segment's own plan and salient split, and the one whose
 * logits q.k the probes would see with less squared error wins (rotated
 * keys meet rotated queries: for exact keys the logits are the same, so
 * only the quantization error differs). Ties keep the keys as they are.
 * Leaves c->xk as it was on entry. */
static int choose_rotation(kv_zip *c, zlayer *L, int s, const float *sc, int ns, int sinks, const float *q,
                           const int32_t *qrows, int nq) {
    const zc_kv_shape *sh = &c->base.shape;
    int n = L->wlen, nkv = sh->n_kv_heads, hd = sh->head_dim, nh = sh->n_heads;
    const int P = nq < ZIP_ROT_QUERIES ? nq : ZIP_ROT_QUERIES, G = nh / nkv, PG = P * G;
    double err[2] = {0, 0};
    int32_t *sal = c->ibuf, *reg = c->ibuf + c->cap_w;
    float *qg = zc_malloc((size_t)PG * hd * sizeof(float)), *y = zc_malloc((size_t)n * PG * sizeof(float));
    int rc = qg && y ? ZC_OK : zc_error(ZC_ERR_NOMEM, "kv zipcache: out of memory");
    for (int g = 0; g < nkv && rc == ZC_OK; g++) {
        if ((rc = split_head(c, L, s, g, sc, ns, sinks, sal, reg)) != ZC_OK) break;
        gather_probe_rows(c, g, q, qrows, nq, P, qg);
        if ((rc = logit_error(c, L, s, g, sal, reg, qg, PG, y, &err[0])) != ZC_OK) break;
        zc_hadamard_rows(c->xk + (size_t)g * hd, (size_t)c->kv_dim, n, hd); /* rotate keys and queries alike */
        zc_hadamard_rows(qg, (size_t)hd, PG, hd);
        rc = logit_error(c, L, s, g, sal, reg, qg, PG, y, &err[1]);
    }
    free(qg);
    free(y);
    zc_fp16_to_f32_row(L->wk, c->xk, (size_t)n * c->kv_dim); /* undo the trial rotation exactly */
    return rc != ZC_OK ? rc : err[1] < err[0];
}

/* dv[j] = |v_j - o|^2 for head g's window values, o their mean weighted by
 * the scores scg: what plan_error weighs a key's logit error by, the same
 * for every plan tried. o is [head_dim] scratch. */
static void value_spread(const kv_zip *c, int n, int g, const float *scg, double *o, double *dv) {
    int hd = c->base.shape.head_dim, kd = c->kv_dim;
    const float *xv = c->xv + (size_t)g * hd;
    double wsum = 0;
    memset(o, 0, (size_t)hd * sizeof *o);
    for (int j = 0; j < n; j++) {
        wsum += scg[j];
        for (int i = 0; i < hd; i++) o[i] += (double)scg[j] * xv[(size_t)j * kd + i];
    }
    for (int i = 0; i < hd; i++) o[i] = wsum > 0 ? o[i] / wsum : 0;
    for (int j = 0; j < n; j++) {
        dv[j] = 0;
        for (int i = 0; i < hd; i++) dv[j] += (xv[(size_t)j * kd + i] - o[i]) * (xv[(size_t)j * kd + i] - o[i]);
    }
}

/* The output error head g's probe queries would see with the window stored
 * as segment s's sets store it (laid out, rows split into sal / reg): a
 * query's output o = sum_j p_j v_j moves by sum_j p_j (e_j + d_j (v_j - o))
 * to first order, e_j being token j's value error and d_j its logit error;
 * with independent errors the mean square is
 *   sum_j p_j^2 (|e_j|^2 + d_j^2 |v_j - o|^2),
 * p_j token j's normalized score scg[j] (the mean attention probes give it),
 * d_j^2 the mean over the PG query rows qg of (q.(k_j - k^_j))^2 / hd (the
 * softmax scale), dvg[j] = |v_j - o|^2 (value_spread). Keys and values
 * are quantized as compress_window stores them, into the segment's own
 * parameters (written again there); y [n][PG] is scratch. */
static int plan_error(kv_zip *c, zlayer *L, int s, int g, const int32_t *sal, const int32_t *reg, const float *qg,
                      int PG, const float *scg, const double *dvg, float *y, double *err) {
    const zc_kv_shape *sh = &c->base.shape;
    int n = L->wlen, hd = sh->head_dim, kd = c->kv_dim;
    const float *xk = c->xk + (size_t)g * hd, *xv = c->xv + (size_t)g * hd;
    zc_packed_seg *seg = &L->heads[(size_t)s * sh->n_kv_heads + g];
    const zc_mat qm = {.type = ZC_TYPE_F32, .rows = PG, .cols = hd, .data = qg, .row_bytes = (size_t)hd * sizeof(float)};
    zc_fp16 *norm = (zc_fp16 *)seg->v_norm;
    int rc = zc_cst_norms(xv, (size_t)kd, NULL, n, hd, ZC_CST_SQRT_MAX, norm);
    if (rc) return rc;
    double total = 0;
    for (int st = 0; st < 2; st++) {
        const zc_packed_set *set = &seg->set[st];
        const int32_t *rows = st == 0 ? sal : reg;
        size_t vrow = (size_t)hd * set->v_bits / 8;
        for (int t0 = 0, grp = 0; t0 < set->n; t0 += set->key_group, grp++) { /* keys: d_j^2 |v_j - o|^2 */
            int cnt = set->n - t0 < set->key_group ? set->n - t0 : set->key_group;
            if ((rc = key_logit_errors(c, set, grp, rows + t0, cnt, xk, &qm, y)) == 1) {
                *err = INFINITY; /* fp16 parameters cannot hold these keys: never chosen */
                return ZC_OK;
            }
            if (rc) return rc;
            for (int t = 0; t < cnt; t++) {
                int j = rows[t0 + t];
                double d2 = 0;
                for (int p = 0; p < PG; p++) d2 += (double)y[(size_t)t * PG + p] * y[(size_t)t * PG + p];
                total += (double)scg[j] * scg[j] * d2 / ((double)PG * hd) * dvg[j];
            }
        }
        if (set->n == 0) continue; /* values: |e_j|^2 */
        zc_fp16 *vmin = (zc_fp16 *)set->v_min, *vstep = (zc_fp16 *)set->v_step;
        if ((rc = zc_token_quant(xv, (size_t)kd, rows, set->n, hd, set->v_bits, norm, c->cbuf, vrow, vmin, vstep)))
            return rc;
        zc_token_decode(c->cbuf, vrow, set->n, hd, set->v_bits, norm, vmin, vstep, c->kq, (size_t)hd);
        for (int t = 0; t < set->n; t++) {
            int j = rows[t];
            double e2 = 0;
            for (int i = 0; i < hd; i++) {
                double e = xv[(size_t)j * kd + i] - c->kq[(size_t)t * hd + i];
                e2 += e * e;
            }
            total += (double)scg[j] * scg[j] * e2;
        }
    }
    *err += total;
    return ZC_OK;
}

/* --kv-plan error: of the automatic plans that fit the budget, the one
 * whose stored window the probes would see with the least output error
 * (plan_error, summed over the KV heads), each at its budget-filling
 * salient count; into *plan, *ns. The keys are tried as the layer stores
 * them (*rot 1: rotated, 0: not); a layer that has not chosen yet (*rot -1,
 * --kv-rotate auto) tries every plan both ways and takes the best pair, its
 * way into *rot. Leaves c->xk as it was. */
static int choose_plan(kv_zip *c, zlayer *L, const float *sc, int sinks, const float *q, const int32_t *qrows,
                       int nq, zplan *plan, int *ns, int *rot) {
    const zc_kv_shape *sh = &c->base.shape;
    int n = L->wlen, nkv = sh->n_kv_heads, hd = sh->head_dim, G = sh->n_heads / nkv;
    zplan cand[ZIP_MAX_PLANS];
    int cand_ns[ZIP_MAX_PLANS], nc = plan_candidates(c, L, n, sinks, cand, cand_ns);
    *plan = cand[0], *ns = cand_ns[0];
    if (nc == 1 && *rot >= 0) return ZC_OK;
    const int P = nq < ZIP_ROT_QUERIES ? nq : ZIP_ROT_QUERIES, PG = P * G;
    float *qg = zc_malloc((size_t)nkv * PG * hd * sizeof(float)), *y = zc_malloc((size_t)n * PG * sizeof(float));
    double *dv = zc_malloc(((size_t)nkv * n + hd) * sizeof(double)); /* [nkv][n] value_spread, then o [hd] */
    int rc = qg && y && dv ? ZC_OK : zc_error(ZC_ERR_NOMEM, "kv zipcache: out of memory");
    for (int g = 0; g < nkv && rc == ZC_OK; g++) {
        gather_probe_rows(c, g, q, qrows, nq, P, qg + (size_t)g * PG * hd);
        value_spread(c, n, g, sc + (size_t)g * n, dv + (size_t)nkv * n, dv + (size_t)g * n);
    }
    int32_t *sal = c->ibuf, *reg = c->ibuf + c->cap_w;
    double best = INFINITY;
    int way0 = *rot < 0 ? 0 : *rot, way1 = *rot < 0 ? 1 : *rot;
    for (int way = way0; way <= way1 && rc == ZC_OK; way++) {
        if (way == 1) { /* rotated keys meet rotated queries */
            zc_hadamard_rows(c->xk, (size_t)hd, n * nkv, hd);
            zc_hadamard_rows(qg, (size_t)hd, nkv * PG, hd);
        }
        for (int i = 0; i < nc && rc == ZC_OK; i++) {
            double err = 0;
            if ((rc = seg_layout(c, L, n, cand_ns[i], &cand[i]))) break;
            for (int g = 0; g < nkv && rc == ZC_OK && err < best; g++)
                if ((rc = split_head(c, L, L->n_segs, g, sc, cand_ns[i], sinks, sal, reg)) == ZC_OK)
                    rc = plan_error(c, L, L->n_segs, g, sal, reg, qg + (size_t)g * PG * hd, PG, sc + (size_t)g * n,
                                    dv + (size_t)g * n, y, &err);
            if (rc == ZC_OK && err < best) best = err, *plan = cand[i], *ns = cand_ns[i], *rot = way;
        }
    }
    free(qg);
    free(y);
    free(dv);
    if (way1 == 1) zc_fp16_to_f32_row(L->wk, c->xk, (size_t)n * c->kv_dim); /* undo the trial rotation exactly */
    if (*rot < 0) *rot = 0; /* nothing finite: keys as they are */
    return rc;
}

/* Compress the whole window of layer L into a new segment, using scores
 * sc [n_kv_heads][wlen]. c->xk, c->xv hold the window in fp32, keys not
 * rotated; q rows qrows[0..nq) (NULL: 0..nq-1) are the probe queries a
 * layer's first compression chooses its rotation with (choose_rotation). */
static int compress_window(kv_zip *c, zlayer *L, const float *sc, int stream, const float *q, const int32_t *qrows,
                           int nq) {
    const zc_kv_shape *sh = &c->base.shape;
    int n = L->wlen, nkv = sh->n_kv_heads, hd = sh->head_dim, kd = c->kv_dim;
    if (n == 0) return ZC_OK;
    int sinks = c->base.cfg.sinks - L->w0;
    sinks = sinks < 0 ? 0 : sinks > n ? n : sinks;
    zplan plan;
    int ns, rc, rot = L->rot;
    if (c->auto_plan && c->base.cfg.plan_rule == ZC_ZIP_PLAN_ERROR) {
        if ((rc = choose_plan(c, L, sc, sinks, q, qrows, nq, &plan, &ns, &rot))) return rc;
    } else {
        ns = zip_plan(c, L, n, sinks, &plan);
    }
    if ((rc = seg_layout(c, L, n, ns, &plan))) return rc;
    int s = L->n_segs;
    seg_info *si = &L->info[s];
    if (rot < 0 && (rot = choose_rotation(c, L, s, sc, ns, sinks, q, qrows, nq)) < 0) return rot;
    /* rotated keys are what the segments store; queries follow in zip_attend */
    if (rot) zc_hadamard_rows(c->xk, (size_t)hd, n * nkv, hd);

    int32_t *sal = c->ibuf, *reg = c->ibuf + c->cap_w;
    for (int g = 0; g < nkv; g++) {
        zc_packed_seg *seg = &L->heads[(size_t)s * nkv + g];
        if ((rc = split_head(c, L, s, g, sc, ns, sinks, sal, reg)) != ZC_OK) return rc;
        const float *xk = c->xk + (size_t)g * hd, *xv = c->xv + (size_t)g * hd;
        /* the sets' pointers are const for the attention readers; the blob is ours to fill */
        zc_fp16 *norm = (zc_fp16 *)seg->v_norm;
        if ((rc = zc_cst_norms(xv, (size_t)kd, NULL, n, hd, ZC_CST_SQRT_MAX, norm))) return rc;
        for (int st = 0; st < 2; st++) {
            zc_packed_set *set = &seg->set[st];
            const int32_t *rows = st == 0 ? sal : reg;
            size_t krow = (size_t)hd * set->k_bits / 8, vrow = (size_t)hd * set->v_bits / 8;
            /* codes are written as packed rows; tiled sets take them from c->cbuf */
            uint8_t *kc = set->tiled ? c->cbuf : (uint8_t *)set->k_codes, *vc = set->tiled ? c->cbuf : (uint8_t *)set->v_codes;
            for (int t0 = 0, grp = 0; t0 < set->n; t0 += set->key_group, grp++) {
                int cnt = set->n - t0 < set->key_group ? set->n - t0 : set->key_group;
                zc_fp16 *mn = (zc_fp16 *)set->k_min + (size_t)grp * hd, *step = (zc_fp16 *)set->k_step + (size_t)grp * hd;
                if ((rc = zc_chan_params(xk, (size_t)kd, rows + t0, cnt, hd, set->k_bits, mn, step))) return rc;
                zc_chan_encode(xk, (size_t)kd, rows + t0, cnt, hd, set->k_bits, mn, step, kc + (size_t)t0 * krow, krow);
            }
            if (set->tiled) zc_tiled_from_rows(ZC_TILED_K, kc, krow, set->n, hd, set->k_bits, (uint8_t *)set->k_codes);
            if (set->n > 0 && (rc = zc_token_quant(xv, (size_t)kd, rows, set->n, hd, set->v_bits, norm, vc, vrow,
                                                   (zc_fp16 *)set->v_min, (zc_fp16 *)set->v_step)))
                return rc;
            if (set->tiled) zc_tiled_from_rows(ZC_TILED_V, vc, vrow, set->n, hd, set->v_bits, (uint8_t *)set->v_codes);
        }
    }
    /* The last allocation comes before the commit: a failure must leave the
     * window as it was, so that the step can be repeated. */
    if ((rc = grow((void **)&L->last_scores, &L->last_cap, (size_t)nkv * n, sizeof(float)))) return rc;
    /* commit: the segment exists, the window restarts after it */
    L->arena_used = si->off + si->params + si->codes + si->index;
    L->n_segs++;
    memcpy(L->last_scores, sc, (size_t)nkv * n * sizeof(float));
    L->last_n = n;
    L->w0 += n;
    L->wlen = 0;
    L->n_stream += stream;
    L->rot = rot;
    probe_stats_clear(c, L);
    return ZC_OK;
}

/* The window of layer L in fp32 (c->xk, c->xv [wlen][kv_dim]) for the quantizers. */
static void window_to_f32(kv_zip *c, const zlayer *L) {
    size_t m = (size_t)L->wlen * c->kv_dim;
    zc_fp16_to_f32_row(L->wk, c->xk, m);
    zc_fp16_to_f32_row(L->wv, c->xv, m);
}

/* The longest segment a sliding-window layer makes of a prompt's tail: half
 * its band (at least its stream gap). Longer segments spend fewer bits on
 * parameters (measured on the retrieval model, keys of the question in
 * segments of 64 / 100 / 128 / 256 / 512 tokens at 4 bits: exact answers
 * 0.54 / 0.71 / 0.82 / 0.91 / 0.91); shorter ones leave the band sooner (a
 * layer holds at most band - 1 + piece tokens) and cost a decode step less
 * (banded_attend dequantizes the segment its band starts in). */
static int band_piece(const kv_zip *c, const zlayer *L) {
    int gap = layer_gap(c, L);
    return L->band / 2 > gap ? L->band / 2 : gap;
}

/* The first position the query at p of layer L sees. */
static int band_lo(const zlayer *L, int p) { return L->band && p - L->band + 1 > 0 ? p - L->band + 1 : 0; }
static void segs_drop(kv_zip *c, zlayer *L, int k); /* sliding-window layers, below */

/* compress_window over the window's rows skip..wlen-1 (scores sc
 * [n_kv_heads][wlen - skip], which c->sc may be), in the fewest segments of
 * at most `piece` tokens, of even length, front first. Rows before skip are
 * dropped: a sliding-window layer's rows that no later query sees (the
 * layer's older segments, which end before them, go too). All or nothing:
 * a failure leaves the layer as it was, so that the attend can be repeated.
 * A sliding-window layer stores a prompt's tail so: a decode step then
 * dequantizes at most part of one piece (banded_decode), and a segment
 * leaves the band at most a piece after its first token did. */
static int compress_pieces(kv_zip *c, zlayer *L, int skip, const float *sc, int piece, const float *q,
                           const int32_t *qrows, int nq) {
    int W = L->wlen - skip, nkv = c->base.shape.n_kv_heads, n_pieces = (W + piece - 1) / piece;
    size_t kd = (size_t)c->kv_dim;
    /* the layer as it was, to return to */
    zc_fp16 *wk0 = L->wk, *wv0 = L->wv;
    int w00 = L->w0, wlen0 = L->wlen, segs0 = L->n_segs, rot0 = L->rot, stream0 = L->n_stream;
    size_t used0 = L->arena_used;
    float *all = NULL; /* the scores, while c->sc holds each piece's */
    if (n_pieces > 1 && !(all = zc_malloc((size_t)nkv * W * sizeof(float)))) return ZC_ERR_NOMEM;
    if (all) memcpy(all, sc, (size_t)nkv * W * sizeof(float));
    piece = n_pieces > 1 ? (W + n_pieces - 1) / n_pieces : W; /* even: no short last piece, whose parameters cost most */
    L->wk += (size_t)skip * kd; /* the window's rows seen from the piece on: compress_window reads from its front */
    L->wv += (size_t)skip * kd;
    L->w0 += skip;
    /* what the next query's band leaves out goes once this succeeds: the older segments that end before it
       (all of them when rows are dropped), which the budget's running total leaves out already */
    int gone = 0, end = L->p0, lo = band_lo(L, w00 + wlen0);
    while (gone < segs0 && end + L->info[gone].n <= lo) end += L->info[gone++].n;
    if (gone || skip) c->keep_seg = gone, c->keep_pos = skip ? L->w0 : end;
    int rc = ZC_OK;
    for (int done = 0; done < W && rc == ZC_OK; done += piece) {
        int m = W - done < piece ? W - done : piece;
        for (int g = 0; all && g < nkv; g++)
            memcpy(c->sc + (size_t)g * m, all + (size_t)g * W + done, (size_t)m * sizeof(float));
        L->wlen = m;
        window_to_f32(c, L);
        rc = compress_window(c, L, all ? c->sc : sc, 0, q, qrows, nq); /* commits w0 += m, wlen = 0 */
        L->wk += (size_t)m * kd;
        L->wv += (size_t)m * kd;
    }
    free(all);
    L->wk = wk0;
    L->wv = wv0;
    c->keep_pos = -1;
    if (rc) {
        L->w0 = w00;
        L->wlen = wlen0;
        L->n_segs = segs0;
        L->arena_used = used0;
        L->rot = rot0;
        L->n_stream = stream0;
        L->last_n = 0; /* the latest scores were of a piece now undone */
        return rc;
    }
    L->wlen = 0;
    if (gone) segs_drop(c, L, gone);
    if (skip) L->p0 = w00 + skip; /* every older segment ended before the dropped rows */
    return ZC_OK;
}

/* Divide column sums by their denominators: sc[g][j] = col[g][j] / den[j].
 * col rows are col_stride floats apart (sc rows n); col may be sc. */
static void normalize(const kv_zip *c, int n, const float *col, size_t col_stride, const int32_t *den, float *sc) {
    for (int g = 0; g < c->base.shape.n_kv_heads; g++)
        for (int j = 0; j < n; j++)
            sc[(size_t)g * n + j] = den[j] > 0 ? col[(size_t)g * col_stride + j] / (float)den[j] : 0.0f;
}

/* ---- ops ------------------------------------------------------------------- */

static int zip_write(zc_kv_cache *base, int layer, int pos, int n, const float *k, const float *v) {
    kv_zip *c = (kv_zip *)base;
    int rc = zc_kv_check_write(base, layer, pos, n, zc_kv_has_layer(base, layer) ? c->L[layer].n_tok : -1);
    if (rc) return rc;
    zlayer *L = &c->L[layer];
    rc = window_reserve(c, L, L->wlen + n);
    if (rc) return rc;
    size_t off = (size_t)L->wlen * c->kv_dim, m = (size_t)n * c->kv_dim;
    zc_f32_to_fp16_row(k, L->wk + off, m);
    zc_f32_to_fp16_row(v, L->wv + off, m);
    L->wlen += n;
    L->n_tok += n;
    zc_kv_written(base, layer, L->n_tok);
    return ZC_OK;
}

/* out = (out*e^(lse_w - M) + out_p*e^(lse_p - M)) / (sum), lse_t = M + log(sum). */
static void merge_parts(kv_zip *c, int n, float *out) {
    int nh = c->base.shape.n_heads, hd = c->base.shape.head_dim;
    for (size_t r = 0; r < (size_t)n * nh; r++) {
        float lw = c->lse_w[r], lp = c->lse_p[r], M = lw > lp ? lw : lp;
        float a = expf(lw - M), b = lp == -INFINITY ? 0.0f : expf(lp - M), inv = 1.0f / (a + b);
        float *o = out + r * hd;
        const float *op = c->out_p + r * hd;
        for (int e = 0; e < hd; e++) o[e] = (o[e] * a + op[e] * b) * inv;
        c->lse_t[r] = M + logf(a + b);
    }
}

/* Denominators of column sums (zc_sal_denom): den[j] for the W window
 * columns, given the number of queries of the block that see column j
 * (seen(j)) and the probe counts ncol (NULL: none tracked). */
static void denominators(const kv_zip *c, int W, int n_block, int q_off, const int32_t *probes, int n_probes,
                         const int *ncol, int32_t *den) {
    for (int j = 0; j < W; j++) {
        switch (c->base.cfg.denom) {
        case ZC_DENOM_NONE:
            den[j] = 1;
            break;
        case ZC_DENOM_CAUSAL: /* queries of the block at or after j: L - j for a fresh prompt */
            den[j] = n_block - (j > q_off ? j - q_off : 0);
            break;
        case ZC_DENOM_PROBES:
            if (ncol) {
                den[j] = ncol[j];
            } else {
                int cnt = 0;
                for (int k = 0; k < n_probes; k++) cnt += q_off + probes[k] >= j;
                den[j] = cnt;
            }
            break;
        }
    }
}

/* The queries the packed segments of L are read with: q itself, or rotated
 * into c->qrot when they hold rotated keys ((H q).(H k) = q.k). */
static const float *segment_queries(kv_zip *c, const zlayer *L, const float *q, int n) {
    if (L->rot != 1) return q;
    const zc_kv_shape *sh = &c->base.shape;
    memcpy(c->qrot, q, (size_t)n * sh->n_heads * sh->head_dim * sizeof(float));
    zc_hadamard_rows(c->qrot, (size_t)sh->head_dim, n * sh->n_heads, sh->head_dim);
    return c->qrot;
}

/* ---- sliding-window layers (shape.band, --kv-local compress) -------------
 * A query at position p of such a layer sees positions band_lo(p)..p. The
 * layer compresses like any other (probes, saliency, streaming), but keeps
 * only what a later query can see: band_trim drops the segments that end
 * before the next query's band and, when the band is shorter than the
 * window, the window's older tokens; a prompt chunk drops its own tokens
 * before the band before it is scored, so only its last band - 1 tokens are
 * ever compressed (prefill_compress). Held: at most band - 1 + one segment's
 * tokens compressed, plus the window. Attention: banded_attend. */


/* Forget the window's first k tokens: rows, probe sums and counts move up. */
static void window_drop(kv_zip *c, zlayer *L, int k) {
    int keep = L->wlen - k, nkv = c->base.shape.n_kv_heads;
    size_t kd = (size_t)c->kv_dim;
    memmove(L->wk, L->wk + (size_t)k * kd, (size_t)keep * kd * sizeof(zc_fp16));
    memmove(L->wv, L->wv + (size_t)k * kd, (size_t)keep * kd * sizeof(zc_fp16));
    for (int g = 0; g < nkv; g++) {
        float *col = L->col + (size_t)g * L->wcap;
        memmove(col, col + k, (size_t)keep * sizeof(float));
        memset(col + keep, 0, (size_t)k * sizeof(float));
    }
    memmove(L->ncol, L->ncol + k, (size_t)keep * sizeof(int));
    memset(L->ncol + keep, 0, (size_t)k * sizeof(int));
    L->w0 += k;
    L->wlen = keep;
}

/* Forget segments 0..k-1: the later blobs move to the arena's front. */
static void segs_drop(kv_zip *c, zlayer *L, int k) {
    int nkv = c->base.shape.n_kv_heads, tokens = 0;
    size_t from = k < L->n_segs ? L->info[k].off : L->arena_used; /* 8-aligned but at the very end */
    for (int s = 0; s < k; s++) tokens += L->info[s].n;
    memmove(L->arena, L->arena + from, L->arena_used - from);
    memmove(L->info, L->info + k, (size_t)(L->n_segs - k) * sizeof *L->info);
    memmove(L->heads, L->heads + (size_t)k * nkv, (size_t)(L->n_segs - k) * nkv * sizeof *L->heads);
    L->n_segs -= k;
    L->arena_used -= from;
    for (int s = 0; s < L->n_segs; s++) {
        L->info[s].off -= from;
        seg_bind(c, L, s);
    }
    L->p0 += tokens;
}

/* Drop what no query from position `next` on can see. */
static void band_trim(kv_zip *c, zlayer *L, int next) {
    int lo = band_lo(L, next), k = 0, end = L->p0;
    while (k < L->n_segs && end + L->info[k].n <= lo) end += L->info[k++].n;
    if (k) segs_drop(c, L, k);
    if (lo > L->w0) window_drop(c, L, lo - L->w0);
    if (!L->n_segs) L->p0 = L->w0;
}

/* Room for n rows of `per` floats in both a and b (grow; *cap counts floats:
 * callers size the same buffers by rows of different widths). */
static int reserve_floats(float **a, float **b, size_t *cap, size_t n, size_t per) {
    size_t floats, ca = *cap, cb = *cap;
    if (zc_mul_size(n, per, &floats)) return zc_error(ZC_ERR_LIMIT, "kv zipcache: buffer too large");
    int rc = grow((void **)a, &ca, floats, sizeof(float));
    if (rc == ZC_OK && (rc = grow((void **)b, &cb, floats, sizeof(float))) == ZC_OK) *cap = ca;
    return rc;
}

/* Where each set of head g of segment s starts at the segment's token
 * `from`: t0[0] salient and t0[1] regular tokens come before it (each set's
 * rows are in position order, so the rest of each is a suffix). */
static void set_starts(const zlayer *L, int s, int g, int from, int t0[2]) {
    const uint8_t *bm = seg_bitmap(L, s, g);
    t0[0] = t0[1] = 0;
    for (int j = 0; j < from; j++) t0[!(bm[j >> 3] >> (j & 7) & 1)]++;
}

/* Tokens from..n-1 of segment s, dequantized in position order into
 * hk, hv [n - from][kv_dim], keys rotated back. Each set's rows are in
 * position order, so the tokens from `from` on are a suffix of each. */
static int seg_dequant(kv_zip *c, zlayer *L, int s, int from, float *hk, float *hv) {
    int n = L->info[s].n, hd = c->base.shape.head_dim, nkv = c->base.shape.n_kv_heads;
    size_t kd = (size_t)c->kv_dim, row = (size_t)hd * sizeof(float);
    int rc = reserve_floats(&c->dk, &c->dv, &c->cap_d, (size_t)(n - from), (size_t)hd);
    if (rc) return rc;
    for (int g = 0; g < nkv; g++) {
        const zc_packed_seg *seg = &L->heads[(size_t)s * nkv + g];
        const uint8_t *bm = seg_bitmap(L, s, g);
        int t0[2];
        set_starts(L, s, g, from, t0);
        int m0 = seg->set[0].n - t0[0]; /* salient rows from `from` on, then the regular ones */
        zc_packed_set_dequant_rows(&seg->set[0], seg->v_norm, hd, t0[0], m0, c->dk, c->dv);
        zc_packed_set_dequant_rows(&seg->set[1], seg->v_norm, hd, t0[1], seg->set[1].n - t0[1], c->dk + (size_t)m0 * hd,
                                   c->dv + (size_t)m0 * hd);
        for (size_t j = (size_t)from, i_sal = 0, i_reg = (size_t)m0; j < (size_t)n; j++) {
            size_t r = bm[j >> 3] >> (j & 7) & 1 ? i_sal++ : i_reg++;
            memcpy(hk + (j - from) * kd + (size_t)g * hd, c->dk + r * hd, row);
            memcpy(hv + (j - from) * kd + (size_t)g * hd, c->dv + r * hd, row);
        }
    }
    if (L->rot == 1) zc_hadamard_rows(hk, (size_t)hd, (n - from) * nkv, hd);
    return ZC_OK;
}

/* The token step at which a set can be cut into a set of its own: its
 * tiles (8 tokens), and its key groups when it has more than one. */
static int cut_unit(const zc_packed_set *set) {
    int u = set->tiled ? 8 : 1, kg = set->key_group;
    if (kg >= set->n) return u;
    int a = u, b = kg;
    while (b) {
        int r = a % b;
        a = b, b = r;
    }
    return u / a * kg;
}

/* Tokens t..n-1 of `set` as a set of their own (t a multiple of cut_unit,
 * or set->n): the codes of whole tiles or rows, the parameters from token t
 * and from its key group on. */
static zc_packed_set set_suffix(const zc_packed_set *set, int t, int hd) {
    zc_packed_set v = *set;
    v.n = set->n - t;
    v.k_codes += zc_packed_code_bytes(t, hd, set->k_bits, set->tiled);
    v.v_codes += zc_packed_code_bytes(t, hd, set->v_bits, set->tiled);
    v.v_step += t;
    v.v_min += t;
    if (set->key_group < set->n) {
        v.k_step += (size_t)(t / set->key_group) * hd;
        v.k_min += (size_t)(t / set->key_group) * hd;
    }
    return v;
}

/* banded_attend of one query at pos whose band starts inside segment s,
 * `from` tokens into it. Attention does not care for the order of keys,
 * so the segment's visible part need not be rebuilt in position order: per
 * KV head each set's visible suffix is cut at its next tile / key group
 * (cut_unit) and read packed (c->views), and only the few tokens before the
 * cut are dequantized, into that head's rows of c->hk, hv beside its slice
 * of the window. Three parts merge by log-sum-exp: those rows, the views
 * (both per KV head) and the later segments. */
static int banded_decode(kv_zip *c, zlayer *L, int s, int from, const float *q, float *out) {
    const zc_kv_shape *sh = &c->base.shape;
    int nkv = sh->n_kv_heads, hd = sh->head_dim, G = sh->n_heads / nkv, nh = sh->n_heads;
    size_t kd = (size_t)c->kv_dim, cap = (size_t)L->info[s].n + L->wlen; /* rows per head */
    zc_attn_dims d = {nh, nkv, hd}, dg = {G, 1, hd};
    const float *qp = segment_queries(c, L, q, 1);
    int rc = reserve_floats(&c->hk, &c->hv, &c->cap_h, (size_t)nkv * cap, (size_t)hd);
    for (int g = 0; g < nkv && rc == ZC_OK; g++) {
        const zc_packed_seg *seg = &L->heads[(size_t)s * nkv + g];
        float *bk = c->hk + (size_t)g * cap * hd, *bv = c->hv + (size_t)g * cap * hd;
        int t0[2], rows = 0;
        set_starts(L, s, g, from, t0);
        c->views[g].v_norm = seg->v_norm;
        for (int st = 0; st < 2; st++) {
            const zc_packed_set *set = &seg->set[st];
            int u = cut_unit(set), cut = (t0[st] + u - 1) / u * u;
            cut = cut < set->n ? cut : set->n;
            zc_packed_set_dequant_rows(set, seg->v_norm, hd, t0[st], cut - t0[st], bk + (size_t)rows * hd,
                                       bv + (size_t)rows * hd);
            rows += cut - t0[st];
            c->views[g].set[st] = set_suffix(set, cut, hd);
        }
        if (L->rot == 1) zc_hadamard_rows(bk, (size_t)hd, rows, hd);
        for (int j = 0; j < L->wlen; j++, rows++) {
            zc_fp16_to_f32_row(L->wk + (size_t)j * kd + (size_t)g * hd, bk + (size_t)rows * hd, (size_t)hd);
            zc_fp16_to_f32_row(L->wv + (size_t)j * kd + (size_t)g * hd, bv + (size_t)rows * hd, (size_t)hd);
        }
        size_t qo = (size_t)g * G * hd, lo = (size_t)g * G;
        if ((rc = zc_attn_forward(c->base.pool, &dg, q + qo, 1, rows - 1, bk, bv, ZC_TYPE_F32, (size_t)hd, rows,
                                  out + qo, c->lse_w + lo, &c->s_fwd)) == ZC_OK)
            rc = zc_attn_packed(c->base.pool, &dg, qp + qo, 1, &c->views[g], 1, c->out_p + qo, c->lse_p + lo,
                                &c->s_packed);
    }
    if (rc) return rc;
    merge_parts(c, 1, out);
    if (s + 1 == L->n_segs) return ZC_OK;
    rc = zc_attn_packed(c->base.pool, &d, qp, 1, L->heads + (size_t)(s + 1) * nkv, L->n_segs - s - 1, c->out_p,
                        c->lse_p, &c->s_packed);
    if (rc) return rc;
    memcpy(c->lse_w, c->lse_t, (size_t)nh * sizeof(float));
    merge_parts(c, 1, out);
    return ZC_OK;
}

/* Attention of queries pos..pos+n-1 of a sliding-window layer into out and
 * c->lse_t. Segments that start at or after the last query's band start are
 * seen whole by every query: packed attention, as on a global layer. Those
 * before (the partly visible ones: one in a decode step) are dequantized
 * into c->hk, hv from the first query's band start on, the window follows
 * in fp32, and each query reads the suffix of those rows its band allows
 * (as kv_window.c: the queries that see every row in one causal call, the
 * others one by one). The two parts merge by log-sum-exp. */
static int banded_attend(kv_zip *c, zlayer *L, int pos, int n, const float *q, float *out) {
    const zc_kv_shape *sh = &c->base.shape;
    zc_attn_dims d = {sh->n_heads, sh->n_kv_heads, sh->head_dim};
    size_t kd = (size_t)c->kv_dim, q_dim = (size_t)sh->n_heads * sh->head_dim;
    int lo_last = band_lo(L, pos + n - 1), whole = 0, start = L->p0; /* first segment every query sees whole */
    while (whole < L->n_segs && start < lo_last) start += L->info[whole++].n;
    if (n == 1 && whole > 0) /* the band starts inside segment whole - 1 */
        return banded_decode(c, L, whole - 1, lo_last - (start - L->info[whole - 1].n), q, out);
    /* the first row's position: <= start, since band_trim(pos) left p0 <= band_lo(pos) <= w0 */
    int first = band_lo(L, pos) > L->p0 ? band_lo(L, pos) : L->p0;
    int m = start - first, rows = m + L->wlen;
    int rc = reserve_floats(&c->hk, &c->hv, &c->cap_h, (size_t)rows, kd);
    for (int s = 0, p = L->p0; rc == ZC_OK && s < whole; p += L->info[s++].n)
        if (p + L->info[s].n > first) {
            int from = first > p ? first - p : 0;
            rc = seg_dequant(c, L, s, from, c->hk + (size_t)(p + from - first) * kd, c->hv + (size_t)(p + from - first) * kd);
        }
    if (rc) return rc;
    zc_fp16_to_f32_row(L->wk, c->hk + (size_t)m * kd, (size_t)L->wlen * kd);
    zc_fp16_to_f32_row(L->wv, c->hv + (size_t)m * kd, (size_t)L->wlen * kd);
    float *lse = whole < L->n_segs ? c->lse_w : c->lse_t;
    int r0 = m + pos - L->w0, n_full = 0; /* row of query 0 */
    while (n_full < n && band_lo(L, pos + n_full) <= first) n_full++;
    if (n_full && (rc = zc_attn_forward(c->base.pool, &d, q, n_full, r0, c->hk, c->hv, ZC_TYPE_F32, kd, r0 + n_full,
                                        out, lse, &c->s_fwd)))
        return rc;
    for (int i = n_full; i < n; i++) {
        size_t f = (size_t)(band_lo(L, pos + i) - first); /* rows before f are out of its band */
        if ((rc = zc_attn_forward(c->base.pool, &d, q + i * q_dim, 1, r0 + i - (int)f, c->hk + f * kd,
                                  c->hv + f * kd, ZC_TYPE_F32, kd, r0 + i - (int)f + 1, out + i * q_dim,
                                  lse + (size_t)i * sh->n_heads, &c->s_fwd)))
            return rc;
    }
    if (whole == L->n_segs) return ZC_OK;
    rc = zc_attn_packed(c->base.pool, &d, segment_queries(c, L, q, n), n, L->heads + (size_t)whole * sh->n_kv_heads,
                        L->n_segs - whole, c->out_p, c->lse_p, &c->s_packed);
    if (rc) return rc;
    merge_parts(c, n, out);
    return ZC_OK;
}

/* Prefill: probe rows of the block's queries -> normalized column scores of
 * every window token -> compress the window. */
static int prefill_compress(kv_zip *c, zlayer *L, int pos, int n, const float *q) {
    const zc_kv_shape *sh = &c->base.shape;
    const float *lse = c->lse_t;
    int skip = 0; /* a sliding-window layer's window rows that no later query sees: dropped, not compressed */
    if (L->band) {
        skip = band_lo(L, pos + n) > L->w0 ? band_lo(L, pos + n) - L->w0 : 0;
        if (skip == L->wlen) { /* nothing the next query sees (a band of 1) */
            band_trim(c, L, pos + n);
            return ZC_OK;
        }
        int before = L->w0 + skip - pos; /* the probes are the queries that see what is kept */
        if (before > 0) {
            q += (size_t)before * sh->n_heads * sh->head_dim;
            lse += (size_t)before * sh->n_heads;
            pos += before;
            n -= before;
        }
    }
    int nkv = sh->n_kv_heads, W = L->wlen - skip, q_off = pos - (L->w0 + skip);
    int rc = reserve_window_scratch(c, W);
    if (rc) return rc;
    int32_t *probes = c->ibuf + 2 * c->cap_w, *den = c->ibuf;
    /* stream = the block's first position: every layer of a block uses the same probes */
    int n_probes = zc_probe_select(&c->probes, n, (uint64_t)(unsigned)pos, probes);
    if (n_probes < 0) return n_probes;
    memset(c->sc, 0, (size_t)nkv * W * sizeof(float));
    zc_attn_dims d = {sh->n_heads, nkv, sh->head_dim};
    rc = zc_attn_colsum(c->base.pool, &d, q, probes, n_probes, q_off, L->wk + (size_t)skip * c->kv_dim, ZC_TYPE_F16,
                        (size_t)c->kv_dim, W, lse, c->sc, (size_t)W, &c->s_fwd);
    if (rc) return rc;
    denominators(c, W, n, q_off, probes, n_probes, NULL, den);
    normalize(c, W, c->sc, (size_t)W, den, c->sc);
    return compress_pieces(c, L, skip, c->sc, L->band ? band_piece(c, L) : W, q, probes, n_probes);
}

/* The window index of the first column the decode query at `pos` sees. */
static int probe_first(const zlayer *L, int pos) { return band_lo(L, pos) > L->w0 ? band_lo(L, pos) - L->w0 : 0; }

/* Add query i's exact softmax row (by c->lse_t) over window columns
 * first..q_off+i to col [n_kv_heads][ldc]. */
static int window_colsum(kv_zip *c, zlayer *L, const float *q, int32_t i, int q_off, int first, float *col, size_t ldc) {
    const zc_kv_shape *sh = &c->base.shape;
    zc_attn_dims d = {sh->n_heads, sh->n_kv_heads, sh->head_dim};
    return zc_attn_colsum(NULL, &d, q, &i, 1, q_off - first, L->wk + (size_t)first * c->kv_dim, ZC_TYPE_F16,
                          (size_t)c->kv_dim, L->wlen - first, c->lse_t, col + first, ldc, &c->s_fwd);
}

/* Streaming: the n queries at positions pos.. (the window's last n tokens)
 * add their rows to the probe statistics when they are probes (paper rule),
 * and the window is compressed once it holds stream_gap tokens. */
static int stream_step(kv_zip *c, zlayer *L, int pos, int n, const float *q) {
    const zc_kv_shape *sh = &c->base.shape;
    int nkv = sh->n_kv_heads, W = L->wlen, q_off = W - n; /* window index of query 0 */
    int gap = layer_gap(c, L), full = W >= gap;
    int paper = c->base.cfg.decode_rule == ZC_KV_DECODE_PAPER;
    int rc = reserve_window_scratch(c, W);
    if (rc) return rc;
    if (paper) {
        for (int i = 0; i < n; i++)
            if (decode_probe(c, q_off + i, pos + i, gap)) {
                int first = probe_first(L, pos + i);
                for (int j = first; j <= q_off + i; j++) L->ncol[j]++;
                if ((rc = window_colsum(c, L, q, i, q_off, first, L->col, (size_t)L->wcap))) return rc;
            }
    }
    if (!full) return ZC_OK;
    if (paper) {
        denominators(c, W, W, 0, NULL, 0, L->ncol, c->ibuf);
        normalize(c, W, L->col, (size_t)L->wcap, c->ibuf, c->sc);
    } else { /* the reference code: the compressing step's (last) query row, unnormalized */
        memset(c->sc, 0, (size_t)nkv * W * sizeof(float));
        if ((rc = window_colsum(c, L, q, n - 1, q_off, probe_first(L, pos + n - 1), c->sc, (size_t)W))) return rc;
    }
    window_to_f32(c, L);
    return compress_window(c, L, c->sc, 1, q, NULL, n); /* a layer's first choice from decode: this step's queries */
}

static int zip_attend(zc_kv_cache *base, int layer, int pos, int n, const float *q, float *out) {
    kv_zip *c = (kv_zip *)base;
    const zc_kv_shape *sh = &base->shape;
    int rc = zc_kv_check_read(base, layer, pos, n, zc_kv_has_layer(base, layer) ? c->L[layer].n_tok : -1);
    if (rc) return rc;
    zlayer *L = &c->L[layer];
    if (n == 0) return ZC_OK;
    if (L->band) band_trim(c, L, pos);
    if (pos + n != L->n_tok || pos < L->w0)
        return zc_error(ZC_ERR_UNSUPPORTED,
                        "kv zipcache: attention must be for the latest written tokens (asked %d..%d, layer %d holds "
                        "%d, window from %d)", pos, pos + n - 1, layer, L->n_tok, L->w0);
    rc = reserve_queries(c, n);
    if (rc) return rc;
    zc_attn_dims d = {sh->n_heads, sh->n_kv_heads, sh->head_dim};
    if (band_lo(L, pos + n - 1) > L->p0) { /* a band that leaves out some of what the layer holds */
        rc = banded_attend(c, L, pos, n, q, out);
    } else { /* every query sees everything held: a global layer's attention */
        rc = zc_attn_forward(base->pool, &d, q, n, pos - L->w0, L->wk, L->wv, ZC_TYPE_F16, (size_t)c->kv_dim, L->wlen,
                             out, L->n_segs ? c->lse_w : c->lse_t, &c->s_fwd);
        if (rc == ZC_OK && L->n_segs &&
            (rc = zc_attn_packed(base->pool, &d, segment_queries(c, L, q, n), n, L->heads, L->n_segs, c->out_p,
                                 c->lse_p, &c->s_packed)) == ZC_OK)
            merge_parts(c, n, out);
    }
    if (rc) return rc;
    /* A prompt chunk (the first block of a sequence, or a block of at least
     * stream_gap tokens) is scored by its probes and compressed now; a short
     * block later on (several tokens scored or speculated per call) streams
     * like single decode tokens, so it does not become a tiny segment. */
    int chunk = n > 1 && (pos == 0 || n >= layer_gap(c, L));
    rc = chunk ? prefill_compress(c, L, pos, n, q) : stream_step(c, L, pos, n, q);
    if (rc == ZC_OK && L->band) band_trim(c, L, pos + n);
    return rc;
}

/* A layer's rotation before its first compression: as given, or -1 (to be
 * chosen) under auto where head_dim can be rotated at all. */
static int initial_rot(const zc_kv_cache *base) {
    if (base->cfg.rotate_keys != ZC_ZIP_ROTATE_AUTO) return base->cfg.rotate_keys == ZC_ZIP_ROTATE_ON;
    return zc_hadamard_ok(base->shape.head_dim) ? -1 : 0;
}

/* Only the window can be cut: compressed segments are never un-compressed. */
static int zip_truncate(zc_kv_cache *base, int n_keep) {
    kv_zip *c = (kv_zip *)base;
    if (n_keep < 0 || n_keep > base->n_tokens)
        return zc_error(ZC_ERR_ARG, "kv zipcache: cannot keep %d of %d tokens", n_keep, base->n_tokens);
    for (int l = 0; l < base->shape.n_layers; l++) {
        if (n_keep != 0 && n_keep < c->L[l].w0)
            return zc_error(ZC_ERR_UNSUPPORTED,
                            "kv zipcache: cannot truncate to %d tokens: positions before %d are compressed (only a "
                            "reset to 0 or a cut inside the fp16 window is possible)", n_keep, c->L[l].w0);
        if (n_keep != 0 && band_lo(&c->L[l], n_keep) < c->L[l].p0)
            return zc_error(ZC_ERR_UNSUPPORTED, "kv zipcache: cannot truncate to %d tokens: sliding-window layer %d "
                            "no longer holds positions %d..%d", n_keep, l, band_lo(&c->L[l], n_keep), c->L[l].p0 - 1);
    }
    for (int l = 0; l < base->shape.n_layers; l++) {
        zlayer *L = &c->L[l];
        if (n_keep == 0) {
            L->n_segs = 0;
            L->arena_used = 0;
            L->w0 = L->wlen = L->n_tok = L->p0 = 0;
            L->n_stream = 0;
            L->last_n = 0;
            L->rot = initial_rot(base); /* a new sequence chooses again */
            probe_stats_clear(c, L);
        } else if (L->n_tok > n_keep) {
            int cut = n_keep - L->w0; /* window tokens kept */
            for (int g = 0; g < base->shape.n_kv_heads; g++)
                memset(L->col + (size_t)g * L->wcap + cut, 0, (size_t)(L->wlen - cut) * sizeof(float));
            memset(L->ncol + cut, 0, (size_t)(L->wlen - cut) * sizeof(int));
            L->wlen = cut;
            L->n_tok = n_keep;
        }
    }
    base->n_tokens = n_keep;
    return ZC_OK;
}

static void zip_usage(const zc_kv_cache *base, zc_kv_usage *u) {
    const kv_zip *c = (const kv_zip *)base;
    memset(u, 0, sizeof *u);
    for (int l = 0; l < base->shape.n_layers; l++) {
        const zlayer *L = &c->L[l];
        size_t data = 0;
        for (int s = 0; s < L->n_segs; s++) {
            u->codes += L->info[s].codes;
            u->params += L->info[s].params;
            u->index += L->info[s].index;
            data += L->info[s].codes + L->info[s].params + L->info[s].index;
        }
        u->other += L->arena_used - data; /* alignment padding between blobs */
        u->window += 2 * (size_t)L->wlen * c->kv_dim * sizeof(zc_fp16);
    }
    u->total = u->codes + u->params + u->window + u->index + u->other;
    u->n_tokens = base->n_tokens;
    u->elements = 2 * (int64_t)base->n_tokens * base->shape.n_layers * c->kv_dim;
    u->n_compressions = c->L[base->shape.n_layers - 1].n_stream;
}

static void zip_destroy(zc_kv_cache *base) {
    kv_zip *c = (kv_zip *)base;
    if (c->L)
        for (int l = 0; l < base->shape.n_layers; l++) {
            zlayer *L = &c->L[l];
            free(L->wk);
            free(L->wv);
            free(L->col);
            free(L->ncol);
            free(L->heads);
            free(L->info);
            free(L->arena);
            free(L->last_scores);
        }
    free(c->L);
    free(c->out_p);
    free(c->qrot);
    free(c->lse_p);
    free(c->lse_t);
    free(c->lse_w);
    free(c->xk);
    free(c->xv);
    free(c->sc);
    free(c->cbuf);
    free(c->ibuf);
    free(c->u64);
    free(c->kq);
    free(c->hk);
    free(c->hv);
    free(c->dk);
    free(c->dv);
    free(c->views);
    zc_attn_scratch_free(&c->s_fwd);
    zc_attn_scratch_free(&c->s_packed);
    free(c);
}

/* State, per layer: n_tok, w0, wlen, n_stream, n_segs; per segment its
 * token count, salient count and plan (key and value widths of the salient
 * and regular sets, key group: the layout follows from them, seg_layout); arena_used and the arena bytes as stored
 * (blobs of params, codes and bitmaps); the fp16 window K and V
 * [wlen][kv_dim]; the decode probe sums col [n_kv_heads][wlen] and ncol
 * [wlen]. The latest compression's scores (research output) are not kept.
 * Under --kv-rotate auto each layer's head is followed by its choice (i32:
 * 1 rotated, 0 not, -1 not chosen yet); on and off store nothing more, so
 * their sessions read as before. */
static int zip_save(const zc_kv_cache *base, zc_kv_writer *w) {
    const kv_zip *c = (const kv_zip *)base;
    int nkv = base->shape.n_kv_heads, rc = ZC_OK;
    for (int l = 0; rc == ZC_OK && l < base->shape.n_layers; l++) {
        const zlayer *L = &c->L[l];
        int32_t head[5] = {L->n_tok, L->w0, L->wlen, L->n_stream, L->n_segs};
        rc = zc_kvw_put(w, head, sizeof head);
        if (rc == ZC_OK && base->cfg.rotate_keys == ZC_ZIP_ROTATE_AUTO) rc = zc_kvw_i32(w, L->rot);
        if (rc == ZC_OK && L->band) rc = zc_kvw_i32(w, L->p0);
        for (int s = 0; rc == ZC_OK && s < L->n_segs; s++) {
            const zplan *p = &L->info[s].plan;
            int32_t seg[7] = {L->info[s].n, L->heads[(size_t)s * nkv].set[0].n, p->kb[0], p->kb[1], p->vb[0], p->vb[1],
                              p->kg};
            rc = zc_kvw_put(w, seg, sizeof seg);
        }
        uint64_t used = L->arena_used;
        size_t wbytes = (size_t)L->wlen * c->kv_dim * sizeof(zc_fp16);
        if (rc == ZC_OK) rc = zc_kvw_put(w, &used, sizeof used);
        if (rc == ZC_OK) rc = zc_kvw_put(w, L->arena, L->arena_used);
        if (rc == ZC_OK) rc = zc_kvw_put(w, L->wk, wbytes);
        if (rc == ZC_OK) rc = zc_kvw_put(w, L->wv, wbytes);
        for (int g = 0; rc == ZC_OK && L->wlen > 0 && g < nkv; g++)
            rc = zc_kvw_put(w, L->col + (size_t)g * L->wcap, (size_t)L->wlen * sizeof(float));
        if (rc == ZC_OK) rc = zc_kvw_put(w, L->ncol, (size_t)L->wlen * sizeof(int));
    }
    return rc;
}

/* The salient bitmaps of a loaded layer (sliding-window layers read them to
 * put a segment's tokens back in position order): each head's marks exactly
 * its salient set's count of the segment's tokens, and nothing past them. */
static int check_bitmaps(const kv_zip *c, const zlayer *L, int l) {
    int nkv = c->base.shape.n_kv_heads;
    for (int s = 0; s < L->n_segs; s++)
        for (int g = 0; g < nkv; g++) {
            const uint8_t *bm = seg_bitmap(L, s, g);
            int n = L->info[s].n, marked = 0, bytes = (n + 7) / 8;
            for (int i = 0; i < bytes; i++) marked += __builtin_popcount(bm[i]);
            int stray = n % 8 && bm[bytes - 1] >> (n % 8);
            if (stray || marked != L->heads[(size_t)s * nkv + g].set[0].n)
                return zc_error(ZC_ERR_FORMAT, "kv zipcache: layer %d segment %d head %d: the salient bitmap marks %d "
                                "of %d tokens%s, the salient set holds %d", l, s, g, marked, n,
                                stray ? " and bits past them" : "", L->heads[(size_t)s * nkv + g].set[0].n);
        }
    return ZC_OK;
}

static int zip_load(zc_kv_cache *base, zc_kv_reader *r) {
    kv_zip *c = (kv_zip *)base;
    int nkv = base->shape.n_kv_heads, max = base->shape.max_ctx, rc;
    for (int l = 0; l < base->shape.n_layers; l++) {
        zlayer *L = &c->L[l];
        int32_t n_tok, w0, wlen, n_stream, n_segs;
        if ((rc = zc_kvr_i32(r, 0, max, "token count", &n_tok)) || (rc = zc_kvr_i32(r, 0, n_tok, "window start", &w0)) ||
            (rc = zc_kvr_i32(r, n_tok - w0, n_tok - w0, "window length", &wlen)) ||
            (rc = zc_kvr_i32(r, 0, INT32_MAX, "compression count", &n_stream)) ||
            (rc = zc_kvr_i32(r, 0, w0, "segment count", &n_segs)))
            return rc;
        int32_t rot = initial_rot(base);
        /* auto: a chosen rotation once the layer has segments (rotated only where head_dim allows), none before;
           a sliding-window layer may have dropped the segments it chose with */
        if (base->cfg.rotate_keys == ZC_ZIP_ROTATE_AUTO &&
            (rc = zc_kvr_i32(r, n_segs ? 0 : -1, n_segs || (L->band && w0) ? zc_hadamard_ok(base->shape.head_dim) : -1,
                             "key rotation", &rot)))
            return rc;
        if (l > 0 && n_tok != c->L[0].n_tok) return zc_error(ZC_ERR_FORMAT, "kv zipcache: layers hold different token counts");
        /* a sliding-window layer: the first position held, which the next query's band must not precede */
        int32_t p0 = 0;
        if (L->band && (rc = zc_kvr_i32(r, 0, w0 < band_lo(L, n_tok) ? w0 : band_lo(L, n_tok), "first held position", &p0)))
            return rc;
        int seen = 0;
        for (int s = 0; s < n_segs; s++) {
            int32_t n, ns, kb[2], vb[2], kg;
            if ((rc = zc_kvr_i32(r, 1, w0 - p0 - seen, "segment length", &n)) || (rc = zc_kvr_i32(r, 0, n, "salient count", &ns)) ||
                (rc = zc_kvr_i32(r, 1, 8, "salient key width", &kb[0])) ||
                (rc = zc_kvr_i32(r, 1, 8, "regular key width", &kb[1])) ||
                (rc = zc_kvr_i32(r, 1, 8, "salient value width", &vb[0])) ||
                (rc = zc_kvr_i32(r, 1, 8, "regular value width", &vb[1])) ||
                (rc = zc_kvr_i32(r, 0, n, "key group", &kg)))
                return rc;
            zplan plan = {{kb[0], kb[1]}, {vb[0], vb[1]}, kg};
            if ((rc = seg_layout(c, L, n, ns, &plan))) return rc;
            L->arena_used = L->info[s].off + L->info[s].params + L->info[s].codes + L->info[s].index;
            L->n_segs++;
            seen += n;
        }
        if (seen != w0 - p0) return zc_error(ZC_ERR_FORMAT, "kv zipcache: segments hold %d tokens, expected %d", seen, w0 - p0);
        uint64_t used;
        if ((rc = zc_kvr_get(r, &used, sizeof used, "arena size"))) return rc;
        if (used != L->arena_used)
            return zc_error(ZC_ERR_FORMAT, "kv zipcache: layer %d stores %llu segment bytes, its segments take %zu", l,
                            (unsigned long long)used, L->arena_used);
        if ((rc = zc_kvr_get(r, L->arena, L->arena_used, "segments")) || (rc = window_reserve(c, L, wlen))) return rc;
        if ((rc = check_bitmaps(c, L, l))) return rc;
        size_t wbytes = (size_t)wlen * c->kv_dim * sizeof(zc_fp16);
        if ((rc = zc_kvr_get(r, L->wk, wbytes, "window keys")) || (rc = zc_kvr_get(r, L->wv, wbytes, "window values")))
            return rc;
        for (int g = 0; wlen > 0 && g < nkv; g++)
            if ((rc = zc_kvr_get(r, L->col + (size_t)g * L->wcap, (size_t)wlen * sizeof(float), "probe sums"))) return rc;
        if ((rc = zc_kvr_get(r, L->ncol, (size_t)wlen * sizeof(int), "probe counts"))) return rc;
        L->n_tok = n_tok;
        L->w0 = w0;
        L->p0 = p0;
        L->wlen = wlen;
        L->n_stream = n_stream;
        L->rot = rot;
    }
    base->n_tokens = c->L[base->shape.n_layers - 1].n_tok;
    return ZC_OK;
}

static const zc_kv_ops ZIP_OPS = {"zipcache", zip_write, zip_attend, zip_truncate, zip_usage, zip_destroy,
                                  zip_save, zip_load};

int zc_kv_create_zipcache(const zc_kv_config *cfg, const zc_kv_shape *shape, zc_pool *pool, zc_kv_cache **out) {
    *out = NULL;
    int bits[4] = {cfg->k_hi_bits, cfg->k_lo_bits, cfg->v_hi_bits, cfg->v_lo_bits};
    for (int i = 0; i < 4; i++)
        if (bits[i] < 0 || bits[i] > 8) /* 0: chosen by the policy */
            return zc_error(ZC_ERR_ARG, "kv zipcache: bit widths must be 1..8 or 0 = chosen (K %d/%d, V %d/%d)", bits[0], bits[1],
                            bits[2], bits[3]);
    if (shape->head_dim % 8)
        return zc_error(ZC_ERR_UNSUPPORTED, "kv zipcache: head_dim %d is not a multiple of 8", shape->head_dim);
    if (cfg->stream_gap < 1) return zc_error(ZC_ERR_ARG, "kv zipcache: stream gap %d < 1", cfg->stream_gap);
    if (cfg->rotate_keys < ZC_ZIP_ROTATE_OFF || cfg->rotate_keys > ZC_ZIP_ROTATE_AUTO)
        return zc_error(ZC_ERR_ARG, "kv zipcache: unknown key rotation %d", cfg->rotate_keys);
    /* auto: such a head_dim simply never rotates (initial_rot) */
    if (cfg->rotate_keys == ZC_ZIP_ROTATE_ON && !zc_hadamard_ok(shape->head_dim))
        return zc_error(ZC_ERR_UNSUPPORTED, "kv zipcache: head_dim %d is not a power of two (--kv-rotate)",
                        shape->head_dim);
    if ((int)cfg->denom < ZC_DENOM_NONE || (int)cfg->denom > ZC_DENOM_PROBES ||
        (cfg->decode_rule != ZC_KV_DECODE_PAPER && cfg->decode_rule != ZC_KV_DECODE_REFERENCE))
        return zc_error(ZC_ERR_ARG, "kv zipcache: unknown denominator %d or decode rule %d", (int)cfg->denom,
                        (int)cfg->decode_rule);
    kv_zip *c = zc_calloc(1, sizeof *c);
    if (!c) return ZC_ERR_NOMEM;
    c->base.ops = &ZIP_OPS;
    c->base.shape = *shape;
    c->base.cfg = *cfg;
    c->base.pool = pool;
    c->kv_dim = shape->n_kv_heads * shape->head_dim;
    /* Widths all 0 (the default): the policy plans every segment for the bit
     * budget (zip_plan). Any width given: those widths (the others at the
     * paper's 4/2) and a salient ratio, or the count that fills the budget. */
    c->auto_plan = !cfg->k_hi_bits && !cfg->k_lo_bits && !cfg->v_hi_bits && !cfg->v_lo_bits;
    c->budget = cfg->target_bits > 0 ? cfg->target_bits : c->auto_plan ? ZC_ZIP_DEFAULT_BITS : 0;
    c->fixed = (zplan){{cfg->k_hi_bits ? cfg->k_hi_bits : 4, cfg->k_lo_bits ? cfg->k_lo_bits : 2},
                       {cfg->v_hi_bits ? cfg->v_hi_bits : 4, cfg->v_lo_bits ? cfg->v_lo_bits : 2}, cfg->key_group};
    c->ratio = cfg->salient_ratio;
    c->ratio = c->ratio < 0 ? 0 : c->ratio > 1 ? 1 : c->ratio;
    /* cfg keeps r as a float (0.6f = 0.60000002); recover the decimal given so
     * that int((1 - r) * L) counts like the reference code's double */
    c->ratio = round(c->ratio * 1e6) / 1e6;
    zc_probe_default(&c->probes);
    c->probes.seed = cfg->seed;
    int rc = zc_probe_parse(cfg->probes, &c->probes);
    if (rc) {
        zip_destroy(&c->base);
        return rc;
    }
    c->L = zc_calloc((size_t)shape->n_layers, sizeof *c->L);
    c->views = zc_calloc((size_t)shape->n_kv_heads, sizeof *c->views);
    c->keep_pos = -1;
    if (!c->L || !c->views) {
        zip_destroy(&c->base);
        return ZC_ERR_NOMEM;
    }
    for (int l = 0; l < shape->n_layers; l++) {
        const int *band = shape->band;
        c->L[l].rot = initial_rot(&c->base);
        c->L[l].band = band && band[l] > 0 && band[l] < shape->max_ctx ? band[l] : 0;
        c->L[l].budget = c->budget > 0 && c->L[l].band && cfg->local_bits > 0 ? cfg->local_bits : c->budget;
    }
    c->base.shape.band = NULL; /* borrowed: the layers keep their own copy */
    *out = &c->base;
    return ZC_OK;
}

int zc_zip_last_scores(const zc_kv_cache *base, int layer, const float **scores, int *n) {
    if (!base || base->ops != &ZIP_OPS || layer < 0 || layer >= base->shape.n_layers)
        return zc_error(ZC_ERR_ARG, "kv zipcache: no layer %d", layer);
    const zlayer *L = &((const kv_zip *)base)->L[layer];
    if (!L->n_segs) return zc_error(ZC_ERR_ARG, "kv zipcache: layer %d has not compressed yet", layer);
    *scores = L->last_scores;
    *n = L->last_n;
    return ZC_OK;
}

int zc_zip_held(const zc_kv_cache *base, int layer, int *first, int *n, float *k, float *v) {
    if (!base || base->ops != &ZIP_OPS || layer < 0 || layer >= base->shape.n_layers)
        return zc_error(ZC_ERR_ARG, "kv zipcache: no layer %d", layer);
    kv_zip *c = (kv_zip *)base; /* its scratch is used */
    zlayer *L = &c->L[layer];
    size_t kd = (size_t)c->kv_dim;
    *first = L->p0;
    *n = L->n_tok - L->p0;
    int rc = ZC_OK;
    for (int s = 0, p = L->p0; k && rc == ZC_OK && s < L->n_segs; p += L->info[s++].n)
        rc = seg_dequant(c, L, s, 0, k + (size_t)(p - L->p0) * kd, v + (size_t)(p - L->p0) * kd);
    if (k && rc == ZC_OK) {
        zc_fp16_to_f32_row(L->wk, k + (size_t)(L->w0 - L->p0) * kd, (size_t)L->wlen * kd);
        zc_fp16_to_f32_row(L->wv, v + (size_t)(L->w0 - L->p0) * kd, (size_t)L->wlen * kd);
    }
    return rc;
}

int zc_zip_last_plan(const zc_kv_cache *base, int layer, zc_zip_plan *plan) {
    if (!base || base->ops != &ZIP_OPS || layer < 0 || layer >= base->shape.n_layers)
        return zc_error(ZC_ERR_ARG, "kv zipcache: no layer %d", layer);
    const zlayer *L = &((const kv_zip *)base)->L[layer];
    if (!L->n_segs) return zc_error(ZC_ERR_ARG, "kv zipcache: layer %d has not compressed yet", layer);
    *plan = L->info[L->n_segs - 1].plan;
    return ZC_OK;
}

int zc_zip_rotated(const zc_kv_cache *base, int layer) {
    if (!base || base->ops != &ZIP_OPS || layer < 0 || layer >= base->shape.n_layers)
        return zc_error(ZC_ERR_ARG, "kv zipcache: no layer %d", layer);
    return ((const kv_zip *)base)->L[layer].rot;
}

int zc_zip_rotation_count(const zc_kv_cache *base, int *n_chosen) {
    int rotated = 0;
    *n_chosen = 0;
    if (!base || base->ops != &ZIP_OPS) return 0;
    const kv_zip *c = (const kv_zip *)base;
    for (int l = 0; l < base->shape.n_layers; l++)
        if (c->L[l].n_segs) {
            ++*n_chosen;
            rotated += c->L[l].rot == 1;
        }
    return rotated;
}

int zc_zip_last_salient(const zc_kv_cache *base, int layer, int head, int *n_salient, int *n_tokens) {
    if (!base || base->ops != &ZIP_OPS || layer < 0 || layer >= base->shape.n_layers || head < 0 ||
        head >= base->shape.n_kv_heads)
        return zc_error(ZC_ERR_ARG, "kv zipcache: no layer %d / head %d", layer, head);
    const zlayer *L = &((const kv_zip *)base)->L[layer];
    if (!L->n_segs) return zc_error(ZC_ERR_ARG, "kv zipcache: layer %d has not compressed yet", layer);
    int s = L->n_segs - 1;
    const uint8_t *bm = seg_bitmap(L, s, head);
    int cnt = 0;
    for (int j = 0; j < L->info[s].n; j++) cnt += (bm[j >> 3] >> (j & 7)) & 1;
    *n_salient = cnt;
    *n_tokens = L->info[s].n;
    return ZC_OK;
}

/* ---- Options (kv_options.h; uniform and mikv read the same table) --------- */

/* "all" | "random:F" | "recent:F" | "random+recent:F:F", fractions in (0, 1]. */
static int check_probes(const char *opt, const char *val) {
    if (!strcmp(val, "all")) return ZC_OK;
    const char *kinds[] = {"random+recent:", "random:", "recent:"};
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(kinds[k]);
        if (strncmp(val, kinds[k], n)) continue;
        const char *p = val + n;
        for (int f = 0; f < (k == 0 ? 2 : 1); f++) {
            char *end;
            errno = 0;
            double x = strtod(p, &end);
            if (end == p || errno || !(x > 0 && x <= 1))
                return zc_error(ZC_ERR_ARG, "%s: '%s' needs fractions in (0, 1], e.g. random+recent:0.05:0.05", opt,
                                val);
            p = end;
            if (k == 0 && f == 0) {
                if (*p != ':') return zc_error(ZC_ERR_ARG, "%s: '%s' needs two fractions: random+recent:R:S", opt, val);
                p++;
            }
        }
        if (*p) return zc_error(ZC_ERR_ARG, "%s: '%s' has trailing characters", opt, val);
        return ZC_OK;
    }
    return zc_error(ZC_ERR_ARG, "%s: '%s' is not a probe policy (all, random:F, recent:F, random+recent:F:F)", opt,
                    val);
}

/* --kv-hi-bits / --kv-lo-bits: keys and values at once. */
static void set_hi_bits(zc_kv_config *cfg, double b) { cfg->k_hi_bits = cfg->v_hi_bits = (int)b; }
static void set_lo_bits(zc_kv_config *cfg, double b) { cfg->k_lo_bits = cfg->v_lo_bits = (int)b; }
/* An explicit ratio replaces any bit budget given before it. */
static void set_ratio(zc_kv_config *cfg, double r) { (void)r; cfg->target_bits = 0; }

/* Names of the enumerated options, indexed by their values (the CLI's spelling). */
static const char *const DENOM_NAMES[] = {"accumulated", "causal", "probes", NULL}; /* zc_sal_denom */
static const char *const DECODE_NAMES[] = {"paper", "reference", NULL};             /* zc_kv_decode_rule */
static const char *const ROTATE_NAMES[] = {"off", "on", "auto", NULL};               /* ZC_ZIP_ROTATE_* */
static const char *const PLAN_NAMES[] = {"fraction", "error", NULL};                 /* ZC_ZIP_PLAN_* */
static const char *const LOCAL_NAMES[] = {"exact", "compress", NULL};                /* ZC_KV_LOCAL_* */

#define WIDTH(opt, f, what)                                                                                      \
    {.name = opt, .type = ZC_KV_OPT_INT, ZC_KV_FIELD(f), .lo = 1, .hi = 8, .def = 0,                          \
     .help = what ", 0: chosen for the budget (once any width is given: 4 hi, 2 lo)"}

const zc_kv_option zc_zip_options[] = {
    {.name = "hi-bits", .type = ZC_KV_OPT_INT, .lo = 1, .hi = 8, .set = set_hi_bits,
     .help = "bits of salient keys and values"},
    {.name = "lo-bits", .type = ZC_KV_OPT_INT, .lo = 1, .hi = 8, .set = set_lo_bits,
     .help = "bits of regular keys and values"},
    WIDTH("k-hi-bits", k_hi_bits, "bits of salient keys"),
    WIDTH("k-lo-bits", k_lo_bits, "bits of regular keys"),
    WIDTH("v-hi-bits", v_hi_bits, "bits of salient values"),
    WIDTH("v-lo-bits", v_lo_bits, "bits of regular values"),
    {.name = "salient-ratio", .type = ZC_KV_OPT_FLOAT, ZC_KV_FIELD(salient_ratio), .lo = 0, .hi = 1, .def = 0.6,
     .set = set_ratio, .help = "fraction of tokens kept at hi bits when widths are given (replaces --kv-bits)"},
    {.name = "probes", .type = ZC_KV_OPT_TEXT, ZC_KV_FIELD(probes), .def_text = "random+recent:0.05:0.05",
     .check = check_probes, .help = "queries that measure saliency: all, random:F, recent:F, random+recent:F:F"},
    {.name = "denom", .type = ZC_KV_OPT_CHOICE, ZC_KV_FIELD(denom), .choices = DENOM_NAMES, .def = ZC_DENOM_CAUSAL,
     .help = "normalization of the probes' column sums"},
    {.name = "decode-rule", .type = ZC_KV_OPT_CHOICE, ZC_KV_FIELD(decode_rule), .choices = DECODE_NAMES,
     .def = ZC_KV_DECODE_PAPER, .help = "saliency of a decode window: the paper's probes or the reference code's row"},
    {.name = "int8-query", .type = ZC_KV_OPT_CHOICE, ZC_KV_FIELD(int8_query), .choices = zc_kv_onoff, .def = 1,
     .help = "integer attention on packed codes"},
    {.name = "stream-gap", .type = ZC_KV_OPT_INT, ZC_KV_FIELD(stream_gap), .lo = 1, .hi = 1 << 20, .def = 100,
     .help = "decode tokens per compression"},
    {.name = "window-share", .type = ZC_KV_OPT_FLOAT, ZC_KV_FIELD(window_share), .lo = 0, .hi = 1, .def = ZIP_WINDOW_SHARE,
     .help = "under --kv-bits: the fp16 window's most mean share of the stored bits (the stream gap "
             "shortens while the context is short); 0: a fixed stream gap"},
    {.name = "sinks", .type = ZC_KV_OPT_INT, ZC_KV_FIELD(sinks), .lo = 0, .hi = 1 << 20, .def = 0,
     .help = "first N tokens always at hi bits"},
    {.name = "rotate", .type = ZC_KV_OPT_CHOICE, ZC_KV_FIELD(rotate_keys), .choices = ROTATE_NAMES,
     .def = ZC_ZIP_ROTATE_AUTO,
     .help = "keys Hadamard-rotated before quantization; auto: per layer, where the probes' logits gain"},
    {.name = "plan", .type = ZC_KV_OPT_CHOICE, ZC_KV_FIELD(plan_rule), .choices = PLAN_NAMES,
     .def = ZC_ZIP_PLAN_ERROR,
     .help = "with widths chosen for --kv-bits: the plan whose stored window the probes see with the least error, "
             "or the one whose salient fraction is nearest 0.5"},
    {.name = "local", .type = ZC_KV_OPT_CHOICE, ZC_KV_FIELD(local_layers), .choices = LOCAL_NAMES,
     .def = ZC_KV_LOCAL_COMPRESS,
     .help = "sliding-window layers: their window compressed by the policy like the global layers, or kept exact "
             "in fp16 beside it"},
    {.name = "local-bits", .type = ZC_KV_OPT_FLOAT, ZC_KV_FIELD(local_bits), .lo = 0, .hi = 8, .def = 0,
     .help = "under a bit budget, with local layers compressed: their own budget (0: --kv-bits)"},
    {.name = "key-group", .type = ZC_KV_OPT_INT, ZC_KV_FIELD(key_group), .lo = 0, .hi = 1 << 20, .def = 0,
     .help = "key parameters per group of N tokens (0: one per set)"},
    {.name = "seed", .type = ZC_KV_OPT_U64, ZC_KV_FIELD(seed), .def = 0, .help = "random probes' seed"},
    {0},
};
#undef WIDTH

/* "widths chosen per segment", or the widths given (0 = 4 hi, 2 lo). */
static void show_widths(const zc_kv_config *c, char *buf, size_t cap) {
    if (!c->k_hi_bits && !c->k_lo_bits && !c->v_hi_bits && !c->v_lo_bits)
        snprintf(buf, cap, "widths chosen per segment");
    else
        snprintf(buf, cap, "K %d/%d bits, V %d/%d bits", c->k_hi_bits ? c->k_hi_bits : 4,
                 c->k_lo_bits ? c->k_lo_bits : 2, c->v_hi_bits ? c->v_hi_bits : 4, c->v_lo_bits ? c->v_lo_bits : 2);
}

/* What sets the salient count: the bit budget or the ratio (zc_kv_create_zipcache). */
static void show_mix(const zc_kv_config *c, char *buf, size_t cap) {
    if (c->target_bits > 0)
        snprintf(buf, cap, "budget %.3g bits", (double)c->target_bits);
    else if (!c->k_hi_bits && !c->k_lo_bits && !c->v_hi_bits && !c->v_lo_bits)
        snprintf(buf, cap, "budget %.3g bits (default)", ZC_ZIP_DEFAULT_BITS);
    else
        snprintf(buf, cap, "salient ratio %.3g", (double)c->salient_ratio);
}

/* The window's share of the budget and the plan rule, only where they are
 * not the defaults (the description has to fit a session header's 256 bytes). */
static void show_window_share(const zc_kv_config *c, char *buf, size_t cap) {
    snprintf(buf, cap, c->window_share != (float)ZIP_WINDOW_SHARE ? "window share %g" : "", (double)c->window_share);
}
static void show_plan(const zc_kv_config *c, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", c->plan_rule == ZC_ZIP_PLAN_FRACTION ? "plan by salient fraction" : "");
}

/* off shows nothing and on "rotated keys", as before auto existed, so their
 * saved sessions (whose layout auto extends) still match their description. */
static void show_rotated(const zc_kv_config *c, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", c->rotate_keys == ZC_ZIP_ROTATE_ON ? "rotated keys" : "");
    zc_zip_show_rotate_auto(c, buf + strlen(buf), cap - strlen(buf));
}

void zc_zip_show_rotate_auto(const zc_kv_config *c, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", c->rotate_keys == ZC_ZIP_ROTATE_AUTO ? "keys rotated per layer (auto)" : "");
}

void zc_zip_show_local(const zc_kv_config *c, char *buf, size_t cap) {
    if (c->local_layers == ZC_KV_LOCAL_EXACT)
        snprintf(buf, cap, "local layers exact");
    else
        snprintf(buf, cap, c->local_bits > 0 ? "local layers %g bits" : "", (double)c->local_bits);
}

void zc_zip_budget(zc_kv_config *cfg, double bits) {
    cfg->target_bits = (float)bits; /* the policy derives its plan and salient count from it */
}

/* zipcache's description, and mikv's: mikv fixes the saliency options
 * (kv_variants.c), so it states that instead of their values. */
const zc_kv_shown zc_zip_shown[] = {
    {.fn = show_widths},
    {.fn = show_mix},
    {.option = "probes", .text = "probes {}", .only = "zipcache"},
    {.option = "denom", .text = "denom {}", .only = "zipcache"},
    {.option = "decode-rule", .text = "decode rule {}", .only = "zipcache"},
    {.text = "accumulated scores of all queries", .only = "mikv"},
    ZC_KV_SHOW("stream-gap", "stream gap {}"),
    {.fn = show_window_share},
    ZC_KV_SHOW("sinks", "sinks {}"),
    ZC_KV_SHOW("key-group", "key group {}"),
    {.fn = show_plan},
    {.fn = show_rotated},
    ZC_KV_SHOW("int8-query", "int8 query {}"),
    {.fn = zc_zip_show_local},
    {0},
};

const zc_kv_policy zc_kv_policy_zipcache = {"zipcache", zc_kv_create_zipcache, zc_zip_options, zc_zip_shown, 0,
                                            zc_zip_budget, 1};
