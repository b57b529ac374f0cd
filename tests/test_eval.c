/* Tests for src/eval: hand-computed scoring arithmetic, answer parsing, stop
 * strings, Wilson intervals, the KL base file, resumable results, the Python
 * sandbox and (with the real tiny model) the perplexity harness itself.
 *
 * Also a mode for tests/py/test_eval_ref.py:
 *   test_eval --score BASE.f32 RUN.f32 TARGETS.i32 N_TOKENS N_VOCAB
 * reads raw little-endian logits [N_TOKENS][N_VOCAB] and targets, scores them
 * through the same path as `eval ppl --kl-base` (KL base file written and
 * read back) and prints "name value" lines for numpy to compare. */
#include <unistd.h>

#include "eval/eval.h"
#include "eval/eval_tasks.h"
#include "kv/kv.h"
#include "tt.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

/* ---- Answer parsing -------------------------------------------------------------- */
static void test_first_last_number(void) {
    double v;
    TT_CHECK(zc_eval_first_number("line torpid-kid: REGISTER_CONTENT is <2416>", &v) && v == 2416, "got %g", v);
    TT_CHECK(zc_eval_first_number("The answer is -42.", &v) && v == -42, "got %g", v);
    TT_CHECK(zc_eval_first_number("It costs $1,234.50 in total", &v) && v == 1234.5, "got %g", v);
    TT_CHECK(zc_eval_first_number("3, 4 and 5", &v) && v == 3, "got %g", v);
    TT_CHECK(zc_eval_last_number("3, 4 and 5", &v) && v == 5, "got %g", v);
    TT_CHECK(zc_eval_last_number("so 1,5 apples", &v) && v == 5, "a comma before one digit separates: got %g", v);
    TT_CHECK(zc_eval_last_number("12,345,678 people", &v) && v == 12345678, "got %g", v);
    TT_CHECK(zc_eval_last_number("The answer is 18.", &v) && v == 18, "trailing period: got %g", v);
    TT_CHECK(zc_eval_last_number("5 - 3 = 2", &v) && v == 2, "got %g", v);
    TT_CHECK(zc_eval_first_number("x3 and gpt2 then 7", &v) && v == 7, "digits inside words: got %g", v);
    TT_CHECK(zc_eval_last_number("from 10-3", &v) && v == 3, "a minus after a digit is not a sign: got %g", v);
    TT_CHECK(zc_eval_first_number("0.25", &v) && v == 0.25, "got %g", v);
    TT_CHECK(!zc_eval_first_number("no digits here", &v), "found a number");
    TT_CHECK(!zc_eval_last_number("", &v), "found a number in nothing");
}

static void test_gsm8k_reference(void) {
    double v;
    TT_CHECK(zc_eval_gsm8k_reference("She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18", &v) && v == 18, "got %g",
             v);
    TT_CHECK(zc_eval_gsm8k_reference("... #### 1,234", &v) && v == 1234, "got %g", v);
    TT_CHECK(zc_eval_gsm8k_reference("a #### 5 then #### -3", &v) && v == -3, "last ####: got %g", v);
    TT_CHECK(!zc_eval_gsm8k_reference("no marker 42", &v), "accepted an answer without ####");
    TT_CHECK(!zc_eval_gsm8k_reference("#### none", &v), "accepted #### without a number");
}

static void test_stop_at(void) {
    const char *stops[] = {"\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#"};
    const char *t = "    return x\n\nprint(f(1))\ndef g():";
    TT_CHECK(zc_eval_stop_at(t, strlen(t), stops, 5) == 13, "got %zu", zc_eval_stop_at(t, strlen(t), stops, 5));
    const char *u = "    return 1\n";
    TT_CHECK(zc_eval_stop_at(u, strlen(u), stops, 5) == strlen(u), "cut text without a stop");
    const char *g[] = {"Question:", "\n\n"};
    const char *w = "5 + 3 = 8. The answer is 8.\n\nQuestion: next";
    TT_CHECK(zc_eval_stop_at(w, strlen(w), g, 2) == 27, "got %zu", zc_eval_stop_at(w, strlen(w), g, 2));
    TT_CHECK(zc_eval_stop_at("Question: x", 11, g, 2) == 0, "stop at the start");
    TT_CHECK(zc_eval_stop_at("ab\n", 3, g, 2) == 3, "a partial stop string is not a stop");
}

