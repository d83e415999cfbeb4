/* t_exec.c - real execution: plans built by hand run against a small
 * synthetic .mwq file; the budget is never exceeded, an impossible budget is
 * an error (not a hang), the incremental level-by-level arithmetic equals
 * the one-shot kernels, the simulator's typed operations become the plan
 * and, as op records, equal its timeline CSV read back.  No timing is
 * asserted. */
#define _GNU_SOURCE /* sched_getaffinity, sched_getcpu, CPU_* */
#include "core/err.h"
#include "core/model.h"
#include <sched.h>
#include "host/exec.h"
#include "host/cpupin.h"
#include "host/opjoin.h"
#include "host/execplan.h"
#include "sim/sim.h"
#include "quant/mwq.h"
#include "tap.h"

#include <unistd.h>

static model small_model(void)
{
    model m;
    param_defaults(&model_params, &m);
    snprintf(m.name, sizeof m.name, "t-exec");
    m.layers = 2;
    m.hidden = 256;
    m.expert_ffn = 384;
    m.expert_matrices = 3;
    m.experts = 4;
    m.top_k = 2;
    m.heads = m.kv_heads = 1;
    m.head_dim = 8;
    m.vocab = 16;
    return m;
}

/* loads and computes of one phase: experts 0..n-1 at levels 1..lev[e], tokens[e][k] */
static void add_phase(exec_plan *p, uint32_t phase, uint32_t layer, int n, const int *lev, const uint32_t tok[][3])
{
    for (int e = 0; e < n; e++)
        for (int k = 1; k <= lev[e]; k++) {
            uint32_t next = k < lev[e] ? tok[e][k] : 0;
            p->load[p->n_load++] = (exec_op){phase, layer, (uint32_t)e, (uint32_t)k, tok[e][k - 1], 0};
            p->comp[p->n_comp++] = (exec_op){phase, layer, (uint32_t)e, (uint32_t)k, tok[e][k - 1], tok[e][k - 1] - next};
        }
}

