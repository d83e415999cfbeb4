#!/bin/sh
# quant.sh - `d2moe quantize`, `d2moe mwq inspect` and `d2moe bench kernels`
# from the command line: the real stories260K checkpoint (skipped when
# ../shared is absent), JSON fields, the results store, and bad input (exit
# status 2 and a one-line message naming the file).
. "${D2_SRCDIR:-.}/tests/lib.sh"

STORIES="$D2_SHARED/data/weights/stories260K.bin"
if [ -r "$STORIES" ]; then
    "$D2MOE" quantize --input "$STORIES" --preset v1 -o "$TMP/s.mwq" > "$TMP/out.txt" 2>&1; ok $? "quantize stories260K --preset v1"
    grep -q '^layers.0.w1  172 x 64  group 128' "$TMP/out.txt"; ok $? "text report names layers.0.w1 172 x 64"
    n=$(grep -c '^  mwq-rtn ' "$TMP/out.txt"); [ "$n" -eq $((36 * 3)) ]; ok $? "3 mwq-rtn levels for each of the 36 matrices (got $n rows)"
    "$D2MOE" mwq inspect --verify "$TMP/s.mwq" > "$TMP/insp.txt" 2>&1; ok $? "mwq inspect --verify"
    grep -q '36 tensors, every chunk checksum verified' "$TMP/insp.txt"; ok $? "inspect: 36 tensors verified"
    # w1: 172 x 64, level 1: 172 groups x 4 bytes + 2 planes x 8 bytes x 172 rows = 3440
    grep -A3 '^layers.0.w1 ' "$TMP/insp.txt" | grep -Eq '^ +1 +2 +[0-9]+ +3440 '; ok $? "inspect: w1 level-1 chunk is 3440 bytes (by hand)"
    "$D2MOE" quantize --input "$STORIES" --tensor layers.1.w2 --preset v2 --json > "$TMP/j.json"; ok $? "quantize --json v2 one tensor"
    grep -q '"tensors"' "$TMP/j.json" && grep -q '"snr_db"' "$TMP/j.json" && grep -q '"bpw"' "$TMP/j.json" && grep -q '"method": "msb-slice"' "$TMP/j.json"
    ok $? "json has tensors, snr_db, bpw and the msb-slice baseline"
    n=$(grep -c '"level"' "$TMP/j.json"); [ "$n" -eq 24 ]; ok $? "json: 3 methods x 4 levels, per tensor and in the totals (got $n)"
    # --rows-of 256: w1 (172 x 64 = 11008 weights) read as 43 rows of 256, the k-quant comparison's shape
    "$D2MOE" quantize --input "$STORIES" --tensor layers.0.w1 --preset v1k --rows-of 256 --no-baselines --json > "$TMP/k.json"
    ok $? "quantize --preset v1k --rows-of 256"
    grep -q '"rows": 43' "$TMP/k.json" && grep -q '"cols": 256' "$TMP/k.json" && grep -q '"totals"' "$TMP/k.json"
    ok $? "--rows-of 256: 43 x 256, totals present"
    expect 2 "11008 elements are not a multiple of --rows-of 100" "--rows-of 100: exit 2, names the count" -- \
        "$D2MOE" quantize --input "$STORIES" --tensor layers.0.w1 --rows-of 100
    "$D2MOE" quantize --input "$STORIES" --tensor layers.0.w1 --tensor layers.0.w3 --db "$TMP/r.db" > /dev/null; ok $? "quantize --db"
    "$D2MOE" db info "$TMP/r.db" | grep -Eq 'quant_errors +18'; ok $? "db has 2 tensors x 3 methods x 3 levels = 18 quant_errors rows"
    "$D2MOE" quantize --input "$STORIES" --tensor layers.0.w1 --no-baselines -o "$TMP/a.mwq" > /dev/null &&
        "$D2MOE" quantize --input "$STORIES" --tensor layers.0.w1 --no-baselines -o "$TMP/b.mwq" > /dev/null && cmp -s "$TMP/a.mwq" "$TMP/b.mwq"
    ok $? "same input and options give a byte-identical .mwq"
    head -c 500000 "$STORIES" > "$TMP/trunc.bin"
    expect 2 "trunc.bin: .*truncated" "truncated checkpoint: exit 2, one line" -- "$D2MOE" quantize --input "$TMP/trunc.bin" -o "$TMP/x.mwq"
    [ ! -e "$TMP/x.mwq" ] && [ ! -e "$TMP/x.mwq.tmp" ]; ok $? "no output left behind after a failure"
    expect 2 "no tensor named \"nope\"" "unknown --tensor: exit 2" -- "$D2MOE" quantize --input "$STORIES" --tensor nope
    # calibration of the wrong width for gptq
    printf '\223NUMPY\001\000v\000{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (2, 3), }' > "$TMP/c.npy"
    head -c $((128 - $(wc -c < "$TMP/c.npy") - 1)) /dev/zero | tr '\0' ' ' >> "$TMP/c.npy"; printf '\n' >> "$TMP/c.npy"
    head -c 24 /dev/zero >> "$TMP/c.npy"
    # gptq with a real calibration file: 256 tokens x 64 columns (perl writes little-endian float32)
    if command -v perl > /dev/null 2>&1; then
        perl -e 'my $h = "{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, \x27shape\x27: (256, 64), }";
                 $h .= " " x (118 - length($h)) . "\n"; print "\x93NUMPY\x01\x00", pack("v", length($h)), $h;
                 print pack("f<*", map { sin($_ * 0.37) * (1 + ($_ % 7 == 0) * 3) } 1 .. 256 * 64);' > "$TMP/x.npy"
        "$D2MOE" quantize --input "$STORIES" --tensor layers.0.wq --tensor layers.0.w1 --mode gptq --calib "$TMP/x.npy" --json -o "$TMP/g.mwq" > "$TMP/g.json"
        ok $? "quantize --mode gptq --calib (256 tokens x 64)"
        grep -q '"method": "mwq-gptq"' "$TMP/g.json" && grep -q '"out_rel_err"' "$TMP/g.json"; ok $? "gptq json: method mwq-gptq with out_rel_err"
        "$D2MOE" mwq inspect "$TMP/g.mwq" | grep -q 'mode gptq'; ok $? "inspect shows mode gptq"
    else
        for i in 1 2 3; do skip "perl not found"; done
    fi
    expect 2 "c.npy: shape \\(2, 3\\) does not match" "gptq calib of the wrong width: exit 2" -- "$D2MOE" quantize --input "$STORIES" --tensor layers.0.w1 --mode gptq --calib "$TMP/c.npy"
