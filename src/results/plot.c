/* plot.c - figures.ini, SQL export to gnuplot data blocks, gnuplot runs.
 * Every file it writes (data files, PNG/SVG, gnuplot logs) goes through
 * core/fileio.h: an output path that is a FIFO, device or symlink is
 * refused, and a figure is drawn into <path>.tmp and renamed into place. */
#include "results/plot.h"
#include "core/err.h"
#include "core/vec.h"
#include "core/fileio.h"
#include "core/inifile.h"
#include "core/suggest.h"
#include "core/text.h"
#include "results/runner.h"
#include "core/units.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct load_ctx {
    plot_fig *a;
    size_t n, cap;
    char seen[2 * PLOT_MAX_BIND + 8][64]; /* the keys of the current section, and their lines */
    int seen_line[2 * PLOT_MAX_BIND + 8];
    size_t nseen;
} load_ctx;

static int fig_entry(void *user, const char *section, const char *key, const char *value, const char *path, int line)
{
    load_ctx *c = user;
    if (!section[0]) D2_ERROR(D2_EFORMAT, "%s:%d: %s: outside a [figure] section", path, line, key);
    plot_fig *f = c->n ? &c->a[c->n - 1] : NULL;
    if (!f || strcmp(f->name, section) != 0) {
        for (size_t i = 0; i < c->n; i++)
            if (!strcmp(c->a[i].name, section)) D2_ERROR(D2_EFORMAT, "%s:%d: [%s]: section given twice", path, line, section);
        D2_TRY(VEC_RESERVE(c->a, c->cap, c->n + 1));
        f = &c->a[c->n++];
        memset(f, 0, sizeof *f);
        snprintf(f->name, sizeof f->name, "%s", section);
        f->line = line;
        c->nseen = 0;
    }
    /* a key given twice replaced the first (a bound parameter: the last won) */
    for (size_t i = 0; i < c->nseen; i++)
        if (!strcmp(c->seen[i], key)) D2_ERROR(D2_EFORMAT, "%s:%d: %s: given twice (first at line %d)", path, line, key, c->seen_line[i]);
    if (c->nseen < sizeof c->seen / sizeof c->seen[0] && strlen(key) < sizeof c->seen[0]) {
        snprintf(c->seen[c->nseen], sizeof c->seen[0], "%s", key);
        c->seen_line[c->nseen++] = line;
    }
    char *dst = NULL;
    size_t dn = 0;
    if (!strcmp(key, "sql")) { dst = f->sql; dn = sizeof f->sql; }
    else if (!strcmp(key, "gp")) { dst = f->gp; dn = sizeof f->gp; }
    else if (!strcmp(key, "csv")) { dst = f->csv; dn = sizeof f->csv; }
    else if (!strcmp(key, "title")) { dst = f->title; dn = sizeof f->title; }
    else if (!strcmp(key, "sweep")) { dst = f->sweep; dn = sizeof f->sweep; }
    else if (!strcmp(key, "timelines")) {
        if (!value[0] || strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._- ") != strlen(value))
            D2_ERROR(D2_EFORMAT, "%s:%d: timelines: expected names of letters, digits, '.', '_' and '-'", path, line);
        dst = f->timelines;
        dn = sizeof f->timelines;
        f->timelines_line = line;
    }
    if (dst == f->title && strchr(value, '\'')) D2_ERROR(D2_EFORMAT, "%s:%d: title: no single quotes", path, line);
    if (dst) {
        if ((size_t)snprintf(dst, dn, "%s", value) >= dn) D2_ERROR(D2_ERANGE, "%s:%d: %s: too long", path, line, key);
        return D2_OK;
    }
    if (!strcmp(key, "optional")) {
        if (strcmp(value, "true") && strcmp(value, "false"))
            D2_ERROR(D2_EFORMAT, "%s:%d: optional: expected true or false, got \"%s\"", path, line, value);
        f->optional = !strcmp(value, "true");
        return D2_OK;
    }
    if (!strncmp(key, "gp.", 3)) { /* a gnuplot string variable */
        if (f->ngp == PLOT_MAX_BIND) D2_ERROR(D2_ERANGE, "%s:%d: %s: more than %d gnuplot variables", path, line, key, PLOT_MAX_BIND);
        if (strchr(value, '\'')) D2_ERROR(D2_EFORMAT, "%s:%d: %s: no single quotes in gnuplot values", path, line, key);
        snprintf(f->gp_k[f->ngp], sizeof f->gp_k[0], "%s", key + 3);
        snprintf(f->gp_v[f->ngp], sizeof f->gp_v[0], "%s", value);
        f->ngp++;
        return D2_OK;
    }
    if (f->nbind == PLOT_MAX_BIND) D2_ERROR(D2_ERANGE, "%s:%d: %s: more than %d bound parameters", path, line, key, PLOT_MAX_BIND);
    snprintf(f->bind_k[f->nbind], sizeof f->bind_k[0], "%s", key);
    snprintf(f->bind_v[f->nbind], sizeof f->bind_v[0], "%s", value);
    f->nbind++;
    return D2_OK;
}

/* Scripts that draw a fixed number of timelines, one labelled panel each:
 * a figure drawn by one of them must name exactly that many (fewer breaks
 * the script, more are checked but not drawn).  A script not listed here
 * takes any number. */
static const struct gp_timelines {
    const char *gp;
    size_t n;
} gp_timelines[] = {
    {.gp = "fig9.gp", .n = 4}, /* plots/fig9.gp: panels (a) to (d) */
};

/* The number of space-separated names in s. */
static size_t count_words(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        if (*p != ' ' && (p == s || p[-1] == ' ')) n++;
    return n;
}

/* D2_OK, or D2_EFORMAT at the timelines line when f's script draws another number of them */
static int timelines_count_check(const char *ini_path, const plot_fig *f)
{
    for (size_t i = 0; i < sizeof gp_timelines / sizeof gp_timelines[0]; i++) {
        if (strcmp(f->gp, gp_timelines[i].gp)) continue;
        size_t got = count_words(f->timelines);
        if (got != gp_timelines[i].n)
            D2_ERROR(D2_EFORMAT, "%s:%d: [%s]: timelines: %s draws exactly %zu, got %zu", ini_path, f->timelines_line, f->name,
                     f->gp, gp_timelines[i].n, got);
    }
    return D2_OK;
}

int plot_figures_load(const char *ini_path, plot_fig **figs, size_t *n)
{
    load_ctx c;
    memset(&c, 0, sizeof c);
    int rc = inifile_parse(ini_path, fig_entry, &c, NULL);
    for (size_t i = 0; rc == D2_OK && i < c.n; i++) {
        plot_fig *f = &c.a[i];
        if (!f->gp[0]) { d2_err_set("%s:%d: [%s]: gp: required key missing", ini_path, f->line, f->name); rc = D2_EFORMAT; }
        else if (!f->sql[0] == !f->csv[0]) { d2_err_set("%s:%d: [%s]: give exactly one of sql or csv", ini_path, f->line, f->name); rc = D2_EFORMAT; }
        else if (!f->csv[0] != !f->timelines[0]) { d2_err_set("%s:%d: [%s]: timelines goes with csv, and csv needs it", ini_path, f->line, f->name); rc = D2_EFORMAT; }
        else if (f->timelines[0]) rc = timelines_count_check(ini_path, f);
    }
    if (rc == D2_OK && c.n == 0) { d2_err_set("%s: no figures (a [NAME] section with gp and sql or csv each)", ini_path); rc = D2_EFORMAT; }
    if (rc != D2_OK) { free(c.a); return rc; }
    *figs = c.a;
    *n = c.n;
    return D2_OK;
}

static char *slurp(const char *path)
{
    FILE *f;
    uint64_t size; /* a regular file of at most FILEIO_INI_MAX bytes (a FIFO is not waited on) */
    int rc = fileio_open_read(path, FILEIO_INI_MAX, &f, &size);
    if (rc != D2_OK) { errno = rc == D2_ENOTFOUND ? ENOENT : rc == D2_ERANGE ? EFBIG : EINVAL; return NULL; }
    long len = (long)size;
    char *buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) { free(buf); buf = NULL; }
    if (buf) buf[len] = '\0';
    fclose(f);
    return buf;
}

