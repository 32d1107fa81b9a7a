#!/bin/bash
# rollout.sh: a rollout on real parts: 3 nodes with gamesrv 1.0.0 on one shared database, each
# with baton-agent as a systemd unit; `baton rollout` to 1.1.0; then the pre-flight refusals,
# none of which may stop a single unit.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

cluster_sweep
cluster_trap
ok "cluster: 3 nodes, gamesrv 1.0.0 and baton-agent running as units" baton_cluster roll 3 1.0.0 ||
    { done_testing; exit 1; }
is "$(node_exec node2 systemctl show -p Type,ActiveState --value baton-agent | tr '\n' ' ')" \
    "notify active " "baton-agent is a Type=notify unit, active"

before_players=$(pg_sql game "SELECT * FROM players ORDER BY id")
stops_before=$(for n in $CLUSTER_NODES; do unit_stops "$n"; done | tr '\n' ' ')

# --- the rollout ----------------------------------------------------------------------------
f=$(rollout_file 1.1.0)
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton rollout 1.0.0 -> 1.1.0 exits 0"
like "$out" "preflight +node3 +ok" "pre-flight ran on every node"
like "$out" "\[3/3\] node3" "progress names each node in order"
like "$out" "migrate +ok +[0-9]+ ms +applied 0002_player_level.sql" "the migrate step reports the id it applied"
like "$out" "done: 3 of 3 nodes on gamesrv 1.1.0" "a summary ends the output"
for n in $CLUSTER_NODES; do
    is "$(node_exec "$n" /opt/gamesrv/bin/gamesrv --version)" 1.1.0 "$n runs gamesrv 1.1.0"
    is "$(gamesrv_health "$n")" 200 "$n is healthy"
    is "$(node_exec "$n" stat -c '%a %U' /opt/gamesrv/bin/gamesrv)" "755 root" "$n: the binary kept its mode and owner"
    is "$(node_exec "$n" sha256sum /opt/gamesrv/bin/gamesrv.baton-prev | cut -d' ' -f1)" \
        "$(sha256sum "$(gamesrv_bin 1.0.0)" | cut -d' ' -f1)" "$n: the previous binary is kept for rollback"
done
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql" "bookkeeping holds 1.0.0's and 1.1.0's ids"
is "$(pg_sql game "SELECT id, name, created_at FROM players ORDER BY id")" "$before_players" \
    "player rows intact"
# One shared database: node1 (the first to reach its dump) dumps and migrates it; node2 and
# node3 check that it holds exactly node1's ids and take no dump of their own.
state=$(agent_state node1)
dump=$(printf '%s' "$state" | sed -n 's/.*"dump_path": "\(.*\)".*/\1/p')
digest=$(printf '%s' "$state" | sed -n 's/.*"dump_sha256": "\(.*\)".*/\1/p')
is "$(node_exec node1 sh -c "ls /var/backups/baton/gamesrv/*.dump | wc -l")" 1 "node1: one dump on disk"
is "$(node_exec node1 sha256sum "$dump" | cut -d' ' -f1)" "$digest" "node1: the dump's digest matches the recorded one"
like "$out" "${digest:0:16}" "node1: and the one baton printed"
ok "node1: pg_restore can read the dump" node_exec node1 pg_restore --list "$dump"
for n in node2 node3; do
    is "$(node_exec "$n" sh -c "ls /var/backups/baton/gamesrv/*.dump 2>/dev/null | wc -l")" 0 \
        "$n: no second dump of the shared database"
    is "$(state_field "$n" shared_from)" node1 "$n: its record says node1 dumped and migrated it"
done
like "$out" "dump +ok +[0-9]+ ms +shared database, dumped by its first node" "the shared dump is reported"
like "$out" "plan: .*1 database, 1 shared" "the plan names the shared database"
for n in $CLUSTER_NODES; do
    like "$(agent_state "$n")" '"step": "committed"' "$n: the agent's state says committed"
done
is "$(for n in $CLUSTER_NODES; do unit_stops "$n"; done | tr '\n' ' ')" \
    "$(for s in $stops_before; do printf '%s ' $((s + 1)); done)" "each unit was stopped exactly once"

status=$("$BATON" status "$f")
printf '%s\n' "$status" >&2
like "$status" "node2 +tcp://[0-9.:]+ +1.1.0 +active +committed" "baton status shows version, unit state and last step"

# A second run finds nothing to do and stops nothing.
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 0 "rolling out the same version again exits 0"
like "$out" "already on the target version" "and says the nodes are already there"
is "$(for n in $CLUSTER_NODES; do unit_stops "$n"; done | tr '\n' ' ')" \
    "$(for s in $stops_before; do printf '%s ' $((s + 1)); done)" "without stopping anything"

json=$("$BATON" status "$f" --json)
is "$(printf '%s\n' "$json" | grep -c '"event":"status"')" 3 "baton status --json: one JSON object per node"

# --- hostile messages get an error Result; the agent lives on ------------------------------
poke() { ZPOKE_SERVER_KEY=$(agent_pub node1) ZPOKE_KEY_FILE=$(keys_dir)/coordinator.key "${BUILD:-build}/tests/tools/zpoke" "tcp://$(node_ip node1):$BATON_AGENT_PORT" "$1"; }
like "$(poke garbage)" "^BAD_REQUEST malformed message" "garbage bytes: BAD_REQUEST"
like "$(poke empty)" "^BAD_REQUEST message carries no command" "an envelope without a command: BAD_REQUEST"
like "$(poke future)" "^BAD_REQUEST message carries no command" "a command from a newer protocol: BAD_REQUEST"
like "$(poke version)" "^UNSUPPORTED protocol version 77 not supported" "another protocol version: UNSUPPORTED"
like "$(poke multipart)" "^BAD_REQUEST a request is one frame" "a multi-frame request: BAD_REQUEST"
like "$(poke frame-hello)" "^BAD_REQUEST a hello request is one frame" \
    "a second frame with anything but a stage chunk: BAD_REQUEST"
like "$(poke frame-short)" "^BAD_REQUEST stage.data_frame: 100 bytes announced, 6 came" \
    "a chunk's frame shorter than it says: BAD_REQUEST"
like "$(poke unknown-service)" "^BAD_REQUEST unknown service 'nosuch'" "a step for an unknown service: BAD_REQUEST"
is "$(poke oversize)" "no answer" "a message over the size limit is dropped by the transport"
is "$(node_exec node1 systemctl show -p NRestarts,ActiveState --value baton-agent | tr '\n' ' ')" \
    "0 active " "the agent never crashed or restarted"
like "$(poke hello)" "^OK" "and still answers Hello"

# --- refused before any change: exit 2, no unit stopped anywhere ----------------------------
stops_before=$(for n in $CLUSTER_NODES; do unit_stops "$n"; done | tr '\n' ' ')
no_stops() {
    is "$(for n in $CLUSTER_NODES; do unit_stops "$n"; done | tr '\n' ' ')" "$stops_before" "$1: no unit was stopped on any node"
}

f=$(rollout_file 1.2.0)
sed -i 's/^sha256: .*//; s/^service: gamesrv$/service: gamesrv\nsha256: 0000000000000000000000000000000000000000000000000000000000000000/' "$f"
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "wrong artifact digest: exit 2"
like "$out" "has sha256 [0-9a-f]{64} but the rollout file says 0000" "wrong artifact digest: says both digests"
no_stops "wrong artifact digest"

