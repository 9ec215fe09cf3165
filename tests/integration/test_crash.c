/*
 * test_crash.c — kill -9 at random moments. A child process appends batches
 * from two producer threads and records each acknowledged batch in memory
 * shared with the parent; the parent SIGKILLs it after a random delay,
 * reopens the data directory and checks that
 *   (1) every acknowledged batch is there, whole, with its exact values;
 *   (2) every batch is all or nothing (unacknowledged ones may be there);
 *   (3) the reopened engine takes new writes and closes cleanly.
 * Run in sync, group and async modes (SIGKILL keeps the page cache, so async
 * must also lose nothing here), with small WAL files and frequent
 * checkpoints so kills land in rolls and checkpoints too.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "tally/engine.h"
#include "test.h"

#define N_PRODUCERS 2
#define MAX_BATCHES 200000
#define BATCH_SERIES 3
#define BATCH_POINTS 50

/* Batch b of producer p: series k gets steps b*BATCH_POINTS + j. */
typedef struct shared {
    _Atomic uint32_t acked[N_PRODUCERS][MAX_BATCHES]; /* 1 once acknowledged */
    _Atomic uint32_t n_started[N_PRODUCERS];          /* batches attempted */
} shared;

static shared *sh;
static tally_engine *child_engine;
static int child_round; /* which kill of this directory: part of the series names */

#define MAX_ROUNDS 8
/* What the parent saw of each earlier round: it must stay exactly so. */
static size_t seen_total[MAX_ROUNDS][N_PRODUCERS][BATCH_SERIES];

static double value_of(int p, uint32_t b, int k, int j) { return p * 1e9 + b * 1000.0 + k * 100 + j + 0.25; }

static void *producer(void *arg)
{
    int p = (int)(intptr_t)arg;
    char runs[BATCH_SERIES][32];
    int64_t steps[BATCH_SERIES][BATCH_POINTS], ts[BATCH_SERIES][BATCH_POINTS];
    double vals[BATCH_SERIES][BATCH_POINTS];
    for (uint32_t b = 0; b < MAX_BATCHES; b++) {
        tally_series_batch batch[BATCH_SERIES];
        for (int k = 0; k < BATCH_SERIES; k++) {
            snprintf(runs[k], sizeof runs[k], "g%d-p%d-r%d", child_round, p, k);
            for (int j = 0; j < BATCH_POINTS; j++) {
                steps[k][j] = (int64_t)b * BATCH_POINTS + j;
                ts[k][j] = 1700000000000 + steps[k][j];
                vals[k][j] = value_of(p, b, k, j);
            }
            batch[k] = (tally_series_batch){runs[k], strlen(runs[k]), "loss", 4, BATCH_POINTS,
                                            steps[k], ts[k], vals[k]};
        }
        atomic_store(&sh->n_started[p], b + 1);
        if (tally_engine_append(child_engine, batch, BATCH_SERIES) != 0)
            _exit(3);
        atomic_store(&sh->acked[p][b], 1);
    }
    return NULL;
}

static void child_main(const char *dir, tally_durability mode)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.durability = mode;
    o.block_points = 256;
    o.wal_file_bytes = 256 << 10;
    o.checkpoint_wal_bytes = 1 << 20;
    if (tally_engine_open(dir, &o, &child_engine) != 0)
        _exit(2);
    pthread_t th[N_PRODUCERS];
    for (int p = 0; p < N_PRODUCERS; p++)
        pthread_create(&th[p], NULL, producer, (void *)(intptr_t)p);
    for (int p = 0; p < N_PRODUCERS; p++)
        pthread_join(th[p], NULL);
    _exit(0);
}

/* Checks the recovered store against the acknowledgements. */
/* Reads every point of a series into pts; returns the count. */
static size_t read_series(tally_engine *e, const char *run, tally_point *pts, size_t cap)
{
    tally_series_id id;
    size_t total = 0;
    if (tally_engine_lookup(e, run, strlen(run), "loss", 4, &id) != 0)
        return 0;
    tally_snapshot *s;
    ASSERT_OK(tally_snapshot_open(e, id, &s));
    tally_iter *it;
    ASSERT_OK(tally_iter_start(s, INT64_MIN, INT64_MAX, &it));
    size_t n;
    do {
        ASSERT_OK(tally_iter_next(it, pts + total, cap - total, &n));
        total += n;
    } while (n);
    tally_iter_stop(it);
    tally_snapshot_close(s);
    return total;
}

