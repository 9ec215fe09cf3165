/*
 * sqlite_baseline.h — the honest baseline every suite compares Tally with:
 * MLflow's metric storage, i.e. SQLite holding MLflow's `metrics` and
 * `latest_metrics` tables exactly as MLflow's SQL store creates them (same
 * columns, types, primary keys and indexes), written the way MLflow's
 * log_batch writes them, read the way get_metric_history reads them.
 *
 * What the baseline does, and what it leaves out (see sqlite_baseline.c's
 * top comment for the SQL):
 *  - One file on disk, journal_mode=WAL, synchronous=NORMAL: what a tuned
 *    MLflow deployment on SQLite gets (MLflow's default is rollback journal
 *    with synchronous=FULL, which is slower). A commit is then not fsynced;
 *    Tally in `group` mode fsyncs every acknowledged batch, so the comparison
 *    favours SQLite on durability.
 *  - One transaction per log_batch call of at most SQLITE_BASELINE_BATCH_MAX
 *    metrics (MLflow's limit), prepared statements, no ORM: SQLAlchemy's
 *    overhead, HTTP and JSON are not charged to the baseline.
 *  - Each call inserts the metrics and updates latest_metrics as MLflow's
 *    _update_latest_metrics_if_necessary does (read the key's latest row,
 *    replace it if a logged metric is greater by (step, timestamp, value)).
 *  - Not modelled: the `runs` table and its foreign keys, the run-is-active
 *    check (one indexed lookup per batch).
 *
 * Thread safety: one sqlite_baseline per thread.
 */
#ifndef TALLY_SQLITE_BASELINE_H
#define TALLY_SQLITE_BASELINE_H

#include <stddef.h>
#include <stdint.h>

/* MLflow's log-batch limit on metrics per request: one transaction each. */
#define SQLITE_BASELINE_BATCH_MAX 1000

typedef struct sqlite_baseline sqlite_baseline;

/* One metric of a log_batch call, as MLflow's Metric entity. */
typedef struct sqlite_baseline_metric {
    const char *key;      /* NUL-terminated, at most 250 bytes (VARCHAR(250)) */
    double value;         /* NaN is stored as value 0 with is_nan = 1, like MLflow */
    int64_t timestamp_ms; /* wall time, ms */
    int64_t step;         /* training step */
} sqlite_baseline_metric;

/* Opens (creating schema if needed) the database file at path. On success
 * *out owns the connection until sqlite_baseline_close(). Returns 0, or a
 * negative number (-EINVAL, -ENOMEM, -EIO for an SQLite error, printed on
 * stderr). */
int sqlite_baseline_open(const char *path, sqlite_baseline **out);

/* Checkpoints the WAL into the main file (so the database file alone holds
 * everything, as after a clean shutdown), finalises statements and closes.
 * NULL is a no-op. Returns 0 or -EIO. */
int sqlite_baseline_close(sqlite_baseline *b);

/* Checkpoints the WAL into the main file and truncates it, without closing:
 * call before measuring the directory's size. Returns 0 or -EIO. */
int sqlite_baseline_checkpoint(sqlite_baseline *b);

/* MLflow's log_batch for the metrics of one run: n <= SQLITE_BASELINE_BATCH_MAX
 * metrics (any keys) inserted in one transaction with the latest_metrics
 * update. Exact duplicates of a stored row are ignored, as MLflow does after
 * its IntegrityError fallback. run_uuid is NUL-terminated (32 hex in MLflow).
 * Returns 0, -EINVAL (n too large, key too long) or -EIO. */
int sqlite_baseline_log_batch(sqlite_baseline *b, const char *run_uuid,
                              const sqlite_baseline_metric *metrics, size_t n);

/* Convenience for one series: logs n points of (run_uuid, key) as successive
 * log_batch calls of SQLITE_BASELINE_BATCH_MAX points. */
int sqlite_baseline_log_series(sqlite_baseline *b, const char *run_uuid, const char *key,
                               const int64_t *steps, const int64_t *timestamps_ms,
                               const double *values, size_t n);

/* Called once per row read, in the order of the query. value is NaN when the
 * row has is_nan = 1. Return nonzero to stop early. */
typedef int (*sqlite_baseline_point_fn)(void *ctx, int64_t step, int64_t timestamp_ms,
                                        double value);

/* get_metric_history: every point of (run_uuid, key), all columns selected,
 * ordered by (timestamp, step, value) as MLflow orders them. *n_read (may be
 * NULL) gets the rows delivered. Returns 0 or -EIO. */
int sqlite_baseline_read_series(sqlite_baseline *b, const char *run_uuid, const char *key,
                                sqlite_baseline_point_fn fn, void *ctx, uint64_t *n_read);

/* The points of (run_uuid, key) with step_lo <= step <= hi, ordered by
 * (step, timestamp, value): what a step-range or sampled query (MLflow's
 * get-history-bulk-interval) reads. Same contract as read_series. */
int sqlite_baseline_read_step_range(sqlite_baseline *b, const char *run_uuid, const char *key,
                                    int64_t step_lo, int64_t step_hi,
                                    sqlite_baseline_point_fn fn, void *ctx, uint64_t *n_read);

/* The latest_metrics row of (run_uuid, key) into *out (value NaN if is_nan).
 * Returns 0, 1 if there is no such row, or -EIO. */
int sqlite_baseline_latest(sqlite_baseline *b, const char *run_uuid, const char *key,
                           int64_t *step, int64_t *timestamp_ms, double *value);

/* The underlying connection (a `sqlite3 *`), for suites that need a query of
 * their own. Borrowed: valid until sqlite_baseline_close(). */
void *sqlite_baseline_db(sqlite_baseline *b);

#endif /* TALLY_SQLITE_BASELINE_H */
