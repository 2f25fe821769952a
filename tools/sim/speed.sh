#!/usr/bin/env bash
# speed.sh [-n SEEDS] [-b NOKV_SIM] [SCENARIO...] - how fast the simulator runs:
# for each scenario, one sweep of seeds 1..SEEDS on one core (-j 1) and a line
#   SCENARIO seeds/s=.. cpu-seeds/s=.. sim/wall=..x sim/cpu=..x
# seeds/s and sim/wall come from wall time (what a developer waits); the cpu
# figures divide by the user+system time the sweep's processes used, which
# stays meaningful on a loaded machine. sim is SEEDS x the scenario's
# `duration`. A benchmark, not a test: it fails only if a sweep fails.
# Default: every scenario file under scenarios/, 40 seeds each.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sim=$root/build/nokv-sim
seeds=40
while [ $# -gt 0 ]; do
    case $1 in
    -n) seeds=$2; shift 2 ;;
    -b) sim=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) break ;;
    esac
done
[ -x "$sim" ] || { echo "speed.sh: no simulator at $sim (build it, or pass -b)" >&2; exit 2; }
if [ $# -eq 0 ]; then
    set -- $(cd "$root/scenarios" && for f in *; do [ -f "$f" ] && echo "$f"; done)
fi
to_ns() { # "14s" / "500ms" / "2m" -> ns (integers only, as scenario files write them)
    local v=${1%%[a-z]*} u=${1##*[0-9]}
    case $u in
    ns) echo "$v" ;; us) echo $((v * 1000)) ;; ms) echo $((v * 1000000)) ;;
    s) echo $((v * 1000000000)) ;; m) echo $((v * 60000000000)) ;; *) echo 0 ;;
    esac
}
status=0
for sc in "$@"; do
    file=$sc
    [ -f "$file" ] || file=$root/scenarios/$sc
    [ -f "$file" ] || { echo "speed.sh: no scenario $sc" >&2; status=2; continue; }
    dur=$(awk '$1 == "duration" {print $2; exit}' "$file")
    dur_ns=$(to_ns "${dur:-0}")
    tfile=$(mktemp)
    start=$(date +%s%N)
    /usr/bin/time -f "%U %S" -o "$tfile" "$sim" --seeds "1..$seeds" -j 1 --quiet "$file" >/dev/null 2>&1
    rc=$?
    end=$(date +%s%N)
    read -r ut st <"$tfile"
    rm -f "$tfile"
    [ "$rc" -eq 0 ] || status=$rc
    awk -v n="$seeds" -v w=$(((end - start) / 1000)) -v u="$ut" -v s="$st" -v d="$dur_ns" \
        -v name="$(basename "$file")" -v rc="$rc" 'BEGIN {
        wall = w / 1e6; cpu = u + s; simt = n * d / 1e9
        printf "%-28s seeds=%d seeds/s=%.1f cpu-seeds/s=%.1f sim/wall=%.0fx sim/cpu=%.0fx%s\n",
               name, n, n / wall, (cpu > 0 ? n / cpu : 0), simt / wall, (cpu > 0 ? simt / cpu : 0),
               (rc != 0 ? " (sweep FAILED, exit " rc ")" : "")
    }'
done
exit "$status"
