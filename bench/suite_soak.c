/*
 * suite_soak.c — the `soak` suite of tally-bench (not run in CI): mixed
 * traffic against one `tally serve` for 30 minutes (--quick: 2), reporting
 * throughput and p99 latency per minute and the server's RSS and open files
 * over time (issue 8: "RSS drift over the 30-minute soak <= 5 % after
 * warm-up"; open files must stay flat).
 *
 * Traffic, one keep-alive connection per thread, each as fast as answered:
 *   ingest  2 threads: runs/log-batch of 500 points (5 keys x 100 steps) to
 *           one of RUNS fixed runs in turn, steps growing;
 *   native  1 thread: tally/ingest frames of 2000 points, same runs, key "n";
 *   meta    1 thread: runs/set-tag and runs/log-parameter (fresh keys on a
 *           second set of runs, a new run every 500 writes);
 *   query   1 thread: metrics/get-history (first 1000 points) and tally/query
 *           M4 (width 500) over all RUNS runs, alternating;
 *   search  1 thread: runs/search (filter on a param, order by a metric,
 *           100 results) and experiments/search, alternating;
 *   artifact 1 thread: mlflow/artifacts/list of a run (the artifact routes
 *           this branch serves; uploads and downloads join as one more
 *           request kind when the artifact proxy lands).
 * A fixed working set of series keeps what the engine must hold in memory
 * constant, so RSS growth is a leak, not data.
 *
 * Every SAMPLE_S seconds the server's VmRSS, RssAnon and open fds are
 * sampled; every minute (quick: every 20 s) a line with each class's
 * requests/s and p99 ms is printed to stderr. Figures: per class total
 * throughput and p99; rss_mib_end, rss_drift_pct_after_warmup and
 * rss_anon_drift_pct_after_warmup (RSS at the end against RSS at the end of
 * warm-up: 5 minutes, quick 40 s), open_fds_drift (end - end of warm-up),
 * errors (non-2xx answers other than 429/503 back-pressure; must be 0).
 *
 * Invariants:
 *  (1) Latency samples of an interval are taken under their class's mutex
 *      and reset by the sampler each interval.
 *  (2) The child is stopped (SIGTERM) whatever happens.
 */
#include "bench.h"
#include "bench_http.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RUNS 16
#define SAMPLE_S 5

enum { C_INGEST, C_NATIVE, C_META, C_QUERY, C_SEARCH, C_ARTIFACT, N_CLASSES };
static const char *const CLASS_NAMES[N_CLASSES] = {"ingest", "native", "meta",
                                                   "query", "search", "artifact"};

typedef struct lat_log {
    pthread_mutex_t mu;
    double *ms;          /* this interval's samples */
    size_t n, cap;
    double *all;         /* whole run */
    size_t n_all, cap_all;
    uint64_t requests;   /* whole run */
    uint64_t errors;     /* unexpected statuses */
    uint64_t refused;    /* 429/503: back-pressure, retried */
} lat_log;

typedef struct soak {
    int port;
    atomic_int stop;
    char runs[RUNS][64];
    char exp_id[64];
    lat_log lat[N_CLASSES];
} soak;

static void push(double **a, size_t *n, size_t *cap, double v)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4096;
        *a = realloc(*a, *cap * sizeof **a);
        if (!*a)
            abort();
    }
    (*a)[(*n)++] = v;
}

static void record(soak *s, int cls, int status, uint64_t t0)
{
    double ms = (double)(bench_now_ns() - t0) / 1e6;
    lat_log *l = &s->lat[cls];
    pthread_mutex_lock(&l->mu);
    l->requests++;
    if (status == 429 || status == 503)
        l->refused++;
    else if (status < 200 || status >= 300)
        l->errors++;
    push(&l->ms, &l->n, &l->cap, ms);
    push(&l->all, &l->n_all, &l->cap_all, ms);
    pthread_mutex_unlock(&l->mu);
}

typedef struct thread_arg {
    soak *s;
    int id;
} thread_arg;

/* One request of class cls; returns its status (-1: connection lost). */
static int timed(soak *s, int cls, bench_hconn *h, const char *method, const char *path,
                 const char *ctype, const void *body, size_t len)
{
    uint64_t t0 = bench_now_ns();
    int st = bench_hreq(h, method, path, ctype, body, len);
    if (st >= 0)
        record(s, cls, st, t0);
    return st;
}

