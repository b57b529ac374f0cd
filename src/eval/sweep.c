/* Compression sweeps: perplexity/KL of many cache configurations on the same
 * chunks against one fp16 base, written as CSV and plotted (KL and top-1
 * agreement against the measured compression ratio, one line per policy or
 * variant). The presets are the paper's ablations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/eval_tasks.h"
#include "kv/kv_options.h"
#include "util/error.h"

bool zc_eval_budget_config(const char *policy, double bits, zc_kv_config *cfg) {
    return zc_kv_config_for_budget(cfg, policy, bits) == 1; /* each policy's own mapping (its budget hook) */
}

/* One configuration to run: a label (one plot line each) and its config. */
typedef struct {
    char label[48];
    double budget;
    zc_kv_config cfg;
    char desc[320];
} sweep_run;

typedef struct {
    sweep_run *runs;
    int n, cap;
} run_list;

/* Append unless the same label already has an identical configuration
 * (fixed-width policies and integer-width ones repeat across budgets). */
static int add_run(run_list *l, const char *label, double budget, const zc_kv_config *cfg) {
    char desc[320];
    zc_kv_config_describe(cfg, desc, sizeof desc);
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->runs[i].label, label) && !strcmp(l->runs[i].desc, desc)) return ZC_OK;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        sweep_run *r = zc_realloc(l->runs, (size_t)cap * sizeof *r);
        if (!r) return ZC_ERR_NOMEM;
        l->runs = r;
        l->cap = cap;
    }
    sweep_run *r = &l->runs[l->n++];
    snprintf(r->label, sizeof r->label, "%s", label);
    r->budget = budget;
    r->cfg = *cfg;
    snprintf(r->desc, sizeof r->desc, "%s", desc);
    return ZC_OK;
}

static bool policy_available(const char *name) {
    zc_kv_config tmp;
    zc_kv_config_default(&tmp);
    int rc = zc_kv_config_parse_arg(&tmp, "--kv", name);
    zc_clear_error();
    return rc == 1;
}

/* The presets: each variant a policy plus --kv options (NULL-terminated
 * pairs) applied after the budget, run at every budget.
 *   ablation-saliency, ablation-probes  the paper's ablations (Table A, Table 2)
 *   bits           the bit-allocation study (kv_zipcache.c, zip_plan): the
 *                  policies at equal stored bits (kivi and q4_0r at their fixed
 *                  widths: the budget does not move them)
 *   ablation-bits  each choice of zipcache's automatic plan undone or changed
 *   local-layers   a model with sliding-window layers: zipcache's two rules for
 *                  them (kept exact beside the policy, or compressed within
 *                  their window: --kv-local), beside kivi (always exact there) */
typedef struct {
    const char *label, *policy, *args[9];
} study_run;

static const study_run SALIENCY[] = {
    {"normalized, / (L-j) (zipcache)", "zipcache", {NULL}},
    {"normalized, / probe count", "zipcache", {"--kv-denom", "probes", NULL}},
    {"accumulated over probes", "zipcache", {"--kv-denom", "accumulated", NULL}},
    {"accumulated over all queries (mikv)", "mikv", {NULL}},
};

static const study_run PROBES[] = {
    {"probes all", "zipcache", {"--kv-probes", "all", NULL}},
    {"probes random 10%", "zipcache", {"--kv-probes", "random:0.1", NULL}},
    {"probes recent 10%", "zipcache", {"--kv-probes", "recent:0.1", NULL}},
    {"probes random+recent 5+5%", "zipcache", {"--kv-probes", "random+recent:0.05:0.05", NULL}},
    {"probes random+recent 2.5+2.5%", "zipcache", {"--kv-probes", "random+recent:0.025:0.025", NULL}},
    {"probes random+recent 10+10%", "zipcache", {"--kv-probes", "random+recent:0.1:0.1", NULL}},
};

