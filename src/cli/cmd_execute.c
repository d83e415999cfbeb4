/* cmd_execute.c - `d2moe execute`: the options of `simulate`, but real.  The
 * simulator plans the run (its timeline gives the load and compute order);
 * src/host/exec runs that plan on this machine against a .mwq model file
 * and measures it; both results are printed side by side and, with --db,
 * stored as two runs of kind "execute": mode "sim" and mode "real".  The op
 * join of the two (host/opjoin.h) is made here, from the simulator's typed
 * operations and the run's records, and stored with the real run. */
#include "cli/cli.h"
#include "cli/simopts.h"
#include "cli/validation.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/model.h"
#include "host/calib.h"
#include "host/exec.h"
#include "host/cpupin.h"
#include "host/execplan.h"
#include "host/opjoin.h"
#include "host/valstat.h"
#include "host/valstore.h"
#include "quant/mwqfile.h"
#include "results/db.h"
#include "results/sweep.h"
#include "sim/plan.h"
#include "sim/sim.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static void usage(FILE *out)
{
    fprintf(out,
            "usage: d2moe execute --model M --device D [--policy P] [--budget SIZE]\n"
            "                     [--requests R] [--prompt N] [--gen N] [--trace FILE]\n"
            "                     [--seed S] [--set table.key=value]... [--db FILE]\n"
            "                     [--mwq FILE | --mwq-dir DIR] [--threads N] [--no-verify] [--wait spin|sleep]\n"
            "                     [--compute-cpu N|none] [--io-cpu N|none] [--no-host-watch]\n"
            "                     [--timeline FILE] [--real-timeline FILE] [--nice N]\n"
            "       d2moe execute --spec experiments/validation.ini --db FILE [--quick]\n"
            "                     [--repeat N] [--max-error PCT]\n"
            "                     [--recalibrate DIR [--probe-tol PCT] [--calib-tol PCT] [--max-retries N]]\n"
            "                     [--nice N]\n"
            "                     [--mwq-dir DIR] [--threads N] [--no-verify] [--no-host-watch] [--wait spin|sleep]\n\n"
            "Run the plan `d2moe simulate` makes with the same options for real on this\n"
            "machine: one I/O thread reads each expert level (three chunks, one pread\n"
            "each, page cache bypassed with O_DIRECT) of a .mwq model file into a fresh\n"
            "allocation, in the planner's order, never holding more expert bytes than\n"
            "the budget; compute threads (--threads, default 1) run the MWQ level-k\n"
            "kernels for each item's tokens as soon as its load is done.  Prints the\n"
            "measured makespan, queue busy times, bubbles and peak memory beside the\n"
            "simulator's prediction; --db stores both (kind execute, modes real/sim).\n\n"
            "The model file: --mwq FILE, or a synthetic one generated with the MWQ\n"
            "quantizer in --mwq-dir (default .) and reused next time.  Tensors are\n"
            "l<layer>.e<expert>.gate|up|down.  The simulator is told that a load is\n"
            "three reads: device.io_overhead_ns += 2 x flash_lat_ns (printed).\n"
            "Only nested (MWQ) systems without preloading run here.  Use a device\n"
            "profile from `d2moe calibrate` and a model whose non-expert work is ~0\n"
            "(tiny-moe): execute runs the expert layers only.  --timeline writes the\n"
            "simulator's CSV, --real-timeline the measured one (same columns).\n"
            "The op join (the simulator's operations paired with the run's, both\n"
            "makespans split into compute per level, waits for loads, hand-off,\n"
            "non-expert work and tail) is made in this process from both sides'\n"
            "typed records and stored with the real run as metrics join_*.\n"
            "--nice N: run at that scheduling priority (negative needs root): -20\n"
            "shields the measurement from other processes on a shared machine.\n"
            "--wait spin (default): the I/O thread and the compute thread poll while\n"
            "they wait for each other, as serving engines' workers do; --wait sleep:\n"
            "they block (on this VM a compute after a sleep runs up to 60%% slower at\n"
            "first, which the simulator does not model).  Stored as exec.wait.\n"
            "--compute-cpu N|none, --io-cpu N|none: the compute thread runs on CPU N,\n"
            "the I/O loop on the other (default: the first and the second CPU this\n"
            "process may use; none with one CPU); the probes run on the compute CPU.\n"
            "calibrate pins the same way by default, so its kernel rates are rates of\n"
            "the CPU the run computes on (on this project's VM the two vCPUs differed\n"
            "by 20-50%% in the same pass; docs/host.md).  Stored as exec.compute_cpu,\n"
            "exec.io_cpu.\n"
            "Host stops: during the run a real-time (SCHED_FIFO) watcher thread on each\n"
            "of the two CPUs wakes every 4 ms; a wakeup over 1 ms late means the host\n"
            "ran no guest code on that CPU meanwhile (a VM's guest cannot see it\n"
            "otherwise).  Where both were late at once the machine stood still and the\n"
            "run was pushed back by that much: printed with the error the run would\n"
            "have without it (at least that long; host_stopped_max_s: at most), stored\n"
            "as host_stopped_s, host_stopped_spans, host_late_compute_cpu_s,\n"
            "host_late_io_cpu_s (and each's _max_s), host_in_compute_lK_s (the\n"
            "compute CPU's taken time inside the level-K computes), host_watch_cpu_s\n"
            "(the watchers' cost) and exec.host_watch (measured, off, or why not: it needs\n"
            "both threads pinned and SCHED_FIFO, i.e. root).  The simulator does not\n"
            "model them (docs/log/validation.md, \"Host stops\").  --no-host-watch: no\n"
            "watchers.\n"
            "Other processes: the CPU time the kernel charged to the compute and the I/O\n"
            "CPU over the run (/proc/stat: user, nice, system) less this run's threads\n"
            "there, i.e. what other processes of this machine took from them (the\n"
            "watchers cannot see it), stored as others_compute_cpu_s, others_io_cpu_s\n"
            "and others_span_s when both threads are pinned to two CPUs and no helper\n"
            "threads run.\n\n"
            "--spec runs every point of a sweep spec of kind execute (the validation\n"
            "experiment), one process per run, one after the other, --repeat rounds\n"
            "(default 3) interleaved so machine noise spreads over the points; stores\n"
            "them in --db (params exec.spec, exec.point) and prints each point's\n"
            "predicted and measured makespan and bubble ratio (medians of the rounds)\n"
            "and its error: the median over rounds of (sim - real) / real, each\n"
            "prediction paired with its own run.  --max-error:\n"
            "exit 1 when a point's |error| is above PCT percent (the issue: 15 on a\n"
            "quiet machine, 25 in CI).  --recalibrate DIR: before every point of every\n"
            "round run `d2moe calibrate` (profile in DIR; reads of the model file the\n"
            "point's runs read, made first when missing, sampled a factor 1.25 apart\n"
            "around the model's level-chunk sizes) and use that profile\n"
            "instead of the spec's device, so a drifting machine is compared against\n"
            "rates measured seconds before.  Every run also times a kernel probe (one\n"
            "pass of levels 1..3 of one expert, one token) right before and after\n"
            "itself; with --recalibrate a run whose probe moved more than --probe-tol\n"
            "percent (default 10) from the calibration's probe is rejected (metric\n"
            "probe_ok = 0, left out of the summary and the plot) and the point is\n"
            "calibrated and run again, up to --max-retries times (default 3); so is a\n"
            "calibration whose probe differs more than --calib-tol percent (default 10)\n"
            "from the same pass predicted by its own kernel fits.\n");
}

