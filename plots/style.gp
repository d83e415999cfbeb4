# style.gp - one style for every figure; each plots/<figure>.gp loads it
# first.  d2moe plot sets: fmt ('png' or 'svg'), outbase, outfile (the
# temporary the figure is drawn into, renamed to outbase.fmt when complete),
# datafile, datadir, titles (series labels, space separated), nseries,
# plotdir, figtitle.
if (fmt eq 'svg') {
    set terminal svg size 820,520 dynamic font 'Helvetica,13' background rgb 'white'
} else {
    set terminal pngcairo size 820,520 font 'Helvetica,11' background rgb 'white'
}
if (!exists('outfile')) { outfile = outbase.'.'.fmt }
set output outfile
set termoption noenhanced
set encoding utf8
set datafile separator "\t"
set datafile missing 'NaN'
set border 3 lw 1.2
set tics nomirror out
set grid ytics lc rgb '#e0e0e0' lt 1
set key outside right top vertical Left reverse noautotitle samplen 2 spacing 1.1
# A title longer than 70 characters goes on two lines, split at the word
# that passes half its length: gnuplot centres the title over the plot
# area, which the key outside leaves narrower than the canvas, and one long
# line ran off the picture's left edge.  A line still longer than 80
# characters gets a smaller font.
_title = figtitle
if (strlen(figtitle) > 70 && strstrt(figtitle, "\n") == 0) {
    _l1 = ''; _l2 = ''; _second = 0
    do for [_i = 1:words(figtitle)] {
        _w = word(figtitle, _i)
        if (!_second && _l1 ne '' && strlen(_l1) + 1 + strlen(_w) > strlen(figtitle) / 2 + 4) { _second = 1 }
        if (_second) { _l2 = _l2 . (_l2 eq '' ? '' : ' ') . _w } else { _l1 = _l1 . (_l1 eq '' ? '' : ' ') . _w }
    }
    _title = (_l2 eq '') ? _l1 : _l1 . "\n" . _l2
}
_longest = (strstrt(_title, "\n") > 0) ? ((strstrt(_title, "\n") - 1 > strlen(_title) - strstrt(_title, "\n")) ? strstrt(_title, "\n") - 1 : strlen(_title) - strstrt(_title, "\n")) : strlen(_title)
set title _title font (_longest > 80 ? (fmt eq 'svg' ? ',11' : ',9') : '')
# eight distinguishable colours (Okabe-Ito) and markers
set linetype 1 lc rgb '#0072B2' lw 2 pt 7  ps 1.0
set linetype 2 lc rgb '#D55E00' lw 2 pt 5  ps 1.0
set linetype 3 lc rgb '#009E73' lw 2 pt 9  ps 1.1
set linetype 4 lc rgb '#CC79A7' lw 2 pt 11 ps 1.1
set linetype 5 lc rgb '#E69F00' lw 2 pt 13 ps 1.1
set linetype 6 lc rgb '#56B4E9' lw 2 pt 4  ps 1.0
set linetype 7 lc rgb '#000000' lw 2 pt 6  ps 1.0
set linetype 8 lc rgb '#F0E442' lw 2 pt 8  ps 1.0
set linetype cycle 8
