#!/bin/sh
# cli.sh - the d2moe front end: help, version, unknown commands and options.
. "${D2_SRCDIR:-.}/tests/lib.sh"

out=$("$D2MOE" help); ok $? "d2moe help exits 0"
for c in list show db; do
    printf '%s' "$out" | grep -q "^  $c " ; ok $? "help lists '$c'"
done
"$D2MOE" --version | grep -Eq '^d2moe .+'; ok $? "--version prints a version"
"$D2MOE" show --help | grep -q 'usage: d2moe show'; ok $? "show --help"
"$D2MOE" help show | grep -q 'usage: d2moe show'; ok $? "help show"
for a in --help -h help; do
    "$D2MOE" help $a | grep -q '^usage: d2moe <command>'; ok $? "help $a: the command list"
done
expect 2 "not a d2moe command" "unknown command: exit 2, one line" -- "$D2MOE" frobnicate
expect 2 "unknown option '--frob'" "unknown global option: exit 2, one line" -- "$D2MOE" --frob
expect 2 "unknown option .*--colour" "unknown command option: exit 2, one line" -- "$D2MOE" list --colour models
"$D2MOE" list | grep -q "looked up in"; ok $? "list without argument: the profile search order"
expect 2 "expected models, devices or readings" "list of something else: exit 2" -- "$D2MOE" list planets
expect 2 "no command given" "no command: exit 2, one line" -- "$D2MOE"
"$D2MOE" list models > "$TMP/models" 2>&1; ok $? "list models"
for m in llama-moe-3.5b mixtral-8x7b llama2-13b qwen1.5-moe-a2.7b olmoe-1b-7b qwen3-30b-a3b deepseek-v2-lite switch-base-128; do
    grep -q "^$m " "$TMP/models"; ok $? "list models shows $m"
done
"$D2MOE" list devices > "$TMP/devices" 2>&1; ok $? "list devices"
for d in env1 env2 raspberry-pi-5 phone-sd8g3; do
    grep -q "^$d " "$TMP/devices"; ok $? "list devices shows $d"
done
"$D2MOE" show model mixtral-8x7b > "$TMP/mx"; ok $? "show model mixtral-8x7b"
grep -Eq '^expert_params += 176160768' "$TMP/mx"; ok $? "mixtral expert params = 3*4096*14336 = 176160768"
grep -Eq '^expert_bytes_int16 += 352321536' "$TMP/mx"; ok $? "mixtral FP16 expert = 352321536 bytes"
grep -Eq '^mwq_v1_bits_per_weight = 4.5000' "$TMP/mx"; ok $? "MWQ V1 = 4.5 bits/weight"
"$D2MOE" show model mixtral-8x7b --set model.layers=8 | grep -Eq '^layers += 8 '; ok $? "--set overrides a model key"
expect 2 "layers: 0 is outside" "--set out of range: exit 2" -- "$D2MOE" show model mixtral-8x7b --set model.layers=0
expect 2 "not a model key" "--set of a device key on a model: exit 2" -- "$D2MOE" show model mixtral-8x7b --set device.flash_bw=1G
expect 2 "no such profile.*d2moe list models" "unknown model: exit 2, points to d2moe list" -- "$D2MOE" show model no-such-model
expect 2 "did you mean 'llama-moe-3.5b'" "misspelt model: did you mean" -- "$D2MOE" show model llama-moe-3.6b
expect 2 "did you mean 'sweep'" "misspelt command: did you mean" -- "$D2MOE" swep
expect 2 "did you mean '--budget'" "misspelt option: did you mean" -- "$D2MOE" simulate --model tiny-moe --device env1 --bugdet 1G
"$D2MOE" show device env1 | grep -Eq '^flash_bw += 3500000000 '; ok $? "show device env1: flash_bw"
expect 2 "expected a subcommand" "db without subcommand: exit 2" -- "$D2MOE" db
expect 2 "cannot open" "db info of a missing file: exit 2" -- "$D2MOE" db info "$TMP/none.db"
printf 'not a database at all, just text that is long enough to be a header........................................' > "$TMP/junk.db"
expect 2 "junk.db: not an SQLite database" "db info of a corrupt file: refused, exit 2 (bad input)" -- "$D2MOE" db info "$TMP/junk.db"
# help texts say what the code does
"$D2MOE" help | grep -Eq "^  list +.*reading"; ok $? "help: list names the reading profiles too"
"$D2MOE" audit --help | tr '\n' ' ' | grep -q -- "--readings .*default datasheet"; ok $? "audit --help: --readings defaults to datasheet"
! "$D2MOE" audit --help | grep -q "default none"; ok $? "audit --help: not 'default none'"
goal=$(sed -n 's/.*(goal: \([0-9]* ms\)).*/\1/p' "$D2_SRCDIR/src/cli/bench_sim.c")
[ -n "$goal" ] && "$D2MOE" bench --help | grep -E "^  sim " | grep -q "goal $goal"; ok $? "bench --help: the sim goal is the one bench sim prints ($goal)"
expect 2 "--preset 'v9': expected v1 .*v2 .*v1k or v2k" "quantize --preset v9: names all four presets" -- "$D2MOE" quantize --input "$TMP/none.bin" --preset v9
# sweep values keep their identity: integers exactly (17-digit seeds are three jobs, not one), others to the last digit
printf '[sweep]\nname = seeds\nmodel = tiny-moe\ndevice = env2\nsim.policy = d2moe-v1\nsim.requests = 1\nsim.prompt = 2\nsim.gen = 2\nsim.budget = 1G\nseed = 12345678901234567, 12345678901234568, 12345678901234569\nsim.arrival_rate = 0.123456789012, 0.123456789013\n' > "$TMP/seeds.ini"
"$D2MOE" sweep "$TMP/seeds.ini" --db "$TMP/seeds.db" --quiet > /dev/null 2>&1; ok $? "a sweep over 17-digit seeds"
[ "$(sqlite3 "$TMP/seeds.db" "select count(*) from runs")" = 6 ] && \
  [ "$(sqlite3 "$TMP/seeds.db" "select group_concat(value, ' ') from (select distinct value from params where key = 'sim.seed' order by value)")" = "12345678901234567 12345678901234568 12345678901234569" ] && \
  [ "$(sqlite3 "$TMP/seeds.db" "select count(distinct value) from params where key = 'sim.arrival_rate'")" = 2 ]
