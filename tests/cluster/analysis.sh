#!/bin/bash
# analysis.sh: a rollout file's `analysis:` on a real cluster (3 nodes, batches [1, 2]), judged
# by Debian's Prometheus scraping each node's gamesrv (GET /metrics: requests and errors) while
# a client sends every node a request every 20 ms. What players see, not what the probe sees: a
# release whose every API request fails (fault `errors`) still answers /healthcheck 200 and
# passes verify. Cases: baton plan shows each node's query and Prometheus' answer, refuses a
# query Prometheus refuses or a Prometheus that is down (exit 2), and a bad file names the line
# (exit 1); a canary that fails its node check is rolled back and no other node stops (exit 3);
# a good release passes every measurement, each node committing only after its analysis; a
# canary whose batch fails its bake (its nodes held uncommitted until then) is rolled back; with
# Prometheus down the rollout pauses with the node verified and uncommitted, and `baton resume`
# (Prometheus back) goes on, the next batch waiting for the canary's bake (a bake held the same
# way: resume counts it as passed, the canary commits); a frozen Prometheus
# (SIGSTOP) pauses it at each query's timeout, and `baton abort` rolls the node back; a
# coordinator killed after a node's verify leaves it uncommitted, and the resume measures it
# again before its commit.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
. tests/lib/prometheus.sh
BATON=${BUILD:-build}/baton

cluster_sweep
trap 'prom_stop; cluster_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ok "cluster: 3 nodes on gamesrv 1.0.0, one shared database" baton_cluster analysis 3 1.0.0 ||
    { done_testing; exit 1; }
