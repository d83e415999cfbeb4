# Fig. 3: expert I/O, compute and total latency vs requests.
load plotdir.'/style.gp'
set xlabel 'concurrent requests R'
set ylabel 'time to serve the whole batch (s, simulated)'
set yrange [0:*]
load plotdir.'/lines.gp'
