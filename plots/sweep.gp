# sweep.gp - `d2moe plot --sweep NAME --x KEY --y METRIC [--series KEY]`:
# one line per series.  Data columns: series, x (category index when xcat),
# y (NaN unless the run was ok), oom marker (0 for out-of-memory runs),
# x label.  d2moe sets: xlab, ylab, xcat, anyoom, plus style.gp's variables.
load plotdir.'/style.gp'
# a key in bytes (budgets, memory sizes) is drawn in MB
xs = 1
if (!xcat && strstrt(xlab, '(bytes)') > 0) { xs = 1e-6; xlab = xlab[1:strstrt(xlab, '(bytes)') - 1].'(MB)' }
set xlabel xlab
set ylabel ylab
set yrange [0:*]
if (xcat) { set xtics rotate by -30; set xrange [-0.5:*] }
# out-of-memory runs: a cross on the x axis in the series' colour, one
# legend entry for all of them, only when there are any
if (xcat) {
    plot for [i = 0:nseries - 1] datafile index i using 2:3:xtic(5) with linespoints lt (i + 1) title word(titles, i + 1), \
         for [i = 0:nseries - 1] datafile index i using 2:4 with points lt (i + 1) pt 2 ps 1.6 lw 2 notitle, \
         NaN with points lc rgb '#000000' pt 2 ps 1.6 lw 2 title (anyoom ? 'x = out of memory' : '')
} else {
    plot for [i = 0:nseries - 1] datafile index i using ($2 * xs):3 with linespoints lt (i + 1) title word(titles, i + 1), \
         for [i = 0:nseries - 1] datafile index i using ($2 * xs):4 with points lt (i + 1) pt 2 ps 1.6 lw 2 notitle, \
         NaN with points lc rgb '#000000' pt 2 ps 1.6 lw 2 title (anyoom ? 'x = out of memory' : '')
}
