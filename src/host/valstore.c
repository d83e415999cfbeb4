/* valstore.c - the validation's records in the results store: the queries
 * behind `d2moe validate` (read what execute stored, write a round, read the
 * latest session back for --from).  See valstore.h; no statistics, no
 * printing. */
#include "host/valstore.h"

#include "core/err.h"
#include "core/vec.h"
#include "host/valstat.h"
#include "results/db.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int valstore_pair_last(const char *dbpath, const char *spec, size_t point, int64_t after_id, valstore_pair *out)
{
    db *d;
    D2_TRY(db_open_readonly(dbpath, &d));
    sqlite3_stmt *q;
    int rc = D2_ENOTFOUND;
    const char *sql =
        "SELECT r.id, (SELECT value FROM metrics WHERE run_id = r.id AND name = 'makespan_s'),"
        "  (SELECT value FROM metrics WHERE run_id = r.id - 1 AND name = 'makespan_s'),"
        "  coalesce((SELECT value FROM metrics WHERE run_id = r.id AND name = 'probe_ok'), 1),"
        "  coalesce((SELECT value FROM metrics WHERE run_id = r.id AND name = 'host_stopped_s'), -1),"
        "  coalesce((SELECT value FROM metrics WHERE run_id = r.id AND name = 'host_late_compute_cpu_s'), -1),"
        "  coalesce((SELECT value FROM metrics WHERE run_id = r.id AND name = 'host_late_compute_cpu_max_s'), -1),"
        "  coalesce((SELECT value FROM metrics WHERE run_id = r.id AND name = 'others_compute_cpu_s')"
        "           / (SELECT value FROM metrics WHERE run_id = r.id AND name = 'others_span_s'), -1),"
        "  coalesce((SELECT value FROM metrics WHERE run_id = r.id AND name = 'others_io_cpu_s')"
        "           / (SELECT value FROM metrics WHERE run_id = r.id AND name = 'others_span_s'), -1)"
        "  FROM runs r JOIN params sp ON sp.run_id = r.id AND sp.key = 'exec.spec' AND sp.value = ?1"
        "  JOIN params pt ON pt.run_id = r.id AND pt.key = 'exec.point' AND CAST(pt.value AS INTEGER) = ?2"
        " WHERE r.kind = 'execute' AND r.mode = 'real' AND r.id > ?3 ORDER BY r.id DESC LIMIT 1";
    if (sqlite3_prepare_v2(db_handle(d), sql, -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, spec, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)point);
        sqlite3_bind_int64(q, 3, after_id);
        if (sqlite3_step(q) == SQLITE_ROW) {
            out->exec_id = sqlite3_column_int64(q, 0);
            out->real_s = sqlite3_column_double(q, 1);
            out->sim_s = sqlite3_column_double(q, 2);
            out->probe_ok = sqlite3_column_double(q, 3) != 0;
            out->stopped_s = sqlite3_column_double(q, 4);
            out->taken_s = sqlite3_column_double(q, 5);
            out->taken_max_s = sqlite3_column_double(q, 6);
            out->others[0] = sqlite3_column_double(q, 7);
            out->others[1] = sqlite3_column_double(q, 8);
            rc = D2_OK;
        }
        sqlite3_finalize(q);
    } else rc = D2_EDB;
    db_close(d);
    if (rc) d2_err_set("%s: no execute run of point %zu found", dbpath, point);
    return rc;
}

