/* cmd_simulate.c - `d2moe simulate`: one configuration through the serving
 * simulator (sim_job_run), printed as text or one JSON object, optionally
 * stored in the results database.  No model logic here. */
#include "cli/cli.h"
#include "cli/simopts.h"
#include "core/err.h"
#include "core/fileio.h"
#include "results/db.h"
#include "results/runner.h"
#include "sim/arrival.h"
#include "sim/bitroute.h"
#include "sim/mem.h"
#include "sim/plan.h"
#include "sim/policy.h"
#include "sim/prefetch.h"
#include "sim/sim.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>


static void usage(FILE *out)
{
    fprintf(out,
            "usage: d2moe simulate --model M --device D [--policy P] [--budget SIZE]\n"
            "                      [--requests R] [--prompt N] [--gen N] [--trace FILE]\n"
            "                      [--seed S] [--readings NAME] [--set table.key=value]...\n"
            "                      [--db FILE] [--json] [--timeline FILE] [--list]\n\n"
            "Simulate serving R requests (synchronous batch: prefill N tokens, then\n"
            "generate N) with a named system on a device profile.  Without --trace the\n"
            "routing comes from the trace generator preset for the model.  --policy,\n"
            "--budget, --requests, --prompt and --gen are short for --set sim.KEY=...;\n"
            "--set also takes model.KEY and device.KEY.  --list prints the named systems\n"
            "and the policies they combine.  --readings names the reading set applied to\n"
            "every system (experiments/readings/NAME.ini; default datasheet, none = the\n"
            "profiles as they are); the output names it (reading = NAME, in JSON\n"
            "\"reading\").  Out of memory is a result (status oom, exit 0); bad\n"
            "arguments exit 2.  See docs/simulator.md.\n\n"
            "sim keys:\n");
    param_print_help(&sim_param_table, out);
}

