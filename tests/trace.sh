#!/bin/sh
# trace.sh - the `d2moe trace` commands end to end: exit status 2 and one
# line naming file:line and field for bad input, --json keys, same seed same
# bytes, the shipped traces read back, real data when ../shared is present.
. "${D2_SRCDIR:-.}/tests/lib.sh"
C=$D2_SRCDIR/tests/data/trace

expect 2 'truncated.jsonl:2: malformed JSON' "truncated JSON" -- $D2MOE trace import --format mixtral-jsonl $C/truncated.jsonl -o $TMP/x.d2t
expect 2 'wrongtype.jsonl:2: field "layer": expected an integer' "wrong type" -- $D2MOE trace import --format mixtral-jsonl $C/wrongtype.jsonl -o $TMP/x.d2t
expect 2 'range.jsonl:2: field "experts"\[1\]: id out of range 0..7 \(--strict\)' "id out of range, --strict" -- $D2MOE trace import --strict --format mixtral-jsonl --model mixtral-8x7b $C/range.jsonl -o $TMP/x.d2t
expect 2 'empty.jsonl: empty file' "empty file" -- $D2MOE trace import --format mixtral-jsonl $C/empty.jsonl -o $TMP/x.d2t
expect 2 'garbage.bin:1' "binary garbage" -- $D2MOE trace import --format vllm-jsonl $C/garbage.bin -o $TMP/x.d2t
expect 2 'garbage.bin: .*neither a .d2t' "garbage as .d2t" -- $D2MOE trace stats $C/garbage.bin
expect 2 'unrecognized|unknown|--bogus' "unknown option" -- $D2MOE trace stats --bogus x
expect 2 'format "xml"' "unknown format" -- $D2MOE trace import --format xml $C/good.csv -o $TMP/x.d2t
expect 2 'expected import, gen, stats or info' "unknown subcommand" -- $D2MOE trace frobnicate
expect 2 'gen.bogus|not a gen key' "unknown gen key" -- $D2MOE trace gen --model mixtral-8x7b --set gen.bogus=1 -o $TMP/x.d2t
expect 2 'skew' "gen value out of range" -- $D2MOE trace gen --model mixtral-8x7b --set gen.skew=99 -o $TMP/x.d2t
expect 2 'preset "nope"' "unknown model preset" -- $D2MOE trace gen --model nope -o $TMP/x.d2t

# a JSON key given twice is an error on the fast path (flat lines) as on
# jansson's (the same line with a null value); it was "last one wins"
J='{"dataset":"gsm8k","problem_id":1,"layer":0,"layer":1,"experts":[3,5],"gating_probs":[0.7,0.3],"token_idx":0'
printf '%s}\n' "$J" > $TMP/dupkey.jsonl
printf '%s,"x":null}\n' "$J" > $TMP/dupkey-slow.jsonl
for f in dupkey dupkey-slow; do
    expect 2 "$f.jsonl:1: .*duplicate object key near '\"layer\"'" "$f.jsonl: \"layer\" twice: exit 2 naming file:line and the key" -- \
        $D2MOE trace import --format mixtral-jsonl $TMP/$f.jsonl -o $TMP/x.d2t
done
printf '{"type":"route","req_id":"r0","token_idx":0,"layer":0,"topk_ids":[1,2],"topk_weights":[0.6,0.4],"token_idx":1}\n' > $TMP/dupkey-vllm.jsonl
expect 2 "dupkey-vllm.jsonl:1: .*duplicate object key near '\"token_idx\"'" "vllm-jsonl: \"token_idx\" twice: exit 2" -- \
    $D2MOE trace import --format vllm-jsonl $TMP/dupkey-vllm.jsonl -o $TMP/x.d2t

