#!/usr/bin/env bash
# Migration benchmark (issue 8 item 9; a benchmark, not a test): how long
# `nokv migrate init` and `nokv migrate expand` take on a ~1 GB workdir,
# each as a ratio to copying that workdir with `cp -r` + `sync` on the same
# machine (the physical floor of a copy).
#
#   tools/bench/migrate-bench.sh [--build DIR] [--gb N] [--value-bytes B]
#                                [--sample K] [--copies C] [--keep]
#
#   --build DIR       a CMake build of this repo holding `nokv` (default build;
#                     the nokv_cli target is built if the binary is missing)
#   --gb N            logical data to write, GiB of key+value (default 1;
#                     fractions such as 0.25 work)
#   --value-bytes B   value size (default 1000): N GiB / B values are written
#   --sample K        keys read back and compared through store 2 (default 2000)
#   --copies C        how many times the copy is timed; its median is the floor
#                     (default 3: a copy of 1 GB takes about a second, so
#                     it is the noisiest number on a shared machine)
#   --keep            keep the temporary directory (default: removed on exit)
#
# Steps (127.0.0.1 only, free ports, one temporary directory under $TMPDIR):
#  1. fill: `nokv serve --sync none` on a fresh standalone workdir, the values
#     written with `redis-cli --pipe` (SET key:%012d, each key once, in a
#     scattered order). The values are random bytes from a seeded pool:
#     redis-benchmark's -d values are all 'x' and would compress (lz4) to
#     almost nothing, so the workdir would not be 1 GB on disk. SIGTERM,
#     exit 0 required. Then `sync`.
#  2. copy: time `cp -r WORKDIR COPY && sync` (C times, each copy removed
#     and synced before the next; the median counts).
#  3. init: time `nokv migrate init --workdir W --store 1 --region 1 --peer 101`
#     (then `sync`, inside the timing: init syncs what it writes itself).
#  4. expand: serve W as store 1, an empty store 2, time
#     `nokv migrate expand --addr S1 --region 1 --target 2:102@S2 --workdir W
#     --timeout 30m`; stderr lines are stamped with the elapsed time so the
#     snapshot export / stream / install split is visible.
#  5. transfer leadership to peer 102 (not timed) and read a sample of keys
#     back through store 2's RESP port, comparing every byte.
#  6. print the times, init/copy and expand/copy, and the targets
#     (init <= 0.2x copy, expand <= 1.5x copy) as MET or MISSED; for the
#     record also the snapshot phases of expand (export, stream, install)
#     as ratios to the copy.
# Every process started here is stopped on exit (trap), by its PID.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$ROOT/build"
GB=1
VBYTES=1000
SAMPLE=2000
COPIES=3
KEEP=""
SEED=20261204
ORIG_ARGS=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    --gb) GB="$2"; shift 2 ;;
    --value-bytes) VBYTES="$2"; shift 2 ;;
    --sample) SAMPLE="$2"; shift 2 ;;
    --copies) COPIES="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "migrate-bench: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for c in redis-cli python3; do
  command -v "$c" >/dev/null || { echo "migrate-bench: $c missing (tools/setup.sh installs it)" >&2; exit 1; }
done
NOKV="$BUILD/nokv"
if [ ! -x "$NOKV" ]; then
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build "$BUILD" --target nokv_cli -j"$(nproc)" >/dev/null
fi
NKEYS=$(python3 -c "import sys; g=float(sys.argv[1]); b=int(sys.argv[2]); print(int(g*(1<<30))//(b+16))" "$GB" "$VBYTES")

WORK="$(mktemp -d "${TMPDIR:-/tmp}/migrate-bench.XXXXXX")"
# disk: the workdir, its copy (removed before init), store 2's copy and the
# leader's export plus store 2's staging: about 4x the data at the peak
need_kb=$(python3 -c "import sys; print(int(float(sys.argv[1])*4.5*1024*1024))" "$GB")
free_kb=$(df -Pk "$WORK" | awk 'NR==2 {print $4}')
if [ "$free_kb" -lt "$need_kb" ]; then
  echo "migrate-bench: $WORK has $((free_kb / 1024)) MiB free, about $((need_kb / 1024)) MiB needed; use a smaller --gb" >&2
  rmdir "$WORK"; exit 1
