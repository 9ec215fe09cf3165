/*
 * bench_http.c — the child server, process gauges and the HTTP client of
 * bench_http.h (whole bodies in memory, or streamed from a file / to a
 * sink for the artifact transfers).
 */
#include "bench_http.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include <cjson/cJSON.h>

int bench_server_start(bench_server *s, const char *data_dir, const char *log_path,
                       const char *const *extra_args)
{
    char exe[4096], bin[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    *strrchr(exe, '/') = 0;
    snprintf(bin, sizeof bin, "%s/tally", exe);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "bench: no server binary at %s\n", bin);
        return -1;
    }
    const char *argv[64] = {bin, "serve", "--host", "127.0.0.1", "--port", "0", "--data", data_dir,
                            "--log-requests", "0"};
    int argc = 10;
    for (int i = 0; extra_args && extra_args[i] && argc < 62; i++)
        argv[argc++] = extra_args[i];
    argv[argc] = NULL;
    int out[2];
    if (pipe(out) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        if (log_path) {
            int lf = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (lf >= 0)
                dup2(lf, 2);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    char line[512];
    size_t len = 0;
    while (len < sizeof line - 1) {
        ssize_t r = read(out[0], line + len, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || line[len] == '\n')
            break;
        len++;
    }
    line[len] = 0;
    close(out[0]);
    const char *p = strstr(line, "http://");
    const char *colon = p ? strchr(p + 7, ':') : NULL;
    if (!colon) {
        fprintf(stderr, "bench: server did not start: '%s' (log: %s)\n", line,
                log_path ? log_path : "stderr");
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    s->pid = pid;
    s->port = atoi(colon + 1);
    return 0;
}

int bench_server_stop(bench_server *s, int sig)
{
    if (s->pid <= 0)
        return 0;
    kill(s->pid, sig);
    int status = 0;
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR) {
    }
    s->pid = 0;
    return status;
}

double bench_proc_status_mib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t fl = strlen(field);
    double kb = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            kb = atof(line + fl + 1);
    fclose(f);
    return kb / 1024.0;
}

double bench_proc_rss_mib(pid_t pid)
{
    return bench_proc_status_mib(pid, "VmRSS");
}

