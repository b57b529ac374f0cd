/* Attention on packed ZipCache segments: driver, scalar kernels, reference.
 *
 * Work split: tasks = (block of <= ZC_ATTN_BQ queries, chunk of tokens, KV
 * head g). The tokens of a head are the concatenation of its segments' sets
 * (seg 0 salient, seg 0 regular, seg 1 salient, ...); every head has the same
 * total, so chunk c is the same token range in every head. A task owns the
 * rows (its queries x the G query heads of g), walks its token range set by
 * set and leaves an unnormalized partial (m, l, acc) that is merged with the
 * other chunks' by log-sum-exp afterwards.
 *
 * Inside a set the codes are read one tile of <= TILE tokens at a time and
 * shared by all rows of the task: every packed byte is read from memory once
 * per query block and head group. Rows-layout sets are unpacked to floats
 * (the fp32 path); tiled sets are multiplied in integers as stored (the
 * integer path).
 */
#include "attn/attn_packed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn_impl.h"
#include "quant/ggml_blocks.h"
#include "quant/pack.h"
#include "quant/tiled.h"
#include "util/cpu.h"
#include "util/error.h"
#include "util/small.h"

#define TILE 128          /* tokens per tile (64 measured 3% slower decode with the integer path, 15% with fp32) */
#define SROW (TILE + 8)   /* floats per row of integer-path scores: softmax may write 7 past a row's last token */
_Static_assert(ZC_PACKED_RB * TILE <= 2 * TILE * sizeof(float), "the integer path's byte weights fit in tlayout.w");
#define MIN_CHUNK 256     /* tokens per task at least */

/* ---- scalar kernels (the reference for the AVX2 ones) ------------------- */

static void scores_f32_scalar(int nt, int hd, const float *qs, float bias, const float *kf, float *s) {
    for (int t = 0; t < nt; t++) {
        float dot = 0.0f;
        for (int c = 0; c < hd; c++) dot += qs[c] * kf[(size_t)t * hd + c];
        s[t] = bias + dot;
    }
}

static float softmax_scalar(int nt, float *s, float *m, float *l) {
    float mx = *m, sum = 0.0f;
    for (int t = 0; t < nt; t++) mx = s[t] > mx ? s[t] : mx;
    for (int t = 0; t < nt; t++) sum += (s[t] = expf(s[t] - mx));
    float corr = expf(*m - mx); /* 0 while m is -inf */
    *m = mx;
    *l = *l * corr + sum;
    return corr;
}

static void value_row_scalar(int nt, int hd, const float *p, const float *step, const float *min, const float *vf,
                             const float *norm, float corr, float *w, float *acc) {
    float pmin = 0.0f;
    for (int t = 0; t < nt; t++) {
        w[t] = p[t] * step[t];
        pmin += p[t] * min[t];
    }
    for (int c = 0; c < hd; c++) {
        float u = 0.0f;
        for (int t = 0; t < nt; t++) u += w[t] * vf[(size_t)t * hd + c];
        acc[c] = acc[c] * corr + norm[c] * (u + pmin);
    }
}

static void to_f32_scalar(const uint8_t *src, size_t n, float *dst) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

static void h2f_scalar(const uint16_t *src, int n, float *dst) {
    for (int i = 0; i < n; i++) dst[i] = zc_fp16_to_f32(src[i]);
}

static void scores2_f32_scalar(int nt, int hd, const float *qs0, const float *qs1, float bias0, float bias1,
                               const float *kf, float *s0, float *s1) {
    scores_f32_scalar(nt, hd, qs0, bias0, kf, s0);
    scores_f32_scalar(nt, hd, qs1, bias1, kf, s1);
}

static void value_row2_scalar(int nt, int hd, const float *p0, const float *p1, const float *step, const float *min,
                              const float *vf, const float *norm, float corr0, float corr1, float *w0, float *w1,
                              float *acc0, float *acc1) {
    value_row_scalar(nt, hd, p0, step, min, vf, norm, corr0, w0, acc0);
    value_row_scalar(nt, hd, p1, step, min, vf, norm, corr1, w1, acc1);
}

