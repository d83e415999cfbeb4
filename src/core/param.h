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

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PARAM_STR_MAX 128 /* bytes of a PARAM_STRING field, NUL included */
#define PARAM_MAX_DEFS 128

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

/* Defaults, then the file; every required key must be present. */
int param_load_ini(const param_table *t, void *obj, const char *path);

/* Apply "[table.]key=value".  Returns D2_ENOTFOUND (no error message set)
 * when the prefix names another table, so a caller can try each table. */
int param_apply_set(const param_table *t, void *obj, const char *assignment);

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
 * that do not exist are skipped. */
#define PARAM_MAX_ROOTS 5
void param_profiles_dir_set(const char *dir);
/* The folders in search order and what put each there ("--profiles",
 * "$D2MOE_PROFILES", "./experiments", "installed", "source tree"). */
size_t param_profile_roots(const char *roots[PARAM_MAX_ROOTS], const char *origins[PARAM_MAX_ROOTS]);
/* Resolve a profile name ("env1") to the first <root>/<kind>s/<name>.ini
 * that exists; D2_ENOTFOUND (naming the closest name and `d2moe list`)
 * when none does.  A name holding a '/' or ending in ".ini" is taken as a
 * path.  origin (may be NULL) gets the root's label. */
int param_profile_find(const char *kind, const char *name_or_path, char *out, size_t n, const char **origin);
int param_profile_path(const char *kind, const char *name_or_path, char *out, size_t n);
/* Bytes of a resolved profile path. */
#define PARAM_PATH_MAX 4096
/* The one profile loader: resolve name_or_path for the table's kind
 * (t->name: "model", "device"), load it into obj (defaults, then the file), then run
 * check(obj, path) when given (cross-field checks). */
int param_profile_load(const param_table *t, const char *name_or_path, void *obj,
                       int (*check)(const void *obj, const char *where));
/* Sorted names of the profiles of a kind ("model", "device") over every
 * root (a name counted once: the first root's); free with param_names_free. */
int param_profile_list(const char *kind, char ***names, size_t *n);
void param_names_free(char **names, size_t n);

#endif
