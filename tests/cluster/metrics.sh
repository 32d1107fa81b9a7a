#!/bin/bash
# metrics.sh: the agent's textfile metrics (`metrics_dir`), read as the fleet's monitoring reads
# them: Debian's prometheus-node-exporter runs in node1 (a systemd unit of the node) with its
# textfile collector on the agent's folder, and the test scrapes it over HTTP. After a rollout:
# the version the node was left on, the rollout id and its last step, every step's outcome and
# duration, the dumps kept and their bytes (as the node's backup folder has them), the bytes
# staged (as the staging folder has them), and no textfile scrape error; during a slow
# migration, the step under way. After a rollout whose verify fails: the version it was rolled
# back to, verify 0, rollback 1. A link planted where the agent writes its temporary file is not
# written through; a folder others may write in is not written at all (said in the agent's log).
# The coordinator's own (BATON_METRICS_DIR), from a node_exporter on its host: a rollout paused
# after its canary (phase, node states, batch), a second operator's refused rollout that leaves
# them alone, and the end (phase ended, exit code, times).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
EXPORTER=/usr/bin/prometheus-node-exporter
[ -x "$EXPORTER" ] || { echo "1..0 # SKIP prometheus-node-exporter is not installed (make deps installs it)"; exit 0; }

export BATON_TEST_METRICS_DIR=/var/lib/prometheus/node-exporter
BATON_TEST_KNOBS=1 # node1's migration held open for a few seconds: the step under way
cluster_sweep
cluster_trap
ok "cluster: 2 nodes on gamesrv 1.0.0, one shared database" baton_cluster metr 2 1.0.0 ||
    { done_testing; exit 1; }
for n in $CLUSTER_NODES; do node_exec "$n" mkdir -p "$BATON_TEST_METRICS_DIR"; done
ok "node_exporter runs in node1 (textfile collector on the agent's folder)" \
    node_exec node1 systemd-run --unit=node-exporter --property=Type=exec "$EXPORTER" \
    --web.listen-address=:9100 --collector.disable-defaults --collector.textfile \
    --collector.textfile.directory="$BATON_TEST_METRICS_DIR"
URL="http://$(node_ip node1):9100/metrics"
answers() { curl -sf -o /dev/null "$URL"; }
ok "node_exporter answers on node1:9100" wait_for 10 answers
scrape() { curl -sf "$URL"; }
# One sample's value: NAME and the labels after service, as the text format prints them.
sample() { scrape | grep -F "$1{service=\"gamesrv\"$2}" | awk '{print $2}'; } # NAME LABELS
node_files() { # NODE DIR PATTERN: "count bytes" of the regular files
    node_exec "$1" sh -c "find $2 -maxdepth 1 -type f -name '$3' -printf '%s\n'" |
        awk '{n++; b += $1} END {printf "%d %d\n", n, b}'
}

# --- a rollout ----------------------------------------------------------------------------------
slow_step node1 migrate 4
"$BATON" rollout "$(rollout_file 1.1.0)" >"$CLUSTER_DIR/r1.out" 2>&1 &
pid=$!
migrating() { scrape | grep -q 'baton_service_info{in_progress="migrate",.*service="gamesrv",step="swap",'; }
ok "while node1 migrates: baton_service_info says in_progress=migrate after swap" wait_for 30 migrating
wait "$pid"
is "$?" 0 "rollout to 1.1.0: exit 0"
slow_step node1 migrate 0
out=$(cat "$CLUSTER_DIR/r1.out")
id=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' <<<"$out")
scrape | grep '^baton_' >&2
info() { scrape | grep -F "baton_service_info{$1} 1"; } # LABELS, sorted as node_exporter prints them
ok "baton_service_info: 1.1.0, the rollout's id, committed, nothing in progress" \
    info "in_progress=\"\",rollout_id=\"$id\",service=\"gamesrv\",step=\"committed\",version=\"1.1.0\""
for step in preflight stop dump swap migrate start verify commit; do
    is "$(sample baton_step_success ",step=\"$step\"")" 1 "baton_step_success{step=$step} 1"
done
dump_s=$(sample baton_step_duration_seconds ",step=\"dump\"")
ok "baton_step_duration_seconds{step=dump} is a duration: ${dump_s:-none} s" \
    awk -v v="${dump_s:-x}" 'BEGIN { exit !(v ~ /^[0-9]+\.[0-9]+$/ && v > 0 && v < 60) }'
