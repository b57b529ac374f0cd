#!/usr/bin/env bash
# End-to-end `zipcache eval` on small subsets with the real tiny models:
# every eval completes and writes a well-formed JSON record with the fields
# the results page relies on; resumption skips finished items and reproduces
# the score; a KL base run against itself shows KL ~0; bad options exit 2.
set -u
BIN=${ZIPCACHE_BIN:-build/zipcache}
ASSETS=${ZIPCACHE_ASSETS:-../shared}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
S260=$ASSETS/models/stories260K/stories260K.gguf
S656=$ASSETS/models/tinystories656K
TEXT=$ASSETS/data/tinystories/validation_head.txt
DATA=$ASSETS/data
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# One thread: the tiny models are faster on one core than on a shared pool.
COMMON=(-t 1 --no-progress)

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; }
skip() { echo "SKIP $1: $2"; }

# check_json NAME FILE 'python expression over r' : the record parses and the expression holds.
check_json() {
    local name=$1 file=$2 expr=$3 out
    if out=$("$PY" - "$file" "$expr" 2>&1 <<'EOF'
import json, math, sys
r = json.load(open(sys.argv[1]))
for k in ("task", "model", "policy", "kv", "kv_params", "compression_ratio", "bits_per_element", "score",
          "score_name", "tokens_per_s"):
    assert k in r, "missing " + k
assert eval(sys.argv[2], {"math": math}, {"r": r}), "failed: " + sys.argv[2] + " on " + json.dumps(r)[:600]
EOF
    ); then pass "$name"; else fail "$name" "$out"; fi
}

if [ ! -x "$BIN" ]; then fail eval_cli_binary "no $BIN"; exit 1; fi

