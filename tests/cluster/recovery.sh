#!/bin/bash
# recovery.sh: the agent's rules for which command may follow which, tried as a user would on a
# real cluster (two nodes on one database): a crash in the next rollout's pre-flight never lets
# `baton rollback` undo a committed rollout; a pre-flight in the middle of a rollout is refused
# and changes nothing; a second coordinator changes nothing; `migrate down` over the network
# meets a rollback's guards. Real systemd, PostgreSQL, pg_dump and sql-migrate.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
ZPOKE=${BUILD:-build}/tests/tools/zpoke
BATON_TEST_KNOBS=1

cluster_sweep
cluster_trap
ok "cluster: 2 nodes on gamesrv 1.0.0 sharing one database" baton_cluster rec 2 1.0.0 ||
    { done_testing; exit 1; }
bin_sha() { node_exec "$1" sha256sum /opt/gamesrv/bin/gamesrv | cut -d' ' -f1; }
poke() { ZPOKE_SERVER_KEY=$(agent_pub "$1") ZPOKE_KEY_FILE=$(keys_dir)/coordinator.key "$ZPOKE" "tcp://$(node_ip "$1"):$BATON_AGENT_PORT" "${@:2}"; }

# --- 1. A crash in the next rollout's pre-flight never undoes the committed one -------------
f1=$(rollout_file 1.1.0)
"$BATON" rollout "$f1" >&2
is "$?" 0 "rollout 1.1.0 is committed on both nodes"
r1=$(state_field node1 rollout_id)
snap=$(db_snapshot)
sha_110=$(sha256sum "$(gamesrv_bin 1.1.0)" | cut -d' ' -f1)
players_before=$(players)

slow_step node1 preflight 60
f2=$(rollout_file 1.2.0)
"$BATON" rollout "$f2" >"$CLUSTER_DIR/r2.out" 2>&1 &
coordinator=$!
ok "the next rollout's pre-flight is under way on node1" \
    wait_for 20 in_progress_is node1 preflight
r2=$(state_field node1 rollout_id)
isnt_r1=$([ -n "$r2" ] && [ "$r2" != "$r1" ] && echo yes)
is "$isnt_r1" yes "the state names the new rollout from the moment its pre-flight began"
kill -9 "$coordinator"
node_exec node1 systemctl kill --kill-whom=main -s KILL baton-agent
slow_step node1 preflight 0
ok "systemd restarted node1's agent" wait_for 20 agent_restarted node1 1
is "$(node_exec node1 sh -c 'pgrep -c -x sleep || true')" 0 \
    "the restarted agent killed the tool its predecessor left running (group killed by its id)"
