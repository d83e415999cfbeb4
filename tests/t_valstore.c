/* t_valstore.c - the validation's store records (host/valstore.h) and the
 * validation figure's query (plots/validation.sql) on a hand-made store of
 * two validate sessions: the reader and the figure see the latest session
 * only (its rounds accepted and rejected, with their reasons; the figure
 * its accepted ones and its stored bound), the readers of what execute
 * stored, and the errors that name the store.  Every expected number is
 * the one written below. */
#include "core/err.h"
#include "host/valstore.h"
#include "results/db.h"
#include "results/plot.h"
#include "tap.h"

#include <math.h>
#include <unistd.h>

static char *argv0[] = {"t_valstore", NULL};

/* What a hand-made execute pair holds beyond its makespans */
typedef struct pair_extra {
    const char *const *mk;  /* metrics of the real run: names, values, count */
    const double *mv;
    int nm;
    int bubbles;            /* 1: bubble_ratio sb (sim) and rb (real) stored */
    double sb, rb;
    int probe;              /* probe_ok of the real run; < 0: none stored */
    int other_cfg;          /* 1: the real run's configuration differs (not a pair) */
} pair_extra;

/* an execute pair as execute stores it: the sim run, then the real run
 * (id = sim + 1); returns the real run's id, -1 on failure */
static int64_t pair_write(const char *path, const char *spec, int point, const char *plan, double sim_s, double real_s,
                          const pair_extra *x)
{
    db *d;
    if (db_open(path, &d)) return -1;
    int64_t id = -1;
    for (int side = 0; side < 2; side++) {
        db_run *r = db_run_new("execute", side ? "real" : "sim");
        char pt[16];
        snprintf(pt, sizeof pt, "%d", point);
        db_run_cmdline(r, 1, argv0);
        db_run_param(r, "exec.spec", spec);
        db_run_param(r, "exec.point", pt);
        db_run_param(r, "system.plan", plan);
        db_run_param(r, "sim.plan", plan);
        db_run_param(r, "sim.budget", side && x->other_cfg ? "1" : "100000000");
        db_run_param(r, "sim.requests", point ? "8" : "4");
        db_run_metric(r, "makespan_s", side ? real_s : sim_s, "s");
        if (x->bubbles) db_run_metric(r, "bubble_ratio", side ? x->rb : x->sb, "");
        if (side && x->probe >= 0) db_run_metric(r, "probe_ok", x->probe, "");
        for (int k = 0; side && k < x->nm; k++) db_run_metric(r, x->mk[k], x->mv[k], "");
        db_run_status(r, "ok");
        if (db_run_write(d, r, &id)) id = -1;
        db_run_free(r);
    }
    db_close(d);
    return id;
}

/* a validate round's pair, with the real run's metrics m[0..n) */
static int64_t exec_pair(const char *path, const char *spec, int point, const char *plan, double sim_s, double real_s,
                         const char *const *mk, const double *mv, int nm)
{
    const pair_extra x = {.mk = mk, .mv = mv, .nm = nm, .probe = -1};
    return pair_write(path, spec, point, plan, sim_s, real_s, &x);
}

/* a point run of a session, as validate's report writes it */
static int point_run(const char *path, const char *spec, int point, const char *session, const char *bound, const char *plan)
{
    db *d;
    if (db_open(path, &d)) return -1;
    db_run *r = db_run_new("validate", "point");
    char pt[16];
    snprintf(pt, sizeof pt, "%d", point);
    db_run_cmdline(r, 1, argv0);
    db_run_param(r, "point.sim.plan", plan);
    db_run_param(r, "point.sim.budget", "100000000");
    db_run_param(r, "point.sim.requests", point ? "8" : "4");
    db_run_param(r, "exec.spec", spec);
    db_run_param(r, "exec.point", pt);
    db_run_param(r, "validate.bound_pct", bound);
    db_run_param(r, "validate.rounds", "2");
    if (session) db_run_param(r, "validate.session", session);
    db_run_metric(r, "host_loadavg_start", 0.5, "");
    db_run_metric(r, "host_loadavg_end", 0.75, "");
    db_run_status(r, "ok");
    int64_t id;
    int rc = db_run_write(d, r, &id);
    db_run_free(r);
    db_close(d);
    return rc;
}

