/* main.c - `d2moe`: a git-style front end.  Finds the command in the table
 * (commands.h) and runs it; `help`, `--help` and `--version` live here. */
#include "config.h"
#include "cli/cli.h"
#include "core/err.h"
#include "core/text.h"
#include "core/fileio.h"
#include "core/param.h"
#include "core/suggest.h"
#include "core/version.h"
#include "results/sweep.h"

#include <getopt.h>
#include <signal.h>
#include <gsl/gsl_errno.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const cli_cmd *const commands[] = {
#define CLI_COMMAND(verb) &cli_cmd_##verb,
#include "cli/commands.h"
#undef CLI_COMMAND
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])
#define CLI_HELP_WORDS 2 /* help CMD and at most this many words after it (trace gen, db info) */

static int g_argc;
static char **g_argv;
void cli_set_argv(int argc, char **argv) { g_argc = argc; g_argv = argv; }
int cli_argc(void) { return g_argc; }
char **cli_argv(void) { return g_argv; }

/* error messages name files and echo their fields: control characters
 * and bytes that are not UTF-8 are written as \xNN (one line, nothing the
 * terminal would act on) */
int cli_fail(int status)
{
    fputs("d2moe: ", stderr);
    text_fputs_escaped(d2_err_msg(), stderr);
    fputc('\n', stderr);
    return d2_exit_code(status);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char small[2048], *msg = small;
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (len >= (int)sizeof small && (msg = malloc((size_t)len + 1)) != NULL) { /* a long path or argument: whole */
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)len + 1, fmt, ap);
        va_end(ap);
    }
    if (!msg) msg = small; /* no memory for the whole: its first 2047 bytes */
    fprintf(stderr, "d2moe %s: ", cmd);
    text_fputs_escaped(msg, stderr);
    fprintf(stderr, " (see 'd2moe %s --help')\n", cmd);
    if (msg != small) free(msg);
    return 2;
}

