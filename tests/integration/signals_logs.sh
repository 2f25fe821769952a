#!/usr/bin/env bash
# signals_logs.sh NOKV_BINARY - signals, log options and systemd readiness of
# a real `nokv serve`.
#
#  1. NOTIFY_SOCKET points at a unix datagram socket (a python listener):
#     READY=1 arrives once the server answers PING;
#  2. --log-file F --log-format json: every line of F is a JSON object with
#     ts, level, node, msg; the start-up line names the path it took;
#  3. SIGPIPE is ignored (SigIgn in /proc), SIGHUP after renaming F makes
#     the server write a new F (logrotate), and it keeps serving;
#  4. SIGTERM: STOPPING=1 arrives, exit status 0;
#  5. `nokv serve --log-format yaml` is a usage error (exit 2).
set -euo pipefail
nokv=$1
command -v redis-cli >/dev/null || { echo "redis-cli missing"; exit 1; }
dir=$(mktemp -d /tmp/nokv-sig.XXXXXX)
pid=""; lpid=""
cleanup() {
    for p in $pid $lpid; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

python3 - "$dir/notify.sock" "$dir/notify.out" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(0.5)
deadline = time.time() + 60
with open(sys.argv[2], "a", buffering=1) as out:
    while time.time() < deadline:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            continue
        out.write(msg.replace("\n", "|") + "\n")
        if "STOPPING=1" in msg:
            break
PY
lpid=$!
for _ in $(seq 1 100); do [ -S "$dir/notify.sock" ] && break; sleep 0.05; done

NOTIFY_SOCKET="$dir/notify.sock" "$nokv" serve --workdir "$dir/db" --addr "127.0.0.1:$port" \
    --log-file "$dir/nokv.log" --log-format json --shutdown-timeout 30 2>"$dir/stderr" &
pid=$!
for _ in $(seq 1 100); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.05
done
[ "$(redis-cli -p "$port" set a 1)" = OK ]
for _ in $(seq 1 100); do grep -q 'READY=1' "$dir/notify.out" 2>/dev/null && break; sleep 0.05; done
grep -q '^READY=1|STATUS=serving RESP on 127.0.0.1:' "$dir/notify.out" || { echo "no READY=1"; cat "$dir/notify.out"; exit 1; }

# 2. JSON lines
python3 - "$dir/nokv.log" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "empty log"
for l in lines:
    o = json.loads(l)
    assert set(o) == {"ts", "level", "node", "msg"}, o
    assert o["level"] in ("debug", "info", "warn", "error"), o
assert any("path: standalone" in json.loads(l)["msg"] for l in lines), lines
PY
[ ! -s "$dir/stderr" ] || { echo "stderr should be empty with --log-file:"; cat "$dir/stderr"; exit 1; }

# 3. SIGPIPE ignored; SIGHUP reopens the log file
sigign=$(awk '/^SigIgn:/ { print $2 }' "/proc/$pid/status")
(( (0x$sigign >> 12) & 1 )) || { echo "SIGPIPE not ignored (SigIgn=$sigign)"; exit 1; }
mv "$dir/nokv.log" "$dir/nokv.log.1"
kill -HUP "$pid"
for _ in $(seq 1 100); do [ -s "$dir/nokv.log" ] && break; sleep 0.05; done
grep -q 'SIGHUP: reopened log file' "$dir/nokv.log" || { echo "log not reopened"; ls -l "$dir"; exit 1; }
grep -q 'SIGHUP: reopened' "$dir/nokv.log.1" && { echo "reopen line went to the old file"; exit 1; }
kill -0 "$pid"
[ "$(redis-cli -p "$port" get a)" = 1 ]

# 4. SIGTERM: STOPPING=1, exit 0
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || { echo "exit $rc after SIGTERM"; cat "$dir/nokv.log"; exit 1; }
wait "$lpid" || true
lpid=""
grep -q '^STOPPING=1' "$dir/notify.out" || { echo "no STOPPING=1"; cat "$dir/notify.out"; exit 1; }
grep -q 'shutting down' "$dir/nokv.log"

# 5. bad log options are usage errors
rc=0; "$nokv" serve --workdir "$dir/db" --log-format yaml 2>"$dir/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q 'text or json' "$dir/err"
echo "signals_logs: ok"
