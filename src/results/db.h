/* db.h - the SQLite results store.
 *
 * One file holds every result: `runs` (who, when, which code, status),
 * `params` (every effective parameter of a run), `metrics` (name, value,
 * unit), `inputs` (files a run read, with their content hash), and tables
 * owned by modules (e.g. quant_errors).  The schema is versioned with
 * PRAGMA user_version and upgraded by forward migrations; WAL mode, foreign
 * keys on, busy timeout plus retry so concurrent writers lose nothing.
 * A run is assembled in memory (db_run) and written in ONE transaction, so a
 * crash never leaves half a result (a sweep commits several runs in one,
 * db_run_insert: all of them or none).  A file that is not a d2moe store (another
 * application's database, or not SQLite at all) is refused, never written:
 * D2_EFORMAT (bad input, exit status 2); a store that is locked or cannot be
 * read or written stays D2_EDB. */
#ifndef D2_RESULTS_DB_H
#define D2_RESULTS_DB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sqlite3.h>

#define DB_APPLICATION_ID 0x44324d45 /* "D2ME" */

typedef struct db db;
typedef struct db_run db_run;

/* Open (creating and migrating as needed). */
int db_open(const char *path, db **out);
/* The checks db_open makes of a store's path before touching it, without
 * creating anything: D2_EINVAL naming the path when it is empty, exists and
 * is not a regular file, or its folder is missing or not a directory. */
int db_path_check(const char *path);
/* Open an existing store read-only; no migration, no creation. */
int db_open_readonly(const char *path, db **out);
void db_close(db *d);
int db_schema_version(const db *d);
/* Latest schema version this build knows. */
int db_schema_latest(void);
sqlite3 *db_handle(db *d);
/* The statement of sql, prepared once per handle (keyed by its text) and
 * kept until db_close, handed out reset and unbound.  Reset it after use (a
 * stepped SELECT holds a read lock until then); never finalize it.  At most
 * DB_STMT_CACHED different texts per handle, counting the 12 of a run's
 * write (D2_EINTERNAL beyond). */
#define DB_STMT_CACHED 32
int db_stmt_cached(db *d, const char *sql, sqlite3_stmt **out);
const char *db_path(const db *d);

/* Print schema version and per-table row counts. */
int db_info_print(db *d, FILE *out);

/* Run fn inside BEGIN IMMEDIATE ... COMMIT, retrying the whole transaction
 * when another writer holds the lock; rolled back when fn fails. */
int db_transaction(db *d, int (*fn)(sqlite3 *h, void *user), void *user);

/* ---- a run, assembled in memory, written in one transaction ---------- */
db_run *db_run_new(const char *kind, const char *mode);
void db_run_free(db_run *r);
void db_run_cmdline(db_run *r, int argc, char **argv);
void db_run_seed(db_run *r, uint64_t seed);
void db_run_status(db_run *r, const char *status); /* ok, oom, failed */
int db_run_param(db_run *r, const char *key, const char *value);
int db_run_metric(db_run *r, const char *name, double value, const char *unit);
/* Hashes the file (XXH3-128) now. */
int db_run_input(db_run *r, const char *role, const char *path);
/* End time is taken now; fills *id. */
int db_run_write(db *d, db_run *r, int64_t *id);
/* Same, and calls extra(d, run_id, user) inside the same transaction, for
 * rows of module-owned tables (e.g. quant_errors); its failure rolls the
 * whole run back.  extra may be called more than once when the transaction
 * is retried, so it must only insert. */
typedef int (*db_extra_fn)(db *d, int64_t run_id, void *user);
int db_run_write_with(db *d, db_run *r, db_extra_fn extra, void *user, int64_t *id);
/* The run's end time: now (else it is taken when the run is written). */
void db_run_end(db_run *r);
/* Writes r like db_run_write_with but inside the caller's transaction (fn
 * of db_transaction), so that several runs share one commit (a sweep's
 * batch, sweep.h): their rows are the same as written one by one.  On
 * failure the caller rolls the whole transaction back (db_transaction
 * does when fn fails). */
int db_run_insert(db *d, db_run *r, db_extra_fn extra, void *user, int64_t *id);
/* The largest run id in the store, 0 when it holds none: runs written later have larger ids. */
int db_run_last_id(db *d, int64_t *id);
/* Adapter for param_foreach: adds each parameter to the run. */
int db_run_param_visit(const char *key, const char *value, const char *units, void *run);
/* Unique name of the run (XXH3-128 hex), kept when merged into another file. */
const char *db_run_uid(const db_run *r);
/* Hash of the sorted params (XXH3-128 hex): identifies a configuration. */
void db_run_config_hash(db_run *r, char out[33]);

