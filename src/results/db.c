/* db.c - SQLite results store: open/verify/migrate, transactions with retry,
 * and one-transaction run records (see db.h). */
#include "results/db.h"
#include "core/err.h"
#include "core/vec.h"
#include "core/fileio.h"
#include "core/hash.h"
#include "core/rng.h"
#include "core/suggest.h"
#include "core/units.h"
#include "core/version.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* WAL pages between automatic checkpoints (32 MiB at SQLite's 4 KiB pages) */
#define DB_WAL_PAGES 8192
#define D2_STR_(x) #x
#define D2_STR(x) D2_STR_(x)

struct db {
    sqlite3 *h;
    char *path;
    int version;
    int ntables;             /* tables in sqlite_master when opened (verify_owner) */
    struct {
        char *sql;           /* a copy of its text */
        sqlite3_stmt *st;
    } stc[DB_STMT_CACHED];   /* db_stmt_cached (a run's write, a sweep's per-job statements),
                                in order of first use */
    int nstc;
    char **wcols;            /* runs_wide's column names, sorted (strcmp) */
    size_t nwcols;
    char **wkeys;            /* the param keys in the store, sorted, read with wcols */
    size_t nwkeys;
    int wcols_schema;        /* the schema_version both were read at; -1: not read */
    int sweep_runs_ready;    /* temp.sweep_runs filled (db_sweep_runs) */
};

int db_stmt_cached(db *d, const char *sql, sqlite3_stmt **out)
{
    *out = NULL;
    for (int i = 0; i < d->nstc; i++)
        if (!strcmp(d->stc[i].sql, sql)) {
            sqlite3_reset(d->stc[i].st);
            sqlite3_clear_bindings(d->stc[i].st);
            *out = d->stc[i].st;
            return D2_OK;
        }
    if (d->nstc == DB_STMT_CACHED) D2_ERROR(D2_EINTERNAL, "%s: more than %d cached statements", d->path, DB_STMT_CACHED);
    char *text = strdup(sql);
    if (!text) D2_ERROR(D2_ENOMEM, "out of memory");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(d->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        free(text);
        D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errmsg(d->h));
    }
    d->stc[d->nstc].sql = text;
    d->stc[d->nstc++].st = st;
    *out = st;
    return D2_OK;
}

static void wcols_free(db *d)
{
    for (size_t i = 0; i < d->nwcols; i++) free(d->wcols[i]);
    for (size_t i = 0; i < d->nwkeys; i++) free(d->wkeys[i]);
    free(d->wcols);
    free(d->wkeys);
    d->wcols = d->wkeys = NULL;
    d->nwcols = d->nwkeys = 0;
    d->wcols_schema = -1;
}

/* The rule, as one view (also created in the store by migration 6, for
 * sqlite3 and pandas users; d2moe always reads this build's definition as
 * a TEMP view, which shadows the store's).  latest: the grid of each
 * (sweep, variant) whose last sweep started last (sweep_grid.at), ties by
 * grid id.  Per (sweep, variant): the jobs of that grid (every job when it
 * has none), and per job its latest stored run (ok or oom) by end time,
 * then id; a job with no such run shows its failed run, if any. */
#define SWEEP_RUNS_SELECT                                                                                         \
    " WITH latest AS (SELECT sweep, variant, grid FROM (SELECT sweep, variant, grid,"                             \
    "   row_number() OVER (PARTITION BY sweep, variant ORDER BY max(at) DESC, grid DESC) AS k"                      \
    "   FROM sweep_grid GROUP BY sweep, variant, grid) WHERE k = 1)"                                                \
    " SELECT id, sweep, variant FROM (SELECT j.run_id AS id, j.sweep AS sweep, rv.variant AS variant,"           \
    "   row_number() OVER (PARTITION BY j.sweep, rv.variant, j.job_hash ORDER BY rv.ended_at DESC, rv.id DESC) AS k" \
    "   FROM sweep_jobs j JOIN runs rv ON rv.id = j.run_id"                                                         \
    "   LEFT JOIN latest l ON l.sweep = j.sweep AND l.variant = rv.variant"                                         \
    "   WHERE l.grid IS NULL OR EXISTS (SELECT 1 FROM sweep_grid g WHERE g.grid = l.grid AND g.job_hash = j.job_hash))" \
    " WHERE k = 1"                                                                                                  \
    " UNION ALL"                                                                                                    \
    " SELECT r.id, sn.value, r.variant FROM runs r"                                                                 \
    "   JOIN params sn ON sn.run_id = r.id AND sn.key = 'sweep.name'"                                               \
    "   JOIN params sj ON sj.run_id = r.id AND sj.key = 'sweep.job'"                                                \
    "   LEFT JOIN latest l ON l.sweep = sn.value AND l.variant = r.variant"                                         \
    "   WHERE r.status = 'failed' AND NOT EXISTS (SELECT 1 FROM sweep_jobs j WHERE j.job_hash = sj.value)"          \
    "     AND (l.grid IS NULL OR EXISTS (SELECT 1 FROM sweep_grid g WHERE g.grid = l.grid AND g.job_hash = sj.value))"

/* Forward migrations: entry i moves user_version i -> i+1.  Append only;
 * never edit a released entry. */
