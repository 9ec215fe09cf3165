/*
 * tally/query.h — the query layer over the metric engine: full history with
 * resumable pagination, range queries, downsampling for charts (M4, LTTB,
 * min/max/mean buckets) over a rollup pyramid, bulk queries over many series
 * at once, MLflow's sampled and bulk history, and per-series summaries.
 *
 * The query layer knows the engine's read API (tally/engine.h) and nothing of
 * HTTP or JSON. Every query reads one consistent snapshot per series and never
 * blocks ingestion for longer than the engine's snapshot copy.
 *
 * Conventions as in engine.h: int return, 0 or a negative TALLY_E* / -errno;
 * results through out-pointers; ownership stated per function.
 */
#ifndef TALLY_QUERY_H
#define TALLY_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "tally/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* History with pagination                                                   */
/* ------------------------------------------------------------------------ */

typedef enum tally_history_order {
    TALLY_HISTORY_BY_STEP = 0, /* (step, timestamp, value) ascending */
    TALLY_HISTORY_BY_TIME = 1  /* (timestamp, step, value) ascending: MLflow's get-history order */
} tally_history_order;

#define TALLY_PAGE_TOKEN_MAX 96 /* bytes, including the terminating zero */

typedef struct tally_history_req {
    tally_series_id id;
    tally_history_order order;
    int64_t lo, hi;          /* inclusive range of the order's first key (step or ms) */
    const char *page_token;  /* NULL/"" for the first page, else a token from a previous page */
    size_t max_results;      /* points per page, >= 1 */
} tally_history_req;

/* Writes up to max_results points (cap >= max_results) in the requested order
 * into out, *n_out their count, and into next_token (TALLY_PAGE_TOKEN_MAX
 * bytes) an opaque token for the next page, or "" when no points remain.
 * Tokens are printable ASCII, resume after the last point returned even if
 * points were appended meanwhile, and are validated: a malformed or foreign
 * token gives TALLY_EINVAL. An unknown series gives 0 points and "". */
TALLY_API int tally_history_page(tally_engine *e, const tally_history_req *req, tally_point *out,
                                 size_t cap, size_t *n_out, char *next_token);

/* ------------------------------------------------------------------------ */
/* Downsampling                                                              */
/* ------------------------------------------------------------------------ */

/*
 * What a downsampling query reads: the series' points as the engine's
 * iterator gives them (sealed blocks and the unsealed head of one snapshot,
 * exact duplicates collapsed) with x_lo <= x <= x_hi, in *axis order*:
 * (step, timestamp, value bits) for x = step, (timestamp, step, value bits)
 * for time and relative time. Points outside the range take no part (a
 * chart of a zoomed window does not connect to points beyond it).
 *
 * Column mapping (M4 and buckets), exact for every int64 range and width:
 *
 *     span = x_hi - x_lo + 1          (up to 2^64: computed in 128 bits)
 *     col(x) = floor((x - x_lo) * width / span)           0 <= col < width
 *     column c holds x_lo + ceil(c * span / width) ..
 *                    x_lo + ceil((c + 1) * span / width) - 1
 *
 * so columns differ in width by at most one x unit, and when width > span
 * some columns are empty (they produce nothing).
 *
 * NaN and infinities:
 *  - NaN points are not drawn: M4 and LTTB skip them entirely (the line is
 *    the line through the non-NaN points, as a chart that spans gaps draws
 *    it). They are counted in n_source and, for buckets, in count and n_nan;
 *    a bucket of only NaN points is reported with min = max = mean = NaN.
 *  - +inf and -inf are values like any other: they can be a column's max or
 *    min and M4 returns them (a renderer clamps them to the plot's edge).
 *    A bucket's mean is then +-inf, or NaN if both occur.
 *  - min and max compare with < and >, so -0.0 and +0.0 tie; ties keep the
 *    first point in axis order. M4's min and max points are therefore the
 *    ones a left-to-right scan keeps.
 *
 * Relative time: x = timestamp - t0 where t0 is the series' least
 * timestamp (in the snapshot). x_lo/x_hi and bucket x ranges are in that
 * unit; points keep their absolute timestamps.
 */