verify_s=$(sample baton_step_duration_seconds ",step=\"verify\"")
ok "verify took at least min_healthy_time (1 s): ${verify_s:-none} s" \
    awk -v v="${verify_s:-0}" 'BEGIN { exit !(v >= 1) }'
read -r n bytes <<<"$(node_files node1 /var/backups/baton/gamesrv 'gamesrv+*.dump')"
is "$(sample baton_backups "") $(sample baton_backup_bytes "")" "$n $bytes" \
    "baton_backups and baton_backup_bytes: $n dump(s), $bytes bytes, as the backup folder has them"
read -r n bytes <<<"$(node_files node1 /var/lib/baton/staging/gamesrv '*')"
is "$(sample baton_staged_bytes "")" "$bytes" "baton_staged_bytes: $bytes, as the staging folder has them"
is "$(scrape | grep -E '^node_textfile_scrape_error ' | awk '{print $2}')" 0 \
    "node_exporter read the file without error"
is "$(node_exec node2 sed -n 's/^baton_service_info{\(.*\)} 1$/\1/p' "$BATON_TEST_METRICS_DIR/baton-gamesrv.prom")" \
    "in_progress=\"\",rollout_id=\"$id\",service=\"gamesrv\",step=\"committed\",version=\"1.1.0\"" \
    "node2 wrote its own file too"

# --- a planted link where the temporary file goes -----------------------------------------------
node_exec node1 sh -c "echo precious > /root/precious && ln -s /root/precious $BATON_TEST_METRICS_DIR/baton-gamesrv.prom.tmp"

# --- a rollout whose verify fails: rolled back ----------------------------------------------------
out=$("$BATON" rollout "$(rollout_file 1.2.0+health)" 2>&1)
code=$?
printf '%s\n' "$out" >&2
is "$code" 3 "rollout to a 1.2.0 that never turns healthy: rolled back (exit 3)"
id2=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' <<<"$out")
ok "baton_service_info: back on 1.1.0, the failed rollout's id, rolled_back" \
    info "in_progress=\"\",rollout_id=\"$id2\",service=\"gamesrv\",step=\"rolled_back\",version=\"1.1.0\""
is "$(sample baton_step_success ",step=\"verify\"") $(sample baton_step_success ",step=\"rollback\"")" "0 1" \
    "baton_step_success: verify 0, rollback 1"
read -r n bytes <<<"$(node_files node1 /var/backups/baton/gamesrv 'gamesrv+*.dump')"
is "$(sample baton_backups "") $(sample baton_backup_bytes "")" "$n $bytes" \
    "baton_backups: $n dump(s), $bytes bytes, as the backup folder has them"
is "$(node_exec node1 cat /root/precious)" "precious" "the file behind the planted link is untouched"
is "$(node_exec node1 sh -c "test -L $BATON_TEST_METRICS_DIR/baton-gamesrv.prom.tmp || test -e $BATON_TEST_METRICS_DIR/baton-gamesrv.prom.tmp; echo \$?")" 1 \
    "and the link is gone: the agent made its own file and renamed it"
is "$(scrape | grep -E '^node_textfile_scrape_error ' | awk '{print $2}')" 0 "still read without error"

# --- a folder others may write in: not written --------------------------------------------------
node_exec node2 chmod 0777 "$BATON_TEST_METRICS_DIR"
before=$(node_exec node2 cat "$BATON_TEST_METRICS_DIR/baton-gamesrv.prom")
out=$("$BATON" rollout "$(rollout_file 1.2.0)" 2>&1)
is "$?" 0 "rollout to 1.2.0: exit 0"
is "$(node_exec node2 cat "$BATON_TEST_METRICS_DIR/baton-gamesrv.prom")" "$before" \
    "node2's folder is writable by others (0777): its file was not written"
like "$(node_exec node2 journalctl -u baton-agent -o cat --no-pager)" \
    "metrics: metrics_dir $BATON_TEST_METRICS_DIR: not written: others may write in it \(it is owned by uid 0, mode 0777\)" \
    "and node2's agent says why in its log"
ok "node1's file says 1.2.0 committed (its folder is root's)" \
    info "in_progress=\"\",rollout_id=\"$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' <<<"$out")\",service=\"gamesrv\",step=\"committed\",version=\"1.2.0\""
