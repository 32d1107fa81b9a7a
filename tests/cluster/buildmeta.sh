#!/bin/bash
# buildmeta.sh: versions as SemVer means them, on a real cluster (2 nodes, one shared
# database). Nakama prints `3.15.0+1783fad1`; the gamesrv builds "+buildmeta" print the same
# shape. The build metadata is kept for display and ignored for identity and order: the rollout
# file may say 1.2.0 or 1.2.0+1783fad1, the history recorded from the printed version serves a
# downgrade to the plain one, and `baton plan` reaches the verdict `baton rollout` reaches
# (found on real Nakama: plan said the downgrade could run, the rollout refused it).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton

cluster_sweep
cluster_trap
ok "cluster: 2 nodes on gamesrv 1.1.0, printing 1.1.0+1783fad1" \
    baton_cluster bmeta 2 1.1.0+buildmeta || { done_testing; exit 1; }
versions() { node_versions; }
is "$(versions)" "1.1.0+1783fad1 1.1.0+1783fad1 " "each node's binary prints build metadata"
players_before=$(players)

# --- up, the rollout file without the metadata --------------------------------------------------
f=$(rollout_file 1.2.0+buildmeta "$ROLLOUT_DIR/up.yml")
grep -q '^version: 1.2.0$' "$f"
ok "the rollout file says 1.2.0" test $? = 0
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "1.1.0+1783fad1 -> 1.2.0 (binary printing 1.2.0+1783fad1): exit 0"
is "$(versions)" "1.2.0+1783fad1 1.2.0+1783fad1 " "every node on 1.2.0"
like "$(state_field node1 highest_version)" "^1.2.0" "the highest version deployed is 1.2.0"
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 0 "the same rollout again: nothing to do"
like "$out" "node1 .*already on the target version" "the node on 1.2.0+1783fad1 is taken as on 1.2.0"

# --- a refusal: plan and rollout say the same ---------------------------------------------------
f=$(rollout_file 1.1.0+buildmeta "$ROLLOUT_DIR/down.yml")
bogus=/var/backups/baton/gamesrv/not-a-dump-of-ours.dump
snap=$(db_snapshot)
plan_out=$("$BATON" plan "$f" --allow-downgrade --restore-dump "$bogus" 2>&1)
plan_code=$?
printf '%s\n' "$plan_out" >&2
out=$("$BATON" rollout "$f" --allow-downgrade --restore-dump "$bogus" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$plan_code $code" "2 2" "a dump taken nowhere here: baton plan and baton rollout both refuse (exit 2)"
reason="$bogus is no dump taken here while 1.1.0 ran"
like "$plan_out" "$reason" "plan names the reason"
like "$out" "$reason" "the rollout names the same reason"
is "$(db_snapshot) $(versions)" "$snap 1.2.0+1783fad1 1.2.0+1783fad1 " "nothing was touched"

# --- down to the version first recorded as printed ---------------------------------------------
plan_out=$("$BATON" plan "$f" --allow-downgrade 2>&1)
is "$?" 0 "plan 1.2.0 -> 1.1.0 with --allow-downgrade: could run"
unlike "$plan_out" "no history" "the history recorded as 1.1.0+1783fad1 is 1.1.0's"
out=$("$BATON" rollout "$f" --allow-downgrade 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "1.2.0 -> 1.1.0 with --allow-downgrade: exit 0, as plan said"
is "$(versions)" "1.1.0+1783fad1 1.1.0+1783fad1 " "every node on 1.1.0 again"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql" "exactly 1.1.0's migration ids"
is "$(players)" "$players_before" "every row kept"

# --- the rollout file may carry the metadata too -------------------------------------------------
f=$(rollout_file 1.2.0+buildmeta "$ROLLOUT_DIR/up-meta.yml")
sed -i 's/^version: .*/version: 1.2.0+1783fad1/' "$f"
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "version: 1.2.0+1783fad1 in the rollout file: accepted, rolled"
is "$(versions)" "1.2.0+1783fad1 1.2.0+1783fad1 " "every node on 1.2.0"
sed -i 's/^version: .*/version: +1783fad1/' "$f"
out=$("$BATON" plan "$f" 2>&1)
is "$?" 1 "version: +1783fad1 is refused"
like "$out" "up-meta.yml:[0-9]+: version: " "naming the file, line and key"

done_testing
