/*
 * suite_artifacts.c — the `artifacts` suite of tally-bench: the artifact
 * proxy (mlflow-artifacts, docs/api.md) moving one large file over
 * loopback (bench_http.h's streaming requests). Starts two `tally serve`
 * (the binary next to tally-bench) as children on scratch data directories,
 * one in the default --artifact-fsync background mode and one with
 * --artifact-fsync always, writes a FILE_BYTES file of pseudo-random bytes
 * in the scratch directory, then:
 *
 *   upload_<N>mib_mb_per_s   PUT mlflow-artifacts/artifacts/<path> of the
 *        file to a server in the default mode (--artifact-fsync background),
 *        sent with sendfile(2) (the client costs next to nothing); the clock
 *        stops at the server's 200, i.e. after the rename, before the fsync.
 *        Baseline: copying the same file to the same disk with read/write in
 *        1 MiB pieces, no fsync (the least the server must do in this mode).
 *   upload_<N>mib_fsync_always_mb_per_s   the same PUT to a second server
 *        started with --artifact-fsync always: the clock stops after its
 *        fsync of file and directory. Baseline: the same copy plus fsync.
 *   download_<N>mib_mb_per_s   GET of the uploaded file while it is in the
 *        page cache (a file downloaded often), received into a 1 MiB buffer
 *        and dropped. Baseline: read(2) of the same file in 1 MiB pieces, also
 *        from the page cache. An upload past 4 MiB is written with O_DIRECT
 *        (docs/api.md), so the file is not in the cache after its upload: it
 *        is read once first, untimed, and checked against the source. (A
 *        first read after a direct write is no fair race on this VM: the
 *        host caches the disk, so whichever reader comes second finds it
 *        warm there; docs/benchmarks.md.)
 *   upload_rss_growth_mib / upload_fsync_always_rss_growth_mib /
 *   download_rss_growth_mib  the server's peak VmRSS during the transfer,
 *        sampled every 10 ms from /proc, minus its VmRSS just before (no
 *        baseline; the target is 16 MiB).
 *
 * After every transfer or copy that leaves dirty pages behind (the
 * background upload, the plain copy) the suite waits for syncfs(2) of the
 * scratch file system, untimed, so no measurement pays for the previous
 * one's writeback.
 *
 * Each figure is the median of REPS transfers (--quick: a 256 MiB file,
 * one transfer). The upload of repetition i overwrites the same path, as
 * a client re-logging a model would.
 *
 * Invariants:
 *  (1) A figure whose measurement fails is not reported (stderr says why);
 *      the suite then returns nonzero. The child is always stopped.
 *  (2) The bytes downloaded are checked against the file (XXH3 of both).
 */
#include "bench.h"
#include "bench_http.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define FILE_BYTES ((uint64_t)1 << 30)
#define FILE_BYTES_QUICK ((uint64_t)256 << 20)
#define REPS 3
#define PIECE (1u << 20)

/* PUT the file over a fresh connection; the status or -1. */
static int upload(int port, const char *path, int file_fd, uint64_t size)
{
    bench_hconn h;
    char url[1024];
    snprintf(url, sizeof url, "/api/2.0/mlflow-artifacts/artifacts/%s", path);
    int status = -1;
    if (bench_hconn_open(&h, port) == 0)
        status = bench_hreq_file(&h, "PUT", url, "application/octet-stream", file_fd, size);
    bench_hconn_close(&h);
    return status;
}

typedef struct received {
    XXH3_state_t *st;
    uint64_t bytes;
} received;

static void hash_piece(void *arg, const void *p, size_t n)
{
    received *r = arg;
    XXH3_64bits_update(r->st, p, n);
    r->bytes += n;
}

/* GET the file over a fresh connection, in PIECE-byte receives, dropped
 * once hashed; its XXH3 into *hash. The status (-1 unless all size bytes
 * came), or -1. */
static int download(int port, const char *path, uint64_t size, uint64_t *hash)
{
    bench_hconn h;
    char url[1024];
    snprintf(url, sizeof url, "/api/2.0/mlflow-artifacts/artifacts/%s", path);
    received r = {XXH3_createState(), 0};
    int status = -1;
    if (r.st && bench_hconn_open(&h, port) == 0) {
        XXH3_64bits_reset(r.st);
        status = bench_hreq_sink(&h, "GET", url, PIECE, hash_piece, &r);
        if (r.bytes != size)
            status = -1;
        *hash = XXH3_64bits_digest(r.st);
    }
    bench_hconn_close(&h);
    XXH3_freeState(r.st);
    return status;
}

