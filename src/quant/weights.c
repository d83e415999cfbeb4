/* weights.c - llama2.c, safetensors and .npy readers (see weights.h).
 * llama2.c tensors are named as in llama2.c's run.c (tok_embeddings,
 * layers.L.wq, ..., wcls); matrices are rows = outputs as run.c's matmul reads
 * them; the RoPE tables freq_cis_* are not weights and are not listed. */
#include "config.h"
#include "quant/weights.h"
#include "quant/f16.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/vec.h"
#include "core/text.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct weights {
    char path[FILEIO_PATH_MAX];
    int fd;
    int64_t size; /* bytes */
    weights_info *t;
    size_t n, cap;
};

int weights_format_parse(const char *s, weights_format *out)
{
    if (!strcmp(s, "auto")) *out = WEIGHTS_AUTO;
    else if (!strcmp(s, "llama2c")) *out = WEIGHTS_LLAMA2C;
    else if (!strcmp(s, "safetensors")) *out = WEIGHTS_SAFETENSORS;
    else if (!strcmp(s, "npy")) *out = WEIGHTS_NPY;
    else D2_ERROR(D2_EINVAL, "--format %s: expected llama2c, safetensors, npy or auto", s);
    return D2_OK;
}

static int add(weights *w, const weights_info *ti)
{
    D2_TRY(VEC_RESERVE(w->t, w->cap, w->n + 1));
    w->t[w->n++] = *ti;
    return D2_OK;
}

static int esize(weights_dtype d) { return d == WEIGHTS_F32 ? 4 : 2; }

static int pread_all(weights *w, void *buf, int64_t n, int64_t off, const char *what)
{
    if (off < 0 || n < 0 || off + n > w->size)
        D2_ERROR(D2_EFORMAT, "%s: %s: needs bytes %lld..%lld but the file has %lld bytes (truncated?)", w->path, what,
                 (long long)off, (long long)(off + n), (long long)w->size);
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(w->fd, p, (size_t)n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            D2_ERROR(D2_EIO, "%s: read error at offset %lld: %s", w->path, (long long)off, strerror(errno));
        }
        if (r == 0) D2_ERROR(D2_EFORMAT, "%s: %s: unexpected end of file at offset %lld", w->path, what, (long long)off);
        p += r; n -= r; off += r;
    }
    return D2_OK;
}