/* The readings (param reading.name) of the runs the figure of (sweep,
 * variant) shows, ", "-separated in name order, into out ("" when no run
 * stored one).  A D2 status. */
static int shown_reading(db *d, const char *sweep, const char *variant, char *out, size_t n)
{
    static const char q[] = "SELECT group_concat(v, ', ') FROM (SELECT DISTINCT p.value AS v FROM sweep_runs s "
                            "JOIN params p ON p.run_id = s.id AND p.key = 'reading.name' "
                            "WHERE s.sweep = ?1 AND s.variant = ?2 ORDER BY v)";
    sqlite3_stmt *st;
    out[0] = 0;
    if (sqlite3_prepare_v2(db_handle(d), q, -1, &st, NULL) != SQLITE_OK)
        D2_ERROR(D2_EIO, "the readings of sweep %s: %s", sweep, sqlite3_errmsg(db_handle(d)));
    sqlite3_bind_text(st, 1, sweep, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, variant, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0)) snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        d2_err_set("the readings of sweep %s: %s", sweep, sqlite3_errmsg(db_handle(d)));
        sqlite3_finalize(st);
        return rc == SQLITE_NOMEM ? D2_ENOMEM : D2_EIO;
    }
    sqlite3_finalize(st);
    /* a name goes into gnuplot's title: only a name's characters */
    for (char *p = out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_., ", *p))) *p = '?';
    return D2_OK;
}

