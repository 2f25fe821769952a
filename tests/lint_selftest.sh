#!/usr/bin/env bash
# lint_selftest.sh - prove the determinism lint can fail.
# Copies nokv/ to a temp dir, plants one forbidden call at a time, and
# requires the lint to reject each; the unmodified copy must pass.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
lint="$root/tools/lint/determinism.sh"
tmp=$(mktemp -d /tmp/nokv-lint.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cp -r "$root/nokv" "$tmp/nokv"

if ! "$lint" "$tmp/nokv" >/dev/null 2>&1; then
    echo "lint_selftest: the clean tree should pass the lint" >&2
    "$lint" "$tmp/nokv"
    exit 1
fi

plant() {
    local what=$1 code=$2
    local f="$tmp/nokv/planted_violation.c"
    printf '%s\n' "$code" >"$f"
    if "$lint" "$tmp/nokv" >/dev/null 2>&1; then
        echo "lint_selftest: planted $what was NOT caught" >&2
        exit 1
    fi
    echo "lint_selftest: planted $what caught"
    rm -f "$f"
}

plant "time(NULL)" 'long f(void) { return (long)time(NULL); }'
plant "rand()" 'int f(void) { return rand(); }'
plant "fsync()" 'int f(int fd) { return fsync(fd); }'
plant "pthread_create" 'int f(void) { return pthread_create(0, 0, 0, 0); }'
plant "getenv" 'const char *f(void) { return getenv("HOME"); }'
plant "#include <unistd.h>" '#include <unistd.h>'

# Mentions in comments and strings are not calls.
printf '%s\n' '/* time(NULL) is forbidden here */ static const char *s = "rand()";' \
    >"$tmp/nokv/planted_comment.c"
if ! "$lint" "$tmp/nokv" >/dev/null 2>&1; then
    echo "lint_selftest: a comment or string mentioning time() must not fail the lint" >&2
    exit 1
fi
echo "lint_selftest: comments and strings ignored"
