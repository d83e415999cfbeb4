/* mwqfile.c - .mwq writer and reader (see mwqfile.h; layout in docs/mwq.md). */
#include "config.h"
#include "quant/mwqfile.h"
#include "core/err.h"
#include "core/vec.h"
#include "core/fileio.h"
#include "core/hash.h"
#include "core/text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint64_t get64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; return v; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

#define ENTRY_FIXED (2 + 4 + 24)   /* name_len, b1/levels/mode/pad, rows/cols/group */
#define ENTRY_LEVEL 24             /* offset, bytes, xxh3 */

/* ---- reader ---------------------------------------------------------------- */
struct mwqfile {
    char path[FILEIO_PATH_MAX];
    int fd;
    int64_t size, nread;
    mwqfile_tensor *t;
    size_t n;
};

static int rd(mwqfile *f, void *buf, int64_t n, int64_t off, const char *what)
{
    if (off < 0 || n < 0 || off + n > f->size)
        D2_ERROR(D2_EFORMAT, "%s: %s: bytes %lld..%lld are past the end of the %lld-byte file (truncated?)", f->path, what,
                 (long long)off, (long long)(off + n), (long long)f->size);
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(f->fd, p, (size_t)n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) D2_ERROR(D2_EIO, "%s: read at offset %lld: %s", f->path, (long long)off, strerror(errno));
        if (r == 0) D2_ERROR(D2_EFORMAT, "%s: %s: unexpected end of file at offset %lld", f->path, what, (long long)off);
        f->nread += r;
        p += r; n -= r; off += r;
    }
    return D2_OK;
}

static int64_t align_up(int64_t x) { return (x + MWQFILE_ALIGN - 1) / MWQFILE_ALIGN * MWQFILE_ALIGN; }

/* *next: where the next chunk must start (the header's end at first); on
 * return, where the index must start. */
