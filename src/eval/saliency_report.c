/* zipcache eval saliency: how well cheap saliency estimates recover the
 * exact salient set on a real model (kvstudy.h). Also home of the Q/K/V
 * capture and text chunking both studies share.
 *
 * Ground truth, per (chunk, layer, KV head): the full causal attention of
 * the G query heads of the group, scored by the exact normalized score (Eq. 8:
 * column sum over all queries / (L - j), summed over the G heads) and cut at
 * ratio r. Each estimate picks the same number of tokens; its recall is the
 * fraction of the exact set it picked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/kvstudy.h"
#include "quant/saliency.h"
#include "util/error.h"
#include "util/file.h"

/* ---- Capture --------------------------------------------------------------- */

static void observe(void *user, int layer, int pos, int n, const float *q, const float *k, const float *v) {
    zc_kv_capture *c = user;
    size_t qw = (size_t)c->n_heads * c->head_dim, kw = (size_t)c->n_kv_heads * c->head_dim;
    if (layer < 0 || layer >= c->n_layers || pos < 0 || pos + n > c->L) return; /* outside the chunk: ignore */
    memcpy(c->q + ((size_t)layer * c->L + pos) * qw, q, sizeof(float) * qw * n);
    memcpy(c->k + ((size_t)layer * c->L + pos) * kw, k, sizeof(float) * kw * n);
    memcpy(c->v + ((size_t)layer * c->L + pos) * kw, v, sizeof(float) * kw * n);
}

int zc_kv_capture_run(const zc_model *m, const zc_eval_opts *o, const int32_t *tokens, int L, zc_kv_capture *cap) {
    const zc_model_info *mi = zc_model_get_info(m);
    if (!cap->q || cap->L != L || cap->n_layers != mi->n_layers) {
        zc_kv_capture_free(cap);
        *cap = (zc_kv_capture){mi->n_layers, mi->n_heads, mi->n_kv_heads, mi->head_dim, L, NULL, NULL, NULL};
        size_t rows = (size_t)mi->n_layers * (size_t)L;
        cap->q = zc_malloc(sizeof(float) * rows * (size_t)mi->n_heads * (size_t)mi->head_dim);
        cap->k = zc_malloc(sizeof(float) * rows * (size_t)mi->n_kv_heads * (size_t)mi->head_dim);
        cap->v = zc_malloc(sizeof(float) * rows * (size_t)mi->n_kv_heads * (size_t)mi->head_dim);
        if (!cap->q || !cap->k || !cap->v) {
            zc_kv_capture_free(cap);
            return ZC_ERR_NOMEM;
        }
    }
    zc_context_params cp;
    zc_context_params_default(&cp);
    cp.n_ctx = o->n_ctx > L ? o->n_ctx : L;
    cp.n_threads = o->n_threads;
    cp.kv = &o->kv;
    cp.observer = observe;
    cp.observer_user = cap;
    zc_context *ctx;
    int rc = zc_context_create(m, &cp, &ctx);
    if (rc) return rc;
    rc = zc_decode(ctx, tokens, L, ZC_LOGITS_NONE, NULL);
    zc_context_free(ctx);
    return rc;
}

void zc_kv_capture_free(zc_kv_capture *cap) {
    free(cap->q);
    free(cap->k);
    free(cap->v);
    memset(cap, 0, sizeof *cap);
}

int zc_kv_study_chunks(const zc_model *m, const zc_eval_opts *o, const zc_eval_study_opts *p, int32_t **tokens,
                       int *L, int *n_chunks) {
    const zc_model_info *mi = zc_model_get_info(m);
    int len = p->tokens > 0 ? p->tokens : o->n_ctx > 0 ? o->n_ctx : mi->n_ctx_train;
    int want = p->chunks > 0 ? (int)p->chunks : 4;
    if (len < 8) return zc_error(ZC_ERR_ARG, "kv study: %d tokens per chunk is too few", len);
    if (!p->text) return zc_error(ZC_ERR_ARG, "kv study: no text (-f FILE)");
    char *text;
    size_t n_text;
    int rc = zc_read_file(p->text, (size_t)256 << 20, &text, &n_text);
    if (rc) return rc;
    int32_t *ids;
    int n_ids;
    rc = zc_model_tokenize(m, text, n_text, 0, 0, &ids, &n_ids);
    free(text);
    if (rc) return rc;
    const int bos = mi->bos >= 0, body = len - bos; /* text tokens per chunk */
    int n = n_ids / body < want ? n_ids / body : want;
    if (n < 1) {
        free(ids);
        return zc_error(ZC_ERR_ARG, "%s: %d tokens, fewer than one chunk of %d", p->text, n_ids, len);
    }
    int32_t *out = zc_malloc(sizeof *out * (size_t)n * (size_t)len); /* [n][len] */
    if (!out) {
        free(ids);
        return ZC_ERR_NOMEM;
    }
    for (int c = 0; c < n; c++) {
        if (bos) out[(size_t)c * len] = mi->bos;
        memcpy(out + (size_t)c * len + bos, ids + (size_t)c * body, sizeof *out * (size_t)body);
    }
    free(ids);
    *tokens = out;
    *L = len;
    *n_chunks = n;
    return ZC_OK;
}

