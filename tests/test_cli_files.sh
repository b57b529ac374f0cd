#!/usr/bin/env bash
# End-to-end tests of the model-file commands: info, convert, synth.
# Output checks use tests/files_ref.py, an independent numpy reader of GGUF
# and safetensors. Missing assets => SKIP. Each case prints PASS/FAIL/SKIP.
set -u
cd "$(dirname "$0")/.."
Z=${ZIPCACHE_BIN:-build/zipcache}
A=${ZIPCACHE_ASSETS:-../shared}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
REF="$PY tests/files_ref.py"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
S260=$A/models/stories260K/stories260K.gguf
TS=$A/models/tinystories656K

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; shift; echo "  $*" >&2; }
skip() { echo "SKIP $1: $2"; }

# run_expect NAME CODE PATTERN CMD...: exit code CODE and PATTERN in stderr.
run_expect() {
    local name=$1 code=$2 pat=$3
    shift 3
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc -ne "$code" ]; then fail "$name" "exit $rc, want $code: $(head -c 400 "$T/err")"; return; fi
    if ! grep -qF -- "$pat" "$T/err"; then fail "$name" "stderr lacks '$pat': $(head -c 400 "$T/err")"; return; fi
    pass "$name"
}

# ---- info -------------------------------------------------------------------
if [ -f "$S260" ]; then
    if "$Z" info -m "$S260" >"$T/info" 2>"$T/err" && grep -q '^tensors (48):' "$T/info" &&
        grep -qE '^  token_embd.weight +f32 +\[64, 512\] +131072 +0$' "$T/info" &&
        grep -qE '^  blk.4.ffn_norm.weight +f32 +\[64\] +256 ' "$T/info" &&
        grep -qE '^  llama.block_count +u32 +5$' "$T/info" &&
        grep -qF '[string x 512] ["<unk>", "<s>", "</s>", "<0x00>"' "$T/info" &&
        grep -qF 'totals: 292800 parameters' "$T/info"; then
        pass info_stories260k
    else
        fail info_stories260k "$(head -c 600 "$T/info") $(cat "$T/err")"
    fi
    head -c 3000 "$S260" >"$T/cut.gguf"
    run_expect info_truncated 1 "cut.gguf: array of 512 string elements runs past end of file (2931 bytes left) (key 0 'tokenizer.ggml.tokens'" \
        "$Z" info -m "$T/cut.gguf"
    { printf 'GGUX'; tail -c +5 "$S260"; } >"$T/magic.gguf"
    run_expect info_bad_magic 1 "magic.gguf: not a GGUF file (bad magic)" "$Z" info -m "$T/magic.gguf"
else
    for n in info_stories260k info_truncated info_bad_magic; do skip $n "stories260K.gguf not found"; done
fi
run_expect info_missing_file 1 "nonexistent.gguf: cannot open" "$Z" info -m "$T/nonexistent.gguf"
run_expect info_usage 2 "unknown argument '--bogus'" "$Z" info --bogus
run_expect info_usage_no_value 2 "needs a value" "$Z" info -m

# ---- convert: HF llama (tinystories656K) ------------------------------------
if [ -f "$TS/model.safetensors" ]; then
    if "$Z" convert "$TS" -o "$T/ts-f32.gguf" --type f32 2>"$T/err" && "$Z" info -m "$T/ts-f32.gguf" >"$T/info" &&
        grep -q '^tensors (20):' "$T/info" && $REF check-llama "$TS" "$T/ts-f32.gguf" f32 >/dev/null 2>"$T/ref"; then
        pass convert_hf_llama_f32
    else
        fail convert_hf_llama_f32 "$(cat "$T/err" "$T/ref" 2>/dev/null | head -c 600)"
    fi
    if "$Z" convert "$TS" -o "$T/ts-q8.gguf" --type q8_0 2>"$T/err" &&
        $REF check-llama "$TS" "$T/ts-q8.gguf" q8_0 >/dev/null 2>"$T/ref"; then
        pass convert_hf_llama_q8_0
    else
        fail convert_hf_llama_q8_0 "$(cat "$T/err" "$T/ref" 2>/dev/null | head -c 600)"
    fi
    # A broken checkpoint: config.json without hidden_size.
    mkdir -p "$T/broken"
    ln -s "$(cd "$TS" && pwd)/model.safetensors" "$T/broken/model.safetensors"
    ln -s "$(cd "$TS" && pwd)/tokenizer.json" "$T/broken/tokenizer.json"
    sed 's/"hidden_size": 128,//' "$TS/config.json" >"$T/broken/config.json"
    run_expect convert_hf_bad_config 1 "config.json: missing 'hidden_size' (config)" \
        "$Z" convert "$T/broken" -o "$T/broken.gguf" --type f32
    [ ! -e "$T/broken.gguf" ] || fail convert_hf_no_partial_output "broken.gguf was left behind"
    # Config that disagrees with the weights' shapes.
    sed 's/"intermediate_size": 384/"intermediate_size": 256/' "$TS/config.json" >"$T/broken/config.json"
    run_expect convert_hf_shape_mismatch 1 \
        "tensor 'model.layers.0.mlp.gate_proj.weight' has 2 dims [384, 128], config.json implies [256, 128]" \
        "$Z" convert "$T/broken" -o "$T/broken.gguf" --type f32
