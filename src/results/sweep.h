/* sweep.h - declarative experiments: a spec (experiments/<name>.ini) whose
 * axes expand to a grid of jobs, run by N worker processes into one results
 * store, resumable and shardable.
 *
 * Spec: one [sweep] section.  Reserved keys: name, kind (what runs a job;
 * the caller's runner decides), description, zip.  Every other key is an
 * axis: model, device, trace, seed, or any "table.key" parameter (a --set).
 * An axis value is a comma list; an item may be a range lo..hi:step
 * (additive) or lo..hi*factor (geometric), numbers with k/M/G suffixes.
 * Axes are crossed (cartesian product, in file order, last axis fastest)
 * except axes named together in `zip = a b | c d`, which advance together
 * and must have equal lengths.  An optional [quick] section gives smaller
 * value lists for some axes, used instead when quick mode is asked for.  A job is identified by the XXH3-128 of its
 * canonical text (sorted key=value lines, then the content hashes of the
 * files it reads: sweep_spec_identify) and the code version: a job
 * already stored is skipped, so a killed sweep reruns to completion with no
 * lost and no duplicated rows.  The sweep's name is part of a job's text,
 * so the same configuration in two sweeps is stored for each.  Nothing here
 * knows what a job computes. */
#ifndef D2_RESULTS_SWEEP_H
#define D2_RESULTS_SWEEP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "results/db.h"

#define SWEEP_MAX_AXES 32
/* Bytes of a job's identity text (sweep_job.text) and of one of its
 * "key=value" lines: a job that does not fit is refused (D2_ERANGE), never
 * cut short into another job's identity */
#define SWEEP_JOB_TEXT_MAX 4096
#define SWEEP_KV_MAX 600

typedef struct sweep_job {
    size_t index;                 /* position in the grid, 0-based */
    size_t n;                     /* number of key=value pairs */
    const char *key[SWEEP_MAX_AXES];
    const char *value[SWEEP_MAX_AXES];
    char inputs[1024];            /* "input.ROLE=XXH3-128\n" lines of the files the job reads
                                     (sweep_spec_identify), "" = not identified */
    char text[SWEEP_JOB_TEXT_MAX]; /* "sweep=<name>\n" + canonical "key=value\n" lines, sorted,
                                     then the inputs lines */
    char hash[33];                /* XXH3-128 hex of text */
} sweep_job;

typedef struct sweep_spec sweep_spec;

/* Checks one axis value before anything runs; returns a status and sets a
 * message that starts with `where` ("file:line"). */
typedef int (*sweep_check_fn)(const char *key, const char *value, const char *where, void *user);

/* quick != 0: the [quick] section's values replace those of the same axes
 * (a smaller grid for a first look). */
/* sets: "key=value" overrides from the command line (each axis becomes that
 * one value, or a new axis); may be NULL.  A value the spec's axis already
 * holds is no override (the grid narrows to it; the variant stays). */
int sweep_spec_load(const char *path, int quick, const char *const *sets, size_t nsets,
                    sweep_check_fn check, void *user, sweep_spec **out);
void sweep_spec_free(sweep_spec *s);
/* Does the spec have a [quick] section with at least one axis?  (Without
 * one, quick = 1 loads the full grid.) */
int sweep_spec_has_quick(const sweep_spec *s);
const char *sweep_spec_name(const sweep_spec *s);
const char *sweep_spec_kind(const sweep_spec *s);
const char *sweep_spec_path(const sweep_spec *s);
const char *sweep_spec_description(const sweep_spec *s);
size_t sweep_spec_size(const sweep_spec *s);
const sweep_job *sweep_spec_job(const sweep_spec *s, size_t i);
/* Names the variant of this sweep's runs (sweep --as NAME; see db.h);
 * it becomes part of every job's identity.  Without it, a run's variant is
 * derived from the overrides (the sets given to sweep_spec_load) and the
 * reading it ran with. */
int sweep_spec_name_variant(sweep_spec *s, const char *name);
/* Is a --set a change for this job?  with: the job as run; without: the
 * same job as the spec alone makes it (key left out, or the spec's own
 * value).  *same = 0 when the effective configuration differs (or cannot
 * be told); the status of the check itself. */
typedef int (*sweep_same_fn)(const sweep_job *with, const sweep_job *without, const char *key, int *same, void *user);
/* A --set of a key the spec gives one value (a value it does not already
 * have, which sweep_spec_load judges alone) or no value: when `same` finds
 * no job it changes (e.g. a profile's or the default value), it is no
 * override; it is undone, so the jobs and the variant are the spec's own. */
int sweep_spec_drop_unchanged(sweep_spec *s, sweep_same_fn same, void *user);
/* Canonical text of the overrides ("" = none): the --set values that
 * change the spec's jobs. */
const char *sweep_spec_overrides(const sweep_spec *s);
/* The --set values that are no override, "--set k=v, --set k=v" ("" = none). */
const char *sweep_spec_unchanged(const sweep_spec *s);
/* The variant name its runs get when they ran without a reading. */
void sweep_spec_variant(const sweep_spec *s, char out[DB_VARIANT_MAX]);
/* The files a job reads, as "input.ROLE=HASH\n" lines (in a fixed order) into
 * buf (n bytes): a status; user is the caller's. */
