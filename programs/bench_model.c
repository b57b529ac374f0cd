/* Model benchmark: for each KV policy, prefill of p tokens (from an empty
 * cache) and decode of n tokens at each context depth d, repeated r times.
 *
 * The cache is filled to depth d with a real prefill through the model (as
 * llama-bench -d does), so a compressed policy holds exactly what it would
 * hold in use. Compressed caches cannot be truncated, so the repetitions of
 * a decode test run back to back: repetition k starts at depth d + k*n
 * (n << d, so the depth drifts by a few percent at most; the table shows d).
 * Depths are visited in the order given; a depth at least as long as the
 * cache already is (the previous depth plus its decoded tokens) extends that
 * cache with a prefill of the missing tokens instead of refilling from zero:
 * at 16 layers a 32K fill takes most of the run, and the cache then holds
 * what a chat that reached d tokens would hold.
 *
 * The policies are compared side by side: every policy has its own context
 * and all of them exist at once. For each test, repetition r of every policy
 * runs before repetition r+1 of any (prefill: reset and prefill; decode at
 * depth: every cache is filled to d first, then the decode repetitions take
 * turns), and every policy is fed the same tokens. A shared machine that
 * drifts by 10-20% over the tens of minutes a deep run takes then moves all
 * policies' numbers alike instead of spoiling their ratios.
 *
 * Decode reads every weight and the whole cache once per token, so each
 * decode row is compared with its floor: (weight bytes + KV bytes at that
 * depth) / read bandwidth measured in the same run.
 *
 * Memory: the contexts coexist, so the process's peak RSS (from the
 * contexts' creation on) covers all of them: it is reported once. Per
 * policy the rows show the anonymous RSS (RssAnon) its context added: the
 * growth measured around every call on that context (creation, warm-up,
 * fills, tests), summed. Anonymous memory
 * leaves out the mapped weights, which the first context's warm-up pages in;
 * unlike the library's own accounting (zc_context_memory) it includes the
 * policies' scratch and the slack of their growing buffers.
 */
#include "bench_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kv/kv.h"
#include "util/membw.h"
#include "util/cpu.h"
#include "util/threads.h"
#include "util/timer.h"
#include "zipcache.h"

#define MAX_LIST 16
#define MAX_POLICIES 12
#define MAX_REPS 64

typedef struct {
    char policy[16];
    char test[16];  /* "pp512" or "tg128" */
    int depth;
    int n_tokens;
    double tps_mean, tps_sd;
    double kv_bytes, bits_per_elem, ratio;
    double floor_tps;   /* decode rows only: read bandwidth / bytes read per token */
    double context_rss_mb; /* RssAnon the policy's context had added by the end of this test */
    bool skipped;       /* not measured (prefill at depth on a cache that cannot be saved): not reported */
} bench_row;

typedef struct {
    const char *model_path;
    long long prefill[MAX_LIST], depths[MAX_LIST];
    int n_prefill, n_depths;
    int n_gen, reps, n_threads, n_batch;
    char policies[MAX_POLICIES][16];
    int n_policies;
    zc_kv_config kv; /* shared --kv-* options; policy name set per run */
    const char *json_path, *csv_path, *md_path;
    int repack; /* zc_model_params.repack (--repack on|off) */
} bench_opts;

/* What the floors are computed from, measured at the start of the run. */
typedef struct {
    double read_gbs; /* streaming read bandwidth: decode's floor (bytes) */
    zc_peak peak;    /* arithmetic peaks: prefill's floor */
} bench_machine;

/* One policy's context and the anonymous memory it has added so far. */
typedef struct {
    const char *policy;
    zc_context *ctx;
    double anon_kb;  /* sum of the RssAnon growth around the calls on ctx */
    double mark_kb;  /* RssAnon when the current call began */
} bench_ctx;

/* The figure after `key` ("VmHWM:") in a /proc file, in kB; 0 if absent. */
static double proc_kb(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    double v = 0;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, klen)) {
            v = atof(line + klen);
            break;
        }
    fclose(f);
    return v;
}

/* Bracket every call on a context (outside the timed part): the RssAnon
 * growth in between is charged to that context's policy. */
static void rss_begin(bench_ctx *b) { b->mark_kb = proc_kb("/proc/self/status", "RssAnon:"); }
static void rss_end(bench_ctx *b) { b->anon_kb += proc_kb("/proc/self/status", "RssAnon:") - b->mark_kb; }

/* Start the peak-RSS count (VmHWM) afresh once the bandwidth measurement
 * has freed its buffers, so the process peak covers the weights and the
 * contexts (Linux: writing 5 to clear_refs resets it; where that fails the
 * peak includes those buffers). */