static const study_run BITS[] = {
    {"zipcache", "zipcache", {NULL}},
    {"mikv", "mikv", {NULL}},
    {"zipcache K/V 4/2 (old widths)", "zipcache", {"--kv-hi-bits", "4", "--kv-lo-bits", "2", NULL}},
    {"kivi 2-bit", "kivi", {"--kv-bits", "2", NULL}},
    {"kivi 3-bit", "kivi", {"--kv-bits", "3", NULL}},
    {"kivi 4-bit", "kivi", {"--kv-bits", "4", NULL}},
    {"q4_0r", "q4_0r", {NULL}},
};

static const study_run ABLATION_BITS[] = {
    {"auto plan (default)", "zipcache", {NULL}},
    {"K/V 4/2, same widths", "zipcache", {"--kv-hi-bits", "4", "--kv-lo-bits", "2", NULL}},
    {"K 4/3, V 3/2", "zipcache",
     {"--kv-k-hi-bits", "4", "--kv-k-lo-bits", "3", "--kv-v-hi-bits", "3", "--kv-v-lo-bits", "2", NULL}},
    {"auto, keys in groups of 32", "zipcache", {"--kv-key-group", "32", NULL}},
    {"auto, keys not rotated", "zipcache", {"--kv-rotate", "off", NULL}},
    {"auto, rotated keys", "zipcache", {"--kv-rotate", "on", NULL}},
    {"auto, fixed stream gap 100", "zipcache", {"--kv-window-share", "0", NULL}},
    {"auto, plan by salient fraction", "zipcache", {"--kv-plan", "fraction", NULL}},
};

static const study_run LOCAL_LAYERS[] = {
    {"zipcache, local layers exact", "zipcache", {"--kv-local", "exact", NULL}},
    {"zipcache, local layers compressed", "zipcache", {"--kv-local", "compress", NULL}},
    {"zipcache, local layers compressed at 5 bits", "zipcache", {"--kv-local", "compress", "--kv-local-bits", "5", NULL}},
    {"kivi 4-bit", "kivi", {"--kv-bits", "4", NULL}},
    {"kivi 2-bit", "kivi", {"--kv-bits", "2", NULL}},
};

static int study_runs(const study_run *rs, int n, const zc_eval_opts *o, const zc_eval_sweep_opts *sw, run_list *l,
                      FILE *log) {
    for (int v = 0; v < n; v++) {
        if (!policy_available(rs[v].policy)) {
            fprintf(log, "sweep: policy %s is not in this build: '%s' skipped\n", rs[v].policy, rs[v].label);
            continue;
        }
        for (int b = 0; b < sw->n_bits; b++) {
            zc_kv_config cfg = o->kv;
            zc_eval_budget_config(rs[v].policy, sw->bits[b], &cfg);
            const char *bad = NULL;
            for (int a = 0; rs[v].args[a] && !bad; a += 2)
                if (zc_kv_config_parse_arg(&cfg, rs[v].args[a], rs[v].args[a + 1]) != 1) bad = rs[v].args[a];
            if (bad) {
                fprintf(log, "sweep: %s is not an option of this build: '%s' skipped\n", bad, rs[v].label);
                zc_clear_error();
                break;
            }
            int rc = add_run(l, rs[v].label, sw->bits[b], &cfg);
            if (rc != ZC_OK) return rc;
        }
    }
    return ZC_OK;
}

static int preset_runs(const char *preset, const zc_eval_opts *o, const zc_eval_sweep_opts *sw, run_list *l,
                       FILE *log) {
#define STUDY(name, table) \
    if (!strcmp(preset, name)) return study_runs(table, (int)(sizeof table / sizeof table[0]), o, sw, l, log)
    STUDY("ablation-saliency", SALIENCY);
    STUDY("ablation-probes", PROBES);
    STUDY("bits", BITS);
    STUDY("ablation-bits", ABLATION_BITS);
    STUDY("local-layers", LOCAL_LAYERS);
#undef STUDY
    return zc_error(ZC_ERR_ARG, "eval sweep: unknown preset '%s' (ablation-saliency, ablation-probes, bits, "
                    "ablation-bits, local-layers)", preset);
}