fi

PIDS=()
stop() { # stop PID: SIGTERM, wait up to 20 s, then SIGKILL
  local pid="$1"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  fi
}
cleanup() {
  local p
  for p in "${PIDS[@]}"; do stop "$p"; done
  PIDS=()
  if [ -n "$KEEP" ]; then echo "migrate-bench: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_ping() { # wait_ping PORT LOG
  for _ in $(seq 1 400); do
    redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "migrate-bench: nothing answers on port $1:" >&2; tail -20 "$2" >&2; exit 1
}
now() { date +%s.%N; }
secs() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
du_mib() { du -sm "$1" | awk '{print $1}'; }
stamp() { # prefix each line with the seconds since $1 (an $EPOCHREALTIME)
  local t0=${1/./} line t
  while IFS= read -r line; do
    t=${EPOCHREALTIME/./}
    printf '[%4d.%02ds] %s\n' $(( (t - t0) / 1000000 )) $(( (t - t0) % 1000000 / 10000 )) "$line"
  done
}

# The data: key i is "key:%012d" % i; its value is VBYTES bytes of a 64 MiB
# random pool (seeded) at offset (i * 2654435761) % (len - VBYTES).
cat >"$WORK/data.py" <<'PY'
import random, sys
def pool(seed):
    return random.Random(seed).randbytes(64 << 20)
def key(i):
    return b"key:%012d" % i
def value(p, i, vb):
    o = (i * 2654435761) % (len(p) - vb)
    return p[o:o + vb]
def order(n):
    # a permutation of 0..n-1 that scatters neighbours: i -> i*step mod n
    step = 1000003
    while n > 1 and gcd(step, n) != 1:
        step += 2
    return (i * step % n for i in range(n))
def gcd(a, b):
    while b:
        a, b = b, a % b
    return a
if __name__ == "__main__":
    mode, n, vb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    p = pool(seed)
    out = sys.stdout.buffer
    if mode == "fill":
        buf = []
        size = 0
        for i in order(n):
            k, v = key(i), value(p, i, vb)
            rec = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v)
            buf.append(rec)
            size += len(rec)
            if size >= 1 << 20:
                out.write(b"".join(buf)); buf = []; size = 0
        out.write(b"".join(buf))
    elif mode == "verify":
        import socket
        port, sample = int(sys.argv[5]), int(sys.argv[6])
        s = socket.create_connection(("127.0.0.1", port))
        f = s.makefile("rb")
        rng = random.Random(seed + 1)
        idx = [rng.randrange(n) for _ in range(sample)]
        for lo in range(0, sample, 100):
            chunk = idx[lo:lo + 100]
            s.sendall(b"".join(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key(i)), key(i)) for i in chunk))
            for i in chunk:
                hdr = f.readline()
                if not hdr.startswith(b"$") or hdr.strip() == b"$-1":
                    print("migrate-bench: GET %s answered %r" % (key(i).decode(), hdr[:200]), file=sys.stderr)
                    sys.exit(1)
                ln = int(hdr[1:].strip())
                got = f.read(ln + 2)[:ln]
                if got != value(p, i, vb):
                    print("migrate-bench: GET %s returned a different value (%d bytes)" % (key(i).decode(), ln), file=sys.stderr)
                    sys.exit(1)
        print("verified %d keys" % sample)
PY

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "migrate-bench: $(nproc) cores, load average $LOAD0; workdirs under $WORK"
echo "migrate-bench: $NKEYS keys x ($VBYTES-byte random value + 16-byte key) = ${GB} GiB logical"

