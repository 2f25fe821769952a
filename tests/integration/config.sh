#!/usr/bin/env bash
# config.sh NOKV_BINARY - `--config FILE` and `--check-config`.
#
#  1. --check-config: a valid file exits 0; an unknown key, a bad value, a
#     malformed line exit 2 with the file and line in the message; a key of
#     the other serve mode is unknown there;
#  2. precedence flags > file > defaults: a server started with a file that
#     sets workdir, addr and metrics-addr uses them, and a flag on the
#     command line overrides the file's addr;
#  3. the coordinator reads its own keys.
set -euo pipefail
nokv=$1
command -v redis-cli >/dev/null || { echo "redis-cli missing"; exit 1; }
dir=$(mktemp -d /tmp/nokv-config.XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
expect() { # WANT_RC GREP -- CMD...: run, check exit status and stderr+stdout
    local want=$1 pat=$2; shift 3
    local rc=0
    "$@" >"$dir/out" 2>&1 || rc=$?
    [ "$rc" -eq "$want" ] || { echo "exit $rc, want $want: $*"; cat "$dir/out"; exit 1; }
    grep -q -- "$pat" "$dir/out" || { echo "output lacks '$pat': $*"; cat "$dir/out"; exit 1; }
}
p1=$(free_port); p2=$(free_port); mp=$(free_port)
cat >"$dir/ok.conf" <<CONF
# a standalone server
workdir = $dir/db
addr = 127.0.0.1:$p1
metrics-addr = "127.0.0.1:$mp"
sync = group
log-level = warn
CONF
printf 'workdir = x\nsnyc = always\n' >"$dir/typo.conf"
printf 'cache-mb = 0\n' >"$dir/badval.conf"
printf 'addr = 127.0.0.1:1\njust words\n' >"$dir/syntax.conf"
printf 'store-id = 3\nsync = always\n' >"$dir/mixed.conf"
printf 'addr = 1\naddr = 2\n' >"$dir/twice.conf"

# 1. validation
expect 0 "configuration is valid (flags and $dir/ok.conf)" -- "$nokv" serve --config "$dir/ok.conf" --check-config
expect 2 "typo.conf:2: unknown key 'snyc'" -- "$nokv" serve --config "$dir/typo.conf" --check-config
expect 2 "badval.conf:1: cache-mb wants a size in MiB" -- "$nokv" serve --config "$dir/badval.conf" --check-config
expect 2 "syntax.conf:2: expected \`key = value\`" -- "$nokv" serve --config "$dir/syntax.conf" --check-config
expect 2 "mixed.conf:2: unknown key 'sync'" -- "$nokv" serve --config "$dir/mixed.conf" --check-config
expect 2 "twice.conf:2: 'addr' is set twice" -- "$nokv" serve --config "$dir/twice.conf" --check-config
expect 2 "cannot read --config" -- "$nokv" serve --config "$dir/missing.conf"
expect 2 "--sync must be always" -- "$nokv" serve --check-config --sync sometimes
expect 0 "configuration is valid (flags)" -- "$nokv" serve --check-config --sync none
expect 2 "shutdown-timeout wants seconds" -- "$nokv" serve --check-config --shutdown-timeout 0
[ ! -e "$dir/db" ] || { echo "--check-config must not create the workdir"; exit 1; }

# 2. precedence: the file gives workdir and metrics-addr, the flag overrides addr
"$nokv" serve --config "$dir/ok.conf" --addr "127.0.0.1:$p2" >"$dir/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    redis-cli -p "$p2" ping 2>/dev/null | grep -q PONG && break
    sleep 0.05
done
[ "$(redis-cli -p "$p2" set k v)" = OK ]
! redis-cli -p "$p1" ping >/dev/null 2>&1 || { echo "the file's addr should be overridden"; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mp/ready")" = 200 ]
[ -d "$dir/db" ]
# log-level = warn from the file: no INFO lines
! grep -q ' INFO ' "$dir/serve.log" || { echo "log-level from the file ignored"; cat "$dir/serve.log"; exit 1; }
kill -TERM "$pid"; wait "$pid"; pid=""

# 3. coordinator keys
printf 'workdir = %s/coord\nid-start = 100\n' "$dir" >"$dir/coord.conf"
expect 0 "configuration is valid" -- "$nokv" coordinator --config "$dir/coord.conf" --check-config
printf 'workdir = %s/coord\nid-start = -1\n' "$dir" >"$dir/coord-bad.conf"
expect 2 "coord-bad.conf:2: id-start wants a positive integer" -- "$nokv" coordinator --config "$dir/coord-bad.conf" --check-config
echo "config: ok"
