# lines.gp - the line plot most figures are: one line per series, x in
# column 2, y in column 3.  The figure's own script sets the labels first
# and then calls this: call plotdir.'/lines.gp'
plot for [i = 0:nseries - 1] datafile index i using 2:3 with linespoints lt (i + 1) title word(titles, i + 1)
