#!/usr/bin/env bash
# Sequences of one context match separate contexts bit for bit, batched decode
# (zc_decode_batch) gives each sequence its single-step logits, and a saved sequence restored
# into another context goes on with the same logits under every policy, on every architecture, not only
# llama: tiny synthetic gemma3 (sliding-window local layers with their own RoPE base: 45 tokens
# against a window of 32), qwen3, phi3 and smollm3 checkpoints through build/tests/test_seq MODEL.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${ZIPCACHE_BIN:-$ROOT/build/zipcache}
BUILD=${ZIPCACHE_BUILD:-$ROOT/build}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for shape in tiny-gemma3 tiny-qwen3 tiny-phi3 tiny-smollm3; do
    if ! "$BIN" synth --shape "$shape" -o "$TMP/$shape.gguf" -t 1 >"$TMP/synth.log" 2>&1; then
        echo "FAIL seq_batch_$shape: synth: $(tail -c 300 "$TMP/synth.log")"
        continue
    fi
    if "$BUILD/tests/test_seq" "$TMP/$shape.gguf" >"$TMP/out" 2>&1 && grep -q '^PASS' "$TMP/out" && ! grep -q '^FAIL' "$TMP/out"; then
        echo "PASS seq_batch_$shape"
    else
        echo "FAIL seq_batch_$shape: $(tail -c 600 "$TMP/out")"
    fi
done
