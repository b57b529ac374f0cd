/* Perplexity and KL fidelity, llama.cpp's method adapted to compressed caches.
 *
 * The text is tokenized once and cut into chunks of n_ctx tokens; each chunk
 * starts with BOS and its second half is scored (tokens n_ctx/2 .. n_ctx-1),
 * the first half being context. A compressed cache only matters when later
 * tokens read it, and a chunk scored in one prefill never does (prefill
 * attends over the exact K/V). So each chunk is run as generation would run
 * it: prefill tokens 0 .. n_ctx/2-2 (the policy compresses them), then feed
 * tokens n_ctx/2-1 .. n_ctx-2 in decode calls of `block` tokens (1 by
 * default), each call's logits predicting the next token. Every policy,
 * fp16 included, runs this way, so the numbers are comparable and the fp16
 * run is a valid KL base.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/run.h"
#include "util/error.h"
#include "util/file.h"
#include "util/timer.h"

/* Whether the cache holds entries stored below fp16 precision, i.e. a
 * compressed (or evicted) part that the next step's attention will read.
 * The usage struct has no compressed-token count, so: something is stored
 * outside the full-precision window and all that is stored outside the
 * window is smaller than fp16 would be for the tokens represented. fp16 and
 * fp32 caches never qualify (their codes are 2 and 4 bytes per element). */
static bool cache_has_compressed(const zc_kv_usage *u) {
    return u->codes > 0 && (double)(u->total - u->window) < 2.0 * (double)u->elements;
}

/* Tokenize the text, or only enough of it. Tokenizing 1.3 MB of WikiText to
 * score two chunks is wasted time, so with a known need the text is cut at a
 * line end well past it (12 bytes per token, more than any of our
 * tokenizers' average) and the whole text is used only if that falls short.
 * The cut cannot change the tokens used: 64 tokens of slack stay beyond them. */
static int tokenize_text(const zc_model *m, const char *path, int64_t need_tokens, int32_t **ids, int *n_ids) {
    char *text;
    size_t len;
    int rc = zc_read_file(path, (size_t)1 << 31, &text, &len);
    if (rc != ZC_OK) return rc;
    size_t use = len;
    if (need_tokens > 0 && (double)(need_tokens + 64) * 12.0 + 4096 < (double)len) {
        use = (size_t)((need_tokens + 64) * 12 + 4096);
        while (use < len && text[use - 1] != '\n') use++;
    }
    rc = zc_model_tokenize(m, text, use, 0, 0, ids, n_ids);
    if (rc == ZC_OK && use < len && *n_ids < need_tokens + 64) {
        free(*ids);
        rc = zc_model_tokenize(m, text, len, 0, 0, ids, n_ids);
    }
    free(text);
    if (rc != ZC_OK) return zc_error_prefix(rc, "%s", path);
    return ZC_OK;
}

/* Restore a resumed chunk's numbers from its --results record. */
static int resume_chunk(zc_eval_session *s, const zc_eval_done *d, zc_eval_ppl_acc *acc, bool with_base) {
    int rc = zc_eval_record_resume(s, d);
    if (rc != ZC_OK) return rc;
    zc_json_doc *doc;
    const zc_json *root;
    if ((rc = zc_json_parse(d->json, strlen(d->json), s->results.path, &doc, &root)) != ZC_OK) return rc;
    zc_eval_ppl_acc part = {0};
    int64_t n = 0, n_comp = 0, top1 = 0;
    const zc_json *kl = zc_json_get(root, "kl");
    bool ok = zc_json_num(zc_json_get(root, "nll_sum"), &part.sum_nll) && zc_json_int(zc_json_get(root, "n"), &n) &&
              zc_json_int(zc_json_get(root, "n_compressed"), &n_comp);
    if (ok && with_base)
        ok = zc_json_num(zc_json_get(root, "base_nll_sum"), &part.sum_base_nll) &&
             zc_json_int(zc_json_get(root, "top1_same"), &top1) && kl && kl->type == ZC_JSON_ARRAY &&
             (int64_t)kl->len == n;
    if (ok && with_base) {
        part.kl = zc_malloc(kl->len * sizeof *part.kl);
        ok = part.kl != NULL;
        for (size_t i = 0; ok && i < kl->len; i++) ok = zc_json_num(&kl->items[i], &part.kl[i]);
        part.n_kl = part.kl_cap = kl->len;
    }
    zc_json_free(doc);
    if (!ok) {
        zc_eval_ppl_acc_free(&part);
        return zc_error(ZC_ERR_FORMAT, "%s: chunk %lld: incomplete ppl record (was it made without --kl-base?)",
                        s->results.path, (long long)d->item);
    }
    part.n_scored = n;
    part.n_compressed = n_comp;
    part.n_top1_same = top1;
    rc = zc_eval_ppl_merge(acc, &part);
    zc_eval_ppl_acc_free(&part);
    return rc;
}

