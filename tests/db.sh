#!/bin/sh
# db.sh - the results store through the CLI: two processes writing runs into
# the same file at the same time lose nothing; db info reports the schema
# version and row counts; a foreign SQLite file is refused and not changed.
. "${D2_SRCDIR:-.}/tests/lib.sh"
command -v sqlite3 >/dev/null || { skip "sqlite3 command-line tool not installed"; done_testing; exit 0; }
writer() {
    i=0
    while [ $i -lt 12 ]; do
        "$D2MOE" simulate --model llama-moe-3.5b --device env1 --policy d2moe-v1 --requests 2 --prompt 4 --gen 4 \
            --seed "$1$i" --db "$TMP/shared.db" > /dev/null || return 1
        i=$((i + 1))
    done
}
writer 1 & a=$!
writer 2 & b=$!
wait $a; ra=$?
wait $b; rb=$?
[ $ra -eq 0 ] && [ $rb -eq 0 ]; ok $? "two concurrent writer processes succeed"
[ "$(sqlite3 "$TMP/shared.db" "SELECT count(*) FROM runs")" -eq 24 ]; ok $? "all 24 runs are stored"
[ "$(sqlite3 "$TMP/shared.db" "SELECT count(DISTINCT seed) FROM runs")" -eq 24 ]; ok $? "24 distinct runs, none duplicated"
[ "$(sqlite3 "$TMP/shared.db" "SELECT count(*) FROM runs r WHERE NOT EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = r.id)")" -eq 0 ]; ok $? "every run has its metrics"
"$D2MOE" db info "$TMP/shared.db" > "$TMP/info"; ok $? "db info"
grep -Eq '^schema version: [0-9]+' "$TMP/info"; ok $? "db info prints the schema version"
grep -Eq '^runs +24$' "$TMP/info"; ok $? "db info counts 24 runs"
# export --variant without --sweep: a variant the store lacks is an error, not an empty table
expect 2 "shared.db: the store has no runs of variant \"nosuch\"; its variants: base" "export --variant of no run: exit 2 naming the store's variants" -- \
    "$D2MOE" export --db "$TMP/shared.db" --variant nosuch
expect 2 "no runs of variant \"nosuch\"" "export --variant of no run, JSON: exit 2" -- "$D2MOE" export --db "$TMP/shared.db" --variant nosuch --format json
[ "$("$D2MOE" export --db "$TMP/shared.db" --variant nosuch 2>/dev/null | grep -c '')" -eq 0 ]; ok $? "and prints no table"
[ "$("$D2MOE" export --db "$TMP/shared.db" --variant base --format json 2>/dev/null | jq length)" = 24 ]; ok $? "export --variant base: the 24 runs"
sqlite3 "$TMP/foreign.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1);"
before=$(md5sum < "$TMP/foreign.db")
expect 2 "foreign.db: not a d2moe results database \(an SQLite database d2moe did not create: 1 table, schema version 0" "a foreign SQLite file is refused (exit 2)" -- "$D2MOE" simulate --model llama-moe-3.5b --device env1 --requests 1 --prompt 2 --gen 2 --db "$TMP/foreign.db"
[ "$(md5sum < "$TMP/foreign.db")" = "$before" ]; ok $? "and left unchanged"
# a --db that is not a d2moe store is bad input: exit 2 and one line naming the file, for every command that opens one
printf 'just some text\n' > "$TMP/text.db"
: > "$TMP/empty.db"
printf '[sweep]\nname = t1\nmodel = llama-moe-3.5b\ndevice = env1\nsim.requests = 1\nsim.prompt = 2\nsim.gen = 2\n' > "$TMP/t1.ini"
for f in text foreign; do
    case $f in text) re="text.db: not an SQLite database" ;; *) re="foreign.db: not a d2moe results database \(an SQLite database d2moe did not create" ;; esac
    sum=$(md5sum < "$TMP/$f.db")
    expect 2 "$re" "$f file: db info exits 2" -- "$D2MOE" db info "$TMP/$f.db"
    expect 2 "$re" "$f file: export exits 2" -- "$D2MOE" export --db "$TMP/$f.db"
    expect 2 "$re" "$f file: sweep exits 2" -- "$D2MOE" sweep "$TMP/t1.ini" --db "$TMP/$f.db"
    expect 2 "$re" "$f file: simulate --db exits 2" -- "$D2MOE" simulate --model llama-moe-3.5b --device env1 --requests 1 --prompt 2 --gen 2 --db "$TMP/$f.db"
    expect 2 "$re" "$f file: merge into it exits 2" -- "$D2MOE" merge "$TMP/$f.db" "$TMP/shared.db"
    rm -f "$TMP/m.db"
    expect 2 "$re" "$f file: merge from it exits 2" -- "$D2MOE" merge "$TMP/m.db" "$TMP/$f.db"
    [ "$(md5sum < "$TMP/$f.db")" = "$sum" ]; ok $? "$f file: left unchanged"
