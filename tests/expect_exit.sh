#!/usr/bin/env bash
# expect_exit.sh CODE [--grep TEXT] -- COMMAND...
# Run COMMAND; pass only if it exits with CODE (and, with --grep, its output
# contains TEXT). Used to prove that checkers and error paths can fail.
set -u
want=$1
shift
pattern=""
if [ "${1:-}" = "--grep" ]; then
    pattern=$2
    shift 2
fi
[ "${1:-}" = "--" ] && shift
out=$("$@" 2>&1)
got=$?
echo "$out" | tail -n 15
if [ "$got" != "$want" ]; then
    echo "expect_exit: wanted exit $want, got $got from: $*" >&2
    exit 1
fi
if [ -n "$pattern" ] && ! grep -qF -- "$pattern" <<<"$out"; then
    echo "expect_exit: output lacks '$pattern'" >&2
    exit 1
fi
echo "expect_exit: exit $got as expected"
