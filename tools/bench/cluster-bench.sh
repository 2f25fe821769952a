#!/usr/bin/env bash
# Durable writes on a 3-replica NoKV-C region, side by side in one run with
# a 3-member etcd cluster (durable puts) and a single redis-server with
# appendfsync always, all on 127.0.0.1.
#
#   tools/bench/cluster-bench.sh [--build DIR] [-n REQUESTS] [-c CLIENTS] [-P PIPELINE]
#                                [-d BYTES] [--etcd-seconds S]
#
#   nokv   : three `nokv serve --store-id` processes (--initial-cluster), the
#            leader driven by redis-benchmark -t set,get; every SET is
#            acknowledged after its raft entry is fsynced on a majority and
#            applied. At shutdown each store logs its raft log fsyncs: the
#            script prints fsyncs per acknowledged write on each replica.
#   etcd   : three etcd members (Debian etcd-server, its defaults), wrk with
#            -c CLIENTS connections doing PUTs through the v3 JSON gateway
#            (each put is durable: etcd fsyncs its WAL before replying).
#   redis  : redis-server --appendonly yes --appendfsync always, the same
#            redis-benchmark command as nokv.
# Prints each measurement, the ratios, and the target (nokv SET >= 5x etcd).
# Installs etcd-server, wrk, redis-server, redis-tools when missing. Stops
# everything it started (trap). See docs/benchmarks.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$ROOT/build"
REQ=200000
CLIENTS=50
PIPE=16
DATASIZE=100
ETCD_SECONDS=10
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    -n) REQ="$2"; shift 2 ;;
    -c) CLIENTS="$2"; shift 2 ;;
    -P) PIPE="$2"; shift 2 ;;
    -d) DATASIZE="$2"; shift 2 ;;
    --etcd-seconds) ETCD_SECONDS="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "cluster-bench: unknown option $1" >&2; exit 2 ;;
  esac
done

need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
[ -x "$BUILD/nokv" ] || cmake --build "$BUILD" --target nokv_cli -j "$(nproc)"
NOKV="$BUILD/nokv"