# ---- 1. fill -------------------------------------------------------------------
W="$WORK/data"
rp=$(free_port)
"$NOKV" serve --workdir "$W" --addr "127.0.0.1:$rp" --sync none >"$WORK/fill.log" 2>&1 &
FILL_PID=$!; PIDS+=("$FILL_PID")
wait_ping "$rp" "$WORK/fill.log"
t0=$(now)
python3 "$WORK/data.py" fill "$NKEYS" "$VBYTES" "$SEED" | redis-cli -h 127.0.0.1 -p "$rp" --pipe >"$WORK/pipe.out"
grep -q "errors: 0, replies: $NKEYS" "$WORK/pipe.out" || { echo "migrate-bench: fill failed:" >&2; cat "$WORK/pipe.out" >&2; exit 1; }
kill -TERM "$FILL_PID"
set +e; wait "$FILL_PID"; rc=$?; set -e
PIDS=()
[ "$rc" = 0 ] || { echo "migrate-bench: the standalone server exited $rc on SIGTERM" >&2; tail -20 "$WORK/fill.log" >&2; exit 1; }
sync
t1=$(now)
FILL_S=$(secs "$t0" "$t1")
W_MIB=$(du_mib "$W")
W_FILES=$(find "$W" -type f | wc -l)
echo "fill:   $FILL_S s ($NKEYS SETs, --sync none, SIGTERM exit 0); workdir $W_MIB MiB on disk, $W_FILES files"

# ---- 2. cp -r + sync (COPIES times; the median is the floor) -----------------------
CT=()
for c in $(seq 1 "$COPIES"); do
  sync
  t0=$(now)
  cp -r "$W" "$WORK/copy"
  sync
  t1=$(now)
  CT+=("$(secs "$t0" "$t1")")
  C_MIB=$(du_mib "$WORK/copy")
  rm -rf "$WORK/copy"
  sync
done
COPY_S=$(printf '%s\n' "${CT[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "copy:   $COPY_S s median of ${CT[*]} (cp -r + sync, $C_MIB MiB)"

# ---- 3. init --------------------------------------------------------------------
"$NOKV" migrate plan --workdir "$W" >"$WORK/plan.out" 2>&1 || { cat "$WORK/plan.out" >&2; exit 1; }
WAL_MIB=$(du_mib "$W/wal")
df0=$(df -Pk "$WORK" | awk 'NR==2 {print $3}')
t0=$(now)
"$NOKV" migrate init --workdir "$W" --store 1 --region 1 --peer 101 >"$WORK/init.out" 2>&1 || { cat "$WORK/init.out" >&2; exit 1; }
sync
t1=$(now)
INIT_S=$(secs "$t0" "$t1")
df1=$(df -Pk "$WORK" | awk 'NR==2 {print $3}')
echo "init:   $INIT_S s (it flushed the $WAL_MIB MiB WAL the standalone server left; filesystem use grew by $(( (df1 - df0) / 1024 )) MiB; seed snapshot $(find "$W/seed-snapshot" -type f -links +1 | wc -l) hard-linked files)"

# ---- 4. expand ------------------------------------------------------------------
a1=127.0.0.1:$(free_port); a2=127.0.0.1:$(free_port)
r1=$(free_port); r2=$(free_port)
"$NOKV" serve --store-id 1 --workdir "$W" --addr "$a1" --redis-addr "127.0.0.1:$r1" >"$WORK/s1.log" 2>&1 &
PIDS+=($!)
mkdir -p "$WORK/s2"
"$NOKV" serve --store-id 2 --workdir "$WORK/s2" --addr "$a2" --redis-addr "127.0.0.1:$r2" >"$WORK/s2.log" 2>&1 &
PIDS+=($!)
wait_ping "$r1" "$WORK/s1.log"; wait_ping "$r2" "$WORK/s2.log"
ok=""
for _ in $(seq 1 400); do # the seed peer elects itself
  "$NOKV" migrate status --addr "$a1" --region 1 --json >"$WORK/st.json" 2>/dev/null || true
  python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])).get("role") == "leader" else 1)' "$WORK/st.json" 2>/dev/null && { ok=1; break; }
  sleep 0.05
