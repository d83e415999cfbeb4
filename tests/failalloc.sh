#!/bin/sh
# failalloc.sh - allocation-failure injection (tests/failalloc.c): for a
# small simulate (generated routing and a .d2t), quantize (one thread and
# several: the workers' scratch is allocated before they start), trace import and
# sweep, fail the Nth allocation of the project's own code for N = 1, 2, ...
# until the run succeeds.  Every failed run must exit 1 with a message that
# says "out of memory" (never a crash, a hang, another status, or a leak
# under the sanitizer build), and the run that succeeds must print what an
# unfailed run prints.  Walks at most FAILALLOC_MAX (default 60; the sweep
# half of it) values of N per command, stepping through the allocation count
# when it is larger (the step is printed), and every N of the first FIRST
# and the last LAST allocations where a walk sets them.
. "${D2_SRCDIR:-.}/tests/lib.sh"
F=$(cd "${D2_BUILDDIR:-.}" && pwd)/tests/d2moe-failalloc
SRC=$(cd "$D2_SRCDIR" && pwd)
MAXN=${FAILALLOC_MAX:-60}
[ -x "$F" ] || { skip "no $F"; done_testing; exit; }
TO=""; command -v timeout >/dev/null 2>&1 && TO="timeout 60"

# a small float32 .npy (64 x 256) for quantize
perl -e 'my $h = "{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (64, 256), }";
         $h .= " " x (118 - length($h)) . "\n"; print "\x93NUMPY\x01\x00", pack("v", length($h)), $h,
         pack("f<*", map { sin($_ * 0.37) * (1 + ($_ % 7)) } 0 .. 64 * 256 - 1)' > "$TMP/w.npy"
cat > "$TMP/s.ini" <<'SPEC'
[sweep]
name = fa
model = llama-moe-3.5b
device = env1
sim.policy = d2moe-v1, edgemoe
sim.requests = 2
sim.prompt = 4
sim.gen = 4
SPEC

# walk NAME OUTPUT-FILTER CMD...: the output (after the filter) of a run
# that succeeds must equal the unfailed run's.
walk() {
    name=$1; filt=$2; shift 2
    rm -rf "$TMP/w"; mkdir -p "$TMP/w"
    ( cd "$TMP/w" && D2_FAIL_ALLOC_COUNT=1 $TO "$@" > "$TMP/ref.out" 2> "$TMP/ref.err" ); st=$?
    total=$(sed -n 's/^failalloc: \([0-9]*\) allocations$/\1/p' "$TMP/ref.err")
    if [ $st -ne 0 ] || [ -z "$total" ]; then ok 1 "$name: unfailed run"; diag "status $st: $(head -3 "$TMP/ref.err")"; return; fi
    eval "$filt" < "$TMP/ref.out" > "$TMP/ref.f"
    step=$(( (total + MAXN - 1) / MAXN )); [ $step -lt 1 ] && step=1
    n=1; bad=0; fails=0
    while [ $n -le $((total + 1)) ]; do
        rm -rf "$TMP/w"; mkdir -p "$TMP/w"
        ( cd "$TMP/w" && D2_FAIL_ALLOC=$n $TO "$@" > "$TMP/out" 2> "$TMP/err" ); st=$?
        if [ $st -eq 1 ] && grep -qi 'out of memory' "$TMP/err" && ! grep -q 'ERROR: \(Address\|Leak\)Sanitizer' "$TMP/err"; then
            fails=$((fails + 1))
        elif [ $st -eq 0 ] && ! grep -q 'Sanitizer' "$TMP/err"; then
            eval "$filt" < "$TMP/out" > "$TMP/got.f"
            # a run whose failed allocation had a fallback (not remembered in a cache, ...) must still be right
            if ! cmp -s "$TMP/ref.f" "$TMP/got.f"; then bad=$((bad + 1)); diag "$name: N=$n: exit 0 with a different output"; fi
        else
            bad=$((bad + 1)); diag "$name: N=$n: status $st: $(grep -v '^failalloc' "$TMP/err" | head -3 | tr '\n' ' ')"
        fi
        [ $bad -ge 5 ] && break
        # every N of the first $FIRST and of the last $LAST allocations (a
        # command's setup and its record in the store), else by the step
        last0=$((total + 1 - ${LAST:-0}))
        if [ $n -lt "${FIRST:-0}" ] || [ $n -ge $last0 ]; then n=$((n + 1))
        elif [ $((n + step)) -gt $last0 ] && [ "${LAST:-0}" -gt 0 ]; then n=$last0
        else n=$((n + step)); fi
    done
    ok $bad "$name: $total allocations, N = 1..$((total + 1)) step $step${FIRST:+, every N below $FIRST}${LAST:+, every N of the last $LAST}: $fails failed cleanly (exit 1, out of memory), the rest gave the unfailed output"
}

nojson_overhead="jq -S 'del(.plan_overhead_s)'"
walk "simulate (generated routing)" "$nojson_overhead" \
    "$F" simulate --model llama-moe-3.5b --device env1 --requests 2 --prompt 4 --gen 4 --json
walk "simulate (.d2t)" "$nojson_overhead" \
    "$F" simulate --model mixtral-8x7b --device env1 --policy edgemoe --requests 2 --prompt 4 --gen 4 --json \
    --trace "$SRC/traces/mixtral-8x7b.r2.p16.d32.s1.d2t"
walk "quantize" "grep -v 's CPU'" "$F" quantize --input "$TMP/w.npy" --format npy --no-baselines -o q.mwq
walk "quantize --threads 2" "grep -v 's CPU'" "$F" quantize --input "$TMP/w.npy" --format npy --no-baselines --threads 2 -o q.mwq
walk "quantize --preset v1k --threads 3" "grep -v 's CPU'" "$F" quantize --input "$TMP/w.npy" --format npy --preset v1k --no-baselines --threads 3 -o q.mwq
walk "trace import" "cat" "$F" trace import --format csv "$SRC/tests/data/trace/good.csv" -o t.d2t
# the run's record in the store: every allocation of the last 80 (a field
# lost there, e.g. the command line, must fail the command, not store an
# incomplete run)
# the printed record: its command line, its parameter and metric counts
LAST=80 walk "simulate --db" "grep -v 'plan_overhead'" \
    sh -c '"$1" simulate --model llama-moe-3.5b --device env1 --requests 2 --prompt 4 --gen 4 --db s.db &&
           sqlite3 s.db "SELECT cmdline LIKE \"%simulate --model%\", (SELECT count(*) FROM params), (SELECT count(*) FROM metrics),
                         (SELECT count(*) FROM inputs) FROM runs"' sh "$F"
MAXN=$(( MAXN / 2 ))  # a sweep run (a database, two points) costs the most: half the walk
# every N of the first 40: the spec's profiles checked before any job (an
# allocation failure there is the machine's, exit 1, not a bad spec's 2)
FIRST=40 walk "sweep" "grep -v 'runs/s\|[0-9.]* s\b'" "$F" sweep "$TMP/s.ini" --db s.db --quiet
done_testing