static int parse_index(mwqfile *f, const uint8_t *ix, int64_t len, uint32_t nt, int64_t idx_off, int64_t *next)
{
    int64_t pos = 0;
    for (uint32_t i = 0; i < nt; i++) {
        mwqfile_tensor *t = &f->t[i];
        memset(t, 0, sizeof *t);
        if (pos + ENTRY_FIXED > len) D2_ERROR(D2_EFORMAT, "%s: index entry %u at offset %lld: truncated", f->path, i, (long long)(idx_off + pos));
        unsigned nl = ix[pos] | (ix[pos + 1] << 8);
        if (nl == 0 || nl > 255 || pos + ENTRY_FIXED + nl > len)
            D2_ERROR(D2_EFORMAT, "%s: index entry %u at offset %lld: bad name length %u", f->path, i, (long long)(idx_off + pos), nl);
        if (memchr(ix + pos + 2, 0, nl))
            D2_ERROR(D2_EFORMAT, "%s: index entry %u at offset %lld: the name has a NUL byte", f->path, i, (long long)(idx_off + pos));
        /* names are printed as they are: no terminal control reaches a screen */
        size_t cc = text_ctl_span((const char *)ix + pos + 2, nl);
        if (cc < nl)
            D2_ERROR(D2_EFORMAT, "%s: index entry %u at offset %lld: the name has a control character (byte 0x%02x at offset %lld)",
                     f->path, i, (long long)(idx_off + pos), ix[pos + 2 + cc], (long long)(idx_off + pos + 2 + cc));
        memcpy(t->name, ix + pos + 2, nl);
        const uint8_t *p = ix + pos + 2 + nl;
        t->shape.base_bits = p[0];
        t->levels = p[1];
        t->mode = p[2];
        t->shape.rows = (int64_t)get64(p + 4);
        t->shape.cols = (int64_t)get64(p + 12);
        t->shape.group = (int64_t)get64(p + 20);
        t->kq = p[3];
        if (t->kq == 1) {
            /* k-quant tensor: the group field carries the sub-block code widths */
            const uint64_t gf = get64(p + 20);
            t->kqf = (kq_format){.base_bits = p[0], .levels = p[1], .scale_bits = (int)(gf >> 32 & 0xff),
                                 .min_bits = (int)(gf >> 40 & 0xff), .min_rel = (int)(gf >> 52 & 0xf), .resid = (kq_resid)(gf >> 48 & 0xf)};
            t->shape.group = (int64_t)(gf & 0xffffffffu);
            if ((gf >> 56) || t->shape.group != KQ_SUPER || kq_format_check(&t->kqf) || t->mode != 0 || t->shape.cols % KQ_SUPER)
                D2_ERROR(D2_EFORMAT, "%s: tensor \"%s\" (index offset %lld): bad k-quant field (group word 0x%llx, b1 %d, levels %d, mode %d, cols %lld)",
                         f->path, t->name, (long long)(idx_off + pos), (unsigned long long)gf, p[0], p[1], p[2], (long long)t->shape.cols);
        } else if (t->kq != 0)
            D2_ERROR(D2_EFORMAT, "%s: tensor \"%s\" (index offset %lld): bad layout byte %d", f->path, t->name, (long long)(idx_off + pos), t->kq);
        if (t->shape.base_bits < 1 || t->levels < 1 || t->shape.base_bits + t->levels - 1 > 8 || t->mode > 1 ||
            t->shape.rows < 1 || t->shape.cols < 1 || t->shape.group < 1 || t->shape.group > ((int64_t)1 << 20) ||
            t->shape.rows > ((int64_t)1 << 32) ||
            t->shape.cols > ((int64_t)1 << 32))
            D2_ERROR(D2_EFORMAT, "%s: tensor \"%s\" (index offset %lld): bad field (b1 %d, levels %d, mode %d, %lld x %lld, group %lld)",
                     f->path, t->name, (long long)(idx_off + pos), t->shape.base_bits, t->levels, t->mode,
                     (long long)t->shape.rows, (long long)t->shape.cols, (long long)t->shape.group);
        /* rows and cols each up to 2^32 would overflow every size computed
         * from them: the product is limited first (docs/mwq.md, "Limits") */
        if (t->shape.rows > MWQFILE_ELEMS_MAX / t->shape.cols)
            D2_ERROR(D2_ERANGE, "%s: tensor \"%s\": %lld x %lld elements, more than the limit of %lld", f->path, t->name,
                     (long long)t->shape.rows, (long long)t->shape.cols, (long long)MWQFILE_ELEMS_MAX);
        pos += ENTRY_FIXED + nl;
        if (pos + (int64_t)t->levels * ENTRY_LEVEL > len) D2_ERROR(D2_EFORMAT, "%s: tensor \"%s\": index truncated", f->path, t->name);
        for (int k = 1; k <= t->levels; k++) {
            const uint8_t *q = ix + pos + (k - 1) * ENTRY_LEVEL;
            t->offset[k - 1] = (int64_t)get64(q);
            t->bytes[k - 1] = (int64_t)get64(q + 8);
            t->xxh3[k - 1] = get64(q + 16);
            int64_t want = t->kq ? kq_chunk_bytes(&t->kqf, t->shape.rows, t->shape.cols, k) : kern_chunk_bytes(&t->shape, k);
            if (t->bytes[k - 1] != want)
                D2_ERROR(D2_EFORMAT, "%s: tensor \"%s\" level %d: chunk of %lld bytes, its shape needs %lld", f->path, t->name, k,
                         (long long)t->bytes[k - 1], (long long)want);
            /* offsets are printed as the u64 they are stored as: a damaged
             * one is never shown negative, nor summed past INT64_MAX */
            if (t->offset[k - 1] < MWQFILE_HEADER_BYTES || t->offset[k - 1] > f->size || t->bytes[k - 1] > f->size - t->offset[k - 1])
                D2_ERROR(D2_EFORMAT, "%s: tensor \"%s\" level %d: chunk at offset %llu (%lld bytes) is outside the %lld-byte file (truncated?)",
                         f->path, t->name, k, (unsigned long long)get64(q), (long long)t->bytes[k - 1], (long long)f->size);
            /* the writer's layout, so no byte is unaccounted for: each chunk
             * at the next multiple of 64 after the one before (index order) */
            if (t->offset[k - 1] != *next)
                D2_ERROR(D2_EFORMAT, "%s: tensor \"%s\" level %d: chunk at offset %lld, expected %lld (chunks follow one another "
                         "in index order, each at the next multiple of %d)", f->path, t->name, k, (long long)t->offset[k - 1],
                         (long long)*next, MWQFILE_ALIGN);
            *next = align_up(t->offset[k - 1] + t->bytes[k - 1]);
        }
        pos += (int64_t)t->levels * ENTRY_LEVEL;
    }
    if (pos != len)
        D2_ERROR(D2_EFORMAT, "%s: header: tensor count %u (offset 12), but %lld of the index's %lld bytes are left after that many entries",
                 f->path, nt, (long long)(len - pos), (long long)len);
    return D2_OK;
}

