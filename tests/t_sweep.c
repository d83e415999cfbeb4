/* t_sweep.c - sweep specs (expansion, ranges, zip, errors with file:line),
 * resumable execution (kill -9 mid-way, rerun, compare with an
 * uninterrupted run), shards + merge (same rows as unsharded; idempotent).
 * Jobs run a small deterministic test runner, not the simulator: this tests
 * the sweep machinery; tests/sweep.sh runs real simulator sweeps. */
#include "core/err.h"
#include "core/hash.h"
#include "results/db.h"
#include "results/merge.h"
#include "results/sweep.h"
#include "tap.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256];

static const char *write_spec(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static int check_cb(const char *key, const char *value, const char *where, void *user)
{
    (void)user;
    if (!strcmp(key, "sim.policy") && !strcmp(value, "bogus"))
        D2_ERROR(D2_EINVAL, "%s: %s: unknown policy \"%s\"", where, key, value);
    return D2_OK;
}

static int slow_ms;

/* deterministic "metrics" from the job's values */
static int test_runner(const sweep_job *j, db_run *run, void *user)
{
    (void)user;
    for (size_t i = 0; i < j->n; i++) db_run_param(run, j->key[i], j->value[i]);
    const char *b = sweep_job_get(j, "sim.budget");
    db_run_metric(run, "twice_budget", b ? 2 * atof(b) : 0, "bytes");
    db_run_metric(run, "h", (double)(hash64(j->text, strlen(j->text)) % 100000), "");
    if (slow_ms) {
        struct timespec ts = {0, slow_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    const char *p = sweep_job_get(j, "sim.policy");
    if (p && !strcmp(p, "fails")) D2_ERROR(D2_EINVAL, "policy fails on purpose");
    return D2_OK;
}

static int q_int(const char *path, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    int n = -1;
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(h); /* the handle exists even when the open fails */
        return -1;
    }
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* a digest of the results: every (job, metric, value), order-free */
static void digest(const char *path, char out[33])
{
    sqlite3 *h;
    sqlite3_stmt *st;
    char *buf = calloc(1, 1 << 20);
    size_t off = 0;
    sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL);
    sqlite3_prepare_v2(h, "SELECT j.job_hash, m.name, m.value FROM sweep_jobs j JOIN metrics m ON m.run_id = j.run_id "
                          "ORDER BY j.job_hash, m.name", -1, &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW && off < (1 << 20) - 200)
        off += (size_t)snprintf(buf + off, (1 << 20) - off, "%s %s %.17g\n", sqlite3_column_text(st, 0),
                                sqlite3_column_text(st, 1), sqlite3_column_double(st, 2));
    sqlite3_finalize(st);
    sqlite3_close(h);
    hash_mem_hex(buf, off, out);
    free(buf);
}

/* sweep_same_fn for the tests: user = the key whose --set changes no job */
static int same_cb(const sweep_job *with, const sweep_job *without, const char *key, int *same, void *user)
{
    (void)with;
    (void)without;
    *same = user && !strcmp(key, user);
    return D2_OK;
}

static void test_spec(void)
{
    sweep_spec *s;
    const char *p = write_spec("a.ini", "# a comment\n[sweep]\nname = a\nmodel = m1, m2\nsim.budget = 200M..600M:200M\n"
                                        "sim.requests = 4..32*2\nsim.policy = hebf\n");
    ok(sweep_spec_load(p, 0, NULL, 0, check_cb, NULL, &s) == D2_OK, "a spec loads");
    is_int(sweep_spec_size(s), 2 * 3 * 4, "2 models x 3 budgets x 4 request counts = 24 jobs");
    const sweep_job *j0 = sweep_spec_job(s, 0), *j1 = sweep_spec_job(s, 1), *jl = sweep_spec_job(s, 23);
    is_str(sweep_job_get(j0, "sim.budget"), "200000000", "range values canonical (200M -> 200000000)");
    is_str(sweep_job_get(j1, "sim.requests"), "8", "last axis varies fastest");
    is_str(sweep_job_get(jl, "model"), "m2", "first axis varies slowest");
    is_str(sweep_job_get(jl, "sim.requests"), "32", "geometric range 4..32*2 ends at 32");
    is_str(j0->text, "sweep=a\nmodel=m1\nsim.budget=200000000\nsim.policy=hebf\nsim.requests=4\n", "canonical job text: sweep name, then sorted keys");
    char h[33];
    strcpy(h, j0->hash);
    sweep_spec_free(s);
    p = write_spec("a2.ini", "[sweep]\nname = a\nsim.policy = hebf\nsim.requests = 4, 8, 16, 32\nsim.budget = 200M, 400M, 600M\nmodel = m1,m2\n");
    ok(sweep_spec_load(p, 0, NULL, 0, check_cb, NULL, &s) == D2_OK, "same grid, other key order");
    int found = 0;
    for (size_t i = 0; i < sweep_spec_size(s); i++) found += !strcmp(sweep_spec_job(s, i)->hash, h);
    is_int(found, 1, "the same job has the same hash whatever the key order");
    sweep_spec_free(s);

    p = write_spec("z.ini", "[sweep]\nname = z\nmodel = a, b, c\ndevice = x, y, z\nseed = 1, 2\nzip = model device\n");
    ok(sweep_spec_load(p, 0, NULL, 0, NULL, NULL, &s) == D2_OK, "zipped spec loads");
    is_int(sweep_spec_size(s), 3 * 2, "zip(model, device) x seed = 6 jobs");
    is_str(sweep_job_get(sweep_spec_job(s, 2), "device"), "y", "zipped axes advance together");
    is_str(sweep_job_get(sweep_spec_job(s, 2), "model"), "b", "zipped axes advance together (model)");
    sweep_spec_free(s);

    p = write_spec("q.ini", "[sweep]\nname = q\nmodel = a, b, c\nsim.budget = 1..10\n[quick]\nsim.budget = 5\n");
    ok(sweep_spec_load(p, 0, NULL, 0, NULL, NULL, &s) == D2_OK && sweep_spec_size(s) == 30, "full variant: 3 x 10 jobs");
    sweep_spec_free(s);
    ok(sweep_spec_load(p, 1, NULL, 0, NULL, NULL, &s) == D2_OK && sweep_spec_size(s) == 3, "quick variant: [quick] replaces budget: 3 jobs");
    is_str(sweep_job_get(sweep_spec_job(s, 1), "sim.budget"), "5", "quick value used");
    sweep_spec_free(s);

    const char *sets[] = {"sim.budget=7M", "device.flash_bw=1G"};
    ok(sweep_spec_load(p, 0, sets, 2, NULL, NULL, &s) == D2_OK && sweep_spec_size(s) == 3, "--set replaces an axis by one value and adds another");
    is_str(sweep_job_get(sweep_spec_job(s, 0), "sim.budget"), "7000000", "--set value used (canonical)");
    is_str(sweep_job_get(sweep_spec_job(s, 2), "device.flash_bw"), "1000000000", "--set adds a new axis");
    sweep_spec_free(s);
    /* a value the spec's axis already has is no override (the job is the spec's own) */
    ok(sweep_spec_load(p, 0, NULL, 0, NULL, NULL, &s) == D2_OK, "the spec alone");
    char h7[33];
    snprintf(h7, sizeof h7, "%s", sweep_spec_job(s, 6)->hash); /* model a, budget 7 */
    sweep_spec_free(s);
    const char *same7[] = {"sim.budget=7"}, *twice[] = {"sim.budget=70", "sim.budget=7"}, *twice2[] = {"sim.budget=7", "sim.budget=70"};
    ok(sweep_spec_load(p, 0, same7, 1, NULL, NULL, &s) == D2_OK && sweep_spec_size(s) == 3 && !strcmp(sweep_spec_overrides(s), "") &&
           !strcmp(sweep_spec_job(s, 0)->hash, h7),
       "--set sim.budget=7 (one of the axis's 1..10): the grid narrows to it, no override, the spec's own job");
    sweep_spec_free(s);
    ok(sweep_spec_load(p, 0, twice, 2, NULL, NULL, &s) == D2_OK && !strcmp(sweep_spec_overrides(s), ""),
       "set twice, last to a spec value: no override");
    sweep_spec_free(s);
    ok(sweep_spec_load(p, 0, twice2, 2, NULL, NULL, &s) == D2_OK && !strcmp(sweep_spec_overrides(s), "sim.budget=70\n"),
       "set twice, last to a new value: that one override");
    sweep_spec_free(s);
    /* a key the spec does not give: undone when no job changes (the runner judges) */
    const char *add[] = {"sim.budget=7", "device.flash_bw=1G"};
    ok(sweep_spec_load(p, 0, add, 2, NULL, NULL, &s) == D2_OK && sweep_spec_drop_unchanged(s, same_cb, "device.flash_bw") == D2_OK &&
           !strcmp(sweep_spec_overrides(s), "") && sweep_spec_size(s) == 3 && !sweep_job_get(sweep_spec_job(s, 0), "device.flash_bw") &&
           !strcmp(sweep_spec_job(s, 0)->hash, h7),
       "an added key that changes no job: undone, the spec's own jobs");
    sweep_spec_free(s);
    ok(sweep_spec_load(p, 0, add, 2, NULL, NULL, &s) == D2_OK && sweep_spec_drop_unchanged(s, same_cb, NULL) == D2_OK &&
           !strcmp(sweep_spec_overrides(s), "device.flash_bw=1000000000\n") && !strcmp(sweep_job_get(sweep_spec_job(s, 0), "device.flash_bw"), "1000000000"),
       "an added key that changes a job: kept, the one override");
    sweep_spec_free(s);
    const char *two[] = {"device.x=1", "device.y=2"};
    ok(sweep_spec_load(p, 0, two, 2, NULL, NULL, &s) == D2_OK && sweep_spec_drop_unchanged(s, same_cb, "device.x") == D2_OK &&
           !strcmp(sweep_spec_overrides(s), "device.y=2\n") && sweep_spec_size(s) == 30 && !sweep_job_get(sweep_spec_job(s, 29), "device.x") &&
           !strcmp(sweep_job_get(sweep_spec_job(s, 29), "device.y"), "2") && !strcmp(sweep_job_get(sweep_spec_job(s, 29), "sim.budget"), "10"),
       "two added keys, the first changing no job: it alone undone");
    sweep_spec_free(s);
    /* a one-value axis set to another text of the same value (false, 0): the spec's value back */
    const char *p1 = write_spec("one.ini", "[sweep]\nname = one\nmodel = a\nsim.kv_on_device = false\n");
    const char *zero[] = {"sim.kv_on_device=0"};
    ok(sweep_spec_load(p1, 0, zero, 1, NULL, NULL, &s) == D2_OK && sweep_spec_drop_unchanged(s, same_cb, "sim.kv_on_device") == D2_OK &&
           !strcmp(sweep_spec_overrides(s), "") && !strcmp(sweep_job_get(sweep_spec_job(s, 0), "sim.kv_on_device"), "false"),
       "a one-value axis set to what the runner finds the same: no override, the spec's own value");
    sweep_spec_free(s);
    const char *badset[] = {"sim.budget=1,2"};
    ok(sweep_spec_load(p, 0, badset, 1, NULL, NULL, &s) == D2_EINVAL, "--set with a list is refused");

    static const struct { const char *name, *text, *want; } bad[] = {
        {"quick.ini", "[sweep]\nname = q\nmodel = a\n[quick]\ndevice = x\n", "quick.ini:5: [quick] device: not an axis"},
        {"unknown.ini", "[sweep]\nname = u\nmodel = a\ncolour = red\n", "unknown.ini:4: colour: unknown key"},
        {"empty.ini", "[sweep]\nname = e\nmodel = \n", "empty.ini:3: model: empty list"},
        {"emptyitem.ini", "[sweep]\nname = e\nmodel = a,,b\n", "emptyitem.ini:3: model: empty item"},
        {"range.ini", "[sweep]\nname = r\nsim.budget = 1..x\n", "range.ini:3: sim.budget: malformed range"},
        {"range2.ini", "[sweep]\nname = r\nsim.budget = 9..1\n", "range2.ini:3: sim.budget: range \"9..1\" has lo > hi"},
        {"range3.ini", "[sweep]\nname = r\nsim.budget = 1..9:0\n", "range3.ini:3: sim.budget: range \"1..9:0\": step must be > 0"},
        {"range4.ini", "[sweep]\nname = r\nsim.budget = 1..9*1\n", "factor must be > 1"},
        {"zip.ini", "[sweep]\nname = z\nmodel = a, b\ndevice = x\nzip = model device\n", "zip.ini:5: zip: \"device\" has 1 values"},
        {"zip2.ini", "[sweep]\nname = z\nmodel = a, b\nzip = model nope\n", "zip2.ini:4: zip: \"nope\" is not an axis"},
        {"noname.ini", "[sweep]\nmodel = a\n", "noname.ini:2: name: required key missing"},
        {"section.ini", "[run]\nname = s\n", "section.ini:2: name: keys belong in a [sweep]"},
        {"check.ini", "[sweep]\nname = c\nsim.policy = hebf, bogus\n", "check.ini:3: sim.policy: unknown policy \"bogus\""},
        {"dup.ini", "[sweep]\nname = d\nmodel = a\nmodel = b\n", "dup.ini:4: model: given twice"},
        {"garbage.ini", "\x01\x02\x03\xff\n", "garbage.ini:1: binary data"},
        {"malformed.ini", "[sweep]\nname = m\nmodel a b\n", "malformed.ini:3: malformed line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = write_spec(bad[i].name, bad[i].text);
        int rc = sweep_spec_load(p, 0, NULL, 0, check_cb, NULL, &s);
        ok(rc != D2_OK && strstr(d2_err_msg(), bad[i].want) && d2_exit_code(rc) == 2, "bad spec %s: %s", bad[i].name, bad[i].want);
        if (rc == D2_OK) sweep_spec_free(s);
        else if (!strstr(d2_err_msg(), bad[i].want)) tap_diag("got: %s", d2_err_msg());
    }
}

static int run_sweep(const char *spec, const char *dbp, int workers, int shard_i, int shard_n, sweep_stats *st)
{
    sweep_spec *s;
    int rc = sweep_spec_load(spec, 0, NULL, 0, NULL, NULL, &s);
    if (rc) return rc;
    sweep_opts o = {.workers = workers, .shard_i = shard_i, .shard_n = shard_n, .run = test_runner};
    rc = sweep_execute(s, dbp, &o, st);
    sweep_spec_free(s);
    return rc;
}

/* A job check that refuses jobs with value "bad" in the key it is told to
 * blame (user), or, with user "", blames nothing. */
static int job_check_cb(const sweep_job *job, char *key, size_t n, void *user)
{
    const char *blame = user;
    for (size_t i = 0; i < job->n; i++)
        if (!strcmp(job->value[i], "bad")) {
            snprintf(key, n, "%s", blame);
            D2_ERROR(D2_EINVAL, "%s: no good (job %zu)", *blame ? blame : "it", job->index);
        }
    return D2_OK;
}

/* sweep_spec_check_jobs: the first failing job, the line of the key blamed */
static void test_check_jobs(void)
{
    sweep_spec *s;
    const char *p = write_spec("cj.ini", "[sweep]\nname = cj\nmodel = m1, m2\nsim.x = a, b, bad\nsim.y = c\n[quick]\nsim.x = a, bad\n");
    ok(sweep_spec_load(p, 0, NULL, 0, NULL, NULL, &s) == D2_OK, "a spec loads");
    is_int(sweep_spec_check_jobs(s, job_check_cb, "sim.x"), D2_EINVAL, "a job the check refuses: its status");
    char want[600];
    snprintf(want, sizeof want, "%s:4: sim.x: no good (job 2)", p);
    is_str(d2_err_msg(), want, "file:line of the key blamed, the first failing job");
    sweep_spec_check_jobs(s, job_check_cb, "sim.y");
    snprintf(want, sizeof want, "%s:5: sim.y: no good (job 2)", p);
    is_str(d2_err_msg(), want, "another key blamed: its line");
    sweep_spec_check_jobs(s, job_check_cb, "");
    snprintf(want, sizeof want, "%s:3: model: it: no good (job 2)", p);
    is_str(d2_err_msg(), want, "no key blamed (or not an axis): the model axis, with its name");
    sweep_spec_free(s);
    ok(sweep_spec_load(p, 1, NULL, 0, NULL, NULL, &s) == D2_OK && sweep_spec_check_jobs(s, job_check_cb, "sim.x") == D2_EINVAL,
       "quick mode: refused too");
    snprintf(want, sizeof want, "%s:7: sim.x: no good (job 1)", p);
    is_str(d2_err_msg(), want, "quick mode: the [quick] line");
    sweep_spec_free(s);
    const char *sets[] = {"sim.x=bad"};
    ok(sweep_spec_load(p, 0, sets, 1, NULL, NULL, &s) == D2_OK && sweep_spec_check_jobs(s, job_check_cb, "sim.x") == D2_EINVAL,
       "a --set override: refused too");
    is_str(d2_err_msg(), "--set sim.x=bad: sim.x: no good (job 0)", "a --set override names the option");
    sweep_spec_free(s);
    const char *good[] = {"sim.x=a"};
    ok(sweep_spec_load(p, 0, good, 1, NULL, NULL, &s) == D2_OK && sweep_spec_check_jobs(s, job_check_cb, "sim.x") == D2_OK,
       "no bad job: D2_OK");
    sweep_spec_free(s);
}

static void test_execute(void)
{
    char spec[512], full[512], killed[512];
    snprintf(spec, sizeof spec, "%s", write_spec("g.ini", "[sweep]\nname = g\nmodel = m1, m2, m3\nsim.budget = 100..2000:100\nsim.policy = hebf, id-order\n"));
    snprintf(full, sizeof full, "%s/full.db", dir);
    snprintf(killed, sizeof killed, "%s/killed.db", dir);
    sweep_stats st;
    ok(run_sweep(spec, full, 2, 0, 1, &st) == D2_OK, "uninterrupted sweep with 2 workers");
    is_int(st.done, 120, "120 jobs run");
    is_int(q_int(full, "SELECT count(*) FROM runs"), 120, "120 runs stored");
    ok(run_sweep(spec, full, 2, 0, 1, &st) == D2_OK && st.skipped == 120 && st.done == 0, "a rerun skips all 120");
    is_int(q_int(full, "SELECT count(*) FROM runs"), 120, "and stores nothing new");

    /* kill -9 the sweep (and its workers) mid-way */
    pid_t p = fork();
    if (p == 0) {
        setpgid(0, 0);
        slow_ms = 5;
        sweep_stats s2;
        _exit(run_sweep(spec, killed, 2, 0, 1, &s2));
    }
    setpgid(p, p);
    int stored = 0;
    for (int i = 0; i < 2000; i++) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
        stored = q_int(killed, "SELECT count(*) FROM sweep_jobs");
        if (stored >= 30) break;
    }
    kill(-p, SIGKILL);
    int status;
    waitpid(p, &status, 0);
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL); /* workers die with the parent (PDEATHSIG) */
    int partial = q_int(killed, "SELECT count(*) FROM sweep_jobs");
    ok(WIFSIGNALED(status) && partial > 0 && partial < 120, "killed with SIGKILL after %d of 120 jobs", partial);
    ok(run_sweep(spec, killed, 2, 0, 1, &st) == D2_OK, "the rerun completes");
    is_int(st.skipped, partial, "it skips exactly the jobs stored before the kill");
    is_int(q_int(killed, "SELECT count(*) FROM runs"), 120, "no lost and no duplicated runs: 120");
    is_int(q_int(killed, "SELECT count(DISTINCT job_hash) FROM sweep_jobs"), 120, "120 distinct jobs");
    is_int(q_int(killed, "SELECT count(*) FROM metrics"), 240, "240 metrics, as uninterrupted");
    char d1[33], d2[33];
    digest(full, d1);
    digest(killed, d2);
    is_str(d2, d1, "same (job, metric, value) rows as the uninterrupted run");

    /* shards + merge */
    char sh[3][512], merged[512];
    for (int i = 0; i < 3; i++) {
        snprintf(sh[i], sizeof sh[i], "%s/shard%d.db", dir, i);
        ok(run_sweep(spec, sh[i], 1, i, 3, &st) == D2_OK && st.total == 40, "shard %d/3 runs 40 jobs", i);
    }
    snprintf(merged, sizeof merged, "%s/merged.db", dir);
    merge_stats ms = {0, 0};
    int rc = D2_OK;
    for (int i = 0; i < 3; i++) rc |= merge_into(merged, sh[i], &ms);
    ok(rc == D2_OK && ms.runs_added == 120, "merge of 3 shards adds 120 runs");
    digest(merged, d2);
    is_str(d2, d1, "merged shards: same rows as the unsharded run");
    memset(&ms, 0, sizeof ms);
    for (int i = 0; i < 3; i++) rc |= merge_into(merged, sh[i], &ms);
    ok(rc == D2_OK && ms.runs_added == 0 && ms.runs_present == 120, "merging again adds nothing (idempotent)");
    is_int(q_int(merged, "SELECT count(*) FROM runs"), 120, "still 120 runs");
    is_int(q_int(merged, "SELECT count(*) FROM params p JOIN runs r ON r.id = p.run_id"), q_int(full, "SELECT count(*) FROM params"), "params follow their runs");
    ok(merge_into(merged, "/nonexistent.db", &ms) != D2_OK, "merging a missing file fails");

    /* failed jobs are recorded and retried */
    char fspec[512], fdb[512];
    snprintf(fspec, sizeof fspec, "%s", write_spec("f.ini", "[sweep]\nname = f\nsim.policy = hebf, fails\n"));
    snprintf(fdb, sizeof fdb, "%s/f.db", dir);
    ok(run_sweep(fspec, fdb, 1, 0, 1, &st) == D2_OK && st.done == 1 && st.failed == 1, "one job ok, one failed");
    is_int(q_int(fdb, "SELECT count(*) FROM runs WHERE status = 'failed'"), 1, "the failure is stored with status failed");
    ok(run_sweep(fspec, fdb, 1, 0, 1, &st) == D2_OK && st.skipped == 1 && st.failed == 1, "a rerun retries the failed job only");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/t_sweep.XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_spec();
    test_check_jobs();
    test_execute();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) tap_diag("could not remove %s", dir);
    return tap_done();
}