done
[ -n "$ok" ] || { echo "migrate-bench: the seed does not lead region 1" >&2; cat "$WORK/st.json" >&2; tail -20 "$WORK/s1.log" >&2; exit 1; }
sync
t0=$(now)
T0=$EPOCHREALTIME
set +e
"$NOKV" migrate expand --addr "$a1" --region 1 --target "2:102@$a2" --workdir "$W" --timeout 30m 2>&1 | stamp "$T0" >"$WORK/expand.out"
rc=${PIPESTATUS[0]}
set -e
sync
t1=$(now)
EXPAND_S=$(secs "$t0" "$t1")
[ "$rc" = 0 ] || { echo "migrate-bench: expand exited $rc:" >&2; cat "$WORK/expand.out" >&2; tail -20 "$WORK/s1.log" "$WORK/s2.log" >&2; exit 1; }
echo "expand: $EXPAND_S s (store 2 holds $(du_mib "$WORK/s2") MiB right after, obsolete files included); its stages, stamped from the start:"
# every stage change, the first progress line of the stream and its 100% line
awk '!/snapshot-stream [0-9]/ || !seen++ || /\(100\.0%\)/' "$WORK/expand.out" | sed 's/^/        /'

# ---- 5. read back through store 2 ----------------------------------------------
"$NOKV" migrate transfer-leader --addr "$a1" --region 1 --peer 102 --peer-addr "$a2" >"$WORK/transfer.out" 2>&1 || {
  echo "migrate-bench: transfer-leader failed:" >&2; cat "$WORK/transfer.out" >&2; exit 1; }
VERIFY=$(python3 "$WORK/data.py" verify "$NKEYS" "$VBYTES" "$SEED" "$r2" "$SAMPLE") || exit 1
echo "read:   $VERIFY through store 2 (leader after transfer-leader to peer 102), every byte compared"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 6. summary ------------------------------------------------------------------
python3 - "$COPY_S" "$INIT_S" "$EXPAND_S" "$W_MIB" "$LOAD0" "$LOAD1" "$WORK/expand.out" <<'PY'
import re, sys
copy, init, expand, mib = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
# phase boundaries from the stamped stderr of expand
first = {}
for line in open(sys.argv[7]):
    m = re.match(r"\[\s*([0-9.]+)s\] nokv migrate expand: \[store \d+ peer \d+\] ([a-z-]+)", line)
    if m:
        t, st = float(m.group(1)), m.group(2)
        first.setdefault(st, t)
        if st == "snapshot-stream" and "(100.0%)" in line:
            first["stream-done"] = t
ri, re_ = init / copy, expand / copy
v = lambda ok: "MET" if ok else "MISSED"
print()
print("== migrate-bench: %s MiB workdir ==" % mib)
print("%-34s %8s %8s %10s" % ("step", "seconds", "x copy", "target"))
print("%-34s %8.2f %8.2f" % ("cp -r + sync (median)", copy, 1.0))
print("%-34s %8.2f %8.2f %10s %s" % ("migrate init", init, ri, "<= 0.20", v(ri <= 0.2)))
print("%-34s %8.2f %8.2f %10s %s" % ("migrate expand (1 target, total)", expand, re_, "<= 1.50", v(re_ <= 1.5)))
def phase(name, a, b):
    if a in first and b in first:
        d = first[b] - first[a]
        print("%-34s %8.2f %8.2f" % ("  " + name, d, d / copy))
phase("snapshot-export (leader)", "snapshot-export", "snapshot-stream")
phase("snapshot-stream (1 MiB chunks)", "snapshot-stream", "stream-done")
phase("snapshot-install (target)", "snapshot-install", "snapshot-release")
phase("export + stream + install", "snapshot-export", "snapshot-release")
phase("release .. verify", "snapshot-release", "verify")
print("load average: %s at the start, %s at the end" % (sys.argv[5], sys.argv[6]))
PY
echo "command: $0 ${ORIG_ARGS[*]}"
