#!/usr/bin/env bash
# install.sh BUILD_DIR SOURCE_DIR - `cmake --install` of a finished build.
#
#  1. into a temp DESTDIR (prefix /usr): binaries, libraries, the public
#     header, nokv.pc, the three man pages and the example unit are where
#     GNUInstallDirs says; pkg-config reads the installed nokv.pc;
#  2. into a temp --prefix: the installed nokv and nokv-sim run (--version
#     shows version, commit and formats); the man pages render without
#     warnings (when groff is present); the embedded example compiles
#     against the installed header and libraries with `pkg-config --cflags
#     --libs nokv` alone, and runs.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d /tmp/nokv-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
libdir=${libdir:-lib}

# 1. DESTDIR
DESTDIR="$tmp/dest" cmake --install "$build" --prefix /usr >"$tmp/install.log"
d="$tmp/dest/usr"
for f in bin/nokv bin/nokv-sim "$libdir/libnokv.a" \
         "$libdir/pkgconfig/nokv.pc" include/nokv/nokv.h share/man/man1/nokv.1 \
         share/man/man1/nokv-migrate.1 share/man/man1/nokv-sim.1 \
         share/doc/nokv/examples/nokv.service share/doc/nokv/examples/nokv.conf \
         share/doc/nokv/quickstart.md share/doc/nokv/operations.md; do
    [ -e "$d/$f" ] || { echo "not installed: $f"; find "$tmp/dest" -type f; exit 1; }
done
[ -x "$d/bin/nokv" ] && [ -x "$d/bin/nokv-sim" ]
export PKG_CONFIG_PATH="$d/$libdir/pkgconfig"
pkg-config --exists nokv
pkg-config --cflags nokv >/dev/null
[ "$(pkg-config --variable=includedir nokv)" = /usr/include ]
[ "$(pkg-config --variable=libdir nokv)" = "/usr/$libdir" ]
[ "$(pkg-config --modversion nokv)" = "$("$build/nokv" --version | head -1 | cut -d' ' -f2)" ]
grep -q '^ExecStart=/usr/bin/nokv serve --config /etc/nokv/nokv.conf$' "$d/share/doc/nokv/examples/nokv.service"
grep -q '^Type=notify$' "$d/share/doc/nokv/examples/nokv.service"

# 2. --prefix, and run what was installed
p="$tmp/prefix"
cmake --install "$build" --prefix "$p" >"$tmp/install2.log"
"$p/bin/nokv" --version >"$tmp/version"
head -1 "$tmp/version" | grep -Eq '^nokv [0-9]+\.[0-9]+\.[0-9]+'
grep -q '^commit ' "$tmp/version"
grep -q '^on-disk formats: sst [0-9]' "$tmp/version"
"$p/bin/nokv-sim" --help | grep -q 'usage: nokv-sim'
# the example config validates with the installed binary
"$p/bin/nokv" serve --config "$p/share/doc/nokv/examples/nokv.conf" --check-config | grep -q valid
# man pages say what --help says
grep -q 'metrics\\-addr' "$p/share/man/man1/nokv.1"
if command -v groff >/dev/null; then
    for m in nokv nokv-migrate nokv-sim; do
        groff -man -Tutf8 -ww -z "$p/share/man/man1/$m.1" 2>"$tmp/groff.err"
        [ ! -s "$tmp/groff.err" ] || { echo "$m.1:"; cat "$tmp/groff.err"; exit 1; }
    done
fi
export PKG_CONFIG_PATH="$p/$libdir/pkgconfig"
cc=${CC:-cc}
# shellcheck disable=SC2046
"$cc" -std=c11 -o "$tmp/hello" "$src/tools/examples/hello.c" $(pkg-config --cflags --libs nokv)
(cd "$tmp" && ./hello "$tmp/hello-db" >"$tmp/hello.out")
[ -s "$tmp/hello.out" ]
echo "install: ok ($(find "$tmp/dest" -type f | wc -l) files)"
