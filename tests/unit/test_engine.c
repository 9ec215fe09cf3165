/*
 * test_engine.c — the engine end to end on real files: append, read back in
 * (step, timestamp) order, reopen (checkpoint and WAL replay), out-of-order
 * and duplicate points, enumeration, the appender, all three durability
 * modes, the pwrite fallback, and options validation.
 */
#include <math.h>
#include <stdint.h>

#include "tally/engine.h"
#include "test.h"

static tally_engine *open_dir(const char *dir, tally_durability d, uint32_t block_points)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.durability = d;
    o.block_points = block_points;
    tally_engine *e = NULL;
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    return e;
}

/* Reads every point of (run, key) into pts (cap entries); returns the count. */
static size_t read_all(tally_engine *e, const char *run, const char *key, tally_point *pts, size_t cap)
{
    tally_series_id id;
    int rc = tally_engine_lookup(e, run, strlen(run), key, strlen(key), &id);
    if (rc == TALLY_ENOTFOUND)
        return 0;
    ASSERT_OK(rc);
    tally_snapshot *s;
    ASSERT_OK(tally_snapshot_open(e, id, &s));
    tally_iter *it;
    ASSERT_OK(tally_iter_start(s, INT64_MIN, INT64_MAX, &it));
    size_t total = 0, n;
    do {
        ASSERT_OK(tally_iter_next(it, pts + total, cap - total > 777 ? 777 : cap - total, &n));
        total += n;
    } while (n > 0 && total < cap);
    tally_iter_stop(it);
    tally_snapshot_close(s);
    return total;
}

static void append_series(tally_engine *e, const char *run, const char *key, const int64_t *steps,
                          const int64_t *ts, const double *vals, uint32_t n)
{
    tally_series_batch b = {run, strlen(run), key, strlen(key), n, steps, ts, vals};
    ASSERT_OK(tally_engine_append(e, &b, 1));
}

static void check_sequential(tally_engine *e, const char *run, const char *key, size_t n)
{
    tally_point *pts = malloc((n + 1) * sizeof *pts);
    size_t got = read_all(e, run, key, pts, n + 1);
    ASSERT_EQ(got, n);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(pts[i].step, (int64_t)i);
        ASSERT_EQ(pts[i].timestamp_ms, 1700000000000 + (int64_t)i * 10);
        ASSERT_BITS_EQ(pts[i].value, (double)i * 0.5);
    }
    free(pts);
}

static void test_round_trip_and_reopen(void)
{
    char dir[512];
    test_tmpdir(dir, sizeof dir, "engine-rt");
    const uint32_t n = 10000;
    int64_t *steps = malloc(n * 8), *ts = malloc(n * 8);
    double *vals = malloc(n * 8);
    for (uint32_t i = 0; i < n; i++) {
        steps[i] = i;
        ts[i] = 1700000000000 + (int64_t)i * 10;
        vals[i] = i * 0.5;
    }
    tally_engine *e = open_dir(dir, TALLY_DURABILITY_GROUP, 1024);
    /* In pieces, so some are sealed and some stay in the head. */
    for (uint32_t off = 0; off < n; off += 3000) {
        uint32_t k = n - off < 3000 ? n - off : 3000;
        append_series(e, "run-a", "loss", steps + off, ts + off, vals + off, k);
    }
    check_sequential(e, "run-a", "loss", n);
    tally_series_id id;
    ASSERT_OK(tally_engine_lookup(e, "run-a", 5, "loss", 4, &id));
    tally_series_info info;
    ASSERT_OK(tally_engine_series_info(e, id, &info));
    ASSERT_EQ(info.n_points, n);
    ASSERT_EQ(info.latest.step, n - 1);
    ASSERT_EQ(info.first.step, 0);
    ASSERT_BITS_EQ(info.max_value, (n - 1) * 0.5);
    ASSERT_OK(tally_engine_close(e));

    e = open_dir(dir, TALLY_DURABILITY_GROUP, 1024);
    /* Cache hints: any point index is taken (past the block's: ignored), a
     * block past the snapshot's is an error, and reads after them are exact. */
    tally_snapshot *s;
    ASSERT_OK(tally_engine_lookup(e, "run-a", 5, "loss", 4, &id));
    ASSERT_OK(tally_snapshot_open(e, id, &s));
    ASSERT_GT(tally_snapshot_n_blocks(s), 0);
    const uint32_t hint[] = {0, 127, 128, 500, 1023, 1024, UINT32_MAX};
    ASSERT_OK(tally_snapshot_block_prefetch_points(s, 0, hint, sizeof hint / sizeof hint[0]));
    ASSERT_OK(tally_snapshot_block_prefetch_chunks(s, 0, hint, sizeof hint / sizeof hint[0]));
    ASSERT_EQ(tally_snapshot_block_prefetch_points(s, tally_snapshot_n_blocks(s), hint, 1),
              TALLY_EINVAL);
    int64_t got_ts[2];
    double got_v[2];
    ASSERT_OK(tally_snapshot_block_decode(s, 0, 127, 2, NULL, got_ts, got_v));
    ASSERT_EQ(got_ts[0], 1700000000000 + 127 * 10);
    ASSERT_BITS_EQ(got_v[1], 128 * 0.5);
    tally_snapshot_close(s);
    check_sequential(e, "run-a", "loss", n);
    tally_engine_stats st;
    ASSERT_OK(tally_engine_stats_get(e, &st));
    ASSERT_EQ(st.n_points, n);
    ASSERT_EQ(st.recovered_records, 0);
    ASSERT_OK(tally_engine_close(e));
    free(steps);
    free(ts);
    free(vals);
    test_rmdir(dir);
}

