/* param.h - one parameter table per configurable thing.
 *
 * A table row (name, type, offset, default, range, units, help) drives: the
 * INI reader for profiles, `--set table.key=value` overrides, `--help`
 * listings, the printed effective settings and the params rows stored with
 * every result.  The table does not know where its values are used.
 *
 * INI files: `key = value ; comment`, '#' or ';' start a comment line, one
 * optional section that must equal the table's section name.  Unknown key,
 * duplicate key, out-of-range value, malformed line, missing required key:
 * D2_EFORMAT with "path:line: key: reason". */
#ifndef D2_CORE_PARAM_H
#define D2_CORE_PARAM_H

#include "core/fileio.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PARAM_STR_MAX 128 /* bytes of a PARAM_STRING field, NUL included */
#define PARAM_MAX_DEFS 128
#define PARAM_PATH_MAX 4096 /* bytes of a resolved profile path */

typedef enum param_type {
    PARAM_INT,    /* int64_t; k/M/G/Ki.. suffixes allowed */
    PARAM_DOUBLE, /* double; k/M/G/Ki.. suffixes allowed */
    PARAM_BOOL,   /* int: 0/1, true/false, yes/no, on/off */
    PARAM_STRING, /* char[PARAM_STR_MAX] */
} param_type;

typedef struct param_def {
    const char *name;  /* key, [a-z0-9_] */
    param_type type;
    size_t offset;     /* offsetof(struct, field) */
    const char *def;   /* default as text; NULL = required */
    double min, max;   /* inclusive range for INT/DOUBLE */
    const char *units; /* e.g. "bytes", "bytes/s", "FLOP/s", "ns", "" */
    const char *help;  /* one line */
} param_def;

typedef struct param_table {
    const char *name;    /* prefix in --set and stored params: "model" */
    const char *section; /* INI section name */
    const param_def *defs;
    size_t n;
} param_table;

/* Fill every field with its default; required fields are zeroed. */
void param_defaults(const param_table *t, void *obj);

const param_def *param_find(const param_table *t, const char *key);

/* Parse and store one value.  `where` ("file:line" or "--set") prefixes the
 * error message.  `seen` (t->n bytes, may be NULL) marks keys given. */
int param_set(const param_table *t, void *obj, const char *key,
              const char *value, const char *where, unsigned char *seen);
/* The same, the error naming the key as `shown` (e.g. "sim.budget" as a
 * sweep spec or a readings file writes it; NULL: as param_set). */
int param_set_as(const param_table *t, void *obj, const char *key, const char *value, const char *where,
                 unsigned char *seen, const char *shown);

/* Where each value of an object came from, so that a check spanning several
 * keys (top_k <= experts) can name the line of the key it blames, or the
 * override that set it: filled by param_load_ini and param_apply_set_from. */
typedef struct param_origin {
    char path[PARAM_PATH_MAX];       /* the profile read ("" when none) */
    int line[PARAM_MAX_DEFS];        /* per table row: its line in path; 0 = not in the file (a default) */
    const char *via[PARAM_MAX_DEFS]; /* per row: the override that set it last ("--set", a reading's file);
                                        NULL = none.  Not copied: must live as long as the origin is read */
} param_origin;

/* Empty: every value a default, path (may be NULL) the file or a label. */
void param_origin_init(param_origin *o, const char *path);
/* The message prefix naming key: "path:LINE: key" for a key of the file,
 * "--set: table.key" for an override, "path: key" for a default ("key"
 * alone when o is NULL or has no path). */
void param_origin_where(const param_table *t, const param_origin *o, const char *key, char *buf, size_t n);
/* Of keys[0..n), the one a check that spans them should blame: the key set
 * last, an override before a line of the file before a default; ties go to
 * the earlier key (keys[0] when o is NULL). */
const char *param_origin_pick(const param_table *t, const param_origin *o, const char *const *keys, size_t n);
/* Both at once, for a check spanning several keys: the key to blame
 * (param_origin_pick) written with its line or option into where[n]
 * (param_origin_where); returns that key.  PARAM_BLAME(t, o, where, "k1",
 * "k2", ...) passes the keys as a list. */
const char *param_origin_blame(const param_table *t, const param_origin *o, char *where, size_t n, const char *const *keys,
                               size_t nk);
#define PARAM_BLAME(t, o, where, ...)                                                                   \
    param_origin_blame((t), (o), (where), sizeof(where), (const char *const[]){__VA_ARGS__},           \
                       sizeof(const char *const[]){__VA_ARGS__} / sizeof(const char *))

