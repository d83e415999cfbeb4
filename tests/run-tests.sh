#!/bin/sh
# run-tests.sh [BUILDDIR] - the README's test command: bootstrap if needed,
# configure into BUILDDIR (default: build), build, run `make check`.  No
# timing is asserted: comparing the simulator with real runs is a measurement
# (`make validate`, docs/host.md), not a test.
set -e
cd "$(dirname "$0")/.."
dir=${1:-build}
[ -x configure ] || ./bootstrap >/dev/null
mkdir -p "$dir"
cd "$dir"
[ -f Makefile ] || ../configure --enable-werror >configure.out
make -j"$(nproc)" >/dev/null
make -j"$(nproc)" check
