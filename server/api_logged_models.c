/*
 * api_logged_models.c — MLflow 3's LoggedModel API (what
 * `mlflow.<flavor>.log_model` calls, mlflow-rest-api.md §8) and
 * POST mlflow/runs/outputs:
 *
 *   POST   mlflow/logged-models                         create (PENDING)
 *   GET    mlflow/logged-models/{id}                    get
 *   PATCH  mlflow/logged-models/{id}                    finalize (status)
 *   DELETE mlflow/logged-models/{id}                    soft delete
 *   PATCH  mlflow/logged-models/{id}/tags               set tags
 *   DELETE mlflow/logged-models/{id}/tags/{key}         delete a tag
 *   POST   mlflow/logged-models/{id}/params             log params
 *   GET    mlflow/logged-models/{id}/artifacts/directories   list files
 *   POST   mlflow/logged-models/search                  search
 *   POST   mlflow/runs/outputs                          run -> model outputs
 *
 * The model's files go through the artifact proxy at its artifact_uri
 * (mlflow-artifacts:/<exp>/models/<id>/artifacts by default).
 *
 * Invariants:
 *  (1) Responses follow the proto: {"model": {"info": {...}, "data":
 *      {...}}}, int64 as JSON numbers, experiment_id as a string, unset
 *      optional fields and empty lists omitted.
 *  (2) Ids in the URL path win over ids in the body.
 *  (3) Bad input is 400 INVALID_PARAMETER_VALUE, an unknown or deleted model
 *      404 RESOURCE_DOES_NOT_EXIST; nothing is changed by a failed request.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_error.h"
#include "api_tracking.h"
#include "artifact_fs.h"
#include "artifact_path.h"
#include "logged_model_search.h"
#include "store_logged_models.h"

#define SEARCH_DEFAULT_MAX 50
#define SEARCH_MAX 50000

static const char *const status_names[4] = {"LOGGED_MODEL_STATUS_UNSPECIFIED",
                                            "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY",
                                            "LOGGED_MODEL_UPLOAD_FAILED"};
static const int status_values[4] = {0, 1, 2, 3};

/* ------------------------------------------------------------------------ */
/* JSON                                                                       */
/* ------------------------------------------------------------------------ */

static void write_model(tally_json *j, const tally_logged_model *m)
{
    char exp[24];
    snprintf(exp, sizeof exp, "%lld", (long long)m->experiment_id);
    tally_json_object_open(j);
    tally_json_key(j, "info");
    tally_json_object_open(j);
    tally_json_kv_string(j, "model_id", m->model_id);
    tally_json_kv_string(j, "experiment_id", exp);
    tally_json_kv_string(j, "name", m->name);
    tally_json_kv_int(j, "creation_timestamp_ms", m->creation_timestamp_ms);
    tally_json_kv_int(j, "last_updated_timestamp_ms", m->last_updated_timestamp_ms);
    tally_json_kv_string(j, "artifact_uri", m->artifact_location);
    const char *status = tally_logged_model_status_name(m->status);
    tally_json_kv_string(j, "status", status ? status : status_names[0]);
    if (m->model_type)
        tally_json_kv_string(j, "model_type", m->model_type);
    if (m->source_run_id)
        tally_json_kv_string(j, "source_run_id", m->source_run_id);
    if (m->status_message)
        tally_json_kv_string(j, "status_message", m->status_message);
    tally_api_write_kvs(j, "tags", m->tags, m->n_tags);
    tally_json_object_close(j);
    tally_json_key(j, "data");
    tally_json_object_open(j);
    tally_api_write_kvs(j, "params", m->params, m->n_params);
    tally_json_object_close(j);
    tally_json_object_close(j);
}

/* {"model": ...} */
static void send_model(const tally_logged_model *m, tally_resp *resp)
{
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, "model");
    write_model(&j, m);
    tally_api_json_end(&j, resp);
}

/* ------------------------------------------------------------------------ */
/* Create                                                                     */
/* ------------------------------------------------------------------------ */