static void test_gsm8k_prompt(void) {
    zc_strbuf b = {0};
    zc_eval_gsm8k_prompt(8, "What is 2+2?", &b);
    int n = 0;
    for (const char *p = b.s; (p = strstr(p, "Question:")); p++) n++;
    TT_CHECK(n == 9, "%d questions in the 8-shot prompt", n);
    TT_CHECK(strstr(b.s, "The answer is 6.\n\n") && strstr(b.s, "The answer is 39.") && strstr(b.s, "23 - 15 is 8."),
             "exemplar answers missing");
    const char *tail = "Question: What is 2+2?\nAnswer: Let's think step by step.";
    TT_CHECK(b.len > strlen(tail) && !strcmp(b.s + b.len - strlen(tail), tail), "prompt does not end with the question");
    b.len = 0;
    zc_eval_gsm8k_prompt(0, "Q", &b);
    TT_CHECK(!strcmp(b.s, "Question: Q\nAnswer: Let's think step by step."), "0-shot: %s", b.s);
    zc_sb_free(&b);
}

/* ---- Scoring arithmetic --------------------------------------------------------- */
static void test_nll_by_hand(void) {
    const float logits[3] = {1, 2, 3};
    /* lse = 3 + ln(1 + e^-1 + e^-2) = 3.40760596444438 */
    TT_NEAR(zc_eval_logsumexp(logits, 3), 3.40760596444438, 1e-12);
    TT_NEAR(zc_eval_nll(logits, 3, 0), 2.40760596444438, 1e-12);
    TT_NEAR(zc_eval_nll(logits, 3, 2), 0.40760596444438, 1e-12);
    const float big[2] = {1000, 1000}; /* stable: ln 2 */
    TT_NEAR(zc_eval_nll(big, 2, 1), 0.693147180559945, 1e-12);
    const float tie[3] = {5, 7, 7};
    TT_CHECK(zc_eval_argmax(tie, 3) == 1, "ties go to the lowest index");
}

static void fp16_logp(const float *logits, int n, zc_fp16 *out) {
    double lse = zc_eval_logsumexp(logits, n);
    for (int i = 0; i < n; i++) out[i] = zc_f32_to_fp16((float)(logits[i] - lse));
}

static void test_kl_by_hand(void) {
    /* p = (1/4, 3/4), q = (1/2, 1/2): KL = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.130812035941137 */
    const float base[2] = {0, 1.0986122886681098f}, run[2] = {3, 3};
    zc_fp16 lp[2];
    fp16_logp(base, 2, lp);
    /* fp16 rounding of ln(1/4), ln(3/4) moves KL by < 1e-3 */
    TT_NEAR(zc_eval_kl_fp16(lp, run, 2), 0.130812035941137, 1e-3);
    /* Exactly representable log-probs: ln p = (-1, -1) is not normalized, the
     * renormalization makes it uniform, so KL against uniform logits is 0. */
    zc_fp16 m1[2] = {zc_f32_to_fp16(-1), zc_f32_to_fp16(-1)};
    TT_NEAR(zc_eval_kl_fp16(m1, run, 2), 0, 1e-15);
    /* p = (1/2, 1/2) exactly vs q = softmax(0, ln 3) = (1/4, 3/4):
     * KL = 1/2 ln 2 + 1/2 ln(2/3) = 0.143841036225890 */
    const float run2[2] = {0, 1.0986122886681098f};
    TT_NEAR(zc_eval_kl_fp16(m1, run2, 2), 0.143841036225890, 1e-7);
}

