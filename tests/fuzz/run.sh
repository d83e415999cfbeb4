#!/bin/sh
# run.sh - build the libFuzzer harnesses (clang -fsanitize=fuzzer,address,
# undefined, libraries instrumented in their own build tree) and run each
# for FUZZ_SECONDS (default 60) from its seed corpus tests/fuzz/corpus/NAME.
# Usage (from a build directory): SRCDIR/tests/fuzz/run.sh [NAME...]
# Prints per harness: executions and findings; exits 1 on any finding (the
# crashing input is kept as FUZZDIR/NAME/crash-*), 77 when clang or its
# fuzzer runtime is missing.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${FUZZ_SECONDS:-60}
CLANG=${CLANG:-}
[ -n "$CLANG" ] || for c in clang clang-18 clang-17 clang-16 clang-15 clang-14; do command -v $c >/dev/null 2>&1 && { CLANG=$c; break; }; done
[ -n "$CLANG" ] || { echo "fuzz: no clang found: skipped"; exit 77; }
dir=${FUZZDIR:-$(pwd)/fuzz}
mkdir -p "$dir/build"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' > "$dir/probe.c"
$CLANG -fsanitize=fuzzer "$dir/probe.c" -o "$dir/probe" 2>/dev/null || { echo "fuzz: $CLANG cannot link -fsanitize=fuzzer (libclang-rt-dev missing?): skipped"; exit 77; }
# libraries with coverage instrumentation and the sanitizers
if [ ! -f "$dir/build/Makefile" ]; then
    (cd "$dir/build" && CC=$CLANG CFLAGS="-g -O1 -fsanitize=fuzzer-no-link $san" "$src/configure" >configure.out 2>&1) ||
        { echo "fuzz: configure failed (see $dir/build/configure.out)"; exit 1; }
fi
(cd "$dir/build" && make -j"$(nproc 2>/dev/null || echo 2)" libd2core.a libd2trace.a libd2quant.a libd2sim.a libd2results.a >make.out 2>&1) ||
    { echo "fuzz: library build failed (see $dir/build/make.out)"; tail -20 "$dir/build/make.out"; exit 1; }
libs=$(cd "$dir/build" && make -s -f Makefile -f - print-d2-libs <<'MK'
print-d2-libs:
	@echo $(D2_LIBS)
MK
)
L="$dir/build/libd2results.a $dir/build/libd2sim.a $dir/build/libd2quant.a $dir/build/libd2trace.a $dir/build/libd2core.a $libs -lpthread"
I="-I$src/src -I$dir/build"
cc_h() { # cc_h NAME SOURCE [DEFINES...]
    name=$1; s=$2; shift 2
    $CLANG -g -O1 -fsanitize=fuzzer $san $I "$@" "$src/tests/fuzz/$s" -o "$dir/$name" $L
}
all="d2t import-mixtral import-vllm import-csv table mwq weights-llama2c weights-safetensors weights-npy ini spec claims"
[ $# -gt 0 ] && all="$*"
status=0
for h in $all; do
    case $h in
    d2t) cc_h $h fuzz_d2t.c ;;
    import-mixtral) cc_h $h fuzz_import.c -DFUZZ_FORMAT='"mixtral-jsonl"' ;;
    import-vllm) cc_h $h fuzz_import.c -DFUZZ_FORMAT='"vllm-jsonl"' ;;
    import-csv) cc_h $h fuzz_import.c -DFUZZ_FORMAT='"csv"' ;;
    table) cc_h $h fuzz_table.c ;;
    mwq) cc_h $h fuzz_mwq.c ;;
    weights-llama2c) cc_h $h fuzz_weights.c -DFUZZ_WFORMAT=WEIGHTS_LLAMA2C ;;
    weights-safetensors) cc_h $h fuzz_weights.c -DFUZZ_WFORMAT=WEIGHTS_SAFETENSORS ;;
    weights-npy) cc_h $h fuzz_weights.c -DFUZZ_WFORMAT=WEIGHTS_NPY ;;
    ini) cc_h $h fuzz_ini.c ;;
    spec) cc_h $h fuzz_spec.c ;;
    claims) cc_h $h fuzz_claims.c ;;
    *) echo "fuzz: unknown harness $h"; status=1; continue ;;
    esac || { echo "fuzz: $h: build failed"; status=1; continue; }
    mkdir -p "$dir/$h.corpus" "$dir/$h.art"
    seeds="$src/tests/fuzz/corpus/$h"
    (cd "$dir" && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
        D2_SRCDIR="$src" ./"$h" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
        -artifact_prefix="$dir/$h.art/" "$dir/$h.corpus" "$seeds" >"$dir/$h.log" 2>&1)
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/$h.log" | grep -o '[0-9]*$')
    [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$dir/$h.log" | tail -1 | tr -d '#')
    found=$(ls "$dir/$h.art" 2>/dev/null | wc -l)
    echo "fuzz $h: ${execs:-?} executions in ${secs}s, $found findings (exit $rc)"
    if [ $rc -ne 0 ] || [ "$found" -gt 0 ]; then
        status=1
        grep -E 'ERROR|SUMMARY|runtime error' "$dir/$h.log" | head -5
        ls "$dir/$h.art"
    fi
done
exit $status
