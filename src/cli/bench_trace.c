/* bench_trace.c - `d2moe bench trace`: JSONL import throughput (MB/s) on a
 * synthetic Mixtral-format file, and `trace stats` time and peak RSS over a
 * 10-million-record .d2t (stats run in a child process so its peak RSS is
 * its own).  Inputs are generated from the Mixtral preset with a fixed seed
 * into --dir and removed afterwards. */
#include "cli/cli.h"
#include "core/clock.h"
#include "core/err.h"
#include "trace/gen.h"
#include "trace/import.h"
#include "trace/source.h"
#include "trace/stat.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe bench trace [--records N] [--jsonl-mb M] [--dir DIR] [--keep]\n\n"
                 "import: write a Mixtral-format JSONL of about M MB (default 64; problem, layer, token order\n"
                 "        like the real file), time `trace import` of it.  Target >= 50 MB/s.\n"
                 "stats:  write a .d2t of N records (default 10,000,000; Mixtral shape), time `trace stats`\n"
                 "        of it in a child process and report its peak RSS, also for N/10 records to\n"
                 "        show memory does not grow with the trace.  Target < 3 s.\n");
}

/* JSONL in the real file's order: per problem, per layer, per token. */
static int write_jsonl(const char *path, double mb, double *bytes)
{
    gen_params p;
    int rc = gen_preset_load("mixtral-8x7b", &p);
    if (rc) return rc;
    gen_model *m;
    D2_TRY(gen_model_new(&p, 1, &m));
    FILE *f = fopen(path, "w");
    if (!f) { gen_model_free(m); D2_ERROR(D2_EIO, "%s: cannot create", path); }
    const uint32_t L = 32, T = 256;
    uint16_t (*ex)[2] = malloc(sizeof *ex * L * T);
    float (*w)[2] = malloc(sizeof *w * L * T);
    if (!ex || !w) { fclose(f); free(ex); free(w); gen_model_free(m); D2_ERROR(D2_ENOMEM, "out of memory"); }
    long total = 0;
    for (uint32_t q = 0; total < mb * 1e6; q++) {
        gen_stream *s;
        if ((rc = gen_stream_new(m, q, &s))) break;
        for (uint32_t t = 0; t < T; t++) {
            gen_stream_next(s);
            for (uint32_t l = 0; l < L; l++) gen_stream_route(s, l, ex[l * T + t], w[l * T + t]);
        }
        gen_stream_free(s);
        for (uint32_t l = 0; l < L; l++)
            for (uint32_t t = 0; t < T; t++) {
                int n = fprintf(f, "{\"dataset\": \"gsm8k\", \"problem_id\": %u, \"layer\": %u, \"experts\": [%u, %u], "
                                   "\"gating_probs\": [%.17g, %.17g], \"token_idx\": %u}\n",
                                q, l, ex[l * T + t][0], ex[l * T + t][1], (double)w[l * T + t][0], (double)w[l * T + t][1], t);
                if (n > 0) total += n;
            }
    }
    free(ex);
    free(w);
    gen_model_free(m);
    if (fclose(f) && !rc) { rc = D2_EIO; d2_err_set("%s: write error", path); }
    *bytes = (double)total;
    return rc;
}

/* Run stats of path in a child; wall seconds and child's peak RSS (KiB). */
static int child_stats(const char *path, double *secs, long *rss_kib, unsigned long long *records)
{
    int pfd[2];
    if (pipe(pfd)) D2_ERROR(D2_EIO, "pipe failed");
    double t0 = clock_mono_s();
    pid_t pid = fork();
    if (pid < 0) D2_ERROR(D2_EIO, "fork failed");
    if (pid == 0) {
        close(pfd[0]);
        stat_params sp;
        stat_params_default(&sp);
        stat_acc *s;
        int rc = stat_file(path, &sp, &s);
        unsigned long long n = rc ? 0 : stat_records(s);
        if (!rc) stat_free(s);
        if (write(pfd[1], &n, sizeof n) != (ssize_t)sizeof n) _exit(3);
        _exit(rc ? 1 : 0);
    }
    close(pfd[1]);
    unsigned long long n = 0;
    ssize_t got = read(pfd[0], &n, sizeof n);
    close(pfd[0]);
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid) D2_ERROR(D2_EIO, "wait failed");
    *secs = clock_mono_s() - t0;
    *rss_kib = ru.ru_maxrss;
    *records = n;
    if (got != (ssize_t)sizeof n || !WIFEXITED(st) || WEXITSTATUS(st)) D2_ERROR(D2_EINTERNAL, "stats child failed on %s", path);
    return D2_OK;
}

static int gen_d2t(const char *path, uint64_t records)
{
    gen_params p;
    D2_TRY(gen_preset_load("mixtral-8x7b", &p));
    p.prefill = 128;
    p.decode = 128;
    p.requests = (int64_t)((records + 256 * 32 - 1) / (256 * 32));
    gen_model *m;
    D2_TRY(gen_model_new(&p, 1, &m));
    int rc = gen_write(m, path);
    gen_model_free(m);
    return rc;
}