# node3's agent reaches the database on a port where nothing listens.
agent_config node3 | sed "s/port=$PG_PORT/port=1/" >"$CLUSTER_DIR/agent-bad.yml"
node_push node3 "$CLUSTER_DIR/agent-bad.yml" /etc/baton/agent.yml 0600
node_exec node3 systemctl restart baton-agent
f=$(rollout_file 1.2.0)
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "unreachable database on the last node: exit 2"
like "$out" "preflight +node3 +FAIL .*database of gamesrv unreachable" "the failure names the node and the database"
like "$out" "preflight +node1 +ok" "node1 passed its own pre-flight"
no_stops "unreachable database"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql" "unreachable database: no migration ran"

# node2's agent manages a unit that does not exist.
agent_install node3 >&2
agent_config node2 | sed "s/unit: gamesrv.service/unit: nosuch.service/" >"$CLUSTER_DIR/agent-bad.yml"
node_push node2 "$CLUSTER_DIR/agent-bad.yml" /etc/baton/agent.yml 0600
node_exec node2 systemctl restart baton-agent
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "missing unit: exit 2"
like "$out" "preflight +node2 +FAIL .*unit nosuch.service not found" "the failure names the unit"
no_stops "missing unit"
agent_install node2 >&2

# An agent that does not answer (node cut off the network).
node_cut node3
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "unreachable agent: exit 2"
like "$out" "hello +node3 +FAIL .*did not answer" "the failure names the node"
like "$out" "hello +node3 +FAIL .*does not answer TCP within 2000 ms: the node is down, or a firewall" \
    "and says the node does not answer at all (not a CURVE key)"
no_stops "unreachable agent"
node_heal node3

# An agent that is stopped: nothing listens, said so.
node_exec node3 systemctl stop baton-agent
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "stopped agent: exit 2"
like "$out" "hello +node3 +FAIL .*nothing listens at [0-9.]+:$BATON_AGENT_PORT \(connection refused\): is baton-agent running there" \
    "the failure says nothing listens"
no_stops "stopped agent"
node_exec node3 systemctl start baton-agent

# A bad rollout file changes nothing and names file, line and key.
printf 'service: gamesrv\nversion: 1.2.0\nartifact: x\nnodes:\n  - name: node1\n    endpont: tcp://x:1\n' >"$CLUSTER_DIR/bad.yml"
out=$("$BATON" rollout "$CLUSTER_DIR/bad.yml" 2>&1)
is "$?" 1 "a bad rollout file: exit 1"
is "$out" "baton: $CLUSTER_DIR/bad.yml:6: nodes[0].endpont: unknown key" "the error names file, line and key"
for n in $CLUSTER_NODES; do
    is "$(node_exec "$n" /opt/gamesrv/bin/gamesrv --version)" 1.1.0 "$n still runs 1.1.0 after the refusals"
done
done_testing
