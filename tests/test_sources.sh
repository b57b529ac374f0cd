#!/usr/bin/env bash
# Rules of the core library's sources that a compiler does not check:
#  - every allocation goes through zc_malloc & co. (src/util/error.c), so
#    that test_alloc_fail's injected failures reach all of them;
#  - the public header declares each exported function with ZC_API.
set -u
cd "$(dirname "$0")/.."
core=$(ls src/*/*.c | grep -v -e '^src/eval/' -e '^src/util/error.c$' -e '^src/kernels/matmul_bench.c$' -e '^src/util/membw')
raw=$(grep -nE '(^|[^_[:alnum:]])(malloc|calloc|realloc|strdup|strndup|posix_memalign|aligned_alloc)\(' $core |
      grep -v 'zc_\(malloc\|calloc\|realloc\|strdup\)' | grep -v '^\S*:\s*\(/\*\|\*\)')
if [ -z "$raw" ]; then echo "PASS core_allocations_through_helpers"; else
    echo "FAIL core_allocations_through_helpers"; echo "$raw" | sed 's/^/  /' >&2; fi
n_core=$(echo "$core" | wc -l)
[ "$n_core" -gt 40 ] && echo "PASS core_file_list" || { echo "FAIL core_file_list"; echo "  $n_core files" >&2; }
undecl=$(grep -nE '^[a-z_ ]*(\*)?zc_[a-z0-9_]+\(' include/zipcache.h | grep -v 'ZC_API' | grep -v typedef)
if [ -z "$undecl" ]; then echo "PASS header_functions_marked_zc_api"; else
    echo "FAIL header_functions_marked_zc_api"; echo "$undecl" | sed 's/^/  /' >&2; fi
