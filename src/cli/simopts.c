/* simopts.c - shared option handling of simulate and execute (see simopts.h). */
#include "cli/simopts.h"
#include "cli/cli.h"
#include "sim/readings.h"
#include "core/err.h"
#include "results/runner.h"
#include "sim/sim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void simopts_init(simopts *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
}

int simopts_take(simopts *o, int c, const char *arg, const char *cmd)
{
    const char *key = NULL;
    switch (c) {
    case 'p': key = "policy"; break;
    case 'b': key = "budget"; break;
    case 'r': key = "requests"; break;
    case 'P': key = "prompt"; break;
    case 'g': key = "gen"; break;
    case 's':
        if (o->ngiven == SIMOPTS_MAX_SETS) return cli_usage_error(cmd, "too many --set options (%d at most)", SIMOPTS_MAX_SETS);
        o->given[o->ngiven++] = arg;
        return 1;
    case 'E': {
        o->readings = arg;
        readings rd; /* named as typed, and a FIFO refused rather than waited on */
        if (runner_readings_load(&rd, arg) != D2_OK) {
            d2_err_prefix("--readings %s: ", arg);
            return cli_fail(D2_EINVAL);
        }
        return 1;
    }
    case 'S': {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(arg, &end, 10);
        /* the range of the parameter sim.seed, from its row of the table */
        const unsigned long long smax = (unsigned long long)param_find(&sim_param_table, "seed")->max;
        if (!*arg || *end || arg[0] == '-' || errno == ERANGE || s > smax)
            return cli_usage_error(cmd, "--seed %s: expected an integer 0..%llu", arg, smax);
        o->seed = s;
        return 1;
    }
    default: return 0;
    }
    if (o->nshort == SIMOPTS_MAX_SETS) return cli_usage_error(cmd, "too many options");
    if (strlen(arg) >= PARAM_STR_MAX) return cli_usage_error(cmd, "--%s: value too long", key);
    {
        /* check the value here, so an error names the option typed
         * (--budget), not the --set it stands for */
        char opt[32];
        snprintf(opt, sizeof opt, "--%s", key);
        sim_params scratch;
        param_defaults(&sim_param_table, &scratch);
        if (!strcmp(key, "policy")) { /* a named system, with a suggestion */
            if (runner_check("sim.policy", arg, opt, NULL) != D2_OK) {
                char m[1024]; /* its own pointer to --list: no second hint */
                snprintf(m, sizeof m, "%s", d2_err_msg());
                const char *t = !strncmp(m, "--policy: sim.policy: ", 22) ? m + 22 : m;
                d2_err_set("--policy: %s", t);
                return cli_fail(D2_EINVAL);
            }
        } else if (param_set(&sim_param_table, &scratch, key, arg, opt, NULL) != D2_OK) {
            /* param_set says "--budget: budget: why": drop the repeated key */
            const char *m = d2_err_msg();
            size_t ol = strlen(opt), kl = strlen(key);
            if (!strncmp(m, opt, ol) && !strncmp(m + ol, ": ", 2) && !strncmp(m + ol + 2, key, kl) && !strncmp(m + ol + 2 + kl, ": ", 2))
                m += ol + 2 + kl + 2;
            return cli_usage_error(cmd, "%s: %s", opt, m);
        }
    }
    snprintf(o->shortcut[o->nshort++], sizeof o->shortcut[0], "sim.%s=%s", key, arg);
    return 1;
}

int simopts_finish(simopts *o, const char *cmd)
{
    if (o->nshort + o->ngiven > SIMOPTS_MAX_SETS) return cli_usage_error(cmd, "too many options");
    o->nsets = 0;
    for (size_t i = 0; i < o->nshort; i++) o->sets[o->nsets++] = o->shortcut[i];
    for (size_t i = 0; i < o->ngiven; i++) o->sets[o->nsets++] = o->given[i];
    /* a key set twice (--budget and --set sim.budget=; two --set of one
     * key are refused by cli_getopt_long already): the last would win
     * without a word, so it is refused */
    for (size_t i = 1; i < o->nsets; i++) {
        const char *eq = strchr(o->sets[i], '=');
        if (!eq) continue;
        const size_t kl = (size_t)(eq - o->sets[i]);
        for (size_t j = 0; j < i; j++)
            if (!strncmp(o->sets[j], o->sets[i], kl) && o->sets[j][kl] == '=')
                return cli_usage_error(cmd, "%.*s given twice (%s, then %s): give it once", (int)kl, o->sets[i], o->sets[j], o->sets[i]);
    }
    /* --set table.key=value: the key known (else the closest one suggested)
     * and the value valid, before anything runs */
    for (size_t i = 0; i < o->ngiven; i++) {
        const char *a = o->given[i], *eq = strchr(a, '='), *dot = strchr(a, '.');
        if (!eq || !dot || dot > eq || dot == a) continue; /* the simulator names these */
        char key[160];
        if ((size_t)(eq - a) >= sizeof key) continue;
        memcpy(key, a, (size_t)(eq - a));
        key[eq - a] = '\0';
        if (strncmp(key, "model.", 6) && strncmp(key, "device.", 7) && strncmp(key, "sim.", 4)) continue;
        if (runner_check(key, eq + 1, "--set", NULL) != D2_OK) return cli_fail(D2_EINVAL); /* it names where to look */
    }
    return 0;
}