static const char *const migrations[] = {
    /* 0 -> 1: runs, params, metrics, inputs */
    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY,"
    "  kind TEXT NOT NULL,"             /* simulate, quantize, execute, ... */
    "  mode TEXT NOT NULL DEFAULT 'sim'," /* sim (model) or real (measured) */
    "  status TEXT NOT NULL CHECK (status IN ('ok','oom','failed')),"
    "  started_at TEXT NOT NULL,"       /* ISO 8601 UTC */
    "  ended_at TEXT NOT NULL,"
    "  code_version TEXT NOT NULL,"     /* d2_version(): describe, plus -dirty.<source hash> */
    "  host TEXT NOT NULL,"
    "  cmdline TEXT NOT NULL,"
    "  seed INTEGER,"
    "  rng TEXT,"
    "  config_hash TEXT NOT NULL"       /* XXH3-128 of the sorted params */
    ");"
    "CREATE INDEX runs_config ON runs(config_hash, code_version);"
    "CREATE TABLE params ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  key TEXT NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, key)) WITHOUT ROWID;"
    "CREATE TABLE metrics ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL, value REAL, unit TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY (run_id, name)) WITHOUT ROWID;"
    "CREATE TABLE inputs ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  role TEXT NOT NULL, path TEXT NOT NULL, xxh128 TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, role)) WITHOUT ROWID;",
    /* 1 -> 2: the quantizer's per-level error table (quant issue) */
    "CREATE TABLE quant_errors ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  tensor TEXT NOT NULL,"
    "  method TEXT NOT NULL,"   /* mwq-rtn, mwq-gptq, rtn-int, msb-slice */
    "  level INTEGER NOT NULL," /* 1-based */
    "  bits INTEGER NOT NULL,"  /* nominal bit-width of this level */
    "  rows INTEGER NOT NULL, cols INTEGER NOT NULL, group_size INTEGER NOT NULL,"
    "  mse REAL, snr_db REAL, rel_err REAL, out_rel_err REAL, bpw REAL,"
    "  PRIMARY KEY (run_id, tensor, method, level)) WITHOUT ROWID;",
    /* 2 -> 3: run identity across files (merge) and sweep bookkeeping */
    "ALTER TABLE runs ADD COLUMN uid TEXT;"      /* XXH3-128 of host, pid, time, counter */
    "UPDATE runs SET uid = lower(hex(randomblob(16))) WHERE uid IS NULL;"
    "CREATE UNIQUE INDEX runs_uid ON runs(uid);"
    "CREATE INDEX params_key_value ON params(key, value);"
    "CREATE TABLE sweep_jobs ("
    "  job_hash TEXT NOT NULL,"     /* XXH3-128 of the job's canonical text */
    "  code_version TEXT NOT NULL,"
    "  sweep TEXT NOT NULL,"        /* spec name */
    "  job TEXT NOT NULL,"          /* canonical text: key=value lines */
    "  run_id INTEGER NOT NULL UNIQUE REFERENCES runs(id) ON DELETE CASCADE,"
    "  PRIMARY KEY (job_hash, code_version)) WITHOUT ROWID;",
    /* 3 -> 4: claims audits (results/audit.c): one row per audit, its
     * claims with their verdicts, and every case with the runs behind it */
    "CREATE TABLE audits ("
    "  id INTEGER PRIMARY KEY,"
    "  uid TEXT UNIQUE,"            /* XXH3-128 of time, pid and the claims hash */
    "  created TEXT,"               /* ISO 8601 UTC */
    "  claims_file TEXT,"
    "  claims_hash TEXT,"           /* XXH3-128 of the claims file */
    "  readings TEXT,"              /* reading-set name, '' = none */
    "  code_version TEXT);"
    "CREATE TABLE audit_claims ("
    "  audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL, source TEXT, relation TEXT, metric TEXT,"
    "  min REAL, max REAL,"         /* claimed range; NULL for status claims */
    "  verdict TEXT,"               /* reproduced, exceeds-bound, not-reproduced, error */
    "  PRIMARY KEY (audit_id, name));"
    "CREATE TABLE audit_cases ("
    "  audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,"
    "  claim TEXT NOT NULL, model TEXT, device TEXT,"
    "  budget INTEGER,"             /* bytes */
    "  value REAL, bound REAL,"     /* NULL = none */
    "  low REAL, high REAL,"        /* the claim's range */
    "  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,"     /* the policy run (gain: at budget) */
    "  ref_run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL);" /* baseline run, or gain's budget_hi run */
    "CREATE INDEX audit_cases_audit ON audit_cases(audit_id, claim);",
    /* 4 -> 5: variants (issue 14): every run names the assumptions it ran
     * with beyond its sweep's axes, so reruns with one changed --set never
     * mix silently into a figure.  Runs stored before are 'legacy'. */
    "ALTER TABLE runs ADD COLUMN variant TEXT;"
    "UPDATE runs SET variant = 'legacy';"
    "CREATE INDEX runs_variant ON runs(variant);"
    "CREATE TABLE variants ("
    "  name TEXT PRIMARY KEY,"          /* 'base', 'v' + 8 hex digits, or a sweep --as name */
    "  overrides TEXT NOT NULL,"        /* canonical sorted key=value lines; '' = none */
    "  reading TEXT NOT NULL DEFAULT '',"/* reading set name ('' = none) */
    "  named INTEGER NOT NULL DEFAULT 0,"/* 1: named by the user (sweep --as) */
    "  created_at TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "INSERT INTO variants(name, overrides, reading, named, created_at)"
    "  SELECT 'legacy', '(unknown: stored before variants existed)', '', 0,"
    "         strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE EXISTS (SELECT 1 FROM runs);",
    /* 5 -> 6: the grid of each sweep invocation (every job hash of its full
     * grid, before sharding), so a figure shows the latest grid of a sweep
     * and not every job ever stored under its name (db_sweep_runs) */
    "CREATE TABLE sweep_grid ("
    "  sweep TEXT NOT NULL,"            /* spec name */
    "  variant TEXT NOT NULL,"          /* the variant its runs get */
    "  grid TEXT NOT NULL,"             /* XXH3-128 of the sorted job hashes */
    "  job_hash TEXT NOT NULL,"         /* sweep_jobs.job_hash */
    "  at TEXT NOT NULL,"               /* ISO 8601 UTC: latest start of a sweep of this grid */
    "  PRIMARY KEY (grid, job_hash)) WITHOUT ROWID;"
    "CREATE INDEX sweep_grid_sweep ON sweep_grid(sweep, variant, at);"
    /* the runs a figure of (sweep, variant) shows (db_sweep_runs), so that
     * the figure queries (plots/) run from sqlite3 and pandas as in d2moe */
    "CREATE VIEW sweep_runs(id, sweep, variant) AS" SWEEP_RUNS_SELECT ";",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int db_schema_latest(void) { return N_MIGRATIONS; }
sqlite3 *db_handle(db *d) { return d->h; }
const char *db_path(const db *d) { return d->path; }
int db_schema_version(const db *d) { return d->version; }

static int is_busy(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

static void backoff(int attempt)
{
    struct timespec ts = {0, (long)(1000000L * (1 + attempt % 50))}; /* 1..50 ms */
    nanosleep(&ts, NULL);
}

static int exec_simple(db *d, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(d->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        d2_err_set("%s: %s", d->path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return rc;
    }
    return SQLITE_OK;
}

static int query_int(db *d, const char *sql, int *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(d->h, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

int db_transaction(db *d, int (*fn)(sqlite3 *h, void *user), void *user)
{
    for (int attempt = 0; attempt < 2000; attempt++) {
        int rc = sqlite3_exec(d->h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (is_busy(rc)) { backoff(attempt); continue; }
        if (rc != SQLITE_OK)
            D2_ERROR(D2_EDB, "%s: cannot begin a transaction: %s", d->path, sqlite3_errmsg(d->h));
        int frc = fn(d->h, user);
        if (frc != D2_OK) {
            sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL);
            return frc;
        }
        rc = sqlite3_exec(d->h, "COMMIT", NULL, NULL, NULL);
        if (rc == SQLITE_OK) return D2_OK;
        sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL);
        if (is_busy(rc)) { backoff(attempt); continue; }
        D2_ERROR(D2_EDB, "%s: commit failed: %s", d->path, sqlite3_errstr(rc));
    }
    D2_ERROR(D2_EDB, "%s: database stayed locked by another writer; gave up after 2000 tries", d->path);
}

static int wide_view_refresh(sqlite3 *h, const char *path);
static int refuse_not_store(const char *path, int app, int ntab, int ver);
static void overrides_line(const char *ovr, const char *reading, char *buf, size_t n);

static int migrate_fn(sqlite3 *h, void *user)
{
    db *d = user;
    int v = 0;
    if (query_int(d, "PRAGMA user_version", &v) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: cannot read the schema version: %s", d->path, sqlite3_errmsg(h));
    if (v == 0) {
        int ntab = 0;
        query_int(d, "SELECT count(*) FROM sqlite_master", &ntab);
        if (ntab != 0) return refuse_not_store(d->path, DB_APPLICATION_ID, ntab, 0);
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d", DB_APPLICATION_ID);
        if (exec_simple(d, sql) != SQLITE_OK) return D2_EDB;
    }
    if (v < 0) D2_ERROR(D2_EFORMAT, "%s: schema version (user_version) %d is not one d2moe writes (0..%d); refusing to touch it", d->path, v, N_MIGRATIONS);
    if (v > N_MIGRATIONS)
        D2_ERROR(D2_EDB, "%s: schema version %d is newer than this d2moe knows (%d); use a newer build", d->path, v, N_MIGRATIONS);
    for (; v < N_MIGRATIONS; v++) {
        if (exec_simple(d, migrations[v]) != SQLITE_OK) {
            d2_err_prefix("migration %d -> %d: ", v, v + 1);
            return D2_EDB;
        }
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
        if (exec_simple(d, sql) != SQLITE_OK) return D2_EDB;
    }
    d->version = v;
    return wide_view_refresh(h, d->path);
}

/* Reads the header fields in one read transaction: a snapshot, so a second
 * process creating the store at the same moment is seen whole or not at all. */
static int verify_owner(db *d)
{
    int app = 0, ver = 0, ntab = 0;
    sqlite3_exec(d->h, "BEGIN", NULL, NULL, NULL);
    int rc = query_int(d, "SELECT count(*) FROM sqlite_master", &ntab);
    if (rc == SQLITE_OK) rc = query_int(d, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK) rc = query_int(d, "PRAGMA user_version", &ver);
    sqlite3_exec(d->h, "COMMIT", NULL, NULL, NULL);
    /* not a store is bad input (exit 2); a locked or unreadable one is not */
    if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
        D2_ERROR(D2_EFORMAT, "%s: not an SQLite database (corrupt or another kind of file); refusing to touch it", d->path);
    if (rc != SQLITE_OK) D2_ERROR(D2_EDB, "%s: cannot read: %s", d->path, sqlite3_errstr(rc));
    if (app != DB_APPLICATION_ID && (app != 0 || ntab != 0 || ver != 0)) return refuse_not_store(d->path, app, ntab, ver);
    /* no d2moe writes a negative version: migrating from it ran migration
     * 0 -> 1 over the existing tables (and indexed migrations[] below 0) */
    if (ver < 0)
        D2_ERROR(D2_EFORMAT, "%s: schema version (user_version) %d is not one d2moe writes (0..%d); refusing to touch it", d->path,
                 ver, N_MIGRATIONS);
    d->version = ver;
    d->ntables = ntab;
    return D2_OK;
}

/* One wording for every SQLite file that is not a d2moe store, whoever
 * meets it (a reader, a writer, db info): D2_EFORMAT (exit 2), naming the
 * file and why.  app, ntab, ver: its application_id, sqlite_master rows
 * and user_version.  A store is d2moe's application id with a schema
 * version 1..N_MIGRATIONS; an empty file (or SQLite file without tables)
 * is not one yet, and a writer (db_open) initialises it instead. */
static int refuse_not_store(const char *path, int app, int ntab, int ver)
{
    if (app != DB_APPLICATION_ID && app != 0)
        D2_ERROR(D2_EFORMAT, "%s: not a d2moe results database (an SQLite database of another application, application_id %d); "
                 "refusing to touch it", path, app);
    if (ntab == 0 && ver == 0)
        D2_ERROR(D2_EFORMAT, "%s: not a d2moe results database (an empty file or SQLite database: not initialised; a command "
                 "that stores runs into it, e.g. simulate --db, initialises it)", path);
    if (app == 0) /* a plain SQLite file: sqlite3 x.db 'create table t(a)' */
        D2_ERROR(D2_EFORMAT, "%s: not a d2moe results database (an SQLite database d2moe did not create: %d table%s, schema "
                 "version %d, no d2moe application id); refusing to touch it", path, ntab, ntab == 1 ? "" : "s", ver);
    D2_ERROR(D2_EFORMAT, "%s: not a d2moe results database (d2moe's application id but schema version %d, never initialised, "
             "with %d table%s of its own); refusing to touch it", path, ver, ntab, ntab == 1 ? "" : "s");
}

/* A "file:" URI of path with the query q, every byte but [A-Za-z0-9/._~-]
 * percent-encoded (sqlite3_free it); NULL when out of memory. */
static char *file_uri(const char *path, const char *q)
{
    size_t n = strlen(path);
    char *enc = malloc(3 * n + 1), *e = enc;
    if (!enc) return NULL;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("/._~-", *p)) *e++ = (char)*p;
        else e += sprintf(e, "%%%02X", *p);
    }
    *e = '\0';
    /* an absolute path after an empty authority ("file:///tmp/x"): a path of "//host" stays a path */
    char *uri = sqlite3_mprintf("file:%s%s?%s", path[0] == '/' ? "//" : "", enc, q);
    free(enc);
    return uri;
}

/* SQLite creates a WAL store's -wal and -shm files to read it, also on a
 * read-only connection, and a connection that only reads leaves them
 * behind.  When neither is beside an existing, non-empty file, no
 * connection has the store open (a WAL connection keeps its -shm), so the
 * file alone is the whole store: it is checked first through an immutable
 * connection (no locks, no side files), and a file refused as corrupt,
 * another application's, or (empty_too) empty is left exactly as it was.
 * With side files present a writer may be live, and the check is left to
 * the locked connection.  Other failures here are left to it too. */
static int verify_untouched(const char *file, const char *path, int empty_too)
{
    struct stat sb;
    char side[FILEIO_PATH_MAX + 8]; /* the path and "-wal" / "-shm" */
    /* lstat: SQLite keeps the side files beside a symlink's target, not the
     * link, so a link is left to the locked connection (a store open by a
     * writer through a link was read alone, without its WAL, and refused) */
    if (lstat(file, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0) return D2_OK;
    static const char *const ext[] = {"-wal", "-shm"};
    for (int i = 0; i < 2; i++) {
        if ((size_t)snprintf(side, sizeof side, "%s%s", file, ext[i]) >= sizeof side) return D2_OK;
        if (lstat(side, &sb) == 0) return D2_OK;
    }
    char *uri = file_uri(file, "immutable=1");
    db *t = calloc(1, sizeof *t);
    if (!uri || !t) { sqlite3_free(uri); free(t); D2_ERROR(D2_ENOMEM, "out of memory"); }
    t->path = (char *)path; /* not freed: t is not closed with db_close */
    int rc = sqlite3_open_v2(uri, &t->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) == SQLITE_OK ? verify_owner(t) : D2_EDB;
    if (rc == D2_OK && empty_too && t->version == 0 && N_MIGRATIONS > 0) rc = refuse_not_store(path, DB_APPLICATION_ID, t->ntables, 0);
    sqlite3_close_v2(t->h);
    sqlite3_free(uri);
    free(t);
    return rc == D2_EFORMAT ? rc : D2_OK;
}

static int open_common(const char *path, int flags, db **out)
{
    *out = NULL;
    /* the file of that name is meant, whatever SQLite would make of it:
     * ":memory:" is its in-memory store and, with the URI names this SQLite
     * reads, "file:..." a URI ("file::memory:" in memory again, "file:q.db"
     * the file q.db), so a run's results were lost at close with exit 0 or
     * went to another file than the one checked; "./" + a relative path is
     * SQLite's documented way to a plain file name */
    char *name = NULL;
    if (path[0] != '/') {
        size_t n = strlen(path) + 3;
        if (!(name = malloc(n))) D2_ERROR(D2_ENOMEM, "out of memory");
        snprintf(name, n, "./%s", path);
    }
    const char *file = name ? name : path;
    int rc = verify_untouched(file, path, !(flags & SQLITE_OPEN_READWRITE));
    if (rc) { free(name); return rc; }
    db *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) { free(d); free(name); D2_ERROR(D2_ENOMEM, "out of memory"); }
    d->wcols_schema = -1;
    rc = sqlite3_open_v2(file, &d->h, flags, NULL);
    free(name);
    if (rc != SQLITE_OK) {
        d2_err_set("%s: cannot open: %s", path, d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(rc));
        db_close(d);
        return (flags & SQLITE_OPEN_CREATE) ? D2_EDB : D2_ENOTFOUND;
    }
    sqlite3_extended_result_codes(d->h, 1);
    sqlite3_busy_timeout(d->h, 10000);
    rc = verify_owner(d);
    if (rc != D2_OK) { db_close(d); return rc; }
    *out = d;
    return D2_OK;
}

int db_path_check(const char *path)
{
    /* a store to create in a missing folder (or under a regular file) is
     * the argument's fault, as an output in a missing folder is
     * (core/fileio.c); SQLite said "unable to open database file" (exit 1) */
    struct stat st;
    if (path[0] && lstat(path, &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
        int e = errno;
        char dir[FILEIO_PATH_MAX];
        D2_TRY(fileio_dir_of(path, dir, sizeof dir, NULL));
        if (e == ENOENT && stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) e = ENOTDIR;
        else if (e == ENOENT && stat(dir, &st) != 0) e = errno;
        else if (e == ENOENT) e = 0; /* the folder is there: the store is created in it */
        if (e == ENOENT || e == ENOTDIR)
            D2_ERROR(D2_EINVAL, "%s: cannot create the store: %s (its folder is missing or not a directory)", path, strerror(e));
    }
    /* a store is written like every output (core/fileio.h): an existing
     * FIFO, device or symlink at the path is refused, never opened (SQLite
     * would follow the link or block on the FIFO) */
    return fileio_store_check(path); /* and not a file this command reads (a trace, a profile) */
}

int db_open(const char *path, db **out)
{
    *out = NULL;
    D2_TRY(db_path_check(path));
    db *d;
    D2_TRY(open_common(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW, &d));
    fileio_note_store(path); /* no file output of this command may be written over it */
    int rc = D2_OK;
    /* WAL can be refused briefly while another process holds a lock */
    for (int attempt = 0; attempt < 500; attempt++) {
        int src = sqlite3_exec(d->h, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if (src == SQLITE_OK) break;
        if (!is_busy(src)) { d2_err_set("%s: cannot enable WAL: %s", path, sqlite3_errmsg(d->h)); rc = D2_EDB; break; }
        backoff(attempt);
    }
    /* a run's write touches ~140 pages (one leaf of params(key, value) per
     * parameter), so SQLite's default checkpoint every 1000 WAL pages came
     * every ~7 runs of a sweep, each with an fdatasync; every DB_WAL_PAGES
     * pages instead (results/README.md: what it trades) */
    if (rc == D2_OK &&
        exec_simple(d, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=" D2_STR(DB_WAL_PAGES)) != SQLITE_OK)
        rc = D2_EDB;
    if (rc == D2_OK && d->version != N_MIGRATIONS) rc = db_transaction(d, migrate_fn, d);
    if (rc != D2_OK) { db_close(d); return rc; }
    *out = d;
    return D2_OK;
}

int db_open_readonly(const char *path, db **out)
{
    if (!path[0]) D2_ERROR(D2_EINVAL, "the store path is empty: give the file name of a results store");
    if (access(path, R_OK) != 0) D2_ERROR(D2_ENOTFOUND, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb; /* a FIFO or device would block or never end */
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) D2_ERROR(D2_EINVAL, "%s: not a regular file (not a results database)", path);
    db *d;
    D2_TRY(open_common(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, &d));
    fileio_note_store(path); /* no file output of this command may be written over it */
    if (d->version == 0 && N_MIGRATIONS > 0) {
        int ntab = d->ntables;
        db_close(d);
        return refuse_not_store(path, DB_APPLICATION_ID, ntab, 0);
    }
    *out = d;
    return D2_OK;
}

void db_close(db *d)
{
    if (!d) return;
    for (int i = 0; i < d->nstc; i++) {
        sqlite3_finalize(d->stc[i].st);
        free(d->stc[i].sql);
    }
    wcols_free(d);
    if (d->h) sqlite3_close_v2(d->h);
    free(d->path);
    free(d);
}

int db_info_print(db *d, FILE *out)
{
    fprintf(out, "file:           %s\n", d->path);
    fprintf(out, "schema version: %d (this build knows %d)\n", d->version, N_MIGRATIONS);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->h, "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name", -1, &st, NULL) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errmsg(d->h));
    fprintf(out, "%-20s %12s\n", "table", "rows");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        char *sql = sqlite3_mprintf("SELECT count(*) FROM \"%w\"", name);
        int n = -1;
        query_int(d, sql, &n);
        sqlite3_free(sql);
        fprintf(out, "%-20s %12d\n", name, n);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errmsg(d->h));
    if (d->version < 5) return D2_OK;
    /* variants: which assumptions the runs were made with */
    if (sqlite3_prepare_v2(d->h,
            "SELECT v.name, v.overrides, v.reading, v.named, count(r.id),"
            " (SELECT group_concat(s, ' ') FROM (SELECT DISTINCT p.value AS s FROM runs q JOIN params p ON p.run_id = q.id"
            "   AND p.key = 'sweep.name' WHERE q.variant = v.name ORDER BY 1))"
            " FROM variants v LEFT JOIN runs r ON r.variant = v.name GROUP BY v.name ORDER BY min(r.id)", -1, &st, NULL) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errmsg(d->h));
    fprintf(out, "\n%-12s %6s  %-24s %s\n", "variant", "runs", "sweeps", "overrides");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char o[1024];
        overrides_line((const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2), o, sizeof o);
        const char *sw = (const char *)sqlite3_column_text(st, 5);
        fprintf(out, "%-12s %6d  %-24s %s%s\n", (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 4),
                sw ? sw : "-", o, sqlite3_column_int(st, 3) ? " (named with --as)" : "");
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errmsg(d->h));
    return D2_OK;
}

/* ---- run records ------------------------------------------------------ */

typedef struct kv { char *k, *v, *unit; double x; } kv;
typedef struct kvlist {
    kv *a;
    size_t n, cap;
    uint32_t *hx;  /* open-addressing index of a by key: entry index + 1, 0 = free; NULL = to build */
    size_t hcap;   /* slots, a power of two >= 2 cap */
} kvlist;

struct db_run {
    char kind[32], mode[16], status[16];
    char uid[33];
    char started[32];
    char ended[32];               /* "" = taken at the write (db_run_end) */
    char *cmdline;
    int has_seed;
    uint64_t seed;
    kvlist params, metrics, inputs;
    char variant[DB_VARIANT_MAX]; /* "" = computed at write from overrides + reading */
    char *overrides;              /* canonical override lines ("" = none) */
    int lost;                     /* 1: an allocation failed while it was built (a field is missing):
                                     write_fn refuses it rather than store it incomplete */
};

static size_t kv_hash(const char *k)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *k; k++) h = (h ^ (unsigned char)*k) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

/* the slot of key k in l's index: the entry's, or the free one it would take */
static uint32_t *kv_slot(const kvlist *l, const char *k)
{
    size_t m = l->hcap - 1, i = kv_hash(k) & m;
    while (l->hx[i] && strcmp(l->a[l->hx[i] - 1].k, k)) i = (i + 1) & m;
    return &l->hx[i];
}

/* (re)build l's index for its capacity; D2_ENOMEM leaves none */
static int kv_index(kvlist *l)
{
    size_t hc = 16;
    while (hc < 2 * l->cap) hc *= 2;
    free(l->hx);
    l->hx = calloc(hc, sizeof *l->hx);
    if (!l->hx) { l->hcap = 0; D2_ERROR(D2_ENOMEM, "out of memory"); }
    l->hcap = hc;
    for (size_t i = 0; i < l->n; i++) *kv_slot(l, l->a[i].k) = (uint32_t)(i + 1);
    return D2_OK;
}

/* the list's order changed (sorted): its index is rebuilt when next used */
static void kv_moved(kvlist *l)
{
    free(l->hx);
    l->hx = NULL;
    l->hcap = 0;
}

static int kv_push(kvlist *l, const char *k, const char *v, const char *unit, double x)
{
    if (!l->hx) D2_TRY(kv_index(l));
    uint32_t *slot = kv_slot(l, k);
    if (*slot) { /* same key again: last one wins */
        kv *e = &l->a[*slot - 1];
        char *nv = v ? strdup(v) : NULL, *nu = unit ? strdup(unit) : NULL;
        if ((v && !nv) || (unit && !nu)) { free(nv); free(nu); D2_ERROR(D2_ENOMEM, "out of memory"); }
        free(e->v); free(e->unit);
        e->v = nv; e->unit = nu; e->x = x;
        return D2_OK;
    }
    if (l->n == l->cap) {
        if (2 * l->cap >= UINT32_MAX / 4) D2_ERROR(D2_ENOMEM, "out of memory"); /* the index holds uint32_t entries */
        D2_TRY(VEC_RESERVE(l->a, l->cap, l->n + 1));
        if (2 * l->cap > l->hcap) {
            D2_TRY(kv_index(l));
            slot = kv_slot(l, k);
        }
    }
    kv *e = &l->a[l->n];
    e->k = strdup(k);
    e->v = v ? strdup(v) : NULL;
    e->unit = unit ? strdup(unit) : NULL;
    e->x = x;
    if (!e->k || (v && !e->v) || (unit && !e->unit)) {
        free(e->k); free(e->v); free(e->unit);
        D2_ERROR(D2_ENOMEM, "out of memory");
    }
    l->n++;
    *slot = (uint32_t)l->n;
    return D2_OK;
}

static void kv_free(kvlist *l)
{
    for (size_t i = 0; i < l->n; i++) { free(l->a[i].k); free(l->a[i].v); free(l->a[i].unit); }
    free(l->a);
    free(l->hx);
}

void db_now_iso(char buf[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, 32 - n, ".%03dZ", (int)(ts.tv_nsec / 1000000L) % 1000);
}

db_run *db_run_new(const char *kind, const char *mode)
{
    db_run *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    snprintf(r->kind, sizeof r->kind, "%s", kind);
    snprintf(r->mode, sizeof r->mode, "%s", mode ? mode : "sim");
    snprintf(r->status, sizeof r->status, "ok");
    db_now_iso(r->started);
    /* a name for this run that stays the same when it is merged elsewhere */
    static _Atomic unsigned long counter;
    struct { struct timespec ts; pid_t pid; unsigned long n; char host[64]; } u;
    memset(&u, 0, sizeof u);
    clock_gettime(CLOCK_REALTIME, &u.ts);
    u.pid = getpid();
    u.n = counter++;
    gethostname(u.host, sizeof u.host - 1);
    hash_mem_hex(&u, sizeof u, r->uid);
    return r;
}

const char *db_run_uid(const db_run *r) { return r->uid; }

void db_run_free(db_run *r)
{
    if (!r) return;
    kv_free(&r->params);
    kv_free(&r->metrics);
    kv_free(&r->inputs);
    free(r->cmdline);
    free(r->overrides);
    free(r);
}

void db_run_cmdline(db_run *r, int argc, char **argv)
{
    size_t len = 1;
    for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 3;
    free(r->cmdline);
    r->cmdline = malloc(len);
    if (!r->cmdline) { r->lost = 1; return; }
    r->cmdline[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (i) strcat(r->cmdline, " ");
        int quote = strpbrk(argv[i], " \t'\"") != NULL || argv[i][0] == '\0';
        if (quote) strcat(r->cmdline, "'");
        strcat(r->cmdline, argv[i]);
        if (quote) strcat(r->cmdline, "'");
    }
}

void db_run_seed(db_run *r, uint64_t seed) { r->has_seed = 1; r->seed = seed; }
void db_run_status(db_run *r, const char *status) { snprintf(r->status, sizeof r->status, "%s", status); }
/* a setter's status, remembered when it lost a field (db_run.lost) */
static int kept(db_run *r, int rc)
{
    if (rc == D2_ENOMEM) r->lost = 1;
    return rc;
}

int db_run_param(db_run *r, const char *key, const char *value) { return kept(r, kv_push(&r->params, key, value, NULL, 0)); }
int db_run_metric(db_run *r, const char *name, double value, const char *unit)
{
    return kept(r, kv_push(&r->metrics, name, NULL, unit ? unit : "", value));
}

int db_run_param_visit(const char *key, const char *value, const char *units, void *run)
{
    (void)units;
    return db_run_param(run, key, value);
}

int db_run_input(db_run *r, const char *role, const char *path)
{
    char hex[33];
    D2_TRY(kept(r, hash_file_hex(path, hex)));
    return kept(r, kv_push(&r->inputs, role, path, hex, 0));
}

static int kv_cmp(const void *a, const void *b) { return strcmp(((const kv *)a)->k, ((const kv *)b)->k); }

void db_run_config_hash(db_run *r, char out[33])
{
    if (r->params.n > 0) {
        qsort(r->params.a, r->params.n, sizeof(kv), kv_cmp);
        kv_moved(&r->params);
    }
    /* "k=v\n" per parameter, hashed as it is fed (no buffer to allocate:
     * a failed allocation gave every such run the hash 000...0) */
    hash_acc h;
    hash_acc_reset(&h);
    for (size_t i = 0; i < r->params.n; i++) {
        hash_acc_add(&h, r->params.a[i].k, strlen(r->params.a[i].k));
        hash_acc_add(&h, "=", 1);
        hash_acc_add(&h, r->params.a[i].v, strlen(r->params.a[i].v));
        hash_acc_add(&h, "\n", 1);
    }
    hash_acc_hex(&h, out);
}

/* ---- variants ---------------------------------------------------------- */

static int cmp_strp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

int db_overrides_canon(const char *const *sets, size_t n, char **out)
{
    *out = NULL;
    char **lines = calloc(n + 1, sizeof *lines);
    size_t len = 1;
    if (!lines) D2_ERROR(D2_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(sets[i], '=');
        char num[64];
        double v;
        const char *val = eq ? eq + 1 : "";
        int klen = eq ? (int)(eq - sets[i]) : (int)strlen(sets[i]);
        /* numbers canonical, as a sweep's axes are: 7G -> 7000000000 */
        if (*val && units_parse_double(val, &v) == 0) {
            if (v == floor(v) && fabs(v) < 1e18) snprintf(num, sizeof num, "%.0f", v);
            else snprintf(num, sizeof num, "%.10g", v);
            val = num;
        }
        size_t l = (size_t)klen + strlen(val) + 2;
        lines[i] = malloc(l);
        if (!lines[i]) { for (size_t k = 0; k < i; k++) free(lines[k]); free(lines); D2_ERROR(D2_ENOMEM, "out of memory"); }
        snprintf(lines[i], l, "%.*s=%s", klen, sets[i], val);
        len += l;
    }
    qsort(lines, n, sizeof *lines, cmp_strp);
    char *o = malloc(len), *p = o;
    if (o) {
        *p = '\0';
        for (size_t i = 0; i < n; i++) p += sprintf(p, "%s\n", lines[i]);
    }
    for (size_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
    if (!o) D2_ERROR(D2_ENOMEM, "out of memory");
    *out = o;
    return D2_OK;
}

void db_variant_auto(const char *overrides, const char *reading, char out[DB_VARIANT_MAX])
{
    if ((!overrides || !*overrides) && (!reading || !*reading)) {
        snprintf(out, DB_VARIANT_MAX, "base");
        return;
    }
    /* "<overrides>reading.name=<reading>\n", hashed as it is fed (no
     * allocation: a failed one named every such variant v00000000) */
    const char *o = overrides ? overrides : "", *rd = reading ? reading : "";
    char hex[33];
    hash_acc h;
    hash_acc_reset(&h);
    hash_acc_add(&h, o, strlen(o));
    hash_acc_add(&h, "reading.name=", 13);
    hash_acc_add(&h, rd, strlen(rd));
    hash_acc_add(&h, "\n", 1);
    hash_acc_hex(&h, hex);
    snprintf(out, DB_VARIANT_MAX, "v%.8s", hex);
}

int db_variant_name_check(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= DB_VARIANT_MAX)
        D2_ERROR(D2_EINVAL, "variant name \"%s\": 1..%d characters", name, DB_VARIANT_MAX - 1);
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
            D2_ERROR(D2_EINVAL, "variant name \"%s\": letters, digits, '-', '_' and '.' only", name);
    if (!strcmp(name, "legacy")) D2_ERROR(D2_EINVAL, "variant name \"legacy\" is reserved for runs stored before variants existed");
    return D2_OK;
}

int db_run_variant(db_run *r, const char *name, const char *overrides)
{
    if (name && *name) D2_TRY(db_variant_name_check(name));
    snprintf(r->variant, sizeof r->variant, "%s", name ? name : "");
    free(r->overrides);
    r->overrides = NULL;
    if (overrides && !(r->overrides = strdup(overrides))) {
        r->lost = 1;
        D2_ERROR(D2_ENOMEM, "out of memory");
    }
    return D2_OK;
}

/* one line for messages: "a=1, b=2" (or "no overrides") */
static void overrides_line(const char *ovr, const char *reading, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (const char *p = ovr; p && *p;) {
        const char *nl = strchr(p, '\n');
        int l = nl ? (int)(nl - p) : (int)strlen(p);
        int w = snprintf(buf + off, n - off, "%s%.*s", off ? ", " : "", l, p);
        if (w < 0 || (size_t)w >= n - off) { off = n - 1; break; }
        off += (size_t)w;
        p = nl ? nl + 1 : p + l;
    }
    if (reading && *reading && off < n - 1) {
        int w = snprintf(buf + off, n - off, "%sreading %s", off ? ", " : "", reading);
        if (w > 0 && (size_t)w < n - off) off += (size_t)w;
    }
    if (off == 0) snprintf(buf, n, "no overrides");
}

int db_variant_name_check_for(const char *name, const char *overrides)
{
    D2_TRY(db_variant_name_check(name));
    if (strcmp(name, "base") || !overrides || !*overrides) return D2_OK;
    char ovr[512];
    overrides_line(overrides, NULL, ovr, sizeof ovr);
    D2_ERROR(D2_EINVAL, "--as base: \"base\" names the spec's own runs, without overrides; these runs have overrides (%s): give them another name", ovr);
}

static int variant_register(db *d, const char *name, const char *ovr, const char *reading, int named)
{
    char now[32];
    db_now_iso(now);
    sqlite3_stmt *st;
    D2_TRY(db_stmt_cached(d, "INSERT OR IGNORE INTO variants(name, overrides, reading, named, created_at) VALUES(?,?,?,?,?)", &st));
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ovr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, reading, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, named);
    sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) D2_ERROR(D2_EDB, "%s: variants: %s", d->path, sqlite3_errstr(rc));
    D2_TRY(db_stmt_cached(d, "SELECT overrides, reading FROM variants WHERE name = ?", &st));
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = D2_OK;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *o = (const char *)sqlite3_column_text(st, 0), *rd = (const char *)sqlite3_column_text(st, 1);
        if (strcmp(o ? o : "", ovr) || strcmp(rd ? rd : "", reading)) {
            char had[512], now_l[512];
            overrides_line(o, rd, had, sizeof had);
            overrides_line(ovr, reading, now_l, sizeof now_l);
            d2_err_set("%s: variant \"%s\" already stands for %s; these runs have %s (name them with another --as)",
                       d->path, name, had, now_l);
            rc = D2_EINVAL;
        }
    }
    sqlite3_reset(st);
    return rc;
}

