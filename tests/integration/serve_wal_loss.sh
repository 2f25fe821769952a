#!/usr/bin/env bash
# serve_wal_loss.sh NOKV_BINARY - a damaged WAL on a real `nokv serve` (issue 12, cases 2 and 3).
#
#  1. 2000 writes acknowledged with --sync always, then SIGKILL;
#     `rm wal/*.log`: the restart is refused (exit 1) naming the missing
#     segment and what to do, and leaves no debris (before: it opened with
#     "recovered 0 records" and the writes were gone, silently);
#  2. `nokv repair` opens it accepting the loss, says what was lost, and the
#     next `nokv serve` opens normally;
#  3. 2000 acknowledged writes, graceful stop, the segment truncated: the
#     restart is refused naming the file (before: "torn tail ... never
#     acknowledged" and the writes were dropped); `--accept-data-loss`
#     serves what is left and logs what it gave up;
#     the same after SIGKILL (a claim recorded every second covers it);
#  4. `nokv check` reports a clean workdir as clean (exit 0) and a damaged
#     one as damaged (exit 1), without changing a byte.
set -euo pipefail
nokv=$1
command -v redis-cli >/dev/null || { echo "redis-cli missing (tools/setup.sh installs redis-tools)"; exit 1; }
dir=$(mktemp -d /tmp/nokv-walloss.XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

start() { # start WORKDIR [extra args]: wait until it answers
    local wd=$1
    shift
    "$nokv" serve --workdir "$wd" --addr "127.0.0.1:$port" --sync always "$@" >>"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then echo "server exited"; cat "$dir/server.log"; exit 1; fi
        sleep 0.05
    done
    echo "server did not start"; cat "$dir/server.log"; exit 1
}

refused() { # refused WORKDIR PATTERN: serve must exit 1 with PATTERN on stderr
    local status=0
    timeout 20 "$nokv" serve --workdir "$1" --addr "127.0.0.1:$port" >"$dir/refused.log" 2>&1 || status=$?
    [ "$status" -eq 1 ] || { echo "serve should have been refused (exit $status)"; cat "$dir/refused.log"; exit 1; }
    grep -q -- "$2" "$dir/refused.log" || { echo "refusal does not say '$2':"; cat "$dir/refused.log"; exit 1; }
}

write_keys() {
    for i in $(seq 1 2000); do printf 'SET key:%05d value-%05d\n' "$i" "$i"; done |
        redis-cli -p "$port" --pipe >"$dir/pipe.out"
    grep -q "errors: 0, replies: 2000" "$dir/pipe.out" || { cat "$dir/pipe.out"; exit 1; }
}

# 1. segment removed after SIGKILL
start "$dir/a"
write_keys
kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; pid=""
rm "$dir"/a/wal/*.log
refused "$dir/a" "000001.log is missing"
grep -q -- "--accept-data-loss" "$dir/refused.log"
[ -z "$(ls "$dir/a/wal")" ] || { echo "the refused open left debris:"; ls -l "$dir/a/wal"; exit 1; }

# 2. explicit salvage, then a normal start
"$nokv" repair --workdir "$dir/a" >"$dir/repair.out" 2>&1 || { cat "$dir/repair.out"; exit 1; }
grep -q "LOST: every WAL record from 1 on" "$dir/repair.out" || { cat "$dir/repair.out"; exit 1; }
start "$dir/a"
[ "$(redis-cli -p "$port" set fresh 1)" = "OK" ]
kill -TERM "$pid"; wait "$pid"; pid=""

# 3. truncated segment after a graceful stop
start "$dir/b"
write_keys
kill -TERM "$pid"; wait "$pid"; pid=""
"$nokv" check --workdir "$dir/b" >"$dir/check.out" 2>&1 || { echo "check of a clean workdir failed"; cat "$dir/check.out"; exit 1; }
seg=$(ls "$dir"/b/wal/*.log | head -1)
size=$(stat -c %s "$seg")
truncate -s $((size - 1000)) "$seg"
status=0
"$nokv" check --workdir "$dir/b" >"$dir/check.out" 2>&1 || status=$?
[ "$status" -eq 1 ] || { echo "check of a truncated WAL exited $status"; cat "$dir/check.out"; exit 1; }
[ "$(stat -c %s "$seg")" -eq $((size - 1000)) ] || { echo "check modified the workdir"; exit 1; }
refused "$dir/b" "as durable"
grep -q "$(basename "$seg")" "$dir/refused.log"
if grep -q "never acknowledged" "$dir/refused.log" "$dir/server.log"; then
    echo "an acknowledged write was reported as never acknowledged"; exit 1
fi
start "$dir/b" --accept-data-loss
grep -q "ACCEPTING DATA LOSS" "$dir/server.log" || { echo "salvage decision not logged"; cat "$dir/server.log"; exit 1; }
[ "$(redis-cli -p "$port" get key:00001)" = "value-00001" ]
kill -TERM "$pid"; wait "$pid"; pid=""
start "$dir/b"
kill -TERM "$pid"; wait "$pid"; pid=""

# 3b. the same after SIGKILL: the manifest's periodic claim (every second)
#     covers writes acknowledged more than a second before the kill
start "$dir/c"
write_keys
sleep 1.5
kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; pid=""
seg=$(ls "$dir"/c/wal/*.log | tail -1)
size=$(stat -c %s "$seg")
truncate -s $((size - 1000)) "$seg"
refused "$dir/c" "as durable"
echo "serve_wal_loss: PASS"
