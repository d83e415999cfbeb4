/* cmd_quantize.c - `d2moe quantize`: read weights, quantize each selected
 * matrix with MWQ (rtn or gptq mode), write a .mwq file, and report the
 * per-level error of MWQ and of the two baselines (rtn-int, msb-slice) as a
 * table, as JSON (--json) and into the results store (--db). */
#include "cli/cli.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/par.h"
#include "core/param.h"
#include "core/vec.h"
#include "quant/kern.h"
#include "quant/kq.h"
#include "quant/mwq.h"
#include "quant/mwqfile.h"
#include "quant/qerr.h"
#include "quant/rtn.h"
#include "quant/weights.h"
#include "results/db.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: d2moe quantize --input FILE [--format llama2c|safetensors|npy] [--tensor NAME]...\n"
            "       [--preset v1|v2|v1k|v2k] [--base-bits B] [--levels K] [--group G] [--mode rtn|gptq]\n"
            "       [--calib X.npy] [--set mwq.key=value]... [-o OUT.mwq] [--json] [--db FILE]\n"
            "       [--no-baselines] [--report-tokens N] [--rows-of N] [--threads N]\n\n"
            "Quantize every tensor of 2 or more dimensions (or each --tensor) with MWQ; the last\n"
            "dimension is the columns, all leading ones are flattened into rows (a [2, 4, 512]\n"
            "expert stack is one 8 x 512 matrix).  MWQ: a b1-bit asymmetric base per\n"
            "group of G weights along each row plus K-1 one-bit residual levels (V1: b1=2, K=3;\n"
            "V2: b1=5, K=4; G=128).  v1k / v2k: the k-quant nested format (docs/mwq.md): 256-weight\n"
            "super-blocks, quantized sub-block scales and mins, residual levels tied to the base step.\n"
            "--mode gptq fits on the output error over the calibration\n"
            "activations X (.npy, tokens x cols: one row per token) and compensates the error\n"
            "block by block.  Prints, per tensor and level, weight MSE, SNR, relative error,\n"
            "output error (when --calib is given; on up to --report-tokens tokens, default 256)\n"
            "and bits per weight, for MWQ and the baselines rtn-int (independent INT-b copies)\n"
            "and msb-slice (top bits of an INT8 code).  --json prints one JSON object instead,\n"
            "with \"totals\": per method and level, the error over all tensors together.\n"
            "--rows-of N reads each tensor as rows of N weights (its elements in file order;\n"
            "the element count must be a multiple of N), e.g. 256 for the k-quant comparison.\n"
            "--threads N quantizes each matrix's rows on N threads (default 1; 1..256); the output\n"
            "bytes are the same for every N (gptq mode: only the per-block fits run in parallel).\n\n"
            "Parameters (--set mwq.key=value):\n");
    param_print_help(&mwq_params, out);
}

typedef struct qrow {
    char tensor[256];
    int64_t rows, cols, group;
    double wsq; /* sum of the tensor's squared weights (for the totals) */
    qerr_row e;
} qrow;

typedef struct report {
    qrow *r;
    size_t n, cap;
    double cur_wsq; /* sum w^2 of the tensor being reported */
} report;

static int report_add(report *rp, const char *tensor, int64_t rows, int64_t cols, int64_t group, const qerr_row *e)
{
    D2_TRY(VEC_RESERVE(rp->r, rp->cap, rp->n + 1));
    qrow *q = &rp->r[rp->n++];
    snprintf(q->tensor, sizeof q->tensor, "%s", tensor);
    q->rows = rows; q->cols = cols; q->group = group;
    q->wsq = rp->cur_wsq;
    q->e = *e;
    return D2_OK;
}

