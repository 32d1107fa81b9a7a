# cluster.sh: a real test cluster on one machine, for baton's tests and `make demo`.
#
# A node is a real systemd running as PID 1 of its own PID + mount + network + UTS namespace,
# with its own /run and /tmp (tmpfs), its own /etc, /var, /opt, /srv and /root (overlays over the
# host's, so binaries and libraries are shared but every write stays in the node), and its own
# unit folder mounted on /etc/systemd/system. Nodes are joined by a bridge; the host has the
# bridge's .1 address. Everything a cluster owns is recorded under $BATON_TEST_ROOT/NAME, so
# that cluster_down (or cluster_sweep, for a driver that was killed) can remove all of it.
#
# Source it, then:
#   cluster_up NAME N             start N nodes node1..nodeN (NAME: 1-8 of [a-z0-9])
#   node_exec NODE CMD...         run a command inside a node (clean environment, as root)
#   node_push NODE SRC DST [MODE] copy a host file into a node
#   node_ip NODE                  the node's address on the bridge
#   node_cut NODE / node_heal NODE  take the node's link down / up (a network partition)
#   node_kill NODE                kill the node's systemd, and with it everything in the node
#   node_boot NODE                start a killed node again (its files kept, /run and /tmp new)
#   cluster_down [NAME]           tear down; safe to call twice and on a half-built cluster
#   cluster_sweep                 tear down clusters whose driver process is gone
# Requires root, util-linux (unshare, nsenter), iproute2 and systemd.

BATON_TEST_ROOT=${BATON_TEST_ROOT:-/tmp/baton-test}
# The test network. Only addresses in this subnet, assigned by us inside our namespaces, are used.
BATON_TEST_SUBNET=${BATON_TEST_SUBNET:-10.213.0}
CLUSTER_READY_TIMEOUT=${CLUSTER_READY_TIMEOUT:-20}
# Links and cgroups are the host's, whatever BATON_TEST_ROOT says: a run on another subnet (a
# second suite, a helper's test beside the developer's) tags their names, so that the same test
# run twice at once never takes the other's bridge. The default subnet keeps the plain names.
cluster_tag() {
    [ "$BATON_TEST_SUBNET" = 10.213.0 ] && return 0
    printf '%s' "$BATON_TEST_SUBNET" | cksum | awk '{ printf "%02x", $1 % 251 }'
}
CLUSTER_TAG=$(cluster_tag)
# The host's names of cluster NAME: its bridge, and the prefix of its nodes' links.
cluster_bridge_name() { echo "bt-$1$CLUSTER_TAG"; }
cluster_veth_prefix() { echo "v$1$CLUSTER_TAG"; }

_cluster_die() {
    echo "cluster: $*" >&2
    return 1
}

# The start time of a process (field 22 of /proc/PID/stat), recorded beside each PID so that a
# PID reused by another process after a crash is never mistaken for one of ours.
_proc_starttime() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) } # the command name may contain spaces; fields restart after ") "
    set -- $stat
    echo "${20}"
}

# True when the PID recorded in FILE ("PID STARTTIME") is still that very process.
_recorded_alive() {
    local pid start now
    [ -r "$1" ] || return 1
    read -r pid start <"$1" || return 1
    now=$(_proc_starttime "$pid") || return 1
    [ "$now" = "$start" ]
}

_record_pid() { # FILE PID
    echo "$2 $(_proc_starttime "$2")" >"$1"
}

_cluster_dir() { echo "$BATON_TEST_ROOT/${1:-$CLUSTER_NAME}"; }

_node_dir() { echo "$CLUSTER_DIR/nodes/$1"; }

_node_index() { # node3 -> 3
    local n=${1#node}
    case $n in '' | *[!0-9]*) _cluster_die "bad node name '$1' (want nodeN)" ;; *) echo "$n" ;; esac
}

node_pid() {
    local f
    f=$(_node_dir "$1")/pid
    [ -r "$f" ] || { _cluster_die "node $1 has no recorded pid"; return 1; }
    cut -d' ' -f1 "$f"
}

