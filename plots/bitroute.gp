# Throughput vs estimated perplexity per bit-routing policy (points: budgets).
load plotdir.'/style.gp'
set xlabel 'estimated WikiText2 perplexity (lower is better)'
set ylabel 'throughput (generated tokens/s)'
set yrange [0:*]
# one point per (policy, budget), labelled with the budget: points of one
# policy at different budgets are not joined
plot for [i = 0:nseries - 1] datafile index i using 2:3 with points lt (i + 1) ps 1.4 title word(titles, i + 1), \
     for [i = 0:nseries - 1] datafile index i using 2:3:(sprintf('%.0f', $4)) with labels offset 0.6,0.7 left font ',8' tc lt (i + 1) notitle
