/* audit.h - the claims audit: a claims file (INI, one [claim NAME] section
 * per claim of a paper) is checked against simulate runs, case by case, and
 * each claim gets a verdict: reproduced, exceeds-bound (the claim asks for
 * more than the run's bound_tps allows), not-reproduced, or error.  It runs
 * the simulator and writes the store; it does not print (src/cli does).
 * The claims format is described in docs/audit.md. */
#ifndef D2_RESULTS_AUDIT_H
#define D2_RESULTS_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include "results/db.h"

typedef enum audit_relation {
    AUDIT_VALUE,     /* metric(policy) */
    AUDIT_RATIO,     /* metric(policy) / metric(baseline) */
    AUDIT_GAIN,      /* metric at budget_hi / metric at budget */
    AUDIT_REDUCTION, /* 1 - metric(policy) / metric(baseline) */
    AUDIT_STATUS,    /* the run's status, "ok" or "oom" */
} audit_relation;

typedef enum audit_verdict {
    AUDIT_REPRODUCED,     /* the quantified cases lie inside [min, max] */
    AUDIT_EXCEEDS_BOUND,  /* every miss lies below min, and min is above the case's bound */
    AUDIT_NOT_REPRODUCED, /* otherwise */
    AUDIT_ERROR,          /* a case could not run */
} audit_verdict;

const char *audit_relation_name(audit_relation r);
const char *audit_verdict_name(audit_verdict v);

/* One case of a claim: a (model, device, budget) combination and what the
 * runs gave.  value and bound are NaN when there is none (bound: the
 * relation has no bound, or the runs report no bound_tps). */
typedef struct audit_case {
    char model[128];
    char device[128];
    int64_t budget;     /* bytes (sim.budget of the policy run); 0 = the sim default */
    int ran;            /* 0: a run of this case failed (see error) */
    char error[256];    /* why, when !ran */
    char status[8];     /* "ok", or "oom" when any run of the case was out of memory */
    double value;       /* the relation's value; NaN for an oom case (status claims: 1 = oom, 0 = ok) */
    double bound;       /* upper bound on value from bound_tps; NaN = none */
    int64_t run_id[2];  /* stored runs (policy or budget run, baseline or budget_hi run); 0 = none */
} audit_case;

/* What the verdict needs of a claim. */
typedef struct audit_rule {
    audit_relation relation;
    double min, max;    /* claimed range, inclusive (not used by status) */
    int want_oom;       /* status claims: 1 = "oom", 0 = "ok" */
    int any;            /* quantifier: 0 = every case must hold, 1 = at least one */
} audit_rule;

/* The verdict of a claim from its cases (pure; see docs/audit.md):
 * error when a case did not run; reproduced when every case (any: some
 * case) holds; exceeds-bound when the claim does not hold, every case that
 * misses lies below min and min > its bound; not-reproduced otherwise. */
audit_verdict audit_decide(const audit_rule *rule, const audit_case *cases, size_t n);
/* Does one case hold?  (value inside [min, max], or the status wanted) */
int audit_case_holds(const audit_rule *rule, const audit_case *c);

/* ---- a claims file ---------------------------------------------------- */
typedef struct audit_claims audit_claims;

/* Parse and check a claims file: unknown key or section, bad relation,
 * min > max, unknown system, model or device, missing required key, bad
 * number: D2_EFORMAT/D2_ERANGE/D2_ENOTFOUND with "file:line: field: why". */
int audit_claims_load(const char *path, audit_claims **out);
void audit_claims_free(audit_claims *c);
size_t audit_claims_count(const audit_claims *c);
const char *audit_claims_path(const audit_claims *c);

/* ---- running an audit --------------------------------------------------- */
typedef struct audit_report audit_report;

typedef struct audit_opts {
    const char *readings; /* reading-set name or path; NULL or "" = none */
    db *store;            /* NULL, or store every run and the audit here */
    const char *store_path; /* without store: NULL, or the store to open (and
                             * create) only once every case ran, so a refused
                             * audit leaves no new store behind */
    int argc;             /* command line stored with the runs */
    char **argv;
} audit_opts;

/* Run every case of every claim (a configuration shared by several cases
 * runs once) and decide the verdicts.  A case that cannot run is an error
 * verdict, not a failure.  A metric the simulator does not report is a
 * claims-file error (D2_EFORMAT, file:line), found at the claim's first
 * run, before anything is stored.  With opts->store, the runs and then the
 * audit (tables audits, audit_claims, audit_cases) are written. */
int audit_run(const audit_claims *c, const audit_opts *opts, audit_report **out);
void audit_report_free(audit_report *r);

/* An audit already in the store for this claims file (same content hash),
 * reading set (NAME as given, NULL or "" = the default) and code version:
 * *id its audits.id (0 = none) and tally[v] the number of claims with
 * verdict v.  For reruns that skip what is stored. */
int audit_stored_find(db *d, const audit_claims *c, const char *readings, int64_t *id, size_t tally[4]);

/* One claim of a report (read-only). */
typedef struct audit_claim_result {
    const char *name;
    const char *source;
    const char *metric;   /* "" for status claims */
    const char *policy;
    const char *baseline; /* "" when none */
    audit_rule rule;
    audit_verdict verdict;
    const audit_case *cases;
    size_t ncases;
} audit_claim_result;

size_t audit_report_count(const audit_report *r);
void audit_report_claim(const audit_report *r, size_t i, audit_claim_result *out);
const char *audit_report_readings(const audit_report *r); /* "" = none */
int64_t audit_report_id(const audit_report *r);            /* audits.id when stored, else 0 */
/* How many claims got verdict v. */
size_t audit_report_tally(const audit_report *r, audit_verdict v);

#endif
