/* The end-of-run report every eval shares: a human table and one JSON record
 * with the model, the KV policy and all its parameters, the measured
 * compression, the score and the speed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_tasks.h"

void zc_eval_opts_default(zc_eval_opts *o) {
    memset(o, 0, sizeof *o);
    zc_kv_config_default(&o->kv);
    o->progress = true;
}

void zc_eval_metric_add(zc_eval_summary *s, const char *name, double value) {
    if (s->n_metrics < ZC_EVAL_MAX_METRICS) s->metrics[s->n_metrics++] = (zc_eval_metric){name, value};
}

void zc_eval_summary_add_cost(zc_eval_summary *s, const zc_eval_cost *c) {
    s->tokens += c->tokens;
    s->seconds += c->seconds;
    s->kv_total_bytes += c->kv_total;
    s->kv_window_bytes += c->kv_window;
    s->kv_elements += c->kv_elements;
    s->kv_rot_layers += c->kv_rot_layers;
    s->kv_rot_chosen += c->kv_rot_chosen;
}

double zc_eval_summary_ratio(const zc_eval_summary *s) {
    return s->kv_total_bytes > 0 ? 16.0 * s->kv_elements / (8.0 * s->kv_total_bytes) : NAN;
}

double zc_eval_summary_bits(const zc_eval_summary *s) {
    return s->kv_elements > 0 ? 8.0 * s->kv_total_bytes / s->kv_elements : NAN;
}

void zc_eval_summary_print(FILE *f, const zc_eval_summary *s) {
    fprintf(f, "\n%-26s %s\n", "task", s->task);
    fprintf(f, "%-26s %s\n", "model", s->model);
    fprintf(f, "%-26s %s\n", "data", s->data);
    fprintf(f, "%-26s %s\n", "kv cache", s->kv_desc);
    fprintf(f, "%-26s %d\n", "context", s->n_ctx);
    fprintf(f, "%-26s %.4f\n", s->score_name, s->score);
    for (int i = 0; i < s->n_metrics; i++) {
        double v = s->metrics[i].value;
        if (v == floor(v) && fabs(v) < 1e15)
            fprintf(f, "%-26s %.0f\n", s->metrics[i].name, v);
        else
            fprintf(f, "%-26s %.6g\n", s->metrics[i].name, v);
    }
    if (s->kv_total_bytes > 0)
        fprintf(f, "%-26s %.3fx (%.3f bits/element, all bytes counted; %.1f%% of them in the full-precision window)\n",
                "kv compression vs fp16", zc_eval_summary_ratio(s), zc_eval_summary_bits(s),
                100.0 * s->kv_window_bytes / s->kv_total_bytes);
    else
        fprintf(f, "%-26s n/a (nothing ran)\n", "kv compression vs fp16");
    if (s->kv_rot_chosen > 0)
        fprintf(f, "%-26s %.1f%% (%.0f of %.0f layers over all items)\n", "rotated key layers",
                100.0 * s->kv_rot_layers / s->kv_rot_chosen, s->kv_rot_layers, s->kv_rot_chosen);
    fprintf(f, "%-26s %.1f (%.0f tokens in %.1f s)\n", "tokens/s", s->seconds > 0 ? s->tokens / s->seconds : 0.0,
            s->tokens, s->seconds);
    if (s->note[0]) fprintf(f, "note: %s\n", s->note);
}

/* A float option: its shortest decimal form ("0.6", not 0.60000002384185791). */
static void json_float(zc_strbuf *b, float x) {
    if (!isfinite(x)) {
        zc_sb_append(b, "null", 4);
        return;
    }
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) { /* 9 digits always round-trip a float */
        snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x) break;
    }
    zc_sb_append(b, buf, strlen(buf));
}

void zc_eval_summary_json(const zc_eval_summary *s, zc_strbuf *b) {
    const zc_kv_config *k = &s->kv;
    zc_sb_printf(b, "{\"task\":");
    zc_sb_json_str(b, s->task, strlen(s->task));
    zc_sb_printf(b, ",\"model\":");
    zc_sb_json_str(b, s->model, strlen(s->model));
    zc_sb_printf(b, ",\"data\":");
    zc_sb_json_str(b, s->data, strlen(s->data));
    zc_sb_printf(b, ",\"n_ctx\":%d,\"policy\":", s->n_ctx);
    zc_sb_json_str(b, k->policy, strlen(k->policy));
    zc_sb_printf(b, ",\"kv\":");
    zc_sb_json_str(b, s->kv_desc, strlen(s->kv_desc));
    zc_sb_printf(b,
                 ",\"kv_params\":{\"k_hi_bits\":%d,\"k_lo_bits\":%d,\"v_hi_bits\":%d,\"v_lo_bits\":%d,\"bits\":%d,"
                 "\"denom\":%d,\"decode_rule\":%d,\"int8_query\":%d,\"salient_ratio\":",
                 k->k_hi_bits, k->k_lo_bits, k->v_hi_bits, k->v_lo_bits, zc_kv_config_bits(k), (int)k->denom,
                 (int)k->decode_rule, k->int8_query);
    json_float(b, k->salient_ratio);
    zc_sb_printf(b, ",\"target_bits\":");
    json_float(b, k->target_bits);
    zc_sb_printf(b, ",\"probes\":");
    zc_sb_json_str(b, k->probes, strlen(k->probes));
    zc_sb_printf(b, ",\"stream_gap\":%d,\"sinks\":%d,\"key_group\":%d,\"group_size\":%d,\"residual\":%d,"
                    "\"budget_ratio\":",
                 k->stream_gap, k->sinks, k->key_group, k->group_size, k->residual);
    json_float(b, k->budget_ratio);
    zc_sb_printf(b, ",\"seed\":%llu,\"budget_bytes\":%zu}", (unsigned long long)k->seed, k->budget_bytes);
    zc_sb_printf(b, ",\"compression_ratio\":");
    zc_sb_json_num(b, zc_eval_summary_ratio(s));
    zc_sb_printf(b, ",\"bits_per_element\":");
    zc_sb_json_num(b, zc_eval_summary_bits(s));
    zc_sb_printf(b, ",\"rotated_key_layers\":");
    zc_sb_json_num(b, s->kv_rot_chosen > 0 ? s->kv_rot_layers / s->kv_rot_chosen : NAN);
    zc_sb_printf(b, ",\"kv_window_share\":");
    zc_sb_json_num(b, s->kv_total_bytes > 0 ? s->kv_window_bytes / s->kv_total_bytes : NAN);
    zc_sb_printf(b, ",\"score_name\":");
    zc_sb_json_str(b, s->score_name, strlen(s->score_name));
    zc_sb_printf(b, ",\"score\":");
    zc_sb_json_num(b, s->score);
    for (int i = 0; i < s->n_metrics; i++) {
        zc_sb_printf(b, ",");
        zc_sb_json_str(b, s->metrics[i].name, strlen(s->metrics[i].name));
        zc_sb_printf(b, ":");
        zc_sb_json_num(b, s->metrics[i].value);
    }
    zc_sb_printf(b, ",\"tokens\":");
    zc_sb_json_num(b, s->tokens);
    zc_sb_printf(b, ",\"seconds\":");
    zc_sb_json_num(b, s->seconds);
    zc_sb_printf(b, ",\"tokens_per_s\":");
    zc_sb_json_num(b, s->seconds > 0 ? s->tokens / s->seconds : 0.0);
    zc_sb_printf(b, ",\"note\":");
    zc_sb_json_str(b, s->note, strlen(s->note));
    zc_sb_printf(b, "}");
}
