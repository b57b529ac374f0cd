/* The transformer forward pass (Llama, Mistral, Qwen2/3, Gemma 3, Phi-3, SmolLM3), read top to
 * bottom in forward_batch(), and the context that owns its buffers.
 *
 * One call processes a batch of n tokens at positions pos..pos+n-1: every
 * weight matrix is multiplied once with all n rows (matrix-matrix products
 * for a prompt, matrix-vector for a decode step), so a decode step reads
 * each weight exactly once. The KV cache is reached only through kv.h ops.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/error.h"

#define MAX_CTX (1 << 24)

/* ---- Building blocks ------------------------------------------------------ */

/* out[i] = x[i] / rms(x) * w[i] for each of n rows of d. */
static void rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps) {
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * d;
        float *o = out + (size_t)r * d;
        double ss = 0;
        for (int i = 0; i < d; i++) ss += (double)xr[i] * xr[i];
        float scale = (float)(1.0 / sqrt(ss / d + eps));
        for (int i = 0; i < d; i++) o[i] = xr[i] * scale * w[i];
    }
}

/* y[r][i] += b[i] for n rows of d. */
static void add_bias(float *y, const float *b, int n, int d) {
    for (int r = 0; r < n; r++)
        for (int i = 0; i < d; i++) y[(size_t)r * d + i] += b[i];
}

/* Rotate the first n_rot channels of each head of n rows (row r at
 * position pos+r, its angles in cos/sin[r][n_rot/2]). Adjacent style pairs
 * channel 2i with 2i+1; NeoX style pairs i with i + n_rot/2. */
static void rope(const zc_context *c, float *x, int n, int n_heads, bool local) {
    const zc_model *m = c->m;
    int hd = m->info.head_dim, half = m->n_rot / 2;
    int stride = m->rope_style == ZC_ROPE_NEOX ? 1 : 2, offset = m->rope_style == ZC_ROPE_NEOX ? half : 1;
    const float *cos_t = local ? c->rope_cos_local : c->rope_cos, *sin_t = local ? c->rope_sin_local : c->rope_sin;
    for (int r = 0; r < n; r++) {
        const float *cs = cos_t + (size_t)r * half, *sn = sin_t + (size_t)r * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)r * n_heads + h) * hd;
            for (int i = 0; i < half; i++) {
                float *a = v + i * stride, *b = a + offset;
                float x0 = *a, x1 = *b;
                *a = x0 * cs[i] - x1 * sn[i];
                *b = x0 * sn[i] + x1 * cs[i];
            }
        }
    }
}

/* SwiGLU: g = silu(g) * u, elementwise over len values. */
static void swiglu(float *g, const float *u, size_t len) {
    for (size_t i = 0; i < len; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* GeGLU (gemma3): g = gelu_tanh(g) * u, GELU's tanh approximation
 * 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))). */
static void geglu_tanh(float *g, const float *u, size_t len) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (size_t i = 0; i < len; i++) {
        float x = g[i];
        g[i] = 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x))) * u[i];
    }
}

static void scale(float *x, float s, size_t len) {
    for (size_t i = 0; i < len; i++) x[i] *= s;
}

/* cos/sin [n][half] of positions pos.. for the angles inv_freq [half], times mscale. */
static void rope_tables(const double *inv_freq, double mscale, int pos, int n, int half, float *cos_t,
                        float *sin_t) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < half; j++) {
            double a = (double)(pos + i) * inv_freq[j];
            cos_t[(size_t)i * half + j] = (float)(mscale * cos(a));
            sin_t[(size_t)i * half + j] = (float)(mscale * sin(a));
        }
}

static void add_into(float *x, const float *y, size_t len) {
    for (size_t i = 0; i < len; i++) x[i] += y[i];
}

static int matmul(zc_context *c, const zc_mat *w, const float *x, float *y, int m) {
    return zc_matmul(c->pool, w, x, y, m, &c->mm);
}

/* ---- The forward pass ------------------------------------------------------ */

/* rope_cos/sin [n][half] of one batch: positions pos.. (seqs NULL) or row r
 * at the position of its sequence seqs[r]. */