typedef enum tally_x_axis {
    TALLY_X_STEP = 0,         /* x = step */
    TALLY_X_TIME = 1,         /* x = timestamp in ms */
    TALLY_X_RELATIVE_TIME = 2 /* x = timestamp - the series' least timestamp, ms */
} tally_x_axis;

typedef enum tally_ds_method {
    TALLY_DS_M4 = 0,     /* per pixel column: first, last, min, max points (exact at pixel level) */
    TALLY_DS_LTTB = 1,   /* Largest-Triangle-Three-Buckets, width points */
    TALLY_DS_BUCKETS = 2 /* per column: count, min, max, mean */
} tally_ds_method;

/*
 * M4: per non-empty column, its first, least, greatest and last non-NaN
 * points, in axis order, each once (2 to 4 points; 1 if they coincide).
 * A line drawn through them, with x mapped to columns as above and any
 * monotone mapping of value to rows, lights exactly the pixels of the line
 * drawn through every non-NaN point (tests/unit/test_m4.c proves it with a
 * rasteriser). A column of only NaN points gives nothing.
 *
 * LTTB: Steinarsson's Largest-Triangle-Three-Buckets (2013) over the
 * non-NaN points in axis order, with x as a double (step, timestamp, or
 * relative timestamp) and the reference implementation's arithmetic: the
 * first and last points, and from each of width - 2 buckets of
 * (n - 2) / (width - 2) points the one forming the largest triangle with the
 * previous kept point and the mean of the next bucket. width >= n keeps every
 * point; width = 1 keeps the first. A bucket where no area compares greater
 * than -1 (NaN areas from infinities) keeps its first point. Costs a decode
 * of every point in range.
 *
 * Buckets: per non-empty column (NaN-only columns included) its x range,
 * count, n_nan, min, max and mean. count, n_nan, min, max and the x range
 * are exact; the mean is sum / (count - n_nan) where the sum adds the
 * engine's chunk and block sums, so it may differ from a left-to-right sum in
 * the last bits.
 */
typedef struct tally_ds_req {
    tally_ds_method method;
    tally_x_axis x_axis;
    int full_range;        /* nonzero: the series' whole x range; x_lo/x_hi ignored */
    int64_t x_lo, x_hi;    /* inclusive x range in the axis' unit, x_lo <= x_hi */
    uint32_t width;        /* pixel columns, 1..65536 */
} tally_ds_req;

typedef struct tally_bucket {
    int64_t x_lo, x_hi;    /* x of the column's first and last point, NaN points included */
    uint64_t count;        /* points in the column, NaN included */
    uint64_t n_nan;        /* NaN points (excluded from min, max, mean) */
    double min, max, mean; /* over non-NaN values; NaN if the column has none */
} tally_bucket;

typedef struct tally_ds_result {
    tally_point *points;   /* M4 and LTTB output in axis order; owned by the result */
    size_t n_points;
    tally_bucket *buckets; /* TALLY_DS_BUCKETS output, one per non-empty column, in x order */
    size_t n_buckets;
    uint64_t n_source;     /* points in the queried range, NaN included */
    int64_t x_lo, x_hi;    /* the range actually used, in the axis' unit (the data's
                              range for full_range; 0, 0 for a series without points) */
} tally_ds_result;

/* Frees what a result owns and zeroes it. NULL is a no-op. */
TALLY_API void tally_ds_result_free(tally_ds_result *r);

/* Downsamples one series into *out (zeroed first; free with
 * tally_ds_result_free). An unknown series gives an empty result. Reads one
 * snapshot; costs about width x (small constant) summary reads plus the
 * decode of the chunks cut by column edges (docs/query.md, "Downsampling"),
 * LTTB excepted. Errors: TALLY_EINVAL (width out of 1..65536, x_lo > x_hi,
 * unknown method or axis), TALLY_ENOMEM, TALLY_ECORRUPT (a damaged block);
 * on error *out is empty. Thread-safe. */
TALLY_API int tally_downsample(tally_engine *e, tally_series_id id, const tally_ds_req *req,
                               tally_ds_result *out);

