/* cmd_db.c - `d2moe db info FILE`: schema version and row counts of a
 * results store.  Opens read-only: looking never changes a file. */
#include "cli/cli.h"
#include "core/err.h"
#include "results/db.h"

#include <getopt.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe db info FILE\n\n"
                 "Print the schema version of a d2moe results database and the row count of\n"
                 "each table.  A file that is not a d2moe results database is refused with\n"
                 "exit status 2 and one line saying why, also an SQLite file d2moe never\n"
                 "initialised (schema version 0: an empty file, or tables of another program).\n");
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = cli_getopt_long(argc, argv, "h", opts, NULL, NULL)) != -1) {
        if (c == 'h') { usage(stdout); return 0; }
        return cli_bad_option("db", argc, argv);
    }
    if (argc - optind < 1) return cli_usage_error("db", "expected a subcommand: info");
    const char *sub = argv[optind];
    if (strcmp(sub, "info") != 0) return cli_usage_error("db", "'%s': unknown subcommand (expected info)", sub);
    if (argc - optind != 2) return cli_usage_error("db", "info: expected one FILE");
    db *d;
    int rc = db_open_readonly(argv[optind + 1], &d);
    if (rc) return cli_fail(rc);
    rc = db_info_print(d, stdout);
    db_close(d);
    return rc ? cli_fail(rc) : 0;
}

const cli_cmd cli_cmd_db = {"db", "inspect a results database (db info FILE)", run};