static int db_rows(db *d, int64_t run_id, void *user)
{
    sqlite3 *h = db_handle(d);
    report *rp = user;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h, "INSERT INTO quant_errors (run_id, tensor, method, level, bits, rows, cols, group_size, mse, snr_db, "
                              "rel_err, out_rel_err, bpw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
        D2_ERROR(D2_EDB, "quant_errors: %s", sqlite3_errmsg(h));
    for (size_t i = 0; i < rp->n; i++) {
        const qrow *q = &rp->r[i];
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_text(st, 2, q->tensor, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, q->e.method, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, q->e.level);
        sqlite3_bind_int(st, 5, q->e.bits);
        sqlite3_bind_int64(st, 6, q->rows);
        sqlite3_bind_int64(st, 7, q->cols);
        sqlite3_bind_int64(st, 8, q->group);
        sqlite3_bind_double(st, 9, q->e.mse);
        if (isfinite(q->e.snr_db)) sqlite3_bind_double(st, 10, q->e.snr_db); else sqlite3_bind_null(st, 10);
        sqlite3_bind_double(st, 11, q->e.rel_err);
        if (isfinite(q->e.out_rel_err)) sqlite3_bind_double(st, 12, q->e.out_rel_err); else sqlite3_bind_null(st, 12);
        sqlite3_bind_double(st, 13, q->e.bpw);
        if (sqlite3_step(st) != SQLITE_DONE) {
            d2_err_set("quant_errors: %s", sqlite3_errmsg(h));
            sqlite3_finalize(st);
            return D2_EDB;
        }
    }
    sqlite3_finalize(st);
    return D2_OK;
}

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *report_json(const report *rp, const char *input, const mwq_config *c, const char *out, const char *kq_preset)
{
    json_t *root = json_object(), *cfg = json_object(), *ts = json_array();
    json_object_set_new(root, "input", json_string(input));
    json_object_set_new(root, "output", out ? json_string(out) : json_null()); /* null: no -o */
    json_object_set_new(cfg, "base_bits", json_integer(c->base_bits));
    json_object_set_new(cfg, "levels", json_integer(c->levels));
    json_object_set_new(cfg, "group", json_integer(c->group));
    json_object_set_new(cfg, "mode", json_string(c->mode));
    if (kq_preset) json_object_set_new(cfg, "preset", json_string(kq_preset)); /* k-quant nested: group above is the baselines' */
    json_object_set_new(root, "config", cfg);
    json_t *cur = NULL, *lv = NULL;
    for (size_t i = 0; i < rp->n; i++) {
        const qrow *q = &rp->r[i];
        if (!cur || q->e.level == 1) {
            cur = json_object();
            lv = json_array();
            json_object_set_new(cur, "name", json_string(q->tensor));
            json_object_set_new(cur, "rows", json_integer(q->rows));
            json_object_set_new(cur, "cols", json_integer(q->cols));
            json_object_set_new(cur, "group", json_integer(q->group));
            json_object_set_new(cur, "method", json_string(q->e.method));
            json_object_set_new(cur, "levels", lv);
            json_array_append_new(ts, cur);
        }
        json_t *o = json_object();
        json_object_set_new(o, "level", json_integer(q->e.level));
        json_object_set_new(o, "bits", json_integer(q->e.bits));
        json_object_set_new(o, "mse", num_or_null(q->e.mse));
        json_object_set_new(o, "snr_db", num_or_null(q->e.snr_db));
        json_object_set_new(o, "rel_err", num_or_null(q->e.rel_err));
        json_object_set_new(o, "bpw", num_or_null(q->e.bpw));
        if (!isnan(q->e.out_rel_err)) json_object_set_new(o, "out_rel_err", num_or_null(q->e.out_rel_err));
        json_array_append_new(lv, o);
    }
    json_object_set_new(root, "tensors", ts);
    /* totals: per (method, level), over all tensors: sqrt(sum e^2 / sum w^2), stored bits / weights */
    json_t *tot = json_array();
    for (size_t i = 0; i < rp->n; i++) {
        const qrow *q = &rp->r[i];
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) seen = !strcmp(rp->r[j].e.method, q->e.method) && rp->r[j].e.level == q->e.level;
        if (seen) continue;
        double se = 0, sw = 0, bits = 0, nw = 0;
        for (size_t j = i; j < rp->n; j++) {
            const qrow *u = &rp->r[j];
            if (strcmp(u->e.method, q->e.method) || u->e.level != q->e.level) continue;
            const double n = (double)(u->rows * u->cols);
            se += u->e.mse * n;
            sw += u->wsq;
            bits += u->e.bpw * n;
            nw += n;
        }
        json_t *o = json_object();
        json_object_set_new(o, "method", json_string(q->e.method));
        json_object_set_new(o, "level", json_integer(q->e.level));
        json_object_set_new(o, "bits", json_integer(q->e.bits));
        /* qerr.c's convention: all-zero weights reproduced exactly are 0, not 0/0 */
        json_object_set_new(o, "rel_err", num_or_null(sw > 0 ? sqrt(se / sw) : se > 0 ? INFINITY : 0.0));
        json_object_set_new(o, "bpw", num_or_null(nw > 0 ? bits / nw : NAN));
        json_object_set_new(o, "weights", json_real(nw));
        json_array_append_new(tot, o);
    }
    json_object_set_new(root, "totals", tot);
    return root;
}

