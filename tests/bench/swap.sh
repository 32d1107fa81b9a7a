#!/bin/bash
# swap.sh: the swap step of a 60 MiB release bundle (agent/artifact/release.c: `current` switched to a
# release the pre-flight unpacked while the service ran) against copying the same files into
# place while the service is stopped (cp -a of the release, then mv over the old one: what a
# copy-based deploy does in its downtime). One node, release_dir set, two bundles of the gamesrv
# binary and 60 MiB of incompressible assets, rolled back and forth, REPS each.
#
# Writes $BENCH_OUT/swap.dat: CONTENDER SECONDS, one line per run; contenders `switch` (the
# swap step), `preflight` (the whole pre-flight, the unpacking in it, service still running)
# and `copy`.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=$(realpath "${BUILD:-build}/baton")
REPS=${REPS:-3}
OUT=$(realpath -m "${BENCH_OUT:-build/bench}")
mkdir -p "$OUT"
exec 3>&1 1>&2

cluster_sweep
cluster_trap
baton_cluster swp 1 1.1.0 || exit 1
BIN=/opt/gamesrv/current/bin/gamesrv
node_exec node1 sh -ec "
    mkdir -p /opt/gamesrv/current/bin
    mv /opt/gamesrv/bin/gamesrv $BIN
    sed -i 's|/opt/gamesrv/bin/gamesrv|$BIN|' /etc/systemd/system/gamesrv.service
    sed -i -e 's|^    binary: .*|    binary: $BIN\n    release_dir: /opt/gamesrv\n    keep_releases: 2|' \
        /etc/baton/agent.yml
    systemctl daemon-reload
    systemctl restart gamesrv baton-agent" || exit 1
bundle() { # VERSION: the binary and 60 MiB of assets in 60 files
    local d out=$CLUSTER_DIR/gamesrv-$1.tar.gz
    d=$(mktemp -d)
    mkdir -p "$d/bin" "$d/assets"
    cp "$(gamesrv_bin "$1")" "$d/bin/gamesrv"
    for i in $(seq 60); do head -c 1048576 /dev/urandom >"$d/assets/a$i.bin"; done
    tar -C "$d" -czf "$out" . && rm -rf "$d" && echo "$out"
}
f110=$(rollout_file 1.1.0 "$CLUSTER_DIR/r110.yml")
f111=$(rollout_file 1.1.1 "$CLUSTER_DIR/r111.yml")
sed -i "s|^artifact: .*|artifact: $(bundle 1.1.0)|" "$f110"
sed -i "s|^artifact: .*|artifact: $(bundle 1.1.1)|" "$f111"
echo "swap: bundles of $(($(stat -c %s "$CLUSTER_DIR/gamesrv-1.1.1.tar.gz") >> 20)) MiB" >&2
# The first rollout takes the plain install over; the measured ones switch between releases.
BATON_TEST_ROLLOUT_MIN_HEALTHY=0s "$BATON" rollout "$f111" >/dev/null 2>&1 || exit 1

: >"$OUT/swap.dat"
f=$f110
for rep in $(seq "$REPS"); do
    # A release unpacked anew each time: the one rolled to is removed first (not current).
    name=$(node_exec node1 sh -c "ls /opt/gamesrv/releases | grep '^$(sed -n 's/^version: //p' "$f")-'" || true)
    [ -n "$name" ] && node_exec node1 rm -rf "/opt/gamesrv/releases/$name"
    sed -i '/^min_healthy_time:/d' "$f" && echo "min_healthy_time: 0s" >>"$f"
    "$BATON" rollout --json "$f" >"$CLUSTER_DIR/swap.json" 2>&1 || { tail -5 "$CLUSTER_DIR/swap.json"; exit 1; }
    ms=$(jq -r 'select(.event == "step" and .step == "swap" and .ok == true) | .ms' "$CLUSTER_DIR/swap.json" | tail -1)
    printf 'switch %.3f\n' "$(echo "$ms / 1000" | bc -l)" | tee -a "$OUT/swap.dat" >&2
    ms=$(jq -r 'select(.event == "check" and .phase == "preflight" and .ok == true) | .ms' "$CLUSTER_DIR/swap.json" | tail -1)
    printf 'preflight %.3f\n' "$(echo "$ms / 1000" | bc -l)" | tee -a "$OUT/swap.dat" >&2
    # The copy a copy-based deploy makes while stopped: the whole release, then a rename.
    cur=$(node_exec node1 readlink -f /opt/gamesrv/current)
    t0=$(date +%s.%N)
    node_exec node1 sh -c "cp -a $cur /opt/gamesrv/copy.tmp && sync -f /opt/gamesrv/copy.tmp && mv -T /opt/gamesrv/copy.tmp /opt/gamesrv/copy" || exit 1
    t1=$(date +%s.%N)
    node_exec node1 rm -rf /opt/gamesrv/copy
    printf 'copy %.3f\n' "$(echo "$t1 - $t0" | bc)" | tee -a "$OUT/swap.dat" >&2
    f=$([ "$f" = "$f110" ] && echo "$f111" || echo "$f110")
done
echo "swap: done" >&2
