/* `zipcache bench attn`: decode attention alone, fp16 cache against packed
 * zipcache codes, at chosen context depths; optionally (--kernels NAME) any
 * KV policy through its attend(), and (--queries N) a block of N queries, so
 * that prefill's split (N > 64) is measured too.
 *
 * One query token (all n_heads heads) attends to `depth` cached tokens of one
 * layer. The caches of --layers layers are allocated separately and visited in
 * turn, as decode does, so a layer's cache is cold when it is read (one
 * layer's packed cache alone would fit in the last-level cache and flatter the
 * packed kernel). Packed segments have --seg tokens each, split into salient
 * (hi bits) and regular (lo bits) sets with the zipcache policy's defaults.
 *
 * A policy's cache is filled through its write() with random K/V (depth
 * tokens per layer, policy defaults) and its queries are the last N positions:
 * query i sees keys 0..depth-N+i (causal). fp16 and the packed kernels run on
 * their arrays directly (packed: every query sees every key).
 *
 * Each row reports the time per layer, the cache bytes read, the bandwidth
 * floor (bytes / read bandwidth measured in the same run) and the arithmetic
 * rate in multiply-adds (2 * n_heads * depth * head_dim per query: q.k and
 * p.v; for causal blocks an upper bound).
 */
#include "bench_attn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "attn/attn_packed.h"
#include "kv/kv.h"
#include "quant/ggml_blocks.h"
#include "quant/tiled.h"
#include "cli.h"
#include "util/cpu.h"
#include "util/error.h"
#include "util/fp16.h"
#include "util/membw.h"
#include "util/threads.h"
#include "util/timer.h"

#define MAX_DEPTHS 16
#define MAX_POLICIES 8

enum { RUN_FP16 = 1, RUN_PACKED = 2, RUN_PACKED_I8 = 4 };

typedef struct {
    zc_attn_dims d;
    int layers, seg, hi, lo, which; /* which: RUN_* bits */
    int v_hi, v_lo, key_group;      /* value widths (0: hi, lo) and key group (0: one per set), as a zipcache plan */
    int queries;                    /* query tokens per call (1: decode) */
    const char *policies[MAX_POLICIES]; /* KV policies run through their attend() */
    int n_policies;
    double salient, min_time;
} attn_opts;

typedef struct {
    char kernel[24];
    int depth;
    double us, bytes, floor_us, gmacs;
} attn_row;

static unsigned long long rng_state = 0x2545f4914f6cdd1dull;
static uint32_t rnd32(void) {
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}
static float rndf(void) { return (float)(rnd32() >> 8) * (1.0f / 8388608.0f) - 1.0f; } /* [-1, 1) */

/* Everything one layer's packed cache needs: codes and parameters of every
 * (segment, KV head, set), in one arena. */
typedef struct {
    zc_packed_seg *segs; /* [n_segs][n_kv_heads] */
    int n_segs;
    uint8_t *arena;
    size_t bytes;
} packed_layer;

static size_t set_bytes(int n, int hd, int kb, int vb, int tiled, int kg) {
    size_t groups = kg > 0 && n > 0 ? ((size_t)n + kg - 1) / kg : 1;
    return zc_packed_code_bytes(n, hd, kb, tiled) + zc_packed_code_bytes(n, hd, vb, tiled) +
           2 * sizeof(zc_fp16) * (groups * hd + n);
}

static int set_tiled(const attn_opts *o, int tiled, int st) {
    int hd = o->d.head_dim;
    return tiled && zc_tiled_ok(hd, st ? o->lo : o->hi) && zc_tiled_ok(hd, st ? o->v_lo : o->v_hi);
}

