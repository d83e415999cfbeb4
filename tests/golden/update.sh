#!/bin/sh
# update.sh - regenerate the golden outputs in tests/golden/ from the cases
# listed in tests/golden/cases, with the d2moe binary $D2MOE (default
# build/d2moe).  Run from anywhere: sh tests/golden/update.sh
#
# A commit that changes a golden file must say which results changed and
# why (a new planner, a fixed bug, a changed generator stream, ...): the
# golden files are the record that no result changes silently.
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
: "${D2MOE:=$src/build/d2moe}"
. "$here/common.sh"
[ -x "$D2MOE" ] || { echo "update.sh: no d2moe binary at $D2MOE (set D2MOE)" >&2; exit 2; }
rm -f "$here"/*.golden
grep -v '^#' "$here/cases" | grep -v '^ *$' | while read -r args; do
    f=$here/$(golden_name $args) || exit 2
    { printf '# d2moe simulate %s\n' "$args"
      printf '# made by tests/golden/update.sh: a commit that changes this file says which results changed and why\n'
      golden_run "$D2MOE" "$src" $args; } > "$f.tmp" && mv "$f.tmp" "$f" || { rm -f "$f.tmp"; echo "update.sh: failed: $args" >&2; exit 1; }
    echo "wrote tests/golden/$(basename "$f")"
done
