#!/bin/bash
# nakama.sh: real Nakama, the service our users run, on a real cluster: three Nakama nodes on
# one PostgreSQL database, set up from doc/examples/nakama as an operator would (agent.yml and
# nakama.service filled in with sed, releases made by make-bundle.sh from Nakama's own builds:
# `make nakama` builds 3.13.0, 3.14.0 and 3.15.0 with Heroic Labs' sample Go plugin). Users are
# created through Nakama's API before each case and checked after.
#   - 3.15.0's binary with 3.14.0's plugin: refused in plan and pre-flight by `nakama check`,
#     with Nakama's own message, exit 2, no unit stopped;
#   - 3.13.0 -> 3.14.0 -> 3.15.0 through a catalog, one minor at a time, as release bundles:
#     exit 0, 3.15.0's migration applied once, its plugin loaded on every node, rows kept;
#   - 3.15.0 -> 3.14.0 with --allow-downgrade: exactly 3.14.0's migration ids, rows kept,
#     3.14.0's plugin answering;
#   - a 3.15.0 release whose drop-in adds a bad flag: rolled back by switching back, the drop-in
#     gone, schema and rows as before, exit 3, Nakama's own error line in the output;
#   - a migration from a newer build in the table: refused before anything stops, though Nakama
#     has no `migrate list` (the example's pattern reads `nakama migrate status`).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
NK=build/nakama # `make nakama`: the same builds for the plain and the sanitized run
EXAMPLE=doc/examples/nakama

for v in 3.13.0 3.14.0 3.15.0; do
    if [ ! -x "$NK/$v/nakama" ] || [ ! -f "$NK/$v/modules/sample.so" ]; then
        echo "1..0 # SKIP no Nakama $v build in $NK (make nakama: needs ../shared/nakama)"
        exit 0
    fi
done

cluster_sweep
cluster_trap
PORT=${PG_TEST_PORT:-55432}

