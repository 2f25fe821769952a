#!/usr/bin/env bash
# serve_limits.sh NOKV_BINARY - oversized requests on a real `nokv serve` (issue 12, case 1).
#
#  1. an MSET of 2 x 65 MiB (each value under the value limit, together over
#     the 128 MiB one-write limit) gets an error naming the limits;
#  2. a SET whose value is over the 127 MiB bulk limit gets the protocol
#     error naming proto-max-bulk-len, and only that connection is closed;
#  3. after both, every client can still write (before the fix the engine
#     answered NK_ETOOBIG to every later write until a restart), and the
#     writes survive a restart.
set -euo pipefail
nokv=$1
command -v redis-cli >/dev/null || { echo "redis-cli missing (tools/setup.sh installs redis-tools)"; exit 1; }
dir=$(mktemp -d /tmp/nokv-limits.XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

start() {
    "$nokv" serve --workdir "$dir/db" --addr "127.0.0.1:$port" --sync always >>"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then return 0; fi
        sleep 0.05
    done
    echo "server did not start"; cat "$dir/server.log"; exit 1
}

"$nokv" serve --help | grep -q "a value is at most 127 MiB" || { echo "--help does not state the value limit"; exit 1; }

start
redis-cli -p "$port" set before 1 >/dev/null
python3 - "$port" <<'PY'
import socket, sys
port = int(sys.argv[1])
def reply(s):
    r = b""
    while not r.endswith(b"\r\n"):
        c = s.recv(65536)
        if not c:
            break
        r += c
    return r
# 1. MSET 2 x 65 MiB: refused alone, with the limits in the error
n = 65 << 20
v = b"x" * n
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"*5\r\n$4\r\nMSET\r\n$2\r\nk1\r\n$%d\r\n" % n)
s.sendall(v)
s.sendall(b"\r\n$2\r\nk2\r\n$%d\r\n" % n)
s.sendall(v)
s.sendall(b"\r\n")
r = reply(s)
assert r.startswith(b"-ERR request too large") and b"134217728" in r, r
# the same connection keeps working
s.sendall(b"*3\r\n$3\r\nSET\r\n$5\r\nafter\r\n$1\r\n2\r\n")
assert reply(s) == b"+OK\r\n"
s.close()
del v
# 2. one value over the bulk limit: protocol error naming the limit, connection closed
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % ((127 << 20) + 1))
r = reply(s)
assert r.startswith(b"-ERR Protocol error: invalid bulk length") and b"proto-max-bulk-len" in r, r
s.close()
PY
# 3. everyone can still write
[ "$(redis-cli -p "$port" set later 3)" = "OK" ]
[ "$(redis-cli -p "$port" get after)" = "2" ]
[ "$(redis-cli -p "$port" exists k1)" = "0" ]
kill -TERM "$pid"; wait "$pid"; pid=""
start
[ "$(redis-cli -p "$port" get before)" = "1" ]
[ "$(redis-cli -p "$port" get after)" = "2" ]
[ "$(redis-cli -p "$port" get later)" = "3" ]
kill -TERM "$pid"; wait "$pid"; pid=""
echo "serve_limits: PASS"
