/* report.h - print the result of a summary query as an aligned text table
 * headed by the query's first comment line.  Used by `d2moe reproduce`;
 * the queries live in plots/summary/.  Computes nothing itself. */
#ifndef D2_RESULTS_REPORT_H
#define D2_RESULTS_REPORT_H

#include <stdio.h>
#include "results/db.h"

/* Returns D2_OK also when the query has no rows (it says so). */
int report_print_sql(db *d, const char *sql_path, FILE *out);

#endif