node_ip() {
    local i
    i=$(_node_index "$1") || return 1
    echo "$CLUSTER_SUBNET.$((10 + i))"
}

_veth_name() { # the host end of a node's link: v<cluster><tag><index>, at most 15 characters
    echo "$(cluster_veth_prefix "$CLUSTER_NAME")$(_node_index "$1")"
}

# Run a command inside a node, as root, in a clean environment like a login shell would have
# (and, in a sanitized run, the sanitizers' report folder: see _node_sanitizer).
node_exec() {
    local node=$1 pid san=()
    shift
    pid=$(node_pid "$node") || return 1
    [ -n "${BATON_SAN_REPORTS:-}" ] && san=("ASAN_OPTIONS=$(_san_options "$NODE_SAN_DIR/exec")"
        "UBSAN_OPTIONS=$(_ubsan_options "$NODE_SAN_DIR/exec")")
    # -r: the node's root, which is not the mount namespace's own root where the cluster was
    # made inside a chroot (tests/cluster/fresh.sh); elsewhere it is the same.
    nsenter -t "$pid" -m -p -n -u -r -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 "${san[@]}" "$@"
}

# Sanitizer reports (a run of sanitized binaries: tests/run-tests sets BATON_SAN_REPORTS to a
# host folder). ASan and UBSan write each report to a file of its own (log_path.PID) instead of
# stderr, so that no report is lost in a node's journal or a test's captured output. In a node
# they go to NODE_SAN_DIR, which every unit may write (systemd's DefaultEnvironment, so the agent
# installed by any test, package or Ansible role has it) and which lives in the node's /var
# overlay on the host: cluster_down moves them to BATON_SAN_REPORTS, also after a node_kill.
NODE_SAN_DIR=/var/log/baton-sanitizer
# What a sanitizer report looks like where it is not a file of its own: UBSan in a binary that
# also has ASan (GCC links two runtimes) ignores log_path and writes to stderr, which a unit's
# journal keeps. So the nodes' journals are persistent (in their /var overlay, surviving a
# node_kill) and read for these lines by cluster_down; tests/run-tests reads each test's log.
SAN_MARKERS='runtime error: |ERROR: (Address|Leak)Sanitizer|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer'
_san_options() { echo "log_path=$1:detect_leaks=1"; }
_ubsan_options() { echo "log_path=$1:print_stacktrace=1"; }
_node_sanitizer() { # NODEDIR: before the node boots
    local d=$1
    [ -n "${BATON_SAN_REPORTS:-}" ] || return 0
    mkdir -p "$d/var.upper${NODE_SAN_DIR#/var}" "$d/etc.upper/systemd/system.conf.d" \
        "$d/var.upper/log/journal" || return 1
    chmod 1777 "$d/var.upper${NODE_SAN_DIR#/var}"
    # Units without LeakSanitizer: its stop-the-world at exit ptraces the process, which the
    # agent's hardened unit does not allow, and it then spins until the unit's stop timeout
    # (2 h) instead of reporting. Leaks are looked for in the unit tests, the coordinator and
    # the commands run in nodes; every other report (ASan, UBSan) is on.
    printf '[Manager]\nDefaultEnvironment="ASAN_OPTIONS=%s:detect_leaks=0" "UBSAN_OPTIONS=%s"\n' \
        "$(_san_options "$NODE_SAN_DIR/unit" | sed 's/:detect_leaks=1//')" \
        "$(_ubsan_options "$NODE_SAN_DIR/unit")" \
        >"$d/etc.upper/systemd/system.conf.d/50-baton-sanitizer.conf"
}
# In a sanitized run the journal goes to /var/log/journal (the node's overlay) from now on, as
# systemd-journal-flush.service does at a machine's boot; elsewhere it stays in /run.
_node_journal_persistent() {
    [ -n "${BATON_SAN_REPORTS:-}" ] || return 0
    node_exec "$1" journalctl --flush
}
_node_sanitizer_collect() { # NODEDIR: move its reports to BATON_SAN_REPORTS, named by node
    local d=$1 f found
    [ -n "${BATON_SAN_REPORTS:-}" ] || return 0
    found=$(journalctl -D "$d/var.upper/log/journal" -o short --no-pager 2>/dev/null |
        grep -E -A30 "$SAN_MARKERS" | head -200)
    if [ -n "$found" ]; then
        mkdir -p "$BATON_SAN_REPORTS"
        printf '%s\n' "$found" >"$BATON_SAN_REPORTS/$CLUSTER_NAME-${d##*/}-journal"
    fi
    for f in "$d/var.upper${NODE_SAN_DIR#/var}"/*; do
        [ -f "$f" ] || continue
        mkdir -p "$BATON_SAN_REPORTS"
        mv "$f" "$BATON_SAN_REPORTS/$CLUSTER_NAME-${d##*/}-${f##*/}"
    done
    return 0
}

