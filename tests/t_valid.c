/* t_valid.c - the validation's statistics and op join on known answers:
 * the bootstrap interval of the median against the exact bootstrap
 * distribution (closed form: the resampled median of an odd sample of n is
 * <= x_(k) exactly when at least (n+1)/2 of n draws are <= x_(k), a
 * Binomial(n, k/n) tail), the verdicts, the join of a hand-made
 * predicted/real pair of timelines whose split is worked out by hand in the
 * comments, and that join as the metrics execute stores and validate reads
 * back; the span arithmetic of the host-stop watcher on hand-made lists
 * (worked out in the comments) and its invariants on a short live watch.
 * No timing is measured here. */
#include "core/clock.h"
#include "core/err.h"
#include "host/cpushare.h"
#include "host/hostwatch.h"
#include "host/opjoin.h"
#include "host/valstat.h"
#include "tap.h"

#include <gsl/gsl_cdf.h>
#include <unistd.h>

/* the exact percentile-bootstrap bound of the median of x_(1) < ... < x_(n)
 * (n odd): the smallest k with P(Binomial(n, k/n) >= (n+1)/2) >= p */
static int exact_k(int n, double p)
{
    for (int k = 1; k <= n; k++)
        if (gsl_cdf_binomial_Q((unsigned)(n / 2), (double)k / n, (unsigned)n) >= p) return k;
    return n;
}

static void test_bootstrap(void)
{
    /* 1..11: exact_k(11, .025) = 3 (P = 0.0072 at k = 2, 0.051 at k = 3),
     * exact_k(11, .975) = 9 (0.949 at 8, 0.993 at 9) */
    double x[11];
    for (int i = 0; i < 11; i++) x[i] = 11 - i; /* unsorted on purpose */
    valstat_ci ci;
    ok(valstat_median_ci(x, 11, 20000, 0.95, 7, &ci) == D2_OK, "bootstrap of 1..11");
    is_int(exact_k(11, 0.025), 3, "closed form: lower bound is x_(3) for n = 11");
    is_int(exact_k(11, 0.975), 9, "closed form: upper bound is x_(9) for n = 11");
    is_near(ci.median, 6, 0, "median 6");
    is_near(ci.lo, 3, 0, "lower bound x_(3) = 3 (%g)", ci.lo);
    is_near(ci.hi, 9, 0, "upper bound x_(9) = 9 (%g)", ci.hi);
    is_int(ci.resamples, 20000, "resamples recorded");

    /* paired errors of 7 rounds: bounds x_(2), x_(6) (P = 0.010 at k = 1, 0.108 at 2; 0.892 at 5, 0.990 at 6) */
    double e[7] = {0.04, -0.09, 0.02, -0.03, 0.00, 0.07, -0.30};
    is_int(exact_k(7, 0.025), 2, "closed form: lower bound x_(2) for n = 7");
    is_int(exact_k(7, 0.975), 6, "closed form: upper bound x_(6) for n = 7");
    ok(valstat_median_ci(e, 7, 20000, 0.95, 1, &ci) == D2_OK, "bootstrap of 7 paired errors");
    is_near(ci.median, 0.00, 1e-15, "median 0.00");
    is_near(ci.lo, -0.09, 1e-15, "lower bound x_(2) = -0.09 (%g)", ci.lo);
    is_near(ci.hi, 0.04, 1e-15, "upper bound x_(6) = 0.04 (%g)", ci.hi);
    is_str(valstat_verdict_name(valstat_judge(&ci, 0.10)), "within", "[-9%%, +4%%] lies inside 10%%: within");
    is_str(valstat_verdict_name(valstat_judge(&ci, 0.05)), "cannot conclude", "[-9%%, +4%%] straddles 5%%: cannot conclude");
    valstat_ci sh = ci;
    sh.lo += 0.2, sh.hi += 0.2;
    is_str(valstat_verdict_name(valstat_judge(&sh, 0.10)), "outside", "[+11%%, +24%%] wholly above 10%%: outside");
    sh.lo = -0.4, sh.hi = -0.15;
    is_str(valstat_verdict_name(valstat_judge(&sh, 0.10)), "outside", "[-40%%, -15%%] wholly below -10%%: outside");

    /* reproducible: same seed, same interval, bit for bit */
    double y[6] = {1.5, 0.2, 3.3, 2.2, 0.9, 7.0};
    valstat_ci a, b;
    ok(valstat_median_ci(y, 6, 1000, 0.9, 99, &a) == D2_OK && valstat_median_ci(y, 6, 1000, 0.9, 99, &b) == D2_OK &&
           memcmp(&a, &b, sizeof a) == 0,
       "same sample and seed: the same interval");
    is_near(a.median, (1.5 + 2.2) / 2, 1e-15, "even n: mean of the two middle values");
    ok(a.lo <= a.median && a.median <= a.hi && a.lo >= 0.2 && a.hi <= 7.0, "lo <= median <= hi within the sample's range");

    double one = 0.123;
    ok(valstat_median_ci(&one, 1, 1000, 0.95, 1, &ci) == D2_OK && ci.lo == one && ci.hi == one && ci.resamples == 0,
       "one value: the interval is the point");
    double same[5] = {0.5, 0.5, 0.5, 0.5, 0.5};
    ok(valstat_median_ci(same, 5, 1000, 0.95, 1, &ci) == D2_OK && ci.lo == 0.5 && ci.hi == 0.5, "equal values: zero width");
    ok(valstat_median_ci(x, 0, 1000, 0.95, 1, &ci) == D2_EINVAL, "empty sample: D2_EINVAL");
    ok(valstat_median_ci(x, 5, 1000, 1.0, 1, &ci) == D2_EINVAL, "level 1: D2_EINVAL");
    ok(valstat_median_ci(x, 5, 10, 0.95, 1, &ci) == D2_EINVAL, "10 resamples: D2_EINVAL");
}

