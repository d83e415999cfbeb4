/* trace.c - .d2t writer, file/chunk access and the streaming reader.  All
 * integers are encoded little-endian byte by byte, so files are portable.
 * It checks everything it reads; it never prints. */
#include "trace/trace.h"
#include "trace/trace_int.h"
#include "core/err.h"
#include "core/vec.h"
#include "core/fileio.h"
#include "core/hash.h"
#include "core/prefault.h"
#include "core/text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRACE_DEFAULT_CHUNK 1024 /* records per chunk when the writer is not told */
#define TRACE_CHUNK_MAX (1u << 20)

static const char magic_file[8] = {'D', '2', 'T', 'R', 'A', 'C', 'E', 0};
static const char magic_chunk[4] = {'D', '2', 'T', 'C'};
static const char magic_index[4] = {'D', '2', 'T', 'I'};

static void put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }
static void putf(unsigned char *p, float f) { uint32_t u; memcpy(&u, &f, 4); put32(p, u); }
static float getf(const unsigned char *p) { uint32_t u = get32(p); float f; memcpy(&f, &u, 4); return f; }

uint32_t trace_record_bytes(uint32_t top_k, int has_bits)
{
    return 12 + top_k * 6 + (has_bits ? top_k : 0);
}

static void rec_encode(const trace_rec *r, uint32_t k, int has_bits, unsigned char *p)
{
    put32(p, r->req);
    put32(p + 4, r->pos);
    put16(p + 8, r->layer);
    p[10] = r->phase;
    p[11] = 0;
    unsigned char *q = p + 12;
    for (uint32_t j = 0; j < k; j++, q += 2) put16(q, r->experts[j]);
    for (uint32_t j = 0; j < k; j++, q += 4) putf(q, r->weights[j]);
    if (has_bits)
        for (uint32_t j = 0; j < k; j++) *q++ = r->bits[j];
}

static void rec_decode(const unsigned char *p, uint32_t k, int has_bits, trace_rec *r)
{
    r->req = get32(p);
    r->pos = get32(p + 4);
    r->layer = get16(p + 8);
    r->phase = p[10];
    const unsigned char *q = p + 12;
    for (uint32_t j = 0; j < k; j++, q += 2) r->experts[j] = get16(q);
    for (uint32_t j = 0; j < k; j++, q += 4) r->weights[j] = getf(q);
    for (uint32_t j = 0; j < k; j++) r->bits[j] = has_bits ? *q++ : 0;
}

int trace_rec_check(const trace_rec *r, uint32_t layers, uint32_t experts, uint32_t top_k, const char *where)
{
    if (r->layer >= layers) D2_ERROR(D2_EFORMAT, "%s: field \"layer\": %u out of range 0..%u", where, r->layer, layers - 1);
    const trace_rule_at b = trace_rule_first(r->phase, r->experts, r->weights, top_k, experts); /* the rules: trace_int.h */
    const uint32_t j = b.at;
    switch (b.rule) {
    case TRACE_RULE_OK: break;
    case TRACE_RULE_PHASE: D2_ERROR(D2_EFORMAT, "%s: field \"phase\": %u is not 0, 1 or 2", where, r->phase);
    case TRACE_RULE_EXPERT_RANGE:
        D2_ERROR(D2_EFORMAT, "%s: field \"experts\"[%u]: id %u out of range 0..%u", where, j, r->experts[j], experts - 1);
    case TRACE_RULE_EXPERT_TWICE: D2_ERROR(D2_EFORMAT, "%s: field \"experts\": id %u appears twice", where, r->experts[j]);
    case TRACE_RULE_WEIGHT:
        D2_ERROR(D2_EFORMAT, "%s: field \"weights\"[%u]: %g is not a finite weight >= 0", where, j, (double)r->weights[j]);
    case TRACE_RULE_WEIGHT_ORDER: D2_ERROR(D2_EFORMAT, "%s: field \"weights\": not in descending order at [%u]", where, j);
    }
    return D2_OK;
}