else
    for i in $(seq 1 23); do skip "stories260K.bin not found under \$D2_SHARED/data/weights"; done
fi
expect 2 "--input FILE is required" "no --input: exit 2" -- "$D2MOE" quantize
expect 2 "unknown option" "bad option: exit 2" -- "$D2MOE" quantize --input x.bin --frobnicate
expect 2 "preset 'v9'" "bad preset: exit 2" -- "$D2MOE" quantize --input x.bin --preset v9
expect 2 "more than 8 bits" "b1 + K - 1 > 8: exit 2" -- "$D2MOE" quantize --input x.bin --base-bits 6 --levels 4
expect 2 "--mode gptq needs --calib" "gptq without calib: exit 2" -- "$D2MOE" quantize --input x.bin --mode gptq
expect 2 "unknown key mwq.colour" "--set unknown key: exit 2" -- "$D2MOE" quantize --input x.bin --set mwq.colour=red
expect 2 "missing.bin: cannot open" "missing input: exit 2" -- "$D2MOE" quantize --input "$TMP/missing.bin"
expect 2 "cannot tell the format" "unknown extension: exit 2" -- "$D2MOE" quantize --input "$TMP/w.gguf"
printf 'hello' > "$TMP/junk.mwq"
expect 2 "junk.mwq: .*truncated" "mwq inspect of junk: exit 2" -- "$D2MOE" mwq inspect "$TMP/junk.mwq"
expect 2 "unknown subcommand" "mwq frob: exit 2" -- "$D2MOE" mwq frob x
# the fuzz seeds of bad containers (m.mwq with one field edited, checksums mended): one line naming file and field
C="$D2_SRCDIR/tests/fuzz/corpus/mwq"
expect 2 "bad-reserved.mwq: header: reserved bytes 56..63 are not zero" "mwq inspect: reserved header bytes set: exit 2" -- \
    "$D2MOE" mwq inspect "$C/bad-reserved.mwq"
expect 2 "bad-count0.mwq: header: tensor count 0 \(offset 12\), but 103 of the index's 103 bytes are left" \
    "mwq inspect: tensor count 0 with a one-entry index: exit 2" -- "$D2MOE" mwq inspect "$C/bad-count0.mwq"