static void reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    fputs("5", f);
    fclose(f);
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Random non-special token ids: speed does not depend on the text. */
static void random_tokens(int32_t *ids, int n, int n_vocab, uint64_t *seed) {
    for (int i = 0; i < n; i++) ids[i] = 3 + (int32_t)(rng_next(seed) % (uint64_t)(n_vocab - 3));
}

static void mean_sd(const double *x, int n, double *mean, double *sd) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

static bench_row *init_row(bench_row *row, const char *policy, const char *test, int depth, int n_tokens) {
    memset(row, 0, sizeof *row);
    snprintf(row->policy, sizeof row->policy, "%s", policy);
    snprintf(row->test, sizeof row->test, "%s", test);
    row->depth = depth;
    row->n_tokens = n_tokens;
    return row;
}

/* A finished test: the repetitions' mean and spread, the cache as it is now. */
static void finish_row(bench_row *row, const bench_ctx *b, const double *tps, int reps) {
    mean_sd(tps, reps, &row->tps_mean, &row->tps_sd);
    zc_kv_usage u;
    zc_context_kv_usage(b->ctx, &u);
    row->kv_bytes = (double)u.total;
    row->bits_per_elem = zc_kv_bits_per_element(&u);
    row->ratio = zc_kv_ratio(&u);
    row->context_rss_mb = b->anon_kb / 1024.0;
}

/* Feed `n` tokens in chunks of n_batch with a progress line; returns the
 * seconds spent or a negative value on error. */
static double prefill(zc_context *ctx, const int32_t *ids, int n, int n_batch, float *logits, const char *what) {
    double t0 = zc_now();
    for (int done = 0; done < n;) {
        int k = n - done < n_batch ? n - done : n_batch;
        if (zc_decode(ctx, ids + done, k, done + k == n ? ZC_LOGITS_LAST : ZC_LOGITS_NONE, logits) != ZC_OK)
            return -1;
        done += k;
        if (n > n_batch) {
            double el = zc_now() - t0;
            fprintf(stderr, "\r  %s: %d/%d tokens, %.0f tok/s, %.0fs left   ", what, done, n, done / el,
                    el / done * (n - done));
        }
    }
    if (n > n_batch) fputc('\n', stderr);
    return zc_now() - t0;
}

/* Positions every context needs: the longest prefill, or the deepest depth
 * plus the tokens its repetitions decode. */
static int context_size(const bench_opts *o) {
    long long n = 16;
    for (int i = 0; i < o->n_prefill; i++) n = o->prefill[i] > n ? o->prefill[i] : n;
    long long most_prefill = 0;
    for (int i = 0; i < o->n_prefill; i++) most_prefill = o->prefill[i] > most_prefill ? o->prefill[i] : most_prefill;
    for (int i = 0; i < o->n_depths; i++) {
        long long need = o->depths[i] + (long long)o->reps * o->n_gen;
        if (o->depths[i] > 0 && o->depths[i] + most_prefill > need) need = o->depths[i] + most_prefill;
        n = need > n ? need : n;
    }
    return (int)n;
}

/* Tests per policy: each prefill at depth 0, decode at each depth, and each
 * prefill again at each depth > 0 (as llama-bench -d runs them). */
static int tests_per_policy(const bench_opts *o) {
    int deep = 0;
    for (int i = 0; i < o->n_depths; i++) deep += o->depths[i] > 0;
    return o->n_prefill + o->n_depths + deep * o->n_prefill;
}

/* The tokens/s no prefill of p tokens at depth d can beat: every weight
 * multiply-add of the layers (and the logits of the last token) at the int8
 * peak, or at the fp32 peak for float weights, plus attention's QK and PV
 * over the d + (p + 1) / 2 positions a prompt token sees on average, at the
 * fp32 peak (all layers counted as global). 0 without a measured peak. */
static double prefill_floor(const zc_model_info *mi, const zc_peak *pk, int p, int d) {
    const double e = mi->n_embd, q = (double)mi->n_heads * mi->head_dim, kv = (double)mi->n_kv_heads * mi->head_dim;
    const double per_layer = e * (q + 2 * kv) + q * e + 3.0 * e * mi->n_ff; /* multiply-adds per token */
    const double gemm_ops = 2.0 * (mi->n_layers * per_layer + (double)mi->n_vocab * e / p);
    const double attn_flops = 4.0 * mi->n_layers * q * (d + (p + 1) / 2.0);
    const char *t = mi->weight_type_name;
    const bool quantized = strcmp(t, "f32") && strcmp(t, "f16") && strcmp(t, "bf16");
    const double gemm_peak = (quantized ? pk->int8_gops : pk->fp32_gflops) * 1e9, attn_peak = pk->fp32_gflops * 1e9;
    if (gemm_peak <= 0 || attn_peak <= 0) return 0;
    return 1.0 / (gemm_ops / gemm_peak + attn_flops / attn_peak);
}

