#!/bin/bash
# freeze.sh: `baton freeze SERVICE --reason TEXT` refuses the service's rollouts until
# `baton unfreeze SERVICE`, on a real cluster (2 nodes, one database): plan exits 2 saying why,
# since when and by whom, and still shows the nodes; a rollout exits 2 stopping nothing; a second
# operator's freeze does not overwrite the first's reason; a rollout killed mid-way is not
# resumed while frozen, and its rollback is never refused; a damaged record refuses (it cannot
# say) and unfreeze removes it; a bad reason changes nothing. With the journals in PostgreSQL,
# a freeze made from one controller refuses the rollout of another.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

cluster_sweep
cluster_trap
ok "cluster: 2 nodes on gamesrv 1.0.0, one shared database" baton_cluster frz 2 1.0.0 ||
    { done_testing; exit 1; }
f=$(rollout_file 1.1.0)
record=$BATON_STATE_DIR/freezes/gamesrv.json
REASON="season finale tonight (ticket OPS-42), ask Kim"

# --- bad input changes nothing ------------------------------------------------------------------
out=$("$BATON" freeze gamesrv 2>&1)
is "$?" 1 "freeze without --reason: exit 1"
like "$out" "--reason is missing" "and says the reason is missing"
out=$("$BATON" freeze gamesrv --reason "$(printf 'fine\033[2J')" 2>&1)
is "$?" 1 "a reason with an escape sequence: exit 1"
like "$out" "control character" "and says why"
out=$("$BATON" freeze ../gamesrv --reason x 2>&1)
is "$?" 1 "a service name that is a path: exit 1"
ok "no freeze was recorded by any of them" test ! -e "$record"

# --- frozen: plan and rollout refuse, nothing stops ---------------------------------------------
out=$("$BATON" freeze gamesrv --reason "$REASON" 2>&1)
is "$?" 0 "baton freeze gamesrv: exit 0"
printf '%s\n' "$out" >&2
like "$out" "gamesrv is frozen \([0-9T:-]+Z, by root@" "it says since when and by whom"
is "$(jq -r .reason "$record")" "$REASON" "the record holds the reason as given"
stops=$(cluster_stops)
out=$(NO_COLOR=1 "$BATON" plan "$f" 2>&1)
is "$?" 2 "plan of a frozen service: exit 2"
printf '%s\n' "$out" >&2
like "$out" "REFUSED: gamesrv is frozen since [0-9T:-]+Z by root@[^:]*: season finale tonight \(ticket OPS-42\), ask Kim \(baton unfreeze gamesrv" \
    "plan names the freeze: since when, by whom, why, and how to lift it"
like "$out" "node1 +1.0.0 +-> 1.1.0" "plan still shows what each node would do"
out=$(NO_COLOR=1 "$BATON" rollout "$f" 2>&1)
is "$?" 2 "rollout of a frozen service: exit 2"
like "$out" "refused: gamesrv is frozen since .*OPS-42.*; nothing was changed" "the rollout says why"
is "$(cluster_stops)" "$stops" "nothing was stopped"
is "$(node_versions)" "1.0.0 1.0.0 " "no node changed"
out=$("$BATON" rollout --json "$f" 2>/dev/null)
is "$(jq -r 'select(.event == "error") | .message' <<<"$out")" \
    "$(NO_COLOR=1 "$BATON" rollout "$f" 2>&1 | sed -n 's/^baton: //p' | head -1)" \
    "--json says the same refusal as an error event"

# --- a second operator ---------------------------------------------------------------------------
out=$(SUDO_USER=alice "$BATON" freeze gamesrv --reason "load test at 18:00" 2>&1)
is "$?" 2 "a second freeze: exit 2"
like "$out" "frozen already; nothing was changed" "it says the service is frozen already"
like "$out" "frozen since .* by root@[^:]*: season finale tonight" "and shows the first operator's reason"
is "$(jq -r .reason "$record")" "$REASON" "the first reason is kept"