static void report_print(const report *rp, FILE *out)
{
    const char *last = "";
    for (size_t i = 0; i < rp->n; i++) {
        const qrow *q = &rp->r[i];
        if (strcmp(last, q->tensor)) {
            fprintf(out, "%s%s  %lld x %lld  group %lld\n", i ? "\n" : "", q->tensor, (long long)q->rows, (long long)q->cols, (long long)q->group);
            fprintf(out, "  %-10s %5s %4s %12s %8s %9s %11s %7s\n", "method", "level", "bits", "mse", "snr_db", "rel_err", "out_rel_err", "bpw");
            last = q->tensor;
        }
        char orr[32];
        if (isnan(q->e.out_rel_err)) snprintf(orr, sizeof orr, "-");
        else snprintf(orr, sizeof orr, "%.5f", q->e.out_rel_err);
        fprintf(out, "  %-10s %5d %4d %12.5g %8.3f %9.5f %11s %7.4f\n", q->e.method, q->e.level, q->e.bits, q->e.mse, q->e.snr_db,
                q->e.rel_err, orr, q->e.bpw);
    }
}

/* Evenly spaced subset of at most n rows of X (T x cols). */
static float *subset_rows(const float *X, int64_t T, int64_t cols, int64_t n, int64_t *out_T)
{
    if (n > T) n = T;
    float *s = malloc((size_t)(n * cols) * sizeof *s);
    if (!s) return NULL;
    for (int64_t i = 0; i < n; i++) memcpy(s + i * cols, X + (i * T / n) * cols, (size_t)cols * sizeof *s);
    *out_T = n;
    return s;
}

typedef struct opts {
    const char *input, *calib, *out, *dbpath;
    weights_format fmt;
    const char *tensors[256];
    int ntensors, json, baselines;
    int64_t report_tokens;
    int64_t rows_of; /* --rows-of N: each tensor reshaped to rows of N weights (0: as stored) */
    const kq_format *kq; /* --preset v1k / v2k: the k-quant nested format (kq.h) */
    const char *kq_name; /* and its preset name, for messages */
    int64_t threads;     /* --threads N: workers per matrix (core/par.h), 1 = the caller only */
} opts;

/* The v1k / v2k path: quantize with kq.h and report each level. */
/* A level whose result is no better than storing zeros (relative error >= 1
 * on a nonzero tensor) is refused: the format's FP16 scales cannot hold
 * the tensor's magnitudes (docs/mwq.md, "Tiny weights"). */
static int check_not_zeros(const float *w, int64_t n, const char *preset, const qerr_row *e)
{
    if (!(e->rel_err >= 1)) return D2_OK;
    double mx = 0;
    for (int64_t i = 0; i < n; i++) mx = fabs(w[i]) > mx ? fabs(w[i]) : mx;
    if (mx == 0) return D2_OK;
    D2_ERROR(D2_ERANGE, "level %d of %s has relative error %.3g, no better than zeros: the values (max |w| = %.3g) are out of "
                        "the range the format's FP16 scales represent; scale the tensor before quantizing", e->level, preset,
             e->rel_err, mx);
}

/* Tiny weights (kq_underflow_check, quant/kq.h): a level more than 1%
 * worse than the same tensor scaled to max |w| in 512..1024 is warned
 * about on stderr, one line (docs/mwq.md, "Edge cases").  rel: the
 * levels' relative errors; what: a rows x cols scratch buffer. */
#define QUANTIZE_UNDERFLOW_WARN 1.01
static int underflow_warn(const float *w, int64_t rows, int64_t cols, const kq_format *f, const char *preset, const char *file,
                          const char *tensor, int64_t nsub, const double *rel, float *what, int threads)
{
    kq_underflow u;
    D2_TRY(kq_underflow_check(w, rows, cols, f, rel, what, threads, &u));
    if (u.worst > QUANTIZE_UNDERFLOW_WARN)
        fprintf(stderr, "d2moe quantize: warning: %s: tensor \"%s\": %s: %lld of %lld super-blocks have FP16 scales below 6.1e-5 "
                        "(subnormal): level %d's relative error %.4g is %.3gx the %.4g of the same tensor scaled by 2^%d; scale it "
                        "before quantizing\n", file, tensor, preset, (long long)nsub, (long long)(rows * cols / KQ_SUPER), u.level,
                rel[u.level - 1], u.worst, u.ref_err, u.shift);
    return D2_OK;
}

