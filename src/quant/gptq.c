/* gptq.c - MWQ's gptq mode (PAPER.md 2.3-2.4) and the float GEMM it needs.
 *
 * Our reading of the paper's garbled Algorithm 1 (also in docs/mwq.md):
 *   H = 2 X^T X + lambda I over the calibration tokens (X: T x cols), lambda =
 *   damp * mean(diag H); inputs with H_ii = 0 get H_ii = 1 first (as GPTQ).
 *   GPTQ's U = chol(H^-1) (upper, H^-1 = U^T U).  Blocks F of gamma columns
 *   (whole groups) are processed in order:
 *     1. quantize the updated W'_F with MWQ, all levels; scales fitted with
 *        per-column weights h_i = H_ii (the diagonal of the output-error form;
 *        cross terms inside a block are left to the compensation);
 *     2. E_F = W'_F - What_F at the compensation level (default: top level K);
 *     3. block-level OBS update of the later columns (no column-level updates
 *        inside a block): W'_rest -= E_F U_FF^-1 U_{F,rest}.
 *   We never form H^-1 or U: with H = V V^T (V upper, V = U^-1), steps 2-3
 *   summed over earlier blocks are exactly
 *        W'_F = W_F + [(W - What)_{<F} V_{<F,F}] V_FF^-1
 *   (W the original weights), so one Cholesky factor and one GEMM per block
 *   suffice.  With gamma = cols this is plain activation-weighted RTN.
 * Threads: only step 1 (each block's MWQ fit, row by row) runs on the
 * `threads` workers; H, its Cholesky factor and the GEMMs stay on one thread
 * (splitting the GEMM's rows would be exact only at multiples of its 4-row
 * kernel; not done).  The output bytes are the same for every thread count. */
#include "config.h"
#include "quant/mwq_int.h"
#include "core/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(HAVE_IMMINTRIN_H) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define GPTQ_X86 1
#endif

/* ---- GEMM ------------------------------------------------------------------ */
#define KB 256 /* K block: B panel of KB x 16 floats = 16 KiB */
#define NB 512 /* N block */

static void gemm_scalar(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                        int64_t ldb, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t k = 0; k < K; k++) {
            float a = alpha * A[i * lda + k];
            if (a == 0) continue;
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] += a * B[k * ldb + j];
        }
}

#ifdef GPTQ_X86
/* Bp: packed panels, panel p holds B[k][n0+16p .. n0+16p+15] for k in the block. */
__attribute__((target("avx2,fma"))) static void gemm_block_avx2(int64_t M, int64_t np, int64_t kb, float alpha,
                                                                  const float *A, int64_t lda, const float *Bp, float *C,
                                                                  int64_t ldc)
{
    int64_t i = 0;
    for (; i + 4 <= M; i += 4) {
        const float *a0 = A + i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        for (int64_t p = 0; p < np; p++) {
            const float *bp = Bp + p * kb * 16;
            __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
            for (int64_t k = 0; k < kb; k++) {
                __m256 b0 = _mm256_loadu_ps(bp + 16 * k), b1 = _mm256_loadu_ps(bp + 16 * k + 8);
                __m256 x = _mm256_broadcast_ss(a0 + k);
                c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
                x = _mm256_broadcast_ss(a1 + k);
                c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
                x = _mm256_broadcast_ss(a2 + k);
                c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
                x = _mm256_broadcast_ss(a3 + k);
                c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
            }
            __m256 al = _mm256_set1_ps(alpha);
            float *c = C + i * ldc + 16 * p;
#define ST(r, v0, v1)                                                                                   \
    _mm256_storeu_ps(c + (r) * ldc, _mm256_fmadd_ps(al, v0, _mm256_loadu_ps(c + (r) * ldc)));         \
    _mm256_storeu_ps(c + (r) * ldc + 8, _mm256_fmadd_ps(al, v1, _mm256_loadu_ps(c + (r) * ldc + 8)))
            ST(0, c00, c01); ST(1, c10, c11); ST(2, c20, c21); ST(3, c30, c31);
#undef ST
        }
    }
    for (; i < M; i++)
        for (int64_t p = 0; p < np; p++) {
            const float *bp = Bp + p * kb * 16;
            float acc[16] = {0};
            for (int64_t k = 0; k < kb; k++)
                for (int j = 0; j < 16; j++) acc[j] += A[i * lda + k] * bp[16 * k + j];
            for (int j = 0; j < 16; j++) C[i * ldc + 16 * p + j] += alpha * acc[j];
        }
}