ok $? "17-digit seeds stored exactly, 12-digit rates kept apart: 6 runs"
# --as base is the spec's own runs: runs with overrides cannot take the name
expect 2 "--as base: \"base\" names the spec's own runs.*sim.gen=3" "sweep --as base with --set: refused, exit 2" -- \
    "$D2MOE" sweep "$TMP/seeds.ini" --db "$TMP/seeds.db" --as base --set sim.gen=3
# JSON export of text that is not UTF-8: the bad bytes as U+FFFD, said on stderr; never null
printf '[sweep]\nname = caf\351\nmodel = tiny-moe\ndevice = env2\nsim.requests = 1\nsim.prompt = 2\nsim.gen = 2\nsim.budget = 1G\n' > "$TMP/l1.ini"
"$D2MOE" sweep "$TMP/l1.ini" --db "$TMP/l1.db" --quiet > /dev/null 2>&1
"$D2MOE" export --db "$TMP/l1.db" --format json -o "$TMP/l1.json" 2> "$TMP/l1.err" > /dev/null; st=$?
[ "$st" -eq 0 ] && grep -q '"sweep": "caf\\ufffd"\|"sweep": "caf'"$(printf '\357\277\275')"'"' "$TMP/l1.json" && ! grep -q '"sweep": null' "$TMP/l1.json" && grep -q "not UTF-8: written as U+FFFD" "$TMP/l1.err"
ok $? "export --format json of a Latin-1 sweep name: U+FFFD, not null, and a note (status $st)"
# a path longer than PATH_MAX is refused, never cut short into another file's name
LONGP=$(head -c 5000 /dev/zero | tr '\0' a)
expect 2 "path too long \(5000 bytes, at most 4095\): aaaa" "plot --plots with a 5000-byte folder: exit 2, one line" -- "$D2MOE" plot list --plots "$LONGP"
expect 2 "path too long" "report --plots with a 5000-byte folder: exit 2, one line" -- "$D2MOE" report --plots "$LONGP" -o "$TMP/r.html"
expect 2 "path too long \(5005 bytes" "reproduce into a 5000-byte folder: exit 2, one line" -- "$D2MOE" reproduce --quick --db "/tmp/$LONGP/x.db"
# an output that is one of the command's inputs is refused before any work,
# and the input keeps its bytes (a store, a trace, a profile, a CSV, weights)
printf '[sweep]\nname = same\nmodel = llama-moe-3.5b\ndevice = env2\nsim.prompt = 2\nsim.gen = 2\nsim.requests = 1,2\n' > "$TMP/same.ini"
"$D2MOE" sweep "$TMP/same.ini" --db "$TMP/same.db" --quiet > /dev/null 2>&1
cp "$TMP/same.db" "$TMP/same.db.orig"
expect 2 "same.db: is an input of this command" "simulate --timeline onto its own --db: exit 2" -- \
    "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --db "$TMP/same.db" --timeline "$TMP/same.db"
