#!/bin/bash
# getting-started.sh: doc/getting-started.md, followed literally. Every command block of the page
# runs as written, on the machine its `<!-- test: WHERE -->` comment names: "controller" is a
# test node with a copy of this work tree in /root/baton (the operator's clone), nodeN a fresh
# test node (no agent) where gamesrv 1.0.0 already runs on the test PostgreSQL. Both nodes have
# their own overlay over /usr, so the packages go into the nodes and the host stays untouched.
# Every command must exit 0, and what a command's comment quotes ("…" standing for anything) is
# what it must print; then the outcome the page promises: the agent enabled but waiting for its
# config, then active; `baton status` showing the node with its version and key; plan and
# rollout exit 0; node1 running 1.1.0; `baton list` listing the rollout.
#
# Changed from the page, and only this: 10.0.0.11 is node1's address on the test bridge;
# `$EDITOR /etc/baton/agent.yml` is a sed of the values an operator would type (the test
# database's conninfo, no passfile); the rollout file's `public_key: "…"` gets the line
# `baton keygen keys/node1` printed; `make deb` is skipped when $BUILD/deb holds packages newer
# than their sources (they are copied into the clone instead; else the clone builds them and
# they are kept in $BUILD/deb for the next run); the new build of the service, gamesrv-1.1.0,
# is the fixture's, put beside the rollout file. scp reaches node1 over a real sshd.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/all.sh
. tests/lib/ssh.sh
BUILD=${BUILD:-build}
# The page installs the packages its clone builds (plain binaries), so a sanitized run would
# test the plain ones a second time, as fresh.sh would.
case $BUILD in build-san*) echo "1..0 # SKIP a sanitized run: the page installs the plain packages its clone builds"; exit 0 ;; esac
PAGE=doc/getting-started.md
PAGE_IP=10.0.0.11
CONTROLLER=node2
CLONE=/root/baton

cluster_sweep
cluster_trap
CLUSTER_OVERLAY_USR=1 cluster_up getstart 2 || { done_testing; exit 1; }
pg_up "$CLUSTER_DIR/pg" "${PG_TEST_PORT:-55432}" "$CLUSTER_HOST_IP" "$CLUSTER_SUBNET.0/24" &&
    pg_createdb game >&2 || { done_testing; exit 1; }
W=$CLUSTER_DIR/work
mkdir -p "$W"
NODE_IP=$(node_ip node1)

