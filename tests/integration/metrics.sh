#!/usr/bin/env bash
# metrics.sh NOKV_BINARY - the --metrics-addr status endpoint of real processes.
#
#  1. standalone `nokv serve --metrics-addr`: after writes through redis-cli,
#     /metrics scraped with curl parses as Prometheus text (metrics_scrape.py)
#     and counts them; /health and /ready answer 200; an unknown path 404;
#  2. a malformed request, an oversized head and a POST each get their error
#     and only that connection is closed: the endpoint keeps answering;
#  3. `nokv coordinator --metrics-addr`: coordinator families;
#  4. a one-store cluster (`--store-id 1 --initial-cluster`, registered with
#     the coordinator): /ready turns 200 once region 1 has a leader; raft and
#     store families are exported; the coordinator's metrics count the store
#     and its region once it reported;
#  5. SIGTERM: every process exits 0.
set -euo pipefail
nokv=$1
here=$(cd "$(dirname "$0")" && pwd)
scrape="$here/metrics_scrape.py"
command -v redis-cli >/dev/null || { echo "redis-cli missing (tools/setup.sh installs redis-tools)"; exit 1; }
command -v curl >/dev/null || { echo "curl missing"; exit 1; }
dir=$(mktemp -d /tmp/nokv-metrics.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_http() { # URL: bounded wait (5 s) until it answers at all
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null --max-time 1 "$1"; then return 0; fi
        sleep 0.05
    done
    echo "no answer from $1"; cat "$dir"/*.log; exit 1
}
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1"; }
stop() { # PID: SIGTERM, must exit 0
    kill -TERM "$1"
    local rc=0
    wait "$1" || rc=$?
    [ "$rc" -eq 0 ] || { echo "exit status $rc after SIGTERM"; cat "$dir"/*.log; exit 1; }
}

# 1. standalone
port=$(free_port); mport=$(free_port)
"$nokv" serve --workdir "$dir/db" --addr "127.0.0.1:$port" --metrics-addr "127.0.0.1:$mport" \
    >"$dir/serve.log" 2>&1 &
spid=$!; pids+=("$spid")
wait_http "http://127.0.0.1:$mport/health"
for i in $(seq 1 50); do printf 'SET k%d v%d\n' "$i" "$i"; done | redis-cli -p "$port" >/dev/null
redis-cli -p "$port" get k1 >/dev/null
redis-cli -p "$port" nosuchcommand >/dev/null || true
python3 "$scrape" "http://127.0.0.1:$mport/metrics" nokv_build_info nokv_engine_writes_total \
    nokv_engine_write_bytes_total nokv_engine_flushes_total nokv_engine_compactions_total \
    nokv_engine_stalls_total nokv_engine_cache_hits_total nokv_engine_cache_misses_total \
    nokv_engine_level_files nokv_engine_level_bytes nokv_resp_commands_total \
    nokv_resp_errors_total nokv_resp_connections
m=$(curl -s "http://127.0.0.1:$mport/metrics")
writes=$(awk '$1 == "nokv_engine_writes_total" { print $2 }' <<<"$m")
[ "$writes" -ge 50 ] || { echo "nokv_engine_writes_total=$writes, want >= 50"; exit 1; }
errs=$(awk '$1 == "nokv_resp_errors_total" { print $2 }' <<<"$m")
[ "$errs" -ge 1 ] || { echo "nokv_resp_errors_total=$errs, want >= 1"; exit 1; }
grep -q '^nokv_engine_level_files{level="6"} ' <<<"$m"
grep -q '^nokv_build_info{version="[^"]*",role="standalone"} 1$' <<<"$m"
[ "$(code "http://127.0.0.1:$mport/health")" = 200 ]
[ "$(code "http://127.0.0.1:$mport/ready")" = 200 ]
[ "$(code "http://127.0.0.1:$mport/nope")" = 404 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$mport/metrics")" = 405 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' -d body "http://127.0.0.1:$mport/metrics")" = 400 ]

# 2. failure isolation: each bad request gets its status, then EOF
python3 - "$mport" <<'PY'
import socket, sys
port = int(sys.argv[1])
def exchange(data):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    s.sendall(data)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    return got
cases = [
    (b"GARBAGE\r\n\r\n", b"HTTP/1.1 400 "),
    (b"GET /metrics HTTP/9.9\r\n\r\n", b"HTTP/1.1 505 "),
    (b"GET /metrics HTTP/1.1\r\nbad header\r\n\r\n", b"HTTP/1.1 400 "),
    (b"DELETE /metrics HTTP/1.1\r\n\r\n", b"HTTP/1.1 405 "),
    (b"GET /x HTTP/1.1\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n", b"HTTP/1.1 431 "),
]
for req, want in cases:
    got = exchange(req)
    assert got.startswith(want), (req[:40], got[:80])
# keep-alive: two requests on one connection, then Connection: close ends it
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)
s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /ready HTTP/1.1\r\nConnection: close\r\n\r\n")
got = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
assert got.count(b"HTTP/1.1 200 OK") == 2, got
assert got.endswith(b"ready\n"), got
PY
[ "$(code "http://127.0.0.1:$mport/health")" = 200 ]
[ "$(redis-cli -p "$port" get k2)" = v2 ]
stop "$spid"

# 3. coordinator (the store below registers with it)
kport=$(free_port); kmport=$(free_port)
"$nokv" coordinator --workdir "$dir/coord" --addr "127.0.0.1:$kport" --metrics-addr "127.0.0.1:$kmport" \
    >"$dir/coord.log" 2>&1 &
kpid=$!; pids+=("$kpid")
wait_http "http://127.0.0.1:$kmport/health"
[ "$(code "http://127.0.0.1:$kmport/ready")" = 200 ]
python3 "$scrape" "http://127.0.0.1:$kmport/metrics" nokv_coord_stores nokv_coord_regions \
    nokv_coord_requests_total nokv_coord_alloc_next
grep -q '^nokv_build_info{version="[^"]*",role="coordinator"} 1$' <<<"$(curl -s "http://127.0.0.1:$kmport/metrics")"

# 4. a one-store cluster: ready once region 1 has a leader; the coordinator
#    counts the store once it reported
raft=$(free_port); resp=$(free_port); cport=$(free_port)
"$nokv" serve --store-id 1 --workdir "$dir/s1" --addr "127.0.0.1:$raft" --redis-addr "127.0.0.1:$resp" \
    --initial-cluster "1=127.0.0.1:$raft" --coordinator-addr "127.0.0.1:$kport" --metrics-addr "127.0.0.1:$cport" >"$dir/store.log" 2>&1 &
cpid=$!; pids+=("$cpid")
wait_http "http://127.0.0.1:$cport/health"
ready=""
for _ in $(seq 1 100); do
    ready=$(code "http://127.0.0.1:$cport/ready")
    [ "$ready" = 200 ] && break
    [ "$ready" = 503 ] || { echo "/ready answered '$ready'"; exit 1; }
    sleep 0.1
done
[ "$ready" = 200 ] || { echo "store never ready"; curl -s "http://127.0.0.1:$cport/ready"; exit 1; }
[ "$(redis-cli -p "$resp" set ck cv)" = OK ]
python3 "$scrape" "http://127.0.0.1:$cport/metrics" nokv_store_regions nokv_store_regions_led \
    nokv_raft_term nokv_raft_is_leader nokv_raft_commit_index nokv_raft_applied_index \
    nokv_engine_writes_total nokv_resp_commands_total
m=$(curl -s "http://127.0.0.1:$cport/metrics")
grep -q '^nokv_raft_is_leader{region="1"} 1$' <<<"$m"
grep -q '^nokv_store_regions_led 1$' <<<"$m"
grep -q '^nokv_raft_role{region="1",role="leader"} 1$' <<<"$m"
grep -q '^nokv_raft_role{region="1",role="follower"} 0$' <<<"$m"

seen=""
for _ in $(seq 1 100); do
    km=$(curl -s "http://127.0.0.1:$kmport/metrics")
    if grep -q '^nokv_coord_stores_alive 1$' <<<"$km" && grep -q '^nokv_coord_regions 1$' <<<"$km"; then
        seen=1; break
    fi
    sleep 0.1
done
[ -n "$seen" ] || { echo "coordinator metrics never counted the store:"; grep '^nokv_coord' <<<"$km"; exit 1; }
stop "$cpid"
stop "$kpid"
echo "metrics: ok"