static void *ingest_main(void *arg)
{
    thread_arg *a = arg;
    soak *s = a->s;
    bench_hconn h;
    if (bench_hconn_open(&h, s->port) != 0)
        return NULL;
    size_t cap = 64 * 1024;
    char *body = malloc(cap);
    for (uint64_t i = 0; !atomic_load(&s->stop) && body; i++) {
        const char *run = s->runs[i % RUNS];
        int64_t step0 = (int64_t)(i / RUNS) * 100;
        int n = snprintf(body, cap, "{\"run_id\":\"%s\",\"metrics\":[", run);
        for (int k = 0; k < 5; k++)
            for (int j = 0; j < 100; j++) {
                int64_t st = step0 + j;
                n += snprintf(body + n, cap - (size_t)n,
                              "%s{\"key\":\"t%d_k%d\",\"value\":%.6f,\"timestamp\":%lld,\"step\":%lld}",
                              k || j ? "," : "", a->id, k, 1.0 / (1.0 + (double)st * 1e-3),
                              1700000000000LL + (long long)st, (long long)st);
            }
        n += snprintf(body + n, cap - (size_t)n, "]}");
        if (timed(s, C_INGEST, &h, "POST", "/api/2.0/mlflow/runs/log-batch", NULL, body,
                  (size_t)n) < 0)
            break;
    }
    free(body);
    bench_hconn_close(&h);
    return NULL;
}

static void *native_main(void *arg)
{
    soak *s = ((thread_arg *)arg)->s;
    bench_hconn h;
    if (bench_hconn_open(&h, s->port) != 0)
        return NULL;
    enum { N = 2000 };
    int64_t *st = malloc(N * sizeof *st), *ts = malloc(N * sizeof *ts);
    double *v = malloc(N * sizeof *v);
    for (uint64_t i = 0; !atomic_load(&s->stop) && st && ts && v; i++) {
        int64_t step0 = (int64_t)(i / RUNS) * N;
        for (int j = 0; j < N; j++) {
            st[j] = step0 + j;
            ts[j] = 1700000000000LL + st[j];
            v[j] = (double)(st[j] % 1000) * 0.001;
        }
        uint8_t *f;
        size_t len;
        if (bench_frame_one(s->runs[i % RUNS], "n", N, st, ts, v, &f, &len) != 0)
            break;
        int rc = timed(s, C_NATIVE, &h, "POST", "/api/2.0/tally/ingest", "application/octet-stream",
                       f, len);
        free(f);
        if (rc < 0)
            break;
    }
    free(st);
    free(ts);
    free(v);
    bench_hconn_close(&h);
    return NULL;
}

static void *meta_main(void *arg)
{
    soak *s = ((thread_arg *)arg)->s;
    bench_hconn h;
    if (bench_hconn_open(&h, s->port) != 0)
        return NULL;
    char run[64] = "";
    for (uint64_t i = 0; !atomic_load(&s->stop); i++) {
        if (i % 500 == 0 && bench_create_run(&h, "soak-meta", run) != 0)
            break;
        char body[512];
        int n = i % 2 ? snprintf(body, sizeof body,
                                 "{\"run_id\":\"%s\",\"key\":\"tag%llu\",\"value\":\"v%llu\"}", run,
                                 (unsigned long long)i, (unsigned long long)i)
                      : snprintf(body, sizeof body,
                                 "{\"run_id\":\"%s\",\"key\":\"p%llu\",\"value\":\"%llu\"}", run,
                                 (unsigned long long)i, (unsigned long long)i);
        if (timed(s, C_META, &h, "POST",
                  i % 2 ? "/api/2.0/mlflow/runs/set-tag" : "/api/2.0/mlflow/runs/log-parameter",
                  NULL, body, (size_t)n) < 0)
            break;
    }
    bench_hconn_close(&h);
    return NULL;
}

static void *query_main(void *arg)
{
    soak *s = ((thread_arg *)arg)->s;
    bench_hconn h;
    if (bench_hconn_open(&h, s->port) != 0)
        return NULL;
    char *body = malloc(8192);
    for (uint64_t i = 0; !atomic_load(&s->stop) && body; i++) {
        int rc;
        if (i % 2 == 0) {
            char path[512];
            snprintf(path, sizeof path,
                     "/api/2.0/mlflow/metrics/get-history?run_id=%s&metric_key=t0_k%d&max_results=1000",
                     s->runs[i / 2 % RUNS], (int)(i / 2 % 5));
            rc = timed(s, C_QUERY, &h, "GET", path, NULL, NULL, 0);
        } else {
            int n = snprintf(body, 8192, "{\"run_ids\":[");
            for (int r = 0; r < RUNS; r++)
                n += snprintf(body + n, 8192 - (size_t)n, "%s\"%s\"", r ? "," : "", s->runs[r]);
            n += snprintf(body + n, 8192 - (size_t)n, "],\"key\":\"n\",\"method\":\"m4\",\"width\":500}");
            rc = timed(s, C_QUERY, &h, "POST", "/api/2.0/tally/query", NULL, body, (size_t)n);
        }
        if (rc < 0)
            break;
    }
    free(body);
    bench_hconn_close(&h);
    return NULL;
}

