/*
 * api_experiments.c — MLflow's experiment endpoints (mlflow-rest-api.md
 * §3.1, §4.7, §5.3) and the npm client's aliases (§7):
 *
 *   POST      mlflow/experiments/create
 *   GET       mlflow/experiments/get
 *   GET       mlflow/experiments/get-by-name
 *   POST, GET mlflow/experiments/search
 *   POST      mlflow/experiments/update
 *   POST      mlflow/experiments/delete
 *   POST      mlflow/experiments/restore
 *   POST      mlflow/experiments/set-experiment-tag
 *   POST      mlflow/experiments/delete-experiment-tag
 *   GET       mlflow/experiments/list                (npm alias: all, no paging)
 *   POST      mlflow/experimentsset-experiment-tag   (npm alias: the package's typo)
 *
 * Experiments are few (hundreds, rarely thousands), so search reads them all
 * from the store and filters, sorts and pages in C with search.h; runs are
 * where the volume is (api_runs.c pushes filters into SQL).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_error.h"
#include "api_tracking.h"
#include "app.h"
#include "json_out.h"
#include "params.h"
#include "authz.h"
#include "search.h"
#include "store.h"

#define EXP_SEARCH_DEFAULT 1000
#define EXP_SEARCH_MAX 50000






/* experiment_id (required) as an integer. */
static int require_experiment_id(tally_params *p, int64_t *id, tally_resp *resp)
{
    const char *s;
    if (tally_api_require(p, "experiment_id", &s, resp) < 0)
        return -1;
    return tally_api_parse_experiment_id(s, id, resp);
}

/* ------------------------------------------------------------------------ */

static void handle_create(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *name, *loc = NULL;
    tally_kv *tags;
    size_t n_tags;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_params_string(&p, "artifact_location", &loc, resp) < 0 ||
        tally_api_read_kvs(&p, "tags", a, &tags, &n_tags, resp) < 0)
        goto out;
    int64_t id;
    int rc = tally_store_create_experiment(srv->store, name, loc, tags, n_tags, &id, err,
                                           sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_buf_reset(&resp->body);
    tally_buf_printf(&resp->body, "{\"experiment_id\":\"%lld\"}", (long long)id);
    tally_api_ok_json(resp);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void respond_experiment(tally_resp *resp, const tally_experiment *e)
{
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, "experiment");
    tally_api_write_experiment(&j, e);
    tally_api_json_end(&j, resp);
}

static void handle_get(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    int64_t id;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (require_experiment_id(&p, &id, resp) < 0)
        goto out;
    tally_experiment e;
    int rc = tally_store_get_experiment(srv->store, id, a, &e, err, sizeof err);
    if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        respond_experiment(resp, &e);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_get_by_name(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *name;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "experiment_name", &name, resp) < 0)
        goto out;
    tally_experiment e;
    int rc = tally_store_get_experiment_by_name(srv->store, name, a, &e, err, sizeof err);
    if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        respond_experiment(resp, &e);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_update(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    int64_t id;
    const char *new_name;
    char err[1024] = "";
    if (require_experiment_id(&p, &id, resp) < 0 ||
        tally_api_require(&p, "new_name", &new_name, resp) < 0)
        goto out;
    int rc = tally_store_rename_experiment(srv->store, id, new_name, err, sizeof err);
    if (rc == TALLY_STORE_ESTATE)
        /* MLflow: INVALID_STATE sent as 500; a client mistake is a 400 here. */
        tally_resp_error_status(resp, 400, TALLY_API_INVALID_STATE, "%s", err);
    else if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        tally_api_ok_empty(resp);
out:
    tally_params_close(&p);
}

/* delete and restore: experiment_id in, {} out. */
static void experiment_lifecycle(tally_server *srv, const tally_req *req, tally_resp *resp,
                                 int (*change)(tally_store *, int64_t, char *, size_t))
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    int64_t id;
    char err[1024] = "";
    if (require_experiment_id(&p, &id, resp) >= 0)
        tally_api_store_done(resp, change(srv->store, id, err, sizeof err), err);
    tally_params_close(&p);
}

static void handle_delete(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    experiment_lifecycle(srv, req, resp, tally_store_delete_experiment);
}

static void handle_restore(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    experiment_lifecycle(srv, req, resp, tally_store_restore_experiment);
}

static void handle_set_tag(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    int64_t id;
    const char *key, *value = NULL;
    char err[1024] = "";
    if (require_experiment_id(&p, &id, resp) < 0 ||
        tally_api_require(&p, "key", &key, resp) < 0 ||
        tally_params_string(&p, "value", &value, resp) < 0)
        goto out;
    int rc = tally_store_set_experiment_tag(srv->store, id, key, value ? value : "", err,
                                            sizeof err);
    tally_api_store_done(resp, rc, err);
out:
    tally_params_close(&p);
}

