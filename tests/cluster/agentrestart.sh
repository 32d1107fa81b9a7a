#!/bin/bash
# agentrestart.sh: the agent restarted in the middle of a migration, as an operator's
# `systemctl restart baton-agent` or a package upgrade does (the faults issue's sixth case: the
# unit's 30 s stop timeout used to kill the agent and the migration with it, and node2 was
# rolled back). The stop waits for the step in flight: the migration runs once, its Result
# reaches the coordinator, the restarted agent takes the next step, and the rollout ends exit 0.
# (The same through `dpkg -i` of the agent's package is in install.sh.)
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
BATON_TEST_KNOBS=1
export BATON_CLUSTER_DB_PER_NODE=1 # node2 migrates a database of its own

cluster_sweep
cluster_trap
ok "cluster: 2 nodes on gamesrv 1.0.0, a database each" baton_cluster arst 2 1.0.0 ||
    { done_testing; exit 1; }
main_pid() { node_exec node2 systemctl show -p MainPID --value baton-agent; }
ran() { # ROLLOUT STEP PATTERN: how often node2's agent logged PATTERN for STEP of ROLLOUT
    node_exec node2 journalctl -u baton-agent BATON_ROLLOUT_ID="$1" BATON_STEP="$2" -o cat \
        --no-pager | grep -c "$3"
}

slow_step node2 migrate 6
f=$(rollout_file 1.1.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/out" 2>&1 &
pid=$!
ok "node2's migration is running" wait_for 60 tool_running node2 migrate
before=$(main_pid)
start=$SECONDS
node_exec node2 systemctl restart baton-agent
restart_status=$?
took=$((SECONDS - start))
is "$restart_status" 0 "systemctl restart baton-agent mid-migration succeeds"
diag "the restart took ${took} s: it waited for the migration"
nok "when it returned, the migration had ended (the stop waited for it)" tool_running node2 migrate
like "$(migration_ids game_node2)" "0002_player_level.sql" "and it had applied 0002: it was not cut"
isnt() { [ "$1" != "$2" ]; }
ok "the agent is a new process ($before -> $(main_pid))" isnt "$(main_pid)" "$before"
wait "$pid"
code=$?
slow_step node2 migrate 0
out=$(cat "$CLUSTER_DIR/out")
printf '%s\n' "$out" >&2
is "$code" 0 "the rollout ends exit 0"
unlike "$out" "rollback|ROLLBACK|interrupted" "no step was interrupted, no node rolled back"
id=$(printf '%s\n' "$out" | sed -n 's/^baton: rollout \([^:]*\):.*/\1/p')
is "$(ran "$id" migrate '^migrate up (')" 1 "node2's migration ran once"
is "$(node_exec node2 /opt/gamesrv/bin/gamesrv --version)" 1.1.0 "node2 runs 1.1.0"
is "$(migration_ids game_node2)" "0001_players.sql,0002_player_level.sql" "its database migrated"
like "$(node_exec node2 journalctl -u baton-agent -o cat --no-pager)" "stopping after migrate of gamesrv ends" \
    "the stopping agent said it waits for the migration"
done_testing
