#!/bin/bash
# hooks.sh: the drain and undrain hooks run by the agent. drain runs before the unit stops and
# undrain once the new version verified (both see the unit active); a drain that fails stops
# that node's upgrade before anything is stopped, and undrain puts it back; a rollback ends
# with undrain on the old version.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
BATON_TEST_HOOKS=1

cluster_sweep
cluster_trap
ok "cluster: 2 nodes on gamesrv 1.0.0, agents with drain and undrain hooks" baton_cluster hook 2 1.0.0 ||
    { done_testing; exit 1; }
hooks() { node_exec "$1" sh -c 'cat /run/baton-hooks.log 2>/dev/null; rm -f /run/baton-hooks.log' | tr '\n' ';'; }
versions() { for n in $CLUSTER_NODES; do node_exec "$n" /opt/gamesrv/bin/gamesrv --version; done | tr '\n' ' '; }

f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 1.1.0)
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 0 "a rollout with hooks: exit 0"
printf '%s\n' "$out" >&2
for n in $CLUSTER_NODES; do
    is "$(hooks "$n")" "drain active 1.0.0;undrain active 1.1.0;" \
        "$n: drained while 1.0.0 still served, undrained once 1.1.0 verified"
done

# A load balancer that refuses to drain node2: nothing is stopped there.
stops_before=$(unit_stops node2)
node_exec node2 touch /run/baton-hook-fail-drain
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 1.1.1)
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
node_exec node2 rm -f /run/baton-hook-fail-drain
is "$code" 3 "node2's drain fails: exit 3"
like "$out" "stop +FAIL .*drain failed: .*the load balancer refused to drain this node" \
    "the stop step says the drain failed, and why"
is "$(unit_stops node2)" "$stops_before" "node2's service was never stopped"
is "$(hooks node2)" "drain active 1.1.0;undrain active 1.1.0;" "undrain put node2 back at once"
is "$(hooks node1)" "drain active 1.1.0;undrain active 1.1.1;" "node1, before it, was upgraded"
is "$(versions)" "1.1.1 1.1.0 " "node1 on 1.1.1, node2 still on 1.1.0"

# A version that fails verify: rolled back, and the old version is undrained.
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 1.2.0+health)
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 3 "a version that fails verify: exit 3"
is "$(hooks node1)" "drain active 1.1.1;undrain active 1.1.1;" \
    "no undrain for the failing 1.2.0: the rollback undrained 1.1.1"
is "$(versions)" "1.1.1 1.1.0 " "node1 is back on 1.1.1"

# Bad hooks in the agent's config are refused before the agent starts.
cfg=$(mktemp)
agent_config node1 | sed 's|drain: /opt/baton-test/hook drain|drain: hook drain|' >"$cfg"
node_push node1 "$cfg" /tmp/bad.yml
rm -f "$cfg"
like "$(node_exec node1 /opt/baton/bin/baton-agent --config /tmp/bad.yml --check-config 2>&1)" \
    "services\[0\].drain: must start with an absolute path" "a hook without an absolute path is an error naming the key"
done_testing
