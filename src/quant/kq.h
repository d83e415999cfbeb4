/* kq.h - MWQ-K, the nested presets v1k / v2k (issue 16): k-quant-style
 * 256-weight super-blocks with quantized sub-block scales and mins for the
 * base level, and residual sign levels whose step is tied to the base
 * sub-block step.  The layout, the quantizer, dequantization and the
 * int8-activation dot / mat-vec kernels (scalar reference + AVX2) live here.
 * Files are mwqfile.h's job; the paper's v1 / v2 format is kern.h / mwq.h and
 * is unchanged.
 *
 * Layout (little-endian).  A rows x cols matrix, cols a multiple of 256,
 * NB = cols / 256 super-blocks per row.  Chunk of level k = rows * NB
 * super-block records of SBk bytes, row-major (row r, super-block b at
 * (r * NB + b) * SBk).  Sub-block j (0..7) = weights 32j .. 32j+31.
 *   level 1:  d     FP16  scale of the sub-block scale codes
 *             dmin  FP16  scale of the min codes (only when min_rel = 0)
 *             8 scale codes sc_j of sbits bits, then 8 min codes mc_j of
 *             mbits bits, one LSB-first bit stream, ceil(8*(sbits+mbits)/8) bytes
 *             the b1-bit codes q in slices of 4, 2, 1 bits (greedy, low bits
 *             first, as kern.h), each 32*w bytes: weight c of a w-bit slice is
 *             in byte (c % (256/w)) % 32 of block c / (256/w), at bit
 *             w * ((c % (256/w)) / 32)
 *             W1 = s_j * q - m_j,  s_j = d * sc_j,
 *             m_j = dmin * mc_j (min_rel 0) or (d * kappa) * (sc_j * mc_j)
 *             (min_rel 1, kappa = nmax / (2^mbits - 1): the min in code units)
 *   level k>1: 32 bytes of signs (byte i, bit j = weight 32j + i; 1 = +), then
 *             resid TIED:   nothing;  a_k = s_j * 2^-k
 *             resid BUCKET: level 2: 8 x 4 bits (bits 4j..4j+3: gi_j low 2
 *             bits, go_j high 2 bits), 4 bytes; level k > 2: 8 x 2 bits h_kj,
 *             2 bytes;  a_k = (s_j * G) * F_k with G = kq_go[go_j] for an
 *             "outward" weight (q = nmax with level-2 sign +, or q = 0 with
 *             level-2 sign -) and G = kq_gi[gi_j] otherwise,
 *             F_2 = 1/4, F_k = kq_h[h_kj] * 2^-k (k > 2)
 *             W_k = W_{k-1} +- a_k
 * TIED: level k is a uniform grid of step s_j / 2^(k-1).  BUCKET: the steps of
 * the inner base buckets and of the outward halves of the two end buckets
 * (where the heavy tails lie) are chosen per sub-block. */
#ifndef D2_QUANT_KQ_H
#define D2_QUANT_KQ_H

#include <stdint.h>

#define KQ_SUPER 256
#define KQ_SUB 32
#define KQ_NSUB 8
#define KQ_MAX_LEVELS 8

typedef enum kq_resid { KQ_TIED = 0, KQ_BUCKET = 1 } kq_resid;

typedef struct kq_format {
    int base_bits;  /* b1, bits of the level-1 code, 1..8 */
    int levels;     /* K, levels including the base, b1 + K - 1 <= 8 */
    int scale_bits; /* bits of a sub-block scale code, 1..8 */
    int min_bits;   /* bits of a sub-block min code, 1..8 */
    int min_rel;    /* 1: mins relative to the sub-block scale (no dmin); 0: FP16 dmin */
    kq_resid resid; /* residual step rule of levels k > 1 */
} kq_format;

/* The BUCKET tables: inner factor, outward factor, level k > 2 factor. */
extern const float kq_gi[4], kq_go[4], kq_h[4];

/* "v1k" (b1 2, K 3, scale/min 4/4, relative mins, BUCKET: 2.3125 / 3.4375 /
 * 4.5 bpw) or "v2k" (b1 5, K 4, 6/6, FP16 dmin, TIED: 5.5 / 6.5 / 7.5 / 8.5). */
int kq_format_preset(const char *name, kq_format *f);
int kq_format_check(const kq_format *f);
/* Bytes of one super-block record of level k (1-based). */
int64_t kq_super_bytes(const kq_format *f, int level);
/* Bytes of the chunk of level k of a rows x cols matrix (cols % 256 == 0). */
int64_t kq_chunk_bytes(const kq_format *f, int64_t rows, int64_t cols, int level);

typedef struct kq_matrix {
    kq_format fmt;
    int64_t rows, cols;                 /* cols % 256 == 0 */
    uint8_t *chunk[KQ_MAX_LEVELS];      /* owned; chunk[k-1] = level k */
    int64_t chunk_bytes[KQ_MAX_LEVELS];
    float step[KQ_MAX_LEVELS][4];       /* F_k: step[k-1][h] (BUCKET: 1/4 at k = 2, kq_h[h] 2^-k above; TIED: 2^-k) */
} kq_matrix;

/* Quantize w[rows*cols] (row-major, rows = outputs) to all levels of f.
 * search_steps T: base scale candidates t = -T..T (make_qkx2-style); BUCKET
 * formats then search the neighbours of each rounded scale / min code and the
 * residual factors on e1 + e2 + 4 e3 (level errors; always levels 1..3, so a
 * k-level quantization is a prefix of a K-level one).
 * Shapes with cols % 256 != 0 and NaN/Inf weights: D2_EINVAL naming them. */