/* The same query over n series, out[i] answering ids[i]. Runs on a pool of
 * one worker per online CPU (at most 8), started on first use, when n >= 2.
 * out must hold n results. On error every result is freed and zeroed and the
 * first error is returned. */
TALLY_API int tally_downsample_bulk(tally_engine *e, const tally_series_id *ids, size_t n,
                                    const tally_ds_req *req, tally_ds_result *out);

/* Called by tally_downsample_bulk_each with each series' result as soon as
 * it is ready, on the thread that computed it (a pool worker): i is the
 * series' index, r is &out[i], which the callback may consume (e.g. encode
 * it and free it with tally_ds_result_free). Calls for different i run
 * concurrently. Returns 0, or an error that fails the whole bulk call. */
typedef int (*tally_ds_each_fn)(void *ctx, size_t i, tally_ds_result *r);

/* tally_downsample_bulk, calling each(ctx, i, &out[i]) after series i is
 * computed, so that work on a result (encoding it for the wire) runs in
 * parallel with the others while they are still in the worker's cache.
 * On error (a series' or the callback's) every result is freed and zeroed
 * and the first error is returned; callbacks already made stay made. */
TALLY_API int tally_downsample_bulk_each(tally_engine *e, const tally_series_id *ids, size_t n,
                                         const tally_ds_req *req, tally_ds_result *out,
                                         tally_ds_each_fn each, void *ctx);

/* ------------------------------------------------------------------------ */
/* MLflow's sampled and bulk history                                         */
/* ------------------------------------------------------------------------ */

/* One series' share of a multi-run answer; points owned by the result. */
typedef struct tally_run_points {
    tally_point *points;
    size_t n_points;
} tally_run_points;

/* get-history-bulk-interval (mlflow-rest-api.md §4.6): the shared step grid
 * over all runs, every point at a chosen step, ordered (step, ts, value),
 * at most 25000 per run. ids[i] may be an id of no series (contributes
 * nothing). has_range selects [start_step, end_step]; else [0, max step].
 * out must hold n results; free each with tally_run_points_free. */
TALLY_API int tally_mlflow_bulk_interval(tally_engine *e, const tally_series_id *ids, size_t n,
                                         int has_range, int64_t start_step, int64_t end_step,
                                         uint32_t max_results, tally_run_points *out);

TALLY_API void tally_run_points_free(tally_run_points *r);

/* ------------------------------------------------------------------------ */
/* Summaries                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct tally_metric_summary {
    tally_point latest;     /* MLflow's latest: greatest (step, timestamp, value), NaN as 0 */
    double min, max;        /* over non-NaN values; NaN if none */
    uint64_t count;         /* points */
} tally_metric_summary;

/* Summaries of n series into out (n entries). An id of no series gets
 * count 0. Costs O(1) per series: no point is decoded. */
TALLY_API int tally_metric_summaries(tally_engine *e, const tally_series_id *ids, size_t n,
                                     tally_metric_summary *out);

/* ------------------------------------------------------------------------ */
/* The query cache                                                           */
/* ------------------------------------------------------------------------ */

/* The rollup cache (docs/query.md, "The rollup cache"): one process-wide
 * cache of per-series summaries that downsampling builds and reuses. It
 * holds at most its budget of bytes (256 MiB until set); least recently
 * used series leave it past the budget. An entry replaced by a newer one
 * (its series gained blocks) or evicted is freed as soon as the last query
 * reading it finishes; until then it counts as retained. */
typedef struct tally_query_cache_stats {
    uint64_t budget_bytes;   /* the limit on bytes */
    uint64_t bytes;          /* bytes of the entries in the cache */
    uint64_t retained_bytes; /* bytes of entries out of the cache that a query still reads */
    uint64_t entries;        /* series in the cache */
    uint64_t hits;           /* lookups served from the cache, since start */
    uint64_t builds;         /* entries built or extended, since start */
    uint64_t evictions;      /* entries dropped for the budget, since start */
} tally_query_cache_stats;

TALLY_API void tally_query_cache_stats_get(tally_query_cache_stats *out);

/* Sets the budget (bytes; 0 keeps nothing between queries) and drops least
 * recently used entries past it at once. */
TALLY_API void tally_query_cache_set_budget(uint64_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* TALLY_QUERY_H */
