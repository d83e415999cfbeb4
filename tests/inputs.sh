#!/bin/sh
# inputs.sh - issue 13's findings, each with its input: endless inputs end at
# once with exit 2; output paths that are not regular files are refused, not
# replaced; a killed writer leaves no temporary; lines and outputs over their
# caps are refused naming the file; header-legal extreme shapes are handled
# in bounded memory.
. "${D2_SRCDIR:-.}/tests/lib.sh"

# endless inputs: exit 2 naming the file (timeout 10: a hang shows as 124)
for c in "show model /dev/zero" "sweep /dev/zero --db $TMP/z.db" "trace gen --preset /dev/zero -o $TMP/z.d2t" \
         "simulate --model /dev/zero --device env2" "trace import --format csv /dev/zero -o $TMP/z.d2t" \
         "trace import --format mixtral-jsonl /dev/zero -o $TMP/z.d2t" "trace import --format vllm-jsonl /dev/zero -o $TMP/z.d2t" \
         "trace stats /dev/zero" "trace gen --model mixtral-8x7b --like /dev/zero -o $TMP/z.d2t"; do
    # shellcheck disable=SC2086
    expect 2 "/dev/zero: not a regular file \(a character device\)" "$c: exit 2 at once" -- timeout 10 "$D2MOE" $c
done
mkfifo "$TMP/fifo"
expect 2 "fifo: not a regular file \(a FIFO\)" "a FIFO as a profile: exit 2, not a wait for a writer" -- timeout 10 "$D2MOE" show model "$TMP/fifo"
[ ! -e "$TMP/z.d2t" ] && [ ! -e "$TMP/z.db" ]; ok $? "nothing written by those"
# a FIFO as any input: refused at once (opening one for reading waits for a
# writer: every reader opens without waiting and checks the file first)
for c in "trace stats" "trace info" "trace gen -o $TMP/z.d2t --like" "eval --input" "quantize --format npy --input" \
         "quantize --format llama2c --input" "mwq inspect" "audit --claims" "db info" "export --db" \
         "simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --trace" \
         "sweep $D2_SRCDIR/experiments/fig3.ini --quick --db $TMP/z.db --curve"; do
    # shellcheck disable=SC2086
    expect 2 "fifo(:1)?: not a regular file" "$c FIFO: exit 2 at once" -- timeout 10 "$D2MOE" $c "$TMP/fifo"
done
# a FIFO as a reading (a name given by path): --readings, a spec's readings axis, audit
expect 2 "fifo: not a regular file" "simulate --readings FIFO: exit 2 at once" -- \
    timeout 10 "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --readings "$TMP/fifo"
printf '[sweep]\nname = rf\nmodel = llama-moe-3.5b\ndevice = env2\nreadings = %s\n' "$TMP/fifo" > "$TMP/rf.ini"
expect 2 "rf.ini:5: readings: .*fifo: not a regular file" "a spec whose readings axis names a FIFO: exit 2 at file:line" -- \
    timeout 10 "$D2MOE" sweep "$TMP/rf.ini" --db "$TMP/z.db"
expect 2 "fifo: not a regular file" "audit --readings FIFO: exit 2 at once" -- \
    timeout 10 "$D2MOE" audit --claims "$D2_SRCDIR/experiments/paper-claims.ini" --readings "$TMP/fifo"
[ ! -e "$TMP/z.d2t" ] && [ ! -e "$TMP/z.db" ]; ok $? "nothing written by those"
# a FIFO as a generator preset found by model name ($D2_PRESET_DIR): fopen waited for a writer
mkdir "$TMP/pdir"; mkfifo "$TMP/pdir/mixtral-8x7b.ini"
expect 2 "mixtral-8x7b.ini: not a regular file \(a FIFO\)" "trace gen --model M with a FIFO as M's preset: exit 2, not a wait" -- \
    env D2_PRESET_DIR="$TMP/pdir" timeout 10 "$D2MOE" trace gen --model mixtral-8x7b -o "$TMP/z.d2t"
expect 2 "mixtral-8x7b.ini: not a regular file \(a FIFO\)" "simulate with generated routing and a FIFO as the preset: exit 2" -- \
    env D2_PRESET_DIR="$TMP/pdir" timeout 10 "$D2MOE" simulate --model mixtral-8x7b --device env2 --requests 1 --prompt 2 --gen 2

