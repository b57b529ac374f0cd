/* Hadamard rotation of KV rows (quant/hadamard.h) and its two users:
 *   zc_hadamard_rows  against the explicit Sylvester matrix (double), H H = I,
 *                     dot products kept.
 *   q4_0r             exactly q4_0 run on rotated K, V and Q with the output
 *                     rotated back (bit-identical), and closer to exact
 *                     attention than q4_0 when one channel is an outlier.
 *   zipcache          --kv-rotate: with 8-bit codes still the fp16 cache up
 *                     to rounding (the query is rotated to meet the keys);
 *                     head_dim not a power of two refused.
 *   --kv-rotate auto  per layer: rotates the layer whose keys have sparse
 *                     outliers, not the one whose keys sit on a 2-level grid;
 *                     each layer's outputs are bit for bit those of on / off;
 *                     head_dim 24 runs unrotated.
 */
#include "tt.h"

#include "attn/attn.h"
#include "kv/kv.h"
#include "kv/zipcache_internal.h"
#include "quant/hadamard.h"
#include "util/fp16.h"
#include "zipcache.h"

#include "kv_test_util.h"

static unsigned long long g_seed = 0x5eed0123ull;

/* Sylvester's H_n entry (i, j): (-1)^popcount(i & j). */
static int sylvester(int i, int j) { return __builtin_popcount((unsigned)(i & j)) & 1 ? -1 : 1; }

static void test_hadamard_matrix(void) {
    TT_CHECK(zc_hadamard_ok(2) && zc_hadamard_ok(128) && zc_hadamard_ok(4096), "powers of two");
    TT_CHECK(!zc_hadamard_ok(0) && !zc_hadamard_ok(1) && !zc_hadamard_ok(24) && !zc_hadamard_ok(8192), "others");
    for (int n = 2; n <= 256; n *= 2) {
        float x[3][256], y[3][256];
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < n; i++) x[r][i] = y[r][i] = 4 * tt_randf(&g_seed);
        zc_hadamard_rows(&y[0][0], 256, 3, n);
        double worst = 0, norm_x = 0, norm_y = 0, dot_x = 0, dot_y = 0;
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < n; i++) {
                double want = 0;
                for (int j = 0; j < n; j++) want += sylvester(i, j) * (double)x[r][j];
                want /= sqrt((double)n);
                double e = fabs(want - y[r][i]);
                worst = e > worst ? e : worst;
            }
        for (int i = 0; i < n; i++) {
            norm_x += (double)x[0][i] * x[0][i], norm_y += (double)y[0][i] * y[0][i];
            dot_x += (double)x[0][i] * x[1][i], dot_y += (double)y[0][i] * y[1][i];
        }
        TT_CHECK(worst <= 1e-5 * (1 + log2(n)), "n %d: |fwht - H x| %.3g", n, worst);
        TT_CHECK(fabs(norm_x - norm_y) <= 1e-5 * norm_x && fabs(dot_x - dot_y) <= 1e-4 * sqrt(norm_x * norm_x),
                 "n %d: norm %.9g vs %.9g, dot %.9g vs %.9g", n, norm_x, norm_y, dot_x, dot_y);
        zc_hadamard_rows(&y[0][0], 256, 3, n); /* H H = I */
        double back = 0;
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < n; i++) back = fmax(back, fabs((double)y[r][i] - x[r][i]));
        TT_CHECK(back <= 1e-5, "n %d: H H x - x = %.3g", n, back);
    }
}

/* Each head row [hd] of x [rows][hd] rotated into a copy. */
static float *rotated_copy(const float *x, size_t rows, int hd) {
    float *y = malloc(rows * hd * sizeof(float));
    memcpy(y, x, rows * hd * sizeof(float));
    zc_hadamard_rows(y, (size_t)hd, (int)rows, hd);
    return y;
}

/* Prefill n tokens and decode the rest one by one through cache c on the
 * data d, outputs [n_layers][d.n][q_dim] in out. */