/* The caches coexist: warn when the uncompressed size of all of them at the
 * deepest position (an upper bound: compressed policies hold less) would
 * take more than half of the memory available now. */
static void warn_kv_memory(const bench_opts *o, const zc_model_info *mi) {
    double per_token = 2.0 * mi->n_layers * mi->n_kv_heads * mi->head_dim, bytes = 0;
    for (int p = 0; p < o->n_policies; p++)
        bytes += per_token * (strcmp(o->policies[p], "fp32") ? 2 : 4) * context_size(o);
    double avail = proc_kb("/proc/meminfo", "MemAvailable:") * 1024.0;
    if (avail > 0 && bytes > avail / 2)
        fprintf(stderr,
                "zipcache bench: warning: the %d policies' KV caches are held at once; uncompressed they would take "
                "%.1f GiB at %d tokens (compressed policies take less), and %.1f GiB of memory is available\n",
                o->n_policies, bytes / 1073741824.0, context_size(o), avail / 1073741824.0);
}

/* One context per policy, each warmed up (untimed, as llama-bench): the
 * first forward pass pages in the mapped weights and grows the scratch,
 * which would otherwise be charged to whichever policy and test run first.
 * Every policy gets the same warm-up tokens. */
static int create_contexts(const bench_opts *o, const zc_model *model, bench_ctx *bc, int32_t *ids, float *logits,
                           uint64_t *seed) {
    const zc_model_info *mi = zc_model_get_info(model);
    random_tokens(ids, 16, mi->n_vocab, seed);
    for (int p = 0; p < o->n_policies; p++) {
        zc_kv_config kv = o->kv;
        snprintf(kv.policy, sizeof kv.policy, "%s", o->policies[p]);
        zc_context_params cp;
        zc_context_params_default(&cp);
        cp.n_ctx = context_size(o);
        cp.n_threads = o->n_threads;
        cp.n_batch = o->n_batch;
        cp.kv = &kv;
        bench_ctx *b = &bc[p];
        b->policy = o->policies[p];
        rss_begin(b);
        if (zc_context_create(model, &cp, &b->ctx) != ZC_OK) return -1;
        if (zc_decode(b->ctx, ids, 16, ZC_LOGITS_LAST, logits) != ZC_OK || zc_context_reset(b->ctx) != ZC_OK)
            return -1;
        rss_end(b);
    }
    return 0;
}

/* Prefill tests: for each repetition, every policy resets and prefills the
 * same p tokens. Row of policy p, test i: rows[p * n_tests + i]. */
static int run_prefill(const bench_opts *o, const zc_model_info *mi, const bench_machine *mc, bench_ctx *bc,
                       bench_row *rows, int n_tests, int32_t *ids, float *logits, uint64_t *seed) {
    double tps[MAX_POLICIES][MAX_REPS];
    char what[64], test[16];
    for (int i = 0; i < o->n_prefill; i++) {
        int p = (int)o->prefill[i];
        for (int r = 0; r < o->reps; r++) {
            random_tokens(ids, p, mi->n_vocab, seed);
            for (int k = 0; k < o->n_policies; k++) {
                bench_ctx *b = &bc[k];
                snprintf(what, sizeof what, "%s pp%d rep %d", b->policy, p, r + 1);
                rss_begin(b);
                double s = zc_context_reset(b->ctx) == ZC_OK ? prefill(b->ctx, ids, p, o->n_batch, logits, what) : -1;
                if (s < 0) return -1;
                rss_end(b);
                tps[k][r] = p / s;
            }
        }
        snprintf(test, sizeof test, "pp%d", p);
        for (int k = 0; k < o->n_policies; k++) {
            bench_row *row = init_row(&rows[k * n_tests + i], bc[k].policy, test, 0, p);
            finish_row(row, &bc[k], tps[k], o->reps);
            row->floor_tps = prefill_floor(mi, &mc->peak, p, 0);
            fprintf(stderr, "%s %s: %.2f tok/s (floor %.2f)\n", row->policy, row->test, row->tps_mean, row->floor_tps);
        }
    }
    return 0;
}

