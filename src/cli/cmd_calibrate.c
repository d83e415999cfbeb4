/* cmd_calibrate.c - `d2moe calibrate`: measure this machine (src/host/calib)
 * and write a `kind = measured` device profile the simulator reads.  The
 * profile is written to a temporary file and renamed; SIGINT/SIGTERM/SIGHUP
 * unlink that temporary file (main.c's handler: calib_file_write_atomic
 * registers it with core/fileio; the storage test file never has a name). */
#include "cli/cli.h"
#include "core/device.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/model.h"
#include "core/units.h"
#include "core/version.h"
#include "host/calib.h"
#include "host/cpupin.h"

#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: d2moe calibrate [-o FILE] [--name NAME] [--dir DIR] [--file-size SIZE]\n"
            "                       [--min-read SIZE] [--max-read SIZE] [--size-step F] [--io-bytes SIZE]\n"
            "                       [--min-reps N] [--max-reps N] [--fresh-buffers]\n"
            "                       [--mem-size SIZE] [--threads N] [--seed N]\n"
            "                       [--kernel-model M | --no-kernels] [--no-interference] [--no-cold]\n"
            "                       [--pool-size SIZE] [--nice N] [--compute-cpu N|none] [--io-cpu N|none]\n"
            "                       [--host-stops SECONDS] [--read-file FILE] [--fit-stat mean|median]\n\n"
            "Measure this machine and write a device profile (kind = measured):\n"
            "  storage  a nameless temporary file of --file-size bytes (default 1Gi) in\n"
            "           --dir (default .), read at random 4 KiB-aligned offsets with the\n"
            "           page cache bypassed (O_DIRECT; posix_fadvise DONTNEED where the\n"
            "           filesystem refuses it), sizes --min-read..--max-read (default\n"
            "           4Ki..64Mi) a factor --size-step apart (default 2; each rounded up\n"
            "           to 4 KiB; 1.25 samples a range densely), --io-bytes per size (default 128Mi,\n"
            "           between --min-reps 5 and --max-reps 200 reads), sizes interleaved;\n"
            "           each size's mean read time, its stalls (reads over 10x its median)\n"
            "           left out, fitted to t = flash_lat_ns + size/flash_bw (weighted least\n"
            "           squares, GSL): the simulator adds loads up, so a load's expected\n"
            "           time is the one to predict, and on a shared disk the read time is\n"
            "           skewed to the right (--fit-stat median: the medians, as before\n"
            "           2026-12-08).  --read-file FILE: read FILE (an existing file, e.g.\n"
            "           the .mwq `d2moe execute` reads; at least twice --max-read) instead\n"
            "           of writing a temporary file: the disk serves a file by where and\n"
            "           how long ago it was written, and the reads to predict are the\n"
            "           run's (the interference and host-stops steps read it too).\n"
            "           Reads land in turn in a pool of --pool-size bytes\n"
            "           of the memory `d2moe execute`'s weight pool is (2 MiB-aligned,\n"
            "           transparent huge pages asked for: the page size under a read sets\n"
            "           its speed; the profile says how much the kernel gave), as\n"
            "           execute's loads go to the recycled buffers of its pool\n"
            "           (--fresh-buffers: a new malloc'd buffer per read, page faults\n"
            "           included).\n"
            "  memory   streaming read of --mem-size bytes (default 256Mi) by --threads\n"
            "           readers (default 1, the compute threads `execute` uses) -> mem_bw\n"
            "  compute  the MWQ kernels (quant/kern.h, V1: INT2 base + 2 sign levels,\n"
            "           group 128) on one expert of --kernel-model (default tiny-moe),\n"
            "           levels 1..3 x 1..32 tokens, one thread, thread CPU time (so a\n"
            "           shared machine's other processes do not inflate it); t = a + b T;\n"
            "           mixed by the V1 capacities 0.3/0.4/0.3 (tokens needing level k:\n"
            "           1, 0.7, 0.3) into the simulator's fp16_flops (2 W / b) and\n"
            "           records a (not used: noise-level here); b includes each token's SwiGLU\n"
            "           epilogue (silu(gate) * up, int8 activations for down; execute's\n"
            "           code), spread over the 2.0 levels a token uses on average;\n"
            "           dequant_rate = 1e16 (no FP16 copy: the kernels read packed codes).\n"
            "           The same kernels as execute calls them, per level k: gate and up\n"
            "           at level k alone, down over levels 1..k in one call (t = a + b T\n"
            "           each) -> swiglu_gu_rate_lk, swiglu_down_rate_lk (weights / b), and\n"
            "           the epilogue -> swiglu_epilogue_rate (FFN elements / its time):\n"
            "           the rates sim.nested_compute = swiglu costs each item with.\n"
            "           A probe (one pass of levels 1..3, one token) is recorded as\n"
            "           \"# probe_ns\" for execute's stability check.  Also a plain float32 y = W x loop (1024 x\n"
            "           4096) for reference; with --no-kernels its 16-token rate is\n"
            "           fp16_flops (the name is the simulator's, the rate is float32).\n"
            "  cold     the probe's pass on a copy of the expert from a pool of copies\n"
            "           (--pool-size, default 128Mi, beyond the CPU's caches) against the\n"
            "           same copy again (warm), thread CPU time, alternating blocks:\n"
            "           cold_weight_bw = pass bytes / (cold - warm), the simulator's\n"
            "           extra stream of an expert's stored bytes per unit compute\n"
            "           (--no-cold: 0); the probe's pass on the next copy each time\n"
            "           (wall, median of 21, a 128Mi pool as execute's) is recorded as \"# cold_probe_ns\" for\n"
            "           execute's check that the memory kept its speed\n"
            "  interference  passes over that pool timed alone and while a second thread\n"
            "           reads the disk (O_DIRECT, reads of a V1 level-1 chunk of\n"
            "           --kernel-model), thread CPU time: io_interference = with / alone\n"
            "           - 1, the simulator's slowdown of compute while a load is in flight;\n"
            "           and that reader's reads timed during the passes and while the\n"
            "           compute CPU spins (as execute's compute thread polls while it\n"
            "           waits), wall time: read_interference = during / spinning - 1,\n"
            "           the slowdown of a load from flash while an expert computes\n"
            "           (--no-interference: both 0)\n"
            "  host stops (--host-stops S; not by default)  the time the host takes\n"
            "           this machine's CPUs: real-time watcher threads on both CPUs while\n"
            "           the compute CPU runs passes over that pool for S seconds while\n"
            "           the I/O CPU spins (both busy, as in execute, nothing read), then\n"
            "           S seconds while the I/O CPU reads back to back (O_DIRECT,\n"
            "           the interference step's reads); printed and recorded as comments\n"
            "           (\"# host_taken_compute_frac_idle\" / \"_reading\",\n"
            "           \"# host_stopped_frac_idle\" / \"_reading\"), not a device parameter\n"
            "           (docs/log/validation.md, \"Host stops\"); needs both CPUs pinned\n"
            "           and root\n"
            "  clocks   the wall cost of one read of the monotonic clock and of the thread\n"
            "           CPU-time clock (\"# clock_mono_read_ns\", \"# clock_thread_cpu_read_ns\";\n"
            "           reported, not used: execute reads the first around every operation,\n"
            "           the second once per run)\n"
            "The CPU is the accelerator: unified = true, mem_bytes = host_mem_bytes = RAM.\n"
            "Where: the storage reads and the interference step's reader run on\n"
            "--io-cpu, everything else single-threaded (memory with 1 thread, compute,\n"
            "probes, cold, the interference step's passes) on --compute-cpu (default:\n"
            "the first and the second CPU this process may use, as `d2moe execute`\n"
            "places its compute and I/O threads; none with one CPU); recorded as\n"
            "\"# compute_cpu\" and \"# io_cpu\".  On this project's VM the same kernel\n"
            "pass ran 20-50%% slower on one vCPU than on the other (docs/host.md).\n"
            "--nice N: measure at that scheduling priority (negative needs root; -20\n"
            "shields the measurement from other processes on a shared machine).\n"
            "Output: -o FILE (default: the profile named --name, default host, i.e.\n"
            "experiments/devices/host.ini), written atomically.  Check it with\n"
            "`d2moe show device FILE`.\n");
}

