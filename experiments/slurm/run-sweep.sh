#!/bin/bash
# run-sweep.sh SPEC.ini OUT.db N [D2MOE] - run a sweep as a Slurm job array of
# N shards plus a dependent merge job, and wait for it.  Needs sbatch on PATH
# (a real cluster, or local-cluster.sh start on this machine).
set -euo pipefail
spec=$(realpath "$1"); out=$(realpath -m "$2"); n=$3
d2moe=$(realpath "${4:-$(command -v d2moe)}")
here=$(cd "$(dirname "$0")" && pwd)
outdir="$out.shards"
mkdir -p "$outdir"
arr=$(sbatch --parsable --array=0-$((n - 1)) --output="$outdir/task-%a.out" \
      "$here/sweep.sbatch" "$spec" "$outdir" "$d2moe")
arr=${arr%%;*}
echo "submitted array job $arr ($n shards)"
sbatch --wait --parsable --dependency=afterok:"$arr" --output="$outdir/merge.out" \
      "$here/merge.sbatch" "$out" "$outdir" "$d2moe" >/dev/null
echo "merged into $out"
