/* simopts.h - the options `simulate` and `execute` share: the shortcuts
 * --policy/--budget/--requests/--prompt/--gen (= --set sim.KEY=...),
 * --set table.key=value, and --seed; collected into the sets of a sim_job
 * with the shortcuts first, so an explicit --set wins.  Parsing only. */
#ifndef D2_CLI_SIMOPTS_H
#define D2_CLI_SIMOPTS_H

#include <stddef.h>
#include <stdint.h>
#include "core/param.h"

#define SIMOPTS_MAX_SETS 256

typedef struct simopts {
    char shortcut[SIMOPTS_MAX_SETS][PARAM_STR_MAX + 32];
    const char *given[SIMOPTS_MAX_SETS];
    size_t nshort, ngiven;
    const char *sets[SIMOPTS_MAX_SETS + 8]; /* shortcuts then --set; room for a caller's extras */
    size_t nsets;
    uint64_t seed;
    const char *readings; /* --readings NAME (NULL: the default reading) */
} simopts;

/* The getopt_long rows of the shared options (values 'p','b','r','P','g','s','S','E'). */
#define SIMOPTS_LONG                                                                    \
    {"policy", required_argument, NULL, 'p'}, {"budget", required_argument, NULL, 'b'}, \
    {"requests", required_argument, NULL, 'r'}, {"prompt", required_argument, NULL, 'P'}, \
    {"gen", required_argument, NULL, 'g'}, {"set", required_argument, NULL, 's'},       \
    {"seed", required_argument, NULL, 'S'}, {"readings", required_argument, NULL, 'E'}

void simopts_init(simopts *o);
/* Handle option c with its argument.  Returns 1 when c is a shared option it
 * took, 0 when c is not one, or 2 after printing a usage error (exit 2). */
int simopts_take(simopts *o, int c, const char *arg, const char *cmd);
/* Build o->sets (shortcuts first); returns 0, or 2 after a usage error. */
int simopts_finish(simopts *o, const char *cmd);

#endif
