#!/usr/bin/env bash
# End-to-end `zipcache tokenize`: vocabulary-only GGUF files (no tensors),
# a GGUF model, a Hugging Face directory and a tokenizer.json path; -p and -f
# give the same ids; --no-bos and --parse-special; usage errors exit 2, a
# missing or malformed model exits 1 naming the file.
set -u
BIN=${ZIPCACHE_BIN:-build/zipcache}
ASSETS=${ZIPCACHE_ASSETS:-../shared}
VEC=$ASSETS/data/tokenizer-vectors
S260=$ASSETS/models/stories260K/stories260K.gguf
S656=$ASSETS/models/tinystories656K
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; }
skip() { echo "SKIP $1: $2"; }

if [ ! -x "$BIN" ]; then fail tokenize_cli_binary "no $BIN"; exit 1; fi

# expect NAME "ids on one line" command...
expect() {
    local name=$1 want=$2 got
    shift 2
    got=$("$@" 2>"$TMP/err" | tr '\n' ' ' | sed 's/ $//')
    if [ "$got" = "$want" ]; then pass "$name"; else fail "$name" "got '$got' want '$want' $(cat "$TMP/err")"; fi
}

# expect_exit NAME CODE PATTERN command...: exit code and a stderr line matching PATTERN.
expect_exit() {
    local name=$1 code=$2 pat=$3 rc
    shift 3
    "$@" >/dev/null 2>"$TMP/err"
    rc=$?
    if [ $rc -eq "$code" ] && grep -q -- "$pat" "$TMP/err"; then pass "$name"
    else fail "$name" "exit $rc, stderr: $(cat "$TMP/err")"; fi
}

if [ -f "$VEC/ggml-vocab-llama-spm.gguf" ]; then
    # add_bos_token is true in this vocabulary; ids from llama.cpp's .out file.
    expect tokenize_spm_bos "1 15043 3186" "$BIN" tokenize -m "$VEC/ggml-vocab-llama-spm.gguf" -p "Hello world"
    expect tokenize_spm_no_bos "29871 15043 3186" "$BIN" tokenize -m "$VEC/ggml-vocab-llama-spm.gguf" -p " Hello world" --no-bos
    expect tokenize_spm_parse_special "1 1 15043 2" \
        "$BIN" tokenize -m "$VEC/ggml-vocab-llama-spm.gguf" -p "<s>Hello</s>" --parse-special
    printf 'Hello world' >"$TMP/in.txt"
    expect tokenize_file "1 15043 3186" "$BIN" tokenize -m "$VEC/ggml-vocab-llama-spm.gguf" -f "$TMP/in.txt"
else
    skip tokenize_spm "$VEC/ggml-vocab-llama-spm.gguf not found"
fi

if [ -f "$VEC/ggml-vocab-gpt-2.gguf" ]; then
    expect tokenize_gpt2 "15496 995" "$BIN" tokenize -m "$VEC/ggml-vocab-gpt-2.gguf" -p "Hello world"
    expect tokenize_gpt2_special "15496 50256" \
        "$BIN" tokenize -m "$VEC/ggml-vocab-gpt-2.gguf" -p "Hello<|endoftext|>" --parse-special
else
    skip tokenize_gpt2 "$VEC/ggml-vocab-gpt-2.gguf not found"
fi

if [ -f "$S260" ]; then
    # 512-token SentencePiece vocabulary inside a model file.
    ids=$("$BIN" tokenize -m "$S260" -p "Once upon a time" | tr '\n' ' ')
    case "$ids" in "1 "*) pass tokenize_stories260K ;; *) fail tokenize_stories260K "got '$ids'" ;; esac
else
    skip tokenize_stories260K "$S260 not found"
fi

if [ -d "$S656" ]; then
    expect tokenize_hf_dir "1 80 147 201 282 57" "$BIN" tokenize -m "$S656" -p "Once upon a time"
    expect tokenize_hf_json "80 147 201 282 57" "$BIN" tokenize -m "$S656/tokenizer.json" -p "Once upon a time" --no-bos
    # Without the dummy space: how the model's own stories begin.
    expect tokenize_hf_no_space_prefix "1 147 201 282 57" \
        "$BIN" tokenize -m "$S656" -p "Once upon a time" --no-space-prefix
else
    skip tokenize_hf "$S656 not found"
fi

expect_exit tokenize_usage_no_text 2 "exactly one of" "$BIN" tokenize -m "$TMP/x.gguf"
expect_exit tokenize_usage_option 2 "unknown option" "$BIN" tokenize -p x --bogus
expect_exit tokenize_missing_model 1 "$TMP/none.gguf" "$BIN" tokenize -m "$TMP/none.gguf" -p x
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}' >"$TMP/tokenizer.json"
expect_exit tokenize_bad_json 1 "$TMP/tokenizer.json: merge 0" "$BIN" tokenize -m "$TMP" -p x
exit 0
