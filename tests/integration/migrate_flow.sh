#!/usr/bin/env bash
# migrate_flow.sh NOKV_BINARY - the whole migration on real processes and
# real files (127.0.0.1 only):
#  1. fill a standalone workdir with 100,000 keys through `nokv serve` +
#     redis-cli --pipe, stop it;
#  2. plan, init (store 1, region 1, peer 101), serve it as store 1;
#  3. start two empty stores 2 and 3 (they wait for an import);
#  4. expand to 2:102 and 3:103 (snapshot stream, install before publish,
#     learner, catch-up, promote, verify), with a write in between so the
#     learners also catch up through the raft log; store 3 first crashes at
#     snapshot.install.before_publish: after its restart the interrupted
#     install is rolled back, the leader lists no ghost, and the rerun of
#     the same expand resumes and succeeds; then the CLI dies right after
#     AddPeer and store 3 loses its workdir (the leader's heartbeats make
#     it create an empty replica): the rerun removes the ghost learner, has
#     the empty replica tombstoned and installs a fresh snapshot over it;
#  5. transfer leadership to peer 102, remove the seed peer 101 (a remove
#     of the leader is refused first); the seed store tombstones its stale
#     replica and stays dehosted across a restart;
#  6. read every key back through the new leader with redis-cli and compare;
#     the cluster-aware status agrees.
set -euo pipefail
nokv=$1
command -v redis-cli >/dev/null || { echo "redis-cli missing (tools/setup.sh installs redis-tools)"; exit 1; }
dir=$(mktemp -d /tmp/nokv-flow.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
    done
    if [ "${KEEP:-}" = "" ]; then rm -rf "$dir"; else echo "kept $dir"; fi
}
trap cleanup EXIT
N=${N:-100000}
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
expect() { # expect CODE CMD... : run, keep stdout+stderr in $dir/out, check the exit code
    local want=$1; shift
    set +e; "$@" >"$dir/out" 2>&1; local got=$?; set -e
    if [ "$got" != "$want" ]; then
        echo "FAIL: wanted exit $want, got $got from: $*"; cat "$dir/out"
        for l in "$dir"/s*.log; do echo "== $l"; tail -20 "$l"; done
        exit 1
    fi
}
has() { grep -qF -- "$1" "$dir/out" || { echo "FAIL: output lacks: $1"; cat "$dir/out"; exit 1; }; }
wait_ping() {
    for _ in $(seq 1 200); do
        redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
    done
    echo "FAIL: nothing answers on $1"; exit 1
}
start=$(date +%s)

# 1. a standalone server with N keys
W1=$dir/s1
rp1=$(freeport)
"$nokv" serve --workdir "$W1" --addr "127.0.0.1:$rp1" >"$dir/standalone.log" 2>&1 &
pids+=($!)
wait_ping "$rp1"
python3 - "$N" >"$dir/cmds" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout
for i in range(n):
    k = b"key:%06d" % i
    v = b"value-%06d-%s" % (i, b"x" * (i % 40))
    out.write("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k.decode(), len(v), v.decode()))
PY
redis-cli -p "$rp1" --pipe <"$dir/cmds" >"$dir/pipe.out"
grep -q "errors: 0, replies: $N" "$dir/pipe.out" || { cat "$dir/pipe.out"; exit 1; }
kill -TERM "${pids[0]}"
wait "${pids[0]}"
pids=()

# 2. plan, init, serve as store 1
expect 0 "$nokv" migrate plan --workdir "$W1"
expect 0 "$nokv" migrate init --workdir "$W1" --store 1 --region 1 --peer 101
a1=127.0.0.1:$(freeport); a2=127.0.0.1:$(freeport); a3=127.0.0.1:$(freeport)
r1=$(freeport); r2=$(freeport); r3=$(freeport)
"$nokv" serve --store-id 1 --workdir "$W1" --addr "$a1" --redis-addr "127.0.0.1:$r1" >"$dir/s1.log" 2>&1 &
pids+=($!)
# 3. two empty stores
mkdir -p "$dir/s2" "$dir/s3"
"$nokv" serve --store-id 2 --workdir "$dir/s2" --addr "$a2" --redis-addr "127.0.0.1:$r2" >"$dir/s2.log" 2>&1 &
pids+=($!)
NOKV_FAILPOINTS=snapshot.install.before_publish=crash \
    "$nokv" serve --store-id 3 --workdir "$dir/s3" --addr "$a3" --redis-addr "127.0.0.1:$r3" >"$dir/s3-crash.log" 2>&1 &
s3=$!
wait_ping "$r1"; wait_ping "$r2"; wait_ping "$r3"
ok=""
for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$r1" get key:000001 2>/dev/null)" = "value-000001-x" ] && { ok=1; break; }
    sleep 0.05