/* Prefill at depth d (the caches hold d tokens): each prefill test, each
 * repetition, restores every policy's cache to its state at d (zc_seq_load,
 * untimed) and times p more tokens; the caches are left at d again. Rows:
 * rows[k * n_tests + j] for policy k, prefill test j. */
static int run_prefill_at(const bench_opts *o, const zc_model_info *mi, const bench_machine *mc, bench_ctx *bc,
                          bench_row *rows, int n_tests, int d, int32_t *ids, float *logits, uint64_t *seed) {
    uint8_t *saved[MAX_POLICIES] = {NULL};
    size_t saved_len[MAX_POLICIES];
    int32_t *held = calloc((size_t)d, sizeof *held); /* the session's token list: speed does not depend on it */
    double tps[MAX_POLICIES][MAX_REPS];
    char what[64], test[16];
    int rc = held ? 0 : -1;
    for (int k = 0; k < o->n_policies && !rc; k++) {
        int src = zc_seq_save(bc[k].ctx, 0, held, &saved[k], &saved_len[k]);
        if (src == ZC_ERR_UNSUPPORTED) { /* a cache that cannot be saved: no prefill rows at depth */
            fprintf(stderr, "zipcache bench: prefill at depth %d not measured: %s\n", d, zc_last_error());
            for (int i = 0; i < o->n_prefill; i++)
                for (int j = 0; j < o->n_policies; j++)
                    init_row(&rows[j * n_tests + i], bc[j].policy, "pp", d, (int)o->prefill[i])->skipped = true;
            for (int j = 0; j < o->n_policies; j++) free(saved[j]);
            free(held);
            return 0;
        }
        rc = src == ZC_OK ? 0 : -1;
    }
    for (int i = 0; i < o->n_prefill && !rc; i++) {
        int p = (int)o->prefill[i];
        for (int r = 0; r < o->reps && !rc; r++) {
            random_tokens(ids, p, mi->n_vocab, seed);
            for (int k = 0; k < o->n_policies && !rc; k++) {
                bench_ctx *b = &bc[k];
                int32_t *toks = NULL;
                int n_toks;
                snprintf(what, sizeof what, "%s pp%d at depth %d rep %d", b->policy, p, d, r + 1);
                rss_begin(b);
                double sec = zc_seq_load(b->ctx, 0, saved[k], saved_len[k], &toks, &n_toks) == ZC_OK
                                 ? prefill(b->ctx, ids, p, o->n_batch, logits, what)
                                 : -1;
                rss_end(b);
                free(toks);
                if (sec < 0) rc = -1;
                else tps[k][r] = p / sec;
            }
        }
        snprintf(test, sizeof test, "pp%d", p);
        for (int k = 0; k < o->n_policies && !rc; k++) {
            bench_row *row = init_row(&rows[k * n_tests + i], bc[k].policy, test, d, p);
            finish_row(row, &bc[k], tps[k], o->reps);
            row->floor_tps = prefill_floor(mi, &mc->peak, p, d);
            fprintf(stderr, "%s %s @ d%d: %.2f tok/s (floor %.2f)\n", row->policy, row->test, d, row->tps_mean,
                    row->floor_tps);
        }
    }
    for (int k = 0; k < o->n_policies; k++) {
        int32_t *toks = NULL;
        int n_toks;
        if (!rc && saved[k] && zc_seq_load(bc[k].ctx, 0, saved[k], saved_len[k], &toks, &n_toks) != ZC_OK) rc = -1;
        free(toks);
        free(saved[k]);
    }
    free(held);
    return rc;
}

/* Decode at each depth: every policy's cache is filled (or extended) to the
 * depth with the same tokens, then the repetitions take turns: repetition r
 * decodes the same n_gen tokens in every policy before repetition r+1. */