/* valstat_judge_host: known answers of the rule, and the property it rests
 * on: with the same seed, the interval of any removal between none and the
 * upper bound lies between the two ends' intervals */
static void test_judge_host(void)
{
    const double b = 0.10;
    valstat_ci in = {.lo = -0.08, .hi = -0.02}, in2 = {.lo = -0.05, .hi = 0.04};
    valstat_ci lowout = {.lo = -0.19, .hi = -0.13}, lowout2 = {.lo = -0.16, .hi = -0.11}, highout = {.lo = 0.12, .hi = 0.2};
    valstat_ci straddle = {.lo = -0.13, .hi = -0.06};
    is_str(valstat_verdict_name(valstat_judge_host(&in, &in2, b)), "within", "both within: within");
    is_str(valstat_verdict_name(valstat_judge_host(&lowout, &lowout2, b)), "outside", "both wholly below -10%%: outside");
    is_str(valstat_verdict_name(valstat_judge_host(&lowout, &in, b)), "cannot conclude",
           "outside as measured, within without the host's time: cannot conclude (the eleventh run's 100M points)");
    is_str(valstat_verdict_name(valstat_judge_host(&in, &highout, b)), "cannot conclude", "within measured, outside without: cannot conclude");
    is_str(valstat_verdict_name(valstat_judge_host(&lowout, &highout, b)), "cannot conclude",
           "outside on opposite sides: cannot conclude (in between it would be within)");
    is_str(valstat_verdict_name(valstat_judge_host(&lowout, &straddle, b)), "cannot conclude", "outside, then straddling: cannot conclude");
    is_str(valstat_verdict_name(valstat_judge_host(&straddle, &straddle, b)), "cannot conclude", "both straddling: cannot conclude");

    /* the bracketing property on 9 rounds of a made-up host-stopped run */
    const double sim[9] = {1.00, 1.02, 0.98, 1.01, 0.99, 1.00, 1.03, 0.97, 1.00};
    const double real[9] = {1.16, 1.22, 1.10, 1.19, 1.15, 1.30, 1.12, 1.17, 1.21};
    const double up[9] = {0.08, 0.12, 0.05, 0.10, 0.07, 0.20, 0.03, 0.09, 0.11}; /* upper bound of the host's time, s */
    double e0[9], e1[9], eh[9];
    for (int k = 0; k < 9; k++) {
        e0[k] = valstat_error(sim[k], real[k]);
        e1[k] = valstat_error(sim[k], real[k] - up[k]);
    }
    valstat_ci c0, c1, ch;
    ok(valstat_median_ci(e0, 9, 5000, 0.95, 3, &c0) == D2_OK && valstat_median_ci(e1, 9, 5000, 0.95, 3, &c1) == D2_OK,
       "the two ends bootstrapped with the same seed");
    int bracketed = 1;
    for (int share = 1; share < 10; share++) {
        for (int k = 0; k < 9; k++) eh[k] = valstat_error(sim[k], real[k] - up[k] * (share % 3 ? share / 10.0 : 1 - share / 10.0) * (k % 2 ? 1 : 0.5));
        if (valstat_median_ci(eh, 9, 5000, 0.95, 3, &ch)) { bracketed = 0; break; }
        if (!(ch.lo >= c0.lo && ch.lo <= c1.lo && ch.hi >= c0.hi && ch.hi <= c1.hi && ch.median >= c0.median && ch.median <= c1.median))
            bracketed = 0;
    }
    ok(bracketed, "any per-round share of the host's time gives an interval between the two ends ([%+.3f, %+.3f] .. [%+.3f, %+.3f])",
       c0.lo, c0.hi, c1.lo, c1.hi);
    is_str(valstat_verdict_name(valstat_judge(&c0, b)), "outside", "the made-up run is outside as measured ([%+.3f, %+.3f])", c0.lo, c0.hi);
    is_str(valstat_verdict_name(valstat_judge_host(&c0, &c1, b)), "cannot conclude", "and cannot conclude with the host's time");
}

