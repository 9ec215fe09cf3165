/*
 * api_registry_models.c — MLflow's registered-model endpoints
 * (mlflow-rest-api.md §3.7, §5.4) and their webhook events
 * (mlflow-webhooks.md §5):
 *
 *   POST            mlflow/registered-models/create
 *   GET             mlflow/registered-models/get
 *   POST            mlflow/registered-models/rename
 *   PATCH           mlflow/registered-models/update
 *   DELETE          mlflow/registered-models/delete
 *   GET (and POST)  mlflow/registered-models/search
 *   POST, GET       mlflow/registered-models/get-latest-versions
 *   POST            mlflow/registered-models/set-tag
 *   DELETE          mlflow/registered-models/delete-tag
 *   POST/DELETE/GET mlflow/registered-models/alias
 *
 * Events fire after the store committed, built from the request's values:
 * registered_model.created / prompt.created, prompt_tag.set / .deleted
 * (plain models: none), model_version_alias.created / .deleted or the
 * prompt_alias variants.
 */
#include <stdio.h>
#include <string.h>

#include "api_error.h"
#include "api_registry.h"
#include "api_tracking.h"
#include "app.h"

#define MODELS_SEARCH_DEFAULT 100
#define MODELS_SEARCH_MAX 1000

/* Tags a prompt's events leave out (mlflow-webhooks.md §5). */
static const char *const prompt_hidden_tags[] = {TALLY_REGISTRY_PROMPT_TAG, "_mlflow_prompt_type",
                                                 NULL};

static void handle_create(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    int scoped = 0;
    tally_arena *a = tally_arena_new();
    const char *name, *description = NULL, *job = NULL;
    tally_kv *tags = NULL;
    size_t n_tags = 0;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_api_read_kvs(&p, "tags", a, &tags, &n_tags, resp) < 0 ||
        tally_params_string(&p, "description", &description, resp) < 0 ||
        tally_params_string(&p, "deployment_job_id", &job, resp) < 0)
        goto out;
    if ((scoped = tally_api_event_scope_begin(srv, resp)) < 0)
        goto out;
    tally_registered_model m;
    int rc = tally_registry_create_model(srv->store, name, tags, n_tags, description, job, a, &m,
                                         err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_api_respond_registered_model(resp, &m);
    int prompt = 0;
    for (size_t i = 0; i < n_tags; i++)
        prompt |= strcmp(tags[i].key, TALLY_REGISTRY_PROMPT_TAG) == 0;
    tally_api_event ev;
    if (tally_api_event_begin(srv, &ev)) {
        tally_json_kv_string(&ev.j, "name", name);
        tally_api_event_tags(&ev.j, tags, n_tags, prompt ? prompt_hidden_tags : NULL);
        tally_json_kv_string(&ev.j, "description", description ? description : "");
        tally_api_event_emit(srv, &ev, prompt ? "prompt" : "registered_model", "created", resp);
    }
out:
    tally_api_event_scope_end(srv, scoped, resp);
    tally_arena_free(a);
    tally_params_close(&p);
}

/* Handlers taking `name` and answering {registered_model}. */
/* A store call's outcome: {registered_model} when rc is 0, else its error. */
static void respond_model(tally_resp *resp, int rc, const char *err,
                          const tally_registered_model *m)
{
    if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        tally_api_respond_registered_model(resp, m);
}

static void handle_get(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *name;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "name", &name, resp) < 0)
        goto out;
    tally_registered_model m;
    int rc = tally_registry_get_model(srv->store, name, a, &m, err, sizeof err);
    respond_model(resp, rc, err, &m);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_rename(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *name, *new_name;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_api_require(&p, "new_name", &new_name, resp) < 0)
        goto out;
    tally_registered_model m;
    int rc = tally_registry_rename_model(srv->store, name, new_name, a, &m, err, sizeof err);
    respond_model(resp, rc, err, &m);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_update(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *name, *description = NULL;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_params_string(&p, "description", &description, resp) < 0)
        goto out;
    tally_registered_model m;
    int rc = tally_registry_update_model(srv->store, name, description, a, &m, err, sizeof err);
    respond_model(resp, rc, err, &m);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_delete(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    const char *name;
    char err[1024] = "";
    if (tally_api_require(&p, "name", &name, resp) >= 0)
        tally_api_store_done(resp, tally_registry_delete_model(srv->store, name, err, sizeof err),
                             err);
    tally_params_close(&p);
}

static void handle_search(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    tally_api_registry_search(srv, req, resp, TALLY_SEARCH_MODELS, MODELS_SEARCH_DEFAULT,
                              MODELS_SEARCH_MAX);
}

static void handle_latest_versions(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *name;
    const char **stages = NULL;
    size_t n_stages = 0;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_params_strings(&p, "stages", &stages, &n_stages, resp) < 0)
        goto out;
    unsigned mask = 0;
    for (size_t i = 0; i < n_stages; i++) {
        tally_stage st;
        if (tally_stage_parse(stages[i], &st) != 0) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                             "Invalid Model Version stage: %.200s. Value must be one of None, "
                             "Staging, Production, Archived.",
                             stages[i]);
            goto out;
        }
        mask |= 1u << st;
    }
    tally_model_version *v;
    size_t n;
    int rc = tally_registry_latest_versions(srv->store, name, mask, a, &v, &n, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_json j;
    tally_api_list_begin(&j, resp, "model_versions", n);
    for (size_t i = 0; i < n; i++)
        tally_api_write_model_version(&j, &v[i]);
    tally_api_list_end(&j, resp, n, 0, 0);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_set_tag(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    int scoped = 0;
    const char *name, *key, *value = NULL;
    char err[1024] = "";
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_api_require(&p, "key", &key, resp) < 0 ||
        tally_params_string(&p, "value", &value, resp) < 0)
        goto out;
    if ((scoped = tally_api_event_scope_begin(srv, resp)) < 0)
        goto out;
    int prompt = 0;
    int rc = tally_registry_set_model_tag(srv->store, name, key, value ? value : "", &prompt, err,
                                          sizeof err);
    tally_api_store_done(resp, rc, err);
    tally_api_event ev;
    if (rc == 0 && prompt && tally_api_event_begin(srv, &ev)) {
        tally_json_kv_string(&ev.j, "name", name);
        tally_json_kv_string(&ev.j, "key", key);
        tally_json_kv_string(&ev.j, "value", value ? value : "");
        tally_api_event_emit(srv, &ev, "prompt_tag", "set", resp);
    }
out:
    tally_api_event_scope_end(srv, scoped, resp);
    tally_params_close(&p);
}

