#!/bin/bash
# frontline.sh: the agent's main loop answers at once while an answer that takes a while is
# being made (the hardening issue: Hello forked a binary's version command on the main loop,
# for up to 10 s, and a partial artifact was hashed there). Here the version command is held
# 5 s (the first Hello after a restart runs it): meanwhile a step request is answered in well
# under a second, and the Hello still comes, with the version.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
BATON_TEST_KNOBS=1

cluster_sweep
cluster_trap
ok "cluster: 1 node on gamesrv 1.0.0" baton_cluster front 1 1.0.0 || { done_testing; exit 1; }
poke() {
    ZPOKE_SERVER_KEY=$(agent_pub node1) ZPOKE_KEY_FILE=$(keys_dir)/coordinator.key \
        "${BUILD:-build}/tests/tools/zpoke" "tcp://$(node_ip node1):$BATON_AGENT_PORT" "$@"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The version command through the slow knob, and a fresh agent (its version cache empty).
cfg=$(mktemp)
agent_config node1 | sed 's|^    health:|    version_command: "/opt/baton-test/slow version {binary} --version"\n    health:|' >"$cfg"
node_push node1 "$cfg" /etc/baton/agent.yml 0600
rm -f "$cfg"
slow_step node1 version 5
node_exec node1 systemctl restart baton-agent
agent_up() { [ "$(node_exec node1 systemctl is-active baton-agent)" = active ]; }
ok "node1's agent restarted with a version command that takes 5 s" wait_for 20 agent_up

t0=$(now_ms)
ZPOKE_TIMEOUT=20 poke hello >"$CLUSTER_DIR/hello.out" 2>&1 &
hello=$!
ok "the Hello's version command is running" wait_for 10 tool_running node1 version
t1=$(now_ms)
out=$(poke step commit r20261202T000000-0f0f0f service=gamesrv 2>&1)
t2=$(now_ms)
like "$out" "^FAILED " "meanwhile a step request is answered (refused: no pre-flight)"
ok "within a second ($((t2 - t1)) ms), not after the version command" [ $((t2 - t1)) -lt 1000 ]
wait "$hello"
like "$(cat "$CLUSTER_DIR/hello.out")" "^OK" "the Hello is answered too, once the version is known"
ok "after the version command's 5 s ($(($(now_ms) - t0)) ms)" [ $(($(now_ms) - t0)) -ge 4500 ]
slow_step node1 version 0
done_testing