/* ---- runs_wide: one row per run, every param and metric a column ------- */

typedef struct strlist { char **a; size_t n, cap; } strlist;

static int strlist_push(strlist *l, const char *s)
{
    D2_TRY(VEC_RESERVE(l->a, l->cap, l->n + 1));
    if (!(l->a[l->n] = strdup(s))) D2_ERROR(D2_ENOMEM, "out of memory");
    l->n++;
    return D2_OK;
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->a[i]);
    free(l->a);
}

static int strlist_has(const strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->a[i], s)) return 1;
    return 0;
}

static int collect(sqlite3 *h, const char *sql, strlist *l)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) D2_ERROR(D2_EDB, "%s", sqlite3_errmsg(h));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        if (v && strlist_push(l, v) != D2_OK) { sqlite3_finalize(st); return D2_ENOMEM; }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) D2_ERROR(D2_EDB, "%s", sqlite3_errstr(rc));
    return D2_OK;
}

static const char *const wide_fixed[] = {"run_id", "uid", "sweep", "variant", "status", "kind", "mode",
                                         "code_version", "started_at", "seed"};

/* the provenance columns of an export (db_export_select), after the fixed
 * ones: the runs row's, then inputs.ROLE (XXH3-128) and inputs.ROLE.path,
 * named after the table (no param key starts so; params hold input.trace_id) */