[ "$(sqlite3 "$TMP/same.db" 'SELECT count(*) FROM runs')" = 2 ]; ok $? "  the store keeps its 2 runs"
expect 2 "same.db: is an input of this command" "export -o onto its own --db: exit 2" -- "$D2MOE" export --db "$TMP/same.db" -o "$TMP/same.db"
[ "$(sqlite3 "$TMP/same.db" 'SELECT count(*) FROM runs')" = 2 ]; ok $? "  the store keeps its 2 runs"
cp "$D2_SRCDIR/traces/mixtral-8x7b.r2.p16.d32.s1.d2t" "$TMP/same.d2t"
expect 2 "same.d2t: is an input of this command" "simulate --timeline onto its own --trace: exit 2" -- \
    "$D2MOE" simulate --model mixtral-8x7b --device env2 --requests 1 --prompt 2 --gen 2 --trace "$TMP/same.d2t" --timeline "$TMP/same.d2t"
cmp -s "$TMP/same.d2t" "$D2_SRCDIR/traces/mixtral-8x7b.r2.p16.d32.s1.d2t"; ok $? "  the trace keeps its bytes"
expect 2 "same.d2t: is an input of this command" "simulate --db onto its own --trace: exit 2" -- \
    "$D2MOE" simulate --model mixtral-8x7b --device env2 --requests 1 --prompt 2 --gen 2 --trace "$TMP/same.d2t" --db "$TMP/same.d2t"
cmp -s "$TMP/same.d2t" "$D2_SRCDIR/traces/mixtral-8x7b.r2.p16.d32.s1.d2t"; ok $? "  the trace keeps its bytes"
cp "$D2_SRCDIR/experiments/devices/env2.ini" "$TMP/samedev.ini"
expect 2 "samedev.ini: is an input of this command" "simulate --timeline onto its --device profile: exit 2" -- \
    "$D2MOE" simulate --model llama-moe-3.5b --device "$TMP/samedev.ini" --requests 1 --prompt 2 --gen 2 --timeline "$TMP/samedev.ini"
cmp -s "$TMP/samedev.ini" "$D2_SRCDIR/experiments/devices/env2.ini"; ok $? "  the profile keeps its bytes"
cp "$D2_SRCDIR/tests/data/trace/good.csv" "$TMP/same.csv"
expect 2 "same.csv: is an input of this command" "trace import -o onto its input: exit 2" -- "$D2MOE" trace import --format csv "$TMP/same.csv" -o "$TMP/same.csv"
cmp -s "$TMP/same.csv" "$D2_SRCDIR/tests/data/trace/good.csv"; ok $? "  the CSV keeps its bytes"
perl -e 'my $h = "{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (4, 256), }";
         $h .= " " x (118 - length($h)) . "\n"; print "\x93NUMPY\x01\x00", pack("v", length($h)), $h, pack("f<*", map { sin($_) } 0 .. 1023)' > "$TMP/same.npy"
