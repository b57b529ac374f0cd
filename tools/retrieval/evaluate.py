#!/usr/bin/env python3
"""Line-retrieval accuracy of the retrieval model under every KV-cache policy, at several lengths.

For each length it writes --count held-out documents (gen_lines.py, test split, --seed, never a
training document: training draws the train split), runs `zipcache eval lines` once per setting
and length (a finished run's JSON is kept, so an interrupted evaluation resumes), and writes

    OUT/retrieval.md     two tables: exact-answer accuracy [Wilson 95%] with the measured compression
                         (16 x elements / all stored bits), and the mean KL of the answer tokens
                         against an fp16 cache (`eval lines --answer-kl`), every setting at every length
    OUT/retrieval.csv    one row per (setting, length)

    evaluate.py -m models/zipcache-retrieval-1m-f16.gguf --out eval/retrieval --lines 50,100,150

--window W evaluates a copy of the model with sliding-window layers (tools/gguf_set.py), --grid
local the two rules for zipcache's local layers (--kv-local).

Settings are "tag=policy options" (--setting, repeatable); the defaults are fp16 and each policy
at about 3x to 6x compression.
"""
import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_lines  # noqa: E402

sys.path.insert(0, os.path.join(HERE, ".."))
import gguf_set  # noqa: E402  (tools/gguf_set.py)

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
# tag -> options. --kv-bits is the stored-bit budget for zipcache and mikv (all bits counted), the
# code width for uniform and kivi; h2o keeps a fraction of the tokens.
DEFAULT_SETTINGS = [
    ("fp16", "--kv fp16"),
    ("q8_0", "--kv q8_0"),
    ("q4_0", "--kv q4_0"),
    ("q4_0r", "--kv q4_0r"),
    ("zipcache-3x", "--kv zipcache --kv-bits 5.33"),
    ("zipcache-4x", "--kv zipcache --kv-bits 4"),
    ("zipcache-5x", "--kv zipcache --kv-bits 3.2"),
    ("zipcache-6x", "--kv zipcache --kv-bits 2.67"),
    ("zipcache-4x, rotated keys", "--kv zipcache --kv-bits 4 --kv-rotate on"),
    ("zipcache-5x, rotated keys", "--kv zipcache --kv-bits 3.2 --kv-rotate on"),
    ("zipcache-4x, keys not rotated", "--kv zipcache --kv-bits 4 --kv-rotate off"),
    ("zipcache-5x, keys not rotated", "--kv zipcache --kv-bits 3.2 --kv-rotate off"),
    ("mikv-3x", "--kv mikv --kv-bits 5.33"),
    ("mikv-4x", "--kv mikv --kv-bits 4"),
    ("mikv-5x", "--kv mikv --kv-bits 3.2"),
    ("mikv-6x", "--kv mikv --kv-bits 2.67"),
    ("uniform-4b", "--kv uniform --kv-bits 4"),
    ("uniform-3b", "--kv uniform --kv-bits 3"),
    ("uniform-2b", "--kv uniform --kv-bits 2"),
    ("kivi-4b", "--kv kivi --kv-bits 4"),
    ("kivi-3b", "--kv kivi --kv-bits 3"),
    ("kivi-2b", "--kv kivi --kv-bits 2"),
    ("h2o-4x", "--kv h2o --kv-budget-ratio 0.25"),
    ("h2o-5x", "--kv h2o --kv-budget-ratio 0.2"),
    ("h2o-6x", "--kv h2o --kv-budget-ratio 0.167"),
]

# zipcache's budget rules at ~4x, each undone in turn, beside fp16, kivi and the ~5x budget:
# the plan chosen by the salient fraction instead of the probes' output error (--kv-plan), and a
# fixed stream gap instead of one that shortens while the context is short (--kv-window-share).
BUDGET_SETTINGS = [
    ("fp16", "--kv fp16"),
    ("zipcache-4x", "--kv zipcache --kv-bits 4"),
    ("zipcache-4x, plan by salient fraction", "--kv zipcache --kv-bits 4 --kv-plan fraction"),
    ("zipcache-4x, fixed stream gap 100", "--kv zipcache --kv-bits 4 --kv-window-share 0"),
    ("zipcache-5x", "--kv zipcache --kv-bits 3.2"),
    ("kivi-4b", "--kv kivi --kv-bits 4"),
    ("kivi-3b", "--kv kivi --kv-bits 3"),
]

