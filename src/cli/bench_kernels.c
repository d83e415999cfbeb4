/* bench_kernels.c - `d2moe bench kernels`: single-core streaming read
 * bandwidth, rtn-mode MWQ quantize throughput (float32 input, all levels),
 * and the level-k dot (mat-vec) rate on a matrix larger than the last-level
 * cache, per level, against both bounds measured in the same run: memory
 * (stream bandwidth / packed bytes per weight) and compute (the same kernel
 * on a matrix that fits in L2).  Numbers are wall-clock bests of --reps.
 * Only quantize has a multi-threaded figure (--threads); the rest is one core. */
#include "config.h"
#include "cli/cli.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/par.h"
#include "core/rng.h"
#include "quant/f16.h"
#include "quant/kern.h"
#include "quant/kq.h"
#include "quant/kref.h"
#include "quant/mwq.h"

#include <getopt.h>
#include <gsl/gsl_randist.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(HAVE_IMMINTRIN_H) && defined(__x86_64__)
#include <immintrin.h>
#define BENCH_X86 1
#endif

/* CPU time of this thread: what the quantizer costs when other processes
 * share the core (wall time is reported too) */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#ifdef BENCH_X86
__attribute__((target("avx2"))) static double stream_sum(const uint8_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    long long v[4];
    _mm256_storeu_si256((__m256i *)v, a0);
    return (double)(v[0] + v[1] + v[2] + v[3]);
}
#endif

static double stream_sum_scalar(const uint8_t *p, size_t n)
{
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        uint64_t x, y;
        memcpy(&x, p + i, 8);
        memcpy(&y, p + i + 8, 8);
        a += x;
        b += y;
    }
    return (double)(a + b);
}

static volatile double sink;

static double measure_stream(size_t bytes, int reps)
{
    uint8_t *buf = aligned_alloc(64, bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < bytes; i++) buf[i] = (uint8_t)i;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = clock_mono_s();
#ifdef BENCH_X86
        sink = kern_have_avx2() ? stream_sum(buf, bytes) : stream_sum_scalar(buf, bytes);
#else
        sink = stream_sum_scalar(buf, bytes);
#endif
        t = clock_mono_s() - t;
        if (t < best) best = t;
    }
    free(buf);
    return (double)bytes / best / 1e9;
}

/* Random packed V1 data: bits uniform, scales FP16 around 0.01, zeros 1.5. */
static int random_matrix(int64_t rows, int64_t cols, int b1, int K, gsl_rng *r, mwq_matrix **out)
{
    kern_shape s = {.rows = rows, .cols = cols, .group = 128, .base_bits = b1};
    D2_TRY(mwq_matrix_new(&s, K, out));
    mwq_matrix *m = *out;
    int64_t G = kern_groups_per_row(&s);
    for (int k = 1; k <= K; k++) {
        uint8_t *ch = m->chunk[k - 1];
        for (int64_t i = 0; i < rows * G; i++) {
            uint16_t sc = f16_from_float((float)(0.005 + 0.01 * gsl_rng_uniform(r)));
            ch[2 * i] = (uint8_t)sc;
            ch[2 * i + 1] = (uint8_t)(sc >> 8);
            if (k == 1) {
                uint16_t z = f16_from_float(1.5f);
                ch[kern_chunk_zeros_offset(&s) + 2 * i] = (uint8_t)z;
                ch[kern_chunk_zeros_offset(&s) + 2 * i + 1] = (uint8_t)(z >> 8);
            }
        }
        int64_t p0 = kern_chunk_planes_offset(&s, k);
        for (int64_t i = p0; i + 4 <= m->chunk_bytes[k - 1]; i += 4) {
            uint32_t v = (uint32_t)gsl_rng_get(r);
            memcpy(ch + i, &v, 4);
        }
    }
    return D2_OK;
}

/* best seconds of a mat-vec over levels lo..hi */
static double time_matvec(const mwq_matrix *m, int lo, int hi, const kern_act *a, float *y, int reps)
{
    kern_mat v;
    mwq_matrix_view(m, m->levels, &v);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        memset(y, 0, (size_t)m->shape.rows * sizeof *y);
        double t = clock_mono_s();
        kern_matvec(&v, lo, hi, a, y);
        t = clock_mono_s() - t;
        if (t < best) best = t;
    }
    return best;
}

/* Random packed k-quant data: every byte random except d / dmin (FP16 around
 * 0.001, so the values stay finite). */
