/* param.c - table-driven parameters: defaults, INI files, --set overrides.
 * INI syntax is parsed by inih; this file counts lines itself (inih reports
 * only the first error line) so every message names path:line. */
#include "core/param.h"
#include "core/err.h"
#include "core/text.h"
#include "core/vec.h"
#include "core/units.h"
#include "core/inifile.h"
#include "core/suggest.h"
#include "core/fileio.h"

#include <errno.h>
#include <stdatomic.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

const param_def *param_find(const param_table *t, const char *key)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->defs[i].name, key) == 0) return &t->defs[i];
    return NULL;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* `name`: the key as the message names it (d->name, or table.key for --set) */
static int set_one_named(const param_def *d, const char *name, void *obj, const char *value, const char *where)
{
    char *field = (char *)obj + d->offset;
    const char *rng = strstr(value, "..") ? "; a range lo..hi:step belongs in a sweep spec" : "";
    const char *usp = d->units[0] ? " " : "";
    switch (d->type) {
    case PARAM_INT: {
        int64_t v;
        int rc = units_parse_int64(value, &v);
        if (rc && rc != -2) D2_ERROR(D2_EFORMAT, "%s: %s: expected an integer, got \"%s\" (suffixes k M G T or Ki Mi Gi Ti, any case; a trailing B or B/s is ignored%s)", where, name, value, rng);
        if (rc == -2 || (double)v < d->min || (double)v > d->max) /* -2: beyond int64 */
            D2_ERROR(D2_ERANGE, "%s: %s: %s is outside [%.15g, %.15g]%s%s", where, name, value,
                     d->min, d->max, usp, d->units);
        memcpy(field, &v, sizeof v);
        return D2_OK;
    }
    case PARAM_DOUBLE: {
        double v;
        int rc = units_parse_double(value, &v);
        if (rc && rc != -2) D2_ERROR(D2_EFORMAT, "%s: %s: expected a number, got \"%s\" (suffixes k M G T or Ki Mi Gi Ti, any case; a trailing B or B/s is ignored%s)", where, name, value, rng);
        if (rc == -2 || v < d->min || v > d->max) /* -2: beyond double */
            D2_ERROR(D2_ERANGE, "%s: %s: %s is outside [%.15g, %.15g]%s%s", where, name, value,
                     d->min, d->max, usp, d->units);
        memcpy(field, &v, sizeof v);
        return D2_OK;
    }
    case PARAM_BOOL: {
        int v;
        if (parse_bool(value, &v))
            D2_ERROR(D2_EFORMAT, "%s: %s: expected true/false, got \"%s\"", where, name, value);
        memcpy(field, &v, sizeof v);
        return D2_OK;
    }
    case PARAM_STRING: {
        size_t len = strlen(value);
        /* a required string (no default: a profile's name) names something */
        if (!d->def && !len) D2_ERROR(D2_EFORMAT, "%s: %s: empty", where, name);
        if (len >= PARAM_STR_MAX)
            D2_ERROR(D2_ERANGE, "%s: %s: longer than %d characters", where, name, PARAM_STR_MAX - 1);
        /* a name is stored and printed: UTF-8 text without control characters */
        for (size_t i = 0, k; i < len; i += k)
            if (!(k = text_utf8_len((const unsigned char *)value + i, len - i)))
                D2_ERROR(D2_EFORMAT, "%s: %s: byte %zu is not UTF-8 text (or a control character)", where, name, i + 1);
        memcpy(field, value, len + 1);
        return D2_OK;
    }
    }
    D2_ERROR(D2_EINTERNAL, "%s: %s: bad parameter type", where, name);
}

static int set_one(const param_def *d, void *obj, const char *value, const char *where)
{
    return set_one_named(d, d->name, obj, value, where);
}

void param_defaults(const param_table *t, void *obj)
{
    for (size_t i = 0; i < t->n; i++) {
        const param_def *d = &t->defs[i];
        char *field = (char *)obj + d->offset;
        if (d->def == NULL) {
            switch (d->type) {
            case PARAM_INT: memset(field, 0, sizeof(int64_t)); break;
            case PARAM_DOUBLE: { double z = 0; memcpy(field, &z, sizeof z); break; }
            case PARAM_BOOL: memset(field, 0, sizeof(int)); break;
            case PARAM_STRING: field[0] = '\0'; break;
            }
            continue;
        }
        /* defaults are written by us: a failure here is a bug in a table */
        if (set_one(d, obj, d->def, "default") != D2_OK) abort();
    }
}