static const char *const wide_prov[] = {"ended_at", "host", "cmdline", "rng", "config_hash"};

static int wide_select_h(sqlite3 *h, int prov, char **out)
{
    *out = NULL;
    strlist keys = {0}, names = {0}, roles = {0};
    int rc = collect(h, "SELECT DISTINCT key FROM params ORDER BY key", &keys);
    if (rc == D2_OK) rc = collect(h, "SELECT DISTINCT name FROM metrics ORDER BY name", &names);
    if (rc == D2_OK && prov) rc = collect(h, "SELECT DISTINCT role FROM inputs ORDER BY role", &roles);
    sqlite3_str *s = sqlite3_str_new(h);
    sqlite3_str_appendall(s,
        "SELECT r.id AS run_id, r.uid AS uid,"
        " (SELECT value FROM params WHERE run_id = r.id AND key = 'sweep.name') AS sweep,"
        " r.variant AS variant, r.status AS status, r.kind AS kind, r.mode AS mode,"
        " r.code_version AS code_version, r.started_at AS started_at, r.seed AS seed");
    for (size_t i = 0; prov && i < sizeof wide_prov / sizeof wide_prov[0]; i++)
        sqlite3_str_appendf(s, ", r.%s AS %s", wide_prov[i], wide_prov[i]);
    for (size_t i = 0; rc == D2_OK && i < roles.n; i++)
        sqlite3_str_appendf(s, ", (SELECT xxh128 FROM inputs WHERE run_id = r.id AND role = %Q) AS \"inputs.%w\""
                               ", (SELECT path FROM inputs WHERE run_id = r.id AND role = %Q) AS \"inputs.%w.path\"",
                            roles.a[i], roles.a[i], roles.a[i], roles.a[i]);
    for (size_t i = 0; rc == D2_OK && i < keys.n; i++)
        sqlite3_str_appendf(s, ", (SELECT value FROM params WHERE run_id = r.id AND key = %Q) AS \"%w\"", keys.a[i], keys.a[i]);
    for (size_t i = 0; rc == D2_OK && i < names.n; i++) {
        int clash = strlist_has(&keys, names.a[i]);
        for (size_t k = 0; k < sizeof wide_fixed / sizeof wide_fixed[0]; k++) clash |= !strcmp(wide_fixed[k], names.a[i]);
        for (size_t k = 0; prov && k < sizeof wide_prov / sizeof wide_prov[0]; k++) clash |= !strcmp(wide_prov[k], names.a[i]);
        clash |= prov && !strncmp(names.a[i], "inputs.", 7);
        sqlite3_str_appendf(s, ", (SELECT value FROM metrics WHERE run_id = r.id AND name = %Q) AS \"%s%w\"", names.a[i],
                            clash ? "metric." : "", names.a[i]);
    }
    sqlite3_str_appendall(s, " FROM runs r");
    strlist_free(&keys);
    strlist_free(&names);
    strlist_free(&roles);
    char *sql = sqlite3_str_finish(s);
    if (rc != D2_OK) { sqlite3_free(sql); return rc; }
    if (!sql) D2_ERROR(D2_ENOMEM, "out of memory");
    *out = sql;
    return D2_OK;
}