static int run_depths(const bench_opts *o, const zc_model_info *mi, const bench_machine *mc, bench_ctx *bc,
                      bench_row *rows, int n_tests, int32_t *ids, float *logits, uint64_t *seed) {
    double tps[MAX_POLICIES][MAX_REPS];
    double kv_at_depth[MAX_POLICIES];
    char what[64], test[16];
    int deep = 0; /* depths > 0 done */
    snprintf(test, sizeof test, "tg%d", o->n_gen);
    for (int i = 0; i < o->n_depths; i++) {
        int d = (int)o->depths[i], most = 0;
        for (int k = 0; k < o->n_policies; k++) {
            int have = zc_context_pos(bc[k].ctx);
            if (i == 0 || d < have) {
                rss_begin(&bc[k]);
                if (zc_context_reset(bc[k].ctx) != ZC_OK) return -1;
                rss_end(&bc[k]);
                have = 0;
            }
            most = d - have > most ? d - have : most;
        }
        /* The caches all hold the same number of tokens, so each takes the
         * same missing tokens from the front of one stream. */
        random_tokens(ids, most, mi->n_vocab, seed);
        for (int k = 0; k < o->n_policies; k++) {
            bench_ctx *b = &bc[k];
            int have = zc_context_pos(b->ctx);
            if (d > have) {
                snprintf(what, sizeof what, "%s fill to depth %d", b->policy, d);
                rss_begin(b);
                if (prefill(b->ctx, ids, d - have, o->n_batch, logits, what) < 0) return -1;
                rss_end(b);
            }
            zc_kv_usage u;
            zc_context_kv_usage(b->ctx, &u);
            kv_at_depth[k] = (double)u.total;
        }
        if (d > 0 && o->n_prefill > 0 &&
            run_prefill_at(o, mi, mc, bc, rows + o->n_prefill + o->n_depths + deep++ * o->n_prefill, n_tests, d, ids,
                           logits, seed) < 0)
            return -1;
        for (int r = 0; r < o->reps; r++) {
            random_tokens(ids, o->n_gen, mi->n_vocab, seed);
            for (int k = 0; k < o->n_policies; k++) {
                bench_ctx *b = &bc[k];
                rss_begin(b);
                double t0 = zc_now();
                for (int j = 0; j < o->n_gen; j++)
                    if (zc_decode(b->ctx, &ids[j], 1, ZC_LOGITS_LAST, logits) != ZC_OK) return -1;
                tps[k][r] = o->n_gen / (zc_now() - t0);
                rss_end(b);
            }
        }
        for (int k = 0; k < o->n_policies; k++) {
            bench_row *row = init_row(&rows[k * n_tests + o->n_prefill + i], bc[k].policy, test, d, o->n_gen);
            finish_row(row, &bc[k], tps[k], o->reps);
            /* bytes read per token: every weight once, and the cache as it was at the depth */
            row->floor_tps = mc->read_gbs * 1e9 / ((double)mi->weight_bytes + kv_at_depth[k]);
            fprintf(stderr, "%s %s @ d%d: %.2f tok/s (floor %.2f)\n", row->policy, row->test, d, row->tps_mean,
                    row->floor_tps);
        }
    }
    return 0;
}

/* All the tests, rows in policy order as before: rows[p * n_tests + test],
 * the prefill tests first, then the depths. */
static int run_all(const bench_opts *o, const zc_model *model, const bench_machine *mc, bench_row *rows, int32_t *ids,
                   float *logits) {
    const zc_model_info *mi = zc_model_get_info(model);
    bench_ctx bc[MAX_POLICIES];
    memset(bc, 0, sizeof bc);
    uint64_t seed = 1234;
    int n_tests = tests_per_policy(o);
    warn_kv_memory(o, mi);
    reset_peak_rss();
    int rc = create_contexts(o, model, bc, ids, logits, &seed);
    if (!rc) rc = run_prefill(o, mi, mc, bc, rows, n_tests, ids, logits, &seed);
    if (!rc) rc = run_depths(o, mi, mc, bc, rows, n_tests, ids, logits, &seed);
    if (rc) {
        fprintf(stderr, "\n");
        rc = cli_lib_error();
    }
    for (int k = 0; k < o->n_policies; k++) zc_context_free(bc[k].ctx);
    return rc;
}

/* What a row's floor counts: decode reads every weight and the cache once
 * per token; prefill is arithmetic (prefill_floor). */
static const char *limit_of(const bench_row *r) { return r->test[0] == 't' ? "bytes" : "arithmetic"; }

