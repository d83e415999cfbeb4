# Throughput vs estimated perplexity per bit-routing policy (points: budgets).
load plotdir.'/style.gp'
set xlabel 'estimated WikiText2 perplexity (lower is better)'
set ylabel 'throughput (generated tokens/s)'
set yrange [0:*]
set key below maxrows 3 font ',9'
# one point per (policy, budget), not joined: the legend names each policy's
# budgets, and each point is labelled with its budget M (MB).  Under the
# fitted rates a policy's budgets give nearly the same point, so the labels
# of a policy's k-th budget are stacked k steps apart (3.5% of the y range,
# by the point's index within its policy, pseudo-column 0) instead of
# printing over each other; series i with i % 3 == 1 put their labels on
# the left of the points, the others on the right, so neighbouring
# policies' labels do not overlap.
stats datafile using 3 nooutput
dy = STATS_max * 0.035
set offsets 0.3, 0.6, 0, 0
plot for [i = 0:nseries - 1] datafile index i using 2:3 with points lt (i + 1) ps 1.4 title word(titles, i + 1), \
     for [i = 0:nseries - 1] datafile index i using 2:($3 + ($0 - 1) * dy):(i % 3 == 1 ? '' : sprintf('%.0f MB', $4)) \
         with labels left offset 1.2, 0 font ',7' tc lt (i + 1) notitle, \
     for [i = 0:nseries - 1] datafile index i using 2:($3 + ($0 - 1) * dy):(i % 3 == 1 ? sprintf('%.0f MB', $4) : '') \
         with labels right offset -1.2, 0 font ',7' tc lt (i + 1) notitle
