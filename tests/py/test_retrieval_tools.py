#!/usr/bin/env python3
"""Tests of tools/retrieval: the document generator, the word-level tokenizer, the HF export, the
training script's data, and (where torch is installed) a CPU smoke run of the training.

  * gen_lines: the same arguments give the same documents, seeds and splits give different ones,
    and generated records pass the same structural check as every record of the shared LongEval
    files (fields and types, header, line grammar, question, correct_line at random_idx).
  * wordtok: the engine encodes whole documents (from the HF directory and from the converted
    GGUF) exactly as the training code does; every key word is one token, a number at most two.
  * export: a random tiny model written by export.py runs in the engine, directly from the
    HF directory (F32) and converted to F16 GGUF, with logits equal to the numpy forward pass of
    tests/py/test_forward_ref.py on the same weights (HF rotate-half RoPE, tied embeddings).
  * eval lines: a model whose answer does not depend on the document (a bigram chain that always
    says "<N>") is scored right exactly on the documents whose number is N, which checks that
    `zipcache eval lines` reads generated files and extracts the answer end to end.
  * train_retrieval without torch: every answer token, and only those, is a target, at the
    position before it; the prompt decodes back to the document; the longest document that
    max_lines_for allows fits the context and one more line does not.
  * gguf_set (tools/gguf_set.py, evaluate.py --window): the copy of the retrieval model with
    sliding-window metadata holds the same tensors and other keys, plus the two it was given; the
    engine gives the same logits while a prompt fits the window and others once it does not; a
    malformed KEY=TYPE:VALUE is refused.
  * with torch: `train_retrieval.py --smoke` runs, its losses are finite, and the exported
    checkpoint's engine logits equal the torch model's.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
TOOLS = os.path.join(ROOT, "tools", "retrieval")
sys.path.insert(0, TOOLS)
sys.path.insert(0, HERE)

import export  # noqa: E402
import gen_lines  # noqa: E402
import train_retrieval as tr  # noqa: E402
import wordtok  # noqa: E402
from test_forward_ref import ASSETS, BIN, engine_logits, forward, load_hf, read_safetensors, rope_rotate_half  # noqa: E402

TOL = 1e-4
TOK = wordtok.Tokenizer()
TINY = dict(dim=128, ffn_dim=192, n_layers=2, n_heads=2, n_kv_heads=1, head_dim=64, max_seq_len=2048,
            norm_eps=1e-5, rope_theta=10000.0, vocab_size=TOK.n_vocab)
FIELDS = {"prompt": str, "correct_line": str, "expected_number": int, "num_lines": int, "random_idx": list}
# LongEval's 800/1000/1200 files have keys of several words ("fancy-dune buggy") and end the
# question without the space after "number." that the 200/400/600 files (and gen_lines) have.
LINE = re.compile(r"line ([^:\n]+): REGISTER_CONTENT is <(\d+)>\n")


def report(name, ok, why=""):
    print(f"{'PASS' if ok else 'FAIL'} {name}", flush=True)
    if not ok and why:
        print(f"  {name}: {why}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode(errors='replace')[-2000:]}")
    return r


def record_problems(r):
    """What is wrong with record r as a LongEval line-retrieval record ('' if nothing)."""
    for k, t in FIELDS.items():
        if not isinstance(r.get(k), t) or isinstance(r.get(k), bool):
            return f"field {k} is {type(r.get(k)).__name__}, not {t.__name__}"
    p = r["prompt"]
    if not p.startswith(gen_lines.HEADER):
        return "prompt does not start with the LongEval header"
    body = p[len(gen_lines.HEADER):]
    lines = LINE.findall(body)
    record_text = "".join(f"line {k}: REGISTER_CONTENT is <{n}>\n" for k, n in lines)
    key, idx = r["random_idx"] if len(r["random_idx"]) == 2 else (None, None)
    if not isinstance(key, str) or not isinstance(idx, int):
        return f"random_idx {r['random_idx']} is not [key, index]"
    question = gen_lines.QUESTION.format(key=key)
    if body not in (record_text + question, record_text + question.rstrip(" ")):
        return "prompt is not header + lines + question about random_idx's key"
    if len(lines) != r["num_lines"] or not 0 <= idx < len(lines) or lines[idx][0] != key:
        return f"{len(lines)} lines for num_lines {r['num_lines']}, random_idx {r['random_idx']}"
    if r["correct_line"] != f"line {key}: REGISTER_CONTENT is <{r['expected_number']}>\n" or \
            int(lines[idx][1]) != r["expected_number"]:
        return "correct_line / expected_number disagree with the line at random_idx"
    if not all(1 <= int(n) <= gen_lines.MAX_NUMBER for _, n in lines):
        return "a number outside 1..50000"
    return ""


# ---- gen_lines ---------------------------------------------------------------------------

def test_gen_determinism(tmp):
    a = gen_lines.documents("train", 3, 40, 5)
    b = gen_lines.documents("train", 3, 40, 5)
    files = []
    for i in range(2):
        files.append(os.path.join(tmp, f"d{i}.jsonl"))
        run([sys.executable, os.path.join(TOOLS, "gen_lines.py"), "--lines", "40", "--count", "5", "--seed", "3",
             "--split", "train", "-o", files[-1]])
    cli = [json.loads(x) for x in open(files[0], encoding="utf-8")]
    same = a == b and open(files[0], "rb").read() == open(files[1], "rb").read() and cli == a
    # a later slice of the stream is the same documents: generation is per document
    same = same and gen_lines.documents("train", 3, 40, 2, first=3) == a[3:]
    others = [gen_lines.documents("train", 4, 40, 5), gen_lines.documents("test", 3, 40, 5)]
    differ = all(o[i]["prompt"] != a[i]["prompt"] for o in others for i in range(5))
    unique = all(len({k for k, _ in LINE.findall(r["prompt"])}) == 40 for r in a)
    report("retrieval_gen_deterministic", same, "repeated generation differs")
    report("retrieval_gen_seed_and_split_differ", differ and unique, "a seed/split repeats a document or a key")


def test_gen_format():
    recs = [r for n in (1, 7, 200, 1200) for r in gen_lines.documents("test", 0, n, 3)]
    bad = [(r["num_lines"], record_problems(r)) for r in recs if record_problems(r)]
    report("retrieval_gen_format", not bad, f"generated records: {bad[:3]}")
    shared = os.path.join(ASSETS, "data", "longeval_lines")
    if not os.path.isdir(shared):
        print(f"SKIP retrieval_gen_format_matches_longeval: {shared} not found", flush=True)
        return
    problems, n = [], 0
    for name in sorted(os.listdir(shared)):
        if not name.endswith("_lines.jsonl"):
            continue
        for i, line in enumerate(open(os.path.join(shared, name), encoding="utf-8")):
            r = json.loads(line)
            n += 1
            p = record_problems(r)
            # LongEval's keys repeat now and then; the check reads line random_idx[1], which holds.
            if p:
                problems.append(f"{name}:{i + 1}: {p}")
    report("retrieval_gen_format_matches_longeval", n >= 50 and not problems,
           f"{n} shared records, problems: {problems[:3]}")


# ---- the tokenizer ----------------------------------------------------------------------

def engine_ids(model, text, tmp):
    f = os.path.join(tmp, "prompt.txt")
    with open(f, "w", encoding="utf-8") as fp:
        fp.write(text)
    return [int(x) for x in run([BIN, "tokenize", "-m", model, "-f", f]).stdout.split()]


def test_tokenizer(tmp):
    hf = os.path.join(tmp, "tok-model")
    export.write_hf(hf, TINY, export.random_tensors(TINY, seed=3))
    gguf = os.path.join(tmp, "tok-model.gguf")
    run([BIN, "convert", hf, "-o", gguf, "--type", "f32"])
    docs = [r for n in (1, 37, 150) for r in gen_lines.documents("test", 4, n, 2)]
    bad = []
    for model in (hf, gguf):
        for r in docs:
            text = r["prompt"] + f"<{r['expected_number']}>"
            want = [wordtok.BOS] + TOK.encode(r["prompt"]) + TOK.encode(f"<{r['expected_number']}>")
            got = engine_ids(model, r["prompt"], tmp) + TOK.encode(f"<{r['expected_number']}>")
            if got != want or TOK.decode(want) != text:
                bad.append((os.path.basename(model), r["num_lines"]))
    report("retrieval_tokenizer_engine_matches", not bad, f"engine ids differ for {bad[:4]}")
    words = [" " + a for a in gen_lines.ADJECTIVES] + ["-" + n for n in gen_lines.NOUNS]
    single = all(len(TOK.encode(w)) == 1 for w in words)
    nums = all(TOK.encode(str(n)) == [TOK.vocab[c] for c in str(n)] for n in (1, 9, 10, 99, 100, 999, 1000, 12345, 50000))
    line = len(TOK.encode(gen_lines.line_text("amber-acorn", 12345)))
    report("retrieval_tokenizer_words", single and nums and line == 14,
           f"key words one token each: {single}, numbers one token per digit: {nums}, a line is {line} tokens")
    # Text outside the documents' words still round-trips (merges, then bytes).
    odd = "Zebra-crossing 1234567 {x}\t~"
    ok = TOK.decode(TOK.encode(odd)) == odd and engine_ids(gguf, odd, tmp) == [wordtok.BOS] + TOK.encode(odd)
    report("retrieval_tokenizer_other_text", ok, f"{TOK.encode(odd)} vs {engine_ids(gguf, odd, tmp)}")


# ---- export and the engine -----------------------------------------------------------------

def logits_check(name, model, W, hp, prompt):
    ids, got = engine_logits(model, prompt)
    want = forward(W, ids, hp, rope_rotate_half)
    err = float(np.max(np.abs(got - want)))
    same_ids = list(ids) == [wordtok.BOS] + TOK.encode(prompt)
    print(f"  {name}: {len(ids)} tokens, max |logit - reference| = {err:.3g} (tolerance {TOL})", file=sys.stderr)
    report(name, same_ids and err <= TOL, f"ids are BOS + wordtok's: {same_ids}, error {err:.3g}")


def test_export_roundtrip(tmp):
    hf = os.path.join(tmp, "tiny")
    tensors = export.random_tensors(TINY, seed=5)
    export.write_hf(hf, TINY, tensors)
    prompt = gen_lines.documents("test", 1, 12, 1)[0]["prompt"]
    W, hp = load_hf(hf)
    tied = json.load(open(os.path.join(hf, "config.json")))["tie_word_embeddings"] and W["output"] is W["embed"]
    report("retrieval_export_tied", tied, "the export is not a tied-embedding checkpoint")
    logits_check("retrieval_export_hf_logits", hf, W, hp, prompt)
    gguf = os.path.join(tmp, "tiny-f16.gguf")
    run([BIN, "convert", hf, "-o", gguf, "--type", "f16"])
    # F16 GGUF: the reference runs on the same weights rounded to fp16 (norms stay F32).
    h = lambda a: a.astype(np.float16).astype(np.float64)  # noqa: E731
    Wr = dict(W, embed=h(W["embed"]), output=h(W["output"]),
              layers=[{k: (v if k.endswith("norm") else h(v)) for k, v in L.items()} for L in W["layers"]])
    logits_check("retrieval_export_gguf_f16_logits", gguf, Wr, hp, prompt)
    q8 = os.path.join(tmp, "tiny-q8_0.gguf")
    run([BIN, "convert", hf, "-o", q8, "--type", "q8_0"])
    out = run([BIN, "run", "-m", q8, "-p", prompt, "-n", "4", "--temp", "0"]).stdout
    report("retrieval_export_q8_0_runs", out.startswith(prompt.encode()), "q8_0 conversion did not run")


def bigram_model(path, answer):
    """A model whose next token depends only on the current one (attention and MLP outputs are
    zero, so the residual stream is the token's embedding): " " -> answer's tokens -> EOS. The
    prompt ends in a space, so greedy generation writes `answer` and stops, whatever the
    document says. It needs its own output projection (untied)."""
    chain = TOK.encode(" ") + TOK.encode(answer) + [wordtok.EOS]
    assert len(set(chain[:-1])) == len(chain) - 1, "each token of the chain must be distinct"
    hp = dict(TINY, untied=True)
    t = export.random_tensors(hp, seed=9)
    for name in t:
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            t[name] = np.zeros_like(t[name])
        elif name.endswith("norm.weight"):
            t[name] = np.ones_like(t[name])
    e = t["model.embed_tokens.weight"]
    unit = e / np.linalg.norm(e, axis=1, keepdims=True)
    head = np.zeros_like(e)
    for cur, nxt in zip(chain, chain[1:]):
        head[nxt] += 8 * unit[cur]  # logit of nxt after cur: 8*sqrt(dim); any other: |cos| * that
    t["lm_head.weight"] = head
    export.write_hf(path, hp, t)


def test_eval_lines(tmp):
    recs = gen_lines.documents("test", 2, 6, 12)
    distinct = lambda n: len(TOK.encode(str(n))) == len(set(TOK.encode(str(n))))  # noqa: E731
    target = next(r["expected_number"] for r in recs if distinct(r["expected_number"]))
    recs[5] = dict(recs[5])  # one more document with the same number, built through the generator's own text
    lines = LINE.findall(recs[5]["prompt"])
    key, idx = recs[5]["random_idx"]
    recs[5]["prompt"] = recs[5]["prompt"].replace(f"line {key}: REGISTER_CONTENT is <{lines[idx][1]}>\n",
                                                  gen_lines.line_text(key, target))
    recs[5]["expected_number"], recs[5]["correct_line"] = target, gen_lines.line_text(key, target)
    data = os.path.join(tmp, "lines.jsonl")
    with open(data, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs)
    model = os.path.join(tmp, "bigram")
    bigram_model(model, f"<{target}>")
    res, summ = os.path.join(tmp, "res.jsonl"), os.path.join(tmp, "sum.json")
    run([BIN, "eval", "lines", "-m", model, "--data", data, "--max-new", "12", "--results", res, "--json", summ,
         "--no-progress"])
    items = [json.loads(x) for x in open(res, encoding="utf-8")]
    s = json.load(open(summ, encoding="utf-8"))
    want = [float(r["expected_number"] == target) for r in recs]
    ok = (s["items"] == len(recs) and [it["score"] for it in items] == want and sum(want) >= 2
          and all(it["expected"] == r["expected_number"] and it["got"] == target and it["output"] == f"<{target}>"
                  for it, r in zip(items, recs)) and abs(s["score"] - sum(want) / len(recs)) < 1e-12)
    report("retrieval_eval_lines_constant_answer", ok,
           f"scores {[it['score'] for it in items]} want {want}, outputs {[it.get('output') for it in items[:2]]}")


# ---- tools/gguf_set.py --------------------------------------------------------------------------

def test_gguf_set(tmp):
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import files_ref  # noqa: E402
    src = os.path.join(ROOT, "models", "zipcache-retrieval-1m-f16.gguf")
    if not os.path.exists(src):
        print("SKIP retrieval_gguf_set: models/zipcache-retrieval-1m-f16.gguf is missing", flush=True)
        return
    dst, tool = os.path.join(tmp, "swa.gguf"), os.path.join(ROOT, "tools", "gguf_set.py")
    run([sys.executable, tool, src, dst, "llama.attention.sliding_window=uint:8",
         "llama.attention.sliding_window_pattern=uint:2"])
    kv0, _, t0 = files_ref.read_gguf(src)
    kv1, types, t1 = files_ref.read_gguf(dst)
    added = {"llama.attention.sliding_window": 8, "llama.attention.sliding_window_pattern": 2}
    same = (all(kv1.get(k) == v and types[k] == 4 for k, v in added.items())
            and {k: v for k, v in kv1.items() if k not in added}.keys() == kv0.keys()
            and all(np.array_equal(np.asarray(kv1[k]), np.asarray(kv0[k])) for k in kv0)
            and t0.keys() == t1.keys() and all(t0[n]["raw"] == t1[n]["raw"] for n in t0))
    report("retrieval_gguf_set_copy", same, "keys or tensors differ")
    short, long_ = "line a-b: REGISTER", "line amber-acorn: REGISTER_CONTENT is <42374>\nline"
    _, a = engine_logits(src, short)
    _, b = engine_logits(dst, short)
    _, c = engine_logits(src, long_)
    _, d = engine_logits(dst, long_)
    ok = len(a) <= 8 < len(c) and np.array_equal(a, b) and np.abs(c[8:] - d[8:]).max() > 1e-3
    report("retrieval_gguf_set_window_read", ok, f"{len(a)} / {len(c)} tokens, late logits moved by "
           f"{np.abs(c[8:] - d[8:]).max() if len(c) > 8 else 0:.3g}")
    r = subprocess.run([sys.executable, tool, src, os.path.join(tmp, "bad.gguf"), "llama.x=double:1"],
                       capture_output=True, text=True)
    report("retrieval_gguf_set_refuses", r.returncode != 0 and "KEY=TYPE:VALUE" in r.stderr, r.stderr[-300:])


# ---- train_retrieval without torch -----------------------------------------------------------

def test_train_data():
    import random
    rng = random.Random(7)
    ok, why = True, ""
    for n, q in ((1, 16), (5, 3), (40, 16)):
        rec = gen_lines.document(random.Random(n), n)
        ids, tgt = tr.encode_doc(TOK, rng, n, q, rec=rec)
        prompt_ids = TOK.encode(rec["prompt"])
        asked = min(n, q)
        answers = [i for i, t in enumerate(tgt) if t >= 0]
        # every target is the next token, inside an answer "<N>" that follows a question
        nexts = all(tgt[i] == ids[i + 1] for i in answers)
        text_answers = TOK.decode([ids[i + 1] for i in answers])
        want = f"<{rec['expected_number']}>"
        first = TOK.decode(ids[len(prompt_ids) + 1:len(prompt_ids) + 1 + len(TOK.encode(want))])
        ok_n = (ids[0] == wordtok.BOS and ids[1:len(prompt_ids) + 1] == prompt_ids and ids[-1] == wordtok.EOS
                and len(ids) == len(tgt) and nexts and text_answers.count("<") == asked
                and first == want
                and all(ids[i + 1] != wordtok.EOS for i in answers))
        keys = re.findall(r"in line ([a-z]+-[a-z]+)\?", TOK.decode(ids))
        ok_n = ok_n and len(keys) == asked and len(set(keys)) == asked  # no key is asked twice
        if not ok_n:
            ok, why = False, f"{n} lines, {q} questions: answers '{text_answers}', keys {keys}"
    report("retrieval_train_targets", ok, why)

    full = tr.max_lines_for(TOK, 4096)
    worst = lambda n: 1 + len(TOK.encode(gen_lines.HEADER + "".join(  # noqa: E731
        gen_lines.line_text("amber-acorn", 12345) for _ in range(n)) +
        gen_lines.QUESTION.format(key="amber-acorn"))) + len(TOK.encode("<12345>")) + 1  # + EOS
    real = max(len(tr.encode_doc(TOK, rng, full, 1)[0]) for _ in range(5))
    report("retrieval_train_length_bound", worst(full) <= 4096 < worst(full + 1) and real <= 4096,
           f"{full} lines: worst {worst(full)}, next {worst(full + 1)}, real {real}")
    steps = [tr.lines_for_step(rng, 50) for _ in range(400)]
    report("retrieval_train_curriculum_draws", min(steps) == 2 and max(steps) == 50 and
           sum(s >= 25 for s in steps) > 200, f"draws from {min(steps)} to {max(steps)}")


def test_annotate():
    """The deep-supervision targets: every record line's number and every answer carry its key;
    each answer digit's source is the same digit of the asked line."""
    import random
    kt = tr.KeyTokens(TOK)
    ok, why = True, ""
    for n, q, recall in ((3, 2, 0.0), (12, 6, 0.5), (30, 16, 1.0)):
        rng = random.Random(n)
        rec = gen_lines.document(random.Random(100 + n), n)
        ids, tgt = tr.encode_doc(TOK, rng, n, q, rec=rec, recall=recall)
        adj, noun, src = tr.annotate(kt, ids)
        text = [TOK.decode([t]) for t in ids]
        keyed = [i for i in range(len(ids)) if adj[i] >= 0]
        digits_keyed = all(adj[i] >= 0 for i, t in enumerate(text) if t.isdigit())
        # a keyed position names the key of the nearest "line <adj>-<noun>" before it
        def key_before(i):
            j = max(k for k in range(i) if text[k] in ("line", " line") and k + 2 < len(ids) and
                    ids[k + 1] in kt.adj and ids[k + 2] in kt.noun)
            return kt.adj[ids[j + 1]], kt.noun[ids[j + 2]]
        keys_right = all((adj[i], noun[i]) == key_before(i) for i in keyed)
        answer_digits = [i for i, t in enumerate(tgt) if t >= 0 and TOK.decode([t]).isdigit()]
        sources = all(src[i] >= 0 and ids[src[i]] == ids[i + 1] and src[i] < i and
                      (adj[src[i]], noun[src[i]]) == (adj[i], noun[i]) for i in answer_digits)
        only = sum(x >= 0 for x in src) == len(answer_digits)
        if not (digits_keyed and keys_right and sources and only and answer_digits):
            ok, why = False, f"{n} lines: digits keyed {digits_keyed}, keys {keys_right}, sources {sources}, only {only}"
    report("retrieval_train_annotate", ok, why)


# ---- train_retrieval with torch --------------------------------------------------------------

def test_smoke_training(tmp):
    try:
        import torch
    except ImportError:
        print("SKIP retrieval_train_smoke: torch is not importable (apt install python3-torch)", flush=True)
        return
    out = os.path.join(tmp, "smoke")
    r = subprocess.run([sys.executable, os.path.join(TOOLS, "train_retrieval.py"), "--smoke", "--out", out],
                       capture_output=True, text=True)
    rep = json.load(open(os.path.join(out, "train_report.json"))) if r.returncode == 0 else {}
    hist = rep.get("history", [])
    finite = bool(hist) and all(np.isfinite(x["loss"]) for x in hist) and rep["steps"] >= 5
    report("retrieval_train_smoke", r.returncode == 0 and finite, r.stdout[-1500:] + r.stderr[-1500:])
    if r.returncode != 0:
        return
    # The trained weights through the engine agree with the torch model that produced them.
    state = torch.load(os.path.join(out, tr.STATE))
    mc = tr.ModelConfig(**state["mc"])
    model = tr.build_model(mc)
    model.load_state_dict(state["model"])
    W, hp = load_hf(out)
    prompt = gen_lines.documents("test", 0, 2, 1)[0]["prompt"]
    ids, got = engine_logits(out, prompt)
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(ids, dtype=np.int64))[None]
        want = model.logits_at(x, torch.ones_like(x, dtype=torch.bool)).double().numpy()
    err = float(np.max(np.abs(got - want)))
    ref_err = float(np.max(np.abs(forward(W, ids, hp, rope_rotate_half) - want)))
    print(f"  retrieval_train_smoke_engine_logits: max |engine - torch| = {err:.3g}, |numpy - torch| = {ref_err:.3g}",
          file=sys.stderr)
    report("retrieval_train_smoke_engine_logits", err <= TOL and ref_err <= TOL, f"errors {err:.3g} {ref_err:.3g}")

    # --resume continues the saved run with its saved settings (the attention loss, on from the
    # smoke run's step 3, stays on); --max-lines caps the curriculum
    r = subprocess.run([sys.executable, os.path.join(TOOLS, "train_retrieval.py"), "--smoke", "--out", out, "--resume",
                        "--max-steps", "9", "--max-lines", "3"], capture_output=True, text=True)
    rep = json.load(open(os.path.join(out, "train_report.json"))) if r.returncode == 0 else {}
    hist = rep.get("history", [])
    ok = (r.returncode == 0 and rep["steps"] == 9 and hist[-1]["longest"] <= 3 and "resumed at step 6" in r.stdout
          and " attn " in r.stdout.splitlines()[-2])
    report("retrieval_train_resume", ok, r.stdout[-1500:] + r.stderr[-1500:])
    # curve.py: a row per kept check, every check in the CSV
    csv_path = os.path.join(tmp, "curve.csv")
    r = subprocess.run([sys.executable, os.path.join(TOOLS, "curve.py"), os.path.join(out, "train_report.json"),
                        "--every", "3", "--csv", csv_path], capture_output=True, text=True)
    table = [ln for ln in r.stdout.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    rows = open(csv_path).read().splitlines()[1:] if r.returncode == 0 else []
    report("retrieval_curve", r.returncode == 0 and len(table) == len(hist) == len(rows) == 3,
           r.stdout[-800:] + r.stderr[-800:])


def main():
    if not os.path.exists(BIN):
        print(f"FAIL retrieval_tools: {BIN} not built")
        return
    with tempfile.TemporaryDirectory() as tmp:
        test_gen_determinism(tmp)
        test_gen_format()
        test_tokenizer(tmp)
        test_export_roundtrip(tmp)
        test_eval_lines(tmp)
        test_gguf_set(tmp)
        test_train_data()
        test_annotate()
        test_smoke_training(tmp)


if __name__ == "__main__":
    main()