cp "$TMP/same.npy" "$TMP/same.npy.orig"
expect 2 "same.npy: is an input of this command" "quantize -o onto its --input: exit 2" -- "$D2MOE" quantize --input "$TMP/same.npy" --format npy -o "$TMP/same.npy"
cmp -s "$TMP/same.npy" "$TMP/same.npy.orig"; ok $? "  the weights keep their bytes"
# JSON has no inf: a non-finite metric is written as null, and said
cp "$TMP/same.db.orig" "$TMP/inf.db"
sqlite3 "$TMP/inf.db" "UPDATE metrics SET value = 1e308 * 10 WHERE name = 'makespan_s' AND run_id = 1"
"$D2MOE" export --db "$TMP/inf.db" --format json -o "$TMP/inf.json" 2> "$TMP/inf.err" > /dev/null; st=$?
[ "$st" -eq 0 ] && grep -q '"makespan_s": null' "$TMP/inf.json" && grep -q "1 value in the store is not finite" "$TMP/inf.err"
ok $? "export --format json of an infinite metric: null and a note, exit 0 (status $st)"
# a sweep job's identity text is never cut short (two long values with one
# prefix would share a hash, and the second be skipped as stored)
LA=$(head -c 250 /dev/zero | tr '\0' a); LB=$(head -c 250 /dev/zero | tr '\0' b); LC=$(head -c 120 /dev/zero | tr '\0' c)
mkdir -p "$TMP/$LA/$LB/$LC" && cp "$D2_SRCDIR/experiments/models/llama-moe-3.5b.ini" "$TMP/$LA/$LB/$LC/m.ini"
expect 2 "sweep same: model: a value longer than [0-9]+ bytes" "sweep --set model=<a 640-byte path>: exit 2, not cut short into another job's identity" -- \
    "$D2MOE" sweep "$TMP/same.ini" --db "$TMP/longv.db" --quiet --set "model=$TMP/$LA/$LB/$LC/m.ini"
[ ! -e "$TMP/longv.db" ]; ok $? "  no store created"
# an error message echoes a file's field: bytes that are not UTF-8 and
# control characters come out as \xNN, one line, nothing a terminal acts on
sed 's/^name = .*/&\nx\xff\xfe = 1/' "$D2_SRCDIR/experiments/models/llama-moe-3.5b.ini" > "$TMP/badkey.ini"
expect 2 'badkey.ini:[0-9]+: x\\xff\\xfe: unknown key' "a profile key of bytes FF FE: echoed as \\xff\\xfe, exit 2" -- "$D2MOE" show model "$TMP/badkey.ini"
expect 2 'caf(\?|\\x1b)\[31m\.ini: cannot open' "a path with ESC in it: not written raw in the message" -- "$D2MOE" show model "$TMP/caf$(printf '\033')[31m.ini"
# the output's temporary OUT.tmp is truncated and renamed away: an input of that name is refused too
cp "$D2_SRCDIR/tests/data/trace/good.csv" "$TMP/imp.tmp"
expect 2 "imp.tmp: is an input of this command: refusing to write through it" "trace import INPUT.tmp -o INPUT: exit 2" -- \
    "$D2MOE" trace import --format csv "$TMP/imp.tmp" -o "$TMP/imp"
cmp -s "$TMP/imp.tmp" "$D2_SRCDIR/tests/data/trace/good.csv" && [ ! -e "$TMP/imp" ]; ok $? "  the input keeps its bytes, no output"
# two outputs naming one file not there yet (x and ./x): refused before the run
mkdir -p "$TMP/two"
expect 2 "--timeline and --db name the same file" "simulate --timeline X --db ./X (X new): exit 2 before the run" -- sh -c \
    "cd '$TMP/two' && exec '$D2MOE' simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --db new.db --timeline ./new.db"
[ -z "$(ls "$TMP/two")" ]; ok $? "  nothing written"
# options that would be ignored are refused, not dropped without a word
expect 2 "a .d2t trace: --language applies to activation tables only" "trace stats --language on a .d2t: exit 2" -- \
    "$D2MOE" trace stats --language en "$D2_SRCDIR/traces/mixtral-8x7b.r2.p16.d32.s1.d2t"
expect 2 "a .d2t trace: --top-k applies to activation tables only" "trace stats --top-k on a .d2t: exit 2" -- \
    "$D2MOE" trace stats --top-k 2 "$D2_SRCDIR/traces/mixtral-8x7b.r2.p16.d32.s1.d2t"
"$D2MOE" trace stats "$D2_SRCDIR/traces/mixtral-8x7b.r2.p16.d32.s1.d2t" > /dev/null; ok $? "  trace stats of the .d2t without them: exit 0"
mkdir -p "$TMP/mwqd"
expect 2 "--mwq .* and --mwq-dir .*: give one" "execute --mwq with --mwq-dir: exit 2" -- \
    "$D2MOE" execute --model tiny-moe --device host --requests 1 --prompt 2 --gen 2 --mwq "$TMP/x.mwq" --mwq-dir "$TMP/mwqd"
