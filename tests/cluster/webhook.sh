#!/bin/bash
# webhook.sh: a rollout file's `webhooks:` gates on a real cluster (2 nodes, one at a time, one
# database), with tests/fixtures/receiver.py as the gate: a gate before the rollout that answers
# 500 refuses it (exit 2) after its retries with nothing stopped; a gate before the batch that
# answers 500 halts after the first batch, the second node untouched; a gate that fails once
# and then says yes lets the rollout run, and it was sent the rollout's state; bad gates are
# refused naming the line.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

receiver=
cluster_sweep
trap '[ -z "$receiver" ] || kill "$receiver" 2>/dev/null; cluster_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ok "cluster: 2 nodes on gamesrv 1.0.0, one shared database" baton_cluster hook 2 1.0.0 ||
    { done_testing; exit 1; }
port=$((40000 + ${PG_TEST_PORT:-55432} % 1000 * 10 + 5)) # ten per PG_TEST_PORT: notify.sh's
URL=http://127.0.0.1:$port/gate
listening() { ss -ltn "sport = :$port" | grep -q LISTEN; }
gate() { # ARGS: a fresh receiver (its log emptied) answering as told
    [ -z "$receiver" ] || { kill "$receiver"; wait "$receiver" 2>/dev/null; }
    rm -f "$CLUSTER_DIR/gate.log" "$CLUSTER_DIR/gate.log.tries"
    tests/fixtures/receiver.py --port "$port" --log "$CLUSTER_DIR/gate.log" "$@" &
    receiver=$!
    wait_for 10 listening
}
tries() { cat "$CLUSTER_DIR/gate.log.tries" 2>/dev/null || echo 0; }
with_gate() { # FILE AT RETRIES
    printf 'webhooks:\n  - url: %s\n    at: %s\n    timeout: 2s\n    retries: %s\n' "$URL" "$2" "$3" >>"$1"
    echo "$1"
}

# --- before the rollout: a no refuses it -----------------------------------------------------------
ok "a gate that always answers 500" gate --fail 1000
stops=$(cluster_stops)
out=$(NO_COLOR=1 "$BATON" rollout "$(with_gate "$(rollout_file 1.1.0)" "[before_rollout]" 1)" 2>&1)
is "$?" 2 "a rollout whose before_rollout gate answers 500: exit 2"
printf '%s\n' "$out" >&2
like "$out" "refused: webhook http://127.0.0.1:$port before the rollout: HTTP 500 after 2 tries; nothing was stopped, nothing is left reserved" \
    "it names the gate, the answer and the tries"
is "$(tries)" 2 "the gate was asked twice (retries: 1)"
is "$(cluster_stops)" "$stops" "nothing was stopped"
is "$(node_versions)" "1.0.0 1.0.0 " "no node changed"

# --- before a batch: a no halts after the first ----------------------------------------------------
ok "the gate again, always 500" gate --fail 1000
out=$(NO_COLOR=1 "$BATON" rollout "$(with_gate "$(rollout_file 1.1.0)" "[before_batch]" 0)" 2>&1)
code=$?
printf '%s\n' "$out" >&2
ok "a rollout whose before_batch gate answers 500: not done (exit $code)" test "$code" -ne 0
like "$out" "webhook http://127.0.0.1:$port before batch 2: HTTP 500 after 1 try" "it halts naming the gate and the batch"
is "$(tries)" 1 "the gate was asked once, before batch 2 (retries: 0; not before the first)"
is "$(node_versions)" "1.1.0 1.0.0 " "node1 (batch 1) runs 1.1.0, node2 was never started"

# --- a gate that fails once, then says yes -------------------------------------------------------
ok "a gate that answers 500 once, then 200" gate --fail 1
out=$(NO_COLOR=1 "$BATON" rollout "$(with_gate "$(rollout_file 1.2.0)" "[before_rollout, before_batch]" 1)" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "the rollout runs: exit 0"
is "$(node_versions)" "1.2.0 1.2.0 " "every node runs 1.2.0"
is "$(tries)" 3 "3 POSTs: the refused one, its retry, the gate before batch 2"
is "$(jq -r '"\(.gate) \(.batch)/\(.of) \(.service) \(.version)"' "$CLUSTER_DIR/gate.log" | tr '\n' ';')" \
    "before_rollout 1/2 gamesrv 1.2.0;before_batch 2/2 gamesrv 1.2.0;" \
    "the gate got the rollout's state each time: which gate, the batch, the service and version"
is "$(jq -r 'select(.gate == "before_batch") | .nodes | map("\(.node)=\(.state)") | join(" ")' "$CLUSTER_DIR/gate.log")" \
    "node1=done node2=reserved" "before batch 2: node1 done, node2 reserved"

# --- bad gates: refused, naming the line, nothing changed --------------------------------------------
f=$(rollout_file 1.1.0)
printf 'webhooks:\n  - url: %s\n    at: [after_party]\n' "$URL" >>"$f"
out=$("$BATON" plan "$f" 2>&1)
is "$?" 1 "an unknown gate: exit 1"
like "$out" "at\[\]: 'after_party' is not one of before_rollout, before_batch" "it lists the gates there are"
f=$(rollout_file 1.1.0)
printf 'webhooks:\n  - url: %s\n    retries: 9\n' "$URL" >>"$f"
out=$("$BATON" plan "$f" 2>&1)
is "$?" 1 "retries: 9: exit 1"
like "$out" "$(basename "$f"):[0-9]+: webhooks\[0\]\.retries" "named with its line"
is "$(node_versions)" "1.2.0 1.2.0 " "no node changed"
done_testing
