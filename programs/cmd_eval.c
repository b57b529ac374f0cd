/* zipcache eval: perplexity/KL, LongEval lines, GSM8K, HumanEval and
 * compression sweeps. Option parsing only; the work is in src/eval. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmds.h"
#include "eval/eval_tasks.h"
#include "eval/kvstudy.h"
#include "util/error.h"
#include "util/file.h"
#include "zipcache.h"

static const char *const USAGE =
    "usage: zipcache eval ppl|lines|gsm8k|humaneval|sweep|saliency|recon [options]\n"
    "\n"
    "  ppl        perplexity over -f TEXT in chunks of the context (second half of each chunk scored,\n"
    "             decoded token by token against the cache); with --kl-base also KL(fp16 || run)\n"
    "  lines      LongEval line retrieval accuracy (--data N_lines.jsonl), Wilson 95% interval\n"
    "  gsm8k      GSM8K accuracy with the 8-shot chain-of-thought prompt (--data test.jsonl)\n"
    "  humaneval  HumanEval completions (--data HumanEval.jsonl); --execute runs the tests: pass@1\n"
    "  sweep      ppl/KL for --policies x --bits (or a --preset ablation) -> CSV + SVG plot\n"
    "  saliency   how well cheap saliency estimates recover the exact normalized salient set (-f TEXT)\n"
    "  recon      reconstruction error of every KV quantizer on the model's real keys and values (-f TEXT)\n"
    "\n"
    "common:  -m MODEL  -c CTX  -t THREADS  -b BATCH (prompt tokens per forward step, default 512: a\n"
    "         compressing cache compresses each step's tokens, so later steps attend to compressed ones)\n"
    "         --limit N  --offset K  --results FILE.jsonl (resume)\n"
    "         --json FILE (summary record)  --no-progress  --kv POLICY  --kv-* (see zipcache run --help)\n"
    "ppl:     -f TEXT  --chunks N  --block N (scored tokens per decode call, default 1)\n"
    "         --save-kl-base FILE (with --kv fp16)  --kl-base FILE\n"
    "tasks:   --data FILE  --max-new N  --shots N (gsm8k, 0..8, default 8)\n"
    "         --answer-kl (lines: also the mean KL of the expected answer's tokens against an fp16 cache)\n"
    "         --execute  --out completions.jsonl  --python PATH  --timeout S (humaneval)\n"
    "sweep:   -f TEXT  --chunks N  --policies a,b,c  --bits 2.5,3,3.5,4  --preset ablation-saliency|\n"
    "         ablation-probes|bits|ablation-bits|local-layers  --csv FILE  --plot FILE.svg\n"
    "saliency, recon: -f TEXT  --chunks N  --tokens N (per chunk)  --seeds N (saliency: random probe draws)\n";

#define EVAL_MAX_BITS 48 /* --bits values (a study at steps of 1/8 bit over 4-7.5 needs 29) */

typedef struct {
    const char *sub, *model, *json;
    zc_eval_opts o;
    zc_eval_ppl_opts ppl;
    zc_eval_gen_opts gen;
    zc_eval_sweep_opts sweep;
    zc_eval_study_opts study;
    double bits[EVAL_MAX_BITS];
} eval_args;

/* Whether option `opt` belongs to sub-command `sub` ("ppl,sweep" lists). */
static bool allowed(const char *sub, const char *opt, const char *subs) {
    size_t n = strlen(sub);
    for (const char *p = subs; (p = strstr(p, sub)); p += n)
        if ((p == subs || p[-1] == ',') && (p[n] == ',' || !p[n])) return true;
    cli_usage_error("eval", "%s is not an option of eval %s", opt, sub);
    return false;
}

