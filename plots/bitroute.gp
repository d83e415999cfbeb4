# Throughput vs estimated perplexity per bit-routing policy (points: budgets).
load plotdir.'/style.gp'
set xlabel 'estimated WikiText2 perplexity (lower is better)'
set ylabel 'throughput (generated tokens/s)'
set yrange [0:*]
plot for [i = 0:nseries - 1] datafile index i using 2:3 with linespoints lt (i + 1) title word(titles, i + 1)