/* The baselines of the uploads: copy src to dst with read/write, plus an
 * fsync when do_fsync. */
static int copy_file(const char *src, const char *dst, char *piece, int do_fsync)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = in >= 0 && out >= 0 ? 0 : -1;
    while (rc == 0) {
        ssize_t r = read(in, piece, PIECE);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -1 : 0;
            break;
        }
        for (ssize_t done = 0; done < r;) {
            ssize_t w = write(out, piece + done, (size_t)(r - done));
            if (w <= 0) {
                rc = -1;
                break;
            }
            done += w;
        }
    }
    if (rc == 0 && do_fsync && fsync(out) != 0)
        rc = -1;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* One timed upload with the server's RSS sampled: MB/s into *mbps and the
 * RSS growth into *rss; the status. */
static int timed_upload(const bench_server *s, const char *path, int file_fd, uint64_t size,
                        double *mbps, double *rss)
{
    bench_rss_sampler sm;
    double before = bench_proc_rss_mib(s->pid);
    bench_rss_sampler_start(&sm, s->pid);
    uint64_t t0 = bench_now_ns();
    int st = upload(s->port, path, file_fd, size);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    *rss = bench_rss_sampler_stop(&sm) - before;
    *mbps = (double)size / 1e6 / secs;
    return st;
}

/* One timed download of path with the server's RSS sampled: MB/s into
 * *mbps and the RSS growth into *rss; 0 when all bytes came and match
 * want, else -1 (stderr says why). */
static int timed_download(const bench_server *s, const char *path, uint64_t size, uint64_t want,
                          double *mbps, double *rss)
{
    bench_rss_sampler sm;
    uint64_t h = 0;
    double before = bench_proc_rss_mib(s->pid);
    bench_rss_sampler_start(&sm, s->pid);
    uint64_t t0 = bench_now_ns();
    int st = download(s->port, path, size, &h);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    *rss = bench_rss_sampler_stop(&sm) - before;
    if (st != 200 || h != want) {
        fprintf(stderr, "artifacts: download answered %d%s\n", st,
                h != want ? " with different bytes" : "");
        return -1;
    }
    *mbps = (double)size / 1e6 / secs;
    return 0;
}

/* The baseline of the download: read the file; its XXH3 into *hash. */
static int read_file(const char *path, char *piece, uint64_t *hash)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, piece, PIECE);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -1 : 0;
            break;
        }
        XXH3_64bits_update(st, piece, (size_t)r);
    }
    *hash = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    close(fd);
    return rc;
}

/* Writes size bytes of xorshift noise to path (incompressible, like weights). */
static int make_file(const char *path, uint64_t size, char *piece)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int rc = 0;
    for (uint64_t done = 0; done < size && rc == 0;) {
        size_t n = size - done < PIECE ? (size_t)(size - done) : PIECE;
        for (size_t i = 0; i + 8 <= n; i += 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            memcpy(piece + i, &x, 8);
        }
        if (write(fd, piece, n) != (ssize_t)n)
            rc = -1;
        done += n;
    }
    if (fsync(fd) != 0)
        rc = -1;
    close(fd);
    return rc;
}

