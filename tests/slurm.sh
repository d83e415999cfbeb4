#!/bin/sh
# slurm.sh - a sweep as a real Slurm job array (one shard per task) plus a
# dependent merge job, on a one-node cluster started on this machine; the
# merged store must equal an unsharded run.  SKIP unless slurm-wlm and munge
# are installed and we are root (.ci/run installs them when it can).
. "${D2_SRCDIR:-.}/tests/lib.sh"
missing=""
[ "$(id -u)" -eq 0 ] || missing="$missing root"
command -v slurmctld >/dev/null || missing="$missing slurm-wlm (slurmctld)"
command -v munged >/dev/null || missing="$missing munge (munged)"
command -v sqlite3 >/dev/null || missing="$missing sqlite3"
if [ -n "$missing" ]; then
    skip "missing:$missing"; done_testing; exit 0
fi
if pgrep -x slurmctld >/dev/null; then skip "a slurmctld is already running here"; done_testing; exit 0; fi
cl="$D2_SRCDIR/experiments/slurm/local-cluster.sh"
trap '"$cl" stop "$TMP/cluster" >/dev/null 2>&1; rm -rf "$TMP"' EXIT
conf=$("$cl" start "$TMP/cluster" | sed -n 's/^SLURM_CONF=//p'); ok $? "one-node Slurm cluster started"
export SLURM_CONF="$conf"
cat > "$TMP/s.ini" <<'SPEC'
[sweep]
name = slurm
model = llama-moe-3.5b
device = env1
sim.policy = d2moe-v1, moqe-dynaio-int4
sim.budget = 400M..1600M:400M
sim.requests = 4
sim.prompt = 8
sim.gen = 8
SPEC
timeout 300 "$D2_SRCDIR/experiments/slurm/run-sweep.sh" "$TMP/s.ini" "$TMP/merged.db" 4 "$D2MOE" > "$TMP/run.out" 2>&1
ok $? "sbatch array of 4 shards + merge job finished"
"$D2MOE" sweep "$TMP/s.ini" --db "$TMP/single.db" --quiet
q="SELECT j.job_hash, m.name, quote(m.value) FROM sweep_jobs j JOIN metrics m ON m.run_id = j.run_id WHERE m.name NOT LIKE '%overhead%' ORDER BY 1, 2"
[ "$(sqlite3 "$TMP/merged.db" "$q" | md5sum)" = "$(sqlite3 "$TMP/single.db" "$q" | md5sum)" ]; ok $? "merged Slurm shards = one unsharded run"
[ "$(sqlite3 "$TMP/merged.db" "SELECT count(*) FROM runs")" -eq 8 ]; ok $? "8 runs, no duplicates"
ls "$TMP/merged.db.shards"/shard-*.db | wc -l | grep -q '^4$'; ok $? "4 shard stores, one per array task"
done_testing