/* ---- llama2.c ---------------------------------------------------------------- */
static int open_llama2c(weights *w)
{
    int32_t h[7];
    D2_TRY(pread_all(w, h, sizeof h, 0, "header (7 int32)"));
    static const char *hn[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; i++) {
        const int64_t a = h[i] < 0 ? -(int64_t)h[i] : h[i]; /* in int64: abs(INT32_MIN) overflows */
        if ((i == 5 ? a : h[i]) <= 0 || a > (1 << 24))
            D2_ERROR(D2_EFORMAT, "%s: header field %s (offset %d) = %d is not a plausible size", w->path, hn[i], 4 * i, h[i]);
    }
    int64_t dim = h[0], hid = h[1], L = h[2], nh = h[3], nkv = h[4], vocab = h[5] < 0 ? -(int64_t)h[5] : h[5], seq = h[6];
    if (dim % nh) D2_ERROR(D2_EFORMAT, "%s: header: dim %lld is not a multiple of n_heads %lld", w->path, (long long)dim, (long long)nh);
    int64_t hs = dim / nh, kv = nkv * hs, off = 28;
    /* The bytes the header implies, in double (each factor is at most 2^24, the
     * sum can pass 2^63): a file that cannot hold them is refused before the
     * per-tensor offsets below are summed in int64 or listed. */
    double need = 28 + 4.0 * ((double)vocab * dim * (h[5] < 0 ? 2 : 1) + (double)dim +
                              (double)L * ((double)dim * (2 + 2 * dim + 2 * kv + 3 * hid)) + (double)seq * (hs / 2) * 2);
    if (need > (double)w->size)
        D2_ERROR(D2_EFORMAT, "%s: llama2.c checkpoint (dim %lld, hidden %lld, %lld layers, vocab %lld) needs %.0f bytes, the file has %lld (truncated)",
                 w->path, (long long)dim, (long long)hid, (long long)L, (long long)vocab, need, (long long)w->size);
    weights_info ti;
#define T(nm, r, c, nd)                                                                        \
    do {                                                                                       \
        memset(&ti, 0, sizeof ti);                                                             \
        snprintf(ti.name, sizeof ti.name, "%s", nm);                                           \
        ti.ndim = nd; ti.rows = r; ti.cols = c; ti.dtype = WEIGHTS_F32; ti.offset = off;       \
        snprintf(ti.dtype_name, sizeof ti.dtype_name, "f32");                                  \
        D2_TRY(add(w, &ti));                                                                   \
        off += 4 * (r) * (c);                                                                  \
    } while (0)
    char nm[256];
    T("tok_embeddings", vocab, dim, 2);
    /* per-kind arrays over layers, in file order */
    static const char *kinds[] = {"attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3"};
    int64_t kr[9] = {1, dim, kv, kv, dim, 1, hid, dim, hid}, kc[9] = {dim, dim, dim, dim, dim, dim, dim, hid, dim};
    for (int k = 0; k < 9; k++)
        for (int64_t l = 0; l < L; l++) {
            snprintf(nm, sizeof nm, "layers.%lld.%s", (long long)l, kinds[k]);
            T(nm, kr[k], kc[k], kr[k] == 1 ? 1 : 2);
        }
    T("norm", 1, dim, 1);
    off += 4 * seq * (hs / 2) * 2; /* freq_cis_real, freq_cis_imag: RoPE tables, not listed */
    if (h[5] < 0) T("wcls", vocab, dim, 2);
#undef T
    /* bytes after the last tensor: not a checkpoint of this header (a
     * different layout or a concatenation), refused rather than ignored */
    if (off < w->size)
        D2_ERROR(D2_EFORMAT, "%s: llama2.c checkpoint (dim %lld, hidden %lld, %lld layers, vocab %lld) ends at byte %lld, the file has %lld (%lld trailing bytes)",
                 w->path, (long long)dim, (long long)hid, (long long)L, (long long)vocab, (long long)off, (long long)w->size,
                 (long long)(w->size - off));
    if (off > w->size)
        D2_ERROR(D2_EFORMAT, "%s: llama2.c checkpoint (dim %lld, hidden %lld, %lld layers, vocab %lld) needs %lld bytes, the file has %lld (truncated)",
                 w->path, (long long)dim, (long long)hid, (long long)L, (long long)vocab, (long long)off, (long long)w->size);
    return D2_OK;
}