static int policy_runs(const zc_eval_opts *o, const zc_eval_sweep_opts *sw, run_list *l, FILE *log) {
    char buf[512];
    if (strlen(sw->policies) >= sizeof buf) return zc_error(ZC_ERR_ARG, "eval sweep: --policies list too long");
    strcpy(buf, sw->policies);
    for (char *save = NULL, *name = strtok_r(buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        zc_kv_config cfg = o->kv;
        if (!zc_eval_budget_config(name, 0, &cfg))
            return zc_error(ZC_ERR_ARG, "eval sweep: no bit-budget mapping for policy '%s'", name);
        if (!policy_available(name)) {
            fprintf(log, "sweep: policy %s is not in this build: skipped\n", name);
            continue;
        }
        for (int b = 0; b < sw->n_bits; b++) {
            cfg = o->kv;
            zc_eval_budget_config(name, sw->bits[b], &cfg);
            int rc = add_run(l, name, sw->bits[b], &cfg);
            if (rc != ZC_OK) return rc;
        }
    }
    return ZC_OK;
}

static double metric(const zc_eval_summary *s, const char *name) {
    for (int i = 0; i < s->n_metrics; i++)
        if (!strcmp(s->metrics[i].name, name)) return s->metrics[i].value;
    return NAN;
}

/* A CSV field: quoted, with quotes doubled. */
static void csv_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

typedef struct {
    double ratio, bits, window_share, ppl, ppl_ratio, kl_mean, kl_median, kl_p99, top1, comp_frac, tps;
    double rot; /* share of the layers (over all chunks) that stored rotated keys; NaN: no zipcache-family cache */
    char failed[200]; /* the error of a run that could not run ("" if it ran) */
} sweep_row;

static int write_csv(const char *path, const run_list *l, const sweep_row *rows) {
    FILE *f = fopen(path, "w");
    if (!f) return zc_error(ZC_ERR_IO, "%s: cannot create", path);
    fprintf(f, "label,policy,budget_bits,kv,compression_ratio,bits_per_element,window_share,perplexity,ppl_ratio,kl_mean,"
               "kl_median,kl_p99,top1_agreement,scored_on_compressed,tokens_per_s,rotated_key_layers,error\n");
    for (int i = 0; i < l->n; i++) {
        const sweep_row *r = &rows[i];
        csv_str(f, l->runs[i].label);
        fprintf(f, ",%s,%g,", l->runs[i].cfg.policy, l->runs[i].budget);
        csv_str(f, l->runs[i].desc);
        if (r->failed[0]) {
            fprintf(f, ",,,,,,,,,,,,,");
        } else {
            fprintf(f, ",%.4f,%.4f,%.4f,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.4f,%.1f,", r->ratio, r->bits, r->window_share,
                    r->ppl, r->ppl_ratio, r->kl_mean, r->kl_median, r->kl_p99, r->top1, r->comp_frac, r->tps);
            if (r->rot == r->rot) fprintf(f, "%.4f", r->rot); /* empty: not a zipcache-family cache */
            fputc(',', f);
        }
        csv_str(f, r->failed);
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) || bad) return zc_error(ZC_ERR_IO, "%s: write failed", path);
    return ZC_OK;
}

/* A self-contained gnuplot script (data inline as datablocks, one per
 * label) drawing mean KL (log scale) and top-1 agreement against the
 * compression ratio; run by gnuplot if installed. */