# a UTF-8 byte order mark at the start (Windows tools) is skipped: it used
# to fail with 'expected "req", got "<BOM>req"' (exit 2)
B='\357\273\277'
printf "${B}req,pos,phase,layer,e0,e1,w0,w1\nr,0,decode,0,1,2,0.6,0.4\nr,1,decode,0,2,3,0.7,0.3\n" > $TMP/bom.csv
$D2MOE trace import --format csv $TMP/bom.csv -o $TMP/bom.d2t | grep -q '2 records, 2 tokens, 1 requests'; ok $? "csv with a BOM: imported (2 records)"
printf "${B}"'{"dataset":"gsm8k","problem_id":1,"layer":0,"experts":[3,5],"gating_probs":[0.7,0.3],"token_idx":0}\n' > $TMP/bom.jsonl
$D2MOE trace import --format mixtral-jsonl $TMP/bom.jsonl -o $TMP/bom.d2t | grep -q '1 records, 1 tokens'; ok $? "mixtral-jsonl with a BOM: imported"
printf "${B}"'{"type":"meta","num_experts":8,"top_k":2}\n{"type":"route","req_id":"r0","token_idx":0,"layer":0,"topk_ids":[1,2],"topk_weights":[0.6,0.4]}\n' > $TMP/bomv.jsonl
$D2MOE trace import --format vllm-jsonl $TMP/bomv.jsonl -o $TMP/bom.d2t | grep -q '1 layers x 8 experts, top-2'; ok $? "vllm-jsonl with a BOM: imported, meta line read"
printf "${B}"'Layer,Language,Expert_0,Expert_1\n0,English,1.5,0.5\n' > $TMP/bomt.csv
$D2MOE trace stats $TMP/bomt.csv | grep -q '1 layers x 2 experts, top-2'; ok $? "Qwen3 table with a BOM: read"
sed -n 1p $TMP/bom.jsonl > $TMP/bom2.jsonl; cat $TMP/bom.jsonl >> $TMP/bom2.jsonl
expect 2 'bom2.jsonl:2: malformed JSON at column 1' "only the file's first bytes: a BOM on line 2 is malformed JSON at file:line" -- \
    $D2MOE trace import --format mixtral-jsonl $TMP/bom2.jsonl -o $TMP/x.d2t

# default mode: problems counted and reported, never silent
out=$($D2MOE trace import --format mixtral-jsonl --model mixtral-8x7b $C/range.jsonl -o $TMP/r.d2t 2>&1)
echo "$out" | grep -q 'problem: 1 x id out of range (record dropped); first: .*range.jsonl:2' ; ok $? "range.jsonl default: reported with count and handling"

# a flipped byte in a .d2t
$D2MOE trace import --format csv $C/good.csv -o $TMP/g.d2t >/dev/null; ok $? "import good.csv"
# byte 150 = header 128 + chunk head 16 + 6: record 0's position (0) becomes 0xff
cp "$TMP/g.d2t" "$TMP/f.d2t"; printf '\377' | dd of="$TMP/f.d2t" bs=1 seek=150 conv=notrunc 2>/dev/null
expect 2 'f.d2t: byte 128: chunk 0 \(records 0..5\): checksum mismatch' "flipped byte in a .d2t" -- $D2MOE trace stats $TMP/f.d2t
head -c 300 $TMP/g.d2t > $TMP/t.d2t
expect 2 't.d2t: truncated' "truncated .d2t" -- $D2MOE trace stats $TMP/t.d2t

# stats --json has the documented keys
$D2MOE trace stats --json $TMP/g.d2t > $TMP/s.json; ok $? "stats --json"
for k in '"records":6,' '"tokens":3,' '"layers_n":2,' '"experts_n":4,' '"top_k":2,' '"layers":\[{"layer":0,' '"share":\[' '"max_over_mean":' '"cv":' '"gini":' '"entropy":' '"top1_repeat":'; do
    grep -q "$k" $TMP/s.json; ok $? "stats --json has $k"
done

