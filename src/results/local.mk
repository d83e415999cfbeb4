# src/results: the SQLite store, sweeps (grid expansion, workers, shards,
# merge) and the figures' data export.
noinst_LIBRARIES += libd2results.a
libd2results_a_SOURCES = \
	src/results/db.c src/results/db.h \
	src/results/sweep.c src/results/sweep.h \
	src/results/merge.c src/results/merge.h \
	src/results/accuracy.c src/results/accuracy.h \
	src/results/plot.c src/results/plot.h \
	src/results/report.c src/results/report.h \
	src/results/runner.c src/results/runner.h \
	src/results/audit.c src/results/audit.h

check_PROGRAMS += tests/t_db tests/t_sweep tests/t_accuracy tests/t_audit
tests_t_db_SOURCES = tests/t_db.c tests/tap.h
tests_t_db_LDADD = libd2results.a libd2sim.a libd2quant.a libd2trace.a libd2core.a $(D2_LIBS)
tests_t_sweep_SOURCES = tests/t_sweep.c tests/tap.h
tests_t_sweep_LDADD = libd2results.a libd2core.a $(D2_LIBS)
tests_t_accuracy_SOURCES = tests/t_accuracy.c tests/tap.h
tests_t_accuracy_LDADD = libd2results.a libd2core.a $(D2_LIBS)
tests_t_audit_SOURCES = tests/t_audit.c tests/tap.h
tests_t_audit_LDADD = libd2results.a libd2sim.a libd2quant.a libd2trace.a libd2core.a $(D2_LIBS)
TESTS += tests/t_db tests/t_sweep tests/t_accuracy tests/t_audit tests/audit.sh tests/sweep.sh tests/slurm.sh tests/reproduce.sh
EXTRA_DIST += tests/audit.sh tests/data/audit-claims.ini tests/sweep.sh tests/slurm.sh tests/reproduce.sh