static int have_fma(void)
{
    static int have = -1;
    if (have < 0) { __builtin_cpu_init(); have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
    return have;
}
#endif

int gptq_gemm(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
              float *C, int64_t ldc)
{
#ifdef GPTQ_X86
    if (have_fma() && N >= 16) {
        float *Bp = aligned_alloc(32, (size_t)KB * NB * sizeof(float));
        if (!Bp) D2_ERROR(D2_ENOMEM, "out of memory");
        int64_t N16 = N / 16 * 16;
        for (int64_t k0 = 0; k0 < K; k0 += KB) {
            int64_t kb = K - k0 < KB ? K - k0 : KB;
            for (int64_t n0 = 0; n0 < N16; n0 += NB) {
                int64_t nb = N16 - n0 < NB ? N16 - n0 : NB, np = nb / 16;
                for (int64_t p = 0; p < np; p++)
                    for (int64_t k = 0; k < kb; k++)
                        memcpy(Bp + (p * kb + k) * 16, B + (k0 + k) * ldb + n0 + 16 * p, 16 * sizeof(float));
                gemm_block_avx2(M, np, kb, alpha, A + k0, lda, Bp, C + n0, ldc);
            }
        }
        free(Bp);
        if (N16 < N) gemm_scalar(M, N - N16, K, alpha, A, lda, B + N16, ldb, C + N16, ldc);
        return D2_OK;
    }
#endif
    gemm_scalar(M, N, K, alpha, A, lda, B, ldb, C, ldc);
    return D2_OK;
}

/* ---- V: H = V V^T, V upper ----------------------------------------------------
 * Lower Cholesky of the reversed matrix M = J H J (float, n x n, row-major),
 * blocked: the diagonal block in double, the panel by multiplying with the
 * inverse of the diagonal factor, the trailing update with gptq_gemm.
 * Then V = J L J. */
static int chol_lower(float *M, int64_t n)
{
    const int64_t nb = 128;
    double *D = malloc((size_t)(nb * nb) * sizeof *D);
    float *Ti = malloc((size_t)(nb * nb) * sizeof *Ti), *P = malloc((size_t)(n * nb) * sizeof *P),
          *Pt = malloc((size_t)(n * nb) * sizeof *Pt);
    int rc = D2_OK;
    if (!D || !Ti || !P || !Pt) { rc = D2_ENOMEM; d2_err_set("gptq: out of memory"); goto out; }
    for (int64_t k0 = 0; k0 < n; k0 += nb) {
        const int64_t k1 = k0 + nb < n ? k0 + nb : n, b = k1 - k0, rest = n - k1;
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j <= i; j++) D[i * b + j] = M[(k0 + i) * n + k0 + j];
        for (int64_t j = 0; j < b; j++) {
            double d = D[j * b + j];
            for (int64_t k = 0; k < j; k++) d -= D[j * b + k] * D[j * b + k];
            if (!(d > 0)) {
                rc = D2_ERANGE;
                d2_err_set("gptq: H = 2X^T X + lambda I is not positive definite (column %lld); raise mwq.gptq_damp", (long long)(n - 1 - (k0 + j)));
                goto out;
            }
            d = sqrt(d);
            D[j * b + j] = d;
            for (int64_t i = j + 1; i < b; i++) {
                double v = D[i * b + j];
                for (int64_t k = 0; k < j; k++) v -= D[i * b + k] * D[j * b + k];
                D[i * b + j] = v / d;
            }
        }
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j < b; j++) M[(k0 + i) * n + k0 + j] = j <= i ? (float)D[i * b + j] : 0.0f;
        if (!rest) break;
        /* Ti = (L11^-1)^T, upper: solve L11 y = e_j by forward substitution */
        for (int64_t j = 0; j < b; j++) {
            double y[128];
            for (int64_t i = 0; i < b; i++) {
                double v = i == j ? 1.0 : 0.0;
                for (int64_t k = j; k < i; k++) v -= D[i * b + k] * y[k];
                y[i] = i < j ? 0.0 : v / D[i * b + i];
            }
            for (int64_t i = 0; i < b; i++) Ti[j * b + i] = (float)y[i]; /* Ti[j][i] = Linv[i][j] */
        }
        /* P = M21 Ti  (rest x b) */
        memset(P, 0, (size_t)(rest * b) * sizeof *P);
        if ((rc = gptq_gemm(rest, b, b, 1.0f, M + k1 * n + k0, n, Ti, b, P, b))) goto out;
        for (int64_t i = 0; i < rest; i++) {
            memcpy(M + (k1 + i) * n + k0, P + i * b, (size_t)b * sizeof *P);
            for (int64_t j = 0; j < b; j++) Pt[j * rest + i] = P[i * b + j];
        }
        /* M22 -= P P^T, lower triangle only (row blocks up to the diagonal) */
        for (int64_t i0 = 0; i0 < rest; i0 += 256) {
            int64_t i1 = i0 + 256 < rest ? i0 + 256 : rest;
            if ((rc = gptq_gemm(i1 - i0, i1, b, -1.0f, P + i0 * b, b, Pt, rest, M + (k1 + i0) * n + k1, n))) goto out;
        }
    }
