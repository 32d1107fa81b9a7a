#!/bin/bash
# run.sh: `make bench`. Every benchmark on fresh test clusters, one after another (never two at
# once: they share the machine), then the tables and plots (report.sh). BENCH_ONLY="dump fanout"
# runs some of them; REPS sets the runs per contender (default 3).
set -u
cd "$(dirname "$0")/../.."
export BENCH_OUT=${BENCH_OUT:-build/bench}
mkdir -p "$BENCH_OUT"
only=${BENCH_ONLY:-overhead overhead-simple dump staging swap fanout availability haproxy footprint strategies idle idle-fleet}
{
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
} >"$BENCH_OUT/machine.txt"
for b in $only; do
    echo "== bench: $b ($(date +%T))" >&2
    case $b in
    overhead-simple) STANDIN=simple tests/bench/overhead.sh || exit 1 ;;
    fanout) tests/bench/fanout.sh >"$BENCH_OUT/fanout.txt" || exit 1 ;;
    strategies) tests/bench/rollout.sh >"$BENCH_OUT/strategies.md" || exit 1 ;;
    *) "tests/bench/$b.sh" || exit 1 ;;
    esac
done
tests/bench/report.sh >"$BENCH_OUT/report.md" || exit 1
cat "$BENCH_OUT/machine.txt" "$BENCH_OUT/report.md"
[ -s "$BENCH_OUT/strategies.md" ] && cat "$BENCH_OUT/strategies.md"
exit 0