int plot_export(db *d, const char *plotdir, const plot_fig *f, const char *variant, const char *dat_path, plot_out *out)
{
    memset(out, 0, sizeof *out);
    char qpath[FILEIO_PATH_MAX];
    D2_TRY(fileio_pathf(qpath, sizeof qpath, "%s/%s", plotdir, f->sql));
    D2_TRY(db_sweep_runs(d)); /* the runs each (sweep, variant) shows: temp.sweep_runs */
    if (f->sweep[0]) D2_TRY(shown_reading(d, f->sweep, variant ? variant : "base", out->reading, sizeof out->reading));
    char *sql = slurp(qpath);
    if (!sql) D2_ERROR(D2_ENOTFOUND, "%s: cannot read: %s", qpath, strerror(errno));
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_handle(d), sql, -1, &st, NULL);
    free(sql);
    if (rc != SQLITE_OK) D2_ERROR(D2_EFORMAT, "%s: %s", qpath, sqlite3_errmsg(db_handle(d)));
    /* empty or only comments: no statement (SQLite's "bad parameter or
     * other API misuse" at the step); a write: refused by the read-only
     * store only when run ("attempt to write a readonly database", exit 1) */
    if (!st) D2_ERROR(D2_EFORMAT, "%s: no query (the file is empty or only comments)", qpath);
    if (!sqlite3_stmt_readonly(st)) {
        sqlite3_finalize(st);
        D2_ERROR(D2_EFORMAT, "%s: not a SELECT (a figure's query only reads)", qpath);
    }
    for (int i = 1; i <= sqlite3_bind_parameter_count(st); i++) {
        const char *pn = sqlite3_bind_parameter_name(st, i);
        const char *v = NULL;
        for (size_t k = 0; pn && k < f->nbind; k++)
            if (!strcmp(pn + 1, f->bind_k[k])) v = f->bind_v[k];
        if (!v && pn && !strcmp(pn + 1, "variant")) v = variant ? variant : "base";
        if (!v && pn && !strcmp(pn + 1, "sweep") && f->sweep[0]) v = f->sweep;
        if (!v) {
            sqlite3_finalize(st);
            D2_ERROR(D2_EFORMAT, "%s: parameter %s has no value in [%s] of figures.ini", qpath, pn ? pn : "?", f->name);
        }
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    }
    /* the header names each column as the query does (AS NAME); an alias
     * ":KEY" is the figure's KEY in figures.ini (a column whose meaning is
     * the figure's, e.g. fig11's :metric); blanks become '_' (one word each) */
    int ncol = sqlite3_column_count(st);
    const char *colname[64];
    for (int c = 0; c < ncol && c < 64; c++) {
        const char *cn = sqlite3_column_name(st, c), *v = cn;
        if (cn && cn[0] == ':') {
            v = NULL;
            for (size_t k = 0; k < f->nbind; k++)
                if (!strcmp(cn + 1, f->bind_k[k])) v = f->bind_v[k];
            if (!v) {
                d2_err_set("%s: column %d is named \"%s\", but [%s] of figures.ini has no key %s", qpath, c + 1, cn, f->name, cn + 1);
                sqlite3_finalize(st);
                return D2_EFORMAT;
            }
        }
        colname[c] = v ? v : "?";
    }
    fileio_out *fo;
    FILE *o;
    if ((rc = fileio_out_open(dat_path, &fo, &o)) != D2_OK) { sqlite3_finalize(st); return rc; }
    fprintf(o, "# %s: %s\n", f->name, f->title);
    if (out->reading[0]) fprintf(o, "# reading: %s\n", out->reading);
    fputc('#', o);
    for (int c = 0; c < ncol; c++) {
        fputc(' ', o);
        for (const char *p = c < 64 ? colname[c] : "?"; *p; p++) fputc(*p == ' ' || *p == '\t' || *p == '\n' ? '_' : *p, o);
    }
    fprintf(o, "\n");
    char prev[256] = "";
    size_t tl = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char label[256];
        const unsigned char *s0 = sqlite3_column_text(st, 0);
        snprintf(label, sizeof label, "%s", s0 ? (const char *)s0 : "none");
        for (char *p = label; *p; p++)
            if (*p == ' ' || *p == '\t' || *p == '\'' || *p == '"') *p = '_';
        if (out->rows == 0 || strcmp(label, prev) != 0) {
            if (out->rows) fprintf(o, "\n\n");
            snprintf(prev, sizeof prev, "%s", label);
            /* the legend keeps the label's spaces: gnuplot's word() splits
             * titles on ASCII blanks, so they travel as U+00A0 */
            char shown[512];
            size_t k = 0;
            for (const char *q = s0 ? (const char *)s0 : "none"; *q && k + 3 < sizeof shown; q++) {
                if (*q == ' ') { shown[k++] = (char)0xC2; shown[k++] = (char)0xA0; }
                else if (*q != '\'' && *q != '"' && *q != '\t') shown[k++] = *q;
            }
            shown[k] = '\0';
            int w = snprintf(out->titles + tl, sizeof out->titles - tl, "%s%s", tl ? " " : "", shown);
            if (w > 0 && (size_t)w < sizeof out->titles - tl) tl += (size_t)w;
            out->series++;
        }
        fprintf(o, "%s", label);
        for (int c = 1; c < ncol; c++) {
            if (sqlite3_column_type(st, c) == SQLITE_NULL) fprintf(o, "\tNaN");
            else if (sqlite3_column_type(st, c) == SQLITE_TEXT) {
                char v[256];
                snprintf(v, sizeof v, "%s", (const char *)sqlite3_column_text(st, c));
                for (char *p = v; *p; p++)
                    if (*p == ' ' || *p == '\t') *p = '_';
                fprintf(o, "\t%s", v);
            } else fprintf(o, "\t%.10g", sqlite3_column_double(st, c));
        }
        fprintf(o, "\n");
        out->rows++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) { fileio_out_abort(fo); D2_ERROR(D2_EDB, "%s: %s", qpath, sqlite3_errstr(rc)); }
    if (ferror(o)) { fileio_out_abort(fo); D2_ERROR(D2_EIO, "%s: write failed", dat_path); }
    return fileio_out_commit(fo);
}

int plot_gp_assign(char *buf, size_t cap, size_t *off, const char *name, const char *value, const char *what)
{
    size_t o = *off;
    int w = snprintf(buf + o, cap > o ? cap - o : 0, "%s%s='", o ? "; " : "", name);
    if (w < 0 || (size_t)w >= (cap > o ? cap - o : 0)) D2_ERROR(D2_ERANGE, "gnuplot's command line is too long (%s)", name);
    o += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        unsigned char c = *p;
        if (text_ctl_byte(c)) {
            if (what) D2_ERROR(D2_EINVAL, "%s %s: a control character in a path cannot be passed to gnuplot", what, value);
            c = ' ';
        }
        if (o + 3 >= cap) D2_ERROR(D2_ERANGE, "gnuplot's command line is too long (%s)", name);
        if (c == '\'') buf[o++] = '\'';
        buf[o++] = (char)c;
    }
    if (o + 2 >= cap) D2_ERROR(D2_ERANGE, "gnuplot's command line is too long (%s)", name);
    buf[o++] = '\'';
    buf[o] = '\0';
    *off = o;
    return D2_OK;
}

