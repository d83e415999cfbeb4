/* cmd_sweep.c - `d2moe sweep SPEC [--db FILE] [-j N] [--shard I/N]`: run an
 * experiment grid into a results store, resumably (see src/results/sweep.h). */
#include "cli/cli.h"
#include "sim/readings.h"
#include "core/err.h"
#include "core/param.h"
#include "results/accuracy.h"
#include "results/runner.h"
#include "results/sweep.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: d2moe sweep SPEC.ini [--db FILE] [-j N] [--shard I/N] [--timelines DIR] [--curve CSV] [--quick] [--readings NAME] [--as NAME] [--set key=value]... [--quiet]\n\n"
            "Expand the [sweep] spec into a grid of simulator runs and run them on N worker\n"
            "processes into the results store (default results/d2moe.db).  Resumable: a job\n"
            "already stored (the same keys, the same content of the profiles, reading,\n"
            "trace or preset it reads, the same code version) is skipped, so an interrupted\n"
            "sweep is completed by running the same command again.  Each worker commits its\n"
            "finished runs together, 32 at a time or 1 s after the first of them started; on\n"
            "SIGINT/SIGTERM the jobs in progress finish and every finished run is stored, and\n"
            "kill -9 loses the uncommitted ones (results/README.md).  Figures show the jobs\n"
            "of the latest sweep of a spec (its grid), each job's latest run.  --shard I/N runs only jobs with\n"
            "index %% N == I (0 <= I < N), e.g. one Slurm array task each; merge the shards\n"
            "with 'd2moe merge'.  Every run gets est_ppl from the accuracy model (the curve\n"
            "CSV, default experiments/accuracy/llama-moe-wikitext2.csv, and the store's\n"
            "quant_errors table; left empty, with a note naming d2moe reproduce and d2moe\n"
            "quantize, when that table is empty).  --quick uses the spec's\n"
            "[quick] section (smaller value lists) for a first look; a spec without one\n"
            "runs its full grid, with a note saying so.  --set key=value\n"
            "fixes one axis to one value (or adds it) for every job, e.g. --set\n"
            "device.flash_bw=7G to change one assumption and rerun.  --readings NAME\n"
            "(= --set readings=NAME) applies a reading set to every job; a spec may also\n"
            "sweep `readings = datasheet, paper-testbed` like any axis.  The summary line\n"
            "names the reading(s) the grid ran under (default datasheet).\n\n"
            "Variants: every run records the assumptions it ran with beyond the spec's\n"
            "axes: by default \"base\" (no --set, no --readings) or \"v\" + a digest of\n"
            "those overrides; --as NAME names them.  A --set or --readings that changes\n"
            "no job is no override: a value the spec's axis already has (one of a swept\n"
            "axis's values narrows the grid to it), or, for a key the spec does not give,\n"
            "the value every job has anyway (profile, reading or default); its runs are\n"
            "the spec's own variant's.  Figures, summaries and exports show\n"
            "one variant (--variant NAME, default the spec's own); 'd2moe db info FILE'\n"
            "lists them.\n\n"
            "Spec keys: name, kind (simulate), description, zip = a b | c d, and axes:\n"
            "model, device, trace, seed, readings, or any table.key (model.*, device.*, sim.*).\n"
            "Values: comma lists; ranges lo..hi:step or lo..hi*factor.\n");
}

/* "reading NAME" or "readings A, B" of the grid's jobs (a spec may sweep
 * them; a job that names none runs under READINGS_DEFAULT), for the summary:
 * the same grid gives other numbers under another reading */
