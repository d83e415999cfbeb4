/* report.c - summary queries as text or HTML tables, and the
 * self-contained HTML report (see report.h). */
#include "results/report.h"
#include "core/err.h"
#include "core/vec.h"
#include "core/fileio.h"
#include "core/hash.h"
#include "core/version.h"
#include "results/plot.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_COLS 24
#define MAX_ROWS 2000

typedef struct table {
    char title[512];
    int nc, nr;          /* columns; data rows (row 0 = header) */
    char *(*cells)[MAX_COLS];
} table;

static void table_free(table *t)
{
    if (!t->cells) return;
    for (int r = 0; r <= t->nr; r++)
        for (int c = 0; c < t->nc; c++) free(t->cells[r][c]);
    free(t->cells);
    t->cells = NULL;
}

static char *slurp_text(const char *path, char *title, size_t tn)
{
    FILE *f; /* a regular file of at most FILEIO_INI_MAX bytes (a FIFO is not waited on) */
    if (fileio_open_read(path, FILEIO_INI_MAX, &f, NULL) != D2_OK) { errno = EINVAL; return NULL; }
    char *sql = NULL, line[2048];
    size_t cap = 0, len = 0;
    if (title && tn) title[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        if (title && !title[0] && !strncmp(line, "-- ", 3)) {
            snprintf(title, tn, "%s", line + 3);
            title[strcspn(title, "\n")] = '\0';
        }
        size_t l = strlen(line);
        if (VEC_RESERVE(sql, cap, len + l + 1) != D2_OK) { free(sql); fclose(f); errno = ENOMEM; return NULL; }
        memcpy(sql + len, line, l + 1);
        len += l;
    }
    fclose(f);
    if (!sql) { errno = ENODATA; return NULL; }
    return sql;
}

#define SQL_SWEEPS_MAX 8 /* sweeps one query may name */

/* The sweeps a query names: "WHERE sweep = 'A'", or "WHERE sweep IN (...)"
 * of quoted names, ":sweep" (the figure's sweep, `sweep`) or ":sweep ||
 * 'SUFFIX'" (at most SQL_SWEEPS_MAX, each cut to 127 bytes). */
static size_t sql_sweeps(const char *sql_path, const char *sweep, char names[SQL_SWEEPS_MAX][128])
{
    char *sql = slurp_text(sql_path, NULL, 0);
    if (!sql) return 0;
    size_t n = 0;
    const char *p = strstr(sql, "WHERE sweep = '"), *in = strstr(sql, "WHERE sweep IN (");
    if (p) {
        p += strlen("WHERE sweep = '");
        const char *q = strchr(p, '\'');
        if (q) snprintf(names[n++], 128, "%.*s", (int)(q - p), p);
    } else if (in) {
        const char *end = strchr(in, ')');
        for (p = in + strlen("WHERE sweep IN ("); end && p < end && n < SQL_SWEEPS_MAX;) {
            while (*p == ' ' || *p == ',') p++;
            const char *q;
            if (*p == '\'' && (q = strchr(p + 1, '\'')) && q < end) { /* 'NAME' */
                snprintf(names[n++], 128, "%.*s", (int)(q - p - 1), p + 1);
                p = q + 1;
            } else if (!strncmp(p, ":sweep", 6)) { /* :sweep, or :sweep || 'SUFFIX' */
                p += 6;
                while (*p == ' ') p++;
                const char *r;
                if (!strncmp(p, "||", 2) && (r = strchr(p, '\'')) && r < end && (q = strchr(r + 1, '\'')) && q < end) {
                    snprintf(names[n++], 128, "%s%.*s", sweep ? sweep : "", (int)(q - r - 1), r + 1);
                    p = q + 1;
                } else if (sweep) {
                    snprintf(names[n++], 128, "%s", sweep);
                }
            } else {
                break;
            }
        }
    }
    free(sql);
    return n;
}

/* The first sweep a query names, or "" when it names none. */
static void sql_sweep(const char *sql_path, char *out, size_t n)
{
    char names[SQL_SWEEPS_MAX][128];
    snprintf(out, n, "%s", sql_sweeps(sql_path, NULL, names) ? names[0] : "");
}