/* ---- variants: the assumptions a run ran with beyond its sweep's axes ---
 * A variant is named by the user (sweep --as NAME) or, by default, derived
 * from the run's overrides (--set) and reading (param reading.name): "base"
 * when it has neither, else "v" + 8 hex digits of their XXH3 digest.  The
 * table `variants` maps each name to its overrides; a name never stands for
 * two different sets of overrides.  Figures, summaries and exports show
 * one variant at a time (db_variant_pick). */
#define DB_VARIANT_MAX 64
/* Canonical override text of "key=value" strings: sorted lines, numbers
 * written out (7G -> 7000000000).  *out is malloc'ed. */
int db_overrides_canon(const char *const *sets, size_t n, char **out);
void db_variant_auto(const char *overrides, const char *reading, char out[DB_VARIANT_MAX]);
/* D2_EINVAL unless NAME is 1..63 of [A-Za-z0-9._-] and not "legacy". */
int db_variant_name_check(const char *name);
/* The same for a name given to runs with these overrides ("a=1\n..."):
 * "base" is the spec's own runs, without overrides. */
int db_variant_name_check_for(const char *name, const char *overrides);
/* name NULL or "": derived at write time from overrides (canonical text)
 * and, only when overrides is NULL (a run outside a sweep), from the run's
 * param reading.name. */
int db_run_variant(db_run *r, const char *name, const char *overrides);
/* The variant to show for a sweep's runs (sweep NULL: the whole store):
 * `want` when given (D2_ENOTFOUND when the sweep has runs but none of it,
 * and, sweep NULL, when the store has none of it, also when it has no runs);
 * else the spec's own (the one without overrides), or the only one; else
 * D2_EINVAL with a message naming the variants and the keys that differ.
 * note (may be NULL) gets a line naming the other variants, if any. */
int db_variant_pick(db *d, const char *sweep, const char *want, char out[DB_VARIANT_MAX], char *note, size_t nn);
/* D2_OK when the store holds runs of sweep `name`; else D2_ENOTFOUND with a
 * message naming the store, the closest sweep name and the sweeps it holds. */
int db_sweep_check(db *d, const char *name);
/* Before a sweep --as NAME: D2_EINVAL when NAME is malformed or already
 * stands for other overrides in this store. */
int db_variant_usable(db *d, const char *name, const char *overrides);
/* "device.flash_bw=7000000000, reading paper" or "no overrides". */
int db_variant_describe(db *d, const char *name, char *buf, size_t n);

/* ---- which runs a figure of (sweep, variant) shows ----------------------
 * One choice for every figure, summary, plot --sweep, export --sweep and
 * the report: the jobs of the latest grid of (sweep, variant) (table
 * sweep_grid: the grid of the sweep invocation that started last; a sweep
 * with no grid rows, stored before grids existed: every job), and per job
 * its latest stored run (ok or oom) by ended_at, then id; a job with no
 * such run shows its failed run, if any.  Creates the TEMP view
 * sweep_runs(id, sweep, variant) of this handle (this build's rule; the
 * store holds the same view from schema 6 on, for other readers); queries
 * read `SELECT id FROM sweep_runs WHERE sweep = :sweep AND variant = :variant`. */
int db_sweep_runs(db *d);
/* note (n bytes) gets one line when runs of (sweep, variant) are left out
 * because their jobs are not in the latest grid (how many, and that export
 * without --sweep lists every run); "" when none are. */
int db_sweep_runs_note(db *d, const char *sweep, const char *variant, char *note, size_t n);
/* D2_EFORMAT naming the first run and metric whose stored value is text or
 * a blob (a metric is a number or NULL), among the runs of (sweep, variant)
 * when sweep is given (after db_sweep_runs), else of variant (NULL: all). */
int db_metrics_numeric(db *d, const char *sweep, const char *variant);

/* ---- runs_wide: one row per run, columns run_id, uid, sweep, variant,
 * status, kind, mode, code_version, started_at, seed, then every param key
 * (table.key) and every metric name (prefixed "metric." if it clashes).  The
 * view is recreated whenever a write brings a new column. */
int db_wide_select(db *d, char **sql); /* the view's SELECT; sqlite3_free it */
/* runs_wide's SELECT with the provenance after the fixed columns: ended_at,
 * host, cmdline, rng, config_hash, then per input role inputs.ROLE (its
 * XXH3-128) and inputs.ROLE.path (d2moe export); sqlite3_free it */
int db_export_select(db *d, char **sql);
int db_wide_view_refresh(db *d);

/* "2026-11-25T10:00:00.123Z" */
void db_now_iso(char buf[32]);

#endif
