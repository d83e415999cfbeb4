/* cmd_reproduce.c - `d2moe reproduce [--quick]`: the README's main job.
 * Runs, in order: the quantizer's per-level error table (for est_ppl), every
 * sweep listed in experiments/reproduce.ini, Fig. 9's timelines, the measured
 * accuracy of stories260K's quantized FFN (when the checkpoint exists), all plots,
 * and prints the summary tables.  Each step is a library call or another
 * d2moe command; this file only sequences them. */
#include "config.h"
#include "cli/cli.h"
#include "cli/reproduce.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/inifile.h"
#include "results/accuracy.h"
#include "results/report.h"
#include "results/runner.h"
#include "results/sweep.h"
#include "sim/readings.h"
#include "sim/sim.h"

#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


/* the reading of the figures: the project's best-justified model of the
 * paper's testbed (docs/reproduction.md) */
#define REPRODUCE_READINGS "paper-testbed"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: d2moe reproduce [--quick] [--readings NAME] [--db FILE] [--out DIR] [-j N] [--set key=value]...\n\n"
            "Regenerate every experiment of the paper reproduction (and the studies beyond\n"
            "it) listed in experiments/reproduce.ini: the MWQ error table used by the\n"
            "accuracy estimate, the sweeps, Fig. 9's timelines, the figures (DIR, default\n"
            "plots/, PNG + SVG) and a summary of the headline numbers.  Results go to FILE\n"
            "(default results/d2moe.db); a rerun skips what is already stored for this code\n"
            "version.  --quick runs each sweep's [quick] grid for a first look.\n"
            "--readings NAME (default " REPRODUCE_READINGS ") is the reading set every run uses\n"
            "(experiments/readings; docs/reproduction.md compares them).  --set\n"
            "fixes a key for every sweep (e.g. --set device.flash_bw=7G); in a sweep\n"
            "whose jobs already have that value it is no override, and each sweep's\n"
            "figures and tables show the variant of its runs (d2moe sweep --help); one\n"
            "that joins two sweeps the set put in different variants is not drawn (a note).\n");
}

#define FIG9_MAX 8
#define REPRODUCE_SWEEPS_MAX 64

/* experiments/reproduce.ini: [reproduce] sweeps, summary; [fig9] model,
 * device, common (sets for every strategy) and one line of sets per
 * strategy, whose name is the timeline's file name. */
typedef struct plan {
    char sweeps[1024], summary[1024];
    char model[128], device[128], common[512];
    char name[FIG9_MAX][64], sets[FIG9_MAX][256];
    int nstrat;
    /* the line of each key (0 = not given): a key given twice is refused */
    int sweeps_line, summary_line, model_line, device_line, common_line, strat_line[FIG9_MAX];
} plan;

static int plan_once(int *at, const char *key, const char *path, int line)
{
    if (*at) D2_ERROR(D2_EFORMAT, "%s:%d: %s: given twice (first at line %d)", path, line, key, *at);
    *at = line;
    return D2_OK;
}

/* the plan's own keys: where each value and the line it came from go */
#define PLAN_KEY(sec, k) {sec, #k, offsetof(plan, k), sizeof(((plan *)0)->k), offsetof(plan, k##_line)}
static const struct plan_key {
    const char *section, *key;
    size_t off, size, line_off; /* the value's field and its bytes, the line's field */
} plan_keys[] = {PLAN_KEY("reproduce", sweeps), PLAN_KEY("reproduce", summary), PLAN_KEY("fig9", model),
                 PLAN_KEY("fig9", device), PLAN_KEY("fig9", common)};
#undef PLAN_KEY

static int plan_entry(void *user, const char *section, const char *key, const char *value, const char *path, int line)
{
    plan *p = user;
    const int fig9 = !strcmp(section, "fig9");
    if (!fig9 && strcmp(section, "reproduce"))
        D2_ERROR(D2_EFORMAT, "%s:%d: %s: expected a [reproduce] or [fig9] section", path, line, key);
    for (size_t i = 0; i < sizeof plan_keys / sizeof plan_keys[0]; i++) {
        const struct plan_key *k = &plan_keys[i];
        if (strcmp(section, k->section) || strcmp(key, k->key)) continue;
        D2_TRY(plan_once((int *)(void *)((char *)p + k->line_off), key, path, line));
        if ((size_t)snprintf((char *)p + k->off, k->size, "%s", value) >= k->size)
            D2_ERROR(D2_ERANGE, "%s:%d: %s: longer than %zu characters", path, line, key, k->size - 1);
        return D2_OK;
    }
    if (!fig9) D2_ERROR(D2_EFORMAT, "%s:%d: %s: unknown key (sweeps, summary)", path, line, key);
    /* any other key of [fig9] is a strategy: its name and its sets */
    for (int i = 0; i < p->nstrat; i++)
        if (!strcmp(p->name[i], key)) D2_TRY(plan_once(&p->strat_line[i], key, path, line));
    if (p->nstrat == FIG9_MAX) D2_ERROR(D2_ERANGE, "%s:%d: %s: more than %d strategies", path, line, key, FIG9_MAX);
    if ((size_t)snprintf(p->name[p->nstrat], sizeof p->name[0], "%s", key) >= sizeof p->name[0] ||
        (size_t)snprintf(p->sets[p->nstrat], sizeof p->sets[0], "%s", value) >= sizeof p->sets[0])
        D2_ERROR(D2_ERANGE, "%s:%d: %s: strategy name or sets too long", path, line, key);
    p->strat_line[p->nstrat++] = line;
    return D2_OK;
}

