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

typedef enum tally_x_axis {
    TALLY_X_STEP = 0,         /* x = step */
    TALLY_X_TIME = 1,         /* x = timestamp in ms */
    TALLY_X_RELATIVE_TIME = 2 /* x = timestamp - the series' first timestamp, ms */
} tally_x_axis;

typedef enum tally_ds_method {
    TALLY_DS_M4 = 0,     /* per pixel column: first, last, min, max points (exact at pixel level) */
    TALLY_DS_LTTB = 1,   /* Largest-Triangle-Three-Buckets, width points */
    TALLY_DS_BUCKETS = 2 /* per column: count, min, max, mean */
} tally_ds_method;

typedef struct tally_ds_req {
    tally_ds_method method;
    tally_x_axis x_axis;
    int full_range;        /* nonzero: the series' whole x range; x_lo/x_hi ignored */
    int64_t x_lo, x_hi;    /* inclusive x range in the axis' unit */
    uint32_t width;        /* pixel columns, 1..65536 */
} tally_ds_req;

typedef struct tally_bucket {
    int64_t x_lo, x_hi;    /* x range of the points in the column (inclusive) */
    uint64_t count;        /* points in the column, NaN included */
    uint64_t n_nan;        /* NaN points (excluded from min, max, mean) */
    double min, max, mean; /* over non-NaN values; NaN if the column has none */
} tally_bucket;

typedef struct tally_ds_result {
    tally_point *points;   /* M4 and LTTB output in x order; owned by the result */
    size_t n_points;
    tally_bucket *buckets; /* TALLY_DS_BUCKETS output, one per non-empty column */
    size_t n_buckets;
    uint64_t n_source;     /* points in the queried range */
    int64_t x_lo, x_hi;    /* the range actually used */
} tally_ds_result;

/* Frees what a result owns and zeroes it. NULL is a no-op. */
TALLY_API void tally_ds_result_free(tally_ds_result *r);

/* Downsamples one series. An unknown series gives an empty result. */
TALLY_API int tally_downsample(tally_engine *e, tally_series_id id, const tally_ds_req *req,
                               tally_ds_result *out);

/* The same query over n series (results in the same order), spread over the
 * machine's cores where it pays. out must hold n results. */
TALLY_API int tally_downsample_bulk(tally_engine *e, const tally_series_id *ids, size_t n,
                                    const tally_ds_req *req, tally_ds_result *out);

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

#ifdef __cplusplus
}
#endif

#endif /* TALLY_QUERY_H */