done
[ -n "$ok" ] || { echo "FAIL: the seed does not serve"; cat "$dir/s1.log"; exit 1; }
expect 0 "$nokv" migrate status --addr "$a2" --region 1 --json
python3 - "$dir/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["known"] is False and r["hosted"] is False and r["applied_index"] == 0, r
PY

# 4. expand; a write lands between the two targets' snapshots
expect 2 "$nokv" migrate expand --addr "$a1" --region 1 --target bogus
expect 0 "$nokv" migrate expand --addr "$a1" --region 1 --target "2:102@$a2" --workdir "$W1" --poll-interval 100ms
has "snapshot-stream"
has "bytes (100.0%)"
[ "$(redis-cli -p "$r1" set between-targets yes)" = "OK" ]
# store 3 dies between its synced raft state and publishing the region
expect 4 "$nokv" migrate expand --addr "$a1" --region 1 --target "3:103@$a3" --poll-interval 100ms --timeout 10s
set +e; wait "$s3"; s3rc=$?; set -e
[ "$s3rc" = 137 ] || { echo "FAIL: store 3 should have crashed at the failpoint (exit $s3rc)"; cat "$dir/s3-crash.log"; exit 1; }
grep -q "snapshot.install.before_publish" "$dir/s3-crash.log" || { cat "$dir/s3-crash.log"; exit 1; }
"$nokv" serve --store-id 3 --workdir "$dir/s3" --addr "$a3" --redis-addr "127.0.0.1:$r3" >"$dir/s3.log" 2>&1 &
pids+=($!)
wait_ping "$r3"
for _ in $(seq 1 100); do grep -q "rolled back" "$dir/s3.log" && break; sleep 0.05; done
grep -q "interrupted before publish; rolling it back" "$dir/s3.log" || { echo "FAIL: no rollback"; cat "$dir/s3.log"; exit 1; }
expect 0 "$nokv" migrate status --addr "$a3" --region 1 --json
python3 - "$dir/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["known"] is False and r["hosted"] is False, r
PY
expect 0 "$nokv" migrate status --addr "$a1" --region 1 --json
python3 - "$dir/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert sorted(p["peer_id"] for p in r["membership"]) == [101, 102], r
PY
# the CLI dies right after AddPeer, then store 3 loses its workdir: the
# leader lists learner 103 that nobody hosts (a ghost) until the rerun
expect 137 env NOKV_FAILPOINTS=migrate.expand.after_add_learner=crash \
    "$nokv" migrate expand --addr "$a1" --region 1 --target "3:103@$a3" --poll-interval 100ms
kill -KILL "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true
rm -rf "$dir/s3"; mkdir -p "$dir/s3"
"$nokv" serve --store-id 3 --workdir "$dir/s3" --addr "$a3" --redis-addr "127.0.0.1:$r3" >"$dir/s3.log" 2>&1 &
pids[2]=$!
wait_ping "$r3"
expect 0 "$nokv" migrate status --addr "$a1" --region 1 --json
python3 - "$dir/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = {p["peer_id"]: p["role"] for p in r["membership"]}
assert m == {101: "voter", 102: "voter", 103: "learner"}, r
PY
# the leader's heartbeats make store 3 create an empty replica for the ghost
ok=""
for _ in $(seq 1 60); do
    "$nokv" migrate status --addr "$a3" --region 1 --json >"$dir/out" 2>&1 || true
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["hosted"] and r["applied_index"] == 0 else 1)' "$dir/out" && { ok=1; break; }
    sleep 0.05
