# src/results: the SQLite store (and, later, sweeps and plot export).
noinst_LIBRARIES += libd2results.a
libd2results_a_SOURCES = \
	src/results/db.c src/results/db.h

check_PROGRAMS += tests/t_db
tests_t_db_SOURCES = tests/t_db.c tests/tap.h
tests_t_db_LDADD = libd2results.a libd2core.a $(D2_LIBS)
TESTS += tests/t_db