expect 2 "bad-offset.mwq: tensor \"m\" level 1: chunk at offset 18446744073709551360 \(15 bytes\) is outside" \
    "mwq inspect: chunk offset 2^64 - 256 printed unsigned: exit 2" -- "$D2MOE" mwq inspect "$C/bad-offset.mwq"
expect 2 "bad-index-offset.mwq: header: index at offset 9223372036854775808 \(103 bytes" \
    "mwq inspect: index offset 2^63 printed unsigned: exit 2" -- "$D2MOE" mwq inspect "$C/bad-index-offset.mwq"
"$D2MOE" mwq inspect "$C/bad-padding.mwq" > /dev/null 2>&1; ok $? "mwq inspect without --verify reads no padding: exit 0"
expect 2 "bad-padding.mwq: tensor \"m\" level 1: padding byte at offset 79 after the chunk is not zero" \
    "mwq inspect --verify: nonzero padding: exit 2" -- "$D2MOE" mwq inspect --verify "$C/bad-padding.mwq"
"$D2MOE" mwq inspect --verify "$C/m.mwq" > /dev/null; ok $? "mwq inspect --verify of the good seed"
"$D2MOE" bench kernels --help | grep -q 'usage: d2moe bench kernels'; ok $? "bench kernels --help"
"$D2MOE" bench kernels --rows 64 --cols 256 --qrows 8 --qcols 256 --reps 1 --stream-mib 8 --json > "$TMP/b.json"; ok $? "bench kernels runs (tiny sizes)"
grep -q '"stream_gbs"' "$TMP/b.json" && grep -q '"quantize_gbs"' "$TMP/b.json" && grep -q '"dot_gw_s"' "$TMP/b.json" && grep -q '"dot_gbs"' "$TMP/b.json"
ok $? "bench json has stream_gbs, quantize_gbs, dot_gw_s, dot_gbs"
# the k-quant nested presets through the CLI: a 64 x 512 .npy (perl), quantize, container, inspect, bench
if command -v perl > /dev/null 2>&1; then
    perl -e 'my $h = "{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, \x27shape\x27: (64, 512), }";
             $h .= " " x (118 - length($h)) . "\n"; print "\x93NUMPY\x01\x00", pack("v", length($h)), $h;
             print pack("f<*", map { sin($_ * 0.37) * (1 + ($_ % 16 == 0) * 7) } 1 .. 64 * 512);' > "$TMP/k.npy"
    "$D2MOE" quantize --input "$TMP/k.npy" --preset v1k --json -o "$TMP/k.mwq" > "$TMP/k.json"; ok $? "quantize --preset v1k -o"
    grep -q '"method": "kq-mwq"' "$TMP/k.json" && grep -q '"preset": "v1k"' "$TMP/k.json"; ok $? "v1k json: method kq-mwq, preset v1k"
    "$D2MOE" mwq inspect "$TMP/k.mwq" | grep -q 'k-quant layout'; ok $? "inspect shows the k-quant layout"
    printf '\223NUMPY\001\000v\000{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (2, 3), }' > "$TMP/c3.npy"
    head -c $((128 - $(wc -c < "$TMP/c3.npy") - 1)) /dev/zero | tr '\0' ' ' >> "$TMP/c3.npy"; printf '\n' >> "$TMP/c3.npy"
    head -c 24 /dev/zero >> "$TMP/c3.npy"
    expect 2 "cols must be a multiple of 256" "v1k on 3 columns: exit 2" -- "$D2MOE" quantize --input "$TMP/c3.npy" --preset v1k
else
    for i in 1 2 3 4; do skip "perl not found"; done
fi
expect 2 "fixes the bits" "v1k with --levels: exit 2" -- "$D2MOE" quantize --input x.bin --preset v1k --levels 2
# --set mwq.* against a k-quant preset: refused naming the preset (the quantization would stay the preset's while
# the report and the store said the --set), not by its base bits ("8 levels on a 2-bit base")
expect 2 "^d2moe quantize: --preset v1k fixes the bits, levels and super-blocks: not --set mwq.levels=8 " \
    "v1k with --set mwq.levels=8: exit 2, names the preset" -- "$D2MOE" quantize --input x.bin --preset v1k --set mwq.levels=8
expect 2 "^d2moe quantize: --preset v2k fixes the bits, levels and super-blocks: not --set mwq.levels=2 " \
    "v2k with --set mwq.levels=2 (a valid mwq value): exit 2, names the preset" -- "$D2MOE" quantize --input x.bin --preset v2k --set mwq.levels=2
