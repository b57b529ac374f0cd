/* Attention: the tiled causal driver, full-precision K/V, scalar kernel,
 * reference.
 *
 * The driver (attn_tiled.h) splits the work and keeps the online-softmax
 * state; a tile source supplies each K/V tile's contribution. Its users:
 * zc_attn_forward (fp32/fp16 rows: the tile kernel of attn_impl.h on them)
 * and the KV policies that store blocks or codes (kv_blocks.c, kv_kivi.c).
 * Two work splits:
 *   prefill  tasks = (KV head g, block of ZC_ATTN_BQ queries). A task owns
 *            the online-softmax state of its BQ*G rows and walks the K/V
 *            tiles its last query can see, so each tile is read once for all
 *            G query heads of the group and the n_q x n_kv score matrix never
 *            exists. Heavier (later) query blocks are handed out first.
 *   decode   n_q <= BQ: too few query blocks to keep the threads busy, so
 *            tasks = chunks of keys, each covering every KV head; every task
 *            leaves an unnormalized partial (m, l, acc) per head and the
 *            partials of a row are merged by their log-sum-exp afterwards.
 * zc_attn_colsum recomputes chosen (probe) rows' softmax weights from their
 * lse and sums them per KV head: tasks = (KV head, key chunk), each owning
 * its slice of the output, so no reduction is needed.
 */
#include "attn/attn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn_impl.h"
#include "attn/attn_tiled.h"
#include "quant/ggml_blocks.h"
#include "util/cpu.h"
#include "util/error.h"
#include "util/fp16.h"
#include "util/small.h"

/* Keys per decode chunk at least: below this the merge and the task hand-out
 * cost more than the parallelism gains. A multiple of ZC_ATTN_BK. */
#define DECODE_MIN_CHUNK 256

void zc_attn_tile_scalar(int n_rows, int G, const int *nvalid, const float *q, int hd, int nk, const float *k,
                         size_t ks, const float *v, size_t vs, float *s, float *m, float *l, float *acc) {
    (void)nk;
    for (int r = 0; r < n_rows; r++) {
        int n = nvalid[r / G];
        if (n <= 0) continue;
        const float *qr = q + (size_t)r * hd;
        float mx = m[r];
        for (int j = 0; j < n; j++) {
            const float *kr = k + (size_t)j * ks;
            float dot = 0.0f;
            for (int d = 0; d < hd; d++) dot += qr[d] * kr[d];
            s[j] = dot;
            if (dot > mx) mx = dot;
        }
        float corr = expf(m[r] - mx); /* 0 while m[r] is still -inf */
        float sum = 0.0f;
        for (int j = 0; j < n; j++) {
            s[j] = expf(s[j] - mx);
            sum += s[j];
        }
        float *ar = acc + (size_t)r * hd;
        for (int d = 0; d < hd; d++) ar[d] *= corr;
        for (int j = 0; j < n; j++) {
            const float *vr = v + (size_t)j * vs;
            for (int d = 0; d < hd; d++) ar[d] += s[j] * vr[d];
        }
        m[r] = mx;
        l[r] = l[r] * corr + sum;
    }
}

void zc_attn_colsum_row_scalar(const float *qh, float scale, float lse, int n, int hd, const float *k, size_t ks,
                               float *s, float *col) {
    (void)s;
    for (int j = 0; j < n; j++) {
        const float *kr = k + (size_t)j * ks;
        float dot = 0.0f;
        for (int d = 0; d < hd; d++) dot += qh[d] * kr[d];
        col[j] += expf(dot * scale - lse);
    }
}


int zc_attn_scratch_reserve(zc_attn_scratch *s, size_t floats) {
    if (s->cap >= floats) return ZC_OK;
    size_t bytes;
    if (zc_mul_size(floats, sizeof(float), &bytes)) return zc_error(ZC_ERR_LIMIT, "attention scratch too large");
    float *p = zc_malloc_aligned(bytes);
    if (!p) return ZC_ERR_NOMEM;
    zc_free_aligned(s->buf);
    s->buf = p;
    s->cap = floats;
    return ZC_OK;
}