expect 2 "the store path is empty" "db info '': exit 2 saying the store path is empty" -- "$D2MOE" db info ""
expect 2 "--name is empty" "calibrate --name '': exit 2 saying so" -- "$D2MOE" calibrate --name ""
# a setting given twice would take the last without a word: refused
expect 2 "sim.budget given twice \(sim.budget=1G, then sim.budget=2G\)" "simulate --set sim.budget twice: exit 2" -- \
    "$D2MOE" simulate --model llama-moe-3.5b --device env2 --set sim.budget=1G --set sim.budget=2G
expect 2 "sim.requests given twice \(sim.requests=4, then sim.requests=8\)" "simulate --requests and --set sim.requests: exit 2" -- \
    "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 4 --set sim.requests=8
# a profile name that is not UTF-8 text is refused at file:line (it is stored and printed)
sed "s/^name = .*/name = caf$(printf '\377')/" "$D2_SRCDIR/experiments/devices/env2.ini" > "$TMP/nonutf8.ini"
expect 2 "nonutf8.ini:[0-9]+: name: byte 4 is not UTF-8 text" "a device name of bytes that are not UTF-8: exit 2 at file:line" -- "$D2MOE" show device "$TMP/nonutf8.ini"
sed "s/^name = .*/name = caf$(printf '\303\251')/" "$D2_SRCDIR/experiments/devices/env2.ini" > "$TMP/utf8.ini"
"$D2MOE" show device "$TMP/utf8.ini" > /dev/null; ok $? "  a UTF-8 name (cafe with an acute e) is taken"
expect 2 "--x given twice" "plot --x twice: exit 2 (the last was taken)" -- "$D2MOE" plot --sweep t --x a --x b --y c -o "$TMP/x2.svg"
printf '# a reading with nothing in it\n' > "$TMP/emptyreading.ini"
expect 2 "emptyreading.ini: no settings" "--readings of a file without settings: exit 2" -- \
    "$D2MOE" simulate --model llama-moe-3.5b --device env2 --readings "$TMP/emptyreading.ini"
mkdir -p "$TMP/emptyplots" && : > "$TMP/emptyplots/figures.ini"
expect 2 "figures.ini: no figures" "plot list of an empty figures.ini: exit 2" -- "$D2MOE" plot list --plots "$TMP/emptyplots"
expect 2 "--readings nope: reading 'nope': no such profile" "audit --readings NOPE: names the option, exit 2" -- \
    "$D2MOE" audit --claims "$D2_SRCDIR/experiments/paper-claims.ini" --readings nope --db "$TMP/noaudit.db"
[ ! -e "$TMP/noaudit.db" ]; ok $? "  no store created"
# an option that takes a value, given twice, is refused naming it (exit 2,
# one line, before any work): the last one was taken without a word.  One
# place (cli_getopt_long) does it for every command; the options --help
# shows with "..." repeat, --set with different keys (one key twice is
# refused naming the key), and a flag twice is the same thing said twice
SIM="simulate --model llama-moe-3.5b --device env1 --requests 1 --prompt 2 --gen 2"
# shellcheck disable=SC2086
expect 2 "^d2moe simulate: --db \(-D\) given twice: give it once" "simulate --db twice: exit 2 naming --db" -- \
    "$D2MOE" $SIM --db "$TMP/twice1.db" --db "$TMP/twice2.db"
[ ! -e "$TMP/twice1.db" ] && [ ! -e "$TMP/twice2.db" ]; ok $? "  and no store created"
# shellcheck disable=SC2086
expect 2 "^d2moe simulate: --policy \(-p\) given twice" "simulate --policy twice: exit 2" -- "$D2MOE" $SIM --policy d2moe-v1 --policy hobbit
# shellcheck disable=SC2086
"$D2MOE" $SIM --set sim.budget=2G --set sim.plan=hebf --json --json > /dev/null; ok $? "  simulate: two --set of different keys and --json twice: exit 0"
expect 2 "^d2moe execute: --model \(-m\) given twice" "execute --model twice: exit 2" -- \
    "$D2MOE" execute --model tiny-moe --model llama-moe-3.5b --device host --requests 1 --prompt 2 --gen 2
expect 2 "^d2moe execute: sim.prompt given twice \(sim.prompt=2, then sim.prompt=4\)" "execute --set of one key twice: exit 2" -- \
    "$D2MOE" execute --model tiny-moe --device host --requests 1 --set sim.prompt=2 --set sim.prompt=4 --gen 2
