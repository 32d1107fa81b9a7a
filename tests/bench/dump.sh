#!/bin/bash
# dump.sh: the agent's dump step against bare `pg_dump -Fc` of the same ~1 GiB database
# (pgbench -i -s 70 in the service's database), in the node, alternating, REPS each. The dump
# step streams pg_dump's output through SHA-256 into the backup folder, fsyncs it, and proves it
# readable with pg_restore --list; bare pg_dump writes the file and nothing more.
#
# Writes $BENCH_OUT/dump.dat: CONTENDER SECONDS BYTES, one line per run.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=$(realpath "${BUILD:-build}/baton")
REPS=${REPS:-3}
SCALE=${BENCH_PGBENCH_SCALE:-70}
OUT=$(realpath -m "${BENCH_OUT:-build/bench}")
mkdir -p "$OUT"
exec 3>&1 1>&2

cluster_sweep
cluster_trap
baton_cluster dmp 1 1.1.0 || exit 1
echo "dump: pgbench -i -s $SCALE (about $((SCALE * 15)) MiB) ..." >&2
pgbench -q -i -s "$SCALE" -h "$PG_SOCK" -p "$PG_PORT" -U postgres game >/dev/null 2>&1 || exit 1
size=$(pg_sql game "SELECT pg_database_size('game')")
echo "dump: database is $((size >> 20)) MiB" >&2
node_exec node1 mkdir -p /var/backups/bare
db=$(pg_conninfo game)

: >"$OUT/dump.dat"
target=1.1.1
for rep in $(seq "$REPS"); do
    t0=$(date +%s.%N)
    node_exec node1 /usr/lib/postgresql/15/bin/pg_dump -Fc -d "$db" -f /var/backups/bare/bare.dump || exit 1
    t1=$(date +%s.%N)
    bytes=$(node_exec node1 stat -c %s /var/backups/bare/bare.dump)
    node_exec node1 rm -f /var/backups/bare/bare.dump
    printf 'pg_dump %.3f %s\n' "$(echo "$t1 - $t0" | bc)" "$bytes" | tee -a "$OUT/dump.dat" >&2

    f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=0s rollout_file "$target")
    "$BATON" rollout --json "$f" >"$CLUSTER_DIR/dump.json" 2>&1 || { tail -5 "$CLUSTER_DIR/dump.json"; exit 1; }
    ms=$(jq -r 'select(.event == "step" and .step == "dump" and .ok == true) | .ms' "$CLUSTER_DIR/dump.json" | tail -1)
    bytes=$(node_exec node1 sh -c 'ls -t /var/backups/baton/gamesrv/*.dump | head -1 | xargs stat -c %s')
    printf 'baton %.3f %s\n' "$(echo "$ms / 1000" | bc -l)" "$bytes" | tee -a "$OUT/dump.dat" >&2
    target=$([ "$target" = 1.1.1 ] && echo 1.1.0 || echo 1.1.1)
done
echo "dump: done" >&2
