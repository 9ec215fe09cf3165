/*
 * test_map_trim.c — releasing the segment mappings' pages from the process
 * (engine/segment.c, tally_engine_trim_maps and map_trim_bytes): after a
 * trim the segment file's pages no longer count in this process's resident
 * memory (/proc/self/smaps), reads after it return the same points, and
 * readers trim by themselves each map_trim_bytes of blocks read, so what
 * stays mapped is about that, however much is read.
 */
#include "test.h"

#include <tally/engine.h>

static const char RUN[] = "run-trim", KEY[] = "loss";
enum { N_POINTS = 400000 };

/* Resident kB of every mapping of a file under <dir>/seg/. */
static long seg_resident_kb(const char *dir)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    ASSERT(f != NULL);
    char line[2048], seg[1100];
    snprintf(seg, sizeof seg, "%s/seg/", dir);
    long kb = 0, v;
    int in_seg = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, ' ')) {
            in_seg = strstr(line, seg) != NULL;
            continue;
        }
        if (in_seg && sscanf(line, "Rss: %ld kB", &v) == 1)
            kb += v;
    }
    fclose(f);
    return kb;
}

static tally_engine *open_engine(const char *dir, uint64_t map_trim_bytes)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.durability = TALLY_DURABILITY_ASYNC;
    o.map_trim_bytes = map_trim_bytes;
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    return e;
}

static void write_points(tally_engine *e)
{
    int64_t *st = malloc(N_POINTS * 8), *ts = malloc(N_POINTS * 8);
    double *v = malloc(N_POINTS * 8);
    uint64_t x = 88172645463325252ull;
    for (uint32_t i = 0; i < N_POINTS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* incompressible values: bytes on disk */
        st[i] = i;
        ts[i] = 1000 + (int64_t)i * 7;
        v[i] = (double)(x >> 11);
    }
    tally_series_batch b = {RUN, strlen(RUN), KEY, strlen(KEY), N_POINTS, st, ts, v};
    ASSERT_OK(tally_engine_append(e, &b, 1));
    ASSERT_OK(tally_engine_checkpoint(e));
    free(st);
    free(ts);
    free(v);
}

/* Reads every point; returns the sum of their values (the same every time). */
static double read_all(tally_engine *e)
{
    tally_series_id id;
    ASSERT_OK(tally_engine_lookup(e, RUN, strlen(RUN), KEY, strlen(KEY), &id));
    tally_snapshot *s;
    ASSERT_OK(tally_snapshot_open(e, id, &s));
    ASSERT_GT(tally_snapshot_n_blocks(s), 10);
    tally_iter *it;
    ASSERT_OK(tally_iter_start(s, INT64_MIN, INT64_MAX, &it));
    tally_point buf[1024];
    size_t got, total = 0;
    double sum = 0;
    do {
        ASSERT_OK(tally_iter_next(it, buf, 1024, &got));
        for (size_t i = 0; i < got; i++)
            sum += buf[i].value;
        total += got;
    } while (got);
    ASSERT_EQ(total, N_POINTS);
    tally_iter_stop(it);
    tally_snapshot_close(s);
    return sum;
}

static void test_trim_by_hand(void)
{
    char dir[1024];
    test_tmpdir(dir, sizeof dir, "map-trim");
    tally_engine *e = open_engine(dir, 0); /* 0: readers never trim */
    write_points(e);
    double sum = read_all(e);
    long mapped = seg_resident_kb(dir);
    ASSERT_GT(mapped, 1024); /* > 1 MiB of segment pages mapped by the read */
    tally_engine_stats st;
    ASSERT_OK(tally_engine_stats_get(e, &st));
    ASSERT_EQ(st.map_trims, 0);

    ASSERT_OK(tally_engine_trim_maps(e));
    ASSERT_LE(seg_resident_kb(dir), 64);
    ASSERT_OK(tally_engine_stats_get(e, &st));
    ASSERT_EQ(st.map_trims, 1);

    /* The data is still there: the same points read back. */
    ASSERT_BITS_EQ(read_all(e), sum);
    ASSERT_GT(seg_resident_kb(dir), 1024);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

static void test_trim_by_readers(void)
{
    char dir[1024];
    test_tmpdir(dir, sizeof dir, "map-trim-auto");
    tally_engine *e = open_engine(dir, 256 << 10); /* every 256 KiB of blocks read */
    write_points(e);
    double sum = read_all(e);
    tally_engine_stats st;
    ASSERT_OK(tally_engine_stats_get(e, &st));
    ASSERT_GT(st.map_trims, 2);
    /* What stays mapped is what was read since the last trim: about the
     * budget, plus the block being read (blocks here are up to ~100 KiB). */
    ASSERT_LE(seg_resident_kb(dir), 256 + 512);
    for (int k = 0; k < 3; k++)
        ASSERT_BITS_EQ(read_all(e), sum);
    ASSERT_LE(seg_resident_kb(dir), 256 + 512);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

int main(void)
{
    TEST_RUN(test_trim_by_hand);
    TEST_RUN(test_trim_by_readers);
    return TEST_DONE();
}
