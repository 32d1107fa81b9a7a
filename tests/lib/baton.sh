# baton.sh: a test cluster running gamesrv and baton-agent on every node, ready for rollouts
# (needs cluster.sh, pg.sh and gamesrv.sh sourced first).
#
#   baton_cluster NAME N VERSION    N nodes, one shared database "game" migrated to VERSION
#                                   (one per node, game_nodeN, with BATON_CLUSTER_DB_PER_NODE=1),
#                                   gamesrv VERSION running and baton-agent running on each
#                                   (unless BATON_CLUSTER_AGENTS=0), three players written;
#                                   sets ROLLOUT_DIR
#   agent_install NODE              binary, config and unit of baton-agent into NODE; starts it
#   rollout_file VERSION [FILE]     writes a rollout file for VERSION over all nodes (with
#                                   min_healthy_time and liveness when BATON_TEST_ROLLOUT_MIN_HEALTHY
#                                   and BATON_TEST_LIVENESS are set)
#   agent_state NODE                the agent's state file of gamesrv in NODE
#   unit_stops NODE                 how many times gamesrv was stopped in NODE (its journal)
#   tool_running NODE WHAT, step_time NODE ROLLOUT STEP first|last   (see below)
#   lock_by_stranger DB NAME, lock_held DB, lock_stranger_ends   a stranger holds the migration lock

BATON_AGENT_PORT=${BATON_AGENT_PORT:-7400}

# CURVE keys (baton keygen): one pair for the coordinator, one per agent, in $CLUSTER_DIR/keys.
# With BATON_TEST_INSECURE=1, plain text instead (insecure: true on both sides).
keys_dir() { echo "$CLUSTER_DIR/keys"; }
key_pair() { # NAME: creates keys/NAME.{key,pub} once
    local d
    d=$(keys_dir)
    mkdir -p "$d" && chmod 700 "$d"
    [ -f "$d/$1.pub" ] || "${BUILD:-build}/baton" keygen "$d/$1" >/dev/null
}
agent_pub() { key_pair "$1" && cat "$(keys_dir)/$1.pub"; }
# The agent's key pair and the coordinator's public key, into NODE.
agent_keys() { # NODE
    key_pair "$1" && key_pair coordinator &&
        node_push "$1" "$(keys_dir)/$1.key" /etc/baton/agent.key 0600 &&
        node_push "$1" "$(keys_dir)/coordinator.pub" /etc/baton/coordinators 0644
}
agent_security() {
    if [ "${BATON_TEST_INSECURE:-0}" = 1 ]; then
        echo "insecure: true"
    else
        printf 'curve:\n  secret_key: /etc/baton/agent.key\n  authorized_keys: /etc/baton/coordinators\n'
    fi
}

agent_config() { # NODE
    cat <<CFG
node: $1
listen: tcp://0.0.0.0:$BATON_AGENT_PORT
state_dir: /var/lib/baton
$([ -z "${BATON_TEST_METRICS_DIR:-}" ] || echo "metrics_dir: $BATON_TEST_METRICS_DIR")
$(agent_pull)
$(agent_security)
services:
  - name: gamesrv
    unit: gamesrv.service
    binary: /opt/gamesrv/bin/gamesrv
    database: "$(pg_conninfo "${BATON_TEST_DB:-game}")"
    backup_dir: /var/backups/baton/gamesrv
    keep_backups: 2
    min_healthy_time: ${BATON_TEST_MIN_HEALTHY:-1s}
$(agent_list_migrations)
    rehearse_migrate: "{binary} migrate up --database {database}"
    health:
      http: http://127.0.0.1:$GAMESRV_PORT/healthcheck
$(agent_knobs)
$(agent_hooks)
$(agent_haproxy)
    timeouts:
      stop: 20s
      start: 20s
      migrate: ${BATON_TEST_MIGRATE_TIMEOUT:-30s}
      verify: ${BATON_TEST_VERIFY_TIMEOUT:-8s}
CFG
}