static opjoin_tl *tl_from(const char *csv)
{
    opjoin_tl *tl;
    if (opjoin_tl_new(&tl)) return NULL;
    FILE *f = fmemopen((void *)csv, strlen(csv), "r");
    int rc = f ? opjoin_tl_read_csv(f, "hand", tl) : D2_EIO;
    if (f) fclose(f);
    if (rc) { tap_diag("%s", d2_err_msg()); opjoin_tl_free(tl); return NULL; }
    return tl;
}

static int64_t term(const opjoin_report *r, const char *name, int real)
{
    int t = opjoin_report_term(r, name);
    return t < 0 ? -1 : real ? r->term[t].real_ns : r->term[t].pred_ns;
}

/* predicted (simulator-like): non-expert work on the compute queue, each
 * compute right when its load ends.  Split by hand:
 *   ne 0-10: busy 10; e1 L1 110-160: idle 100 waiting for load L1 (ends 110),
 *   busy 50; e1 L2 210-260: idle 50 waiting for load L2 (ends 210), busy 50;
 *   ne 260-270: busy 10; e0 L1 270-320 (resident, no load): busy 50.
 *   compute_l1 100, compute_l2 50, wait_l1 100, wait_l2 50, nonexpert 20 = 320.
 *   loads: L1 100, L2 100; I/O idle 320 - 200 = 120. */
static const char *pred_csv =
    "start_ns,end_ns,queue,layer,expert,level,tokens\n"
    "0,10,compute,0,-1,0,4\n"
    "10,110,io,0,1,1,4\n"
    "110,210,io,0,1,2,2\n"
    "110,160,compute,0,1,1,4\n"
    "210,260,compute,0,1,2,2\n"
    "260,270,compute,1,-1,0,4\n"
    "270,320,compute,1,0,1,4\n";
/* real (executor-like: zero-length non-expert markers).  By hand:
 *   e1 L1 170-240: idle 170 since 0, load L1 ended 150 -> wait 150,
 *   hand-off 20, busy 70; e1 L2 270-330: idle 30 since 240, load L2 ended
 *   260 -> wait 20, hand-off 10, busy 60; e0 L1 335-400: idle 5, no load ->
 *   hand-off 5, busy 65; a load the prediction lacks ends at 420: tail 20.
 *   compute_l1 135, compute_l2 60, wait_l1 150, wait_l2 20, handoff_l1 25,
 *   handoff_l2 10, tail 20 = 420.  Loads: L1 150 + 20, L2 110; I/O busy
 *   [0, 260] + [400, 420] -> idle 140.  Pairs: 7 (the extra load is real
 *   only, 20 ns); largest excess: load e1 L1, +50 ns. */
static const char *real_csv =
    "start_ns,end_ns,queue,layer,expert,level,tokens\n"
    "0,0,compute,0,-1,0,0\n"
    "0,150,io,0,1,1,4\n"
    "150,260,io,0,1,2,2\n"
    "170,240,compute,0,1,1,4\n"
    "270,330,compute,0,1,2,2\n"
    "330,330,compute,1,-1,0,0\n"
    "335,400,compute,1,0,1,4\n"
    "400,420,io,1,3,1,4\n";

/* the report as metrics (what execute stores) and back (what validate reads) */
typedef struct mbuf { int n; char name[128][64]; double v[128]; char unit[128][8]; } mbuf;
static int collect(const char *name, double v, const char *unit, void *u)
{
    mbuf *b = u;
    if (b->n == 128) return D2_ERANGE;
    snprintf(b->name[b->n], sizeof b->name[0], "%s", name);
    snprintf(b->unit[b->n], sizeof b->unit[0], "%s", unit);
    b->v[b->n++] = v;
    return D2_OK;
}

