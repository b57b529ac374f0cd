#!/usr/bin/env bash
# Independent clients of zipcache serve, in Node (tests/js, installed by scripts/setup.sh):
#   test_openai.mjs     the official openai npm package: completions, chat, streaming, errors
#   test_templates.mjs  @huggingface/jinja renders the real chat template strings; the native
#                       formatting (zipcache serve --apply-template) must match
# SKIP when node, the npm modules or the model are missing.
set -u
cd "$(dirname "$0")/.." || exit 1
Z=${ZIPCACHE_BIN:-build/zipcache}
A=${ZIPCACHE_ASSETS:-../shared}
M=$A/models/stories260K/stories260K.gguf
if ! command -v node >/dev/null; then echo "SKIP serve_js: no node (scripts/setup.sh installs nodejs)"; exit 0; fi
for mod in openai @huggingface/jinja; do
    if [ ! -d "tests/js/node_modules/$mod" ]; then
        echo "SKIP serve_js: tests/js/node_modules/$mod missing (scripts/setup.sh runs npm ci there)"; exit 0
    fi
done
if [ ! -f "$M" ]; then echo "SKIP serve_js: $M not found"; exit 0; fi
export ZIPCACHE_BIN=$(cd "$(dirname "$Z")" && pwd)/$(basename "$Z") ZIPCACHE_MODEL=$(cd "$(dirname "$M")" && pwd)/$(basename "$M")
rc=0
timeout 120 node tests/js/test_openai.mjs || rc=1
timeout 300 node tests/js/test_templates.mjs || rc=1
exit $rc
