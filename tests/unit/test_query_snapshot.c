/*
 * test_query_snapshot.c — queries stay consistent while a writer appends.
 *
 * A writer thread logs two series continuously (steps in shuffled batches,
 * timestamp and value functions of the step, so any point can be checked on
 * its own) and publishes, after each append returns, the highest step it
 * has fully logged. Reader threads meanwhile page through the history in
 * both orders and run MLflow's sampled query and the summaries:
 *  - every page is strictly ordered, without duplicates;
 *  - every point is one the writer logged (its timestamp and value match);
 *  - a query that started after an append returned sees its points.
 * Built under ThreadSanitizer in CI (label tsan): also a data-race check of
 * the query layer's snapshot use and of mlflow_sampling's worker threads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "point_order.h"
#include "tally/query.h"
#include "test.h"

#define BATCH 64          /* points per append */
#define MAX_BATCHES 1000  /* at most 64k points per series */
#define PAUSE_US 500      /* between appends, so readers overlap many of them */
#define RUN_SECONDS 1.5
#define N_READERS 2

static tally_engine *g_e;
static tally_series_id g_ids[2];
static atomic_llong g_acked = -1; /* steps 0..g_acked of both series are logged */
static atomic_int g_stop;

static int64_t ts_of(int64_t step) { return 1600000000000 + step * 7; }
static double value_of(int64_t step, int series) { return (double)step * 0.25 + series; }

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *writer(void *arg)
{
    (void)arg;
    uint64_t rng = 12345;
    int64_t st[2][BATCH], ts[2][BATCH];
    double va[2][BATCH];
    double end = now_s() + RUN_SECONDS;
    for (int b = 0; b < MAX_BATCHES && now_s() < end; b++) {
        for (int s = 0; s < 2; s++) {
            for (int i = 0; i < BATCH; i++)
                st[s][i] = (int64_t)b * BATCH + i;
            for (int i = BATCH - 1; i > 0; i--) { /* shuffled within the batch */
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                int j = (int)(rng % (uint64_t)(i + 1));
                int64_t t = st[s][i];
                st[s][i] = st[s][j];
                st[s][j] = t;
            }
            for (int i = 0; i < BATCH; i++) {
                ts[s][i] = ts_of(st[s][i]);
                va[s][i] = value_of(st[s][i], s);
            }
        }
        tally_series_batch sb[2] = {
            {"snap-run-0", 10, "loss", 4, BATCH, st[0], ts[0], va[0]},
            {"snap-run-1", 10, "loss", 4, BATCH, st[1], ts[1], va[1]},
        };
        ASSERT_OK(tally_engine_append(g_e, sb, 2));
        atomic_store(&g_acked, (long long)(b + 1) * BATCH - 1);
        usleep(PAUSE_US);
    }
    atomic_store(&g_stop, 1);
    return NULL;
}

static void check_point(const tally_point *p, int series)
{
    ASSERT_EQ(p->timestamp_ms, ts_of(p->step));
    ASSERT_BITS_EQ(p->value, value_of(p->step, series));
}

/* Pages through one series' whole history; checks order and content, and
 * that steps 0..acked (logged before the walk began) are all there. */
static void walk_history(int series, tally_history_order order, size_t ps)
{
    long long acked = atomic_load(&g_acked);
    tally_point page[512];
    char token[TALLY_PAGE_TOKEN_MAX] = "";
    tally_point last;
    int have_last = 0;
    long long n_upto_acked = 0;
    for (;;) {
        char next[TALLY_PAGE_TOKEN_MAX];
        tally_history_req req = {g_ids[series], order, INT64_MIN, INT64_MAX, token, ps};
        size_t got;
        ASSERT_OK(tally_history_page(g_e, &req, page, ps, &got, next));
        for (size_t i = 0; i < got; i++) {
            check_point(&page[i], series);
            if (have_last) {
                int c = order == TALLY_HISTORY_BY_STEP ? tally__cmp_engine(&last, &page[i])
                                                       : tally__cmp_time(&last, &page[i]);
                ASSERT_LT(c, 0);
            }
            last = page[i];
            have_last = 1;
            if (page[i].step <= acked)
                n_upto_acked++;
        }
        if (!next[0])
            break;
        strcpy(token, next);
    }
    ASSERT_EQ(n_upto_acked, acked + 1);
}

static void check_sampled(void)
{
    long long acked = atomic_load(&g_acked);
    tally_run_points out[2];
    ASSERT_OK(tally_mlflow_bulk_interval(g_e, g_ids, 2, 0, 0, 0, 50, out));
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < out[s].n_points; i++) {
            check_point(&out[s].points[i], s);
            if (i)
                ASSERT_LT(tally__cmp_step_numeric(&out[s].points[i - 1], &out[s].points[i]), 0);
        }
        if (acked >= 0) {
            ASSERT_GT(out[s].n_points, 0);
            ASSERT_EQ(out[s].points[0].step, 0); /* the run's least step is always kept */
            ASSERT_GE(out[s].points[out[s].n_points - 1].step, acked);
        }
        tally_run_points_free(&out[s]);
    }
    tally_metric_summary sum[2];
    ASSERT_OK(tally_metric_summaries(g_e, g_ids, 2, sum));
    for (int s = 0; s < 2; s++)
        if (acked >= 0) {
            ASSERT_GE((long long)sum[s].count, acked + 1);
            ASSERT_GE(sum[s].latest.step, acked);
        }
}

static void *reader(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 977 + 1;
    int rounds = 0;
    while (!atomic_load(&g_stop) || rounds < 2) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t ps = 64 + (size_t)(rng >> 33) % 449;
        int series = (int)((rng >> 20) & 1);
        walk_history(series, (rng >> 21) & 1 ? TALLY_HISTORY_BY_TIME : TALLY_HISTORY_BY_STEP, ps);
        check_sampled();
        rounds++;
    }
    return NULL;
}

static void test_concurrent_queries(void)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "query-snapshot");
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.durability = TALLY_DURABILITY_ASYNC;
    o.block_points = 128;
    ASSERT_OK(tally_engine_open(dir, &o, &g_e));
    g_ids[0] = tally_series_id_of("snap-run-0", 10, "loss", 4);
    g_ids[1] = tally_series_id_of("snap-run-1", 10, "loss", 4);
    pthread_t w, r[N_READERS];
    ASSERT_EQ(pthread_create(&w, NULL, writer, NULL), 0);
    for (uintptr_t i = 0; i < N_READERS; i++)
        ASSERT_EQ(pthread_create(&r[i], NULL, reader, (void *)i), 0);
    ASSERT_EQ(pthread_join(w, NULL), 0);
    for (int i = 0; i < N_READERS; i++)
        ASSERT_EQ(pthread_join(r[i], NULL), 0);
    /* Quiet now: one last full check of everything. */
    walk_history(0, TALLY_HISTORY_BY_STEP, 500);
    walk_history(1, TALLY_HISTORY_BY_TIME, 500);
    check_sampled();
    fprintf(stderr, "logged %lld points per series\n", atomic_load(&g_acked) + 1);
    ASSERT_OK(tally_engine_close(g_e));
    test_rmdir(dir);
}

int main(void)
{
    TEST_RUN(test_concurrent_queries);
    return TEST_DONE();
}
