#!/bin/bash
# staging.sh: a 100 MiB artifact to 10 real agents (tests/lib/fleet.sh, 5 on each of 2 nodes),
# pushed by the coordinator and pulled by the agents from a mirror (Debian's nginx on the host
# address, tests/lib/nginx.sh), against 10 plain copies of the same file into the same nodes,
# then one sync (baton's agents fsync what they keep). The rollout names version 9.9.9, which the artifact does not report,
# so every pre-flight refuses right after staging and nothing else runs: the stage checks' own
# times (each the whole transfer to that agent, sent at once to all) are what is measured.
#
# Writes $BENCH_OUT/staging.dat: CONTENDER SECONDS, one line per run (baton, baton-pull, cp);
# and $BENCH_OUT/staging-coordinator.dat: CONTENDER CPU_SECONDS PEAK_RSS_KIB HOST_BYTES
# MIRROR_BYTES: the coordinator's CPU and peak RSS (GNU time), the bytes the host sent to the
# nodes (the host ends of their links: the coordinator, the mirror and PostgreSQL) and of
# those the mirror's (nginx's $bytes_sent).
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
trap 'mirror_stop; cluster_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
BATON_CLUSTER_AGENTS=0 baton_cluster stg 2 1.0.0 || exit 1
fleet_up 10 || exit 1
art=$(padded_artifact 1.1.0 $((100 * 1024 * 1024)) "$CLUSTER_DIR/artifact-100m")
f=$(fleet_stage_file "$art" "$ROLLOUT_DIR/stage.yml")
mirror_start 0 || exit 1
cp "$art" "$MIRROR_DIR/artifact-100m"
fp=$(fleet_stage_file "$(mirror_url artifact-100m)" "$ROLLOUT_DIR/pull.yml")
sed -i "s|^artifact: .*|&\nsha256: $(sha256sum "$art" | cut -d' ' -f1)|" "$fp"

# stage CONTENDER FILE: one staging to every agent, nothing held before; its time (the slowest
# stage check) to staging.dat, the coordinator's CPU, peak RSS and bytes written to
# staging-coordinator.dat.
stage() {
    local name=$1 file=$2 ok ms tx0 tx1 mirror
    while read -r n i; do node_exec "$n" sh -c "rm -rf /var/lib/baton-fleet/$i/staging /var/lib/baton-fleet/$i/cp-test"; done < <(fleet_agents)
    : >"$(_mirror_dir)/access.log"
    tx0=$(host_tx)
    /usr/bin/time -f '%U %S %M' -o "$CLUSTER_DIR/time.out" "$BATON" rollout --json "$file" \
        >"$CLUSTER_DIR/stage.json" 2>&1
    tx1=$(host_tx)
    ok=$(jq -r 'select(.event == "check" and .phase == "stage" and .ok == true) | .node' "$CLUSTER_DIR/stage.json" | wc -l)
    [ "$ok" = 10 ] || { echo "staging: $ok of 10 staged" >&2; tail -5 "$CLUSTER_DIR/stage.json" >&2; exit 1; }
    ms=$(jq -r 'select(.event == "check" and .phase == "stage") | .ms' "$CLUSTER_DIR/stage.json" | sort -n | tail -1)
    printf '%s %.3f\n' "$name" "$(echo "$ms / 1000" | bc -l)" | tee -a "$OUT/staging.dat" >&2
    mirror=$(mirror_log | awk '{s += $3} END {print s + 0}')
    # GNU time's last line (a first one says the exit status: 2, every pre-flight refused).
    read -r u s rss < <(tail -1 "$CLUSTER_DIR/time.out")
    printf '%s %.2f %s %s %s\n' "$name" "$(echo "$u + $s" | bc -l)" "$rss" $((tx1 - tx0)) "$mirror" |
        tee -a "$OUT/staging-coordinator.dat" >&2
}
# Bytes the host sent into the nodes so far: the host ends of their links.
host_tx() {
    local n t=0
    for n in $CLUSTER_NODES; do t=$((t + $(cat "/sys/class/net/$(_veth_name "$n")/statistics/tx_bytes"))); done
    echo "$t"
}

: >"$OUT/staging.dat"
: >"$OUT/staging-coordinator.dat"
for rep in $(seq "$REPS"); do
    stage baton "$f"
    stage baton-pull "$fp"

    t0=$(date +%s.%N)
    while read -r n i; do cp "$art" "/proc/$(node_pid "$n")/root/var/lib/baton-fleet/$i/cp-test"; done < <(fleet_agents)
    sync
    t1=$(date +%s.%N)
    printf 'cp %.3f\n' "$(echo "$t1 - $t0" | bc)" | tee -a "$OUT/staging.dat" >&2
done
echo "staging: done" >&2