static void fold_scalar(int R, int hd, const float *qb, const float *kstep, const float *kmin, float *qs, float *qmin,
                        int8_t *qq, float *qa) {
    for (int r = 0; r < R; r++) {
        const float *qr = qb + (size_t)r * hd;
        float *qsr = qs + (size_t)r * hd;
        float bias = 0.0f, amax = 0.0f;
        for (int e = 0; e < hd; e++) {
            qsr[e] = qr[e] * kstep[e];
            bias += qr[e] * kmin[e];
            if (fabsf(qsr[e]) > amax) amax = fabsf(qsr[e]);
        }
        qmin[r] = bias;
        if (qq) {
            float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
            for (int e = 0; e < hd; e++) {
                float x = qsr[e] * inv;
                qq[(size_t)r * hd + e] = (int8_t)(int)(x + (x < 0.0f ? -0.5f : 0.5f)); /* half away from zero */
            }
            qa[r] = amax / 127.0f;
        }
    }
}

/* The integer path's weights (attn_impl.h); attn_packed_i8_x86.h computes the same bytes */
static void weights_scalar(int nt, const float *p, const float *step, const float *min, uint8_t *wq, float *scale,
                           float *pmin) {
    float mx = 0.0f, pm = 0.0f;
    for (int t = 0; t < nt; t++) {
        float w = p[t] * step[t];
        mx = w > mx ? w : mx;
        pm += p[t] * min[t];
    }
    float inv = mx > 0.0f ? 255.0f / mx : 0.0f;
    for (int t = 0; t < nt; t++) wq[t] = (uint8_t)(int)fmaf(p[t] * step[t], inv, 0.5f);
    *scale = mx * (1.0f / 255.0f);
    *pmin = pm;
}

static void scores_t_scalar(int nt, int hd, int bits, const uint8_t *kt, int R, const int8_t *qq, const float *qa,
                            const float *qmin, float *s, int ss) {
    for (int r = 0; r < R; r++)
        for (int t = 0; t < nt; t++) {
            int32_t dot = 0;
            for (int c = 0; c < hd; c++) dot += (int32_t)qq[(size_t)r * hd + c] * zc_tiled_get(ZC_TILED_K, kt, t, c, hd, bits);
            s[(size_t)r * ss + t] = fmaf(qa[r], (float)dot, qmin[r]);
        }
}

static void value_t_scalar(int nt, int hd, int bits, const uint8_t *vt, int R, const uint8_t *wq, int ss,
                           const float *scale, const float *pmin, const float *corr, const float *norm, float *acc) {
    for (int r = 0; r < R; r++)
        for (int c = 0; c < hd; c++) {
            int32_t u = 0;
            for (int t = 0; t < nt; t++) u += (int32_t)wq[(size_t)r * ss + t] * zc_tiled_get(ZC_TILED_V, vt, t, c, hd, bits);
            float *a = acc + (size_t)r * hd + c;
            *a = fmaf(norm[c], fmaf(scale[r], (float)u, pmin[r]), *a * corr[r]);
        }
}

const zc_packed_kernels zc_packed_kernels_scalar = {zc_unpack_scalar,   to_f32_scalar,     h2f_scalar,
                                                    fold_scalar,        scores_f32_scalar, softmax_scalar,
                                                    value_row_scalar,   scores2_f32_scalar, value_row2_scalar,
                                                    scores_t_scalar,    weights_scalar,    value_t_scalar};
/* ---- driver -------------------------------------------------------------- */


/* Per-thread scratch, offsets in floats. R = rows of a task (<= BQ*G). */
typedef struct {
    size_t qb, qs, qmin, qa, qq, kstep, kmin, vnorm, kc, kf, vc, vf, vstep, vmin, s, w, total;
} tlayout;