static void batch_rope_tables(const zc_context *c, const int *seqs, int n, const double *inv_freq, double mscale,
                              float *cos_t, float *sin_t) {
    int half = c->m->n_rot / 2;
    if (!seqs) {
        rope_tables(inv_freq, mscale, c->pos, n, half, cos_t, sin_t);
        return;
    }
    for (int r = 0; r < n; r++)
        rope_tables(inv_freq, mscale, zc_ctx_seq_pos(c, seqs[r]), 1, half, cos_t + (size_t)r * half,
                    sin_t + (size_t)r * half);
}

/* Store k, v and compute att [n][q_dim] = softmax(q·Kᵀ/√hd)·V (causal) for
 * layer l: all n rows on the context's cache at positions c->pos.. (seqs
 * NULL), or row r alone on the cache of its sequence seqs[r]. */
static int batch_attention(zc_context *c, const int *seqs, int l, int n) {
    const zc_model_info *h = &c->m->info;
    const int q_dim = h->n_heads * h->head_dim, kv_dim = h->n_kv_heads * h->head_dim;
    int rc, rows = seqs ? n : 1, len = seqs ? 1 : n;
    for (int r = 0; r < rows; r++) {
        zc_kv_cache *kv = seqs ? zc_ctx_seq_kv(c, seqs[r]) : c->kv;
        int pos = seqs ? zc_ctx_seq_pos(c, seqs[r]) : c->pos;
        const float *q = c->q + (size_t)r * q_dim, *k = c->k + (size_t)r * kv_dim, *v = c->v + (size_t)r * kv_dim;
        if (c->observer) c->observer(c->observer_user, l, pos, len, q, k, v);
        if ((rc = kv->ops->write(kv, l, pos, len, k, v)) ||
            (rc = kv->ops->attend(kv, l, pos, len, q, c->att + (size_t)r * q_dim)))
            return rc;
    }
    return ZC_OK;
}

/* Run n tokens through the model: tokens[0..n) at positions c->pos.. of the
 * context's own sequence (seqs NULL, a prompt chunk or a decode step), or one
 * token of each of n distinct sequences, row r at the position of seqs[r]
 * (a batched decode step of several sessions: the weight products take all n
 * rows at once, so the step reads every weight once). Logits:
 * ZC_LOGITS_NONE: none; ZC_LOGITS_LAST: the last row into logits[n_vocab];
 * ZC_LOGITS_ALL: every row into logits[n][n_vocab]. n <= n_batch. */