static void readings_of(const sweep_spec *s, char *buf, size_t n)
{
    const char *seen[16];
    size_t ns = 0, more = 0;
    for (size_t i = 0; i < sweep_spec_size(s); i++) {
        const char *r = sweep_job_get(sweep_spec_job(s, i), "readings");
        if (!r || !*r) r = READINGS_DEFAULT;
        size_t k = 0;
        while (k < ns && strcmp(seen[k], r)) k++;
        if (k < ns) continue;
        if (ns < sizeof seen / sizeof *seen) seen[ns++] = r;
        else more = 1;
    }
    size_t used = (size_t)snprintf(buf, n, "reading%s ", ns > 1 ? "s" : "");
    for (size_t k = 0; k < ns && used < n; k++) used += (size_t)snprintf(buf + used, n - used, "%s%s", k ? ", " : "", seen[k]);
    if (more && used < n) snprintf(buf + used, n - used, ", ...");
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},     {"db", required_argument, NULL, 'd'},
        {"jobs", required_argument, NULL, 'j'}, {"shard", required_argument, NULL, 's'},
        {"timelines", required_argument, NULL, 't'}, {"curve", required_argument, NULL, 'c'},
        {"quiet", no_argument, NULL, 'q'},    {"quick", no_argument, NULL, 'Q'},
        {"set", required_argument, NULL, 'S'}, {"readings", required_argument, NULL, 'R'},
        {"as", required_argument, NULL, 'A'}, {NULL, 0, NULL, 0}};
    const char *sets[64];
    char rdset[PARAM_STR_MAX + 16] = "";
    size_t nsets = 0;
    const char *dbp = "results/d2moe.db", *tl = NULL, *curve = NULL, *as = NULL;
    int jobs = 1, si = 0, sn = 1, quiet = 0, quick = 0, c;
    while ((c = cli_getopt_long(argc, argv, "hd:j:s:t:c:q", opts, "S=", NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'd': dbp = optarg; break;
        case 'j': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 256) return cli_usage_error("sweep", "-j %s: expected 1..256 workers", optarg);
            jobs = (int)v;
            break;
        }
        case 's': {
            char extra;
            if (sscanf(optarg, "%d/%d%c", &si, &sn, &extra) != 2 || sn < 1 || si < 0 || si >= sn)
                return cli_usage_error("sweep", "--shard %s: expected I/N with 0 <= I < N", optarg);
            break;
        }
        case 't': tl = optarg; break;
        case 'c': curve = optarg; break;
        case 'q': quiet = 1; break;
        case 'A': as = optarg; break;
        case 'Q': quick = 1; break;
        case 'S':
            if (nsets == 64) return cli_usage_error("sweep", "too many --set options (64 at most)");
            sets[nsets++] = optarg;
            break;
        case 'R':
            if (nsets == 64) return cli_usage_error("sweep", "too many --set options (64 at most)");
            if ((size_t)snprintf(rdset, sizeof rdset, "readings=%s", optarg) >= sizeof rdset)
                return cli_usage_error("sweep", "--readings %s: name too long", optarg);
            sets[nsets++] = rdset;
            break;
        default: return cli_bad_option("sweep", argc, argv);
        }
    }
    if (argc - optind != 1) return cli_usage_error("sweep", "expected one SPEC.ini");
    /* --readings NAME is --set readings=NAME: with both, one was dropped without a word */
    for (size_t i = 0; rdset[0] && i < nsets; i++)
        if (sets[i] != rdset && !strncmp(sets[i], "readings=", 9))
            return cli_usage_error("sweep", "readings given twice (--readings %s, then --set %s): give it once", rdset + 9, sets[i]);
    if (rdset[0]) { /* named as typed: --readings NAME, not the --set it becomes */
        readings rd;
        if (runner_readings_load(&rd, rdset + 9) != D2_OK) {
            d2_err_prefix("--readings %s: ", rdset + 9);
            return cli_fail(D2_EINVAL);
        }
    }
    struct stat tst;
    if (tl && (stat(tl, &tst) != 0 || !S_ISDIR(tst.st_mode)))
        return cli_usage_error("sweep", "--timelines %s: not a directory", tl);
    sweep_spec *s;
    int rc = sweep_spec_load(argv[optind], quick, sets, nsets, runner_check, NULL, &s);
    if (rc) return cli_fail(rc);
    if (strcmp(sweep_spec_kind(s), "simulate") != 0) {
        rc = cli_usage_error("sweep", "%s: kind = %s: only 'simulate' sweeps run here", argv[optind], sweep_spec_kind(s));
        sweep_spec_free(s);
        return rc;
    }
    /* --quick on a spec without [quick]: the full grid runs (the spec's
     * smallest), said before any run so a large one can be stopped */
    if (quick && !sweep_spec_has_quick(s))
        fprintf(stderr, "d2moe sweep: note: --quick: %s has no [quick] section, so its full grid of %zu jobs runs\n", argv[optind],
                sweep_spec_size(s));
    /* every job's configuration as a run would resolve it, before the store
     * is opened: a bad combination stops here, naming its spec line */
    if ((rc = runner_prepare_spec(s)) != D2_OK) { sweep_spec_free(s); return cli_fail(rc); }
    if (as && (rc = sweep_spec_name_variant(s, as)) != D2_OK) { sweep_spec_free(s); return cli_fail(rc); }
    if (!quiet && *sweep_spec_unchanged(s))
        fprintf(stderr, "d2moe sweep: note: not overrides, as they change no job (the value the spec, a profile, the reading or the "
                        "default gives; one of a swept axis's values narrows the grid to it): %s\n", sweep_spec_unchanged(s));
    db *d;
    /* the curve is read whole (a missing, empty, oversized or malformed
     * file, a directory, FIFO or device refused) before the store is
     * opened: a refused --curve leaves no new store behind */
    if (curve) {
        accuracy_model *chk = NULL;
        if ((rc = accuracy_model_load(curve, NULL, &chk)) != D2_OK) { sweep_spec_free(s); return cli_fail(rc); }
        accuracy_model_free(chk);
    }
    if ((rc = db_open(dbp, &d)) != D2_OK) { sweep_spec_free(s); return cli_fail(rc); }
    if (as && (rc = db_variant_usable(d, as, sweep_spec_overrides(s))) != D2_OK) {
        db_close(d);
        sweep_spec_free(s);
        return cli_fail(rc);
    }
    accuracy_model *acc = NULL;
    rc = accuracy_model_load_default(curve, d, &acc);
    db_close(d);
    if (rc) { sweep_spec_free(s); return cli_fail(rc); }
    /* say it when est_ppl cannot be computed, and how to get it */
    if (!quiet && isnan(accuracy_bits_error(acc, "nested", 4)))
        fprintf(stderr, "d2moe sweep: note: %s has no quantizer error table (quant_errors), so est_ppl is stored empty; "
                        "'d2moe reproduce' fills it (step 1), or 'd2moe quantize ... --db %s' (docs/mwq.md)\n", dbp, dbp);
    runner_ctx ctx = {acc, tl};
    sweep_opts o = {.workers = jobs, .shard_i = si, .shard_n = sn, .progress = quiet ? NULL : stderr, .progress_tty = isatty(2),
                    .run = runner_simulate, .user = &ctx, .argc = cli_argc(), .argv = cli_argv()};
    cli_sweep_batch_env(&o);
    sweep_stats st;
    cli_sweep_signals_begin();
    rc = sweep_execute(s, dbp, &o, &st);
    /* failed jobs are stored with their messages (params sweep.error); the
     * first one is printed, also under --quiet, so exit status 1 says why */
    char variant[DB_VARIANT_MAX];
    sweep_spec_variant(s, variant);
    char rdnames[256];
    readings_of(s, rdnames, sizeof rdnames);
    if (!quiet || rc || st.failed)
        fprintf(stderr, "sweep %s (variant %s%s): %zu jobs in this shard: %zu run, %zu already stored, %zu failed; %s; %.2f s (%.1f configurations/s per worker)%s%s\n",
                sweep_spec_name(s), variant, as || !*sweep_spec_overrides(s) ? "" : " = the --set overrides", st.total, st.done, st.skipped, st.failed, rdnames, st.wall_s,
                st.wall_s > 0 ? (double)(st.done + st.failed) / st.wall_s / jobs : 0.0,
                st.first_error[0] ? "; first failure: " : "", st.first_error);
    /* say it when a trace was repeated to fill runs (metric trace_repeats) */
    db *rd;
    if (!quiet && rc == D2_OK && !st.interrupted && db_open_readonly(dbp, &rd) == D2_OK) {
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(db_handle(rd),
                "SELECT count(*), max(m.value), (SELECT value FROM params WHERE run_id = max(m.run_id) AND key = 'result.trace_repeated')"
                " FROM metrics m JOIN params p ON p.run_id = m.run_id AND p.key = 'sweep.name' AND p.value = ?"
                " WHERE m.name = 'trace_repeats' AND m.value > 1", -1, &q, NULL) == SQLITE_OK) {
            sqlite3_bind_text(q, 1, sweep_spec_name(s), -1, SQLITE_STATIC);
            if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) > 0)
                fprintf(stderr, "sweep %s: note: %d runs repeat their trace (up to %.0f times; stored as trace_repeats), e.g. %s\n",
                        sweep_spec_name(s), sqlite3_column_int(q, 0), sqlite3_column_double(q, 1),
                        sqlite3_column_text(q, 2) ? (const char *)sqlite3_column_text(q, 2) : "");
            sqlite3_finalize(q);
        }
        /* a grid narrower than the runs stored (--set of one of an axis's
         * values, --quick, an edited spec) is now the one figures show,
         * even when nothing ran: say what it leaves out */
        char gnote[1024];
        if (db_sweep_runs_note(rd, sweep_spec_name(s), variant, gnote, sizeof gnote) == D2_OK && gnote[0])
            fprintf(stderr, "sweep %s: note: figures now show this sweep's grid until the spec is swept again (plot --sweep "
                            "--where also looks beyond it): %s\n", sweep_spec_name(s), gnote);
        db_close(rd);
    }
    accuracy_model_free(acc);
    sweep_spec_free(s);
    rc = cli_sweep_signals_end(st.interrupted, rc);
    if (rc) return cli_fail(rc);
    /* failed jobs: the exit status of their cause, as simulate would give it
     * (2 for bad input such as a damaged trace, else 1) */
    return st.failed ? d2_exit_code(st.first_status ? st.first_status : D2_EINTERNAL) : 0;
}

static int env_int(const char *name, long lo, long hi, long dflt)
{
    const char *v = getenv(name);
    char *end;
    long x = v && *v ? strtol(v, &end, 10) : dflt;
    if (v && *v && (*end || x < lo || x > hi)) {
        fprintf(stderr, "d2moe sweep: note: %s=%s ignored (expected %ld..%ld)\n", name, v, lo, hi);
        return (int)dflt;
    }
    return (int)x;
}

void cli_sweep_batch_env(sweep_opts *o)
{
    o->batch_runs = env_int("D2MOE_SWEEP_BATCH", 1, 1000000, SWEEP_BATCH_RUNS);
    o->batch_ms = env_int("D2MOE_SWEEP_BATCH_MS", 1, 86400000, SWEEP_BATCH_MS);
    o->stop_after = (size_t)env_int("D2MOE_SWEEP_STOP_AFTER", 0, 1000000000, 0);
}

const cli_cmd cli_cmd_sweep = {"sweep", "run an experiment grid into the results store (resumable, shardable)", run};
