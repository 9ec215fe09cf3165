/*
 * tally.c — the `tally` command-line program: a thin layer over the engine
 * library. Subcommands: serve (the HTTP server, when built with server/),
 * verify, stat, version, help. Exit codes: 0 success, 1 the command found
 * problems or failed, 2 usage error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tally/engine.h"
#ifdef TALLY_HAVE_SERVER
#include "server.h"
#endif

#define TALLY_VERSION "0.1.0"

static void usage(FILE *f)
{
    fputs("usage: tally <command> [options]\n"
          "\n"
          "commands:\n"
#ifdef TALLY_HAVE_SERVER
          "  serve [opts] run the MLflow-compatible tracking server (serve --help)\n"
#endif
          "  verify DIR   check every checksum of a data directory; exit 1 on any problem\n"
          "  stat DIR     what a data directory holds\n"
          "  version      print the version\n"
          "  help         this text\n",
          f);
}

static void print_problem(void *ctx, const char *file, uint64_t offset, const char *message)
{
    (void)ctx;
    printf("%s @%" PRIu64 ": %s\n", file, offset, message);
}

static int cmd_verify(int argc, char **argv)
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

static int cmd_stat(int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "--help") == 0) {
        fputs("usage: tally stat DIR\n", argc == 1 ? stdout : stderr);
        return argc == 1 ? 0 : 2;
    }
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.read_only = 1;
    tally_engine *e;
    int rc = tally_engine_open(argv[0], &o, &e);
    if (rc) {
        fprintf(stderr, "tally stat: %s: %s\n", argv[0], tally_strerror(rc));
        return 1;
    }
    tally_engine_stats st;
    tally_engine_stats_get(e, &st);
    printf("series          %" PRIu64 "\n", st.n_series);
    printf("points          %" PRIu64 " (%" PRIu64 " in the WAL only)\n", st.n_points, st.n_head_points);
    printf("blocks          %" PRIu64 "\n", st.n_blocks);
    printf("segments        %" PRIu64 "\n", st.n_segments);
    printf("block bytes     %" PRIu64 "\n", st.segment_bytes);
    printf("WAL records     %" PRIu64 " replayed\n", st.recovered_records);
    if (st.n_points > st.n_head_points)
        printf("bytes/point     %.3f (sealed blocks)\n",
               (double)st.segment_bytes / (double)(st.n_points - st.n_head_points));
    tally_engine_close(e);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
#ifdef TALLY_HAVE_SERVER
    if (strcmp(cmd, "serve") == 0)
        return tally_serve_main(argc - 2, argv + 2);
#endif
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(argc - 2, argv + 2);
    if (strcmp(cmd, "stat") == 0)
        return cmd_stat(argc - 2, argv + 2);
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
