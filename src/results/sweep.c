/* sweep.c - spec parsing and grid expansion, resumable multi-process
 * execution into one SQLite store (finished runs committed in batches),
 * shards (see sweep.h). */
#include "results/sweep.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/vec.h"
#include "core/hash.h"
#include "core/inifile.h"
#include "core/units.h"
#include "core/version.h"
#include "core/fileio.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_VALUES 100000 /* per axis */
#define MAX_JOBS 10000000

typedef struct axis {
    char key[128];
    char **values;
    size_t n, cap;
    int line;
    int zip; /* zip group id + 1, 0 = crossed */
    char *set; /* the --set KEY=VALUE that made this axis (line 0), or NULL */
    /* with set: override = 1 when it counts as one (the variant's); the
     * spec's own values it replaced (spec_values, spec_n, spec_line), or
     * added = 1 when the spec has no such axis */
    int override, added, spec_line;
    char **spec_values;
    size_t spec_n;
} axis;

static void values_free(char **v, size_t n)
{
    for (size_t k = 0; k < n; k++) free(v[k]);
    free(v);
}

struct sweep_spec {
    char path[FILEIO_PATH_MAX];
    int quick;                    /* apply the [quick] section */
    axis quick_axes[SWEEP_MAX_AXES];
    size_t nquick;
    char name[128], kind[64], description[256];
    axis axes[SWEEP_MAX_AXES];
    size_t naxes;
    char zip_text[256];
    int zip_line;
    int own_line[3];              /* line of name, kind, description (0 = not given) */
    sweep_job *jobs;
    size_t njobs;
    sweep_check_fn check;
    void *user;
    char *overrides;              /* canonical text of the --set overrides ("" = none) */
    char unchanged[1024];         /* the --sets that are none: "--set k=v, --set k=v" */
    char dropped[1024];           /* those of them sweep_spec_drop_unchanged undid */
    char variant[DB_VARIANT_MAX]; /* named with sweep_spec_name_variant, or "" */
};

static int axis_push(axis *a, const char *v)
{
    if (a->n == MAX_VALUES) D2_ERROR(D2_ERANGE, "%s: more than %d values", a->key, MAX_VALUES);
    D2_TRY(VEC_RESERVE(a->values, a->cap, a->n + 1));
    if (!(a->values[a->n] = strdup(v))) D2_ERROR(D2_ENOMEM, "out of memory");
    a->n++;
    return D2_OK;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
    return s;
}

/* A number's canonical text: integers in full, others in the fewest
 * significant digits (15 to 17) that read back as the same double, so no
 * two different values share a job. */
static void fmt_num(double v, char *buf, size_t n)
{
    if (v == floor(v) && fabs(v) < 1e18) {
        snprintf(buf, n, "%.0f", v);
        return;
    }
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, n, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* "lo..hi:step" or "lo..hi*factor" */
static int expand_range(axis *a, const char *item, const char *where)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", item);
    char *dots = strstr(buf, "..");
    *dots = '\0';
    char *hi_s = dots + 2, *step_s = NULL;
    int geometric = 0;
    char *sep = strpbrk(hi_s, ":*");
    if (sep) {
        geometric = *sep == '*';
        *sep = '\0';
        step_s = sep + 1;
    }
    double lo, hi, step = 1;
    if (*hi_s == '.' || units_parse_double(trim(buf), &lo) || units_parse_double(trim(hi_s), &hi) || /* "..." is no range */
        (step_s && units_parse_double(trim(step_s), &step)))
        D2_ERROR(D2_EFORMAT, "%s: %s: malformed range \"%s\" (expected lo..hi, lo..hi:step or lo..hi*factor, e.g. 200M..2600M:300M or 4..32*2)", where, a->key, item);
    if (lo > hi) D2_ERROR(D2_EFORMAT, "%s: %s: range \"%s\" has lo > hi", where, a->key, item);
    if (geometric ? !(step > 1) || lo <= 0 : !(step > 0))
        D2_ERROR(D2_EFORMAT, "%s: %s: range \"%s\": %s", where, a->key, item,
                 geometric ? "factor must be > 1 and lo > 0" : "step must be > 0");
    char num[64];
    for (long i = 0;; i++) {
        double v = geometric ? lo * pow(step, (double)i) : lo + step * (double)i;
        if (v > hi * (1 + 1e-12)) break;
        if (i >= MAX_VALUES) D2_ERROR(D2_ERANGE, "%s: %s: range \"%s\" has more than %d values", where, a->key, item, MAX_VALUES);
        fmt_num(v, num, sizeof num);
        D2_TRY(axis_push(a, num));
    }
    return D2_OK;
}

static int valid_key(const char *k)
{
    if (!strcmp(k, "model") || !strcmp(k, "device") || !strcmp(k, "trace") || !strcmp(k, "seed") || !strcmp(k, "readings")) return 1;
    const char *dot = strchr(k, '.');
    if (!dot || dot == k || !dot[1]) return 0;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-')) return 0;
    return 1;
}

static int parse_axis(sweep_spec *s, axis *a, const char *key, const char *value, const char *where, int line)
{
    snprintf(a->key, sizeof a->key, "%s", key);
    a->line = line;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", value);
    char *p = buf;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        char *item = trim(p);
        double v;
        int64_t iv;
        char num[64];
        if (!*item && (comma || a->n > 0)) D2_ERROR(D2_EFORMAT, "%s: %s: empty item in the list", where, key);
        if (!*item) break;
        if (strstr(item, "..")) D2_TRY(expand_range(a, item, where));
        else if (units_parse_int64(item, &iv) == 0) { /* numbers canonical: 200M -> 200000000; integers exact (a seed of 17 digits) */
            snprintf(num, sizeof num, "%lld", (long long)iv);
            D2_TRY(axis_push(a, num));
        } else if (units_parse_double(item, &v) == 0) {
            fmt_num(v, num, sizeof num);
            D2_TRY(axis_push(a, num));
        } else D2_TRY(axis_push(a, item));
        if (!comma) break;
        p = comma + 1;
    }
    if (a->n == 0) D2_ERROR(D2_EFORMAT, "%s: %s: empty list", where, key);
    if (s->check)
        for (size_t i = 0; i < a->n; i++) D2_TRY(s->check(key, a->values[i], where, s->user));
    return D2_OK;
}