void zc_kv_study_json_begin(zc_strbuf *b, const char *study, const char *model_path, const char *text, int n_chunks,
                            int L) {
    zc_sb_printf(b, "{\"study\": \"%s\", \"model\": ", study);
    zc_sb_json_str(b, model_path, strlen(model_path));
    zc_sb_printf(b, ", \"text\": ");
    zc_sb_json_str(b, text, strlen(text));
    zc_sb_printf(b, ", \"chunks\": %d, \"tokens\": %d", n_chunks, L);
}

int zc_kv_study_json_write(zc_strbuf *b, const char *path) {
    int rc = b->err ? b->err : zc_write_file(path, b->s, b->len);
    zc_sb_free(b);
    return rc;
}

/* ---- Attention and estimates ---------------------------------------------------- */

void zc_kv_study_attn_row(const float *qi, const float *k, size_t kw, int g, int d, int last, float *row) {
    const float scale = 1.0f / sqrtf((float)d);
    float mx = -INFINITY;
    for (int j = 0; j <= last; j++) {
        const float *kj = k + (size_t)j * kw + (size_t)g * d;
        float s = 0;
        for (int e = 0; e < d; e++) s += qi[e] * kj[e];
        row[j] = s * scale;
        mx = row[j] > mx ? row[j] : mx;
    }
    double sum = 0;
    for (int j = 0; j <= last; j++) sum += (row[j] = expf(row[j] - mx));
    for (int j = 0; j <= last; j++) row[j] = (float)(row[j] / sum);
}

/* A[h][i][j] for the G query heads of KV head g, j <= i (0 beyond). A: [G][L][L]. */
static void causal_attention(const zc_kv_capture *c, int layer, int g, float *A) {
    const int L = c->L, d = c->head_dim, G = c->n_heads / c->n_kv_heads;
    const size_t qw = (size_t)c->n_heads * d, kw = (size_t)c->n_kv_heads * d;
    const float *Q = c->q + (size_t)layer * L * qw, *K = c->k + (size_t)layer * L * kw;
    for (int h = 0; h < G; h++)
        for (int i = 0; i < L; i++) {
            float *row = A + ((size_t)h * L + i) * L;
            zc_kv_study_attn_row(Q + (size_t)i * qw + (size_t)(g * G + h) * d, K, kw, g, d, i, row);
            memset(row + i + 1, 0, sizeof(float) * (size_t)(L - 1 - i));
        }
}

enum { N_RATIOS = 2 };
static const double RATIOS[N_RATIOS] = {0.4, 0.6};

typedef enum {
    EST_PROBES,   /* scores from the probe rows (all rows for "all") */
    EST_LOCALITY, /* the most recent tokens */
    EST_LAYER,    /* the exact normalized score summed over every head of the layer: one set for all heads */
} est_kind;

typedef struct {
    const char *name;
    est_kind kind;
    const char *probes; /* EST_PROBES: zc_probe_parse text */
    zc_sal_denom denom;
    int random;         /* draws differ per seed */
} strategy;

