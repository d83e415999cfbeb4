# Fig. 14: ablation bars, one group per step, one bar per model.
load plotdir.'/style.gp'
set style fill solid 0.85 border -1
set boxwidth 0.8 / nseries
set xlabel 'system (each step adds one part)'
set ylabel 'throughput (generated tokens/s)'
set yrange [0:*]
set xrange [-0.6:3.6]
set xtics ('Router' 0, '+MWQ' 1, '+HEBF' 2, '+Budget' 3)
plot for [i = 0:nseries - 1] datafile index i using ($2 - 0.4 + (i + 0.5) * 0.8 / nseries):3 with boxes lt (i + 1) title word(titles, i + 1)