# Copy SRC from the host to DST inside NODE (parents created), with MODE (default 0644).
node_push() {
    local node=$1 src=$2 dst=$3 mode=${4:-0644}
    [ -r "$src" ] || { _cluster_die "node_push: cannot read $src"; return 1; }
    node_exec "$node" sh -c 'mkdir -p "$(dirname "$1")" && cat >"$1.push" && chmod "$2" "$1.push" && mv -f "$1.push" "$1"' \
        sh "$dst" "$mode" <"$src"
}

node_cut() { ip link set "$(_veth_name "$1")" down; }
node_heal() { ip link set "$(_veth_name "$1")" up; }

# Kill a node's systemd (PID 1 of its namespace): the kernel then kills everything in it.
node_kill() {
    local f
    f=$(_node_dir "$1")/pid
    _recorded_alive "$f" || return 0
    kill -9 "$(cut -d' ' -f1 "$f")" 2>/dev/null
    _wait_gone "$f" 10
}

# Start a node killed with node_kill again, as a machine boots after a power cut: its disks (the
# overlay folders) as they were, /run and /tmp empty, its link up, its journal running. What
# else starts at boot (the agent, the service) the test starts, as enabled units would.
node_boot() {
    # The old link's host end goes with the dead node's namespace, but the kernel cleans a
    # namespace up in its own time: remove it now, or the new one cannot take its name.
    ip link del "$(_veth_name "$1")" 2>/dev/null
    _node_start "$1" && _node_wait_ready "$1" && _node_link "$1" &&
        node_exec "$1" systemctl start systemd-journald.socket systemd-journald-dev-log.socket \
            systemd-journald.service && _node_journal_persistent "$1"
}

_wait_gone() { # PIDFILE SECONDS
    local deadline=$((SECONDS + $2))
    while _recorded_alive "$1"; do
        [ $SECONDS -lt $deadline ] || { _cluster_die "pid in $1 survived SIGKILL"; return 1; }
        sleep 0.05
    done
}

# The script a node's namespaces run before they become its systemd.
_node_boot_script() { # DIR NAME
    local d=$1 name=$2 tops="etc var opt srv root" unit_path=/etc/systemd/system
    # CLUSTER_OVERLAY_USR=1: /usr too, so that a package installed in the node (dpkg -i) stays
    # there, and systemd also loads units from /lib/systemd/system, where packages put them.
    if [ "${CLUSTER_OVERLAY_USR:-0}" = 1 ]; then
        tops="$tops usr"
        unit_path=/etc/systemd/system:/lib/systemd/system
    fi
    cat <<EOF
set -e
$(_node_cgroups "$name")
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/systemd
for top in $tops; do
    mount -t overlay overlay -o lowerdir=/\$top,upperdir=$d/\$top.upper,workdir=$d/\$top.work /\$top
done
mount --bind $d/units /etc/systemd/system
mount -t tmpfs -o mode=1777 tmpfs /tmp
# root's shell startup is a fresh Debian's, not the host's: a login over SSH (Ansible) on a
# host whose ~/.bashrc runs, say, pyenv init would pay that in every command.
for f in bashrc profile; do
    if [ -r /usr/share/base-files/dot.\$f ]; then cp /usr/share/base-files/dot.\$f /root/.\$f; fi
done
rm -f /root/.bash_profile /root/.bash_login
echo $name >/etc/hostname
hostname $name
# In a cgroup namespace rooted at the node's own cgroup, over an empty /sys/fs/cgroup: the
# node's systemd mounts the hierarchies itself and sees only its own tree.
mount -t tmpfs -o mode=0755 tmpfs /sys/fs/cgroup
SYSTEMD_UNIT_PATH=$unit_path exec unshare --cgroup /lib/systemd/systemd --system --unit=minimal.target --log-target=${CLUSTER_SYSTEMD_LOG:-null}
EOF
}

