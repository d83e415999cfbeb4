# Fig. 11a: dense LLaMA2-13B throughput vs requests.
load plotdir.'/style.gp'
set xlabel 'concurrent requests R'
set ylabel 'throughput (generated tokens/s)'
set yrange [0:*]
load plotdir.'/lines.gp'
