# Beyond the paper (issue 15): each system's cache policy against belady on
# the same routing: extra bytes loaded, percent, against the budget; one
# line per system.  0 = as good as the offline optimum of eviction.
load plotdir.'/style.gp'
# ten systems: two more line types than style.gp's eight
set linetype 9 lc rgb '#7F7F7F' lw 2 pt 12 ps 1.1
set linetype 10 lc rgb '#8C510A' lw 2 pt 3 ps 1.1
set linetype cycle 10
set xlabel 'expert memory budget M (MB); points shifted a few MB per system so equal lines stay visible'
set ylabel 'bytes loaded over belady (%)'
set key below maxrows 4 font ',9' width -2
set xzeroaxis lt 1 lc rgb '#888888'
dx(i) = (i - (nseries - 1) / 2.0) * 12
plot for [i = 0:nseries - 1] datafile index i using ($2 + dx(i)):3 with linespoints lt (i + 1) dashtype i % 4 + 1 title word(titles, i + 1)