# One node as the operator sets it up: the agent from the example config, Nakama VERSION as a
# plain folder in /opt/nakama/current (an install from before releases), the example unit.
nakama_node() { # NODE VERSION
    local n=$1 v=$2 cfg unit
    cfg=$(mktemp) unit=$(mktemp)
    sed -e "s|@NODE@|$n|" -e "s|@CONNINFO@|$(pg_conninfo nakama) sslmode=disable|" \
        -e 's|min_healthy_time: 10s|min_healthy_time: 2s|' "$EXAMPLE/agent.yml" >"$cfg"
    sed "s|@NODE@|$n|" "$EXAMPLE/nakama.service" >"$unit"
    agent_keys "$n" &&
        node_push "$n" "${BUILD:-build}/baton-agent" /opt/baton/bin/baton-agent 0755 &&
        node_push "$n" "$cfg" /etc/baton/agent.yml 0600 &&
        sed 's|/usr/local/sbin/baton-agent|/opt/baton/bin/baton-agent|' agent/baton-agent.service \
            >"$cfg" && node_push "$n" "$cfg" /etc/systemd/system/baton-agent.service &&
        node_push "$n" "$NK/$v/nakama" /opt/nakama/current/nakama 0755 &&
        node_push "$n" "$NK/$v/modules/sample.so" /opt/nakama/current/data/modules/sample.so 0644 &&
        node_push "$n" "$unit" /etc/systemd/system/nakama.service &&
        node_exec "$n" systemctl daemon-reload &&
        node_exec "$n" systemctl start baton-agent
    local rc=$?
    rm -f "$cfg" "$unit"
    return $rc
}
url() { echo "postgres://postgres@$CLUSTER_HOST_IP:$PORT/nakama?sslmode=disable"; }
healthy() { [ "$(curl -s -o /dev/null -m 3 -w '%{http_code}' "http://$(node_ip "$1"):7350/healthcheck")" = 200 ]; }
setup() {
    cluster_up nk 3 &&
        pg_up "$CLUSTER_DIR/pg" "$PORT" "$CLUSTER_HOST_IP" "$CLUSTER_SUBNET.0/24" &&
        pg_createdb nakama || return 1
    local n
    for n in $CLUSTER_NODES; do nakama_node "$n" 3.13.0 || return 1; done
    node_exec node1 /opt/nakama/current/nakama migrate up --database.address "$(url)" >&2 || return 1
    for n in $CLUSTER_NODES; do node_exec "$n" systemctl start nakama || return 1; done
    for n in $CLUSTER_NODES; do wait_for 30 healthy "$n" || return 1; done
}
ok "cluster: 3 Nakama 3.13.0 nodes on one database, set up from doc/examples/nakama" setup ||
    { done_testing; exit 1; }
ROLLOUT_DIR=$CLUSTER_DIR/rollouts
mkdir -p "$ROLLOUT_DIR"
export BATON_STATE_DIR=$CLUSTER_DIR/coordinator

versions() { node_versions /opt/nakama/current/nakama; }
ids() { pg_sql nakama "SELECT string_agg(id, ',' ORDER BY id) FROM migration_info"; }
users() { pg_sql nakama "SELECT count(*) || ':' || md5(string_agg(id::text, ',' ORDER BY id)) FROM users"; }
pids() { for n in $CLUSTER_NODES; do node_exec "$n" systemctl show -p MainPID --value nakama; done | tr '\n' ' '; }
add_users() { # TAG: one device account per node, through Nakama's API
    local n
    for n in $CLUSTER_NODES; do
        curl -sf -u defaultkey: -X POST -d "{\"id\":\"device-$1-$n-0000\"}" \
            "http://$(node_ip "$n"):7350/v2/account/authenticate/device?create=true" >/dev/null ||
            return 1
    done
}
plugin_answers() { # NODE: the sample plugin's RPC echoes its payload
    [ "$(curl -s -m 5 -X POST -d '{"from":"baton"}' \
        "http://$(node_ip "$1"):7350/v2/rpc/go_echo_sample?http_key=defaulthttpkey&unwrap")" = '{"from":"baton"}' ]
}
bundle() { # VERSION BUILD-DIR: a release bundle by the example's script; prints its path
    "$EXAMPLE/make-bundle.sh" "$1" "$2" "$ROLLOUT_DIR/nakama-$1-$(basename "$2").tar.gz" |
        awk '{print $2}'
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
rollout_yml() { # FILE VERSION (ARTIFACT | catalog:CATALOG)
    {
        echo "service: nakama"
        echo "version: $2"
        case $3 in
            catalog:*) echo "catalog: ${3#catalog:}" ;;
            *) echo "artifact: $3" ;;
        esac
        printf 'timeouts:\n  connect: 3s\n  step: 3m\n'
        rollout_nodes
    } >"$1"
    echo "$1"
}
ok "users created through Nakama's API on every node" add_users a
is "$(versions)" "3.13.0+b25986f8 3.13.0+b25986f8 3.13.0+b25986f8 " "every node prints 3.13.0+b25986f8"
ids_313=$(ids)

b313=$(bundle 3.13.0 "$NK/3.13.0")
b314=$(bundle 3.14.0 "$NK/3.14.0")
b315=$(bundle 3.15.0 "$NK/3.15.0")
ok "make-bundle.sh made a bundle of each build" test -s "$b313" -a -s "$b314" -a -s "$b315"

# --- 3.15.0's binary with 3.14.0's plugin: refused by `nakama check` before anything stops --------
mixed=$ROLLOUT_DIR/mixed
mkdir -p "$mixed/modules" && cp "$NK/3.15.0/nakama" "$mixed/" && cp "$NK/3.14.0/modules/sample.so" "$mixed/modules/"
f=$(rollout_yml "$ROLLOUT_DIR/mixed.yml" 3.15.0 "$(bundle 3.15.0 "$mixed")")
users_before=$(users) pids_before=$(pids)
out=$("$BATON" plan "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 2 "baton plan: the mixed release is refused (exit 2)"
like "$out" "check: exit code 1: .*plugin was built with a different version of package github.com/heroiclabs/nakama-common" \
    "with Nakama's own message"
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 2 "baton rollout: refused in pre-flight (exit 2)"
like "$out" "preflight .*FAIL .*plugin was built with a different version of package" "the same message"
is "$(pids) $(users) $(ids)" "$pids_before $users_before $ids_313" "no unit stopped, nothing changed"

# --- 3.13.0 -> 3.14.0 -> 3.15.0 through a catalog, one minor at a time ---------------------------
{
    echo "service: nakama"
    echo "releases:"
    for b in "3.13.0 $b313" "3.14.0 $b314" "3.15.0 $b315"; do
        set -- $b
        printf '  - version: %s\n    artifact: %s\n    sha256: %s\n' "$1" "$2" "$(sha "$2")"
    done
} >"$ROLLOUT_DIR/releases.yml"
ok "users added before the upgrade" add_users b
users_before=$(users)
f=$(rollout_yml "$ROLLOUT_DIR/up.yml" 3.15.0 catalog:releases.yml)
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "3.13.0 -> 3.15.0 through the catalog: exit 0"
like "$out" "goes one minor version at a time: 3.14.0 -> 3.15.0 \(2 rollouts" \
    "one minor at a time, through 3.14.0"
is "$(grep -c '^baton: rollout r.*: nakama -> 3.1[45].0 on 3 nodes' <<<"$out")" 2 \
    "two rollouts, each a whole one"
is "$(versions)" "3.15.0+1783fad1 3.15.0+1783fad1 3.15.0+1783fad1 " "every node runs 3.15.0"
is "$(ids)" "$ids_313,20221027145900-subscription-raw-columns.sql" "3.15.0's migration, and only it, added"
is "$(grep -c 'applied 20221027145900-subscription-raw-columns.sql' <<<"$out")" 1 \
    "applied once, by the first node (the others share the database)"
for n in $CLUSTER_NODES; do
    ok "$n: 3.15.0's plugin is loaded (its RPC answers)" plugin_answers "$n"
    is "$(node_exec "$n" readlink /opt/nakama/current)" "releases/3.15.0-$(sha "$b315" | cut -c1-12)" \
        "$n: current -> the 3.15.0 release"
done
is "$(users)" "$users_before" "every user kept"

# --- 3.15.0 -> 3.14.0 with --allow-downgrade ---------------------------------------------------
ok "users added on 3.15.0" add_users c
users_before=$(users)
f=$(rollout_yml "$ROLLOUT_DIR/down.yml" 3.14.0 "$b314")
out=$("$BATON" plan "$f" --allow-downgrade 2>&1)
is "$?" 0 "baton plan 3.15.0 -> 3.14.0 --allow-downgrade: could run"
out=$("$BATON" rollout "$f" --allow-downgrade 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "3.15.0 -> 3.14.0 with --allow-downgrade: exit 0"
is "$(versions)" "3.14.0+e2df3a29 3.14.0+e2df3a29 3.14.0+e2df3a29 " "every node runs 3.14.0"
is "$(ids)" "$ids_313" "exactly 3.14.0's migration ids"
is "$(users)" "$users_before" "every user kept, those made on 3.15.0 too"
for n in $CLUSTER_NODES; do
    ok "$n: 3.14.0's plugin is loaded" plugin_answers "$n"
done

# --- a failure after the switch: a drop-in with a bad flag -------------------------------------------
bad=$ROLLOUT_DIR/bad
mkdir -p "$bad/modules" && cp "$NK/3.15.0/nakama" "$bad/" && cp "$NK/3.15.0/modules/sample.so" "$bad/modules/"
printf '[Service]\nExecStart=\nExecStart=/opt/nakama/current/nakama --name bad --no-such-flag\n' >"$bad/unit.conf"
f=$(rollout_yml "$ROLLOUT_DIR/bad.yml" 3.15.0 "$(bundle 3.15.0 "$bad")")
ok "users added on 3.14.0" add_users d
users_before=$(users) ids_before=$(ids)
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 3 "a 3.15.0 release whose drop-in adds a bad flag: rolled back (exit 3)"
like "$out" "\| .*nakama.*flag provided but not defined: -no-such-flag" "Nakama's own error line, under the failure"
is "$(versions)" "3.14.0+e2df3a29 3.14.0+e2df3a29 3.14.0+e2df3a29 " "every node runs 3.14.0 again"
for n in $CLUSTER_NODES; do
    ok "$n: the bad release's drop-in is gone" \
        node_exec "$n" test ! -e /etc/systemd/system/nakama.service.d/50-baton-release.conf
    ok "$n: healthy" healthy "$n"
done
is "$(ids) $(users)" "$ids_before $users_before" "schema and users as before"

# --- the newer-schema guard, though Nakama has no `migrate list` ------------------------------------
# A migration from a newer build in the table: Nakama itself would only warn and run on it. The
# example's list_migrations_pattern reads the ids out of `nakama migrate status`.
pg_sql nakama "INSERT INTO migration_info (id, applied_at) VALUES ('20991231000000-future.sql', now())"
f=$(rollout_yml "$ROLLOUT_DIR/up2.yml" 3.15.0 "$b315")
pids_before=$(pids)
out=$("$BATON" plan "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 2 "a schema newer than 3.15.0: baton plan refuses (exit 2)"
like "$out" "does not ship \(20991231000000-future.sql\)" "naming the migration the binary does not ship"
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "and the rollout is refused in pre-flight"
is "$(pids)" "$pids_before" "no unit stopped"
pg_sql nakama "DELETE FROM migration_info WHERE id = '20991231000000-future.sql'"

done_testing
