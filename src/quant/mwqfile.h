/* mwqfile.h - the .mwq container: header, tensor index, and one contiguous
 * chunk per (tensor, level) in kern.h's layout, each with an XXH3-64
 * checksum, so loading bit-width b_k reads exactly chunks 1..k of a tensor.
 * The reader opens by reading header + index only (and checks that every
 * byte of the file is header, a chunk, padding or index); chunks are read with
 * pread on demand into caller buffers (what an execution engine needs).
 * Format (little-endian): docs/mwq.md.  Nothing here quantizes. */
#ifndef D2_QUANT_MWQFILE_H
#define D2_QUANT_MWQFILE_H

#include <stddef.h>
#include <stdint.h>
#include "quant/kern.h"
#include "quant/mwq.h"
#include "quant/kq.h"

#define MWQFILE_MAGIC "D2MWQ\0\r\n"
#define MWQFILE_VERSION 2 /* 2: level-1 codes in 4/2/1-bit slices, strided blocks (kern.h); 1: bit planes */
#define MWQFILE_HEADER_BYTES 64
#define MWQFILE_ALIGN 64 /* chunks start at multiples of this */
#define MWQFILE_ELEMS_MAX ((int64_t)1 << 40) /* rows x cols of one tensor, checked before any size is computed */

typedef enum mwqfile_mode { MWQFILE_RTN = 0, MWQFILE_GPTQ = 1 } mwqfile_mode;

typedef struct mwqfile_tensor {
    char name[256];
    kern_shape shape;
    int levels;
    int mode;                          /* mwqfile_mode */
    int64_t offset[KERN_MAX_LEVELS];   /* bytes from file start, level k at [k-1] */
    int64_t bytes[KERN_MAX_LEVELS];    /* = kern_chunk_bytes(shape, k) */
    uint64_t xxh3[KERN_MAX_LEVELS];    /* XXH3-64 of the chunk */
    int kq;                            /* 1: k-quant nested layout (kq.h); shape.group = 256 */
    kq_format kqf;                     /* the kq.h format when kq = 1 */
} mwqfile_tensor;

/* ---- reader ---- */
typedef struct mwqfile mwqfile;
/* Reads and checks header and index (sizes, offsets, checksums). */
int mwqfile_open(const char *path, mwqfile **out);
void mwqfile_close(mwqfile *f);
const char *mwqfile_path(const mwqfile *f);
int mwqfile_fd(const mwqfile *f);
size_t mwqfile_count(const mwqfile *f);
const mwqfile_tensor *mwqfile_tensor_get(const mwqfile *f, size_t i);
int mwqfile_find(const mwqfile *f, const char *name, size_t *i);
/* Read the chunk of (tensor i, level) into buf (cap bytes >= its size) and
 * verify its checksum. */
int mwqfile_chunk_read(mwqfile *f, size_t i, int level, void *buf, int64_t cap);
/* Read every chunk, checking its checksum, and the padding after it, which
 * must be zero: the whole file (open checks the layout, never the padding). */
int mwqfile_verify(mwqfile *f);
/* Levels 1..k of tensor i into a new matrix (reads exactly those chunks). */
int mwqfile_load(mwqfile *f, size_t i, int k, mwq_matrix **out);
/* Levels 1..k of a k-quant tensor (kq = 1) into a new kq_matrix. */
int mwqfile_load_kq(mwqfile *f, size_t i, int k, kq_matrix **out);
/* Bytes this handle has read from the file so far (header, index, chunks). */
int64_t mwqfile_bytes_read(const mwqfile *f);

/* ---- writer ---- */
typedef struct mwqfile_writer mwqfile_writer;
/* Writes PATH.tmp and renames it to PATH on finish. */
int mwqfile_writer_new(const char *path, mwqfile_writer **out);
/* name: 1..255 bytes without a control character (a byte below 0x20, or
 * 0x7f: the reader refuses them, since names are printed as they are),
 * else D2_EINVAL. */
int mwqfile_writer_add(mwqfile_writer *w, const char *name, const mwq_matrix *m, mwqfile_mode mode);
/* A k-quant tensor: index byte 3 (reserved, 0 for kern.h tensors) = 1, the
 * group field = 256 | scale_bits << 32 | min_bits << 40 | resid << 48 | min_rel << 52
 * (resid 0 tied, 1 bucket; the v1k files of the first layout, 2 at bit 48, are refused). */
int mwqfile_writer_add_kq(mwqfile_writer *w, const char *name, const kq_matrix *m);
/* Index, header, rename; frees w whatever the outcome. */
int mwqfile_writer_finish(mwqfile_writer *w);
/* Removes the temporary file and frees w. */
void mwqfile_writer_abort(mwqfile_writer *w);

#endif