expect 2 "^d2moe quantize: --preset v1k: only --mode rtn, not --set mwq.mode=gptq " "v1k with --set mwq.mode=gptq: exit 2" -- \
    "$D2MOE" quantize --input x.bin --preset v1k --set mwq.mode=gptq
# the mwq keys a k-quant preset does not fix (search_*, gptq_*) steer the baseline rows only: said on stderr, as the
# run stores them (they read as if they had shaped the v1k tensor)
python3 -c 'import struct, math
h = "{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (2, 256), }"
h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
open("'"$TMP"'/ks.npy", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + struct.pack("<512f", *[math.sin(i * 0.37) for i in range(512)]))'
"$D2MOE" quantize --input "$TMP/ks.npy" --preset v1k --set mwq.search_steps=9 --no-baselines > /dev/null 2> "$TMP/ks.err"
[ $? -eq 0 ] && grep -q "note: --set mwq.search_steps=9 applies to the baseline rows only; the v1k tensor uses its own search" "$TMP/ks.err"
ok $? "v1k with --set mwq.search_steps=9: exit 0 and a note that it steers the baselines only"
expect 2 "^d2moe: --preset v1: mwq.levels: 8 levels on a 2-bit base" "v1 with --set mwq.levels=8: the message names the preset" -- \
    "$D2MOE" quantize --input x.bin --preset v1 --set mwq.levels=8
"$D2MOE" bench kernels --preset v2k --rows 64 --cols 256 --qrows 8 --qcols 256 --reps 1 --stream-mib 8 --json > "$TMP/bk.json"; ok $? "bench kernels --preset v2k runs (tiny sizes)"
grep -q '"preset": "v2k"' "$TMP/bk.json" && [ "$(grep -c '"level":' "$TMP/bk.json")" -eq 4 ]; ok $? "v2k bench json: 4 levels"
[ "$(grep -c '"layout":' "$TMP/bk.json")" -eq 2 ] && grep -q '"layout": "q4k-layout"' "$TMP/bk.json" && ! grep -q '"preset_over_layout"' "$TMP/bk.json"
ok $? "v2k bench json: the two reference layouts, no ratio (they compare v1k and v1)"
"$D2MOE" bench kernels --preset v1k --rows 64 --cols 256 --qrows 8 --qcols 256 --reps 1 --stream-mib 8 --json > "$TMP/bk1.json"; ok $? "bench kernels --preset v1k runs (tiny sizes)"
[ "$(grep -c '"preset_over_layout"' "$TMP/bk1.json")" -eq 2 ] && grep -q '"compared_levels": "1..3"' "$TMP/bk1.json"; ok $? "v1k bench json: level 1 / q2k-layout and levels 1..3 / q4k-layout"
[ "$(grep -c '"preset_over_layout"' "$TMP/b.json")" -eq 2 ]; ok $? "v1 bench json (256 columns): both ratios"
"$D2MOE" bench kernels --preset v1k --rows 64 --cols 256 --qrows 8 --qcols 256 --reps 1 --stream-mib 8 --qpath plain --json > "$TMP/bkp.json"
ok $? "bench kernels --qpath plain runs"
grep -q '"quantize_path": "plain"' "$TMP/bkp.json" && grep -q '"quantize_path": "' "$TMP/bk1.json"; ok $? "bench json names the quantizer path"
expect 2 "--qpath avx3: expected auto, plain, avx2 or avx512" "bench kernels --qpath avx3: exit 2" -- "$D2MOE" bench kernels --preset v1k --qpath avx3
expect 2 "--qpath: only with --preset v1k or v2k" "bench kernels --qpath with v1: exit 2" -- "$D2MOE" bench kernels --qpath plain
"$D2MOE" bench kernels --rows 64 --cols 384 --qrows 8 --qcols 384 --reps 1 --stream-mib 8 --json > "$TMP/b384.json" && ! grep -q '"layout":' "$TMP/b384.json"
ok $? "v1 bench on 384 columns (not whole super-blocks): no reference layouts"
# --threads: the same .mwq bytes for 1, 2, 3 and 7 threads (37 rows: no even split), also when thread
# creation fails (D2_FAIL_THREAD, core/par.h's test hook); bad values refused; stored with the run
for v in 0 -1 257 abc 2x ""; do
    expect 2 "--threads $v: expected an integer 1..256" "quantize --threads '$v': exit 2, names the option" -- \
        "$D2MOE" quantize --input x.bin --threads "$v"