static int random_kq(const kq_format *f, int64_t rows, int64_t cols, gsl_rng *r, kq_matrix **out)
{
    D2_TRY(kq_matrix_new(f, rows, cols, out));
    kq_matrix *m = *out;
    for (int k = 1; k <= f->levels; k++) {
        uint8_t *ch = m->chunk[k - 1];
        for (int64_t i = 0; i + 4 <= m->chunk_bytes[k - 1]; i += 4) {
            uint32_t v = (uint32_t)gsl_rng_get(r);
            memcpy(ch + i, &v, 4);
        }
        if (k == 1)
            for (int64_t b = 0; b < rows * (cols / KQ_SUPER); b++) {
                uint8_t *p = ch + b * kq_super_bytes(f, 1);
                uint16_t d = f16_from_float((float)(0.0005 + 0.001 * gsl_rng_uniform(r)));
                p[0] = p[2] = (uint8_t)d;
                p[1] = p[3] = (uint8_t)(d >> 8);
            }
    }
    return D2_OK;
}

static double time_kq(const kq_matrix *m, int lo, int hi, const kq_act *a, float *y, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        memset(y, 0, (size_t)m->rows * sizeof *y);
        double t = clock_mono_s();
        kq_matvec(m, lo, hi, a, y);
        t = clock_mono_s() - t;
        if (t < best) best = t;
    }
    return best;
}

/* The quantize input: a qrows x qcols float32 matrix, 0.02 t(3) weights with
 * every 16th column (offset 5) 8x larger (outlier channels); NULL when out
 * of memory. */
static float *heavy_tailed(gsl_rng *r, long qrows, long qcols)
{
    int64_t qn = (int64_t)qrows * qcols;
    float *w = malloc((size_t)qn * sizeof *w);
    if (!w) return NULL;
    for (int64_t i = 0; i < qn; i++) {
        double v = 0.02 * gsl_ran_tdist(r, 3.0);
        w[i] = (float)((i % qcols) % 16 == 5 ? 8 * v : v);
    }
    return w;
}

/* A quantizer as time_quantize runs it: run quantizes w on `threads`
 * threads (1: the one-thread entry point) and hands the matrix back; free
 * frees it (untimed). */
typedef struct quantizer {
    int (*run)(const void *cfg, const float *w, long rows, long cols, int threads, void **out); /* timed */
    void (*free)(void *m);                                                                    /* untimed */
    const void *cfg;                                                                          /* run's configuration */
} quantizer;

static int run_mwq(const void *cfg, const float *w, long rows, long cols, int threads, void **out)
{
    mwq_matrix *m = NULL;
    int rc = threads > 1 ? mwq_matrix_quantize_threads(w, rows, cols, cfg, NULL, 0, threads, &m)
                         : mwq_matrix_quantize(w, rows, cols, cfg, NULL, 0, &m);
    *out = m;
    return rc;
}
static void free_mwq(void *m) { mwq_matrix_free(m); }

static int run_kq(const void *cfg, const float *w, long rows, long cols, int threads, void **out)
{
    kq_matrix *m = NULL;
    int rc = threads > 1 ? kq_quantize_threads(w, rows, cols, cfg, 4, threads, &m) : kq_quantize(w, rows, cols, cfg, 4, &m);
    *out = m;
    return rc;
}
static void free_kq(void *m) { kq_matrix_free(m); }

/* Quantize throughput in GB/s of float32 input: the best of `runs` runs on
 * one thread (wall, and thread CPU time) and, when threads > 1, of a run on
 * `threads` threads right after each (the same load for both; else the
 * one-thread figure). */
typedef struct qspeed {
    double wall_s;      /* best one-thread wall time, s */
    double gbs;         /* float32 input over the best one-thread wall time, GB/s (1e9 bytes/s) */
    double cpu_gbs;     /* float32 input over the best one-thread thread CPU time, GB/s */
    double threads_gbs; /* float32 input over the best wall time on `threads` threads, GB/s (= gbs on one thread) */
} qspeed;

static int time_quantize(const quantizer *q, const float *w, long rows, long cols, int runs, int threads, qspeed *out)
{
    double qbest = 1e30, qcpu = 1e30, qtbest = 1e30;
    for (int rep = 0; rep < runs; rep++) {
        void *m;
        double t = clock_mono_s(), tc = cpu_now();
        int rc = q->run(q->cfg, w, rows, cols, 1, &m);
        t = clock_mono_s() - t;
        tc = cpu_now() - tc;
        if (rc) return rc;
        q->free(m);
        if (t < qbest) qbest = t;
        if (tc < qcpu) qcpu = tc;
        if (threads > 1) { /* interleaved with the one-thread runs: the same load for both */
            t = clock_mono_s();
            rc = q->run(q->cfg, w, rows, cols, threads, &m);
            t = clock_mono_s() - t;
            if (rc) return rc;
            q->free(m);
            if (t < qtbest) qtbest = t;
        }
    }
    if (threads == 1) qtbest = qbest;
    const int64_t qn = (int64_t)rows * cols;
    out->wall_s = qbest;
    out->gbs = 4.0 * (double)qn / qbest / 1e9;
    out->cpu_gbs = 4.0 * (double)qn / qcpu / 1e9;
    out->threads_gbs = 4.0 * (double)qn / qtbest / 1e9;
    return D2_OK;
}