static bool parse_bits(const char *val, eval_args *a) {
    char buf[512];
    if (strlen(val) >= sizeof buf) return cli_usage_error("eval", "--bits: list too long"), false;
    strcpy(buf, val);
    a->sweep.n_bits = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (a->sweep.n_bits == EVAL_MAX_BITS)
            return cli_usage_error("eval", "--bits: at most %d values", EVAL_MAX_BITS), false;
        if (!cli_float("eval", "--bits", tok, 1, 16, &a->bits[a->sweep.n_bits])) return false;
        a->sweep.n_bits++;
    }
    return a->sweep.n_bits > 0 || (cli_usage_error("eval", "--bits: empty list"), false);
}

/* Options that take a value, besides the KV ones (each sub-command checks its own with allowed()). */
static const char *const OPTIONS[] = {
    "-m", "--model", "-c", "--ctx", "-t", "--threads", "-b", "--batch", "--limit", "--offset", "--results", "--json", "-f", "--file",
    "--chunks", "--tokens", "--seeds", "--block", "--kl-base", "--save-kl-base", "--data", "--max-new", "--shots",
    "--out", "--python", "--timeout", "--policies", "--bits", "--preset", "--csv", "--plot", NULL};

/* Returns -1 when parsing succeeded, else the exit code. */
static int parse(int argc, char **argv, eval_args *a) {
    const char *sub = a->sub;
    for (int i = 2; i < argc; i++) {
        const char *opt = argv[i], *val = NULL;
        long long n;
        double x;
        if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
            fputs(USAGE, stdout);
            return CLI_EXIT_OK;
        }
        if (!strcmp(opt, "--no-progress")) {
            a->o.progress = false;
            continue;
        }
        if (!strcmp(opt, "--answer-kl")) {
            if (!allowed(sub, opt, "lines")) return CLI_EXIT_USAGE;
            a->gen.answer_kl = true;
            continue;
        }
        if (!strcmp(opt, "--execute")) {
            if (!allowed(sub, opt, "humaneval")) return CLI_EXIT_USAGE;
            a->gen.execute = true;
            continue;
        }
        if (!cli_option_value("eval", argc, argv, &i, OPTIONS, &a->o.kv, &val)) return CLI_EXIT_USAGE;
        int kv = zc_kv_config_parse_arg(&a->o.kv, opt, val);
        if (kv < 0) return cli_lib_error();
        if (kv == 1) continue;
        if (!strcmp(opt, "-m") || !strcmp(opt, "--model")) {
            a->model = val;
        } else if (!strcmp(opt, "-c") || !strcmp(opt, "--ctx")) {
            if (!cli_int("eval", opt, val, 4, 1 << 20, &n)) return CLI_EXIT_USAGE;
            a->o.n_ctx = (int)n;
        } else if (!strcmp(opt, "-t") || !strcmp(opt, "--threads")) {
            if (!cli_int("eval", opt, val, 0, 1024, &n)) return CLI_EXIT_USAGE;
            a->o.n_threads = (int)n;
        } else if (!strcmp(opt, "-b") || !strcmp(opt, "--batch")) {
            if (!cli_int("eval", opt, val, 1, 1 << 20, &n)) return CLI_EXIT_USAGE;
            a->o.n_batch = (int)n;
        } else if (!strcmp(opt, "--limit")) {
            if (!cli_int("eval", opt, val, 1, INT64_MAX, &n)) return CLI_EXIT_USAGE;
            a->o.limit = n;
        } else if (!strcmp(opt, "--offset")) {
            if (!cli_int("eval", opt, val, 0, INT64_MAX, &n)) return CLI_EXIT_USAGE;
            a->o.offset = n;
        } else if (!strcmp(opt, "--results")) {
            a->o.results = val;
        } else if (!strcmp(opt, "--json")) {
            if (!allowed(sub, opt, "ppl,lines,gsm8k,humaneval,saliency,recon")) return CLI_EXIT_USAGE;
            a->json = val;
        } else if (!strcmp(opt, "-f") || !strcmp(opt, "--file")) {
            if (!allowed(sub, opt, "ppl,sweep,saliency,recon")) return CLI_EXIT_USAGE;
            a->ppl.text = a->study.text = val;
        } else if (!strcmp(opt, "--chunks")) {
            if (!allowed(sub, opt, "ppl,sweep,saliency,recon") || !cli_int("eval", opt, val, 1, INT64_MAX, &n))
                return CLI_EXIT_USAGE;
            a->ppl.chunks = a->study.chunks = n;
        } else if (!strcmp(opt, "--tokens")) {
            if (!allowed(sub, opt, "saliency,recon") || !cli_int("eval", opt, val, 8, 1 << 20, &n))
                return CLI_EXIT_USAGE;
            a->study.tokens = (int)n;
        } else if (!strcmp(opt, "--seeds")) {
            if (!allowed(sub, opt, "saliency") || !cli_int("eval", opt, val, 1, 1000, &n)) return CLI_EXIT_USAGE;
            a->study.seeds = (int)n;
        } else if (!strcmp(opt, "--block")) {
            if (!allowed(sub, opt, "ppl,sweep") || !cli_int("eval", opt, val, 1, 4096, &n)) return CLI_EXIT_USAGE;
            a->ppl.block = (int)n;
        } else if (!strcmp(opt, "--kl-base")) {
            if (!allowed(sub, opt, "ppl,sweep")) return CLI_EXIT_USAGE;
            a->ppl.kl_base = val;
        } else if (!strcmp(opt, "--save-kl-base")) {
            if (!allowed(sub, opt, "ppl")) return CLI_EXIT_USAGE;
            a->ppl.save_kl_base = val;
        } else if (!strcmp(opt, "--data")) {
            if (!allowed(sub, opt, "lines,gsm8k,humaneval")) return CLI_EXIT_USAGE;
            a->gen.data = val;
        } else if (!strcmp(opt, "--max-new")) {
            if (!allowed(sub, opt, "lines,gsm8k,humaneval") || !cli_int("eval", opt, val, 1, 1 << 20, &n))
                return CLI_EXIT_USAGE;
            a->gen.max_new = (int)n;
        } else if (!strcmp(opt, "--shots")) {
            if (!allowed(sub, opt, "gsm8k") || !cli_int("eval", opt, val, 0, ZC_GSM8K_MAX_SHOTS, &n))
                return CLI_EXIT_USAGE;
            a->gen.shots = (int)n;
        } else if (!strcmp(opt, "--out")) {
            if (!allowed(sub, opt, "humaneval")) return CLI_EXIT_USAGE;
            a->gen.out = val;
        } else if (!strcmp(opt, "--python")) {
            if (!allowed(sub, opt, "humaneval")) return CLI_EXIT_USAGE;
            a->gen.python = val;
        } else if (!strcmp(opt, "--timeout")) {
            if (!allowed(sub, opt, "humaneval") || !cli_float("eval", opt, val, 1, 3600, &x)) return CLI_EXIT_USAGE;
            a->gen.timeout_s = (int)x;
        } else if (!strcmp(opt, "--policies")) {
            if (!allowed(sub, opt, "sweep")) return CLI_EXIT_USAGE;
            a->sweep.policies = val;
        } else if (!strcmp(opt, "--bits")) {
            if (!allowed(sub, opt, "sweep") || !parse_bits(val, a)) return CLI_EXIT_USAGE;
        } else if (!strcmp(opt, "--preset")) {
            if (!allowed(sub, opt, "sweep")) return CLI_EXIT_USAGE;
            a->sweep.preset = val;
        } else if (!strcmp(opt, "--csv")) {
            if (!allowed(sub, opt, "sweep")) return CLI_EXIT_USAGE;
            a->sweep.csv = val;
        } else if (!strcmp(opt, "--plot")) {
            if (!allowed(sub, opt, "sweep")) return CLI_EXIT_USAGE;
            a->sweep.plot = val;
        } else {
            return cli_usage_error("eval", "unknown option %s (try zipcache eval --help)", opt);
        }
    }
    return -1;
}

