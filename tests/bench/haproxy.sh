#!/bin/bash
# haproxy.sh: availability behind a real haproxy (Debian's, on the cluster's host address, health
# checks `inter 400 fall 2 rise 5`: UP again about 2 s after a node answers, longer than the 1 s
# of min_healthy_time). 4 nodes one at a time (max_unavailable 1), each with a database of its
# own (BATON_CLUSTER_DB_PER_NODE=1: every node dumps and migrates, as node1 alone would with a
# shared one), tests/fixtures/lbload.py sending a GET /players every 10 ms through haproxy's
# frontend for the whole rollout and sampling how many servers haproxy has in service.
#
# Two modes on the same cluster, each upgrade applying one migration per node:
#   plain  1.0.0 -> 1.1.0, agents without `haproxy:` and without hooks: baton stops nodes under
#          haproxy, which only notices by its checks;
#   drain  1.1.0 -> 1.2.0, agents with `haproxy:` (agent.yml rewritten, agents restarted): each
#          node is drained before its stop and done only once haproxy reports it UP again.
#
# lbload.py samples haproxy only between its requests, and a request haproxy holds for a stopped
# server hangs until the client's 1 s timeout: `lbload.py sample` samples haproxy apart from the
# requests, every 10 ms on lbload's clock, for the servers in service.
#
# Writes $BENCH_OUT/haproxy-MODE.dat (lbload.py's samples: T IN_SERVICE FAILED),
# $BENCH_OUT/haproxy-MODE.svc (`lbload.py sample`'s: T IN_SERVICE), $BENCH_OUT/haproxy-MODE.down
# (NODE FROM TO: gamesrv's own downtime on lbload's clock), $BENCH_OUT/haproxy-steps.dat
# (MODE NODE STEP SECONDS: the agents' steps, and gamesrv's own downtime as "down") and
# $BENCH_OUT/haproxy.dat, a line per mode:
#   MODE MIN_IN_SERVICE N REQUESTS FAILED STALLED_S WALL_S MEAN_DOWN_S LBLOAD_MIN_IN_SERVICE
#   MIN_SERVING BELOW_S
# (MIN_IN_SERVICE the fewest at a `lbload.py sample` sample; STALLED_S the client's time in answers
# that took over 0.1 s; WALL_S the rollout's wall time; MEAN_DOWN_S gamesrv's downtime per node,
# averaged; LBLOAD_MIN_IN_SERVICE the fewest at one of lbload.py's own samples; MIN_SERVING the
# fewest servers in service whose gamesrv was not down at that sample (haproxy sends players to
# a stopped server until its checks fail: in service, not serving), BELOW_S the seconds with
# fewer than N - max_unavailable of those; both also in $BENCH_OUT/haproxy-MODE.serving).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=$(realpath "${BUILD:-build}/baton")
OUT=$(realpath -m "${BENCH_OUT:-build/bench}")
mkdir -p "$OUT"
exec 3>&1 1>&2
[ -x "$HAPROXY" ] || { echo "haproxy: skipped, $HAPROXY is not installed (make deps installs it)"; exit 0; }

cluster_sweep
trap 'touch "${CLUSTER_DIR:-/nonexistent}/load.stop" 2>/dev/null; haproxy_stop; cluster_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

unset BATON_TEST_HAPROXY BATON_TEST_HOOKS
export BATON_CLUSTER_DB_PER_NODE=1
API=$HAPROXY_API
FRONT=$HAPROXY_FRONT
baton_cluster hab 4 1.0.0 || exit 1
haproxy_start "inter 400 fall 2 rise 5" || exit 1
in_service() { haproxy_in_service; }
all_up() { [ "$(in_service)" = 4 ]; }
# The service's last outage on NODE, from its own lines in the node's journal: "stopped by signal"
# (it stopped serving) to "serving on" (listening again, just before READY=1).
window() {
    node_exec "$1" journalctl -u gamesrv -o short-unix --no-pager |
        awk '/stopped by signal/ { s = $1 } /serving on/ { e = $1 } END { printf "%.6f %.6f\n", s, e }'
}
agents_with() { # HAPROXY-API or "": agent.yml rewritten, agents restarted
    local n cfg
    cfg=$(mktemp)
    for n in $CLUSTER_NODES; do
        BATON_TEST_HAPROXY=$1 BATON_TEST_DB=$(node_db "$n") agent_config "$n" >"$cfg" &&
            node_push "$n" "$cfg" /etc/baton/agent.yml 0600 &&
            node_exec "$n" systemctl restart baton-agent || { rm -f "$cfg"; return 1; }
        wait_for 10 tcp_open "$(node_ip "$n")" "$BATON_AGENT_PORT" || { rm -f "$cfg"; return 1; }
    done
    rm -f "$cfg"
}

