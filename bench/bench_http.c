/*
 * bench_http.c — child server and keep-alive HTTP client for the suites
 * (bench_http.h).
 */
#include "bench_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int bench_server_start(bench_ctx *c, const char *name, const char *const *extra,
                       bench_server *s)
{
    char exe[4096], bin[4200], data[4200];
    memset(s, 0, sizeof *s);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    snprintf(bin, sizeof bin, "%s/tally", exe);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "%s: no server binary at %s\n", c->suite, bin);
        return -1;
    }
    bench_subdir(c, name, data, sizeof data);
    const char *argv[32] = {bin, "serve", "--host", "127.0.0.1", "--port", "0", "--data", data,
                            "--log-requests", "0"};
    size_t argc = 10;
    for (size_t i = 0; extra && extra[i] && argc < 31; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
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
        execv(bin, (char *const *)argv);
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
        fprintf(stderr, "%s: server did not start: '%s'\n", c->suite, line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    s->pid = pid;
    s->port = atoi(colon + 1);
    return 0;
}

void bench_server_stop(bench_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

int bench_http_open(bench_http *h, int port)
{
    memset(h, 0, sizeof *h);
    h->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (h->fd < 0)
        return -1;
    int one = 1;
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
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

void bench_http_close(bench_http *h)
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

/* Reads until h->len >= need, keeping one spare byte for a NUL. */
static int fill(bench_http *h, size_t need)
{
    while (h->len < need) {
        if (h->cap < need + 65536) {
            size_t cap = h->cap ? h->cap : 1 << 20;
            while (cap < need + 65536)
                cap *= 2;
            char *b = realloc(h->buf, cap);
            if (!b)
                return -1;
            h->buf = b;
            h->cap = cap;
        }
        ssize_t r = recv(h->fd, h->buf + h->len, h->cap - h->len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        h->len += (size_t)r;
    }
    return 0;
}

int bench_http_req(bench_http *h, const char *method, const char *path, const char *ctype,
                   const void *body, size_t body_len)
{
    char head[8192];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, ctype ? ctype : "application/json", body_len);
    if (n < 0 || (size_t)n >= sizeof head || send_all(h->fd, head, (size_t)n) != 0 ||
        (body_len && send_all(h->fd, body, body_len) != 0))
        return -1;
    h->len = 0;
    char *end = NULL;
    while (!end) {
        if (fill(h, h->len + 1) != 0)
            return -1;
        h->buf[h->len] = 0;
        end = strstr(h->buf, "\r\n\r\n");
    }
    size_t hdr = (size_t)(end - h->buf) + 4;
    int status = atoi(h->buf + 9);
    const char *cl = strcasestr(h->buf, "\r\ncontent-length:");
    if (!cl || cl > end)
        return -1;
    size_t clen = (size_t)strtoull(cl + 17, NULL, 10);
    if (fill(h, hdr + clen) != 0)
        return -1;
    h->buf[hdr + clen] = 0;
    h->body = h->buf + hdr;
    h->body_len = clen;
    /* Bytes past this response would belong to a pipelined one: we never
     * pipeline, so there are none. */
    return status;
}
