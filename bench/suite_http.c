/*
 * suite_http.c — the `http` suite of tally-bench: the server end to end, as
 * clients see it. Starts `tally serve` (the binary next to tally-bench) as a
 * child on a scratch data directory, creates runs through the MLflow API,
 * then drives it with the in-process HTTP/1.1 keep-alive client of
 * bench_http.h (one connection per thread). Figures:
 *
 *   logbatch_metrics_per_s         POST mlflow/runs/log-batch, 1000 metrics
 *        (10 keys x 100 steps) per request, CONNS connections in CONNS
 *        threads, request bodies built before the clock starts, after an
 *        untimed warm-up of LB_WARMUP requests per connection to other runs
 *        (the server is a fresh process: its first requests fault its memory
 *        in, which on a VM that returns freed memory to its host can cost a
 *        third of a short run). Also logbatch_request_p50_ms /
 *        logbatch_request_p99_ms over all timed requests.
 *   native_ingest_points_per_s     POST tally/ingest, frames of 64 series x
 *        2048 points (uncompressed; encoded by this client between requests,
 *        which is inside the clock, as a real client's would be), CONNS
 *        threads.
 *   server_rss_mib_while_ingesting the child's peak VmRSS sampled every 20
 *        ms during the native ingest phase, against the configured engine
 *        memory budget (ratio > 1: the whole server stayed under it).
 *   server_rss_mib_ingesting_<N>m_points  the same, sampled every 10 ms
 *        while the M4 figure's data (100 runs x 1M steps = 100 M points;
 *        --quick: 2 M) is ingested through tally/ingest, 16 series x 65536
 *        points a frame, one connection.
 *   get_history_1m_points_s        one series of 1M points read through
 *        mlflow/metrics/get-history with max_results=25000, following every
 *        page token; one connection; median of REPS_HISTORY.
 *   native_m4_<R>runs_{p50,p99}_ms POST tally/query, R runs x one key, M4, W
 *        = 1000, binary columns; R = 100 runs x 1M steps (--quick: 100 x
 *        20k) of a smooth falling curve (every chunk strictly falling);
 *        REPS_M4 queries after one warm-up, once the load has settled (its
 *        writeback synced and the server idle: settle()).
 *   native_m4_<R>runs_noisy_loss_{p50,p99}_ms  the same over 100 more runs
 *        of gen.h's noisy float32 loss (GEN_LOSS_F32): no chunk is monotone,
 *        so every column edge reads the eighths beside it.
 *   logbatch_metrics_per_s_auth_basic  log-batch throughput (as above) against
 *        a server with --auth, every request carrying HTTP Basic credentials
 *        of a non-admin user with EDIT on the runs' experiment, against the
 *        same load on a server with auth off (the baseline), both started
 *        fresh in this run; after one warm-up round each, AUTH_ROUNDS
 *        alternating rounds of AUTH_REQS requests per connection each; the
 *        medians of the rounds' rates. Ratio
 *        = auth on / auth off (issue 8 asks >= 0.95).
 *   logbatch_metrics_per_server_cpu_s_auth_basic  the same rounds, as metrics
 *        per CPU-second the server process used (all its threads, those of
 *        closed connections included, from /proc/<pid>/stat): the cost of
 *        authentication,
 *        little moved by other load on a shared machine, which the
 *        wall-clock rates above are not.
 *   runs_search_<N>runs_{p50,p99}_ms  POST mlflow/runs/search over one
 *        experiment of N runs (10,000; --quick 2,000), each with a param
 *        `opt` (adam or sgd, half each) and a metric `loss`, filter
 *        "params.opt = 'adam'", order_by "metrics.loss DESC",
 *        max_results 100; REPS_SEARCH queries after one warm-up.
 *
 * Baselines: none. An honest comparison would be MLflow's own server on the
 * same machine, which is not available offline; a figure without a measured
 * baseline reports null rather than an invented one.
 *
 * Invariants:
 *  (1) Data loading for the history and M4 figures is never timed.
 *  (2) A figure whose measurement fails is not reported (stderr says why);
 *      the suite then returns nonzero. The child is always stopped.
 */
