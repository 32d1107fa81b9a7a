#!/bin/bash
# verdicts.sh: `baton plan` and `baton rollout` give the same verdict for the same cluster: for
# each refusal set up on a real cluster (2 nodes, one shared database), plan exits 2 naming
# node1's reason, and the rollout right after it exits 2 with that very reason on node1's failed
# check, stopping nothing; where plan says the rollout could run (a downgrade that restores the
# dump node1 took), it runs. An operator who trusts the plan must not be surprised by the rollout.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

cluster_sweep
cluster_trap
ok "cluster: 2 nodes on gamesrv 1.0.0, one shared database" baton_cluster verd 2 1.0.0 ||
    { done_testing; exit 1; }

# node1's reasons in plan's text: the REFUSED lines under its row.
plan_reasons() { # OUT
    printf '%s\n' "$1" | awk '
        /^  node1 / { mine = 1; next }
        /^  [a-z]/ && !/REFUSED: / { mine = 0 }
        mine && /REFUSED: / { sub(/^ *REFUSED: /, ""); print }'
}
# node1's reason in the rollout's text: its failed check's message.
rollout_reason() { # OUT
    printf '%s\n' "$1" | sed -n 's/^  [a-z]* *node1 *FAIL *[0-9]* ms  //p' | head -1
}

# One case: plan, then rollout, with the same file and flags.
same_verdict() { # NAME FILE [FLAGS...]
    local name=$1 f=$2 out pcode rcode reasons reason stops_before
    shift 2
    stops_before=$(cluster_stops)
    out=$(NO_COLOR=1 "$BATON" plan "$f" "$@" 2>&1)
    pcode=$?
    printf '%s\n' "$out" >&2
    reasons=$(plan_reasons "$out")
    out=$(NO_COLOR=1 "$BATON" rollout "$f" "$@" 2>&1)
    rcode=$?
    printf '%s\n' "$out" >&2
    reason=$(rollout_reason "$out")
    is "$pcode $rcode" "2 2" "$name: plan and rollout both refuse (exit 2)"
    ok "$name: node1's reason in the plan: ${reasons:-none}" [ -n "$reasons" ]
    ok "$name: the rollout's reason is one the plan gave: ${reason:-none}" \
        grep -qxF -- "${reason:-(none)}" <<<"$reasons"
    is "$(cluster_stops)" "$stops_before" "$name: nothing was stopped"
}

# --- a stranger holds the database's migration lock ---------------------------------------------
lock_by_stranger game "a manual migration"
ok "a session of someone else holds the migration lock" wait_for 10 lock_held game
same_verdict "lock held" "$(rollout_file 1.1.0)"
lock_stranger_ends

# --- up to 1.1.0, then the downgrades ------------------------------------------------------------
out=$("$BATON" rollout "$(rollout_file 1.1.0)" 2>&1)
is "$?" 0 "1.0.0 -> 1.1.0 (exit 0)"
f=$(rollout_file 1.0.0)
same_verdict "downgrade without --allow-downgrade" "$f"
same_verdict "--restore-dump of a dump not taken here" "$f" --allow-downgrade \
    --restore-dump /var/backups/baton/gamesrv/none.dump

# --- --restore-dump of the dump node1 took at 1.0.0: the plan says it could run, and it does -------
dump=$(node_exec node1 sh -c 'ls /var/backups/baton/gamesrv/*.dump' | head -1)
out=$(NO_COLOR=1 "$BATON" plan "$f" --allow-downgrade --restore-dump "$dump" 2>&1)
pcode=$?
printf '%s\n' "$out" >&2
out=$(NO_COLOR=1 "$BATON" rollout "$f" --allow-downgrade --restore-dump "$dump" 2>&1)
rcode=$?
printf '%s\n' "$out" >&2
is "$pcode $rcode" "0 0" "--restore-dump of node1's own dump: plan says it could run, and it runs"
is "$(node_versions)" "1.0.0 1.0.0 " "both nodes on 1.0.0"

# --- node1's unit is gone -------------------------------------------------------------------------
node_exec node1 sh -c 'mv /etc/systemd/system/gamesrv.service /root/gamesrv.service &&
    systemctl daemon-reload'
same_verdict "no unit" "$(rollout_file 1.1.0)"
node_exec node1 sh -c 'mv /root/gamesrv.service /etc/systemd/system/gamesrv.service &&
    systemctl daemon-reload'

# --- node1 left mid-rollout by a coordinator killed after its dump: the agent's own rule ----------
# (step_decide) refuses a new rollout's pre-flight; the plan says so in the very same words.
f=$(rollout_file 1.1.0)
BATON_FAILPOINT="kill-after:node1:dump" "$BATON" rollout "$f" >"$CLUSTER_DIR/killed.out" 2>&1
is "$?" 137 "a rollout killed right after node1's dump (SIGKILL)"
id=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$CLUSTER_DIR/killed.out")
same_verdict "a rollout left unfinished" "$(rollout_file 1.1.0)"
like "$(NO_COLOR=1 "$BATON" plan "$(rollout_file 1.1.0)" 2>&1)" "REFUSED: in rollout $id \(at dump\); roll it back first" \
    "the plan names the unfinished rollout and where it stopped"
out=$("$BATON" rollback "$f" 2>&1)
is "$?" 0 "baton rollback of the killed rollout (exit 0)"

out=$("$BATON" rollout "$(rollout_file 1.1.0)" 2>&1)
is "$?" 0 "with everything put back, the rollout runs (exit 0)"
done_testing
