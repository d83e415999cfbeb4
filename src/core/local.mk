# src/core: errors, parameters, profiles, rng, hashes, text checks, version.
noinst_LIBRARIES += libd2core.a
libd2core_a_SOURCES = \
	src/core/err.c src/core/err.h \
	src/core/units.c src/core/units.h \
	src/core/param.c src/core/param.h \
	src/core/inifile.c src/core/inifile.h \
	src/core/model.c src/core/model.h \
	src/core/device.c src/core/device.h \
	src/core/rng.c src/core/rng.h \
	src/core/hash.c src/core/hash.h \
	src/core/clock.c src/core/clock.h \
	src/core/par.c src/core/par.h \
	src/core/prefault.c src/core/prefault.h \
	src/core/vec.h \
	src/core/fileio.c src/core/fileio.h \
	src/core/suggest.c src/core/suggest.h \
	src/core/text.c src/core/text.h \
	src/core/registry.h \
	src/core/version.h
nodist_libd2core_a_SOURCES = src/core/version.c
CLEANFILES += src/core/version.c src/core/version.c.tmp

# Regenerated on every build; rewritten only when the text changes.
src/core/version.c: FORCE
	@mkdir -p src/core
	@v=`cd $(top_srcdir) && $(GIT) describe --always --dirty --tags 2>/dev/null || echo $(PACKAGE_VERSION)`; \
	printf '#include "core/version.h"\nconst char *d2_version(void) { return "%s"; }\n' "$$v" > $@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
.PHONY: FORCE
FORCE:

check_PROGRAMS += tests/t_core
tests_t_core_SOURCES = tests/t_core.c tests/tap.h
tests_t_core_LDADD = libd2core.a $(D2_LIBS)
TESTS += tests/t_core