typedef struct eff {
    model m;
    int nested, prefetch, levels, bits[8], serial;
    int64_t budget, group, lat, io_over;
    char plan[64], mem[64];
} eff;

typedef struct kv { const char *k; double v; const char *u; } kv;

static int db_metric(const char *name, double v, const char *unit, void *u) { return db_run_metric(u, name, v, unit); }

static const char *g_spec = NULL, *g_point = NULL; /* --spec children: exec.spec, exec.point */
static const char *g_wait = "spin";                /* --wait: exec.wait */
static int g_host_watch = 1;                       /* --no-host-watch: 0 (exec.host_watch) */
static int g_compute_cpu = CPUPIN_DEFAULT, g_io_cpu = CPUPIN_DEFAULT; /* --compute-cpu / --io-cpu */
static double g_probe_ref = 0, g_probe_tol = 0.10;  /* --x-probe-ref NS, --x-probe-tol F (--spec children) */
static double g_probe_before = 0, g_probe_after = 0;
static double g_cold_ref = 0, g_cold_before = 0, g_cold_after = 0; /* the cold probe: --x-cold-probe-ref NS */
static double g_touch_before = 0, g_touch_after = 0; /* its page touches per copy, ns (reported, not gated) */
static const char *g_model_file_out = NULL; /* --x-model-file FILE: make the model file, write its path there, run nothing */

static int store(const char *path, const sim_result *r, const exec_result *x, const opjoin_report *join, const char *mwq,
                 int threads, uint64_t seed)
{
    db *d;
    D2_TRY(db_open(path, &d));
    int rc = D2_OK;
    char th[16];
    snprintf(th, sizeof th, "%d", threads);
    for (int mode = 0; mode < 2 && rc == D2_OK; mode++) {
        db_run *run = db_run_new("execute", mode ? "real" : "sim");
        if (!run) { db_close(d); D2_ERROR(D2_ENOMEM, "out of memory"); }
        db_run_cmdline(run, cli_argc(), cli_argv());
        db_run_seed(run, seed);
        rc = sim_result_foreach_param(r, db_run_param_visit, run);
        if (!rc) rc = db_run_param(run, "exec.threads", th);
        if (!rc) rc = db_run_param(run, "exec.io_method", x->io_method);
        if (!rc) rc = db_run_param(run, "exec.wait", g_wait);
        if (!rc) rc = db_run_param(run, "exec.host_watch", !g_host_watch ? "off" : x->host_watched ? "measured" : x->host_watch_note);
        char cpu[2][CPUPIN_NAME_MAX];
        if (!rc) rc = db_run_param(run, "exec.compute_cpu", cpupin_arg(g_compute_cpu, cpu[0]));
        if (!rc) rc = db_run_param(run, "exec.io_cpu", cpupin_arg(g_io_cpu, cpu[1]));
        if (!rc && g_spec) rc = db_run_param(run, "exec.spec", g_spec);
        if (!rc && g_point) rc = db_run_param(run, "exec.point", g_point);
        if (!rc) rc = db_run_input(run, "mwq", mwq);
        if (!rc && mode == 0) rc = sim_result_foreach_metric(r, db_metric, run);
        if (!rc && mode == 1) {
            double T = (double)x->makespan_ns / 1e9, gen = 0;
            sim_result_metric(r, "tokens_generated", &gen);
            const kv m[] = {
                {"makespan_s", T, "s"},
                {"io_busy_s", (double)x->io_busy_ns / 1e9, "s"},
                {"compute_busy_s", (double)x->comp_busy_ns / 1e9, "s"},
                {"expert_compute_s", (double)x->comp_busy_ns / 1e9, "s"},
                {"compute_thread_cpu_s", (double)x->comp_thread_cpu_ns / 1e9, "s"},
                {"compute_thread_wall_s", (double)x->comp_thread_wall_ns / 1e9, "s"},
                {"bubble_s", (double)x->comp_idle_ns / 1e9, "s"},
                {"bubble_ratio", T > 0 ? (double)x->comp_idle_ns / 1e9 / T : 0, ""},
                {"throughput_tps", T > 0 ? gen / T : 0, "tokens/s"},
                {"tokens_generated", gen, "tokens"},
                {"io_gb", (double)x->bytes_read / 1e9, "GB"},
                {"loads", (double)x->loads, ""},
                {"peak_expert_mb", (double)x->peak_expert_bytes / 1e6, "MB"},
                {"peak_alloc_mb", (double)x->peak_alloc_bytes / 1e6, "MB"},
                {"pool_new_buffers", (double)x->pool_new_buffers, ""},
                {"pool_mb", (double)x->pool_bytes / 1e6, "MB"},
                {"peak_rss_mb", (double)x->peak_rss_bytes / 1e6, "MB"},
                {"io_wait_mem_s", (double)x->io_wait_mem_ns / 1e9, "s"},
                {"verify_max_rel", x->verify_max_rel, ""},
                {"verify_max_rel_ref", x->verify_max_rel_ref, ""},
                {"verified_tokens", (double)x->verified, "tokens"},
                {"host_loadavg_1m", calib_host_loadavg1(), ""},
            };
            for (size_t i = 0; i < sizeof m / sizeof m[0] && !rc; i++) rc = db_run_metric(run, m[i].k, m[i].v, m[i].u);
            /* how much of the pool the kernel put in huge pages (host/iobuf.h), when it can tell */
            if (!rc && x->pool_bytes > 0 && x->pool_huge_bytes >= 0)
                rc = db_run_metric(run, "pool_huge_frac", (double)x->pool_huge_bytes / (double)x->pool_bytes, "");
            const kv hw[] = {
                {"host_stopped_s", (double)x->host_stopped_ns / 1e9, "s"},
                {"host_stopped_max_s", (double)x->host_stopped_max_ns / 1e9, "s"},
                {"host_stopped_spans", (double)x->host_stopped_spans, ""},
                {"host_late_compute_cpu_s", (double)x->host_late_ns[0] / 1e9, "s"},
                {"host_late_compute_cpu_max_s", (double)x->host_late_max_ns[0] / 1e9, "s"},
                {"host_late_io_cpu_s", (double)x->host_late_ns[1] / 1e9, "s"},
                {"host_late_io_cpu_max_s", (double)x->host_late_max_ns[1] / 1e9, "s"},
                {"host_watch_cpu_s", (double)x->host_watch_cpu_ns / 1e9, "s"},
            };
            for (size_t i = 0; x->host_watched && i < sizeof hw / sizeof hw[0] && !rc; i++)
                rc = db_run_metric(run, hw[i].k, hw[i].v, hw[i].u);
            const kv ot[] = {
                {"others_compute_cpu_s", (double)x->others_ns[0] / 1e9, "s"},
                {"others_io_cpu_s", (double)x->others_ns[1] / 1e9, "s"},
                {"others_span_s", (double)x->others_span_ns / 1e9, "s"},
            };
            for (size_t i = 0; x->others_measured && i < sizeof ot / sizeof ot[0] && !rc; i++)
                rc = db_run_metric(run, ot[i].k, ot[i].v, ot[i].u);
            for (int k = 0; x->host_watched && k < x->levels && k < EXEC_HOST_LEVELS && !rc; k++) {
                char nm[48];
                snprintf(nm, sizeof nm, "host_in_compute_l%d_s", k + 1);
                rc = db_run_metric(run, nm, (double)x->host_in_compute_ns[k] / 1e9, "s");
            }
            if (!rc && g_probe_before > 0) rc = db_run_metric(run, "probe_before_ns", g_probe_before, "ns");
            if (!rc && g_probe_after > 0) rc = db_run_metric(run, "probe_after_ns", g_probe_after, "ns");
            if (!rc && g_probe_ref > 0 && g_probe_before > 0) {
                rc = db_run_metric(run, "probe_ref_ns", g_probe_ref, "ns");
                int ok = calib_probe_agrees(g_probe_before, g_probe_after, g_probe_ref, g_probe_tol);
                /* the cold probe too, when the calibration recorded one */
                if (g_cold_ref > 0) ok = ok && calib_probe_agrees(g_cold_before, g_cold_after, g_cold_ref, g_probe_tol);
                if (!rc) rc = db_run_metric(run, "probe_ok", ok, "");
            }
            if (!rc && g_cold_before > 0) rc = db_run_metric(run, "cold_probe_before_ns", g_cold_before, "ns");
            if (!rc && g_cold_after > 0) rc = db_run_metric(run, "cold_probe_after_ns", g_cold_after, "ns");
            if (!rc && g_cold_before > 0) rc = db_run_metric(run, "cold_probe_touch_before_ns", g_touch_before, "ns");
            if (!rc && g_cold_after > 0) rc = db_run_metric(run, "cold_probe_touch_after_ns", g_touch_after, "ns");
            if (!rc && g_cold_ref > 0 && g_cold_before > 0) {
                rc = db_run_metric(run, "cold_probe_ref_ns", g_cold_ref, "ns");
                if (!rc) rc = db_run_metric(run, "cold_probe_ok", calib_probe_agrees(g_cold_before, g_cold_after, g_cold_ref, g_probe_tol), "");
            }
            /* the op join of this run with its prediction (join_*: host/opjoin.h) */
            if (!rc && join) rc = opjoin_report_foreach_metric(join, db_metric, run);
        }
        db_run_status(run, "ok");
        int64_t id;
        if (!rc) rc = db_run_write(d, run, &id);
        db_run_free(run);
    }
    db_close(d);
    return rc;
}