done
expect 2 "--threads 0: expected an integer 1..256" "bench kernels --threads 0: exit 2" -- "$D2MOE" bench kernels --threads 0
for o in rows cols qrows qcols reps stream-mib; do
    expect 2 "bench kernels: --$o 0: expected an integer 1..1048576" "bench kernels --$o 0: exit 2, names the option" -- "$D2MOE" bench kernels --$o 0
done
expect 2 "bench kernels: --qcols 100: a multiple of 128" "bench kernels --qcols 100: names --qcols" -- "$D2MOE" bench kernels --qcols 100
if command -v perl > /dev/null 2>&1; then
    perl -e 'my $h = "{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, \x27shape\x27: (37, 768), }";
             $h .= " " x (118 - length($h)) . "\n"; print "\x93NUMPY\x01\x00", pack("v", length($h)), $h;
             print pack("f<*", map { sin($_ * 0.37) * (1 + ($_ % 16 == 5) * 7) } 1 .. 37 * 768);' > "$TMP/t.npy"
    for p in v1 v2 v1k v2k; do
        "$D2MOE" quantize --input "$TMP/t.npy" --preset $p --no-baselines -o "$TMP/t-$p-1.mwq" > /dev/null; r=$?
        for n in 2 3 7; do
            "$D2MOE" quantize --input "$TMP/t.npy" --preset $p --no-baselines --threads $n -o "$TMP/t-$p-$n.mwq" > /dev/null &&
                cmp -s "$TMP/t-$p-1.mwq" "$TMP/t-$p-$n.mwq"; r=$((r + $?))
        done
        ok $r "quantize --preset $p 37 x 768: --threads 2, 3, 7 write the same .mwq bytes as one thread"
        D2_FAIL_THREAD=1 "$D2MOE" quantize --input "$TMP/t.npy" --preset $p --no-baselines --threads 3 -o "$TMP/t-$p-f.mwq" > /dev/null &&
            cmp -s "$TMP/t-$p-1.mwq" "$TMP/t-$p-f.mwq"
        ok $? "quantize --preset $p --threads 3 with D2_FAIL_THREAD=1 (no thread starts): the same bytes"
    done
    "$D2MOE" quantize --input "$TMP/t.npy" --threads 2 --json > "$TMP/t.json" && grep -q '"threads": 2' "$TMP/t.json"
    ok $? "quantize --json: config.threads"
    "$D2MOE" quantize --input "$TMP/t.npy" --threads 2 --no-baselines | grep -q 'on 2 threads in [0-9.]* s wall'
    ok $? "quantize --threads 2: the summary line gives wall time on 2 threads"
    if command -v sqlite3 > /dev/null 2>&1; then
        "$D2MOE" quantize --input "$TMP/t.npy" --threads 3 --no-baselines --db "$TMP/th.db" > /dev/null &&
            [ "$(sqlite3 "$TMP/th.db" "SELECT value FROM params WHERE key = 'quantize.threads'")" = 3 ] &&
            [ "$(sqlite3 "$TMP/th.db" "SELECT count(*) FROM metrics WHERE name = 'quantize_wall_s'")" = 1 ]
        ok $? "quantize --db: param quantize.threads = 3 and metric quantize_wall_s stored"
        # shards swept into fresh stores (no error table) get est_ppl when merged into a store that has one,
        # the values a sweep straight into that store stores
        "$D2MOE" quantize --input "$TMP/t.npy" --db "$TMP/q.db" > /dev/null
        printf '[sweep]\nname = ppl\nmodel = tiny-moe\ndevice = env2\nsim.policy = d2moe-v1, d2moe-v2, hold-int8\nsim.requests = 2\nsim.prompt = 2\nsim.gen = 2\nsim.budget = 1G, 2G\n' > "$TMP/ppl.ini"
        cp "$TMP/q.db" "$TMP/direct.db"; cp "$TMP/q.db" "$TMP/merged.db"
        "$D2MOE" sweep "$TMP/ppl.ini" --db "$TMP/direct.db" --quiet > /dev/null 2>&1 &&
            "$D2MOE" sweep "$TMP/ppl.ini" --db "$TMP/sh0.db" --shard 0/2 --quiet > /dev/null 2>&1 &&
            "$D2MOE" sweep "$TMP/ppl.ini" --db "$TMP/sh1.db" --shard 1/2 --quiet > /dev/null 2>&1 &&
            "$D2MOE" merge "$TMP/merged.db" "$TMP/sh0.db" "$TMP/sh1.db" > "$TMP/merge.out"
        ppl_q="SELECT p.value, quote(m.value) FROM metrics m JOIN params p ON p.run_id = m.run_id AND p.key = 'sweep.job' WHERE m.name = 'est_ppl' ORDER BY 1"
        n=$(sqlite3 "$TMP/direct.db" "SELECT count(*) FROM metrics WHERE name = 'est_ppl' AND value IS NOT NULL")
        [ "$n" -ge 2 ] && [ "$(sqlite3 "$TMP/sh0.db" "SELECT count(*) FROM metrics WHERE name = 'est_ppl' AND value IS NOT NULL")" = 0 ] &&
            [ "$(sqlite3 "$TMP/merged.db" "$ppl_q")" = "$(sqlite3 "$TMP/direct.db" "$ppl_q")" ] &&
            grep -q "est_ppl filled in for $n runs" "$TMP/merge.out"
        ok $? "merge fills est_ppl of shards swept without the error table: the same $n values as a sweep into the store"
    else
        skip "sqlite3 command-line tool not installed"
    fi
