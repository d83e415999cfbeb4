/* t_accuracy.c - the est_ppl model: uniform-bit runs land exactly on the
 * curve they were fitted to (the paper's table, PAPER.md section 1), the
 * curve is monotone in error, mixes fall between their parts, unknown
 * errors give NaN, and a malformed curve file is refused with file:line. */
#include "core/err.h"
#include "results/accuracy.h"
#include "results/db.h"
#include "tap.h"

#include <unistd.h>

/* hand-made error table: INT-b RTN error roughly halves per bit */
static const double rtn_err[9] = {0, 0, 0.40, 0.20, 0.10, 0.05, 0.025, 0, 0.006};
static const double mwq_err[9] = {0, 0, 0.38, 0.15, 0.07, 0, 0, 0, 0};
static const double kq_err[9] = {0, 0, 0.32, 0.20, 0.13, 0.05, 0.03, 0, 0}; /* "kq-mwq": v1k / v2k levels */

static int add_rows(db *d, int64_t run_id, void *user)
{
    sqlite3 *h = db_handle(d);
    (void)user;
    for (int b = 2; b <= 8; b++) {
        if (rtn_err[b] > 0) {
            char *sql = sqlite3_mprintf("INSERT INTO quant_errors VALUES(%lld,'w1','rtn-int',%d,%d,64,128,128,0,0,%.17g,NULL,0)",
                                        (long long)run_id, b, b, rtn_err[b]);
            sqlite3_exec(h, sql, NULL, NULL, NULL);
            sqlite3_free(sql);
        }
        if (kq_err[b] > 0) {
            char *sql = sqlite3_mprintf("INSERT INTO quant_errors VALUES(%lld,'w1','kq-mwq',%d,%d,64,256,256,0,0,%.17g,NULL,0)",
                                        (long long)run_id, b < 5 ? b - 1 : b - 4, b, kq_err[b]);
            sqlite3_exec(h, sql, NULL, NULL, NULL);
            sqlite3_free(sql);
        }
        if (mwq_err[b] > 0) {
            char *sql = sqlite3_mprintf("INSERT INTO quant_errors VALUES(%lld,'w1','mwq-rtn',%d,%d,64,128,128,0,0,%.17g,NULL,0)",
                                        (long long)run_id, b - 1, b, mwq_err[b]);
            sqlite3_exec(h, sql, NULL, NULL, NULL);
            sqlite3_free(sql);
        }
    }
    return D2_OK;
}

int main(void)
{
    char dir[] = "/tmp/t_acc.XXXXXX", dbp[256], curve[512], bad[256];
    if (!mkdtemp(dir)) return 1;
    snprintf(dbp, sizeof dbp, "%s/a.db", dir);
    snprintf(curve, sizeof curve, "%s/experiments/accuracy/llama-moe-wikitext2.csv", tap_srcdir());
    db *d;
    ok(db_open(dbp, &d) == D2_OK, "store");
    db_run *r = db_run_new("quantize", "sim");
    ok(db_run_write_with(d, r, add_rows, NULL, NULL) == D2_OK, "error table written");
    db_run_free(r);

    accuracy_model *a;
    if (!ok(accuracy_model_load(curve, d, &a) == D2_OK, "model loads: %s", d2_err_msg())) {
        db_close(d);
        return tap_done();
    }
    /* uniform-bit runs land on the curve (paper table: 2 -> 20.95, 3 -> 15.10, 4 -> 14.72, 8 -> 14.55) */
    static const struct { int bits; double ppl; } pts[] = {{2, 20.95}, {3, 15.10}, {4, 14.72}, {5, 14.63}, {6, 14.62}, {8, 14.55}, {16, 14.55}};
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
        double w2[ACC_MAX_BITS + 1] = {0};
        w2[pts[i].bits] = 123.0;
        is_near(accuracy_estimate(a, "separate", w2), pts[i].ppl, 1e-9, "uniform INT%d run: est_ppl = %.2f (paper table)", pts[i].bits, pts[i].ppl);
    }
    int mono = 1;
    double prev = 0;
    for (double e = 0; e <= 0.5; e += 0.001) {
        double p = accuracy_ppl_at_error(a, e);
        if (p < prev - 1e-12) mono = 0;
        prev = p;
    }
    ok(mono, "PPL never decreases as error grows (0..0.5)");
    /* the k-quant nested presets read their own rows, and leave "nested" (mwq-*) alone */
    is_near(accuracy_bits_error(a, "nested-k", 3), 0.20, 1e-12, "nested-k INT3 error = the kq-mwq row");
    is_near(accuracy_bits_error(a, "nested", 3), 0.15, 1e-12, "nested INT3 error still the mwq-rtn row");
    ok(isnan(accuracy_bits_error(a, "nested-k", 7)), "nested-k without a 7-bit row: NaN");
    {
        double k4[ACC_MAX_BITS + 1] = {0};
        k4[4] = 1.0;
        is_near(accuracy_estimate(a, "nested-k", k4), accuracy_ppl_at_error(a, 0.13), 1e-12, "nested-k all-INT4 run: PPL at e = 0.13");
    }
    double w2[ACC_MAX_BITS + 1] = {0};
    w2[2] = 0.3; w2[3] = 0.4; w2[4] = 0.3;
    double mix = accuracy_estimate(a, "separate", w2);
    ok(mix > 14.72 && mix < 20.95, "a 2/3/4 mix lies between INT4 and INT2 (%.3f)", mix);
    double nest = accuracy_estimate(a, "nested", w2);
    ok(nest < mix, "with smaller MWQ errors the nested mix is better (%.3f < %.3f)", nest, mix);
    /* closed form: nested all-INT4 -> e = 0.07, between knots e(5)=0.05 (14.63) and e(4)=0.10 (14.72) */
    double w4[ACC_MAX_BITS + 1] = {0};
    w4[4] = 1;
    double p4 = accuracy_estimate(a, "nested", w4);
    ok(p4 > 14.63 && p4 < 14.72, "nested INT4 (e = 0.07) between the INT5 and INT4 points: %.4f", p4);
    double w7[ACC_MAX_BITS + 1] = {0};
    w7[7] = 1;
    ok(isnan(accuracy_estimate(a, "separate", w7)), "no INT7 error in the table: NaN, not a guess");
    accuracy_model_free(a);

    snprintf(bad, sizeof bad, "%s/bad.csv", dir);
    FILE *f = fopen(bad, "w");
    fputs("# c\n2,20.95\nfour,14.7\n", f);
    fclose(f);
    ok(accuracy_model_load(bad, d, &a) == D2_EFORMAT && strstr(d2_err_msg(), "bad.csv:3:"), "malformed curve: file:line (%s)", d2_err_msg());
    db_close(d);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) tap_diag("rm failed");
    return tap_done();
}