static void test_metrics(const opjoin_report *j)
{
    static mbuf b;
    b.n = 0;
    ok(opjoin_report_foreach_metric(j, collect, &b) == D2_OK, "the join as metrics (%d)", b.n);
    /* 14 terms with ops on either side (compute_l3 and the levels above have none) x 4, makespans 2, counts 5 */
    is_int(b.n, 14 * 4 + 2 + 5, "4 metrics per term with ops, 2 makespans, 5 pair counts");
    int units = 1, names = 1;
    for (int i = 0; i < b.n; i++) {
        size_t l = strlen(b.name[i]);
        int secs = l > 2 && !strcmp(b.name[i] + l - 2, "_s");
        units &= secs ? !strcmp(b.unit[i], "s") : !strcmp(b.unit[i], "ops");
        names &= !strncmp(b.name[i], "join_", 5);
        for (int k = 0; k < i; k++) names &= strcmp(b.name[i], b.name[k]) != 0;
    }
    ok(names, "every name starts join_ and appears once");
    ok(units, "seconds are named _s with unit s, counts have unit ops");
    opjoin_report back;
    opjoin_report_init(&back);
    int rc = D2_OK;
    for (int i = 0; i < b.n && !rc; i++) rc = opjoin_report_set_metric(&back, b.name[i], b.v[i]);
    ok(rc == D2_OK, "every metric reads back (%s)", rc ? d2_err_msg() : "ok");
    int same = back.nterm == j->nterm && back.makespan_pred_ns == j->makespan_pred_ns &&
               back.makespan_real_ns == j->makespan_real_ns && back.matched == j->matched && back.pred_only == j->pred_only &&
               back.real_only == j->real_only && back.pred_only_ns == j->pred_only_ns && back.real_only_ns == j->real_only_ns;
    for (int t = 0; same && t < j->nterm; t++)
        same = !strcmp(back.term[t].name, j->term[t].name) && back.term[t].in_sum == j->term[t].in_sum &&
               back.term[t].pred_ns == j->term[t].pred_ns && back.term[t].real_ns == j->term[t].real_ns &&
               back.term[t].n_pred == j->term[t].n_pred && back.term[t].n_real == j->term[t].n_real;
    ok(same, "read back: the same makespans, pair counts and terms (values and op counts)");
    /* seconds round to the nearest ns */
    ok(opjoin_report_set_metric(&back, "join_wait_l2_real_s", 1.2345678904) == D2_OK &&
           back.term[opjoin_report_term(&back, "wait_l2")].real_ns == 1234567890,
       "1.2345678904 s reads back as 1234567890 ns");
    ok(opjoin_report_set_metric(&back, "join_makespan_sim_s", 0.9999999996) == D2_OK && back.makespan_pred_ns == 1000000000,
       "0.9999999996 s reads back as 1000000000 ns");
    ok(opjoin_report_set_metric(&back, "makespan_s", 1) == D2_ENOTFOUND, "a metric without join_: not ours");
    ok(opjoin_report_set_metric(&back, "join_compute_l9_sim_s", 1) == D2_ENOTFOUND, "no term compute_l9: not ours");
    ok(opjoin_report_set_metric(&back, "join_compute_l1_cpu_s", 1) == D2_ENOTFOUND, "unknown suffix: not ours");
    ok(opjoin_report_set_metric(&back, "join_compute_l1_sim_s", -1) == D2_ERANGE, "negative seconds: D2_ERANGE");

    /* opjoin_report_add: an empty report plus the join twice is twice the join, field by field */
    opjoin_report sum;
    opjoin_report_init(&sum);
    opjoin_report_add(&sum, j);
    opjoin_report_add(&sum, j);
    int twice = sum.nterm == j->nterm && sum.makespan_pred_ns == 2 * j->makespan_pred_ns &&
                sum.makespan_real_ns == 2 * j->makespan_real_ns && sum.matched == 2 * j->matched &&
                sum.pred_only == 2 * j->pred_only && sum.real_only == 2 * j->real_only &&
                sum.pred_only_ns == 2 * j->pred_only_ns && sum.real_only_ns == 2 * j->real_only_ns && j->matched > 0;
    for (int t = 0; twice && t < j->nterm; t++)
        twice = !strcmp(sum.term[t].name, j->term[t].name) && sum.term[t].pred_ns == 2 * j->term[t].pred_ns &&
                sum.term[t].real_ns == 2 * j->term[t].real_ns && sum.term[t].n_pred == 2 * j->term[t].n_pred &&
                sum.term[t].n_real == 2 * j->term[t].n_real;
    ok(twice, "opjoin_report_add: empty + the join + the join = twice the join in every term, makespan and count");
}

