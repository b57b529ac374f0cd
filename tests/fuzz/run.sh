#!/usr/bin/env bash
# `make fuzz`: runs every libFuzzer target for FUZZ_SECONDS (default 60) each,
# seeded from tests/fuzz/corpus/<target> plus the real files in ../shared.
# Fails if any target finds a crash; crashing inputs are left in
# build-fuzz/findings/<target>/ (add them to tests/fuzz/corpus/<target>/ with the fix).
set -u
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-60}
ASSETS=${ZIPCACHE_ASSETS:-../shared}
status=0
for bin in build-fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=${bin#build-fuzz/fuzz_}
    work=build-fuzz/corpus/$name
    findings=build-fuzz/findings/$name
    mkdir -p "$work" "$findings"
    # libFuzzer takes corpus directories: the real seed files go into one of their own
    seeddir=build-fuzz/seeds/$name
    mkdir -p "$seeddir"
    seeds=(tests/fuzz/corpus/$name "$seeddir")
    [ -f tests/fuzz/seeds_$name.txt ] && while read -r rel; do
        [ -e "$ASSETS/$rel" ] && cp "$ASSETS/$rel" "$seeddir/"
    done < tests/fuzz/seeds_$name.txt
    log=build-fuzz/$name.log
    echo "fuzz $name: ${SECS}s, seeds: ${seeds[*]}" >&2
    "$bin" -max_total_time="$SECS" -max_len=1048576 -rss_limit_mb=4096 -timeout=20 \
        -artifact_prefix="$findings/" "$work" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}')
    [ -z "$execs" ] && execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    if [ $rc -ne 0 ]; then
        echo "FAIL fuzz_$name: finding after ${execs:-?} executions (see $log, $findings)"
        status=1
    else
        echo "PASS fuzz_$name: ${execs:-?} executions, no findings"
    fi
done
exit $status
