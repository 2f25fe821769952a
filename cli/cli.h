/* cli.h - shared declarations of the `nokv` subcommands. */
#ifndef NK_CLI_H
#define NK_CLI_H

#define NK_CLI_VERSION "0.1.0-dev"

#endif