done
expect 2 "empty.db: not a d2moe results database \(an empty file or SQLite database: not initialised" "an empty file: db info exits 2" -- "$D2MOE" db info "$TMP/empty.db"
# SQLite files whose schema version (user_version) is 0: db info called
# their tables empty; every command that reads a store says the file is not
# one (or not initialised), exit 2, and leaves it as it was: a plain SQLite
# file with a table, an SQLite file without tables, one with another
# application's id, and one with d2moe's id but never initialised
sqlite3 "$TMP/v0tab.db" "CREATE TABLE t(a);"
sqlite3 "$TMP/v0none.db" "PRAGMA user_version = 0; VACUUM;"
sqlite3 "$TMP/v0app.db" "PRAGMA application_id = 7; CREATE TABLE t(a);"
sqlite3 "$TMP/v0ours.db" "PRAGMA application_id = 1144147269; CREATE TABLE t(a); INSERT INTO t VALUES (1);"
for f in v0tab v0none v0app v0ours; do
    case $f in
    v0tab) re="v0tab.db: not a d2moe results database \(an SQLite database d2moe did not create: 1 table, schema version 0, no d2moe application id\)" ;;
    v0none) re="v0none.db: not a d2moe results database \(an empty file or SQLite database: not initialised" ;;
    v0app) re="v0app.db: not a d2moe results database \(an SQLite database of another application, application_id 7\)" ;;
    *) re="v0ours.db: not a d2moe results database \(d2moe's application id but schema version 0, never initialised, with 1 table of its own\)" ;;
    esac
    sum=$(md5sum < "$TMP/$f.db")
    expect 2 "$re" "$f (user_version 0): db info exits 2 saying it is not a store" -- "$D2MOE" db info "$TMP/$f.db"
    "$D2MOE" db info "$TMP/$f.db" 2>&1 | grep -q "empty$\|^t  *[0-9]"; [ $? -ne 0 ]; ok $? "$f (user_version 0): db info lists no tables"
    expect 2 "$re" "$f (user_version 0): export exits 2" -- "$D2MOE" export --db "$TMP/$f.db"
    expect 2 "$re" "$f (user_version 0): report exits 2" -- "$D2MOE" report --db "$TMP/$f.db" -o "$TMP/$f.html"
    expect 2 "$re" "$f (user_version 0): plot --sweep exits 2" -- "$D2MOE" plot --sweep t1 --x sim.requests --y makespan_s --db "$TMP/$f.db" -o "$TMP/$f.png"
    rm -f "$TMP/m.db"
    expect 2 "$re" "$f (user_version 0): merge from it exits 2" -- "$D2MOE" merge "$TMP/m.db" "$TMP/$f.db"
    [ "$(md5sum < "$TMP/$f.db")" = "$sum" ]; ok $? "$f (user_version 0): left unchanged"
done
# a writer refuses the ones with tables and initialises the one without
for f in v0tab v0app v0ours; do
    expect 2 "$f.db: not a d2moe results database" "$f (user_version 0): simulate --db exits 2" -- \
        "$D2MOE" simulate --model llama-moe-3.5b --device env1 --requests 1 --prompt 2 --gen 2 --db "$TMP/$f.db"
done
"$D2MOE" simulate --model llama-moe-3.5b --device env1 --requests 1 --prompt 2 --gen 2 --db "$TMP/v0none.db" > /dev/null &&
    "$D2MOE" db info "$TMP/v0none.db" | grep -Eq '^runs +1$'
ok $? "an SQLite file without tables: simulate --db initialises it as a store, db info reads it"
# a refused WAL-mode store gets no -wal or -shm beside it: a corrupt store
# (a good one cut to 3000 bytes: its header intact) and another
# application's database in WAL mode (SQLite made both side files to read
# them, also read-only, and a reading connection left them behind)
"$D2MOE" simulate --model llama-moe-3.5b --device env1 --requests 1 --prompt 2 --gen 2 --db "$TMP/cut.db" > /dev/null &&
    [ ! -e "$TMP/cut.db-wal" ] && [ ! -e "$TMP/cut.db-shm" ] && truncate -s 3000 "$TMP/cut.db"
