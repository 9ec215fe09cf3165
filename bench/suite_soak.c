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
 * A fixed set of series keeps what the engine holds in its heads constant;
 * the stored data grows all the time, and the server's memory must not grow
 * with it: every component that could is bounded by a budget. The server
 * runs with a small query cache budget (SOAK_QUERY_CACHE_BUDGET) so that
 * the cache is full before the measured window starts.
 *
 * Every SAMPLE_S seconds the server's VmRSS, RssAnon, RssFile and open fds
 * (/proc) and its components' memory (GET /metrics: engine, query cache
 * and what it retains, SQLite heap, malloc in use and free) are sampled;
 * every minute (quick: every 20 s) a line with each class's requests/s and
 * p99 ms and the memory figures is printed to stderr. The warm-up lasts at
 * least 5 minutes (quick, or runs under 10 minutes: 40 s;
 * TALLY_SOAK_WARMUP_SECONDS overrides) and until the query cache holds 90 %
 * of its budget, at most half the run. Figures: per class total throughput
 * and p99; warmup_s; rss_drift_pct_after_warmup and the same for RssAnon
 * and RssFile: the mean of the last minute against the mean of the warm-up's
 * last minute (bounded components oscillate between trims and evictions);
 * the highest VmRSS after the warm-up against that mean; each memory figure
 * at both windows; open_fds_drift (end - end of warm-up); errors (non-2xx
 * answers other than 429/503 back-pressure; must be 0).
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
/* The server's query cache budget in this suite (TALLY_SOAK_QUERY_CACHE_BUDGET
 * overrides): small, so that the cache is full before the warm-up ends (the
 * M4 thread's 16 series gain about 50 KiB of cache per second at this
 * ingest rate on an idle machine) and the measured window shows whether it
 * stays within it. */
#define SOAK_QUERY_CACHE_BUDGET "4M"
/* And its mapped budget: every M4 query of this suite reads every block of
 * its 16 series (more than the 4 MiB query cache keeps), so what a query
 * maps grows with the data; 4 MiB keeps that bounded well below it. */
#define SOAK_MAPPED_BUDGET "4M"

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

/* One sample of the server's memory: what the kernel counts (MiB, from
 * /proc/<pid>/status) and what each component says it holds (MiB, from
 * GET /metrics; stats_memory.c). */
typedef struct mem_sample {
    double rss, anon, file;       /* VmRSS, RssAnon, RssFile */
    double engine;                /* tally_engine_memory_bytes */
    double qcache, qcache_kept;   /* tally_query_cache_bytes, _retained_bytes */
    double qcache_budget;         /* tally_query_cache_budget_bytes */
    double sqlite;                /* tally_sqlite_memory_bytes */
    double heap_used, heap_free;  /* tally_process_heap_bytes in_use / free */
    int fds;
} mem_sample;

static double metric_mib(const char *body, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(body, key);
    return p ? strtod(p + strlen(key), NULL) / 1048576.0 : -1;
}

/* 0, or -1 when the server went away. */
static int sample_memory(bench_hconn *h, pid_t pid, mem_sample *m)
{
    memset(m, 0, sizeof *m);
    m->rss = bench_proc_rss_mib(pid);
    if (m->rss == 0)
        return -1;
    m->anon = bench_proc_status_mib(pid, "RssAnon");
    m->file = bench_proc_status_mib(pid, "RssFile");
    m->fds = bench_proc_open_fds(pid);
    if (bench_hreq(h, "GET", "/metrics", NULL, NULL, 0) != 200)
        return 0; /* component figures stay 0: reported as such */
    const char *b = bench_hbody(h);
    m->engine = metric_mib(b, "tally_engine_memory_bytes");
    m->qcache = metric_mib(b, "tally_query_cache_bytes");
    m->qcache_kept = metric_mib(b, "tally_query_cache_retained_bytes");
    m->qcache_budget = metric_mib(b, "tally_query_cache_budget_bytes");
    m->sqlite = metric_mib(b, "tally_sqlite_memory_bytes");
    m->heap_used = metric_mib(b, "tally_process_heap_bytes{state=\"in_use\"}");
    m->heap_free = metric_mib(b, "tally_process_heap_bytes{state=\"free\"}");
    return 0;
}

