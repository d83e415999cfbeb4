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

# Regenerated on every build from src/core/version.sh (which says what the
# version is and why a build with changes carries a hash of its sources);
# rewritten only when the text changes, so a `make` with nothing edited
# recompiles and relinks nothing, and one after an edit gets a new version.
src/core/version.c: FORCE
	@mkdir -p src/core
	@v=`GIT='$(GIT)' $(SHELL) $(top_srcdir)/src/core/version.sh $(top_srcdir) $(PACKAGE_VERSION)` && test -n "$$v" || exit 1; \
	printf '#include "core/version.h"\nconst char *d2_version(void) { return "%s"; }\n' "$$v" > $@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
.PHONY: FORCE
FORCE:
EXTRA_DIST += src/core/version.sh

# A release tarball records the describe of the tree it was made from and
# the hash of its own files (version.sh --dist), so a build of it says that
# describe while its files are unchanged, and a hashed one once edited.
dist-hook: dist-version
dist-version:
	GIT='$(GIT)' $(SHELL) $(top_srcdir)/src/core/version.sh --dist $(top_srcdir) $(distdir) $(PACKAGE_VERSION) > $(distdir)/.tarball-version
.PHONY: dist-version

check_PROGRAMS += tests/t_core
tests_t_core_SOURCES = tests/t_core.c tests/tap.h
tests_t_core_LDADD = libd2core.a $(D2_LIBS)
TESTS += tests/t_core
# The code version (src/core/version.sh) on copies of the sources.
TESTS += tests/version.sh
EXTRA_DIST += tests/version.sh
