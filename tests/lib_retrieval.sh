# Shared by tests/test_retrieval_*.sh (sourced, not run): paths, a scratch directory removed on
# exit, and the PASS/FAIL lines tests/run.sh counts.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${ZIPCACHE_BIN:-$ROOT/build/zipcache}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
TOOLS=$ROOT/tools/retrieval
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
check() { # name, command...: PASS when the command succeeds, else FAIL with $WHY
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name" "${WHY:-}"; fi
}

# check_tokens NAME MODEL RECORDS.jsonl: the first record's prompt tokenized by the engine from
# MODEL and by the training code's tokenizer (wordtok.py, with BOS) must be the same ids.
check_tokens() {
    "$PY" -c 'import json,sys; sys.stdout.write(json.loads(open(sys.argv[1]).readline())["prompt"])' "$3" \
        >"$TMP/prompt.txt"
    "$BIN" tokenize -m "$2" -f "$TMP/prompt.txt" >"$TMP/ids.txt" 2>"$TMP/tok.err"
    "$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import wordtok
print("\n".join(map(str, [wordtok.BOS] + wordtok.Tokenizer().encode(open(sys.argv[2]).read()))))' \
        "$TOOLS" "$TMP/prompt.txt" >"$TMP/want.txt"
    WHY="ids differ: $(diff "$TMP/ids.txt" "$TMP/want.txt" | head -3 | tr '\n' ' ') $(tail -c 200 "$TMP/tok.err")"
    check "$1" cmp -s "$TMP/ids.txt" "$TMP/want.txt"
}