static int parse_size(const char *opt, const char *arg, int64_t *out)
{
    if (units_parse_int64(arg, out) != 0 || *out <= 0)
        return cli_usage_error("calibrate", "%s %s: expected a positive size (e.g. 64Mi)", opt, arg);
    return 0;
}

static void fmt_ns(double ns, char *b, size_t n)
{
    if (ns < 1e4) snprintf(b, n, "%.0f ns", ns);
    else if (ns < 1e7) snprintf(b, n, "%.1f us", ns / 1e3);
    else snprintf(b, n, "%.2f ms", ns / 1e6);
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},        {"output", required_argument, NULL, 'o'},
        {"name", required_argument, NULL, 'n'},  {"dir", required_argument, NULL, 'd'},
        {"file-size", required_argument, NULL, 'f'}, {"min-read", required_argument, NULL, 1},
        {"max-read", required_argument, NULL, 2}, {"io-bytes", required_argument, NULL, 3},
        {"min-reps", required_argument, NULL, 4}, {"max-reps", required_argument, NULL, 5},
        {"fresh-buffers", no_argument, NULL, 6},  {"mem-size", required_argument, NULL, 7},
        {"threads", required_argument, NULL, 8}, {"seed", required_argument, NULL, 9},
        {"kernel-model", required_argument, NULL, 10}, {"no-kernels", no_argument, NULL, 11},
        {"nice", required_argument, NULL, 12}, {"size-step", required_argument, NULL, 13},
        {"no-interference", no_argument, NULL, 14}, {"no-cold", no_argument, NULL, 15},
        {"pool-size", required_argument, NULL, 16},
        {"compute-cpu", required_argument, NULL, 17}, {"io-cpu", required_argument, NULL, 18},
        {"host-stops", required_argument, NULL, 19}, {"read-file", required_argument, NULL, 20},
        {"fit-stat", required_argument, NULL, 21},
        {NULL, 0, NULL, 0}};
    calib_io_opts io;
    calib_io_opts_init(&io);
    const char *out_path = NULL, *name = "host";
    int64_t mem_size = 256LL << 20;
    long threads = 1, v;
    const char *kmodel = "tiny-moe";
    int kernels = 1, nice_v = 0, interference = 1, cold = 1;
    double host_stops_s = 0; /* --host-stops: seconds of each phase, 0 = not measured */
    int64_t pool_bytes = 128LL << 20;
    int compute_cpu = CPUPIN_DEFAULT, io_cpu = CPUPIN_DEFAULT;
    int c, st;
    while ((c = cli_getopt_long(argc, argv, "ho:n:d:f:", opts, NULL, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'o': out_path = optarg; break;
        case 'n': name = optarg; break;
        case 'd':
            if (strlen(optarg) >= sizeof io.dir) return cli_usage_error("calibrate", "--dir: path too long");
            if ((st = cli_dir_arg("calibrate", "--dir", optarg, 0))) return st; /* missing, a file or '': before measuring */
            snprintf(io.dir, sizeof io.dir, "%s", optarg);
            break;
        case 'f': if (parse_size("--file-size", optarg, &io.file_bytes)) return 2; break;
        case 1: if (parse_size("--min-read", optarg, &io.min_read)) return 2; break;
        case 2: if (parse_size("--max-read", optarg, &io.max_read)) return 2; break;
        case 3: if (parse_size("--io-bytes", optarg, &io.bytes_per_size)) return 2; break;
        case 4: if (cli_parse_long("calibrate", "--min-reps", optarg, 1, 100000, &v)) return 2; io.min_reps = (int)v; break;
        case 5: if (cli_parse_long("calibrate", "--max-reps", optarg, 1, 100000, &v)) return 2; io.max_reps = (int)v; break;
        case 6: io.fresh_buffers = 1; break;
        case 7: if (parse_size("--mem-size", optarg, &mem_size)) return 2; break;
        case 8: if (cli_parse_long("calibrate", "--threads", optarg, 1, 256, &threads)) return 2; break;
        case 9: if (cli_parse_long("calibrate", "--seed", optarg, 0, 2147483647L, &v)) return 2; io.seed = (uint64_t)v; break;
        case 10: kmodel = optarg; break;
        case 11: kernels = 0; break;
        case 14: interference = 0; break;
        case 15: cold = 0; break;
        case 17:
        case 18:
            if (cpupin_parse(c == 17 ? "--compute-cpu" : "--io-cpu", optarg, c == 17 ? &compute_cpu : &io_cpu))
                return cli_usage_error("calibrate", "%s", d2_err_msg());
            break;
        case 16:
            if (parse_size("--pool-size", optarg, &pool_bytes)) return 2;
            if (pool_bytes < (1LL << 20) || pool_bytes > (16LL << 30))
                return cli_usage_error("calibrate", "--pool-size %s: must be 1Mi..16Gi", optarg);
            break;
        case 19:
            if (cli_parse_double("calibrate", "--host-stops", optarg, 0.1, 600, 0, "seconds", &host_stops_s)) return 2;
            break;
        case 20: {
            struct stat rst;
            if (!optarg[0]) return cli_usage_error("calibrate", "--read-file is empty: give an existing file");
            if (strlen(optarg) >= sizeof io.read_file) return cli_usage_error("calibrate", "--read-file: path too long");
            if (stat(optarg, &rst) != 0)
                return cli_usage_error("calibrate", "--read-file %s: %s", optarg, strerror(errno));
            if (!S_ISREG(rst.st_mode)) return cli_usage_error("calibrate", "--read-file %s: not a regular file", optarg);
            snprintf(io.read_file, sizeof io.read_file, "%s", optarg);
            fileio_note_input(io.read_file); /* -o over it is refused */
            break;
        }
        case 21:
            if (!strcmp(optarg, "mean")) io.fit_mean = 1;
            else if (!strcmp(optarg, "median")) io.fit_mean = 0;
            else return cli_usage_error("calibrate", "--fit-stat %s: expected mean or median", optarg);
            break;
        case 13:
            if (cli_parse_double("calibrate", "--size-step", optarg, 1.05, 16, 0, "a factor", &io.size_step)) return 2;
            break;
        case 12:
            if ((st = cli_set_nice("calibrate", optarg, &v))) return st;
            nice_v = (int)v;
            break;
        default: return cli_bad_option("calibrate", argc, argv);
        }
    }
    if (optind != argc) return cli_usage_error("calibrate", "unexpected argument '%s'", argv[optind]);
    {
        int prc = cpupin_resolve(&compute_cpu, &io_cpu);
        if (prc == D2_EINVAL) return cli_usage_error("calibrate", "%s", d2_err_msg());
        if (prc) return cli_fail(prc);
    }
    if (!name[0]) return cli_usage_error("calibrate", "--name is empty: give the profile a name (letters a-z, digits, '-' and '_')");
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return cli_usage_error("calibrate", "--name %s: letters a-z, digits, '-' and '_' only", name);
    char path[FILEIO_PATH_MAX];
    if (!out_path) {
        int rc = param_profile_path("device", name, path, sizeof path);
        if (rc) return cli_fail(rc);
        out_path = path;
    }
    if (mem_size < (1 << 20)) return cli_usage_error("calibrate", "--mem-size: at least 1Mi");
    { /* fail before measuring when the profile cannot be written */
        char dir[FILEIO_PATH_MAX];
        int orc;
        if ((orc = fileio_dir_of(out_path, dir, sizeof dir, NULL)) != D2_OK) return cli_fail(orc);
        struct stat dst;
        /* a folder that is missing or not a folder is the argument's fault
         * (exit 2), as for every output; one it may not write in is not */
        int e = stat(dir, &dst) != 0 ? errno : S_ISDIR(dst.st_mode) ? 0 : ENOTDIR;
        if (e) {
            d2_err_set("%s: cannot create the profile: %s", out_path, strerror(e));
            return cli_fail(e == ENOENT || e == ENOTDIR ? D2_EINVAL : D2_EIO);
        }
        /* the kernel model is read only after the measuring starts: its
         * profile file, if it is one, noted as an input now, so -o over it
         * is refused here and not after minutes of measuring */
        char kpath[PARAM_PATH_MAX];
        if (param_profile_path("model", kmodel, kpath, sizeof kpath) == D2_OK) fileio_note_input(kpath);
        orc = fileio_out_check(out_path); /* a FIFO, device or symlink, or an input: refused (exit 2) */
        if (orc) return cli_fail(orc);
        if (access(dir, W_OK) != 0) {
            d2_err_set("%s: cannot create the profile: %s", out_path, errno == EROFS ? "read-only file system" : strerror(errno));
            return cli_fail(D2_EIO);
        }
    }

    signal(SIGXFSZ, SIG_IGN); /* a file size limit is an error to report, not a crash */

    char buf[64];
    if (io.read_file[0]) printf("storage: reading %s ...\n", io.read_file);
    else printf("storage: %s temporary file in %s ...\n", units_fmt_bytes((double)io.file_bytes, buf, sizeof buf), io.dir);
    fflush(stdout);
    char cpus[2][CPUPIN_NAME_MAX];
    printf("where: compute measured on %s, storage read from %s\n", cpupin_words(compute_cpu, cpus[0]),
           cpupin_words(io_cpu, cpus[1]));
    /* the storage reads from the I/O CPU, as execute's I/O loop reads */
    cpupin_saved orig = {.valid = 0};
    calib_io_result r;
    int rc = cpupin_self(io_cpu, &orig);
    io.buf_pool_bytes = pool_bytes; /* the reads rotate through a pool as large as the weights' one */
    if (rc == D2_OK) rc = calib_io_measure(&io, &r);
    cpupin_restore(&orig);
    if (rc) return cli_fail(rc);
    io.reader_cpu = io_cpu;
    if (io.read_file[0])
        printf("storage: file %s (%lld bytes, existing), page cache bypassed with %s\n", io.read_file, (long long)r.file_bytes,
               r.cache_bypass);
    else printf("storage: file %s, page cache bypassed with %s, written at %.0f MB/s\n", r.tmpfile, r.cache_bypass,
                r.write_bw / 1e6);
    if (r.buf_huge_bytes >= 0)
        printf("storage: reads land in turn in a %lld-byte pool of execute's kind of memory, %lld bytes of it in huge pages\n",
               (long long)r.buf_bytes, (long long)r.buf_huge_bytes);
    else printf("storage: reads land in turn in a %lld-byte pool of execute's kind of memory (huge pages unknown)\n",
                (long long)r.buf_bytes);
    printf("  %10s %6s %12s %12s %12s %12s %12s %9s\n", "read", "reads", "median", "mean", "min", "max", "fit", "MB/s");
    for (int i = 0; i < r.n; i++) {
        char a[32], b[32], cc[32], d[32], e[32];
        fmt_ns(r.pt[i].median_ns, a, sizeof a);
        fmt_ns(r.pt[i].mean_ns, e, sizeof e);
        fmt_ns(r.pt[i].min_ns, b, sizeof b);
        fmt_ns(r.pt[i].max_ns, cc, sizeof cc);
        fmt_ns(r.pt[i].fit_ns, d, sizeof d);
        printf("  %10s %6d %12s %12s %12s %12s %12s %9.1f\n", units_fmt_bytes((double)r.pt[i].size, buf, sizeof buf),
               r.pt[i].reps, a, e, b, cc, d,
               (double)r.pt[i].size / (r.fit_mean ? r.pt[i].mean_ns : r.pt[i].median_ns) * 1e3);
    }
    printf("storage fit (%s per size): flash_bw = %.0f B/s (%.1f MB/s), flash_lat_ns = %.0f, max |error| %.1f%%\n",
           r.fit_mean ? "mean without stalls" : "median", r.bw, r.bw / 1e6, r.lat_ns, 100 * r.max_rel_err);
    printf("storage stalls: %lld of %lld reads took more than %dx their size's median (%.1f ms in all; reported, not "
           "modelled: the fit leaves them out)\n", (long long)r.stalls, (long long)r.reads, CALIB_STALL_FACTOR, r.stall_ns / 1e6);
    fflush(stdout);

    double bw1, bwn = 0;
    int ncpu = calib_host_cpus();
    /* the rest single-threaded on the compute CPU, as execute computes; the
     * memory rate of several threads unpinned */
    if ((rc = cpupin_self(compute_cpu, &orig))) return cli_fail(rc);
    if ((rc = calib_mem_bw(mem_size, 1, 5, &bw1))) return cli_fail(rc);
    if (threads > 1) {
        cpupin_restore(&orig);
        if ((rc = calib_mem_bw(mem_size, (int)threads, 5, &bwn))) return cli_fail(rc);
        if ((rc = cpupin_self(compute_cpu, NULL))) return cli_fail(rc);
    }
    printf("memory: streaming read of %s: %.2f GB/s (1 thread)", units_fmt_bytes((double)mem_size, buf, sizeof buf), bw1 / 1e9);
    if (threads > 1) printf(", %.2f GB/s (%ld threads)", bwn / 1e9, threads);
    printf("\n");
    double gemv, gemm;
    if ((rc = calib_gemm_rate(1024, 4096, 1, 5, &gemv))) return cli_fail(rc);
    if ((rc = calib_gemm_rate(1024, 4096, 16, 3, &gemm))) return cli_fail(rc);
    printf("compute: float32 W x, W 1024 x 4096: %.2f GFLOP/s (1 token), %.2f GFLOP/s (16 tokens), 1 thread\n",
           gemv / 1e9, gemm / 1e9);

    calib_kern_result kr;
    double kw_b = 0, kw_a = 0, kflops = 0, kdeq = 1e16;
    double sw_gu[DEVICE_SWIGLU_LEVELS] = {0}, sw_dn[DEVICE_SWIGLU_LEVELS] = {0}, sw_epi = 0;
    model km;
    if (kernels) {
        if ((rc = model_load(&km, kmodel))) return cli_fail(rc);
        static const int toks[] = {1, 2, 4, 8, 16, 32};
        if ((rc = calib_kern_measure(km.hidden, km.expert_ffn, 128, 2, 3, toks, 6, 5, &kr))) return cli_fail(rc);
        static const double share[3] = {1.0, 0.7, 0.3}; /* tokens needing level k under caps 0.3/0.4/0.3 */
        double ws = 0;
        for (int k = 0; k < 3; k++) { kw_b += share[k] * kr.b_ns[k]; kw_a += share[k] * kr.a_ns[k]; ws += share[k]; }
        kw_b /= ws;
        kw_a /= ws;
        /* the epilogue runs once per token; the simulator charges per
         * (token, level), ws of them per token on average */
        kw_b += kr.epi_ns / ws;
        if (!(kw_b > 0)) { d2_err_set("calibrate: kernel time does not grow with tokens (machine too noisy?)"); return cli_fail(D2_ERANGE); }
        kflops = 2.0 * (double)kr.weights / (kw_b * 1e-9);
        /* The kernels work on the packed codes: there is no FP16 copy step,
         * so dequant_rate stays 1e16 (the simulator's memory floor is then
         * the packed bytes).  The intercept a (a fixed cost per call of the
         * three matrices) is recorded but not used: here it is noise, -30
         * to +77 us across calibrations minutes apart, against about 200 us
         * per token, and kernel_overhead_ns = 0.  (Turning a > 1 us into a
         * dequantization rate, as before, also switched the floor to an FP16
         * stream 3x the compute time: one noisy intercept made a prediction
         * 53% too slow.) */
        printf("kernels (%s, %s expert %lld x %lld, V1): per level time = a + b T:\n", kr.impl, km.name,
               (long long)km.expert_ffn, (long long)km.hidden);
        for (int k = 0; k < 3; k++) {
            printf("  level %d: a = %8.1f us, b = %8.1f us/token;", k + 1, kr.a_ns[k] / 1e3, kr.b_ns[k] / 1e3);
            for (int i = 0; i < kr.nt; i++) printf(" T%d %.2f ms", kr.tokens[i], kr.ns[k][i] / 1e6);
            printf("\n");
        }
        printf("  epilogue (silu(gate) * up, int8 for down): %.1f us/token\n", kr.epi_ns / 1e3);
        if ((rc = calib_swiglu_rates(&kr, DEVICE_SWIGLU_LEVELS, sw_gu, sw_dn, &sw_epi))) return cli_fail(rc);
        printf("  as execute calls them (gate+up at level k alone; down over levels 1..k in one call):\n");
        for (int k = 0; k < 3; k++)
            printf("  level %d: gate+up a = %7.1f us, b = %7.1f us/token; down 1..%d a = %7.1f us, b = %7.1f us/token\n",
                   k + 1, kr.gu_a_ns[k] / 1e3, kr.gu_b_ns[k] / 1e3, k + 1, kr.dn_a_ns[k] / 1e3, kr.dn_b_ns[k] / 1e3);
        printf("  mixed: a = %.1f us (not used), b = %.1f us/token (epilogue / 2.0 included) -> fp16_flops %.2f GFLOP/s, "
               "dequant_rate %.3g weights/s (no FP16 copy)\n",
               kw_a / 1e3, kw_b / 1e3, kflops / 1e9, kdeq);
    }
    /* what execute's own clock reads cost (reported: its timeline reads the
     * monotonic clock around every operation) */
    double clk_mono_ns = 0, clk_thread_ns = 0;
    if ((rc = calib_clock_cost(20000, 5, &clk_mono_ns, &clk_thread_ns))) return cli_fail(rc);
    printf("clocks: a monotonic clock read costs %.1f ns, a thread CPU-time read %.1f ns (median of 5 blocks of 20000)\n",
           clk_mono_ns, clk_thread_ns);
    calib_interference_result ir;
    memset(&ir, 0, sizeof ir);
    double probe_ns = 0, probe_fit_ns = 0, cold_probe_ns = 0;
    if (kernels) {
        calib_probe *pr;
        if ((rc = calib_probe_new(km.hidden, km.expert_ffn, &pr))) return cli_fail(rc);
        probe_ns = calib_probe_run(pr, 21);
        calib_probe_free(pr);
        /* the same pass predicted by the fits (one token per level) */
        for (int k = 0; k < 3; k++) probe_fit_ns += kr.a_ns[k] + kr.b_ns[k];
        printf("probe: one pass of levels 1..3 of a %s expert, one token: %.1f us (median of 21); the fits predict "
               "%.1f us (ratio %.3f)\n", km.name, probe_ns / 1e3, probe_fit_ns / 1e3, probe_ns / probe_fit_ns);
    }
    if (kernels && interference) {
        /* reads of the size execute issues for this model: a V1 level-1 chunk of one matrix */
        calib_io_opts io2;
        int64_t rb;
        calib_reader_io(&io, model_expert_level_bytes(&km, 2, 1, 128), &io2, &rb);
        if ((rc = calib_interference(&io2, km.hidden, km.expert_ffn, pool_bytes, rb, 60, &ir))) return cli_fail(rc);
        printf("interference: a pass over cold weights takes %.1f us alone, %.1f us while another thread reads (%lld-byte "
               "O_DIRECT reads, %lld of them; thread CPU time) -> io_interference %.3f\n", ir.alone_ns / 1e3,
               ir.with_io_ns / 1e3, (long long)ir.read_bytes, (long long)ir.reads, ir.x);
        printf("read interference: a read takes %.1f us while the compute CPU spins, %.1f us during those passes (medians of "
               "%lld and %lld reads, wall) -> read_interference %.3f\n", ir.read_spin_ns / 1e3, ir.read_passes_ns / 1e3,
               (long long)ir.reads_spin, (long long)ir.reads_passes, ir.y);
    }
    calib_cold_result cr;
    memset(&cr, 0, sizeof cr);
    if (kernels && cold) {
        if ((rc = calib_cold(km.hidden, km.expert_ffn, pool_bytes, 40, &cr))) return cli_fail(rc);
        printf("cold weights: a pass (%lld stored bytes) takes %.1f us warm, %.1f us on a copy from a pool of %d "
               "(thread CPU time) -> cold_weight_bw %.3g B/s%s\n", (long long)cr.pass_bytes, cr.warm_ns / 1e3,
               cr.cold_ns / 1e3, cr.copies, cr.bw, cr.bw > 0 ? "" : " (none: no slower than warm)");
        /* the cold probe: execute's check that the DRAM kept its speed */
        calib_cold_probe *cp;
        if ((rc = calib_cold_probe_new(km.hidden, km.expert_ffn, CALIB_COLD_PROBE_POOL_BYTES, &cp))) return cli_fail(rc);
        double touch_ns;
        cold_probe_ns = calib_cold_probe_run(cp, 21, &touch_ns);
        calib_cold_probe_free(cp);
        printf("cold probe: the probe's pass on the next copy of a 128 MiB pool (execute's) each time: %.1f us (median of 21, wall; "
               "the copy's pages touched first: %.1f us)\n", cold_probe_ns / 1e3, touch_ns / 1e3);
    }

    calib_host_stops_result hs;
    memset(&hs, 0, sizeof hs);
    if (host_stops_s > 0) {
        if (!kernels) return cli_usage_error("calibrate", "--host-stops runs kernel passes: not with --no-kernels");
        calib_io_opts io3;
        int64_t rb;
        calib_reader_io(&io, model_expert_level_bytes(&km, 2, 1, 128), &io3, &rb);
        if ((rc = calib_host_stops(&io3, compute_cpu, km.hidden, km.expert_ffn, pool_bytes, rb, host_stops_s, host_stops_s, &hs)))
            return cli_fail(rc);
        for (int ph = 0; ph < 2; ph++) {
            const calib_host_phase *P = ph ? &hs.reading : &hs.idle;
            double sp = (double)P->span_ns;
            printf("host stops, %s: %.2f s, the host took the compute CPU %.1f ms (%.2f%%), the I/O CPU %.1f ms (%.2f%%), both at "
                   "once %.1f ms in %lld spans (%.2f%%); a pass %.1f us (median of %d, wall)",
                   ph ? "reading" : "idle   ", sp / 1e9, P->taken_ns[0] / 1e6, 100 * P->taken_ns[0] / sp, P->taken_ns[1] / 1e6,
                   100 * P->taken_ns[1] / sp, P->stopped_ns / 1e6, (long long)P->stopped_spans, 100 * P->stopped_ns / sp,
                   P->pass_ns / 1e3, P->passes);
            if (ph) printf("; %lld reads of %lld bytes, %.2f GB/s", (long long)P->reads, (long long)hs.read_bytes,
                           (double)P->reads * (double)hs.read_bytes / sp);
            printf("\n");
        }
    }

    /* the profile */
    device d;
    param_defaults(&device_params, &d);
    snprintf(d.name, sizeof d.name, "%s", name);
    snprintf(d.kind, sizeof d.kind, "measured");
    d.host_mem_bytes = d.mem_bytes = calib_host_mem_bytes();
    d.unified = 1;
    d.mem_bw = threads > 1 && bwn > 0 ? bwn : bw1;
    d.mem_eff = 1;
    d.fp16_flops = kernels ? kflops : gemm;
    d.compute_eff = 1;
    if (kernels) d.dequant_rate = kdeq;
    d.io_interference = ir.x;
    d.read_interference = ir.y;
    d.cold_weight_bw = cr.bw;
    for (int k = 0; k < DEVICE_SWIGLU_LEVELS; k++) {
        d.swiglu_gu_rate[k] = sw_gu[k];
        d.swiglu_down_rate[k] = sw_dn[k];
    }
    d.swiglu_epilogue_rate = sw_epi;
    d.kernel_overhead_ns = 0;
    d.layer_overhead_ns = 0;
    d.page_cache_bytes = 0;
    d.flash_bw = r.bw;
    d.flash_lat_ns = (int64_t)(r.lat_ns + 0.5);
    d.flash_qd = 1;
    d.io_overhead_ns = 0;
    param_origin org; /* values measured here: messages say "calibrate: key" */
    param_origin_init(&org, "calibrate");
    if ((rc = device_check(&d, &org))) return cli_fail(rc);

    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m) { d2_err_set("calibrate: out of memory"); return cli_fail(D2_ENOMEM); }
    char when[64], cpu[256];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    calib_host_cpu_name(cpu, sizeof cpu);
    struct utsname u;
    if (uname(&u) != 0) memset(&u, 0, sizeof u);
    fprintf(m, "# This host, measured by `d2moe calibrate` (d2moe %s) on %s.\n", d2_version(), when);
    fprintf(m, "# Machine: %s, %d CPUs, %s %s %s.\n", cpu, ncpu, u.sysname, u.release, u.machine);
    fprintf(m, "# The CPU is the accelerator: unified memory, mem_bytes = host_mem_bytes = RAM.\n");
    fprintf(m, "# Measured at nice %d; load average (1 min) at the end: %.2f.\n", nice_v, calib_host_loadavg1());
    if (io.read_file[0])
        fprintf(m, "# Storage: the existing file %s (%lld bytes, --read-file); page cache bypassed with %s;\n", io.read_file,
                (long long)r.file_bytes, r.cache_bypass);
    else fprintf(m, "# Storage: %lld-byte temporary file (%s) in %s; page cache bypassed with %s;\n",
                 (long long)r.file_bytes, r.tmpfile, io.dir, r.cache_bypass);
    fprintf(m, "#   one reader (queue depth 1), random 4 KiB-aligned offsets, sizes interleaved,\n");
    fprintf(m, "#   %s; %s per size; fit t = flash_lat_ns + size/flash_bw\n",
            io.fresh_buffers ? "a fresh aligned buffer per read" : "reads landing in turn in a pool of execute's kind of memory",
            r.fit_mean ? "mean without the stalls" : "median");
    if (!io.fresh_buffers) {
        if (r.buf_huge_bytes >= 0)
            fprintf(m, "#   The pool (host/iobuf.h, --pool-size): %lld bytes, %lld of them in transparent huge pages.\n",
                    (long long)r.buf_bytes, (long long)r.buf_huge_bytes);
        else fprintf(m, "#   The pool (host/iobuf.h, --pool-size): %lld bytes, transparent huge pages asked for; how many unknown.\n",
                     (long long)r.buf_bytes);
    }
    fprintf(m, "#   (weighted least squares, weights 1/t^2; max |error| %.1f%%).\n", 100 * r.max_rel_err);
    fprintf(m, "#   io_overhead_ns = 0: the per-read software cost is inside flash_lat_ns.\n");
    fprintf(m, "#   Stalls (reported, not modelled; left out of the means): %lld of %lld reads took more than %dx their\n"
               "#   size's median, %.0f ns in all.\n", (long long)r.stalls, (long long)r.reads, CALIB_STALL_FACTOR, r.stall_ns);
    fprintf(m, "#   %10s %6s %14s %14s %14s %14s\n", "bytes", "reads", "median_ns", "mean_ns", "min_ns", "fit_ns");
    for (int i = 0; i < r.n; i++)
        fprintf(m, "#   %10lld %6d %14.0f %14.0f %14.0f %14.0f\n", (long long)r.pt[i].size, r.pt[i].reps, r.pt[i].median_ns,
                r.pt[i].mean_ns, r.pt[i].min_ns, r.pt[i].fit_ns);
    fprintf(m, "# Memory: streaming read of %lld bytes, median of 5: %.0f B/s one thread", (long long)mem_size, bw1);
    if (threads > 1) fprintf(m, ", %.0f B/s %ld threads", bwn, threads);
    fprintf(m, ";\n#   mem_bw is the %s figure.\n", threads > 1 && bwn > 0 ? "all-threads" : "one-thread");
    if (kernels) {
        fprintf(m, "# Compute: the MWQ kernels (%s path), one thread, one expert of %s (%lld weights),\n", kr.impl,
                km.name, (long long)kr.weights);
        fprintf(m, "#   V1 (INT2 base + 2 sign levels, group 128); kern_matmul of level k alone for T tokens,\n");
        fprintf(m, "#   median of 5 of the thread's CPU time (not inflated by other processes);\n");
        fprintf(m, "#   per level t = a + b T (weighted least squares):\n");
        for (int k = 0; k < 3; k++) {
            fprintf(m, "#   level %d: a = %.0f ns, b = %.0f ns/token;", k + 1, kr.a_ns[k], kr.b_ns[k]);
            for (int i = 0; i < kr.nt; i++) fprintf(m, " T=%d %.0f", kr.tokens[i], kr.ns[k][i]);
            fprintf(m, "\n");
        }
        fprintf(m, "#   SwiGLU epilogue (silu(gate) * up, int8 activations for down), per token: %.0f ns;\n", kr.epi_ns);
        fprintf(m, "#   mixed over levels by the tokens needing each under caps 0.3/0.4/0.3 (1, 0.7, 0.3),\n");
        fprintf(m, "#   plus the epilogue spread over the 2.0 levels a token uses:\n");
        fprintf(m, "#   b = %.0f ns/token -> fp16_flops = 2 W / b; a = %.0f ns, not used (noise-level here:\n", kw_b, kw_a);
        fprintf(m, "#   kernel_overhead_ns = 0).  dequant_rate = 1e16: the kernels work on the packed codes, no FP16\n");
        fprintf(m, "#   copy, so the memory floor is the packed bytes / mem_bw.\n");
        fprintf(m, "# SwiGLU rates (sim.nested_compute = swiglu): the calls execute makes, timed and fitted as above:\n"
                   "#   gate and up at level k alone (%lld weights), down over levels 1..k in one call (%lld weights);\n"
                   "#   swiglu_gu_rate_lk = weights / b, swiglu_down_rate_lk = weights / b (weights x tokens / s);\n"
                   "#   swiglu_epilogue_rate = %lld FFN elements / the epilogue's time per token; a not used:\n",
                (long long)kr.gu_weights, (long long)kr.dn_weights, (long long)kr.ffn);
        for (int k = 0; k < 3; k++) {
            fprintf(m, "#   level %d gate+up: a = %.0f ns, b = %.0f ns/token;", k + 1, kr.gu_a_ns[k], kr.gu_b_ns[k]);
            for (int i = 0; i < kr.nt; i++) fprintf(m, " T=%d %.0f", kr.tokens[i], kr.gu_ns[k][i]);
            fprintf(m, "\n#   level %d down 1..%d: a = %.0f ns, b = %.0f ns/token;", k + 1, k + 1, kr.dn_a_ns[k], kr.dn_b_ns[k]);
            for (int i = 0; i < kr.nt; i++) fprintf(m, " T=%d %.0f", kr.tokens[i], kr.dn_ns[k][i]);
            fprintf(m, "\n");
        }
        if (cold)
            fprintf(m, "# Cold weights: one pass (levels 1..3, one token, the three matrices: %lld stored bytes) took\n"
                       "#   %.0f ns on the copy just used (warm) and %.0f ns on the next of %d copies (%lld-byte pool, beyond\n"
                       "#   the caches), medians of 20 alternating blocks of 5, thread CPU time:\n"
                       "#   cold_weight_bw = bytes / (cold - warm) = %.6g B/s (0: no slower than warm).\n",
                    (long long)cr.pass_bytes, cr.warm_ns, cr.cold_ns, cr.copies, (long long)pool_bytes, cr.bw);
        else fprintf(m, "# Cold weights: not measured (--no-cold): cold_weight_bw = 0.\n");
        if (interference)
            fprintf(m, "# I/O interference: passes over that pool (cold weights) took %.0f ns alone and\n"
                       "#   %.0f ns while a second thread read the disk (%lld-byte O_DIRECT reads, a V1 level-1 chunk),\n"
                       "#   medians of 20 blocks of 5 of each, thread CPU time: io_interference = %.4f.\n",
                    ir.alone_ns, ir.with_io_ns, (long long)ir.read_bytes, ir.x);
        else fprintf(m, "# I/O interference: not measured (--no-interference): io_interference = 0.\n");
        if (interference)
            fprintf(m, "# Read interference: those reads took %.0f ns during the passes and %.0f ns while the compute\n"
                       "#   CPU spun (as execute's compute thread polls while it waits), medians of %lld and %lld reads\n"
                       "#   in 20 blocks of each, wall time: read_interference = %.4f.\n",
                    ir.read_passes_ns, ir.read_spin_ns, (long long)ir.reads_passes, (long long)ir.reads_spin, ir.y);
        else fprintf(m, "# Read interference: not measured (--no-interference): read_interference = 0.\n");
        if (host_stops_s > 0) {
            const calib_host_phase *I = &hs.idle, *R = &hs.reading;
            fprintf(m, "# Host stops (--host-stops %g): the time the host took the CPUs, from real-time watchers; passes\n"
                       "#   on the compute CPU while the I/O CPU spun, then while it read back to back (%lld-byte O_DIRECT reads,\n"
                       "#   %.2f GB/s).  Reported, not a device parameter (docs/log/validation.md, \"Host stops\"):\n",
                    host_stops_s, (long long)hs.read_bytes, (double)R->reads * (double)hs.read_bytes / (double)R->span_ns);
            fprintf(m, "# host_taken_compute_frac_idle = %.4f\n# host_taken_compute_frac_reading = %.4f\n",
                    (double)I->taken_ns[0] / (double)I->span_ns, (double)R->taken_ns[0] / (double)R->span_ns);
            fprintf(m, "# host_stopped_frac_idle = %.4f\n# host_stopped_frac_reading = %.4f\n",
                    (double)I->stopped_ns / (double)I->span_ns, (double)R->stopped_ns / (double)R->span_ns);
        }
        fprintf(m, "# Probe (execute compares its own runs of it before and after a timed run with this):\n");
        fprintf(m, "# " CALIB_NOTE_PROBE " = %.0f\n", probe_ns);
        fprintf(m, "# " CALIB_NOTE_COMPUTE_CPU " = %d   (the CPU the kernels, probes and passes ran on; -1: any)\n", compute_cpu);
        fprintf(m, "# " CALIB_NOTE_IO_CPU " = %d   (the CPU the storage reads ran on; -1: any)\n", io_cpu);
        fprintf(m, "# " CALIB_NOTE_PROBE_FIT " = %.4f   (the probe / the same pass from the kernel fits: 1 when the machine\n"
                   "#   kept its speed through the calibration)\n", probe_fit_ns > 0 ? probe_ns / probe_fit_ns : 0);
        if (cold_probe_ns > 0)
            fprintf(m, "# " CALIB_NOTE_COLD_PROBE " = %.0f   (the same pass on the next copy of the pool each time: the weights\n"
                       "#   from DRAM, as a run finds them; each copy's pages touched once first, untimed)\n", cold_probe_ns);
        fprintf(m, "# Reference: plain C float32 y = W x (1024 x 4096), one thread: %.0f FLOP/s (16 tokens),\n", gemm);
        fprintf(m, "#   %.0f FLOP/s (1 token).\n", gemv);
    } else {
        fprintf(m, "# Compute: fp16_flops is a float32 rate (no FP16 arithmetic on this CPU path):\n");
        fprintf(m, "#   plain C y = W x, W 1024 x 4096, 16 tokens, one thread, median of 3: %.0f FLOP/s\n", gemm);
        fprintf(m, "#   (1 token: %.0f FLOP/s).\n", gemv);
    }
    fprintf(m, "#   compute_eff = mem_eff = 1: the rates are effective; kernel and layer overheads 0.\n");
    fprintf(m, "# Clocks (wall per read, median of 5 blocks of 20000; execute reads the first around every\n"
               "#   operation and the second once per run):\n");
    fprintf(m, "# " CALIB_NOTE_CLOCK_MONO " = %.1f\n", clk_mono_ns);
    fprintf(m, "# " CALIB_NOTE_CLOCK_THREAD " = %.1f\n", clk_thread_ns);
    fprintf(m, "[device]\n");
    param_print(&device_params, &d, m);
    if (fclose(m) != 0 || !text) { free(text); d2_err_set("calibrate: out of memory"); return cli_fail(D2_ENOMEM); }
    rc = calib_file_write_atomic(out_path, text, len);
    free(text);
    if (rc) return cli_fail(rc);
    printf("wrote %s\n", out_path);
    return 0;
}

const cli_cmd cli_cmd_calibrate = {"calibrate", "measure this host's storage, memory and compute; write a device profile", run};
