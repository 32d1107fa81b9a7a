#!/bin/bash
# journaldb.sh: the journal in a PostgreSQL of its own (`--journal`), restarted for 2 s during
# node2's migration (the faults issue's fifth case: the rollout used to abort and undo node2's
# good migration). The coordinator holds the events it could not store (in memory and a spool
# file) and writes them, in order, once the database is back: the rollout ends exit 0, its
# journal whole. No NOTICE is printed by any journal command.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
BATON_TEST_KNOBS=1
export BATON_CLUSTER_DB_PER_NODE=1 # node2 migrates a database of its own

cluster_sweep
trap 'pg_down "${CLUSTER_DIR:-/nonexistent}/pg-journal" 2>/dev/null; cluster_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ok "cluster: 2 nodes on gamesrv 1.0.0, a database each" baton_cluster jdb 2 1.0.0 ||
    { done_testing; exit 1; }

# The journal's own server, on the host's loopback (the coordinator is its only client).
save="$PG_DIR $PG_PORT $PG_HOST $PG_SOCK"
jport=$((${PG_TEST_PORT:-55432} + 1000))
ok "a second PostgreSQL for the journal" pg_up "$CLUSTER_DIR/pg-journal" "$jport" 127.0.0.1 127.0.0.1/32
pg_createdb baton_journal >&2
jdir=$PG_DIR
export BATON_JOURNAL="host=127.0.0.1 port=$jport dbname=baton_journal user=postgres"
read -r PG_DIR PG_PORT PG_HOST PG_SOCK <<<"$save"
journal_sql() { psql -X -A -t -q -h 127.0.0.1 -p "$jport" -U postgres -d baton_journal -c "$1"; }

slow_step node2 migrate 8
f=$(rollout_file 1.1.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/out" 2>&1 &
pid=$!
ok "node2's migration is running" wait_for 60 tool_running node2 migrate
ok "the journal database stops" pg_stop "$jdir"
sleep 2 # the outage itself
ok "and starts again 2 s later" pg_start "$jdir" "$jport" 127.0.0.1
ok "node2's migration was still running when it came back" tool_running node2 migrate
wait "$pid"
code=$?
slow_step node2 migrate 0
out=$(cat "$CLUSTER_DIR/out")
printf '%s\n' "$out" >&2
is "$code" 0 "the rollout ends exit 0: the journal database's restart aborted nothing"
unlike "$out" "rollback|ROLLBACK" "no node was rolled back"
unlike "$out" "NOTICE" "no NOTICE from the journal database"
id=$(printf '%s\n' "$out" | sed -n 's/^baton: rollout \([^:]*\):.*/\1/p')
is "$(journal_sql "SELECT line::json->>'event' FROM baton_journal WHERE rollout_id = '$id' ORDER BY seq DESC LIMIT 1")" \
    summary "the journal ends with the summary"
is "$(journal_sql "SELECT count(*) FROM baton_journal WHERE rollout_id = '$id' AND line::json->>'event' = 'step' AND line::json->>'node' = 'node2' AND line::json->>'step' IN ('migrate', 'start', 'verify', 'commit')")" \
    4 "node2's migrate, start, verify and commit are all on record (held, then stored in order)"
is "$(journal_sql "SELECT bool_and(a <= b) FROM (SELECT (line::json->>'at') AS a, lead(line::json->>'at') OVER (ORDER BY seq) AS b FROM baton_journal WHERE rollout_id = '$id') x WHERE b IS NOT NULL")" \
    t "in the order they happened"
like "$out" "journal database away: holding events" "the coordinator said it held events"
like "$out" "journal database back after [0-9.]+ s: [0-9]+ held events stored" "and stored them once it was back"
out=$("$BATON" list 2>&1)
like "$(printf '%s\n' "$out" | grep "$id")" " done " "baton list: done"
unlike "$out" "NOTICE" "and no NOTICE there either"
is "$(ls "${BATON_STATE_DIR}/journal-spool" 2>/dev/null | wc -l)" 0 "no spool file left once everything was stored"
done_testing
