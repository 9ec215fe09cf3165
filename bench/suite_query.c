/*
 * suite_query.c — the `query` suite of tally-bench: what charts and MLflow's
 * sampled history cost on a store of many long runs.
 *
 * Data, built once and shared by every figure: R runs x N steps of
 * GEN_LOSS_F32 (R = 100, N = 1M; --quick: 20 x 200k), one series per run,
 * appended round by round (10000 points of every run per call) so blocks of
 * all runs interleave in the segments as a live cluster writes them, then
 * sealed, closed and reopened (`async` durability: ingest is not measured
 * here). Figures (latencies: p50 and p99 over REPS repetitions, QUICK_REPS
 * with --quick):
 *
 *   m4_w1000_full_<R>runs_warm_{p50,p99}_ms  tally_downsample_bulk, M4, W =
 *        1000, x = step, whole range, all R runs, after one warm-up query
 *        (page cache and rollup cache warm). Baseline: brute force in the
 *        same run, one thread: every point through snapshot + tally_iter,
 *        then M4 point by point.
 *   m4_w1000_full_<R>runs_cold_{p50,p99}_ms  the same query after
 *        `sync; echo 3 > /proc/sys/vm/drop_caches` before each repetition:
 *        the page cache is cold, the process (its rollup cache) is not, as
 *        for a server whose pages were evicted. If dropping fails the figure
 *        is not reported (stderr says why).
 *   m4_w1000_full_<R>runs_coldproc_p50_ms    page cache dropped and a fresh
 *        process (fork) per repetition: engine opened, then the timed query
 *        builds the rollup cache from scratch (engine open not timed).
 *   m4_zoom_1pct_<R>runs_{p50,p99}_ms        W = 1000 over a random 1% step
 *        window per repetition, all R runs, warm.
 *   full_history_decode_points_per_s     one series through tally_iter
 *        (65536-point buffer), median of REPS_DECODE.
 *   mlflow_bulk_interval_<R>runs_{p50,p99}_ms  tally_mlflow_bulk_interval over
 *        all R runs, max_results 320, default range. Reported only if the
 *        function returns 0.
 *   mlflow_bulk_interval_per_run_ms      the same divided by R, against the
 *        SQLite baseline per run: MLflow's server reads every point of each
 *        run (get_metric_history) and samples the shared step grid, on a
 *        subset (SQL_RUNS runs x SQL_POINTS points) because loading 100M rows
 *        into SQLite takes too long; its per-run time is the total / runs.
 *
 * Invariants:
 *  (1) Generating and ingesting data is never timed.
 *  (2) A figure whose measurement fails is not reported; the failure goes to
 *      stderr and the other figures still run; the suite then returns nonzero.
 *  (3) No engine is open in this process across a fork().
 */
#include "bench.h"
#include "gen.h"
#include "sqlite_baseline.h"

#include <tally/query.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPS 200 /* a p99 needs a few samples above it: over 40 it was the next-to-largest */
#define QUICK_REPS 12
#define BRUTE_REPS 5
#define QUICK_BRUTE_REPS 3
#define COLDPROC_REPS 5
#define REPS_DECODE 5
#define ROUND_POINTS 10000u
#define WIDTH 1000u
#define MLFLOW_MAX_RESULTS 320u

typedef struct qdata {
    char dir[4096];          /* engine data directory */
    size_t runs;             /* series (one per run) */
    size_t points;           /* points per series */
    tally_series_id *ids;    /* runs ids */
    char (*uuids)[33];       /* run uuids */
} qdata;

static const char KEY[] = "train/loss";

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static double ms_since(uint64_t t0) { return (double)(bench_now_ns() - t0) / 1e6; }

static int open_engine(const char *dir, int read_only, tally_engine **e)
{
    tally_engine_options o;
    tally_engine_options_init(&o);
    o.durability = TALLY_DURABILITY_ASYNC;
    o.read_only = read_only;
    if (getenv("TALLY_BENCH_PWRITE"))
        o.io_backend = TALLY_IO_PWRITE;
    return tally_engine_open(dir, &o, e);
}

