/* cmd_export.c - `d2moe export`: the runs of a results store as one wide
 * table (one row per run, every parameter and metric a column), CSV or
 * JSON, for pandas and spreadsheets.  The columns of the SQL view runs_wide
 * plus each run's provenance (db_export_select, src/results/db.h).  Opens
 * the store read-only. */
#include "cli/cli.h"
#include "core/err.h"
#include "core/fileio.h"
#include "results/db.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe export [--db FILE] [--sweep NAME] [--variant NAME] [--format csv|json] [-o OUT]\n\n"
                 "Write the runs of a results store (default results/d2moe.db) as one wide table:\n"
                 "one row per run with run_id, uid, sweep, variant, status, kind, mode,\n"
                 "code_version, started_at, seed, the provenance (ended_at, host, cmdline, rng,\n"
                 "config_hash, and for each input file role inputs.ROLE = its XXH3-128 and\n"
                 "inputs.ROLE.path), then every parameter (table.key) and every metric as a\n"
                 "column (empty when a run has none).  The columns of the SQL view runs_wide\n"
                 "plus the provenance (results/README.md).  --sweep keeps the runs the sweep's\n"
                 "figures show: of one variant (--variant NAME, default the spec's own; when\n"
                 "the sweep's runs are of several variants and none is the spec's own, export\n"
                 "stops with exit status 2 naming them), the jobs of the sweep's latest grid,\n"
                 "each job's latest run (runs left out are counted on stderr).  Without --sweep,\n"
                 "every run (--variant NAME keeps one variant;\n"
                 "a variant the store has no runs of, also in a store without runs: exit status 2\n"
                 "naming the ones it has).\n"
                 "CSV (RFC 4180, default) or JSON (an array of objects; metrics as numbers).\n"
                 "OUT: default standard output; written atomically.\n");
}

static void csv_cell(FILE *o, const char *s)
{
    if (!s) return;
    if (!strpbrk(s, ",\"\n\r")) { fputs(s, o); return; }
    fputc('"', o);
    for (; *s; s++) {
        if (*s == '"') fputc('"', o);
        fputc(*s, o);
    }
    fputc('"', o);
}

/* s with every byte that is not part of a valid UTF-8 sequence replaced by
 * U+FFFD (JSON text must be UTF-8; jansson refuses such strings), *nbad
 * counting them; NULL when out of memory. */
