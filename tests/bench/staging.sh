#!/bin/bash
# staging.sh: a 100 MiB artifact to 10 real agents (tests/lib/fleet.sh, 5 on each of 2 nodes)
# against 10 plain copies of the same file into the same nodes, then one sync (baton's agents
# fsync what they keep). The rollout names version 9.9.9, which the artifact does not report,
# so every pre-flight refuses right after staging and nothing else runs: the stage checks' own
# times (each the whole transfer to that agent, sent at once to all) are what is measured.
#
# Writes $BENCH_OUT/staging.dat: CONTENDER SECONDS, one line per run.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
. tests/lib/fleet.sh
BATON=$(realpath "${BUILD:-build}/baton")
REPS=${REPS:-3}
OUT=$(realpath -m "${BENCH_OUT:-build/bench}")
mkdir -p "$OUT"
exec 3>&1 1>&2

cluster_sweep
cluster_trap
BATON_CLUSTER_AGENTS=0 baton_cluster stg 2 1.0.0 || exit 1
fleet_up 10 || exit 1
art=$(padded_artifact 1.1.0 $((100 * 1024 * 1024)) "$CLUSTER_DIR/artifact-100m")
f=$(fleet_stage_file "$art" "$ROLLOUT_DIR/stage.yml")

: >"$OUT/staging.dat"
for rep in $(seq "$REPS"); do
    # Nothing held from the last run: the whole artifact goes again.
    while read -r n i; do node_exec "$n" sh -c "rm -rf /var/lib/baton-fleet/$i/staging /var/lib/baton-fleet/$i/cp-test"; done < <(fleet_agents)
    "$BATON" rollout --json "$f" >"$CLUSTER_DIR/stage.json" 2>&1
    ok=$(jq -r 'select(.event == "check" and .phase == "stage" and .ok == true) | .node' "$CLUSTER_DIR/stage.json" | wc -l)
    [ "$ok" = 10 ] || { echo "staging: $ok of 10 staged" >&2; tail -5 "$CLUSTER_DIR/stage.json" >&2; exit 1; }
    ms=$(jq -r 'select(.event == "check" and .phase == "stage") | .ms' "$CLUSTER_DIR/stage.json" | sort -n | tail -1)
    printf 'baton %.3f\n' "$(echo "$ms / 1000" | bc -l)" | tee -a "$OUT/staging.dat" >&2

    t0=$(date +%s.%N)
    while read -r n i; do cp "$art" "/proc/$(node_pid "$n")/root/var/lib/baton-fleet/$i/cp-test"; done < <(fleet_agents)
    sync
    t1=$(date +%s.%N)
    printf 'cp %.3f\n' "$(echo "$t1 - $t0" | bc)" | tee -a "$OUT/staging.dat" >&2
done
echo "staging: done" >&2