/* An optional string field: NULL when absent or "". */
static int opt_string(tally_params *p, const char *name, const char **out, tally_resp *resp)
{
    *out = NULL;
    int rc = tally_params_string(p, name, out, resp);
    if (rc > 0 && *out && !**out)
        *out = NULL;
    return rc;
}

static void handle_create(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *exp;
    tally_logged_model_create c;
    memset(&c, 0, sizeof c);
    tally_kv *params = NULL, *tags = NULL;
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "experiment_id", &exp, resp) < 0 ||
        tally_api_parse_experiment_id(exp, &c.experiment_id, resp) < 0 ||
        tally_params_string(&p, "name", &c.name, resp) < 0 ||
        opt_string(&p, "model_type", &c.model_type, resp) < 0 ||
        opt_string(&p, "source_run_id", &c.source_run_id, resp) < 0 ||
        tally_api_read_kvs(&p, "params", a, &params, &c.n_params, resp) < 0 ||
        tally_api_read_kvs(&p, "tags", a, &tags, &c.n_tags, resp) < 0)
        goto out;
    c.params = params;
    c.tags = tags;
    tally_logged_model m;
    char err[1024] = "";
    int rc = tally_store_create_logged_model(srv->store, &c, a, &m, err, sizeof err);
    if (rc)
        tally_api_store_error(resp, rc, err);
    else
        send_model(&m, resp);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

/* ------------------------------------------------------------------------ */
/* One model: /logged-models/{id}[/...]                                       */
/* ------------------------------------------------------------------------ */

static void get_model(tally_server *srv, const char *id, tally_resp *resp)
{
    tally_arena *a = tally_arena_new();
    if (!a) {
        tally_api_oom(resp);
        return;
    }
    tally_logged_model m;
    char err[512] = "";
    int rc = tally_store_get_logged_model(srv->store, id, a, &m, err, sizeof err);
    if (rc)
        tally_api_store_error(resp, rc, err);
    else
        send_model(&m, resp);
    tally_arena_free(a);
}

static void finalize_model(tally_server *srv, tally_params *p, const char *id, tally_resp *resp)
{
    int status = 0;
    int rc = tally_params_enum(p, "status", status_names, status_values, 4, &status, resp);
    if (rc < 0)
        return;
    if (rc == 0) {
        tally_params_missing(resp, "status");
        return;
    }
    tally_arena *a = tally_arena_new();
    if (!a) {
        tally_api_oom(resp);
        return;
    }
    tally_logged_model m;
    char err[512] = "";
    rc = tally_store_finalize_logged_model(srv->store, id, status, a, &m, err, sizeof err);
    if (rc)
        tally_api_store_error(resp, rc, err);
    else
        send_model(&m, resp);
    tally_arena_free(a);
}

static void set_tags(tally_server *srv, tally_params *p, const char *id, tally_resp *resp)
{
    tally_arena *a = tally_arena_new();
    tally_kv *tags = NULL;
    size_t n = 0;
    if (!a) {
        tally_api_oom(resp);
        return;
    }
    char err[1024] = "";
    if (tally_api_read_kvs(p, "tags", a, &tags, &n, resp) >= 0) {
        int rc = tally_store_set_logged_model_tags(srv->store, id, tags, n, err, sizeof err);
        if (rc) {
            tally_api_store_error(resp, rc, err);
        } else {
            tally_logged_model m;
            rc = tally_store_get_logged_model(srv->store, id, a, &m, err, sizeof err);
            if (rc)
                tally_api_store_error(resp, rc, err);
            else
                send_model(&m, resp);
        }
    }
    tally_arena_free(a);
}

static void log_params(tally_server *srv, tally_params *p, const char *id, tally_resp *resp)
{
    tally_arena *a = tally_arena_new();
    tally_kv *params = NULL;
    size_t n = 0;
    if (!a) {
        tally_api_oom(resp);
        return;
    }
    char err[1024] = "";
    if (tally_api_read_kvs(p, "params", a, &params, &n, resp) >= 0)
        tally_api_store_done(resp,
                             tally_store_log_logged_model_params(srv->store, id, params, n, err,
                                                                 sizeof err),
                             err);
    tally_arena_free(a);
}

