#!/usr/bin/env bash
# run-main.sh BUILD WORKDIR ADDR - the README's run command.
# Runs the standalone server when this build has `nokv serve`; until then,
# the simulator demo scenario.
set -eu
build=$1 workdir=$2 addr=$3
if "$build/nokv" help 2>/dev/null | grep -q '^  serve'; then
    exec "$build/nokv" serve --workdir "$workdir" --addr "$addr"
fi
echo "run: 'nokv serve' is not built yet; running the simulator demo instead"
exec "$build/nokv-sim" --seed 7 scenarios/echo_flap