# Sliding-window layers (--window): the two rules for zipcache's local layers, compressed by it
# within their window (--kv-local compress, the default) or kept exact in fp16 beside it, at the
# 4-bit budget, one above and the ~5x one, and with the local layers' own budget of 5 bits
# (--kv-local-bits), beside fp16 and kivi (whose local layers stay exact).
LOCAL_SETTINGS = [
    ("fp16", "--kv fp16"),
    ("zipcache 4 bits, local layers exact", "--kv zipcache --kv-bits 4 --kv-local exact"),
    ("zipcache 3.2 bits, local layers exact", "--kv zipcache --kv-bits 3.2 --kv-local exact"),
    ("zipcache 4 bits, local layers compressed", "--kv zipcache --kv-bits 4 --kv-local compress"),
    ("zipcache 5 bits, local layers compressed", "--kv zipcache --kv-bits 5 --kv-local compress"),
    ("zipcache 3.2 bits, local layers compressed", "--kv zipcache --kv-bits 3.2 --kv-local compress"),
    ("zipcache 4 bits, local layers compressed at 5", "--kv zipcache --kv-bits 4 --kv-local-bits 5"),
    ("zipcache 3.2 bits, local layers compressed at 5", "--kv zipcache --kv-bits 3.2 --kv-local-bits 5"),
    ("kivi-4b", "--kv kivi --kv-bits 4"),
]

# The paper's ablations (the saliency score, Table A; the probe strategy, Table 2) as retrieval
# accuracy at one budget (--ablation-bits: 4, ~4x, where this model is neither lossless nor lost;
# 3.2, ~5x, the paper's), and this engine's own choices: the prompt in one forward step (one
# segment per layer: the paper's setting) instead of 512-token steps, key parameters per 128
# tokens, Hadamard-rotated keys (on, and off: the default, auto, chooses per layer).
def ablation_settings(bits):
    z = f"--kv zipcache --kv-bits {bits:g}"
    return [
        ("normalized (L-j), zipcache", z),
        ("normalized by probe count", z + " --kv-denom probes"),
        ("accumulated over probes", z + " --kv-denom accumulated"),
        ("accumulated over all queries (mikv)", f"--kv mikv --kv-bits {bits:g}"),
        ("probes: all", z + " --kv-probes all"),
        ("probes: random 10%", z + " --kv-probes random:0.1"),
        ("probes: recent 10%", z + " --kv-probes recent:0.1"),
        ("probes: random+recent 5+5%", z + " --kv-probes random+recent:0.05:0.05"),
        ("prompt in one step (-b 4096)", z + " -b 4096"),
        (f"uniform {int(bits)}-bit, prompt in one step", f"--kv uniform --kv-bits {int(bits)} -b 4096"),
        ("key groups of 128 tokens", z + " --kv-key-group 128"),
        ("rotated keys", z + " --kv-rotate on"),
        ("keys not rotated", z + " --kv-rotate off"),
    ]




def run_setting(binary, model, data, opts, out_json, threads, max_new):
    if os.path.exists(out_json):
        return json.load(open(out_json))
    cmd = [binary, "eval", "lines", "-m", model, "--data", data, "--max-new", str(max_new), "--no-progress",
           "-t", str(threads), "--answer-kl", "--json", out_json + ".tmp"] + opts.split()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr[-800:]}")
    os.replace(out_json + ".tmp", out_json)
    return json.load(open(out_json))


def table(results, lengths, tokens, cell):
    head = "| setting | " + " | ".join(f"{n} lines (~{tokens[n]} tokens)" for n in lengths) + " |"
    out = [head, "|---|" + "---|" * len(lengths)]
    for tag, per in results:
        out.append(f"| {tag} | " + " | ".join(cell(per[n]) if n in per else "" for n in lengths) + " |")
    return "\n".join(out)


def accuracy_cell(s):
    # under --kv-rotate auto (the default), the share of layers (over all documents) that rotated keys
    rot = s.get("rotated_key_layers")
    note = f", rot {100 * rot:.0f}%" if rot is not None and "(auto)" in s.get("kv", "") else ""
    return f"{s['score']:.3f} [{s['wilson95_lo']:.2f}, {s['wilson95_hi']:.2f}] {s['compression_ratio']:.2f}x{note}"


