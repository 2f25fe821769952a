#!/usr/bin/env bash
# cluster_coordinator.sh NOKV_BINARY - a coordinator and three real
# `nokv serve --store-id N --coordinator-addr C` stores on 127.0.0.1: the
# data plane never waits on the coordinator.
#
#  1. start the coordinator and stores 1..3 (fresh workdirs, free ports);
#     write 200 keys through redis-cli to the leader of region 1;
#  2. SIGKILL the coordinator; 200 more writes succeed;
#  3. while it is down, SIGKILL all three stores and start them again: they
#     recover region 1 from LOCALMETA, elect a leader and serve every
#     acknowledged key plus 200 new writes;
#  4. a fourth store with an empty workdir starts (it joins: no region yet);
#  5. restart the coordinator: the queued reports are delivered and
#     `nokv status` shows stores 1..4 alive and region 1 led by the store
#     that accepts writes, with 3 voters; -o json parses;
#  6. SIGTERM everything: each exits 0.
set -euo pipefail
nokv=$1
command -v redis-cli >/dev/null || { echo "redis-cli missing (tools/setup.sh installs redis-tools)"; exit 1; }
dir=$(mktemp -d /tmp/nokv-ccoord.XXXXXX)
declare -a pid raft resp
cpid=""
cleanup() {
    for i in 1 2 3 4; do
        if [ -n "${pid[$i]:-}" ] && kill -0 "${pid[$i]}" 2>/dev/null; then kill -KILL "${pid[$i]}" 2>/dev/null || true; fi
    done
    if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then kill -KILL "$cpid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
coord="127.0.0.1:$(free_port)"
for i in 1 2 3 4; do raft[$i]=$(free_port); resp[$i]=$(free_port); done
initial="1=127.0.0.1:${raft[1]},2=127.0.0.1:${raft[2]},3=127.0.0.1:${raft[3]}"

start_coord() {
    "$nokv" coordinator --workdir "$dir/coord" --addr "$coord" >>"$dir/coord.log" 2>&1 &
    cpid=$!
}

start() {
    local i=$1
    local extra=()
    if [ "$i" -le 3 ]; then extra=(--initial-cluster "$initial"); fi
    "$nokv" serve --store-id "$i" --workdir "$dir/s$i" --addr "127.0.0.1:${raft[$i]}" \
        --redis-addr "127.0.0.1:${resp[$i]}" --coordinator-addr "$coord" "${extra[@]}" \
        >>"$dir/s$i.log" 2>&1 &
    pid[$i]=$!
    for _ in $(seq 1 100); do
        if redis-cli -p "${resp[$i]}" ping 2>/dev/null | grep -qE 'PONG|TRYAGAIN'; then return 0; fi
        sleep 0.05
    done
    echo "store $i did not start"; cat "$dir/s$i.log"; exit 1
}

leader=""
find_leader() { # the live store whose log last says "is now leader" and that takes a SET (15 s)
    leader=""
    for _ in $(seq 1 150); do
        for i in 1 2 3; do
            if [ -n "${pid[$i]:-}" ] && kill -0 "${pid[$i]}" 2>/dev/null &&
                [ "$(grep -oE 'is now (leader|follower)' "$dir/s$i.log" | tail -1)" = "is now leader" ] &&
                [ "$(redis-cli -p "${resp[$i]}" set probe x 2>/dev/null)" = "OK" ]; then
                leader=$i
                return 0
            fi
        done
        sleep 0.1
    done
    echo "no leader within 15 s"; tail -n 20 "$dir"/s*.log; exit 1
}

write_batch() { # write_batch FROM TO
    local from=$1 to=$2
    for n in $(seq "$from" "$to"); do printf 'SET key:%05d value-%05d\n' "$n" "$n"; done >"$dir/cmds"
    redis-cli -p "${resp[$leader]}" --pipe <"$dir/cmds" >"$dir/pipe.out"
    grep -q "errors: 0, replies: $((to - from + 1))" "$dir/pipe.out" || { cat "$dir/pipe.out"; exit 1; }
}

check_keys() { # check_keys TO: key:1..TO read back through the leader
    local to=$1
    for n in $(seq 1 "$to"); do printf 'GET key:%05d\n' "$n"; done >"$dir/gets"
    redis-cli -p "${resp[$leader]}" <"$dir/gets" >"$dir/got"
    for n in $(seq 1 "$to"); do printf 'value-%05d\n' "$n"; done >"$dir/want"
    diff -q "$dir/want" "$dir/got" >/dev/null || { echo "acknowledged writes missing"; diff "$dir/want" "$dir/got" | head; exit 1; }
}

# 1.
start_coord
for i in 1 2 3; do start "$i"; done
find_leader
echo "leader: store $leader"
write_batch 1 200

# 2. the coordinator dies; the data plane does not notice.
kill -KILL "$cpid"; wait "$cpid" 2>/dev/null || true; cpid=""
write_batch 201 400
echo "coordinator SIGKILLed; 200 more writes acknowledged"

# 3. every store restarts while the coordinator is down.
for i in 1 2 3; do kill -KILL "${pid[$i]}"; wait "${pid[$i]}" 2>/dev/null || true; pid[$i]=""; done
for i in 1 2 3; do start "$i"; done
find_leader
check_keys 400
write_batch 401 600
grep -q "unreachable" "$dir/s$leader.log" || { echo "store $leader did not log the outage"; tail "$dir/s$leader.log"; exit 1; }
echo "stores restarted without a coordinator; store $leader leads and serves 600 keys"

# 4. a new store joins with an empty workdir.
start 4

# 5. the coordinator returns: stores re-register, queued reports go out.
start_coord
ok=""
for _ in $(seq 1 100); do
    find_leader # leadership may move while the coordinator is away
    if "$nokv" status --addr "$coord" -o json >"$dir/status.json" 2>"$dir/status.err" &&
        python3 - "$dir/status.json" "$leader" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
leader = int(sys.argv[2])
alive = sorted(s["store_id"] for s in st["stores"] if s["alive"])
regions = {r["region_id"]: r for r in st["regions"]}
r1 = regions.get(1)
ok = (alive == [1, 2, 3, 4] and r1 is not None and r1["leader_store_id"] == leader
      and sorted(p["store_id"] for p in r1["peers"] if p["role"] == "voter") == [1, 2, 3])
sys.exit(0 if ok else 1)
PY
    then ok=1; break; fi
    sleep 0.1
done
if [ -z "$ok" ]; then
    echo "nokv status never showed 4 live stores and region 1 led by store $leader:"
    cat "$dir/status.json" "$dir/status.err" 2>/dev/null; tail -n 5 "$dir"/s*.log "$dir/coord.log"; exit 1
fi
"$nokv" status --addr "$coord"
grep -q "accepted by the coordinator" "$dir/s$leader.log" || { echo "no delivered report logged"; exit 1; }
# store 1..3 resolve store 4 through the coordinator when they need it; here
# at least the coordinator hands its address out:
grep -q "127.0.0.1:${raft[4]}" "$dir/status.json"

# 6.
for i in 1 2 3 4; do kill -TERM "${pid[$i]}"; done
kill -TERM "$cpid"
for i in 1 2 3 4; do
    if ! wait "${pid[$i]}"; then echo "store $i did not exit 0"; tail -20 "$dir/s$i.log"; exit 1; fi
    pid[$i]=""
done
wait "$cpid" || { echo "coordinator did not exit 0"; tail "$dir/coord.log"; exit 1; }
cpid=""
echo "cluster_coordinator: OK (coordinator SIGKILL, all stores restarted without it, 600 keys served, status after its return)"
