/* audit.c - the claims audit (see audit.h and docs/audit.md): the claims
 * reader and its checks, the runs behind each case (a configuration shared
 * by several cases runs once), the verdict rule, and the audit's rows in the
 * store.  It does not print. */
#include "results/audit.h"
#include "core/device.h"
#include "core/err.h"
#include "core/vec.h"
#include "core/fileio.h"
#include "core/hash.h"
#include "core/inifile.h"
#include "core/model.h"
#include "core/units.h"
#include "core/version.h"
#include "results/runner.h"
#include "sim/policy.h"
#include "sim/readings.h"
#include "sim/sim.h"

#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Bytes of a claims file line read by check_headers (the INI reader refuses
 * longer ones first), and of a configuration's key (model, device, seed and
 * the settings; a claim whose key does not fit is refused, never cut) */
#define AUDIT_LINE_MAX 4096
#define AUDIT_KEY_MAX 4096

#define AUDIT_MAX_LIST 16   /* items of a model, device or budget list */
#define AUDIT_MAX_SETS 32   /* table.key settings of one claim */
#define AUDIT_NAME_MAX 128

const char *audit_relation_name(audit_relation r)
{
    static const char *const names[] = {
        [AUDIT_VALUE] = "value", [AUDIT_RATIO] = "ratio", [AUDIT_GAIN] = "gain",
        [AUDIT_REDUCTION] = "reduction", [AUDIT_STATUS] = "status",
    };
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

const char *audit_verdict_name(audit_verdict v)
{
    static const char *const names[] = {
        [AUDIT_REPRODUCED] = "reproduced", [AUDIT_EXCEEDS_BOUND] = "exceeds-bound",
        [AUDIT_NOT_REPRODUCED] = "not-reproduced", [AUDIT_ERROR] = "error",
    };
    return (unsigned)v < sizeof names / sizeof names[0] ? names[v] : "?";
}

/* ---- the verdict ---------------------------------------------------------- */

int audit_case_holds(const audit_rule *rule, const audit_case *c)
{
    if (!c->ran) return 0;
    if (rule->relation == AUDIT_STATUS) return (strcmp(c->status, "oom") == 0) == (rule->want_oom != 0);
    return isfinite(c->value) && c->value >= rule->min && c->value <= rule->max;
}

audit_verdict audit_decide(const audit_rule *rule, const audit_case *cases, size_t n)
{
    size_t hold = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cases[i].ran) return AUDIT_ERROR;
        hold += (size_t)audit_case_holds(rule, &cases[i]);
    }
    if (n > 0 && (rule->any ? hold > 0 : hold == n)) return AUDIT_REPRODUCED;
    if (n == 0 || rule->relation == AUDIT_STATUS) return AUDIT_NOT_REPRODUCED;
    /* the claim fails: is every miss below min, where the bound rules min out? */
    for (size_t i = 0; i < n; i++) {
        const audit_case *c = &cases[i];
        if (audit_case_holds(rule, c)) continue;
        if (!(isfinite(c->value) && c->value < rule->min && isfinite(c->bound) && rule->min > c->bound))
            return AUDIT_NOT_REPRODUCED;
    }
    return AUDIT_EXCEEDS_BOUND;
}

/* ---- the claims file ------------------------------------------------------ */

enum key {
    K_SOURCE, K_MODEL, K_DEVICE, K_POLICY, K_BASELINE, K_REQUESTS, K_PROMPT, K_GEN, K_BUDGET, K_BUDGET_HI,
    K_BASELINE_BUDGET, K_METRIC, K_RELATION, K_MIN, K_MAX, K_STATUS, K_QUANTIFIER, K_SEED, K_N
};
static const char *const key_names[K_N] = {
    [K_SOURCE] = "source", [K_MODEL] = "model", [K_DEVICE] = "device", [K_POLICY] = "policy",
    [K_BASELINE] = "baseline", [K_REQUESTS] = "requests", [K_PROMPT] = "prompt", [K_GEN] = "gen",
    [K_BUDGET] = "budget", [K_BUDGET_HI] = "budget_hi", [K_BASELINE_BUDGET] = "baseline_budget",
    [K_METRIC] = "metric", [K_RELATION] = "relation", [K_MIN] = "min", [K_MAX] = "max",
    [K_STATUS] = "status", [K_QUANTIFIER] = "quantifier", [K_SEED] = "seed",
};

typedef struct claim {
    char name[AUDIT_NAME_MAX];
    char source[512];
    char models[AUDIT_MAX_LIST][AUDIT_NAME_MAX];
    size_t nmodels;
    char devices[AUDIT_MAX_LIST][AUDIT_NAME_MAX];
    size_t ndevices;
    int64_t budgets[AUDIT_MAX_LIST]; /* bytes */
    size_t nbudgets;
    char policy[AUDIT_NAME_MAX], baseline[AUDIT_NAME_MAX];
    int64_t requests, prompt, gen;   /* requests; tokens per request */
    int64_t budget_hi, baseline_budget; /* bytes; baseline_budget 0 = the case's budget */
    uint64_t seed;
    char metric[64];
    audit_rule rule;
    char sets[AUDIT_MAX_SETS][PARAM_STR_MAX + 64]; /* table.key=value */
    int set_line[AUDIT_MAX_SETS];
    size_t nsets;
    int line[K_N];                   /* line of each key given; 0 = absent */
    int first_line;                  /* line of its first key */
} claim;

struct audit_claims {
    char *path;
    char hash[33];                   /* XXH3-128 of the file */
    claim *a;
    size_t n, cap;
};

size_t audit_claims_count(const audit_claims *c) { return c->n; }
const char *audit_claims_path(const audit_claims *c) { return c->path; }

