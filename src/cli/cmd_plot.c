/* cmd_plot.c - `d2moe plot FIGURE|all [--db FILE] [--out DIR]`: export each
 * figure's data with its SQL query and draw it with its gnuplot script. */
#include "config.h"
#include "cli/cli.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/suggest.h"
#include "host/opjoin.h"
#include "results/plot.h"
#include "results/report.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe plot FIGURE|all|list [--db FILE] [--out DIR] [--plots DIR] [--variant NAME]\n"
                 "       d2moe plot --sweep NAME --x KEY --y METRIC [--series KEY] [--where KEY=VALUE]...\n"
                 "                  [--variant NAME] [--db FILE] -o OUT.png|OUT.svg\n"
                 "       d2moe plot timeline FILE.csv -o OUT.png|OUT.svg [--from MS] [--to MS]\n\n"
                 "Draw figures listed in plots/figures.ini from the results store (default\n"
                 "results/d2moe.db) into DIR (default plots/) as PNG and SVG; the exported data\n"
                 "goes to DIR/data/<figure>.dat.  Timeline figures (Fig. 9) read CSV folders\n"
                 "beside the store (results/fig9/).  'list' prints the figures.  'all' skips\n"
                 "figures marked optional (experiments reproduce does not run, e.g. the\n"
                 "host validation) when the store has no data for them.\n\n"
                 "Variants: a figure shows the runs of one variant of its sweep (--variant\n"
                 "NAME; default the spec's own, made without --set).  When the store holds\n"
                 "several and none is the spec's own, plot stops with exit status 2 naming\n"
                 "them and the keys that differ ('d2moe db info FILE' lists variants).\n"
                 "Of a variant, a figure shows the jobs of the sweep's latest grid (the last\n"
                 "'d2moe sweep' of it: its spec after --quick and --set) and of each job its\n"
                 "latest run; runs of jobs outside that grid are left out, and plot says how\n"
                 "many ('d2moe export' without --sweep lists every run).  A figure's title\n"
                 "ends with the reading of the runs it shows ([reading paper-testbed]: the\n"
                 "runs' reading.name; several, comma-separated), and so does its data file's\n"
                 "header (# reading: NAME).\n\n"
                 "--sweep: any sweep; KEY is a parameter (table.key, or model, device, trace,\n"
                 "seed), a metric or a column of the run as 'd2moe export' names it (variant,\n"
                 "status, host, code_version, inputs.ROLE, ...); one line per value of --series;\n"
                 "--where keeps runs with KEY = VALUE (numbers compare as numbers: 1600M =\n"
                 "1600000000).  variant as a KEY without --variant draws every variant of the\n"
                 "sweep (each its own latest grid).  When no run of the latest grid matches\n"
                 "every --where, the latest run of each matching job of earlier sweeps is\n"
                 "drawn, with a note (e.g. after a sweep narrowed by --set).  Out-of-memory\n"
                 "runs are drawn as crosses on the x axis.  A key in bytes is drawn in MB.\n"
                 "The figure's data goes to OUT.dat beside it (tab-separated).\n\n"
                 "timeline: a Gantt chart of a 'd2moe simulate --timeline FILE.csv' (I/O and\n"
                 "compute queues, bars coloured by bit level); --from MS and --to MS draw\n"
                 "that window of simulated time (milliseconds; default the whole run: a run\n"
                 "of thousands of operations is easier to read a few ms at a time).\n");
}