static void test_ppl_accumulator(void) {
    zc_eval_ppl_acc a = {0};
    const float l1[2] = {0, 0};                  /* nll ln 2 for either target */
    const float l2[2] = {0, 1.0986122886681098f}; /* q = (1/4, 3/4): nll ln 4 for target 0 */
    zc_fp16 base[2] = {zc_f32_to_fp16(-1), zc_f32_to_fp16(-1)}; /* uniform */
    TT_CHECK(zc_eval_ppl_add(&a, l1, 2, 1, base, 0, 0.693147180559945, false) == ZC_OK, "add");
    TT_CHECK(zc_eval_ppl_add(&a, l2, 2, 0, base, 0, 0.693147180559945, true) == ZC_OK, "add");
    /* ppl = exp((ln 2 + ln 4) / 2) = sqrt(8) */
    TT_NEAR(exp(a.sum_nll / (double)a.n_scored), sqrt(8.0), 1e-6);
    TT_NEAR(exp(a.sum_base_nll / (double)a.n_scored), 2.0, 1e-12);
    TT_CHECK(a.n_kl == 2 && a.kl[0] < 1e-15, "kl[0]=%g", a.n_kl ? a.kl[0] : -1);
    TT_NEAR(a.kl[1], 0.143841036225890, 1e-7);
    /* argmax(l1) = 0 == base top1 0; argmax(l2) = 1 != 0 */
    TT_CHECK(a.n_top1_same == 1 && a.n_compressed == 1, "top1 %lld compressed %lld", (long long)a.n_top1_same,
             (long long)a.n_compressed);
    zc_eval_ppl_acc b = {0};
    TT_CHECK(zc_eval_ppl_merge(&b, &a) == ZC_OK && zc_eval_ppl_merge(&b, &a) == ZC_OK, "merge");
    TT_CHECK(b.n_scored == 4 && b.n_kl == 4 && b.n_top1_same == 2 && b.kl[3] == a.kl[1], "merged counts");
    zc_eval_ppl_acc_free(&a);
    zc_eval_ppl_acc_free(&b);
}

static void test_percentiles(void) {
    double x[4] = {4, 1, 3, 2};
    zc_eval_stats s;
    zc_eval_summarize(x, 4, &s);
    /* numpy: median([1,2,3,4]) = 2.5; percentile(.., 99) = 3 + 0.97 = 3.97 */
    TT_NEAR(s.mean, 2.5, 1e-15);
    TT_NEAR(s.median, 2.5, 1e-15);
    TT_NEAR(s.p99, 3.97, 1e-12);
    TT_CHECK(s.max == 4 && x[0] == 1, "sorted/max");
    double one[1] = {7};
    zc_eval_summarize(one, 1, &s);
    TT_CHECK(s.median == 7 && s.p99 == 7, "single value");
    zc_eval_summarize(NULL, 0, &s);
    TT_CHECK(isnan(s.mean) && s.n == 0, "empty sample");
}

static void test_wilson(void) {
    double lo, hi;
    /* p = 1/2, n = 10, z = 1.959964: center 0.5, half 0.263412 */
    zc_eval_wilson(5, 10, &lo, &hi);
    TT_NEAR(lo, 0.236593, 1e-5);
    TT_NEAR(hi, 0.763407, 1e-5);
    /* k = 0: [0, z^2/(n+z^2)] = [0, 3.8415/13.8415] = [0, 0.277533] */
    zc_eval_wilson(0, 10, &lo, &hi);
    TT_CHECK(lo == 0, "lo %g", lo);
    TT_NEAR(hi, 0.277533, 1e-5);
    zc_eval_wilson(10, 10, &lo, &hi);
    TT_NEAR(lo, 0.722467, 1e-5);
    TT_CHECK(hi == 1, "hi %g", hi);
    zc_eval_wilson(0, 0, &lo, &hi);
    TT_CHECK(lo == 0 && hi == 1, "n = 0");
}

