/*
 * fuzz_http_request.c — libFuzzer target for everything a request carries
 * past libmicrohttpd: the request target (path and query string, decoded by
 * server/http_url.c exactly as http.c does), routing (routes.c) and the
 * body of every endpoint, handled in-process by the route's real handler
 * against a real server (metric engine + SQLite store) in a temporary data
 * directory made on the first input and removed at exit.
 *
 * Input layout:
 *   line 1   "METHOD TARGET [CONTENT-TYPE]" up to the first '\n'
 *   rest     the body (any bytes)
 * Every "$RUN" and "$EXP" in the input is replaced by the id of a run (and
 * its experiment) created at set-up, so inputs reach past "no such run".
 *
 * Checks: nothing crashes, leaks or reads out of bounds (the target and
 * the body are private copies of exactly their length, the body
 * NUL-terminated as http.h promises); a handler always fills a response;
 * a request never gets 500 (a client mistake is never 5xx; 503 for a
 * resource limit is allowed) nor a status outside 200-599; an error
 * response with a JSON content type is MLflow's error JSON.
 *
 * Streaming routes (artifact uploads) are skipped: their handlers take the
 * body through a sink that only http.c drives.
 *
 * Seeds: tests/fuzz/corpus/fuzz_http_request/ (one or more per route).
 */
#include <cjson/cJSON.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "config.h"
#include "http_url.h"
#include "routes.h"
#include "stats.h"
#include "store.h"
#include "tally/engine.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "check failed: %s\n", #cond);                                     \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

static tally_server srv;
static char dir[512];
static int ready;
static char run_id[64], exp_id[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void teardown(void)
{
    tally_store_close(srv.store);
    tally_engine_close(srv.engine);
    tally_stats_free(srv.stats);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    const char *base = getenv("TALLY_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    char mk[600];
    snprintf(mk, sizeof mk, "mkdir -p '%s'", base);
    CHECK(system(mk) == 0);
    snprintf(dir, sizeof dir, "%s/fuzz-http-XXXXXX", base);
    CHECK(mkdtemp(dir) != NULL);
    char err[512];
    char *argv[] = {NULL};
    CHECK(tally_config_load(&srv.cfg, 0, argv, err, sizeof err) == 0);
    snprintf(srv.cfg.data_dir, sizeof srv.cfg.data_dir, "%s", dir);
    snprintf(srv.cfg.artifact_root, sizeof srv.cfg.artifact_root, "%s/artifacts", dir);
    CHECK(tally_routes_init() == 0);
    srv.stats = tally_stats_new(tally_routes_count());
    CHECK(srv.stats != NULL);
    tally_engine_options eo;
    tally_engine_options_init(&eo);
    eo.durability = TALLY_DURABILITY_ASYNC; /* no fsync per input */
    eo.memory_budget_bytes = 64u << 20;
    eo.wal_file_bytes = 1u << 20;
    eo.checkpoint_wal_bytes = 4u << 20;
    char path[700];
    snprintf(path, sizeof path, "%s/metrics", dir);
    CHECK(tally_engine_open(path, &eo, &srv.engine) == 0);
    snprintf(path, sizeof path, "%s/meta.db", dir);
    CHECK(tally_store_open(path, &srv.store, err, sizeof err) == 0);
    atexit(teardown);
    /* A live run for inputs to name ($RUN, $EXP). */
    tally_route_match match;
    CHECK(tally_route_find(TALLY_POST, "/api/2.0/mlflow/experiments/create", &match));
    tally_req req = {0};
    tally_resp resp = {0};
    resp.fd = -1;
    req.method = TALLY_POST;
    req.path = "/api/2.0/mlflow/experiments/create";
    req.sub_path = match.sub_path;
    req.content_type = "application/json";
    req.body = "{\"name\": \"fuzz\"}";
    req.body_len = strlen(req.body);
    match.route->fn(&srv, &req, &resp);
    CHECK(resp.status == 200);
    cJSON *j = cJSON_ParseWithLength(resp.body.data, resp.body.len);
    CHECK(j && cJSON_IsString(cJSON_GetObjectItem(j, "experiment_id")));
    snprintf(exp_id, sizeof exp_id, "%s", cJSON_GetObjectItem(j, "experiment_id")->valuestring);
    cJSON_Delete(j);
    char body[200];
    snprintf(body, sizeof body, "{\"experiment_id\": \"%s\", \"start_time\": 1}", exp_id);
    CHECK(tally_route_find(TALLY_POST, "/api/2.0/mlflow/runs/create", &match));
    req.path = "/api/2.0/mlflow/runs/create";
    req.sub_path = match.sub_path;
    req.body = body;
    req.body_len = strlen(body);
    tally_buf_reset(&resp.body);
    resp.status = 0;
    match.route->fn(&srv, &req, &resp);
    CHECK(resp.status == 200);
    j = cJSON_ParseWithLength(resp.body.data, resp.body.len);
    const cJSON *id = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "run"), "info"),
                                          "run_id");
    CHECK(cJSON_IsString(id));
    snprintf(run_id, sizeof run_id, "%s", id->valuestring);
    cJSON_Delete(j);
    tally_buf_free(&resp.body);
    ready = 1;
}