/* --- data ----------------------------------------------------------------------- */

static int build(bench_ctx *c, qdata *d)
{
    bench_subdir(c, "query-engine", d->dir, sizeof d->dir);
    d->ids = calloc(d->runs, sizeof *d->ids);
    d->uuids = calloc(d->runs, sizeof *d->uuids);
    size_t cap = d->runs * ROUND_POINTS;
    int64_t *st = malloc(cap * 8), *ts = malloc(cap * 8);
    double *v = malloc(cap * 8);
    tally_series_batch *b = calloc(d->runs, sizeof *b);
    if (!d->ids || !d->uuids || !st || !ts || !v || !b) {
        free(st);
        free(ts);
        free(v);
        free(b);
        return -ENOMEM;
    }
    for (size_t r = 0; r < d->runs; r++) {
        snprintf(d->uuids[r], 33, "%016llx%016llx", (unsigned long long)mix64(r),
                 (unsigned long long)mix64(r + 7777));
        d->ids[r] = tally_series_id_of(d->uuids[r], 32, KEY, strlen(KEY));
    }
    tally_engine *e;
    int rc = open_engine(d->dir, 0, &e);
    uint64_t t0 = bench_now_ns();
    for (size_t off = 0; rc == 0 && off < d->points; off += ROUND_POINTS) {
        size_t len = d->points - off < ROUND_POINTS ? d->points - off : ROUND_POINTS;
        for (size_t r = 0; r < d->runs; r++) {
            size_t at = r * ROUND_POINTS;
            gen_series(GEN_LOSS_F32, r, off, len, st + at, ts + at, v + at);
            b[r] = (tally_series_batch){d->uuids[r], 32, KEY, strlen(KEY), (uint32_t)len,
                                        st + at, ts + at, v + at};
        }
        do {
            rc = tally_engine_append(e, b, d->runs);
        } while (rc == TALLY_EBUSY);
    }
    if (rc == 0)
        rc = tally_engine_checkpoint(e);
    int rc2 = rc == 0 ? tally_engine_close(e) : (tally_engine_close(e), rc);
    fprintf(stderr, "query suite: %zu runs x %zu points ingested in %.1f s (%s)\n", d->runs,
            d->points, ms_since(t0) / 1000, rc2 ? tally_strerror(rc2) : "ok");
    free(st);
    free(ts);
    free(v);
    free(b);
    return rc2;
}

/* --- brute force M4 --------------------------------------------------------------- */

/* Every point of one series through the iterator, then M4 by the documented
 * column mapping, streaming; returns the number of output points. */
static size_t brute_m4(tally_engine *e, tally_series_id id, uint32_t width, tally_point *buf,
                       size_t cap, tally_point *outp)
{
    tally_series_info info;
    tally_snapshot *s;
    tally_iter *it;
    if (tally_engine_series_info(e, id, &info) || tally_snapshot_open(e, id, &s))
        return 0;
    if (tally_iter_start(s, INT64_MIN, INT64_MAX, &it)) {
        tally_snapshot_close(s);
        return 0;
    }
    __extension__ typedef __int128 i128;
    i128 lo = info.min_step, span = (i128)info.max_step - info.min_step + 1;
    size_t n_out = 0;
    int open = 0;
    i128 col_end = 0;
    uint64_t col = 0;
    tally_point first = {0, 0, 0}, last = first, mn = first, mx = first;
    for (;;) {
        size_t got;
        if (tally_iter_next(it, buf, cap, &got) || got == 0)
            break;
        for (size_t i = 0; i < got; i++) {
            const tally_point *p = &buf[i];
            if (p->value != p->value)
                continue;
            if (!open || p->step > col_end) {
                if (open) {
                    outp[n_out++] = first;
                    outp[n_out++] = mn;
                    outp[n_out++] = mx;
                    outp[n_out++] = last;
                }
                col = (uint64_t)(((i128)p->step - lo) * width / span);
                col_end = lo + ((i128)(col + 1) * span + width - 1) / width - 1;
                first = mn = mx = *p;
                open = 1;
            }
            if (p->value < mn.value)
                mn = *p;
            if (p->value > mx.value)
                mx = *p;
            last = *p;
        }
    }
    if (open) {
        outp[n_out++] = first;
        outp[n_out++] = mn;
        outp[n_out++] = mx;
        outp[n_out++] = last;
    }
    tally_iter_stop(it);
    tally_snapshot_close(s);
    return n_out;
}

