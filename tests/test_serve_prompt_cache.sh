#!/usr/bin/env bash
# zipcache run --prompt-cache FILE: the first run writes the prompt's cache, the next run with
# the same (or a longer) prompt restores it, prefills only the rest and prints the same text;
# a damaged file or one of another model or cache policy is reported, ignored and replaced.
set -u
cd "$(dirname "$0")/.." || exit 1
Z=${ZIPCACHE_BIN:-build/zipcache}
A=${ZIPCACHE_ASSETS:-../shared}
M=$A/models/stories260K/stories260K.gguf
TS=$A/models/tinystories656K
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; shift; echo "  $*" >&2; }
check() { if eval "$2"; then pass "$1"; else fail "$1" "$3"; fi; }
if [ ! -f "$M" ]; then echo "SKIP prompt_cache: $M not found"; exit 0; fi
P="Once upon a time there was a dog named Max who liked to run in the park"
for kv in fp16 zipcache; do
    args=(-m "$M" -p "$P" -n 24 --temp 0 -c 256 -t 1 --kv "$kv")
    "$Z" run "${args[@]}" --prompt-cache "$T/$kv.bin" >"$T/1.out" 2>"$T/1.err"; rc1=$?
    "$Z" run "${args[@]}" --prompt-cache "$T/$kv.bin" >"$T/2.out" 2>"$T/2.err"; rc2=$?
    check "prompt_cache_${kv}_reused" '[ $rc1 = 0 ] && [ $rc2 = 0 ] && grep -q "saved 26 tokens" "$T/1.err" && grep -q "reused 26 of 27 prompt tokens" "$T/2.err" && cmp -s "$T/1.out" "$T/2.out"' \
        "$(cat "$T/1.err" "$T/2.err" | grep -i "prompt\|error"; diff "$T/1.out" "$T/2.out")"
    "$Z" run "${args[@]/$P/$P and then he}" --prompt-cache "$T/$kv.bin" >"$T/3.out" 2>"$T/3.err"
    check "prompt_cache_${kv}_longer_prompt" 'grep -q "reused 26 of 31" "$T/3.err" && grep -q "saved 30 tokens" "$T/3.err"' "$(grep prompt "$T/3.err")"
done
cp "$T/fp16.bin" "$T/cut.bin"
truncate -s -10 "$T/cut.bin"
"$Z" run -m "$M" -p "$P" -n 4 -c 256 -t 1 --prompt-cache "$T/cut.bin" >/dev/null 2>"$T/e"; rc=$?
check prompt_cache_truncated_ignored '[ $rc = 0 ] && grep -q "not used: .*truncated" "$T/e" && grep -q "saved 26 tokens" "$T/e"' "rc $rc: $(cat "$T/e")"
"$Z" run -m "$M" -p "$P" -n 4 -c 256 -t 1 --kv zipcache --prompt-cache "$T/fp16.bin" >/dev/null 2>"$T/e"; rc=$?
check prompt_cache_other_policy_ignored '[ $rc = 0 ] && grep -q "not used: .*another KV cache" "$T/e"' "rc $rc: $(cat "$T/e")"
if [ -d "$TS" ]; then
    "$Z" run -m "$TS" -p "$P" -n 4 -c 256 -t 1 --prompt-cache "$T/zipcache.bin" >/dev/null 2>"$T/e"; rc=$?
    check prompt_cache_other_model_ignored '[ $rc = 0 ] && grep -q "not used: .*another model" "$T/e"' "rc $rc: $(cat "$T/e")"
else
    echo "SKIP prompt_cache_other_model_ignored: $TS not found"
fi
"$Z" run -m "$M" -p x --prompt-cache "$T/a" --dump-logits "$T/b" >/dev/null 2>"$T/e"; rc=$?
check prompt_cache_usage '[ $rc = 2 ] && [ "$(wc -l <"$T/e")" = 1 ]' "rc $rc: $(cat "$T/e")"
exit 0