/* The input with "$RUN" and "$EXP" replaced (malloc'd, *n its length). */
static uint8_t *substitute(const uint8_t *data, size_t size, size_t *n)
{
    size_t cap = size + 1;
    for (size_t i = 0; i + 4 <= size; i++)
        if (data[i] == '$')
            cap += 64;
    uint8_t *out = malloc(cap);
    CHECK(out);
    size_t o = 0;
    for (size_t i = 0; i < size;) {
        if (i + 4 <= size && memcmp(data + i, "$RUN", 4) == 0) {
            memcpy(out + o, run_id, strlen(run_id));
            o += strlen(run_id);
            i += 4;
        } else if (i + 4 <= size && memcmp(data + i, "$EXP", 4) == 0) {
            memcpy(out + o, exp_id, strlen(exp_id));
            o += strlen(exp_id);
            i += 4;
        } else {
            out[o++] = data[i++];
        }
    }
    *n = o;
    return out;
}

static tally_method method_of(const char *m, size_t n)
{
    static const struct {
        const char *name;
        tally_method m;
    } methods[] = {{"GET", TALLY_GET},       {"POST", TALLY_POST}, {"PUT", TALLY_PUT},
                   {"PATCH", TALLY_PATCH},   {"DELETE", TALLY_DELETE}, {"HEAD", TALLY_HEAD}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strlen(methods[i].name) == n && memcmp(methods[i].name, m, n) == 0)
            return methods[i].m;
    return 0;
}

static int one_input(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    size_t n;
    uint8_t *in = substitute(data, size, &n);
    int rc = one_input(in, n);
    free(in);
    return rc;
}

static int one_input(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t line_len = nl ? (size_t)(nl - data) : size;
    if (line_len > 8192)
        return 0;
    const char *line = (const char *)data;
    const char *sp = memchr(line, ' ', line_len);
    if (!sp)
        return 0;
    tally_method m = method_of(line, (size_t)(sp - line));
    if (!m)
        return 0;
    const char *t0 = sp + 1;
    size_t rest = line_len - (size_t)(t0 - line);
    const char *sp2 = memchr(t0, ' ', rest);
    size_t target_len = sp2 ? (size_t)(sp2 - t0) : rest;
    char ctype[128] = "application/json";
    if (sp2) {
        size_t cl = rest - target_len - 1;
        if (cl >= sizeof ctype)
            return 0;
        memcpy(ctype, sp2 + 1, cl);
        ctype[cl] = 0;
    }
    if (memchr(t0, 0, target_len))
        return 0; /* a request line cannot hold NUL (MHD refuses it) */
    char *target = malloc(target_len + 1);
    CHECK(target);
    memcpy(target, t0, target_len);
    target[target_len] = 0;

    const char *path = NULL;
    tally_query_arg *args = NULL;
    size_t n_args = 0, args_cap = 0;
    tally_route_match match;
    if (tally_url_parse(target, &path, &args, &n_args, &args_cap) != 0 ||
        !tally_route_find(m, path, &match) || match.route->streaming_body) {
        free(args);
        free(target);
        return 0;
    }
    CHECK(match.route->fn != NULL);
    size_t body_len = nl ? size - line_len - 1 : 0;
    char *body = malloc(body_len + 1);
    CHECK(body);
    if (body_len)
        memcpy(body, nl + 1, body_len);
    body[body_len] = 0;

    tally_req req;
    memset(&req, 0, sizeof req);
    req.method = m == TALLY_HEAD && !(match.route->methods & TALLY_HEAD) ? TALLY_GET : m;
    req.path = path;
    req.sub_path = match.sub_path;
    req.is_ajax = match.is_ajax;
    req.args = args;
    req.n_args = n_args;
    req.content_type = ctype;
    req.body = body;
    req.body_len = body_len;
    req.remote_addr = "127.0.0.1:1";
    tally_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.fd = -1;
    match.route->fn(&srv, &req, &resp);

    CHECK(resp.status >= 200 && resp.status <= 599);
    CHECK(resp.status != 500);
    int json = !resp.content_type || strstr(resp.content_type, "json");
    if (resp.status >= 400 && json) {
        cJSON *e = cJSON_ParseWithLength(resp.body.data ? resp.body.data : "", resp.body.len);
        CHECK(e && cJSON_IsString(cJSON_GetObjectItem(e, "error_code")) &&
              cJSON_IsString(cJSON_GetObjectItem(e, "message")));
        cJSON_Delete(e);
    }
    tally_resp_release(&resp);
    free(body);
    free(args);
    free(target);
    return 0;
}