int db_wide_select(db *d, char **sql) { return wide_select_h(d->h, 0, sql); }
int db_export_select(db *d, char **sql) { return wide_select_h(d->h, 1, sql); }

static int wide_view_refresh(sqlite3 *h, const char *path)
{
    char *sel;
    D2_TRY(wide_select_h(h, 0, &sel));
    char *sql = sqlite3_mprintf("DROP VIEW IF EXISTS runs_wide; CREATE VIEW runs_wide AS %s ORDER BY r.id", sel);
    sqlite3_free(sel);
    if (!sql) D2_ERROR(D2_ENOMEM, "out of memory");
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) {
        d2_err_set("%s: runs_wide: %s", path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return D2_EDB;
    }
    return D2_OK;
}

/* Recreates the view only when this run brought a column it lacks. */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* every row of the one-column query sql, sorted, into *a / *n */
static int read_names(db *d, const char *sql, char ***a, size_t *n)
{
    sqlite3_stmt *st;
    D2_TRY(db_stmt_cached(d, sql, &st));
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        if (!v) continue;
        int vrc = VEC_RESERVE(*a, cap, *n + 1);
        if (vrc != D2_OK) { sqlite3_reset(st); return vrc; }
        if (!((*a)[*n] = strdup(v))) { sqlite3_reset(st); D2_ERROR(D2_ENOMEM, "out of memory"); }
        (*n)++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) D2_ERROR(D2_EDB, "%s: runs_wide: %s", d->path, sqlite3_errstr(rc));
    if (*n) qsort(*a, *n, sizeof **a, cmp_str);
    return D2_OK;
}

