#!/bin/sh
# readings.sh - named readings (experiments/readings/NAME.ini): applied to
# every system, stored with the run, listed; files that would make a reading
# per-system or change the experiment are refused with file:line, exit 2.
. "${D2_SRCDIR:-.}/tests/lib.sh"

S="$D2MOE simulate --model llama-moe-3.5b --device env1 --requests 2 --prompt 4 --gen 4"

$S --json > "$TMP/def.json"; ok $? "default reading runs"
jq -e '.params["reading.name"] == "datasheet"' "$TMP/def.json" > /dev/null; ok $? "the default reading is datasheet, stored as reading.name"
$S --readings datasheet --json > "$TMP/ds.json"
jq -S 'del(.plan_overhead_s)' "$TMP/def.json" > "$TMP/a"; jq -S 'del(.plan_overhead_s)' "$TMP/ds.json" > "$TMP/b"
cmp -s "$TMP/a" "$TMP/b"; ok $? "--readings datasheet = the default, byte for byte"
$S --readings paper-testbed --json > "$TMP/pt.json"; ok $? "paper-testbed runs"
jq -e '.params["reading.name"] == "paper-testbed" and .params["sim.nested_kernel"] == "fused" and .params["device.page_cache_auto"] == "true"' \
    "$TMP/pt.json" > /dev/null; ok $? "paper-testbed's settings are the effective params"
jq -e '.params["reading.settings"] | test("sim.nested_kernel=fused")' "$TMP/pt.json" > /dev/null; ok $? "reading.settings stored"
jq -e '.page_cache_gb > 25' "$TMP/pt.json" > /dev/null; ok $? "paper-testbed: Env 1's page cache from its 32 GB of RAM"
$S --readings paper-testbed --set sim.nested_kernel=per-level --json | jq -e '.params["sim.nested_kernel"] == "per-level"' > /dev/null
ok $? "--set wins over the reading"
$S --readings none --json | jq -e '.params["reading.name"] == "none" and .params["reading.settings"] == ""' > /dev/null
ok $? "--readings none applies nothing"

$D2MOE simulate --model llama-moe-3.5b --device env1 --requests 2 --prompt 4 --gen 4 --readings paper-testbed --db "$TMP/r.db" > /dev/null
n=$(sqlite3 "$TMP/r.db" "SELECT value FROM params WHERE key = 'reading.name'"); [ "$n" = paper-testbed ]; ok $? "stored run says its reading ($n)"
n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM inputs WHERE role = 'reading'"); [ "$n" = 1 ]; ok $? "the reading file is a hashed input"

$D2MOE list readings > "$TMP/list"; ok $? "list readings"
grep -q '^datasheet ' "$TMP/list" && grep -q '^paper-testbed ' "$TMP/list"; ok $? "both shipped readings listed"

bad() { # name, file content, expected message fragment
    printf '%s\n' "$2" > "$TMP/bad.ini"
    $S --readings "$TMP/bad.ini" > /dev/null 2> "$TMP/err"; rc=$?
    [ $rc = 2 ] && grep -q "bad.ini:[0-9]*: .*$3" "$TMP/err"; ok $? "$1: exit 2 with file:line ($(head -c 150 "$TMP/err"))"
}
bad "a policy section" "[d2moe-v1]
sim.nested_kernel = fused" "a reading has no sections"
bad "a system key" "sim.policy = hold-int8" "may not choose a system"
bad "a planner key" "sim.plan = optimal" "may not choose a system"
bad "a budget" "sim.budget = 2G" "may not choose a system"
bad "a model key" "model.experts = 4" "does not change the model"
bad "an unknown key" "device.flash_speed = 1G" "not a device key"
bad "a bad value" "device.flash_bw = fast" "flash_bw"
bad "a duplicate" "sim.nested_kernel = fused
sim.nested_kernel = per-level" "given twice"
$S --readings nosuchreading > /dev/null 2> "$TMP/err"; [ $? = 2 ]; ok $? "unknown reading: exit 2"

# a sweep axis and --readings
cat > "$TMP/sw.ini" <<EOT
[sweep]
name = rd
model = llama-moe-3.5b
device = env1
readings = datasheet, paper-testbed
sim.requests = 2
sim.prompt = 4
sim.gen = 4
EOT
$D2MOE sweep "$TMP/sw.ini" --db "$TMP/s.db" --quiet > /dev/null 2>&1; ok $? "sweep over readings"
n=$(sqlite3 "$TMP/s.db" "SELECT count(DISTINCT value) FROM params WHERE key = 'reading.name'"); [ "$n" = 2 ]; ok $? "two readings stored"
sed -i 's/^readings = .*/readings = datasheet, nosuch/' "$TMP/sw.ini"
$D2MOE sweep "$TMP/sw.ini" --db "$TMP/s2.db" --quiet > /dev/null 2>&1; [ $? = 2 ]; ok $? "a spec naming an unknown reading fails before any run"
done_testing
