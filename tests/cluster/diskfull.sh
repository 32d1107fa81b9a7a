#!/bin/bash
# diskfull.sh: the backup disk fills up while the dump runs. The dump step fails (pg_dump: no
# space), the node is rolled back (the old binary runs again, healthy), the report says why, the
# database and its rows are untouched, and the nodes after it are untouched and released. Once
# there is room again, the same rollout goes through. Then the coordinator's own disk fills
# during a migration: the journal keeps whole lines only, the run does not claim exit 0, and
# `baton resume` finishes the rollout once there is room. Last, the agent's own state folder
# nearly fills during a migration: the next step is refused before it runs, the node rolled back.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
BATON_TEST_KNOBS=1

cluster_sweep
cluster_trap
ok "cluster: 2 nodes on gamesrv 1.0.0" baton_cluster disk 2 1.0.0 || { done_testing; exit 1; }
versions() { for n in $CLUSTER_NODES; do node_exec "$n" /opt/gamesrv/bin/gamesrv --version; done | tr '\n' ' '; }
# node1's backup folder on a disk of its own: 40 MiB, enough for the pre-flight's estimate
# (database + 20 % + 16 MiB), filled by a test file once the dump has started.
# (The agent's unit has its own mount namespace, made when it starts: restart it to see the disk.)
node_exec node1 sh -c 'mkdir -p /var/backups/baton && mount -t tmpfs -o size=40m tmpfs /var/backups/baton &&
    systemctl restart baton-agent'
