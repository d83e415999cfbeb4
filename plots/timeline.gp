# timeline.gp - `d2moe plot timeline FILE.csv`: a Gantt chart of a
# simulator timeline (CSV: start_ns,end_ns,queue,layer,expert,level,tokens;
# written by `d2moe simulate --timeline`).  One row per queue (I/O above,
# compute below), one bar per record, coloured by bit level (grey: work
# that is not an expert's, e.g. attention).  d2moe sets: datafile, figtitle.
load plotdir.'/style.gp'
set datafile separator ','
set ytics ('compute' 0, 'I/O' 1)
set yrange [-0.6:1.6]
set grid xtics lc rgb '#e0e0e0'
set xlabel 'simulated time (ms)'
set key outside right top
levelcolor(level) = level == 0 ? 0x999999 : level == 1 ? 0x0072B2 : level == 2 ? 0xD55E00 : level == 3 ? 0x009E73 : level == 4 ? 0xCC79A7 : 0xE69F00
plot datafile every ::1 using (($1 + $2) / 2e6):(strcol(3) eq 'io' ? 1 : 0):(($2 - $1) / 2e6):(0.35):(levelcolor($6)) \
         with boxxyerror fs solid 0.9 noborder lc rgb variable notitle, \
     NaN with boxes fs solid lc rgb '#999999' title 'not an expert', \
     NaN with boxes fs solid lc rgb '#0072B2' title 'level 1', \
     NaN with boxes fs solid lc rgb '#D55E00' title 'level 2', \
     NaN with boxes fs solid lc rgb '#009E73' title 'level 3', \
     NaN with boxes fs solid lc rgb '#CC79A7' title 'level 4'