int mwqfile_open(const char *path, mwqfile **out)
{
    *out = NULL;
    mwqfile *f = calloc(1, sizeof *f);
    if (!f) D2_ERROR(D2_ENOMEM, "out of memory");
    snprintf(f->path, sizeof f->path, "%s", path);
    f->fd = open(path, O_RDONLY | O_NONBLOCK); /* a FIFO: refused below, not waited on */
    if (f->fd < 0) { int e = errno; free(f); D2_ERROR(D2_ENOTFOUND, "%s: cannot open: %s", path, strerror(e)); }
    struct stat st;
    if (fstat(f->fd, &st) || !S_ISREG(st.st_mode)) { mwqfile_close(f); D2_ERROR(D2_EINVAL, "%s: not a regular file", path); }
    f->size = st.st_size;
    uint8_t h[MWQFILE_HEADER_BYTES];
    uint8_t *ix = NULL;
    int rc = rd(f, h, sizeof h, 0, "header");
    if (rc) goto fail;
    rc = D2_EFORMAT;
    if (memcmp(h, MWQFILE_MAGIC, 8)) { d2_err_set("%s: not a .mwq file (bad magic at offset 0)", path); goto fail; }
    if (get64(h + 48) != hash64(h, 48)) { d2_err_set("%s: header checksum mismatch (offset 48)", path); goto fail; }
    if (get32(h + 8) != MWQFILE_VERSION) { d2_err_set("%s: format version %u, this build reads %d", path, get32(h + 8), MWQFILE_VERSION); goto fail; }
    /* not under the header checksum: a reserved field must be 0 to mean nothing */
    if (get64(h + 56)) { d2_err_set("%s: header: reserved bytes 56..63 are not zero", path); goto fail; }
    uint32_t nt = get32(h + 12);
    /* u64 fields, compared and printed unsigned: a damaged one never shows negative */
    const uint64_t ioff_u = get64(h + 16), ilen_u = get64(h + 24), fbytes_u = get64(h + 40);
    if (fbytes_u != (uint64_t)f->size) {
        d2_err_set("%s: header says %llu bytes, the file has %lld (truncated or appended to)", path, (unsigned long long)fbytes_u, (long long)f->size);
        goto fail;
    }
    if (nt > 1000000 || ilen_u > (1 << 30) || ilen_u > (uint64_t)f->size || ioff_u < MWQFILE_HEADER_BYTES ||
        ioff_u > (uint64_t)f->size - ilen_u) {
        d2_err_set("%s: header: index at offset %llu (%llu bytes, %u tensors) does not fit the %lld-byte file", path,
                   (unsigned long long)ioff_u, (unsigned long long)ilen_u, nt, (long long)f->size);
        goto fail;
    }
    const int64_t ioff = (int64_t)ioff_u, ilen = (int64_t)ilen_u;
    ix = malloc((size_t)ilen + 1);
    f->t = calloc(nt ? nt : 1, sizeof *f->t);
    if (!ix || !f->t) { rc = D2_ENOMEM; d2_err_set("out of memory"); goto fail; }
    if ((rc = rd(f, ix, ilen, ioff, "index"))) goto fail;
    rc = D2_EFORMAT;
    if (hash64(ix, (size_t)ilen) != get64(h + 32)) { d2_err_set("%s: index checksum mismatch (index at offset %lld)", path, (long long)ioff); goto fail; }
    f->n = nt;
    int64_t next = MWQFILE_HEADER_BYTES;
    if ((rc = parse_index(f, ix, ilen, nt, ioff, &next))) goto fail;
    rc = D2_EFORMAT;
    if (ioff != next || ioff + ilen != f->size) {
        d2_err_set("%s: header: index at offset %lld (%lld bytes), expected at %lld and ending the %lld-byte file", path,
                   (long long)ioff, (long long)ilen, (long long)next, (long long)f->size);
        goto fail;
    }
    free(ix);
    *out = f;
    return D2_OK;
fail:
    free(ix);
    mwqfile_close(f);
    return rc;
}

