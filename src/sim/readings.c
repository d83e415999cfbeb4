/* readings.c - named reading sets (see readings.h). */
#include "sim/readings.h"
#include "sim/sim.h"
#include "core/device.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/inifile.h"

#include <stdio.h>
#include <string.h>

/* sim keys a reading may not set: they choose the system or its parts, or
 * the experiment (workload, budget, seed) -- the axes a sweep varies */
static const char *const sim_refused[] = {
    "policy", "bitroute", "plan", "mem", "caps", "prefetch", "prefetch_k", "buffer", "budget", "requests",
    "prompt", "gen", "arrival", "arrival_rate", "seed", "plan_gap", "profile_requests", NULL,
};

static int entry(void *user, const char *section, const char *key, const char *value, const char *path, int line)
{
    readings *r = user;
    if (section[0])
        D2_ERROR(D2_EFORMAT, "%s:%d: [%s]: a reading has no sections: it applies to every system alike (table.key = value lines)",
                 path, line, section);
    const char *dot = strchr(key, '.');
    if (!dot) D2_ERROR(D2_EFORMAT, "%s:%d: %s: expected device.KEY or sim.KEY", path, line, key);
    const param_table *t = NULL;
    if (!strncmp(key, "device.", 7)) t = &device_params;
    else if (!strncmp(key, "sim.", 4)) t = &sim_param_table;
    else if (!strncmp(key, "model.", 6))
        D2_ERROR(D2_EFORMAT, "%s:%d: %s: a reading does not change the model (model profiles hold its published configuration)",
                 path, line, key);
    else D2_ERROR(D2_EFORMAT, "%s:%d: %s: expected device.KEY or sim.KEY", path, line, key);
    if (!param_find(t, dot + 1)) D2_ERROR(D2_EFORMAT, "%s:%d: %s: not a %s key", path, line, key, t->name);
    if (t == &device_params && (!strcmp(dot + 1, "name") || !strcmp(dot + 1, "kind")))
        D2_ERROR(D2_EFORMAT, "%s:%d: %s: a reading does not rename a device", path, line, key);
    if (t == &sim_param_table)
        for (const char *const *k = sim_refused; *k; k++)
            if (!strcmp(dot + 1, *k))
                D2_ERROR(D2_EFORMAT, "%s:%d: %s: a reading may not choose a system, its parts or the workload "
                         "(it applies to every system alike)", path, line, key);
    for (size_t i = 0; i < r->n; i++) {
        size_t kl = strlen(key);
        if (!strncmp(r->set[i], key, kl) && r->set[i][kl] == '=') D2_ERROR(D2_EFORMAT, "%s:%d: %s: given twice", path, line, key);
    }
    /* the value must parse and lie in range */
    union { device d; sim_params s; } scratch;
    param_defaults(t, &scratch);
    char where[PARAM_PATH_MAX + 16]; /* "path:line" */
    snprintf(where, sizeof where, "%s:%d", path, line);
    D2_TRY(param_set_as(t, &scratch, dot + 1, value, where, NULL, key)); /* named as the file writes it */
    if (r->n == READINGS_MAX_SETS) D2_ERROR(D2_ERANGE, "%s:%d: more than %d settings", path, line, READINGS_MAX_SETS);
    if ((size_t)snprintf(r->set[r->n], sizeof r->set[0], "%s=%s", key, value) >= sizeof r->set[0])
        D2_ERROR(D2_EFORMAT, "%s:%d: %s: value too long", path, line, key);
    r->n++;
    return D2_OK;
}

int readings_load(readings *r, const char *name_or_path)
{
    memset(r, 0, sizeof *r);
    const char *nm = name_or_path && *name_or_path ? name_or_path : READINGS_DEFAULT;
    if (!strcmp(nm, "none")) {
        snprintf(r->name, sizeof r->name, "none");
        return D2_OK;
    }
    D2_TRY(param_profile_path("reading", nm, r->path, sizeof r->path));
    /* read once a process while the file stays the same version (param.h) */
    fileio_version v;
    const int known = fileio_version_of(r->path, &v) == D2_OK;
    if (known && fileio_memo_get(sim_refused, r->path, &v, r, sizeof *r)) return D2_OK;
    FILE *f;
    int rc = fileio_open_read(r->path, FILEIO_INI_MAX, &f, NULL); /* a FIFO or device is refused, not read */
    if (rc == D2_ENOTFOUND)
        D2_ERROR(D2_ENOTFOUND, "%s: reading \"%s\" not found (d2moe list readings; experiments/readings/NAME.ini)", r->path, nm);
    if (rc) return rc;
    fclose(f);
    /* the name is the file's base name without .ini */
    const char *base = strrchr(r->path, '/');
    base = base ? base + 1 : r->path;
    size_t bl = strlen(base);
    if (bl > 4 && !strcmp(base + bl - 4, ".ini")) bl -= 4;
    if (bl >= sizeof r->name) bl = sizeof r->name - 1;
    memcpy(r->name, base, bl);
    r->name[bl] = '\0';
    D2_TRY(inifile_parse(r->path, entry, r, NULL));
    if (r->n == 0) /* a file that says nothing is a mistake: the reading that applies nothing is "none" */
        D2_ERROR(D2_EFORMAT, "%s: no settings (a reading that applies nothing is --readings none)", r->path);
    if (known) fileio_memo_put(sim_refused, r->path, &v, r, sizeof *r);
    return D2_OK;
}

void readings_text(const readings *r, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->n && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? "; " : "", r->set[i]);
}

int readings_list(char ***names, size_t *n) { return param_profile_list("reading", names, n); }
