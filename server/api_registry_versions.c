/*
 * api_registry_versions.c — MLflow's model-version endpoints
 * (mlflow-rest-api.md §3.7, §5.4) and their webhook events
 * (mlflow-webhooks.md §5):
 *
 *   POST            mlflow/model-versions/create
 *   GET             mlflow/model-versions/get
 *   PATCH           mlflow/model-versions/update
 *   DELETE          mlflow/model-versions/delete
 *   GET (and POST)  mlflow/model-versions/search
 *   POST            mlflow/model-versions/transition-stage
 *   GET             mlflow/model-versions/get-download-uri
 *   POST            mlflow/model-versions/set-tag
 *   DELETE          mlflow/model-versions/delete-tag
 *
 * Source checks on create (MLflow's handlers, registry_source.h): after
 * URL-decoding until the text stops changing, no path segment may be "..";
 * a local source (a plain path or file: URI) needs run_id and must lie
 * inside that run's local artifact directory.
 *
 * Events fire after the store committed, from the request's values:
 * model_version.created / prompt_version.created (prompt: the request tags
 * hold mlflow.prompt.is_prompt), model_version_tag.set / .deleted or the
 * prompt_version_tag variants (prompt: the model's stored tag is "true").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_error.h"
#include "api_registry.h"
#include "api_tracking.h"
#include "app.h"
#include "registry_source.h"

#define VERSIONS_SEARCH_DEFAULT 200000
#define VERSIONS_SEARCH_MAX 200000
#define PROMPT_TEXT_TAG "mlflow.prompt.text"

/* ------------------------------------------------------------------------ */
/* Source validation                                                         */
/* ------------------------------------------------------------------------ */

static int invalid_source(tally_resp *resp, const char *source)
{
    tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                     "Invalid model version source: '%.500s'. To use a local path as a model "
                     "version source, the run_id request parameter has to be specified and the "
                     "local path has to be contained within the artifact directory of the run "
                     "specified by the run_id.",
                     source);
    return -1;
}

/* 0 if source is acceptable, else -1 with resp filled. */
static int check_source(tally_server *srv, const char *source, const char *run_id,
                        tally_resp *resp)
{
    int bad = tally_registry_source_has_dotdot(source);
    if (bad < 0) {
        tally_api_oom(resp);
        return -1;
    }
    if (bad) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid model version source: '%.500s'. The source must not contain "
                         "'..' path segments.",
                         source);
        return -1;
    }
    const char *path = tally_registry_source_local_path(source);
    if (!path)
        return 0;
    if (!run_id || !*run_id)
        return invalid_source(resp, source);
    tally_arena *ar = tally_arena_new();
    if (!ar) {
        tally_api_oom(resp);
        return -1;
    }
    tally_run run;
    char err[1024] = "";
    int rc = tally_store_get_run(srv->store, run_id, ar, &run, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        tally_arena_free(ar);
        return -1;
    }
    const char *dir = tally_registry_source_local_path(run.info.artifact_uri);
    int ok = dir && *dir && tally_registry_source_path_inside(path, dir);
    tally_arena_free(ar);
    return ok ? 0 : invalid_source(resp, source);
}

/* ------------------------------------------------------------------------ */
/* Handlers                                                                  */
/* ------------------------------------------------------------------------ */

static int has_tag(const tally_kv *tags, size_t n, const char *key, const char **value)
{
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(tags[i].key, key) == 0) {
            found = 1;
            if (value)
                *value = tags[i].value;
        }
    return found;
}

