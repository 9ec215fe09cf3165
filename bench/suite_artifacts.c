/*
 * suite_artifacts.c — the `artifacts` suite of tally-bench: the artifact
 * proxy (mlflow-artifacts, docs/api.md) moving one large file over
 * loopback. Starts `tally serve` (the binary next to tally-bench) as a
 * child on a scratch data directory, writes a FILE_BYTES file of
 * pseudo-random bytes in the scratch directory, then:
 *
 *   upload_mb_per_s     PUT mlflow-artifacts/artifacts/<path> of the file,
 *        sent with sendfile(2) (the client costs next to nothing); the clock
 *        stops at the server's 200, i.e. after its fsync and rename.
 *        Baseline: copying the same file to the same disk with read/write
 *        in 1 MiB pieces plus fsync (what the server must do at least).
 *   download_mb_per_s   GET of the uploaded file, received into a 1 MiB
 *        buffer and dropped. Baseline: read(2) of the same file in 1 MiB
 *        pieces (both come from the page cache).
 *   upload_rss_growth_mib / download_rss_growth_mib  the server's peak
 *        VmRSS during the transfer, sampled every 10 ms from /proc, minus
 *        its VmRSS just before (no baseline; the target is 16 MiB).
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

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define FILE_BYTES ((uint64_t)1 << 30)
#define FILE_BYTES_QUICK ((uint64_t)256 << 20)
#define REPS 3
#define PIECE (1u << 20)

typedef struct server {
    pid_t pid;
    int port;
} server;

static int server_start(bench_ctx *c, server *s)
{
    char exe[4096], bin[4200], data[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    *strrchr(exe, '/') = 0;
    snprintf(bin, sizeof bin, "%s/tally", exe);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "artifacts: no server binary at %s\n", bin);
        return -1;
    }
    bench_subdir(c, "server", data, sizeof data);
    int out[2];
    if (pipe(out) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(bin, bin, "serve", "--host", "127.0.0.1", "--port", "0", "--data", data,
              "--log-requests", "0", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[512];
    size_t len = 0;
    while (len < sizeof line - 1) {
        ssize_t r = read(out[0], line + len, 1);
        if (r <= 0 || line[len] == '\n')
            break;
        len++;
    }
    line[len] = 0;
    close(out[0]);
    const char *p = strstr(line, "http://");
    const char *colon = p ? strchr(p + 7, ':') : NULL;
    if (!colon) {
        fprintf(stderr, "artifacts: server did not start: '%s'\n", line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    s->pid = pid;
    s->port = atoi(colon + 1);
    return 0;
}

static void server_stop(server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

static double rss_mib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    double kb = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atof(line + 6);
    fclose(f);
    return kb / 1024.0;
}

/* Peak RSS of a process while a transfer runs. */
typedef struct sampler {
    pthread_t th;
    pid_t pid;
    atomic_int stop;
    double peak;
} sampler;

static void *sample_loop(void *arg)
{
    sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        double r = rss_mib(s->pid);
        if (r > s->peak)
            s->peak = r;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void sampler_start(sampler *s, pid_t pid)
{
    s->pid = pid;
    s->peak = rss_mib(pid);
    atomic_init(&s->stop, 0);
    pthread_create(&s->th, NULL, sample_loop, s);
}

static double sampler_stop(sampler *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    return s->peak;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads the response head into buf (NUL-terminated); returns the status
 * and leaves any body bytes already read at *body (count *n_body). */
static int read_head(int fd, char *buf, size_t cap, char **body, size_t *n_body)
{
    size_t len = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            *body = end + 4;
            *n_body = len - (size_t)(end + 4 - buf);
            return atoi(buf + 9);
        }
        if (len + 1 >= cap)
            return -1;
    }
}

/* PUT the file; 200 or -1. */
static int upload(int port, const char *path, int file_fd, uint64_t size)
{
    int fd = connect_to(port);
    if (fd < 0)
        return -1;
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "PUT /api/2.0/mlflow-artifacts/artifacts/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/octet-stream\r\nContent-Length: %llu\r\n\r\n",
                     path, (unsigned long long)size);
    int status = -1;
    if (send_all(fd, head, (size_t)n) == 0) {
        off_t off = 0;
        while ((uint64_t)off < size) {
            ssize_t w = sendfile(fd, file_fd, &off, size - (uint64_t)off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
        }
        char buf[4096], *body;
        size_t nb;
        if ((uint64_t)off == size)
            status = read_head(fd, buf, sizeof buf, &body, &nb);
    }
    close(fd);
    return status;
}