static int forward_batch(zc_context *c, const int *seqs, const int32_t *tokens, int n, int logits_mode,
                         float *logits) {
    const zc_model *m = c->m;
    const zc_model_info *h = &m->info;
    const int d = h->n_embd, hd = h->head_dim, ff = h->n_ff;
    const int q_dim = h->n_heads * hd, kv_dim = h->n_kv_heads * hd;
    int rc;

    /* x [n][d]: token embeddings (gemma3: times sqrt(d)) */
    for (int i = 0; i < n; i++) zc_mat_get_row(&m->tok_embd, tokens[i], c->x + (size_t)i * d);
    if (m->embd_scale != 1.0f) scale(c->x, m->embd_scale, (size_t)n * d);

    /* rope_cos/sin [n][half]: angles of this batch's positions, shared by all
     * layers (local layers of gemma3 have their own base: the _local tables) */
    batch_rope_tables(c, seqs, n, c->inv_freq, m->rope_mscale, c->rope_cos, c->rope_sin);
    if (c->inv_freq_local) batch_rope_tables(c, seqs, n, c->inv_freq_local, 1.0, c->rope_cos_local, c->rope_sin_local);

    for (int l = 0; l < h->n_layers; l++) {
        const zc_layer *L = &m->layers[l];

        /* Attention. xb [n][d] = rmsnorm(x) */
        rmsnorm(c->xb, c->x, L->attn_norm, n, d, h->norm_eps);
        /* q [n][q_dim], k and v [n][kv_dim] */
        if ((rc = matmul(c, &L->wq, c->xb, c->q, n)) || (rc = matmul(c, &L->wk, c->xb, c->k, n)) ||
            (rc = matmul(c, &L->wv, c->xb, c->v, n)))
            return rc;
        if (L->bq) add_bias(c->q, L->bq, n, q_dim);
        if (L->bk) add_bias(c->k, L->bk, n, kv_dim);
        if (L->bv) add_bias(c->v, L->bv, n, kv_dim);
        /* qwen3: each head of q and k RMS-normed (in place) before RoPE */
        if (L->q_norm) rmsnorm(c->q, c->q, L->q_norm, n * h->n_heads, hd, h->norm_eps);
        if (L->k_norm) rmsnorm(c->k, c->k, L->k_norm, n * h->n_kv_heads, hd, h->norm_eps);
        if (!L->no_rope) {
            rope(c, c->q, n, h->n_heads, L->local_rope);
            rope(c, c->k, n, h->n_kv_heads, L->local_rope);
        }
        if (m->q_scale != 1.0f) scale(c->q, m->q_scale, (size_t)n * q_dim);

        /* The cache stores k, v; att [n][q_dim] = softmax(q·Kᵀ/√hd)·V, causal */
        if ((rc = batch_attention(c, seqs, l, n))) return rc;
        /* x += att·Woᵀ (xb [n][d] holds the projection; gemma3 RMS-norms it first) */
        if ((rc = matmul(c, &L->wo, c->att, c->xb, n))) return rc;
        if (L->post_attn_norm) rmsnorm(c->xb, c->xb, L->post_attn_norm, n, d, h->norm_eps);
        add_into(c->x, c->xb, (size_t)n * d);

        /* Feed-forward. xb = rmsnorm(x); hb, hb2 [n][ff]; x += (silu(xb·Wgᵀ) * xb·Wuᵀ)·Wdᵀ */
        rmsnorm(c->xb, c->x, L->ffn_norm, n, d, h->norm_eps);
        if ((rc = matmul(c, &L->w_gate, c->xb, c->hb, n)) || (rc = matmul(c, &L->w_up, c->xb, c->hb2, n)))
            return rc;
        if (m->gemma)
            geglu_tanh(c->hb, c->hb2, (size_t)n * ff);
        else
            swiglu(c->hb, c->hb2, (size_t)n * ff);
        if ((rc = matmul(c, &L->w_down, c->hb, c->xb, n))) return rc;
        if (L->post_ffn_norm) rmsnorm(c->xb, c->xb, L->post_ffn_norm, n, d, h->norm_eps);
        add_into(c->x, c->xb, (size_t)n * d);
    }

    /* Logits of the rows asked for: xb = rmsnorm(x rows), logits = xb·Woutᵀ */
    if (logits_mode == ZC_LOGITS_NONE) return ZC_OK;
    int first = logits_mode == ZC_LOGITS_ALL ? 0 : n - 1;
    rmsnorm(c->xb, c->x + (size_t)first * d, m->out_norm, n - first, d, h->norm_eps);
    return matmul(c, &m->output, c->xb, logits, n - first);
}

int zc_decode_batch(zc_context *c, int n, const int *seqs, const int32_t *tokens, float *logits) {
    const zc_model_info *h = &c->m->info;
    int n_seq = c->n_seq > 0 ? c->n_seq : 1;
    if (n < 1 || n > c->n_batch || !seqs || !tokens || !logits)
        return zc_error(ZC_ERR_ARG, "decode batch: %d rows (1..%d, with sequences, tokens and logits)", n, c->n_batch);
    for (int i = 0; i < n; i++) {
        if (seqs[i] < 0 || seqs[i] >= n_seq)
            return zc_error(ZC_ERR_ARG, "decode batch: sequence %d (row %d) is not one of %d", seqs[i], i, n_seq);
        for (int j = 0; j < i; j++)
            if (seqs[j] == seqs[i]) return zc_error(ZC_ERR_ARG, "decode batch: sequence %d appears twice", seqs[i]);
        if (tokens[i] < 0 || tokens[i] >= h->n_vocab)
            return zc_error(ZC_ERR_ARG, "decode batch: token %d (row %d) is outside the vocabulary of %d", tokens[i], i,
                            h->n_vocab);
        if (zc_ctx_seq_pos(c, seqs[i]) >= c->n_ctx)
            return zc_error(ZC_ERR_LIMIT, "context full: sequence %d holds %d tokens of %d", seqs[i],
                            zc_ctx_seq_pos(c, seqs[i]), c->n_ctx);
    }
    int rc = zc_ctx_check_budget(c, n, seqs, NULL);
    if (rc != ZC_OK) return rc;
    rc = forward_batch(c, seqs, tokens, n, ZC_LOGITS_ALL, logits);
    if (rc != ZC_OK) {
        /* as zc_decode: drop the partial step from every cache that has it */
        char why[512];
        snprintf(why, sizeof why, "%s", zc_last_error());
        for (int i = 0; i < n; i++) {
            zc_kv_cache *kv = zc_ctx_seq_kv(c, seqs[i]);
            kv->ops->truncate(kv, zc_ctx_seq_pos(c, seqs[i]));
        }
        return zc_error(rc, "%s", why);
    }
    for (int i = 0; i < n; i++) zc_ctx_seq_advance(c, seqs[i], 1);
    return ZC_OK;
}