# BATON_TEST_PULL_CA and BATON_TEST_PULL_PROXY: the agent's pull: settings (pull.sh).
agent_pull() {
    [ -n "${BATON_TEST_PULL_CA:-}${BATON_TEST_PULL_PROXY:-}" ] || return 0
    echo "pull:"
    [ -z "${BATON_TEST_PULL_CA:-}" ] || echo "  ca_file: $BATON_TEST_PULL_CA"
    [ -z "${BATON_TEST_PULL_PROXY:-}" ] || echo "  proxy: $BATON_TEST_PULL_PROXY"
}

# With BATON_TEST_KNOBS=1, pg_dump and migrate up go through tests/fixtures/knobs/slow, so that a
# test can hold a pre-flight, a dump or a migration open: slow_step NODE WHAT SECONDS.
agent_knobs() {
    [ "${BATON_TEST_KNOBS:-0}" = 1 ] || return 0
    echo "    pg_dump: /opt/baton-test/pg_dump"
    echo "    migrate_up: /opt/baton-test/slow migrate {binary} migrate up"
}

# How a binary lists the migrations it ships (gamesrv migrate list); with knobs it can be held
# open: slow_step NODE list SECONDS holds every schema check (the start step's, when it lists the
# binary again: it reuses the pre-flight's list of the same, untouched bytes), slow_step NODE
# preflight SECONDS the pre-flight's (and the plan's: the new binary's list).
agent_list_migrations() {
    if [ "${BATON_TEST_KNOBS:-0}" = 1 ]; then
        echo "    list_migrations: /opt/baton-test/slow list,preflight {binary} migrate list"
    else
        echo "    list_migrations: \"{binary} migrate list\""
    fi
}

# With BATON_TEST_HOOKS=1, drain and undrain hooks that log and can be made to fail.
agent_hooks() {
    [ "${BATON_TEST_HOOKS:-0}" = 1 ] || return 0
    echo "    drain: /opt/baton-test/hook drain"
    echo "    undrain: /opt/baton-test/hook undrain"
}

# With BATON_TEST_HAPROXY=HOST:PORT, the agent drains and puts back its server (named as the
# node) of haproxy's backend "game" through that runtime API (drain_timeout
# BATON_TEST_HAPROXY_DRAIN, default 20s).
agent_haproxy() {
    [ -n "${BATON_TEST_HAPROXY:-}" ] || return 0
    echo "    haproxy:"
    echo "      runtime_api: $BATON_TEST_HAPROXY"
    echo "      backend: game"
    echo "      drain_timeout: ${BATON_TEST_HAPROXY_DRAIN:-20s}"
    echo "      up_timeout: 20s"
}

# tool_running NODE WHAT: a tool held open by slow_step is running in NODE.
tool_running() { node_exec "$1" pgrep -f "/opt/baton-test/slow ([a-z]+,)*$2"; }

# step_time NODE ROLLOUT STEP first|last: epoch seconds of the first or last line NODE's agent
# logged for STEP of ROLLOUT (every node shares the host clock).
step_time() {
    node_exec "$1" journalctl -u baton-agent BATON_ROLLOUT_ID="$2" BATON_STEP="$3" -o short-unix \
        --no-pager | if [ "$4" = first ]; then head -1; else tail -1; fi | cut -d' ' -f1
}

slow_step() { # NODE preflight|dump|migrate|list SECONDS (0: no longer slow)
    if [ "$3" = 0 ]; then
        node_exec "$1" rm -f "/run/baton-slow-$2"
    else
        node_exec "$1" sh -c "echo $3 > /run/baton-slow-$2"
    fi
}