: >"$OUT/haproxy.dat"
: >"$OUT/haproxy-steps.dat"
for run in plain:1.1.0 drain:1.2.0; do
    mode=${run%%:*} v=${run#*:}
    if [ "$mode" = drain ]; then agents_with "$API" || exit 1; fi
    wait_for 20 all_up || { echo "haproxy: not all 4 servers UP before the $mode rollout"; exit 1; }
    stop=$CLUSTER_DIR/load.stop
    rm -f "$stop"
    rm -f "$OUT/haproxy-$mode.dat" "$OUT/haproxy-$mode.down" "$OUT/haproxy-$mode.serving"
    python3 tests/fixtures/lbload.py sample "$API" game "$OUT/haproxy-$mode.dat" "$OUT/haproxy-$mode.svc" "$stop" &
    sampler=$!
    python3 tests/fixtures/lbload.py load "$FRONT" "$API" game "$OUT/haproxy-$mode.dat" "$stop" &
    load=$!
    sleep 1
    f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file "$v")
    t0=$(date +%s.%N)
    "$BATON" rollout "$f" >"$CLUSTER_DIR/hab-$mode.out" 2>&1 || { cat "$CLUSTER_DIR/hab-$mode.out"; exit 1; }
    t1=$(date +%s.%N)
    cat "$CLUSTER_DIR/hab-$mode.out" >&2
    # Until haproxy has every node back (without the drain it may still be counting rises).
    wait_for 20 all_up
    sleep 1
    touch "$stop"
    wait "$load" "$sampler"
    id=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$CLUSTER_DIR/hab-$mode.out")
    for n in $CLUSTER_NODES; do
        for s in stop dump swap migrate start verify commit; do
            a=$(step_time "$n" "$id" "$s" first)
            b=$(step_time "$n" "$id" "$s" last)
            [ -n "$a" ] && echo "$mode $n $s $(echo "$b - $a" | bc)" >>"$OUT/haproxy-steps.dat"
        done
        w=$(window "$n")
        echo "$mode $n down $(echo "$w" | awk '{ printf "%.3f", $2 - $1 }')" >>"$OUT/haproxy-steps.dat"
        echo "$n $w" | awk -v t0="$(awk '/^# t0/ { print $3 }' "$OUT/haproxy-$mode.svc")" \
            '{ printf "%s %.3f %.3f\n", $1, $2 - t0, $3 - t0 }' >>"$OUT/haproxy-$mode.down"
    done
    down=$(awk -v m="$mode" '$1 == m && $3 == "down" { s += $4; k++ } END { printf "%.3f", s / k }' "$OUT/haproxy-steps.dat")
    least=$(awk '/^# samples/ { print $5 }' "$OUT/haproxy-$mode.svc")
    # Serving: in service in haproxy and its gamesrv not in its downtime at that sample.
    awk 'FNR == NR { from[++k] = $2; to[k] = $3; who[k] = $1; next }
        /^#/ { next }
        { m = 0; c = split($3, s, ",")
          for (i = 1; i <= c; i++) { up = 1; for (j = 1; j <= k; j++) if (s[i] == who[j] && $1 >= from[j] && $1 <= to[j]) up = 0; m += up }
          print $1, m }' "$OUT/haproxy-$mode.down" "$OUT/haproxy-$mode.svc" >"$OUT/haproxy-$mode.serving"
    serving=$(awk -v n=3 'NR == 1 || $2 < min { min = $2 } NR > 1 && p < n { below += $1 - t } { t = $1; p = $2 }
        END { printf "%d %.2f", min, below }' "$OUT/haproxy-$mode.serving")
    awk -v mode="$mode" -v n=4 -v least="$least" -v wall="$(echo "$t1 - $t0" | bc)" -v down="$down" -v serving="$serving" '
        /^#/ { req = $3; bad = $5; lbleast = $7; next }
        NR > 1 && $1 - t > 0.1 { stalled += $1 - t }
        { t = $1 }
        END { printf "%s %d %d %d %d %.2f %.2f %s %d %s\n", mode, least, n, req, bad, stalled, wall, down, lbleast, serving }' \
        "$OUT/haproxy-$mode.dat" | tee -a "$OUT/haproxy.dat" >&2
done
echo "haproxy: done" >&2
