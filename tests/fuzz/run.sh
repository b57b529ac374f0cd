#!/usr/bin/env bash
# `make fuzz`: runs every libFuzzer target (build-fuzz/fuzz_<name>, built by
# `make fuzz-build`) one after the other, seeded from tests/fuzz/corpus/<target>
# plus the real files of tests/fuzz/seeds_<target>.txt (under ../shared) that
# fit the target's -max_len. The grown corpus persists in build-fuzz/corpus/<target>,
# so a later run goes on from it.
#
#   FUZZ_SECONDS=N   seconds per target (default 60)
#   FUZZ_RUNS=N      executions per target instead (libFuzzer -runs=N; with
#                    FUZZ_SECONDS also set, whichever ends first)
#   FUZZ_TARGETS="gguf json"   only these targets (default: all)
#   FUZZ_MAX_LEN=N   the largest input, for every target (default: per target, below)
#
# Prints a table of executions per target and their total, and appends one line
# per target to build-fuzz/runs.tsv (date, commit, target, executions, seconds,
# result) so the executions of a campaign of several runs can be summed.
# Fails if any target finds a crash, leak, sanitizer report, timeout or OOM; the
# input is left in build-fuzz/findings/<target>/ (minimize it with
# `build-fuzz/fuzz_<target> -minimize_crash=1 -runs=100000 FILE`, fix, and add it to
# tests/fuzz/corpus/<target>/ as a regression: the replay test re-runs it).
set -u
cd "$(dirname "$0")/../.."
ASSETS=${ZIPCACHE_ASSETS:-../shared}

# The largest input per target: a few times its largest seed, so mutations are
# not spent on bytes past what the format's fields can reach, and every
# execution stays fast. Real seeds above it are left to the replay test.
max_len_of() {
    case $1 in
    gguf) echo 16384 ;;          # small seeds: tests/fuzz/make_gguf_seeds.py
    jsonl) echo 16384 ;;
    klbase) echo 131072 ;;       # seed_small.bin is 33 KB
    safetensors) echo 16384 ;;
    tokenizer_json) echo 32768 ;;
    *) echo 8192 ;;              # hfconfig, json, serve_request, tokenize
    esac
}

limits=()
if [ -n "${FUZZ_RUNS:-}" ]; then
    limits+=(-runs="$FUZZ_RUNS")
    [ -n "${FUZZ_SECONDS:-}" ] && limits+=(-max_total_time="$FUZZ_SECONDS")
else
    limits+=(-max_total_time="${FUZZ_SECONDS:-60}")
fi
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit+dirty"

status=0
total=0
table=""
for bin in build-fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=${bin#build-fuzz/fuzz_}
    if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" $name "* ]]; then continue; fi
    maxlen=${FUZZ_MAX_LEN:-$(max_len_of "$name")}
    work=build-fuzz/corpus/$name
    findings=build-fuzz/findings/$name
    # libFuzzer takes corpus directories: the real seed files go into one of their own
    seeddir=build-fuzz/seeds/$name
    rm -rf "$seeddir"
    mkdir -p "$work" "$findings" "$seeddir"
    skipped=0
    [ -f tests/fuzz/seeds_$name.txt ] && while read -r rel; do
        [ -f "$ASSETS/$rel" ] || continue
        if [ "$(stat -c %s "$ASSETS/$rel")" -le "$maxlen" ]; then cp "$ASSETS/$rel" "$seeddir/"; else skipped=$((skipped + 1)); fi
    done < tests/fuzz/seeds_$name.txt
    log=build-fuzz/$name.log
    echo "fuzz $name: ${limits[*]} -max_len=$maxlen, corpus $work ($(ls "$work" | wc -l) inputs)," \
        "seeds tests/fuzz/corpus/$name $seeddir ($skipped real seeds over -max_len left to the replay test)" >&2
    start=$(date +%s)
    "$bin" "${limits[@]}" -max_len="$maxlen" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
        -artifact_prefix="$findings/" "$work" tests/fuzz/corpus/$name "$seeddir" >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}')
    [ -z "$execs" ] && execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    execs=${execs:-0}
    total=$((total + execs))
    if [ $rc -ne 0 ]; then
        result=FAIL
        echo "FAIL fuzz_$name: finding after $execs executions (see $log, $findings)"
        status=1
    else
        result=PASS
        echo "PASS fuzz_$name: $execs executions in ${secs}s, no findings"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$commit" "$name" "$execs" "$secs" "$result" \
        >>build-fuzz/runs.tsv
    table+=$(printf '%-16s %12s %8s %8s %s' "$name" "$execs" "$secs" "$(ls "$work" | wc -l)" "$result")$'\n'
done
printf '\n%-16s %12s %8s %8s %s\n' target executions seconds corpus result
printf '%s' "$table"
printf '%-16s %12s\n' total "$total"
exit $status
