#!/bin/bash
# ground.sh: the test cluster and the gamesrv fixture, on real parts, do what later tests rely on.
# 3 nodes (real systemd each), one real PostgreSQL; gamesrv installed and run as a unit.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/cluster.sh
. tests/lib/pg.sh
. tests/lib/gamesrv.sh

PG_TEST_PORT=${PG_TEST_PORT:-55432}
M1=0001_players.sql
M2=0002_player_level.sql
M3=0003_inventory.sql

cluster_sweep
cluster_trap
ok "3 nodes start, each a running systemd" cluster_up ground 3 || { done_testing; exit 1; }
ok "postgresql starts, listening on the bridge" \
    pg_up "$CLUSTER_DIR/pg" "$PG_TEST_PORT" "$CLUSTER_HOST_IP" "$CLUSTER_SUBNET.0/24"
pg_createdb game >&2

# --- nodes are separate machines ---------------------------------------------------------------
for n in $CLUSTER_NODES; do
    is "$(node_exec "$n" hostname)" "$n" "$n has its own hostname"
done
is "$(node_exec node1 systemctl is-system-running)" running "node1's systemd runs as PID 1"
is "$(node_exec node1 cat /proc/1/comm)" systemd "PID 1 inside node1 is systemd"
node_exec node1 sh -c 'echo private >/etc/baton-node-marker' >&2
nok "a file node1 writes to /etc is not on node2" node_exec node2 test -e /etc/baton-node-marker
nok "nor on the host" test -e /etc/baton-node-marker
ok "node2 reaches postgresql over the bridge" node_exec node2 bash -c \
    "exec 3<>/dev/tcp/$CLUSTER_HOST_IP/$PG_TEST_PORT"

# --- gamesrv 1.0.0 as a unit on every node, shared database ------------------------------------
for n in $CLUSTER_NODES; do
    gamesrv_install "$n" 1.0.0 game >&2
done
is "$(node_exec node1 /opt/gamesrv/bin/gamesrv --version)" 1.0.0 "gamesrv --version prints the version"
nok "gamesrv refuses to start before migrate up" node_exec node1 systemctl start gamesrv
like "$(node_exec node1 journalctl -u gamesrv -o cat --no-pager)" "schema outdated, run migrate up" \
    "the refusal says 'schema outdated, run migrate up' in the node's journal"
is "$(node_exec node1 systemctl show -p ActiveState --value gamesrv)" failed "the unit is failed"

ok "gamesrv migrate up (1.0.0)" node_exec node1 /opt/gamesrv/bin/gamesrv migrate up
is "$(migration_ids game)" "$M1" "bookkeeping table holds exactly 1.0.0's migration"
like "$(node_exec node1 /opt/gamesrv/bin/gamesrv migrate status)" "$M1 .*\| *[0-9]{4}-" \
    "migrate status shows it applied"
for n in $CLUSTER_NODES; do
    ok "$n: systemctl start gamesrv" node_exec "$n" systemctl start gamesrv
done
for n in $CLUSTER_NODES; do
    is "$(gamesrv_health "$n")" 200 "$n healthy over the bridge (from the host)"
done
is "$(gamesrv_health node3 node1)" 200 "node3 healthy from node1 (node to node)"

# Data written through one node is read through another: one shared database.
for p in alice bob carol; do
    is "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$(node_ip node1):$GAMESRV_PORT/players?name=$p")" \
        201 "player $p created through node1"
done
is "$(curl -s "http://$(node_ip node3):$GAMESRV_PORT/players")" '{"players":["alice","bob","carol"]}' \
    "node3 reads the players node1 wrote"
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$(node_ip node1):$GAMESRV_PORT/players?name=a%27b")" \
    400 "a hostile player name is refused"

# --- migrations: up and down change the bookkeeping table exactly -------------------------------
gamesrv_swap node1 1.1.0 >&2
ok "gamesrv 1.1.0 migrate up" node_exec node1 /opt/gamesrv/bin/gamesrv migrate up
is "$(migration_ids game)" "$M1,$M2" "1.1.0 added exactly its one migration"
is "$(pg_sql game "SELECT string_agg(name || ':' || level, ',' ORDER BY id) FROM players")" \
    "alice:1,bob:1,carol:1" "rows intact, new column filled with its default"
nok "1.0.0 on node2 still runs (its migrations are all applied)" node_exec node2 \
    systemctl is-failed gamesrv
