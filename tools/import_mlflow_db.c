/*
 * import_mlflow_db.c — `tally import mlflow-db FILE`: reads the tables of
 * MLflow's SQL store (SQLAlchemyStore) from a SQLite file, opened
 * read-only, and writes them through import.h.
 *
 *   experiments(experiment_id, name, artifact_location, lifecycle_stage,
 *               creation_time, last_update_time)   experiment_tags(key, value, experiment_id)
 *   runs(run_uuid, name, user_id, status 'FINISHED'.., start_time, end_time,
 *        lifecycle_stage, artifact_uri, experiment_id, deleted_time)
 *   params(key, value, run_uuid)   tags(key, value, run_uuid)
 *   metrics(key, value, timestamp, run_uuid, step, is_nan)
 *
 * MLflow stores NaN as value 0 with is_nan = 1 and +-inf as +-DBL_MAX (SQL
 * has no infinities); we import what MLflow itself would return: NaN where
 * is_nan, the stored value otherwise. latest_metrics is derived data (the
 * engine keeps the latest point of each series) and is not read.
 *
 * Order: experiments, then every run's metadata (ledger state per run),
 * then one pass over metrics ordered by (run_uuid, key) appending the
 * series of runs not yet done, then artifacts, then the runs are finished,
 * then the model registry (import_mlflow_db_models.c).
 * Older databases without deleted_time or experiments.creation_time are
 * read with NULLs in their place.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "import_sources.h"
#include "progress.h"

typedef struct db_run {
    char *source_id;                  /* runs.run_uuid */
    char run_id[TALLY_RUN_ID_LEN + 1];/* the Tally run id */
    char *art_src;                    /* local directory to copy artifacts from, or NULL */
    char *uri;                        /* Tally artifact URI */
    int todo;                         /* not done in the ledger */
} db_run;

typedef struct db_ctx {
    import_ctx *c;
    sqlite3 *db;
    const char *art_root;
    db_run *runs;
    size_t n_runs, cap_runs;
    int64_t *exp_src, *exp_dst; /* source -> Tally experiment ids */
    size_t n_exp;
} db_ctx;

static const char *col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

int import_db_has_column(sqlite3 *db, const char *table, const char *column)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT 1 FROM pragma_table_info('%s') WHERE name = '%s'", table,
             column);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return 0;
    int found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

static int prepare(db_ctx *d, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(d->db, sql, -1, st, NULL) != SQLITE_OK) {
        fprintf(stderr, "tally import: reading the MLflow database: %s\n", sqlite3_errmsg(d->db));
        return 1;
    }
    return 0;
}

/* key/value rows of "SELECT key, value FROM t WHERE owner = ?" into a
 * malloc'd array of kv pointing into malloc'd strings. */
static int load_kv(db_ctx *d, sqlite3_stmt *st, tally_kv **out, size_t *n_out)
{
    size_t n = 0, cap = 0;
    tally_kv *v = NULL;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            tally_kv *nv = realloc(v, cap * sizeof *nv);
            if (!nv)
                goto oom;
            v = nv;
        }
        v[n].key = strdup(col(st, 0) ? col(st, 0) : "");
        v[n].value = strdup(col(st, 1) ? col(st, 1) : "");
        n++;
        if (!v[n - 1].key || !v[n - 1].value)
            goto oom;
    }
    sqlite3_reset(st);
    if (r != SQLITE_DONE) {
        fprintf(stderr, "tally import: reading the MLflow database: %s\n", sqlite3_errmsg(d->db));
        goto fail;
    }
    *out = v;
    *n_out = n;
    return 0;
oom:
    fprintf(stderr, "tally import: out of memory\n");
    sqlite3_reset(st);
fail:
    for (size_t i = 0; i < n; i++) {
        free((char *)v[i].key);
        free((char *)v[i].value);
    }
    free(v);
    return 1;
}

static void free_kv(tally_kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)v[i].key);
        free((char *)v[i].value);
    }
    free(v);
}