/* The quantize figures of the JSON report (path: the vector path, NULL: none). */
static void json_quantize(json_t *o, const qspeed *q, const char *path, int threads)
{
    json_object_set_new(o, "quantize_gbs", json_real(q->gbs));
    if (path) json_object_set_new(o, "quantize_path", json_string(path));
    json_object_set_new(o, "quantize_cpu_gbs", json_real(q->cpu_gbs));
    json_object_set_new(o, "threads", json_integer(threads));
    json_object_set_new(o, "quantize_threads_gbs", json_real(q->threads_gbs));
    json_object_set_new(o, "quantize_threads_speedup", json_real(q->threads_gbs / q->gbs));
}

/* The end of the JSON report: the shapes, the activations, the per-level
 * rows jl and the reference layouts jr; printed and freed. */
static void json_finish(json_t *o, long qrows, long qcols, long rows, long cols, const char *activations, json_t *jl, json_t *jr)
{
    json_object_set_new(o, "quantize_shape", json_pack("[i,i]", (json_int_t)qrows, (json_int_t)qcols));
    json_object_set_new(o, "dot_shape", json_pack("[i,i]", (json_int_t)rows, (json_int_t)cols));
    json_object_set_new(o, "activations", json_string(activations));
    json_object_set_new(o, "levels", jl);
    json_object_set_new(o, "reference_layouts", jr);
    json_dumpf(o, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(6));
    printf("\n");
    json_decref(o);
}

/* The q2_K / q4_K layout reference kernels (quant/kref.h, written here from
 * the published layouts, not ggml's code) on a random-byte matrix of the
 * same shape, timed as time_kq times MWQ-K: the baseline the issue measured
 * against.  gw[k] = the preset's levels 1..k (G weights/s) for the ratios
 * (cmp_preset v1k or v1, NULL: none; level 1 against q2k-layout, levels
 * 1..3 against q4k-layout). */
static int bench_kref(long rows, long cols, long reps, double stream, const float *x, int json, const char *cmp_preset,
                      const double *gw, kq_impl impl, json_t *out)
{
    kref_act *a = NULL;
    float *y = malloc((size_t)rows * sizeof *y);
    if (!y || kref_act_new(cols, &a)) { free(y); d2_err_set("out of memory"); return D2_ENOMEM; }
    kref_act_set(a, x);
    gsl_rng *r = rng_new(2, 0);
    if (!r) { free(y); kref_act_free(a); d2_err_set("out of memory"); return D2_ENOMEM; }
    if (!json)
        printf("reference kernels of the k-quant layouts (quant/kref.h: written here from the layouts, not ggml's code), same shape:\n"
               "  %-11s %6s %9s %9s %12s %10s %s%s\n", "layout", "bpw", "Gw/s", "GB/s", "mem_bound", "of_mem", cmp_preset ? cmp_preset : "",
               cmp_preset ? " / layout" : "");
    int rc = D2_OK;
    for (int t = KREF_Q2K; t <= KREF_Q4K && !rc; t++) {
        kref_matrix *m;
        if ((rc = kref_matrix_new((kref_type)t, rows, cols, &m))) break;
        const int rb = kref_record_bytes((kref_type)t);
        for (int64_t i = 0; i < m->bytes; i++) m->data[i] = (uint8_t)gsl_rng_uniform_int(r, 256);
        for (int64_t b = 0; b < m->bytes / rb; b++) { /* finite d = 0.01, dmin = 0.02 */
            uint8_t *p = m->data + b * rb;
            p[0] = 0x1f; p[1] = 0x21; p[2] = 0x1f; p[3] = 0x25;
        }
        double best = 1e30;
        for (long k = 0; k < reps; k++) {
            memset(y, 0, (size_t)rows * sizeof *y);
            double t0 = clock_mono_s();
            kref_matvec(m, a, impl, y);
            t0 = clock_mono_s() - t0;
            if (t0 < best) best = t0;
        }
        double nw = (double)rows * cols, g = nw / best / 1e9, bpw = 8.0 * rb / KREF_SUPER, membound = stream / (bpw / 8);
        double ratio = cmp_preset ? gw[t == KREF_Q2K ? 1 : 3] / g : 0;
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "layout", json_string(kref_type_name((kref_type)t)));
            json_object_set_new(o, "bits_per_weight", json_real(bpw));
            json_object_set_new(o, "dot_gw_s", json_real(g));
            json_object_set_new(o, "dot_gbs", json_real((double)m->bytes / best / 1e9));
            json_object_set_new(o, "memory_bound_gw_s", json_real(membound));
            json_object_set_new(o, "fraction_of_memory_bound", json_real(g / membound));
            if (cmp_preset) {
                json_object_set_new(o, "compared_levels", json_string(t == KREF_Q2K ? "1" : "1..3"));
                json_object_set_new(o, "preset_over_layout", json_real(ratio));
            }
            json_array_append_new(out, o);
        } else {
            char cmp[48] = "";
            if (cmp_preset) snprintf(cmp, sizeof cmp, "%.2f (levels %s)", ratio, t == KREF_Q2K ? "1" : "1..3");
            printf("  %-11s %6.3f %9.2f %9.2f %12.2f %9.0f%% %s\n", kref_type_name((kref_type)t), bpw, g, (double)m->bytes / best / 1e9,
                   membound, 100 * g / membound, cmp);
        }
        kref_matrix_free(m);
    }
    gsl_rng_free(r);
    kref_act_free(a);
    free(y);
    return rc;
}