static void header_encode(const trace_header *h, uint32_t rb, uint64_t index_off, unsigned char *p)
{
    memset(p, 0, TRACE_HEADER_BYTES);
    memcpy(p, magic_file, 8);
    put16(p + 8, TRACE_VERSION);
    put16(p + 10, TRACE_HEADER_BYTES);
    put32(p + 12, h->has_bits ? 1u : 0u);
    put32(p + 16, h->layers);
    put32(p + 20, h->experts);
    put32(p + 24, h->top_k);
    put32(p + 28, h->chunk_records);
    put64(p + 32, h->records);
    put64(p + 40, h->tokens);
    put32(p + 48, h->requests);
    put32(p + 52, rb);
    put64(p + 56, index_off);
    memcpy(p + 64, h->model, strnlen(h->model, TRACE_MODEL_NAME_MAX - 1));
    put64(p + 120, hash64(p, 120));
}

/* ------------------------------------------------------------------ writer */

struct trace_writer {
    FILE *f;                /* the temporary of `out` */
    fileio_out *out;        /* "<path>.tmp", renamed to path on success (core/fileio.h) */
    char *path;             /* the file written on close */
    trace_header h;
    uint32_t rb;            /* bytes per record */
    unsigned char *chunk;   /* chunk_records * rb bytes */
    uint32_t in_chunk;      /* records buffered */
    trace_req_info *idx;    /* one per request so far */
    size_t idx_cap;
    int have_last;
    trace_rec last;
    int failed;
};

int trace_writer_new(const char *path, const trace_header *h, trace_writer **out)
{
    *out = NULL;
    if (h->layers < 1 || h->layers > 65535) D2_ERROR(D2_EINVAL, "%s: layers %u out of range 1..65535", path, h->layers);
    if (h->experts < 1 || h->experts > 65535) D2_ERROR(D2_EINVAL, "%s: experts %u out of range 1..65535", path, h->experts);
    if ((uint64_t)h->layers * h->experts > TRACE_CELLS_MAX)
        D2_ERROR(D2_EINVAL, "%s: %u layers x %u experts: more than %u (layers x experts) cells, the largest a model profile allows",
                 path, h->layers, h->experts, TRACE_CELLS_MAX);
    if (h->top_k < 1 || h->top_k > TRACE_K_MAX || h->top_k > h->experts)
        D2_ERROR(D2_EINVAL, "%s: top_k %u out of range 1..min(%d, experts)", path, h->top_k, TRACE_K_MAX);
    trace_writer *w = calloc(1, sizeof *w);
    if (!w) D2_ERROR(D2_ENOMEM, "out of memory");
    w->h = *h;
    w->h.model[TRACE_MODEL_NAME_MAX - 1] = 0;
    if (!w->h.chunk_records) w->h.chunk_records = TRACE_DEFAULT_CHUNK;
    if (w->h.chunk_records > TRACE_CHUNK_MAX) w->h.chunk_records = TRACE_CHUNK_MAX;
    w->h.records = w->h.tokens = 0;
    w->h.requests = 0;
    w->rb = trace_record_bytes(h->top_k, h->has_bits);
    w->chunk = malloc((size_t)w->h.chunk_records * w->rb);
    w->path = strdup(path);
    if (!w->chunk || !w->path) { trace_writer_abort(w); D2_ERROR(D2_ENOMEM, "out of memory"); }
    /* a temporary beside the output, renamed over it only when complete: a
     * failure or a kill never leaves a half-written trace under path, and a
     * FIFO, device or symlink at path is refused (core/fileio.h) */
    int rc = fileio_out_open(path, &w->out, &w->f);
    if (rc) { trace_writer_abort(w); return rc; }
    unsigned char zero[TRACE_HEADER_BYTES] = {0};
    if (fwrite(zero, 1, sizeof zero, w->f) != sizeof zero) {
        trace_writer_abort(w);
        D2_ERROR(D2_EIO, "%s: write error", path);
    }
    *out = w;
    return D2_OK;
}

static int writer_flush_chunk(trace_writer *w)
{
    if (!w->in_chunk) return D2_OK;
    unsigned char head[TRACE_CHUNK_HEAD_BYTES];
    size_t n = (size_t)w->in_chunk * w->rb;
    memcpy(head, magic_chunk, 4);
    put32(head + 4, w->in_chunk);
    put64(head + 8, hash64(w->chunk, n));
    if (fwrite(head, 1, sizeof head, w->f) != sizeof head || fwrite(w->chunk, 1, n, w->f) != n)
        D2_ERROR(D2_EIO, "%s: write error: %s", w->path, strerror(errno));
    w->in_chunk = 0;
    return D2_OK;
}