static void check_store(const char *dir, tally_durability mode, int round)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.durability = mode;
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    static tally_point pts[MAX_BATCHES];
    for (int p = 0; p < N_PRODUCERS; p++) {
        uint32_t started = atomic_load(&sh->n_started[p]);
        uint32_t n_acked = 0;
        while (n_acked < started && atomic_load(&sh->acked[p][n_acked]))
            n_acked++;
        if (p == 0)
            fprintf(stderr, "  round %d: %u batches acknowledged, %u started\n", round, n_acked, started);
        for (int k = 0; k < BATCH_SERIES; k++) {
            char run[32];
            snprintf(run, sizeof run, "g%d-p%d-r%d", round, p, k);
            size_t total = read_series(e, run, pts, MAX_BATCHES);
            seen_total[round][p][k] = total;
            for (int g = 0; g < round; g++) {
                snprintf(run, sizeof run, "g%d-p%d-r%d", g, p, k);
                ASSERT_EQ(read_series(e, run, pts + total, MAX_BATCHES - total), seen_total[g][p][k]);
            }
            /* Whole batches only, in order, with exact values. */
            ASSERT_EQ(total % BATCH_POINTS, 0);
            ASSERT_GE(total, (size_t)n_acked * BATCH_POINTS);
            ASSERT_LE(total, (size_t)started * BATCH_POINTS);
            for (size_t i = 0; i < total; i++) {
                uint32_t b = (uint32_t)(i / BATCH_POINTS);
                int j = (int)(i % BATCH_POINTS);
                ASSERT_EQ(pts[i].step, (int64_t)i);
                ASSERT_BITS_EQ(pts[i].value, value_of(p, b, k, j));
            }
        }
    }
    /* The store takes new writes and survives a clean close and reopen. */
    int64_t s = -1, t = 0;
    double v = 1;
    tally_series_batch b = {"after", 5, "crash", 5, 1, &s, &t, &v};
    ASSERT_OK(tally_engine_append(e, &b, 1));
    ASSERT_OK(tally_engine_close(e));
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    tally_series_id id;
    ASSERT_OK(tally_engine_lookup(e, "after", 5, "crash", 5, &id));
    ASSERT_OK(tally_engine_close(e));
    uint64_t problems = 99;
    ASSERT_OK(tally_verify(dir, NULL, NULL, &problems));
    ASSERT_EQ(problems, 0);
}

static void run_mode(tally_durability mode, int rounds)
{
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)mode;
    fprintf(stderr, "seed %u\n", seed);
    srand(seed);
    for (int r = 0; r < rounds; r++) {
        char dir[512];
        test_tmpdir(dir, sizeof dir, "crash");
        memset(sh, 0, sizeof *sh);
        /* Several kills per directory: each round crashes an already recovered store. */
        for (int kill_n = 0; kill_n < 3; kill_n++) {
            memset(sh, 0, sizeof *sh);
            child_round = kill_n;
            pid_t pid = fork();
            ASSERT(pid >= 0);
            if (pid == 0)
                child_main(dir, mode);
            struct timespec d = {0, (long)(5 + rand() % 150) * 1000000L};
            nanosleep(&d, NULL);
            kill(pid, SIGKILL);
            int status;
            waitpid(pid, &status, 0);
            ASSERT(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
            check_store(dir, mode, kill_n);
        }
        test_rmdir(dir);
    }
}

static void test_crash_sync(void) { run_mode(TALLY_DURABILITY_SYNC, 4); }
static void test_crash_group(void) { run_mode(TALLY_DURABILITY_GROUP, 4); }
static void test_crash_async(void) { run_mode(TALLY_DURABILITY_ASYNC, 3); }

int main(void)
{
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT(sh != MAP_FAILED);
    TEST_RUN(test_crash_sync);
    TEST_RUN(test_crash_group);
    TEST_RUN(test_crash_async);
    return TEST_DONE();
}