int valstore_spec_pairs(const char *dbpath, const char *spec, int64_t after_id,
                        int (*fn)(void *user, const valstore_spec_pair *p), void *user)
{
    db *d;
    D2_TRY(db_open_readonly(dbpath, &d));
    const char *sql =
        "SELECT CAST(pt.value AS INTEGER), ms.value, mr.value, bs.value, br.value"
        "  FROM runs rs JOIN runs rr ON rr.id = rs.id + 1 AND rr.config_hash = rs.config_hash AND rr.mode = 'real'"
        "  JOIN params sp ON sp.run_id = rs.id AND sp.key = 'exec.spec' AND sp.value = ?1"
        "  JOIN params pt ON pt.run_id = rs.id AND pt.key = 'exec.point'"
        "  JOIN metrics ms ON ms.run_id = rs.id AND ms.name = 'makespan_s'"
        "  JOIN metrics mr ON mr.run_id = rr.id AND mr.name = 'makespan_s'"
        "  JOIN metrics bs ON bs.run_id = rs.id AND bs.name = 'bubble_ratio'"
        "  JOIN metrics br ON br.run_id = rr.id AND br.name = 'bubble_ratio'"
        " WHERE rs.kind = 'execute' AND rs.mode = 'sim' AND rs.status = 'ok' AND rs.id > ?2"
        "   AND coalesce((SELECT value FROM metrics WHERE run_id = rr.id AND name = 'probe_ok'), 1) != 0"
        " ORDER BY rs.id";
    sqlite3_stmt *q;
    int rc = D2_OK, st = SQLITE_DONE;
    if (sqlite3_prepare_v2(db_handle(d), sql, -1, &q, NULL) != SQLITE_OK) {
        d2_err_set("%s: %s", dbpath, sqlite3_errmsg(db_handle(d)));
        db_close(d);
        return D2_EDB;
    }
    sqlite3_bind_text(q, 1, spec, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 2, after_id);
    while (rc == D2_OK && (st = sqlite3_step(q)) == SQLITE_ROW) {
        const sqlite3_int64 pt = sqlite3_column_int64(q, 0);
        const valstore_spec_pair p = {.point = pt < LONG_MIN ? LONG_MIN : pt > LONG_MAX ? LONG_MAX : (long)pt,
                                      .sim_s = sqlite3_column_double(q, 1), .real_s = sqlite3_column_double(q, 2),
                                      .sim_bubble = sqlite3_column_double(q, 3), .real_bubble = sqlite3_column_double(q, 4)};
        rc = fn(user, &p);
    }
    if (rc == D2_OK && st != SQLITE_DONE) rc = (d2_err_set("%s: %s", dbpath, sqlite3_errmsg(db_handle(d))), D2_EDB);
    sqlite3_finalize(q);
    db_close(d);
    return rc;
}

int valstore_host_in_add(const char *dbpath, int64_t run_id, double h[EXEC_HOST_LEVELS], int *found)
{
    *found = 0;
    db *d;
    D2_TRY(db_open_readonly(dbpath, &d));
    sqlite3_stmt *q;
    int rc = D2_OK;
    if (sqlite3_prepare_v2(db_handle(d), "SELECT name, value FROM metrics WHERE run_id = ?1 AND name LIKE 'host!_in!_compute!_l%' ESCAPE '!'",
                           -1, &q, NULL) != SQLITE_OK) {
        d2_err_set("%s: %s", dbpath, sqlite3_errmsg(db_handle(d)));
        rc = D2_EDB;
    } else {
        sqlite3_bind_int64(q, 1, run_id);
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(q, 0);
            int k;
            char tail[8];
            if (name && sscanf(name, "host_in_compute_l%d%7s", &k, tail) == 2 && !strcmp(tail, "_s") && k >= 1 &&
                k <= EXEC_HOST_LEVELS) {
                h[k - 1] += sqlite3_column_double(q, 1);
                *found = 1;
            }
        }
        sqlite3_finalize(q);
    }
    db_close(d);
    return rc;
}

int valstore_last_id(const char *dbpath, int64_t *id)
{
    *id = 0;
    db *d;
    int rc = db_open(dbpath, &d);
    if (rc) return rc;
    rc = db_run_last_id(d, id);
    if (rc) *id = 0;
    db_close(d);
    return rc;
}

int valstore_join_read(const char *dbpath, int64_t run_id, opjoin_report *rep)
{
    db *d;
    D2_TRY(db_open_readonly(dbpath, &d));
    opjoin_report_init(rep);
    sqlite3_stmt *q;
    int rc = D2_OK, found = 0;
    if (sqlite3_prepare_v2(db_handle(d), "SELECT name, value FROM metrics WHERE run_id = ?1 AND name LIKE 'join!_%' ESCAPE '!'",
                           -1, &q, NULL) != SQLITE_OK) {
        d2_err_set("%s: %s", dbpath, sqlite3_errmsg(db_handle(d)));
        db_close(d);
        return D2_EDB;
    }
    sqlite3_bind_int64(q, 1, run_id);
    while (rc == D2_OK && sqlite3_step(q) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(q, 0);
        int st = opjoin_report_set_metric(rep, name ? name : "", sqlite3_column_double(q, 1));
        if (st == D2_OK) found += !strcmp(name, "join_makespan_real_s");
        else if (st != D2_ENOTFOUND) rc = st; /* D2_ENOTFOUND: a join_ name that is not the op join's, skipped */
    }
    sqlite3_finalize(q);
    db_close(d);
    if (!rc && !found) {
        d2_err_set("%s: execute run %lld stored no op join (metrics join_*)", dbpath, (long long)run_id);
        rc = D2_ENOTFOUND;
    }
    return rc;
}

