#!/bin/sh
# audit.sh - d2moe audit: every relation and every verdict on a small claims
# file (tests/data/audit-claims.ini, tiny runs), the JSON shape, the stored
# audit (--db), the reading's name, and bad claims files ending in exit 2
# with file:line and the field.  The verdict rule on hand-made values is in
# tests/t_audit.c.
. "${D2_SRCDIR:-.}/tests/lib.sh"

C="$D2_SRCDIR/tests/data/audit-claims.ini"

$D2MOE audit --claims "$C" --json > "$TMP/a.json"; ok $? "audit --json exits 0 (whatever the verdicts)"
python3 - "$TMP/a.json" > "$TMP/shape" 2>&1 <<'PY'
import json, math, sys
o = json.load(open(sys.argv[1]))
assert set(o) >= {"readings", "claims"}, o.keys()
assert o["readings"] == "datasheet", o["readings"]
for c in o["claims"]:
    assert set(c) >= {"name", "source", "verdict", "cases"}, c.keys()
    assert c["verdict"] in ("reproduced", "exceeds-bound", "not-reproduced", "error")
    assert len(c["cases"]) > 0
    for k in c["cases"]:
        assert set(k) >= {"model", "device", "budget", "value", "bound", "low", "high"}, k.keys()
        assert isinstance(k["budget"], int) and k["budget"] > 0
        if c["relation"] == "status":
            assert k["low"] is None and k["high"] is None and k["bound"] is None
        else:
            assert k["low"] <= k["high"]
        # throughput never exceeds its bound: value <= bound where both exist
        if isinstance(k["value"], float) and k["bound"] is not None:
            assert k["value"] <= k["bound"] * (1 + 1e-9), (c["name"], k)
        if c["relation"] in ("reduction", "status") or c["metric"] != "throughput_tps":
            assert k["bound"] is None, (c["name"], k)
for c in o["claims"]:
    print(c["name"], c["verdict"], len(c["cases"]))
PY
ok $? "JSON shape: readings, claims[name, source, verdict, cases[model, device, budget, value, bound, low, high]]"
[ -s "$TMP/shape" ] || cat "$TMP/shape"
verdict() { grep -q "^$1 $2 $3\$" "$TMP/shape"; ok $? "claim $1: $2 ($3 cases)"; }
verdict value-holds reproduced 4
verdict value-above-bound exceeds-bound 1
verdict value-misses not-reproduced 1
verdict ratio-holds reproduced 1
verdict ratio-above-bound exceeds-bound 1
verdict gain-holds reproduced 1
verdict gain-above-bound exceeds-bound 1
verdict reduction-holds reproduced 1
verdict reduction-misses not-reproduced 1
verdict status-oom reproduced 1
verdict status-misses not-reproduced 1
verdict case-error error 1
verdict any-case reproduced 2
python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
c = {c["name"]: c for c in o["claims"]}
k = c["case-error"]["cases"][0]
assert k["value"] is None and "smaller than one expert" in k["error"], k
k = c["status-oom"]["cases"][0]
assert k["value"] == "oom", k
k = c["ratio-above-bound"]["cases"][0]
assert k["bound"] is not None and k["value"] < k["bound"] < k["low"], k
' "$TMP/a.json"
ok $? "the error case says why; status values are oom/ok; an exceeds-bound case has value < bound < low"

$D2MOE audit --claims "$C" > "$TMP/table"; ok $? "audit (table) exits 0"
grep -Eq '^13 claims: 6 reproduced, 3 exceeds-bound, 3 not-reproduced, 1 error$' "$TMP/table"; ok $? "the table's tally"
grep -Eq '^ratio-above-bound +exceeds-bound +0/1' "$TMP/table"; ok $? "one line per claim with its verdict"