# same seed, same bytes; the shipped traces match their recorded commands
$D2MOE trace gen --model mixtral-8x7b --seed 7 --set gen.requests=2 --set gen.prefill=8 --set gen.decode=8 -o $TMP/a.d2t >/dev/null
$D2MOE trace gen --model mixtral-8x7b --seed 7 --set gen.requests=2 --set gen.prefill=8 --set gen.decode=8 -o $TMP/b.d2t >/dev/null
cmp -s $TMP/a.d2t $TMP/b.d2t; ok $? "same seed, same bytes"
$D2MOE trace gen --model mixtral-8x7b --seed 8 --set gen.requests=2 --set gen.prefill=8 --set gen.decode=8 -o $TMP/c.d2t >/dev/null
! cmp -s $TMP/a.d2t $TMP/c.d2t; ok $? "another seed, other bytes"
for f in $D2_SRCDIR/traces/*.d2t; do
    [ -f "$f" ] || continue
    cmd=$(sed -n "s/^    d2moe \(trace gen .* -o traces\/$(basename $f)\)\$/\1/p" $D2_SRCDIR/traces/README.md)
    if [ -z "$cmd" ]; then ok 1 "$(basename $f): command in traces/README.md"; continue; fi
    cmd=$(echo "$cmd" | sed "s| -o traces/.*| -o $TMP/shipped.d2t|")
    (cd $D2_SRCDIR && $D2MOE $cmd >/dev/null) && cmp -s $TMP/shipped.d2t $f; ok $? "$(basename $f) is what its README command makes"
done

S=$D2_SHARED/data
if [ -f $S/traces/mixtral-8x7b-instruct.gsm8k.routing.jsonl ]; then
    $D2MOE trace import --format mixtral-jsonl --model mixtral-8x7b $S/traces/mixtral-8x7b-instruct.gsm8k.routing.jsonl -o $TMP/mx.d2t > $TMP/imp.txt
    ok $? "import the Mixtral GSM8K trace"
    grep -q '7889 records, 247 tokens' $TMP/imp.txt; ok $? "7889 records, 247 tokens"
    # text table: column 9 is top1_rep; data/README.md: 0.14 / 0.21 / 0.22 (+-0.01, see t_trace.c)
    $D2MOE trace stats $TMP/mx.d2t | awk '$1 == "0" { a = $9 } $1 == "15" { b = $9 } $1 == "31" { c = $9 }
        END { d1 = a - 0.14; d2 = b - 0.21; d3 = c - 0.22; exit !(d1 * d1 <= 1e-4 && d2 * d2 <= 1e-4 && d3 * d3 <= 1e-4) }'
    ok $? "CLI: top-1 repeat 0.14 / 0.21 / 0.22 at layers 0 / 15 / 31"
    $D2MOE trace gen --like $TMP/mx.d2t --set gen.requests=4 -o $TMP/like.d2t > /dev/null; ok $? "gen --like an imported trace"
else
    skip "../shared/data absent"; skip "../shared/data absent"; skip "../shared/data absent"; skip "../shared/data absent"
fi

# the generator's stream, golden: these bytes were written by the code
# before the top-2 path of gen_stream_next (commit 86ab22e) and must not
# change without a new stream version (trace/gen.c GEN_VERSION): two experts
# at skew 8 take the rank fallback of the second expert, alpha 0.5 the
# a < 1 gamma, qwen3 the general top-8 path
for c in "59f7ac9b0cf3f8698b8bc3bc104a08c7 --set gen.experts=2 --set gen.skew=8" \
         "3cf1e6cb202377b8cf40b2a7008a1b87 --set gen.gate_alpha=0.5" \
         "02827a08317b76c4597afd8f4ec0108f --model qwen3-30b-a3b"; do
    set -- $c
    want=$1; shift
    case "$*" in *--model*) m= ;; *) m="--model mixtral-8x7b" ;; esac
    $D2MOE trace gen $m "$@" --set gen.requests=2 --set gen.prefill=8 --set gen.decode=8 --out $TMP/golden.d2t >/dev/null
    [ "$(md5sum < $TMP/golden.d2t | cut -d' ' -f1)" = "$want" ]; ok $? "generator stream golden: $*"
done
# a vLLM meta line's layers_logged is checked: a wrong type, a wrong element
# type or a layer listed twice is fatal; a route row at a layer the list does
# not name is a layer out of range (fatal with --strict).  A string, an
# object, [0,0] and [5] over layer-0 rows were accepted (even with --strict),
# [5] writing a 6-layer trace
R='{"type":"route","req_id":"r0","token_idx":0,"layer":0,"topk_ids":[1,2],"topk_weights":[0.6,0.4]}'
R2='{"type":"route","req_id":"r0","token_idx":1,"layer":0,"topk_ids":[3,2],"topk_weights":[0.6,0.4]}'
for c in '"0"|field "layers_logged": expected an array, got a string' \
         '{"a":1}|field "layers_logged": expected an array, got an object' \
         '[0,"1"]|field "layers_logged"\[1\]: expected an integer, got a string' \
         '[0,0]|field "layers_logged"\[1\]: layer 0 listed twice' \
         '[70000]|field "layers_logged"\[0\]: 70000 out of range'; do
    ll=${c%%|*}; want_re=${c#*|}
    printf '{"type":"meta","layers_logged":%s,"top_k":2,"num_experts":8}\n%s\n%s\n' "$ll" "$R" "$R2" > $TMP/meta.jsonl
    for s in "" --strict; do
        expect 2 "meta.jsonl:1: $want_re" "vllm-jsonl meta layers_logged $ll $s: exit 2 naming line 1 and the field" -- \
            $D2MOE trace import $s --format vllm-jsonl $TMP/meta.jsonl -o $TMP/x.d2t
    done
done
printf '{"type":"meta","layers_logged":[5],"top_k":2,"num_experts":8}\n%s\n%s\n' "$R" "$R2" > $TMP/meta5.jsonl
expect 2 'meta5.jsonl:2: field "layer": 0 is not among the layers_logged of line 1 \(--strict\)' \
    "vllm-jsonl rows outside layers_logged, --strict: exit 2" -- $D2MOE trace import --strict --format vllm-jsonl $TMP/meta5.jsonl -o $TMP/x.d2t
expect 2 'meta5.jsonl: no usable records' "vllm-jsonl rows outside layers_logged: dropped, nothing left: exit 2" -- \
    $D2MOE trace import --format vllm-jsonl $TMP/meta5.jsonl -o $TMP/x.d2t
printf '{"type":"meta","layers_logged":[0],"top_k":2,"num_experts":8}\n%s\n%s\n' "$R" "$R2" > $TMP/meta0.jsonl
$D2MOE trace import --strict --format vllm-jsonl $TMP/meta0.jsonl -o $TMP/x.d2t | grep -q '1 layers x 8 experts, top-2'; ok $? "vllm-jsonl with a good meta line: imported (1 layer)"

# trace gen --model takes a model profile's path as simulate does (its name
# picks the preset): it was read as a generator preset ("[model]: unknown
# section (expected [gen])").  A preset given as --model says to use --preset.
M="$D2_SRCDIR/experiments/models/llama-moe-3.5b.ini"
"$D2MOE" trace gen --model "$M" --set gen.requests=2 -o "$TMP/mp.d2t" > /dev/null &&
    "$D2MOE" trace gen --model llama-moe-3.5b --set gen.requests=2 -o "$TMP/mn.d2t" > /dev/null && cmp -s "$TMP/mp.d2t" "$TMP/mn.d2t"
ok $? "trace gen --model PROFILE.ini: the same trace as --model NAME"
"$D2MOE" trace info "$TMP/mp.d2t" | grep -q '^model *= llama-moe-3.5b$'; ok $? "its header names the model by name"
sed 's/^name = .*/name = mine/' "$M" > "$TMP/mine.ini"
expect 2 'generator preset "mine": .*presets/mine.ini not found' "trace gen --model PROFILE whose name has no preset: as simulate" -- \
    "$D2MOE" trace gen --model "$TMP/mine.ini" -o "$TMP/mine.d2t"
expect 2 "--model .*presets/tiny-moe.ini: a generator preset, not a model profile \(give a preset with --preset\)" \
    "trace gen --model PRESET.ini: says --preset" -- "$D2MOE" trace gen --model "$D2_SRCDIR/traces/presets/tiny-moe.ini" -o "$TMP/t.d2t"
"$D2MOE" trace gen --preset "$D2_SRCDIR/traces/presets/tiny-moe.ini" -o "$TMP/t.d2t" > /dev/null; ok $? "trace gen --preset PRESET.ini still reads it"

done_testing