int param_set(const param_table *t, void *obj, const char *key, const char *value,
              const char *where, unsigned char *seen)
{
    return param_set_as(t, obj, key, value, where, seen, NULL);
}

int param_set_as(const param_table *t, void *obj, const char *key, const char *value, const char *where,
                 unsigned char *seen, const char *shown)
{
    const param_def *d = param_find(t, key);
    if (!d) D2_ERROR(D2_EFORMAT, "%s: %s: unknown key for %s", where, key, t->name);
    size_t idx = (size_t)(d - t->defs);
    if (seen && seen[idx])
        D2_ERROR(D2_EFORMAT, "%s: %s: given twice", where, key);
    char full[2 * PARAM_STR_MAX]; /* after --set the message names the key as typed there: table.key */
    snprintf(full, sizeof full, "%s.%s", t->name, d->name);
    D2_TRY(set_one_named(d, shown ? shown : strcmp(where, "--set") ? d->name : full, obj, value, where));
    if (seen) seen[idx] = 1;
    return D2_OK;
}

/* ---- INI files ------------------------------------------------------- */

typedef struct load_ctx {
    const param_table *t;
    void *obj;
    param_origin *o; /* may be NULL */
    unsigned char seen[PARAM_MAX_DEFS];
} load_ctx;

void param_origin_init(param_origin *o, const char *path)
{
    memset(o, 0, sizeof *o);
    snprintf(o->path, sizeof o->path, "%s", path ? path : "");
}

/* 2: an override, 1: a line of the file, 0: a default or unknown */
static int origin_rank(const param_table *t, const param_origin *o, const char *key, size_t *idx)
{
    const param_def *d = param_find(t, key);
    if (!d || !o) return 0;
    *idx = (size_t)(d - t->defs);
    return o->via[*idx] ? 2 : o->line[*idx] > 0 ? 1 : 0;
}

void param_origin_where(const param_table *t, const param_origin *o, const char *key, char *buf, size_t n)
{
    size_t i = 0;
    switch (origin_rank(t, o, key, &i)) {
    case 2: snprintf(buf, n, "%s: %s.%s", o->via[i], t->name, key); break;
    case 1: snprintf(buf, n, "%s:%d: %s", o->path, o->line[i], key); break;
    default:
        if (o && o->path[0]) snprintf(buf, n, "%s: %s", o->path, key);
        else snprintf(buf, n, "%s", key);
    }
}

const char *param_origin_pick(const param_table *t, const param_origin *o, const char *const *keys, size_t n)
{
    const char *best = keys[0];
    size_t i = 0;
    int br = origin_rank(t, o, keys[0], &i);
    for (size_t k = 1; k < n; k++) {
        int r = origin_rank(t, o, keys[k], &i);
        if (r > br) { best = keys[k]; br = r; }
    }
    return best;
}

static int load_entry(void *user, const char *section, const char *key, const char *value,
                      const char *path, int line)
{
    load_ctx *c = user;
    char where[PARAM_PATH_MAX + 16]; /* "path:line" */
    snprintf(where, sizeof where, "%s:%d", path, line);
    if (section[0] && strcmp(section, c->t->section) != 0)
        D2_ERROR(D2_EFORMAT, "%s: [%s]: unknown section (expected [%s])", where, section, c->t->section);
    D2_TRY(param_set(c->t, c->obj, key, value, where, c->seen));
    if (c->o) c->o->line[param_find(c->t, key) - c->t->defs] = line;
    return D2_OK;
}

int param_load_ini(const param_table *t, void *obj, const char *path, param_origin *o)
{
    if (t->n > PARAM_MAX_DEFS) D2_ERROR(D2_EINTERNAL, "%s: parameter table too large", t->name);
    param_defaults(t, obj);
    if (o) param_origin_init(o, path);
    load_ctx c;
    memset(&c, 0, sizeof c);
    c.t = t;
    c.obj = obj;
    c.o = o;
    int lines = 0;
    D2_TRY(inifile_parse(path, load_entry, &c, &lines));
    for (size_t i = 0; i < t->n; i++) {
        if (t->defs[i].def || c.seen[i]) continue;
        if (!lines) D2_ERROR(D2_EFORMAT, "%s: empty file: %s: required key missing", path, t->defs[i].name);
        D2_ERROR(D2_EFORMAT, "%s:%d: %s: required key missing", path, lines, t->defs[i].name);
    }
    return D2_OK;
}

