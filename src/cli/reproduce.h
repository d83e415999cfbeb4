/* reproduce.h - the steps of `d2moe reproduce` that live in their own file
 * (reproduce_quant.c: the MWQ error table; reproduce_eval.c: measured
 * accuracy; reproduce_audit.c: the claims audit).  Sequencing only. */
#ifndef D2_CLI_REPRODUCE_H
#define D2_CLI_REPRODUCE_H

/* Fill the store's quant_errors table unless it has one; returns an exit
 * status (0 = ok). */
int cli_reproduce_quantize(const char *dbp, const char *workdir, int quick);
/* Measured accuracy on the real stories260K checkpoint into the store, or one
 * line saying it was skipped (checkpoint absent); returns an exit status. */
int cli_reproduce_eval(const char *dbp, int quick);

/* The audit of experiments/paper-claims.ini under every reading set in
 * experiments/readings/, printed and stored in dbp; returns an exit status. */
int cli_reproduce_audit(const char *dbp);

/* cmd_audit.c: an audit's verdict table (cases: each case under its claim). */
#include <stdio.h>
#include "results/audit.h"
void cli_audit_print(const audit_report *r, FILE *out, int cases);

#endif
