# Fig. 14: ablation, one panel per model (each on its own throughput axis:
# Mixtral is an order of magnitude slower than LLaMA-MoE), each bar
# labelled with its value.  Data: series = model; x = step 0..3; y = tok/s.
load plotdir.'/style.gp'
if (fmt eq 'svg') { set terminal svg size 900,460 dynamic noenhanced font 'Helvetica,12' background rgb 'white' } else { set terminal pngcairo size 900,460 noenhanced font 'Helvetica,10' background rgb 'white' }
set output outfile
set style fill solid 0.85 border -1
set boxwidth 0.6
set key off
set xrange [-0.6:3.6]
set xtics ('Router' 0, '+MWQ' 1, '+HEBF' 2, '+Budget' 3)
set multiplot layout 1, nseries title figtitle
do for [i = 0:nseries - 1] {
    stats datafile index i using 3 nooutput
    set yrange [0:STATS_max * 1.18]
    set title word(titles, i + 1)
    set ylabel 'throughput (generated tokens/s)'
    set xlabel 'step (each adds one part)'
    plot datafile index i using 2:3 with boxes lt (i + 1), \
         datafile index i using 2:3:(sprintf('%.2f', $3)) with labels offset 0,0.8 font ',9'
}
unset multiplot
