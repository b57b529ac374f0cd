/* Tiled causal attention driver for caches that decode K/V a tile at a time
 * (see kv_tiled.h). The work split and the decode merge are attn.c's
 * (zc_attn_split_plan, zc_attn_merge_parts); only the tile source differs. */
#include "kv/kv_tiled.h"

#include <math.h>
#include <string.h>

#include "attn/attn_impl.h"
#include "util/error.h"
#include "util/small.h"


void zc_kvt_softmax_step(float *s, int n, float *m, float *l, float *acc_row, int head_dim) {
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

/* Per-thread scratch, in floats: query rows (decode: every KV head's), their
 * prepared form, score rows, (prefill) the rows' state, the tile's scratch. */
typedef struct {
    size_t q, qx, s, m, l, acc, tmp, total;
} thread_layout;

typedef struct {
    const zc_kvt_source *src;
    const float *q;
    int n_q, pos0, n_kv, G;
    float scale;
    float *out;
    thread_layout tl;
    float *scratch;      /* [threads][tl.total] */
    zc_attn_split sp;
    float *part;         /* decode partials, see zc_attn_part() */
} drv;

static thread_layout layout_for(const zc_kvt_source *src, int rows, int with_state) {
    thread_layout t;
    size_t o = 0, hd = (size_t)src->head_dim;
    t.q = o;   o += zc_round16((size_t)rows * hd);                                  /* [rows][hd] */
    t.qx = o;  o += zc_round16(((size_t)rows * src->qx_bytes + 3) / 4);             /* [rows][qx_bytes] */
    t.s = o;   o += zc_round16(2 * ZC_ATTN_BK); /* [2][BK]: zc_attn_tile_* scores query rows in pairs */
    t.m = t.l = t.acc = o;
    if (with_state) {
        t.m = o;   o += zc_round16((size_t)rows);        /* [rows] */
        t.l = o;   o += zc_round16((size_t)rows);        /* [rows] */
        t.acc = o; o += zc_round16((size_t)rows * hd);   /* [rows][hd] */
    }
    t.tmp = o; o += zc_round16(src->tmp_floats);
    t.total = o;
    return t;
}

/* Last key (exclusive) any query of block [q0, q0+nq) can see. */
static int key_end(const drv *c, int q0, int nq) {
    int last = c->pos0 + q0 + nq - 1;
    return (last < c->n_kv - 1 ? last : c->n_kv - 1) + 1;
}

/* Gather and scale the query rows of block [q0, q0+nq) for KV head g into
 * qr (and qx, prepared), and reset their state. */
static void start_rows(const drv *c, float *qr, void *qx, int g, int q0, int nq, float *m, float *l, float *acc) {
    const zc_kvt_source *src = c->src;
    int hd = src->head_dim, nh = src->n_heads, G = c->G, R = nq * G;
    for (int i = 0; i < nq; i++) {
        const float *from = c->q + (size_t)(q0 + i) * nh * hd + (size_t)g * G * hd;
        for (int j = 0; j < G * hd; j++) qr[(size_t)i * G * hd + j] = from[j] * c->scale;
    }
    if (qx) src->prepare(src->ctx, R, qr, qx);
    for (int r = 0; r < R; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(acc, 0, (size_t)R * hd * sizeof(float));
}

/* Fold keys [k0, k1) of KV head g into the rows of block [q0, q0+nq). */
static void walk_keys(const drv *c, float *ts, const float *qr, const void *qx, int g, int q0, int nq, int k0,
                      int k1, float *m, float *l, float *acc) {
    int nvalid[ZC_ATTN_BQ];
    zc_kvt_rows rows = {nq * c->G, c->G, nvalid, qr, qx, ts + c->tl.s, m, l, acc, ts + c->tl.tmp};
    for (int t0 = k0; t0 < k1; t0 += ZC_ATTN_BK) {
        int nk = k1 - t0 < ZC_ATTN_BK ? k1 - t0 : ZC_ATTN_BK;
        for (int i = 0; i < nq; i++) {
            int last = c->pos0 + q0 + i;
            if (last > c->n_kv - 1) last = c->n_kv - 1;
            int n = last + 1 - t0;
            nvalid[i] = n < 0 ? 0 : n > nk ? nk : n;
        }
        c->src->tile(c->src->ctx, g, t0, nk, &rows);
    }
}

static void prefill_task(void *ctx, int task, int thread) {
    const drv *c = ctx;
    int hd = c->src->head_dim, nh = c->src->n_heads, nkv = c->src->n_kv_heads, G = c->G;
    int g = task % nkv;
    int qb = c->sp.n_qblocks - 1 - task / nkv; /* heaviest blocks first */
    int q0 = qb * ZC_ATTN_BQ;
    int nq = c->n_q - q0 < ZC_ATTN_BQ ? c->n_q - q0 : ZC_ATTN_BQ;
    float *ts = c->scratch + (size_t)thread * c->tl.total;
    float *m = ts + c->tl.m, *l = ts + c->tl.l, *acc = ts + c->tl.acc, *qr = ts + c->tl.q;
    void *qx = c->src->qx_bytes ? (void *)(ts + c->tl.qx) : NULL;
    start_rows(c, qr, qx, g, q0, nq, m, l, acc);
    walk_keys(c, ts, qr, qx, g, q0, nq, 0, key_end(c, q0, nq), m, l, acc);
    for (int r = 0; r < nq * G; r++) {
        int i = q0 + r / G, h = g * G + r % G;
        float inv = 1.0f / l[r];
        float *o = c->out + (size_t)i * nh * hd + (size_t)h * hd;
        for (int e = 0; e < hd; e++) o[e] = acc[(size_t)r * hd + e] * inv;
    }
}

/* One chunk of keys for every KV head, tile by tile (attn.c's decode_task). */
static void decode_task(void *ctx, int chunk, int thread) {
    const drv *c = ctx;
    const zc_kvt_source *src = c->src;
    int hd = src->head_dim, R = c->n_q * c->G, nkv = src->n_kv_heads;
    float *ts = c->scratch + (size_t)thread * c->tl.total;
    int k0 = chunk * c->sp.chunk_len, k1 = k0 + c->sp.chunk_len, kend = key_end(c, 0, c->n_q);
    if (k1 > kend) k1 = kend;
    for (int g = 0; g < nkv; g++) {
        float *acc = zc_attn_part(c->part, &c->sp, nkv, hd, chunk, g);
        float *qr = ts + c->tl.q + (size_t)g * R * hd;
        void *qx = src->qx_bytes ? (char *)(ts + c->tl.qx) + (size_t)g * R * src->qx_bytes : NULL;
        start_rows(c, qr, qx, g, 0, c->n_q, acc + (size_t)R * hd, acc + (size_t)R * hd + R, acc);
    }
    for (int t0 = k0; t0 < k1; t0 += ZC_ATTN_BK) {
        int t1 = k1 - t0 < ZC_ATTN_BK ? k1 : t0 + ZC_ATTN_BK;
        for (int g = 0; g < nkv; g++) {
            float *acc = zc_attn_part(c->part, &c->sp, nkv, hd, chunk, g);
            const void *qx = src->qx_bytes ? (char *)(ts + c->tl.qx) + (size_t)g * R * src->qx_bytes : NULL;
            walk_keys(c, ts, ts + c->tl.q + (size_t)g * R * hd, qx, g, 0, c->n_q, t0, t1, acc + (size_t)R * hd,
                      acc + (size_t)R * hd + R, acc);
        }
    }
}

int zc_kvt_attend(zc_pool *pool, const zc_kvt_source *src, const float *q, int n_q, int pos0, int n_kv,
                  float *out, zc_attn_scratch *scratch) {
    if (n_q <= 0) return ZC_OK;
    if (pos0 < 0 || n_kv <= 0)
        return zc_error(ZC_ERR_ARG, "kv attention: bad query/key counts (n_q=%d pos0=%d n_kv=%d)", n_q, pos0, n_kv);
    drv c = {
        .src = src, .q = q, .n_q = n_q, .pos0 = pos0, .n_kv = n_kv, .G = src->n_heads / src->n_kv_heads,
        .scale = 1.0f / sqrtf((float)src->head_dim), .out = out,
    };
    int threads = zc_pool_size(pool);
    zc_attn_split_plan(n_q, c.G, src->n_kv_heads, src->head_dim, key_end(&c, 0, n_q), threads, &c.sp);
    c.tl = layout_for(src, c.sp.decode ? c.sp.rows * src->n_kv_heads : c.sp.rows, !c.sp.decode);
    int rc = zc_attn_split_reserve(scratch, &c.sp, c.tl.total, threads, &c.part, &c.scratch);
    if (rc) return rc;
    if (c.sp.decode) {
        zc_pool_run(pool, c.sp.n_tasks, decode_task, &c);
        zc_attn_merge_parts(c.part, &c.sp, n_q, c.G, src->n_kv_heads, src->head_dim, out, NULL);
    } else {
        zc_pool_run(pool, c.sp.n_tasks, prefill_task, &c);
    }
    return ZC_OK;
}
