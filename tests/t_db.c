/* t_db.c - the results store: creation, migrations, one-transaction runs,
 * refusal of foreign/corrupt/newer files, and two concurrent writer
 * processes losing no rows. */
#include "core/err.h"
#include "core/hash.h"
#include "results/db.h"
#include "results/report.h"
#include "tap.h"

#include <sys/wait.h>
#include <unistd.h>

static char dir[256];

static int count(db *d, const char *sql)
{
    sqlite3_stmt *st;
    int n = -1;
    if (sqlite3_prepare_v2(db_handle(d), sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* runs_wide has a column of this name */
static int wide_has_col(db *d, const char *name)
{
    sqlite3_stmt *st;
    int n = -1;
    if (sqlite3_prepare_v2(db_handle(d), "SELECT count(*) FROM pragma_table_info('runs_wide') WHERE name = ?", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n == 1;
}

static int write_runs(const char *path, int n, int tag)
{
    db *d;
    if (db_open(path, &d) != D2_OK) { fprintf(stderr, "open: %s\n", d2_err_msg()); return 1; }
    for (int i = 0; i < n; i++) {
        db_run *r = db_run_new("test", "sim");
        char v[32];
        snprintf(v, sizeof v, "%d-%d", tag, i);
        db_run_param(r, "test.id", v);
        db_run_param(r, "test.tag", tag ? "b" : "a");
        db_run_metric(r, "x", i, "");
        db_run_metric(r, "y", 2.0 * i, "s");
        int rc = db_run_write(d, r, NULL);
        db_run_free(r);
        if (rc) { fprintf(stderr, "write: %s\n", d2_err_msg()); db_close(d); return 1; }
    }
    db_close(d);
    return 0;
}

/* report_map_variant: the variant a query's figure or table shows under
 * reproduce's sweep -> variant map; sweeps a query joins must agree (a
 * --set that changed one sweep's jobs and not another's gave an empty join
 * column before, silently) */
static void map_variant(void)
{
    char one[300], two[300], suf[300];
    snprintf(one, sizeof one, "%s/one.sql", dir);
    snprintf(two, sizeof two, "%s/two.sql", dir);
    snprintf(suf, sizeof suf, "%s/suf.sql", dir);
    FILE *f = fopen(one, "w");
    if (f) { fputs("SELECT id FROM sweep_runs WHERE sweep = 'fig10' AND variant = :variant;\n", f); fclose(f); }
    f = fopen(two, "w");
    if (f) { fputs("SELECT id FROM sweep_runs WHERE sweep IN ('systems', 'systems-belady') AND variant = :variant;\n", f); fclose(f); }
    f = fopen(suf, "w");
    if (f) { fputs("SELECT id FROM sweep_runs WHERE sweep IN (:sweep, :sweep || '-belady') AND variant = :variant;\n", f); fclose(f); }
    const char *sw[] = {"fig10", "systems", "systems-belady"}, *same[] = {"vA", "vB", "vB"}, *diff[] = {"vA", "vB", "base"};
    const char *v = NULL;
    ok(report_map_variant(one, NULL, sw, same, 0, "dflt", &v) == D2_OK && v && !strcmp(v, "dflt"), "no map: the default");
    ok(report_map_variant(one, NULL, sw, same, 3, NULL, &v) == D2_OK && v && !strcmp(v, "vA"), "one sweep: its variant");
    ok(report_map_variant(two, NULL, sw, same, 3, NULL, &v) == D2_OK && v && !strcmp(v, "vB"), "two sweeps that agree");
    ok(report_map_variant(two, NULL, sw, diff, 3, NULL, &v) == D2_EINVAL && strstr(d2_err_msg(), "sweeps systems (variant vB) and systems-belady (variant base)"),
       "two sweeps in different variants: refused, naming both: %s", d2_err_msg());
    ok(report_map_variant(suf, "systems", sw, diff, 3, NULL, &v) == D2_EINVAL && strstr(d2_err_msg(), "systems-belady (variant base)"),
       "\":sweep || '-belady'\" is read as the figure's sweep + -belady: %s", d2_err_msg());
    ok(report_map_variant(suf, "systems", sw, same, 3, NULL, &v) == D2_OK && v && !strcmp(v, "vB"), "and agrees when they do");
    const char *sw1[] = {"systems"}, *v1[] = {"vB"};
    ok(report_map_variant(two, NULL, sw1, v1, 1, NULL, &v) == D2_OK && v && !strcmp(v, "vB"), "an unmapped sweep does not disagree");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/t_db.XXXXXX");
    if (!mkdtemp(dir)) return 1;
    char path[512];
    snprintf(path, sizeof path, "%s/r.db", dir);

    db *d;
    ok(db_open(path, &d) == D2_OK, "create a new store");
    is_int(db_schema_version(d), db_schema_latest(), "new store at the latest schema version");
    is_int(count(d, "PRAGMA application_id"), DB_APPLICATION_ID, "application_id marks a d2moe store");
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db_handle(d), "PRAGMA journal_mode", -1, &st, NULL);
    sqlite3_step(st);
    is_str((const char *)sqlite3_column_text(st, 0), "wal", "WAL mode");
    sqlite3_finalize(st);
    is_int(count(d, "PRAGMA foreign_keys"), 1, "foreign keys on");
    is_int(count(d, "PRAGMA wal_autocheckpoint"), 8192, "WAL checkpoint every 8192 pages (a sweep's ~60 runs, not ~7)");

    db_run *r = db_run_new("simulate", "sim");
    char *argv[] = {"d2moe", "simulate", "--model", "mixtral 8x7b"};
    db_run_cmdline(r, 4, argv);
    db_run_seed(r, 7);
    db_run_param(r, "model.name", "mixtral-8x7b");
    db_run_param(r, "device.name", "env1");
    db_run_metric(r, "throughput_tps", 12.5, "tokens/s");
    db_run_metric(r, "throughput_tps", 13.5, "tokens/s"); /* last one wins */
    int64_t id = -1;
    ok(db_run_last_id(d, &id) == D2_OK && id == 0, "an empty store's last run id is 0");
    ok(db_run_write(d, r, &id) == D2_OK && id == 1, "a run is written (id 1)");
    id = 0;
    ok(db_run_last_id(d, &id) == D2_OK && id == 1, "then the last run id is 1");
    db_run_free(r);
    is_int(count(d, "SELECT count(*) FROM params WHERE run_id = 1"), 2, "2 params stored");
    is_int(count(d, "SELECT value = 13.5 FROM metrics WHERE run_id = 1 AND name = 'throughput_tps'"), 1, "metric value stored, last wins");
    is_int(count(d, "SELECT seed FROM runs WHERE id = 1"), 7, "seed stored");
    is_int(count(d, "SELECT cmdline = 'd2moe simulate --model ''mixtral 8x7b''' FROM runs WHERE id = 1"), 1, "command line stored, quoted");
    is_int(count(d, "SELECT length(config_hash) FROM runs WHERE id = 1"), 32, "config hash stored");
    ok(sqlite3_exec(db_handle(d), "DELETE FROM runs WHERE id = 1", NULL, NULL, NULL) == SQLITE_OK &&
       count(d, "SELECT count(*) FROM params") == 0, "foreign keys cascade from runs to params");
    db_close(d);

    /* db_stmt_cached: one prepared statement per text, handed out reset */
    {
        db *d3 = NULL;
        ok(db_open(path, &d3) == D2_OK, "open for the statement cache");
        static char sqls[DB_STMT_CACHED + 1][32];
        sqlite3_stmt *a = NULL, *b = NULL;
        int good = 1;
        for (int i = 0; i <= DB_STMT_CACHED; i++) snprintf(sqls[i], sizeof sqls[i], "SELECT %d + ?", i);
        for (int i = 0; i < DB_STMT_CACHED; i++) {
            sqlite3_stmt *cs = NULL;
            good &= db_stmt_cached(d3, sqls[i], &cs) == D2_OK && cs != NULL;
            good &= sqlite3_bind_int(cs, 1, 100) == SQLITE_OK && sqlite3_step(cs) == SQLITE_ROW && sqlite3_column_int(cs, 0) == 100 + i;
            /* left stepped: the next hand-out resets it */
        }
        ok(good, "%d statements prepared, bound and stepped", DB_STMT_CACHED);
        char again[32];
        snprintf(again, sizeof again, "%s", sqls[3]);
        ok(db_stmt_cached(d3, sqls[3], &a) == D2_OK && db_stmt_cached(d3, again, &b) == D2_OK && a == b && a != NULL,
           "the same text (another buffer) gives the same statement");
        ok(sqlite3_step(a) == SQLITE_ROW && sqlite3_column_type(a, 0) == SQLITE_NULL, "handed out reset and unbound (3 + NULL is NULL)");
        sqlite3_reset(a);
        ok(db_stmt_cached(d3, sqls[DB_STMT_CACHED], &a) == D2_EINTERNAL && a == NULL && strstr(d2_err_msg(), "cached statements"),
           "one text more than DB_STMT_CACHED is refused");
        db_close(d3);
    }

    /* runs_wide gains a column for each new key, through a handle that
     * remembers the view's columns, also when another handle changed the
     * view meanwhile (grew it, or rebuilt it without a key) */
    {
        char wpath[512];
        snprintf(wpath, sizeof wpath, "%s/w.db", dir);
        db *d1 = NULL, *d2 = NULL;
        ok(db_open(wpath, &d1) == D2_OK && db_open(wpath, &d2) == D2_OK, "two handles on one store");
#define WIDE_HAS(h, name) wide_has_col(h, name)
        db_run *w = db_run_new("test", "sim");
        db_run_param(w, "wide.a", "1");
        db_run_metric(w, "m1", 1, "");
        ok(db_run_write(d1, w, NULL) == D2_OK && WIDE_HAS(d1, "wide.a") && WIDE_HAS(d1, "m1"), "runs_wide: a run's param and metric are columns");
        db_run_free(w);
        w = db_run_new("test", "sim");
        db_run_param(w, "wide.a", "2");
        db_run_metric(w, "wide.a", 5, ""); /* a metric named like a param: metric.wide.a */
        ok(db_run_write(d1, w, NULL) == D2_OK && WIDE_HAS(d1, "metric.wide.a"), "runs_wide: a metric clashing with a param is metric.NAME");
        db_run_free(w);
        w = db_run_new("test", "sim");
        db_run_metric(w, "wide.c", 7, ""); /* a metric, then a param of the same name in another run */
        ok(db_run_write(d1, w, NULL) == D2_OK && WIDE_HAS(d1, "wide.c"), "runs_wide: metric wide.c is a column");
        db_run_free(w);
        w = db_run_new("test", "sim");
        db_run_param(w, "wide.c", "x");
        ok(db_run_write(d1, w, NULL) == D2_OK && WIDE_HAS(d1, "wide.c") && WIDE_HAS(d1, "metric.wide.c") &&
               count(d1, "SELECT count(*) FROM runs_wide WHERE \"wide.c\" = 'x' OR \"metric.wide.c\" = 7") == 2,
           "runs_wide: a param named like another run's metric: the metric moves to metric.wide.c, both shown");
        db_run_free(w);
        w = db_run_new("test", "sim");
        db_run_param(w, "wide.b", "1");
        ok(db_run_write(d2, w, NULL) == D2_OK && WIDE_HAS(d1, "wide.b"), "runs_wide: the other handle's new key is a column");
        db_run_free(w);
        w = db_run_new("test", "sim");
        db_run_param(w, "wide.a", "3"); /* d1 writes again: it now knows of wide.b */
        ok(db_run_write(d1, w, NULL) == D2_OK, "a run with known keys only");
        db_run_free(w);
        /* the other handle drops the runs with wide.b and rebuilds the view without it */
        ok(sqlite3_exec(db_handle(d2), "DELETE FROM runs WHERE id IN (SELECT run_id FROM params WHERE key = 'wide.b')", NULL, NULL, NULL) ==
                   SQLITE_OK &&
               db_wide_view_refresh(d2) == D2_OK && !WIDE_HAS(d1, "wide.b"),
           "runs_wide rebuilt by the other handle without wide.b");
        w = db_run_new("test", "sim");
        db_run_param(w, "wide.b", "2");
        ok(db_run_write(d1, w, NULL) == D2_OK && WIDE_HAS(d1, "wide.b"),
           "runs_wide: a key the view lost meanwhile is a column again (the remembered columns follow the schema)");
        db_run_free(w);
        is_int(count(d1, "SELECT count(*) FROM runs_wide WHERE \"wide.b\" = '2'"), 1, "runs_wide: the run's row has its value");
#undef WIDE_HAS
        db_close(d1);
        db_close(d2);
    }

    /* migration from an older version: build a v1 store by hand */
    char old[512];
    snprintf(old, sizeof old, "%s/old.db", dir);
    sqlite3 *h;
    sqlite3_open(old, &h);
    sqlite3_exec(h, "PRAGMA application_id = 1144147269; CREATE TABLE runs(id INTEGER PRIMARY KEY, kind TEXT NOT NULL,"
                    " mode TEXT NOT NULL DEFAULT 'sim', status TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT NOT NULL,"
                    " code_version TEXT NOT NULL, host TEXT NOT NULL, cmdline TEXT NOT NULL, seed INTEGER, rng TEXT, config_hash TEXT NOT NULL);"
                    "CREATE TABLE params(run_id INTEGER, key TEXT, value TEXT);"
                    "CREATE TABLE metrics(run_id INTEGER, name TEXT, value REAL, unit TEXT);"
                    "CREATE TABLE inputs(run_id INTEGER, role TEXT, path TEXT, xxh128 TEXT);"
                    "INSERT INTO runs VALUES(1,'x','sim','ok','a','b','v','h','c',NULL,NULL,'0');"
                    "PRAGMA user_version = 1;", NULL, NULL, NULL);
    sqlite3_close(h);
    ok(db_open(old, &d) == D2_OK, "a version-1 store opens");
    is_int(db_schema_version(d), db_schema_latest(), "and is migrated forward to the latest version");
    is_int(count(d, "SELECT count(*) FROM runs"), 1, "its rows survive the migration");
    ok(count(d, "SELECT count(*) FROM quant_errors") == 0, "the new table exists");
    db_close(d);

    /* refuse a newer schema */
    char newer[512];
    snprintf(newer, sizeof newer, "%s/newer.db", dir);
    sqlite3_open(newer, &h);
    sqlite3_exec(h, "PRAGMA application_id = 1144147269; CREATE TABLE runs(id); PRAGMA user_version = 999;", NULL, NULL, NULL);
    sqlite3_close(h);
    ok(db_open(newer, &d) == D2_EDB && strstr(d2_err_msg(), "newer"), "a newer schema is refused: %s", d2_err_msg());

    /* refuse a foreign SQLite file, and leave it unchanged */
    char foreign[512], h1[33], h2[33];
    snprintf(foreign, sizeof foreign, "%s/foreign.db", dir);
    sqlite3_open(foreign, &h);
    sqlite3_exec(h, "CREATE TABLE customers(name TEXT); INSERT INTO customers VALUES('a');", NULL, NULL, NULL);
    sqlite3_close(h);
    hash_file_hex(foreign, h1);
    ok(db_open(foreign, &d) == D2_EFORMAT && strstr(d2_err_msg(), "not a d2moe results database (an SQLite database d2moe did not create"), "a foreign database is refused: %s", d2_err_msg());
    hash_file_hex(foreign, h2);
    is_str(h2, h1, "and left byte-for-byte unchanged");

    /* refuse a corrupt file (not SQLite) */
    char junk[512];
    snprintf(junk, sizeof junk, "%s/junk.db", dir);
    FILE *f = fopen(junk, "w");
    for (int i = 0; i < 4096; i++) fputc((i * 131) & 0xff, f);
    fclose(f);
    hash_file_hex(junk, h1);
    ok(db_open(junk, &d) == D2_EFORMAT && strstr(d2_err_msg(), "not an SQLite database"), "a corrupt file is refused: %s", d2_err_msg());
    hash_file_hex(junk, h2);
    is_str(h2, h1, "and left byte-for-byte unchanged");
    ok(db_open_readonly("/nonexistent/x.db", &d) == D2_ENOTFOUND, "read-only open of a missing file: ENOTFOUND");

    /* two concurrent writer processes lose nothing */
    char conc[512];
    snprintf(conc, sizeof conc, "%s/conc.db", dir);
    enum { N = 300 };
    pid_t p[2];
    for (int k = 0; k < 2; k++) {
        p[k] = fork();
        if (p[k] == 0) _exit(write_runs(conc, N, k));
    }
    int fails = 0;
    for (int k = 0; k < 2; k++) {
        int status;
        waitpid(p[k], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fails++;
    }
    is_int(fails, 0, "both writer processes succeeded");
    ok(db_open(conc, &d) == D2_OK, "open the shared store");
    is_int(count(d, "SELECT count(*) FROM runs"), 2 * N, "all 600 runs are there");
    is_int(count(d, "SELECT count(*) FROM params"), 4 * N, "all 1200 params are there");
    is_int(count(d, "SELECT count(*) FROM metrics"), 4 * N, "all 1200 metrics are there");
    is_int(count(d, "SELECT count(DISTINCT value) FROM params WHERE key = 'test.id'"), 2 * N, "no duplicate runs");
    db_close(d);

    map_variant();

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) tap_diag("could not remove %s", dir);
    return tap_done();
}