/* --- figures ---------------------------------------------------------------------------- */

static int drop_caches(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd < 0)
        return -errno;
    int rc = write(fd, "3", 1) == 1 ? 0 : -errno;
    close(fd);
    return rc;
}

static int bulk_m4(tally_engine *e, const qdata *d, const tally_ds_req *req, tally_ds_result *res,
                   double *ms)
{
    uint64_t t0 = bench_now_ns();
    int rc = tally_downsample_bulk(e, d->ids, d->runs, req, res);
    *ms = ms_since(t0);
    for (size_t r = 0; r < d->runs && rc == 0; r++)
        tally_ds_result_free(&res[r]);
    return rc;
}

static void report_lat(bench_ctx *c, const char *name, double *v, size_t n, const char *baseline,
                       double base_p50, double base_p99)
{
    char fig[160];
    double p50 = bench_percentile(v, n, 50), p99 = bench_percentile(v, n, 99);
    snprintf(fig, sizeof fig, "%s_p50_ms", name);
    bench_report(c, fig, p50, "ms", baseline, base_p50, 0);
    snprintf(fig, sizeof fig, "%s_p99_ms", name);
    bench_report(c, fig, p99, "ms", baseline, base_p99, 0);
}

static int fig_m4(bench_ctx *c, tally_engine *e, const qdata *d, int reps, int *cold_ok)
{
    tally_ds_result *res = calloc(d->runs, sizeof *res);
    double *lat = calloc((size_t)reps, sizeof *lat);
    size_t cap = 65536;
    tally_point *buf = malloc(cap * sizeof *buf), *outp = malloc(4 * (WIDTH + 2) * sizeof *outp);
    if (!res || !lat || !buf || !outp)
        return -ENOMEM;
    tally_ds_req req = {TALLY_DS_M4, TALLY_X_STEP, 1, 0, 0, WIDTH};
    char name[128];
    int rc = bulk_m4(e, d, &req, res, &lat[0]); /* warm-up: page cache and rollups */
    fprintf(stderr, "query suite: first M4 query %.1f ms\n", lat[0]);

    /* brute force, one thread */
    int breps = c->quick ? QUICK_BRUTE_REPS : BRUTE_REPS;
    double brute[BRUTE_REPS];
    size_t brute_pts = 0;
    for (int k = 0; k < breps; k++) {
        uint64_t t0 = bench_now_ns();
        brute_pts = 0;
        for (size_t r = 0; r < d->runs; r++)
            brute_pts += brute_m4(e, d->ids[r], WIDTH, buf, cap, outp);
        brute[k] = ms_since(t0);
    }
    double b50 = bench_percentile(brute, (size_t)breps, 50);
    double b99 = bench_percentile(brute, (size_t)breps, 99);
    fprintf(stderr, "query suite: brute force M4 p50 %.1f ms (%zu points out)\n", b50, brute_pts);

    for (int k = 0; k < reps && rc == 0; k++)
        rc = bulk_m4(e, d, &req, res, &lat[k]);
    if (rc == 0) {
        snprintf(name, sizeof name, "m4_w1000_full_%zuruns_warm", d->runs);
        report_lat(c, name, lat, (size_t)reps, "brute force (iterator + M4, 1 thread)", b50, b99);
    }

    /* page cache cold, process warm */
    *cold_ok = drop_caches() == 0;
    if (!*cold_ok)
        fprintf(stderr, "query suite: cannot drop the page cache (%s): no cold figure\n",
                strerror(errno));
    for (int k = 0; k < reps && rc == 0 && *cold_ok; k++) {
        drop_caches();
        rc = bulk_m4(e, d, &req, res, &lat[k]);
    }
    if (rc == 0 && *cold_ok) {
        snprintf(name, sizeof name, "m4_w1000_full_%zuruns_cold", d->runs);
        report_lat(c, name, lat, (size_t)reps, NULL, 0, 0);
    }

    /* zoom: a random 1% window */
    uint64_t window = d->points / 100;
    for (int k = 0; k < reps && rc == 0; k++) {
        tally_ds_req z = req;
        z.full_range = 0;
        z.x_lo = (int64_t)(mix64((uint64_t)k + 99) % (d->points - window));
        z.x_hi = z.x_lo + (int64_t)window - 1;
        rc = bulk_m4(e, d, &z, res, &lat[k]);
    }
    if (rc == 0) {
        snprintf(name, sizeof name, "m4_zoom_1pct_%zuruns", d->runs);
        report_lat(c, name, lat, (size_t)reps, NULL, 0, 0);
    }
    if (rc)
        fprintf(stderr, "query suite: M4: %s\n", tally_strerror(rc));
    free(res);
    free(lat);
    free(buf);
    free(outp);
    return rc;
}

