/*
 * test_corruption.c — damaged files never crash the engine and never serve
 * damaged data:
 *  - a WAL cut at every record boundary, and inside every record, recovers
 *    exactly the batches whose records are whole before the cut;
 *  - a bit flipped in any WAL record stops replay at that record;
 *  - a bit flipped in a sealed block makes reads of that series fail with
 *    TALLY_ECORRUPT (with its location logged) while other series read fine,
 *    and tally_verify names the block;
 *  - a damaged or cut checkpoint makes open fail with TALLY_ECORRUPT.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tally/engine.h"
#include "test.h"

#define N_BATCHES 40
#define BATCH_POINTS 25

static void copy_tree(const char *from, const char *to)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    ASSERT_EQ(system(cmd), 0);
}

static void batch_points(int b, int64_t *st, int64_t *ts, double *va)
{
    for (int i = 0; i < BATCH_POINTS; i++) {
        st[i] = (int64_t)b * BATCH_POINTS + i;
        ts[i] = 1000 + st[i];
        va[i] = b + i / 100.0;
    }
}

/* A child appends N_BATCHES one-series batches (one WAL record each) and
 * exits without closing, leaving everything in the WAL. */
static void make_wal_store(const char *dir)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        tally_engine_options o;
        tally_engine_options_init(&o);
        o.durability = TALLY_DURABILITY_SYNC;
        tally_engine *e;
        if (tally_engine_open(dir, &o, &e) != 0)
            _exit(2);
        for (int b = 0; b < N_BATCHES; b++) {
            int64_t st[BATCH_POINTS], ts[BATCH_POINTS];
            double va[BATCH_POINTS];
            batch_points(b, st, ts, va);
            tally_series_batch batch = {"run", 3, "loss", 4, BATCH_POINTS, st, ts, va};
            if (tally_engine_append(e, &batch, 1) != 0)
                _exit(3);
        }
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void wal_file(const char *dir, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/wal/%016x.wal", dir, 1);
}

/* Offsets of each record's start in the WAL file, and the end of the last. */
static int record_offsets(const char *path, long *offs)
{
    FILE *f = fopen(path, "rb");
    ASSERT(f);
    long off = 32;
    int n = 0;
    for (;;) {
        unsigned char h[32];
        fseek(f, off, SEEK_SET);
        if (fread(h, 1, 32, f) != 32 || h[0] != 'T')
            break;
        uint32_t stored;
        memcpy(&stored, h + 8, 4);
        offs[n++] = off;
        off += 32 + stored;
    }
    offs[n] = off;
    fclose(f);
    return n;
}

/* Opens dir and returns how many whole batches it holds (checking them). */
static int recovered_batches(const char *dir)
{
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, NULL, &e));
    tally_series_id id;
    int n_batches = 0;
    if (tally_engine_lookup(e, "run", 3, "loss", 4, &id) == 0) {
        tally_snapshot *s;
        ASSERT_OK(tally_snapshot_open(e, id, &s));
        tally_iter *it;
        ASSERT_OK(tally_iter_start(s, INT64_MIN, INT64_MAX, &it));
        tally_point pts[N_BATCHES * BATCH_POINTS + 1];
        size_t total = 0, n;
        do {
            ASSERT_OK(tally_iter_next(it, pts + total, sizeof pts / sizeof *pts - total, &n));
            total += n;
        } while (n);
        tally_iter_stop(it);
        tally_snapshot_close(s);
        ASSERT_EQ(total % BATCH_POINTS, 0);
        n_batches = (int)(total / BATCH_POINTS);
        for (int b = 0; b < n_batches; b++) {
            int64_t st[BATCH_POINTS], ts[BATCH_POINTS];
            double va[BATCH_POINTS];
            batch_points(b, st, ts, va);
            for (int i = 0; i < BATCH_POINTS; i++) {
                ASSERT_EQ(pts[b * BATCH_POINTS + i].step, st[i]);
                ASSERT_BITS_EQ(pts[b * BATCH_POINTS + i].value, va[i]);
            }
        }
    }
    ASSERT_OK(tally_engine_close(e));
    return n_batches;
}

static void test_wal_cut_everywhere(void)
{
    char pristine[512], work[600], wal[700];
    test_tmpdir(pristine, sizeof pristine, "corrupt-wal");
    make_wal_store(pristine);
    snprintf(work, sizeof work, "%s-work", pristine);
    wal_file(pristine, wal, sizeof wal);
    long offs[N_BATCHES + 2];
    int n = record_offsets(wal, offs);
    ASSERT_EQ(n, N_BATCHES);
    for (int k = 0; k <= n; k++) {
        /* At the boundary before record k, and (for k < n) inside record k. */
        long cuts[3] = {offs[k], k < n ? offs[k] + 5 : -1, k < n ? offs[k + 1] - 1 : -1};
        for (int c = 0; c < 3; c++) {
            if (cuts[c] < 0)
                continue;
            copy_tree(pristine, work);
            wal_file(work, wal, sizeof wal);
            ASSERT_EQ(truncate(wal, cuts[c]), 0);
            ASSERT_EQ(recovered_batches(work), k);
            /* Recovery is idempotent: a second open finds the same. */
            ASSERT_EQ(recovered_batches(work), k);
        }
    }
    test_rmdir(work);
    test_rmdir(pristine);
}

