#!/bin/bash
# local-cluster.sh start|stop DIR - a real one-node Slurm cluster on this
# machine (Debian slurm-wlm + munge, as root), for testing sweeps as job
# arrays.  All state lives in DIR; `start` prints the SLURM_CONF to export.
# Follows ../shared/notes/slurm-local.md (verified on these machines).
set -euo pipefail
cmd=$1; dir=$(realpath -m "$2")
conf="$dir/slurm.conf"
case "$cmd" in
start)
    [ "$(id -u)" -eq 0 ] || { echo "local-cluster.sh: needs root" >&2; exit 2; }
    command -v slurmctld >/dev/null && command -v munged >/dev/null || { echo "local-cluster.sh: slurm-wlm and munge are not installed" >&2; exit 2; }
    mkdir -p "$dir"/{state,spool,log,run}
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        if [ ! -s /etc/munge/munge.key ]; then
            mkdir -p /etc/munge
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
        chown munge:munge /etc/munge/munge.key 2>/dev/null || true
        chmod 400 /etc/munge/munge.key
        mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
        munged --force --pid-file="$dir/run/munged.pid" 2>/dev/null || munged --force
        sleep 1
        [ -f "$dir/run/munged.pid" ] || pgrep -n munged > "$dir/run/munged.pid"
    fi
    host=$(hostname -s)
    mem=$(( $(free -m | awk '/^Mem:/{print $2}') - 512 ))
    cat > "$conf" <<CONF
ClusterName=d2moe-local
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
NodeName=$host CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF=$conf
    slurmctld -f "$conf"
    slurmd -f "$conf"
    for _ in $(seq 1 30); do
        sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)' && { echo "SLURM_CONF=$conf"; exit 0; }
        sleep 1
    done
    echo "local-cluster.sh: the node did not become idle (see $dir/log)" >&2
    exit 1
    ;;
stop)
    for p in slurmd slurmctld munged; do
        f="$dir/run/$p.pid"
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    sleep 1
    ;;
*) echo "usage: local-cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