/* tiled: the integer path's layout where the widths allow it (as the zipcache policy stores). */
static int packed_layer_make(const attn_opts *o, int depth, int tiled, packed_layer *L) {
    int hd = o->d.head_dim, nkv = o->d.n_kv_heads;
    L->n_segs = (depth + o->seg - 1) / o->seg;
    L->segs = zc_calloc((size_t)L->n_segs * nkv, sizeof *L->segs);
    size_t total = 0;
    for (int s = 0; s < L->n_segs; s++) {
        int n = depth - s * o->seg < o->seg ? depth - s * o->seg : o->seg;
        int n_hi = (int)ceil(o->salient * n);
        total += nkv * (set_bytes(n_hi, hd, o->hi, o->v_hi, set_tiled(o, tiled, 0), o->key_group) +
                        set_bytes(n - n_hi, hd, o->lo, o->v_lo, set_tiled(o, tiled, 1), o->key_group) +
                        sizeof(zc_fp16) * (size_t)hd + 64);
    }
    L->arena = zc_malloc_aligned(total);
    L->bytes = 0;
    if (!L->segs || !L->arena) return ZC_ERR_NOMEM;
    uint8_t *p = L->arena;
#define TAKE(ptr, type, count)              \
    do {                                    \
        (ptr) = (type *)(void *)p;          \
        p += sizeof(type) * (size_t)(count); \
    } while (0)
    for (int s = 0; s < L->n_segs; s++) {
        int n = depth - s * o->seg < o->seg ? depth - s * o->seg : o->seg;
        int n_hi = (int)ceil(o->salient * n);
        for (int g = 0; g < nkv; g++) {
            zc_packed_seg *sg = &L->segs[(size_t)s * nkv + g];
            zc_fp16 *norm;
            TAKE(norm, zc_fp16, hd);
            for (int e = 0; e < hd; e++) norm[e] = zc_f32_to_fp16(1.0f + 0.5f * fabsf(rndf()));
            sg->v_norm = norm;
            for (int st = 0; st < 2; st++) {
                zc_packed_set *set = &sg->set[st];
                int bits = st ? o->lo : o->hi, vbits = st ? o->v_lo : o->v_hi;
                set->n = st ? n - n_hi : n_hi;
                set->k_bits = bits;
                set->v_bits = vbits;
                set->key_group = o->key_group > 0 ? o->key_group : set->n > 0 ? set->n : 1;
                set->tiled = set_tiled(o, tiled, st);
                uint8_t *kc, *vc;
                zc_fp16 *ks, *km, *vs, *vm;
                size_t nb = zc_packed_code_bytes(set->n, hd, bits, set->tiled);
                size_t nvb = zc_packed_code_bytes(set->n, hd, vbits, set->tiled);
                size_t ng = set->n > 0 ? ((size_t)set->n + set->key_group - 1) / set->key_group : 1;
                TAKE(kc, uint8_t, nb);
                TAKE(vc, uint8_t, nvb);
                TAKE(ks, zc_fp16, ng * hd);
                TAKE(km, zc_fp16, ng * hd);
                TAKE(vs, zc_fp16, set->n);
                TAKE(vm, zc_fp16, set->n);
                for (size_t i = 0; i < nb; i++) kc[i] = (uint8_t)rnd32();
                for (size_t i = 0; i < nvb; i++) vc[i] = (uint8_t)rnd32();
                float levels = (float)((1 << bits) - 1);
                for (size_t e = 0; e < ng * hd; e++) {
                    ks[e] = zc_f32_to_fp16(2.0f / levels);
                    km[e] = zc_f32_to_fp16(-1.0f + 0.1f * rndf());
                }
                levels = (float)((1 << vbits) - 1);
                for (int t = 0; t < set->n; t++) {
                    vs[t] = zc_f32_to_fp16(2.0f / levels);
                    vm[t] = zc_f32_to_fp16(-1.0f + 0.1f * rndf());
                }
                set->k_codes = kc, set->v_codes = vc, set->k_step = ks, set->k_min = km, set->v_step = vs,
                set->v_min = vm;
            }
        }
    }
#undef TAKE
    L->bytes = (size_t)(p - L->arena);
    return ZC_OK;
}

static void packed_layer_free(packed_layer *L) {
    free(L->segs);
    zc_free_aligned(L->arena);
    memset(L, 0, sizeof *L);
}

/* Time calls of `run` over the layers in turn until min_time has passed;
 * the fastest full pass over the layers, per layer, in microseconds. */
typedef int (*layer_fn)(void *ctx, int layer);
static double time_layers(const attn_opts *o, layer_fn run, void *ctx) {
    double best = 1e30, start = zc_now();
    for (int rep = 0; rep < 3 || zc_now() - start < o->min_time; rep++) {
        double t = zc_now();
        for (int l = 0; l < o->layers; l++)
            if (run(ctx, l)) return -1;
        t = zc_now() - t;
        best = t < best ? t : best;
    }
    return best / o->layers * 1e6;
}

