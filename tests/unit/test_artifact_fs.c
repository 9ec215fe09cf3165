/*
 * test_artifact_fs.c — unit tests of server/artifact_fs.c: atomic uploads
 * (commit replaces, abort and failed begins leave nothing), walks that
 * refuse symlinks anywhere on the path, listings that hide symlinks and
 * upload temporaries, recursive removal that never follows a link, the
 * start-up sweep, the background syncer (artifact_sync.h: files readable
 * at once, the bounded queue falling back to a synchronous fsync, every
 * queued descriptor fsync'd and closed by the thread or by stop), the
 * writer thread of large uploads (artifact_writer.h: order kept across
 * slot boundaries with and without O_DIRECT, from aligned and unaligned
 * starts, direct writes leaving the page cache alone, the fd's flags
 * restored, a write error sticks and reaches finish, cancel never waits
 * for the queue), and the logged-model store on top of a real
 * database.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "artifact_fs.h"
#include "artifact_sync.h"
#include "artifact_writer.h"
#include "logged_model_search.h"
#include "store_logged_models.h"
#include "test.h"

static char root[4100], outside[4100];

static char test_dir[4000]; /* the running test's directory: made by setup, removed in main */

static void setup(const char *name)
{
    test_tmpdir(test_dir, sizeof test_dir, name);
    snprintf(root, sizeof root, "%s/root", test_dir);
    snprintf(outside, sizeof outside, "%s/outside", test_dir);
    ASSERT_EQ(mkdir(outside, 0755), 0);
    char p[8192];
    snprintf(p, sizeof p, "%s/secret", outside);
    FILE *f = fopen(p, "w");
    ASSERT(f != NULL);
    fputs("secret", f);
    fclose(f);
}

/* Uploads data to rel, synced by s (background mode) or before the commit
 * returns (s = NULL). */
static int upload_bg(tally_artifact_syncer *s, const char *rel, const char *data)
{
    tally_artifact_upload *u;
    int rc = tally_artifact_upload_begin(root, rel, 1, &u);
    if (rc)
        return rc;
    rc = tally_artifact_upload_write(u, data, strlen(data));
    if (rc) {
        tally_artifact_upload_abort(u);
        return rc;
    }
    return tally_artifact_upload_commit(u, s);
}

static int upload(const char *rel, const char *data)
{
    return upload_bg(NULL, rel, data);
}

static void read_back(const char *rel, char *buf, size_t cap)
{
    uint64_t size = 0;
    int fd = tally_artifact_open_file(root, rel, &size);
    ASSERT_GE(fd, 0);
    ASSERT(size < cap);
    ASSERT_EQ(read(fd, buf, cap - 1), (ssize_t)size);
    buf[size] = 0;
    close(fd);
}

static size_t count_entries(const char *dir_rel)
{
    tally_artifact_entry *v;
    size_t n;
    ASSERT_OK(tally_artifact_list(root, dir_rel, &v, &n));
    tally_artifact_list_free(v, n);
    return n;
}