/* GET the file; its XXH3 into *hash. 200 or -1. */
static int download(int port, const char *path, uint64_t size, uint64_t *hash, char *piece)
{
    int fd = connect_to(port);
    if (fd < 0)
        return -1;
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "GET /api/2.0/mlflow-artifacts/artifacts/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "\r\n",
                     path);
    int status = -1;
    XXH3_state_t *st = XXH3_createState();
    if (st && send_all(fd, head, (size_t)n) == 0) {
        XXH3_64bits_reset(st);
        char buf[4096], *body;
        size_t nb;
        status = read_head(fd, buf, sizeof buf, &body, &nb);
        uint64_t got = nb;
        XXH3_64bits_update(st, body, nb);
        while (status == 200 && got < size) {
            ssize_t r = recv(fd, piece, PIECE, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                status = -1;
                break;
            }
            XXH3_64bits_update(st, piece, (size_t)r);
            got += (uint64_t)r;
        }
        if (got != size)
            status = -1;
        *hash = XXH3_64bits_digest(st);
    }
    XXH3_freeState(st);
    close(fd);
    return status;
}

/* The baseline of the upload: copy src to dst with read/write + fsync. */
static int copy_fsync(const char *src, const char *dst, char *piece)
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
    if (rc == 0 && fsync(out) != 0)
        rc = -1;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
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
    server s = {0};
    if (server_start(c, &s) != 0) {
        free(piece);
        return 1;
    }
    double up[REPS], down[REPS], base_up[REPS], base_down[REPS], rss_up[REPS], rss_down[REPS];
    int rc = 0;
    int file_fd = open(src, O_RDONLY | O_CLOEXEC);
    const char *path = "1/models/m-bench/artifacts/model.bin";
    for (int r = 0; r < reps && rc == 0; r++) {
        /* Baselines first, each right before its Tally twin (same cache state). */
        uint64_t t0 = bench_now_ns();
        if (copy_fsync(src, dst, piece) != 0) {
            fprintf(stderr, "artifacts: baseline copy failed: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        base_up[r] = (double)size / 1e6 / ((double)(bench_now_ns() - t0) / 1e9);
        unlink(dst);

        sampler sm;
        double before = rss_mib(s.pid);
        sampler_start(&sm, s.pid);
        t0 = bench_now_ns();
        int st = upload(s.port, path, file_fd, size);
        double secs = (double)(bench_now_ns() - t0) / 1e9;
        rss_up[r] = sampler_stop(&sm) - before;
        if (st != 200) {
            fprintf(stderr, "artifacts: upload answered %d\n", st);
            rc = 1;
            break;
        }
        up[r] = (double)size / 1e6 / secs;

        uint64_t h = 0;
        t0 = bench_now_ns();
        if (read_file(src, piece, &h) != 0) {
            rc = 1;
            break;
        }
        base_down[r] = (double)size / 1e6 / ((double)(bench_now_ns() - t0) / 1e9);

        before = rss_mib(s.pid);
        sampler_start(&sm, s.pid);
        t0 = bench_now_ns();
        st = download(s.port, path, size, &h, piece);
        secs = (double)(bench_now_ns() - t0) / 1e9;
        rss_down[r] = sampler_stop(&sm) - before;
        if (st != 200 || h != want) {
            fprintf(stderr, "artifacts: download answered %d%s\n", st,
                    h != want ? " with different bytes" : "");
            rc = 1;
            break;
        }
        down[r] = (double)size / 1e6 / secs;
    }
    if (file_fd >= 0)
        close(file_fd);
    server_stop(&s);
    free(piece);
    unlink(src);
    if (rc)
        return rc;
    char fig[96];
    unsigned mib = (unsigned)(size >> 20);
    snprintf(fig, sizeof fig, "upload_%umib_mb_per_s", mib);
    bench_report(c, fig, bench_median(up, (size_t)reps), "MB/s", "copy+fsync same disk",
                 bench_median(base_up, (size_t)reps), 1);
    snprintf(fig, sizeof fig, "download_%umib_mb_per_s", mib);
    bench_report(c, fig, bench_median(down, (size_t)reps), "MB/s", "read(2) of the file",
                 bench_median(base_down, (size_t)reps), 1);
    bench_report(c, "upload_rss_growth_mib", bench_median(rss_up, (size_t)reps), "MiB", NULL, 0, 0);
    bench_report(c, "download_rss_growth_mib", bench_median(rss_down, (size_t)reps), "MiB", NULL,
                 0, 0);
    return 0;
}