int cli_dir_arg(const char *cmd, const char *opt, const char *dir, int creatable)
{
    if (!dir[0]) return cli_usage_error(cmd, "%s: empty path: give a directory", opt);
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return 0;
        return cli_usage_error(cmd, "%s %s: not a directory", opt, dir);
    }
    int e = errno;
    if (e != ENOENT || !creatable) return cli_usage_error(cmd, "%s %s: %s", opt, dir, strerror(e));
    /* missing: its parent must be a folder to create it in */
    char parent[FILEIO_PATH_MAX];
    int prc = fileio_dir_of(dir, parent, sizeof parent, NULL);
    if (prc) return cli_fail(prc);
    e = stat(parent, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    if (e) return cli_usage_error(cmd, "%s %s: cannot create it: %s", opt, dir, strerror(e));
    return 0;
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

int cli_set_nice(const char *cmd, const char *arg, long *out)
{
    long n;
    int st = cli_parse_long(cmd, "--nice", arg, -20, 19, &n);
    if (st) return st;
    *out = n;
    if (setpriority(PRIO_PROCESS, 0, (int)n) == 0) return 0;
    d2_err_set("%s: --nice %ld: %s", cmd, n, strerror(errno));
    return cli_fail(D2_EINVAL);
}

/* The parse in progress: its long options (for "did you mean"), and for the
 * duplicate check the option values seen so far and the one given twice. */
static const struct option *g_longopts;
static const char *g_shortopts;
static unsigned char g_seen[256];
static int g_twice, g_last_optind;
/* the KEY=VALUE arguments of the options that repeat with different keys
 * (repeat "s=": --set), and the two that named one key */
#define OPT_KEYED_MAX 1024
static struct { int c; const char *arg; } g_keyed[OPT_KEYED_MAX];
static size_t g_nkeyed;
static const char *g_dup_first, *g_dup_second;

static void opt_state_reset(void)
{
    memset(g_seen, 0, sizeof g_seen);
    g_twice = 0;
    g_last_optind = 0;
    g_nkeyed = 0;
    g_dup_first = g_dup_second = NULL;
}

/* arg (KEY=VALUE) of option c names a key an earlier one of c named: that
 * earlier argument, else NULL (and arg remembered) */
static const char *opt_keyed_dup(int c, const char *arg)
{
    const char *eq = arg ? strchr(arg, '=') : NULL;
    if (!eq) return NULL; /* no KEY=: the command says what is wrong with it */
    const size_t kl = (size_t)(eq - arg);
    for (size_t i = 0; i < g_nkeyed; i++)
        if (g_keyed[i].c == c && !strncmp(g_keyed[i].arg, arg, kl) && g_keyed[i].arg[kl] == '=') return g_keyed[i].arg;
    if (g_nkeyed < OPT_KEYED_MAX) { /* past that the command's own limit on its --set has refused them */
        g_keyed[g_nkeyed].c = c;
        g_keyed[g_nkeyed++].arg = arg;
    }
    return NULL;
}

/* has_arg of the option getopt_long returned as c: the long one typed
 * (idx), else the short one in shortopts, else the first long one of val c */
static int opt_takes_value(int c, int idx, const char *shortopts, const struct option *longopts)
{
    if (idx >= 0) return longopts[idx].has_arg != no_argument;
    const char *s = c > 0 && c < 256 && c != ':' && c != '+' && c != '-' ? strchr(shortopts, c) : NULL;
    if (s) return s[1] == ':';
    for (const struct option *o = longopts; o && o->name; o++)
        if (o->val == c && !o->flag) return o->has_arg != no_argument;
    return 0;
}

int cli_getopt_long(int argc, char *const *argv, const char *shortopts, const struct option *longopts, const char *repeat,
                    int *idx)
{
    /* a new parse: other options, or optind set back (main, bench, reproduce
     * set it to 1 before a command's parse) */
    if (longopts != g_longopts || optind == 0 || optind < g_last_optind) opt_state_reset();
    g_longopts = longopts;
    g_shortopts = shortopts;
    int li = -1;
    int c = getopt_long(argc, argv, shortopts, longopts, &li);
    if (idx) *idx = li;
    g_last_optind = optind;
    if (c == -1 || c == '?' || c == ':') { /* the parse ends here */
        opt_state_reset();
        return c;
    }
    /* a value given twice would be resolved silently (the last one kept):
     * refused, unless the option is one that repeats (repeat lists it; with
     * '=' after it, as KEY=VALUE of different keys); a flag given twice says
     * the same thing twice and is let be */
    const char *r = c > 0 && c < 256 && repeat ? strchr(repeat, c) : NULL;
    if (c <= 0 || c >= 256 || !opt_takes_value(c, li, shortopts, longopts)) return c;
    const char *first = r && r[1] == '=' ? opt_keyed_dup(c, optarg) : NULL;
    if (first || (!r && g_seen[c]++)) {
        opt_state_reset();
        g_twice = c;
        g_dup_first = first;
        g_dup_second = first ? optarg : NULL;
        return '?';
    }
    return c;
}

int cli_bad_option(const char *cmd, int argc, char **argv)
{
    if (g_twice && g_dup_first) { /* one key of --set KEY=VALUE twice */
        const char *a = g_dup_first, *b = g_dup_second;
        opt_state_reset();
        return cli_usage_error(cmd, "%.*s given twice (%s, then %s): give it once", (int)strcspn(a, "="), a, a, b);
    }
    if (g_twice) {
        int c = g_twice;
        g_twice = 0;
        const char *lname = NULL;
        for (const struct option *o = g_longopts; o && o->name && !lname; o++)
            if (o->val == c && !o->flag) lname = o->name;
        /* its short form too, when it has one (val 'V' of --variant may be long-only) */
        int shortc = c > ' ' && c < 127 && c != ':' && c != '+' && c != '-' && g_shortopts && strchr(g_shortopts, c);
        if (lname && shortc) return cli_usage_error(cmd, "--%s (-%c) given twice: give it once", lname, c);
        if (lname) return cli_usage_error(cmd, "--%s given twice: give it once", lname);
        return cli_usage_error(cmd, "-%c given twice: give it once", c);
    }
    const char *opt = (optind - 1 >= 0 && optind - 1 < argc) ? argv[optind - 1] : "?";
    if (optopt && optopt != '?' && strncmp(opt, "--", 2) != 0)
        return cli_usage_error(cmd, "bad option '-%c' or missing argument", optopt);
    if (strncmp(opt, "--", 2) == 0 && g_longopts) {
        char name[128];
        snprintf(name, sizeof name, "%s", opt + 2);
        name[strcspn(name, "=")] = '\0';
        const char *names[128];
        size_t n = 0, known = 0;
        for (const struct option *o = g_longopts; o->name && n < 128; o++) {
            names[n++] = o->name;
            if (!strcmp(o->name, name)) known = 1;
        }
        if (known) return cli_usage_error(cmd, "option '--%s' needs a value", name);
        const char *pick = suggest_pick(name, names, n);
        if (pick) return cli_usage_error(cmd, "unknown option '--%s' (did you mean '--%s'?)", name, pick);
        return cli_usage_error(cmd, "unknown option '--%s'", name);
    }
    return cli_usage_error(cmd, "unknown option or missing argument: '%s'", opt);
}

const char *cli_data_dir(const char *what, const char *marker)
{
    static char buf[2][FILEIO_PATH_MAX];
    static int k;
    char *out = buf[k++ & 1];
    const char *roots[3] = {".", D2_DATADIR, D2_SRCDIR};
    for (int i = 0; i < 3; i++) {
        snprintf(out, sizeof buf[0], "%s/%s/%s", roots[i], what, marker);
        if (access(out, R_OK) == 0) {
            snprintf(out, sizeof buf[0], "%s%s%s", i ? roots[i] : "", i ? "/" : "", what);
            return out;
        }
    }
    snprintf(out, sizeof buf[0], "%s/%s", D2_SRCDIR, what);
    return out;
}

/* --profiles DIR (or --profiles=DIR) anywhere before "--": taken out of
 * argv here, so every command looks profiles up there first. */
static int take_profiles(int *argc, char **argv)
{
    int o = 1, seen = 0;
    for (int i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], "--")) { while (i < *argc) argv[o++] = argv[i++]; break; }
        if (!strcmp(argv[i], "--profiles") || !strncmp(argv[i], "--profiles=", 11)) {
            const char *dir = argv[i][10] == '=' ? argv[i] + 11 : (i + 1 < *argc ? argv[++i] : NULL);
            if (!dir || !*dir) { fprintf(stderr, "d2moe: --profiles: expected a folder\n"); return 2; }
            /* one folder: a second would replace the first without a word */
            if (seen++) { fprintf(stderr, "d2moe: --profiles given twice: give it once\n"); return 2; }
            struct stat st; /* a file or FIFO is "not a directory", not a permission problem */
            if (stat(dir, &st) != 0) { fprintf(stderr, "d2moe: --profiles %s: %s\n", dir, strerror(errno)); return 2; }
            if (!S_ISDIR(st.st_mode)) { fprintf(stderr, "d2moe: --profiles %s: not a directory\n", dir); return 2; }
            if (access(dir, R_OK | X_OK) != 0) { fprintf(stderr, "d2moe: --profiles %s: %s\n", dir, strerror(errno)); return 2; }
            param_profiles_dir_set(dir);
            continue;
        }
        argv[o++] = argv[i];
    }
    argv[o] = NULL;
    *argc = o;
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe <command> [options]   (d2moe <command> --help for details)\n\n"
                 "D2MoE serving simulator and MWQ quantizer.  Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "  %-12s %s\n", "help", "list the commands, or 'help COMMAND' for one");
    fprintf(out, "\nOptions: --version, --help, --profiles DIR (look profiles up in DIR first;\n"
                 "see 'd2moe list' for the search order)\n\n"
                 "An option that takes a value is given once (a second one is refused, exit 2);\n"
                 "those a command's --help shows with '...' repeat, --set KEY=VALUE with\n"
                 "different keys.\n");
}