static int write_plot(const char *svg, const char *title, const run_list *l, const sweep_row *rows, FILE *log) {
    char gp[1100];
    snprintf(gp, sizeof gp, "%s.gp", svg);
    FILE *f = fopen(gp, "w");
    if (!f) return zc_error(ZC_ERR_IO, "%s: cannot create", gp);
    fprintf(f, "# generated by zipcache eval sweep; run: gnuplot '%s'\n", gp);
    int n_labels = 0;
    const char *labels[64];
    for (int i = 0; i < l->n; i++) {
        if (rows[i].failed[0]) continue;
        bool seen = false;
        for (int k = 0; k < n_labels; k++) seen |= !strcmp(labels[k], l->runs[i].label);
        if (seen || n_labels == 64) continue;
        labels[n_labels] = l->runs[i].label;
        fprintf(f, "$d%d << EOD\n", n_labels);
        for (int j = 0; j < l->n; j++)
            if (!strcmp(l->runs[j].label, labels[n_labels]) && !rows[j].failed[0])
                fprintf(f, "%.6g %.6g %.6g\n", rows[j].ratio, rows[j].kl_mean > 0 ? rows[j].kl_mean : 1e-9,
                        rows[j].top1);
        fprintf(f, "EOD\n");
        n_labels++;
    }
    if (n_labels == 0) {
        fclose(f);
        remove(gp);
        fprintf(log, "sweep: no run succeeded; no plot\n");
        return ZC_OK;
    }
    fprintf(f, "set terminal svg size 1100,460 dynamic font 'sans,12' noenhanced\nset output '%s'\n", svg);
    fprintf(f, "set multiplot layout 1,2 title \"%s\"\n", title);
    fprintf(f, "set grid\nset key outside bottom center horizontal\nset xlabel 'KV compression ratio vs fp16 "
               "(measured, all bytes)'\n");
    for (int panel = 0; panel < 2; panel++) {
        if (panel == 0)
            fprintf(f, "set logscale y\nset ylabel 'mean KL(fp16 || policy), nats'\nplot ");
        else
            fprintf(f, "unset logscale y\nset ylabel 'top-1 agreement with fp16'\nset yrange [*:1]\nplot ");
        for (int k = 0; k < n_labels; k++)
            fprintf(f, "%s$d%d using 1:%d with linespoints lw 2 pt %d title '%s'", k ? ", " : "", k, panel ? 3 : 2,
                    k + 4, labels[k]);
        fprintf(f, "\n");
    }
    fprintf(f, "unset multiplot\n");
    int bad = ferror(f);
    if (fclose(f) || bad) return zc_error(ZC_ERR_IO, "%s: write failed", gp);
    if (access("/usr/bin/gnuplot", X_OK) != 0) {
        fprintf(log, "sweep: gnuplot not found; the plot script is %s\n", gp);
        return ZC_OK;
    }
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "/usr/bin/gnuplot '%s'", gp);
    if (strchr(gp, '\'') || system(cmd) != 0) return zc_error(ZC_ERR_IO, "%s: gnuplot failed", gp);
    return ZC_OK;
}

