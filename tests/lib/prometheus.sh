# prometheus.sh: Debian's Prometheus scraping the test cluster's gamesrv (GET /metrics), and a
# client load on the nodes, for tests of metrics-based rollout analysis. Source it after
# cluster.sh and gamesrv.sh (tests/lib/all.sh), and call its functions from the test's own shell
# (not a subshell: Prometheus and the load end with the shell that started them).
#
#   prom_start NODE...          writes $PROM_DIR/prometheus.yml (job gamesrv: a target
#                               NODE_IP:$GAMESRV_PORT labelled node=NODE per NODE, scrape and
#                               evaluation every 1 s), starts /usr/bin/prometheus (replacing one
#                               this run started before) and waits until it answers /-/ready
#   prom_stop                   ends it (and the load) and removes $PROM_DIR (safe to call twice)
#   prom_wait_up NODE [SECS]    polls until Prometheus reports up{node="NODE"} == 1 (default 30 s)
#   prom_query EXPR             the instant query's one value ("0.98", "NaN"); nothing when the
#                               result is empty; fails (message on stderr) on an error or on more
#                               than one series
#   prom_load_start NODE...     a client on the host: a GET /players to every NODE every 20 ms;
#                               a node down is counted, never an error
#   prom_load_stop              ends it; prints its counts per node to stderr (the test's log)
#
# Prometheus is a process of the test, not Debian's prometheus.service (which the package enables
# on :9090 with /var/lib/prometheus): it listens on the cluster's host address (the bridge's .1)
# at PROM_TEST_PORT, by default one of the ten ports per PG_TEST_PORT (see haproxy.sh), so runs
# on other subnets and the system's own never meet, and keeps its data in $PROM_DIR (under the
# cluster's folder). prom_start and prom_load_start put prom_stop in front of the shell's EXIT
# trap (a test that sets its EXIT trap later must call prom_stop in it itself), and both
# processes get SIGKILL from the kernel should the test's shell die without running it.
# PROM_URL (http://HOST:PORT) is set as this file is sourced, and again by prom_start.
#
# Timing (scrape_interval 1 s): a target is up about 1 s after prom_start; rate(X[Ns]) needs
# two samples of X inside the window, so it has a value about 2 s after the target is up and is
# steady once the window is full (N s). Right after a node's service restarts its counters start
# again at 0, which rate() takes as a counter reset.

PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
PROM_TEST_PORT=${PROM_TEST_PORT:-$((40000 + ${PG_TEST_PORT:-55432} % 1000 * 10 + 6))}
PROM_URL=http://$BATON_TEST_SUBNET.1:$PROM_TEST_PORT
PROM_LOAD_INTERVAL=${PROM_LOAD_INTERVAL:-0.02}

_prom_die() {
    echo "prometheus: $*" >&2
    return 1
}

_prom_dir() { echo "${CLUSTER_DIR:-$BATON_TEST_ROOT}/prometheus"; }

_prom_cleanup() { prom_stop; }

# Put _prom_cleanup in front of whatever the EXIT trap already does (cluster_down, ...).
_prom_trap() {
    local cur
    cur=$(trap -p EXIT)
    case $cur in *_prom_cleanup*) return 0 ;; esac
    cur=${cur#trap -- }
    cur=${cur% EXIT}
    eval "cur=${cur:-''}" # the command, as bash quoted it
    # shellcheck disable=SC2064 # the current trap's text, kept behind ours
    trap "_prom_cleanup; ${cur:-:}" EXIT
}

# Ends the process recorded in FILE ("PID STARTTIME", cluster.sh's _record_pid), if still that
# one: TERM, then KILL after SECS.
_prom_end() { # FILE SECS
    local pid deadline
    _recorded_alive "$1" || { rm -f "$1"; return 0; }
    pid=$(cut -d' ' -f1 "$1")
    kill "$pid" 2>/dev/null
    deadline=$((SECONDS + $2))
    while _recorded_alive "$1" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    if _recorded_alive "$1"; then
        kill -9 "$pid" 2>/dev/null
        _wait_gone "$1" 5 || return 1
    fi
    rm -f "$1"
}

