#!/usr/bin/env bash
# zipcache run end to end: exact greedy text of the real models, the HF
# checkpoint and its f32 GGUF conversion agreeing, sampling determinism,
# the context rule, and the exit codes of usage (2) and data (1) errors.
set -u
BIN=${ZIPCACHE_BIN:-build/zipcache}
ASSETS=${ZIPCACHE_ASSETS:-../shared}
S260=$ASSETS/models/stories260K/stories260K.gguf
TS656=$ASSETS/models/tinystories656K
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; shift; printf '  %s\n' "$@" >&2; }
# check NAME CONDITION-RESULT(0/1) DETAIL...
check() { local name=$1 ok=$2; shift 2; if [ "$ok" -eq 0 ]; then pass "$name"; else fail "$name" "$@"; fi; }

# run_rc EXPECTED_RC NAME ARGS...: exit code and a one-line message on stderr.
run_rc() {
    local want=$1 name=$2; shift 2
    "$BIN" run "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -eq "$want" ] && [ -s "$TMP/err" ]; then pass "$name"; else
        fail "$name" "exit $rc (want $want)" "$(head -c 400 "$TMP/err")"; fi
}

# ---- usage errors: exit 2, no model needed ----------------------------------
run_rc 2 run_unknown_option --frobnicate 1
run_rc 2 run_bad_temp -m /dev/null --temp hot
run_rc 2 run_missing_value -m /dev/null -n
run_rc 2 run_unknown_kv_policy -m /dev/null --kv zstd
grep -q "unknown KV policy 'zstd' (available: fp32, fp16" "$TMP/err"; check run_unknown_kv_policy_message $? "$(cat "$TMP/err")"
run_rc 2 run_bad_kv_value -m /dev/null --kv-hi-bits 12
run_rc 2 run_prompt_and_file -m /dev/null -p a -f /dev/null
ZIPCACHE_ASSETS=/nonexistent "$BIN" run -p hi >/dev/null 2>"$TMP/err"
rc=$?; [ $rc -eq 2 ] && grep -q "point -m at any GGUF file or Hugging Face directory" "$TMP/err"
check run_no_default_model $? "exit $rc: $(cat "$TMP/err")"
"$BIN" run --help >"$TMP/out" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q -- "--kv-salient-ratio" "$TMP/out"; check run_help $? "exit $rc"

# ---- data errors: exit 1 -----------------------------------------------------
run_rc 1 run_missing_model -m "$TMP/nope.gguf"
head -c 1000 /dev/urandom >"$TMP/garbage.gguf"
run_rc 1 run_garbage_model -m "$TMP/garbage.gguf"

if [ ! -f "$S260" ]; then
    echo "SKIP run_stories260K: $S260 not found"
