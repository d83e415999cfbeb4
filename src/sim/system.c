/* system.c - a named system resolved under a configuration: the row of
 * policy.c with the sim.* overrides applied and every part's name checked
 * (sim_system_resolve), the rest of a configuration's checks that need no
 * routing and no budget arithmetic (sim_system_check), and the capacities
 * parser.  It does not run anything. */
#include "sim/sim_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int sim_system_caps_parse(const char *s, int levels, double *caps, const char *what)
{
    int n = 0;
    double sum = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v >= 0 && v <= 1) || n == levels) /* NaN fails both */
            D2_ERROR(D2_EINVAL, "%s: \"%s\": expected %d capacities 0..1 separated by '/'", what, s, levels);
        caps[n++] = v;
        sum += v;
        p = end;
        if (*p == '/') p++;
        else if (*p) D2_ERROR(D2_EINVAL, "%s: \"%s\": expected %d capacities 0..1 separated by '/'", what, s, levels);
    }
    if (n != levels) D2_ERROR(D2_EINVAL, "%s: \"%s\": the storage format has %d levels", what, s, levels);
    if (fabs(sum - 1) > 1e-6) D2_ERROR(D2_EINVAL, "%s: \"%s\": capacities sum to %g, not 1", what, s, sum);
    return D2_OK;
}

int sim_system_resolve(const sim_params *p, sim_system *out)
{
    memset(out, 0, sizeof *out);
    const policy_system *sys = policy_find(p->policy);
    char names[1024];
    if (!sys) D2_ERROR(D2_EINVAL, "sim.policy: unknown system \"%s\" (see d2moe simulate --list)", p->policy);
    snprintf(out->name, sizeof out->name, "%s", sys->name);
    out->nested = sys->nested;
    out->levels = sys->levels;
    for (int k = 0; k < sys->levels; k++) out->bits[k] = sys->bits[k];
#define PICK(f) snprintf(out->f, sizeof out->f, "%s", p->f[0] ? p->f : sys->f)
    PICK(caps);
    PICK(bitroute);
    PICK(plan);
    PICK(mem);
    PICK(prefetch);
    PICK(buffer);
#undef PICK
    int arg = 0;
    const plan_type *pt = plan_find(out->plan);
    const mem_policy_type *mt = mem_policy_find(out->mem);
    const prefetch_type *ft = prefetch_find(out->prefetch);
    if (!ft) {
        prefetch_names(names, sizeof names);
        D2_ERROR(D2_EINVAL, "sim.prefetch: unknown predictor \"%s\" (%s)", out->prefetch, names);
    }
    if (!bitroute_find(out->bitroute, &arg)) {
        bitroute_type_names(names, sizeof names);
        D2_ERROR(D2_EINVAL, "sim.bitroute: unknown bit-width routing \"%s\" (%s; uniform takes :B)", out->bitroute, names);
    }
    if (!pt) {
        plan_names(names, sizeof names);
        D2_ERROR(D2_EINVAL, "sim.plan: unknown planner \"%s\" (%s)", out->plan, names);
    }
    if (!mt) {
        mem_policy_names(names, sizeof names);
        D2_ERROR(D2_EINVAL, "sim.mem: unknown memory policy \"%s\" (%s)", out->mem, names);
    }
    if (strcmp(out->buffer, "budget") && strcmp(out->buffer, "device"))
        D2_ERROR(D2_EINVAL, "sim.buffer: \"%s\": expected budget or device", out->buffer);
    if (p->storage[0]) { /* a named storage format sizes nested levels only, level for level */
        int fl;
        D2_TRY(model_format_levels(p->storage, &fl));
        if (!out->nested)
            D2_ERROR(D2_EINVAL, "sim.storage: %s: system %s stores separate copies, not nested levels", p->storage, out->name);
        if (fl != out->levels)
            D2_ERROR(D2_EINVAL, "sim.storage: %s has %d levels; system %s has %d", p->storage, fl, out->name, out->levels);
    }
    out->serial = pt->serial;
    out->hold = mt->hold;
    out->preloads = strcmp(ft->name, "none") != 0;
    return D2_OK;
}


/* The order is the serving loop's (setup in run.c calls this first), so a
 * configuration with two faults names the same one either way. */
int sim_system_check(const sim_system *s, const model *m, const sim_params *p)
{
    const arrival_type *at = arrival_find(p->arrival);
    if (!at) {
        char names[256];
        arrival_names(names, sizeof names);
        D2_ERROR(D2_EINVAL, "sim.arrival: unknown arrival process \"%s\" (%s)", p->arrival, names);
    }
    if (strcmp(p->nested_kernel, "per-level") && strcmp(p->nested_kernel, "fused"))
        D2_ERROR(D2_EINVAL, "sim.nested_kernel: \"%s\": expected per-level or fused", p->nested_kernel);
    if (strcmp(p->nested_compute, "uniform") && strcmp(p->nested_compute, "swiglu"))
        D2_ERROR(D2_EINVAL, "sim.nested_compute: \"%s\": expected uniform or swiglu", p->nested_compute);
    double caps[POLICY_MAX_LEVELS];
    D2_TRY(sim_system_caps_parse(s->caps, s->levels, caps, "sim.caps"));
    if (model_moe_layers(m) == 0) D2_ERROR(D2_EINVAL, "model %s: no MoE layers", m->name);
    if (m->experts > MODEL_MAX_EXPERTS || m->top_k > MODEL_MAX_TOP_K)
        D2_ERROR(D2_ERANGE, "model %s: at most %d experts and top_k %d", m->name, MODEL_MAX_EXPERTS, MODEL_MAX_TOP_K);
    int64_t bytes;
    if (p->storage[0]) /* the format's bytes of every level exist for this model (k-quant rows of 256) */
        for (int u = 0; u < s->levels; u++)
            if (model_expert_format_level_bytes(m, p->storage, u + 1, p->group, &bytes) != D2_OK) {
                d2_err_prefix("sim.storage: ");
                return D2_EINVAL;
            }
    int arg = 0;
    const bitroute_type *bt = bitroute_find(s->bitroute, &arg);
    if (bt && bt->has_arg) {
        int found = 0;
        for (int u = 0; u < s->levels; u++) found |= s->bits[u] == arg;
        if (!found) D2_ERROR(D2_EINVAL, "sim.bitroute: uniform:%d: system %s stores no %d-bit level", arg, s->name, arg);
    }
    const mem_policy_type *mt = mem_policy_find(s->mem);
    if (mt && mt->needs_oracle && strcmp(at->name, "batch"))
        D2_ERROR(D2_EINVAL, "sim.mem: %s reads the routing ahead and needs sim.arrival = batch (with arrivals over time "
                 "the forward step a token falls in depends on the simulated timing)", mt->name);
    return D2_OK;
}