/* One chunk: prefill the first half, decode the scored half in blocks.
 * The cache's bytes are those every scored step read (cost->kv_*: sums over
 * the steps, so their ratio is the mean over the whole decode), not a
 * snapshot at the chunk's end, which would flatter or penalize a policy by
 * where its window's fill happens to stand when the chunk ends. */
static int run_chunk(zc_eval_session *s, const zc_eval_ppl_opts *p, const int32_t *chunk, int64_t chunk_index,
                     const zc_klbase *base, zc_klbase_writer *save, zc_eval_ppl_acc *part, zc_eval_cost *cost) {
    int n_ctx = s->n_ctx, first = n_ctx / 2;
    int rc = zc_context_reset(s->ctx);
    if (rc != ZC_OK) return rc;
    if (first - 1 > 0 && (rc = zc_decode(s->ctx, chunk, first - 1, ZC_LOGITS_NONE, NULL)) != ZC_OK) return rc;
    cost->tokens = first - 1;
    double kv_total = 0, kv_window = 0, kv_elements = 0;
    for (int pos = first - 1; pos < n_ctx - 1;) {
        int nb = n_ctx - 1 - pos < p->block ? n_ctx - 1 - pos : p->block;
        zc_kv_usage u;
        zc_context_kv_usage(s->ctx, &u); /* what this step's attention will read */
        bool compressed = cache_has_compressed(&u);
        kv_total += (double)u.total, kv_window += (double)u.window, kv_elements += (double)u.elements;
        if ((rc = zc_decode(s->ctx, chunk + pos, nb, ZC_LOGITS_ALL, s->logits)) != ZC_OK) return rc;
        cost->tokens += nb;
        for (int j = 0; j < nb; j++) {
            const float *row = s->logits + (size_t)j * s->n_vocab;
            int target = chunk[pos + j + 1];
            const zc_fp16 *blp = NULL;
            int btop = 0;
            double bnll = 0;
            if (base) {
                uint64_t rec = (uint64_t)(chunk_index - base->first_chunk) * (uint64_t)(n_ctx - first) +
                               (uint64_t)(pos + j + 1 - first);
                int btarget;
                zc_klbase_record(base, rec, &btarget, &btop, &bnll, &blp);
                if (btarget != target)
                    return zc_error(ZC_ERR_ARG,
                                    "KL base: chunk %lld token %d is %d in the base but %d here (different text, "
                                    "tokenizer or context)",
                                    (long long)chunk_index, pos + j + 1, btarget, target);
            }
            if ((rc = zc_eval_ppl_add(part, row, s->n_vocab, target, blp, btop, bnll, compressed)) != ZC_OK) return rc;
            if (save && (rc = zc_klbase_append(save, row, target)) != ZC_OK) return rc;
        }
        pos += nb;
    }
    zc_eval_session_sample_kv(s, cost); /* the rotation counts; the bytes are the decode's */
    cost->kv_total = kv_total, cost->kv_window = kv_window, cost->kv_elements = kv_elements;
    return ZC_OK;
}

static void chunk_record(zc_strbuf *b, const zc_eval_session *s, int64_t item, const zc_eval_ppl_acc *part,
                         const zc_eval_cost *cost, bool with_base) {
    zc_eval_record_begin(b, s, item, exp(part->sum_nll / (double)part->n_scored), cost);
    zc_sb_printf(b, ",\"nll_sum\":");
    zc_sb_json_num(b, part->sum_nll);
    zc_sb_printf(b, ",\"n\":%lld,\"n_compressed\":%lld", (long long)part->n_scored, (long long)part->n_compressed);
    if (with_base) {
        zc_sb_printf(b, ",\"base_nll_sum\":");
        zc_sb_json_num(b, part->sum_base_nll);
        zc_sb_printf(b, ",\"top1_same\":%lld,\"kl\":[", (long long)part->n_top1_same);
        for (size_t i = 0; i < part->n_kl; i++) {
            if (i) zc_sb_append(b, ",", 1);
            zc_sb_json_num(b, part->kl[i]);
        }
        zc_sb_append(b, "]", 1);
    }
    zc_sb_append(b, "}", 1);
}

