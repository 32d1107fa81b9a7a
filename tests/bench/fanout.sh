#!/bin/bash
# fanout.sh: one coordinator against 10, 100 and 1,000 real agents (tests/lib/fleet.sh: 250
# baton-agent processes on each of 4 test nodes, each managing its own stand-in unit).
# Measures `baton plan`, staging (`baton plan` with rehearse off stages nothing, so staging is
# timed by a rollout whose every pre-flight is refused: see below) and `baton status`: wall time
# and the coordinator's peak RSS (GNU time), and the agents' idle RSS.
#
# Prints "fanout AGENTS plan|status WALL_S RSS_KIB USER_S SYS_S" lines and "agent_rss KIB" lines for
# bench/report.sh; BENCH_FANOUT_MAX (default 1000) caps the fleet, BENCH_FANOUT_SIZES (default
# "10 100 1000") picks the plan and status sizes (empty: staging only), BENCH_FANOUT_STAGE_MIB
# (default 3) the artifact staged to every agent, pushed and then pulled; each staging line ends
# with host_mb=, what the host sent into the nodes meanwhile (coordinator, mirror, PostgreSQL),
# and stage_ms=, the slowest agent's stage check.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
. tests/lib/fleet.sh
BATON=$(realpath "${BUILD:-build}/baton")
MAX=${BENCH_FANOUT_MAX:-1000}
OUT=${BENCH_OUT:-build/bench}
mkdir -p "$OUT"

cluster_sweep
trap 'mirror_stop; cluster_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
BATON_CLUSTER_AGENTS=0 baton_cluster fan 4 1.0.0 >&2 || { echo "fanout: no cluster" >&2; exit 1; }
t0=$(date +%s.%N)
fleet_up "$MAX" >&2 || { echo "fanout: fleet_up failed" >&2; exit 1; }
# Every agent listening: each answers a status.
up=$(date +%s.%N)
echo "# fanout: $MAX agents started in $(echo "$up - $t0" | bc) s" >&2

measure() { # AGENTS WHAT FILE: one timed run, "fanout AGENTS WHAT WALL RSS OK"
    local n=$1 what=$2 f=$3 t rc
    t=$(mktemp)
    /usr/bin/time -f '%e %M %U %S' -o "$t" "$BATON" "$what" "$f" >"$OUT/fanout-$n-$what.out" 2>&1
    rc=$?
    echo "fanout $n $what $(cat "$t") rc=$rc"
    rm -f "$t"
}

for n in ${BENCH_FANOUT_SIZES-10 100 1000}; do
    [ "$n" -le "$MAX" ] || continue
    head -n "$n" "$CLUSTER_DIR/fleet.list" >"$CLUSTER_DIR/fleet.sub"
    f=$ROLLOUT_DIR/fleet-$n.yml
    cp "$CLUSTER_DIR/fleet.list" "$CLUSTER_DIR/fleet.all"
    cp "$CLUSTER_DIR/fleet.sub" "$CLUSTER_DIR/fleet.list"
    fleet_rollout_file 1.1.0 "$f" >/dev/null
    cp "$CLUSTER_DIR/fleet.all" "$CLUSTER_DIR/fleet.list"
    measure "$n" status "$f" # warms every agent's connection set-up once
    for k in 1 2 3; do measure "$n" plan "$f"; done
    measure "$n" status "$f"
done

# Staging to the whole fleet: a 3 MiB artifact (3 chunks; BENCH_FANOUT_STAGE_MIB) to every
# agent, verified on arrival, then refused at pre-flight (version 9.9.9, which the artifact does
# not report): nothing else runs. Wall time and the coordinator's peak RSS of the whole command.
mib=${BENCH_FANOUT_STAGE_MIB:-3}
art=$(padded_artifact 1.1.0 $(((mib - 1) * 1024 * 1024 + 4321)) "$CLUSTER_DIR/artifact-${mib}m")
# The slowest agent's stage check (each times the whole transfer to that agent, all at once).
slowest() { echo "stage_ms=$(jq -r 'select(.event == "check" and .phase == "stage") | .ms' "$1" | sort -n | tail -1)"; }
# Bytes the host sent into the nodes so far: the host ends of their links.
host_tx() {
    local n t=0
    for n in $CLUSTER_NODES; do t=$((t + $(cat "/sys/class/net/$(_veth_name "$n")/statistics/tx_bytes"))); done
    echo "$t"
}
f=$(fleet_stage_file "$art" "$ROLLOUT_DIR/fleet-stage.yml")
# Two cores for 1,000 agents: an agent busy with its neighbours may take more than 10 s to say
# Hello, which would refuse the whole staging before it starts.
sed -i 's/^  connect: .*/  connect: 30s/' "$f"
t=$(mktemp)
tx0=$(host_tx)
/usr/bin/time -f '%e %M %U %S' -o "$t" "$BATON" rollout --json "$f" >"$OUT/fanout-stage.json" 2>&1
echo "fanout $MAX stage $(tail -1 "$t") staged=$(jq -r 'select(.event == "check" and .phase == "stage" and .ok) | .node' "$OUT/fanout-stage.json" | wc -l) mib=$mib host_mb=$((($(host_tx) - tx0) / 1000000)) $(slowest "$OUT/fanout-stage.json")"
# The same artifact pulled by every agent from a mirror (nginx on the host address): nothing
# held from the push (staging folders emptied), the coordinator sending each agent only the URL.
for node in $CLUSTER_NODES; do node_exec "$node" sh -c 'rm -rf /var/lib/baton-fleet/*/staging'; done
mirror_start 0 >&2 || { echo "fanout: no mirror" >&2; exit 1; }
cp "$art" "$MIRROR_DIR/artifact-${mib}m"
fp=$(fleet_stage_file "$(mirror_url "artifact-${mib}m")" "$ROLLOUT_DIR/fleet-pull.yml")
sed -i -e "s|^artifact: .*|&\nsha256: $(sha256sum "$art" | cut -d' ' -f1)|" -e 's/^  connect: .*/  connect: 30s/' "$fp"
tx0=$(host_tx)
/usr/bin/time -f '%e %M %U %S' -o "$t" "$BATON" rollout --json "$fp" >"$OUT/fanout-pull.json" 2>&1
echo "fanout $MAX pull $(tail -1 "$t") staged=$(jq -r 'select(.event == "check" and .phase == "stage" and .ok) | .node' "$OUT/fanout-pull.json" | wc -l) mib=$mib host_mb=$((($(host_tx) - tx0) / 1000000)) $(slowest "$OUT/fanout-pull.json")"
mirror_stop
rm -f "$t"

# The agents' own footprint, idle: RSS of every fleet agent (ps), and CPU over a minute.
for node in $CLUSTER_NODES; do
    node_exec "$node" sh -c 'for p in $(pgrep -f "^/opt/baton/bin/baton-agent --config /etc/baton/fleet/"); do
        awk "/^VmRSS/ {print \$2}" /proc/$p/status; done'
done | sort -n | awk '{a[NR]=$1} END {print "agent_rss_kib median " a[int((NR+1)/2)] " max " a[NR] " n " NR}'
