/* check.c - `nokv check --workdir D` (placeholder until the checker lands). */
#include <stdio.h>

#include "cli/cli.h"

int nk_cli_check(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "nokv check: not implemented yet\n");
    return 2;
}