else
    for n in convert_hf_llama_f32 convert_hf_llama_q8_0 convert_hf_bad_config convert_hf_shape_mismatch; do
        skip $n "tinystories656K not found"
    done
fi

# Golden greedy continuation of tinystories656K (ASSETS.md) through the converted GGUF.
GOLDEN="147 201 282 215 286 598 1662 356 499 826 1363 1145 1652 615 242 1482 951 628 499 826 872 921 318 385 628 499 826 617 242 198 1047 425 1939 122 1924 1171 94 303 328 229 521 776 115 1139 312 447 1456 319"
if [ -f "$T/ts-f32.gguf" ]; then
    $REF decode "$TS/tokenizer.json" $GOLDEN >"$T/golden.txt"
    if "$Z" run -m "$T/ts-f32.gguf" --temp 0 -n 48 --kv fp32 >"$T/run.txt" 2>"$T/err" &&
        cmp -s <(head -c "$(wc -c <"$T/golden.txt")" "$T/run.txt") "$T/golden.txt"; then
        pass convert_hf_golden_tokens
    else
        fail convert_hf_golden_tokens "got '$(head -c 200 "$T/run.txt")' want '$(head -c 200 "$T/golden.txt")' $(tail -c 300 "$T/err")"
    fi
else
    skip convert_hf_golden_tokens "no converted tinystories656K"
fi

# The converted SentencePiece-style vocab (merge-rank scores) tokenizes like
# the tokenizer.json BPE it came from. The HF path keeps the normalizer's
# Prepend("▁") (id 80 after BOS); the GGUF sets add_space_prefix=false as
# ASSETS.md prescribes, so that one token is dropped before comparing.
VAL=$A/data/tinystories/validation_head.txt
if [ -f "$T/ts-f32.gguf" ] && [ -f "$VAL" ]; then
    head -c 4000 "$VAL" >"$T/val.txt"
    "$Z" tokenize -m "$T/ts-f32.gguf" -f "$T/val.txt" >"$T/gguf.ids" 2>"$T/err"
    "$Z" tokenize -m "$TS" -f "$T/val.txt" 2>>"$T/err" | awk 'NR == 2 && $0 == "80" { next } { print }' >"$T/hf.ids"
    if [ "$(wc -l <"$T/gguf.ids")" -gt 500 ] && cmp -s "$T/gguf.ids" "$T/hf.ids"; then
        pass convert_hf_tokenizer_matches
    else
        fail convert_hf_tokenizer_matches "$(diff "$T/gguf.ids" "$T/hf.ids" | head -5) $(head -c 300 "$T/err")"
    fi
else
    skip convert_hf_tokenizer_matches "no converted tinystories656K or validation text"
fi

# ---- convert: generated HF llama 3 style (untied, head_dim != hidden/heads, rope_freqs, byte tokens) --
if $REF make-llama3 "$T/llama3" 2>"$T/ref" && "$Z" convert "$T/llama3" -o "$T/llama3.gguf" --type f16 2>"$T/err" &&
    $REF check-llama "$T/llama3" "$T/llama3.gguf" f16 >/dev/null 2>"$T/ref" &&
    "$Z" run -m "$T/llama3.gguf" -p "hello" -n 2 --temp 0 >/dev/null 2>>"$T/err"; then
    pass convert_hf_llama3_f16
else
    fail convert_hf_llama3_f16 "$(cat "$T/err" "$T/ref" 2>/dev/null | head -c 600)"
fi

# ---- convert: generated HF qwen2 (F16 + BF16 sources, biases, byte-level BPE) --
if $REF make-qwen2 "$T/qwen2" 2>"$T/ref" && "$Z" convert "$T/qwen2" -o "$T/qwen2.gguf" --type f32 2>"$T/err" &&
    $REF check-qwen2 "$T/qwen2" "$T/qwen2.gguf" >/dev/null 2>"$T/ref"; then
    pass convert_hf_qwen2
else
    fail convert_hf_qwen2 "$(cat "$T/err" "$T/ref" 2>/dev/null | head -c 600)"
fi

