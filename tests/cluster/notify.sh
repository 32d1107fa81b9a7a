#!/bin/bash
# notify.sh: a rollout file's `notify:` targets on a real cluster (2 nodes, one database), with
# tests/fixtures/receiver.py as the receivers: every event a target takes arrives once, in the
# order the rollout emitted it (the same events as --json prints, filtered by `on:`), as JSON or
# in the Slack form; a receiver that answers 500 twice gets them on the retries; a receiver that
# never answers and one that is down hold neither the rollout nor the other targets (it ends
# exit 0, the receiver that is up gets every event, the coordinator exits within the grace after
# its summary, saying what was not delivered, without the URLs' tokens); a bad target is refused
# naming the line.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

receivers=()
stop_receivers() { [ ${#receivers[@]} = 0 ] || kill "${receivers[@]}" 2>/dev/null; }
cluster_sweep
trap 'stop_receivers; cluster_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ok "cluster: 2 nodes on gamesrv 1.0.0, one shared database" baton_cluster ntfy 2 1.0.0 ||
    { done_testing; exit 1; }
# Ports of this test's own: ten per PG_TEST_PORT (runs side by side use neighbouring ones),
# the first four here, the sixth in webhook.sh.
base=$((40000 + ${PG_TEST_PORT:-55432} % 1000 * 10))
listening() { ss -ltn "sport = :$1" | grep -q LISTEN; }
receiver() { # NAME PORT [ARGS]: starts one, waits until it listens
    rm -f "$CLUSTER_DIR/$1.log.tries"
    tests/fixtures/receiver.py --port "$2" --log "$CLUSTER_DIR/$1.log" "${@:3}" &
    receivers+=($!)
    wait_for 10 listening "$2"
}
ok "receiver json listens" receiver json $base
ok "receiver slack listens (answers 500 to its first 2 POSTs)" receiver slack $((base + 1)) --fail 2

with_notify() { # FILE: appends the two targets
    cat >>"$1" <<YML
notify:
  - url: http://127.0.0.1:$base/baton
  - url: http://127.0.0.1:$((base + 1))/hook
    format: slack
    on: [started, finished]
YML
    echo "$1"
}
# What a target taking every kind should get: the --json events of the kinds notify.h names.
kinds='select(.event == "start" or .event == "paused" or (.event == "step" and .ok == false) or .event == "rollback" or .event == "halt" or .event == "summary")'
lines() { wc -l <"$CLUSTER_DIR/$1.log"; }

# --- a rollout that succeeds ---------------------------------------------------------------------
f=$(with_notify "$(rollout_file 1.1.0)")
"$BATON" rollout --json "$f" >"$CLUSTER_DIR/r1.json" 2>"$CLUSTER_DIR/r1.err"
is "$?" 0 "rollout to 1.1.0 with two targets: exit 0"
cat "$CLUSTER_DIR/r1.err" >&2
id=$(jq -r 'select(.event == "start") | .rollout' "$CLUSTER_DIR/r1.json")
want=$(jq -c "$kinds" "$CLUSTER_DIR/r1.json")
ok "the json target got its events before the coordinator exited" test "$(lines json)" -ge 2
is "$(cat "$CLUSTER_DIR/json.log")" "$want" \
    "json: every event of those kinds, once, in order, exactly as --json printed it ($(jq -r .event <<<"$want" | tr '\n' ' '))"
is "$(jq -r .text "$CLUSTER_DIR/slack.log" | sed 's/: done: .*/: done/')" \
    "baton: rollout $id started: gamesrv -&gt; 1.1.0 on 2 nodes
baton: rollout $id of gamesrv ended (exit 0): done" \
    "slack: started and finished only, as sentences (> escaped as Slack asks)"
is "$(cat "$CLUSTER_DIR/slack.log.tries")" 4 "slack: 4 POSTs for 2 events (its first 2 answered 500, then retried)"
unlike "$(cat "$CLUSTER_DIR/r1.err")" "not delivered|gave up" "nothing was left undelivered"

# --- a rollout whose verify fails: node_failed and rolled_back ----------------------------------
: >"$CLUSTER_DIR/json.log"
f=$(with_notify "$(rollout_file 1.2.0+health)")
"$BATON" rollout --json "$f" >"$CLUSTER_DIR/r2.json" 2>"$CLUSTER_DIR/r2.err"
is "$?" 3 "rollout to a 1.2.0 that never turns healthy: exit 3"
want=$(jq -c "$kinds" "$CLUSTER_DIR/r2.json")
is "$(cat "$CLUSTER_DIR/json.log")" "$want" \
    "json: once each, in order ($(jq -r '.event + (if .event == "step" then "(" + .step + " failed)" else "" end)' <<<"$want" | tr '\n' ' '))"
like "$(jq -r .event "$CLUSTER_DIR/json.log" | tr '\n' ' ')" "^start step rollback .*summary $" \
    "json: the failed step and the rollback are among them"

# --- a receiver that never answers, one that is down, one that is up ----------------------------
kill "${receivers[0]}"
wait "${receivers[0]}" 2>/dev/null
ok "receiver hang listens (and never answers)" receiver hang $((base + 2)) --hang
ok "receiver json listens again" receiver json $base
f=$(rollout_file 1.2.0)
cat >>"$f" <<YML
notify:
  - url: http://127.0.0.1:$((base + 2))/hang?token=s3cret-hang
  - url: http://127.0.0.1:$((base + 3))/down?token=s3cret-down
  - url: http://127.0.0.1:$base/baton
YML
"$BATON" rollout --json "$f" >"$CLUSTER_DIR/r3.json" 2>"$CLUSTER_DIR/r3.err"
code=$?
ended=$(date +%s%3N)
cat "$CLUSTER_DIR/r3.err" >&2
is "$code" 0 "rollout to 1.2.0 with a receiver that never answers and one that is down: exit 0"
is "$(node_versions)" "1.2.0 1.2.0 " "every node runs 1.2.0"
is "$(cat "$CLUSTER_DIR/json.log")" "$(jq -c "$kinds" "$CLUSTER_DIR/r3.json")" \
    "the receiver that is up got every event, once, in order: the others held only their own"
summary_at=$(jq -r 'select(.event == "summary") | .at' "$CLUSTER_DIR/r3.json")
after_ms=$((ended - $(date -d "$summary_at" +%s%3N)))
ok "the coordinator exited ${after_ms} ms after its summary: the 3 s grace (a try in flight ends with it, within a second), not a 5 s try or the 15.5 s of retries" \
    test "$after_ms" -lt 6000
like "$(cat "$CLUSTER_DIR/r3.err")" "notify http://127.0.0.1:$((base + 3)): [0-9]+ events? not delivered \(.*(refused|connect)" \
    "it says how many events did not reach the receiver that is down, and why"
# Its try is cut by the grace's end, or (when the grace ends between a 5 s try that timed out and
# the retry after it, 500 ms later) the last try's own words: no answer either way.
like "$(cat "$CLUSTER_DIR/r3.err")" "notify http://127.0.0.1:$((base + 2)): [0-9]+ events? not delivered \((no answer before the rollout's end plus its grace|Operation timed out after [0-9]+ milliseconds with 0 bytes received)\)" \
    "and the one that never answered"
unlike "$(cat "$CLUSTER_DIR/r3.err")" "s3cret" "no URL's token is printed (scheme, host and port only)"

# --- bad targets: refused, naming the line, nothing changed -------------------------------------
f=$(rollout_file 1.1.0)
printf 'notify:\n  - url: ftp://example.org/x\n' >>"$f"
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 1 "an ftp:// target: exit 1"
like "$out" "$(basename "$f"):[0-9]+: notify\[0\]\.url: must be an http:// or https:// URL" "named with its line"
f=$(rollout_file 1.1.0)
printf 'notify:\n  - url: http://127.0.0.1:1/x\n    on: [started, deployed]\n' >>"$f"
out=$("$BATON" plan "$f" 2>&1)
is "$?" 1 "an unknown kind in on: exit 1"
like "$out" "on\[\]: 'deployed' is not one of started, paused, node_failed, rolled_back, halted, finished" \
    "it lists the kinds there are"
is "$(node_versions)" "1.2.0 1.2.0 " "no node changed"
done_testing