static int quantize_kq(const float *w, int64_t rows, int64_t cols, const char *file, const char *name, const kq_format *f,
                       const char *preset, const float *Xs, int64_t Ts, float *what, report *rp, double *qsec, double *qwall, int threads,
                       mwqfile_writer *wr)
{
    kq_matrix *m;
    clock_t t0 = clock();
    double w0 = clock_mono_s();
    int rc = kq_quantize_threads(w, rows, cols, f, 4, threads, &m);
    *qsec += (double)(clock() - t0) / CLOCKS_PER_SEC;
    *qwall += clock_mono_s() - w0;
    if (rc) return rc;
    if (wr && (rc = mwqfile_writer_add_kq(wr, name, m))) { kq_matrix_free(m); return rc; }
    double bytes = 0, rel[KQ_MAX_LEVELS];
    for (int k = 1; k <= f->levels && !rc; k++) {
        for (int64_t r = 0; r < rows; r++) kq_row_dequant(m, k, r, what + r * cols);
        qerr_row e;
        if ((rc = qerr_eval(w, what, rows, cols, Xs, Ts, &e))) break;
        snprintf(e.method, sizeof e.method, "kq-mwq");
        e.level = k;
        e.bits = f->base_bits + k - 1;
        bytes += (double)m->chunk_bytes[k - 1];
        e.bpw = 8.0 * bytes / (double)(rows * cols);
        if ((rc = check_not_zeros(w, rows * cols, preset, &e))) break;
        rel[k - 1] = e.rel_err;
        rc = report_add(rp, name, rows, cols, KQ_SUPER, &e);
    }
    const int64_t nsub = rc ? 0 : kq_matrix_scales_below(m, KQ_F16_NORMAL_MIN);
    const int64_t ndeep = nsub ? kq_matrix_scales_below(m, KQ_UNDERFLOW_CHECK) : 0;
    kq_matrix_free(m);
    if (ndeep) rc = underflow_warn(w, rows, cols, f, preset, file, name, nsub, rel, what, threads);
    return rc;
}

