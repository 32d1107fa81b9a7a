#!/bin/bash
# interrupt.sh: Ctrl-C and SIGTERM at the coordinator, as an operator sends them. Once: the step
# in flight finishes, that node is rolled back (or, between nodes, the rollout stops), the nodes
# not reached are released, and baton says how to continue. Twice: baton leaves at once and says
# which node is left in which step; its agent finishes the step and `baton rollback` settles it.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
BATON_TEST_KNOBS=1

cluster_sweep
cluster_trap
# A database per node: every node dumps and migrates its own, so node2 is mid-migration when
# the operator interrupts (on one shared database only its first node migrates: shared.sh).
export BATON_CLUSTER_DB_PER_NODE=1
ok "cluster: 3 nodes on gamesrv 1.0.0, a database each" baton_cluster intr 3 1.0.0 ||
    { done_testing; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
versions() { for n in $CLUSTER_NODES; do node_exec "$n" /opt/gamesrv/bin/gamesrv --version; done | tr '\n' ' '; }
records() { for n in $CLUSTER_NODES; do echo "$(state_field "$n" step)"; done | tr '\n' ' '; }
# A rollout in the background that takes Ctrl-C (bash starts background jobs with SIGINT ignored).
start_rollout() { env --default-signal=INT "$BATON" rollout "$1" >"$2" 2>&1 & }

# --- Ctrl-C once, during node2's migration ---------------------------------------------------
slow_step node2 migrate 4
f=$(rollout_file 1.1.0)
start_rollout "$f" "$CLUSTER_DIR/once.out"
pid=$!
ok "node2's migration is running" wait_for 60 tool_running node2 migrate
kill -INT "$pid"
wait "$pid"
code=$?
slow_step node2 migrate 0
out=$(cat "$CLUSTER_DIR/once.out")
printf '%s\n' "$out" >&2
is "$code" 3 "Ctrl-C once: exit 3, the node in flight was rolled back"
like "$out" "migrate +ok .*applied 0002|migrate +ok .*nothing to apply" "the migration in flight was let finish"
like "$out" "INTERRUPTED node2: SIGINT after its migrate step" "the summary says where it stopped"
like "$out" "node2: rolled back to where it was" "and that node2 is back"
like "$out" "upgraded to 1.1.0: node1" "which nodes were upgraded"
like "$out" "untouched: node3" "which were not"
like "$out" "to continue: baton rollout $f" "and how to continue"
is "$(versions)" "1.1.0 1.0.0 1.0.0 " "node1 on 1.1.0, node2 back on 1.0.0, node3 untouched"
is "$(gamesrv_health node2)" 200 "node2 is healthy"
is "$(records)" "committed rolled_back  " "node3 holds no reservation"
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 0 "the rollout run again completes"
like "$out" "node1 \(already on the target version\)" "skipping the node already upgraded"

# --- SIGTERM once, during node1's dump --------------------------------------------------------
slow_step node1 dump 3
f=$(rollout_file 1.2.0)
start_rollout "$f" "$CLUSTER_DIR/term.out"
pid=$!
ok "node1's dump is running" wait_for 30 tool_running node1 dump
kill -TERM "$pid"
wait "$pid"
code=$?
slow_step node1 dump 0
out=$(cat "$CLUSTER_DIR/term.out")
printf '%s\n' "$out" >&2
is "$code" 3 "SIGTERM once: exit 3"
like "$out" "INTERRUPTED node1: SIGTERM after its dump step" "after the dump in flight"
is "$(versions)" "1.1.0 1.1.0 1.1.0 " "every node on 1.1.0"
is "$(records)" "rolled_back committed committed " "node2 and node3 were released"

# --- Ctrl-C twice, during node1's migration ----------------------------------------------------
slow_step node1 migrate 5
start_rollout "$f" "$CLUSTER_DIR/twice.out"
pid=$!
ok "node1's migration is running" wait_for 30 tool_running node1 migrate
kill -INT "$pid"
sleep 0.5
t0=$(now_ms)
kill -INT "$pid"
wait "$pid"
code=$?
t1=$(now_ms)
out=$(cat "$CLUSTER_DIR/twice.out")
printf '%s\n' "$out" >&2
is "$code" 4 "Ctrl-C twice: exit 4"
ok "at once ($((t1 - t0)) ms after the second)" [ $((t1 - t0)) -lt 1500 ]
like "$out" "INTERRUPTED twice: node1 is left in the middle of its upgrade \(node1: interrupted twice during migrate\)" \
    "it names the node and the step left in flight"
like "$out" "next: baton status $f, then baton rollback $f" "and what to do next"
slow_step node1 migrate 0
migrated() { [ "$(state_field node1 step)" = migrate ] && [ -z "$(state_field node1 in_progress)" ]; }
ok "node1's agent finishes the migration and records it" wait_for 30 migrated
like "$("$BATON" status "$f")" "node1 .* inactive +migrate +r" "baton status shows where node1 stands"
out=$("$BATON" rollback "$f" 2>&1)
is "$?" 0 "baton rollback settles it"
printf '%s\n' "$out" >&2
is "$(versions)" "1.1.0 1.1.0 1.1.0 " "every node on 1.1.0 again"
is "$(gamesrv_health node1)" 200 "node1 is healthy"
is "$(records)" "rolled_back committed committed " "nothing is left reserved"

# --- baton abort from another shell, during node2's migration -----------------------------------
slow_step node2 migrate 4
f2=$(rollout_file 1.2.0)
start_rollout "$f2" "$CLUSTER_DIR/abort.out"
pid=$!
ok "node2's migration is running" wait_for 60 tool_running node2 migrate
id=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$CLUSTER_DIR/abort.out")
like "$("$BATON" list)" "$id +running +[0-9T:.-]+Z +gamesrv +1.2.0" "baton list shows it running"
like "$("$BATON" status "$id")" "rollout $id: running \(gamesrv -> 1.2.0" "baton status ID says it runs"
"$BATON" status "$id" --follow >"$CLUSTER_DIR/follow.out" 2>&1 &
follower=$!
out=$("$BATON" abort "$id" 2>&1)
code=$?
wait "$pid"
rcode=$?
slow_step node2 migrate 0
printf '%s\n' "$out" >&2
is "$rcode" 3 "baton abort: the rollout exits 3, as after one Ctrl-C"
is "$code" 3 "and baton abort passes that on"
ended() { ! kill -0 "$follower" 2>/dev/null; }
ok "baton status --follow ends with the rollout" wait_for 10 ended
follow=$(cat "$CLUSTER_DIR/follow.out")
like "$follow" "rollout $id: running" "--follow showed it running"
like "$follow" "rollout $id: rolled-back" "and then how it ended"
is "$(printf '%s\n' "$follow" | grep -c '^NODE ')" "$(printf '%s\n' "$follow" | grep -c '^rollout ')" \
    "each round shows the nodes too"
like "$out" "INTERRUPTED node2: baton abort after its migrate step" "it says where the rollout stopped"
is "$(versions)" "1.2.0 1.1.0 1.1.0 " "node1 upgraded, node2 rolled back, node3 untouched"
is "$(records)" "committed rolled_back committed " "nothing is left reserved (node3's record is back)"
like "$("$BATON" list)" "$id +rolled-back .*INTERRUPTED node2" "baton list shows how it ended"
like "$("$BATON" status "$id")" "rollout $id: rolled-back" "and baton status ID"

# --- baton abort of a rollout whose coordinator was killed (SIGKILL) mid-migration ---------------
slow_step node2 migrate 3
"$BATON" rollout "$f2" >"$CLUSTER_DIR/killed.out" 2>&1 &
pid=$!
ok "node2's migration is running" wait_for 60 tool_running node2 migrate
id=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$CLUSTER_DIR/killed.out")
kill -KILL "$pid"
wait "$pid" 2>/dev/null
slow_step node2 migrate 0
like "$("$BATON" list)" "$id +died" "baton list: the rollout died without a summary"
recorded() { [ -z "$(state_field node2 in_progress)" ] && [ "$(state_field node2 step)" = migrate ]; }
ok "node2's agent finishes and records the migration" wait_for 30 recorded
out=$("$BATON" abort "$id" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton abort of a dead rollout rolls back what it left: exit 0"
like "$out" "node2 \(rolling back $id \(migrate\)\)" "node2, left after its migration, is rolled back"
like "$out" "node1 \(nothing to roll back\)" "node1, committed, is left alone"
is "$(versions)" "1.2.0 1.1.0 1.1.0 " "node2 is back on 1.1.0"
is "$(gamesrv_health node2)" 200 "and healthy"
like "$("$BATON" list)" "$id +aborted" "baton list: aborted"
out=$("$BATON" resume "$id" 2>&1)
is "$?" 2 "an aborted rollout cannot be resumed"

# --- Ctrl-C during pre-flight: nothing changed, nothing reserved -----------------------------
slow_step node2 preflight 3
start_rollout "$f" "$CLUSTER_DIR/pre.out"
pid=$!
ok "node2's pre-flight is running" wait_for 30 tool_running node2 preflight
kill -INT "$pid"
wait "$pid"
code=$?
slow_step node2 preflight 0
out=$(cat "$CLUSTER_DIR/pre.out")
printf '%s\n' "$out" >&2
is "$code" 2 "Ctrl-C during pre-flight: exit 2"
like "$out" "interrupted \(SIGINT\): nothing was stopped, nothing is left reserved" "it says so"
is "$(records)" "committed rolled_back committed " "and no node holds a reservation"
is "$(versions)" "1.2.0 1.1.0 1.1.0 " "nothing changed"
is "$(migration_ids game_node1)" "0001_players.sql,0002_player_level.sql,0003_inventory.sql" \
    "node1's schema is as its 1.2.0 left it"
is "$(migration_ids game_node2)" "0001_players.sql,0002_player_level.sql" \
    "node2's is 1.1.0's, where its rollback left it"
done_testing
