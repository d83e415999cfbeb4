/* t_mwqfile.c - the .mwq container: round trip, a reader that reads exactly
 * chunks 1..k (bytes counted, and chunk k+1 corrupted without effect), and a
 * corpus of bad files (truncations at every section, bad magic, checksum
 * errors, wrong version, and with valid checksums: reserved bytes, a tensor
 * count the index does not match, chunks out of their place, offsets past
 * INT64_MAX, padding) that must give one-line D2_EFORMAT errors. */
#include "core/err.h"
#include "core/hash.h"
#include "quant/mwqfile.h"
#include "tap.h"
#include "t_quant_util.h"

#include <gsl/gsl_errno.h>

static mwq_matrix *mk(int64_t r, int64_t c, int b1, int K, uint64_t seed)
{
    float *w = tq_heavy(r, c, seed);
    mwq_config cfg;
    mwq_config_default(&cfg);
    cfg.base_bits = b1; cfg.levels = K;
    mwq_matrix *m = NULL;
    mwq_matrix_quantize(w, r, c, &cfg, NULL, 0, &m);
    free(w);
    return m;
}

static unsigned char *slurp(const char *p, long *n)
{
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)*n);
    if (fread(b, 1, (size_t)*n, f) != (size_t)*n) exit(1);
    fclose(f);
    return b;
}

static uint64_t le64(const unsigned char *p) { uint64_t v = 0; for (int j = 7; j >= 0; j--) v = v << 8 | p[j]; return v; }
static void put_le64(unsigned char *p, uint64_t v) { for (int j = 0; j < 8; j++) p[j] = (unsigned char)(v >> (8 * j)); }

/* Recompute the index and header checksums after an edit, so that only the
 * edited field is wrong. */
static void resum(unsigned char *img, long n)
{
    const uint64_t ioff = le64(img + 16), ilen = le64(img + 24);
    if (ilen <= (uint64_t)n && ioff <= (uint64_t)n - ilen) put_le64(img + 32, hash64(img + ioff, ilen));
    put_le64(img + 48, hash64(img, 48));
}

/* Write img with one field edited (and checksums mended), open it, and
 * expect D2_EFORMAT with a message naming the file and containing want. */
static void refused(unsigned char *img, long n, const char *want, const char *what)
{
    const char *bad = tq_path("bad.mwq");
    resum(img, n);
    tq_write(bad, img, (size_t)n);
    mwqfile *f;
    int rc = mwqfile_open(bad, &f);
    if (rc == D2_OK) mwqfile_close(f);
    ok(rc == D2_EFORMAT && strstr(d2_err_msg(), bad) && strstr(d2_err_msg(), want) && !strchr(d2_err_msg(), '\n') &&
           !strstr(d2_err_msg(), " -"),
       "%s: refused, one line naming file and field: %s", what, rc ? d2_err_msg() : "(opened)");
}

