# Fig. 10: throughput vs memory budget per method (one panel per model x device).
load plotdir.'/style.gp'
set xlabel 'expert memory budget M (MB)'
set ylabel 'throughput (generated tokens/s)'
set yrange [0:*]
load plotdir.'/lines.gp'