$D2MOE audit --claims "$C" --readings paper-testbed --db "$TMP/r.db" --json > "$TMP/b.json"; ok $? "audit --readings paper-testbed --db exits 0"
jq -e '.readings == "paper-testbed"' "$TMP/b.json" > /dev/null; ok $? "the JSON names the reading"
n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM audits WHERE readings = 'paper-testbed' AND length(claims_hash) = 32 AND code_version <> ''")
[ "$n" = 1 ]; ok $? "one audits row with the reading, claims hash and code version"
n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM audit_claims"); [ "$n" = 13 ]; ok $? "13 audit_claims rows ($n)"
n=$(sqlite3 "$TMP/r.db" "SELECT verdict FROM audit_claims WHERE name = 'gain-above-bound'"); [ "$n" = exceeds-bound ]; ok $? "stored verdict ($n)"
n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM audit_cases"); [ "$n" = 17 ]; ok $? "17 audit_cases rows ($n)"
n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM audit_cases c JOIN runs r ON r.id = c.run_id JOIN params p ON p.run_id = r.id AND p.key = 'reading.name' AND p.value = 'paper-testbed'")
[ "$n" = 16 ]; ok $? "every case that ran (16 of 17) links its run, stored with the reading ($n)"
n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM runs"); m=$(sqlite3 "$TMP/r.db" "SELECT count(DISTINCT config_hash) FROM runs")
[ "$n" = "$m" ] && [ "$n" -ge 5 ]; ok $? "a configuration shared by several claims runs and is stored once ($n runs)"
n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM audit_cases WHERE claim = 'ratio-holds' AND ref_run_id IS NOT NULL AND value > 0")
[ "$n" = 1 ]; ok $? "a ratio case links its baseline run"
jq -e '[.claims[] | select(.name == "status-oom")][0].cases[0].value == "oom"' "$TMP/b.json" > /dev/null; ok $? "the same verdicts under paper-testbed where physics decides (oom)"

# bad claims files: exit 2, one line, file:line and the field
bad() { # bad SED-EXPR REGEX DESCRIPTION
    sed "$1" "$C" > "$TMP/bad.ini"
    expect 2 "bad\.ini:[0-9]+: $2" "$3" -- $D2MOE audit --claims "$TMP/bad.ini"
}
bad 's/^requests = 2$/requestz = 2/' 'requestz: unknown key' "unknown key: exit 2"
bad 's/^relation = gain$/relation = speedup/' 'relation: "speedup" is not one of' "bad relation: exit 2"
bad '0,/^min = 1e6$/s//min = 3e7/' 'min: 30000000 is above max 2000000' "min > max: exit 2"
bad 's/^baseline = moqe-dynaio-int4$/baseline = moqe/' 'baseline: unknown system "moqe"' "unknown system: exit 2"
bad 's/^model = mixtral-8x7b$/model = mixtral-9x9b/' 'model: "mixtral-9x9b"' "unknown model: exit 2"
bad 's/^device = env1, env2$/device = env1, env9/' 'device: "env9"' "unknown device in a list: exit 2"
bad 's/^budget = 500M, 1000M$/budget = 500M, lots/' 'budget: "lots" is not a positive size' "bad size: exit 2"
bad 's/^max = 1e9$/max = big/' 'max: "big" is not a number' "bad number: exit 2"
bad '/^metric = peak_mem_mb$/d' '\[claim value-misses\]: missing key metric' "missing required key: exit 2"
bad 's/^status = oom$/status = maybe/' 'status: "maybe" is not oom or ok' "bad status: exit 2"
bad 's/^metric = peak_mem_mb$/metric = peak_memory/' 'metric: the simulator reports no metric "peak_memory"' "unknown metric: exit 2"
bad 's/^\[claim value-misses\]$/[check value-misses]/' '\[check value-misses\]: unknown section' "unknown section: exit 2"
bad 's/^budget_hi = 1000M$/budget_hi = 400M/' 'budget_hi: 400000000 is not above budget' "budget_hi <= budget: exit 2"
bad '0,/^status = oom$/s//status = oom\nmin = 1/' 'min: not used by relation status' "a key the relation does not use: exit 2"
bad 's/^sim.kv_on_device = false$/sim.kv_on_devise = false/' 'sim.kv_on_devise: not a sim key' "unknown table.key: exit 2"
bad 's/^sim.kv_on_device = false$/sim.budget = 1G/' 'sim.budget: set it with the claim' "sim.budget as a setting: exit 2"
bad 's/^\[claim ratio-holds\]$/[claim value-holds]/' '\[claim value-holds\]: claim "value-holds" given twice' "duplicate claim: exit 2"
bad 's/^\[claim ratio-holds\]$/[claim empty]\n\n[claim ratio-holds]/' '\[claim empty\]: a section with no keys' "a claim with no keys: exit 2"
expect 2 'not a regular file' "/dev/zero: exit 2, no hang" -- $D2MOE audit --claims /dev/zero
expect 2 'cannot open' "missing file: exit 2" -- $D2MOE audit --claims "$TMP/none.ini"
expect 2 'claims FILE is required' "no --claims: exit 2" -- $D2MOE audit
expect 2 "nope" "unknown reading: exit 2" -- $D2MOE audit --claims "$C" --readings nope
expect 2 'unknown option' "unknown option: exit 2" -- $D2MOE audit --claims "$C" --frobnicate
sed 's/^requests = 2$/requestz = 2/' "$C" > "$TMP/bad.ini"
$D2MOE audit --claims "$TMP/bad.ini" --db "$TMP/none.db" 2> /dev/null
[ $? = 2 ] && [ ! -e "$TMP/none.db" ]; ok $? "a bad claims file is found before the store is created"

