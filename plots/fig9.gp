# Fig. 9: the I/O and compute queues of the same layer step under four
# strategies (Gantt chart): (a) separate copies and (b) MWQ levels, both
# sequential (load, compute, load, ... in expert id order, no I/O-compute
# overlap: ablate-router, ablate-mwq); (c) MWQ with overlap in HEBF order
# (ablate-hebf); (d) MWQ with overlap in the optimal order.  So (b) vs (c)
# shows overlap, not a load order (experiments/reproduce.ini [fig9];
# docs/reproduction.md, Fig. 9).  Reads the simulator's timelines (CSV: start_ns,
# end_ns, queue, layer, expert, level, tokens) from datadir/<strategy>.csv
# for the four strategies of `timelines` (figures.ini; d2moe requires
# exactly four names for this script and checks each file before gnuplot
# runs), written by `d2moe reproduce`; drawn: the first
# layer step (layer 0, up to the first record of layer 1).  All panels share one time axis (the
# longest step) and one colour key; every panel has its time unit.
load plotdir.'/style.gp'
if (fmt eq 'svg') { set terminal svg size 900,900 dynamic noenhanced font 'Helvetica,12' background rgb 'white' } else { set terminal pngcairo size 900,900 noenhanced font 'Helvetica,10' background rgb 'white' }
set output outfile
set datafile separator ','
names = timelines
array labels[4] = ['(a) no MWQ: separate INT2/3/4 copies, sequential (expert id order, no I/O-compute overlap)', '(b) MWQ levels, sequential (expert id order, no I/O-compute overlap)', '(c) MWQ levels, I/O-compute overlap, HEBF order', '(d) MWQ levels, I/O-compute overlap, optimal order (exhaustive search)']
# level colours: 1 blue, 2 orange, 3 green, 4 purple (in the key only when a
# panel has level 4); work that is not an expert's: dark grey
levelcolor(level) = level == 0 ? 0x404040 : level == 1 ? 0x0072B2 : level == 2 ? 0xD55E00 : level == 3 ? 0x009E73 : 0xCC79A7
# one time axis for all panels: the end of the longest first layer step
xmax = 0
maxlevel = 0
array tends[4]
do for [i = 1:4] {
    f = datadir.'/'.word(names, i).'.csv'
    stats f every ::1 using ($4 == 1 ? $1 : NaN) nooutput
    tend = STATS_min
    tends[i] = tend
    stats f every ::1 using ($4 == 0 && $1 < tend ? $2 / 1e6 : NaN) nooutput
    if (STATS_max > xmax) { xmax = STATS_max }
    stats f every ::1 using ($4 == 0 && $1 < tend ? $6 : NaN) nooutput
    if (STATS_max > maxlevel) { maxlevel = STATS_max }
}
# four panels and a thin strip for the key (a fifth panel of a 5 x 1
# layout left a fifth of the picture blank under the key)
set multiplot title figtitle
ph = 0.215       # a panel's height, of the canvas
ptop = 0.955     # below the figure's title
set ytics ('compute' 0, 'I/O' 1)
set grid xtics lc rgb '#e0e0e0'
set key off
set xrange [0:xmax * 1.02]
set xlabel 'simulated time (ms)' offset 0,0.6
do for [i = 1:4] {
    f = datadir.'/'.word(names, i).'.csv'
    tend = tends[i]
    set origin 0, ptop - i * ph
    set size 1, ph
    set yrange [-0.6:1.6]
    set title labels[i] offset 0,-0.4
    # the work that is not an expert's is a sliver at this scale: say how long it is
    stats f every ::1 using ($4 == 0 && $5 == -1 && $1 < tend ? ($2 - $1) / 1e6 : NaN) nooutput
    set label 2 sprintf('dark sliver at 0: attention + router, %.2f ms', STATS_sum) at first 0, first 0.5 left font ',8' offset 0.5,0
    plot f every ::1 using ($4 == 0 && $1 < tend ? ($1 + $2) / 2e6 : NaN):(strcol(3) eq 'io' ? 1 : 0):(($2 - $1) / 2e6):(0.38):(levelcolor($6)) \
         with boxxyerror fs solid 0.9 noborder lc rgb variable
}
# the one colour key
unset label 2
unset title; unset xlabel; unset ytics; unset border; unset tics; unset grid
set key center center horizontal font ',10' samplen 2
set origin 0, ptop - 4 * ph - 0.08
set size 1, 0.08
set xrange [0:1]; set yrange [0:1]
plot NaN with boxes fs solid lc rgb '#0072B2' title 'level 1', NaN with boxes fs solid lc rgb '#D55E00' title 'level 2', \
     NaN with boxes fs solid lc rgb '#009E73' title 'level 3', NaN with boxes fs solid lc rgb '#CC79A7' title (maxlevel >= 4 ? 'level 4' : ''), \
     NaN with boxes fs solid lc rgb '#404040' title 'not an expert (attention, router)'
unset multiplot
