/* zipcache eval recon: reconstruction error of every KV quantizer on a real
 * model's keys (after RoPE) and values (kvstudy.h).
 *
 * Per (chunk, layer) the block is the chunk's L tokens. Scope "layer" uses
 * rows of all KV heads together (C = n_kv_heads * head_dim, as the ZipCache
 * reference code does); scope "head" quantizes each KV head's columns as its
 * own block (C = head_dim), which is what per-head saliency needs. Error is
 * the relative MSE sum (x - x^)^2 / sum x^2 over all chunks and layers;
 * bits/elem is everything stored (codes and parameters) per element. A second
 * table puts K and V formats together and measures the error of the
 * attention output itself. */
#include <stdlib.h>
#include <string.h>

#include "eval/kvstudy.h"
#include "quant/kvquant.h"
#include "util/error.h"

typedef struct {
    const char *label;
    zc_kvq q;
} config;

/* The formats at 2, 3, 4 bits, then the ggml baselines. */
static const config BASE[] = {
    {"channel", {ZC_KVQ_CHANNEL, 0, 0, ZC_CST_SQRT_MAX}},   {"cst sqrt(max|x|)", {ZC_KVQ_CST, 0, 0, ZC_CST_SQRT_MAX}},
    {"cst max|x|", {ZC_KVQ_CST, 0, 0, ZC_CST_MAX}},          {"token", {ZC_KVQ_TOKEN, 0, 0, 0}},
    {"group-ch G=32 (KIVI V)", {ZC_KVQ_GROUP_CH, 0, 32, 0}}, {"group-tok G=32 (KIVI K)", {ZC_KVQ_GROUP_TOK, 0, 32, 0}},
};
enum { N_BASE = sizeof BASE / sizeof BASE[0], N_WIDTHS = 3, N_CONFIGS = N_BASE * N_WIDTHS + 2, N_SCOPES = 2 };
static const int WIDTHS[N_WIDTHS] = {2, 3, 4};

static config config_at(int i) {
    if (i < N_BASE * N_WIDTHS) {
        config c = BASE[i / N_WIDTHS];
        c.q.bits = WIDTHS[i % N_WIDTHS];
        return c;
    }
    return i == N_BASE * N_WIDTHS ? (config){"q8_0", {ZC_KVQ_Q8_0, 8, 0, 0}} : (config){"q4_0", {ZC_KVQ_Q4_0, 4, 0, 0}};
}

typedef struct {
    double err[2], ref[2]; /* [K, V]: sum of squared errors, sum of squares */
    double bits, elems;    /* stored bits and elements (K and V together) */
    int valid;             /* the format applies to this shape */
} cell;

/* Quantize x ([T][ldx], C columns) and reconstruct it into y [T][C];
 * *bits receives the stored bits. The blob grows as needed. */
static int roundtrip(const zc_kvq *q, const float *x, size_t ldx, int T, int C, uint8_t **blob, size_t *cap, float *y,
                     double *bits) {
    zc_kvq_layout l;
    int rc = zc_kvq_layout_of(q, T, C, &l);
    if (rc) return rc;
    if (l.total_bytes > *cap) {
        uint8_t *nb = zc_realloc(*blob, l.total_bytes);
        if (!nb) return ZC_ERR_NOMEM;
        *blob = nb;
        *cap = l.total_bytes;
    }
    if ((rc = zc_kvq_quantize(q, x, ldx, T, C, *blob)) || (rc = zc_kvq_dequantize(q, *blob, T, C, y, (size_t)C)))
        return rc;
    *bits = 8.0 * (double)l.total_bytes;
    return ZC_OK;
}

/* Quantize x ([T][ldx], C columns) and add its error and stored bits to *c. */
static int measure(const zc_kvq *q, const float *x, size_t ldx, int T, int C, int tensor, uint8_t **blob,
                   size_t *cap, float *y, cell *c) {
    double bits;
    int rc = roundtrip(q, x, ldx, T, C, blob, cap, y, &bits);
    if (rc) return rc;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i++) {
            double a = x[(size_t)t * ldx + i], d = a - y[(size_t)t * C + i];
            c->err[tensor] += d * d;
            c->ref[tensor] += a * a;
        }
    c->bits += bits;
    c->elems += (double)T * C;
    return ZC_OK;
}

/* ---- Attention output error ------------------------------------------------
 * What reaches the model is the attention output, not K and V: for a K format
 * and a V format together, the relative error sum ||o - o^||^2 / sum ||o||^2
 * of every query head's causal attention output at every position, with the
 * real queries, keys and values of the layer (rows of all KV heads). */
typedef struct {
    const char *label;
    zc_kvq k, v;
} pair;

