#!/bin/bash
# bench/rollout.sh: what the strategy buys, on 5 real-systemd nodes sharing one database. For
# each strategy, REPS rollouts between two builds with the same migrations (nothing to apply,
# so the numbers are baton's and the service's own): the rollout's wall time (baton's summary),
# each node's downtime (first line of its stop step to last line of its verify step, from its
# agent's journal) and the most nodes down at once. Prints a Markdown table (BENCHMARKS.md).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/all.sh
BATON=${BUILD:-build}/baton
REPS=${REPS:-3}
exec 3>&1 1>&2 # progress on stderr, the table on the original stdout

cluster_sweep
cluster_trap
baton_cluster bench 5 1.0.0 || exit 1
f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file 1.1.0)
"$BATON" rollout "$f" >/dev/null || exit 1 # the migration, once, before measuring

window() { # NODE ROLLOUT -> "start end" in epoch seconds
    echo "$(step_time "$1" "$2" stop first) $(step_time "$1" "$2" verify last)"
}

target=1.1.1
run_one() { # STRATEGY (rollout-file lines) -> "wall_s mean_down_s max_down_s most_down"
    local f out id w
    f=$(BATON_TEST_ROLLOUT_MIN_HEALTHY=1s rollout_file "$target")
    [ -n "$1" ] && printf '%s\n' "$1" >>"$f"
    out=$("$BATON" rollout "$f" 2>&1) || { echo "rollout failed: $out"; return 1; }
    id=$(printf '%s\n' "$out" | sed -n 's/^baton: rollout \([^:]*\):.*/\1/p')
    wall=$(printf '%s\n' "$out" | sed -n 's/.* in \([0-9.]*\) s$/\1/p')
    w=$(for n in $CLUSTER_NODES; do window "$n" "$id"; done)
    printf '%s\n' "$w" | awk -v wall="$wall" '
        { d = $2 - $1; sum += d; if (d > max) max = d; ev[NR * 2 - 1] = $1 " 1"; ev[NR * 2] = $2 " -1" }
        END { printf "%s %.2f %.2f ", wall, sum / NR, max }'
    printf '%s\n' "$w" | awk '{ print $1, 1; print $2, -1 }' | sort -n -k1,1 -k2,2 |
        awk '{ c += $2; if (c > m) m = c } END { print m + 0 }'
}

declare -a names=("one at a time (default)" "batches [1, 2]" "batches [1, 4], max_unavailable 2"
    "batches [1, 4]")
declare -a specs=("" "batches: [1, 2]" $'batches: [1, 4]\nmax_unavailable: 2' "batches: [1, 4]")
echo "| strategy (5 nodes, min_healthy_time 1 s) | rollout wall time (s) | mean node downtime (s) | longest node downtime (s) | most nodes down at once |" >&3
echo "|---|---|---|---|---|" >&3
for i in "${!names[@]}"; do
    walls="" downs="" maxes="" most=0
    for _ in $(seq "$REPS"); do
        read -r wall down max m <<<"$(run_one "${specs[$i]}")"
        target=$([ "$target" = 1.1.1 ] && echo 1.1.0 || echo 1.1.1)
        walls="$walls $wall" downs="$downs $down" maxes="$maxes $max"
        [ "$m" -gt "$most" ] && most=$m
    done
    med() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
    echo "| ${names[$i]} | $(med <<<"$walls") | $(med <<<"$downs") | $(med <<<"$maxes") | $most |" >&3
done
