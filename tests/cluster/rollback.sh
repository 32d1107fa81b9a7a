#!/bin/bash
# rollback.sh: every way an upgrade can fail on a node puts that node back exactly as it was
# (binary, schema, rows), leaves the later nodes untouched, and exits 3. Real systemd,
# PostgreSQL, pg_dump/pg_restore and sql-migrate; faults built into gamesrv versions.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
BATON_TEST_VERIFY_TIMEOUT=4s # the health fault must fail verify quickly

cluster_sweep
cluster_trap
ok "cluster: 3 nodes on gamesrv 1.0.0" baton_cluster back 3 1.0.0 || { done_testing; exit 1; }

stops() { for n in $CLUSTER_NODES; do unit_stops "$n"; done | tr '\n' ' '; }

# try VERSION DESCRIPTION: roll out a faulty VERSION; node1 must fail and come back.
try() {
    local version=$1 what=$2 f out code
    local snap_before stops_before
    snap_before=$(db_snapshot)
    stops_before=$(stops)
    f=$(rollout_file "$version")
    out=$("$BATON" rollout "$f" 2>&1)
    code=$?
    printf '%s\n' "$out" >&2
    is "$code" 3 "$what: exit 3"
    like "$out" "rollback +ok .*back on 1.0.0" "$what: node1 rolled back to 1.0.0"
    like "$out" "untouched: node2, node3" "$what: the summary lists the untouched nodes"
    is "$(node_exec node1 /opt/gamesrv/bin/gamesrv --version)" 1.0.0 "$what: node1 runs the 1.0.0 binary"
    is "$(node_exec node1 sha256sum /opt/gamesrv/bin/gamesrv | cut -d' ' -f1)" \
        "$(sha256sum "$(gamesrv_bin 1.0.0)" | cut -d' ' -f1)" "$what: node1's binary is byte for byte the old one"
    is "$(gamesrv_health node1)" 200 "$what: node1 is healthy"
    is "$(migration_ids game)" "0001_players.sql" "$what: bookkeeping holds exactly the ids it held"
    is "$(db_snapshot)" "$snap_before" "$what: schema, bookkeeping and player rows equal what they were"
    local s1 o1 rest_now rest_before
    read -r s1 rest_now <<<"$(stops)"
    read -r o1 rest_before <<<"$stops_before"
    is "$rest_now" "$rest_before" "$what: node2 and node3 were not stopped"
    for n in node2 node3; do
        is "$(node_exec "$n" /opt/gamesrv/bin/gamesrv --version)" 1.0.0 "$what: $n still on 1.0.0"
    done
    like "$(agent_state node1)" '"step": "rolled_back"' "$what: node1's agent state says rolled_back"
    LAST_OUT=$out
}

try 1.2.0+migrate-up "migration fails (0002 applied, then 0003 fails)"
like "$LAST_OUT" "migrate +FAIL .*1 applied" "the failed migrate says what it had applied"

try 1.1.0+health "health never turns healthy"
like "$LAST_OUT" "verify +FAIL .*not healthy after 4 s: .*answered 503: \"\\{\"status\":\"unhealthy\",\"reason\":\"injected fault\"\\}\"" \
    "verify says why, with the start of the probe's answer"

try 1.1.0+crash "crashes on start"
like "$LAST_OUT" "start +FAIL .*start of gamesrv.service failed: signal \(killed by SIGABRT(, core dumped)?\)" \
    "start says systemd's reason and which signal"

# Verify means stable, not one lucky probe: each of these passes its first probe.
BATON_TEST_ROLLOUT_MIN_HEALTHY=4s
try 1.1.0+die-later "the service is SIGKILLed 3 s after it started"
like "$LAST_OUT" "verify +FAIL .*s after it turned healthy: gamesrv.service is failed \(signal \(killed by SIGKILL\)\)" \
    "verify says the service died after turning healthy"
try 1.1.0+health-decays "health answers 200 for 2 s, then 503"
like "$LAST_OUT" "verify +FAIL .*unstable: [0-9.]+ s after it turned healthy .*answered 503" \
    "verify says health decayed"
try 1.1.0+health-flaps "health alternates 200 and 503"
like "$LAST_OUT" "verify +FAIL .*unstable: .*\(probe 2\): .*answered 503" "verify says health flapped"
unset BATON_TEST_ROLLOUT_MIN_HEALTHY

# A rollback that only the dump can finish (the Down fails too): with node2 and node3 on the same
# database it must not restore under them; shared.sh tests both ways (refuse, stop-group).

# --- crashes: the agent and the coordinator die in the middle of a migration ------------------
snap_before=$(db_snapshot)
f=$(rollout_file 1.1.0+migrate-hang)
"$BATON" rollout "$f" >"$CLUSTER_DIR/crash.out" 2>&1 &
coordinator=$!
deadline=$((SECONDS + 30))
until agent_state node1 2>/dev/null | grep -q '"in_progress": "migrate"'; do
    [ $SECONDS -lt $deadline ] || break
    sleep 0.2
done
like "$(agent_state node1)" '"in_progress": "migrate"' "crash: node1 is in the middle of its migration"
stops_crash=$(stops)
kill -9 "$coordinator"                                 # the coordinator dies...
node_exec node1 systemctl kill --kill-whom=main -s KILL baton-agent # ...and node1's agent (main PID only)
deadline=$((SECONDS + 20))
until [ "$(node_exec node1 systemctl show -p NRestarts --value baton-agent)" = 1 ] &&
    [ "$(node_exec node1 systemctl is-active baton-agent)" = active ]; do
    [ $SECONDS -lt $deadline ] || break
    sleep 0.2
done
is "$(node_exec node1 systemctl is-active baton-agent)" active "crash: systemd restarted the agent"
status=$("$BATON" status "$f")
printf '%s\n' "$status" >&2
like "$status" "node1 .* migrate \(interrupted\)" "crash: the restarted agent says which step was cut short"
out=$("$BATON" rollout "$(rollout_file 1.1.0)" 2>&1)
is "$?" 2 "crash: a new rollout is refused while node1 is unfinished"
like "$out" "preflight +node1 +FAIL .*interrupted in migrate\\); roll it back first" "and says why"
out=$("$BATON" rollback "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "crash: baton rollback exits 0"
like "$out" "node1 \(rolling back .*migrate, interrupted\)" "crash: it rolls back the interrupted node"
like "$out" "node2 \(releasing .*pre-flight only, nothing to undo\)" \
    "crash: it releases the nodes the dead coordinator had reserved"
is "$(stops)" "$stops_crash" "crash: and stops nothing but node1's unit"
is "$(node_exec node1 /opt/gamesrv/bin/gamesrv --version)" 1.0.0 "crash: node1 runs 1.0.0 again"
is "$(gamesrv_health node1)" 200 "crash: node1 is healthy"
is "$(db_snapshot)" "$snap_before" "crash: schema, bookkeeping and player rows equal what they were"
is "$(node_exec node1 sh -c 'pgrep -c sql-migrate || true')" 0 "crash: no migration process was left running"

# After all that, a good version still goes through on every node.
f=$(rollout_file 1.1.0)
"$BATON" rollout "$f" >&2
is "$?" 0 "a good rollout afterwards succeeds"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql" "and migrates"
done_testing