ok "Prometheus scraping the three nodes" prom_start node1 node2 node3
ok "a client sending each node a request every 20 ms" prom_load_start node1 node2 node3
for n in node1 node2 node3; do ok "Prometheus sees $n up" prom_wait_up "$n" 60; done
RATIO='sum(rate(gamesrv_errors_total{node="{{node}}"}[5s])) / sum(rate(gamesrv_requests_total{node="{{node}}"}[5s]))'
has_ratio() { [ -n "$(prom_query "${RATIO//\{\{node\}\}/$1}" 2>/dev/null | grep -v NaN)" ]; }
ratio_is_zero() { [ "$(prom_query "${RATIO//\{\{node\}\}/$1}" 2>/dev/null)" = 0 ]; }
for n in node1 node2 node3; do ok "$n's error ratio has a value" wait_for 30 has_ratio "$n"; done

rollout_id() { sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$1"; }
# FILE [URL] [NODE-CHECK-QUERY]: the file with batches [1, 2] and an analysis (the node check:
# the error ratio below 0.1, 2 measurements 2 s apart); BAKE=1 adds a bake over the batch.
with_analysis() {
    local f=$1 url=${2:-$PROM_URL} q=${3:-$RATIO}
    {
        echo "batches: [1, 2]"
        echo "analysis:"
        echo "  prometheus: $url"
        echo "  timeout: 2s"
        if [ "${CHECKS:-1}" = 1 ]; then
            echo "  checks:"
            echo "    - name: error-rate"
            printf "      query: '%s'\n" "$q"
            echo "      success: result < 0.1"
            echo "      interval: 2s"
            echo "      count: 2"
        fi
        if [ "${BAKE:-0}" = 1 ]; then
            echo "  bake:"
            echo "    - name: batch-errors"
            printf "      query: '%s'\n" "${RATIO//\{\{node\}\}/\{\{nodes\}\}}" | sed 's/node="/node=~"/g'
            echo "      success: result < 0.1"
            echo "      interval: 2s"
            echo "      count: 2"
        fi
    } >>"$f"
    echo "$f"
}
export BATON_TEST_ROLLOUT_MIN_HEALTHY=1s
# The node and step of each step, rollback, analysis and bake event of a --json run, in order.
trail() { jq -r 'select(.event == "step" or .event == "rollback" or .event == "analysis" or .event == "bake") |
    "\(if (.node // "") == "" then "-" else .node end) \(.event) \(.step // .verdict // .batch)"' "$1" | tr '\n' ';'; }

# --- baton plan: each node's query, asked once ---------------------------------------------------
out=$(NO_COLOR=1 "$BATON" plan "$(with_analysis "$(rollout_file 1.1.0)")" 2>&1)
is "$?" 0 "baton plan with an analysis Prometheus answers: exit 0"
printf '%s\n' "$out" >&2
is "$(printf '%s\n' "$out" | grep -c 'analysis error-rate: 0 now (passes < 0.1)')" 3 \
    "each node's error ratio, 0 now, and that it passes < 0.1"
out=$("$BATON" plan "$(with_analysis "$(rollout_file 1.1.0)")" --json 2>/dev/null)
is "$(printf '%s\n' "$out" | jq -r 'select(.event == "plan_node") | .analysis[0].query' | grep -c 'node="node[123]"')" 3 \
    "--json: each node's query as sent, its name put in"
out=$(NO_COLOR=1 "$BATON" plan "$(with_analysis "$(rollout_file 1.1.0)" "" 'sum(rate(gamesrv_errors_total[5s]) / ')" 2>&1)
is "$?" 2 "a query Prometheus cannot parse: exit 2"
like "$out" "REFUSED: analysis error-rate: Prometheus: bad_data: .*parse error" "it says Prometheus' words, under each node"
out=$(NO_COLOR=1 "$BATON" plan "$(CHECKS=0 BAKE=1 with_analysis "$(rollout_file 1.1.0)")" 2>&1)
is "$?" 0 "baton plan with a bake: exit 0"
like "$out" "analysis bake batch-errors \(as batch 1's: node1\): 0 now \(passes < 0.1\)" \
    "the bake's query as batch 1's would read, and Prometheus' answer"
dead=http://$CLUSTER_HOST_IP:$((PROM_TEST_PORT + 100))
out=$(NO_COLOR=1 "$BATON" plan "$(with_analysis "$(rollout_file 1.1.0)" "$dead")" 2>&1)
is "$?" 2 "a Prometheus that does not answer: exit 2"
like "$out" "REFUSED: analysis error-rate: Prometheus did not answer: .*" "it says so, under each node"
f=$(with_analysis "$(rollout_file 1.1.0)" "" 'rate(x{node="{{nod}}"}[5s])')
out=$("$BATON" plan "$f" 2>&1)
is "$?" 1 "a query naming a word there is not: exit 1"
like "$out" "$(basename "$f"):[0-9]+: analysis.checks\[0\]\.query: \{\{nod\}\} is not a word it knows" \
    "it names the file, the line and the field"

# --- a canary healthy by its probe, failing its query: rolled back, no other node stops -----------
stops=$(cluster_stops)
# Its stability window 6 s long: the first measurement (2 s in) fails while its verify runs.
f=$(with_analysis "$(BATON_TEST_ROLLOUT_MIN_HEALTHY=6s rollout_file 1.1.0+errors)")
"$BATON" rollout "$f" --json >"$CLUSTER_DIR/e.json" 2>"$CLUSTER_DIR/e.err"
is "$?" 3 "a canary whose error ratio is 1: exit 3, rolled back"
cat "$CLUSTER_DIR/e.err" >&2
like "$(trail "$CLUSTER_DIR/e.json")" "^node1 step stop;.*node1 step start;node1 analysis failure;node1 step verify;node1 rollback rollback;$" \
    "node1: its first measurement failed during its stability window, its verify passed (the probe green), rolled back"
is "$(jq -r 'select(.event == "step" and .step == "verify") | .ok' "$CLUSTER_DIR/e.json")" true \
    "the health probe alone would have passed it"
like "$(jq -r 'select(.event == "summary") | .message' "$CLUSTER_DIR/e.json")" \
    "FAILED on node1: analysis: error-rate failed: [0-9.]+ is not < 0.1 \(1 of 1 measurements failed; failure_limit 0\)" \
    "the summary says which check failed, with the number"
is "$(jq -r 'select(.event == "step" and .node != "node1")' "$CLUSTER_DIR/e.json")" "" "no step ran on node2 or node3"
is "$(cluster_stops)" "$(set -- $stops; echo "$(($1 + 2)) $2 $3 ")" \
    "node1 stopped twice (for 1.1.0, for its rollback), node2 and node3 never"
is "$(node_versions)" "1.0.0 1.0.0 1.0.0 " "every node runs 1.0.0"

# --- a good release: every measurement passes, each node commits after its analysis ---------------
# The canary's errors first leave the query's 5 s window: node1's first measurement comes 2 s
# after its start, which can be within 5 s of the canary's last errors (it was rolled back just
# now), and a faster run then measured them (0.33).
ok "node1's error ratio is 0 again (the canary's errors out of the 5 s window)" \
    wait_for 30 ratio_is_zero node1
f=$(with_analysis "$(rollout_file 1.1.0)")
"$BATON" rollout "$f" --json >"$CLUSTER_DIR/g.json" 2>"$CLUSTER_DIR/g.err"
is "$?" 0 "a release players are fine with: exit 0"
cat "$CLUSTER_DIR/g.err" >&2
for n in node1 node2 node3; do
    like "$(trail "$CLUSTER_DIR/g.json" | tr ';' '\n' | grep "^$n " | tr '\n' ';')" \
        "$n step verify;$n analysis success;$n analysis success;$n step commit;" \
        "$n: two measurements passed between its verify and its commit"
done
is "$(jq -r 'select(.event == "analysis") | .value' "$CLUSTER_DIR/g.json" | sort -u)" 0 "every measured ratio was 0"
is "$(node_versions)" "1.1.0 1.1.0 1.1.0 " "every node runs 1.1.0"

# --- a bake that fails: the canary's batch held uncommitted, then rolled back ----------------------
stops=$(cluster_stops)
f=$(CHECKS=0 BAKE=1 with_analysis "$(rollout_file 1.2.0+errors)")
"$BATON" rollout "$f" --json >"$CLUSTER_DIR/b.json" 2>"$CLUSTER_DIR/b.err"
is "$?" 3 "a canary batch whose bake fails: exit 3"
cat "$CLUSTER_DIR/b.err" >&2
like "$(trail "$CLUSTER_DIR/b.json")" "node1 step verify;- bake 1;- analysis failure;node1 rollback rollback;$" \
    "node1 verified, not committed; the bake of batch 1 failed; node1 rolled back"
like "$(jq -r 'select(.event == "halt") | .message' "$CLUSTER_DIR/b.json")" \
    "analysis: the bake of batch 1: batch-errors failed" "the halt names the bake and its check"
like "$(jq -r 'select(.event == "analysis") | .message' "$CLUSTER_DIR/b.json")" "batch-errors: " "the measurement is the bake's"
is "$(cluster_stops)" "$(set -- $stops; echo "$(($1 + 2)) $2 $3 ")" "node2 and node3 never stopped"
is "$(node_versions)" "1.1.0 1.1.0 1.1.0 " "every node runs 1.1.0"

# ID PID OUT: Prometheus back (its ratios there again), then `baton resume ID`; the paused
# coordinator PID (its output in OUT) then finishes.
resume_with_prometheus() {
    local n
    ok "Prometheus back" prom_start node1 node2 node3
    for n in node1 node2 node3; do ok "its error ratio for $n" wait_for 60 has_ratio "$n"; done
    "$BATON" resume "$1" >/dev/null 2>&1
    is "$?" 0 "baton resume $1: exit 0 at once"
    wait "$2"
    is "$?" 0 "the rollout then finishes: exit 0"
    cat "$3" >&2
}

# --- the bake inconclusive (Prometheus down): paused, node1 uncommitted; resume counts it passed ---
prom_down() { _prom_end "$PROM_DIR/pid" 10; }
ok "Prometheus stopped" prom_down
f=$(CHECKS=0 BAKE=1 with_analysis "$(rollout_file 1.1.1)")
"$BATON" rollout "$f" >"$CLUSTER_DIR/q.out" 2>&1 &
pid=$!
bpaused() { grep -q "^PAUSED in batch 1 of 2: the bake of batch 1 is inconclusive" "$CLUSTER_DIR/q.out"; }
ok "the rollout pauses on the bake's inconclusive measurement" wait_for 90 bpaused
id=$(rollout_id "$CLUSTER_DIR/q.out")
is "$(state_field node1 step)" verify "node1 verified, its commit waiting for the bake"
resume_with_prometheus "$id" "$pid" "$CLUSTER_DIR/q.out"
like "$(tr '\n' ';' <"$CLUSTER_DIR/q.out")" "continued by baton resume: the analysis counts as passed;  node1 +commit +ok[^;]*;\[2/3\] node2" \
    "the bake counted as passed, node1 committed, then batch 2"
is "$(node_versions)" "1.1.1 1.1.1 1.1.1 " "every node runs 1.1.1"

# --- Prometheus down: the rollout pauses, the node verified and uncommitted; resume goes on -------
# A 20 s stability window: the pause comes 2 s into node1's verify, the resume before its end;
# node1's verify ends, then it goes on (one call at a time to its agent).
ok "Prometheus stopped" prom_down
f=$(BAKE=1 with_analysis "$(BATON_TEST_ROLLOUT_MIN_HEALTHY=20s rollout_file 1.2.0)")
"$BATON" rollout "$f" >"$CLUSTER_DIR/p.out" 2>&1 &
pid=$!
paused() { grep -q "^PAUSED in batch 1 of 2: node1's analysis is inconclusive" "$CLUSTER_DIR/p.out"; }
ok "the rollout pauses on node1's inconclusive analysis" wait_for 90 paused
id=$(rollout_id "$CLUSTER_DIR/p.out")
cat "$CLUSTER_DIR/p.out" >&2
like "$(cat "$CLUSTER_DIR/p.out")" "error-rate: Prometheus did not answer" "it says why there is no number"
like "$(cat "$CLUSTER_DIR/p.out")" "\`baton resume $id\` counts it as passed and goes on, \`baton abort $id\` rolls it back" \
    "and how to go on or back"
is "$(state_field node1 step)" start "node1 in its verify (its last step done: start), no commit sent"
is "$(node_versions)" "1.2.0 1.1.1 1.1.1 " "node1 on 1.2.0, the others untouched"
like "$("$BATON" list)" "$id +paused" "baton list: paused"
ok "the coordinator waits" kill -0 "$pid"
resume_with_prometheus "$id" "$pid" "$CLUSTER_DIR/p.out"
like "$(tr '\n' ';' <"$CLUSTER_DIR/p.out")" "continued by baton resume: the analysis counts as passed;[^[]*node1 +verify +ok[^;]*;\[1/3\] node1 \(analysis passed\)" \
    "resumed during node1's verify: its verify ended, then it went on"
like "$(tr '\n' ';' <"$CLUSTER_DIR/p.out")" "batch 1 of 2: its bake[^;]*;  batch 1 +analysis success[^;]*;  batch 1 +analysis success[^;]*;  node1 +commit +ok[^;]*;\[2/3\] node2 \(upgrading\)" \
    "then the bake of batch 1 passed, node1 committed, and only then batch 2 began"
is "$(node_versions)" "1.2.0 1.2.0 1.2.0 " "every node runs 1.2.0"

# --- Prometheus frozen (SIGSTOP): each query ends at its timeout; baton abort rolls node1 back ----
frozen=$(cut -d' ' -f1 "$PROM_DIR/pid")
ok "Prometheus frozen (SIGSTOP)" kill -STOP "$frozen"
stops=$(cluster_stops)
f=$(with_analysis "$(rollout_file 2.0.0)")
"$BATON" rollout "$f" >"$CLUSTER_DIR/a.out" 2>&1 &
pid=$!
paused() { grep -q "^PAUSED in batch 1 of 2: node1's analysis" "$CLUSTER_DIR/a.out"; }
ok "paused on node1's analysis" wait_for 90 paused
id=$(rollout_id "$CLUSTER_DIR/a.out")
like "$(cat "$CLUSTER_DIR/a.out")" "error-rate: Prometheus did not answer: .*[Tt]imed out after 20[0-9][0-9] mill"     "the query ended at its timeout (2 s), the coordinator did not hang"
"$BATON" abort "$id" >"$CLUSTER_DIR/abort.out" 2>&1
wait "$pid"
is "$?" 3 "baton abort: the rollout exits 3"
kill -CONT "$frozen"
cat "$CLUSTER_DIR/a.out" >&2
like "$(cat "$CLUSTER_DIR/a.out")" "baton abort during its analysis" "node1: stopped during its analysis"
is "$(node_versions)" "1.2.0 1.2.0 1.2.0 " "node1 back on 1.2.0, the others untouched"
is "$(cluster_stops)" "$(set -- $stops; echo "$(($1 + 2)) $2 $3 ")" "node2 and node3 never stopped"

# --- the coordinator killed right after node1's verify: the resume runs its analysis again -------
for n in node1 node2 node3; do ok "Prometheus thawed: the error ratio for $n" wait_for 60 has_ratio "$n"; done
f=$(with_analysis "$(rollout_file 2.0.0)")
BATON_FAILPOINT=kill-after:node1:verify "$BATON" rollout "$f" >"$CLUSTER_DIR/k.out" 2>&1
is "$?" 137 "a rollout killed right after node1's verify (SIGKILL)"
id=$(rollout_id "$CLUSTER_DIR/k.out")
is "$(state_field node1 step)" verify "node1 verified, not committed"
"$BATON" resume "$id" --json >"$CLUSTER_DIR/k.json" 2>"$CLUSTER_DIR/k.err"
is "$?" 0 "baton resume $id: exit 0"
cat "$CLUSTER_DIR/k.err" >&2
like "$(trail "$CLUSTER_DIR/k.json")" "^node1 analysis success;node1 analysis success;node1 step commit;"     "the resume measured node1 again (twice) before its commit, no step repeated"
is "$(node_versions)" "2.0.0 2.0.0 2.0.0 " "every node runs 2.0.0"
done_testing