else
    # The acceptance text: greedy continuation of the prompt, printed after it.
    want="Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball."
    "$BIN" run -m "$S260" -p "Once upon a time" -n 40 --temp 0 -t 1 >"$TMP/out" 2>"$TMP/err"
    rc=$?; [ $rc -eq 0 ] && [ "$(cat "$TMP/out")" = "$want" ]
    check run_stories260K_greedy $? "exit $rc" "got:  $(cat "$TMP/out")" "want: $want"
    grep -q "prompt: 5 tokens" "$TMP/err" && grep -q "generated: 40 tokens" "$TMP/err" &&
        grep -q "^kv cache: zipcache (widths chosen per segment" "$TMP/err" && grep -q "^memory: weights" "$TMP/err" &&
        grep "x vs fp16" "$TMP/err" | sed -n 's/.* \([0-9.]*\)x vs fp16.*/\1/p' | awk '{ exit !($1 > 1) }'
    # (no --kv: the default policy is zipcache; the prompt is compressed, the 39 decoded tokens wait in its window)
    check run_stories260K_stats $? "$(cat "$TMP/err")"

    # Same through -f, with the fp32 cache and with several prefill batches.
    printf 'Once upon a time' >"$TMP/prompt.txt"
    "$BIN" run -m "$S260" -f "$TMP/prompt.txt" -n 40 --temp 0 --kv fp32 -b 2 -t 2 >"$TMP/out2" 2>/dev/null
    cmp -s "$TMP/out" "$TMP/out2"; check run_file_fp32_batched $? "$(cat "$TMP/out2")"

    # Sampling: one seed, one text; another seed, another text.
    for s in 1 1 2; do
        "$BIN" run -m "$S260" -p "Once upon a time" -n 60 --temp 1.0 --top-k 0 --top-p 1 --min-p 0 --seed $s \
            --repeat-penalty 1.1 -t 1 2>/dev/null
        echo
    done >"$TMP/seeds"
    a=$(sed -n 1p "$TMP/seeds"); b=$(sed -n 3p "$TMP/seeds"); c=$(sed -n 5p "$TMP/seeds")
    [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" != "$c" ]; check run_seed_determinism $? "1: $a" "1: $b" "2: $c"

    # Context rule: generation stops at -c with a note; exit 0.
    "$BIN" run -m "$S260" -p "Once upon a time" -n 100 --temp 0 -c 12 -t 1 >"$TMP/out" 2>"$TMP/err"
    rc=$?; [ $rc -eq 0 ] && grep -q "stopped at 12 tokens: context full" "$TMP/err" && grep -q "generated: 8 tokens" "$TMP/err"
    check run_context_full_stops $? "exit $rc" "$(cat "$TMP/err")"
    # A prompt longer than the context is an error.
    run_rc 1 run_prompt_too_long -m "$S260" -p "Once upon a time there was a little girl" -c 4
    grep -q "more than the context of 4" "$TMP/err"; check run_prompt_too_long_message $? "$(cat "$TMP/err")"
    # -c above the 128 the file declares: allowed, with a warning.
    "$BIN" run -m "$S260" -p "Once" -n 2 --temp 0 -c 512 -t 1 >/dev/null 2>"$TMP/err"
    rc=$?; [ $rc -eq 0 ] && grep -q "warning: context 512 is above the 128 tokens the model declares" "$TMP/err"
    check run_context_above_declared $? "exit $rc" "$(cat "$TMP/err")"
fi

if [ ! -d "$TS656" ]; then
    echo "SKIP run_tinystories656K: $TS656 not found"
else
    # Greedy from BOS: the text of ASSETS.md's 48 golden ids (the ids
    # themselves are checked in test_model), then the same ids through
    # `zipcache convert --type f32`.
    want="Once upon a time, there was a little girl named Lily. She had a toy car that she loved very much. One day, she went to the park to play with her toy car in the park. Lily was very happy with her toy car because she had no one to play with."
    "$BIN" run -m "$TS656" -n 48 --temp 0 -t 1 >"$TMP/hf" 2>"$TMP/err"
    rc=$?; [ $rc -eq 0 ] && [ "$(head -n 1 "$TMP/hf")" = "$want" ]
    check run_tinystories656K_greedy $? "exit $rc" "got:  $(cat "$TMP/hf")" "$(tail -n 3 "$TMP/err")"
    if "$BIN" convert "$TS656" -o "$TMP/ts.gguf" --type f32 >/dev/null 2>"$TMP/err"; then
        "$BIN" run -m "$TMP/ts.gguf" -n 48 --temp 0 -t 1 >"$TMP/gguf" 2>/dev/null
        cmp -s "$TMP/hf" "$TMP/gguf"; check run_tinystories656K_converted_f32 $? "$(cat "$TMP/gguf")"
    else
        fail run_tinystories656K_converted_f32 "convert failed: $(cat "$TMP/err")"
    fi
    # A checkpoint without tokenizer.json: exit 1 with a clear message.
    mkdir "$TMP/notok" && ln -s "$(cd "$TS656" && pwd)/config.json" "$(cd "$TS656" && pwd)/model.safetensors" "$TMP/notok/"
    run_rc 1 run_hf_missing_tokenizer -m "$TMP/notok"
    grep -q "tokenizer.json missing" "$TMP/err"; check run_hf_missing_tokenizer_message $? "$(cat "$TMP/err")"
fi