static int check_ppl_opts(const zc_eval_opts *o, const zc_eval_ppl_opts *p) {
    if (!p->text) return zc_error(ZC_ERR_ARG, "eval ppl: a text file is needed (-f FILE)");
    if (p->block < 1) return zc_error(ZC_ERR_ARG, "eval ppl: --block must be at least 1");
    if (p->save_kl_base && strcmp(o->kv.policy, "fp16") && strcmp(o->kv.policy, "fp32"))
        return zc_error(ZC_ERR_ARG, "eval ppl: --save-kl-base needs an uncompressed cache (--kv fp16), not %s",
                        o->kv.policy);
    if (p->save_kl_base && o->results)
        return zc_error(ZC_ERR_ARG, "eval ppl: --save-kl-base writes every chunk; it cannot resume from --results");
    if (p->save_kl_base && p->kl_base && !strcmp(p->save_kl_base, p->kl_base))
        return zc_error(ZC_ERR_ARG, "eval ppl: --kl-base and --save-kl-base name the same file");
    return ZC_OK;
}

static void ppl_summary(zc_eval_summary *sum, zc_eval_ppl_acc *acc, int64_t n_chunks, int block, bool with_base) {
    sum->score_name = "perplexity";
    double n = (double)acc->n_scored;
    sum->score = n > 0 ? exp(acc->sum_nll / n) : NAN;
    zc_eval_metric_add(sum, "chunks", (double)n_chunks);
    zc_eval_metric_add(sum, "scored_tokens", n);
    zc_eval_metric_add(sum, "scored_on_compressed", (double)acc->n_compressed);
    zc_eval_metric_add(sum, "decode_block", block);
    zc_eval_metric_add(sum, "mean_nll", n > 0 ? acc->sum_nll / n : NAN);
    if (with_base) {
        zc_eval_stats st;
        zc_eval_summarize(acc->kl, acc->n_kl, &st);
        double base_ppl = n > 0 ? exp(acc->sum_base_nll / n) : NAN;
        zc_eval_metric_add(sum, "base_perplexity", base_ppl);
        zc_eval_metric_add(sum, "ppl_ratio", sum->score / base_ppl);
        zc_eval_metric_add(sum, "kl_mean", st.mean);
        zc_eval_metric_add(sum, "kl_median", st.median);
        zc_eval_metric_add(sum, "kl_p99", st.p99);
        zc_eval_metric_add(sum, "kl_max", st.max);
        zc_eval_metric_add(sum, "top1_agreement", n > 0 ? (double)acc->n_top1_same / n : NAN);
    }
}

/* Tokens the run needs (0: unknown, tokenize everything): up to the last chunk asked for. */
static int64_t tokens_needed(const zc_eval_opts *o, const zc_eval_ppl_opts *p, int n_ctx) {
    if (p->chunks <= 0 && o->limit <= 0) return 0;
    int64_t last = p->chunks > 0 ? p->chunks : o->offset + o->limit;
    if (o->limit > 0 && o->offset + o->limit < last) last = o->offset + o->limit;
    return last * n_ctx;
}

/* Open the KL base and check it holds the distributions of chunks [c0, c1) of this run. */
static int open_base(const char *path, const zc_eval_session *s, int64_t c0, int64_t c1, zc_klbase *base) {
    int rc = zc_klbase_open(base, path);
    if (rc != ZC_OK) return rc;
    uint64_t per_chunk = (uint64_t)(s->n_ctx - s->n_ctx / 2);
    if (base->n_vocab != s->n_vocab || base->ctx != s->n_ctx)
        return zc_error(ZC_ERR_ARG, "%s: KL base has vocab %d, ctx %d; this run has vocab %d, ctx %d", path,
                        base->n_vocab, base->ctx, s->n_vocab, s->n_ctx);
    if (c0 < base->first_chunk || (uint64_t)(c1 - base->first_chunk) * per_chunk > base->n_records)
        return zc_error(ZC_ERR_ARG, "%s: KL base covers chunks %d..%llu; this run needs %lld..%lld", path,
                        base->first_chunk, (unsigned long long)(base->first_chunk + base->n_records / per_chunk) - 1,
                        (long long)c0, (long long)c1 - 1);
    return ZC_OK;
}