int report_map_variant(const char *sql_path, const char *sweep, const char *const *sweeps, const char *const *variants, size_t n,
                       const char *dflt, const char **out)
{
    char names[SQL_SWEEPS_MAX][128];
    size_t k = n ? sql_sweeps(sql_path, sweep, names) : 0;
    *out = dflt;
    const char *first = NULL;
    for (size_t i = 0; i <= k; i++) {
        const char *s = i < k ? names[i] : sweep;
        if (!s || !s[0]) continue;
        for (size_t j = 0; j < n; j++) {
            if (strcmp(sweeps[j], s)) continue;
            if (!first) {
                first = s;
                *out = variants[j];
            } else if (strcmp(*out, variants[j])) {
                D2_ERROR(D2_EINVAL, "%s joins the runs of sweeps %s (variant %s) and %s (variant %s), which a --set put in different "
                         "variants (it changes the jobs of one and not of the other); the query reads one variant",
                         sql_path, first, *out, s, variants[j]);
            }
            break;
        }
    }
    return D2_OK;
}

/* the variant to show of a figure or table of sql_path (its sweep: sweep,
 * and those its query names) where the caller mapped it, else o->variant */
static int variant_for(const report_opts *o, const char *sql_path, const char *sweep, const char **out)
{
    return report_map_variant(sql_path, sweep, o->sweeps, o->variants, o->nvariants, o->variant, out);
}

/* A prepared statement's rows into t: the column names as row 0, then at
 * most MAX_ROWS rows of at most MAX_COLS cells, each cut to cell_bytes - 1
 * bytes (cell_bytes <= 512; NULL "-", a float as %.4g).  *step gets the
 * last sqlite3_step code (SQLITE_DONE when every row was read). */
static int table_read(sqlite3_stmt *st, size_t cell_bytes, table *t, int *step)
{
    t->nc = sqlite3_column_count(st);
    if (t->nc > MAX_COLS) t->nc = MAX_COLS;
    t->cells = calloc(MAX_ROWS + 1, sizeof *t->cells);
    if (!t->cells) D2_ERROR(D2_ENOMEM, "out of memory");
    for (int c = 0; c < t->nc; c++) t->cells[0][c] = strdup(sqlite3_column_name(st, c));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && t->nr < MAX_ROWS) {
        t->nr++;
        for (int c = 0; c < t->nc; c++) {
            char buf[512];
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_NULL: snprintf(buf, cell_bytes, "-"); break;
            case SQLITE_FLOAT: snprintf(buf, cell_bytes, "%.4g", sqlite3_column_double(st, c)); break;
            default: snprintf(buf, cell_bytes, "%s", (const char *)sqlite3_column_text(st, c)); break;
            }
            t->cells[t->nr][c] = strdup(buf);
        }
    }
    *step = rc;
    return D2_OK;
}

static int query_table(db *d, const char *sql_path, const char *variant, table *t)
{
    memset(t, 0, sizeof *t);
    D2_TRY(db_sweep_runs(d)); /* the runs each (sweep, variant) shows: temp.sweep_runs */
    char *sql = slurp_text(sql_path, t->title, sizeof t->title);
    if (!sql) D2_ERROR(D2_ENOTFOUND, "%s: cannot read: %s", sql_path, strerror(errno));
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_handle(d), sql, -1, &st, NULL);
    free(sql);
    if (rc != SQLITE_OK) D2_ERROR(D2_EFORMAT, "%s: %s", sql_path, sqlite3_errmsg(db_handle(d)));
    for (int i = 1; i <= sqlite3_bind_parameter_count(st); i++) {
        const char *pn = sqlite3_bind_parameter_name(st, i);
        if (pn && !strcmp(pn + 1, "variant")) sqlite3_bind_text(st, i, variant ? variant : "base", -1, SQLITE_TRANSIENT);
        else {
            sqlite3_finalize(st);
            D2_ERROR(D2_EFORMAT, "%s: parameter %s: a summary query binds only :variant", sql_path, pn ? pn : "?");
        }
    }
    int trc = table_read(st, 256, t, &rc);
    sqlite3_finalize(st);
    if (trc) return trc;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) { table_free(t); D2_ERROR(D2_EDB, "%s: %s", sql_path, sqlite3_errstr(rc)); }
    if (!t->title[0]) snprintf(t->title, sizeof t->title, "%s", sql_path);
    return D2_OK;
}

