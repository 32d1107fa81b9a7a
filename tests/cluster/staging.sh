#!/bin/bash
# staging.sh: the artifact goes to every agent before anything is stopped, in chunks with a
# window in flight, and survives the bad day: Ctrl-C mid-transfer keeps what arrived, an agent
# killed or frozen mid-transfer goes on from what it holds, a partial file that does not match is never kept, and an agent that holds the digest
# is not sent it again.
#
# The artifacts are the fixture's builds with 17 MiB of random bytes after the ELF image (the
# loader ignores them), so that they span 18 chunks; node1's link is slowed to 80 Mbit/s and
# node3's to 40 Mbit/s so that their transfers take about two and four seconds: node3 is still
# receiving when it is frozen in part 2, however loaded the machine.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

cluster_sweep
cluster_trap
ok "cluster: 3 nodes on gamesrv 1.0.0" baton_cluster stage 3 1.0.0 || { done_testing; exit 1; }

big_artifact() { padded_artifact "$1" $((17 * 1024 * 1024 + 12345)) "$CLUSTER_DIR/big-$1"; } # VERSION
big_rollout() { # VERSION: a rollout file for the padded build
    local f
    f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s BATON_TEST_LIVENESS=3s rollout_file "$1" "$ROLLOUT_DIR/big-$1.yml")
    sed -i "s|^artifact: .*|artifact: $(big_artifact "$1")|" "$f"
    echo "$f"
}
staged_file() { echo "/var/lib/baton/staging/gamesrv/$2${3:-}"; } # NODE SHA [SUFFIX]
node_size() { node_exec "$1" stat -c %s "$2" 2>/dev/null || echo 0; }
stage_checks() { # JSON-LINES: node=message of every stage check
    jq -r 'select(.event == "check" and .phase == "stage") | "\(.node)=\(.ok) \(.message)"' "$1"
}
versions() { for n in $CLUSTER_NODES; do node_exec "$n" /opt/gamesrv/bin/gamesrv --version; done | tr '\n' ' '; }

# 1. Ctrl-C half-way through node1's transfer: chunks in flight finish, the rollout ends before
#    any stop (exit 2), and node1 keeps what it received.
big=$(big_artifact 1.1.0)
sha=$(sha256sum "$big" | cut -d' ' -f1)
size=$(stat -c %s "$big")
ok "the padded artifact spans $(((size + 1048575) / 1048576)) chunks of 1 MiB" test "$size" -gt $((16 * 1024 * 1024))
tc qdisc add dev "$(_veth_name node1)" root tbf rate 80mbit burst 64kb latency 2s
tc qdisc add dev "$(_veth_name node3)" root tbf rate 40mbit burst 64kb latency 2s
f=$(big_rollout 1.1.0)
partial=$(staged_file node1 "$sha" .partial)
partial_grew() { [ "$(node_size "${2:-node1}" "$partial")" -ge "$1" ]; } # BYTES [NODE]
stops=$(for n in $CLUSTER_NODES; do unit_stops "$n"; done)
"$BATON" rollout "$f" >"$CLUSTER_DIR/s0.out" 2>&1 &
pid=$!
ok "node1 holds part of the artifact (2 MiB or more)" wait_for 30 partial_grew 2097152
kill -INT "$pid"
wait "$pid"
is "$?" 2 "Ctrl-C during staging: exit 2"
like "$(cat "$CLUSTER_DIR/s0.out")" "stage +node1 +FAIL .*interrupted" "node1's stage check says interrupted"
is "$(for n in $CLUSTER_NODES; do unit_stops "$n"; done)" "$stops" "no unit was stopped anywhere"
kept=$(node_size node1 "$partial")
ok "node1 kept its partial file ($kept bytes)" test "$kept" -ge 2097152
kept3=$(node_size node3 "$partial")

