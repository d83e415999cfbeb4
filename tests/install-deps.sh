#!/bin/sh
# install-deps.sh - install the Debian packages d2moe needs to build, test
# and plot, when run as root with apt-get; otherwise say what is missing.
pkgs="build-essential autoconf automake pkg-config libgsl-dev libsqlite3-dev
      libjansson-dev libinih-dev libxxhash-dev gnuplot-nox sqlite3 git jq python3"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
    echo "missing Debian packages:$missing (run as root: apt-get install$missing)" >&2
    exit 1
fi