ok "gamesrv 1.1.0 migrate down --limit 1" node_exec node1 /opt/gamesrv/bin/gamesrv migrate down --limit 1
is "$(migration_ids game)" "$M1" "down --limit 1 removed exactly the newest id"
is "$(pg_sql game "SELECT string_agg(name, ',' ORDER BY id) FROM players")" "alice,bob,carol" \
    "rows intact after the down-migration"
is "$(pg_sql game "SELECT count(*) FROM information_schema.columns WHERE table_name='players' AND column_name='level'")" \
    0 "the down-migration really dropped the column"
gamesrv_swap node1 1.0.0 >&2

# --- one database per node (a fleet of independent instances) -----------------------------------
for n in node2 node3; do pg_createdb "fleet_$n" >&2; done
node_push node2 "$(gamesrv_bin 1.2.0)" /tmp/gamesrv-1.2.0 0755
ok "node2 migrates its own database with 1.2.0" node_exec node2 env \
    "GAMESRV_DATABASE=$(pg_conninfo fleet_node2)" /tmp/gamesrv-1.2.0 migrate up
is "$(migration_ids fleet_node2)" "$M1,$M2,$M3" "fleet_node2 holds 1.2.0's three migrations"
is "$(migration_ids fleet_node3)" "" "fleet_node3 is untouched"
is "$(migration_ids game)" "$M1" "the shared database is untouched"
ok "migrate down without --limit (Nakama's default)" node_exec node2 env \
    "GAMESRV_DATABASE=$(pg_conninfo fleet_node2)" /tmp/gamesrv-1.2.0 migrate down
is "$(migration_ids fleet_node2)" "" "reverts ALL migrations, which is why baton always passes --limit"

# --- the faults a test can build in -------------------------------------------------------------
gamesrv_swap node1 1.1.0+migrate-up >&2
out=$(node_exec node1 /opt/gamesrv/bin/gamesrv migrate up 2>&1)
is "$?" 1 "fault migrate-up: migrate up fails"
like "$out" "gamesrv_injected_fault_migration_up_fails" "fault migrate-up: the error names the fault"
is "$(migration_ids game)" "$M1" "fault migrate-up: bookkeeping unchanged (transaction rolled back)"
is "$(pg_sql game "SELECT count(*) FROM information_schema.columns WHERE table_name='players' AND column_name='level'")" \
    0 "fault migrate-up: the migration's own work was rolled back too"

gamesrv_swap node1 1.2.0+migrate-up >&2
nok "fault migrate-up in 1.2.0: migrate up fails" node_exec node1 /opt/gamesrv/bin/gamesrv migrate up
is "$(migration_ids game)" "$M1,$M2" "fault migrate-up in 1.2.0: the migration before the faulty one stays applied"
gamesrv_swap node1 1.2.0 >&2
ok "clean up: 1.2.0 migrate down --limit 1" node_exec node1 /opt/gamesrv/bin/gamesrv migrate down --limit 1
is "$(migration_ids game)" "$M1" "back at 1.0.0's schema"

gamesrv_swap node1 1.1.0+migrate-down >&2
ok "fault migrate-down: migrate up works" node_exec node1 /opt/gamesrv/bin/gamesrv migrate up
nok "fault migrate-down: migrate down --limit 1 fails" node_exec node1 /opt/gamesrv/bin/gamesrv migrate down --limit 1
is "$(migration_ids game)" "$M1,$M2" "fault migrate-down: bookkeeping unchanged"
gamesrv_swap node1 1.1.0 >&2
ok "clean up: 1.1.0 migrate down --limit 1" node_exec node1 /opt/gamesrv/bin/gamesrv migrate down --limit 1

gamesrv_swap node1 1.1.0+migrate-hang >&2
node_exec node1 timeout 3 /opt/gamesrv/bin/gamesrv migrate up >&2
is "$?" 124 "fault migrate-hang: migrate up still running after 3 s (killed by timeout)"
is "$(node_exec node1 sh -c 'pgrep -c sql-migrate || true')" 0 "the kill reached sql-migrate too"
is "$(migration_ids game)" "$M1" "fault migrate-hang: bookkeeping unchanged"
gamesrv_swap node1 1.1.0 >&2
ok "after a killed migration, migrate up works again (no lock left behind)" \
    node_exec node1 timeout 20 /opt/gamesrv/bin/gamesrv migrate up
ok "and down --limit 1" node_exec node1 timeout 20 /opt/gamesrv/bin/gamesrv migrate down --limit 1
is "$(migration_ids game)" "$M1" "back at 1.0.0's schema"
gamesrv_swap node1 1.0.0 >&2

