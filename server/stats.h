/*
 * stats.h — the server's own metrics, exported by GET /metrics in
 * Prometheus' text format (ops.c). Recording is lock-free (relaxed atomic
 * adds on per-route, cache-line-aligned counters) so that it costs a few
 * nanoseconds per request on any worker thread.
 *
 * What is recorded:
 *   per route (routes.h indexes, + "unmatched"): requests by status class,
 *     a latency histogram (TALLY_STATS_BUCKETS_US), response bytes;
 *   requests in flight (begin/end), metric points ingested (handlers call
 *     tally_stats_add_points after the engine accepted them).
 * What is read at scrape time instead: engine statistics
 * (tally_engine_stats_get), process RSS, open fds and uptime, and the
 * memory of each component (stats_memory.c).
 */
#ifndef TALLY_SERVER_STATS_H
#define TALLY_SERVER_STATS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "tally/engine.h"

/* Upper bounds of the latency histogram buckets, microseconds; +Inf follows. */
#define TALLY_STATS_BUCKETS_US                                                               \
    {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,  \
     2500000, 10000000}
#define TALLY_STATS_N_BUCKETS 15

typedef struct tally_route_stats {
    alignas(64) atomic_uint_least64_t by_class[6];   /* [k] = responses with status k00..k99, [0] others */
    atomic_uint_least64_t hist[TALLY_STATS_N_BUCKETS + 1]; /* per bucket, not cumulative; last = +Inf */
    atomic_uint_least64_t duration_us_total;          /* sum of latencies, microseconds */
    atomic_uint_least64_t bytes_out;                  /* response body bytes */
} tally_route_stats;

struct tally_stats {
    atomic_int_least64_t in_flight;       /* requests begun and not yet ended */
    atomic_uint_least64_t points;         /* metric points accepted by the engine */
    size_t n_routes;                      /* routes; routes[n_routes] is "unmatched" */
    tally_route_stats *routes;            /* n_routes + 1 entries */
};
typedef struct tally_stats tally_stats;

/* New zeroed statistics for n_routes routes (tally_routes_count()); NULL when
 * out of memory. Free with tally_stats_free (NULL is a no-op). */
tally_stats *tally_stats_new(size_t n_routes);
void tally_stats_free(tally_stats *s);

void tally_stats_request_begin(tally_stats *s);
/* route: index from routes.h (n_routes for unmatched; larger values count as
 * unmatched). Ends a request begun with tally_stats_request_begin. */
void tally_stats_request_end(tally_stats *s, size_t route, int status, uint64_t duration_us,
                             uint64_t bytes_out);
int64_t tally_stats_in_flight(const tally_stats *s);

/* For handlers: n metric points were accepted. s may be NULL. */
void tally_stats_add_points(tally_stats *s, uint64_t n);

/* Appends the Prometheus text exposition (format 0.0.4) to out: the counters
 * above, the engine's statistics when engine is non-NULL, process RSS, open
 * fds and uptime since started_ms (wall clock, ms). */
void tally_stats_write_prometheus(tally_stats *s, tally_engine *engine, int64_t started_ms,
                                  tally_buf *out);

/* Appends the memory figures (stats_memory.c): the query cache, SQLite,
 * the process's resident memory split by kind, malloc's heap. Called by
 * tally_stats_write_prometheus. */
void tally_stats_write_memory(tally_buf *out);

#endif /* TALLY_SERVER_STATS_H */
