# Throughput vs estimated perplexity per bit-routing policy (points: budgets).
load plotdir.'/style.gp'
set xlabel 'estimated WikiText2 perplexity (lower is better)'
set ylabel 'throughput (generated tokens/s)'
set yrange [0:*]
set key below maxrows 3 font ',9'
# One point per (policy, budget): the colour is the policy, the marker the
# budget M (the same marker for the same budget in every policy; the key
# lists both).  Under the fitted rates a policy's budgets give nearly the
# same point, so the markers sit on each other; text labels per point ran
# into the neighbouring policies' (until 2026-12-08).
array bmb[64]
nb = 0
do for [i = 0:nseries - 1] {
    stats datafile index i using 4 nooutput
    do for [r = 0:STATS_records - 1] {
        stats datafile index i every ::r::r using 4 nooutput
        _new = 1
        do for [k = 1:nb] { if (abs(bmb[k] - STATS_max) < 0.5) { _new = 0 } }
        if (_new && nb < 64) { nb = nb + 1; bmb[nb] = STATS_max }
    }
}
# the budgets in ascending order (insertion sort of a handful)
do for [k = 2:nb] {
    _v = bmb[k]; _j = k - 1
    while (_j >= 1 && bmb[_j] > _v) { bmb[_j + 1] = bmb[_j]; _j = _j - 1 }
    bmb[_j + 1] = _v
}
bpts = '6 4 8 12 10 14 1 2 3'
bpt(mb) = sum [k = 1:nb] (abs(bmb[k] - mb) < 0.5 ? word(bpts, (k - 1) % words(bpts) + 1) + 0 : 0)
set offsets 0.3, 0.3, 0, 0
# (a marker chosen per point has no sample in the key: each policy's key
# entry is a bar of its colour)
plot for [i = 0:nseries - 1] datafile index i using 2:3:(bpt($4)) with points lt (i + 1) pt variable ps 1.8 lw 2 notitle, \
     for [i = 0:nseries - 1] NaN with lines lt (i + 1) lw 6 title word(titles, i + 1), \
     for [k = 1:nb] NaN with points pt (word(bpts, (k - 1) % words(bpts) + 1) + 0) ps 1.4 lw 2 lc rgb '#333333' \
         title sprintf('M = %.0f MB', bmb[k])
