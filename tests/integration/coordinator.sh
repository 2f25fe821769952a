#!/usr/bin/env bash
# coordinator.sh NOKV_BINARY - a real `nokv coordinator` process on 127.0.0.1.
#
#  1. usage errors exit 2 (no --workdir, bad --id-start);
#  2. start on a fresh workdir with port 0: it prints what it restored and
#     the address it bound; `nokv coordinator status` queries it from another
#     process; SIGTERM stops it with exit 0, after which status fails cleanly;
#  3. a second coordinator on the same workdir is refused (exit 1);
#  4. restart with --id-start above the fence: "recovered", the allocator
#     starts there;
#  5. a corrupt fence file stops the start with exit 1, naming the file.
set -euo pipefail
nokv=$1
dir=$(mktemp -d /tmp/nokv-coord-it.XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

# 1. usage errors
set +e
"$nokv" coordinator --addr 127.0.0.1:0 >"$dir/u.out" 2>&1; rc=$?
set -e
[ "$rc" -eq 2 ] || { echo "missing --workdir: exit $rc"; cat "$dir/u.out"; exit 1; }
grep -q -- "--workdir is required" "$dir/u.out"
set +e
"$nokv" coordinator --workdir "$dir/wd" --id-start -5 >"$dir/u.out" 2>&1; rc=$?
set -e
[ "$rc" -eq 2 ] || { echo "bad --id-start: exit $rc"; exit 1; }

start() { # start ARGS...; waits for the "listening on" line
    "$nokv" coordinator --addr 127.0.0.1:0 --workdir "$dir/wd" "$@" >"$dir/out" 2>"$dir/err" &
    pid=$!
    for _ in $(seq 1 100); do
        if grep -q "^listening on 127.0.0.1:" "$dir/out" 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.05
    done
    echo "coordinator did not start"; cat "$dir/out" "$dir/err"; exit 1
}

stop() { # SIGTERM, expect exit 0
    kill -TERM "$pid"
    set +e
    wait "$pid"; rc=$?
    set -e
    pid=""
    [ "$rc" -eq 0 ] || { echo "SIGTERM exit status $rc"; cat "$dir/err"; exit 1; }
}

# 2. fresh start
start
grep -q "initialised $dir/wd" "$dir/out"
grep -q "^restored 0 regions, 0 stores; allocator starts id=1 ts=1$" "$dir/out"
[ -f "$dir/wd/COORD.fence" ] && [ -f "$dir/wd/COORD.meta" ]

# a real request across processes: status asks ListStores + ListRegions
addr=$(sed -n 's/^listening on //p' "$dir/out")
"$nokv" coordinator status --coordinator-addr "$addr" >"$dir/status.out"
grep -q "^STORES 0$" "$dir/status.out" && grep -q "^REGIONS 0$" "$dir/status.out" ||
    { echo "status output:"; cat "$dir/status.out"; exit 1; }

# 3. one owner per workdir
set +e
"$nokv" coordinator --addr 127.0.0.1:0 --workdir "$dir/wd" >"$dir/dup.out" 2>&1; rc=$?
set -e
[ "$rc" -eq 1 ] || { echo "second coordinator: exit $rc"; cat "$dir/dup.out"; exit 1; }
grep -q "another coordinator" "$dir/dup.out"
stop
grep -q "coordinator: stopped" "$dir/err"
set +e
"$nokv" coordinator status --coordinator-addr "$addr" >"$dir/status.out" 2>&1; rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "no coordinator answers" "$dir/status.out" ||
    { echo "status of a stopped coordinator: exit $rc"; cat "$dir/status.out"; exit 1; }

# 4. restart with a higher floor
start --id-start 5000 --ts-start 7000
grep -q "recovered $dir/wd" "$dir/out"
grep -q "allocator starts id=5000 ts=7000" "$dir/out"
stop

# 5. a fence that does not verify is never guessed at
printf 'X' | dd of="$dir/wd/COORD.fence" bs=1 seek=4 conv=notrunc status=none
set +e
"$nokv" coordinator --addr 127.0.0.1:0 --workdir "$dir/wd" >"$dir/bad.out" 2>&1; rc=$?
set -e
[ "$rc" -eq 1 ] || { echo "corrupt fence: exit $rc"; cat "$dir/bad.out"; exit 1; }
grep -q "COORD.fence does not verify" "$dir/bad.out"
echo "coordinator integration: ok"