/* GET .../artifacts/directories?artifact_directory_path= : one level,
 * paths relative to the model's artifact root (like artifacts/list). */
static void list_artifacts(tally_server *srv, tally_params *p, const char *id, tally_resp *resp)
{
    const char *path = NULL, *token = NULL;
    if (tally_params_string(p, "artifact_directory_path", &path, resp) < 0 ||
        tally_params_string(p, "page_token", &token, resp) < 0)
        return;
    if (token && *token) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid page token");
        return;
    }
    char rel[4096];
    if (tally_artifact_path_check(path, rel, sizeof rel) != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid path");
        return;
    }
    tally_arena *a = tally_arena_new();
    if (!a) {
        tally_api_oom(resp);
        return;
    }
    tally_logged_model m;
    char err[512] = "";
    int rc = tally_store_get_logged_model(srv->store, id, a, &m, err, sizeof err);
    if (rc) {
        tally_api_store_error(resp, rc, err);
        tally_arena_free(a);
        return;
    }
    char dir[8192];
    tally_artifact_entry *v = NULL;
    size_t n = 0;
    rc = tally_artifact_uri_rel(m.artifact_location, rel, dir, sizeof dir);
    if (rc < 0 || (rc == 0 && (rc = tally_artifact_list(srv->cfg.artifact_root, dir, &v, &n)) < 0)) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid path");
        tally_arena_free(a);
        return;
    }
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_kv_string(&j, "root_uri", m.artifact_location);
    if (n) {
        tally_json_key(&j, "files");
        tally_json_array_open(&j);
        for (size_t i = 0; i < n; i++) {
            tally_buf full = {0};
            tally_buf_printf(&full, "%s%s%s", rel, rel[0] ? "/" : "", v[i].name);
            tally_json_object_open(&j);
            tally_json_kv_string(&j, "path", tally_buf_failed(&full) ? "" : full.data);
            tally_json_kv_bool(&j, "is_dir", v[i].is_dir);
            if (!v[i].is_dir)
                tally_json_kv_int(&j, "file_size", (int64_t)v[i].size);
            tally_json_object_close(&j);
            tally_buf_free(&full);
        }
        tally_json_array_close(&j);
    }
    tally_json_object_close(&j);
    tally_artifact_list_free(v, n);
    tally_arena_free(a);
    tally_api_ok_json(resp);
}

static void handle_model(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    /* sub_path: "<id>", "<id>/tags", "<id>/tags/<key>", "<id>/params",
     * "<id>/artifacts/directories". */
    char id[128];
    const char *slash = strchr(req->sub_path, '/');
    size_t idl = slash ? (size_t)(slash - req->sub_path) : strlen(req->sub_path);
    const char *rest = slash ? slash + 1 : NULL;
    if (idl == 0 || idl >= sizeof id) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid logged model ID");
        return;
    }
    memcpy(id, req->sub_path, idl);
    id[idl] = 0;
    tally_method m = req->method;
    TALLY_API_OPEN_PARAMS(p, req, resp);
    if (!rest && m == TALLY_GET)
        get_model(srv, id, resp);
    else if (!rest && m == TALLY_PATCH)
        finalize_model(srv, &p, id, resp);
    else if (!rest && m == TALLY_DELETE) {
        char err[512] = "";
        tally_api_store_done(resp, tally_store_delete_logged_model(srv->store, id, err, sizeof err),
                             err);
    } else if (rest && strcmp(rest, "tags") == 0 && m == TALLY_PATCH)
        set_tags(srv, &p, id, resp);
    else if (rest && strncmp(rest, "tags/", 5) == 0 && rest[5] && m == TALLY_DELETE) {
        char err[512] = "";
        tally_api_store_done(
            resp, tally_store_delete_logged_model_tag(srv->store, id, rest + 5, err, sizeof err),
            err);
    } else if (rest && strcmp(rest, "params") == 0 && m == TALLY_POST)
        log_params(srv, &p, id, resp);
    else if (rest && strcmp(rest, "artifacts/directories") == 0 && m == TALLY_GET)
        list_artifacts(srv, &p, id, resp);
    else
        tally_resp_error(resp, TALLY_API_ENDPOINT_NOT_FOUND, "No endpoint serves %s %s.",
                         m == TALLY_GET      ? "GET"
                         : m == TALLY_POST   ? "POST"
                         : m == TALLY_PATCH  ? "PATCH"
                         : m == TALLY_DELETE ? "DELETE"
                                             : "this method",
                         req->path);
    tally_params_close(&p);
}