agent_install() {
    local node=$1 cfg unit
    cfg=$(mktemp)
    unit=$(mktemp)
    agent_config "$node" >"$cfg"
    sed 's|/usr/local/sbin/baton-agent|/opt/baton/bin/baton-agent|' agent/baton-agent.service >"$unit"
    if [ "${BATON_TEST_HOOKS:-0}" = 1 ]; then
        node_push "$node" tests/fixtures/knobs/hook /opt/baton-test/hook 0755 || return 1
    fi
    if [ "${BATON_TEST_KNOBS:-0}" = 1 ]; then
        node_push "$node" tests/fixtures/knobs/slow /opt/baton-test/slow 0755 &&
            node_push "$node" tests/fixtures/knobs/pg_dump /opt/baton-test/pg_dump 0755 || return 1
    fi
    agent_keys "$node" &&
        node_push "$node" "${BUILD:-build}/baton-agent" /opt/baton/bin/baton-agent 0755 &&
        node_push "$node" "$cfg" /etc/baton/agent.yml 0600 &&
        node_push "$node" "$unit" /etc/systemd/system/baton-agent.service &&
        node_exec "$node" systemctl daemon-reload &&
        node_exec "$node" systemctl start baton-agent
    local rc=$?
    rm -f "$cfg" "$unit"
    return $rc
}

node_db() { # NODE: the database NODE's gamesrv uses
    if [ "${BATON_CLUSTER_DB_PER_NODE:-0}" = 1 ]; then echo "game_$1"; else echo game; fi
}

baton_cluster() {
    local name=$1 count=$2 version=$3 n
    cluster_up "$name" "$count" || return 1
    pg_up "$CLUSTER_DIR/pg" "${PG_TEST_PORT:-55432}" "$CLUSTER_HOST_IP" "$CLUSTER_SUBNET.0/24" || return 1
    # BATON_CLUSTER_DB_PER_NODE=1: a database per node (game_node1, ...) instead of one shared
    for n in $(if [ "${BATON_CLUSTER_DB_PER_NODE:-0}" = 1 ]; then echo $CLUSTER_NODES; else echo node1; fi); do
        pg_createdb "$(node_db "$n")" >&2 || return 1
    done
    for n in $CLUSTER_NODES; do
        gamesrv_install "$n" "$version" "$(node_db "$n")" >&2 || return 1
        if [ "${BATON_CLUSTER_DB_PER_NODE:-0}" = 1 ] || [ "$n" = node1 ]; then
            node_exec "$n" /opt/gamesrv/bin/gamesrv migrate up >&2 || return 1
        fi
    done
    for n in $CLUSTER_NODES; do
        node_exec "$n" systemctl start gamesrv || return 1
        # BATON_CLUSTER_AGENTS=0: the test installs the agents itself (the Ansible role does)
        [ "${BATON_CLUSTER_AGENTS:-1}" = 0 ] || BATON_TEST_DB=$(node_db "$n") agent_install "$n" || return 1
    done
    for p in alice bob carol; do
        curl -sf -o /dev/null -X POST "http://$(node_ip node1):$GAMESRV_PORT/players?name=$p" || return 1
    done
    ROLLOUT_DIR=$CLUSTER_DIR/rollouts
    mkdir -p "$ROLLOUT_DIR"
    # The coordinator's journals stay in the cluster's folder, not in the host's /var/lib/baton.
    export BATON_STATE_DIR=$CLUSTER_DIR/coordinator
}

rollout_file() { # VERSION [FILE]: artifact is the build of VERSION (may carry +faults)
    local version=$1 file=${2:-$ROLLOUT_DIR/rollout-$1.yml} n
    {
        echo "service: gamesrv"
        echo "version: ${version%%+*}"
        echo "artifact: $(realpath "$(gamesrv_bin "$version")")"
        echo "timeouts:"
        echo "  connect: 3s"
        echo "  step: 2m"
        [ -n "${BATON_TEST_ROLLOUT_MIN_HEALTHY:-}" ] &&
            echo "min_healthy_time: $BATON_TEST_ROLLOUT_MIN_HEALTHY"
        [ -n "${BATON_TEST_LIVENESS:-}" ] && echo "liveness: $BATON_TEST_LIVENESS"
        rollout_nodes
    } >"$file"
    echo "$file"
}