#define WINDOW (60 / SAMPLE_S) /* samples in the one-minute windows compared */

/* The mean of samples [from, to) of h, field by field (fds: the last). */
static mem_sample window_mean(const mem_sample *h, int from, int to)
{
    mem_sample m = {0};
    if (from < 0)
        from = 0;
    int n = to - from;
    if (n <= 0)
        return m;
    for (int i = from; i < to; i++) {
        m.rss += h[i].rss / n;
        m.anon += h[i].anon / n;
        m.file += h[i].file / n;
        m.engine += h[i].engine / n;
        m.qcache += h[i].qcache / n;
        m.qcache_kept += h[i].qcache_kept / n;
        m.qcache_budget += h[i].qcache_budget / n;
        m.sqlite += h[i].sqlite / n;
        m.heap_used += h[i].heap_used / n;
        m.heap_free += h[i].heap_free / n;
    }
    m.fds = h[to - 1].fds;
    return m;
}

static void report_pair(bench_ctx *c, const char *what, double warm, double end)
{
    char fig[96];
    snprintf(fig, sizeof fig, "%s_mib_warm", what);
    bench_report(c, fig, warm, "MiB", NULL, 0, 0);
    snprintf(fig, sizeof fig, "%s_mib_end", what);
    bench_report(c, fig, end, "MiB", NULL, 0, 0);
}

static void report_drift(bench_ctx *c, const char *fig, double warm, double end)
{
    bench_report(c, fig, 100.0 * (end - warm) / (warm > 0 ? warm : 1), "%", NULL, 0, 0);
}

