#!/bin/bash
# footprint.sh: the agent's own cost on a node: resident memory right after it started, after
# one plan (libpq and OpenSSL set up), its private (anonymous) share, and CPU while idle for
# BENCH_IDLE_S seconds (default 60), scaled to an hour.
#
# Writes $BENCH_OUT/footprint.dat: "rss_start KIB", "rss_after_plan KIB", "private KIB",
# "cpu_ms_per_hour MS".
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=$(realpath "${BUILD:-build}/baton")
IDLE=${BENCH_IDLE_S:-60}
OUT=$(realpath -m "${BENCH_OUT:-build/bench}")
mkdir -p "$OUT"
exec 3>&1 1>&2

cluster_sweep
cluster_trap
baton_cluster fpt 1 1.1.0 || exit 1
sleep 2
pid=$(agent_pid node1)
rss() { node_exec node1 awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
: >"$OUT/footprint.dat"
echo "rss_start $(rss)" >>"$OUT/footprint.dat"
"$BATON" plan "$(rollout_file 1.1.1)" >/dev/null 2>&1
echo "rss_after_plan $(rss)" >>"$OUT/footprint.dat"
echo "private $(node_exec node1 awk '/^Private_Dirty/ { print $2 }' "/proc/$pid/smaps_rollup")" >>"$OUT/footprint.dat"
ticks() { node_exec node1 awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
a=$(ticks)
sleep "$IDLE"
b=$(ticks)
echo "cpu_ms_per_hour $(( (b - a) * 1000 / hz * 3600 / IDLE ))" >>"$OUT/footprint.dat"
cat "$OUT/footprint.dat" >&2
