#!/bin/bash
# versions.sh: a release catalog on a real cluster (3 nodes, one shared database). A range
# resolved to the newest patch; a catalog digest that does not match refused before staging;
# 1.0.0 -> 1.2.0 one minor at a time (through 1.1.1); downgrades by the rules (one minor down
# with --allow-downgrade leaves exactly the older version's ids and every row; more than one
# minor below the highest refused with nothing touched); no binary starts on a schema it does not
# know; a release that requires maintenance rolled with every node stopped first.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
export BATON_TEST_KNOBS=1 # slow_step can hold the schema check of a start

cluster_sweep
cluster_trap
ok "cluster: 3 nodes on gamesrv 1.0.0, one shared database" baton_cluster vers 3 1.0.0 ||
    { done_testing; exit 1; }
sha() { sha256sum "$(gamesrv_bin "$1")" | cut -d' ' -f1; }
catalog() { # FILE [MAINTENANCE-VERSION] [no-min]
    {
        echo "service: gamesrv"
        echo "releases:"
        for v in 1.0.0 1.1.0 1.1.1 1.2.0 2.0.0; do
            echo "  - version: $v"
            echo "    artifact: $(realpath "$(gamesrv_bin "$v")")"
            echo "    sha256: $(sha "$v")"
            [ "$v" = 1.2.0 ] && echo "    notes: adds the inventory table"
            [ "$v" = 1.2.0 ] && [ "${3:-}" != no-min ] && echo "    min_upgrade_from: 1.1.0"
            [ "$v" = "${2:-}" ] && echo "    requires: maintenance"
        done
    } >"$1"
}
cat_file() { # VERSION-OR-RANGE CATALOG [FILE]: a rollout file over the catalog
    local f=${3:-$ROLLOUT_DIR/cat.yml}
    rollout_file 1.0.0 "$f" >/dev/null
    sed -i -e '/^artifact:/d' -e "s|^version: .*|version: \"$1\"\ncatalog: $2|" "$f"
    echo "$f"
}
versions() { node_versions; }
stops() { cluster_stops; }
rid() { sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' <<<"$1" | tail -1; }
catalog "$ROLLOUT_DIR/catalog.yml"
players_before=$(players)

# --- a range, resolved against the catalog ---------------------------------------------------
f=$(cat_file "~1.1.0" catalog.yml)
out=$("$BATON" plan "$f" 2>&1)
printf '%s\n' "$out" >&2
like "$out" "-> 1.1.1 " "~1.1.0 resolves to the newest 1.1 patch, 1.1.1"
out=$("$BATON" plan "$(cat_file latest catalog.yml)" 2>&1)
is "$?" 1 "version: latest is refused"
like "$out" "'latest' is an alias, not a version: pin versions in production" "with the reason"

# A catalog whose digest does not match the artifact: refused before anything is staged.
sed "s/$(sha 1.1.0)/$(sha 1.0.0)/" "$ROLLOUT_DIR/catalog.yml" >"$ROLLOUT_DIR/bad-catalog.yml"
out=$("$BATON" rollout "$(cat_file 1.1.0 bad-catalog.yml)" 2>&1)
is "$?" 2 "a catalog digest that does not match its artifact refuses the rollout"
like "$out" "the catalog says $(sha 1.0.0)" "naming both digests"
unlike "$out" "stage " "nothing was staged"

# --- one minor up, then back down with --allow-downgrade ------------------------------------
out=$("$BATON" rollout "$(cat_file 1.1.0 catalog.yml)" 2>&1)
is "$?" 0 "1.0.0 -> 1.1.0 through the catalog"
is "$(versions)" "1.1.0 1.1.0 1.1.0 " "every node on 1.1.0"
snap=$(db_snapshot)
stops_before=$(stops)
f=$(cat_file 1.0.0 catalog.yml)
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "1.1.0 -> 1.0.0 without --allow-downgrade: refused"
like "$out" "minor version down: .*say --allow-downgrade" "it says how"
is "$(db_snapshot) $(stops)" "$snap $stops_before" "nothing was touched"
out=$("$BATON" rollout "$f" --allow-downgrade 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "1.1.0 -> 1.0.0 with --allow-downgrade"
like "$out" "migrate +ok .*removed 0002_player_level.sql" "node1 took 0002 down (with the newer binary)"
like "$out" "MAINTENANCE: every node of a database stops" \
    "on a shared database, in maintenance style (the newer binaries cannot run on the older schema)"
is "$(grep -c 'shared database, migrated by its first node' <<<"$out")" 2 "the others only checked"
is "$(migration_ids game)" "0001_players.sql" "the bookkeeping table holds exactly 1.0.0's ids"
is "$(players)" "$players_before" "every player row is intact"
is "$(versions)" "1.0.0 1.0.0 1.0.0 " "every node runs 1.0.0"
like "$("$BATON" status "$f" --json)" '"highest_version":"1.1.0"' "baton status shows the highest version deployed"

# --- rehearsal: the migration on a copy of the database first ---------------------------------
scratch() { pg_sql postgres "SELECT count(*) FROM pg_database WHERE datname LIKE 'baton_rehearse%'"; }
f=$(cat_file 1.1.0 catalog.yml)
echo "rehearse: true" >>"$f"
out=$("$BATON" plan "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton plan with rehearse: the migration passes on a copy"
like "$out" "rehearsal: the migration took [0-9]+ ms on a copy of the database" \
    "and reports how long it took, as the expected downtime"
is "$(grep -c 'rehearsal: the migration took' <<<"$out")" 1 "once for the shared database"
is "$(migration_ids game) $(versions)" "0001_players.sql 1.0.0 1.0.0 1.0.0 " "the live database and services are untouched"
is "$(scratch)" 0 "no scratch database is left"
f=$ROLLOUT_DIR/rehearse-bad.yml
rollout_file 1.2.0+migrate-up "$f" >/dev/null
echo "rehearse: true" >>"$f"
snap=$(db_snapshot)
stops_before=$(stops)
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 2 "a migration that fails on the copy refuses the rollout"
like "$out" "rehearsal: migrate up on a copy of the database failed: .*0003_inventory" \
    "with the migration's own error"
is "$(db_snapshot) $(stops) $(versions)" "$snap $stops_before 1.0.0 1.0.0 1.0.0 " \
    "nothing was stopped, the database is as it was"
is "$(scratch)" 0 "and no scratch database is left"

# --- one jump on request (--jump): maintenance style; then undone on purpose -----------------
out=$("$BATON" rollout "$(cat_file 1.2.0 catalog.yml)" --jump 2>&1)
is "$?" 2 "--jump past a release's min_upgrade_from is refused"
like "$out" "1.2.0 needs at least 1.1.0 first \(the catalog's min_upgrade_from\); it runs 1.0.0" \
    "naming the release's rule"
catalog "$ROLLOUT_DIR/jump.yml" "" no-min
out=$("$BATON" rollout "$(cat_file 1.2.0 jump.yml)" --jump 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "1.0.0 -> 1.2.0 in one jump (--jump)"
like "$out" "MAINTENANCE: every node of a database stops" "in maintenance style"
unlike "$out" "one minor version at a time" "not through 1.1.1"
like "$out" "migrate +ok .*applied 0002_player_level.sql, 0003_inventory.sql" "both minors' migrations at once"
is "$(versions)$(migration_ids game)" "1.2.0 1.2.0 1.2.0 0001_players.sql,0002_player_level.sql,0003_inventory.sql" \
    "every node on 1.2.0"
out=$("$BATON" rollback "$(rid "$out")" 2>&1)
is "$?" 0 "baton rollback ROLLOUT_ID undoes the jump"
is "$(versions)$(migration_ids game)" "1.0.0 1.0.0 1.0.0 0001_players.sql" "every node back on 1.0.0"

# --- 1.0.0 -> 1.2.0 goes through 1.1.1 --------------------------------------------------------
done_before=$("$BATON" list | grep -c ' done ')
f=$(cat_file "^1.0.0" catalog.yml)
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "1.0.0 -> ^1.0.0 (1.2.0)"
like "$out" "1.0.0 -> 1.2.0 goes one minor version at a time: 1.1.1 -> 1.2.0 \(2 rollouts" \
    "it says it goes through 1.1.1"
is "$(grep -E '^baton: hop|^done: ' <<<"$out" | sed 's/ (3 upgraded.*//' | tr '\n' '|')" \
    "baton: hop 1 of 2: 1.1.1|done: 3 of 3 nodes on gamesrv 1.1.1|baton: hop 2 of 2: 1.2.0|done: 3 of 3 nodes on gamesrv 1.2.0|" \
    "each hop is a whole rollout, 1.1.1 first, each done before the next"
is "$(versions)" "1.2.0 1.2.0 1.2.0 " "every node runs 1.2.0"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql,0003_inventory.sql" "with 1.2.0's ids"
is "$(players)" "$players_before" "every player row is intact"
is "$("$BATON" list | grep -c ' done ')" "$((done_before + 2))" "baton list: two more rollouts done (1.1.1, 1.2.0)"

# --- more than one minor below the highest: refused, nothing touched -------------------------
snap=$(db_snapshot)
stops_before=$(stops)
out=$("$BATON" rollout "$(cat_file 1.0.0 catalog.yml)" --allow-downgrade 2>&1)
is "$?" 2 "1.2.0 -> 1.0.0 is refused, even with --allow-downgrade"
like "$out" "1.0.0 is more than one minor version below 1.2.0, the highest version ever deployed" \
    "with the reason"
is "$(db_snapshot) $(stops) $(versions)" "$snap $stops_before 1.2.0 1.2.0 1.2.0 " "nothing was touched"

# --- no binary starts on a schema it does not know -------------------------------------------
# A stray migration from a newer build lands while node2 is about to start: it is not started.
stray="INSERT INTO migration_info (id, applied_at) VALUES ('0009_future.sql', now())"
out=$(pg_sql game "$stray" 2>&1 && "$BATON" rollout "$(cat_file 2.0.0 catalog.yml)" 2>&1)
is "$?" 2 "a new binary older than the schema is refused at pre-flight"
like "$out" "the database holds 1 migration that .* does not ship \(0009_future.sql\)" \
    "naming the unknown id"
is "$(stops)" "$stops_before" "nothing was stopped"
pg_sql game "DELETE FROM migration_info WHERE id = '0009_future.sql'"

# The same at start: node2's start is held (its schema check waits) while the stray lands.
slow_step node1 migrate 2
node_exec node1 rm -f /run/baton-knobs.log
f=$(cat_file 2.0.0 catalog.yml)
"$BATON" rollout "$f" >"$CLUSTER_DIR/start.out" 2>&1 &
pid=$!
ok "node1 is migrating to 2.0.0" wait_for 30 in_progress_is node1 migrate
# The start reuses what the pre-flight's list said of the very same bytes (the swap's copy of
# the staged file); a staged file touched since is listed again, and held there.
node_exec node2 sh -c 'touch /var/lib/baton/staging/gamesrv/*'
slow_step node2 list 6
slow_step node1 migrate 0
ok "node2's start is checking the schema" wait_for 30 tool_running node2 list
pg_sql game "$stray"
wait "$pid"
code=$?
is "$(node_exec node1 grep -c '^list' /run/baton-knobs.log)" 1 \
    "node1 listed 2.0.0's migrations once, at its pre-flight: its start reused that list (the same bytes)"
slow_step node2 list 0
out=$(cat "$CLUSTER_DIR/start.out")
printf '%s\n' "$out" >&2
is "$code" 4 "a schema newer than the binaries: node2 is not started on it (exit 4, it needs care)"
like "$out" "start +FAIL .*does not ship \(0009_future.sql\): a schema newer than the binary; refusing to start it" \
    "node2's start is refused, naming the id"
like "$out" "rollback +FAIL .*/opt/gamesrv/bin/gamesrv does not ship \(0009_future.sql\)" \
    "and so is its old binary: 0009 is unknown to 1.2.0 too (0004 is the rollout's own)"
is "$(node_exec node2 systemctl is-active gamesrv)" inactive "node2 is left stopped, not guessing"
is "$(node_exec node3 systemctl is-active gamesrv) $(node_exec node3 /opt/gamesrv/bin/gamesrv --version)" \
    "active 1.2.0" "node3 was not touched"
pg_sql game "DELETE FROM migration_info WHERE id = '0009_future.sql'"
out=$("$BATON" rollback "$f" 2>&1)
is "$?" 0 "with the stray gone, baton rollback settles node2"
is "$(node_exec node2 /opt/gamesrv/bin/gamesrv --version) $(gamesrv_health node2)" "1.2.0 200" \
    "node2 runs 1.2.0 (on 2.0.0's schema: the mixed window of the rollout node1 committed)"
id=$(rid "$out")
out=$("$BATON" rollback "$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$CLUSTER_DIR/start.out")" 2>&1)
is "$?" 0 "baton rollback ROLLOUT_ID takes node1 back to 1.2.0"
is "$(versions)$(migration_ids game)" \
    "1.2.0 1.2.0 1.2.0 0001_players.sql,0002_player_level.sql,0003_inventory.sql" \
    "every node on 1.2.0, 0004 migrated down"

# --- a release that requires maintenance ------------------------------------------------------
catalog "$ROLLOUT_DIR/maint.yml" 2.0.0
f=$(cat_file 2.0.0 maint.yml)
out=$("$BATON" plan "$f" 2>&1)
like "$out" "release 2.0.0 .*requires maintenance" "baton plan says the release requires maintenance"
like "$out" "MAINTENANCE: every node of a database stops" "and how it will be rolled"
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "1.2.0 -> 2.0.0 in maintenance style"
id=$(rid "$out")
first() { step_time "$1" "$id" "$2" first; } # NODE STEP, of this rollout
last() { step_time "$1" "$id" "$2" last; }
dump1=$(first node1 dump)
verified1=$(last node1 verify)
all_stopped=1 others_after=1
for n in $CLUSTER_NODES; do
    awk -v a="$(last "$n" stop)" -v b="$dump1" 'BEGIN { exit !(a <= b) }' || all_stopped=0
done
for n in node2 node3; do
    awk -v a="$(first "$n" start)" -v b="$verified1" 'BEGIN { exit !(a >= b) }' || others_after=0
done
is "$all_stopped" 1 "every node was stopped before node1 dumped (from the agents' journals)"
is "$others_after" 1 "node2 and node3 started only after node1 verified 2.0.0"
is "$(versions)$(migration_ids game)" \
    "2.0.0 2.0.0 2.0.0 0001_players.sql,0002_player_level.sql,0003_inventory.sql,0004_guilds.sql" \
    "every node on 2.0.0, 0004 applied once"
is "$(grep -c 'shared database, dumped by its first node' <<<"$out")" 2 "one dump for the three"
is "$(players)" "$players_before" "every player row is intact"

# --- back across a maintenance release: refused, unless a dump taken at that version is named --
f=$(cat_file 1.2.0 maint.yml)
snap=$(db_snapshot)
stops_before=$(stops)
out=$("$BATON" rollout "$f" --allow-downgrade 2>&1)
is "$?" 2 "2.0.0 -> 1.2.0 is refused, even with --allow-downgrade"
like "$out" "crosses 2.0.0, which requires maintenance" "it crosses a release that requires maintenance"
is "$(db_snapshot) $(stops)" "$snap $stops_before" "nothing was touched"
# The dump node1 took while 1.2.0 ran (the maintenance rollout's), from its history.
dump=$("$BATON" status "$f" --json | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e.get("node") == "node1":
        print([h["dump"] for h in e["history"] if h["version"] == "1.2.0" and h["dump"]][-1])')
like "$dump" "^/var/backups/baton/gamesrv/gamesrv\+r.*\.dump$" "baton status names the dump taken at 1.2.0"
curl -sf -o /dev/null -X POST "http://$(node_ip node2):$GAMESRV_PORT/players?name=erin"
out=$("$BATON" plan "$f" --restore-dump "$dump" 2>&1)
ok "baton plan warns that the restore loses every change since the dump" \
    grep -qF "WARNING: restoring $dump loses every change made to the database since" <<<"$out"
out=$("$BATON" rollout "$f" --restore-dump "$dump" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "2.0.0 -> 1.2.0 with --restore-dump"
like "$out" "migrate +ok .*restored the dump taken at the target version" "node1 restored it"
like "$out" "MAINTENANCE: every node of a database stops" "with every node of the database stopped"
is "$(versions)$(migration_ids game)" "1.2.0 1.2.0 1.2.0 0001_players.sql,0002_player_level.sql,0003_inventory.sql" \
    "every node on 1.2.0, with 1.2.0's ids"
is "$(players)" "$players_before" "the rows are the dump's: the one written since is gone, as plan said"

done_testing
