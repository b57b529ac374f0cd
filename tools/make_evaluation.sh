#!/usr/bin/env bash
# Regenerates EVALUATION.md and eval/ (sweep CSVs, SVG plots, JSON records)
# from scratch with the zipcache CLI:
#   - compression sweeps (perplexity, KL vs fp16, top-1 agreement against the
#     measured compression ratio) for both bundled tiny models on WikiText-2
#     and TinyStories text;
#   - the paper's ablations (normalized vs accumulated saliency; probe
#     strategies and probe ratios);
#   - the generation tasks on small subsets (to show what the tiny models can
#     and cannot say).
# Usage: tools/make_evaluation.sh            (BUILD=build, CHUNKS=16, THREADS=1)
# Takes a few minutes on 2 cores. Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$BUILD/zipcache
ASSETS=${ZIPCACHE_ASSETS:-../shared}
CHUNKS=${CHUNKS:-16}
THREADS=${THREADS:-1}
POLICIES=${POLICIES:-zipcache,uniform,kivi,mikv,h2o,q4_0}
BITS=${BITS:-2.5,3,3.5,4}
OUT=eval
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
[ -x "$BIN" ] || { echo "build first: make BUILD=$BUILD" >&2; exit 1; }
mkdir -p "$OUT"
rm -f "$OUT"/*.csv "$OUT"/*.svg "$OUT"/*.gp "$OUT"/*.json "$OUT"/*.log

S260=$ASSETS/models/stories260K/stories260K.gguf
S656=$ASSETS/models/tinystories656K
WIKI=$ASSETS/data/wikitext2/wiki.test.raw
TS=$ASSETS/data/tinystories/validation_head.txt
COMMON=(-c 512 -t "$THREADS" --chunks "$CHUNKS" --no-progress)
t_start=$(date +%s)

sweep() { # name model text [extra args...]
    local name=$1 model=$2 text=$3
    shift 3
    echo "== sweep $name" >&2
    "$BIN" eval sweep -m "$model" -f "$text" "${COMMON[@]}" --csv "$OUT/$name.csv" --plot "$OUT/$name.svg" "$@" \
        >"$OUT/$name.log" 2>&1 || { tail -5 "$OUT/$name.log" >&2; exit 1; }
}

for m in "stories260K:$S260" "tinystories656K:$S656"; do
    for t in "wikitext2:$WIKI" "tinystories:$TS"; do
        sweep "sweep-${m%%:*}-${t%%:*}" "${m#*:}" "${t#*:}" --policies "$POLICIES" --bits "$BITS"
    done
    sweep "ablation-saliency-${m%%:*}" "${m#*:}" "$TS" --preset ablation-saliency --bits "$BITS"
    sweep "ablation-probes-${m%%:*}" "${m#*:}" "$TS" --preset ablation-probes --bits 3
done

# The KL floor: an fp16 run against its own fp16 base file (only the fp16 storage of the base differs).
for m in "stories260K:$S260" "tinystories656K:$S656"; do
    echo "== KL floor ${m%%:*}" >&2
    "$BIN" eval ppl -m "${m#*:}" -f "$TS" "${COMMON[@]}" --save-kl-base "$OUT/floor.klb" >/dev/null
    "$BIN" eval ppl -m "${m#*:}" -f "$TS" "${COMMON[@]}" --kl-base "$OUT/floor.klb" \
        --json "$OUT/klfloor-${m%%:*}.json" >/dev/null
    rm -f "$OUT/floor.klb"
done

# The studies of saliency estimates and quantizer error on real activations.
for m in "stories260K:$S260" "tinystories656K:$S656"; do
    for study in saliency recon; do
        echo "== $study ${m%%:*}" >&2
        "$BIN" eval $study -m "${m#*:}" -f "$TS" -c 512 --chunks 4 -t "$THREADS" --json "$OUT/$study-${m%%:*}.json" \
            >"$OUT/$study-${m%%:*}.md" 2>"$OUT/$study-${m%%:*}.log"
    done
done

# Generation tasks on small subsets, fp16 and zipcache.
for kv in fp16 zipcache; do
    echo "== tasks $kv" >&2
    "$BIN" eval lines -m "$S260" --data "$ASSETS/data/longeval_lines/200_lines.jsonl" -c 512 -t "$THREADS" \
        --kv "$kv" --no-progress --json "$OUT/lines-$kv.json" >/dev/null
    "$BIN" eval gsm8k -m "$S656" --data "$ASSETS/data/gsm8k/test.jsonl" -c 512 -t "$THREADS" --shots 1 \
        --limit 20 --max-new 128 --kv "$kv" --no-progress --json "$OUT/gsm8k-$kv.json" >/dev/null
    "$BIN" eval humaneval -m "$S656" --data "$ASSETS/data/humaneval/HumanEval.jsonl" -c 512 -t "$THREADS" \
        --limit 20 --max-new 128 --execute --kv "$kv" --no-progress --json "$OUT/humaneval-$kv.json" >/dev/null
done
elapsed=$(($(date +%s) - t_start))

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
NCPU=$(nproc)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
"$PY" - "$OUT" "$CPU" "$NCPU" "$COMMIT" "$elapsed" "$CHUNKS" "$POLICIES" "$BITS" >EVALUATION.md <<'EOF'
import csv, json, math, os, sys
out, cpu, ncpu, commit, elapsed, chunks, policies, bits = sys.argv[1:9]

def table(name):
    rows = list(csv.DictReader(open(os.path.join(out, name + ".csv"))))
    print()
    print("| run | budget | KV config as run | ratio | bits/elt | window | ppl | ppl ratio | KL mean | KL median | KL p99 | top-1 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["error"]:
            print(f"| {r['label']} | {r['budget_bits']} | {r['kv']} | failed: {r['error']} |" + " |" * 8)
            continue
        f = lambda k, p: format(float(r[k]), p)
        print(f"| {r['label']} | {r['budget_bits']} | {r['kv']} | {f('compression_ratio', '.2f')}x | "
              f"{f('bits_per_element', '.2f')} | {100 * float(r['window_share']):.0f}% | {f('perplexity', '.4f')} | "
              f"{f('ppl_ratio', '.4f')} | "
              f"{f('kl_mean', '.3g')} | {f('kl_median', '.3g')} | {f('kl_p99', '.3g')} | {f('top1_agreement', '.4f')} |")
    print()

def pareto(name):
    """Runs no other run beats on both stored bits and mean KL: the ones worth choosing."""
    rows = [r for r in csv.DictReader(open(os.path.join(out, name + ".csv"))) if not r["error"]]
    front = [r for r in rows
             if not any(float(o["bits_per_element"]) <= float(r["bits_per_element"]) and
                        float(o["kl_mean"]) < float(r["kl_mean"]) for o in rows if o is not r)]
    front.sort(key=lambda r: float(r["bits_per_element"]))
    items = [f"{r['label']} @ {r['budget_bits']} ({float(r['bits_per_element']):.2f} bits, KL {float(r['kl_mean']):.3g})"
             for r in front]
    print("Pareto front (no other run has both fewer stored bits and lower mean KL): " + "; ".join(items) + ".\n")

def versus(name, who="zipcache"):
    """Each run of `who` against the best other policy storing within 0.25 bits/element of it."""
    rows = [r for r in csv.DictReader(open(os.path.join(out, name + ".csv"))) if not r["error"]]
    lines = []
    for z in (r for r in rows if r["policy"] == who):
        zb, zk = float(z["bits_per_element"]), float(z["kl_mean"])
        near = [r for r in rows if r["policy"] != who and abs(float(r["bits_per_element"]) - zb) <= 0.25]
        if not near:
            continue
        best = min(near, key=lambda r: float(r["kl_mean"]))
        bk = float(best["kl_mean"])
        if abs(zk - bk) <= 0.01 * max(zk, bk):
            verdict = "equal"
        else:
            verdict = f"{who} {bk / zk:.1f}x lower" if zk < bk else f"{best['policy']} {zk / bk:.1f}x lower"
        lines.append(f"{who} @ {z['budget_bits']} ({zb:.2f} bits): KL {zk:.3g} vs {best['label']} @ "
                     f"{best['budget_bits']} ({float(best['bits_per_element']):.2f} bits): KL {bk:.3g}, {verdict}")
    return lines

def pivot(name):
    """Mean KL of every variant (columns) at every budget (rows): the ablation at a glance."""
    rows = [r for r in csv.DictReader(open(os.path.join(out, name + ".csv"))) if not r["error"]]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    budgets = list(dict.fromkeys(r["budget_bits"] for r in rows))
    print("| budget | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for b in budgets:
        cells = []
        for lab in labels:
            m = [r for r in rows if r["label"] == lab and r["budget_bits"] == b]
            cells.append(f"{float(m[0]['kl_mean']):.3g}" if m else "")
        print(f"| {b} | " + " | ".join(cells) + " |")
    print()

def base_ppl(name):
    for line in open(os.path.join(out, name + ".log")):
        if "fp16 base perplexity" in line:
            return line.split()[-1]
    return "?"

def skipped(name):
    return [l.strip()[len("sweep: "):] for l in open(os.path.join(out, name + ".log")) if "not in this build" in l]

print("# zipcache evaluation\n")
print("Generated by `tools/make_evaluation.sh` (do not edit by hand): "
      f"commit {commit}, {ncpu} cores of {cpu}, {int(elapsed) // 60} min {int(elapsed) % 60} s.")
print(f"Every perplexity/KL number below: context 512, the first {chunks} chunks of the text, the second half of each "
      "chunk scored (256 tokens per chunk) while being decoded token by token against the cache, after a 255-token "
      "prefill that the policy compresses; KL is KL(fp16 || policy) of the next-token distributions against an fp16 "
      "run made the same way (`zipcache eval ppl --save-kl-base` / `--kl-base`). Compression ratios are measured: "
      "every byte the cache holds at the end of each chunk (codes, scales, saliency index, fp16 windows) against "
      "fp16 for the same tokens; 'window' is the share of those bytes in the policy's full-precision window "
      "(zipcache's stream buffer, kivi's residual).\n")
print("## What these numbers show and do not show\n")
print("- They compare cache policies on two real but tiny models (260K and 656K parameters, head dims 8 and 16, "
      "512-token context). Head dims of 8 and 16 make per-token and per-group scales weigh 2 to 8 times more than "
      "at head dim 64 or 128, so measured ratios here are far below the paper's (which count hd = 4096 and ignore "
      "indices and windows); the ranking of policies at equal measured bits is the informative part.")
print("- A 512-token context is shorter than most of what the paper evaluates; with a stream gap of 100, the "
      "257 decode steps of a chunk trigger two streaming compressions. Effects that need long contexts are not "
      "measured. At this length the full-precision decode window (zipcache/mikv's stream buffer of up to 99 "
      "tokens, kivi's 32-token residual) holds a quarter to a third of all cache bytes: the 'window' column.")
print(f"- {chunks} chunks give {int(chunks) * 256} scored tokens per run. Per-token KL is heavy-tailed (p99 is "
      "10-100x the median), so small differences between means are not significant; look at ratios of 2x or more.")
floor = {m: json.load(open(os.path.join(out, f"klfloor-{m}.json"))) for m in ("stories260K", "tinystories656K")}
print("- KL floor of the method (fp16 storage of the base log-probabilities; an fp16 run against its own base "
      "file, TinyStories): " + "; ".join(f"{m} mean {r['kl_mean']:.2g}, p99 {r['kl_p99']:.2g}, top-1 "
                                         f"{r['top1_agreement']:.4f}" for m, r in floor.items()) + ".")
print("- The generation tasks (last section) only show that the harness runs end to end: these story models "
      "cannot do arithmetic, code or 200-line retrieval, and LongEval prompts do not fit their context.\n")

print("## Findings (computed from the tables below)\n")
print("Each zipcache run against the best other policy storing within 0.25 bits/element of it (mean KL):\n")
for model in ("stories260K", "tinystories656K"):
    for text in ("wikitext2", "tinystories"):
        for line in versus(f"sweep-{model}-{text}"):
            print(f"- {model}, {text}: {line}")
for ab, what in (("saliency", "Saliency metric (paper Table A), mean KL at equal budgets, TinyStories text"),
                 ("probes", "Probe strategy and ratio (paper Table 2), mean KL at a 3-bit budget, TinyStories text")):
    for model in ("stories260K", "tinystories656K"):
        print(f"\n{what}, {model}:\n")
        pivot(f"ablation-{ab}-{model}")

for model in ("stories260K", "tinystories656K"):
    print(f"## {model}\n")
    for text in ("wikitext2", "tinystories"):
        name = f"sweep-{model}-{text}"
        print(f"### {text} (fp16 perplexity {base_ppl(name)})\n")
        print(f"![{name}]({out}/{name}.svg)\n")
        for s in skipped(name):
            print(f"- {s}")
        pareto(name)
        table(name)
    for ab, what in (("saliency", "Saliency metric at equal bit budgets (paper Table A), TinyStories text: "
                                  "ZipCache's normalized score with the code's L-j denominator or the probe count, "
                                  "the probe sums unnormalized, and accumulated attention of all queries (MiKV)."),
                     ("probes", "Probe strategies and probe ratios at a 3-bit budget (paper Table 2), TinyStories "
                                "text. 'all' computes the exact normalized score from every query.")):
        name = f"ablation-{ab}-{model}"
        print(f"### Ablation: {ab}\n\n{what}\n")
        print(f"![{name}]({out}/{name}.svg)\n")
        for s in skipped(name):
            print(f"- {s}")
        table(name)

for study, title, what in (
        ("saliency", "Saliency estimates against the exact normalized score",
         "How much of the exact salient set (normalized attention over all queries, paper Eq. 8) each cheap "
         "estimate recovers, per (layer, KV head), on 4 chunks of 512 TinyStories tokens (`zipcache eval saliency`). "
         "This is the paper's Table A / Table 2 question asked directly of the saliency ranking, independent of "
         "quantization."),
        ("recon", "Quantizer reconstruction error on real keys and values",
         "Relative MSE of every KV quantizer on the models' real keys (after RoPE) and values, with the bits each "
         "stores (`zipcache eval recon`).")):
    print(f"## {title}\n\n{what}\n")
    for model in ("stories260K", "tinystories656K"):
        path = os.path.join(out, f"{study}-{model}.md")
        if not os.path.exists(path):
            continue
        print(f"### {model}\n")
        for line in open(path):
            # the tool's '# ...' comment lines are prose here, not headings
            print(line[2:].rstrip() + "\n" if line.startswith("# ") else line.rstrip())
        print()

print("## Reproducing one number\n")
print("```")
print("zipcache eval ppl -m MODEL -f TEXT -c 512 --chunks N -t 1 --kv fp16 --save-kl-base base.klb")
print("zipcache eval ppl -m MODEL -f TEXT -c 512 --chunks N -t 1 --kv zipcache --kv-bits 3 --kl-base base.klb --json r.json")
print("zipcache eval sweep -m MODEL -f TEXT -c 512 --chunks N --policies zipcache,kivi --bits 3,4 --csv s.csv --plot s.svg")
print("```\n")
print(f"Sweeps map a bit budget to each policy's knobs (printed per run above): zipcache and mikv get it as "
      "`--kv-bits` (the salient ratio follows from 4/2 bits), uniform and kivi take the widest integer width not "
      "above it, h2o keeps budget/16 of the tokens at fp16, q4_0/q8_0 have one fixed width. Policies: "
      f"{policies}; budgets {bits}.\n")
print("## Generation tasks (harness check only)\n")
print("| task | model | kv | score | scored | skipped (too long) | 95% interval | ratio | tokens/s |")
print("|---|---|---|---|---|---|---|---|---|")
for task in ("lines", "gsm8k", "humaneval"):
    for kv in ("fp16", "zipcache"):
        p = os.path.join(out, f"{task}-{kv}.json")
        if not os.path.exists(p):
            continue
        r = json.load(open(p))
        sc = "n/a" if r["score"] is None else f"{r['score']:.3f}"
        lo, hi = r.get("wilson95_lo"), r.get("wilson95_hi")
        ci = "n/a" if lo is None else f"[{lo:.3f}, {hi:.3f}]"
        ratio = "n/a" if r["compression_ratio"] is None else f"{r['compression_ratio']:.2f}x"
        print(f"| {task} | {os.path.basename(r['model'].rstrip('/'))} | {r['policy']} | {r['score_name']} {sc} | "
              f"{r['scored']:.0f} | {r['skipped_too_long']:.0f} | {ci} | {ratio} | {r['tokens_per_s']:.0f} |")
print()
print("LongEval prompts are 4,800+ tokens with the Llama tokenizer and longer with these models' small "
      "vocabularies: all of them exceed the 512-token context and are counted as skipped, never as wrong. "
      "GSM8K runs 1-shot (the 8-shot prompt does not fit 512 tokens) on the first 20 questions; HumanEval "
      "runs the first 20 problems with the tests executed under python3 with CPU/memory/time limits. "
      "Speeds here come from a shared 2-core machine and one thread; they are not benchmarks (`zipcache bench` is).")
EOF
echo "wrote EVALUATION.md and $OUT/ in ${elapsed}s" >&2