static tlayout tlayout_for(int R, int hd) {
    tlayout t;
    size_t o = 0, rh = (size_t)R * hd;
    t.qb = o;    o += zc_round16(rh);                   /* [R][hd] queries * 1/sqrt(hd) */
    t.qs = o;    o += zc_round16(rh);                   /* [R][hd] folded with the key step */
    t.qmin = o;  o += zc_round16((size_t)R);            /* [R] sum_c q_c min_c */
    t.qa = o;    o += zc_round16((size_t)R);            /* [R] int8 query scale */
    t.qq = o;    o += zc_round16((rh + 3) / 4);         /* [R][hd] int8 */
    t.kstep = o; o += zc_round16((size_t)hd);           /* [hd] */
    t.kmin = o;  o += zc_round16((size_t)hd);           /* [hd] */
    t.vnorm = o; o += zc_round16((size_t)hd);           /* [hd] */
    t.kc = o;    o += zc_round16((size_t)TILE * hd / 4); /* [TILE][hd] uint8 key codes */
    t.kf = o;    o += zc_round16((size_t)TILE * hd);    /* [TILE][hd] key codes as floats */
    t.vc = o;    o += zc_round16((size_t)TILE * hd / 4); /* [TILE][hd] uint8 value codes */
    t.vf = o;    o += zc_round16((size_t)TILE * hd);    /* [TILE][hd] value codes as floats */
    t.vstep = o; o += zc_round16(TILE);                 /* [TILE] */
    t.vmin = o;  o += zc_round16(TILE);                 /* [TILE] */
    t.s = o;     o += zc_round16(ZC_PACKED_RB * SROW);  /* scores, then probabilities: fp32 path [2][TILE], integer [RB][SROW] */
    t.w = o;     o += zc_round16(2 * TILE);             /* fp32 path: [2][TILE] p_t * step_t; integer: [RB][TILE] bytes */
    t.total = o;
    return t;
}

typedef struct {
    const zc_attn_dims *d;
    const float *q;
    int n_q, G, n_segs;
    const zc_packed_seg *segs;
    zc_packed_kernels kern_table; /* scalar, AVX2 or AVX2 + VNNI */
    const zc_packed_kernels *kern; /* &kern_table */
    float scale;
    int n_qblocks, n_chunks, chunk_len, R_max;
    tlayout tl;
    float *scratch; /* [threads][tl.total] */
    float *part;    /* [n_qblocks][n_chunks][n_kv_heads] partials, see part_of() */
} pk_ctx;

/* acc [R_max][hd], then m [R_max], then l [R_max]. */
static float *part_of(const pk_ctx *c, int qb, int chunk, int g) {
    size_t idx = ((size_t)qb * c->n_chunks + chunk) * c->d->n_kv_heads + g;
    return c->part + idx * (size_t)c->R_max * (c->d->head_dim + 2);
}

/* Fold the rows' queries with key group `grp` of `set`. */
static void fold_queries(const pk_ctx *c, float *ts, int R, const zc_packed_set *set, int grp, int int8) {
    int hd = c->d->head_dim;
    float *kstep = ts + c->tl.kstep, *kmin = ts + c->tl.kmin;
    c->kern->h2f(set->k_step + (size_t)grp * hd, hd, kstep);
    c->kern->h2f(set->k_min + (size_t)grp * hd, hd, kmin);
    c->kern->fold(R, hd, ts + c->tl.qb, kstep, kmin, ts + c->tl.qs, ts + c->tl.qmin,
                  int8 ? (int8_t *)(ts + c->tl.qq) : NULL, ts + c->tl.qa);
}

/* Ask for the codes and value parameters of the next tile (nt tokens whose
 * codes are the kbytes at k and vbytes at v) while the current one is
 * computed: a set is four separate streams (K codes, V codes, steps, minima)
 * that the hardware prefetcher alone left waiting on memory (half of the
 * unpack's time sat on its first load). */
static void prefetch_tile(const uint8_t *k, size_t kbytes, const uint8_t *v, size_t vbytes, const zc_fp16 *vstep,
                          const zc_fp16 *vmin, int nt) {
    for (int t = 0; t < nt; t += 32) { /* 64-byte lines of halves; first, as a burst may drop its tail */
        __builtin_prefetch(vstep + t);
        __builtin_prefetch(vmin + t);
    }
    __builtin_prefetch(vstep + nt - 1);
    __builtin_prefetch(vmin + nt - 1);
    for (size_t o = 0; o < kbytes; o += 64) __builtin_prefetch(k + o);
    for (size_t o = 0; o < vbytes; o += 64) __builtin_prefetch(v + o);
}

/* dst [nt]: the halves of src for [lo, hi), zero elsewhere. */
static void h2f_range(const zc_packed_kernels *K, const zc_fp16 *src, int lo, int hi, int nt, float *dst) {
    memset(dst, 0, (size_t)lo * sizeof(float));
    K->h2f(src + lo, hi - lo, dst + lo);
    memset(dst + hi, 0, (size_t)(nt - hi) * sizeof(float));
}

/* The integer path over tokens [a, b) of one tiled set (inside one key
 * group). Tiles start on whole groups of 8 tokens, so a tile's edges may hold
 * up to 7 tokens outside [a, b): they get probability 0. Rows go in blocks of
 * ZC_PACKED_RB; each block reads the tile's codes again, from cache. */
