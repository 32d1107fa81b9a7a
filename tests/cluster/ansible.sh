#!/bin/bash
# ansible.sh: the baton.fleet collection driven by real ansible-playbook over real SSH into the
# test nodes (each runs its own sshd as a unit): the agent role installs, configures and starts
# the agents, is idempotent, and refuses bad variables and broken configs before changing
# anything; the rollout playbook upgrades, reports changed=false when there is nothing to do,
# fails with baton's own message (every node back on the old version), and changes nothing in
# check mode (baton plan).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
. tests/lib/ssh.sh
BUILD=$(realpath "${BUILD:-build}")
BATON=$BUILD/baton

cluster_sweep
cluster_trap
BATON_CLUSTER_AGENTS=0
ok "cluster: 3 nodes on gamesrv 1.0.0, no agent yet" baton_cluster ans 3 1.0.0 || { done_testing; exit 1; }
ssh_setup >&2
for n in $CLUSTER_NODES; do
    ok "$n runs its own sshd" node_sshd "$n"
done

# The collection as Ansible finds it: ANSIBLE_COLLECTIONS_PATH/ansible_collections/baton/fleet.
T=$CLUSTER_DIR/ansible
mkdir -p "$T/ansible_collections/baton" "$T/group_vars"
ln -sfn "$(realpath ansible)" "$T/ansible_collections/baton/fleet"
ssh_inventory "$T/inventory"
# CURVE keys as an operator makes them: one pair per agent, one for the coordinator.
for n in $CLUSTER_NODES coordinator; do key_pair "$n"; done
cat >"$T/group_vars/nodes.yml" <<VARS
baton_agent_secret_key_src: "$(keys_dir)/{{ inventory_hostname }}.key"
baton_agent_public_key: "{{ lookup('file', '$(keys_dir)/' + inventory_hostname + '.pub') }}"
baton_agent_authorized_keys: [!unsafe "$(cat "$(keys_dir)/coordinator.pub")"]
baton_coordinator_key: "$(keys_dir)/coordinator.key"
baton_agent_binary_src: $BUILD/baton-agent
baton_agent_binary_path: /opt/baton/bin/baton-agent
baton_agent_endpoint: "tcp://{{ ansible_host }}:$BATON_AGENT_PORT"
baton_agent_services:
  - name: gamesrv
    unit: gamesrv.service
    binary: /opt/gamesrv/bin/gamesrv
    database: "$(pg_conninfo game)"
    backup_dir: /var/backups/baton/gamesrv
    keep_backups: 2
    min_healthy_time: 1s
    health:
      http: http://127.0.0.1:$GAMESRV_PORT/healthcheck
    timeouts:
      stop: 20s
      start: 20s
      verify: 4s
VARS
ap() {
    ANSIBLE_COLLECTIONS_PATH=$T ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 \
        ANSIBLE_HOST_KEY_CHECKING=False ansible-playbook -i "$T/inventory" -e baton_hosts=nodes "$@"
}
recap() { sed -n '/PLAY RECAP/,$p' | grep -oE '(changed|failed)=[0-9]+' | sort -u | tr '\n' ' '; }
files_sha() { # NODE: the agent's config and unit, as they are on the node
    node_exec "$1" sh -c 'cat /etc/baton/agent.yml /etc/systemd/system/baton-agent.service 2>&1' |
        sha256sum | cut -d' ' -f1
}