static void test_out_of_order_and_duplicates(void)
{
    char dir[512];
    test_tmpdir(dir, sizeof dir, "engine-ooo");
    tally_engine *e = open_dir(dir, TALLY_DURABILITY_SYNC, 128);
    /* 0..299 in order, then a resume re-logging 150..349 with later timestamps,
     * then an exact duplicate of step 5, then the same step with another value. */
    int64_t st[300], ts[300];
    double va[300];
    for (int i = 0; i < 300; i++) {
        st[i] = i;
        ts[i] = 1000 + i;
        va[i] = i;
    }
    append_series(e, "r", "m", st, ts, va, 300);
    for (int i = 0; i < 200; i++) {
        st[i] = 150 + i;
        ts[i] = 5000 + i;
        va[i] = -i;
    }
    append_series(e, "r", "m", st, ts, va, 200);
    int64_t s5 = 5, t5 = 1005;
    double v5 = 5, v5b = 55;
    append_series(e, "r", "m", &s5, &t5, &v5, 1);
    append_series(e, "r", "m", &s5, &t5, &v5b, 1);
    for (int pass = 0; pass < 2; pass++) {
        tally_point pts[1000];
        size_t n = read_all(e, "r", "m", pts, 1000);
        ASSERT_EQ(n, 300 + 200 + 1); /* the exact duplicate collapsed */
        for (size_t i = 1; i < n; i++) {
            ASSERT(pts[i - 1].step < pts[i].step ||
                   (pts[i - 1].step == pts[i].step && pts[i - 1].timestamp_ms <= pts[i].timestamp_ms));
        }
        tally_series_id id;
        ASSERT_OK(tally_engine_lookup(e, "r", 1, "m", 1, &id));
        tally_series_info info;
        ASSERT_OK(tally_engine_series_info(e, id, &info));
        ASSERT_EQ(info.latest.step, 349);
        ASSERT_OK(tally_engine_close(e));
        e = open_dir(dir, TALLY_DURABILITY_SYNC, 128);
    }
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

static void test_special_values(void)
{
    char dir[512];
    test_tmpdir(dir, sizeof dir, "engine-nan");
    tally_engine *e = open_dir(dir, TALLY_DURABILITY_GROUP, 128);
    uint64_t nan_payload = 0x7ff8000000001234ull, snan = 0x7ff0000000000001ull;
    double vals[6];
    memcpy(&vals[0], &nan_payload, 8);
    memcpy(&vals[1], &snan, 8);
    vals[2] = -0.0;
    vals[3] = INFINITY;
    vals[4] = -INFINITY;
    vals[5] = 4.9e-324;
    int64_t st[6] = {0, 1, 2, 3, 4, 5}, ts[6] = {0, 0, 0, 0, 0, 0};
    append_series(e, "r", "x", st, ts, vals, 6);
    for (int pass = 0; pass < 2; pass++) {
        tally_point pts[8];
        ASSERT_EQ(read_all(e, "r", "x", pts, 8), 6);
        for (int i = 0; i < 6; i++)
            ASSERT_BITS_EQ(pts[i].value, vals[i]);
        ASSERT_OK(tally_engine_close(e));
        e = open_dir(dir, TALLY_DURABILITY_GROUP, 128);
    }
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

static void test_enumeration_and_appender(void)
{
    char dir[512];
    test_tmpdir(dir, sizeof dir, "engine-enum");
    tally_engine *e = open_dir(dir, TALLY_DURABILITY_ASYNC, 4096);
    tally_appender *a;
    ASSERT_OK(tally_appender_new(e, 1000, &a));
    char run[32], key[32];
    for (int r = 0; r < 20; r++)
        for (int k = 0; k < 5; k++)
            for (int i = 0; i < 100; i++) {
                snprintf(run, sizeof run, "run%02d", r);
                snprintf(key, sizeof key, "key%d", k);
                ASSERT_OK(tally_appender_add(a, run, strlen(run), key, strlen(key), i, 1000 + i, r * k));
            }
    ASSERT_OK(tally_appender_flush(a));
    tally_appender_free(a);
    ASSERT_OK(tally_engine_sync(e));
    tally_series_id ids[64];
    size_t n;
    ASSERT_OK(tally_engine_series_of_run(e, "run07", 5, ids, 64, &n));
    ASSERT_EQ(n, 5);
    ASSERT_OK(tally_engine_series_of_key(e, "key3", 4, ids, 64, &n));
    ASSERT_EQ(n, 20);
    ASSERT_OK(tally_engine_series_all(e, ids, 64, &n));
    ASSERT_EQ(n, 100);
    ASSERT_EQ(tally_engine_series_of_run(e, "nope", 4, ids, 64, &n), 0);
    ASSERT_EQ(n, 0);
    tally_point pts[200];
    ASSERT_EQ(read_all(e, "run19", "key4", pts, 200), 100);
    ASSERT_BITS_EQ(pts[99].value, 76.0);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

static void test_pwrite_backend_and_options(void)
{
    char dir[512];
    test_tmpdir(dir, sizeof dir, "engine-pwrite");
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.io_backend = TALLY_IO_PWRITE;
    o.block_points = 100; /* below the minimum */
    tally_engine *e = NULL;
    ASSERT_EQ(tally_engine_open(dir, &o, &e), TALLY_EINVAL);
    o.block_points = 256;
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    tally_engine_stats st;
    ASSERT_OK(tally_engine_stats_get(e, &st));
    ASSERT_EQ(st.io_uring, 0);
    /* A second open of a locked directory is refused. */
    tally_engine *e2 = NULL;
    ASSERT_EQ(tally_engine_open(dir, &o, &e2), TALLY_ELOCKED);
    int64_t s = 1, t = 2;
    double v = 3;
    tally_series_batch bad = {"r", 1, "", 0, 1, &s, &t, &v};
    ASSERT_EQ(tally_engine_append(e, &bad, 1), TALLY_EINVAL);
    append_series(e, "r", "k", &s, &t, &v, 1);
    ASSERT_OK(tally_engine_close(e));
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    tally_point p[2];
    ASSERT_EQ(read_all(e, "r", "k", p, 2), 1);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

int main(void)
{
    TEST_RUN(test_round_trip_and_reopen);
    TEST_RUN(test_out_of_order_and_duplicates);
    TEST_RUN(test_special_values);
    TEST_RUN(test_enumeration_and_appender);
    TEST_RUN(test_pwrite_backend_and_options);
    return TEST_DONE();
}
