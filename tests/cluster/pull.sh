#!/bin/bash
# pull.sh: an artifact named by URL is pulled by every agent itself from the fleet's mirror
# (Debian's nginx on the host address), checked against the rollout file's sha256 before it is
# kept, and nothing stops before every node holds it. The bad day: a 404 and a wrong digest are
# refused before any stop; the mirror stopped mid-transfer and started again (each agent goes
# on from what it had, with Range and If-Range); a pull slower than `liveness` is reported, not
# LOST; Ctrl-C mid-pull stops nothing and keeps what arrived; https against a test CA, and a
# node without that CA refused.
#
# The artifacts are the fixture's builds with 17 MiB of random bytes after the ELF image; the
# mirror sends 3 MB/s per connection where a test needs a transfer in flight (about 6 s).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

cluster_sweep
trap 'mirror_stop; cluster_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
export BATON_TEST_PULL_CA=/etc/baton/mirror-ca.pem
ok "cluster: 3 nodes on gamesrv 1.0.0" baton_cluster pull 3 1.0.0 || { done_testing; exit 1; }
ok "the mirror answers on $MIRROR_HOST:$MIRROR_PORT" mirror_start 0

padded() { padded_artifact "$1" $((17 * 1024 * 1024 + 12345)) "$MIRROR_DIR/gamesrv-$1.bin"; }
url_rollout() { # VERSION URL SHA: a rollout file whose artifact is URL
    local f
    f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s BATON_TEST_LIVENESS=3s \
        rollout_file "$1" "$ROLLOUT_DIR/pull-$1-$RANDOM.yml")
    sed -i "s|^artifact: .*|artifact: $2\nsha256: $3|" "$f"
    echo "$f"
}
staged() { echo "/var/lib/baton/staging/gamesrv/$1${2:-}"; } # SHA [SUFFIX]
node_size() { node_exec "$1" stat -c %s "$2" 2>/dev/null || echo 0; }
pulled() { [ "$(node_size "$2" "$(staged "$3" .pull)")" -ge "$1" ]; } # BYTES NODE SHA
stage_check() { # JSON-LINES NODE: "ok message" of NODE's stage check
    jq -r "select(.event == \"check\" and .phase == \"stage\" and .node == \"$2\") | \"\(.ok) \(.message)\"" "$1"
}
progress_of() { jq -r "select(.event == \"progress\" and .node == \"$2\") | .message" "$1"; } # JSON NODE
leftovers() { # NODE: pull files left in the staging folder
    node_exec "$1" sh -c 'ls /var/lib/baton/staging/gamesrv/ 2>/dev/null | grep -c "\.pull"'
}
served_to() { mirror_log | awk -v ip="$(node_ip "$1")" '$1 == ip'; } # NODE: its requests

# 1. Refused before any stop: a file the mirror does not have (404), and one that is not the
#    artifact the rollout file names (its digest differs). Nothing kept, nothing left over.
big=$(padded 1.1.0)
sha=$(sha256sum "$big" | cut -d' ' -f1)
stops=$(cluster_stops)
f=$(url_rollout 1.1.0 "$(mirror_url missing.bin)" "$sha")
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "a URL the mirror answers with 404: exit 2"
printf '%s\n' "$out" >&2
like "$out" "artifact $(mirror_url missing.bin) \(pulled by each agent" "the start names the URL"
like "$out" "stage +node1 +FAIL .*$(mirror_url missing.bin): HTTP 404" "node1's stage check names the URL and the 404"
cp "$(gamesrv_bin 1.2.0)" "$MIRROR_DIR/other.bin"
f=$(url_rollout 1.1.0 "$(mirror_url other.bin)" "$sha")
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "a URL serving another file: exit 2"
printf '%s\n' "$out" >&2
like "$out" "node2 .*other.bin has sha256 [0-9a-f]{64}, expected $sha" "node2 names both digests"
is "$(cluster_stops)" "$stops" "no unit was stopped anywhere"
is "$(node_size node2 "$(staged "$sha")")" 0 "nothing was kept under the digest"
is "$(leftovers node2)" 0 "no partial file left"

