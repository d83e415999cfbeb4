/* reproduce.h - the steps of `d2moe reproduce` that live in their own file
 * (reproduce_quant.c: the MWQ error table; reproduce_eval.c: measured accuracy).  Sequencing only. */
#ifndef D2_CLI_REPRODUCE_H
#define D2_CLI_REPRODUCE_H

/* Fill the store's quant_errors table unless it has one; returns an exit
 * status (0 = ok). */
int cli_reproduce_quantize(const char *dbp, const char *workdir, int quick);
/* Measured accuracy on the real stories260K checkpoint into the store, or one
 * line saying it was skipped (checkpoint absent); returns an exit status. */
int cli_reproduce_eval(const char *dbp, int quick);

#endif
