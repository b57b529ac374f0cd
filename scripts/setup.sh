#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine.
# Idempotent: does nothing when everything is already there.
set -eu
need=()
for pkg in gcc clang libclang-rt-14-dev make python3 python3-numpy gnuplot-nox libmicrohttpd-dev curl; do
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
# zipcache serve's tests drive it with the official openai client and check the chat
# templates with @huggingface/jinja (tests/js/package-lock.json); they skip without them
if [ ! -d "$(dirname "$0")/../tests/js/node_modules/openai" ]; then
    (cd "$(dirname "$0")/../tests/js" && npm ci --no-audit --no-fund --loglevel=error) ||
        echo "setup: npm ci in tests/js failed: the serve_js tests will be skipped" >&2
fi