ok $? "a WAL-mode store, cut to 3000 bytes"
sqlite3 "$TMP/fwal.db" "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);" > /dev/null
for f in cut fwal; do
    case $f in cut) re="cut.db: not an SQLite database \(corrupt" ;; *) re="fwal.db: not a d2moe results database \(an SQLite database d2moe did not create" ;; esac
    sum=$(md5sum < "$TMP/$f.db")
    expect 2 "$re" "$f (WAL): export exits 2" -- "$D2MOE" export --db "$TMP/$f.db"
    expect 2 "$re" "$f (WAL): db info exits 2" -- "$D2MOE" db info "$TMP/$f.db"
    expect 2 "$re" "$f (WAL): report exits 2" -- "$D2MOE" report --db "$TMP/$f.db" -o "$TMP/$f.html"
    expect 2 "$re" "$f (WAL): plot --sweep exits 2" -- "$D2MOE" plot --sweep t1 --x sim.requests --y makespan_s --db "$TMP/$f.db" -o "$TMP/$f.png"
    expect 2 "$re" "$f (WAL): simulate --db exits 2" -- "$D2MOE" simulate --model llama-moe-3.5b --device env1 --requests 1 --prompt 2 --gen 2 --db "$TMP/$f.db"
    rm -f "$TMP/m.db"
    expect 2 "$re" "$f (WAL): merge from it exits 2" -- "$D2MOE" merge "$TMP/m.db" "$TMP/$f.db"
    [ "$(md5sum < "$TMP/$f.db")" = "$sum" ] && [ ! -e "$TMP/$f.db-wal" ] && [ ! -e "$TMP/$f.db-shm" ]
    ok $? "$f (WAL): left unchanged, no -wal or -shm created beside it"
done
# a store without runs (shard 1/2 of a one-job grid gets no job) has no runs of any variant, base included;
# without --variant its export is the header row, exit 0 (every run of the store: none)
"$D2MOE" sweep "$TMP/t1.ini" --db "$TMP/none.db" --shard 1/2 > /dev/null 2>&1 && [ "$(sqlite3 "$TMP/none.db" "SELECT count(*) FROM runs")" -eq 0 ]
ok $? "a shard given no job: a store without runs"
expect 2 "none.db: the store has no runs of variant \"nosuch\"; its variants: none \(it has no runs\)" \
    "export --variant on a store without runs: exit 2, as on one with runs" -- "$D2MOE" export --db "$TMP/none.db" --variant nosuch
expect 2 "none.db: the store has no runs of variant \"base\"" "export --variant base on a store without runs: exit 2" -- \
    "$D2MOE" export --db "$TMP/none.db" --variant base --format json
"$D2MOE" export --db "$TMP/none.db" > "$TMP/none.csv" && [ "$(grep -c '' "$TMP/none.csv")" -eq 1 ] && head -1 "$TMP/none.csv" | grep -q '^run_id,'
ok $? "export of a store without runs, no --variant: the header row, exit 0"

# a store a writer holds open, read through a symlink: SQLite keeps the
# -wal/-shm beside the link's target, so the no-side-files check must not
# take the link for an idle store (it read the file alone, without the
# writer's WAL, and refused it as empty)
if command -v python3 >/dev/null; then
    "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --db "$TMP/tmpl.db" > /dev/null
    sqlite3 "$TMP/tmpl.db" .schema > "$TMP/tmpl.sql"
    app=$(sqlite3 "$TMP/tmpl.db" 'PRAGMA application_id'); ver=$(sqlite3 "$TMP/tmpl.db" 'PRAGMA user_version')
    rm -f "$TMP/live.db"*
    python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA wal_autocheckpoint=0")
c.executescript(open(sys.argv[2]).read())
c.execute("PRAGMA application_id=%d" % int(sys.argv[3])); c.execute("PRAGMA user_version=%d" % int(sys.argv[4]))
open(sys.argv[1] + ".ready", "w").close()
time.sleep(20)' "$TMP/live.db" "$TMP/tmpl.sql" "$app" "$ver" & py=$!
    n=0; while [ ! -e "$TMP/live.db.ready" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    ln -s "$TMP/live.db" "$TMP/link.db"
    "$D2MOE" db info "$TMP/link.db" > "$TMP/link.txt" 2>&1 && grep -q "schema version: $ver" "$TMP/link.txt"
    ok $? "db info through a symlink to a store a writer holds open (its data in the WAL): read, not refused"
    kill $py 2> /dev/null; wait $py 2> /dev/null
else
    skip "python3 absent"
fi
# a store whose user_version is negative: a migration from it was tried
# (exit 1 "migration 0 -> 1: ... table runs already exists")
"$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --db "$TMP/neg.db" > /dev/null 2>&1
sqlite3 "$TMP/neg.db" 'PRAGMA user_version=-1'
sum1=$(cksum < "$TMP/neg.db")
expect 2 "neg.db: schema version \(user_version\) -1 is not one d2moe writes" "a store of schema version -1: exit 2 naming it" -- \
    "$D2MOE" simulate --model llama-moe-3.5b --device env2 --requests 1 --prompt 2 --gen 2 --db "$TMP/neg.db"
expect 2 "neg.db: schema version \(user_version\) -1" "db info of it: exit 2" -- "$D2MOE" db info "$TMP/neg.db"
[ "$(cksum < "$TMP/neg.db")" = "$sum1" ] && [ ! -e "$TMP/neg.db-wal" ]; ok $? "... and the file unchanged"
done_testing
