/* merge.c - copy runs (and their params, metrics, inputs, quant_errors,
 * sweep_jobs rows) and the sweeps' grids (sweep_grid) from one store into
 * another, by uid (see merge.h). */
#include "results/merge.h"
#include "core/err.h"
#include "results/db.h"

#include <stdio.h>
#include <string.h>

typedef struct mctx { merge_stats *st; } mctx;

static int exec(sqlite3 *h, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        d2_err_set("merge: %s", msg ? msg : sqlite3_errmsg(h));
        sqlite3_free(msg);
        return D2_EDB;
    }
    return D2_OK;
}

static int merge_fn(sqlite3 *h, void *user)
{
    mctx *c = user;
    /* runs the output lacks: new uid, and not a sweep job it already has */
    D2_TRY(exec(h,
        "DROP TABLE IF EXISTS temp.idmap;"
        "CREATE TEMP TABLE idmap(old_id INTEGER PRIMARY KEY, uid TEXT, new_id INTEGER);"
        "INSERT INTO temp.idmap(old_id, uid) SELECT s.id, s.uid FROM src.runs s"
        "  WHERE NOT EXISTS (SELECT 1 FROM main.runs m WHERE m.uid = s.uid)"
        "    AND NOT EXISTS (SELECT 1 FROM src.sweep_jobs j JOIN main.sweep_jobs k"
        "                    ON k.job_hash = j.job_hash AND k.code_version = j.code_version"
        "                    WHERE j.run_id = s.id);"));
    sqlite3_stmt *st;
    int64_t total = 0, add = 0;
    if (sqlite3_prepare_v2(h, "SELECT (SELECT count(*) FROM src.runs), (SELECT count(*) FROM temp.idmap)", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        total = sqlite3_column_int64(st, 0);
        add = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    D2_TRY(exec(h,
        "INSERT OR IGNORE INTO main.variants SELECT * FROM src.variants;"
        "INSERT INTO main.runs(kind, mode, status, started_at, ended_at, code_version, host, cmdline, seed, rng, config_hash, uid, variant)"
        "  SELECT kind, mode, status, started_at, ended_at, code_version, host, cmdline, seed, rng, config_hash, uid, variant"
        "  FROM src.runs WHERE id IN (SELECT old_id FROM temp.idmap) ORDER BY id;"
        "UPDATE temp.idmap SET new_id = (SELECT id FROM main.runs m WHERE m.uid = temp.idmap.uid);"
        "INSERT INTO main.params(run_id, key, value) SELECT i.new_id, p.key, p.value"
        "  FROM src.params p JOIN temp.idmap i ON p.run_id = i.old_id;"
        "INSERT INTO main.metrics(run_id, name, value, unit) SELECT i.new_id, p.name, p.value, p.unit"
        "  FROM src.metrics p JOIN temp.idmap i ON p.run_id = i.old_id;"
        "INSERT INTO main.inputs(run_id, role, path, xxh128) SELECT i.new_id, p.role, p.path, p.xxh128"
        "  FROM src.inputs p JOIN temp.idmap i ON p.run_id = i.old_id;"
        "INSERT INTO main.quant_errors(run_id, tensor, method, level, bits, rows, cols, group_size, mse, snr_db, rel_err, out_rel_err, bpw)"
        "  SELECT i.new_id, tensor, method, level, bits, rows, cols, group_size, mse, snr_db, rel_err, out_rel_err, bpw"
        "  FROM src.quant_errors p JOIN temp.idmap i ON p.run_id = i.old_id;"
        "INSERT INTO main.sweep_jobs(job_hash, code_version, sweep, job, run_id) SELECT p.job_hash, p.code_version, p.sweep, p.job, i.new_id"
        "  FROM src.sweep_jobs p JOIN temp.idmap i ON p.run_id = i.old_id;"
        "DROP TABLE temp.idmap;"
        /* the grids of the input's sweeps (every shard of one sweep has the
         * same rows); a grid both have keeps its later start */
        "INSERT INTO main.sweep_grid(sweep, variant, grid, job_hash, at) SELECT sweep, variant, grid, job_hash, at"
        "  FROM src.sweep_grid WHERE 1 ON CONFLICT(grid, job_hash) DO UPDATE SET at = max(at, excluded.at);"));
    /* a variant name must mean the same overrides in both stores */
    if (sqlite3_prepare_v2(h, "SELECT s.name FROM src.variants s JOIN main.variants m ON m.name = s.name"
                              " WHERE m.overrides != s.overrides OR m.reading != s.reading", -1, &st, NULL) == SQLITE_OK) {
        int clash = sqlite3_step(st) == SQLITE_ROW;
        char name[128] = "";
        if (clash) snprintf(name, sizeof name, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        if (clash) D2_ERROR(D2_EINVAL, "merge: variant \"%s\" stands for different overrides in the two stores; rename one (sweep --as)", name);
    }
    c->st->runs_added += add;
    c->st->runs_present += total - add;
    return D2_OK;
}

/* the input is a d2moe store of this schema (read-only); full: and every
 * page of it reads (PRAGMA quick_check), as a truncated copy does not */
static int check_input(const char *in_path, int full)
{
    db *in;
    D2_TRY(db_open_readonly(in_path, &in));
    int ver = db_schema_version(in);
    int rc = D2_OK;
    if (full && ver == db_schema_latest()) {
        sqlite3_stmt *q;
        int src = sqlite3_prepare_v2(db_handle(in), "PRAGMA quick_check(1)", -1, &q, NULL);
        if (src == SQLITE_OK) src = sqlite3_step(q);
        if (src == SQLITE_ROW) {
            const char *res = (const char *)sqlite3_column_text(q, 0);
            if (!res || strcmp(res, "ok"))
                rc = (d2_err_set("%s: damaged store (quick_check: %.200s); refusing to merge it", in_path, res ? res : "?"), D2_EFORMAT);
        } else if ((src & 0xff) == SQLITE_CORRUPT || (src & 0xff) == SQLITE_NOTADB) {
            rc = (d2_err_set("%s: damaged store (%s); refusing to merge it", in_path, sqlite3_errstr(src)), D2_EFORMAT);
        } else {
            rc = (d2_err_set("%s: cannot read: %s", in_path, sqlite3_errmsg(db_handle(in))), D2_EDB);
        }
        sqlite3_finalize(q);
    }
    db_close(in);
    if (rc) return rc;
    if (ver != db_schema_latest())
        D2_ERROR(D2_EDB, "%s: schema version %d, this build writes %d; open it once with this build (d2moe db info does not migrate) or use a matching d2moe",
                 in_path, ver, db_schema_latest());
    return D2_OK;
}

int merge_check(const char *in_path) { return check_input(in_path, 1); }

int merge_into(const char *out_path, const char *in_path, merge_stats *st)
{
    D2_TRY(check_input(in_path, 0));
    db *out;
    D2_TRY(db_open(out_path, &out));
    sqlite3 *h = db_handle(out);
    sqlite3_stmt *a;
    int rc = sqlite3_prepare_v2(h, "ATTACH DATABASE ? AS src", -1, &a, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(a, 1, in_path, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(a);
        sqlite3_finalize(a);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_OK) {
        d2_err_set("%s: cannot attach: %s", in_path, sqlite3_errmsg(h));
        db_close(out);
        return D2_EDB;
    }
    mctx c = {st};
    rc = db_transaction(out, merge_fn, &c);
    if (rc == D2_OK) rc = db_wide_view_refresh(out);
    sqlite3_exec(h, "DETACH DATABASE src", NULL, NULL, NULL);
    db_close(out);
    return rc;
}
