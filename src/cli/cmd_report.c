/* cmd_report.c - `d2moe report --db FILE -o OUT.html`: one self-contained
 * HTML page of a results store (src/results/report.h).  Draws the figures
 * into a scratch folder, which it removes; writes the page atomically. */
#include "config.h"
#include "cli/cli.h"
#include "core/err.h"
#include "core/fileio.h"
#include "host/opjoin.h"
#include "results/report.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe report [--db FILE] -o OUT.html [--variant NAME] [--plots DIR]\n\n"
                 "Write one self-contained HTML page (inline CSS and SVG, nothing fetched from a\n"
                 "network) of a results store (default results/d2moe.db): every figure of\n"
                 "plots/figures.ini that has data, each with its provenance (code version,\n"
                 "reading, variant, input file hashes), the store's other sweeps (those no\n"
                 "figure draws: the keys that vary and a 'd2moe plot --sweep' command that\n"
                 "draws each), the summary tables, the claims audit\n"
                 "(or a line saying the store holds none), and the store's variants.  Each figure shows the\n"
                 "spec's own variant of its sweep, or NAME where the sweep has it; a figure\n"
                 "whose runs would mix variants is left out with a note and the exit status\n"
                 "is 2.  Timeline figures read the folders beside the store (results/fig9/).\n");
}

static void rm_tree(const char *dir)
{
    DIR *dp = opendir(dir);
    if (dp) {
        struct dirent *e;
        while ((e = readdir(dp))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[FILEIO_PATH_MAX];
            if (fileio_pathf(p, sizeof p, "%s/%s", dir, e->d_name) == D2_OK) unlink(p);
        }
        closedir(dp);
    }
    rmdir(dir);
}

int cli_report_write(const char *dbp, const char *outp, const char *variant, const char *const *sweeps,
                     const char *const *variants, size_t n, const char *plotdir, int quiet)
{
    size_t ol = strlen(outp);
    if (ol < 6 || strcmp(outp + ol - 5, ".html"))
        return cli_usage_error("report", "-o %s: expected a file name ending in .html", outp);
    db *d;
    int rc = db_open_readonly(dbp, &d);
    if (rc) return cli_fail(rc);
    char work[] = "/tmp/d2moe-report.XXXXXX";
    if (!mkdtemp(work)) {
        db_close(d);
        fprintf(stderr, "d2moe report: cannot create a scratch folder in /tmp: %s\n", strerror(errno));
        return 1;
    }
    char csvroot[FILEIO_PATH_MAX];
    rc = fileio_dir_of(dbp, csvroot, sizeof csvroot, NULL); /* timeline folders live beside the store */
    if (rc) {
        db_close(d);
        rm_tree(work);
        return cli_fail(rc);
    }
    fileio_out *fo; /* a regular file (or new), written through OUT.tmp */
    FILE *f;
    if ((rc = fileio_out_open(outp, &fo, &f)) != D2_OK) {
        db_close(d);
        rm_tree(work);
        return cli_fail(rc);
    }
    report_opts o = {.plotdir = plotdir, .gnuplot = D2_GNUPLOT, .workdir = work, .variant = variant, .csvroot = csvroot,
                     .sweeps = sweeps, .variants = variants, .nvariants = n, .timeline_check = opjoin_tl_check};
    report_stats st;
    rc = report_html(d, &o, f, &st);
    if (rc == D2_OK && ferror(f)) { rc = D2_EIO; d2_err_set("%s: write failed", outp); }
    db_close(d);
    rm_tree(work);
    if (rc) { fileio_out_abort(fo); return cli_fail(rc); }
    if ((rc = fileio_out_commit(fo)) != D2_OK) return cli_fail(rc);
    if (!quiet)
        printf("%s: %zu figure%s, %zu summary table%s, %s; %zu figure%s without data%s; %zu other sweep%s listed with a "
               "plot command\n", outp, st.figures, st.figures == 1 ? "" : "s", st.tables, st.tables == 1 ? "" : "s",
               st.audit_tables ? "claims audit" : "no claims audit in the store", st.missing, st.missing == 1 ? "" : "s",
               st.mixed ? ", some not drawn (variants would mix: see the page)" : "", st.other_sweeps,
               st.other_sweeps == 1 ? "" : "s");
    if (st.mixed) {
        fprintf(stderr, "d2moe report: %zu figures not drawn: their runs are of several variants and none is the spec's own; choose one with --variant NAME ('d2moe db info %s')\n",
                st.mixed, dbp);
        return 2;
    }
    return 0;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"db", required_argument, NULL, 'd'},
        {"out", required_argument, NULL, 'o'}, {"variant", required_argument, NULL, 'V'},
        {"plots", required_argument, NULL, 'p'}, {NULL, 0, NULL, 0}};
    const char *dbp = "results/d2moe.db", *outp = NULL, *variant = NULL;
    char plotdir[FILEIO_PATH_MAX];
    int c = fileio_pathf(plotdir, sizeof plotdir, "%s", cli_data_dir("plots", "figures.ini"));
    if (c) return cli_fail(c);
    while ((c = cli_getopt_long(argc, argv, "hd:o:p:", opts, NULL, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'd': dbp = optarg; break;
        case 'o': outp = optarg; break;
        case 'V': variant = optarg; break;
        case 'p': {
            int prc = fileio_pathf(plotdir, sizeof plotdir, "%s", optarg);
            if (prc) return cli_fail(prc);
            break;
        }
        default: return cli_bad_option("report", argc, argv);
        }
    }
    if (optind != argc) return cli_usage_error("report", "unexpected argument '%s'", argv[optind]);
    if (!outp) return cli_usage_error("report", "-o OUT.html is required");
    return cli_report_write(dbp, outp, variant, NULL, NULL, 0, plotdir, 0);
}

const cli_cmd cli_cmd_report = {"report", "write one self-contained HTML page of a results store", run};