static void test_join(void)
{
    opjoin_tl *p = tl_from(pred_csv), *r = tl_from(real_csv);
    ok(p && r, "hand-made timelines read");
    if (!p || !r) { opjoin_tl_free(p); opjoin_tl_free(r); return; }
    is_int((long long)opjoin_tl_size(p), 7, "7 predicted ops");
    is_int((long long)opjoin_tl_size(r), 8, "8 real ops");
    opjoin_report j;
    ok(opjoin_join(p, r, &j) == D2_OK, "join");
    is_int(j.makespan_pred_ns, 320, "predicted makespan 320");
    is_int(j.makespan_real_ns, 420, "real makespan 420");
    int64_t sp = 0, sr = 0;
    for (int t = 0; t < j.nterm; t++)
        if (j.term[t].in_sum) sp += j.term[t].pred_ns, sr += j.term[t].real_ns;
    ok(sp == 320 && sr == 420, "the split adds up to each makespan (%lld, %lld)", (long long)sp, (long long)sr);
    const struct { const char *name; int64_t pred, real; } want[] = {
        {"compute_l1", 100, 135}, {"compute_l2", 50, 60}, {"wait_l1", 100, 150}, {"wait_l2", 50, 20},
        {"handoff_l1", 0, 25},    {"handoff_l2", 0, 10},  {"nonexpert", 20, 0},  {"nonexpert_gap", 0, 0},
        {"tail", 0, 20},          {"load_l1", 100, 170},  {"load_l2", 100, 110}, {"io_idle", 120, 140},
        {"compute_l3", 0, 0},
        /* compute on weights read in the same step: e1's two items (e0 L1 has no load) */
        {"fresh_l1", 50, 70},     {"fresh_l2", 50, 60},   {"fresh_l3", 0, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ok(term(&j, want[i].name, 0) == want[i].pred && term(&j, want[i].name, 1) == want[i].real,
           "%s: predicted %lld, real %lld (got %lld, %lld)", want[i].name, (long long)want[i].pred, (long long)want[i].real,
           (long long)term(&j, want[i].name, 0), (long long)term(&j, want[i].name, 1));
    is_int(j.matched, 7, "7 op pairs");
    ok(j.pred_only == 0 && j.real_only == 1 && j.real_only_ns == 20, "one real-only op of 20 ns");
    ok(j.worst_real.kind == OPJOIN_LOAD && j.worst_real.expert == 1 && j.worst_real.level == 1 &&
           j.worst_real.end_ns - j.worst_real.start_ns - (j.worst_pred.end_ns - j.worst_pred.start_ns) == 50,
       "largest excess: the load of expert 1 level 1, +50 ns");
    int t = opjoin_report_term(&j, "load_l1");
    ok(t >= 0 && j.term[t].n_pred == 1 && j.term[t].n_real == 2 && !j.term[t].in_sum, "load_l1: 1 vs 2 ops, not in the split");
    t = opjoin_report_term(&j, "fresh_l1");
    ok(t >= 0 && j.term[t].n_pred == 1 && j.term[t].n_real == 1 && !j.term[t].in_sum,
       "fresh_l1: 1 op on each side (of compute_l1's 2), not in the split");

    /* the CSV written back reads as the same run */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ok(f && opjoin_tl_write_csv(r, f) == D2_OK, "write the real timeline");
    if (f) fclose(f);
    opjoin_tl *r2 = buf ? tl_from(buf) : NULL;
    opjoin_report j2;
    ok(r2 && opjoin_join(r, r2, &j2) == D2_OK && j2.matched == 8 && j2.pred_only == 0 && j2.real_only == 0 &&
           j2.makespan_pred_ns == j2.makespan_real_ns,
       "written and read back: every op pairs with itself");
    int same = r2 != NULL;
    for (int u = 0; same && u < j2.nterm; u++) same = j2.term[u].pred_ns == j2.term[u].real_ns;
    ok(same, "and splits the same");
    free(buf);
    opjoin_tl_free(r2);
    opjoin_tl_free(p);
    opjoin_tl_free(r);
    test_metrics(&j);
}

static void test_steps(void)
{
    /* layers 0, 1, 0, 1: steps 0, 0, 1, 1; the same load twice in one step
     * pairs first with first (by start) */
    opjoin_tl *a = tl_from("0,1,compute,0,-1,0,1\n1,5,io,0,2,1,1\n5,9,compute,0,2,1,1\n9,10,compute,1,-1,0,1\n"
                           "10,11,compute,0,-1,0,1\n11,15,io,0,2,1,1\n15,19,compute,0,2,1,1\n19,20,compute,1,-1,0,1\n"
                           "20,30,io,1,4,1,1\n30,40,io,1,4,1,1\n");
    ok(a != NULL, "timeline without header read");
    if (!a) return;
    ok(opjoin_tl_get(a, 4)->step == 1 && opjoin_tl_get(a, 4)->kind == OPJOIN_NONEXPERT && opjoin_tl_get(a, 6)->step == 1 &&
           opjoin_tl_get(a, 3)->step == 0,
       "the step advances when the layer does not");
    opjoin_tl *b;
    ok(opjoin_tl_new(&b) == D2_OK, "empty timeline");
    for (size_t i = 0; i < opjoin_tl_size(a); i++) {
        opjoin_op o = *opjoin_tl_get(a, i);
        if (o.kind == OPJOIN_LOAD && o.layer == 1) o.end_ns += o.start_ns == 30 ? 7 : 1; /* second +7, first +1 */
        opjoin_tl_add(b, &o);
    }
    opjoin_report j;
    ok(opjoin_join(a, b, &j) == D2_OK && j.matched == 10 && j.worst_real.start_ns == 30 &&
           j.worst_real.end_ns - j.worst_pred.end_ns == 7,
       "repeated op: i-th paired with i-th (the +7 lands on the second)");
    /* storage stalls: a joined load more than OPJOIN_STALL_FACTOR (10) times
     * its prediction; exactly 10x is not one */
    {
        opjoin_tl *sp = tl_from("0,0,compute,0,-1,0,1\n0,10,io,0,1,1,1\n10,20,io,0,1,2,1\n20,25,compute,0,1,2,1\n");
        opjoin_tl *sr = tl_from("0,0,compute,0,-1,0,1\n0,101,io,0,1,1,1\n101,201,io,0,1,2,1\n201,206,compute,0,1,2,1\n");
        opjoin_report js;
        opjoin_report_init(&js);
        int jok = sp && sr && opjoin_join(sp, sr, &js) == D2_OK;
        ok(jok, "stall timelines joined");
        int t1 = opjoin_report_term(&js, "stall_l1"), t2 = opjoin_report_term(&js, "stall_l2");
        ok(t1 >= 0 && js.term[t1].pred_ns == 10 && js.term[t1].real_ns == 101 && js.term[t1].n_pred == 1 &&
               js.term[t1].n_real == 1 && !js.term[t1].in_sum,
           "stall_l1: the 10 ns load that took 101 ns (not in the split)");
        ok(jok && t2 >= 0 && js.term[t2].real_ns == 0 && js.term[t2].n_real == 0 && js.matched == 4,
           "stall_l2: a load of exactly 10x is not a stall");
        opjoin_tl_free(sp);
        opjoin_tl_free(sr);
    }
    opjoin_op bad = {.kind = OPJOIN_COMPUTE, .level = 9, .start_ns = 0, .end_ns = 1};
    ok(opjoin_tl_add(b, &bad) == D2_EINVAL, "level 9 refused");
    bad.level = 1, bad.start_ns = 5;
    ok(opjoin_tl_add(b, &bad) == D2_EINVAL, "end before start refused");
    opjoin_tl_free(a);
    opjoin_tl_free(b);

    const struct { const char *csv, *msg; } badcsv[] = {
        {"0,5,io,0,1,1,1\n", "hand:1: expert operation before any layer step"},
        {"start_ns,end_ns,queue,layer,expert,level,tokens\n0,1,compute,0,-1,0,1\n5,4,io,0,1,1,1\n", "hand:3: field \"end_ns\": expected an integer 5.."},
        {"0,1,compute,0,-1,0,1\n1,2,io,0,1,9,1\n", "hand:2: level 9"},
        {"0,1,compute,0,-1,0,1\n1,2,disk,0,1,1,1\n", "hand:2: queue \"disk\""},
        {"0,1,compute,0,-1,0,1\n1,2,d\xc3\xafsk,0,1,1,1\n", "hand:2: queue \"d\xc3\xafsk\""}, /* UTF-8 is quoted */
        {"0,1,compute,0,-1,0,1\n1,2,d\x01sk,0,1,1,1\n", "hand:2: field \"queue\": expected io or compute"}, /* a control byte is not */
        {"0,1,compute,0,-1,0,1\nnonsense\n", "hand:2: expected 7 fields"},
        {"0,1,compute,0,-1,0,1\n1,2,io,x,1,1,1\n", "hand:2: field \"layer\": expected an integer"},
        {"0,1,compute,0,-1,0,1\n1,2,io,0,1,1,99999999999999999999\n", "hand:2: field \"tokens\""},
        {"0,1,compute,0,-2,0,1\n", "hand:1: field \"expert\""},
    };
    for (size_t i = 0; i < sizeof badcsv / sizeof badcsv[0]; i++) {
        opjoin_tl *t;
        opjoin_tl_new(&t);
        FILE *f = fmemopen((void *)badcsv[i].csv, strlen(badcsv[i].csv), "r");
        int rc = opjoin_tl_read_csv(f, "hand", t);
        fclose(f);
        ok(rc == D2_EFORMAT && strstr(d2_err_msg(), badcsv[i].msg), "bad timeline %zu: %s", i, d2_err_msg());
        opjoin_tl_free(t);
    }
}

static void test_hostwatch(void)
{
    /* the paired error and the error without removed time: 0.9 s predicted,
     * 1.0 s real -> -10%; without 0.1 s of it -> 0; a real <= 0 gives 0 */
    is_near(valstat_error(0.9, 1.0), -0.1, 1e-15, "valstat_error(0.9, 1.0) = -0.1");
    is_near(valstat_error(0.9, 1.0 - 0.1), 0.0, 1e-15, "without 0.1 s of the run: 0");
    is_near(valstat_error(1.2, 0.8), 0.5, 1e-15, "valstat_error(1.2, 0.8) = +0.5");
    is_near(valstat_error(1.0, 0.0), 0.0, 0, "a real makespan of 0: 0, not a division by zero");

    /* A: [10,20) [30,50) [60,70), previous wakeups 8, 25, 55
     * B: [15,35) [40,45) [65,80), previous wakeups 12, 36, 62 */
    const hostwatch_span A[] = {{10, 20, 8}, {30, 50, 25}, {60, 70, 55}};
    const hostwatch_span B[] = {{15, 35, 12}, {40, 45, 36}, {65, 80, 62}};
    const hostwatch_span C[] = {{0, 100, 0}};
    const hostwatch_span *l[3] = {A, B, C};
    size_t n[3] = {3, 3, 1};
    int64_t ns, sp;
    /* A and B: [15,20) [30,35) [40,45) [65,70) */
    ok(hostwatch_overlap(l, n, 2, 0, 0, 100, &ns, &sp) == D2_OK && ns == 20 && sp == 4, "A and B: 20 ns in 4 spans");
    /* clipped to [18,68): [18,20) [30,35) [40,45) [65,68) */
    ok(hostwatch_overlap(l, n, 2, 0, 18, 68, &ns, &sp) == D2_OK && ns == 15 && sp == 4, "clipped to [18,68): 15 ns in 4 spans");
    /* wide: A [8,20) [25,50) [55,70), B [12,35) [36,45) [62,80): [12,20) [25,35) [36,45) [62,70) */
    ok(hostwatch_overlap(l, n, 2, 1, 0, 100, &ns, &sp) == D2_OK && ns == 35 && sp == 4, "wide: 35 ns in 4 spans");
    ok(hostwatch_overlap(l, n, 3, 0, 0, 100, &ns, &sp) == D2_OK && ns == 20 && sp == 4, "a third list covering all changes nothing");
    ok(hostwatch_overlap(l, n, 1, 0, 0, 100, &ns, &sp) == D2_OK && ns == 40 && sp == 3, "one list: its own 40 ns in 3 spans");
    ok(hostwatch_overlap(l, n, 0, 0, 0, 100, &ns, &sp) == D2_OK && ns == 0 && sp == 0, "no list: 0");
    ok(hostwatch_overlap(l, n, 2, 0, 50, 50, &ns, &sp) == D2_OK && ns == 0 && sp == 0, "an empty window: 0");
    /* touching pieces are one span: [0,10) against [0,5) [5,10) */
    const hostwatch_span T1[] = {{0, 10, 0}}, T2[] = {{0, 5, 0}, {5, 10, 5}};
    const hostwatch_span *lt[2] = {T1, T2};
    size_t nt[2] = {1, 2};
    ok(hostwatch_overlap(lt, nt, 2, 0, 0, 100, &ns, &sp) == D2_OK && ns == 10 && sp == 1, "touching pieces: 10 ns, one span");
    /* bad lists */
    const hostwatch_span U[] = {{30, 40, 30}, {10, 20, 10}}, V[] = {{10, 20, 15}}, W[] = {{10, 20, 10}, {25, 30, 15}};
    const hostwatch_span *lu[1] = {U}, *lv[1] = {V}, *lw[1] = {W};
    size_t n2[1] = {2}, n1[1] = {1};
    ok(hostwatch_overlap(lu, n2, 1, 0, 0, 100, &ns, &sp) == D2_EINVAL, "an unsorted list: EINVAL");
    ok(hostwatch_overlap(lv, n1, 1, 0, 0, 100, &ns, &sp) == D2_EINVAL, "a previous wakeup after the deadline: EINVAL");
    ok(hostwatch_overlap(lw, n2, 1, 0, 0, 100, &ns, &sp) == D2_OK && hostwatch_overlap(lw, n2, 1, 1, 0, 100, &ns, &sp) == D2_EINVAL,
       "spans disjoint as [start,end) but not from the previous wakeups: EINVAL only when wide");
    ok(hostwatch_overlap(l, n, HOSTWATCH_MAX_CPUS + 1, 0, 0, 100, &ns, &sp) == D2_EINVAL, "too many lists: EINVAL");

    /* a live watch: invariants only, never its timing */
    hostwatch *w;
    int cpus[2] = {0, 1}, same[2] = {0, 0};
    ok(hostwatch_start(same, 2, &w) == D2_EINVAL && !w, "the same CPU twice: EINVAL");
    ok(hostwatch_start(cpus, 0, &w) == D2_EINVAL && !w, "no CPU: EINVAL");
    const int64_t life0 = clock_mono_ns(); /* the watchers wake from their start to their stop, not only in [t0, t1] */
    int rc = hostwatch_start(cpus, 2, &w);
    if (rc != D2_OK) {
        tap_diag("%s", d2_err_msg());
        tap_skip(5, "two CPUs with SCHED_FIFO are needed for a live watch");
        return;
    }
    int64_t t0 = clock_mono_ns();
    while (clock_mono_ns() - t0 < 100000000) {} /* 100 ms of work on this CPU */
    int64_t t1 = clock_mono_ns();
    hostwatch_stop(w);
    const int64_t life1 = clock_mono_ns();
    hostwatch_stop(w); /* idempotent */
    hostwatch_tally t[2];
    int64_t mx;
    ok(hostwatch_cpu(w, 0, t0, t1, &t[0]) == D2_OK && hostwatch_cpu(w, 1, t0, t1, &t[1]) == D2_OK && t[0].cpu == 0 && t[1].cpu == 1,
       "both watchers tallied");
    ok(hostwatch_cpu(w, 2, t0, t1, &t[0]) == D2_EINVAL, "no third watcher");
    hostwatch_cpu(w, 0, t0, t1, &t[0]);
    ok(t[0].wakeups >= 1 && t[0].wakeups <= (life1 - life0) / HOSTWATCH_PERIOD_NS + 2 && t[0].dropped == 0,
       "wakeups at most one per period of the watchers' life (%lld in %.1f ms)", (long long)t[0].wakeups,
       (double)(life1 - life0) / 1e6);
    int src = hostwatch_stopped(w, t0, t1, &ns, &mx, &sp);
    ok(src == D2_OK && ns <= mx && mx <= t1 - t0 && ns <= t[0].late_ns &&
           ns <= t[1].late_ns && t[0].late_ns <= t[0].late_max_ns,
       "stopped <= each CPU's late time <= its upper bound (%lld <= %lld, %lld ns)", (long long)ns, (long long)t[0].late_ns,
       (long long)t[1].late_ns);
    ok(t[0].cpu_ns > 0 && t[1].cpu_ns > 0, "the watchers' own CPU time is counted");
    hostwatch_free(w);
}

/* cpushare: a hand-written /proc/stat (user nice system idle iowait irq
 * softirq steal ...; only the first three count), bad texts, and this
 * machine's own (read twice: the busy time does not go back) */
static void test_cpushare(void)
{
    const char *stat = "cpu  900 9 300 5000 10 5 7 0 0 0\n"
                       "cpu0 400 4 100 2500 5 2 3 0 0 0\n"
                       "cpu1 500 5 200 2500 5 3 4 0 0 0\n"
                       "intr 12345 0 0\n"
                       "cpu12 1 2 3 4 5 6 7 8 9 10\n";
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0) hz = 100;
    const int64_t tick = 1000000000LL / hz;
    int64_t b[3] = {0};
    const int c01[2] = {1, 0}, c12[1] = {12};
    const int prc = cpushare_parse(stat, c01, 2, b);
    ok(prc == D2_OK && b[0] == 705 * tick && b[1] == 504 * tick,
       "cpu1 = user + nice + system = 705 ticks, cpu0 = 504 (irq, softirq, idle, iowait left out): %lld, %lld ns",
       (long long)b[0], (long long)b[1]);
    ok(cpushare_parse(stat, c12, 1, b) == D2_OK && b[0] == 6 * tick, "cpu12 after another line: 1 + 2 + 3 ticks");
    const int c2[1] = {2}, neg[1] = {-1};
    ok(cpushare_parse(stat, c2, 1, b) == D2_ENOTFOUND, "a CPU the text lacks: D2_ENOTFOUND");
    ok(cpushare_parse("cpu0 12 x 3 4\n", c01 + 1, 1, b) == D2_EFORMAT, "a field that is not a number: D2_EFORMAT");
    ok(cpushare_parse("cpu0 12\n", c01 + 1, 1, b) == D2_EFORMAT, "a line cut short: D2_EFORMAT");
    ok(cpushare_parse(stat, neg, 1, b) == D2_EINVAL, "a negative CPU: D2_EINVAL");
    ok(cpushare_parse(stat, c01, 0, b) == D2_EINVAL, "no CPU: D2_EINVAL");
    const int c0[1] = {0};
    int64_t r0 = 0, r1 = 0;
    int rc = cpushare_read(c0, 1, &r0);
    if (rc == D2_ENOTFOUND) {
        tap_skip(1, "no /proc/stat here");
    } else {
        ok(rc == D2_OK && cpushare_read(c0, 1, &r1) == D2_OK && r1 >= r0 && r0 > 0, "this machine's cpu0: busy time read, not going back");
    }
}

int main(void)
{
    test_bootstrap();
    test_judge_host();
    test_join();
    test_steps();
    test_hostwatch();
    test_cpushare();
    return tap_done();
}
