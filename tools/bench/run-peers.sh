#!/usr/bin/env bash
# Run the kvbench workloads on NoKV-C, RocksDB and LevelDB and print them
# side by side with the ratio nokv / best peer.
#
#   tools/bench/run-peers.sh [--build DIR] [--num N] [--reads N] [--out DIR]
#                            [--engines "nokv rocksdb leveldb"] [--repeat R]
#                            [-- KVBENCH-ARGS...]
#
#   --build DIR  a CMake build of this repo (default build-bench); libnokv.a and
#                libnokv_posix.a are built there if missing
#   --num N      keys per fill (default 1000000); --reads N: reads (default num)
#   --out DIR    where the per-engine logs go (default DIR/kvbench-results)
#   --repeat R   run the engines round-robin R times (default 1); the table
#                shows the median ops/s and latency per workload, the max RSS
#   after --      extra kvbench flags, passed to every engine (e.g. --reuse-iter)
#
# Installs librocksdb-dev and libleveldb-dev when missing (apt-get, once).
# Each engine runs in its own process on a fresh temporary directory, one
# after the other, so peak RSS is per engine. See docs/benchmarks.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$ROOT/build-bench"
NUM=1000000
READS=""
OUT=""
ENGINES="nokv rocksdb leveldb"
REPEAT=1
EXTRA=()
ORIG_ARGS=("$@")

while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    --num) NUM="$2"; shift 2 ;;
    --reads) READS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --engines) ENGINES="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run-peers: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$NUM" in ''|*[!0-9]*) echo "run-peers: --num wants a number" >&2; exit 2 ;; esac
case "$REPEAT" in ''|0|*[!0-9]*) echo "run-peers: --repeat wants a number >= 1" >&2; exit 2 ;; esac
BUILD="$(mkdir -p "$BUILD" && cd "$BUILD" && pwd)"
OUT="${OUT:-$BUILD/kvbench-results}"
mkdir -p "$OUT"

# ---- packages (idempotent, like tools/setup.sh) ---------------------------
PACKAGES=(librocksdb-dev libleveldb-dev build-essential pkg-config
          libxxhash-dev liblz4-dev libjansson-dev libjemalloc-dev)
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "run-peers: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ---- build ------------------------------------------------------------------
if [ ! -f "$BUILD/libnokv.a" ] || [ ! -f "$BUILD/libnokv_posix.a" ] || [ ! -f "$BUILD/CMakeCache.txt" ]; then
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
fi
cmake --build "$BUILD" --target nokv nokv_posix -j"$(nproc)" >/dev/null
BIN="$BUILD/kvbench-peers"
CFLAGS=(-std=c11 -O2 -g -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
        -DKVBENCH_ROCKSDB -DKVBENCH_LEVELDB
        -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror)
cc "${CFLAGS[@]}" -I"$ROOT" -o "$BIN" "$ROOT/tools/bench/kvbench.c" \
   -Wl,--start-group "$BUILD/libnokv.a" "$BUILD/libnokv_posix.a" -Wl,--end-group \
   -lxxhash -llz4 -ljansson -ljemalloc -lpthread -lrocksdb -lleveldb
echo "run-peers: built $BIN"
echo "run-peers: rocksdb $(dpkg-query -W -f='${Version}' librocksdb-dev)," \
     "leveldb $(dpkg-query -W -f='${Version}' libleveldb-dev), $(nproc) cores," \
     "$(uname -r)"

# ---- run ----------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/run-peers.XXXXXX")"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

ARGS=(--num "$NUM")
if [ -n "$READS" ]; then ARGS+=(--reads "$READS"); fi
ARGS+=("${EXTRA[@]}")
rm -f "$OUT"/*.txt
LOGS=()
for r in $(seq 1 "$REPEAT"); do
  for e in $ENGINES; do
    echo "run-peers: $e (round $r/$REPEAT; load average $(cut -d' ' -f1-3 /proc/loadavg)) ..."
    "$BIN" --engine "$e" "${ARGS[@]}" --db "$WORK/$e" | tee "$OUT/$e.$r.txt"
    rm -rf "${WORK:?}/$e"
    LOGS+=("$OUT/$e.$r.txt")
  done
done
echo "run-peers: done (load average $(cut -d' ' -f1-3 /proc/loadavg))"

# ---- side-by-side table -------------------------------------------------------
echo
echo "== ops/s, median of $REPEAT (ratio = nokv / best peer; >= 1.00: nokv at least as fast) =="
awk -v engines="$ENGINES" '
  function median(key,   n, i, j, t, a) {
    n = cnt[key]; if (n == 0) return ""
    for (i = 1; i <= n; i++) a[i] = val[key, i]
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function add(key, v) { cnt[key]++; val[key, cnt[key]] = v }
  BEGIN { ne = split(engines, E, " ") }
  FNR == 1 { split(FILENAME, parts, "/"); eng = parts[length(parts)]; sub(/\.[0-9]+\.txt$/, "", eng) }
  $1 == eng && $2 != "workload" && NF >= 8 {
    if (!($2 in seen)) { seen[$2] = 1; order[++nw] = $2 }
    add("ops" SUBSEP eng SUBSEP $2, $4); add("p50" SUBSEP eng SUBSEP $2, $6); add("p99" SUBSEP eng SUBSEP $2, $7)
  }
  /^peak_rss_kib/ { if ($2 + 0 > rss[eng] + 0) rss[eng] = $2 }
  END {
    for (w = 1; w <= nw; w++) for (i = 1; i <= ne; i++) {
      ops[E[i], order[w]] = median("ops" SUBSEP E[i] SUBSEP order[w])
      p50[E[i], order[w]] = median("p50" SUBSEP E[i] SUBSEP order[w])
      p99[E[i], order[w]] = median("p99" SUBSEP E[i] SUBSEP order[w])
    }
    printf "%-12s", "workload"
    for (i = 1; i <= ne; i++) printf " %14s", E[i] " ops/s"
    printf " %10s\n", "nokv/best"
    for (w = 1; w <= nw; w++) {
      name = order[w]; best = 0
      printf "%-12s", name
      for (i = 1; i <= ne; i++) {
        v = ops[E[i], name]; if (v == "") printf " %14s", "-"; else printf " %14.0f", v
        if (E[i] != "nokv" && v + 0 > best) best = v + 0
      }
      n = ops["nokv", name]
      if (best > 0 && n != "") printf " %10.2f\n", n / best; else printf " %10s\n", "-"
    }
    print ""
    print "== latency p50 / p99 (us), median of the runs =="
    printf "%-12s", "workload"
    for (i = 1; i <= ne; i++) printf " %20s", E[i]
    printf "\n"
    for (w = 1; w <= nw; w++) {
      name = order[w]; printf "%-12s", name
      for (i = 1; i <= ne; i++) printf " %20s", sprintf("%.2f / %.2f", p50[E[i], name], p99[E[i], name])
      printf "\n"
    }
    print ""
    print "== peak RSS, max of the runs (MiB; ratio = nokv / rocksdb, target <= 1.00) =="
    for (i = 1; i <= ne; i++) printf "%-10s %10.1f\n", E[i], rss[E[i]] / 1024
    if (rss["nokv"] > 0 && rss["rocksdb"] > 0) printf "%-10s %10.2f\n", "nokv/rocks", rss["nokv"] / rss["rocksdb"]
  }' "${LOGS[@]}"

echo
echo "logs: $OUT/<engine>.<round>.txt"
echo "reproduce: tools/bench/run-peers.sh ${ORIG_ARGS[*]}"
