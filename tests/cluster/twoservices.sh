#!/bin/bash
# twoservices.sh: one agent, two services (a second copy of the fixture, gamesrv2, with its own
# database, port and unit). Services are independent (the faults issue's third case: a second
# service's rollout used to make the first one's stop and rollback fail BUSY, "ROLLBACK FAILED"
# on a node whose gamesrv was never stopped):
#   - gamesrv's migration on node1 held open while gamesrv2's whole rollout runs over the same
#     nodes: both exit 0, each migration once;
#   - gamesrv2's rollback (a downgrade) while gamesrv migrates: exit 0, and gamesrv's rollout
#     still exit 0.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
BATON_TEST_KNOBS=1 # gamesrv's migrate up can be held open (slow_step); gamesrv2's cannot
PORT2=7351

cluster_sweep
cluster_trap
ok "cluster: 2 nodes on gamesrv 1.0.0" baton_cluster two 2 1.0.0 || { done_testing; exit 1; }

# gamesrv2: the fixture again, under its own names.
gamesrv2_install() { # NODE VERSION
    local conf unit
    conf=$(mktemp)
    unit=$(mktemp)
    printf 'GAMESRV_DATABASE=%s\nGAMESRV_PORT=%s\n' "$(pg_conninfo game2)" "$PORT2" >"$conf"
    sed -e 's|/opt/gamesrv/|/opt/gamesrv2/|; s|/etc/gamesrv/|/etc/gamesrv2/|' \
        -e 's|^Description=gamesrv|Description=gamesrv2|' "$GAMESRV_SRC/gamesrv.service" >"$unit"
    node_push "$1" "$(gamesrv_bin "$2")" /opt/gamesrv2/bin/gamesrv 0755 &&
        node_push "$1" "$conf" /etc/gamesrv2/gamesrv.conf 0640 &&
        node_push "$1" "$unit" /etc/systemd/system/gamesrv2.service &&
        node_exec "$1" systemctl daemon-reload
    local rc=$?
    rm -f "$conf" "$unit"
    return $rc
}
second_service() { # NODE: gamesrv2's entry in the agent's config
    cat <<CFG
  - name: gamesrv2
    unit: gamesrv2.service
    binary: /opt/gamesrv2/bin/gamesrv
    database: "$(pg_conninfo game2)"
    backup_dir: /var/backups/baton/gamesrv2
    min_healthy_time: 1s
    migrate_up: "{binary} migrate up --config /etc/gamesrv2/gamesrv.conf"
    migrate_down: "{binary} migrate down --limit {n} --config /etc/gamesrv2/gamesrv.conf"
    list_migrations: "{binary} migrate list --config /etc/gamesrv2/gamesrv.conf"
    health:
      http: http://127.0.0.1:$PORT2/healthcheck
CFG
}
pg_createdb game2 >&2
setup_ok=0
for n in $CLUSTER_NODES; do
    gamesrv2_install "$n" 1.0.0 || setup_ok=1
    cfg=$(mktemp)
    { agent_config "$n"; second_service "$n"; } >"$cfg"
    node_push "$n" "$cfg" /etc/baton/agent.yml 0600 || setup_ok=1
    rm -f "$cfg"
    node_exec "$n" systemctl restart baton-agent || setup_ok=1
done
node_exec node1 /opt/gamesrv2/bin/gamesrv migrate up --config /etc/gamesrv2/gamesrv.conf >&2 || setup_ok=1
for n in $CLUSTER_NODES; do node_exec "$n" systemctl start gamesrv2 || setup_ok=1; done
health2() { curl -s -o /dev/null -m 3 -w '%{http_code}' "http://$(node_ip "$1"):$PORT2/healthcheck"; }
up2() { [ "$(health2 node1)" = 200 ] && [ "$(health2 node2)" = 200 ]; }
is "$setup_ok" 0 "gamesrv2 1.0.0 installed beside gamesrv on both nodes, one agent each with two services"
ok "gamesrv2 is healthy" wait_for 20 up2

versions() { # SERVICE
    local n
    for n in $CLUSTER_NODES; do node_exec "$n" "/opt/$1/bin/gamesrv" --version; done | tr '\n' ' '
}
file2() { # VERSION: a rollout file of gamesrv2
    local f=$ROLLOUT_DIR/gamesrv2-$1.yml
    rollout_file "$1" "$f" >/dev/null && sed -i 's/^service: gamesrv$/service: gamesrv2/' "$f" &&
        echo "$f"
}

# --- 1. two rollouts of two services over the same nodes at the same time ----------------------
slow_step node1 migrate 8
f1=$(rollout_file 1.1.0)
"$BATON" rollout "$f1" >"$CLUSTER_DIR/one.out" 2>&1 &
first=$!
ok "gamesrv's migration on node1 is running" wait_for 60 tool_running node1 migrate
f2=$(file2 1.1.0)
out=$("$BATON" rollout "$f2" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "gamesrv2's rollout over the same nodes runs meanwhile: exit 0"
unlike "$out" "busy" "no step of it was refused as busy"
ok "gamesrv's migration was still running when gamesrv2's rollout ended" tool_running node1 migrate
wait "$first"
code=$?
slow_step node1 migrate 0
cat "$CLUSTER_DIR/one.out" >&2
is "$code" 0 "gamesrv's rollout: exit 0"
is "$(versions gamesrv)" "1.1.0 1.1.0 " "gamesrv on 1.1.0 on both nodes"
is "$(versions gamesrv2)" "1.1.0 1.1.0 " "gamesrv2 on 1.1.0 on both nodes"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql" "gamesrv's database migrated once"
is "$(migration_ids game2)" "0001_players.sql,0002_player_level.sql" "gamesrv2's database migrated once"

# --- 2. a rollback of one service while the other migrates ----------------------------------
id2=$(printf '%s\n' "$out" | sed -n 's/^baton: rollout \([^:]*\):.*/\1/p')
slow_step node1 migrate 8
f1=$(rollout_file 1.2.0)
"$BATON" rollout "$f1" >"$CLUSTER_DIR/two.out" 2>&1 &
first=$!
ok "gamesrv's next migration on node1 is running" wait_for 60 tool_running node1 migrate
out=$("$BATON" rollback "$id2" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "gamesrv2's rollback (back to 1.0.0) meanwhile: exit 0, not refused as busy"
wait "$first"
code=$?
slow_step node1 migrate 0
cat "$CLUSTER_DIR/two.out" >&2
is "$code" 0 "and gamesrv's rollout: exit 0"
is "$(versions gamesrv)" "1.2.0 1.2.0 " "gamesrv on 1.2.0"
is "$(versions gamesrv2)" "1.0.0 1.0.0 " "gamesrv2 back on 1.0.0"
is "$(migration_ids game2)" "0001_players.sql" "gamesrv2's database back to 1.0.0's schema"
ok "both healthy" up2
is "$(gamesrv_health node1)$(gamesrv_health node2)" 200200 "gamesrv healthy on both"
done_testing
