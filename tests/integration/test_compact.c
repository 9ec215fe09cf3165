/*
 * test_compact.c — tally_engine_compact(): dropping series and reclaiming
 * their space, and crashes during it.
 *   - drop: the dropped series are gone (lookup ENOTFOUND, not in any
 *     enumeration), every other series has exactly its points, tally_verify
 *     finds nothing, segment bytes shrink, the engine takes new writes.
 *   - crash at stage 1 (new segments written, before the commit) and at
 *     stage 2 (after the commit, before the old segments are deleted): the
 *     child _exit()s there; the parent finds the old state (stage 1) or the
 *     new one (stage 2), whole, and a second compaction cleans the leftovers.
 *   - SIGKILL at random moments of a larger compaction: always exactly the
 *     old or the new state.
 *   - a directory held open by an engine: TALLY_ELOCKED, nothing changed.
 */
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "tally/engine.h"
#include "test.h"

#define N_RUNS 4
#define N_KEYS 3

static double value_of(int r, int k, int64_t i) { return r * 1e6 + k * 1e4 + (double)i * 0.5; }

static int64_t n_points_of(int r, int k) { return 3000 + r * 1000 + k * 777; }

static void run_name(int r, char *buf) { snprintf(buf, 16, "run-%d", r); }
static void key_name(int k, char *buf) { snprintf(buf, 16, "m%d", k); }

static void fill(const char *dir, int scale)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.block_points = 1024;
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    for (int r = 0; r < N_RUNS; r++)
        for (int k = 0; k < N_KEYS; k++) {
            int64_t n = n_points_of(r, k) * scale;
            int64_t *st = malloc((size_t)n * 8), *ts = malloc((size_t)n * 8);
            double *v = malloc((size_t)n * 8);
            ASSERT(st && ts && v);
            for (int64_t i = 0; i < n; i++) {
                st[i] = i;
                ts[i] = 1700000000000 + i;
                v[i] = value_of(r, k, i);
            }
            char rn[16], kn[16];
            run_name(r, rn);
            key_name(k, kn);
            tally_series_batch b = {rn, strlen(rn), kn, strlen(kn), (uint32_t)n, st, ts, v};
            ASSERT_OK(tally_engine_append(e, &b, 1));
            free(st);
            free(ts);
            free(v);
        }
    ASSERT_OK(tally_engine_close(e));
}

/* 1 if (r, k) is present with exactly its points, 0 if absent; fails the
 * test on anything in between. */
static int check_series(tally_engine *e, int r, int k, int scale)
{
    char rn[16], kn[16];
    run_name(r, rn);
    key_name(k, kn);
    tally_series_id id;
    int rc = tally_engine_lookup(e, rn, strlen(rn), kn, strlen(kn), &id);
    if (rc == TALLY_ENOTFOUND)
        return 0;
    ASSERT_OK(rc);
    tally_snapshot *s;
    tally_iter *it;
    ASSERT_OK(tally_snapshot_open(e, id, &s));
    ASSERT_OK(tally_iter_start(s, INT64_MIN, INT64_MAX, &it));
    tally_point pts[512];
    size_t n;
    int64_t i = 0;
    while (tally_iter_next(it, pts, 512, &n) == 0 && n) {
        for (size_t j = 0; j < n; j++, i++) {
            ASSERT_EQ(pts[j].step, i);
            ASSERT_BITS_EQ(pts[j].value, value_of(r, k, i));
        }
    }
    ASSERT_EQ(i, n_points_of(r, k) * scale);
    tally_iter_stop(it);
    tally_snapshot_close(s);
    return 1;
}

/* Checks the whole directory: runs in `gone` (bitmask) absent, others whole. */
static void check_dir(const char *dir, unsigned gone, int scale)
{
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, NULL, &e));
    for (int r = 0; r < N_RUNS; r++)
        for (int k = 0; k < N_KEYS; k++)
            ASSERT_EQ(check_series(e, r, k, scale), (gone >> r) & 1 ? 0 : 1);
    size_t total = 0;
    ASSERT_OK(tally_engine_series_all(e, NULL, 0, &total));
    ASSERT_EQ((int)total, N_KEYS * (N_RUNS - __builtin_popcount(gone)));
    ASSERT_OK(tally_engine_close(e));
    uint64_t problems = 99;
    ASSERT_OK(tally_verify(dir, NULL, NULL, &problems));
    ASSERT_EQ((int)problems, 0);
}

static size_t drop_ids(unsigned runs, tally_series_id *ids)
{
    size_t n = 0;
    for (int r = 0; r < N_RUNS; r++)
        if ((runs >> r) & 1)
            for (int k = 0; k < N_KEYS; k++) {
                char rn[16], kn[16];
                run_name(r, rn);
                key_name(k, kn);
                ids[n++] = tally_series_id_of(rn, strlen(rn), kn, strlen(kn));
            }
    return n;
}