/* gnuplot's messages go to log_path, kept when it fails (removed on a
 * signal while it runs) */
static int run_gnuplot(const char *gnuplot, const char *script, const char *vars, const char *log_path)
{
    D2_TRY(fileio_out_check(log_path));
    fileio_tmp_register(log_path); /* before it exists (core/fileio.c) */
    int lfd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (lfd < 0) {
        int e = errno;
        fileio_tmp_forget(log_path);
        D2_ERROR(D2_EIO, "%s: cannot create: %s", log_path, strerror(e));
    }
    pid_t p = fork();
    if (p < 0) { close(lfd); fileio_tmp_forget(log_path); D2_ERROR(D2_EIO, "fork: %s", strerror(errno)); }
    if (p == 0) {
        dup2(lfd, 2);
        dup2(lfd, 1);
        execlp(gnuplot, gnuplot, "-e", vars, script, (char *)NULL);
        _exit(127);
    }
    close(lfd);
    int status;
    int w = waitpid(p, &status, 0);
    fileio_tmp_forget(log_path);
    if (w < 0) D2_ERROR(D2_EIO, "waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            D2_ERROR(D2_EIO, "cannot run %s (apt-get install gnuplot-nox)", gnuplot);
        char *log = slurp(log_path);
        char first[300] = "";
        if (log) {
            char *nl = strrchr(log, '\n');
            while (nl && nl > log && nl[1] == '\0') { *nl = '\0'; nl = strrchr(log, '\n'); }
            snprintf(first, sizeof first, "%s", nl ? nl + 1 : log);
            free(log);
        }
        D2_ERROR(D2_EIO, "%s failed on %s: %s (log: %s)", gnuplot, script, first, log_path);
    }
    return D2_OK;
}

/* run gnuplot writing into fo's temporary, then rename it over outp (or
 * remove it when gnuplot fails or writes nothing) */
static int draw_into(const char *gnuplot, const char *script, const char *vars, const char *log_path, fileio_out *fo,
                     const char *outp)
{
    int rc = run_gnuplot(gnuplot, script, vars, log_path);
    struct stat sb;
    if (rc == D2_OK && (stat(fileio_out_tmp(fo), &sb) != 0 || sb.st_size == 0)) {
        d2_err_set("%s: gnuplot wrote nothing", outp);
        rc = D2_EIO;
    }
    if (rc != D2_OK) { fileio_out_abort(fo); return rc; }
    return fileio_out_commit(fo);
}

