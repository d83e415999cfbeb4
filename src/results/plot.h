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
 * beside the store (Fig. 9's timelines): `timelines = A B ...` names them
 * (A.csv, B.csv, ...; letters, digits, '.', '_', '-'); a script that draws
 * a fixed number of them (fig9.gp: four panels) needs a list of exactly
 * that many (plot.c's table gp_timelines).  gnuplot gets:
 * datafile, outbase, fmt (png|svg), titles, nseries, plotdir, figtitle,
 * datadir, timelines.  Nothing here runs experiments. */
#ifndef D2_RESULTS_PLOT_H
#define D2_RESULTS_PLOT_H

#include <stddef.h>
#include "results/db.h"

#define PLOT_MAX_BIND 8

typedef struct plot_fig {
    char name[64];
    char sql[256], gp[256], csv[256], title[256];
    char timelines[256];                   /* csv figures: the timeline names (NAME.csv), space separated */
    int timelines_line;                    /* line of the timelines key in figures.ini (0: none) */
    char sweep[128];                       /* the sweep its query reads ("" = none): bound to :sweep */
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
    char reading[256];  /* the reading(s) of the runs a sweep figure shows (param reading.name,
                           ", "-separated when several; "" when none is stored): plot_render
                           names it in the title, the data file in its header */
} plot_out;

/* Run the figure's query on d and write the data file; variant (may be
 * NULL: "base") is bound to the query's :variant. */
int plot_export(db *d, const char *plotdir, const plot_fig *f, const char *variant, const char *dat_path, plot_out *out);
/* A csv figure's timelines in the folder dir, before gnuplot reads them:
 * D2_ENOTFOUND naming the first one missing, else the first non-zero
 * status of check(path) (the CLI's strict timeline reader: results cannot
 * link it). */
int plot_timelines_check(const plot_fig *f, const char *dir, int (*check)(const char *path));
/* Run gnuplot on the figure's script for fmt "png" and "svg"; writes
 * <outbase>.png and <outbase>.svg. */
int plot_render(const char *gnuplot, const char *plotdir, const plot_fig *f, const char *dat_path,
                const char *datadir, const plot_out *po, const char *outbase);

/* Any sweep: x and y are a parameter (table.key, or model, device,
 * trace, seed), a metric, or a column of the run that d2moe export writes
 * (variant, status, run_id, uid, kind, mode, code_version, started_at,
 * ended_at, host, cmdline, rng, config_hash, inputs.ROLE; metric.NAME is the
 * metric NAME); one series per value of `series` (NULL: one);
 * rows filtered by where_k[i] = where_v[i] (numbers compared as numbers).
 * Only the sweep's runs of `variant` (NULL: of every variant, each
 * variant's own), the latest run of each job of the latest grid (any_grid:
 * of every job the sweep stored, whatever grid).  The data
 * file has columns: series, x (category index when x is not numeric), y
 * (NaN unless ok), oom marker (0 for an out-of-memory run, else NaN), x
 * label.  An unknown key is D2_ENOTFOUND with a suggestion. */
#define PLOT_MAX_WHERE 16
typedef struct plot_query {
    const char *sweep, *variant, *x, *y, *series;
    int any_grid;
    size_t nwhere;
    const char *where_k[PLOT_MAX_WHERE], *where_v[PLOT_MAX_WHERE];
} plot_query;
typedef struct plot_axes {
    char xlabel[256], ylabel[256]; /* key (unit) */
    int xcat;                      /* x is categorical */
    size_t oom, failed;            /* runs out of memory, failed */
} plot_axes;
int plot_sweep_export(db *d, const plot_query *q, const char *dat_path, plot_out *out, plot_axes *ax);
/* After a plot --sweep matched no run: " (--where K=V: K takes A, B, ...;
 * did you mean 'X'?)" for the first --where whose value no run of the sweep
 * has, into buf; "" when each value occurs. */
void plot_where_hint(db *d, const plot_query *q, char *buf, size_t n);
/* Does key name the variant (plot_query: NULL variant draws them all)? */
int plot_key_is_variant(const char *key);
/* An output path plot_draw can write: ending in .png or .svg and not an
 * existing FIFO, device, symlink or directory (D2_EINVAL).  Checked before
 * anything is written beside it (the data file OUT.dat). */
int plot_out_check(const char *outpath);
/* Runs gnuplot script with the variable assignments vars and fmt/outbase
 * taken from outpath (.png or .svg; anything else is D2_EINVAL). */
int plot_draw(const char *gnuplot, const char *script, const char *vars, const char *outpath);

/* Append "NAME='VALUE'" (after "; " unless *off is 0) to the gnuplot
 * command line buf[cap] at *off.  A single quote in VALUE is doubled (the
 * only escape of gnuplot's single-quoted strings), so no file name or
 * title can end the string and run commands.  what != NULL: VALUE is a
 * path given as `what`, and a control character in it (a newline would end
 * gnuplot's command) is refused (D2_EINVAL, naming what); what == NULL: a
 * label, its control characters become blanks.  D2_ERANGE when it does not
 * fit. */
int plot_gp_assign(char *buf, size_t cap, size_t *off, const char *name, const char *value, const char *what);
/* Bytes of the gnuplot variable assignments one figure passes (-e):
 * two paths, titles and labels */
#define PLOT_GP_VARS_MAX 8192

#endif