out:
    free(D); free(Ti); free(P); free(Pt);
    return rc;
}

int gptq_quantize(mwq_matrix *m, const float *w, const float *X, int64_t T, const mwq_config *c, int threads)
{
    const int64_t rows = m->shape.rows, n = m->shape.cols, gam = c->gptq_block;
    const int comp = c->gptq_comp_level ? (int)c->gptq_comp_level : m->levels;
    int rc = D2_OK;
    float *Wp = malloc((size_t)(rows * n) * sizeof *Wp), *Xt = malloc((size_t)(n * T) * sizeof *Xt);
    float *H = calloc((size_t)(n * n), sizeof *H), *V = malloc((size_t)(n * n) * sizeof *V), *hdiag = malloc((size_t)n * sizeof *hdiag);
    float *Q = malloc((size_t)(rows * gam) * sizeof *Q), *S = malloc((size_t)(rows * gam) * sizeof *S);
    float *EQ = malloc((size_t)(rows * n) * sizeof *EQ), *Vi = malloc((size_t)(gam * gam) * sizeof *Vi);
    float *VB = malloc((size_t)(n * gam) * sizeof *VB);
    if (!Wp || !Xt || !H || !V || !hdiag || !Q || !S || !EQ || !Vi || !VB) { rc = D2_ENOMEM; d2_err_set("gptq: out of memory"); goto out; }
    /* H = 2 X^T X */
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < n; i++) Xt[i * T + t] = X[t * n + i];
    /* upper triangle only (row blocks from the diagonal): the Cholesky of
     * the reversed matrix reads only its lower triangle = H's upper one */
    for (int64_t i0 = 0; i0 < n; i0 += 256) {
        int64_t i1 = i0 + 256 < n ? i0 + 256 : n;
        if ((rc = gptq_gemm(i1 - i0, n - i0, T, 2.0f, Xt + i0 * T, T, X + i0, n, H + i0 * n + i0, n))) goto out;
    }
    free(Xt);
    Xt = NULL;
    double mean = 0;
    for (int64_t i = 0; i < n; i++) mean += H[i * n + i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        if (H[i * n + i] == 0) H[i * n + i] = 1.0f; /* dead input, as GPTQ */
        H[i * n + i] += (float)(c->gptq_damp * mean);
        hdiag[i] = H[i * n + i];
    }
    /* M = J H J into V, Cholesky, then V = J L J (upper) back into H */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) V[i * n + j] = H[(n - 1 - i) * n + (n - 1 - j)];
    if ((rc = chol_lower(V, n))) goto out;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) H[i * n + j] = j >= i ? V[(n - 1 - i) * n + (n - 1 - j)] : 0.0f;
    /* H now holds V (upper) */
    memcpy(Wp, w, (size_t)(rows * n) * sizeof *Wp);
    for (int64_t b0 = 0; b0 < n; b0 += gam) {
        const int64_t b1 = b0 + gam < n ? b0 + gam : n, bw = b1 - b0;
        if (b0 > 0) {
            /* S = (W - What)_{<F} V_{<F,F};  W'_F = W_F + S V_FF^-1 */
            for (int64_t i = 0; i < b0; i++) memcpy(VB + i * bw, H + i * n + b0, (size_t)bw * sizeof *VB);
            memset(S, 0, (size_t)(rows * bw) * sizeof *S);
            if ((rc = gptq_gemm(rows, bw, b0, 1.0f, EQ, n, VB, bw, S, bw))) goto out;
            /* Vi = V_FF^-1 (upper), back substitution in double */
            for (int64_t j = 0; j < bw; j++)
                for (int64_t i = j; i >= 0; i--) {
                    double v = i == j ? 1.0 : 0.0;
                    for (int64_t k = i + 1; k <= j; k++) v -= (double)H[(b0 + i) * n + b0 + k] * Vi[k * bw + j];
                    Vi[i * bw + j] = (float)(v / H[(b0 + i) * n + b0 + i]);
                }
            for (int64_t i = 0; i < bw; i++)
                for (int64_t j = 0; j < i; j++) Vi[i * bw + j] = 0.0f;
            for (int64_t r = 0; r < rows; r++) memcpy(Wp + r * n + b0, w + r * n + b0, (size_t)bw * sizeof *Wp);
            if ((rc = gptq_gemm(rows, bw, bw, 1.0f, S, bw, Vi, bw, Wp + b0, n))) goto out;
        }
        if ((rc = mwq_quantize_columns(m, Wp, b0, b1, hdiag, c, comp, Q, threads))) goto out;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t f = 0; f < bw; f++) EQ[r * n + b0 + f] = w[r * n + b0 + f] - Q[r * bw + f];
    }
out:
    free(Wp); free(Xt); free(H); free(V); free(hdiag); free(Q); free(S); free(EQ); free(Vi); free(VB);
    return rc;
}