# ---- convert: GGUF requantization ---------------------------------------------
if [ -f "$S260" ]; then
    for ty in f16 q8_0; do
        if "$Z" convert "$S260" -o "$T/s-$ty.gguf" --type $ty 2>"$T/err" &&
            $REF check-requant "$S260" "$T/s-$ty.gguf" $ty >/dev/null 2>"$T/ref"; then
            pass convert_gguf_$ty
        else
            fail convert_gguf_$ty "$(cat "$T/err" "$T/ref" 2>/dev/null | head -c 600)"
        fi
    done
    grep -qF "blk.0.ffn_down.weight: row length 172 is not a multiple of 32, kept as f32" "$T/err" &&
        pass convert_gguf_kept_note || fail convert_gguf_kept_note "$(cat "$T/err")"
    # f16 -> f32 back: exactly the f16 values (checked against the f16 file).
    if "$Z" convert "$T/s-f16.gguf" -o "$T/s-back.gguf" --type f32 2>"$T/err" &&
        $REF check-requant "$T/s-f16.gguf" "$T/s-back.gguf" f32 >/dev/null 2>"$T/ref"; then
        pass convert_gguf_f16_to_f32
    else
        fail convert_gguf_f16_to_f32 "$(cat "$T/err" "$T/ref" 2>/dev/null | head -c 600)"
    fi
    head -c 20000 "$S260" >"$T/cut2.gguf"
    run_expect convert_bad_input 1 "cut2.gguf: data [0, +131072) runs past end of file (data section is 5824 bytes) (tensor 0 'token_embd.weight'" \
        "$Z" convert "$T/cut2.gguf" -o "$T/x.gguf" --type f16
    run_expect convert_same_file 2 "is the input" "$Z" convert "$S260" -o "$S260" --type f16
else
    for n in convert_gguf_f16 convert_gguf_q8_0 convert_gguf_kept_note convert_gguf_f16_to_f32 convert_bad_input \
        convert_same_file; do skip $n "stories260K.gguf not found"; done
fi
run_expect convert_bad_type 2 "--type 'q3_k' is not one of" "$Z" convert x -o "$T/y.gguf" --type q3_k
run_expect convert_no_output 2 "need IN and -o OUT.gguf" "$Z" convert x

# ---- synth ----------------------------------------------------------------------
synth_case() { # NAME SHAPE TYPE SPEC_JSON
    if "$Z" synth --shape "$2" --type "$3" -o "$T/$1.gguf" --seed 5 2>"$T/err" && "$Z" info -m "$T/$1.gguf" >/dev/null &&
        $REF check-synth "$T/$1.gguf" "$4" >/dev/null 2>"$T/ref"; then
        pass "$1"
    else
        fail "$1" "$(cat "$T/err" "$T/ref" 2>/dev/null | head -c 600)"
    fi
}
synth_case synth_tiny_llama_q8_0 tiny-llama q8_0 '{"arch":"llama","layers":2,"type":"q8_0"}'
synth_case synth_tiny_llama3_f16 tiny-llama3 f16 '{"arch":"llama","layers":2,"type":"f16","tied":true,"rope_freqs":true}'
synth_case synth_tiny_qwen2_f32 tiny-qwen2 f32 '{"arch":"qwen2","layers":2,"type":"f32","tied":true,"bias":true}'
# Same seed, different thread counts: identical bytes; another seed: different.
"$Z" synth --shape tiny-llama --type q4_0 -o "$T/a.gguf" --seed 9 -t 1 2>/dev/null
"$Z" synth --shape tiny-llama --type q4_0 -o "$T/b.gguf" --seed 9 -t 2 2>/dev/null
"$Z" synth --shape tiny-llama --type q4_0 -o "$T/c.gguf" --seed 10 -t 2 2>/dev/null
if cmp -s "$T/a.gguf" "$T/b.gguf" && ! cmp -s "$T/a.gguf" "$T/c.gguf"; then
    pass synth_deterministic
else
    fail synth_deterministic "seeded output depends on threads or ignores the seed"
fi
# A real shape, cut to one layer to keep the suite fast (the embedding alone is 77 MB).
if "$Z" synth --shape qwen2.5-0.5b --layers 1 --type q4_0 -o "$T/q05.gguf" 2>"$T/err" &&
    "$Z" info -m "$T/q05.gguf" >"$T/info" && grep -qE '^  blk.0.ffn_gate.weight +q4_0 +\[896, 4864\] ' "$T/info" &&
    grep -qE '^  blk.0.attn_k.bias +f32 +\[128\] ' "$T/info" && grep -qE '^  token_embd.weight +q4_0 +\[896, 151936\] ' "$T/info" &&
    grep -qE '^  qwen2.attention.head_count +u32 +14$' "$T/info" && ! grep -q '^  output.weight' "$T/info"; then
    pass synth_qwen25_05b_one_layer
else
    fail synth_qwen25_05b_one_layer "$(head -c 400 "$T/err")"
fi
if "$Z" run -m "$T/synth_tiny_qwen2_f32.gguf" -p "hello" -n 4 --temp 0 >/dev/null 2>"$T/err"; then
    pass synth_tiny_runs
else
    fail synth_tiny_runs "$(tail -c 400 "$T/err")"
fi
run_expect synth_bad_shape 2 "unknown shape 'llama-9'" "$Z" synth --shape llama-9 -o "$T/z.gguf"
run_expect synth_bad_layers 2 "--layers: 0 is out of range" "$Z" synth --shape tiny-llama --layers 0 -o "$T/z.gguf"
exit 0
