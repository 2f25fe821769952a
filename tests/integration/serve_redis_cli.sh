#!/usr/bin/env bash
# serve_redis_cli.sh NOKV_BINARY - drive a real `nokv serve` with real redis-cli.
#
#  1. start the server (127.0.0.1, free port, fresh workdir, --sync always);
#  2. write 2000 keys through redis-cli (pipelined), plus deletes and INCRs;
#  3. send a malformed request on a raw socket: that connection gets an error
#     and is closed, the server keeps serving;
#  4. SIGKILL the server (no graceful shutdown) while writes are in flight;
#  5. restart on the same workdir: every write redis-cli saw acknowledged
#     (--sync always) must be there with the right value;
#  6. SIGTERM: graceful stop, exit status 0.
set -euo pipefail
nokv=$1
command -v redis-cli >/dev/null || { echo "redis-cli missing (tools/setup.sh installs redis-tools)"; exit 1; }
dir=$(mktemp -d /tmp/nokv-it.XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
port=$(free_port)

start() {
    "$nokv" serve --workdir "$dir/db" --addr "127.0.0.1:$port" --sync always >>"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then return 0; fi
        sleep 0.05
    done
    echo "server did not start"; cat "$dir/server.log"; exit 1
}

start
# 2. writes through redis-cli, pipelined (--pipe reports replies it got)
for i in $(seq 1 2000); do printf 'SET key:%05d value-%05d\n' "$i" "$i"; done >"$dir/cmds"
for i in $(seq 1 200 2000); do printf 'DEL key:%05d\n' "$i"; done >>"$dir/cmds"
for i in $(seq 1 50); do printf 'INCR counter\n'; done >>"$dir/cmds"
redis-cli -p "$port" --pipe <"$dir/cmds" >"$dir/pipe.out"
grep -q "errors: 0, replies: 2060" "$dir/pipe.out" || { cat "$dir/pipe.out"; exit 1; }
[ "$(redis-cli -p "$port" get key:00002)" = "value-00002" ]
[ "$(redis-cli -p "$port" get counter)" = "50" ]

# 3. a malformed request closes only that connection
python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"*2\r\n$3\r\nGET\r\n$-7\r\nx\r\n")
reply = s.recv(4096)
assert reply.startswith(b"-ERR Protocol error"), reply
s.settimeout(2)
assert s.recv(4096) == b"", "connection should be closed after a protocol error"
PY
[ "$(redis-cli -p "$port" ping)" = "PONG" ]

# 4. writes in flight, then SIGKILL: only acknowledged ones are promised
( for i in $(seq 1 3000); do printf 'SET late:%05d v%05d\n' "$i" "$i"; done ) |
    redis-cli -p "$port" >"$dir/late.out" 2>/dev/null &
writer=$!
sleep 0.3
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
wait "$writer" 2>/dev/null || true
acked=$(grep -c '^OK$' "$dir/late.out" || true)

# 5. restart: everything acknowledged is there
start
missing=0
for i in $(seq 1 2000); do
    if [ $(( (i - 1) % 200 )) -eq 0 ]; then continue; fi
    printf 'GET key:%05d\n' "$i"
done | redis-cli -p "$port" >"$dir/get.out"
bad=$(awk -v n=0 '{ n++ } !/^value-/ { print }' "$dir/get.out" | wc -l)
[ "$bad" -eq 0 ] || { echo "lost or wrong values after SIGKILL:"; head "$dir/get.out"; exit 1; }
[ "$(redis-cli -p "$port" exists key:00001)" = "0" ]
[ "$(redis-cli -p "$port" get counter)" = "50" ]
for i in $(seq 1 "$acked"); do printf 'GET late:%05d\n' "$i"; done | redis-cli -p "$port" >"$dir/late-get.out"
lost=$(grep -cv '^v' "$dir/late-get.out" || true)
if [ "$acked" -gt 0 ] && [ "$lost" -ne 0 ]; then
    echo "$lost of $acked acknowledged in-flight writes lost after SIGKILL"; exit 1
fi
echo "serve_redis_cli: 2000 keys + $acked acknowledged in-flight writes survived SIGKILL"

# 6. graceful stop
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] || { echo "graceful stop exited $status"; cat "$dir/server.log"; exit 1; }
echo "serve_redis_cli: PASS"
