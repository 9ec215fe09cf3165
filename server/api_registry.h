/*
 * api_registry.h — what the model registry handlers (api_registry_models.c,
 * api_registry_versions.c) share: the JSON shapes of RegisteredModel and
 * ModelVersion (mlflow-rest-api.md §2), the `version` request field, the
 * search paging prologue, and the registry events for webhooks
 * (mlflow-webhooks.md §5).
 *
 * Shapes follow MLflow's SQL store: description, run_id and run_link are
 * stored "" when not given and always emitted; user_id is never filled;
 * model_id, deployment_job_id only when set; empty tags, aliases and
 * latest_versions are omitted; version is a string, timestamps JSON numbers.
 */
#ifndef TALLY_SERVER_API_REGISTRY_H
#define TALLY_SERVER_API_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "buf.h"
#include "json_out.h"
#include "params.h"
#include "search.h"
#include "store_registry.h"

void tally_api_write_model_version(tally_json *j, const tally_model_version *v);
void tally_api_write_registered_model(tally_json *j, const tally_registered_model *m);

/* {"<key>": <model version>} as the whole 200 response. */
void tally_api_respond_model_version(tally_resp *resp, const char *key,
                                     const tally_model_version *v);
/* {"registered_model": ...} as the whole 200 response. */
void tally_api_respond_registered_model(tally_resp *resp, const tally_registered_model *m);

/* The required `version` field: 1 with *out (and its text in *text), or -1
 * after a 400 (missing, or not an integer). */
int tally_api_require_version(tally_params *p, int64_t *out, const char **text,
                              tally_resp *resp);

/* What a registry search request asked for, parsed and checked: filter and
 * order in `mode`, the page offset, and max_results (default def, at most
 * max; outside 1..max is a 400 naming the limit). */
typedef struct tally_api_search_req {
    tally_search_filter *filter;  /* NULL when none */
    tally_search_order *order;    /* tie-breakers included */
    uint64_t offset;
    size_t max_results;
} tally_api_search_req;

/* 1 on success (free with tally_api_search_req_free), -1 with resp filled. */
int tally_api_search_req_parse(tally_params *p, tally_search_mode mode, int64_t def, int64_t max,
                               tally_api_search_req *out, tally_resp *resp);
void tally_api_search_req_free(tally_api_search_req *r);

/* registered-models/search (mode TALLY_SEARCH_MODELS) and model-versions/
 * search (TALLY_SEARCH_VERSIONS), whole: the request (max_results default
 * def, at most max), the caller's readable models, one store page, the
 * JSON list with its next_page_token. */
void tally_api_registry_search(tally_server *srv, const tally_req *req, tally_resp *resp,
                               tally_search_mode mode, int64_t def, int64_t max);

/* The models the caller of req may read (authz.h), as a search restriction
 * for the store: *only = NULL (every model: auth off, or an admin) or out
 * filled in a (names in the arena). 0, or -1 with resp filled. */
int tally_api_readable_models(tally_server *srv, const tally_req *req, tally_arena *a,
                              tally_model_names *out, const tally_model_names **only,
                              tally_resp *resp);

/* ---- events (mlflow-webhooks.md §5) ------------------------------------- */

/* A registry change that may emit an event runs in a store write scope
 * (store.h), so that the change and the deliveries it queues commit
 * together — a crash loses both or neither:
 *
 *     int scoped = 0;                 (before any goto out)
 *     ...parse...
 *     if ((scoped = tally_api_event_scope_begin(srv, resp)) < 0) goto out;
 *     ...store change, response, tally_api_event_begin/emit...
 *   out:
 *     tally_api_event_scope_end(srv, scoped, resp);
 *
 * begin: 1 (scope open), 0 (no hook: nothing to do), or -1 with resp filled
 * (503). end: does nothing unless scoped is 1; commits when resp holds no
 * error, else rolls back; a failed commit replaces resp with a 503; after
 * a commit it wakes the webhook dispatcher. */
int tally_api_event_scope_begin(tally_server *srv, tally_resp *resp);
void tally_api_event_scope_end(tally_server *srv, int scoped, tally_resp *resp);

/* An event's `data` object under construction: open with
 * tally_api_event_begin, add fields with the json writer, then
 * tally_api_event_emit, which closes it and queues it through
 * srv->registry_event (when set) — inside the handler's scope. If it cannot
 * be queued (out of memory, the store failed), resp becomes a 503 and the
 * scope's end rolls the change back. The writer and buffer are the
 * caller's; nothing happens without a hook (begin returns 0 and the caller
 * skips the fields). */
typedef struct tally_api_event {
    tally_buf buf;
    tally_json j;
} tally_api_event;

/* 1 if srv has a hook (ev opened), else 0. */
int tally_api_event_begin(tally_server *srv, tally_api_event *ev);
void tally_api_event_emit(tally_server *srv, tally_api_event *ev, const char *entity,
                          const char *action, tally_resp *resp);

/* "tags": {key: value, ...} as a JSON object in the Python dict's order
 * (first occurrence of a key, its last value), leaving out the keys in
 * skip (NULL-terminated, may be NULL). */
void tally_api_event_tags(tally_json *j, const tally_kv *tags, size_t n,
                          const char *const *skip);

/* A value, or null when s is NULL or "". */
void tally_api_string_or_null(tally_json *j, const char *s);

#endif /* TALLY_SERVER_API_REGISTRY_H */
