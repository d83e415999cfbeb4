# Beyond the paper (issue 15): throughput of the serving systems against the
# expert memory budget, one line per system.  Log y (the systems span an
# order of magnitude).  Out-of-memory runs: a cross at the bottom of the
# axis in the system's colour.  Points shifted a few MB per system so equal
# lines stay visible.
load plotdir.'/style.gp'
# thirteen systems: five more line types than style.gp's eight
set linetype 9 lc rgb '#7F7F7F' lw 2 pt 12 ps 1.1
set linetype 10 lc rgb '#8C510A' lw 2 pt 3 ps 1.1
set linetype 11 lc rgb '#01665E' lw 2 pt 14 ps 1.1
set linetype 12 lc rgb '#C51B7D' lw 2 pt 10 ps 1.1
set linetype 13 lc rgb '#4D9221' lw 2 pt 1 ps 1.1
set linetype cycle 13
# one budget (the quick grid): one column per system at that budget, not a
# budget axis the points are spread along
stats datafile using 2 nooutput
onebudget = (STATS_min == STATS_max)
budget1 = STATS_min
stats datafile using (valid(4) ? 1 : 0) nooutput
anyoom = (STATS_max > 0)
if (onebudget) {
    set xlabel sprintf('one column per system, all at M = %g MB (the only budget of this grid; see the key)', budget1)
    set xrange [-0.6:nseries - 0.4]
    unset xtics
} else {
    set xlabel 'expert memory budget M (MB); points shifted a few MB per system so equal lines stay visible'
}
set ylabel 'throughput (generated tokens/s, log scale)'
set logscale y
set format y '%g'
set ytics (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500) # 1-2-5 on the log axis
set key below horizontal maxcols 3 font ',9' width -11 spacing 1.0
stats datafile using 3 nooutput
ymin = STATS_min > 0 ? STATS_min / 2.0 : 0.01
set yrange [ymin:STATS_max * 2]
dx(i) = (i - (nseries - 1) / 2.0) * 12
xat(i, m) = onebudget ? i : m + dx(i)
plot for [i = 0:nseries - 1] datafile index i using (xat(i, $2)):3 with linespoints lt (i + 1) dashtype i % 4 + 1 title word(titles, i + 1), \
     for [i = 0:nseries - 1] datafile index i using (xat(i, $2)):($4 * ymin * 1.15) with points lt (i + 1) pt 2 ps 1.8 lw 2 notitle, \
     NaN with points lc rgb '#000000' pt 2 ps 1.8 lw 2 title (anyoom ? 'x = out of memory at this M' : '')
