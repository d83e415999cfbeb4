/* cmd_audit.c - `d2moe audit --claims FILE`: check a paper's claims (an INI
 * claims file, docs/audit.md) against simulate runs under a reading set and
 * print each claim's verdict as a table or one JSON object; --db stores the
 * runs and the audit.  The work is results/audit.c; this file parses and
 * prints (also for the audit step of `reproduce`). */
#include "cli/cli.h"
#include "cli/reproduce.h"
#include "core/err.h"
#include "sim/readings.h"
#include "results/runner.h"
#include "results/audit.h"
#include "results/db.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: d2moe audit --claims FILE [--readings NAME] [--json] [--db FILE]\n\n"
            "Check the claims of FILE (INI, one [claim NAME] section per claim: what the\n"
            "paper states, the runs that test it and the claimed range; docs/audit.md)\n"
            "against simulate runs under the reading set NAME (experiments/readings/NAME.ini\n"
            "or a path; default datasheet, as for simulate; none applies no reading).  Each\n"
            "claim gets a verdict: reproduced (its cases lie in the claimed range),\n"
            "exceeds-bound (it misses below the range, and the range lies above what the\n"
            "run's bound_tps allows), not-reproduced, or error (a case could not run).\n"
            "--json prints one object; --db stores every run and the audit (tables audits,\n"
            "audit_claims, audit_cases).  Exit 0 when the audit ran, whatever the verdicts;\n"
            "2 for a bad claims file or argument; 1 otherwise.\n");
}

static void fmt_num(char *buf, size_t n, double v)
{
    if (isfinite(v)) snprintf(buf, n, "%.4g", v);
    else snprintf(buf, n, "-");
}

static void fmt_budget(char *buf, size_t n, int64_t b)
{
    if (b % 1000000 == 0) snprintf(buf, n, "%lldM", (long long)(b / 1000000));
    else snprintf(buf, n, "%lld", (long long)b);
}

static void what(const audit_claim_result *c, char *buf, size_t n)
{
    switch (c->rule.relation) {
    case AUDIT_VALUE: snprintf(buf, n, "%s of %s", c->metric, c->policy); break;
    case AUDIT_RATIO: snprintf(buf, n, "%s %s/%s", c->metric, c->policy, c->baseline); break;
    case AUDIT_GAIN: snprintf(buf, n, "%s gain of %s", c->metric, c->policy); break;
    case AUDIT_REDUCTION: snprintf(buf, n, "1-%s %s/%s", c->metric, c->policy, c->baseline); break;
    case AUDIT_STATUS: snprintf(buf, n, "status of %s", c->policy); break;
    }
}