status=$("$BATON" status "$f1")
printf '%s\n' "$status" >&2
like "$status" "node1 .* preflight \(interrupted\) +$r2" "status: node1's pre-flight of $r2 was interrupted"
out=$("$BATON" rollback "$f1" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton rollback exits 0"
like "$out" "node1 \(releasing $r2 \(pre-flight only, interrupted" "it only releases node1's reservation"
for n in node1 node2; do
    is "$(bin_sha "$n")" "$sha_110" "$n still runs the committed 1.1.0 binary"
    is "$(gamesrv_health "$n")" 200 "$n is healthy"
done
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql" "the schema keeps 0002 (level column)"
is "$(players)" "$players_before" "the player rows are unchanged"
is "$(db_snapshot)" "$snap" "schema, bookkeeping and rows are byte for byte what they were"
is "$(state_field node1 rollout_id) $(state_field node1 step)" "$r1 committed" \
    "node1's record is the committed rollout again"
out=$("$BATON" rollback "$f1" 2>&1)
like "$out" "node1 \(nothing to roll back\)" "a second baton rollback finds nothing to do"

# --- 2. A pre-flight in the middle of a rollout is refused and changes nothing ---------------
# Driven command by command, as a coordinator would, with a version whose migration fails.
sha=$(poke node1 stage gamesrv 1.2.0 "$(gamesrv_bin 1.2.0+migrate-up)" | tail -1)
R=rtest-mid
is "$(poke node1 step preflight $R version=1.2.0 sha256="$sha")" "OK " "pre-flight of $R passes"
is "$(poke node1 step stop $R)" "OK " "stop"
is "$(poke node1 step dump $R)" "OK " "dump"
state_before=$(agent_state node1)
out=$(poke node1 step preflight $R version=1.2.0 sha256="$sha")
like "$out" "^FAILED .*past its pre-flight" "a pre-flight of the same rollout after the dump is refused"
is "$(agent_state node1)" "$state_before" "and the rollback record (digests, ids, dump) is unchanged"
like "$(poke node1 step preflight rtest-other version=1.2.0 sha256="$sha")" "^BUSY .*in rollout $R" \
    "another rollout's pre-flight is BUSY"
like "$(poke node1 step stop rtest-other)" "^BUSY " "and so is any other step of it"
is "$(agent_state node1)" "$state_before" "neither changed the record"
like "$(poke node1 step stop $R)" "^FAILED .*stop cannot follow dump" "stop asked again after the dump: never runs twice"

# --- 4. migrate down over the network meets a rollback's guards ------------------------------
like "$(poke node1 step migrate rtest-other down=1)" "^BUSY " "migrate down for another rollout: BUSY"
like "$(poke node1 step migrate $R down=1)" "^FAILED .*cannot follow dump" "migrate down before the swap: refused"
like "$(poke node1 step swap $R version=2.0.0)" "^FAILED .*names version 2.0.0, but rollout $R installs 1.2.0" \
    "a step naming another version than its pre-flight recorded is refused"
is "$(poke node1 step swap $R version=1.2.0 sha256="$sha")" "OK " "swap"
like "$(poke node1 step migrate $R down=1)" "^FAILED .*applied 0 migrations here" \
    "migrate down of more than this rollout applied: refused"
like "$(poke node2 step migrate $r1 down=1)" "^FAILED .*cannot follow committed" \
    "migrate down on a node whose rollout is committed: refused"
like "$(poke node2 step migrate rtest-none down=1)" "^FAILED .*no pre-flight for rollout rtest-none" \
    "migrate down on a node that never saw the rollout: refused"
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql" "no migration ran down"
like "$(poke node1 step migrate $R)" "^FAILED .*migrate up failed" "migrate up fails (fault in 0003)"
like "$(poke node1 step migrate $R)" "^FAILED .*migrate up failed" "asked again by a new request, it runs again and fails again"
is "$(poke node1 step rollback $R)" "OK " "rollback"
is "$(bin_sha node1)" "$sha_110" "node1 runs the 1.1.0 binary again"
is "$(gamesrv_health node1)" 200 "node1 is healthy"
is "$(db_snapshot)" "$snap" "schema, bookkeeping and rows are what they were"

# --- 3. A second coordinator changes nothing ------------------------------------------------
# (Dumps of other services in the same backup folder must outlive this service's pruning.)
for other in gamesrv-tools+r20200101T000000-aaaaaa.dump gamesrvx+r1.dump gamesrv-r1.dump; do
    node_exec node1 touch -d 2020-01-01 "/var/backups/baton/gamesrv/$other"
done
f3=$(rollout_file 1.2.0)
"$BATON" rollout "$f3" >"$CLUSTER_DIR/a.out" 2>&1 &
first=$!
sleep 0.3
"$BATON" rollout "$f3" >"$CLUSTER_DIR/b.out" 2>&1
second=$?
wait "$first"
is "$? $second" "0 2" "two rollouts 0.3 s apart: the first completes, the second is refused"
cat "$CLUSTER_DIR/a.out" "$CLUSTER_DIR/b.out" >&2
like "$(cat "$CLUSTER_DIR/b.out")" "refused: .*nothing was" "the second says it changed nothing"
ra=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$CLUSTER_DIR/a.out")
for n in node1 node2; do
    is "$(state_field "$n" rollout_id) $(state_field "$n" step)" "$ra committed" \
        "$n: committed by the first rollout, no record of the second"
    is "$(node_exec "$n" /opt/gamesrv/bin/gamesrv --version)" 1.2.0 "$n runs 1.2.0"
done

f4=$(rollout_file 2.0.0)
"$BATON" rollout "$f4" >"$CLUSTER_DIR/c.out" 2>&1 &
one=$!
"$BATON" rollout "$f4" >"$CLUSTER_DIR/d.out" 2>&1 &
two=$!
wait "$one"
c1=$?
wait "$two"
c2=$?
cat "$CLUSTER_DIR/c.out" "$CLUSTER_DIR/d.out" >&2
is "$(printf '%s\n' "$c1" "$c2" | sort | tr '\n' ' ')" "0 2 " \
    "two rollouts at the same instant: one completes, one is refused"
for n in node1 node2; do
    is "$(node_exec "$n" /opt/gamesrv/bin/gamesrv --version)" 2.0.0 "$n runs 2.0.0"
    is "$(state_field "$n" step)" committed "$n: committed"
done
is "$(migration_ids game)" \
    "0001_players.sql,0002_player_level.sql,0003_inventory.sql,0004_guilds.sql" \
    "each migration applied once"
is "$(node_exec node1 sh -c 'ls /var/backups/baton/gamesrv/ | grep -c "^gamesrv+r"')" 2 \
    "pruning kept keep_backups (2) of gamesrv's own dumps"
is "$(node_exec node1 sh -c 'ls /var/backups/baton/gamesrv/ | grep -vc "^gamesrv+r"')" 3 \
    "and never touched another service's (gamesrv-tools+…, gamesrvx+…) or a foreign file"
done_testing