# 2. The mirror slowed (3 MB/s), stopped once node1 holds 4 MiB, started again: each agent goes
#    on from what it had. liveness is 3 s and each pull takes longer: reported, never LOST.
mirror_start 3m
: >"$(_mirror_dir)/access.log"
f=$(url_rollout 1.1.0 "$(mirror_url gamesrv-1.1.0.bin)" "$sha")
"$BATON" rollout --json "$f" >"$CLUSTER_DIR/p2.json" 2>"$CLUSTER_DIR/p2.err" &
pid=$!
# node2's agent killed (main PID) mid-pull: systemd restarts it, the coordinator asks again,
# and the new agent goes on from the partial file the old one left.
ok "node2 pulls (2 MiB or more held)" wait_for 30 pulled 2097152 node2 "$sha"
node_exec node2 systemctl kill --kill-whom=main -s KILL baton-agent.service
ok "node2's agent came back (Restart=)" wait_for 20 agent_restarted node2 1
ok "node1 pulls (4 MiB or more held)" wait_for 30 pulled 4194304 node1 "$sha"
mirror_stop
held=$(node_size node1 "$(staged "$sha" .pull)")
attempt_failed() { progress_of "$CLUSTER_DIR/p2.json" node1 | grep -q 'the last failed'; }
ok "node1's agent says its attempt failed while the mirror is down" wait_for 30 attempt_failed
mirror_start 3m
wait "$pid"
is "$?" 0 "the rollout goes on and ends: exit 0"
cat "$CLUSTER_DIR/p2.err" >&2
is "$(node_versions)" "1.1.0 1.1.0 1.1.0 " "every node runs 1.1.0"
for n in $CLUSTER_NODES; do
    is "$(node_exec "$n" sha256sum /opt/gamesrv/bin/gamesrv | cut -d' ' -f1)" "$sha" \
        "$n's binary is the artifact, byte for byte"
done
like "$(stage_check "$CLUSTER_DIR/p2.json" node1)" "^true pulled from $(mirror_url gamesrv-1.1.0.bin) \(17.[0-9] MiB\), sha256 verified" \
    "node1's stage check: pulled, verified"
range=$(served_to node1 | awk '$2 == 206' | sed -n 's/.*range="bytes=\([0-9]*\)-".*/\1/p' | head -1)
ok "node1 asked for the rest with Range after the restart (from byte ${range:-none}, $held held when it stopped)" \
    test "${range:-0}" -ge "$held"
like "$(served_to node1 | awk '$2 == 206' | head -1)" 'if_range="[^"]+"' "with If-Range: the validator it kept"
size=$(stat -c %s "$big")
for n in node1 node2; do
    sent=$(served_to "$n" | awk '{s += $3} END {print s + 0}')
    ok "the mirror sent $n the artifact about once ($sent bytes for $size)" \
        test "$sent" -lt $((size + 2 * 1024 * 1024))
done
like "$(progress_of "$CLUSTER_DIR/p2.json" node2 | head -3)" "pulling $(mirror_url gamesrv-1.1.0.bin): [0-9.]+ MiB of 17.[0-9] MiB" \
    "node2's pull reported as it went"
lost() { jq -r "select(.node == \"$1\") | .message // empty" "$CLUSTER_DIR/p2.json" | grep -c LOST; }
is "$(lost node1) $(lost node3)" "0 0" "node1 and node3 not LOST while their pulls ran past liveness"
for n in $CLUSTER_NODES; do is "$(leftovers "$n")" 0 "no partial file left on $n"; done

# 3. Ctrl-C mid-pull: exit 2 before any stop; node1 keeps what arrived. What the mirror serves
#    at the URL is not 1.2.0 yet (the release is uploaded again below). The mirror sends 500 kB/s
#    so that the pull is still under way when its agent stops it.
mirror_start 500k
real=$(padded 1.2.0)
sha=$(sha256sum "$real" | cut -d' ' -f1)
mv "$real" "$CLUSTER_DIR/gamesrv-1.2.0.real"
head -c $((17 * 1024 * 1024)) /dev/urandom >"$MIRROR_DIR/gamesrv-1.2.0.bin"
stops=$(cluster_stops)
f=$(url_rollout 1.2.0 "$(mirror_url gamesrv-1.2.0.bin)" "$sha")
"$BATON" rollout "$f" >"$CLUSTER_DIR/p3.out" 2>&1 &
pid=$!
ok "node1 pulls (2 MiB or more held)" wait_for 30 pulled 2097152 node1 "$sha"
kill -INT "$pid"
wait "$pid"
is "$?" 2 "Ctrl-C during the pull: exit 2"
like "$(cat "$CLUSTER_DIR/p3.out")" "stage +node1 +FAIL .*interrupted" "node1's stage check says interrupted"
is "$(cluster_stops)" "$stops" "no unit was stopped anywhere"
kept=$(node_size node1 "$(staged "$sha" .pull)")
ok "node1 kept its partial file ($kept bytes)" test "$kept" -ge 2097152
# The pull goes on until its agent sees no one ask (PULL_ORPHAN_MS, 10 s), then stops.
pull_stopped() { node_exec node1 journalctl -u baton-agent -o cat --no-pager | grep -q 'no coordinator asked'; }
ok "node1's agent stops pulling when no coordinator asks any more" wait_for 30 pull_stopped
cp "$CLUSTER_DIR/gamesrv-1.2.0.real" "$MIRROR_DIR/gamesrv-1.2.0.bin.new"
mv "$MIRROR_DIR/gamesrv-1.2.0.bin.new" "$MIRROR_DIR/gamesrv-1.2.0.bin"

