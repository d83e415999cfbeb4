# src/trace: router traces (.d2t format, importers, generator, statistics,
# and the routing source the simulator reads).  Issue 3.
noinst_LIBRARIES += libd2trace.a
libd2trace_a_SOURCES = \
	src/trace/trace.c src/trace/trace.h src/trace/trace_int.h \
	src/trace/import.c src/trace/import.h \
	src/trace/stat.c src/trace/stat.h \
	src/trace/gen.c src/trace/gen.h \
	src/trace/source.c src/trace/source.h

check_PROGRAMS += tests/t_trace
tests_t_trace_SOURCES = tests/t_trace.c tests/tap.h
tests_t_trace_LDADD = libd2trace.a libd2core.a $(D2_LIBS)
TESTS += tests/t_trace tests/trace.sh
EXTRA_DIST += tests/trace.sh tests/data/trace

check_PROGRAMS += tests/t_import
tests_t_import_SOURCES = tests/t_import.c tests/tap.h
tests_t_import_LDADD = libd2trace.a libd2core.a $(D2_LIBS)
TESTS += tests/t_import
