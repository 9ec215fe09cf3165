/*
 * test_registry.c — the model registry store (server/store_registry.h) on a
 * temporary SQLite file, and the registry handlers in process with a
 * recording registry_event hook (mlflow-webhooks.md §5): which events fire,
 * in which cases none does, and the exact `data` JSON of each.
 *
 * Store cases: numbering never reuses deleted numbers, deleted versions are
 * invisible, rename moves versions/tags/aliases, delete cascades, aliases
 * and the `latest` rule, stages with archive_existing, latest versions per
 * stage, search push-down with filter/order/offset/limit over many rows,
 * prompts hidden, validation, and migrations idempotent on reopen.
 */
#include <pthread.h>
#include <sqlite3.h>

#include "test.h"
#include "app.h"
#include "http.h"
#include "routes.h"
#include "search.h"
#include "store.h"
#include "store_registry.h"

static char dir[4096];
static char dbpath[4200];
static char err[1024];

static tally_store *open_fresh(const char *name)
{
    test_tmpdir(dir, sizeof dir, name);
    snprintf(dbpath, sizeof dbpath, "%s/meta.db", dir);
    tally_store *s = NULL;
    int rc = tally_store_open(dbpath, &s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err);
    ASSERT_EQ(rc, 0);
    return s;
}

static void mkmodel(tally_store *s, tally_arena *a, const char *name, const tally_kv *tags,
                    size_t n)
{
    tally_registered_model m;
    int rc = tally_registry_create_model(s, name, tags, n, NULL, NULL, a, &m, err, sizeof err);
    if (rc)
        fprintf(stderr, "create_model: %s\n", err);
    ASSERT_EQ(rc, 0);
    ASSERT_STR_EQ(m.name, name);
}

static int64_t mkversion(tally_store *s, tally_arena *a, const char *name, const char *source)
{
    tally_version_create vc = {.name = name, .source = source};
    tally_model_version v;
    int rc = tally_registry_create_version(s, &vc, a, &v, err, sizeof err);
    if (rc)
        fprintf(stderr, "create_version: %s\n", err);
    ASSERT_EQ(rc, 0);
    return v.version;
}

static void test_numbering_and_visibility(void)
{
    tally_store *s = open_fresh("reg-num");
    tally_arena *a = tally_arena_new();
    mkmodel(s, a, "m", NULL, 0);
    ASSERT_EQ(mkversion(s, a, "m", "s3://x/1"), 1);
    ASSERT_EQ(mkversion(s, a, "m", "s3://x/2"), 2);
    ASSERT_EQ(mkversion(s, a, "m", "s3://x/3"), 3);
    ASSERT_OK(tally_registry_delete_version(s, "m", 3, err, sizeof err));
    ASSERT_EQ(tally_registry_delete_version(s, "m", 3, err, sizeof err), TALLY_STORE_ENOTFOUND);
    ASSERT_EQ(mkversion(s, a, "m", "s3://x/4"), 4);
    tally_model_version v;
    ASSERT_EQ(tally_registry_get_version(s, "m", 3, a, &v, err, sizeof err),
              TALLY_STORE_ENOTFOUND);
    ASSERT_STR_EQ(err, "Model Version (name=m, version=3) not found");
    ASSERT_OK(tally_registry_get_version(s, "m", 4, a, &v, err, sizeof err));
    ASSERT_STR_EQ(v.source, "s3://x/4");
    ASSERT_EQ(v.stage, TALLY_STAGE_NONE);
    ASSERT_STR_EQ(v.status, "READY");
    /* Unknown model. */
    tally_version_create vc = {.name = "nope", .source = "s3://x"};
    ASSERT_EQ(tally_registry_create_version(s, &vc, a, &v, err, sizeof err),
              TALLY_STORE_ENOTFOUND);
    /* The deleted row is redacted in the database, invisible to reads. */
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(dbpath, &db), SQLITE_OK);
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT current_stage, source FROM model_versions WHERE "
                                 "version = 3",
                                 -1, &st, NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 0), "Deleted_Internal");
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 1), "REDACTED-SOURCE-PATH");
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* Reopen: migrations are idempotent and the data is there. */
    tally_store_close(s);
    ASSERT_OK(tally_store_open(dbpath, &s, err, sizeof err));
    int version = 0;
    ASSERT_OK(tally_store_schema_version(s, &version));
    ASSERT_GE(version, 2);
    ASSERT_EQ(mkversion(s, a, "m", "s3://x/5"), 5);
    tally_arena_free(a);
    tally_store_close(s);
    test_rmdir(dir);
}