/* ---- KL base file ---------------------------------------------------------------- */
static void test_klbase_roundtrip(void) {
    enum { V = 37, N = 5 };
    unsigned long long seed = 42;
    float logits[N][V];
    int targets[N];
    for (int t = 0; t < N; t++) {
        for (int i = 0; i < V; i++) logits[t][i] = 4 * tt_randf(&seed);
        targets[t] = (int)(tt_rand_u64(&seed) % V);
    }
    const char *path = tt_tmp_path("base.klb");
    zc_klbase_writer w;
    TT_CHECK(zc_klbase_create(&w, path, V, 64, 3) == ZC_OK, "%s", zc_last_error());
    for (int t = 0; t < N; t++) TT_CHECK(zc_klbase_append(&w, logits[t], targets[t]) == ZC_OK, "append");
    TT_CHECK(zc_klbase_close(&w) == ZC_OK, "close");
    zc_klbase b;
    TT_CHECK(zc_klbase_open(&b, path) == ZC_OK, "%s", zc_last_error());
    TT_CHECK(b.n_vocab == V && b.ctx == 64 && b.first_chunk == 3 && b.n_records == N, "header");
    TT_CHECK(b.size == ZC_KLBASE_HEADER_BYTES + N * (12 + 2 * V) && ZC_KLBASE_RECORD_BYTES(V) == 12 + 2 * V, "size %zu", b.size);
    for (int t = 0; t < N && b.n_records == N; t++) {
        int tg, top;
        double nll;
        const zc_fp16 *lp;
        zc_klbase_record(&b, (uint64_t)t, &tg, &top, &nll, &lp);
        TT_CHECK(tg == targets[t] && top == zc_eval_argmax(logits[t], V), "record %d ids", t);
        TT_NEAR(nll, zc_eval_nll(logits[t], V, targets[t]), 1e-6);
        double lse = zc_eval_logsumexp(logits[t], V);
        for (int i = 0; i < V; i++) TT_NEAR(zc_fp16_to_f32(lp[i]), logits[t][i] - lse, 2e-3);
        TT_CHECK(zc_eval_kl_fp16(lp, logits[t], V) < 1e-6, "self-KL %g", zc_eval_kl_fp16(lp, logits[t], V));
    }
    zc_klbase_close_reader(&b);

    /* Damaged files: truncated, wrong magic, token id out of range. */
    char *data;
    size_t len;
    TT_CHECK(zc_read_file(path, 1 << 20, &data, &len) == ZC_OK, "read back");
    const char *bad = tt_tmp_path("bad.klb");
    zc_write_file(bad, data, len - 1);
    TT_CHECK(zc_klbase_open(&b, bad) == ZC_ERR_FORMAT, "truncated file accepted");
    data[0] = 'X';
    zc_write_file(bad, data, len);
    TT_CHECK(zc_klbase_open(&b, bad) == ZC_ERR_FORMAT, "bad magic accepted");
    data[0] = 'Z';
    data[ZC_KLBASE_HEADER_BYTES] = (char)V; /* record 0 target = V */
    zc_write_file(bad, data, len);
    TT_CHECK(zc_klbase_open(&b, bad) == ZC_ERR_FORMAT, "target out of range accepted");
    free(data);
}

/* ---- Results files ---------------------------------------------------------------- */
static void test_results_resume(void) {
    const char *path = tt_tmp_path("results.jsonl");
    remove(path);
    zc_eval_results r;
    TT_CHECK(zc_eval_results_open(&r, path, "runA") == ZC_OK, "%s", zc_last_error());
    TT_CHECK(zc_eval_results_append(&r, "{\"run\":\"runA\",\"item\":7,\"score\":1,\"x\":\"a\\nb\"}") == ZC_OK, "append");
    TT_CHECK(zc_eval_results_append(&r, "{\"run\":\"runA\",\"item\":2,\"score\":0.5}") == ZC_OK, "append");
    zc_eval_results_close(&r);
    /* An interrupted write leaves a partial last line: dropped on open. */
    FILE *f = fopen(path, "a");
    fputs("{\"run\":\"runA\",\"item\":9,\"sc", f);
    fclose(f);
    TT_CHECK(zc_eval_results_open(&r, path, "runA") == ZC_OK, "%s", zc_last_error());
    TT_CHECK(r.n == 2, "%zu records", r.n);
    const zc_eval_done *d = zc_eval_results_find(&r, 7);
    TT_CHECK(d && d->score == 1 && strstr(d->json, "a\\nb"), "item 7");
    d = zc_eval_results_find(&r, 2);
    TT_CHECK(d && d->score == 0.5, "item 2");
    TT_CHECK(!zc_eval_results_find(&r, 9) && !zc_eval_results_find(&r, 3), "absent items found");
    TT_CHECK(zc_eval_results_append(&r, "{\"run\":\"runA\",\"item\":9,\"score\":0}") == ZC_OK, "append");
    zc_eval_results_close(&r);
    char *text;
    size_t len;
    TT_CHECK(zc_read_file(path, 1 << 20, &text, &len) == ZC_OK && !strstr(text, "\"sc{"), "partial line kept");
    free(text);
    /* Another configuration must not mix into the file. */
    TT_CHECK(zc_eval_results_open(&r, path, "runB") == ZC_ERR_FORMAT, "a different run was accepted");
    TT_CHECK(zc_eval_results_open(&r, NULL, "runB") == ZC_OK && !zc_eval_results_find(&r, 7), "inactive results");
    zc_eval_results_close(&r);
}

