#!/usr/bin/env bash
# stats.sh NOKV_BINARY - `nokv stats` on stopped workdirs: a standalone one
# after writes through `nokv serve`, and a cluster store's; text and --json,
# read-only (no byte of the workdir changes).
set -euo pipefail
nokv=$1
dir=$(mktemp -d /tmp/nokv-stats.XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
digest() { (cd "$1" && find . -type f ! -name LOCK -print0 | sort -z | xargs -0 sha256sum); }

p=$(port)
"$nokv" serve --workdir "$dir/db" --addr "127.0.0.1:$p" >"$dir/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do redis-cli -p "$p" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
for n in $(seq 1 500); do echo "SET k$n v$n"; done | redis-cli -p "$p" --pipe >/dev/null
kill -TERM "$pid"; wait "$pid"; pid=""
before=$(digest "$dir/db")
"$nokv" stats --workdir "$dir/db" | grep -q "^mode         standalone"
"$nokv" stats --workdir "$dir/db" --json >"$dir/s.json"
python3 - "$dir/s.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["mode"] == "standalone", s
assert s["engine"]["present"] is True, s
assert s["localmeta"]["present"] is False, s
PY
[ "$before" = "$(digest "$dir/db")" ] || { echo "nokv stats changed the workdir"; exit 1; }

# a cluster store's workdir: mode cluster, LOCALMETA with region 1, a raft log
r=$(port); c=$(port)
"$nokv" serve --store-id 1 --workdir "$dir/store" --addr "127.0.0.1:$r" --redis-addr "127.0.0.1:$c" \
    --initial-cluster "1=127.0.0.1:$r" >"$dir/store.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ "$(redis-cli -p "$c" set a b 2>/dev/null)" = OK ] && break; sleep 0.05; done
kill -TERM "$pid"; wait "$pid"; pid=""
"$nokv" stats --workdir "$dir/store" --json >"$dir/c.json"
python3 - "$dir/c.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["mode"] == "cluster", s
lm = s["localmeta"]
assert lm["present"] and lm["store_id"] == 1, s
assert [r["region_id"] for r in lm["regions"]] == [1], s
assert lm["regions"][0]["peers"][0]["role"] == "voter", s
assert s["raft_log"]["segments"] >= 1, s
PY
"$nokv" stats --workdir "$dir/nope" 2>/dev/null && { echo "a missing workdir must fail"; exit 1; }
echo "stats: OK"