static void test_upload_commit_abort(void)
{
    setup("afs-upload");
    char buf[256];
    ASSERT_OK(upload("a/b/c.txt", "one"));
    read_back("a/b/c.txt", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "one");
    ASSERT_OK(upload("a/b/c.txt", "two, longer"));
    read_back("a/b/c.txt", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "two, longer");
    /* A big upload crosses the 256 KiB buffer and the 8 MiB writeback kick,
     * in pieces of mixed sizes: small ones gathered, large ones written as
     * they come (also right after gathered ones), every byte in place. */
    enum { BIG = 10000000 };
    static const size_t pieces[] = {1, 100000, 17, 16383, 16384, 300000, 5000, 65536, 262143, 2};
    tally_artifact_upload *u;
    char *whole = malloc(BIG);
    ASSERT(whole != NULL);
    for (int i = 0; i < BIG; i++)
        whole[i] = (char)(i * 7 + i / 251);
    for (int direct = 0; direct <= 1; direct++) { /* through the page cache, then past it */
        ASSERT_OK(tally_artifact_upload_begin(root, "a/big.bin", direct, &u));
        size_t at = 0;
        for (size_t k = 0; at < BIG; k++) {
            size_t n = pieces[k % (sizeof pieces / sizeof pieces[0])];
            if (n > BIG - at)
                n = BIG - at;
            ASSERT_OK(tally_artifact_upload_write(u, whole + at, n));
            at += n;
        }
        ASSERT_U64_EQ(tally_artifact_upload_size(u), BIG);
        ASSERT_OK(tally_artifact_upload_commit(u, NULL));
        uint64_t size = 0;
        int fd = tally_artifact_open_file(root, "a/big.bin", &size);
        ASSERT_GE(fd, 0);
        ASSERT_U64_EQ(size, BIG);
        char *back = malloc(BIG);
        ASSERT(back != NULL);
        ASSERT_EQ(pread(fd, back, BIG, 0), BIG);
        ASSERT_EQ(memcmp(back, whole, BIG), 0);
        close(fd);
        free(back);
    }
    char *chunk = whole;
    /* Abort: the old version stays, no temporary is left; also for an
     * upload large enough to have its writer thread. */
    ASSERT_OK(tally_artifact_upload_begin(root, "a/b/c.txt", 1, &u));
    ASSERT_OK(tally_artifact_upload_write(u, chunk, 100000));
    tally_artifact_upload_abort(u);
    ASSERT_OK(tally_artifact_upload_begin(root, "a/b/c.txt", 1, &u));
    for (int k = 0; k < 7; k++)
        ASSERT_OK(tally_artifact_upload_write(u, chunk, 1000000));
    tally_artifact_upload_abort(u);
    free(whole);
    read_back("a/b/c.txt", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "two, longer");
    ASSERT_EQ(count_entries("a/b"), 1);
    ASSERT_EQ(tally_artifact_sweep(root), 0);
    /* Conflicts. */
    ASSERT_EQ(upload("a/b", "x"), -EISDIR);
    ASSERT_EQ(upload("a/b/c.txt/d", "x"), -ENOTDIR);
    ASSERT_EQ(upload("a/.tally-upload-x", "x"), -EINVAL);
    ASSERT_EQ(upload(".tally-dir/x", "x"), -EINVAL);
    ASSERT_EQ(tally_artifact_kind(root, "a/b/c.txt"), 1);
    ASSERT_EQ(tally_artifact_kind(root, "a/b"), 2);
    ASSERT_EQ(tally_artifact_kind(root, "a/nope"), 0);
    ASSERT_EQ(tally_artifact_kind(root, ""), 2);
}

/* Pages of fd's [off, off + len) in the page cache (mincore of a map). */
static size_t resident_pages(int fd, off_t off, size_t len)
{
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, off);
    ASSERT(m != MAP_FAILED);
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = (len + page - 1) / page, in = 0;
    unsigned char *vec = malloc(n);
    ASSERT(vec != NULL);
    ASSERT_EQ(mincore(m, len, vec), 0);
    for (size_t i = 0; i < n; i++)
        in += vec[i] & 1;
    free(vec);
    munmap(m, len);
    return in;
}

/* Writes data[0, n) to a new file at path: the first `before` bytes by
 * the caller, the rest through a writer (direct or not) in puts of sizes
 * that straddle slot boundaries. Returns the descriptor, read-write. */
static int write_through_writer(const char *path, const char *data, size_t n, size_t before,
                                int direct)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_OK(tally_write_all(fd, data, before)); /* written before the writer starts */
    int flags = fcntl(fd, F_GETFL);
    tally_file_writer *w;
    ASSERT_OK(tally_file_writer_start(fd, before, 0, direct, &w));
    static const size_t sizes[] = {1, TALLY_WRITER_BUF - 1, 2, TALLY_WRITER_BUF, 777777,
                                   3 * TALLY_WRITER_BUF + 5, 65536};
    size_t at = before;
    for (size_t k = 0; at < n; k++) {
        size_t m = sizes[k % (sizeof sizes / sizeof sizes[0])];
        if (m > n - at)
            m = n - at;
        ASSERT_OK(tally_file_writer_put(w, data + at, m));
        at += m;
    }
    ASSERT_OK(tally_file_writer_finish(w));
    ASSERT_EQ(fcntl(fd, F_GETFL), flags); /* invariant (3): O_DIRECT cleared again */
    return fd;
}