typedef struct {
    zc_pool *pool;
    const attn_opts *o;
    int depth;
    const float *q;
    float *out, *lse;
    zc_attn_scratch *scratch;
    zc_fp16 **k, **v;      /* [layers] fp16 caches [depth][n_kv_heads*head_dim] */
    packed_layer *packed;  /* [layers] */
    zc_kv_cache *kv;       /* a policy's cache of every layer */
} attn_job;

static int run_fp16(void *ctx, int l) {
    attn_job *j = ctx;
    const attn_opts *o = j->o;
    return zc_attn_forward(j->pool, &o->d, j->q, o->queries, j->depth - o->queries, j->k[l], j->v[l], ZC_TYPE_F16,
                           (size_t)o->d.n_kv_heads * o->d.head_dim, j->depth, j->out, j->lse, j->scratch);
}

static int run_packed(void *ctx, int l) {
    attn_job *j = ctx;
    return zc_attn_packed(j->pool, &j->o->d, j->q, j->o->queries, j->packed[l].segs, j->packed[l].n_segs, j->out,
                          j->lse, j->scratch);
}

static int run_policy(void *ctx, int l) {
    attn_job *j = ctx;
    return j->kv->ops->attend(j->kv, l, j->depth - j->o->queries, j->o->queries, j->q, j->out);
}

/* A cache of `policy` (its default options) holding depth random tokens in
 * every layer, written in chunks as a prefill would. */
static int policy_cache_make(zc_pool *pool, const attn_opts *o, const char *policy, int depth, zc_kv_cache **out) {
    zc_kv_config cfg;
    zc_kv_config_default(&cfg);
    int rc = zc_kv_config_parse_arg(&cfg, "--kv", policy);
    if (rc != 1) return rc;
    zc_kv_shape shape = {o->layers, o->d.n_heads, o->d.n_kv_heads, o->d.head_dim, depth, NULL};
    if ((rc = zc_kv_create(&cfg, &shape, pool, out))) return rc;
    enum { CHUNK = 256 };
    size_t row = (size_t)o->d.n_kv_heads * o->d.head_dim;
    float *k = zc_malloc(CHUNK * row * sizeof(float)), *v = zc_malloc(CHUNK * row * sizeof(float)); /* [CHUNK][row] */
    rc = k && v ? ZC_OK : ZC_ERR_NOMEM;
    for (int t = 0; rc == ZC_OK && t < depth; t += CHUNK) {
        int n = depth - t < CHUNK ? depth - t : CHUNK;
        for (size_t i = 0; i < (size_t)n * row; i++) k[i] = rndf(), v[i] = rndf();
        for (int l = 0; rc == ZC_OK && l < o->layers; l++) rc = (*out)->ops->write(*out, l, t, n, k, v);
    }
    free(k);
    free(v);
    if (rc) {
        zc_kv_free(*out);
        *out = NULL;
    }
    return rc;
}

static void add_row(attn_row *r, const char *kernel, int depth, double us, double bytes, double read_gbs,
                    const attn_opts *o) {
    snprintf(r->kernel, sizeof r->kernel, "%s", kernel);
    r->depth = depth;
    r->us = us;
    r->bytes = bytes;
    r->floor_us = bytes / (read_gbs * 1e9) * 1e6;
    r->gmacs = 2.0 * o->d.n_heads * (double)depth * o->d.head_dim * o->queries / (us * 1e-6) / 1e9;
    fprintf(stderr, "%-16s depth %6d: %9.1f us per layer (floor %.1f)\n", kernel, depth, us, r->floor_us);
}

