/* zipcache run: generate text from a prompt, streaming it to stdout (the
 * prompt first, as llama.cpp does), with timings and memory on stderr.
 *
 * Context rule: a prompt longer than the context is an error; generation
 * stops when the context is full (with a note on stderr), at an
 * end-of-generation token, or after -n tokens. A decode step that fails
 * (the --kv-budget reached, see zc_decode) ends the text, prints the memory
 * summary and then the reason, and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cmds.h"
#include "kv/kv.h"
#include "util/file.h"
#include "util/timer.h"
#include "zipcache.h"

#define MAX_PROMPT_FILE (64u << 20)

static const char USAGE[] =
    "usage: zipcache run [-m MODEL] [-p PROMPT | -f FILE] [options]\n"
    "  -m PATH              GGUF file or Hugging Face directory (default: stories260K from the assets)\n"
    "  -p TEXT              prompt (default: empty, i.e. start from BOS)\n"
    "  -f FILE              read the prompt from a file\n"
    "  -n N                 tokens to generate (default -1: until end of text or full context)\n"
    "  --prompt-cache FILE  reuse the KV cache saved in FILE when the prompt starts with its tokens, and\n"
    "                       save the prompt's cache there (all but its last token) for the next run\n"
    "  -c N                 context size in tokens (default: the model's)\n"
    "  -t N                 threads (default: all cores)\n"
    "  -b N                 prompt tokens per forward batch (default 512)\n"
    "  --temp T             temperature, 0 = greedy (default 0.8)\n"
    "  --top-k K            (default 40, 0 = off)\n"
    "  --top-p P            (default 0.95, 1 = off)\n"
    "  --min-p P            (default 0.05, 0 = off)\n"
    "  --repeat-penalty R   (default 1 = off)\n"
    "  --repeat-last-n N    tokens the penalty looks back (default 64)\n"
    "  --seed S             sampling seed (default: from the clock, printed)\n"
    "  --kv POLICY, --kv-*  KV cache policy (default zipcache: salient tokens at more bits than the rest,\n"
    "                       streaming compression every 100 tokens) and its options, listed below\n";

typedef struct {
    const char *model, *prompt, *prompt_file, *dump_logits, *prompt_cache;
    long long n_predict;
    zc_context_params cp;
    zc_sampler_params sp;
    zc_kv_config kv;
    int seed_given;
} run_opts;

/* Options that take a value, besides the KV ones. */
static const char *const OPTIONS[] = {"-m", "-p", "-f", "--dump-logits", "--prompt-cache", "-n", "-c", "-t", "-b", "--temp", "--top-k",
                                      "--top-p", "--min-p", "--repeat-penalty", "--repeat-last-n", "--seed", NULL};

/* Returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, run_opts *o) {
    const char *cmd = "run";
    zc_context_params_default(&o->cp);
    zc_sampler_params_default(&o->sp);
    zc_kv_config_default(&o->kv);
    o->n_predict = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long long n;
        double f;
        int rc, next = cli_next_option(cmd, USAGE, argc, argv, &i, OPTIONS, &o->kv, &v, &rc);
        if (next == CLI_NEXT_EXIT) return rc;
        if (next == CLI_NEXT_DONE) continue;
        if (!strcmp(a, "-m")) {
            o->model = v;
        } else if (!strcmp(a, "-p")) {
            o->prompt = v;
        } else if (!strcmp(a, "-f")) {
            o->prompt_file = v;
        } else if (!strcmp(a, "--prompt-cache")) {
            o->prompt_cache = v;
        } else if (!strcmp(a, "--dump-logits")) { /* hidden: for the reference tests */
            o->dump_logits = v;
        } else if (!strcmp(a, "-n")) {
            if (!cli_int(cmd, a, v, -1, 1 << 30, &o->n_predict)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-c")) {
            if (!cli_int(cmd, a, v, 1, 1 << 24, &n)) return CLI_EXIT_USAGE;
            o->cp.n_ctx = (int)n;
        } else if (!strcmp(a, "-t")) {
            if (!cli_int(cmd, a, v, 1, 1024, &n)) return CLI_EXIT_USAGE;
            o->cp.n_threads = (int)n;
        } else if (!strcmp(a, "-b")) {
            if (!cli_int(cmd, a, v, 1, 1 << 16, &n)) return CLI_EXIT_USAGE;
            o->cp.n_batch = (int)n;
        } else if (!strcmp(a, "--temp")) {
            if (!cli_float(cmd, a, v, 0, 100, &f)) return CLI_EXIT_USAGE;
            o->sp.temp = (float)f;
        } else if (!strcmp(a, "--top-k")) {
            if (!cli_int(cmd, a, v, 0, 1 << 24, &n)) return CLI_EXIT_USAGE;
            o->sp.top_k = (int)n;
        } else if (!strcmp(a, "--top-p")) {
            if (!cli_float(cmd, a, v, 1e-6, 1, &f)) return CLI_EXIT_USAGE;
            o->sp.top_p = (float)f;
        } else if (!strcmp(a, "--min-p")) {
            if (!cli_float(cmd, a, v, 0, 1, &f)) return CLI_EXIT_USAGE;
            o->sp.min_p = (float)f;
        } else if (!strcmp(a, "--repeat-penalty")) {
            if (!cli_float(cmd, a, v, 1e-3, 100, &f)) return CLI_EXIT_USAGE;
            o->sp.repeat_penalty = (float)f;
        } else if (!strcmp(a, "--repeat-last-n")) {
            if (!cli_int(cmd, a, v, 0, 1 << 20, &n)) return CLI_EXIT_USAGE;
            o->sp.repeat_last_n = (int)n;
        } else if (!strcmp(a, "--seed")) {
            if (!cli_int(cmd, a, v, 0, INT64_MAX, &n)) return CLI_EXIT_USAGE;
            o->sp.seed = (uint64_t)n;
            o->seed_given = 1;
        } else {
            return cli_usage_error(cmd, "unknown option %s (see zipcache run --help)", a);
        }
    }
    if (o->prompt && o->prompt_file) return cli_usage_error(cmd, "give either -p or -f, not both");
    if (o->prompt_cache && o->dump_logits) return cli_usage_error(cmd, "--prompt-cache and --dump-logits exclude each other");
    if (!o->model && !(o->model = cli_default_model()))
        return cli_usage_error(cmd, "no model: the default stories260K was not found under $ZIPCACHE_ASSETS "
                                    "(or ../shared); point -m at any GGUF file or Hugging Face directory");
    o->cp.kv = &o->kv;
    return -1;
}

static void human(size_t bytes, char *buf, size_t cap) {
    if (bytes >= (1u << 30)) snprintf(buf, cap, "%.2f GiB", bytes / 1073741824.0);
    else if (bytes >= (1u << 20)) snprintf(buf, cap, "%.2f MiB", bytes / 1048576.0);
    else if (bytes >= (1u << 10)) snprintf(buf, cap, "%.1f KiB", bytes / 1024.0);
    else snprintf(buf, cap, "%zu B", bytes);
}

/* Memory on stderr: weights, scratch, and the KV cache by part, each part
 * also in bits per cached K/V element. */
