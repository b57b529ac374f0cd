/* Token saliency: scores, probe selection, top-r selection (saliency.h). */
#include "quant/saliency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/small.h"

int zc_sal_scores(const float *A, size_t lda, size_t hs, int G, const int32_t *pos, int P, int L, zc_sal_denom denom,
                  float *score) {
    if (L < 1 || G < 1 || P < 1 || (!pos && P != L) || lda < (size_t)L || denom > ZC_DENOM_PROBES)
        return zc_error(ZC_ERR_ARG, "saliency: bad scores arguments (L=%d G=%d P=%d lda=%zu)", L, G, P, lda);
    for (int p = 0; pos && p < P; p++)
        if (pos[p] < 0 || pos[p] >= L || (p > 0 && pos[p] <= pos[p - 1]))
            return zc_error(ZC_ERR_ARG, "saliency: probe positions must ascend within [0, %d)", L);
    memset(score, 0, sizeof *score * (size_t)L);
    for (int h = 0; h < G; h++)
        for (int p = 0; p < P; p++) {
            const float *row = A + (size_t)h * hs + (size_t)p * lda; /* [L], valid up to its position */
            int last = pos ? pos[p] : p;
            for (int j = 0; j <= last; j++) score[j] += row[j];
        }
    if (denom == ZC_DENOM_CAUSAL)
        for (int j = 0; j < L; j++) score[j] /= (float)(L - j);
    if (denom == ZC_DENOM_PROBES) {
        /* probes at or after j: P minus those before j (positions ascend) */
        int before = 0;
        for (int j = 0; j < L; j++) {
            while (before < P && (pos ? pos[before] : before) < j) before++;
            score[j] = before < P ? score[j] / (float)(P - before) : 0.0f;
        }
    }
    return ZC_OK;
}

int zc_sal_scores_gqa(const float *A, size_t lda, size_t hs, int n_heads, int n_kv_heads, int per_layer,
                      const int32_t *pos, int P, int L, zc_sal_denom denom, float *score) {
    if (n_kv_heads < 1 || n_heads < n_kv_heads || n_heads % n_kv_heads)
        return zc_error(ZC_ERR_ARG, "saliency: %d query heads cannot share %d KV heads", n_heads, n_kv_heads);
    if (per_layer) return zc_sal_scores(A, lda, hs, n_heads, pos, P, L, denom, score);
    const int G = n_heads / n_kv_heads;
    for (int kv = 0; kv < n_kv_heads; kv++) {
        int rc = zc_sal_scores(A + (size_t)kv * G * hs, lda, hs, G, pos, P, L, denom, score + (size_t)kv * L);
        if (rc) return rc;
    }
    return ZC_OK;
}

/* ---- Probes -------------------------------------------------------------- */

void zc_probe_default(zc_probe_cfg *cfg) {
    cfg->kind = ZC_PROBES_RANDOM_RECENT;
    cfg->random_frac = 0.05;
    cfg->recent_frac = 0.05;
    cfg->seed = 0;
}

static int parse_frac(const char *s, char **end, double *out) {
    *out = strtod(s, end);
    return *end != s && *out > 0.0 && *out <= 1.0;
}

int zc_probe_parse(const char *spec, zc_probe_cfg *cfg) {
    char *e;
    double a, b;
    if (strcmp(spec, "all") == 0) {
        cfg->kind = ZC_PROBES_ALL;
        return ZC_OK;
    }
    if (strncmp(spec, "random+recent:", 14) == 0) {
        if (parse_frac(spec + 14, &e, &a) && *e == ':' && parse_frac(e + 1, &e, &b) && !*e) {
            *cfg = (zc_probe_cfg){ZC_PROBES_RANDOM_RECENT, a, b, cfg->seed};
            return ZC_OK;
        }
    } else if (strncmp(spec, "random:", 7) == 0) {
        if (parse_frac(spec + 7, &e, &a) && !*e) {
            *cfg = (zc_probe_cfg){ZC_PROBES_RANDOM, a, 0, cfg->seed};
            return ZC_OK;
        }
    } else if (strncmp(spec, "recent:", 7) == 0) {
        if (parse_frac(spec + 7, &e, &b) && !*e) {
            *cfg = (zc_probe_cfg){ZC_PROBES_RECENT, 0, b, cfg->seed};
            return ZC_OK;
        }
    }
    return zc_error(ZC_ERR_ARG,
                    "probes '%s': expected random+recent:R:C, random:R, recent:C or all, fractions in (0, 1]", spec);
}

