#!/bin/sh
# eval.sh - `d2moe eval` end to end on a SYNTHETIC llama2.c checkpoint
# (written by --write-synthetic): same seed same bytes, the JSON fields the
# issue names, runs in the store, and bad input (one line, exit 2).
. "${D2_SRCDIR:-.}/tests/lib.sh"

"$D2MOE" eval --write-synthetic "$TMP/syn.bin" --seed 4 >/dev/null 2>&1
ok $? "--write-synthetic writes a checkpoint"
"$D2MOE" eval --input "$TMP/syn.bin" --format llama2c --seqs 4 --len 12 --preset v1 --json >"$TMP/a.json" 2>/dev/null
ok $? "eval --json runs"
"$D2MOE" eval --input "$TMP/syn.bin" --format llama2c --seqs 4 --len 12 --preset v1 --json >"$TMP/b.json" 2>/dev/null
cmp -s "$TMP/a.json" "$TMP/b.json"
ok $? "same seed: the same JSON bytes"
"$D2MOE" eval --input "$TMP/syn.bin" --seqs 4 --len 12 --preset v1 --json --seed 2 >"$TMP/c.json" 2>/dev/null
! cmp -s "$TMP/a.json" "$TMP/c.json"
ok $? "another seed: other numbers"
python3 - "$TMP/a.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["reference"]["ppl"] > 1
cs = j["configs"]
keys = {"preset", "level", "bitroute", "bpw", "kl", "top1_agree", "ppl"}
assert all(keys <= set(c) for c in cs)
uni = [c for c in cs if c["bitroute"] is None]
mix = [c for c in cs if c["bitroute"] is not None]
assert len(uni) == 9 and len(mix) == 6, (len(uni), len(mix))     # v1: 3 levels x 3 methods; 4 + 2 routed rows
assert all(c["level"] is None for c in mix) and all(c["level"] in (1, 2, 3) for c in uni)
assert all(c["kl"] >= 0 and 0 <= c["top1_agree"] <= 1 for c in cs)
PY
ok $? "JSON: reference.ppl, configs with preset/level/bitroute/bpw/kl/top1_agree/ppl; level null for a mix, bitroute null when uniform"
"$D2MOE" eval --input "$TMP/syn.bin" --seqs 4 --len 12 --preset v1 --db "$TMP/r.db" >/dev/null 2>&1
ok $? "eval --db runs"
n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM runs WHERE kind = 'eval' AND status = 'ok'")
[ "$n" = 15 ]
ok $? "--db: one run per configuration (15, got $n)"
n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM params WHERE key = 'eval.bitroute' AND value = 'uniform'")
[ "$n" = 9 ]
ok $? "--db: parameters stored (9 uniform runs, got $n)"
"$D2MOE" plot evalq --db "$TMP/r.db" --out "$TMP/plots" >/dev/null 2>&1 && [ -s "$TMP/plots/evalq.png" ]
ok $? "plot evalq draws the figure from the stored runs"

"$D2MOE" eval --input "$TMP/syn.bin" --seqs 3 --len 8 --preset v1 --ffn-path kernel --json 2>/dev/null |
    python3 -c 'import json, sys; c = json.load(sys.stdin)["configs"]; assert {x["ffn_path"] for x in c if x["method"] == "mwq"} == {"kernel"}; assert {x["ffn_path"] for x in c if x["method"] != "mwq"} == {"dequant"}'
ok $? "--ffn-path kernel: MWQ rows through the kernels, baselines dequantized, each labelled"
expect 2 "--ffn-path" "--ffn-path bad: exit 2" -- "$D2MOE" eval --input "$TMP/syn.bin" --ffn-path gpu
expect 2 "required" "no --input: exit 2" -- "$D2MOE" eval
expect 2 "--seqs" "--seqs 0: exit 2" -- "$D2MOE" eval --input "$TMP/syn.bin" --seqs 0
expect 2 "--len 600" "--len beyond seq_len: exit 2 naming the option" -- "$D2MOE" eval --input "$TMP/syn.bin" --len 600
expect 2 "llama2c" "--format npy: exit 2" -- "$D2MOE" eval --input "$TMP/syn.bin" --format npy
expect 2 "--preset v9" "unknown preset: exit 2" -- "$D2MOE" eval --input "$TMP/syn.bin" --preset v9
expect 2 "nope.bin" "missing file: exit 2 naming it" -- "$D2MOE" eval --input "$TMP/nope.bin"
expect 2 "/dev/zero: not a regular file" "/dev/zero: exit 2 naming the file (not read)" -- "$D2MOE" eval --input /dev/zero
head -c 5000 "$TMP/syn.bin" >"$TMP/trunc.bin"
expect 2 "trunc.bin.*truncated" "truncated checkpoint: exit 2" -- "$D2MOE" eval --input "$TMP/trunc.bin"
done_testing