static int metric_visit(const char *name, double v, const char *unit, void *run) { return db_run_metric(run, name, v, unit); }

int valstore_round_write(const char *dbpath, const valstore_round *r)
{
    db *d;
    D2_TRY(db_open(dbpath, &d));
    db_run *run = db_run_new("validate", "round");
    if (!run) { db_close(d); D2_ERROR(D2_ENOMEM, "out of memory"); }
    char pt[32], rd[32], at[32];
    snprintf(pt, sizeof pt, "%zu", r->point);
    snprintf(rd, sizeof rd, "%d", r->round);
    snprintf(at, sizeof at, "%d", r->attempt);
    db_run_cmdline(run, r->argc, r->argv);
    const double sim_s = r->sim_s, real_s = r->real_s, stopped_s = r->stopped_s, taken_s = r->taken_s;
    int rc = db_run_param(run, "exec.spec", r->spec);
    if (!rc) rc = db_run_param(run, "exec.point", pt);
    if (!rc) rc = db_run_param(run, "validate.round", rd);
    if (!rc) rc = db_run_param(run, "validate.attempt", at);
    if (!rc) rc = db_run_param(run, "validate.session", r->session);
    if (!rc) rc = db_run_param(run, "validate.reason", r->reason);
    if (!rc) rc = db_run_metric(run, "accepted", r->accepted, "");
    if (!rc) rc = db_run_metric(run, "host_loadavg_1m", r->loadavg_1m, "");
    if (!rc && r->calib_ratio > 0) rc = db_run_metric(run, "calib_probe_fit_ratio", r->calib_ratio, "");
    if (!rc && r->exec_id > 0) rc = db_run_metric(run, "exec_real_run_id", (double)r->exec_id, "");
    if (!rc && real_s > 0) {
        rc = db_run_metric(run, "sim_makespan_s", sim_s, "s");
        if (!rc) rc = db_run_metric(run, "real_makespan_s", real_s, "s");
        if (!rc) rc = db_run_metric(run, "error", valstat_error(sim_s, real_s), "");
        if (!rc && stopped_s >= 0) rc = db_run_metric(run, "host_stopped_s", stopped_s, "s");
        if (!rc && stopped_s >= 0 && real_s > stopped_s)
            rc = db_run_metric(run, "error_without_stops", valstat_error(sim_s, real_s - stopped_s), "");
        if (!rc && taken_s >= 0) rc = db_run_metric(run, "host_late_compute_cpu_s", taken_s, "s");
        if (!rc && taken_s >= 0 && real_s > taken_s)
            rc = db_run_metric(run, "error_without_compute_cpu_taken", valstat_error(sim_s, real_s - taken_s), "");
    }
    if (!rc && r->others && r->others[0] >= 0) rc = db_run_metric(run, "others_compute_cpu_share", r->others[0], "");
    if (!rc && r->others && r->others[1] >= 0) rc = db_run_metric(run, "others_io_cpu_share", r->others[1], "");
    if (r->join && !rc) rc = opjoin_report_foreach_metric(r->join, metric_visit, run); /* the execute run's, copied */
    db_run_status(run, "ok");
    int64_t id;
    if (!rc) rc = db_run_write(d, run, &id);
    db_run_free(run);
    db_close(d);
    return rc;
}

void valstore_session_init(valstore_session *s) { memset(s, 0, sizeof *s); }

void valstore_session_clear(valstore_session *s)
{
    free(s->rows);
    free(s->points);
    valstore_session_init(s);
}

/* the rounds of the latest validation: R = the last round, Q = the last
 * point run before it, S = its session (NULL in older stores) */