/* runs_wide's columns and the store's param keys, read again only when the
 * schema changed (schema_version moves with every CREATE or DROP, in this
 * process or another; every new param key or metric name rebuilds the view),
 * so a run's check costs a PRAGMA and lookups */
static int wide_cols(db *d)
{
    sqlite3_stmt *st;
    D2_TRY(db_stmt_cached(d, "PRAGMA schema_version", &st));
    int rc = sqlite3_step(st), ver = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) D2_ERROR(D2_EDB, "%s: schema_version: %s", d->path, sqlite3_errstr(rc));
    if (ver == d->wcols_schema) return D2_OK;
    wcols_free(d);
    int frc = read_names(d, "SELECT name FROM pragma_table_info('runs_wide')", &d->wcols, &d->nwcols);
    if (frc == D2_OK) frc = read_names(d, "SELECT DISTINCT key FROM params", &d->wkeys, &d->nwkeys);
    if (frc != D2_OK) { wcols_free(d); return frc; }
    d->wcols_schema = ver;
    return D2_OK;
}

static int in_sorted(char *const *a, size_t n, const char *name) { return n && bsearch(&name, a, n, sizeof *a, cmp_str) != NULL; }

/* Does the view show every param and metric of run r?  (wide_cols read
 * before r's rows went in, in the same transaction.)  A param key is a
 * column of its name; a metric is "metric." name when its name is also a
 * param key or a fixed column (wide_select_h), else a column of its name.
 * The view is rebuilt when r brings one it does not show. */
static int wide_view_update(db *d, const db_run *r)
{
    int stale = 0;
    for (size_t i = 0; !stale && i < r->params.n; i++)
        stale = !in_sorted(d->wcols, d->nwcols, r->params.a[i].k) || !in_sorted(d->wkeys, d->nwkeys, r->params.a[i].k);
    for (size_t i = 0; !stale && i < r->metrics.n; i++) {
        const char *m = r->metrics.a[i].k;
        int clash = in_sorted(d->wkeys, d->nwkeys, m);
        for (size_t k = 0; k < sizeof wide_fixed / sizeof wide_fixed[0]; k++) clash |= !strcmp(wide_fixed[k], m);
        const kv probe = {.k = (char *)m}; /* r's params are sorted by key (db_run_config_hash, at write_fn's start) */
        clash |= r->params.n && bsearch(&probe, r->params.a, r->params.n, sizeof(kv), kv_cmp) != NULL;
        if (!clash) {
            stale = !in_sorted(d->wcols, d->nwcols, m);
            continue;
        }
        char pre[512];
        stale = snprintf(pre, sizeof pre, "metric.%s", m) >= (int)sizeof pre || !in_sorted(d->wcols, d->nwcols, pre);
    }
    return stale ? wide_view_refresh(d->h, d->path) : D2_OK;
}

int db_wide_view_refresh(db *d) { return wide_view_refresh(d->h, d->path); }

/* ---- choosing one variant --------------------------------------------- */

typedef struct vrow { char name[DB_VARIANT_MAX]; char *ovr, *reading; long runs; } vrow;

static void vrows_free(vrow *v, size_t n)
{
    for (size_t i = 0; i < n; i++) { free(v[i].ovr); free(v[i].reading); }
    free(v);
}

static int variants_of(db *d, const char *sweep, vrow **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    const char *sql = sweep
        ? "SELECT r.variant, coalesce(v.overrides, ''), coalesce(v.reading, ''), count(*) FROM runs r"
          " JOIN params p ON p.run_id = r.id AND p.key = 'sweep.name' AND p.value = ?1"
          " LEFT JOIN variants v ON v.name = r.variant GROUP BY r.variant ORDER BY min(r.id)"
        : "SELECT r.variant, coalesce(v.overrides, ''), coalesce(v.reading, ''), count(*) FROM runs r"
          " LEFT JOIN variants v ON v.name = r.variant GROUP BY r.variant ORDER BY min(r.id)";
    if (sqlite3_prepare_v2(d->h, sql, -1, &st, NULL) != SQLITE_OK) D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errmsg(d->h));
    if (sweep) sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    vrow *a = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int vrc = VEC_RESERVE(a, cap, cnt + 1);
        if (vrc != D2_OK) { sqlite3_finalize(st); vrows_free(a, cnt); return vrc; }
        const char *nm = (const char *)sqlite3_column_text(st, 0);
        snprintf(a[cnt].name, sizeof a[cnt].name, "%s", nm ? nm : "legacy");
        a[cnt].ovr = strdup((const char *)sqlite3_column_text(st, 1));
        a[cnt].reading = strdup((const char *)sqlite3_column_text(st, 2));
        a[cnt].runs = sqlite3_column_int(st, 3);
        cnt++;
        if (!a[cnt - 1].ovr || !a[cnt - 1].reading) { sqlite3_finalize(st); vrows_free(a, cnt); D2_ERROR(D2_ENOMEM, "out of memory"); }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) { vrows_free(a, cnt); D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errstr(rc)); }
    *out = a;
    *n = cnt;
    return D2_OK;
}

/* value of key in canonical override text, or NULL */
static const char *ovr_get(const char *ovr, const char *key, char *buf, size_t n)
{
    size_t kl = strlen(key);
    for (const char *p = ovr; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        if (l > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            snprintf(buf, n, "%.*s", (int)(l - kl - 1), p + kl + 1);
            return buf;
        }
        p = nl ? nl + 1 : p + l;
    }
    return NULL;
}

/* the keys whose values differ between the variants: "device.flash_bw, reading" */
static void differing_keys(const vrow *v, size_t n, char *buf, size_t bn)
{
    strlist keys = {0};
    for (size_t i = 0; i < n; i++)
        for (const char *p = v[i].ovr; *p;) {
            const char *nl = strchr(p, '\n'), *eq = strchr(p, '=');
            size_t l = nl ? (size_t)(nl - p) : strlen(p);
            if (eq && eq < p + l) {
                char k[256];
                snprintf(k, sizeof k, "%.*s", (int)(eq - p), p);
                if (!strlist_has(&keys, k)) strlist_push(&keys, k);
            }
            p = nl ? nl + 1 : p + l;
        }
    size_t off = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < keys.n; k++) {
        char a[256], b[256];
        const char *first = ovr_get(v[0].ovr, keys.a[k], a, sizeof a);
        int differ = 0;
        for (size_t i = 1; i < n && !differ; i++) {
            const char *x = ovr_get(v[i].ovr, keys.a[k], b, sizeof b);
            differ = (!first != !x) || (first && strcmp(first, x));
        }
        if (!differ) continue;
        int w = snprintf(buf + off, bn - off, "%s%s", off ? ", " : "", keys.a[k]);
        if (w > 0 && (size_t)w < bn - off) off += (size_t)w;
    }
    int rdiff = 0, legacy = 0;
    for (size_t i = 0; i < n; i++) {
        rdiff |= strcmp(v[i].reading, v[0].reading) != 0;
        legacy |= !strcmp(v[i].name, "legacy");
    }
    if (rdiff) {
        int w = snprintf(buf + off, bn - off, "%sreading.name", off ? ", " : "");
        if (w > 0 && (size_t)w < bn - off) off += (size_t)w;
    }
    if (legacy) {
        int w = snprintf(buf + off, bn - off, "%s(unknown for legacy runs)", off ? ", " : "");
        if (w > 0 && (size_t)w < bn - off) off += (size_t)w;
    }
    if (!off) snprintf(buf, bn, "only the name given with --as");
    strlist_free(&keys);
}