static void *rss_sample_loop(void *arg)
{
    bench_rss_sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        double r = bench_proc_rss_mib(s->pid);
        if (r > s->peak)
            s->peak = r;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

void bench_rss_sampler_start(bench_rss_sampler *s, pid_t pid)
{
    s->pid = pid;
    s->peak = bench_proc_rss_mib(pid);
    atomic_init(&s->stop, 0);
    pthread_create(&s->th, NULL, rss_sample_loop, s);
}

double bench_rss_sampler_stop(bench_rss_sampler *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    return s->peak;
}

int bench_proc_open_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int bench_hconn_open(bench_hconn *h, int port)
{
    memset(h, 0, sizeof *h);
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0)
        return -1;
    int one = 1;
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {30, 0};
    setsockopt(h->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(h->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(h->fd);
        h->fd = -1;
        return -1;
    }
    return 0;
}

void bench_hconn_close(bench_hconn *h)
{
    if (h->fd >= 0)
        close(h->fd);
    free(h->buf);
    memset(h, 0, sizeof *h);
    h->fd = -1;
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

/* buf (of *cap bytes) grown to hold at least need, doubling from 64 KiB;
 * the new pointer (*cap updated), or NULL with buf left as it was. */
static void *grow(void *buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return buf;
    size_t c = *cap ? *cap : 1 << 16;
    while (c < need)
        c *= 2;
    void *b = realloc(buf, c);
    if (b)
        *cap = c;
    return b;
}

/* Reads until h->len >= need, keeping one byte of room for a NUL. */
static int fill(bench_hconn *h, size_t need)
{
    while (h->len < need) {
        char *b = grow(h->buf, &h->cap, need + 65536);
        if (!b)
            return -1;
        h->buf = b;
        ssize_t r = recv(h->fd, h->buf + h->len, h->cap - h->len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        h->len += (size_t)r;
    }
    return 0;
}

/* Sends the request line and headers announcing body_len body bytes. */
static int send_head(bench_hconn *h, const char *method, const char *path, const char *ctype,
                     uint64_t body_len)
{
    if (h->fd < 0)
        return -1;
    char head[8192];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n%s%s%s"
                     "Content-Length: %llu\r\n\r\n",
                     method, path, ctype ? ctype : "application/json",
                     h->auth ? "Authorization: " : "", h->auth ? h->auth : "",
                     h->auth ? "\r\n" : "", (unsigned long long)body_len);
    if (n < 0 || (size_t)n >= sizeof head)
        return -1;
    return send_all(h->fd, head, (size_t)n);
}

/* Reads the answer up to the end of its headers (and whatever body bytes
 * came with them); the status, the head's size in *hdr and the body's
 * Content-Length in *clen, or -1. */
static int read_head(bench_hconn *h, size_t *hdr, uint64_t *clen)
{
    h->len = 0;
    h->body_off = h->body_len = 0;
    char *end = NULL;
    while (!end) {
        if (fill(h, h->len + 1) != 0)
            return -1;
        h->buf[h->len] = 0;
        end = strstr(h->buf, "\r\n\r\n");
    }
    *hdr = (size_t)(end - h->buf) + 4;
    int status = atoi(h->buf + 9);
    const char *cl = strcasestr(h->buf, "\r\ncontent-length:");
    if (!cl || cl > end)
        return -1;
    *clen = (uint64_t)strtoull(cl + 17, NULL, 10);
    return status;
}

/* Reads the body of an answer whose head read_head read, into h->buf. */
static int read_body(bench_hconn *h, int status, size_t hdr, uint64_t clen)
{
    if (status < 0 || fill(h, hdr + (size_t)clen) != 0)
        return -1;
    h->body_off = hdr;
    h->body_len = (size_t)clen;
    h->buf[hdr + clen] = 0;
    return status;
}

int bench_hreq(bench_hconn *h, const char *method, const char *path, const char *ctype,
               const void *body, size_t body_len)
{
    if (send_head(h, method, path, ctype, body_len) != 0 ||
        (body_len && send_all(h->fd, body, body_len) != 0))
        return -1;
    size_t hdr;
    uint64_t clen;
    int status = read_head(h, &hdr, &clen);
    return read_body(h, status, hdr, clen);
}

const char *bench_hbody(const bench_hconn *h)
{
    return h->buf ? h->buf + h->body_off : "";
}

int bench_hreq_file(bench_hconn *h, const char *method, const char *path, const char *ctype,
                    int file_fd, uint64_t size)
{
    if (send_head(h, method, path, ctype, size) != 0)
        return -1;
    off_t off = 0;
    while ((uint64_t)off < size) {
        ssize_t w = sendfile(h->fd, file_fd, &off, (size_t)(size - (uint64_t)off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
    }
    size_t hdr;
    uint64_t clen;
    int status = read_head(h, &hdr, &clen);
    return read_body(h, status, hdr, clen);
}

int bench_hreq_sink(bench_hconn *h, const char *method, const char *path, size_t piece,
                    bench_hsink sink, void *arg)
{
    if (send_head(h, method, path, NULL, 0) != 0)
        return -1;
    size_t hdr;
    uint64_t clen;
    int status = read_head(h, &hdr, &clen);
    if (status < 0)
        return -1;
    /* Body bytes that came with the head, then the rest piece by piece
     * into the room after the head. */
    uint64_t got = h->len - hdr < clen ? h->len - hdr : clen;
    if (got)
        sink(arg, h->buf + hdr, (size_t)got);
    char *b = grow(h->buf, &h->cap, hdr + piece + 1);
    if (!b)
        return -1;
    h->buf = b;
    while (got < clen) {
        size_t want = clen - got < piece ? (size_t)(clen - got) : piece;
        ssize_t r = recv(h->fd, h->buf + hdr, want, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        sink(arg, h->buf + hdr, (size_t)r);
        got += (uint64_t)r;
    }
    h->len = hdr;
    h->body_off = hdr;
    h->body_len = 0;
    h->buf[hdr] = 0;
    return status;
}

int bench_create_run(bench_hconn *h, const char *exp_name, char run_id[64])
{
    char body[512];
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", exp_name);
    int st = bench_hreq(h, "POST", "/api/2.0/mlflow/experiments/create", NULL, body, strlen(body));
    char exp_id[64] = "";
    if (st == 200 || st == 400) {
        if (st == 400) { /* exists already */
            char path[600];
            snprintf(path, sizeof path, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=%s",
                     exp_name);
            if (bench_hreq(h, "GET", path, NULL, NULL, 0) != 200)
                return -1;
        }
        cJSON *j = cJSON_Parse(bench_hbody(h));
        const cJSON *id = cJSON_GetObjectItem(j, "experiment_id");
        if (!id) {
            const cJSON *e = cJSON_GetObjectItem(j, "experiment");
            id = cJSON_GetObjectItem(e, "experiment_id");
        }
        if (cJSON_IsString(id) && strlen(id->valuestring) < sizeof exp_id)
            snprintf(exp_id, sizeof exp_id, "%s", id->valuestring);
        cJSON_Delete(j);
    }
    if (!*exp_id)
        return -1;
    snprintf(body, sizeof body, "{\"experiment_id\":\"%s\",\"start_time\":1}", exp_id);
    if (bench_hreq(h, "POST", "/api/2.0/mlflow/runs/create", NULL, body, strlen(body)) != 200)
        return -1;
    cJSON *j = cJSON_Parse(bench_hbody(h));
    const cJSON *id = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "run"), "info"),
                                          "run_id");
    int rc = -1;
    if (cJSON_IsString(id) && strlen(id->valuestring) < 64) {
        snprintf(run_id, 64, "%s", id->valuestring);
        rc = 0;
    }
    cJSON_Delete(j);
    return rc;
}

int bench_frame_begin(bench_frame *f)
{
    static const uint8_t hdr[32] = {'T', 'L', 'Y', 'F', 1}; /* version 1, flags 0 */
    f->len = 0;
    f->n_series = f->n_points = 0;
    uint8_t *q = grow(f->p, &f->cap, sizeof hdr);
    if (!q)
        return -1;
    f->p = q;
    memcpy(f->p, hdr, sizeof hdr);
    f->len = sizeof hdr;
    return 0;
}

int bench_frame_series(bench_frame *f, const char *run, const char *key, uint32_t n,
                       int64_t **steps, int64_t **ts, double **vals)
{
    size_t rl = strlen(run), kl = strlen(key);
    size_t pad = (8 - ((8 + rl + kl) & 7)) & 7;
    size_t need = f->len + 8 + rl + kl + pad + 24 * (size_t)n;
    uint8_t *q = grow(f->p, &f->cap, need);
    if (!q)
        return -1;
    f->p = q;
    uint8_t *p = f->p + f->len;
    uint16_t rl16 = (uint16_t)rl, kl16 = (uint16_t)kl;
    memcpy(p, &rl16, 2);
    memcpy(p + 2, &kl16, 2);
    memcpy(p + 4, &n, 4);
    memcpy(p + 8, run, rl);
    memcpy(p + 8 + rl, key, kl);
    memset(p + 8 + rl + kl, 0, pad);
    /* The record starts 8-aligned and its head is padded to 8: so are the
     * columns (the host is little-endian, as the format). */
    int64_t *cols = (int64_t *)(void *)(p + 8 + rl + kl + pad);
    *steps = cols;
    *ts = cols + n;
    *vals = (double *)(void *)(cols + 2 * (size_t)n);
    f->len = need;
    f->n_series++;
    f->n_points += n;
    return 0;
}

void bench_frame_end(bench_frame *f)
{
    uint32_t payload = (uint32_t)(f->len - 32);
    memcpy(f->p + 8, &f->n_series, 4);
    memcpy(f->p + 12, &f->n_points, 4);
    memcpy(f->p + 16, &payload, 4);
    memcpy(f->p + 20, &payload, 4);
    uint64_t x = XXH3_64bits(f->p + 32, payload);
    memcpy(f->p + 24, &x, 8);
}

void bench_frame_free(bench_frame *f)
{
    free(f->p);
    memset(f, 0, sizeof *f);
}

int bench_frame_one(const char *run, const char *key, uint32_t n, const int64_t *steps,
                    const int64_t *ts, const double *vals, uint8_t **out, size_t *len)
{
    bench_frame f = {0};
    int64_t *st, *t;
    double *v;
    if (bench_frame_begin(&f) != 0 || bench_frame_series(&f, run, key, n, &st, &t, &v) != 0) {
        bench_frame_free(&f);
        return -1;
    }
    memcpy(st, steps, 8 * (size_t)n);
    memcpy(t, ts, 8 * (size_t)n);
    memcpy(v, vals, 8 * (size_t)n);
    bench_frame_end(&f);
    *out = f.p;
    *len = f.len;
    return 0;
}
