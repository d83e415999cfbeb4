# Measured KL (FP32 -> FFN-quantized next-token distributions) against bits
# per FFN weight read per token: MWQ levels and the baselines as lines,
# routed mixes (per-token bit routing with the paper's capacities) as
# points.  Column 4 of the data says which a series is.
load plotdir.'/style.gp'
set xlabel 'bits per FFN weight read per token (scales and zeros included)'
set ylabel 'KL(FP32 || quantized), nats per token'
set logscale y
set key font ',9'
isroute(i) = strstrt(word(titles, i + 1), '_capacity') + strstrt(word(titles, i + 1), '_rank:') > 0
plot for [i = 0:nseries - 1] datafile index i using 2:(isroute(i) ? NaN : $3) with linespoints lt (i + 1) title (isroute(i) ? '' : word(titles, i + 1)), \
     for [i = 0:nseries - 1] datafile index i using 2:(isroute(i) ? $3 : NaN) with points lt (i + 1) ps 1.6 title (isroute(i) ? word(titles, i + 1) : '')
