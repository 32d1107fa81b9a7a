#!/bin/bash
# haproxy.sh: the agent's built-in haproxy (`haproxy:` of a service) on a real cluster, with
# Debian's haproxy in front of 3 nodes on the cluster's host address (health checks every 400 ms,
# rise 5, fall 2: a node is UP again about 2 s after it answers, longer than the 1 s of
# min_healthy_time, so a node healthy by its own probe is not yet back in haproxy).
#
# A rollout one node at a time under a client load through haproxy (a GET /players every 10 ms,
# tests/fixtures/lbload.py) loses no request, and haproxy never has fewer than 2 of 3 servers in
# service: each node is drained before it stops and counts as done only once haproxy reports it
# UP again. A session held open on node1 past its drain_timeout: node1 is not stopped, haproxy
# has it back in service, the rollout ends rolled back on node1 with nothing else touched; the
# agent SIGKILLed while it waits: node1 rolled back without a restart, haproxy has it in service
# again. The
# runtime API down, a server haproxy does not have, a server an operator put in MAINT: refused
# by the pre-flight (exit 2) saying which, nothing stopped, MAINT left as it was; `baton plan`
# says the same.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
[ -x "$HAPROXY" ] || { echo "1..0 # SKIP haproxy is not installed (make deps installs it)"; exit 0; }

cluster_sweep
stop_clients() { touch "$CLUSTER_DIR/load.stop" 2>/dev/null; }
trap 'stop_clients; haproxy_stop; cluster_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

API=$HAPROXY_API
FRONT=$HAPROXY_FRONT
CHECKS="inter 400 fall 2 rise 5"
export BATON_TEST_HAPROXY=$API BATON_TEST_HAPROXY_DRAIN=3s
ok "cluster: 3 nodes on gamesrv 1.0.0, one shared database, agents with haproxy: set" \
    baton_cluster hap 3 1.0.0 || { done_testing; exit 1; }
ok "haproxy runs in front of the 3 nodes" haproxy_start "$CHECKS" use-server
stat_of() { haproxy_stat "$@"; }
status() { haproxy_stat "$1" status; }
try_rollout() { # NAME VERSION: baton rollout to VERSION, its output in NAME.out, its exit in rc
    "$BATON" rollout "$(rollout_file "$2")" >"$CLUSTER_DIR/$1.out" 2>&1
    rc=$?
    cat "$CLUSTER_DIR/$1.out" >&2
}
all_up() { [ "$(for n in $CLUSTER_NODES; do status "$n"; done | tr '\n' ' ')" = "UP UP UP " ]; }
ok "haproxy reports the 3 servers UP" wait_for 20 all_up

# --- a rollout under load -------------------------------------------------------------------------
start_load() { # NAME
    rm -f "$CLUSTER_DIR/load.stop"
    tests/fixtures/lbload.py load "$FRONT" "$API" game "$CLUSTER_DIR/$1.dat" "$CLUSTER_DIR/load.stop" &
    LOAD=$!
    wait_for 10 test -s "$CLUSTER_DIR/$1.dat"
}
stop_load() {
    touch "$CLUSTER_DIR/load.stop"
    wait "$LOAD"
}
ok "the client load runs through haproxy" start_load roll
try_rollout r1 1.1.0
is "$rc" 0 "rollout to 1.1.0, one node at a time behind haproxy: exit 0"
stop_load
summary=$(tail -1 "$CLUSTER_DIR/roll.dat")
echo "# $summary" >&2
like "$summary" "^# requests [0-9]+ failed 0 " "no client request failed ($summary)"
like "$summary" " min_in_service 2$" "haproxy never had two nodes out at once"
ok "the load sampled the whole rollout (over 100 requests)" \
    test "$(awk '/^# / { print $3 }' "$CLUSTER_DIR/roll.dat")" -gt 100
is "$(node_versions)" "1.1.0 1.1.0 1.1.0 " "every node runs 1.1.0"
ok "haproxy reports the 3 servers UP after it" all_up
log1=$(node_exec node1 journalctl -u baton-agent -o cat --no-pager)
like "$log1" "haproxy: game/node1 drained in [0-9.]+ s" "node1's agent drained its server before the stop"
like "$log1" "haproxy: game/node1 UP after [0-9.]+ s" "and waited until haproxy reported it UP"
# The order on every node: drained, stopped, ..., UP, and only then the next node drains.
order=$(for n in $CLUSTER_NODES; do
    node_exec "$n" journalctl -u baton-agent -o short-unix --no-pager |
        sed -n "s/^\([0-9.]*\) .*haproxy: game\/\($n\) \(drained\|UP\).*/\1 \2 \3/p"
done | sort -n | awk '{ printf "%s:%s ", $2, $3 }')
is "$order" "node1:drained node1:UP node2:drained node2:UP node3:drained node3:UP " \
    "each node is UP in haproxy before the next one is drained"

