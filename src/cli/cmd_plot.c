/* cmd_plot.c - `d2moe plot FIGURE|all [--db FILE] [--out DIR]`: export each
 * figure's data with its SQL query and draw it with its gnuplot script. */
#include "config.h"
#include "cli/cli.h"
#include "core/err.h"
#include "results/plot.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe plot FIGURE|all|list [--db FILE] [--out DIR] [--plots DIR]\n\n"
                 "Draw figures listed in plots/figures.ini from the results store (default\n"
                 "results/d2moe.db) into DIR (default plots/) as PNG and SVG; the exported data\n"
                 "goes to DIR/data/<figure>.dat.  Timeline figures (Fig. 9) read CSV folders\n"
                 "beside the store (results/fig9/).  'list' prints the figures.  'all' skips\n"
                 "figures marked optional (experiments reproduce does not run, e.g. the\n"
                 "host validation) when the store has no data for them.\n");
}

static int mkdir_p(const char *p)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", p);
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') { *s = '\0'; mkdir(buf, 0755); *s = '/'; }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"db", required_argument, NULL, 'd'},
        {"out", required_argument, NULL, 'o'}, {"plots", required_argument, NULL, 'p'}, {NULL, 0, NULL, 0}};
    const char *dbp = "results/d2moe.db", *outdir = "plots";
    char plotdir[4096];
    snprintf(plotdir, sizeof plotdir, "%s/plots", D2_SRCDIR);
    int c;
    while ((c = getopt_long(argc, argv, "hd:o:p:", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'd': dbp = optarg; break;
        case 'o': outdir = optarg; break;
        case 'p': snprintf(plotdir, sizeof plotdir, "%s", optarg); break;
        default: return cli_bad_option("plot", argc, argv);
        }
    }
    if (argc - optind != 1) return cli_usage_error("plot", "expected one FIGURE, all or list");
    const char *want = argv[optind];
    char ini[4200];
    snprintf(ini, sizeof ini, "%s/figures.ini", plotdir);
    plot_fig *figs;
    size_t n;
    int rc = plot_figures_load(ini, &figs, &n);
    if (rc) return cli_fail(rc);
    if (!strcmp(want, "list")) {
        for (size_t i = 0; i < n; i++) printf("%-16s %s\n", figs[i].name, figs[i].title);
        free(figs);
        return 0;
    }
    int any = 0;
    for (size_t i = 0; i < n; i++) any |= !strcmp(figs[i].name, want);
    if (!any && strcmp(want, "all") != 0) {
        free(figs);
        return cli_usage_error("plot", "'%s': no such figure (see 'd2moe plot list')", want);
    }
    db *d = NULL;
    if ((rc = db_open_readonly(dbp, &d)) != D2_OK) { free(figs); return cli_fail(rc); }
    char datadir[4200];
    snprintf(datadir, sizeof datadir, "%s/data", outdir);
    if (mkdir_p(datadir) != 0) {
        int e = errno; /* before db_close and free can change it */
        db_close(d);
        free(figs);
        fprintf(stderr, "d2moe: %s: cannot create: %s\n", datadir, strerror(e));
        return 1;
    }
    int status = 0;
    for (size_t i = 0; i < n; i++) {
        plot_fig *f = &figs[i];
        if (strcmp(want, "all") && strcmp(want, f->name)) continue;
        char dat[4400], outbase[4400], csvdir[4400];
        snprintf(outbase, sizeof outbase, "%s/%s", outdir, f->name);
        plot_out po;
        memset(&po, 0, sizeof po);
        const char *datp = NULL, *cdir = NULL;
        if (f->sql[0]) {
            snprintf(dat, sizeof dat, "%s/%s.dat", datadir, f->name);
            rc = plot_export(d, plotdir, f, dat, &po);
            if (rc == D2_OK && po.rows == 0) {
                if (f->optional && !strcmp(want, "all")) {
                    printf("%s: skipped (optional; no data in %s)\n", f->name, dbp);
                    continue;
                }
                fprintf(stderr, "d2moe: %s: no data in %s (run its experiment first)\n", f->name, dbp);
                status = 1;
                continue;
            }
            datp = dat;
        } else {
            /* timeline folders live beside the store: results/d2moe.db -> results/fig9 */
            const char *slash = strrchr(dbp, '/');
            if (slash) snprintf(csvdir, sizeof csvdir, "%.*s/%s", (int)(slash - dbp), dbp, f->csv);
            else snprintf(csvdir, sizeof csvdir, "%s", f->csv);
            cdir = csvdir;
            rc = D2_OK;
            if (access(csvdir, R_OK) != 0) {
                fprintf(stderr, "d2moe: %s: no timelines in %s (d2moe reproduce writes them)\n", f->name, csvdir);
                status = 1;
                continue;
            }
        }
        if (rc == D2_OK) rc = plot_render(D2_GNUPLOT, plotdir, f, datp, cdir, &po, outbase);
        if (rc) { status = cli_fail(rc); continue; }
        printf("%s: %s.png %s.svg (%zu rows, %zu series)\n", f->name, outbase, outbase, po.rows, po.series);
    }
    db_close(d);
    free(figs);
    return status;
}

const cli_cmd cli_cmd_plot = {"plot", "draw figures from the results store with gnuplot", run};