# --- the page's blocks -------------------------------------------------------------------------
# W/block.N: the block's lines (indent removed), W/block.N.where: its test: comment. A block
# without one is an error: the test would silently skip it.
awk -v dir="$W" '
    function flush() { if (inb) { close(dir "/block." n); inb = 0 } }
    /^<!-- test: .* -->$/ { where = $0; sub(/^<!-- test: /, "", where); sub(/ -->$/, "", where); next }
    /^```/ {
        if (fence) { fence = 0; close(dir "/block." n); next }
        flush(); fence = 1; n++; print (where == "" ? "UNMARKED" : where) > (dir "/block." n ".where")
        close(dir "/block." n ".where"); where = ""; printf "" > (dir "/block." n); next
    }
    fence { print > (dir "/block." n); next }
    /^    / && (inb || prev == "") {
        if (!inb) { n++; inb = 1; print (where == "" ? "UNMARKED" : where) > (dir "/block." n ".where")
                    close(dir "/block." n ".where"); where = "" }
        print substr($0, 5) > (dir "/block." n); prev = $0; next
    }
    /^$/ { prev = ""; next }
    { flush(); prev = $0 }
    END { flush(); print n > (dir "/count") }
' "$PAGE"
nblocks=$(cat "$W/count")
diag "$PAGE: $nblocks blocks"
is "$(cat "$W"/block.*.where | grep -c UNMARKED)" 0 "every block of the page says where it runs"

# --- the machines before the page: a fresh node1, a controller with a clone ----------------------
ok "node1 is fresh: no baton-agent, no /etc/baton" \
    node_exec node1 sh -c '! command -v baton-agent && ! command -v baton && [ ! -e /etc/baton ]'
# Like a real machine (install.sh): no policy-rc.d forbidding the packages' maintainer scripts.
for n in node1 $CONTROLLER; do node_exec "$n" rm -f /usr/sbin/policy-rc.d; done
gamesrv_install node1 1.0.0 game >&2 && node_exec node1 /opt/gamesrv/bin/gamesrv migrate up >&2 &&
    node_exec node1 systemctl start gamesrv
is "$(node_exec node1 /opt/gamesrv/bin/gamesrv --version)" 1.0.0 "node1 runs gamesrv 1.0.0"
# The controller's clone: this work tree's files (tracked and new, none of the builds).
git ls-files -z -c -o --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null |
    node_exec $CONTROLLER sh -c "mkdir -p $CLONE && tar -xf - -C $CLONE"
node_push $CONTROLLER "$(gamesrv_bin 1.1.0)" "$CLONE/gamesrv-1.1.0" 0755
# scp from the controller to node1: the operator's SSH key, node1's host key already known.
ssh_setup && node_sshd node1 &&
    node_push $CONTROLLER "$SSH_KEY" /root/.ssh/id_ed25519 0600 &&
    echo "$NODE_IP $(cut -d' ' -f1,2 "$SSH_DIR/host_ed25519.pub")" >"$W/known_hosts" &&
    node_push $CONTROLLER "$W/known_hosts" /root/.ssh/known_hosts 0644
ok "the controller reaches node1 over SSH" node_exec $CONTROLLER ssh -o BatchMode=yes "root@$NODE_IP" true

# Packages newer than everything they are made of are reused (make deb takes a minute or two).
debs_fresh() {
    local d
    for d in "$BUILD"/deb/baton_*_amd64.deb "$BUILD"/deb/baton-agent_*_amd64.deb; do
        [ -f "$d" ] || return 1
        [ -z "$(find agent common coordinator proto debian Makefile doc/agent.yml.example \
            doc/baton.1 doc/baton-agent.8 doc/baton.bash-completion -newer "$d" -type f | head -1)" ] ||
            return 1
    done
}
if debs_fresh; then
    REUSE_DEBS=1
    for d in "$BUILD"/deb/baton_*_amd64.deb "$BUILD"/deb/baton-agent_*_amd64.deb; do
        node_push $CONTROLLER "$d" "$CLONE/build/deb/${d##*/}"
    done
else
    REUSE_DEBS=0
fi

# --- running the page ------------------------------------------------------------------------
# WHERE -> node and folder
where_node() { case $1 in controller) echo $CONTROLLER ;; *) echo "$1" ;; esac; }
where_dir() { case $1 in controller) echo $CLONE ;; *) echo /root ;; esac; }

# What a command's comment quotes, as a grep -E pattern: "…" is anything.
claim_of() {
    local c
    c=$(printf '%s' "$1" | sed -n 's/^[^#]*[[:space:]]#[[:space:]]//p')
    case $c in *\"*\"*) ;; *) return 0 ;; esac
    c=${c#*\"}
    c=${c%%\"*}
    printf '%s' "$c" | sed -e 's/[][\.*^$(){}+?|]/\\&/g' -e 's/…/.*/g'
}

# The operator's $EDITOR: the values that differ on the test cluster.
EDIT="sed -i -e 's|^\\(    database: \\).*|\\1\"$(pg_conninfo game)\"|' -e '/^    passfile:/d' /etc/baton/agent.yml"

KEY='' FPR='' ROLLOUT_ID='' STATUS_OUT='' LIST_OUT=''
# run_cmd WHERE LINE: one command of the page, with its assertions.
run_cmd() {
    local where=$1 line=$2 cmd node dir out rc claim desc
    cmd=${line//"$PAGE_IP"/"$NODE_IP"}
    node=$(where_node "$where")
    dir=$(where_dir "$where")
    case $cmd in
    '$EDITOR /etc/baton/agent.yml'*) cmd=$EDIT ;;
    'make deb'*)
        if [ "$REUSE_DEBS" = 1 ]; then
            diag "make deb: $BUILD/deb is newer than the sources, its packages are in the clone"
            return 0
        fi ;;
    esac
    desc=$(printf '%s' "$line" | sed 's/[[:space:]]*#.*$//')
    diag "$where\$ $cmd"
    out=$(node_exec "$node" bash -c "cd $dir && $cmd" 2>&1 </dev/null)
    rc=$?
    if [ "$(printf '%s\n' "$out" | wc -l)" -gt 40 ]; then # make deb: its end tells
        printf '%s\n' "$out" | tail -30
    else
        printf '%s\n' "$out"
    fi | sed 's/^/    /' >&2
    is "$rc" 0 "$where: $desc exits 0"
    [ "$rc" = 0 ] || return 1
    claim=$(claim_of "$line")
    [ -n "$claim" ] && like "$out" "$claim" "$where: $desc prints what the page says"
    case $cmd in
    'make deb'*)
        mkdir -p "$BUILD/deb" && for f in $(node_exec "$node" sh -c "ls $dir/build/deb/*.deb"); do
            node_exec "$node" cat "$f" >"$BUILD/deb/${f##*/}"
        done ;;
    'apt-get install ./build/deb/baton_'*)
        is "$(node_exec "$node" sh -c 'command -v baton')" /usr/bin/baton "the controller has baton from its package" ;;
    'baton keygen keys/node1'*)
        KEY=$(printf '%s\n' "$out" | sed -n 's/^ *public_key: "\(.*\)"$/\1/p')
        FPR=$(printf '%s\n' "$out" | sed -n 's/.*fingerprint \([0-9a-f]*\).*/\1/p')
        is "${#KEY}" 40 "keygen printed the public_key line for the rollout file (40 characters)" ;;
    'apt-get install ./baton-agent_'*)
        is "$(node_exec "$node" systemctl is-enabled baton-agent)" enabled "the agent is enabled on install"
        is "$(node_exec "$node" systemctl is-active baton-agent)" inactive "and waits for its config" ;;
    'systemctl start baton-agent'*)
        is "$(node_exec "$node" systemctl is-active baton-agent)" active "the agent runs" ;;
    'baton status'*) STATUS_OUT=$out ;;
    'baton rollout'*) ROLLOUT_ID=$(printf '%s\n' "$out" | sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' | head -1) ;;
    'baton list'*) LIST_OUT=$out ;;
    esac
}

start=$SECONDS stopped=
for i in $(seq 1 "$nblocks"); do
    read -r where file <"$W/block.$i.where"
    if [ -n "${file:-}" ]; then # a file the operator writes: the page's text, key filled in
        pat='public_key: "…"'
        rep="public_key: \"$KEY\""
        while IFS= read -r l; do
            l=${l//"$PAGE_IP"/"$NODE_IP"}
            printf '%s\n' "${l//"$pat"/"$rep"}"
        done <"$W/block.$i" >"$W/$file"
        sed 's/^/    /' "$W/$file" >&2
        ok "$where: $file written as the page shows it" \
            node_push "$(where_node "$where")" "$W/$file" "$(where_dir "$where")/$file"
        continue
    fi
    while IFS= read -r line; do
        case $line in '' | '#'* | ' '*) continue ;; esac # blank, or a comment's continuation
        run_cmd "$where" "$line" || { stopped=$line; break 2; }
    done <"$W/block.$i"
done
[ -z "$stopped" ] || diag "the page stops at \"$stopped\": what follows needs it"
diag "the page's commands: $((SECONDS - start)) s"

# --- what the page promises --------------------------------------------------------------------
like "$(printf '%s\n' "$STATUS_OUT" | tr '\n' ' ')" "node1 +tcp://$NODE_IP:7400 +1\.0\.0 +active .*${FPR:-no-key}" \
    "baton status: node1 answers, with its version, unit and key"
is "$(node_exec node1 /opt/gamesrv/bin/gamesrv --version)" 1.1.0 "node1 runs 1.1.0 after baton rollout"
ok "the rollout said its id" [ -n "$ROLLOUT_ID" ]
like "$(printf '%s\n' "$LIST_OUT" | grep "^${ROLLOUT_ID:-no-id} ")" \
    "^${ROLLOUT_ID:-no-id} +done +[0-9TZ:.-]+ +gamesrv +1\.1\.0 +done: 1 of 1 nodes on gamesrv 1\.1\.0" \
    "baton list lists the rollout, done"
like "$(node_exec $CONTROLLER sh -c "cd $CLONE && baton status rollout.yml" 2>&1)" \
    "node1 +tcp://$NODE_IP:7400 +1\.1\.0 +active +commit" "baton status again: node1 on 1.1.0, its last step commit"
done_testing