/* The --kv-budget rule (kv_cfg.budget_bytes, 0 = none). Before any token
 * is processed, the cache after this call is estimated as the bytes it holds
 * plus n tokens at its average bytes per token so far; an empty cache is
 * estimated at fp16 size (2 bytes per K/V element), which is also what a
 * compressing policy holds while a block waits in its window. Above the
 * budget the call fails with ZC_ERR_LIMIT and processes nothing. Compressed
 * policies average fewer bytes per token, so they reach the budget at a
 * later position. One call can end above the budget by its tokens' excess
 * over the average (a filling fp16 window; an fp32 cache's first call). */
static int check_kv_budget(const zc_context *c, int n) {
    size_t budget = c->kv_cfg.budget_bytes;
    if (!budget) return ZC_OK;
    const zc_model_info *h = &c->m->info;
    zc_kv_usage u;
    c->kv->ops->usage(c->kv, &u);
    double per_token = u.n_tokens > 0 ? (double)u.total / (double)u.n_tokens
                                      : 2.0 * h->n_layers * h->n_kv_heads * h->head_dim * sizeof(uint16_t);
    double more = n * per_token; /* doubles: no overflow for any n_ctx */
    if ((double)u.total + more <= (double)budget) return ZC_OK;
    return zc_error(ZC_ERR_LIMIT,
                    "KV cache budget of %zu bytes reached at position %d (policy %s): the cache holds %zu bytes, "
                    "%d more token%s would take about %.0f",
                    budget, c->pos, c->kv_cfg.policy, u.total, n, n == 1 ? "" : "s", more);
}

int zc_decode(zc_context *c, const int32_t *tokens, int n, int logits_mode, float *logits) {
    const zc_model_info *h = &c->m->info;
    if (n < 1 || !tokens) return zc_error(ZC_ERR_ARG, "decode: %d tokens", n);
    if (logits_mode < ZC_LOGITS_NONE || logits_mode > ZC_LOGITS_ALL || (logits_mode != ZC_LOGITS_NONE && !logits))
        return zc_error(ZC_ERR_ARG, "decode: bad logits request (mode %d, buffer %p)", logits_mode, (void *)logits);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= h->n_vocab)
            return zc_error(ZC_ERR_ARG, "decode: token %d (index %d) is outside the vocabulary of %d", tokens[i], i,
                            h->n_vocab);
    if (n > c->n_ctx - c->pos)
        return zc_error(ZC_ERR_LIMIT, "context full: %d tokens at position %d exceed the context of %d tokens", n,
                        c->pos, c->n_ctx);
    int rc = check_kv_budget(c, n);
    if (rc != ZC_OK) return rc;
    for (int done = 0; done < n;) {
        if (c->abort_callback && c->abort_callback(c->abort_user))
            return zc_error(ZC_ERR_ABORTED, "decode: stopped by the abort callback at position %d", c->pos);
        int len = n - done < c->n_batch ? n - done : c->n_batch;
        int last = done + len == n;
        int mode = logits_mode == ZC_LOGITS_ALL ? ZC_LOGITS_ALL : last ? logits_mode : ZC_LOGITS_NONE;
        float *out = logits_mode == ZC_LOGITS_ALL ? logits + (size_t)done * h->n_vocab : logits;
        rc = forward_batch(c, NULL, tokens + done, len, mode, out);
        if (rc != ZC_OK) {
            /* Some layers may hold this batch already: drop it so the cache
             * is consistent again (a policy that cannot truncate keeps it,
             * and the caller must reset, as documented). */
            char why[512];
            snprintf(why, sizeof why, "%s", zc_last_error());
            c->kv->ops->truncate(c->kv, c->pos);
            return zc_error(rc, "%s", why);
        }
        c->pos += len;
        done += len;
    }
    return ZC_OK;
}

