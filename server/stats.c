/*
 * stats.c — recording and exporting the server's metrics (stats.h).
 *
 * Invariants:
 *  (1) Recording never blocks and never allocates: relaxed atomic adds on
 *      counters fixed at tally_stats_new. Scrapes read them without a lock,
 *      so a scrape may see a request counted in one series and not yet in
 *      another; each series on its own is monotonic.
 *  (2) The exposition names every metric tally_*, with one # HELP and one
 *      # TYPE line before its samples; label values are escaped.
 *  (3) Routes that have served no request are omitted from per-route
 *      series (keeps a scrape of ~100 routes short).
 */
#include "stats.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "routes.h"

static const uint64_t bucket_us[TALLY_STATS_N_BUCKETS] = TALLY_STATS_BUCKETS_US;

tally_stats *tally_stats_new(size_t n_routes)
{
    tally_stats *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->n_routes = n_routes;
    s->routes = aligned_alloc(64, ((n_routes + 1) * sizeof(tally_route_stats) + 63) & ~(size_t)63);
    if (!s->routes) {
        free(s);
        return NULL;
    }
    for (size_t i = 0; i <= n_routes; i++) {
        tally_route_stats *r = &s->routes[i];
        for (int k = 0; k < 6; k++)
            atomic_init(&r->by_class[k], 0);
        for (int k = 0; k <= TALLY_STATS_N_BUCKETS; k++)
            atomic_init(&r->hist[k], 0);
        atomic_init(&r->duration_us_total, 0);
        atomic_init(&r->bytes_out, 0);
    }
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->points, 0);
    return s;
}

void tally_stats_free(tally_stats *s)
{
    if (!s)
        return;
    free(s->routes);
    free(s);
}

void tally_stats_request_begin(tally_stats *s)
{
    atomic_fetch_add_explicit(&s->in_flight, 1, memory_order_relaxed);
}

