/*
 * api_log_model.c — POST mlflow/runs/log-model (mlflow-rest-api.md §3.3), the
 * legacy call that records a logged model's metadata in the run's JSON-list
 * tag `mlflow.log-model.history`.
 *
 * Invariants:
 *  (1) model_json must be a JSON object holding artifact_path, flavors,
 *      utc_time_created and run_id; anything else is 400
 *      INVALID_PARAMETER_VALUE and changes nothing.
 *  (2) The tag always holds a valid JSON list. Run tags are capped at 8000
 *      characters (§6); when appending would pass the cap, the oldest
 *      entries are dropped (MLflow truncates the string, which leaves
 *      invalid JSON behind).
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "api_error.h"
#include "api_tracking.h"

#define HISTORY_TAG "mlflow.log-model.history"
#define TAG_VALUE_MAX 8000

static const char *find_tag(const tally_run *run, const char *key)
{
    for (size_t i = 0; i < run->n_tags; i++)
        if (strcmp(run->tags[i].key, key) == 0)
            return run->tags[i].value;
    return NULL;
}

static void handle_log_model(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    tally_params p;
    if (tally_params_open(&p, req, resp) != 0)
        return;
    const char *run_id, *model_json;
    cJSON *model = NULL, *list = NULL;
    char *text = NULL;
    tally_arena *a = NULL;
    if (tally_api_require_run_id(&p, &run_id, resp) < 0 ||
        tally_api_require(&p, "model_json", &model_json, resp) < 0)
        goto out;
    model = cJSON_Parse(model_json);
    if (!cJSON_IsObject(model)) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Malformed model info. model_json must be a JSON object");
        goto out;
    }
    static const char *const required[] = {"artifact_path", "flavors", "utc_time_created", "run_id"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        if (!cJSON_GetObjectItemCaseSensitive(model, required[i])) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                             "Model json is missing mandatory fields: '%s'", required[i]);
            goto out;
        }
    }
    a = tally_arena_new();
    tally_run run;
    char err[1024] = "";
    int rc = a ? tally_store_get_run(srv->store, run_id, a, &run, err, sizeof err) : TALLY_STORE_ENOMEM;
    if (rc) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    const char *old = find_tag(&run, HISTORY_TAG);
    list = old ? cJSON_Parse(old) : NULL;
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(list);
        list = cJSON_CreateArray();
    }
    if (!list || !cJSON_AddItemToArray(list, model)) {
        tally_resp_error(resp, TALLY_API_INTERNAL_ERROR, "out of memory");
        goto out;
    }
    model = NULL; /* owned by list now */
    for (;;) {
        text = cJSON_PrintUnformatted(list);
        if (!text || strlen(text) <= TAG_VALUE_MAX || cJSON_GetArraySize(list) <= 1)
            break;
        cJSON_free(text);
        text = NULL;
        cJSON_DeleteItemFromArray(list, 0);
    }
    if (!text || strlen(text) > TAG_VALUE_MAX) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "model_json is longer than a run tag may be (%d characters)", TAG_VALUE_MAX);
        goto out;
    }
    rc = tally_store_set_tag(srv->store, run_id, HISTORY_TAG, text, err, sizeof err);
    if (rc) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_api_ok_empty(resp);
out:
    if (text)
        cJSON_free(text);
    cJSON_Delete(model);
    cJSON_Delete(list);
    tally_arena_free(a);
    tally_params_close(&p);
}

const tally_route tally_routes_log_model[] = {
    {TALLY_POST, "mlflow/runs/log-model", 1, 0, 0, 0, handle_log_model, "runs/log-model"},
    {0},
};
