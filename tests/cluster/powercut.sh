#!/bin/bash
# powercut.sh: a node loses power in the middle of its migration, its link going dark first, so
# that the database server never hears its connections close (the faults issue's first case:
# the dead agent's lock session used to stay for the kernel's 2 h 11 min, and every rollout and
# rollback of its database was refused, naming it).
#   - A session named for node2 holding the migration lock, none of node2's agent's own (its
#     earlier life): node1 is refused naming it; node2's own pre-flight ends it and goes on.
#   - A real power cut, one database shared by the nodes: the server drops the dead agent's
#     session within a minute (keepalives the agent asks for), nothing else is held up, and
#     after the boot `baton rollback` settles node2 and the group rolls.
#   - A real power cut, a database per node, node2 back at once: `baton rollback` settles it
#     (the agent ends its own earlier session when the server has not dropped it yet).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
BATON_TEST_KNOBS=1
BATON_TEST_LIVENESS=3s

# The application_name of whoever holds baton's migration lock in DB ("" when free).
holder() {
    pg_sql "$1" "SELECT coalesce(string_agg(a.application_name, ','), '') FROM pg_locks l
        JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted
        AND l.classid = 1650553967 AND l.objid = 1"
}
lock_free() { [ -z "$(holder "$1")" ]; }
versions() { for n in $CLUSTER_NODES; do node_exec "$n" /opt/gamesrv/bin/gamesrv --version; done | tr '\n' ' '; }
# A rollout file over some nodes only.
nodes_file() { # VERSION FILE NODE...
    local v=$1 f=$2
    shift 2
    CLUSTER_NODES="$*" rollout_file "$v" "$f"
}
power_cut() { node_cut "$1" && node_kill "$1"; }
# A rollout of node2 alone, in the background, cut off by a power cut during its migration.
cut_during_migration() { # DB VERSION
    local f=$ROLLOUT_DIR/node2.yml pid code
    nodes_file "$2" "$f" node2 >/dev/null
    slow_step node2 migrate 600
    "$BATON" rollout "$f" >"$CLUSTER_DIR/cut.out" 2>&1 &
    pid=$!
    ok "node2's migration is running" wait_for 60 tool_running node2 migrate
    like "$(holder "$1")" "^baton-agent node2 r" "node2's agent holds the migration lock"
    power_cut node2
    wait "$pid"
    code=$?
    cat "$CLUSTER_DIR/cut.out" >&2
    is "$code" 4 "power cut during node2's migration: the coordinator reports it LOST (exit 4)"
}
# Up means answering a Hello (a sanitized agent on a loaded machine takes a while after its
# unit is active: its first Hello runs the version command).
agent2_answers() {
    ZPOKE_SERVER_KEY=$(agent_pub node2) ZPOKE_KEY_FILE=$(keys_dir)/coordinator.key \
        "${BUILD:-build}/tests/tools/zpoke" "tcp://$(node_ip node2):$BATON_AGENT_PORT" hello
}
boot_node2() {
    node_boot node2 && node_exec node2 systemctl start baton-agent && wait_for 60 agent2_answers && return 0
    # Say why, for the log: the agent's unit and its last words.
    node_exec node2 systemctl status --no-pager baton-agent >&2
    node_exec node2 journalctl -u baton-agent -n 30 --no-pager >&2
    return 1
}

cluster_sweep
cluster_trap

# --- 1. an earlier life of node2's agent holds the lock ---------------------------------------
ok "cluster: 2 nodes on gamesrv 1.0.0, one shared database" baton_cluster pcut 2 1.0.0 ||
    { done_testing; exit 1; }
# A session as node2's agent named it, holding the lock, whose agent is gone: psql on the host,
# kept open on a pipe.
stale_name="baton-agent node2 r20261202T000000-dead00"
mkfifo "$CLUSTER_DIR/stale.in"
PGAPPNAME="$stale_name" psql -X -q -h "$PG_SOCK" -p "$PG_PORT" \
    -U postgres -d game <"$CLUSTER_DIR/stale.in" >/dev/null 2>&1 &