def kl_cell(s):
    return f"{s['answer_kl']:.4f}" if s.get("answer_kl") is not None else "–"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lines", default="50,100,150",
                    help="document lengths in lines, comma-separated (default 50,100,150: the shipped model was trained to 150)")
    ap.add_argument("--count", type=int, default=200, help="documents per length (default 200)")
    ap.add_argument("--seed", type=int, default=1, help="test-split seed (default 1)")
    ap.add_argument("--setting", action="append", help="TAG=OPTIONS (repeatable; default: the --grid)")
    ap.add_argument("--ablation-bits", type=float, default=4.0,
                    help="the stored-bit budget of --grid ablations (default 4; the paper's 5x is 3.2)")
    ap.add_argument("--window", type=int, default=0,
                    help="evaluate a copy of the model whose layers are sliding-window layers of this many tokens, "
                         "all but every --window-pattern-th (tools/gguf_set.py; default 0: the model as it is)")
    ap.add_argument("--window-pattern", type=int, default=2,
                    help="with --window: every N-th layer stays global (default 2: the 3-layer model's layer 1, "
                         "which reads the answer line, while layers 0 and 2 work within their window)")
    ap.add_argument("--grid", choices=["ablations", "budget", "local", "main"], default="main",
                    help="main: every policy at ~3x to 6x; ablations: the paper's ablations and the engine's choices at ~4x; "
                         "budget: zipcache's plan and window rules at ~4x, each undone")
    ap.add_argument("--bin", default=os.environ.get("ZIPCACHE_BIN", os.path.join(ROOT, "build", "zipcache")))
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--max-new", type=int, default=8,
                    help="generated tokens per answer (default 8: '<', five digits, '>' and one spare)")
    a = ap.parse_args(argv)
    lengths = [int(x) for x in a.lines.split(",")]
    grids = {"main": DEFAULT_SETTINGS, "ablations": ablation_settings(a.ablation_bits), "budget": BUDGET_SETTINGS,
             "local": LOCAL_SETTINGS}
    settings = [tuple(s.split("=", 1)) for s in a.setting] if a.setting else grids[a.grid]
    os.makedirs(a.out, exist_ok=True)
    model = a.model
    if a.window:
        tmp = tempfile.mkdtemp(prefix="zipcache-window-")
        model = os.path.join(tmp, "model.gguf")
        arch = gguf_set.architecture(a.model)
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gguf_set.py"), a.model, model,
                        f"{arch}.attention.sliding_window=uint:{a.window}",
                        f"{arch}.attention.sliding_window_pattern=uint:{a.window_pattern}"], check=True)
    data, tokens = {}, {}
    for n in lengths:
        data[n] = os.path.join(a.out, f"lines_{n}.jsonl")
        if not os.path.exists(data[n]):
            with open(data[n], "w") as fp:
                for rec in gen_lines.documents("test", a.seed, n, a.count):
                    fp.write(json.dumps(rec) + "\n")
        tokens[n] = None
    results, rows = [], []
    t0 = time.time()
    for tag, opts in settings:
        per = {}
        for n in lengths:
            s = run_setting(a.bin, model, data[n], opts, os.path.join(a.out, re.sub(r"[^A-Za-z0-9.+-]+", "_", tag) + f"-{n}.json"), a.threads,
                            a.max_new)
            per[n] = s
            if tokens[n] is None and s.get("items"):
                tokens[n] = round(s["tokens"] / s["items"]) if s.get("tokens") else "?"
            rows.append({"setting": tag, "options": opts, "lines": n, "accuracy": s["score"],
                         "wilson95_lo": s["wilson95_lo"], "wilson95_hi": s["wilson95_hi"], "items": s["items"],
                         "compression_ratio": s["compression_ratio"], "bits_per_element": s["bits_per_element"],
                         "answer_kl": s.get("answer_kl")})
            print(f"[{time.time() - t0:6.0f} s] {tag:14s} {n:4d} lines: accuracy {s['score']:.3f} "
                  f"({s['correct']}/{s['scored']}), {s['compression_ratio']:.2f}x, answer KL {s.get('answer_kl')}",
                  flush=True)
        results.append((tag, per))
    with open(os.path.join(a.out, "retrieval.csv"), "w", newline="") as fp:
        w = csv.DictWriter(fp, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    md = ("Exact answers [Wilson 95%] and measured compression (under the default `--kv-rotate auto`, 'rot' is the "
          "share of layers, over all documents, that chose rotated keys):\n\n" +
          table(results, lengths, tokens, accuracy_cell) +
          "\n\nMean KL(fp16 cache || this cache) of the answer tokens, each given the right ones before it:\n\n" +
          table(results, lengths, tokens, kl_cell))
    if a.window:
        md = (f"The model with sliding-window layers of {a.window} tokens (layer l is global when (l + 1) % "
              f"{a.window_pattern} == 0, as llama.cpp reads sliding_window_pattern), `--window {a.window}`.\n\n" + md)
        shutil.rmtree(os.path.dirname(model), ignore_errors=True)
    with open(os.path.join(a.out, "retrieval.md"), "w") as fp:
        fp.write(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
