#!/usr/bin/env bash
# run.sh - build every fuzz target in build-fuzz and run each for a while.
#
# usage: tools/fuzz/run.sh [SECONDS] [TARGET...]
#   SECONDS  per target (default 30)
#   TARGET   fuzz_resp fuzz_sst fuzz_wal fuzz_manifest fuzz_batch fuzz_raftlog fuzz_coord
#            (default: all)
#
# Needs clang (libFuzzer + ASan + UBSan). Each target starts from its
# checked-in seeds (tools/fuzz/corpus_<name>, read only) plus the working
# corpus it grew on earlier runs (build-fuzz/fuzz-corpus/<target>, where new
# inputs go). A crash leaves its input in build-fuzz/fuzz-artifacts/; to
# report one, minimize it (<target> -minimize_crash=1 -runs=10000 <input>)
# and save it as tools/fuzz/crashes/<name>-<n>.
#
# Prints one line per target: exec/s, corpus size, and OK or CRASH; the exit
# status is 1 if any target crashed (or failed to build), else 0.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(fuzz_resp fuzz_sst fuzz_wal fuzz_manifest fuzz_batch fuzz_raftlog fuzz_coord)
fi
build=$root/build-fuzz
cc=${CC:-clang}

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DNOKV_FUZZ=ON -DCMAKE_C_COMPILER="$cc" -DNOKV_WERROR=OFF \
        >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
fi
if ! cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >"$build/fuzz-build.log" 2>&1; then
    tail -40 "$build/fuzz-build.log"
    echo "build failed (full log: $build/fuzz-build.log)"
    exit 1
fi

mkdir -p "$build/fuzz-artifacts"
status=0
printf '%-15s %10s %8s  %s\n' target exec/s corpus result
for t in "${targets[@]}"; do
    name=${t#fuzz_}
    seeds=$root/tools/fuzz/corpus_$name
    work=$build/fuzz-corpus/$t
    log=$build/fuzz-artifacts/$t.log
    mkdir -p "$work"
    dirs=("$work")
    [ -d "$seeds" ] && dirs+=("$seeds")
    "$build/$t" -max_total_time="$secs" -print_final_stats=1 -max_len=16384 \
        -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$build/fuzz-artifacts/$t-" "${dirs[@]}" >"$log" 2>&1
    rc=$?
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    ncorp=$(find "$work" -type f | wc -l)
    if [ $rc -eq 0 ]; then
        result=OK
    else
        status=1
        art=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -1)
        result="CRASH (exit $rc) input: ${art:-?} log: $log"
    fi
    printf '%-15s %10s %8s  %s\n' "$t" "${eps:-?}" "$ncorp" "$result"
done
exit $status