#include "bench.h"
#include "bench_http.h"
#include "gen.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define CONNS 4
#define LB_METRICS 1000
#define LB_KEYS 10
#define LB_REQS 500          /* per connection; --quick: LB_REQS_QUICK */
#define LB_REQS_QUICK 40
#define LB_WARMUP 100        /* per connection, untimed, before the log-batch figure */
#define NI_SERIES 64
#define NI_POINTS 2048
#define NI_REQS 40           /* per connection; --quick: NI_REQS_QUICK */
#define NI_REQS_QUICK 10
#define HIST_POINTS 1000000
#define REPS_HISTORY 3
#define M4_RUNS 100
#define M4_STEPS 1000000
#define M4_STEPS_QUICK 20000
#define REPS_M4 200 /* a p99 needs a few samples above it: over 40 it was the next-to-largest */
#define REPS_M4_QUICK 12
#define MEMORY_BUDGET (512ull << 20)

/* ------------------------------------------------------------------------ */
/* The child server (bench_http.h)                                           */
/* ------------------------------------------------------------------------ */

/* Starts `tally serve` on a fresh <work>/<sub> under MEMORY_BUDGET with
 * extra flags (NULL-terminated, may be NULL); its stderr stays ours. */
static int server_start_with(bench_ctx *c, bench_server *s, const char *sub,
                             const char *const *extra)
{
    char data[4200], budget[32];
    bench_subdir(c, sub, data, sizeof data);
    snprintf(budget, sizeof budget, "%llu", (unsigned long long)MEMORY_BUDGET);
    const char *args[16] = {"--memory-budget", budget};
    size_t na = 2;
    for (size_t i = 0; extra && extra[i] && na < 15; i++)
        args[na++] = extra[i];
    args[na] = NULL;
    return bench_server_start(s, data, NULL, args);
}

static int server_start(bench_ctx *c, bench_server *s)
{
    return server_start_with(c, s, "server", NULL);
}

/* ------------------------------------------------------------------------ */
/* Frames (docs/api.md, "Native API": a client's own encoder)                */
/* ------------------------------------------------------------------------ */

/* One frame (bench_http.h) of n series, each `points` points of (step,
 * ts, value) for steps [first, first + points), run ids runs[i], key
 * keys[i]. 0 or -1. */
/* The values the M4 figures load: a smooth falling curve (every chunk
 * strictly falling) or gen.h's noisy float32 loss (series `seed`). */
typedef enum m4_shape { M4_SMOOTH = 0, M4_NOISY_LOSS = 1 } m4_shape;

