#!/bin/bash
# skew.sh: a coordinator and agents of different releases (the faults issue's second case: an
# older coordinator against newer agents on a shared database lost a row). The previous release
# (PREV_COMMIT, agent 0.2.0, before the version window) is built from this repository's own
# history in a worktree, then:
#   - this coordinator with the previous release's agents: within the window (one minor apart),
#     the rollout works (exit 0);
#   - the previous release's coordinator with this release's agents: it says no version, so the
#     agents refuse it at Hello (exit 2), naming both, with nothing staged or stopped.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
PREV_COMMIT=9bda2d5 # the last commit before the version window: baton 0.2.0
PREV=$PWD/${BUILD:-build}/prev-release

if ! git cat-file -e "$PREV_COMMIT^{commit}" 2>/dev/null; then
    echo "1..0 # SKIP the previous release's commit $PREV_COMMIT is not in this clone's history"
    exit 0
fi
# Built once per build folder (about a minute), in a worktree of its own, as a plain build
# whatever this run is (a `make test SANITIZE=1` passes SANITIZE down through MAKEFLAGS).
if [ ! -x "$PREV/build/baton" ] || [ ! -x "$PREV/build/baton-agent" ]; then
    rm -rf "$PREV"
    git worktree prune
    git worktree add -q --detach "$PREV" "$PREV_COMMIT" >&2 &&
        env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u SANITIZE -u BUILD \
            make -C "$PREV" -j2 build/baton build/baton-agent >"$PREV.build.log" 2>&1 ||
        { tail -20 "$PREV.build.log" >&2; }
fi
ok "the previous release ($PREV_COMMIT) builds from git" test -x "$PREV/build/baton-agent"

cluster_sweep
cluster_trap
ok "cluster: 2 nodes on gamesrv 1.0.0" baton_cluster skew 2 1.0.0 || { done_testing; exit 1; }
versions() { for n in $CLUSTER_NODES; do node_exec "$n" /opt/gamesrv/bin/gamesrv --version; done | tr '\n' ' '; }
agents() { # BINARY: every node's agent replaced by BINARY, restarted
    local n
    for n in $CLUSTER_NODES; do
        node_push "$n" "$1" /opt/baton/bin/baton-agent 0755 &&
            node_exec "$n" systemctl restart baton-agent || return 1
    done
}
up() { for n in $CLUSTER_NODES; do [ "$(node_exec "$n" systemctl is-active baton-agent)" = active ] || return 1; done; }
stops() { for n in $CLUSTER_NODES; do unit_stops "$n"; done | tr '\n' ' '; }

like "$("$PREV/build/baton-agent" --help 2>&1)" "usage: baton-agent" "the previous agent runs here"
like "$("$BATON" --version)" "^baton 0\.3\." "this coordinator is 0.3"

# --- this coordinator, the previous release's agents -------------------------------------------
ok "the previous release's agents on both nodes" agents "$PREV/build/baton-agent"
ok "and running" wait_for 20 up
out=$("$BATON" rollout "$(rollout_file 1.1.0)" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 0 "this coordinator with agents one minor older: the rollout works (exit 0)"
is "$(versions)" "1.1.0 1.1.0 " "both nodes on 1.1.0"
# An artifact by URL: these agents cannot pull; refused at Hello, before anything is staged.
f=$(rollout_file 1.2.0 "$ROLLOUT_DIR/url.yml")
sed -i "s|^artifact: .*|artifact: http://$BATON_TEST_SUBNET.1:9/gamesrv-1.2.0\nsha256: $(sha256sum "$(gamesrv_bin 1.2.0)" | cut -d' ' -f1)|" "$f"
before=$(stops)
out=$("$BATON" rollout "$f" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 2 "an artifact by URL with agents that cannot pull: refused (exit 2)"
like "$out" "hello +node1 +FAIL .*its agent \(0\.[0-9.]+\) cannot pull artifacts by URL: upgrade it" \
    "at Hello, naming the agent's version"
is "$(stops)" "$before" "no unit was stopped"

# --- the previous release's coordinator, this release's agents ----------------------------------
ok "this release's agents on both nodes" agents "${BUILD:-build}/baton-agent"
ok "and running" wait_for 20 up
before=$(stops)
staged() { node_exec node1 sh -c 'ls /var/lib/baton/staging/gamesrv 2>/dev/null | wc -l'; }
staged_before=$(staged)
out=$("$PREV/build/baton" rollout "$(rollout_file 1.2.0)" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 2 "the previous coordinator with these agents: refused up front (exit 2)"
like "$out" "hello +node1 +FAIL .*the coordinator does not say its version \(older than 0\.3\.0\); this agent is 0\.3\." \
    "at Hello, naming both versions"
is "$(stops)" "$before" "no unit was stopped"
is "$(staged)" "$staged_before" "nothing was staged"
is "$(versions)" "1.1.0 1.1.0 " "both nodes still on 1.1.0"
out=$("$BATON" rollout "$(rollout_file 1.2.0)" 2>&1)
is "$?" 0 "this coordinator with these agents: exit 0"
done_testing