int report_print_sql(db *d, const char *sql_path, const char *variant, FILE *out)
{
    table t;
    D2_TRY(query_table(d, sql_path, variant, &t));
    size_t w[MAX_COLS] = {0};
    for (int r = 0; r <= t.nr; r++)
        for (int c = 0; c < t.nc; c++)
            if (t.cells[r][c] && strlen(t.cells[r][c]) > w[c]) w[c] = strlen(t.cells[r][c]);
    /* a variant other than base is named with what it stands for
     * ([variant v6a7dd320: readings=paper-testbed]): its name alone said
     * nothing to a reader */
    char vdesc[512] = "";
    if (variant && strcmp(variant, "base")) (void)db_variant_describe(d, variant, vdesc, sizeof vdesc);
    if (variant && strcmp(variant, "base")) fprintf(out, "\n%s [variant %s: %s]\n", t.title, variant, vdesc);
    else fprintf(out, "\n%s\n", t.title);
    if (t.nr == 0) fprintf(out, "  (no rows: run the experiment first)\n");
    else
        for (int r = 0; r <= t.nr; r++) {
            fprintf(out, " ");
            for (int c = 0; c < t.nc; c++) fprintf(out, " %*s", (int)w[c], t.cells[r][c] ? t.cells[r][c] : "?");
            fprintf(out, "\n");
        }
    table_free(&t);
    return D2_OK;
}

/* ---- HTML --------------------------------------------------------------- */

static void esc(FILE *o, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '&': fputs("&amp;", o); break;
        case '"': fputs("&quot;", o); break;
        default: fputc(*s, o);
        }
    }
}

static const char *cell_class(const char *v)
{
    if (!v) return "";
    if (!strcasecmp(v, "fail") || !strcasecmp(v, "failed") || !strcasecmp(v, "refuted") || !strcasecmp(v, "no")) return " class=\"bad\"";
    if (!strcasecmp(v, "pass") || !strcasecmp(v, "ok") || !strcasecmp(v, "holds") || !strcasecmp(v, "yes")) return " class=\"good\"";
    return "";
}

static void html_table(FILE *o, const table *t)
{
    if (t->nr == 0) { fputs("<p class=\"none\">no rows: run the experiment first</p>\n", o); return; }
    fputs("<div class=\"scroll\"><table>\n<tr>", o);
    for (int c = 0; c < t->nc; c++) { fputs("<th>", o); esc(o, t->cells[0][c]); fputs("</th>", o); }
    fputs("</tr>\n", o);
    for (int r = 1; r <= t->nr; r++) {
        fputs("<tr>", o);
        for (int c = 0; c < t->nc; c++) {
            fprintf(o, "<td%s>", cell_class(t->cells[r][c]));
            esc(o, t->cells[r][c]);
            fputs("</td>", o);
        }
        fputs("</tr>\n", o);
    }
    fputs("</table></div>\n", o);
}

/* an SVG file inline: from "<svg" on, ids prefixed so that figures on one
 * page never share an id */
static int inline_svg(FILE *o, const char *path, int fig)
{
    char *s = slurp_text(path, NULL, 0);
    if (!s) D2_ERROR(D2_EIO, "%s: cannot read: %s", path, strerror(errno));
    char *p = strstr(s, "<svg");
    if (!p) { free(s); D2_ERROR(D2_EFORMAT, "%s: not an SVG file", path); }
    char pre[16];
    snprintf(pre, sizeof pre, "f%d-", fig);
    static const char *const pats[] = {"id='", "id=\"", "href='#", "href=\"#", "url(#"};
    while (*p) {
        size_t k, hit = 0;
        for (k = 0; k < 5; k++)
            if (!strncmp(p, pats[k], strlen(pats[k]))) { hit = strlen(pats[k]); break; }
        if (hit) {
            fwrite(p, 1, hit, o);
            fputs(pre, o);
            p += hit;
        } else if (!strncmp(p, "<svg", 4) && p[4] != ':') {
            fputs("<svg role=\"img\" class=\"fig\"", o);
            p += 4;
        } else fputc(*p++, o);
    }
    free(s);
    return D2_OK;
}

