#!/usr/bin/env bash
# migrate_local.sh NOKV_BINARY - the local half of a migration on real
# processes and real files (127.0.0.1 only):
#  1. fill a standalone workdir through `nokv serve` + redis-cli; plan while
#     the server runs is blocked (exit 3, LOCK held); stop it (SIGTERM);
#  2. plan: eligible (exit 0), text and JSON, and not one byte of the
#     workdir changed (sha256 of every file and the list of every entry);
#  3. init crashes at a stage failpoint (a real _exit): the workdir is
#     preparing, standalone serve is refused naming the mode, the stage and
#     the resume command; status shows the resume hint;
#  4. rerun init: resumes and ends seeded; the seed snapshot shares the
#     engine's tables (same inode); serve is still refused, now "seeded";
#  5. rerun init with the same ids: exit 0, no byte changed; other ids: 3;
#  6. status/report --json say seeded and ready_for_serve;
#  7. the seed serves as store 1 of a cluster (`nokv serve --store-id 1`):
#     every migrated key reads back through RESP, a new write commits, and
#     the workdir is in cluster mode afterwards.
set -euo pipefail
nokv=$1
command -v redis-cli >/dev/null || { echo "redis-cli missing (tools/setup.sh installs redis-tools)"; exit 1; }
dir=$(mktemp -d /tmp/nokv-mig.XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
W=$dir/db
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

digest() { # every entry and every file's bytes, in a stable order
    (cd "$W" && find . -print | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}
digest_owned() { # the same, but LOCK's bytes are its owner's pid: an owner rewrites them
    digest | grep -v '  ./LOCK$'
}
expect() { # expect CODE CMD... : run, keep stdout+stderr in $dir/out, check the exit code
    local want=$1; shift
    set +e; "$@" >"$dir/out" 2>&1; local got=$?; set -e
    if [ "$got" != "$want" ]; then
        echo "FAIL: wanted exit $want, got $got from: $*"; cat "$dir/out"; exit 1
    fi
}
has() { grep -qF -- "$1" "$dir/out" || { echo "FAIL: output lacks: $1"; cat "$dir/out"; exit 1; }; }

# 1. a standalone server with data
"$nokv" serve --workdir "$W" --addr "127.0.0.1:$port" --sync always >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.05
done
for i in $(seq 1 3000); do printf 'SET key:%05d value-%05d\n' "$i" "$i"; done >"$dir/cmds"
redis-cli -p "$port" --pipe <"$dir/cmds" >"$dir/pipe.out"
grep -q "errors: 0, replies: 3000" "$dir/pipe.out" || { cat "$dir/pipe.out"; exit 1; }
expect 3 "$nokv" migrate plan --workdir "$W"
has "LOCK is held"
kill -TERM "$pid"
wait "$pid"
pid=""

# 2. plan is read-only
digest >"$dir/before"
expect 0 "$nokv" migrate plan --workdir "$W"
has "Eligible             true"
has "Next                 nokv migrate init --workdir $W"
expect 0 "$nokv" migrate plan --workdir "$W" --json
python3 - "$dir/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["schema"] == "nokv.migrate.plan/v1" and r["eligible"] is True, r
assert r["mode"] == "standalone" and r["local_catalog_regions"] == 0, r
PY
digest >"$dir/after"
cmp -s "$dir/before" "$dir/after" || { echo "FAIL: plan changed the workdir"; diff "$dir/before" "$dir/after"; exit 1; }
expect 2 "$nokv" migrate plan
has "--workdir is required"
expect 0 "$nokv" migrate init --help
has "usage: nokv migrate init"

# 3. an init that dies after persisting the local catalog
expect 137 env NOKV_FAILPOINTS=migrate.init.local-catalog-persisted=crash \
    "$nokv" migrate init --workdir "$W" --store 1 --region 1 --peer 101
expect 1 "$nokv" serve --workdir "$W" --addr "127.0.0.1:$port"
has 'is in mode "preparing" (stage local-catalog-persisted)'
has "nokv migrate init --workdir $W --store 1 --region 1 --peer 101"
expect 0 "$nokv" migrate status --workdir "$W" --json
python3 - "$dir/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["mode"] == "preparing", r
assert r["checkpoint"]["stage"] == "local-catalog-persisted", r
assert r["resume_hint"] == "re-run nokv migrate init to continue after local catalog persistence", r
PY
expect 3 "$nokv" migrate init --workdir "$W" --store 1 --region 2 --peer 101
has "preparing state region mismatch want=1 got=2"

# 4. resume
expect 0 "$nokv" migrate init --workdir "$W" --store 1 --region 1 --peer 101
has "Mode                 seeded"
has "resumed after stage local-catalog-persisted"
for f in "$W"/seed-snapshot/*.sst; do
    [ "$(stat -c %i "$f")" = "$(stat -c %i "$W/$(basename "$f")")" ] || { echo "FAIL: $f is not a hard link"; exit 1; }
done
ls "$W"/seed-snapshot/*.sst >/dev/null
expect 1 "$nokv" serve --workdir "$W" --addr "127.0.0.1:$port"
has 'is in mode "seeded" (stage seeded-finalized'

# 5. idempotent rerun (init owns the workdir, so LOCK holds its pid); other ids refused
digest_owned >"$dir/before"
expect 0 "$nokv" migrate init --workdir "$W" --store 1 --region 1 --peer 101
has "already seeded with these ids; nothing changed"
expect 3 "$nokv" migrate init --workdir "$W" --store 2 --region 1 --peer 101
has "already seeded for store=1 region=1 peer=101"
digest_owned >"$dir/after"
cmp -s "$dir/before" "$dir/after" || { echo "FAIL: a rerun changed the workdir"; diff "$dir/before" "$dir/after"; exit 1; }

# 6. the local view
expect 0 "$nokv" migrate report --workdir "$W" --json
python3 - "$dir/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["mode"] == "seeded" and r["stage"] == "seed-ready", r
assert r["ready_for_serve"] is True and r["ready_for_init"] is False, r
assert r["status"]["seed_snapshot_present"] is True, r
assert r["status"]["checkpoint"]["stage"] == "seeded-finalized", r
PY
expect 3 "$nokv" migrate plan --workdir "$W"
has 'already in "seeded" mode'

# 7. the promoted workdir serves through the distributed path
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"$nokv" serve --store-id 1 --workdir "$W" --addr "127.0.0.1:$rport" --redis-addr "127.0.0.1:$port" \
    >"$dir/cluster.log" 2>&1 &
pid=$!
ok=""
for _ in $(seq 1 200); do
    if [ "$(redis-cli -p "$port" get key:00001 2>/dev/null)" = "value-00001" ]; then ok=1; break; fi
    sleep 0.05
done
[ -n "$ok" ] || { echo "FAIL: the seed did not serve key:00001"; cat "$dir/cluster.log"; exit 1; }
for i in $(seq 1 3000); do printf 'GET key:%05d\n' "$i"; done | redis-cli -p "$port" >"$dir/got"
for i in $(seq 1 3000); do printf 'value-%05d\n' "$i"; done >"$dir/want"
cmp -s "$dir/got" "$dir/want" || { echo "FAIL: migrated keys differ after promotion"; exit 1; }
[ "$(redis-cli -p "$port" set after-migration yes)" = "OK" ]
[ "$(redis-cli -p "$port" get after-migration)" = "yes" ]
kill -TERM "$pid"
wait "$pid"
pid=""
expect 0 "$nokv" migrate status --workdir "$W"
has "Mode                 cluster"
echo "migrate_local: ok"
