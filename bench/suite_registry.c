/*
 * suite_registry.c — the `registry` suite of tally-bench: model-versions/search
 * over HTTP on a registry of many versions (issue 5's figure).
 *
 * Data (loaded through the MLflow API, never timed): model "m" with N
 * versions (10,000; --quick 2,000) and four other models with N/8 versions
 * each, every version with two tags and a run_id, so a name filter has rows
 * to skip. Then, on one keep-alive connection, REPS requests each after one
 * warm-up:
 *
 *   versions_search_<N>_name_p50_ms / _p99_ms
 *        GET mlflow/model-versions/search?filter=name='m'
 *            &order_by=creation_timestamp DESC&max_results=100
 *        (the first page, as the UI asks for it)
 *   versions_search_<N>_name_page50_p99_ms
 *        the same query for the page at offset N/2 (page token)
 *   versions_search_<N>_all_versions_p50_ms
 *        the same filter with max_results=200000: all N versions in one
 *        response (what the Python client's search_model_versions asks)
 *
 * Baseline: the same queries on SQLite through MLflow's own registry schema
 * (tables and primary keys of MLflow's dbmodels/models.py, no further
 * indexes, as MLflow creates them), in this process, issuing the statements
 * MLflow's SQL store issues for one search: the version page (filter,
 * ORDER BY with MLflow's tie-breakers, LIMIT max_results+1 OFFSET), the
 * selectin load of the page's tags (SQLAlchemy's
 * chunks of 500), the model and its aliases; every column
 * of every row is read. Not charged to the baseline: Python, SQLAlchemy,
 * JSON, HTTP — so the comparison favours MLflow. ratio = baseline / Tally
 * (above 1: Tally faster end to end than MLflow's SQL alone).
 *
 * Invariants:
 *  (1) Loading is never timed; each timed request is checked (status 200 and
 *      the expected number of versions) or the figure is not reported.
 *  (2) The child server is always stopped.
 */
#include <sqlite3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_http.h"

#define N_VERSIONS 10000
#define N_VERSIONS_QUICK 2000
#define N_OTHER_MODELS 4
#define REPS 300
#define REPS_QUICK 60
#define REPS_ALL 15
#define PAGE 100

/* ------------------------------------------------------------------------ */
/* Loading through the API                                                   */
/* ------------------------------------------------------------------------ */

static int post(bench_hconn *h, const char *rel, const char *body)
{
    char path[256];
    snprintf(path, sizeof path, "/api/2.0/mlflow/%s", rel);
    int st = bench_hreq(h, "POST", path, NULL, body, strlen(body));
    if (st != 200)
        fprintf(stderr, "registry: %s -> %d %.200s\n", rel, st, st > 0 ? bench_hbody(h) : "");
    return st == 200 ? 0 : -1;
}

static int load_model(bench_hconn *h, const char *name, int n)
{
    char body[512];
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"tags\":[{\"key\":\"team\",\"value\":\"ml\"}]}",
             name);
    if (post(h, "registered-models/create", body) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof body,
                 "{\"name\":\"%s\",\"source\":\"mlflow-artifacts:/1/run%05d/artifacts/model\","
                 "\"run_id\":\"%032x\",\"tags\":[{\"key\":\"framework\",\"value\":\"torch\"},"
                 "{\"key\":\"epoch\",\"value\":\"%d\"}]}",
                 name, i, i, i % 50);
        if (post(h, "model-versions/create", body) != 0)
            return -1;
    }
    return 0;
}

/* Occurrences of "\"version\":" in the body: versions returned. */
static size_t count_versions(const char *body)
{
    size_t n = 0;
    for (const char *p = body; (p = strstr(p, "\"current_stage\":")); p++)
        n++;
    return n;
}

/* One timed query repeated reps times; latencies in ms into lat. -1 if a
 * response is wrong. */