static int count_segments(const char *dir)
{
    char sd[4200];
    snprintf(sd, sizeof sd, "%s/seg", dir);
    DIR *d = opendir(sd);
    ASSERT(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strstr(de->d_name, ".seg") != NULL;
    closedir(d);
    return n;
}

static void test_drop(void)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "compact-drop");
    fill(dir, 1);
    tally_series_id ids[N_RUNS * N_KEYS + 1];
    size_t n = drop_ids(0x5, ids); /* runs 0 and 2 */
    ids[n++] = 12345;              /* unknown ids are ignored */
    tally_compact_stats st;
    ASSERT_OK(tally_engine_compact(dir, ids, n, &st));
    ASSERT_EQ((int)st.series_dropped, 2 * N_KEYS);
    uint64_t pts = 0;
    for (int k = 0; k < N_KEYS; k++)
        pts += (uint64_t)(n_points_of(0, k) + n_points_of(2, k));
    ASSERT_U64_EQ(st.points_dropped, pts);
    ASSERT_LT(st.bytes_after, st.bytes_before);
    check_dir(dir, 0x5, 1);
    /* nothing to drop: nothing changes */
    ASSERT_OK(tally_engine_compact(dir, ids, n, &st));
    ASSERT_EQ((int)st.series_dropped, 0);
    ASSERT_U64_EQ(st.bytes_after, st.bytes_before);
    /* the compacted directory takes writes, also for a dropped name */
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, NULL, &e));
    int64_t s0 = 0, t0 = 5;
    double v0 = 1.5;
    tally_series_batch b = {"run-0", 5, "m0", 2, 1, &s0, &t0, &v0};
    ASSERT_OK(tally_engine_append(e, &b, 1));
    ASSERT_OK(tally_engine_close(e));
    ASSERT_OK(tally_engine_open(dir, NULL, &e));
    tally_series_id id;
    tally_series_info si;
    ASSERT_OK(tally_engine_lookup(e, "run-0", 5, "m0", 2, &id));
    ASSERT_OK(tally_engine_series_info(e, id, &si));
    ASSERT_EQ((int)si.n_points, 1);
    ASSERT_EQ(check_series(e, 1, 2, 1), 1);
    ASSERT_OK(tally_engine_close(e));
    /* drop everything: an empty but valid directory */
    n = drop_ids(0xF, ids);
    ids[n++] = tally_series_id_of("run-0", 5, "m0", 2);
    ASSERT_OK(tally_engine_compact(dir, ids, n, &st));
    ASSERT_OK(tally_engine_open(dir, NULL, &e));
    size_t total = 9;
    ASSERT_OK(tally_engine_series_all(e, NULL, 0, &total));
    ASSERT_EQ((int)total, 0);
    ASSERT_OK(tally_engine_close(e));
    test_rmdir(dir);
}

static int crash_stage;
static void crash_hook(int stage)
{
    if (stage == crash_stage)
        _exit(42); /* as if killed: no cleanup, nothing flushed beyond what was synced */
}

static void test_crash_at_stages(void)
{
    for (int stage = 1; stage <= 2; stage++) {
        char dir[4096];
        test_tmpdir(dir, sizeof dir, "compact-stage");
        fill(dir, 1);
        int before = count_segments(dir);
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            crash_stage = stage;
            tally__compact_stage_hook = crash_hook;
            tally_series_id ids[N_RUNS * N_KEYS];
            size_t n = drop_ids(0x2, ids);
            tally_engine_compact(dir, ids, n, NULL);
            _exit(0);
        }
        int status;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 42);
        ASSERT_GT(count_segments(dir), before); /* leftovers of the interrupted run */
        check_dir(dir, stage == 1 ? 0x0 : 0x2, 1);
        /* the next compaction finishes the job and removes the leftovers */
        tally_series_id ids[N_RUNS * N_KEYS];
        size_t n = drop_ids(0x2, ids);
        tally_compact_stats st;
        ASSERT_OK(tally_engine_compact(dir, ids, n, &st));
        check_dir(dir, 0x2, 1);
        ASSERT_LE(count_segments(dir), before);
        test_rmdir(dir);
    }
}

static void test_kill_at_random(void)
{
    srand((unsigned)time(NULL));
    for (int round = 0; round < 6; round++) {
        char dir[4096];
        test_tmpdir(dir, sizeof dir, "compact-kill");
        fill(dir, 20);
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            tally_series_id ids[N_RUNS * N_KEYS];
            size_t n = drop_ids(0x9, ids);
            _exit(tally_engine_compact(dir, ids, n, NULL) == 0 ? 0 : 1);
        }
        struct timespec d = {0, (long)(rand() % 150) * 1000000L};
        nanosleep(&d, NULL);
        kill(pid, SIGKILL);
        int status;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
        /* exactly the old or the new state */
        tally_engine *e;
        ASSERT_OK(tally_engine_open(dir, NULL, &e));
        int present = check_series(e, 0, 0, 20);
        ASSERT_OK(tally_engine_close(e));
        fprintf(stderr, "   round %d: killed %s the commit\n", round, present ? "before" : "after");
        check_dir(dir, present ? 0x0 : 0x9, 20);
        test_rmdir(dir);
    }
}

static void test_locked(void)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "compact-locked");
    fill(dir, 1);
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, NULL, &e));
    tally_series_id ids[N_RUNS * N_KEYS];
    size_t n = drop_ids(0x1, ids);
    ASSERT_EQ(tally_engine_compact(dir, ids, n, NULL), TALLY_ELOCKED);
    ASSERT_OK(tally_engine_close(e));
    check_dir(dir, 0x0, 1);
    test_rmdir(dir);
}

int main(void)
{
    TEST_RUN(test_drop);
    TEST_RUN(test_crash_at_stages);
    TEST_RUN(test_kill_at_random);
    TEST_RUN(test_locked);
    return TEST_DONE();
}