static void print_memory(const zc_context *ctx) {
    zc_memory mem;
    zc_kv_usage u;
    zc_context_memory(ctx, &mem);
    zc_context_kv_usage(ctx, &u);
    char a[32], b[32], c[32], desc[512];
    human(mem.weights_mapped, a, sizeof a);
    human(mem.weights_resident, b, sizeof b);
    human(mem.scratch, c, sizeof c);
    fprintf(stderr, "memory: weights %s mapped, %s resident; scratch %s\n", a, b, c);
    zc_kv_config_describe(zc_context_kv_config(ctx), desc, sizeof desc);
    human(u.total, a, sizeof a);
    fprintf(stderr, "kv cache: %s\nkv cache: %s for %lld tokens, %.2f bits/element, %.2fx vs fp16\n", desc, a,
            (long long)u.n_tokens, zc_kv_bits_per_element(&u), zc_kv_ratio(&u));
    const char *names[5] = {"codes", "params", "window", "index", "other"};
    const size_t parts[5] = {u.codes, u.params, u.window, u.index, u.other};
    fprintf(stderr, "kv cache parts:");
    for (int i = 0; i < 5; i++) {
        human(parts[i], a, sizeof a);
        fprintf(stderr, " %s %s (%.2f)%s", names[i], a, u.elements ? 8.0 * (double)parts[i] / (double)u.elements : 0.0,
                i < 4 ? "," : " bits/element\n");
    }
}

/* --dump-logits: int32 n_tokens, int32 n_vocab, int32 ids[n], f32 logits[n][n_vocab]. */
static int dump_logits(const char *path, const int32_t *ids, int n, int n_vocab, const float *logits) {
    FILE *f = fopen(path, "wb");
    int32_t hdr[2] = {n, n_vocab};
    int ok = f && fwrite(hdr, sizeof hdr, 1, f) == 1 && fwrite(ids, sizeof *ids, (size_t)n, f) == (size_t)n &&
             fwrite(logits, sizeof *logits * (size_t)n_vocab, (size_t)n, f) == (size_t)n;
    if (f && fclose(f)) ok = 0;
    if (!ok) fprintf(stderr, "zipcache: %s: cannot write logits\n", path);
    return ok ? CLI_EXIT_OK : CLI_EXIT_DATA;
}

/* Print token `id` through the streaming detokenizer. The piece buffer
 * grows (outside the hot path: only for unusually long pieces). */
typedef struct {
    char *buf;
    size_t cap;
} piece_buf;

static int emit(const zc_model *m, zc_detok *d, int32_t id, piece_buf *p) {
    size_t len;
    int rc;
    while ((rc = zc_detokenize(m, d, id, p->buf, p->cap, &len)) == ZC_ERR_LIMIT && p->cap < (1u << 24)) {
        char *b = realloc(p->buf, p->cap * 2);
        if (!b) break;
        p->buf = b;
        p->cap *= 2;
    }
    if (rc == ZC_OK) fwrite(p->buf, 1, len, stdout);
    return rc;
}

/* --prompt-cache: restore FILE into the context and keep the longest prefix
 * of the prompt it holds (at most n_ids - 1 tokens: the last one is decoded
 * for its logits). A missing file is the first run; a file that cannot be
 * used (damaged, another model or cache) is reported and ignored. Returns
 * the tokens reused. */
static int prompt_cache_load(const char *path, zc_context *ctx, const int32_t *ids, int n_ids) {
    int32_t *cached = NULL;
    int n_cached = 0;
    double t0 = zc_now();
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        fprintf(stderr, "prompt cache: %s does not exist yet: it will be written\n", path);
        return 0;
    }
    fclose(probe);
    if (zc_seq_load_file(ctx, 0, path, &cached, &n_cached) != ZC_OK) {
        fprintf(stderr, "prompt cache: not used: %s\n", zc_last_error());
        return 0;
    }
    int keep = 0;
    while (keep < n_cached && keep < n_ids - 1 && cached[keep] == ids[keep]) keep++;
    free(cached);
    if (keep < n_cached && zc_seq_truncate(ctx, 0, keep) != ZC_OK) {
        /* a compressed cache cannot be cut inside its segments: start over */
        fprintf(stderr, "prompt cache: the prompt shares %d of its %d tokens, but %s\n", keep, n_cached, zc_last_error());
        keep = 0;
        zc_context_reset(ctx);
    }
    fprintf(stderr, "prompt cache: reused %d of %d prompt tokens from %s (restored in %.3f s)\n", keep, n_ids, path,
            zc_now() - t0);
    return keep;
}