int kq_quantize(const float *w, int64_t rows, int64_t cols, const kq_format *f, int search_steps, kq_matrix **out);
/* The same with rows split among `threads` workers (1..PAR_MAX_THREADS,
 * core/par.h): every super-block is quantized by the same code whatever the
 * split, so the bytes (and the error of a failing run: the first NaN / Inf
 * by row, then column) are the same for every thread count.  No allocation
 * besides the matrix; a thread that cannot start leaves its rows to the others. */
int kq_quantize_threads(const float *w, int64_t rows, int64_t cols, const kq_format *f, int search_steps, int threads,
                        kq_matrix **out);
/* Empty matrix with zeroed chunks (hand-built blocks, readers). */
int kq_matrix_new(const kq_format *f, int64_t rows, int64_t cols, kq_matrix **out);
void kq_matrix_free(kq_matrix *m);

/* Super-blocks whose FP16 scale d, or dmin (min_rel 0), is nonzero and of
 * magnitude below the FP16 value with bits `below`: KQ_F16_NORMAL_MIN
 * (0x0400, 2^-14, about 6.1e-5) counts the subnormal ones, which keep fewer
 * significant bits the smaller they are (tiny weights; docs/mwq.md, "Edge
 * cases"). */
#define KQ_F16_NORMAL_MIN 0x0400u
int64_t kq_matrix_scales_below(const kq_matrix *m, uint16_t below);

/* Tiny weights: FP16 super-block scales below the normal range keep fewer
 * significant bits.  kq_underflow_check measures what that costs: it
 * quantizes the tensor scaled by a power of two (exact in float; the
 * quantizer is otherwise scale-free) to max |w| in 512..1024, with the
 * same search steps (4) and threads, and compares each level's relative
 * error rel[k - 1] of the tensor as given with the scaled tensor's
 * (docs/mwq.md, "Edge cases").  Whether the cost is worth a warning is the
 * caller's decision.
 * Only a tensor with a scale below KQ_UNDERFLOW_CHECK (2^-16, FP16 bits
 * 0x0100, where its rounding error passes 2^-9 relative;
 * kq_matrix_scales_below) needs the check.  v2k's d is about 2.6e-3 x the
 * std of a Gaussian super-block (the widest of its 8 sub-blocks spans
 * about 5 std over 31 codes, over 63 scale steps), so the ordinary LLM
 * weights of std 0.01 - 0.02, whose d is subnormal but above 2^-16, are
 * not quantized twice: measured (docs/mwq.md), they lose 0.35 % at std
 * 0.01, where a 1 % loss is reached only near std 0.003 (d about 8e-6). */
#define KQ_UNDERFLOW_CHECK 0x0100u
typedef struct kq_underflow {
    double worst;   /* largest rel[k - 1] / scaled tensor's error over the levels (dimensionless); 1 when no level is worse,
                     * +inf when the scaled tensor is exact and the given one is not */
    int level;      /* the level of `worst`, 1..levels; 0 when no level is worse */
    double ref_err; /* the scaled tensor's relative error at `level` (dimensionless); 0 when no level is worse */
    int shift;      /* the tensor was scaled by 2^shift */
} kq_underflow;
/* w: rows x cols weights (cols % KQ_SUPER == 0), rel: the f->levels
 * relative errors of w quantized with f, scratch: rows x cols floats this
 * overwrites.  D2_ENOMEM, or the quantizer's error; *out is set on D2_OK. */
int kq_underflow_check(const float *w, int64_t rows, int64_t cols, const kq_format *f, const double *rel, float *scratch,
                       int threads, kq_underflow *out);

/* Dequantize row r at level k (1..levels) into out[cols]. */
void kq_row_dequant(const kq_matrix *m, int level, int64_t row, float *out);

/* One token's activations: int8 per super-block of 256 (scale max|x|/127)
 * and the sums of each 32-weight sub-block. */
typedef struct kq_act kq_act;
int kq_act_new(int64_t cols, kq_act **out);
void kq_act_free(kq_act *a);
/* D2_EINVAL on NaN/Inf (naming the index); cols must match. */
int kq_act_set(kq_act *a, const float *x);
void kq_act_dequant(const kq_act *a, float *xhat);

typedef enum kq_impl { KQ_AUTO = 0, KQ_SCALAR, KQ_AVX2 } kq_impl;
/* Force a path; returns the one that will be used. */
kq_impl kq_impl_set(kq_impl impl);
const char *kq_impl_name(kq_impl impl);
/* The quantizer's path: plain C vectors (SSE2 on x86-64), AVX2, or AVX-512
 * (two super-blocks per 16-lane vector at full width); all write the same
 * bytes.  kq_qpath_set gives what it set: the path asked for, or the best
 * below it this CPU has (KQ_QAUTO: the best).  kq_impl_set(KQ_SCALAR) also
 * sets KQ_QPLAIN; KQ_AUTO and KQ_AVX2 set KQ_QAUTO. */
typedef enum kq_qpath { KQ_QAUTO = 0, KQ_QPLAIN, KQ_QAVX2, KQ_QAVX512 } kq_qpath;
kq_qpath kq_qpath_set(kq_qpath p);
const char *kq_qpath_name(kq_qpath p);

/* Contribution of levels lo..hi (1 <= lo <= hi <= levels) to row . xhat:
 * W_hi . xhat - W_{lo-1} . xhat, all levels in one pass over the row. */
float kq_dot(const kq_matrix *m, int64_t row, int lo, int hi, const kq_act *a);
/* y[r] += kq_dot(m, r, lo, hi, a) for every row, bit for bit (the AVX2
 * v1k path may run rows in pairs).  D2_EINVAL on a bad range or an
 * activation of another width. */
int kq_matvec(const kq_matrix *m, int lo, int hi, const kq_act *a, float *y);

#endif