void audit_claims_free(audit_claims *c)
{
    if (!c) return;
    free(c->a);
    free(c->path);
    free(c);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

/* Split a comma list into items (trimmed, none empty, each under max bytes). */
static int split_list(const char *value, char items[][AUDIT_NAME_MAX], size_t *n, const char *where, const char *key)
{
    char buf[2048];
    if (strlen(value) >= sizeof buf) D2_ERROR(D2_EFORMAT, "%s: %s: list too long", where, key);
    snprintf(buf, sizeof buf, "%s", value);
    *n = 0;
    char *p = buf;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        char *item = trim(p);
        if (!*item) D2_ERROR(D2_EFORMAT, "%s: %s: empty item in \"%s\"", where, key, value);
        if (*n == AUDIT_MAX_LIST) D2_ERROR(D2_ERANGE, "%s: %s: more than %d items", where, key, AUDIT_MAX_LIST);
        if (strlen(item) >= AUDIT_NAME_MAX) D2_ERROR(D2_EFORMAT, "%s: %s: \"%s\" is too long", where, key, item);
        snprintf(items[(*n)++], AUDIT_NAME_MAX, "%s", item);
        if (!comma) break;
        p = comma + 1;
    }
    return D2_OK;
}

/* A size in bytes (1600M, 2Gi), checked against sim.budget's range. */
static int parse_bytes(const char *value, const char *where, const char *key, int64_t *out)
{
    if (units_parse_int64(value, out) != 0 || *out <= 0)
        D2_ERROR(D2_EFORMAT, "%s: %s: \"%s\" is not a positive size in bytes (e.g. 1600M)", where, key, value);
    char w[600];
    snprintf(w, sizeof w, "%s: %s", where, key);
    sim_params scratch;
    param_defaults(&sim_param_table, &scratch);
    return param_set(&sim_param_table, &scratch, "budget", value, w, NULL);
}

/* requests, prompt, gen: an integer in the sim table's range for that key. */
static int parse_sim_int(const char *value, const char *where, const char *key, int64_t *out)
{
    sim_params scratch;
    param_defaults(&sim_param_table, &scratch);
    D2_TRY(param_set(&sim_param_table, &scratch, key, value, where, NULL));
    if (units_parse_int64(value, out) != 0) D2_ERROR(D2_EFORMAT, "%s: %s: \"%s\" is not an integer", where, key, value);
    return D2_OK;
}

static int parse_number(const char *value, const char *where, const char *key, double *out)
{
    if (units_parse_double(value, out) != 0 || !isfinite(*out))
        D2_ERROR(D2_EFORMAT, "%s: %s: \"%s\" is not a number", where, key, value);
    return D2_OK;
}

static int check_system(const char *value, const char *where, const char *key)
{
    if (!policy_find(value))
        D2_ERROR(D2_ENOTFOUND, "%s: %s: unknown system \"%s\" (d2moe simulate --list names them)", where, key, value);
    return D2_OK;
}

static int valid_name(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') return 0;
    return 1;
}

typedef struct parse_ctx {
    audit_claims *c;
    claim *cur;
} parse_ctx;

static int claim_new(parse_ctx *p, const char *section, const char *path, int line)
{
    if (strncmp(section, "claim ", 6) != 0)
        D2_ERROR(D2_EFORMAT, "%s:%d: [%s]: unknown section (expected [claim NAME])", path, line, section);
    char name[AUDIT_NAME_MAX + 8];
    snprintf(name, sizeof name, "%s", section + 6);
    char *nm = trim(name);
    if (!valid_name(nm) || strlen(nm) >= AUDIT_NAME_MAX)
        D2_ERROR(D2_EFORMAT, "%s:%d: [%s]: a claim name is letters, digits, '-', '_' or '.' (under %d bytes)", path, line,
                 section, AUDIT_NAME_MAX);
    for (size_t i = 0; i < p->c->n; i++)
        if (!strcmp(p->c->a[i].name, nm)) D2_ERROR(D2_EFORMAT, "%s:%d: [%s]: claim \"%s\" given twice", path, line, section, nm);
    D2_TRY(VEC_RESERVE(p->c->a, p->c->cap, p->c->n + 1));
    claim *cl = &p->c->a[p->c->n++];
    memset(cl, 0, sizeof *cl);
    snprintf(cl->name, sizeof cl->name, "%s", nm);
    cl->requests = 32; /* the defaults: the paper's workload (PAPER.md section 5) */
    cl->prompt = 128;
    cl->gen = 128;
    cl->seed = 1;
    cl->first_line = line;
    p->cur = cl;
    return D2_OK;
}