/* ------------------------------------------------------------------------ */
/* Search                                                                     */
/* ------------------------------------------------------------------------ */

static int read_order(cJSON *arr, tally_lm_order *keys, size_t *n_keys, tally_resp *resp)
{
    *n_keys = 0;
    size_t i = 0;
    const cJSON *el;
    cJSON_ArrayForEach(el, arr)
    {
        char where[48];
        snprintf(where, sizeof where, "order_by[%zu]", i);
        if (!cJSON_IsObject(el)) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                             "Invalid value for parameter '%s': expected an object", where);
            return -1;
        }
        const char *field = NULL, *ds = NULL;
        int r = tally_json_field_string(el, "field_name", where, &field, resp);
        if (r < 0)
            return -1;
        if (r == 0 || !field || !*field) {
            char name[64];
            snprintf(name, sizeof name, "%s.field_name", where);
            return tally_params_missing(resp, name);
        }
        if (tally_json_field_string(el, "dataset_name", where, &ds, resp) < 0)
            return -1;
        const cJSON *asc = cJSON_GetObjectItemCaseSensitive(el, "ascending");
        if (asc && !cJSON_IsBool(asc) && !cJSON_IsNull(asc)) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                             "Invalid value for parameter '%s.ascending': expected true or false",
                             where);
            return -1;
        }
        char err[256];
        if (ds && *ds) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                             "'%s.dataset_name' applies to metrics, which Tally does not link to "
                             "logged models",
                             where);
            return -1;
        }
        if (i >= 16) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Too many order_by fields");
            return -1;
        }
        if (tally_lm_order_field(field, &keys[i].attr, err, sizeof err) != 0) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "%s", err);
            return -1;
        }
        keys[i].ascending = !asc || cJSON_IsNull(asc) || cJSON_IsTrue(asc);
        i++;
    }
    *n_keys = i;
    return 0;
}