void mwqfile_close(mwqfile *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    free(f->t);
    free(f);
}

const char *mwqfile_path(const mwqfile *f) { return f->path; }
int mwqfile_fd(const mwqfile *f) { return f->fd; }
size_t mwqfile_count(const mwqfile *f) { return f->n; }
const mwqfile_tensor *mwqfile_tensor_get(const mwqfile *f, size_t i) { return i < f->n ? &f->t[i] : NULL; }
int64_t mwqfile_bytes_read(const mwqfile *f) { return f->nread; }

int mwqfile_find(const mwqfile *f, const char *name, size_t *i)
{
    for (size_t k = 0; k < f->n; k++)
        if (!strcmp(f->t[k].name, name)) { *i = k; return D2_OK; }
    D2_ERROR(D2_ENOTFOUND, "%s: no tensor named \"%s\"", f->path, name);
}

int mwqfile_chunk_read(mwqfile *f, size_t i, int level, void *buf, int64_t cap)
{
    if (i >= f->n) D2_ERROR(D2_EINVAL, "%s: tensor %zu of %zu", f->path, i, f->n);
    const mwqfile_tensor *t = &f->t[i];
    if (level < 1 || level > t->levels) D2_ERROR(D2_EINVAL, "%s: tensor \"%s\" has levels 1..%d, not %d", f->path, t->name, t->levels, level);
    if (cap < t->bytes[level - 1]) D2_ERROR(D2_EINVAL, "chunk of %lld bytes does not fit a %lld-byte buffer", (long long)t->bytes[level - 1], (long long)cap);
    char what[320];
    snprintf(what, sizeof what, "tensor \"%s\" level %d", t->name, level);
    D2_TRY(rd(f, buf, t->bytes[level - 1], t->offset[level - 1], what));
    if (hash64(buf, (size_t)t->bytes[level - 1]) != t->xxh3[level - 1])
        D2_ERROR(D2_EFORMAT, "%s: tensor \"%s\" level %d: checksum mismatch (chunk at offset %lld, %lld bytes)", f->path, t->name,
                 level, (long long)t->offset[level - 1], (long long)t->bytes[level - 1]);
    return D2_OK;
}

int mwqfile_verify(mwqfile *f)
{
    int64_t cap = 0;
    for (size_t i = 0; i < f->n; i++)
        for (int k = 1; k <= f->t[i].levels; k++)
            if (f->t[i].bytes[k - 1] > cap) cap = f->t[i].bytes[k - 1];
    uint8_t *buf = malloc((size_t)cap + 1);
    if (!buf) D2_ERROR(D2_ENOMEM, "out of memory");
    int rc = D2_OK;
    for (size_t i = 0; i < f->n && !rc; i++) {
        const mwqfile_tensor *t = &f->t[i];
        for (int k = 1; k <= t->levels && !rc; k++) {
            if ((rc = mwqfile_chunk_read(f, i, k, buf, cap))) break;
            /* open checked that the next chunk (or the index) starts at the next multiple of 64 */
            const int64_t end = t->offset[k - 1] + t->bytes[k - 1], npad = align_up(end) - end;
            uint8_t z[MWQFILE_ALIGN];
            if ((rc = rd(f, z, npad, end, "padding"))) break;
            for (int64_t j = 0; j < npad; j++)
                if (z[j]) {
                    rc = D2_EFORMAT;
                    d2_err_set("%s: tensor \"%s\" level %d: padding byte at offset %lld after the chunk is not zero", f->path, t->name,
                               k, (long long)(end + j));
                    break;
                }
        }
    }
    free(buf);
    return rc;
}