static int writer_put(trace_writer *w, const trace_rec *r)
{
    char where[64];
    snprintf(where, sizeof where, "record %llu", (unsigned long long)w->h.records);
    D2_TRY(trace_rec_check(r, w->h.layers, w->h.experts, w->h.top_k, where));
    const trace_rec *l = w->have_last ? &w->last : NULL;
    int new_req = !l || r->req != l->req;
    int new_pos = new_req || r->pos != l->pos;
    if (new_req) {
        if (r->req != (l ? l->req + 1 : 0))
            D2_ERROR(D2_EINVAL, "%s: request %u follows %d: requests must be numbered 0,1,2,... in order", where, r->req,
                     l ? (int)l->req : -1);
        if (r->pos != 0) D2_ERROR(D2_EINVAL, "%s: request %u starts at position %u, not 0", where, r->req, r->pos);
        D2_TRY(VEC_RESERVE(w->idx, w->idx_cap, (size_t)w->h.requests + 1));
        trace_req_info *e = &w->idx[w->h.requests++];
        e->first = w->h.records;
        e->records = e->positions = e->prefill = 0;
    } else if (new_pos) {
        if (r->pos != l->pos + 1)
            D2_ERROR(D2_EINVAL, "%s: position %u follows %u in request %u: positions must have no gaps", where, r->pos,
                     l->pos, r->req);
    } else if (r->layer <= l->layer) {
        D2_ERROR(D2_EINVAL, "%s: layer %u after layer %u at request %u position %u: not increasing", where, r->layer,
                 l->layer, r->req, r->pos);
    } else if (r->phase != l->phase) {
        D2_ERROR(D2_EINVAL, "%s: phase changes within request %u position %u", where, r->req, r->pos);
    }
    trace_req_info *e = &w->idx[w->h.requests - 1];
    e->records++;
    if (new_pos) {
        e->positions++;
        w->h.tokens++;
        if (r->phase == TRACE_PREFILL) e->prefill++;
    }
    rec_encode(r, w->h.top_k, w->h.has_bits, w->chunk + (size_t)w->in_chunk * w->rb);
    w->h.records++;
    if (++w->in_chunk == w->h.chunk_records) D2_TRY(writer_flush_chunk(w));
    w->last = *r;
    w->have_last = 1;
    return D2_OK;
}

int trace_writer_put(trace_writer *w, const trace_rec *r)
{
    if (w->failed) D2_ERROR(D2_EINVAL, "%s: writer already failed", w->path);
    int rc = writer_put(w, r);
    if (rc) w->failed = 1;
    return rc;
}

static int writer_finish(trace_writer *w)
{
    D2_TRY(writer_flush_chunk(w));
    long off = ftell(w->f);
    if (off < 0) D2_ERROR(D2_EIO, "%s: ftell: %s", w->path, strerror(errno));
    size_t n = (size_t)w->h.requests * TRACE_INDEX_ENTRY_BYTES;
    unsigned char *buf = calloc(1, n + 16);
    if (!buf) D2_ERROR(D2_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < w->h.requests; i++) {
        unsigned char *p = buf + 16 + (size_t)i * TRACE_INDEX_ENTRY_BYTES;
        put64(p, w->idx[i].first);
        put32(p + 8, w->idx[i].records);
        put32(p + 12, w->idx[i].positions);
        put32(p + 16, w->idx[i].prefill);
    }
    memcpy(buf, magic_index, 4);
    put32(buf + 4, w->h.requests);
    put64(buf + 8, hash64(buf + 16, n));
    size_t wr = fwrite(buf, 1, n + 16, w->f);
    free(buf);
    if (wr != n + 16) D2_ERROR(D2_EIO, "%s: write error: %s", w->path, strerror(errno));
    unsigned char head[TRACE_HEADER_BYTES];
    header_encode(&w->h, w->rb, (uint64_t)off, head);
    if (fseek(w->f, 0, SEEK_SET) || fwrite(head, 1, sizeof head, w->f) != sizeof head)
        D2_ERROR(D2_EIO, "%s: write error: %s", w->path, strerror(errno));
    return D2_OK;
}

int trace_writer_close(trace_writer *w)
{
    int rc = w->failed ? D2_EINVAL : D2_OK;
    if (rc) d2_err_set("%s: not written: an earlier record was refused", w->path);
    if (!rc && w->h.records == 0) { rc = D2_EINVAL; d2_err_set("%s: no records to write", w->path); }
    if (!rc) rc = writer_finish(w);
    if (rc) fileio_out_abort(w->out);
    else rc = fileio_out_commit(w->out);
    free(w->chunk); free(w->idx); free(w->path); free(w);
    return rc;
}