gamesrv_install node3 1.0.0 game "GAMESRV_FAULT=health" >&2
ok "fault health (from the config file): the unit starts" node_exec node3 systemctl restart gamesrv
is "$(gamesrv_health node3)" 503 "fault health: /healthcheck answers 503"
gamesrv_install node3 1.0.0 game >&2
node_exec node3 systemctl restart gamesrv >&2
is "$(gamesrv_health node3)" 200 "without the fault, healthy again"

gamesrv_swap node3 1.1.0+crash >&2
nok "fault crash: systemctl restart fails" node_exec node3 systemctl restart gamesrv
is "$(node_exec node3 systemctl show -p Result --value gamesrv)" signal "fault crash: systemd saw it die by a signal"
gamesrv_swap node3 1.0.0 >&2
ok "the 1.0.0 binary starts again" node_exec node3 systemctl start gamesrv

# --- partitions and killed nodes ----------------------------------------------------------------
node_cut node2
nok "cut node2: unreachable from the host" tcp_open "$(node_ip node2)" "$GAMESRV_PORT"
nok "cut node2: unreachable from node1" node_exec node1 timeout 2 bash -c \
    "exec 3<>/dev/tcp/$(node_ip node2)/$GAMESRV_PORT"
node_heal node2
ok "healed node2: reachable from the host" tcp_open "$(node_ip node2)" "$GAMESRV_PORT"
is "$(gamesrv_health node2 node1)" 200 "healed node2: healthy from node1"

gs_pid=$(node_exec node3 systemctl show -p MainPID --value gamesrv)
sd_pid=$(node_pid node3)
node_kill node3
nok "killed node3: its systemd is gone" kill -0 "$sd_pid"
nok "killed node3: its gamesrv no longer answers" tcp_open "$(node_ip node3)" "$GAMESRV_PORT"
is "$(gamesrv_health node1)" 200 "node1 is unaffected"
diag "node3's gamesrv was pid $gs_pid inside the node"

# --- a sanitizer report anywhere reaches the run (tests/run-tests fails the test after which one
# appears): one from a unit in a node and one on the host, made on purpose and then taken away --
if [ -n "${BATON_SAN_REPORTS:-}" ]; then
    bad=$(mktemp -d)
    gcc -fsanitize=undefined -fno-sanitize-recover=undefined -o "$bad/sanbad" tests/tools/sanbad.c
    node_push node1 "$bad/sanbad" /opt/baton-test/sanbad 0755
    printf '[Service]\nType=oneshot\nExecStart=/opt/baton-test/sanbad\n' >"$bad/sanbad.service"
    node_push node1 "$bad/sanbad.service" /etc/systemd/system/sanbad.service
    node_exec node1 systemctl daemon-reload
    node_exec node1 systemctl start sanbad >&2
    in_node=$(ls "$CLUSTER_DIR/nodes/node1/var.upper/log/baton-sanitizer/" 2>/dev/null)
    like "$(cat "$CLUSTER_DIR"/nodes/node1/var.upper/log/baton-sanitizer/* 2>/dev/null)" \
        "runtime error: signed integer overflow" \
        "a report of a unit in a node is a file in the node's report folder ($in_node)"
    rm -f "$CLUSTER_DIR"/nodes/node1/var.upper/log/baton-sanitizer/*
    "$bad/sanbad" >&2
    host=$(ls -t "$BATON_SAN_REPORTS" | grep -v '^seen$' | head -1)
    like "$(cat "$BATON_SAN_REPORTS/$host" 2>/dev/null)" "runtime error: signed integer overflow" \
        "a report on the host is a file in $BATON_SAN_REPORTS"
    rm -f "$BATON_SAN_REPORTS/$host"
    rm -rf "$bad"
fi

# --- teardown leaves nothing behind ------------------------------------------------------------
pids=""
for n in $CLUSTER_NODES; do pids="$pids $(node_pid "$n")"; done
pg_pid=$(head -1 "$CLUSTER_DIR/pg/data/postmaster.pid")
dir=$CLUSTER_DIR
trap - EXIT
ok "cluster_down succeeds" cluster_down ground
alive=""
for p in $pids $pg_pid; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
is "$alive" "" "no node or database process left"
is "$(ip -br link | grep -cE "^($(cluster_bridge_name ground)|$(cluster_veth_prefix ground))")" 0 "no bridge or veth left"
nok "no cluster folder left" test -e "$dir"
nok "postgresql port closed" tcp_open "$CLUSTER_HOST_IP" "$PG_TEST_PORT"
done_testing