static int bench_depth(zc_pool *pool, const attn_opts *o, int depth, double read_gbs, attn_row *rows, int *n_rows) {
    int hd = o->d.head_dim, nkv = o->d.n_kv_heads, nh = o->d.n_heads;
    size_t kv_elems = (size_t)depth * nkv * hd;
    attn_job j = {.pool = pool, .o = o, .depth = depth};
    zc_attn_scratch scratch = {0};
    size_t nq = (size_t)o->queries;
    float *q = zc_malloc_aligned(nq * nh * hd * sizeof(float));  /* [queries][nh*hd] */
    j.out = zc_malloc_aligned(nq * nh * hd * sizeof(float));     /* [queries][nh*hd] */
    j.lse = zc_malloc_aligned(nq * nh * sizeof(float));          /* [queries][nh] */
    j.k = zc_calloc((size_t)o->layers, sizeof *j.k);
    j.v = zc_calloc((size_t)o->layers, sizeof *j.v);
    j.packed = zc_calloc((size_t)o->layers, sizeof *j.packed);
    j.scratch = &scratch;
    j.q = q;
    int rc = ZC_ERR_NOMEM;
    if (!q || !j.out || !j.lse || !j.k || !j.v || !j.packed) goto done;
    for (size_t i = 0; i < nq * nh * hd; i++) q[i] = 2.0f * rndf();
    if (!(o->which & RUN_FP16)) goto packed;
    /* fp16: every layer's cache is its own allocation; the packed caches
     * are built after the fp16 ones are freed, so peak memory is one kind */
    for (int l = 0; l < o->layers; l++) {
        j.k[l] = zc_malloc_aligned(kv_elems * sizeof(zc_fp16));
        j.v[l] = zc_malloc_aligned(kv_elems * sizeof(zc_fp16));
        if (!j.k[l] || !j.v[l]) goto done;
        for (size_t i = 0; i < kv_elems; i++) j.k[l][i] = zc_f32_to_fp16(rndf()), j.v[l][i] = zc_f32_to_fp16(rndf());
    }
    double us = time_layers(o, run_fp16, &j);
    if (us < 0) goto fail;
    add_row(&rows[(*n_rows)++], "fp16", depth, us, 2.0 * kv_elems * sizeof(zc_fp16), read_gbs, o);
    for (int l = 0; l < o->layers; l++) {
        zc_free_aligned(j.k[l]), zc_free_aligned(j.v[l]);
        j.k[l] = j.v[l] = NULL;
    }
packed:;
    static const char *names[2] = {"packed fp32", "packed int8-q"};
    for (int v = 0; v < 2; v++) { /* rows layout (fp32 path), tiled layout (integer path) */
        if (!(o->which & (v ? RUN_PACKED_I8 : RUN_PACKED))) continue;
        for (int l = 0; l < o->layers; l++)
            if (packed_layer_make(o, depth, v, &j.packed[l])) goto done;
        us = time_layers(o, run_packed, &j);
        if (us < 0) goto fail;
        add_row(&rows[(*n_rows)++], names[v], depth, us, (double)j.packed[0].bytes, read_gbs, o);
        for (int l = 0; l < o->layers; l++) packed_layer_free(&j.packed[l]);
    }
    for (int p = 0; p < o->n_policies; p++) { /* one policy's cache at a time */
        if ((rc = policy_cache_make(pool, o, o->policies[p], depth, &j.kv))) goto done;
        zc_kv_usage u;
        j.kv->ops->usage(j.kv, &u);
        us = time_layers(o, run_policy, &j);
        zc_kv_free(j.kv);
        j.kv = NULL;
        if (us < 0) goto fail;
        add_row(&rows[(*n_rows)++], o->policies[p], depth, us, (double)u.total / o->layers, read_gbs, o);
    }
    rc = ZC_OK;
    goto done;
fail:
    rc = ZC_ERR_ARG; /* the kernel has set the message */
done:
    if (rc == ZC_ERR_NOMEM) zc_error(ZC_ERR_NOMEM, "bench attn: out of memory at depth %d", depth);
    zc_kv_free(j.kv);
    for (int l = 0; j.k && l < o->layers; l++) zc_free_aligned(j.k[l]), zc_free_aligned(j.v[l]);
    for (int l = 0; j.packed && l < o->layers; l++) packed_layer_free(&j.packed[l]);
    free(j.k), free(j.v), free(j.packed);
    zc_free_aligned(q), zc_free_aligned(j.out), zc_free_aligned(j.lse);
    zc_attn_scratch_free(&scratch);
    return rc;
}

