#!/bin/bash
# batches.sh: the rollout strategy on 5 real nodes sharing one database. Batches [1, 2]: the
# canary alone, then pairs, in that order (from the agents' own timestamps); max_unavailable
# caps how many nodes are down at once; pause_after waits for `baton resume`, also after the
# paused coordinator was stopped; on_failure: rollback-all brings every upgraded node back to
# the old version with the schema and rows it had.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

cluster_sweep
cluster_trap
ok "cluster: 5 nodes on gamesrv 1.0.0 sharing one database" baton_cluster bat 5 1.0.0 ||
    { done_testing; exit 1; }
versions() { for n in $CLUSTER_NODES; do node_exec "$n" /opt/gamesrv/bin/gamesrv --version; done | tr '\n' ' '; }
rollout_id() { sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$1"; }

# A node's unavailable window in a rollout, from its agent's journal: the first line of its stop
# step and the last line of its verify step, as epoch seconds (all nodes share the host clock).
window() { # NODE ROLLOUT
    echo "$(step_time "$1" "$2" stop first) $(step_time "$1" "$2" verify last)"
}
# The most nodes inside their windows at one instant.
max_down() { # ROLLOUT
    for n in $CLUSTER_NODES; do window "$n" "$1"; done |
        awk '{ print $1, 1; print $2, -1 }' | sort -n -k1,1 -k2,2 |
        awk '{ c += $2; if (c > m) m = c } END { print m + 0 }'
}
# 1 when every window of the nodes in $2 starts after every window in $1 ended.
after() { # "NODES BEFORE" "NODES AFTER" ROLLOUT
    local end=0 start=99999999999 w n
    for n in $1; do w=$(window "$n" "$3"); end=$(awk -v a="$end" -v b="${w#* }" 'BEGIN { print (b > a ? b : a) }'); done
    for n in $2; do w=$(window "$n" "$3"); start=$(awk -v a="$start" -v b="${w% *}" 'BEGIN { print (b < a ? b : a) }'); done
    awk -v e="$end" -v s="$start" 'BEGIN { print (s > e ? 1 : 0) }'
}
strategy() { # FILE LINES...: appends strategy keys to a rollout file
    local f=$1
    shift
    printf '%s\n' "$@" >>"$f"
}
# --- batches [1, 2]: the canary, then pairs -------------------------------------------------
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 1.1.0)
strategy "$f" "batches: [1, 2]" "max_unavailable: 2"
"$BATON" rollout "$f" >"$CLUSTER_DIR/b1.out" 2>&1
code=$?
cat "$CLUSTER_DIR/b1.out" >&2
id=$(rollout_id "$CLUSTER_DIR/b1.out")
first_id=$id
is "$code" 0 "batches [1, 2]: the rollout exits 0"
like "$(cat "$CLUSTER_DIR/b1.out")" 'plan: 5 nodes in 3 batches: node1 \| node2, node3 \| node4, node5; at most 2 nodes down at a time' \
    "the plan shows the canary and two pairs"
is "$(versions)" "1.1.0 1.1.0 1.1.0 1.1.0 1.1.0 " "every node runs 1.1.0"
is "$(after node1 "node2 node3" "$id")" 1 "the canary was verified before any other node stopped"
is "$(after "node2 node3" "node4 node5" "$id")" 1 "the first pair was done before the second pair stopped"
down=$(max_down "$id")
diag "at most $down nodes down at once"
is "$down" 2 "nodes of a pair were down side by side, never more than max_unavailable (2)"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql" "the schema was migrated once"

# --- max_unavailable binds inside a batch ------------------------------------------------------
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 1.1.1)
strategy "$f" "batches: [1, 4]" "max_unavailable: 2"
"$BATON" rollout "$f" >"$CLUSTER_DIR/b2.out" 2>&1
code=$?
id=$(rollout_id "$CLUSTER_DIR/b2.out")
is "$code" 0 "batches [1, 4] with max_unavailable 2: exit 0"
down=$(max_down "$id")
diag "at most $down nodes down at once"
is "$down" 2 "a batch of 4 never had more than 2 nodes down"
is "$(versions)" "1.1.1 1.1.1 1.1.1 1.1.1 1.1.1 " "every node runs 1.1.1"

