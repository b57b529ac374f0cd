#!/usr/bin/env bash
# Runs the default test suite and prints one closing line "N passed, N failed, N skipped".
# Test programs: $BUILD/tests/test_* (C), tests/*.sh (CLI end-to-end), tests/py/test_*.py
# (numpy references). Each prints PASS/FAIL/SKIP lines; a program that exits
# non-zero without printing FAIL counts as one failure (a crash must never pass).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
export ZIPCACHE_ASSETS=${ZIPCACHE_ASSETS:-$(cd "$ROOT/.." && pwd)/shared}
export ZIPCACHE_BIN="$ROOT/$BUILD/zipcache"
export ZIPCACHE_BUILD="$ROOT/$BUILD"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
LOG=$(mktemp -d)
pass=0 fail=0 skip=0

run_one() { # name, command...
    local name=$1; shift
    local out="$LOG/$(basename "$name").out"
    local t0=$EPOCHREALTIME
    "$@" >"$out" 2>"$out.err"
    local rc=$?
    local p f s
    p=$(grep -c '^PASS ' "$out"); f=$(grep -c '^FAIL ' "$out"); s=$(grep -c '^SKIP ' "$out")
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1; echo "FAIL $name (exit $rc)" >>"$out"
    fi
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    printf '%-40s %3d passed %3d failed %3d skipped  (%.1fs)\n' "$name" "$p" "$f" "$s" \
        "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
    if [ "$f" -ne 0 ]; then
        grep -E '^FAIL ' "$out" | sed 's/^/    /'
        tail -n 30 "$out.err" | sed 's/^/    | /'
    fi
    grep -E '^SKIP ' "$out" | sed 's/^/    /'
}

for t in "$BUILD"/tests/test_*; do
    case "$t" in *.o|*.d) continue;; esac
    [ -x "$t" ] && [ -f "$t" ] || continue
    run_one "$(basename "$t")" "$t"
done
for t in tests/test_*.sh; do
    [ -f "$t" ] && run_one "$(basename "$t")" bash "$t"
done
for t in tests/py/test_*.py; do
    [ -f "$t" ] && run_one "$(basename "$t")" "$PY" "$t"
done
rm -rf "$LOG"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