# ---- ppl on both models, with a KL base ----
for spec in "stories260K:$S260" "tinystories656K:$S656"; do
    name=${spec%%:*} model=${spec#*:}
    if [ ! -e "$model" ] || [ ! -f "$TEXT" ]; then skip "eval_ppl_$name" "model or text missing"; continue; fi
    if "$BIN" eval ppl -m "$model" -f "$TEXT" -c 128 --chunks 2 "${COMMON[@]}" --kv fp16 --save-kl-base "$TMP/$name.klb" \
        --json "$TMP/$name.base.json" >"$TMP/out" 2>&1; then
        check_json "eval_ppl_$name" "$TMP/$name.base.json" \
            'r["task"] == "ppl" and r["policy"] == "fp16" and 1 < r["score"] < 1e4 and r["scored_tokens"] == 128 and r["scored_on_compressed"] == 0 and abs(r["compression_ratio"] - 1) < 1e-9'
    else
        fail "eval_ppl_$name" "$(tail -3 "$TMP/out")"; continue
    fi
    if "$BIN" eval ppl -m "$model" -f "$TEXT" -c 128 --chunks 2 "${COMMON[@]}" --kv fp16 --kl-base "$TMP/$name.klb" \
        --json "$TMP/$name.kl.json" >"$TMP/out" 2>&1; then
        check_json "eval_ppl_kl_self_$name" "$TMP/$name.kl.json" \
            'r["kl_mean"] < 1e-5 and r["top1_agreement"] == 1 and abs(r["ppl_ratio"] - 1) < 1e-6'
    else
        fail "eval_ppl_kl_self_$name" "$(tail -3 "$TMP/out")"
    fi
done

# ---- the compressed default policy reads its compressed cache while scoring ----
if [ -f "$TMP/stories260K.klb" ]; then
    if "$BIN" eval ppl -m "$S260" -f "$TEXT" -c 128 --chunks 2 "${COMMON[@]}" --kl-base "$TMP/stories260K.klb" \
        --json "$TMP/c.json" >"$TMP/out" 2>&1; then
        check_json eval_ppl_compressed_default "$TMP/c.json" \
            'r["policy"] == "zipcache" and r["compression_ratio"] > 1.2 and r["scored_on_compressed"] > 0 and r["kl_mean"] > 0 and 0 < r["top1_agreement"] <= 1'
    else
        fail eval_ppl_compressed_default "$(tail -3 "$TMP/out")"
    fi
fi

# ---- resumption: the second run finds every chunk in --results and reproduces the score ----
if [ -f "$S260" ] && [ -f "$TEXT" ]; then
    "$BIN" eval ppl -m "$S260" -f "$TEXT" -c 128 --chunks 3 "${COMMON[@]}" --results "$TMP/r.jsonl" \
        --json "$TMP/r1.json" >/dev/null 2>&1
    head -n 2 "$TMP/r.jsonl" >"$TMP/r2.jsonl" # as if interrupted after two chunks
    printf '{"run":"cut' >>"$TMP/r2.jsonl"
    "$BIN" eval ppl -m "$S260" -f "$TEXT" -c 128 --chunks 3 "${COMMON[@]}" --results "$TMP/r2.jsonl" \
        --json "$TMP/r2.json" >/dev/null 2>&1
    if [ "$(wc -l <"$TMP/r2.jsonl")" -eq 3 ] && "$PY" -c '
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
assert abs(a["score"] - b["score"]) < 1e-9 * a["score"], (a["score"], b["score"])
' "$TMP/r1.json" "$TMP/r2.json" 2>"$TMP/err"; then
        pass eval_ppl_resume
    else
        fail eval_ppl_resume "$(cat "$TMP/err") lines=$(wc -l <"$TMP/r2.jsonl")"
    fi
    # the same file with other options is refused
    if "$BIN" eval ppl -m "$S260" -f "$TEXT" -c 128 --chunks 3 "${COMMON[@]}" --kv fp32 --results "$TMP/r.jsonl" \
        >/dev/null 2>&1; then fail eval_resume_other_run "accepted"; else pass eval_resume_other_run; fi
    if "$BIN" eval ppl -m "$S260" -f "$TEXT" -c 128 --chunks 3 "${COMMON[@]}" -b 16 --results "$TMP/r.jsonl" \
        >/dev/null 2>&1; then fail eval_resume_other_batch "accepted"; else pass eval_resume_other_batch; fi
    # -b: an uncompressed cache scores the same in any batch size; zipcache compresses each
    # prompt step's tokens, so its segments, and its score, follow the batch size
    for kv in fp32 zipcache; do
        for b in 16 512; do
            "$BIN" eval ppl -m "$S260" -f "$TEXT" -c 128 --chunks 2 "${COMMON[@]}" --kv $kv -b $b \
                --json "$TMP/b_${kv}_$b.json" >/dev/null 2>&1
        done
    done
    if "$PY" -c '
import json, sys
f = {k: json.load(open(sys.argv[1] + k + ".json"))["score"] for k in ("fp32_16", "fp32_512", "zipcache_16", "zipcache_512")}
assert abs(f["fp32_16"] - f["fp32_512"]) < 1e-4 * f["fp32_512"], f
assert abs(f["zipcache_16"] - f["zipcache_512"]) > 1e-6 * f["zipcache_512"], f
' "$TMP/b_" 2>"$TMP/err"; then pass eval_batch_size; else fail eval_batch_size "$(cat "$TMP/err")"; fi
fi

# ---- generation tasks ----
if [ -f "$S260" ] && [ -d "$DATA" ]; then
    if "$BIN" eval lines -m "$S260" --data "$DATA/longeval_lines/200_lines.jsonl" --limit 2 "${COMMON[@]}" \
        --json "$TMP/l.json" >"$TMP/out" 2>&1; then
        check_json eval_lines "$TMP/l.json" \
            'r["items"] == 2 and r["skipped_too_long"] + r["scored"] == 2 and "context" in r["note"]'
    else fail eval_lines "$(tail -3 "$TMP/out")"; fi
    if "$BIN" eval gsm8k -m "$S260" -c 512 --shots 1 --max-new 24 --data "$DATA/gsm8k/test.jsonl" --limit 1 \
        "${COMMON[@]}" --json "$TMP/g.json" >"$TMP/out" 2>&1; then
        check_json eval_gsm8k "$TMP/g.json" \
            'r["items"] == 1 and r["scored"] == 1 and r["generated_tokens"] >= 1 and 0 <= r["score"] <= 1'
    else fail eval_gsm8k "$(tail -3 "$TMP/out")"; fi
    # --kv-budget ends an item like a full context: a prompt over the budget is skipped, a generation that
    # reaches it is recorded with stop "budget" (fp16 stories260K: 640 bytes per token, a 386-token prompt)
    GSM=(eval gsm8k -m "$S260" -c 512 --shots 1 --max-new 24 --data "$DATA/gsm8k/test.jsonl" --limit 1 "${COMMON[@]}"
         --kv fp16)
    if "$BIN" "${GSM[@]}" --kv-budget $(((386 + 3) * 640)) --results "$TMP/b.jsonl" >"$TMP/out" 2>&1 &&
        out=$("$PY" -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])][-1]
