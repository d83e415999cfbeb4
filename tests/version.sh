#!/bin/sh
# version.sh - the code version stored with every result (src/core/
# version.sh) on copies of the sources: a clean git checkout gives plain
# `git describe`; one with changes `<describe>-dirty.<12 hex>`, the same
# twice and new after any source byte changes; a tarball's .tarball-version
# and a copy with neither.  Builds nothing; the last check compares the
# built d2moe's --version with the script's output for this tree.
. "${D2_SRCDIR:-.}/tests/lib.sh"
V="$D2_SRCDIR/src/core/version.sh"
ver() { sh "$V" "$@" 2>"$TMP/err"; }
T="$TMP/tree"
mkdir -p "$T"
( cd "$D2_SRCDIR" && tar cf - src configure.ac Makefile.am ) | ( cd "$T" && tar xf - ) && rm -f "$T/src/core/version.c"
ok $? "a copy of src/, configure.ac and Makefile.am"
# a file that is never hashed (docs)
echo "readme" > "$T/README.md"
param="$T/src/sim/params.c"

# 1. no git, no .tarball-version: taken as edited, named by the hash
a=$(ver "$T" 9.9); b=$(ver "$T" 9.9)
echo "$a" | grep -Eq '^9\.9-dirty\.[0-9a-f]{12}$' && [ "$a" = "$b" ]
ok $? "a copy without git: FALLBACK-dirty.<12 hex>, the same twice ($a)"
h0=${a##*.}

# 2. a release tarball: .tarball-version names the describe and the hash
printf 'v1.2-3-gabcdef0\n%s\n' "$h0" > "$T/.tarball-version"
[ "$(ver "$T" 9.9)" = "v1.2-3-gabcdef0" ]; ok $? "a tarball with its files unchanged: the recorded describe"
cp "$param" "$TMP/p.c" && printf '/* x */\n' >> "$param"
a=$(ver "$T" 9.9)
echo "$a" | grep -Eq '^v1\.2-3-gabcdef0-dirty\.[0-9a-f]{12}$' && [ "${a##*.}" != "$h0" ]
ok $? "a tarball edited after unpacking: describe-dirty.<new hash> ($a)"
cp "$TMP/p.c" "$param"
printf 'v1.2-dirty\n%s\n' "$h0" > "$T/.tarball-version"
[ "$(ver "$T" 9.9)" = "v1.2-dirty.$h0" ]; ok $? "a tarball made from a tree with changes: describe-dirty.<its hash>"
rm -f "$T/.tarball-version"

if ! command -v git >/dev/null 2>&1; then
    for i in 1 2 3 4 5 6 7 8 9; do skip "git not installed"; done
else
    g() { git -C "$T" -c user.name=test -c user.email=test@example.org -c commit.gpgsign=false -c tag.gpgsign=false "$@" >/dev/null 2>&1; }
    g init -q && g add -A && g commit -q -m base && g tag v0.5
    ok $? "the copy committed as a git checkout, tagged v0.5"

    # 3. clean: plain describe, as before (existing stores keep matching)
    a=$(ver "$T" 9.9); b=$(ver "$T" 9.9)
    [ "$a" = "v0.5" ] && [ "$b" = "v0.5" ]; ok $? "a clean checkout: plain git describe, twice ($a)"

    # 4. one changed byte in a compiled source: dirty with a hash, stable
    sed -i 's/"router_overhead", PARAM_DOUBLE, F(router_overhead), "0\.015"/"router_overhead", PARAM_DOUBLE, F(router_overhead), "0.025"/' "$param"
    ! cmp -s "$param" "$TMP/p.c"; ok $? "edited: the default router_overhead in src/sim/params.c"
    a=$(ver "$T" 9.9); b=$(ver "$T" 9.9)
    echo "$a" | grep -Eq '^v0\.5-dirty\.[0-9a-f]{12}$' && [ "$a" = "$b" ]
    ok $? "a source edited: v0.5-dirty.<12 hex>, the same twice ($a)"
    sed -i 's/"0\.025"/"0.035"/' "$param"
    c=$(ver "$T" 9.9)
    echo "$c" | grep -Eq '^v0\.5-dirty\.[0-9a-f]{12}$' && [ "$c" != "$a" ]
    ok $? "another byte changed: another version ($c)"
    cp "$TMP/p.c" "$param"
    [ "$(ver "$T" 9.9)" = "v0.5" ]; ok $? "the edit undone: plain describe again"

    # 5. an untracked source (git's --dirty does not see it) counts
    echo 'int x;' > "$T/src/sim/new.c"
    ver "$T" 9.9 | grep -Eq '^v0\.5-dirty\.[0-9a-f]{12}$'; ok $? "an untracked file under src/: dirty with a hash"
    rm -f "$T/src/sim/new.c"

    # 6. a tarball unpacked inside a checkout does not take its describe
    mkdir -p "$T/sub" && ( cd "$T" && tar cf - src configure.ac Makefile.am ) | ( cd "$T/sub" && tar xf - )
    a=$(ver "$T/sub" 9.9)
    echo "$a" | grep -Eq '^9\.9-dirty\.[0-9a-f]{12}$'; ok $? "sources in a subfolder of a checkout: not the checkout's describe ($a)"
    rm -rf "$T/sub"

    # 7. make dist's --dist line pair, read back by the build of the tarball
    mkdir -p "$TMP/dist" && ( cd "$T" && tar cf - src configure.ac Makefile.am ) | ( cd "$TMP/dist" && tar xf - )
    ver --dist "$T" "$TMP/dist" 9.9 > "$TMP/dist/.tarball-version" &&
        [ "$(ver "$TMP/dist" 9.9)" = "v0.5" ]
    ok $? "--dist from a clean checkout: the unpacked tarball says v0.5"
fi

# 8. the built d2moe says what the script says for this tree (make
# regenerates src/core/version.c on every build; run make first)
pkg=$("$D2MOE" --version | sed -n 's/.*(package \(.*\))$/\1/p')
got=$("$D2MOE" --version | awk 'NR == 1 { print $2 }')
want=$(sh "$V" "$D2_SRCDIR" "$pkg")
[ -n "$pkg" ] && [ "$got" = "$want" ]; ok $? "d2moe --version is this tree's version ($got)"
[ "$got" = "$want" ] || diag "d2moe says '$got', version.sh '$want': sources changed since the build?"
done_testing
