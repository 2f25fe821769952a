#!/bin/sh
# gen-man.sh NOKV NOKV_SIM OUTDIR VERSION - write the man pages nokv.1,
# nokv-migrate.1 and nokv-sim.1 from the binaries' own --help output, so a
# page can never say something the program's help does not (help2man-style;
# the help text in cli/ and sim/main.c is the single source).
set -eu
nokv=$1
sim=$2
out=$3
version=$4
mkdir -p "$out"

# roff-safe preformatted text: backslashes, leading dots/quotes, hyphens
esc() {
    sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

# block TITLE CMD...: a subsection holding CMD's help verbatim
block() {
    title=$1
    shift
    printf '.SS "%s"\n.nf\n' "$title"
    "$@" 2>&1 | esc
    printf '.fi\n'
}

header() { # NAME DESCRIPTION
    printf '.TH "%s" 1 "" "nokv %s" "NoKV manual"\n' "$(echo "$1" | tr a-z A-Z)" "$version"
    printf '.SH NAME\n%s \\- %s\n' "$1" "$2"
}

exit_status() {
    printf '.SH "EXIT STATUS"\n.nf\n%s\n.fi\n' "$1"
}

footer() {
    printf '.SH "SEE ALSO"\n%s\n' "$1"
    printf '.PP\nThe full documentation is in the docs/ folder of the source tree: quickstart.md,\noperations.md, migration.md, simulation.md, formats.md.\n'
}

{
    header nokv "the NoKV key-value store server and tools"
    printf '.SH SYNOPSIS\n.nf\n'
    "$nokv" --help 2>&1 | esc
    printf '.fi\n.SH COMMANDS\n'
    block "nokv serve" "$nokv" serve --help
    block "nokv serve \\-\\-store\\-id N" "$nokv" serve --store-id 1 --help
    block "nokv coordinator" "$nokv" coordinator --help
    block "nokv coordinator status" "$nokv" coordinator status --help
    block "nokv status" "$nokv" status --help
    block "nokv check" "$nokv" check --help
    block "nokv repair" "$nokv" repair --help
    printf '.SH VERSION\n.nf\n'
    "$nokv" --version 2>&1 | esc
    printf '.fi\n'
    exit_status "0  success (after SIGTERM/SIGINT: a graceful stop)
1  could not start, or stopped with an error
2  usage or configuration error (also --check-config on an invalid configuration)"
    printf '.SH SIGNALS\n.nf\n'
    printf 'SIGTERM, SIGINT  graceful stop; a second one exits at once (status 1)\n'
    printf 'SIGHUP           reopen the \\-\\-log\\-file (for logrotate)\n'
    printf 'SIGPIPE          ignored\n.fi\n'
    printf '.SH FILES\n.nf\n'
    printf 'WORKDIR/MODE.json   standalone, preparing, seeded or cluster\n'
    printf 'WORKDIR/LOCK        one owner per workdir\n'
    printf 'nokv.conf           \\-\\-config: key = value, flag names without \\-\\-\n.fi\n'
    footer "nokv-migrate(1), nokv-sim(1)"
} >"$out/nokv.1"

{
    header nokv-migrate "promote a standalone NoKV workdir to a cluster seed"
    printf '.SH SYNOPSIS\n.nf\n'
    "$nokv" migrate help 2>&1 | esc
    printf '.fi\n.SH COMMANDS\n'
    for c in plan init status report; do
        block "nokv migrate $c" "$nokv" migrate "$c" --help
    done
    footer "nokv(1)"
} >"$out/nokv-migrate.1"

{
    header nokv-sim "run NoKV scenarios under the deterministic simulator"
    printf '.SH SYNOPSIS\n.nf\n'
    "$sim" --help 2>&1 | esc
    printf '.fi\n'
    footer "nokv(1)"
} >"$out/nokv-sim.1"