/* The summary's arrays: [point][round] of each stored pair (run_spec) */
typedef struct spec_rows {
    size_t n;                     /* points */
    int repeat;                   /* rounds kept per point */
    double *simr, *real, *sb, *rb; /* [n * repeat]: makespans (s), bubble ratios */
    int *cnt;                     /* [n]: rounds kept */
} spec_rows;

static int spec_row(void *user, const valstore_spec_pair *p)
{
    spec_rows *a = user;
    if (p->point < 0 || (size_t)p->point >= a->n || a->cnt[p->point] >= a->repeat) return D2_OK;
    const size_t at = (size_t)p->point * (size_t)a->repeat + (size_t)a->cnt[p->point]++;
    a->simr[at] = p->sim_s;
    a->real[at] = p->real_s;
    a->sb[at] = p->sim_bubble;
    a->rb[at] = p->real_bubble;
    return D2_OK;
}

static int run_spec_points(const char *dbpath, const char *const *pass, int npass, const sweep_spec *s, int repeat,
                           double max_err, const char *recal_dir, int max_retries, const char *probe_tol, const char *calib_tol,
                           char (*mwq_of)[FILEIO_PATH_MAX])
{
    char round_dev[FILEIO_PATH_MAX] = "", probe_ref[32] = "", cold_ref[32] = "";
    int rejected = 0, rejected_cal = 0;
    size_t n = sweep_spec_size(s);
    int failed = 0;
    int64_t start_id = 0;
    { /* runs stored before this invocation are not summarised */
        db *d0;
        int rc0 = db_open(dbpath, &d0);
        if (rc0) return cli_fail(rc0);
        db_run_last_id(d0, &start_id); /* 0 when it cannot tell: every run is summarised */
        db_close(d0);
    }
    if (recal_dir && mkdir(recal_dir, 0777) != 0 && errno != EEXIST) {
        d2_err_set("execute: --recalibrate %s: %s", recal_dir, strerror(errno));
        return cli_fail(D2_EIO);
    }
    /* each point's model file (mwq_of[i], "" until found), found before its
     * first calibration, which reads it */
    const char *mwqdir_of = ".";
    for (int k = 0; k + 1 < npass; k++)
        if (!strcmp(pass[k], "--mwq-dir")) mwqdir_of = pass[k + 1];
    printf("validation %s: %zu points x %d rounds, each run in its own process, rounds interleaved\n",
           sweep_spec_name(s), n, repeat);
    for (size_t it = 0; it < n * (size_t)repeat; it++) {
      size_t i = it % n;
      for (int attempt = 0; attempt <= max_retries; attempt++) {
        const sweep_job *j = sweep_spec_job(s, i);
        if (recal_dir) {
            /* a fresh profile right before every point: on a shared VM the
             * machine's speed drifts by 2x within minutes, so a prediction
             * is only comparable with a run made under the same rates.  The
             * reads are sampled densely (factor 1.25) around the sizes this
             * model's level chunks have (V1: half the level-2 chunk .. twice
             * the level-1 chunk), where read time is not linear in size. */
            int prc = fileio_pathf(round_dev, sizeof round_dev, "%s/host-r%zu-p%zu.ini", recal_dir, it / n + 1, i);
            if (prc) return cli_fail(prc);
            char lo[32], hi[32], *cv[VALIDATION_CALIBRATE_ARGC + 5];
            /* the calibration reads the model file the run will read (made now when missing) */
            if (!mwq_of[i][0]) {
                int mrc = validation_model_file(j, mwqdir_of, i, mwq_of[i]);
                if (mrc) return cli_fail(mrc);
            }
            int ncv = validation_calibrate_argv(j, round_dev, recal_dir, "256Mi", mwq_of[i], lo, hi, cv);
            /* the calibration pins its threads as the runs will */
            char cpu[2][CPUPIN_NAME_MAX];
            if (g_compute_cpu != CPUPIN_DEFAULT) cv[ncv++] = "--compute-cpu", cv[ncv++] = (char *)cpupin_arg(g_compute_cpu, cpu[0]);
            if (g_io_cpu != CPUPIN_DEFAULT) cv[ncv++] = "--io-cpu", cv[ncv++] = (char *)cpupin_arg(g_io_cpu, cpu[1]);
            cv[ncv] = NULL;
            printf("\n== round %zu, point %zu: calibrating into %s (reads %s..%s bytes)\n", it / n + 1, i, round_dev, lo, hi);
            fflush(stdout);
            int cst, run_rc = validation_run(cv, 0, &cst);
            if (run_rc) {
                d2_err_prefix("execute: calibration before round %zu, point %zu: ", it / n + 1, i);
                return cli_fail(run_rc);
            }
            if (cst != 0) {
                d2_err_set("execute: calibration before round %zu, point %zu failed (status %d)", it / n + 1, i, cst);
                return cli_fail(D2_EIO);
            }
            double pr = calib_profile_note(round_dev, CALIB_NOTE_PROBE), fr = calib_profile_note(round_dev, CALIB_NOTE_PROBE_FIT);
            double cpr = calib_profile_note(round_dev, CALIB_NOTE_COLD_PROBE);
            probe_ref[0] = cold_ref[0] = 0; /* never the previous point's */
            if (pr > 0) snprintf(probe_ref, sizeof probe_ref, "%.0f", pr);
            if (pr > 0 && cpr > 0) snprintf(cold_ref, sizeof cold_ref, "%.0f", cpr);
            if (fr > 0 && fabs(fr - 1) > atof(calib_tol) / 100) {
                /* the machine changed speed during the calibration itself */
                rejected_cal++;
                printf("round %zu, point %zu: the calibration's probe is %.3f x its own kernel fits: rejected%s\n", it / n + 1, i,
                       fr, attempt < max_retries ? ", calibrating again" : " (no retries left)");
                continue;
            }
        }
        char *av[2 * SWEEP_MAX_AXES + 40];
        static validation_strs strs;
        char pt[32];
        snprintf(pt, sizeof pt, "%zu", i);
        int ac = validation_execute_argv(j, recal_dir ? round_dev : NULL, &strs, av);
        av[ac++] = "--db";
        av[ac++] = (char *)dbpath;
        av[ac++] = "--x-spec";
        av[ac++] = (char *)sweep_spec_name(s);
        av[ac++] = "--x-point";
        av[ac++] = pt;
        ac = validation_probe_argv(av, ac, probe_ref, probe_tol, cold_ref);
        for (int k = 0; k < npass; k++) av[ac++] = (char *)pass[k];
        av[ac] = NULL;
        printf("\n== round %zu, point %zu:", it / n + 1, i);
        for (size_t k = 0; k < j->n; k++)
            printf(" %s=%s", j->key[k], recal_dir && !strcmp(j->key[k], "device") ? round_dev : j->value[k]);
        printf("\n");
        fflush(stdout);
        int st, run_rc = validation_run(av, 0, &st);
        if (run_rc) {
            d2_err_prefix("execute: ");
            return cli_fail(run_rc);
        }
        if (st != 0) {
            failed++;
            printf("point %zu failed (status %d)\n", i, st);
            break;
        }
        valstore_pair last; /* the run just stored: its probe gate (no run found: nothing to reject) */
        if (!probe_ref[0] || valstore_pair_last(dbpath, sweep_spec_name(s), i, start_id, &last) != D2_OK || last.probe_ok)
            break;
        rejected++;
        printf("round %zu, point %zu: the machine's kernel speed moved more than %s%% from its calibration during the "
               "run: rejected%s\n", it / n + 1, i, probe_tol, attempt < max_retries ? ", measuring again" : " (no retries left)");
      }
    }
    /* the summary, from the store */
    double *sb = calloc(n * (size_t)repeat, sizeof *sb), *real = calloc(n * (size_t)repeat, sizeof *real),
           *rb = calloc(n * (size_t)repeat, sizeof *rb), *simr = calloc(n * (size_t)repeat, sizeof *simr),
           *err = calloc(n * (size_t)repeat, sizeof *err);
    int *cnt = calloc(n, sizeof *cnt);
    if (!simr || !err || !sb || !real || !rb || !cnt) {
        free(simr); free(err); free(sb); free(real); free(rb); free(cnt);
        d2_err_set("execute: out of memory");
        return cli_fail(D2_ENOMEM);
    }
    spec_rows rows = {.n = n, .repeat = repeat, .simr = simr, .real = real, .sb = sb, .rb = rb, .cnt = cnt};
    int rc = valstore_spec_pairs(dbpath, sweep_spec_name(s), start_id, spec_row, &rows);
    if (rc) {
        free(simr); free(err); free(sb); free(real); free(rb); free(cnt);
        return cli_fail(rc);
    }
    printf("\n%-6s %6s %12s %12s %9s %10s %10s   (medians over the rounds; error: median of each round's\n"
           "%63s(sim - real) / real, prediction and run paired)\n", "point", "rounds", "sim_s", "real_s", "error", "sim_bub",
           "real_bub", "");
    double sum = 0, worst = 0;
    int np = 0;
    for (size_t p = 0; p < n; p++) {
        if (!cnt[p]) { printf("%-6zu %6d  (no result)\n", p, 0); continue; }
        double *rp = real + p * (size_t)repeat, *bp = rb + p * (size_t)repeat, *sp = simr + p * (size_t)repeat,
               *ep = err + p * (size_t)repeat;
        int k = cnt[p];
        for (int r = 0; r < k; r++) ep[r] = rp[r] > 0 ? (sp[r] - rp[r]) / rp[r] : 0;
        double e = calib_median(ep, k), rm = calib_median(rp, k), bm = calib_median(bp, k), sm = calib_median(sp, k),
               sbm = calib_median(sb + p * (size_t)repeat, k);
        printf("%-6zu %6d %12.6f %12.6f %8.1f%% %10.4f %10.4f   rounds:", p, k, sm, rm, 100 * e, sbm, bm);
        for (int r = 0; r < k; r++) printf(" %+.1f%%", 100 * ep[r]);
        printf("\n");
        sum += fabs(e);
        if (fabs(e) > worst) worst = fabs(e);
        np++;
    }
    free(simr); free(err); free(sb); free(real); free(rb); free(cnt);
    if (np) printf("makespan error over %d points: mean |error| %.1f%%, max |error| %.1f%%\n", np, 100 * sum / np, 100 * worst);
    if (rejected) printf("%d runs rejected: the kernel probe moved more than %s%% from the calibration during the run\n", rejected, probe_tol);
    if (rejected_cal)
        printf("%d calibrations rejected: their probe differed more than %s%% from their own kernel fits\n", rejected_cal, calib_tol);
    if (max_err > 0 && (np < (int)n || worst * 100 > max_err)) {
        fprintf(stderr, "d2moe execute: makespan error %.1f%% above --max-error %g%% (or points missing)\n", 100 * worst, max_err);
        return 1;
    }
    if (failed) {
        fprintf(stderr, "d2moe execute: %d runs failed\n", failed);
        return 1;
    }
    return 0;
}


