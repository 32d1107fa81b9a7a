# fleet.sh: many real agents on few test nodes, for fan-out tests and benchmarks (needs
# cluster.sh, pg.sh, gamesrv.sh and baton.sh sourced, and a cluster from baton_cluster).
#
# Each agent is an instance of a template unit, baton-agent@I.service, running the real
# baton-agent with its own config (/etc/baton/fleet/I.yml), port (FLEET_PORT0 + I), state folder
# and key pair; it manages its own instance of a cheap stand-in service, standin@I.service
# (sleep, a few hundred KiB), whose "binary" is a hard link to the gamesrv build. All of them use
# the cluster's database.
#
#   fleet_up COUNT [NODES]     COUNT agents spread over NODES (default: every cluster node)
#   fleet_rollout_file VERSION FILE     a rollout file naming every fleet agent
#   fleet_agents               "NODE I" lines, one per agent
#   fleet_stage_file ARTIFACT FILE     a rollout file naming every fleet agent that stages
#                              ARTIFACT (a 1.1.0 build) and is then refused at every pre-flight:
#                              it names version 9.9.9, which the artifact does not report

FLEET_PORT0=${FLEET_PORT0:-20000}
# The stand-ins' health probe: nothing listens on port 1, so a rollout's verify never passes
# (plans, statuses and staging need no more); bench/idle.sh's fleet run points it at something
# that listens (the cluster's PostgreSQL) to hold every agent in its stability window.
FLEET_HEALTH_TCP=${FLEET_HEALTH_TCP:-127.0.0.1:1}

_fleet_config() { # NODE I
    cat <<CFG
node: $1-a$2
listen: tcp://0.0.0.0:$((FLEET_PORT0 + $2))
state_dir: /var/lib/baton-fleet/$2
curve:
  secret_key: /etc/baton/fleet/$2.key
  authorized_keys: /etc/baton/coordinators
services:
  - name: gamesrv
    unit: standin@$2.service
    binary: /opt/fleet/$2/gamesrv
    database: "$(pg_conninfo game)"
    backup_dir: /var/backups/baton-fleet/$2
    min_healthy_time: 0s
    health:
      tcp: $FLEET_HEALTH_TCP
CFG
}

fleet_agents() { cat "$CLUSTER_DIR/fleet.list"; }

fleet_up() { # COUNT [NODES]
    local count=$1 nodes=${2:-$CLUSTER_NODES} n i k=0 d
    local -a nl
    read -ra nl <<<"$nodes"
    d=$CLUSTER_DIR/fleet
    rm -rf "$d"
    mkdir -p "$d"
    : >"$CLUSTER_DIR/fleet.list"
    key_pair coordinator
    for ((i = 1; i <= count; i++)); do
        n=${nl[$(((i - 1) % ${#nl[@]}))]}
        mkdir -p "$d/$n/etc/baton/fleet"
        "${BUILD:-build}/baton" keygen "$d/$n/etc/baton/fleet/$i" >/dev/null || return 1
        _fleet_config "$n" "$i" >"$d/$n/etc/baton/fleet/$i.yml"
        echo "$n $i" >>"$CLUSTER_DIR/fleet.list"
    done
    for n in "${nl[@]}"; do
        [ -d "$d/$n" ] || continue
        mkdir -p "$d/$n/etc/systemd/system"
        sed -e 's|/usr/local/sbin/baton-agent --config /etc/baton/agent.yml|/opt/baton/bin/baton-agent --config /etc/baton/fleet/%i.yml|' \
            -e 's|^ConditionPathExists=.*|ConditionPathExists=/etc/baton/fleet/%i.yml|' \
            -e 's|^Description=.*|Description=baton agent %i (fleet)|' \
            agent/baton-agent.service >"$d/$n/etc/systemd/system/baton-agent@.service"
        printf '[Unit]\nDescription=stand-in service %%i\n[Service]\nExecStart=/bin/sleep infinity\n' \
            >"$d/$n/etc/systemd/system/standin@.service"
        tar -C "$d/$n" -cf "$d/$n.tar" etc
        node_push "$n" "$d/$n.tar" /tmp/fleet.tar 0600 || return 1
        node_push "$n" "$(gamesrv_bin 1.0.0)" /opt/fleet/gamesrv 0755 || return 1
        node_push "$n" "${BUILD:-build}/baton-agent" /opt/baton/bin/baton-agent 0755 || return 1
        node_push "$n" "$(keys_dir)/coordinator.pub" /etc/baton/coordinators 0644 || return 1
        # shellcheck disable=SC2016
        node_exec "$n" sh -c 'tar -C / -xf /tmp/fleet.tar && rm /tmp/fleet.tar &&
            for y in /etc/baton/fleet/*.yml; do
                i=$(basename "$y" .yml)
                mkdir -p /opt/fleet/$i && ln -f /opt/fleet/gamesrv /opt/fleet/$i/gamesrv
            done && systemctl daemon-reload &&
            ids=$(for y in /etc/baton/fleet/*.yml; do basename "$y" .yml; done) &&
            systemctl start $(for i in $ids; do echo standin@$i.service; done) &&
            systemctl start $(for i in $ids; do echo baton-agent@$i.service; done)' || return 1
    done
}

fleet_stage_file() { # ARTIFACT FILE
    fleet_rollout_file 1.1.0 "$2" >/dev/null &&
        sed -i -e "s|^artifact: .*|artifact: $1|" -e 's|^version: .*|version: 9.9.9|' "$2" && echo "$2"
}

fleet_rollout_file() { # VERSION FILE
    local version=$1 file=$2 n i
    {
        echo "service: gamesrv"
        echo "version: ${version%%+*}"
        echo "artifact: $(realpath "$(gamesrv_bin "$version")")"
        echo "timeouts:"
        echo "  connect: 10s"
        echo "  step: 2m"
        printf 'curve:\n  secret_key: %s\n' "$(keys_dir)/coordinator.key"
        echo "nodes:"
        while read -r n i; do
            echo "  - name: $n-a$i"
            echo "    endpoint: tcp://$(node_ip "$n"):$((FLEET_PORT0 + i))"
            echo "    public_key: \"$(cat "$CLUSTER_DIR/fleet/$n/etc/baton/fleet/$i.pub")\""
        done <"$CLUSTER_DIR/fleet.list"
    } >"$file"
    echo "$file"
}
