/*
 * api_run_summaries.c — per-run metric summaries for the web UI's runs table
 * (docs/api.md, "Native API"):
 *
 *   GET, POST /api/2.0/tally/run-summaries
 *       run_ids (repeated, 1..1000), keys (repeated, optional: all keys of
 *       each run when absent)
 *   -> {"runs": [{"run_id": "...", "metrics": [
 *          {"key": "loss", "latest": 0.12, "step": 999, "timestamp": 1700..,
 *           "min": 0.1, "max": 2.3, "count": 1000}, ...]}, ...]}
 *
 * One element per requested run in request order; a run (or a key) with no
 * point has no entry in its metrics list. Summaries come from the engine's
 * series directory: O(1) per (run, key), no point decoded, so the table can
 * show latest/min/max columns for a page of runs in microseconds. latest is
 * MLflow's (greatest step, then timestamp); min and max are over non-NaN
 * values (NaN when every value is NaN). Runs are not looked up in the store.
 */
#include <stdlib.h>
#include <string.h>

#include "api_error.h"
#include "api_tracking.h"
#include "app.h"
#include "json_out.h"
#include "params.h"
#include "tally/engine.h"

#define SUMMARY_MAX_RUNS 1000
#define SUMMARY_MAX_KEYS 1000

static void write_summary(tally_json *j, const tally_series_info *si)
{
    tally_json_object_open(j);
    tally_json_key(j, "key");
    tally_json_string_n(j, si->key, si->key_len);
    tally_json_kv_double(j, "latest", si->latest.value);
    tally_json_kv_int(j, "step", si->latest.step);
    tally_json_kv_int(j, "timestamp", si->latest.timestamp_ms);
    tally_json_kv_double(j, "min", si->min_value);
    tally_json_kv_double(j, "max", si->max_value);
    tally_json_kv_int(j, "count", (int64_t)si->n_points);
    tally_json_object_close(j);
}

/* Every series of run_id (all keys), in creation order. */
static int write_all_keys(tally_json *j, tally_engine *e, const char *run_id)
{
    tally_series_id small[64], *ids = small;
    size_t n = 0, rlen = strlen(run_id);
    if (tally_engine_series_of_run(e, run_id, rlen, ids, 64, &n) != 0)
        return 0;
    if (n > 64) {
        size_t again = 0;
        ids = malloc(n * sizeof *ids);
        if (!ids)
            return -1;
        if (tally_engine_series_of_run(e, run_id, rlen, ids, n, &again) != 0) {
            free(ids);
            return 0;
        }
        if (again < n)
            n = again;
    }
    for (size_t i = 0; i < n; i++) {
        tally_series_info si;
        if (tally_engine_series_info(e, ids[i], &si) == 0 && si.n_points)
            write_summary(j, &si);
    }
    if (ids != small)
        free(ids);
    return 0;
}

static void handle_run_summaries(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    tally_params p;
    if (tally_params_open(&p, req, resp) != 0)
        return;
    const char **runs = NULL, **keys = NULL;
    size_t n_runs = 0, n_keys = 0;
    int r;
    if ((r = tally_params_strings(&p, "run_ids", &runs, &n_runs, resp)) < 0)
        goto done;
    if (r == 0 || n_runs == 0) {
        tally_params_missing(resp, "run_ids");
        goto done;
    }
    if (n_runs > SUMMARY_MAX_RUNS) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "run-summaries takes at most %d runs; got %zu.", SUMMARY_MAX_RUNS, n_runs);
        goto done;
    }
    if (tally_params_strings(&p, "keys", &keys, &n_keys, resp) < 0)
        goto done;
    if (n_keys > SUMMARY_MAX_KEYS) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "run-summaries takes at most %d keys; got %zu.", SUMMARY_MAX_KEYS, n_keys);
        goto done;
    }
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, "runs");
    tally_json_array_open(&j);
    for (size_t i = 0; i < n_runs; i++) {
        tally_json_object_open(&j);
        tally_json_kv_string(&j, "run_id", runs[i]);
        tally_json_key(&j, "metrics");
        tally_json_array_open(&j);
        if (n_keys == 0) {
            if (write_all_keys(&j, srv->engine, runs[i]) != 0) {
                tally_api_oom(resp);
                goto done;
            }
        } else {
            size_t rlen = strlen(runs[i]);
            for (size_t k = 0; k < n_keys; k++) {
                tally_series_id id;
                tally_series_info si;
                if (tally_engine_lookup(srv->engine, runs[i], rlen, keys[k], strlen(keys[k]),
                                        &id) == 0 &&
                    tally_engine_series_info(srv->engine, id, &si) == 0 && si.n_points)
                    write_summary(&j, &si);
            }
        }
        tally_json_array_close(&j);
        tally_json_object_close(&j);
    }
    tally_json_array_close(&j);
    tally_api_json_end(&j, resp);
done:
    tally_params_close(&p);
}

const tally_route tally_routes_run_summaries[] = {
    {TALLY_GET | TALLY_POST, "tally/run-summaries", 1, 0, 0, 0, handle_run_summaries,
     "tally/run-summaries"},
    {0, NULL, 0, 0, 0, 0, NULL, NULL},
};
