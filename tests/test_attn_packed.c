/* Attention on packed codes against dequantize-then-attend.
 *
 * Random segments (random codes, fp16 parameters in realistic ranges,
 * per-head salient/regular splits of different sizes, several key groups)
 * for code widths 2, 3, 4, 8, GQA ratios 1, 2, 4, 8 and head dims 8, 16, 64,
 * 96, 128 and 256 (Mistral/Qwen3/Phi use 128, Gemma 3 256). The reference dequantizes every token to fp32 and runs the double
 * precision zc_attn_reference.
 *
 * Tolerances, on |fast - ref| / (1 + |ref|) over outputs and lse:
 *   fp32 path  1e-5: only summation order and exp rounding differ (~1e-6).
 *   int8 query 1e-2 on outputs and lse: the folded query is rounded to
 *              int8 (relative error <= 1/254 of its largest element per
 *              element), which moves scores by up to ~0.5% of their spread,
 *              and the P.V weights of each tile are rounded to bytes against
 *              the tile's largest; measured worst case on these inputs 6.4e-3.
 * The integer path runs on tiled sets (quant/tiled.h: 2 and 4 bits at head
 * dims 32k); the sweeps mix them with rows sets of the other widths. The
 * integer kernels themselves (scalar, AVX2, VNNI) are compared directly in
 * test_i8_kernels: equal integer parts, and the value update within the
 * bound its byte weights allow.
 */
#include <stdint.h>

#include "attn/attn_impl.h"
#include "attn/attn_packed.h"
#include "quant/pack.h"
#include "quant/tiled.h"
#include "tt.h"
#include "util/cpu.h"
#include "util/fp16.h"
#include "zipcache.h"

static unsigned long long g_seed = 0xfeedbeefull;

/* Everything allocated for one test problem, freed together. */
typedef struct {
    zc_attn_dims d;
    int n_segs;
    zc_packed_seg *segs; /* [n_segs][n_kv_heads] */
    void *blocks[4096];
    int n_blocks;
} packed_problem;

static void *pp_alloc(packed_problem *p, size_t bytes) {
    void *m = calloc(1, bytes ? bytes : 1);
    p->blocks[p->n_blocks++] = m;
    return m;
}

static zc_fp16 *rand_half(packed_problem *p, size_t n, float lo, float hi) {
    zc_fp16 *h = pp_alloc(p, n * sizeof(zc_fp16));
    for (size_t i = 0; i < n; i++) h[i] = zc_f32_to_fp16(lo + (hi - lo) * 0.5f * (tt_randf(&g_seed) + 1.0f));
    return h;
}

/* Random codes of n tokens as packed rows, or in the tiled layout `kind` when tiled. */
static uint8_t *rand_codes(packed_problem *p, int n, int hd, int bits, int tiled, zc_tiled_kind kind) {
    size_t count = (size_t)n * hd;
    uint8_t *codes = malloc(count ? count : 1);
    for (size_t i = 0; i < count; i++) codes[i] = (uint8_t)(tt_rand_u64(&g_seed) >> 56) & ((1u << bits) - 1);
    uint8_t *packed = pp_alloc(p, zc_pack_bytes(count, bits));
    zc_pack_scalar(codes, count, bits, packed);
    free(codes);
    if (!tiled) return packed;
    uint8_t *t = pp_alloc(p, zc_tiled_bytes(n, hd, bits));
    zc_tiled_from_rows(kind, packed, (size_t)hd * bits / 8, n, hd, bits, t);
    return t;
}

