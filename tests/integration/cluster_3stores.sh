#!/usr/bin/env bash
# cluster_3stores.sh NOKV_BINARY - three real `nokv serve --store-id` processes
# on 127.0.0.1 form a cluster (--initial-cluster) and keep every acknowledged
# write through leader crashes.
#
#  1. start stores 1..3 (fresh workdirs, free ports) and find the leader of
#     region 1 (the store that accepts a SET; the others say TRYAGAIN);
#  2. write 300 keys and 40 INCRs through redis-cli to the leader; every
#     store accepts writes and reads (followers relay to the leader);
#  3. SIGKILL the leader; a new leader must appear; write 300 more keys and
#     INCRs there; restart the killed store (it catches up from the log);
#  4. SIGKILL the second leader too (the restarted store is now needed for a
#     quorum); a third leader appears; every acknowledged key and the counter
#     must read back through it;
#  5. restart, then SIGTERM every store: each exits 0.
set -euo pipefail
nokv=$1
command -v redis-cli >/dev/null || { echo "redis-cli missing (tools/setup.sh installs redis-tools)"; exit 1; }
dir=$(mktemp -d /tmp/nokv-cluster.XXXXXX)
declare -a pid raft resp
cleanup() {
    for i in 1 2 3; do
        if [ -n "${pid[$i]:-}" ] && kill -0 "${pid[$i]}" 2>/dev/null; then kill -KILL "${pid[$i]}" 2>/dev/null || true; fi
    done
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
for i in 1 2 3; do raft[$i]=$(free_port); resp[$i]=$(free_port); done
initial="1=127.0.0.1:${raft[1]},2=127.0.0.1:${raft[2]},3=127.0.0.1:${raft[3]}"

start() {
    local i=$1
    "$nokv" serve --store-id "$i" --workdir "$dir/s$i" --addr "127.0.0.1:${raft[$i]}" \
        --redis-addr "127.0.0.1:${resp[$i]}" --initial-cluster "$initial" >>"$dir/s$i.log" 2>&1 &
    pid[$i]=$!
    for _ in $(seq 1 100); do
        if redis-cli -p "${resp[$i]}" ping 2>/dev/null | grep -qE 'PONG|TRYAGAIN'; then return 0; fi
        sleep 0.05
    done
    echo "store $i did not start"; cat "$dir/s$i.log"; exit 1
}

# The leader of region 1: the live store whose log last says "is now leader"
# and that accepts a SET (bounded wait: 15 s). Followers relay requests to
# the leader, so a SET alone does not tell who leads.
leader=""
find_leader() {
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
    echo "no leader within 15 s"; tail -20 "$dir"/s*.log; exit 1
}

write_batch() { # write_batch FROM TO: SET key:N value-N for N in FROM..TO, plus INCRs
    local from=$1 to=$2
    for n in $(seq "$from" "$to"); do printf 'SET key:%05d value-%05d\n' "$n" "$n"; done >"$dir/cmds"
    for _ in $(seq 1 20); do printf 'INCR counter\n'; done >>"$dir/cmds"
    redis-cli -p "${resp[$leader]}" --pipe <"$dir/cmds" >"$dir/pipe.out"
    local want=$((to - from + 1 + 20))
    grep -q "errors: 0, replies: $want" "$dir/pipe.out" || { cat "$dir/pipe.out"; exit 1; }
}

for i in 1 2 3; do start "$i"; done
find_leader
echo "leader: store $leader"
write_batch 1 300
[ "$(redis-cli -p "${resp[$leader]}" get counter)" = "20" ]
# Any store serves: a follower relays to the leader (writes and reads).
for i in 1 2 3; do
    [ "$(redis-cli -p "${resp[$i]}" set "via:$i" "s$i")" = "OK" ]
done
for i in 1 2 3; do
    [ "$(redis-cli -p "${resp[$i]}" get "via:$(( i % 3 + 1 ))")" = "s$(( i % 3 + 1 ))" ]
done

# 3. crash the leader: the two others elect a new one and keep writing.
first=$leader
kill -KILL "${pid[$first]}"; wait "${pid[$first]}" 2>/dev/null || true; pid[$first]=""
find_leader
[ "$leader" != "$first" ]
echo "after SIGKILL of store $first, leader: store $leader"
write_batch 301 600
start "$first"
sleep 1

# 4. crash the second leader: a quorum now needs the restarted store.
second=$leader
kill -KILL "${pid[$second]}"; wait "${pid[$second]}" 2>/dev/null || true; pid[$second]=""
find_leader
echo "after SIGKILL of store $second, leader: store $leader"
for n in $(seq 1 600); do printf 'GET key:%05d\n' "$n"; done >"$dir/gets"
redis-cli -p "${resp[$leader]}" <"$dir/gets" >"$dir/got"
for n in $(seq 1 600); do printf 'value-%05d\n' "$n"; done >"$dir/want"
diff -q "$dir/want" "$dir/got" >/dev/null || { echo "acknowledged writes missing"; diff "$dir/want" "$dir/got" | head; exit 1; }
[ "$(redis-cli -p "${resp[$leader]}" get counter)" = "40" ]
start "$second"

# 5. graceful stop of every store.
for i in 1 2 3; do kill -TERM "${pid[$i]}"; done
for i in 1 2 3; do
    if ! wait "${pid[$i]}"; then echo "store $i did not exit 0"; tail -20 "$dir/s$i.log"; exit 1; fi
    pid[$i]=""
done
echo "cluster_3stores: OK (600 keys and 40 INCRs survived two leader SIGKILLs)"