static int entry(void *user, const char *section, const char *key, const char *value, const char *path, int line)
{
    parse_ctx *p = user;
    char section_name[AUDIT_NAME_MAX + 8];
    if (!p->cur || snprintf(section_name, sizeof section_name, "claim %s", p->cur->name) < 0 || strcmp(section, section_name)) {
        if (!section[0]) D2_ERROR(D2_EFORMAT, "%s:%d: %s: outside a [claim NAME] section", path, line, key);
        D2_TRY(claim_new(p, section, path, line));
    }
    claim *cl = p->cur;
    char where[FILEIO_PATH_MAX + 16]; /* "path:line" */
    snprintf(where, sizeof where, "%s:%d", path, line);

    if (strchr(key, '.')) { /* table.key = value: a setting of every run of the claim */
        static const char *const own[] = {"sim.policy", "sim.budget", "sim.requests", "sim.prompt", "sim.gen", "sim.seed"};
        for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
            if (!strcmp(key, own[i]))
                D2_ERROR(D2_EFORMAT, "%s: %s: set it with the claim's own key %s", where, key, strchr(own[i], '.') + 1);
        for (size_t i = 0; i < cl->nsets; i++) {
            size_t kl = strlen(key);
            if (!strncmp(cl->sets[i], key, kl) && cl->sets[i][kl] == '=')
                D2_ERROR(D2_EFORMAT, "%s: %s: given twice in [claim %s] (first at line %d)", where, key, cl->name, cl->set_line[i]);
        }
        D2_TRY(runner_check(key, value, where, NULL));
        if (cl->nsets == AUDIT_MAX_SETS) D2_ERROR(D2_ERANGE, "%s: %s: more than %d settings in one claim", where, key, AUDIT_MAX_SETS);
        if ((size_t)snprintf(cl->sets[cl->nsets], sizeof cl->sets[0], "%s=%s", key, value) >= sizeof cl->sets[0])
            D2_ERROR(D2_EFORMAT, "%s: %s: value too long", where, key);
        cl->set_line[cl->nsets++] = line;
        return D2_OK;
    }
    int k = 0;
    while (k < K_N && strcmp(key, key_names[k])) k++;
    if (k == K_N)
        D2_ERROR(D2_EFORMAT, "%s: %s: unknown key (source, model, device, policy, baseline, requests, prompt, gen, budget, "
                             "budget_hi, baseline_budget, metric, relation, min, max, status, quantifier, seed, or table.key)",
                 where, key);
    if (cl->line[k]) D2_ERROR(D2_EFORMAT, "%s: %s: given twice in [claim %s] (first at line %d)", where, key, cl->name, cl->line[k]);
    cl->line[k] = line;
    if (!value[0]) D2_ERROR(D2_EFORMAT, "%s: %s: empty value", where, key);

    switch (k) {
    case K_SOURCE:
        if (strlen(value) >= sizeof cl->source) D2_ERROR(D2_EFORMAT, "%s: source: longer than %zu bytes", where, sizeof cl->source - 1);
        snprintf(cl->source, sizeof cl->source, "%s", value);
        break;
    case K_MODEL:
        D2_TRY(split_list(value, cl->models, &cl->nmodels, where, key));
        for (size_t i = 0; i < cl->nmodels; i++) {
            model m;
            if (model_load(&m, cl->models[i]) != D2_OK) {
                d2_err_prefix("%s: model: \"%s\": ", where, cl->models[i]);
                return D2_ENOTFOUND;
            }
        }
        break;
    case K_DEVICE:
        D2_TRY(split_list(value, cl->devices, &cl->ndevices, where, key));
        for (size_t i = 0; i < cl->ndevices; i++) {
            device d;
            if (device_load(&d, cl->devices[i]) != D2_OK) {
                d2_err_prefix("%s: device: \"%s\": ", where, cl->devices[i]);
                return D2_ENOTFOUND;
            }
        }
        break;
    case K_POLICY:
    case K_BASELINE: {
        char *dst = k == K_POLICY ? cl->policy : cl->baseline;
        if (strlen(value) >= AUDIT_NAME_MAX) D2_ERROR(D2_EFORMAT, "%s: %s: name too long", where, key);
        D2_TRY(check_system(value, where, key));
        snprintf(dst, AUDIT_NAME_MAX, "%s", value);
        break;
    }
    case K_REQUESTS: D2_TRY(parse_sim_int(value, where, "requests", &cl->requests)); break;
    case K_PROMPT: D2_TRY(parse_sim_int(value, where, "prompt", &cl->prompt)); break;
    case K_GEN: D2_TRY(parse_sim_int(value, where, "gen", &cl->gen)); break;
    case K_BUDGET: {
        char items[AUDIT_MAX_LIST][AUDIT_NAME_MAX];
        D2_TRY(split_list(value, items, &cl->nbudgets, where, key));
        for (size_t i = 0; i < cl->nbudgets; i++) D2_TRY(parse_bytes(items[i], where, key, &cl->budgets[i]));
        break;
    }
    case K_BUDGET_HI: D2_TRY(parse_bytes(value, where, key, &cl->budget_hi)); break;
    case K_BASELINE_BUDGET: D2_TRY(parse_bytes(value, where, key, &cl->baseline_budget)); break;
    case K_METRIC:
        if (strlen(value) >= sizeof cl->metric || !valid_name(value))
            D2_ERROR(D2_EFORMAT, "%s: metric: \"%s\" is not a metric name (d2moe simulate --json lists them)", where, value);
        snprintf(cl->metric, sizeof cl->metric, "%s", value);
        break;
    case K_RELATION: {
        int r = 0;
        while (r <= AUDIT_STATUS && strcmp(value, audit_relation_name((audit_relation)r))) r++;
        if (r > AUDIT_STATUS)
            D2_ERROR(D2_EFORMAT, "%s: relation: \"%s\" is not one of value, ratio, gain, reduction, status", where, value);
        cl->rule.relation = (audit_relation)r;
        break;
    }
    case K_MIN: D2_TRY(parse_number(value, where, key, &cl->rule.min)); break;
    case K_MAX: D2_TRY(parse_number(value, where, key, &cl->rule.max)); break;
    case K_STATUS:
        if (!strcmp(value, "oom")) cl->rule.want_oom = 1;
        else if (!strcmp(value, "ok")) cl->rule.want_oom = 0;
        else D2_ERROR(D2_EFORMAT, "%s: status: \"%s\" is not oom or ok", where, value);
        break;
    case K_QUANTIFIER:
        if (!strcmp(value, "any")) cl->rule.any = 1;
        else if (!strcmp(value, "every")) cl->rule.any = 0;
        else D2_ERROR(D2_EFORMAT, "%s: quantifier: \"%s\" is not every or any", where, value);
        break;
    case K_SEED: {
        int64_t s;
        if (units_parse_int64(value, &s) != 0 || s < 0)
            D2_ERROR(D2_EFORMAT, "%s: seed: \"%s\" is not a non-negative integer", where, value);
        cl->seed = (uint64_t)s;
        break;
    }
    }
    return D2_OK;
}