/* Fresh process and dropped page cache per repetition. Call with no engine open (3). */
static int fig_coldproc(bench_ctx *c, const qdata *d)
{
    double lat[COLDPROC_REPS];
    int reps = c->quick ? 3 : COLDPROC_REPS;
    for (int k = 0; k < reps; k++) {
        if (drop_caches() != 0) {
            fprintf(stderr, "query suite: cannot drop the page cache: no coldproc figure\n");
            return 0;
        }
        int fds[2];
        if (pipe(fds) != 0)
            return -errno;
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            tally_engine *e;
            double ms = -1;
            if (open_engine(d->dir, 1, &e) == 0) {
                tally_ds_result *res = calloc(d->runs, sizeof *res);
                tally_ds_req req = {TALLY_DS_M4, TALLY_X_STEP, 1, 0, 0, WIDTH};
                if (res && bulk_m4(e, d, &req, res, &ms) != 0)
                    ms = -1;
                tally_engine_close(e);
            }
            ssize_t w = write(fds[1], &ms, sizeof ms);
            _exit(w == (ssize_t)sizeof ms ? 0 : 1);
        }
        close(fds[1]);
        double ms = -1;
        ssize_t got = read(fds[0], &ms, sizeof ms);
        close(fds[0]);
        waitpid(pid, NULL, 0);
        if (got != (ssize_t)sizeof ms || ms < 0) {
            fprintf(stderr, "query suite: cold process run failed\n");
            return -1;
        }
        lat[k] = ms;
    }
    char name[128];
    snprintf(name, sizeof name, "m4_w1000_full_%zuruns_coldproc_p50_ms", d->runs);
    bench_report(c, name, bench_percentile(lat, (size_t)reps, 50), "ms", NULL, 0, 0);
    return 0;
}

static int fig_decode(bench_ctx *c, tally_engine *e, const qdata *d)
{
    size_t cap = 65536;
    tally_point *buf = malloc(cap * sizeof *buf);
    double rate[REPS_DECODE];
    int rc = buf ? 0 : -ENOMEM;
    for (int k = 0; k < REPS_DECODE && rc == 0; k++) {
        tally_snapshot *s;
        tally_iter *it;
        uint64_t n = 0, t0 = bench_now_ns();
        rc = tally_snapshot_open(e, d->ids[k % d->runs], &s);
        if (rc)
            break;
        rc = tally_iter_start(s, INT64_MIN, INT64_MAX, &it);
        for (size_t got = 1; rc == 0 && got;) {
            rc = tally_iter_next(it, buf, cap, &got);
            n += got;
        }
        tally_iter_stop(it);
        tally_snapshot_close(s);
        rate[k] = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
    }
    if (rc == 0)
        bench_report(c, "full_history_decode_points_per_s",
                     bench_median(rate, REPS_DECODE), "points/s", NULL, 0, 1);
    free(buf);
    return rc;
}