static void print_markdown(FILE *f, const bench_row *rows, int n) {
    fprintf(f, "| policy | test | depth | tokens/s | KV MiB | bits/elem | ratio vs fp16 | floor tok/s | of floor | limited by | "
               "context RSS MiB |\n");
    fprintf(f, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|\n");
    for (int i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        char floor_s[32] = "", pct[32] = "";
        if (r->skipped) continue;
        if (r->floor_tps > 0) {
            snprintf(floor_s, sizeof floor_s, "%.2f", r->floor_tps);
            snprintf(pct, sizeof pct, "%.0f%%", 100 * r->tps_mean / r->floor_tps);
        }
        fprintf(f, "| %s | %s | %d | %.2f ± %.2f | %.2f | %.2f | %.2fx | %s | %s | %s | %.0f |\n", r->policy, r->test,
                r->depth, r->tps_mean, r->tps_sd, r->kv_bytes / 1048576.0, r->bits_per_elem, r->ratio, floor_s, pct,
                limit_of(r), r->context_rss_mb);
    }
}

/* Decode speed of each policy relative to fp16 at the same depth. */
static void print_ratios(FILE *f, const bench_row *rows, int n) {
    for (int i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        if (r->skipped || r->test[0] != 't' || !strcmp(r->policy, "fp16")) continue;
        for (int j = 0; j < n; j++)
            if (!strcmp(rows[j].policy, "fp16") && !strcmp(rows[j].test, r->test) && rows[j].depth == r->depth)
                fprintf(f, "decode at depth %d: %s / fp16 = %.2fx\n", r->depth, r->policy,
                        r->tps_mean / rows[j].tps_mean);
    }
    for (int i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        if (r->skipped || r->test[0] != 'p' || !strcmp(r->policy, "fp16")) continue;
        for (int j = 0; j < n; j++)
            if (!rows[j].skipped && !strcmp(rows[j].policy, "fp16") && !strcmp(rows[j].test, r->test) &&
                rows[j].depth == r->depth)
                fprintf(f, "prefill %s at depth %d: %s / fp16 = %.2fx\n", r->test, r->depth, r->policy,
                        r->tps_mean / rows[j].tps_mean);
    }
}

/* The table, how it was measured, and the ratios (stdout and --md alike). */
static void print_report(FILE *f, const bench_row *rows, int n, double peak_rss_mb) {
    print_markdown(f, rows, n);
    fprintf(f,
            "\nfloor: decode, (weight bytes + KV bytes at the depth) / read bandwidth; prefill, the layers' weight "
            "multiply-adds at the int8 peak (fp32 for float weights) plus attention's at the fp32 peak.");
    fprintf(f,
            "\nRepetitions interleaved across policies: all policies' contexts held at once; for each test, every "
            "cache filled to the depth, then repetition r of every policy before repetition r+1, the same tokens "
            "fed to each.\n"
            "context RSS MiB: anonymous memory (RssAnon) the policy's context had added by the end of the test; "
            "process peak RSS %.0f MiB while the tests ran (mapped weights and all contexts).\n\n",
            peak_rss_mb);
    print_ratios(f, rows, n);
}

static int write_outputs(const bench_opts *o, const zc_model_info *mi, const zc_membw *bw, const bench_machine *mc,
                         const bench_row *rows, int n, double peak_rss_mb) {
    if (o->csv_path) {
        FILE *f = fopen(o->csv_path, "w");
        if (!f) return cli_usage_error("bench", "cannot write %s", o->csv_path);
        fprintf(f, "policy,test,depth,tokens_per_s,sd,kv_bytes,bits_per_elem,ratio,floor_tokens_per_s,context_rss_mb\n");
        for (int i = 0; i < n; i++)
            if (!rows[i].skipped)
                fprintf(f, "%s,%s,%d,%.4f,%.4f,%.0f,%.4f,%.4f,%.4f,%.1f\n", rows[i].policy, rows[i].test, rows[i].depth,
                    rows[i].tps_mean, rows[i].tps_sd, rows[i].kv_bytes, rows[i].bits_per_elem, rows[i].ratio,
                    rows[i].floor_tps, rows[i].context_rss_mb);
        fclose(f);
    }
    if (o->json_path) {
        FILE *f = fopen(o->json_path, "w");
        if (!f) return cli_usage_error("bench", "cannot write %s", o->json_path);
        fprintf(f, "{\"model\": \"%s\", \"weight_type\": \"%s\", \"n_layers\": %d, \"weight_bytes\": %zu,\n",
                o->model_path, mi->weight_type_name, mi->n_layers, mi->weight_bytes);
        fprintf(f,
                " \"cpu\": \"%s\", \"threads\": %d, \"read_gbs\": %.2f, \"copy_gbs\": %.2f, \"peak_int8_gops\": %.1f, "
                "\"peak_fp32_gflops\": %.1f,\n",
                zc_cpu_name(), bw->n_threads, bw->read_gbs, bw->copy_gbs, mc->peak.int8_gops, mc->peak.fp32_gflops);
        fprintf(f, " \"interleaved\": true, \"peak_rss_mb\": %.1f,\n \"rows\": [\n", peak_rss_mb);
        int left = 0; /* rows still to write, for the commas */
        for (int i = 0; i < n; i++) left += !rows[i].skipped;
        for (int i = 0; i < n; i++)
            if (!rows[i].skipped)
                fprintf(f,
                    "  {\"policy\": \"%s\", \"test\": \"%s\", \"depth\": %d, \"tokens_per_s\": %.4f, \"sd\": %.4f, "
                    "\"kv_bytes\": %.0f, \"bits_per_elem\": %.4f, \"ratio\": %.4f, \"floor_tokens_per_s\": %.4f, "
                    "\"limited_by\": \"%s\", \"context_rss_mb\": %.1f}%s\n",
                    rows[i].policy, rows[i].test, rows[i].depth, rows[i].tps_mean, rows[i].tps_sd, rows[i].kv_bytes,
                    rows[i].bits_per_elem, rows[i].ratio, rows[i].floor_tps, limit_of(&rows[i]), rows[i].context_rss_mb,
                    --left > 0 ? "," : "");
        fprintf(f, " ]}\n");
        fclose(f);
    }
    if (o->md_path) {
        FILE *f = fopen(o->md_path, "a");
        if (!f) return cli_usage_error("bench", "cannot write %s", o->md_path);
        fprintf(f,
                "\nModel `%s` (%s, %d layers), %d threads, %s; read bandwidth %.1f GB/s, copy %.1f GB/s; peak int8 "
                "%.0f GOP/s, fp32 %.0f GFLOP/s.\n\n",
                o->model_path, mi->weight_type_name, mi->n_layers, bw->n_threads, zc_cpu_name(), bw->read_gbs,
                bw->copy_gbs, mc->peak.int8_gops, mc->peak.fp32_gflops);
        print_report(f, rows, n, peak_rss_mb);
        fclose(f);
    }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: zipcache bench -m MODEL [-p 512,4096] [-n 128] [-d 0,4096,16384] [--kv fp16,zipcache,q4_0]\n"
            "                      [-r REPS] [-t N] [-b BATCH] [--repack on|off] [--json F] [--csv F] [--md F]\n"
            "                      [--kv-* options]\n"
            "       --repack off: weights used in place, not repacked for the AVX-512 GEMM (to measure what it buys)\n"
            "       zipcache bench quant [--tokens T] [--channels C] [-t N] [--json FILE]   (KV quantizers)\n"
            "       zipcache bench kernels [-t N]   (weight-matrix kernels)\n");
}