int zc_eval_ppl(const zc_model *m, const char *model_path, const zc_eval_opts *o, const zc_eval_ppl_opts *p,
                zc_eval_summary *sum) {
    int rc = check_ppl_opts(o, p);
    if (rc != ZC_OK) return rc;
    char task_opts[64];
    /* "kv mean": records whose cache bytes are the decode's mean (earlier ones held the chunk's end) */
    snprintf(task_opts, sizeof task_opts, "block %d%s kv mean", p->block, p->kl_base ? " kl" : "");
    zc_eval_session s;
    if ((rc = zc_eval_session_open(&s, m, model_path, o, "ppl", p->text, task_opts, p->block, sum)) != ZC_OK)
        return rc;
    int n_ctx = s.n_ctx;
    int32_t *ids = NULL, *chunk = NULL;
    int n_ids = 0;
    zc_klbase base = {0};
    zc_klbase_writer save = {0};
    zc_eval_ppl_acc acc = {0}, part = {0};
    zc_strbuf rec = {0};
    bool with_base = p->kl_base != NULL;
    if (n_ctx < 4) {
        rc = zc_error(ZC_ERR_ARG, "eval ppl: context %d is too small", n_ctx);
        goto done;
    }
    if ((rc = tokenize_text(m, p->text, tokens_needed(o, p, n_ctx), &ids, &n_ids)) != ZC_OK) goto done;
    int64_t total = n_ids / n_ctx;
    if (p->chunks > 0 && p->chunks < total) total = p->chunks;
    if (total == 0) {
        rc = zc_error(ZC_ERR_ARG, "%s: %d tokens, fewer than one chunk of %d", p->text, n_ids, n_ctx);
        goto done;
    }
    int64_t c0, c1;
    zc_eval_item_range(o, total, &c0, &c1);
    if (with_base && (rc = open_base(p->kl_base, &s, c0, c1, &base)) != ZC_OK) goto done;
    if (p->save_kl_base && (rc = zc_klbase_create(&save, p->save_kl_base, s.n_vocab, n_ctx, (int)c0)) != ZC_OK)
        goto done;
    if (!(chunk = zc_malloc((size_t)n_ctx * sizeof *chunk))) {
        rc = ZC_ERR_NOMEM;
        goto done;
    }
    int64_t resumed = 0;
    for (int64_t c = c0; c < c1; c++) resumed += zc_eval_results_find(&s.results, c) != NULL;
    zc_eval_progress_start(&s.progress, "ppl", c1 - c0, resumed);
    int64_t done_items = resumed;
    for (int64_t c = c0; c < c1; c++) {
        const zc_eval_done *d = zc_eval_results_find(&s.results, c);
        if (d) {
            if ((rc = resume_chunk(&s, d, &acc, with_base)) != ZC_OK) goto done;
            continue;
        }
        memcpy(chunk, ids + c * n_ctx, (size_t)n_ctx * sizeof *chunk);
        if (s.info->bos >= 0) chunk[0] = s.info->bos;
        double t0 = zc_now();
        zc_eval_cost cost;
        zc_eval_ppl_acc_free(&part);
        rc = run_chunk(&s, p, chunk, c, with_base ? &base : NULL, p->save_kl_base ? &save : NULL, &part, &cost);
        if (rc != ZC_OK) goto done;
        cost.seconds = zc_now() - t0;
        zc_eval_summary_add_cost(sum, &cost);
        if ((rc = zc_eval_ppl_merge(&acc, &part)) != ZC_OK) goto done;
        rec.len = 0;
        chunk_record(&rec, &s, c, &part, &cost, with_base);
        if (rec.err) {
            rc = rec.err;
            goto done;
        }
        if ((rc = zc_eval_results_append(&s.results, rec.s)) != ZC_OK) goto done;
        if (s.show_progress) zc_eval_progress_update(&s.progress, ++done_items, false);
    }
    if (s.show_progress) zc_eval_progress_update(&s.progress, c1 - c0, true);
    char saved[1200] = "";
    if (p->save_kl_base) {
        uint64_t n_rec = save.n_records;
        rc = zc_klbase_close(&save);
        if (rc != ZC_OK) goto done;
        size_t rec_bytes = ZC_KLBASE_RECORD_BYTES(s.n_vocab);
        snprintf(saved, sizeof saved, "; KL base written to %s: %llu scored tokens x %zu bytes + %d = %.2f MB",
                 p->save_kl_base, (unsigned long long)n_rec, rec_bytes, ZC_KLBASE_HEADER_BYTES,
                 ((double)n_rec * (double)rec_bytes + ZC_KLBASE_HEADER_BYTES) / 1e6);
    }
    ppl_summary(sum, &acc, c1 - c0, p->block, with_base);
    snprintf(sum->note, sizeof sum->note,
             "chunks %lld..%lld of %d tokens; scored tokens %d..%d of each chunk, decoded %d per call against "
             "the cache after a prefill of %d tokens%.300s", /* the note has room for ~300 more bytes */
             (long long)c0, (long long)c1 - 1, n_ctx, n_ctx / 2, n_ctx - 1, p->block, n_ctx / 2 - 1,
             saved);
done:
    if (rc != ZC_OK && save.f) zc_klbase_abandon(&save);
    zc_sb_free(&rec);
    zc_eval_ppl_acc_free(&part);
    zc_eval_ppl_acc_free(&acc);
    zc_klbase_close_reader(&base);
    free(chunk);
    free(ids);
    zc_eval_session_close(&s);
    return rc;
}