# 2. The same rollout again, and on the bad day: node1's agent killed (main PID only) half-way,
#    node3's agent frozen (SIGSTOP) for 5 s. Each window stalls; liveness (3 s) ends the call; the
#    coordinator asks the agent what it holds and goes on from there instead of starting over.
"$BATON" rollout --json "$f" >"$CLUSTER_DIR/s1.json" 2>"$CLUSTER_DIR/s1.err" &
pid=$!
ok "node1 goes on past what it kept" wait_for 30 partial_grew $((kept + 2097152))
node_exec node1 systemctl kill --kill-whom=main -s KILL baton-agent.service
# node3 is frozen mid-transfer: once it has received 1 MiB more than it kept, with about 3 s of
# its transfer still to go.
ok "node3 goes on past what it kept" wait_for 30 partial_grew $((kept3 + 1048576)) node3
node_exec node3 kill -STOP "$(agent_pid node3)"
sleep 5
node_exec node3 kill -CONT "$(agent_pid node3)"
ok "node1's agent came back (Restart=)" wait_for 20 agent_restarted node1 1
wait "$pid"
is "$?" 0 "the rollout goes on and ends: exit 0"
tc qdisc del dev "$(_veth_name node1)" root 2>/dev/null
tc qdisc del dev "$(_veth_name node3)" root 2>/dev/null
cat "$CLUSTER_DIR/s1.err" >&2
notes() { jq -r "select(.node == \"$1\") | .message // empty" "$CLUSTER_DIR/s1.json"; }
held_notes() { notes "$1" | sed -n 's/.*agent holds \([0-9]*\) of [0-9]* bytes.*/\1/p'; }
is "$(held_notes node1 | head -1)" "$kept" "node1 went on from the $kept bytes it kept after the Ctrl-C"
like "$(notes node1 | grep 'where the transfer stands' | head -1)" "LOST during stage" \
    "node1's killed agent: the stalled window ended by liveness, not by the step timeout"
ok "node1's restarted agent took up its partial file: $(held_notes node1 | sed -n 2p) bytes not sent again" \
    test "$(held_notes node1 | sed -n 2p)" -gt "$kept"
like "$(notes node3 | grep 'where the transfer stands' | head -1)" "LOST during stage" \
    "node3's frozen agent: LOST, then asked again"
like "$(stage_checks "$CLUSTER_DIR/s1.json" | grep "^node1=")" "node1=true binary received, sha256 verified" \
    "node1's stage check passed"
# node3's freeze may land after its last chunk was written but before it answered (a loaded
# machine): asked again, it holds the whole artifact, checked on arrival.
like "$(stage_checks "$CLUSTER_DIR/s1.json" | grep "^node3=")" \
    "node3=true (binary received, sha256 verified|held already \(sha256 verified on arrival\))" \
    "node3's stage check passed"
# node2's link is not slowed: it may have received all of it before the Ctrl-C.
like "$(stage_checks "$CLUSTER_DIR/s1.json" | grep "^node2=")" "node2=true (binary received|held already)" \
    "node2's stage check passed"
is "$(versions)" "1.1.0 1.1.0 1.1.0 " "every node runs 1.1.0"
for n in node1 node3; do
    is "$(node_exec "$n" sha256sum /opt/gamesrv/bin/gamesrv | cut -d' ' -f1)" "$sha" \
        "$n's binary is the artifact, byte for byte (sha256)"
done
is "$(node_exec node1 sh -c "ls /var/lib/baton/staging/gamesrv/ | grep -c partial")" 0 "no partial file left on node1"

# 3. A partial file that is not the artifact's beginning (a disk error, a hand copy): taken up,
#    then the digest on arrival refuses the whole, nothing is stopped, nothing kept.
big=$(big_artifact 1.2.0)
sha=$(sha256sum "$big" | cut -d' ' -f1)
stops=$(unit_stops node2)
junk=$(mktemp)
head -c $((3 * 1024 * 1024)) /dev/urandom >"$junk"
node_exec node2 mkdir -p /var/lib/baton/staging/gamesrv
node_push node2 "$junk" "$(staged_file node2 "$sha" .partial)" 0700
rm -f "$junk"
f=$(big_rollout 1.2.0)
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 2 "a rollout whose artifact arrives corrupt on node2: exit 2, refused before any stop"
like "$out" "node2.*staged binary has sha256 [0-9a-f]{64}, expected $sha" "node2 names both digests"
is "$(unit_stops node2)" "$stops" "node2's service was never stopped"
is "$(versions)" "1.1.0 1.1.0 1.1.0 " "no node changed"
is "$(node_size node2 "$(staged_file node2 "$sha" .partial)")" 0 "the bad partial file is gone"
is "$(node_size node2 "$(staged_file node2 "$sha")")" 0 "and nothing was kept under the digest"

# 4. The same rollout again: node1 and node3 kept the verified artifact from the refused run, so
#    the question at the transfer's start is all they are sent; node2 gets it whole.
out=$("$BATON" rollout --json "$f" 2>"$CLUSTER_DIR/s3.err")
is "$?" 0 "the same rollout again: exit 0"
printf '%s\n' "$out" >"$CLUSTER_DIR/s3.json"
is "$(stage_checks "$CLUSTER_DIR/s3.json" | sort | tr '\n' ';')" \
    "node1=true held already (sha256 verified on arrival);node2=true binary received, sha256 verified;node3=true held already (sha256 verified on arrival);" \
    "node1 and node3 held the artifact (nothing sent again), node2 received it"
is "$(versions)" "1.2.0 1.2.0 1.2.0 " "every node runs 1.2.0"
done_testing