static void handle_search(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    tally_lm_filter f = {0};
    const char **exp_strs = NULL;
    size_t n_exp = 0;
    const char *filter = NULL, *token = NULL;
    int32_t max_results = SEARCH_DEFAULT_MAX;
    cJSON *order = NULL, *datasets = NULL;
    tally_lm_order keys[16];
    size_t n_keys = 0;
    int64_t *ids = NULL;
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_params_strings(&p, "experiment_ids", &exp_strs, &n_exp, resp) < 0 ||
        tally_params_string(&p, "filter", &filter, resp) < 0 ||
        tally_params_int32(&p, "max_results", &max_results, resp) < 0 ||
        tally_params_string(&p, "page_token", &token, resp) < 0 ||
        tally_params_array(&p, "order_by", &order, resp) < 0 ||
        tally_params_array(&p, "datasets", &datasets, resp) < 0)
        goto out;
    if (n_exp == 0) {
        tally_params_missing(resp, "experiment_ids");
        goto out;
    }
    if (max_results < 1 || max_results > SEARCH_MAX) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid value %d for parameter 'max_results' supplied. It must be "
                         "between 1 and %d",
                         (int)max_results, SEARCH_MAX);
        goto out;
    }
    if (datasets && cJSON_GetArraySize(datasets) > 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "'datasets' filters apply to metrics, which Tally does not link to "
                         "logged models");
        goto out;
    }
    uint64_t offset = 0;
    if (tally_api_page_token_decode(token, &offset) != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid page token");
        goto out;
    }
    ids = tally_arena_alloc(a, n_exp * sizeof *ids);
    if (!ids) {
        tally_api_oom(resp);
        goto out;
    }
    for (size_t i = 0; i < n_exp; i++)
        if (tally_api_parse_experiment_id(exp_strs[i], &ids[i], resp) < 0)
            goto out;
    /* Auth on: experiments the caller may not read are not searched. */
    if (tally_api_keep_readable_experiments(srv, req, a, ids, &n_exp, resp) < 0)
        goto out;
    if (order && read_order(order, keys, &n_keys, resp) < 0)
        goto out;
    char err[512] = "";
    if (tally_lm_filter_parse(filter, filter ? strlen(filter) : 0, &f, err, sizeof err) != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "%s", err);
        goto out;
    }
    tally_logged_model *v = NULL;
    size_t n = 0;
    int rc = tally_store_list_logged_models(srv->store, ids, n_exp, a, &v, &n, err, sizeof err);
    if (rc) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (tally_lm_filter_match(&f, &v[i]))
            v[kept++] = v[i];
    tally_lm_sort(v, kept, keys, n_keys);
    size_t begin = offset < kept ? (size_t)offset : kept;
    size_t end = kept - begin > (size_t)max_results ? begin + (size_t)max_results : kept;
    tally_json j;
    tally_api_list_begin(&j, resp, "models", end - begin);
    for (size_t i = begin; i < end; i++)
        write_model(&j, &v[i]);
    tally_api_list_end(&j, resp, end - begin, end < kept, end);
out:
    tally_lm_filter_free(&f);
    tally_arena_free(a);
    tally_params_close(&p);
}

/* ------------------------------------------------------------------------ */
/* runs/outputs                                                               */
/* ------------------------------------------------------------------------ */

static void handle_outputs(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_model_output *v = NULL;
    const char *run_id;
    cJSON *models = NULL;
    if (tally_api_require_run_id(&p, &run_id, resp) < 0 ||
        tally_params_array(&p, "models", &models, resp) < 0)
        goto out;
    size_t n = models ? (size_t)cJSON_GetArraySize(models) : 0;
    v = calloc(n ? n : 1, sizeof *v);
    if (!v) {
        tally_api_oom(resp);
        goto out;
    }
    size_t i = 0;
    const cJSON *el;
    cJSON_ArrayForEach(el, models)
    {
        char where[48];
        snprintf(where, sizeof where, "models[%zu]", i);
        if (!cJSON_IsObject(el)) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                             "Invalid value for parameter '%s': expected an object", where);
            goto out;
        }
        int r = tally_json_field_string(el, "model_id", where, &v[i].model_id, resp);
        if (r < 0)
            goto out;
        if (r == 0 || !v[i].model_id || !*v[i].model_id) {
            char name[64];
            snprintf(name, sizeof name, "%s.model_id", where);
            tally_params_missing(resp, name);
            goto out;
        }
        if (tally_json_field_int64(el, "step", where, &v[i].step, resp) < 0)
            goto out;
        i++;
    }
    char err[512] = "";
    tally_api_store_done(resp, tally_store_log_run_outputs(srv->store, run_id, v, i, err, sizeof err),
                         err);
out:
    free(v);
    tally_params_close(&p);
}

const tally_route tally_routes_logged_models[] = {
    {TALLY_POST, "mlflow/logged-models", 1, 0, 0, 0, handle_create, "logged-models/create"},
    {TALLY_POST, "mlflow/logged-models/search", 1, 0, 0, 0, handle_search, "logged-models/search"},
    {TALLY_GET | TALLY_PATCH | TALLY_DELETE | TALLY_POST, "mlflow/logged-models/", 1, 0, 1, 0,
     handle_model, "logged-models/model"},
    {TALLY_POST, "mlflow/runs/outputs", 1, 0, 0, 0, handle_outputs, "runs/outputs"},
    {0},
};