/* ---- Context lifetime ---------------------------------------------------- */

void zc_context_params_default(zc_context_params *p) {
    memset(p, 0, sizeof *p);
    p->n_batch = 512;
}

void zc_context_free(zc_context *c) {
    if (!c) return;
    zc_context_seqs_free(c);
    zc_kv_free(c->kv);
    zc_pool_destroy(c->pool);
    float *bufs[] = {c->x,   c->xb,  c->q,        c->k,        c->v,           c->att,
                     c->hb,  c->hb2, c->rope_cos, c->rope_sin, c->rope_cos_local, c->rope_sin_local};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) zc_free_aligned(bufs[i]);
    free(c->inv_freq);
    free(c->inv_freq_local);
    zc_matmul_scratch_free(&c->mm);
    free(c);
}

/* An aligned activation buffer of rows x cols floats, counted in act_bytes. */
static float *alloc_act(zc_context *c, int rows, int64_t cols) {
    size_t bytes;
    if (zc_mul_size((size_t)rows, (size_t)cols * sizeof(float), &bytes) != ZC_OK) {
        zc_error(ZC_ERR_LIMIT, "context: a batch of %d tokens is too large", rows);
        return NULL;
    }
    c->act_bytes += bytes;
    return zc_malloc_aligned(bytes);
}