static const cli_cmd *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0) return commands[i];
    return NULL;
}

/* SIGINT/SIGTERM/SIGHUP: remove the temporaries of writers in progress
 * (core/fileio.h: every writer registers its temporary there, calibrate's
 * profile and execute's model file included), then die of the signal. */
static void on_fatal_signal(int sig)
{
    fileio_tmp_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The first SIGINT/SIGTERM/SIGHUP during a sweep: stop it, keeping what
 * finished (cli.h); a second: as on_fatal_signal. */
static void on_sweep_signal(int sig)
{
    if (sweep_interrupt(sig) > 1) on_fatal_signal(sig);
}

static void set_handlers(void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    /* one handler at a time: a SIGTERM inside the SIGINT handler must not
     * race its count (a second signal ends the process) */
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGHUP);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

void cli_sweep_signals_begin(void)
{
    sweep_interrupt_reset();
    set_handlers(on_sweep_signal);
}

int cli_sweep_signals_end(int sig, int rc)
{
    set_handlers(on_fatal_signal);
    /* a signal the sweep did not see (it came after the sweep's last check,
     * or before its first job) still ends the process */
    if (!sig) sig = sweep_interrupted();
    if (!sig) return rc;
    if (rc != D2_OK) {
        /* the finished runs were not stored: say why, exit by the error */
        fprintf(stderr, "d2moe: interrupted (signal %d), and storing the finished runs failed (below); the same command "
                        "runs them again\n", sig);
        fflush(NULL);
        return rc;
    }
    fprintf(stderr, "d2moe: interrupted (signal %d): the runs that finished are stored; the same command completes the sweep\n", sig);
    fflush(NULL);
    raise(sig);
    return rc;
}

static int unknown_command(const char *name)
{
    const char *names[N_COMMANDS + 1];
    for (size_t i = 0; i < N_COMMANDS; i++) names[i] = commands[i]->name;
    names[N_COMMANDS] = "help";
    char hint[200];
    suggest_hint(name, names, N_COMMANDS + 1, hint, sizeof hint);
    fprintf(stderr, "d2moe: '%s' is not a d2moe command%s; 'd2moe help' lists them\n", name, hint);
    return 2;
}

int main(int argc, char **argv)
{
    gsl_set_error_handler_off(); /* every GSL status is checked; none aborts */
    set_handlers(on_fatal_signal);
    if (take_profiles(&argc, argv)) return 2;
    cli_set_argv(argc, argv);
    if (argc < 2) {
        fprintf(stderr, "d2moe: no command given (see 'd2moe help')\n");
        return 2;
    }
    const char *verb = argv[1];
    /* these take no further word (an extra one was ignored); 'help CMD
     * SUB...' is CMD SUB... --help */
    if ((!strcmp(verb, "--version") || !strcmp(verb, "version") || !strcmp(verb, "--help") || !strcmp(verb, "-h")) && argc > 2) {
        fprintf(stderr, "d2moe %s: unexpected argument '%s' (see 'd2moe help')\n", verb, argv[2]);
        return 2;
    }
    if (!strcmp(verb, "--version") || !strcmp(verb, "version")) {
        printf("d2moe %s (package %s)\n", d2_version(), PACKAGE_VERSION);
        return 0;
    }
    if (!strcmp(verb, "--help") || !strcmp(verb, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(verb, "help")) {
        /* 'help', 'help --help' (-h) and 'help help' all ask for this list */
        if (argc == 2 || (argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h") || !strcmp(argv[2], "help")))) {
            usage(stdout);
            return 0;
        }
        const cli_cmd *c = find(argv[2]);
        if (!c) return unknown_command(argv[2]);
        char *hargv[CLI_HELP_WORDS + 3];
        int n = 0;
        for (int i = 2; i < argc; i++) {
            if (n == CLI_HELP_WORDS + 1) {
                fprintf(stderr, "d2moe help: unexpected argument '%s' (see 'd2moe help')\n", argv[i]);
                return 2;
            }
            hargv[n++] = argv[i];
        }
        hargv[n++] = "--help";
        hargv[n] = NULL;
        optind = 1;
        return c->run(n, hargv);
    }
    if (verb[0] == '-') {
        fprintf(stderr, "d2moe: unknown option '%s' (see 'd2moe help')\n", verb);
        return 2;
    }
    const cli_cmd *c = find(verb);
    if (!c) return unknown_command(verb);
    optind = 1;
    opterr = 0;
    return c->run(argc - 1, argv + 1);
}