static void *search_main(void *arg)
{
    soak *s = ((thread_arg *)arg)->s;
    bench_hconn h;
    if (bench_hconn_open(&h, s->port) != 0)
        return NULL;
    char body[512];
    for (uint64_t i = 0; !atomic_load(&s->stop); i++) {
        int n, rc;
        if (i % 2 == 0) {
            n = snprintf(body, sizeof body,
                         "{\"experiment_ids\":[\"%s\"],\"filter\":\"params.opt = 'adam'\","
                         "\"order_by\":[\"metrics.t0_k0 DESC\"],\"max_results\":100}",
                         s->exp_id);
            rc = timed(s, C_SEARCH, &h, "POST", "/api/2.0/mlflow/runs/search", NULL, body, (size_t)n);
        } else {
            n = snprintf(body, sizeof body, "{\"max_results\":100,\"filter\":\"name LIKE 'soak%%'\"}");
            rc = timed(s, C_SEARCH, &h, "POST", "/api/2.0/mlflow/experiments/search", NULL, body,
                       (size_t)n);
        }
        if (rc < 0)
            break;
    }
    bench_hconn_close(&h);
    return NULL;
}

static void *artifact_main(void *arg)
{
    soak *s = ((thread_arg *)arg)->s;
    bench_hconn h;
    if (bench_hconn_open(&h, s->port) != 0)
        return NULL;
    for (uint64_t i = 0; !atomic_load(&s->stop); i++) {
        char path[256];
        snprintf(path, sizeof path, "/api/2.0/mlflow/artifacts/list?run_id=%s", s->runs[i % RUNS]);
        if (timed(s, C_ARTIFACT, &h, "GET", path, NULL, NULL, 0) < 0)
            break;
        struct timespec d = {0, 2 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    bench_hconn_close(&h);
    return NULL;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double p99(double *v, size_t n)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_dbl);
    return v[(size_t)((double)(n - 1) * 0.99)];
}

static int setup_runs(soak *s)
{
    bench_hconn h;
    if (bench_hconn_open(&h, s->port) != 0)
        return -1;
    int rc = 0;
    for (int r = 0; r < RUNS && rc == 0; r++) {
        rc = bench_create_run(&h, "soak", s->runs[r]);
        char body[256];
        int n = snprintf(body, sizeof body, "{\"run_id\":\"%s\",\"key\":\"opt\",\"value\":\"%s\"}",
                         s->runs[r], r % 2 ? "sgd" : "adam");
        if (rc == 0 && bench_hreq(&h, "POST", "/api/2.0/mlflow/runs/log-parameter", NULL, body,
                                  (size_t)n) != 200)
            rc = -1;
    }
    if (rc == 0 && bench_hreq(&h, "GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=soak",
                              NULL, NULL, 0) == 200) {
        const char *p = strstr(bench_hbody(&h), "\"experiment_id\":\"");
        if (p)
            sscanf(p + 17, "%63[^\"]", s->exp_id);
    }
    bench_hconn_close(&h);
    return rc == 0 && *s->exp_id ? 0 : -1;
}

int bench_suite_soak(bench_ctx *c)
{
    const char *env = getenv("TALLY_SOAK_SECONDS");
    int total_s = env && atoi(env) > 0 ? atoi(env) : c->quick ? 120 : 1800;
    int interval_s = c->quick || total_s < 600 ? 20 : 60;
    int warmup_s = c->quick || total_s < 600 ? 40 : 300;
    char data[4200], log[4400];
    bench_subdir(c, "soak-data", data, sizeof data);
    snprintf(log, sizeof log, "%s/soak-server.log", c->work_dir);
    bench_server srv;
    if (bench_server_start(&srv, data, log, NULL) != 0)
        return 1;
    soak *s = calloc(1, sizeof *s);
    s->port = srv.port;
    for (int k = 0; k < N_CLASSES; k++)
        pthread_mutex_init(&s->lat[k].mu, NULL);
    if (setup_runs(s) != 0) {
        fprintf(stderr, "soak: set-up failed\n");
        bench_server_stop(&srv, SIGTERM);
        free(s);
        return 1;
    }
    void *(*mains[])(void *) = {ingest_main, ingest_main, native_main, meta_main,
                                query_main,  search_main, artifact_main};
    enum { N_THREADS = sizeof mains / sizeof mains[0] };
    pthread_t th[N_THREADS];
    thread_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        args[i] = (thread_arg){s, i};
        pthread_create(&th[i], NULL, mains[i], &args[i]);
    }
    fprintf(stderr, "soak: %d s of mixed traffic; a line every %d s (req/s, p99 ms)\n", total_s,
            interval_s);
    fprintf(stderr, "%6s", "t_s");
    for (int k = 0; k < N_CLASSES; k++)
        fprintf(stderr, " %9s/s %6s_p99", CLASS_NAMES[k], CLASS_NAMES[k]);
    fprintf(stderr, " %8s %8s %5s\n", "rss_mib", "anon_mib", "fds");
    uint64_t t_start = bench_now_ns();
    double rss_warm = 0, anon_warm = 0, rss_end = 0, anon_end = 0, rss_max = 0;
    int fds_warm = -1, fds_end = -1, fds_max = 0;
    int next_line = interval_s;
    uint64_t last_req[N_CLASSES] = {0};
    for (int t = SAMPLE_S; t <= total_s; t += SAMPLE_S) {
        uint64_t wake = t_start + (uint64_t)t * 1000000000ull;
        while (bench_now_ns() < wake) {
            struct timespec d = {0, 100 * 1000 * 1000};
            nanosleep(&d, NULL);
        }
        double rss = bench_proc_rss_mib(srv.pid);
        double anon = bench_proc_status_mib(srv.pid, "RssAnon");
        int fds = bench_proc_open_fds(srv.pid);
        if (rss == 0) {
            fprintf(stderr, "soak: the server went away (see %s)\n", log);
            break;
        }
        rss_end = rss;
        anon_end = anon;
        fds_end = fds;
        if (rss > rss_max)
            rss_max = rss;
        if (fds > fds_max)
            fds_max = fds;
        if (t <= warmup_s) {
            rss_warm = rss;
            anon_warm = anon;
            fds_warm = fds;
        }
        if (t >= next_line) {
            fprintf(stderr, "%6d", t);
            for (int k = 0; k < N_CLASSES; k++) {
                lat_log *l = &s->lat[k];
                pthread_mutex_lock(&l->mu);
                double q = p99(l->ms, l->n);
                uint64_t reqs = l->requests - last_req[k];
                last_req[k] = l->requests;
                l->n = 0;
                pthread_mutex_unlock(&l->mu);
                fprintf(stderr, " %11.1f %10.1f", (double)reqs / interval_s, q);
            }
            fprintf(stderr, " %8.1f %8.1f %5d\n", rss, anon, fds);
            next_line += interval_s;
        }
    }
    atomic_store(&s->stop, 1);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    double elapsed = (double)(bench_now_ns() - t_start) / 1e9;
    bench_server_stop(&srv, SIGTERM);
    uint64_t errors = 0;
    for (int k = 0; k < N_CLASSES; k++) {
        lat_log *l = &s->lat[k];
        char fig[64];
        snprintf(fig, sizeof fig, "%s_requests_per_s", CLASS_NAMES[k]);
        bench_report(c, fig, (double)l->requests / elapsed, "req/s", NULL, 0, 1);
        snprintf(fig, sizeof fig, "%s_p99_ms", CLASS_NAMES[k]);
        bench_report(c, fig, p99(l->all, l->n_all), "ms", NULL, 0, 0);
        errors += l->errors;
        if (l->refused && !c->json)
            fprintf(stderr, "soak: %s: %llu answers were 429/503 back-pressure\n", CLASS_NAMES[k],
                    (unsigned long long)l->refused);
        free(l->ms);
        free(l->all);
        pthread_mutex_destroy(&l->mu);
    }
    bench_report(c, "rss_mib_end", rss_end, "MiB", NULL, 0, 0);
    bench_report(c, "rss_mib_max", rss_max, "MiB", NULL, 0, 0);
    if (rss_warm > 0) {
        bench_report(c, "rss_drift_pct_after_warmup", 100.0 * (rss_end - rss_warm) / rss_warm, "%",
                     NULL, 0, 0);
        bench_report(c, "rss_anon_drift_pct_after_warmup",
                     100.0 * (anon_end - anon_warm) / (anon_warm > 0 ? anon_warm : 1), "%", NULL, 0,
                     0);
    }
    bench_report(c, "open_fds_end", fds_end, "fds", NULL, 0, 0);
    bench_report(c, "open_fds_drift_after_warmup", fds_end - fds_warm, "fds", NULL, 0, 0);
    bench_report(c, "errors", (double)errors, "answers", NULL, 0, 0);
    free(s);
    return errors ? 1 : 0;
}