# output paths: FIFO, symlink, device refused with exit 2, never replaced
G="trace gen --model mixtral-8x7b --set gen.requests=1 --set gen.prefill=2 --set gen.decode=2"
# shellcheck disable=SC2086
expect 2 "fifo: output path exists and is a FIFO" "trace gen -o FIFO: exit 2" -- "$D2MOE" $G -o "$TMP/fifo"
[ -p "$TMP/fifo" ] && [ ! -e "$TMP/fifo.tmp" ]; ok $? "the FIFO is still a FIFO, no temporary left"
echo keep > "$TMP/target"; ln -s "$TMP/target" "$TMP/link"
# shellcheck disable=SC2086
expect 2 "link: output path exists and is a symbolic link" "trace gen -o SYMLINK: exit 2" -- "$D2MOE" $G -o "$TMP/link"
[ -L "$TMP/link" ] && [ "$(cat "$TMP/target")" = keep ]; ok $? "the symlink and its target untouched"
# shellcheck disable=SC2086
expect 2 "null: output path exists and is a character device" "trace gen -o /dev/null: exit 2" -- "$D2MOE" $G -o /dev/null
expect 2 "link: output path exists and is a symbolic link" "trace import -o SYMLINK: exit 2" -- \
    "$D2MOE" trace import --format csv "$D2_SRCDIR/tests/data/trace/good.csv" -o "$TMP/link"
ln -s "$TMP/target" "$TMP/ok.d2t.tmp"
# shellcheck disable=SC2086
expect 2 "ok.d2t.tmp: exists and is a symbolic link" "a symlink at OUT.tmp is not written through" -- "$D2MOE" $G -o "$TMP/ok.d2t"
[ "$(cat "$TMP/target")" = keep ]; ok $? "its target untouched"
rm -f "$TMP/ok.d2t.tmp"

