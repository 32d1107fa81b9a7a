#!/bin/bash
# fresh.sh: the README's first command on a machine that has nothing. A minimal Debian 12 root
# (debootstrap --variant=minbase, plus make: the one thing a user must have to type `make`)
# gets a clean clone of this repository's HEAD, and `make demo` runs in it as root, alone: it
# must install what it needs itself (saying so in one line), build, and roll the demo cluster
# from 1.0.0 to 1.1.0 (exit 0).
#
# The root runs as the project's own namespace recipe does (tests/lib/cluster.sh): a private
# mount namespace, chroot, the host's /dev, /sys and network (apt must reach the mirror; the
# demo's bridge and nodes are made there and torn down by the demo itself). Skipped, and said
# so, in a sanitized run (the demo builds its own plain binaries there, so it would test nothing
# new) and where the Debian mirror cannot be reached. Downloaded packages are kept in
# /var/cache/baton-fresh between runs (a download cache only: every package is still installed).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/cluster.sh # the demo's bridge name, for the check that it went
BUILD=${BUILD:-build}
CACHE=${BATON_FRESH_CACHE:-/var/cache/baton-fresh}

skip() { echo "1..0 # SKIP $*"; exit 0; }
case $BUILD in build-san*) skip "a sanitized run: the fresh machine builds its own plain binaries" ;; esac
command -v debootstrap >/dev/null || skip "debootstrap is not installed (make deps installs it)"

# The mirror this machine's apt uses (deb822 or one-line sources), so that the fresh root
# reaches Debian the same way.
mirror=${BATON_FRESH_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*debian\)\/*$/\1/p' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
    [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2; exit }' \
        /etc/apt/sources.list 2>/dev/null)
    mirror=${mirror:-http://deb.debian.org/debian}
fi
curl -sf -o /dev/null -m 20 "$mirror/dists/bookworm/Release" || skip "the Debian mirror $mirror cannot be reached"

root=$(mktemp -d /var/tmp/baton-fresh.XXXXXX)
chmod 0755 "$root" # it is the machine's /: every user (postgres) must get through it
# Every process still running inside the root (a daemon a package started, a node left by a
# killed demo), then the root itself; the mount namespace went with its last process.
cleanup() {
    local p pids
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && pids="${pids:-} ${p#/proc/}"
    done
    [ -n "${pids:-}" ] && kill -9 $pids 2>/dev/null && sleep 0.2
    rm -rf --one-file-system "$root"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

diag "debootstrap bookworm from $mirror into $root"
mkdir -p "$CACHE/debootstrap" "$CACHE/apt"
start=$SECONDS
debootstrap --variant=minbase --include=make --cache-dir="$CACHE/debootstrap" bookworm "$root" \
    "$mirror" >"$root.debootstrap.log" 2>&1
ok "debootstrap makes a minimal Debian 12 root" test $? = 0 ||
    { tail -20 "$root.debootstrap.log" >&2; }
rm -f "$root.debootstrap.log"
diag "debootstrap: $((SECONDS - start)) s"
[ -x "$root/usr/bin/make" ] || { done_testing; exit 1; }
nok "the root has no compiler, no PostgreSQL, no systemd" \
    sh -c 'ls "$1"/usr/bin/gcc "$1"/usr/lib/postgresql "$1"/lib/systemd/systemd' sh "$root" 2>/dev/null

# apt in the root as on this machine: its sources and its settings for reaching the mirror.
cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/" 2>/dev/null
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/"
for f in /etc/apt/apt.conf.d/*; do
    grep -q '^Acquire::' "$f" 2>/dev/null && cp "$f" "$root/etc/apt/apt.conf.d/"
done
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
# As in Debian's container images: packages install their daemons but start none (a chroot has
# no init of its own; PostgreSQL's or sshd's would stay behind on the host's network).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 0755 "$root/usr/sbin/policy-rc.d"

# A clean clone: what is committed, nothing of this work tree's builds.
git clone -q --no-hardlinks "$PWD" "$root/root/baton"
ok "a clean clone of HEAD is in the root" test -f "$root/root/baton/Makefile"

diag "make demo in the fresh root"
start=$SECONDS
out=$(unshare --mount --propagation private --fork -- /bin/sh -c '
    r=$1 cache=$2
    # The root a mount of its own, as on a machine: the nodes make their mounts private, which
    # needs / to be a mount point.
    mount --bind "$r" "$r" && mount --rbind /dev "$r/dev" && mount -t proc proc "$r/proc" && mount --rbind /sys "$r/sys" &&
        mount -t tmpfs -o mode=0755 tmpfs "$r/run" && mount -t tmpfs -o mode=1777 tmpfs "$r/tmp" &&
        mount --bind "$cache" "$r/var/cache/apt/archives" || exit 90
    exec chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TERM=dumb BATON_TEST_SUBNET="$3" \
        /bin/sh -c "cd /root/baton && make demo"' sh "$root" "$CACHE/apt" \
    "${BATON_TEST_SUBNET:-10.213.0}" 2>&1 </dev/null)
status=$?
echo "$out" >&2
diag "make demo on the fresh root: $((SECONDS - start)) s"
is "$status" 0 "make demo exits 0 as the first command on the fresh root"
like "$out" "^make: installing [0-9]+ Debian packages that the build and the demo need \(once\): .*postgresql" \
    "it says in one line what it installs and why"
like "$out" "done: 3 of 3 nodes on gamesrv 1\.1\.0" "the demo rolled all three nodes to 1.1.0"
unlike "$out" "FAIL|ROLLBACK" "no node failed or was rolled back"
nok "the demo tore its cluster down (no bridge $(cluster_bridge_name demo) left)" \
    ip link show "$(cluster_bridge_name demo)"
done_testing
