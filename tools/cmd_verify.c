/*
 * cmd_verify.c — `tally verify DIR`: walks a data directory's metric store,
 * checks every checksum and prints each problem with its file and offset.
 * Exit 1 if any problem was found.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "tally/engine.h"

static void print_problem(void *ctx, const char *file, uint64_t offset, const char *message)
{
    (void)ctx;
    printf("%s @%" PRIu64 ": %s\n", file, offset, message);
}

int cmd_verify(int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "--help") == 0) {
        fputs("usage: tally verify DIR\n", argc == 1 ? stdout : stderr);
        return argc == 1 ? 0 : 2;
    }
    uint64_t n = 0;
    int rc = tally_verify(argv[0], print_problem, NULL, &n);
    if (rc) {
        fprintf(stderr, "tally verify: %s: %s\n", argv[0], tally_strerror(rc));
        return 1;
    }
    printf("%" PRIu64 " problem%s\n", n, n == 1 ? "" : "s");
    return n ? 1 : 0;
}

