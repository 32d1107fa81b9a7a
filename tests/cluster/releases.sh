#!/bin/bash
# releases.sh: whole releases side by side on a real cluster (2 nodes, one shared database).
# gamesrv is installed the way an operator had it before releases (RELEASE_DIR/current a folder
# of its own, the unit running current/bin/gamesrv); the agents get `release_dir`. A release
# bundle (tar.gz: the binary, a static file, a unit drop-in) rolls through the `current` link,
# the old install adopted as a release; a single binary and hostile archives are refused before
# anything stops; a failure after the switch is rolled back by switching back, the drop-in
# gone; a crash of the agent between unpacking and switching, and in the middle of the switch,
# leaves the node on the old release or the new, never half, and `baton rollback` settles it;
# `baton rollback` of a committed rollout switches back to the adopted install.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
export BATON_TEST_KNOBS=1 # slow_step can hold the dump: the agent is killed there

cluster_sweep
cluster_trap
ok "cluster: 2 nodes on gamesrv 1.1.0, one shared database" baton_cluster rel 2 1.1.0 ||
    { done_testing; exit 1; }
BIN=/opt/gamesrv/current/bin/gamesrv
DROPIN=/etc/systemd/system/gamesrv.service.d/50-baton-release.conf
converted=0
for n in $CLUSTER_NODES; do
    node_exec "$n" sh -ec "
        mkdir -p /opt/gamesrv/current/bin
        mv /opt/gamesrv/bin/gamesrv $BIN
        rmdir /opt/gamesrv/bin
        sed -i 's|/opt/gamesrv/bin/gamesrv|$BIN|' /etc/systemd/system/gamesrv.service
        sed -i -e 's|^    binary: .*|    binary: $BIN\n    release_dir: /opt/gamesrv\n    keep_releases: 2|' \
            /etc/baton/agent.yml
        systemctl daemon-reload
        systemctl restart gamesrv baton-agent" && converted=$((converted + 1))