_node_prepare_units() { # UNITDIR
    local u=$1 t
    mkdir -p "$u"
    # Stub targets: without them `systemctl start` fails with "Unit sysinit.target not found".
    for t in sysinit basic shutdown minimal; do
        printf '[Unit]\nDescription=%s (baton test node)\n' "$t" >"$u/$t.target"
    done
    # A journal per node, so units log as they do in production (journalctl inside the node).
    for t in systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket; do
        [ -r "/lib/systemd/system/$t" ] && cp "/lib/systemd/system/$t" "$u/$t"
    done
    return 0
}

# Every node's systemd gets a cgroup of its own in every hierarchy, joined before it starts: it
# makes its units' cgroups below its own. (The nodes share the host's cgroupfs; a systemd at its
# root would make /system.slice/gamesrv.service there, the same folder for every node, and a
# unit that stops on one node would remove it under the same unit starting on another: status
# 219/CGROUP, seen when nodes restart their services at the same moment.)
_node_cgroup_name() { echo "baton-test-$CLUSTER_NAME$CLUSTER_TAG-$1"; }
_node_cgroups() { # NAME: shell lines for its boot script, run by the node's future PID 1
    local cg
    cg=$(_node_cgroup_name "$1")
    cat <<CGEOF
for h in /sys/fs/cgroup/*/; do
    [ -f "\${h}cgroup.procs" ] && [ ! -L "\${h%/}" ] || continue
    mkdir -p "\${h}$cg" 2>/dev/null || continue
    if [ -f "\${h}$cg/cpuset.cpus" ]; then # a new cpuset takes no task until it has cpus, mems
        cat "\${h}cpuset.cpus" >"\${h}$cg/cpuset.cpus" 2>/dev/null || true
        cat "\${h}cpuset.mems" >"\${h}$cg/cpuset.mems" 2>/dev/null || true
    fi
    echo 0 >"\${h}$cg/cgroup.procs" 2>/dev/null || true # 0: the writer, this shell
done
CGEOF
}
_node_cgroups_remove() { # NAME: once its processes are gone, deepest first
    local cg h
    cg=$(_node_cgroup_name "$1")
    for h in /sys/fs/cgroup/*/; do
        [ -d "$h$cg" ] && find "$h$cg" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    return 0
}

_node_start() { # NAME
    local name=$1 d launcher pid i deadline state
    d=$(_node_dir "$name")
    mkdir -p "$d"
    for i in etc var opt srv root usr; do mkdir -p "$d/$i.upper" "$d/$i.work"; done
    _node_prepare_units "$d/units"
    _node_sanitizer "$d" || return 1
    _node_boot_script "$d" "$name" >"$d/boot.sh"
    setsid env container=baton-test unshare --pid --fork --mount --mount-proc --net --uts \
        --propagation private /bin/sh "$d/boot.sh" </dev/null >"$d/console.log" 2>&1 &
    launcher=$!
    _record_pid "$d/launcher" "$launcher"
    # The node's systemd is the one child unshare forks.
    deadline=$((SECONDS + 5))
    pid=
    while [ -z "$pid" ]; do
        pid=$(cat "/proc/$launcher/task/$launcher/children" 2>/dev/null | awk '{print $1}')
        [ -n "$pid" ] && break
        kill -0 "$launcher" 2>/dev/null || { _cluster_die "node $name: launcher exited: $(cat "$d/console.log")"; return 1; }
        [ $SECONDS -lt $deadline ] || { _cluster_die "node $name: no systemd after 5 s"; return 1; }
        sleep 0.02
    done
    _record_pid "$d/pid" "$pid"
}