static int frame_build(bench_frame *f, const char *const *runs, const char *const *keys, size_t n,
                       uint32_t points, int64_t first, m4_shape shape, size_t seed0)
{
    if (bench_frame_begin(f) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int64_t *steps, *ts;
        double *vals;
        if (bench_frame_series(f, runs[i], keys[i], points, &steps, &ts, &vals) != 0)
            return -1;
        if (shape == M4_NOISY_LOSS) {
            gen_series(GEN_LOSS_F32, seed0 + i, (uint64_t)first, points, steps, ts, vals);
            continue;
        }
        for (uint32_t k = 0; k < points; k++) {
            steps[k] = first + k;
            ts[k] = 1700000000000 + (first + k) * 100;
            vals[k] = 1.0 / (1.0 + (double)(first + k) * 1e-4) + (double)(seed0 + i) * 1e-3;
        }
    }
    bench_frame_end(f);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static int create_run_in(bench_hconn *h, const char *exp, char out[64])
{
    char body[128];
    snprintf(body, sizeof body, "{\"experiment_id\":\"%s\",\"start_time\":1}", exp);
    int st = bench_hreq(h, "POST", "/api/2.0/mlflow/runs/create", NULL, body, strlen(body));
    if (st != 200)
        return -1;
    const char *p = strstr(bench_hbody(h), "\"run_id\":\"");
    if (!p)
        return -1;
    p += 10;
    size_t n = strcspn(p, "\"");
    if (n == 0 || n >= 64)
        return -1;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

static int create_run(bench_hconn *h, char out[64])
{
    return create_run_in(h, "0", out);
}

static int ingest_series(bench_hconn *h, const char *const *runs, const char *const *keys, size_t n,
                         uint64_t steps_total, m4_shape shape)
{
    const uint32_t chunk = 65536;
    bench_frame f = {0};
    int rc = 0;
    for (uint64_t first = 0; first < steps_total && rc == 0; first += chunk) {
        uint32_t pts = (uint32_t)(steps_total - first < chunk ? steps_total - first : chunk);
        /* At most 16 series per frame: ~25 MiB, under the body limit. */
        for (size_t i = 0; i < n && rc == 0; i += 16) {
            size_t m = n - i < 16 ? n - i : 16;
            int s = -1;
            if (frame_build(&f, runs + i, keys + i, m, pts, (int64_t)first, shape, i) == 0)
                while ((s = bench_hreq(h, "POST", "/api/2.0/tally/ingest",
                                       "application/octet-stream", f.p, f.len)) == 429)
                    usleep(20000);
            if (s != 200) {
                fprintf(stderr, "http: ingest failed with %d\n", s);
                rc = -1;
            }
        }
    }
    bench_frame_free(&f);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Load phases                                                               */
/* ------------------------------------------------------------------------ */

typedef struct worker {
    int port;
    const char *auth;    /* Authorization header, or NULL */
    char run[64];
    int n_reqs;
    char **bodies;       /* log-batch: prebuilt bodies */
    size_t *body_lens;
    int native;          /* ingest frames instead */
    double *lat_ms;      /* per request */
    int failed;
    uint64_t points;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    bench_hconn h;
    if (bench_hconn_open(&h, w->port) != 0) {
        w->failed = 1;
        return NULL;
    }
    h.auth = w->auth;
    bench_frame f = {0};
    const char *runs[NI_SERIES], *keys[NI_SERIES];
    char keybuf[NI_SERIES][16];
    if (w->native) {
        for (int i = 0; i < NI_SERIES; i++) {
            snprintf(keybuf[i], sizeof keybuf[i], "native/k%d", i);
            runs[i] = w->run;
            keys[i] = keybuf[i];
        }
    }
    for (int r = 0; r < w->n_reqs && !w->failed; r++) {
        uint64_t t0 = bench_now_ns();
        int s;
        if (w->native) {
            s = frame_build(&f, runs, keys, NI_SERIES, NI_POINTS, (int64_t)r * NI_POINTS,
                            M4_SMOOTH, 0) == 0
                    ? bench_hreq(&h, "POST", "/api/2.0/tally/ingest", "application/octet-stream",
                                 f.p, f.len)
                    : -1;
        } else {
            s = bench_hreq(&h, "POST", "/api/2.0/mlflow/runs/log-batch", NULL, w->bodies[r],
                           w->body_lens[r]);
        }
        if (s == 429) { /* back-pressure: retry the same request */
            usleep(5000);
            r--;
            continue;
        }
        if (s != 200) {
            fprintf(stderr, "http: request failed with %d\n", s);
            w->failed = 1;
            break;
        }
        w->lat_ms[r] = (double)(bench_now_ns() - t0) / 1e6;
        w->points += w->native ? (uint64_t)NI_SERIES * NI_POINTS : LB_METRICS;
    }
    bench_hconn_close(&h);
    bench_frame_free(&f);
    return NULL;
}

/* Runs the workers; returns wall seconds, peak RSS of the child in *rss. */
static double run_workers(worker *w, int n, pid_t child, double *rss)
{
    pthread_t th[CONNS];
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    double peak = 0;
    int joined[CONNS] = {0};
    for (;;) {
        int alive = 0;
        for (int i = 0; i < n; i++) {
            if (!joined[i] && pthread_tryjoin_np(th[i], NULL) == 0)
                joined[i] = 1;
            alive += !joined[i];
        }
        double r = bench_proc_rss_mib(child);
        if (r > peak)
            peak = r;
        if (!alive)
            break;
        usleep(20000);
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    if (rss)
        *rss = peak;
    return secs;
}

static char *lb_body(const char *run, int req, size_t *len)
{
    size_t cap = 128 * LB_METRICS + 256;
    char *b = malloc(cap);
    size_t n = (size_t)snprintf(b, cap, "{\"run_id\":\"%s\",\"metrics\":[", run);
    for (int i = 0; i < LB_METRICS; i++) {
        int64_t step = (int64_t)req * (LB_METRICS / LB_KEYS) + i / LB_KEYS;
        n += (size_t)snprintf(b + n, cap - n,
                              "%s{\"key\":\"train/metric_%d\",\"value\":%.17g,\"timestamp\":%lld,"
                              "\"step\":%lld}",
                              i ? "," : "", i % LB_KEYS, 1.0 / (1.0 + (double)step * 1e-3) + i * 1e-7,
                              (long long)(1700000000000 + step * 100), (long long)step);
    }
    n += (size_t)snprintf(b + n, cap - n, "]}");
    *len = n;
    return b;
}

/* ------------------------------------------------------------------------ */
/* The suite                                                                 */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* runs/search                                                               */
/* ------------------------------------------------------------------------ */

#define SEARCH_RUNS 10000
#define SEARCH_RUNS_QUICK 2000
#define REPS_SEARCH 50

static int fig_runs_search(bench_ctx *c, bench_hconn *h)
{
    int n_runs = c->quick ? SEARCH_RUNS_QUICK : SEARCH_RUNS;
    const char *mk = "{\"name\":\"bench-search\"}";
    if (bench_hreq(h, "POST", "/api/2.0/mlflow/experiments/create", NULL, mk, strlen(mk)) != 200)
        return 1;
    const char *p = strstr(bench_hbody(h), "\"experiment_id\":\"");
    if (!p)
        return 1;
    char exp[32];
    snprintf(exp, sizeof exp, "%.*s", (int)strcspn(p + 17, "\""), p + 17);
    fprintf(stderr, "http: creating %d runs for runs/search\n", n_runs);
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < n_runs; i++) {
        char body[512], run[64];
        snprintf(body, sizeof body, "{\"experiment_id\":\"%s\",\"start_time\":%d}", exp, 1000 + i);
        if (bench_hreq(h, "POST", "/api/2.0/mlflow/runs/create", NULL, body, strlen(body)) != 200)
            return 1;
        const char *q = strstr(bench_hbody(h), "\"run_id\":\"");
        if (!q)
            return 1;
        snprintf(run, sizeof run, "%.32s", q + 10);
        /* Loss values spread so the order is not the creation order. */
        double loss = (double)((i * 7919) % n_runs) / n_runs;
        snprintf(body, sizeof body,
                 "{\"run_id\":\"%s\",\"params\":[{\"key\":\"opt\",\"value\":\"%s\"}],"
                 "\"metrics\":[{\"key\":\"loss\",\"value\":%.6f,\"timestamp\":1,\"step\":0}]}",
                 run, i % 2 ? "sgd" : "adam", loss);
        if (bench_hreq(h, "POST", "/api/2.0/mlflow/runs/log-batch", NULL, body, strlen(body)) != 200)
            return 1;
    }
    fprintf(stderr, "http: %d runs in %.1f s\n", n_runs, (double)(bench_now_ns() - t0) / 1e9);
    char q[512];
    snprintf(q, sizeof q,
             "{\"experiment_ids\":[\"%s\"],\"filter\":\"params.opt = 'adam'\","
             "\"order_by\":[\"metrics.loss DESC\"],\"max_results\":100}",
             exp);
    double lat[REPS_SEARCH];
    for (int r = -1; r < REPS_SEARCH; r++) {
        uint64_t s0 = bench_now_ns();
        int st = bench_hreq(h, "POST", "/api/2.0/mlflow/runs/search", NULL, q, strlen(q));
        if (st != 200) {
            fprintf(stderr, "http: runs/search answered %d\n", st);
            return 1;
        }
        if (r >= 0)
            lat[r] = (double)(bench_now_ns() - s0) / 1e6;
    }
    /* The answer must be the 100 adam runs with the greatest loss. */
    const char *body = bench_hbody(h);
    int n_found = 0;
    for (const char *x = body; (x = strstr(x, "\"run_id\":\"")) != NULL; x += 10)
        n_found++;
    if (n_found != 100 * 2 /* run_id and run_uuid */ && n_found != 100) {
        fprintf(stderr, "http: runs/search returned %d ids\n", n_found);
        return 1;
    }
    char fig[64];
    snprintf(fig, sizeof fig, "runs_search_%druns_p50_ms", n_runs);
    bench_report(c, fig, bench_percentile(lat, REPS_SEARCH, 50), "ms", NULL, 0, 0);
    snprintf(fig, sizeof fig, "runs_search_%druns_p99_ms", n_runs);
    bench_report(c, fig, bench_percentile(lat, REPS_SEARCH, 99), "ms", NULL, 0, 0);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Authentication on vs off                                                  */
/* ------------------------------------------------------------------------ */

#define AUTH_ROUNDS 16       /* --quick: AUTH_ROUNDS_QUICK */
#define AUTH_ROUNDS_QUICK 8
#define AUTH_REQS 12         /* per connection per round; --quick: AUTH_REQS_QUICK */
#define AUTH_REQS_QUICK 6
#define AUTH_ADMIN "Basic YWRtaW46YmVuY2gtYWRtaW4tcGFzc3dvcmQ=" /* admin:bench-admin-password */
#define AUTH_USER "Basic YmVuY2g6YmVuY2gtdXNlci1wYXNzd29yZA=="  /* bench:bench-user-password */

/* On the auth server: user "bench" (not an admin), an experiment it creates
 * (so it holds MANAGE; EDIT is what log-batch needs), runs in it. */
static int auth_setup(bench_hconn *h, worker *w, int n)
{
    const char *u = "{\"username\":\"bench\",\"password\":\"bench-user-password\"}";
    h->auth = AUTH_ADMIN;
    if (bench_hreq(h, "POST", "/api/2.0/mlflow/users/create", NULL, u, strlen(u)) != 200)
        return -1;
    h->auth = AUTH_USER;
    const char *e = "{\"name\":\"auth-bench\"}";
    if (bench_hreq(h, "POST", "/api/2.0/mlflow/experiments/create", NULL, e, strlen(e)) != 200)
        return -1;
    const char *p = strstr(bench_hbody(h), "\"experiment_id\":\"");
    if (!p)
        return -1;
    char exp[32];
    snprintf(exp, sizeof exp, "%.*s", (int)strcspn(p + 17, "\""), p + 17);
    for (int i = 0; i < n; i++)
        if (create_run_in(h, exp, w[i].run) != 0)
            return -1;
    return 0;
}

/* Worker i's log-batch requests first_req .. first_req + reqs - 1 on its
 * run, bodies built, counters cleared. */
static void lb_bodies_build(worker *wi, int reqs, int first_req)
{
    wi->n_reqs = reqs;
    wi->native = 0;
    wi->failed = 0;
    wi->points = 0;
    wi->bodies = malloc(reqs * sizeof *wi->bodies);
    wi->body_lens = malloc(reqs * sizeof *wi->body_lens);
    wi->lat_ms = calloc(reqs, sizeof *wi->lat_ms);
    for (int r = 0; r < reqs; r++)
        wi->bodies[r] = lb_body(wi->run, first_req + r, &wi->body_lens[r]);
}

/* Readies CONNS log-batch workers of reqs requests each, every worker on
 * a new run of its own, bodies built. 0 or -1 (message on stderr). */
static int lb_workers_build(bench_hconn *h, worker *w, int port, int reqs)
{
    for (int i = 0; i < CONNS; i++) {
        w[i].port = port;
        if (create_run(h, w[i].run) != 0) {
            fprintf(stderr, "http: runs/create failed\n");
            return -1;
        }
        lb_bodies_build(&w[i], reqs, 0);
    }
    return 0;
}

static void free_bodies(worker *w, int n)
{
    for (int i = 0; i < n; i++) {
        for (int r = 0; w[i].bodies && r < w[i].n_reqs; r++)
            free(w[i].bodies[r]);
        free(w[i].bodies);
        free(w[i].body_lens);
        free(w[i].lat_ms);
        w[i].bodies = NULL;
        w[i].body_lens = NULL;
        w[i].lat_ms = NULL;
    }
}

/* CPU seconds used so far by process pid, every thread it ever had
 * included (/proc/<pid>/stat utime + stime: threads that ended — a
 * connection's, when it closed — are counted there and nowhere else), at
 * clock-tick resolution; or -1. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut, st;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Waits (untimed) until what a load left behind is done: the data
 * directory's writeback (syncfs) and the server's own work after its last
 * answer (sealing, checkpoints), i.e. until it uses under a tick of CPU in
 * 200 ms, for at most 30 s. */
static void settle(const char *data_dir, pid_t pid)
{
    bench_sync_fs(data_dir);
    double prev = proc_cpu_s(pid);
    for (int i = 0; i < 150 && prev >= 0; i++) {
        struct timespec ts = {0, 200000000};
        nanosleep(&ts, NULL);
        double now = proc_cpu_s(pid);
        if (now - prev < 1.0 / (double)sysconf(_SC_CLK_TCK))
            break;
        prev = now;
    }
}

/* Loads M4_RUNS runs x one key of the given shape through tally/ingest
 * (untimed (1); the smooth load also reports the server's RSS while it
 * ingests), lets the server settle, then times REPS_M4 queries of all of them
 * at W = 1000 in binary columns: native_m4_<R>runs_{p50,p99}_ms for the
 * smooth curve, native_m4_<R>runs_noisy_loss_{p50,p99}_ms for the loss. */
static int fig_native_m4(bench_ctx *c, bench_hconn *h, const bench_server *srv, m4_shape shape)
{
    size_t steps = c->quick ? M4_STEPS_QUICK : M4_STEPS;
    const char *what = shape == M4_SMOOTH ? "" : "_noisy_loss";
    char (*rid)[64] = calloc(M4_RUNS, sizeof *rid);
    const char **runs = calloc(M4_RUNS, sizeof *runs), **keys = calloc(M4_RUNS, sizeof *keys);
    int ok = rid && runs && keys;
    for (int i = 0; i < M4_RUNS && ok; i++) {
        ok = create_run(h, rid[i]) == 0;
        runs[i] = rid[i];
        keys[i] = "train/loss";
    }
    fprintf(stderr, "http: loading %d runs x %zu steps%s\n", M4_RUNS, steps, what);
    uint64_t t0 = bench_now_ns();
    bench_rss_sampler sm;
    bench_rss_sampler_start(&sm, srv->pid);
    if (ok)
        ok = ingest_series(h, runs, keys, M4_RUNS, steps, shape) == 0;
    double load_rss = bench_rss_sampler_stop(&sm);
    fprintf(stderr, "http: loaded in %.1f s\n", (double)(bench_now_ns() - t0) / 1e9);
    char data[4200];
    snprintf(data, sizeof data, "%s/server", c->work_dir); /* server_start's directory */
    settle(data, srv->pid); /* the queries, not the tail of the load, are timed */
    if (ok && shape == M4_SMOOTH) {
        char fig[96];
        snprintf(fig, sizeof fig, "server_rss_mib_ingesting_%zum_points",
                 (size_t)M4_RUNS * steps / 1000000);
        bench_report(c, fig, load_rss, "MiB", "memory_budget_mib", (double)(MEMORY_BUDGET >> 20),
                     0);
    }
    size_t cap = 64 + M4_RUNS * 70;
    char *body = malloc(cap);
    int reps = c->quick ? REPS_M4_QUICK : REPS_M4;
    double *lat = calloc((size_t)reps, sizeof *lat);
    ok = ok && body && lat;
    size_t n = 0;
    if (ok) {
        n = (size_t)snprintf(body, cap, "{\"key\":\"train/loss\",\"width\":1000,"
                                        "\"method\":\"m4\",\"format\":\"binary\",\"run_ids\":[");
        for (int i = 0; i < M4_RUNS; i++)
            n += (size_t)snprintf(body + n, cap - n, "%s\"%s\"", i ? "," : "", rid[i]);
        n += (size_t)snprintf(body + n, cap - n, "]}");
    }
    for (int r = -1; r < reps && ok; r++) {
        uint64_t q0 = bench_now_ns();
        int st = bench_hreq(h, "POST", "/api/2.0/tally/query", NULL, body, n);
        if (st != 200 || h->body_len < 16 || memcmp(bench_hbody(h), "TLYQ", 4) != 0) {
            fprintf(stderr, "http: query failed with %d\n", st);
            ok = 0;
            break;
        }
        if (r >= 0)
            lat[r] = (double)(bench_now_ns() - q0) / 1e6;
    }
    if (ok) {
        char fig[96];
        snprintf(fig, sizeof fig, "native_m4_%druns%s_p50_ms", M4_RUNS, what);
        bench_report(c, fig, bench_percentile(lat, (size_t)reps, 50), "ms", NULL, 0, 0);
        snprintf(fig, sizeof fig, "native_m4_%druns%s_p99_ms", M4_RUNS, what);
        bench_report(c, fig, bench_percentile(lat, (size_t)reps, 99), "ms", NULL, 0, 0);
    }
    free(lat);
    free(body);
    free(rid);
    free(runs);
    free(keys);
    return ok ? 0 : -1;
}

/* One round on one server: bodies built before the clock; metrics/s, and
 * the metrics and server CPU seconds of the round added to *pts, *cpu. */
static double auth_round(worker *w, int port, const char *auth, int reqs, int round, pid_t pid,
                         double *pts_sum, double *cpu_sum)
{
    for (int i = 0; i < CONNS; i++) {
        w[i].port = port;
        w[i].auth = auth;
        lb_bodies_build(&w[i], reqs, round * reqs);
    }
    double cpu0 = proc_cpu_s(pid);
    double secs = run_workers(w, CONNS, pid, NULL);
    double cpu1 = proc_cpu_s(pid);
    uint64_t pts = 0;
    int failed = 0;
    for (int i = 0; i < CONNS; i++) {
        pts += w[i].points;
        failed |= w[i].failed;
    }
    free_bodies(w, CONNS);
    if (pts_sum && cpu0 >= 0 && cpu1 >= cpu0) {
        *pts_sum += (double)pts;
        *cpu_sum += cpu1 - cpu0;
    }
    return failed || secs <= 0 ? -1 : (double)pts / secs;
}

static int fig_auth(bench_ctx *c)
{
    static const char *const auth_args[] = {"--auth", "--admin-password", "bench-admin-password",
                                            NULL};
    bench_server off = {0}, on = {0};
    int rc = 1;
    worker w_off[CONNS], w_on[CONNS];
    memset(w_off, 0, sizeof w_off);
    memset(w_on, 0, sizeof w_on);
    bench_hconn h = {0};
    h.fd = -1;
    if (server_start_with(c, &off, "server-auth-off", NULL) != 0 ||
        server_start_with(c, &on, "server-auth-on", auth_args) != 0)
        goto out;
    if (bench_hconn_open(&h, off.port) != 0)
        goto out;
    for (int i = 0; i < CONNS; i++)
        if (create_run(&h, w_off[i].run) != 0)
            goto out;
    bench_hconn_close(&h);
    if (bench_hconn_open(&h, on.port) != 0 || auth_setup(&h, w_on, CONNS) != 0) {
        fprintf(stderr, "http: setting up the auth server failed\n");
        goto out;
    }
    bench_hconn_close(&h);
    h.fd = -1;
    int reqs = c->quick ? AUTH_REQS_QUICK : AUTH_REQS;
    int rounds = c->quick ? AUTH_ROUNDS_QUICK : AUTH_ROUNDS;
    double r_off[AUTH_ROUNDS], r_on[AUTH_ROUNDS];
    double pts_on = 0, pts_off = 0, cpu_on = 0, cpu_off = 0;
    /* Warm-up, not counted: first writes of each series, caches filled. */
    if (auth_round(w_off, off.port, NULL, reqs, 1000, off.pid, NULL, NULL) < 0 ||
        auth_round(w_on, on.port, AUTH_USER, reqs, 1000, on.pid, NULL, NULL) < 0) {
        fprintf(stderr, "http: auth warm-up failed\n");
        goto out;
    }
    for (int round = 0; round < rounds; round++) {
        /* Alternate which goes first, so drift on the shared machine
         * weighs on both alike. */
        for (int k = 0; k < 2; k++) {
            int do_on = (round + k) % 2;
            double r = do_on ? auth_round(w_on, on.port, AUTH_USER, reqs, round, on.pid,
                                          &pts_on, &cpu_on)
                             : auth_round(w_off, off.port, NULL, reqs, round, off.pid, &pts_off,
                                          &cpu_off);
            if (r < 0) {
                fprintf(stderr, "http: auth %s round failed\n", do_on ? "on" : "off");
                goto out;
            }
            if (do_on)
                r_on[round] = r;
            else
                r_off[round] = r;
        }
    }
    /* Medians: one round slowed by a neighbour on the shared machine moves
     * neither side. */
    bench_report(c, "logbatch_metrics_per_s_auth_basic", bench_median(r_on, (size_t)rounds),
                 "metrics/s", "auth off, same run", bench_median(r_off, (size_t)rounds), 1);
    if (cpu_on > 0 && cpu_off > 0)
        bench_report(c, "logbatch_metrics_per_server_cpu_s_auth_basic", pts_on / cpu_on,
                     "metrics/cpu-s", "auth off, same run", pts_off / cpu_off, 1);
    rc = 0;
out:
    if (h.fd >= 0)
        bench_hconn_close(&h);
    bench_server_stop(&off, SIGTERM);
    bench_server_stop(&on, SIGTERM);
    return rc;
}

int bench_suite_http(bench_ctx *c)
{
    bench_server srv = {0};
    if (server_start(c, &srv) != 0)
        return 1;
    int rc = 0;
    bench_hconn h;
    if (bench_hconn_open(&h, srv.port) != 0) {
        bench_server_stop(&srv, SIGTERM);
        return 1;
    }
    worker w[CONNS];
    memset(w, 0, sizeof w);

    /* --- log-batch ------------------------------------------------------ */
    int lb_reqs = c->quick ? LB_REQS_QUICK : LB_REQS;
    fprintf(stderr, "http: building %d log-batch bodies\n", CONNS * (lb_reqs + LB_WARMUP));
    /* Untimed warm-up on runs of its own: a fresh process's first requests
     * pay for faulting its memory in, which is not the throughput asked. */
    if (lb_workers_build(&h, w, srv.port, LB_WARMUP) != 0) {
        rc = 1;
        goto out;
    }
    run_workers(w, CONNS, srv.pid, NULL);
    for (int i = 0; i < CONNS; i++)
        rc |= w[i].failed;
    free_bodies(w, CONNS);
    if (rc || lb_workers_build(&h, w, srv.port, lb_reqs) != 0) {
        rc = 1;
        goto out;
    }
    {
        double secs = run_workers(w, CONNS, srv.pid, NULL);
        uint64_t pts = 0;
        int failed = 0;
        double *lat = malloc(CONNS * lb_reqs * sizeof *lat);
        for (int i = 0; i < CONNS; i++) {
            pts += w[i].points;
            failed |= w[i].failed;
            memcpy(lat + i * lb_reqs, w[i].lat_ms, lb_reqs * sizeof *lat);
        }
        if (failed) {
            rc = 1;
        } else {
            bench_report(c, "logbatch_metrics_per_s", (double)pts / secs, "metrics/s", NULL, 0, 1);
            bench_report(c, "logbatch_request_p50_ms", bench_percentile(lat, CONNS * lb_reqs, 50),
                         "ms", NULL, 0, 0);
            bench_report(c, "logbatch_request_p99_ms", bench_percentile(lat, CONNS * lb_reqs, 99),
                         "ms", NULL, 0, 0);
        }
        free(lat);
    }
    free_bodies(w, CONNS);

    /* --- native ingest --------------------------------------------------- */
    int ni_reqs = c->quick ? NI_REQS_QUICK : NI_REQS;
    for (int i = 0; i < CONNS; i++) {
        w[i].native = 1;
        w[i].n_reqs = ni_reqs;
        w[i].points = 0;
        w[i].failed = 0;
        w[i].lat_ms = calloc(ni_reqs, sizeof *w[i].lat_ms);
    }
    {
        double rss = 0;
        double secs = run_workers(w, CONNS, srv.pid, &rss);
        uint64_t pts = 0;
        int failed = 0;
        for (int i = 0; i < CONNS; i++) {
            pts += w[i].points;
            failed |= w[i].failed;
            free(w[i].lat_ms);
            w[i].lat_ms = NULL;
        }
        if (failed) {
            rc = 1;
        } else {
            bench_report(c, "native_ingest_points_per_s", (double)pts / secs, "points/s", NULL, 0,
                         1);
            bench_report(c, "server_rss_mib_while_ingesting", rss, "MiB", "memory_budget_mib",
                         (double)(MEMORY_BUDGET >> 20), 0);
        }
    }

    /* --- get-history of a 1M-point series -------------------------------- */
    {
        char run[64];
        const char *key = "history/loss";
        const char *runs[1] = {run}, *keys[1] = {key};
        if (create_run(&h, run) != 0 ||
            ingest_series(&h, runs, keys, 1, HIST_POINTS, M4_SMOOTH) != 0) {
            fprintf(stderr, "http: loading the history series failed\n");
            rc = 1;
        } else {
            double samples[REPS_HISTORY];
            int reps = c->quick ? 1 : REPS_HISTORY, ok = 1;
            for (int r = 0; r < reps && ok; r++) {
                char token[256] = "";
                uint64_t t0 = bench_now_ns(), n_pts = 0;
                for (;;) {
                    char path[1024];
                    snprintf(path, sizeof path,
                             "/api/2.0/mlflow/metrics/get-history?run_id=%s&metric_key=%s"
                             "&max_results=25000%s%s",
                             run, "history%2Floss", token[0] ? "&page_token=" : "", token);
                    if (bench_hreq(&h, "GET", path, NULL, NULL, 0) != 200) {
                        ok = 0;
                        break;
                    }
                    /* Count points and find the token without a JSON parser. */
                    const char *b = bench_hbody(&h);
                    for (const char *p = b; (p = strstr(p, "\"step\":")) != NULL; p += 7)
                        n_pts++;
                    const char *t = strstr(b, "\"next_page_token\":\"");
                    if (!t)
                        break;
                    t += 19;
                    size_t tl = strcspn(t, "\"");
                    if (tl >= sizeof token) {
                        ok = 0;
                        break;
                    }
                    memcpy(token, t, tl);
                    token[tl] = 0;
                }
                samples[r] = (double)(bench_now_ns() - t0) / 1e9;
                if (n_pts != HIST_POINTS) {
                    fprintf(stderr, "http: get-history returned %llu points, want %d\n",
                            (unsigned long long)n_pts, HIST_POINTS);
                    ok = 0;
                }
            }
            if (ok)
                bench_report(c, "get_history_1m_points_s", bench_median(samples, (size_t)reps), "s",
                             NULL, 0, 0);
            else
                rc = 1;
        }
    }

    /* --- M4 over 100 runs: a smooth curve, then a noisy loss --------------- */
    if (fig_native_m4(c, &h, &srv, M4_SMOOTH) != 0 || fig_native_m4(c, &h, &srv, M4_NOISY_LOSS) != 0)
        rc = 1;

    if (rc == 0)
        rc = fig_runs_search(c, &h);

out:
    bench_hconn_close(&h);
    bench_server_stop(&srv, SIGTERM);
    if (rc == 0)
        rc = fig_auth(c); /* its own two servers, after this one stopped */
    return rc;
}
