/* runner.h - what a sweep job of kind "simulate" does: build a sim_job from
 * the job's keys (model, device, trace, seed, table.key=value sets), run the
 * simulator, and put every effective parameter, metric and input -- plus the
 * accuracy estimate est_ppl -- into the run record.  Also the spec checker
 * that rejects unknown keys and bad values before any job starts. */
#ifndef D2_RESULTS_RUNNER_H
#define D2_RESULTS_RUNNER_H

#include "results/accuracy.h"
#include "results/db.h"
#include "results/sweep.h"

typedef struct runner_ctx {
    const accuracy_model *acc; /* NULL: est_ppl not computed */
    const char *timeline_dir;  /* NULL, or write <dir>/<job hash>.csv */
} runner_ctx;

/* sweep_run_fn for kind "simulate"; user is a runner_ctx (may be NULL). */
int runner_simulate(const sweep_job *job, db_run *run, void *user);
/* How many times a recorded trace is replayed to fill a run of `requests`
 * requests of `positions` token positions each (prompt + gen): requests
 * beyond the file's wrap around, and so do positions beyond a request's
 * length (trace/source.h).  *times = 1 when the trace is long enough;
 * why gets one line saying what was repeated. */
int runner_trace_repeats(const char *trace, int64_t requests, int64_t positions, double *times, char *why, size_t n);
/* The same for a finished run (its sim.requests, sim.prompt + sim.gen). */
typedef struct sim_result sim_result;
int runner_result_trace_repeats(const sim_result *r, const char *trace, double *times, char *why, size_t n);
/* A note into note (n bytes; "" when none) when the trace's header names
 * another model than the run's model.name: the shapes matched (the run
 * checked them), but the routing was recorded for a different model.
 * D2_OK, or trace_file_open's status. */
int runner_result_trace_model(const sim_result *r, const char *trace, char *note, size_t n);
/* sweep_check_fn: key known to the model/device/sim tables, value valid. */
/* Every effective parameter, metric and input of a simulated run, its seed,
 * status and (oom) reason, into run: what simulate, sweeps and the audit
 * store for a sim_result. */
int runner_fill_run(db_run *run, const sim_result *r);

int runner_check(const char *key, const char *value, const char *where, void *user);
/* sweep_job_check_fn for kind "simulate": would the job's configuration
 * run?  (sim_job_check: the profiles, the reading and the sets resolved,
 * the system's checks, the routing's shape; nothing is simulated.)  user is
 * a sim_job_memo (sim/sim.h) kept across the jobs of one check, or NULL.
 * A budget below one expert's level set is left to the run. */
int runner_check_job(const sweep_job *job, char *key, size_t n, void *user);
/* sweep_inputs_fn for kind "simulate": "input.ROLE=XXH3-128" lines of the
 * files the job's run would read (sim_job_files: model and device
 * profiles, the reading's file, the trace or the generator preset), by
 * content (hash_file_hex, cached per file version), so a shard on another
 * machine, with the same files elsewhere, names its jobs alike.  user is a
 * sim_job_memo or NULL. */
int runner_job_inputs(const sweep_job *job, char *buf, size_t n, void *user);
/* A loaded spec made ready to run: a --set that changes no job's effective
 * value of its key undone (sweep_spec_drop_unchanged: it is no override),
 * every job's configuration checked
 * (sweep_spec_check_jobs with runner_check_job: file:line errors) and the
 * content of the files each job reads made part of its identity
 * (sweep_spec_identify with runner_job_inputs), with one memo of the
 * profiles loaded for both.  What `d2moe sweep` and `reproduce` do before
 * opening the store. */
int runner_prepare_spec(sweep_spec *s);
/* The key a configuration error is about, from its message (d2_err_msg of
 * sim_job_check): "sim.caps", "model" (also for "generator: ..."), "trace"
 * (a message that starts with the job's trace path), or a bare field
 * ("top_k", from the profile checks after "--set: ").  "" when the message
 * names none (one that starts "FILE:LINE:", a generator preset's line).
 * *rest: the message after "KEY: " when it starts so, else msg. */
void runner_error_key(const char *msg, const char *trace, char *key, size_t n, const char **rest);
/* The units of a table.key parameter (model.*, device.*, sim.*) from its
 * table row, or "" (unknown key or unitless). */
const char *runner_param_units(const char *key);

/* readings_load, after checking that the reading's file is a regular file
 * (src/sim's loader would wait on a FIFO); NULL, "" and "none" as there. */
typedef struct readings readings;
int runner_readings_load(readings *rd, const char *name_or_path);

#endif
