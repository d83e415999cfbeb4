# HEBF (and id order) against the optimal load order, per layer step.
load plotdir.'/style.gp'
set xlabel 'concurrent requests R'
set ylabel 'makespan above optimal, mean per step (%)'
set logscale x 2
set yrange [0:*]
load plotdir.'/lines.gp'
