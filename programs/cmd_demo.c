/* zipcache demo: line retrieval on one held-out document, answered twice,
 * with an fp16 cache and with a compressed one (default zipcache), and the
 * memory each cache took.
 *
 * The document is a record of tools/retrieval/gen_lines.py (LongEval's
 * format: prompt, expected_number, correct_line, random_idx), read from
 * --data FILE.jsonl or standard input; the default model is the retrieval
 * model trained for exactly this task (models/, tools/retrieval/README.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmds.h"
#include "eval/eval.h"
#include "kv/kv.h"
#include "util/file.h"
#include "util/error.h"
#include "util/json.h"
#include "zipcache.h"

#define DEMO_MODEL "models/zipcache-retrieval-1m-f16.gguf"
#define MAX_DATA_FILE (256u << 20)
#define MAX_ANSWER_TOKENS 8

static const char USAGE[] =
    "usage: zipcache demo [-m MODEL] [--data FILE.jsonl] [--index K] [-t N] [--kv POLICY --kv-*]\n"
    "  Line retrieval on one held-out document: the model reads a record of numbered lines and is\n"
    "  asked for one line's number; it answers with an fp16 KV cache and with the --kv policy\n"
    "  (default zipcache), and the memory of both caches is printed.\n"
    "  -m PATH        model (default " DEMO_MODEL ")\n"
    "  --data FILE    JSONL records of tools/retrieval/gen_lines.py (default: standard input), e.g.\n"
    "                 python3 tools/retrieval/gen_lines.py --lines 300 --count 1 --seed 7 | zipcache demo\n"
    "  --index K      which record (default 1, the first)\n"
    "  -t N           threads (default: all cores)\n"
    "  --kv POLICY    the compressed cache to compare with fp16 (default zipcache), --kv-* its options\n";

typedef struct {
    const char *model, *data;
    long long index;
    int threads;
    zc_kv_config kv;
} demo_opts;

static const char *const OPTIONS[] = {"-m", "--data", "--index", "-t", NULL};

static int parse(int argc, char **argv, demo_opts *o) {
    const char *cmd = "demo";
    long long n;
    zc_kv_config_default(&o->kv);
    zc_kv_config_parse_arg(&o->kv, "--kv", "zipcache");
    o->model = DEMO_MODEL;
    o->index = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int rc, next = cli_next_option(cmd, USAGE, argc, argv, &i, OPTIONS, &o->kv, &v, &rc);
        if (next == CLI_NEXT_EXIT) return rc;
        if (next == CLI_NEXT_DONE) continue;
        if (!strcmp(a, "-m")) {
            o->model = v;
        } else if (!strcmp(a, "--data")) {
            o->data = v;
        } else if (!strcmp(a, "--index")) {
            if (!cli_int(cmd, a, v, 1, 1 << 30, &o->index)) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "-t")) {
            if (!cli_int(cmd, a, v, 1, 1024, &n)) return CLI_EXIT_USAGE;
            o->threads = (int)n;
        } else {
            return cli_usage_error(cmd, "unknown option %s (see zipcache demo --help)", a);
        }
    }
    if (!o->data && isatty(STDIN_FILENO))
        return cli_usage_error(cmd, "no document: pipe one in (python3 tools/retrieval/gen_lines.py --lines 300 "
                                    "--count 1 | zipcache demo) or give --data FILE.jsonl");
    return -1;
}

/* Read all of standard input (at most max bytes). */
static int read_stdin(size_t max, char **out, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return zc_error(ZC_ERR_NOMEM, "standard input: out of memory");
    for (size_t got; (got = fread(buf + n, 1, cap - n, stdin)) > 0;) {
        n += got;
        if (n == cap) {
            char *b = cap < max ? realloc(buf, (cap *= 2) + 1) : NULL;
            if (!b) {
                free(buf);
                return zc_error(ZC_ERR_LIMIT, "standard input: more than %zu bytes", max);
            }
            buf = b;
        }
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return ZC_OK;
}

/* The K-th (1-based) non-empty line of text as a parsed JSON object. */
static int nth_record(const char *text, size_t len, const char *source, long long k, zc_json_doc **doc,
                      const zc_json **rec) {
    const char *p = text, *end = text + len;
    for (long long seen = 0; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        if (e > p && ++seen == k) {
            int rc = zc_json_parse(p, (size_t)(e - p), source, doc, rec);
            if (rc != ZC_OK) return rc;
            if ((*rec)->type != ZC_JSON_OBJECT) return zc_error(ZC_ERR_FORMAT, "%s: record %lld is not an object",
                                                                 source, k);
            return ZC_OK;
        }
        p = e + 1;
    }
    return zc_error(ZC_ERR_ARG, "%s: there is no record %lld", source, k);
}

typedef struct {
    char text[256];
    long long number; /* -1: no number in the answer */
    zc_kv_usage usage;
} answer;

/* Greedy answer to the prompt ids under one cache policy. */
static int ask(const zc_model *m, const int32_t *ids, int n_ids, int threads, zc_kv_config *kv, answer *a) {
    const zc_model_info *info = zc_model_get_info(m);
    zc_context_params cp;
    zc_context_params_default(&cp);
    cp.n_ctx = n_ids + MAX_ANSWER_TOKENS;
    cp.n_threads = threads;
    cp.kv = kv;
    zc_context *ctx = NULL;
    float *logits = malloc(sizeof *logits * (size_t)info->n_vocab);
    int rc = logits ? zc_context_create(m, &cp, &ctx) : zc_error(ZC_ERR_NOMEM, "out of memory");
    if (rc == ZC_OK) rc = zc_decode(ctx, ids, n_ids, ZC_LOGITS_LAST, logits);
    zc_detok d;
    zc_detok_init(&d);
    size_t len = 0;
    for (int i = 0; rc == ZC_OK && i < MAX_ANSWER_TOKENS; i++) {
        int32_t best = zc_eval_argmax(logits, info->n_vocab); /* greedy */
        if (zc_model_is_eog(m, best)) break;
        size_t piece = 0;
        if ((rc = zc_detokenize(m, &d, best, a->text + len, sizeof a->text - 1 - len, &piece)) != ZC_OK) break;
        len += piece;
        if (memchr(a->text, '>', len)) break; /* "<N>" is complete */
        rc = zc_decode(ctx, &best, 1, ZC_LOGITS_LAST, logits);
    }
    a->text[len] = 0;
    a->number = -1;
    const char *digit = strpbrk(a->text, "0123456789");
    if (digit) a->number = strtoll(digit, NULL, 10);
    if (ctx) zc_context_kv_usage(ctx, &a->usage);
    zc_context_free(ctx);
    free(logits);
    return rc;
}

static void print_answer(const char *name, const answer *a, long long expected, const answer *base) {
    printf("%-10s answer %-10s %-6s KV cache %8.1f KiB, %5.2f bits/element", name, a->text,
           a->number == expected ? "right" : "WRONG", a->usage.total / 1024.0, zc_kv_bits_per_element(&a->usage));
    if (base && a->usage.total)
        printf(", %.2fx smaller than fp16 (%.1f KiB saved)", (double)base->usage.total / (double)a->usage.total,
               ((double)base->usage.total - (double)a->usage.total) / 1024.0);
    printf("\n");
}

int cmd_demo(int argc, char **argv) {
    demo_opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    const char *source = o.data ? o.data : "standard input";
    char *text = NULL;
    size_t len = 0;
    zc_json_doc *doc = NULL;
    const zc_json *rec = NULL;
    zc_model *m = NULL;
    int32_t *ids = NULL;
    int n_ids = 0;
    rc = CLI_EXIT_DATA;
    if ((o.data ? zc_read_file(o.data, MAX_DATA_FILE, &text, &len) : read_stdin(MAX_DATA_FILE, &text, &len)) ||
        nth_record(text, len, source, o.index, &doc, &rec)) {
        rc = cli_lib_error();
        goto done;
    }
    const char *prompt = zc_json_str(zc_json_get(rec, "prompt"));
    const char *line = zc_json_str(zc_json_get(rec, "correct_line"));
    int64_t expected, n_lines = 0;
    if (!prompt || !zc_json_int(zc_json_get(rec, "expected_number"), &expected)) {
        fprintf(stderr, "zipcache: %s: record %lld has no \"prompt\" string and \"expected_number\" integer\n",
                source, o.index);
        goto done;
    }
    zc_json_int(zc_json_get(rec, "num_lines"), &n_lines);
    if (zc_model_load(o.model, &m) != ZC_OK) {
        rc = cli_lib_error();
        if (!strcmp(o.model, DEMO_MODEL))
            fprintf(stderr, "zipcache demo: run it from the repository's root, or give -m MODEL\n");
        goto done;
    }
    if (zc_model_tokenize(m, prompt, strlen(prompt), zc_model_get_info(m)->add_bos, 0, &ids, &n_ids) != ZC_OK) {
        rc = cli_lib_error();
        goto done;
    }
    const char *question = strstr(prompt, "Tell me");
    printf("document: %lld lines, %d tokens (record %lld of %s), model %s\n", (long long)n_lines, n_ids, o.index,
           source, o.model);
    printf("question: %s\n", question ? question : "(the end of the prompt)");
    printf("expected: <%lld>%s%.*s\n", (long long)expected, line ? "   from: " : "",
           line ? (int)strcspn(line, "\n") : 0, line ? line : "");
    zc_kv_config fp16;
    zc_kv_config_default(&fp16);
    zc_kv_config_parse_arg(&fp16, "--kv", "fp16");
    answer base = {0}, comp = {0};
    if (ask(m, ids, n_ids, o.threads, &fp16, &base) != ZC_OK || ask(m, ids, n_ids, o.threads, &o.kv, &comp) != ZC_OK) {
        rc = cli_lib_error();
        goto done;
    }
    char desc[512];
    zc_kv_config_describe(&o.kv, desc, sizeof desc);
    print_answer("fp16", &base, expected, NULL);
    print_answer(o.kv.policy, &comp, expected, &base);
    printf("(%s)\n", desc);
    rc = CLI_EXIT_OK;
done:
    free(ids);
    zc_model_free(m);
    zc_json_free(doc);
    free(text);
    return rc;
}