/* ---- safetensors ------------------------------------------------------------ */
static int open_safetensors(weights *w)
{
    uint64_t hl;
    D2_TRY(pread_all(w, &hl, 8, 0, "header length (8 bytes)"));
    if (hl < 2 || hl > (uint64_t)100 << 20 || (int64_t)hl > w->size - 8)
        D2_ERROR(D2_EFORMAT, "%s: header length %llu at offset 0 is impossible for a %lld-byte file", w->path,
                 (unsigned long long)hl, (long long)w->size);
    char *js = malloc(hl + 1);
    if (!js) D2_ERROR(D2_ENOMEM, "out of memory");
    int rc = pread_all(w, js, (int64_t)hl, 8, "JSON header");
    if (rc) { free(js); return rc; }
    js[hl] = 0;
    json_error_t je;
    /* a tensor named twice: refused (jansson would keep one silently) */
    json_t *root = json_loadb(js, hl, JSON_REJECT_DUPLICATES, &je);
    free(js);
    if (!root || !json_is_object(root)) {
        if (root) json_decref(root);
        D2_ERROR(D2_EFORMAT, "%s: JSON header: %s (byte %d of the header)", w->path, root ? "not an object" : je.text, je.position);
    }
    int64_t data0 = 8 + (int64_t)hl, dsize = w->size - data0;
    int64_t (*sp)[2] = NULL; /* [begin, end) of every tensor, for the hole/overlap check below */
    size_t n = 0, spcap = 0;
    const char *key;
    json_t *v;
    rc = D2_OK;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) continue;
        weights_info ti;
        memset(&ti, 0, sizeof ti);
        if (strlen(key) >= sizeof ti.name) {
            d2_err_set("%s: tensor \"%.40s...\": name longer than %zu bytes", w->path, key, sizeof ti.name - 1);
            rc = D2_EFORMAT; break;
        }
        snprintf(ti.name, sizeof ti.name, "%s", key);
        /* a name is printed as it is (quantize's report, mwq inspect): no control characters */
        size_t cc = text_ctl_span(key, strlen(key));
        if (key[cc]) {
            d2_err_set("%s: tensor \"%s\": a control character (byte 0x%02x at %zu) in its name", w->path, key,
                       (unsigned char)key[cc], cc);
            rc = D2_EFORMAT; break;
        }
        json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"), *of = json_object_get(v, "data_offsets");
        if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(of) || json_array_size(of) != 2 ||
            !json_is_integer(json_array_get(of, 0)) || !json_is_integer(json_array_get(of, 1))) {
            d2_err_set("%s: tensor \"%s\": header entry needs dtype, shape and data_offsets [begin, end]", w->path, key);
            rc = D2_EFORMAT; break;
        }
        const char *d = json_string_value(dt);
        snprintf(ti.dtype_name, sizeof ti.dtype_name, "%s", d);
        ti.dtype = !strcmp(d, "F32") ? WEIGHTS_F32 : !strcmp(d, "F16") ? WEIGHTS_F16 : !strcmp(d, "BF16") ? WEIGHTS_BF16 : WEIGHTS_OTHER;
        ti.ndim = (int)json_array_size(sh);
        int64_t numel = 1, last = 1, lead = 1; /* lead: the product of all dimensions but the last */
        for (int i = 0; i < ti.ndim; i++) {
            json_t *e = json_array_get(sh, (size_t)i);
            if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > ((int64_t)1 << 40)) {
                d2_err_set("%s: tensor \"%s\": shape[%d] is not a size", w->path, key, i);
                rc = D2_EFORMAT; break;
            }
            last = json_integer_value(e);
            if (last && (numel > ((int64_t)1 << 40) / last || lead > ((int64_t)1 << 40) / last)) {
                d2_err_set("%s: tensor \"%s\": shape too large", w->path, key);
                rc = D2_EFORMAT; break;
            }
            if (i < ti.ndim - 1) lead *= last;
            numel *= last;
        }
        if (rc) break;
        ti.cols = ti.ndim ? last : 1;
        ti.rows = lead;
        int64_t b = json_integer_value(json_array_get(of, 0)), e = json_integer_value(json_array_get(of, 1));
        if (b < 0 || e < b || e > dsize) {
            d2_err_set("%s: tensor \"%s\": data_offsets [%lld, %lld] outside the %lld data bytes (truncated?)", w->path, key,
                       (long long)b, (long long)e, (long long)dsize);
            rc = D2_EFORMAT; break;
        }
        if (ti.dtype != WEIGHTS_OTHER && e - b != numel * esize(ti.dtype)) {
            d2_err_set("%s: tensor \"%s\": shape holds %lld %s elements (%lld bytes) but data_offsets span %lld bytes", w->path,
                       key, (long long)numel, d, (long long)(numel * esize(ti.dtype)), (long long)(e - b));
            rc = D2_EFORMAT; break;
        }
        ti.offset = data0 + b;
        if ((rc = add(w, &ti))) break;
        if ((rc = VEC_RESERVE(sp, spcap, n + 1)) != D2_OK) break;
        sp[n][0] = b;
        sp[n][1] = e;
        n++;
    }
    json_decref(root);
    if (rc) { free(sp); return rc; }
    /* the data buffer is indexed entirely, without holes or overlaps (the
     * safetensors specification): sort the spans and walk them */
    for (size_t i = 1; i < n; i++) /* insertion sort by begin (n is small) */
        for (size_t j = i; j > 0 && sp[j][0] < sp[j - 1][0]; j--) {
            int64_t a = sp[j][0], b = sp[j][1];
            sp[j][0] = sp[j - 1][0]; sp[j][1] = sp[j - 1][1]; sp[j - 1][0] = a; sp[j - 1][1] = b;
        }
    int64_t at = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (sp[i][0] < at) { rc = D2_EFORMAT; d2_err_set("%s: data_offsets overlap: [%lld, %lld) begins before %lld, the end of the previous tensor", w->path, (long long)sp[i][0], (long long)sp[i][1], (long long)at); }
        else if (sp[i][0] > at) { rc = D2_EFORMAT; d2_err_set("%s: data_offsets leave a hole: bytes [%lld, %lld) belong to no tensor", w->path, (long long)at, (long long)sp[i][0]); }
        at = sp[i][1];
    }
    if (!rc && at != dsize) { rc = D2_EFORMAT; d2_err_set("%s: data_offsets end at %lld, the data has %lld bytes (%lld trailing)", w->path, (long long)at, (long long)dsize, (long long)(dsize - at)); }
    free(sp);
    return rc;
}

