/* t_dbfail.c - a run record that lost a field to a failed allocation
 * (db.c, db_run.lost) is refused by the write, never stored incomplete.
 * Linked with tests/failalloc.c, whose failalloc_fail_in fails a chosen
 * allocation. */
#include "core/err.h"
#include "results/db.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void failalloc_fail_in(unsigned long k);

static int count_runs(db *d, long long *n)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db_handle(d), "SELECT count(*) FROM runs", -1, &q, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(q) == SQLITE_ROW ? 0 : -1;
    *n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return rc;
}

int main(void)
{
    char path[] = "/tmp/t_dbfail.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { printf("Bail out! mkstemp\n"); return 1; }
    close(fd);
    unlink(path);
    char dbp[64];
    snprintf(dbp, sizeof dbp, "%s.db", path);
    db *d;
    if (db_open(dbp, &d) != D2_OK) { printf("Bail out! %s\n", d2_err_msg()); return 1; }
    char *argv[] = {"d2moe", "simulate", "--model", "m", NULL};
    long long n = -1;

    /* the command line lost (db_run_cmdline returns nothing) */
    db_run *r = db_run_new("simulate", "sim");
    failalloc_fail_in(1);
    db_run_cmdline(r, 4, argv);
    ok(db_run_param(r, "sim.budget", "100") == D2_OK, "a param after the lost command line");
    int rc = db_run_write(d, r, NULL);
    ok(rc == D2_ENOMEM && strstr(d2_err_msg(), "lost a field") != NULL, "lost command line: the write refuses it (%s)", d2_err_msg());
    db_run_free(r);
    rc = count_runs(d, &n);
    ok(rc == 0 && n == 0, "  nothing stored (%lld runs)", n);

    /* a param lost, its status ignored by the caller */
    r = db_run_new("simulate", "sim");
    db_run_cmdline(r, 4, argv);
    failalloc_fail_in(1);
    rc = db_run_param(r, "sweep.name", "s");
    ok(rc == D2_ENOMEM, "a param whose allocation fails: D2_ENOMEM");
    db_run_metric(r, "makespan_s", 1.0, "s");
    rc = db_run_write(d, r, NULL);
    ok(rc == D2_ENOMEM, "  the write refuses the record that lost it");
    db_run_free(r);
    rc = count_runs(d, &n);
    ok(rc == 0 && n == 0, "  nothing stored (%lld runs)", n);

    /* a metric lost */
    r = db_run_new("simulate", "sim");
    failalloc_fail_in(1);
    rc = db_run_metric(r, "makespan_s", 1.0, "s");
    ok(rc == D2_ENOMEM && db_run_write(d, r, NULL) == D2_ENOMEM, "a lost metric: refused too");
    db_run_free(r);

    /* the same record without a failure is stored */
    r = db_run_new("simulate", "sim");
    db_run_cmdline(r, 4, argv);
    ok(db_run_param(r, "sweep.name", "s") == D2_OK && db_run_metric(r, "makespan_s", 1.0, "s") == D2_OK, "an unfailed record");
    ok(db_run_write(d, r, NULL) == D2_OK, "  is written");
    db_run_free(r);
    ok(count_runs(d, &n) == 0 && n == 1, "  one run stored");
    db_close(d);
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int k = 0; k < 3; k++) {
        char p[96];
        snprintf(p, sizeof p, "%s%s", dbp, sfx[k]);
        unlink(p);
    }
    return tap_done();
}
