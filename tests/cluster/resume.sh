#!/bin/bash
# resume.sh: the coordinator SIGKILLed right after each step of a node (a loop over every step),
# then `baton resume ROLLOUT_ID`: the rollout finishes, and the shared database shows exactly one dump
# and one migration run for that rollout (from the agents' own journals and dump files). Also:
# one coordinator per rollout, and a resume refused when the artifact changed.
# With BATON_TEST_PG_JOURNAL=1 (resume-pg.sh) the journal lives in PostgreSQL and every resume
# runs as a second controller, with a state folder of its own: it finds the rollout in the
# shared database, as a second host would.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

cluster_sweep
cluster_trap
ok "cluster: 3 nodes on gamesrv 1.0.0 sharing one database" baton_cluster res 3 1.0.0 ||
    { done_testing; exit 1; }
other_host=$BATON_STATE_DIR # the controller that resumes: the same one, with files
if [ "${BATON_TEST_PG_JOURNAL:-0}" = 1 ]; then
    pg_createdb baton_journal
    export BATON_JOURNAL="$(pg_conninfo baton_journal)"
    other_host=$CLUSTER_DIR/host-b
fi
resume() { BATON_STATE_DIR=$other_host "$BATON" resume "$@"; }
versions() { for n in $CLUSTER_NODES; do node_exec "$n" /opt/gamesrv/bin/gamesrv --version; done | tr '\n' ' '; }
# How often NODE's agent ran STEP's tool for ROLLOUT: its own progress lines in its journal.
ran() { # NODE ROLLOUT STEP PATTERN
    node_exec "$1" journalctl -u baton-agent BATON_ROLLOUT_ID="$2" BATON_STEP="$3" -o cat --no-pager |
        grep -c "$4"
}
dumps() { node_exec "$1" sh -c "ls /var/backups/baton/gamesrv/ | grep -c '^gamesrv+$2.dump\$'"; }
players_before=$(players)

# 1.0.0 -> 1.1.0 (applies 0002), then back and forth between 1.1.1 and 1.1.0: a new binary each time.
target=1.1.0
for step in stop dump swap migrate start verify commit; do
    f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file "$target")
    BATON_FAILPOINT="kill-after:node2:$step" "$BATON" rollout "$f" >"$CLUSTER_DIR/killed.out" 2>&1
    code=$?
    id=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$CLUSTER_DIR/killed.out")
    is "$code" 137 "killed right after node2's $step (SIGKILL)"
    out=$(resume "$id" 2>&1)
    code=$?
    printf '%s\n' "$out" >&2
    is "$code" 0 "baton resume $id finishes (killed after node2's $step)"
    like "$out" "baton: resuming rollout $id" "it says it resumes $id"
    like "$out" "node1 +ok .*upgraded by this rollout \(committed\)" "node1 is known done from its record"
    is "$(versions)" "$target $target $target " "every node runs $target"
    # One shared database: node1 dumped and migrated it for the rollout, node2 and node3 (the
    # resumed one too) checked its ids and skipped both.
    is "$(dumps node1 "$id") $(ran node1 "$id" dump 'pg_dump to') $(ran node1 "$id" migrate '^migrate up (')" \
        "1 1 1" "node1: exactly one dump and one migration run for $id"
    for n in node2 node3; do
        is "$(dumps "$n" "$id") $(ran "$n" "$id" dump 'pg_dump to') $(ran "$n" "$id" migrate '^migrate up (')" \
            "0 0 0" "$n: no second dump or migration of the shared database for $id"
    done
    target=$([ "$target" = 1.1.1 ] && echo 1.1.0 || echo 1.1.1)
done
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql" "the schema holds 0002, once"
is "$(players)" "$players_before" "no player row was lost"

# One coordinator per rollout: a resume while the rollout runs is refused.
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=3s rollout_file 1.2.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/running.out" 2>&1 &
first=$!
id_seen() { grep -q '^baton: rollout ' "$CLUSTER_DIR/running.out"; }
ok "a rollout is running" wait_for 10 id_seen
id=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$CLUSTER_DIR/running.out")
out=$(resume "$id" 2>&1)
is "$?" 2 "baton resume of a rollout another coordinator drives is refused"
like "$out" "driven by another coordinator" "and says why"
wait "$first"
is "$?" 0 "the running rollout is not disturbed"

# The artifact must be the one the rollout began with.
cp "$(gamesrv_bin 2.0.0)" "$CLUSTER_DIR/gamesrv-next"
f=$CLUSTER_DIR/rollouts/next.yml
rollout_file 2.0.0 "$f" >/dev/null
sed -i "s|^artifact: .*|artifact: $CLUSTER_DIR/gamesrv-next|" "$f"
BATON_FAILPOINT="kill-after:node1:commit" "$BATON" rollout "$f" >"$CLUSTER_DIR/next.out" 2>&1
id=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$CLUSTER_DIR/next.out")
cp "$(gamesrv_bin 1.2.0)" "$CLUSTER_DIR/gamesrv-next"
out=$(resume "$id" 2>&1)
is "$?" 2 "a resume whose artifact changed is refused"
like "$out" "the artifact changed since the rollout began" "and says why"
like "$(resume r20000101T000000-000000 2>&1)" "no journal of rollout r20000101T000000-000000" \
    "resuming an unknown rollout says there is none"
if [ "${BATON_TEST_PG_JOURNAL:-0}" = 1 ]; then
    is "$(ls "$BATON_STATE_DIR/rollouts" "$other_host/rollouts" 2>/dev/null | grep -c jsonl)" 0 \
        "no journal file on either controller: the journals are in the database"
    is "$(pg_sql baton_journal "SELECT count(DISTINCT rollout_id) FROM baton_journal")" 9 \
        "the database holds the nine rollouts"
    like "$(BATON_STATE_DIR=$other_host "$BATON" list)" "$id +died .*gamesrv +2.0.0" \
        "baton list on the second controller shows the first one's rollouts"
fi
done_testing
