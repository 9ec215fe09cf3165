/*
 * sqlite_baseline.c — MLflow's metric storage on SQLite, as the baseline of
 * tally-bench (contract and caveats in sqlite_baseline.h).
 *
 * Schema: byte for byte what MLflow's SQL store leaves in a SQLite database
 * after its migrations (tests/db/schemas/sqlite.sql in MLflow), minus the
 * foreign keys to `runs`, which this baseline does not create:
 *
 *   metrics(key VARCHAR(250) NOT NULL, value FLOAT NOT NULL,
 *           timestamp BIGINT NOT NULL, run_uuid VARCHAR(32) NOT NULL,
 *           step BIGINT DEFAULT '0' NOT NULL, is_nan BOOLEAN DEFAULT '0' NOT NULL,
 *           PK metric_pk (key, timestamp, step, run_uuid, value, is_nan))
 *     + index_metrics_run_uuid (run_uuid)
 *     + index_metrics_run_uuid_key_step (run_uuid, key, step)   (MLflow 3.x)
 *   latest_metrics(key, value, timestamp, step, is_nan, run_uuid,
 *                  PK latest_metric_pk (key, run_uuid))
 *     + index_latest_metrics_run_uuid (run_uuid)
 *
 * Neither table is WITHOUT ROWID, so each metrics row lives in the rowid
 * table and again in three index b-trees: that is MLflow's real cost and
 * the bytes/point baseline counts it.
 *
 * Write path of one log_batch call (MLflow's SqlAlchemyStore._log_metrics):
 *   BEGIN
 *   INSERT OR IGNORE INTO metrics ... per metric  (NaN -> value 0, is_nan 1;
 *                                                  +-inf -> +-DBL_MAX)
 *   per distinct key: SELECT its latest_metrics row; if a logged metric is
 *     greater by (step, timestamp, value), INSERT OR REPLACE the row
 *   COMMIT
 *
 * Invariants:
 *  (1) Every statement is prepared once in sqlite_baseline_open() and reset
 *      after each use, so none is ever left mid-step between calls.
 *  (2) A failed log_batch rolls its transaction back: the database holds a
 *      batch entirely or not at all, like MLflow's session.
 */
#include "sqlite_baseline.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INSERT_METRIC,
    ST_SELECT_LATEST,
    ST_UPSERT_LATEST,
    ST_READ_SERIES,
    ST_READ_RANGE,
    ST_N
};

