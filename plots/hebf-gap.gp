# HEBF (and id order) against the optimal load order, per layer step,
# across flash bandwidth.  Most steps are already optimal, so several series
# lie on 0: each series is shifted a little along the (log) x axis and has
# its own marker, so coinciding lines stay visible.
load plotdir.'/style.gp'
set xlabel 'flash read bandwidth (GB/s); points shifted slightly per series so equal lines stay visible'
set ylabel 'makespan above the optimal order, mean per layer step (%)'
set logscale x 2
# the gap is never negative: tics from 0, the axis a little below it so
# the markers at 0 stay visible
stats datafile using 3 nooutput
ymax = STATS_max > 0 ? STATS_max : 0.001
ystep = 10 ** floor(log10(ymax))
ystep = ymax / ystep < 2 ? ystep / 5 : ymax / ystep < 5 ? ystep / 2 : ystep
set yrange [-0.06 * ymax:1.1 * ymax]
set ytics 0, ystep
set key top right
sx(i) = 2 ** ((i - (nseries - 1) / 2.0) * 0.06)
plot for [i = 0:nseries - 1] datafile index i using ($2 * sx(i)):3 with linespoints lt (i + 1) dashtype i % 4 + 1 ps 1.4 title word(titles, i + 1)