static void handle_create(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    int scoped = 0;
    tally_arena *a = tally_arena_new();
    tally_version_create vc;
    memset(&vc, 0, sizeof vc);
    tally_kv *tags = NULL;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "name", &vc.name, resp) < 0 ||
        tally_api_require(&p, "source", &vc.source, resp) < 0 ||
        tally_params_string(&p, "run_id", &vc.run_id, resp) < 0 ||
        tally_api_read_kvs(&p, "tags", a, &tags, &vc.n_tags, resp) < 0 ||
        tally_params_string(&p, "run_link", &vc.run_link, resp) < 0 ||
        tally_params_string(&p, "description", &vc.description, resp) < 0 ||
        tally_params_string(&p, "model_id", &vc.model_id, resp) < 0)
        goto out;
    vc.tags = tags;
    if (check_source(srv, vc.source, vc.run_id, resp) < 0)
        goto out;
    if ((scoped = tally_api_event_scope_begin(srv, resp)) < 0)
        goto out;
    tally_model_version v;
    int rc = tally_registry_create_version(srv->store, &vc, a, &v, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_api_respond_model_version(resp, "model_version", &v);
    tally_api_event ev;
    if (tally_api_event_begin(srv, &ev)) {
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)v.version);
        int prompt = has_tag(tags, vc.n_tags, TALLY_REGISTRY_PROMPT_TAG, NULL);
        tally_json_kv_string(&ev.j, "name", vc.name);
        tally_json_kv_string(&ev.j, "version", num);
        if (prompt) {
            static const char *const hidden[] = {PROMPT_TEXT_TAG, TALLY_REGISTRY_PROMPT_TAG,
                                                 "_mlflow_prompt_type", NULL};
            const char *text = NULL;
            int has_text = has_tag(tags, vc.n_tags, PROMPT_TEXT_TAG, &text);
            tally_json_key(&ev.j, "template");
            if (has_text)
                tally_json_string(&ev.j, text ? text : "");
            else
                tally_json_null(&ev.j);
            tally_api_event_tags(&ev.j, tags, vc.n_tags, hidden);
        } else {
            tally_json_kv_string(&ev.j, "source", vc.source);
            tally_json_key(&ev.j, "run_id");
            tally_api_string_or_null(&ev.j, vc.run_id);
            tally_api_event_tags(&ev.j, tags, vc.n_tags, NULL);
        }
        tally_json_key(&ev.j, "description");
        tally_api_string_or_null(&ev.j, vc.description);
        tally_api_event_emit(srv, &ev, prompt ? "prompt_version" : "model_version", "created", resp);
    }
out:
    tally_api_event_scope_end(srv, scoped, resp);
    tally_arena_free(a);
    tally_params_close(&p);
}

/* name + version, then what. */
typedef enum { GET, DOWNLOAD_URI, UPDATE } read_kind;

static void name_version_op(tally_server *srv, const tally_req *req, tally_resp *resp,
                            read_kind kind)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *name, *description = NULL;
    int64_t version;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_api_require_version(&p, &version, NULL, resp) < 0 ||
        (kind == UPDATE && tally_params_string(&p, "description", &description, resp) < 0))
        goto out;
    tally_model_version v;
    int rc = kind == UPDATE ? tally_registry_update_version(srv->store, name, version, description,
                                                            a, &v, err, sizeof err)
                            : tally_registry_get_version(srv->store, name, version, a, &v, err,
                                                         sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
    } else if (kind == DOWNLOAD_URI) {
        tally_json j;
        tally_api_json_begin(&j, resp);
        tally_json_kv_string(&j, "artifact_uri",
                             v.storage_location ? v.storage_location : v.source);
        tally_api_json_end(&j, resp);
    } else {
        tally_api_respond_model_version(resp, "model_version", &v);
    }
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_get(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    name_version_op(srv, req, resp, GET);
}

static void handle_download_uri(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    name_version_op(srv, req, resp, DOWNLOAD_URI);
}

static void handle_update(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    name_version_op(srv, req, resp, UPDATE);
}

static void handle_delete(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    const char *name;
    int64_t version;
    char err[1024] = "";
    if (tally_api_require(&p, "name", &name, resp) >= 0 &&
        tally_api_require_version(&p, &version, NULL, resp) >= 0)
        tally_api_store_done(
            resp, tally_registry_delete_version(srv->store, name, version, err, sizeof err), err);
    tally_params_close(&p);
}

