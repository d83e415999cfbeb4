/* accuracy.c - est_ppl from the quantizer's error table and the public
 * bit-width/perplexity curve (see accuracy.h for the model). */
#include "results/accuracy.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/model.h"

#include <errno.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_interp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct accuracy_model {
    double curve[ACC_MAX_BITS + 1];   /* PPL at bits, NaN = not given */
    double err_sep[ACC_MAX_BITS + 1]; /* rel_err of independent INT-b ("rtn-int") */
    double err_nest[ACC_MAX_BITS + 1];/* rel_err of MWQ nested bit-width b */
    double err_kq[ACC_MAX_BITS + 1];  /* rel_err of the k-quant nested presets v1k / v2k ("kq-mwq"), level of b bits */
    double x[ACC_MAX_BITS + 2], y[ACC_MAX_BITS + 2]; /* error -> PPL knots */
    size_t n;
    gsl_interp *interp;
    gsl_interp_accel *acc;
};

static int load_curve(accuracy_model *a, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) D2_ERROR(D2_EINVAL, "%s: is a directory, not a file", path);
    FILE *f; /* a regular file of at most FILEIO_TABLE_MAX bytes (a FIFO is not waited on) */
    D2_TRY(fileio_open_read(path, FILEIO_TABLE_MAX, &f, NULL));
    /* whole lines (a fgets buffer read the tail of a long comment as a
     * point), bits parsed in range (sscanf's %d took 4294967298 for 2),
     * each bit-width once (a second line replaced the first) */
    char *buf = NULL;
    size_t cap = 0, len;
    int rc, ln = 0, line_of[ACC_MAX_BITS + 1] = {0};
    while ((rc = fileio_getline(f, path, (uint64_t)ln + 1, FILEIO_LINE_MAX, &buf, &cap, &len)) == 1) {
        ln++;
        char *p = buf, *end;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '#' || *p == '\0') continue;
        errno = 0;
        long bits = strtol(p, &end, 10);
        double ppl = NAN;
        int good = end != p && *end == ',' && !errno && bits >= 1 && bits <= ACC_MAX_BITS;
        if (good) {
            p = end + 1;
            ppl = strtod(p, &end);
            while (*end == ' ' || *end == '\t') end++;
            good = end != p && *end == '\0' && ppl > 1 && isfinite(ppl);
        }
        if (!good) {
            rc = D2_EFORMAT;
            d2_err_set("%s:%d: expected \"bits,ppl\" with bits 1..%d and ppl > 1", path, ln, ACC_MAX_BITS);
            break;
        }
        if (line_of[bits]) {
            rc = D2_EFORMAT;
            d2_err_set("%s:%d: bits %ld given twice (first at line %d)", path, ln, bits, line_of[bits]);
            break;
        }
        line_of[bits] = ln;
        a->curve[bits] = ppl;
    }
    free(buf);
    fclose(f);
    if (rc) return rc;
    if (isnan(a->curve[16])) D2_ERROR(D2_EFORMAT, "%s: the curve needs the 16-bit (reference) point", path);
    return D2_OK;
}

/* size-weighted RMS of rel_err over tensors, per bits, for methods LIKE pat,
 * each bit-width from the newest run that has it (V1 and V2 runs add up) */
static int load_errors(db *d, const char *pat, double *out)
{
    const char *sql =
        "SELECT bits, sqrt(sum(rel_err * rel_err * rows * cols) / sum(rows * cols)) FROM quant_errors q"
        " WHERE method LIKE ?1 AND rel_err IS NOT NULL"
        "   AND run_id = (SELECT max(run_id) FROM quant_errors q2 WHERE q2.method LIKE ?1 AND q2.bits = q.bits)"
        " GROUP BY bits";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db_handle(d), sql, -1, &st, NULL) != SQLITE_OK)
        D2_ERROR(D2_EDB, "%s: %s", db_path(d), sqlite3_errmsg(db_handle(d)));
    sqlite3_bind_text(st, 1, pat, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int b = sqlite3_column_int(st, 0);
        if (b >= 1 && b <= ACC_MAX_BITS) out[b] = sqlite3_column_double(st, 1);
    }
    sqlite3_finalize(st);
    return D2_OK;
}