static void run_tiles_t(const pk_ctx *c, float *ts, int R, const zc_packed_set *set, int a, int b, float *m,
                        float *l, float *acc) {
    const zc_packed_kernels *K = c->kern;
    int hd = c->d->head_dim;
    size_t kg = (size_t)hd * set->k_bits, vg = (size_t)hd * set->v_bits; /* bytes per 8 tokens */
    uint8_t *wq = (uint8_t *)(ts + c->tl.w);
    float *vstep = ts + c->tl.vstep, *vmin = ts + c->tl.vmin, *s = ts + c->tl.s, *vnorm = ts + c->tl.vnorm;
    const int8_t *qq = (const int8_t *)(ts + c->tl.qq);
    const float *qa = ts + c->tl.qa, *qmin = ts + c->tl.qmin;
    for (int t0 = a & ~7; t0 < b; t0 += TILE) {
        int lo = a > t0 ? a - t0 : 0, hi = b - t0 < TILE ? b - t0 : TILE, nt = (hi + 7) & ~7;
        if (t0 + TILE < b) {
            int n1 = b - t0 - TILE < TILE ? b - t0 - TILE : TILE;
            size_t g1 = (size_t)(t0 + TILE) / 8, ng = ((size_t)n1 + 7) / 8;
            prefetch_tile(set->k_codes + g1 * kg, ng * kg, set->v_codes + g1 * vg, ng * vg, set->v_step + t0 + TILE,
                          set->v_min + t0 + TILE, n1);
        }
        h2f_range(K, set->v_step + t0, lo, hi, nt, vstep);
        h2f_range(K, set->v_min + t0, lo, hi, nt, vmin);
        const uint8_t *kt = set->k_codes + (size_t)t0 / 8 * kg, *vt = set->v_codes + (size_t)t0 / 8 * vg;
        for (int r0 = 0; r0 < R; r0 += ZC_PACKED_RB) {
            int nr = R - r0 < ZC_PACKED_RB ? R - r0 : ZC_PACKED_RB;
            float corr[ZC_PACKED_RB], scale[ZC_PACKED_RB], pmin[ZC_PACKED_RB];
            K->scores_t(nt, hd, set->k_bits, kt, nr, qq + (size_t)r0 * hd, qa + r0, qmin + r0, s, SROW);
            for (int r = 0; r < nr; r++) {
                float *sr = s + (size_t)r * SROW;
                corr[r] = K->softmax(hi - lo, sr + lo, m + r0 + r, l + r0 + r);
                memset(sr, 0, (size_t)lo * sizeof(float));
                memset(sr + hi, 0, (size_t)(nt - hi) * sizeof(float));
                K->weights(nt, sr, vstep, vmin, wq + (size_t)r * TILE, &scale[r], &pmin[r]);
            }
            K->value_t(nt, hd, set->v_bits, vt, nr, wq, TILE, scale, pmin, corr, vnorm, acc + (size_t)r0 * hd);
        }
    }
}

/* Tokens [a, b) of one set (all inside key group a / key_group), fp32 codes. */
static void run_tiles(const pk_ctx *c, float *ts, int R, const zc_packed_set *set, int a, int b, float *m,
                      float *l, float *acc) {
    const zc_packed_kernels *K = c->kern;
    int hd = c->d->head_dim;
    size_t krow = (size_t)hd * set->k_bits / 8, vrow = (size_t)hd * set->v_bits / 8;
    uint8_t *kc = (uint8_t *)(ts + c->tl.kc), *vc = (uint8_t *)(ts + c->tl.vc);
    float *kf = ts + c->tl.kf, *vf = ts + c->tl.vf, *vstep = ts + c->tl.vstep, *vmin = ts + c->tl.vmin;
    float *s = ts + c->tl.s, *w = ts + c->tl.w, *vnorm = ts + c->tl.vnorm;
    for (int t0 = a; t0 < b; t0 += TILE) {
        int nt = b - t0 < TILE ? b - t0 : TILE;
        K->unpack(set->k_codes + (size_t)t0 * krow, (size_t)nt * hd, set->k_bits, kc);
        K->to_f32(kc, (size_t)nt * hd, kf);
        K->unpack(set->v_codes + (size_t)t0 * vrow, (size_t)nt * hd, set->v_bits, vc);
        K->to_f32(vc, (size_t)nt * hd, vf);
        K->h2f(set->v_step + t0, nt, vstep);
        K->h2f(set->v_min + t0, nt, vmin);
        for (int r = 0; r < R;) {
            const float *qs = ts + c->tl.qs + (size_t)r * hd, *qmin = ts + c->tl.qmin;
            if (r + 1 < R) { /* two rows share every code vector they read */
                K->scores2_f32(nt, hd, qs, qs + hd, qmin[r], qmin[r + 1], kf, s, s + TILE);
                float corr0 = K->softmax(nt, s, m + r, l + r), corr1 = K->softmax(nt, s + TILE, m + r + 1, l + r + 1);
                K->value_row2(nt, hd, s, s + TILE, vstep, vmin, vf, vnorm, corr0, corr1, w, w + TILE,
                              acc + (size_t)r * hd, acc + (size_t)(r + 1) * hd);
                r += 2;
                continue;
            }
            K->scores_f32(nt, hd, qs, qmin[r], kf, s);
            float corr = K->softmax(nt, s, m + r, l + r);
            K->value_row(nt, hd, s, vstep, vmin, vf, vnorm, corr, w, acc + (size_t)r * hd);
            r++;
        }
    }
}