int mwqfile_load(mwqfile *f, size_t i, int k, mwq_matrix **out)
{
    *out = NULL;
    if (i >= f->n) D2_ERROR(D2_EINVAL, "%s: tensor %zu of %zu", f->path, i, f->n);
    const mwqfile_tensor *t = &f->t[i];
    if (k < 1 || k > t->levels) D2_ERROR(D2_ERANGE, "%s: tensor \"%s\" has levels 1..%d, not %d", f->path, t->name, t->levels, k);
    if (t->kq) D2_ERROR(D2_EINVAL, "%s: tensor \"%s\" is in the k-quant layout (mwqfile_load_kq)", f->path, t->name);
    mwq_matrix *m;
    D2_TRY(mwq_matrix_new(&t->shape, k, &m));
    for (int l = 1; l <= k; l++) {
        int rc = mwqfile_chunk_read(f, i, l, m->chunk[l - 1], m->chunk_bytes[l - 1]);
        if (rc) { mwq_matrix_free(m); return rc; }
    }
    *out = m;
    return D2_OK;
}

int mwqfile_load_kq(mwqfile *f, size_t i, int k, kq_matrix **out)
{
    *out = NULL;
    if (i >= f->n) D2_ERROR(D2_EINVAL, "%s: tensor %zu of %zu", f->path, i, f->n);
    const mwqfile_tensor *t = &f->t[i];
    if (!t->kq) D2_ERROR(D2_EINVAL, "%s: tensor \"%s\" is not in the k-quant layout (mwqfile_load)", f->path, t->name);
    if (k < 1 || k > t->levels) D2_ERROR(D2_ERANGE, "%s: tensor \"%s\" has levels 1..%d, not %d", f->path, t->name, t->levels, k);
    kq_format fk = t->kqf;
    fk.levels = k;
    kq_matrix *m;
    D2_TRY(kq_matrix_new(&fk, t->shape.rows, t->shape.cols, &m));
    for (int l = 1; l <= k; l++) {
        int rc = mwqfile_chunk_read(f, i, l, m->chunk[l - 1], m->chunk_bytes[l - 1]);
        if (rc) { kq_matrix_free(m); return rc; }
    }
    *out = m;
    return D2_OK;
}

/* ---- writer ---------------------------------------------------------------- */
struct mwqfile_writer {
    char path[FILEIO_PATH_MAX], tmp[FILEIO_PATH_MAX + 8];
    FILE *fp;
    fileio_out *out; /* the temporary "<path>.tmp" (core/fileio.h) */
    int64_t pos;
    uint8_t *ix;
    size_t ixlen, ixcap;
    uint32_t n;
};

static int wr(mwqfile_writer *w, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, w->fp) != n) D2_ERROR(D2_EIO, "%s: write failed: %s", w->tmp, strerror(errno));
    w->pos += (int64_t)n;
    return D2_OK;
}

static int ix_put(mwqfile_writer *w, const void *p, size_t n)
{
    D2_TRY(VEC_RESERVE(w->ix, w->ixcap, w->ixlen + n));
    memcpy(w->ix + w->ixlen, p, n);
    w->ixlen += n;
    return D2_OK;
}

static int pad(mwqfile_writer *w)
{
    static const uint8_t z[MWQFILE_ALIGN];
    size_t n = (size_t)((MWQFILE_ALIGN - w->pos % MWQFILE_ALIGN) % MWQFILE_ALIGN);
    return wr(w, z, n);
}

int mwqfile_writer_new(const char *path, mwqfile_writer **out)
{
    *out = NULL;
    mwqfile_writer *w = calloc(1, sizeof *w);
    if (!w) D2_ERROR(D2_ENOMEM, "out of memory");
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp", path);
    int orc = fileio_out_open(path, &w->out, &w->fp);
    if (orc) { free(w); return orc; }
    uint8_t h[MWQFILE_HEADER_BYTES] = {0};
    int rc = wr(w, h, sizeof h); /* placeholder, rewritten by finish */
    if (rc) { mwqfile_writer_abort(w); return rc; }
    *out = w;
    return D2_OK;
}

/* A name the reader takes: 1..255 bytes, no control character */
static int name_check(const char *name)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl > 255) D2_ERROR(D2_EINVAL, "tensor name \"%s\": 1..255 bytes", name);
    if (text_ctl_span(name, nl) < nl) D2_ERROR(D2_EINVAL, "tensor name \"%s\": a control character", name);
    return D2_OK;
}