static void handle_delete_tag(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    int64_t id;
    const char *key;
    char err[1024] = "";
    if (require_experiment_id(&p, &id, resp) < 0 ||
        tally_api_require(&p, "key", &key, resp) < 0)
        goto out;
    int rc = tally_store_delete_experiment_tag(srv->store, id, key, err, sizeof err);
    tally_api_store_done(resp, rc, err);
out:
    tally_params_close(&p);
}

/* ------------------------------------------------------------------------ */
/* Search                                                                    */
/* ------------------------------------------------------------------------ */

static int exp_attr_str(void *ctx, tally_search_attr attr, const char **out)
{
    const tally_experiment *e = ctx;
    if (attr == TALLY_SEARCH_A_NAME) {
        *out = e->name;
        return 1;
    }
    return 0;
}

static int exp_attr_num(void *ctx, tally_search_attr attr, double *out)
{
    const tally_experiment *e = ctx;
    if (attr == TALLY_SEARCH_A_EXPERIMENT_ID)
        *out = (double)e->experiment_id;
    else if (attr == TALLY_SEARCH_A_CREATION_TIME)
        *out = (double)e->creation_time_ms;
    else if (attr == TALLY_SEARCH_A_LAST_UPDATE_TIME)
        *out = (double)e->last_update_time_ms;
    else
        return 0;
    return 1;
}

static int exp_tag(void *ctx, const char *key, const char **out)
{
    const tally_experiment *e = ctx;
    for (size_t i = 0; i < e->n_tags; i++)
        if (strcmp(e->tags[i].key, key) == 0) {
            *out = e->tags[i].value;
            return 1;
        }
    return 0;
}

static tally_search_row exp_row(const tally_experiment *e)
{
    tally_search_row r;
    memset(&r, 0, sizeof r);
    r.ctx = (void *)e;
    r.attr_str = exp_attr_str;
    r.attr_num = exp_attr_num;
    r.tag = exp_tag;
    return r;
}

static int exp_cmp(const void *x, const void *y, void *ctx)
{
    const tally_search_order *o = ctx;
    tally_search_row a = exp_row(*(const tally_experiment *const *)x);
    tally_search_row b = exp_row(*(const tally_experiment *const *)y);
    return tally_search_compare(o, &a, &b);
}

/* Filter, order and page `all` into the response. filter/order NULL: none. */
static void search_respond(tally_resp *resp, tally_experiment *all, size_t n,
                           const tally_search_filter *f, const tally_search_order *o,
                           uint64_t offset, size_t max_results, int paged,
                           const tally_readable_set *can_read)
{
    tally_experiment **hits = malloc((n ? n : 1) * sizeof *hits);
    if (!hits) {
        tally_api_oom(resp);
        return;
    }
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        /* Unreadable experiments are dropped before ordering and paging, so
         * pages stay full and offsets stay right (mlflow-auth.md §5). */
        if (!tally_readable_has_experiment(can_read, all[i].experiment_id))
            continue;
        tally_search_row r = exp_row(&all[i]);
        if (!f || tally_search_match(f, &r))
            hits[nh++] = &all[i];
    }
    if (o && nh > 1)
        qsort_r(hits, nh, sizeof *hits, exp_cmp, (void *)o);
    size_t from = offset < nh ? (size_t)offset : nh;
    size_t to = paged && nh - from > max_results ? from + max_results : nh;
    tally_json j;
    tally_api_list_begin(&j, resp, "experiments", to - from);
    for (size_t i = from; i < to; i++)
        tally_api_write_experiment(&j, hits[i]);
    tally_api_list_end(&j, resp, to - from, paged && to < nh, to);
    free(hits);
}