/* --preset v1k / v2k: the same figures for the k-quant nested format */
static int bench_kq(const char *preset, long rows, long cols, long qrows, long qcols, long reps, long stream_mib, int json,
                    kq_impl impl, kq_qpath qpath, int threads)
{
    kq_format f;
    D2_TRY(kq_format_preset(preset, &f));
    if (cols % KQ_SUPER || qcols % KQ_SUPER)
        return cli_usage_error("bench kernels", "--preset %s: --cols and --qcols must be multiples of %d", preset, KQ_SUPER);
    kq_impl used = kq_impl_set(impl);
    if (impl == KQ_AVX2 && used != KQ_AVX2) return cli_usage_error("bench kernels", "--impl avx2: this CPU lacks AVX2/FMA");
    kq_qpath qused = kq_qpath_set(qpath); /* after kq_impl_set, which resets it */
    if (qpath != KQ_QAUTO && qused != qpath) return cli_usage_error("bench kernels", "--qpath %s: this CPU lacks it", kq_qpath_name(qpath));
    gsl_rng *r = rng_new(1, 0);
    if (!r) { d2_err_set("out of memory"); return cli_fail(D2_ENOMEM); }
    double stream = measure_stream((size_t)stream_mib << 20, (int)reps);
    float *w = heavy_tailed(r, qrows, qcols);
    if (!w) { gsl_rng_free(r); d2_err_set("out of memory"); return cli_fail(D2_ENOMEM); }
    const quantizer qz = {.run = run_kq, .free = free_kq, .cfg = &f};
    qspeed qs;
    int rc = time_quantize(&qz, w, qrows, qcols, reps < 2 ? (int)reps : 2, threads, &qs);
    free(w);
    if (rc) { gsl_rng_free(r); return cli_fail(rc); }
    kq_matrix *big, *small;
    rc = random_kq(&f, rows, cols, r, &big);
    if (!rc) rc = random_kq(&f, 128, 4096, r, &small);
    if (rc) { gsl_rng_free(r); return cli_fail(rc); }
    long nx = cols > 4096 ? cols : 4096, ny = rows > 128 ? rows : 128;
    float *x = malloc((size_t)nx * sizeof *x), *y = malloc((size_t)ny * sizeof *y);
    kq_act *a = NULL, *as = NULL;
    if (!x || !y || kq_act_new(cols, &a) || kq_act_new(4096, &as)) {
        free(x); free(y); kq_act_free(a); kq_matrix_free(big); kq_matrix_free(small); gsl_rng_free(r);
        d2_err_set("out of memory");
        return cli_fail(D2_ENOMEM);
    }
    for (long i = 0; i < nx; i++) x[i] = (float)gsl_ran_gaussian(r, 1.0);
    kq_act_set(a, x);
    kq_act_set(as, x);
    gsl_rng_free(r);
    json_t *jl = json_array();
    if (!json) {
        printf("kernels %s: %s path, one core\n", preset, kq_impl_name(used));
        printf("stream read bandwidth (%ld MiB): %.2f GB/s\n", stream_mib, stream);
        printf("quantize %s (all %d levels, %s path) %ld x %ld: %.3f GB/s of float32 input (%.2f s wall; %.3f GB/s by thread CPU time)\n",
               preset, f.levels, kq_qpath_name(qused), qrows, qcols, qs.gbs, qs.wall_s, qs.cpu_gbs);
        printf("quantize %s on %d threads: %.3f GB/s of float32 input (wall), %.2fx the one-thread figure\n", preset, threads,
               qs.threads_gbs, qs.threads_gbs / qs.gbs);
        printf("dot (mat-vec, int8 activations per super-block of 256) on %ld x %ld, levels 1..k in one pass:\n", rows, cols);
        printf("  %5s %6s %9s %9s %12s %11s %10s %10s\n", "level", "bpw", "Gw/s", "GB/s", "mem_bound", "cpu_bound", "of_mem", "incr_Gw/s");
    }
    double bytes = 0, gwk[KQ_MAX_LEVELS + 1] = {0};
    for (int k = 1; k <= f.levels; k++) {
        bytes += (double)big->chunk_bytes[k - 1];
        double tb = time_kq(big, 1, k, a, y, (int)reps);
        double ts = time_kq(small, 1, k, as, y, (int)reps * 20);
        double ti = time_kq(big, k, k, a, y, (int)reps);
        double nw = (double)rows * cols, gw = nw / tb / 1e9, gbs = bytes / tb / 1e9;
        double bpw = bytes / nw, membound = stream / bpw, cpubound = 128.0 * 4096 / ts / 1e9;
        gwk[k] = gw;
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "level", json_integer(k));
            json_object_set_new(o, "bits_per_weight", json_real(8 * bpw));
            json_object_set_new(o, "dot_gw_s", json_real(gw));
            json_object_set_new(o, "dot_gbs", json_real(gbs));
            json_object_set_new(o, "memory_bound_gw_s", json_real(membound));
            json_object_set_new(o, "compute_bound_gw_s", json_real(cpubound));
            json_object_set_new(o, "fraction_of_memory_bound", json_real(gw / membound));
            json_object_set_new(o, "incremental_gw_s", json_real(nw / ti / 1e9));
            json_array_append_new(jl, o);
        } else {
            printf("  %5d %6.3f %9.2f %9.2f %12.2f %11.2f %9.0f%% %10.2f\n", k, 8 * bpw, gw, gbs, membound, cpubound, 100 * gw / membound,
                   nw / ti / 1e9);
        }
    }
    if (!json)
        printf("  (mem_bound = stream / packed bytes per weight; cpu_bound = same kernel, 128 x 4096 in L2;\n"
               "   incr = level k alone, added to level k-1's result)\n");
    json_t *jr = json_array();
    rc = bench_kref(rows, cols, reps, stream, x, json, !strcmp(preset, "v1k") ? "v1k" : NULL, gwk, used, jr);
    if (rc) {
        json_decref(jl); json_decref(jr);
        free(x); free(y); kq_act_free(a); kq_act_free(as); kq_matrix_free(big); kq_matrix_free(small);
        return cli_fail(rc);
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "preset", json_string(preset));
        json_object_set_new(o, "impl", json_string(kq_impl_name(used)));
        json_object_set_new(o, "stream_gbs", json_real(stream));
        json_quantize(o, &qs, kq_qpath_name(qused), threads);
        json_finish(o, qrows, qcols, rows, cols, "int8 per super-block of 256", jl, jr);
    } else {
        json_decref(jl);
        json_decref(jr);
    }
    free(x);
    free(y);
    kq_act_free(a);
    kq_act_free(as);
    kq_matrix_free(big);
    kq_matrix_free(small);
    kq_impl_set(KQ_AUTO);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe bench kernels [--rows R] [--cols C] [--qrows R] [--qcols C] [--reps N]\n"
                 "                           [--impl auto|scalar|avx2] [--stream-mib N] [--json]\n"
                 "                           [--gptq ROWSxCOLSxTOKENS] [--preset v1|v1k|v2k] [--threads N]\n"
                 "                           [--qpath auto|plain|avx2|avx512]\n\n"
                 "MWQ kernel benchmark (V1: b1=2, K=3, g=128), one core:\n"
                 "  stream   single-core streaming read bandwidth over --stream-mib MiB (default 1024)\n"
                 "  quantize rtn-mode MWQ, scale search included, all 3 levels, on a --qrows x --qcols\n"
                 "           heavy-tailed float32 matrix (default 4096 x 14336): GB/s of float32 input\n"
                 "  dot      mat-vec with int8 activations per group, levels 1..k fused, on a random\n"
                 "           packed --rows x --cols matrix (default 32768 x 14336: 132 MB at level 1,\n"
                 "           far above a 32 MiB L3); 10^9 weights/s and packed GB/s per level, the\n"
                 "           memory bound (stream / packed bytes per weight) and the compute bound\n"
                 "           (same kernel on a 128 x 4096 matrix that stays in L2).\n"
                 "  gptq     with --gptq RxCxT only: gptq-mode MWQ V1 of an R x C heavy-tailed matrix\n"
                 "           with T random calibration tokens, wall and thread CPU seconds.\n"
                 "--preset v1k|v2k: the same figures for the k-quant nested format (docs/mwq.md);\n"
                 "           each level's dot reads levels 1..k in one pass.\n"
                 "--threads N: quantize also on N threads (1..256, default 1), its runs interleaved with\n"
                 "           the one-thread runs: threads, quantize_threads_gbs (wall GB/s of float32\n"
                 "           input) and quantize_threads_speedup (over the one-thread figure).\n"
                 "--qpath P: v1k / v2k only: the quantizer's vector path (default auto: the best this\n"
                 "           CPU has; avx512 runs two super-blocks per 16-lane vector); all write the\n"
                 "           same bytes; reported as quantize_path.\n");
}