static void test_json_strings(void) {
    zc_strbuf b = {0};
    const char raw[] = "q\"\\\n\t\x01 \xc3\xa9";
    zc_sb_printf(&b, "{\"s\":");
    zc_sb_json_str(&b, raw, sizeof raw - 1);
    zc_sb_printf(&b, ",\"x\":");
    zc_sb_json_num(&b, NAN);
    zc_sb_printf(&b, ",\"y\":");
    zc_sb_json_num(&b, 0.1);
    zc_sb_printf(&b, "}");
    zc_json_doc *doc;
    const zc_json *root;
    TT_CHECK(zc_json_parse(b.s, b.len, "t", &doc, &root) == ZC_OK, "%s: %s", zc_last_error(), b.s);
    if (root) {
        const zc_json *s = zc_json_get(root, "s");
        TT_CHECK(s && s->len == sizeof raw - 1 && !memcmp(s->str, raw, s->len), "string round trip");
        TT_CHECK(zc_json_get(root, "x")->type == ZC_JSON_NULL, "NaN is null");
        double y;
        TT_CHECK(zc_json_num(zc_json_get(root, "y"), &y) && y == 0.1, "0.1 round trip");
        zc_json_free(doc);
    }
    zc_sb_free(&b);
}

/* ---- Sweep budget mapping -------------------------------------------------------- */
static void test_budget_config(void) {
    zc_kv_config c;
    zc_kv_config_default(&c);
    TT_CHECK(zc_eval_budget_config("uniform", 2.5, &c) && c.bits == 2 && !strcmp(c.policy, "uniform"), "uniform 2.5");
    TT_CHECK(zc_eval_budget_config("kivi", 4, &c) && c.bits == 4, "kivi 4");
    TT_CHECK(zc_eval_budget_config("zipcache", 3.5, &c) && c.target_bits == 3.5f, "zipcache target");
    TT_CHECK(zc_eval_budget_config("h2o", 4, &c) && c.budget_ratio == 0.25f, "h2o keeps 4/16");
    zc_kv_config d = c;
    TT_CHECK(zc_eval_budget_config("q4_0", 2.5, &d) && !strcmp(d.policy, "q4_0") && d.bits == c.bits, "q4_0 fixed");
    TT_CHECK(!zc_eval_budget_config("nonesuch", 3, &c), "unknown policy mapped");
}

/* ---- Python sandbox ---------------------------------------------------------------- */
static void test_python_sandbox(void) {
    const char *py = "/usr/bin/python3";
    if (access(py, X_OK) != 0) TT_SKIP("no %s", py);
    bool passed;
    char why[64];
    const char *ok = "def f(x):\n    return x + 1\nassert f(1) == 2\n";
    TT_CHECK(zc_eval_run_python(py, ok, strlen(ok), 5, &passed, why, sizeof why) == ZC_OK && passed, "%s", why);
    const char *wrong = "def f(x):\n    return x\nassert f(1) == 2\n";
    TT_CHECK(zc_eval_run_python(py, wrong, strlen(wrong), 5, &passed, why, sizeof why) == ZC_OK && !passed, "%s", why);
    const char *loop = "while True:\n    pass\n";
    TT_CHECK(zc_eval_run_python(py, loop, strlen(loop), 1, &passed, why, sizeof why) == ZC_OK && !passed &&
                 strstr(why, "timeout"),
             "%s", why);
    const char *hog = "x = bytearray(8 << 30)\n"; /* over the address-space limit */
    TT_CHECK(zc_eval_run_python(py, hog, strlen(hog), 5, &passed, why, sizeof why) == ZC_OK && !passed, "%s", why);
    const char *cwd = "import os\nassert os.path.exists('program.py') and 'zipcache-humaneval' in os.getcwd()\n";
    TT_CHECK(zc_eval_run_python(py, cwd, strlen(cwd), 5, &passed, why, sizeof why) == ZC_OK && passed,
             "runs in its temp dir: %s", why);
}

