/* timeline.c - the timeline CSV as an observer of typed operations
 * (start_ns,end_ns,queue,layer,expert,level,tokens).  It does not read
 * timelines (src/host/execplan.c and opjoin.c do). */
#include "sim/sim_int.h"

#include <string.h>

static void timeline_op(void *user, const sim_op *op)
{
    sim_timeline *t = user;
    fprintf(t->f, "%lld,%lld,%s,%u,%d,%u,%u\n", (long long)op->start, (long long)op->end,
            op->kind == SIM_OP_LOAD ? "io" : "compute", op->layer, (int)op->expert, op->level, op->tokens);
}

void sim_timeline_begin(sim_timeline *t, FILE *f, sim_observer *obs)
{
    t->f = f;
    fprintf(f, "%s\n", SIM_TIMELINE_HEADER);
    memset(obs, 0, sizeof *obs);
    obs->op = timeline_op;
    obs->user = t;
}