done
is "$converted" 2 "each node runs gamesrv from /opt/gamesrv/current/ (a folder), agents with release_dir"
versions() { node_versions $BIN; }
current() { node_exec "$1" readlink /opt/gamesrv/current || echo "(a folder)"; }
env_of() { node_exec "$1" systemctl show -p Environment --value gamesrv; }
stops() { cluster_stops; }
rid() { sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$1" | tail -1; }
# bundle VERSION OUT [DROPIN-LINE...]: a release archive as an operator makes one
bundle() {
    local v=$1 out=$2 d
    shift 2
    d=$(mktemp -d)
    mkdir -p "$d/bin" "$d/share"
    cp "$(gamesrv_bin "$v")" "$d/bin/gamesrv"
    echo "release notes of $v" >"$d/share/NOTES"
    if [ $# -gt 0 ]; then
        mkdir -p "$d/systemd"
        { echo "[Service]"; printf '%s\n' "$@"; } >"$d/systemd/unit.conf"
    fi
    tar -C "$d" -czf "$out" . && rm -rf "$d" && echo "$out"
}
rollout_of() { # VERSION ARTIFACT FILE
    rollout_file "$1" "$3" >/dev/null
    sed -i "s|^artifact: .*|artifact: $2|" "$3"
    echo "$3"
}
is "$(versions)" "1.1.0 1.1.0 " "both on 1.1.0"
snap0=$(db_snapshot)

# --- a release bundle, the old install adopted ---------------------------------------------------
b120=$(bundle 1.2.0 "$ROLLOUT_DIR/gamesrv-1.2.0.tar.gz" "Environment=GAMESRV_RELEASE=1.2.0")
f120=$(rollout_of 1.2.0 "$b120" "$ROLLOUT_DIR/r120.yml")
out=$("$BATON" plan "$f120" 2>&1)
is "$?" 0 "baton plan with a release bundle: could run"
out=$("$BATON" rollout "$f120" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "1.1.0 -> 1.2.0 as a release bundle: exit 0"
is "$(versions)" "1.2.0 1.2.0 " "every node runs 1.2.0 through current/"
sha=$(sha256sum "$b120" | cut -c1-12)
for n in $CLUSTER_NODES; do
    is "$(current "$n")" "releases/1.2.0-$sha" "$n: current -> releases/1.2.0-$sha"
    is "$(node_exec "$n" cat /opt/gamesrv/current/share/NOTES)" "release notes of 1.2.0" \
        "$n: the release's other files came with it"
    ok "$n: the old install is kept whole as releases/1.1.0-adopted" \
        node_exec "$n" test -x /opt/gamesrv/releases/1.1.0-adopted/bin/gamesrv
    like "$(env_of "$n")" "GAMESRV_RELEASE=1.2.0" "$n: the release's drop-in is the unit's"
    is "$(gamesrv_health "$n")" 200 "$n is healthy"
done
is "$(migration_ids game)" "0001_players.sql,0002_player_level.sql,0003_inventory.sql" \
    "0003 applied once"

# --- baton rollback of the committed rollout: back to the adopted install ------------------------
r120=$(state_field node1 rollout_id)
out=$("$BATON" rollback "$r120" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton rollback $r120 (committed): exit 0"
for n in $CLUSTER_NODES; do
    is "$(current "$n")" "releases/1.1.0-adopted" "$n: current -> the adopted install"
    ok "$n: 1.2.0's drop-in is gone" node_exec "$n" test ! -e "$DROPIN"
done
is "$(versions)" "1.1.0 1.1.0 " "both run 1.1.0 again"
is "$(db_snapshot)" "$snap0" "schema and rows are 1.1.0's, byte for byte"
inode() { node_exec node1 stat -c %i "/opt/gamesrv/releases/1.2.0-$sha/bin/gamesrv"; }
inode_before=$(inode)
out=$("$BATON" rollout "$f120" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "1.2.0 again: exit 0"
is "$(inode)" "$inode_before" "its release was there already: switched to, not unpacked again"
is "$(current node1) $(versions)" "releases/1.2.0-$sha 1.2.0 1.2.0 " "on 1.2.0 again"


# --- refused before anything stops -------------------------------------------------------------
snap=$(db_snapshot)
stops_before=$(stops)
f=$(rollout_file 2.0.0 "$ROLLOUT_DIR/single.yml")
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "a single binary for a service with releases: refused (exit 2)"
like "$out" "gamesrv takes whole releases \(release_dir /opt/gamesrv\): the artifact is no release archive" \
    "saying why"
d=$(mktemp -d)
mkdir -p "$d/bin" && cp "$(gamesrv_bin 2.0.0)" "$d/bin/gamesrv" && ln -s ../../../etc "$d/bin/etc"
tar -C "$d" -czf "$ROLLOUT_DIR/evil.tar.gz" . && rm -rf "$d"
f=$(rollout_of 2.0.0 "$ROLLOUT_DIR/evil.tar.gz" "$ROLLOUT_DIR/evil.yml")
out=$("$BATON" rollout "$f" 2>&1)
is "$?" 2 "a bundle with a link pointing out of the release: refused (exit 2)"
like "$out" "member './bin/etc' refused: it is a link pointing out of the release" "naming the member"
is "$(node_exec node1 sh -c 'ls -A /opt/gamesrv/releases | grep -cE "^[.]?2[.]0[.]0-" || true')" 0 \
    "nothing of it is left in releases/"
is "$(db_snapshot) $(stops) $(versions)" "$snap $stops_before 1.2.0 1.2.0 " \
    "no unit stopped, nothing changed"

# --- a failure after the switch: switched back, the drop-in with it ------------------------------
b200=$(bundle 2.0.0 "$ROLLOUT_DIR/gamesrv-2.0.0-bad.tar.gz" "Environment=GAMESRV_FAULT=crash")
f=$(rollout_of 2.0.0 "$b200" "$ROLLOUT_DIR/bad.yml")
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 3 "a release whose drop-in breaks the start: rolled back (exit 3)"
like "$out" "start +FAIL .*
 +\| [0-9:]+ gamesrv\[[0-9]+\]: gamesrv: crashing on start \(injected fault\)" \
    "under the failed start, the service's own words from its journal"
for n in $CLUSTER_NODES; do
    is "$(current "$n")" "releases/1.2.0-$sha" "$n: current is 1.2.0's again"
    like "$(env_of "$n")" "GAMESRV_RELEASE=1.2.0" "$n: 1.2.0's drop-in is back"
    unlike "$(env_of "$n")" "GAMESRV_FAULT" "$n: the failed release's drop-in is gone"
done
is "$(db_snapshot) $(versions)" "$snap 1.2.0 1.2.0 " "schema and rows as before, 1.2.0 running"

# --- the agent dies between unpacking and switching, and in the middle of the switch -------------
b200=$(bundle 2.0.0 "$ROLLOUT_DIR/gamesrv-2.0.0.tar.gz")
sha2=$(sha256sum "$b200" | cut -c1-12)
f=$(rollout_of 2.0.0 "$b200" "$ROLLOUT_DIR/r200.yml")
slow_step node1 dump 60
"$BATON" rollout "$f" >"$CLUSTER_DIR/r200.out" 2>&1 &
coordinator=$!
ok "node1 is dumping (its release unpacked, not switched)" wait_for 30 tool_running node1 dump
kill -9 "$coordinator"
node_exec node1 systemctl kill --kill-whom=main -s KILL baton-agent
slow_step node1 dump 0
ok "systemd restarted node1's agent" wait_for 20 agent_restarted node1 1
is "$(current node1)" "releases/1.2.0-$sha" "node1 is on the old release, not half on the new"
ok "the new release is whole under its name" node_exec node1 test -x "/opt/gamesrv/releases/2.0.0-$sha2/bin/gamesrv"
is "$(node_exec node1 sh -c 'ls -A /opt/gamesrv/releases | grep -c "^\." || true')" 0 "no half-unpacked folder"
# What a crash in the middle of the switch leaves: the link renamed, the record not written.
node_exec node1 sh -c "ln -s releases/2.0.0-$sha2 /opt/gamesrv/.current.tmp && mv -T /opt/gamesrv/.current.tmp /opt/gamesrv/current"
out=$("$BATON" rollback "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "baton rollback settles it: exit 0"
is "$(current node1)" "releases/1.2.0-$sha" "node1's current is the old release again"
is "$(versions)" "1.2.0 1.2.0 " "both run 1.2.0"
is "$(gamesrv_health node1) $(gamesrv_health node2)" "200 200" "both healthy"
is "$(db_snapshot)" "$snap" "schema and rows as before"

done_testing