/* ---- The harness on the real model ------------------------------------------------ */
/* The perplexity harness decodes the scored half token by token; an fp32
 * cache must give the same NLL as scoring the whole chunk in one prefill
 * (independent path: ZC_LOGITS_ALL over the chunk), and a run against its
 * own fp16 base must show KL 0 and full top-1 agreement. */
static void test_ppl_harness_on_model(void) {
    const char *model = tt_asset("models/stories260K/stories260K.gguf");
    const char *text = tt_asset("data/tinystories/validation_head.txt");
    if (!model || !text) TT_SKIP("stories260K or tinystories text missing");
    zc_model *m;
    if (zc_model_load(model, &m) != ZC_OK) {
        TT_CHECK(0, "load: %s", zc_last_error());
        return;
    }
    enum { CTX = 64 };
    zc_eval_opts o;
    zc_eval_opts_default(&o);
    o.n_ctx = CTX;
    o.progress = false;
    snprintf(o.kv.policy, sizeof o.kv.policy, "fp32");
    zc_eval_ppl_opts p = {.text = text, .chunks = 2, .block = 1};
    zc_eval_summary s;
    int rc = zc_eval_ppl(m, model, &o, &p, &s);
    TT_CHECK(rc == ZC_OK, "ppl: %s", zc_last_error());

    /* Reference: tokenize the same text, score each chunk's second half from one prefill. */
    char *buf;
    size_t len;
    int32_t *ids = NULL;
    int n_ids = 0;
    if (rc == ZC_OK && zc_read_file(text, 1 << 20, &buf, &len) == ZC_OK) {
        len = len > 20000 ? 20000 : len;
        while (len && buf[len - 1] != '\n') len--;
        TT_CHECK(zc_model_tokenize(m, buf, len, 0, 0, &ids, &n_ids) == ZC_OK && n_ids >= 2 * CTX, "tokenize");
        free(buf);
        zc_context_params cp;
        zc_context_params_default(&cp);
        cp.n_ctx = CTX;
        cp.kv = &o.kv;
        zc_context *c;
        const zc_model_info *info = zc_model_get_info(m);
        float *logits = malloc((size_t)CTX * info->n_vocab * sizeof *logits);
        double sum = 0;
        int n = 0;
        if (zc_context_create(m, &cp, &c) == ZC_OK) {
            for (int k = 0; k < 2; k++) {
                int32_t chunk[CTX];
                memcpy(chunk, ids + k * CTX, sizeof chunk);
                chunk[0] = info->bos;
                zc_context_reset(c);
                TT_CHECK(zc_decode(c, chunk, CTX, ZC_LOGITS_ALL, logits) == ZC_OK, "%s", zc_last_error());
                for (int j = CTX / 2 - 1; j < CTX - 1; j++, n++)
                    sum += zc_eval_nll(logits + (size_t)j * info->n_vocab, info->n_vocab, chunk[j + 1]);
            }
            zc_context_free(c);
        }
        free(logits);
        TT_CHECK(n == 2 * (CTX - CTX / 2), "%d scored", n);
        TT_NEAR(s.score, exp(sum / n), 1e-4);
    }
    free(ids);
    /* Decoding the scored half in blocks of 7 (not a divisor of 32) scores the same tokens the same way. */
    double one_by_one = s.score;
    p.block = 7;
    TT_CHECK(zc_eval_ppl(m, model, &o, &p, &s) == ZC_OK, "block 7: %s", zc_last_error());
    TT_NEAR(s.score, one_by_one, 1e-4);
    p.block = 1;

    /* fp16 base, then the same fp16 run against it: KL exactly 0 up to the
     * fp16 storage of the log-probs, top-1 agreement 1. */
    snprintf(o.kv.policy, sizeof o.kv.policy, "fp16");
    p.save_kl_base = tt_tmp_path("model.klb");
    TT_CHECK(zc_eval_ppl(m, model, &o, &p, &s) == ZC_OK, "base: %s", zc_last_error());
    zc_eval_ppl_opts q = p;
    q.save_kl_base = NULL;
    q.kl_base = p.save_kl_base;
    TT_CHECK(zc_eval_ppl(m, model, &o, &q, &s) == ZC_OK, "kl: %s", zc_last_error());
    double kl_mean = NAN, top1 = NAN, ratio = NAN;
    for (int i = 0; i < s.n_metrics; i++) {
        if (!strcmp(s.metrics[i].name, "kl_mean")) kl_mean = s.metrics[i].value;
        if (!strcmp(s.metrics[i].name, "top1_agreement")) top1 = s.metrics[i].value;
        if (!strcmp(s.metrics[i].name, "ppl_ratio")) ratio = s.metrics[i].value;
    }
    TT_CHECK(kl_mean < 1e-6 && top1 == 1, "kl %g top1 %g", kl_mean, top1);
    TT_NEAR(ratio, 1.0, 1e-6);
    TT_NEAR(zc_eval_summary_ratio(&s), 1.0, 1e-12);
    /* A base made for other chunks is refused, not silently misaligned. */
    q.chunks = 3;
    o.offset = 2;
    TT_CHECK(zc_eval_ppl(m, model, &o, &q, &s) == ZC_ERR_ARG, "base of chunks 0..1 used for chunk 2");
    zc_model_free(m);
}

