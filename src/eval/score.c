/* Scoring arithmetic: log-softmax pieces, KL divergence, percentiles, Wilson
 * intervals and the perplexity/KL accumulator. All sums run in double: a
 * 2048-way softmax summed in float loses ~3 digits, which is the size of the
 * KL differences we want to see. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "util/error.h"

double zc_eval_logsumexp(const float *x, int n) {
    float m = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > m) m = x[i];
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - m);
    return m + log(s);
}

double zc_eval_nll(const float *logits, int n_vocab, int target) {
    return zc_eval_logsumexp(logits, n_vocab) - logits[target];
}

int zc_eval_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

double zc_eval_kl_fp16(const zc_fp16 *base_logp, const float *run_logits, int n_vocab) {
    /* Renormalize the stored log-probs: lse_p is ~0 up to fp16 rounding. */
    double mp = -INFINITY;
    for (int i = 0; i < n_vocab; i++) {
        double v = zc_fp16_to_f32(base_logp[i]);
        if (v > mp) mp = v;
    }
    double sp = 0;
    for (int i = 0; i < n_vocab; i++) sp += exp(zc_fp16_to_f32(base_logp[i]) - mp);
    double lse_p = mp + log(sp);
    double lse_q = zc_eval_logsumexp(run_logits, n_vocab);
    double kl = 0;
    for (int i = 0; i < n_vocab; i++) {
        double lp = zc_fp16_to_f32(base_logp[i]) - lse_p;
        double lq = run_logits[i] - lse_q;
        kl += exp(lp) * (lp - lq);
    }
    return kl > 0 ? kl : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double zc_eval_percentile_sorted(const double *x, size_t n, double q) {
    if (n == 0) return NAN;
    double pos = q / 100.0 * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i >= n - 1) return x[n - 1];
    double frac = pos - (double)i;
    return x[i] + frac * (x[i + 1] - x[i]);
}

void zc_eval_summarize(double *x, size_t n, zc_eval_stats *out) {
    memset(out, 0, sizeof *out);
    out->n = n;
    if (n == 0) {
        out->mean = out->median = out->p99 = out->max = NAN;
        return;
    }
    qsort(x, n, sizeof *x, cmp_double);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    out->mean = s / (double)n;
    out->median = zc_eval_percentile_sorted(x, n, 50);
    out->p99 = zc_eval_percentile_sorted(x, n, 99);
    out->max = x[n - 1];
}

void zc_eval_wilson(int64_t k, int64_t n, double *lo, double *hi) {
    if (n <= 0) {
        *lo = 0;
        *hi = 1;
        return;
    }
    const double z = 1.959963984540054; /* two-sided 95% normal quantile */
    double nn = (double)n, p = (double)k / nn, z2n = z * z / nn;
    double center = (p + z2n / 2) / (1 + z2n);
    double half = z / (1 + z2n) * sqrt(p * (1 - p) / nn + z2n / (4 * nn));
    /* At k = 0 and k = n the bound is exactly 0 / 1; rounding would give 1e-17 off. */
    *lo = k <= 0 ? 0.0 : fmax(0.0, center - half);
    *hi = k >= n ? 1.0 : fmin(1.0, center + half);
}

static int kl_reserve(zc_eval_ppl_acc *a, size_t n) {
    if (n <= a->kl_cap) return ZC_OK;
    size_t cap = a->kl_cap ? a->kl_cap : 1024;
    while (cap < n) cap *= 2;
    double *kl = zc_realloc(a->kl, cap * sizeof *kl);
    if (!kl) return ZC_ERR_NOMEM;
    a->kl = kl;
    a->kl_cap = cap;
    return ZC_OK;
}

int zc_eval_ppl_add(zc_eval_ppl_acc *a, const float *logits, int n_vocab, int target, const zc_fp16 *base_logp,
                    int base_top1, double base_nll, bool saw_compressed) {
    if (base_logp) {
        if (kl_reserve(a, a->n_kl + 1)) return ZC_ERR_NOMEM;
        a->kl[a->n_kl++] = zc_eval_kl_fp16(base_logp, logits, n_vocab);
        a->n_top1_same += zc_eval_argmax(logits, n_vocab) == base_top1;
        a->sum_base_nll += base_nll;
    }
    a->sum_nll += zc_eval_nll(logits, n_vocab, target);
    a->n_compressed += saw_compressed;
    a->n_scored++;
    return ZC_OK;
}

int zc_eval_ppl_merge(zc_eval_ppl_acc *a, const zc_eval_ppl_acc *part) {
    if (kl_reserve(a, a->n_kl + part->n_kl)) return ZC_ERR_NOMEM;
    if (part->n_kl) memcpy(a->kl + a->n_kl, part->kl, part->n_kl * sizeof *a->kl);
    a->n_kl += part->n_kl;
    a->sum_nll += part->sum_nll;
    a->sum_base_nll += part->sum_base_nll;
    a->n_scored += part->n_scored;
    a->n_top1_same += part->n_top1_same;
    a->n_compressed += part->n_compressed;
    return ZC_OK;
}

void zc_eval_ppl_acc_free(zc_eval_ppl_acc *a) {
    free(a->kl);
    memset(a, 0, sizeof *a);
}
