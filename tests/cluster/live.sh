#!/bin/bash
# live.sh: the live view judged as a person reads it. `baton rollout` runs in a tmux pane (a
# real terminal, 110 columns); the pane is captured while a node's verify waits and after the
# run: the time on screen moves without an event, the end is settled (no node "waiting", no
# time left, no frozen table), every node's step lines and a recap stay, FAIL is red unless
# NO_COLOR says no, and TERM=dumb gets the plain lines.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=$(realpath "${BUILD:-build}/baton")
SESSION=baton-live-$$
pane() { tmux capture-pane -p -J -S -400 -t "$SESSION" "$@"; }
live_down() { tmux kill-session -t "$SESSION" 2>/dev/null; cluster_down; }

cluster_sweep
trap 'live_down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ok "cluster: 3 nodes on gamesrv 1.0.0" baton_cluster live 3 1.0.0 || { done_testing; exit 1; }

# In the pane: the command, then its exit code; the pane stays for the captures.
run_in_pane() { # ENV... -- ARGS...
    local env=() a
    while [ "$1" != -- ]; do env+=("$1"); shift; done
    shift
    tmux kill-session -t "$SESSION" 2>/dev/null
    tmux new-session -d -s "$SESSION" -x 110 -y "${PANE_ROWS:-40}" \
        "env ${env[*]} $BATON $* 2>&1; echo EXIT=\$?; sleep 3600"
}
pane_has() { pane | grep -qE "$1"; }
# NODE's block of step lines: from its "[NODE]" line to the next line that is not a step's.
block() { awk -v h="[$2]" '$0 == h { on = 1; next } on && /^ +[|]/ { next } on && /^  [a-z]/ { print $1, $2; next } { on = 0 }' <<<"$1" | tr '\n' ' '; }
# The seconds the table shows for NODE's step in flight.
shown_time() { pane | grep -E "^  $1 +$2 +[0-9]+\.[0-9] s" | tail -1 | awk '{ print $3 }'; }

# --- a rollout whose first node never turns healthy ---------------------------------------------
f=$(rollout_file 1.1.0+health)
echo "healthy_deadline: 5s" >>"$f"
run_in_pane TERM=xterm-256color -- rollout "$f"
ok "the table shows node1 in its verify" wait_for 30 pane_has "^  node1 +verify +[0-9]+\.[0-9] s"
t1=$(shown_time node1 verify)
moved() { t2=$(shown_time node1 verify); [ -n "$t2" ] && [ "$t2" != "$t1" ]; }
wait_for 3 moved
ok "the verify's time on screen moves while nothing happens ($t1 s, then ${t2:-?} s)" moved
like "$(pane)" "  [0-9]/3 done, [0-9]+\.[0-9] s" "a line under the table counts the nodes done and the time"
ok "the run ends" wait_for 60 pane_has "^EXIT="
end=$(pane)
printf '%s\n' "$end" >&2
like "$end" "EXIT=3" "exit 3: node1 failed and was rolled back"
unlike "$end" "waiting" "at the end no node is said to be waiting"
unlike "$end" "s left" "nor is there time left"
unlike "$end" "[0-9]/3 done" "the table is gone"
is "$(block "$end" node1)" "stop ok dump ok swap ok migrate ok start ok verify FAIL rollback ok " \
    "node1's step lines stay on screen, under its name, stop to rollback"
like "$end" "verify +FAIL .*healthy" "with its failed verify"
like "$end" "rollback +ok .*back on 1.0.0; down-migrated the 1 migration this rollout applied" \
    "and what the rollback did to the schema"
like "$end" "RECAP +BEFORE +AFTER +DOWN +OUTCOME" "a recap table closes the run"
like "$end" "node1 +1.0.0 +1.0.0 +[0-9.]+ s +rolled back" "node1: back on 1.0.0, its downtime"
like "$end" "node2 +1.0.0 +1.0.0 +- +not started" "node2: not started"
like "$end" "FAILED on node1" "the summary, last"
is "$(pane | grep -c "^  preflight")" 0 "the checks did not print a line per node and phase"
coloured=$(tmux capture-pane -p -e -J -S -400 -t "$SESSION")
like "$coloured" $'\e\\[1m\e\\[31mFAIL' "FAIL is red on a terminal"

# --- NO_COLOR, TERM=dumb ------------------------------------------------------------------------
run_in_pane TERM=xterm-256color NO_COLOR=1 -- status "$f"
ok "status runs in the pane" wait_for 20 pane_has "^EXIT="
unlike "$(tmux capture-pane -p -e -J -S -400 -t "$SESSION")" $'\e\\[' "NO_COLOR=1: no colour at all"
run_in_pane TERM=dumb -- rollout "$f"
ok "with TERM=dumb the rollout runs" wait_for 60 pane_has "^EXIT="
like "$(pane)" "\[1/3\] node1 \(upgrading\)" "TERM=dumb: the plain lines, not the live table"
unlike "$(tmux capture-pane -p -e -J -S -400 -t "$SESSION")" $'\e\\[1A' "and no cursor movement"

# --- a rollout that goes through, on a screen lower than the table -----------------------------
# A pane of 4 rows: 3 lines for the table (the cursor waits on the 4th), which has 4: the node
# in flight gets its line, the others are counted on one, so that the table can still be
# erased (else its copies would stay in the scrollback).
f=$(rollout_file 1.1.0)
PANE_ROWS=4 run_in_pane TERM=xterm-256color -- rollout "$f"
ok "on 4 rows the table counts the nodes it cannot show" wait_for 60 pane_has "^  … and 2 more"
ok "the good rollout ends" wait_for 90 pane_has "^EXIT="
end=$(pane)
printf '%s\n' "$end" >&2
like "$end" "EXIT=0" "exit 0"
for n in node1 node2 node3; do
    is "$(block "$end" "$n")" "stop ok dump ok swap ok migrate ok start ok verify ok commit ok " \
        "$n's steps stay on screen, under its name, stop to commit"
    like "$end" "$n +1.0.0 +1.1.0 +[0-9.]+ s +upgraded" "the recap: $n from 1.0.0 to 1.1.0"
done
like "$end" "plan: 3 nodes in 3 batches: node1 \| node2 \| node3; a batch at a time" \
    "the plan reads as words, not JSON"
like "$(echo "$end" | tail -3)" "done: 3 of 3 nodes on gamesrv 1.1.0" "the summary is the last line"
unlike "$end" "waiting|s left|[0-9]/3 done|… and" "nothing of the table is left, on screen or above it"
done_testing