static int prompt_cache_save(const char *path, const zc_context *ctx, const int32_t *ids) {
    int rc = zc_seq_save_file(ctx, 0, ids, path);
    if (rc == ZC_OK) {
        zc_kv_usage u;
        zc_context_kv_usage(ctx, &u);
        fprintf(stderr, "prompt cache: saved %d tokens to %s (KV cache %zu bytes)\n", zc_context_pos(ctx), path, u.total);
    }
    return rc;
}

int cmd_run(int argc, char **argv) {
    run_opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    if (!o.seed_given) o.sp.seed = (uint64_t)time(NULL);

    zc_model *m = NULL;
    zc_context *ctx = NULL;
    zc_sampler *smp = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    char *file_text = NULL;
    piece_buf piece = {malloc(256), 256};
    int n_ids = 0;
    rc = CLI_EXIT_DATA;

    if (!piece.buf) {
        fprintf(stderr, "zipcache: out of memory\n");
        goto done;
    }
    double t0 = zc_now();
    if (zc_model_load(o.model, &m) != ZC_OK) {
        rc = cli_lib_error();
        goto done;
    }
    const zc_model_info *info = zc_model_get_info(m);
    if (o.cp.n_ctx > info->n_ctx_train)
        fprintf(stderr, "warning: context %d is above the %d tokens the model declares; quality may drop past it\n",
                o.cp.n_ctx, info->n_ctx_train);
    if (zc_context_create(m, &o.cp, &ctx) != ZC_OK || zc_sampler_create(&o.sp, info->n_vocab, &smp) != ZC_OK) {
        rc = cli_lib_error();
        goto done;
    }
    double t_load = zc_now() - t0;
    fprintf(stderr, "model: %s (%s %s, %d layers, %d/%d heads, dim %d, %s weights, %.2fM params), loaded in %.3f s\n",
            o.model, info->format, info->arch, info->n_layers, info->n_heads, info->n_kv_heads, info->n_embd,
            info->weight_type_name, info->n_params / 1e6, t_load);
    fprintf(stderr, "sampling: temp %g, top-k %d, top-p %g, min-p %g, repeat penalty %g (last %d), seed %llu\n",
            (double)o.sp.temp, o.sp.top_k, (double)o.sp.top_p, (double)o.sp.min_p, (double)o.sp.repeat_penalty,
            o.sp.repeat_last_n, (unsigned long long)o.sp.seed);

    const char *text = o.prompt ? o.prompt : "";
    size_t text_len = strlen(text);
    if (o.prompt_file) {
        if (zc_read_file(o.prompt_file, MAX_PROMPT_FILE, &file_text, &text_len) != ZC_OK) {
            rc = cli_lib_error();
            goto done;
        }
        text = file_text;
    }
    /* Special-token texts in the prompt are parsed, as llama.cpp does. */
    if (zc_model_tokenize(m, text, text_len, info->add_bos, 1, &ids, &n_ids) != ZC_OK) {
        rc = cli_lib_error();
        goto done;
    }
    if (n_ids == 0) {
        fprintf(stderr, "zipcache: the prompt is empty and the model adds no BOS token: nothing to start from\n");
        goto done;
    }
    if (n_ids > zc_context_n_ctx(ctx)) {
        fprintf(stderr, "zipcache: the prompt has %d tokens, more than the context of %d (raise -c)\n", n_ids,
                zc_context_n_ctx(ctx));
        goto done;
    }

    zc_detok d;
    zc_detok_init(&d);
    for (int i = 0; i < n_ids; i++) {
        if (emit(m, &d, ids[i], &piece) != ZC_OK) {
            rc = cli_lib_error();
            goto done;
        }
        zc_sampler_accept(smp, ids[i]);
    }
    fflush(stdout);

    /* logits: [n_ids][n_vocab] when dumping, else [n_vocab] */
    size_t rows = o.dump_logits ? (size_t)n_ids : 1;
    if (!(logits = malloc(rows * (size_t)info->n_vocab * sizeof *logits))) {
        fprintf(stderr, "zipcache: out of memory for logits\n");
        goto done;
    }
    t0 = zc_now();
    int reused = o.prompt_cache ? prompt_cache_load(o.prompt_cache, ctx, ids, n_ids) : 0;
    if (o.prompt_cache) { /* all but the last prompt token, saved, then the last one for its logits */
        if ((reused < n_ids - 1 && zc_decode(ctx, ids + reused, n_ids - 1 - reused, ZC_LOGITS_NONE, NULL) != ZC_OK) ||
            (reused < n_ids - 1 && prompt_cache_save(o.prompt_cache, ctx, ids) != ZC_OK) ||
            zc_decode(ctx, ids + n_ids - 1, 1, ZC_LOGITS_LAST, logits) != ZC_OK) {
            rc = cli_lib_error();
            goto done;
        }
    } else if (zc_decode(ctx, ids, n_ids, o.dump_logits ? ZC_LOGITS_ALL : ZC_LOGITS_LAST, logits) != ZC_OK) {
        rc = cli_lib_error();
        goto done;
    }
    double t_prompt = zc_now() - t0;
    if (o.dump_logits && dump_logits(o.dump_logits, ids, n_ids, info->n_vocab, logits) != CLI_EXIT_OK) goto done;
    const float *last = logits + (rows - 1) * (size_t)info->n_vocab;

    /* Generate: sample from `last`, print, feed back. */
    double t_gen = 0;
    int n_gen = 0, n_steps = 0;
    const char *why = NULL;
    int failed = 0; /* a decode step failed (e.g. the --kv-budget): reported after the text ends */
    for (;;) {
        if (o.n_predict >= 0 && n_gen >= o.n_predict) break;
        int32_t tok = zc_sampler_sample(smp, last);
        if (zc_model_is_eog(m, tok)) {
            why = "end of text";
            break;
        }
        if (emit(m, &d, tok, &piece) != ZC_OK) {
            rc = cli_lib_error();
            goto done;
        }
        fflush(stdout);
        n_gen++;
        if (o.n_predict >= 0 && n_gen >= o.n_predict) break;
        if (zc_context_pos(ctx) >= zc_context_n_ctx(ctx)) {
            why = "context full (raise -c for more)";
            break;
        }
        t0 = zc_now();
        if (zc_decode(ctx, &tok, 1, ZC_LOGITS_LAST, logits) != ZC_OK) {
            failed = 1;
            break;
        }
        t_gen += zc_now() - t0;
        n_steps++;
        last = logits;
    }
    size_t tail;
    if (zc_detok_flush(&d, piece.buf, piece.cap, &tail) == ZC_OK) fwrite(piece.buf, 1, tail, stdout);
    printf("\n");
    fflush(stdout);
    if (why) fprintf(stderr, "[stopped at %d tokens: %s]\n", zc_context_pos(ctx), why);
    fprintf(stderr, "prompt: %d tokens in %.3f s, %.1f tokens/s\n", n_ids, t_prompt,
            t_prompt > 0 ? n_ids / t_prompt : 0.0);
    fprintf(stderr, "generated: %d tokens; %d decode steps in %.3f s, %.1f tokens/s\n", n_gen, n_steps, t_gen,
            t_gen > 0 ? n_steps / t_gen : 0.0);
    print_memory(ctx);
    rc = failed ? cli_lib_error() : CLI_EXIT_OK;
done:
    free(logits);
    free(ids);
    free(file_text);
    free(piece.buf);
    zc_sampler_free(smp);
    zc_context_free(ctx);
    zc_model_free(m);
    return rc;
}