# 4. https with the test CA. node3's agent cannot read the CA file: its pull fails at once (no
#    retries), and nothing stops. node1 asks to go on from its partial file with the validator
#    it kept; the file changed on the mirror, so it comes whole (If-Range) and is never spliced.
#    With the CA on every node the same rollout ends.
ca=$(mirror_ca)
for n in node1 node2; do node_push "$n" "$ca" "$BATON_TEST_PULL_CA" 0644; done
mirror_start 0 tls
: >"$(_mirror_dir)/access.log"
f=$(url_rollout 1.2.0 "$(mirror_url gamesrv-1.2.0.bin)" "$sha")
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "node3 without the mirror's CA: exit 2"
printf '%s\n' "$out" >&2
like "$out" "stage +node3 +FAIL .*CA file $BATON_TEST_PULL_CA \\(pull.ca_file\\)" "node3's stage check names the CA file"
is "$(cluster_stops)" "$stops" "no unit was stopped anywhere"
like "$(served_to node1 | head -1)" '^[0-9.]+ 200 [0-9]+ range="bytes=[1-9][0-9]*-" if_range="[^"]+"' \
    "node1 asked to go on with If-Range; the file had changed: it came whole (200)"
like "$out" "stage +node1 +ok .*pulled from https://.*sha256 verified" "node1's pull over https verified"
node_push node3 "$ca" "$BATON_TEST_PULL_CA" 0644
out=$("$BATON" rollout --json "$f" 2>&1)
is "$?" 0 "with the CA on node3 too: exit 0"
printf '%s\n' "$out" >"$CLUSTER_DIR/p4.json"
like "$(stage_check "$CLUSTER_DIR/p4.json" node1)" "^true held already" "node1 held it already (pulled in the refused run)"
like "$(stage_check "$CLUSTER_DIR/p4.json" node3)" "^true pulled from https://" "node3 pulled it over https"
is "$(node_versions)" "1.2.0 1.2.0 1.2.0 " "every node runs 1.2.0"
for n in $CLUSTER_NODES; do
    is "$(node_exec "$n" sha256sum /opt/gamesrv/bin/gamesrv | cut -d' ' -f1)" "$sha" \
        "$n's binary is 1.2.0, byte for byte"
done

# 5. Through a proxy (pull.proxy): every agent told to use the mirror as its HTTP proxy pulls a
#    URL whose host no node can resolve; the mirror sees the absolute URL a proxy is asked for.
#    Version 9.9.9, which the artifact does not report: staged everywhere, then every pre-flight
#    refuses, nothing stops.
mirror_start 0
: >"$(_mirror_dir)/access.log"
for n in $CLUSTER_NODES; do
    BATON_TEST_PULL_PROXY="http://$MIRROR_HOST:$MIRROR_PORT" agent_config "$n" >"$CLUSTER_DIR/agent-$n.yml" &&
        node_push "$n" "$CLUSTER_DIR/agent-$n.yml" /etc/baton/agent.yml 0600 &&
        node_exec "$n" systemctl restart baton-agent
done
agents_up() { for n in $CLUSTER_NODES; do [ "$(node_exec "$n" systemctl is-active baton-agent)" = active ] || return 1; done; }
ok "the agents restarted with pull.proxy" wait_for 20 agents_up
padded 1.1.0 >/dev/null
sha=$(sha256sum "$MIRROR_DIR/gamesrv-1.1.0.bin" | cut -d' ' -f1)
for n in $CLUSTER_NODES; do node_exec "$n" sh -c "rm -f $(staged "$sha")"; done
f=$(url_rollout 1.1.0 "http://mirror.invalid/gamesrv-1.1.0.bin" "$sha")
sed -i 's/^version: .*/version: 9.9.9/' "$f"
stops=$(cluster_stops)
out=$("$BATON" rollout --json "$f" 2>&1)
is "$?" 2 "staged through the proxy, then refused at pre-flight (9.9.9): exit 2"
printf '%s\n' "$out" >"$CLUSTER_DIR/p5.json"
for n in $CLUSTER_NODES; do
    like "$(stage_check "$CLUSTER_DIR/p5.json" "$n")" "^true pulled from http://mirror.invalid/gamesrv-1.1.0.bin" \
        "$n pulled a host it cannot resolve, through the proxy"
done
is "$(mirror_log | grep -c 'GET http://mirror.invalid/gamesrv-1.1.0.bin HTTP')" 3 \
    "the mirror was asked three times, as a proxy is (the absolute URL)"
is "$(cluster_stops)" "$stops" "no unit was stopped anywhere"
mirror_stop
done_testing