/* Tokens [a, b) of one set, group by group. */
static void run_set(const pk_ctx *c, float *ts, int R, const zc_packed_set *set, const zc_fp16 *norm, int a, int b,
                    float *m, float *l, float *acc) {
    int hd = c->d->head_dim;
    c->kern->h2f(norm, hd, ts + c->tl.vnorm);
    while (a < b) {
        int grp = a / set->key_group;
        int gend = (grp + 1) * set->key_group;
        if (gend > b) gend = b;
        fold_queries(c, ts, R, set, grp, set->tiled);
        if (set->tiled)
            run_tiles_t(c, ts, R, set, a, gend, m, l, acc);
        else
            run_tiles(c, ts, R, set, a, gend, m, l, acc);
        a = gend;
    }
}

/* Tokens [a, b) of one set of a task's head. */
typedef struct {
    const zc_packed_set *set;
    const zc_fp16 *norm; /* the segment's value normalizer */
    int a, b;
} set_range;

/* A walk over the sets of head g that hold tokens of [c0, c1). */
typedef struct {
    const pk_ctx *c;
    int g, sg, st;
    long c0, c1, pos; /* pos: the first token of set (sg, st) in the head's concatenation */
} set_walk;

static int walk_next(set_walk *w, set_range *r) {
    while (w->sg < w->c->n_segs && w->pos < w->c1) {
        const zc_packed_seg *seg = &w->c->segs[(size_t)w->sg * w->c->d->n_kv_heads + w->g];
        const zc_packed_set *set = &seg->set[w->st];
        long first = w->pos;
        w->pos += set->n;
        w->sg += w->st; /* salient set, then regular, then the next segment */
        w->st ^= 1;
        long a = w->c0 > first ? w->c0 - first : 0, b = w->c1 - first < set->n ? w->c1 - first : set->n;
        if (a < b) {
            *r = (set_range){set, seg->v_norm, (int)a, (int)b};
            return 1;
        }
    }
    return 0;
}

/* Fetch what run_set reads first of r: its key group's parameters, the
 * normalizer and the first tile. */
static void prefetch_set(const pk_ctx *c, const set_range *r) {
    const zc_packed_set *set = r->set;
    int hd = c->d->head_dim, t0 = r->set->tiled ? r->a & ~7 : r->a, nt = r->b - t0 < TILE ? r->b - t0 : TILE;
    size_t grp = (size_t)(r->a / set->key_group) * hd;
    for (int e = 0; e < hd; e += 32) { /* 64-byte lines of halves */
        __builtin_prefetch(set->k_step + grp + e);
        __builtin_prefetch(set->k_min + grp + e);
        __builtin_prefetch(r->norm + e);
    }
    /* the first tile's codes; t0 is a multiple of 8 for tiled sets */
    int kb = set->k_bits, vb = set->v_bits, tl = set->tiled;
    size_t k0 = zc_packed_code_bytes(t0, hd, kb, tl), kn = zc_packed_code_bytes(nt, hd, kb, tl);
    size_t v0 = zc_packed_code_bytes(t0, hd, vb, tl), vn = zc_packed_code_bytes(nt, hd, vb, tl);
    prefetch_tile(set->k_codes + k0, kn, set->v_codes + v0, vn, set->v_step + t0, set->v_min + t0, nt);
}