static const pair PAIRS[] = {
    {"K channel + V cst (ZipCache)", {ZC_KVQ_CHANNEL, 0, 0, 0}, {ZC_KVQ_CST, 0, 0, ZC_CST_SQRT_MAX}},
    {"K channel + V token", {ZC_KVQ_CHANNEL, 0, 0, 0}, {ZC_KVQ_TOKEN, 0, 0, 0}},
    {"K token + V token", {ZC_KVQ_TOKEN, 0, 0, 0}, {ZC_KVQ_TOKEN, 0, 0, 0}},
    {"K group-tok + V group-ch, G=32 (KIVI)", {ZC_KVQ_GROUP_TOK, 0, 32, 0}, {ZC_KVQ_GROUP_CH, 0, 32, 0}},
};
enum { N_PAIRS = sizeof PAIRS / sizeof PAIRS[0], N_PAIR_ROWS = N_PAIRS * N_WIDTHS };

static pair pair_at(int i) {
    pair p = PAIRS[i / N_WIDTHS];
    p.k.bits = p.v.bits = WIDTHS[i % N_WIDTHS];
    return p;
}

/* out [L][n_heads*hd]: causal attention of layer `layer`'s queries over k, v
 * ([L][kw] each). row: [L] scratch. */
static void attention(const zc_kv_capture *c, int layer, const float *k, const float *v, float *out, float *row) {
    const int L = c->L, d = c->head_dim, nh = c->n_heads, G = nh / c->n_kv_heads;
    const size_t qw = (size_t)nh * d, kw = (size_t)c->n_kv_heads * d;
    const float *Q = c->q + (size_t)layer * L * qw; /* [L][qw] */
    for (int i = 0; i < L; i++)
        for (int h = 0; h < nh; h++) {
            const int g = h / G;
            float *o = out + (size_t)i * qw + (size_t)h * d;
            zc_kv_study_attn_row(Q + (size_t)i * qw + (size_t)h * d, k, kw, g, d, i, row);
            memset(o, 0, sizeof(float) * (size_t)d);
            for (int j = 0; j <= i; j++)
                for (int e = 0; e < d; e++) o[e] += row[j] * v[(size_t)j * kw + (size_t)g * d + e];
        }
}