for p in ansible/playbooks/*.yml; do
    ok "syntax: $p" env ANSIBLE_COLLECTIONS_PATH="$T" ansible-playbook --syntax-check -i "$T/inventory" "$p"
done
ok "the module compiles" python3 -m py_compile ansible/plugins/modules/rollout.py
like "$(ANSIBLE_COLLECTIONS_PATH=$T ansible-doc baton.fleet.rollout 2>&1)" "OPTIONS.*" \
    "ansible-doc shows the module's documentation"
like "$(ANSIBLE_COLLECTIONS_PATH=$T ansible-doc -t role baton.fleet.agent 2>&1)" "baton_agent_services" \
    "ansible-doc shows the role's variables"

# --- the agent role ------------------------------------------------------------------------
out=$(ap ansible/playbooks/site.yml 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "site.yml installs the agents"
f=$(rollout_file 1.1.0)
status=$("$BATON" status "$f" 2>&1)
is "$?" 0 "every agent answers baton status"
printf '%s\n' "$status" >&2
for n in $CLUSTER_NODES; do
    is "$(node_exec "$n" systemctl is-enabled baton-agent)" enabled "$n: the agent is enabled"
    is "$(node_exec "$n" systemctl is-active baton-agent)" active "$n: and running"
done
pid1=$(agent_pid node1)
out=$(ap ansible/playbooks/site.yml 2>&1)
is "$?" 0 "a second run succeeds"
is "$(printf '%s\n' "$out" | recap)" "changed=0 failed=0 " "and changes nothing (changed=0 on every node)"
is "$(agent_pid node1)" "$pid1" "the agent was not restarted"

sha_before=$(files_sha node1)
out=$(ap ansible/playbooks/site.yml -e '{"baton_agent_watchdog_sec": "soon"}' 2>&1)
code=$?
printf '%s\n' "$out" >&2
isnt_zero=$([ "$code" != 0 ] && echo yes)
is "$isnt_zero" yes "a bad variable fails the play"
like "$out" "Validating arguments against arg spec" "before any task, by the role's argument spec"
cat >"$T/unknown.yml" <<VARS
baton_agent_services:
  - {name: gamesrv, unit: gamesrv.service, binary: /opt/gamesrv/bin/gamesrv, database: "dbname=game",
     backup_dir: /var/backups/baton/gamesrv, health: {http: "http://127.0.0.1/"}, keep_backup: 2}
VARS
out=$(ap ansible/playbooks/site.yml -e "@$T/unknown.yml" 2>&1)
printf "%s\n" "$out" | grep -o "argument_errors[^]]*]" >&2
like "$out" "argument_errors.*baton_agent_services.keep_backup. Supported parameters include" \
    "a misspelt service key fails before any task, naming the key"
is "$(files_sha node1)" "$sha_before" "neither changed the config or the unit"

cat >"$T/broken.yml" <<VARS
baton_agent_services:
  - {name: gamesrv, unit: gamesrv.service, binary: gamesrv, database: "dbname=game",
     backup_dir: /var/backups/baton/gamesrv, health: {http: "http://127.0.0.1/"}}
VARS
out=$(ap ansible/playbooks/site.yml -e "@$T/broken.yml" 2>&1)
code=$?
printf '%s\n' "$out" >&2
isnt_zero=$([ "$code" != 0 ] && echo yes)
is "$isnt_zero" yes "a config the agent would refuse fails the play"
like "$out" "binary: must be an absolute path" "caught by validate: baton-agent --check-config says why"
is "$(files_sha node1)" "$sha_before" "the old config stays in place"
is "$(agent_pid node1)" "$pid1" "and the agent keeps running, untouched"

# --- the rollout module ---------------------------------------------------------------------
roll() { # VERSION[+FAULTS] [ansible-playbook options...]
    local v=$1
    shift
    ap ansible/playbooks/rollout.yml -e service=gamesrv -e "version=${v%%+*}" \
        -e "artifact=$(realpath "$(gamesrv_bin "$v")")" -e "baton_bin=$BATON" -e min_healthy_time=1s "$@"
}
versions() { for n in $CLUSTER_NODES; do node_exec "$n" /opt/gamesrv/bin/gamesrv --version; done | tr '\n' ' '; }
out=$(roll 1.1.0 -e '{"batches": [1, 2], "on_failure": "halt"}' 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "rollout.yml upgrades the fleet (in batches [1, 2], as the play asks)"
like "$(printf '%s\n' "$out" | recap)" "changed=1" "and reports changed"
like "$out" "done: 3 of 3 nodes on gamesrv 1.1.0 \(3 upgraded now\)" "with baton's summary"
is "$(versions)" "1.1.0 1.1.0 1.1.0 " "every node runs 1.1.0"

out=$(roll 1.1.0 2>&1)
is "$?" 0 "the same rollout again succeeds"
is "$(printf '%s\n' "$out" | recap)" "changed=0 failed=0 " "and reports changed=false"

states() { for n in $CLUSTER_NODES; do node_exec "$n" sh -c 'systemctl is-active gamesrv; cat /var/lib/baton/gamesrv.json; ls /var/lib/baton/staging/gamesrv'; done | sha256sum; }
states_before=$(states)
snap=$(db_snapshot)
out=$(roll 1.2.0 --check 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "check mode runs"
like "$out" "would upgrade node1, node2, node3 to 1.2.0" "and says which nodes would be upgraded"
is "$(states)" "$states_before" "check mode changed nothing on the nodes (units, state files, staging)"
is "$(db_snapshot)" "$snap" "nor in the database"
# Check mode is baton plan: a rollout that would be refused fails the check, with the reasons.
node_exec node2 chmod 000 /opt/gamesrv/bin/gamesrv
out=$(roll 1.2.0 --check 2>&1)
code=$?
node_exec node2 chmod 755 /opt/gamesrv/bin/gamesrv
printf '%s\n' "$out" >&2
is "$([ "$code" != 0 ] && echo failed)" failed "check mode fails when the rollout would be refused"
like "$out" "baton plan: REFUSED: 1 of 3 nodes would refuse.*node2: binary /opt/gamesrv/bin/gamesrv does not run" \
    "naming the node and the reason"
is "$(states)" "$states_before" "and changes nothing"

out=$(roll 1.2.0+health 2>&1)
code=$?
printf '%s\n' "$out" >&2
isnt_zero=$([ "$code" != 0 ] && echo yes)
is "$isnt_zero" yes "a failing version fails the play"
like "$out" "a node failed and was rolled back to where it was \(exit 3\)" "with what baton's exit code means"
like "$out" "not healthy after 4 s" "and baton's own message"
is "$(versions)" "1.1.0 1.1.0 1.1.0 " "every node is on the old version"
is "$(db_snapshot)" "$snap" "and the database is what it was"

# The module on its own, with a rollout file kept beside the playbook, and what it returns.
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 1.1.1)
out=$(ANSIBLE_COLLECTIONS_PATH=$T ANSIBLE_NOCOLOR=1 ansible -i "$T/inventory" localhost \
    -m baton.fleet.rollout -a "rollout_file=$f baton=$BATON" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "the module takes a rollout file"
like "$out" "^localhost \| CHANGED" "and says it changed something"
result=$(printf '%s\n' "$out" | sed -n '/^localhost | CHANGED => {/,$p' | sed '1s/^localhost | CHANGED => //')
field() { printf '%s' "$result" | python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"; }
is "$(field "r['rc']"), $(field "r['outcome']")" "0, done: every node runs the target version" \
    "it returns baton's exit code and what it means"
like "$(field "r['rollout_id']")" "^r[0-9]{8}T[0-9]{6}-[0-9a-f]{6}$" "and the rollout id"
is "$(field "' '.join(n['name'] + ':' + n['version_before'] + '->' + n['version_after'] for n in r['nodes'])")" \
    "node1:1.1.0->1.1.1 node2:1.1.0->1.1.1 node3:1.1.0->1.1.1" "and per node the version before and after"
is "$(field "','.join(s['step'] for s in r['nodes'][0]['steps'])")" \
    "stop,dump,swap,migrate,start,verify,commit" "and every step of each node"
is "$(field "all(isinstance(s['ms'], int) and s['ok'] for n in r['nodes'] for s in n['steps'])")" True \
    "each with its outcome and duration"
is "$(versions)" "1.1.1 1.1.1 1.1.1 " "every node runs 1.1.1"
done_testing