static int time_query(bench_hconn *h, const char *path, size_t expect, int reps, double *lat)
{
    for (int r = -1; r < reps; r++) {
        uint64_t t0 = bench_now_ns();
        int st = bench_hreq(h, "GET", path, NULL, NULL, 0);
        uint64_t t1 = bench_now_ns();
        if (st != 200 || count_versions(bench_hbody(h)) != expect) {
            fprintf(stderr, "registry: %s -> %d, %zu versions (want %zu)\n", path, st,
                    st == 200 ? count_versions(bench_hbody(h)) : 0, expect);
            return -1;
        }
        if (r >= 0)
            lat[r] = (double)(t1 - t0) / 1e6;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Baseline: MLflow's registry schema on SQLite                              */
/* ------------------------------------------------------------------------ */

static const char mlflow_schema[] =
    "CREATE TABLE registered_models (name VARCHAR(256) NOT NULL, creation_time BIGINT, "
    "last_updated_time BIGINT, description VARCHAR(5000), CONSTRAINT registered_model_pk "
    "PRIMARY KEY (name), UNIQUE (name));"
    "CREATE TABLE model_versions (name VARCHAR(256) NOT NULL, version INTEGER NOT NULL, "
    "creation_time BIGINT, last_updated_time BIGINT, description VARCHAR(5000), user_id "
    "VARCHAR(256), current_stage VARCHAR(20), source VARCHAR(500), run_id VARCHAR(32), status "
    "VARCHAR(20), status_message VARCHAR(500), run_link VARCHAR(500), storage_location "
    "VARCHAR(500), CONSTRAINT model_version_pk PRIMARY KEY (name, version), FOREIGN KEY(name) "
    "REFERENCES registered_models (name) ON UPDATE CASCADE);"
    "CREATE TABLE registered_model_tags (key VARCHAR(250) NOT NULL, value VARCHAR(5000), name "
    "VARCHAR(256) NOT NULL, CONSTRAINT registered_model_tag_pk PRIMARY KEY (key, name), "
    "FOREIGN KEY(name) REFERENCES registered_models (name) ON UPDATE CASCADE);"
    "CREATE TABLE model_version_tags (key VARCHAR(250) NOT NULL, value TEXT, name "
    "VARCHAR(256) NOT NULL, version INTEGER NOT NULL, CONSTRAINT model_version_tag_pk PRIMARY "
    "KEY (key, name, version), FOREIGN KEY(name, version) REFERENCES model_versions (name, "
    "version) ON UPDATE CASCADE);"
    "CREATE TABLE registered_model_aliases (alias VARCHAR(256) NOT NULL, version INTEGER NOT "
    "NULL, name VARCHAR(256) NOT NULL, CONSTRAINT registered_model_alias_pk PRIMARY KEY (name, "
    "alias), FOREIGN KEY(name) REFERENCES registered_models (name) ON DELETE CASCADE ON UPDATE "
    "CASCADE);";

typedef struct baseline {
    sqlite3 *db;
    sqlite3_stmt *page, *model, *aliases;
} baseline;

static int bl_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "registry baseline: %s\n", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int baseline_load(baseline *b, const char *path, int n)
{
    memset(b, 0, sizeof *b);
    if (sqlite3_open(path, &b->db) != SQLITE_OK ||
        bl_exec(b->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;") != 0 ||
        bl_exec(b->db, mlflow_schema) != 0 || bl_exec(b->db, "BEGIN") != 0)
        return -1;
    sqlite3_stmt *m, *v, *t;
    if (sqlite3_prepare_v2(b->db, "INSERT INTO registered_models VALUES (?, 1, 1, '')", -1, &m,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(b->db,
                           "INSERT INTO model_versions VALUES (?, ?, ?, ?, '', NULL, 'None', ?, "
                           "?, 'READY', NULL, '', ?)",
                           -1, &v, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(b->db, "INSERT INTO model_version_tags VALUES (?, ?, ?, ?)", -1, &t,
                           NULL) != SQLITE_OK)
        return -1;
    long long now = 1700000000000;
    for (int mi = 0; mi <= N_OTHER_MODELS; mi++) {
        char name[32], src[128], run[40], epoch[16];
        if (mi == 0)
            snprintf(name, sizeof name, "m");
        else
            snprintf(name, sizeof name, "other-%d", mi - 1);
        sqlite3_bind_text(m, 1, name, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(m) != SQLITE_DONE)
            return -1;
        sqlite3_reset(m);
        int nv = mi == 0 ? n : n / 8;
        for (int i = 0; i < nv; i++) {
            snprintf(src, sizeof src, "mlflow-artifacts:/1/run%05d/artifacts/model", i);
            snprintf(run, sizeof run, "%032x", i);
            sqlite3_bind_text(v, 1, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(v, 2, i + 1);
            sqlite3_bind_int64(v, 3, now);
            sqlite3_bind_int64(v, 4, now);
            sqlite3_bind_text(v, 5, src, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(v, 6, run, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(v, 7, src, -1, SQLITE_TRANSIENT);
            now++;
            if (sqlite3_step(v) != SQLITE_DONE)
                return -1;
            sqlite3_reset(v);
            snprintf(epoch, sizeof epoch, "%d", i % 50);
            const char *kv[2][2] = {{"framework", "torch"}, {"epoch", epoch}};
            for (int k = 0; k < 2; k++) {
                sqlite3_bind_text(t, 1, kv[k][0], -1, SQLITE_STATIC);
                sqlite3_bind_text(t, 2, kv[k][1], -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(t, 3, name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int(t, 4, i + 1);
                if (sqlite3_step(t) != SQLITE_DONE)
                    return -1;
                sqlite3_reset(t);
            }
        }
    }
    sqlite3_finalize(m);
    sqlite3_finalize(v);
    sqlite3_finalize(t);
    if (bl_exec(b->db, "COMMIT; ANALYZE;") != 0)
        return -1;
    /* MLflow's search_model_versions: the page (here), the tags
     * (baseline_search), then the model and its aliases. */
    if (sqlite3_prepare_v2(b->db,
                           "SELECT name, version, creation_time, last_updated_time, "
                           "description, user_id, current_stage, source, run_id, status, "
                           "status_message, run_link, storage_location FROM model_versions "
                           "WHERE name = ?1 AND current_stage != 'Deleted_Internal' ORDER BY "
                           "creation_time DESC, name ASC, version DESC LIMIT ?2 OFFSET ?3",
                           -1, &b->page, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(b->db, "SELECT * FROM registered_models WHERE name = ?1", -1,
                           &b->model, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(b->db, "SELECT * FROM registered_model_aliases WHERE name = ?1", -1,
                           &b->aliases, NULL) != SQLITE_OK) {
        fprintf(stderr, "registry baseline: %s\n", sqlite3_errmsg(b->db));
        return -1;
    }
    return 0;
}

static size_t touch_row(sqlite3_stmt *st)
{
    size_t bytes = 0;
    for (int i = 0; i < sqlite3_column_count(st); i++)
        bytes += (size_t)sqlite3_column_bytes(st, i) + (sqlite3_column_text(st, i) ? 1 : 0);
    return bytes;
}

/* One search; returns the versions read (page rows), or -1. */
static long baseline_search(baseline *b, int limit, int offset)
{
    sqlite3_bind_text(b->page, 1, "m", -1, SQLITE_STATIC);
    sqlite3_bind_int(b->page, 2, limit + 1);
    sqlite3_bind_int(b->page, 3, offset);
    long n = 0;
    size_t bytes = 0;
    int *versions = malloc(sizeof(int) * (size_t)(limit + 1));
    if (!versions)
        return -1;
    while (sqlite3_step(b->page) == SQLITE_ROW) {
        bytes += touch_row(b->page);
        versions[n++] = sqlite3_column_int(b->page, 1);
    }
    sqlite3_reset(b->page);
    if (n > limit)
        n = limit;
    /* SQLAlchemy's selectinload: one statement per 500 parents,
     * WHERE (name, version) IN (VALUES (?, ?), ...). */
    for (long from = 0; from < n; from += 500) {
        long cnt = n - from < 500 ? n - from : 500;
        char *sql = malloc(160 + 10 * (size_t)cnt);
        if (!sql) {
            free(versions);
            return -1;
        }
        size_t o = (size_t)sprintf(sql, "SELECT key, value, name, version FROM "
                                        "model_version_tags WHERE (name, version) IN (VALUES ");
        for (long i = 0; i < cnt; i++)
            o += (size_t)sprintf(sql + o, "%s(?, ?)", i ? ", " : "");
        sprintf(sql + o, ")");
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(b->db, sql, -1, &st, NULL) != SQLITE_OK) {
            free(sql);
            free(versions);
            return -1;
        }
        free(sql);
        for (long i = 0; i < cnt; i++) {
            sqlite3_bind_text(st, (int)(2 * i + 1), "m", -1, SQLITE_STATIC);
            sqlite3_bind_int(st, (int)(2 * i + 2), versions[from + i]);
        }
        while (sqlite3_step(st) == SQLITE_ROW)
            bytes += touch_row(st);
        sqlite3_finalize(st);
    }
    free(versions);
    sqlite3_stmt *more[2] = {b->model, b->aliases};
    for (int k = 0; k < 2; k++) {
        sqlite3_bind_text(more[k], 1, "m", -1, SQLITE_STATIC);
        while (sqlite3_step(more[k]) == SQLITE_ROW)
            bytes += touch_row(more[k]);
        sqlite3_reset(more[k]);
    }
    return bytes ? n : -1;
}

static void baseline_close(baseline *b)
{
    sqlite3_finalize(b->page);
    sqlite3_finalize(b->model);
    sqlite3_finalize(b->aliases);
    sqlite3_close(b->db);
}

static int time_baseline(baseline *b, int limit, int offset, long expect, int reps, double *lat)
{
    for (int r = -1; r < reps; r++) {
        uint64_t t0 = bench_now_ns();
        long n = baseline_search(b, limit, offset);
        uint64_t t1 = bench_now_ns();
        if (n != expect) {
            fprintf(stderr, "registry baseline: %ld versions (want %ld)\n", n, expect);
            return -1;
        }
        if (r >= 0)
            lat[r] = (double)(t1 - t0) / 1e6;
    }
    return 0;
}

/* MLflow's page token for offset (base64 of {"offset": N}), URL-encoded. */
static void page_token(int offset, char *out, size_t cap)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char json[48];
    int jl = snprintf(json, sizeof json, "{\"offset\": %d}", offset);
    size_t o = 0;
    for (int i = 0; i < jl && o + 13 < cap; i += 3) {
        unsigned v = (unsigned)(unsigned char)json[i] << 16;
        if (i + 1 < jl)
            v |= (unsigned)(unsigned char)json[i + 1] << 8;
        if (i + 2 < jl)
            v |= (unsigned char)json[i + 2];
        char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63],
                     i + 1 < jl ? b64[(v >> 6) & 63] : '=', i + 2 < jl ? b64[v & 63] : '='};
        for (int k = 0; k < 4; k++) {
            if (q[k] == '=' || q[k] == '+' || q[k] == '/')
                o += (size_t)snprintf(out + o, cap - o, "%%%02X", (unsigned char)q[k]);
            else
                out[o++] = q[k];
        }
    }
    out[o] = 0;
}

/* ------------------------------------------------------------------------ */

int bench_suite_registry(bench_ctx *c)
{
    int n = c->quick ? N_VERSIONS_QUICK : N_VERSIONS;
    int reps = c->quick ? REPS_QUICK : REPS;
    int rc = -1;
    bench_server srv;
    memset(&srv, 0, sizeof srv);
    bench_hconn h;
    baseline b;
    memset(&b, 0, sizeof b);
    h.fd = -1;
    h.buf = NULL;
    double *lat = malloc(sizeof(double) * REPS), *blat = malloc(sizeof(double) * REPS);
    char fig[128], path[512], dbp[4200], data[4200], log[4300];
    bench_subdir(c, "server", data, sizeof data);
    snprintf(log, sizeof log, "%s.log", data);
    if (!lat || !blat || bench_server_start(&srv, data, log, NULL) != 0)
        goto out;
    if (bench_hconn_open(&h, srv.port) != 0)
        goto out;
    uint64_t t0 = bench_now_ns();
    if (load_model(&h, "m", n) != 0)
        goto out;
    for (int i = 0; i < N_OTHER_MODELS; i++) {
        char name[32];
        snprintf(name, sizeof name, "other-%d", i);
        if (load_model(&h, name, n / 8) != 0)
            goto out;
    }
    fprintf(stderr, "registry: loaded %d versions through the API in %.1f s\n",
            n + N_OTHER_MODELS * (n / 8), (double)(bench_now_ns() - t0) / 1e9);
    bench_subdir(c, "baseline", dbp, sizeof dbp);
    strncat(dbp, "/mlflow.db", sizeof dbp - strlen(dbp) - 1);
    if (baseline_load(&b, dbp, n) != 0)
        goto out;

    /* First page. */
    snprintf(path, sizeof path,
             "/api/2.0/mlflow/model-versions/search?filter=name%%3D%%27m%%27"
             "&order_by=creation_timestamp%%20DESC&max_results=%d",
             PAGE);
    if (time_query(&h, path, PAGE, reps, lat) != 0 ||
        time_baseline(&b, PAGE, 0, PAGE, reps, blat) != 0)
        goto out;
    snprintf(fig, sizeof fig, "versions_search_%d_name_p50_ms", n);
    bench_report(c, fig, bench_percentile(lat, (size_t)reps, 50), "ms",
                 "MLflow registry schema on SQLite, SQL only (same query)",
                 bench_percentile(blat, (size_t)reps, 50), 0);
    snprintf(fig, sizeof fig, "versions_search_%d_name_p99_ms", n);
    bench_report(c, fig, bench_percentile(lat, (size_t)reps, 99), "ms",
                 "MLflow registry schema on SQLite, SQL only (same query)",
                 bench_percentile(blat, (size_t)reps, 99), 0);

    /* A page from the middle (offset token). */
    char tok[96];
    page_token(n / 2, tok, sizeof tok);
    char path2[700];
    snprintf(path2, sizeof path2, "%s&page_token=%s", path, tok);
    if (time_query(&h, path2, PAGE, reps, lat) != 0 ||
        time_baseline(&b, PAGE, n / 2, PAGE, reps, blat) != 0)
        goto out;
    snprintf(fig, sizeof fig, "versions_search_%d_name_page50_p99_ms", n);
    bench_report(c, fig, bench_percentile(lat, (size_t)reps, 99), "ms",
                 "MLflow registry schema on SQLite, SQL only (same query)",
                 bench_percentile(blat, (size_t)reps, 99), 0);

    /* Everything in one response. */
    snprintf(path, sizeof path,
             "/api/2.0/mlflow/model-versions/search?filter=name%%3D%%27m%%27"
             "&order_by=creation_timestamp%%20DESC&max_results=200000");
    if (time_query(&h, path, (size_t)n, REPS_ALL, lat) != 0 ||
        time_baseline(&b, 200000, 0, n, REPS_ALL, blat) != 0)
        goto out;
    snprintf(fig, sizeof fig, "versions_search_%d_all_versions_p50_ms", n);
    bench_report(c, fig, bench_percentile(lat, REPS_ALL, 50), "ms",
                 "MLflow registry schema on SQLite, SQL only (same query)",
                 bench_percentile(blat, REPS_ALL, 50), 0);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "registry: suite failed\n");
    baseline_close(&b);
    bench_hconn_close(&h);
    bench_server_stop(&srv, SIGTERM);
    free(lat);
    free(blat);
    return rc;
}
