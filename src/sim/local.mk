# src/sim: the serving simulator (event engine, cost model, memory, planners,
# bit routing, named systems, serving loop).  libd2sim.a sits on
# libd2trace.a (job.c only) and libd2core.a.
noinst_LIBRARIES += libd2sim.a
libd2sim_a_SOURCES = \
	src/sim/run.c src/sim/account.c src/sim/sim.h src/sim/sim_int.h src/sim/params.c src/sim/job.c \
	src/sim/engine.c src/sim/step.c src/sim/profile.c src/sim/result.c src/sim/system.c src/sim/timeline.c src/sim/oracle.c \
	src/sim/simtime.h src/sim/des.c src/sim/des.h src/sim/des_int.h src/sim/stepmemo.c src/sim/stepmemo.h \
	src/sim/cost.c src/sim/cost.h \
	src/sim/mem.c src/sim/mem.h src/sim/mem_int.h \
	src/sim/plan.c src/sim/plan.h \
	src/sim/bitroute.c src/sim/bitroute.h \
	src/sim/policy.c src/sim/policy.h \
	src/sim/prefetch.c src/sim/prefetch.h \
	src/sim/arrival.c src/sim/arrival.h \
	src/sim/readings.c src/sim/readings.h \
	src/sim/pcache.c src/sim/pcache.h \
	src/sim/plugins.h src/sim/mem_layerlru.c src/sim/mem_hobbit.c src/sim/br_hobbit.c src/sim/pf_gate.c \
	src/sim/mem_arc.c src/sim/pf_moeinf.c src/sim/pf_fate.c src/sim/slicemoe.c

check_PROGRAMS += tests/t_des tests/t_sim tests/t_plugin
tests_t_plugin_SOURCES = tests/t_plugin.c tests/tap.h
tests_t_plugin_LDADD = libd2sim.a libd2core.a $(D2_LIBS)
tests_t_des_SOURCES = tests/t_des.c tests/tap.h
tests_t_des_LDADD = libd2sim.a libd2core.a $(D2_LIBS)
tests_t_sim_SOURCES = tests/t_sim.c tests/tap.h
tests_t_sim_LDADD = libd2sim.a libd2core.a $(D2_LIBS)
TESTS += tests/t_des tests/t_sim tests/t_plugin
# t_pcache compiles src/sim/pcache.c into itself (to corrupt its internals)
check_PROGRAMS += tests/t_pcache
tests_t_pcache_SOURCES = tests/t_pcache.c tests/tap.h
tests_t_pcache_LDADD = libd2core.a $(D2_LIBS)
TESTS += tests/t_pcache
TESTS += tests/sim.sh tests/readings.sh
EXTRA_DIST += tests/sim.sh tests/readings.sh