# --- a session that does not end within drain_timeout -----------------------------------------------
rm -f "$CLUSTER_DIR/load.stop"
tests/fixtures/lbload.py hold "$FRONT" node1 "$CLUSTER_DIR/load.stop" &
held=$!
held_open() { [ "$(stat_of node1 scur)" = 1 ]; }
ok "a client holds a session open on node1" wait_for 10 held_open
stops=$(cluster_stops)
record="$(state_field node1 rollout_id) $(state_field node1 step)"
f=$(rollout_file 1.2.0)
try_rollout r2 1.2.0
is "$rc" 3 "rollout to 1.2.0 with node1's session held: exit 3 (node1 failed, rolled back)"
like "$(cat "$CLUSTER_DIR/r2.out")" "drain failed: haproxy: game/node1 still has 1 session and 0 queued after 3\.[0-9] s \(drain_timeout\): not stopped" \
    "the stop step says why, naming the server and drain_timeout"
is "$(cluster_stops)" "$stops" "no node was stopped"
is "$(status node1)" UP "haproxy has node1 back in service (not left draining)"
is "$(node_versions)" "1.1.0 1.1.0 1.1.0 " "every node still runs 1.1.0"
is "$(state_field node1 rollout_id) $(state_field node1 step)" "$record" \
    "node1's agent record is back to the last rollout's, committed"

# The agent killed (SIGKILL, main PID) while it waits for the held session: systemd restarts it,
# the interrupted stop step is rolled back, and haproxy has node1 in service again.
ok "the client still holds its session on node1" held_open
draining() { [ "$(status node1)" = DRAIN ]; }
"$BATON" rollout "$f" >"$CLUSTER_DIR/r2b.out" 2>&1 &
roll=$!
ok "node1's agent drains its server" wait_for 20 draining
ok "the agent is killed mid-drain" node_exec node1 systemctl kill -s KILL --kill-whom=main baton-agent
wait "$roll"
rc=$?
cat "$CLUSTER_DIR/r2b.out" >&2
is "$rc" 3 "the rollout ends with node1 rolled back (exit 3)"
node1_up() { [ "$(status node1)" = UP ]; }
ok "haproxy has node1 back in service" wait_for 10 node1_up
is "$(node_versions)" "1.1.0 1.1.0 1.1.0 " "every node still runs 1.1.0"
is "$(cluster_stops)" "$stops" "no node was stopped (the stop step never asked systemd)"
like "$(cat "$CLUSTER_DIR/r2b.out")" "rollback +ok .*back on 1\.1\.0" "node1's rollback: back on 1.1.0"
stop_clients
wait "$held"

# --- haproxy's runtime API down, an unknown server ------------------------------------------------
haproxy_stop
gone() { ! tcp_open "${API%:*}" "${API##*:}"; }
ok "haproxy stopped" wait_for 10 gone
try_rollout r3 1.2.0
is "$rc" 2 "rollout with haproxy's runtime API down: refused (exit 2)"
like "$(cat "$CLUSTER_DIR/r3.out")" "preflight +node1 +FAIL .*haproxy runtime API $API: Connection refused" \
    "the pre-flight names the runtime API and what happened"
is "$(cluster_stops)" "$stops" "no node was stopped"
out=$("$BATON" plan "$(rollout_file 1.2.0)" 2>&1)
is "$?" 2 "baton plan says the rollout would be refused (exit 2)"
like "$out" "haproxy runtime API $API: Connection refused" "naming the same problem as the pre-flight"

without_node1() { local CLUSTER_NODES="node2 node3"; haproxy_start "$CHECKS" use-server; }
ok "haproxy runs again, without a server called node1" without_node1
up_again() { [ "$(status node2)" = UP ]; }
wait_for 20 up_again
try_rollout r4 1.2.0
is "$rc" 2 "rollout where haproxy has no server node1: refused (exit 2)"
like "$(cat "$CLUSTER_DIR/r4.out")" "preflight +node1 +FAIL .*haproxy has no server game/node1" \
    "the pre-flight says so"

ok "haproxy with node1 again" haproxy_start "$CHECKS" use-server
wait_for 20 node1_up
python3 -c '
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.sendall(b"set server game/node1 state maint\n")
print(s.recv(100))' "$API" >&2
is "$(status node1)" MAINT "an operator puts node1 in maintenance"
try_rollout r5 1.2.0
is "$rc" 2 "rollout with node1 in MAINT: refused (exit 2)"
like "$(cat "$CLUSTER_DIR/r5.out")" "haproxy has game/node1 in MAINT .*state ready. first" \
    "the pre-flight says baton would undo it, and how to go on"
is "$(status node1)" MAINT "node1 stays in maintenance"
is "$(cluster_stops)" "$stops" "no node was stopped"
is "$(node_versions)" "1.1.0 1.1.0 1.1.0 " "every node still runs 1.1.0"
done_testing
