# nginx.sh: Debian's nginx as the fleet's mirror, serving $CLUSTER_DIR/mirror on the cluster's
# host address at a port of the run's own (ten per PG_TEST_PORT: notify.sh and webhook.sh take
# the first six, Prometheus the seventh, haproxy the next two, the mirror the last).
#
#   mirror_start [RATE [tls]]   writes $CLUSTER_DIR/nginx/nginx.conf and starts nginx (or
#                               replaces the one running): RATE is nginx's limit_rate per
#                               connection ("2m"; 0 = none); tls: https with a certificate of
#                               the test CA (mirror_ca) for the host address
#   mirror_stop                 ends it (waits until the port is closed)
#   mirror_url FILE             the URL of FILE in the mirror (http or https, as started)
#   mirror_ca                   makes the test CA once, prints its certificate's path
#   mirror_log                  the access log: a line a request, "ADDRESS STATUS BYTES range=...
#                               if_range=... REQUEST-LINE" (an absolute URL when through a proxy)
# MIRROR_DIR is the folder it serves.

NGINX=/usr/sbin/nginx
MIRROR_HOST=$BATON_TEST_SUBNET.1
MIRROR_PORT=$((40000 + ${PG_TEST_PORT:-55432} % 1000 * 10 + 9))

_mirror_dir() { echo "$CLUSTER_DIR/nginx"; }

mirror_ca() {
    local d
    d=$(_mirror_dir)
    mkdir -p "$d"
    if [ ! -s "$d/ca.pem" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=baton test CA" \
            -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null || return 1
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$MIRROR_HOST" \
            -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null || return 1
        printf 'subjectAltName=IP:%s\n' "$MIRROR_HOST" >"$d/san.ext"
        openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
            -CAcreateserial -days 2 -extfile "$d/san.ext" -out "$d/server.pem" 2>/dev/null ||
            return 1
    fi
    echo "$d/ca.pem"
}

mirror_start() {
    local rate=${1:-0} tls=${2:-} d listen
    d=$(_mirror_dir)
    MIRROR_DIR=$CLUSTER_DIR/mirror
    mkdir -p "$d/tmp" "$MIRROR_DIR"
    listen="$MIRROR_HOST:$MIRROR_PORT"
    MIRROR_SCHEME=http
    if [ "$tls" = tls ]; then
        mirror_ca >/dev/null || return 1
        listen="$listen ssl"
        MIRROR_SCHEME=https
    fi
    cat >"$d/nginx.conf" <<CFG
user root;
worker_processes 1;
worker_rlimit_nofile 8192;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 4096; }
http {
    log_format mirror '\$remote_addr \$status \$body_bytes_sent range="\$http_range" if_range="\$http_if_range" \$request';
    access_log $d/access.log mirror;
    client_body_temp_path $d/tmp;
    proxy_temp_path $d/tmp;
    fastcgi_temp_path $d/tmp;
    uwsgi_temp_path $d/tmp;
    scgi_temp_path $d/tmp;
    types { application/octet-stream bin; }
    server {
        listen $listen;
        $([ "$tls" = tls ] && echo "ssl_certificate $d/server.pem; ssl_certificate_key $d/server.key;")
        root $MIRROR_DIR;
        limit_rate $rate;
    }
}
CFG
    mirror_stop
    "$NGINX" -c "$d/nginx.conf" -e "$d/error.log" || return 1
    wait_for 10 tcp_open "$MIRROR_HOST" "$MIRROR_PORT"
}

mirror_stop() {
    local pid
    pid=$(cat "$(_mirror_dir)/nginx.pid" 2>/dev/null) || return 0
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$(_mirror_dir)/nginx.pid"
    return 0
}

mirror_url() { echo "${MIRROR_SCHEME:-http}://$MIRROR_HOST:$MIRROR_PORT/$1"; }
mirror_log() { cat "$(_mirror_dir)/access.log" 2>/dev/null; }