static const char *const statement_sql[ST_N] = {
    [ST_BEGIN] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT_METRIC] = "INSERT OR IGNORE INTO metrics (key, value, timestamp, run_uuid, step, "
                         "is_nan) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_SELECT_LATEST] = "SELECT step, timestamp, value, is_nan FROM latest_metrics "
                         "WHERE run_uuid = ?1 AND key = ?2",
    [ST_UPSERT_LATEST] = "INSERT OR REPLACE INTO latest_metrics (key, value, timestamp, step, "
                         "is_nan, run_uuid) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_READ_SERIES] = "SELECT key, value, timestamp, run_uuid, step, is_nan FROM metrics "
                       "WHERE run_uuid = ?1 AND key = ?2 ORDER BY timestamp, step, value",
    [ST_READ_RANGE] = "SELECT key, value, timestamp, run_uuid, step, is_nan FROM metrics "
                      "WHERE run_uuid = ?1 AND key = ?2 AND step >= ?3 AND step <= ?4 "
                      "ORDER BY step, timestamp, value",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS metrics (\n"
    "  key VARCHAR(250) NOT NULL,\n"
    "  value FLOAT NOT NULL,\n"
    "  timestamp BIGINT NOT NULL,\n"
    "  run_uuid VARCHAR(32) NOT NULL,\n"
    "  step BIGINT DEFAULT '0' NOT NULL,\n"
    "  is_nan BOOLEAN DEFAULT '0' NOT NULL,\n"
    "  CONSTRAINT metric_pk PRIMARY KEY (key, timestamp, step, run_uuid, value, is_nan),\n"
    "  CHECK (is_nan IN (0, 1))\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS index_metrics_run_uuid ON metrics (run_uuid);\n"
    "CREATE INDEX IF NOT EXISTS index_metrics_run_uuid_key_step ON metrics (run_uuid, key, step);\n"
    "CREATE TABLE IF NOT EXISTS latest_metrics (\n"
    "  key VARCHAR(250) NOT NULL,\n"
    "  value FLOAT NOT NULL,\n"
    "  timestamp BIGINT,\n"
    "  step BIGINT NOT NULL,\n"
    "  is_nan BOOLEAN NOT NULL,\n"
    "  run_uuid VARCHAR(32) NOT NULL,\n"
    "  CONSTRAINT latest_metric_pk PRIMARY KEY (key, run_uuid),\n"
    "  CHECK (is_nan IN (0, 1))\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS index_latest_metrics_run_uuid ON latest_metrics (run_uuid);\n";

struct sqlite_baseline {
    sqlite3 *db;                /* the connection */
    sqlite3_stmt *st[ST_N];     /* prepared statements, see statement_sql */
};

/* Largest metric of one key within a batch, for the latest_metrics update. */
typedef struct key_max {
    const char *key;  /* borrowed from the caller's metrics; NULL = empty slot */
    int64_t step;     /* of the greatest metric by (step, timestamp, value) */
    int64_t timestamp_ms;
    double value;     /* as stored: NaN already replaced by 0 */
    int is_nan;
} key_max;

/* Slots of the per-batch key table: a power of two above 2 x BATCH_MAX. */
#define KEY_SLOTS 2048u

static int sql_error(sqlite_baseline *b, const char *what)
{
    fprintf(stderr, "sqlite baseline: %s: %s\n", what, sqlite3_errmsg(b->db));
    return -EIO;
}

/* Runs a statement that returns no row and resets it. */
static int step_done(sqlite_baseline *b, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sql_error(b, what);
    return 0;
}

int sqlite_baseline_open(const char *path, sqlite_baseline **out)
{
    if (!path || !out)
        return -EINVAL;
    *out = NULL;
    sqlite_baseline *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    if (sqlite3_open_v2(path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        int rc = b->db ? sql_error(b, "open") : -ENOMEM;
        sqlite3_close(b->db);
        free(b);
        return rc;
    }
    /* WAL + synchronous=NORMAL: the tuned deployment (sqlite_baseline.h). */
    char *err = NULL;
    if (sqlite3_exec(b->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     &err) != SQLITE_OK ||
        sqlite3_exec(b->db, schema_sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sqlite baseline: schema: %s\n", err ? err : "?");
        sqlite3_free(err);
        sqlite3_close(b->db);
        free(b);
        return -EIO;
    }
    for (int i = 0; i < ST_N; i++) {
        if (sqlite3_prepare_v3(b->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &b->st[i],
                               NULL) != SQLITE_OK) {
            int rc = sql_error(b, statement_sql[i]);
            sqlite_baseline_close(b);
            return rc;
        }
    }
    *out = b;
    return 0;
}

int sqlite_baseline_checkpoint(sqlite_baseline *b)
{
    if (sqlite3_wal_checkpoint_v2(b->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) !=
        SQLITE_OK)
        return sql_error(b, "wal checkpoint");
    return 0;
}

int sqlite_baseline_close(sqlite_baseline *b)
{
    if (!b)
        return 0;
    int rc = 0;
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(b->st[i]);
    if (b->db) {
        rc = sqlite_baseline_checkpoint(b);
        if (sqlite3_close(b->db) != SQLITE_OK && !rc)
            rc = -EIO;
    }
    free(b);
    return rc;
}

/* FNV-1a: only to spread keys over KEY_SLOTS within one batch. */
static uint32_t key_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* MLflow's _compare_metrics: a strictly more recent than b by (step, ts, value). */
static int metric_greater(int64_t sa, int64_t ta, double va, int64_t sb, int64_t tb, double vb)
{
    if (sa != sb)
        return sa > sb;
    if (ta != tb)
        return ta > tb;
    return va > vb;
}

/* Updates latest_metrics for one key of the batch, as
 * _update_latest_metrics_if_necessary does. */
static int update_latest(sqlite_baseline *b, const char *run_uuid, const key_max *m)
{
    sqlite3_stmt *sel = b->st[ST_SELECT_LATEST];
    sqlite3_bind_text(sel, 1, run_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(sel, 2, m->key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(sel);
    int replace = 1;
    if (rc == SQLITE_ROW) {
        replace = metric_greater(m->step, m->timestamp_ms, m->value, sqlite3_column_int64(sel, 0),
                                 sqlite3_column_int64(sel, 1), sqlite3_column_double(sel, 2));
    } else if (rc != SQLITE_DONE) {
        sqlite3_reset(sel);
        return sql_error(b, "select latest");
    }
    sqlite3_reset(sel);
    if (!replace)
        return 0;
    sqlite3_stmt *up = b->st[ST_UPSERT_LATEST];
    sqlite3_bind_text(up, 1, m->key, -1, SQLITE_STATIC);
    sqlite3_bind_double(up, 2, m->value);
    sqlite3_bind_int64(up, 3, m->timestamp_ms);
    sqlite3_bind_int64(up, 4, m->step);
    sqlite3_bind_int(up, 5, m->is_nan);
    sqlite3_bind_text(up, 6, run_uuid, -1, SQLITE_STATIC);
    return step_done(b, up, "upsert latest");
}

/* The batch's body inside BEGIN/COMMIT. keys is a zeroed KEY_SLOTS table. */
static int log_batch_body(sqlite_baseline *b, const char *run_uuid,
                          const sqlite_baseline_metric *metrics, size_t n, key_max *keys)
{
    sqlite3_stmt *ins = b->st[ST_INSERT_METRIC];
    for (size_t i = 0; i < n; i++) {
        const sqlite_baseline_metric *m = &metrics[i];
        double v = m->value;
        int is_nan = isnan(v) ? 1 : 0;
        if (is_nan)
            v = 0.0; /* MLflow stores NaN as 0 with is_nan = 1 */
        else if (isinf(v))
            v = v > 0 ? DBL_MAX : -DBL_MAX; /* SQL has no infinity: MLflow clamps */
        sqlite3_bind_text(ins, 1, m->key, -1, SQLITE_STATIC);
        sqlite3_bind_double(ins, 2, v);
        sqlite3_bind_int64(ins, 3, m->timestamp_ms);
        sqlite3_bind_text(ins, 4, run_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 5, m->step);
        sqlite3_bind_int(ins, 6, is_nan);
        int rc = step_done(b, ins, "insert metric");
        if (rc)
            return rc;

        uint32_t slot = key_hash(m->key) & (KEY_SLOTS - 1);
        while (keys[slot].key && strcmp(keys[slot].key, m->key) != 0)
            slot = (slot + 1) & (KEY_SLOTS - 1);
        key_max *k = &keys[slot];
        if (!k->key || metric_greater(m->step, m->timestamp_ms, v, k->step, k->timestamp_ms,
                                      k->value)) {
            k->key = m->key;
            k->step = m->step;
            k->timestamp_ms = m->timestamp_ms;
            k->value = v;
            k->is_nan = is_nan;
        }
    }
    for (uint32_t s = 0; s < KEY_SLOTS; s++) {
        if (!keys[s].key)
            continue;
        int rc = update_latest(b, run_uuid, &keys[s]);
        if (rc)
            return rc;
    }
    return 0;
}

int sqlite_baseline_log_batch(sqlite_baseline *b, const char *run_uuid,
                              const sqlite_baseline_metric *metrics, size_t n)
{
    if (!b || !run_uuid || (n && !metrics) || n > SQLITE_BASELINE_BATCH_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!metrics[i].key || strlen(metrics[i].key) > 250)
            return -EINVAL;
    if (n == 0)
        return 0;
    static _Thread_local key_max keys[KEY_SLOTS];
    memset(keys, 0, sizeof keys);

    int rc = step_done(b, b->st[ST_BEGIN], "begin");
    if (rc)
        return rc;
    rc = log_batch_body(b, run_uuid, metrics, n, keys);
    if (rc == 0)
        rc = step_done(b, b->st[ST_COMMIT], "commit");
    if (rc)
        step_done(b, b->st[ST_ROLLBACK], "rollback");
    return rc;
}

int sqlite_baseline_log_series(sqlite_baseline *b, const char *run_uuid, const char *key,
                               const int64_t *steps, const int64_t *timestamps_ms,
                               const double *values, size_t n)
{
    sqlite_baseline_metric batch[SQLITE_BASELINE_BATCH_MAX];
    for (size_t off = 0; off < n; off += SQLITE_BASELINE_BATCH_MAX) {
        size_t len = n - off < SQLITE_BASELINE_BATCH_MAX ? n - off : SQLITE_BASELINE_BATCH_MAX;
        for (size_t i = 0; i < len; i++) {
            batch[i].key = key;
            batch[i].value = values[off + i];
            batch[i].timestamp_ms = timestamps_ms[off + i];
            batch[i].step = steps[off + i];
        }
        int rc = sqlite_baseline_log_batch(b, run_uuid, batch, len);
        if (rc)
            return rc;
    }
    return 0;
}

/* Steps a bound SELECT of ST_READ_* to the end, handing rows to fn. */
static int read_rows(sqlite_baseline *b, sqlite3_stmt *st, sqlite_baseline_point_fn fn, void *ctx,
                     uint64_t *n_read)
{
    uint64_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* Columns: key, value, timestamp, run_uuid, step, is_nan (all of
         * them, as the ORM loads whole SqlMetric rows). */
        (void)sqlite3_column_text(st, 0);
        double v = sqlite3_column_double(st, 1);
        int64_t ts = sqlite3_column_int64(st, 2);
        (void)sqlite3_column_text(st, 3);
        int64_t step = sqlite3_column_int64(st, 4);
        if (sqlite3_column_int(st, 5))
            v = NAN;
        n++;
        if (fn && fn(ctx, step, ts, v)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (n_read)
        *n_read = n;
    if (rc != SQLITE_DONE)
        return sql_error(b, "read");
    return 0;
}

int sqlite_baseline_read_series(sqlite_baseline *b, const char *run_uuid, const char *key,
                                sqlite_baseline_point_fn fn, void *ctx, uint64_t *n_read)
{
    sqlite3_stmt *st = b->st[ST_READ_SERIES];
    sqlite3_bind_text(st, 1, run_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    return read_rows(b, st, fn, ctx, n_read);
}

int sqlite_baseline_read_step_range(sqlite_baseline *b, const char *run_uuid, const char *key,
                                    int64_t step_lo, int64_t step_hi,
                                    sqlite_baseline_point_fn fn, void *ctx, uint64_t *n_read)
{
    sqlite3_stmt *st = b->st[ST_READ_RANGE];
    sqlite3_bind_text(st, 1, run_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, step_lo);
    sqlite3_bind_int64(st, 4, step_hi);
    return read_rows(b, st, fn, ctx, n_read);
}

int sqlite_baseline_latest(sqlite_baseline *b, const char *run_uuid, const char *key,
                           int64_t *step, int64_t *timestamp_ms, double *value)
{
    sqlite3_stmt *sel = b->st[ST_SELECT_LATEST];
    sqlite3_bind_text(sel, 1, run_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(sel, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(sel);
    int result = 1;
    if (rc == SQLITE_ROW) {
        if (step)
            *step = sqlite3_column_int64(sel, 0);
        if (timestamp_ms)
            *timestamp_ms = sqlite3_column_int64(sel, 1);
        if (value)
            *value = sqlite3_column_int(sel, 3) ? NAN : sqlite3_column_double(sel, 2);
        result = 0;
    } else if (rc != SQLITE_DONE) {
        result = sql_error(b, "latest");
    }
    sqlite3_reset(sel);
    return result;
}

void *sqlite_baseline_db(sqlite_baseline *b)
{
    return b->db;
}