/* The relation-dependent checks, once a claim's keys are all read. */
static int claim_check(const claim *cl, const char *path)
{
    /* what each relation needs (1), allows (0) or refuses (-1) */
    static const signed char use[AUDIT_STATUS + 1][K_N] = {
        [AUDIT_VALUE] = {[K_METRIC] = 1, [K_MIN] = 1, [K_MAX] = 1, [K_BASELINE] = -1, [K_BUDGET_HI] = -1,
                         [K_BASELINE_BUDGET] = -1, [K_STATUS] = -1},
        [AUDIT_RATIO] = {[K_METRIC] = 1, [K_MIN] = 1, [K_MAX] = 1, [K_BASELINE] = 1, [K_BUDGET_HI] = -1, [K_STATUS] = -1},
        [AUDIT_GAIN] = {[K_METRIC] = 1, [K_MIN] = 1, [K_MAX] = 1, [K_BUDGET] = 1, [K_BUDGET_HI] = 1, [K_BASELINE] = -1,
                        [K_BASELINE_BUDGET] = -1, [K_STATUS] = -1},
        [AUDIT_REDUCTION] = {[K_METRIC] = 1, [K_MIN] = 1, [K_MAX] = 1, [K_BASELINE] = 1, [K_BUDGET_HI] = -1,
                             [K_STATUS] = -1},
        [AUDIT_STATUS] = {[K_STATUS] = 1, [K_METRIC] = -1, [K_MIN] = -1, [K_MAX] = -1, [K_BASELINE] = -1,
                          [K_BUDGET_HI] = -1, [K_BASELINE_BUDGET] = -1, [K_QUANTIFIER] = 0},
    };
    static const int always[] = {K_SOURCE, K_MODEL, K_DEVICE, K_POLICY, K_RELATION};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        if (!cl->line[always[i]])
            D2_ERROR(D2_EFORMAT, "%s:%d: [claim %s]: missing key %s", path, cl->first_line, cl->name, key_names[always[i]]);
    audit_relation r = cl->rule.relation;
    for (int k = 0; k < K_N; k++) {
        if (use[r][k] == 1 && !cl->line[k])
            D2_ERROR(D2_EFORMAT, "%s:%d: [claim %s]: missing key %s (relation %s needs it)", path, cl->first_line, cl->name,
                     key_names[k], audit_relation_name(r));
        if (use[r][k] == -1 && cl->line[k])
            D2_ERROR(D2_EFORMAT, "%s:%d: %s: not used by relation %s", path, cl->line[k], key_names[k], audit_relation_name(r));
    }
    if (r != AUDIT_STATUS && cl->rule.min > cl->rule.max) {
        int line = cl->line[K_MIN] > cl->line[K_MAX] ? cl->line[K_MIN] : cl->line[K_MAX];
        D2_ERROR(D2_ERANGE, "%s:%d: min: %.10g is above max %.10g", path, line, cl->rule.min, cl->rule.max);
    }
    if (r == AUDIT_GAIN)
        for (size_t i = 0; i < cl->nbudgets; i++)
            if (cl->budgets[i] >= cl->budget_hi)
                D2_ERROR(D2_ERANGE, "%s:%d: budget_hi: %lld is not above budget %lld", path, cl->line[K_BUDGET_HI],
                         (long long)cl->budget_hi, (long long)cl->budgets[i]);
    return D2_OK;
}

/* The sim_job of one run of a claim: its own keys as sets, then its
 * table.key settings (cs holds the texts). */
typedef struct claim_sets { char buf[5 + AUDIT_MAX_SETS][PARAM_STR_MAX + 64]; const char *sets[5 + AUDIT_MAX_SETS]; } claim_sets;
static void claim_job(const claim *cl, const char *mname, const char *dname, const char *policy, int64_t budget,
                      const char *rdname, sim_job *job, claim_sets *cs)
{
    size_t n = 0;
    snprintf(cs->buf[n++], sizeof cs->buf[0], "sim.policy=%s", policy);
    snprintf(cs->buf[n++], sizeof cs->buf[0], "sim.budget=%lld", (long long)budget);
    snprintf(cs->buf[n++], sizeof cs->buf[0], "sim.requests=%lld", (long long)cl->requests);
    snprintf(cs->buf[n++], sizeof cs->buf[0], "sim.prompt=%lld", (long long)cl->prompt);
    snprintf(cs->buf[n++], sizeof cs->buf[0], "sim.gen=%lld", (long long)cl->gen);
    for (size_t i = 0; i < cl->nsets; i++) snprintf(cs->buf[n++], sizeof cs->buf[0], "%s", cl->sets[i]);
    for (size_t i = 0; i < n; i++) cs->sets[i] = cs->buf[i];
    *job = (sim_job){.model = mname, .device = dname, .trace = NULL, .sets = cs->sets, .nsets = n, .seed = cl->seed,
                     .timeline = NULL, .readings = rdname};
}

/* The runs of a case, as run_case makes them: role 0 the policy at the
 * case's budget, 1 the baseline (ratio, reduction), 2 the policy at
 * budget_hi (gain).  *policy and *budget: that run's. */
static int claim_run_of(const claim *cl, int64_t case_budget, int role, const char **policy, int64_t *budget)
{
    audit_relation rel = cl->rule.relation;
    if (role == 1 && rel != AUDIT_RATIO && rel != AUDIT_REDUCTION) return 0;
    if (role == 2 && rel != AUDIT_GAIN) return 0;
    *policy = role == 1 ? cl->baseline : cl->policy;
    *budget = role == 0 ? case_budget : role == 1 ? (cl->baseline_budget ? cl->baseline_budget : case_budget) : cl->budget_hi;
    return 1;
}

/* The line of the claim a configuration error is about (the key runner_error_key
 * finds in its message) and that key's name in the claims file. */
