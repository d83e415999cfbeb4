# Throughput vs estimated perplexity per bit-routing policy (points: budgets).
load plotdir.'/style.gp'
set xlabel 'estimated WikiText2 perplexity (lower is better)'
set ylabel 'throughput (generated tokens/s)'
set yrange [0:*]
set key below maxrows 3 font ',9'
# one point per (policy, budget), not joined: the legend names each policy's
# budgets, and each point carries its budget M in MB (under the fitted rates
# a policy's budgets give nearly the same point: the labels then stack)
plot for [i = 0:nseries - 1] datafile index i using 2:3 with points lt (i + 1) ps 1.4 title word(titles, i + 1), \
     for [i = 0:nseries - 1] datafile index i using 2:3:(sprintf('%.0f', $4)) with labels left offset 0.9, (i % 3 - 1) * 0.7 \
         font ',7' tc lt (i + 1) notitle
