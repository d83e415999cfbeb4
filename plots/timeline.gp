# timeline.gp - `d2moe plot timeline FILE.csv`: a Gantt chart of a
# simulator timeline (CSV: start_ns,end_ns,queue,layer,expert,level,tokens;
# written by `d2moe simulate --timeline`).  One row per queue (I/O above,
# compute below), one bar per record, coloured by bit level (grey: work
# that is not an expert's, e.g. attention).  d2moe sets: datafile, figtitle.
load plotdir.'/style.gp'
set datafile separator ','
# the key lists the levels the timeline has (a 3-level system's key had a
# "level 4" until 2026-12-08); levels above 5 share the last colour
# (before the ranges below: stats keeps only values inside them)
stats datafile every ::1 using 6 nooutput
maxlevel = int(STATS_max)
nkey = maxlevel < 5 ? maxlevel : 5
set ytics ('compute' 0, 'I/O' 1)
set yrange [-0.6:1.6]
set grid xtics lc rgb '#e0e0e0'
set xlabel 'simulated time (ms)'
# d2moe plot timeline --from / --to: the window drawn (-1: the run's start / end)
if (exists('tfrom') && exists('tto')) {
    if (tfrom >= 0 && tto >= 0) { set xrange [tfrom:tto] } else { if (tfrom >= 0) { set xrange [tfrom:*] } else { if (tto >= 0) { set xrange [*:tto] } } }
}
set key outside right top
levelcolor(level) = level == 0 ? 0x999999 : level == 1 ? 0x0072B2 : level == 2 ? 0xD55E00 : level == 3 ? 0x009E73 : level == 4 ? 0xCC79A7 : 0xE69F00
plot datafile every ::1 using (($1 + $2) / 2e6):(strcol(3) eq 'io' ? 1 : 0):(($2 - $1) / 2e6):(0.35):(levelcolor($6)) \
         with boxxyerror fs solid 0.9 noborder lc rgb variable notitle, \
     NaN with boxes fs solid lc rgb '#999999' title 'not an expert', \
     for [k = 1:nkey] NaN with boxes fs solid lc rgb levelcolor(k) \
         title (k == 5 && maxlevel > 5 ? 'levels 5+' : sprintf('level %d', k))