/* The writer thread alone: bytes in order across slot boundaries, the
 * file's earlier bytes kept, with and without direct writes, from an
 * aligned and an unaligned start, with an unaligned tail; direct writes
 * leave the aligned body out of the page cache (where the file system
 * takes O_DIRECT) and buffered ones go through it; a write error (a
 * descriptor opened read-only) sticks and reaches finish, and puts after
 * it fail rather than wait; cancel with a full queue returns. */
static void test_file_writer(void)
{
    setup("afs-writer");
    char path[4200];
    snprintf(path, sizeof path, "%s/w.bin", outside);
    enum { N = 3 * TALLY_WRITER_BUF * TALLY_WRITER_BUFS + 12345 };
    char *data = malloc(N);
    char *back = malloc(N);
    ASSERT(data != NULL && back != NULL);
    for (size_t i = 0; i < N; i++)
        data[i] = (char)(i * 31 + i / 4093);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
    int fs_direct = fd >= 0; /* tmpfs before Linux 6.6 refuses O_DIRECT */
    if (fd >= 0)
        close(fd);
    static const size_t befores[] = {1000, 2 * TALLY_WRITER_ALIGN, 0};
    for (int direct = 0; direct <= 1; direct++) {
        for (size_t b = 0; b < sizeof befores / sizeof befores[0]; b++) {
            fd = write_through_writer(path, data, N, befores[b], direct);
            /* the body after the first slot: aligned, written in whole slots */
            off_t body = (off_t)TALLY_WRITER_BUF * 2;
            size_t body_len = (size_t)TALLY_WRITER_BUF * 8;
            size_t in = resident_pages(fd, body, body_len);
            if (direct && fs_direct)
                ASSERT_EQ(in, 0);
            else if (!direct)
                ASSERT(in > 0); /* just written through the cache */
            ASSERT_EQ(pread(fd, back, N, 0), N);
            ASSERT_EQ(memcmp(back, data, N), 0);
            close(fd);
        }
    }
    /* Read-only: every write fails with EBADF. */
    fd = open(path, O_RDONLY);
    ASSERT_GE(fd, 0);
    tally_file_writer *w;
    ASSERT_OK(tally_file_writer_start(fd, 0, 0, 1, &w));
    int rc = 0;
    for (int k = 0; k < 3 * TALLY_WRITER_BUFS && rc == 0; k++)
        rc = tally_file_writer_put(w, data, TALLY_WRITER_BUF);
    int fin = tally_file_writer_finish(w);
    ASSERT_EQ(fin, -EBADF);
    ASSERT(rc == 0 || rc == -EBADF);
    /* Cancel with queued slots returns at once. */
    ASSERT_OK(tally_file_writer_start(fd, 0, 0, 1, &w));
    for (int k = 0; k < TALLY_WRITER_BUFS - 1; k++)
        (void)tally_file_writer_put(w, data, TALLY_WRITER_BUF);
    tally_file_writer_cancel(w);
    tally_file_writer_cancel(NULL);
    close(fd);
    free(back);
    free(data);
}