assert (r["prompt_tokens"], r["generated"], r["stop"]) == (386, 4, "budget"), r' "$TMP/b.jsonl" 2>&1); then
        pass eval_budget_ends_item
    else fail eval_budget_ends_item "$(tail -3 "$TMP/out") $out"; fi
    if "$BIN" "${GSM[@]}" --kv-budget $((300 * 640)) --json "$TMP/b.json" >"$TMP/out" 2>&1; then
        check_json eval_budget_prompt_skipped "$TMP/b.json" 'r["scored"] == 0 and r["skipped_too_long"] == 1'
    else fail eval_budget_prompt_skipped "$(tail -3 "$TMP/out")"; fi
    # --execute really runs each program: a stand-in interpreter that keeps a copy of what it is given and
    # passes every test turns the score to 1; one that fails every test, to 0 (the tiny model's completions
    # fail the real tests too, below).
    mkdir -p "$TMP/ran"
    for verdict in 0 1; do
        printf '#!/bin/sh\n[ "$1" = -I ] && cp "$2" "%s/ran/prog.$$.py"\nexit %s\n' "$TMP" "$verdict" >"$TMP/py$verdict"
        chmod +x "$TMP/py$verdict"
    done
    HE=(eval humaneval -m "$S260" -c 512 --max-new 24 --data "$DATA/humaneval/HumanEval.jsonl" --limit 2 --execute
        "${COMMON[@]}")
    if "$BIN" "${HE[@]}" --python "$TMP/py0" --json "$TMP/hp.json" >"$TMP/out" 2>&1; then
        check_json eval_humaneval_executes_pass "$TMP/hp.json" 'r["scored"] == 2 and r["correct"] == 2 and r["score"] == 1'
    else fail eval_humaneval_executes_pass "$(tail -3 "$TMP/out")"; fi
    n_ran=$(ls "$TMP/ran" | wc -l)
    if [ "$n_ran" -eq 2 ] && [ "$(grep -l "^def check(candidate)" "$TMP"/ran/*.py | wc -l)" -eq 2 ] &&
        grep -q "^check(has_close_elements)" "$TMP"/ran/*.py; then
        pass eval_humaneval_programs
    else fail eval_humaneval_programs "$n_ran programs ran: $(head -c 300 "$TMP"/ran/*.py 2>/dev/null)"; fi
    if "$BIN" "${HE[@]}" --python "$TMP/py1" --json "$TMP/hf.json" >"$TMP/out" 2>&1; then
        check_json eval_humaneval_executes_fail "$TMP/hf.json" 'r["scored"] == 2 and r["correct"] == 0'
    else fail eval_humaneval_executes_fail "$(tail -3 "$TMP/out")"; fi
    if "$BIN" eval humaneval -m "$S260" -c 512 --max-new 24 --data "$DATA/humaneval/HumanEval.jsonl" --limit 2 \
        --execute --out "$TMP/comp.jsonl" "${COMMON[@]}" --json "$TMP/h.json" >"$TMP/out" 2>&1; then
        check_json eval_humaneval "$TMP/h.json" 'r["items"] == 2 and r["scored"] == 2 and r["score"] == 0'
        if "$PY" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["task_id"] for r in rows] == ["HumanEval/0", "HumanEval/1"] and all("completion" in r for r in rows)
' "$TMP/comp.jsonl"; then pass eval_humaneval_out; else fail eval_humaneval_out; fi
    else fail eval_humaneval "$(tail -3 "$TMP/out")"; fi
    # resumption of a generation task: two items, then three with the same --results file
    "$BIN" eval gsm8k -m "$S260" -c 512 --shots 0 --max-new 8 --data "$DATA/gsm8k/test.jsonl" --limit 2 \
        "${COMMON[@]}" --results "$TMP/g.jsonl" >/dev/null 2>&1
    if "$BIN" eval gsm8k -m "$S260" -c 512 --shots 0 --max-new 8 --data "$DATA/gsm8k/test.jsonl" --limit 3 \
        "${COMMON[@]}" --results "$TMP/g.jsonl" --json "$TMP/g3.json" >"$TMP/out" 2>&1 &&
        [ "$(wc -l <"$TMP/g.jsonl")" -eq 3 ]; then
        check_json eval_gsm8k_resume "$TMP/g3.json" 'r["scored"] == 3 and r["generated_tokens"] >= 3'
    else
        fail eval_gsm8k_resume "$(tail -3 "$TMP/out") lines=$(wc -l <"$TMP/g.jsonl")"
    fi
else
    skip eval_tasks "stories260K or data missing"
fi

# ---- a small sweep: one CSV row per policy x distinct budget, a plot when gnuplot is there ----
if [ -f "$S260" ] && [ -f "$TEXT" ]; then
    if "$BIN" eval sweep -m "$S260" -f "$TEXT" -c 64 --chunks 1 -t 1 --no-progress --policies kivi,h2o,q4_0,zipcache \
        --bits 2.5,3 --csv "$TMP/s.csv" --plot "$TMP/s.svg" >"$TMP/out" 2>&1 && "$PY" - "$TMP/s.csv" <<'EOF' 2>"$TMP/err"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
# kivi maps 2.5 and 3 to widths 2 and 3; h2o keeps 2.5/16 and 3/16 of the tokens: four distinct runs;
# q4_0 has one width (one run) and fails at head_dim 8; zipcache takes each budget
assert [(r["policy"], r["budget_bits"]) for r in rows] == [("kivi", "2.5"), ("kivi", "3"), ("h2o", "2.5"), ("h2o", "3"),
                                                           ("q4_0", "2.5"), ("zipcache", "2.5"), ("zipcache", "3")], rows
assert all(None not in r for r in rows), rows  # a failed run's row keeps the columns
ok = [r for r in rows if r["policy"] != "q4_0"]
assert all(float(r["compression_ratio"]) > 1 and float(r["kl_mean"]) > 0 for r in ok), rows
assert rows[4]["error"] and not rows[4]["kl_mean"], rows[4]
# --kv-rotate auto on stories260K (head_dim 8) keeps every layer unrotated; other policies leave it empty
assert [r["rotated_key_layers"] for r in ok] == ["", "", "", "", "0.0000", "0.0000"], ok
EOF
    then
        if [ -x /usr/bin/gnuplot ] && ! grep -q "<svg" "$TMP/s.svg"; then fail eval_sweep "no SVG plot"; else pass eval_sweep; fi
    else
        fail eval_sweep "$(tail -3 "$TMP/out") $(cat "$TMP/err" 2>/dev/null)"
    fi
fi

# ---- eval saliency / recon dispatch to the studies (src/eval/saliency_report.c, recon_report.c) ----
if [ -f "$S260" ] && [ -f "$TEXT" ]; then
    for study in saliency recon; do
        if "$BIN" eval $study -m "$S260" -f "$TEXT" --chunks 1 --tokens 64 -t 1 --json "$TMP/$study.json" \
            >"$TMP/out" 2>&1 && "$PY" - "$study" "$TMP/$study.json" "$TMP/out" <<'EOF' 2>"$TMP/err"
import json, sys
study, r, table = sys.argv[1], json.load(open(sys.argv[2])), open(sys.argv[3]).read()
rows = r["rows"]
if study == "saliency":
    # every estimate recovers more of the exact salient set than a random pick would (recall = ratio)
    assert r["ratios"] == [0.4, 0.6] and len(rows) == 10, r
    for row in rows:
        assert all(ratio < rec <= 1 for ratio, rec in zip(r["ratios"], row["recall"])), row
        assert "| %s | %.4f | %.4f |" % (row["estimate"], *row["recall"]) in table, row
    exact = [x for x in rows if x["estimate"].startswith("exact normalized")][0]["recall"]
    local = [x for x in rows if x["estimate"].startswith("locality")][0]["recall"]
    assert exact[0] > local[0] and exact[1] > local[1], (exact, local)
else:
    # more bits, less error, for every quantizer and scope; channelwise parameters cost 32 bits per
    # channel over the 64 tokens: bits + 0.5
    groups = {}
    for row in rows:
        assert 0 < row["k_rel_mse"] < 1 and 0 < row["v_rel_mse"] < 1, row
        groups.setdefault((row["format"], row["scope"]), []).append(row)
        if row["format"] == "channel":
            assert row["bits_per_element"] == row["bits"] + 0.5, row
    for fmt in ("channel", "cst sqrt(max|x|)", "cst max|x|", "token"):
        for scope in ("layer", "head"):
            g = sorted(groups[(fmt, scope)], key=lambda x: x["bits"])
            assert [x["bits"] for x in g] == [2, 3, 4], g
            for a, b in zip(g, g[1:]):
                assert b["k_rel_mse"] < a["k_rel_mse"] and b["v_rel_mse"] < a["v_rel_mse"], (a, b)
    q8, q4 = groups[("q8_0", "layer")][0], groups[("q4_0", "layer")][0]
    assert q8["k_rel_mse"] < q4["k_rel_mse"] and q8["bits_per_element"] == 8.5 and q4["bits_per_element"] == 4.5, (q8, q4)
EOF
        then
            pass "eval_$study"
        else
            fail "eval_$study" "$(tail -3 "$TMP/out") $(tail -3 "$TMP/err")"
        fi
    done
fi

# ---- usage errors exit 2 with one line ----
bad=0
for args in "nonesuch" "ppl --chunks 0 -f x" "ppl -b 0 -f x" "ppl --data x -f y" "lines --kv nonesuch --data x" "sweep -f x --bits 2,abc" \
    "sweep -f x --csv y --preset ablation-probes --policies kivi"; do
    # shellcheck disable=SC2086
    "$BIN" eval $args >/dev/null 2>&1
    rc=$?
    [ $rc -eq 2 ] || { bad=1; echo "  eval $args: exit $rc" >&2; }
done
[ $bad -eq 0 ] && pass eval_usage_errors || fail eval_usage_errors
exit 0
