#!/bin/sh
# run-tests.sh [BUILDDIR] - the README's test command: bootstrap if needed,
# configure into BUILDDIR (default: build), build, run `make check`, then
# tests/validation.sh alone (it measures time: nothing else may run).
set -e
cd "$(dirname "$0")/.."
dir=${1:-build}
[ -x configure ] || ./bootstrap >/dev/null
mkdir -p "$dir"
cd "$dir"
[ -f Makefile ] || ../configure --enable-werror >configure.out
make -j"$(nproc)" >/dev/null
make -j"$(nproc)" check
# the timing validation (issue 7) alone on the machine, after the rest
make check TESTS=tests/validation.sh
