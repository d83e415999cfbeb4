/* t_weights.c - weight readers: the real stories260K llama2.c checkpoint
 * (statistics quoted in ../shared/data/README.md), safetensors and .npy files
 * written here with known IEEE encodings, and a corpus of bad files
 * (truncation, wrong dtype, shape/offset mismatch, bad JSON, NaN/Inf) that
 * must give one-line errors naming the file. */
#include "core/err.h"
#include "quant/weights.h"
#include "tap.h"
#include "t_quant_util.h"

#include <gsl/gsl_errno.h>
#include <math.h>

static void test_stories(void)
{
    const char *p = tq_stories();
    if (!p) { tap_skip(8, "stories260K.bin not found under $D2_SHARED/data/weights"); return; }
    weights *w;
    if (!ok(weights_open(p, WEIGHTS_AUTO, &w) == D2_OK, "stories260K opens (format from .bin)")) return;
    /* tok_embeddings + 9 kinds x 5 layers + final norm (shared classifier) */
    is_int(weights_count(w), 1 + 9 * 5 + 1, "47 tensors listed");
    size_t i;
    ok(weights_find(w, "layers.0.w1", &i) == D2_OK && weights_get(w, i)->rows == 172 && weights_get(w, i)->cols == 64, "w1 is 172 x 64 (rows = hidden_dim outputs)");
    ok(weights_find(w, "layers.4.w2", &i) == D2_OK && weights_get(w, i)->rows == 64 && weights_get(w, i)->cols == 172, "w2 is 64 x 172");
    ok(weights_find(w, "layers.1.wk", &i) == D2_OK && weights_get(w, i)->rows == 32 && weights_get(w, i)->cols == 64, "wk is 32 x 64 (kv_dim = 4 heads x 8)");
    /* README: FFN w1 (all layers): mean -0.0014, std 0.129, absmax 0.708 */
    double s = 0, s2 = 0, amax = 0;
    int64_t n = 0;
    for (int l = 0; l < 5; l++) {
        char name[32];
        snprintf(name, sizeof name, "layers.%d.w1", l);
        float *d;
        weights_find(w, name, &i);
        if (weights_read(w, i, &d)) continue;
        for (int64_t k = 0; k < 172 * 64; k++) { s += d[k]; s2 += (double)d[k] * d[k]; if (fabs(d[k]) > amax) amax = fabs(d[k]); }
        n += 172 * 64;
        free(d);
    }
    double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean);
    is_near(mean, -0.0014, 0.0001, "w1 mean = -0.0014 (data README)");
    is_near(sd, 0.129, 0.001, "w1 std = 0.129 (data README)");
    is_near(amax, 0.708, 0.001, "w1 absmax = 0.708 (data README)");
    weights_free(w);
    /* truncated copy of the real file */
    FILE *in = fopen(p, "rb");
    unsigned char *buf = malloc(600000);
    size_t got = fread(buf, 1, 600000, in);
    fclose(in);
    const char *t = tq_path("trunc.bin");
    tq_write(t, buf, got);
    int rc = weights_open(t, WEIGHTS_LLAMA2C, &w);
    ok(rc == D2_EFORMAT && strstr(d2_err_msg(), "trunc.bin") && strstr(d2_err_msg(), "truncated"), "truncated checkpoint: %s", d2_err_msg());
    free(buf);
}

/* safetensors writer: header JSON given, then data */
static const char *st_file(const char *name, const char *json, const void *data, size_t n)
{
    size_t hl = strlen(json);
    unsigned char *b = malloc(8 + hl + n);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)hl >> (8 * k));
    memcpy(b + 8, json, hl);
    memcpy(b + 8 + hl, data, n);
    const char *p = tq_path(name);
    tq_write(p, b, 8 + hl + n);
    free(b);
    return p;
}

static void expect_err(const char *path, weights_format fmt, int read_idx, int want, const char *sub, const char *what)
{
    weights *w;
    int rc = weights_open(path, fmt, &w);
    if (rc == D2_OK && read_idx >= 0) {
        float *d;
        rc = weights_read(w, (size_t)read_idx, &d);
        if (rc == D2_OK) free(d);
        weights_free(w);
    } else if (rc == D2_OK) weights_free(w);
    const char *m = d2_err_msg();
    ok(rc == want && strstr(m, sub) && strstr(m, path) && !strchr(m, '\n'), "%s", what);
    if (!(rc == want && strstr(m, sub))) tap_diag("rc %d: %s", rc, m);
}