int main(void)
{
    gsl_set_error_handler_off();
    mwq_matrix *a = mk(40, 300, 2, 3, 1), *b = mk(17, 256, 5, 4, 2);
    const char *path = tq_path("t.mwq");
    mwqfile_writer *w;
    ok(mwqfile_writer_new(path, &w) == D2_OK, "writer opens");
    ok(mwqfile_writer_add(w, "layers.0.w1", a, MWQFILE_RTN) == D2_OK && mwqfile_writer_add(w, "expert.3.down", b, MWQFILE_GPTQ) == D2_OK, "two tensors added");
    {
        int rc = mwqfile_writer_add(w, "bad\tname", a, MWQFILE_RTN);
        ok(rc == D2_EINVAL && strstr(d2_err_msg(), "a control character"),
           "a name with a control character is not written (the reader refuses it): %s", d2_err_msg());
    }
    ok(mwqfile_writer_finish(w) == D2_OK, "writer finishes");
    ok(access(tq_path("t.mwq.tmp"), F_OK) != 0, "temporary file renamed away");

    mwqfile *f;
    if (!ok(mwqfile_open(path, &f) == D2_OK, "reader opens")) { tap_diag("%s", d2_err_msg()); return tap_done(); }
    int64_t after_open = mwqfile_bytes_read(f);
    is_int(mwqfile_count(f), 2, "2 tensors");
    /* copies: the entries live as long as f */
    mwqfile_tensor t0v = *mwqfile_tensor_get(f, 0), t1v = *mwqfile_tensor_get(f, 1);
    const mwqfile_tensor *t0 = &t0v, *t1 = &t1v;
    ok(!strcmp(t0->name, "layers.0.w1") && t0->shape.rows == 40 && t0->shape.cols == 300 && t0->levels == 3 &&
       t0->shape.base_bits == 2 && t0->mode == MWQFILE_RTN, "tensor 0 index entry");
    ok(!strcmp(t1->name, "expert.3.down") && t1->levels == 4 && t1->shape.base_bits == 5 && t1->mode == MWQFILE_GPTQ, "tensor 1 index entry");
    int aligned = 1;
    for (int k = 0; k < 3; k++) aligned &= t0->offset[k] % MWQFILE_ALIGN == 0;
    ok(aligned, "chunks start at %d-byte boundaries", MWQFILE_ALIGN);
    size_t i;
    ok(mwqfile_find(f, "expert.3.down", &i) == D2_OK && i == 1, "find by name");
    ok(mwqfile_find(f, "nope", &i) == D2_ENOTFOUND, "unknown name: D2_ENOTFOUND");

    /* load levels 1..k: exactly header + index + chunks 1..k are read */
    for (int k = 1; k <= 4; k++) {
        mwqfile *g;
        mwqfile_open(path, &g);
        int64_t before = mwqfile_bytes_read(g);
        mwq_matrix *m;
        int rc = mwqfile_load(g, 1, k, &m);
        int64_t want = 0;
        for (int l = 1; l <= k; l++) want += t1->bytes[l - 1];
        ok(rc == D2_OK && mwqfile_bytes_read(g) - before == want, "load k=%d reads exactly chunks 1..%d: %lld bytes (want %lld)", k, k,
           (long long)(mwqfile_bytes_read(g) - before), (long long)want);
        int same = rc == D2_OK;
        for (int l = 1; same && l <= k; l++) same &= !memcmp(m->chunk[l - 1], b->chunk[l - 1], (size_t)b->chunk_bytes[l - 1]);
        ok(same, "load k=%d: chunks equal the written ones", k);
        if (rc == D2_OK) mwq_matrix_free(m);
        mwqfile_close(g);
    }
    is_int(after_open, MWQFILE_HEADER_BYTES + (int64_t)(30 + 11 + 3 * 24) + (30 + 13 + 4 * 24), "open reads header + index only");
    /* caller-buffer chunk read */
    unsigned char *buf = malloc((size_t)t0->bytes[1]);
    ok(mwqfile_chunk_read(f, 0, 2, buf, t0->bytes[1]) == D2_OK && !memcmp(buf, a->chunk[1], (size_t)a->chunk_bytes[1]), "chunk_read into a caller buffer");
    ok(mwqfile_chunk_read(f, 0, 2, buf, t0->bytes[1] - 1) == D2_EINVAL, "chunk_read refuses a short buffer");
    ok(mwqfile_chunk_read(f, 0, 4, buf, t0->bytes[1]) == D2_EINVAL, "chunk_read refuses a level the tensor lacks");
    free(buf);
    mwqfile_close(f);

    /* corrupt level 3 of tensor 0: levels 1..2 still load, level 3 fails */
    long n;
    unsigned char *img = slurp(path, &n);
    const char *bad = tq_path("bad.mwq");
    img[t0->offset[2] + 5] ^= 0x40;
    tq_write(bad, img, (size_t)n);
    img[t0->offset[2] + 5] ^= 0x40;
    mwqfile_open(bad, &f);
    mwq_matrix *m;
    ok(mwqfile_load(f, 0, 2, &m) == D2_OK, "corrupt level 3: levels 1..2 load (level 3 never read)");
    mwq_matrix_free(m);
    int rc = mwqfile_load(f, 0, 3, &m);
    ok(rc == D2_EFORMAT && strstr(d2_err_msg(), "level 3: checksum mismatch") && strstr(d2_err_msg(), bad), "corrupt level 3: checksum error names file and level");
    mwqfile_close(f);

    /* truncations: every length in a coarse sweep plus section edges */
    int all = 1, cnt = 0;
    for (long len = 0; len < n; len += (len < 200 ? 1 : 997)) {
        tq_write(bad, img, (size_t)len);
        rc = mwqfile_open(bad, &f);
        if (rc == D2_OK) { mwqfile_close(f); all = 0; tap_diag("truncated to %ld opened", len); }
        else if (rc != D2_EFORMAT || !strstr(d2_err_msg(), bad)) { all = 0; tap_diag("len %ld: rc %d %s", len, rc, d2_err_msg()); }
        cnt++;
    }
    ok(all, "%d truncated files refused with D2_EFORMAT naming the file", cnt);
    /* appended bytes */
    unsigned char *big = malloc((size_t)n + 10);
    memcpy(big, img, (size_t)n);
    memset(big + n, 0, 10);
    tq_write(bad, big, (size_t)n + 10);
    ok(mwqfile_open(bad, &f) == D2_EFORMAT && strstr(d2_err_msg(), "truncated or appended"), "appended bytes detected");
    free(big);
    img[0] = 'X';
    tq_write(bad, img, (size_t)n);
    ok(mwqfile_open(bad, &f) == D2_EFORMAT && strstr(d2_err_msg(), "bad magic"), "bad magic");
    img[0] = 'D';
    img[9] ^= 1; /* version field, header checksum now wrong */
    tq_write(bad, img, (size_t)n);
    ok(mwqfile_open(bad, &f) == D2_EFORMAT && strstr(d2_err_msg(), "header checksum"), "damaged header: checksum mismatch");
    img[9] ^= 1;
    /* version 1 (the bit-plane layout before slices) with a valid header checksum */
    img[8] = 1;
    uint64_t hsum = hash64(img, 48);
    for (int k = 0; k < 8; k++) img[48 + k] = (unsigned char)(hsum >> (8 * k));
    tq_write(bad, img, (size_t)n);
    ok(mwqfile_open(bad, &f) == D2_EFORMAT && strstr(d2_err_msg(), "format version 1"), "other version refused: %s", d2_err_msg());
    /* index damage */
    free(img);
    img = slurp(path, &n);
    img[n - 3] ^= 0x10;
    tq_write(bad, img, (size_t)n);
    ok(mwqfile_open(bad, &f) == D2_EFORMAT && strstr(d2_err_msg(), "index checksum"), "damaged index: checksum mismatch");
    /* a 2^32 x 2^32 shape with valid checksums: the chunk size used to
     * overflow int64 (UBSan in kern_chunk_bytes); now the element limit */
    free(img);
    img = slurp(path, &n);
    {
        uint64_t ioff = 0, ilen = 0;
        for (int j = 7; j >= 0; j--) { ioff = ioff << 8 | img[16 + j]; ilen = ilen << 8 | img[24 + j]; }
        unsigned char *e = img + ioff + 2 + img[ioff] + 4; /* entry 0: rows at +0, cols at +8 */
        for (int j = 0; j < 8; j++) e[j] = e[8 + j] = (unsigned char)(j == 4);
        uint64_t hi = hash64(img + ioff, ilen), hh;
        for (int j = 0; j < 8; j++) img[32 + j] = (unsigned char)(hi >> (8 * j));
        hh = hash64(img, 48);
        for (int j = 0; j < 8; j++) img[48 + j] = (unsigned char)(hh >> (8 * j));
    }
    tq_write(bad, img, (size_t)n);
    ok(mwqfile_open(bad, &f) == D2_ERANGE && strstr(d2_err_msg(), "4294967296 x 4294967296 elements, more than the limit") &&
           strstr(d2_err_msg(), "bad.mwq"),
       "2^32 x 2^32 shape: refused by the element limit, file named: %s", d2_err_msg());
    /* fields outside the checksums' reach or that the checksums cannot
     * judge: each edit with valid checksums must be refused, naming the
     * field, its offsets never printed negative */
    free(img);
    img = slurp(path, &n);
    {
        char good[512]; /* tq_path's buffers are a ring of 8 */
        snprintf(good, sizeof good, "%s", path);
        unsigned char *c = malloc((size_t)n + 64);
        const uint64_t ioff = le64(img + 16);
        unsigned char *e0 = img + ioff, *lv0 = e0 + 2 + 11 + 28; /* entry 0: "layers.0.w1", its level records; index 30 + 11 + 3 * 24 + 30 + 13 + 4 * 24 = 252 bytes */
        memcpy(c, img, (size_t)n);
        c[60] = 1;
        refused(c, n, "header: reserved bytes 56..63 are not zero", "reserved header byte 60 set");
        memcpy(c, img, (size_t)n);
        memset(c + 12, 0, 4);
        refused(c, n, "tensor count 0 (offset 12), but 252 of the index's 252 bytes are left", "tensor count 0, index of two entries");
        memcpy(c, img, (size_t)n);
        c[12] = 1;
        refused(c, n, "tensor count 1 (offset 12), but 139 of the index's 252 bytes are left", "tensor count 1, index of two entries");
        memcpy(c, img, (size_t)n);
        put_le64(c + 16, (uint64_t)1 << 63);
        refused(c, n, "index at offset 9223372036854775808 (", "index offset 2^63 (negative as int64)");
        memcpy(c, img, (size_t)n);
        put_le64(c + 24, ~(uint64_t)0);
        refused(c, n, "does not fit", "index length 2^64 - 1");
        /* 64 zero bytes between the last chunk and the index: a hole */
        memcpy(c, img, ioff);
        memset(c + ioff, 0, 64);
        memcpy(c + ioff + 64, img + ioff, (size_t)n - ioff);
        put_le64(c + 16, ioff + 64);
        put_le64(c + 40, (uint64_t)n + 64);
        refused(c, n + 64, "index at offset 12032 (252 bytes), expected at 11968", "64 bytes between the last chunk and the index");
        memcpy(c, img, (size_t)n);
        put_le64(c + (lv0 - img), ~(uint64_t)0 - 255);
        refused(c, n, "chunk at offset 18446744073709551360 (", "chunk offset 2^64 - 256 (negative as int64)");
        memcpy(c, img, (size_t)n);
        put_le64(c + (lv0 - img) + 24, le64(lv0));
        refused(c, n, "level 2: chunk at offset 64, expected", "level 2's chunk overlapping level 1's");
        memcpy(c, img, (size_t)n);
        put_le64(c + (lv0 - img) + 24, le64(lv0 + 24) + 8);
        refused(c, n, "expected", "a chunk 8 bytes past its aligned place");
        memcpy(c, img, (size_t)n);
        c[(e0 - img) + 2 + 6] = 0; /* "layers\0..." */
        refused(c, n, "the name has a NUL byte", "a NUL inside a tensor name");
        memcpy(c, img, (size_t)n);
        c[(e0 - img) + 2 + 6] = 0x1b; /* "layers\033..." (ESC, printed raw by mwq inspect before) */
        refused(c, n, "index entry 0 at offset 11968: the name has a control character (byte 0x1b at offset 11976)",
                "an escape byte inside a tensor name");
        memcpy(c, img, (size_t)n);
        c[(e0 - img) + 2 + 10] = 0x7f;
        refused(c, n, "the name has a control character (byte 0x7f", "a DEL byte inside a tensor name");
        /* padding: open never reads it; verify does */
        const int64_t end = (int64_t)le64(lv0) + (int64_t)le64(lv0 + 8);
        ok(end % MWQFILE_ALIGN != 0, "tensor 0 level 1 is followed by padding (ends at %lld)", (long long)end);
        memcpy(c, img, (size_t)n);
        c[end + 1] = 0x5a;
        tq_write(bad, c, (size_t)n);
        rc = mwqfile_open(bad, &f);
        ok(rc == D2_OK, "nonzero padding: open (header and index only) succeeds");
        if (rc == D2_OK) {
            char want[64];
            snprintf(want, sizeof want, "padding byte at offset %lld", (long long)(end + 1));
            rc = mwqfile_verify(f);
            ok(rc == D2_EFORMAT && strstr(d2_err_msg(), want) && strstr(d2_err_msg(), "layers.0.w1\" level 1") && strstr(d2_err_msg(), bad),
               "nonzero padding: verify refuses it naming file, tensor, level and offset: %s", d2_err_msg());
            mwqfile_close(f);
        }
        rc = mwqfile_open(good, &f);
        if (rc == D2_OK) rc = mwqfile_verify(f);
        ok(rc == D2_OK, "the intact file verifies%s%s", rc ? ": " : "", rc ? d2_err_msg() : "");
        mwqfile_close(f);
        free(c);
    }
    /* no tensors at all: the writer's empty container opens (header, empty index) */
    ok(mwqfile_writer_new(tq_path("empty.mwq"), &w) == D2_OK && mwqfile_writer_finish(w) == D2_OK &&
           mwqfile_open(tq_path("empty.mwq"), &f) == D2_OK && mwqfile_count(f) == 0 && mwqfile_verify(f) == D2_OK,
       "an empty container (0 tensors, empty index) opens and verifies");
    mwqfile_close(f);
    tq_write(bad, "", 0);
    ok(mwqfile_open(tq_path("missing.mwq"), &f) == D2_ENOTFOUND, "missing file: D2_ENOTFOUND");
    free(img);
    mwq_matrix_free(a);
    mwq_matrix_free(b);
    tq_cleanup();
    return tap_done();
}