static int claim_blame(const claim *cl, int role, const char *key, char *name, size_t n)
{
    static const struct { const char *sim; int k; } own[] = {
        {"sim.requests", K_REQUESTS}, {"sim.prompt", K_PROMPT}, {"sim.gen", K_GEN}, {"sim.seed", K_SEED},
        {"model", K_MODEL}, {"device", K_DEVICE},
    };
    char alt[160];
    for (int pass = 0; pass < 3; pass++) { /* the key, then a bare field as model.F, device.F */
        const char *k = key;
        if (pass) {
            if (strchr(key, '.') || !*key) break;
            snprintf(alt, sizeof alt, "%s.%s", pass == 1 ? "model" : "device", key);
            k = alt;
        }
        size_t kl = strlen(k);
        for (size_t i = 0; kl && i < cl->nsets; i++)
            if (!strncmp(cl->sets[i], k, kl) && cl->sets[i][kl] == '=') {
                snprintf(name, n, "%s", k); /* the setting's own key */
                return cl->set_line[i];
            }
    }
    if (!strcmp(key, "sim.budget")) {
        int k = role == 2 ? K_BUDGET_HI : role == 1 && cl->line[K_BASELINE_BUDGET] ? K_BASELINE_BUDGET : K_BUDGET;
        if (cl->line[k]) { snprintf(name, n, "%s", key_names[k]); return cl->line[k]; }
    }
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!strcmp(key, own[i].sim) && cl->line[own[i].k]) {
            snprintf(name, n, "%s", key_names[own[i].k]);
            return cl->line[own[i].k];
        }
    /* the system, or what the claim combines with it */
    int k = role == 1 ? K_BASELINE : K_POLICY;
    snprintf(name, n, "%s", key_names[k]);
    return cl->line[k];
}

/* Every run of every claim resolved as sim_job_check does (nothing runs)
 * under the reading rdname: the first that would not run is the claims
 * file's error, "file:line: KEY: why ([claim NAME], model M, device D)". */
static int claims_check_runs(const audit_claims *c, const char *rdname, const char *under)
{
    sim_job_memo *memo;
    D2_TRY(sim_job_memo_new(&memo));
    int rc = D2_OK;
    for (size_t i = 0; rc == D2_OK && i < c->n; i++) {
        const claim *cl = &c->a[i];
        for (size_t mi = 0; rc == D2_OK && mi < cl->nmodels; mi++)
            for (size_t di = 0; rc == D2_OK && di < cl->ndevices; di++)
                for (size_t bi = 0; rc == D2_OK && bi < cl->nbudgets; bi++)
                    for (int role = 0; rc == D2_OK && role < 3; role++) {
                        const char *policy;
                        int64_t budget;
                        if (!claim_run_of(cl, cl->budgets[bi], role, &policy, &budget)) continue;
                        claim_sets cs;
                        sim_job job;
                        claim_job(cl, cl->models[mi], cl->devices[di], policy, budget, rdname, &job, &cs);
                        if ((rc = sim_job_check(&job, memo)) == D2_OK) continue;
                        char msg[1024], key[128], name[160];
                        const char *rest;
                        snprintf(msg, sizeof msg, "%s", d2_err_msg());
                        runner_error_key(msg, NULL, key, sizeof key, &rest);
                        int line = claim_blame(cl, role, key, name, sizeof name);
                        d2_err_set("%s:%d: %s: %s ([claim %s], model %s, device %s%s%s)", c->path, line, name, rest,
                                   cl->name, cl->models[mi], cl->devices[di], under ? ", reading " : "", under ? under : "");
                    }
    }
    sim_job_memo_free(memo);
    return rc;
}

/* inih reports keys, not sections: a [section] with no key under it would
 * pass unseen, so read the headers once more and refuse such a section. */
static int check_headers(const audit_claims *c, const char *path)
{
    FILE *f;
    D2_TRY(fileio_open_read(path, FILEIO_INI_MAX, &f, NULL));
    char buf[AUDIT_LINE_MAX];
    int line = 0, rc = D2_OK;
    while (rc == D2_OK && fgets(buf, sizeof buf, f)) {
        line++;
        char *t = trim(buf);
        size_t n = strlen(t);
        if (n < 2 || t[0] != '[' || t[n - 1] != ']') continue;
        t[n - 1] = '\0';
        char *sec = trim(t + 1);
        int seen = 0;
        for (size_t i = 0; i < c->n && !seen; i++) {
            char want[AUDIT_NAME_MAX + 8];
            snprintf(want, sizeof want, "claim %s", c->a[i].name);
            seen = !strcmp(sec, want);
        }
        if (!seen) rc = (d2_err_set("%s:%d: [%s]: a section with no keys", path, line, sec), D2_EFORMAT);
    }
    fclose(f);
    return rc;
}

int audit_claims_load(const char *path, audit_claims **out)
{
    *out = NULL;
    /* a claims file is a regular file: /dev/zero or a FIFO would never end */
    struct stat st;
    if (stat(path, &st) != 0) D2_ERROR(D2_ENOTFOUND, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) D2_ERROR(D2_EFORMAT, "%s:1: not a regular file (a claims file is INI text)", path);
    audit_claims *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) { free(c); D2_ERROR(D2_ENOMEM, "out of memory"); }
    parse_ctx p = {c, NULL};
    int lines = 0;
    int rc = inifile_parse(path, entry, &p, &lines);
    if (rc == D2_OK && c->n == 0) rc = (d2_err_set("%s:%d: no [claim NAME] section with keys", path, lines > 0 ? lines : 1), D2_EFORMAT);
    if (rc == D2_OK) rc = check_headers(c, path);
    for (size_t i = 0; rc == D2_OK && i < c->n; i++) rc = claim_check(&c->a[i], path);
    if (rc == D2_OK) rc = hash_file_hex(path, c->hash);
    if (rc != D2_OK) { audit_claims_free(c); return rc; }
    /* a claim without a budget runs at the simulator's default budget */
    sim_params def;
    param_defaults(&sim_param_table, &def);
    for (size_t i = 0; i < c->n; i++)
        if (c->a[i].nbudgets == 0) { c->a[i].budgets[0] = def.budget; c->a[i].nbudgets = 1; }
    /* every run's configuration, as the claims file gives it (the profiles
     * and the claim's settings, no reading): bad input, before any run */
    if ((rc = claims_check_runs(c, "none", NULL)) != D2_OK) { audit_claims_free(c); return rc; }
    *out = c;
    return D2_OK;
}