/* ---- .npy ----------------------------------------------------------------------- */
/* `key` bare (descr): found quoted either way ('descr' or "descr", both
 * legal Python).  1 = the key appears more than once in any quoting (numpy
 * keeps the last, we would read the first: refused); -1 = absent */
static int npy_field(const char *hdr, const char *key, const char **val)
{
    char q1[64], q2[64];
    snprintf(q1, sizeof q1, "'%s'", key);
    snprintf(q2, sizeof q2, "\"%s\"", key);
    const char *first = NULL;
    int n = 0;
    for (int k = 0; k < 2; k++)
        for (const char *p = strstr(hdr, k ? q2 : q1); p; p = strstr(p + 1, k ? q2 : q1)) {
            n++;
            if (!first || p < first) first = p;
        }
    if (!n) return -1;
    if (n > 1) return 1;
    const char *p = strchr(first + strlen(q1), ':');
    if (!p) return -1;
    p++;
    while (*p == ' ') p++;
    *val = p;
    return 0;
}

static int open_npy(weights *w)
{
    unsigned char pre[12];
    D2_TRY(pread_all(w, pre, 10, 0, "magic and header length"));
    if (memcmp(pre, "\x93NUMPY", 6)) D2_ERROR(D2_EFORMAT, "%s: not a .npy file (bad magic at offset 0)", w->path);
    int major = pre[6];
    int64_t hl, h0;
    if (major == 1) { hl = pre[8] | (pre[9] << 8); h0 = 10; }
    else if (major == 2 || major == 3) {
        D2_TRY(pread_all(w, pre, 12, 0, "header length"));
        hl = (int64_t)pre[8] | ((int64_t)pre[9] << 8) | ((int64_t)pre[10] << 16) | ((int64_t)pre[11] << 24);
        h0 = 12;
    } else D2_ERROR(D2_EFORMAT, "%s: .npy version %d.%d not supported", w->path, pre[6], pre[7]);
    if (hl > (1 << 20)) D2_ERROR(D2_EFORMAT, "%s: .npy header length %lld too large", w->path, (long long)hl);
    char *hdr = malloc((size_t)hl + 1);
    if (!hdr) D2_ERROR(D2_ENOMEM, "out of memory");
    int rc = pread_all(w, hdr, hl, h0, "header");
    if (rc) { free(hdr); return rc; }
    hdr[hl] = 0;
    weights_info ti;
    memset(&ti, 0, sizeof ti);
    const char *base = strrchr(w->path, '/');
    snprintf(ti.name, sizeof ti.name, "%s", base ? base + 1 : w->path);
    char *dot = strrchr(ti.name, '.');
    if (dot && !strcmp(dot, ".npy")) *dot = 0;
    const char *v;
    rc = D2_EFORMAT;
    /* a Python dict literal: '{' ... '}', then the padding numpy writes */
    size_t he = strlen(hdr);
    while (he && (hdr[he - 1] == ' ' || hdr[he - 1] == '\n' || hdr[he - 1] == '\t')) he--;
    if (hdr[strspn(hdr, " ")] != '{' || !he || hdr[he - 1] != '}') {
        d2_err_set("%s: header: not a Python dict ('{' ... '}')", w->path);
        goto out;
    }
    static const char *const keys[] = {"descr", "fortran_order", "shape"};
    for (int i = 0; i < 3; i++)
        if (npy_field(hdr, keys[i], &v) == 1) { d2_err_set("%s: header: key '%s' appears more than once", w->path, keys[i]); goto out; }
    if (npy_field(hdr, "descr", &v) || (*v != '\'' && *v != '"')) { d2_err_set("%s: header: no 'descr'", w->path); goto out; }
    size_t k = 0;
    for (v++; *v && *v != '\'' && *v != '"' && k + 1 < sizeof ti.dtype_name; v++) ti.dtype_name[k++] = *v;
    ti.dtype = !strcmp(ti.dtype_name, "<f4") ? WEIGHTS_F32 : !strcmp(ti.dtype_name, "<f2") ? WEIGHTS_F16 : WEIGHTS_OTHER;
    if (ti.dtype == WEIGHTS_OTHER) { d2_err_set("%s: header: dtype '%s' not supported (expected '<f4' or '<f2')", w->path, ti.dtype_name); goto out; }
    if (npy_field(hdr, "fortran_order", &v)) { d2_err_set("%s: header: no 'fortran_order'", w->path); goto out; }
    /* a Python bool and nothing else: 'fortran_order': 1 (or true, or
     * Truex) is not what numpy writes, and read as C order it would give
     * the transpose's data */
    if (!strncmp(v, "True", 4) && v[4] && strchr(" ,}", v[4])) ti.fortran = 1;
    else if (!strncmp(v, "False", 5) && v[5] && strchr(" ,}", v[5])) ti.fortran = 0;
    else {
        int vl = 0;
        while (v[vl] && !strchr(",}", v[vl]) && vl < 32) vl++;
        d2_err_set("%s: header: key 'fortran_order' is '%.*s', expected True or False", w->path, vl, v);
        goto out;
    }
    if (npy_field(hdr, "shape", &v) || *v != '(') { d2_err_set("%s: header: no 'shape' tuple", w->path); goto out; }
    int64_t dims[8], nd = 0;
    int comma = 0; /* the last dimension was followed by a comma */
    for (v++;;) { /* a Python tuple: "(4, 256)", "(256,)", "()"; not "(4 256)", "(,4)" or "(256)" */
        while (*v == ' ') v++;
        if (*v == ')') break;
        char *end;
        long long d = strtoll(v, &end, 10);
        if (end == v || d < 0 || nd == 8) { d2_err_set("%s: header: malformed shape", w->path); goto out; }
        dims[nd++] = d;
        v = end;
        while (*v == ' ') v++;
        comma = *v == ',';
        if (comma) v++;
        else if (*v != ')') { d2_err_set("%s: header: malformed shape", w->path); goto out; }
    }
    /* "(256)" is a parenthesised integer, not a tuple: numpy writes one dimension as "(256,)" */
    if (nd == 1 && !comma) {
        d2_err_set("%s: header: key 'shape' is '(%lld)', not a tuple (one dimension is written '(%lld,)')", w->path,
                   (long long)dims[0], (long long)dims[0]);
        goto out;
    }
    ti.ndim = (int)nd;
    int64_t numel = 1, lead = 1; /* lead: the product of all dimensions but the last */
    for (int i = 0; i < nd; i++) {
        if (dims[i] && (numel > ((int64_t)1 << 40) / dims[i] || lead > ((int64_t)1 << 40) / dims[i])) {
            d2_err_set("%s: header: shape too large", w->path);
            goto out;
        }
        if (i < nd - 1) lead *= dims[i];
        numel *= dims[i];
    }
    ti.cols = nd ? dims[nd - 1] : 1;
    ti.rows = lead;
    if (ti.fortran && nd > 2) { d2_err_set("%s: fortran_order with %d dimensions not supported", w->path, (int)nd); goto out; }
    ti.offset = h0 + hl;
    if (ti.offset + numel * esize(ti.dtype) > w->size) {
        d2_err_set("%s: shape needs %lld data bytes after offset %lld, the file has %lld (truncated)", w->path,
                   (long long)(numel * esize(ti.dtype)), (long long)ti.offset, (long long)(w->size - ti.offset));
        goto out;
    }
    /* bytes after the data: not the array the header describes (another
     * shape, or a concatenation), refused like safetensors and llama2.c */
    if (ti.offset + numel * esize(ti.dtype) < w->size) {
        d2_err_set("%s: shape needs %lld data bytes after offset %lld, the file has %lld (%lld trailing bytes)", w->path,
                   (long long)(numel * esize(ti.dtype)), (long long)ti.offset, (long long)(w->size - ti.offset),
                   (long long)(w->size - ti.offset - numel * esize(ti.dtype)));
        goto out;
    }
    rc = add(w, &ti);
out:
    free(hdr);
    return rc;
}