static void test_symlinks_refused(void)
{
    setup("afs-symlink");
    ASSERT_OK(upload("d/keep.txt", "keep"));
    char link[8192], target[8192];
    snprintf(link, sizeof link, "%s/d/evil", root);
    ASSERT_EQ(symlink(outside, link), 0);
    snprintf(link, sizeof link, "%s/d/evil.txt", root);
    snprintf(target, sizeof target, "%s/secret", outside);
    ASSERT_EQ(symlink(target, link), 0);
    uint64_t size;
    ASSERT_EQ(tally_artifact_open_file(root, "d/evil/secret", &size), -ELOOP);
    ASSERT_EQ(tally_artifact_open_file(root, "d/evil.txt", &size), -ELOOP);
    ASSERT_EQ(upload("d/evil/new", "x"), -ELOOP);
    ASSERT_EQ(upload("d/evil/sub/new", "x"), -ELOOP);
    ASSERT_EQ(tally_artifact_kind(root, "d/evil"), -ELOOP);
    ASSERT_EQ(tally_artifact_remove(root, "d/evil/secret"), -ELOOP);
    tally_artifact_entry *v;
    size_t n;
    ASSERT_EQ(tally_artifact_list(root, "d/evil", &v, &n), -ELOOP);
    ASSERT_OK(tally_artifact_list(root, "d", &v, &n));
    ASSERT_EQ(n, 1); /* only keep.txt: links are not listed */
    ASSERT_STR_EQ(v[0].name, "keep.txt");
    tally_artifact_list_free(v, n);
    /* A directory whose child is a link: removal unlinks the link only. */
    ASSERT_OK(tally_artifact_remove(root, "d"));
    ASSERT_EQ(tally_artifact_kind(root, "d"), 0);
    ASSERT_EQ(access(target, F_OK), 0);
    /* The root itself is never removed. */
    ASSERT_EQ(tally_artifact_remove(root, ""), -EINVAL);
    /* Missing is success. */
    ASSERT_OK(tally_artifact_remove(root, "no/such/thing"));
}

