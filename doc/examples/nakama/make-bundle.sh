#!/bin/bash
# make-bundle.sh VERSION BUILD_DIR OUT: a Nakama release bundle for baton, from a build:
#   BUILD_DIR/nakama             the server
#   BUILD_DIR/modules/*.so       Go runtime plugins built by the same toolchain (optional)
#   BUILD_DIR/unit.conf          a systemd drop-in for nakama.service (optional)
# OUT (a .tar.gz) holds nakama, data/modules/ and systemd/unit.conf, as baton unpacks it into
# /opt/nakama/releases/VERSION-SHA12/. The binary must print VERSION (`nakama --version`:
# VERSION+COMMIT); the sha256 printed last goes in a catalog or a rollout file.
set -euo pipefail
v=${1:?usage: make-bundle.sh VERSION BUILD_DIR OUT}
build=${2:?usage: make-bundle.sh VERSION BUILD_DIR OUT}
out=${3:?usage: make-bundle.sh VERSION BUILD_DIR OUT}
[ -x "$build/nakama" ] || { echo "make-bundle.sh: no $build/nakama" >&2; exit 2; }
printed=$("$build/nakama" --version)
case $printed in
    "$v" | "$v"+*) ;;
    *) echo "make-bundle.sh: $build/nakama prints $printed, not $v" >&2; exit 2 ;;
esac
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/data/modules"
install -m 0755 "$build/nakama" "$d/nakama"
for m in "$build"/modules/*.so; do
    [ -e "$m" ] && install -m 0644 "$m" "$d/data/modules/"
done
if [ -f "$build/unit.conf" ]; then
    mkdir -p "$d/systemd"
    install -m 0644 "$build/unit.conf" "$d/systemd/unit.conf"
fi
# Owned by root, in a stable order: the same build makes the same bundle.
tar -C "$d" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -cf - . | gzip -n >"$out"
sha256sum "$out"
