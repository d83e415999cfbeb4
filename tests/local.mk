# tests/: shell tests of the d2moe command (module test programs are listed
# in each src/<module>/local.mk).
TESTS += tests/cli.sh tests/profiles.sh tests/db.sh tests/badinput.sh tests/inputs.sh tests/workflow.sh
EXTRA_DIST += tests/workflow.sh tests/lib.sh tests/cli.sh tests/profiles.sh tests/db.sh tests/badinput.sh tests/inputs.sh
# inputs.sh replays the fuzzers' findings kept here
EXTRA_DIST += tests/data/fuzz
# Golden outputs of the simulator (tests/golden/update.sh regenerates them).
TESTS += tests/golden.sh
# What a figure shows when a store holds several sweeps of a spec (grids, inputs, merges).
TESTS += tests/store.sh
EXTRA_DIST += tests/store.sh
EXTRA_DIST += tests/golden.sh tests/golden
# Allocation-failure injection: d2moe linked with tests/failalloc.c, whose
# wrappers fail the Nth allocation (D2_FAIL_ALLOC=N); tests/failalloc.sh
# walks N over small runs.
check_PROGRAMS += tests/d2moe-failalloc
tests_d2moe_failalloc_SOURCES = $(d2moe_SOURCES) tests/failalloc.c
tests_d2moe_failalloc_LDADD = $(d2moe_LDADD)
tests_d2moe_failalloc_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup,--wrap=aligned_alloc,--wrap=posix_memalign
TESTS += tests/failalloc.sh
EXTRA_DIST += tests/failalloc.sh
# A run record that lost a field to a failed allocation is never stored.
check_PROGRAMS += tests/t_dbfail
tests_t_dbfail_SOURCES = tests/t_dbfail.c tests/failalloc.c tests/tap.h
tests_t_dbfail_LDADD = libd2results.a libd2sim.a libd2quant.a libd2trace.a libd2core.a $(D2_LIBS)
tests_t_dbfail_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup,--wrap=aligned_alloc,--wrap=posix_memalign
TESTS += tests/t_dbfail
# Issue 15's systems (sysa): belady's bound, hobbit, mixtral-offloading, d2moe with preloading.
check_PROGRAMS += tests/t_systems
tests_t_systems_SOURCES = tests/t_systems.c tests/tap.h
tests_t_systems_LDADD = libd2sim.a libd2trace.a libd2core.a $(D2_LIBS)
TESTS += tests/t_systems
TESTS += tests/systems.sh
EXTRA_DIST += tests/systems.sh
# The plug-ins of issue 15's moe-infinity, fate and slicemoe systems.
check_PROGRAMS += tests/t_systems2
tests_t_systems2_SOURCES = tests/t_systems2.c tests/tap.h
tests_t_systems2_LDADD = libd2sim.a libd2core.a $(D2_LIBS)
TESTS += tests/t_systems2