/* ---- runs ---------------------------------------------------------------- */

/* One configuration run once per audit; cases that share it share the run. */
typedef struct memo {
    char key[AUDIT_KEY_MAX]; /* canonical job: model, device, seed, then the sets */
    sim_result *r;        /* NULL when it failed */
    char error[256];
    int rc;               /* sim_job_run's status */
    int64_t run_id;       /* when stored */
} memo;

struct audit_report {
    char readings[256];
    int64_t id;
    audit_claim_result *claims;
    audit_case **cases;   /* per claim */
    size_t (**used)[2];   /* per claim and case: memo indices of its runs, SIZE_MAX = none */
    claim *text;          /* copies of the claims (the report outlives the claims file) */
    size_t n;
    memo *m;
    size_t nm, capm;
};

void audit_report_free(audit_report *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) { free(r->cases[i]); if (r->used) free(r->used[i]); }
    free(r->used);
    free(r->text);
    for (size_t i = 0; i < r->nm; i++) sim_result_free(r->m[i].r);
    free(r->cases);
    free(r->claims);
    free(r->m);
    free(r);
}

size_t audit_report_count(const audit_report *r) { return r->n; }
void audit_report_claim(const audit_report *r, size_t i, audit_claim_result *out) { *out = r->claims[i]; }
const char *audit_report_readings(const audit_report *r) { return r->readings; }
int64_t audit_report_id(const audit_report *r) { return r->id; }
size_t audit_report_tally(const audit_report *r, audit_verdict v)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) n += r->claims[i].verdict == v;
    return n;
}

/* Run (or find) one configuration: the claim's settings with this model,
 * device, system and budget.  *out is its memo index (its r NULL when the
 * run failed: a case error).  Failures of this process (out of memory, I/O)
 * are returned. */
static int run_job(audit_report *rep, const claim *cl, const char *mname, const char *dname, const char *policy,
                   int64_t budget, const char *rdname, size_t *out)
{
    claim_sets cs;
    sim_job job;
    claim_job(cl, mname, dname, policy, budget, rdname, &job, &cs);
    const size_t n = job.nsets;
    char key[AUDIT_KEY_MAX];
    int len = snprintf(key, sizeof key, "%s\n%s\n%llu\n", mname, dname, (unsigned long long)cl->seed);
    if (len < 0 || (size_t)len >= sizeof key) D2_ERROR(D2_EINVAL, "[claim %s]: model and device names too long", cl->name);
    for (size_t i = 0; i < n; i++) {
        const int w = snprintf(key + len, sizeof key - (size_t)len, "%s\n", cs.buf[i]);
        if (w < 0 || (size_t)w >= sizeof key - (size_t)len) D2_ERROR(D2_EINVAL, "[claim %s]: settings too long", cl->name);
        len += w;
    }
    for (size_t i = 0; i < rep->nm; i++)
        if (!strcmp(rep->m[i].key, key)) { *out = i; return D2_OK; }
    D2_TRY(VEC_RESERVE(rep->m, rep->capm, rep->nm + 1));
    memo *m = &rep->m[rep->nm];
    memset(m, 0, sizeof *m);
    snprintf(m->key, sizeof m->key, "%s", key);
    d2_err_clear();
    m->rc = sim_job_run(&job, &m->r);
    if (m->rc == D2_ENOMEM || m->rc == D2_EIO) return m->rc;
    if (m->rc != D2_OK) {
        m->r = NULL;
        snprintf(m->error, sizeof m->error, "%s", d2_err_msg());
    }
    *out = rep->nm++;
    return D2_OK;
}

/* metric of a run; a name the simulator does not report is the file's error */
static int metric_of(const claim *cl, const char *path, const sim_result *r, double *v)
{
    if (sim_result_metric(r, cl->metric, v) != D2_OK)
        D2_ERROR(D2_EFORMAT, "%s:%d: metric: the simulator reports no metric \"%s\" (d2moe simulate --json lists them)", path,
                 cl->line[K_METRIC], cl->metric);
    return D2_OK;
}

static double bound_of(const sim_result *r)
{
    double b;
    if (sim_result_metric(r, "bound_tps", &b) != D2_OK || !isfinite(b) || b <= 0) return NAN;
    return b;
}

static int is_oom(const memo *m) { return m->r && strcmp(sim_result_status(m->r), "ok") != 0; }

static int run_case(audit_report *rep, const claim *cl, const char *path, const char *rdname, size_t mi, size_t di,
                    size_t bi, audit_case *c, size_t used[2])
{
    memset(c, 0, sizeof *c);
    snprintf(c->model, sizeof c->model, "%s", cl->models[mi]);
    snprintf(c->device, sizeof c->device, "%s", cl->devices[di]);
    c->budget = cl->budgets[bi];
    c->value = c->bound = NAN;
    used[0] = used[1] = SIZE_MAX;
    D2_TRY(run_job(rep, cl, c->model, c->device, cl->policy, c->budget, rdname, &used[0]));
    audit_relation rel = cl->rule.relation;
    if (rel == AUDIT_RATIO || rel == AUDIT_REDUCTION)
        D2_TRY(run_job(rep, cl, c->model, c->device, cl->baseline, cl->baseline_budget ? cl->baseline_budget : c->budget,
                       rdname, &used[1]));
    else if (rel == AUDIT_GAIN)
        D2_TRY(run_job(rep, cl, c->model, c->device, cl->policy, cl->budget_hi, rdname, &used[1]));
    const memo *a = &rep->m[used[0]], *b = used[1] == SIZE_MAX ? NULL : &rep->m[used[1]];
    const memo *bad = !a->r ? a : (b && !b->r) ? b : NULL;
    if (bad) {
        snprintf(c->error, sizeof c->error, "%s", bad->error);
        snprintf(c->status, sizeof c->status, "failed");
        return D2_OK;
    }
    c->ran = 1;
    snprintf(c->status, sizeof c->status, "%s", is_oom(a) || (b && is_oom(b)) ? "oom" : "ok");
    if (rel == AUDIT_STATUS) {
        c->value = is_oom(a) ? 1 : 0;
        return D2_OK;
    }
    double va, vb = NAN;
    D2_TRY(metric_of(cl, path, a->r, &va));
    if (b) D2_TRY(metric_of(cl, path, b->r, &vb));
    if (!strcmp(c->status, "oom")) return D2_OK; /* no value: an oom run's metrics say nothing */
    int tps = !strcmp(cl->metric, "throughput_tps");
    switch (rel) {
    case AUDIT_VALUE:
        c->value = va;
        if (tps) c->bound = bound_of(a->r);
        break;
    case AUDIT_RATIO:
        c->value = va / vb;
        if (tps) c->bound = bound_of(a->r) / vb;
        break;
    case AUDIT_GAIN: /* a: budget, b: budget_hi */
        c->value = vb / va;
        if (tps) c->bound = bound_of(b->r) / va;
        break;
    case AUDIT_REDUCTION: c->value = 1.0 - va / vb; break;
    case AUDIT_STATUS: break;
    }
    if (!isfinite(c->value)) c->value = NAN;
    if (!isfinite(c->bound)) c->bound = NAN;
    return D2_OK;
}

