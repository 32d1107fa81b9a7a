#!/bin/bash
# staging.sh: the artifact goes to every agent before anything is stopped, in chunks with a
# window in flight, and survives the bad day: an agent killed mid-transfer goes on from what it
# holds, a partial file that does not match is never kept, and an agent that holds the digest
# is not sent it again.
#
# The artifacts are the fixture's builds with 17 MiB of random bytes after the ELF image (the
# loader ignores them), so that they span 18 chunks; node1's link is slowed to 80 Mbit/s so
# that its transfer takes about two seconds.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

cluster_sweep
cluster_trap
ok "cluster: 3 nodes on gamesrv 1.0.0" baton_cluster stage 3 1.0.0 || { done_testing; exit 1; }

big_artifact() { # VERSION: the build, padded to ~17 MiB; prints its path
    local out=$CLUSTER_DIR/big-$1
    [ -f "$out" ] || { cat "$(gamesrv_bin "$1")" && head -c $((17 * 1024 * 1024 + 12345)) /dev/urandom; } >"$out"
    chmod 0755 "$out"
    echo "$out"
}
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

# 1. An agent killed (main PID only) half-way through its transfer: the coordinator's window
#    stalls, liveness (3 s) ends the call, it asks the restarted agent what it holds, and goes on
#    from there instead of starting over.
big=$(big_artifact 1.1.0)
sha=$(sha256sum "$big" | cut -d' ' -f1)
size=$(stat -c %s "$big")
ok "the padded artifact spans $(((size + 1048575) / 1048576)) chunks of 1 MiB" test "$size" -gt $((16 * 1024 * 1024))
tc qdisc add dev "$(_veth_name node1)" root tbf rate 80mbit burst 64kb latency 2s
f=$(big_rollout 1.1.0)
"$BATON" rollout --json "$f" >"$CLUSTER_DIR/s1.json" 2>"$CLUSTER_DIR/s1.err" &
pid=$!
partial=$(staged_file node1 "$sha" .partial)
partial_grew() { [ "$(node_size node1 "$partial")" -ge 4194304 ]; }
ok "node1 holds part of the artifact (4 MiB or more)" wait_for 30 partial_grew
node_exec node1 systemctl kill --kill-whom=main -s KILL baton-agent.service
ok "node1's agent came back (Restart=)" wait_for 20 agent_restarted node1 1
wait "$pid"
is "$?" 0 "the rollout goes on and ends: exit 0"
tc qdisc del dev "$(_veth_name node1)" root 2>/dev/null
cat "$CLUSTER_DIR/s1.err" >&2
like "$(stage_checks "$CLUSTER_DIR/s1.json" | grep '^node1=')" "node1=true binary received, sha256 verified" \
    "node1's stage check passed"
note=$(jq -r 'select(.node == "node1") | .message // empty' "$CLUSTER_DIR/s1.json" | grep 'where the transfer stands' | head -1)
like "$note" "LOST during stage" "node1: the stalled window ended by liveness, not by the step timeout"
resumed=$(jq -r 'select(.node == "node1") | .message // empty' "$CLUSTER_DIR/s1.json" | sed -n 's/.*agent holds \([0-9]*\) of [0-9]* bytes.*/\1/p' | head -1)
ok "node1's restarted agent took up its partial file: ${resumed:-0} of $size bytes were not sent again" \
    test "${resumed:-0}" -ge 4194304
is "$(versions)" "1.1.0 1.1.0 1.1.0 " "every node runs 1.1.0"
is "$(node_exec node1 sha256sum /opt/gamesrv/bin/gamesrv | cut -d' ' -f1)" "$sha" \
    "node1's binary is the artifact, byte for byte (sha256)"
is "$(node_exec node1 sh -c "ls /var/lib/baton/staging/gamesrv/ | grep -c partial")" 0 "no partial file left on node1"

# 2. A partial file that is not the artifact's beginning (a disk error, a hand copy): taken up,
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

# 3. The same rollout again: node1 and node3 kept the verified artifact from the refused run, so
#    the question at the transfer's start is all they are sent; node2 gets it whole.
out=$("$BATON" rollout --json "$f" 2>"$CLUSTER_DIR/s3.err")
is "$?" 0 "the same rollout again: exit 0"
printf '%s\n' "$out" >"$CLUSTER_DIR/s3.json"
is "$(stage_checks "$CLUSTER_DIR/s3.json" | sort | tr '\n' ';')" \
    "node1=true held already (sha256 verified on arrival);node2=true binary received, sha256 verified;node3=true held already (sha256 verified on arrival);" \
    "node1 and node3 held the artifact (nothing sent again), node2 received it"
is "$(versions)" "1.2.0 1.2.0 1.2.0 " "every node runs 1.2.0"
done_testing
