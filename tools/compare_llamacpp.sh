#!/usr/bin/env bash
# Side-by-side speed of llama.cpp (llama-bench, flash attention on, f16/q8_0/q4_0 caches) and
# zipcache (zipcache bench, fp16/zipcache/q4_0 caches) on the same GGUF file and threads,
# repetitions alternating between the two so that both see the same machine state, and one table
# with the ratios (tools/compare_table.py).
#
#   tools/compare_llamacpp.sh LLAMA_BENCH MODEL.gguf [-t THREADS] [-p 512] [-n 128] [-d 0,8192] [-r 3] [-o OUTDIR]
#                             [-c f16,q8_0,q4_0] [-z fp16,zipcache,q4_0]
#
# -c: llama.cpp's cache types (K and V alike), -z: zipcache's policies. With -d, both engines run
# every prefill and decode test at every depth (llama-bench -d; zipcache bench restores its cache
# to the depth before each prefill repetition).
# llama.cpp is never part of this repository: build llama-bench outside it (BENCHMARKS.md says
# how) and pass its path. Writes OUTDIR/llamacpp-R.json, OUTDIR/zipcache-R.json and
# OUTDIR/compare.md (default OUTDIR: bench-results/compare).
set -eu
[ $# -ge 2 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
LB=$1 MODEL=$2; shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ZC=${ZIPCACHE_BIN:-$ROOT/build/zipcache}
T=$(nproc) P=512 N=128 D=0 R=3 OUT=$ROOT/bench-results/compare C=f16,q8_0,q4_0 Z=fp16,zipcache,q4_0
while [ $# -gt 0 ]; do
    case $1 in
    -t) T=$2 ;; -p) P=$2 ;; -n) N=$2 ;; -d) D=$2 ;; -r) R=$2 ;; -o) OUT=$2 ;; -c) C=$2 ;; -z) Z=$2 ;;
    *) echo "compare_llamacpp.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done
[ -x "$LB" ] || { echo "compare_llamacpp.sh: $LB: not an executable llama-bench" >&2; exit 2; }
[ -f "$MODEL" ] || { echo "compare_llamacpp.sh: $MODEL: no such file" >&2; exit 2; }
mkdir -p "$OUT"
for r in $(seq 1 "$R"); do
    echo "repetition $r/$R: llama-bench" >&2
    "$LB" -m "$MODEL" -t "$T" -p "$P" -n "$N" -d "$D" -fa 1 -ctk "$C" -ctv "$C" -r 1 -o json \
        >"$OUT/llamacpp-$r.json"
    echo "repetition $r/$R: zipcache bench" >&2
    "$ZC" bench -m "$MODEL" -t "$T" -p "$P" -n "$N" -d "$D" --kv "$Z" -r 1 \
        --json "$OUT/zipcache-$r.json" >/dev/null
done
{
    echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $T threads; model $(basename "$MODEL");"
    echo "command: tools/compare_llamacpp.sh $LB $MODEL -t $T -p $P -n $N -d $D -r $R -c $C -z $Z"
    echo "zipcache commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    /usr/bin/python3 "$ROOT/tools/compare_table.py" "$OUT"
} >"$OUT/compare.md"
cat "$OUT/compare.md"
