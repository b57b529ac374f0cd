#!/usr/bin/env bash
# A bounded load test of zipcache serve on 127.0.0.1 (tools/serve_load.py): 64 concurrent
# clients for 10 s, mixed completions/chat, streamed and not, some dropping their stream;
# every finished response well-formed, no crash, RSS under the KV budget + 96 MiB, /metrics
# agreeing with the clients. The 60 s run is by hand (BENCHMARKS.md).
set -u
cd "$(dirname "$0")/.." || exit 1
Z=${ZIPCACHE_BIN:-build/zipcache}
A=${ZIPCACHE_ASSETS:-../shared}
M=$A/models/stories260K/stories260K.gguf
if [ ! -f "$M" ]; then echo "SKIP serve_load: $M not found"; exit 0; fi
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
# AddressSanitizer's shadow memory and quarantine (up to 256 MiB) come on top under `make asan`
overhead=96
nm "$Z" 2>/dev/null | grep -q __asan_init && overhead=512
exec timeout 120 "$PY" tools/serve_load.py --bin "$Z" --model "$M" --clients 64 --seconds 10 --parallel 8 \
    --kv zipcache --kv-budget 100K --queue 16 --overhead-mb $overhead