static bool parse_policies(bench_opts *o, const char *val) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", val);
    o->n_policies = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_policies == MAX_POLICIES || strlen(t) >= sizeof o->policies[0]) {
            cli_usage_error("bench", "--kv: too many policies or name too long");
            return false;
        }
        /* Refuse an unknown name now, not after loading the model. */
        zc_kv_config probe;
        zc_kv_config_default(&probe);
        if (zc_kv_config_parse_arg(&probe, "--kv", t) < 0) {
            cli_usage_error("bench", "%s", zc_last_error());
            return false;
        }
        snprintf(o->policies[o->n_policies++], sizeof o->policies[0], "%s", t);
    }
    if (o->n_policies == 0) cli_usage_error("bench", "--kv: empty list");
    return o->n_policies > 0;
}

static int parse_args(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->prefill[0] = 512;
    o->n_prefill = 1;
    o->depths[0] = 0;
    o->n_depths = 1;
    o->n_gen = 128;
    o->reps = 3;
    o->n_batch = 512;
    o->repack = 1;
    zc_kv_config_default(&o->kv);
    parse_policies(o, "fp16,zipcache");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long long x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return -1;
        }
        static const char *const options[] = {"-m", "-p", "-d", "-n", "-r", "-t", "-b", "--json", "--csv", "--md",
                                              "--repack", NULL};
        if (!cli_option_value("bench", argc, argv, &i, options, &o->kv, &v)) return CLI_EXIT_USAGE;
        if (!strcmp(a, "-m")) o->model_path = v;
        else if (!strcmp(a, "-p")) {
            if (!cli_int_list("bench", a, v, 1, 1 << 20, o->prefill, MAX_LIST, &o->n_prefill)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-d")) {
            if (!cli_int_list("bench", a, v, 0, 1 << 21, o->depths, MAX_LIST, &o->n_depths)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-n")) {
            if (!cli_int("bench", a, v, 1, 1 << 16, &x)) return CLI_EXIT_USAGE;
            o->n_gen = (int)x;
        } else if (!strcmp(a, "-r")) {
            if (!cli_int("bench", a, v, 1, MAX_REPS, &x)) return CLI_EXIT_USAGE;
            o->reps = (int)x;
        } else if (!strcmp(a, "-t")) {
            if (!cli_int("bench", a, v, 0, 1024, &x)) return CLI_EXIT_USAGE;
            o->n_threads = (int)x;
        } else if (!strcmp(a, "-b")) {
            if (!cli_int("bench", a, v, 1, 1 << 16, &x)) return CLI_EXIT_USAGE;
            o->n_batch = (int)x;
        } else if (!strcmp(a, "--kv")) {
            if (!parse_policies(o, v)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--repack")) {
            if (strcmp(v, "on") && strcmp(v, "off")) return cli_usage_error("bench", "--repack: on or off, not '%s'", v);
            o->repack = !strcmp(v, "on");
        } else if (!strcmp(a, "--json")) o->json_path = v;
        else if (!strcmp(a, "--csv")) o->csv_path = v;
        else if (!strcmp(a, "--md")) o->md_path = v;
        else {
            int rc = zc_kv_config_parse_arg(&o->kv, a, v);
            if (rc < 0) return cli_usage_error("bench", "%s", zc_last_error());
            if (rc == 0) return cli_usage_error("bench", "unknown option %s (see zipcache bench --help)", a);
        }
    }
    if (!o->model_path) o->model_path = cli_default_model();
    if (!o->model_path)
        return cli_usage_error("bench", "no model: pass -m FILE.gguf or -m HF_DIR (e.g. from zipcache synth)");
    return 0;
}

int bench_model_main(int argc, char **argv) {
    bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    zc_model *model;
    double t0 = zc_now();
    zc_model_params mp;
    zc_model_params_default(&mp);
    mp.repack = o.repack;
    if (zc_model_load_params(o.model_path, &mp, &model) != ZC_OK) return cli_lib_error();
    const zc_model_info *mi = zc_model_get_info(model);
    fprintf(stderr, "loaded %s in %.2fs: %s, %d layers, %s weights %.1f MiB (%.1f MiB repacked)\n", o.model_path,
            zc_now() - t0, mi->arch, mi->n_layers, mi->weight_type_name, mi->weight_bytes / 1048576.0,
            mi->repacked_bytes / 1048576.0);
    zc_pool *pool = zc_pool_create(o.n_threads);
    zc_membw bw;
    bench_machine mc = {0};
    int brc = pool ? zc_membw_measure(pool, 0, 0, &bw) : ZC_ERR_NOMEM;
    if (brc == ZC_OK) zc_peak_measure(pool, &mc.peak);
    mc.read_gbs = bw.read_gbs;
    zc_pool_destroy(pool); /* the contexts have their own pools */
    if (brc != ZC_OK) {
        zc_model_free(model);
        return cli_lib_error();
    }
    fprintf(stderr, "memory bandwidth (%d threads): read %.1f GB/s, copy %.1f GB/s; peak int8 %.0f GOP/s, fp32 %.0f GFLOP/s\n",
            bw.n_threads, bw.read_gbs, bw.copy_gbs, mc.peak.int8_gops, mc.peak.fp32_gflops);
    int max_tokens = o.n_gen > 16 ? o.n_gen : 16; /* 16: the warm-up */
    for (int i = 0; i < o.n_prefill; i++) max_tokens = (int)fmax(max_tokens, o.prefill[i]);
    for (int i = 0; i < o.n_depths; i++) max_tokens = (int)fmax(max_tokens, o.depths[i]);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)max_tokens);
    float *logits = malloc(sizeof(float) * (size_t)mi->n_vocab);
    int n_rows = o.n_policies * tests_per_policy(&o);
    bench_row *rows = calloc((size_t)n_rows, sizeof *rows);
    rc = (!ids || !logits || !rows) ? cli_usage_error("bench", "out of memory") : 0;
    if (!rc) rc = run_all(&o, model, &mc, rows, ids, logits);
    if (!rc) {
        double peak_rss_mb = proc_kb("/proc/self/status", "VmHWM:") / 1024.0;
        printf("\nModel %s (%s, %d layers), %d threads, %s; read bandwidth %.1f GB/s; peak int8 %.0f GOP/s, fp32 %.0f "
               "GFLOP/s\n\n",
               o.model_path, mi->weight_type_name, mi->n_layers, bw.n_threads, zc_cpu_name(), bw.read_gbs,
               mc.peak.int8_gops, mc.peak.fp32_gflops);
        print_report(stdout, rows, n_rows, peak_rss_mb);
        rc = write_outputs(&o, mi, &bw, &mc, rows, n_rows, peak_rss_mb);
    }
    free(ids);
    free(logits);
    free(rows);
    zc_model_free(model);
    return rc;
}