void zc_attn_scratch_free(zc_attn_scratch *s) {
    if (!s) return;
    zc_free_aligned(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

void zc_attn_softmax_step(float *s, int n, float *m, float *l, float *acc_row, int head_dim) {
    float mx = *m;
    for (int j = 0; j < n; j++)
        if (s[j] > mx) mx = s[j];
    float corr = expf(*m - mx); /* 0 while *m is still -inf */
    float sum = 0.0f;
    for (int j = 0; j < n; j++) sum += (s[j] = expf(s[j] - mx));
    if (corr != 1.0f)
        for (int d = 0; d < head_dim; d++) acc_row[d] *= corr;
    *m = mx;
    *l = *l * corr + sum;
}

/* ---- The work split ---------------------------------------------------------
 *   prefill (n_q > ZC_ATTN_BQ): one task per (block of ZC_ATTN_BQ queries,
 *       KV head), numbered block * n_kv_heads + KV head, each finishing its
 *       rows itself;
 *   decode: one task per key chunk, leaving a partial state per KV head in
 *       part [n_chunks][n_kv_heads][rows*(hd+2)] (acc [rows][hd], m [rows],
 *       l [rows]; part_of), combined by merge_parts. */
typedef struct {
    int decode;
    int rows;                /* query rows of a task per KV head: (decode ? n_q : ZC_ATTN_BQ) * G */
    int n_qblocks;           /* prefill */
    int n_chunks, chunk_len; /* decode; chunk_len a multiple of ZC_ATTN_BK */
    int n_tasks;
    size_t part_floats;      /* decode partials, rounded up to 16 floats (0 for prefill) */
} split;

/* kend: keys the queries see at most (one past the last visible key). */
static void split_plan(int n_q, int G, int n_kv_heads, int hd, int kend, int threads, split *sp) {
    memset(sp, 0, sizeof *sp);
    sp->decode = n_q <= ZC_ATTN_BQ;
    sp->rows = (sp->decode ? n_q : ZC_ATTN_BQ) * G;
    if (sp->decode) {
        /* Enough chunk tasks to balance ~4 per thread, chunks no shorter
         * than DECODE_MIN_CHUNK keys, chunk length a tile multiple. */
        int want = 4 * threads;
        int most = (kend + DECODE_MIN_CHUNK - 1) / DECODE_MIN_CHUNK;
        int n_chunks = want < most ? want : most;
        if (n_chunks < 1) n_chunks = 1;
        int len = (kend + n_chunks - 1) / n_chunks;
        sp->chunk_len = (len + ZC_ATTN_BK - 1) / ZC_ATTN_BK * ZC_ATTN_BK;
        sp->n_chunks = (kend + sp->chunk_len - 1) / sp->chunk_len;
        sp->n_tasks = sp->n_chunks;
        sp->part_floats = zc_round16((size_t)sp->n_chunks * n_kv_heads * sp->rows * (hd + 2));
    } else {
        sp->n_qblocks = (n_q + ZC_ATTN_BQ - 1) / ZC_ATTN_BQ;
        sp->n_tasks = sp->n_qblocks * n_kv_heads;
    }
}

static float *part_of(float *part, const split *sp, int n_kv_heads, int hd, int chunk, int g) {
    return part + ((size_t)chunk * n_kv_heads + g) * (size_t)sp->rows * ((size_t)hd + 2);
}

/* Combine the chunks' partials of every (query, head) row by log-sum-exp:
 * out [n_q][n_heads*hd] and, unless NULL, lse [n_q][n_heads]. */
static void merge_parts(float *part, const split *sp, int n_q, int G, int n_kv_heads, int hd, float *out,
                        float *lse) {
    int nh = n_kv_heads * G, R = n_q * G;
    for (int g = 0; g < n_kv_heads; g++)
        for (int r = 0; r < R; r++) {
            float M = -INFINITY;
            for (int ch = 0; ch < sp->n_chunks; ch++) {
                float mc = part_of(part, sp, n_kv_heads, hd, ch, g)[(size_t)R * hd + r];
                if (mc > M) M = mc;
            }
            int i = r / G, h = g * G + r % G;
            float *o = out + (size_t)i * nh * hd + (size_t)h * hd;
            memset(o, 0, (size_t)hd * sizeof(float));
            float L = 0.0f;
            for (int ch = 0; ch < sp->n_chunks; ch++) {
                const float *acc = part_of(part, sp, n_kv_heads, hd, ch, g), *m = acc + (size_t)R * hd, *l = m + R;
                if (l[r] == 0.0f) continue; /* the chunk holds no key this row sees */
                float w = expf(m[r] - M);
                L += l[r] * w;
                for (int e = 0; e < hd; e++) o[e] += acc[(size_t)r * hd + e] * w;
            }
            float inv = 1.0f / L;
            for (int e = 0; e < hd; e++) o[e] *= inv;
            if (lse) lse[(size_t)i * nh + h] = M + logf(L);
        }
}

/* ---- The driver (attn_tiled.h) ------------------------------------------------ */

/* Per-thread scratch, in floats: query rows (decode: every KV head's), their
 * prepared form, the rows' descriptors, two score rows, (prefill) the rows'
 * state, the tile's scratch. */
typedef struct {
    size_t q, qx, rows, s, m, l, acc, tmp, total;
} thread_layout;

static thread_layout layout_for(const zc_attn_source *src, int rows, int heads, int with_state) {
    thread_layout t;
    size_t o = 0, hd = (size_t)src->head_dim, all = (size_t)rows * heads;
    t.q = o;    o += zc_round16(all * hd);                                             /* [heads][rows][hd] */
    t.qx = o;   o += zc_round16((all * src->qx_bytes + 3) / 4);                        /* [heads][rows][qx_bytes] */
    t.rows = o; o += zc_round16(((size_t)heads * sizeof(zc_attn_rows) + 3) / 4);       /* [heads] */
    t.s = o;    o += zc_round16(2 * ZC_ATTN_BK); /* [2][BK]: zc_attn_tile_* scores query rows in pairs */
    t.m = t.l = t.acc = o;
    if (with_state) {
        t.m = o;   o += zc_round16((size_t)rows);        /* [rows] */
        t.l = o;   o += zc_round16((size_t)rows);        /* [rows] */
        t.acc = o; o += zc_round16((size_t)rows * hd);   /* [rows][hd] */
    }
    t.tmp = o; o += zc_round16(src->tmp_floats + (size_t)heads * src->tmp_head_floats);
    t.total = o;
    return t;
}

typedef struct {
    const zc_attn_source *src;
    const float *q;
    int n_q, pos0, n_kv, G;
    float scale;
    float *out, *lse;
    thread_layout tl;
    float *scratch;      /* [threads][tl.total] */
    split sp;
    float *part;         /* decode partials, see part_of() */
} drv;

/* Last key (exclusive) any query of block [q0, q0+nq) can see. */
static int key_end(const drv *c, int q0, int nq) {
    int last = c->pos0 + q0 + nq - 1;
    return (last < c->n_kv - 1 ? last : c->n_kv - 1) + 1;
}

/* Keys of the tile at t0 (nk of them) visible to each query of block
 * [q0, q0+nq): nvalid [nq]. */
static void visible_keys(const drv *c, int q0, int nq, int t0, int nk, int *nvalid) {
    for (int i = 0; i < nq; i++) {
        int last = c->pos0 + q0 + i; /* last visible key of query q0+i */
        if (last > c->n_kv - 1) last = c->n_kv - 1;
        int n = last + 1 - t0;
        nvalid[i] = n < 0 ? 0 : n > nk ? nk : n;
    }
}

/* Set up the rows of query block [q0, q0+nq) for KV head g in *r: gather and
 * scale the queries into qr (and qx, prepared), reset the state m, l, acc.
 * The caller points r->nvalid at the array it fills per tile. */
static void start_rows(const drv *c, float *ts, int g, int q0, int nq, float *qr, void *qx, float *m, float *l,
                       float *acc, zc_attn_rows *r) {
    const zc_attn_source *src = c->src;
    int hd = src->head_dim, nh = src->n_heads, G = c->G, R = nq * G;
    for (int i = 0; i < nq; i++) {
        const float *from = c->q + (size_t)(q0 + i) * nh * hd + (size_t)g * G * hd;
        for (int j = 0; j < G * hd; j++) qr[(size_t)i * G * hd + j] = from[j] * c->scale;
    }
    if (qx) src->prepare(src->ctx, R, qr, qx);
    for (int k = 0; k < R; k++) {
        m[k] = -INFINITY;
        l[k] = 0.0f;
    }
    memset(acc, 0, (size_t)R * hd * sizeof(float));
    *r = (zc_attn_rows){R, G, NULL, qr, qx, ts + c->tl.s, m, l, acc};
}

static void *qx_of(const drv *c, float *ts, int g, int R) {
    return c->src->qx_bytes ? (char *)(ts + c->tl.qx) + (size_t)g * R * c->src->qx_bytes : NULL;
}

static void prefill_task(void *ctx, int task, int thread) {
    const drv *c = ctx;
    const zc_attn_source *src = c->src;
    int hd = src->head_dim, nh = src->n_heads, nkv = src->n_kv_heads, G = c->G;
    int g = task % nkv;
    int qb = c->sp.n_qblocks - 1 - task / nkv; /* heaviest blocks first */
    int q0 = qb * ZC_ATTN_BQ;
    int nq = c->n_q - q0 < ZC_ATTN_BQ ? c->n_q - q0 : ZC_ATTN_BQ;
    float *ts = c->scratch + (size_t)thread * c->tl.total;
    float *m = ts + c->tl.m, *l = ts + c->tl.l, *acc = ts + c->tl.acc;
    zc_attn_rows *rows = (zc_attn_rows *)(void *)(ts + c->tl.rows);
    int nvalid[ZC_ATTN_BQ];
    start_rows(c, ts, g, q0, nq, ts + c->tl.q, qx_of(c, ts, 0, 0), m, l, acc, rows); /* one head: at offset 0 */
    rows->nvalid = nvalid;
    for (int t0 = 0, k1 = key_end(c, q0, nq); t0 < k1; t0 += ZC_ATTN_BK) {
        int nk = k1 - t0 < ZC_ATTN_BK ? k1 - t0 : ZC_ATTN_BK;
        visible_keys(c, q0, nq, t0, nk, nvalid);
        src->tile(src->ctx, g, 1, t0, nk, rows, ts + c->tl.tmp);
    }
    for (int r = 0; r < nq * G; r++) {
        int i = q0 + r / G, h = g * G + r % G;
        float inv = 1.0f / l[r];
        float *o = c->out + (size_t)i * nh * hd + (size_t)h * hd;
        for (int e = 0; e < hd; e++) o[e] = acc[(size_t)r * hd + e] * inv;
        if (c->lse) c->lse[(size_t)i * nh + h] = m[r] + logf(l[r]);
    }
}

/* One chunk of keys for every KV head, tile by tile with all heads of a tile
 * in one call before the next: a token's K/V row holds every head, so a
 * source reads its part of the cache in address order. (A task per head read
 * 1/n_kv_heads of every fp16 row it passed, strided; at 16K keys that ran at
 * 4.4 GB/s.) */
static void decode_task(void *ctx, int chunk, int thread) {
    const drv *c = ctx;
    const zc_attn_source *src = c->src;
    int hd = src->head_dim, R = c->n_q * c->G, nkv = src->n_kv_heads;
    float *ts = c->scratch + (size_t)thread * c->tl.total;
    zc_attn_rows *rows = (zc_attn_rows *)(void *)(ts + c->tl.rows); /* [nkv] */
    int nvalid[ZC_ATTN_BQ];
    int k0 = chunk * c->sp.chunk_len, k1 = k0 + c->sp.chunk_len, kend = key_end(c, 0, c->n_q);
    if (k1 > kend) k1 = kend;
    for (int g = 0; g < nkv; g++) {
        float *acc = part_of(c->part, &c->sp, nkv, hd, chunk, g), *m = acc + (size_t)R * hd;
        start_rows(c, ts, g, 0, c->n_q, ts + c->tl.q + (size_t)g * R * hd, qx_of(c, ts, g, R), m, m + R, acc, &rows[g]);
        rows[g].nvalid = nvalid;
    }
    for (int t0 = k0; t0 < k1; t0 += ZC_ATTN_BK) {
        int nk = k1 - t0 < ZC_ATTN_BK ? k1 - t0 : ZC_ATTN_BK;
        visible_keys(c, 0, c->n_q, t0, nk, nvalid);
        src->tile(src->ctx, 0, nkv, t0, nk, rows, ts + c->tl.tmp);
    }
}

int zc_attn_tiled(zc_pool *pool, const zc_attn_source *src, const float *q, int n_q, int pos0, int n_kv, float *out,
                  float *lse, zc_attn_scratch *scratch) {
    if (n_q <= 0) return ZC_OK;
    if (pos0 < 0 || n_kv <= 0)
        return zc_error(ZC_ERR_ARG, "attention: bad query/key counts (n_q=%d pos0=%d n_kv=%d)", n_q, pos0, n_kv);
    drv c = {
        .src = src, .q = q, .n_q = n_q, .pos0 = pos0, .n_kv = n_kv, .G = src->n_heads / src->n_kv_heads,
        .scale = 1.0f / sqrtf((float)src->head_dim), .out = out, .lse = lse,
    };
    int threads = zc_pool_size(pool), nkv = src->n_kv_heads;
    split_plan(n_q, c.G, nkv, src->head_dim, key_end(&c, 0, n_q), threads, &c.sp);
    c.tl = layout_for(src, c.sp.rows, c.sp.decode ? nkv : 1, !c.sp.decode);
    /* the scratch: the decode partials, then `threads` per-thread areas */
    size_t total;
    if (zc_mul_size(c.tl.total, (size_t)threads, &total) || zc_add_size(total, c.sp.part_floats, &total))
        return zc_error(ZC_ERR_LIMIT, "attention: scratch size overflows");
    int rc = zc_attn_scratch_reserve(scratch, total);
    if (rc) return rc;
    c.part = scratch->buf;
    c.scratch = scratch->buf + c.sp.part_floats;
    if (c.sp.decode) {
        zc_pool_run(pool, c.sp.n_tasks, decode_task, &c);
        merge_parts(c.part, &c.sp, n_q, c.G, nkv, src->head_dim, out, lse);
    } else {
        zc_pool_run(pool, c.sp.n_tasks, prefill_task, &c);
    }
    return ZC_OK;
}

/* ---- fp32 / fp16 rows: zc_attn_forward's tile source --------------------------- */

/* n rows of w halves at stride `stride` -> dst [n][w] floats (exact). */
static void f16_rows(const zc_fp16 *src, size_t stride, int n, int w, int simd, float *dst) {
    if (simd) {
        zc_attn_f16_rows_avx2(src, stride, n, w, dst);
        return;
    }
    for (int j = 0; j < n; j++)
        for (int e = 0; e < w; e++) dst[(size_t)j * w + e] = zc_fp16_to_f32(src[(size_t)j * stride + e]);
}

typedef struct {
    const void *k, *v;  /* [n_kv][kv_stride] of kv_type */
    int kv_type, hd;
    size_t kv_stride;   /* elements */
    zc_attn_tile_fn kernel;
} rows_source;

/* K and V of keys [t0, t0+nk), KV heads [g0, g0+ng), as fp32 rows: pointers
 * into the cache (f32) or converted into tmp (f16; with every head at once
 * the conversion reads whole rows, in address order), head g0+i at +i*hd;
 * then the kernel per head. */
static void rows_tile(const void *ctx, int g0, int ng, int t0, int nk, const zc_attn_rows *rows, float *tmp) {
    const rows_source *rs = ctx;
    int hd = rs->hd, w = ng * hd;
    size_t off = (size_t)t0 * rs->kv_stride + (size_t)g0 * hd, stride = rs->kv_stride;
    const float *kt, *vt;
    if (rs->kv_type == ZC_TYPE_F32) {
        kt = (const float *)rs->k + off;
        vt = (const float *)rs->v + off;
    } else {
        float *kd = tmp, *vd = tmp + (size_t)ZC_ATTN_BK * w; /* [BK][w] each */
        int simd = rs->kernel == zc_attn_tile_avx2;
        f16_rows((const zc_fp16 *)rs->k + off, rs->kv_stride, nk, w, simd, kd);
        f16_rows((const zc_fp16 *)rs->v + off, rs->kv_stride, nk, w, simd, vd);
        kt = kd;
        vt = vd;
        stride = (size_t)w;
    }
    for (int i = 0; i < ng; i++) {
        const zc_attn_rows *r = &rows[i];
        rs->kernel(r->n_rows, r->G, r->nvalid, r->q, hd, nk, kt + (size_t)i * hd, stride, vt + (size_t)i * hd, stride,
                   r->s, r->m, r->l, r->acc);
    }
}

static int check_dims(const zc_attn_dims *d, int n_q, int pos0, int kv_type, size_t kv_stride, int n_kv) {
    if (!d || d->n_heads <= 0 || d->n_kv_heads <= 0 || d->head_dim <= 0 || d->n_heads % d->n_kv_heads)
        return zc_error(ZC_ERR_ARG, "attention: bad head counts");
    if (n_q < 0 || pos0 < 0 || (n_q > 0 && n_kv <= 0))
        return zc_error(ZC_ERR_ARG, "attention: bad query/key counts (n_q=%d pos0=%d n_kv=%d)", n_q, pos0, n_kv);
    if (kv_type != ZC_TYPE_F32 && kv_type != ZC_TYPE_F16)
        return zc_error(ZC_ERR_ARG, "attention: K/V type %d is not f32 or f16", kv_type);
    if (kv_stride < (size_t)d->n_kv_heads * d->head_dim)
        return zc_error(ZC_ERR_ARG, "attention: kv_stride %zu below n_kv_heads*head_dim", kv_stride);
    return ZC_OK;
}

int zc_attn_forward(zc_pool *pool, const zc_attn_dims *d, const float *q, int n_q, int pos0, const void *k,
                    const void *v, int kv_type, size_t kv_stride, int n_kv, float *out, float *lse,
                    zc_attn_scratch *scratch) {
    int rc = check_dims(d, n_q, pos0, kv_type, kv_stride, n_kv);
    if (rc) return rc;
    rows_source rs = {k, v, kv_type, d->head_dim, kv_stride, zc_cpu_has_avx2() ? zc_attn_tile_avx2 : zc_attn_tile_scalar};
    zc_attn_source src = {
        .ctx = &rs, .n_heads = d->n_heads, .n_kv_heads = d->n_kv_heads, .head_dim = d->head_dim,
        .tmp_head_floats = kv_type == ZC_TYPE_F16 ? 2 * (size_t)ZC_ATTN_BK * d->head_dim : 0, .tile = rows_tile,
    };
    return zc_attn_tiled(pool, &src, q, n_q, pos0, n_kv, out, lse, scratch);
}

/* ---- probe column sums ---------------------------------------------------- */

typedef struct {
    const zc_attn_dims *d;
    const float *q, *lse;
    const int *rows;
    int n_rows, pos0, n_kv, kv_type, n_chunks, chunk_len;
    const void *k;
    size_t kv_stride, ldc;
    float *colsum, *scratch; /* scratch: [threads][2*BK*hd] (K tile, score row) */
    zc_attn_colsum_fn row;
    int simd;
} colsum_ctx;

static void colsum_task(void *ctx, int task, int thread) {
    const colsum_ctx *c = ctx;
    int hd = c->d->head_dim, nh = c->d->n_heads, G = nh / c->d->n_kv_heads;
    int g = task % c->d->n_kv_heads, chunk = task / c->d->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    float *kt = c->scratch + (size_t)thread * 2 * ZC_ATTN_BK * hd, *s = kt + (size_t)ZC_ATTN_BK * hd;
    int k0 = chunk * c->chunk_len, k1 = k0 + c->chunk_len < c->n_kv ? k0 + c->chunk_len : c->n_kv;
    for (int t0 = k0; t0 < k1; t0 += ZC_ATTN_BK) {
        int nk = k1 - t0 < ZC_ATTN_BK ? k1 - t0 : ZC_ATTN_BK;
        size_t off = (size_t)t0 * c->kv_stride + (size_t)g * hd, ks;
        const float *k;
        if (c->kv_type == ZC_TYPE_F32) {
            k = (const float *)c->k + off;
            ks = c->kv_stride;
        } else {
            f16_rows((const zc_fp16 *)c->k + off, c->kv_stride, nk, hd, c->simd, kt);
            k = kt;
            ks = (size_t)hd;
        }
        float *col = c->colsum + (size_t)g * c->ldc + t0;
        for (int r = 0; r < c->n_rows; r++) {
            int i = c->rows[r], last = c->pos0 + i < c->n_kv - 1 ? c->pos0 + i : c->n_kv - 1;
            int n = last + 1 - t0;
            if (n <= 0) continue;
            if (n > nk) n = nk;
            for (int h = g * G; h < (g + 1) * G; h++)
                c->row(c->q + (size_t)i * nh * hd + (size_t)h * hd, scale, c->lse[(size_t)i * nh + h], n, hd, k, ks,
                       s, col);
        }
    }
}

int zc_attn_colsum(zc_pool *pool, const zc_attn_dims *d, const float *q, const int *rows, int n_rows, int pos0,
                   const void *k, int kv_type, size_t kv_stride, int n_kv, const float *lse, float *colsum,
                   size_t ldc, zc_attn_scratch *scratch) {
    int rc = check_dims(d, n_rows, pos0, kv_type, kv_stride, n_kv);
    if (rc) return rc;
    if (n_rows == 0) return ZC_OK;
    int threads = zc_pool_size(pool), simd = zc_cpu_has_avx2();
    colsum_ctx c = {.d = d, .q = q, .lse = lse, .rows = rows, .n_rows = n_rows, .pos0 = pos0, .n_kv = n_kv,
                    .kv_type = kv_type, .k = k, .kv_stride = kv_stride, .ldc = ldc, .colsum = colsum,
                    .row = simd ? zc_attn_colsum_row_avx2 : zc_attn_colsum_row_scalar, .simd = simd};
    /* ~4 tasks per thread over (head, chunk); chunks are whole tiles */
    int want = (4 * threads + d->n_kv_heads - 1) / d->n_kv_heads;
    int tiles = (n_kv + ZC_ATTN_BK - 1) / ZC_ATTN_BK;
    int n_chunks = want < tiles ? want : tiles;
    c.chunk_len = (tiles + n_chunks - 1) / n_chunks * ZC_ATTN_BK;
    c.n_chunks = (n_kv + c.chunk_len - 1) / c.chunk_len;
    size_t need;
    if (zc_mul_size((size_t)threads * 2 * ZC_ATTN_BK, (size_t)d->head_dim, &need))
        return zc_error(ZC_ERR_LIMIT, "attention: scratch size overflows");
    if ((rc = zc_attn_scratch_reserve(scratch, need))) return rc;
    c.scratch = scratch->buf;
    zc_pool_run(pool, c.n_chunks * d->n_kv_heads, colsum_task, &c);
    return ZC_OK;
}

static double load_kv(const void *p, int kv_type, size_t i) {
    return kv_type == ZC_TYPE_F32 ? (double)((const float *)p)[i] : (double)zc_fp16_to_f32(((const zc_fp16 *)p)[i]);
}

void zc_attn_reference(const zc_attn_dims *d, const float *q, int n_q, int pos0, const void *k, const void *v,
                       int kv_type, size_t kv_stride, int n_kv, float *out, float *lse) {
    int hd = d->head_dim, nh = d->n_heads, G = d->n_heads / d->n_kv_heads;
    double scale = 1.0 / sqrt((double)hd);
    double *row = zc_malloc((size_t)n_kv * sizeof(double)); /* one score row [n_kv] */
    double *o = zc_malloc((size_t)hd * sizeof(double));      /* [hd] */
    if (!row || !o) goto done;
    for (int i = 0; i < n_q; i++)
        for (int h = 0; h < nh; h++) {
            int g = h / G, n = pos0 + i + 1 < n_kv ? pos0 + i + 1 : n_kv;
            const float *qr = q + (size_t)i * nh * hd + (size_t)h * hd;
            double mx = -INFINITY;
            for (int t = 0; t < n; t++) {
                double dot = 0.0;
                for (int e = 0; e < hd; e++) dot += (double)qr[e] * load_kv(k, kv_type, t * kv_stride + g * hd + e);
                row[t] = dot * scale;
                if (row[t] > mx) mx = row[t];
            }
            double sum = 0.0;
            for (int t = 0; t < n; t++) sum += (row[t] = exp(row[t] - mx));
            memset(o, 0, (size_t)hd * sizeof(double));
            for (int t = 0; t < n; t++)
                for (int e = 0; e < hd; e++) o[e] += row[t] * load_kv(v, kv_type, t * kv_stride + g * hd + e);
            float *dst = out + (size_t)i * nh * hd + (size_t)h * hd;
            for (int e = 0; e < hd; e++) dst[e] = (float)(o[e] / sum);
            if (lse) lse[(size_t)i * nh + h] = (float)(mx + log(sum));
        }
done:
    free(row);
    free(o);
}