int bench_suite_soak(bench_ctx *c)
{
    const char *env = getenv("TALLY_SOAK_SECONDS");
    int total_s = env && atoi(env) > 0 ? atoi(env) : c->quick ? 120 : 1800;
    int interval_s = c->quick || total_s < 600 ? 20 : 60;
    const char *wenv = getenv("TALLY_SOAK_WARMUP_SECONDS");
    int warmup_s = wenv && atoi(wenv) > 0 ? atoi(wenv) : c->quick || total_s < 600 ? 40 : 300;
    char data[4200], log[4400];
    bench_subdir(c, "soak-data", data, sizeof data);
    snprintf(log, sizeof log, "%s/soak-server.log", c->work_dir);
    bench_server srv;
    /* Budgets small enough that the bounded caches fill during the warm-up
     * at this suite's ingest rate (see SOAK_QUERY_CACHE_BUDGET). */
    const char *qc_env = getenv("TALLY_SOAK_QUERY_CACHE_BUDGET");
    const char *qc_budget = qc_env && *qc_env ? qc_env : SOAK_QUERY_CACHE_BUDGET;
    const char *const server_args[] = {"--query-cache-budget", qc_budget, "--mapped-budget",
                                       SOAK_MAPPED_BUDGET, NULL};
    if (bench_server_start(&srv, data, log, server_args) != 0)
        return 1;
    soak *s = calloc(1, sizeof *s);
    s->port = srv.port;
    for (int k = 0; k < N_CLASSES; k++)
        pthread_mutex_init(&s->lat[k].mu, NULL);
    bench_hconn mh;
    if (setup_runs(s) != 0 || bench_hconn_open(&mh, s->port) != 0) {
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
    fprintf(stderr,
            "soak: %d s of mixed traffic, warm-up %d s, query cache budget %s, mapped budget %s; "
            "a line every %d s (req/s, p99 ms; memory MiB)\n",
            total_s, warmup_s, qc_budget, SOAK_MAPPED_BUDGET, interval_s);
    fprintf(stderr, "%6s", "t_s");
    for (int k = 0; k < N_CLASSES; k++)
        fprintf(stderr, " %9s/s %6s_p99", CLASS_NAMES[k], CLASS_NAMES[k]);
    fprintf(stderr, " %7s %7s %7s %4s %7s %7s %7s %7s %7s %7s\n", "rss", "anon", "file", "fds",
            "engine", "qcache", "qc_kept", "sqlite", "heap", "heapfr");
    uint64_t t_start = bench_now_ns();
    mem_sample *hist = calloc((size_t)total_s / SAMPLE_S + 1, sizeof *hist);
    int n_hist = 0, warm_n = 0; /* samples taken; samples in the warm-up */
    double rss_max = 0, rss_max_after = 0;
    int fds_max = 0, warm_done = 0, warm_t = 0;
    int next_line = interval_s;
    uint64_t last_req[N_CLASSES] = {0};
    for (int t = SAMPLE_S; t <= total_s; t += SAMPLE_S) {
        uint64_t wake = t_start + (uint64_t)t * 1000000000ull;
        while (bench_now_ns() < wake) {
            struct timespec d = {0, 100 * 1000 * 1000};
            nanosleep(&d, NULL);
        }
        mem_sample m;
        if (sample_memory(&mh, srv.pid, &m) != 0) {
            fprintf(stderr, "soak: the server went away (see %s)\n", log);
            break;
        }
        hist[n_hist++] = m;
        if (warm_done && m.rss > rss_max_after)
            rss_max_after = m.rss;
        if (m.rss > rss_max)
            rss_max = m.rss;
        if (m.fds > fds_max)
            fds_max = m.fds;
        /* The warm-up lasts at least warmup_s and until the query cache
         * holds 90 % of its budget (at most half the run). */
        if (!warm_done) {
            warm_n = n_hist;
            warm_t = t;
            warm_done = t >= warmup_s && (m.qcache >= 0.9 * m.qcache_budget || t >= total_s / 2);
            if (warm_done)
                fprintf(stderr, "soak: warm-up ends at %d s (query cache %.1f of %.1f MiB)\n", t,
                        m.qcache, m.qcache_budget);
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
            fprintf(stderr, " %7.1f %7.1f %7.1f %4d %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f\n", m.rss,
                    m.anon, m.file, m.fds, m.engine, m.qcache, m.qcache_kept, m.sqlite, m.heap_used,
                    m.heap_free);
            next_line += interval_s;
        }
    }
    atomic_store(&s->stop, 1);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    bench_hconn_close(&mh);
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
    /* Drift: the mean of the last minute against the mean of the warm-up's
     * last minute (bounded components oscillate between trims and
     * evictions; one sample against one sample would measure that). */
    mem_sample warm = window_mean(hist, warm_n - WINDOW, warm_n);
    mem_sample end = window_mean(hist, n_hist - WINDOW, n_hist);
    int have_warm = warm_done && n_hist - warm_n >= WINDOW;
    bench_report(c, "rss_mib_last_sample", end.rss, "MiB", NULL, 0, 0);
    bench_report(c, "rss_mib_max", rss_max, "MiB", NULL, 0, 0);
    if (have_warm) {
        report_drift(c, "rss_max_after_warmup_pct_over_warm", warm.rss, rss_max_after);
        bench_report(c, "warmup_s", warm_t, "s", NULL, 0, 0);
        bench_report(c, "query_cache_budget_mib", warm.qcache_budget, "MiB", NULL, 0, 0);
        report_drift(c, "rss_drift_pct_after_warmup", warm.rss, end.rss);
        report_drift(c, "rss_anon_drift_pct_after_warmup", warm.anon, end.anon);
        report_drift(c, "rss_file_drift_pct_after_warmup", warm.file, end.file);
        report_pair(c, "rss", warm.rss, end.rss);
        report_pair(c, "rss_anon", warm.anon, end.anon);
        report_pair(c, "rss_file", warm.file, end.file);
        report_pair(c, "engine_memory", warm.engine, end.engine);
        report_pair(c, "query_cache", warm.qcache, end.qcache);
        report_pair(c, "query_cache_retained", warm.qcache_kept, end.qcache_kept);
        report_pair(c, "sqlite_heap", warm.sqlite, end.sqlite);
        report_pair(c, "malloc_in_use", warm.heap_used, end.heap_used);
        report_pair(c, "malloc_free", warm.heap_free, end.heap_free);
    }
    bench_report(c, "open_fds_end", end.fds, "fds", NULL, 0, 0);
    bench_report(c, "open_fds_drift_after_warmup", end.fds - warm.fds, "fds", NULL, 0, 0);
    bench_report(c, "errors", (double)errors, "answers", NULL, 0, 0);
    free(hist);
    free(s);
    return errors ? 1 : 0;
}