void trace_writer_abort(trace_writer *w)
{
    if (!w) return;
    fileio_out_abort(w->out);
    free(w->chunk); free(w->idx); free(w->path); free(w);
}

/* -------------------------------------------------------------------- file */

struct trace_file {
    int fd;
    char *path;
    trace_header h;
    uint32_t rb;
    uint64_t data_off;  /* first chunk */
    uint64_t index_off;
    trace_req_info *idx;
};

struct trace_chunk_cache {
    uint64_t chunk;     /* chunk number held, UINT64_MAX = none */
    uint32_t n;         /* records in it */
    unsigned char *buf; /* head + chunk_records * rb */
};

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r < 0 ? -1 : 0;
        got += (size_t)r;
    }
    return 1;
}

static int file_check_header(trace_file *f, const unsigned char *p, uint64_t size)
{
    const char *path = f->path;
    if (memcmp(p, magic_file, 8)) D2_ERROR(D2_EFORMAT, "%s: not a .d2t trace (bad magic)", path);
    if (get64(p + 120) != hash64(p, 120)) D2_ERROR(D2_EFORMAT, "%s: header checksum mismatch: the file is damaged", path);
    if (get16(p + 8) != TRACE_VERSION) D2_ERROR(D2_EFORMAT, "%s: format version %u, this d2moe reads %d", path, get16(p + 8), TRACE_VERSION);
    if (get16(p + 10) != TRACE_HEADER_BYTES) D2_ERROR(D2_EFORMAT, "%s: header size %u, expected %d", path, get16(p + 10), TRACE_HEADER_BYTES);
    uint32_t flags = get32(p + 12);
    if (flags & ~1u) D2_ERROR(D2_EFORMAT, "%s: unknown header flags 0x%x", path, flags);
    trace_header *h = &f->h;
    h->has_bits = (int)(flags & 1u);
    h->layers = get32(p + 16);
    h->experts = get32(p + 20);
    h->top_k = get32(p + 24);
    h->chunk_records = get32(p + 28);
    h->records = get64(p + 32);
    h->tokens = get64(p + 40);
    h->requests = get32(p + 48);
    f->rb = get32(p + 52);
    f->index_off = get64(p + 56);
    memcpy(h->model, p + 64, TRACE_MODEL_NAME_MAX);
    h->model[TRACE_MODEL_NAME_MAX - 1] = 0;
    /* the model's name (printed as it is: no control characters), then zeros up to byte 119 (reserved) */
    size_t ml = strlen(h->model), mc = text_ctl_span(h->model, ml);
    if (mc < ml) D2_ERROR(D2_EFORMAT, "%s: header field \"model\": a control character (byte %zu)", path, 64 + mc);
    for (size_t k = 64 + ml; k < 120; k++)
        if (p[k]) D2_ERROR(D2_EFORMAT, "%s: header byte %zu is %u: the bytes after the model's name up to 119 are reserved, 0", path, k, p[k]);
    if (h->layers < 1 || h->layers > 65535) D2_ERROR(D2_EFORMAT, "%s: header field \"layers\": %u out of range", path, h->layers);
    if (h->experts < 1 || h->experts > 65535) D2_ERROR(D2_EFORMAT, "%s: header field \"experts\": %u out of range", path, h->experts);
    if ((uint64_t)h->layers * h->experts > TRACE_CELLS_MAX)
        D2_ERROR(D2_EFORMAT, "%s: header fields \"layers\" x \"experts\": %u x %u is more than %u cells, the largest a model profile allows",
                 path, h->layers, h->experts, TRACE_CELLS_MAX);
    if (h->top_k < 1 || h->top_k > TRACE_K_MAX || h->top_k > h->experts)
        D2_ERROR(D2_EFORMAT, "%s: header field \"top_k\": %u out of range", path, h->top_k);
    if (h->chunk_records < 1 || h->chunk_records > TRACE_CHUNK_MAX)
        D2_ERROR(D2_EFORMAT, "%s: header field \"chunk_records\": %u out of range", path, h->chunk_records);
    if (f->rb != trace_record_bytes(h->top_k, h->has_bits))
        D2_ERROR(D2_EFORMAT, "%s: header field \"record_bytes\": %u does not match top_k %u", path, f->rb, h->top_k);
    if (h->records < 1 || h->records > ((uint64_t)1 << 40)) D2_ERROR(D2_EFORMAT, "%s: header field \"records\": %llu out of range", path, (unsigned long long)h->records);
    if (h->requests < 1 || h->tokens < h->requests || h->tokens > h->records)
        D2_ERROR(D2_EFORMAT, "%s: header counts inconsistent (records %llu, tokens %llu, requests %u)", path,
                 (unsigned long long)h->records, (unsigned long long)h->tokens, h->requests);
    uint64_t chunks = (h->records + h->chunk_records - 1) / h->chunk_records;
    uint64_t want_idx = TRACE_HEADER_BYTES + chunks * TRACE_CHUNK_HEAD_BYTES + h->records * f->rb;
    if (f->index_off != want_idx) D2_ERROR(D2_EFORMAT, "%s: header field \"index_offset\": %llu, expected %llu", path,
                                           (unsigned long long)f->index_off, (unsigned long long)want_idx);
    uint64_t want = want_idx + 16 + (uint64_t)h->requests * TRACE_INDEX_ENTRY_BYTES;
    if (size < want) D2_ERROR(D2_EFORMAT, "%s: truncated: %llu bytes, the header says %llu", path, (unsigned long long)size, (unsigned long long)want);
    if (size > want) D2_ERROR(D2_EFORMAT, "%s: %llu trailing bytes after the index", path, (unsigned long long)(size - want));
    f->data_off = TRACE_HEADER_BYTES;
    return D2_OK;
}

