# pg.sh: a real, throw-away PostgreSQL server for baton's tests.
#
# The server refuses to run as root, so initdb and pg_ctl run as the `postgres` user in a folder
# that user owns. It listens on a private port on a given address (the test bridge, so that
# nodes reach it) and on a socket folder of its own; it trusts local connections and the test
# subnet only. Use one database for a whole cluster (like Nakama) or one per node (a fleet).
#
#   pg_up DIR PORT LISTEN_IP SUBNET/CIDR   initdb + start; sets PG_DIR PG_PORT PG_HOST PG_SOCK
#   pg_createdb NAME                        create a database
#   pg_sql DB SQL                           run SQL, print rows unaligned ('|' between columns)
#   pg_conninfo DB                          a libpq conninfo reaching DB over the network
#   pg_stop DIR, pg_start DIR PORT LISTEN   the server down (fast) and up again, DIR kept
#   pg_down DIR                             stop the server and remove DIR (safe to call twice)

PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir 2>/dev/null)}
[ -x "$PG_BINDIR/initdb" ] || PG_BINDIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

_pg_as() { runuser -u postgres -- "$@"; }

pg_up() {
    local dir=$1 port=$2 listen=$3 subnet=$4
    [ -x "$PG_BINDIR/initdb" ] || { echo "pg: no initdb (install postgresql)" >&2; return 1; }
    id postgres >/dev/null 2>&1 || { echo "pg: no postgres user (install postgresql)" >&2; return 1; }
    PG_DIR=$dir PG_PORT=$port PG_HOST=$listen PG_SOCK=$dir/sock
    mkdir -p "$dir" && chown postgres: "$dir" && chmod 0755 "$dir" || return 1
    _pg_as mkdir -p "$dir/sock" || return 1
    _pg_as "$PG_BINDIR/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    # initdb -A trust covers local and loopback connections only; nodes come over the bridge.
    echo "host all all $subnet trust" | _pg_as tee -a "$dir/data/pg_hba.conf" >/dev/null
    pg_start "$dir" "$port" "$listen"
}

# pg_stop DIR / pg_start DIR PORT LISTEN_IP: the server of DIR down (fast: sessions cut, as in
# a restart) and up again as pg_up started it, for tests of a database that goes away.
pg_stop() { _pg_as "$PG_BINDIR/pg_ctl" -D "$1/data" -w -t 30 stop -m fast >/dev/null; }
pg_start() {
    _pg_as "$PG_BINDIR/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 30 \
        -o "-p $2 -k $1/sock -c listen_addresses=$3 -c fsync=off" start >/dev/null ||
        { cat "$1/server.log" >&2; return 1; }
}

pg_sql() {
    psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d "$1" -c "$2"
}

pg_createdb() {
    pg_sql postgres "CREATE DATABASE \"$1\""
}

pg_conninfo() {
    echo "host=$PG_HOST port=$PG_PORT dbname=$1 user=postgres"
}

pg_down() {
    local dir=${1:-$PG_DIR}
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    local pid deadline
    if [ -f "$dir/data/postmaster.pid" ]; then
        pid=$(head -1 "$dir/data/postmaster.pid")
        _pg_as "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1
        # pg_ctl returns once the pid file is gone, a moment before the postmaster has exited.
        deadline=$((SECONDS + 10))
        while [ -n "$pid" ] && [ -e "/proc/$pid" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    fi
    rm -rf "$dir"
}