static void handle_search(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    tally_search_filter *f = NULL;
    tally_search_order *o = NULL;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    int64_t max_results = 0;
    const char *token = NULL, *filter = NULL;
    const char **order_by = NULL;
    size_t n_order = 0;
    int view = TALLY_VIEW_ACTIVE_ONLY;
    if (tally_params_int64(&p, "max_results", &max_results, resp) < 0 ||
        tally_params_string(&p, "page_token", &token, resp) < 0 ||
        tally_params_string(&p, "filter", &filter, resp) < 0 ||
        tally_params_strings(&p, "order_by", &order_by, &n_order, resp) < 0 ||
        tally_params_enum(&p, "view_type", tally_api_view_names, tally_api_view_values, 3, &view, resp) < 0)
        goto out;
    /* MLflow rejects a missing/0 max_results; clients always send it, and a
     * default is friendlier (mlflow-rest-api.md §3.1). */
    if (max_results == 0)
        max_results = EXP_SEARCH_DEFAULT;
    if (max_results < 1 || max_results > EXP_SEARCH_MAX) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid value %lld for parameter 'max_results' supplied. It must be "
                         "a positive integer at most %d",
                         (long long)max_results, EXP_SEARCH_MAX);
        goto out;
    }
    uint64_t offset;
    if (tally_api_page_token_decode(token, &offset) != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid page token, could not base64-decode");
        goto out;
    }
    tally_search_error se;
    memset(&se, 0, sizeof se);
    int rc = tally_search_filter_parse(TALLY_SEARCH_EXPERIMENTS, filter, filter ? strlen(filter) : 0,
                                       &f, &se);
    if (rc == 0)
        rc = tally_search_order_parse(TALLY_SEARCH_EXPERIMENTS, order_by, n_order, &o, &se);
    if (rc == TALLY_ENOMEM) {
        tally_api_oom(resp);
        goto out;
    }
    if (rc != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "%s", se.msg);
        goto out;
    }
    tally_experiment *all;
    size_t n;
    rc = tally_store_list_experiments(srv->store, (tally_view_type)view, a, &all, &n, err,
                                      sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_readable_set can_read;
    rc = tally_authz_readable_experiments(srv, req, a, &can_read);
    if (rc != 0) {
        tally_api_store_error(resp, rc, "Permission lookup failed (metadata store unavailable).");
        goto out;
    }
    search_respond(resp, all, n, f, o, offset, (size_t)max_results, 1, &can_read);
out:
    tally_search_filter_free(f);
    tally_search_order_free(o);
    tally_arena_free(a);
    tally_params_close(&p);
}

/* npm's Experiments.list: every experiment of the view type, no paging, in
 * the default search order. */
static void handle_list(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    tally_search_order *o = NULL;
    char err[1024] = "";
    int view = TALLY_VIEW_ACTIVE_ONLY;
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_params_enum(&p, "view_type", tally_api_view_names, tally_api_view_values, 3, &view, resp) < 0)
        goto out;
    tally_search_error se;
    int rc = tally_search_order_parse(TALLY_SEARCH_EXPERIMENTS, NULL, 0, &o, &se);
    if (rc != 0) {
        tally_api_oom(resp);
        goto out;
    }
    tally_experiment *all;
    size_t n;
    rc = tally_store_list_experiments(srv->store, (tally_view_type)view, a, &all, &n, err,
                                      sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_readable_set can_read;
    rc = tally_authz_readable_experiments(srv, req, a, &can_read);
    if (rc != 0) {
        tally_api_store_error(resp, rc, "Permission lookup failed (metadata store unavailable).");
        goto out;
    }
    search_respond(resp, all, n, NULL, o, 0, 0, 0, &can_read);
out:
    tally_search_order_free(o);
    tally_arena_free(a);
    tally_params_close(&p);
}

const tally_route tally_routes_experiments[] = {
    {TALLY_POST, "mlflow/experiments/create", 1, 0, 0, 0, handle_create, "experiments/create"},
    {TALLY_GET, "mlflow/experiments/get", 1, 0, 0, 0, handle_get, "experiments/get"},
    {TALLY_GET, "mlflow/experiments/get-by-name", 1, 0, 0, 0, handle_get_by_name,
     "experiments/get-by-name"},
    {TALLY_GET | TALLY_POST, "mlflow/experiments/search", 1, 0, 0, 0, handle_search,
     "experiments/search"},
    {TALLY_POST, "mlflow/experiments/update", 1, 0, 0, 0, handle_update, "experiments/update"},
    {TALLY_POST, "mlflow/experiments/delete", 1, 0, 0, 0, handle_delete, "experiments/delete"},
    {TALLY_POST, "mlflow/experiments/restore", 1, 0, 0, 0, handle_restore, "experiments/restore"},
    {TALLY_POST, "mlflow/experiments/set-experiment-tag", 1, 0, 0, 0, handle_set_tag,
     "experiments/set-experiment-tag"},
    {TALLY_POST, "mlflow/experiments/delete-experiment-tag", 1, 0, 0, 0, handle_delete_tag,
     "experiments/delete-experiment-tag"},
    /* npm mlflow@2.0.7 compatibility (mlflow-rest-api.md §7). */
    {TALLY_GET, "mlflow/experiments/list", 1, 0, 0, 0, handle_list, "experiments/list"},
    {TALLY_POST, "mlflow/experimentsset-experiment-tag", 1, 0, 0, 0, handle_set_tag,
     "experimentsset-experiment-tag"},
    {0},
};