prom_start() {
    local host=${CLUSTER_HOST_IP:-$BATON_TEST_SUBNET.1} n deadline
    [ $# -ge 1 ] || { _prom_die "prom_start: no node"; return 1; }
    [ -x "$PROMETHEUS" ] || { _prom_die "$PROMETHEUS is not installed (make deps installs prometheus)"; return 1; }
    PROM_DIR=$(_prom_dir)
    PROM_URL=http://$host:$PROM_TEST_PORT
    export PROM_URL
    _prom_end "$PROM_DIR/pid" 10 || return 1
    rm -rf "$PROM_DIR/data"
    mkdir -p "$PROM_DIR" || return 1
    {
        cat <<CFG
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: gamesrv
    static_configs:
CFG
        for n in "$@"; do
            printf "      - targets: ['%s:%s']\n        labels:\n          node: %s\n" \
                "$(node_ip "$n")" "$GAMESRV_PORT" "$n"
        done
    } >"$PROM_DIR/prometheus.yml"
    _prom_trap
    # --pdeathsig: the kernel kills it when this shell dies without its EXIT trap (SIGKILL).
    setpriv --pdeathsig KILL "$PROMETHEUS" --config.file="$PROM_DIR/prometheus.yml" \
        --storage.tsdb.path="$PROM_DIR/data" --web.listen-address="$host:$PROM_TEST_PORT" \
        --log.level=warn </dev/null >"$PROM_DIR/prometheus.log" 2>&1 &
    _record_pid "$PROM_DIR/pid" $!
    deadline=$((SECONDS + ${PROM_START_TIMEOUT:-30}))
    until curl -sf -o /dev/null -m 1 "$PROM_URL/-/ready"; do
        _recorded_alive "$PROM_DIR/pid" ||
            { _prom_die "exited while starting: $(tail -5 "$PROM_DIR/prometheus.log")"; return 1; }
        [ $SECONDS -lt $deadline ] ||
            { _prom_die "not ready after ${PROM_START_TIMEOUT:-30} s at $PROM_URL: $(tail -5 "$PROM_DIR/prometheus.log")"; return 1; }
        sleep 0.1
    done
    echo "$PROM_URL"
}

prom_stop() {
    local d
    d=${PROM_DIR:-$(_prom_dir)}
    [ -d "$d" ] || return 0
    prom_load_stop
    _prom_end "$d/pid" 10
    rm -rf "$d"
}

prom_query() {
    [ -n "${PROM_URL:-}" ] || { _prom_die "prom_query: PROM_URL is not set"; return 1; }
    curl -sS -m 5 --data-urlencode "query=$1" "$PROM_URL/api/v1/query" | python3 -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError as e:
    sys.exit("prom_query: not JSON: %s" % e)
if doc.get("status") != "success":
    sys.exit("prom_query: %s: %s" % (doc.get("errorType"), doc.get("error")))
data = doc["data"]
if data["resultType"] in ("scalar", "string"):
    print(data["result"][1])
elif data["resultType"] == "vector":
    res = data["result"]
    if len(res) > 1:
        sys.exit("prom_query: %d series, not one: %s" % (len(res), [r["metric"] for r in res]))
    if res:
        print(res[0]["value"][1])
else:
    sys.exit("prom_query: a %s, not an instant value" % data["resultType"])
'
}

prom_wait_up() {
    local deadline=$((SECONDS + ${2:-30}))
    until [ "$(prom_query "up{node=\"$1\"}" 2>/dev/null)" = 1 ]; do
        [ $SECONDS -lt $deadline ] || { _prom_die "up{node=\"$1\"} not 1 after ${2:-30} s"; return 1; }
        sleep 0.2
    done
}

prom_load_start() {
    local d n urls=()
    [ $# -ge 1 ] || { _prom_die "prom_load_start: no node"; return 1; }
    d=$(_prom_dir)
    mkdir -p "$d" || return 1
    PROM_DIR=$d
    prom_load_stop
    for n in "$@"; do urls+=("$n=http://$(node_ip "$n"):$GAMESRV_PORT/players"); done
    cat >"$d/load.py" <<'PY'
import signal, sys, threading, time, urllib.error, urllib.request

interval = float(sys.argv[1])
stop = threading.Event()
counts = {}

def client(node, url):
    c = counts[node] = {}
    nxt = time.monotonic()
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                code = str(r.status)
        except urllib.error.HTTPError as e:
            code = str(e.code)
        except Exception:
            code = "unreachable"
        c[code] = c.get(code, 0) + 1
        nxt += interval
        now = time.monotonic()
        if nxt < now:  # behind (a node that did not answer): start again from now
            nxt = now
        stop.wait(nxt - now)

signal.signal(signal.SIGTERM, lambda *_: stop.set())
threads = []
for arg in sys.argv[2:]:
    node, url = arg.split("=", 1)
    t = threading.Thread(target=client, args=(node, url), daemon=True)
    t.start()
    threads.append(t)
while not stop.is_set():
    stop.wait(1)
for t in threads:
    t.join(2)
for node in sorted(counts):
    print("load: %s %s" % (node, " ".join("%s=%d" % kv for kv in sorted(counts[node].items()))))
PY
    _prom_trap
    setpriv --pdeathsig KILL python3 -u "$d/load.py" "$PROM_LOAD_INTERVAL" "${urls[@]}" \
        </dev/null >"$d/load.out" 2>&1 &
    _record_pid "$d/load.pid" $!
}

prom_load_stop() {
    local d
    d=${PROM_DIR:-$(_prom_dir)}
    [ -f "$d/load.pid" ] || return 0
    _prom_end "$d/load.pid" 5
    cat "$d/load.out" >&2
    return 0
}
