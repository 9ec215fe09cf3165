/*
 * test_faults.c — I/O failures through the engine's fault hook: ENOSPC and
 * EIO on WAL writes, short WAL writes, failed fsyncs, failed segment writes
 * while sealing, failed checkpoints. For each: the failing append (or close)
 * returns the error, the engine is poisoned (later appends get
 * TALLY_EPOISONED) while reads keep working, and reopening the directory
 * recovers every acknowledged point and accepts new writes.
 */
#include <errno.h>
#include <stdatomic.h>

#include "tally/engine.h"
#include "test.h"

/* The hook runs on the engine's writer and sealer threads at once. */
typedef struct fault_plan {
    tally_io_op op;        /* operation to fail */
    atomic_int countdown;  /* let this many of that op pass first */
    int verdict;           /* -errno or a short length */
    atomic_int fired;      /* set once the fault was injected */
} fault_plan;

static int fault_hook(void *ctx, tally_io_op op, size_t len)
{
    fault_plan *f = ctx;
    (void)len;
    if (atomic_load(&f->fired) || op != f->op)
        return 0;
    if (atomic_fetch_sub(&f->countdown, 1) > 0)
        return 0;
    if (atomic_exchange(&f->fired, 1))
        return 0;
    return f->verdict;
}

static size_t count_points(tally_engine *e, const char *run)
{
    tally_series_id id;
    if (tally_engine_lookup(e, run, strlen(run), "m", 1, &id) != 0)
        return 0;
    tally_series_info info;
    ASSERT_OK(tally_engine_series_info(e, id, &info));
    /* Cross-check the summary against a full read. */
    tally_snapshot *s;
    ASSERT_OK(tally_snapshot_open(e, id, &s));
    tally_iter *it;
    ASSERT_OK(tally_iter_start(s, INT64_MIN, INT64_MAX, &it));
    static tally_point buf[4096];
    size_t total = 0, n;
    int64_t expect = 0;
    do {
        ASSERT_OK(tally_iter_next(it, buf, 4096, &n));
        for (size_t i = 0; i < n; i++)
            ASSERT_EQ(buf[i].step, expect++);
        total += n;
    } while (n);
    tally_iter_stop(it);
    tally_snapshot_close(s);
    ASSERT_EQ(total, info.n_points);
    return total;
}

/* Appends batches of 100 points to run until one fails; returns points acknowledged. */
static size_t append_until_failure(tally_engine *e, const char *run, int max_batches, int *err)
{
    size_t acked = 0;
    *err = 0;
    for (int b = 0; b < max_batches; b++) {
        int64_t st[100], ts[100];
        double va[100];
        for (int i = 0; i < 100; i++) {
            st[i] = (int64_t)acked + i;
            ts[i] = st[i] * 7;
            va[i] = (double)st[i];
        }
        tally_series_batch batch = {run, strlen(run), "m", 1, 100, st, ts, va};
        int rc = tally_engine_append(e, &batch, 1);
        if (rc) {
            *err = rc;
            return acked;
        }
        acked += 100;
    }
    return acked;
}

static void run_fault(tally_io_op op, int countdown, int verdict, int expect_err)
{
    char dir[512];
    test_tmpdir(dir, sizeof dir, "faults");
    fault_plan plan;
    plan.op = op;
    atomic_init(&plan.countdown, countdown);
    plan.verdict = verdict;
    atomic_init(&plan.fired, 0);
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.block_points = 128;
    o.wal_file_bytes = 64 << 10;
    o.checkpoint_wal_bytes = 32 << 10;
    o.fault_hook = fault_hook;
    o.fault_ctx = &plan;
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    int err;
    size_t acked = append_until_failure(e, "r", 400, &err);
    if (op == TALLY_IO_OP_CHECKPOINT_WRITE || op == TALLY_IO_OP_CHECKPOINT_SYNC ||
        op == TALLY_IO_OP_SEGMENT_SYNC) {
        /* Automatic checkpoints may run before the failing append returns:
         * whichever call sees the failure, the engine ends poisoned. */
        if (err == 0)
            err = tally_engine_checkpoint(e);
    }
    ASSERT(plan.fired);
    ASSERT(err != 0);
    if (expect_err)
        ASSERT(err == expect_err || err == TALLY_EPOISONED);
    /* Poisoned: appends refused, reads still work. */
    int again;
    append_until_failure(e, "r2", 1, &again);
    ASSERT_EQ(again, TALLY_EPOISONED);
    tally_engine_stats st;
    ASSERT_OK(tally_engine_stats_get(e, &st));
    ASSERT(st.poisoned != 0);
    ASSERT_GE(count_points(e, "r"), acked);
    ASSERT(tally_engine_close(e) != 0);

    /* Reopen without faults: every acknowledged point is back, and writes work. */
    o.fault_hook = NULL;
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    size_t recovered = count_points(e, "r");
    ASSERT_GE(recovered, acked);
    ASSERT_LE(recovered, acked + 100); /* the failed batch may have reached the disk */
    ASSERT_EQ(recovered % 100, 0);
    int64_t s1 = 0, t1 = 0;
    double v1 = 1;
    tally_series_batch b = {"new", 3, "m", 1, 1, &s1, &t1, &v1};
    ASSERT_OK(tally_engine_append(e, &b, 1));
    ASSERT_OK(tally_engine_close(e));
    uint64_t problems = 99;
    ASSERT_OK(tally_verify(dir, NULL, NULL, &problems));
    ASSERT_EQ(problems, 0);
    test_rmdir(dir);
}

static void test_wal_enospc(void) { run_fault(TALLY_IO_OP_WAL_WRITE, 30, -ENOSPC, -ENOSPC); }
static void test_wal_eio(void) { run_fault(TALLY_IO_OP_WAL_WRITE, 7, -EIO, -EIO); }
static void test_wal_short_write(void) { run_fault(TALLY_IO_OP_WAL_WRITE, 12, 100, -EIO); }
static void test_wal_fsync_fails(void) { run_fault(TALLY_IO_OP_WAL_SYNC, 20, -EIO, -EIO); }
static void test_segment_write_fails(void) { run_fault(TALLY_IO_OP_SEGMENT_WRITE, 10, -ENOSPC, -ENOSPC); }
static void test_segment_sync_fails(void) { run_fault(TALLY_IO_OP_SEGMENT_SYNC, 0, -EIO, 0); }
static void test_checkpoint_write_fails(void) { run_fault(TALLY_IO_OP_CHECKPOINT_WRITE, 0, -ENOSPC, 0); }
static void test_checkpoint_sync_fails(void) { run_fault(TALLY_IO_OP_CHECKPOINT_SYNC, 0, -EIO, 0); }

int main(void)
{
    TEST_RUN(test_wal_enospc);
    TEST_RUN(test_wal_eio);
    TEST_RUN(test_wal_short_write);
    TEST_RUN(test_wal_fsync_fails);
    TEST_RUN(test_segment_write_fails);
    TEST_RUN(test_segment_sync_fails);
    TEST_RUN(test_checkpoint_write_fails);
    TEST_RUN(test_checkpoint_sync_fails);
    return TEST_DONE();
}
