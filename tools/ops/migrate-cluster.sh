#!/usr/bin/env bash
# migrate-cluster.sh - the whole local migration flow, for operators and demos:
#
#   plan -> init -> serve the seed as store 1 -> start empty target stores
#   -> expand -> (optional) transfer-leader -> (optional) remove-peer
#
# Every state change is done by the `nokv` CLI; this script only starts and
# stops the server processes it owns, prints stage banners, keeps every log
# under artifacts/migration/ and writes artifacts/migration/summary.txt and
# summary.json at the end (also after a failure: the failing stage is named).
# It binds 127.0.0.1 only and stops every process it started.
#
# usage: tools/ops/migrate-cluster.sh --workdir STANDALONE_DIR [options]
#   --nokv PATH            the nokv binary (default: build/nokv)
#   --targets N            empty target stores to add (default 2)
#   --base-port P          first port (stores P.., RESP P+100..; default 20170)
#   --transfer-leader      move leadership to the first target afterwards
#   --remove-seed          then remove the seed peer (implies --transfer-leader)
#   --keep-running         leave the cluster running (default: stop it)
#   --artifacts DIR        default artifacts/migration
set -euo pipefail

nokv=build/nokv
workdir=""
targets=2
base=20170
transfer=""
remove=""
keep=""
art=artifacts/migration
while [ $# -gt 0 ]; do
    case "$1" in
    --nokv) nokv=$2; shift 2 ;;
    --workdir) workdir=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --base-port) base=$2; shift 2 ;;
    --transfer-leader) transfer=1; shift ;;
    --remove-seed) transfer=1; remove=1; shift ;;
    --keep-running) keep=1; shift ;;
    --artifacts) art=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "migrate-cluster.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$workdir" ] || { echo "migrate-cluster.sh: --workdir is required (see --help)" >&2; exit 2; }
[ -x "$nokv" ] || { echo "migrate-cluster.sh: $nokv is not executable (build first: make build)" >&2; exit 2; }
[ "$targets" -ge 1 ] && [ "$targets" -le 8 ] || { echo "migrate-cluster.sh: --targets must be 1..8" >&2; exit 2; }

mkdir -p "$art"
started=$(date +%s)
pids=()
stage="start"
status="failed"
stages_done=()
stop_all() {
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    pids=()
}
summary() {
    local elapsed=$(( $(date +%s) - started ))
    {
        echo "status:       $status"
        echo "last stage:   $stage"
        echo "workdir:      $workdir"
        echo "stores:       $(( targets + 1 )) (seed + $targets target(s)), base port $base"
        echo "stages done:  ${stages_done[*]:-none}"
        echo "elapsed:      ${elapsed}s"
        echo "logs:         $art/"
        [ "$status" = ok ] || echo "next:         read $art/$stage.log, fix the cause, rerun this script (every CLI step resumes)"
    } >"$art/summary.txt"
    python3 - "$art/summary.json" "$status" "$stage" "$workdir" "$targets" "$base" "$elapsed" "${stages_done[@]}" <<'PY'
import json, sys
out, status, stage, workdir, targets, base, elapsed, *done = sys.argv[1:]
json.dump({"status": status, "last_stage": stage, "workdir": workdir,
           "targets": int(targets), "base_port": int(base), "elapsed_s": int(elapsed),
           "stages_done": done}, open(out, "w"), indent=2, sort_keys=True)
PY
    cat "$art/summary.txt"
}
on_exit() {
    local rc=$?
    if [ -z "$keep" ] || [ "$status" != ok ]; then stop_all; fi
    summary
    exit "$rc"
}
trap on_exit EXIT
banner() {
    stage=$1
    printf '\n==== %s ====\n' "$1"
}
run() { # run STAGE CMD...: the CLI does the work; its output is the stage log
    banner "$1"; shift
    echo "+ $*" | tee "$art/$stage.log"
    "$@" 2>&1 | tee -a "$art/$stage.log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] || { echo "stage $stage failed (exit $rc)"; return "$rc"; }
    stages_done+=("$stage")
}
wait_resp() {
    for _ in $(seq 1 200); do
        [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.05
    done
    echo "nothing answers RESP on 127.0.0.1:$1 (see $art/)"; return 1
}

run plan "$nokv" migrate plan --workdir "$workdir"
run init "$nokv" migrate init --workdir "$workdir" --store 1 --region 1 --peer 101

banner serve-seed
"$nokv" serve --store-id 1 --workdir "$workdir" --addr "127.0.0.1:$base" \
    --redis-addr "127.0.0.1:$(( base + 100 ))" >"$art/store-1.log" 2>&1 &
pids+=($!)
wait_resp $(( base + 100 ))
stages_done+=(serve-seed)

banner start-targets
target_args=()
for i in $(seq 2 $(( targets + 1 ))); do
    d="$art/store-$i.workdir"
    mkdir -p "$d"
    "$nokv" serve --store-id "$i" --workdir "$d" --addr "127.0.0.1:$(( base + i - 1 ))" \
        --redis-addr "127.0.0.1:$(( base + 99 + i ))" >"$art/store-$i.log" 2>&1 &
    pids+=($!)
    wait_resp $(( base + 99 + i ))
    target_args+=(--target "$i:$(( 100 + i ))@127.0.0.1:$(( base + i - 1 ))")
done
stages_done+=(start-targets)

run expand "$nokv" migrate expand --addr "127.0.0.1:$base" --region 1 "${target_args[@]}" \
    --workdir "$workdir" --wait
leader=127.0.0.1:$base
if [ -n "$transfer" ]; then
    run transfer-leader "$nokv" migrate transfer-leader --addr "$leader" --region 1 --peer 102 \
        --peer-addr "127.0.0.1:$(( base + 1 ))" --workdir "$workdir"
    leader=127.0.0.1:$(( base + 1 ))
fi
if [ -n "$remove" ]; then
    run remove-peer "$nokv" migrate remove-peer --addr "$leader" --region 1 --peer 101 \
        --peer-addr "127.0.0.1:$base" --workdir "$workdir"
fi
run status "$nokv" migrate status --addr "$leader" --region 1
status=ok
stage=done
