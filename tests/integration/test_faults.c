/*
 * test_faults.c — I/O failures through the engine's fault hook: ENOSPC and
 * EIO on WAL writes, short WAL writes, failed fsyncs, failed segment writes
 * while sealing, failed checkpoints, and faults that last across several
 * probes. For each: the failing append (or checkpoint) returns the error and
 * was not acknowledged; writes pause (TALLY_ERETRY) while reads keep
 * working; the engine then recovers by itself (its probe succeeds) or, for
 * the failures it cannot undo in place (a failed segment fsync), stays
 * stopped (TALLY_EPOISONED) until reopened. Either way, after a reopen
 * every acknowledged point is there exactly once, no point of a failed
 * batch is, and tally_verify finds nothing wrong.
 */
#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "tally/engine.h"
#include "test.h"

/* The hook runs on the engine's writer and sealer threads at once. */
typedef struct fault_plan {
    tally_io_op op;        /* operation to fail */
    atomic_int countdown;  /* let this many of that op pass first */
    int verdict;           /* -errno or a short length */
    atomic_int fired;      /* times the fault was injected */
    int repeat;            /* fail this many of that op in a row (the probe's too) */
} fault_plan;

static int fault_hook(void *ctx, tally_io_op op, size_t len)
{
    fault_plan *f = ctx;
    (void)len;
    if (op != f->op || atomic_load(&f->fired) >= f->repeat)
        return 0;
    if (atomic_fetch_sub(&f->countdown, 1) > 0)
        return 0;
    if (atomic_fetch_add(&f->fired, 1) >= f->repeat)
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

/* Appends one batch of 100 points continuing run r at step *next, retrying
 * TALLY_ERETRY for up to 20 s; returns the last result. */
static int append_retrying(tally_engine *e, const char *run, size_t *next)
{
    int64_t st[100], ts[100];
    double va[100];
    for (int i = 0; i < 100; i++) {
        st[i] = (int64_t)*next + i;
        ts[i] = st[i] * 7;
        va[i] = (double)st[i];
    }
    tally_series_batch batch = {run, strlen(run), "m", 1, 100, st, ts, va};
    int rc = TALLY_ERETRY;
    for (int tries = 0; tries < 2000 && rc == TALLY_ERETRY; tries++) {
        rc = tally_engine_append(e, &batch, 1);
        if (rc == TALLY_ERETRY) {
            struct timespec d = {0, 10 * 1000 * 1000};
            nanosleep(&d, NULL);
        }
    }
    if (rc == 0)
        *next += 100;
    return rc;
}

static void run_fault_n(tally_io_op op, int countdown, int verdict, int expect_err, int repeat,
                        int sticky)
{
    char dir[512];
    test_tmpdir(dir, sizeof dir, "faults");
    fault_plan plan;
    plan.op = op;
    atomic_init(&plan.countdown, countdown);
    plan.verdict = verdict;
    atomic_init(&plan.fired, 0);
    plan.repeat = repeat;
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
         * whichever call sees the failure, writes end paused. */
        if (err == 0)
            err = tally_engine_checkpoint(e);
    }
    ASSERT(atomic_load(&plan.fired) >= 1);
    ASSERT(err != 0);
    if (expect_err)
        ASSERT(err == expect_err || err == TALLY_EPOISONED || err == TALLY_ERETRY);
    tally_engine_stats st;
    ASSERT_OK(tally_engine_stats_get(e, &st));
    ASSERT_EQ(st.write_failures, 1);
    /* Reads work while writes are paused or stopped. */
    ASSERT_EQ(count_points(e, "r"), acked);
    if (sticky) {
        ASSERT_EQ(st.writes_paused, 2);
        int again;
        append_until_failure(e, "r2", 1, &again);
        ASSERT_EQ(again, TALLY_EPOISONED);
        ASSERT(tally_engine_close(e) != 0);
    } else {
        /* The engine probes and resumes by itself; the failed batch is not there. */
        ASSERT_OK(append_retrying(e, "r", &acked));
        ASSERT_OK(tally_engine_stats_get(e, &st));
        ASSERT_EQ(st.writes_paused, 0);
        ASSERT_EQ(st.write_recoveries, 1);
        ASSERT_EQ(st.poisoned, 0);
        ASSERT_EQ(atomic_load(&plan.fired), repeat);
        for (int i = 0; i < 20; i++)
            ASSERT_OK(append_retrying(e, "r", &acked));
        ASSERT_EQ(count_points(e, "r"), acked);
        /* A crash image now (every acknowledged record is fsynced): replay
         * must meet the failed batch's WAL bytes zeroed, not resurrect it,
         * and must find the new WAL file's sequence numbers continuing. */
        char cmd[2200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s-crash' && cp -a '%s' '%s-crash'", dir, dir, dir);
        ASSERT_EQ(system(cmd), 0);
        ASSERT_OK(tally_engine_checkpoint(e));
        ASSERT_OK(tally_engine_close(e));
        char crash[600];
        snprintf(crash, sizeof crash, "%s-crash", dir);
        o.fault_hook = NULL;
        ASSERT_OK(tally_engine_open(crash, &o, &e));
        ASSERT_EQ(count_points(e, "r"), acked);
        ASSERT_OK(tally_engine_close(e));
        uint64_t problems = 99;
        ASSERT_OK(tally_verify(crash, NULL, NULL, &problems));
        ASSERT_EQ(problems, 0);
        test_rmdir(crash);
    }

    /* Reopen without faults: every acknowledged point is back, once. */
    o.fault_hook = NULL;
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    size_t recovered = count_points(e, "r");
    ASSERT_GE(recovered, acked);
    if (sticky) {
        ASSERT_LE(recovered, acked + 100); /* a failed batch may have reached the disk */
        ASSERT_EQ(recovered % 100, 0);
    } else {
        ASSERT_EQ(recovered, acked); /* the probe zeroed the failed batch's bytes */
    }
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

static void run_fault(tally_io_op op, int countdown, int verdict, int expect_err)
{
    run_fault_n(op, countdown, verdict, expect_err, 1, op == TALLY_IO_OP_SEGMENT_SYNC);
}

static void test_wal_enospc(void) { run_fault(TALLY_IO_OP_WAL_WRITE, 30, -ENOSPC, -ENOSPC); }
static void test_wal_eio(void) { run_fault(TALLY_IO_OP_WAL_WRITE, 7, -EIO, -EIO); }
static void test_wal_short_write(void) { run_fault(TALLY_IO_OP_WAL_WRITE, 12, 100, -EIO); }
static void test_wal_erofs(void) { run_fault(TALLY_IO_OP_WAL_WRITE, 9, -EROFS, -EROFS); }
static void test_wal_fsync_fails(void) { run_fault(TALLY_IO_OP_WAL_SYNC, 20, -EIO, -EIO); }
static void test_segment_write_fails(void) { run_fault(TALLY_IO_OP_SEGMENT_WRITE, 10, -ENOSPC, -ENOSPC); }
static void test_segment_sync_fails(void) { run_fault(TALLY_IO_OP_SEGMENT_SYNC, 0, -EIO, 0); }
static void test_checkpoint_write_fails(void) { run_fault(TALLY_IO_OP_CHECKPOINT_WRITE, 0, -ENOSPC, 0); }
static void test_checkpoint_sync_fails(void) { run_fault(TALLY_IO_OP_CHECKPOINT_SYNC, 0, -EIO, 0); }

/* The disk stays full through several probes (each probe's zeroing or WAL
 * roll fails too): the backoff grows, writes stay paused, then resume. */
static void test_wal_enospc_lasting(void)
{
    run_fault_n(TALLY_IO_OP_WAL_WRITE, 30, -ENOSPC, -ENOSPC, 4, 0);
}
static void test_segment_enospc_lasting(void)
{
    run_fault_n(TALLY_IO_OP_SEGMENT_WRITE, 10, -ENOSPC, 0, 3, 0);
}

int main(void)
{
    TEST_RUN(test_wal_enospc);
    TEST_RUN(test_wal_eio);
    TEST_RUN(test_wal_short_write);
    TEST_RUN(test_wal_erofs);
    TEST_RUN(test_wal_fsync_fails);
    TEST_RUN(test_segment_write_fails);
    TEST_RUN(test_segment_sync_fails);
    TEST_RUN(test_checkpoint_write_fails);
    TEST_RUN(test_checkpoint_sync_fails);
    TEST_RUN(test_wal_enospc_lasting);
    TEST_RUN(test_segment_enospc_lasting);
    return TEST_DONE();
}
