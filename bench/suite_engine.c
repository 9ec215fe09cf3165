/*
 * suite_engine.c — the `engine` suite of tally-bench: what the metric engine
 * costs and how it compares with MLflow's SQLite storage.
 *
 * Figures (full size; --quick in brackets). Timed figures are medians of
 * REPS repetitions, each on a fresh data directory unless said otherwise:
 *
 *   ingest_batch_points_per_s   100 GEN_MIX series x 100k points [20k] through
 *                               tally_engine_append, one producer, `group`
 *                               durability, every call carrying all 100 series
 *                               with 1000..10000 points each. Baseline: the
 *                               SQLite baseline logging a subset (10 series x
 *                               20k [5k]) in transactions of 1000 points.
 *   append_point_points_per_s   the same points through tally_appender_add,
 *                               step-major (a training loop logging 100
 *                               metrics per step), final flush included.
 *   bytes_per_point_<kind>      1M [200k] points of one gen kind written,
 *                               engine closed, every byte of the data dir /
 *                               points. Baseline: the SQLite file for the same
 *                               points. Not timed, so measured once.
 *   reopen_after_kill_s         a child appends 10M [2M] points with
 *                               checkpoints disabled and is SIGKILLed; the
 *                               parent times tally_engine_open (recovery).
 *   ingest_peak_rss_delta_mib   that child's peak RSS (getrusage) minus its
 *                               RSS before opening the engine: the memory
 *                               an ingest of 10M [2M] points costs.
 *   reopen_clean_s              tally_engine_open of a cleanly closed 100M
 *                               [10M] point store (1000 [100] series), built
 *                               once and reopened REPS_CHEAP times. Warm cache.
 *   reopen_clean_rss_delta_mib  RSS growth across that open (largest of the
 *                               repetitions: later ones reuse freed memory).
 *   read_series_points_per_s    one 1M [200k] point series, read in full
 *                               through snapshot + iterator (65536-point
 *                               buffer) after a reopen. Baseline: the SQLite
 *                               baseline's ordered read of the same series.
 *
 * Invariants:
 *  (1) Generating data is never timed: every timed loop reads points that
 *      were generated before its clock started.
 *  (2) A figure whose measurement fails is not reported; the failure goes to
 *      stderr, the other figures still run, and the suite returns nonzero.
 *  (3) No engine is open in this process across a fork() (engine threads
 *      would not survive it).
 */
#include "bench.h"
#include "gen.h"
#include "sqlite_baseline.h"

#include <tally/engine.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REPS 3            /* repetitions of each timed figure */
#define REPS_CHEAP 5      /* repetitions when one costs well under a second */
#define READ_BUF_POINTS 65536u

/* ------------------------------------------------------------------------ */
/* Generated data                                                            */
/* ------------------------------------------------------------------------ */

/* n_series series of n_points each, series-major: series i's columns start at
 * i * n_points. Identity: series i belongs to run i / SERIES_PER_RUN. */
typedef struct series_set {
    size_t n_series;   /* series in the set */
    size_t n_points;   /* points per series */
    int64_t *steps;    /* n_series * n_points */
    int64_t *ts_ms;    /* n_series * n_points, wall time in ms */
    double *values;    /* n_series * n_points */
    char (*runs)[33];  /* n_series run uuids: 32 hex + NUL, MLflow style */
    char (*keys)[48];  /* n_series metric keys */
} series_set;

