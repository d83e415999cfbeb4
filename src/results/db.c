/* db.c - SQLite results store: open/verify/migrate, transactions with retry,
 * and one-transaction run records (see db.h). */
#include "results/db.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/rng.h"
#include "core/version.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct db {
    sqlite3 *h;
    char *path;
    int version;
};

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
    "  code_version TEXT NOT NULL,"     /* git describe --always --dirty */
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

static int migrate_fn(sqlite3 *h, void *user)
{
    db *d = user;
    int v = 0;
    if (query_int(d, "PRAGMA user_version", &v) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: cannot read the schema version: %s", d->path, sqlite3_errmsg(h));
    if (v == 0) {
        int ntab = 0;
        query_int(d, "SELECT count(*) FROM sqlite_master", &ntab);
        if (ntab != 0)
            D2_ERROR(D2_EDB, "%s: holds tables but is not a d2moe results database; refusing to touch it", d->path);
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d", DB_APPLICATION_ID);
        if (exec_simple(d, sql) != SQLITE_OK) return D2_EDB;
    }
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
    return D2_OK;
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
    if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
        D2_ERROR(D2_EDB, "%s: not an SQLite database (corrupt or another kind of file); refusing to touch it", d->path);
    if (rc != SQLITE_OK) D2_ERROR(D2_EDB, "%s: cannot read: %s", d->path, sqlite3_errstr(rc));
    if (app != DB_APPLICATION_ID && (app != 0 || ntab != 0 || ver != 0))
        D2_ERROR(D2_EDB, "%s: an SQLite database of another application (application_id %d); refusing to touch it", d->path, app);
    d->version = ver;
    return D2_OK;
}

static int open_common(const char *path, int flags, db **out)
{
    *out = NULL;
    db *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) { free(d); D2_ERROR(D2_ENOMEM, "out of memory"); }
    int rc = sqlite3_open_v2(path, &d->h, flags, NULL);
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

int db_open(const char *path, db **out)
{
    db *d;
    D2_TRY(open_common(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, &d));
    int rc = D2_OK;
    /* WAL can be refused briefly while another process holds a lock */
    for (int attempt = 0; attempt < 500; attempt++) {
        int src = sqlite3_exec(d->h, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if (src == SQLITE_OK) break;
        if (!is_busy(src)) { d2_err_set("%s: cannot enable WAL: %s", path, sqlite3_errmsg(d->h)); rc = D2_EDB; break; }
        backoff(attempt);
    }
    if (rc == D2_OK && exec_simple(d, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL") != SQLITE_OK) rc = D2_EDB;
    if (rc == D2_OK && d->version != N_MIGRATIONS) rc = db_transaction(d, migrate_fn, d);
    if (rc != D2_OK) { db_close(d); return rc; }
    *out = d;
    return D2_OK;
}

int db_open_readonly(const char *path, db **out)
{
    if (access(path, R_OK) != 0) D2_ERROR(D2_ENOTFOUND, "%s: cannot open: %s", path, strerror(errno));
    db *d;
    D2_TRY(open_common(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, &d));
    if (d->version == 0 && N_MIGRATIONS > 0) {
        db_close(d);
        D2_ERROR(D2_EDB, "%s: empty file, not a d2moe results database", path);
    }
    *out = d;
    return D2_OK;
}

void db_close(db *d)
{
    if (!d) return;
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
    return D2_OK;
}

/* ---- run records ------------------------------------------------------ */

typedef struct kv { char *k, *v, *unit; double x; } kv;
typedef struct kvlist { kv *a; size_t n, cap; } kvlist;

struct db_run {
    char kind[32], mode[16], status[16];
    char uid[33];
    char started[32];
    char *cmdline;
    int has_seed;
    uint64_t seed;
    kvlist params, metrics, inputs;
};

static int kv_push(kvlist *l, const char *k, const char *v, const char *unit, double x)
{
    for (size_t i = 0; i < l->n; i++) /* same key again: last one wins */
        if (strcmp(l->a[i].k, k) == 0) {
            char *nv = v ? strdup(v) : NULL, *nu = unit ? strdup(unit) : NULL;
            if ((v && !nv) || (unit && !nu)) { free(nv); free(nu); D2_ERROR(D2_ENOMEM, "out of memory"); }
            free(l->a[i].v); free(l->a[i].unit);
            l->a[i].v = nv; l->a[i].unit = nu; l->a[i].x = x;
            return D2_OK;
        }
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 32;
        kv *na = realloc(l->a, nc * sizeof *na);
        if (!na) D2_ERROR(D2_ENOMEM, "out of memory");
        l->a = na;
        l->cap = nc;
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
    return D2_OK;
}

static void kv_free(kvlist *l)
{
    for (size_t i = 0; i < l->n; i++) { free(l->a[i].k); free(l->a[i].v); free(l->a[i].unit); }
    free(l->a);
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
    free(r);
}

void db_run_cmdline(db_run *r, int argc, char **argv)
{
    size_t len = 1;
    for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 3;
    free(r->cmdline);
    r->cmdline = malloc(len);
    if (!r->cmdline) return;
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
int db_run_param(db_run *r, const char *key, const char *value) { return kv_push(&r->params, key, value, NULL, 0); }
int db_run_metric(db_run *r, const char *name, double value, const char *unit)
{
    return kv_push(&r->metrics, name, NULL, unit ? unit : "", value);
}

int db_run_param_visit(const char *key, const char *value, const char *units, void *run)
{
    (void)units;
    return db_run_param(run, key, value);
}

int db_run_input(db_run *r, const char *role, const char *path)
{
    char hex[33];
    D2_TRY(hash_file_hex(path, hex));
    return kv_push(&r->inputs, role, path, hex, 0);
}

static int kv_cmp(const void *a, const void *b) { return strcmp(((const kv *)a)->k, ((const kv *)b)->k); }

void db_run_config_hash(db_run *r, char out[33])
{
    if (r->params.n > 0) qsort(r->params.a, r->params.n, sizeof(kv), kv_cmp);
    size_t len = 1;
    for (size_t i = 0; i < r->params.n; i++) len += strlen(r->params.a[i].k) + strlen(r->params.a[i].v) + 2;
    char *buf = malloc(len), *p = buf;
    if (!buf) { snprintf(out, 33, "%032d", 0); return; }
    for (size_t i = 0; i < r->params.n; i++)
        p += sprintf(p, "%s=%s\n", r->params.a[i].k, r->params.a[i].v);
    hash_mem_hex(buf, (size_t)(p - buf), out);
    free(buf);
}

typedef struct write_ctx {
    db_run *r;
    int64_t id;
    const char *path;
    char ended[32];
    db_extra_fn extra;
    void *user;
} write_ctx;

#define BIND_OK(x) do { if ((x) != SQLITE_OK) goto fail; } while (0)

static int write_fn(sqlite3 *h, void *user)
{
    write_ctx *c = user;
    db_run *r = c->r;
    char host[256] = "unknown", hash[33];
    gethostname(host, sizeof host - 1);
    db_run_config_hash(r, hash);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h, "INSERT INTO runs(kind,mode,status,started_at,ended_at,code_version,host,cmdline,seed,rng,config_hash,uid) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK) goto fail;
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
    if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    sqlite3_finalize(st);
    c->id = sqlite3_last_insert_rowid(h);

    if (sqlite3_prepare_v2(h, "INSERT INTO params(run_id,key,value) VALUES(?,?,?)", -1, &st, NULL) != SQLITE_OK) goto fail;
    for (size_t i = 0; i < r->params.n; i++) {
        sqlite3_reset(st);
        BIND_OK(sqlite3_bind_int64(st, 1, c->id));
        BIND_OK(sqlite3_bind_text(st, 2, r->params.a[i].k, -1, SQLITE_STATIC));
        BIND_OK(sqlite3_bind_text(st, 3, r->params.a[i].v, -1, SQLITE_STATIC));
        if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(h, "INSERT INTO metrics(run_id,name,value,unit) VALUES(?,?,?,?)", -1, &st, NULL) != SQLITE_OK) goto fail;
    for (size_t i = 0; i < r->metrics.n; i++) {
        sqlite3_reset(st);
        BIND_OK(sqlite3_bind_int64(st, 1, c->id));
        BIND_OK(sqlite3_bind_text(st, 2, r->metrics.a[i].k, -1, SQLITE_STATIC));
        if (r->metrics.a[i].x == r->metrics.a[i].x) BIND_OK(sqlite3_bind_double(st, 3, r->metrics.a[i].x));
        else BIND_OK(sqlite3_bind_null(st, 3)); /* NaN: no value */
        BIND_OK(sqlite3_bind_text(st, 4, r->metrics.a[i].unit, -1, SQLITE_STATIC));
        if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(h, "INSERT INTO inputs(run_id,role,path,xxh128) VALUES(?,?,?,?)", -1, &st, NULL) != SQLITE_OK) goto fail;
    for (size_t i = 0; i < r->inputs.n; i++) {
        sqlite3_reset(st);
        BIND_OK(sqlite3_bind_int64(st, 1, c->id));
        BIND_OK(sqlite3_bind_text(st, 2, r->inputs.a[i].k, -1, SQLITE_STATIC));
        BIND_OK(sqlite3_bind_text(st, 3, r->inputs.a[i].v, -1, SQLITE_STATIC));
        BIND_OK(sqlite3_bind_text(st, 4, r->inputs.a[i].unit, -1, SQLITE_STATIC));
        if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    }
    sqlite3_finalize(st);
    if (c->extra) return c->extra(h, c->id, c->user);
    return D2_OK;
fail:
    d2_err_set("%s: writing the run failed: %s", c->path, sqlite3_errmsg(h));
    sqlite3_finalize(st);
    return is_busy(sqlite3_errcode(h)) ? D2_EDB : D2_EDB;
}

int db_run_write(db *d, db_run *r, int64_t *id) { return db_run_write_with(d, r, NULL, NULL, id); }

int db_run_write_with(db *d, db_run *r, db_extra_fn extra, void *user, int64_t *id)
{
    write_ctx c = {r, 0, d->path, {0}, extra, user};
    db_now_iso(c.ended);
    D2_TRY(db_transaction(d, write_fn, &c));
    if (id) *id = c.id;
    return D2_OK;
}