static int write_json(const char *path, const zc_eval_summary *s) {
    zc_strbuf b = {0};
    zc_eval_summary_json(s, &b);
    zc_sb_append(&b, "\n", 1);
    int rc = b.err ? b.err : zc_write_file(path, b.s, b.len);
    zc_sb_free(&b);
    return rc;
}

/* For messages; the list SUBS below checks against. */
#define EVALUATIONS "ppl, lines, gsm8k, humaneval, sweep, saliency, recon"

int cmd_eval(int argc, char **argv) {
    if (argc < 2)
        return cli_usage_error("eval", "which evaluation? (%s; see zipcache eval --help)", EVALUATIONS);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(USAGE, stdout);
        return CLI_EXIT_OK;
    }
    eval_args a;
    memset(&a, 0, sizeof a);
    a.sub = argv[1];
    static const char *const SUBS[] = {"ppl", "lines", "gsm8k", "humaneval", "sweep", "saliency", "recon"};
    bool known = false;
    for (size_t i = 0; i < sizeof SUBS / sizeof SUBS[0]; i++) known |= !strcmp(a.sub, SUBS[i]);
    if (!known)
        return cli_usage_error("eval", "unknown evaluation '%s' (%s)", a.sub, EVALUATIONS);
    zc_eval_opts_default(&a.o);
    a.ppl.block = 1;
    a.gen.shots = ZC_GSM8K_MAX_SHOTS;
    a.gen.python = "/usr/bin/python3";
    a.gen.timeout_s = 10;
    const char *default_policies = "zipcache,uniform,kivi,mikv,h2o,q4_0";
    a.sweep.policies = default_policies;
    static const double DEFAULT_BITS[] = {2.5, 3, 3.5, 4};
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    if (!a.sweep.n_bits) {
        memcpy(a.bits, DEFAULT_BITS, sizeof DEFAULT_BITS);
        a.sweep.n_bits = 4;
    }
    a.sweep.bits = a.bits;
    if (a.sweep.preset && a.sweep.policies != default_policies)
        return cli_usage_error("eval", "--preset chooses its own variants; drop --policies");
    if (!a.model && !(a.model = cli_default_model())) return cli_usage_error("eval", "no model given (-m MODEL)");
    bool study = !strcmp(a.sub, "saliency") || !strcmp(a.sub, "recon");
    if (!strcmp(a.sub, "ppl") || !strcmp(a.sub, "sweep") || study) {
        if (!a.ppl.text) return cli_usage_error("eval", "eval %s needs a text file (-f FILE)", a.sub);
    } else if (!a.gen.data) {
        return cli_usage_error("eval", "eval %s needs --data FILE.jsonl", a.sub);
    }

    zc_model *m;
    if (zc_model_load(a.model, &m) != ZC_OK) return cli_lib_error();
    zc_eval_summary s;
    if (!strcmp(a.sub, "ppl"))
        rc = zc_eval_ppl(m, a.model, &a.o, &a.ppl, &s);
    else if (!strcmp(a.sub, "lines"))
        rc = zc_eval_lines(m, a.model, &a.o, &a.gen, &s);
    else if (!strcmp(a.sub, "gsm8k"))
        rc = zc_eval_gsm8k(m, a.model, &a.o, &a.gen, &s);
    else if (!strcmp(a.sub, "humaneval"))
        rc = zc_eval_humaneval(m, a.model, &a.o, &a.gen, &s);
    else if (!strcmp(a.sub, "saliency"))
        rc = zc_eval_saliency_report(m, a.model, &a.o, &a.study, stdout, a.json);
    else if (!strcmp(a.sub, "recon"))
        rc = zc_eval_recon_report(m, a.model, &a.o, &a.study, stdout, a.json);
    else
        rc = zc_eval_sweep(m, a.model, &a.o, &a.ppl, &a.sweep, stdout);
    if (rc == ZC_OK && strcmp(a.sub, "sweep") && !study) {
        zc_eval_summary_print(stdout, &s);
        if (a.json) rc = write_json(a.json, &s);
    }
    zc_model_free(m);
    return rc == ZC_OK ? CLI_EXIT_OK : cli_lib_error();
}
