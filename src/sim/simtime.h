/* simtime.h - the type of every simulated time and duration in src/sim:
 * int64 nanoseconds (a time counts from the run's start, 0; a duration is
 * a difference of two).  Its own header so that every layer, from the event
 * heap (des.h) to the public API (sim.h), includes the one definition
 * without including another layer. */
#ifndef D2_SIM_SIMTIME_H
#define D2_SIM_SIMTIME_H

#include <stdint.h>

typedef int64_t sim_ns; /* simulated nanoseconds */

/* The horizon: no event is scheduled after 2^62 ns (146 years), so now +
 * a delay never overflows (des.h refuses an event past it). */
#define SIM_NS_MAX ((sim_ns)1 << 62)

#endif