static void test_sweep(void)
{
    setup("afs-sweep");
    ASSERT_OK(upload("x/y/z.txt", "z"));
    char p[8192];
    snprintf(p, sizeof p, "%s/x/y/.tally-upload-deadbeefdeadbeef", root);
    FILE *f = fopen(p, "w");
    ASSERT(f != NULL);
    fputs("half", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/x/.tally-upload-0", root);
    f = fopen(p, "w");
    ASSERT(f != NULL);
    fclose(f);
    ASSERT_EQ(count_entries("x/y"), 1); /* temporaries are never listed */
    ASSERT_EQ(tally_artifact_sweep(root), 2);
    ASSERT_EQ(tally_artifact_sweep(root), 0);
    char buf[16];
    read_back("x/y/z.txt", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "z");
    char missing[8192];
    snprintf(missing, sizeof missing, "%s/nope", root);
    ASSERT_EQ(tally_artifact_sweep(missing), 0);
}


/* Descriptors this process has open now. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ASSERT(d != NULL);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* 25 uploads to run/par/<i>.txt, each path written by every thread: the
 * last rename wins, every version is complete. */
static void *concurrent_uploads(void *arg)
{
    tally_artifact_syncer *s = arg;
    for (int i = 0; i < 25; i++) {
        char rel[64], want[64];
        snprintf(rel, sizeof rel, "run/par/%d.txt", i);
        snprintf(want, sizeof want, "parallel %d", i);
        if (upload_bg(s, rel, want) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_background_sync(void)
{
    setup("afs-bgsync");
    char buf[64], rel[64], want[64];
    int fds0 = open_fds();
    /* Not started: pushes queue up to the capacity, then the uploader syncs
     * itself; every file is readable as soon as commit returned. */
    tally_artifact_syncer *s;
    ASSERT_EQ(tally_artifact_syncer_new(0, &s), -EINVAL);
    ASSERT_OK(tally_artifact_syncer_new(2, &s));
    for (int i = 0; i < 3; i++) {
        snprintf(rel, sizeof rel, "run/f%d.txt", i);
        snprintf(want, sizeof want, "content %d", i);
        ASSERT_OK(upload_bg(s, rel, want));
        read_back(rel, buf, sizeof buf);
        ASSERT_STR_EQ(buf, want);
    }
    tally_artifact_sync_stats st;
    tally_artifact_syncer_stats(s, &st);
    ASSERT_U64_EQ(st.pushed, 2);
    ASSERT_U64_EQ(st.refused, 1);
    ASSERT_EQ(st.queued, 2);
    ASSERT_U64_EQ(st.synced, 0);
    ASSERT_EQ(open_fds(), fds0 + 4); /* file + directory per queued upload */
    ASSERT_EQ(count_entries("run"), 3); /* no temporary left behind */
    /* Started: the queue empties on its own, well within a second. */
    ASSERT_OK(tally_artifact_syncer_start(s));
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        tally_artifact_syncer_stats(s, &st);
        clock_gettime(CLOCK_MONOTONIC, &t);
        double waited = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
        if (st.synced == 2 || waited > 5.0)
            break;
        struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
    }
    ASSERT_U64_EQ(st.synced, 2);
    ASSERT_EQ(st.queued, 0);
    ASSERT_GE(st.batches, 1);
    ASSERT_EQ(open_fds(), fds0);
    /* Many uploads into two directories, then stop: everything pushed is
     * synced (group commit) and closed before stop returns. */
    for (int i = 0; i < 40; i++) {
        snprintf(rel, sizeof rel, "run/%s/g%d.txt", i % 2 ? "odd" : "even", i);
        snprintf(want, sizeof want, "g %d", i);
        ASSERT_OK(upload_bg(s, rel, want));
        read_back(rel, buf, sizeof buf);
        ASSERT_STR_EQ(buf, want);
    }
    /* Uploads from several threads at once (as libmicrohttpd's workers). */
    pthread_t th[4];
    for (int k = 0; k < 4; k++)
        ASSERT_EQ(pthread_create(&th[k], NULL, concurrent_uploads, s), 0);
    for (int k = 0; k < 4; k++) {
        void *ret = (void *)1;
        ASSERT_EQ(pthread_join(th[k], &ret), 0);
        ASSERT(ret == NULL);
    }
    tally_artifact_syncer_stats(s, &st);
    uint64_t pushed = st.pushed;
    ASSERT_U64_EQ(pushed + st.refused, 43 + 4 * 25);
    ASSERT_EQ(count_entries("run/par"), 25);
    for (int i = 0; i < 25; i++) {
        snprintf(rel, sizeof rel, "run/par/%d.txt", i);
        snprintf(want, sizeof want, "parallel %d", i);
        read_back(rel, buf, sizeof buf);
        ASSERT_STR_EQ(buf, want);
    }
    ASSERT_U64_EQ(tally_artifact_syncer_stop(s, &st), 0);
    ASSERT_U64_EQ(st.synced, pushed);
    ASSERT_EQ(st.queued, 0);
    ASSERT_EQ(open_fds(), fds0);
    /* Never started: stop drains the queue itself. An overwrite also hands
     * over the replaced file, closed (freed) by the syncer. */
    ASSERT_OK(tally_artifact_syncer_new(8, &s));
    ASSERT_OK(upload_bg(s, "run/late.txt", "late"));
    ASSERT_EQ(open_fds(), fds0 + 2);
    ASSERT_OK(upload_bg(s, "run/f0.txt", "replaced"));
    ASSERT_EQ(open_fds(), fds0 + 5);
    read_back("run/f0.txt", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "replaced");
    ASSERT_U64_EQ(tally_artifact_syncer_stop(s, &st), 0);
    ASSERT_U64_EQ(st.synced, 2);
    ASSERT_EQ(open_fds(), fds0);
    read_back("run/late.txt", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "late");
    ASSERT_EQ(tally_artifact_sweep(root), 0);
    ASSERT_U64_EQ(tally_artifact_syncer_stop(NULL, NULL), 0);
}

static void test_logged_models_store(void)
{
    char base[4096], db[8192], err[512] = "";
    test_tmpdir(base, sizeof base, "afs-lm");
    snprintf(db, sizeof db, "%s/meta.db", base);
    tally_store *s;
    ASSERT_OK(tally_store_open(db, &s, err, sizeof err));
    int64_t exp;
    ASSERT_OK(tally_store_create_experiment(s, "lm", NULL, NULL, 0, &exp, err, sizeof err));
    tally_arena *a = tally_arena_new();
    tally_kv tags[] = {{"k", "v1"}, {"k", "v2"}};
    tally_kv params[] = {{"p", "1"}};
    tally_logged_model_create c = {exp, "net", NULL, NULL, params, 1, tags, 2};
    tally_logged_model m;
    ASSERT_OK(tally_store_create_logged_model(s, &c, a, &m, err, sizeof err));
    ASSERT_EQ(m.status, TALLY_LM_PENDING);
    ASSERT_EQ(m.n_tags, 1);
    ASSERT_STR_EQ(m.tags[0].value, "v2"); /* the last repeat wins */
    char want[128];
    snprintf(want, sizeof want, "mlflow-artifacts:/%lld/models/%s/artifacts", (long long)exp,
             m.model_id);
    ASSERT_STR_EQ(m.artifact_location, want);
    ASSERT(m.model_type == NULL && m.source_run_id == NULL);
    c.name = "bad.name";
    ASSERT_EQ(tally_store_create_logged_model(s, &c, a, &m, err, sizeof err), TALLY_STORE_EINVAL);
    c.experiment_id = 424242;
    c.name = NULL;
    ASSERT_EQ(tally_store_create_logged_model(s, &c, a, &m, err, sizeof err),
              TALLY_STORE_ENOTFOUND);
    char id[TALLY_LOGGED_MODEL_ID_LEN + 1];
    memcpy(id, m.model_id, sizeof id);
    ASSERT_EQ(tally_store_finalize_logged_model(s, id, TALLY_LM_PENDING, a, &m, err, sizeof err),
              TALLY_STORE_EINVAL);
    ASSERT_OK(tally_store_finalize_logged_model(s, id, TALLY_LM_READY, a, &m, err, sizeof err));
    ASSERT_EQ(m.status, TALLY_LM_READY);
    tally_kv p2[] = {{"p", "2"}};
    ASSERT_EQ(tally_store_log_logged_model_params(s, id, p2, 1, err, sizeof err),
              TALLY_STORE_EINVAL);
    ASSERT_OK(tally_store_log_logged_model_params(s, id, params, 1, err, sizeof err));
    tally_logged_model *v;
    size_t n;
    int64_t ids[] = {exp, exp, 999};
    ASSERT_OK(tally_store_list_logged_models(s, ids, 3, a, &v, &n, err, sizeof err));
    ASSERT_EQ(n, 1); /* a repeated experiment id lists its models once */
    tally_lm_filter f;
    const char *q = "name = 'net' AND tags.k LIKE 'v%' AND status = 'READY'";
    ASSERT_OK(tally_lm_filter_parse(q, strlen(q), &f, err, sizeof err));
    ASSERT_EQ(tally_lm_filter_match(&f, &v[0]), 1);
    tally_lm_filter_free(&f);
    ASSERT_OK(tally_store_delete_logged_model(s, id, err, sizeof err));
    ASSERT_EQ(tally_store_get_logged_model(s, id, a, &m, err, sizeof err), TALLY_STORE_ENOTFOUND);
    ASSERT_EQ(tally_store_delete_logged_model(s, id, err, sizeof err), TALLY_STORE_ENOTFOUND);
    ASSERT_OK(tally_store_list_logged_models(s, ids, 1, a, &v, &n, err, sizeof err));
    ASSERT_EQ(n, 0);
    tally_arena_free(a);
    tally_store_close(s);
    test_rmdir(base);
}

int main(void)
{
    TEST_RUN(test_upload_commit_abort);
    test_rmdir(test_dir);
    TEST_RUN(test_file_writer);
    TEST_RUN(test_symlinks_refused);
    test_rmdir(test_dir);
    TEST_RUN(test_sweep);
    test_rmdir(test_dir);
    TEST_RUN(test_background_sync);
    test_rmdir(test_dir);
    TEST_RUN(test_logged_models_store);
    return TEST_DONE();
}