static void handle_transition(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *name, *stage_text;
    int64_t version;
    int archive = 0;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_api_require_version(&p, &version, NULL, resp) < 0 ||
        tally_api_require(&p, "stage", &stage_text, resp) < 0 ||
        tally_params_bool(&p, "archive_existing_versions", &archive, resp) < 0)
        goto out;
    tally_stage stage;
    if (tally_stage_parse(stage_text, &stage) != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid Model Version stage: %.200s. Value must be one of None, "
                         "Staging, Production, Archived.",
                         stage_text);
        goto out;
    }
    tally_model_version v;
    int rc = tally_registry_transition_stage(srv->store, name, version, stage, archive, a, &v, err,
                                             sizeof err);
    if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        tally_api_respond_model_version(resp, "model_version", &v);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_search(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    tally_api_registry_search(srv, req, resp, TALLY_SEARCH_VERSIONS, VERSIONS_SEARCH_DEFAULT,
                              VERSIONS_SEARCH_MAX);
}

/* set-tag (value given) and delete-tag. */
static void version_tag(tally_server *srv, const tally_req *req, tally_resp *resp, int set)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    int scoped = 0;
    const char *name, *key, *vtext, *value = NULL;
    int64_t version;
    char err[1024] = "";
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_api_require_version(&p, &version, &vtext, resp) < 0 ||
        tally_api_require(&p, "key", &key, resp) < 0)
        goto out;
    if (set) {
        int has = tally_params_string(&p, "value", &value, resp);
        if (has < 0)
            goto out;
        if (has == 0 || !value) {
            tally_params_missing(resp, "value");
            goto out;
        }
    }
    if ((scoped = tally_api_event_scope_begin(srv, resp)) < 0)
        goto out;
    int prompt = 0;
    int rc = set ? tally_registry_set_version_tag(srv->store, name, version, key, value, &prompt,
                                                  err, sizeof err)
                 : tally_registry_delete_version_tag(srv->store, name, version, key, &prompt, err,
                                                     sizeof err);
    tally_api_store_done(resp, rc, err);
    tally_api_event ev;
    if (rc == 0 && tally_api_event_begin(srv, &ev)) {
        tally_json_kv_string(&ev.j, "name", name);
        tally_json_kv_string(&ev.j, "version", vtext);
        tally_json_kv_string(&ev.j, "key", key);
        if (set)
            tally_json_kv_string(&ev.j, "value", value);
        tally_api_event_emit(srv, &ev, prompt ? "prompt_version_tag" : "model_version_tag",
                             set ? "set" : "deleted", resp);
    }
out:
    tally_api_event_scope_end(srv, scoped, resp);
    tally_params_close(&p);
}

static void handle_set_tag(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    version_tag(srv, req, resp, 1);
}

static void handle_delete_tag(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    version_tag(srv, req, resp, 0);
}

#define MV "mlflow/model-versions/"
const tally_route tally_routes_registry_versions[] = {
    {TALLY_POST, MV "create", 1, 0, 0, 0, handle_create, "model-versions/create"},
    {TALLY_GET, MV "get", 1, 0, 0, 0, handle_get, "model-versions/get"},
    {TALLY_PATCH, MV "update", 1, 0, 0, 0, handle_update, "model-versions/update"},
    {TALLY_DELETE, MV "delete", 1, 0, 0, 0, handle_delete, "model-versions/delete"},
    {TALLY_GET | TALLY_POST, MV "search", 1, 0, 0, 0, handle_search, "model-versions/search"},
    {TALLY_POST, MV "transition-stage", 1, 0, 0, 0, handle_transition,
     "model-versions/transition-stage"},
    {TALLY_GET, MV "get-download-uri", 1, 0, 0, 0, handle_download_uri,
     "model-versions/get-download-uri"},
    {TALLY_POST, MV "set-tag", 1, 0, 0, 0, handle_set_tag, "model-versions/set-tag"},
    {TALLY_DELETE, MV "delete-tag", 1, 0, 0, 0, handle_delete_tag, "model-versions/delete-tag"},
    {0},
};
#undef MV
