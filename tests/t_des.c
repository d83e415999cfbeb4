/* t_des.c - the event engine: random pushes and pops against a sorted-array
 * oracle, FIFO order of ties, time never backwards, the invariant walker,
 * and refusal of an event in the past. */
#include "sim/des.h"
#include "core/err.h"
#include "core/rng.h"
#include "tap.h"

typedef struct ev { sim_ns t; uint64_t seq; } ev;

static int ev_cmp(const void *a, const void *b)
{
    const ev *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static void test_oracle(void)
{
    des *e;
    ok(des_new(&e) == D2_OK, "des_new");
    gsl_rng *g = rng_new(7, 0);
    ev oracle[5000];
    size_t n = 0;
    uint64_t seq = 0;
    int bad = 0, backwards = 0, checks = 0;
    sim_ns last = 0;
    for (int round = 0; round < 20000; round++) {
        if (n < 5000 && (n == 0 || gsl_rng_uniform(g) < 0.55)) {
            /* few distinct times, so ties are common */
            sim_ns t = des_now(e) + (sim_ns)gsl_rng_uniform_int(g, 8) * 1000;
            if (des_event_push(e, t, 1, (int64_t)seq, 0)) bad++;
            oracle[n++] = (ev){t, seq++};
        } else {
            qsort(oracle, n, sizeof *oracle, ev_cmp);
            des_event got;
            if (!des_event_pop(e, &got)) { bad++; break; }
            if (got.time != oracle[0].t || (uint64_t)got.a != oracle[0].seq) bad++;
            if (got.time < last) backwards++;
            last = got.time;
            memmove(oracle, oracle + 1, (--n) * sizeof *oracle);
        }
        if (round % 97 == 0 && des_check(e) != D2_OK) checks++;
    }
    ok(bad == 0, "20000 random pushes/pops match the sorted (time, seq) oracle");
    ok(backwards == 0, "time never goes backwards");
    ok(checks == 0, "invariant walker passes throughout");
    is_int(des_pending(e), n, "pending count matches the oracle");
    gsl_rng_free(g);
    des_free(e);
}

static void test_ties_and_past(void)
{
    des *e;
    des_new(&e);
    for (int i = 0; i < 10; i++) des_event_push(e, 5, 0, i, 0);
    des_event x;
    int fifo = 1;
    for (int i = 0; i < 10; i++) {
        des_event_pop(e, &x);
        if (x.a != i) fifo = 0;
    }
    ok(fifo, "ties at one time pop in push order (FIFO)");
    is_int(des_now(e), 5, "now advanced to the popped time");
    ok(des_event_push(e, 4, 0, 0, 0) == D2_EINTERNAL, "an event before now is refused");
    ok(des_event_after(e, -1, 0, 0, 0) == D2_EINTERNAL, "a negative delay is refused");
    ok(des_event_after(e, 0, 0, 0, 0) == D2_OK && des_event_pop(e, &x) && x.time == 5, "a zero delay fires now");
    ok(!des_event_pop(e, &x), "empty engine pops nothing");
    ok(des_check(e) == D2_OK, "pushed = popped + pending");
    des_free(e);
}

/* The horizon: time + delay never overflows int64 (a run of too slow a
 * device refuses instead of wrapping to negative times). */
static void test_horizon(void)
{
    des *e;
    des_new(&e);
    ok(des_event_push(e, SIM_NS_MAX + 1, 0, 0, 0) == D2_ERANGE, "an event past the horizon is refused (D2_ERANGE)");
    ok(des_event_push(e, SIM_NS_MAX, 0, 0, 0) == D2_OK, "an event at the horizon is taken");
    des_event x;
    ok(des_event_pop(e, &x) && des_now(e) == SIM_NS_MAX, "now at the horizon");
    ok(des_event_after(e, INT64_MAX, 0, 0, 0) == D2_ERANGE, "now + INT64_MAX is refused, not wrapped");
    ok(des_event_after(e, 1, 0, 0, 0) == D2_ERANGE && strstr(d2_err_msg(), "horizon"), "one ns past it: %s", d2_err_msg());
    ok(des_check(e) == D2_OK, "nothing lost after the refusals");
    des_free(e);
}

int main(void)
{
    test_oracle();
    test_ties_and_past();
    test_horizon();
    return tap_done();
}
