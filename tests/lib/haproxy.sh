# haproxy.sh: Debian's haproxy in front of the test cluster's nodes, for haproxy tests and the
# bench: its runtime API and frontend on the cluster's host address, at ports of the run's own
# (ten per PG_TEST_PORT: notify.sh and webhook.sh take the first six), a backend "game" with a
# server per node (named as the node) checked on gamesrv's /healthcheck.
#
#   haproxy_start CHECKS [use-server]  writes $CLUSTER_DIR/haproxy.cfg, starts haproxy (or
#                                      replaces the one running): CHECKS as default-server's
#                                      ("inter 400 fall 2 rise 5"); use-server: a request with
#                                      header X-Node: NODE goes to NODE's server
#   haproxy_stop                       ends it
#   haproxy_stat NODE COLUMN           a column of `show stat` for NODE's server (status, scur)
#   haproxy_in_service                 how many servers haproxy sends traffic to
# HAPROXY_API and HAPROXY_FRONT are HOST:PORT, set as this file is sourced.

HAPROXY=/usr/sbin/haproxy
_haproxy_base=$((40000 + ${PG_TEST_PORT:-55432} % 1000 * 10))
HAPROXY_API=$BATON_TEST_SUBNET.1:$((_haproxy_base + 7))
HAPROXY_FRONT=$BATON_TEST_SUBNET.1:$((_haproxy_base + 8))

haproxy_start() {
    local n pid=$CLUSTER_DIR/haproxy.pid old=()
    {
        cat <<CFG
global
    stats socket ipv4@$HAPROXY_API level admin
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
frontend players
    bind $HAPROXY_FRONT
    default_backend game
backend game
    option httpchk GET /healthcheck
    default-server $1
CFG
        if [ "${2:-}" = use-server ]; then
            for n in $CLUSTER_NODES; do echo "    use-server $n if { req.hdr(x-node) -m str $n }"; done
        fi
        for n in $CLUSTER_NODES; do echo "    server $n $(node_ip "$n"):$GAMESRV_PORT check"; done
    } >"$CLUSTER_DIR/haproxy.cfg"
    [ -s "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null && old=(-sf "$(cat "$pid")")
    "$HAPROXY" -f "$CLUSTER_DIR/haproxy.cfg" -D -p "$pid" "${old[@]}"
}

haproxy_stop() {
    local pid=${CLUSTER_DIR:-/nonexistent}/haproxy.pid
    [ -s "$pid" ] && kill "$(cat "$pid")" 2>/dev/null
    return 0
}

haproxy_stat() { python3 tests/fixtures/lbload.py stat "$HAPROXY_API" game "$1" "$2"; }
haproxy_in_service() { python3 tests/fixtures/lbload.py count "$HAPROXY_API" game 2>/dev/null; }
