#!/usr/bin/env bash
# serve_redis_py.sh NOKV_BINARY - run serve_redis_py.py (redis-py against a
# real `nokv serve`) with a Python that has redis-py: Debian's python3 with
# python3-redis (tools/setup.sh installs it) first, then whatever python3
# is on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for py in /usr/bin/python3 python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import redis' 2>/dev/null; then
        exec "$py" "$here/serve_redis_py.py" "$1"
    fi
done
echo "serve_redis_py: no python3 with redis-py; install python3-redis (make setup)" >&2
exit 1
