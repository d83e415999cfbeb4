# Fig. 11b: dense LLaMA2-13B peak memory vs requests.
load plotdir.'/style.gp'
set xlabel 'concurrent requests R (markers shifted by +-0.2 so equal lines stay visible)'
set ylabel 'peak accelerator memory (MB)'
set yrange [0:*]
# methods with equal peak memory overlap: dashed lines, open markers and a
# small x shift keep both visible
plot for [i = 0:nseries - 1] datafile index i using ($2 + (i - (nseries - 1) / 2.0) * 0.4):3 with linespoints lt (i + 1) dashtype i + 1 pt (4 + 2 * i) ps 1.4 title word(titles, i + 1)
