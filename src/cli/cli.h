/* cli.h - what every `d2moe <command>` shares: the command table entry,
 * option-error reporting and the one place that turns a library status into
 * a printed message and an exit code.  Commands parse arguments, call the
 * library and print; model logic never lives in src/cli. */
#ifndef D2_CLI_CLI_H
#define D2_CLI_CLI_H

#include <stddef.h>
#include <stdio.h>

typedef struct cli_cmd {
    const char *name;    /* the verb: "show" */
    const char *summary; /* one line for `d2moe help` */
    int (*run)(int argc, char **argv); /* argv[0] is the verb; returns exit status */
} cli_cmd;

/* Declared by each src/cli/cmd_<verb>.c; listed in commands.h. */
#define CLI_COMMAND(verb) extern const cli_cmd cli_cmd_##verb;
#include "cli/commands.h"
#undef CLI_COMMAND

/* Defined by each src/cli/bench_<name>.c; listed in benches.h (cmd_bench.c
 * builds its table from the same list).  argv[0] is the name; returns the
 * exit status. */
#define BENCH(name, summary) int bench_##name(int argc, char **argv);
#include "cli/benches.h"
#undef BENCH

/* Print "d2moe: <library message>" and return the exit code of status. */
int cli_fail(int status);
/* Print "d2moe <cmd>: <message>" and return 2 (bad usage). */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Numeric option values: 0 and *out set, or the usage error's exit code (2)
 * naming the option and the range.  cli_parse_long: an integer lo..hi.
 * cli_parse_double: a number in lo..hi (above lo, not equal, when lo_open),
 * `what` names it in the message ("a percentage", "a factor"). */
int cli_parse_long(const char *cmd, const char *opt, const char *arg, long lo, long hi, long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *arg, double lo, double hi, int lo_open,
                     const char *what, double *out);
/* --nice N: arg parsed as an integer -20..19 (cli_parse_long) and this
 * process's scheduling priority set to it (its threads and children
 * inherit it): 0 and *out set, or the failure printed and its exit status
 * (2: a bad value, or a priority this user may not take). */
int cli_set_nice(const char *cmd, const char *arg, long *out);
/* getopt_long that remembers the long options, so an unknown option gets a
 * "did you mean" (cli_bad_option), and refuses an option that takes a value
 * given twice in one parse (the last one would win without a word): it
 * returns '?' and cli_bad_option names it.  repeat: the option values (val,
 * or the short letter) that may be given several times, e.g. "s" for a
 * --set key=value that repeats, or NULL.  Flags (no value) may repeat.
 * Every command parses its options with it. */
struct option;
int cli_getopt_long(int argc, char *const *argv, const char *shortopts, const struct option *longopts, const char *repeat,
                    int *idx);
/* After cli_getopt_long returned '?' or ':': one line naming the option
 * (an option given twice, or an unknown one and the closest known one);
 * returns 2. */
int cli_bad_option(const char *cmd, int argc, char **argv);
/* The folder of shipped data `what` ("plots" or "experiments") holding
 * `marker` (e.g. "figures.ini"): ./<what>, then the installed data folder
 * $(datadir)/d2moe/<what>, then the source tree's. */
const char *cli_data_dir(const char *what, const char *marker);
/* `d2moe report`'s work (also run by reproduce): an exit status.  The
 * figures and tables of sweeps[i] show variants[i] (n pairs; reproduce: the
 * variant of the runs it made of each sweep), the others `variant`. */
int cli_report_write(const char *dbp, const char *outp, const char *variant, const char *const *sweeps,
                     const char *const *variants, size_t n, const char *plotdir, int quiet);
/* `d2moe plot` (argv as for its run) with the figures of sweeps[i] showing
 * variants[i] (n pairs), as reproduce draws them. */
int cli_plot_variants(int argc, char **argv, const char *const *sweeps, const char *const *variants, size_t n);
/* While sweeps run (sweep_execute): SIGINT, SIGTERM and SIGHUP ask them to
 * stop (sweep_interrupt: the jobs in progress finish and every finished
 * run is committed); a second one stops the process at once, as it does
 * outside sweeps.  cli_sweep_signals_end(sig, rc) puts the usual handlers
 * back and, when a sweep was interrupted (sig = its sweep_stats.interrupted,
 * or a signal that came when no sweep checked), says so and ends the
 * process by that signal; when rc (the sweep's status) is an error, the
 * finished runs may not be stored: it says so with the error and returns
 * rc (the caller exits by it).  Without a signal it returns rc. */
void cli_sweep_signals_begin(void);
int cli_sweep_signals_end(int sig, int rc);
/* The batch settings of a sweep's commits (sweep.h) from the environment:
 * D2MOE_SWEEP_BATCH runs and D2MOE_SWEEP_BATCH_MS milliseconds (defaults
 * SWEEP_BATCH_RUNS, SWEEP_BATCH_MS), and the tests' D2MOE_SWEEP_STOP_AFTER
 * (sweep_opts.stop_after). */
struct sweep_opts;
void cli_sweep_batch_env(struct sweep_opts *o);
/* A folder argument (`opt dir`), checked before any work: 0 when dir is a
 * directory (creatable: or missing, in a folder that is one, for the
 * command to create), else one line "d2moe CMD: OPT DIR: why" and 2. */
int cli_dir_arg(const char *cmd, const char *opt, const char *dir, int creatable);
/* Full command line of this process, for results. */
void cli_set_argv(int argc, char **argv);
int cli_argc(void);
char **cli_argv(void);

#endif