static void variant_list(const vrow *v, size_t n, char *buf, size_t bn)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char o[400];
        overrides_line(v[i].ovr, v[i].reading, o, sizeof o);
        int w = snprintf(buf + off, bn - off, "%s%s (%ld runs: %s)", i ? "; " : "", v[i].name, v[i].runs, o);
        if (w < 0 || (size_t)w >= bn - off) break;
        off += (size_t)w;
    }
}

int db_metrics_numeric(db *d, const char *sweep, const char *variant)
{
    const char *sql = sweep ? "SELECT run_id, name, typeof(value), value FROM metrics WHERE typeof(value) IN ('text', 'blob')"
                              " AND run_id IN (SELECT id FROM sweep_runs WHERE sweep = ?1 AND variant = ?2) ORDER BY run_id, name LIMIT 1"
                            : "SELECT run_id, name, typeof(value), value FROM metrics WHERE typeof(value) IN ('text', 'blob')"
                              " AND run_id IN (SELECT id FROM runs WHERE ?2 IS NULL OR variant = ?2) ORDER BY run_id, name LIMIT 1";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->h, sql, -1, &st, NULL) != SQLITE_OK) D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errmsg(d->h));
    if (sweep) sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    if (variant) sqlite3_bind_text(st, 2, variant, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1), *type = (const char *)sqlite3_column_text(st, 2);
        char shown[64] = "a blob";
        if (type && !strcmp(type, "text")) snprintf(shown, sizeof shown, "\"%.40s\"", (const char *)sqlite3_column_text(st, 3));
        for (char *c = shown; *c; c++)
            if ((unsigned char)*c < 0x20) *c = '?'; /* one line */
        d2_err_set("%s: run %lld: metric %s: %s is not a number", d->path, (long long)sqlite3_column_int64(st, 0), name ? name : "?", shown);
        sqlite3_finalize(st);
        return D2_EFORMAT;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errstr(rc));
    return D2_OK;
}

int db_sweep_check(db *d, const char *name)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->h, "SELECT DISTINCT sweep FROM sweep_jobs ORDER BY 1", -1, &st, NULL) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errmsg(d->h));
    enum { MAXN = 256 };
    char *names[MAXN];
    size_t n = 0;
    int found = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *x = (const char *)sqlite3_column_text(st, 0);
        if (!x) continue;
        if (!strcmp(x, name)) found = 1;
        if (n < MAXN && (names[n] = strdup(x))) n++;
    }
    sqlite3_finalize(st);
    if (found) {
        for (size_t i = 0; i < n; i++) free(names[i]);
        return D2_OK;
    }
    char hint[300], list[1024];
    suggest_hint(name, (const char *const *)names, n, hint, sizeof hint);
    size_t l = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && l + 4 < sizeof list; i++) {
        int w = snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= sizeof list - l) { snprintf(list + l, sizeof list - l, ", ..."); break; }
        l += (size_t)w;
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    D2_ERROR(D2_ENOTFOUND, "%s: no sweep named %s%s; its sweeps: %s", d->path, name, hint, n ? list : "(none)");
}

int db_variant_pick(db *d, const char *sweep, const char *want, char out[DB_VARIANT_MAX], char *note, size_t nn)
{
    if (note && nn) note[0] = '\0';
    vrow *v;
    size_t n;
    D2_TRY(variants_of(d, sweep, &v, &n));
    char list[2048], keys[512];
    variant_list(v, n, list, sizeof list);
    const char *what = sweep ? sweep : "the store";
    int rc = D2_OK;
    if (want && *want) {
        size_t i = 0;
        while (i < n && strcmp(v[i].name, want)) i++;
        /* a sweep without runs is the caller's to report (a figure with no
         * data); the whole store without runs has none of any variant */
        if (i == n && (n > 0 || !sweep)) {
            d2_err_set("%s: %s has no runs of variant \"%s\"; its variants: %s", d->path, what, want, n ? list : "none (it has no runs)");
            rc = D2_ENOTFOUND;
        } else snprintf(out, DB_VARIANT_MAX, "%s", want);
    } else if (n == 0) {
        snprintf(out, DB_VARIANT_MAX, "base"); /* no data: the caller says so */
    } else {
        /* the spec's own: the variant without overrides (any reading) */
        size_t own = n, nown = 0;
        for (size_t i = 0; i < n; i++)
            if (!v[i].ovr[0] && strcmp(v[i].name, "legacy")) { own = i; nown++; }
        if (nown == 1) snprintf(out, DB_VARIANT_MAX, "%s", v[own].name);
        else if (n == 1) snprintf(out, DB_VARIANT_MAX, "%s", v[0].name);
        else {
            differing_keys(v, n, keys, sizeof keys);
            d2_err_set("%s: the runs of %s are of %zu variants that differ in %s: %s; choose one with --variant NAME",
                       d->path, what, n, keys, list);
            rc = D2_EINVAL;
        }
    }
    if (rc == D2_OK && note && nn && n > 1) {
        vrow *others = calloc(n, sizeof *others);
        size_t k = 0;
        for (size_t i = 0; others && i < n; i++)
            if (strcmp(v[i].name, out)) others[k++] = v[i];
        if (others) {
            variant_list(others, k, list, sizeof list);
            snprintf(note, nn, "variant %s shown; %s also holds %s (--variant NAME to show one)", out, what, list);
        }
        free(others); /* shallow copies */
    }
    vrows_free(v, n);
    return rc;
}

int db_variant_usable(db *d, const char *name, const char *overrides)
{
    D2_TRY(db_variant_name_check(name));
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->h, "SELECT overrides, reading FROM variants WHERE name = ?", -1, &st, NULL) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errmsg(d->h));
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = D2_OK;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *o = (const char *)sqlite3_column_text(st, 0);
        if (strcmp(o ? o : "", overrides ? overrides : "")) {
            char had[512], now_l[512];
            overrides_line(o, (const char *)sqlite3_column_text(st, 1), had, sizeof had);
            overrides_line(overrides, "", now_l, sizeof now_l);
            d2_err_set("%s: variant \"%s\" already stands for %s, not %s; choose another name", d->path, name, had, now_l);
            rc = D2_EINVAL;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

int db_variant_describe(db *d, const char *name, char *buf, size_t n)
{
    sqlite3_stmt *st;
    snprintf(buf, n, "unknown");
    if (sqlite3_prepare_v2(d->h, "SELECT overrides, reading FROM variants WHERE name = ?", -1, &st, NULL) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errmsg(d->h));
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        overrides_line((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1), buf, n);
    sqlite3_finalize(st);
    return D2_OK;
}

typedef struct write_ctx {
    db *d;
    db_run *r;
    int64_t id;
    char ended[32];
    db_extra_fn extra;
    void *user;
} write_ctx;

#define BIND_OK(x) do { if ((x) != SQLITE_OK) goto fail; } while (0)

/* one row's values after its run id, from column col (1-based) on */
typedef int (*row_bind_fn)(sqlite3_stmt *st, int col, const kv *e);
static int bind_param(sqlite3_stmt *st, int col, const kv *e)
{
    int rc = sqlite3_bind_text(st, col, e->k, -1, SQLITE_STATIC);
    return rc != SQLITE_OK ? rc : sqlite3_bind_text(st, col + 1, e->v, -1, SQLITE_STATIC);
}
static int bind_metric(sqlite3_stmt *st, int col, const kv *e)
{
    int rc = sqlite3_bind_text(st, col, e->k, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = e->x == e->x ? sqlite3_bind_double(st, col + 1, e->x) : sqlite3_bind_null(st, col + 1); /* NaN: no value */
    return rc != SQLITE_OK ? rc : sqlite3_bind_text(st, col + 2, e->unit, -1, SQLITE_STATIC);
}
static int bind_input(sqlite3_stmt *st, int col, const kv *e)
{
    int rc = sqlite3_bind_text(st, col, e->k, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, col + 1, e->v, -1, SQLITE_STATIC);
    return rc != SQLITE_OK ? rc : sqlite3_bind_text(st, col + 2, e->unit, -1, SQLITE_STATIC);
}

/* A run's rows of one table ("head" then one "tuple" of ncol columns per
 * row, the first the run id), in list order, INSERT_CHUNK rows per
 * statement, then single rows: the same rows as one INSERT each, with a
 * statement's overhead per chunk, not per row (a run writes ~100 params
 * and ~50 metrics); two cached statements a table (db.h).  A statement of
 * several rows keeps a statement journal of the pages it changes (to undo
 * it alone); at 4 rows it nearly always stays within the 64 KiB SQLite
 * keeps in memory (a page split can pass it; at 32 rows it spilled to a
 * temporary file nearly every run). */
#define INSERT_CHUNK 4
static int insert_rows(db *d, const char *head, const char *tuple, int ncol, int64_t id, const kvlist *l, row_bind_fn bind)
{
    static const size_t chunks[] = {INSERT_CHUNK, 1};
    size_t i = 0;
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0] && i < l->n; c++) {
        const size_t k = chunks[c];
        if (l->n - i < k) continue;
        char sql[INSERT_CHUNK * 16 + 128];
        size_t off = (size_t)snprintf(sql, sizeof sql, "%s", head);
        for (size_t j = 0; j < k && off < sizeof sql; j++) off += (size_t)snprintf(sql + off, sizeof sql - off, "%s%s", j ? "," : "", tuple);
        if (off >= sizeof sql) D2_ERROR(D2_EINTERNAL, "insert statement too long");
        sqlite3_stmt *st;
        D2_TRY(db_stmt_cached(d, sql, &st));
        for (; l->n - i >= k; i += k) {
            sqlite3_reset(st);
            int rc = SQLITE_OK;
            for (size_t j = 0; rc == SQLITE_OK && j < k; j++) {
                rc = sqlite3_bind_int64(st, (int)(j * (size_t)ncol) + 1, id);
                if (rc == SQLITE_OK) rc = bind(st, (int)(j * (size_t)ncol) + 2, &l->a[i + j]);
            }
            if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
                d2_err_set("%s: writing the run failed: %s", d->path, sqlite3_errmsg(d->h));
                sqlite3_reset(st);
                return D2_EDB;
            }
        }
        sqlite3_reset(st);
    }
    return D2_OK;
}