static char *utf8_fix(const char *s, size_t *nbad)
{
    size_t n = strlen(s), o = 0;
    char *out = malloc(3 * n + 1);
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        int ok = len > 0 && i + len <= n;
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
        for (size_t k = 1; ok && k < len; k++) {
            ok = (p[i + k] & 0xC0) == 0x80;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        /* no overlong forms, surrogates or code points past U+10FFFF */
        if (ok && ((len == 2 && cp < 0x80) || (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
            ok = 0;
        if (ok) {
            memcpy(out + o, p + i, len);
            o += len;
            i += len;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
            (*nbad)++;
        }
    }
    out[o] = '\0';
    return out;
}

static int export_rows(db *d, const char *sweep, const char *variant, int json, FILE *o, long *rows)
{
    /* a metric is a number or null: a text value (hand-edited, another
     * writer) is refused before any output, not written as a string */
    D2_TRY(db_metrics_numeric(d, sweep, variant));
    char *sel;
    D2_TRY(db_export_select(d, &sel));
    /* --sweep: the runs its figures show (db_sweep_runs) */
    char *sql = sweep ? sqlite3_mprintf("SELECT * FROM (%s) WHERE run_id IN (SELECT id FROM sweep_runs WHERE sweep = ?1 AND variant = ?2)"
                                        " ORDER BY run_id", sel)
                      : sqlite3_mprintf("SELECT * FROM (%s) WHERE (?2 IS NULL OR variant = ?2) ORDER BY run_id", sel);
    sqlite3_free(sel);
    if (!sql) D2_ERROR(D2_ENOMEM, "out of memory");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_handle(d), sql, -1, &st, NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) D2_ERROR(D2_EDB, "%s: %s", db_path(d), sqlite3_errmsg(db_handle(d)));
    if (sweep) sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    if (variant) sqlite3_bind_text(st, 2, variant, -1, SQLITE_STATIC);
    int nc = sqlite3_column_count(st);
    *rows = 0;
    size_t nbad = 0; /* bytes of text that were not UTF-8 */
    size_t nnf = 0;  /* non-finite floats written as null */
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        for (int c = 0; c < nc; c++) {
            if (c) fputc(',', o);
            csv_cell(o, sqlite3_column_name(st, c));
        }
    if (!json) fputs("\r\n", o);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *obj = json ? json_object() : NULL;
        for (int c = 0; c < nc; c++) {
            int t = sqlite3_column_type(st, c);
            if (json) {
                const int inf = t == SQLITE_FLOAT && !isfinite(sqlite3_column_double(st, c)); /* JSON has no inf or NaN: null, said below */
                nnf += inf;
                json_t *v = t == SQLITE_NULL || inf ? json_null()
                          : t == SQLITE_INTEGER ? json_integer(sqlite3_column_int64(st, c))
                          : t == SQLITE_FLOAT ? json_real(sqlite3_column_double(st, c))
                          : json_string((const char *)sqlite3_column_text(st, c));
                if (!v && t == SQLITE_TEXT) { /* not UTF-8: written with U+FFFD for the bad bytes, and said so */
                    char *fixed = utf8_fix((const char *)sqlite3_column_text(st, c), &nbad);
                    if (!fixed) { sqlite3_finalize(st); json_decref(obj); json_decref(arr); D2_ERROR(D2_ENOMEM, "out of memory"); }
                    v = json_string(fixed);
                    free(fixed);
                }
                if (!v) { sqlite3_finalize(st); json_decref(obj); json_decref(arr); D2_ERROR(D2_ENOMEM, "out of memory"); }
                json_object_set_new(obj, sqlite3_column_name(st, c), v);
            } else {
                if (c) fputc(',', o);
                if (t == SQLITE_FLOAT) fprintf(o, "%.17g", sqlite3_column_double(st, c));
                else if (t != SQLITE_NULL) csv_cell(o, (const char *)sqlite3_column_text(st, c));
            }
        }
        if (json) json_array_append_new(arr, obj);
        else fputs("\r\n", o);
        (*rows)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) { json_decref(arr); D2_ERROR(D2_EDB, "%s: %s", db_path(d), sqlite3_errstr(rc)); }
    if (nnf)
        fprintf(stderr, "d2moe export: %zu value%s in the store %s not finite (inf or NaN): written as null in the JSON\n", nnf,
                nnf == 1 ? "" : "s", nnf == 1 ? "is" : "are");
    if (nbad)
        fprintf(stderr, "d2moe export: %zu byte%s of text in the store %s not UTF-8: written as U+FFFD in the JSON\n", nbad,
                nbad == 1 ? "" : "s", nbad == 1 ? "is" : "are");
    if (json) {
        int jr = json_dumpf(arr, o, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
        json_decref(arr);
        fputc('\n', o);
        if (jr) D2_ERROR(D2_EIO, "writing JSON failed");
    }
    return D2_OK;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"db", required_argument, NULL, 'd'},
        {"sweep", required_argument, NULL, 's'}, {"variant", required_argument, NULL, 'V'},
        {"format", required_argument, NULL, 'f'}, {"out", required_argument, NULL, 'o'}, {NULL, 0, NULL, 0}};
    const char *dbp = "results/d2moe.db", *sweep = NULL, *want = NULL, *outp = NULL;
    int json = 0, c;
    while ((c = cli_getopt_long(argc, argv, "hd:s:f:o:", opts, NULL, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'd': dbp = optarg; break;
        case 's': sweep = optarg; break;
        case 'V':
            if (!*optarg) return cli_usage_error("export", "--variant: expected a name");
            want = optarg;
            break;
        case 'f':
            if (!strcmp(optarg, "csv")) json = 0;
            else if (!strcmp(optarg, "json")) json = 1;
            else return cli_usage_error("export", "--format %s: expected csv or json", optarg);
            break;
        case 'o': outp = optarg; break;
        default: return cli_bad_option("export", argc, argv);
        }
    }
    if (optind != argc) return cli_usage_error("export", "unexpected argument '%s'", argv[optind]);
    db *d;
    int rc = db_open_readonly(dbp, &d);
    if (rc) return cli_fail(rc);
    char variant[DB_VARIANT_MAX], note[2048] = "";
    const char *v = want;
    if (sweep) {
        if ((rc = db_sweep_check(d, sweep)) || (rc = db_variant_pick(d, sweep, want, variant, note, sizeof note))) {
            db_close(d);
            return cli_fail(rc);
        }
        v = variant;
        if (note[0]) fprintf(stderr, "d2moe export: %s: %s\n", sweep, note);
        if ((rc = db_sweep_runs_note(d, sweep, variant, note, sizeof note)) != D2_OK) {
            db_close(d);
            return cli_fail(rc);
        }
        if (note[0]) fprintf(stderr, "d2moe export: %s: %s\n", sweep, note);
    } else if (want && (rc = db_variant_pick(d, NULL, want, variant, NULL, 0))) {
        /* a variant the store has no runs of: an error naming the ones it
         * has, as with --sweep, not an empty table */
        db_close(d);
        return cli_fail(rc);
    }
    FILE *o = stdout;
    fileio_out *fo = NULL; /* -o: a regular file (or new), written through OUT.tmp */
    if (outp && (rc = fileio_out_open(outp, &fo, &o)) != D2_OK) { db_close(d); return cli_fail(rc); }
    long rows = 0;
    rc = export_rows(d, sweep, v, json, o, &rows);
    db_close(d);
    if (outp) {
        if (rc == D2_OK && ferror(o)) { rc = D2_EIO; d2_err_set("%s: write failed", outp); }
        if (rc) { fileio_out_abort(fo); return cli_fail(rc); }
        if ((rc = fileio_out_commit(fo)) != D2_OK) return cli_fail(rc);
        fprintf(stderr, "d2moe export: %s: %ld runs\n", outp, rows);
    } else if (rc) return cli_fail(rc);
    if (sweep && rows == 0) {
        fprintf(stderr, "d2moe export: sweep %s has no runs in %s\n", sweep, dbp);
        return 1;
    }
    return 0;
}

const cli_cmd cli_cmd_export = {"export", "write the runs as one wide table (CSV or JSON), one row per run", run};