static void test_rename_delete_cascade(void)
{
    tally_store *s = open_fresh("reg-rename");
    tally_arena *a = tally_arena_new();
    tally_kv tags[] = {{"k", "1"}, {"k", "2"}, {"j", NULL}};
    mkmodel(s, a, "m", tags, 3);
    mkversion(s, a, "m", "s3://1");
    mkversion(s, a, "m", "s3://2");
    ASSERT_OK(tally_registry_set_version_tag(s, "m", 1, "vt", "x", NULL, err, sizeof err));
    ASSERT_OK(tally_registry_set_alias(s, "m", "champ", 2, NULL, err, sizeof err));
    mkmodel(s, a, "other", NULL, 0);
    tally_registered_model m;
    ASSERT_EQ(tally_registry_rename_model(s, "m", "other", a, &m, err, sizeof err),
              TALLY_STORE_EEXISTS);
    ASSERT_EQ(tally_registry_rename_model(s, "zz", "yy", a, &m, err, sizeof err),
              TALLY_STORE_ENOTFOUND);
    ASSERT_OK(tally_registry_rename_model(s, "m", "n", a, &m, err, sizeof err));
    ASSERT_STR_EQ(m.name, "n");
    ASSERT_EQ(m.n_tags, 2);
    ASSERT_STR_EQ(m.tags[0].key, "j");
    ASSERT_STR_EQ(m.tags[0].value, "");
    ASSERT_STR_EQ(m.tags[1].value, "2"); /* duplicate keys: last wins */
    ASSERT_EQ(m.n_aliases, 1);
    ASSERT_STR_EQ(m.aliases[0].alias, "champ");
    ASSERT_EQ(m.aliases[0].version, 2);
    tally_model_version v;
    ASSERT_OK(tally_registry_get_version(s, "n", 1, a, &v, err, sizeof err));
    ASSERT_STR_EQ(v.name, "n");
    ASSERT_EQ(v.n_tags, 1);
    ASSERT_OK(tally_registry_get_alias(s, "n", "champ", a, &v, err, sizeof err));
    ASSERT_EQ(v.version, 2);
    ASSERT_EQ(v.n_aliases, 1);
    ASSERT_EQ(tally_registry_get_model(s, "m", a, &m, err, sizeof err), TALLY_STORE_ENOTFOUND);
    /* Hard delete: everything goes, a new model of that name starts at 1. */
    ASSERT_OK(tally_registry_delete_model(s, "n", err, sizeof err));
    ASSERT_EQ(tally_registry_delete_model(s, "n", err, sizeof err), TALLY_STORE_ENOTFOUND);
    mkmodel(s, a, "n", NULL, 0);
    ASSERT_OK(tally_registry_get_model(s, "n", a, &m, err, sizeof err));
    ASSERT_EQ(m.n_tags + m.n_aliases + m.n_latest, 0);
    ASSERT_EQ(mkversion(s, a, "n", "s3://new"), 1);
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(dbpath, &db), SQLITE_OK);
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT (SELECT count(*) FROM model_version_tags) + (SELECT "
                                 "count(*) FROM registered_model_aliases)",
                                 -1, &st, NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_EQ(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    tally_arena_free(a);
    tally_store_close(s);
    test_rmdir(dir);
}

static void test_aliases_and_stages(void)
{
    tally_store *s = open_fresh("reg-alias");
    tally_arena *a = tally_arena_new();
    mkmodel(s, a, "m", NULL, 0);
    tally_model_version v;
    ASSERT_EQ(tally_registry_get_alias(s, "m", "latest", a, &v, err, sizeof err),
              TALLY_STORE_ENOTFOUND);
    for (int i = 0; i < 4; i++)
        mkversion(s, a, "m", "s3://v");
    ASSERT_EQ(tally_registry_set_alias(s, "m", "latest", 1, NULL, err, sizeof err),
              TALLY_STORE_EINVAL);
    ASSERT_EQ(tally_registry_set_alias(s, "m", "V12", 1, NULL, err, sizeof err),
              TALLY_STORE_EINVAL);
    ASSERT_EQ(tally_registry_set_alias(s, "m", "a b", 1, NULL, err, sizeof err),
              TALLY_STORE_EINVAL);
    ASSERT_EQ(tally_registry_set_alias(s, "m", "a", 9, NULL, err, sizeof err),
              TALLY_STORE_ENOTFOUND);
    ASSERT_OK(tally_registry_set_alias(s, "m", "a", 4, NULL, err, sizeof err));
    ASSERT_EQ(tally_registry_get_alias(s, "m", "b", a, &v, err, sizeof err), TALLY_STORE_EINVAL);
    ASSERT_OK(tally_registry_delete_version(s, "m", 4, err, sizeof err));
    ASSERT_EQ(tally_registry_get_alias(s, "m", "a", a, &v, err, sizeof err), TALLY_STORE_EINVAL);
    ASSERT_OK(tally_registry_get_alias(s, "m", "LaTeSt", a, &v, err, sizeof err));
    ASSERT_EQ(v.version, 3);
    ASSERT_OK(tally_registry_delete_alias(s, "m", "never", NULL, err, sizeof err));
    /* Stages. */
    ASSERT_OK(tally_registry_transition_stage(s, "m", 1, TALLY_STAGE_PRODUCTION, 0, a, &v, err,
                                              sizeof err));
    ASSERT_OK(tally_registry_transition_stage(s, "m", 2, TALLY_STAGE_PRODUCTION, 0, a, &v, err,
                                              sizeof err));
    ASSERT_EQ(tally_registry_transition_stage(s, "m", 3, TALLY_STAGE_ARCHIVED, 1, a, &v, err,
                                              sizeof err),
              TALLY_STORE_EINVAL);
    ASSERT_OK(tally_registry_transition_stage(s, "m", 3, TALLY_STAGE_PRODUCTION, 1, a, &v, err,
                                              sizeof err));
    ASSERT_EQ(v.stage, TALLY_STAGE_PRODUCTION);
    ASSERT_OK(tally_registry_get_version(s, "m", 1, a, &v, err, sizeof err));
    ASSERT_EQ(v.stage, TALLY_STAGE_ARCHIVED);
    ASSERT_OK(tally_registry_get_version(s, "m", 2, a, &v, err, sizeof err));
    ASSERT_EQ(v.stage, TALLY_STAGE_ARCHIVED);
    tally_model_version *lv;
    size_t n;
    ASSERT_OK(tally_registry_latest_versions(s, "m", 0, a, &lv, &n, err, sizeof err));
    ASSERT_EQ(n, 2);
    ASSERT_EQ(lv[0].stage, TALLY_STAGE_PRODUCTION);
    ASSERT_EQ(lv[0].version, 3);
    ASSERT_EQ(lv[1].stage, TALLY_STAGE_ARCHIVED);
    ASSERT_EQ(lv[1].version, 2);
    ASSERT_OK(tally_registry_latest_versions(s, "m", 1u << TALLY_STAGE_NONE, a, &lv, &n, err,
                                             sizeof err));
    ASSERT_EQ(n, 0);
    tally_stage st;
    ASSERT_OK(tally_stage_parse("sTaGiNg", &st));
    ASSERT_EQ(st, TALLY_STAGE_STAGING);
    ASSERT_EQ(tally_stage_parse("Deleted_Internal", &st), -1);
    tally_arena_free(a);
    tally_store_close(s);
    test_rmdir(dir);
}

static void test_validation(void)
{
    int64_t v;
    ASSERT_EQ(tally_registry_parse_version("12", &v, err, sizeof err), 0);
    ASSERT_EQ(v, 12);
    ASSERT_EQ(tally_registry_parse_version("1.0", &v, err, sizeof err), TALLY_STORE_EINVAL);
    ASSERT_EQ(tally_registry_parse_version("", &v, err, sizeof err), TALLY_STORE_EINVAL);
    ASSERT_EQ(tally_registry_parse_version("99999999999999999999", &v, err, sizeof err),
              TALLY_STORE_EINVAL);
    ASSERT_EQ(tally_registry_check_alias("ok-_1", 1, err, sizeof err), 0);
    ASSERT_EQ(tally_registry_check_alias("v1", 0, err, sizeof err), 0);
    ASSERT_EQ(tally_registry_check_alias("v1", 1, err, sizeof err), TALLY_STORE_EINVAL);
    ASSERT_EQ(tally_registry_check_alias("", 0, err, sizeof err), TALLY_STORE_EINVAL);
    ASSERT_EQ(tally_registry_check_name("", err, sizeof err), TALLY_STORE_EINVAL);
    ASSERT_EQ(tally_registry_check_tag("k", "v", err, sizeof err), 0);
    ASSERT_EQ(tally_registry_check_tag("a//b", "v", err, sizeof err), TALLY_STORE_EINVAL);
}

/* Search over many rows: push-down agrees with a brute-force expectation. */
static void test_search(void)
{
    tally_store *s = open_fresh("reg-search");
    tally_arena *a = tally_arena_new();
    char name[32], src[64];
    for (int m = 0; m < 5; m++) {
        snprintf(name, sizeof name, "model-%d", m);
        tally_kv t = {"team", m % 2 ? "odd" : "even"};
        mkmodel(s, a, name, &t, 1);
        for (int k = 0; k < 40; k++) {
            snprintf(src, sizeof src, "s3://b/%d/%d", m, k);
            tally_kv vt = {"k", k % 3 ? "x" : "y"};
            tally_version_create vc = {.name = name, .source = src, .run_id = "r",
                                       .tags = &vt, .n_tags = 1};
            tally_model_version v;
            ASSERT_OK(tally_registry_create_version(s, &vc, a, &v, err, sizeof err));
        }
    }
    tally_kv pt = {TALLY_REGISTRY_PROMPT_TAG, "TRUE"};
    mkmodel(s, a, "prompt", &pt, 1);
    mkversion(s, a, "prompt", "s3://p");
    tally_search_filter *f = NULL;
    tally_search_order *o = NULL;
    tally_search_error se;
    const char *q = "name = 'model-3' AND version_number > 10 AND tags.k = 'y'";
    ASSERT_OK(tally_search_filter_parse(TALLY_SEARCH_VERSIONS, q, strlen(q), &f, &se));
    const char *ob[] = {"version_number DESC"};
    ASSERT_OK(tally_search_order_parse(TALLY_SEARCH_VERSIONS, ob, 1, &o, &se));
    tally_model_version *rows;
    size_t n;
    int more;
    /* versions 11..40 with (k-1) % 3 == 0, i.e. k in {13,16,...,40}: 10 rows. */
    ASSERT_OK(tally_registry_search_versions(s, f, o, NULL, 0, 4, a, &rows, &n, &more, err, sizeof err));
    ASSERT_EQ(n, 4);
    ASSERT_EQ(more, 1);
    ASSERT_EQ(rows[0].version, 40);
    ASSERT_EQ(rows[3].version, 31);
    ASSERT_STR_EQ(rows[0].tags[0].value, "y");
    ASSERT_OK(tally_registry_search_versions(s, f, o, NULL, 8, 4, a, &rows, &n, &more, err, sizeof err));
    ASSERT_EQ(n, 2);
    ASSERT_EQ(more, 0);
    ASSERT_EQ(rows[1].version, 13);
    tally_search_filter_free(f);
    tally_search_order_free(o);
    /* No filter: every non-prompt version, default order. */
    ASSERT_OK(tally_search_order_parse(TALLY_SEARCH_VERSIONS, NULL, 0, &o, &se));
    ASSERT_OK(tally_registry_search_versions(s, NULL, o, NULL, 0, 1000, a, &rows, &n, &more, err,
                                             sizeof err));
    ASSERT_EQ(n, 200);
    for (size_t i = 1; i < n; i++)
        ASSERT_GE(rows[i - 1].last_updated_time_ms, rows[i].last_updated_time_ms);
    tally_search_order_free(o);
    /* Models: prompt hidden unless the filter names its tag. */
    ASSERT_OK(tally_search_order_parse(TALLY_SEARCH_MODELS, NULL, 0, &o, &se));
    tally_registered_model *ms;
    ASSERT_OK(tally_registry_search_models(s, NULL, o, NULL, 0, 100, a, &ms, &n, &more, err,
                                           sizeof err));
    ASSERT_EQ(n, 5);
    ASSERT_STR_EQ(ms[0].name, "model-0");
    ASSERT_EQ(ms[0].n_latest, 1);
    ASSERT_EQ(ms[0].latest[0].version, 40);
    q = "tags.`mlflow.prompt.is_prompt` ILIKE 'true'";
    ASSERT_OK(tally_search_filter_parse(TALLY_SEARCH_MODELS, q, strlen(q), &f, &se));
    ASSERT_OK(tally_registry_search_models(s, f, o, NULL, 0, 100, a, &ms, &n, &more, err, sizeof err));
    ASSERT_EQ(n, 1);
    ASSERT_STR_EQ(ms[0].name, "prompt");
    tally_search_filter_free(f);
    q = "tags.team = 'odd'";
    ASSERT_OK(tally_search_filter_parse(TALLY_SEARCH_MODELS, q, strlen(q), &f, &se));
    ASSERT_OK(tally_registry_search_models(s, f, o, NULL, 1, 100, a, &ms, &n, &more, err, sizeof err));
    ASSERT_EQ(n, 1);
    ASSERT_STR_EQ(ms[0].name, "model-3");
    /* A filter of the wrong mode is refused. */
    ASSERT_EQ(tally_registry_search_versions(s, f, o, NULL, 0, 10, a, &rows, &n, &more, err,
                                             sizeof err),
              TALLY_STORE_EINVAL);
    tally_search_filter_free(f);
    tally_search_order_free(o);
    tally_arena_free(a);
    tally_store_close(s);
    test_rmdir(dir);
}

/* ------------------------------------------------------------------------ */
/* Handlers in process with a recording event hook                           */
/* ------------------------------------------------------------------------ */

typedef struct recorder {
    int n;
    char events[32][64];     /* "entity.action" */
    char data[32][1024];
    int fail;                /* the hook fails (a store that cannot queue) */
    int committed;           /* registry_events_committed calls */
} recorder;

static int record(void *ctx, const char *entity, const char *action, const char *data_json,
                  char *msg, size_t cap)
{
    recorder *r = ctx;
    if (r->fail) {
        snprintf(msg, cap, "queue unavailable");
        return -1;
    }
    ASSERT_LT(r->n, 32);
    snprintf(r->events[r->n], sizeof r->events[0], "%s.%s", entity, action);
    snprintf(r->data[r->n], sizeof r->data[0], "%s", data_json);
    r->n++;
    return 0;
}

static void count_commit(void *ctx)
{
    ((recorder *)ctx)->committed++;
}

/* Calls the route for method + /api/2.0/mlflow/<rel> with a JSON body;
 * returns the status. */
static int call(tally_server *srv, tally_method m, const char *rel, const char *body)
{
    char path[256];
    snprintf(path, sizeof path, "/api/2.0/mlflow/%s", rel);
    tally_route_match rm;
    ASSERT_EQ(tally_route_find(m, path, &rm), 1);
    tally_req req;
    memset(&req, 0, sizeof req);
    req.method = m;
    req.path = path;
    req.sub_path = rm.sub_path;
    req.content_type = "application/json";
    req.body = body;
    req.body_len = strlen(body);
    tally_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.fd = -1;
    rm.route->fn(srv, &req, &resp);
    int status = resp.status;
    if (status != 200)
        fprintf(stderr, "%s -> %d %.*s\n", rel, status, (int)resp.body.len,
                resp.body.data ? resp.body.data : "");
    tally_buf_free(&resp.body);
    return status;
}

static void expect(const recorder *r, int i, const char *event, const char *data)
{
    ASSERT_LT(i, r->n);
    ASSERT_STR_EQ(r->events[i], event);
    ASSERT_STR_EQ(r->data[i], data);
}

static void test_events(void)
{
    tally_store *s = open_fresh("reg-events");
    ASSERT_OK(tally_routes_init());
    tally_server srv;
    memset(&srv, 0, sizeof srv);
    srv.store = s;
    recorder r;
    memset(&r, 0, sizeof r);
    srv.registry_event = record;
    srv.registry_events_committed = count_commit;
    srv.registry_event_ctx = &r;

    /* registered_model.created: all request tags (dict order), description "" when absent. */
    ASSERT_EQ(call(&srv, TALLY_POST, "registered-models/create",
                   "{\"name\":\"m\",\"tags\":[{\"key\":\"a\",\"value\":\"1\"},"
                   "{\"key\":\"b\",\"value\":\"2\"},{\"key\":\"a\",\"value\":\"3\"}]}"),
              200);
    expect(&r, 0, "registered_model.created",
           "{\"name\":\"m\",\"tags\":{\"a\":\"3\",\"b\":\"2\"},\"description\":\"\"}");
    /* A failed request fires nothing. */
    ASSERT_EQ(call(&srv, TALLY_POST, "registered-models/create", "{\"name\":\"m\"}"), 400);
    ASSERT_EQ(r.n, 1);
    /* model_version.created: run_id/description null when empty. */
    ASSERT_EQ(call(&srv, TALLY_POST, "model-versions/create",
                   "{\"name\":\"m\",\"source\":\"s3://b/m\",\"tags\":[{\"key\":\"t\","
                   "\"value\":\"v\"}]}"),
              200);
    expect(&r, 1, "model_version.created",
           "{\"name\":\"m\",\"version\":\"1\",\"source\":\"s3://b/m\",\"run_id\":null,"
           "\"tags\":{\"t\":\"v\"},\"description\":null}");
    ASSERT_EQ(call(&srv, TALLY_POST, "model-versions/create",
                   "{\"name\":\"m\",\"source\":\"s3://b/n\",\"run_id\":\"r1\","
                   "\"description\":\"d\"}"),
              200);
    expect(&r, 2, "model_version.created",
           "{\"name\":\"m\",\"version\":\"2\",\"source\":\"s3://b/n\",\"run_id\":\"r1\","
           "\"tags\":{},\"description\":\"d\"}");
    /* Version tags and aliases. */
    ASSERT_EQ(call(&srv, TALLY_POST, "model-versions/set-tag",
                   "{\"name\":\"m\",\"version\":\"1\",\"key\":\"k\",\"value\":\"v\"}"),
              200);
    expect(&r, 3, "model_version_tag.set",
           "{\"name\":\"m\",\"version\":\"1\",\"key\":\"k\",\"value\":\"v\"}");
    ASSERT_EQ(call(&srv, TALLY_DELETE, "model-versions/delete-tag",
                   "{\"name\":\"m\",\"version\":\"1\",\"key\":\"k\"}"),
              200);
    expect(&r, 4, "model_version_tag.deleted", "{\"name\":\"m\",\"version\":\"1\",\"key\":\"k\"}");
    ASSERT_EQ(call(&srv, TALLY_POST, "registered-models/alias",
                   "{\"name\":\"m\",\"alias\":\"prod\",\"version\":\"2\"}"),
              200);
    expect(&r, 5, "model_version_alias.created",
           "{\"name\":\"m\",\"alias\":\"prod\",\"version\":\"2\"}");
    ASSERT_EQ(call(&srv, TALLY_DELETE, "registered-models/alias",
                   "{\"name\":\"m\",\"alias\":\"prod\"}"),
              200);
    expect(&r, 6, "model_version_alias.deleted", "{\"name\":\"m\",\"alias\":\"prod\"}");
    /* Nothing fires for plain-model tags, updates, renames, stages, deletions. */
    int before = r.n;
    ASSERT_EQ(call(&srv, TALLY_POST, "registered-models/set-tag",
                   "{\"name\":\"m\",\"key\":\"k\",\"value\":\"v\"}"),
              200);
    ASSERT_EQ(call(&srv, TALLY_DELETE, "registered-models/delete-tag",
                   "{\"name\":\"m\",\"key\":\"k\"}"),
              200);
    ASSERT_EQ(call(&srv, TALLY_PATCH, "registered-models/update",
                   "{\"name\":\"m\",\"description\":\"x\"}"),
              200);
    ASSERT_EQ(call(&srv, TALLY_PATCH, "model-versions/update",
                   "{\"name\":\"m\",\"version\":\"1\",\"description\":\"x\"}"),
              200);
    ASSERT_EQ(call(&srv, TALLY_POST, "model-versions/transition-stage",
                   "{\"name\":\"m\",\"version\":\"1\",\"stage\":\"Staging\"}"),
              200);
    ASSERT_EQ(call(&srv, TALLY_POST, "registered-models/rename",
                   "{\"name\":\"m\",\"new_name\":\"m2\"}"),
              200);
    ASSERT_EQ(call(&srv, TALLY_DELETE, "model-versions/delete",
                   "{\"name\":\"m2\",\"version\":\"1\"}"),
              200);
    ASSERT_EQ(call(&srv, TALLY_DELETE, "registered-models/delete", "{\"name\":\"m2\"}"), 200);
    ASSERT_EQ(r.n, before);

    /* Prompts. */
    ASSERT_EQ(call(&srv, TALLY_POST, "registered-models/create",
                   "{\"name\":\"p\",\"tags\":[{\"key\":\"mlflow.prompt.is_prompt\",\"value\":"
                   "\"true\"},{\"key\":\"_mlflow_prompt_type\",\"value\":\"text\"},{\"key\":"
                   "\"owner\",\"value\":\"ann\"}],\"description\":\"pd\"}"),
              200);
    expect(&r, before, "prompt.created",
           "{\"name\":\"p\",\"tags\":{\"owner\":\"ann\"},\"description\":\"pd\"}");
    ASSERT_EQ(call(&srv, TALLY_POST, "model-versions/create",
                   "{\"name\":\"p\",\"source\":\"s3://p\",\"tags\":[{\"key\":"
                   "\"mlflow.prompt.is_prompt\",\"value\":\"true\"},{\"key\":"
                   "\"mlflow.prompt.text\",\"value\":\"Hi {{x}}\"},{\"key\":\"z\",\"value\":"
                   "\"1\"}]}"),
              200);
    expect(&r, before + 1, "prompt_version.created",
           "{\"name\":\"p\",\"version\":\"1\",\"template\":\"Hi {{x}}\",\"tags\":{\"z\":\"1\"},"
           "\"description\":null}");
    ASSERT_EQ(call(&srv, TALLY_POST, "registered-models/set-tag",
                   "{\"name\":\"p\",\"key\":\"k\",\"value\":\"v\"}"),
              200);
    expect(&r, before + 2, "prompt_tag.set", "{\"name\":\"p\",\"key\":\"k\",\"value\":\"v\"}");
    ASSERT_EQ(call(&srv, TALLY_DELETE, "registered-models/delete-tag",
                   "{\"name\":\"p\",\"key\":\"k\"}"),
              200);
    expect(&r, before + 3, "prompt_tag.deleted", "{\"name\":\"p\",\"key\":\"k\"}");
    ASSERT_EQ(call(&srv, TALLY_POST, "model-versions/set-tag",
                   "{\"name\":\"p\",\"version\":1,\"key\":\"k\",\"value\":\"v\"}"),
              200);
    expect(&r, before + 4, "prompt_version_tag.set",
           "{\"name\":\"p\",\"version\":\"1\",\"key\":\"k\",\"value\":\"v\"}");
    ASSERT_EQ(call(&srv, TALLY_DELETE, "model-versions/delete-tag",
                   "{\"name\":\"p\",\"version\":\"1\",\"key\":\"k\"}"),
              200);
    expect(&r, before + 5, "prompt_version_tag.deleted",
           "{\"name\":\"p\",\"version\":\"1\",\"key\":\"k\"}");
    ASSERT_EQ(call(&srv, TALLY_POST, "registered-models/alias",
                   "{\"name\":\"p\",\"alias\":\"a\",\"version\":\"1\"}"),
              200);
    expect(&r, before + 6, "prompt_alias.created",
           "{\"name\":\"p\",\"alias\":\"a\",\"version\":\"1\"}");
    ASSERT_EQ(call(&srv, TALLY_DELETE, "registered-models/alias", "{\"name\":\"p\",\"alias\":\"a\"}"),
              200);
    expect(&r, before + 7, "prompt_alias.deleted", "{\"name\":\"p\",\"alias\":\"a\"}");
    /* A prompt version without a template tag: template null. */
    ASSERT_EQ(call(&srv, TALLY_POST, "model-versions/create",
                   "{\"name\":\"p\",\"source\":\"s3://p\",\"description\":\"v2\",\"tags\":[{"
                   "\"key\":\"mlflow.prompt.is_prompt\",\"value\":\"true\"}]}"),
              200);
    expect(&r, before + 8, "prompt_version.created",
           "{\"name\":\"p\",\"version\":\"2\",\"template\":null,\"tags\":{},"
           "\"description\":\"v2\"}");
    ASSERT_EQ(r.n, before + 9);

    /* A change commits with its event or not at all: when the event cannot
     * be queued the request fails with 503 and nothing of it is stored, and
     * the dispatcher is woken only after a commit. */
    int commits = r.committed;
    ASSERT(commits >= r.n);
    r.fail = 1;
    ASSERT_EQ(call(&srv, TALLY_POST, "registered-models/create", "{\"name\":\"lost\"}"), 503);
    ASSERT_EQ(call(&srv, TALLY_POST, "model-versions/create",
                   "{\"name\":\"p\",\"source\":\"s3://p\",\"tags\":[{\"key\":"
                   "\"mlflow.prompt.is_prompt\",\"value\":\"true\"}]}"),
              503);
    ASSERT_EQ(call(&srv, TALLY_POST, "registered-models/alias",
                   "{\"name\":\"p\",\"alias\":\"b\",\"version\":\"1\"}"),
              503);
    ASSERT_EQ(call(&srv, TALLY_POST, "model-versions/set-tag",
                   "{\"name\":\"p\",\"version\":\"1\",\"key\":\"gone\",\"value\":\"v\"}"),
              503);
    r.fail = 0;
    ASSERT_EQ(r.n, before + 9);
    ASSERT_EQ(r.committed, commits);
    {
        tally_arena *ea = tally_arena_new();
        char e[512];
        tally_registered_model m;
        tally_model_version v;
        ASSERT_EQ(tally_registry_get_model(s, "lost", ea, &m, e, sizeof e), TALLY_STORE_ENOTFOUND);
        ASSERT_EQ(tally_registry_get_version(s, "p", 3, ea, &v, e, sizeof e),
                  TALLY_STORE_ENOTFOUND);
        /* EINVAL: what the store answers for any unknown alias (MLflow's 400). */
        ASSERT_EQ(tally_registry_get_alias(s, "p", "b", ea, &v, e, sizeof e), TALLY_STORE_EINVAL);
        ASSERT_OK(tally_registry_get_version(s, "p", 1, ea, &v, e, sizeof e));
        for (size_t i = 0; i < v.n_tags; i++)
            ASSERT(strcmp(v.tags[i].key, "gone") != 0);
        tally_arena_free(ea);
    }
    /* The same requests go through once events can be queued again. */
    ASSERT_EQ(call(&srv, TALLY_POST, "registered-models/create", "{\"name\":\"lost\"}"), 200);
    ASSERT_EQ(call(&srv, TALLY_POST, "model-versions/create",
                   "{\"name\":\"p\",\"source\":\"s3://p\",\"tags\":[{\"key\":"
                   "\"mlflow.prompt.is_prompt\",\"value\":\"true\"}]}"),
              200);
    expect(&r, before + 10, "prompt_version.created",
           "{\"name\":\"p\",\"version\":\"3\",\"template\":null,\"tags\":{},"
           "\"description\":null}");
    ASSERT_EQ(r.committed, commits + 2);
    ASSERT_EQ(call(&srv, TALLY_POST, "registered-models/set-tag",
                   "{\"name\":\"lost\",\"key\":\"k\",\"value\":\"v\"}"),
              200); /* a plain model's tag: no event, still one commit */
    ASSERT_EQ(r.n, before + 11);
    ASSERT_EQ(r.committed, commits + 3);

    /* No hook: the same calls work and nothing is recorded. */
    srv.registry_event = NULL;
    ASSERT_EQ(call(&srv, TALLY_POST, "registered-models/create", "{\"name\":\"quiet\"}"), 200);
    ASSERT_EQ(r.n, before + 11);
    tally_store_close(s);
    test_rmdir(dir);
}

/* Writers racing on one model: every version number handed out once,
 * 1..N with no gap, while readers search. */
#define RACE_THREADS 4
#define RACE_EACH 60

static tally_store *race_store;

static void *race_writer(void *arg)
{
    (void)arg;
    tally_arena *a = tally_arena_new();
    int64_t *got = calloc(RACE_EACH, sizeof *got);
    char e[512];
    for (int i = 0; i < RACE_EACH; i++) {
        tally_version_create vc = {.name = "race", .source = "s3://r"};
        tally_model_version v;
        ASSERT_OK(tally_registry_create_version(race_store, &vc, a, &v, e, sizeof e));
        got[i] = v.version;
    }
    tally_arena_free(a);
    return got;
}

static void *race_reader(void *arg)
{
    (void)arg;
    tally_search_order *o;
    tally_search_error se;
    ASSERT_OK(tally_search_order_parse(TALLY_SEARCH_VERSIONS, NULL, 0, &o, &se));
    char e[512];
    for (int i = 0; i < 50; i++) {
        tally_arena *a = tally_arena_new();
        tally_model_version *rows;
        size_t n;
        int more;
        ASSERT_OK(tally_registry_search_versions(race_store, NULL, o, NULL, 0, 1000, a, &rows, &n,
                                                 &more, e, sizeof e));
        for (size_t k = 1; k < n; k++)
            ASSERT_NE(rows[k - 1].version, rows[k].version);
        tally_arena_free(a);
    }
    tally_search_order_free(o);
    return NULL;
}

static void test_concurrent_numbering(void)
{
    race_store = open_fresh("reg-race");
    tally_arena *a = tally_arena_new();
    mkmodel(race_store, a, "race", NULL, 0);
    pthread_t w[RACE_THREADS], r;
    for (int i = 0; i < RACE_THREADS; i++)
        ASSERT_EQ(pthread_create(&w[i], NULL, race_writer, NULL), 0);
    ASSERT_EQ(pthread_create(&r, NULL, race_reader, NULL), 0);
    char seen[RACE_THREADS * RACE_EACH + 1] = {0};
    for (int i = 0; i < RACE_THREADS; i++) {
        int64_t *got;
        ASSERT_EQ(pthread_join(w[i], (void **)&got), 0);
        for (int k = 0; k < RACE_EACH; k++) {
            ASSERT_GE(got[k], 1);
            ASSERT_LE(got[k], RACE_THREADS * RACE_EACH);
            ASSERT_EQ(seen[got[k]], 0);
            seen[got[k]] = 1;
            if (k)
                ASSERT_GT(got[k], got[k - 1]); /* one writer sees its numbers grow */
        }
        free(got);
    }
    ASSERT_EQ(pthread_join(r, NULL), 0);
    tally_arena_free(a);
    tally_store_close(race_store);
    test_rmdir(dir);
}

int main(void)
{
    TEST_RUN(test_validation);
    TEST_RUN(test_numbering_and_visibility);
    TEST_RUN(test_rename_delete_cascade);
    TEST_RUN(test_aliases_and_stages);
    TEST_RUN(test_search);
    TEST_RUN(test_events);
    TEST_RUN(test_concurrent_numbering);
    return TEST_DONE();
}