int param_apply_set(const param_table *t, void *obj, const char *assignment)
{
    return param_apply_set_from(t, obj, assignment, NULL, NULL);
}

int param_apply_set_from(const param_table *t, void *obj, const char *assignment, param_origin *o, const char *via)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        D2_ERROR(D2_EINVAL, "--set %s: expected key=value", assignment);
    char key[PARAM_STR_MAX];
    size_t kl = (size_t)(eq - assignment);
    if (kl >= sizeof key) D2_ERROR(D2_EINVAL, "--set %s: key too long", assignment);
    memcpy(key, assignment, kl);
    key[kl] = '\0';
    const char *k = key;
    char *dot = strchr(key, '.');
    if (dot) {
        *dot = '\0';
        if (strcmp(key, t->name) != 0) return D2_ENOTFOUND;
        k = dot + 1;
    }
    if (!param_find(t, k)) {
        if (dot) D2_ERROR(D2_EINVAL, "--set %s: unknown key %s.%s", assignment, t->name, k);
        return D2_ENOTFOUND;
    }
    D2_TRY(param_set(t, obj, k, eq + 1, "--set", NULL));
    if (o) o->via[param_find(t, k) - t->defs] = via ? via : "--set";
    return D2_OK;
}

/* s (len bytes) into buf of n bytes as snprintf(buf, n, "%s", s) writes it */
static void put_str(char *buf, size_t n, const char *s, size_t len)
{
    if (!n) return;
    if (len >= n) len = n - 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
}

void param_format(const param_def *d, const void *obj, char *buf, size_t n)
{
    const char *field = (const char *)obj + d->offset;
    switch (d->type) {
    case PARAM_INT: { /* "%lld", without printf: a run stores every parameter */
        int64_t v;
        memcpy(&v, field, sizeof v);
        char tmp[24], *e = tmp + sizeof tmp, *p = e;
        uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
        do { *--p = (char)('0' + u % 10); u /= 10; } while (u);
        if (v < 0) *--p = '-';
        put_str(buf, n, p, (size_t)(e - p));
        break;
    }
    case PARAM_DOUBLE: {
        double v;
        memcpy(&v, field, sizeof v);
        if (v == floor(v) && fabs(v) < 1e18) { snprintf(buf, n, "%.0f", v); break; }
        for (int p = 6; p <= 17; p++) { /* shortest text that reads back the same */
            snprintf(buf, n, "%.*g", p, v);
            if (strtod(buf, NULL) == v) break;
        }
        break;
    }
    case PARAM_BOOL: { int v; memcpy(&v, field, sizeof v); put_str(buf, n, v ? "true" : "false", v ? 4 : 5); break; }
    case PARAM_STRING: put_str(buf, n, field, strlen(field)); break;
    }
}

int param_foreach(const param_table *t, const void *obj, param_visit_fn fn, void *user)
{
    char key[PARAM_STR_MAX * 2], val[PARAM_STR_MAX + 32];
    size_t tl = strlen(t->name);
    if (tl > PARAM_STR_MAX - 1) tl = PARAM_STR_MAX - 1;
    memcpy(key, t->name, tl);
    key[tl] = '.';
    for (size_t i = 0; i < t->n; i++) {
        put_str(key + tl + 1, sizeof key - tl - 1, t->defs[i].name, strlen(t->defs[i].name)); /* "table.key" */
        param_format(&t->defs[i], obj, val, sizeof val);
        D2_TRY(fn(key, val, t->defs[i].units, user));
    }
    return D2_OK;
}

void param_print(const param_table *t, const void *obj, FILE *out)
{
    char val[PARAM_STR_MAX + 32];
    for (size_t i = 0; i < t->n; i++) {
        const param_def *d = &t->defs[i];
        param_format(d, obj, val, sizeof val);
        fprintf(out, "%-22s = %-20s ; %s%s%s\n", d->name, val, d->units[0] ? d->units : "",
                d->units[0] ? ", " : "", d->help);
    }
}

void param_print_help(const param_table *t, FILE *out)
{
    for (size_t i = 0; i < t->n; i++) {
        const param_def *d = &t->defs[i];
        fprintf(out, "  %s.%-20s %s", t->name, d->name, d->help);
        if (d->units[0]) fprintf(out, " [%s]", d->units);
        if (d->def) fprintf(out, " (default %s", d->def);
        else fprintf(out, " (required");
        if (d->type == PARAM_INT || d->type == PARAM_DOUBLE) fprintf(out, "; %.6g..%.6g", d->min, d->max);
        fprintf(out, ")\n");
    }
}