int accuracy_model_load(const char *curve_csv, db *d, accuracy_model **out)
{
    *out = NULL;
    accuracy_model *a = calloc(1, sizeof *a);
    if (!a) D2_ERROR(D2_ENOMEM, "out of memory");
    for (int b = 0; b <= ACC_MAX_BITS; b++) a->curve[b] = a->err_sep[b] = a->err_nest[b] = a->err_kq[b] = NAN;
    int rc = load_curve(a, curve_csv);
    if (rc == D2_OK && d) rc = load_errors(d, "rtn-int%", a->err_sep);
    if (rc == D2_OK && d) rc = load_errors(d, "mwq%", a->err_nest);
    if (rc == D2_OK && d) rc = load_errors(d, "kq-mwq", a->err_kq);
    if (rc != D2_OK) { free(a); return rc; }
    a->err_sep[16] = 0; /* FP16 is the reference */
    a->err_nest[16] = 0;
    a->err_kq[16] = 0;
    /* knots: (0, PPL16) and (e_rtn(b), PPL(b)) for every b with both, sorted
     * by error; a point that would not increase the error is dropped */
    a->x[0] = 0;
    a->y[0] = a->curve[16];
    a->n = 1;
    for (int b = 15; b >= 1; b--) {
        if (isnan(a->curve[b]) || isnan(a->err_sep[b])) continue;
        if (a->err_sep[b] <= a->x[a->n - 1]) continue;
        double y = a->curve[b] < a->y[a->n - 1] ? a->y[a->n - 1] : a->curve[b]; /* PPL never improves with error */
        a->x[a->n] = a->err_sep[b];
        a->y[a->n] = y;
        a->n++;
    }
    if (a->n >= 3) {
        a->interp = gsl_interp_alloc(gsl_interp_steffen, a->n);
        a->acc = gsl_interp_accel_alloc();
        if (!a->interp || !a->acc || gsl_interp_init(a->interp, a->x, a->y, a->n) != GSL_SUCCESS) {
            accuracy_model_free(a);
            D2_ERROR(D2_EINTERNAL, "accuracy: cannot build the error -> PPL interpolation");
        }
    }
    *out = a;
    return D2_OK;
}

int accuracy_model_load_default(const char *curve_csv, db *d, accuracy_model **out)
{
    char def[FILEIO_PATH_MAX];
    if (!curve_csv) {
        D2_TRY(fileio_pathf(def, sizeof def, "%s/experiments/accuracy/llama-moe-wikitext2.csv", D2_SRCDIR));
        curve_csv = def;
    }
    return accuracy_model_load(curve_csv, d, out);
}

void accuracy_model_free(accuracy_model *a)
{
    if (!a) return;
    if (a->interp) gsl_interp_free(a->interp);
    if (a->acc) gsl_interp_accel_free(a->acc);
    free(a);
}

double accuracy_bits_error(const accuracy_model *a, const char *format, int bits)
{
    if (bits < 1 || bits > ACC_MAX_BITS) return NAN;
    if (strcmp(format, "nested-k") == 0) return a->err_kq[bits];
    return strcmp(format, "nested") == 0 ? a->err_nest[bits] : a->err_sep[bits];
}

double accuracy_curve_ppl(const accuracy_model *a, int bits)
{
    return bits >= 1 && bits <= ACC_MAX_BITS ? a->curve[bits] : NAN;
}

double accuracy_ppl_at_error(const accuracy_model *a, double e)
{
    if (isnan(e) || e < 0) return NAN;
    if (a->n < 2) return a->n == 1 && e == 0 ? a->y[0] : NAN;
    if (e <= a->x[a->n - 1]) {
        if (!a->interp) { /* two knots: a line */
            return a->y[0] + (a->y[1] - a->y[0]) * e / a->x[1];
        }
        return gsl_interp_eval(a->interp, a->x, a->y, e, a->acc);
    }
    size_t k = a->n - 1; /* beyond the last knot: extend the last segment */
    double slope = (a->y[k] - a->y[k - 1]) / (a->x[k] - a->x[k - 1]);
    return a->y[k] + slope * (e - a->x[k]);
}

