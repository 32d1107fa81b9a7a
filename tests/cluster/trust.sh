#!/bin/bash
# trust.sh: CURVE between coordinator and agents (every cluster test runs with it). A
# coordinator whose key is not listed gets nothing executed and its refusal is in the agent's
# journal; an impostor agent (the wrong key at a node's endpoint) is refused before anything is
# sent to it; a key removed from the list and reloaded is refused on its next connection while a
# reload keeps a rollout in flight going; insecure on one side only fails with a clear message.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

cluster_sweep
cluster_trap
ok "cluster: 2 nodes, agents with CURVE keys" baton_cluster trust 2 1.0.0 || { done_testing; exit 1; }
world() {
    for n in $CLUSTER_NODES; do
        node_exec "$n" sh -c 'systemctl is-active gamesrv; cat /var/lib/baton/gamesrv.json 2>/dev/null; ls /var/lib/baton/staging 2>/dev/null'
    done | sha256sum
    db_snapshot
}

# baton keygen: a pair, never overwritten.
k=$CLUSTER_DIR/keys-test
mkdir -p "$k"
like "$("$BATON" keygen "$k/x")" "x.key \(secret, mode 0600\) and .*x.pub \(public key .{40}, fingerprint [0-9a-f]{16}\)" \
    "baton keygen writes a pair and names its fingerprint"
like "$("$BATON" keygen "$k/y")" "    public_key: \"[^\"]{40}\"" "and prints the line to paste, quoted"
is "$(stat -c %a "$k/x.key")" 600 "the secret key is mode 0600"
out=$("$BATON" keygen "$k/x" 2>&1)
is "$?" 2 "a second keygen with the same name is refused"
like "$out" "exists \(a key is never overwritten\)" "and says why"

# status shows the key each agent proved.
f=$(rollout_file 1.1.0)
status=$("$BATON" status "$f")
like "$status" "^ +agent [0-9][^,]*, key [0-9a-f]{16}, database" \
    "baton status shows each agent's version and key fingerprint, under its node"
is "$(printf '%s\n' "$status" | grep -oE 'key [0-9a-f]{16},' | sort -u | wc -l)" 2 "one per agent"

# A coordinator whose key no agent lists: nothing runs anywhere.
before=$(world)
"$BATON" keygen "$CLUSTER_DIR/keys/intruder" >/dev/null
fi=$CLUSTER_DIR/intruder.yml
sed "s|$(keys_dir)/coordinator.key|$(keys_dir)/intruder.key|" "$f" >"$fi"
out=$("$BATON" rollout "$fi" 2>&1)
is "$?" 2 "an unlisted coordinator key: refused (exit 2)"
like "$out" "hello +node1 +FAIL .*did not answer .*with CURVE: is this coordinator's public key in the agent's authorized keys" \
    "the coordinator says what to check"
is "$(world)" "$before" "nothing changed: units, agent state, staging, database"
journal=$(node_exec node1 journalctl -u baton-agent -o cat --no-pager)
like "$journal" "refused a connection from $CLUSTER_HOST_IP: CURVE key .{40} \(fingerprint [0-9a-f]{16}\) is not in /etc/baton/coordinators" \
    "the agent's journal has the refusal with the key, its fingerprint and the peer's address"
ok "naming the intruder's key" grep -qF "CURVE key $(cat "$(keys_dir)/intruder.pub")" <<<"$journal"

# An impostor: node1's endpoint answered by a key other than the one the file names.
fm=$CLUSTER_DIR/impostor.yml
awk -v wrong="$(cat "$(keys_dir)/node2.pub")" '
    /name: node1/ { n1 = 1 } /name: node2/ { n1 = 0 }
    n1 && /public_key:/ { print "    public_key: \"" wrong "\""; next } { print }' "$f" >"$fm"
out=$("$BATON" rollout "$fm" 2>&1)
is "$?" 2 "an agent that cannot prove the key the file names: refused (exit 2)"
like "$out" "hello +node1 +FAIL" "node1 is the one refused"
is "$(world)" "$before" "and nothing was sent to run anywhere"

# A key removed from node1's list and reloaded: refused on the next connection. Reload, not
# restart: the agent keeps its PID.
pid=$(agent_pid node1)
# The agent's own "reload:" line says the reload is done: waited for, not slept on.
reloads() { node_exec node1 journalctl -u baton-agent -o cat --no-pager | grep -c '^reload: '; }
reloaded_since() { [ "$(reloads)" -gt "$1" ]; }
n=$(reloads)
node_exec node1 sh -c 'echo "# nobody" > /etc/baton/coordinators'
node_exec node1 systemctl reload baton-agent
ok "the agent says it reloaded" wait_for 10 reloaded_since "$n"
out=$("$BATON" status "$f" 2>&1)
is "$?" 2 "after the reload, node1 refuses the removed key"
like "$out" "node2 .* 1.0.0 +active" "node2 still answers"
is "$(agent_pid node1)" "$pid" "the agent was reloaded, not restarted"
like "$(node_exec node1 journalctl -u baton-agent -o cat --no-pager)" "reload: 0 coordinators authorized" \
    "its journal says what it read"
n=$(reloads)
node_exec node1 sh -c "cat > /etc/baton/coordinators" <"$(keys_dir)/coordinator.pub"
node_exec node1 systemctl reload baton-agent
ok "the agent says it reloaded again" wait_for 10 reloaded_since "$n"
is "$("$BATON" status "$f" >/dev/null 2>&1; echo $?)" 0 "the key listed again and reloaded: node1 answers"

# A reload during a rollout does not drop it.
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=3s rollout_file 1.1.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/reload.out" 2>&1 &
first=$!
ok "node1 is verifying" wait_for 60 in_progress_is node1 verify
node_exec node1 systemctl reload baton-agent
node_exec node2 systemctl reload baton-agent
wait "$first"
is "$?" 0 "the rollout goes on through the reloads (exit 0)"
for n in $CLUSTER_NODES; do
    is "$(node_exec "$n" /opt/gamesrv/bin/gamesrv --version)" 1.1.0 "$n runs 1.1.0"
done

# insecure on one side only.
f=$(rollout_file 1.1.1)
fi=$CLUSTER_DIR/insecure.yml
{ grep -v -e '^curve:' -e '^  secret_key:' -e 'public_key:' "$f"; echo "insecure: true"; } >"$fi"
out=$("$BATON" rollout "$fi" 2>&1)
is "$?" 2 "a plain-text coordinator against CURVE agents: refused (exit 2)"
like "$out" "warning: .*insecure: true: plain text" "with a warning that it is plain text"
like "$out" "hello +node1 +FAIL .*did not answer" "and the agents do not answer it"
cfg=$(mktemp)
BATON_TEST_INSECURE=1 agent_config node1 >"$cfg"
node_push node1 "$cfg" /etc/baton/agent.yml 0600
rm -f "$cfg"
node_exec node1 systemctl restart baton-agent
like "$(node_exec node1 journalctl -u baton-agent -o cat --no-pager | tail -5)" "INSECURE: plain text, no authentication" \
    "an insecure agent warns when it starts"
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "a CURVE coordinator against an insecure agent: refused (exit 2)"
like "$out" "hello +node1 +FAIL .*does the agent not run insecure" "saying what to check"
is "$(node_exec node1 /opt/gamesrv/bin/gamesrv --version)" 1.1.0 "node1 was not touched"
done_testing