static void test_safetensors(void)
{
    /* a: F32 2x2 {1, -2, 0.5, 3}; b: F16 1x3 {1, -2, 65504}; c: BF16 2x1 {1, 3}; d: 1-D */
    unsigned char data[16 + 6 + 4 + 8];
    float a[4] = {1, -2, 0.5f, 3};
    uint16_t h[3] = {0x3c00, 0xc000, 0x7bff}, bf[2] = {0x3f80, 0x4040};
    float d1[2] = {7, 8};
    memcpy(data, a, 16);
    memcpy(data + 16, h, 6);
    memcpy(data + 22, bf, 4);
    memcpy(data + 26, d1, 8);
    const char *js = "{\"__metadata__\":{\"format\":\"pt\"},"
                     "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                     "\"b\":{\"dtype\":\"F16\",\"shape\":[1,3],\"data_offsets\":[16,22]},"
                     "\"c\":{\"dtype\":\"BF16\",\"shape\":[2,1],\"data_offsets\":[22,26]},"
                     "\"d\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[26,34]}}";
    const char *p = st_file("ok.safetensors", js, data, sizeof data);
    weights *w;
    if (!ok(weights_open(p, WEIGHTS_AUTO, &w) == D2_OK, "safetensors opens")) { tap_diag("%s", d2_err_msg()); return; }
    is_int(weights_count(w), 4, "4 tensors (metadata skipped)");
    size_t i;
    float *f;
    weights_find(w, "a", &i);
    ok(weights_read(w, i, &f) == D2_OK && f[0] == 1 && f[1] == -2 && f[2] == 0.5f && f[3] == 3, "F32 values");
    free(f);
    weights_find(w, "b", &i);
    ok(weights_read(w, i, &f) == D2_OK && f[0] == 1 && f[1] == -2 && f[2] == 65504, "F16 0x3c00, 0xc000, 0x7bff = 1, -2, 65504");
    free(f);
    weights_find(w, "c", &i);
    ok(weights_read(w, i, &f) == D2_OK && f[0] == 1 && f[1] == 3 && weights_get(w, i)->rows == 2, "BF16 0x3f80, 0x4040 = 1, 3");
    free(f);
    weights_find(w, "d", &i);
    ok(weights_get(w, i)->ndim == 1, "1-D tensor listed with ndim 1");
    weights_free(w);

    expect_err(st_file("trunc.safetensors", js, data, 20), WEIGHTS_SAFETENSORS, -1, D2_EFORMAT, "outside the", "truncated data: offsets outside the file");
    expect_err(st_file("i8.safetensors", "{\"q\":{\"dtype\":\"I8\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", data, 4),
               WEIGHTS_SAFETENSORS, 0, D2_EFORMAT, "dtype I8 not supported", "wrong dtype (I8) named on read");
    expect_err(st_file("shape.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", data, 16),
               WEIGHTS_SAFETENSORS, -1, D2_EFORMAT, "shape holds 6 F32 elements", "shape does not match data_offsets");
    expect_err(st_file("json.safetensors", "{\"a\":{\"dtype\":", data, 16), WEIGHTS_SAFETENSORS, -1, D2_EFORMAT, "JSON header", "malformed JSON header");
    unsigned char hl[8] = {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0};
    const char *p2 = tq_path("hl.safetensors");
    tq_write(p2, hl, 8);
    expect_err(p2, WEIGHTS_SAFETENSORS, -1, D2_EFORMAT, "header length", "impossible header length");
    tq_write(p2, hl, 5);
    expect_err(p2, WEIGHTS_SAFETENSORS, -1, D2_EFORMAT, "truncated", "file shorter than the length field");
    float nanv[4] = {1, 2, NAN, 4};
    expect_err(st_file("nan.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", nanv, 16),
               WEIGHTS_SAFETENSORS, 0, D2_EFORMAT, "element (1, 0) (index 2", "NaN named with its index");
    uint16_t hinf[2] = {0x3c00, 0x7c00};
    expect_err(st_file("inf.safetensors", "{\"a\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[0,4]}}", hinf, 4),
               WEIGHTS_SAFETENSORS, 0, D2_EFORMAT, "(index 1, file offset", "F16 Inf named with index and offset");
}

