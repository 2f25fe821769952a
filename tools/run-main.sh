#!/usr/bin/env bash
# run-main.sh BUILD WORKDIR ADDR - the README's run command: the standalone
# server on WORKDIR, listening on ADDR, until Ctrl-C (graceful stop).
set -eu
build=$1 workdir=$2 addr=$3
echo "run: nokv serve --workdir $workdir --addr $addr (Ctrl-C stops it)"
exec "$build/nokv" serve --workdir "$workdir" --addr "$addr"
