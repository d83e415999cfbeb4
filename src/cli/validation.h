/* validation.h - what `d2moe execute --spec` and `d2moe validate` share: a
 * sweep spec of kind execute, and the child processes of this binary a
 * point of it runs (`d2moe calibrate` sampling the reads its model issues,
 * `d2moe execute` of the point), as argument vectors, and running them.
 * The rounds, retries, rejections and summaries stay with each command. */
#ifndef D2_CLI_VALIDATION_H
#define D2_CLI_VALIDATION_H

#include "core/fileio.h"
#include "core/param.h"
#include "results/sweep.h"

/* Load a sweep spec of kind execute (experiments/validation.ini); D2_EINVAL
 * naming the file when it is of another kind. */
int validation_spec_load(const char *path, int quick, sweep_spec **out);

/* Run this binary (/proc/self/exe) with av; the child is sent SIGTERM when
 * this process dies (a run outliving a killed validation would write into
 * its store); quiet: its standard output to /dev/null.  D2_OK with the
 * child's exit status in *status (128 + the signal when killed; 127 when
 * the binary could not be executed), D2_EIO when it could not be started
 * or waited for (fork, waitpid). */
int validation_run(char **av, int quiet, int *status);

/* `d2moe calibrate` before a run of point j: the profile to dev, its
 * reads from read_file (--read-file: the model file the run reads; see
 * validation_model_file) or, when read_file is NULL, from a temporary file
 * of file_size in dir; reads sampled a factor 1.25 apart over
 * calib_read_range of the point's model (model, default tiny-moe;
 * 64Ki..4Mi when it cannot be loaded or the range is empty), written to lo
 * and hi.  av (room for VALIDATION_CALIBRATE_ARGC and more the caller
 * adds) gets the arguments and a NULL; returns their count. */
#define VALIDATION_CALIBRATE_ARGC 20
int validation_calibrate_argv(const sweep_job *j, const char *dev, const char *dir, const char *file_size, const char *read_file,
                              char lo[32], char hi[32], char **av);

/* The model file a run of point j reads, made when missing: `d2moe execute`
 * of the point with --mwq-dir dir and --x-model-file (a child process that
 * resolves the point as a run does, generates the file and writes its path
 * to dir/model-pP.path; nothing runs).  path gets it.  D2_EIO when the
 * child fails (its message is on stderr). */
int validation_model_file(const sweep_job *j, const char *dir, size_t p, char path[FILEIO_PATH_MAX]);

/* The strings of a point's execute arguments. */
typedef struct validation_strs {
    char opt[SWEEP_MAX_AXES][16];
    char set[SWEEP_MAX_AXES][PARAM_STR_MAX * 2];
} validation_strs;
/* `d2moe execute` of point j: model, device, trace and seed as --KEY VALUE
 * (the device dev when not NULL), the other keys as --set KEY=VALUE (held
 * in s).  av gets them (2 + 2 * j->n at most); returns their count. */
int validation_execute_argv(const sweep_job *j, const char *dev, validation_strs *s, char **av);

/* The calibration's probes a run of execute is checked against, appended
 * at av[ac]: --x-probe-ref probe_ref --probe-tol probe_tol unless probe_ref
 * is "", --x-cold-probe-ref cold_ref unless cold_ref is "".  Returns the
 * new count. */
int validation_probe_argv(char **av, int ac, const char *probe_ref, const char *probe_tol, const char *cold_ref);

#endif
