/*
 * app.h — the server's shared context and route tables: what every handler
 * file sees. One tally_server per process, created by `tally serve`
 * (server.c), holding the configuration, the engine, the metadata store and
 * the server's own metrics.
 *
 * Routes: each handler file exports a NULL-terminated array of tally_route;
 * routes.c lists those arrays (one line per file) and dispatches. A route
 * with api_prefix set is mounted under both /api/2.0/ and /ajax-api/2.0/
 * (ajax_only: only the latter); path is then relative ("mlflow/runs/get").
 * Otherwise path is absolute ("/health"). prefix_match matches path as a
 * prefix (artifact routes: the rest is req->sub_path).
 *
 * Handlers run on libmicrohttpd's worker threads, many at once: anything
 * they share lives behind the store's, the engine's or their own locks.
 */
#ifndef TALLY_SERVER_APP_H
#define TALLY_SERVER_APP_H

#include <stdint.h>

#include "config.h"
#include "http.h"
#include "tally/engine.h"

typedef struct tally_store tally_store;
typedef struct tally_stats tally_stats;
typedef struct tally_auth tally_auth;
typedef struct tally_artifact_syncer tally_artifact_syncer;

typedef struct tally_server {
    tally_config cfg;        /* effective configuration */
    tally_engine *engine;    /* metric engine over <data>/metrics */
    tally_store *store;      /* metadata store (SQLite at <data>/meta.db by default) */
    tally_stats *stats;      /* the server's own metrics (/metrics) */
    int64_t started_ms;      /* wall time at start */
    tally_auth *auth;        /* users, permissions, tokens (auth.h); NULL when auth is off */
    struct tally_audit *audit; /* the audit log writer (audit.h); NULL when auth is off */
    tally_artifact_syncer *artifact_syncer; /* artifact_sync.h; NULL with artifact_fsync always */

    /* Registry events (mlflow-webhooks.md §5). A registry handler that may
     * emit one runs its change in a store write scope (api_registry.h:
     * tally_api_event_scope_begin/end); registry_event, when set, queues the
     * event inside that scope, so the change and its deliveries commit
     * together (0, or -1 with a message: the handler then rolls the change
     * back and answers 503); after the commit the handler calls
     * registry_events_committed, which wakes the dispatcher. entity and
     * action as in the delivery body ("model_version", "created"), data the
     * event's `data` object as JSON text in the order §5 gives. Set once at
     * start by the webhook dispatcher (ctx registry_event_ctx) before the
     * HTTP layer starts; neither call waits on a receiver. */
    int (*registry_event)(void *ctx, const char *entity, const char *action,
                          const char *data_json, char *err, size_t cap);
    void (*registry_events_committed)(void *ctx);
    void *registry_event_ctx;
} tally_server;

typedef void (*tally_handler_fn)(tally_server *srv, const tally_req *req, tally_resp *resp);

typedef struct tally_route {
    unsigned methods;        /* OR of tally_method */
    const char *path;        /* see the file comment */
    int api_prefix;          /* mounted under /api/2.0/ and /ajax-api/2.0/ */
    int ajax_only;           /* only under /ajax-api/2.0/ */
    int prefix_match;        /* path is a prefix */
    int streaming_body;      /* the handler takes the body in pieces (uploads) */
    tally_handler_fn fn;
    const char *name;        /* label for logs and /metrics, e.g. "runs/get" */
} tally_route;

#endif /* TALLY_SERVER_APP_H */
