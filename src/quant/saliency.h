/* Token saliency (ZipCache Sec. 4.2-4.3): scores from attention rows,
 * probe-query selection and top-r salient-token selection, on plain arrays.
 *
 * Attention rows: A[p*lda + j] is the softmax weight query row p puts on key
 * j; a row for the query at position pos sees keys 0..pos (entries beyond are
 * never read). Several heads: head h's rows start at A + h*hs.
 *
 * Scores (paper Eq. 7-9), for key j of an L-token sequence:
 *   accumulated (H2O / MiKV):  s_j = sum_h sum_{p: pos_p >= j} A_h[p][j]
 *   normalized, ZC_DENOM_CAUSAL: s_j / (L - j)      (the reference code; with
 *       every row a probe this is exactly Eq. 8: L - j queries see column j)
 *   normalized, ZC_DENOM_PROBES: s_j / #{p: pos_p >= j}  (the literal reading
 *       of Eq. 9: mean over the probes that can see j; 0 when none can)
 *   The head sum is a plain sum over the G query heads passed in, as the
 *   reference code does (it does not change any ranking).
 * Which denominator recovers the exact salient set better (zipcache eval
 * saliency, 4 x 512 tokens of TinyStories, recall of the exact set at r = 0.4
 * / 0.6, probes random+recent 5%+5%): tinystories656K: / probes 0.689 /
 * 0.784, / (L-j) 0.613 / 0.721; stories260K: / probes 0.640 / 0.728, / (L-j)
 * 0.670 / 0.741. Neither wins on both models, so CAUSAL stays the default for
 * faithfulness to the reference code.
 */
#ifndef ZC_QUANT_SALIENCY_H
#define ZC_QUANT_SALIENCY_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ZC_DENOM_NONE = 0,   /* accumulated score */
    ZC_DENOM_CAUSAL = 1, /* divide by L - j (default) */
    ZC_DENOM_PROBES = 2, /* divide by the number of probes at or after j */
} zc_sal_denom;

/* Scores s[L] from G heads of P attention rows at positions pos[P]
 * (ascending, each in [0, L)); pos NULL means P = L rows at 0..L-1, i.e. the
 * full causal matrix and the exact scores. ZC_ERR_ARG on bad arguments. */
int zc_sal_scores(const float *A, size_t lda, size_t hs, int G, const int32_t *pos, int P, int L, zc_sal_denom denom,
                  float *score);

/* GQA helper: query head h belongs to KV head h / (n_heads / n_kv_heads).
 * per_layer = 0: score[n_kv_heads][L], each from its group's G heads;
 * per_layer = 1: score[L] from all n_heads (one salient set for every head). */
int zc_sal_scores_gqa(const float *A, size_t lda, size_t hs, int n_heads, int n_kv_heads, int per_layer,
                      const int32_t *pos, int P, int L, zc_sal_denom denom, float *score);

/* ---- Probe selection ----------------------------------------------------- */

typedef enum {
    ZC_PROBES_RANDOM_RECENT = 0, /* default: 5% random + 5% most recent */
    ZC_PROBES_RANDOM,
    ZC_PROBES_RECENT,
    ZC_PROBES_ALL,
} zc_probe_kind;

typedef struct {
    zc_probe_kind kind;
    double random_frac; /* RANDOM, RANDOM_RECENT */
    double recent_frac; /* RECENT, RANDOM_RECENT */
    uint64_t seed;
} zc_probe_cfg;

/* random+recent, 0.05 / 0.05, seed 0. */
void zc_probe_default(zc_probe_cfg *cfg);
/* "random+recent:R:C" (R random, C recent), "random:R", "recent:C", "all";
 * fractions in (0, 1]. The seed is left as it is. ZC_ERR_ARG on bad text. */
int zc_probe_parse(const char *spec, zc_probe_cfg *cfg);

/* Probe positions for an L-token sequence into pos[L], ascending, no
 * duplicates; returns their number (>= 1) or a negative error.
 *   recent: [floor((1 - C)*L), L), at least the last position;
 *   random: floor(R*L) distinct positions drawn uniformly, without
 *     replacement (the reference code draws with replacement), from the
 *     positions before the recent ones (from all positions for RANDOM);
 *     none when L < 20, as in the reference code;
 *   a strategy that would pick nothing (RANDOM with L < 20) picks the last
 *     position, so every score is defined.
 * Fractions count to 6 decimals (a float 0.05f is 0.05) and floor() is
 * taken of the product plus 1e-9, so 0.95*840 gives 798 despite binary
 * fractions. The draw is a pure function of (seed, stream, L):
 * splitmix64 seeded with seed and stream mixed, selection sampling (Knuth's
 * Algorithm S); pass e.g. layer*n_kv_heads + head as the stream for
 * independent draws per head. */
int zc_probe_select(const zc_probe_cfg *cfg, int L, uint64_t stream, int32_t *pos);

/* ---- Salient set ------------------------------------------------------------ */

/* Salient tokens for a saliency ratio r in [0, 1]: L - floor((1 - r)*L), i.e.
 * the reference code's regular count int((1 - r)*L) taken out; r counts to 6
 * decimals, so a float 0.6f gives the same count as 0.6. */
int zc_sal_count(double ratio, int L);

/* Pick the salient tokens: the first min(n_sinks, L) positions always, then
 * the highest scores among the rest until n_salient are picked (all sinks
 * are kept even when n_sinks > n_salient). Ties: higher score first, then the
 * lower position; NaN scores rank below everything. Outputs (either may be
 * NULL): bitmap[(L + 7) / 8], bit j%8 of byte j/8 set when token j is salient
 * (bits past L zero); idx[] the salient positions ascending. scratch: NULL or
 * uint64_t[L] (then no allocation). Returns the number picked or an error. */
int zc_sal_select(const float *score, int L, int n_salient, int n_sinks, uint8_t *bitmap, int32_t *idx,
                  uint64_t *scratch);

#endif