static int spec_entry(void *user, const char *section, const char *key, const char *value,
                      const char *path, int line)
{
    sweep_spec *s = user;
    char where[FILEIO_PATH_MAX + 16]; /* "path:line" */
    snprintf(where, sizeof where, "%s:%d", path, line);
    if (!strcmp(section, "quick")) {
        /* the --quick variant: replaces the values of axes of [sweep] */
        if (!valid_key(key))
            D2_ERROR(D2_EFORMAT, "%s: %s: unknown key (expected model, device, trace, seed, readings or table.key)", where, key);
        for (size_t i = 0; i < s->nquick; i++)
            if (!strcmp(s->quick_axes[i].key, key)) D2_ERROR(D2_EFORMAT, "%s: %s: given twice", where, key);
        if (s->nquick == SWEEP_MAX_AXES) D2_ERROR(D2_ERANGE, "%s: more than %d axes", where, SWEEP_MAX_AXES);
        return parse_axis(s, &s->quick_axes[s->nquick++], key, value, where, line);
    }
    if (strcmp(section, "sweep") != 0)
        D2_ERROR(D2_EFORMAT, "%s: %s: keys belong in a [sweep] (or [quick]) section", where, key);
    /* the spec's own keys, each once (a second one replaced the first) */
    static const char *const own[] = {"name", "kind", "description", "zip"};
    for (int i = 0; i < 4; i++) {
        int *at = i < 3 ? &s->own_line[i] : &s->zip_line;
        if (strcmp(key, own[i])) continue;
        if (*at) D2_ERROR(D2_EFORMAT, "%s: %s: given twice (first at line %d)", where, key, *at);
        *at = line;
    }
    if (!strcmp(key, "name")) {
        /* a name that can be a part of a file name (and is not cut short) */
        if (!value[0] || strchr(value, '/') || !strcmp(value, ".") || !strcmp(value, ".."))
            D2_ERROR(D2_EFORMAT, "%s: name \"%s\": expected a name that can be part of a file name (no '/', not . or ..)", where, value);
        if (strlen(value) >= sizeof s->name) D2_ERROR(D2_EFORMAT, "%s: name: longer than %zu bytes", where, sizeof s->name - 1);
        snprintf(s->name, sizeof s->name, "%s", value);
        return D2_OK;
    }
    if (!strcmp(key, "kind")) { /* the two kinds a spec has: run by sweep, or by execute / validate */
        if (strcmp(value, "simulate") && strcmp(value, "execute"))
            D2_ERROR(D2_EFORMAT, "%s: kind \"%s\": expected simulate (d2moe sweep) or execute (d2moe execute --spec, validate)", where,
                     value);
        snprintf(s->kind, sizeof s->kind, "%s", value);
        return D2_OK;
    }
    if (!strcmp(key, "description")) { snprintf(s->description, sizeof s->description, "%s", value); return D2_OK; }
    if (!strcmp(key, "zip")) {
        if (!value[strspn(value, " \t,|")]) /* parse_zip would find no group and zip nothing */
            D2_ERROR(D2_EFORMAT, "%s: zip: empty (expected axes to advance together, e.g. zip = model device)", where);
        if ((size_t)snprintf(s->zip_text, sizeof s->zip_text, "%s", value) >= sizeof s->zip_text)
            D2_ERROR(D2_EFORMAT, "%s: zip: longer than %zu characters", where, sizeof s->zip_text - 1);
        return D2_OK;
    }
    if (!valid_key(key))
        D2_ERROR(D2_EFORMAT, "%s: %s: unknown key (expected model, device, trace, seed, readings or table.key)", where, key);
    for (size_t i = 0; i < s->naxes; i++)
        if (!strcmp(s->axes[i].key, key)) D2_ERROR(D2_EFORMAT, "%s: %s: given twice", where, key);
    if (s->naxes == SWEEP_MAX_AXES) D2_ERROR(D2_ERANGE, "%s: more than %d axes", where, SWEEP_MAX_AXES);
    return parse_axis(s, &s->axes[s->naxes++], key, value, where, line);
}

/* [quick] values replace those of the same axis in [sweep] */
static int apply_quick(sweep_spec *s)
{
    for (size_t q = 0; q < s->nquick; q++) {
        axis *qa = &s->quick_axes[q], *a = NULL;
        for (size_t i = 0; i < s->naxes; i++)
            if (!strcmp(s->axes[i].key, qa->key)) a = &s->axes[i];
        if (!a) D2_ERROR(D2_EFORMAT, "%s:%d: [quick] %s: not an axis of [sweep]", s->path, qa->line, qa->key);
        if (!s->quick) continue;
        axis tmp = *a;
        *a = *qa;
        a->zip = tmp.zip;
        *qa = tmp;
    }
    return D2_OK;
}

