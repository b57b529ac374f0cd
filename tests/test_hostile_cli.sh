#!/usr/bin/env bash
# Hostile inputs and resource limits, end to end through the CLI.
#
# The rules checked (each case asserts the exit code and the message text):
#   usage errors  exit 2, exactly one line on stderr: "zipcache <cmd>: <problem>" (or
#                 "zipcache: <problem>" for library-parsed options such as --kv*)
#   data errors   exit 1, the file and the problem on stderr, no crash: a missing input file
#                 prints "<path>: cannot open: No such file or directory"
#   limits        a prompt longer than -c is an error (exit 1); generation that reaches -c stops
#                 with a note (exit 0); --kv-budget stops generation with
#                 "KV cache budget of N bytes reached at position P (policy X)" (exit 1);
#                 allocation failures print an out-of-memory message (exit 1)
# Malformed model files are made at test time from the real ones in $ZIPCACHE_ASSETS
# (tests/hostile/gguf_mutate.py patches a copy of stories260K.gguf in place; HF checkpoints
# are directories of symlinks with one file replaced). Missing assets => SKIP.
set -u
cd "$(dirname "$0")/.." || exit 1
Z=${ZIPCACHE_BIN:-build/zipcache}
A=${ZIPCACHE_ASSETS:-../shared}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
S260=$A/models/stories260K/stories260K.gguf
TS=$A/models/tinystories656K
DATA=$A/data
NOFILE=$T/no/such/file

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; shift; echo "  $*" >&2; }
skip() { echo "SKIP $1: $2"; }

# expect NAME CODE PATTERN CMD...: exit code CODE and PATTERN (fixed string) on stderr.
# Usage errors (CODE 2) must also be exactly one line.
expect() {
    local name=$1 code=$2 pat=$3
    shift 3
    "$@" >"$T/out" 2>"$T/err" </dev/null
    local rc=$?
    # A sanitizer build exits 1 on a report too: a report is never an expected data error.
    if grep -qE 'Sanitizer|runtime error:' "$T/err"; then fail "$name" "sanitizer report: $(head -c 600 "$T/err")"; return 1; fi
    if [ $rc -ne "$code" ]; then fail "$name" "exit $rc, want $code: $(head -c 400 "$T/err")"; return 1; fi
    if ! grep -qF -- "$pat" "$T/err"; then fail "$name" "stderr lacks '$pat': $(head -c 400 "$T/err")"; return 1; fi
    if [ "$code" -eq 2 ] && [ "$(wc -l <"$T/err")" -ne 1 ]; then
        fail "$name" "usage error is not one line: $(head -c 400 "$T/err")"; return 1
    fi
    pass "$name"
}
usage() { local name=$1 pat=$2; shift 2; expect "usage_$name" 2 "$pat" "$@"; }
# Whether the CLI starts under ulimit -v (sanitizer runtimes reserve terabytes of shadow memory).
can_ulimit() { bash -c 'ulimit -v 400000 && "$1" --help; r=$?; exit $r' _ "$Z" >/dev/null 2>&1; }

# ---- 1. Command-line errors: exit 2, one line --------------------------------------------
usage top_unknown_command "unknown command 'frobnicate'" "$Z" frobnicate
usage eval_unknown_evaluation "unknown evaluation 'bogus'" "$Z" eval bogus
usage eval_no_evaluation "zipcache eval: which evaluation? (ppl, lines" "$Z" eval

