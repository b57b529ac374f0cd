#!/usr/bin/env bash
# Every KV cache policy on every architecture: tiny random checkpoints from
# `zipcache synth` (llama, llama with Llama 3 RoPE, qwen2, qwen3 at head_dim
# 128, gemma3 at head_dim 256 with sliding-window layers, phi3 with fused
# matrices, partial rotary and LongRoPE, smollm3 with a NoPE layer), a short greedy
# generation per policy with streaming compression forced early
# (--kv-stream-gap 8): exit 0 and the cache's usage printed (bytes for the
# tokens held, bits/element, the compressed ones under 16). q4_0/q8_0 are
# refused (exit 1) where head_dim is not a multiple of 32. gemma3 runs every
# policy within its window and past it (kv_window.c keeps local layers).
set -u
BIN=${ZIPCACHE_BIN:-build/zipcache}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; shift; printf '  %s\n' "$@" >&2; }

POLICIES="fp32 fp16 q8_0 q4_0 h2o kivi zipcache uniform mikv"
# shape head_dim context
SHAPES="tiny-llama:16:64 tiny-llama3:32:64 tiny-qwen2:16:64 tiny-qwen3:128:64 tiny-gemma3:256:32 tiny-phi3:32:64 tiny-smollm3:32:64"

for entry in $SHAPES; do
    IFS=: read -r shape hd ctx <<<"$entry"
    model=$TMP/$shape.gguf
    if ! "$BIN" synth --shape "$shape" --type q8_0 -o "$model" -t 2 >/dev/null 2>"$TMP/err"; then
        fail "matrix_${shape}_synth" "$(head -c 400 "$TMP/err")"
        continue
    fi
    bad=""
    for kv in $POLICIES; do
        "$BIN" run -m "$model" -p "Once upon a time" -n 10 -c "$ctx" --temp 0 -t 2 --kv "$kv" --kv-stream-gap 8 \
            >"$TMP/out" 2>"$TMP/err"
        rc=$?
        if [ "$kv" = q8_0 ] || [ "$kv" = q4_0 ] && [ $((hd % 32)) -ne 0 ]; then
            if [ $rc -ne 1 ] || ! grep -q "head_dim $hd is not a multiple of 32" "$TMP/err"; then
                bad="$bad $kv(exit $rc, want a head_dim refusal: $(head -c 200 "$TMP/err"))"
            fi
            continue
        fi
        # "kv cache: 6.4 KiB for 16 tokens, 12.80 bits/element, 1.25x vs fp16"
        line=$(grep -E '^kv cache: [0-9.]+ [KMG]?i?B for [0-9]+ tokens, [0-9.]+ bits/element' "$TMP/err")
        tokens=$(sed -E 's/.* for ([0-9]+) tokens.*/\1/' <<<"$line")
        bits=$(sed -E 's/.* tokens, ([0-9.]+) bits.*/\1/' <<<"$line")
        if [ $rc -ne 0 ] || [ -z "$line" ] || [ "${tokens:-0}" -lt 10 ]; then
            bad="$bad $kv(exit $rc: $(tail -c 300 "$TMP/err"))"
        elif case $kv in q8_0|q4_0|zipcache|uniform|mikv) true;; *) false;; esac &&
             ! awk -v b="$bits" 'BEGIN { exit !(b < 16) }'; then
            bad="$bad $kv($bits bits/element, not compressed)"
        fi
    done
    if [ -z "$bad" ]; then pass "matrix_$shape"; else fail "matrix_$shape" "$bad"; fi
done

# gemma3 past its window (32 tokens on layers 0 and 2): every policy decodes
# to ~80 tokens, the local layers holding at most twice their window.
model=$TMP/tiny-gemma3.gguf
if [ -f "$model" ]; then
    bad=""
    for kv in $POLICIES; do
        "$BIN" run -m "$model" -p "Once upon a time" -n 60 -c 96 --temp 0 -t 2 --kv "$kv" --kv-stream-gap 8 \
            >"$TMP/out" 2>"$TMP/err"
        rc=$?
        grep -qE '^kv cache: .* for (7[0-9]|8[0-9]) tokens' "$TMP/err" || rc="$rc, no usage line"
        [ "$rc" = 0 ] || bad="$bad $kv(exit $rc: $(tail -c 200 "$TMP/err"))"
    done
    if [ -z "$bad" ]; then pass matrix_gemma3_past_window; else fail matrix_gemma3_past_window "$bad"; fi
fi