done
[ -n "$ok" ] || { echo "FAIL: store 3 did not create the empty replica"; cat "$dir/out"; exit 1; }
expect 0 "$nokv" migrate expand --addr "$a1" --region 1 --target "2:102@$a2" --target "3:103@$a3" --workdir "$W1" --wait --poll-interval 100ms
has "expanded to 2 target(s)"
has "remove-ghost-peer"
has "drop-empty-replica"
grep -q '"stage":"expand-target-hosted"' "$W1/MIGRATION_PROGRESS.json" || { cat "$W1/MIGRATION_PROGRESS.json"; exit 1; }
grep -q '"completed_targets":2' "$W1/MIGRATION_PROGRESS.json" || { cat "$W1/MIGRATION_PROGRESS.json"; exit 1; }
expect 0 "$nokv" migrate status --addr "$a1" --region 1 --json
python3 - "$dir/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = {p["peer_id"]: (p["store_id"], p["role"]) for p in r["membership"]}
assert m == {101: (1, "voter"), 102: (2, "voter"), 103: (3, "voter")}, r
assert r["role"] == "leader" and r["leader_peer_id"] == 101, r
PY
for a in "$a2" "$a3"; do
    expect 0 "$nokv" migrate status --addr "$a" --region 1 --json
    python3 - "$dir/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["hosted"] is True and len(r["membership"]) == 3 and r["leader_peer_id"] == 101, r
PY
done

# 5. leadership to 102, then the seed peer goes
expect 3 "$nokv" migrate remove-peer --addr "$a1" --region 1 --peer 101
has "transfer-leader"
expect 0 "$nokv" migrate transfer-leader --addr "$a1" --region 1 --peer 102 --peer-addr "$a2" --workdir "$W1"
has "is led by peer 102"
expect 0 "$nokv" migrate remove-peer --addr "$a2" --region 1 --peer 101 --peer-addr "$a1" --workdir "$W1"
has "peer 101 removed"
expect 0 "$nokv" migrate status --addr "$a2" --region 1 --json
python3 - "$dir/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = {p["peer_id"]: p["role"] for p in r["membership"]}
assert m == {102: "voter", 103: "voter"} and r["role"] == "leader", r
PY

# the removed seed no longer hosts the region (tombstone), also after a restart
expect 0 "$nokv" migrate status --addr "$a1" --region 1 --json
python3 - "$dir/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["known"] is True and r["hosted"] is False, r
PY
kill -TERM "${pids[0]}"; wait "${pids[0]}" || true
"$nokv" serve --store-id 1 --workdir "$W1" --addr "$a1" --redis-addr "127.0.0.1:$r1" >"$dir/s1-restart.log" 2>&1 &
pids[0]=$!
wait_ping "$r1"
sleep 0.5
expect 0 "$nokv" migrate status --addr "$a1" --region 1 --json
python3 - "$dir/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["known"] is True and r["hosted"] is False, r
PY

# 6. every key through the new leader
[ "$(redis-cli -p "$r2" get between-targets)" = "yes" ]
python3 - "$N" >"$dir/gets" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print("GET key:%06d" % i)
PY
python3 - "$N" >"$dir/want" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print("value-%06d-%s" % (i, "x" * (i % 40)))
PY
redis-cli -p "$r2" <"$dir/gets" >"$dir/got"
cmp -s "$dir/got" "$dir/want" || { echo "FAIL: keys read back through the new leader differ"; diff "$dir/got" "$dir/want" | head; exit 1; }
[ "$(redis-cli -p "$r2" set after-expand ok)" = "OK" ]
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()
echo "migrate_flow: ok ($N keys, $(( $(date +%s) - start )) s)"