static int parse_zip(sweep_spec *s)
{
    if (!s->zip_text[0]) return D2_OK;
    char where[FILEIO_PATH_MAX + 16], buf[256]; /* where: "path:line" */
    snprintf(where, sizeof where, "%s:%d", s->path, s->zip_line);
    snprintf(buf, sizeof buf, "%s", s->zip_text);
    int group = 0;
    char *gsave = NULL;
    for (char *g = strtok_r(buf, "|", &gsave); g; g = strtok_r(NULL, "|", &gsave)) {
        group++;
        size_t len = 0, members = 0;
        char *save = NULL;
        for (char *k = strtok_r(g, " \t,", &save); k; k = strtok_r(NULL, " \t,", &save)) {
            axis *a = NULL;
            for (size_t i = 0; i < s->naxes; i++)
                if (!strcmp(s->axes[i].key, k)) a = &s->axes[i];
            if (!a) D2_ERROR(D2_EFORMAT, "%s: zip: \"%s\" is not an axis of this sweep", where, k);
            if (a->zip) D2_ERROR(D2_EFORMAT, "%s: zip: \"%s\" is in two zip groups", where, k);
            if (members && a->n != len)
                D2_ERROR(D2_EFORMAT, "%s: zip: \"%s\" has %zu values, the group has %zu", where, k, a->n, len);
            len = a->n;
            a->zip = group;
            members++;
        }
        if (members < 2) D2_ERROR(D2_EFORMAT, "%s: zip: a group needs at least two axes", where);
    }
    return D2_OK;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sweep's name is part of the job: the same configuration in two
 * sweeps is stored once for each, so every figure's query finds its runs.
 * The inputs' content hashes (sweep_spec_identify) close the text. */
static int job_finish(sweep_job *j, const char *sweep, const char *variant)
{
    const char *lines[SWEEP_MAX_AXES];
    char tmp[SWEEP_MAX_AXES][SWEEP_KV_MAX];
    for (size_t i = 0; i < j->n; i++) {
        if ((size_t)snprintf(tmp[i], sizeof tmp[i], "%s=%s", j->key[i], j->value[i]) >= sizeof tmp[i])
            D2_ERROR(D2_ERANGE, "sweep %s: %s: a value longer than %zu bytes (%.40s...)", sweep, j->key[i],
                     sizeof tmp[i] - strlen(j->key[i]) - 2, j->value[i]);
        lines[i] = tmp[i];
    }
    qsort(lines, j->n, sizeof lines[0], cmp_kv);
    size_t off = 0, cap = sizeof j->text;
    int cut = 0;
#define JOB_APPEND(...) do { int w_ = snprintf(j->text + off, cap - off, __VA_ARGS__); \
                             if (w_ < 0 || (size_t)w_ >= cap - off) cut = 1; else off += (size_t)w_; } while (0)
    JOB_APPEND("sweep=%s\n", sweep);
    /* a named variant is its own set of jobs (auto variants differ in
     * their override lines already) */
    if (variant && *variant && !cut) JOB_APPEND("variant=%s\n", variant);
    for (size_t i = 0; i < j->n && !cut; i++) JOB_APPEND("%s\n", lines[i]);
    if (!cut) JOB_APPEND("%s", j->inputs);
#undef JOB_APPEND
    if (cut) D2_ERROR(D2_ERANGE, "sweep %s: job %zu: its configuration is longer than %d bytes", sweep, j->index, SWEEP_JOB_TEXT_MAX - 1);
    hash_mem_hex(j->text, strlen(j->text), j->hash);
    return D2_OK;
}

/* Units of the grid: a crossed axis is one unit; a zip group is one unit
 * whose members advance together.  Expanded in file order, last fastest. */
static int expand(sweep_spec *s)
{
    size_t unit_of[SWEEP_MAX_AXES], unit_len[SWEEP_MAX_AXES], nunits = 0;
    int unit_zip[SWEEP_MAX_AXES];
    for (size_t i = 0; i < s->naxes; i++) {
        size_t u = nunits;
        if (s->axes[i].zip)
            for (size_t k = 0; k < nunits; k++)
                if (unit_zip[k] == s->axes[i].zip) u = k;
        if (u == nunits) {
            unit_zip[nunits] = s->axes[i].zip;
            unit_len[nunits] = s->axes[i].n;
            nunits++;
        }
        unit_of[i] = u;
    }
    size_t total = 1;
    for (size_t u = 0; u < nunits; u++) {
        if (total > MAX_JOBS / unit_len[u])
            D2_ERROR(D2_ERANGE, "%s: the grid has more than %d jobs", s->path, MAX_JOBS);
        total *= unit_len[u];
    }
    s->jobs = calloc(total, sizeof *s->jobs);
    if (!s->jobs) D2_ERROR(D2_ENOMEM, "out of memory (%zu jobs)", total);
    s->njobs = total;
    for (size_t j = 0; j < total; j++) {
        size_t rest = j, idx[SWEEP_MAX_AXES];
        for (size_t u = nunits; u-- > 0;) {
            idx[u] = rest % unit_len[u];
            rest /= unit_len[u];
        }
        sweep_job *job = &s->jobs[j];
        job->index = j;
        job->n = s->naxes;
        for (size_t i = 0; i < s->naxes; i++) {
            job->key[i] = s->axes[i].key;
            job->value[i] = s->axes[i].values[idx[unit_of[i]]];
        }
        D2_TRY(job_finish(job, s->name, s->variant));
    }
    return D2_OK;
}

static void list_add(char *buf, size_t n, const char *set)
{
    size_t l = strlen(buf);
    snprintf(buf + l, n - l, "%s--set %s", l ? ", " : "", set);
}

