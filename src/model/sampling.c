/* Token sampling: llama.cpp's chain (repetition penalty, top-k, top-p,
 * min-p, temperature, draw) over a candidate list, with a seeded PRNG so a
 * seed reproduces a run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "zipcache.h"
#include "util/small.h"

typedef struct {
    float logit;
    int32_t id;
} cand;

struct zc_sampler {
    zc_sampler_params p;
    int n_vocab;
    uint64_t rng;     /* splitmix64 state */
    int32_t *recent;  /* [repeat_last_n] ring of accepted tokens */
    int n_recent;     /* filled entries (<= repeat_last_n) */
    int next;         /* ring slot the next token goes to */
    uint8_t *seen;    /* [n_vocab] marks so each recent token is penalized once */
    cand *c;          /* [n_vocab] candidates of the current draw */
};

void zc_sampler_params_default(zc_sampler_params *p) {
    p->temp = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->seed = 0;
}

int zc_sampler_create(const zc_sampler_params *p, int n_vocab, zc_sampler **out) {
    *out = NULL;
    if (n_vocab < 1) return zc_error(ZC_ERR_ARG, "sampler: vocabulary of %d tokens", n_vocab);
    if (!isfinite(p->temp) || p->top_k < 0 || !(p->top_p > 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1) ||
        !(p->repeat_penalty > 0 && isfinite(p->repeat_penalty)) || p->repeat_last_n < 0)
        return zc_error(ZC_ERR_ARG,
                        "sampler: bad parameters (temp %g, top-k %d, top-p %g, min-p %g, repeat penalty %g, last %d)",
                        (double)p->temp, p->top_k, (double)p->top_p, (double)p->min_p, (double)p->repeat_penalty,
                        p->repeat_last_n);
    zc_sampler *s = zc_calloc(1, sizeof *s);
    if (!s) return ZC_ERR_NOMEM;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->rng = p->seed;
    s->recent = zc_calloc((size_t)p->repeat_last_n + 1, sizeof *s->recent);
    s->seen = zc_calloc((size_t)n_vocab, 1);
    s->c = zc_malloc((size_t)n_vocab * sizeof *s->c);
    if (!s->recent || !s->seen || !s->c) {
        zc_sampler_free(s);
        return ZC_ERR_NOMEM;
    }
    *out = s;
    return ZC_OK;
}

void zc_sampler_free(zc_sampler *s) {
    if (!s) return;
    free(s->recent);
    free(s->seen);
    free(s->c);
    free(s);
}

void zc_sampler_accept(zc_sampler *s, int32_t id) {
    if (s->p.repeat_last_n == 0 || id < 0 || id >= s->n_vocab) return;
    s->recent[s->next] = id;
    s->next = (s->next + 1) % s->p.repeat_last_n;
    if (s->n_recent < s->p.repeat_last_n) s->n_recent++;
}

/* Descending logit; ties broken by the lower id so the order is total. */
static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Restore the heap below j in a heap of k candidates whose root is the
 * worst kept one. */
static void sift_down(cand *c, int k, int j) {
    for (;;) {
        int w = j, l = 2 * j + 1, r = l + 1;
        if (l < k && cand_cmp(&c[l], &c[w]) > 0) w = l;
        if (r < k && cand_cmp(&c[r], &c[w]) > 0) w = r;
        if (w == j) return;
        cand t = c[j];
        c[j] = c[w];
        c[w] = t;
        j = w;
    }
}

/* Move the k best of c[0..n) to c[0..k), sorted: a heap of size k scanned
 * over the rest, O(n log k) instead of sorting the whole vocabulary. The
 * evicted candidates are swapped, not dropped, so c stays a permutation and
 * a later call with a larger k sees every candidate. */
static void top_k_sorted(cand *c, int n, int k) {
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
    for (int i = k; i < n; i++) {
        if (cand_cmp(&c[i], &c[0]) >= 0) continue; /* not better than the worst kept */
        cand evicted = c[0];
        c[0] = c[i];
        c[i] = evicted;
        sift_down(c, k, 0);
    }
    qsort(c, (size_t)k, sizeof *c, cand_cmp);
}