static int run_all(zc_kv_cache *c, const data *d, int n0, float *out) {
    for (int pos = 0; pos < d->n;) {
        int n = pos == 0 ? n0 : 1;
        for (int l = 0; l < d->s.n_layers; l++) {
            int rc = c->ops->write(c, l, pos, n, rows_of(d, d->k, l, pos, d->kv_dim), rows_of(d, d->v, l, pos, d->kv_dim));
            if (rc == ZC_OK)
                rc = c->ops->attend(c, l, pos, n, rows_of(d, d->q, l, pos, d->q_dim),
                                    out + ((size_t)l * d->n + pos) * d->q_dim);
            if (rc) return rc;
        }
        pos += n;
    }
    return ZC_OK;
}

static double mean_sq_diff(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return n ? s / (double)n : 0;
}

static double worst_diff(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= w)) w = e;
    }
    return w;
}

/* q4_0r = H . q4_0(H q, H k, H v): the same blocks, the same kernels; and
 * with an outlier key channel (what rotation is for) closer to exact
 * attention than q4_0. */
static void test_q4_0r(void) {
    data d = make_data(2, 8, 2, 64, 70, 7);
    size_t nk = (size_t)2 * d.n * d.kv_dim, nq = (size_t)2 * d.n * d.q_dim;
    for (size_t i = 3; i < nk; i += 64) d.k[i] *= 25.0f; /* channel 3 of every key head */
    data r = d;
    r.k = rotated_copy(d.k, nk / 64, 64);
    r.v = rotated_copy(d.v, nk / 64, 64);
    r.q = rotated_copy(d.q, nq / 64, 64);
    float *o_r = malloc(nq * sizeof(float)), *o_q = malloc(nq * sizeof(float)), *o_x = malloc(nq * sizeof(float)),
          *o_p = malloc(nq * sizeof(float));
    zc_kv_cache *qr = create("q4_0r", &d.s, NULL), *q4 = create("q4_0", &d.s, NULL), *q4b = create("q4_0", &d.s, NULL),
                *fp = create("fp32", &d.s, NULL);
    if (qr && q4 && q4b && fp) {
        TT_CHECK(run_all(qr, &d, 40, o_r) == ZC_OK && run_all(q4, &r, 40, o_q) == ZC_OK &&
                     run_all(q4b, &d, 40, o_p) == ZC_OK && run_all(fp, &d, 40, o_x) == ZC_OK,
                 "%s", zc_last_error());
        zc_hadamard_rows(o_q, 64, (int)(nq / 64), 64);
        TT_CHECK(!memcmp(o_r, o_q, nq * sizeof(float)), "q4_0r differs from rotated q4_0 by %.3g",
                 worst_diff(o_r, o_q, nq));
        zc_kv_usage ur, u4;
        qr->ops->usage(qr, &ur);
        q4->ops->usage(q4, &u4);
        TT_CHECK(ur.total == u4.total && zc_kv_bits_per_element(&ur) == 4.5, "q4_0r stores %zu bytes, q4_0 %zu",
                 ur.total, u4.total);
        double e_rot = worst_diff(o_r, o_x, nq), e_plain = worst_diff(o_p, o_x, nq);
        printf("  outlier key channel: worst |out - exact| q4_0 %.3g, q4_0r %.3g\n", e_plain, e_rot);
        TT_CHECK(e_rot < 0.75 * e_plain, "rotation should help with an outlier channel: %.3g vs %.3g", e_rot, e_plain);
    }
    zc_kv_free(qr), zc_kv_free(q4), zc_kv_free(q4b), zc_kv_free(fp);
    zc_kv_shape odd = {1, 2, 1, 96, 16, NULL}; /* head_dim a multiple of 32, not a power of two */
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    strcpy(cfg.policy, "q4_0r");
    zc_kv_cache *c = NULL;
    TT_CHECK(zc_kv_create(&cfg, &odd, NULL, &c) == ZC_ERR_UNSUPPORTED && !c && strstr(zc_last_error(), "power of two"),
             "head_dim 96: %s", zc_last_error());
    free(o_r), free(o_q), free(o_x), free(o_p);
    free_data(&r);
    free_data(&d);
}

/* zipcache --kv-rotate: keys stored rotated, queries rotated to meet them.
 * At 8 bits the cache is still the fp16 one up to rounding, with or without
 * the rotation; head_dim 24 cannot be rotated. */