static int round_rec(const char *path, const char *session, int point, int round, int accepted, const char *reason, int64_t xid,
                     double sim_s, double real_s, double stopped_s, double taken_s, const opjoin_report *j)
{
    const valstore_round r = {.spec = "vs", .session = session, .point = (size_t)point, .round = round, .attempt = round,
                              .accepted = accepted, .reason = reason, .exec_id = xid, .sim_s = sim_s, .real_s = real_s,
                              .stopped_s = stopped_s, .taken_s = taken_s, .others = NULL, .join = j, .calib_ratio = 1.01,
                              .loadavg_1m = 0.5, .argc = 1, .argv = argv0};
    return valstore_round_write(path, &r);
}

/* an execute --spec pair with bubble ratios (what its summary reads) */
static int64_t spec_pair(const char *path, const char *spec, int point, double sim_s, double real_s, double sb, double rb,
                         int probe, int other_cfg)
{
    const pair_extra x = {.bubbles = 1, .sb = sb, .rb = rb, .probe = probe, .other_cfg = other_cfg};
    return pair_write(path, spec, point, "hebf", sim_s, real_s, &x);
}

typedef struct pairs_seen {
    int n;
    long point[8];
    double sim_s[8], real_s[8], sb[8], rb[8];
} pairs_seen;

static int see_pair(void *user, const valstore_spec_pair *p)
{
    pairs_seen *a = user;
    if (a->n >= 8) return D2_EINTERNAL;
    a->point[a->n] = p->point;
    a->sim_s[a->n] = p->sim_s;
    a->real_s[a->n] = p->real_s;
    a->sb[a->n] = p->sim_bubble;
    a->rb[a->n++] = p->real_bubble;
    return D2_OK;
}

static int stop_at_first(void *user, const valstore_spec_pair *p)
{
    (void)p;
    ++*(int *)user;
    return D2_EINTERNAL;
}

