#!/bin/bash
# webhook.sh: a rollout file's `webhooks:` gates on a real cluster (2 nodes, one at a time, one
# database), with tests/fixtures/receiver.py as the gate: a gate before the rollout that answers
# 500 refuses it (exit 2) after its retries with nothing stopped; a gate before the batch that
# answers 500 halts after the first batch, the second node untouched; with on_failure:
# rollback-all, a gate before the commit that answers 500 rolls every verified node back (exit
# 3), one that says yes is asked once with every node verified; a gate that fails once and
# then says yes lets the rollout run, and it was sent the rollout's state; bad gates (and
# before_commit without rollback-all) are refused naming the line; a coordinator killed before
# the gate before the commit asks on resume, one killed after a commit does not ask again.
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
rollback_all() { # FILE: every node verified before any commits
    echo "on_failure: rollback-all" >>"$1"
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

# --- before the commit (rollback-all): a no rolls every node back -----------------------------------
ok "the gate again, always 500" gate --fail 1000
stops=$(cluster_stops)
out=$(NO_COLOR=1 "$BATON" rollout "$(with_gate "$(rollback_all "$(rollout_file 1.1.1)")" "[before_commit]" 1)" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 3 "a rollback-all rollout whose before_commit gate answers 500: exit 3, as a rollback-all that failed"
like "$out" "FAILED: webhook http://127.0.0.1:$port before the commit: HTTP 500 after 2 tries" \
    "it names the gate, the answer and the tries"
is "$(printf '%s\n' "$out" | grep -oE 'running 1\.1\.1|before the commit|back on [0-9.]+' | tr '\n' ';')" \
    "running 1.1.1;running 1.1.1;before the commit;back on 1.0.0;back on 1.1.0;before the commit;" \
    "asked once both nodes verified 1.1.1; then undone newest first: node2, then node1"
like "$out" "node1: rolled back to where it was" "node1 was rolled back"
like "$out" "node2: rolled back to where it was" "node2 was rolled back"
is "$(tries)" 2 "the gate was asked twice (retries: 1)"
is "$(cluster_stops)" "$(for s in $stops; do printf '%s ' $((s + 2)); done)" \
    "each node was stopped twice: for 1.1.1, then for its rollback (none was left untouched)"
is "$(node_versions)" "1.1.0 1.0.0 " "every node runs what it ran before"

# --- before the commit: a yes, asked once with every node verified ---------------------------------
ok "a gate that says yes" gate
out=$(NO_COLOR=1 "$BATON" rollout "$(with_gate "$(rollback_all "$(rollout_file 1.1.1)")" "[before_commit]" 1)" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "a rollback-all rollout whose before_commit gate says yes: exit 0"
is "$(node_versions)" "1.1.1 1.1.1 " "every node runs 1.1.1"
is "$(tries)" 1 "the gate was asked once"
is "$(jq -r '"\(.gate) \(.batch)/\(.of) \(.version) " + (.nodes | map("\(.node)=\(.state)") | join(" "))' "$CLUSTER_DIR/gate.log")" \
    "before_commit 2/2 1.1.1 node1=verified node2=verified" \
    "it was sent the last batch and every node verified, none committed"

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
like "$out" "at\[\]: 'after_party' is not one of before_rollout, before_batch, before_commit" "it lists the gates there are"
f=$(rollout_file 1.1.0)
printf 'webhooks:\n  - url: %s\n    retries: 9\n' "$URL" >>"$f"
out=$("$BATON" plan "$f" 2>&1)
is "$?" 1 "retries: 9: exit 1"
like "$out" "$(basename "$f"):[0-9]+: webhooks\[0\]\.retries" "named with its line"
# before_commit where each node commits as soon as it verifies: refused at load
ok "a gate that says yes" gate
stops=$(cluster_stops)
f=$(with_gate "$(rollout_file 1.1.1)" "[before_commit]" 0)
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 1 "before_commit with on_failure: halt (the default): exit 1, a bad rollout file"
like "$out" "$(basename "$f"):[0-9]+: webhooks\[0\]\.at: before_commit needs on_failure: rollback-all: with halt, each node commits as soon as it verifies" \
    "it names the line and the field, and says why"
is "$(tries)" 0 "the gate was not asked"
is "$(cluster_stops)" "$stops" "nothing was stopped"
is "$(node_versions)" "1.2.0 1.2.0 " "no node changed"

# --- before the commit, across resumes: asked until a commit was sent, then never again -----------
# The coordinator killed right after node2's verify (the gate not asked yet), its resume killed
# right after node1's commit, a second resume. One call at a time (max_in_flight: 1), so that
# node2's commit was not sent when the resume died.
ok "a gate that says yes" gate
f=$(with_gate "$(rollback_all "$(rollout_file 2.0.0)")" "[before_commit]" 0)
echo "max_in_flight: 1" >>"$f"
BATON_FAILPOINT=kill-after:node2:verify "$BATON" rollout "$f" >"$CLUSTER_DIR/killed.out" 2>&1
is "$?" 137 "a rollback-all rollout killed right after node2's verify (SIGKILL)"
id=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$CLUSTER_DIR/killed.out")
is "$(tries)" 0 "the gate was not asked yet"
BATON_FAILPOINT=kill-after:node1:commit "$BATON" resume "$id" >"$CLUSTER_DIR/killed.out" 2>&1
code=$?
cat "$CLUSTER_DIR/killed.out" >&2
is "$code" 137 "its resume killed right after node1's commit (SIGKILL)"
is "$(tries)" 1 "the resume asked the gate, once, before any commit"
is "$(jq -r '"\(.gate) \(.batch)/\(.of) " + (.nodes | map("\(.node)=\(.state)") | join(" "))' "$CLUSTER_DIR/gate.log")" \
    "before_commit 2/2 node1=verified node2=verified" \
    "both nodes verified when it asked: node1, verified by the run killed, waited for it too"
is "$(state_field node2 step)" verify "node2 verified, its commit not sent"
out=$(NO_COLOR=1 "$BATON" resume "$id" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton resume $id again: exit 0"
is "$(tries)" 1 "the gate was not asked again: its yes was taken when node1 committed"
is "$(state_field node2 step)" committed "node2 committed"
is "$(node_versions)" "2.0.0 2.0.0 " "every node runs 2.0.0"
done_testing