static void test_zipcache_rotate(void) {
    data d = make_data(2, 4, 2, 32, 230, 11);
    size_t nq = (size_t)2 * d.n * d.q_dim;
    float *o_h = malloc(nq * sizeof(float)), *o_z = malloc(nq * sizeof(float)), *o_n = malloc(nq * sizeof(float));
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    strcpy(cfg.policy, "zipcache");
    cfg.k_hi_bits = cfg.k_lo_bits = cfg.v_hi_bits = cfg.v_lo_bits = 8;
    cfg.int8_query = 0; /* the fp32 path: the comparison is about the rotation, not the int8 rounding */
    cfg.stream_gap = 50;
    cfg.rotate_keys = ZC_ZIP_ROTATE_OFF;
    zc_kv_cache *h = create("fp16", &d.s, NULL), *z = NULL, *n = create_cfg(&cfg, &d.s, NULL);
    cfg.rotate_keys = ZC_ZIP_ROTATE_ON;
    z = create_cfg(&cfg, &d.s, NULL);
    if (h && z && n) {
        TT_CHECK(run_all(h, &d, 100, o_h) == ZC_OK && run_all(z, &d, 100, o_z) == ZC_OK &&
                     run_all(n, &d, 100, o_n) == ZC_OK, "%s", zc_last_error());
        size_t from = (size_t)100 * d.q_dim; /* decode steps of layer 0 and 1 read the segments */
        double e_rot = 0, e_plain = 0;
        for (int l = 0; l < 2; l++) {
            size_t off = (size_t)l * d.n * d.q_dim + from, m = (size_t)(d.n - 100) * d.q_dim;
            e_rot = fmax(e_rot, worst_diff(o_z + off, o_h + off, m));
            e_plain = fmax(e_plain, worst_diff(o_n + off, o_h + off, m));
        }
        printf("  8-bit decode vs fp16: worst |diff| rotated %.3g, plain %.3g\n", e_rot, e_plain);
        TT_CHECK(e_rot > 0 && e_rot <= 5e-3 && e_plain <= 5e-3, "rotated %.3g plain %.3g", e_rot, e_plain);
        TT_CHECK(memcmp(o_z + from, o_n + from, (size_t)(d.n - 100) * d.q_dim * sizeof(float)) != 0,
                 "the rotation changed nothing");
    }
    zc_kv_free(h), zc_kv_free(z), zc_kv_free(n);
    zc_kv_shape odd = {1, 2, 1, 24, 64, NULL};
    zc_kv_cache *c = NULL;
    TT_CHECK(zc_kv_create(&cfg, &odd, NULL, &c) == ZC_ERR_UNSUPPORTED && !c && strstr(zc_last_error(), "power of two"),
             "head_dim 24: %s", zc_last_error());
    free(o_h), free(o_z), free(o_n);
    free_data(&d);
}

/* --kv-rotate auto on two constructed layers, at the default 4-bit plan:
 *   layer 0  every key has one huge spike in a channel of its own (token j:
 *            channel 7j mod 32): channelwise, every channel's range is the
 *            spike's, so the small values drown; rotated, each spike spreads
 *            over all channels at 1/sqrt(32) of its size: rotation must win;
 *   layer 1  keys random signs times a scale per channel: two levels per
 *            channel, exact at any width as they are; rotated, sums of 32
 *            terms: rotation clearly loses.
 * Auto must choose so, and its outputs (prefill, decode, two streaming
 * compressions) must be those of --kv-rotate on (layer 0) and off (layer 1)
 * bit for bit, with the smaller error against fp16 attention each time (the
 * value codes' error, the same both ways, dominates it). */
