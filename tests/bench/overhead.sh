#!/bin/bash
# overhead.sh: baton against the floor (the checklist typed as plain commands, checklist.sh, run
# in each node one after another) and an Ansible `serial: 1` play of the same steps over SSH
# (checklist.yml), at 1, 3 and 6 nodes, each node with a database of its own, between two builds
# with the same migrations (each migrate up applies nothing). baton runs with
# min_healthy_time: 0, so all three make one health check. Contenders alternate, REPS runs each
# per node count, on one fresh cluster.
#
# CONTENDERS="floor with_baton" leaves Ansible out.
# STANDIN=notify (default): the gamesrv fixture as it is, Type=notify, healthy when systemd's
# start job ends. STANDIN=simple: the same service as Type=simple that needs 150 ms after its
# start to listen (GAMESRV_START_DELAY_MS), as Nakama (Type=simple, no sd_notify) is: the start
# job ends at once and every contender finds it healthy by probing.
#
# Writes to $BENCH_OUT (default build/bench), SUFFIX "" for notify, "-simple" for simple:
#   overhead$SUFFIX.dat   NODES CONTENDER WALL_S MEAN_DOWN_S   one line per run
#   timeline$SUFFIX.dat   NODE STEP START_S END_S               the steps of one 3-node rollout
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
. tests/lib/ssh.sh
BATON=$(realpath "${BUILD:-build}/baton")
REPS=${REPS:-3}
STANDIN=${STANDIN:-notify}
case $STANDIN in
notify) sfx= ;;
simple) sfx=-simple ;;
*) echo "overhead: STANDIN is notify or simple, not '$STANDIN'" >&2; exit 2 ;;
esac
OUT=$(realpath -m "${BENCH_OUT:-build/bench}")
mkdir -p "$OUT"
exec 3>&1 1>&2

cluster_sweep
cluster_trap
BATON_CLUSTER_DB_PER_NODE=1 baton_cluster ovh 6 1.1.0 || exit 1
ssh_setup || exit 1
for n in $CLUSTER_NODES; do
    node_sshd "$n" || exit 1
    node_push "$n" tests/bench/checklist.sh /opt/bench/checklist.sh 0755 || exit 1
    for v in 1.1.0 1.1.1; do node_push "$n" "$(gamesrv_bin "$v")" "/opt/bench/gamesrv-$v" 0755 || exit 1; done
    if [ "$STANDIN" = simple ]; then
        node_exec "$n" sh -c 'mkdir -p /etc/systemd/system/gamesrv.service.d &&
            printf "[Service]\nType=simple\nEnvironment=GAMESRV_START_DELAY_MS=150\n" \
                >/etc/systemd/system/gamesrv.service.d/simple.conf &&
            systemctl daemon-reload && systemctl restart gamesrv' || exit 1
        [ "$(node_exec "$n" systemctl show -P Type gamesrv)" = simple ] || { echo "overhead: $n's gamesrv is not Type=simple" >&2; exit 1; }
    fi
done
ssh_inventory "$CLUSTER_DIR/inventory"
all_nodes=$CLUSTER_NODES

now() { date +%s.%N; }
# The service's last outage on NODE, from its own lines in the node's journal: "stopped by signal"
# (it stopped serving) to "serving on" (listening again, just before READY=1).
window() {
    node_exec "$1" journalctl -u gamesrv -o short-unix --no-pager |
        awk '/stopped by signal/ { s = $1 } /serving on/ { e = $1 } END { printf "%.6f %.6f", s, e }'
}
down_s() { window "$1" | awk '{ printf "%.3f", $2 - $1 }'; }
mean_down() { # NODES...
    local n
    for n in "$@"; do down_s "$n"; echo; done | awk '{ s += $1 } END { printf "%.3f", s / NR }'
}
version_of() { node_exec "$1" /opt/gamesrv/bin/gamesrv --version; }

floor() { # VERSION NODES...
    local v=$1 n
    shift
    for n in "$@"; do node_exec "$n" /opt/bench/checklist.sh "/opt/bench/gamesrv-$v" "/var/backups/checklist-$v.dump" || return 1; done
}
with_baton() { # VERSION NODES...
    local v=$1 f
    shift
    CLUSTER_NODES="$*" BATON_TEST_ROLLOUT_MIN_HEALTHY=0s rollout_file "$v" "$CLUSTER_DIR/ovh-$v.yml" >/dev/null
    f=$CLUSTER_DIR/ovh-$v.yml
    "$BATON" rollout "$f" >"$CLUSTER_DIR/last-baton.out" 2>&1
}
with_ansible() { # VERSION NODES...
    local v=$1
    shift
    ANSIBLE_HOST_KEY_CHECKING=False ansible-playbook -i "$CLUSTER_DIR/inventory" \
        --limit "$(echo "$*" | tr ' ' ',')" -e "new_binary=$(realpath "$(gamesrv_bin "$v")")" \
        -e "version=$v" tests/bench/checklist.yml >"$CLUSTER_DIR/last-ansible.out" 2>&1
}

: >"$OUT/overhead$sfx.dat"
for count in 1 3 6; do
    nodes=$(echo "$all_nodes" | tr ' ' '\n' | head -n "$count" | tr '\n' ' ')
    for rep in $(seq "$REPS"); do
        for who in ${CONTENDERS:-floor with_baton with_ansible}; do
            # Every node of the set back on 1.1.0 (not measured), then up to 1.1.1: an upgrade,
            # as baton's version rules want (a downgrade needs the node's history of it).
            for n in $nodes; do [ "$(version_of "$n")" = 1.1.0 ] || floor 1.1.0 "$n" || exit 1; done
            v=1.1.1
            t0=$(now)
            # shellcheck disable=SC2086
            if ! $who "$v" $nodes; then
                echo "overhead: $who to $v on $count nodes failed" >&2
                cat "$CLUSTER_DIR/last-baton.out" "$CLUSTER_DIR/last-ansible.out" 2>/dev/null | tail -20 >&2
                exit 1
            fi
            t1=$(now)
            # shellcheck disable=SC2086
            printf '%s %s %.3f %s\n' "$count" "${who#with_}" "$(echo "$t1 - $t0" | bc)" "$(mean_down $nodes)" |
                tee -a "$OUT/overhead$sfx.dat" >&2
            # shellcheck disable=SC2086
            for n in $nodes; do [ "$(version_of "$n")" = "$v" ] || { echo "overhead: $n not on $v after $who" >&2; exit 1; }; done
        done
    done
done

# One 3-node baton rollout, step by step, from the agents' journals.
for n in node1 node2 node3; do [ "$(version_of "$n")" = 1.1.0 ] || floor 1.1.0 "$n" || exit 1; done
v=1.1.1
with_baton "$v" node1 node2 node3 || exit 1
id=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$CLUSTER_DIR/last-baton.out")
: >"$OUT/timeline$sfx.dat"
for n in node1 node2 node3; do
    for s in preflight stop dump swap migrate start verify commit; do
        a=$(step_time "$n" "$id" "$s" first)
        b=$(step_time "$n" "$id" "$s" last)
        [ -n "$a" ] && echo "$n $s $a $b" >>"$OUT/timeline$sfx.dat"
    done
    echo "$n down $(window "$n")" >>"$OUT/timeline$sfx.dat"
done
echo "overhead: done" >&2
