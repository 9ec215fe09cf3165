/*
 * test_stress.c — many producers and readers on one engine at once (also
 * run under ThreadSanitizer, label tsan). Producers append interleaved
 * batches to shared and private series while readers take snapshots,
 * iterate them and check that what they see is ordered, duplicate-free,
 * never shrinks between snapshots, and only holds points that were
 * appended. At the end every point is there exactly once, and again after
 * a reopen. Small blocks and WAL files force sealing, rolls and automatic
 * checkpoints during the run.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "tally/engine.h"
#include "test.h"

#define N_PRODUCERS 4
#define N_READERS 2
#define N_BATCHES 150
#define PER_BATCH 40

static tally_engine *eng;
static atomic_int producers_done;

/* Producer p owns steps p, p + N_PRODUCERS, ... of the shared series and all of its own. */
static void *producer(void *arg)
{
    int p = (int)(intptr_t)arg;
    char own[16];
    snprintf(own, sizeof own, "own%d", p);
    for (int b = 0; b < N_BATCHES; b++) {
        int64_t st[PER_BATCH], ts[PER_BATCH];
        double va[PER_BATCH];
        for (int i = 0; i < PER_BATCH; i++) {
            int64_t k = (int64_t)b * PER_BATCH + i;
            st[i] = k * N_PRODUCERS + p;
            ts[i] = st[i];
            va[i] = (double)st[i];
        }
        tally_series_batch batch[2] = {
            {"shared", 6, "loss", 4, PER_BATCH, st, ts, va},
            {own, strlen(own), "loss", 4, PER_BATCH, st, ts, va},
        };
        ASSERT_OK(tally_engine_append(eng, batch, 2));
    }
    atomic_fetch_add(&producers_done, 1);
    return NULL;
}

static size_t read_checked(const char *run)
{
    tally_series_id id;
    if (tally_engine_lookup(eng, run, strlen(run), "loss", 4, &id) != 0)
        return 0;
    tally_snapshot *s;
    ASSERT_OK(tally_snapshot_open(eng, id, &s));
    tally_iter *it;
    ASSERT_OK(tally_iter_start(s, INT64_MIN, INT64_MAX, &it));
    tally_point buf[512];
    size_t total = 0, n;
    int64_t prev = -1;
    do {
        ASSERT_OK(tally_iter_next(it, buf, 512, &n));
        for (size_t i = 0; i < n; i++) {
            ASSERT_GT(buf[i].step, prev); /* ordered, no duplicates */
            ASSERT_BITS_EQ(buf[i].value, (double)buf[i].step);
            prev = buf[i].step;
        }
        total += n;
    } while (n);
    tally_iter_stop(it);
    tally_snapshot_close(s);
    return total;
}

static void *reader(void *arg)
{
    (void)arg;
    size_t last_shared = 0;
    while (atomic_load(&producers_done) < N_PRODUCERS) {
        size_t n = read_checked("shared");
        ASSERT_GE(n, last_shared);
        last_shared = n;
        read_checked("own1");
        tally_engine_stats st;
        ASSERT_OK(tally_engine_stats_get(eng, &st));
    }
    return NULL;
}

static void test_producers_and_readers(void)
{
    char dir[512];
    test_tmpdir(dir, sizeof dir, "stress");
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.block_points = 128;
    o.wal_file_bytes = 64 << 10;
    o.checkpoint_wal_bytes = 24 << 10;
    ASSERT_OK(tally_engine_open(dir, &o, &eng));
    pthread_t th[N_PRODUCERS + N_READERS];
    for (int i = 0; i < N_PRODUCERS; i++)
        pthread_create(&th[i], NULL, producer, (void *)(intptr_t)i);
    for (int i = 0; i < N_READERS; i++)
        pthread_create(&th[N_PRODUCERS + i], NULL, reader, NULL);
    for (int i = 0; i < N_PRODUCERS + N_READERS; i++)
        pthread_join(th[i], NULL);
    size_t expect = (size_t)N_BATCHES * PER_BATCH;
    for (int pass = 0; pass < 2; pass++) {
        ASSERT_EQ(read_checked("shared"), expect * N_PRODUCERS);
        for (int p = 0; p < N_PRODUCERS; p++) {
            char own[16];
            snprintf(own, sizeof own, "own%d", p);
            ASSERT_EQ(read_checked(own), expect);
        }
        tally_engine_stats st;
        ASSERT_OK(tally_engine_stats_get(eng, &st));
        ASSERT_EQ(st.n_points, expect * N_PRODUCERS * 2);
        if (pass == 0)
            ASSERT_GT(st.checkpoints, 0);
        ASSERT_OK(tally_engine_close(eng));
        if (pass == 0)
            ASSERT_OK(tally_engine_open(dir, &o, &eng));
    }
    test_rmdir(dir);
}

int main(void)
{
    TEST_RUN(test_producers_and_readers);
    return TEST_DONE();
}