static void test_zipcache_rotate_auto(void) {
    data d = make_data(2, 4, 2, 32, 230, 13);
    for (int t = 0; t < d.n; t++)
        for (int c = 0; c < d.kv_dim; c++) {
            float *k0 = &d.k[(size_t)t * d.kv_dim + c], *k1 = &d.k[((size_t)d.n + t) * d.kv_dim + c];
            if (c % 32 == (7 * t) % 32) *k0 = (t & 1 ? 12.0f : -12.0f) * (1 + 0.01f * (t % 5));
            *k1 = (*k1 < 0 ? -1.0f : 1.0f) * (1 + (c % 32) * 0.25f);
        }
    size_t nq = (size_t)2 * d.n * d.q_dim;
    for (size_t i = 0; i < nq; i++) d.q[i] *= 0.25f; /* logits of a few units: softmax not saturated */
    float *o[4];
    for (int i = 0; i < 4; i++) o[i] = malloc(nq * sizeof(float));
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    strcpy(cfg.policy, "zipcache");
    TT_CHECK(cfg.rotate_keys == ZC_ZIP_ROTATE_AUTO, "the default is auto: %d", cfg.rotate_keys);
    cfg.stream_gap = 50;
    zc_kv_cache *c[4] = {create("fp16", &d.s, NULL), NULL, NULL, NULL}; /* fp16, auto, off, on */
    for (int i = 1; i < 4; i++) {
        cfg.rotate_keys = i == 1 ? ZC_ZIP_ROTATE_AUTO : i == 2 ? ZC_ZIP_ROTATE_OFF : ZC_ZIP_ROTATE_ON;
        c[i] = create_cfg(&cfg, &d.s, NULL);
    }
    if (c[0] && c[1] && c[2] && c[3]) {
        TT_CHECK(zc_zip_rotated(c[1], 0) == -1 && zc_zip_rotated(c[2], 0) == 0 && zc_zip_rotated(c[3], 1) == 1,
                 "before any compression: %d %d %d", zc_zip_rotated(c[1], 0), zc_zip_rotated(c[2], 0),
                 zc_zip_rotated(c[3], 1));
        int rc = ZC_OK;
        for (int i = 0; i < 4 && rc == ZC_OK; i++) rc = run_all(c[i], &d, 100, o[i]);
        TT_CHECK(rc == ZC_OK, "%s", zc_last_error());
        int chosen = 0;
        TT_CHECK(zc_zip_rotated(c[1], 0) == 1 && zc_zip_rotated(c[1], 1) == 0 &&
                     zc_zip_rotation_count(c[1], &chosen) == 1 && chosen == 2,
                 "auto chose layer 0: %d, layer 1: %d", zc_zip_rotated(c[1], 0), zc_zip_rotated(c[1], 1));
        size_t per = (size_t)d.n * d.q_dim;
        for (int l = 0; l < 2; l++) {
            const float *want = o[l == 0 ? 3 : 2] + l * per;
            TT_CHECK(!memcmp(o[1] + l * per, want, per * sizeof(float)), "layer %d: auto differs from %s", l,
                     l == 0 ? "on" : "off");
            size_t from = (size_t)100 * d.q_dim; /* steps that read segments */
            double e_off = mean_sq_diff(o[2] + l * per + from, o[0] + l * per + from, per - from);
            double e_on = mean_sq_diff(o[3] + l * per + from, o[0] + l * per + from, per - from);
            printf("  layer %d: mean squared diff vs fp16: off %.3g, on %.3g\n", l, e_off, e_on);
            TT_CHECK(l == 0 ? e_on < e_off : e_off < e_on, "layer %d: off %.3g on %.3g", l, e_off, e_on);
        }
        TT_CHECK(c[1]->ops->truncate(c[1], 0) == ZC_OK && zc_zip_rotated(c[1], 0) == -1, "a reset chooses again");
    }
    for (int i = 0; i < 4; i++) zc_kv_free(c[i]), free(o[i]);
    free_data(&d);
    /* head_dim 24: auto runs, unrotated */
    data e = make_data(1, 2, 1, 24, 40, 5);
    float *oe = malloc((size_t)e.n * e.q_dim * sizeof(float));
    cfg.rotate_keys = ZC_ZIP_ROTATE_AUTO;
    zc_kv_cache *z = create_cfg(&cfg, &e.s, NULL);
    if (z) TT_CHECK(run_all(z, &e, 30, oe) == ZC_OK && zc_zip_rotated(z, 0) == 0, "head_dim 24: %s", zc_last_error());
    zc_kv_free(z);
    free(oe);
    free_data(&e);
}

int main(void) {
    TT_RUN(test_hadamard_matrix);
    TT_RUN(test_q4_0r);
    TT_RUN(test_zipcache_rotate);
    TT_RUN(test_zipcache_rotate_auto);
    return tt_finish();
}