/* floor(f*L) for a fraction given to at most 6 decimals: rounding f to 6
 * decimals first makes a float 0.6f count as 0.6, and the 1e-9 makes
 * 0.95*840 give 798 despite binary fractions. */
static int floor_frac(double f, int L) { return (int)floor(nearbyint(f * 1e6) / 1e6 * L + 1e-9); }

int zc_probe_select(const zc_probe_cfg *cfg, int L, uint64_t stream, int32_t *pos) {
    if (L < 1) return zc_error(ZC_ERR_ARG, "probes: empty sequence");
    if (cfg->kind == ZC_PROBES_ALL) {
        for (int i = 0; i < L; i++) pos[i] = i;
        return L;
    }
    int recent_start = L; /* recent probes are [recent_start, L) */
    if (cfg->kind != ZC_PROBES_RANDOM) {
        recent_start = floor_frac(1.0 - cfg->recent_frac, L);
        if (recent_start > L - 1) recent_start = L - 1;
        if (recent_start < 0) recent_start = 0;
    }
    int n_random = 0;
    if (cfg->kind != ZC_PROBES_RECENT && L >= 20) {
        n_random = floor_frac(cfg->random_frac, L);
        if (n_random > recent_start) n_random = recent_start;
    }
    /* Algorithm S over [0, recent_start): position i is taken with
     * probability (still needed) / (still left), giving a uniform subset of
     * exactly n_random, already in ascending order. */
    uint64_t s = cfg->seed;
    s = zc_splitmix64(&s) ^ stream; /* nearby streams still give unrelated sequences */
    int n = 0;
    for (int i = 0, need = n_random; i < recent_start && need > 0; i++) {
        uint64_t left = (uint64_t)(recent_start - i);
        if (((zc_splitmix64(&s) >> 32) * left) >> 32 < (uint64_t)need) {
            pos[n++] = i;
            need--;
        }
    }
    for (int i = recent_start; i < L; i++) pos[n++] = i;
    if (n == 0) pos[n++] = L - 1; /* RANDOM with nothing drawn */
    return n;
}

/* ---- Selection ------------------------------------------------------------ */

int zc_sal_count(double ratio, int L) {
    if (!(ratio >= 0.0)) ratio = 0.0;
    if (ratio > 1.0) ratio = 1.0;
    return L - floor_frac(1.0 - ratio, L);
}

/* Sort key: descending order = higher score first, then lower position. */
static uint64_t rank_key(float s, int j) {
    uint32_t u;
    memcpy(&u, &s, 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* order-preserving map of floats to unsigned */
    if (s != s) u = 0;                               /* NaN: last */
    return (uint64_t)u << 32 | (uint32_t)(0x7fffffff - j);
}

static int cmp_desc(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int zc_sal_select(const float *score, int L, int n_salient, int n_sinks, uint8_t *bitmap, int32_t *idx,
                  uint64_t *scratch) {
    if (L < 1) return zc_error(ZC_ERR_ARG, "saliency: empty sequence");
    if (n_salient < 0) n_salient = 0;
    if (n_salient > L) n_salient = L;
    if (n_sinks < 0) n_sinks = 0;
    if (n_sinks > L) n_sinks = L;
    uint64_t *keys = scratch ? scratch : zc_malloc(sizeof *keys * (size_t)L); /* [L - n_sinks] */
    if (!keys) return ZC_ERR_NOMEM;
    uint8_t *own_bitmap = NULL;
    if (!bitmap) {
        bitmap = own_bitmap = zc_malloc(((size_t)L + 7) / 8);
        if (!bitmap) {
            if (!scratch) free(keys);
            return ZC_ERR_NOMEM;
        }
    }
    memset(bitmap, 0, ((size_t)L + 7) / 8);
    for (int j = 0; j < n_sinks; j++) bitmap[j / 8] |= (uint8_t)(1u << (j % 8));
    int rest = n_salient - n_sinks, picked = n_sinks;
    if (rest > 0) {
        int m = L - n_sinks;
        for (int j = 0; j < m; j++) keys[j] = rank_key(score[n_sinks + j], n_sinks + j);
        qsort(keys, (size_t)m, sizeof *keys, cmp_desc);
        for (int k = 0; k < rest; k++) {
            int j = 0x7fffffff - (int)(uint32_t)keys[k];
            bitmap[j / 8] |= (uint8_t)(1u << (j % 8));
        }
        picked += rest;
    }
    if (idx)
        for (int j = 0, n = 0; j < L; j++)
            if (bitmap[j / 8] >> (j % 8) & 1) idx[n++] = j;
    if (!scratch) free(keys);
    free(own_bitmap);
    return picked;
}
