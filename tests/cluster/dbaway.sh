#!/bin/bash
# dbaway.sh: PostgreSQL goes away during a migration and comes back 8 s later (the faults
# issue's seventh case: the node used to be left stopped on the new binary, with a message that
# said "migrate ran" when the tool never connected). The migrate step fails with the tool's own
# exit status and last line; the rollback waits for the database, saying so, and puts the node
# back (exit 3): the old binary, the old schema, healthy.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
BATON_TEST_KNOBS=1

cluster_sweep
cluster_trap
ok "cluster: 1 node on gamesrv 1.0.0" baton_cluster dbaway 1 1.0.0 || { done_testing; exit 1; }
before=$(migration_ids game)

slow_step node1 migrate 4
f=$(rollout_file 1.1.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/out" 2>&1 &
pid=$!
ok "node1's migration is about to run" wait_for 60 tool_running node1 migrate
ok "PostgreSQL stops" pg_stop "$PG_DIR"
# Back 8 s later (the outage itself), while the rollback waits for it.
(sleep 8 && pg_start "$PG_DIR" "$PG_PORT" "$PG_HOST") &
back=$!
wait "$pid"
code=$?
wait "$back"
slow_step node1 migrate 0
out=$(cat "$CLUSTER_DIR/out")
printf '%s\n' "$out" >&2
is "$code" 3 "the database away during the migration: exit 3, node1 rolled back"
like "$out" "migrate +FAIL .*migrate up: exit code [0-9]+: .*; then database of gamesrv unreachable" \
    "the migrate step names the tool's own exit status and last line"
like "$out" "rollback +ok" "the rollback went through"
like "$(node_exec node1 journalctl -u baton-agent BATON_STEP=rollback -o cat --no-pager)" \
    "unreachable.*; trying again" "the rollback said it waited for the database"
is "$(node_exec node1 /opt/gamesrv/bin/gamesrv --version)" 1.0.0 "node1 back on 1.0.0"
is "$(migration_ids game)" "$before" "the schema as it was"
is "$(gamesrv_health node1)" 200 "and it serves"
done_testing
