#!/bin/bash
# soak.sh: hostile and plentiful traffic against a live agent. 10,000 requests (Hello, refused
# steps, random garbage, mutated real messages) over CURVE leave the systemd agent alive (same
# PID, no restart) and serving; a second instance of the agent, under valgrind, answers 10,000
# requests of every kind with no leak or memory error reported; the agent's RSS stays flat.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
ZPOKE=${BUILD:-build}/tests/tools/zpoke
BATON=${BUILD:-build}/baton
# A build with AddressSanitizer (make test SANITIZE=1) checks memory itself: its RSS grows with
# its quarantine of freed blocks, and valgrind cannot run it. Then those two parts are left out.
sanitized=$(readelf -s "${BUILD:-build}/baton-agent" 2>/dev/null | grep -c __asan_init)

cluster_sweep
cluster_trap
ok "cluster: 1 node" baton_cluster soak 1 1.0.0 || { done_testing; exit 1; }
flood() { # PORT N
    ZPOKE_SERVER_KEY=$(agent_pub node1) ZPOKE_KEY_FILE=$(keys_dir)/coordinator.key \
        "$ZPOKE" "tcp://$(node_ip node1):$1" flood "$2"
}
pid=$(agent_pid node1)
rss() { node_exec node1 sh -c "grep VmRSS /proc/$1/status" | awk '{print $2}'; }
flood "$BATON_AGENT_PORT" 2000 >/dev/null
rss1=$(rss "$pid")
out=$(flood "$BATON_AGENT_PORT" 8000)
code=$?
rss2=$(rss "$pid")
diag "agent RSS $rss1 KiB after 2,000 requests, $rss2 KiB after 10,000; $(printf '%s' "$out" | tr '\n' ';')"
is "$code" 0 "10,000 requests, garbage and mutated messages among them: every one answered"
if [ "$sanitized" = 0 ]; then
    ok "its memory stays flat: RSS grew $((rss2 - rss1)) KiB over the last 8,000 requests (< 1 MiB)" \
        [ $((rss2 - rss1)) -lt 1024 ]
fi
is "$(agent_pid node1)" "$pid" "the agent is the same process"
is "$(node_exec node1 systemctl show -p NRestarts --value baton-agent)" 0 "systemd never restarted it"
f=$(rollout_file 1.0.0)
like "$("$BATON" status "$f")" "node1 .* 1.0.0 +active" "it still serves: baton status"
is "$(node_exec node1 systemctl is-active gamesrv)" active "and nothing it manages was touched"

if [ "$sanitized" != 0 ]; then
    diag "an AddressSanitizer build: no valgrind run, no RSS check (ASan checked every request)"
    done_testing
    exit 0
fi
# The same agent under valgrind, on another port, with its own state folder.
cfg=$(mktemp)
agent_config node1 | sed -e "s|:$BATON_AGENT_PORT|:7401|" -e "s|/var/lib/baton$|/var/lib/baton-soak|" >"$cfg"
node_push node1 "$cfg" /etc/baton/soak.yml 0600
rm -f "$cfg"
node_exec node1 systemd-run --unit=baton-soak --property=Type=simple \
    valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite \
    --log-file=/run/baton-soak.vg /opt/baton/bin/baton-agent --config /etc/baton/soak.yml >/dev/null
answers() { ZPOKE_SERVER_KEY=$(agent_pub node1) ZPOKE_KEY_FILE=$(keys_dir)/coordinator.key \
    "$ZPOKE" "tcp://$(node_ip node1):7401" hello >/dev/null; }
ok "the agent runs under valgrind" wait_for 60 answers
# (valgrind's own RSS grows with its queue of freed blocks: the flatness is measured above.)
out=$(flood 7401 10000)
code=$?
diag "valgrind: $(printf '%s' "$out" | tr '\n' ';')"
is "$code" 0 "under valgrind, 10,000 requests of every kind answered"
node_exec node1 systemctl stop baton-soak
gone() { [ "$(node_exec node1 systemctl is-active baton-soak)" != active ]; }
ok "it stops on SIGTERM" wait_for 60 gone
vg=$(node_exec node1 cat /run/baton-soak.vg)
like "$vg" "ERROR SUMMARY: 0 errors" "valgrind: no memory error"
like "$vg" "definitely lost: 0 bytes|All heap blocks were freed" "valgrind: no leak"
done_testing
