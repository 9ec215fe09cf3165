/*
 * tally.c — the `tally` command-line program: dispatches to the subcommands
 * listed in commands.h (one file each), plus `version` and `help`. Exit
 * codes: 0 success, 1 the command found problems or failed, 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#ifdef TALLY_HAVE_SERVER
#include "server.h"
#endif

#define TALLY_VERSION "0.1.0"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
#define TALLY_COMMAND_ROW_(name, fn, summary) {#name, fn, summary},
    TALLY_COMMANDS(TALLY_COMMAND_ROW_)
#undef TALLY_COMMAND_ROW_
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

#ifdef TALLY_HAVE_SERVER
int cmd_serve(int argc, char **argv)
{
    return tally_serve_main(argc, argv);
}
#endif

static void usage(FILE *f)
{
    fputs("usage: tally <command> [options]   (tally <command> --help for its options)\n"
          "\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-10s %s\n  %-10s %s\n", "version", "print the version", "help", "this text");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("tally %s\n", TALLY_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "tally: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