int main(void)
{
    char dir[] = "/tmp/t_exec.XXXXXX", path[256];
    if (!mkdtemp(dir)) { printf("Bail out! mkdtemp\n"); return 1; }
    snprintf(path, sizeof path, "%s/m.mwq", dir);
    model m = small_model();
    mwq_config c;
    mwq_config_default(&c); /* V1: b1 2, K 3, g 128 */
    int rc = execplan_model_generate(path, &m, &c, 5);
    ok(rc == D2_OK, "synthetic model file generated: %s", rc ? d2_err_msg() : "ok");
    exec_store s;
    rc = execplan_store_open(&s, path, &m, 3, 2, 128);
    ok(rc == D2_OK, "model file opens as a store: %s", rc ? d2_err_msg() : "ok");
    if (rc) { rmdir(dir); return tap_done(); }
    int64_t u1 = exec_store_unit_bytes(&s, 0, 0, 1), u2 = exec_store_unit_bytes(&s, 0, 0, 2);
    is_int(u1, model_expert_level_bytes(&m, 2, 1, 128), "level-1 unit bytes = the model's (what the simulator counts)");
    is_int(u2, model_expert_level_bytes(&m, 2, 2, 128), "level-2 unit bytes = the model's");

    /* two layers x two steps, experts at 3/2/1/3 levels */
    exec_op loads[64], comps[64];
    exec_plan p = {loads, 0, comps, 0, 0};
    const int lev[4] = {3, 2, 1, 3};
    const uint32_t tok[4][3] = {{5, 3, 1}, {4, 2, 0}, {2, 0, 0}, {3, 3, 3}};
    add_phase(&p, 0, 0, 4, lev, tok);
    add_phase(&p, 1, 1, 4, lev, tok);
    add_phase(&p, 2, 0, 4, lev, tok);
    add_phase(&p, 3, 1, 4, lev, tok);
    int64_t expert3 = u1 + 2 * u2;
    exec_opts o = {.budget = 1LL << 40, .threads = 1, .seed = 9, .verify = 1, .timeline = NULL, .prefault = 1,
                   .sleep_wait = 0, .ops = NULL, .compute_cpu = CPUPIN_NONE, .io_cpu = CPUPIN_NONE};
    exec_result r;
    rc = exec_run(&s, &p, &o, &r);
    ok(rc == D2_OK, "unbounded budget: runs (%s)", rc ? d2_err_msg() : "ok");
    is_int(r.loads, 36, "36 loads");
    is_int(r.computes, 36, "36 computes");
    is_int(r.pool_new_buffers, 0, "unbounded budget: the prefilled pool serves every load");
    ok(r.makespan_ns > 0 && r.io_busy_ns > 0 && r.comp_busy_ns > 0 && r.comp_busy_ns <= r.makespan_ns,
       "busy times within the makespan");
    /* the compute thread's CPU time and wall over the run (read once each):
     * a thread cannot use more CPU than wall (clock steps of 1 ms allowed),
     * and its span holds every compute */
    ok(r.comp_thread_cpu_ns > 0 && r.comp_thread_cpu_ns <= r.comp_thread_wall_ns + 1000000 &&
           r.comp_thread_wall_ns >= r.comp_busy_ns,
       "compute thread: CPU %lld ns <= wall %lld ns, wall >= its computes %lld ns", (long long)r.comp_thread_cpu_ns,
       (long long)r.comp_thread_wall_ns, (long long)r.comp_busy_ns);
    is_int(r.verified, 16, "one token checked per (phase, expert)");
    ok(r.verify_max_rel < 1e-4, "incremental levels == one-shot kernels (max rel %.3g)", r.verify_max_rel);
    ok(r.verify_max_rel_ref < 0.05, "close to the double reference with float activations (max rel %.3g)", r.verify_max_rel_ref);
    ok(!strcmp(r.io_method, "O_DIRECT") || !strcmp(r.io_method, "POSIX_FADV_DONTNEED"), "io method named (%s)", r.io_method);

    /* pinned as calibrate and execute pin by default: the same plan runs the
     * same ops, the caller's mask comes back; a CPU outside the process's
     * mask is refused before anything starts */
    {
        exec_opts po = o;
        ok(cpupin_default(&po.compute_cpu, &po.io_cpu) == D2_OK, "default placement (compute %d, I/O %d)", po.compute_cpu,
           po.io_cpu);
        cpu_set_t before, after;
        sched_getaffinity(0, sizeof before, &before);
        exec_result pr;
        int prc = exec_run(&s, &p, &po, &pr);
        sched_getaffinity(0, sizeof after, &after);
        ok(prc == D2_OK && pr.loads == r.loads && pr.computes == r.computes && pr.bytes_read == r.bytes_read &&
               pr.verified == r.verified && pr.verify_max_rel < 1e-4,
           "pinned: the same loads, computes, bytes and verified tokens (%s)", prc ? d2_err_msg() : "ok");
        ok(CPU_EQUAL(&before, &after), "pinned: the calling thread's CPU mask restored after the run");
        int bad = -1;
        for (int k = 0; k < CPU_SETSIZE && bad < 0; k++)
            if (!CPU_ISSET(k, &before)) bad = k;
        po.compute_cpu = bad;
        prc = exec_run(&s, &p, &po, &pr);
        ok(bad >= 0 && prc == D2_EINVAL && strstr(d2_err_msg(), "compute CPU"), "compute CPU %d (not allowed): D2_EINVAL (%s)",
           bad, d2_err_msg());
        po.compute_cpu = CPUPIN_NONE;
        po.io_cpu = bad;
        prc = exec_run(&s, &p, &po, &pr);
        ok(prc == D2_EINVAL && strstr(d2_err_msg(), "I/O CPU"), "I/O CPU %d (not allowed): D2_EINVAL", bad);
    }

    /* the run's ops as typed records and as a timeline CSV: the same ops,
     * one zero-length non-expert record per phase, steps = phase / layers */
    {
        opjoin_tl *ops = NULL, *back = NULL;
        char *buf = NULL;
        size_t len = 0;
        FILE *csv = open_memstream(&buf, &len);
        int orc = opjoin_tl_new(&ops);
        if (!orc) orc = opjoin_tl_new(&back);
        o.ops = ops;
        o.timeline = csv;
        exec_result rt;
        if (!orc) orc = exec_run(&s, &p, &o, &rt);
        o.ops = NULL;
        o.timeline = NULL;
        if (csv) fclose(csv);
        ok(orc == D2_OK && opjoin_tl_size(ops) == 36 + 36 + 4, "typed records: 36 loads, 36 computes, 4 phase markers (%zu)",
           ops ? opjoin_tl_size(ops) : 0);
        FILE *in = buf ? fmemopen(buf, len, "r") : NULL;
        ok(in && opjoin_tl_read_csv(in, "real timeline", back) == D2_OK, "the timeline CSV reads back (%s)", d2_err_msg());
        if (in) fclose(in);
        opjoin_report j;
        int jrc = orc ? orc : opjoin_join(ops, back, &j);
        ok(!jrc && j.matched == 76 && !j.pred_only && !j.real_only,
           "the CSV and the records are the same ops, steps included (%lld pairs)", (long long)j.matched);
        int64_t comp = 0, sum = 0;
        for (int t = 0; t < j.nterm; t++) {
            if (!strncmp(j.term[t].name, "compute_l", 9)) comp += j.term[t].real_ns;
            if (j.term[t].in_sum) sum += j.term[t].real_ns;
        }
        ok(!jrc && j.makespan_real_ns == rt.makespan_ns && comp == rt.comp_busy_ns && sum == rt.makespan_ns,
           "records: makespan %lld = the result's, compute busy %lld = the result's, split adds up",
           (long long)j.makespan_real_ns, (long long)comp);
        int per_step[3] = {0, 0, 0};
        for (size_t i = 0; ops && i < opjoin_tl_size(ops); i++) {
            const opjoin_op *op = opjoin_tl_get(ops, i);
            per_step[op->step >= 0 && op->step <= 1 ? op->step : 2]++;
        }
        ok(per_step[0] == 38 && per_step[1] == 38 && per_step[2] == 0,
           "two layers x two steps: 38 ops in step 0 and in step 1 (%d, %d, %d other)", per_step[0], per_step[1], per_step[2]);
        free(buf);
        opjoin_tl_free(ops);
        opjoin_tl_free(back);
    }

    /* the same arithmetic with two compute threads */
    exec_result r2;
    o.threads = 2;
    rc = exec_run(&s, &p, &o, &r2);
    ok(rc == D2_OK && r2.verify_max_rel < 1e-4, "two compute threads: same arithmetic (%.3g)", r2.verify_max_rel);
    o.threads = 1;

    /* a budget of one expert at three levels: waits, never exceeds; both
     * ways of waiting (polling, the default, and sleeping on the condition
     * variable) */
    o.budget = expert3;
    for (int sw = 0; sw < 2; sw++) {
        o.sleep_wait = sw;
        rc = exec_run(&s, &p, &o, &r);
        ok(rc == D2_OK, "budget of one 3-level expert, %s: runs (%s)", sw ? "sleeping waits" : "polling waits",
           rc ? d2_err_msg() : "ok");
        ok(r.peak_expert_bytes <= expert3 && r.peak_expert_bytes >= u1 && r.verify_max_rel < 1e-4,
           "%s: peak expert bytes %lld <= budget %lld, same arithmetic", sw ? "sleeping" : "polling",
           (long long)r.peak_expert_bytes, (long long)expert3);
        /* the weight pool filled before timing holds, per level, as many
         * buffers as the budget can hold units of that level: no buffer is
         * made during the run, however the loads and frees interleave */
        is_int(r.pool_new_buffers, 0, "%s: the prefilled weight pool serves every load", sw ? "sleeping" : "polling");
    }
    o.sleep_wait = 0;

    /* serial (sequential strategy) */
    p.serial = 1;
    o.budget = 1LL << 40;
    rc = exec_run(&s, &p, &o, &r);
    ok(rc == D2_OK && r.verify_max_rel < 1e-4, "serial plan runs");
    p.serial = 0;

    /* budget below one unit: refused */
    o.budget = u1 - 1;
    rc = exec_run(&s, &p, &o, &r);
    ok(rc == D2_ERANGE && strstr(d2_err_msg(), "more than the budget"), "unit above the budget: %s", d2_err_msg());

    /* infeasible: expert 0 level 3 needs levels 1..3 resident, budget holds two */
    o.budget = u1 + u2;
    exec_plan p1 = {loads, 0, comps, 0, 0};
    const int lev1[1] = {3};
    const uint32_t tok1[1][3] = {{2, 2, 2}};
    add_phase(&p1, 0, 0, 1, lev1, tok1);
    rc = exec_run(&s, &p1, &o, &r);
    ok(rc == D2_ERANGE && strstr(d2_err_msg(), "held by units still needed"), "impossible budget: error, no hang: %s",
       d2_err_msg());

    /* bad plans */
    o.budget = 1LL << 40;
    exec_op bad = {0, 0, 7, 1, 1, 1};
    exec_plan pb = {&bad, 1, &bad, 1, 0};
    rc = exec_run(&s, &pb, &o, &r);
    ok(rc == D2_EINVAL && strstr(d2_err_msg(), "outside the model file"), "expert 7 of 4: %s", d2_err_msg());
    exec_op ld = {0, 0, 0, 1, 1, 0}, cp = {0, 0, 1, 1, 1, 1};
    exec_plan pc = {&ld, 1, &cp, 1, 0};
    rc = exec_run(&s, &pc, &o, &r);
    ok(rc == D2_EINVAL && strstr(d2_err_msg(), "never loaded"), "compute of an unloaded level: %s", d2_err_msg());
    exec_op cp2 = {0, 0, 0, 2, 1, 1};
    pc.comp = &cp2;
    rc = exec_run(&s, &pc, &o, &r);
    ok(rc == D2_EINVAL && strstr(d2_err_msg(), "not nested"), "level 2 without level 1: %s", d2_err_msg());

    /* the simulator may compute a resident higher level before a reloaded
     * lower one: down waits until both gate/up levels are in */
    exec_op l3[3] = {{0, 0, 0, 1, 2, 0}, {0, 0, 0, 2, 1, 0}, {1, 0, 0, 1, 2, 0}};
    exec_op c4[4] = {{0, 0, 0, 1, 2, 1}, {0, 0, 0, 2, 1, 1}, {1, 0, 0, 2, 1, 1}, {1, 0, 0, 1, 2, 1}};
    exec_plan po = {l3, 3, c4, 4, 0};
    rc = exec_run(&s, &po, &o, &r);
    ok(rc == D2_OK && r.verified == 2 && r.verify_max_rel < 1e-4,
       "level 2 (resident) before level 1 (reloaded): same arithmetic (%s, %.3g)", rc ? d2_err_msg() : "ok", r.verify_max_rel);

    /* a model that does not match the file */
    model m2 = m;
    m2.hidden = 128;
    exec_store s2;
    rc = execplan_store_open(&s2, path, &m2, 3, 2, 128);
    ok(rc == D2_EFORMAT && strstr(d2_err_msg(), "needs"), "shape mismatch named: %s", d2_err_msg());
    rc = execplan_store_open(&s2, path, &m, 4, 2, 128);
    ok(rc == D2_EFORMAT, "more levels than stored refused");
    exec_store_close(&s);

    /* the simulator's typed operations -> plan (by hand: two layer steps;
     * expert 1 at levels 1 (3 tokens, 2 of them final) and 2 (1 token)) */
    const sim_op ops[] = {
        {.kind = SIM_OP_NONEXPERT, .step = 0, .layer = 0, .expert = -1, .tokens = 4, .start = 0, .end = 10},
        {.kind = SIM_OP_LOAD, .step = 0, .layer = 0, .expert = 1, .level = 1, .tokens = 3, .start = 10, .end = 20},
        {.kind = SIM_OP_LOAD, .step = 0, .layer = 0, .expert = 1, .level = 2, .tokens = 1, .start = 20, .end = 30},
        {.kind = SIM_OP_COMPUTE, .step = 0, .layer = 0, .expert = 1, .level = 1, .tokens = 3, .final = 2, .start = 20, .end = 25},
        {.kind = SIM_OP_COMPUTE, .step = 0, .layer = 0, .expert = 1, .level = 2, .tokens = 1, .final = 1, .start = 30, .end = 35},
        {.kind = SIM_OP_NONEXPERT, .step = 1, .layer = 1, .expert = -1, .tokens = 4, .start = 35, .end = 40},
        {.kind = SIM_OP_LOAD, .step = 1, .layer = 1, .expert = 0, .level = 1, .tokens = 2, .start = 40, .end = 50},
        {.kind = SIM_OP_COMPUTE, .step = 1, .layer = 1, .expert = 0, .level = 1, .tokens = 2, .final = 2, .start = 50, .end = 60},
    };
    execplan_builder xb;
    sim_observer obs;
    exec_plan tp;
    execplan_builder_init(&xb, 0, &obs);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) obs.op(obs.user, &ops[i]);
    rc = execplan_builder_finish(&xb, &tp);
    ok(rc == D2_OK, "plan built from typed operations: %s", rc ? d2_err_msg() : "ok");
    if (rc == D2_OK) {
        is_int(tp.n_load, 3, "3 loads");
        is_int(tp.n_comp, 3, "3 expert computes (non-expert work opens layer steps)");
        ok(tp.load[2].phase == 1 && tp.comp[2].phase == 1, "second layer step is phase 1");
        ok(tp.comp[0].final == 2 && tp.comp[1].final == 1 && tp.comp[2].final == 2,
           "final tokens as the simulator counted them");
        execplan_free(&tp);
    }
    /* the same operations as op records (the predicted side of execute's
     * op join) equal the simulator's timeline CSV read back: each op pairs
     * with its own, and both split the same */
    opjoin_tl *typed = NULL, *fromcsv = NULL;
    char *csv = NULL;
    size_t csvlen = 0;
    rc = opjoin_tl_new(&typed);
    if (!rc) rc = opjoin_tl_new(&fromcsv);
    FILE *mf = rc ? NULL : open_memstream(&csv, &csvlen);
    sim_timeline stl;
    sim_observer tobs;
    if (mf) sim_timeline_begin(&stl, mf, &tobs);
    execplan_builder_init(&xb, 0, &obs);
    xb.ops = typed;
    for (size_t i = 0; mf && i < sizeof ops / sizeof ops[0]; i++) {
        obs.op(obs.user, &ops[i]);
        tobs.op(tobs.user, &ops[i]);
    }
    if (mf) fclose(mf);
    rc = rc ? rc : !mf ? D2_EIO : execplan_builder_finish(&xb, &tp);
    ok(rc == D2_OK, "plan and op records from one observer: %s", rc ? d2_err_msg() : "ok");
    if (rc == D2_OK) execplan_free(&tp);
    is_int(typed ? (long long)opjoin_tl_size(typed) : -1, 8, "8 op records: 2 non-expert, 3 loads, 3 computes");
    FILE *in = csv ? fmemopen(csv, csvlen, "r") : NULL;
    ok(in && opjoin_tl_read_csv(in, "sim timeline", fromcsv) == D2_OK, "the simulator's timeline CSV reads back");
    if (in) fclose(in);
    opjoin_report jt, jc, jx;
    int jrc = rc ? rc : opjoin_join(typed, fromcsv, &jx);
    ok(!jrc && jx.matched == 8 && !jx.pred_only && !jx.real_only && jx.makespan_pred_ns == jx.makespan_real_ns,
       "records and CSV: every op pairs with its own (%lld)", jrc ? -1LL : (long long)jx.matched);
    if (!jrc) jrc = opjoin_join(typed, typed, &jt);
    if (!jrc) jrc = opjoin_join(fromcsv, fromcsv, &jc);
    int same = !jrc && jt.nterm == jc.nterm && jt.makespan_pred_ns == jc.makespan_pred_ns;
    for (int t = 0; same && t < jt.nterm; t++)
        same = jt.term[t].pred_ns == jc.term[t].pred_ns && jt.term[t].n_pred == jc.term[t].n_pred;
    ok(same, "records and CSV split the makespan the same, term by term");
    const opjoin_op *o0 = typed ? opjoin_tl_get(typed, 0) : NULL, *o7 = typed ? opjoin_tl_get(typed, 7) : NULL;
    ok(o0 && o0->kind == OPJOIN_NONEXPERT && o0->expert == -1 && o0->level == 0 && o7 && o7->kind == OPJOIN_COMPUTE &&
           o7->step == 0 && o7->layer == 1 && o7->start_ns == 50 && o7->end_ns == 60,
       "records: non-expert work as expert -1 level 0; step = the forward step, simulated ns");
    free(csv);
    opjoin_tl_free(typed);
    opjoin_tl_free(fromcsv);

    const sim_op pre = {.kind = SIM_OP_LOAD, .step = 0, .layer = 1, .expert = 3, .level = 1, .preload = 1, .start = 10, .end = 20};
    execplan_builder_init(&xb, 0, &obs);
    obs.op(obs.user, &ops[0]);
    obs.op(obs.user, &pre);
    rc = execplan_builder_finish(&xb, &tp);
    ok(rc == D2_EINVAL && strstr(d2_err_msg(), "preload"), "preloads refused: %s", d2_err_msg());

    unlink(path);
    rmdir(dir);
    return tap_done();
}