node_exec node1 systemctl stop node-exporter

# --- the coordinator's own metrics (BATON_METRICS_DIR), from a node_exporter on its host ---------
export BATON_METRICS_DIR=$CLUSTER_DIR/coordinator-metrics
mkdir -m 0755 "$BATON_METRICS_DIR"
HOST_ADDR=127.0.0.1:$((40000 + ${PG_TEST_PORT:-55432} % 1000 * 10 + 9))
HOST_URL="http://$HOST_ADDR/metrics"
"$EXPORTER" --web.listen-address="$HOST_ADDR" \
    --collector.disable-defaults --collector.textfile \
    --collector.textfile.directory="$BATON_METRICS_DIR" 2>/dev/null &
exporter=$!
pid=
trap 'kill "$exporter" $pid 2>/dev/null; cluster_down' EXIT
host_answers() { curl -sf -o /dev/null "$HOST_URL"; }
ok "node_exporter answers on the coordinator's host" wait_for 10 host_answers
hscrape() { curl -sf "$HOST_URL"; }
hsample() { hscrape | grep -F "$1" | awk '{print $2}'; } # NAME{LABELS: the first match's value
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 2.0.0)
printf 'batches: [1, 1]\npause_after: canary\n' >>"$f"
"$BATON" rollout "$f" >"$CLUSTER_DIR/c1.out" 2>&1 &
pid=$!
paused() { hscrape | grep -q 'baton_rollout_info{phase="paused"'; }
ok "while paused after the canary: baton_rollout_info says phase=paused" wait_for 60 paused
cid=$(sed -n 's/^baton: rollout \([^:]*\):.*/\1/p' "$CLUSTER_DIR/c1.out")
hscrape | grep '^baton_rollout' >&2
is "$(hsample "baton_rollout_info{phase=\"paused\",rollout_id=\"$cid\",service=\"gamesrv\",version=\"2.0.0\"}")" 1 \
    "with the rollout's id and version"
is "$(hsample 'baton_rollout_node_state{node="node1",service="gamesrv",state="done"}') $(hsample 'baton_rollout_node_state{node="node2",service="gamesrv",state="reserved"}')" \
    "1 1" "node1 done, node2 reserved"
is "$(hsample 'baton_rollout_nodes{service="gamesrv",state="done"}') $(hsample 'baton_rollout_nodes{service="gamesrv",state="rolled_back"}')" \
    "1 0" "baton_rollout_nodes: 1 done, 0 rolled back (every state is there, 0 included)"
is "$(hsample 'baton_rollout_batch{') $(hsample 'baton_rollout_batches{')" "1 2" "batch 1 of 2"
ok "no end time yet" test -z "$(hsample "baton_rollout_end_timestamp_seconds{")"
# A second operator's rollout is refused (the nodes are held): the metrics stay the first's.
out=$("$BATON" rollout "$(rollout_file 2.0.0 "$CLUSTER_DIR/second.yml")" 2>&1)
is "$?" 2 "a second operator's rollout of gamesrv meanwhile: refused (exit 2)"
ok "and the metrics still show the paused rollout" paused
"$BATON" resume "$cid" >&2 2>&1
is "$?" 0 "baton resume $cid"
ended() { ! kill -0 "$pid" 2>/dev/null; }
ok "the paused coordinator goes on and ends" wait_for 60 ended
wait "$pid"
is "$?" 0 "resumed, the rollout ends: exit 0"
pid=
is "$(hsample "baton_rollout_info{phase=\"ended\",rollout_id=\"$cid\"") $(hsample 'baton_rollout_exit_code{')" \
    "1 0" "baton_rollout_info phase=ended, baton_rollout_exit_code 0"
is "$(hsample 'baton_rollout_nodes{service="gamesrv",state="done"}') $(hsample 'baton_rollout_batch{')" \
    "2 2" "both nodes done, batch 2 of 2"
end=$(hsample "baton_rollout_end_timestamp_seconds{")
start=$(hsample "baton_rollout_start_timestamp_seconds{")
ok "start and end are times, in order ($start .. $end)" \
    awk -v s="${start:-0}" -v e="${end:-0}" -v now="$(date +%s)" 'BEGIN { exit !(s > 0 && s <= e && e <= now) }'
is "$(hscrape | grep -E '^node_textfile_scrape_error ' | awk '{print $2}')" 0 "read without error"
done_testing
