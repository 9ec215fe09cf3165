/*
 * ops.c — the operations endpoints, absolute paths outside the MLflow API:
 *
 *   GET /health   "OK" (text/plain), for load balancers and MLflow clients
 *   GET /version  the MLflow version we are compatible with, plain text
 *                 (server.h TALLY_MLFLOW_COMPAT_VERSION; clients compare it)
 *   GET /metrics  Prometheus text exposition of the server's own metrics
 *                 (stats.c: per-route counters and latency histograms,
 *                 engine and process statistics)
 *
 * Invariant: these handlers touch neither the store nor the request body, so
 * /health answers while the store is slow or the body is garbage.
 */
#include <string.h>

#include "app.h"
#include "server.h"
#include "stats.h"

static void handle_health(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    (void)srv;
    (void)req;
    resp->status = 200;
    resp->content_type = "text/plain; charset=utf-8";
    tally_buf_puts(&resp->body, "OK");
}

static void handle_version(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    (void)srv;
    (void)req;
    resp->status = 200;
    resp->content_type = "text/plain; charset=utf-8";
    tally_buf_puts(&resp->body, TALLY_MLFLOW_COMPAT_VERSION);
    tally_resp_header(resp, "X-Tally-Version", TALLY_SERVER_VERSION);
}

static void handle_metrics(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    (void)req;
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    if (srv->stats)
        tally_stats_write_prometheus(srv->stats, srv->engine, srv->started_ms, &resp->body);
}

const tally_route tally_routes_ops[] = {
    {TALLY_GET, "/health", 0, 0, 0, 0, handle_health, "health"},
    {TALLY_GET, "/version", 0, 0, 0, 0, handle_version, "version"},
    {TALLY_GET, "/metrics", 0, 0, 0, 0, handle_metrics, "metrics"},
    {0, NULL, 0, 0, 0, 0, NULL, NULL},
};
