# Fig. 13: planning overhead vs requests.
load plotdir.'/style.gp'
set xlabel 'concurrent requests R'
set ylabel 'planning time, whole run (ms, wall clock)'
set yrange [0:*]
load plotdir.'/lines.gp'
