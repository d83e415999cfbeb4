# HEBF (and id order) against the optimal load order, per layer step,
# across flash bandwidth.
load plotdir.'/style.gp'
set xlabel 'flash read bandwidth (GB/s)'
set ylabel 'makespan above the optimal order, mean per layer step (percent)'
set logscale x 2
set yrange [0:*]
load plotdir.'/lines.gp'