printf '[sweep]\nname = tw\nmodel = llama-moe-3.5b\ndevice = env1\nsim.requests = 1\nsim.prompt = 2\nsim.gen = 2\n' > "$TMP/tw.ini"
expect 2 "^d2moe sweep: --jobs \(-j\) given twice" "sweep -j and --jobs: exit 2 naming --jobs" -- "$D2MOE" sweep "$TMP/tw.ini" -j 1 --jobs 2 --db "$TMP/tw.db"
expect 2 "^d2moe sweep: --db \(-d\) given twice" "sweep --db twice: exit 2" -- "$D2MOE" sweep "$TMP/tw.ini" --db "$TMP/tw.db" --db "$TMP/tw2.db"
expect 2 "^d2moe sweep: sim.prompt given twice \(sim.prompt=2, then sim.prompt=4\)" "sweep --set of one key twice: exit 2 (the last won)" -- \
    "$D2MOE" sweep "$TMP/tw.ini" --set sim.prompt=2 --set sim.prompt=4 --db "$TMP/tw.db"
[ ! -e "$TMP/tw.db" ] && [ ! -e "$TMP/tw2.db" ]; ok $? "  and no store created"
"$D2MOE" sweep "$TMP/tw.ini" --set sim.prompt=4 --set sim.gen=4 --quiet --quiet --db "$TMP/tw.db" > /dev/null 2>&1 &&
    "$D2MOE" export --db "$TMP/tw.db" --format json | jq -e '.[0]["sim.prompt"] == "4" and .[0]["sim.gen"] == "4"' > /dev/null
ok $? "  sweep: two --set of different keys (and --quiet twice) both apply"
expect 2 "^d2moe sweep: readings given twice \(--readings datasheet, then --set readings=none\)" "sweep --readings with --set readings=: exit 2 (one was dropped)" -- \
    "$D2MOE" sweep "$TMP/tw.ini" --readings datasheet --set readings=none --db "$TMP/tw3.db"
[ ! -e "$TMP/tw3.db" ]; ok $? "  and no store created"
expect 2 "^d2moe reproduce: --set readings=none: the reading of every run is --readings NAME .*: give --readings none" \
    "reproduce --set readings=: exit 2 naming --readings (it was overridden by the default reading)" -- "$D2MOE" reproduce --set readings=none --db "$TMP/r0.db"
expect 2 "^d2moe quantize: --output \(-o\) given twice" "quantize --output and -o: exit 2 naming --output" -- \
    "$D2MOE" quantize --input "$TMP/none.npy" --output "$TMP/a.mwq" -o "$TMP/b.mwq"
expect 2 "^d2moe quantize: mwq.levels given twice \(mwq.levels=2, then mwq.levels=3\)" "quantize --set of one key twice: exit 2" -- \
    "$D2MOE" quantize --input "$TMP/none.npy" --set mwq.levels=2 --set mwq.levels=3
expect 2 "^d2moe calibrate: --seed given twice" "calibrate --seed twice: exit 2" -- "$D2MOE" calibrate --seed 1 --seed 2 -o "$TMP/cal.ini"
[ ! -e "$TMP/cal.ini" ]; ok $? "  and nothing measured or written"
expect 2 "^d2moe plot: --db \(-d\) given twice" "plot --db and -d: exit 2 naming --db" -- "$D2MOE" plot all --db "$TMP/a.db" -d "$TMP/b.db"
expect 2 "^d2moe plot: --variant given twice" "plot --variant twice: exit 2 (a long-only option)" -- "$D2MOE" plot all --variant a --variant b
expect 2 "^d2moe report: --out \(-o\) given twice" "report -o twice: exit 2" -- "$D2MOE" report -o "$TMP/a.html" -o "$TMP/b.html"
expect 2 "^d2moe export: --format \(-f\) given twice" "export --format twice: exit 2" -- "$D2MOE" export --format csv --format json
expect 2 "^d2moe db: info: expected one FILE" "db info with two files: exit 2" -- "$D2MOE" db info "$TMP/a.db" "$TMP/b.db"
expect 2 "^d2moe: --profiles given twice: give it once" "the global --profiles twice: exit 2" -- \
    "$D2MOE" --profiles "$TMP" --profiles "$D2_SRCDIR/experiments" db info "$TMP/a.db"
