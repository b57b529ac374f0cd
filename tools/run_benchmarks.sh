#!/usr/bin/env bash
# Runs every benchmark behind BENCHMARKS.md on a synthetic Llama-3.2-1B-shaped
# model (q8_0 weights, random values) and writes the tables to
# bench-results/ (markdown, JSON, CSV):
#   decode.md     decode tokens/s, fp16 and zipcache side by side, at each depth
#   decode16k.md  decode tokens/s of every KV policy side by side at 16K
#   prefill.md    prefill tokens/s per KV policy, from an empty cache
#   depth0.md     decode at depth 0 on 1 thread and on all cores, vs the floor
#   attn.md       decode attention per layer: fp16 cache vs packed codes
#   quant.md      KV quantizers, quantize+pack and unpack+dequantize per core
#   kernels.txt   weight-matrix kernels (row-major and packed), 1 and 2 threads
#   shapes-*.md   decode and prefill at 0/8K/16K at the qwen3-4b and gemma-3-1b shapes (gemma's
#                 local layers compressed, the default, and kept exact: -local-exact)
#   compare-*/    against llama.cpp (only with LLAMA_BENCH=path/to/llama-bench)
#
#   tools/run_benchmarks.sh [LAYERS] [DEPTHS] [POLICIES] [PREFILL]
# Defaults: 16 layers (the real model), depths 16384,32768, policies
# fp16,zipcache,q4_0,q8_0, prefill 4096 tokens. Filling 16 layers to 32K
# tokens takes ~25 minutes per policy on 2 cores, so only fp16 and zipcache
# go to every depth; all policies meet at 16K. The run takes about 1 h 45 min;
# run it on an otherwise idle machine. Depths are filled incrementally (the
# 32K cache extends the 16K one) and the repetitions of the policies are
# interleaved (see programs/bench_model.c).
set -eu
cd "$(dirname "$0")/.."
LAYERS=${1:-16}
DEPTHS=${2:-16384,32768}
POLICIES=${3:-fp16,zipcache,q4_0,q8_0}
PREFILL=${4:-4096}
BIN=${ZIPCACHE_BIN:-build/zipcache}
MODEL=${ZIPCACHE_BENCH_MODEL:-/tmp/zipcache-llama-3.2-1b-${LAYERS}l-q8_0.gguf}
OUT=bench-results
[ -n "${ZIPCACHE_BIN:-}" ] || make -j2 >/dev/null
[ -f "$MODEL" ] || "$BIN" synth --shape llama-3.2-1b --type q8_0 --layers "$LAYERS" -o "$MODEL"
mkdir -p "$OUT"
rm -f "$OUT"/*.md "$OUT"/*.cmd # bench --md appends
{
    echo "commit $(git rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/machine.txt"

run() { # name, then the zipcache arguments
    local name=$1
    shift
    echo "zipcache $*" > "$OUT/$name.cmd"
    echo "== $name: zipcache $*" >&2
    "$BIN" "$@"
}
run decode bench -m "$MODEL" -p 16 -n 16 -d "$DEPTHS" --kv fp16,zipcache -r 3 \
    --md "$OUT/decode.md" --json "$OUT/decode.json" --csv "$OUT/decode.csv" >/dev/null
run decode16k bench -m "$MODEL" -p 16 -n 16 -d 16384 --kv "$POLICIES" -r 3 \
    --md "$OUT/decode16k.md" --json "$OUT/decode16k.json" --csv "$OUT/decode16k.csv" >/dev/null
run prefill bench -m "$MODEL" -p "$PREFILL" -n 1 -d 0 --kv "$POLICIES" -r 3 \
    --md "$OUT/prefill.md" --json "$OUT/prefill.json" --csv "$OUT/prefill.csv" >/dev/null
run depth0-1t bench -m "$MODEL" -p 16 -n 32 -d 0 --kv fp16 -r 3 -t 1 --md "$OUT/depth0-1t.md" >/dev/null
run depth0 bench -m "$MODEL" -p 16 -n 32 -d 0 --kv fp16 -r 3 --md "$OUT/depth0.md" >/dev/null
run attn bench attn -d 4096,16384,32768 --csv "$OUT/attn.csv" > "$OUT/attn.md"
run quant bench quant -t 1 --json "$OUT/quant.json" > "$OUT/quant.md"
"$BIN" bench kernels -t 2 > "$OUT/kernels.txt" # 1 and 2 threads
# The 2026 shapes at depth (qwen3-4b with 4 of its layers, gemma-3-1b whole).
for shape in qwen3-4b:4 gemma-3-1b:26; do
    name=${shape%%:*} layers=${shape##*:} m=/tmp/zipcache-$name-${shape##*:}l-q8_0.gguf
    [ -f "$m" ] || "$BIN" synth --shape "$name" --type q8_0 --layers "$layers" -o "$m" >/dev/null
    run "shapes-$name" bench -m "$m" -p 512 -n 32 -d 0,8192,16384 --kv fp16,zipcache -r 2 \
        --md "$OUT/shapes-$name.md" --json "$OUT/shapes-$name.json" --csv "$OUT/shapes-$name.csv" >/dev/null
done
# Gemma's 22 local layers kept exact beside zipcache (--kv-local exact) instead of compressed (the default).
run shapes-gemma-3-1b-local-exact bench -m /tmp/zipcache-gemma-3-1b-26l-q8_0.gguf -p 512 -n 32 -d 0,8192,16384 \
    --kv fp16,zipcache --kv-local exact -r 2 --md "$OUT/shapes-gemma-3-1b-local-exact.md" \
    --json "$OUT/shapes-gemma-3-1b-local-exact.json" --csv "$OUT/shapes-gemma-3-1b-local-exact.csv" >/dev/null
# Against llama.cpp, when LLAMA_BENCH names a llama-bench built outside the repository (BENCHMARKS.md).
if [ -n "${LLAMA_BENCH:-}" ]; then
    M4=/tmp/zipcache-llama-3.2-1b-4l-q8_0.gguf
    [ -f "$M4" ] || "$BIN" synth --shape llama-3.2-1b --type q8_0 --layers 4 -o "$M4" >/dev/null
    tools/compare_llamacpp.sh "$LLAMA_BENCH" "$MODEL" -t 2 -p 512 -n 128 -d 0 -r 3 -o "$OUT/compare-16l"
    tools/compare_llamacpp.sh "$LLAMA_BENCH" "$M4" -t 2 -p 512 -n 64 -d 8192,16384 -r 2 -c f16,q8_0 \
        -z fp16,zipcache -o "$OUT/compare-4l-depth"
fi
echo "wrote $OUT/" >&2