static int file_read_index(trace_file *f)
{
    const trace_header *h = &f->h;
    size_t n = (size_t)h->requests * TRACE_INDEX_ENTRY_BYTES;
    unsigned char *buf = malloc(n + 16);
    f->idx = calloc(h->requests, sizeof *f->idx);
    if (!buf || !f->idx) { free(buf); D2_ERROR(D2_ENOMEM, "out of memory"); }
    int rc = D2_OK;
    if (pread_all(f->fd, buf, n + 16, f->index_off) != 1) { rc = D2_EIO; d2_err_set("%s: cannot read the index", f->path); goto out; }
    if (memcmp(buf, magic_index, 4) || get32(buf + 4) != h->requests) {
        rc = D2_EFORMAT; d2_err_set("%s: byte %llu: request index header damaged", f->path, (unsigned long long)f->index_off); goto out;
    }
    if (get64(buf + 8) != hash64(buf + 16, n)) {
        rc = D2_EFORMAT; d2_err_set("%s: byte %llu: request index checksum mismatch: the file is damaged", f->path, (unsigned long long)f->index_off); goto out;
    }
    uint64_t next = 0, tokens = 0;
    for (uint32_t i = 0; i < h->requests; i++) {
        const unsigned char *p = buf + 16 + (size_t)i * TRACE_INDEX_ENTRY_BYTES;
        trace_req_info *e = &f->idx[i];
        e->first = get64(p);
        e->records = get32(p + 8);
        e->positions = get32(p + 12);
        e->prefill = get32(p + 16);
        if (get32(p + 20)) { rc = D2_EFORMAT; d2_err_set("%s: request index entry %u: bytes 20..23 are reserved, 0", f->path, i); goto out; }
        if (e->first != next || e->positions < 1 || e->records < e->positions ||
            (uint64_t)e->records > (uint64_t)e->positions * h->layers || e->prefill > e->positions) {
            rc = D2_EFORMAT; d2_err_set("%s: request index entry %u inconsistent", f->path, i); goto out;
        }
        next += e->records;
        tokens += e->positions;
    }
    if (next != h->records || tokens != h->tokens) {
        rc = D2_EFORMAT; d2_err_set("%s: request index totals (%llu records, %llu tokens) differ from the header", f->path,
                                    (unsigned long long)next, (unsigned long long)tokens);
    }
out:
    free(buf);
    return rc;
}