static void packed_task(void *ctx, int task, int thread) {
    const pk_ctx *c = ctx;
    int nkv = c->d->n_kv_heads, hd = c->d->head_dim, nh = c->d->n_heads, G = c->G;
    int g = task % nkv, chunk = (task / nkv) % c->n_chunks, qb = task / nkv / c->n_chunks;
    int q0 = qb * ZC_ATTN_BQ, nq = c->n_q - q0 < ZC_ATTN_BQ ? c->n_q - q0 : ZC_ATTN_BQ, R = nq * G;
    float *ts = c->scratch + (size_t)thread * c->tl.total;
    float *acc = part_of(c, qb, chunk, g), *m = acc + (size_t)c->R_max * hd, *l = m + c->R_max;
    for (int r = 0; r < R; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(acc, 0, (size_t)R * hd * sizeof(float));
    for (int i = 0; i < nq; i++) {
        const float *src = c->q + (size_t)(q0 + i) * nh * hd + (size_t)g * G * hd;
        float *dst = ts + c->tl.qb + (size_t)i * G * hd;
        for (int e = 0; e < G * hd; e++) dst[e] = src[e] * c->scale;
    }
    /* token range [c0, c1) of the head's concatenated sets; while one set
     * runs, the start of the next is fetched (within a set, run_tiles_t
     * fetches tile after tile) */
    set_walk w = {.c = c, .g = g, .c0 = (long)chunk * c->chunk_len, .c1 = (long)(chunk + 1) * c->chunk_len};
    set_range cur, next;
    for (int have = walk_next(&w, &cur); have;) {
        int more = walk_next(&w, &next);
        if (more) prefetch_set(c, &next);
        run_set(c, ts, R, cur.set, cur.norm, cur.a, cur.b, m, l, acc);
        cur = next;
        have = more;
    }
}

static void packed_merge(const pk_ctx *c, float *out, float *lse) {
    int nkv = c->d->n_kv_heads, hd = c->d->head_dim, nh = c->d->n_heads, G = c->G;
    for (int qb = 0; qb < c->n_qblocks; qb++) {
        int q0 = qb * ZC_ATTN_BQ, nq = c->n_q - q0 < ZC_ATTN_BQ ? c->n_q - q0 : ZC_ATTN_BQ;
        for (int g = 0; g < nkv; g++)
            for (int r = 0; r < nq * G; r++) {
                float M = -INFINITY, L = 0.0f;
                for (int ch = 0; ch < c->n_chunks; ch++) {
                    const float *p = part_of(c, qb, ch, g);
                    float mc = p[(size_t)c->R_max * hd + r];
                    M = mc > M ? mc : M;
                }
                int i = q0 + r / G, h = g * G + r % G;
                float *o = out + (size_t)i * nh * hd + (size_t)h * hd;
                memset(o, 0, (size_t)hd * sizeof(float));
                for (int ch = 0; ch < c->n_chunks; ch++) {
                    const float *acc = part_of(c, qb, ch, g), *m = acc + (size_t)c->R_max * hd, *l = m + c->R_max;
                    if (l[r] == 0.0f) continue; /* no token of this chunk */
                    float wgt = expf(m[r] - M);
                    L += l[r] * wgt;
                    for (int e = 0; e < hd; e++) o[e] += acc[(size_t)r * hd + e] * wgt;
                }
                if (L > 0.0f) {
                    float inv = 1.0f / L;
                    for (int e = 0; e < hd; e++) o[e] *= inv;
                }
                lse[(size_t)i * nh + h] = L > 0.0f ? M + logf(L) : -INFINITY;
            }
    }
}

static int check_segs(const zc_attn_dims *d, const zc_packed_seg *segs, int n_segs, long *total) {
    *total = 0;
    for (int s = 0; s < n_segs; s++) {
        long n0 = -1;
        for (int g = 0; g < d->n_kv_heads; g++) {
            const zc_packed_seg *seg = &segs[(size_t)s * d->n_kv_heads + g];
            long n = 0;
            for (int st = 0; st < 2; st++) {
                const zc_packed_set *set = &seg->set[st];
                if (set->n < 0 || (set->n > 0 && (set->k_bits < 1 || set->k_bits > 8 || set->v_bits < 1 ||
                                                  set->v_bits > 8 || set->key_group < 1)))
                    return zc_error(ZC_ERR_ARG, "packed attention: segment %d head %d set %d: bad widths", s, g, st);
                if (set->n > 0 && set->tiled && !(zc_tiled_ok(d->head_dim, set->k_bits) && zc_tiled_ok(d->head_dim, set->v_bits)))
                    return zc_error(ZC_ERR_ARG, "packed attention: segment %d head %d set %d: %d/%d bits at head_dim %d "
                                    "cannot be tiled", s, g, st, set->k_bits, set->v_bits, d->head_dim);
                n += set->n;
            }
            if (n0 >= 0 && n != n0)
                return zc_error(ZC_ERR_ARG, "packed attention: segment %d: heads hold different token counts", s);
            n0 = n;
        }
        *total += n0;
        if (*total > 0x7fffffffL) return zc_error(ZC_ERR_LIMIT, "packed attention: too many tokens");
    }
    return ZC_OK;
}

int zc_attn_packed(zc_pool *pool, const zc_attn_dims *d, const float *q, int n_q, const zc_packed_seg *segs,
                   int n_segs, float *out, float *lse, zc_attn_scratch *scratch) {
    if (!d || d->n_heads <= 0 || d->n_kv_heads <= 0 || d->head_dim <= 0 || d->n_heads % d->n_kv_heads || n_q < 0 ||
        n_segs < 0)
        return zc_error(ZC_ERR_ARG, "packed attention: bad dims");
    if (d->head_dim % 8)
        return zc_error(ZC_ERR_UNSUPPORTED, "packed attention: head_dim %d is not a multiple of 8", d->head_dim);
    long total;
    int rc = check_segs(d, segs, n_segs, &total);
    if (rc) return rc;
    if (n_q == 0) return ZC_OK;
    pk_ctx c = {
        .d = d, .q = q, .n_q = n_q, .G = d->n_heads / d->n_kv_heads, .n_segs = n_segs, .segs = segs,
        .kern_table = zc_cpu_has_avx2() ? zc_packed_kernels_avx2 : zc_packed_kernels_scalar,
        .scale = 1.0f / sqrtf((float)d->head_dim),
    };
    if (zc_cpu_has_avx2() && zc_cpu_has_avx512vnni()) zc_packed_kernels_use_vnni(&c.kern_table);
    c.kern = &c.kern_table;
    int threads = zc_pool_size(pool), hd = d->head_dim;
    c.n_qblocks = (n_q + ZC_ATTN_BQ - 1) / ZC_ATTN_BQ;
    c.R_max = (n_q < ZC_ATTN_BQ ? n_q : ZC_ATTN_BQ) * c.G;
    /* ~4 tasks per thread, chunks of at least MIN_CHUNK tokens */
    long want = (4L * threads + (long)d->n_kv_heads * c.n_qblocks - 1) / ((long)d->n_kv_heads * c.n_qblocks);
    long most = (total + MIN_CHUNK - 1) / MIN_CHUNK;
    long n_chunks = want < most ? want : most;
    if (n_chunks < 1) n_chunks = 1;
    c.chunk_len = (int)((total + n_chunks - 1) / n_chunks);
    if (c.chunk_len < 1) c.chunk_len = 1;
    c.n_chunks = (int)((total + c.chunk_len - 1) / c.chunk_len);
    if (c.n_chunks < 1) c.n_chunks = 1;
    c.tl = tlayout_for(c.R_max, hd);

    size_t part, tot;
    if (zc_mul_size((size_t)c.n_qblocks * c.n_chunks * d->n_kv_heads, (size_t)c.R_max * (hd + 2), &part) ||
        zc_mul_size(c.tl.total, (size_t)threads, &tot) || zc_add_size(tot, zc_round16(part), &tot))
        return zc_error(ZC_ERR_LIMIT, "packed attention: scratch size overflows");
    if ((rc = zc_attn_scratch_reserve(scratch, tot))) return rc;
    c.part = scratch->buf;
    c.scratch = scratch->buf + zc_round16(part);
    zc_pool_run(pool, c.n_qblocks * c.n_chunks * d->n_kv_heads, packed_task, &c);
    packed_merge(&c, out, lse);
    return ZC_OK;
}

/* ---- reference ----------------------------------------------------------- */

/* Codes [e0, e0 + n) of token t of a set's keys (kind K) or values, n <= PIECE. */
static void token_codes(const zc_packed_set *set, zc_tiled_kind kind, int hd, int t, int e0, int n, uint8_t *out) {
    const uint8_t *src = kind == ZC_TILED_K ? set->k_codes : set->v_codes;
    int bits = kind == ZC_TILED_K ? set->k_bits : set->v_bits;
    if (set->tiled) {
        for (int i = 0; i < n; i++) out[i] = (uint8_t)zc_tiled_get(kind, src, t, e0 + i, hd, bits);
    } else {
        size_t row = (size_t)hd * bits / 8;
        zc_unpack_scalar(src + (size_t)t * row + (size_t)e0 * bits / 8, (size_t)n, bits, out);
    }
}

void zc_packed_set_dequant(const zc_packed_set *set, const zc_fp16 *norm, int hd, float *k, float *v) {
    zc_packed_set_dequant_rows(set, norm, hd, 0, set->n, k, v);
}

void zc_packed_set_dequant_rows(const zc_packed_set *set, const zc_fp16 *norm, int hd, int t0, int nt, float *k,
                                float *v) {
    enum { PIECE = 1024 }; /* codes per unpack call; a multiple of 8, so pieces start on whole bytes */
    uint8_t kc[PIECE], vc[PIECE];
    for (int t = t0; t < t0 + nt; t++) {
        size_t grp = (size_t)(t / set->key_group) * hd;
        float vs = zc_fp16_to_f32(set->v_step[t]), vm = zc_fp16_to_f32(set->v_min[t]);
        for (int e0 = 0; e0 < hd; e0 += PIECE) {
            int n = hd - e0 < PIECE ? hd - e0 : PIECE;
            token_codes(set, ZC_TILED_K, hd, t, e0, n, kc);
            token_codes(set, ZC_TILED_V, hd, t, e0, n, vc);
            for (int i = 0; i < n; i++) {
                int e = e0 + i;
                k[(size_t)(t - t0) * hd + e] = (float)kc[i] * zc_fp16_to_f32(set->k_step[grp + e]) + zc_fp16_to_f32(set->k_min[grp + e]);
                v[(size_t)(t - t0) * hd + e] = ((float)vc[i] * vs + vm) * zc_fp16_to_f32(norm[e]);
            }
        }
    }
}

int zc_attn_packed_reference(const zc_attn_dims *d, const float *q, int n_q, const zc_packed_seg *segs, int n_segs,
                             float *out, float *lse) {
    long total;
    int rc = check_segs(d, segs, n_segs, &total);
    if (rc) return rc;
    int hd = d->head_dim, nkv = d->n_kv_heads;
    if (total == 0) {
        memset(out, 0, (size_t)n_q * d->n_heads * hd * sizeof(float));
        for (size_t i = 0; i < (size_t)n_q * d->n_heads; i++) lse[i] = -INFINITY;
        return ZC_OK;
    }
    size_t stride = (size_t)nkv * hd;
    float *K = zc_malloc((size_t)total * stride * sizeof(float)); /* [total][nkv*hd] */
    float *V = zc_malloc((size_t)total * stride * sizeof(float)); /* [total][nkv*hd] */
    float *tk = zc_malloc((size_t)total * hd * sizeof(float));    /* [set n][hd] */
    float *tv = zc_malloc((size_t)total * hd * sizeof(float));    /* [set n][hd] */
    if (!K || !V || !tk || !tv) {
        rc = ZC_ERR_NOMEM;
        goto done;
    }
    for (int g = 0; g < nkv; g++) {
        long row = 0;
        for (int s = 0; s < n_segs; s++)
            for (int st = 0; st < 2; st++) {
                const zc_packed_seg *seg = &segs[(size_t)s * nkv + g];
                const zc_packed_set *set = &seg->set[st];
                zc_packed_set_dequant(set, seg->v_norm, hd, tk, tv);
                for (int t = 0; t < set->n; t++, row++) {
                    memcpy(K + (size_t)row * stride + (size_t)g * hd, tk + (size_t)t * hd, (size_t)hd * sizeof(float));
                    memcpy(V + (size_t)row * stride + (size_t)g * hd, tv + (size_t)t * hd, (size_t)hd * sizeof(float));
                }
            }
    }
    /* pos0 = total - 1: every query sees every packed token */
    zc_attn_reference(d, q, n_q, (int)total - 1, K, V, ZC_TYPE_F32, stride, (int)total, out, lse);
done:
    free(K);
    free(V);
    free(tk);
    free(tv);
    return rc;
}