else
    for i in $(seq 1 11); do skip "perl not found"; done
fi
for p in v1 v1k; do
    "$D2MOE" bench kernels --preset $p --rows 64 --cols 256 --qrows 8 --qcols 256 --reps 1 --stream-mib 8 --threads 2 --json > "$TMP/bt.json" &&
        grep -q '"threads": 2' "$TMP/bt.json" && grep -q '"quantize_threads_gbs"' "$TMP/bt.json" && grep -q '"quantize_threads_speedup"' "$TMP/bt.json"
    ok $? "bench kernels --preset $p --threads 2 --json: threads, quantize_threads_gbs, quantize_threads_speedup"
done
# input handling of `quantize` (a reviewer's findings): tiny .npy / safetensors files written by python3 struct
# npy DIR NAME "SHAPE" FORTRAN N [EXTRA]: f32 sin() data, N elements, EXTRA zero bytes appended
npy() {
    python3 - "$@" <<'PY'
import math, struct, sys
path, shape, fortran, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
extra = int(sys.argv[5]) if len(sys.argv) > 5 else 0
h = "{'descr': '<f4', 'fortran_order': %s, 'shape': (%s), }" % (fortran, shape)
h += " " * (63 - (10 + len(h)) % 64) + "\n"
with open(path, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode())
    f.write(struct.pack("<%df" % n, *[math.sin((i + 1) * 0.37) for i in range(n)]) + b"\0" * extra)
PY
}
# st FILE NAME:D0xD1[xD2...]... : a safetensors file of F32 tensors (sin() data), in that order
st() {
    python3 - "$@" <<'PY'
import json, math, struct, sys
hdr, blob = {}, b""
for spec in sys.argv[2:]:
    name, shape = spec.rsplit(":", 1)
    dims = [int(d) for d in shape.split("x")]
    n = math.prod(dims)
    b = struct.pack("<%df" % n, *[math.sin((i + 1) * 0.11) for i in range(n)])
    hdr[name] = {"dtype": "F32", "shape": dims, "data_offsets": [len(blob), len(blob) + len(b)]}
    blob += b
j = json.dumps(hdr).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(j)) + j + blob)
PY
}
if command -v python3 > /dev/null 2>&1; then
    npy "$TMP/ok.npy" "4, 256" False 1024
    # 1: tensors of 3 dimensions (MoE experts [n_experts, rows, cols]) are quantized with the leading dimensions
    # flattened into rows, in every format, not skipped
    st "$TMP/mix.safetensors" experts.w1:2x2x512 dense:4x256 norm:256
    "$D2MOE" quantize --input "$TMP/mix.safetensors" --no-baselines -o "$TMP/mix.mwq" > "$TMP/mix.txt" &&
        grep -q '^experts.w1  4 x 512  group 128' "$TMP/mix.txt" && grep -q '^dense  4 x 256  group 128' "$TMP/mix.txt" &&
        ! grep -q '^norm ' "$TMP/mix.txt" && grep -q '^2 tensors' "$TMP/mix.txt" && "$D2MOE" mwq inspect "$TMP/mix.mwq" | grep -q '^experts.w1  4 x 512 '
    ok $? "safetensors experts.w1 [2,2,512] and dense [4,256]: both quantized (experts.w1 as 4 x 512 in the .mwq), 1-D norm not"
    npy "$TMP/e3.npy" "2, 4, 512" False 4096
    "$D2MOE" quantize --input "$TMP/e3.npy" --no-baselines | grep -q '^e3  8 x 512  group 128'; ok $? ".npy (2, 4, 512) alone: quantized as 8 x 512"
    "$D2MOE" quantize --input "$TMP/e3.npy" --rows-of 256 --no-baselines | grep -q '^e3  16 x 256  group 128'; ok $? ".npy (2, 4, 512) --rows-of 256: 16 x 256"
    st "$TMP/vec.safetensors" norm:256
    expect 2 "vec.safetensors: no tensors of 2 or more dimensions \(1 1-D or scalar; name one with --tensor" \
        "safetensors of one 1-D tensor: exit 2, says how to include it" -- "$D2MOE" quantize --input "$TMP/vec.safetensors"
    # 2: a --db that is not a store (here the --input itself) is refused before any work: no output on stdout, no .mwq
    "$D2MOE" quantize --input "$TMP/ok.npy" --db "$TMP/ok.npy" -o "$TMP/dbt.mwq" --json > "$TMP/dbt.out" 2> "$TMP/dbt.err"; rc=$?
    [ "$rc" -eq 2 ] && [ ! -s "$TMP/dbt.out" ] && [ ! -e "$TMP/dbt.mwq" ] && [ ! -e "$TMP/dbt.mwq.tmp" ] &&
        grep -q 'ok.npy: is an input of this command' "$TMP/dbt.err" && [ "$(grep -c '' "$TMP/dbt.err")" -eq 1 ]
    ok $? "quantize --db NOT-A-STORE: exit 2 before the run (status $rc; no JSON printed, no .mwq written)"
    # 3: .npy data past the header's shape, and a fortran_order that is not a Python bool
    npy "$TMP/trail.npy" "4, 256" False 1024 4
    expect 2 "trail.npy: shape needs 4096 data bytes after offset 128, the file has 4100 \(4 trailing bytes\)" \
        ".npy with 4 bytes after the data: exit 2, names the file and the sizes" -- "$D2MOE" quantize --input "$TMP/trail.npy"
    npy "$TMP/fo1.npy" "4, 256" 1 1024
    expect 2 "fo1.npy: header: key 'fortran_order' is '1', expected True or False" \
        ".npy 'fortran_order': 1: exit 2, names the file and the key" -- "$D2MOE" quantize --input "$TMP/fo1.npy"
    npy "$TMP/fot.npy" "4, 256" True 1024
    "$D2MOE" quantize --input "$TMP/fot.npy" --no-baselines --json | grep -q '"rows": 4'; ok $? ".npy 'fortran_order': True still read (4 x 256)"
    # 4: messages that name the file or option: an empty safetensors tensor name with -o (refused before any
    # work, no .mwq), a calibration file of 0 rows (named, not the weights), bench kernels' integer options
    st "$TMP/noname.safetensors" :4x256
    expect 2 "noname.safetensors: tensor 1 of 1 has an empty name; a .mwq \(.*e.mwq\) stores names of 1..255 bytes" \
        "safetensors tensor named \"\" with -o: exit 2, names the file" -- "$D2MOE" quantize --input "$TMP/noname.safetensors" -o "$TMP/e.mwq"
    [ ! -e "$TMP/e.mwq" ] && [ ! -e "$TMP/e.mwq.tmp" ]; ok $? "no .mwq left by the empty name"
    npy "$TMP/calib0.npy" "0, 256" False 0
    expect 2 "calib0.npy: calibration activations have no rows \(shape \(0, 256\)\)" \
        "--mode gptq --calib of 0 rows: exit 2, names the calibration file" -- "$D2MOE" quantize --input "$TMP/ok.npy" --mode gptq --calib "$TMP/calib0.npy"
    # all-zero calibration activations: X^T X = 0 and W X = 0, out_rel_err was 0/0 reported as 0.0 (exit 0)
    npy "$TMP/x0.npy" "16, 256" False 0 16384
    npy "$TMP/w8.npy" "8, 256" False 2048
    for m in gptq rtn; do
        expect 2 "x0.npy: calibration activations are all zero \(shape \(16, 256\)\)" \
            "--mode $m --calib of zeros: exit 2, names the calibration file" -- "$D2MOE" quantize --input "$TMP/w8.npy" --mode $m --calib "$TMP/x0.npy" --json -o "$TMP/x0.mwq"
    done
    [ ! -e "$TMP/x0.mwq" ] && [ ! -e "$TMP/x0.mwq.tmp" ]; ok $? "no .mwq left by the all-zero calibration"
    # 5: --json of all-zero weights: totals' rel_err 0 like every tensor's (was null), "output" present (null without -o)
    python3 -c 'import struct, sys
