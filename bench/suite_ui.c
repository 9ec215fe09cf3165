/*
 * suite_ui.c — the `ui` suite of tally-bench: the web UI in headless
 * Chromium against a seeded `tally serve` (the binary next to tally-bench).
 *
 * Seed (never timed): one experiment of RUNS runs (--quick: RUNS_QUICK),
 * each with params lr/opt/layers (log-batch) and short `loss` and `acc`
 * curves of SHORT_STEPS points (native ingest), except LONG_RUNS runs tagged
 * long=yes whose `loss` has LONG_STEPS points (--quick: LONG_STEPS_QUICK),
 * loaded through tally/ingest frames of 16 series x 65,536 points. Values
 * are a decaying curve plus deterministic noise, so M4 keeps 4 distinct
 * points in most pixel columns (the bytes figure's worst case).
 *
 * Then ui/bench/ui_bench.mjs (node + playwright-core + Debian chromium)
 * measures, medians over REPS fresh pages (--quick: REPS_QUICK):
 *   runs_first_screen_ms       navigation to the runs page until the first
 *                              screen of rows is painted
 *   compare_click_to_paint_ms  click "Compare first 100" (filter
 *                              tags.long = 'yes') until the chart is painted
 *   compare_bytes              bytes transferred for that chart's data
 *   zoom_repaint_ms            one wheel event zooming to 1 % of the range
 *                              until the chart is repainted from the new query
 *   ui_js_bytes, ui_js_bytes_brotli  the app's JavaScript as the server sends
 *                              it (identity; brotli)
 * with baselines measured in the same browser and run: MLflow's own way to
 * chart many runs (get-history-bulk-interval, at most 2500 sampled steps per
 * run; not exact), fetched and parsed, for the whole range and for the zoom.
 *
 * Needs node, ui/node_modules (ui/npm-ci.sh) and chromium; the ui directory
 * comes from $TALLY_UI_DIR or the source tree this binary was built from.
 *
 * Invariants: the child server is always stopped; a figure the script did
 * not print is not reported and the suite returns nonzero.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#define RUNS 10000
#define RUNS_QUICK 1000
#define LONG_RUNS 100
#define LONG_STEPS 1000000
#define LONG_STEPS_QUICK 20000
#define SHORT_STEPS 100
#define REPS 5
#define REPS_QUICK 2
#define FRAME_SERIES 16
#define FRAME_POINTS 65536

#ifndef TALLY_UI_DIR
#define TALLY_UI_DIR "ui"
#endif

/* ------------------------------------------------------------------------ */
/* The child server and a keep-alive HTTP/1.1 client                         */
/* ------------------------------------------------------------------------ */

typedef struct child {
    pid_t pid;
    int port;
} child;