static void handle_delete_tag(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    int scoped = 0;
    const char *name, *key;
    char err[1024] = "";
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_api_require(&p, "key", &key, resp) < 0)
        goto out;
    if ((scoped = tally_api_event_scope_begin(srv, resp)) < 0)
        goto out;
    int prompt = 0;
    int rc = tally_registry_delete_model_tag(srv->store, name, key, &prompt, err, sizeof err);
    tally_api_store_done(resp, rc, err);
    tally_api_event ev;
    if (rc == 0 && prompt && tally_api_event_begin(srv, &ev)) {
        tally_json_kv_string(&ev.j, "name", name);
        tally_json_kv_string(&ev.j, "key", key);
        tally_api_event_emit(srv, &ev, "prompt_tag", "deleted", resp);
    }
out:
    tally_api_event_scope_end(srv, scoped, resp);
    tally_params_close(&p);
}

static void handle_set_alias(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    int scoped = 0;
    const char *name, *alias, *vtext;
    int64_t version;
    char err[1024] = "";
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_api_require(&p, "alias", &alias, resp) < 0 ||
        tally_api_require_version(&p, &version, &vtext, resp) < 0)
        goto out;
    if ((scoped = tally_api_event_scope_begin(srv, resp)) < 0)
        goto out;
    int prompt = 0;
    int rc = tally_registry_set_alias(srv->store, name, alias, version, &prompt, err, sizeof err);
    tally_api_store_done(resp, rc, err);
    tally_api_event ev;
    if (rc == 0 && tally_api_event_begin(srv, &ev)) {
        tally_json_kv_string(&ev.j, "name", name);
        tally_json_kv_string(&ev.j, "alias", alias);
        tally_json_kv_string(&ev.j, "version", vtext);
        tally_api_event_emit(srv, &ev, prompt ? "prompt_alias" : "model_version_alias", "created", resp);
    }
out:
    tally_api_event_scope_end(srv, scoped, resp);
    tally_params_close(&p);
}

static void handle_delete_alias(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    int scoped = 0;
    const char *name, *alias;
    char err[1024] = "";
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_api_require(&p, "alias", &alias, resp) < 0)
        goto out;
    if ((scoped = tally_api_event_scope_begin(srv, resp)) < 0)
        goto out;
    int prompt = 0;
    int rc = tally_registry_delete_alias(srv->store, name, alias, &prompt, err, sizeof err);
    tally_api_store_done(resp, rc, err);
    tally_api_event ev;
    if (rc == 0 && tally_api_event_begin(srv, &ev)) {
        tally_json_kv_string(&ev.j, "name", name);
        tally_json_kv_string(&ev.j, "alias", alias);
        tally_api_event_emit(srv, &ev, prompt ? "prompt_alias" : "model_version_alias", "deleted", resp);
    }
out:
    tally_api_event_scope_end(srv, scoped, resp);
    tally_params_close(&p);
}

static void handle_get_alias(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *name, *alias;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_api_require(&p, "alias", &alias, resp) < 0)
        goto out;
    tally_model_version v;
    int rc = tally_registry_get_alias(srv->store, name, alias, a, &v, err, sizeof err);
    if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        tally_api_respond_model_version(resp, "model_version", &v);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

#define RM "mlflow/registered-models/"
const tally_route tally_routes_registry_models[] = {
    {TALLY_POST, RM "create", 1, 0, 0, 0, handle_create, "registered-models/create"},
    {TALLY_GET, RM "get", 1, 0, 0, 0, handle_get, "registered-models/get"},
    {TALLY_POST, RM "rename", 1, 0, 0, 0, handle_rename, "registered-models/rename"},
    {TALLY_PATCH, RM "update", 1, 0, 0, 0, handle_update, "registered-models/update"},
    {TALLY_DELETE, RM "delete", 1, 0, 0, 0, handle_delete, "registered-models/delete"},
    {TALLY_GET | TALLY_POST, RM "search", 1, 0, 0, 0, handle_search, "registered-models/search"},
    {TALLY_POST | TALLY_GET, RM "get-latest-versions", 1, 0, 0, 0, handle_latest_versions,
     "registered-models/get-latest-versions"},
    {TALLY_POST, RM "set-tag", 1, 0, 0, 0, handle_set_tag, "registered-models/set-tag"},
    {TALLY_DELETE, RM "delete-tag", 1, 0, 0, 0, handle_delete_tag, "registered-models/delete-tag"},
    {TALLY_POST, RM "alias", 1, 0, 0, 0, handle_set_alias, "registered-models/alias (set)"},
    {TALLY_DELETE, RM "alias", 1, 0, 0, 0, handle_delete_alias, "registered-models/alias (delete)"},
    {TALLY_GET, RM "alias", 1, 0, 0, 0, handle_get_alias, "registered-models/alias (get)"},
    {0},
};
#undef RM