T2="$D2_SRCDIR/traces/mixtral-8x7b.r2.p16.d32.s1.d2t"
expect 2 "^d2moe trace import: --format \(-f\) given twice" "trace import --format twice: exit 2" -- \
    "$D2MOE" trace import --format csv --format mixtral-jsonl "$D2_SRCDIR/tests/data/trace/good.csv" -o "$TMP/ti.d2t"
expect 2 "^d2moe trace gen: --seed given twice" "trace gen --seed twice: exit 2" -- "$D2MOE" trace gen --model mixtral-8x7b --seed 1 --seed 2 -o "$TMP/tg.d2t"
expect 2 "^d2moe trace gen: gen.requests given twice \(gen.requests=1, then gen.requests=2\)" "trace gen --set of one key twice: exit 2" -- \
    "$D2MOE" trace gen --model mixtral-8x7b --set gen.requests=1 --set gen.requests=2 -o "$TMP/tg.d2t"
[ ! -e "$TMP/tg.d2t" ]; ok $? "  and no trace written"
"$D2MOE" trace gen --model mixtral-8x7b --set gen.requests=1 --set gen.layers=2 -o "$TMP/tg.d2t" > /dev/null &&
    "$D2MOE" trace info "$TMP/tg.d2t" | grep -Eq '^layers += 2$'
ok $? "  trace gen: two --set of different keys both apply"
expect 2 "^d2moe trace stats: --language given twice" "trace stats --language twice: exit 2" -- "$D2MOE" trace stats --language en --language de "$T2"
"$D2MOE" trace stats --json --json "$T2" | jq -e . > /dev/null; ok $? "  trace stats --json twice: exit 0"
expect 2 "^d2moe show: --group \(-g\) given twice" "show --group twice: exit 2" -- "$D2MOE" show model mixtral-8x7b --group 64 -g 128
expect 2 "^d2moe show: model.layers given twice \(model.layers=2, then model.layers=3\)" "show --set of one key twice: exit 2 (the last won)" -- \
    "$D2MOE" show model mixtral-8x7b --set model.layers=2 --set model.layers=3
"$D2MOE" show model mixtral-8x7b --set model.layers=2 --set model.experts=4 | grep -Eq '^experts += 4 '; ok $? "  show: two --set of different keys: exit 0"
expect 2 "^d2moe reproduce: --db \(-d\) given twice" "reproduce --db twice: exit 2" -- "$D2MOE" reproduce --db "$TMP/r1.db" --db "$TMP/r2.db"
expect 2 "^d2moe reproduce: device.flash_bw given twice \(device.flash_bw=7G, then device.flash_bw=8G\)" "reproduce --set of one key twice: exit 2" -- \
    "$D2MOE" reproduce --db "$TMP/r1.db" --set device.flash_bw=7G --set device.flash_bw=8G
[ ! -e "$TMP/r1.db" ]; ok $? "  and no store created"
expect 2 "^d2moe audit: --claims \(-c\) given twice" "audit --claims twice: exit 2" -- \
    "$D2MOE" audit --claims "$D2_SRCDIR/experiments/paper-claims.ini" --claims "$D2_SRCDIR/tests/data/audit-claims.ini"
expect 2 "^d2moe eval: --seqs \(-n\) given twice" "eval --seqs twice: exit 2" -- "$D2MOE" eval --input "$TMP/syn.bin" --seqs 1 --seqs 2
"$D2MOE" eval --write-synthetic "$TMP/syn.bin" > /dev/null &&
    "$D2MOE" eval --input "$TMP/syn.bin" --seqs 1 --len 4 --preset v1 --preset v2 > "$TMP/ev.txt" && grep -q '^v1 ' "$TMP/ev.txt" && grep -q '^v2 ' "$TMP/ev.txt"
ok $? "  eval --preset twice (it repeats): both presets run"
expect 2 "^d2moe validate: --rounds \(-n\) given twice" "validate --rounds twice: exit 2" -- "$D2MOE" validate --from "$TMP/v.db" --rounds 3 --rounds 4
expect 2 "^d2moe bench sim: --reps \(-n\) given twice" "bench sim --reps twice: exit 2" -- "$D2MOE" bench sim --reps 1 -n 2
expect 2 "^d2moe bench kernels: --threads \(-t\) given twice" "bench kernels --threads twice: exit 2" -- "$D2MOE" bench kernels --threads 1 --threads 2
done_testing