static void flip_bit(const char *path, long off, int bit)
{
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    unsigned char c;
    ASSERT_EQ(pread(fd, &c, 1, off), 1);
    c ^= (unsigned char)(1u << bit);
    ASSERT_EQ(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static void test_wal_bit_flips(void)
{
    char pristine[512], work[600], wal[700];
    test_tmpdir(pristine, sizeof pristine, "flip-wal");
    make_wal_store(pristine);
    snprintf(work, sizeof work, "%s-work", pristine);
    wal_file(pristine, wal, sizeof wal);
    long offs[N_BATCHES + 2];
    int n = record_offsets(wal, offs);
    srand(7);
    for (int k = 0; k < n; k += 3) {
        long len = offs[k + 1] - offs[k];
        long at = offs[k] + rand() % len;
        copy_tree(pristine, work);
        wal_file(work, wal, sizeof wal);
        flip_bit(wal, at, rand() % 8);
        ASSERT_EQ(recovered_batches(work), k);
    }
    /* A flipped byte in the file header loses the whole (unacknowledgeable) file. */
    copy_tree(pristine, work);
    wal_file(work, wal, sizeof wal);
    flip_bit(wal, 3, 0);
    ASSERT_EQ(recovered_batches(work), 0);
    test_rmdir(work);
    test_rmdir(pristine);
}

static int n_reports;
static char last_report[4096];
static uint64_t last_offset;
static void on_problem(void *ctx, const char *file, uint64_t off, const char *msg)
{
    (void)ctx;
    n_reports++;
    last_offset = off;
    snprintf(last_report, sizeof last_report, "%s @%llu: %s", file, (unsigned long long)off, msg);
}

static void test_block_corruption(void)
{
    char dir[512];
    test_tmpdir(dir, sizeof dir, "corrupt-block");
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.block_points = 128;
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    for (int r = 0; r < 2; r++) {
        int64_t st[1000], ts[1000];
        double va[1000];
        for (int i = 0; i < 1000; i++) {
            st[i] = i;
            ts[i] = i * 3;
            va[i] = r * 1000 + i * 0.1;
        }
        const char *run = r ? "good" : "bad";
        tally_series_batch b = {run, strlen(run), "m", 1, 1000, st, ts, va};
        ASSERT_OK(tally_engine_append(e, &b, 1));
    }
    ASSERT_OK(tally_engine_close(e)); /* checkpoint: everything sealed */
    /* The "bad" series was sealed first: its blocks lead segment 1. */
    char seg[700];
    snprintf(seg, sizeof seg, "%s/seg/%08x.seg", dir, 1);
    flip_bit(seg, 700, 3); /* inside the first block's body */
    ASSERT_OK(tally_engine_open(dir, &o, &e));
    tally_series_id id;
    ASSERT_OK(tally_engine_lookup(e, "bad", 3, "m", 1, &id));
    tally_snapshot *s;
    ASSERT_OK(tally_snapshot_open(e, id, &s));
    tally_iter *it;
    tally_point pts[2000];
    size_t n = 0;
    int rc = tally_iter_start(s, INT64_MIN, INT64_MAX, &it);
    if (rc == 0) {
        rc = tally_iter_next(it, pts, 2000, &n);
        tally_iter_stop(it);
    }
    ASSERT_EQ(rc, TALLY_ECORRUPT);
    tally_snapshot_close(s);
    ASSERT_OK(tally_engine_lookup(e, "good", 4, "m", 1, &id));
    ASSERT_OK(tally_snapshot_open(e, id, &s));
    ASSERT_OK(tally_iter_start(s, INT64_MIN, INT64_MAX, &it));
    ASSERT_OK(tally_iter_next(it, pts, 2000, &n));
    ASSERT_EQ(n, 1000);
    tally_iter_stop(it);
    tally_snapshot_close(s);
    ASSERT_OK(tally_engine_close(e));
    uint64_t problems = 0;
    n_reports = 0;
    ASSERT_OK(tally_verify(dir, on_problem, NULL, &problems));
    ASSERT_EQ(problems, 1);
    ASSERT_EQ(n_reports, 1);
    /* The report names the segment and the start of the block holding byte 700. */
    ASSERT(strstr(last_report, "00000001.seg @") != NULL);
    ASSERT_LE(last_offset, 700);
    ASSERT_GT(last_offset + 2000, 700);
    test_rmdir(dir);
}

static void test_checkpoint_corruption(void)
{
    char dir[512], work[600], ck[700];
    test_tmpdir(dir, sizeof dir, "corrupt-ckpt");
    tally_engine *e;
    ASSERT_OK(tally_engine_open(dir, NULL, &e));
    int64_t st[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, ts[10] = {0};
    double va[10] = {0};
    tally_series_batch b = {"r", 1, "m", 1, 10, st, ts, va};
    ASSERT_OK(tally_engine_append(e, &b, 1));
    ASSERT_OK(tally_engine_close(e));
    snprintf(work, sizeof work, "%s-work", dir);
    snprintf(ck, sizeof ck, "%s/directory.tck", work);
    struct stat sb;
    copy_tree(dir, work);
    ASSERT_EQ(stat(ck, &sb), 0);
    for (long off = 0; off < sb.st_size; off += 7) {
        copy_tree(dir, work);
        flip_bit(ck, off, (int)(off % 8));
        ASSERT_EQ(tally_engine_open(work, NULL, &e), TALLY_ECORRUPT);
    }
    for (long cut = 0; cut < sb.st_size; cut += 11) {
        copy_tree(dir, work);
        ASSERT_EQ(truncate(ck, cut), 0);
        ASSERT_EQ(tally_engine_open(work, NULL, &e), TALLY_ECORRUPT);
    }
    test_rmdir(work);
    test_rmdir(dir);
}

int main(void)
{
    TEST_RUN(test_wal_cut_everywhere);
    TEST_RUN(test_wal_bit_flips);
    TEST_RUN(test_block_corruption);
    TEST_RUN(test_checkpoint_corruption);
    return TEST_DONE();
}
