/*
 * api_audit.c — the audit log over HTTP (admins only, authz.c):
 *
 *   GET /api/2.0/tally/audit/search
 *       username, route     exact matches (optional)
 *       since_ms, until_ms  time window [since, until) in ms since the epoch
 *       max_results         1..1000, default 100
 *       page_token          from the previous page
 *   -> {"records": [{id, time_ms, username, method, route, path, resource,
 *                    status, remote}, ...], "next_page_token": "..."}
 *
 * Newest first. The page token is the id the next page starts below, so
 * records appended while a client pages never shift or repeat a page.
 * Records are written by authz.c (tally_authz_after) for every
 * state-changing request of an authenticated caller.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_error.h"
#include "api_tracking.h"
#include "app.h"
#include "audit.h"
#include "json_out.h"
#include "params.h"
#include "store_auth.h"

#define AUDIT_DEFAULT 100
#define AUDIT_MAX 1000

static void handle_audit_search(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    if (!srv->auth) {
        tally_resp_error(resp, TALLY_API_ENDPOINT_NOT_FOUND,
                         "Authentication is not enabled on this server (start it with --auth); "
                         "there is no audit log.");
        return;
    }
    /* Every record queued so far is committed before we read (audit.h (2)). */
    if (srv->audit)
        tally_audit_sync(srv->audit);
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    char err[512] = "";
    const char *user = NULL, *route = NULL, *token = NULL;
    int64_t since = 0, until = 0, max = 0;
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_params_string(&p, "username", &user, resp) < 0 ||
        tally_params_string(&p, "route", &route, resp) < 0 ||
        tally_params_int64(&p, "since_ms", &since, resp) < 0 ||
        tally_params_int64(&p, "until_ms", &until, resp) < 0 ||
        tally_params_int64(&p, "max_results", &max, resp) < 0 ||
        tally_params_string(&p, "page_token", &token, resp) < 0)
        goto out;
    if (max == 0)
        max = AUDIT_DEFAULT;
    if (max < 1 || max > AUDIT_MAX || since < 0 || until < 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "max_results must be from 1 to %d; since_ms and until_ms must not be "
                         "negative.",
                         AUDIT_MAX);
        goto out;
    }
    tally_audit_query q;
    memset(&q, 0, sizeof q);
    q.username = user && *user ? user : NULL;
    q.route = route && *route ? route : NULL;
    q.since_ms = since;
    q.until_ms = until;
    q.limit = (size_t)max;
    if (token && *token) {
        char *end;
        long long v = strtoll(token, &end, 10);
        if (*end || v <= 0) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid page token.");
            goto out;
        }
        q.before_id = v;
    }
    tally_audit_record *recs;
    size_t n;
    int more;
    int rc = tally_store_audit_search(srv->store, &q, a, &recs, &n, &more, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, "records");
    tally_json_array_open(&j);
    for (size_t i = 0; i < n; i++) {
        const tally_audit_record *r = &recs[i];
        tally_json_object_open(&j);
        tally_json_kv_int(&j, "id", r->id);
        tally_json_kv_int(&j, "time_ms", r->time_ms);
        tally_json_kv_string(&j, "username", r->username);
        tally_json_kv_string(&j, "method", r->method);
        tally_json_kv_string(&j, "route", r->route);
        tally_json_kv_string(&j, "path", r->path);
        tally_json_kv_string(&j, "resource", r->resource);
        tally_json_kv_int(&j, "status", r->status);
        tally_json_kv_string(&j, "remote", r->remote);
        tally_json_object_close(&j);
    }
    tally_json_array_close(&j);
    if (more && n) {
        char tok[32];
        snprintf(tok, sizeof tok, "%" PRId64, recs[n - 1].id);
        tally_json_kv_string(&j, "next_page_token", tok);
    }
    tally_api_json_end(&j, resp);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

const tally_route tally_routes_audit[] = {
    {TALLY_GET, "tally/audit/search", 1, 0, 0, 0, handle_audit_search, "audit/search"},
    {0},
};
