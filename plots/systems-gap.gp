# Beyond the paper: each system's cache policy against belady on
# the same routing: extra bytes loaded, percent, against the budget; one
# line per system.  0 = as good as the offline optimum of eviction.
load plotdir.'/style.gp'
# more systems than style.gp's eight line types
set linetype 9 lc rgb '#7F7F7F' lw 2 pt 12 ps 1.1
set linetype 10 lc rgb '#8C510A' lw 2 pt 3 ps 1.1
set linetype cycle 13
# thirteen systems since issue 15's last ones: three more
set linetype 11 lc rgb '#01665E' lw 2 pt 14 ps 1.1
set linetype 12 lc rgb '#C51B7D' lw 2 pt 10 ps 1.1
set linetype 13 lc rgb '#4D9221' lw 2 pt 1 ps 1.1
# one budget (the quick grid): one column per system at that budget
stats datafile using 2 nooutput
onebudget = (STATS_min == STATS_max)
budget1 = STATS_min
if (onebudget) {
    set xlabel sprintf('one column per system, all at M = %g MB (the only budget of this grid; see the key)', budget1)
    set xrange [-0.6:nseries - 0.4]
    unset xtics
} else {
    set xlabel 'expert memory budget M (MB); points shifted a few MB per system so equal lines stay visible'
}
set ylabel 'bytes loaded over belady (%)'
set key below maxrows 4 font ',9' width -2
set xzeroaxis lt 1 lc rgb '#888888'
# 0 = as good as belady: the axis starts there (below 0 only if some value is)
stats datafile using 3 nooutput
set yrange [(STATS_min < 0 ? STATS_min * 1.1 : 0):STATS_max * 1.1 + 1e-9]
dx(i) = (i - (nseries - 1) / 2.0) * 12
xat(i, m) = onebudget ? i : m + dx(i)
plot for [i = 0:nseries - 1] datafile index i using (xat(i, $2)):3 with linespoints lt (i + 1) dashtype i % 4 + 1 title word(titles, i + 1)
