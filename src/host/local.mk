# src/host: measure this machine (calib) and run plans for real (exec).
noinst_LIBRARIES += libd2host.a
libd2host_a_SOURCES = \
	src/host/calib.c src/host/calib.h \
	src/host/exec.c src/host/exec.h \
	src/host/execplan.c src/host/execplan.h \
	src/host/cpupin.c src/host/cpupin.h \
	src/host/hostwatch.c src/host/hostwatch.h src/host/cpushare.c src/host/cpushare.h \
	src/host/iobuf.c src/host/iobuf.h

check_PROGRAMS += tests/t_calib
tests_t_calib_SOURCES = tests/t_calib.c tests/tap.h
tests_t_calib_LDADD = libd2host.a libd2quant.a libd2core.a $(D2_LIBS)
TESTS += tests/t_calib tests/calib.sh tests/exec.sh
EXTRA_DIST += tests/calib.sh tests/exec.sh

check_PROGRAMS += tests/t_exec
tests_t_exec_SOURCES = tests/t_exec.c tests/tap.h
tests_t_exec_LDADD = libd2host.a libd2sim.a libd2trace.a libd2quant.a libd2core.a $(D2_LIBS)
TESTS += tests/t_exec

# the validation: bootstrap statistics, the predicted/real op join and its
# records in the store (issue 18)
libd2host_a_SOURCES += src/host/valstat.c src/host/valstat.h src/host/opjoin.c src/host/opjoin.h \
	src/host/valstore.c src/host/valstore.h
check_PROGRAMS += tests/t_valid
tests_t_valid_SOURCES = tests/t_valid.c tests/tap.h
tests_t_valid_LDADD = libd2host.a libd2quant.a libd2core.a $(D2_LIBS)
TESTS += tests/t_valid

check_PROGRAMS += tests/t_valstore
tests_t_valstore_SOURCES = tests/t_valstore.c tests/tap.h
tests_t_valstore_LDADD = libd2host.a libd2results.a libd2sim.a libd2quant.a libd2trace.a libd2core.a $(D2_LIBS)
TESTS += tests/t_valstore
