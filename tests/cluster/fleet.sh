#!/bin/bash
# fleet.sh: one coordinator and 60 real agents (tests/lib/fleet.sh: 20 baton-agent processes on
# each of 3 nodes, each managing its own stand-in unit). Everything at fleet scale is asked of
# every node at once: plan, status (with one agent down, which only that row shows), and
# staging of a 3-chunk artifact to all 60, verified on arrival, before a pre-flight refuses.
# (The times and memory at 10, 100 and 1,000 agents are in `make bench`, BENCHMARKS.md.)
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
. tests/lib/fleet.sh
BATON=${BUILD:-build}/baton
N=60

cluster_sweep
cluster_trap
export BATON_CLUSTER_AGENTS=0 # the fleet's agents only
ok "cluster: 3 nodes on gamesrv 1.0.0" baton_cluster fleet 3 1.0.0 || { done_testing; exit 1; }
ok "$N agents, each with its own unit, port, state folder and key" fleet_up "$N"
f=$(fleet_rollout_file 1.1.0 "$ROLLOUT_DIR/fleet.yml")
listening() { [ "$("$BATON" status --json "$f" 2>/dev/null | grep -c '"version":"1.0.0"')" = "$N" ]; }
ok "every agent answers" wait_for 60 listening

out=$("$BATON" plan "$f" 2>&1)
is "$?" 0 "baton plan over $N agents: exit 0"
is "$(printf '%s\n' "$out" | grep -cE '^ *node[123]-a[0-9]+ +1\.0\.0 +-> 1\.1\.0 +active')" "$N" \
    "a plan line per agent: 1.0.0 -> 1.1.0, unit active"

json=$("$BATON" status --json "$f" 2>&1)
is "$?" 0 "baton status over $N agents: exit 0"
is "$(printf '%s\n' "$json" | grep -c '"event":"status"')" "$N" "one status row per agent"
is "$(printf '%s\n' "$json" | grep '"event":"status"' | head -1 | grep -o '"node":"[^"]*"')" '"node":"node1-a1"' \
    "rows in file order, although asked all at once"

# One agent down: its row says so, every other row is there, exit 2.
node_exec node2 systemctl stop baton-agent@2.service
json=$("$BATON" status --json "$f" 2>&1)
is "$?" 2 "status with one agent down: exit 2"
is "$(printf '%s\n' "$json" | grep '"event":"status"' | grep -c '"version":"1.0.0"')" $((N - 1)) \
    "the other $((N - 1)) agents answered"
like "$(printf '%s\n' "$json" | grep '"node":"node2-a2"')" '"version":"\?".*did not answer' \
    "node2-a2's row: did not answer"
node_exec node2 systemctl start baton-agent@2.service
ok "node2-a2 is back" wait_for 30 listening

# Staging to all 60: a 3-chunk artifact, each copy verified on arrival; version 9.9.9 (which
# the artifact does not report) makes every pre-flight refuse afterwards: nothing else runs.
art=$(padded_artifact 1.1.0 $((2 * 1024 * 1024 + 4321)) "$CLUSTER_DIR/artifact-3m")
sha=$(sha256sum "$art" | cut -d' ' -f1)
out=$("$BATON" rollout --json "$(fleet_stage_file "$art" "$ROLLOUT_DIR/stage.yml")" 2>&1)
is "$?" 2 "the rollout is refused at pre-flight (the artifact is 1.1.0, not 9.9.9): exit 2"
is "$(printf '%s\n' "$out" | jq -r 'select(.event == "check" and .phase == "stage" and .ok) | .node' | wc -l)" "$N" \
    "all $N agents staged it"
like "$(printf '%s\n' "$out" | jq -r 'select(.event == "check" and .phase == "preflight") | .message' | sort -u)" \
    "reports version 1.1.0, not 9.9.9" "each pre-flight refused on the version"
held=0
while read -r n i; do
    [ "$(node_exec "$n" sha256sum "/var/lib/baton-fleet/$i/staging/gamesrv/$sha" 2>/dev/null | cut -d' ' -f1)" = "$sha" ] &&
        held=$((held + 1))
done < <(fleet_agents)
is "$held" "$N" "every agent holds the artifact byte for byte under its digest"
is "$(for n in $CLUSTER_NODES; do node_exec "$n" sh -c 'systemctl list-units --state=active "standin@*" --no-legend | wc -l'; done | paste -sd+ | bc)" \
    "$N" "every stand-in unit is still active: nothing was stopped"
done_testing