int bench_kernels(int argc, char **argv)
{
    static const struct option lo[] = {{"help", no_argument, NULL, 'h'},     {"rows", required_argument, NULL, 'r'},
                                       {"cols", required_argument, NULL, 'c'},   {"qrows", required_argument, NULL, 'R'},
                                       {"qcols", required_argument, NULL, 'C'},  {"reps", required_argument, NULL, 'n'},
                                       {"impl", required_argument, NULL, 'i'},   {"json", no_argument, NULL, 'j'},
                                       {"stream-mib", required_argument, NULL, 's'},
                                       {"gptq", required_argument, NULL, 'g'},
                                       {"preset", required_argument, NULL, 'p'},
                                       {"threads", required_argument, NULL, 't'},
                                       {"qpath", required_argument, NULL, 'q'},
                                       {NULL, 0, NULL, 0}};
    long rows = 32768, cols = 14336, qrows = 4096, qcols = 14336, reps = 5, stream_mib = 1024, grows = 0, gcols = 0, gtok = 0;
    int json = 0, ch, threads = 1;
    const char *preset = "v1";
    kern_impl impl = KERN_AUTO;
    kq_qpath qpath = KQ_QAUTO;
    while ((ch = cli_getopt_long(argc, argv, "hr:c:R:C:n:i:js:g:p:t:q:", lo, NULL, NULL)) != -1) {
        char *end = NULL;
        long v = 0;
        if (ch == 'r' || ch == 'c' || ch == 'R' || ch == 'C' || ch == 'n' || ch == 's') {
            const char *opt = "?"; /* the option's long name, for the message */
            for (const struct option *l = lo; l->name; l++)
                if (l->val == ch) opt = l->name;
            v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > (1L << 20))
                return cli_usage_error("bench kernels", "--%s %s: expected an integer 1..1048576", opt, optarg);
            if ((ch == 'c' || ch == 'C') && v % 128) return cli_usage_error("bench kernels", "--%s %ld: a multiple of 128", opt, v);
        }
        switch (ch) {
        case 'h': usage(stdout); return 0;
        case 'r': rows = v; break;
        case 'c': cols = v; break;
        case 'R': qrows = v; break;
        case 'C': qcols = v; break;
        case 'n': reps = v; break;
        case 's': stream_mib = v; break;
        case 'g':
            if (sscanf(optarg, "%ldx%ldx%ld", &grows, &gcols, &gtok) != 3 || grows < 1 || gcols < 1 || gtok < 1 ||
                grows > (1L << 20) || gcols > (1L << 17) || gtok > (1L << 20))
                return cli_usage_error("bench kernels", "--gptq %s: expected ROWSxCOLSxTOKENS, e.g. 4096x14336x2048", optarg);
            break;
        case 'i':
            if (!strcmp(optarg, "auto")) impl = KERN_AUTO;
            else if (!strcmp(optarg, "scalar")) impl = KERN_SCALAR;
            else if (!strcmp(optarg, "avx2")) impl = KERN_AVX2;
            else return cli_usage_error("bench kernels", "--impl %s: expected auto, scalar or avx2", optarg);
            break;
        case 'q': {
            static const kq_qpath paths[] = {KQ_QAUTO, KQ_QPLAIN, KQ_QAVX2, KQ_QAVX512};
            int found = 0;
            for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++)
                if (!strcmp(optarg, kq_qpath_name(paths[k]))) qpath = paths[k], found = 1;
            if (!found) return cli_usage_error("bench kernels", "--qpath %s: expected auto, plain, avx2 or avx512", optarg);
            break;
        }
        case 'j': json = 1; break;
        case 't':
            v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > PAR_MAX_THREADS)
                return cli_usage_error("bench kernels", "--threads %s: expected an integer 1..%d", optarg, PAR_MAX_THREADS);
            threads = (int)v;
            break;
        case 'p':
            if (strcmp(optarg, "v1") && strcmp(optarg, "v1k") && strcmp(optarg, "v2k"))
                return cli_usage_error("bench kernels", "--preset %s: expected v1, v1k or v2k", optarg);
            preset = optarg;
            break;
        default: return cli_bad_option("bench kernels", argc, argv);
        }
    }
    if (strcmp(preset, "v1")) {
        if (grows) return cli_usage_error("bench kernels", "--gptq: only with --preset v1");
        return bench_kq(preset, rows, cols, qrows, qcols, reps, stream_mib, json,
                        impl == KERN_SCALAR ? KQ_SCALAR : impl == KERN_AVX2 ? KQ_AVX2 : KQ_AUTO, qpath, threads);
    }
    if (qpath != KQ_QAUTO) return cli_usage_error("bench kernels", "--qpath: only with --preset v1k or v2k");
    kern_impl used = kern_impl_set(impl);
    if (impl == KERN_AVX2 && used != KERN_AVX2) return cli_usage_error("bench kernels", "--impl avx2: this CPU lacks AVX2/FMA/F16C");
    gsl_rng *r = rng_new(1, 0);
    if (!r) { d2_err_set("out of memory"); return cli_fail(D2_ENOMEM); }
    long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    const int K = 3, b1 = 2;

    double stream = measure_stream((size_t)stream_mib << 20, (int)reps);

    /* quantize throughput */
    float *w = heavy_tailed(r, qrows, qcols);
    if (!w) { gsl_rng_free(r); d2_err_set("out of memory"); return cli_fail(D2_ENOMEM); }
    mwq_config cfg;
    mwq_config_default(&cfg);
    const quantizer qz = {.run = run_mwq, .free = free_mwq, .cfg = &cfg};
    qspeed qs;
    int qrc = time_quantize(&qz, w, qrows, qcols, reps < 3 ? (int)reps : 3, threads, &qs);
    free(w);
    if (qrc) { gsl_rng_free(r); return cli_fail(qrc); }

    double gwall = 0, gcpu = 0;
    if (grows) {
        float *gw = malloc((size_t)grows * (size_t)gcols * sizeof *gw), *gx = malloc((size_t)gtok * (size_t)gcols * sizeof *gx);
        if (!gw || !gx) { free(gw); free(gx); gsl_rng_free(r); d2_err_set("out of memory"); return cli_fail(D2_ENOMEM); }
        for (long i = 0; i < grows * gcols; i++) gw[i] = (float)(0.02 * gsl_ran_tdist(r, 3.0));
        for (long i = 0; i < gtok * gcols; i++) gx[i] = (float)gsl_ran_gaussian(r, (i % gcols) % 16 == 5 ? 8.0 : 1.0);
        mwq_config gc;
        mwq_config_default(&gc);
        snprintf(gc.mode, sizeof gc.mode, "gptq");
        mwq_matrix *gm;
        double t = clock_mono_s(), tc = cpu_now();
        int grc = mwq_matrix_quantize(gw, grows, gcols, &gc, gx, gtok, &gm);
        gwall = clock_mono_s() - t;
        gcpu = cpu_now() - tc;
        free(gw);
        free(gx);
        if (grc) { gsl_rng_free(r); return cli_fail(grc); }
        mwq_matrix_free(gm);
    }

    /* dot: big (memory) and small (compute) matrices */
    mwq_matrix *big, *small;
    int rc = random_matrix(rows, cols, b1, K, r, &big);
    if (!rc) rc = random_matrix(128, 4096, b1, K, r, &small);
    if (rc) { gsl_rng_free(r); return cli_fail(rc); }
    long nx = cols > 4096 ? cols : 4096, ny = rows > 128 ? rows : 128;
    float *x = malloc((size_t)nx * sizeof *x), *y = malloc((size_t)ny * sizeof *y);
    kern_act *a, *as;
    kern_act_new(cols, 128, &a);
    kern_act_new(4096, 128, &as);
    for (long i = 0; i < nx; i++) x[i] = (float)gsl_ran_gaussian(r, 1.0);
    kern_act_set(a, x);
    kern_act_set(as, x);
    gsl_rng_free(r);
    double bigbytes = 0, gwk[4] = {0};
    json_t *jl = json_array();
    if (!json) {
        printf("kernels: %s path, one core; L3 reported by sysconf: %.1f MiB\n", kern_impl_name(used), llc > 0 ? llc / 1048576.0 : 0.0);
        printf("stream read bandwidth (%ld MiB): %.2f GB/s\n", stream_mib, stream);
        printf("quantize rtn V1 (search + 3 levels) %ld x %ld: %.3f GB/s of float32 input (%.2f s wall; %.3f GB/s by thread CPU time)\n",
               qrows, qcols, qs.gbs, qs.wall_s, qs.cpu_gbs);
        printf("quantize rtn V1 on %d threads: %.3f GB/s of float32 input (wall), %.2fx the one-thread figure\n", threads,
               qs.threads_gbs, qs.threads_gbs / qs.gbs);
        if (grows) printf("gptq V1 %ld x %ld, %ld calibration tokens: %.2f s wall, %.2f s thread CPU\n", grows, gcols, gtok, gwall, gcpu);
        printf("dot (mat-vec, int8 activations per group of 128) on %ld x %ld, levels 1..k fused:\n", rows, cols);
        printf("  %5s %4s %9s %9s %12s %11s %10s %8s %10s\n", "level", "bits", "Gw/s", "GB/s", "mem_bound", "cpu_bound", "of_mem", "nearer", "incr_Gw/s");
    }
    for (int k = 1; k <= K; k++) {
        bigbytes += (double)big->chunk_bytes[k - 1];
        double tb = time_matvec(big, 1, k, a, y, (int)reps);
        double ts = time_matvec(small, 1, k, as, y, (int)reps * 20);
        double ti = time_matvec(big, k, k, a, y, (int)reps);
        double nw = (double)rows * cols, gw = nw / tb / 1e9, gbs = bigbytes / tb / 1e9;
        double bpw = bigbytes / nw, membound = stream / bpw, cpubound = 128.0 * 4096 / ts / 1e9;
        const char *nearer = fabs(log(gw / membound)) < fabs(log(gw / cpubound)) ? "memory" : "compute";
        gwk[k] = gw;
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "level", json_integer(k));
            json_object_set_new(o, "bits", json_integer(b1 + k - 1));
            json_object_set_new(o, "dot_gw_s", json_real(gw));
            json_object_set_new(o, "dot_gbs", json_real(gbs));
            json_object_set_new(o, "packed_bits_per_weight", json_real(8 * bpw));
            json_object_set_new(o, "memory_bound_gw_s", json_real(membound));
            json_object_set_new(o, "compute_bound_gw_s", json_real(cpubound));
            json_object_set_new(o, "fraction_of_memory_bound", json_real(gw / membound));
            json_object_set_new(o, "nearer", json_string(nearer));
            json_object_set_new(o, "incremental_gw_s", json_real(nw / ti / 1e9));
            json_array_append_new(jl, o);
        } else {
            printf("  %5d %4d %9.2f %9.2f %12.2f %11.2f %9.0f%% %8s %10.2f\n", k, b1 + k - 1, gw, gbs, membound, cpubound,
                   100 * gw / membound, nearer, nw / ti / 1e9);
        }
    }
    if (!json)
        printf("  (levels 1..k fused in one pass; incr = level k alone added to level k-1's result;\n"
               "   mem_bound = stream / packed bytes per weight; cpu_bound = same kernel, 128 x 4096 in L2)\n");
    json_t *jr = json_array();
    if (cols % KREF_SUPER == 0) { /* the reference layouts need whole super-blocks */
        rc = bench_kref(rows, cols, reps, stream, x, json, "v1", gwk, used == KERN_AVX2 ? KQ_AVX2 : KQ_SCALAR, jr);
        if (rc) {
            json_decref(jl); json_decref(jr);
            free(x); free(y); kern_act_free(a); kern_act_free(as); mwq_matrix_free(big); mwq_matrix_free(small);
            return cli_fail(rc);
        }
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "impl", json_string(kern_impl_name(used)));
        json_object_set_new(o, "l3_bytes_sysconf", json_integer(llc));
        json_object_set_new(o, "stream_gbs", json_real(stream));
        json_quantize(o, &qs, NULL, threads);
        json_object_set_new(o, "stream_bytes", json_integer((json_int_t)stream_mib << 20));
        if (grows) {
            json_object_set_new(o, "gptq_shape", json_pack("[i,i,i]", (json_int_t)grows, (json_int_t)gcols, (json_int_t)gtok));
            json_object_set_new(o, "gptq_wall_s", json_real(gwall));
            json_object_set_new(o, "gptq_cpu_s", json_real(gcpu));
        }
        json_finish(o, qrows, qcols, rows, cols, "int8 per group of 128", jl, jr);
    } else {
        json_decref(jl);
        json_decref(jr);
    }
    free(x);
    free(y);
    kern_act_free(a);
    kern_act_free(as);
    mwq_matrix_free(big);
    mwq_matrix_free(small);
    kern_impl_set(KERN_AUTO);
    return 0;
}
