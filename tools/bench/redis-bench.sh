#!/usr/bin/env bash
# redis-benchmark against `nokv serve` and, side by side, against redis-server
# with the append-only file on and the matching fsync policy.
#
#   tools/bench/redis-bench.sh [--build DIR] [-n REQUESTS] [-r KEYSPACE] [-d BYTES]
#                              [-c CLIENTS] [-P PIPELINE] [--policies "always group"]
#
#   --build DIR   a CMake build of this repo holding the `nokv` binary
#                 (default build-bench; the nokv_cli target is built if missing)
#   -n 1000000    requests per test;  -r 1000000  random keys (redis-benchmark -r;
#                 0 = its single fixed key);  -d 100  value bytes
#   -c 50 clients, -P 16 pipelined requests per client
#   --policies    which durability pairs to run (default "always group"):
#                   always  nokv --sync always  vs  appendfsync always
#                   group   nokv --sync group   vs  appendfsync everysec
#                   none    nokv --sync none    vs  appendfsync no
#
# Prints requests/s, latency and the ratio nokv/redis per command, then the
# targets (policy always, -P 16: SET >= 1.0x, GET >= 0.8x redis-server) as
# MET or MISSED, and the load average before and after (a shared machine
# moves wall-clock numbers; compare ratios from the same run only).
#
# Each pair starts both servers on 127.0.0.1, free ports, fresh temporary
# directories; both are stopped on exit (trap). Installs redis-server and
# redis-tools when missing. See docs/benchmarks.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$ROOT/build-bench"
REQ=1000000
KEYSPACE=1000000
DATASIZE=100
CLIENTS=50
PIPE=16
POLICIES="always group"
ORIG_ARGS=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    -n) REQ="$2"; shift 2 ;;
    -r) KEYSPACE="$2"; shift 2 ;;
    -d) DATASIZE="$2"; shift 2 ;;
    -c) CLIENTS="$2"; shift 2 ;;
    -P) PIPE="$2"; shift 2 ;;
    --policies) POLICIES="$2"; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "redis-bench: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# ---- packages -----------------------------------------------------------------
missing=()
for p in redis-server redis-tools python3; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "redis-bench: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

NOKV="$BUILD/nokv"
if [ ! -x "$NOKV" ]; then
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$BUILD" --target nokv_cli -j"$(nproc)" >/dev/null
fi

# ---- servers ------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/redis-bench.XXXXXX")"
NOKV_PID=""
REDIS_PID=""
stop() { # stop PID: SIGTERM, wait up to 10 s, then SIGKILL
  local pid="$1"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  fi
}
cleanup() {
  stop "$NOKV_PID"; NOKV_PID=""
  stop "$REDIS_PID"; REDIS_PID=""
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_ready() { # wait_ready PORT LOG
  for _ in $(seq 1 200); do
    if redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; then return 0; fi
    sleep 0.05
  done
  echo "redis-bench: server on port $1 did not start:" >&2
  cat "$2" >&2
  exit 1
}

BENCH_ARGS=(-t set,get -n "$REQ" -P "$PIPE" -c "$CLIENTS" -d "$DATASIZE")
if [ "$KEYSPACE" != "0" ]; then BENCH_ARGS+=(-r "$KEYSPACE"); fi

# run_bench NAME PORT -> WORK/NAME.csv
run_bench() {
  redis-benchmark -h 127.0.0.1 -p "$2" "${BENCH_ARGS[@]}" --csv >"$WORK/$1.csv" 2>"$WORK/$1.err" || {
    echo "redis-bench: redis-benchmark against $1 failed:" >&2
    cat "$WORK/$1.err" >&2
    exit 1
  }
}

echo "redis-bench: $(redis-server --version | head -1)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "redis-bench: redis-benchmark ${BENCH_ARGS[*]}; $(nproc) cores"
RESULTS="$WORK/results.txt"
: >"$RESULTS"
for pol in $POLICIES; do
  case "$pol" in
    always) fsync=always ;;
    group) fsync=everysec ;;
    none) fsync=no ;;
    *) echo "redis-bench: unknown policy '$pol'" >&2; exit 2 ;;
  esac
  mkdir -p "$WORK/$pol/nokv" "$WORK/$pol/redis"

  port=$(free_port)
  "$NOKV" serve --workdir "$WORK/$pol/nokv/db" --addr "127.0.0.1:$port" --sync "$pol" \
    --log-level warn >"$WORK/$pol/nokv.log" 2>&1 &
  NOKV_PID=$!
  wait_ready "$port" "$WORK/$pol/nokv.log"
  run_bench "nokv-$pol" "$port"
  stop "$NOKV_PID"; NOKV_PID=""

  port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes --daemonize no \
    --dir "$WORK/$pol/redis" --save "" --appendonly yes --appendfsync "$fsync" \
    --logfile "$WORK/$pol/redis.log" &
  REDIS_PID=$!
  wait_ready "$port" "$WORK/$pol/redis.log"
  run_bench "redis-$pol" "$port"
  stop "$REDIS_PID"; REDIS_PID=""

  # "SET","123456.79","0.391",... : test, rps, avg, min, p50, p95, p99, max (ms)
  for side in nokv redis; do
    tr -d '"' <"$WORK/$side-$pol.csv" | awk -F, -v side="$side" -v pol="$pol" -v fs="$fsync" \
      '$1 == "SET" || $1 == "GET" { print pol, fs, side, $1, $2, $5, $7 }' >>"$RESULTS"
  done
done

echo
printf '%-22s %-4s %14s %14s %9s   %-17s %-17s\n' "policy (nokv/redis)" "cmd" "nokv req/s" \
  "redis req/s" "nokv/redis" "nokv p50/p99 ms" "redis p50/p99 ms"
awk '
  { k = $1 SUBSEP $4; if (!(k in seen)) { seen[k] = 1; order[++n] = k; fs[k] = $2 }
    rps[$3, k] = $5; lat[$3, k] = $6 "/" $7 }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]; split(k, p, SUBSEP)
      r = rps["redis", k] + 0
      printf "%-22s %-4s %14s %14s %9s   %-17s %-17s\n", p[1] "/" fs[k], p[2], rps["nokv", k],
             rps["redis", k], (r > 0 ? sprintf("%.2f", rps["nokv", k] / r) : "-"),
             lat["nokv", k], lat["redis", k]
    }
  }' "$RESULTS"

# Targets (issue 11): with --sync always and -P 16, SET >= 1.0x and GET >=
# 0.8x redis-server appendfsync always. Other -P values are reported only.
echo
awk -v pipe="$PIPE" '
  $1 == "always" { rps[$3, $4] = $5; have = 1 }
  END {
    if (!have) { print "targets: not checked (policy always was not run)"; exit }
    want["SET"] = 1.0; want["GET"] = 0.8
    for (cmd in want) order[cmd == "SET" ? 1 : 2] = cmd
    for (i = 1; i <= 2; i++) {
      cmd = order[i]; r = rps["redis", cmd] + 0
      if (r <= 0) { printf "target %s: no result\n", cmd; continue }
      ratio = rps["nokv", cmd] / r
      verdict = (pipe != 16) ? "reported only (targets are for -P 16)" \
                : (ratio >= want[cmd] ? "MET" : "MISSED")
      printf "target %s (--sync always vs appendfsync always) >= %.1fx redis: %.2fx %s\n",
             cmd, want[cmd], ratio, verdict
    }
  }' "$RESULTS"
echo "load average: start $LOAD_START, end $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
echo
echo "reproduce: tools/bench/redis-bench.sh ${ORIG_ARGS[*]}"
