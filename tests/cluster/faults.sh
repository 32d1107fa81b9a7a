#!/bin/bash
# faults.sh: the bad day, on a real cluster. A migration that hangs while operators ask for
# status and start a second rollout; the agent frozen (SIGSTOP) for 15 s during a migration; a
# 20 s network partition during a migration; the agent frozen past `liveness` during a dump.
# Each ends with settled nodes (done or rolled back), a true report and no lost data.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
ZPOKE=${BUILD:-build}/tests/tools/zpoke
BATON_TEST_KNOBS=1
BATON_TEST_MIGRATE_TIMEOUT=15s # the hanging migration gives up after this

cluster_sweep
cluster_trap
ok "cluster: 3 nodes on gamesrv 1.0.0 sharing one database" baton_cluster faults 3 1.0.0 ||
    { done_testing; exit 1; }
poke() { ZPOKE_SERVER_KEY=$(agent_pub "$1") ZPOKE_KEY_FILE=$(keys_dir)/coordinator.key "$ZPOKE" "tcp://$(node_ip "$1"):$BATON_AGENT_PORT" "${@:2}"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
stops() { for n in $CLUSTER_NODES; do unit_stops "$n"; done | tr '\n' ' '; }
players_before=$(players)

# --- 1. While a migration hangs, the agent answers ------------------------------------------
f=$(rollout_file 1.1.0+migrate-hang)
"$BATON" rollout "$f" >"$CLUSTER_DIR/hang.out" 2>&1 &
first=$!
ok "node1's migration is under way" wait_for 30 in_progress_is node1 migrate
sleep 1
t0=$(now_ms)
status=$("$BATON" status "$f")
t1=$(now_ms)
printf '%s\n' "$status" >&2
ok "baton status answers within 1 s while the migration hangs ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 1000 ]
like "$status" "node1 .* migrate \(running [0-9]+ s\)" "status says node1 is running its migration"
t0=$(now_ms)
out=$("$BATON" rollout "$(rollout_file 1.1.0)" 2>&1)
code=$?
t1=$(now_ms)
printf '%s\n' "$out" >&2
is "$code" 2 "a second coordinator is refused (exit 2)"
ok "within 1 s ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 1000 ]
like "$out" "node1 +FAIL .*busy: rollout .* is running migrate" "it says node1 is busy and with what"
t0=$(now_ms)
out=$(poke node1 step stop rtest-second)
t1=$(now_ms)
like "$out" "^BUSY busy: rollout .* is running migrate" "a command of another rollout gets BUSY"
ok "at once ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 1000 ]
wait "$first"
is "$?" 3 "the hanging migration times out and node1 is rolled back (exit 3)"
like "$(cat "$CLUSTER_DIR/hang.out")" "migrate +FAIL .*timed out" "the report says the migration timed out"
is "$(node_exec node1 /opt/gamesrv/bin/gamesrv --version)" 1.0.0 "node1 is back on 1.0.0"
is "$(migration_ids game)" "0001_players.sql" "the schema is back"

# The rest holds steps open on purpose: give migrations time (the agents re-read their config).
BATON_TEST_MIGRATE_TIMEOUT=90s
for n in $CLUSTER_NODES; do
    agent_install "$n" && node_exec "$n" systemctl restart baton-agent
done
agents_answer() { for n in $CLUSTER_NODES; do poke "$n" hello || return 1; done; }
ok "agents restarted with a 90 s migration timeout" wait_for 10 agents_answer

# --- 2. The agent frozen for 15 s during a migration ---------------------------------------
slow_step node1 migrate 5
stops_before=$(stops)
f=$(rollout_file 1.1.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/freeze.out" 2>&1 &
first=$!
ok "node1's migration is running" wait_for 30 tool_running node1 migrate
pid=$(agent_pid node1)
node_exec node1 kill -STOP "$pid"
sleep 15
node_exec node1 kill -CONT "$pid"
slow_step node1 migrate 0
wait "$first"
code=$?
out=$(cat "$CLUSTER_DIR/freeze.out")
printf '%s\n' "$out" >&2
is "$code" 0 "after a 15 s freeze the rollout completes (exit 0)"
like "$out" "migrate +ok .*applied 0002_player_level.sql" "node1's migration result was collected"
like "$out" "done: 3 of 3 nodes on gamesrv 1.1.0" "every node is on 1.1.0"
rid=$(state_field node1 rollout_id)
is "$(node_exec node1 journalctl -u baton-agent BATON_ROLLOUT_ID="$rid" BATON_STEP=migrate -o cat --no-pager |
    grep -c '^migrate up (')" 1 "node1 ran its migration exactly once"
like "$(node_exec node1 journalctl -u baton-agent BATON_ROLLOUT_ID="$rid" BATON_STEP=migrate -o cat --no-pager)" \
    "asked again while running|answered again from the record" \
    "the coordinator asked again and the agent answered it (the first answer's connection was gone)"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql" "0002 is applied, once"
read -r s1 _ <<<"$stops_before"
read -r s1_now _ <<<"$(stops)"
is "$s1_now" "$((s1 + 1))" "node1 was stopped once: no rollback of a migration that succeeded"

# --- 3. A 20 s partition during a migration -------------------------------------------------
# One shared database: the node that reaches its dump first migrates it for the rollout, so
# node2 goes first here to be the one mid-migration.
slow_step node2 migrate 24
f=$(CLUSTER_NODES="node2 node1 node3" rollout_file 1.2.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/partition.out" 2>&1 &
first=$!
ok "node2's migration is running" wait_for 60 tool_running node2 migrate
node_cut node2
sleep 20
node_heal node2
slow_step node2 migrate 0
wait "$first"
code=$?
out=$(cat "$CLUSTER_DIR/partition.out")
printf '%s\n' "$out" >&2
is "$code" 0 "after a 20 s partition the rollout completes (exit 0)"
like "$out" "done: 3 of 3 nodes on gamesrv 1.2.0" "every node is on 1.2.0"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql,0003_inventory.sql" \
    "0003 is applied, once"
is "$(players)" "$players_before" "no player row was lost"

# --- 4. The agent frozen past liveness during a dump ----------------------------------------
BATON_TEST_LIVENESS=5s
slow_step node1 dump 10
stops_before=$(stops)
f=$(rollout_file 2.0.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/lost.out" 2>&1 &
first=$!
ok "node1's dump is running" wait_for 30 tool_running node1 dump
pid=$(agent_pid node1)
node_exec node1 kill -STOP "$pid"
t0=$(now_ms)
wait "$first"
code=$?
t1=$(now_ms)
out=$(cat "$CLUSTER_DIR/lost.out")
printf '%s\n' "$out" >&2
is "$code" 4 "a node silent past liveness ends the rollout with exit 4"
like "$out" "LOST node1: .*LOST during dump: no word for [0-9.]+ s" "the report names node1 as lost"
ok "reported within liveness + 2 s of the freeze ($((t1 - t0)) ms)" [ $((t1 - t0)) -le 7000 ]
read -r _ s2 s3 <<<"$stops_before"
read -r _ s2_now s3_now <<<"$(stops)"
is "$s2_now $s3_now" "$s2 $s3" "node2 and node3 were not stopped"
for n in node2 node3; do
    is "$(node_exec "$n" /opt/gamesrv/bin/gamesrv --version)" 1.2.0 "$n still runs 1.2.0"
    is "$(state_field "$n" step)" committed "$n's record is its last committed rollout (released)"
done
node_exec node1 kill -CONT "$pid"
slow_step node1 dump 0
dump_recorded() { [ "$(state_field node1 step)" = dump ] && [ -z "$(state_field node1 in_progress)" ]; }
ok "after SIGCONT node1's dump finishes and is recorded" wait_for 30 dump_recorded
status=$("$BATON" status "$f")
printf '%s\n' "$status" >&2
like "$status" "node1 .* 1.2.0 +inactive +dump +r" "status: node1 stopped after its dump, not interrupted"
out=$("$BATON" rollback "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton rollback settles node1"
is "$(node_exec node1 /opt/gamesrv/bin/gamesrv --version)" 1.2.0 "node1 runs 1.2.0 again"
is "$(gamesrv_health node1)" 200 "node1 is healthy"
like "$("$BATON" status "$f")" "node1 .* 1.2.0 +active +rolled_back" "status says node1 was rolled back"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql,0003_inventory.sql" \
    "the schema is where it was"
is "$(players)" "$players_before" "no player row was lost"

# --- 5. The agent restarted in the middle of a step (its main PID killed, as a watchdog would) --
unset BATON_TEST_LIVENESS
slow_step node1 dump 30
f=$(rollout_file 2.0.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/restart.out" 2>&1 &
first=$!
ok "node1's dump is running" wait_for 30 tool_running node1 dump
restarts=$(node_exec node1 systemctl show -p NRestarts --value baton-agent)
t0=$(now_ms)
node_exec node1 systemctl kill --kill-whom=main -s KILL baton-agent
slow_step node1 dump 0
wait "$first"
code=$?
t1=$(now_ms)
out=$(cat "$CLUSTER_DIR/restart.out")
printf '%s\n' "$out" >&2
is "$code" 3 "the coordinator notices the restarted agent and rolls node1 back (exit 3)"
like "$out" "dump +FAIL .*dump was interrupted: the agent restarted" "it says the dump was interrupted"
ok "within seconds, not the step timeout ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 15000 ]
is "$(node_exec node1 systemctl show -p NRestarts --value baton-agent)" "$((restarts + 1))" \
    "systemd restarted the agent once"
is "$(node_exec node1 /opt/gamesrv/bin/gamesrv --version)" 1.2.0 "node1 runs 1.2.0 again"
is "$(gamesrv_health node1)" 200 "node1 is healthy"
is "$(node_exec node1 sh -c 'pgrep -c -x sleep || true')" 0 "nothing the old agent started is left"

# --- 6. A wedged step: systemd's watchdog restarts the agent, the coordinator hears of it -----
# The pre-flight's query waits on a lock held elsewhere: the worker makes no progress while the
# main loop still answers. The agent stops pinging the watchdog, and systemd restarts it.
dropin=$(mktemp)
printf '[Service]\nWatchdogSec=4s\nLimitCORE=0\n' >"$dropin"
node_exec node1 mkdir -p /etc/systemd/system/baton-agent.service.d
node_push node1 "$dropin" /etc/systemd/system/baton-agent.service.d/watchdog.conf
rm -f "$dropin"
node_exec node1 systemctl daemon-reload
node_exec node1 systemctl restart baton-agent
ok "node1's agent runs with WatchdogSec=4s" wait_for 10 agents_answer
restarts=$(node_exec node1 systemctl show -p NRestarts --value baton-agent)
record_before="$(state_field node1 rollout_id) $(state_field node1 step)"
pg_sql game "BEGIN; LOCK TABLE migration_info IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)" \
    >/dev/null 2>&1 &
locker=$!
# Held before the rollout starts (else a quick pre-flight reads the table first). The agents'
# sessions wait at most lock_timeout (10 s) for it: node1's watchdog (4 s) fires first.
table_locked() {
    [ "$(pg_sql game "SELECT count(*) FROM pg_locks WHERE relation = 'migration_info'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ]
}
ok "the bookkeeping table is locked elsewhere" wait_for 10 table_locked
f=$(rollout_file 2.0.0)
t0=$(now_ms)
"$BATON" rollout "$f" >"$CLUSTER_DIR/wedge.out" 2>&1 &
first=$!
ok "node1's pre-flight is stuck on the lock" wait_for 20 in_progress_is node1 preflight
sleep 1
like "$("$BATON" status "$f")" "node1 .* preflight \(running [0-9]+ s\)" \
    "while it is stuck, the agent still answers: status shows the running pre-flight"
ok "systemd's watchdog restarted the wedged agent" wait_for 30 agent_restarted node1 $((restarts + 1))
pg_sql postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$locker"
wait "$first"
code=$?
t1=$(now_ms)
out=$(cat "$CLUSTER_DIR/wedge.out")
printf '%s\n' "$out" >&2
is "$code" 2 "the rollout is refused (exit 2): nothing was stopped"
like "$out" "preflight +node1 +FAIL .*pre-flight was interrupted \(the agent restarted" \
    "the report says node1's pre-flight was cut short by a restart"
ok "in seconds, not the step timeout ($((t1 - t0)) ms)" [ $((t1 - t0)) -lt 40000 ]
is "$(state_field node1 rollout_id) $(state_field node1 step)" "$record_before" \
    "node1's record is what it was (the reservation was released)"
for n in $CLUSTER_NODES; do
    is "$(node_exec "$n" /opt/gamesrv/bin/gamesrv --version)" 1.2.0 "$n still runs 1.2.0"
done
out=$("$BATON" rollout "$f" 2>&1)
like "$out" "done: 3 of 3 nodes on gamesrv 2.0.0" "with the lock gone, the same rollout goes through"
last_id=$(printf '%s\n' "$out" | sed -n 's/^baton: rollout \([^:]*\):.*/\1/p')

# --- 7. Cut off the network past liveness mid-migration; healed, baton resume completes --------
# Back to 1.2.0 first, with the deliberate downgrade of that last rollout.
out=$("$BATON" rollback "$last_id" 2>&1)
is "$?" 0 "baton rollback $last_id takes the fleet back to 1.2.0"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql,0003_inventory.sql" \
    "0004 was migrated down with it"
BATON_TEST_LIVENESS=5s
slow_step node2 migrate 12
stops_before=$(stops)
f=$(CLUSTER_NODES="node2 node1 node3" rollout_file 2.0.0) # node2 migrates the shared database
"$BATON" rollout "$f" >"$CLUSTER_DIR/cut.out" 2>&1 &
first=$!
ok "node2's migration is running" wait_for 60 tool_running node2 migrate
node_cut node2
t0=$(now_ms)
wait "$first"
code=$?
t1=$(now_ms)
node_heal node2
slow_step node2 migrate 0
out=$(cat "$CLUSTER_DIR/cut.out")
printf '%s\n' "$out" >&2
id=$(printf '%s\n' "$out" | sed -n 's/^baton: rollout \([^:]*\):.*/\1/p')
is "$code" 4 "node2 cut off past liveness: exit 4"
like "$out" "LOST node2: .*LOST during migrate: no word for [0-9.]+ s" "the report names node2"
ok "reported within liveness + 2 s of the cut ($((t1 - t0)) ms)" [ $((t1 - t0)) -le 7000 ]
read -r _ _ s3 <<<"$stops_before"
read -r _ _ s3_now <<<"$(stops)"
is "$s3_now" "$s3" "node3 was not stopped"
is "$(node_exec node3 /opt/gamesrv/bin/gamesrv --version)" 1.2.0 "node3 still runs 1.2.0"
migrated() { [ "$(state_field node2 step)" = migrate ] && [ -z "$(state_field node2 in_progress)" ]; }
ok "healed, node2's agent finishes the migration and records it" wait_for 30 migrated
out=$("$BATON" resume "$id" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton resume $id completes the rollout"
like "$out" "node2 +ok .*resumes at start \(last step migrate\)" "node2 goes on from its recorded migration"
for n in $CLUSTER_NODES; do
    is "$(node_exec "$n" /opt/gamesrv/bin/gamesrv --version)" 2.0.0 "$n runs 2.0.0"
done
is "$(node_exec node2 journalctl -u baton-agent BATON_ROLLOUT_ID="$id" BATON_STEP=migrate -o cat --no-pager | grep -c '^migrate up (')" \
    1 "node2's migration ran once"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql,0003_inventory.sql,0004_guilds.sql" \
    "0004 is applied, once"
is "$(players)" "$players_before" "no player row was lost"
done_testing