static int quantize_one(weights *wf, size_t ti, const mwq_config *c, const float *X, int64_t T, const opts *o,
                        mwqfile_writer *wr, report *rp, double *qsec, double *qwall)
{
    const weights_info *info = weights_get(wf, ti);
    int64_t rows = info->rows, cols = info->cols, n = rows * cols;
    const int gptq = !strcmp(c->mode, "gptq");
    if (o->rows_of) {
        if (n % o->rows_of)
            D2_ERROR(D2_EINVAL, "%s: tensor \"%s\": %lld elements are not a multiple of --rows-of %lld", weights_path(wf), info->name,
                     (long long)n, (long long)o->rows_of);
        rows = n / o->rows_of;
        cols = o->rows_of;
    }
    float *w;
    D2_TRY(weights_read(wf, ti, &w));
    rp->cur_wsq = 0;
    for (int64_t i = 0; i < n; i++) rp->cur_wsq += (double)w[i] * w[i];
    mwq_matrix *m = NULL;
    float *what = NULL, **outs = NULL, *Xs = NULL;
    int64_t Ts = 0;
    int rc = D2_OK;
    if (o->kq) {
        what = malloc((size_t)n * sizeof *what);
        if (!what) { rc = D2_ENOMEM; d2_err_set("out of memory"); goto out; }
        if (X && !(Xs = subset_rows(X, T, cols, o->report_tokens, &Ts))) { rc = D2_ENOMEM; d2_err_set("out of memory"); goto out; }
        rc = quantize_kq(w, rows, cols, weights_path(wf), info->name, o->kq, o->kq_name, Xs, Ts, what, rp, qsec, qwall, (int)o->threads, wr);
        if (rc) { d2_err_prefix("%s: tensor \"%s\": ", weights_path(wf), info->name); goto out; }
        goto baselines;
    }
    clock_t t0 = clock();
    double w0 = clock_mono_s();
    rc = mwq_matrix_quantize_threads(w, rows, cols, c, X, T, (int)o->threads, &m);
    *qsec += (double)(clock() - t0) / CLOCKS_PER_SEC;
    *qwall += clock_mono_s() - w0;
    if (rc) { d2_err_prefix("%s: tensor \"%s\": ", weights_path(wf), info->name); goto out; }
    if (wr && (rc = mwqfile_writer_add(wr, info->name, m, gptq ? MWQFILE_GPTQ : MWQFILE_RTN))) goto out;
    what = malloc((size_t)n * sizeof *what);
    if (!what) { rc = D2_ENOMEM; d2_err_set("out of memory"); goto out; }
    if (X && !(Xs = subset_rows(X, T, cols, o->report_tokens, &Ts))) { rc = D2_ENOMEM; d2_err_set("out of memory"); goto out; }
    kern_mat v;
    mwq_matrix_view(m, m->levels, &v);
    double bytes = 0;
    for (int k = 1; k <= m->levels; k++) {
        kern_mat_dequant(&v, k, what);
        qerr_row e;
        if ((rc = qerr_eval(w, what, rows, cols, Xs, Ts, &e))) goto out;
        snprintf(e.method, sizeof e.method, gptq ? "mwq-gptq" : "mwq-rtn");
        e.level = k;
        e.bits = (int)c->base_bits + k - 1;
        bytes += (double)m->chunk_bytes[k - 1];
        e.bpw = 8.0 * bytes / (double)n;
        if ((rc = check_not_zeros(w, n, gptq ? "MWQ (gptq)" : "MWQ", &e))) {
            d2_err_prefix("%s: tensor \"%s\": ", weights_path(wf), info->name);
            goto out;
        }
        if ((rc = report_add(rp, info->name, rows, cols, c->group, &e))) goto out;
    }
baselines:
    if (o->baselines) {
        const size_t K = (size_t)(o->kq ? o->kq->levels : m->levels);
        int bits[KERN_MAX_LEVELS];
        for (size_t k = 0; k < K; k++) {
            bits[k] = (int)c->base_bits + (int)k;
            if ((rc = rtn_int_dequant(w, rows, cols, bits[k], c, what))) goto out;
            qerr_row e;
            if ((rc = qerr_eval(w, what, rows, cols, Xs, Ts, &e))) goto out;
            snprintf(e.method, sizeof e.method, "rtn-int");
            e.level = (int)k + 1; e.bits = bits[k]; e.bpw = rtn_bpw(rows, cols, bits[k], c->group);
            if ((rc = report_add(rp, info->name, rows, cols, c->group, &e))) goto out;
        }
        outs = calloc(K, sizeof *outs);
        for (size_t k = 0; outs && k < K; k++)
            if (!(outs[k] = malloc((size_t)n * sizeof **outs))) { rc = D2_ENOMEM; break; }
        if (!outs || rc) { rc = D2_ENOMEM; d2_err_set("out of memory"); goto out; }
        if ((rc = rtn_msb_dequant(w, rows, cols, bits, (int)K, c, outs))) goto out;
        for (size_t k = 0; k < K; k++) {
            qerr_row e;
            if ((rc = qerr_eval(w, outs[k], rows, cols, Xs, Ts, &e))) goto out;
            snprintf(e.method, sizeof e.method, "msb-slice");
            e.level = (int)k + 1; e.bits = bits[k]; e.bpw = rtn_bpw(rows, cols, bits[k], c->group);
            if ((rc = report_add(rp, info->name, rows, cols, c->group, &e))) goto out;
        }
    }
out:
    if (outs) for (int k = 0; k < (o->kq ? o->kq->levels : m ? m->levels : 0); k++) free(outs[k]);
    free(outs);
    free(Xs);
    free(what);
    free(w);
    mwq_matrix_free(m);
    return rc;
}

static int parse_int(const char *opt, const char *s, long lo, long hi, int64_t *out)
{
    long v;
    if (cli_parse_long("quantize", opt, s, lo, hi, &v)) return 2;
    *out = v;
    return 0;
}

