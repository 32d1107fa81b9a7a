#!/bin/bash
# check.sh: the service's own check of a new release before anything stops, and the database
# written once, on a real cluster (2 nodes, one shared database). The agents' config is what an
# operator writes for Nakama: migrate up takes the database as {database_url} (a postgres://
# URL; the rehearsal takes the same command against its copy), and `check` runs the new binary's
# check (Nakama: `check --runtime.path`, which refuses a plugin of another build). A release
# whose check fails is refused in plan and in pre-flight with the tool's own words, exit 2, no
# unit stopped, nothing changed.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

cluster_sweep
cluster_trap
ok "cluster: 2 nodes on gamesrv 1.1.0, one shared database" baton_cluster chk 2 1.1.0 ||
    { done_testing; exit 1; }
versions() { node_versions; }
stops() { cluster_stops; }
scratch() { pg_sql postgres "SELECT count(*) FROM pg_database WHERE datname LIKE 'baton_rehearse%'"; }
configured=0
for n in $CLUSTER_NODES; do
    node_exec "$n" sed -i \
        -e 's|^    rehearse_migrate: .*|    migrate_up: "{binary} migrate up --database {database_url}"|' \
        -e 's|^    health:|    check: "{binary} check --database {database_url}"\n    health:|' \
        /etc/baton/agent.yml &&
        node_exec "$n" systemctl restart baton-agent && configured=$((configured + 1))
done
is "$configured" 2 "the agents take migrate_up with {database_url} and a check, no rehearse_migrate"

# --- a release whose own check fails --------------------------------------------------------------
f=$(rollout_file 1.2.0+check "$ROLLOUT_DIR/bad.yml")
snap=$(db_snapshot)
stops_before=$(stops)
out=$("$BATON" plan "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 2 "baton plan: the new release's check fails: exit 2"
like "$out" "check: exit code 1: gamesrv check: plugin.Open\(\"modules/sample.so\"\): plugin was built with a different version" \
    "with the tool's own words"
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 2 "baton rollout: refused in pre-flight, exit 2"
like "$out" "preflight .*FAIL .*check: exit code 1: gamesrv check: plugin.Open" "the same words"
is "$(db_snapshot) $(stops) $(versions)" "$snap $stops_before 1.1.0 1.1.0 " \
    "no unit was stopped, nothing changed"

# --- a good release: checked, rehearsed and migrated through the URL ---------------------------
f=$(rollout_file 1.2.0 "$ROLLOUT_DIR/good.yml")
echo "rehearse: true" >>"$f"
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "1.1.0 -> 1.2.0 with a passing check and a rehearsal: exit 0"
like "$out" "preflight +node1 +ok .*the migration rehearsed on a copy of the database in [0-9]+ ms" \
    "the rehearsal ran migrate_up against the copy's URL"
is "$(scratch)" 0 "no scratch database is left"
is "$(versions)" "1.2.0 1.2.0 " "every node on 1.2.0"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql,0003_inventory.sql" \
    "migrate up went through {database_url}: 0003 applied"
checked=$(node_exec node1 journalctl -u baton-agent -o cat --no-pager | grep -c 'checking the new release: {binary} check')
ok "node1's agent ran the check (its journal says so)" test "${checked:-0}" -ge 1

done_testing