double accuracy_estimate(const accuracy_model *a, const char *format, const double use_w2[ACC_MAX_BITS + 1])
{
    double num = 0, den = 0;
    for (int b = 1; b <= ACC_MAX_BITS; b++) {
        if (!(use_w2[b] > 0)) continue;
        double e = accuracy_bits_error(a, format, b);
        if (isnan(e)) return NAN;
        num += use_w2[b] * e * e;
        den += use_w2[b];
    }
    if (den <= 0) return NAN;
    return accuracy_ppl_at_error(a, sqrt(num / den));
}

typedef struct fill_ctx {
    const accuracy_model *a;
    long filled;
} fill_ctx;

static int fill_fn(sqlite3 *h, void *user)
{
    fill_ctx *c = user;
    sqlite3_stmt *runs = NULL, *q = NULL, *up = NULL;
    int rc = sqlite3_prepare_v2(h,
        "SELECT r.id FROM runs r WHERE r.kind = 'simulate'"
        " AND NOT EXISTS (SELECT 1 FROM metrics e WHERE e.run_id = r.id AND e.name = 'est_ppl' AND e.value IS NOT NULL)"
        " AND EXISTS (SELECT 1 FROM metrics g WHERE g.run_id = r.id AND g.name LIKE 'gate2_bits_%')", -1, &runs, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(h,
            "SELECT 'm', name, value FROM metrics WHERE run_id = ?1 AND name LIKE 'gate2_bits_%'"
            " UNION ALL SELECT 'p', key, value FROM params WHERE run_id = ?1 AND key IN ('system.format', 'system.storage', 'sim.storage')",
            -1, &q, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(h, "INSERT OR REPLACE INTO metrics(run_id, name, value, unit) VALUES(?, 'est_ppl', ?, 'ppl')", -1, &up, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(runs)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        sqlite3_int64 id = sqlite3_column_int64(runs, 0);
        double w2[ACC_MAX_BITS + 1] = {0};
        char format[64] = "", fmt_sys[64] = "", fmt_store[64] = "";
        int kq = 0, have = 0;
        sqlite3_bind_int64(q, 1, id);
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *kind = (const char *)sqlite3_column_text(q, 0), *name = (const char *)sqlite3_column_text(q, 1);
            int b;
            if (kind[0] == 'm' && sscanf(name, "gate2_bits_%d", &b) == 1 && b >= 1 && b <= ACC_MAX_BITS &&
                sqlite3_column_type(q, 2) != SQLITE_NULL) {
                w2[b] = sqlite3_column_double(q, 2);
                have = 1;
            } else if (kind[0] == 'p') {
                const char *v = (const char *)sqlite3_column_text(q, 2);
                if (!v) continue;
                if (!strcmp(name, "system.format")) snprintf(fmt_sys, sizeof fmt_sys, "%s", v);
                else if (!strcmp(name, "system.storage")) snprintf(fmt_store, sizeof fmt_store, "%s", v);
                else kq = model_format_is_kq(v);
            }
        }
        sqlite3_reset(q);
        /* the format as runner.c reads it: system.storage where a run has it, else system.format */
        snprintf(format, sizeof format, "%s", fmt_store[0] ? fmt_store : fmt_sys);
        double ppl = have ? accuracy_estimate(c->a, kq && !strcmp(format, "nested") ? "nested-k" : format, w2) : NAN;
        if (!isfinite(ppl)) continue;
        sqlite3_bind_int64(up, 1, id);
        sqlite3_bind_double(up, 2, ppl);
        rc = sqlite3_step(up) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(up);
        c->filled++;
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
    if (rc != SQLITE_OK) d2_err_set("est_ppl: %s", sqlite3_errmsg(h));
    sqlite3_finalize(runs);
    sqlite3_finalize(q);
    sqlite3_finalize(up);
    return rc == SQLITE_OK ? D2_OK : D2_EDB;
}

int accuracy_fill_missing(db *d, const accuracy_model *a, long *filled)
{
    fill_ctx c = {a, 0};
    int rc = db_transaction(d, fill_fn, &c);
    *filled = c.filled;
    return rc;
}