/* ---- common ------------------------------------------------------------------------ */
int weights_open(const char *path, weights_format fmt, weights **out)
{
    *out = NULL;
    if (fmt == WEIGHTS_AUTO) {
        const char *dot = strrchr(path, '.');
        if (dot && !strcmp(dot, ".safetensors")) fmt = WEIGHTS_SAFETENSORS;
        else if (dot && !strcmp(dot, ".npy")) fmt = WEIGHTS_NPY;
        else if (dot && !strcmp(dot, ".bin")) fmt = WEIGHTS_LLAMA2C;
        else D2_ERROR(D2_EINVAL, "%s: cannot tell the format from the extension; give --format llama2c|safetensors|npy", path);
    }
    weights *w = calloc(1, sizeof *w);
    if (!w) D2_ERROR(D2_ENOMEM, "out of memory");
    snprintf(w->path, sizeof w->path, "%s", path);
    w->fd = open(path, O_RDONLY | O_NONBLOCK); /* a FIFO: refused below, not waited on */
    if (w->fd < 0) { int e = errno; free(w); D2_ERROR(D2_ENOTFOUND, "%s: cannot open: %s", path, strerror(e)); }
    struct stat st;
    if (fstat(w->fd, &st) || !S_ISREG(st.st_mode)) { weights_free(w); D2_ERROR(D2_EINVAL, "%s: not a regular file", path); }
    fileio_note_input_fd(w->fd, path); /* no output of this command may be written over it */
    w->size = st.st_size;
    int rc = fmt == WEIGHTS_LLAMA2C ? open_llama2c(w) : fmt == WEIGHTS_SAFETENSORS ? open_safetensors(w) : open_npy(w);
    if (rc) { weights_free(w); return rc; }
    *out = w;
    return D2_OK;
}

