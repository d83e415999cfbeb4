#!/bin/sh
# badinput.sh - bad input to every kind of d2moe input, from the robustness
# audit: directories given as files, out-of-range numbers, headers whose
# sizes overflow, a spec of the wrong kind, unwritable outputs.  Each must
# give exit status 2 (1 for a system failure) and one line naming the file or
# option, never a crash or a sanitizer report, and leave no partial output.
. "${D2_SRCDIR:-.}/tests/lib.sh"

T="$D2_SRCDIR/traces/llama-moe-3.5b.r2.p16.d32.s2.d2t"
mkdir "$TMP/adir"

# a directory where a file is expected (trace stats and gen --like used to
# malloc the "size" ftell gives a directory: 2^63 bytes)
expect 2 "adir: not a regular file" "trace stats DIR: exit 2" -- "$D2MOE" trace stats "$TMP/adir"
expect 2 "adir: not a regular file" "trace gen --like DIR: exit 2" -- "$D2MOE" trace gen --model mixtral-8x7b --like "$TMP/adir" -o "$TMP/g.d2t"
expect 2 "adir: not a regular file \(a directory\)" "trace import DIR: exit 2" -- "$D2MOE" trace import --format csv "$TMP/adir" -o "$TMP/i.d2t"
expect 2 "adir: not a regular file \(a directory\)" "show model DIR: exit 2" -- "$D2MOE" show model "$TMP/adir"
expect 2 "adir: not a regular file \(a directory\)" "sweep DIR: exit 2" -- "$D2MOE" sweep "$TMP/adir" --db "$TMP/s.db"
[ ! -e "$TMP/g.d2t" ] && [ ! -e "$TMP/i.d2t" ] && [ ! -e "$TMP/s.db" ]; ok $? "nothing written after those failures"

# numbers out of range
expect 2 "--seed 99999999999999999999999: expected" "trace gen --seed beyond uint64: exit 2 (was silently UINT64_MAX)" -- "$D2MOE" trace gen --model mixtral-8x7b --seed 99999999999999999999999 -o "$TMP/g.d2t"
expect 2 "--seed 99999999999999999999999: expected" "simulate --seed beyond uint64: exit 2" -- "$D2MOE" simulate --model llama-moe-3.5b --device env2 --seed 99999999999999999999999
expect 2 "budget: 1e30 is outside" "simulate --budget 1e30: out of range, not 'expected an integer'" -- "$D2MOE" simulate --model llama-moe-3.5b --device env2 --budget 1e30
expect 2 "arrival_rate: 1e999 is outside" "a double beyond DBL_MAX: out of range" -- "$D2MOE" simulate --model llama-moe-3.5b --device env2 --set sim.arrival_rate=1e999
expect 2 "parameters in all: more than" "show model: keys each in range, sizes overflowing together: exit 2" -- "$D2MOE" show model llama-moe-3.5b --set model.layers=1024 --set model.hidden=1048576 --set model.expert_ffn=4194304 --set model.experts=4096
expect 2 "expert load takes .* hours or more of simulated time" "simulate: a load of 10^10 ns per byte read: refused, not overflowed" -- "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 1 --gen 1 --set device.flash_read_bytes=1 --set device.flash_lat_ns=1e10
expect 2 "non-expert work takes .* hours or more" "simulate: a device of 100 FLOP/s: refused, not overflowed" -- "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 1 --gen 1 --set device.fp16_flops=1e6 --set device.compute_eff=0.0001

# simulate --timeline: written to FILE.tmp, renamed after the run, so a
# failing run leaves no partial CSV
expect 2 "too slow" "simulate --timeline of a failing run: exit 2" -- "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 1 --gen 1 --set device.fp16_flops=1e6 --set device.compute_eff=0.0001 --timeline "$TMP/tl.csv"
[ ! -e "$TMP/tl.csv" ] && [ ! -e "$TMP/tl.csv.tmp" ]; ok $? "no timeline left by the failed run"
"$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --timeline "$TMP/tl.csv" > /dev/null &&
    head -1 "$TMP/tl.csv" | grep -q '^start_ns,end_ns,queue' && [ ! -e "$TMP/tl.csv.tmp" ]
ok $? "a good run writes the timeline (no temporary left)"