static void print_rows(FILE *f, const attn_row *rows, int n, int markdown) {
    if (markdown) {
        fprintf(f, "| kernel | depth | us/layer | cache MiB/layer | floor us | of floor | GMAC/s | vs fp16 |\n");
        fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|\n");
    } else {
        fprintf(f, "kernel,depth,us_per_layer,cache_bytes_per_layer,floor_us,gmac_per_s,speedup_vs_fp16\n");
    }
    for (int i = 0; i < n; i++) {
        const attn_row *r = &rows[i];
        double base = r->us;
        for (int k = 0; k < n; k++)
            if (rows[k].depth == r->depth && !strcmp(rows[k].kernel, "fp16")) base = rows[k].us;
        if (markdown)
            fprintf(f, "| %s | %d | %.1f | %.2f | %.1f | %.0f%% | %.1f | %.2fx |\n", r->kernel, r->depth, r->us,
                    r->bytes / 1048576.0, r->floor_us, 100.0 * r->floor_us / r->us, r->gmacs, base / r->us);
        else
            fprintf(f, "%s,%d,%.3f,%.0f,%.3f,%.3f,%.4f\n", r->kernel, r->depth, r->us, r->bytes, r->floor_us, r->gmacs,
                    base / r->us);
    }
}

int bench_attn_main(int argc, char **argv) {
    const char *cmd = "bench attn", *csv = NULL, *val;
    attn_opts o = {.d = {32, 8, 64}, .layers = 16, .seg = 512, .hi = 4, .lo = 2, .salient = 0.6, .min_time = 1.0,
                   .which = RUN_FP16 | RUN_PACKED | RUN_PACKED_I8, .queries = 1};
    long long depths[MAX_DEPTHS] = {4096, 16384, 32768}, nt = 0, x;
    int n_depths = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: zipcache bench attn [-d 4096,16384,32768] [-t N] [--heads 32] [--kv-heads 8] [--head-dim 64]\n"
                   "         [--layers 16] [--seg 512] [--hi 4] [--lo 2] [--salient 0.6] [--min-time S] [--csv FILE]\n"
                   "         [--kernels fp16,packed,packed-i8,POLICY...] [--v-hi B] [--v-lo B] [--key-group G]\n"
                   "         [--queries N]\n"
                   "  decode attention of one token per layer: fp16 cache vs packed zipcache codes (fp32 and int8\n"
                   "  query paths), time per layer against the read-bandwidth floor. N = 0: all cores.\n"
                   "  --kernels may also name KV policies (q8_0, q4_0, kivi, ...): their attend() on a cache they\n"
                   "  filled with random tokens (default options). --queries N: N query tokens per call, the\n"
                   "  last N positions (causal; above 64 the prefill split), default 1.\n");
            return CLI_EXIT_OK;
        }
        if (!cli_value(cmd, argc, argv, &i, &val)) return CLI_EXIT_USAGE;
        if (!strcmp(a, "-d") || !strcmp(a, "--depth")) {
            if (!cli_int_list(cmd, a, val, 1, 1 << 21, depths, MAX_DEPTHS, &n_depths)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!cli_int(cmd, a, val, 0, 1024, &nt)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--kernels")) {
            o.which = 0;
            o.n_policies = 0;
            static const char *const names[] = {"fp16", "packed", "packed-i8"};
            for (const char *p = val; *p;) {
                size_t n = strcspn(p, ",");
                int k = 0;
                while (k < 3 && !(strlen(names[k]) == n && !strncmp(p, names[k], n))) k++;
                const char *policy = NULL; /* else a KV policy's name */
                for (int pi = 0; k == 3 && zc_kv_policy_name(pi); pi++)
                    if (strlen(zc_kv_policy_name(pi)) == n && !strncmp(p, zc_kv_policy_name(pi), n))
                        policy = zc_kv_policy_name(pi);
                if (k == 3 && !policy)
                    return cli_usage_error(cmd, "--kernels: unknown kernel '%.*s' (fp16, packed, packed-i8 or a KV "
                                           "policy)", (int)n, p);
                if (policy && o.n_policies == MAX_POLICIES)
                    return cli_usage_error(cmd, "--kernels: at most %d policies", MAX_POLICIES);
                if (policy) o.policies[o.n_policies++] = policy;
                else o.which |= 1 << k;
                p += n + (p[n] == ',');
            }
        } else if (!strcmp(a, "--csv")) {
            csv = val;
        } else if (!strcmp(a, "--salient")) {
            if (!cli_float(cmd, a, val, 0, 1, &o.salient)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--queries")) {
            if (!cli_int(cmd, a, val, 1, 1 << 16, &x)) return CLI_EXIT_USAGE;
            o.queries = (int)x;
        } else if (!strcmp(a, "--min-time")) {
            if (!cli_float(cmd, a, val, 0, 60, &o.min_time)) return CLI_EXIT_USAGE;
        } else {
            static const char *const ints[] = {"--heads", "--kv-heads", "--head-dim", "--layers", "--seg",
                                               "--hi", "--lo", "--v-hi", "--v-lo", "--key-group"};
            static const long long hi[] = {256, 256, 512, 256, 1 << 20, 8, 8, 8, 8, 1 << 20};
            int k = 0;
            while (k < 10 && strcmp(a, ints[k])) k++;
            if (k == 10) return cli_usage_error(cmd, "unknown option '%s'", a);
            if (!cli_int(cmd, a, val, 1, hi[k], &x)) return CLI_EXIT_USAGE;
            int *dst[] = {&o.d.n_heads, &o.d.n_kv_heads, &o.d.head_dim, &o.layers, &o.seg,
                          &o.hi, &o.lo, &o.v_hi, &o.v_lo, &o.key_group};
            *dst[k] = (int)x;
        }
    }
    if (!o.v_hi) o.v_hi = o.hi;
    if (!o.v_lo) o.v_lo = o.lo;
    if (o.d.n_heads % o.d.n_kv_heads) return cli_usage_error(cmd, "--heads must be a multiple of --kv-heads");
    if (o.d.head_dim % 8) return cli_usage_error(cmd, "--head-dim must be a multiple of 8");
    for (int i = 0; i < n_depths; i++)
        if (depths[i] < o.queries) return cli_usage_error(cmd, "--queries %d exceeds depth %lld", o.queries, depths[i]);
    zc_pool *pool = zc_pool_create((int)nt);
    if (!pool) return cli_lib_error();
    zc_membw bw;
    if (zc_membw_measure(pool, 0, 3, &bw)) {
        zc_pool_destroy(pool);
        return cli_lib_error();
    }
    attn_row rows[(3 + MAX_POLICIES) * MAX_DEPTHS];
    int n_rows = 0, exit_code = CLI_EXIT_OK;
    for (int i = 0; i < n_depths && exit_code == CLI_EXIT_OK; i++)
        if (bench_depth(pool, &o, (int)depths[i], bw.read_gbs, rows, &n_rows)) exit_code = cli_lib_error();
    if (exit_code == CLI_EXIT_OK) {
        char queries[32] = ""; /* decode (the default) keeps the header it always had */
        if (o.queries > 1) snprintf(queries, sizeof queries, " %d queries per call,", o.queries);
        printf("# zipcache bench attn: %d heads, %d KV heads, head_dim %d, %d layers,%s %d thread(s), %s\n",
               o.d.n_heads, o.d.n_kv_heads, o.d.head_dim, o.layers, queries, zc_pool_size(pool), zc_cpu_name());
        printf("# packed: segments of %d tokens, %.0f%% salient at K %d / V %d bits, the rest K %d / V %d bits, keys "
               "in groups of %d tokens (0: one per set); read bandwidth %.1f GB/s\n\n",
               o.seg, 100 * o.salient, o.hi, o.v_hi, o.lo, o.v_lo, o.key_group, bw.read_gbs);
        print_rows(stdout, rows, n_rows, 1);
        if (csv) {
            FILE *f = fopen(csv, "w");
            if (!f) {
                fprintf(stderr, "zipcache bench attn: %s: cannot open for writing\n", csv);
                exit_code = CLI_EXIT_DATA;
            } else {
                print_rows(f, rows, n_rows, 0);
                if (fclose(f)) exit_code = CLI_EXIT_DATA;
            }
        }
    }
    zc_pool_destroy(pool);
    return exit_code;
}
