# Validation: predicted against measured makespan, one series per planner,
# with the identity line and the issue's 15% band.
load plotdir.'/style.gp'
set xlabel 'measured makespan on this host (s)'
set ylabel 'simulated makespan (s)'
set xrange [0:*]
set yrange [0:*]
set size ratio -1
plot for [i = 0:nseries - 1] datafile index i using 2:3 with points lt (i + 1) title word(titles, i + 1), \
     x with lines lc rgb '#808080' dt 1 title 'exact', \
     1.15 * x with lines lc rgb '#b0b0b0' dt 2 title '+15%', \
     0.85 * x with lines lc rgb '#b0b0b0' dt 2 title '-15%'