/* The variant's overrides: the canonical text of the sets that count. */
static int overrides_update(sweep_spec *s)
{
    const char *sets[SWEEP_MAX_AXES];
    size_t n = 0;
    snprintf(s->unchanged, sizeof s->unchanged, "%s", s->dropped);
    for (size_t i = 0; i < s->naxes; i++) {
        if (s->axes[i].set && s->axes[i].override) sets[n++] = s->axes[i].set;
        if (s->axes[i].set && !s->axes[i].override) list_add(s->unchanged, sizeof s->unchanged, s->axes[i].set);
    }
    free(s->overrides);
    s->overrides = NULL;
    return db_overrides_canon(sets, n, &s->overrides);
}

/* "key=value" from the command line: the axis becomes that one value (or a
 * new single-value axis), so one assumption can change without editing the
 * spec; the job identities change with it.  A value the spec's axis already
 * has changes no job (each job of the narrowed grid is one of the spec's),
 * so it is no override: the runs stay the spec's own variant's. */
static int apply_sets(sweep_spec *s, const char *const *sets, size_t nsets)
{
    for (size_t i = 0; i < nsets; i++) {
        const char *eq = strchr(sets[i], '=');
        char key[128];
        if (!eq || eq == sets[i] || (size_t)(eq - sets[i]) >= sizeof key)
            D2_ERROR(D2_EINVAL, "--set %s: expected key=value", sets[i]);
        memcpy(key, sets[i], (size_t)(eq - sets[i]));
        key[eq - sets[i]] = '\0';
        if (!valid_key(key)) D2_ERROR(D2_EINVAL, "--set %s: unknown key (model, device, trace, seed, readings or table.key)", sets[i]);
        axis *a = NULL;
        for (size_t k = 0; k < s->naxes; k++)
            if (!strcmp(s->axes[k].key, key)) a = &s->axes[k];
        if (a && a->zip) D2_ERROR(D2_EINVAL, "--set %s: %s is a zipped axis", sets[i], key);
        axis nv;
        memset(&nv, 0, sizeof nv);
        int rc = parse_axis(s, &nv, key, eq + 1, "--set", 0);
        if (rc == D2_OK && nv.n != 1) { d2_err_set("--set %s: one value, not a list", sets[i]); rc = D2_EINVAL; }
        if (rc == D2_OK && !a && s->naxes == SWEEP_MAX_AXES) { d2_err_set("--set %s: more than %d axes", sets[i], SWEEP_MAX_AXES); rc = D2_ERANGE; }
        if (rc == D2_OK && !(nv.set = strdup(sets[i]))) { d2_err_set("out of memory"); rc = D2_ENOMEM; }
        if (rc != D2_OK) {
            values_free(nv.values, nv.n);
            return rc;
        }
        nv.override = 1;
        nv.added = !a;
        if (a && a->set) { /* set again: judged against the spec's own values, kept by the first */
            nv.added = a->added;
            nv.spec_values = a->spec_values;
            nv.spec_n = a->spec_n;
            nv.spec_line = a->spec_line;
            values_free(a->values, a->n);
        } else if (a) {
            nv.spec_values = a->values;
            nv.spec_n = a->n;
            nv.spec_line = a->line;
        }
        for (size_t k = 0; k < nv.spec_n; k++)
            if (!strcmp(nv.spec_values[k], nv.values[0])) nv.override = 0;
        if (a) free(a->set);
        else a = &s->axes[s->naxes++];
        *a = nv;
    }
    return overrides_update(s);
}

int sweep_spec_drop_unchanged(sweep_spec *s, sweep_same_fn same, void *user)
{
    /* judged first, on the jobs as they are; undone after */
    int drop[SWEEP_MAX_AXES] = {0}, any = 0;
    for (size_t i = 0; i < s->naxes; i++) {
        const axis *a = &s->axes[i];
        if (!a->set || !a->override || (!a->added && a->spec_n != 1)) continue;
        int all = 1;
        for (size_t j = 0; all && j < s->njobs; j++) {
            /* the job as the spec alone makes it: without the axis, or with the spec's value */
            sweep_job w = s->jobs[j];
            size_t k = 0;
            while (k < w.n && strcmp(w.key[k], a->key)) k++;
            if (k == w.n) continue;
            if (a->added) {
                w.key[k] = w.key[w.n - 1];
                w.value[k] = w.value[w.n - 1];
                w.n--;
            } else w.value[k] = a->spec_values[0];
            D2_TRY(same(&s->jobs[j], &w, a->key, &all, user));
        }
        drop[i] = all;
        any |= all;
    }
    if (!any) return D2_OK;
    size_t n = 0;
    for (size_t i = 0; i < s->naxes; i++) {
        axis *a = &s->axes[i];
        if (drop[i]) {
            list_add(s->dropped, sizeof s->dropped, a->set);
            values_free(a->values, a->n);
            free(a->set);
            if (a->added) continue;
            /* the spec's own axis back */
            a->values = a->spec_values;
            a->n = a->cap = a->spec_n;
            a->line = a->spec_line;
            a->set = NULL;
            a->spec_values = NULL;
            a->spec_n = 0;
        }
        s->axes[n++] = *a;
    }
    s->naxes = n;
    D2_TRY(overrides_update(s));
    free(s->jobs);
    s->jobs = NULL;
    s->njobs = 0;
    return expand(s);
}