int bench_suite_artifacts(bench_ctx *c)
{
    uint64_t size = c->quick ? FILE_BYTES_QUICK : FILE_BYTES;
    int reps = c->quick ? 1 : REPS;
    char dir[4200], src[4300], dst[4300];
    bench_subdir(c, "files", dir, sizeof dir);
    snprintf(src, sizeof src, "%s/model.bin", dir);
    snprintf(dst, sizeof dst, "%s/copy.bin", dir);
    char *piece = malloc(PIECE);
    if (!piece || make_file(src, size, piece) != 0) {
        fprintf(stderr, "artifacts: cannot write the %llu-byte test file\n",
                (unsigned long long)size);
        free(piece);
        return 1;
    }
    uint64_t want = 0;
    read_file(src, piece, &want);
    char data[4200], data_always[4200];
    bench_subdir(c, "server", data, sizeof data);
    bench_subdir(c, "server-always", data_always, sizeof data_always);
    bench_server s = {0}, sa = {0};
    static const char *const always_args[] = {"--artifact-fsync", "always", NULL};
    if (bench_server_start(&s, data, NULL, NULL) != 0 ||
        bench_server_start(&sa, data_always, NULL, always_args) != 0) {
        bench_server_stop(&s, SIGTERM);
        free(piece);
        return 1;
    }
    double up[REPS], up_always[REPS], down[REPS], base_up[REPS], base_up_always[REPS],
        base_down[REPS], rss_up[REPS], rss_up_always[REPS], rss_down[REPS];
    int rc = 0;
    int file_fd = open(src, O_RDONLY | O_CLOEXEC);
    const char *path = "1/models/m-bench/artifacts/model.bin";
    char served[4400]; /* the uploaded file in the default server's artifact root */
    snprintf(served, sizeof served, "%s/artifacts/%s", data, path);
    bench_sync_fs(dir);
    for (int r = 0; r < reps && rc == 0; r++) {
        /* Each baseline right before its Tally twin (same cache state). */
        uint64_t t0 = bench_now_ns();
        if (copy_file(src, dst, piece, 1) != 0) {
            fprintf(stderr, "artifacts: baseline copy+fsync failed: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        base_up_always[r] = (double)size / 1e6 / ((double)(bench_now_ns() - t0) / 1e9);
        unlink(dst);
        bench_sync_fs(dir);
        int st = timed_upload(&sa, path, file_fd, size, &up_always[r], &rss_up_always[r]);
        if (st != 200) {
            fprintf(stderr, "artifacts: upload (fsync always) answered %d\n", st);
            rc = 1;
            break;
        }
        bench_sync_fs(dir);

        t0 = bench_now_ns();
        if (copy_file(src, dst, piece, 0) != 0) {
            fprintf(stderr, "artifacts: baseline copy failed: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        base_up[r] = (double)size / 1e6 / ((double)(bench_now_ns() - t0) / 1e9);
        bench_sync_fs(dir);
        unlink(dst);
        bench_sync_fs(dir);
        st = timed_upload(&s, path, file_fd, size, &up[r], &rss_up[r]);
        if (st != 200) {
            fprintf(stderr, "artifacts: upload answered %d\n", st);
            rc = 1;
            break;
        }
        bench_sync_fs(dir); /* the server's background fsync, and the file's writeback */

        uint64_t h = 0;
        if (read_file(served, piece, &h) != 0 || h != want) { /* untimed: into the cache */
            fprintf(stderr, "artifacts: the uploaded file differs from the source\n");
            rc = 1;
            break;
        }
        t0 = bench_now_ns();
        if (read_file(served, piece, &h) != 0) {
            rc = 1;
            break;
        }
        base_down[r] = (double)size / 1e6 / ((double)(bench_now_ns() - t0) / 1e9);
        if (timed_download(&s, path, size, want, &down[r], &rss_down[r]) != 0) {
            rc = 1;
            break;
        }
    }
    if (file_fd >= 0)
        close(file_fd);
    bench_server_stop(&s, SIGTERM);
    bench_server_stop(&sa, SIGTERM);
    free(piece);
    unlink(src);
    if (rc)
        return rc;
    char fig[96];
    unsigned mib = (unsigned)(size >> 20);
    snprintf(fig, sizeof fig, "upload_%umib_mb_per_s", mib);
    bench_report(c, fig, bench_median(up, (size_t)reps), "MB/s", "copy same disk, no fsync",
                 bench_median(base_up, (size_t)reps), 1);
    snprintf(fig, sizeof fig, "upload_%umib_fsync_always_mb_per_s", mib);
    bench_report(c, fig, bench_median(up_always, (size_t)reps), "MB/s", "copy+fsync same disk",
                 bench_median(base_up_always, (size_t)reps), 1);
    snprintf(fig, sizeof fig, "download_%umib_mb_per_s", mib);
    bench_report(c, fig, bench_median(down, (size_t)reps), "MB/s", "read(2) of the file, cached",
                 bench_median(base_down, (size_t)reps), 1);
    bench_report(c, "upload_rss_growth_mib", bench_median(rss_up, (size_t)reps), "MiB", NULL, 0, 0);
    bench_report(c, "upload_fsync_always_rss_growth_mib",
                 bench_median(rss_up_always, (size_t)reps), "MiB", NULL, 0, 0);
    bench_report(c, "download_rss_growth_mib", bench_median(rss_down, (size_t)reps), "MiB", NULL,
                 0, 0);
    return 0;
}
