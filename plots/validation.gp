# Validation: predicted against measured makespan, one series per planner,
# one point per accepted round of the latest validate session
# (validation.sql), with the identity line and the band of that session's
# verdicts: +-bound_pct (column 4: its stored --bound, else validate's
# default 10; column 5 says which).
load plotdir.'/style.gp'
stats datafile using 4:5 nooutput
bound = STATS_max_x
bandnote = (STATS_max_y > 0) ? "the session's --bound" : "validate's default --bound; none stored"
set title figtitle."\nlatest validate session, accepted rounds; band: ±".sprintf('%g', bound)."% (".bandnote.")" \
    font (strlen(figtitle) > 80 ? (fmt eq 'svg' ? ',11' : ',9') : '')
set xlabel 'measured makespan on this host (s)'
set ylabel 'simulated makespan (s)'
set xrange [0:*]
set yrange [0:*]
set size ratio -1
plot for [i = 0:nseries - 1] datafile index i using 2:3 with points lt (i + 1) title word(titles, i + 1), \
     x with lines lc rgb '#808080' dt 1 title 'exact', \
     (1 + bound / 100.0) * x with lines lc rgb '#b0b0b0' dt 2 title sprintf('+%g%%', bound), \
     (1 - bound / 100.0) * x with lines lc rgb '#b0b0b0' dt 2 title sprintf('-%g%%', bound)
