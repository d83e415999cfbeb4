/* reproduce_audit.c - the claims-audit step of `d2moe reproduce`: the audit
 * of experiments/paper-claims.ini under each shipped reading set (every
 * experiments/readings/NAME.ini, in name order), printed as a table of verdicts
 * and stored in the reproduce store.  Sequencing only: results/audit.c does
 * the work, cmd_audit.c the printing. */
#include "config.h"
#include "cli/cli.h"
#include "cli/reproduce.h"
#include "core/err.h"
#include "results/audit.h"
#include "results/db.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int cli_reproduce_audit(const char *dbp)
{
    char dir[4200], claims[4200];
    snprintf(dir, sizeof dir, "%s/experiments/readings", D2_SRCDIR);
    snprintf(claims, sizeof claims, "%s/experiments/paper-claims.ini", D2_SRCDIR);
    DIR *dh = opendir(dir);
    if (!dh) {
        printf("   skipped: %s: %s (no reading sets to audit under)\n", dir, strerror(errno));
        return 0;
    }
    char *names[64];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(dh)) && n < sizeof names / sizeof names[0];) {
        size_t l = strlen(e->d_name);
        if (l > 4 && e->d_name[0] != '.' && !strcmp(e->d_name + l - 4, ".ini") && (names[n] = strndup(e->d_name, l - 4))) n++;
    }
    closedir(dh);
    qsort(names, n, sizeof names[0], cmp_name);
    if (n == 0) printf("   skipped: no reading sets in %s\n", dir);
    audit_claims *cl = NULL;
    int rc = n ? audit_claims_load(claims, &cl) : D2_OK;
    db *d = NULL;
    if (rc == D2_OK && n) rc = db_open(dbp, &d);
    int status = 0;
    for (size_t i = 0; rc == D2_OK && i < n; i++) {
        audit_opts o = {.readings = names[i], .store = d, .argc = cli_argc(), .argv = cli_argv()};
        audit_report *r;
        rc = audit_run(cl, &o, &r);
        if (rc) break;
        printf("   readings %s (audit %lld in %s; details: d2moe audit --claims %s --readings %s):\n", names[i],
               (long long)audit_report_id(r), dbp, claims, names[i]);
        cli_audit_print(r, stdout, 0);
        fflush(stdout);
        audit_report_free(r);
    }
    if (rc) status = cli_fail(rc);
    db_close(d);
    audit_claims_free(cl);
    for (size_t i = 0; i < n; i++) free(names[i]);
    return status;
}