/* run_spec_points with room for each point's model file path (--recalibrate) */
static int run_spec(const char *dbpath, const char *const *pass, int npass, const sweep_spec *s, int repeat, double max_err,
                    const char *recal_dir, int max_retries, const char *probe_tol, const char *calib_tol)
{
    char (*mwq_of)[FILEIO_PATH_MAX] = calloc(sweep_spec_size(s) ? sweep_spec_size(s) : 1, sizeof *mwq_of);
    if (!mwq_of) { d2_err_set("execute: out of memory"); return cli_fail(D2_ENOMEM); }
    int st = run_spec_points(dbpath, pass, npass, s, repeat, max_err, recal_dir, max_retries, probe_tol, calib_tol, mwq_of);
    free(mwq_of);
    return st;
}

/* The model file a run reads: --mwq, else the one generated in --mwq-dir
 * for this model and format (made now when missing, synthetic weights
 * quantized by MWQ rtn; its name carries the container version, so a file
 * cached by a build with another layout is not picked up).  path gets it. */
static int model_file(const char *mwq, const char *mwqdir, const eff *e, char path[FILEIO_PATH_MAX])
{
    if (mwq) return fileio_pathf(path, FILEIO_PATH_MAX, "%s", mwq);
    D2_TRY(fileio_pathf(path, FILEIO_PATH_MAX, "%s/%s.b%dk%dg%lld.L%lldE%lldH%lldF%lld.v%d.mwq", mwqdir, e->m.name, e->bits[0],
                        e->levels, (long long)e->group, (long long)model_moe_layers(&e->m), (long long)e->m.experts,
                        (long long)e->m.hidden, (long long)e->m.expert_ffn, MWQFILE_VERSION));
    struct stat st;
    if (stat(path, &st) == 0) return D2_OK;
    mwq_config mc;
    mwq_config_default(&mc);
    mc.base_bits = e->bits[0];
    mc.levels = e->levels;
    mc.group = e->group;
    printf("generating %s (synthetic weights, MWQ rtn) ...\n", path);
    fflush(stdout);
    return execplan_model_generate(path, &e->m, &mc, 1); /* its "<path>.tmp" goes on a signal (core/fileio.h) */
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},        {"model", required_argument, NULL, 'm'},
        {"device", required_argument, NULL, 'd'}, SIMOPTS_LONG,
        {"trace", required_argument, NULL, 't'},  {"db", required_argument, NULL, 'D'},
        {"timeline", required_argument, NULL, 'T'}, {"real-timeline", required_argument, NULL, 'R'},
        {"mwq", required_argument, NULL, 'w'},    {"mwq-dir", required_argument, NULL, 'W'},
        {"threads", required_argument, NULL, 'j'}, {"no-verify", no_argument, NULL, 'V'},
        {"spec", required_argument, NULL, 1},    {"quick", no_argument, NULL, 2},
        {"x-spec", required_argument, NULL, 3},  {"x-point", required_argument, NULL, 4},
        {"repeat", required_argument, NULL, 5}, {"max-error", required_argument, NULL, 6},
        {"recalibrate", required_argument, NULL, 7}, {"nice", required_argument, NULL, 8},
        {"wait", required_argument, NULL, 9}, {"x-probe-ref", required_argument, NULL, 10},
        {"probe-tol", required_argument, NULL, 11}, {"max-retries", required_argument, NULL, 12},
        {"calib-tol", required_argument, NULL, 13}, {"x-cold-probe-ref", required_argument, NULL, 14},
        {"compute-cpu", required_argument, NULL, 15}, {"io-cpu", required_argument, NULL, 16},
        {"no-host-watch", no_argument, NULL, 17}, {"x-model-file", required_argument, NULL, 18},
        {NULL, 0, NULL, 0}};
    static char adjust[128];
    static simopts so;
    simopts_init(&so);
    sim_job job = {.seed = 1};
    const char *dbpath = NULL, *mwq = NULL, *mwqdir = ".", *user_tl = NULL, *real_tl = NULL;
    int threads = 1, verify = 1, quick = 0, repeat = 3, max_retries = 3, c;
    const char *probe_tol_arg = NULL, *calib_tol_arg = NULL;
    double dv;
    long lv;
    int pst;
    double max_err = 0;
    const char *recal = NULL;
    const char *spec = NULL, *pass[32];
    int npass = 0;
    while ((c = cli_getopt_long(argc, argv, "hm:d:p:b:r:P:g:t:S:s:E:D:T:R:w:W:j:V", opts, "s=", NULL)) != -1) {
        if (npass > (int)(sizeof pass / sizeof pass[0]) - 2) return cli_usage_error("execute", "too many options");
        int t = simopts_take(&so, c, optarg, "execute");
        if (t == 1) continue;
        if (t) return t;
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'm': job.model = optarg; break;
        case 'd': job.device = optarg; break;
        case 't': job.trace = optarg; break;
        case 'D': dbpath = optarg; break;
        case 'T': user_tl = optarg; break;
        case 'R': real_tl = optarg; break;
        case 'w': mwq = optarg; break;
        case 'W': /* a file, a missing folder or '': refused before any work (it failed in every run) */
            if ((pst = cli_dir_arg("execute", "--mwq-dir", optarg, 0))) return pst;
            mwqdir = optarg; pass[npass++] = "--mwq-dir"; pass[npass++] = optarg; break;
        case 'V': verify = 0; pass[npass++] = "--no-verify"; break;
        case 17: g_host_watch = 0; pass[npass++] = "--no-host-watch"; break;
        case 1: spec = optarg; break;
        case 2: quick = 1; break;
        case 9:
            if (strcmp(optarg, "spin") && strcmp(optarg, "sleep"))
                return cli_usage_error("execute", "--wait %s: expected spin or sleep", optarg);
            g_wait = optarg;
            pass[npass++] = "--wait";
            pass[npass++] = optarg;
            break;
        case 10:
            if ((pst = cli_parse_double("execute", "--x-probe-ref", optarg, 0, 1e15, 1, "ns", &g_probe_ref))) return pst;
            break;
        case 15:
        case 16:
            if (cpupin_parse(c == 15 ? "--compute-cpu" : "--io-cpu", optarg, c == 15 ? &g_compute_cpu : &g_io_cpu))
                return cli_usage_error("execute", "%s", d2_err_msg());
            pass[npass++] = c == 15 ? "--compute-cpu" : "--io-cpu";
            pass[npass++] = optarg;
            break;
        case 14:
            if ((pst = cli_parse_double("execute", "--x-cold-probe-ref", optarg, 0, 1e15, 1, "ns", &g_cold_ref))) return pst;
            break;
        case 11:
            if ((pst = cli_parse_double("execute", "--probe-tol", optarg, 0, 1000, 1, "a percentage", &dv))) return pst;
            g_probe_tol = dv / 100;
            probe_tol_arg = optarg;
            break;
        case 13:
            if ((pst = cli_parse_double("execute", "--calib-tol", optarg, 0, 1000, 1, "a percentage", &dv))) return pst;
            calib_tol_arg = optarg;
            break;
        case 12:
            if ((pst = cli_parse_long("execute", "--max-retries", optarg, 0, 100, &lv))) return pst;
            max_retries = (int)lv;
            break;
        case 3: g_spec = optarg; break;
        case 4: g_point = optarg; break;
        case 18: g_model_file_out = optarg; break;
        case 5:
            if ((pst = cli_parse_long("execute", "--repeat", optarg, 1, 100, &lv))) return pst;
            repeat = (int)lv;
            break;
        case 7: /* made when missing: a file, '' or a missing parent refused before the store */
            if ((pst = cli_dir_arg("execute", "--recalibrate", optarg, 1))) return pst;
            recal = optarg;
            break;
        case 8:
            if ((pst = cli_set_nice("execute", optarg, &lv))) return pst;
            break; /* threads and child processes inherit it */
        case 6:
            if ((pst = cli_parse_double("execute", "--max-error", optarg, 0, 1000, 1, "a percentage", &max_err))) return pst;
            break;
        case 'j':
            if ((pst = cli_parse_long("execute", "--threads", optarg, 1, 64, &lv))) return pst;
            threads = (int)lv;
            pass[npass++] = "--threads";
            pass[npass++] = optarg;
            break;
        default: return cli_bad_option("execute", argc, argv);
        }
    }
    if (mwq && strcmp(mwqdir, "."))
        return cli_usage_error("execute", "--mwq %s and --mwq-dir %s: give one (--mwq names the file, --mwq-dir where a generated one is kept)", mwq, mwqdir);
    if (simopts_finish(&so, "execute")) return 2;
    job.seed = so.seed;
    job.readings = so.readings;
    if (optind < argc) return cli_usage_error("execute", "unexpected argument '%s'", argv[optind]);
    if (spec) {
        if (!dbpath) return cli_usage_error("execute", "--spec needs --db");
        int prc = db_path_check(dbpath); /* before the store is created */
        if (prc) return cli_fail(prc);
        if (job.model || job.device || so.nsets || mwq || user_tl || real_tl || g_model_file_out)
            return cli_usage_error("execute", "--spec takes the configuration from the spec (only --db, --mwq-dir, --threads, --no-verify, --no-host-watch, --wait, --compute-cpu, --io-cpu, --quick, --repeat, --max-error, --recalibrate, --probe-tol, --calib-tol, --max-retries, --nice)");
        sweep_spec *sp;
        int src = validation_spec_load(spec, quick, &sp);
        if (src) return cli_fail(src);
        int st = run_spec(dbpath, pass, npass, sp, repeat, max_err, recal, max_retries, probe_tol_arg ? probe_tol_arg : "10",
                          calib_tol_arg ? calib_tol_arg : "10");
        sweep_spec_free(sp);
        return st;
    }
    if (!job.model) return cli_usage_error("execute", "--model is required");
    if (!job.device) return cli_usage_error("execute", "--device is required");
    job.sets = so.sets;
    { /* where the threads run: the default placement unless given */
        int prc = cpupin_resolve(&g_compute_cpu, &g_io_cpu);
        if (prc == D2_EINVAL) return cli_usage_error("execute", "%s", d2_err_msg());
        if (prc) return cli_fail(prc);
    }
    job.nsets = so.nsets;
    { /* outputs that are a FIFO, device or symlink, or one of the inputs
       * (the store, the .mwq, the trace; the profiles once read), or the
       * same file twice, and a store in a missing folder: refused before the run */
        if (mwq) fileio_note_input(mwq);
        if (job.trace) fileio_note_input(job.trace);
        int orc = dbpath ? db_path_check(dbpath) : D2_OK;
        if (orc) return cli_fail(orc);
        if (dbpath) fileio_note_store(dbpath);
        const char *outs[2] = {user_tl, real_tl};
        for (int i = 0; i < 2; i++)
            if (outs[i] && (orc = fileio_out_check(outs[i])) != D2_OK) return cli_fail(orc);
        if (user_tl && real_tl && fileio_same_target(user_tl, real_tl))
            return cli_usage_error("execute", "--timeline %s and --real-timeline %s name the same file", user_tl, real_tl);
        for (int i = 0; i < 2 && dbpath; i++)
            if (outs[i] && fileio_same_target(outs[i], dbpath))
                return cli_usage_error("execute", "%s and --db name the same file %s", i ? "--real-timeline" : "--timeline", dbpath);
    }

    /* 1. the effective configuration, without running anything */
    eff e;
    memset(&e, 0, sizeof e);
    device dvc;
    sim_params sp;
    sim_system sys;
    int rc = sim_job_resolve(&job, &e.m, &dvc, &sp, &sys);
    if (rc) return cli_fail(rc);
    e.nested = sys.nested;
    e.levels = sys.levels;
    for (int k = 0; k < sys.levels && k < 8; k++) e.bits[k] = sys.bits[k];
    snprintf(e.plan, sizeof e.plan, "%s", sys.plan);
    snprintf(e.mem, sizeof e.mem, "%s", sys.mem);
    e.budget = sp.budget;
    e.group = sp.group;
    e.lat = dvc.flash_lat_ns;
    e.io_over = dvc.io_overhead_ns;
    if (!e.nested || e.levels < 1) return cli_usage_error("execute", "the system stores separate copies per bit-width; execute runs nested (MWQ) systems only");
    if (sys.preloads) return cli_usage_error("execute", "the system preloads experts (sim.prefetch = %s); execute runs on-demand plans only", sys.prefetch);
    if (sys.hold) return cli_usage_error("execute", "a hold-in-memory system has no expert I/O to execute");
    for (int k = 1; k < e.levels; k++)
        if (e.bits[k] != e.bits[0] + k) return cli_usage_error("execute", "system bits are not nested levels b1, b1+1, ...");
    if (g_model_file_out) { /* validate's calibrations read the file the run will read: make it, say where, run nothing */
        char mpath[FILEIO_PATH_MAX];
        if ((rc = model_file(mwq, mwqdir, &e, mpath))) return cli_fail(rc);
        size_t ml = strlen(mpath);
        mpath[ml] = '\n'; /* room: fileio_pathf left it below FILEIO_PATH_MAX */
        if ((rc = calib_file_write_atomic(g_model_file_out, mpath, ml + 1))) return cli_fail(rc);
        return 0;
    }

    /* 2. the simulation, a load being three reads; its plan handed over as
     * typed operations (and written as a timeline when asked) */
    snprintf(adjust, sizeof adjust, "device.io_overhead_ns=%lld", (long long)(e.io_over + 2 * e.lat));
    so.sets[so.nsets++] = adjust; /* room reserved in simopts.sets */
    job.nsets = so.nsets;
    job.timeline = user_tl;
    execplan_builder pb;
    sim_observer pobs;
    execplan_builder_init(&pb, sys.serial, &pobs);
    /* both sides of the op join, as typed records: the simulator's
     * operations (from the same observer) and the run's (exec_opts.ops) */
    opjoin_tl *sim_ops = NULL, *real_ops = NULL;
    rc = opjoin_tl_new(&sim_ops);
    if (!rc) rc = opjoin_tl_new(&real_ops);
    if (rc) { opjoin_tl_free(sim_ops); return cli_fail(rc); }
    pb.ops = sim_ops;
    job.obs = &pobs;
    sim_result *r = NULL;
    rc = sim_job_run(&job, &r);
    exec_plan plan;
    int prc = execplan_builder_finish(&pb, &plan);
    if (rc || prc) {
        if (!prc) execplan_free(&plan);
        sim_result_free(r);
        opjoin_tl_free(sim_ops);
        opjoin_tl_free(real_ops);
        return cli_fail(rc ? rc : prc);
    }
    if (strcmp(sim_result_status(r), "ok")) {
        opjoin_tl_free(sim_ops);
        opjoin_tl_free(real_ops);
        execplan_free(&plan);
        d2_err_set("execute: the simulator says this configuration does not fit: %s", sim_result_reason(r));
        sim_result_free(r);
        return cli_fail(D2_ERANGE);
    }

    /* 3. the model file */
    char path[FILEIO_PATH_MAX];
    rc = model_file(mwq, mwqdir, &e, path);
    if (rc) { opjoin_tl_free(sim_ops); opjoin_tl_free(real_ops); execplan_free(&plan); sim_result_free(r); return cli_fail(rc); }
    exec_store store_;
    rc = execplan_store_open(&store_, path, &e.m, e.levels, e.bits[0], e.group);
    if (rc) { opjoin_tl_free(sim_ops); opjoin_tl_free(real_ops); execplan_free(&plan); sim_result_free(r); return cli_fail(rc); }
    for (int k = 1; k <= e.levels && rc == D2_OK; k++) {
        int64_t want = model_expert_level_bytes(&e.m, e.bits[0], k, e.group), got = exec_store_unit_bytes(&store_, 0, 0, (uint32_t)k);
        if (want != got) {
            d2_err_set("%s: level %d of an expert is %lld bytes, the simulator counts %lld", path, k, (long long)got, (long long)want);
            rc = D2_EFORMAT;
        }
    }

    /* 4. run it */
    exec_result x;
    FILE *rt = NULL;
    fileio_out *rto = NULL; /* a regular file (or new), written through OUT.tmp */
    if (rc == D2_OK && real_tl) rc = fileio_out_open(real_tl, &rto, &rt);
    if (rt) fprintf(rt, "%s\n", SIM_TIMELINE_HEADER);
    /* weight buffers stay mapped once touched (a server's weight pool):
     * below 32 MiB glibc serves them from the heap and never trims it */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
    exec_opts o = {.budget = e.budget, .threads = threads, .seed = job.seed, .verify = verify, .timeline = rt, .prefault = 1,
                   .sleep_wait = !strcmp(g_wait, "sleep"), .ops = real_ops, .compute_cpu = g_compute_cpu, .io_cpu = g_io_cpu,
                   .host_watch = g_host_watch};
    /* the probes run where the compute thread will (calibrate timed its
     * kernels there); exec_run moves this thread to the I/O CPU for the run */
    cpupin_saved main_old = {.valid = 0};
    if (rc == D2_OK) rc = cpupin_self(o.compute_cpu, &main_old);
    /* the kernel probe right before and after the timed run (untimed):
     * did the machine keep its speed? */
    calib_probe *probe = NULL;
    if (rc == D2_OK && calib_probe_new(e.m.hidden, e.m.expert_ffn, &probe) != D2_OK) {
        fprintf(stderr, "d2moe execute: note: no kernel probe (%s)\n", d2_err_msg()); /* the run itself does not need it */
        probe = NULL;
    }
    /* and on weights from DRAM (a pool of copies, calibrate's pool size),
     * when the calibration recorded a cold probe to compare with */
    calib_cold_probe *cprobe = NULL;
    if (rc == D2_OK && g_cold_ref > 0 && calib_cold_probe_new(e.m.hidden, e.m.expert_ffn, CALIB_COLD_PROBE_POOL_BYTES, &cprobe) != D2_OK) {
        fprintf(stderr, "d2moe execute: note: no cold probe (%s)\n", d2_err_msg());
        cprobe = NULL;
    }
    if (rc == D2_OK && cprobe) g_cold_before = calib_cold_probe_run(cprobe, 21, &g_touch_before);
    if (rc == D2_OK && probe) g_probe_before = calib_probe_run(probe, 21);
    if (rc == D2_OK) rc = exec_run(&store_, &plan, &o, &x);
    if (rc == D2_OK && probe) g_probe_after = calib_probe_run(probe, 21);
    if (rc == D2_OK && cprobe) g_cold_after = calib_cold_probe_run(cprobe, 21, &g_touch_after);
    calib_probe_free(probe);
    calib_cold_probe_free(cprobe);
    cpupin_restore(&main_old);
    if (rto) {
        if (rc == D2_OK && ferror(rt)) { d2_err_set("%s: write failed", real_tl); rc = D2_EIO; }
        if (rc == D2_OK) rc = fileio_out_commit(rto);
        else fileio_out_abort(rto);
    }
    exec_store_close(&store_);
    execplan_free(&plan);
    /* the op join, in this process: the simulator's typed operations against
     * the run's (no timeline CSV read back) */
    opjoin_report join;
    if (rc == D2_OK) rc = opjoin_join(sim_ops, real_ops, &join);
    opjoin_tl_free(sim_ops);
    opjoin_tl_free(real_ops);
    if (rc) { sim_result_free(r); return cli_fail(rc); }

    /* 5. report */
    double sm, sio, scomp, sbub, sbr, speak;
    sim_result_metric(r, "makespan_s", &sm);
    sim_result_metric(r, "io_busy_s", &sio);
    sim_result_metric(r, "compute_busy_s", &scomp);
    sim_result_metric(r, "bubble_s", &sbub);
    sim_result_metric(r, "bubble_ratio", &sbr);
    sim_result_metric(r, "peak_expert_mb", &speak);
    double T = (double)x.makespan_ns / 1e9;
    printf("plan: %s, %lld loads, %lld computes; %s; model file %s\n", e.plan, (long long)x.loads, (long long)x.computes,
           adjust, path);
    printf("%-16s %12s %12s %9s\n", "metric", "simulated", "measured", "error");
    printf("%-16s %12.6f %12.6f %8.1f%%\n", "makespan_s", sm, T, 100 * valstat_error(sm, T));
    printf("%-16s %12.6f %12.6f %8.1f%%\n", "io_busy_s", sio, (double)x.io_busy_ns / 1e9, 100 * valstat_error(sio, (double)x.io_busy_ns / 1e9));
    printf("%-16s %12.6f %12.6f %8.1f%%\n", "compute_busy_s", scomp, (double)x.comp_busy_ns / 1e9,
           100 * valstat_error(scomp, (double)x.comp_busy_ns / 1e9));
    printf("%-16s %12s %12.6f   (CPU time of the compute thread over the run, of %.6f s wall; its waits %s)\n",
           "compute_thread_cpu_s", "-", (double)x.comp_thread_cpu_ns / 1e9, (double)x.comp_thread_wall_ns / 1e9,
           o.sleep_wait ? "sleep" : "spin, so CPU = wall unless the thread was kept off the CPU");
    printf("%-16s %12.6f %12.6f\n", "bubble_s", sbub, (double)x.comp_idle_ns / 1e9);
    printf("%-16s %12.4f %12.4f\n", "bubble_ratio", sbr, T > 0 ? (double)x.comp_idle_ns / 1e9 / T : 0);
    printf("%-16s %12.3f %12.3f   (budget %.3f MB; allocations with padding %.3f MB)\n", "peak_expert_mb", speak,
           (double)x.peak_expert_bytes / 1e6, (double)e.budget / 1e6, (double)x.peak_alloc_bytes / 1e6);
    printf("%-16s %12s %12.1f\n", "peak_rss_mb", "-", (double)x.peak_rss_bytes / 1e6);
    printf("probe: %.1f us before, %.1f us after the run", g_probe_before / 1e3, g_probe_after / 1e3);
    if (g_probe_ref > 0 && g_probe_before > 0)
        printf(" (calibrated %.1f us: %s within %.0f%%)", g_probe_ref / 1e3,
               calib_probe_agrees(g_probe_before, g_probe_after, g_probe_ref, g_probe_tol) ? "both" : "NOT both",
               100 * g_probe_tol);
    printf("\n");
    if (g_cold_before > 0)
        printf("cold probe: %.1f us before, %.1f us after the run (calibrated %.1f us: %s within %.0f%%; the copies' pages "
               "touched first: %.1f us before, %.1f us after)\n", g_cold_before / 1e3, g_cold_after / 1e3, g_cold_ref / 1e3,
               calib_probe_agrees(g_cold_before, g_cold_after, g_cold_ref, g_probe_tol) ? "both" : "NOT both", 100 * g_probe_tol,
               g_touch_before / 1e3, g_touch_after / 1e3);
    char cpus[2][CPUPIN_NAME_MAX];
    printf("threads: compute (and the probes) on %s, the I/O loop on %s\n", cpupin_words(g_compute_cpu, cpus[0]),
           cpupin_words(g_io_cpu, cpus[1]));
    printf("io: %s, %.3f GB read, %.3f s waiting for budget room; load average %.2f\n", x.io_method,
           (double)x.bytes_read / 1e9, (double)x.io_wait_mem_ns / 1e9, calib_host_loadavg1());
    if (x.pool_huge_bytes >= 0)
        printf("weight pool: %.1f MB read into, %.1f MB of it in huge pages (calibrate reads into the same kind)\n",
               (double)x.pool_bytes / 1e6, (double)x.pool_huge_bytes / 1e6);
    if (x.host_watched)
        printf("host stops: the machine stood still %.3f-%.3f s in %lld spans within the makespan (compute CPU taken away "
               "%.3f-%.3f s, I/O CPU %.3f-%.3f s; the watchers' own CPU time %.4f s); the error without the stops %+.1f%%\n",
               (double)x.host_stopped_ns / 1e9, (double)x.host_stopped_max_ns / 1e9, (long long)x.host_stopped_spans,
               (double)x.host_late_ns[0] / 1e9, (double)x.host_late_max_ns[0] / 1e9, (double)x.host_late_ns[1] / 1e9,
               (double)x.host_late_max_ns[1] / 1e9, (double)x.host_watch_cpu_ns / 1e9,
               100 * valstat_error(sm, T - (double)x.host_stopped_ns / 1e9));
    if (x.host_watched) {
        printf("host stops inside the computes (the compute CPU taken, lower bound):");
        for (int k = 0; k < x.levels && k < EXEC_HOST_LEVELS; k++)
            printf("%s level %d %.3f s", k ? "," : "", k + 1, (double)x.host_in_compute_ns[k] / 1e9);
        printf("\n");
    } else if (g_host_watch)
        printf("host stops: %s\n", x.host_watch_note);
    if (x.others_measured)
        printf("other processes: %.3f s on the compute CPU, %.3f s on the I/O CPU in the run's %.3f s (%.1f%%, %.1f%%; "
               "/proc/stat less this run's threads)\n",
               (double)x.others_ns[0] / 1e9, (double)x.others_ns[1] / 1e9, (double)x.others_span_ns / 1e9,
               x.others_span_ns > 0 ? 100.0 * (double)x.others_ns[0] / (double)x.others_span_ns : 0,
               x.others_span_ns > 0 ? 100.0 * (double)x.others_ns[1] / (double)x.others_span_ns : 0);
    {
        /* a single run is read as a comparison: say when validate would not
         * count it (its probe and busy gates at their defaults) */
        char why[320] = "";
        size_t wl = 0;
        if (g_probe_ref > 0 && g_probe_before > 0 && !calib_probe_agrees(g_probe_before, g_probe_after, g_probe_ref, g_probe_tol))
            wl += (size_t)snprintf(why + wl, sizeof why - wl, "the kernel probe moved more than %.0f%% from the calibration",
                                   100 * g_probe_tol);
        if (g_cold_before > 0 && g_cold_ref > 0 && !calib_probe_agrees(g_cold_before, g_cold_after, g_cold_ref, g_probe_tol))
            wl += (size_t)snprintf(why + wl, sizeof why - wl, "%sthe cold probe moved more than %.0f%% from the calibration",
                                   wl ? "; " : "", 100 * g_probe_tol);
        double others_pct = x.others_measured && x.others_span_ns > 0 ? 100.0 * (double)x.others_ns[0] / (double)x.others_span_ns : 0;
        if (others_pct > VALSTAT_BUSY_TOL_PCT && wl < sizeof why)
            wl += (size_t)snprintf(why + wl, sizeof why - wl, "%sother processes took %.1f%% of the compute CPU", wl ? "; " : "",
                                   others_pct);
        if (wl)
            printf("caution: %s: the machine, not the simulator, may explain this error; `d2moe validate` would reject "
                   "this run (docs/host.md)\n", why);
    }
    if (verify)
        printf("verify: %lld tokens; max relative difference %.3g to the one-shot kernels, %.3g to the double reference\n",
               (long long)x.verified, x.verify_max_rel, x.verify_max_rel_ref);
    int ic = opjoin_report_term(&join, "compute_l1");
    printf("op join: %lld operations paired (%lld simulated only, %lld real only); compute_l1 %.6f s simulated, %.6f s "
           "measured%s\n", (long long)join.matched, (long long)join.pred_only, (long long)join.real_only,
           ic >= 0 ? (double)join.term[ic].pred_ns / 1e9 : 0, ic >= 0 ? (double)join.term[ic].real_ns / 1e9 : 0,
           dbpath ? " (all terms stored with the real run: join_*)" : "");
    if (dbpath && (rc = store(dbpath, r, &x, &join, path, threads, job.seed))) { sim_result_free(r); return cli_fail(rc); }
    sim_result_free(r);
    return 0;
}

const cli_cmd cli_cmd_execute = {"execute", "run the simulator's plan for real on this host and compare (tiny-moe)", run};