int main(void)
{
    char path[] = "/tmp/t_valstore.XXXXXX";
    int fd = mkstemp(path), rc;
    if (fd < 0) { printf("Bail out! mkstemp\n"); return 1; }
    close(fd);
    unlink(path);
    char db_path[64];
    snprintf(db_path, sizeof db_path, "%s.db", path);

    /* session "0": one accepted round per point (15 % bound), then session
     * B: point 0 accepted twice and rejected once, point 1 accepted once
     * and rejected once (a failed execute: no pair) */
    const char *hk[] = {"host_late_compute_cpu_max_s", "host_in_compute_l1_s", "host_in_compute_l2_s", "host_in_compute_l9_s",
                        "host_in_compute_l1_sx", "host_stopped_s", "host_late_compute_cpu_s", "probe_ok",
                        "others_compute_cpu_s", "others_io_cpu_s", "others_span_s"};
    const double hv[] = {0.04, 0.1, 0.2, 5, 7, 0.01, 0.02, 1, 0.05, 0.1, 1.0};
    int64_t a0 = exec_pair(db_path, "vs", 0, "hebf", 1.0, 1.1, NULL, NULL, 0);
    int64_t a1 = exec_pair(db_path, "vs", 1, "id-order", 2.0, 2.2, NULL, NULL, 0);
    ok(a0 > 0 && a1 > 0, "session A: execute pairs stored");
    ok(round_rec(db_path, "0", 0, 1, 1, "accepted", a0, 1.0, 1.1, -1, -1, NULL) == D2_OK &&
           round_rec(db_path, "0", 1, 1, 1, "accepted", a1, 2.0, 2.2, -1, -1, NULL) == D2_OK,
       "session A: two accepted rounds written");
    ok(point_run(db_path, "vs", 0, "0", "15", "hebf") == D2_OK && point_run(db_path, "vs", 1, "0", "15", "id-order") == D2_OK,
       "session A: its point runs, bound 15%%");

    int64_t sess = -1;
    rc = valstore_last_id(db_path, &sess);
    ok(rc == D2_OK && sess == a1 + 4, "last run id: %lld (4 runs after the second pair)", (long long)sess);
    char sb[32];
    snprintf(sb, sizeof sb, "%lld", (long long)sess);
    int64_t b0 = exec_pair(db_path, "vs", 0, "hebf", 0.9, 1.0, hk, hv, 11);
    opjoin_report j;
    opjoin_report_init(&j);
    ok(opjoin_report_set_metric(&j, "join_makespan_real_s", 1.0) == D2_OK &&
           opjoin_report_set_metric(&j, "join_makespan_sim_s", 0.9) == D2_OK, "an op join to copy into a round");
    int64_t first_b = 0;
    rc = round_rec(db_path, sb, 0, 1, 1, "accepted", b0, 0.9, 1.0, 0.01, 0.02, &j);
    if (!rc) rc = valstore_last_id(db_path, &first_b);
    int64_t b1 = exec_pair(db_path, "vs", 1, "id-order", 1.8, 2.0, NULL, NULL, 0);
    if (!rc) rc = round_rec(db_path, sb, 1, 1, 0, "execute failed (status 1)", 0, 0, 0, -1, -1, NULL);
    int64_t b2 = exec_pair(db_path, "vs", 0, "hebf", 1.3, 1.2, NULL, NULL, 0);
    if (!rc) rc = round_rec(db_path, sb, 0, 2, 0, "busy machine: other processes took 9.0% of the compute CPU", b2, 1.3, 1.2, -1, -1, NULL);
    int64_t b3 = exec_pair(db_path, "vs", 0, "hebf", 1.1, 1.0, NULL, NULL, 0);
    if (!rc) rc = round_rec(db_path, sb, 0, 3, 1, "accepted", b3, 1.1, 1.0, -1, -1, NULL);
    if (!rc) rc = round_rec(db_path, sb, 1, 2, 1, "accepted", b1, 1.8, 2.0, -1, -1, NULL);
    int64_t last_b = 0;
    if (!rc) rc = valstore_last_id(db_path, &last_b);
    ok(!rc && b0 > 0 && b1 > 0 && b2 > 0 && b3 > 0, "session B: five rounds written");
    ok(point_run(db_path, "vs", 0, sb, "7.5", "hebf") == D2_OK && point_run(db_path, "vs", 1, sb, "7.5", "id-order") == D2_OK,
       "session B: its point runs, bound 7.5%%");

    /* what execute stored, read back */
    valstore_pair vp;
    ok(valstore_pair_last(db_path, "vs", 0, sess, &vp) == D2_OK, "the last execute run of point 0");
    is_int(vp.exec_id, b3, "  is the last one written");
    is_near(vp.sim_s, 1.1, 0, "  sim makespan from the run before it");
    is_near(vp.real_s, 1.0, 0, "  real makespan");
    is_near(vp.stopped_s, -1, 0, "  stops not measured: -1");
    rc = valstore_pair_last(db_path, "vs", 0, b3, &vp);
    ok(rc == D2_ENOTFOUND && strstr(d2_err_msg(), db_path) && strstr(d2_err_msg(), "point 0"),
       "no run after the last: D2_ENOTFOUND naming the store (%s)", d2_err_msg());
    /* another spec's run, after all of them: not point 0 of "vs" */
    int64_t o0 = exec_pair(db_path, "other", 0, "hebf", 3.0, 3.3, hk, hv, 11);
    ok(valstore_pair_last(db_path, "vs", 0, sess, &vp) == D2_OK && vp.exec_id == b3, "another spec's later run is not vs's");
    ok(valstore_pair_last(db_path, "other", 0, 0, &vp) == D2_OK && vp.exec_id == o0, "the other spec's run");
    ok(vp.probe_ok == 1, "  probe_ok 1");
    is_near(vp.stopped_s, 0.01, 0, "  stops 0.01 s");
    is_near(vp.taken_s, 0.02, 0, "  compute CPU taken 0.02 s");
    is_near(vp.taken_max_s, 0.04, 0, "  at most 0.04 s");
    is_near(vp.others[0], 0.05, 1e-15, "  others' share of the compute CPU: 0.05 s / 1 s");
    is_near(vp.others[1], 0.1, 1e-15, "  of the I/O CPU: 0.1 s / 1 s");
    double h[EXEC_HOST_LEVELS] = {0};
    int found = 0;
    ok(valstore_host_in_add(db_path, b0, h, &found) == D2_OK && found, "host_in_compute_lK_s of b0 found");
    is_near(h[0], 0.1, 1e-15, "  level 1: 0.1 s (l1_sx skipped)");
    is_near(h[1], 0.2, 1e-15, "  level 2: 0.2 s");
    double rest = 0;
    for (int k = 2; k < EXEC_HOST_LEVELS; k++) rest += h[k];
    is_near(rest, 0, 0, "  l9 beyond EXEC_HOST_LEVELS skipped");
    ok(valstore_host_in_add(db_path, b1, h, &found) == D2_OK && !found, "a run without them: not found, D2_OK");

    opjoin_report jr;
    ok(valstore_join_read(db_path, first_b, &jr) == D2_OK, "the op join copied into session B's first round");
    is_int(jr.makespan_real_ns, 1000000000, "  its real makespan: 1 s");
    is_int(jr.makespan_pred_ns, 900000000, "  its predicted one: 0.9 s");
    rc = valstore_join_read(db_path, last_b, &jr);
    ok(rc == D2_ENOTFOUND && strstr(d2_err_msg(), db_path),
       "a round without one: D2_ENOTFOUND naming the store (%s)", d2_err_msg());

    /* the latest session */
    valstore_session s;
    ok(valstore_session_read(db_path, &s) == D2_OK, "the latest session read");
    is_int(s.nrows, 5, "  its five rounds, none of session A's");
    is_int(s.npoints, 2, "  two points");
    is_str(s.spec, "vs", "  spec");
    is_int(s.first_id, first_b, "  first round id");
    is_int(s.last_id, last_b, "  last round id");
    int nacc = 0, seen_busy = 0, seen_failed = 0, from_a = 0;
    for (size_t i = 0; i < s.nrows; i++) {
        nacc += s.rows[i].accepted;
        from_a += s.rows[i].id < first_b;
        if (!s.rows[i].accepted && !strncmp(s.rows[i].reason, "busy machine:", 13) && s.rows[i].point == 0) seen_busy++;
        if (!s.rows[i].accepted && !strcmp(s.rows[i].reason, "execute failed (status 1)") && s.rows[i].point == 1 &&
            s.rows[i].real_s == 0 && s.rows[i].exec_id == 0)
            seen_failed++;
    }
    is_int(nacc, 3, "  three accepted");
    is_int(from_a, 0, "  no round of the earlier session");
    is_int(seen_busy, 1, "  the busy round rejected, with its reason");
    is_int(seen_failed, 1, "  the failed round rejected, with its reason and no pair");
    if (s.nrows >= 1) {
        const valstore_row *w = &s.rows[0];
        ok(w->accepted && !strcmp(w->reason, "accepted") && w->exec_id == b0, "  the first: accepted, its execute run");
        is_near(w->sim_s, 0.9, 0, "  its sim makespan");
        is_near(w->real_s, 1.0, 0, "  its real makespan");
        is_near(w->stopped_s, 0.01, 0, "  its stops");
        is_near(w->taken_s, 0.02, 0, "  the compute CPU taken");
        is_near(w->taken_max_s, 0.04, 0, "  its upper bound, from the execute run");
    } else tap_skip(6, "no rows");
    if (s.npoints == 2) {
        is_str(s.points[0].cfg, "hebf 100000000 4", "  point 0's configuration from its point run");
        is_str(s.points[1].cfg, "id-order 100000000 8", "  point 1's");
        is_int(s.points[0].rounds_asked, 2, "  rounds asked");
        is_near(s.points[1].load_end, 0.75, 0, "  load at the end");
    } else tap_skip(4, "no points");
    valstore_session_clear(&s);

    /* the validation figure's query, as `d2moe plot validation` runs it */
    const char *src = getenv("D2_SRCDIR");
    char plotdir[4096], dat[128];
    snprintf(plotdir, sizeof plotdir, "%s/plots", src ? src : ".");
    snprintf(dat, sizeof dat, "%s.dat", path);
    plot_fig f;
    memset(&f, 0, sizeof f);
    snprintf(f.name, sizeof f.name, "validation");
    snprintf(f.sql, sizeof f.sql, "validation.sql");
    snprintf(f.title, sizeof f.title, "validation");
    db *d = NULL;
    plot_out po;
    d2_err_clear();
    rc = db_open_readonly(db_path, &d);
    if (!rc) rc = plot_export(d, plotdir, &f, NULL, dat, &po);
    ok(rc == D2_OK, "the figure's query (%s/validation.sql) on the store%s%s", plotdir, rc ? ": " : "", rc ? d2_err_msg() : "");
    db_close(d);
    is_int(po.rows, 3, "  its points: the latest session's three accepted rounds");
    is_int(po.series, 2, "  two series (planners)");
    is_str(po.titles, "hebf id-order", "  titles");
    FILE *df = fopen(dat, "r");
    char line[512];
    int nb = 0, nrow = 0;
    double sumx = 0;
    while (df && fgets(line, sizeof line, df)) {
        char lab[64];
        double x, y, b, st;
        if (sscanf(line, "%63s %lf %lf %lf %lf", lab, &x, &y, &b, &st) == 5) {
            nrow++;
            sumx += x;
            nb += b == 7.5 && st == 1;
        }
    }
    if (df) fclose(df);
    is_int(nrow, 3, "  the data file: three rows");
    is_near(sumx, 1.0 + 1.0 + 2.0, 1e-12, "  their real makespans: 1.0, 1.0, 2.0 s (session A's 1.1 and 2.2 absent)");
    is_int(nb, 3, "  each with the session's stored bound, 7.5%%");
    unlink(dat);

    /* errors name the store */
    char none[96];
    snprintf(none, sizeof none, "%s.none.db", path);
    rc = valstore_session_read(none, &s);
    ok(rc != D2_OK && strstr(d2_err_msg(), none), "a missing store: refused, named (%s)", d2_err_msg());
    valstore_session_clear(&s);
    char txt[96];
    snprintf(txt, sizeof txt, "%s.txt", path);
    FILE *tf = fopen(txt, "w");
    if (tf) fputs("this is not a store\n", tf), fclose(tf);
    rc = valstore_session_read(txt, &s);
    ok(rc == D2_EFORMAT && strstr(d2_err_msg(), txt), "a text file: D2_EFORMAT, named (%s)", d2_err_msg());
    valstore_session_clear(&s);
    char empty[96];
    snprintf(empty, sizeof empty, "%s.empty.db", path);
    ok(db_open(empty, &d) == D2_OK, "an empty store");
    db_close(d);
    rc = valstore_session_read(empty, &s);
    ok(rc == D2_ENOTFOUND && strstr(d2_err_msg(), empty) && strstr(d2_err_msg(), "no validation rounds"),
       "a store without rounds: D2_ENOTFOUND, named (%s)", d2_err_msg());
    valstore_session_clear(&s);
    sess = -1;
    (void)valstore_last_id(txt, &sess);
    is_int(sess, 0, "last id of a file that is not a store: 0");

    /* execute --spec's summary: its pairs, read back */
    char sp_path[96];
    snprintf(sp_path, sizeof sp_path, "%s.spec.db", path);
    int64_t s0 = spec_pair(sp_path, "sp", 0, 1.0, 1.25, 0.1, 0.2, -1, 0);  /* before the cut: not read */
    int64_t cut = s0;
    int64_t s1 = spec_pair(sp_path, "sp", 1, 2.0, 2.5, 0.3, 0.4, 1, 0);   /* read */
    int64_t s2 = spec_pair(sp_path, "sp", 0, 3.0, 3.5, 0.5, 0.6, 0, 0);   /* probe failed: not read */
    int64_t s3 = spec_pair(sp_path, "other", 0, 4.0, 4.5, 0.7, 0.8, 1, 0); /* another spec: not read */
    int64_t s4 = spec_pair(sp_path, "sp", 0, 5.0, 5.5, 0.9, 1.0, 1, 1);   /* real run of another configuration: not read */
    int64_t s5 = spec_pair(sp_path, "sp", 7, 6.0, 6.5, 0.15, 0.25, -1, 0); /* no probe stored: read */
    ok(s0 > 0 && s1 > 0 && s2 > 0 && s3 > 0 && s4 > 0 && s5 > 0, "execute --spec pairs stored");
    pairs_seen ps = {0};
    ok(valstore_spec_pairs(sp_path, "sp", cut, see_pair, &ps) == D2_OK, "valstore_spec_pairs walks the pairs after the cut");
    is_int(ps.n, 2, "  two pairs: the probe-failed one, another spec's, a mismatched one and the one before the cut left out");
    ok(ps.n == 2 && ps.point[0] == 1 && ps.point[1] == 7, "  points 1 then 7, by sim run id");
    ok(ps.n == 2 && ps.sim_s[0] == 2.0 && ps.real_s[0] == 2.5 && ps.sb[0] == 0.3 && ps.rb[0] == 0.4,
       "  the first pair's makespans and bubble ratios, sim and real in their places");
    ok(ps.n == 2 && ps.sim_s[1] == 6.0 && ps.real_s[1] == 6.5 && ps.sb[1] == 0.15 && ps.rb[1] == 0.25, "  the second's");
    ps.n = 0;
    rc = valstore_spec_pairs(sp_path, "sp", 0, see_pair, &ps);
    ok(rc == D2_OK && ps.n == 3 && ps.point[0] == 0 && ps.sim_s[0] == 1.0, "  after id 0: the first pair too (%d pairs)", ps.n);
    int calls = 0;
    ok(valstore_spec_pairs(sp_path, "sp", 0, stop_at_first, &calls) == D2_EINTERNAL && calls == 1,
       "  the visitor's status stops the walk and is returned");
    ps.n = 0;
    ok(valstore_spec_pairs(sp_path, "nosuch", 0, see_pair, &ps) == D2_OK && ps.n == 0, "  a spec with no pairs: none, D2_OK");
    rc = valstore_spec_pairs(txt, "sp", 0, see_pair, &ps);
    ok(rc != D2_OK && strstr(d2_err_msg(), txt), "  a file that is not a store: refused, named (%s)", d2_err_msg());

    const char *sfx[] = {"", "-wal", "-shm"};
    for (int k = 0; k < 3; k++) {
        char p[128];
        snprintf(p, sizeof p, "%s%s", db_path, sfx[k]);
        unlink(p);
        snprintf(p, sizeof p, "%s%s", empty, sfx[k]);
        unlink(p);
        snprintf(p, sizeof p, "%s%s", none, sfx[k]);
        unlink(p);
        snprintf(p, sizeof p, "%s%s", sp_path, sfx[k]);
        unlink(p);
    }
    unlink(txt);
    return tap_done();
}