int plot_timelines_check(const plot_fig *f, const char *dir, int (*check)(const char *path))
{
    char names[sizeof f->timelines];
    snprintf(names, sizeof names, "%s", f->timelines);
    for (char *save = NULL, *t = strtok_r(names, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        char p[FILEIO_PATH_MAX];
        struct stat sb;
        D2_TRY(fileio_pathf(p, sizeof p, "%s/%s.csv", dir, t));
        if (lstat(p, &sb) != 0 && errno == ENOENT)
            D2_ERROR(D2_ENOTFOUND, "%s: missing: %s draws the timelines %s (.csv) of that folder ('d2moe reproduce' writes them)",
                     p, f->name, f->timelines);
        D2_TRY(check(p));
    }
    return D2_OK;
}

int plot_render(const char *gnuplot, const char *plotdir, const plot_fig *f, const char *dat_path,
                const char *datadir, const plot_out *po, const char *outbase)
{
    static const char *const fmts[] = {"png", "svg"};
    char script[FILEIO_PATH_MAX], log_path[FILEIO_PATH_MAX];
    D2_TRY(fileio_pathf(script, sizeof script, "%s/%s", plotdir, f->gp));
    if (access(script, R_OK) != 0) D2_ERROR(D2_ENOTFOUND, "%s: cannot read: %s", script, strerror(errno));
    D2_TRY(fileio_pathf(log_path, sizeof log_path, "%s.gnuplot.log", outbase));
    for (int i = 0; i < 2; i++) {
        char outp[FILEIO_PATH_MAX];
        D2_TRY(fileio_pathf(outp, sizeof outp, "%s.%s", outbase, fmts[i]));
        fileio_out *fo;
        FILE *fp;
        D2_TRY(fileio_out_open(outp, &fo, &fp));
        char vars[8192], ns[32];
        size_t off = 0;
        int rc = plot_gp_assign(vars, sizeof vars, &off, "fmt", fmts[i], "the format");
        if (!rc) rc = plot_gp_assign(vars, sizeof vars, &off, "outbase", outbase, "the output");
        if (!rc) rc = plot_gp_assign(vars, sizeof vars, &off, "outfile", fileio_out_tmp(fo), "the output");
        if (!rc) rc = plot_gp_assign(vars, sizeof vars, &off, "datafile", dat_path ? dat_path : "", "the data file");
        if (!rc) rc = plot_gp_assign(vars, sizeof vars, &off, "datadir", datadir ? datadir : "", "the data folder");
        if (!rc) rc = plot_gp_assign(vars, sizeof vars, &off, "titles", po ? po->titles : "", NULL);
        if (!rc) rc = plot_gp_assign(vars, sizeof vars, &off, "plotdir", plotdir, "the plots folder");
        char ftitle[sizeof f->title + sizeof po->reading + 32];
        if (po && po->reading[0]) snprintf(ftitle, sizeof ftitle, "%s [reading %s]", f->title, po->reading);
        else snprintf(ftitle, sizeof ftitle, "%s", f->title);
        if (!rc) rc = plot_gp_assign(vars, sizeof vars, &off, "figtitle", ftitle, NULL);
        if (!rc) rc = plot_gp_assign(vars, sizeof vars, &off, "timelines", f->timelines, NULL);
        for (size_t k = 0; k < f->ngp && !rc; k++) rc = plot_gp_assign(vars, sizeof vars, &off, f->gp_k[k], f->gp_v[k], NULL);
        snprintf(ns, sizeof ns, "; nseries=%zu", po ? po->series : 0);
        if (!rc && off + strlen(ns) >= sizeof vars) { d2_err_set("gnuplot's command line is too long"); rc = D2_ERANGE; }
        if (rc) { fileio_out_abort(fo); return rc; }
        memcpy(vars + off, ns, strlen(ns) + 1);
        D2_TRY(draw_into(gnuplot, script, vars, log_path, fo, outp));
    }
    unlink(log_path);
    return D2_OK;
}

/* ---- any sweep: plot --sweep NAME --x KEY --y METRIC ------------------- */

static const char *key_alias(const char *k)
{
    if (!strcmp(k, "model")) return "model.name";
    if (!strcmp(k, "device")) return "device.name";
    if (!strcmp(k, "trace")) return "input.trace_id";
    return k;
}

/* columns of the run that export writes, usable as keys: name, expression */
static const char *const run_cols[][2] = {
    {"variant", "runs.variant"}, {"status", "runs.status"}, {"run_id", "runs.id"}, {"uid", "runs.uid"},
    {"kind", "runs.kind"}, {"mode", "runs.mode"}, {"code_version", "runs.code_version"},
    {"started_at", "runs.started_at"}, {"ended_at", "runs.ended_at"}, {"host", "runs.host"},
    {"cmdline", "runs.cmdline"}, {"rng", "runs.rng"}, {"config_hash", "runs.config_hash"},
    {"sweep", "(SELECT value FROM params WHERE run_id = runs.id AND key = 'sweep.name')"},
};

int plot_key_is_variant(const char *key) { return key && !strcmp(key, "variant"); }

/* the names a key may take in this sweep: params and metrics of its runs */
static int sweep_names(db *d, const char *sweep, char ***out, size_t *n)
{
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db_handle(d),
            "WITH r AS (SELECT run_id AS id FROM params WHERE key = 'sweep.name' AND value = ?1)"
            " SELECT DISTINCT key FROM params WHERE run_id IN (SELECT id FROM r)"
            " UNION SELECT DISTINCT name FROM metrics WHERE run_id IN (SELECT id FROM r)"
            " UNION SELECT DISTINCT 'inputs.' || role FROM inputs WHERE run_id IN (SELECT id FROM r)"
            " UNION VALUES ('model'), ('device'), ('trace'), ('seed'), ('variant'), ('status'), ('run_id'), ('uid'), ('kind'),"
            " ('mode'), ('code_version'), ('started_at'), ('ended_at'), ('host'), ('cmdline'), ('rng'), ('config_hash'), ('sweep')",
            -1, &st, NULL) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: %s", db_path(d), sqlite3_errmsg(db_handle(d)));
    sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    char **a = NULL;
    size_t cnt = 0, cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (VEC_RESERVE(a, cap, cnt + 1) != D2_OK) break;
        a[cnt] = strdup((const char *)sqlite3_column_text(st, 0));
        if (a[cnt]) cnt++;
    }
    sqlite3_finalize(st);
    *out = a;
    *n = cnt;
    return D2_OK;
}

static void names_free(char **a, size_t n)
{
    for (size_t i = 0; i < n; i++) free(a[i]);
    free(a);
}

