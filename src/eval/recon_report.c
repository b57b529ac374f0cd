/* zipcache eval recon: reconstruction error of every KV quantizer on a real
 * model's keys (after RoPE) and values (kvstudy.h).
 *
 * Per (chunk, layer) the block is the chunk's L tokens. Scope "layer" uses
 * rows of all KV heads together (C = n_kv_heads * head_dim, as the ZipCache
 * reference code does); scope "head" quantizes each KV head's columns as its
 * own block (C = head_dim), which is what per-head saliency needs. Error is
 * the relative MSE sum (x - x^)^2 / sum x^2 over all chunks and layers;
 * bits/elem is everything stored (codes and parameters) per element. */
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

/* Quantize x ([T][ldx], C columns) and add its error and stored bits to *c. */
static int measure(const zc_kvq *q, const float *x, size_t ldx, int T, int C, int tensor, uint8_t **blob,
                   size_t *cap, float *y, cell *c) {
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
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i++) {
            double a = x[(size_t)t * ldx + i], d = a - y[(size_t)t * C + i];
            c->err[tensor] += d * d;
            c->ref[tensor] += a * a;
        }
    c->bits += 8.0 * (double)l.total_bytes;
    c->elems += (double)T * C;
    return ZC_OK;
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
    float *y = zc_malloc(sizeof(float) * (size_t)L * kw); /* [L][kw] reconstruction */
    if (!y) {
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
    if (json_path) {
        zc_sb_printf(&b, "\n]}\n");
        rc = zc_kv_study_json_write(&b, json_path);
    }
done:
    zc_kv_capture_free(&cap);
    free(tokens);
    free(blob);
    free(y);
    return rc;
}