static const char *npy_file(const char *name, const char *dict, const void *data, size_t n)
{
    char hdr[256];
    int len = snprintf(hdr, sizeof hdr, "%s", dict);
    int total = 10 + len + 1;
    int padn = (64 - total % 64) % 64;
    unsigned char *b = malloc((size_t)(total + padn) + n);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    int hl = len + padn + 1;
    b[8] = (unsigned char)(hl & 0xff);
    b[9] = (unsigned char)(hl >> 8);
    memcpy(b + 10, hdr, (size_t)len);
    memset(b + 10 + len, ' ', (size_t)padn);
    b[10 + len + padn] = '\n';
    memcpy(b + total + padn, data, n);
    const char *p = tq_path(name);
    tq_write(p, b, (size_t)(total + padn) + n);
    free(b);
    return p;
}

static void test_npy(void)
{
    float a[6] = {1, 2, 3, 4, 5, 6};
    const char *p = npy_file("x.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", a, sizeof a);
    weights *w;
    float *f;
    if (!ok(weights_open(p, WEIGHTS_AUTO, &w) == D2_OK, ".npy f4 opens")) { tap_diag("%s", d2_err_msg()); return; }
    const weights_info *ti = weights_get(w, 0);
    ok(!strcmp(ti->name, "x") && ti->rows == 2 && ti->cols == 3, "name from file, shape 2 x 3");
    ok(weights_read(w, 0, &f) == D2_OK && f[5] == 6, "values");
    free(f);
    weights_free(w);
    p = npy_file("xf.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", a, sizeof a);
    weights_open(p, WEIGHTS_AUTO, &w);
    ok(weights_read(w, 0, &f) == D2_OK && f[0] == 1 && f[1] == 3 && f[2] == 5 && f[3] == 2, "fortran order transposed to row-major");
    free(f);
    weights_free(w);
    uint16_t h[2] = {0x3c00, 0x3555};
    p = npy_file("h.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", h, sizeof h);
    weights_open(p, WEIGHTS_AUTO, &w);
    ok(weights_read(w, 0, &f) == D2_OK && f[0] == 1 && f[1] == 0.333251953125f && weights_get(w, 0)->rows == 1, ".npy f2, 1-D read as 1 x 2");
    free(f);
    weights_free(w);
    expect_err(npy_file("i4.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", a, sizeof a), WEIGHTS_NPY, -1,
               D2_EFORMAT, "dtype '<i4' not supported", ".npy wrong dtype");
    expect_err(npy_file("be.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", a, sizeof a), WEIGHTS_NPY, -1,
               D2_EFORMAT, "'>f4' not supported", ".npy big-endian refused");
    expect_err(npy_file("short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", a, sizeof a), WEIGHTS_NPY, -1,
               D2_EFORMAT, "truncated", ".npy shorter than its shape");
    expect_err(npy_file("noshape.npy", "{'descr': '<f4', 'fortran_order': False, }", a, sizeof a), WEIGHTS_NPY, -1, D2_EFORMAT,
               "no 'shape'", ".npy without shape");
    a[4] = -INFINITY;
    expect_err(npy_file("inf.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", a, sizeof a), WEIGHTS_NPY, 0,
               D2_EFORMAT, "element (1, 1) (index 4", ".npy -Inf named with its index");
    const char *junk = tq_path("junk.npy");
    tq_write(junk, "hello world", 11);
    expect_err(junk, WEIGHTS_NPY, -1, D2_EFORMAT, "bad magic", "not a .npy file");
    expect_err(tq_path("none.npy"), WEIGHTS_NPY, -1, D2_ENOTFOUND, "cannot open", "missing file");
    weights_format fmt;
    ok(weights_format_parse("gguf", &fmt) == D2_EINVAL, "unknown --format refused");
}

int main(void)
{
    gsl_set_error_handler_off();
    test_stories();
    test_safetensors();
    test_npy();
    tq_cleanup();
    return tap_done();
}
