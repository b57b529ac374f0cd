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

# bench -m end to end on the smallest model: the policies run side by side
# (rows still grouped by policy), the note on the interleaving, and the memory
# fields: per row the context's RSS, the process peak once in the header.
M=${ZIPCACHE_ASSETS:-../shared}/models/stories260K/stories260K.gguf
if [ ! -f "$M" ]; then
    for t in bench_model_runs bench_model_table bench_model_json bench_model_csv; do echo "SKIP $t: stories260K missing"; done
else
    "$BIN" bench -m "$M" -p 16 -n 4 -d 0,40 --kv fp16,zipcache -r 2 -t 1 --json "$TMP/m.json" --csv "$TMP/m.csv" \
        --md "$TMP/m.md" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    check bench_model_runs $rc "exit $rc: $(head -c 400 "$TMP/err")"
    order=$(grep -E '^\| (fp16|zipcache) \|' "$TMP/out" | cut -d'|' -f2-4 | tr -d ' ' | tr '\n' ' ')
    [ "$order" = "fp16|pp16|0 fp16|tg4|0 fp16|tg4|40 fp16|pp16|40 zipcache|pp16|0 zipcache|tg4|0 zipcache|tg4|40 zipcache|pp16|40 " ] &&
        grep -q '^prefill pp16 at depth 40: zipcache / fp16 = ' "$TMP/out" && grep -q '| limited by |' "$TMP/out" &&
        grep -q '| context RSS MiB |$' "$TMP/out" && grep -q '^Repetitions interleaved across policies' "$TMP/out" &&
        grep -q '^Repetitions interleaved across policies' "$TMP/m.md" && grep -q 'process peak RSS [0-9]* MiB' "$TMP/m.md"
    check bench_model_table $? "rows: $order" "$(cat "$TMP/out")"
    /usr/bin/python3 - "$TMP/m.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["interleaved"] is True and d["peak_rss_mb"] > 0, d
rows = d["rows"]
assert [(r["policy"], r["test"], r["depth"]) for r in rows] == [
    (p, t, dep) for p in ("fp16", "zipcache") for t, dep in (("pp16", 0), ("tg4", 0), ("tg4", 40), ("pp16", 40))], rows
assert d["peak_int8_gops"] > 0 and d["peak_fp32_gflops"] > 0, d
for r in rows:
    assert "peak_rss_mb" not in r and r["context_rss_mb"] >= 0 and r["tokens_per_s"] > 0, r
    assert r["floor_tokens_per_s"] > 0 and r["limited_by"] == ("bytes" if r["test"].startswith("tg") else "arithmetic"), r
# prefill at depth 40 is measured on the cache at 40 (restored for every repetition): it then holds 56
kv = {(r["policy"], r["test"], r["depth"]): r["kv_bytes"] for r in rows}
assert kv[("fp16", "pp16", 40)] > kv[("fp16", "tg4", 0)], kv
PY
    check bench_model_json $? "json check failed"
    head -1 "$TMP/m.csv" | grep -qx 'policy,test,depth,tokens_per_s,sd,kv_bytes,bits_per_elem,ratio,floor_tokens_per_s,context_rss_mb'
    check bench_model_csv $? "$(head -1 "$TMP/m.csv")"
fi

# bench attn with KV policies through their attend() and a prefill-sized
# block of queries (70 > 64: the prefill split): a CSV row per kernel with a
# positive time, the policies' cache bytes below fp16's; usage errors exit 2.
"$BIN" bench attn -d 128 --layers 1 --heads 4 --kv-heads 2 --head-dim 32 --kernels fp16,q8_0,kivi --queries 70 \
    --min-time 0 -t 2 --csv "$TMP/a.csv" >"$TMP/out" 2>"$TMP/err"
rc=$?
check bench_attn_policies_runs $rc "exit $rc: $(head -c 400 "$TMP/err")"
/usr/bin/python3 - "$TMP/a.csv" <<'PY'
import csv, sys
rows = {r["kernel"]: r for r in csv.DictReader(open(sys.argv[1]))}
assert sorted(rows) == ["fp16", "kivi", "q8_0"], rows
for r in rows.values():
    assert r["depth"] == "128" and float(r["us_per_layer"]) > 0, r
fp16 = float(rows["fp16"]["cache_bytes_per_layer"])
assert fp16 == 2 * 128 * 2 * 32 * 2, fp16  # K and V, 128 tokens x 2 heads x 32 halves
assert 0 < float(rows["q8_0"]["cache_bytes_per_layer"]) < fp16 and 0 < float(rows["kivi"]["cache_bytes_per_layer"]) < fp16, rows
PY
check bench_attn_policies_csv $? "$(cat "$TMP/a.csv")"
grep -q '70 queries per call' "$TMP/out"; check bench_attn_queries_header $? "$(head -2 "$TMP/out")"
"$BIN" bench attn -d 128 --queries 200 >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q "exceeds depth" "$TMP/err"; check bench_attn_queries_over_depth $? "exit $rc: $(cat "$TMP/err")"
"$BIN" bench attn --kernels fp16,zstd >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q "unknown kernel 'zstd'" "$TMP/err"; check bench_attn_unknown_kernel $? "exit $rc: $(cat "$TMP/err")"