static const char session_sql[] =
    "WITH R AS (SELECT coalesce(max(id), 0) AS r FROM runs WHERE kind = 'validate' AND mode = 'round'),"
    " Q AS (SELECT coalesce(max(id), 0) AS q FROM runs WHERE kind = 'validate' AND mode = 'point' AND id < (SELECT r FROM R)),"
    " S AS (SELECT (SELECT value FROM params WHERE run_id = (SELECT r FROM R) AND key = 'validate.session') AS s)"
    " SELECT v.id, CAST(pp.value AS INTEGER), sp.value, a.value,"
    "  coalesce((SELECT value FROM metrics WHERE run_id = v.id AND name = 'sim_makespan_s'), 0),"
    "  coalesce((SELECT value FROM metrics WHERE run_id = v.id AND name = 'real_makespan_s'), 0),"
    "  coalesce((SELECT value FROM metrics WHERE run_id = v.id AND name = 'host_stopped_s'), -1),"
    "  coalesce((SELECT value FROM metrics WHERE run_id = v.id AND name = 'host_late_compute_cpu_s'), -1),"
    "  coalesce((SELECT m.value FROM metrics x JOIN metrics m ON m.run_id = CAST(x.value AS INTEGER)"
    "            AND m.name = 'host_late_compute_cpu_max_s' WHERE x.run_id = v.id AND x.name = 'exec_real_run_id'), -1),"
    "  coalesce((SELECT CAST(value AS INTEGER) FROM metrics WHERE run_id = v.id AND name = 'exec_real_run_id'), 0),"
    "  coalesce((SELECT value FROM params WHERE run_id = v.id AND key = 'validate.reason'), '')"
    " FROM runs v JOIN params pp ON pp.run_id = v.id AND pp.key = 'exec.point'"
    " JOIN params sp ON sp.run_id = v.id AND sp.key = 'exec.spec'"
    " JOIN metrics a ON a.run_id = v.id AND a.name = 'accepted'"
    " WHERE v.kind = 'validate' AND v.mode = 'round' AND v.id <= (SELECT r FROM R) AND CASE WHEN (SELECT s FROM S) IS NULL"
    "  THEN v.id > (SELECT q FROM Q)"
    "  ELSE (SELECT value FROM params WHERE run_id = v.id AND key = 'validate.session') = (SELECT s FROM S) END"
    " ORDER BY v.id";

/* a point's configuration and the rounds asked for: from its point run
 * after the rounds (?2 = the last round's id) ... */
static const char point_sql[] =
    "SELECT (SELECT value FROM params WHERE run_id = r.id AND key = 'point.sim.plan'),"
    " (SELECT value FROM params WHERE run_id = r.id AND key = 'point.sim.budget'),"
    " (SELECT value FROM params WHERE run_id = r.id AND key = 'point.sim.requests'),"
    " (SELECT CAST(value AS INTEGER) FROM params WHERE run_id = r.id AND key = 'validate.rounds'),"
    " (SELECT value FROM metrics WHERE run_id = r.id AND name = 'host_loadavg_start'),"
    " (SELECT value FROM metrics WHERE run_id = r.id AND name = 'host_loadavg_end')"
    " FROM runs r JOIN params pp ON pp.run_id = r.id AND pp.key = 'exec.point' AND CAST(pp.value AS INTEGER) = ?1"
    " WHERE r.kind = 'validate' AND r.mode = 'point' AND r.id > ?2 ORDER BY r.id LIMIT 1";
/* ... else from the execute run of its last round */
static const char exec_sql[] =
    "SELECT (SELECT value FROM params WHERE run_id = ?1 AND key = 'sim.plan'),"
    " (SELECT value FROM params WHERE run_id = ?1 AND key = 'sim.budget'),"
    " (SELECT value FROM params WHERE run_id = ?1 AND key = 'sim.requests')";

