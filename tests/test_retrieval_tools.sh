#!/usr/bin/env bash
# The retrieval-model tools from the command line (tools/retrieval): gen_lines.py output is
# reproducible and refuses bad arguments; the untrained model (train_retrieval.py
# --random-weights, tiny shape) converts to GGUF, tokenizes as the training code does, and runs
# `zipcache eval lines` on generated documents end to end under every KV-cache policy (head_dim
# 64: the 32-element block formats apply), scoring 0 (random weights cannot retrieve) with no
# prompt skipped. Numerical checks (logits vs numpy, answer extraction) are in
# tests/py/test_retrieval_tools.py.
set -u
# shellcheck source=tests/lib_retrieval.sh
. "$(dirname "$0")/lib_retrieval.sh"
differ() { ! cmp -s "$1" "$2"; }

if ! "$PY" -c "import numpy" 2>/dev/null; then
    echo "SKIP retrieval_cli: numpy is not importable by $PY"
    exit 0
fi

# ---- gen_lines.py ----
gen() { "$PY" "$TOOLS/gen_lines.py" "$@"; }
gen --lines 5 --count 3 --seed 7 -o "$TMP/a.jsonl" && gen --lines 5 --count 3 --seed 7 >"$TMP/b.jsonl"
WHY="two runs with the same arguments differ"
check retrieval_cli_gen_reproducible cmp -s "$TMP/a.jsonl" "$TMP/b.jsonl"
gen --lines 5 --count 3 --seed 7 --split train -o "$TMP/c.jsonl"
WHY="the train split repeats the test split"
check retrieval_cli_gen_split differ "$TMP/a.jsonl" "$TMP/c.jsonl"
gen --lines 0 --count 3 >"$TMP/bad.out" 2>"$TMP/bad.err"; rc=$?
WHY="--lines 0: exit $rc, $(tail -c 200 "$TMP/bad.err")"
check retrieval_cli_gen_refuses_zero_lines test "$rc" -eq 2 -a ! -s "$TMP/bad.out"
n=$(wc -l <"$TMP/a.jsonl")
WHY="$n records for --count 3"
check retrieval_cli_gen_count test "$n" -eq 3

# ---- the untrained model through the engine ----
if ! "$PY" "$TOOLS/train_retrieval.py" --smoke --random-weights --out "$TMP/hf" >"$TMP/export.log" 2>&1; then
    fail retrieval_cli_export "$(tail -c 400 "$TMP/export.log")"
    exit 0
fi
if ! "$BIN" convert "$TMP/hf" -o "$TMP/m.gguf" --type f16 >"$TMP/convert.log" 2>&1; then
    fail retrieval_cli_convert "$(tail -c 400 "$TMP/convert.log")"
    exit 0
fi
pass retrieval_cli_convert

# The first prompt, tokenized by the engine and by the training code's tokenizer (wordtok.py).
check_tokens retrieval_cli_tokens_match_training "$TMP/m.gguf" "$TMP/a.jsonl"

# Every cache policy, at settings near 4x compression where a policy has a knob.
for kv in "fp16" "zipcache --kv-bits 4" "uniform --kv-bits 4" "kivi --kv-bits 4" "mikv --kv-bits 4" \
          "h2o --kv-budget-ratio 0.25" "q4_0" "q8_0"; do
    name=retrieval_cli_eval_lines_${kv%% *}
    # shellcheck disable=SC2086  # the policy's options are separate words
    "$BIN" eval lines -m "$TMP/m.gguf" --data "$TMP/a.jsonl" --max-new 8 --no-progress -t 1 --answer-kl \
        --json "$TMP/s.json" --kv $kv >"$TMP/eval.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        fail "$name" "exit $rc: $(tail -c 400 "$TMP/eval.log")"
        continue
    fi
    WHY="$(cat "$TMP/s.json")"
    check "$name" "$PY" -c '
import json, sys
s = json.load(open(sys.argv[1]))
# --answer-kl over every item: exactly 0 against itself (fp16), else >= 0 (random weights barely
# look at the cache; tests/test_retrieval_model.sh checks it on the trained model)
kl_ok = s["answer_kl_items"] == 3 and (s["answer_kl"] == 0 if sys.argv[2] == "fp16" else s["answer_kl"] >= 0)
sys.exit(not (s["task"] == "lines" and s["items"] == 3 and s["scored"] == 3 and s["skipped_too_long"] == 0
              and s["score"] == 0 and s["policy"] == sys.argv[2] and kl_ok))' "$TMP/s.json" "${kv%% *}"
done
"$BIN" eval gsm8k -m "$TMP/m.gguf" --data "$TMP/a.jsonl" --answer-kl >"$TMP/eval.log" 2>&1
rc=$?
WHY="exit $rc: $(tail -c 300 "$TMP/eval.log")"
check retrieval_cli_answer_kl_lines_only test $rc -eq 2 -a -n "$(grep 'not an option of eval gsm8k' "$TMP/eval.log")"

# ---- zipcache demo: one record, answered with fp16 and with the compressed cache ----
gen --lines 12 --count 2 --seed 3 | "$BIN" demo -m "$TMP/m.gguf" -t 1 >"$TMP/demo.out" 2>"$TMP/demo.err"
rc=$?
WHY="exit $rc: $(cat "$TMP/demo.out" "$TMP/demo.err" | tail -c 600)"
check retrieval_cli_demo test $rc -eq 0 -a "$(grep -c '^fp16 *answer \|^zipcache *answer ' "$TMP/demo.out")" -eq 2 \
    -a "$(grep -c '^question: Tell me what is the <REGISTER_CONTENT> in line ' "$TMP/demo.out")" -eq 1
WHY="$(cat "$TMP/demo.out")"
check retrieval_cli_demo_memory grep -q 'smaller than fp16' "$TMP/demo.out"
gen --lines 12 --count 2 --seed 3 >"$TMP/two.jsonl"
"$BIN" demo -m "$TMP/m.gguf" -t 1 --data "$TMP/two.jsonl" --index 3 --kv q8_0 >"$TMP/demo.out" 2>"$TMP/demo.err"
rc=$?
WHY="exit $rc: $(cat "$TMP/demo.err")"
check retrieval_cli_demo_no_such_record test $rc -eq 2 -a -n "$(grep 'there is no record 3' "$TMP/demo.err")"
echo '{"prompt": 5}' | "$BIN" demo -m "$TMP/m.gguf" -t 1 >"$TMP/demo.out" 2>"$TMP/demo.err"
rc=$?
WHY="exit $rc: $(cat "$TMP/demo.err")"
check retrieval_cli_demo_bad_record test $rc -eq 1 -a -n "$(grep 'has no "prompt" string' "$TMP/demo.err")"
