#!/usr/bin/env bash
# regressions.sh NOKV_SIM [SCENARIO_DIR] - run every line of scenarios/regressions/*.list
# (SCENARIO SEED [--set k=v ...] # comment); each must pass. Prints one line
# per run and a summary; exits with the first failing run's code.
set -uo pipefail
sim=$1
root=${2:-"$(cd "$(dirname "$0")/../.." && pwd)/scenarios"}
pass=0 fail=0 first=0
for list in "$root"/regressions/*.list; do
    while IFS= read -r line; do
        line=${line%%#*}
        read -r -a f <<<"$line"
        [ ${#f[@]} -ge 2 ] || continue
        "$sim" --seed "${f[1]}" "${f[@]:2}" "$root/${f[0]}" | grep -E '^(PASS|FAIL|  what|  replay)'
        rc=${PIPESTATUS[0]}
        if [ "$rc" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); [ "$first" -eq 0 ] && first=$rc; fi
    done <"$list"
done
echo "regressions: $pass passed, $fail failed"
exit "$first"