/* SQL expression for KEY of the run `runs`, and its unit ("" if none) */
static int key_expr(db *d, const char *sweep, const char *opt, const char *key, char **expr, char *unit, size_t un)
{
    *expr = NULL;
    unit[0] = '\0';
    const char *k = key_alias(key);
    if (!strcmp(k, "seed")) { *expr = sqlite3_mprintf("runs.seed"); return *expr ? D2_OK : D2_ENOMEM; }
    for (size_t i = 0; i < sizeof run_cols / sizeof run_cols[0]; i++)
        if (!strcmp(k, run_cols[i][0])) { *expr = sqlite3_mprintf("%s", run_cols[i][1]); return *expr ? D2_OK : D2_ENOMEM; }
    int only_metric = 0; /* export's name of a metric that clashes with a column */
    if (!strncmp(k, "metric.", 7) && k[7]) { k += 7; only_metric = 1; }
    if (!strncmp(k, "inputs.", 7) && k[7]) { /* export's input columns: the file's hash, or its path */
        char role[128];
        size_t l = strlen(k);
        const int path = l > 12 && !strcmp(k + l - 5, ".path");
        snprintf(role, sizeof role, "%.*s", (int)(l - 7 - (path ? 5 : 0)), k + 7);
        *expr = sqlite3_mprintf("(SELECT %s FROM inputs WHERE run_id = runs.id AND role = %Q)", path ? "path" : "xxh128", role);
        return *expr ? D2_OK : D2_ENOMEM;
    }
    sqlite3_stmt *st;
    int kind = 0; /* 1 param, 2 metric */
    if (sqlite3_prepare_v2(db_handle(d),
            "SELECT 1, '' FROM params WHERE NOT ?3 AND key = ?1 AND run_id IN (SELECT run_id FROM params WHERE key = 'sweep.name' AND value = ?2)"
            " UNION ALL SELECT 2, unit FROM metrics WHERE name = ?1 AND run_id IN (SELECT run_id FROM params WHERE key = 'sweep.name' AND value = ?2)"
            " LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: %s", db_path(d), sqlite3_errmsg(db_handle(d)));
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sweep, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, only_metric);
    if (sqlite3_step(st) == SQLITE_ROW) {
        kind = sqlite3_column_int(st, 0);
        snprintf(unit, un, "%s", (const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
    if (kind == 1) {
        *expr = sqlite3_mprintf("(SELECT value FROM params WHERE run_id = runs.id AND key = %Q)", k);
        snprintf(unit, un, "%s", runner_param_units(k)); /* from the parameter's table row */
    }
    else if (kind == 2) *expr = sqlite3_mprintf("(SELECT value FROM metrics WHERE run_id = runs.id AND name = %Q)", k);
    else {
        char **names;
        size_t n;
        D2_TRY(sweep_names(d, sweep, &names, &n));
        char hint[300];
        suggest_hint(key, (const char *const *)names, n, hint, sizeof hint);
        names_free(names, n);
        D2_ERROR(D2_ENOTFOUND, "%s %s: no parameter, metric or run column of that name in the runs of sweep %s%s "
                 "(d2moe export --sweep %s lists the columns)", opt, key, sweep, hint, sweep);
    }
    return *expr ? D2_OK : D2_ENOMEM;
}

static int is_number(const char *s, double *v)
{
    char *end;
    if (!s || !*s) return 0;
    *v = strtod(s, &end);
    return *end == '\0';
}

/* The sweep-spec keys of the runs a plot selects (a job's text: one
 * key=value per line) that take more than one value, other than --x and
 * --series: what would mix inside a line. */
#define MIX_KEYS 32
typedef struct mix {
    char key[MIX_KEYS][64], val[MIX_KEYS][128];
    int varies[MIX_KEYS];
    size_t n;
} mix;

static int same_key(const char *spec_key, const char *opt_key)
{
    return opt_key && (!strcmp(spec_key, opt_key) || !strcmp(key_alias(spec_key), key_alias(opt_key)));
}

static void mix_add(mix *m, const char *job, const plot_query *q)
{
    for (const char *p = job; p && *p;) {
        const char *nl = strchr(p, '\n'), *eq = strchr(p, '=');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (eq && (size_t)(eq - p) < len && (size_t)(eq - p) < sizeof m->key[0]) {
            char k[64], v[128];
            snprintf(k, sizeof k, "%.*s", (int)(eq - p), p);
            snprintf(v, sizeof v, "%.*s", (int)(len - (size_t)(eq - p) - 1), eq + 1);
            /* input.ROLE lines hash the files a job read, not a swept key */
            if (strcmp(k, "sweep") && strncmp(k, "input.", 6) && !same_key(k, q->x) && !same_key(k, q->series)) {
                size_t i = 0;
                while (i < m->n && strcmp(m->key[i], k)) i++;
                if (i == m->n && m->n < MIX_KEYS) {
                    snprintf(m->key[i], sizeof m->key[i], "%s", k);
                    snprintf(m->val[i], sizeof m->val[i], "%s", v);
                    m->n++;
                } else if (i < m->n && strcmp(m->val[i], v))
                    m->varies[i] = 1;
            }
        }
        p = nl ? nl + 1 : NULL;
    }
}

static void mix_keys(const mix *m, char *out, size_t n)
{
    size_t l = 0;
    out[0] = '\0';
    for (size_t i = 0; i < m->n; i++)
        if (m->varies[i]) {
            int w = snprintf(out + l, n - l, "%s%s", l ? ", " : "", m->key[i]);
            if (w < 0 || (size_t)w >= n - l) break;
            l += (size_t)w;
        }
}

void plot_where_hint(db *d, const plot_query *q, char *buf, size_t n)
{
    buf[0] = '\0';
    for (size_t w = 0; w < q->nwhere; w++) {
        char *e = NULL, u[64];
        if (key_expr(d, q->sweep, "--where", q->where_k[w], &e, u, sizeof u) != D2_OK) continue;
        char *sql = sqlite3_mprintf("SELECT DISTINCT %s FROM runs WHERE id IN (SELECT run_id FROM params WHERE key = 'sweep.name'"
                                    " AND value = %Q) ORDER BY 1 LIMIT 64", e, q->sweep);
        sqlite3_free(e);
        sqlite3_stmt *st;
        if (!sql || sqlite3_prepare_v2(db_handle(d), sql, -1, &st, NULL) != SQLITE_OK) { sqlite3_free(sql); continue; }
        sqlite3_free(sql);
        char *vals[64], list[600] = "";
        size_t nv = 0, l = 0;
        int has = 0;
        double want = 0;
        int num = units_parse_double(q->where_v[w], &want) == 0;
        while (sqlite3_step(st) == SQLITE_ROW && nv < 64) {
            const char *v = (const char *)sqlite3_column_text(st, 0);
            if (!v) continue;
            double x;
            if (!strcmp(v, q->where_v[w]) || (num && is_number(v, &x) && x == want)) has = 1;
            if (!(vals[nv] = strdup(v))) break;
            int k = snprintf(list + l, sizeof list - l, "%s%s", nv ? ", " : "", v);
            if (k > 0 && (size_t)k < sizeof list - l) l += (size_t)k;
            nv++;
        }
        sqlite3_finalize(st);
        if (!has && nv) {
            char hint[300];
            suggest_hint(q->where_v[w], (const char *const *)vals, nv, hint, sizeof hint);
            snprintf(buf, n, " (--where %s=%s: no run has it%s; its values: %s)", q->where_k[w], q->where_v[w], hint, list);
        }
        for (size_t i = 0; i < nv; i++) free(vals[i]);
        if (buf[0]) return;
    }
}

int plot_sweep_export(db *d, const plot_query *q, const char *dat_path, plot_out *out, plot_axes *ax)
{
    memset(out, 0, sizeof *out);
    memset(ax, 0, sizeof *ax);
    char *xe = NULL, *ye = NULL, *se = NULL, xu[64], yu[64], su[64];
    int rc = key_expr(d, q->sweep, "--x", q->x, &xe, xu, sizeof xu);
    if (rc == D2_OK) rc = key_expr(d, q->sweep, "--y", q->y, &ye, yu, sizeof yu);
    if (rc == D2_OK && q->series) rc = key_expr(d, q->sweep, "--series", q->series, &se, su, sizeof su);
    if (rc == D2_OK) rc = db_sweep_runs(d);
    sqlite3_str *s = sqlite3_str_new(db_handle(d));
    if (q->any_grid) /* each job's latest run, whatever grid it is in (the rule of sweep_runs without the grid) */
        sqlite3_str_appendf(s,
            "WITH r AS (SELECT id FROM (SELECT j.run_id AS id, row_number() OVER (PARTITION BY rv.variant, j.job_hash"
            " ORDER BY rv.ended_at DESC, rv.id DESC) AS k FROM sweep_jobs j JOIN runs rv ON rv.id = j.run_id"
            " WHERE j.sweep = %Q AND (%Q IS NULL OR rv.variant = %Q)) WHERE k = 1)",
            q->sweep, q->variant, q->variant);
    else
        sqlite3_str_appendf(s, "WITH r AS (SELECT id FROM sweep_runs WHERE sweep = %Q AND (%Q IS NULL OR variant = %Q))", q->sweep,
                            q->variant, q->variant);
    sqlite3_str_appendf(s,
        " SELECT %s, %s, CASE WHEN runs.status = 'ok' THEN %s END, runs.status,"
        " (SELECT job FROM sweep_jobs WHERE run_id = runs.id), runs.id FROM r JOIN runs ON runs.id = r.id WHERE 1",
        se ? se : "'all'", xe ? xe : "NULL", ye ? ye : "NULL");
    for (size_t i = 0; rc == D2_OK && i < q->nwhere; i++) {
        char *we = NULL, wu[64], opt[300];
        snprintf(opt, sizeof opt, "--where %s=%s:", q->where_k[i], q->where_v[i]);
        rc = key_expr(d, q->sweep, opt, q->where_k[i], &we, wu, sizeof wu);
        if (rc != D2_OK) break;
        double v;
        if (units_parse_double(q->where_v[i], &v) == 0)
            sqlite3_str_appendf(s, " AND CAST(%s AS REAL) = %.17g", we, v);
        else
            sqlite3_str_appendf(s, " AND %s = %Q", we, q->where_v[i]);
        sqlite3_free(we);
    }
    /* numbers in numeric order (text order put 1.4G before 500M), then text */
    sqlite3_str_appendf(s, " ORDER BY 1, CAST(%s AS REAL), %s", xe ? xe : "NULL", xe ? xe : "NULL");
    char *sql = sqlite3_str_finish(s);
    const int ymetric = ye && strstr(ye, "FROM metrics WHERE") != NULL; /* key_expr's metric lookup */
    sqlite3_free(xe);
    sqlite3_free(ye);
    sqlite3_free(se);
    if (rc != D2_OK) { sqlite3_free(sql); return rc; }
    snprintf(ax->xlabel, sizeof ax->xlabel, "%s%s%s%s", q->x, xu[0] ? " (" : "", xu, xu[0] ? ")" : "");
    snprintf(ax->ylabel, sizeof ax->ylabel, "%s%s%s%s", q->y, yu[0] ? " (" : "", yu, yu[0] ? ")" : "");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db_handle(d), sql, -1, &st, NULL) != SQLITE_OK) {
        d2_err_set("%s: %s", db_path(d), sqlite3_errmsg(db_handle(d)));
        sqlite3_free(sql);
        return D2_EDB;
    }
    sqlite3_free(sql);
    /* first pass: is x numeric?  categories in order of first appearance;
     * does a line hold two runs at one x (another swept key varies)? */
    char cats[64][128];
    size_t ncat = 0;
    ax->xcat = 0;
    mix m = {0};
    char ps[256] = "", px[128] = "";
    int first = 1, dup = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *x = (const char *)sqlite3_column_text(st, 1), *sv = (const char *)sqlite3_column_text(st, 0);
        double v;
        /* a metric is a number or null: text in one (hand-edited, another
         * writer) was drawn as 0 */
        int yt = sqlite3_column_type(st, 2);
        if (ymetric && (yt == SQLITE_TEXT || yt == SQLITE_BLOB)) {
            char shown[64] = "a blob";
            if (yt == SQLITE_TEXT) snprintf(shown, sizeof shown, "\"%.40s\"", (const char *)sqlite3_column_text(st, 2));
            for (char *c = shown; *c; c++)
                if ((unsigned char)*c < 0x20) *c = '?'; /* one line */
            d2_err_set("%s: run %lld: metric %s: %s is not a number", db_path(d), (long long)sqlite3_column_int64(st, 5), q->y, shown);
            sqlite3_finalize(st);
            return D2_EFORMAT;
        }
        if (!is_number(x, &v)) ax->xcat = 1;
        size_t k = 0;
        while (k < ncat && strcmp(cats[k], x ? x : "")) k++;
        if (k == ncat && ncat < 64) snprintf(cats[ncat++], sizeof cats[0], "%s", x ? x : "");
        if (!first && !strcmp(ps, sv ? sv : "") && !strcmp(px, x ? x : "")) dup = 1;
        first = 0;
        snprintf(ps, sizeof ps, "%s", sv ? sv : "");
        snprintf(px, sizeof px, "%s", x ? x : "");
        mix_add(&m, (const char *)sqlite3_column_text(st, 4), q);
    }
    sqlite3_reset(st);
    if (dup) {
        sqlite3_finalize(st);
        char keys[600];
        mix_keys(&m, keys, sizeof keys);
        D2_ERROR(D2_EINVAL, "plot --sweep %s: a line would join runs at the same --x that differ in %s; pick one with --where KEY=VALUE, "
                 "or draw it as --series", q->sweep, keys[0] ? keys : "a key outside the sweep's spec (two variants?)");
    }
    fileio_out *fo;
    FILE *o;
    if ((rc = fileio_out_open(dat_path, &fo, &o)) != D2_OK) { sqlite3_finalize(st); return rc; }
    fprintf(o, "# sweep %s, variant %s: series x y oom_marker x_label\n", q->sweep, q->variant ? q->variant : "(every one)");
    char prev[256] = "";
    size_t tl = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char label[256], xl[128];
        const unsigned char *s0 = sqlite3_column_text(st, 0), *x = sqlite3_column_text(st, 1);
        const char *status = (const char *)sqlite3_column_text(st, 3);
        snprintf(label, sizeof label, "%s", s0 ? (const char *)s0 : "none");
        for (char *p = label; *p; p++)
            if (*p == ' ' || *p == '\t' || *p == '\'' || *p == '"') *p = '-';
        snprintf(xl, sizeof xl, "%s", x ? (const char *)x : "");
        for (char *p = xl; *p; p++)
            if (*p == ' ' || *p == '\t') *p = '-';
        if (out->rows == 0 || strcmp(label, prev) != 0) {
            if (out->rows) fprintf(o, "\n\n");
            snprintf(prev, sizeof prev, "%s", label);
            int w = snprintf(out->titles + tl, sizeof out->titles - tl, "%s%s", tl ? " " : "", label);
            if (w > 0 && (size_t)w < sizeof out->titles - tl) tl += (size_t)w;
            out->series++;
        }
        double xv = 0;
        if (ax->xcat) {
            size_t k = 0;
            while (k < ncat && strcmp(cats[k], xl)) k++;
            xv = (double)k;
        } else xv = sqlite3_column_double(st, 1);
        int oom = status && !strcmp(status, "oom");
        ax->oom += oom;
        ax->failed += status && !strcmp(status, "failed");
        fprintf(o, "%s\t%.10g\t", label, xv);
        if (sqlite3_column_type(st, 2) == SQLITE_NULL) fprintf(o, "NaN");
        else fprintf(o, "%.10g", sqlite3_column_double(st, 2));
        fprintf(o, "\t%s\t%s\n", oom ? "0" : "NaN", xl[0] ? xl : "-");
        out->rows++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) { fileio_out_abort(fo); D2_ERROR(D2_EDB, "%s: %s", db_path(d), sqlite3_errstr(rc)); }
    if (ferror(o)) { fileio_out_abort(fo); D2_ERROR(D2_EIO, "%s: write failed", dat_path); }
    return fileio_out_commit(fo);
}

