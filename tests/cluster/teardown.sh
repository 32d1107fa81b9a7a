#!/bin/bash
# teardown.sh: however a test driver ends (^C, SIGTERM, SIGKILL), its cluster does not outlive
# it: traps tear it down, and cluster_sweep removes what a SIGKILLed driver could not.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/cluster.sh
. tests/lib/pg.sh

PG_TEST_PORT=${PG_TEST_PORT:-55432}
work=$(mktemp -d)
# A driver this test could not end (a failed check) is ended by SIGTERM (its own trap tears its
# cluster down), by SIGKILL if need be, and its cluster swept, so that the next test does not
# find it. Only drivers still running are this shell's jobs: no stale pid is signalled.
cleanup() {
    local p
    for p in $(jobs -p); do
        kill -TERM -- -"$p" 2>/dev/null
        wait_exit "$p" || kill -KILL -- -"$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    cluster_sweep
    rm -rf "$work"
}
trap cleanup EXIT
cluster_sweep

# A driver like any test: a cluster of 2 with a database, then it waits to be interrupted.
# Job control gives it its own process group, as a shell in a terminal would.
set -m
start_driver() { # NAME
    rm -f "$work/ready"
    # SIGINT as in a terminal even where this suite runs with it ignored (a background job of
    # a shell without job control), which no trap in the driver could undo.
    env --default-signal=INT bash -c '
        . tests/lib/cluster.sh; . tests/lib/pg.sh
        cluster_trap
        cluster_up "$1" 2 || exit 1
        pg_up "$CLUSTER_DIR/pg" "$2" "$CLUSTER_HOST_IP" "$CLUSTER_SUBNET.0/24" || exit 1
        for n in $CLUSTER_NODES; do node_pid "$n"; done >"$3/pids"
        head -1 "$CLUSTER_DIR/pg/data/postmaster.pid" >>"$3/pids"
        touch "$3/ready"
        while :; do sleep 0.1; done
    ' driver "$1" "$PG_TEST_PORT" "$work" </dev/null >&2 2>&1 &
    DRIVER=$!
    local deadline=$((SECONDS + 30))
    while [ ! -e "$work/ready" ]; do
        kill -0 "$DRIVER" 2>/dev/null || return 1
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

# Everything the cluster NAME owned is gone (processes, links, folder, database port).
left_of() { # NAME
    local p left=""
    for p in $(cat "$work/pids"); do [ -e "/proc/$p" ] && left="$left pid:$p"; done
    ip link show "$(cluster_bridge_name "$1")" >/dev/null 2>&1 && left="$left bridge"
    [ "$(ip -br link | grep -c "^$(cluster_veth_prefix "$1")")" = 0 ] || left="$left veth"
    [ -e "$BATON_TEST_ROOT/$1" ] && left="$left folder"
    tcp_open "$BATON_TEST_SUBNET.1" "$PG_TEST_PORT" && left="$left postgresql"
    echo "${left# }"
}

wait_exit() { # PID: wait for the driver, at most 30 s
    local deadline=$((SECONDS + 30))
    while kill -0 "$1" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    ! kill -0 "$1" 2>/dev/null
}

ok "driver 1 brings a cluster up" start_driver intr
is "$(left_of intr)" "pid:$(sed -n 1p "$work/pids") pid:$(sed -n 2p "$work/pids") pid:$(sed -n 3p "$work/pids") bridge veth folder postgresql" \
    "the cluster's processes, links, folder and database exist"
kill -INT -- -"$DRIVER" # ^C in a terminal: the whole foreground process group
ok "^C ends driver 1" wait_exit "$DRIVER"
is "$(left_of intr)" "" "^C: nothing of the cluster is left"

ok "driver 2 brings a cluster up" start_driver term
kill -TERM "$DRIVER"
ok "SIGTERM ends driver 2" wait_exit "$DRIVER"
is "$(left_of term)" "" "SIGTERM: nothing of the cluster is left"

ok "driver 3 brings a cluster up" start_driver killed
kill -KILL -- -"$DRIVER"
wait_exit "$DRIVER"
like "$(left_of killed)" "bridge" "SIGKILL: no trap runs, the cluster outlives its driver"
ok "cluster_sweep removes clusters whose driver is gone" cluster_sweep
is "$(left_of killed)" "" "after the sweep nothing of it is left"
done_testing