int zc_context_create(const zc_model *m, const zc_context_params *p, zc_context **out) {
    *out = NULL;
    const zc_model_info *h = &m->info;
    int n_ctx = p->n_ctx ? p->n_ctx : h->n_ctx_train;
    if (n_ctx < 1 || n_ctx > MAX_CTX)
        return zc_error(ZC_ERR_ARG, "context: n_ctx %d is out of range [1, %d]", n_ctx, MAX_CTX);
    if (p->n_threads < 0 || p->n_threads > 1024)
        return zc_error(ZC_ERR_ARG, "context: n_threads %d is out of range [0, 1024]", p->n_threads);
    if (p->n_batch < 1) return zc_error(ZC_ERR_ARG, "context: n_batch %d must be positive", p->n_batch);
    zc_context *c = zc_calloc(1, sizeof *c);
    if (!c) return ZC_ERR_NOMEM;
    c->m = m;
    c->n_ctx = n_ctx;
    c->n_batch = p->n_batch < n_ctx ? p->n_batch : n_ctx;
    c->observer = p->observer;
    c->observer_user = p->observer_user;
    c->abort_callback = p->abort_callback;
    c->abort_user = p->abort_user;
    int rc = ZC_ERR_NOMEM, nb = c->n_batch, half = m->n_rot / 2;
    if (p->kv)
        c->kv_cfg = *p->kv;
    else
        zc_kv_config_default(&c->kv_cfg);
    if (!p->kv && (rc = zc_kv_config_parse_string(&c->kv_cfg, p->kv_policy, p->kv_options)) != ZC_OK) goto fail;
    rc = ZC_ERR_NOMEM;

    c->pool = zc_pool_create(p->n_threads);
    if (!c->pool) {
        zc_error(ZC_ERR_NOMEM, "context: cannot start %d threads", p->n_threads);
        goto fail;
    }
    zc_kv_shape shape = {h->n_layers, h->n_heads, h->n_kv_heads, h->head_dim, n_ctx, NULL};
    if ((rc = zc_kv_create_windowed(&c->kv_cfg, &shape, m->window, c->pool, &c->kv)) != ZC_OK) goto fail;

    int64_t q_dim = (int64_t)h->n_heads * h->head_dim, kv_dim = (int64_t)h->n_kv_heads * h->head_dim;
    rc = ZC_ERR_NOMEM;
    if (!(c->x = alloc_act(c, nb, h->n_embd)) || !(c->xb = alloc_act(c, nb, h->n_embd)) ||
        !(c->q = alloc_act(c, nb, q_dim)) || !(c->k = alloc_act(c, nb, kv_dim)) || !(c->v = alloc_act(c, nb, kv_dim)) ||
        !(c->att = alloc_act(c, nb, q_dim)) || !(c->hb = alloc_act(c, nb, h->n_ff)) ||
        !(c->hb2 = alloc_act(c, nb, h->n_ff)) || !(c->rope_cos = alloc_act(c, nb, half)) ||
        !(c->rope_sin = alloc_act(c, nb, half)) || !(c->inv_freq = zc_malloc((size_t)half * sizeof(double)))) {
        rc = zc_last_error_code() == ZC_ERR_LIMIT ? ZC_ERR_LIMIT : ZC_ERR_NOMEM;
        goto fail;
    }
    /* YaRN: pairs rotating more than beta_fast times over the original
     * context keep their frequency, those under beta_slow times are
     * interpolated (divided by the factor), linearly ramped between (the
     * ramp's ends floored / ceiled, as transformers and llama.cpp). */
    double yarn_lo = 0, yarn_hi = 0;
    if (m->yarn_factor > 0) {
        double d = m->n_rot, b = log((double)h->rope_base), oc = m->rope_orig_ctx;
        yarn_lo = floor(d * log(oc / (m->yarn_beta_fast * 2 * M_PI)) / (2 * b));
        yarn_hi = ceil(d * log(oc / (m->yarn_beta_slow * 2 * M_PI)) / (2 * b));
        yarn_lo = yarn_lo < 0 ? 0 : yarn_lo;
        yarn_hi = yarn_hi > d - 1 ? d - 1 : yarn_hi;
        if (yarn_hi == yarn_lo) yarn_hi += 0.001;
    }
    /* theta_i = base^(-2i/n_rot), divided by the file's per-pair factor when
     * it has one (Llama 3 long-context scaling) and by the linear scaling
     * factor (the same as dividing the positions). */
    for (int i = 0; i < half; i++) {
        c->inv_freq[i] = pow((double)h->rope_base, -2.0 * i / m->n_rot) / (double)m->rope_linear;
        if (m->rope_freqs) c->inv_freq[i] /= (double)m->rope_freqs[i];
        if (m->rope_long) c->inv_freq[i] /= (double)(n_ctx > m->rope_orig_ctx ? m->rope_long : m->rope_short)[i];
        if (m->yarn_factor > 0) {
            double ramp = (i - yarn_lo) / (yarn_hi - yarn_lo), extrap = 1 - (ramp < 0 ? 0 : ramp > 1 ? 1 : ramp);
            c->inv_freq[i] = c->inv_freq[i] / m->yarn_factor * (1 - extrap) + c->inv_freq[i] * extrap;
        }
    }
    /* Local layers (gemma3): their own base, unscaled. */
    if (m->rope_base_local > 0) {
        if (!(c->rope_cos_local = alloc_act(c, nb, half)) || !(c->rope_sin_local = alloc_act(c, nb, half)) ||
            !(c->inv_freq_local = zc_malloc((size_t)half * sizeof(double)))) {
            rc = ZC_ERR_NOMEM;
            goto fail;
        }
        for (int i = 0; i < half; i++) c->inv_freq_local[i] = pow((double)m->rope_base_local, -2.0 * i / m->n_rot);
    }
    *out = c;
    return ZC_OK;
fail:
    zc_context_free(c);
    return rc;
}

int zc_context_pos(const zc_context *c) { return c->pos; }
int zc_context_n_ctx(const zc_context *c) { return c->n_ctx; }

int zc_context_reset(zc_context *c) {
    int rc = c->kv->ops->truncate(c->kv, 0);
    if (rc == ZC_OK) c->pos = 0;
    return rc;
}
