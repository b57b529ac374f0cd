#!/usr/bin/env bash
# `make install` into a temporary prefix, then examples/simple.c built with
# pkg-config against the installed header and library only (no -Isrc, no
# build tree) and run on the small model; the shared library's exports
# are exactly the functions include/zipcache.h declares.
set -u
cd "$(dirname "$0")/.."
BUILD=${ZIPCACHE_BUILD:-build}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; shift; printf '  %s\n' "$@" >&2; }

# The exported symbols against the header's declarations.
if command -v nm >/dev/null; then
    nm -D --defined-only "$BUILD/libzipcache.so" | awk '{print $3}' | sort >"$TMP/all"
    grep '^zc_' "$TMP/all" >"$TMP/exported"
    grep -o '^ZC_API[^(]*(' include/zipcache.h | grep -o 'zc_[a-z0-9_]*($' | tr -d '(' | sort -u >"$TMP/declared"
    extra=$(comm -23 "$TMP/exported" "$TMP/declared" | tr '\n' ' ')
    # Anything else exported must come from an instrumented build's runtime (gcov, sanitizers).
    if ! grep -q '^__\(gcov\|asan\|ubsan\|sanitizer\)' "$TMP/all"; then
        extra="$extra$(grep -v '^zc_' "$TMP/all" | tr '\n' ' ')"
    fi
    missing=$(comm -13 "$TMP/exported" "$TMP/declared" | tr '\n' ' ')
    n=$(wc -l <"$TMP/declared")
    if [ -z "$extra" ] && [ -z "$missing" ] && [ "$n" -gt 30 ]; then
        pass exports_match_header
    else
        fail exports_match_header "exported, not declared: $extra" "declared, not exported: $missing" "declared: $n"
    fi
else
    echo "SKIP exports_match_header: nm not installed"
fi

if ! command -v pkg-config >/dev/null; then
    echo "SKIP install_example: pkg-config not installed (scripts/setup.sh installs it)"
    exit 0
fi
# A sanitizer build's library needs the sanitizer runtime: link with the same flags.
SAN=""
case "$BUILD" in *asan*) SAN="-fsanitize=address,undefined";; esac
if ! make -s BUILD="$BUILD" PREFIX="$TMP/prefix" install >"$TMP/install.log" 2>&1; then
    fail install "$(tail -5 "$TMP/install.log")"
    exit 0
fi
for f in include/zipcache.h lib/libzipcache.a lib/libzipcache.so lib/pkgconfig/zipcache.pc; do
    [ -e "$TMP/prefix/$f" ] || { fail install "missing $f"; exit 0; }
done
pass install
export PKG_CONFIG_PATH="$TMP/prefix/lib/pkgconfig"
ver=$(pkg-config --modversion zipcache)
hdr=$(sed -n 's/^#define ZC_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' include/zipcache.h | paste -sd.)
[ "$ver" = "$hdr" ] && pass pkgconfig_version || fail pkgconfig_version "pkg-config says '$ver', the header '$hdr'"

# Only the installed files: copy the example out of the tree.
cp examples/simple.c "$TMP/simple.c"
if ! (cd "$TMP" && ${CC:-cc} -std=c11 -Wall -Wextra -Werror $SAN simple.c $(pkg-config --cflags --libs zipcache) \
      -o simple) 2>"$TMP/cc.log"; then
    fail example_builds "$(head -20 "$TMP/cc.log")"
    exit 0
fi
pass example_builds
ldd "$TMP/simple" | grep -q "$TMP/prefix/lib/libzipcache.so" 2>/dev/null ||
    LD_LIBRARY_PATH="$TMP/prefix/lib" ldd "$TMP/simple" | grep -q "$TMP/prefix/lib/libzipcache.so" &&
    pass example_uses_installed_library || fail example_uses_installed_library "$(LD_LIBRARY_PATH="$TMP/prefix/lib" ldd "$TMP/simple")"

MODEL="${ZIPCACHE_ASSETS:-../shared}/models/stories260K/stories260K.gguf"
if [ ! -f "$MODEL" ]; then
    echo "SKIP example_runs: $MODEL missing"
    exit 0
fi
if LD_LIBRARY_PATH="$TMP/prefix/lib" "$TMP/simple" "$MODEL" "Once upon a time" 60 >"$TMP/out" 2>"$TMP/err"; then
    # 60 greedy tokens after the prompt with a stream gap of 16: the cache holds
    # prompt + generated tokens (context 256), compressed at least twice, and
    # stores fewer bits than fp16 (at head_dim 8 the parameters weigh: about 1.6x).
    n=$(sed -n 's/^generated \([0-9]*\) tokens$/\1/p' "$TMP/out")
    toks=$(sed -n 's/^kv cache: \([0-9]*\) tokens.*/\1/p' "$TMP/out")
    comp=$(sed -n 's/.* \([0-9]*\) compressions$/\1/p' "$TMP/out")
    ratio=$(sed -n 's/.*, \([0-9.]*\)x vs fp16.*/\1/p' "$TMP/out")
    if [ -n "$n" ] && [ -n "$toks" ] && [ "$n" -ge 1 ] && [ "$toks" -gt "$n" ] && grep -q '^kv policy: zipcache' "$TMP/out" &&
       [ "${comp:-0}" -ge 1 ] && awk -v r="$ratio" 'BEGIN { exit !(r > 1) }'; then
        pass example_runs
    else
        fail example_runs "$(cat "$TMP/out")" "$(cat "$TMP/err")"
    fi
else
    fail example_runs "exit $?" "$(cat "$TMP/err")"
fi