h = "{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, \x27shape\x27: (4, 256), }"; h += " " * (117 - len(h)) + "\n"
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + bytes(4096))' "$TMP/zero.npy"
    "$D2MOE" quantize --input "$TMP/zero.npy" --json > "$TMP/zero.json" && python3 - "$TMP/zero.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
per = [l["rel_err"] for t in j["tensors"] for l in t["levels"]]
tot = [t["rel_err"] for t in j["totals"]]
assert per and all(e == 0 for e in per), per
assert len(tot) == 9 and all(e == 0 for e in tot), tot
PY
    ok $? "quantize --json of all-zero weights: 9 totals with rel_err 0, as each tensor's (not null)"
    python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); assert "output" in j and j["output"] is None' "$TMP/zero.json"
    ok $? "quantize --json without -o: \"output\": null"
    "$D2MOE" quantize --input "$TMP/zero.npy" --json -o "$TMP/zero.mwq" | grep -q '"output": ".*zero.mwq"'; ok $? "quantize --json -o: output names the .mwq"
    # tiny weights: a result no better than zeros (relative error >= 1) is refused, naming the tensor and level;
    # the same data at v1k (whose scales still hold it) is quantized
    python3 -c 'import math, struct
h = "{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (8, 512), }"; h += " " * (63 - (10 + len(h)) % 64) + "\n"
open("'"$TMP"'/tiny.npy", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + struct.pack("<4096f", *[2e-6 * math.sin(i * 0.7 + 0.3) * (1 + i % 7) for i in range(4096)]))'
    expect 2 'tiny.npy: tensor "tiny": level 1 of v2k has relative error [0-9.]+, no better than zeros' \
        "quantize --preset v2k of weights below 1.4e-5: refused (FP16 scales underflow), exit 2" -- \
        "$D2MOE" quantize --input "$TMP/tiny.npy" --preset v2k --no-baselines -o "$TMP/tiny.mwq"
    [ ! -e "$TMP/tiny.mwq" ] && [ ! -e "$TMP/tiny.mwq.tmp" ]; ok $? "the refused quantization leaves no .mwq"
    "$D2MOE" quantize --input "$TMP/tiny.npy" --preset v1k --no-baselines > /dev/null; ok $? "the same tensor at v1k: quantized"
    # small weights (3e-5 x the pattern): v2k's FP16 scales subnormal and its error several times that of the same
    # tensor scaled up: one warning line naming file, tensor and preset, exit 0; none at v1k (no loss) or at scale 1
    for a in 3e-5 1; do python3 -c 'import math, struct, sys