# Options every model command has, run through each command's own parser.
for c in run info tokenize bench "eval ppl" "eval lines" "eval gsm8k" "eval humaneval" "eval sweep" \
    "eval saliency" "eval recon"; do
    n=${c// /_}
    # shellcheck disable=SC2086 # $c is "eval sub" on purpose
    usage ${n}_unknown_flag "unknown" "$Z" $c --bogus 1
    # shellcheck disable=SC2086
    usage ${n}_missing_value "option -m needs a value" "$Z" $c -m
done
# An unknown option given last is unknown, not an option lacking its value.
for c in run synth bench "eval ppl" "eval sweep"; do
    n=${c// /_}
    # shellcheck disable=SC2086
    usage ${n}_unknown_last "zipcache ${c%% *}: unknown option --bogus (see zipcache ${c%% *} --help)" "$Z" $c --bogus
    # shellcheck disable=SC2086
    usage ${n}_unknown_kv_last "unknown option --kv-bogus" "$Z" $c --kv-bogus
done
for c in run "eval ppl"; do
    # shellcheck disable=SC2086
    usage ${c// /_}_kv_missing_value "option --kv-denom needs a value" "$Z" $c --kv-denom
done
for c in run synth bench "eval ppl"; do
    # shellcheck disable=SC2086
    usage ${c// /_}_stray_word "unexpected argument 'stray'" "$Z" $c stray
done
usage info_stray_word "unknown argument 'stray'" "$Z" info stray

# Numbers: garbage, overflow, negative where positive is required, out of range.
usage run_n_garbage "-n: 'abc' is not an integer" "$Z" run -n abc
usage run_n_float_overflow "-n: '1e999' is not an integer" "$Z" run -n 1e999
usage run_n_int_overflow "-n: '99999999999999999999' is not an integer" "$Z" run -n 99999999999999999999
usage run_c_negative "-c: -5 is out of range [1, 16777216]" "$Z" run -c -5
usage run_c_too_large "-c: 16777217 is out of range [1, 16777216]" "$Z" run -c 16777217
usage run_temp_inf "--temp: '1e999' is not a number" "$Z" run --temp 1e999
usage run_temp_nan "--temp: 'nan' is not a number" "$Z" run --temp nan
usage run_top_p_range "--top-p: 2 is out of range" "$Z" run --top-p 2
usage run_threads_zero "-t: 0 is out of range [1, 1024]" "$Z" run -t 0
usage tokenize_both_inputs "give exactly one of -p TEXT and -f FILE" "$Z" tokenize -p a -f b
usage run_both_inputs "give either -p or -f, not both" "$Z" run -p a -f b
usage convert_no_output "need IN and -o OUT.gguf" "$Z" convert in.gguf
usage convert_bad_type "--type 'q9' is not one of" "$Z" convert in.gguf -o out.gguf -t q9
usage convert_two_inputs "more than one input ('a' and 'b')" "$Z" convert a b -o out.gguf
usage synth_unknown_shape "unknown shape 'bogus'" "$Z" synth --shape bogus -o "$T/x.gguf"
usage synth_layers_negative "--layers: -1 is out of range" "$Z" synth --shape tiny-llama -o "$T/x.gguf" --layers -1
usage synth_no_output "need --shape NAME and -o FILE" "$Z" synth --shape tiny-llama
usage bench_p_garbage "-p: 'abc' is not an integer" "$Z" bench -p abc
usage bench_depth_negative "-d: -1 is out of range" "$Z" bench -d -1
usage bench_kv_unknown "zipcache bench: unknown KV policy 'bogus'" "$Z" bench --kv fp16,bogus
usage bench_kv_empty "zipcache bench: --kv: empty list" "$Z" bench --kv ,
usage bench_quant_unknown "zipcache bench quant: unknown option '--bogus'" "$Z" bench quant --bogus 1
usage eval_ctx_garbage "-c: 'abc' is not an integer" "$Z" eval ppl -c abc
usage eval_chunks_overflow "--chunks: '1e999' is not an integer" "$Z" eval ppl --chunks 1e999
usage eval_limit_negative "--limit: -5 is out of range" "$Z" eval ppl --limit -5
usage eval_shots_range "--shots: 9 is out of range [0, 8]" "$Z" eval gsm8k --shots 9
usage eval_timeout_garbage "--timeout: 'abc' is not a number" "$Z" eval humaneval --timeout abc
usage eval_bits_garbage "--bits: 'abc' is not a number" "$Z" eval sweep --bits abc
usage eval_option_of_other "--data is not an option of eval ppl" "$Z" eval ppl --data x
usage eval_execute_elsewhere "--execute is not an option of eval gsm8k" "$Z" eval gsm8k --execute
# these run on the default model (stories260K under $ZIPCACHE_ASSETS): without it the model is what is missing
if [ -f "$S260" ]; then
    for s in ppl sweep saliency recon; do usage eval_${s}_no_text "eval $s needs a text file (-f FILE)" "$Z" eval $s; done
    for s in lines gsm8k humaneval; do usage eval_${s}_no_data "eval $s needs --data FILE.jsonl" "$Z" eval $s; done
else
    skip eval_no_input "the default model stories260K.gguf not found under $A"
fi

# KV options are parsed by the library for every command that takes them.
for c in run "eval ppl" "eval lines"; do
    n=${c// /_}
    # shellcheck disable=SC2086
    usage ${n}_kv_unknown "unknown KV policy 'bogus' (available: fp32, fp16" "$Z" $c --kv bogus
    # shellcheck disable=SC2086
    usage ${n}_kv_probes_fraction "--kv-probes: 'random:2' needs fractions in (0, 1]" "$Z" $c --kv-probes random:2
    # shellcheck disable=SC2086
    usage ${n}_kv_probes_kind "--kv-probes: 'xyz' is not a probe policy" "$Z" $c --kv-probes xyz
    # shellcheck disable=SC2086
    usage ${n}_kv_bits_range "--kv-hi-bits: 9 is out of range [1, 8]" "$Z" $c --kv-hi-bits 9
    # shellcheck disable=SC2086
    usage ${n}_kv_denom "--kv-denom: 'Causal' is not one of accumulated, causal, probes" "$Z" $c --kv-denom Causal
    # shellcheck disable=SC2086
    usage ${n}_kv_decode_rule "--kv-decode-rule: 'last' is not one of paper, reference" "$Z" $c --kv-decode-rule last
    # shellcheck disable=SC2086
    usage ${n}_kv_int8_query "--kv-int8-query: 'yes' is not one of off, on" "$Z" $c --kv-int8-query yes
done
usage kv_budget_garbage "--kv-budget: 'abc' is not a byte count" "$Z" run --kv-budget abc
usage kv_budget_negative "--kv-budget: '-5' is not a byte count" "$Z" run --kv-budget -5
usage kv_budget_zero "--kv-budget: '0' must be positive" "$Z" run --kv-budget 0
usage kv_budget_suffix "--kv-budget: '5T' has an unknown suffix (use K, M or G)" "$Z" run --kv-budget 5T
usage kv_budget_trailing "--kv-budget: '5Kb' has trailing characters" "$Z" run --kv-budget 5Kb
usage kv_budget_overflow "--kv-budget: '17179869184G' is too large" "$Z" run --kv-budget 17179869184G

# ---- 2a. Missing files: exit 1, "<path>: cannot open: No such file or directory" ---------
MISSING="$NOFILE: cannot open: No such file or directory"
expect missing_model_run 1 "$MISSING" "$Z" run -m "$NOFILE"
expect missing_model_info 1 "$MISSING" "$Z" info -m "$NOFILE"
expect missing_model_tokenize 1 "$MISSING" "$Z" tokenize -m "$NOFILE" -p hi
expect missing_model_bench 1 "$MISSING" "$Z" bench -m "$NOFILE"
expect missing_model_eval 1 "$MISSING" "$Z" eval ppl -m "$NOFILE" -f "$NOFILE"
expect missing_input_convert 1 "$MISSING" "$Z" convert "$NOFILE" -o "$T/out.gguf"
if [ -f "$S260" ]; then # on the default model, as above
    expect missing_text_tokenize 1 "$MISSING" "$Z" tokenize -f "$NOFILE"
    for s in ppl saliency recon; do expect missing_text_eval_$s 1 "$MISSING" "$Z" eval $s -f "$NOFILE"; done
    for s in lines gsm8k humaneval; do expect missing_data_eval_$s 1 "$MISSING" "$Z" eval $s --data "$NOFILE"; done
else
    skip missing_text_default_model "the default model stories260K.gguf not found under $A"
fi
expect missing_dir_synth_output 1 "$NOFILE: cannot create: No such file or directory" \
    "$Z" synth --shape tiny-llama -o "$NOFILE"

if [ ! -f "$S260" ]; then
    skip hostile_gguf "stories260K.gguf not found under $A"
else
    expect missing_prompt_file_run 1 "$MISSING" "$Z" run -m "$S260" -f "$NOFILE"
    expect prompt_file_is_directory 1 "$T: read error: Is a directory" "$Z" run -m "$S260" -f "$T"
    expect model_not_regular_file 1 "/dev/null: not a regular file" "$Z" run -m /dev/null

    # ---- 2b. Malformed GGUF: one class of damage per file ---------------------------------
    # Truncated at every part of the file: header, key/values, tensor infos, data.
    size=$(stat -c %s "$S260")
    for cut in 0:"not a GGUF file (bad magic)" 3:"not a GGUF file (bad magic)" 6:"file truncated: version needs 4 bytes" \
        12:"file truncated: tensor count needs 8 bytes" 20:"file truncated: key count needs 8 bytes" \
        100:"key count 19 is impossible for 76 remaining bytes" \
        5000:"file truncated: string needs 8 bytes" 14000:"tensor name length 21 runs past end of file" \
        300000:"data [278784, +8192) runs past end of file (data section is 285824 bytes)" \
        $((size - 1)):"data [1170944, +256) runs past end of file (data section is 1171199 bytes)"; do
        n=${cut%%:*}
        head -c "$n" "$S260" >"$T/cut$n.gguf"
        expect "gguf_truncated_$n" 1 "cut$n.gguf: ${cut#*:}" "$Z" run -m "$T/cut$n.gguf"
    done
    if ! "$PY" tests/hostile/gguf_mutate.py "$S260" "$T/m" >"$T/names" 2>"$T/err"; then
        fail gguf_mutate "$(cat "$T/err")"
    else
        while IFS='|' read -r name pat; do
            expect "gguf_$name" 1 "$name.gguf: $pat" "$Z" run -m "$T/m/$name.gguf" -n 1
        done <<'EOF'
bad_version|unsupported GGUF version 99
tensor_count_overflow|tensor count 4611686018427387904 is impossible for 1185352 remaining bytes
kv_count_overflow|key count 18446744073709551615 is impossible
string_len_overflow|key length 9223372036854775813 runs past end of file
array_count_overflow|array of 2305843009213693952 string elements runs past end of file
kv_type_unknown|unknown value type 77
tensor_offset_past_end|data [1099512798720, +256) runs past end of file
tensor_misaligned|data offset 262404 is not a multiple of the alignment 32
tensor_type_unknown|unknown tensor type 200
tensor_dims_overflow|element count overflows at dimension 1
tensor_ndims_bad|n_dims 9 is not in 1..4
tensor_shape_mismatch|tensor 'blk.0.attn_q.weight' has shape [128,32], expected [64,64]
tensor_missing|tensor 'output_norm.weight' is missing
arch_unknown|architecture 'xxxxx' is not supported
layers_absurd|block count 1073741824 is out of range
heads_zero|head count 0 is out of range
tokenizer_missing|the file has no tokenizer
vocab_invalid_utf8|token 300 is not valid UTF-8
key_invalid_utf8|the file has no tokenizer
EOF
        # The header reader alone (info) refuses the same structural damage.
        expect gguf_info_tensor_type_unknown 1 "unknown tensor type 200" "$Z" info -m "$T/m/tensor_type_unknown.gguf"
        expect gguf_info_misaligned 1 "is not a multiple of the alignment 32" "$Z" info -m "$T/m/tensor_misaligned.gguf"
        expect gguf_convert_offset_past_end 1 "runs past end of file" \
            "$Z" convert "$T/m/tensor_offset_past_end.gguf" -o "$T/out.gguf"
    fi

    # ---- 2c. Prompts with invalid UTF-8 tokenize and run --------------------------------
    bad=$'\xff\xfe\xc3 a\xe2\x82'
    if "$Z" tokenize -m "$S260" -p "$bad" >"$T/ids" 2>"$T/err" && [ "$(tr '\n' ' ' <"$T/ids")" = "1 410 258 257 198 229 153 132 412 229 133 " ]; then
        pass tokenize_invalid_utf8_byte_fallback
    else
        fail tokenize_invalid_utf8_byte_fallback "$(cat "$T/ids" "$T/err")"
    fi
    expect run_invalid_utf8_prompt 0 "generated: 3 tokens" "$Z" run -m "$S260" -p "$bad" -n 3 --temp 0
    printf '\xc3' >"$T/bad.txt"
    expect run_invalid_utf8_prompt_file 0 "generated: 2 tokens" "$Z" run -m "$S260" -f "$T/bad.txt" -n 2 --temp 0

    # ---- 3. Context overflow at -c 16 ---------------------------------------------------
    long="Once upon a time there was a little girl who loved to play outside in the park every day"
    expect ctx_prompt_too_long 1 "the prompt has 32 tokens, more than the context of 16 (raise -c)" \
        "$Z" run -m "$S260" -c 16 -p "$long"
    expect ctx_generation_stops 0 "[stopped at 16 tokens: context full (raise -c for more)]" \
        "$Z" run -m "$S260" -c 16 -p "Once upon" -n 50 --temp 0
    # The run above sampled 16 - 3 prompt tokens + 1 (the last needs no decode step).
    if grep -qF "generated: 14 tokens; 13 decode steps" "$T/err"; then pass ctx_generation_count; else
        fail ctx_generation_count "$(cat "$T/err")"; fi

    # ---- 4a. --kv-budget ----------------------------------------------------------------
    # stories260K holds 2 (K,V) x 5 layers x 4 heads x 8 dims x 2 bytes = 640 fp16 bytes a
    # token: a 100 KiB budget is 160 tokens. zipcache compresses its window every 100 tokens
    # and so reaches the budget later. The text before the stop is the unbudgeted text's start.
    for kv in fp16 zipcache; do
        "$Z" run -m "$S260" -p "Once upon a time" -n 400 -c 512 --temp 0 --kv $kv >"$T/free.txt" 2>/dev/null
        if expect budget_$kv 1 "KV cache budget of 102400 bytes reached at position" \
            "$Z" run -m "$S260" -p "Once upon a time" -n 400 -c 512 --temp 0 --kv $kv --kv-budget 100K; then
            sed -n 's/.*reached at position \([0-9]*\) (policy '$kv').*/\1/p' "$T/err" >"$T/pos_$kv"
            if tail -n 1 "$T/err" | grep -q "^zipcache: KV cache budget"; then pass "budget_${kv}_last_line"; else
                fail "budget_${kv}_last_line" "$(tail -n 2 "$T/err")"; fi
            head -c -1 "$T/out" >"$T/part.txt"
            if [ -s "$T/part.txt" ] &&
                [ "$(head -c "$(stat -c %s "$T/part.txt")" "$T/free.txt")" = "$(cat "$T/part.txt")" ]; then
                pass "budget_${kv}_text_is_prefix"; else fail "budget_${kv}_text_is_prefix" "$(head -c 300 "$T/out")"; fi
        fi
    done
    if [ "$(cat "$T/pos_fp16" 2>/dev/null)" = 160 ]; then pass budget_fp16_position; else
        fail budget_fp16_position "fp16 stopped at '$(cat "$T/pos_fp16" 2>/dev/null)', want 160"; fi
    zp=$(cat "$T/pos_zipcache" 2>/dev/null)
    if [ -n "$zp" ] && [ "$zp" -gt 160 ]; then pass budget_zipcache_later; else
        fail budget_zipcache_later "zipcache stopped at '$zp', fp16 at 160"; fi
    # no --kv: the default policy, zipcache, names itself
    expect budget_prompt_refused 1 "KV cache budget of 1024 bytes reached at position 0 (policy zipcache)" \
        "$Z" run -m "$S260" -p "Once upon a time" --kv-budget 1K
    expect budget_not_reached 0 "budget 1048576 bytes" "$Z" run -m "$S260" -p "Once" -n 8 --kv-budget 1M

    # ---- 4b. Weights are mapped, not copied ---------------------------------------------
    expect weights_mapped_gguf 0 "memory: weights 1.13 MiB mapped, 0 B resident" "$Z" run -m "$S260" -n 1
fi

if [ ! -f "$TS/model.safetensors" ]; then
    skip hostile_hf "tinystories656K not found under $A"
else
    expect weights_mapped_hf 0 "memory: weights 2.50 MiB mapped, 0 B resident" "$Z" run -m "$TS" -n 1

    # ---- 2d. Malformed Hugging Face checkpoints: symlinked copy, one file replaced -------
    hf() { # hf NAME FILE: $T/NAME, a copy of the checkpoint without FILE (written by the caller)
        mkdir -p "$T/$1"
        for f in "$TS"/*; do [ "$(basename "$f")" = "$2" ] || ln -s "$f" "$T/$1/"; done
    }
    hf deep config.json
    "$PY" -c "print('{\"a\":' + '[' * 10000 + ']' * 10000 + '}')" >"$T/deep/config.json"
    expect hf_config_deep 1 "deep/config.json: invalid JSON at byte 132: nesting too deep" "$Z" run -m "$T/deep"
    hf huge config.json
    { printf '{"model_type": "'; head -c 104857600 /dev/zero | tr '\0' x; printf '"}'; } >"$T/huge/config.json"
    # Refused by its size limit without reading it whole: 100 MB would not fit under 60 MB.
    if can_ulimit; then
        expect hf_config_huge 1 "huge/config.json: file larger than the 1048576-byte limit" \
            bash -c 'ulimit -v 60000 && exec "$@"' _ "$Z" run -m "$T/huge"
    else
        expect hf_config_huge 1 "huge/config.json: file larger than the 1048576-byte limit" "$Z" run -m "$T/huge"
    fi
    rm -f "$T/huge/config.json"
    hf noconf config.json
    echo '{}' >"$T/noconf/config.json"
    expect hf_config_empty 1 "noconf/config.json: missing string 'model_type'" "$Z" run -m "$T/noconf"
    hf layers config.json
    sed -E 's/"num_hidden_layers": *[0-9]+/"num_hidden_layers": 1000000000/' "$TS/config.json" >"$T/layers/config.json"
    expect hf_config_layers_absurd 1 "layers/config.json: 'num_hidden_layers' = 1000000000 is out of range [1, 4096]" \
        "$Z" run -m "$T/layers"
    hf heads config.json
    sed -E 's/"num_attention_heads": *[0-9]+/"num_attention_heads": 7/' "$TS/config.json" >"$T/heads/config.json"
    expect hf_config_heads_not_dividing 1 "heads/config.json: hidden_size 128 is not a multiple of num_attention_heads 7" \
        "$Z" run -m "$T/heads"
    hf toktype tokenizer.json
    sed -E 's/"type": *"BPE"/"type": "Quantum"/' "$TS/tokenizer.json" >"$T/toktype/tokenizer.json"
    expect hf_tokenizer_model_unknown 1 "toktype/tokenizer.json: model type 'Quantum' is not supported" "$Z" run -m "$T/toktype"
    hf tokutf8 tokenizer.json
    "$PY" -c "import sys; d=open(sys.argv[1],'rb').read(); sys.stdout.buffer.write(d.replace(b'\"the\":', b'\"th\xff\":', 1))" \
        "$TS/tokenizer.json" >"$T/tokutf8/tokenizer.json"
    expect hf_tokenizer_invalid_utf8 1 "tokutf8/tokenizer.json: invalid JSON at byte 4616: invalid UTF-8 in string" \
        "$Z" run -m "$T/tokutf8"
    hf badtok tokenizer.json
    head -c 5000 "$TS/tokenizer.json" >"$T/badtok/tokenizer.json"
    expect hf_tokenizer_truncated 1 "badtok/tokenizer.json: invalid JSON at byte 5000" "$Z" run -m "$T/badtok"
    hf notok tokenizer.json
    expect hf_tokenizer_missing 1 "notok: the checkpoint has no tokenizer (tokenizer.json missing)" "$Z" run -m "$T/notok"
    hf sthuge model.safetensors
    printf '\xff\xff\xff\xff\xff\xff\xff\x7f{}' >"$T/sthuge/model.safetensors"
    expect hf_safetensors_header_length 1 "sthuge/model.safetensors: header length 9223372036854775807 runs past end of file" \
        "$Z" run -m "$T/sthuge"
    hf stjson model.safetensors
    printf '\x0a\x00\x00\x00\x00\x00\x00\x00{"x": [1,2' >"$T/stjson/model.safetensors"
    expect hf_safetensors_bad_json 1 "stjson/model.safetensors: bad JSON header: invalid JSON at byte 10: unterminated array" "$Z" run -m "$T/stjson"
    hf stoff model.safetensors
    "$PY" -c "import struct,sys; h=b'{\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[2048,128],\"data_offsets\":[0,1048576]}}'; sys.stdout.buffer.write(struct.pack('<Q',len(h))+h+bytes(64))" \
        >"$T/stoff/model.safetensors"
    expect hf_safetensors_offsets_past_end 1 "data_offsets [0, 1048576] outside the 64-byte data section" \
        "$Z" run -m "$T/stoff"
fi

# ---- 2e. JSONL data files with a malformed line: file and line named ------------------
jsonl() { # jsonl NAME SOURCE GOOD_LINES BAD_LINE
    head -n "$3" "$2" >"$T/$1.jsonl"
    printf '%s\n' "$4" >>"$T/$1.jsonl"
}
if [ ! -f "$S260" ] || [ ! -f "$DATA/gsm8k/test.jsonl" ] || [ ! -f "$DATA/humaneval/HumanEval.jsonl" ] ||
    [ ! -f "$DATA/longeval_lines/200_lines.jsonl" ]; then
    skip hostile_jsonl "stories260K or the evaluation data not found under $A"
else
    E=(--max-new 1 --no-progress --limit 1 -m "$S260")
    jsonl gsm "$DATA/gsm8k/test.jsonl" 2 '{"question": "x", "answer": '
    expect jsonl_gsm8k_truncated_line 1 "gsm.jsonl: line 3: invalid JSON" "$Z" eval gsm8k --data "$T/gsm.jsonl" "${E[@]}"
    jsonl he "$DATA/humaneval/HumanEval.jsonl" 1 $'{"task_id": "a\xff", "prompt": 5}'
    expect jsonl_humaneval_invalid_utf8 1 "he.jsonl: line 2: invalid JSON at byte 14: invalid UTF-8 in string" \
        "$Z" eval humaneval --data "$T/he.jsonl" "${E[@]}"
    jsonl lines "$DATA/longeval_lines/200_lines.jsonl" 1 'garbage'
    expect jsonl_lines_garbage 1 "lines.jsonl: line 2: invalid JSON at byte 0" "$Z" eval lines --data "$T/lines.jsonl" "${E[@]}"
    jsonl gsmfield "$DATA/gsm8k/test.jsonl" 1 '{"question": "x"}'
    expect jsonl_gsm8k_missing_field 1 "gsmfield.jsonl: record 2: missing string \"answer\"" \
        "$Z" eval gsm8k --data "$T/gsmfield.jsonl" --max-new 1 --no-progress --shots 0 -m "$S260"
fi

# ---- 4c. Allocation failures under ulimit -v: an out-of-memory message, exit 1 ----------
if [ ! -f "$S260" ]; then
    skip oom "stories260K.gguf not found under $A"
elif ! can_ulimit; then
    skip oom "this build cannot start under ulimit -v (sanitizer runtime)"
else
    lim() { bash -c 'ulimit -v 40000 && exec "$@"' _ "$@"; }
    # Loading: the model with 100 MiB of (sparse) padding after its data maps 101 MiB at once.
    cp "$S260" "$T/big.gguf" && chmod u+w "$T/big.gguf" && truncate -s +100M "$T/big.gguf"
    expect oom_model_map 1 "big.gguf: cannot map 106042976 bytes: Cannot allocate memory" \
        lim "$Z" run -m "$T/big.gguf" -n 1
    expect oom_model_map_control 0 "generated: 1 tokens" "$Z" run -m "$T/big.gguf" -n 1
    expect oom_kv_reserve 1 "kv fp16: cannot reserve 41943040 bytes of address space" \
        lim "$Z" run -m "$S260" -p Once -n 2 -c 65536 -b 65536 --kv fp16
    expect oom_activations 1 "out of memory allocating 16777216 aligned bytes" \
        lim "$Z" run -m "$S260" -p Once -n 2 -c 65536 -b 65536 --kv fp16 --kv zipcache
    expect oom_h2o_cache 1 "out of memory" lim "$Z" run -m "$S260" -p Once -n 2 -c 65536 --kv h2o
    expect oom_tokenize_text 1 "out of memory" lim "$Z" tokenize -m "$S260" -f "$DATA/tinystories/validation_head.txt"
    # The same runs fit without the limit's pressure when the context is small.
    expect oom_control 0 "generated: 2 tokens" lim "$Z" run -m "$S260" -p Once -n 2 -c 64
fi
