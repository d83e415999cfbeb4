/* trace.h - the router-trace record model and the .d2t file: a checksummed
 * header, fixed-size records in checksummed chunks, and a request index at
 * the end.  Streaming writer and reader whose memory does not grow with the
 * trace length.  It does not import foreign formats (import.h), compute
 * statistics (stat.h) or serve routing to the simulator (source.h).
 *
 * File layout (all integers little-endian; see traces/README.md):
 *   header   128 bytes: "D2TRACE\0", version, shape, counts, index offset,
 *            model name, XXH3-64 of bytes 0..119 at 120.
 *   chunks   each: "D2TC", u32 records, u64 XXH3-64 of the payload, then
 *            records x record_bytes.  Every chunk but the last holds exactly
 *            chunk_records records, so record i is at a computable offset.
 *   index    "D2TI", u32 requests, u64 XXH3-64 of the entries, then one
 *            24-byte entry per request: u64 first record, u32 records,
 *            u32 positions, u32 prefill positions, u32 reserved.
 *   record   u32 req, u32 pos, u16 layer, u8 phase, u8 reserved (0),
 *            k x u16 expert, k x f32 gate weight, [k x u8 bits].
 * Records are sorted by (req, pos, layer), strictly increasing; requests are
 * numbered 0..R-1 and positions 0..P-1 with no gaps. */
#ifndef D2_TRACE_TRACE_H
#define D2_TRACE_TRACE_H

#include <stdint.h>

#define TRACE_K_MAX 16            /* largest top-k a record can hold */
#define TRACE_CELLS_MAX (1024u * 4096u) /* largest layers x experts (the profiles' limits: 1024 layers, 4096 experts) */
#define TRACE_GEN_MAX_BYTES (16ull << 30) /* `trace gen` refuses outputs with more record bytes */
#define TRACE_VERSION 1           /* .d2t format version written */
#define TRACE_HEADER_BYTES 128    /* bytes */
#define TRACE_CHUNK_HEAD_BYTES 16 /* bytes */
#define TRACE_INDEX_ENTRY_BYTES 24
#define TRACE_MODEL_NAME_MAX 32   /* bytes including NUL */

typedef enum trace_phase {
    TRACE_PREFILL = 0,
    TRACE_DECODE = 1,
    TRACE_UNKNOWN = 2, /* the source did not say (e.g. a vLLM log) */
} trace_phase;

/* One routing decision: one token of one request at one MoE layer.
 * Invariant: experts[0..k-1] distinct, < shape.experts, weights finite,
 * >= 0 and non-increasing. */
typedef struct trace_rec {
    uint32_t req;                   /* request number, 0..requests-1 */
    uint32_t pos;                   /* token position in the request, 0-based */
    uint16_t layer;                 /* MoE layer, 0..layers-1 */
    uint8_t phase;                  /* trace_phase */
    uint16_t experts[TRACE_K_MAX];  /* expert ids, descending gate weight */
    float weights[TRACE_K_MAX];     /* gate weights (dimensionless) */
    uint8_t bits[TRACE_K_MAX];      /* recorded bit-widths, 0 = none */
} trace_rec;

typedef struct trace_header {
    uint32_t layers;        /* MoE layers */
    uint32_t experts;       /* routed experts per layer */
    uint32_t top_k;         /* experts per record, 1..TRACE_K_MAX */
    int has_bits;           /* records carry bit-widths */
    uint32_t chunk_records; /* records per full chunk */
    uint64_t records;       /* records in the file */
    uint64_t tokens;        /* distinct (req, pos) pairs */
    uint32_t requests;      /* requests in the index */
    char model[TRACE_MODEL_NAME_MAX]; /* model profile name, "" if unknown */
} trace_header;

typedef struct trace_req_info {
    uint64_t first;     /* index of the request's first record */
    uint32_t records;   /* records of the request */
    uint32_t positions; /* positions 0..positions-1 */
    uint32_t prefill;   /* positions whose phase is prefill */
} trace_req_info;

/* Bytes of one record for a shape. */
uint32_t trace_record_bytes(uint32_t top_k, int has_bits);
/* Check a record against a shape; `where` prefixes the message. */
int trace_rec_check(const trace_rec *r, uint32_t layers, uint32_t experts, uint32_t top_k, const char *where);

/* ---- writer ---- */
typedef struct trace_writer trace_writer;
/* Header fields used: layers, experts, top_k, has_bits, chunk_records (0 =
 * default 1024), model.  Counts are filled in on close.  Records go to
 * "<path>.tmp", renamed to path by a successful close: path never holds a
 * partial trace. */
int trace_writer_new(const char *path, const trace_header *h, trace_writer **out);
/* Append a record; order must be (req, pos, layer) strictly increasing with
 * requests and positions numbered without gaps. */
int trace_writer_put(trace_writer *w, const trace_rec *r);
/* Finish the file (index, counts, header checksum) and rename it to path;
 * frees w.  On error the partial file is removed and path is untouched. */
int trace_writer_close(trace_writer *w);
/* Abandon: remove the partial file, free w. */
void trace_writer_abort(trace_writer *w);

/* ---- file (shared by readers and the source) ---- */
typedef struct trace_file trace_file;
/* Open and check header, size and index (not yet the record chunks). */
int trace_file_open(const char *path, trace_file **out);
const trace_header *trace_file_header(const trace_file *f);
const trace_req_info *trace_file_request(const trace_file *f, uint32_t req);
const char *trace_file_path(const trace_file *f);
/* Read record i (decoded into r) through a one-chunk cache `cache` that the
 * caller owns (trace_chunk_cache_new); checks the chunk's checksum on load. */
typedef struct trace_chunk_cache trace_chunk_cache;
int trace_chunk_cache_new(const trace_file *f, trace_chunk_cache **out);
void trace_chunk_cache_free(trace_chunk_cache *c);
int trace_file_record(trace_file *f, trace_chunk_cache *c, uint64_t i, trace_rec *r);
/* The encoded bytes of record i and of the records after it in the same
 * chunk (loaded and checked like trace_file_record): *p points at record i,
 * *n >= 1 records of trace_record_bytes() each follow.  For readers that
 * decode many records in one pass (the routing source). */
int trace_file_raw(trace_file *f, trace_chunk_cache *c, uint64_t i, const unsigned char **p, uint32_t *n);
void trace_file_close(trace_file *f);

/* ---- streaming reader: every record in file order, every check ---- */
typedef struct trace_reader trace_reader;
int trace_reader_open(const char *path, trace_reader **out);
const trace_header *trace_reader_header(const trace_reader *r);
/* 1 = a record, 0 = end (after checking the totals), else an error status. */
int trace_reader_next(trace_reader *r, trace_rec *out);
void trace_reader_close(trace_reader *r);

#endif