_node_wait_ready() { # NAME
    local name=$1 deadline state
    deadline=$((SECONDS + CLUSTER_READY_TIMEOUT))
    while :; do
        state=$(node_exec "$name" systemctl is-system-running 2>/dev/null)
        case $state in running | degraded) return 0 ;; esac
        [ $SECONDS -lt $deadline ] || { _cluster_die "node $name not ready after ${CLUSTER_READY_TIMEOUT}s (state '$state'): $(cat "$(_node_dir "$name")/console.log")"; return 1; }
        sleep 0.05
    done
}

_node_link() { # NAME: a veth pair from the bridge into the node, the node's address on eth0
    local name=$1 veth pid ip
    veth=$(_veth_name "$name")
    pid=$(node_pid "$name")
    ip=$(node_ip "$name")
    ip link add "$veth" type veth peer name eth0 netns "$pid" &&
        ip link set "$veth" master "$CLUSTER_BRIDGE" &&
        ip link set "$veth" up &&
        nsenter -t "$pid" -n ip addr add "$ip/24" dev eth0 &&
        nsenter -t "$pid" -n ip link set eth0 up &&
        nsenter -t "$pid" -n ip link set lo up
}

# cluster_up NAME N: start N nodes and wait until each systemd is running.
cluster_up() {
    local name=$1 count=$2 i
    case $name in '' | *[!a-z0-9]*) _cluster_die "cluster name '$name' must be 1-8 of [a-z0-9]"; return 1 ;; esac
    [ ${#name} -le 8 ] || { _cluster_die "cluster name '$name' longer than 8"; return 1; }
    case $count in '' | *[!0-9]*) _cluster_die "node count '$count' is not a number"; return 1 ;; esac
    [ "$count" -ge 1 ] && [ "$count" -le 50 ] || { _cluster_die "node count $count not in 1..50"; return 1; }
    [ "$(id -u)" = 0 ] || { _cluster_die "a test cluster needs root"; return 1; }
    [ -e "$(_cluster_dir "$name")" ] && { _cluster_die "cluster $name exists ($(_cluster_dir "$name")); cluster_down $name first"; return 1; }

    CLUSTER_NAME=$name
    CLUSTER_DIR=$(_cluster_dir "$name")
    CLUSTER_SUBNET=$BATON_TEST_SUBNET
    CLUSTER_HOST_IP=$CLUSTER_SUBNET.1
    CLUSTER_BRIDGE=$(cluster_bridge_name "$name")
    CLUSTER_NODES=
    mkdir -p "$BATON_TEST_ROOT" && chmod 0755 "$BATON_TEST_ROOT"
    mkdir -p "$CLUSTER_DIR/nodes" && chmod 0755 "$CLUSTER_DIR"
    _record_pid "$CLUSTER_DIR/owner" "${BASHPID:-$$}"
    printf 'CLUSTER_SUBNET=%s\nCLUSTER_BRIDGE=%s\n' "$CLUSTER_SUBNET" "$CLUSTER_BRIDGE" >"$CLUSTER_DIR/env"

    if ip link show "$CLUSTER_BRIDGE" >/dev/null 2>&1; then
        _cluster_die "bridge $CLUSTER_BRIDGE already exists"; return 1
    fi
    ip link add "$CLUSTER_BRIDGE" type bridge &&
        ip addr add "$CLUSTER_HOST_IP/24" dev "$CLUSTER_BRIDGE" &&
        ip link set "$CLUSTER_BRIDGE" up || return 1
    echo bridge >"$CLUSTER_DIR/bridge"

    for i in $(seq 1 "$count"); do
        CLUSTER_NODES="$CLUSTER_NODES node$i"
        _node_start "node$i" || return 1
    done
    CLUSTER_NODES=${CLUSTER_NODES# }
    for i in $CLUSTER_NODES; do
        _node_wait_ready "$i" && _node_link "$i" || return 1
        node_exec "$i" systemctl start systemd-journald.socket systemd-journald-dev-log.socket \
            systemd-journald.service && _node_journal_persistent "$i" || return 1
    done
}

# Load a cluster someone else started (another shell, the demo) into this shell's variables.
cluster_attach() {
    CLUSTER_NAME=$1
    CLUSTER_DIR=$(_cluster_dir "$1")
    [ -d "$CLUSTER_DIR" ] || { _cluster_die "no cluster $1"; return 1; }
    . "$CLUSTER_DIR/env"
    CLUSTER_HOST_IP=$CLUSTER_SUBNET.1
    CLUSTER_NODES=$(cd "$CLUSTER_DIR/nodes" && ls | sort -V | tr '\n' ' ')
    CLUSTER_NODES=${CLUSTER_NODES% }
}

# cluster_down [NAME]: kill every node, remove links, bridge, database and folders. Works from
# what is recorded on disk, so it also cleans a half-built cluster or one from a dead driver.
cluster_down() {
    local name=${1:-$CLUSTER_NAME} dir n rc=0
    [ -n "$name" ] || return 0
    dir=$(_cluster_dir "$name")
    [ -d "$dir" ] || return 0
    local CLUSTER_NAME=$name CLUSTER_DIR=$dir CLUSTER_SUBNET CLUSTER_BRIDGE
    [ -r "$dir/env" ] && . "$dir/env"
    for n in "$dir"/nodes/*; do
        [ -d "$n" ] || continue
        if _recorded_alive "$n/pid"; then
            kill -9 "$(cut -d' ' -f1 "$n/pid")" 2>/dev/null
            _wait_gone "$n/pid" 10 || rc=1
        fi
        # unshare exits once its child is gone; kill it in case the node never started.
        if _recorded_alive "$n/launcher"; then
            kill -9 "$(cut -d' ' -f1 "$n/launcher")" 2>/dev/null
            _wait_gone "$n/launcher" 10 || rc=1
        fi
        # The veth pair dies with the node's network namespace; remove a leftover host end.
        ip link del "$(cluster_veth_prefix "$name")${n##*/node}" 2>/dev/null
        _node_cgroups_remove "${n##*/}"
        _node_sanitizer_collect "$n"
    done
    declare -F pg_down >/dev/null && pg_down "$dir/pg"
    # A mirror (tests/lib/nginx.sh) the test left running: its master, which ends its workers.
    [ -s "$dir/nginx/nginx.pid" ] && kill "$(cat "$dir/nginx/nginx.pid")" 2>/dev/null
    # Only a bridge this cluster made (recorded once made): a cluster_up that found the name
    # taken by another run's cluster must not take that one's bridge away.
    if [ -n "$CLUSTER_BRIDGE" ] && [ -e "$dir/bridge" ] && ip link show "$CLUSTER_BRIDGE" >/dev/null 2>&1; then
        ip link del "$CLUSTER_BRIDGE" || rc=1
    fi
    rm -rf "$dir" || rc=1
    rmdir "$BATON_TEST_ROOT" 2>/dev/null
    return $rc
}

# Tear down every cluster whose driver (the process that ran cluster_up) no longer exists.
cluster_sweep() {
    local d
    for d in "$BATON_TEST_ROOT"/*; do
        [ -d "$d" ] || continue
        _recorded_alive "$d/owner" && continue
        echo "cluster: sweeping ${d##*/}, left by a driver that is gone" >&2
        cluster_down "${d##*/}"
    done
}

# Install traps so that the cluster is torn down however the driver ends (exit, ^C, TERM).
cluster_trap() {
    trap 'cluster_down' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

# True when a TCP connection to HOST PORT succeeds within 2 seconds (no ping on this machine).
tcp_open() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}