/* Defaults, then the file; every required key must be present.  o (may be
 * NULL) gets the line of each key. */
int param_load_ini(const param_table *t, void *obj, const char *path, param_origin *o);

/* Apply "[table.]key=value".  Returns D2_ENOTFOUND (no error message set)
 * when the prefix names another table, so a caller can try each table. */
int param_apply_set(const param_table *t, void *obj, const char *assignment);
/* The same, recording in o (may be NULL) that the key was set by `via`
 * ("--set", or a reading's file; kept as a pointer). */
int param_apply_set_from(const param_table *t, void *obj, const char *assignment, param_origin *o, const char *via);

/* Canonical text of a field (round-trips through param_set). */
void param_format(const param_def *d, const void *obj, char *buf, size_t n);

/* Call fn for every field, with "table.key" as name. */
typedef int (*param_visit_fn)(const char *key, const char *value,
                              const char *units, void *user);
int param_foreach(const param_table *t, const void *obj, param_visit_fn fn, void *user);

/* Print "key = value  ; units  help" lines. */
void param_print(const param_table *t, const void *obj, FILE *out);
/* Print the table's keys, defaults, ranges and help (for --help). */
void param_print_help(const param_table *t, FILE *out);

/* Profiles (models, devices, readings) are looked up by name in these
 * folders, first match wins:
 *   1. the folder given with --profiles DIR (param_profiles_dir_set)
 *   2. $D2MOE_PROFILES
 *   3. ./experiments under the current folder
 *   4. the installed data folder, $(datadir)/d2moe/experiments
 *   5. the build's source tree, <srcdir>/experiments
 * each holding <kind>s/<name>.ini (models/, devices/, readings/).  Folders
 * 3-5 are skipped when they do not exist; 1 and 2 are named by the user, so
 * a missing one is an error: main checks --profiles, and every lookup by
 * name (param_profile_find, param_profile_list) checks $D2MOE_PROFILES.
 * Whether folders 3-5 exist is looked up once a process (the first
 * lookup): a sweep's runs use the folders its jobs were identified with. */
#define PARAM_MAX_ROOTS 5
void param_profiles_dir_set(const char *dir);
/* D2_EINVAL naming the variable when $D2MOE_PROFILES is set (not empty) but
 * is not a folder. */
int param_profile_roots_check(void);
/* The folders in search order and what put each there ("--profiles",
 * "$D2MOE_PROFILES", "./experiments", "installed", "source tree"). */
size_t param_profile_roots(const char *roots[PARAM_MAX_ROOTS], const char *origins[PARAM_MAX_ROOTS]);
/* Resolve a profile name ("env1") to the first <root>/<kind>s/<name>.ini
 * that exists; D2_ENOTFOUND (naming the closest name and `d2moe list`)
 * when none does.  A name holding a '/' or ending in ".ini" is taken as a
 * path.  origin (may be NULL) gets the root's label. */
int param_profile_find(const char *kind, const char *name_or_path, char *out, size_t n, const char **origin);
int param_profile_path(const char *kind, const char *name_or_path, char *out, size_t n);
/* The one profile reader: resolve name_or_path for the table's kind
 * (t->name: "model", "device") and load it into obj (defaults, then the
 * file), o (may be NULL) getting where each value came from.  No cross-field
 * checks: a caller applies its overrides, then checks the effective values. */
int param_profile_read(const param_table *t, const char *name_or_path, void *obj, param_origin *o);
/* param_profile_read for an object of `size` bytes (sizeof the table's
 * struct), answered from a process's memo while the file is the same
 * version (fileio_memo_get, core/fileio.h):
 * a sweep reads each profile once, not once a run.  The same object and
 * origin as param_profile_read; a file that fails is not remembered. */
int param_profile_read_memo(const param_table *t, const char *name_or_path, void *obj, size_t size, param_origin *o);

/* param_profile_read, then check(obj, origin) when given (cross-field checks). */
int param_profile_load(const param_table *t, const char *name_or_path, void *obj,
                       int (*check)(const void *obj, const param_origin *o));
/* Sorted names of the profiles of a kind ("model", "device") over every
 * root (a name counted once: the first root's); free with param_names_free. */
int param_profile_list(const char *kind, char ***names, size_t *n);
void param_names_free(char **names, size_t n);

#endif
