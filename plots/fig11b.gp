# Fig. 11b: dense LLaMA2-13B peak memory vs requests.
load plotdir.'/style.gp'
set xlabel 'concurrent requests R'
set ylabel 'peak accelerator memory (MB)'
set yrange [0:*]
load plotdir.'/lines.gp'
