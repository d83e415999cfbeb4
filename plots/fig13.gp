# Fig. 13: HEBF planning overhead per layer step (wall clock, mean of the
# repeats with min..max bars) against requests, next to the simulated time
# of one layer step, on a log axis: planning is negligible when its line
# lies far below the step time.
load plotdir.'/style.gp'
set xlabel 'concurrent requests R'
set ylabel 'time per layer step (ms, log scale)'
set logscale y
set format y '%g'
stats datafile using 6 nooutput
set label 1 sprintf('bars: min..max over %d repeat(s) per point', STATS_max) at graph 0.03, graph 0.6 font ',9'
plot for [i = 0:nseries - 1] datafile index i using 2:3:4:5 with yerrorlines lt (i + 1) dashtype i % 2 + 1 title word(titles, i + 1)
