# Fig. 10: throughput against the expert memory budget, one line per
# method.  Log y: the hold-* systems (every expert resident, budget ignored)
# are an order of magnitude above the budgeted ones.  Out-of-memory runs:
# a cross at the bottom of the axis in the method's colour, with one legend
# entry.  Overlapping lines: each method's points are shifted by 30 MB
# (said in the x label) and drawn with their own marker and dash.
load plotdir.'/style.gp'
dx(i) = (i - (nseries - 1) / 2.0) * 30
# the shift of the outermost methods is said in the label (with 8 methods
# +-105 MB, a third of the 300 MB between budgets; "30 MB per method" alone
# read as a shift of 30 MB)
set xlabel sprintf('expert memory budget M (MB); methods offset 30 MB apart (%+.0f..%+.0f MB) to stay visible', dx(0), dx(nseries - 1))
set ylabel 'throughput (generated tokens/s, log scale)'
set logscale y
set format y '%g'
# 1-2-5 ticks: a panel spanning less than a decade still has numbers to read
set ytics (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
set key below maxrows 3 font ',9' width -2
stats datafile using 3 nooutput
ymin = STATS_min > 0 ? STATS_min / 2.0 : 0.01
set yrange [ymin:STATS_max * 2]
plot for [i = 0:nseries - 1] datafile index i using ($2 + dx(i)):3 with linespoints lt (i + 1) dashtype i % 4 + 1 title word(titles, i + 1), \
     for [i = 0:nseries - 1] datafile index i using ($2 + dx(i)):($4 * ymin * 1.15) with points lt (i + 1) pt 2 ps 1.8 lw 2 title (strstrt(word(titles, i + 1), 'every') ? word(titles, i + 1) : ''), \
     NaN with points lc rgb '#000000' pt 2 ps 1.8 lw 2 title 'x = out of memory at this M'