stale=$!
exec 7>"$CLUSTER_DIR/stale.in"
echo "SELECT pg_advisory_lock(1650553967, 1);" >&7
stale_held() { [ "$(holder game)" = "$stale_name" ]; }
stale_gone() { [ "$(pg_sql game "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$stale_name'")" = 0 ]; }
ok "the stale session holds the lock" wait_for 10 stale_held
nodes_file 1.1.0 "$ROLLOUT_DIR/node1.yml" node1 >/dev/null
out=$("$BATON" rollout "$ROLLOUT_DIR/node1.yml" 2>&1)
is "$?" 2 "node1's rollout is refused: the lock is not node1's to end"
like "$out" "preflight +node1 +FAIL .*migration lock is held by baton-agent node2 r20261202T000000-dead00" \
    "naming the holder"
nodes_file 1.1.0 "$ROLLOUT_DIR/node2.yml" node2 >/dev/null
out=$("$BATON" rollout "$ROLLOUT_DIR/node2.yml" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "node2's rollout ends its own earlier agent's session and runs (exit 0)"
ok "that session is gone" wait_for 5 stale_gone
exec 7>&-
wait "$stale"
is "$(node_exec node2 journalctl -u baton-agent -o cat --no-pager | grep -c 'ended baton-agent node2 r20261202T000000-dead00')" 1 \
    "node2's agent says which session it ended"
out=$("$BATON" rollout "$(rollout_file 1.1.0)" 2>&1)
is "$?" 0 "and the rest of the group rolls (exit 0)"

# --- 2. a real power cut, one shared database ---------------------------------------------------
cut_during_migration game 1.2.0
start=$SECONDS
ok "the server drops the dead agent's session within 60 s (keepalives), not hours" \
    wait_for 60 lock_free game
diag "the dead agent's session was dropped $((SECONDS - start)) s after the coordinator's exit"
out=$("$BATON" plan "$ROLLOUT_DIR/node1.yml" 2>&1)
unlike "$out" "migration lock is held by" "node1's plan no longer names node2's dead agent"
ok "node2 boots, its agent starts" boot_node2
out=$("$BATON" rollback "$ROLLOUT_DIR/node2.yml" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton rollback settles node2 (exit 0)"
is "$(gamesrv_health node2)" 200 "node2 serves again"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql" "the shared schema is still 1.1.0's"
is "$(versions)" "1.1.0 1.1.0 " "node2 back on 1.1.0"
out=$("$BATON" rollout "$(rollout_file 1.2.0)" 2>&1)
is "$?" 0 "the whole group rolls on to 1.2.0 (exit 0)"
is "$(versions)" "1.2.0 1.2.0 " "both nodes on 1.2.0"
cluster_down pcut

# --- 3. a real power cut, a database per node, node2 back at once -------------------------------
export BATON_CLUSTER_DB_PER_NODE=1
ok "cluster: 2 nodes on gamesrv 1.0.0, a database each" baton_cluster pcut 2 1.0.0 ||
    { done_testing; exit 1; }
before=$(migration_ids game_node2)
cut_during_migration game_node2 1.1.0
ok "node2 boots at once, its agent starts" boot_node2
if [ -n "$(holder game_node2)" ]; then
    diag "the dead agent's session still held the lock: node2's agent ends it"
else
    diag "the server had dropped the dead agent's session already"
fi
out=$("$BATON" rollback "$ROLLOUT_DIR/node2.yml" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton rollback settles node2 (exit 0), not refused by its own dead session"
is "$(holder game_node2)" "" "the lock is free"
is "$(node_exec node2 /opt/gamesrv/bin/gamesrv --version)" 1.0.0 "node2 back on 1.0.0"
is "$(migration_ids game_node2)" "$before" "its schema as before the rollout"
is "$(gamesrv_health node2)" 200 "and it serves"
out=$("$BATON" rollout "$(rollout_file 1.1.0)" 2>&1)
is "$?" 0 "a new rollout of both nodes runs (exit 0)"
done_testing