tmp=$(mktemp -d /tmp/nokv-cbench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
rps() { tr '\r' '\n' | grep -E "^$1: [0-9.]+ requests per second" | tail -1 | awk '{print $2}'; }

echo "cluster-bench: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  redis-benchmark -t set,get -n $REQ -c $CLIENTS -P $PIPE -d $DATASIZE -r 1000000"

# ---------------------------------------------------------------- nokv ---
declare -a RAFT RESP NPID
initial=""
for i in 1 2 3; do RAFT[$i]=$(port); RESP[$i]=$(port); initial="$initial${initial:+,}$i=127.0.0.1:${RAFT[$i]}"; done
for i in 1 2 3; do
  "$NOKV" serve --store-id "$i" --workdir "$tmp/nokv$i" --addr "127.0.0.1:${RAFT[$i]}" \
    --redis-addr "127.0.0.1:${RESP[$i]}" --initial-cluster "$initial" >"$tmp/nokv$i.log" 2>&1 &
  NPID[$i]=$!; pids+=("$!")
done
# The leader: its log last says "is now leader" (followers relay, so any
# store accepts a SET; the benchmark drives the leader itself).
leader=""
for _ in $(seq 1 150); do
  for i in 1 2 3; do
    if [ "$(grep -oE 'is now (leader|follower)' "$tmp/nokv$i.log" | tail -1)" = "is now leader" ] &&
       [ "$(redis-cli -p "${RESP[$i]}" set probe x 2>/dev/null)" = OK ]; then leader=$i; break 2; fi
  done
  sleep 0.1
done
[ -n "$leader" ] || { echo "nokv: no leader"; tail "$tmp"/nokv*.log; exit 1; }
nk_out=$(redis-benchmark -p "${RESP[$leader]}" -t set,get -n "$REQ" -c "$CLIENTS" -P "$PIPE" \
  -d "$DATASIZE" -r 1000000 -q 2>&1)
nk_set=$(echo "$nk_out" | rps SET); nk_get=$(echo "$nk_out" | rps GET)
errs=$(redis-cli -p "${RESP[$leader]}" info stats | tr -d '\r' | awk -F: '/total_error_replies/{print $2}')
for i in 1 2 3; do kill -TERM "${NPID[$i]}"; done
for i in 1 2 3; do wait "${NPID[$i]}" || true; done
echo "nokv 3 replicas (leader store $leader): SET $nk_set/s  GET $nk_get/s  error replies $errs (INFO; includes redis-benchmark's CONFIG probes)"
for i in 1 2 3; do
  syncs=$(grep -oE 'raft log syncs=[0-9]+' "$tmp/nokv$i.log" | tail -1 | cut -d= -f2)
  wal=$(grep -oE 'wal syncs=[0-9]+' "$tmp/nokv$i.log" | tail -1 | cut -d= -f2)
  python3 -c "import sys; s,w,n=int(sys.argv[1] or 0),int(sys.argv[2] or 0),int(sys.argv[3]); print(f'  store {sys.argv[4]}: raft log fsyncs {s}, engine WAL fsyncs {w}: {(s+w)/n:.4f} fsyncs per acknowledged SET')" \
    "${syncs:-0}" "${wal:-0}" "$REQ" "$i"
done

# ---------------------------------------------------------------- etcd ---
declare -a EC EP EPID
cluster=""
for i in 1 2 3; do EC[$i]=$(port); EP[$i]=$(port); cluster="$cluster${cluster:+,}e$i=http://127.0.0.1:${EP[$i]}"; done
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$tmp/etcd$i" \
    --listen-client-urls "http://127.0.0.1:${EC[$i]}" --advertise-client-urls "http://127.0.0.1:${EC[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${EP[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${EP[$i]}" \
    --initial-cluster "$cluster" --initial-cluster-state new >"$tmp/etcd$i.log" 2>&1 &
  EPID[$i]=$!; pids+=("$!")
done
for _ in $(seq 1 100); do
  if ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:${EC[1]}" put probe x >/dev/null 2>&1; then break; fi
  sleep 0.1
done
val=$(python3 -c "import base64,sys; print(base64.b64encode(b'v'*int(sys.argv[1])).decode())" "$DATASIZE")
cat >"$tmp/put.lua" <<LUA
request = function()
  local k = string.format("key:%012d", math.random(0, 999999))
  return wrk.format("POST", "/v3/kv/put", {["Content-Type"]="application/json"},
    '{"key":"' .. b64(k) .. '","value":"$val"}')
end
local b='ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
function b64(data)
  return ((data:gsub('.', function(x)
    local r,b2='',x:byte()
    for i=8,1,-1 do r=r..(b2%2^i-b2%2^(i-1)>0 and '1' or '0') end
    return r;
  end)..'0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if (#x < 6) then return '' end
    local c=0
    for i=1,6 do c=c+(x:sub(i,i)=='1' and 2^(6-i) or 0) end
    return b:sub(c+1,c+1)
  end)..({ '', '==', '=' })[#data%3+1])
end
done = function(summary, latency, requests)
  io.write(string.format("ETCD_RPS %.1f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("ETCD_ERRORS %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
e_out=$(wrk -t2 -c "$CLIENTS" -d "${ETCD_SECONDS}s" -s "$tmp/put.lua" "http://127.0.0.1:${EC[1]}" 2>&1)
et_put=$(echo "$e_out" | awk '/ETCD_RPS/{print $2}')
et_err=$(echo "$e_out" | awk '/ETCD_ERRORS/{print $2}')
for i in 1 2 3; do kill -TERM "${EPID[$i]}" 2>/dev/null || true; done
for i in 1 2 3; do wait "${EPID[$i]}" 2>/dev/null || true; done
echo "etcd 3 members (wrk -c $CLIENTS, ${ETCD_SECONDS}s of PUTs): $et_put puts/s, errors $et_err"

# --------------------------------------------------------------- redis ---
rp=$(port)
redis-server --port "$rp" --bind 127.0.0.1 --dir "$tmp" --appendonly yes --appendfsync always --save '' \
  >"$tmp/redis.log" 2>&1 &
RPID=$!; pids+=("$RPID")
for _ in $(seq 1 100); do redis-cli -p "$rp" ping >/dev/null 2>&1 && break; sleep 0.05; done
r_out=$(redis-benchmark -p "$rp" -t set,get -n "$REQ" -c "$CLIENTS" -P "$PIPE" -d "$DATASIZE" -r 1000000 -q 2>&1)
r_set=$(echo "$r_out" | rps SET); r_get=$(echo "$r_out" | rps GET)
redis-cli -p "$rp" shutdown nosave >/dev/null 2>&1 || true
wait "$RPID" 2>/dev/null || true
echo "redis-server (appendfsync always, 1 process, no replication): SET $r_set/s  GET $r_get/s"

python3 - "$nk_set" "$nk_get" "$et_put" "$r_set" "$r_get" <<'PY'
import sys
ns, ng, ep, rs, rg = (float(x) for x in sys.argv[1:])
print(f"ratios: nokv SET / etcd put = {ns/ep:.2f} (target >= 5: {'MET' if ns/ep >= 5 else 'MISSED'})")
print(f"        nokv SET / redis SET (always) = {ns/rs:.2f};  nokv GET / redis GET = {ng/rg:.2f}")
PY