int trace_file_open(const char *path, trace_file **out)
{
    *out = NULL;
    trace_file *f = calloc(1, sizeof *f);
    if (!f) D2_ERROR(D2_ENOMEM, "out of memory");
    f->fd = -1;
    f->path = strdup(path);
    if (!f->path) { free(f); D2_ERROR(D2_ENOMEM, "out of memory"); }
    int rc = D2_OK;
    f->fd = open(path, O_RDONLY | O_NONBLOCK); /* a FIFO: refused below, not waited on */
    struct stat st;
    unsigned char head[TRACE_HEADER_BYTES];
    if (f->fd < 0) { rc = D2_ENOTFOUND; d2_err_set("%s: cannot open: %s", path, strerror(errno)); goto fail; }
    if (fstat(f->fd, &st) || !S_ISREG(st.st_mode)) { rc = D2_EFORMAT; d2_err_set("%s: not a regular file", path); goto fail; }
    fileio_note_input_fd(f->fd, path); /* no output of this command may be written over it */
    if (st.st_size == 0) { rc = D2_EFORMAT; d2_err_set("%s: empty file, not a .d2t trace", path); goto fail; }
    if ((uint64_t)st.st_size < TRACE_HEADER_BYTES) {
        int r = pread_all(f->fd, head, (size_t)st.st_size, 0);
        rc = D2_EFORMAT;
        if (r == 1 && (size_t)st.st_size >= 8 && !memcmp(head, magic_file, 8))
            d2_err_set("%s: truncated: %lld bytes, shorter than the header", path, (long long)st.st_size);
        else
            d2_err_set("%s: not a .d2t trace (too short, bad magic)", path);
        goto fail;
    }
    if (pread_all(f->fd, head, sizeof head, 0) != 1) { rc = D2_EIO; d2_err_set("%s: read error", path); goto fail; }
    if ((rc = file_check_header(f, head, (uint64_t)st.st_size))) goto fail;
    if ((rc = file_read_index(f))) goto fail;
    *out = f;
    return D2_OK;
fail:
    trace_file_close(f);
    return rc;
}

const trace_header *trace_file_header(const trace_file *f) { return &f->h; }
const char *trace_file_path(const trace_file *f) { return f->path; }
const trace_req_info *trace_file_request(const trace_file *f, uint32_t req)
{
    return req < f->h.requests ? &f->idx[req] : NULL;
}

void trace_file_close(trace_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    free(f->idx);
    free(f->path);
    free(f);
}

int trace_chunk_cache_new(const trace_file *f, trace_chunk_cache **out)
{
    trace_chunk_cache *c = calloc(1, sizeof *c);
    if (c) c->buf = malloc(TRACE_CHUNK_HEAD_BYTES + (size_t)f->h.chunk_records * f->rb);
    if (!c || !c->buf) { free(c); *out = NULL; D2_ERROR(D2_ENOMEM, "out of memory"); }
    /* read into at once: faulted in in one call, not a page at a time
     * inside pread (core/prefault.h) */
    prefault(c->buf, TRACE_CHUNK_HEAD_BYTES + (size_t)f->h.chunk_records * f->rb);
    c->chunk = UINT64_MAX;
    *out = c;
    return D2_OK;
}

void trace_chunk_cache_free(trace_chunk_cache *c)
{
    if (!c) return;
    free(c->buf);
    free(c);
}

static int chunk_load(trace_file *f, trace_chunk_cache *c, uint64_t chunk)
{
    const trace_header *h = &f->h;
    uint64_t first = chunk * h->chunk_records;
    uint32_t n = (uint32_t)(h->records - first < h->chunk_records ? h->records - first : h->chunk_records);
    uint64_t off = f->data_off + chunk * (TRACE_CHUNK_HEAD_BYTES + (uint64_t)h->chunk_records * f->rb);
    size_t bytes = TRACE_CHUNK_HEAD_BYTES + (size_t)n * f->rb;
    c->chunk = UINT64_MAX;
    int r = pread_all(f->fd, c->buf, bytes, off);
    if (r != 1) D2_ERROR(r ? D2_EIO : D2_EFORMAT, "%s: byte %llu: chunk %llu: %s", f->path, (unsigned long long)off,
                         (unsigned long long)chunk, r ? strerror(errno) : "truncated");
    if (memcmp(c->buf, magic_chunk, 4) || get32(c->buf + 4) != n)
        D2_ERROR(D2_EFORMAT, "%s: byte %llu: chunk %llu header damaged", f->path, (unsigned long long)off, (unsigned long long)chunk);
    if (get64(c->buf + 8) != hash64(c->buf + TRACE_CHUNK_HEAD_BYTES, (size_t)n * f->rb))
        D2_ERROR(D2_EFORMAT, "%s: byte %llu: chunk %llu (records %llu..%llu): checksum mismatch: the file is damaged", f->path,
                 (unsigned long long)off, (unsigned long long)chunk, (unsigned long long)first,
                 (unsigned long long)(first + n - 1));
    c->chunk = chunk;
    c->n = n;
    return D2_OK;
}