static const strategy STRATS[] = {
    {"accumulated, all queries (H2O/MiKV)", EST_PROBES, "all", ZC_DENOM_NONE, 0},
    {"exact normalized, one set per layer (all heads summed)", EST_LAYER, NULL, ZC_DENOM_CAUSAL, 0},
    {"locality (most recent tokens)", EST_LOCALITY, NULL, ZC_DENOM_NONE, 0},
    {"probes random+recent 5%+5%, / (L-j)", EST_PROBES, "random+recent:0.05:0.05", ZC_DENOM_CAUSAL, 1},
    {"probes random+recent 5%+5%, / probes", EST_PROBES, "random+recent:0.05:0.05", ZC_DENOM_PROBES, 1},
    {"probes random+recent 5%+5%, accumulated", EST_PROBES, "random+recent:0.05:0.05", ZC_DENOM_NONE, 1},
    {"probes random 10%, / (L-j)", EST_PROBES, "random:0.1", ZC_DENOM_CAUSAL, 1},
    {"probes random 10%, / probes", EST_PROBES, "random:0.1", ZC_DENOM_PROBES, 1},
    {"probes recent 10%, / (L-j)", EST_PROBES, "recent:0.1", ZC_DENOM_CAUSAL, 0},
    {"probes recent 10%, / probes", EST_PROBES, "recent:0.1", ZC_DENOM_PROBES, 0},
};
enum { N_STRATS = sizeof STRATS / sizeof STRATS[0] };

static int popcount_and(const uint8_t *a, const uint8_t *b, int nbytes) {
    int n = 0;
    for (int i = 0; i < nbytes; i++) n += __builtin_popcount((unsigned)(a[i] & b[i]));
    return n;
}

/* Recall of `score`'s top-r sets against the exact sets exact[N_RATIOS][nb], added to recall[r]. */
static void add_recall(const float *score, int L, const uint8_t *exact, int nb, uint8_t *got, uint64_t *scratch,
                       double *recall) {
    for (int r = 0; r < N_RATIOS; r++) {
        int k = zc_sal_count(RATIOS[r], L);
        zc_sal_select(score, L, k, 0, got, NULL, scratch);
        recall[r] += k ? (double)popcount_and(got, exact + (size_t)r * nb, nb) / k : 1.0;
    }
}

