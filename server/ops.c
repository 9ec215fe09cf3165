/*
 * ops.c — the operations endpoints, absolute paths outside the MLflow API:
 *
 *   GET /health   "OK" (text/plain), for load balancers and MLflow clients
 *   GET /version  the MLflow version we are compatible with, plain text
 *                 (server.h TALLY_MLFLOW_COMPAT_VERSION; clients compare it)
 *   GET /metrics  Prometheus text exposition of the server's own metrics
 *                 (stats.c: per-route counters and latency histograms,
 *                 engine and process statistics; the artifact syncer's
 *                 counters in background mode, artifact_sync.h)
 *
 * Invariant: these handlers touch neither the store nor the request body, so
 * /health answers while the store is slow or the body is garbage.
 */
#include <inttypes.h>
#include <string.h>

#include "app.h"
#include "artifact_sync.h"
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
    if (srv->artifact_syncer) {
        tally_artifact_sync_stats st;
        tally_artifact_syncer_stats(srv->artifact_syncer, &st);
        static const char *const help[][3] = {
            {"tally_artifact_sync_pushed_total", "counter",
             "Artifact uploads acknowledged before their fsync and queued for it."},
            {"tally_artifact_sync_synced_total", "counter",
             "Queued artifact uploads fsync'd (file and directory)."},
            {"tally_artifact_sync_failed_total", "counter",
             "Queued artifact uploads whose fsync failed after the acknowledgement."},
            {"tally_artifact_sync_refused_total", "counter",
             "Artifact uploads that found the queue full and fsync'd before their 200."},
            {"tally_artifact_sync_queued", "gauge", "Artifact uploads waiting for their fsync."},
        };
        uint64_t v[] = {st.pushed, st.synced, st.failed, st.refused, (uint64_t)st.queued};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
            tally_buf_printf(&resp->body, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n",
                             help[i][0], help[i][2], help[i][0], help[i][1], help[i][0], v[i]);
    }
}

const tally_route tally_routes_ops[] = {
    {TALLY_GET, "/health", 0, 0, 0, 0, handle_health, "health"},
    {TALLY_GET, "/version", 0, 0, 0, 0, handle_version, "version"},
    {TALLY_GET, "/metrics", 0, 0, 0, 0, handle_metrics, "metrics"},
    {0, NULL, 0, 0, 0, 0, NULL, NULL},
};