# --- pause_after: canary, continued by baton resume from another shell ------------------------
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 1.2.0)
strategy "$f" "batches: [1, 2]" "pause_after: canary"
"$BATON" rollout "$f" >"$CLUSTER_DIR/p1.out" 2>&1 &
pid=$!
paused() { grep -q '^PAUSED after batch 1 of 3 (the canary)' "$CLUSTER_DIR/p1.out"; }
ok "the rollout pauses after the canary" wait_for 60 paused
id=$(rollout_id "$CLUSTER_DIR/p1.out")
sleep 2
is "$(versions)" "1.2.0 1.1.1 1.1.1 1.1.1 1.1.1 " "while paused: the canary on 1.2.0, the others untouched"
ok "and the coordinator is still waiting" kill -0 "$pid"
like "$(cat "$CLUSTER_DIR/p1.out")" "continue with \`baton resume $id\`" "it says how to continue"
out=$("$BATON" resume "$id" 2>&1)
is "$?" 0 "baton resume $id exits 0 at once"
like "$out" "was paused; its coordinator continues it now" "and says the waiting coordinator goes on"
wait "$pid"
is "$?" 0 "the paused rollout then finishes, exit 0"
is "$(versions)" "1.2.0 1.2.0 1.2.0 1.2.0 1.2.0 " "every node runs 1.2.0"
like "$(cat "$CLUSTER_DIR/p1.out")" "continued by baton resume" "its output says it was continued"

# --- rollback-all: node4 fails verify; every node this rollout upgraded goes back ---------------
node_exec node4 sh -c 'echo GAMESRV_FAULT=2.0.0:health >> /etc/gamesrv/gamesrv.conf'
ids_before=$(migration_ids game)
players_mid=$(players)
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 2.0.0)
strategy "$f" "batches: [1, 2]" "on_failure: rollback-all"
out=$("$BATON" rollout "$f" --json 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 3 "rollback-all: exit 3"
like "$out" "FAILED on node4: .*not healthy" "the summary names node4 and why"
is "$(versions)" "1.2.0 1.2.0 1.2.0 1.2.0 1.2.0 " "every node is back on 1.2.0"
is "$(migration_ids game)" "$ids_before" "the schema is back to 1.2.0's (0004 undone)"
is "$(players)" "$players_mid" "every player row is as it was"
# node5 ran beside node4 (same batch) and was verified while node4 still waited for health.
order=$(printf '%s\n' "$out" | grep '"event":"rollback"' | grep -o '"node":"node[0-9]"' | grep -o 'node[0-9]' | tr '\n' ' ')
is "$order" "node4 node5 node3 node2 node1 " "the failed node first, then newest first: node5, node3, node2, the canary last"
is "$(printf '%s\n' "$out" | grep -c '"event":"step","node":"node[0-9]","step":"commit"')" 0 \
    "no node committed: commits wait for the whole fleet under rollback-all"
for n in $CLUSTER_NODES; do
    is "$(gamesrv_health "$n")" 200 "$n is healthy on 1.2.0"
done

# --- on_failure: continue with max_failures 1; healthy_deadline 3s -------------------------------
# node2 and node4 are unhealthy on 2.0.0: the first failure is tolerated, the second halts.
node_exec node2 sh -c 'echo GAMESRV_FAULT=2.0.0:health >> /etc/gamesrv/gamesrv.conf'
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 2.0.0)
strategy "$f" "on_failure: continue" "max_failures: 1" "healthy_deadline: 3s"
out=$("$BATON" rollout "$f" 2>&1)
code=$?
cont_id=$(printf '%s\n' "$out" | sed -n 's/^baton: rollout \([^:]*\):.*/\1/p')
printf '%s\n' "$out" >&2
is "$code" 3 "continue: exit 3 (nodes failed and were rolled back)"
like "$out" "verify +FAIL .*not healthy after 3 s" "healthy_deadline 3s replaced the agent's 8 s"
is "$(versions)" "2.0.0 1.2.0 2.0.0 1.2.0 1.2.0 " \
    "node2 failed and the rollout went on; node4 was the second failure: halt, node5 untouched"
like "$out" "node2: rolled back to where it was" "the summary names node2"
like "$out" "node4: rolled back to where it was" "and node4"
like "$out" "untouched: node5" "and the node it never reached"
for n in node2 node4; do
    node_exec "$n" sed -i '/^GAMESRV_FAULT=/d' /etc/gamesrv/gamesrv.conf
