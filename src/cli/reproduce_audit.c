/* reproduce_audit.c - the claims-audit step of `d2moe reproduce`: the audit
 * of experiments/paper-claims.ini under each shipped reading set (every
 * experiments/readings/NAME.ini, in name order), printed as a table of
 * verdicts and stored in the reproduce store; a rerun skips an audit already
 * stored.  Sequencing only: results/audit.c does the work, cmd_audit.c the
 * printing. */
#include "config.h"
#include "cli/cli.h"
#include "cli/reproduce.h"
#include "core/err.h"
#include "core/fileio.h"
#include "results/audit.h"
#include "results/db.h"
#include "sim/readings.h"

#include <stdio.h>

int cli_reproduce_audit(const char *dbp)
{
    char claims[FILEIO_PATH_MAX];
    int prc = fileio_pathf(claims, sizeof claims, "%s/experiments/paper-claims.ini", D2_SRCDIR);
    if (prc) return cli_fail(prc);
    char **names = NULL;
    size_t n = 0;
    if (readings_list(&names, &n) != D2_OK || n == 0) {
        printf("   skipped: no reading sets in experiments/readings/ to audit under\n");
        if (names) param_names_free(names, n);
        return 0;
    }
    audit_claims *cl = NULL;
    db *d = NULL;
    int rc = audit_claims_load(claims, &cl);
    if (rc == D2_OK) rc = db_open(dbp, &d);
    for (size_t i = 0; rc == D2_OK && i < n; i++) {
        int64_t id;
        size_t t[4];
        if ((rc = audit_stored_find(d, cl, names[i], &id, t)) != D2_OK) break;
        if (id) { /* a rerun: this claims file, reading and code version are audited already */
            printf("   readings %s: stored before as audit %lld in %s: %zu reproduced, %zu exceeds-bound, %zu not-reproduced, "
                   "%zu error (the table: d2moe audit --claims experiments/paper-claims.ini --readings %s)\n",
                   names[i], (long long)id, dbp, t[AUDIT_REPRODUCED], t[AUDIT_EXCEEDS_BOUND], t[AUDIT_NOT_REPRODUCED],
                   t[AUDIT_ERROR], names[i]);
            continue;
        }
        audit_opts o = {.readings = names[i], .store = d, .argc = cli_argc(), .argv = cli_argv()};
        audit_report *r;
        rc = audit_run(cl, &o, &r);
        if (rc) break;
        printf("   readings %s (audit %lld in %s; per case: d2moe audit --claims experiments/paper-claims.ini --readings %s):\n",
               names[i], (long long)audit_report_id(r), dbp, names[i]);
        cli_audit_print(r, stdout, 0);
        fflush(stdout);
        audit_report_free(r);
    }
    int status = rc ? cli_fail(rc) : 0;
    db_close(d);
    audit_claims_free(cl);
    param_names_free(names, n);
    return status;
}
