/* readings.h - named readings of the paper and its testbed: a file
 * experiments/readings/NAME.ini of `table.key = value` lines (device.* and
 * modelling sim.* keys) applied identically to every system of a run, so that
 * "which reading produced this number" is one stored name.  It refuses what
 * would make a reading per-system or change the experiment itself: sections,
 * model.* keys, and the sim keys that pick a system, its parts or the
 * workload.  It does not decide what a reading should say: the files do,
 * each value with its source. */
#ifndef D2_SIM_READINGS_H
#define D2_SIM_READINGS_H

#include <stddef.h>
#include "core/param.h"

#define READINGS_MAX_SETS 64
/* Bytes of readings_text's line for the most settings a reading holds */
#define READINGS_TEXT_MAX (READINGS_MAX_SETS * (2 * PARAM_STR_MAX + 2))
#define READINGS_DEFAULT "datasheet" /* the reading of a run that names none */

typedef struct readings {
    char name[PARAM_STR_MAX];   /* the reading's name ("none": no file, nothing applied) */
    char path[PARAM_PATH_MAX];  /* its file ("" for none) */
    size_t n;                   /* settings */
    char set[READINGS_MAX_SETS][2 * PARAM_STR_MAX]; /* "table.key=value", in file order */
} readings;

/* Load NAME (experiments/readings/NAME.ini, found like a profile) or a path;
 * NULL or "" = READINGS_DEFAULT; "none" = an empty reading.  A bad file is
 * D2_EFORMAT with "path:line: key: reason". */
int readings_load(readings *r, const char *name_or_path);
/* Its settings as one line "k=v; k=v" (for the stored params). */
void readings_text(const readings *r, char *buf, size_t n);
/* Sorted names of the shipped readings (param_names_free). */
int readings_list(char ***names, size_t *n);

#endif