void tally_stats_request_end(tally_stats *s, size_t route, int status, uint64_t duration_us,
                             uint64_t bytes_out)
{
    atomic_fetch_sub_explicit(&s->in_flight, 1, memory_order_relaxed);
    tally_route_stats *r = &s->routes[route < s->n_routes ? route : s->n_routes];
    int cls = status >= 100 && status < 600 ? status / 100 : 0;
    atomic_fetch_add_explicit(&r->by_class[cls], 1, memory_order_relaxed);
    int b = 0;
    while (b < TALLY_STATS_N_BUCKETS && duration_us > bucket_us[b])
        b++;
    atomic_fetch_add_explicit(&r->hist[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->duration_us_total, duration_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->bytes_out, bytes_out, memory_order_relaxed);
}

int64_t tally_stats_in_flight(const tally_stats *s)
{
    return atomic_load_explicit(&s->in_flight, memory_order_relaxed);
}

void tally_stats_add_points(tally_stats *s, uint64_t n)
{
    if (s)
        atomic_fetch_add_explicit(&s->points, n, memory_order_relaxed);
}

static uint64_t load(const atomic_uint_least64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void header(tally_buf *out, const char *name, const char *type, const char *help)
{
    tally_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Route names are static identifiers, but escape as the format requires. */
static void label_value(tally_buf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            tally_buf_putc(out, '\\');
        if (*v == '\n') {
            tally_buf_puts(out, "\\n");
            continue;
        }
        tally_buf_putc(out, *v);
    }
}

static uint64_t route_count(const tally_route_stats *r)
{
    uint64_t n = 0;
    for (int k = 0; k < 6; k++)
        n += load(&r->by_class[k]);
    return n;
}

static void write_routes(tally_stats *s, tally_buf *out)
{
    static const char *const cls[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    header(out, "tally_http_requests_total", "counter", "HTTP requests by route and status class.");
    for (size_t i = 0; i <= s->n_routes; i++) {
        tally_route_stats *r = &s->routes[i];
        for (int k = 0; k < 6; k++) {
            uint64_t v = load(&r->by_class[k]);
            if (!v)
                continue;
            tally_buf_puts(out, "tally_http_requests_total{route=\"");
            label_value(out, tally_routes_name(i));
            tally_buf_printf(out, "\",code=\"%s\"} %" PRIu64 "\n", cls[k], v);
        }
    }
    header(out, "tally_http_request_duration_seconds", "histogram",
           "Time from request start to response queued, by route.");
    for (size_t i = 0; i <= s->n_routes; i++) {
        tally_route_stats *r = &s->routes[i];
        uint64_t hist[TALLY_STATS_N_BUCKETS + 1], total = 0;
        for (int b = 0; b <= TALLY_STATS_N_BUCKETS; b++)
            total += hist[b] = load(&r->hist[b]);
        if (!total)
            continue;
        uint64_t cum = 0;
        for (int b = 0; b <= TALLY_STATS_N_BUCKETS; b++) {
            cum += hist[b];
            tally_buf_puts(out, "tally_http_request_duration_seconds_bucket{route=\"");
            label_value(out, tally_routes_name(i));
            if (b < TALLY_STATS_N_BUCKETS)
                tally_buf_printf(out, "\",le=\"%g\"} %" PRIu64 "\n", (double)bucket_us[b] / 1e6, cum);
            else
                tally_buf_printf(out, "\",le=\"+Inf\"} %" PRIu64 "\n", cum);
        }
        tally_buf_puts(out, "tally_http_request_duration_seconds_sum{route=\"");
        label_value(out, tally_routes_name(i));
        tally_buf_printf(out, "\"} %.6f\n", (double)load(&r->duration_us_total) / 1e6);
        tally_buf_puts(out, "tally_http_request_duration_seconds_count{route=\"");
        label_value(out, tally_routes_name(i));
        tally_buf_printf(out, "\"} %" PRIu64 "\n", cum);
    }
    header(out, "tally_http_response_bytes_total", "counter", "Response body bytes by route.");
    for (size_t i = 0; i <= s->n_routes; i++) {
        tally_route_stats *r = &s->routes[i];
        if (!route_count(r))
            continue;
        tally_buf_puts(out, "tally_http_response_bytes_total{route=\"");
        label_value(out, tally_routes_name(i));
        tally_buf_printf(out, "\"} %" PRIu64 "\n", load(&r->bytes_out));
    }
}

static int64_t process_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long size = 0, rss = 0;
    int n = fscanf(f, "%ld %ld", &size, &rss);
    fclose(f);
    return n == 2 ? (int64_t)rss * sysconf(_SC_PAGESIZE) : -1;
}

static int64_t process_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int64_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

void tally_stats_write_prometheus(tally_stats *s, tally_engine *engine, int64_t started_ms,
                                  tally_buf *out)
{
    write_routes(s, out);
    header(out, "tally_http_requests_in_flight", "gauge", "Requests being served now.");
    tally_buf_printf(out, "tally_http_requests_in_flight %" PRId64 "\n", tally_stats_in_flight(s));
    header(out, "tally_points_ingested_total", "counter",
           "Metric points accepted through the HTTP APIs.");
    tally_buf_printf(out, "tally_points_ingested_total %" PRIu64 "\n", load(&s->points));

    tally_engine_stats es;
    if (engine && tally_engine_stats_get(engine, &es) == 0) {
        header(out, "tally_engine_series", "gauge", "Metric series stored.");
        tally_buf_printf(out, "tally_engine_series %" PRIu64 "\n", es.n_series);
        header(out, "tally_engine_points", "gauge", "Metric points stored (sealed + head).");
        tally_buf_printf(out, "tally_engine_points %" PRIu64 "\n", es.n_points);
        header(out, "tally_engine_head_points", "gauge", "Points not yet sealed into blocks.");
        tally_buf_printf(out, "tally_engine_head_points %" PRIu64 "\n", es.n_head_points);
        header(out, "tally_engine_segment_bytes", "gauge", "Bytes of sealed blocks on disk.");
        tally_buf_printf(out, "tally_engine_segment_bytes %" PRIu64 "\n", es.segment_bytes);
        header(out, "tally_engine_wal_bytes", "gauge", "Live WAL bytes since the last checkpoint.");
        tally_buf_printf(out, "tally_engine_wal_bytes %" PRIu64 "\n", es.wal_bytes);
        header(out, "tally_engine_wal_records_total", "counter", "WAL records written since open.");
        tally_buf_printf(out, "tally_engine_wal_records_total %" PRIu64 "\n", es.wal_records);
        header(out, "tally_engine_fsync_duration_seconds", "summary", "WAL fsyncs and their time.");
        tally_buf_printf(out, "tally_engine_fsync_duration_seconds_sum %.9f\n",
                         (double)es.fsync_ns_total / 1e9);
        tally_buf_printf(out, "tally_engine_fsync_duration_seconds_count %" PRIu64 "\n", es.fsyncs);
        header(out, "tally_engine_queue_depth", "gauge", "Batches waiting for the engine writer.");
        tally_buf_printf(out, "tally_engine_queue_depth %" PRIu64 "\n", es.queue_depth);
        header(out, "tally_engine_memory_bytes", "gauge", "Head buffers and queued batches.");
        tally_buf_printf(out, "tally_engine_memory_bytes %" PRIu64 "\n", es.memory_bytes);
        header(out, "tally_engine_checkpoints_total", "counter", "Checkpoints since open.");
        tally_buf_printf(out, "tally_engine_checkpoints_total %" PRIu64 "\n", es.checkpoints);
        header(out, "tally_engine_poisoned", "gauge",
               "Nonzero (the error code) when a write failure poisoned the engine.");
        tally_buf_printf(out, "tally_engine_poisoned %d\n", es.poisoned);
        header(out, "tally_engine_writes_paused", "gauge",
               "0 writing; 1 paused after a disk error, probing the disk; 2 stopped until restart.");
        tally_buf_printf(out, "tally_engine_writes_paused %d\n", es.writes_paused);
        header(out, "tally_engine_write_failures_total", "counter",
               "Disk errors that paused writes, since start.");
        tally_buf_printf(out, "tally_engine_write_failures_total %" PRIu64 "\n", es.write_failures);
        header(out, "tally_engine_map_trims_total", "counter",
               "Times the segment mappings' pages were released from the process.");
        tally_buf_printf(out, "tally_engine_map_trims_total %" PRIu64 "\n", es.map_trims);
        header(out, "tally_engine_write_recoveries_total", "counter",
               "Times writes resumed by themselves after a disk error.");
        tally_buf_printf(out, "tally_engine_write_recoveries_total %" PRIu64 "\n",
                         es.write_recoveries);
    }

    int64_t rss = process_rss_bytes(), fds = process_open_fds();
    if (rss >= 0) {
        header(out, "tally_process_resident_memory_bytes", "gauge", "Resident set size.");
        tally_buf_printf(out, "tally_process_resident_memory_bytes %" PRId64 "\n", rss);
    }
    if (fds >= 0) {
        header(out, "tally_process_open_fds", "gauge", "Open file descriptors.");
        tally_buf_printf(out, "tally_process_open_fds %" PRId64 "\n", fds);
    }
    tally_stats_write_memory(out);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    header(out, "tally_process_start_time_seconds", "gauge", "Start time, seconds since the epoch.");
    tally_buf_printf(out, "tally_process_start_time_seconds %.3f\n", (double)started_ms / 1e3);
    header(out, "tally_uptime_seconds", "gauge", "Seconds since the server started.");
    tally_buf_printf(out, "tally_uptime_seconds %.3f\n", (double)(now_ms - started_ms) / 1e3);
}
