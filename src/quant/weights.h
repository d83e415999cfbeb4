/* weights.h - read weight matrices as float32: llama2.c checkpoints,
 * safetensors (F32/F16/BF16) and NumPy .npy (f32/f16).  Opening parses the
 * index only; a tensor's data is read (pread) and converted on demand.
 * Every error names the file and the tensor/field/offset; NaN and Inf are
 * refused with the index of the first one; a safetensors name with a control
 * character (a byte below 0x20, or 0x7f) is refused, as the .mwq reader
 * refuses it, since names are printed as they are.  Nothing here quantizes. */
#ifndef D2_QUANT_WEIGHTS_H
#define D2_QUANT_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

typedef enum weights_format { WEIGHTS_AUTO = 0, WEIGHTS_LLAMA2C, WEIGHTS_SAFETENSORS, WEIGHTS_NPY } weights_format;
typedef enum weights_dtype { WEIGHTS_F32 = 0, WEIGHTS_F16, WEIGHTS_BF16, WEIGHTS_OTHER } weights_dtype;

typedef struct weights_info {
    char name[256];
    int ndim;            /* as stored; rows = product of all but the last dim */
    int64_t rows, cols;  /* elements */
    weights_dtype dtype;
    char dtype_name[16]; /* as written in the file ("F32", "<f2", "I8", ...) */
    int64_t offset;      /* bytes from the start of the file */
    int fortran;         /* .npy fortran_order: data column-major */
} weights_info;

typedef struct weights weights;

/* "llama2c", "safetensors", "npy" or "auto" (by extension: .bin, .safetensors, .npy). */
int weights_format_parse(const char *s, weights_format *out);
int weights_open(const char *path, weights_format fmt, weights **out);
void weights_free(weights *w);
const char *weights_path(const weights *w);
size_t weights_count(const weights *w);
const weights_info *weights_get(const weights *w, size_t i);
/* D2_ENOTFOUND (message names the file) when absent. */
int weights_find(const weights *w, const char *name, size_t *i);
/* Read tensor i as row-major float32 (rows x cols, malloc'd, caller frees). */
int weights_read(weights *w, size_t i, float **out);

#endif