/* split "a=1 b=2" into sets (in place) */
static int split_sets(char *text, const char **sets, size_t *n, size_t max)
{
    for (char *save = NULL, *t = strtok_r(text, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (*n == max) D2_ERROR(D2_ERANGE, "reproduce.ini: [fig9]: more than %zu settings", max);
        sets[(*n)++] = t;
    }
    return D2_OK;
}

/* Fig. 9: the same run under each strategy of [fig9], written as
 * timelines <dir>/<strategy>.csv; plots/fig9.gp draws the first layer step. */
static int fig9(const plan *p, const char *dir, const char *rdname)
{
    if (!p->model[0] || !p->device[0] || p->nstrat == 0)
        D2_ERROR(D2_EFORMAT, "experiments/reproduce.ini: [fig9] needs model, device and at least one strategy");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) D2_ERROR(D2_EIO, "%s: cannot create: %s", dir, strerror(errno));
    for (int i = 0; i < p->nstrat; i++) {
        char common[512], own[256], path[FILEIO_PATH_MAX];
        const char *sets[64];
        size_t n = 0;
        snprintf(common, sizeof common, "%s", p->common);
        snprintf(own, sizeof own, "%s", p->sets[i]);
        D2_TRY(split_sets(common, sets, &n, 64));
        D2_TRY(split_sets(own, sets, &n, 64));
        D2_TRY(fileio_pathf(path, sizeof path, "%s/%s.csv", dir, p->name[i]));
        sim_job j = {.model = p->model, .device = p->device, .sets = sets, .nsets = n, .seed = 1, .timeline = path,
                     .readings = rdname};
        sim_result *r;
        D2_TRY(sim_job_run(&j, &r));
        sim_result_free(r);
    }
    return D2_OK;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"quick", no_argument, NULL, 'q'},
        {"db", required_argument, NULL, 'd'}, {"out", required_argument, NULL, 'o'},
        {"jobs", required_argument, NULL, 'j'}, {"set", required_argument, NULL, 'S'},
        {"readings", required_argument, NULL, 'R'}, {NULL, 0, NULL, 0}};
    const char *sets[65];
    size_t nsets = 0;
    const char *rdname = REPRODUCE_READINGS;
    char rdset[PARAM_STR_MAX + 16];
    const char *dbp = "results/d2moe.db", *outdir = "plots";
    int quick = 0, c;
    long jobs = sysconf(_SC_NPROCESSORS_ONLN);
    if (jobs < 1) jobs = 1;
    while ((c = cli_getopt_long(argc, argv, "hqd:o:j:S:", opts, "S=", NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'q': quick = 1; break;
        case 'S':
            /* every run gets readings=--readings NAME after the sets: this one would be dropped without a word */
            if (!strncmp(optarg, "readings=", 9))
                return cli_usage_error("reproduce", "--set %s: the reading of every run is --readings NAME (default %s): give --readings %s",
                                       optarg, REPRODUCE_READINGS, optarg + 9);
            if (nsets == 64) return cli_usage_error("reproduce", "too many --set options (64 at most)");
            sets[nsets++] = optarg;
            break;
        case 'd': dbp = optarg; break;
        case 'o': outdir = optarg; break;
        case 'R': rdname = optarg; break;
        case 'j': {
            char *end;
            jobs = strtol(optarg, &end, 10);
            if (*end || jobs < 1 || jobs > 256) return cli_usage_error("reproduce", "-j %s: expected 1..256", optarg);
            break;
        }
        default: return cli_bad_option("reproduce", argc, argv);
        }
    }
    if (optind != argc) return cli_usage_error("reproduce", "unexpected argument '%s'", argv[optind]);
    {   /* every sweep and Fig. 9 under one reading (checked before anything runs) */
        readings rd;
        int rrc = runner_readings_load(&rd, rdname);
        if (rrc) return cli_fail(rrc);
        snprintf(rdset, sizeof rdset, "readings=%s", rdname);
        sets[nsets++] = rdset;
    }
    double t0 = clock_mono_s();
    char path[FILEIO_PATH_MAX], resdir[FILEIO_PATH_MAX];
    int rc = fileio_dir_of(dbp, resdir, sizeof resdir, NULL); /* results beside the store */
    if (rc) return cli_fail(rc);
    if (mkdir(resdir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "d2moe: %s: cannot create: %s\n", resdir, strerror(errno));
        return 1;
    }
    plan p;
    memset(&p, 0, sizeof p);
    /* specs and queries from ./, the installed data folder or the source tree */
    char expdir[FILEIO_PATH_MAX];
    rc = fileio_pathf(expdir, sizeof expdir, "%s", cli_data_dir("experiments", "reproduce.ini"));
    if (!rc) rc = fileio_pathf(path, sizeof path, "%s/reproduce.ini", expdir);
    if (!rc) rc = inifile_parse(path, plan_entry, &p, NULL);
    if (rc) return cli_fail(rc);
    /* every listed sweep loaded and its jobs checked before any work: a
     * bad or missing spec costs no quantizer run and no stored result */
    static sweep_spec *specs[REPRODUCE_SWEEPS_MAX];
    static char spec_name[REPRODUCE_SWEEPS_MAX][128];
    size_t nspec = 0;
    {
        char list[1024];
        snprintf(list, sizeof list, "%s", p.sweeps);
        char plan_path[FILEIO_PATH_MAX];
        snprintf(plan_path, sizeof plan_path, "%s", path);
        for (char *save = NULL, *name = strtok_r(list, " \t,", &save); name && !rc; name = strtok_r(NULL, " \t,", &save)) {
            sweep_spec *s = NULL;
            for (size_t i = 0; i < nspec && !rc; i++)
                if (!strcmp(spec_name[i], name)) { rc = D2_EFORMAT; d2_err_set("%s: listed twice", name); }
            if (!rc && nspec == REPRODUCE_SWEEPS_MAX) { rc = D2_ERANGE; d2_err_set("more than %d sweeps", REPRODUCE_SWEEPS_MAX); }
            if (!rc && strlen(name) >= sizeof spec_name[0]) { rc = D2_ERANGE; d2_err_set("%s: a name longer than %zu bytes", name, sizeof spec_name[0] - 1); }
            if (!rc) rc = fileio_pathf(path, sizeof path, "%s/%s.ini", expdir, name);
            if (!rc) rc = sweep_spec_load(path, quick, sets, nsets, runner_check, NULL, &s);
            if (!rc) rc = runner_prepare_spec(s);
            if (rc) { sweep_spec_free(s); break; } /* s: NULL when it did not load */
            snprintf(spec_name[nspec], sizeof spec_name[nspec], "%s", name);
            specs[nspec++] = s;
        }
        if (rc) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", d2_err_msg());
            d2_err_set("%s:%d: sweeps: %s", plan_path, p.sweeps_line, msg);
            for (size_t i = 0; i < nspec; i++) sweep_spec_free(specs[i]);
            return cli_fail(rc);
        }
        if (!p.model[0] || !p.device[0] || p.nstrat == 0) {
            for (size_t i = 0; i < nspec; i++) sweep_spec_free(specs[i]);
            return cli_fail((d2_err_set("%s: [fig9] needs model, device and at least one strategy", plan_path), D2_EFORMAT));
        }
    }

    printf("== d2moe reproduce%s: reading %s, results in %s, figures in %s, %ld workers ==\n", quick ? " --quick" : "", rdname,
           dbp, outdir, jobs);
    printf("-- step 1: MWQ per-level error table (for the accuracy estimate)\n");
    fflush(stdout);
    if ((rc = cli_reproduce_quantize(dbp, resdir, quick)) != 0) {
        for (size_t i = 0; i < nspec; i++) sweep_spec_free(specs[i]);
        return rc;
    }

    db *d;
    accuracy_model *acc = NULL;
    if (!(rc = db_open(dbp, &d))) {
        rc = accuracy_model_load_default(NULL, d, &acc);
        db_close(d);
    }
    if (rc) {
        for (size_t i = 0; i < nspec; i++) sweep_spec_free(specs[i]);
        return cli_fail(rc);
    }
    runner_ctx ctx = {acc, NULL};

    printf("-- step 2: sweeps\n");
    int status = 0;
    char list[1024];
    /* each sweep's variant: the --set overrides that change its jobs (a
     * value a spec already has is none of its overrides) */
    static char sv_name[REPRODUCE_SWEEPS_MAX][128], sv_var[REPRODUCE_SWEEPS_MAX][DB_VARIANT_MAX];
    const char *sv_sweeps[REPRODUCE_SWEEPS_MAX], *sv_variants[REPRODUCE_SWEEPS_MAX];
    size_t nsv = 0;
    for (size_t k = 0; k < nspec; k++) {
        sweep_spec *s = specs[k];
        const char *name = spec_name[k];
        specs[k] = NULL;
        snprintf(sv_name[nsv], sizeof sv_name[nsv], "%s", sweep_spec_name(s));
        sweep_spec_variant(s, sv_var[nsv]);
        sv_sweeps[nsv] = sv_name[nsv];
        sv_variants[nsv] = sv_var[nsv];
        nsv++;
        sweep_opts o = {.workers = (int)jobs, .shard_i = 0, .shard_n = 1, .run = runner_simulate, .user = &ctx,
                        .argc = cli_argc(), .argv = cli_argv()};
        cli_sweep_batch_env(&o);
        sweep_stats st;
        double ts = clock_mono_s();
        cli_sweep_signals_begin();
        rc = sweep_execute(s, dbp, &o, &st);
        printf("   %-10s %4zu jobs: %4zu run, %4zu stored before, %zu failed  %6.1f s  %s\n", name, st.total, st.done,
               st.skipped, st.failed, clock_mono_s() - ts, sweep_spec_description(s));
        if (st.failed) printf("   %-10s first failure: %s\n", name, st.first_error);
        fflush(stdout);
        rc = cli_sweep_signals_end(st.interrupted, rc); /* interrupted: ends the process, unless storing failed */
        sweep_spec_free(s);
        if (rc) {
            for (size_t i = k + 1; i < nspec; i++) sweep_spec_free(specs[i]);
            accuracy_model_free(acc);
            return cli_fail(rc);
        }
        if (st.failed) status = 1;
    }
    accuracy_model_free(acc);

    printf("-- step 3: Fig. 9 timelines\n");
    if ((rc = fileio_pathf(path, sizeof path, "%s/fig9", resdir)) || (rc = fig9(&p, path, rdname))) return cli_fail(rc);

    printf("-- step 3b: measured accuracy (d2moe eval on a real llama2.c checkpoint)\n");
    if (cli_reproduce_eval(dbp, quick) != 0) status = 1;

    printf("-- step 4: figures\n");
    fflush(stdout);
    char *pargv[] = {"plot", "all", "--db", (char *)dbp, "--out", (char *)outdir, NULL};
    optind = 1;
    if (cli_plot_variants(6, pargv, sv_sweeps, sv_variants, nsv) != 0) status = 1;

    printf("-- step 5: summary\n");
    if ((rc = db_open_readonly(dbp, &d))) return cli_fail(rc);
    snprintf(list, sizeof list, "%s", p.summary);
    for (char *save = NULL, *name = strtok_r(list, " \t,", &save); name; name = strtok_r(NULL, " \t,", &save)) {
        const char *variant; /* its sweeps' variant */
        if ((rc = fileio_pathf(path, sizeof path, "%s/summary/%s.sql", cli_data_dir("plots", "figures.ini"), name)) != D2_OK ||
            (rc = report_map_variant(path, NULL, sv_sweeps, sv_variants, nsv, "base", &variant)) != D2_OK) {
            printf("%s: not shown: %s\n", name, d2_err_msg());
            status = 1;
            continue;
        }
        if ((rc = report_print_sql(d, path, variant, stdout))) { status = cli_fail(rc); }
    }
    db_close(d);

    printf("-- step 6: claims audit (experiments/paper-claims.ini under each reading)\n");
    fflush(stdout);
    if (cli_reproduce_audit(dbp) != 0) status = 1;
    if ((rc = fileio_pathf(path, sizeof path, "%s/report.html", resdir)) != D2_OK) status = cli_fail(rc);
    else if (cli_report_write(dbp, path, NULL, sv_sweeps, sv_variants, nsv, cli_data_dir("plots", "figures.ini"), 0) != 0) status = 1;
    printf("\n== done in %.1f s%s ==\n", clock_mono_s() - t0, status ? " (with failures above)" : "");
    return status;
}

const cli_cmd cli_cmd_reproduce = {"reproduce", "run every experiment, draw every figure, print the headline numbers", run};