/* --- MLflow bulk interval ------------------------------------------------------------- */

typedef struct sql_pts {
    tally_point *p;
    size_t n, cap;
} sql_pts;

static int sql_collect(void *ctx, int64_t step, int64_t ts, double value)
{
    sql_pts *sp = ctx;
    if (sp->n == sp->cap) {
        sp->cap = sp->cap ? 2 * sp->cap : 65536;
        tally_point *np = realloc(sp->p, sp->cap * sizeof *np);
        if (!np)
            return 1;
        sp->p = np;
    }
    sp->p[sp->n++] = (tally_point){step, ts, value};
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* What MLflow's server does for get-history-bulk-interval on SQL: every
 * point of every run, then the shared step grid (distinct steps, picks
 * floor(i * n / M), the last, each run's first and last step), then every
 * point at a chosen step. Returns points kept. */
static size_t sql_bulk_interval(sqlite_baseline *db, char (*uuids)[33], size_t runs, sql_pts *pts)
{
    size_t total = 0;
    for (size_t r = 0; r < runs; r++) {
        pts[r].n = 0;
        sqlite_baseline_read_series(db, uuids[r], KEY, sql_collect, &pts[r], NULL);
        total += pts[r].n;
    }
    int64_t *steps = malloc((total + 1) * sizeof *steps);
    size_t n = 0;
    for (size_t r = 0; r < runs; r++)
        for (size_t i = 0; i < pts[r].n; i++)
            if (pts[r].p[i].step >= 0)
                steps[n++] = pts[r].p[i].step;
    qsort(steps, n, sizeof *steps, cmp_i64);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || steps[i] != steps[u - 1])
            steps[u++] = steps[i];
    int64_t *grid = malloc((MLFLOW_MAX_RESULTS + 2 + 2 * runs) * sizeof *grid);
    size_t g = 0;
    if (u <= MLFLOW_MAX_RESULTS) {
        memcpy(grid, steps, u * sizeof *grid);
        g = u;
    } else {
        double dd = (double)u / MLFLOW_MAX_RESULTS;
        for (size_t i = 0; i < MLFLOW_MAX_RESULTS; i++)
            grid[g++] = steps[(size_t)((double)i * dd)];
        grid[g++] = steps[u - 1];
    }
    for (size_t r = 0; r < runs; r++) {
        int64_t mn = INT64_MAX, mx = INT64_MIN;
        for (size_t i = 0; i < pts[r].n; i++) {
            mn = pts[r].p[i].step < mn ? pts[r].p[i].step : mn;
            mx = pts[r].p[i].step > mx ? pts[r].p[i].step : mx;
        }
        if (pts[r].n) {
            grid[g++] = mn;
            grid[g++] = mx;
        }
    }
    qsort(grid, g, sizeof *grid, cmp_i64);
    size_t kept = 0;
    for (size_t r = 0; r < runs; r++) {
        size_t w = 0;
        for (size_t i = 0; i < pts[r].n; i++)
            if (bsearch(&pts[r].p[i].step, grid, g, sizeof *grid, cmp_i64))
                pts[r].p[w++] = pts[r].p[i];
        pts[r].n = w;
        kept += w;
    }
    free(steps);
    free(grid);
    return kept;
}

static int fig_mlflow(bench_ctx *c, tally_engine *e, const qdata *d, int reps)
{
    tally_run_points *out = calloc(d->runs, sizeof *out);
    double *lat = calloc((size_t)reps, sizeof *lat);
    if (!out || !lat)
        return -ENOMEM;
    int rc = tally_mlflow_bulk_interval(e, d->ids, d->runs, 0, 0, 0, MLFLOW_MAX_RESULTS, out);
    for (size_t r = 0; r < d->runs && rc == 0; r++)
        tally_run_points_free(&out[r]);
    for (int k = 0; k < reps && rc == 0; k++) {
        uint64_t t0 = bench_now_ns();
        rc = tally_mlflow_bulk_interval(e, d->ids, d->runs, 0, 0, 0, MLFLOW_MAX_RESULTS, out);
        lat[k] = ms_since(t0);
        for (size_t r = 0; r < d->runs && rc == 0; r++)
            tally_run_points_free(&out[r]);
    }
    if (rc) {
        fprintf(stderr, "query suite: tally_mlflow_bulk_interval: %s (figure skipped)\n",
                tally_strerror(rc));
        free(out);
        free(lat);
        return rc;
    }
    char name[128];
    snprintf(name, sizeof name, "mlflow_bulk_interval_%zuruns", d->runs);
    double p50 = bench_percentile(lat, (size_t)reps, 50);
    report_lat(c, name, lat, (size_t)reps, NULL, 0, 0);

    /* SQLite baseline on a subset, per run. */
    size_t sql_runs = c->quick ? 4 : 10, sql_points = c->quick ? d->points : d->points / 2;
    if (sql_runs > d->runs)
        sql_runs = d->runs;
    char path[4096];
    bench_subdir(c, "query-sqlite", path, sizeof path);
    strncat(path, "/mlflow.db", sizeof path - strlen(path) - 1);
    sqlite_baseline *db;
    rc = sqlite_baseline_open(path, &db);
    int64_t *st = malloc(sql_points * 8), *ts = malloc(sql_points * 8);
    double *v = malloc(sql_points * 8);
    uint64_t t0 = bench_now_ns();
    for (size_t r = 0; r < sql_runs && rc == 0; r++) {
        gen_series(GEN_LOSS_F32, r, 0, sql_points, st, ts, v);
        rc = sqlite_baseline_log_series(db, d->uuids[r], KEY, st, ts, v, sql_points);
    }
    if (rc == 0)
        rc = sqlite_baseline_checkpoint(db);
    fprintf(stderr, "query suite: SQLite subset %zu runs x %zu points loaded in %.1f s\n", sql_runs,
            sql_points, ms_since(t0) / 1000);
    sql_pts *pts = calloc(sql_runs, sizeof *pts);
    int sreps = c->quick ? 2 : 3;
    double sl[3];
    for (int k = 0; k < sreps && rc == 0; k++) {
        t0 = bench_now_ns();
        sql_bulk_interval(db, d->uuids, sql_runs, pts);
        sl[k] = ms_since(t0) / (double)sql_runs;
    }
    if (rc == 0) {
        char base[128];
        snprintf(base, sizeof base, "SQLite MLflow schema, read all + sample (%zu runs x %zu pts)",
                 sql_runs, sql_points);
        bench_report(c, "mlflow_bulk_interval_per_run_ms", p50 / (double)d->runs, "ms/run", base,
                     bench_median(sl, (size_t)sreps), 0);
    }
    for (size_t r = 0; r < sql_runs; r++)
        free(pts[r].p);
    free(pts);
    sqlite_baseline_close(db);
    free(st);
    free(ts);
    free(v);
    free(out);
    free(lat);
    return rc;
}

int bench_suite_query(bench_ctx *c)
{
    qdata d;
    memset(&d, 0, sizeof d);
    d.runs = c->quick ? 20 : 100;
    d.points = c->quick ? 200000 : 1000000;
    int reps = c->quick ? QUICK_REPS : REPS;
    int rc = build(c, &d), failed = rc != 0;
    tally_engine *e = NULL;
    /* First, while this process has no engine open and no query thread (3). */
    if (rc == 0)
        failed |= fig_coldproc(c, &d) != 0;
    if (rc == 0)
        rc = open_engine(d.dir, 0, &e);
    if (rc == 0) {
        int cold_ok = 0;
        failed |= fig_m4(c, e, &d, reps, &cold_ok) != 0;
        failed |= fig_decode(c, e, &d) != 0;
        failed |= fig_mlflow(c, e, &d, reps) != 0;
        tally_engine_close(e);
    } else {
        fprintf(stderr, "query suite: %s\n", tally_strerror(rc));
        failed = 1;
    }
    free(d.ids);
    free(d.uuids);
    return failed ? 1 : 0;
}
