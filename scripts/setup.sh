#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine.
# Idempotent: does nothing when everything is already there.
set -eu
need=()
# pkg-config: tests/test_install.sh builds examples/ against `make install`; lcov: `make coverage`.
for pkg in gcc clang libclang-rt-14-dev make python3 python3-numpy gnuplot-nox pkg-config binutils lcov; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    echo "setup: installing ${need[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
