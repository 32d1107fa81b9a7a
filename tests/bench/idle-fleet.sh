#!/bin/bash
# idle-fleet.sh: what the coordinator costs while a whole fleet waits. BENCH_IDLE_FLEET (default
# 250: 1,000 stops at once time out in the 4 test nodes' systemds) real agents
# (tests/lib/fleet.sh), all in one batch, each held BENCH_IDLE_WINDOW (default 30 s) in its
# stability window: while the nodes are in their windows, each agent's verify sends
# a heartbeat a second and the coordinator has nothing else to do. The agents share one
# database, whose nodes would otherwise take turns from stop to migrate; the rollout is in
# maintenance style (--jump: every node stops, the first dumps, migrates, starts and verifies
# alone, then all the others start), so that the other N - 1 sit in their windows together.
# The coordinator's CPU (utime + stime from /proc, sampled twice a second) over the stretch from
# the moment every node had started until the next verify ended, against that stretch's wall.
#
# The stand-ins' probe points at the cluster's PostgreSQL (it listens: healthy at once), whose
# max_connections is raised for 1,000 pre-flights at once. Each version is staged on every agent
# first (below), so that the measured rollout's pre-flights find the new binary's answers. BATON_A and BATON_B (default: this
# build's baton for both) alternate, one rollout each to 1.1.0, 1.1.1 and 1.2.0.
#
# Prints "idle_fleet LABEL AGENTS WALL_S CPU_S" lines (LABEL a or b) into $BENCH_OUT/idle-fleet.txt.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
. tests/lib/fleet.sh
N=${BENCH_IDLE_FLEET:-250}
WINDOW=${BENCH_IDLE_WINDOW:-30s}
A=$(realpath "${BATON_A:-${BUILD:-build}/baton}")
B=$(realpath "${BATON_B:-${BUILD:-build}/baton}")
OUT=${BENCH_OUT:-build/bench}
mkdir -p "$OUT"
: >"$OUT/idle-fleet.txt"

cluster_sweep
trap 'cluster_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
BATON_CLUSTER_AGENTS=0 baton_cluster idlef 4 1.0.0 >&2 || { echo "idle-fleet: no cluster" >&2; exit 1; }
pg_sql postgres "ALTER SYSTEM SET max_connections = $((N + 200))" &&
    pg_stop "$PG_DIR" && pg_start "$PG_DIR" "$PG_PORT" "$PG_HOST" || exit 1
FLEET_HEALTH_TCP=$PG_HOST:$PG_PORT fleet_up "$N" >&2 || { echo "idle-fleet: fleet_up failed" >&2; exit 1; }

# events FILE STEP OK: how many nodes' STEP ended (ok true or false) so far.
events() { grep '"event":"step"' "$1" | grep "\"step\":\"$2\"" | grep -c "\"ok\":$3"; }

# A plan first (64 agents at a time): each agent resolves its PostgreSQL programs and runs them
# once (it remembers them); a pre-flight refused for its version stops before those checks.
fleet_rollout_file 1.1.0 "$ROLLOUT_DIR/idle-fleet-plan.yml" >/dev/null
"$A" plan "$ROLLOUT_DIR/idle-fleet-plan.yml" >"$OUT/idle-fleet-plan.out" 2>&1

label=a
for version in 1.1.0 1.1.1 1.2.0; do
    bin=$A
    [ "$label" = b ] && bin=$B
    # Staged first by a rollout every pre-flight refuses (version 9.9.9), 64 agents at a time:
    # each agent runs the new binary's version command once (and remembers its answer for that
    # file). 1,000 agents running their commands at once on two cores do not finish within the
    # pre-flight's 10 s per command.
    w=$ROLLOUT_DIR/idle-fleet-warm-$version.yml
    fleet_stage_file "$(realpath "$(gamesrv_bin "$version")")" "$w" >/dev/null
    sed -i 's/^  connect: .*/  connect: 30s/' "$w"
    "$A" rollout "$w" >"$OUT/idle-fleet-warm-$version.out" 2>&1
    f=$ROLLOUT_DIR/idle-fleet-$version.yml
    fleet_rollout_file "$version" "$f" >/dev/null
    sed -i -e 's/^  connect: .*/  connect: 30s/' -e 's/^  step: .*/  step: 10m/' "$f"
    printf 'min_healthy_time: %s\nbatches: ["100%%"]\nmax_unavailable: "100%%"\nmax_in_flight: %s\n' \
        "$WINDOW" "$N" >>"$f"
    json=$OUT/idle-fleet-$version.json
    samples=$OUT/idle-fleet-$version.samples
    : >"$samples"
    "$bin" rollout --json --jump "$f" >"$json" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        # time, the coordinator's CPU ticks, starts ended, verifies ended
        read -r u s < <(awk '{ print $14, $15 }' "/proc/$pid/stat" 2>/dev/null) || break
        echo "$(date +%s.%N) $((u + s)) $(events "$json" start true) $(grep '"event":"step"' "$json" | grep -c '"step":"verify"')" >>"$samples"
        sleep 0.5
    done
    wait "$pid"
    rc=$?
    if [ "$rc" != 0 ]; then
        echo "idle-fleet: rollout to $version failed (exit $rc)" >&2
        tail -3 "$json" | cut -c1-600 >&2
        exit 1
    fi
    # The stretch from every node started until a verify ended after that.
    awk -v n="$N" -v tck="$(getconf CLK_TCK)" -v label="$label" '
        $3 == n && !t0 { t0 = $1; c0 = $2; v0 = $4 }
        t0 && $4 == v0 { t1 = $1; c1 = $2 }
        END { if (t1 > t0) printf "idle_fleet %s %d %.1f %.2f\n", label, n, t1 - t0, (c1 - c0) / tck
              else print "idle_fleet " label " " n " no stretch with every node in its window" }' \
        "$samples" | tee -a "$OUT/idle-fleet.txt"
    [ "$label" = a ] && label=b || label=a
done