# The trust and node part of a rollout file: the coordinator's key (or insecure) and every node
# of the cluster with its endpoint and public key.
rollout_nodes() {
    if [ "${BATON_TEST_INSECURE:-0}" = 1 ]; then
        echo "insecure: true"
    else
        key_pair coordinator
        printf 'curve:\n  secret_key: %s\n' "$(keys_dir)/coordinator.key"
    fi
    echo "nodes:"
    for n in $CLUSTER_NODES; do
        echo "  - name: $n"
        echo "    endpoint: tcp://$(node_ip "$n"):$BATON_AGENT_PORT"
        [ "${BATON_TEST_INSECURE:-0}" = 1 ] || echo "    public_key: \"$(agent_pub "$n")\""
    done
}

# What each node's gamesrv (or BIN) prints for --version, on one line.
node_versions() { # [BIN]
    local n
    for n in $CLUSTER_NODES; do node_exec "$n" "${1:-/opt/gamesrv/bin/gamesrv}" --version; done |
        tr '\n' ' '
}

# How often each node's gamesrv was stopped, on one line (unit_stops of every node).
cluster_stops() {
    local n
    for n in $CLUSTER_NODES; do unit_stops "$n"; done | tr '\n' ' '
}

agent_state() {
    node_exec "$1" cat /var/lib/baton/gamesrv.json
}

state_field() { # NODE FIELD: one string field of the agent's state file
    agent_state "$1" | sed -n "s/^  \"$2\": \"\(.*\)\",\{0,1\}\$/\1/p"
}

agent_pid() { # NODE: the agent's main PID
    node_exec "$1" systemctl show -p MainPID --value baton-agent
}

# Everything a user would compare: schema, bookkeeping rows (with timestamps), player rows.
db_snapshot() {
    {
        # pg_dump >= 15.14 writes a random \\restrict key into every dump: not part of the schema.
        pg_dump -h "$PG_SOCK" -p "$PG_PORT" -U postgres --schema-only game |
            grep -vE '^(--|\\restrict|\\unrestrict)'
        pg_sql game "SELECT * FROM migration_info ORDER BY id"
        pg_sql game "SELECT * FROM players ORDER BY id"
    } | sha256sum | cut -d' ' -f1
}

wait_for() { # SECONDS CMD...: polls CMD every 0.1 s until it succeeds; 1 on timeout
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

in_progress_is() { # NODE STEP: the agent's state says STEP is under way
    agent_state "$1" | grep -q "\"in_progress\": \"$2\""
}

agent_restarted() { # NODE N: the agent was restarted N times and is active again
    [ "$(node_exec "$1" systemctl show -p NRestarts --value baton-agent)" = "$2" ] &&
        [ "$(node_exec "$1" systemctl is-active baton-agent)" = active ]
}

unit_stops() { # how often gamesrv was stopped: its own last words, from the node's journal
    node_exec "$1" journalctl -u gamesrv -o cat --no-pager | grep -c 'stopped by signal' || true
}

players() { # the players table, as a line (name:level would differ after 0002)
    pg_sql game "SELECT string_agg(name, ',' ORDER BY id) FROM players"
}

# A stranger's session (psql on the host, kept open on a pipe, application_name NAME) takes
# baton's migration lock in DB: lock_by_stranger DB NAME, then lock_held DB to wait for it, and
# lock_stranger_ends to close the session (the server lets the lock go).
lock_by_stranger() {
    rm -f "$CLUSTER_DIR/lock.in"
    mkfifo "$CLUSTER_DIR/lock.in" || return 1
    PGAPPNAME="$2" psql -X -q -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d "$1" \
        <"$CLUSTER_DIR/lock.in" >/dev/null 2>&1 &
    LOCK_STRANGER=$!
    exec 7>"$CLUSTER_DIR/lock.in"
    echo "SELECT pg_advisory_lock(1650553967, 1);" >&7
}
lock_held() {
    [ "$(pg_sql "$1" "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
        AND classid = 1650553967 AND objid = 1")" = 1 ]
}
lock_stranger_ends() {
    exec 7>&-
    wait "$LOCK_STRANGER"
    rm -f "$CLUSTER_DIR/lock.in"
}