static int write_fn(sqlite3 *h, void *user)
{
    write_ctx *c = user;
    db *d = c->d;
    db_run *r = c->r;
    if (r->lost) /* a setter's failure its caller did not act on: never a record without its field */
        D2_ERROR(D2_ENOMEM, "out of memory: a %s run's record lost a field while it was built; not stored", r->kind);
    char host[256] = "unknown", hash[33];
    gethostname(host, sizeof host - 1);
    db_run_config_hash(r, hash);
    char variant[DB_VARIANT_MAX];
    /* the reading counts through the overrides when the caller gave them
     * (a sweep: --readings is the override readings=NAME, a readings axis
     * is swept, not a variant); else through the run's reading.name */
    const char *reading = "";
    for (size_t i = 0; !r->overrides && i < r->params.n; i++)
        if (!strcmp(r->params.a[i].k, "reading.name")) reading = r->params.a[i].v;
    const char *ovr = r->overrides ? r->overrides : "";
    if (r->variant[0]) snprintf(variant, sizeof variant, "%s", r->variant);
    else db_variant_auto(ovr, reading, variant);
    D2_TRY(variant_register(d, variant, ovr, reading, r->variant[0] != 0));
    D2_TRY(wide_cols(d)); /* the view and the keys before this run's rows */
    sqlite3_stmt *st = NULL;
    D2_TRY(db_stmt_cached(d, "INSERT INTO runs(kind,mode,status,started_at,ended_at,code_version,host,cmdline,seed,rng,config_hash,uid,variant) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)", &st));
    BIND_OK(sqlite3_bind_text(st, 1, r->kind, -1, SQLITE_STATIC));
    BIND_OK(sqlite3_bind_text(st, 2, r->mode, -1, SQLITE_STATIC));
    BIND_OK(sqlite3_bind_text(st, 3, r->status, -1, SQLITE_STATIC));
    BIND_OK(sqlite3_bind_text(st, 4, r->started, -1, SQLITE_STATIC));
    BIND_OK(sqlite3_bind_text(st, 5, c->ended, -1, SQLITE_STATIC));
    BIND_OK(sqlite3_bind_text(st, 6, d2_version(), -1, SQLITE_STATIC));
    BIND_OK(sqlite3_bind_text(st, 7, host, -1, SQLITE_TRANSIENT));
    BIND_OK(sqlite3_bind_text(st, 8, r->cmdline ? r->cmdline : "", -1, SQLITE_STATIC));
    if (r->has_seed) { BIND_OK(sqlite3_bind_int64(st, 9, (sqlite3_int64)r->seed)); BIND_OK(sqlite3_bind_text(st, 10, D2_RNG_NAME, -1, SQLITE_STATIC)); }
    BIND_OK(sqlite3_bind_text(st, 11, hash, -1, SQLITE_TRANSIENT));
    BIND_OK(sqlite3_bind_text(st, 12, r->uid, -1, SQLITE_STATIC));
    BIND_OK(sqlite3_bind_text(st, 13, variant, -1, SQLITE_TRANSIENT));
    if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    sqlite3_reset(st);
    c->id = sqlite3_last_insert_rowid(h);

    D2_TRY(insert_rows(d, "INSERT INTO params(run_id,key,value) VALUES", "(?,?,?)", 3, c->id, &r->params, bind_param));
    D2_TRY(insert_rows(d, "INSERT INTO metrics(run_id,name,value,unit) VALUES", "(?,?,?,?)", 4, c->id, &r->metrics, bind_metric));
    D2_TRY(insert_rows(d, "INSERT INTO inputs(run_id,role,path,xxh128) VALUES", "(?,?,?,?)", 4, c->id, &r->inputs, bind_input));
    D2_TRY(wide_view_update(d, r));
    if (c->extra) return c->extra(d, c->id, c->user);
    return D2_OK;
fail:
    d2_err_set("%s: writing the run failed: %s", d->path, sqlite3_errmsg(h));
    if (st) sqlite3_reset(st);
    return D2_EDB;
}

int db_run_write(db *d, db_run *r, int64_t *id) { return db_run_write_with(d, r, NULL, NULL, id); }

void db_run_end(db_run *r) { db_now_iso(r->ended); }

static void write_ctx_init(write_ctx *c, db *d, db_run *r, db_extra_fn extra, void *user)
{
    memset(c, 0, sizeof *c);
    c->d = d;
    c->r = r;
    c->extra = extra;
    c->user = user;
    if (r->ended[0]) snprintf(c->ended, sizeof c->ended, "%s", r->ended);
    else db_now_iso(c->ended);
}

int db_run_write_with(db *d, db_run *r, db_extra_fn extra, void *user, int64_t *id)
{
    write_ctx c;
    write_ctx_init(&c, d, r, extra, user);
    D2_TRY(db_transaction(d, write_fn, &c));
    if (id) *id = c.id;
    return D2_OK;
}

int db_run_insert(db *d, db_run *r, db_extra_fn extra, void *user, int64_t *id)
{
    write_ctx c;
    write_ctx_init(&c, d, r, extra, user);
    D2_TRY(write_fn(d->h, &c));
    if (id) *id = c.id;
    return D2_OK;
}

int db_run_last_id(db *d, int64_t *id)
{
    *id = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->h, "SELECT coalesce(max(id), 0) FROM runs", -1, &st, NULL) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errmsg(d->h));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    else d2_err_set("%s: %s", d->path, sqlite3_errmsg(d->h));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? D2_OK : D2_EDB;
}

/* ---- which runs a figure shows (SWEEP_RUNS_SELECT) ---------------------- */

int db_sweep_runs(db *d)
{
    if (d->sweep_runs_ready) return D2_OK;
    int rc = SQLITE_OK;
    if (d->version < 5) /* no variants (or no sweep_jobs) yet: nothing a figure can show */
        rc = exec_simple(d, "CREATE TEMP VIEW IF NOT EXISTS sweep_runs(id, sweep, variant) AS SELECT 0, '', '' WHERE 0;");
    else {
        if (d->version < 6) /* a store from before grids (opened read-only, not migrated): every job, as before */
            rc = exec_simple(d, "CREATE TEMP VIEW IF NOT EXISTS sweep_grid(sweep, variant, grid, job_hash, at) AS SELECT '', '', '', '', '' WHERE 0;");
        if (rc == SQLITE_OK) rc = exec_simple(d, "DROP VIEW IF EXISTS temp.sweep_runs; CREATE TEMP VIEW sweep_runs(id, sweep, variant) AS" SWEEP_RUNS_SELECT ";");
    }
    if (rc != SQLITE_OK) { d2_err_prefix("choosing the runs to show: "); return D2_EDB; }
    d->sweep_runs_ready = 1;
    return D2_OK;
}

int db_sweep_runs_note(db *d, const char *sweep, const char *variant, char *note, size_t n)
{
    if (n) note[0] = '\0';
    D2_TRY(db_sweep_runs(d));
    if (d->version < 6 || !n) return D2_OK;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->h,
            "WITH l AS (SELECT grid, max(at) AS at, count(*) AS jobs FROM sweep_grid WHERE sweep = ?1 AND variant = ?2"
            "           GROUP BY grid ORDER BY max(at) DESC, grid DESC LIMIT 1)"
            " SELECT l.at, l.jobs, (SELECT count(*) FROM sweep_jobs j JOIN runs rv ON rv.id = j.run_id"
            "   WHERE j.sweep = ?1 AND rv.variant = ?2"
            "     AND NOT EXISTS (SELECT 1 FROM sweep_grid g WHERE g.grid = l.grid AND g.job_hash = j.job_hash))"
            " FROM l", -1, &st, NULL) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errmsg(d->h));
    sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, variant, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_int64(st, 2) > 0)
        snprintf(note, n, "%lld runs of variant %s not shown: their jobs are not in the grid of the latest sweep of %s "
                 "(%lld jobs, started %s); 'd2moe export --db %s' without --sweep lists every run",
                 (long long)sqlite3_column_int64(st, 2), variant, sweep, (long long)sqlite3_column_int64(st, 1),
                 (const char *)sqlite3_column_text(st, 0), d->path);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) D2_ERROR(D2_EDB, "%s: %s", d->path, sqlite3_errstr(rc));
    return D2_OK;
}