int sweep_spec_load(const char *path, int quick, const char *const *sets, size_t nsets,
                    sweep_check_fn check, void *user, sweep_spec **out)
{
    *out = NULL;
    sweep_spec *s = calloc(1, sizeof *s);
    if (!s) D2_ERROR(D2_ENOMEM, "out of memory");
    snprintf(s->path, sizeof s->path, "%s", path);
    snprintf(s->kind, sizeof s->kind, "simulate");
    s->check = check;
    s->user = user;
    s->quick = quick;
    int lines = 0;
    int rc = inifile_parse(path, spec_entry, s, &lines);
    if (rc == D2_OK && !lines) {
        d2_err_set("%s: empty file: name: required key missing", path);
        rc = D2_EFORMAT;
    }
    if (rc == D2_OK && !s->name[0]) {
        d2_err_set("%s:%d: name: required key missing", path, lines);
        rc = D2_EFORMAT;
    }
    if (rc == D2_OK && s->naxes == 0) {
        d2_err_set("%s:%d: no axes (model, device, ..., table.key)", path, lines);
        rc = D2_EFORMAT;
    }
    if (rc == D2_OK) rc = apply_quick(s);
    if (rc == D2_OK) rc = parse_zip(s);
    if (rc == D2_OK) rc = apply_sets(s, sets, nsets);
    if (rc == D2_OK) rc = expand(s);
    if (rc != D2_OK) {
        sweep_spec_free(s);
        return rc;
    }
    *out = s;
    return D2_OK;
}

void sweep_spec_free(sweep_spec *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->naxes; i++) {
        for (size_t k = 0; k < s->axes[i].n; k++) free(s->axes[i].values[k]);
        free(s->axes[i].values);
        free(s->axes[i].set);
        values_free(s->axes[i].spec_values, s->axes[i].spec_n);
    }
    for (size_t i = 0; i < s->nquick; i++) {
        for (size_t k = 0; k < s->quick_axes[i].n; k++) free(s->quick_axes[i].values[k]);
        free(s->quick_axes[i].values);
    }
    free(s->jobs);
    free(s->overrides);
    free(s);
}

int sweep_spec_name_variant(sweep_spec *s, const char *name)
{
    D2_TRY(db_variant_name_check_for(name, sweep_spec_overrides(s)));
    snprintf(s->variant, sizeof s->variant, "%s", name);
    for (size_t j = 0; j < s->njobs; j++) D2_TRY(job_finish(&s->jobs[j], s->name, s->variant));
    return D2_OK;
}

int sweep_spec_identify(sweep_spec *s, sweep_inputs_fn fn, void *user)
{
    for (size_t j = 0; j < s->njobs; j++) {
        D2_TRY(fn(&s->jobs[j], s->jobs[j].inputs, sizeof s->jobs[j].inputs, user));
        D2_TRY(job_finish(&s->jobs[j], s->name, s->variant));
    }
    return D2_OK;
}

const char *sweep_spec_overrides(const sweep_spec *s) { return s->overrides ? s->overrides : ""; }
const char *sweep_spec_unchanged(const sweep_spec *s) { return s->unchanged; }

void sweep_spec_variant(const sweep_spec *s, char out[DB_VARIANT_MAX])
{
    if (s->variant[0]) snprintf(out, DB_VARIANT_MAX, "%s", s->variant);
    else db_variant_auto(sweep_spec_overrides(s), "", out);
}

const char *sweep_spec_name(const sweep_spec *s) { return s->name; }
const char *sweep_spec_kind(const sweep_spec *s) { return s->kind; }
const char *sweep_spec_path(const sweep_spec *s) { return s->path; }
const char *sweep_spec_description(const sweep_spec *s) { return s->description; }
size_t sweep_spec_size(const sweep_spec *s) { return s->njobs; }
int sweep_spec_has_quick(const sweep_spec *s) { return s->nquick > 0; }
const sweep_job *sweep_spec_job(const sweep_spec *s, size_t i) { return i < s->njobs ? &s->jobs[i] : NULL; }

const char *sweep_job_get(const sweep_job *j, const char *key)
{
    for (size_t i = 0; i < j->n; i++)
        if (!strcmp(j->key[i], key)) return j->value[i];
    return NULL;
}

static const axis *axis_named(const sweep_spec *s, const char *key)
{
    for (size_t i = 0; i < s->naxes; i++)
        if (!strcmp(s->axes[i].key, key)) return &s->axes[i];
    return NULL;
}

int sweep_spec_check_jobs(const sweep_spec *s, sweep_job_check_fn check, void *user)
{
    for (size_t j = 0; j < s->njobs; j++) {
        char key[128] = "";
        int rc = check(&s->jobs[j], key, sizeof key, user);
        if (rc == D2_OK) continue;
        char msg[1024], where[FILEIO_PATH_MAX + 16]; /* where: "path:line" */
        snprintf(msg, sizeof msg, "%s", d2_err_msg());
        const axis *a = key[0] ? axis_named(s, key) : NULL;
        if (!a) a = axis_named(s, "readings");
        if (!a) a = axis_named(s, "model");
        if (!a) a = &s->axes[0];
        if (a->line) snprintf(where, sizeof where, "%s:%d", s->path, a->line);
        else snprintf(where, sizeof where, "--set %s", a->set ? a->set : a->key);
        /* "KEY: message" once: the message may start with the key already */
        size_t kl = strlen(a->key);
        if (!strncmp(msg, a->key, kl) && msg[kl] == ':') d2_err_set("%s: %s", where, msg);
        else d2_err_set("%s: %s: %s", where, a->key, msg);
        return rc;
    }
    return D2_OK;
}

/* ---- execution -------------------------------------------------------- */

int sweep_job_stored(db *d, const sweep_job *j, int *stored)
{
    sqlite3_stmt *st;
    *stored = 0;
    D2_TRY(db_stmt_cached(d, "SELECT 1 FROM sweep_jobs WHERE job_hash = ? AND code_version = ?", &st));
    sqlite3_bind_text(st, 1, j->hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d2_version(), -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *stored = 1;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) { /* the message names what failed (a table, a lock), read before the reset */
        d2_err_set("%s: %s", db_path(d), sqlite3_errmsg(db_handle(d)));
        sqlite3_reset(st);
        return D2_EDB;
    }
    sqlite3_reset(st);
    return D2_OK;
}

