#!/usr/bin/env bash
# Memory of a real 3-store NoKV-C cluster after N durable writes, and the
# write throughput on the way: three `nokv serve --store-id` processes
# (--initial-cluster), redis-benchmark SET against the leader, then each
# store's resident set (VmRSS) and peak (VmHWM) from /proc. Used to show
# that the raft core no longer holds every uncompacted entry (docs/store.md).
#
#   tools/bench/raft-mem-bench.sh [--nokv BINARY] [-n REQUESTS] [-c CLIENTS] [-P PIPELINE] [-d BYTES]
#
# Stops everything it started (trap).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NOKV="$ROOT/build/nokv"
REQ=200000
CLIENTS=50
PIPE=16
DATASIZE=100
while [ $# -gt 0 ]; do
  case "$1" in
    --nokv) NOKV="$2"; shift 2 ;;
    -n) REQ="$2"; shift 2 ;;
    -c) CLIENTS="$2"; shift 2 ;;
    -P) PIPE="$2"; shift 2 ;;
    -d) DATASIZE="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "raft-mem-bench: unknown option $1" >&2; exit 2 ;;
  esac
done

tmp=$(mktemp -d /tmp/nokv-rmem.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
rps() { tr '\r' '\n' | grep -E "^$1: [0-9.]+ requests per second" | tail -1 | awk '{print $2}'; }
mem() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status"; }

echo "raft-mem-bench: $NOKV, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  redis-benchmark -t set -n $REQ -c $CLIENTS -P $PIPE -d $DATASIZE -r 1000000"
declare -a RAFT RESP NPID
initial=""
for i in 1 2 3; do RAFT[$i]=$(port); RESP[$i]=$(port); initial="$initial${initial:+,}$i=127.0.0.1:${RAFT[$i]}"; done
for i in 1 2 3; do
  "$NOKV" serve --store-id "$i" --workdir "$tmp/nokv$i" --addr "127.0.0.1:${RAFT[$i]}" \
    --redis-addr "127.0.0.1:${RESP[$i]}" --initial-cluster "$initial" >"$tmp/nokv$i.log" 2>&1 &
  NPID[$i]=$!; pids+=("$!")
done
leader=""
for _ in $(seq 1 150); do
  for i in 1 2 3; do
    if [ "$(grep -oE 'is now (leader|follower)' "$tmp/nokv$i.log" | tail -1)" = "is now leader" ] &&
       [ "$(redis-cli -p "${RESP[$i]}" set probe x 2>/dev/null)" = OK ]; then leader=$i; break 2; fi
  done
  sleep 0.1
done
[ -n "$leader" ] || { echo "nokv: no leader"; tail "$tmp"/nokv*.log; exit 1; }
for i in 1 2 3; do echo "  store $i before: VmRSS $(mem "${NPID[$i]}" VmRSS) kB"; done
out=$(redis-benchmark -p "${RESP[$leader]}" -t set -n "$REQ" -c "$CLIENTS" -P "$PIPE" \
  -d "$DATASIZE" -r 1000000 -q 2>&1)
set_rps=$(echo "$out" | rps SET)
sleep 1 # let followers apply the tail
echo "SET $set_rps/s (leader store $leader)"
tck=$(getconf CLK_TCK)
for i in 1 2 3; do
  cpu=$(awk -v t="$tck" '{printf "%.2f", ($14+$15)/t}' "/proc/${NPID[$i]}/stat")
  echo "  store $i after $REQ SETs: VmRSS $(mem "${NPID[$i]}" VmRSS) kB  VmHWM $(mem "${NPID[$i]}" VmHWM) kB  CPU ${cpu}s"
done
for i in 1 2 3; do kill -TERM "${NPID[$i]}"; done
for i in 1 2 3; do wait "${NPID[$i]}" || true; done
for i in 1 2 3; do
  echo "  store $i: $(grep -oE 'raft log syncs=[0-9]+.*raft readbacks=[0-9]+' "$tmp/nokv$i.log" | tail -1)"
done