int zc_eval_sweep(const zc_model *m, const char *model_path, const zc_eval_opts *o, const zc_eval_ppl_opts *p,
                  const zc_eval_sweep_opts *sw, FILE *log) {
    if (!sw->csv) return zc_error(ZC_ERR_ARG, "eval sweep: an output CSV is needed (--csv FILE)");
    if (o->results) return zc_error(ZC_ERR_ARG, "eval sweep: --results is per run; not supported for sweeps");
    run_list l = {0};
    int rc = sw->preset ? preset_runs(sw->preset, o, sw, &l, log) : policy_runs(o, sw, &l, log);
    if (rc == ZC_OK && l.n == 0) rc = zc_error(ZC_ERR_ARG, "eval sweep: nothing to run");
    sweep_row *rows = rc == ZC_OK ? zc_calloc((size_t)l.n, sizeof *rows) : NULL;
    if (rc == ZC_OK && !rows) rc = ZC_ERR_NOMEM;
    char base_path[1100] = "";
    zc_eval_ppl_opts pp = *p;
    pp.save_kl_base = NULL;
    if (rc == ZC_OK && !p->kl_base) {
        /* The fp16 base, once for all runs, computed the same way as they are. */
        snprintf(base_path, sizeof base_path, "%s.klbase", sw->csv);
        zc_eval_opts bo = *o;
        zc_kv_config_default(&bo.kv);
        strcpy(bo.kv.policy, "fp16");
        zc_eval_ppl_opts bp = *p;
        bp.kl_base = NULL;
        bp.save_kl_base = base_path;
        zc_eval_summary bs;
        fprintf(log, "sweep: fp16 base ...\n");
        rc = zc_eval_ppl(m, model_path, &bo, &bp, &bs);
        if (rc == ZC_OK) fprintf(log, "sweep: fp16 base perplexity %.4f\n", bs.score);
        pp.kl_base = base_path;
    }
    for (int i = 0; rc == ZC_OK && i < l.n; i++) {
        zc_eval_opts ro = *o;
        ro.kv = l.runs[i].cfg;
        zc_eval_summary s;
        fprintf(log, "sweep: [%d/%d] %s @ %g bits: %s\n", i + 1, l.n, l.runs[i].label, l.runs[i].budget,
                l.runs[i].desc);
        sweep_row *r = &rows[i];
        rc = zc_eval_ppl(m, model_path, &ro, &pp, &s);
        if (rc == ZC_ERR_NOMEM || rc == ZC_ERR_IO) break;
        if (rc != ZC_OK) { /* e.g. a policy that cannot handle this model's head size: the others still run */
            fprintf(log, "sweep:   failed: %s\n", zc_last_error());
            snprintf(r->failed, sizeof r->failed, "%s", zc_last_error());
            rc = ZC_OK;
            continue;
        }
        r->ratio = zc_eval_summary_ratio(&s);
        r->bits = zc_eval_summary_bits(&s);
        r->window_share = s.kv_window_bytes / s.kv_total_bytes;
        r->ppl = s.score;
        r->ppl_ratio = metric(&s, "ppl_ratio");
        r->kl_mean = metric(&s, "kl_mean");
        r->kl_median = metric(&s, "kl_median");
        r->kl_p99 = metric(&s, "kl_p99");
        r->top1 = metric(&s, "top1_agreement");
        r->comp_frac = metric(&s, "scored_on_compressed") / metric(&s, "scored_tokens");
        r->tps = s.seconds > 0 ? s.tokens / s.seconds : 0;
        r->rot = s.kv_rot_chosen > 0 ? s.kv_rot_layers / s.kv_rot_chosen : NAN;
        fprintf(log, "sweep:   ratio %.2fx (%.2f bits)  ppl %.4f (x%.4f)  KL mean %.4g median %.4g p99 %.4g  top-1 %.4f\n",
                r->ratio, r->bits, r->ppl, r->ppl_ratio, r->kl_mean, r->kl_median, r->kl_p99, r->top1);
    }
    if (rc == ZC_OK) rc = write_csv(sw->csv, &l, rows);
    if (rc == ZC_OK && sw->plot) {
        char title[600];
        const char *slash = strrchr(model_path, '/');
        snprintf(title, sizeof title, "%s on %s", slash ? slash + 1 : model_path,
                 strrchr(p->text, '/') ? strrchr(p->text, '/') + 1 : p->text);
        rc = write_plot(sw->plot, title, &l, rows, log);
    }
    if (rc == ZC_OK) {
        fprintf(log, "\n%-30s %6s %8s %7s %10s %10s %10s %10s %7s\n", "run", "budget", "ratio", "bits", "ppl",
                "KL mean", "KL median", "KL p99", "top-1");
        for (int i = 0; i < l.n; i++)
            if (rows[i].failed[0])
                fprintf(log, "%-30.30s %6g   failed: %s\n", l.runs[i].label, l.runs[i].budget, rows[i].failed);
            else
                fprintf(log, "%-30.30s %6g %7.2fx %7.2f %10.4f %10.3g %10.3g %10.3g %7.4f\n", l.runs[i].label,
                        l.runs[i].budget, rows[i].ratio, rows[i].bits, rows[i].ppl, rows[i].kl_mean,
                        rows[i].kl_median, rows[i].kl_p99, rows[i].top1);
    }
    if (base_path[0]) remove(base_path);
    free(rows);
    free(l.runs);
    return rc;
}