/* ---- --score mode for the numpy reference ------------------------------------------ */
static int score_mode(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: test_eval --score BASE.f32 RUN.f32 TARGETS.i32 N_TOKENS N_VOCAB\n");
        return 2;
    }
    int n = atoi(argv[5]), v = atoi(argv[6]);
    char *base, *run, *tg;
    size_t lb, lr, lt;
    if (n <= 0 || v <= 0 || zc_read_file(argv[2], 1u << 30, &base, &lb) || zc_read_file(argv[3], 1u << 30, &run, &lr) ||
        zc_read_file(argv[4], 1u << 30, &tg, &lt) || lb != (size_t)n * v * 4 || lr != lb || lt != (size_t)n * 4) {
        fprintf(stderr, "bad inputs: %s\n", zc_last_error());
        return 1;
    }
    const float *bl = (const float *)(void *)base, *rl = (const float *)(void *)run;
    const int32_t *t = (const int32_t *)(void *)tg;
    char path[512];
    snprintf(path, sizeof path, "%s.klb", argv[2]);
    zc_klbase_writer w;
    zc_klbase kb;
    if (zc_klbase_create(&w, path, v, 2 * n, 0)) return 1;
    for (int i = 0; i < n; i++)
        if (zc_klbase_append(&w, bl + (size_t)i * v, t[i])) return 1;
    if (zc_klbase_close(&w) || zc_klbase_open(&kb, path)) return 1;
    zc_eval_ppl_acc a = {0};
    for (int i = 0; i < n; i++) {
        int tgt, top;
        double nll;
        const zc_fp16 *lp;
        zc_klbase_record(&kb, (uint64_t)i, &tgt, &top, &nll, &lp);
        if (zc_eval_ppl_add(&a, rl + (size_t)i * v, v, tgt, lp, top, nll, false)) return 1;
    }
    zc_eval_stats st;
    double ppl = exp(a.sum_nll / n), base_ppl = exp(a.sum_base_nll / n), top1 = (double)a.n_top1_same / n;
    zc_eval_summarize(a.kl, a.n_kl, &st);
    printf("ppl %.17g\nbase_ppl %.17g\nkl_mean %.17g\nkl_median %.17g\nkl_p99 %.17g\nkl_max %.17g\ntop1 %.17g\n",
           ppl, base_ppl, st.mean, st.median, st.p99, st.max, top1);
    zc_eval_ppl_acc_free(&a);
    zc_klbase_close_reader(&kb);
    remove(path);
    free(base);
    free(run);
    free(tg);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--score")) return score_mode(argc, argv);
    if (tt_tmp_open("eval")) return 1;
    TT_RUN(test_first_last_number);
    TT_RUN(test_gsm8k_reference);
    TT_RUN(test_stop_at);
    TT_RUN(test_gsm8k_prompt);
    TT_RUN(test_nll_by_hand);
    TT_RUN(test_kl_by_hand);
    TT_RUN(test_ppl_accumulator);
    TT_RUN(test_percentiles);
    TT_RUN(test_wilson);
    TT_RUN(test_klbase_roundtrip);
    TT_RUN(test_results_resume);
    TT_RUN(test_json_strings);
    TT_RUN(test_budget_config);
    TT_RUN(test_python_sandbox);
    TT_RUN(test_ppl_harness_on_model);
    tt_tmp_close();
    return tt_finish();
}