void weights_free(weights *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    free(w->t);
    free(w);
}

const char *weights_path(const weights *w) { return w->path; }
size_t weights_count(const weights *w) { return w->n; }
const weights_info *weights_get(const weights *w, size_t i) { return i < w->n ? &w->t[i] : NULL; }

int weights_find(const weights *w, const char *name, size_t *i)
{
    for (size_t k = 0; k < w->n; k++)
        if (!strcmp(w->t[k].name, name)) { *i = k; return D2_OK; }
    D2_ERROR(D2_ENOTFOUND, "%s: no tensor named \"%s\" (%zu tensors in the file)", w->path, name, w->n);
}

int weights_read(weights *w, size_t i, float **out)
{
    *out = NULL;
    const weights_info *ti = &w->t[i];
    if (ti->dtype == WEIGHTS_OTHER)
        D2_ERROR(D2_EFORMAT, "%s: tensor \"%s\": dtype %s not supported (F32, F16, BF16)", w->path, ti->name, ti->dtype_name);
    int64_t n = ti->rows * ti->cols, es = esize(ti->dtype);
    float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof *f);
    if (!f) D2_ERROR(D2_ENOMEM, "out of memory (%lld floats)", (long long)n);
    char what[300];
    snprintf(what, sizeof what, "tensor \"%s\"", ti->name);
    int rc = D2_OK;
    if (ti->dtype == WEIGHTS_F32) rc = pread_all(w, f, n * 4, ti->offset, what);
    else {
        uint16_t *h = malloc((size_t)(n > 0 ? n : 1) * 2);
        if (!h) { free(f); D2_ERROR(D2_ENOMEM, "out of memory"); }
        rc = pread_all(w, h, n * 2, ti->offset, what);
        for (int64_t k = 0; rc == D2_OK && k < n; k++) f[k] = ti->dtype == WEIGHTS_F16 ? f16_to_float(h[k]) : bf16_to_float(h[k]);
        free(h);
    }
    if (rc) { free(f); return rc; }
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(f[k])) {
            /* index in file order (before any fortran transpose) */
            int64_t r = ti->fortran ? k % ti->rows : k / ti->cols, c = ti->fortran ? k / ti->rows : k % ti->cols;
            const char *kind = isnan(f[k]) ? "NaN" : "Inf";
            free(f);
            D2_ERROR(D2_EFORMAT, "%s: tensor \"%s\": element (%lld, %lld) (index %lld, file offset %lld) is %s", w->path,
                     ti->name, (long long)r, (long long)c, (long long)k, (long long)(ti->offset + k * es), kind);
        }
    if (ti->fortran && ti->rows > 1 && ti->cols > 1) {
        float *t = malloc((size_t)n * sizeof *t);
        if (!t) { free(f); D2_ERROR(D2_ENOMEM, "out of memory"); }
        for (int64_t r = 0; r < ti->rows; r++)
            for (int64_t c = 0; c < ti->cols; c++) t[r * ti->cols + c] = f[c * ti->rows + r];
        free(f);
        f = t;
    }
    *out = f;
    return D2_OK;
}