h = "{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (8, 512), }"; h += " " * (63 - (10 + len(h)) % 64) + "\n"
open(sys.argv[2], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + struct.pack("<4096f", *[float(sys.argv[1]) * math.sin(i * 0.7 + 0.3) * (1 + i % 7) for i in range(4096)]))' \
        $a "$TMP/small-$a.npy"; done
    expect 0 '^d2moe quantize: warning: .*small-3e-5.npy: tensor "small-3e-5": v2k: 16 of 16 super-blocks have FP16 scales below 6.1e-5 \(subnormal\): level [1-4].s relative error [0-9.]+ is [0-9.]+x the [0-9.]+ of the same tensor scaled by 2\^[0-9]+; scale it before quantizing$' \
        "quantize --preset v2k of weights near 3e-5: one warning line, exit 0" -- \
        "$D2MOE" quantize --input "$TMP/small-3e-5.npy" --preset v2k --no-baselines -o "$TMP/small.mwq"
    [ -s "$TMP/small.mwq" ]; ok $? "the warned quantization writes its .mwq"
    [ -z "$("$D2MOE" quantize --input "$TMP/small-3e-5.npy" --preset v1k --no-baselines 2>&1 > /dev/null)" ]; ok $? "the same tensor at v1k: no warning"
    [ -z "$("$D2MOE" quantize --input "$TMP/small-1.npy" --preset v2k --no-baselines 2>&1 > /dev/null)" ]; ok $? "the pattern at scale 1, v2k: no warning"
else
    for i in $(seq 1 21); do skip "python3 not found"; done
fi
done_testing
