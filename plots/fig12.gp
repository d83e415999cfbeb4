# Fig. 12: dequantization overhead vs requests (time, peak memory or latency panel).
load plotdir.'/style.gp'
set xlabel 'concurrent requests R'
set ylabel ylab
if (ylab[1:4] ne 'peak') { set yrange [0:*] }
load plotdir.'/lines.gp'