typedef int (*sweep_inputs_fn)(const sweep_job *job, char *buf, size_t n, void *user);
/* Makes the content of every file a job reads part of its identity: each
 * job's text gets fn's lines and its hash is recomputed, so a changed
 * profile, reading, trace or preset makes its jobs new (they run again)
 * and "already stored" means the same text, inputs and code version. */
int sweep_spec_identify(sweep_spec *s, sweep_inputs_fn fn, void *user);
/* Value of key in job, or NULL. */
const char *sweep_job_get(const sweep_job *j, const char *key);

/* Checks one job's whole configuration (its values together) without
 * running it: returns a status and sets a message; on failure writes to key
 * (n bytes) the job key the message is about ("" = none known). */
typedef int (*sweep_job_check_fn)(const sweep_job *job, char *key, size_t n, void *user);
/* Every job of the grid (of every shard, so that each shard fails alike),
 * through check, before anything runs or is stored.  The first job that
 * fails gives its status and one line "FILE:LINE: KEY: message": LINE is
 * where the blamed key's value list is written (the [quick] one under
 * quick mode; a --set override names "--set KEY=VALUE" instead).  A key
 * that is no axis of the spec (a setting from a reading or a profile) is
 * blamed on the readings axis, else the model axis, else the first axis. */
int sweep_spec_check_jobs(const sweep_spec *s, sweep_job_check_fn check, void *user);

/* Runs one job: fills the run's params, metrics and status.  A non-OK
 * return records the run as failed (with its message) and the sweep goes on. */
typedef int (*sweep_run_fn)(const sweep_job *job, db_run *run, void *user);

/* Batches: each process (the sweep itself with one worker, else each
 * worker) keeps the runs it finished in memory and commits them together,
 * in ONE transaction, when batch_runs are waiting or batch_ms have passed
 * since the first of them started (checked when a job ends), and at the
 * end.  A run's rows are the same as when written alone; a job another
 * process stored meanwhile is left out at commit (counted skipped).  A
 * kill -9 loses the waiting runs (at most batch_runs, about batch_ms of
 * work plus one job), which a rerun computes again (sweep_job_stored);
 * after sweep_interrupt the jobs in progress finish and everything
 * finished is committed before sweep_execute returns. */
#define SWEEP_BATCH_RUNS 32   /* runs per transaction, default */
#define SWEEP_BATCH_MS 1000   /* ms after the first waiting run started, default */

typedef struct sweep_opts {
    int workers;            /* processes, >= 1 */
    int shard_i, shard_n;   /* run jobs with index % shard_n == shard_i */
    FILE *progress;         /* NULL: quiet */
    int progress_tty;       /* redraw one bar line instead of printing lines */
    sweep_run_fn run;
    void *user;
    int argc;               /* command line stored with each run */
    char **argv;
    int batch_runs;         /* runs per transaction, >= 1; 0: SWEEP_BATCH_RUNS */
    int batch_ms;           /* ms, > 0; 0: SWEEP_BATCH_MS */
    size_t stop_after;      /* test hook: each process stops itself (SIGSTOP) once after running
                               this many jobs, after the batch check; 0: never */
} sweep_opts;

typedef struct sweep_stats {
    size_t total;   /* jobs in this shard */
    size_t skipped; /* already stored for this code version */
    size_t done;    /* run now, ok or oom */
    size_t failed;  /* run now, failed */
    double wall_s;  /* elapsed, seconds */
    char first_error[512]; /* message of the first failed job ("" = none); all are in params sweep.error */
    int first_status;      /* its d2 status (D2_OK = none): bad input gives exit 2 like simulate */
    int interrupted;       /* the signal given to sweep_interrupt (0 = none): the sweep stopped early,
                              every finished run committed */
} sweep_stats;

int sweep_execute(const sweep_spec *s, const char *db_path, const sweep_opts *o, sweep_stats *st);

/* Asks a running sweep_execute to stop (called in the sweep's process or
 * in one of its workers, it stops them all): no new job starts, the jobs
 * in progress finish, and every finished run is committed; sweep_execute
 * then returns with st->interrupted = sig.  Async-signal-safe (for a SIGINT/SIGTERM
 * handler); returns how many times it was called, so that a handler can
 * let a second signal stop the process at once.  The request holds until
 * sweep_interrupt_reset: a later sweep_execute starts no job and returns
 * interrupted too. */
int sweep_interrupt(int sig);
/* The signal sweep_interrupt was given since the last reset (0: none),
 * whether or not a sweep was running to see it. */
int sweep_interrupted(void);
/* Forget an earlier sweep_interrupt (call before installing the handler
 * that calls it; not async-signal-safe with respect to that handler). */
void sweep_interrupt_reset(void);

/* Is this job stored (ok/oom) for this code version? */
int sweep_job_stored(db *d, const sweep_job *j, int *stored);

#endif