static char g_profiles_dir[PARAM_PATH_MAX];

/* Which of the folders 3-5 exist, looked up once a process (a sweep
 * looked them up 12 times a run, most of them failing stats): 1 = yes,
 * 0 = no, -1 = not looked up yet.  Atomic: threads may look profiles up. */
static _Atomic int g_root_exists[3] = {-1, -1, -1};

void param_profiles_dir_set(const char *dir) { snprintf(g_profiles_dir, sizeof g_profiles_dir, "%s", dir ? dir : ""); }

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

size_t param_profile_roots(const char *roots[PARAM_MAX_ROOTS], const char *origins[PARAM_MAX_ROOTS])
{
    static char installed[PARAM_PATH_MAX], source[PARAM_PATH_MAX];
    size_t n = 0;
    const char *env = getenv("D2MOE_PROFILES");
    snprintf(installed, sizeof installed, "%s/experiments", D2_DATADIR);
    snprintf(source, sizeof source, "%s/experiments", D2_SRCDIR);
    const char *cand[PARAM_MAX_ROOTS] = {g_profiles_dir[0] ? g_profiles_dir : NULL, env && *env ? env : NULL,
                                         "experiments", installed, source};
    static const char *const labels[PARAM_MAX_ROOTS] = {"--profiles", "$D2MOE_PROFILES", "./experiments",
                                                        "installed", "source tree"};
    for (size_t i = 0; i < PARAM_MAX_ROOTS; i++) {
        if (!cand[i]) continue;
        /* an explicit folder counts even when missing: its lookups fail loudly */
        if (i >= 2) {
            if (g_root_exists[i - 2] < 0) g_root_exists[i - 2] = is_dir(cand[i]);
            if (!g_root_exists[i - 2]) continue;
        }
        roots[n] = cand[i];
        origins[n] = labels[i];
        n++;
    }
    return n;
}

int param_profile_roots_check(void)
{
    /* $D2MOE_PROFILES names one folder on purpose: a typo must not fall
     * through to the other folders unnoticed */
    const char *env = getenv("D2MOE_PROFILES");
    if (!env || !*env) return D2_OK;
    struct stat st;
    if (stat(env, &st) != 0) D2_ERROR(D2_EINVAL, "$D2MOE_PROFILES=%s: %s", env, strerror(errno));
    if (!S_ISDIR(st.st_mode)) D2_ERROR(D2_EINVAL, "$D2MOE_PROFILES=%s: not a directory", env);
    return D2_OK;
}