/* tiled: the tiled layouts where the widths allow them (as the zipcache policy stores). */
static void make_set(packed_problem *p, zc_packed_set *s, int n, int kb, int vb, int key_group, int tiled) {
    int hd = p->d.head_dim;
    s->n = n;
    s->k_bits = kb;
    s->v_bits = vb;
    s->tiled = tiled && zc_tiled_ok(hd, kb) && zc_tiled_ok(hd, vb);
    s->key_group = key_group > 0 ? key_group : (n > 0 ? n : 1);
    int groups = n > 0 ? (n + s->key_group - 1) / s->key_group : 0;
    float kr = 2.0f / (float)((1 << kb) - 1), vr = 2.0f / (float)((1 << vb) - 1);
    s->k_codes = rand_codes(p, n, hd, kb, s->tiled, ZC_TILED_K);
    s->k_step = rand_half(p, (size_t)groups * hd, 0.2f * kr, kr);
    s->k_min = rand_half(p, (size_t)groups * hd, -1.0f, 0.0f);
    s->v_codes = rand_codes(p, n, hd, vb, s->tiled, ZC_TILED_V);
    s->v_step = rand_half(p, (size_t)n, 0.2f * vr, vr);
    s->v_min = rand_half(p, (size_t)n, -1.0f, 0.0f);
}

/* seg_len[s] tokens per segment; per head a random salient count. */
static void pp_make(packed_problem *p, int n_kv_heads, int G, int hd, int hi, int lo, int n_segs, const int *seg_len,
                    int key_group, int tiled) {
    memset(p, 0, sizeof *p);
    p->d = (zc_attn_dims){n_kv_heads * G, n_kv_heads, hd};
    p->n_segs = n_segs;
    p->segs = pp_alloc(p, (size_t)(n_segs ? n_segs : 1) * n_kv_heads * sizeof(zc_packed_seg));
    for (int s = 0; s < n_segs; s++)
        for (int g = 0; g < n_kv_heads; g++) {
            zc_packed_seg *seg = &p->segs[(size_t)s * n_kv_heads + g];
            int ns = seg_len[s] ? (int)(tt_rand_u64(&g_seed) % (unsigned)(seg_len[s] + 1)) : 0;
            make_set(p, &seg->set[0], ns, hi, hi, key_group, tiled);
            make_set(p, &seg->set[1], seg_len[s] - ns, lo, lo, key_group, tiled);
            seg->v_norm = rand_half(p, (size_t)hd, 0.5f, 2.0f);
        }
}

static void pp_free(packed_problem *p) {
    for (int i = 0; i < p->n_blocks; i++) free(p->blocks[i]);
}