/* The table: one line per claim; with cases, each case below its claim. */
void cli_audit_print(const audit_report *r, FILE *out, int cases)
{
    fprintf(out, "%-37s %-15s %6s  %-17s %-19s %s\n", "claim", "verdict", "holds", "claimed", "observed", "what");
    for (size_t i = 0; i < audit_report_count(r); i++) {
        audit_claim_result c;
        audit_report_claim(r, i, &c);
        size_t hold = 0;
        double lo = INFINITY, hi = -INFINITY;
        for (size_t j = 0; j < c.ncases; j++) {
            hold += (size_t)audit_case_holds(&c.rule, &c.cases[j]);
            if (c.cases[j].ran && isfinite(c.cases[j].value)) {
                if (c.cases[j].value < lo) lo = c.cases[j].value;
                if (c.cases[j].value > hi) hi = c.cases[j].value;
            }
        }
        char claimed[64], observed[64], a[32], b[32], w[256];
        if (c.rule.relation == AUDIT_STATUS) {
            snprintf(claimed, sizeof claimed, "%s", c.rule.want_oom ? "oom" : "ok");
            size_t noom = 0;
            for (size_t j = 0; j < c.ncases; j++) noom += c.cases[j].ran && !strcmp(c.cases[j].status, "oom");
            snprintf(observed, sizeof observed, "%zu oom, %zu ok", noom, c.ncases - noom);
        } else {
            fmt_num(a, sizeof a, c.rule.min);
            fmt_num(b, sizeof b, c.rule.max);
            snprintf(claimed, sizeof claimed, "%s..%s%s", a, b, c.rule.any ? " any" : "");
            fmt_num(a, sizeof a, lo);
            fmt_num(b, sizeof b, hi);
            if (lo > hi) snprintf(observed, sizeof observed, "-");
            else if (lo == hi) snprintf(observed, sizeof observed, "%s", a);
            else snprintf(observed, sizeof observed, "%s..%s", a, b);
        }
        what(&c, w, sizeof w);
        char holds[32];
        snprintf(holds, sizeof holds, "%zu/%zu", hold, c.ncases);
        fprintf(out, "%-37s %-15s %6s  %-17s %-19s %s\n", c.name, audit_verdict_name(c.verdict), holds, claimed, observed, w);
        if (!cases) continue;
        fprintf(out, "    source: %s\n", c.source);
        for (size_t j = 0; j < c.ncases; j++) {
            const audit_case *k = &c.cases[j];
            char bud[32], v[32], bd[32];
            fmt_budget(bud, sizeof bud, k->budget);
            if (!k->ran) {
                fprintf(out, "    %-18s %-16s %7s  error: %s\n", k->model, k->device, bud, k->error);
                continue;
            }
            if (c.rule.relation == AUDIT_STATUS) snprintf(v, sizeof v, "%s", k->status);
            else fmt_num(v, sizeof v, k->value);
            fmt_num(bd, sizeof bd, k->bound);
            const char *mark = audit_case_holds(&c.rule, k) ? "holds"
                               : !strcmp(k->status, "oom") && c.rule.relation != AUDIT_STATUS ? "misses (oom)"
                               : isfinite(k->value) && k->value < c.rule.min ? "misses below"
                               : "misses";
            fprintf(out, "    %-18s %-16s %7s  value %-10s bound %-10s %s\n", k->model, k->device, bud, v, bd, mark);
        }
    }
    fprintf(out, "%zu claims: %zu reproduced, %zu exceeds-bound, %zu not-reproduced, %zu error\n", audit_report_count(r),
            audit_report_tally(r, AUDIT_REPRODUCED), audit_report_tally(r, AUDIT_EXCEEDS_BOUND),
            audit_report_tally(r, AUDIT_NOT_REPRODUCED), audit_report_tally(r, AUDIT_ERROR));
}

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static char *to_json(const audit_report *r)
{
    json_t *o = json_object(), *claims = json_array();
    const char *rd = audit_report_readings(r);
    json_object_set_new(o, "readings", rd[0] ? json_string(rd) : json_null());
    for (size_t i = 0; i < audit_report_count(r); i++) {
        audit_claim_result c;
        audit_report_claim(r, i, &c);
        int status = c.rule.relation == AUDIT_STATUS;
        json_t *jc = json_object(), *cases = json_array();
        json_object_set_new(jc, "name", json_string(c.name));
        json_object_set_new(jc, "source", json_string(c.source));
        json_object_set_new(jc, "verdict", json_string(audit_verdict_name(c.verdict)));
        json_object_set_new(jc, "relation", json_string(audit_relation_name(c.rule.relation)));
        json_object_set_new(jc, "metric", status ? json_null() : json_string(c.metric));
        for (size_t j = 0; j < c.ncases; j++) {
            const audit_case *k = &c.cases[j];
            json_t *jk = json_object();
            json_object_set_new(jk, "model", json_string(k->model));
            json_object_set_new(jk, "device", json_string(k->device));
            json_object_set_new(jk, "budget", json_integer(k->budget));
            if (status) json_object_set_new(jk, "value", k->ran ? json_string(k->status) : json_null());
            else json_object_set_new(jk, "value", k->ran ? num_or_null(k->value) : json_null());
            json_object_set_new(jk, "bound", num_or_null(k->bound));
            json_object_set_new(jk, "low", status ? json_null() : json_real(c.rule.min));
            json_object_set_new(jk, "high", status ? json_null() : json_real(c.rule.max));
            json_object_set_new(jk, "status", json_string(k->status));
            if (!k->ran) json_object_set_new(jk, "error", json_string(k->error));
            json_array_append_new(cases, jk);
        }
        json_object_set_new(jc, "cases", cases);
        json_array_append_new(claims, jc);
    }
    json_object_set_new(o, "claims", claims);
    if (audit_report_id(r)) json_object_set_new(o, "audit_id", json_integer(audit_report_id(r)));
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(o);
    return s;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},          {"claims", required_argument, NULL, 'c'},
        {"readings", required_argument, NULL, 'r'}, {"json", no_argument, NULL, 'j'},
        {"db", required_argument, NULL, 'D'},       {NULL, 0, NULL, 0}};
    const char *claims_path = NULL, *rdname = NULL, *dbpath = NULL;
    int json = 0, c;
    while ((c = cli_getopt_long(argc, argv, "hc:r:jD:", opts, NULL, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'c': claims_path = optarg; break;
        case 'r': rdname = optarg; break;
        case 'j': json = 1; break;
        case 'D': dbpath = optarg; break;
        default: return cli_bad_option("audit", argc, argv);
        }
    }
    if (optind < argc) return cli_usage_error("audit", "unexpected argument '%s'", argv[optind]);
    if (!claims_path) return cli_usage_error("audit", "--claims FILE is required");
    if (rdname && !rdname[0]) return cli_usage_error("audit", "--readings: empty name");
    int rc;
    if (rdname) { /* named as typed, before the claims are read and anything runs */
        readings rdc;
        if ((rc = runner_readings_load(&rdc, rdname)) != D2_OK) {
            d2_err_prefix("--readings %s: ", rdname);
            return cli_fail(rc);
        }
    }
    audit_claims *cl;
    rc = audit_claims_load(claims_path, &cl);
    if (rc) return cli_fail(rc);
    /* an existing store is opened (and checked) before the runs; a new one
     * is created only when the audit succeeded: a refused audit (a bad
     * reading, a metric the simulator does not report) leaves none behind */
    db *d = NULL;
    struct stat dst;
    if (dbpath && (rc = db_path_check(dbpath))) { audit_claims_free(cl); return cli_fail(rc); }
    if (dbpath && lstat(dbpath, &dst) == 0 && (rc = db_open(dbpath, &d))) { audit_claims_free(cl); return cli_fail(rc); }
    audit_opts o = {.readings = rdname, .store = d, .store_path = d ? NULL : dbpath, .argc = cli_argc(), .argv = cli_argv()};
    audit_report *r;
    rc = audit_run(cl, &o, &r);
    db_close(d);
    audit_claims_free(cl);
    if (rc) return cli_fail(rc);
    if (json) {
        char *s = to_json(r);
        audit_report_free(r);
        if (!s) { fprintf(stderr, "d2moe audit: out of memory\n"); return 1; }
        puts(s);
        free(s);
        return 0;
    }
    printf("audit of %s, readings %s\n", claims_path, audit_report_readings(r));
    cli_audit_print(r, stdout, 1);
    if (audit_report_id(r)) printf("audit_id = %lld in %s\n", (long long)audit_report_id(r), dbpath);
    audit_report_free(r);
    return 0;
}

const cli_cmd cli_cmd_audit = {"audit", "check a paper's claims (claims file) against simulate runs, with verdicts", run};
