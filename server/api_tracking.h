/*
 * api_tracking.h — helpers shared by the tracking handlers
 * (api_experiments.c, api_runs.c; api_metrics.c may use them too): MLflow
 * JSON shapes of experiments and runs (mlflow-rest-api.md §2), store error
 * codes to MLflow errors, required-field reading with MLflow's "empty string
 * is missing" rule, and offset page tokens.
 */
#ifndef TALLY_SERVER_API_TRACKING_H
#define TALLY_SERVER_API_TRACKING_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "json_out.h"
#include "params.h"
#include "store.h"

/* Fills resp with the MLflow error for a store code (store.h) and message. */
void tally_api_store_error(tally_resp *resp, int rc, const char *msg);

/* A string field MLflow's handlers mark _assert_required: absent, null and
 * "" are all "Missing value for required parameter". 1 or -1 (resp filled). */
int tally_api_require(tally_params *p, const char *name, const char **out, tally_resp *resp);

/* run_id, falling back to run_uuid (§1.2); missing -> error about run_id. */
int tally_api_require_run_id(tally_params *p, const char **out, tally_resp *resp);

/* With authentication on, drops from ids[0..*n) the experiments the caller
 * of req may not read (authz.h), keeping the order: searches filter in the
 * query itself, so pages stay full (mlflow-auth.md §5, "Do: filter").
 * 0, or -1 with resp filled (the permission lookup failed). */
int tally_api_keep_readable_experiments(tally_server *srv, const tally_req *req, tally_arena *a,
                                        int64_t *ids, size_t *n, tally_resp *resp);

/* An experiment id string: decimal digits (an optional '-'), fitting int64.
 * 1 with *out, or -1 after a 400 INVALID_PARAMETER_VALUE in resp. */
int tally_api_parse_experiment_id(const char *s, int64_t *out, tally_resp *resp);

/* Offset page tokens, MLflow's format: base64 of {"offset": N}. encode
 * writes a NUL-terminated token (cap >= 64). decode returns 0 with *offset,
 * or -1 for a malformed token. NULL or "" decode to offset 0. */
void tally_api_page_token_encode(uint64_t offset, char *out, size_t cap);
int tally_api_page_token_decode(const char *token, uint64_t *offset);

/* JSON objects of §2. */
void tally_api_write_experiment(tally_json *j, const tally_experiment *e);
void tally_api_write_run_info(tally_json *j, const tally_run_info *info);
/* {"info":..., "data":{metrics, params, tags}, "inputs":{...}}; metrics are
 * the latest value per key from the engine (may be NULL: no metrics). */
void tally_api_write_run(tally_json *j, tally_engine *engine, const tally_run *run);

/* The "tags" array of {key, value} objects, omitted when n == 0. */
void tally_api_write_kvs(tally_json *j, const char *name, const tally_kv *kv, size_t n);

/* Reads a repeated {key, value} message field (tags, params): an array of
 * objects with a string key and an optional string value. what names the
 * field ("tags"). *out lives in a. 1 (present), 0 (absent) or -1. */
int tally_api_read_kvs(tally_params *p, const char *name, tally_arena *a, tally_kv **out,
                       size_t *n, tally_resp *resp);

/* Opens the request's params as p, or returns from the handler (resp filled). */
#define TALLY_API_OPEN_PARAMS(p, req, resp)                                                 \
    tally_params p;                                                                        \
    if (tally_params_open(&p, (req), (resp)) != 0)                                         \
    return

/* ViewType names and values (mlflow-rest-api.md §2) for tally_params_enum. */
extern const char *const tally_api_view_names[3];
extern const int tally_api_view_values[3];

/* 200 with "{}". */
void tally_api_ok_empty(tally_resp *resp);
/* Finishes a JSON response built in resp->body: 200, or 503 if the buffer
 * could not grow. */
void tally_api_ok_json(tally_resp *resp);
/* A JSON object answer: begin empties resp->body and opens the object;
 * end closes it and finishes (tally_api_ok_json). */
void tally_api_json_begin(tally_json *j, tally_resp *resp);
void tally_api_json_end(tally_json *j, tally_resp *resp);
/* A page of a list answer, {"<key>": [rows], "next_page_token": ...}: the
 * key is left out when n == 0 (MLflow's empty repeated field), the token
 * (of next_offset) only when more. Between begin and end, write the n rows. */
void tally_api_list_begin(tally_json *j, tally_resp *resp, const char *key, size_t n);
void tally_api_list_end(tally_json *j, tally_resp *resp, size_t n, int more, uint64_t next_offset);
/* A store call's outcome: 200 "{}" when rc is 0, else its MLflow error. */
void tally_api_store_done(tally_resp *resp, int rc, const char *err);
/* 503 TEMPORARILY_UNAVAILABLE "Out of memory." */
void tally_api_oom(tally_resp *resp);

#endif /* TALLY_SERVER_API_TRACKING_H */
