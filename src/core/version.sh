#!/bin/sh
# version.sh - prints the code version stored with every result (src/core/
# version.c is generated from it on every `make`); `--dist` prints the two
# lines of a release tarball's .tarball-version.  POSIX sh + coreutils.
#
#   version.sh SRCDIR FALLBACK          the version of a build of SRCDIR
#   version.sh --dist SRCDIR DISTDIR FALLBACK   .tarball-version for a tarball
#
# The version is part of a stored job's identity (sweep_jobs, audits): a
# sweep, `reproduce` or an audit reuses what is stored under the same
# version.  So it must change whenever the code that computes results
# changes, and stay put when it does not:
#
# - a clean git checkout: `git describe --always --tags`, as before, so the
#   stores made by clean builds keep matching;
# - a tree with changes (git's --dirty, or an untracked file among the
#   hashed ones): `<describe>-dirty.<12 hex>`, the hex being the first 12
#   of a SHA-256 over the hashed files (path and content).  Two builds of
#   the same edits get the same version (a rerun reuses their results); an
#   edited byte gives a new one (a rerun computes anew).  git's "dirty"
#   alone named every edited build of one commit alike, so a changed
#   default reran nothing and the old numbers came back as current;
# - a release tarball (no git, or SRCDIR is not the top of a work tree,
#   e.g. a tarball unpacked inside some other checkout): `make dist` wrote
#   .tarball-version (the describe of the tree it came from and the hash of
#   the tarball's files).  Unchanged files give that describe; edited ones
#   `<describe without -dirty>-dirty.<hash>`, so edits after unpacking are
#   seen as well;
# - no git and no .tarball-version (a copy of the files): nothing tells
#   whether they were edited, so the version is taken as dirty:
#   `FALLBACK-dirty.<hash>` (FALLBACK is the package version).
#
# Hashed: every *.c, *.h and *.mk under src/ (all the code compiled into
# d2moe, the built-in tables included, which are C; the generated
# src/core/version.c excluded, it holds the result), configure.ac and
# Makefile.am (the flags and sources of the build).  A superset of what is
# compiled: an uncompiled scratch file there changes the version too, which
# costs a rerun, never a stale result.  Not hashed: docs, tests, and the
# inputs read at run time (profiles, readings, traces, presets), which a
# job already names by their own content hash; not the compiler, its flags
# from the environment (CFLAGS) or the library versions either.
set -u
LC_ALL=C
export LC_ALL
GIT=${GIT:-git}
[ -n "$GIT" ] || GIT=git

# the files hashed, one per line, relative to $1, sorted
files() {
    ( cd "$1" && {
        find src -type f \( -name '*.c' -o -name '*.h' -o -name '*.mk' \) ! -path src/core/version.c -print
        for f in configure.ac Makefile.am; do [ -f "$f" ] && echo "$f"; done
    } | sort )
}

sha() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum "$@"
    elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$@"
    else cksum "$@"     # CRC-32: weaker, still changes with the files
    fi
}

# first 12 hex of the hash of the files of $1 (path and content of each)
tree_hash() {
    list=$(files "$1") || return 1
    [ -n "$list" ] || { echo "version.sh: no sources under $1/src" >&2; return 1; }
    oifs=$IFS
    IFS='
'
    # shellcheck disable=SC2086 # one path per line, split on newlines only
    h=$(cd "$1" && sha $list | sha) || { IFS=$oifs; return 1; }
    IFS=$oifs
    printf '%s\n' "${h%% *}" | cut -c1-12
}

# the describe of $1 when it is the top of a git work tree (nothing else:
# a tarball unpacked inside another checkout must not take its version)
git_describe() {
    command -v "$GIT" >/dev/null 2>&1 || return 1
    top=$(cd "$1" && "$GIT" rev-parse --show-toplevel 2>/dev/null) || return 1
    [ "$(cd "$top" && pwd -P)" = "$(cd "$1" && pwd -P)" ] || return 1
    d=$(cd "$1" && "$GIT" describe --always --dirty --tags 2>/dev/null) || return 1
    case $d in
        *-dirty) ;;
        *)  # untracked (not ignored) sources: git's --dirty does not see them
            u=$(cd "$1" && "$GIT" ls-files --others --exclude-standard -- src configure.ac Makefile.am 2>/dev/null |
                grep -E '(\.c|\.h|\.mk|^configure\.ac|^Makefile\.am)$' | grep -v '^src/core/version\.c$')
            [ -z "$u" ] || d="$d-dirty" ;;
    esac
    printf '%s\n' "$d"
}

if [ "${1:-}" = --dist ]; then
    [ $# -eq 4 ] || { echo "usage: version.sh --dist SRCDIR DISTDIR FALLBACK" >&2; exit 2; }
    d=$(git_describe "$2") || d=$(sh "$0" "$2" "$4") || exit 1
    h=$(tree_hash "$3") || exit 1
    printf '%s\n%s\n' "$d" "$h"
    exit 0
fi
[ $# -eq 2 ] || { echo "usage: version.sh SRCDIR FALLBACK" >&2; exit 2; }
srcdir=$1
fallback=$2

if d=$(git_describe "$srcdir"); then
    case $d in
        *-dirty) h=$(tree_hash "$srcdir") || exit 1; printf '%s.%s\n' "$d" "$h" ;;
        *) printf '%s\n' "$d" ;;
    esac
    exit 0
fi
h=$(tree_hash "$srcdir") || exit 1
if [ -f "$srcdir/.tarball-version" ]; then
    d=$(sed -n 1p "$srcdir/.tarball-version")
    dh=$(sed -n 2p "$srcdir/.tarball-version")
    case $d in
        *-dirty) printf '%s.%s\n' "$d" "$h" ;;
        *-dirty.*) printf '%s.%s\n' "${d%-dirty.*}-dirty" "$h" ;;
        *)  if [ "$dh" = "$h" ]; then printf '%s\n' "$d"
            else printf '%s-dirty.%s\n' "$d" "$h"; fi ;;
    esac
    exit 0
fi
printf '%s-dirty.%s\n' "$fallback" "$h"