int param_profile_find(const char *kind, const char *name_or_path, char *out, size_t n, const char **origin)
{
    size_t len = strlen(name_or_path);
    if (origin) *origin = "path";
    if (strchr(name_or_path, '/') || (len > 4 && strcmp(name_or_path + len - 4, ".ini") == 0)) {
        if ((size_t)snprintf(out, n, "%s", name_or_path) >= n)
            D2_ERROR(D2_EINVAL, "%s: path too long", name_or_path);
        return D2_OK;
    }
    for (const char *p = name_or_path; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
            D2_ERROR(D2_EINVAL, "%s: not a %s name (letters a-z, digits, '-', '_', '.'); 'd2moe list %ss' lists them",
                     name_or_path, kind, kind);
    D2_TRY(param_profile_roots_check());
    const char *roots[PARAM_MAX_ROOTS], *origins[PARAM_MAX_ROOTS];
    size_t nr = param_profile_roots(roots, origins);
    for (size_t i = 0; i < nr; i++) {
        if ((size_t)snprintf(out, n, "%s/%ss/%s.ini", roots[i], kind, name_or_path) >= n)
            D2_ERROR(D2_EINVAL, "%s: path too long", name_or_path);
        if (access(out, F_OK) == 0) {
            if (origin) *origin = origins[i];
            return D2_OK;
        }
    }
    char **names = NULL, hint[200] = "";
    size_t nn = 0;
    if (param_profile_list(kind, &names, &nn) == D2_OK) {
        suggest_hint(name_or_path, (const char *const *)names, nn, hint, sizeof hint);
        param_names_free(names, nn);
    }
    d2_err_clear();
    D2_ERROR(D2_ENOTFOUND, "%s '%s': no such profile%s; 'd2moe list %ss' lists them and where they are looked up",
             kind, name_or_path, hint, kind);
}

int param_profile_path(const char *kind, const char *name_or_path, char *out, size_t n)
{
    return param_profile_find(kind, name_or_path, out, n, NULL);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int param_profile_list(const char *kind, char ***names, size_t *n)
{
    D2_TRY(param_profile_roots_check());
    const char *roots[PARAM_MAX_ROOTS], *origins[PARAM_MAX_ROOTS];
    size_t nr = param_profile_roots(roots, origins);
    char **a = NULL;
    size_t cnt = 0, cap = 0;
    int any = 0;
    for (size_t r = 0; r < nr; r++) {
        char dir[PARAM_PATH_MAX + 16]; /* a root and "/<kind>s" */
        snprintf(dir, sizeof dir, "%s/%ss", roots[r], kind);
        DIR *dp = opendir(dir);
        if (!dp) continue;
        any = 1;
        struct dirent *e;
        while ((e = readdir(dp)) != NULL) {
            size_t len = strlen(e->d_name);
            if (len <= 4 || strcmp(e->d_name + len - 4, ".ini") != 0 || e->d_name[0] == '.') continue;
            int dup = 0;
            for (size_t k = 0; k < cnt && !dup; k++) dup = strlen(a[k]) == len - 4 && !strncmp(a[k], e->d_name, len - 4);
            if (dup) continue;
            int rc = VEC_RESERVE(a, cap, cnt + 1);
            if (rc != D2_OK) { param_names_free(a, cnt); closedir(dp); return rc; }
            a[cnt] = strndup(e->d_name, len - 4);
            if (!a[cnt]) { param_names_free(a, cnt); closedir(dp); D2_ERROR(D2_ENOMEM, "out of memory"); }
            cnt++;
        }
        closedir(dp);
    }
    if (!any) {
        param_names_free(a, cnt);
        D2_ERROR(D2_ENOTFOUND, "no %ss/ folder in any profile folder (--profiles, $D2MOE_PROFILES, ./experiments, %s/experiments, %s/experiments)",
                 kind, D2_DATADIR, D2_SRCDIR);
    }
    if (cnt) qsort(a, cnt, sizeof *a, cmp_str);
    *names = a;
    *n = cnt;
    return D2_OK;
}

void param_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

int param_profile_read(const param_table *t, const char *name_or_path, void *obj, param_origin *o)
{
    char path[PARAM_PATH_MAX];
    D2_TRY(param_profile_path(t->name, name_or_path, path, sizeof path));
    return param_load_ini(t, obj, path, o);
}

int param_profile_read_memo(const param_table *t, const char *name_or_path, void *obj, size_t size, param_origin *o)
{
    char path[PARAM_PATH_MAX];
    D2_TRY(param_profile_path(t->name, name_or_path, path, sizeof path));
    /* remembered: the object, then its origin */
    const size_t n = size + sizeof(param_origin);
    unsigned char *buf = malloc(n);
    if (!buf) D2_ERROR(D2_ENOMEM, "out of memory");
    fileio_version v;
    int known = fileio_version_of(path, &v) == D2_OK;
    if (known && fileio_memo_get(t, path, &v, buf, n)) {
        memcpy(obj, buf, size);
        if (o) memcpy(o, buf + size, sizeof *o);
        free(buf);
        return D2_OK;
    }
    param_origin *org = (param_origin *)(void *)(buf + size); /* malloc's alignment: size is a struct's, a multiple of 8 */
    int rc = param_load_ini(t, obj, path, org);
    if (rc == D2_OK) {
        if (o) *o = *org;
        if (known) {
            memcpy(buf, obj, size);
            fileio_memo_put(t, path, &v, buf, n);
        }
    }
    free(buf);
    return rc;
}

int param_profile_load(const param_table *t, const char *name_or_path, void *obj,
                       int (*check)(const void *obj, const param_origin *o))
{
    param_origin o;
    D2_TRY(param_profile_read(t, name_or_path, obj, &o));
    return check ? check(obj, &o) : D2_OK;
}

const char *param_origin_blame(const param_table *t, const param_origin *o, char *where, size_t n, const char *const *keys,
                               size_t nk)
{
    const char *k = param_origin_pick(t, o, keys, nk);
    param_origin_where(t, o, k, where, n);
    return k;
}