static int table_exists(db *d, const char *name)
{
    sqlite3_stmt *st;
    int yes = 0;
    if (sqlite3_prepare_v2(db_handle(d), "SELECT 1 FROM sqlite_master WHERE type IN ('table','view') AND name = ?", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        yes = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    return yes;
}

/* rows of any SQL, as a table (no binding) */
static int sql_table(db *d, const char *sql, const char *title, table *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->title, sizeof t->title, "%s", title);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db_handle(d), sql, -1, &st, NULL) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: %s", db_path(d), sqlite3_errmsg(db_handle(d)));
    int step, rc = table_read(st, 512, t, &step); /* a failing step ends the table early, unreported */
    sqlite3_finalize(st);
    return rc;
}

/* Is key one a reader of "keys that vary" wants?  Derived keys (system.*,
 * a reading's settings, the sweep's own bookkeeping) are left out, and a
 * device's or model's values when its name varies too (they follow it). */
static int key_shown(const char *key, int device_varies, int model_varies)
{
    static const char *const skip[] = {"system.", "sweep.", "input.", "result.", "reading.settings"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (!strncmp(key, skip[i], strlen(skip[i]))) return 0;
    if (device_varies && !strncmp(key, "device.", 7) && strcmp(key, "device.name")) return 0;
    if (model_varies && !strncmp(key, "model.", 6) && strcmp(key, "model.name")) return 0;
    return 1;
}

/* The store's sweeps that no figure of figures.ini draws (a researcher's
 * own): each with its runs, the keys that vary and a `d2moe plot --sweep`
 * command that draws it (x: the budget if it varies, else the first key;
 * series: the next key). */
static int other_sweeps(FILE *out, db *d, const plot_fig *figs, size_t nf, size_t *shown)
{
    *shown = 0;
    if (!table_exists(d, "sweep_jobs")) return D2_OK;
    sqlite3 *h = db_handle(d);
    sqlite3_stmt *sw, *kq;
    if (sqlite3_prepare_v2(h, "SELECT sweep, count(*) FROM sweep_runs GROUP BY sweep ORDER BY sweep", -1, &sw, NULL) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: %s", db_path(d), sqlite3_errmsg(h));
    if (sqlite3_prepare_v2(h, "SELECT p.key FROM sweep_runs s JOIN params p ON p.run_id = s.id WHERE s.sweep = ?1"
                              " GROUP BY p.key HAVING count(DISTINCT p.value) > 1 ORDER BY p.key", -1, &kq, NULL) != SQLITE_OK) {
        sqlite3_finalize(sw);
        D2_ERROR(D2_EDB, "%s: %s", db_path(d), sqlite3_errmsg(h));
    }
    while (sqlite3_step(sw) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(sw, 0);
        if (!name) continue;
        int drawn = 0;
        for (size_t i = 0; i < nf && !drawn; i++) drawn = !strcmp(figs[i].sweep, name);
        if (drawn) continue;
        char keys[32][128];
        int nk = 0, dv = 0, mv = 0;
        sqlite3_bind_text(kq, 1, name, -1, SQLITE_TRANSIENT);
        while (sqlite3_step(kq) == SQLITE_ROW && nk < 32) {
            const char *k = (const char *)sqlite3_column_text(kq, 0);
            if (!k) continue;
            dv |= !strcmp(k, "device.name");
            mv |= !strcmp(k, "model.name");
            snprintf(keys[nk++], sizeof keys[0], "%s", k);
        }
        sqlite3_reset(kq);
        const char *x = NULL, *series = NULL;
        for (int i = 0; i < nk; i++)
            if (!strcmp(keys[i], "sim.budget")) x = keys[i];
        if (!*shown)
            fputs("<div class=\"scroll\"><table class=\"left\"><tr><th>sweep</th><th>runs</th><th>keys that vary</th>"
                  "<th>draw it with</th></tr>\n", out);
        fputs("<tr><td>", out);
        esc(out, name);
        fprintf(out, "</td><td>%lld</td><td>", (long long)sqlite3_column_int64(sw, 1));
        int first = 1;
        for (int i = 0; i < nk; i++) {
            if (!key_shown(keys[i], dv, mv)) continue;
            if (!x) x = keys[i];
            else if (!series && keys[i] != x) series = keys[i];
            if (!first) fputs(", ", out);
            esc(out, keys[i]);
            first = 0;
        }
        if (first) fputs("(none: one configuration)", out);
        for (int i = 0; i < nk; i++) /* systems are the usual series */
            if (!strcmp(keys[i], "sim.policy") && keys[i] != x) series = keys[i];
        fputs("</td><td><code>", out);
        char cmd[1024];
        /* the store's path quoted for a shell when it needs it (no single quote inside: as given) */
        const char *dbp = db_path(d);
        int q = strpbrk(dbp, " \t\"$`\\!*?[]()<>|&;#~{}") && !strchr(dbp, '\'');
        snprintf(cmd, sizeof cmd, "d2moe plot --sweep %s --x %s --y throughput_tps%s%s --db %s%s%s -o %s.png", name,
                 x ? x : "sim.budget", series ? " --series " : "", series ? series : "", q ? "'" : "", dbp, q ? "'" : "",
                 name);
        /* each "--option value" kept on one line when the cell wraps */
        for (char *c = cmd, *next; c; c = next) {
            next = strstr(c + 1, " --");
            if (next) *next++ = '\0';
            fputs(c == cmd ? "<span class=\"nw\">" : " <span class=\"nw\">", out);
            esc(out, c);
            fputs("</span>", out);
        }
        fputs("</code></td></tr>\n", out);
        (*shown)++;
    }
    sqlite3_finalize(sw);
    sqlite3_finalize(kq);
    if (*shown) fputs("</table></div>\n", out);
    return D2_OK;
}

/* code versions, readings and input hashes of a sweep's runs of one variant */
static void provenance(FILE *o, db *d, const char *sweep, const char *variant)
{
    char desc[1024];
    db_variant_describe(d, variant, desc, sizeof desc);
    fputs("<details class=\"prov\"><summary>provenance</summary><dl>", o);
    fputs("<dt>sweep</dt><dd>", o); esc(o, sweep); fputs("</dd><dt>variant</dt><dd>", o);
    esc(o, variant); fputs(" (", o); esc(o, desc); fputs(")</dd>", o);
    /* of the runs the figure shows (db_sweep_runs) */
    static const char *const q[3] = {
        "SELECT r.code_version || ' (' || count(*) || ' runs)' FROM runs r JOIN sweep_runs s ON s.id = r.id"
        " AND s.sweep = ?1 AND s.variant = ?2 WHERE r.status != 'failed' GROUP BY r.code_version ORDER BY 1",
        "SELECT rd || ' (' || count(*) || ' runs)' FROM (SELECT coalesce(nullif((SELECT value FROM params WHERE run_id = r.id"
        " AND key = 'reading.name'), ''), '(none)') AS rd FROM runs r JOIN sweep_runs s ON s.id = r.id"
        " AND s.sweep = ?1 AND s.variant = ?2 WHERE r.status != 'failed') GROUP BY rd ORDER BY 1",
        "SELECT i.role || ': ' || replace(i.path, rtrim(i.path, replace(i.path, '/', '')), '') || '  xxh128 ' || i.xxh128 || ' (' || count(*) || ' runs)'"
        " FROM inputs i JOIN runs r ON r.id = i.run_id JOIN sweep_runs s ON s.id = r.id AND s.sweep = ?1 AND s.variant = ?2"
        " WHERE r.status != 'failed' GROUP BY i.role, i.path, i.xxh128 ORDER BY 1"};
    static const char *const label[3] = {"code version", "reading", "input files"};
    for (int k = 0; k < 3; k++) {
        sqlite3_stmt *st;
        fprintf(o, "<dt>%s</dt><dd>", label[k]);
        if (sqlite3_prepare_v2(db_handle(d), q[k], -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, variant, -1, SQLITE_STATIC);
            int n = 0;
            while (sqlite3_step(st) == SQLITE_ROW) {
                if (n++) fputs("<br>", o);
                esc(o, (const char *)sqlite3_column_text(st, 0));
            }
            if (!n) fputs("(none)", o);
            sqlite3_finalize(st);
        } else { /* said on the page, never an empty line */
            fputs("(not available: ", o);
            esc(o, sqlite3_errmsg(db_handle(d)));
            fputs(")", o);
        }
        fputs("</dd>", o);
    }
    fputs("</dl></details>\n", o);
}

/* timelines (Fig. 9): the CSV files and their hashes */
static void provenance_csv(FILE *o, const char *dir)
{
    fputs("<details class=\"prov\"><summary>provenance</summary><dl><dt>timelines</dt><dd>", o);
    DIR *dp = opendir(dir);
    int n = 0;
    if (dp) {
        struct dirent *e;
        while ((e = readdir(dp))) {
            size_t l = strlen(e->d_name);
            if (l < 5 || strcmp(e->d_name + l - 4, ".csv")) continue;
            char p[FILEIO_PATH_MAX], hex[33];
            if (fileio_pathf(p, sizeof p, "%s/%s", dir, e->d_name) != D2_OK || hash_file_hex(p, hex) != D2_OK) continue;
            if (n++) fputs("<br>", o);
            esc(o, e->d_name);
            fprintf(o, "  xxh128 %s", hex);
        }
        closedir(dp);
    }
    if (!n) fputs("(none)", o);
    fputs("</dd><dt>code version</dt><dd>written by d2moe reproduce (simulator runs, not stored as rows)</dd></dl></details>\n", o);
}

static const char css[] =
    "body{font-family:Helvetica,Arial,sans-serif;margin:0;color:#1a1a1a;background:#fafafa}"
    "header{background:#0b3d66;color:#fff;padding:18px 32px}header h1{margin:0 0 6px;font-size:24px}"
    "header p{margin:2px 0;font-size:13px;opacity:.9}main{padding:8px 32px 40px;max-width:1100px}"
    "nav{font-size:13px;margin:14px 0}nav a{margin-right:10px;color:#0b3d66}"
    "section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 18px;margin:18px 0}"
    "h2{font-size:19px;margin:6px 0 10px;color:#0b3d66}h3{font-size:15px;margin:14px 0 6px}"
    "svg.fig{width:100%;height:auto;max-width:900px;display:block;margin:6px 0}"
    "table{border-collapse:collapse;font-size:12px;margin:6px 0}"
    "th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}"
    "th{background:#eef3f8}td:first-child,th:first-child{text-align:left}"
    ".scroll{overflow-x:auto}.none{color:#777;font-style:italic}.warn{color:#a33}"
    "td.bad{background:#fde2e1}td.good{background:#e3f4e4}table.left td,table.left th{text-align:left}table.left td:last-child{white-space:normal}.nw{white-space:nowrap}"
    "details.prov{font-size:12px;color:#333}details.prov dt{font-weight:bold;margin-top:4px}"
    "details.prov dd{margin-left:16px;font-family:monospace}";

int report_html(db *d, const report_opts *o, FILE *out, report_stats *st)
{
    memset(st, 0, sizeof *st);
    char ini[FILEIO_PATH_MAX];
    D2_TRY(fileio_pathf(ini, sizeof ini, "%s/figures.ini", o->plotdir));
    plot_fig *figs;
    size_t nf;
    D2_TRY(plot_figures_load(ini, &figs, &nf));
    char now[32];
    db_now_iso(now);
    fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                 "<title>d2moe report: ");
    esc(out, db_path(d));
    fprintf(out, "</title><style>%s</style></head><body>\n<header><h1>d2moe results report</h1><p>store ", css);
    esc(out, db_path(d));
    fprintf(out, " (schema %d) &middot; written %s by d2moe %s</p><p>Every figure below was drawn from this store; open "
                 "&ldquo;provenance&rdquo; under a figure for the code version, reading, variant and input files "
                 "of its runs.</p></header>\n<main>\n<nav><a href=\"#figures\">figures</a><a href=\"#summary\">summary tables</a>"
                 "<a href=\"#sweeps\">other sweeps</a><a href=\"#audit\">claims audit</a><a href=\"#variants\">variants</a></nav>\n",
            db_schema_version(d), now, d2_version());

    /* figures */
    fputs("<section id=\"figures\"><h2>Figures</h2>\n", out);
    int rc = D2_OK;
    for (size_t i = 0; i < nf && rc == D2_OK; i++) {
        plot_fig *f = &figs[i];
        char variant[DB_VARIANT_MAX] = "base", note[2048] = "", dat[FILEIO_PATH_MAX], outbase[FILEIO_PATH_MAX],
             csvdir[FILEIO_PATH_MAX], svg[FILEIO_PATH_MAX];
        if ((rc = fileio_pathf(outbase, sizeof outbase, "%s/%s", o->workdir, f->name)) != D2_OK) break;
        plot_out po;
        memset(&po, 0, sizeof po);
        const char *datp = NULL, *cdir = NULL;
        if (f->sql[0]) {
            if (f->sweep[0]) {
                char qpath[FILEIO_PATH_MAX];
                const char *want;
                int prc = fileio_pathf(qpath, sizeof qpath, "%s/%s", o->plotdir, f->sql);
                if (prc == D2_OK) prc = variant_for(o, qpath, f->sweep, &want);
                if (prc == D2_OK) {
                    prc = D2_ENOTFOUND;
                    if (want) prc = db_variant_pick(d, f->sweep, want, variant, note, sizeof note);
                    if (prc != D2_OK) prc = db_variant_pick(d, f->sweep, NULL, variant, note, sizeof note);
                }
                if (prc != D2_OK) {
                    fprintf(out, "<h3 id=\"fig-%s\">", f->name);
                    esc(out, f->title);
                    fputs("</h3><p class=\"warn\">not drawn: ", out);
                    esc(out, d2_err_msg());
                    fputs("</p>\n", out);
                    st->mixed++;
                    continue;
                }
            }
            rc = fileio_pathf(dat, sizeof dat, "%s/%s.dat", o->workdir, f->name);
            if (rc == D2_OK) rc = plot_export(d, o->plotdir, f, variant, dat, &po);
            char gnote[1024] = "";
            if (rc == D2_OK && f->sweep[0]) rc = db_sweep_runs_note(d, f->sweep, variant, gnote, sizeof gnote);
            if (gnote[0]) { /* runs of older grids: said under the figure */
                size_t nl = strlen(note);
                snprintf(note + nl, sizeof note - nl, "%s%s", nl ? "; " : "", gnote);
            }
            if (rc != D2_OK) break;
            if (po.rows == 0) { st->missing++; continue; }
            datp = dat;
        } else {
            if ((rc = fileio_pathf(csvdir, sizeof csvdir, "%s/%s", o->csvroot ? o->csvroot : ".", f->csv)) != D2_OK) break;
            struct stat sb;
            if (stat(csvdir, &sb) != 0) { st->missing++; continue; }
            cdir = csvdir;
            if (o->timeline_check && (rc = plot_timelines_check(f, csvdir, o->timeline_check)) != D2_OK) break;
        }
        rc = plot_render(o->gnuplot, o->plotdir, f, datp, cdir, &po, outbase);
        if (rc != D2_OK) break;
        if ((rc = fileio_pathf(svg, sizeof svg, "%s.svg", outbase)) != D2_OK) break;
        fprintf(out, "<figure id=\"fig-%s\">\n", f->name);
        rc = inline_svg(out, svg, (int)i);
        if (rc != D2_OK) break;
        fputs("<figcaption>", out);
        esc(out, f->title);
        if (f->sql[0]) fprintf(out, " &middot; %zu rows, %zu series", po.rows, po.series);
        fputs("</figcaption>\n", out);
        if (note[0]) { fputs("<p class=\"warn\">", out); esc(out, note); fputs("</p>\n", out); }
        if (f->sweep[0]) provenance(out, d, f->sweep, variant);
        else if (cdir) provenance_csv(out, cdir);
        fputs("</figure>\n", out);
        st->figures++;
    }
    if (rc != D2_OK) { free(figs); return rc; }
    if (st->figures == 0) fputs("<p class=\"none\">no figure of figures.ini has data in this store</p>\n", out);
    fputs("</section>\n", out);

    /* sweeps no figure draws: what they vary and how to draw them */
    fputs("<section id=\"sweeps\"><h2>Other sweeps in this store</h2>\n", out);
    rc = other_sweeps(out, d, figs, nf, &st->other_sweeps);
    free(figs);
    if (rc != D2_OK) return rc;
    if (!st->other_sweeps) fputs("<p class=\"none\">none: every sweep here has its figures above</p>\n", out);
    fputs("</section>\n", out);

    /* summary tables: every .sql file of plots/summary, in name order */
    fputs("<section id=\"summary\"><h2>Summary tables</h2>\n", out);
    char sdir[FILEIO_PATH_MAX];
    if ((rc = fileio_pathf(sdir, sizeof sdir, "%s/summary", o->plotdir)) != D2_OK) return rc;
    struct dirent **ents = NULL;
    int ne = scandir(sdir, &ents, NULL, alphasort);
    for (int i = 0; i < ne; i++) {
        size_t l = strlen(ents[i]->d_name);
        if (rc == D2_OK && l > 4 && !strcmp(ents[i]->d_name + l - 4, ".sql")) {
            char p[FILEIO_PATH_MAX], sweep[128], variant[DB_VARIANT_MAX] = "base";
            int prc = fileio_pathf(p, sizeof p, "%s/%s", sdir, ents[i]->d_name);
            sweep[0] = '\0';
            if (prc == D2_OK) sql_sweep(p, sweep, sizeof sweep);
            if (sweep[0]) {
                const char *want;
                prc = variant_for(o, p, sweep, &want);
                if (prc == D2_OK) {
                    prc = D2_ENOTFOUND;
                    if (want) prc = db_variant_pick(d, sweep, want, variant, NULL, 0);
                    if (prc != D2_OK) prc = db_variant_pick(d, sweep, NULL, variant, NULL, 0);
                }
            }
            table t;
            if (prc != D2_OK) {
                fputs("<h3>", out); esc(out, ents[i]->d_name); fputs("</h3><p class=\"warn\">not shown: ", out);
                esc(out, d2_err_msg()); fputs("</p>\n", out);
            } else if ((rc = query_table(d, p, variant, &t)) == D2_OK) {
                fputs("<h3>", out);
                esc(out, t.title);
                if (strcmp(variant, "base")) {
                    char vdesc[512] = "";
                    (void)db_variant_describe(d, variant, vdesc, sizeof vdesc);
                    fputs(" [variant ", out); esc(out, variant); fputs(": ", out); esc(out, vdesc); fputs("]", out);
                }
                fputs("</h3>\n", out);
                html_table(out, &t);
                table_free(&t);
                st->tables++;
            }
        }
        free(ents[i]);
    }
    free(ents);
    if (rc != D2_OK) return rc;
    fputs("</section>\n", out);

    /* the claims audit, when the store has one: tables read generically */
    fputs("<section id=\"audit\"><h2>Claims audit</h2>\n", out);
    static const char *const audit[] = {"audits", "audit_claims", "audit_cases"};
    for (int k = 0; k < 3; k++) {
        if (!table_exists(d, audit[k])) continue;
        char *sql = sqlite3_mprintf("SELECT * FROM \"%w\" LIMIT %d", audit[k], MAX_ROWS);
        table t;
        if (sql && sql_table(d, sql, audit[k], &t) == D2_OK) {
            fprintf(out, "<h3>%s (%d rows)</h3>\n", audit[k], t.nr);
            html_table(out, &t);
            table_free(&t);
            st->audit_tables++;
        }
        sqlite3_free(sql);
    }
    if (!st->audit_tables) fputs("<p class=\"none\">this store holds no claims audit</p>\n", out);
    fputs("</section>\n", out);

    /* variants */
    fputs("<section id=\"variants\"><h2>Variants in this store</h2>\n", out);
    table t;
    if (db_schema_version(d) >= 4 &&
        sql_table(d, "SELECT v.name AS variant, CASE WHEN v.overrides = '' THEN 'no overrides' ELSE replace(rtrim(v.overrides, char(10)), char(10), ', ') END AS overrides,"
                     " v.reading, (SELECT count(*) FROM runs WHERE variant = v.name) AS runs FROM variants v ORDER BY v.created_at", "variants", &t) == D2_OK) {
        html_table(out, &t);
        table_free(&t);
    }
    fputs("</section>\n</main></body></html>\n", out);
    return D2_OK;
}