agent_up() { [ "$(node_exec node1 systemctl is-active baton-agent)" = active ]; }
ok "node1's agent sees the 40 MiB backup disk" wait_for 20 agent_up
snap=$(db_snapshot)
stops2=$(unit_stops node2)
slow_step node1 dump 3
f=$(rollout_file 1.1.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/full.out" 2>&1 &
first=$!
ok "node1's dump is about to run" wait_for 60 tool_running node1 dump
node_exec node1 sh -c 'dd if=/dev/zero of=/var/backups/baton/filler bs=1M 2>/dev/null; df -k /var/backups/baton | tail -1'
wait "$first"
code=$?
slow_step node1 dump 0
out=$(cat "$CLUSTER_DIR/full.out")
printf '%s\n' "$out" >&2
is "$code" 3 "the disk filled during the dump: exit 3, node1 rolled back"
like "$out" "dump +FAIL .*(No space left on device|could not write)" "the dump step says the disk is full"
like "$out" "rollback +ok .*back on 1.0.0" "node1 is back on 1.0.0"
like "$out" "untouched: node2" "node2 is named untouched"
is "$(versions)" "1.0.0 1.0.0 " "both nodes run 1.0.0"
is "$(gamesrv_health node1)" 200 "node1 is healthy"
is "$(unit_stops node2)" "$stops2" "node2 was never stopped"
id=$(printf '%s\n' "$out" | sed -n 's/^baton: rollout \([^:]*\):.*/\1/p')
is "$(state_field node2 rollout_id | grep -c "$id")" 0 "node2 holds no reservation of that rollout"
is "$(db_snapshot)" "$snap" "the database, schema and rows, is untouched"
is "$(node_exec node1 sh -c 'ls /var/backups/baton/gamesrv/ 2>/dev/null | grep -c "\.dump$" || true')" 0 \
    "no half-written dump is left as if it were one"

node_exec node1 rm -f /var/backups/baton/filler
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 0 "with room again, the same rollout goes through"
is "$(versions)" "1.1.0 1.1.0 " "both nodes run 1.1.0"

# --- the coordinator's disk fills during node1's migration (the faults issue's fourth case: the
# summary was written half, the run said done, exit 0, and the journal was unreadable after the
# next append) ----------------------------------------------------------------------------------
coord=$CLUSTER_DIR/coord-disk
mkdir -p "$coord" && mount -t tmpfs -o size=1m tmpfs "$coord"
# cluster_down removes the folder: the small disk goes first, also when the test fails.
trap 'umount -l "$coord" 2>/dev/null; cluster_down' EXIT
export BATON_STATE_DIR=$coord
# (One database: node1 migrates it for both.)
slow_step node1 migrate 4
f=$(rollout_file 1.2.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/coord-full.out" 2>&1 &
pid=$!
ok "node1's migration is running" wait_for 60 tool_running node1 migrate
dd if=/dev/zero of="$coord/filler" bs=4k >/dev/null 2>&1
# tmpfs gives whole pages: the journal's last page still has room for a few events, which would
# move the failure to wherever they run out (node2's stop, in one run). That room is taken too,
# by one line the journal's reader skips (an event it does not know), so that the coordinator's
# next append, node1's migrate step, is the first to find the disk full.
journal=$(ls "$coord"/rollouts/*.jsonl)
slack=$(( (4096 - $(stat -c %s "$journal") % 4096) % 4096 ))
if [ "$slack" -gt 30 ]; then # 30: the line without its padding
    pad=$(head -c $((slack - 30)) /dev/zero | tr '\0' x)
    printf '{"event":"test-pad","pad":"%s"}\n' "$pad" >>"$journal"
fi
left=$(( (4096 - $(stat -c %s "$journal") % 4096) % 4096 ))
ok "the journal's last page has no room for an event either (it had $slack bytes, now $left)" \
    [ "$left" -le 30 ]
wait "$pid"
code=$?
slow_step node1 migrate 0
out=$(cat "$CLUSTER_DIR/coord-full.out")
printf '%s\n' "$out" >&2
isnt_zero() { [ "$1" != 0 ]; }
ok "a rollout whose journal could not be written to its end does not exit 0 (exit $code)" \
    isnt_zero "$code"
like "$out" "journal: write .*(No space left on device|short write)" "it says why: the journal's disk is full"
journal=$(ls "$coord"/rollouts/*.jsonl)
id=$(basename "$journal" .jsonl)
is "$(tail -c1 "$journal" | od -An -tx1 | tr -d ' ')" 0a "the journal ends on its last whole line"
ok "every line of it is a JSON event" jq -e . "$journal"
rm -f "$coord/filler"
out=$("$BATON" list 2>&1)
printf '%s\n' "$out" >&2
unlike "$out" "unreadable" "with room again, baton list reads the journal"
state=$(printf '%s\n' "$out" | awk -v id="$id" '$1 == id { print $2 }')
out=$("$BATON" resume "$id" 2>&1)
code=$?
printf '%s\n' "$out" >&2
if [ "$code" != 0 ]; then
    # The coordinator settled the node in flight (rolled it back) before it stopped, and said
    # how to continue: resume refuses to go on from there, and its refusal leaves the rollout's
    # own end ($state) as it was.
    like "$out" "start a new rollout" "baton resume refuses to go on past a node this rollout rolled back, saying why"
    is "$("$BATON" list 2>&1 | awk -v id="$id" '$1 == id { print $2 }')" "$state" \
        "and does not rewrite how that rollout ended"
    out=$("$BATON" rollout "$f" 2>&1)
    is "$?" 0 "the rollout file again, as the summary said, finishes the upgrade (exit 0)"
else
    pass() { :; }
    ok "baton resume finishes the rollout (exit 0)" pass
fi
is "$(versions)" "1.2.0 1.2.0 " "both nodes run 1.2.0"
ok "and the journal is whole and readable after more appends" jq -e . "$journal"
umount -l "$coord"
export BATON_STATE_DIR=$CLUSTER_DIR/coordinator

# --- the agent's state folder nearly full during node1's migration (the faults issue's seventh
# case: the start step failed after the new binary started, leaving it running unverified) ----
node_exec node1 sh -c 'cp -a /var/lib/baton /var/lib/baton.copy && mount -t tmpfs -o size=80m,mode=0700 tmpfs /var/lib/baton &&
    cp -a /var/lib/baton.copy/. /var/lib/baton/ && rm -rf /var/lib/baton.copy && systemctl restart baton-agent'
ok "node1's agent sees its 80 MiB state folder (staging asks for 64 MiB spare)" wait_for 20 agent_up
slow_step node1 migrate 4
f=$(rollout_file 2.0.0)
"$BATON" rollout "$f" >"$CLUSTER_DIR/state-full.out" 2>&1 &
pid=$!
ok "node1's migration is running" wait_for 60 tool_running node1 migrate
# Leave 1 MiB: enough to record a step, less than the room a step asks for before it starts.
node_exec node1 sh -c 'free=$(df -k --output=avail /var/lib/baton | tail -1); dd if=/dev/zero of=/var/lib/baton/filler bs=1k count=$((free - 1024)) 2>/dev/null; df -k /var/lib/baton | tail -1' >&2
wait "$pid"
code=$?
slow_step node1 migrate 0
out=$(cat "$CLUSTER_DIR/state-full.out")
printf '%s\n' "$out" >&2
is "$code" 3 "the state folder nearly full after node1's migration: exit 3, node1 rolled back"
like "$out" "start +FAIL .*the state folder /var/lib/baton has [0-9]+ KiB free" \
    "the start step was refused before it ran, saying why"
is "$(node_exec node1 journalctl -u gamesrv -o cat --no-pager | grep -c 'gamesrv 2.0.0: serving')" 0 \
    "2.0.0 never ran on node1 (nothing unverified was left running)"
is "$(versions)" "1.2.0 1.2.0 " "both nodes on 1.2.0"
is "$(gamesrv_health node1)" 200 "node1 healthy"
node_exec node1 rm -f /var/lib/baton/filler
done_testing