int zc_eval_saliency_report(const zc_model *m, const char *model_path, const zc_eval_opts *o,
                            const zc_eval_study_opts *p, FILE *out, const char *json_path) {
    int32_t *tokens;
    int L, n_chunks;
    int rc = zc_kv_study_chunks(m, o, p, &tokens, &L, &n_chunks);
    if (rc) return rc;
    const zc_model_info *mi = zc_model_get_info(m);
    const int G = mi->n_heads / mi->n_kv_heads, seeds = p->seeds > 0 ? p->seeds : 4, nb = (L + 7) / 8;
    zc_kv_capture cap = {0};
    float *A = zc_malloc(sizeof(float) * (size_t)G * L * L);  /* [G][L][L] full attention */
    float *Ap = zc_malloc(sizeof(float) * (size_t)G * L * L); /* [G][P][L] probe rows */
    float *score = zc_malloc(sizeof(float) * (size_t)L), *layer_score = zc_malloc(sizeof(float) * (size_t)L);
    int32_t *pos = zc_malloc(sizeof(int32_t) * (size_t)L);
    uint64_t *scratch = zc_malloc(sizeof(uint64_t) * (size_t)L);
    uint8_t *exact = zc_malloc((size_t)mi->n_kv_heads * N_RATIOS * nb) /* [kv_heads][ratios][nb] */, *got = zc_malloc((size_t)nb);
    double recall[N_STRATS][N_RATIOS] = {{0}};
    long n_cases[N_STRATS] = {0};
    if (!A || !Ap || !score || !layer_score || !pos || !scratch || !exact || !got) {
        rc = ZC_ERR_NOMEM;
        goto done;
    }
    for (int c = 0; c < n_chunks; c++) {
        if ((rc = zc_kv_capture_run(m, o, tokens + (size_t)c * L, L, &cap))) goto done;
        for (int layer = 0; layer < mi->n_layers; layer++) {
            /* One pass over the KV heads: each head's attention is computed once; the per-layer
             * estimate (all heads' exact scores summed) is only known after the pass, so it is
             * scored last against the exact sets kept per head. */
            memset(layer_score, 0, sizeof(float) * (size_t)L);
            for (int g = 0; g < mi->n_kv_heads; g++) {
                uint8_t *exact_g = exact + (size_t)g * N_RATIOS * nb;
                causal_attention(&cap, layer, g, A);
                if ((rc = zc_sal_scores(A, (size_t)L, (size_t)L * L, G, NULL, L, L, ZC_DENOM_CAUSAL, score))) goto done;
                for (int j = 0; j < L; j++) layer_score[j] += score[j];
                for (int r = 0; r < N_RATIOS; r++)
                    zc_sal_select(score, L, zc_sal_count(RATIOS[r], L), 0, exact_g + (size_t)r * nb, NULL, scratch);
                for (int s = 0; s < N_STRATS; s++)
                    for (int seed = 0; seed < (STRATS[s].random ? seeds : 1); seed++) {
                        const strategy *st = &STRATS[s];
                        if (st->kind == EST_LAYER) break;
                        if (st->kind == EST_LOCALITY) {
                            for (int j = 0; j < L; j++) score[j] = (float)j;
                        } else {
                            zc_probe_cfg pc;
                            zc_probe_default(&pc);
                            pc.seed = (uint64_t)seed * 1000003u + (uint64_t)c;
                            if ((rc = zc_probe_parse(st->probes, &pc))) goto done;
                            int P = zc_probe_select(&pc, L, (uint64_t)layer * mi->n_kv_heads + g, pos);
                            if (P < 0) {
                                rc = P;
                                goto done;
                            }
                            for (int h = 0; h < G; h++)
                                for (int i = 0; i < P; i++)
                                    memcpy(Ap + ((size_t)h * P + i) * L, A + ((size_t)h * L + pos[i]) * L,
                                           sizeof(float) * L);
                            if ((rc = zc_sal_scores(Ap, (size_t)L, (size_t)P * L, G, pos, P, L, st->denom, score)))
                                goto done;
                        }
                        add_recall(score, L, exact_g, nb, got, scratch, recall[s]);
                        n_cases[s]++;
                    }
            }
            for (int s = 0; s < N_STRATS; s++)
                if (STRATS[s].kind == EST_LAYER)
                    for (int g = 0; g < mi->n_kv_heads; g++) {
                        add_recall(layer_score, L, exact + (size_t)g * N_RATIOS * nb, nb, got, scratch, recall[s]);
                        n_cases[s]++;
                    }
        }
        if (o->progress) fprintf(stderr, "eval saliency: chunk %d/%d\n", c + 1, n_chunks);
    }

    fprintf(out, "# zipcache eval saliency: %s, %d chunk(s) of %d tokens from %s, %d layers x %d KV heads (G = %d)\n",
            model_path, n_chunks, L, p->text, mi->n_layers, mi->n_kv_heads, G);
    fprintf(out, "# recall of the exact normalized-score salient set (Eq. 8 over all queries), mean over chunks x "
                 "layers x KV heads%s\n\n",
            seeds > 1 ? " (x probe draws for random strategies)" : "");
    fprintf(out, "| estimate | recall r=%.1f | recall r=%.1f |\n|---|---:|---:|\n", RATIOS[0], RATIOS[1]);
    for (int s = 0; s < N_STRATS; s++)
        fprintf(out, "| %s | %.4f | %.4f |\n", STRATS[s].name, recall[s][0] / n_cases[s], recall[s][1] / n_cases[s]);
    if (json_path) {
        zc_strbuf b = {0};
        zc_kv_study_json_begin(&b, "saliency", model_path, p->text, n_chunks, L);
        zc_sb_printf(&b, ", \"ratios\": [%.2f, %.2f], \"rows\": [\n", RATIOS[0], RATIOS[1]);
        for (int s = 0; s < N_STRATS; s++) {
            zc_sb_printf(&b, "  {\"estimate\": ");
            zc_sb_json_str(&b, STRATS[s].name, strlen(STRATS[s].name));
            zc_sb_printf(&b, ", \"recall\": [%.6f, %.6f]}%s\n", recall[s][0] / n_cases[s], recall[s][1] / n_cases[s],
                         s + 1 < N_STRATS ? "," : "");
        }
        zc_sb_printf(&b, "]}\n");
        rc = zc_kv_study_json_write(&b, json_path);
    }
done:
    zc_kv_capture_free(&cap);
    free(tokens);
    free(A);
    free(Ap);
    free(score);
    free(layer_score);
    free(pos);
    free(scratch);
    free(exact);
    free(got);
    return rc;
}