/* Routes per second in the simulator's order (pos, layer, req) for R requests. */
static int source_rate(trace_source *s, uint32_t R, uint32_t P, double *rate)
{
    trace_shape sh;
    trace_source_shape(s, &sh);
    uint16_t e[32];
    float w[32];
    double t0 = clock_mono_s();
    for (uint32_t pos = 0; pos < P; pos++)
        for (uint32_t l = 0; l < sh.layers; l++)
            for (uint32_t q = 0; q < R; q++) D2_TRY(trace_source_route(s, q, pos, l, e, w, NULL));
    *rate = (double)P * sh.layers * R / (clock_mono_s() - t0);
    return D2_OK;
}

int bench_trace(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},         {"records", required_argument, NULL, 'r'},
                                         {"jsonl-mb", required_argument, NULL, 'j'}, {"dir", required_argument, NULL, 'd'},
                                         {"keep", no_argument, NULL, 'k'},          {NULL, 0, NULL, 0}};
    double records = 1e7, mb = 64;
    const char *dir = "/tmp";
    int keep = 0, c;
    opterr = 0;
    while ((c = cli_getopt_long(argc, argv, "h", opts, NULL, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'r': records = strtod(optarg, &end); if (*end || records < 1e4 || records > 1e10) return cli_usage_error("bench trace", "--records %s: expected 1e4..1e10", optarg); break;
        case 'j': mb = strtod(optarg, &end); if (*end || mb < 1 || mb > 1e4) return cli_usage_error("bench trace", "--jsonl-mb %s: expected 1..10000", optarg); break;
        case 'd': dir = optarg; break;
        case 'k': keep = 1; break;
        default: return cli_bad_option("bench trace", argc, argv);
        }
    }
    if (optind != argc) return cli_usage_error("bench trace", "unexpected argument '%s'", argv[optind]);
    char jsonl[1024], out[1024], big[1024], small[1024];
    snprintf(jsonl, sizeof jsonl, "%s/d2bench.%ld.jsonl", dir, (long)getpid());
    snprintf(out, sizeof out, "%s/d2bench.%ld.import.d2t", dir, (long)getpid());
    snprintf(big, sizeof big, "%s/d2bench.%ld.big.d2t", dir, (long)getpid());
    snprintf(small, sizeof small, "%s/d2bench.%ld.small.d2t", dir, (long)getpid());

    double bytes;
    int rc = write_jsonl(jsonl, mb, &bytes);
    if (rc) return cli_fail(rc);
    import_opts o = {0};
    o.format = "mixtral-jsonl";
    o.layers = 32; o.experts = 8; o.top_k = 2;
    import_report rep;
    double best = 1e30, best_cpu = 1e30;
    for (int rep_i = 0; rep_i < 3 && !rc; rep_i++) {
        double t0 = clock_mono_s(), c0 = cpu_seconds();
        rc = import_run(jsonl, out, &o, &rep);
        double t = clock_mono_s() - t0, ct = cpu_seconds() - c0;
        if (t < best) best = t;
        if (ct < best_cpu) best_cpu = ct;
    }
    if (rc) return cli_fail(rc);
    /* wall time suffers when other jobs share the cores; CPU time (user + sys) does not */
    printf("import mixtral-jsonl: %.1f MB, %llu records in %.3f s wall = %.1f MB/s, %.3f s CPU = %.1f MB/s (best of 3; target >= 50)\n",
           bytes / 1e6, (unsigned long long)rep.records, best, bytes / 1e6 / best, best_cpu, bytes / 1e6 / best_cpu);
    fflush(stdout);
    if (!keep) { remove(jsonl); remove(out); }

    double t0 = clock_mono_s();
    if ((rc = gen_d2t(big, (uint64_t)records)) || (rc = gen_d2t(small, (uint64_t)(records / 10)))) return cli_fail(rc);
    struct stat st;
    stat(big, &st);
    printf("generated %s (%.1f MB) and a tenth of it in %.2f s\n", big, (double)st.st_size / 1e6, clock_mono_s() - t0);
    fflush(stdout);
    double secs, secs_small;
    long rss, rss_small;
    unsigned long long n, n_small;
    if ((rc = child_stats(small, &secs_small, &rss_small, &n_small))) return cli_fail(rc);
    if ((rc = child_stats(big, &secs, &rss, &n))) return cli_fail(rc);
    printf("stats: %llu records in %.3f s = %.1f M records/s, peak RSS %.1f MiB  (target < 3 s)\n", n, secs, (double)n / secs / 1e6,
           (double)rss / 1024);
    printf("stats: %llu records in %.3f s, peak RSS %.1f MiB  (flat memory: RSS independent of length)\n", n_small, secs_small,
           (double)rss_small / 1024);
    trace_source *src;
    double rf, rg;
    if ((rc = trace_source_open_file(big, &src))) return cli_fail(rc);
    rc = source_rate(src, 32, 256, &rf);
    trace_source_free(src);
    if (!rc && !(rc = trace_source_open_gen("mixtral-8x7b", 1, &src))) {
        rc = source_rate(src, 32, 256, &rg);
        trace_source_free(src);
    }
    if (rc) return cli_fail(rc);
    printf("source: 32 requests x 256 positions x 32 layers: file %.1f M routes/s, generator %.1f M routes/s\n", rf / 1e6, rg / 1e6);
    if (!keep) { remove(big); remove(small); }
    return 0;
}
