/* validation.c - the spec and the child processes `execute --spec` and
 * `validate` share (see validation.h). */
#include "cli/validation.h"
#include "core/err.h"
#include "core/model.h"
#include "host/calib.h"
#include "results/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int validation_spec_load(const char *path, int quick, sweep_spec **out)
{
    sweep_spec *sp;
    D2_TRY(sweep_spec_load(path, quick, NULL, 0, runner_check, NULL, &sp));
    if (strcmp(sweep_spec_kind(sp), "execute")) {
        d2_err_set("%s: kind = %s: expected kind = execute", path, sweep_spec_kind(sp));
        sweep_spec_free(sp);
        return D2_EINVAL;
    }
    *out = sp;
    return D2_OK;
}

int validation_run(char **av, int quiet, int *status)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) D2_ERROR(D2_EIO, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* a run outliving a killed validation would write into its store */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(128 + SIGTERM);
        if (quiet) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0) { dup2(null, 1); close(null); } /* the children's tables: in the store */
        }
        execv("/proc/self/exe", av);
        _exit(127);
    }
    int st;
    pid_t w;
    while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {}
    if (w < 0) D2_ERROR(D2_EIO, "waitpid: %s", strerror(errno));
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return D2_OK;
}

int validation_calibrate_argv(const sweep_job *j, const char *dev, const char *dir, const char *file_size, const char *read_file,
                              char lo[32], char hi[32], char **av)
{
    const char *km = sweep_job_get(j, "model");
    if (!km) km = "tiny-moe";
    snprintf(lo, 32, "64Ki");
    snprintf(hi, 32, "4Mi");
    model mm;
    if (model_load(&mm, km) == D2_OK) { /* reads sampled around the level-chunk sizes */
        int64_t a, b;
        calib_read_range(model_expert_level_bytes(&mm, 2, 1, 128), model_expert_level_bytes(&mm, 2, 2, 128), &a, &b);
        if (b > 0) {
            snprintf(lo, 32, "%lld", (long long)a);
            snprintf(hi, 32, "%lld", (long long)b);
        }
    }
    const char *args[VALIDATION_CALIBRATE_ARGC] = {"d2moe", "calibrate", "-o", dev, "--dir", dir, "--file-size", file_size,
                                                   "--io-bytes", "16Mi", "--min-read", lo, "--max-read", hi, "--size-step",
                                                   "1.25", "--kernel-model", km};
    int n = VALIDATION_CALIBRATE_ARGC - 2;
    for (int i = 0; i < n; i++) av[i] = (char *)args[i];
    if (read_file) {
        av[n++] = "--read-file";
        av[n++] = (char *)read_file;
    }
    av[n] = NULL;
    return n;
}

int validation_model_file(const sweep_job *j, const char *dir, size_t p, char path[FILEIO_PATH_MAX])
{
    char out[FILEIO_PATH_MAX], pt[32];
    D2_TRY(fileio_pathf(out, sizeof out, "%s/model-p%zu.path", dir, p));
    snprintf(pt, sizeof pt, "%zu", p);
    char *av[2 * SWEEP_MAX_AXES + 16];
    validation_strs strs;
    /* the file depends on the model and the system's format, not on the
     * device: a shipped profile resolves the point before any calibration
     * made the spec's (device = host, written by calibrate) */
    int ac = validation_execute_argv(j, "env1", &strs, av);
    char *tail[] = {"--mwq-dir", (char *)dir, "--x-model-file", out};
    for (size_t k = 0; k < sizeof tail / sizeof tail[0]; k++) av[ac++] = tail[k];
    av[ac] = NULL;
    int st;
    D2_TRY(validation_run(av, 1, &st));
    if (st != 0) D2_ERROR(D2_EIO, "the model file of point %zu: execute failed (status %d)", p, st);
    FILE *f = fopen(out, "r");
    if (!f) D2_ERROR(D2_EIO, "%s: %s", out, strerror(errno));
    int ok = fgets(path, FILEIO_PATH_MAX, f) != NULL;
    fclose(f);
    unlink(out);
    size_t len = ok ? strlen(path) : 0;
    if (!len || path[len - 1] != '\n') D2_ERROR(D2_EIO, "%s: no model file path in it", out);
    path[len - 1] = 0;
    return D2_OK;
}

int validation_execute_argv(const sweep_job *j, const char *dev, validation_strs *s, char **av)
{
    int ac = 0;
    av[ac++] = "d2moe";
    av[ac++] = "execute";
    for (size_t k = 0; k < j->n; k++) {
        const char *key = j->key[k], *val = j->value[k];
        if (!strcmp(key, "model") || !strcmp(key, "device") || !strcmp(key, "trace") || !strcmp(key, "seed")) {
            snprintf(s->opt[k], sizeof s->opt[k], "--%s", key);
            av[ac++] = s->opt[k];
            av[ac++] = (char *)(dev && !strcmp(key, "device") ? dev : val);
        } else {
            snprintf(s->set[k], sizeof s->set[k], "%s=%s", key, val);
            av[ac++] = "--set";
            av[ac++] = s->set[k];
        }
    }
    return ac;
}

int validation_probe_argv(char **av, int ac, const char *probe_ref, const char *probe_tol, const char *cold_ref)
{
    if (probe_ref[0]) {
        av[ac++] = "--x-probe-ref";
        av[ac++] = (char *)probe_ref;
        av[ac++] = "--probe-tol";
        av[ac++] = (char *)probe_tol;
    }
    if (cold_ref[0]) { /* the cold probe: the memory kept its speed */
        av[ac++] = "--x-cold-probe-ref";
        av[ac++] = (char *)cold_ref;
    }
    return ac;
}