static int run(int argc, char **argv)
{
    static const struct option lo[] = {
        {"help", no_argument, NULL, 'h'},        {"input", required_argument, NULL, 'i'},
        {"format", required_argument, NULL, 'f'}, {"tensor", required_argument, NULL, 't'},
        {"preset", required_argument, NULL, 'p'}, {"base-bits", required_argument, NULL, 'b'},
        {"levels", required_argument, NULL, 'k'}, {"group", required_argument, NULL, 'g'},
        {"mode", required_argument, NULL, 'm'},  {"calib", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},   {"output", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, 'j'},        {"db", required_argument, NULL, 'd'},
        {"no-baselines", no_argument, NULL, 'n'}, {"report-tokens", required_argument, NULL, 'r'},
        {"rows-of", required_argument, NULL, 'R'}, {"threads", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0}};
    opts o = {0};
    o.baselines = 1;
    o.report_tokens = 256;
    o.threads = 1;
    const char *preset = NULL, *mode = NULL, *sets[64];
    int nsets = 0;
    int64_t bb = 0, lv = 0, gr = 0;
    int ch;
    while ((ch = cli_getopt_long(argc, argv, "hi:f:t:p:b:k:g:m:c:s:o:jd:nr:R:T:", lo, "ts=", NULL)) != -1) {
        switch (ch) {
        case 'h': usage(stdout); return 0;
        case 'i': o.input = optarg; break;
        case 'f': if (weights_format_parse(optarg, &o.fmt)) return cli_usage_error("quantize", "%s", d2_err_msg()); break;
        case 't':
            if (o.ntensors == 256) return cli_usage_error("quantize", "too many --tensor options (256 at most)");
            o.tensors[o.ntensors++] = optarg;
            break;
        case 'p': preset = optarg; break;
        case 'b': if (parse_int("--base-bits", optarg, 1, 8, &bb)) return 2; break;
        case 'k': if (parse_int("--levels", optarg, 1, 8, &lv)) return 2; break;
        case 'g': if (parse_int("--group", optarg, 1, 1 << 20, &gr)) return 2; break;
        case 'm': mode = optarg; break;
        case 'c': o.calib = optarg; break;
        case 's':
            if (nsets == 64) return cli_usage_error("quantize", "too many --set options (64 at most)");
            sets[nsets++] = optarg;
            break;
        case 'o': o.out = optarg; break;
        case 'j': o.json = 1; break;
        case 'd': o.dbpath = optarg; break;
        case 'n': o.baselines = 0; break;
        case 'r': if (parse_int("--report-tokens", optarg, 1, 1 << 24, &o.report_tokens)) return 2; break;
        case 'R': if (parse_int("--rows-of", optarg, 1, 1 << 24, &o.rows_of)) return 2; break;
        case 'T': if (parse_int("--threads", optarg, 1, PAR_MAX_THREADS, &o.threads)) return 2; break;
        default: return cli_bad_option("quantize", argc, argv);
        }
    }
    if (optind < argc) return cli_usage_error("quantize", "unexpected argument '%s'", argv[optind]);
    if (!o.input) return cli_usage_error("quantize", "--input FILE is required");
    mwq_config c;
    mwq_config_default(&c);
    kq_format kq;
    if (preset && (!strcmp(preset, "v1k") || !strcmp(preset, "v2k"))) {
        kq_format_preset(preset, &kq);
        o.kq = &kq;
        o.kq_name = preset;
        if (mode && strcmp(mode, "rtn")) return cli_usage_error("quantize", "--preset %s: only --mode rtn", preset);
        if (bb || lv || gr) return cli_usage_error("quantize", "--preset %s fixes the bits, levels and super-blocks", preset);
        c.base_bits = kq.base_bits;
        c.levels = kq.levels;
        /* the baselines keep g = 128; the report's group is the super-block */
    } else if (preset && mwq_config_preset(&c, preset)) /* mwq.c knows only v1 and v2: name all four */
        return cli_usage_error("quantize", "--preset '%s': expected v1 (b1=2, K=3), v2 (b1=5, K=4), v1k or v2k (k-quant nested)", preset);
    if (bb) c.base_bits = bb;
    if (lv) c.levels = lv;
    if (gr) c.group = gr;
    if (mode) {
        if (strcmp(mode, "rtn") && strcmp(mode, "gptq")) return cli_usage_error("quantize", "--mode %s: expected rtn or gptq", mode);
        snprintf(c.mode, sizeof c.mode, "%s", mode);
    }
    const mwq_config fixed = c; /* what a k-quant preset fixes, as the options above */
    for (int i = 0; i < nsets; i++) {
        int rc = param_apply_set(&mwq_params, &c, sets[i]);
        if (rc == D2_ENOTFOUND) return cli_usage_error("quantize", "--set %s: not an mwq key", sets[i]);
        if (rc) return cli_fail(rc);
        /* else quantized as the preset anyway, and reported and stored as the --set */
        if (o.kq && (c.base_bits != fixed.base_bits || c.levels != fixed.levels || c.group != fixed.group))
            return cli_usage_error("quantize", "--preset %s fixes the bits, levels and super-blocks: not --set %s", preset, sets[i]);
        if (o.kq && strcmp(c.mode, "rtn")) return cli_usage_error("quantize", "--preset %s: only --mode rtn, not --set %s", preset, sets[i]);
        /* the others (search_*, gptq_*) steer the baselines only: the
         * k-quant search is its own (docs/mwq.md), so say so, as they are
         * stored with the run */
        if (o.kq && (!strncmp(sets[i], "mwq.search_", 11) || !strncmp(sets[i], "mwq.gptq_", 9)))
            fprintf(stderr, "d2moe quantize: note: --set %s applies to the baseline rows only; the %s tensor uses its own search\n",
                    sets[i], preset);
    }
    int rc = mwq_config_check(&c);
    if (rc && preset) d2_err_prefix("--preset %s: ", preset); /* its bits changed by the options: said so */
    if (rc) return cli_fail(rc);
    if (!strcmp(c.mode, "gptq") && !o.calib) return cli_usage_error("quantize", "--mode gptq needs --calib X.npy");
    if (o.rows_of && o.calib) return cli_usage_error("quantize", "--rows-of: not with --calib (the activations would not match the rows)");

    weights *wf = NULL, *cf = NULL;
    float *X = NULL;
    int64_t T = 0, Xcols = 0;
    mwqfile_writer *wr = NULL;
    db *d = NULL;
    report rp = {0};
    size_t *sel = NULL, nsel = 0;
    double qsec = 0, qwall = 0, in_bytes = 0;
    if ((rc = weights_open(o.input, o.fmt, &wf))) goto fail;
    if (o.calib) {
        if ((rc = weights_open(o.calib, WEIGHTS_NPY, &cf))) goto fail;
        const weights_info *ci = weights_get(cf, 0);
        if (ci->ndim != 2) { rc = D2_EFORMAT; d2_err_set("%s: calibration activations must be 2-D (tokens x cols), got %d dims", o.calib, ci->ndim); goto fail; }
        if (ci->rows < 1) { /* said here, naming the file: gptq would blame the weights */
            rc = D2_EFORMAT;
            d2_err_set("%s: calibration activations have no rows (shape (%lld, %lld)): nothing to fit or measure on", o.calib,
                       (long long)ci->rows, (long long)ci->cols);
            goto fail;
        }
        if ((rc = weights_read(cf, 0, &X))) goto fail;
        T = ci->rows;
        Xcols = ci->cols;
    }
    sel = calloc(weights_count(wf) + (size_t)o.ntensors + 1, sizeof *sel);
    if (!sel) { rc = D2_ENOMEM; d2_err_set("out of memory"); goto fail; }
    if (o.ntensors) {
        for (int i = 0; i < o.ntensors; i++)
            if ((rc = weights_find(wf, o.tensors[i], &sel[nsel++]))) goto fail;
    } else {
        /* every matrix: 2-D, and 3-D or more (MoE experts stored as
         * [n_experts, rows, cols]) with the leading dimensions flattened
         * into rows (weights.h, docs/mwq.md); 1-D vectors (norms, biases)
         * are not matrices and are quantized only when named */
        for (size_t i = 0; i < weights_count(wf); i++)
            if (weights_get(wf, i)->ndim >= 2) sel[nsel++] = i;
        if (!nsel) {
            rc = D2_ENOTFOUND;
            d2_err_set("%s: no tensors of 2 or more dimensions (%zu 1-D or scalar; name one with --tensor to quantize it)", o.input,
                       weights_count(wf));
            goto fail;
        }
    }
    for (size_t i = 0; i < nsel; i++) {
        const weights_info *ti = weights_get(wf, sel[i]);
        if (o.out && !ti->name[0]) { /* checked before any work; mwqfile.c would say it without the file */
            rc = D2_EFORMAT;
            d2_err_set("%s: tensor %zu of %zu has an empty name; a .mwq (%s) stores names of 1..255 bytes", o.input, sel[i] + 1,
                       weights_count(wf), o.out);
            goto fail;
        }
        if (X && ti->cols != Xcols && !strcmp(c.mode, "gptq")) {
            rc = D2_EINVAL;
            d2_err_set("%s: shape (%lld, %lld) does not match tensor \"%s\" (%lld x %lld): expected (tokens, %lld)", o.calib,
                       (long long)T, (long long)Xcols, ti->name, (long long)ti->rows, (long long)ti->cols, (long long)ti->cols);
            goto fail;
        }
    }
    if (X) { /* after the shapes: a calibration of the wrong width is that first */
        /* all zero: X^T X = 0 leaves gptq nothing to fit and W X = 0 makes
         * the output error 0/0 (it was reported as 0.0) */
        int64_t nz = 0;
        while (nz < T * Xcols && X[nz] == 0) nz++;
        if (nz == T * Xcols) {
            rc = D2_EFORMAT;
            d2_err_set("%s: calibration activations are all zero (shape (%lld, %lld)): nothing to fit or measure the output error on", o.calib,
                       (long long)T, (long long)Xcols);
            goto fail;
        }
    }
    /* the store is opened (created, or checked to be a d2moe store and
     * migrated) before any work: a bad --db costs no run and leaves no .mwq */
    if (o.dbpath && (rc = db_open(o.dbpath, &d))) goto fail;
    if (o.out && (rc = mwqfile_writer_new(o.out, &wr))) goto fail;
    for (size_t i = 0; i < nsel; i++) {
        const weights_info *ti = weights_get(wf, sel[i]);
        int match = X && ti->cols == Xcols;
        in_bytes += 4.0 * (double)(ti->rows * ti->cols);
        if ((rc = quantize_one(wf, sel[i], &c, match ? X : NULL, match ? T : 0, &o, wr, &rp, &qsec, &qwall))) goto fail;
    }
    if (wr) {
        rc = mwqfile_writer_finish(wr);
        wr = NULL;
        if (rc) goto fail;
    }
    if (o.json) {
        json_t *j = report_json(&rp, o.input, &c, o.out, o.kq ? preset : NULL);
        json_object_set_new(json_object_get(j, "config"), "threads", json_integer((json_int_t)o.threads));
        json_dumpf(j, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(8));
        printf("\n");
        json_decref(j);
    } else {
        report_print(&rp, stdout);
        if (o.threads == 1)
            printf("\n%zu tensors, %.1f MB of float32 quantized in %.2f s CPU (%.3f GB/s)%s%s\n", nsel, in_bytes / 1e6, qsec,
                   qsec > 0 ? in_bytes / qsec / 1e9 : 0.0, o.out ? "; wrote " : "", o.out ? o.out : "");
        else
            printf("\n%zu tensors, %.1f MB of float32 quantized on %lld threads in %.2f s wall, %.2f s CPU (%.3f GB/s wall)%s%s\n", nsel,
                   in_bytes / 1e6, (long long)o.threads, qwall, qsec, qwall > 0 ? in_bytes / qwall / 1e9 : 0.0, o.out ? "; wrote " : "",
                   o.out ? o.out : "");
    }
    if (d) {
        db_run *run = db_run_new("quantize", c.mode);
        db_run_cmdline(run, cli_argc(), cli_argv());
        db_run_seed(run, 0);
        param_foreach(&mwq_params, &c, db_run_param_visit, run);
        char th[24];
        snprintf(th, sizeof th, "%lld", (long long)o.threads);
        rc = db_run_param(run, "quantize.threads", th);
        if (!rc) rc = db_run_input(run, "weights", o.input);
        if (!rc && o.calib) rc = db_run_input(run, "calib", o.calib);
        if (!rc) rc = db_run_metric(run, "tensors", (double)nsel, "");
        if (!rc) rc = db_run_metric(run, "quantize_cpu_s", qsec, "s");
        if (!rc) rc = db_run_metric(run, "quantize_wall_s", qwall, "s");
        if (!rc) rc = db_run_metric(run, "input_bytes", in_bytes, "bytes");
        db_run_status(run, "ok");
        int64_t id;
        if (!rc) rc = db_run_write_with(d, run, db_rows, &rp, &id);
        db_run_free(run);
    }
fail: /* and the way out of a run that went well: rc == 0, wr NULL */
    if (wr) mwqfile_writer_abort(wr);
    db_close(d);
    free(rp.r);
    free(sel);
    free(X);
    weights_free(wf);
    weights_free(cf);
    return rc ? cli_fail(rc) : 0;
}

const cli_cmd cli_cmd_quantize = {"quantize", "quantize weights with MWQ into a .mwq file and report per-level errors", run};