static int mkdir_p(const char *p)
{
    char buf[FILEIO_PATH_MAX];
    if (fileio_pathf(buf, sizeof buf, "%s", p) != D2_OK) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') { *s = '\0'; mkdir(buf, 0755); *s = '/'; }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int plot_one_sweep(const char *dbp, const char *plotdir, plot_query *q, const char *want, const char *outp)
{
    db *d = NULL;
    int rc = db_open_readonly(dbp, &d);
    if (rc) return cli_fail(rc);
    char variant[DB_VARIANT_MAX] = "", note[2048] = "";
    /* variant as --x, --series or --where (without --variant): the runs of
     * every variant, each its own grid's */
    int by_variant = !want && (plot_key_is_variant(q->x) || plot_key_is_variant(q->series));
    for (size_t i = 0; i < q->nwhere; i++) by_variant |= !want && plot_key_is_variant(q->where_k[i]);
    rc = db_sweep_check(d, q->sweep);
    if (!rc && !by_variant) rc = db_variant_pick(d, q->sweep, want, variant, note, sizeof note);
    if (rc) { db_close(d); return cli_fail(rc); }
    if (by_variant) snprintf(variant, sizeof variant, "(every one)");
    q->variant = by_variant ? NULL : variant;
    char dat[FILEIO_PATH_MAX];
    plot_out po;
    plot_axes ax;
    rc = fileio_pathf(dat, sizeof dat, "%s.dat", outp);
    if (rc) { db_close(d); return cli_fail(rc); }
    rc = plot_sweep_export(d, q, dat, &po, &ax);
    char hint[1024] = "", gnote[1024] = "", anote[1024] = "";
    if (!rc && po.rows == 0 && q->nwhere) {
        /* the --where values may be runs outside the latest grid (a sweep
         * narrowed by --set or --quick since): each job's latest run of
         * every grid, said on stderr */
        q->any_grid = 1;
        rc = plot_sweep_export(d, q, dat, &po, &ax);
        if (!rc && po.rows)
            snprintf(anote, sizeof anote, "note: no run of the latest grid of %s matches every --where; drawn instead from the "
                     "latest run of each matching job of its earlier sweeps (%zu runs; sweep the spec again to make its grid the latest)",
                     q->sweep, po.rows);
        else q->any_grid = 0;
    }
    if (!rc && po.rows == 0 && q->nwhere) plot_where_hint(d, q, hint, sizeof hint);
    if (!rc && !q->any_grid && !by_variant) rc = db_sweep_runs_note(d, q->sweep, variant, gnote, sizeof gnote);
    db_close(d);
    if (gnote[0]) fprintf(stderr, "d2moe plot: %s: %s\n", q->sweep, gnote);
    if (anote[0]) fprintf(stderr, "d2moe plot: %s: %s\n", q->sweep, anote);
    if (rc) return cli_fail(rc);
    if (po.rows == 0) {
        unlink(dat);
        /* no run matching the --where filters is the filters' fault (exit 2),
         * whether one value no run has or values no run has together */
        if (q->nwhere && !hint[0] && q->nwhere > 1)
            snprintf(hint, sizeof hint, " (no run has all of them together)");
        fprintf(stderr, "d2moe plot: sweep %s has no runs of variant %s in %s%s%s\n", q->sweep, variant, dbp,
                q->nwhere ? " that match every --where" : "", hint);
        return q->nwhere ? 2 : 1;
    }
    char title[1024], where[512] = "";
    size_t off = 0;
    for (size_t i = 0; i < q->nwhere && off < sizeof where; i++)
        off += (size_t)snprintf(where + off, sizeof where - off, "%s%s=%s", i ? ", " : "; ", q->where_k[i], q->where_v[i]);
    snprintf(title, sizeof title, "sweep %s, variant %s: %s against %s%s", q->sweep, variant, q->y, q->x, where);
    char vars[PLOT_GP_VARS_MAX];
    size_t voff = 0;
    rc = plot_gp_assign(vars, sizeof vars, &voff, "datafile", dat, "-o");
    if (!rc) rc = plot_gp_assign(vars, sizeof vars, &voff, "titles", po.titles, NULL);
    if (!rc) rc = plot_gp_assign(vars, sizeof vars, &voff, "plotdir", plotdir, "the plots folder");
    if (!rc) rc = plot_gp_assign(vars, sizeof vars, &voff, "figtitle", title, NULL);
    if (!rc) rc = plot_gp_assign(vars, sizeof vars, &voff, "xlab", ax.xlabel, NULL);
    if (!rc) rc = plot_gp_assign(vars, sizeof vars, &voff, "ylab", ax.ylabel, NULL);
    if (!rc && (size_t)snprintf(vars + voff, sizeof vars - voff, "; nseries=%zu; xcat=%d; anyoom=%d", po.series, ax.xcat, ax.oom > 0) >= sizeof vars - voff) {
        d2_err_set("gnuplot's command line is too long");
        rc = D2_ERANGE;
    }
    if (rc) { unlink(dat); return cli_fail(rc); }
    char script[FILEIO_PATH_MAX];
    rc = fileio_pathf(script, sizeof script, "%s/sweep.gp", plotdir);
    if (!rc) rc = plot_draw(D2_GNUPLOT, script, vars, outp);
    if (rc) { unlink(dat); return cli_fail(rc); } /* no data file beside a figure not drawn */
    if (note[0]) fprintf(stderr, "d2moe plot: %s: %s\n", q->sweep, note);
    printf("%s (%zu runs, %zu series, variant %s%s)\n", outp, po.rows, po.series, variant,
           ax.oom ? "; out-of-memory runs drawn as crosses" : "");
    return 0;
}

static int plot_timeline(const char *plotdir, const char *csv, const char *outp, double t_from, double t_to)
{
    size_t rows;
    int rc = opjoin_tl_check_file(csv, &rows);
    if (rc) return cli_fail(rc);
    char vars[PLOT_GP_VARS_MAX], script[FILEIO_PATH_MAX], title[FILEIO_PATH_MAX + 128];
    const char *base = strrchr(csv, '/');
    snprintf(title, sizeof title, "timeline %s: I/O and compute queues (%zu records)", base ? base + 1 : csv, rows);
    size_t voff = 0;
    int vrc = plot_gp_assign(vars, sizeof vars, &voff, "datafile", csv, "the timeline");
    if (!vrc) vrc = plot_gp_assign(vars, sizeof vars, &voff, "plotdir", plotdir, "the plots folder");
    if (!vrc) vrc = plot_gp_assign(vars, sizeof vars, &voff, "figtitle", title, NULL);
    if (!vrc) vrc = plot_gp_assign(vars, sizeof vars, &voff, "titles", "", NULL);
    if (vrc) return cli_fail(vrc);
    char win[96];
    snprintf(win, sizeof win, "; nseries=0; tfrom=%.17g; tto=%.17g", t_from, t_to); /* -1: the timeline's own start / end */
    if (voff + strlen(win) + 1 > sizeof vars) { d2_err_set("gnuplot's command line is too long"); return cli_fail(D2_ERANGE); }
    memcpy(vars + voff, win, strlen(win) + 1);
    rc = fileio_pathf(script, sizeof script, "%s/timeline.gp", plotdir);
    if (!rc) rc = plot_draw(D2_GNUPLOT, script, vars, outp);
    if (rc) return cli_fail(rc);
    printf("%s (%zu records)\n", outp, rows);
    return 0;
}

/* cli_plot_variants: sweep i's figures show variant i (else --variant) */
static const char *const *map_sweeps, *const *map_variants;
static size_t map_n;

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"db", required_argument, NULL, 'd'},
        {"out", required_argument, NULL, 'o'}, {"plots", required_argument, NULL, 'p'},
        {"variant", required_argument, NULL, 'V'}, {"sweep", required_argument, NULL, 's'},
        {"x", required_argument, NULL, 'x'}, {"y", required_argument, NULL, 'y'},
        {"series", required_argument, NULL, 'S'}, {"where", required_argument, NULL, 'w'},
        {"from", required_argument, NULL, 1},     {"to", required_argument, NULL, 2}, {NULL, 0, NULL, 0}};
    double t_from = -1, t_to = -1; /* timeline: the window drawn, ms of simulated time (-1: its start / end) */
    const char *dbp = "results/d2moe.db", *outdir = NULL, *want_variant = NULL;
    char plotdir[FILEIO_PATH_MAX];
    int c, rc = fileio_pathf(plotdir, sizeof plotdir, "%s", cli_data_dir("plots", "figures.ini"));
    if (rc) return cli_fail(rc);
    plot_query q;
    memset(&q, 0, sizeof q);
    /* --where repeats; the others take one value each (cli_getopt_long refuses a second) */
    while ((c = cli_getopt_long(argc, argv, "hd:o:p:", opts, "w", NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'd': dbp = optarg; break;
        case 'o': outdir = optarg; break;
        case 'p':
            if ((rc = fileio_pathf(plotdir, sizeof plotdir, "%s", optarg)) != D2_OK) return cli_fail(rc);
            break;
        case 'V': want_variant = optarg; break;
        case 's': q.sweep = optarg; break;
        case 'x': q.x = optarg; break;
        case 'y': q.y = optarg; break;
        case 'S': q.series = optarg; break;
        case 1:
        case 2:
            if ((rc = cli_parse_double("plot", c == 1 ? "--from" : "--to", optarg, 0, 1e12, 0, "milliseconds",
                                       c == 1 ? &t_from : &t_to)))
                return rc;
            break;
        case 'w': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1]) return cli_usage_error("plot", "--where %s: expected KEY=VALUE", optarg);
            if (q.nwhere == PLOT_MAX_WHERE) return cli_usage_error("plot", "more than %d --where", PLOT_MAX_WHERE);
            static char wk[PLOT_MAX_WHERE][256];
            snprintf(wk[q.nwhere], sizeof wk[0], "%.*s", (int)(eq - optarg), optarg);
            q.where_k[q.nwhere] = wk[q.nwhere];
            q.where_v[q.nwhere] = eq + 1;
            q.nwhere++;
            break;
        }
        default: return cli_bad_option("plot", argc, argv);
        }
    }
    if (q.sweep) {
        if (optind != argc) return cli_usage_error("plot", "--sweep: unexpected argument '%s'", argv[optind]);
        if (!q.x || !q.y) return cli_usage_error("plot", "--sweep needs --x KEY and --y METRIC");
        if (!outdir) return cli_usage_error("plot", "--sweep needs -o OUT.png or -o OUT.svg");
        if ((rc = plot_out_check(outdir)) != D2_OK) return cli_fail(rc); /* before anything is written (OUT.dat) */
        return plot_one_sweep(dbp, plotdir, &q, want_variant, outdir);
    }
    if (q.x || q.y || q.series || q.nwhere) return cli_usage_error("plot", "--x, --y, --series and --where go with --sweep NAME");
    int is_tl = optind < argc && !strcmp(argv[optind], "timeline");
    if (!is_tl && (t_from >= 0 || t_to >= 0)) return cli_usage_error("plot", "--from and --to go with timeline FILE.csv");
    if (t_from >= 0 && t_to >= 0 && !(t_to > t_from))
        return cli_usage_error("plot", "--from %g --to %g: the window must end after it starts", t_from, t_to);
    if (is_tl) {
        if (argc - optind != 2) return cli_usage_error("plot", "timeline: expected one FILE.csv");
        if (!outdir) return cli_usage_error("plot", "timeline needs -o OUT.png or -o OUT.svg");
        if ((rc = plot_out_check(outdir)) != D2_OK) return cli_fail(rc);
        return plot_timeline(plotdir, argv[optind + 1], outdir, t_from, t_to);
    }
    if (!outdir) outdir = "plots";
    if (argc - optind != 1) return cli_usage_error("plot", "expected one FIGURE, all or list");
    const char *want = argv[optind];
    char ini[FILEIO_PATH_MAX];
    plot_fig *figs;
    size_t n;
    rc = fileio_pathf(ini, sizeof ini, "%s/figures.ini", plotdir);
    if (!rc) rc = plot_figures_load(ini, &figs, &n);
    if (rc) return cli_fail(rc);
    if (!strcmp(want, "list")) {
        for (size_t i = 0; i < n; i++) printf("%-16s %s\n", figs[i].name, figs[i].title);
        free(figs);
        return 0;
    }
    int any = 0;
    for (size_t i = 0; i < n; i++) any |= !strcmp(figs[i].name, want);
    if (!any && strcmp(want, "all") != 0) {
        const char *names[256];
        size_t nn = 0;
        for (size_t i = 0; i < n && nn < 255; i++) names[nn++] = figs[i].name;
        names[nn++] = "all";
        char hint[200];
        suggest_hint(want, names, nn, hint, sizeof hint);
        free(figs);
        /* cli_usage_error adds the --help pointer; name the list once */
        fprintf(stderr, "d2moe plot: '%s': no such figure%s; 'd2moe plot list' lists them\n", want, hint);
        return 2;
    }
    db *d = NULL;
    if ((rc = db_open_readonly(dbp, &d)) != D2_OK) { free(figs); return cli_fail(rc); }
    char datadir[FILEIO_PATH_MAX];
    if ((rc = fileio_pathf(datadir, sizeof datadir, "%s/data", outdir)) != D2_OK) {
        db_close(d);
        free(figs);
        return cli_fail(rc);
    }
    if (mkdir_p(datadir) != 0) {
        int e = errno; /* before db_close and free can change it */
        db_close(d);
        free(figs);
        fprintf(stderr, "d2moe: %s: cannot create: %s\n", datadir, strerror(e));
        return e == ENOENT || e == ENOTDIR || e == ENAMETOOLONG ? 2 : 1; /* --out names a file or is too long: a bad argument */
    }
    int status = 0;
    char noted[128] = "";
    for (size_t i = 0; i < n; i++) {
        plot_fig *f = &figs[i];
        if (strcmp(want, "all") && strcmp(want, f->name)) continue;
        char dat[FILEIO_PATH_MAX], outbase[FILEIO_PATH_MAX], csvdir[FILEIO_PATH_MAX];
        if ((rc = fileio_pathf(outbase, sizeof outbase, "%s/%s", outdir, f->name)) != D2_OK) {
            int e = cli_fail(rc);
            if (!status) status = e;
            continue;
        }
        plot_out po;
        memset(&po, 0, sizeof po);
        const char *datp = NULL, *cdir = NULL;
        if (f->sql[0]) {
            char variant[DB_VARIANT_MAX] = "base", note[2048] = "";
            if (f->sweep[0]) {
                char qpath[FILEIO_PATH_MAX];
                const char *wv;
                rc = fileio_pathf(qpath, sizeof qpath, "%s/%s", plotdir, f->sql);
                if (rc == D2_OK) rc = report_map_variant(qpath, f->sweep, map_sweeps, map_variants, map_n, want_variant, &wv);
                if (rc == D2_OK) rc = db_variant_pick(d, f->sweep, wv, variant, note, sizeof note);
                if (rc) {
                    /* rows of several variants would mix: stop this figure */
                    fprintf(stderr, "d2moe plot: %s: %s\n", f->name, d2_err_msg());
                    status = 2;
                    continue;
                }
                /* runs left out because they are of an older grid: said too */
                char gnote[1024] = "";
                if ((rc = db_sweep_runs_note(d, f->sweep, variant, gnote, sizeof gnote)) != D2_OK) {
                    int e = cli_fail(rc);
                    if (!status) status = e;
                    continue;
                }
                if ((note[0] || gnote[0]) && strcmp(noted, f->sweep)) {
                    if (note[0]) fprintf(stderr, "d2moe plot: %s: %s\n", f->sweep, note);
                    if (gnote[0]) fprintf(stderr, "d2moe plot: %s: %s\n", f->sweep, gnote);
                    snprintf(noted, sizeof noted, "%s", f->sweep);
                }
            } else if (want_variant) snprintf(variant, sizeof variant, "%s", want_variant);
            rc = fileio_pathf(dat, sizeof dat, "%s/%s.dat", datadir, f->name);
            if (rc == D2_OK) rc = plot_export(d, plotdir, f, variant, dat, &po);
            if (rc == D2_OK && po.rows == 0) {
                if (f->optional && !strcmp(want, "all")) {
                    printf("%s: skipped (optional; no data in %s)\n", f->name, dbp);
                    continue;
                }
                fprintf(stderr, "d2moe: %s: no data in %s (run its experiment first)\n", f->name, dbp);
                if (!status) status = 1;
                continue;
            }
            datp = dat;
        } else {
            /* timeline folders live beside the store: results/d2moe.db -> results/fig9 */
            char sdir[FILEIO_PATH_MAX];
            rc = fileio_dir_of(dbp, sdir, sizeof sdir, NULL);
            if (!rc) rc = fileio_pathf(csvdir, sizeof csvdir, "%s/%s", sdir, f->csv);
            cdir = csvdir;
            if (rc) { int e = cli_fail(rc); if (!status) status = e; continue; }
            if (access(csvdir, R_OK) != 0) {
                fprintf(stderr, "d2moe: %s: no timelines in %s (d2moe reproduce writes them)\n", f->name, csvdir);
                if (!status) status = 1;
                continue;
            }
            rc = plot_timelines_check(f, csvdir, opjoin_tl_check); /* before gnuplot: named with file:line */
        }
        if (rc == D2_OK) rc = plot_render(D2_GNUPLOT, plotdir, f, datp, cdir, &po, outbase);
        if (rc) { int e = cli_fail(rc); if (!status) status = e; continue; }
        if (cdir) printf("%s: %s.png %s.svg (from the timelines in %s)\n", f->name, outbase, outbase, cdir);
        else printf("%s: %s.png %s.svg (%zu rows, %zu series)\n", f->name, outbase, outbase, po.rows, po.series);
    }
    db_close(d);
    free(figs);
    return status;
}

int cli_plot_variants(int argc, char **argv, const char *const *sweeps, const char *const *variants, size_t n)
{
    map_sweeps = sweeps;
    map_variants = variants;
    map_n = n;
    int st = run(argc, argv);
    map_n = 0;
    return st;
}

const cli_cmd cli_cmd_plot = {"plot", "draw figures from the results store with gnuplot", run};
