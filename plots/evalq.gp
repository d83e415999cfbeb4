# Measured KL (FP32 -> FFN-quantized next-token distributions) against bits
# per FFN weight read per token: MWQ levels and the baselines as lines,
# routed mixes (per-token bit routing with the paper's capacities) as
# points.  Column 4 of the data says which a series is.
load plotdir.'/style.gp'
set xlabel 'bits per FFN weight read per token (scales and zeros included)'
set ylabel 'KL(FP32 || quantized), nats per token'
set logscale y
set key font ',9'
# A series title is "preset method" or "preset method routing" (d2moe plot
# passes a title's spaces as U+00A0, sep below).  The colour is the method, a solid line V1's levels and a dashed
# line V2's, the marker of a routed mix its routing; the key lists each of
# these once (until 2026-12-08 every one of the 18 series had its own
# colour, and the eight colours repeated).
sep = "\302\240"
t(i) = word(titles, i + 1)
rest(s) = s[strstrt(s, sep) + strlen(sep):]
first(s) = strstrt(s, sep) > 0 ? s[1:strstrt(s, sep) - 1] : s
preset(i) = first(t(i))
method(i) = first(rest(t(i)))
routing(i) = strstrt(rest(t(i)), sep) > 0 ? rest(rest(t(i))) : ''
methods = 'mwq rtn-int msb-slice'
mcol(m) = m eq 'mwq' ? 2 : m eq 'rtn-int' ? 3 : m eq 'msb-slice' ? 1 : 4
# the routings present, in the order of the series
routings = ''
do for [i = 0:nseries - 1] {
    _r = routing(i)
    if (_r ne '' && strstrt(' '.routings.' ', ' '._r.' ') == 0) { routings = routings . (routings eq '' ? '' : ' ') . _r }
}
rpts = '6 4 8 12 10 14'
rpt(r) = sum [k = 1:words(routings)] (word(routings, k) eq r ? word(rpts, (k - 1) % words(rpts) + 1) + 0 : 0)
plot for [i = 0:nseries - 1] datafile index i using 2:(routing(i) eq '' ? $3 : NaN) \
         with linespoints lt mcol(method(i)) dt 1 + (preset(i) ne 'v1') notitle, \
     for [i = 0:nseries - 1] datafile index i using 2:(routing(i) eq '' ? NaN : $3) \
         with points lt mcol(method(i)) pt rpt(routing(i)) ps 1.8 lw 2 notitle, \
     for [k = 1:words(methods)] NaN with lines lt mcol(word(methods, k)) lw 6 title word(methods, k), \
     NaN with lines lc rgb '#333333' dt 1 title 'v1 levels', \
     NaN with lines lc rgb '#333333' dt 2 title 'v2 levels', \
     for [k = 1:words(routings)] NaN with points pt (word(rpts, (k - 1) % words(rpts) + 1) + 0) ps 1.4 lw 2 \
         lc rgb '#333333' title 'mix: '.word(routings, k)
