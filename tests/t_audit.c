/* t_audit.c - the audit's verdict rule (results/audit.h, audit_decide) on
 * hand-made case values with known answers: every verdict, each relation's
 * bound condition, the quantifiers every and any, status claims, and the
 * edges (inclusive range, NaN value, missing bound, an oom case). */
#include "results/audit.h"
#include "tap.h"

static audit_case mk(double value, double bound)
{
    audit_case c;
    memset(&c, 0, sizeof c);
    c.ran = 1;
    snprintf(c.status, sizeof c.status, "ok");
    c.value = value;
    c.bound = bound;
    return c;
}

static const char *v(const audit_rule *r, const audit_case *c, size_t n) { return audit_verdict_name(audit_decide(r, c, n)); }

int main(void)
{
    audit_rule r = {.relation = AUDIT_RATIO, .min = 1.32, .max = 1.46};

    /* every case inside [min, max], ends included */
    audit_case in[3] = {mk(1.32, NAN), mk(1.39, 2.0), mk(1.46, NAN)};
    is_str(v(&r, in, 3), "reproduced", "1.32, 1.39, 1.46 in [1.32, 1.46]: reproduced (inclusive)");

    /* one miss below min, with bound below min: exceeds-bound */
    audit_case eb[2] = {mk(1.39, 2.0), mk(1.10, 1.25)};
    is_str(v(&r, eb, 2), "exceeds-bound", "a miss at 1.10 whose bound 1.25 < min 1.32: exceeds-bound");
    /* the same miss but its bound allows min: not-reproduced */
    eb[1].bound = 1.40;
    is_str(v(&r, eb, 2), "not-reproduced", "the bound 1.40 allows min 1.32: not-reproduced");
    /* bound exactly min: min > bound is false, so not-reproduced */
    eb[1].bound = 1.32;
    is_str(v(&r, eb, 2), "not-reproduced", "bound == min: not-reproduced (min must lie above the bound)");
    /* no bound (NaN): never exceeds-bound */
    eb[1].bound = NAN;
    is_str(v(&r, eb, 2), "not-reproduced", "miss below min without a bound: not-reproduced");
    /* a miss above max is never excused by a bound */
    audit_case hi[2] = {mk(1.10, 1.2), mk(1.60, 1.7)};
    is_str(v(&r, hi, 2), "not-reproduced", "one miss below (bounded) and one above max: not-reproduced");
    /* NaN value (an oom case) misses and is not below min */
    audit_case nan1[1] = {mk(NAN, 1.0)};
    snprintf(nan1[0].status, sizeof nan1[0].status, "oom");
    is_str(v(&r, nan1, 1), "not-reproduced", "an oom case (no value): not-reproduced");
    /* error beats everything */
    audit_case er[2] = {mk(1.39, 2.0), mk(NAN, NAN)};
    er[1].ran = 0;
    is_str(v(&r, er, 2), "error", "a case that could not run: error");

    /* quantifier any */
    audit_rule any = r;
    any.any = 1;
    audit_case a1[3] = {mk(1.0, 3.0), mk(1.40, 3.0), mk(1.2, 3.0)};
    is_str(v(&any, a1, 3), "reproduced", "any: one case of three in range: reproduced");
    is_str(v(&r, a1, 3), "not-reproduced", "every: the same cases, bounds above min: not-reproduced");
    audit_case a2[2] = {mk(1.0, 1.1), mk(1.2, 1.3)};
    is_str(v(&any, a2, 2), "exceeds-bound", "any: no case in range, each below min with bound < min: exceeds-bound");
    a2[1].bound = 1.5;
    is_str(v(&any, a2, 2), "not-reproduced", "any: one case's bound allows min: not-reproduced");
    ok(audit_case_holds(&r, &in[1]) && !audit_case_holds(&r, &a2[0]), "audit_case_holds: 1.39 holds, 1.0 does not");

    /* value claims: a tokens/s claim above bound_tps (e.g. 43.82 tok/s claimed,
     * 30.1 simulated, 35.0 the bound: the bytes cannot move faster) */
    audit_rule val = {.relation = AUDIT_VALUE, .min = 39.44, .max = 48.20};
    audit_case t1[1] = {mk(30.1, 35.0)};
    is_str(v(&val, t1, 1), "exceeds-bound", "value 30.1 < min 39.44 > bound 35.0: exceeds-bound");
    t1[0].bound = 40.0;
    is_str(v(&val, t1, 1), "not-reproduced", "value 30.1 with bound 40.0 >= min: not-reproduced");

    /* status claims: no bound, no range */
    audit_rule st = {.relation = AUDIT_STATUS, .want_oom = 1};
    audit_case s1[2] = {mk(1, NAN), mk(1, NAN)};
    snprintf(s1[0].status, sizeof s1[0].status, "oom");
    snprintf(s1[1].status, sizeof s1[1].status, "oom");
    is_str(v(&st, s1, 2), "reproduced", "status oom claimed, both runs oom: reproduced");
    snprintf(s1[1].status, sizeof s1[1].status, "ok");
    s1[1].bound = 0; /* a bound never matters for status */
    is_str(v(&st, s1, 2), "not-reproduced", "one run fits: not-reproduced");
    st.want_oom = 0;
    is_str(v(&st, s1 + 1, 1), "reproduced", "status ok claimed of a run that fits: reproduced");

    /* names */
    is_str(audit_relation_name(AUDIT_REDUCTION), "reduction", "relation names");
    is_str(audit_verdict_name(AUDIT_EXCEEDS_BOUND), "exceeds-bound", "verdict names");
    return tap_done();
}