static int child_start(bench_ctx *c, child *s)
{
    char exe[4096], bin[4200], data[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    *strrchr(exe, '/') = 0;
    snprintf(bin, sizeof bin, "%s/tally", exe);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "ui: no server binary at %s\n", bin);
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
        /* async durability: seeding speed only; every figure is a read */
        execl(bin, bin, "serve", "--host", "127.0.0.1", "--port", "0", "--data", data,
              "--log-requests", "0", "--durability", "async", "--memory-budget", "1G",
              (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[512];
    size_t len = 0;
    while (len < sizeof line - 1 && read(out[0], line + len, 1) == 1 && line[len] != '\n')
        len++;
    line[len] = 0;
    close(out[0]);
    const char *p = strstr(line, "http://");
    const char *colon = p ? strchr(p + 7, ':') : NULL;
    if (!colon) {
        fprintf(stderr, "ui: server did not start: '%s'\n", line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    s->pid = pid;
    s->port = atoi(colon + 1);
    return 0;
}

static void child_stop(child *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

typedef struct conn {
    int fd;
    char *buf;
    size_t cap, len, body_off, body_len;
} conn;

static int conn_open(conn *h, int port)
{
    memset(h, 0, sizeof *h);
    h->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (h->fd < 0)
        return -1;
    int one = 1;
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return connect(h->fd, (struct sockaddr *)&a, sizeof a);
}

static void conn_close(conn *h)
{
    if (h->fd >= 0)
        close(h->fd);
    free(h->buf);
    memset(h, 0, sizeof *h);
    h->fd = -1;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fill(conn *h, size_t need)
{
    while (h->len < need) {
        if (h->cap < need + 65536) {
            size_t cap = h->cap ? h->cap : 1 << 16;
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

/* One request; the status, the body NUL-terminated at h->buf + body_off. */
static int request(conn *h, const char *path, const char *ctype, const void *body, size_t n)
{
    char head[1024];
    int hl = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      path, ctype, n);
    if (send_all(h->fd, head, (size_t)hl) != 0 || (n && send_all(h->fd, body, n) != 0))
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
    const char *cl = strcasestr(h->buf, "\r\ncontent-length:");
    if (!cl || cl > end)
        return -1;
    size_t clen = (size_t)strtoull(cl + 17, NULL, 10);
    int status = atoi(h->buf + 9);
    if (fill(h, hdr + clen) != 0)
        return -1;
    h->buf[hdr + clen] = 0;
    h->body_off = hdr;
    h->body_len = clen;
    return status;
}

static int post_json(conn *h, const char *path, const char *json)
{
    int st = request(h, path, "application/json", json, strlen(json));
    if (st != 200)
        fprintf(stderr, "ui: %s answered %d: %.300s\n", path, st,
                st > 0 ? h->buf + h->body_off : "(no answer)");
    return st == 200 ? 0 : -1;
}

/* The string value of "field":"..." in the last body. */
static int field(conn *h, const char *name, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", name);
    const char *p = strstr(h->buf + h->body_off, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Seeding                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct frame {
    uint8_t *p;
    size_t len, cap;
} frame;

static int reserve(frame *f, size_t more)
{
    if (f->len + more <= f->cap)
        return 0;
    size_t cap = f->cap ? f->cap : 1 << 20;
    while (cap < f->len + more)
        cap *= 2;
    uint8_t *q = realloc(f->p, cap);
    if (!q)
        return -1;
    f->p = q;
    f->cap = cap;
    return 0;
}

static int fput(frame *f, const void *p, size_t n)
{
    if (reserve(f, n) != 0)
        return -1;
    memcpy(f->p + f->len, p, n);
    f->len += n;
    return 0;
}

/* A run's curve: a_i exp(-s / tau) + floor_i, plus noise (hash of i, s). */
static double curve(uint32_t run, int64_t s, int64_t steps, int acc)
{
    double a = 2.0 + (run % 7) * 0.3, fl = 0.05 + (run % 50) * 0.004;
    double tau = (double)steps / (3.0 + run % 4);
    uint64_t hsh = XXH3_64bits_withSeed(&s, sizeof s, run);
    double noise = ((double)(hsh >> 11) / 9007199254740992.0 - 0.5) * 0.04;
    double loss = a * exp(-(double)s / tau) + fl + noise;
    return acc ? 1.0 - loss / 3.0 : loss;
}

/* Starts a frame (header filled by frame_end). */
static int frame_begin(frame *f)
{
    static const uint8_t hdr[32] = {'T', 'L', 'Y', 'F', 1, 0, 0, 0};
    f->len = 0;
    return fput(f, hdr, 32);
}

/* Appends one series: steps [first, first + n) of run's curve. */
static int frame_series(frame *f, const char *run, uint32_t run_no, const char *key, int64_t first,
                        uint32_t n, int64_t total_steps)
{
    uint16_t rl = (uint16_t)strlen(run), kl = (uint16_t)strlen(key);
    uint8_t rec[8] = {(uint8_t)rl, (uint8_t)(rl >> 8), (uint8_t)kl, (uint8_t)(kl >> 8)};
    memcpy(rec + 4, &n, 4);
    static const uint8_t zero[8] = {0};
    if (fput(f, rec, 8) || fput(f, run, rl) || fput(f, key, kl) ||
        fput(f, zero, (8 - ((8 + rl + kl) & 7)) & 7))
        return -1;
    size_t at = f->len; /* a multiple of 8: the columns are aligned */
    if (reserve(f, 24 * (size_t)n) != 0)
        return -1;
    int64_t *st = (int64_t *)(void *)(f->p + at);
    int64_t *ts = st + n;
    double *v = (double *)(void *)(ts + n);
    int acc = strcmp(key, "acc") == 0;
    for (uint32_t k = 0; k < n; k++) {
        int64_t s = first + k;
        st[k] = s;
        ts[k] = 1700000000000 + (int64_t)run_no * 1000 + s * 50;
        v[k] = curve(run_no, s, total_steps, acc);
    }
    f->len = at + 24 * (size_t)n;
    return 0;
}

static int frame_send(conn *h, frame *f, uint32_t n_series, uint32_t n_points)
{
    uint32_t payload = (uint32_t)(f->len - 32);
    memcpy(f->p + 8, &n_series, 4);
    memcpy(f->p + 12, &n_points, 4);
    memcpy(f->p + 16, &payload, 4);
    memcpy(f->p + 20, &payload, 4);
    uint64_t x = XXH3_64bits(f->p + 32, payload);
    memcpy(f->p + 24, &x, 8);
    int st;
    while ((st = request(h, "/api/2.0/tally/ingest", "application/octet-stream", f->p, f->len)) ==
           429)
        usleep(20000);
    if (st != 200)
        fprintf(stderr, "ui: ingest answered %d\n", st);
    return st == 200 ? 0 : -1;
}

static int seed(conn *h, int quick, char *exp_id, size_t cap)
{
    int n_runs = quick ? RUNS_QUICK : RUNS;
    int64_t long_steps = quick ? LONG_STEPS_QUICK : LONG_STEPS;
    if (post_json(h, "/api/2.0/mlflow/experiments/create", "{\"name\":\"bench-ui\"}") ||
        field(h, "experiment_id", exp_id, cap))
        return -1;
    char (*ids)[40] = calloc((size_t)n_runs, sizeof *ids);
    frame f = {0};
    int rc = -1;
    if (!ids)
        return -1;
    char body[1024];
    int every = n_runs / LONG_RUNS;
    for (int i = 0; i < n_runs; i++) {
        int is_long = i % every == 0;
        snprintf(body, sizeof body,
                 "{\"experiment_id\":\"%s\",\"run_name\":\"run-%05d\",\"start_time\":%lld,"
                 "\"tags\":[{\"key\":\"long\",\"value\":\"%s\"}]}",
                 exp_id, i, 1700000000000LL + i * 1000LL, is_long ? "yes" : "no");
        if (post_json(h, "/api/2.0/mlflow/runs/create", body) || field(h, "run_id", ids[i], 40))
            goto out;
        snprintf(body, sizeof body,
                 "{\"run_id\":\"%s\",\"params\":[{\"key\":\"lr\",\"value\":\"%g\"},"
                 "{\"key\":\"opt\",\"value\":\"%s\"},{\"key\":\"layers\",\"value\":\"%d\"}]}",
                 ids[i], (double[]){0.1, 0.03, 0.01, 0.003}[i % 4], i % 2 ? "adam" : "sgd",
                 2 + i % 5);
        if (post_json(h, "/api/2.0/mlflow/runs/log-batch", body))
            goto out;
    }
    /* short curves: 64 runs x {loss, acc} per frame */
    for (int i = 0; i < n_runs;) {
        if (frame_begin(&f))
            goto out;
        uint32_t ns = 0;
        for (int k = 0; k < 64 && i < n_runs; i++) {
            if (i % every == 0)
                continue;
            if (frame_series(&f, ids[i], (uint32_t)i, "loss", 0, SHORT_STEPS, SHORT_STEPS) ||
                frame_series(&f, ids[i], (uint32_t)i, "acc", 0, SHORT_STEPS, SHORT_STEPS))
                goto out;
            ns += 2;
            k++;
        }
        if (ns && frame_send(h, &f, ns, ns * SHORT_STEPS))
            goto out;
    }
    /* long curves: FRAME_SERIES series x FRAME_POINTS points per frame */
    for (int64_t first = 0; first < long_steps; first += FRAME_POINTS) {
        uint32_t pts = (uint32_t)(long_steps - first < FRAME_POINTS ? long_steps - first
                                                                    : FRAME_POINTS);
        for (int i = 0; i < n_runs;) {
            if (frame_begin(&f))
                goto out;
            uint32_t ns = 0;
            for (; i < n_runs && ns < FRAME_SERIES; i += every, ns++)
                if (frame_series(&f, ids[i], (uint32_t)i, "loss", first, pts, long_steps))
                    goto out;
            if (frame_send(h, &f, ns, ns * pts))
                goto out;
        }
    }
    rc = 0;
out:
    free(ids);
    free(f.p);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The browser half                                                          */
/* ------------------------------------------------------------------------ */

static int run_browser(bench_ctx *c, int port, const char *exp_id, int64_t steps)
{
    const char *ui = getenv("TALLY_UI_DIR");
    if (!ui || !*ui)
        ui = TALLY_UI_DIR;
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && sh ./npm-ci.sh >&2 && node bench/ui_bench.mjs http://127.0.0.1:%d '%s' "
             "\"tags.long = 'yes'\" %lld --reps %d",
             ui, port, exp_id, (long long)steps, c->quick ? REPS_QUICK : REPS);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        char name[128], unit[32], base[128], bv[64];
        double value;
        int hib;
        if (sscanf(line, "FIG %127s %lf %31s %127s %63s %d", name, &value, unit, base, bv, &hib) !=
            6) {
            fputs(line, stderr);
            continue;
        }
        int has_base = strcmp(base, "-") != 0;
        bench_report(c, name, value, unit, has_base ? base : NULL, has_base ? atof(bv) : 0, hib);
        n++;
    }
    int st = pclose(p);
    if (st != 0 || n != 6) {
        fprintf(stderr, "ui: the browser script failed (status %d, %d of 6 figures)\n", st, n);
        return -1;
    }
    return 0;
}

int bench_suite_ui(bench_ctx *c)
{
    child s = {0};
    conn h = {.fd = -1};
    int rc = -1;
    char exp_id[40];
    int64_t steps = c->quick ? LONG_STEPS_QUICK : LONG_STEPS;
    if (child_start(c, &s) != 0)
        return -1;
    if (conn_open(&h, s.port) != 0) {
        fprintf(stderr, "ui: cannot connect to the server\n");
        goto out;
    }
    uint64_t t0 = bench_now_ns();
    if (seed(&h, c->quick, exp_id, sizeof exp_id) != 0)
        goto out;
    fprintf(stderr, "ui: seeded %d runs (%d x %lld steps) in %.1f s\n",
            c->quick ? RUNS_QUICK : RUNS, LONG_RUNS, (long long)steps,
            (double)(bench_now_ns() - t0) / 1e9);
    conn_close(&h);
    rc = run_browser(c, s.port, exp_id, steps);
out:
    conn_close(&h);
    child_stop(&s);
    return rc;
}
