# gamesrv.sh: install and inspect the gamesrv fixture on test-cluster nodes (needs cluster.sh
# and pg.sh sourced first).
#
#   gamesrv_bin VERSION                    path of a built gamesrv (VERSION may be 1.1.0+health)
#   gamesrv_install NODE VERSION DB [EXTRA-CONFIG-LINES]
#                                          binary, config and unit into NODE, daemon-reload
#   gamesrv_swap NODE VERSION              replace only the binary (what an upgrade changes)
#   gamesrv_health NODE [FROM-NODE]        HTTP status of /healthcheck, asked from the host or
#                                          from another node; 000 when unreachable
#   migration_ids DB                       the bookkeeping table's ids, comma separated, sorted
#   padded_artifact VERSION BYTES OUT      the build of VERSION with BYTES random bytes after its
#                                          ELF image (the loader ignores them), to span several
#                                          staging chunks; made once, prints OUT

GAMESRV_SRC=${GAMESRV_SRC:-tests/fixtures/gamesrv}
GAMESRV_PORT=${GAMESRV_PORT:-7350}

gamesrv_bin() {
    local b="${BUILD:-build}/fixtures/gamesrv/$1/gamesrv"
    [ -x "$b" ] || { echo "gamesrv: no build for version $1 ($b); run make" >&2; return 1; }
    echo "$b"
}

gamesrv_install() {
    local node=$1 version=$2 db=$3 extra=${4:-} bin conf
    bin=$(gamesrv_bin "$version") || return 1
    conf=$(mktemp)
    {
        echo "GAMESRV_DATABASE=$(pg_conninfo "$db")"
        echo "GAMESRV_PORT=$GAMESRV_PORT"
        [ -n "$extra" ] && printf '%s\n' "$extra"
    } >"$conf"
    node_push "$node" "$bin" /opt/gamesrv/bin/gamesrv 0755 &&
        node_push "$node" "$conf" /etc/gamesrv/gamesrv.conf 0640 &&
        node_push "$node" "$GAMESRV_SRC/gamesrv.service" /etc/systemd/system/gamesrv.service &&
        node_exec "$node" systemctl daemon-reload
    local rc=$?
    rm -f "$conf"
    return $rc
}

gamesrv_swap() {
    local bin
    bin=$(gamesrv_bin "$2") || return 1
    node_push "$1" "$bin" /opt/gamesrv/bin/gamesrv 0755
}

gamesrv_health() {
    local url="http://$(node_ip "$1"):$GAMESRV_PORT/healthcheck"
    if [ -n "${2:-}" ]; then
        node_exec "$2" curl -s -o /dev/null -m 3 -w '%{http_code}' "$url"
    else
        curl -s -o /dev/null -m 3 -w '%{http_code}' "$url"
    fi
}

padded_artifact() {
    local bin
    bin=$(gamesrv_bin "$1") || return 1
    [ -f "$3" ] || { cat "$bin" && head -c "$2" /dev/urandom; } >"$3" || return 1
    chmod 0755 "$3" && echo "$3"
}

migration_ids() {
    pg_sql "$1" "SELECT coalesce(string_agg(id, ',' ORDER BY id), '') FROM migration_info" 2>/dev/null
}