int zc_eval_recon_report(const zc_model *m, const char *model_path, const zc_eval_opts *o,
                         const zc_eval_study_opts *p, FILE *out, const char *json_path) {
    int32_t *tokens;
    int L, n_chunks;
    int rc = zc_kv_study_chunks(m, o, p, &tokens, &L, &n_chunks);
    if (rc) return rc;
    const zc_model_info *mi = zc_model_get_info(m);
    const int hd = mi->head_dim, kw = mi->n_kv_heads * hd;
    zc_kv_capture cap = {0};
    cell cells[N_CONFIGS][N_SCOPES];
    memset(cells, 0, sizeof cells);
    for (int i = 0; i < N_CONFIGS; i++)
        for (int s = 0; s < N_SCOPES; s++) {
            zc_kvq_layout l;
            zc_kvq q = config_at(i).q;
            cells[i][s].valid = zc_kvq_layout_of(&q, L, s == 0 ? kw : hd, &l) == ZC_OK;
        }
    zc_clear_error(); /* the validity probes above may have recorded a reason */
    uint8_t *blob = NULL;
    size_t blob_cap = 0;
    zc_strbuf b = {0}; /* JSON document */
    const size_t qw = (size_t)mi->n_heads * hd;
    float *y = zc_malloc(sizeof(float) * (size_t)L * kw);   /* [L][kw] reconstruction */
    float *kh = zc_malloc(sizeof(float) * (size_t)L * kw);  /* [L][kw] K^ of a pair */
    float *vh = zc_malloc(sizeof(float) * (size_t)L * kw);  /* [L][kw] V^ of a pair */
    float *out_x = zc_malloc(sizeof(float) * (size_t)L * qw); /* [L][qw] exact attention output */
    float *out_q = zc_malloc(sizeof(float) * (size_t)L * qw); /* [L][qw] output with K^, V^ */
    float *row = zc_malloc(sizeof(float) * (size_t)L);      /* [L] softmax row */
    double att_err[N_PAIR_ROWS] = {0}, att_ref[N_PAIR_ROWS] = {0}, att_bits[N_PAIR_ROWS] = {0}, att_elems = 0;
    if (!y || !kh || !vh || !out_x || !out_q || !row) {
        rc = ZC_ERR_NOMEM;
        goto done;
    }
    for (int c = 0; c < n_chunks; c++) {
        if ((rc = zc_kv_capture_run(m, o, tokens + (size_t)c * L, L, &cap))) goto done;
        for (int layer = 0; layer < mi->n_layers; layer++)
            for (int tensor = 0; tensor < 2; tensor++) {
                const float *x = (tensor ? cap.v : cap.k) + (size_t)layer * L * kw; /* [L][kw] */
                for (int i = 0; i < N_CONFIGS; i++) {
                    zc_kvq q = config_at(i).q;
                    if (cells[i][0].valid && (rc = measure(&q, x, (size_t)kw, L, kw, tensor, &blob, &blob_cap, y,
                                                           &cells[i][0])))
                        goto done;
                    for (int h = 0; cells[i][1].valid && h < mi->n_kv_heads; h++)
                        if ((rc = measure(&q, x + (size_t)h * hd, (size_t)kw, L, hd, tensor, &blob, &blob_cap, y,
                                          &cells[i][1])))
                            goto done;
                }
            }
        for (int layer = 0; layer < mi->n_layers; layer++) {
            const float *K = cap.k + (size_t)layer * L * kw, *V = cap.v + (size_t)layer * L * kw; /* [L][kw] */
            attention(&cap, layer, K, V, out_x, row);
            att_elems += 2.0 * L * kw;
            for (int i = 0; i < N_PAIR_ROWS; i++) {
                pair pr = pair_at(i);
                double bk, bv;
                if ((rc = roundtrip(&pr.k, K, (size_t)kw, L, kw, &blob, &blob_cap, kh, &bk)) ||
                    (rc = roundtrip(&pr.v, V, (size_t)kw, L, kw, &blob, &blob_cap, vh, &bv)))
                    goto done;
                attention(&cap, layer, kh, vh, out_q, row);
                for (size_t e = 0; e < (size_t)L * qw; e++) {
                    double d = (double)out_x[e] - out_q[e];
                    att_err[i] += d * d;
                    att_ref[i] += (double)out_x[e] * out_x[e];
                }
                att_bits[i] += bk + bv;
            }
        }
        if (o->progress) fprintf(stderr, "eval recon: chunk %d/%d\n", c + 1, n_chunks);
    }

    static const char *scope_name[N_SCOPES] = {"layer", "head"};
    fprintf(out, "# zipcache eval recon: %s, %d chunk(s) of %d tokens from %s; keys after RoPE\n", model_path,
            n_chunks, L, p->text);
    fprintf(out, "# relative MSE = sum (x - x^)^2 / sum x^2; scope layer: rows of %d channels (all KV heads), head: %d\n\n",
            kw, hd);
    fprintf(out, "| format | bits | scope | stored bits/elem | K rel. MSE | V rel. MSE |\n|---|---:|---|---:|---:|---:|\n");
    if (json_path) {
        zc_kv_study_json_begin(&b, "recon", model_path, p->text, n_chunks, L);
        zc_sb_printf(&b, ", \"rows\": [\n");
    }
    int first = 1;
    for (int i = 0; i < N_CONFIGS; i++)
        for (int s = 0; s < N_SCOPES; s++) {
            const cell *e = &cells[i][s];
            if (!e->valid) continue;
            config cf = config_at(i);
            double bpe = e->bits / e->elems, ek = e->err[0] / e->ref[0], ev = e->err[1] / e->ref[1];
            fprintf(out, "| %s | %d | %s | %.3f | %.3e | %.3e |\n", cf.label, cf.q.bits, scope_name[s], bpe, ek, ev);
            if (json_path) {
                zc_sb_printf(&b, "%s  {\"format\": ", first ? "" : ",\n");
                zc_sb_json_str(&b, cf.label, strlen(cf.label));
                zc_sb_printf(&b, ", \"bits\": %d, \"scope\": \"%s\", \"bits_per_element\": %.6f, \"k_rel_mse\": ",
                             cf.q.bits, scope_name[s], bpe);
                zc_sb_json_num(&b, ek);
                zc_sb_printf(&b, ", \"v_rel_mse\": ");
                zc_sb_json_num(&b, ev);
                zc_sb_printf(&b, "}");
                first = 0;
            }
        }
    fprintf(out, "\n# attention output error with both K and V quantized (rows of all KV heads): "
                 "sum ||o - o^||^2 / sum ||o||^2 over every query head and position\n\n");
    fprintf(out, "| K + V formats | bits | stored bits/elem | attention output rel. error |\n|---|---:|---:|---:|\n");
    if (json_path) zc_sb_printf(&b, "\n], \"attention\": [\n");
    for (int i = 0; i < N_PAIR_ROWS; i++) {
        pair pr = pair_at(i);
        double bpe = att_bits[i] / att_elems, err = att_err[i] / att_ref[i];
        fprintf(out, "| %s | %d | %.3f | %.3e |\n", pr.label, pr.k.bits, bpe, err);
        if (json_path) {
            zc_sb_printf(&b, "%s  {\"formats\": ", i ? ",\n" : "");
            zc_sb_json_str(&b, pr.label, strlen(pr.label));
            zc_sb_printf(&b, ", \"bits\": %d, \"bits_per_element\": %.6f, \"rel_error\": ", pr.k.bits, bpe);
            zc_sb_json_num(&b, err);
            zc_sb_printf(&b, "}");
        }
    }
    if (json_path) {
        zc_sb_printf(&b, "\n]}\n");
        rc = zc_kv_study_json_write(&b, json_path);
    }
done:
    zc_kv_capture_free(&cap);
    free(tokens);
    free(blob);
    free(y);
    free(kh);
    free(vh);
    free(out_x);
    free(out_q);
    free(row);
    return rc;
}