# --- unfreeze: the rollout runs ------------------------------------------------------------------
out=$("$BATON" unfreeze gamesrv 2>&1)
is "$?" 0 "baton unfreeze gamesrv: exit 0"
like "$out" "gamesrv is unfrozen \(it was frozen since .* by root@[^:]*: season finale tonight .*Kim\)" \
    "it says whose freeze it lifted"
ok "the record is gone" test ! -e "$record"
out=$("$BATON" unfreeze gamesrv 2>&1)
is "$?" 0 "unfreeze again: exit 0 (nothing to do)"
like "$out" "was not frozen; nothing was changed" "and says so"

# --- a rollout killed mid-way, then frozen: no resume, its rollback runs -------------------------
BATON_FAILPOINT="kill-after:node1:commit" "$BATON" rollout "$f" >"$CLUSTER_DIR/killed.out" 2>&1
is "$?" 137 "a rollout killed after node1's commit"
id=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$CLUSTER_DIR/killed.out")
is "$(node_versions)" "1.1.0 1.0.0 " "node1 runs 1.1.0, node2 1.0.0"
SUDO_USER=alice "$BATON" freeze gamesrv --reason "half-way: looking at node1 first" >/dev/null 2>&1
is "$?" 0 "frozen by alice (through sudo)"
is "$(jq -r .by "$record")" "alice (sudo root)@$(hostname)" "the record names alice behind sudo"
out=$("$BATON" resume "$id" 2>&1)
is "$?" 2 "baton resume of a frozen service's rollout: exit 2"
like "$out" "refused: gamesrv is frozen since .* by alice \(sudo root\)@.*: half-way" "it says why"
is "$(node_versions)" "1.1.0 1.0.0 " "no node changed"
out=$(NO_COLOR=1 "$BATON" rollback "$id" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton rollback of it runs while frozen: exit 0"
is "$(node_versions)" "1.0.0 1.0.0 " "every node runs 1.0.0 again"

# --- a damaged record: refused (it cannot say), unfreeze removes it ------------------------------
printf '{"reason": 42' >"$record"
out=$(NO_COLOR=1 "$BATON" plan "$f" 2>&1)
is "$?" 2 "plan with a damaged freeze record: exit 2"
like "$out" "the freeze record of gamesrv cannot be read .*baton unfreeze gamesrv removes it" \
    "it names the record and the way out"
out=$(NO_COLOR=1 "$BATON" rollout "$f" 2>&1)
is "$?" 2 "rollout with a damaged freeze record: exit 2"
is "$(node_versions)" "1.0.0 1.0.0 " "no node changed"
out=$("$BATON" unfreeze gamesrv 2>&1)
is "$?" 0 "unfreeze removes the damaged record: exit 0"
like "$out" "its record could not be read, and is gone" "and says so"

# --- journals in PostgreSQL: one controller freezes, another is refused --------------------------
pg_createdb baton_journal >&2
export BATON_JOURNAL="host=$PG_SOCK port=$PG_PORT dbname=baton_journal user=postgres"
ctl() { BATON_STATE_DIR=$CLUSTER_DIR/ctl-$1 "$BATON" "${@:2}"; } # CONTROLLER ARGS...
out=$(ctl a freeze gamesrv --reason "$REASON" 2>&1)
is "$?" 0 "controller a freezes gamesrv in the shared journal database"
like "$out" "every controller sharing the journal database" "it says every controller sharing the database sees it"
is "$(pg_sql baton_journal "SELECT record::json->>'reason' FROM baton_freeze WHERE service = 'gamesrv'")" \
    "$REASON" "the freeze is a row of baton_freeze"
out=$(NO_COLOR=1 ctl b rollout "$f" 2>&1)
is "$?" 2 "controller b's rollout: exit 2"
like "$out" "refused: gamesrv is frozen since .*OPS-42" "controller b says why"
out=$(ctl b freeze gamesrv --reason "mine" 2>&1)
is "$?" 2 "controller b's own freeze: exit 2, frozen already"
ok "controller b unfreezes it" ctl b unfreeze gamesrv
out=$(NO_COLOR=1 ctl a rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "controller a's rollout runs: exit 0"
is "$(node_versions)" "1.1.0 1.1.0 " "every node runs 1.1.0"
done_testing
