#!/usr/bin/env bash
# tools/compare_llamacpp.sh end to end with a stand-in for llama-bench (llama.cpp is never part of
# the repository): the stand-in answers in llama-bench's JSON with fixed speeds per cache type, the
# real `zipcache bench` runs on a tiny head_dim-64 model, and the table must hold both engines'
# rows and the ratio of the best of each.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${ZIPCACHE_BIN:-$ROOT/build/zipcache}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
check() { # name, condition-command...
    local name=$1; shift
    if "$@"; then echo "PASS $name"; else echo "FAIL $name: $(tail -c 800 "$TMP/out" 2>/dev/null)"; fi
}
if ! "$BIN" synth --shape tiny-llama3 -o "$TMP/m.gguf" -t 1 >"$TMP/out" 2>&1; then
    echo "FAIL compare_llamacpp: synth: $(tail -c 300 "$TMP/out")"
    exit 0
fi
cat >"$TMP/llama-bench" <<'STUB'
#!/usr/bin/env bash
# llama-bench -o json stand-in: 100/90/80 tok/s for f16/q8_0/q4_0, pp and tg, at depth 0
p=0 n=0
while [ $# -gt 0 ]; do case $1 in -p) p=$2 ;; -n) n=$2 ;; esac; shift; done
echo '['
sep=
for t in f16:100 q8_0:90 q4_0:80; do
    for k in pp tg; do
        if [ $k = pp ]; then np=$p ng=0; else np=0 ng=$n; fi
        printf '%s{"n_prompt": %d, "n_gen": %d, "n_depth": 0, "type_k": "%s", "type_v": "%s", "avg_ts": %s, "stddev_ts": 0}\n' \
            "$sep" "$np" "$ng" "${t%%:*}" "${t%%:*}" "${t##*:}"
        sep=,
    done
done
echo ']'
STUB
chmod +x "$TMP/llama-bench"
ZIPCACHE_BIN=$BIN "$ROOT/tools/compare_llamacpp.sh" "$TMP/llama-bench" "$TMP/m.gguf" -t 1 -p 16 -n 4 -d 0 -r 2 \
    -o "$TMP/cmp" >"$TMP/out" 2>&1
rc=$?
check compare_llamacpp_runs test $rc -eq 0 -a -f "$TMP/cmp/llamacpp-2.json" -a -f "$TMP/cmp/zipcache-2.json"
/usr/bin/python3 - "$TMP/cmp" >"$TMP/verdict" 2>&1 <<'PY'
import json, sys, glob
d = sys.argv[1]
md = open(d + "/compare.md").read()
rows = [l for l in md.splitlines() if l.startswith("| pp16 ") or l.startswith("| tg4 ")]
best = {}
for f in glob.glob(d + "/zipcache-*.json"):
    for r in json.load(open(f))["rows"]:
        best.setdefault(r["test"], {}).setdefault(r["policy"], []).append(r["tokens_per_s"])
ok = len(rows) == 2 and "llama.cpp f16" in md and "zipcache zipcache" in md
for line in rows:
    test = line.split("|")[1].strip()
    z = max(sum(v) / len(v) for v in best[test].values())
    want = f"{z / 100:.2f}x"
    cols = line.split("|")
    ok = ok and want in cols[-3] and "vs f16" in cols[-3] and "% of it" in cols[-2]  # ratio, then the floor
print("ok" if ok else "bad: " + md)
PY
check compare_llamacpp_table grep -q '^ok$' "$TMP/verdict"
[ -s "$TMP/verdict" ] && ! grep -q '^ok$' "$TMP/verdict" && cat "$TMP/verdict" >&2
"$ROOT/tools/compare_llamacpp.sh" "$TMP/nope" "$TMP/m.gguf" >"$TMP/out" 2>&1
rc=$?
check compare_llamacpp_refuses_missing_bench test $rc -eq 2