# a killed writer: SIGTERM and SIGINT remove OUT.tmp
for sig in TERM INT; do
    "$D2MOE" trace gen --model mixtral-8x7b --set gen.requests=4000 --set gen.prefill=128 --set gen.decode=128 -o "$TMP/kill.d2t" >/dev/null 2>&1 &
    pid=$!
    i=0; while [ ! -e "$TMP/kill.d2t.tmp" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    kill -s $sig $pid; wait $pid; st=$?
    [ $st -ne 0 ] && [ ! -e "$TMP/kill.d2t.tmp" ] && [ ! -e "$TMP/kill.d2t" ]; ok $? "SIG$sig during trace gen: no OUT.tmp left (status $st)"
done

# trace gen output cap
expect 2 "big.d2t: .* bytes of records, more than the limit of 17179869184 bytes" "trace gen of 10^12 tokens: refused before writing" -- \
    "$D2MOE" trace gen --model mixtral-8x7b --set gen.requests=1000000 --set gen.decode=1000000 -o "$TMP/big.d2t"
[ ! -e "$TMP/big.d2t" ] && [ ! -e "$TMP/big.d2t.tmp" ]; ok $? "nothing written"

# a line over the 1 MiB cap: file:line
{ echo 'req,pos,phase,layer,e0,w0'; head -c 1100000 /dev/zero | tr '\0' 'x'; echo; } > "$TMP/long.csv"
expect 2 "long.csv:2: line longer than 1048576 bytes" "a 1.1 MB CSV line: exit 2 at file:line" -- "$D2MOE" trace import --format csv "$TMP/long.csv" -o "$TMP/l.d2t"
{ echo '[model]'; printf 'name = '; head -c 5000000 /dev/zero | tr '\0' 'x'; echo; } > "$TMP/huge.ini"
expect 2 "huge.ini: 5000016 bytes, more than the limit of 4194304 bytes" "a 5 MB profile: exit 2 naming the cap" -- "$D2MOE" show model "$TMP/huge.ini"

# header-legal extreme shapes, handled in memory proportional to the data
printf '{"problem_id":0,"layer":0,"experts":[65534],"gating_probs":[1.0],"token_idx":0}\n{"problem_id":0,"layer":1,"experts":[3],"gating_probs":[1.0],"token_idx":0}\n' > "$TMP/wide.jsonl"
"$D2MOE" trace import --format mixtral-jsonl "$TMP/wide.jsonl" -o "$TMP/wide.d2t" > /dev/null; ok $? "2 layers x 65,535 experts from a two-line JSONL"
# AddressSanitizer reserves terabytes of address space: no ulimit -v there
if "$D2MOE" --version 2>/dev/null | grep -q asan || nm "$D2MOE" 2>/dev/null | grep -q __asan_init; then
    out=$("$D2MOE" trace stats "$TMP/wide.d2t" 2>&1); st=$?
else
    out=$( (ulimit -v 400000; "$D2MOE" trace stats "$TMP/wide.d2t") 2>&1); st=$?
fi
[ $st -eq 0 ] && echo "$out" | grep -q "2 layers x 65535 experts"; ok $? "trace stats of it under a 400 MB limit: exit 0 (transitions counted sparsely; was 34 GB)"
printf '{"problem_id":0,"layer":0,"experts":[1],"gating_probs":[1.0],"token_idx":0}\n{"problem_id":0,"layer":65534,"experts":[3],"gating_probs":[1.0],"token_idx":0}\n' > "$TMP/deep.jsonl"
"$D2MOE" trace import --format mixtral-jsonl "$TMP/deep.jsonl" -o "$TMP/deep.d2t" > /dev/null; ok $? "65,535 layers x 2 records"
out=$("$D2MOE" trace stats "$TMP/deep.d2t" 2>&1); st=$?
[ $st -eq 0 ] && echo "$out" | grep -q "65533 layers without records not shown" && [ "$(echo "$out" | grep -c '^ *[0-9]')" -lt 20 ]
ok $? "trace stats of it: exit 0, empty layers counted, not printed as rows"
echo "$out" | grep -qi 'nan'; [ $? -ne 0 ]; ok $? "trace stats of it: no nan anywhere (means over the layers with records)"
printf '{"problem_id":0,"layer":0,"experts":[1],"gating_probs":[1.0],"token_idx":0}\n{"problem_id":0,"layer":65534,"experts":[65534],"gating_probs":[1.0],"token_idx":0}\n' > "$TMP/square.jsonl"
expect 2 "65535 layers x 65535 experts: more than 4194304 \(layers x experts\) cells" \
    "65,535 layers x 65,535 experts: refused (exit 2), beyond any model profile" -- \
    "$D2MOE" trace import --format mixtral-jsonl "$TMP/square.jsonl" -o "$TMP/square.d2t"
# trace gen --like of those shapes: the fit's pilots are sized by the experts
# and records the target has, not by the header (2 x 65,535 took 23 s; the
# timeouts only catch a return of that: they are guards, not measurements)
timeout 10 "$D2MOE" trace gen --like "$TMP/wide.d2t" --set gen.requests=2 --set gen.prefill=4 --set gen.decode=4 -o "$TMP/wgen.d2t" > /dev/null
ok $? "trace gen --like 2 layers x 65,535 experts: exit 0 within the 10 s guard"
out=$("$D2MOE" trace stats --json "$TMP/wgen.d2t" 2>&1)
echo "$out" | jq -e '.layers[0].share[65534] == 1 and .layers[1].share[3] == 1' > /dev/null
ok $? "the generated trace routes layer 0 to expert 65534 and layer 1 to expert 3 only, like its target"
# (about 1 s on a quiet machine; the pilots of the header's shape drew 2^31 routes a round)
timeout 60 "$D2MOE" trace gen --like "$TMP/deep.d2t" --set gen.requests=1 --set gen.prefill=1 --set gen.decode=1 -o "$TMP/dgen.d2t" > /dev/null
ok $? "trace gen --like 65,535 layers x 2 records: exit 0 within the 60 s guard"
# strict activation tables (Qwen3 layout): the Layer column decides the layer
H='Layer,Language,Expert_0,Expert_1'
printf '%s\n1,English,0.5,1.5\n0,English,1.5,0.5\n' "$H" > "$TMP/order.csv"
out=$("$D2MOE" trace stats --json "$TMP/order.csv" 2>&1); st=$?
[ $st -eq 0 ] && [ "$(echo "$out" | tr -d ' \n' | grep -o '"share":\[[^]]*\]' | tr '\n' ' ')" = '"share":[0.75,0.25] "share":[0.25,0.75] ' ]
ok $? "rows out of order: the Layer column decides (layer 0 = 1.5,0.5)"
printf '%s\n0,English,1,1\n\n\n0,English,1,1\n' "$H" > "$TMP/dup.csv"
expect 2 "dup.csv:5: field \"Layer\": layer 0 again \(first at line 2\)" "duplicate layer: exit 2 at file:line (blank lines counted)" -- "$D2MOE" trace stats "$TMP/dup.csv"
printf '%s\n0,English,1,1\n2,English,1,1\n' "$H" > "$TMP/gap.csv"
expect 2 "gap.csv: field \"Layer\": layer 1 missing" "a gap in the layers: exit 2" -- "$D2MOE" trace stats "$TMP/gap.csv"
printf '%s\n0,English,1,1\n\nx,English,1,1\n' "$H" > "$TMP/nonnum.csv"
expect 2 "nonnum.csv:4: field \"Layer\": expected a layer number" "a non-numeric layer: exit 2 at file:line" -- "$D2MOE" trace stats "$TMP/nonnum.csv"
printf '%s\n0,English,1\n' "$H" > "$TMP/short.csv"
expect 2 "short.csv:2: 3 fields, the header has 4" "a short row: exit 2 naming the field count" -- "$D2MOE" trace stats "$TMP/short.csv"
printf '%s\n0,English,1,1,1\n' "$H" > "$TMP/longrow.csv"
expect 2 "longrow.csv:2: 5 fields, the header has 4" "a long row: exit 2 naming the field count" -- "$D2MOE" trace stats "$TMP/longrow.csv"
# the header is checked column by column (only its first 23 bytes were, and
# a trailing "Total" was read as expert 4; Expert_* columns out of order
# were mapped by position)
printf 'Layer,Language,Expert_0,Expert_1,Expert_2,Expert_3,Total\n0,English,1,0.5,0.3,0.2,2\n' > "$TMP/total.csv"
expect 2 'total.csv:1: header column 7: expected "Expert_4", got "Total"' "a trailing Total column: exit 2 naming file:1 and the column" -- "$D2MOE" trace stats "$TMP/total.csv"
printf 'Layer,Language,Expert_1,Expert_0\n0,English,1,0.5\n' > "$TMP/swapped.csv"
expect 2 'swapped.csv:1: header column 3: expected "Expert_0", got "Expert_1"' "Expert columns out of order: exit 2 naming the column" -- "$D2MOE" trace stats "$TMP/swapped.csv"
printf 'Layer,Language,Expert_0,Expert_1,Expert_2,Expert_3\n0,English,1,0.5,0.3,0.2\n' > "$TMP/four.csv"
"$D2MOE" trace stats --top-k 2 "$TMP/four.csv" | grep -q '1 layers x 4 experts'; ok $? "Expert_0..Expert_3: 4 experts"
printf '%s\n0,English,0,0\n' "$H" > "$TMP/zero.csv"
expect 2 "zero.csv:2: layer 0: values sum to 0" "an all-zero table: exit 2" -- "$D2MOE" trace stats "$TMP/zero.csv"
printf '%s\n0,English,1e308,1e308\n' "$H" > "$TMP/huge.csv"
expect 2 "huge.csv:2: field \"Expert_0\": expected a number 0..1e\+15" "1e308 values: exit 2" -- "$D2MOE" trace stats "$TMP/huge.csv"
printf '{"num_experts": 2, "expert_usage_by_layer": {"1": {"0": 1, "1": 2}, "1": {"0": 3, "1": 4}}}\n' > "$TMP/dupl.json"
expect 2 "dupl.json:1: malformed JSON: duplicate object key" "Switch counts with a layer key twice: exit 2" -- "$D2MOE" trace stats --top-k 1 "$TMP/dupl.json"
printf '{"num_experts": 2, "expert_usage_by_layer": {"1": {"0": 0, "1": 0}}}\n' > "$TMP/zero.json"
expect 2 "zero.json: layer 0: values sum to 0" "all-zero Switch counts: exit 2" -- "$D2MOE" trace stats "$TMP/zero.json"
printf '{"num_experts": 2, "expert_usage_by_layer": {"1": {"0": 1e308, "1": 1e308}}}\n' > "$TMP/huge.json"
expect 2 "huge.json: layer 1 expert 0: expected a count 0..1e\+15" "1e308 Switch counts: exit 2" -- "$D2MOE" trace stats "$TMP/huge.json"
# strict weight files: exit 2 naming the file
st() { # st FILE JSON DATABYTES: a safetensors file with that header
    n=${#2}
    printf "$(printf '\\%03o\\%03o' $((n % 256)) $((n / 256)))\\000\\000\\000\\000\\000\\000" > "$1"
    printf '%s' "$2" >> "$1"
    head -c "$3" /dev/zero >> "$1"
}
st "$TMP/good.safetensors" '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}}' 32
err=$("$D2MOE" quantize --input "$TMP/good.safetensors" 2>&1 >/dev/null); ! echo "$err" | grep -q "good.safetensors:"; ok $? "a well-formed safetensors file passes the header checks ($err)"
st "$TMP/overlap.safetensors" '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}}' 24
expect 2 "overlap.safetensors: data_offsets overlap" "safetensors with overlapping tensors: exit 2" -- "$D2MOE" quantize --input "$TMP/overlap.safetensors"
st "$TMP/hole.safetensors" '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2,2],"data_offsets":[24,40]}}' 40
expect 2 "hole.safetensors: data_offsets leave a hole: bytes \[16, 24\)" "safetensors with a hole: exit 2" -- "$D2MOE" quantize --input "$TMP/hole.safetensors"
st "$TMP/past.safetensors" '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}' 8
expect 2 "past.safetensors: tensor \"a\": data_offsets \[0, 16\] outside the 8 data bytes" "safetensors offsets past the file: exit 2" -- "$D2MOE" quantize --input "$TMP/past.safetensors"
st "$TMP/dupname.safetensors" '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}}' 32
expect 2 "dupname.safetensors: JSON header: duplicate object key" "safetensors tensor named twice: exit 2" -- "$D2MOE" quantize --input "$TMP/dupname.safetensors"
h="{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'descr': '<f2', }"
{ printf '\223NUMPY\001\000'; printf "$(printf '\\%03o' $((${#h} + 1)))\\000"; printf '%s\n' "$h"; head -c 16 /dev/zero; } > "$TMP/dupkey.npy"
expect 2 "dupkey.npy: header: key 'descr' appears more than once" ".npy with a duplicate descr: exit 2 (numpy takes the last)" -- "$D2MOE" quantize --input "$TMP/dupkey.npy"
h="{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), \"descr\": '<f2', }"
{ printf '\223NUMPY\001\000'; printf "$(printf '\\%03o' $((${#h} + 1)))\\000"; printf '%s\n' "$h"; head -c 16 /dev/zero; } > "$TMP/dupkey2.npy"
expect 2 "dupkey2.npy: header: key 'descr' appears more than once" ".npy with descr twice, once double-quoted: exit 2" -- "$D2MOE" quantize --input "$TMP/dupkey2.npy"
h="{\"descr\": '<f4', \"fortran_order\": False, \"shape\": (2, 2), }"
{ printf '\223NUMPY\001\000'; printf "$(printf '\\%03o' $((${#h} + 1)))\\000"; printf '%s\n' "$h"; head -c 16 /dev/zero; } > "$TMP/dq.npy"
"$D2MOE" quantize --input "$TMP/dq.npy" -o "$TMP/dq.mwq" > /dev/null 2>&1 && [ -s "$TMP/dq.mwq" ]
ok $? ".npy with double-quoted keys (legal Python) is read and quantized"
# llama2.c: the smallest legal header (dim 2, hidden 2, 1 layer, 1 head, 1 kv head, vocab 1, seq 1) and its floats, plus 1 MB
printf '\002\000\000\000\002\000\000\000\001\000\000\000\001\000\000\000\001\000\000\000\001\000\000\000\001\000\000\000' > "$TMP/tiny.bin"
head -c $((4 * (2 + 2 + 4 + 4 + 4 + 4 + 2 + 4 + 4 + 4 + 2 + 2))) /dev/zero >> "$TMP/tiny.bin"
err=$("$D2MOE" quantize --input "$TMP/tiny.bin" 2>&1 >/dev/null); ! echo "$err" | grep -q "tiny.bin:"; ok $? "a llama2.c checkpoint of exactly its size passes the header checks ($err)"
cp "$TMP/tiny.bin" "$TMP/trail.bin"; head -c 1048576 /dev/zero >> "$TMP/trail.bin"
expect 2 "trail.bin: llama2.c checkpoint .* ends at byte 180, the file has 1048756 \(1048576 trailing bytes\)" "llama2.c with 1 MB of trailing bytes: exit 2" -- "$D2MOE" quantize --input "$TMP/trail.bin"
# sweeps: a job failing on a damaged trace exits 2 like simulate; a rerun
# replaces its failed row instead of adding another
cp "$D2_SRCDIR/traces/llama-moe-3.5b.r2.p16.d32.s2.d2t" "$TMP/dmg.d2t"; chmod u+w "$TMP/dmg.d2t"
printf 'x' | dd of="$TMP/dmg.d2t" bs=1 seek=300 conv=notrunc 2>/dev/null
printf '[sweep]\nname = dmg\nmodel = llama-moe-3.5b\ndevice = env2\nsim.requests = 1\nsim.prompt = 2\nsim.gen = 2\ntrace = %s\n' "$TMP/dmg.d2t" > "$TMP/dmg.ini"
"$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --trace "$TMP/dmg.d2t" > /dev/null 2>&1; sim=$?
"$D2MOE" sweep "$TMP/dmg.ini" --db "$TMP/dmg.db" --quiet > /dev/null 2>&1; sw=$?
[ $sim -eq 2 ] && [ $sw -eq 2 ]; ok $? "damaged trace: simulate exits $sim, the sweep job exits $sw (both 2)"
"$D2MOE" sweep "$TMP/dmg.ini" --db "$TMP/dmg.db" --quiet > /dev/null 2>&1
"$D2MOE" sweep "$TMP/dmg.ini" --db "$TMP/dmg.db" --quiet > /dev/null 2>&1; sw=$?
n=$(sqlite3 "$TMP/dmg.db" "SELECT count(*) FROM runs WHERE status = 'failed'")
[ $sw -eq 2 ] && [ "$n" = 1 ]; ok $? "after three runs of the sweep: $n failed row (the latest failure replaces the old)"
# fuzzing findings kept as regression cases (tests/data/fuzz; the sanitizer
# build of .ci/run turns undefined behaviour into a failure)
"$D2MOE" trace stats "$D2_SRCDIR/tests/data/fuzz/table-no-transitions.csv" > /dev/null; ok $? "fuzz table finding: stats of an activation table (no transitions: qsort of 0 entries)"

# every other writer: a FIFO or a symlink at its output path is refused with
# exit 2 and left as it was (no temporary beside it)
outs_untouched() { # the FIFO is a FIFO, the symlink a symlink, its target unchanged, no .tmp
    [ -p "$TMP/ofifo$1" ] && [ -L "$TMP/olink$1" ] && [ "$(cat "$TMP/otarget")" = keep ] && [ ! -e "$TMP/ofifo$1.tmp" ] && [ ! -e "$TMP/olink$1.tmp" ]
}
echo keep > "$TMP/otarget"
for ext in .npy .bin .png .svg .csv .html .ini .db .tl; do
    mkfifo "$TMP/ofifo$ext"; ln -s "$TMP/otarget" "$TMP/olink$ext"
done
cat > "$TMP/osw.ini" <<EOT
[sweep]
name = osw
model = llama-moe-3.5b
device = env2
sim.requests = 1, 2
sim.prompt = 2
sim.gen = 2
EOT
"$D2MOE" sweep "$TMP/osw.ini" --db "$TMP/o.db" --quiet > /dev/null 2>&1; ok $? "a small store for the output tests"
"$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --timeline "$TMP/o.tl" > /dev/null; ok $? "a small timeline"
for k in fifo link; do
    f="$TMP/o$k"
    what=$([ $k = fifo ] && echo "a FIFO" || echo "a symbolic link")
    expect 2 "o$k.bin: output path exists and is $what" "eval --write-synthetic $k: exit 2" -- "$D2MOE" eval --write-synthetic "$f.bin"
    expect 2 "o$k.png: output path exists and is $what" "plot --sweep -o $k: exit 2" -- \
        "$D2MOE" plot --sweep osw --x sim.requests --y makespan_s --db "$TMP/o.db" -o "$f.png"
    expect 2 "o$k.svg: output path exists and is $what" "plot timeline -o $k: exit 2" -- "$D2MOE" plot timeline "$TMP/o.tl" -o "$f.svg"
    expect 2 "o$k.csv: output path exists and is $what" "export -o $k: exit 2" -- "$D2MOE" export --db "$TMP/o.db" -o "$f.csv"
    expect 2 "o$k.html: output path exists and is $what" "report -o $k: exit 2" -- "$D2MOE" report --db "$TMP/o.db" -o "$f.html"
    expect 2 "o$k.ini: output path exists and is $what" "calibrate -o $k: exit 2 before measuring" -- timeout 10 "$D2MOE" calibrate -o "$f.ini"
    expect 2 "o$k.db: output path exists and is $what" "simulate --db $k: exit 2" -- \
        "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --db "$f.db"
    expect 2 "o$k.db: output path exists and is $what" "sweep --db $k: exit 2" -- "$D2MOE" sweep "$TMP/osw.ini" --db "$f.db" --quiet
    expect 2 "o$k.db: output path exists and is $what" "merge into $k: exit 2" -- "$D2MOE" merge "$f.db" "$TMP/o.db"
    expect 2 "o$k.tl: output path exists and is $what" "simulate --timeline $k: exit 2" -- \
        "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --timeline "$f.tl"
    expect 2 "o$k.tl: output path exists and is $what" "execute --real-timeline $k: exit 2 before running" -- \
        "$D2MOE" execute --model tiny-moe --device env2 --real-timeline "$f.tl"
    expect 2 "o$k.npy: output path exists and is $what" "quantize -o $k: exit 2" -- \
        "$D2MOE" quantize --input "$TMP/good.safetensors" -o "$f.npy"
done
outs_untouched .npy && outs_untouched .bin && outs_untouched .png && outs_untouched .svg && outs_untouched .csv && \
    outs_untouched .html && outs_untouched .ini && outs_untouched .db && outs_untouched .tl
ok $? "every FIFO and symlink untouched, no temporary left"
expect 2 "ofifo.db: not a regular file" "plot --db FIFO (reading a store): exit 2, not a wait for a writer" -- \
    timeout 10 "$D2MOE" plot --sweep osw --x sim.requests --y makespan_s --db "$TMP/ofifo.db" -o "$TMP/x.png"
expect 2 "ofifo.tl: not a regular file \(a FIFO\)" "plot timeline of a FIFO: exit 2" -- timeout 10 "$D2MOE" plot timeline "$TMP/ofifo.tl" -o "$TMP/x.png"
# a figure of figures.ini (plot FIGURE --out DIR): the PNG, SVG and data file
mkdir -p "$TMP/pl" "$TMP/po/data"
cp "$D2_SRCDIR/plots/style.gp" "$TMP/pl/"
printf '[tiny]\ntitle = tiny\nsql = tiny.sql\ngp = tiny.gp\n' > "$TMP/pl/figures.ini"
echo "SELECT 'a', 1, 2 UNION ALL SELECT 'a', 2, 3;" > "$TMP/pl/tiny.sql"
printf "load plotdir.'/style.gp'\nplot for [i = 0:nseries - 1] datafile index i using 2:3 with lines title word(titles, i + 1)\n" > "$TMP/pl/tiny.gp"
"$D2MOE" plot tiny --plots "$TMP/pl" --db "$TMP/o.db" --out "$TMP/po" > /dev/null && [ -s "$TMP/po/tiny.png" ] && [ -s "$TMP/po/tiny.svg" ] && \
    [ -z "$(ls "$TMP/po" | grep -v '^tiny\.\(png\|svg\)$' | grep -v '^data$')" ]
ok $? "plot FIGURE --out DIR: PNG and SVG written, no temporary or log left"
rm -f "$TMP/po/tiny.png"; mkfifo "$TMP/po/tiny.png"
expect 2 "tiny.png: output path exists and is a FIFO" "plot FIGURE with a FIFO at DIR/FIG.png: exit 2" -- "$D2MOE" plot tiny --plots "$TMP/pl" --db "$TMP/o.db" --out "$TMP/po"
[ -p "$TMP/po/tiny.png" ] && [ ! -e "$TMP/po/tiny.png.tmp" ]; ok $? "the FIFO untouched"
rm -f "$TMP/po/tiny.png" "$TMP/po/data/tiny.dat"; ln -s "$TMP/otarget" "$TMP/po/data/tiny.dat"
expect 2 "tiny.dat: output path exists and is a symbolic link" "plot FIGURE with a symlink at its data file: exit 2" -- "$D2MOE" plot tiny --plots "$TMP/pl" --db "$TMP/o.db" --out "$TMP/po"
[ -L "$TMP/po/data/tiny.dat" ] && [ "$(cat "$TMP/otarget")" = keep ]; ok $? "the symlink and its target untouched"
# per-job timelines written by the simulator (sweep --timelines DIR): a FIFO
# at a job's timeline path is refused (exit 2), never replaced
mkdir -p "$TMP/tld"
printf '[sweep]\nname = tl\nmodel = llama-moe-3.5b\ndevice = env2\nsim.policy = d2moe-v1\nsim.requests = 1\nsim.prompt = 2\nsim.gen = 2\nseed = 1\n' >"$TMP/tl.ini"
"$D2MOE" sweep "$TMP/tl.ini" --db "$TMP/tl1.db" --timelines "$TMP/tld" --quiet >/dev/null 2>&1
tlf=$(ls "$TMP"/tld/*.csv 2>/dev/null | head -1)
[ -n "$tlf" ]; ok $? "sweep --timelines writes a job's timeline"
if [ -n "$tlf" ]; then
    rm -f "$tlf"; mkfifo "$tlf"
    timeout 20 "$D2MOE" sweep "$TMP/tl.ini" --db "$TMP/tl2.db" --timelines "$TMP/tld" --quiet >/dev/null 2>&1; st=$?
    [ "$st" -eq 2 ] && [ -p "$tlf" ] && [ ! -e "$tlf.tmp" ]; ok $? "a FIFO at a job's timeline: exit 2 (status $st), the FIFO untouched, no temporary"
fi
# file names reach gnuplot quoted: a quote cannot end the string and run a
# command; a control character (a newline would end gnuplot's command) is refused
evil="z'; system('touch PWNED'); a='.csv"
cp "$TMP/o.tl" "$TMP/$evil"
(cd "$TMP" && "$D2MOE" plot timeline "$evil" -o "q'x.png") > /dev/null 2>&1; st=$?
[ "$st" -eq 0 ] && [ -s "$TMP/q'x.png" ] && [ ! -e "$TMP/PWNED" ]; ok $? "plot timeline of a file named with quotes and system(): drawn (status $st), no command run"
# a window of a timeline: --from / --to (ms); a window that ends before it
# starts, or the options without timeline, refused
"$D2MOE" plot timeline "$TMP/o.tl" -o "$TMP/ow.svg" --from 0.5 --to 2 > /dev/null 2>&1 &&
    sed -n 's/.*<text> *\([0-9.]*\)<.*/\1/p' "$TMP/ow.svg" | awk 'NF { n++; if ($1 > m) m = $1; if (n == 1 || $1 < lo) lo = $1 }
        END { exit !(n >= 3 && m == 2 && lo >= 0.5) }'
ok $? "plot timeline --from 0.5 --to 2: the x axis runs from 0.5 to 2 ms (the run lasts hundreds)"
"$D2MOE" plot timeline "$TMP/o.tl" -o "$TMP/ow.svg" --to 1 > /dev/null 2>&1; ok $? "plot timeline --to alone"
expect 2 "--from 3 --to 1: the window must end after it starts" "plot timeline --from after --to: exit 2" -- "$D2MOE" plot timeline "$TMP/o.tl" -o "$TMP/ow2.png" --from 3 --to 1
expect 2 "--from and --to go with timeline FILE.csv" "plot --from without timeline: exit 2" -- "$D2MOE" plot fig3 --from 1 --db "$TMP/o.db"
expect 2 "--to -1: expected milliseconds" "plot timeline --to -1: exit 2" -- "$D2MOE" plot timeline "$TMP/o.tl" -o "$TMP/ow2.png" --to -1
"$D2MOE" plot --sweep osw --x sim.requests --y makespan_s --db "$TMP/o.db" -o "$TMP/o'd.png" > /dev/null 2>&1; st=$?
[ "$st" -eq 0 ] && [ -s "$TMP/o'd.png" ]; ok $? "plot --sweep -o with a quote in the name: drawn (status $st)"
nl="$TMP/a
b.csv"
cp "$TMP/o.tl" "$nl"
expect 2 "control character" "plot timeline of a file named with a newline: exit 2, one line" -- "$D2MOE" plot timeline "$nl" -o "$TMP/nl.png"
# a damaged timeline: every record is checked (fields, queue, line end)
head -n 3 "$TMP/o.tl" > "$TMP/d1.tl"; echo "1700728,2532880,io" >> "$TMP/d1.tl"
expect 2 "d1.tl:4: expected 7 fields start_ns,end_ns,queue,layer,expert,level,tokens, got 3" "plot timeline: a record cut to three fields: exit 2 naming file:line" -- "$D2MOE" plot timeline "$TMP/d1.tl" -o "$TMP/d.png"
head -n 3 "$TMP/o.tl" > "$TMP/d2.tl"; sed -n 3p "$TMP/o.tl" | sed 's/$/,junk,9/' >> "$TMP/d2.tl"
expect 2 "d2.tl:4: expected 7 fields .*, got 9" "plot timeline: extra fields after the seventh: exit 2" -- "$D2MOE" plot timeline "$TMP/d2.tl" -o "$TMP/d.png"
head -n 3 "$TMP/o.tl" > "$TMP/d3.tl"; sed -n 3p "$TMP/o.tl" | sed 's/,io,/,bogus,/; s/,compute,/,bogus,/' >> "$TMP/d3.tl"
expect 2 "d3.tl:4: queue \"bogus\"" "plot timeline: an unknown queue: exit 2" -- "$D2MOE" plot timeline "$TMP/d3.tl" -o "$TMP/d.png"
head -c "$(( $(head -n 3 "$TMP/o.tl" | wc -c) + 12 ))" "$TMP/o.tl" > "$TMP/d4.tl"
expect 2 "d4.tl:4: " "plot timeline: a file cut inside a record: exit 2" -- "$D2MOE" plot timeline "$TMP/d4.tl" -o "$TMP/d.png"
head -n 3 "$TMP/o.tl" > "$TMP/d5.tl"; sed -n 3p "$TMP/o.tl" | awk -F, -v OFS=, '{ $4 = "1x"; print }' >> "$TMP/d5.tl"
expect 2 'd5.tl:4: field "layer": expected an integer' "plot timeline: a layer that is not a number: exit 2 naming the field" -- "$D2MOE" plot timeline "$TMP/d5.tl" -o "$TMP/d.png"
# Fig. 9 (plot fig9, report) draws four timelines beside the store: each is
# checked before gnuplot runs (a missing one was gnuplot's "undefined
# variable: STATS_min", exit 1; a damaged one was drawn as it was)
mkdir "$TMP/fig9"
for n in no-mwq mwq-id-order mwq-hebf; do cp "$TMP/o.tl" "$TMP/fig9/$n.csv"; done
expect 2 "fig9/optimal.csv: missing: fig9 draws the timelines" "plot fig9 with a timeline missing: exit 2 naming it" -- "$D2MOE" plot fig9 --db "$TMP/o.db" --out "$TMP/f9"
expect 2 "fig9/optimal.csv: missing" "report with a Fig. 9 timeline missing: exit 2 naming it" -- "$D2MOE" report --db "$TMP/o.db" -o "$TMP/f9.html"
cp "$TMP/d3.tl" "$TMP/fig9/optimal.csv"
expect 2 'fig9/optimal.csv:4: queue "bogus"' "plot fig9 with a damaged timeline: exit 2 at file:line" -- "$D2MOE" plot fig9 --db "$TMP/o.db" --out "$TMP/f9"
cp "$TMP/d5.tl" "$TMP/fig9/mwq-hebf.csv"
expect 2 'fig9/mwq-hebf.csv:4: field "layer"' "report with a damaged Fig. 9 timeline: exit 2 at file:line and field" -- "$D2MOE" report --db "$TMP/o.db" -o "$TMP/f9.html"
[ ! -e "$TMP/f9/fig9.png" ] && [ ! -e "$TMP/f9/fig9.svg" ] && [ ! -e "$TMP/f9.html" ]; ok $? "no figure or report written from them"
cp "$TMP/o.tl" "$TMP/fig9/optimal.csv"; cp "$TMP/o.tl" "$TMP/fig9/mwq-hebf.csv"
"$D2MOE" plot fig9 --db "$TMP/o.db" --out "$TMP/f9" > /dev/null && [ -s "$TMP/f9/fig9.png" ] && [ -s "$TMP/f9/fig9.svg" ]
ok $? "plot fig9 of four good timelines: drawn"
# validate --join reads its two timelines as every reader does: no FIFO, no device
mkfifo "$TMP/jf"
expect 2 "jf: not a regular file" "validate --join of a FIFO: exit 2, not a wait" -- timeout 10 "$D2MOE" validate --join "$TMP/jf" "$TMP/o.tl"
expect 2 "/dev/zero: not a regular file" "validate --join of /dev/zero: exit 2" -- timeout 10 "$D2MOE" validate --join "$TMP/o.tl" /dev/zero
expect 2 "d2.tl:4: expected 7 fields" "validate --join of a damaged timeline: exit 2 naming file:line" -- "$D2MOE" validate --join "$TMP/d2.tl" "$TMP/o.tl"
done_testing
