#!/bin/bash
# plan.sh: `baton plan`, the dry run, on real nodes. It reports what each node runs and what it
# would do; with two nodes that would refuse the pre-flight (three reasons between them) it
# lists every reason and exits 2; and it changes nothing anywhere: unit states, the agents'
# files and the database are identical before and after. An old pg_dump and an artifact that is
# not a program are refused before anything stops.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

cluster_sweep
cluster_trap
ok "cluster: 3 nodes on gamesrv 1.0.0 sharing one database" baton_cluster plan 3 1.0.0 ||
    { done_testing; exit 1; }
# What plan must not touch, on every node: the unit, the agent's whole state folder (files,
# sizes, times), the backups, the installed binary; and the shared database.
world() {
    for n in $CLUSTER_NODES; do
        node_exec "$n" sh -c 'systemctl is-active gamesrv; ls -lR --time-style=full-iso /var/lib/baton /var/backups/baton 2>&1; sha256sum /opt/gamesrv/bin/gamesrv* 2>&1; journalctl -u gamesrv -o cat --no-pager | grep -c "stopped by signal"'
    done | sha256sum
    db_snapshot
}

f=$(rollout_file 1.1.0)
strategy_keys() { printf '%s\n' "batches: [1, 2]" >>"$f"; }
strategy_keys
before=$(world)
out=$("$BATON" plan "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "a healthy fleet: baton plan exits 0"
like "$out" "NODE +NOW +TARGET +UNIT +WHAT IT WOULD TAKE" "a header names the columns"
like "$out" "node2 +1.0.0 +-> 1.1.0 +active +database [0-9]+ KiB, 1 migration applied; the dump may need ~[0-9]+ MiB \(its size \+ 20% \+ 16 MiB\), [0-9]+ MiB free in /var/backups/baton/gamesrv; artifact to be sent" \
    "each node: installed version, unit state, database, room for the dump, the artifact"
like "$out" "would: stop, dump \(pg_dump\), swap, migrate up, start, verify, commit" "and the steps it would run"
like "$out" 'plan: 3 nodes in 2 batches: node1 \| node2, node3; ' "the batches"
like "$out" "the rollout could run: 3 of 3 nodes to upgrade; nothing was changed" "the verdict"
is "$(world)" "$before" "nothing changed: units, agent files, backups, binaries, database"

# Break two nodes: node2's binary cannot run; node3 has neither unit nor binary.
node_exec node2 chmod 000 /opt/gamesrv/bin/gamesrv
node_exec node3 sh -c 'systemctl stop gamesrv; mv /etc/systemd/system/gamesrv.service /root/; mv /opt/gamesrv/bin/gamesrv /root/gamesrv.bin; systemctl daemon-reload'
before=$(world)
out=$("$BATON" plan "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 2 "two nodes would refuse: exit 2"
like "$out" "REFUSED: binary /opt/gamesrv/bin/gamesrv does not run: .*exit code 127" "node2's reason: its binary does not run"
like "$out" "REFUSED: .*unit gamesrv.service not found" "node3's first reason: no unit"
like "$out" "REFUSED: binary /opt/gamesrv/bin/gamesrv: No such file or directory" "node3's second reason: no binary"
is "$(printf '%s\n' "$out" | grep -c 'REFUSED: ')" 4 "three node reasons and the verdict, nothing more"
like "$out" "REFUSED: 2 of 3 nodes would refuse the rollout" "the verdict counts the nodes"
is "$(world)" "$before" "nothing changed on a refused plan either"
json=$("$BATON" plan "$f" --json)
is "$?" 2 "--json: exit 2 too"
is "$(printf '%s\n' "$json" | grep -c '"event":"plan_node"')" 3 "one plan_node event per node"
is "$(printf '%s\n' "$json" | grep '"node":"node3"' | grep -o '"problems":\[[^]]*\]' | grep -o '","' | wc -l)" 1 \
    "node3's event lists two problems"
is "$(printf '%s\n' "$json" | grep '"node":"node1"' | grep -o '"ok":true')" '"ok":true' "node1 is fine"

# Mended, the nodes roll out as planned: plan left nothing behind that could get in the way.
node_exec node2 chmod 755 /opt/gamesrv/bin/gamesrv
node_exec node3 sh -c 'mv /root/gamesrv.service /etc/systemd/system/; mv /root/gamesrv.bin /opt/gamesrv/bin/gamesrv; systemctl daemon-reload; systemctl start gamesrv'
is "$("$BATON" plan "$f" >/dev/null 2>&1; echo $?)" 0 "mended: the plan says it could run"
"$BATON" rollout "$f" >/dev/null 2>&1
is "$?" 0 "and the rollout runs"
out=$("$BATON" plan "$f" 2>&1)
is "$?" 0 "afterwards, plan exits 0"
like "$out" "node1 +1.1.0 +-> 1.1.0 +active +already on the target version: nothing to do" "and says there is nothing to do"

# --- the live view: on a terminal (a pty from script(1)) the table is redrawn in place --------
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 1.1.1)
printf '%s\n' "batches: [1, 2]" >>"$f"
TERM=xterm NO_COLOR=1 script -qfec "$BATON rollout $f" /dev/null >"$CLUSTER_DIR/live.out" 2>&1
is "$?" 0 "a rollout on a terminal: exit 0"
live=$(tr -d '\r' <"$CLUSTER_DIR/live.out")
ok "the table is redrawn in place (cursor up, clear line)" grep -q $'\033\[1A\033\[2K' <<<"$live"
like "$live" "node3 +commit +[0-9.]+ s +done" "a line per node with its step, time and result"
like "$live" "3/3 done, [0-9.]+ s" "nodes done out of all, and the time"
like "$live" "about [0-9]+ s left" "and an estimate of the time left while it ran"
like "$live" "done: 3 of 3 nodes on gamesrv 1.1.1" "the summary under the last table"
plain=$("$BATON" status "$f")
is "$(printf '%s' "$plain" | grep -c $'\033')" 0 "not on a terminal: no escape codes"

# --- the PostgreSQL programs must fit the server: a pg_dump older than it is refused --------
# (Debian 12 ships only 15, so an old pg_dump is a script that says what PostgreSQL 14's does.)
old=/opt/baton-test/old-pg_dump
node_exec node1 sh -c "mkdir -p /opt/baton-test && printf '#!/bin/sh\necho \"pg_dump (PostgreSQL) 14.10\"\n' >$old && chmod 755 $old"
cfg=$(mktemp)
agent_config node1 | sed "s|^    health:|    pg_dump: $old\n    health:|" >"$cfg"
node_push node1 "$cfg" /etc/baton/agent.yml 0600
node_exec node1 systemctl restart baton-agent
agent_up() { [ "$(node_exec node1 systemctl is-active baton-agent)" = active ]; }
ok "node1's agent restarted with pg_dump: $old" wait_for 20 agent_up
f=$(rollout_file 1.2.0)
out=$("$BATON" plan "$f" 2>&1)
is "$?" 2 "plan with an old pg_dump on node1: exit 2"
like "$out" "old-pg_dump is PostgreSQL 14, older than the server \(15\): it cannot dump it" \
    "node1's problem names both versions"
stops=$(for n in $CLUSTER_NODES; do unit_stops "$n"; done)
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "and the rollout is refused at pre-flight: exit 2"
like "$out" "preflight +node1 +FAIL .*older than the server" "by node1's pre-flight"
is "$(for n in $CLUSTER_NODES; do unit_stops "$n"; done)" "$stops" "no unit was stopped anywhere"
agent_config node1 >"$cfg"
node_push node1 "$cfg" /etc/baton/agent.yml 0600
rm -f "$cfg"
node_exec node1 systemctl restart baton-agent
ok "node1's agent back on its own config" wait_for 20 agent_up
out=$("$BATON" plan "$f" 2>&1)
is "$?" 0 "with the real pg_dump (resolved to the server's major) the plan passes again"

# --- an artifact that is not a program is never run, as root or otherwise (the hardening issue:
# a 0755 text file of shell commands used to be run by every node's pre-flight through /bin/sh)
txt=$ROLLOUT_DIR/not-a-program
printf 'touch /root/ran-the-artifact\necho 1.2.0\n' >"$txt" && chmod 0755 "$txt"
f=$(rollout_file 1.2.0)
sed -i "s|^artifact: .*|artifact: $txt|" "$f"
stops=$(for n in $CLUSTER_NODES; do unit_stops "$n"; done)
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "a text file of shell commands as the artifact: the rollout is refused, exit 2"
like "$out" "stage +node1 +FAIL .*the artifact is not a program \(neither an ELF executable nor a #! script\)" \
    "staging refuses it, saying what the file is"
is "$(for n in $CLUSTER_NODES; do node_exec "$n" test -e /root/ran-the-artifact && echo "$n"; done)" "" \
    "no node ran it"
is "$(for n in $CLUSTER_NODES; do unit_stops "$n"; done)" "$stops" "no unit was stopped anywhere"
is "$(node_exec node1 sh -c 'ls /var/lib/baton/staging/gamesrv | grep -c partial')" 0 \
    "nothing of it is kept in the staging store"

done_testing