/* ---- the store -------------------------------------------------------------- */

static int store_run(db *d, memo *m, const audit_opts *o)
{
    db_run *run = db_run_new("simulate", "sim");
    if (!run) D2_ERROR(D2_ENOMEM, "out of memory");
    if (o->argc > 0) db_run_cmdline(run, o->argc, o->argv);
    int rc = runner_fill_run(run, m->r);
    if (!rc) rc = db_run_write(d, run, &m->run_id);
    db_run_free(run);
    return rc;
}

typedef struct audit_write {
    const audit_claims *c;
    audit_report *rep;
    char uid[33], created[32];
} audit_write;

static int bind_real(sqlite3_stmt *st, int i, double v)
{
    return isfinite(v) ? sqlite3_bind_double(st, i, v) : sqlite3_bind_null(st, i);
}

#define SQL_OK(x) do { if ((x) != SQLITE_OK) goto fail; } while (0)

static int write_audit(sqlite3 *h, void *user)
{
    audit_write *w = user;
    audit_report *rep = w->rep;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h, "INSERT INTO audits(uid,created,claims_file,claims_hash,readings,code_version) VALUES(?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) goto fail;
    SQL_OK(sqlite3_bind_text(st, 1, w->uid, -1, SQLITE_STATIC));
    SQL_OK(sqlite3_bind_text(st, 2, w->created, -1, SQLITE_STATIC));
    SQL_OK(sqlite3_bind_text(st, 3, w->c->path, -1, SQLITE_STATIC));
    SQL_OK(sqlite3_bind_text(st, 4, w->c->hash, -1, SQLITE_STATIC));
    SQL_OK(sqlite3_bind_text(st, 5, rep->readings, -1, SQLITE_STATIC));
    SQL_OK(sqlite3_bind_text(st, 6, d2_version(), -1, SQLITE_STATIC));
    if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    sqlite3_finalize(st);
    rep->id = sqlite3_last_insert_rowid(h);
    if (sqlite3_prepare_v2(h, "INSERT INTO audit_claims(audit_id,name,source,relation,metric,min,max,verdict) VALUES(?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) goto fail;
    for (size_t i = 0; i < rep->n; i++) {
        const audit_claim_result *cr = &rep->claims[i];
        int status = cr->rule.relation == AUDIT_STATUS;
        sqlite3_reset(st);
        SQL_OK(sqlite3_bind_int64(st, 1, rep->id));
        SQL_OK(sqlite3_bind_text(st, 2, cr->name, -1, SQLITE_STATIC));
        SQL_OK(sqlite3_bind_text(st, 3, cr->source, -1, SQLITE_STATIC));
        SQL_OK(sqlite3_bind_text(st, 4, audit_relation_name(cr->rule.relation), -1, SQLITE_STATIC));
        SQL_OK(sqlite3_bind_text(st, 5, status ? (cr->rule.want_oom ? "status=oom" : "status=ok") : cr->metric, -1, SQLITE_STATIC));
        SQL_OK(status ? sqlite3_bind_null(st, 6) : bind_real(st, 6, cr->rule.min));
        SQL_OK(status ? sqlite3_bind_null(st, 7) : bind_real(st, 7, cr->rule.max));
        SQL_OK(sqlite3_bind_text(st, 8, audit_verdict_name(cr->verdict), -1, SQLITE_STATIC));
        if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(h, "INSERT INTO audit_cases(audit_id,claim,model,device,budget,value,bound,low,high,run_id,ref_run_id) "
                           "VALUES(?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK) goto fail;
    for (size_t i = 0; i < rep->n; i++) {
        const audit_claim_result *cr = &rep->claims[i];
        int status = cr->rule.relation == AUDIT_STATUS;
        for (size_t j = 0; j < cr->ncases; j++) {
            const audit_case *c = &cr->cases[j];
            sqlite3_reset(st);
            SQL_OK(sqlite3_bind_int64(st, 1, rep->id));
            SQL_OK(sqlite3_bind_text(st, 2, cr->name, -1, SQLITE_STATIC));
            SQL_OK(sqlite3_bind_text(st, 3, c->model, -1, SQLITE_STATIC));
            SQL_OK(sqlite3_bind_text(st, 4, c->device, -1, SQLITE_STATIC));
            SQL_OK(sqlite3_bind_int64(st, 5, c->budget));
            SQL_OK(c->ran ? bind_real(st, 6, c->value) : sqlite3_bind_null(st, 6));
            SQL_OK(bind_real(st, 7, c->bound));
            SQL_OK(status ? sqlite3_bind_null(st, 8) : bind_real(st, 8, cr->rule.min));
            SQL_OK(status ? sqlite3_bind_null(st, 9) : bind_real(st, 9, cr->rule.max));
            SQL_OK(c->run_id[0] ? sqlite3_bind_int64(st, 10, c->run_id[0]) : sqlite3_bind_null(st, 10));
            SQL_OK(c->run_id[1] ? sqlite3_bind_int64(st, 11, c->run_id[1]) : sqlite3_bind_null(st, 11));
            if (sqlite3_step(st) != SQLITE_DONE) goto fail;
        }
    }
    sqlite3_finalize(st);
    return D2_OK;
fail:
    d2_err_set("writing the audit failed: %s", sqlite3_errmsg(h));
    sqlite3_finalize(st);
    return D2_EDB;
}

int audit_stored_find(db *d, const audit_claims *c, const char *rdname, int64_t *id, size_t tally[4])
{
    *id = 0;
    for (int v = 0; v < 4; v++) tally[v] = 0;
    readings rd;
    D2_TRY(runner_readings_load(&rd, rdname ? rdname : ""));
    sqlite3 *h = db_handle(d);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h, "SELECT max(id) FROM audits WHERE claims_hash = ? AND readings = ? AND code_version = ?", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 1, c->hash, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 2, rd.name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 3, d2_version(), -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) D2_ERROR(D2_EDB, "%s: %s", db_path(d), sqlite3_errmsg(h));
    if (!*id) return D2_OK;
    rc = sqlite3_prepare_v2(h, "SELECT verdict, count(*) FROM audit_claims WHERE audit_id = ? GROUP BY verdict", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 1, *id);
    while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        for (int v = 0; v < 4; v++)
            if (name && !strcmp(name, audit_verdict_name((audit_verdict)v))) tally[v] = (size_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) D2_ERROR(D2_EDB, "%s: %s", db_path(d), sqlite3_errmsg(h));
    return D2_OK;
}

/* ---- the audit -------------------------------------------------------------- */

int audit_run(const audit_claims *c, const audit_opts *o, audit_report **out)
{
    *out = NULL;
    audit_report *rep = calloc(1, sizeof *rep);
    if (!rep) D2_ERROR(D2_ENOMEM, "out of memory");
    const char *rdname = o && o->readings ? o->readings : "";
    /* a bad reading is the caller's error, found before any run */
    readings rd;
    int lrc = runner_readings_load(&rd, rdname);
    if (lrc != D2_OK) { free(rep); return lrc; }
    snprintf(rep->readings, sizeof rep->readings, "%s", rd.name);
    /* and under the reading, before any claim runs */
    if ((lrc = claims_check_runs(c, rdname, rd.name)) != D2_OK) { free(rep); return lrc; }
    rep->claims = calloc(c->n, sizeof *rep->claims);
    rep->cases = calloc(c->n, sizeof *rep->cases);
    rep->used = calloc(c->n, sizeof *rep->used);
    rep->text = malloc(c->n * sizeof *rep->text);
    if (rep->text) memcpy(rep->text, c->a, c->n * sizeof *rep->text);
    int rc = (!rep->claims || !rep->cases || !rep->used || !rep->text) ? (d2_err_set("out of memory"), D2_ENOMEM) : D2_OK;
    for (size_t i = 0; rc == D2_OK && i < c->n; i++) {
        const claim *cl = &c->a[i];
        size_t n = cl->nmodels * cl->ndevices * cl->nbudgets;
        rep->n = i + 1;
        audit_case *cases = rep->cases[i] = calloc(n, sizeof *cases);
        rep->used[i] = calloc(n, sizeof *rep->used[i]);
        if (!cases || !rep->used[i]) { rc = (d2_err_set("out of memory"), D2_ENOMEM); break; }
        size_t k = 0;
        for (size_t mi = 0; rc == D2_OK && mi < cl->nmodels; mi++)
            for (size_t di = 0; rc == D2_OK && di < cl->ndevices; di++)
                for (size_t bi = 0; rc == D2_OK && bi < cl->nbudgets; bi++, k++)
                    rc = run_case(rep, cl, c->path, rdname, mi, di, bi, &cases[k], rep->used[i][k]);
        audit_claim_result *cr = &rep->claims[i];
        cr->name = rep->text[i].name;
        cr->source = rep->text[i].source;
        cr->metric = rep->text[i].metric;
        cr->policy = rep->text[i].policy;
        cr->baseline = rep->text[i].baseline;
        cr->rule = cl->rule;
        cr->cases = cases;
        cr->ncases = n;
        cr->verdict = audit_decide(&cl->rule, cases, n);
    }
    db *own = NULL;
    audit_opts so;
    if (rc == D2_OK && o && !o->store && o->store_path) {
        so = *o;
        if ((rc = db_open(o->store_path, &own)) == D2_OK) so.store = own;
        o = &so;
    }
    if (rc == D2_OK && o && o->store) {
        for (size_t i = 0; rc == D2_OK && i < rep->nm; i++)
            if (rep->m[i].r) rc = store_run(o->store, &rep->m[i], o);
        for (size_t i = 0; rc == D2_OK && i < rep->n; i++)
            for (size_t k = 0; k < rep->claims[i].ncases; k++)
                for (int j = 0; j < 2; j++)
                    if (rep->used[i][k][j] != SIZE_MAX) rep->cases[i][k].run_id[j] = rep->m[rep->used[i][k][j]].run_id;
        audit_write w = {c, rep, {0}, {0}};
        if (rc == D2_OK) {
            struct { struct timespec ts; pid_t pid; char hash[33]; } u;
            memset(&u, 0, sizeof u);
            clock_gettime(CLOCK_REALTIME, &u.ts);
            u.pid = getpid();
            memcpy(u.hash, c->hash, sizeof u.hash);
            hash_mem_hex(&u, sizeof u, w.uid);
            db_now_iso(w.created);
            rc = db_transaction(o->store, write_audit, &w);
        }
    }
    db_close(own);
    if (rc != D2_OK) { audit_report_free(rep); return rc; }
    *out = rep;
    return D2_OK;
}