int trace_file_record(trace_file *f, trace_chunk_cache *c, uint64_t i, trace_rec *r)
{
    if (i >= f->h.records) D2_ERROR(D2_EINVAL, "%s: record %llu beyond the end", f->path, (unsigned long long)i);
    uint64_t chunk = i / f->h.chunk_records;
    if (c->chunk != chunk) D2_TRY(chunk_load(f, c, chunk));
    const unsigned char *p = c->buf + TRACE_CHUNK_HEAD_BYTES + (size_t)(i - chunk * f->h.chunk_records) * f->rb;
    if (p[11]) D2_ERROR(D2_EFORMAT, "%s: record %llu: byte 11 is %u: reserved, 0", f->path, (unsigned long long)i, p[11]);
    rec_decode(p, f->h.top_k, f->h.has_bits, r);
    return D2_OK;
}

int trace_file_raw(trace_file *f, trace_chunk_cache *c, uint64_t i, const unsigned char **p, uint32_t *n)
{
    if (i >= f->h.records) D2_ERROR(D2_EINVAL, "%s: record %llu beyond the end", f->path, (unsigned long long)i);
    uint64_t chunk = i / f->h.chunk_records;
    if (c->chunk != chunk) D2_TRY(chunk_load(f, c, chunk));
    uint32_t at = (uint32_t)(i - chunk * f->h.chunk_records);
    *p = c->buf + TRACE_CHUNK_HEAD_BYTES + (size_t)at * f->rb;
    *n = c->n - at;
    return D2_OK;
}

/* ------------------------------------------------------------------ reader */

struct trace_reader {
    trace_file *f;
    trace_chunk_cache *c;
    uint64_t next;     /* next record number */
    trace_rec last;
    uint64_t tokens;
    uint32_t requests;
};

int trace_reader_open(const char *path, trace_reader **out)
{
    *out = NULL;
    trace_reader *r = calloc(1, sizeof *r);
    if (!r) D2_ERROR(D2_ENOMEM, "out of memory");
    int rc = trace_file_open(path, &r->f);
    if (!rc) rc = trace_chunk_cache_new(r->f, &r->c);
    if (rc) { trace_reader_close(r); return rc; }
    *out = r;
    return D2_OK;
}

const trace_header *trace_reader_header(const trace_reader *r) { return &r->f->h; }

int trace_reader_next(trace_reader *r, trace_rec *out)
{
    const trace_header *h = &r->f->h;
    if (r->next == h->records) {
        if (r->tokens != h->tokens || r->requests != h->requests)
            D2_ERROR(D2_EFORMAT, "%s: records hold %llu tokens in %u requests, the header says %llu in %u", r->f->path,
                     (unsigned long long)r->tokens, r->requests, (unsigned long long)h->tokens, h->requests);
        return 0;
    }
    D2_TRY(trace_file_record(r->f, r->c, r->next, out));
    char where[600];
    snprintf(where, sizeof where, "%s: record %llu", r->f->path, (unsigned long long)r->next);
    D2_TRY(trace_rec_check(out, h->layers, h->experts, h->top_k, where));
    const trace_rec *l = r->next ? &r->last : NULL;
    int ok;
    if (!l) ok = out->req == 0 && out->pos == 0;
    else if (out->req != l->req) ok = out->req == l->req + 1 && out->pos == 0;
    else if (out->pos != l->pos) ok = out->pos == l->pos + 1;
    else ok = out->layer > l->layer && out->phase == l->phase;
    if (!ok) D2_ERROR(D2_EFORMAT, "%s: out of (request, position, layer) order", where);
    if (!l || out->req != l->req) r->requests++;
    if (!l || out->req != l->req || out->pos != l->pos) r->tokens++;
    r->last = *out;
    r->next++;
    return 1;
}

void trace_reader_close(trace_reader *r)
{
    if (!r) return;
    trace_chunk_cache_free(r->c);
    trace_file_close(r->f);
    free(r);
}