#define SERIES_PER_RUN 10

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A 32-hex run uuid for run number run (distinct per salt). */
static void run_uuid(uint64_t salt, uint64_t run, char out[33])
{
    uint64_t a = splitmix64(salt * 1000003u + run), b = splitmix64(a ^ run);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

static void set_free(series_set *s)
{
    free(s->steps);
    free(s->ts_ms);
    free(s->values);
    free(s->runs);
    free(s->keys);
    memset(s, 0, sizeof *s);
}

/* Generates n_series series of kind (GEN_MIX: series i is seed first_seed + i)
 * with n_points each. Returns 0 or -ENOMEM. */
static int set_make(series_set *s, gen_kind kind, uint64_t salt, uint64_t first_seed,
                    size_t n_series, size_t n_points)
{
    memset(s, 0, sizeof *s);
    size_t n = n_series * n_points;
    s->n_series = n_series;
    s->n_points = n_points;
    s->steps = malloc(n * sizeof *s->steps);
    s->ts_ms = malloc(n * sizeof *s->ts_ms);
    s->values = malloc(n * sizeof *s->values);
    s->runs = calloc(n_series, sizeof *s->runs);
    s->keys = calloc(n_series, sizeof *s->keys);
    if (!s->steps || !s->ts_ms || !s->values || !s->runs || !s->keys) {
        set_free(s);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n_series; i++) {
        size_t off = i * n_points;
        gen_series(kind, first_seed + i, 0, n_points, s->steps + off, s->ts_ms + off,
                   s->values + off);
        run_uuid(salt, i / SERIES_PER_RUN, s->runs[i]);
        snprintf(s->keys[i], sizeof s->keys[i], "%s/%s_%02zu", kind == GEN_MIX ? "train" : "m",
                 gen_kind_name(kind), i % SERIES_PER_RUN);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Engine helpers                                                            */
/* ------------------------------------------------------------------------ */

static void engine_options(tally_engine_options *o)
{
    tally_engine_options_init(o);
    o->durability = TALLY_DURABILITY_GROUP; /* the default, stated explicitly */
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "engine suite: %s: %s\n", what, tally_strerror(rc));
    return rc ? rc : -1;
}

/* tally_engine_append, retrying while the memory budget is full (the time
 * spent waiting is part of the measurement: it is back-pressure). */
static int append_retry(tally_engine *e, const tally_series_batch *b, size_t n)
{
    for (;;) {
        int rc = tally_engine_append(e, b, n);
        if (rc != TALLY_EBUSY)
            return rc;
        struct timespec ts = {0, 200 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Points per series in round r of an ingest, in [lo, hi], deterministic. */
static size_t round_points(size_t r, size_t lo, size_t hi)
{
    return lo + (size_t)(splitmix64(r) % (hi - lo + 1));
}

/* Appends every point of s: each call carries every series still having
 * points, round r giving each round_points(r, lo, hi) of them. */
static int append_set(tally_engine *e, const series_set *s, size_t lo, size_t hi)
{
    tally_series_batch *b = calloc(s->n_series, sizeof *b);
    if (!b)
        return TALLY_ENOMEM;
    int rc = 0;
    for (size_t off = 0, r = 0; off < s->n_points && rc == 0; r++) {
        size_t len = round_points(r, lo, hi);
        if (len > s->n_points - off)
            len = s->n_points - off;
        for (size_t i = 0; i < s->n_series; i++) {
            size_t at = i * s->n_points + off;
            b[i].run_id = s->runs[i];
            b[i].run_id_len = 32;
            b[i].key = s->keys[i];
            b[i].key_len = strlen(s->keys[i]);
            b[i].n_points = (uint32_t)len;
            b[i].steps = s->steps + at;
            b[i].timestamps_ms = s->ts_ms + at;
            b[i].values = s->values + at;
        }
        rc = append_retry(e, b, s->n_series);
        off += len;
    }
    free(b);
    return rc;
}

/* Resident set size now, in bytes (from /proc/self/statm). */
static double rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return NAN;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    return n == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : NAN;
}

static double secs_since(uint64_t t0)
{
    return (double)(bench_now_ns() - t0) / 1e9;
}

/* ------------------------------------------------------------------------ */
/* ingest_batch_points_per_s                                                 */
/* ------------------------------------------------------------------------ */

static int sqlite_ingest_rate(bench_ctx *c, const series_set *s, size_t n_series,
                              size_t n_points, double *rate)
{
    double samples[REPS];
    for (int rep = 0; rep < REPS; rep++) {
        char dir[4096], path[4200];
        bench_subdir(c, "ingest-sqlite", dir, sizeof dir);
        snprintf(path, sizeof path, "%s/mlflow.db", dir);
        sqlite_baseline *b;
        int rc = sqlite_baseline_open(path, &b);
        if (rc)
            return rc;
        /* Interleave series as a training cluster would: 1000 points of each
         * series in turn, one log_batch (transaction) each. */
        uint64_t t0 = bench_now_ns();
        for (size_t off = 0; off < n_points && rc == 0; off += SQLITE_BASELINE_BATCH_MAX) {
            size_t len = n_points - off < SQLITE_BASELINE_BATCH_MAX ? n_points - off
                                                                    : SQLITE_BASELINE_BATCH_MAX;
            for (size_t i = 0; i < n_series && rc == 0; i++) {
                size_t at = i * s->n_points + off;
                rc = sqlite_baseline_log_series(b, s->runs[i], s->keys[i], s->steps + at,
                                                s->ts_ms + at, s->values + at, len);
            }
        }
        double secs = secs_since(t0);
        sqlite_baseline_close(b);
        if (rc)
            return rc;
        samples[rep] = (double)(n_series * n_points) / secs;
    }
    *rate = bench_median(samples, REPS);
    return 0;
}

static int fig_ingest(bench_ctx *c, const series_set *s)
{
    double rates[REPS];
    for (int rep = 0; rep < REPS; rep++) {
        char dir[4096];
        bench_subdir(c, "ingest", dir, sizeof dir);
        tally_engine_options o;
        engine_options(&o);
        tally_engine *e;
        int rc = tally_engine_open(dir, &o, &e);
        if (rc)
            return fail("ingest: open", rc);
        uint64_t t0 = bench_now_ns();
        rc = append_set(e, s, 1000, 10000);
        double secs = secs_since(t0);
        tally_engine_stats st;
        if (tally_engine_stats_get(e, &st) == 0)
            fprintf(stderr, "  ingest rep %d: %.3f s, %llu WAL records, %llu fsyncs, io_uring %d\n",
                    rep, secs, (unsigned long long)st.wal_records, (unsigned long long)st.fsyncs,
                    st.io_uring);
        uint64_t tc = bench_now_ns();
        int rc2 = tally_engine_close(e);
        fprintf(stderr, "  ingest rep %d: close %.3f s\n", rep, secs_since(tc));
        if (rc)
            return fail("ingest: append", rc);
        if (rc2)
            return fail("ingest: close", rc2);
        rates[rep] = (double)(s->n_series * s->n_points) / secs;
    }
    size_t sq_series = 10, sq_points = c->quick ? 5000 : 20000;
    if (sq_points > s->n_points)
        sq_points = s->n_points;
    double sq_rate = NAN;
    int rc = sqlite_ingest_rate(c, s, sq_series, sq_points, &sq_rate);
    if (rc)
        fprintf(stderr, "engine suite: sqlite ingest failed (%d)\n", rc);
    bench_report(c, "ingest_batch_points_per_s", bench_median(rates, REPS), "points/s",
                 "sqlite-mlflow-schema", sq_rate, 1);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* append_point_points_per_s                                                 */
/* ------------------------------------------------------------------------ */

static int fig_append_point(bench_ctx *c, const series_set *s)
{
    double rates[REPS];
    size_t *key_len = calloc(s->n_series, sizeof *key_len);
    if (!key_len)
        return fail("append_point", TALLY_ENOMEM);
    for (size_t i = 0; i < s->n_series; i++)
        key_len[i] = strlen(s->keys[i]);
    int rc = 0;
    for (int rep = 0; rep < REPS && rc == 0; rep++) {
        char dir[4096];
        bench_subdir(c, "append-point", dir, sizeof dir);
        tally_engine_options o;
        engine_options(&o);
        tally_engine *e;
        tally_appender *a = NULL;
        rc = tally_engine_open(dir, &o, &e);
        if (rc) {
            fail("append_point: open", rc);
            break;
        }
        rc = tally_appender_new(e, 0, &a);
        uint64_t t0 = bench_now_ns();
        /* Step-major: each training step logs every metric once. */
        for (size_t p = 0; p < s->n_points && rc == 0; p++) {
            for (size_t i = 0; i < s->n_series; i++) {
                size_t at = i * s->n_points + p;
                rc = tally_appender_add(a, s->runs[i], 32, s->keys[i], key_len[i], s->steps[at],
                                        s->ts_ms[at], s->values[at]);
                while (rc == TALLY_EBUSY) {
                    struct timespec ts = {0, 200 * 1000};
                    nanosleep(&ts, NULL);
                    rc = tally_appender_flush(a);
                }
                if (rc)
                    break;
            }
        }
        if (rc == 0)
            rc = tally_appender_flush(a);
        double secs = secs_since(t0);
        tally_appender_free(a);
        int rc2 = tally_engine_close(e);
        if (rc) {
            fail("append_point: add", rc);
            break;
        }
        if (rc2) {
            rc = fail("append_point: close", rc2);
            break;
        }
        rates[rep] = (double)(s->n_series * s->n_points) / secs;
        fprintf(stderr, "  append_point rep %d: %.3f s\n", rep, secs);
    }
    free(key_len);
    if (rc)
        return rc;
    bench_report(c, "append_point_points_per_s", bench_median(rates, REPS), "points/s", NULL, 0,
                 1);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* bytes_per_point_<kind>                                                    */
/* ------------------------------------------------------------------------ */

static int fig_bytes_per_point(bench_ctx *c, gen_kind kind, const char *name)
{
    size_t total = c->quick ? 200000 : 1000000;
    /* Single kinds: a few long series; the mix: many shorter ones, as a run
     * logs many metrics. */
    size_t n_series = kind == GEN_MIX ? 40 : 4;
    series_set s;
    if (set_make(&s, kind, 1000 + (uint64_t)kind, 0, n_series, total / n_series))
        return fail("bytes_per_point: generate", TALLY_ENOMEM);
    size_t n = s.n_series * s.n_points;

    char dir[4096], sub[128];
    snprintf(sub, sizeof sub, "bytes-%s", name);
    bench_subdir(c, sub, dir, sizeof dir);
    tally_engine_options o;
    engine_options(&o);
    tally_engine *e;
    int rc = tally_engine_open(dir, &o, &e);
    if (rc) {
        set_free(&s);
        return fail("bytes_per_point: open", rc);
    }
    rc = append_set(e, &s, 10000, 10000);
    tally_engine_stats st;
    memset(&st, 0, sizeof st);
    tally_engine_stats_get(e, &st);
    int rc2 = tally_engine_close(e);
    if (rc || rc2) {
        set_free(&s);
        return fail("bytes_per_point: append/close", rc ? rc : rc2);
    }
    uint64_t bytes = bench_dir_bytes(dir);
    fprintf(stderr, "  bytes %s: %llu bytes on disk (%llu in blocks before close) for %zu points\n",
            name, (unsigned long long)bytes, (unsigned long long)st.segment_bytes, n);

    char sdir[4096], path[4200];
    snprintf(sub, sizeof sub, "bytes-%s-sqlite", name);
    bench_subdir(c, sub, sdir, sizeof sdir);
    snprintf(path, sizeof path, "%s/mlflow.db", sdir);
    sqlite_baseline *b;
    double sq = NAN;
    rc = sqlite_baseline_open(path, &b);
    for (size_t i = 0; i < s.n_series && rc == 0; i++)
        rc = sqlite_baseline_log_series(b, s.runs[i], s.keys[i], s.steps + i * s.n_points,
                                        s.ts_ms + i * s.n_points, s.values + i * s.n_points,
                                        s.n_points);
    if (rc == 0) {
        rc = sqlite_baseline_close(b);
        if (rc == 0)
            sq = (double)bench_dir_bytes(sdir) / (double)n;
    } else {
        sqlite_baseline_close(b);
        fprintf(stderr, "engine suite: sqlite bytes_per_point %s failed (%d)\n", name, rc);
    }
    set_free(&s);

    char fig[96];
    snprintf(fig, sizeof fig, "bytes_per_point_%s", name);
    bench_report(c, fig, (double)bytes / (double)n, "B/point", "sqlite-mlflow-schema", sq, 0);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* reopen_after_kill_s, ingest_peak_rss_delta_mib                           */
/* ------------------------------------------------------------------------ */

/* What the kill test's child reports through its pipe. */
typedef struct kill_msg {
    char status;       /* 'k' when every point is acknowledged, 'e' on error */
    double rss0_bytes; /* the child's RSS before it opened the engine */
} kill_msg;

/* The child: ingest everything without a checkpoint, say so, wait to die. */
static void kill_child(const char *dir, const series_set *s, int wfd)
{
    kill_msg msg = {'e', rss_bytes()};
    tally_engine_options o;
    engine_options(&o);
    o.checkpoint_wal_bytes = UINT64_C(1) << 50; /* never checkpoint */
    tally_engine *e;
    int rc = tally_engine_open(dir, &o, &e);
    if (rc == 0)
        rc = append_set(e, s, 10000, 10000);
    msg.status = rc == 0 ? 'k' : 'e';
    if (rc)
        fprintf(stderr, "engine suite: kill child: %s\n", tally_strerror(rc));
    if (write(wfd, &msg, sizeof msg) != (ssize_t)sizeof msg)
        _exit(3);
    for (;;)
        pause();
}

static int fig_reopen_after_kill(bench_ctx *c, const series_set *s)
{
    double samples[REPS], peak[REPS];
    for (int rep = 0; rep < REPS; rep++) {
        char dir[4096];
        bench_subdir(c, "killed", dir, sizeof dir);
        int fds[2];
        if (pipe(fds) != 0)
            return fail("reopen_after_kill: pipe", -errno);
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0)
            return fail("reopen_after_kill: fork", -errno);
        if (pid == 0) {
            close(fds[0]);
            kill_child(dir, s, fds[1]);
            _exit(0);
        }
        close(fds[1]);
        kill_msg msg = {0, 0};
        ssize_t got = read(fds[0], &msg, sizeof msg);
        close(fds[0]);
        kill(pid, SIGKILL);
        int status;
        struct rusage ru;
        memset(&ru, 0, sizeof ru);
        wait4(pid, &status, 0, &ru);
        if (got != (ssize_t)sizeof msg || msg.status != 'k')
            return fail("reopen_after_kill: child failed", -ECHILD);
        /* ru_maxrss is in KiB; the child started with the parent's pages. */
        peak[rep] = ((double)ru.ru_maxrss * 1024.0 - msg.rss0_bytes) / 1048576.0;
        fprintf(stderr, "  kill rep %d: child peak RSS %.0f MiB (+%.0f MiB), data dir %.1f MiB\n",
                rep, (double)ru.ru_maxrss / 1024.0, peak[rep],
                (double)bench_dir_bytes(dir) / 1048576.0);

        bench_sync_fs(c->work_dir); /* the build's writeback must not compete with the timed loop */
        tally_engine_options o;
        engine_options(&o);
        tally_engine *e;
        uint64_t t0 = bench_now_ns();
        int rc = tally_engine_open(dir, &o, &e);
        samples[rep] = secs_since(t0);
        if (rc)
            return fail("reopen_after_kill: open", rc);
        tally_engine_stats st;
        if (tally_engine_stats_get(e, &st) == 0)
            fprintf(stderr, "  kill rep %d: recovery %.3f s, %llu records replayed, %llu points\n",
                    rep, samples[rep], (unsigned long long)st.recovered_records,
                    (unsigned long long)st.n_points);
        rc = tally_engine_close(e);
        if (rc)
            return fail("reopen_after_kill: close", rc);
    }
    bench_report(c, "reopen_after_kill_s", bench_median(samples, REPS), "s", NULL, 0, 0);
    bench_report(c, "ingest_peak_rss_delta_mib", bench_median(peak, REPS), "MiB", NULL, 0, 0);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* reopen_clean_s                                                            */
/* ------------------------------------------------------------------------ */

/* Builds the big store: n_series GEN_MIX series of n_points, generated and
 * appended CHUNK points per series at a time, GROUP series per call. */
static int build_big_store(const char *dir, size_t n_series, size_t n_points)
{
    enum { CHUNK = 10000, GROUP = 100 };
    series_set g;
    if (set_make(&g, GEN_MIX, 77, 0, GROUP, CHUNK))
        return TALLY_ENOMEM;
    tally_engine_options o;
    engine_options(&o);
    tally_engine *e;
    int rc = tally_engine_open(dir, &o, &e);
    if (rc) {
        set_free(&g);
        return rc;
    }
    tally_series_batch b[GROUP];
    char runs[GROUP][33], keys[GROUP][48];
    for (size_t first = 0; first < n_series && rc == 0; first += GROUP) {
        size_t group = n_series - first < GROUP ? n_series - first : GROUP;
        for (size_t i = 0; i < group; i++) {
            run_uuid(77, (first + i) / SERIES_PER_RUN, runs[i]);
            snprintf(keys[i], sizeof keys[i], "train/m_%02zu", (first + i) % SERIES_PER_RUN);
        }
        for (size_t off = 0; off < n_points && rc == 0; off += CHUNK) {
            size_t len = n_points - off < CHUNK ? n_points - off : CHUNK;
            for (size_t i = 0; i < group; i++) {
                size_t at = i * CHUNK;
                gen_series(GEN_MIX, first + i, off, len, g.steps + at, g.ts_ms + at,
                           g.values + at);
                b[i] = (tally_series_batch){
                    .run_id = runs[i], .run_id_len = 32, .key = keys[i],
                    .key_len = strlen(keys[i]), .n_points = (uint32_t)len,
                    .steps = g.steps + at, .timestamps_ms = g.ts_ms + at,
                    .values = g.values + at};
            }
            rc = append_retry(e, b, group);
        }
    }
    set_free(&g);
    uint64_t t0 = bench_now_ns();
    int rc2 = tally_engine_close(e);
    fprintf(stderr, "  big store: close %.3f s\n", secs_since(t0));
    return rc ? rc : rc2;
}

static int fig_reopen_clean(bench_ctx *c)
{
    size_t n_series = c->quick ? 100 : 1000, n_points = 100000;
    char dir[4096];
    bench_subdir(c, "big", dir, sizeof dir);
    uint64_t t0 = bench_now_ns();
    int rc = build_big_store(dir, n_series, n_points);
    if (rc)
        return fail("reopen_clean: build", rc);
    fprintf(stderr, "  big store: %zu points in %.1f s (incl. generation), %.1f MiB on disk\n",
            n_series * n_points, secs_since(t0), (double)bench_dir_bytes(dir) / 1048576.0);

    bench_sync_fs(c->work_dir);
    double samples[REPS_CHEAP], rss[REPS_CHEAP];
    for (int rep = 0; rep < REPS_CHEAP; rep++) {
        tally_engine_options o;
        engine_options(&o);
        tally_engine *e;
        double rss0 = rss_bytes();
        uint64_t t1 = bench_now_ns();
        rc = tally_engine_open(dir, &o, &e);
        samples[rep] = secs_since(t1);
        rss[rep] = (rss_bytes() - rss0) / 1048576.0;
        if (rc)
            return fail("reopen_clean: open", rc);
        rc = tally_engine_close(e);
        if (rc)
            return fail("reopen_clean: close", rc);
    }
    bench_report(c, "reopen_clean_s", bench_median(samples, REPS_CHEAP), "s", NULL, 0, 0);
    bench_report(c, "reopen_clean_rss_delta_mib", bench_percentile(rss, REPS_CHEAP, 100), "MiB",
                 NULL, 0, 0);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* read_series_points_per_s                                                  */
/* ------------------------------------------------------------------------ */

typedef struct read_sink {
    uint64_t n;   /* points seen */
    double sum;   /* of their values, so the read cannot be optimised away */
} read_sink;

static int sink_point(void *ctx, int64_t step, int64_t timestamp_ms, double value)
{
    read_sink *k = ctx;
    (void)timestamp_ms;
    k->n++;
    k->sum += value + (double)(step & 1);
    return 0;
}

/* One full read of the series through snapshot + iterator. */
static int engine_read_once(tally_engine *e, tally_series_id id, tally_point *buf,
                            read_sink *k)
{
    tally_snapshot *snap;
    int rc = tally_snapshot_open(e, id, &snap);
    if (rc)
        return rc;
    tally_iter *it;
    rc = tally_iter_start(snap, INT64_MIN, INT64_MAX, &it);
    if (rc == 0) {
        size_t n;
        while ((rc = tally_iter_next(it, buf, READ_BUF_POINTS, &n)) == 0 && n > 0) {
            k->n += n;
            for (size_t i = 0; i < n; i++)
                k->sum += buf[i].value + (double)(buf[i].step & 1);
        }
        tally_iter_stop(it);
    }
    tally_snapshot_close(snap);
    return rc;
}

static int fig_read_series(bench_ctx *c)
{
    size_t n_points = c->quick ? 200000 : 1000000;
    series_set s;
    if (set_make(&s, GEN_LOSS_F32, 55, 3, 1, n_points))
        return fail("read_series: generate", TALLY_ENOMEM);
    tally_point *buf = malloc(READ_BUF_POINTS * sizeof *buf);
    char dir[4096];
    bench_subdir(c, "read", dir, sizeof dir);
    tally_engine_options o;
    engine_options(&o);
    tally_engine *e = NULL;
    int rc = buf ? tally_engine_open(dir, &o, &e) : TALLY_ENOMEM;
    if (rc == 0)
        rc = append_set(e, &s, 10000, 10000);
    if (e) {
        int rc2 = tally_engine_close(e); /* seal everything: read from blocks */
        e = NULL;
        if (rc == 0)
            rc = rc2;
    }
    if (rc == 0)
        rc = tally_engine_open(dir, &o, &e);
    bench_sync_fs(c->work_dir);
    tally_series_id id = 0;
    if (rc == 0)
        rc = tally_engine_lookup(e, s.runs[0], 32, s.keys[0], strlen(s.keys[0]), &id);
    double samples[REPS_CHEAP];
    for (int rep = 0; rep < REPS_CHEAP && rc == 0; rep++) {
        read_sink k = {0, 0};
        uint64_t t0 = bench_now_ns();
        rc = engine_read_once(e, id, buf, &k);
        double secs = secs_since(t0);
        samples[rep] = (double)k.n / secs;
        fprintf(stderr, "  read rep %d: %.2f ms, %.1f M points/s\n", rep, secs * 1e3,
                samples[rep] / 1e6);
        if (k.n != n_points)
            fprintf(stderr, "  read: got %llu points of %zu\n", (unsigned long long)k.n, n_points);
    }
    tally_engine_close(e);
    free(buf);
    if (rc) {
        set_free(&s);
        return fail("read_series", rc);
    }

    double sq = NAN;
    char sdir[4096], path[4200];
    bench_subdir(c, "read-sqlite", sdir, sizeof sdir);
    snprintf(path, sizeof path, "%s/mlflow.db", sdir);
    sqlite_baseline *b;
    int src = sqlite_baseline_open(path, &b);
    if (src == 0)
        src = sqlite_baseline_log_series(b, s.runs[0], s.keys[0], s.steps, s.ts_ms, s.values,
                                         n_points);
    if (src == 0) {
        double sqs[REPS];
        for (int rep = 0; rep < REPS && src == 0; rep++) {
            read_sink k = {0, 0};
            uint64_t t0 = bench_now_ns();
            src = sqlite_baseline_read_series(b, s.runs[0], s.keys[0], sink_point, &k, NULL);
            sqs[rep] = (double)k.n / secs_since(t0);
        }
        if (src == 0)
            sq = bench_median(sqs, REPS);
    }
    if (src == 0)
        sqlite_baseline_close(b);
    else
        fprintf(stderr, "engine suite: sqlite read failed (%d)\n", src);
    set_free(&s);
    bench_report(c, "read_series_points_per_s", bench_median(samples, REPS_CHEAP), "points/s",
                 "sqlite-mlflow-schema", sq, 1);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The suite                                                                 */
/* ------------------------------------------------------------------------ */

int bench_suite_engine(bench_ctx *c);
int bench_suite_engine(bench_ctx *c)
{
    static const struct {
        gen_kind kind;
        const char *name;
    } kinds[] = {
        {GEN_LOSS_F32, "loss_f32"}, {GEN_ACCURACY_HELD, "accuracy_held"},
        {GEN_COUNTER, "counter"},   {GEN_COSINE_LR, "cosine_lr"},
        {GEN_MIX, "mix"},
    };
    int failures = 0;
    uint64_t t0 = bench_now_ns();

    /* 100 GEN_MIX series shared by ingest, per-point append and the kill. */
    series_set s;
    size_t per_series = c->quick ? 20000 : 100000;
    if (set_make(&s, GEN_MIX, 1, 0, 100, per_series))
        return fail("generate", TALLY_ENOMEM);
    fprintf(stderr, "  generated %zu points in %.1f s\n", s.n_series * s.n_points, secs_since(t0));

    failures += fig_ingest(c, &s) != 0;
    failures += fig_append_point(c, &s) != 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        failures += fig_bytes_per_point(c, kinds[i].kind, kinds[i].name) != 0;
    /* The kill test's child appends the same 10M [2M] points. */
    failures += fig_reopen_after_kill(c, &s) != 0;
    set_free(&s);

    failures += fig_reopen_clean(c) != 0;
    failures += fig_read_series(c) != 0;
    fprintf(stderr, "  engine suite: %.1f s, %d failed figure(s)\n", secs_since(t0), failures);
    return failures ? 1 : 0;
}