# settings that parse but that no run accepts: resolved when the file is
# read, before any claim runs (a budget below one expert's level set stays
# a case error, case-error above)
L=$(grep -n '^sim.kv_on_device = false$' "$C" | cut -d: -f1)
badl() { # badl VALUE REGEX DESCRIPTION: the claim's table.key line (L) replaced by VALUE
    sed "s|^sim.kv_on_device = false\$|$1|" "$C" > "$TMP/bad.ini"
    expect 2 "^d2moe: .*bad\.ini:$L: $2" "$3" -- $D2MOE audit --claims "$TMP/bad.ini"
}
badl 'sim.nested_compute = bogus' 'sim\.nested_compute: "bogus": expected uniform or swiglu \(\[claim any-case\], model llama-moe-3\.5b, device env1\)' \
    "sim.nested_compute = bogus: exit 2, the setting's line"
$D2MOE audit --claims "$TMP/bad.ini" --db "$TMP/none.db" > /dev/null 2>&1
[ $? = 2 ] && [ ! -e "$TMP/none.db" ]; ok $? "... found before any run and before the store is created"
badl 'sim.caps = 0.5/0.6/0.3' 'sim\.caps: "0\.5/0\.6/0\.3": capacities sum to 1\.4, not 1' "caps that do not sum to 1: exit 2"
badl 'sim.storage = v2k' 'sim\.storage: v2k has 4 levels; system d2moe-v1 has 3' "sim.storage against the claim's system: exit 2"
badl 'sim.bitroute = uniform:8' 'sim\.bitroute: uniform:8: system d2moe-v1 stores no 8-bit level' "a bit routing the claim's system cannot do: exit 2"
badl 'model.top_k = 9' 'model\.top_k: 9 is more than experts \(8\)' "a model setting the profile checks refuse: exit 2"

# a refused audit left an empty store behind (the store was created first)
$D2MOE audit --claims "$C" --readings nope --db "$TMP/nr.db" > /dev/null 2>&1
[ $? = 2 ] && [ ! -e "$TMP/nr.db" ]; ok $? "an unknown reading with --db: exit 2, no store created"
sed 's/^metric = peak_mem_mb$/metric = nope_metric/' "$C" > "$TMP/badm.ini"
$D2MOE audit --claims "$TMP/badm.ini" --db "$TMP/nm.db" > /dev/null 2>&1
[ $? = 2 ] && [ ! -e "$TMP/nm.db" ]; ok $? "a metric the simulator does not report, with --db: exit 2, no store created"
$D2MOE audit --claims "$C" --db "$TMP/ng.db" > /dev/null 2>&1 && [ "$(sqlite3 "$TMP/ng.db" 'SELECT count(*) FROM audits')" = 1 ]
ok $? "a good audit creates the store and stores itself in it"

done_testing
