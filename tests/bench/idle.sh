#!/bin/bash
# idle.sh: what the coordinator costs while it waits. A rollout of 2 nodes, one at a time, each
# held BENCH_IDLE_WINDOW (default 5 s) in its stability window (min_healthy_time), so that most
# of the wall time is waiting for agents: the coordinator's CPU (user + sys, GNU time) against
# its wall time, and how many times it polled (strace -c, a second run), REPS runs each.
#
# Prints "idle WALL_S USER_S SYS_S" and "idle_polls WALL_S POLLS" lines into $BENCH_OUT/idle.txt
# for bench/report.sh.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=$(realpath "${BUILD:-build}/baton")
OUT=${BENCH_OUT:-build/bench}
REPS=${REPS:-3}
WINDOW=${BENCH_IDLE_WINDOW:-5s}
mkdir -p "$OUT"
: >"$OUT/idle.txt"

cluster_sweep
cluster_trap
export BATON_TEST_ROLLOUT_MIN_HEALTHY=$WINDOW
baton_cluster idle 2 1.0.0 >&2 || { echo "idle: no cluster" >&2; exit 1; }
v=0
for i in $(seq 1 "$REPS"); do
    # Up and back down again, each a rollout of both nodes through their windows.
    for to in 1.1.0 1.0.0; do
        [ "$to" = 1.0.0 ] && flags=--allow-downgrade || flags=
        f=$(rollout_file "$to" "$ROLLOUT_DIR/idle-$to.yml")
        t=$(mktemp)
        if [ $((v % 2)) = 0 ]; then
            /usr/bin/time -f '%e %U %S' -o "$t" "$BATON" rollout $flags "$f" >"$OUT/idle.out" 2>&1
            rc=$?
            [ $rc = 0 ] && echo "idle $(cat "$t")" >>"$OUT/idle.txt"
        else
            s=$(date +%s.%N)
            strace -f -c -e trace=poll,ppoll -o "$t" "$BATON" rollout $flags "$f" >"$OUT/idle.out" 2>&1
            rc=$?
            e=$(date +%s.%N)
            [ $rc = 0 ] && echo "idle_polls $(echo "$e - $s" | bc) $(awk '$NF ~ /^p?poll$/ { n += $4 } END { print n + 0 }' "$t")" >>"$OUT/idle.txt"
        fi
        rm -f "$t"
        v=$((v + 1))
        if [ $rc != 0 ]; then
            echo "idle: rollout to $to failed (exit $rc)" >&2
            cat "$OUT/idle.out" >&2
            exit 1
        fi
    done
done
cat "$OUT/idle.txt"