typedef struct job_extra { const sweep_spec *s; const sweep_job *j; } job_extra;

/* Earlier failed runs of this job (any code version) are replaced by the
 * run being written, in its transaction: a rerun never piles up failures. */
static int drop_old_failures(db *d, int64_t run_id, const char *job_hash)
{
    sqlite3_stmt *st;
    D2_TRY(db_stmt_cached(d,
                          "DELETE FROM runs WHERE status = 'failed' AND id <> ? AND id IN "
                          "(SELECT run_id FROM params WHERE key = 'sweep.job' AND value = ?)",
                          &st));
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, job_hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) D2_ERROR(D2_EDB, "runs: %s", sqlite3_errstr(rc));
    return D2_OK;
}

static int replace_failure(db *d, int64_t run_id, void *user)
{
    const job_extra *x = user;
    return drop_old_failures(d, run_id, x->j->hash);
}

static int insert_job(db *d, int64_t run_id, void *user)
{
    job_extra *x = user;
    sqlite3_stmt *st;
    D2_TRY(drop_old_failures(d, run_id, x->j->hash));
    D2_TRY(db_stmt_cached(d, "INSERT INTO sweep_jobs(job_hash, code_version, sweep, job, run_id) VALUES(?,?,?,?,?)", &st));
    sqlite3_bind_text(st, 1, x->j->hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d2_version(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, x->s->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, x->j->text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, run_id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    /* stored meanwhile by another process: roll this copy back */
    if ((rc & 0xff) == SQLITE_CONSTRAINT) D2_ERROR(D2_EDB, "job %s already stored", x->j->hash);
    if (rc != SQLITE_DONE) D2_ERROR(D2_EDB, "sweep_jobs: %s", sqlite3_errstr(rc));
    return D2_OK;
}

/* The grid of this invocation: every job of the spec (after --quick,
 * --set, --as, readings; before sharding, so every shard of one sweep
 * writes the same rows), named by the XXH3-128 of its sorted job hashes,
 * with the time it started.  A grid asked for again keeps the later time:
 * the figures show the grid of the sweep that started last (db_sweep_runs). */
typedef struct grid_ctx { const sweep_spec *s; const char *at; } grid_ctx;

static int hash_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int grid_write(sqlite3 *h, void *user)
{
    (void)h;
    const grid_ctx *g = user;
    const sweep_spec *s = g->s;
    const char **hs = malloc((s->njobs + 1) * sizeof *hs);
    char *cat = malloc(s->njobs * 33 + 1);
    if (!hs || !cat) { free(hs); free(cat); D2_ERROR(D2_ENOMEM, "out of memory"); }
    for (size_t j = 0; j < s->njobs; j++) hs[j] = s->jobs[j].hash;
    qsort(hs, s->njobs, sizeof *hs, hash_cmp);
    size_t off = 0;
    for (size_t j = 0; j < s->njobs; j++) {
        memcpy(cat + off, hs[j], 32);
        cat[off + 32] = '\n';
        off += 33;
    }
    char grid[33], variant[DB_VARIANT_MAX];
    hash_mem_hex(cat, off, grid);
    free(cat);
    sweep_spec_variant(s, variant);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(h, "INSERT INTO sweep_grid(sweep, variant, grid, job_hash, at) VALUES(?,?,?,?,?)"
                                   " ON CONFLICT(grid, job_hash) DO UPDATE SET at = max(at, excluded.at)", -1, &st, NULL);
    if (rc != SQLITE_OK) { free(hs); D2_ERROR(D2_EDB, "sweep_grid: %s", sqlite3_errmsg(h)); }
    sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, variant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, grid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, g->at, -1, SQLITE_STATIC);
    for (size_t j = 0; j < s->njobs; j++) {
        sqlite3_bind_text(st, 4, hs[j], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) break;
    }
    sqlite3_finalize(st);
    free(hs);
    if (s->njobs && rc != SQLITE_DONE) D2_ERROR(D2_EDB, "sweep_grid: %s", sqlite3_errstr(rc));
    return D2_OK;
}

/* Shared between the parent and its workers (an anonymous shared map). */
typedef struct shared {
    _Atomic size_t next;    /* next position in the shard's job list */
    _Atomic size_t done, failed, skipped; /* committed (skipped: also found stored before running) */
    atomic_int has_error;   /* first_error is set (by the first failing job) */
    atomic_int stop;        /* the signal of a sweep_interrupt in any of the processes (0 = none):
                               no new job starts */
    char first_error[512];
    int first_status;       /* the d2 status of that failure */
} shared;

static volatile sig_atomic_t interrupt_sig, interrupt_count;
static shared *volatile running; /* the map of the sweep in progress, NULL = none */

int sweep_interrupt(int sig)
{
    if (!interrupt_sig) interrupt_sig = sig;
    shared *sh = running;
    if (sh && !sh->stop) sh->stop = sig; /* every process at once (a lock-free atomic store) */
    return ++interrupt_count;
}

int sweep_interrupted(void) { return interrupt_sig; }

void sweep_interrupt_reset(void)
{
    interrupt_sig = 0;
    interrupt_count = 0;
}

static int stop_asked(const shared *sh) { return interrupt_sig != 0 || sh->stop; }

/* Finished runs waiting for their commit (sweep.h, "Batches"). */
typedef struct pending { db_run *run; const sweep_job *j; int failed; } pending;
typedef struct batch {
    const sweep_spec *s;
    pending *a;
    size_t n, cap;
    double t0;                     /* clock_mono_s when its first run started */
    db *d;                         /* the store being written (batch_write) */
    size_t done, failed, skipped;  /* of the transaction being written */
} batch;

static void batch_clear(batch *b)
{
    for (size_t i = 0; i < b->n; i++) db_run_free(b->a[i].run);
    b->n = 0;
}

static int batch_write(sqlite3 *h, void *user)
{
    (void)h;
    batch *b = user;
    db *d = b->d;
    b->done = b->failed = b->skipped = 0; /* a retried transaction counts again */
    for (size_t i = 0; i < b->n; i++) {
        pending *p = &b->a[i];
        job_extra x = {b->s, p->j};
        if (p->failed) {
            D2_TRY(db_run_insert(d, p->run, replace_failure, &x, NULL));
            b->failed++;
            continue;
        }
        /* stored meanwhile by another process (or a job given twice):
         * this copy is left out; the write lock is held, so the answer holds
         * until the commit */
        int stored;
        D2_TRY(sweep_job_stored(d, p->j, &stored));
        if (stored) { b->skipped++; continue; }
        D2_TRY(db_run_insert(d, p->run, insert_job, &x, NULL));
        b->done++;
    }
    return D2_OK;
}

/* Commits the waiting runs in one transaction (all or none); they are
 * freed either way. */
static int batch_flush(db *d, batch *b, shared *sh)
{
    if (!b->n) return D2_OK;
    b->d = d;
    int rc = db_transaction(d, batch_write, b);
    if (rc == D2_OK) {
        sh->done += b->done;
        sh->failed += b->failed;
        sh->skipped += b->skipped;
    }
    batch_clear(b);
    return rc;
}

/* Runs one job (unless stored) and adds its run to the batch. */
static int run_one(db *d, const sweep_spec *s, const sweep_job *j, const sweep_opts *o, shared *sh, batch *b)
{
    int stored;
    D2_TRY(sweep_job_stored(d, j, &stored));
    if (stored) { sh->skipped++; return D2_OK; }
    D2_TRY(VEC_RESERVE(b->a, b->cap, b->n + 1));
    db_run *run = db_run_new(sweep_spec_kind(s), "sim");
    if (!run) D2_ERROR(D2_ENOMEM, "out of memory");
    if (o->argc) db_run_cmdline(run, o->argc, o->argv);
    db_run_param(run, "sweep.name", s->name);
    db_run_param(run, "sweep.job", j->hash);
    int vrc = db_run_variant(run, s->variant[0] ? s->variant : NULL, sweep_spec_overrides(s));
    if (vrc != D2_OK) { db_run_free(run); return vrc; }
    if (b->n == 0) b->t0 = clock_mono_s();
    int rc = o->run(j, run, o->user);
    int failed = rc != D2_OK;
    if (failed) {
        /* a failed job is recorded with its message but not marked done, so
         * a rerun tries it again */
        db_run_status(run, "failed");
        db_run_param(run, "sweep.error", d2_err_msg());
        int none = 0;
        if (atomic_compare_exchange_strong(&sh->has_error, &none, 1)) {
            snprintf(sh->first_error, sizeof sh->first_error, "%s", d2_err_msg());
            sh->first_status = rc;
        }
    }
    db_run_end(run);
    b->a[b->n++] = (pending){run, j, failed};
    return D2_OK;
}

/* The jobs of list taken in turn (sh->next) by this process, into the
 * store at db_path, in batches; progress reports when pg is given (the
 * sweep itself runs the jobs: one worker). */
typedef struct prog { size_t total; double t0; size_t *decile; } prog;
static void progress(const sweep_opts *o, const sweep_spec *s, size_t total, const shared *sh,
                     double t0, size_t *last_decile, int final);

static int run_jobs(const sweep_spec *s, const size_t *list, size_t n, const char *db_path,
                    const sweep_opts *o, shared *sh, const prog *pg)
{
    db *d;
    D2_TRY(db_open(db_path, &d));
    /* the statement journal of the multi-row inserts (db.c, INSERT_CHUNK)
     * in memory: in a batch's long transaction it spilled to a temporary
     * file once and then cost two writes per journaled page for the rest
     * of the batch (half of a batched sweep's writes); this handle makes
     * no other temporary objects */
    if (sqlite3_exec(db_handle(d), "PRAGMA temp_store = MEMORY", NULL, NULL, NULL) != SQLITE_OK) {
        d2_err_set("%s: %s", db_path, sqlite3_errmsg(db_handle(d)));
        db_close(d);
        return D2_EDB;
    }
    size_t max_runs = o->batch_runs > 0 ? (size_t)o->batch_runs : SWEEP_BATCH_RUNS;
    double max_s = (o->batch_ms > 0 ? o->batch_ms : SWEEP_BATCH_MS) / 1000.0;
    batch b = {.s = s};
    size_t ran = 0;
    int rc = D2_OK;
    while (!stop_asked(sh)) {
        size_t k = sh->next++;
        if (k >= n) break;
        rc = run_one(d, s, &s->jobs[list[k]], o, sh, &b);
        if (rc != D2_OK) break;
        if (b.n >= max_runs || (b.n && clock_mono_s() - b.t0 >= max_s)) rc = batch_flush(d, &b, sh);
        if (rc != D2_OK) break;
        if (o->stop_after && ++ran == o->stop_after) raise(SIGSTOP);
        if (pg) progress(o, s, pg->total, sh, pg->t0, pg->decile, 0);
    }
    /* what finished is committed, also when stopping early */
    int frc = batch_flush(d, &b, sh);
    if (rc == D2_OK) rc = frc;
    free(b.a);
    db_close(d);
    return rc;
}

/* One progress report; *last_decile remembers what a plain log already
 * said (lines about every 10% instead of one per job). */
static void progress(const sweep_opts *o, const sweep_spec *s, size_t total, const shared *sh,
                     double t0, size_t *last_decile, int final)
{
    if (!o->progress) return;
    size_t fin = sh->done + sh->failed + sh->skipped;
    double el = clock_mono_s() - t0;
    size_t ran = sh->done + sh->failed;
    double rate = ran > 0 ? (double)ran / el : 0;
    size_t left = total - fin;
    double eta = rate > 0 ? (double)left / rate : 0;
    if (o->progress_tty) {
        int width = 30, fill = total ? (int)((double)width * (double)fin / (double)total) : width;
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(o->progress, "\r%s [%s] %zu/%zu  %zu skipped  %zu failed  ETA %.0fs   %s", s->name, bar, fin, total,
                (size_t)sh->skipped, (size_t)sh->failed, eta, final ? "\n" : "");
    } else {
        /* plain lines (a log, not a terminal): about every 10% and at the end */
        size_t decile = total ? fin * 10 / total : 10;
        if (decile == *last_decile && (!final || decile == 10)) return; /* the last line said it all */
        *last_decile = decile;
        fprintf(o->progress, "sweep %s: %zu/%zu done (%zu skipped, %zu failed), %.1fs elapsed, ETA %.0fs\n", s->name,
                fin, total, (size_t)sh->skipped, (size_t)sh->failed, el, eta);
    }
    fflush(o->progress);
}

int sweep_execute(const sweep_spec *s, const char *db_path, const sweep_opts *o, sweep_stats *st)
{
    memset(st, 0, sizeof *st);
    if (o->workers < 1) D2_ERROR(D2_EINVAL, "workers: must be >= 1");
    if (o->shard_n < 1 || o->shard_i < 0 || o->shard_i >= o->shard_n)
        D2_ERROR(D2_EINVAL, "--shard %d/%d: expected I/N with 0 <= I < N", o->shard_i, o->shard_n);
    size_t *list = malloc((s->njobs + 1) * sizeof *list), n = 0;
    if (!list) D2_ERROR(D2_ENOMEM, "out of memory");
    for (size_t j = 0; j < s->njobs; j++)
        if (j % (size_t)o->shard_n == (size_t)o->shard_i) list[n++] = j;
    st->total = n;

    /* create/migrate the store once before the workers open it, and
     * record this invocation's grid (before any job: an interrupted sweep's
     * figure shows its grid, with the jobs run so far) */
    char at[32];
    db_now_iso(at);
    db *d;
    int rc = db_open(db_path, &d);
    if (rc) { free(list); return rc; }
    grid_ctx g = {s, at};
    rc = db_transaction(d, grid_write, &g);
    db_close(d);
    if (rc) { free(list); return rc; }

    shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) { free(list); D2_ERROR(D2_ENOMEM, "mmap: %s", strerror(errno)); }
    memset(sh, 0, sizeof *sh);
    running = sh;
    double t0 = clock_mono_s();
    size_t decile = (size_t)-1;
    int workers = o->workers;
    if ((size_t)workers > n) workers = n ? (int)n : 1;
    rc = D2_OK;
    if (workers == 1) {
        progress(o, s, n, sh, t0, &decile, 0);
        /* in-process: progress after each job */
        prog pg = {n, t0, &decile};
        rc = run_jobs(s, list, n, db_path, o, sh, &pg);
        progress(o, s, n, sh, t0, &decile, 1);
    } else {
        if (workers > 256) workers = 256;
        fflush(NULL);
        pid_t parent = getpid();
        int started = 0;
        for (int w = 0; w < workers; w++) {
            pid_t p = fork();
            if (p < 0) { rc = D2_EIO; d2_err_set("fork: %s", strerror(errno)); break; }
            if (p == 0) {
                /* a worker dies with the sweep (kill -9 of the parent) */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent) _exit(3);
                int wrc = run_jobs(s, list, n, db_path, o, sh, NULL);
                if (wrc != D2_OK) fprintf(stderr, "d2moe: worker: %s\n", d2_err_msg());
                fflush(NULL);
                _exit(wrc == D2_OK ? 0 : 1);
            }
            started++;
        }
        int alive = started;
        size_t last = (size_t)-1;
        while (alive > 0) {
            int status;
            pid_t p = waitpid(-1, &status, WNOHANG);
            if (p > 0) {
                alive--;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                    rc = D2_EIO;
                    d2_err_set("a sweep worker failed (%s %d); rerun to complete the sweep",
                               WIFEXITED(status) ? "exit status" : "signal",
                               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                }
                continue;
            }
            /* interrupted (sweep_interrupt set sh->stop too): the workers
             * finish their jobs and commit */
            if (interrupt_sig && !sh->stop) sh->stop = interrupt_sig;
            size_t fin = sh->done + sh->failed + sh->skipped;
            if (fin != last) { progress(o, s, n, sh, t0, &decile, 0); last = fin; }
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        progress(o, s, n, sh, t0, &decile, 1);
    }
    st->done = sh->done;
    st->failed = sh->failed;
    st->skipped = sh->skipped;
    st->wall_s = clock_mono_s() - t0;
    snprintf(st->first_error, sizeof st->first_error, "%s", sh->has_error ? sh->first_error : "");
    st->first_status = sh->has_error ? sh->first_status : D2_OK;
    /* a worker's signal stopped every process: the sweep was interrupted */
    st->interrupted = interrupt_sig ? interrupt_sig : sh->stop;
    running = NULL;
    munmap(sh, sizeof *sh);
    free(list);
    return rc;
}
