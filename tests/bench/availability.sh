#!/bin/bash
# availability.sh: a rollout under client load (load.py: one GET /players per node every 10 ms,
# test-cluster addresses only), 4 nodes one at a time (max_unavailable 1), min_healthy_time 1 s,
# without and then with drain hooks (the hook marks the node out of service for the client and
# waits 0.1 s, a load balancer's deregistration delay, before the agent stops the unit).
#
# Writes $BENCH_OUT/availability-{plain,drain}.dat (load.py's samples) and
# $BENCH_OUT/availability.dat: MODE MIN_SERVING N REQUESTS FAILED.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=$(realpath "${BUILD:-build}/baton")
OUT=$(realpath -m "${BENCH_OUT:-build/bench}")
mkdir -p "$OUT"
exec 3>&1 1>&2

cluster_sweep
cluster_trap
BATON_TEST_HOOKS=1 baton_cluster avl 4 1.1.0 || exit 1
targets=$CLUSTER_NODES
: >"$OUT/availability.dat"
v=1.1.1
for mode in plain drain; do
    for n in $CLUSTER_NODES; do
        node_exec "$n" sh -c 'rm -f /run/baton-hooks.log /run/baton-hook-drain-delay'
        [ "$mode" = drain ] && node_exec "$n" sh -c 'echo 0.1 > /run/baton-hook-drain-delay'
    done
    stop=$CLUSTER_DIR/load.stop
    rm -f "$stop"
    specs=$(for n in $targets; do
        root=/proc/$(node_pid "$n")/root
        # Without drain the client never sees the hooks' log: every node stays in service.
        [ "$mode" = plain ] && root=/nonexistent
        echo "$n=$(node_ip "$n"):$GAMESRV_PORT:$root"
    done)
    # shellcheck disable=SC2086
    python3 tests/bench/load.py "$OUT/availability-$mode.dat" "$stop" $specs &
    load=$!
    sleep 1
    f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file "$v")
    "$BATON" rollout "$f" >"$CLUSTER_DIR/avl-$mode.out" 2>&1 || { cat "$CLUSTER_DIR/avl-$mode.out"; exit 1; }
    sleep 1
    touch "$stop"
    wait "$load"
    awk -v mode="$mode" -v n=4 '
        /^#/ { req = $3; bad = $5; next }
        NR == 1 || $2 < min { min = $2 }
        END { print mode, min, n, req, bad }' "$OUT/availability-$mode.dat" | tee -a "$OUT/availability.dat" >&2
    v=$([ "$v" = 1.1.1 ] && echo 1.1.0 || echo 1.1.1)
done
echo "availability: done" >&2
