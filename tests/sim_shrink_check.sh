#!/usr/bin/env bash
# sim_shrink_check.sh NOKV_SIM SCENARIO SEED ATTEMPTS [--set k=v ...]
# Shrink a failing seed (nokv-sim --shrink) and check the result: the
# shrinker must report a smaller run (fewer faults that happened, and for a
# swarm file a lighter profile), and the replay command it prints must
# still fail with the same exit code (the same failure class).
set -u
sim=$1 scenario=$2 seed=$3 attempts=$4
shift 4
out=$("$sim" --shrink --attempts "$attempts" --seed "$seed" "$@" "$scenario" 2>&1)
code=$?
echo "$out" | tail -n 25
shrunk=$(grep '^SHRUNK ' <<<"$out")
replay=$(grep '^  replay: ' <<<"$out" | sed 's/^  replay: nokv-sim //')
if [ -z "$shrunk" ] || [ -z "$replay" ]; then
    echo "shrink_check: no SHRUNK line / replay command" >&2
    exit 1
fi
if [ "$code" -lt 10 ]; then
    echo "shrink_check: the seed did not fail (exit $code)" >&2
    exit 1
fi
# faults=A->B weight=C->D
f0=$(sed -E 's/.* faults=([0-9]+)->([0-9]+).*/\1/' <<<"$shrunk")
f1=$(sed -E 's/.* faults=([0-9]+)->([0-9]+).*/\2/' <<<"$shrunk")
w0=$(sed -E 's/.* weight=([0-9]+)->([0-9]+).*/\1/' <<<"$shrunk")
w1=$(sed -E 's/.* weight=([0-9]+)->([0-9]+).*/\2/' <<<"$shrunk")
if ! [ "$f1" -lt "$f0" ] && ! [ "$w1" -lt "$w0" ]; then
    echo "shrink_check: not smaller (faults $f0 -> $f1, weight $w0 -> $w1)" >&2
    exit 1
fi
# shellcheck disable=SC2086 # the replay command is a word list by design
"$sim" $replay >/dev/null 2>&1
again=$?
if [ "$again" != "$code" ]; then
    echo "shrink_check: the shrunk command exits $again, the original $code: $replay" >&2
    exit 1
fi
echo "shrink_check: exit $code kept; faults $f0 -> $f1, weight $w0 -> $w1"