static void list(FILE *out)
{
    fprintf(out, "systems (--policy):\n");
    for (size_t i = 0; i < policy_count(); i++) {
        const policy_system *s = policy_at(i);
        /* a name wider than the column gets a line of its own */
        if (strlen(s->name) > 17) fprintf(out, "  %s\n  %-17s %s\n", s->name, "", s->summary);
        else fprintf(out, "  %-17s %s\n", s->name, s->summary);
        fprintf(out, "  %-17s [%s", "", s->nested ? "nested" : "copies");
        for (int k = 0; k < s->levels; k++) fprintf(out, "%sINT%d", k ? "/" : " ", s->bits[k]);
        fprintf(out, ", caps %s, bitroute %s, plan %s, mem %s, prefetch %s]\n", s->caps, s->bitroute, s->plan, s->mem,
                s->prefetch);
    }
    fprintf(out, "bit-width routing (sim.bitroute):\n");
#define LIST_ROWS(prefix)                                                                        \
    for (size_t i = 0; i < prefix##_count(); i++) fprintf(out, "  %-17s %s\n", prefix##_at(i)->name, prefix##_at(i)->summary)
    LIST_ROWS(bitroute_type);
    fprintf(out, "planners (sim.plan):\n");
    LIST_ROWS(plan);
    fprintf(out, "preloading predictors (sim.prefetch):\n");
    LIST_ROWS(prefetch);
    fprintf(out, "arrival processes (sim.arrival):\n");
    LIST_ROWS(arrival);
    fprintf(out, "memory policies (sim.mem):\n");
    LIST_ROWS(mem_policy);
#undef LIST_ROWS
}

static int json_metric(const char *name, double v, const char *unit, void *u)
{
    (void)unit;
    return json_object_set_new(u, name, json_real(v)) ? D2_ENOMEM : D2_OK;
}
static int json_param(const char *key, const char *value, const char *units, void *u)
{
    (void)units;
    return json_object_set_new(u, key, json_string(value)) ? D2_ENOMEM : D2_OK;
}
/* the reading the run ran under (param reading.name), for the output */
static int find_reading(const char *key, const char *value, const char *units, void *u)
{
    (void)units;
    if (!strcmp(key, "reading.name")) snprintf(u, PARAM_STR_MAX, "%s", value);
    return D2_OK;
}
static int store(const char *path, const sim_result *r, const simopts *so, double trace_repeats, int64_t *id)
{
    db *d;
    D2_TRY(db_open(path, &d));
    db_run *run = db_run_new("simulate", "sim");
    if (!run) { db_close(d); D2_ERROR(D2_ENOMEM, "out of memory"); }
    db_run_cmdline(run, cli_argc(), cli_argv());
    int rc = runner_fill_run(run, r);
    if (!rc && trace_repeats == trace_repeats) rc = db_run_metric(run, "trace_repeats", trace_repeats, "times");
    /* variant: the --set overrides and --readings (src/results/db.h) */
    const char *ov[SIMOPTS_MAX_SETS + 1];
    char rd[PARAM_STR_MAX + 16], *canon = NULL;
    size_t nov = 0;
    for (size_t i = 0; i < so->ngiven; i++) ov[nov++] = so->given[i];
    if (so->readings) { snprintf(rd, sizeof rd, "readings=%s", so->readings); ov[nov++] = rd; }
    if (!rc) rc = db_overrides_canon(ov, nov, &canon);
    if (!rc) rc = db_run_variant(run, NULL, canon);
    free(canon);
    if (!rc) rc = db_run_write(d, run, id);
    db_run_free(run);
    db_close(d);
    return rc;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},       {"list", no_argument, NULL, 'L'},
        {"model", required_argument, NULL, 'm'}, {"device", required_argument, NULL, 'd'},
        SIMOPTS_LONG,                            {"trace", required_argument, NULL, 't'},
        {"db", required_argument, NULL, 'D'},    {"json", no_argument, NULL, 'j'},
        {"timeline", required_argument, NULL, 'T'}, {NULL, 0, NULL, 0}};
    static simopts so;
    simopts_init(&so);
    sim_job job = {.seed = 1};
    const char *dbpath = NULL;
    int json = 0, c;
    while ((c = cli_getopt_long(argc, argv, "hLm:d:p:b:r:P:g:t:S:s:E:D:jT:", opts, "s=", NULL)) != -1) {
        int t = simopts_take(&so, c, optarg, "simulate");
        if (t == 1) continue;
        if (t) return t;
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'L': list(stdout); return 0;
        case 'm': job.model = optarg; break;
        case 'd': job.device = optarg; break;
        case 't': job.trace = optarg; break;
        case 'D': dbpath = optarg; break;
        case 'j': json = 1; break;
        case 'T': job.timeline = optarg; break;
        default: return cli_bad_option("simulate", argc, argv);
        }
    }
    if (simopts_finish(&so, "simulate")) return 2;
    job.seed = so.seed;
    job.readings = so.readings;
    if (optind < argc) return cli_usage_error("simulate", "unexpected argument '%s'", argv[optind]);
    if (!job.model) return cli_usage_error("simulate", "--model is required");
    if (!job.device) return cli_usage_error("simulate", "--device is required");
    job.sets = so.sets;
    job.nsets = so.nsets;
    /* outputs that are a FIFO, device or symlink, or one of the inputs
     * (the store, the trace; the profiles once read), refused before the run */
    if (job.trace) fileio_note_input(job.trace);
    int rc = dbpath ? db_path_check(dbpath) : D2_OK; /* and a store in a missing folder */
    if (rc == D2_OK && dbpath) fileio_note_store(dbpath);
    if (rc == D2_OK && job.timeline) rc = fileio_out_check(job.timeline);
    if (rc) return cli_fail(rc);
    if (job.timeline && dbpath && fileio_same_target(job.timeline, dbpath))
        return cli_usage_error("simulate", "--timeline and --db name the same file %s", dbpath);
    sim_result *r;
    rc = sim_job_run(&job, &r);
    if (rc) return cli_fail(rc);
    double repeats = 1;
    if (job.trace) { /* say it when the trace is shorter than the run (stored as trace_repeats) */
        char why[600];
        if ((rc = runner_result_trace_repeats(r, job.trace, &repeats, why, sizeof why))) { sim_result_free(r); return cli_fail(rc); }
        if (repeats > 1) fprintf(stderr, "d2moe simulate: note: %s: its routing is repeated %.0f times\n", why, repeats);
        if ((rc = runner_result_trace_model(r, job.trace, why, sizeof why))) { sim_result_free(r); return cli_fail(rc); }
        if (why[0]) fprintf(stderr, "d2moe simulate: note: %s\n", why);
    }
    int64_t id = 0;
    if (dbpath && (rc = store(dbpath, r, &so, job.trace ? repeats : NAN, &id))) {
        sim_result_free(r);
        return cli_fail(rc);
    }
    /* the reading is said in both forms: the same configuration gives other
     * numbers under another reading (README: datasheet vs paper-testbed) */
    char reading[PARAM_STR_MAX] = "";
    sim_result_foreach_param(r, find_reading, reading);
    if (json) {
        json_t *o = json_object(), *params = json_object();
        json_object_set_new(o, "status", json_string(sim_result_status(r)));
        if (sim_result_reason(r)[0]) json_object_set_new(o, "reason", json_string(sim_result_reason(r)));
        json_object_set_new(o, "reading", json_string(reading));
        sim_result_foreach_metric(r, json_metric, o);
        sim_result_foreach_param(r, json_param, params);
        json_object_set_new(o, "params", params);
        if (dbpath) json_object_set_new(o, "run_id", json_integer(id));
        char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
        json_decref(o);
        if (!s) { sim_result_free(r); fprintf(stderr, "d2moe simulate: out of memory\n"); return 1; }
        puts(s);
        free(s);
    } else {
        sim_result_print(r, stdout);
        printf("%-22s = %s\n", "reading", reading);
        if (dbpath) printf("%-22s = %lld\n", "run_id", (long long)id);
    }
    sim_result_free(r);
    return 0;
}

const cli_cmd cli_cmd_simulate = {"simulate", "simulate serving a batch with a named system (--list: systems)", run};