/* One index entry and its level chunks: the name, the 28-byte head
 * (base bits, levels, mode, kind, rows, cols, group word) and, per level,
 * its chunk padded to its boundary with (offset, bytes, hash) in the index.
 * kind: 0 = MWQ group layout, 1 = k-quant (the group word says which). */
static int add_entry(mwqfile_writer *w, const char *name, int base_bits, int levels, mwqfile_mode mode, int kind,
                     int64_t rows, int64_t cols, uint64_t group_word, uint8_t *const *chunk, const int64_t *chunk_bytes)
{
    size_t nl = strlen(name);
    D2_TRY(name_check(name));
    uint8_t e[ENTRY_FIXED + 255];
    e[0] = (uint8_t)nl;
    e[1] = 0;
    memcpy(e + 2, name, nl);
    uint8_t *p = e + 2 + nl;
    p[0] = (uint8_t)base_bits;
    p[1] = (uint8_t)levels;
    p[2] = (uint8_t)mode;
    p[3] = (uint8_t)kind;
    put64(p + 4, (uint64_t)rows);
    put64(p + 12, (uint64_t)cols);
    put64(p + 20, group_word);
    D2_TRY(ix_put(w, e, ENTRY_FIXED + nl));
    for (int k = 1; k <= levels; k++) {
        D2_TRY(pad(w));
        uint8_t q[ENTRY_LEVEL];
        put64(q, (uint64_t)w->pos);
        put64(q + 8, (uint64_t)chunk_bytes[k - 1]);
        put64(q + 16, hash64(chunk[k - 1], (size_t)chunk_bytes[k - 1]));
        D2_TRY(wr(w, chunk[k - 1], (size_t)chunk_bytes[k - 1]));
        D2_TRY(ix_put(w, q, sizeof q));
    }
    w->n++;
    return D2_OK;
}

int mwqfile_writer_add(mwqfile_writer *w, const char *name, const mwq_matrix *m, mwqfile_mode mode)
{
    return add_entry(w, name, (int)m->shape.base_bits, m->levels, mode, 0, m->shape.rows, m->shape.cols,
                     (uint64_t)m->shape.group, m->chunk, m->chunk_bytes);
}

int mwqfile_writer_add_kq(mwqfile_writer *w, const char *name, const kq_matrix *m)
{
    return add_entry(w, name, m->fmt.base_bits, m->fmt.levels, MWQFILE_RTN, 1, m->rows, m->cols,
                     (uint64_t)KQ_SUPER | (uint64_t)m->fmt.scale_bits << 32 | (uint64_t)m->fmt.min_bits << 40 |
                         (uint64_t)m->fmt.resid << 48 | (uint64_t)m->fmt.min_rel << 52,
                     m->chunk, m->chunk_bytes);
}

int mwqfile_writer_finish(mwqfile_writer *w)
{
    int rc = pad(w);
    int64_t ioff = w->pos;
    if (!rc) rc = wr(w, w->ix, w->ixlen);
    if (!rc) {
        uint8_t h[MWQFILE_HEADER_BYTES] = {0};
        memcpy(h, MWQFILE_MAGIC, 8);
        put32(h + 8, MWQFILE_VERSION);
        put32(h + 12, w->n);
        put64(h + 16, (uint64_t)ioff);
        put64(h + 24, (uint64_t)w->ixlen);
        put64(h + 32, hash64(w->ix, w->ixlen));
        put64(h + 40, (uint64_t)w->pos);
        put64(h + 48, hash64(h, 48));
        if (fseek(w->fp, 0, SEEK_SET) || fwrite(h, 1, sizeof h, w->fp) != sizeof h) {
            d2_err_set("%s: write failed: %s", w->tmp, strerror(errno));
            rc = D2_EIO;
        }
    }
    if (rc) { mwqfile_writer_abort(w); return rc; }
    rc = fileio_out_commit(w->out);
    w->out = NULL;
    w->fp = NULL;
    if (rc) { mwqfile_writer_abort(w); return rc; }
    free(w->ix);
    free(w);
    return D2_OK;
}

void mwqfile_writer_abort(mwqfile_writer *w)
{
    if (!w) return;
    fileio_out_abort(w->out);
    free(w->ix);
    free(w);
}
