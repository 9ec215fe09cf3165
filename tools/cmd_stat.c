/*
 * cmd_stat.c — `tally stat DIR`: what a data directory's metric store holds
 * (series, points, blocks, segments, bytes per point). Opens it read-only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "tally/engine.h"

int cmd_stat(int argc, char **argv)
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