static int import_experiments(db_ctx *d)
{
    const char *sql = import_db_has_column(d->db, "experiments", "creation_time")
                          ? "SELECT experiment_id, name, artifact_location, lifecycle_stage, "
                            "creation_time, last_update_time FROM experiments ORDER BY experiment_id"
                          : "SELECT experiment_id, name, artifact_location, lifecycle_stage, "
                            "NULL, NULL FROM experiments ORDER BY experiment_id";
    sqlite3_stmt *st, *tags;
    if (prepare(d, sql, &st))
        return 1;
    if (prepare(d, "SELECT key, value FROM experiment_tags WHERE experiment_id = ?", &tags)) {
        sqlite3_finalize(st);
        return 1;
    }
    int bad = 0, r;
    size_t cap = 0;
    while (!bad && (r = sqlite3_step(st)) == SQLITE_ROW) {
        char sid[32], local[4096], err[1024];
        int64_t src = sqlite3_column_int64(st, 0);
        snprintf(sid, sizeof sid, "%lld", (long long)src);
        const char *loc = col(st, 2);
        tally_kv *tv = NULL;
        size_t tn = 0;
        sqlite3_bind_int64(tags, 1, src);
        if (load_kv(d, tags, &tv, &tn)) {
            bad = 1;
            break;
        }
        tally_import_experiment e = {
            .source = d->c->source,
            .source_id = sid,
            .name = col(st, 1),
            .artifact_location = loc && !import_local_path(loc, local, sizeof local) &&
                                         strncmp(loc, "mlflow-artifacts:", 17) != 0
                                     ? loc
                                     : NULL,
            .lifecycle = col(st, 3) && strcmp(col(st, 3), "deleted") == 0
                             ? TALLY_LIFECYCLE_DELETED
                             : TALLY_LIFECYCLE_ACTIVE,
            .creation_time_ms = sqlite3_column_int64(st, 4),
            .last_update_time_ms = sqlite3_column_int64(st, 5),
            .tags = tv,
            .n_tags = tn,
        };
        int64_t id;
        if (import_experiment(d->c, &e, &id, err, sizeof err) != 0) {
            fprintf(stderr, "tally import: experiment %s: %s\n", sid, err);
            bad = 1;
        }
        free_kv(tv, tn);
        if (bad)
            break;
        if (d->n_exp == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *a = realloc(d->exp_src, cap * sizeof *a);
            int64_t *b = a ? realloc(d->exp_dst, cap * sizeof *b) : NULL;
            if (a)
                d->exp_src = a;
            if (b)
                d->exp_dst = b;
            if (!a || !b) {
                fprintf(stderr, "tally import: out of memory\n");
                bad = 1;
                break;
            }
        }
        d->exp_src[d->n_exp] = src;
        d->exp_dst[d->n_exp] = id;
        d->n_exp++;
        atomic_fetch_add(&d->c->n_experiments, 1);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(tags);
    return bad;
}

static int map_experiment(db_ctx *d, int64_t src, int64_t *dst)
{
    for (size_t i = 0; i < d->n_exp; i++)
        if (d->exp_src[i] == src) {
            *dst = d->exp_dst[i];
            return 0;
        }
    return -1;
}

/* The local directory holding a run's artifacts, or NULL for a remote URI. */
static char *artifact_source(db_ctx *d, const char *uri)
{
    char path[4096];
    if (!uri)
        return NULL;
    if (import_local_path(uri, path, sizeof path))
        return strdup(path);
    static const char ma[] = "mlflow-artifacts:";
    if (d->art_root && strncmp(uri, ma, sizeof ma - 1) == 0) {
        const char *rel = uri + sizeof ma - 1;
        while (*rel == '/')
            rel++;
        if (strstr(rel, ".."))
            return NULL;
        snprintf(path, sizeof path, "%s/%s", d->art_root, rel);
        return strdup(path);
    }
    return NULL;
}

static int import_runs(db_ctx *d)
{
    int has_deleted = import_db_has_column(d->db, "runs", "deleted_time");
    const char *sql =
        has_deleted ? "SELECT run_uuid, name, user_id, status, start_time, end_time, "
                      "lifecycle_stage, artifact_uri, experiment_id, deleted_time FROM runs "
                      "ORDER BY run_uuid"
                    : "SELECT run_uuid, name, user_id, status, start_time, end_time, "
                      "lifecycle_stage, artifact_uri, experiment_id, NULL FROM runs "
                      "ORDER BY run_uuid";
    sqlite3_stmt *st, *ps, *ts;
    if (prepare(d, sql, &st))
        return 1;
    /* MLflow keys params and tags by (key, run_uuid): no index serves a
     * lookup by run. Temporary copies indexed by run (the temp database is
     * writable on a read-only connection) make each run one index range. */
    char *msg = NULL;
    if (sqlite3_exec(d->db,
                     "CREATE TEMP TABLE tally_params AS SELECT run_uuid, key, value FROM params;"
                     "CREATE INDEX temp.tally_params_run ON tally_params(run_uuid);"
                     "CREATE TEMP TABLE tally_tags AS SELECT run_uuid, key, value FROM tags;"
                     "CREATE INDEX temp.tally_tags_run ON tally_tags(run_uuid);",
                     NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "tally import: reading params and tags: %s\n",
                msg ? msg : sqlite3_errmsg(d->db));
        sqlite3_free(msg);
        sqlite3_finalize(st);
        return 1;
    }
    if (prepare(d, "SELECT key, value FROM temp.tally_params WHERE run_uuid = ?", &ps) ||
        prepare(d, "SELECT key, value FROM temp.tally_tags WHERE run_uuid = ?", &ts)) {
        sqlite3_finalize(st);
        return 1;
    }
    int bad = 0, r;
    while (!bad && (r = sqlite3_step(st)) == SQLITE_ROW) {
        char err[1024], uri[4096];
        const char *sid = col(st, 0);
        atomic_fetch_add(&d->c->n_runs_seen, 1);
        int64_t exp;
        if (!sid || map_experiment(d, sqlite3_column_int64(st, 8), &exp) != 0) {
            fprintf(stderr, "tally import: run %s: its experiment %lld is not in the database\n",
                    sid ? sid : "(null)", (long long)sqlite3_column_int64(st, 8));
            bad = 1;
            break;
        }
        tally_kv *pv = NULL, *tv = NULL;
        size_t pn = 0, tn = 0;
        sqlite3_bind_text(ps, 1, sid, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ts, 1, sid, -1, SQLITE_TRANSIENT);
        if (load_kv(d, ps, &pv, &pn) || load_kv(d, ts, &tv, &tn)) {
            free_kv(pv, pn);
            bad = 1;
            break;
        }
        char *src_dir = artifact_source(d, col(st, 7));
        tally_import_run run = {
            .source_run_id = sid,
            .experiment_id = exp,
            .run_name = col(st, 1),
            .user_id = col(st, 2),
            .status = col(st, 3) ? tally_run_status_parse(col(st, 3)) : TALLY_RUN_RUNNING,
            .start_time_ms = sqlite3_column_int64(st, 4),
            .has_end_time = sqlite3_column_type(st, 5) != SQLITE_NULL,
            .end_time_ms = sqlite3_column_int64(st, 5),
            .lifecycle = col(st, 6) && strcmp(col(st, 6), "deleted") == 0
                             ? TALLY_LIFECYCLE_DELETED
                             : TALLY_LIFECYCLE_ACTIVE,
            .has_deleted_time = sqlite3_column_type(st, 9) != SQLITE_NULL,
            .deleted_time_ms = sqlite3_column_int64(st, 9),
            .artifact_uri = src_dir ? NULL : col(st, 7),
            .params = pv,
            .n_params = pn,
            .tags = tv,
            .n_tags = tn,
        };
        tally_import_state state;
        db_run dr = {0};
        if (!run.status) {
            fprintf(stderr, "tally import: run %s: invalid status '%s'\n", sid, col(st, 3));
            bad = 1;
        } else if (import_run(d->c, &run, &state, dr.run_id, uri, sizeof uri, err,
                              sizeof err) != 0) {
            fprintf(stderr, "tally import: run %s: %s\n", sid, err);
            bad = 1;
        }
        free_kv(pv, pn);
        free_kv(tv, tn);
        if (bad) {
            free(src_dir);
            break;
        }
        if (state == TALLY_IMPORT_DONE) {
            atomic_fetch_add(&d->c->n_runs_skipped, 1);
            free(src_dir);
            continue;
        }
        if (d->n_runs == d->cap_runs) {
            d->cap_runs = d->cap_runs ? d->cap_runs * 2 : 64;
            db_run *nr = realloc(d->runs, d->cap_runs * sizeof *nr);
            if (!nr) {
                free(src_dir);
                fprintf(stderr, "tally import: out of memory\n");
                bad = 1;
                break;
            }
            d->runs = nr;
        }
        dr.source_id = strdup(sid);
        dr.uri = strdup(uri);
        dr.art_src = src_dir;
        dr.todo = 1;
        d->runs[d->n_runs++] = dr;
        if (!dr.source_id || !dr.uri) {
            fprintf(stderr, "tally import: out of memory\n");
            bad = 1;
        }
    }
    sqlite3_finalize(st);
    sqlite3_finalize(ps);
    sqlite3_finalize(ts);
    return bad;
}

static int cmp_run(const void *a, const void *b)
{
    return strcmp(((const db_run *)a)->source_id, ((const db_run *)b)->source_id);
}

static db_run *find_run(db_ctx *d, const char *sid)
{
    db_run key = {.source_id = (char *)sid};
    return bsearch(&key, d->runs, d->n_runs, sizeof *d->runs, cmp_run);
}

typedef struct series_buf {
    int64_t *steps, *ts;
    double *values;
    size_t n, cap;
    char key[1100];
    size_t key_len;
    db_run *run;
} series_buf;

static int series_flush(import_ctx *c, series_buf *s)
{
    int rc = 0;
    if (s->n && s->run)
        rc = import_run_series(c, s->run->run_id, s->key, s->key_len, s->steps, s->ts, s->values,
                               s->n);
    s->n = 0;
    return rc;
}

static int import_metrics(db_ctx *d, int quiet)
{
    if (d->n_runs == 0)
        return 0;
    qsort(d->runs, d->n_runs, sizeof *d->runs, cmp_run);
    sqlite3_stmt *st;
    if (prepare(d,
                "SELECT run_uuid, key, timestamp, value, step, is_nan FROM metrics "
                "ORDER BY run_uuid, key",
                &st))
        return 1;
    series_buf s = {0};
    char cur_run[64] = "";
    tally_progress pr;
    tally_progress_start(&pr, "import mlflow-db metrics", "points", 0, quiet);
    int bad = 0, r;
    while (!bad && (r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *sid = col(st, 0), *key = col(st, 1);
        if (!sid || !key)
            continue;
        int new_run = strcmp(sid, cur_run) != 0;
        size_t kl = (size_t)sqlite3_column_bytes(st, 1);
        if (new_run || kl != s.key_len || memcmp(key, s.key, kl) != 0) {
            if ((bad = series_flush(d->c, &s)) != 0)
                break;
            if (new_run) {
                snprintf(cur_run, sizeof cur_run, "%s", sid);
                s.run = find_run(d, sid);
            }
            if (kl >= sizeof s.key) {
                fprintf(stderr, "tally import: run %s: metric key too long\n", sid);
                bad = 1;
                break;
            }
            memcpy(s.key, key, kl);
            s.key_len = kl;
        }
        if (!s.run)
            continue; /* done before, or a metric of a run that does not exist */
        if (s.n == s.cap) {
            size_t nc = s.cap ? s.cap * 2 : 4096;
            int64_t *a = realloc(s.steps, nc * sizeof *a);
            if (a)
                s.steps = a;
            int64_t *b = a ? realloc(s.ts, nc * sizeof *b) : NULL;
            if (b)
                s.ts = b;
            double *v = b ? realloc(s.values, nc * sizeof *v) : NULL;
            if (v)
                s.values = v;
            if (!v) {
                fprintf(stderr, "tally import: out of memory\n");
                bad = 1;
                break;
            }
            s.cap = nc;
        }
        s.ts[s.n] = sqlite3_column_int64(st, 2);
        s.values[s.n] = sqlite3_column_int(st, 5) ? NAN : sqlite3_column_double(st, 3);
        s.steps[s.n] = sqlite3_column_int64(st, 4);
        s.n++;
        tally_progress_add(&pr, 1);
    }
    if (!bad && r != SQLITE_DONE) {
        fprintf(stderr, "tally import: reading metrics: %s\n", sqlite3_errmsg(d->db));
        bad = 1;
    }
    if (!bad)
        bad = series_flush(d->c, &s);
    tally_progress_finish(&pr);
    sqlite3_finalize(st);
    free(s.steps);
    free(s.ts);
    free(s.values);
    return bad;
}

static int finish_run(import_ctx *c, size_t i, void *arg)
{
    db_ctx *d = arg;
    db_run *r = &d->runs[i];
    if (r->art_src && import_copy_artifacts(c, r->art_src, r->uri) != 0)
        return 1;
    if (import_run_finish(c, r->source_id) != 0)
        return 1;
    atomic_fetch_add(&c->n_runs_imported, 1);
    return 0;
}

int import_mlflow_db(import_ctx *c, const char *db, const char *artifact_root, int quiet)
{
    db_ctx d = {.c = c, .art_root = artifact_root};
    if (sqlite3_open_v2(db, &d.db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "tally import: cannot open %s: %s\n", db,
                d.db ? sqlite3_errmsg(d.db) : "out of memory");
        sqlite3_close(d.db);
        return 1;
    }
    sqlite3_busy_timeout(d.db, 10000);
    int bad = 0;
    if (!import_db_has_column(d.db, "runs", "run_uuid") ||
        !import_db_has_column(d.db, "metrics", "is_nan")) {
        fprintf(stderr, "tally import: %s is not an MLflow tracking database (no runs.run_uuid "
                        "or metrics.is_nan)\n",
                db);
        bad = 1;
    }
    if (!bad)
        bad = import_experiments(&d);
    if (!bad)
        bad = import_runs(&d);
    if (!bad)
        bad = import_metrics(&d, quiet);
    if (!bad)
        bad = import_run_tasks(c, d.n_runs, finish_run, &d, "import mlflow-db runs", quiet);
    if (!bad) /* after the runs: versions refer to them (store_registry_import.h (4)) */
        bad = import_mlflow_db_models(c, d.db);
    for (size_t i = 0; i < d.n_runs; i++) {
        free(d.runs[i].source_id);
        free(d.runs[i].art_src);
        free(d.runs[i].uri);
    }
    free(d.runs);
    free(d.exp_src);
    free(d.exp_dst);
    sqlite3_close(d.db);
    return bad;
}
