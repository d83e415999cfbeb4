/* plot.h - figures: data exported from the results store by SQL queries
 * kept in plots/ and drawn by gnuplot scripts beside them.
 *
 * plots/figures.ini has one section per figure: sql (query file), gp
 * (gnuplot script), title, and any other key is bound to the query's
 * :named parameter (one query serves the four panels of Fig. 10), except
 * "gp.NAME = value", passed to gnuplot as the string variable NAME, and
 * "optional = true" (a figure of an experiment reproduce does not run).  A query
 * returns the series label in its first column and numbers after it,
 * ordered by series; the export writes one gnuplot data block per series.
 * A figure with `csv = NAME` instead reads CSV files from the folder NAME
 * beside the store (Fig. 9's timelines).  gnuplot gets: datafile, outbase, fmt (png|svg), titles,
 * nseries, plotdir, figtitle, datadir.  Nothing here runs experiments. */
#ifndef D2_RESULTS_PLOT_H
#define D2_RESULTS_PLOT_H

#include <stddef.h>
#include "results/db.h"

#define PLOT_MAX_BIND 8

typedef struct plot_fig {
    char name[64];
    char sql[256], gp[256], csv[256], title[256];
    int line;                              /* line of the section in figures.ini */
    int optional;                          /* "optional = true": not made by reproduce; `plot all` skips it without data */
    size_t nbind;
    char bind_k[PLOT_MAX_BIND][64];
    char bind_v[PLOT_MAX_BIND][256];
    size_t ngp;                            /* "gp.NAME = value": gnuplot string variables */
    char gp_k[PLOT_MAX_BIND][64];
    char gp_v[PLOT_MAX_BIND][256];
} plot_fig;

int plot_figures_load(const char *ini_path, plot_fig **figs, size_t *n);

typedef struct plot_out {
    size_t rows, series;
    char titles[2048]; /* series labels, space separated (spaces inside a label -> '_') */
} plot_out;

/* Run the figure's query on d and write the data file. */
int plot_export(db *d, const char *plotdir, const plot_fig *f, const char *dat_path, plot_out *out);
/* Run gnuplot on the figure's script for fmt "png" and "svg"; writes
 * <outbase>.png and <outbase>.svg. */
int plot_render(const char *gnuplot, const char *plotdir, const plot_fig *f, const char *dat_path,
                const char *datadir, const plot_out *po, const char *outbase);

#endif