static int read_rows(const char *path, sqlite3 *h, valstore_session *s)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(h, session_sql, -1, &q, NULL) != SQLITE_OK) D2_ERROR(D2_EDB, "%s: %s", path, sqlite3_errmsg(h));
    size_t cap = 0;
    int rc = D2_OK, st;
    while (rc == D2_OK && (st = sqlite3_step(q)) == SQLITE_ROW) {
        if ((rc = VEC_RESERVE(s->rows, cap, s->nrows + 1)) != D2_OK) break;
        valstore_row *w = &s->rows[s->nrows++];
        w->id = sqlite3_column_int64(q, 0);
        w->point = (long)sqlite3_column_int64(q, 1);
        const char *sv = (const char *)sqlite3_column_text(q, 2);
        w->accepted = sqlite3_column_double(q, 3) != 0;
        w->sim_s = sqlite3_column_double(q, 4);
        w->real_s = sqlite3_column_double(q, 5);
        w->stopped_s = sqlite3_column_double(q, 6);
        w->taken_s = sqlite3_column_double(q, 7);
        w->taken_max_s = sqlite3_column_double(q, 8);
        w->exec_id = sqlite3_column_int64(q, 9);
        const char *why = (const char *)sqlite3_column_text(q, 10);
        snprintf(w->reason, sizeof w->reason, "%s", why ? why : "");
        if (w->point < 0 || w->point >= VALSTORE_MAX_POINTS) {
            d2_err_set("%s: validate round %lld: exec.point %ld out of range", path, (long long)w->id, w->point);
            rc = D2_EFORMAT;
            break;
        }
        if (sv) snprintf(s->spec, sizeof s->spec, "%s", sv);
        if ((size_t)w->point + 1 > s->npoints) s->npoints = (size_t)w->point + 1;
        if (!s->first_id) s->first_id = w->id;
        s->last_id = w->id;
    }
    if (rc == D2_OK && st != SQLITE_DONE) { d2_err_set("%s: %s", path, sqlite3_errmsg(h)); rc = D2_EDB; }
    sqlite3_finalize(q);
    if (rc == D2_OK && s->nrows == 0) { d2_err_set("%s: no validation rounds stored (d2moe validate writes them)", path); rc = D2_ENOTFOUND; }
    return rc;
}

static int read_point(const char *path, sqlite3 *h, const valstore_session *s, size_t p, valstore_point *pt)
{
    pt->cfg[0] = 0;
    pt->rounds_asked = 0;
    pt->load_start = pt->load_end = NAN;
    int64_t xid = 0;
    for (size_t i = 0; i < s->nrows; i++)
        if (s->rows[i].point == (long)p && s->rows[i].exec_id) xid = s->rows[i].exec_id;
    for (int pass = 0; pass < 2 && !pt->cfg[0]; pass++) {
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(h, pass ? exec_sql : point_sql, -1, &q, NULL) != SQLITE_OK)
            D2_ERROR(D2_EDB, "%s: %s", path, sqlite3_errmsg(h));
        if (pass) sqlite3_bind_int64(q, 1, xid);
        else sqlite3_bind_int64(q, 1, (sqlite3_int64)p), sqlite3_bind_int64(q, 2, s->last_id);
        if (sqlite3_step(q) == SQLITE_ROW) {
            for (int c = 0; c < 3; c++) {
                const char *v = (const char *)sqlite3_column_text(q, c);
                size_t l = strlen(pt->cfg);
                if (v) snprintf(pt->cfg + l, sizeof pt->cfg - l, "%s%s", l ? " " : "", v);
            }
            if (!pass && sqlite3_column_type(q, 3) != SQLITE_NULL) pt->rounds_asked = sqlite3_column_int(q, 3);
            if (!pass && sqlite3_column_type(q, 4) != SQLITE_NULL) pt->load_start = sqlite3_column_double(q, 4);
            if (!pass && sqlite3_column_type(q, 5) != SQLITE_NULL) pt->load_end = sqlite3_column_double(q, 5);
        }
        sqlite3_finalize(q);
    }
    return D2_OK;
}

int valstore_session_read(const char *dbpath, valstore_session *s)
{
    valstore_session_init(s);
    db *d;
    D2_TRY(db_open_readonly(dbpath, &d));
    sqlite3 *h = db_handle(d);
    int rc = read_rows(dbpath, h, s);
    if (!rc && !(s->points = calloc(s->npoints, sizeof *s->points))) {
        d2_err_set("%s: out of memory", dbpath);
        rc = D2_ENOMEM;
    }
    for (size_t p = 0; rc == D2_OK && p < s->npoints; p++) rc = read_point(dbpath, h, s, p, &s->points[p]);
    db_close(d);
    return rc;
}
