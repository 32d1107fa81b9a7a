#!/bin/bash
# shared.sh: nodes on one shared database (the usual game-backend cluster) and nodes on their
# own. One dump and one migration per shared database per rollout; a second rollout on the
# same database is refused by the migration lock; a rollback that only the dump can finish
# never restores it under nodes that still serve (exit 4, the dump and the command), unless the
# rollout says restore_shared: stop-group (all three stopped, restored, back on the old version).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
export BATON_TEST_KNOBS=1          # slow_step holds a migration open
export BATON_TEST_VERIFY_TIMEOUT=4s # the health fault fails verify quickly

cluster_sweep
cluster_trap
ok "cluster: 4 nodes on gamesrv 1.0.0, one shared database" baton_cluster shared 4 1.0.0 ||
    { done_testing; exit 1; }
THREE="node1 node2 node3"
file3() { CLUSTER_NODES=$THREE rollout_file "$1" "$ROLLOUT_DIR/three-$1.yml"; }
rid() { sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' <<<"$1"; }
dumps_of() { # ROLLOUT NODES...: dump files of ROLLOUT on those nodes, added up
    local id=$1 n total=0 c
    shift
    for n in "$@"; do
        c=$(node_exec "$n" sh -c "ls /var/backups/baton/gamesrv/ 2>/dev/null | grep -c '+$id.dump\$'")
        total=$((total + c))
    done
    echo "$total"
}
ran_total() { # ROLLOUT STEP PATTERN NODES...: how often the agents ran STEP's tool
    local id=$1 step=$2 pat=$3 n total=0 c
    shift 3
    for n in "$@"; do
        c=$(node_exec "$n" journalctl -u baton-agent BATON_ROLLOUT_ID="$id" BATON_STEP="$step" \
            -o cat --no-pager | grep -c "$pat")
        total=$((total + c))
    done
    echo "$total"
}
stops() { for n in "$@"; do unit_stops "$n"; done | tr '\n' ' '; }

# --- the identity: one database, whatever the agents' conninfo --------------------------------
plan=$("$BATON" plan "$(file3 1.1.0)" 2>&1)
printf '%s\n' "$plan" >&2
sysid=$(pg_sql postgres "SELECT system_identifier FROM pg_control_system()")
like "$plan" "1 database, 1 shared .*: game \(server $sysid\): node1, node2, node3" \
    "baton plan groups the three nodes by the server's system_identifier and the database name"

# --- refuse (the default): only the dump can undo node1's migration; node2 and node3 serve ----
# 1.1.0+migrate-down+health: 0002 applies, the service never turns healthy, its Down fails.
slow_step node1 migrate 3
before_ids=$(migration_ids game)
f=$(file3 1.1.0+migrate-down+health)
"$BATON" rollout "$f" >"$CLUSTER_DIR/refuse.out" 2>&1 &
pid=$!
ok "node1 is migrating" wait_for 20 in_progress_is node1 migrate
ok "node2 still serves and takes a write during the rollout" \
    curl -sf -o /dev/null -X POST "http://$(node_ip node2):$GAMESRV_PORT/players?name=dave"
wait "$pid"
code=$?
slow_step node1 migrate 0
out=$(cat "$CLUSTER_DIR/refuse.out")
printf '%s\n' "$out" >&2
is "$code" 4 "a rollback that needs the dump of the shared database exits 4"
like "$out" "only restoring the dump /var/backups/baton/gamesrv/gamesrv\+r[0-9T-]+[0-9a-f]+\.dump brings the schema back" \
    "the summary names the dump"
ok "and the exact command to restore it" grep -qF "baton rollback $f --restore-shared" <<<"$out"
like "$out" "node1: STOPPED, NOT RESTORED" "node1 is reported stopped, not restored"
like "$(players)" "dave" "the row node2 wrote during the rollout is still there"
is "$(migration_ids game)" "$before_ids,0002_player_level.sql" "nothing was restored: 0002 is still applied"
is "$(node_exec node1 systemctl is-active gamesrv)" inactive "node1 is left stopped"
for n in node2 node3; do
    is "$(gamesrv_health "$n")" 200 "$n still serves"
    is "$(node_exec "$n" /opt/gamesrv/bin/gamesrv --version)" 1.0.0 "$n still on 1.0.0"
done
id=$(rid "$out")
is "$(dumps_of "$id" $THREE)" 1 "one dump in the whole rollout"
ok "the dump is kept on node1" node_exec node1 sh -c "ls /var/backups/baton/gamesrv/gamesrv+$id.dump"

# The operator stops the group and restores with the command baton gave.
out=$("$BATON" rollback "$f" 2>&1)
is "$?" 4 "baton rollback without --restore-shared still refuses to restore"
like "$out" "not restoring under them" "and says why"
# --restore-shared while node2 and node3 still serve (the operator did not stop them; or an
# older coordinator that asks for a restore): the agent itself refuses, the server shows their
# sessions. Data safety does not rest on the coordinator.
out=$("$BATON" rollback "$f" --restore-shared 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 4 "--restore-shared with node2 and node3 still serving: node1's agent refuses (exit 4)"
like "$out" "not restoring the dump: [0-9]+ other client session\(s\) use the database" \
    "it says other clients use the database"
like "$(players)" "dave" "the row node2 wrote is still there"
is "$(migration_ids game)" "$before_ids,0002_player_level.sql" "nothing was restored"
# The whole group of the database: node4 serves from it too, though no rollout file here names
# it (the agents' guard would refuse the restore under it: README, "Not yet").
for n in node2 node3 node4; do node_exec "$n" systemctl stop gamesrv; done
out=$("$BATON" rollback "$f" --restore-shared 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "with the group stopped, baton rollback --restore-shared restores"
like "$out" "database restored from the dump" "from the dump"
is "$(migration_ids game)" "$before_ids" "the schema is back to 1.0.0's ids"
is "$(node_exec node1 /opt/gamesrv/bin/gamesrv --version) $(gamesrv_health node1)" "1.0.0 200" \
    "node1 runs 1.0.0 and is healthy"
for n in node2 node3 node4; do node_exec "$n" systemctl start gamesrv; done
ok "node2 and node3 serve again" wait_for 10 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://$(node_ip node3):$GAMESRV_PORT/healthcheck)\" = 200 ]"

# --- restore_shared: stop-group: the group is stopped, restored, started on the old version ---
# (node4 shares the database but is in no file here: stopped by hand meanwhile, as an operator
# would, or node1's agent would refuse to restore under it.)
node_exec node4 systemctl stop gamesrv
f=$(file3 1.2.0+migrate-down+health)
echo "restore_shared: stop-group" >>"$f"
snap=$(db_snapshot)
stops_before=$(stops $THREE)
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 3 "stop-group: exit 3, every node back where it was"
like "$out" "restore_shared: stop-group: stopping every other node" "it says it stops the group"
like "$out" "node2 +\(stopping for the restore" "node2 is stopped for the restore"
like "$out" "back on 1.0.0; database restored from the dump /var/backups/baton/gamesrv/" \
    "node1's rollback restored the dump, and says so"
is "$(db_snapshot)" "$snap" "schema, bookkeeping and rows equal what they were"
is "$(pg_sql game "SELECT count(*) FROM information_schema.tables WHERE table_name='inventory'")" 0 \
    "the table 1.2.0 created is gone"
read -r _ rest_now <<<"$(stops $THREE)"
read -r _ rest_before <<<"$stops_before"
is "$rest_now" "$(for s in $rest_before; do printf '%s ' $((s + 1)); done | sed 's/ $//')" \
    "node2 and node3 were stopped exactly once, for the restore"
for n in $THREE; do
    is "$(node_exec "$n" /opt/gamesrv/bin/gamesrv --version) $(gamesrv_health "$n")" "1.0.0 200" \
        "$n runs 1.0.0 again and is healthy"
done
node_exec node4 systemctl start gamesrv

# --- a good rollout: one dump and one migration for the three --------------------------------
f=$(file3 1.1.0)
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "1.0.0 -> 1.1.0 on three nodes of one database"
id=$(rid "$out")
is "$(dumps_of "$id" $THREE) $(ran_total "$id" dump 'pg_dump to' $THREE) $(ran_total "$id" migrate '^migrate up (' $THREE)" \
    "1 1 1" "exactly one dump file, one pg_dump and one migrate up in the whole rollout"
is "$(grep -c 'shared database, dumped by its first node' <<<"$out")" 2 "node2 and node3 report the shared dump"
st=$("$BATON" status "$f")
printf '%s\n' "$st" >&2
is "$(grep -c "$sysid/game" <<<"$st")" 3 "baton status shows the same database on the three"

# --- the migration lock: a second rollout on the same database waits its turn -----------------
slow_step node1 migrate 6
f=$(file3 1.2.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/first.out" 2>&1 &
pid=$!
ok "node1 is migrating (1.2.0)" wait_for 20 in_progress_is node1 migrate
f4=$(CLUSTER_NODES=node4 rollout_file 1.2.0 "$ROLLOUT_DIR/node4.yml")
out=$("$BATON" plan "$f4" 2>&1)
is "$?" 2 "baton plan of another file on the same database: refused"
like "$out" "migration lock is held by baton-agent node1 r" "it names who holds the lock"
snap=$(db_snapshot)
out=$("$BATON" rollout "$f4" 2>&1)
is "$?" 2 "a second rollout on the same database is refused (exit 2)"
like "$out" "migration lock is held by baton-agent node1" "by the lock node1's agent holds"
is "$(node_exec node4 systemctl is-active gamesrv) $(node_exec node4 /opt/gamesrv/bin/gamesrv --version)" \
    "active 1.0.0" "node4 was not stopped"
wait "$pid"
is "$?" 0 "the first rollout finishes"
slow_step node1 migrate 0
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql,0003_inventory.sql" "0003 applied once"
out=$("$BATON" plan "$f4" 2>&1)
is "$?" 0 "once it finished, the lock is free"

# --- the lock taken after node4's pre-flight passed: its stop takes the lock first, and refuses --
stops4=$(stops node4)
slow_step node4 preflight 4
"$BATON" rollout "$f4" >"$CLUSTER_DIR/late.out" 2>&1 &
pid=$!
ok "node4's pre-flight found the lock free and checks the new binary" \
    wait_for 20 tool_running node4 preflight
lock_by_stranger game "a manual migration"
ok "meanwhile someone else takes the migration lock" wait_for 10 lock_held game
wait "$pid"
code=$?
slow_step node4 preflight 0
lock_stranger_ends
out=$(cat "$CLUSTER_DIR/late.out")
printf '%s\n' "$out" >&2
is "$code" 3 "node4 failed and was put back (exit 3): nothing stopped"
like "$out" "stop +FAIL .*migration lock is held by a manual migration" \
    "node4's stop refuses, naming who holds the lock"
is "$(stops node4)" "$stops4" "node4 was never stopped"
like "$out" "node4 +1\.0\.0 +1\.0\.0 +- +" "the recap counts no downtime for node4"
is "$(node_exec node4 systemctl is-active gamesrv) $(node_exec node4 /opt/gamesrv/bin/gamesrv --version)" \
    "active 1.0.0" "node4 serves 1.0.0 as before"

# --- nodes on databases of their own dump and migrate each their own --------------------------
pg_createdb game4 >&2
node_exec node4 systemctl stop gamesrv
gamesrv_install node4 1.0.0 game4 >&2
node_exec node4 /opt/gamesrv/bin/gamesrv migrate up >&2
node_exec node4 systemctl start gamesrv
BATON_TEST_DB=game4 agent_install node4 && node_exec node4 systemctl restart baton-agent
f=$(CLUSTER_NODES="node3 node4" rollout_file 2.0.0 "$ROLLOUT_DIR/own.yml")
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "node3 (shared database) and node4 (its own) to 2.0.0"
like "$out" "2 databases" "the plan sees two databases"
id=$(rid "$out")
is "$(dumps_of "$id" node3) $(dumps_of "$id" node4)" "1 1" "each dumped its own database"
is "$(migration_ids game4)" "0001_players.sql,0002_player_level.sql,0003_inventory.sql,0004_guilds.sql" \
    "node4 migrated its own database"
like "$(migration_ids game)" "0004_guilds.sql" "node3 migrated the shared one"
done_testing
