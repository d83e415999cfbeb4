# Fig. 9: the I/O and compute queues of the same layer steps under four
# orders (Gantt chart).  Reads the simulator's timelines (CSV: start_ns,
# end_ns, queue, layer, expert, level, tokens) from datadir/<strategy>.csv,
# written by `d2moe reproduce`; drawn: the first layer step (layer 0, up to
# the first record of layer 1).
load plotdir.'/style.gp'
if (fmt eq 'svg') { set terminal svg size 900,880 dynamic noenhanced font 'Helvetica,12' background rgb 'white' } else { set terminal pngcairo size 900,880 noenhanced font 'Helvetica,10' background rgb 'white' }
set output outbase.'.'.fmt
set datafile separator ','
names = 'no-mwq mwq-sequential mwq-hebf optimal'
array labels[4] = ['No MWQ: separate copies, id order', 'MWQ, expert (id) order', 'MWQ, fine-grained bit level (HEBF)', 'Optimal order (search)']
set multiplot layout 4,1 title figtitle
set ytics ('compute' 0, 'I/O' 1)
set grid xtics lc rgb '#e0e0e0'
set key off
# level colours: 1 blue, 2 orange, 3 green, 4 purple; non-expert compute grey
lc(level) = level == 0 ? 0x999999 : level == 1 ? 0x0072B2 : level == 2 ? 0xD55E00 : level == 3 ? 0x009E73 : 0xCC79A7
do for [i = 1:4] {
    f = datadir.'/'.word(names, i).'.csv'
    set autoscale
    stats f every ::1 using ($4 == 1 ? $1 : NaN) nooutput
    tend = STATS_min
    set yrange [-0.6:1.6]
    set title labels[i].'   [colour = level: 1 blue, 2 orange, 3 green; grey = non-expert]'
    if (i == 4) { set xlabel 'simulated time (ms)' } else { unset xlabel }
    plot f every ::1 using ($4 == 0 && $1 < tend ? ($1 + $2) / 2e6 : NaN):(strcol(3) eq 'io' ? 1 : 0):(($2 - $1) / 2e6):(0.35):(lc($6)) \
         with boxxyerror fs solid 0.9 noborder lc rgb variable
}
unset multiplot
