/* report.h - summary tables and the HTML report.
 *
 * Summary queries (plots/summary/ files, first comment line = title) become
 * aligned text tables (`d2moe reproduce`) or HTML tables.  The HTML report
 * is one self-contained page (inline CSS, inline SVG, no network): every
 * figure of plots/figures.ini that has data, each with its provenance (code
 * version, reading, variant, input hashes), the summary tables, the
 * variants of the store, and the claims audit when the store has one
 * (tables audits, audit_claims, audit_cases, read generically).  Computes
 * nothing itself: figures come from plot.h, numbers from the queries. */
#ifndef D2_RESULTS_REPORT_H
#define D2_RESULTS_REPORT_H

#include <stdio.h>
#include "results/db.h"

/* Returns D2_OK also when the query has no rows (it says so).  variant is
 * bound to the query's :variant (NULL: "base"). */
int report_print_sql(db *d, const char *sql_path, const char *variant, FILE *out);

/* The variant a figure or table shows under a sweep -> variant map
 * (sweeps[i] -> variants[i], n pairs; reproduce: the variant of the runs it
 * made of each sweep): the mapped variant of `sweep` (the figure's; NULL or
 * "" for none) and of every sweep sql_path names, which must agree, since
 * the query reads one :variant; dflt when none of them is mapped.
 * D2_EINVAL, naming the sweeps and variants, when two differ. */
int report_map_variant(const char *sql_path, const char *sweep, const char *const *sweeps, const char *const *variants, size_t n,
                       const char *dflt, const char **out);

typedef struct report_opts {
    const char *plotdir;  /* figures.ini, *.sql, *.gp, summary/ */
    const char *gnuplot;  /* executable */
    const char *workdir;  /* an empty scratch folder for data and SVG files */
    const char *variant;  /* shown where a sweep has it; NULL: each sweep's own */
    const char *const *sweeps, *const *variants; /* sweeps[i] shows variants[i] instead (nvariants pairs; */
    size_t nvariants;                            /* reproduce: the variant of the runs it made of each) */
    const char *csvroot;  /* folder beside the store holding timeline folders (fig9/) */
    int (*timeline_check)(const char *path); /* each timeline checked before gnuplot (NULL: not) */
} report_opts;

typedef struct report_stats {
    size_t figures;       /* drawn */
    size_t missing;       /* figures without data */
    size_t mixed;         /* figures not drawn: variants would mix */
    size_t tables;        /* summary tables */
    size_t audit_tables;  /* audit tables found */
    size_t other_sweeps;  /* sweeps of the store no figure draws, listed with a plot command */
} report_stats;

/* Writes the page to out (the caller makes the file appear atomically). */
int report_html(db *d, const report_opts *o, FILE *out, report_stats *st);

#endif