/* Smallest best-first prefix whose probability reaches top_p. The list is
 * sorted only as far as needed, in growing steps, so a 128k vocabulary is
 * never fully sorted for a distribution whose mass sits in a few tokens.
 * *sorted: length of the already sorted prefix (updated). */
static int top_p_cut(cand *c, int n, int *sorted, float top, float top_p) {
    double z = 0, cum = 0;
    for (int i = 0; i < n; i++) z += exp((double)c[i].logit - top);
    for (int i = 0, k = 64;; k *= 4) {
        if (k > n) k = n;
        if (*sorted < k) {
            top_k_sorted(c, n, k); /* keeps the sorted prefix: the order is total */
            *sorted = k;
        }
        for (; i < k; i++) {
            cum += exp((double)c[i].logit - top) / z;
            if (cum >= top_p) return i + 1;
        }
        if (k == n) return n;
    }
}

/* Keep p_i >= min_p * p_max, i.e. logit >= cut. On a sorted list that is a
 * prefix; otherwise the survivors move to the front, keeping their order. */
static int min_p_cut(cand *c, int n, int sorted, float cut) {
    int keep = 0;
    if (sorted >= n) {
        while (keep < n && c[keep].logit >= cut) keep++;
        return keep;
    }
    for (int i = 0; i < n; i++)
        if (c[i].logit >= cut) c[keep++] = c[i];
    return keep;
}

/* Draw from softmax(logit / temp) over c[0..n) (top = the largest logit). */
static int32_t draw(const cand *c, int n, float top, float temp, uint64_t *rng) {
    double z = 0, cum = 0;
    for (int i = 0; i < n; i++) z += exp(((double)c[i].logit - top) / temp);
    double u = (double)(zc_splitmix64(rng) >> 11) * (1.0 / 9007199254740992.0) * z;
    for (int i = 0; i < n; i++) {
        cum += exp(((double)c[i].logit - top) / temp);
        if (u < cum) return c[i].id;
    }
    return c[n - 1].id; /* u within rounding of z */
}

int32_t zc_sampler_sample(zc_sampler *s, const float *logits) {
    const zc_sampler_params *p = &s->p;
    cand *c = s->c;
    int n = s->n_vocab;
    for (int i = 0; i < n; i++) c[i] = (cand){logits[i], i};

    /* Repetition penalty (CTRL-style, as llama.cpp): shrink a recent token's
     * logit toward "less likely" whatever its sign, once per distinct token. */
    if (p->repeat_penalty != 1.0f) {
        for (int i = 0; i < s->n_recent; i++) {
            int32_t id = s->recent[i];
            if (s->seen[id]) continue;
            s->seen[id] = 1;
            c[id].logit = c[id].logit <= 0 ? c[id].logit * p->repeat_penalty : c[id].logit / p->repeat_penalty;
        }
        for (int i = 0; i < s->n_recent; i++) s->seen[s->recent[i]] = 0;
    }

    /* The best candidate survives every filter, so `top` stays the maximum. */
    int best = 0;
    for (int i = 1; i < n; i++)
        if (c[i].logit > c[best].logit) best = i;
    float top = c[best].logit;
    int32_t tok;
    if (p->temp <= 0) {
        tok = c[best].id;
    } else {
        int sorted = 0; /* length of the best-first sorted prefix */
        if (p->top_k > 0 && p->top_k < n) {
            top_k_sorted(c, n, p->top_k);
            n = sorted = p->top_k;
        }
        if (p->top_p < 1.0f) n = top_p_cut(c, n, &sorted, top, p->top_p);
        if (p->min_p > 0) n = min_p_cut(c, n, sorted, top + logf(p->min_p));
        tok = draw(c, n, top, p->temp, &s->rng);
    }
    zc_sampler_accept(s, tok);
    return tok;
}