done

# --- progress_deadline: no node done within 3 s halts; the node in flight is rolled back -------
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=5s rollout_file 2.0.0)
strategy "$f" "progress_deadline: 3s"
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 3 "progress_deadline: exit 3"
like "$out" "progress_deadline: no node finished within 3 s" "it says the deadline passed"
like "$out" "INTERRUPTED node2: progress_deadline passed after its verify step" \
    "node2's verify was let finish, then node2 was rolled back"
is "$(versions)" "2.0.0 1.2.0 2.0.0 1.2.0 1.2.0 " "no node changed version"

# --- Ctrl-C while paused, then baton resume takes over ---------------------------------------------
# node1 and node3 are on 2.0.0 already: the batches are node2, then node4 and node5.
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 2.0.0)
strategy "$f" "batches: [1, 2]" "pause_after: canary"
"$BATON" rollout "$f" >"$CLUSTER_DIR/p2.out" 2>&1 &
pid=$!
paused() { grep -q '^PAUSED after batch 1' "$CLUSTER_DIR/p2.out"; }
ok "paused after the canary" wait_for 60 paused
id=$(rollout_id "$CLUSTER_DIR/p2.out")
kill -INT "$pid"
wait "$pid"
is "$?" 4 "Ctrl-C while paused: exit 4 (every node settled, the fleet mixed)"
like "$(cat "$CLUSTER_DIR/p2.out")" "to continue: baton resume $id" "it says how to continue"
is "$(versions)" "2.0.0 2.0.0 2.0.0 1.2.0 1.2.0 " "the canary (node2) stays on 2.0.0, the others untouched"
is "$(state_field node4 rollout_id | grep -c "$id")" 0 "node4's reservation was released"
out=$("$BATON" resume "$id" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton resume $id finishes the rollout"
is "$(printf '%s\n' "$out" | grep -c PAUSED)" 0 "without pausing again at the canary"
is "$(versions)" "2.0.0 2.0.0 2.0.0 2.0.0 2.0.0 " "every node runs 2.0.0"
is "$(players)" "$players_mid" "no player row was lost"

# --- baton rollback ROLLOUT_ID: a deliberate downgrade of committed nodes, newest first ---------
# The last rollout committed node2 (its canary), then node4 and node5; node1 and node3 were
# upgraded by the continue rollout, whose canary (node1) applied 0004.
ids_2=$(migration_ids game)
out=$("$BATON" rollback "$id" --json 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton rollback $id: exit 0"
undo_order=$(printf '%s\n' "$out" | grep '"message":"undoing' | grep -o '"node":"node[0-9]"' | grep -o 'node[0-9]' | tr '\n' ' ')
like "$undo_order" "^node[45] node[45] node2 $" "its nodes were undone newest first, its canary last"
is "$(versions)" "2.0.0 1.2.0 2.0.0 1.2.0 1.2.0 " "only that rollout's nodes went back"
is "$(migration_ids game)" "$ids_2" "the schema stays: node1 and node3 still need 0004"
like "$("$BATON" list)" "$id +undone" "baton list: undone"
out=$("$BATON" rollback "$cont_id" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton rollback of the rollout that migrated: exit 0"
is "$(printf '%s\n' "$out" | grep "(undoing $cont_id (committed))" | grep -o 'node[0-9]' | tr '\n' ' ')" \
    "node3 node1 " "node3 first, then node1, whose migration it was"
is "$(versions)" "1.2.0 1.2.0 1.2.0 1.2.0 1.2.0 " "every node is back on 1.2.0"
is "$(migration_ids game)" "$ids_before" "0004 was migrated down: the schema is 1.2.0's"
is "$(players)" "$players_mid" "and every player row is there"
for n in $CLUSTER_NODES; do
    is "$(gamesrv_health "$n")" 200 "$n is healthy"
done
out=$("$BATON" rollback "$first_id" 2>&1)
is "$?" 4 "undoing a rollout whose nodes later rollouts changed: exit 4"
like "$out" "CANNOT UNDO: a later rollout changed it" "it says why, node by node"
is "$(versions)" "1.2.0 1.2.0 1.2.0 1.2.0 1.2.0 " "and changes nothing"

done_testing