int plot_out_check(const char *outpath)
{
    const char *dot = strrchr(outpath, '.');
    if (!dot || (strcmp(dot, ".svg") && strcmp(dot, ".png")))
        D2_ERROR(D2_EINVAL, "-o %s: expected a file name ending in .png or .svg", outpath);
    return fileio_out_check(outpath);
}

int plot_draw(const char *gnuplot, const char *script, const char *vars, const char *outpath)
{
    D2_TRY(plot_out_check(outpath));
    const char *dot = strrchr(outpath, '.');
    const char *fmt = !strcmp(dot, ".svg") ? "svg" : "png";
    if (access(script, R_OK) != 0) D2_ERROR(D2_ENOTFOUND, "%s: cannot read: %s", script, strerror(errno));
    char outbase[FILEIO_PATH_MAX], log_path[FILEIO_PATH_MAX], *all;
    D2_TRY(fileio_pathf(outbase, sizeof outbase, "%.*s", (int)(dot - outpath), outpath));
    D2_TRY(fileio_pathf(log_path, sizeof log_path, "%s.gnuplot.log", outbase));
    fileio_out *fo;
    FILE *fp;
    D2_TRY(fileio_out_open(outpath, &fo, &fp));
    size_t l = strlen(vars) + 4 * (strlen(outbase) + strlen(fileio_out_tmp(fo))) + 96, off = 0;
    if (!(all = malloc(l))) { fileio_out_abort(fo); D2_ERROR(D2_ENOMEM, "out of memory"); }
    int rc = plot_gp_assign(all, l, &off, "fmt", fmt, "-o");
    if (!rc) rc = plot_gp_assign(all, l, &off, "outbase", outbase, "-o");
    if (!rc) rc = plot_gp_assign(all, l, &off, "outfile", fileio_out_tmp(fo), "-o");
    if (rc) { free(all); fileio_out_abort(fo); return rc; }
    snprintf(all + off, l - off, "; %s", vars);
    rc = draw_into(gnuplot, script, all, log_path, fo, outpath);
    free(all);
    if (rc != D2_OK) return rc;
    unlink(log_path);
    return D2_OK;
}
