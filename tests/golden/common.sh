# common.sh - shared by tests/golden/update.sh and tests/golden.sh (sourced):
# the golden file name of a case and the metrics of one run.
# golden_name ARGS...: the options, in order, as a file name, e.g.
#   mixtral-8x7b.env1.d2moe-v1.r4.p16.g16.trace-mixtral-8x7b.r2.p16.d32.s1.mem-lru
golden_name() {
    n=""; routing=gen
    while [ $# -gt 0 ]; do
        o=$1; v=$2; shift 2
        case $o in
            --model|--device|--policy) p=$v ;;
            --requests) p=r$v ;;
            --prompt) p=p$v ;;
            --gen) p=g$v ;;
            --seed) p=s$v ;;
            --budget) p=M$v ;;
            --trace) routing=trace; p=trace-$(basename "$v" .d2t) ;;
            --set) p=$(printf '%s' "${v#*.}" | tr '=' '-') ;;
            *) echo "golden_name: unknown option $o" >&2; return 2 ;;
        esac
        n=${n:+$n.}$p
    done
    [ $routing = gen ] && n=$n.gen
    printf '%s.golden\n' "$n"
}
# golden_run D2MOE SRCDIR ARGS...: the run's status, reason and metrics, one
# "name value" a line, in the order d2moe prints them (params and the reading's
# name left out: the reading is part of the case, the reading's settings are
# params; plan_overhead_s is wall-clock time: its value is written as
# "wall-clock").
golden_run() {
    bin=$1; src=$2; shift 2
    set -- $(for a in "$@"; do case $a in traces/*) printf '%s\n' "$src/$a" ;; *) printf '%s\n' "$a" ;; esac; done)
    "$bin" simulate "$@" --json | jq -r 'del(.params, .reading) | to_entries[] | "\(.key) \(.value)"' |
        sed 's/^plan_overhead_s .*/plan_overhead_s wall-clock/'
}