static double rel_err(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = isinf(b[i]) && a[i] == b[i] ? 0.0 : fabs((double)a[i] - (double)b[i]) / (1.0 + fabs((double)b[i]));
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

/* Fast vs reference: worst errors of outputs (*eo) and lse (*el). */
static void compare(const packed_problem *p, int n_q, zc_pool *pool, zc_attn_scratch *scr, double *eo, double *el) {
    size_t no = (size_t)n_q * p->d.n_heads * p->d.head_dim, nl = (size_t)n_q * p->d.n_heads;
    float *q = malloc(no * 4), *o1 = malloc(no * 4), *o2 = malloc(no * 4), *l1 = malloc(nl * 4), *l2 = malloc(nl * 4);
    for (size_t i = 0; i < no; i++) q[i] = 3.0f * tt_randf(&g_seed);
    int rc = zc_attn_packed(pool, &p->d, q, n_q, p->segs, p->n_segs, o1, l1, scr);
    TT_CHECK(rc == 0, "zc_attn_packed rc=%d %s", rc, zc_last_error());
    rc = zc_attn_packed_reference(&p->d, q, n_q, p->segs, p->n_segs, o2, l2);
    TT_CHECK(rc == 0, "reference rc=%d", rc);
    *eo = rel_err(o1, o2, no);
    *el = rel_err(l1, l2, nl);
    free(q);
    free(o1);
    free(o2);
    free(l1);
    free(l2);
}

static const int kBits[] = {2, 3, 4, 8};
static const int kRatios[] = {1, 2, 4, 8};
static const int kDims[] = {8, 16, 64, 128, 96, 256};

static void sweep(int tiled, double tol_o, double tol_l) {
    static const int lens[] = {300, 100, 7, 100, 64};
    zc_attn_scratch scr = {0};
    zc_pool *pool = zc_pool_create(2);
    double worst = 0.0;
    for (int bi = 0; bi < 4; bi++)
        for (int ri = 0; ri < 4; ri++)
            for (int di = 0; di < 6; di++) {
                packed_problem p;
                int hi = kBits[bi], lo = kBits[(bi + 3) % 4]; /* the other set at another width */
                pp_make(&p, 2, kRatios[ri], kDims[di], hi, lo, 5, lens, (ri & 1) ? 29 : 0, tiled);
                for (int nqi = 0; nqi < 2; nqi++) {
                    int n_q = nqi ? 70 : 1; /* 70: two query blocks */
                    double eo, el;
                    compare(&p, n_q, (bi + di) & 1 ? pool : NULL, &scr, &eo, &el);
                    TT_CHECK(eo <= tol_o && el <= tol_l, "bits %d/%d G=%d hd=%d n_q=%d out err=%.3g lse err=%.3g", hi,
                             lo, kRatios[ri], kDims[di], n_q, eo, el);
                    worst = eo > worst ? eo : worst;
                }
                pp_free(&p);
            }
    printf("  worst output error %.3g (%s)\n", worst, tiled ? "tiled sets where allowed" : "rows sets");
    zc_pool_destroy(pool);
    zc_attn_scratch_free(&scr);
}

static void test_fp_path(void) { sweep(0, 1e-5, 1e-5); }

static void test_int8_query(void) {
    zc_cpu_set_simd(1);
    sweep(1, 1e-2, 1e-2);
}

/* Forced scalar vs AVX2 on the same problem: both paths of both kernels.
 * The int8 integer dots are exact in both, so the int8 path agrees as
 * closely as the fp path. */
static void test_scalar_vs_simd(void) {
    zc_cpu_set_simd(1);
    if (!zc_cpu_has_avx2()) {
        zc_cpu_set_simd(-1);
        TT_SKIP("no AVX2 on this CPU");
    }
    static const int lens[] = {500, 100, 33};
    zc_attn_scratch scr = {0};
    for (int tiled = 0; tiled < 2; tiled++)
        for (int di = 2; di < 6; di++) {
            packed_problem p;
            pp_make(&p, 2, 4, kDims[di], 4, 2, 3, lens, 0, tiled);
            int n_q = 3;
            size_t no = (size_t)n_q * p.d.n_heads * p.d.head_dim, nl = (size_t)n_q * p.d.n_heads;
            float *q = malloc(no * 4), *o[2], *l[2];
            for (size_t i = 0; i < no; i++) q[i] = 3.0f * tt_randf(&g_seed);
            for (int s = 0; s < 2; s++) {
                o[s] = malloc(no * 4);
                l[s] = malloc(nl * 4);
                zc_cpu_set_simd(s);
                zc_attn_packed(NULL, &p.d, q, n_q, p.segs, p.n_segs, o[s], l[s], &scr);
            }
            double eo = rel_err(o[1], o[0], no), el = rel_err(l[1], l[0], nl);
            TT_CHECK(eo <= 2e-6 && el <= 2e-6, "tiled %d hd=%d scalar vs avx2 %.3g %.3g", tiled, kDims[di], eo, el);
            for (int s = 0; s < 2; s++) {
                free(o[s]);
                free(l[s]);
            }
            free(q);
            pp_free(&p);
        }
    zc_cpu_set_simd(-1);
    zc_attn_scratch_free(&scr);
}

/* Empty caches and empty sets: no tokens gives out = 0, lse = -inf; a
 * segment whose salient set is empty in every head still works. */
static void test_empty(void) {
    zc_attn_scratch scr = {0};
    packed_problem p;
    pp_make(&p, 1, 2, 16, 4, 2, 0, NULL, 0, 0);
    float q[32], o[32], l[2];
    for (int i = 0; i < 32; i++) q[i] = tt_randf(&g_seed);
    TT_CHECK(zc_attn_packed(NULL, &p.d, q, 1, p.segs, 0, o, l, &scr) == 0, "empty");
    TT_CHECK(o[0] == 0.0f && o[31] == 0.0f && isinf(l[0]) && l[0] < 0, "empty gives 0 / -inf");
    pp_free(&p);
    static const int lens[] = {40};
    pp_make(&p, 1, 2, 16, 4, 2, 1, lens, 0, 0);
    make_set(&p, &p.segs[0].set[1], 40, 2, 2, 0, 0); /* the regular set takes all 40 tokens */
    p.segs[0].set[0].n = 0;
    double eo, el;
    compare(&p, 1, NULL, &scr, &eo, &el);
    TT_CHECK(eo <= 1e-5 && el <= 1e-5, "empty salient set err %.3g %.3g", eo, el);
    pp_free(&p);
    zc_attn_scratch_free(&scr);
}

static void test_bad_args(void) {
    zc_attn_scratch scr = {0};
    zc_attn_dims d = {2, 1, 12};
    float q[24] = {0}, o[24], l[2];
    TT_CHECK(zc_attn_packed(NULL, &d, q, 1, NULL, 0, o, l, &scr) == ZC_ERR_UNSUPPORTED, "head_dim 12");
    static const int lens[] = {10};
    packed_problem p;
    pp_make(&p, 2, 1, 8, 4, 2, 1, lens, 0, 0);
    p.segs[1].set[1].n += 1; /* head 1 now holds 11 tokens, head 0 holds 10 */
    float q2[16] = {0}, o2[16], l2[2];
    TT_CHECK(zc_attn_packed(NULL, &p.d, q2, 1, p.segs, 1, o2, l2, &scr) == ZC_ERR_ARG, "uneven heads");
    p.segs[1].set[1].n -= 1;
    p.segs[0].set[p.segs[0].set[0].n > 0 ? 0 : 1].tiled = 1; /* a set with tokens; head_dim 8 has no tiled layout */
    TT_CHECK(zc_attn_packed(NULL, &p.d, q2, 1, p.segs, 1, o2, l2, &scr) == ZC_ERR_ARG, "tiled at head_dim 8");
    pp_free(&p);
    zc_attn_scratch_free(&scr);
}

/* One version of the integer kernels against the scalar one, on random
 * tiles of tiled codes (2 and 4 bits, R = 1..8 rows): scores equal bit for
 * bit (exact integer dots, the same fma), byte weights equal, value sums
 * equal (outputs within 1e-5 relative: only the order of sum_t p_t min_t
 * differs, |pmin| up to ~60 here), and the value update within the byte
 * weights' bound of the exact fp32 update:
 *   |acc_c - exact_c| <= norm_c * (wmax / 255) * (0.5 * sum_t vc_tc) + 1e-5 (1 + |exact_c|). */
static void check_i8_version(const zc_packed_kernels *X, const char *name) {
    const zc_packed_kernels *S = &zc_packed_kernels_scalar;
    static const int dims[] = {32, 64, 96, 128, 256}, counts[] = {8, 16, 56, 128}, rows[] = {1, 3, 4, 8};
    enum { T = 128, H = 256, R = ZC_PACKED_RB };
    static uint8_t kc[T * H], vc[T * H], rowbuf[T * H], kt[T * H], vt[T * H], wq_s[R * T], wq_x[R * T];
    static int8_t qq[R * H];
    static float s_s[R * T], s_x[R * T], p[R * T], step[T], vmin[T], norm[H], acc_s[R * H], acc_x[R * H], exact[R * H];
    static float qa[R], qmin[R], scale_s[R], scale_x[R], pmin_s[R], pmin_x[R], corr[R], wmax[R];
    double worst_bound = 0.0;
    for (int di = 0; di < 5; di++)
        for (int ci = 0; ci < 4; ci++) {
            int hd = dims[di], nt = counts[ci], nr = rows[(di + ci) % 4];
            int kbits = ci & 1 ? 2 : 4, vbits = (di + ci) & 1 ? 4 : 2;
            for (int i = 0; i < nt * hd; i++) {
                kc[i] = (uint8_t)(tt_rand_u64(&g_seed) & ((1u << kbits) - 1));
                vc[i] = (uint8_t)(tt_rand_u64(&g_seed) & ((1u << vbits) - 1));
            }
            zc_pack(kc, (size_t)nt * hd, kbits, rowbuf);
            zc_tiled_from_rows(ZC_TILED_K, rowbuf, (size_t)hd * kbits / 8, nt, hd, kbits, kt);
            zc_pack(vc, (size_t)nt * hd, vbits, rowbuf);
            zc_tiled_from_rows(ZC_TILED_V, rowbuf, (size_t)hd * vbits / 8, nt, hd, vbits, vt);
            for (int c = 0; c < hd; c++) norm[c] = 0.5f + tt_randf(&g_seed) * tt_randf(&g_seed) + 1.0f;
            for (int r = 0; r < nr; r++) {
                qa[r] = 0.01f + 0.005f * tt_randf(&g_seed);
                qmin[r] = -0.7f + 0.1f * tt_randf(&g_seed);
                corr[r] = 0.75f + 0.2f * tt_randf(&g_seed);
                for (int c = 0; c < hd; c++) {
                    qq[r * hd + c] = (int8_t)((int)(tt_rand_u64(&g_seed) % 255) - 127);
                    acc_s[r * hd + c] = acc_x[r * hd + c] = 2.0f * tt_randf(&g_seed);
                }
                for (int t = 0; t < nt; t++) p[r * T + t] = 0.5f + 0.5f * tt_randf(&g_seed); /* (0, 1] */
            }
            for (int t = 0; t < nt; t++) {
                step[t] = 0.1f + 0.05f * tt_randf(&g_seed);
                vmin[t] = -1.0f + 0.2f * tt_randf(&g_seed);
            }
            { /* fold: the same products, int8 queries and scales; the bias up to summation order */
                static float qb[R * H], ks[H], km[H], qs_s[R * H], qs_x[R * H], qm_s[R], qm_x[R], qa_x[R];
                static int8_t qq_x[R * H];
                for (int i = 0; i < nr * hd; i++) qb[i] = 2.0f * tt_randf(&g_seed);
                for (int c = 0; c < hd; c++) ks[c] = 0.05f + 0.2f * (tt_randf(&g_seed) + 1.0f), km[c] = tt_randf(&g_seed);
                S->fold(nr, hd, qb, ks, km, qs_s, qm_s, qq, qa);
                X->fold(nr, hd, qb, ks, km, qs_x, qm_x, qq_x, qa_x);
                int ok = !memcmp(qq, qq_x, (size_t)nr * hd) && !memcmp(qs_s, qs_x, (size_t)nr * hd * sizeof(float));
                for (int r = 0; r < nr; r++) ok &= qa[r] == qa_x[r] && fabsf(qm_s[r] - qm_x[r]) <= 1e-5f * (1.0f + fabsf(qm_s[r]));
                TT_CHECK(ok, "%s fold differs from scalar (hd %d, %d rows)", name, hd, nr);
            }
            S->scores_t(nt, hd, kbits, kt, nr, qq, qa, qmin, s_s, T);
            X->scores_t(nt, hd, kbits, kt, nr, qq, qa, qmin, s_x, T);
            int same = 1;
            for (int r = 0; r < nr; r++)
                for (int t = 0; t < nt; t++) {
                    int32_t dot = 0;
                    for (int c = 0; c < hd; c++) dot += qq[r * hd + c] * kc[t * hd + c];
                    same &= s_s[r * T + t] == s_x[r * T + t] && s_s[r * T + t] == fmaf(qa[r], (float)dot, qmin[r]);
                }
            TT_CHECK(same, "%s scores_t differs from the integer dots (hd %d, nt %d, %d rows, %d bits)", name, hd, nt,
                     nr, kbits);

            for (int r = 0; r < nr; r++) {
                S->weights(nt, p + r * T, step, vmin, wq_s + r * T, &scale_s[r], &pmin_s[r]);
                X->weights(nt, p + r * T, step, vmin, wq_x + r * T, &scale_x[r], &pmin_x[r]);
                TT_CHECK(!memcmp(wq_s + r * T, wq_x + r * T, (size_t)nt) && scale_s[r] == scale_x[r] &&
                         fabsf(pmin_s[r] - pmin_x[r]) <= 1e-5f * (1.0f + fabsf(pmin_s[r])),
                         "%s weights differ (nt %d)", name, nt);
                wmax[r] = 0.0f;
                for (int t = 0; t < nt; t++) wmax[r] = fmaxf(wmax[r], p[r * T + t] * step[t]);
                for (int c = 0; c < hd; c++) {
                    double u = 0.0;
                    for (int t = 0; t < nt; t++) u += (double)p[r * T + t] * (vc[t * hd + c] * (double)step[t] + vmin[t]);
                    exact[r * hd + c] = (float)(acc_s[r * hd + c] * (double)corr[r] + norm[c] * u);
                }
            }
            S->value_t(nt, hd, vbits, vt, nr, wq_s, T, scale_s, pmin_s, corr, norm, acc_s);
            X->value_t(nt, hd, vbits, vt, nr, wq_s, T, scale_s, pmin_s, corr, norm, acc_x);
            double dx = 0.0, over = 0.0;
            for (int r = 0; r < nr; r++)
                for (int c = 0; c < hd; c++) {
                    int i = r * hd + c;
                    double d = fabs((double)acc_x[i] - acc_s[i]) / (1.0 + fabs(acc_s[i]));
                    dx = d > dx ? d : dx;
                    double codes = 0.0;
                    for (int t = 0; t < nt; t++) codes += vc[t * hd + c];
                    double bound = norm[c] * (wmax[r] / 255.0) * 0.5 * codes + 1e-5 * (1.0 + fabs(exact[i]));
                    double e = fabs((double)acc_s[i] - exact[i]);
                    over = e / bound > over ? e / bound : over;
                }
            worst_bound = over > worst_bound ? over : worst_bound;
            TT_CHECK(dx == 0.0, "%s value_t vs scalar %.3g (hd %d, nt %d, %d rows, %d bits)", name, dx, hd, nt, nr, vbits);
            TT_CHECK(over <= 1.0, "value_t error %.3g of its bound (hd %d, nt %d)", over, hd, nt);
        }
    printf("  %s: integer kernels match scalar; value error at most %.2f of the byte-weight bound\n", name,
           worst_bound);
}

static void test_i8_kernels(void) {
    zc_cpu_set_simd(1);
    if (!zc_cpu_has_avx2()) {
        zc_cpu_set_simd(-1);
        TT_SKIP("no AVX2 on this CPU");
    }
    check_i8_version(&zc_packed_kernels_avx2, "avx2");
    if (zc_cpu_has_avx512vnni()) {
        zc_packed_kernels vnni = zc_packed_kernels_avx2;
        zc_packed_kernels_use_vnni(&vnni);
        check_i8_version(&vnni, "avx512-vnni");
    } else {
        printf("  avx512-vnni: not on this CPU, not checked\n");
    }
    zc_cpu_set_simd(-1);
}

int main(void) {
    TT_RUN(test_fp_path);
    TT_RUN(test_int8_query);
    TT_RUN(test_scalar_vs_simd);
    TT_RUN(test_i8_kernels);
    TT_RUN(test_empty);
    TT_RUN(test_bad_args);
    return tt_finish();
}
