/* main.c - `d2moe`: a git-style front end.  Finds the command in the table
 * (commands.h) and runs it; `help`, `--help` and `--version` live here. */
#include "config.h"
#include "cli/cli.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/version.h"

#include <getopt.h>
#include <signal.h>
#include <gsl/gsl_errno.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const cli_cmd *const commands[] = {
#define CLI_COMMAND(verb) &cli_cmd_##verb,
#include "cli/commands.h"
#undef CLI_COMMAND
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static int g_argc;
static char **g_argv;
void cli_set_argv(int argc, char **argv) { g_argc = argc; g_argv = argv; }
int cli_argc(void) { return g_argc; }
char **cli_argv(void) { return g_argv; }

int cli_fail(int status)
{
    fprintf(stderr, "d2moe: %s\n", d2_err_msg());
    return d2_exit_code(status);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "d2moe %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'd2moe %s --help')\n", cmd);
    return 2;
}

int cli_parse_long(const char *cmd, const char *opt, const char *arg, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (!*arg || *end || errno || v < lo || v > hi) return cli_usage_error(cmd, "%s %s: expected an integer %ld..%ld", opt, arg, lo, hi);
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *arg, double lo, double hi, int lo_open,
                     const char *what, double *out)
{
    char *end;
    double v = strtod(arg, &end);
    if (end == arg || *end || !(lo_open ? v > lo : v >= lo) || !(v <= hi))
        return cli_usage_error(cmd, "%s %s: expected %s %g..%g", opt, arg, what, lo, hi);
    *out = v;
    return 0;
}

int cli_bad_option(const char *cmd, int argc, char **argv)
{
    const char *opt = (optind - 1 >= 0 && optind - 1 < argc) ? argv[optind - 1] : "?";
    if (optopt && optopt != '?' && strncmp(opt, "--", 2) != 0)
        return cli_usage_error(cmd, "bad option '-%c' or missing argument", optopt);
    return cli_usage_error(cmd, "unknown option or missing argument: '%s'", opt);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe <command> [options]   (d2moe <command> --help for details)\n\n"
                 "D2MoE serving simulator and MWQ quantizer.  Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "  %-12s %s\n", "help", "list the commands, or 'help COMMAND' for one");
    fprintf(out, "\nOptions: --version, --help\n");
}

static const cli_cmd *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0) return commands[i];
    return NULL;
}

/* SIGINT/SIGTERM/SIGHUP: remove the temporaries of writers in progress
 * (core/fileio.h), then die of the signal as before.  Commands that need
 * more (calibrate) install their own handler. */
static void on_fatal_signal(int sig)
{
    fileio_tmp_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    gsl_set_error_handler_off(); /* every GSL status is checked; none aborts */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    cli_set_argv(argc, argv);
    if (argc < 2) {
        fprintf(stderr, "d2moe: no command given (see 'd2moe help')\n");
        return 2;
    }
    const char *verb = argv[1];
    if (!strcmp(verb, "--version") || !strcmp(verb, "version")) {
        printf("d2moe %s (package %s)\n", d2_version(), PACKAGE_VERSION);
        return 0;
    }
    if (!strcmp(verb, "--help") || !strcmp(verb, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(verb, "help")) {
        if (argc == 2) { usage(stdout); return 0; }
        const cli_cmd *c = find(argv[2]);
        if (!c) { fprintf(stderr, "d2moe: '%s' is not a d2moe command (see 'd2moe help')\n", argv[2]); return 2; }
        char *hargv[] = {argv[2], "--help", NULL};
        optind = 1;
        return c->run(2, hargv);
    }
    if (verb[0] == '-') {
        fprintf(stderr, "d2moe: unknown option '%s' (see 'd2moe help')\n", verb);
        return 2;
    }
    const cli_cmd *c = find(verb);
    if (!c) {
        fprintf(stderr, "d2moe: '%s' is not a d2moe command (see 'd2moe help')\n", verb);
        return 2;
    }
    optind = 1;
    opterr = 0;
    return c->run(argc - 1, argv + 1);
}
