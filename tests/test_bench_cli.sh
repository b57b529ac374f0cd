#!/usr/bin/env bash
# zipcache bench quant end to end (smoke size, --min-time 0): a table row for
# every format x width x path, a JSON file that parses with the same rows and
# the stored bits the library states, and usage errors exiting 2.
set -u
BIN=${ZIPCACHE_BIN:-build/zipcache}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; shift; printf '  %s\n' "$@" >&2; }
check() { local name=$1 ok=$2; shift 2; if [ "$ok" -eq 0 ]; then pass "$name"; else fail "$name" "$@"; fi; }

"$BIN" bench quant --tokens 64 --channels 64 -t 2 --min-time 0 --json "$TMP/q.json" >"$TMP/out" 2>"$TMP/err"
rc=$?
check bench_quant_runs $rc "exit $rc: $(head -c 400 "$TMP/err")"

# 5 formats x 4 widths + q8_0 + q4_0, per available path (scalar, and avx2 where present)
rows=$(grep -cE '^\| [a-z0-9_-]+ \| [0-9]+ \|' "$TMP/out")
paths=$(grep -c '| avx2 |' "$TMP/out"); [ "$paths" -gt 0 ] && want=44 || want=22
[ "$rows" -eq "$want" ]; check bench_quant_table_rows $? "rows $rows, want $want"
grep -q '^| channel | 3 | scalar | 3.500 |' "$TMP/out"
check bench_quant_stored_bits $? "channel 3-bit on 64x64: (64*24*8 + 2*64*16)/4096 = 3.5 bits/elem" "$(grep channel "$TMP/out" | head -3)"

/usr/bin/python3 - "$TMP/q.json" "$want" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rows = d["rows"]
assert len(rows) == int(sys.argv[2]), len(rows)
assert d["tokens"] == 64 and d["channels"] == 64 and d["threads"] == 2 and d["memcpy_gbps_per_core"] > 0
for r in rows:
    assert r["quant_gbps"] > 0 and r["dequant_gbps"] > 0, r
    assert abs(r["quant_frac_memcpy"] - r["quant_gbps"] / d["memcpy_gbps_per_core"]) < 1e-3 * (1 + r["quant_frac_memcpy"]), r
q4 = [r for r in rows if r["format"] == "q4_0"][0]
assert q4["bits"] == 4 and abs(q4["stored_bits_per_element"] - 4.5) < 1e-9, q4
PY
check bench_quant_json $? "json check failed"

"$BIN" bench quant --tokens 5 >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && [ -s "$TMP/err" ]; check bench_quant_bad_tokens $? "exit $rc"
"$BIN" bench quant --channels 48 >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q "multiple of 32" "$TMP/err"; check bench_quant_bad_channels $? "exit $rc: $(cat "$TMP/err")"
"$BIN" bench quant --frobnicate >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ]; check bench_quant_unknown_option $? "exit $rc"
"$BIN" bench --help >"$TMP/out" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "bench quant" "$TMP/out" && grep -q "bench kernels" "$TMP/out"; check bench_help $? "exit $rc"