# weight files whose header sizes overflow int64
# llama2.c: dim 64, hidden 172, 5111813 layers (a stories260K header with one flipped byte)
printf '\100\000\000\000\254\000\000\000\005\000\116\000\010\000\000\000\004\000\000\000\000\002\000\000\000\002\000\000' > "$TMP/layers.bin"
head -c 4096 /dev/zero >> "$TMP/layers.bin"
expect 2 "layers.bin: .* needs 929123278620 bytes, the file has 4124 \(truncated\)" "llama2.c header of 5M layers: refused at once" -- "$D2MOE" quantize --input "$TMP/layers.bin"
# dim 655424, hidden 13996, 7685 layers, kv 47108: the byte count passes 2^63
printf '\100\000\012\000\254\066\000\000\005\036\000\000\010\000\000\000\004\270\000\000\000\002\000\000\000\002\000\000' > "$TMP/ovf.bin"
expect 2 "ovf.bin: .* \(truncated\)" "llama2.c header whose size overflows int64: exit 2" -- "$D2MOE" quantize --input "$TMP/ovf.bin"
st() { # st FILE JSON: a safetensors file with that header and 64 data bytes
    n=${#2}
    printf "$(printf '\\%03o\\%03o' $((n % 256)) $((n / 256)))\\000\\000\\000\\000\\000\\000" > "$1"
    printf '%s' "$2" >> "$1"
    head -c "${3:-64}" /dev/zero >> "$1"
}
st "$TMP/huge.safetensors" '{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,16]}}'
expect 2 "huge.safetensors: tensor \"a\": shape too large" "safetensors 2^40 x 2^40: exit 2" -- "$D2MOE" quantize --input "$TMP/huge.safetensors"
st "$TMP/zero.safetensors" '{"a":{"dtype":"F32","shape":[4,0],"data_offsets":[0,0]}}' 0
expect 2 "matrix 4 x 0: empty" "safetensors 4 x 0: named 4 x 0" -- "$D2MOE" quantize --input "$TMP/zero.safetensors"
long=$(printf '%0300d' 0)
st "$TMP/long.safetensors" "{\"$long\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}"
expect 2 "name longer than 255 bytes" "safetensors tensor name of 300 bytes: refused, not truncated" -- "$D2MOE" quantize --input "$TMP/long.safetensors"
st "$TMP/ctl.safetensors" "$(printf '{"a":{"dtype":"F32","shape":[2,\034')"
err=$("$D2MOE" quantize --input "$TMP/ctl.safetensors" 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && printf '%s' "$err" | grep -q 'JSON header' && ! printf '%s' "$err" | LC_ALL=C grep -q "$(printf '\034')"
ok $? "a control byte quoted from a JSON header is not printed raw (status $rc)"
# a tensor name with a control character (a JSON escape): refused as the .mwq
# reader refuses it, never printed raw in quantize's report
st "$TMP/esc.safetensors" '{"a\u001b[2Jb":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}' 16
err=$("$D2MOE" quantize --input "$TMP/esc.safetensors" -o "$TMP/esc.mwq" 2>&1); rc=$?
[ $rc -eq 2 ] && printf '%s' "$err" | grep -q 'esc.safetensors: tensor "a?\[2Jb": a control character (byte 0x1b at 1) in its name' &&
    ! printf '%s' "$err" | LC_ALL=C grep -q "$(printf '\033')" && [ ! -e "$TMP/esc.mwq" ]
ok $? "safetensors name with an escape byte: refused naming file and tensor, nothing raw, no .mwq (status $rc: $err)"
h="{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }"
{ printf '\223NUMPY\001\000\200\000'; printf '%-127s\n' "$h"; } > "$TMP/huge.npy"
expect 2 "huge.npy: header: shape too large" ".npy 2^40 x 2^40: exit 2" -- "$D2MOE" quantize --input "$TMP/huge.npy"

# trace output: written to OUT.tmp and renamed, so OUT is whole or absent
"$D2MOE" trace gen --model mixtral-8x7b --set gen.requests=1 --set gen.prefill=4 --set gen.decode=4 -o "$TMP/ok.d2t" > /dev/null
ok $? "trace gen writes a trace"
[ -s "$TMP/ok.d2t" ] && [ ! -e "$TMP/ok.d2t.tmp" ]; ok $? "no temporary left after a good write"
expect 2 "adir: output path exists and is a directory" "trace gen -o DIR: exit 2 before any work (refused, not replaced)" -- "$D2MOE" trace gen --model mixtral-8x7b -o "$TMP/adir"
[ ! -e "$TMP/adir.tmp" ]; ok $? "no temporary left beside a refused output"
cp "$T" "$TMP/keep.d2t"
expect 2 "request 0 .*duplicate|field" "trace import of bad input over an existing trace: exit 2" -- "$D2MOE" trace import --strict --format mixtral-jsonl "$D2_SRCDIR/tests/data/trace/dup.jsonl" -o "$TMP/keep.d2t"
cmp -s "$T" "$TMP/keep.d2t"; ok $? "the existing trace is untouched"

printf 'req,pos,phase,layer,e0,e1,w0,w1\na,0,prefill,0,65535,2,0.6,0.4\n' > "$TMP/id.csv"
expect 2 'id.csv:2: field "experts"\[0\]: id out of range' "csv expert id 65535 (beyond the format's 65535 experts): named at its line" -- "$D2MOE" trace import --strict --format csv "$TMP/id.csv" -o "$TMP/id.d2t"

# sweeps
printf '[sweep]\nname = k\nkind = execute\nmodel = llama-moe-3.5b\ndevice = env2\n' > "$TMP/exec.ini"
expect 2 "kind = execute: only 'simulate' sweeps run here" "sweep of kind execute: exit 2 (used the freed spec)" -- "$D2MOE" sweep "$TMP/exec.ini" --db "$TMP/s.db"
printf '[sweep]\nname = k\nkind =\nmodel = llama-moe-3.5b\ndevice = env2\n' > "$TMP/kempty.ini"
expect 2 'kempty.ini:3: kind "": expected simulate' "a spec with an empty kind: exit 2 naming file:line" -- "$D2MOE" sweep "$TMP/kempty.ini" --db "$TMP/s.db"
printf '[sweep]\nname = k\nkind = simulat\nmodel = llama-moe-3.5b\ndevice = env2\n' > "$TMP/ktypo.ini"
expect 2 'ktypo.ini:3: kind "simulat": expected simulate' "a spec with an unknown kind: exit 2 naming file:line" -- "$D2MOE" sweep "$TMP/ktypo.ini" --db "$TMP/s.db"
printf '[sweep]\nname = b\nmodel = llama-moe-3.5b\ndevice = env2\nsim.requests = 1\nsim.prompt = 2\nsim.gen = 2\nsim.budget = 1,2\n' > "$TMP/fail.ini"
expect 2 "--timelines .*: not a directory" "sweep --timelines to a missing directory: exit 2 before running" -- "$D2MOE" sweep "$TMP/fail.ini" --db "$TMP/s.db" --timelines "$TMP/none/x"
[ ! -e "$TMP/s.db" ]; ok $? "no store created by the refused sweeps"
expect 2 "2 failed.*first failure: sim.budget: 1 bytes is smaller" "sweep --quiet with failing jobs on bad input: exit 2 (as simulate) and says why" -- "$D2MOE" sweep "$TMP/fail.ini" --db "$TMP/s.db" --quiet
expect 2 "adir: is a directory" "sweep --curve DIR: exit 2" -- "$D2MOE" sweep "$TMP/fail.ini" --db "$TMP/s.db" --curve "$TMP/adir"
expect 2 "exec.ini/data: cannot create: Not a directory" "plot --out FILE: the mkdir error, not a later errno" -- "$D2MOE" plot fig3 --db "$TMP/s.db" --out "$TMP/exec.ini"
expect 2 "cannot create .*: No such file or directory" "simulate --timeline into a missing folder: a bad argument" -- "$D2MOE" simulate --model mixtral-8x7b --device env1 --requests 1 --prompt 2 --gen 2 --timeline "$TMP/nodir/t.csv"
expect 2 "expected an integer 0..9200000000000000000" "--seed beyond sim.seed's range: the option named" -- "$D2MOE" simulate --model mixtral-8x7b --device env1 --seed 18446744073709551615

# a second campaign (each case: what happened before its fix)
# capacities of NaN passed both range tests (v < 0, v > 1) and the sum test,
# then gate routing wrote out of bounds: SEGV in rank_levels
S="$D2MOE simulate --model llama-moe-3.5b --device env1 --requests 2 --prompt 4 --gen 4 --budget 500M"
expect 2 'sim.caps: "nan/0.5/0.5": expected 3 capacities 0..1' "simulate --set sim.caps=nan/0.5/0.5: exit 2 (was a crash)" -- $S --set sim.caps=nan/0.5/0.5
printf '[sweep]\nname = cn\nmodel = llama-moe-3.5b\ndevice = env1\nsim.requests = 2\nsim.prompt = 4\nsim.gen = 4\nsim.caps = 0.5/nan/0.5\n' > "$TMP/capsnan.ini"
expect 2 'capsnan.ini:8: sim.caps: "0.5/nan/0.5"' "a spec's sim.caps of NaN: exit 2 at file:line (was a crash)" -- "$D2MOE" sweep "$TMP/capsnan.ini" --db "$TMP/cn.db" --quiet
[ ! -e "$TMP/cn.db" ]; ok $? "no store created by it"
# a llama2.c header with vocab_size INT32_MIN: abs() overflowed (UBSan), and
# the plain build took it for a shared-weights vocabulary of -2^31
printf '\002\000\000\000\002\000\000\000\001\000\000\000\001\000\000\000\001\000\000\000\000\000\000\200\001\000\000\000' > "$TMP/vmin.bin"
head -c 256 /dev/zero >> "$TMP/vmin.bin"
expect 2 "vmin.bin: header field vocab_size \(offset 20\) = -2147483648 is not a plausible size" "llama2.c vocab_size INT32_MIN: refused as implausible" -- "$D2MOE" quantize --input "$TMP/vmin.bin"
# .npy headers numpy would not read, taken as 4 x 256: a shape "(4 256)"
# without its comma, a dict without its closing brace
npyh() { # npyh FILE HEADER: a .npy file of that header and 4096 data bytes
    { printf '\223NUMPY\001\000'; printf "$(printf '\\%03o' $((${#2} + 1)))\\000"; printf '%s\n' "$2"; head -c 4096 /dev/zero; } > "$1"
}
npyh "$TMP/nocomma.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (4 256), }"
expect 2 "nocomma.npy: header: malformed shape" ".npy shape (4 256): exit 2 (was read as 4 x 256)" -- "$D2MOE" quantize --input "$TMP/nocomma.npy"
npyh "$TMP/nobrace.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 256)"
expect 2 "nobrace.npy: header: not a Python dict" ".npy header without its closing brace: exit 2" -- "$D2MOE" quantize --input "$TMP/nobrace.npy"
npyh "$TMP/okh.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 256), }"
"$D2MOE" quantize --input "$TMP/okh.npy" -o "$TMP/okh.mwq" > /dev/null 2>&1; ok $? "the same header written as numpy does: read"
# one dimension: "(1024)" is a parenthesised integer, not a tuple; numpy writes "(1024,)"
npyh "$TMP/notuple.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (1024), }"
expect 2 "notuple.npy: header: key 'shape' is '\(1024\)', not a tuple \(one dimension is written '\(1024,\)'\)" \
    ".npy shape (1024): exit 2 naming the file and the field (was read as 1 x 1024)" -- "$D2MOE" quantize --input "$TMP/notuple.npy"
npyh "$TMP/tuple1.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (1024,), }"
"$D2MOE" quantize --input "$TMP/tuple1.npy" --tensor tuple1 -o "$TMP/tuple1.mwq" > /dev/null 2>&1; ok $? "the same shape written as numpy does, (1024,): read as 1 x 1024"
# an empty output path: the work ran, then "cannot rename .tmp" (exit 1);
# an empty --db was SQLite's temporary store: results lost, exit 0
G1="$D2MOE trace gen --model mixtral-8x7b --set gen.requests=1 --set gen.prefill=2 --set gen.decode=2"
expect 2 "output path is empty" "trace gen -o '': exit 2 before any work" -- $G1 -o ""
expect 2 "output path is empty" "simulate --timeline '': exit 2" -- "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --timeline ""
expect 2 "output path is empty" "simulate --db '': exit 2 (was a temporary store, exit 0)" -- "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --db ""
printf '[sweep]\nname = okp\nmodel = llama-moe-3.5b\ndevice = env2\nsim.requests = 1, 2\nsim.prompt = 2\nsim.gen = 2\n' > "$TMP/okp.ini"
expect 2 "output path is empty" "sweep --db '': exit 2 (was a temporary store, exit 0)" -- "$D2MOE" sweep "$TMP/okp.ini" --db "" --quiet
[ ! -e .tmp ] && [ ! -e "$TMP/.tmp" ]; ok $? "no .tmp left in the current folder"
# --db :memory: was SQLite's in-memory store: the results lost, exit 0; it
# is the file of that name
mkdir "$TMP/mem"
(cd "$TMP/mem" && "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --db :memory: > /dev/null 2>&1 &&
    [ "$(sqlite3 "$TMP/mem/:memory:" 'SELECT count(*) FROM runs')" = 1 ])
ok $? "simulate --db :memory: stores its run in the file ./:memory:"
# and with the URI names this SQLite reads, "file::memory:" was memory again
# and "file:q.db" wrote ./q.db, not the file checked: each is the file named
for n in 'file::memory:' 'file:q.db'; do
    (cd "$TMP/mem" && "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --db "$n" > /dev/null 2>&1 &&
        [ "$(sqlite3 "./$n" 'SELECT count(*) FROM runs')" = 1 ] && [ ! -e q.db ])
    ok $? "simulate --db '$n' stores its run in the file of that name"
done
# shapes beyond the profiles' cells, refused before the generator allocates
# for them (was "out of memory", exit 1)
expect 2 "gen: 65535 layers x 65535 experts: more than 4194304" "trace gen of 65,535 x 65,535: exit 2 naming the shape" -- $G1 --set gen.layers=65535 --set gen.experts=65535 -o "$TMP/big.d2t"
expect 2 "--language English goes with --like" "trace gen --language without --like: a usage error (was ignored)" -- $G1 --language English -o "$TMP/lang.d2t"
# a forward step whose routing alone would take terabytes (was "sim: out of memory", exit 1)
expect 2 "sim.requests x sim.prompt: 4096 requests of 1048576 prompt tokens .* more than the limit" "simulate 4096 requests of 1M tokens: exit 2 naming the keys" -- \
    "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 4096 --prompt 1Mi --gen 1
# a KV cache whose byte count passes int64 (4096 requests of 1M tokens at
# 2 GiB a token): signed overflow (UBSan), a wrapped size in the plain build
expect 2 "the KV cache of 4096 requests of 1 \+ 1048576 tokens .* more than the 1e\+18 bytes" "simulate with a KV cache of 9.2e18 bytes: exit 2, not an overflow" -- \
    "$D2MOE" simulate --model llama-moe-3.5b --device env2 --set model.kv_elems=16777216 --set sim.kv_bits=32 --requests 4096 --prompt 1 --gen 1Mi
# the PPL curve (sweep --curve): read by fgets into 256 bytes, so the tail
# of a long comment was read as a point (here bits 16 = 99, after the real
# one); sscanf's %d read 4294967298 as bits 2; a bit-width given twice
# replaced the first
C="$D2_SRCDIR/experiments/accuracy/llama-moe-wikitext2.csv"
{ cat "$C"; echo "2,99"; } > "$TMP/cdup.csv"
expect 2 "cdup.csv:11: bits 2 given twice \(first at line 4\)" "curve with bits 2 twice: exit 2 (the second replaced the first)" -- "$D2MOE" sweep "$TMP/okp.ini" --db "$TMP/cv.db" --curve "$TMP/cdup.csv" --quiet
{ cat "$C"; echo "4294967298,5"; } > "$TMP/cbig.csv"
expect 2 "cbig.csv:11: expected \"bits,ppl\"" "curve with bits 4294967298: exit 2 (was read as bits 2)" -- "$D2MOE" sweep "$TMP/okp.ini" --db "$TMP/cv.db" --curve "$TMP/cbig.csv" --quiet
{ cat "$C"; printf '# %0300d16,99\n' 0; } > "$TMP/clong.csv"
"$D2MOE" eval --write-synthetic "$TMP/syn.bin" > /dev/null 2>&1
for k in 1 2; do "$D2MOE" quantize --input "$TMP/syn.bin" --tensor layers.0.w1 --db "$TMP/cv$k.db" > /dev/null 2>&1; done
"$D2MOE" sweep "$TMP/okp.ini" --db "$TMP/cv1.db" --quiet > /dev/null 2>&1
"$D2MOE" sweep "$TMP/okp.ini" --db "$TMP/cv2.db" --curve "$TMP/clong.csv" --quiet > /dev/null 2>&1; st=$?
q="SELECT group_concat(value) FROM metrics WHERE name = 'est_ppl'"
e1=$(sqlite3 "$TMP/cv1.db" "$q"); e2=$(sqlite3 "$TMP/cv2.db" "$q")
[ $st -eq 0 ] && [ -n "$e1" ] && [ "$e1" = "$e2" ]; ok $? "a 300-byte comment in the curve is a comment: est_ppl as with the shipped curve ($e1 / $e2)"
# a top-k above an activation table's experts: "stat: bad shape", naming
# neither the file nor the top-k
printf 'Layer,Language,Expert_0\n0,English,1\n' > "$TMP/q1.csv"
expect 2 "q1.csv: top-k 2 is more than the table's 1 experts" "trace stats --top-k 2 of a 1-expert table: names the file and the top-k" -- "$D2MOE" trace stats --top-k 2 "$TMP/q1.csv"
# --experts below the records' top-k was silently raised to top-k
expect 2 "--experts 1: fewer than top-k 2" "trace import --experts 1 of a top-2 CSV: exit 2 (was 2 experts, exit 0)" -- \
    "$D2MOE" trace import --format csv "$D2_SRCDIR/tests/data/trace/good.csv" --experts 1 -o "$TMP/e1.d2t"
[ ! -e "$TMP/e1.d2t" ]; ok $? "no trace written"
# plot --sweep -o OUT with another extension: refused only after OUT.dat was written
"$D2MOE" sweep "$TMP/okp.ini" --db "$TMP/okp.db" --quiet > /dev/null 2>&1; ok $? "a small store to plot"
expect 2 "k.jpg: expected a file name ending in .png or .svg" "plot --sweep -o OUT.jpg: exit 2" -- \
    "$D2MOE" plot --sweep okp --x sim.requests --y makespan_s --db "$TMP/okp.db" -o "$TMP/k.jpg"
[ ! -e "$TMP/k.jpg.dat" ] && [ ! -e "$TMP/k.jpg" ]; ok $? "no data file left beside it"
# an indented line was inih's continuation of the previous key: reported as
# that key "given twice"; leading blanks are now insignificant
printf 'device.page_cache_auto = true\n  device.buffered_io = true\n' > "$TMP/indent.ini"
"$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --readings "$TMP/indent.ini" > /dev/null 2>&1
ok $? "a reading with an indented key: read as a key (was 'device.page_cache_auto: given twice')"
printf '[sweep]\nname = ind\nmodel = llama-moe-3.5b\ndevice = env2\nsim.requests = 1\nsim.prompt = 2\n    sim.requests = 2\n' > "$TMP/indent2.ini"
expect 2 "indent2.ini:7: sim.requests: given twice" "an indented duplicate key: named itself (was the key above it, sim.prompt)" -- "$D2MOE" sweep "$TMP/indent2.ini" --db "$TMP/i.db"
# a generator preset whose model = names no profile: the message named
# neither the preset nor its line
printf '[gen]\nskew = 0.5\nmodel = no-such-model\n' > "$TMP/nomodel.ini"
expect 2 "nomodel.ini:3: model: model 'no-such-model': no such profile" "trace gen --preset naming a missing model: file:line of model" -- \
    "$D2MOE" trace gen --preset "$TMP/nomodel.ini" -o "$TMP/nm.d2t"
expect 2 "nomodel.ini:3: model: model 'no-such-model'" "trace gen --preset --like: the same (the model was dropped: a trace of model -, exit 0)" -- \
    "$D2MOE" trace gen --preset "$TMP/nomodel.ini" --like "$D2_SRCDIR/traces/mixtral-8x7b.r2.p16.d32.s1.d2t" -o "$TMP/nm.d2t"
expect 2 "^d2moe: --set: gen.model: model 'no-such-2'" "trace gen --set gen.model=MISSING: names the option" -- \
    "$D2MOE" trace gen --preset "$TMP/nomodel.ini" --set gen.model=no-such-2 -o "$TMP/nm.d2t"
[ ! -e "$TMP/nm.d2t" ] && [ ! -e "$TMP/nm.d2t.tmp" ]; ok $? "the three refusals wrote no trace"
"$D2MOE" trace gen --preset "$TMP/nomodel.ini" --set gen.model=mixtral-8x7b --set gen.requests=1 --set gen.prefill=2 --set gen.decode=2 -o "$TMP/nm.d2t" > /dev/null
ok $? "--set gen.model=M mends the preset's missing model"
rm -f "$TMP/nm.d2t"
mkdir "$TMP/nmdir"; cp "$TMP/nomodel.ini" "$TMP/nmdir/mixtral-8x7b.ini"; cp "$TMP/nomodel.ini" "$TMP/nmdir/llama-moe-3.5b.ini"
expect 2 "nmdir/mixtral-8x7b.ini:3: model: model 'no-such-model'" "simulate with generated routing from such a preset: its file:line" -- \
    env D2_PRESET_DIR="$TMP/nmdir" "$D2MOE" simulate --model mixtral-8x7b --device env2 --requests 1 --prompt 2 --gen 2
expect 2 "okp.ini:3: model: .*nmdir/llama-moe-3.5b.ini:3: model: model 'no-such-model'" "a sweep with such a preset: the spec's line, then the preset's" -- \
    env D2_PRESET_DIR="$TMP/nmdir" "$D2MOE" sweep "$TMP/okp.ini" --db "$TMP/nm.db" --quiet
# a preset with no model line: the generator takes the simulated model's
# name; when that names no profile, the preset's line of model was blamed
# ("PRESET: model:"), a line the preset does not have
mkdir "$TMP/nolinedir"; printf '[gen]\nskew = 0.5\n' > "$TMP/nolinedir/foo.ini"
sed 's/^name = .*/name = foo/' "$D2_SRCDIR/experiments/models/llama-moe-3.5b.ini" > "$TMP/foo.ini"
expect 2 "^d2moe: the model's name \(preset .*nolinedir/foo.ini names no model\): model 'foo': no such profile" \
    "simulate, a preset without model and a model name with no profile: names the model's name, not a preset line" -- \
    env D2_PRESET_DIR="$TMP/nolinedir" "$D2MOE" simulate --model "$TMP/foo.ini" --device env2 --requests 1 --prompt 2 --gen 2
printf '[sweep]\nname = nl\nmodel = %s\ndevice = env2\nsim.requests = 1\n' "$TMP/foo.ini" > "$TMP/nl.ini"
expect 2 "nl.ini:3: model: the model's name \(preset .*nolinedir/foo.ini names no model\): model 'foo'" \
    "a sweep of that model: the spec's line of model, then the model's name" -- \
    env D2_PRESET_DIR="$TMP/nolinedir" "$D2MOE" sweep "$TMP/nl.ini" --db "$TMP/nm.db" --quiet
[ ! -e "$TMP/nm.d2t" ] && [ ! -e "$TMP/nm.db" ]; ok $? "nothing written by those"
# lax formats, each accepted before: a section header with text after its
# ']' (read as [model]), an empty section name, an empty key (": unknown key")
M="$D2_SRCDIR/experiments/models/llama-moe-3.5b.ini"
{ echo '[model] junk'; grep -v '^\[' "$M"; } > "$TMP/junk.ini"
expect 2 "junk.ini:1: text after the section header's '\]'" "a profile's [model] junk: exit 2 at file:line" -- "$D2MOE" show model "$TMP/junk.ini"
{ echo '[model] ; a comment'; grep -v '^\[' "$M"; } > "$TMP/comm.ini"
"$D2MOE" show model "$TMP/comm.ini" > /dev/null; ok $? "[model] followed by a ; comment: read"
printf '[]\nsim.requests = 1\n' > "$TMP/emptysec.ini"
expect 2 "emptysec.ini:1: empty section name" "a reading's [] : exit 2 at file:line" -- \
    "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --readings "$TMP/emptysec.ini"
printf '[gen]\nmodel = mixtral-8x7b\n= 0.5\n' > "$TMP/emptykey.ini"
expect 2 "emptykey.ini:3: empty key" "a preset's '= 0.5': named an empty key at file:line (was ': unknown key')" -- \
    "$D2MOE" trace gen --preset "$TMP/emptykey.ini" -o "$TMP/ek.d2t"
# sweep: a name that cannot be part of a file name, an empty zip, the spec's own keys twice
printf '[sweep]\nname = a/b\nmodel = llama-moe-3.5b\ndevice = env2\nsim.requests = 1\n' > "$TMP/slash.ini"
expect 2 "slash.ini:2: name \"a/b\": expected a name that can be part of a file name" "sweep name = a/b: exit 2" -- "$D2MOE" sweep "$TMP/slash.ini" --db "$TMP/lax.db"
printf '[sweep]\nname = z\nmodel = llama-moe-3.5b\ndevice = env2\nsim.requests = 1, 2\nsim.prompt = 2, 3\nzip =\n' > "$TMP/zip0.ini"
expect 2 "zip0.ini:7: zip: empty" "sweep zip = (empty): exit 2 (was a crossed grid)" -- "$D2MOE" sweep "$TMP/zip0.ini" --db "$TMP/lax.db"
printf '[sweep]\nname = z\nmodel = llama-moe-3.5b\ndevice = env2\nname = y\n' > "$TMP/name2.ini"
expect 2 "name2.ini:5: name: given twice \(first at line 2\)" "sweep name given twice: exit 2 (the second replaced the first)" -- "$D2MOE" sweep "$TMP/name2.ini" --db "$TMP/lax.db"
[ ! -e "$TMP/lax.db" ] && [ ! -e "$TMP/ek.d2t" ]; ok $? "nothing written by those"
# a word after --version or --help was ignored (exit 0); help CMD WORDS is
# CMD WORDS --help (help trace gen: trace's usage, which a first version of
# the refusal broke), with at most two words after CMD
expect 2 "d2moe --version: unexpected argument 'extra'" "--version extra: exit 2" -- "$D2MOE" --version extra
"$D2MOE" help trace gen 2>&1 | grep -q "^usage: d2moe trace import"; ok $? "help trace gen: trace's usage, exit 0"
"$D2MOE" help db info 2>&1 | grep -q "^usage: d2moe db info FILE"; ok $? "help db info: its usage"
expect 2 "d2moe help: unexpected argument 'y'" "help trace gen x y: exit 2" -- "$D2MOE" help trace gen x y
# figures.ini: a key given twice replaced the first
mkdir "$TMP/dupfig"
printf '[a]\ntitle = a\nsql = a.sql\ngp = a.gp\nsql = b.sql\n' > "$TMP/dupfig/figures.ini"
expect 2 "figures.ini:5: sql: given twice \(first at line 3\)" "figures.ini with a key twice: exit 2 at file:line" -- "$D2MOE" plot list --plots "$TMP/dupfig"
# figures.ini: fig9.gp draws four timelines with four labels; three passed
# the load and broke in gnuplot, a fifth was checked but not drawn
cp -R "$D2_SRCDIR/plots" "$TMP/pl9" && chmod -R u+w "$TMP/pl9"
tl=$(grep -n '^timelines = ' "$TMP/pl9/figures.ini" | cut -d: -f1)
"$D2MOE" plot list --plots "$TMP/pl9" > /dev/null; ok $? "the shipped figures.ini loads (fig9: four timelines, line $tl)"
sed 's/^timelines = .*/timelines = no-mwq mwq-id-order mwq-hebf/' "$D2_SRCDIR/plots/figures.ini" > "$TMP/pl9/figures.ini"
expect 2 "figures.ini:$tl: \[fig9\]: timelines: fig9.gp draws exactly 4, got 3" "fig9 with three timelines: exit 2 at figures.ini:line" -- "$D2MOE" plot list --plots "$TMP/pl9"
sed 's/^timelines = .*/timelines = no-mwq mwq-id-order mwq-hebf optimal extra/' "$D2_SRCDIR/plots/figures.ini" > "$TMP/pl9/figures.ini"
expect 2 "figures.ini:$tl: \[fig9\]: timelines: fig9.gp draws exactly 4, got 5" "fig9 with five timelines: exit 2 at figures.ini:line" -- "$D2MOE" plot fig9 --plots "$TMP/pl9" --db "$TMP/none.db" --out "$TMP/f9"
[ ! -e "$TMP/f9" ] && [ ! -e "$TMP/none.db" ]; ok $? "nothing written by those"
# reproduce.ini: a key given twice replaced the first (sweeps = fig3, then
# sweeps = fig10), and a missing spec was found only after the quantizer's
# runs (4 runs and a .npy written); now the duplicate names its line and
# every listed spec is loaded and checked before any work
mkdir -p "$TMP/rp/experiments"
cp "$D2_SRCDIR/experiments/fig3.ini" "$TMP/rp/experiments/"
printf '[reproduce]\nsweeps = fig3\nsweeps = fig10\n' > "$TMP/rp/experiments/reproduce.ini"
expect 2 "experiments/reproduce.ini:3: sweeps: given twice \(first at line 2\)$" "reproduce.ini: sweeps twice: exit 2 naming the line" -- \
    sh -c "cd '$TMP/rp' && exec '$D2MOE' reproduce --quick --db r.db"
printf '[reproduce]\nsweeps = fig3 fig10\n' > "$TMP/rp/experiments/reproduce.ini"
expect 2 "experiments/reproduce.ini:2: sweeps: .*experiments/fig10.ini: cannot open" "reproduce.ini: a missing sweep spec: exit 2 naming reproduce.ini:line" -- \
    sh -c "cd '$TMP/rp' && exec '$D2MOE' reproduce --quick --db r.db"
printf '[reproduce]\nsweeps = fig3 fig3\n' > "$TMP/rp/experiments/reproduce.ini"
expect 2 "experiments/reproduce.ini:2: sweeps: fig3: listed twice$" "reproduce.ini: a sweep listed twice: exit 2" -- \
    sh -c "cd '$TMP/rp' && exec '$D2MOE' reproduce --quick --db r.db"
printf '[reproduce]\nsweeps = fig3\n[fig9]\nmodel = llama-moe-3.5b\nmodel = mixtral-8x7b\n' > "$TMP/rp/experiments/reproduce.ini"
expect 2 "experiments/reproduce.ini:5: model: given twice \(first at line 4\)$" "reproduce.ini: [fig9] model twice: exit 2" -- \
    sh -c "cd '$TMP/rp' && exec '$D2MOE' reproduce --quick --db r.db"
printf '[reproduce]\nsweeps = fig3\n' > "$TMP/rp/experiments/reproduce.ini"
expect 2 "experiments/reproduce.ini: \[fig9\] needs model, device and at least one strategy$" "reproduce.ini without [fig9]: exit 2 before any work" -- \
    sh -c "cd '$TMP/rp' && exec '$D2MOE' reproduce --quick --db r.db"
[ "$(ls "$TMP/rp")" = experiments ]; ok $? "no store, .npy or other output after those failures ($(ls "$TMP/rp" | tr '\n' ' '))"
# a text value in a store's REAL metric column was drawn as 0 (plot: exit 0,
# .dat row "all 1 0") and exported as a JSON string: refused, naming the run
# and the metric, before any output
if command -v sqlite3 >/dev/null; then
    printf '[sweep]\nname = t\nmodel = llama-moe-3.5b\ndevice = env2\nsim.prompt = 2\nsim.gen = 2\nsim.requests = 1,2\n' > "$TMP/mt.ini"
    "$D2MOE" sweep "$TMP/mt.ini" --db "$TMP/mt.db" --quiet > /dev/null 2>&1; ok $? "a 2-run store"
    rid=$(sqlite3 "$TMP/mt.db" "SELECT min(run_id) FROM metrics WHERE name = 'makespan_s'")
    sqlite3 "$TMP/mt.db" "UPDATE metrics SET value = 'abc' WHERE name = 'makespan_s' AND run_id = $rid"
    expect 2 "mt.db: run $rid: metric makespan_s: \"abc\" is not a number$" "plot --y of a metric holding text: exit 2 naming run and metric" -- \
        "$D2MOE" plot --sweep t --x sim.requests --y makespan_s --db "$TMP/mt.db" -o "$TMP/mt.svg"
    for f in json csv; do
        "$D2MOE" export --format $f --db "$TMP/mt.db" > "$TMP/mt.$f" 2> "$TMP/mt.err"; rc=$?
        [ "$rc" -eq 2 ] && [ ! -s "$TMP/mt.$f" ] && grep -q "mt.db: run $rid: metric makespan_s: \"abc\" is not a number$" "$TMP/mt.err"
        ok $? "export --format $f of a metric holding text: exit 2 ($rc), nothing written"
    done
    expect 2 "mt.db: run $rid: metric makespan_s: \"abc\" is not a number$" "export --sweep t: the same" -- "$D2MOE" export --sweep t --db "$TMP/mt.db"
    "$D2MOE" plot --sweep t --x sim.requests --y throughput_tps --db "$TMP/mt.db" -o "$TMP/mt2.svg" > /dev/null; ok $? "plot --y of another metric: still drawn"
    [ ! -e "$TMP/mt.svg" ] && [ ! -e "$TMP/mt.svg.dat" ] && [ -e "$TMP/mt2.svg.dat" ]; ok $? "no figure or .dat written for the refused plot (the good one wrote its .dat)"
else
    for i in 1 2 3 4 5 6 7; do skip "sqlite3 not installed"; done
fi

# a third campaign: a refused command leaves nothing behind
printf '[sweep]\nname = t\nmodel = llama-moe-3.5b\ndevice = env2\nsim.prompt = 2\nsim.gen = 2\nsim.requests = 1,2\n' > "$TMP/ok3.ini"
"$D2MOE" sweep "$TMP/ok3.ini" --db "$TMP/s3.db" --quiet; ok $? "a small store for the cases below"
# a bad --curve was found after the store was created (0 runs in it)
: > "$TMP/cempty.csv"; mkdir -p "$TMP/cdir"
head -c 10485760 /dev/zero | tr '\0' 1 > "$TMP/cbigline.csv"
expect 2 "nonexist.csv: cannot open" "sweep --curve MISSING: exit 2" -- "$D2MOE" sweep "$TMP/ok3.ini" --db "$TMP/c3.db" --curve "$TMP/nonexist.csv" --quiet
expect 2 "cempty.csv: the curve needs the 16-bit" "sweep --curve EMPTY: exit 2" -- "$D2MOE" sweep "$TMP/ok3.ini" --db "$TMP/c3.db" --curve "$TMP/cempty.csv" --quiet
expect 2 "cdir: is a directory" "sweep --curve DIR: exit 2" -- "$D2MOE" sweep "$TMP/ok3.ini" --db "$TMP/c3.db" --curve "$TMP/cdir" --quiet
expect 2 "cbigline.csv" "sweep --curve with a 10 MB line: exit 2" -- "$D2MOE" sweep "$TMP/ok3.ini" --db "$TMP/c3.db" --curve "$TMP/cbigline.csv" --quiet
[ ! -e "$TMP/c3.db" ]; ok $? "no store created by a refused --curve"
# --db in a missing folder (or under a file): exit 1 "cannot open: unable
# to open database file", where every other output said exit 2
: > "$TMP/afile3"
expect 2 "nodir/x.db: cannot create the store: No such file or directory" "simulate --db nodir/x.db: exit 2" -- "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --db "$TMP/nodir/x.db"
expect 2 "nodir/x.db: cannot create the store: No such file or directory" "sweep --db nodir/x.db: exit 2" -- "$D2MOE" sweep "$TMP/ok3.ini" --db "$TMP/nodir/x.db" --quiet
expect 2 "afile3/x.db: cannot create the store: Not a directory" "sweep --db FILE/x.db: exit 2" -- "$D2MOE" sweep "$TMP/ok3.ini" --db "$TMP/afile3/x.db" --quiet
expect 2 "nodir/x.db: cannot create the store: No such file or directory" "audit --db nodir/x.db: exit 2" -- "$D2MOE" audit --claims "$D2_SRCDIR/experiments/paper-claims.ini" --db "$TMP/nodir/x.db"
[ ! -e "$TMP/nodir" ] && [ -f "$TMP/afile3" ] && [ ! -s "$TMP/afile3" ]; ok $? "nothing created by those"
# merge wrote the inputs before a bad one (here a truncated copy) into OUT
head -c 4096 "$TMP/s3.db" > "$TMP/tr3.db"
sz=$(wc -c < "$TMP/s3.db"); head -c $((sz - 4096)) "$TMP/s3.db" > "$TMP/tr4.db"
expect 2 "tr3.db: not an SQLite database" "merge with a truncated input last: exit 2" -- "$D2MOE" merge "$TMP/mo3.db" "$TMP/s3.db" "$TMP/tr3.db"
[ ! -e "$TMP/mo3.db" ] && [ ! -e "$TMP/mo3.db-wal" ]; ok $? "... and no output created"
expect 2 "tr4.db: " "merge with an input missing its last page: exit 2" -- "$D2MOE" merge "$TMP/mo3.db" "$TMP/s3.db" "$TMP/tr4.db"
[ ! -e "$TMP/mo3.db" ]; ok $? "... and no output created"
cp "$TMP/s3.db" "$TMP/ex3.db"; "$D2MOE" sweep "$TMP/okp.ini" --db "$TMP/in3.db" --quiet > /dev/null 2>&1
sum1=$(cksum < "$TMP/ex3.db")
expect 2 "tr3.db: not an SQLite database" "merge into an existing store, a bad input last: exit 2" -- "$D2MOE" merge "$TMP/ex3.db" "$TMP/in3.db" "$TMP/tr3.db"
[ "$(cksum < "$TMP/ex3.db")" = "$sum1" ]; ok $? "... and the existing output unchanged"
# plot --sweep: two --where no run has together exited 1, one value no run has 2
expect 2 "that match every --where \(no run has all of them together\)" "plot --sweep with two --where matching no run: exit 2" -- \
    "$D2MOE" plot --sweep t --x sim.requests --y makespan_s --db "$TMP/s3.db" --where sim.requests=1 --where sim.requests=2 -o "$TMP/w3.svg"
expect 2 "--where sim.requests=3: no run has it" "plot --sweep with one --where no run has: exit 2" -- \
    "$D2MOE" plot --sweep t --x sim.requests --y makespan_s --db "$TMP/s3.db" --where sim.requests=3 -o "$TMP/w3.svg"
[ ! -e "$TMP/w3.svg" ] && [ ! -e "$TMP/w3.svg.dat" ]; ok $? "... and nothing written"
# a figure's .sql that is empty, only comments, or writes: exit 1 with
# SQLite's "bad parameter or other API misuse" / "attempt to write a
# readonly database"
"$D2MOE" sweep "$D2_SRCDIR/experiments/fig3.ini" --quick --db "$TMP/F3.db" --quiet > /dev/null 2>&1; ok $? "a fig3 store"
cp -R "$D2_SRCDIR/plots" "$TMP/pq" && chmod -R u+w "$TMP/pq"
printf '\n' > "$TMP/pq/fig3.sql"
expect 2 "pq/fig3.sql: no query" "plot with an empty figure .sql: exit 2 naming it" -- "$D2MOE" plot fig3 --db "$TMP/F3.db" --out "$TMP/pqo" --plots "$TMP/pq"
printf -- '-- nothing\n/* here */\n' > "$TMP/pq/fig3.sql"
expect 2 "pq/fig3.sql: no query" "plot with a comment-only figure .sql: exit 2 naming it" -- "$D2MOE" plot fig3 --db "$TMP/F3.db" --out "$TMP/pqo" --plots "$TMP/pq"
printf 'DELETE FROM runs;\n' > "$TMP/pq/fig3.sql"
expect 2 "pq/fig3.sql: not a SELECT \(a figure's query only reads\)" "plot with a figure .sql that writes: exit 2 naming it" -- "$D2MOE" plot fig3 --db "$TMP/F3.db" --out "$TMP/pqo" --plots "$TMP/pq"
[ "$(sqlite3 "$TMP/F3.db" 'SELECT count(*) FROM runs')" -gt 0 ]; ok $? "... and the store keeps its runs"
# validate left --file-size and --work to its calibrate child (exit 1, two
# lines, the store created); execute took a bad --recalibrate or --mwq-dir
# to the runs (exit 1, once per run, the store created).  Refused before
# any measurement or store: exit 2, one line
V="$D2_SRCDIR/experiments/validation.ini"
for fs in 0 abc 1e30; do
    expect 2 "validate: --file-size $fs: expected a positive size" "validate --file-size $fs: exit 2" -- "$D2MOE" validate "$V" --db "$TMP/v3.db" --work "$TMP/vw3" --file-size "$fs"
done
expect 2 "validate: --work .*afile3: not a directory" "validate --work FILE: exit 2" -- "$D2MOE" validate "$V" --db "$TMP/v3.db" --work "$TMP/afile3"
expect 2 "validate: --work .*nodir/w: cannot create it: No such file or directory" "validate --work in a missing folder: exit 2" -- "$D2MOE" validate "$V" --db "$TMP/v3.db" --work "$TMP/nodir/w"
expect 2 "v3.db: cannot create the store" "validate --db in a missing folder: exit 2" -- "$D2MOE" validate "$V" --db "$TMP/nodir/v3.db" --work "$TMP/vw3"
[ ! -e "$TMP/v3.db" ] && [ ! -e "$TMP/vw3" ]; ok $? "no store and no work folder made by those"
expect 2 "execute: --recalibrate .*afile3: not a directory" "execute --recalibrate FILE: exit 2" -- "$D2MOE" execute --spec "$V" --db "$TMP/e3.db" --quick --recalibrate "$TMP/afile3"
expect 2 "execute: --recalibrate: empty path" "execute --recalibrate '': exit 2" -- "$D2MOE" execute --spec "$V" --db "$TMP/e3.db" --quick --recalibrate ''
expect 2 "execute: --mwq-dir .*afile3: not a directory" "execute --spec --mwq-dir FILE: exit 2" -- "$D2MOE" execute --spec "$V" --db "$TMP/e3.db" --quick --mwq-dir "$TMP/afile3"
expect 2 "execute: --mwq-dir .*nodir: No such file or directory" "execute --mwq-dir MISSING: exit 2" -- "$D2MOE" execute --spec "$V" --db "$TMP/e3.db" --quick --mwq-dir "$TMP/nodir"
expect 2 "execute: --mwq-dir .*afile3: not a directory" "execute --mwq-dir FILE (one run): exit 2" -- "$D2MOE" execute --model tiny-moe --device host --requests 1 --prompt 2 --gen 2 --mwq-dir "$TMP/afile3"
expect 2 "e3.db: cannot create the store" "execute --spec --db in a missing folder: exit 2" -- "$D2MOE" execute --spec "$V" --db "$TMP/nodir/e3.db" --quick
expect 2 "x.db: cannot create the store: Not a directory" "execute --db under a file (one run): exit 2" -- "$D2MOE" execute --model tiny-moe --device host --requests 1 --prompt 2 --gen 2 --db "$TMP/afile3/x.db"
[ ! -e "$TMP/e3.db" ] && [ ! -e "$TMP/nodir" ]; ok $? "no store made by those"
done_testing
