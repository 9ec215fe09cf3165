/*
 * native.c — Tally's native API (docs/api.md, "Native API"):
 *
 *   POST /api/2.0/tally/ingest   one binary columnar frame (native_frame.h)
 *                                appended as ONE tally_engine_append: all
 *                                series of the frame or none
 *   GET, POST /api/2.0/tally/query
 *                                downsampled series of many runs x one key
 *                                (M4, LTTB or min/max/mean buckets) as
 *                                compact columnar JSON or, with
 *                                format=binary or Accept:
 *                                application/octet-stream, binary columns
 *
 * Both are also mounted under /ajax-api/2.0/ (the UI's prefix).
 *
 * Ingest checks, in order, each failure a 400 INVALID_PARAMETER_VALUE
 * naming the problem: the frame (native_frame.h invariants (1)-(5)); each
 * series' key (MLflow's key rule, logbatch.h) and run id length; each run
 * exists (404 RESOURCE_DOES_NOT_EXIST) and is active (400), looked up once
 * per distinct run id in the store's cache. Engine errors as log-batch's
 * (api_metrics.h: 429 + Retry-After when the budget is full, 503 when the
 * engine cannot write).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_error.h"
#include "json_num.h"
#include "api_metrics.h"
#include "api_tracking.h"
#include "app.h"
#include "json_out.h"
#include "native_frame.h"
#include "native_answer.h"
#include "params.h"
#include "stats.h"
#include "store.h"
#include "tally/query.h"

#define QUERY_MAX_RUNS 1000
#define QUERY_MAX_WIDTH 65536
#define QUERY_DEFAULT_WIDTH 1000
#define QUERY_MAX_CELLS (4u << 20) /* runs x width */
#define CHECKED_RUNS 64            /* distinct runs remembered per frame before re-asking */

/* ------------------------------------------------------------------------ */
/* POST tally/ingest                                                         */
/* ------------------------------------------------------------------------ */

static int same_run(const tally_series_batch *a, const tally_series_batch *b)
{
    return a->run_id_len == b->run_id_len && memcmp(a->run_id, b->run_id, a->run_id_len) == 0;
}

static void handle_ingest(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    tally__scratch *s = tally__scratch_get();
    if (!s) {
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "Out of memory.");
        return;
    }
    tally_frame_decoder *d = &s->frame;
    char err[256];
    int rc = tally_frame_decode(d, req->body, req->body_len, 0, err, sizeof err);
    if (rc != 0) {
        if (rc == TALLY_ENOMEM) {
            tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "Out of memory.");
            tally_resp_header(resp, "Retry-After", "1");
        } else {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid ingest frame: %s.",
                             err);
        }
        return;
    }

    /* Keys first (no store access), then runs. */
    char msg[512], path[48];
    for (size_t i = 0; i < d->n_series; i++) {
        const tally_series_batch *b = &d->series[i];
        if (i == 0 || b->key_len != d->series[i - 1].key_len ||
            memcmp(b->key, d->series[i - 1].key, b->key_len) != 0) {
            snprintf(path, sizeof path, "series[%zu].key", i);
            if (tally__key_check(b->key, b->key_len, "Metric", path, msg, sizeof msg) != 0) {
                tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "%s", msg);
                return;
            }
        }
    }
    size_t checked[CHECKED_RUNS], n_checked = 0;
    for (size_t i = 0; i < d->n_series; i++) {
        const tally_series_batch *b = &d->series[i];
        int known = 0;
        for (size_t k = 0; k < n_checked && !known; k++)
            known = same_run(b, &d->series[checked[k]]);
        if (known)
            continue;
        char run_id[TALLY_FRAME_MAX_RUN_ID + 1];
        memcpy(run_id, b->run_id, b->run_id_len);
        run_id[b->run_id_len] = 0;
        if (memchr(b->run_id, 0, b->run_id_len)) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                             "Invalid run id in series[%zu]: it contains a NUL byte.", i);
            return;
        }
        if (tally__run_writable(srv, run_id, resp) < 0)
            return;
        if (n_checked < CHECKED_RUNS)
            checked[n_checked++] = i;
        else
            checked[i % CHECKED_RUNS] = i;
    }

    if (d->n_series) {
        rc = tally_engine_append(srv->engine, d->series, d->n_series);
        if (rc != 0) {
            tally__engine_error(resp, rc, 1);
            return;
        }
        tally_stats_add_points(srv->stats, d->n_points);
    }
    tally_buf *o = &resp->body;
    tally_buf_reset(o);
    tally_buf_puts(o, "{\"series\":");
    tally__put_int(o, (int64_t)d->n_series);
    tally_buf_puts(o, ",\"points\":");
    tally__put_int(o, (int64_t)d->n_points);
    tally_buf_putc(o, '}');
    resp->status = 200;
}

/* ------------------------------------------------------------------------ */
/* GET/POST tally/query                                                      */
/* ------------------------------------------------------------------------ */

static const int method_values[] = {TALLY_DS_M4, TALLY_DS_LTTB, TALLY_DS_BUCKETS};
static const int axis_values[] = {TALLY_X_STEP, TALLY_X_TIME, TALLY_X_RELATIVE_TIME};

static int wants_binary(const tally_req *req, const char *format)
{
    if (format && *format)
        return strcasecmp(format, "binary") == 0;
    const char *accept = tally_req_header(req, "Accept");
    return accept && strstr(accept, "application/octet-stream") != NULL;
}

static void handle_query(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    tally_params p;
    if (tally_params_open(&p, req, resp) != 0)
        return;
    const char **runs = NULL, *key = NULL, *format = NULL;
    size_t n_runs = 0;
    int method = TALLY_DS_M4, axis = TALLY_X_STEP;
    int32_t width = QUERY_DEFAULT_WIDTH;
    int64_t x_lo = 0, x_hi = 0;
    int has_lo, has_hi, r;
    tally_series_id *ids = NULL;
    tally_ds_result *res = NULL;
    tally__answer *ans = NULL;

    if ((r = tally_params_strings(&p, "run_ids", &runs, &n_runs, resp)) < 0)
        goto done;
    if (r == 0 && (r = tally_params_strings(&p, "run_id", &runs, &n_runs, resp)) < 0)
        goto done;
    if (r == 0 || n_runs == 0) {
        tally_params_missing(resp, "run_ids");
        goto done;
    }
    if (n_runs > QUERY_MAX_RUNS) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "A query may name at most %d runs; got %zu.", QUERY_MAX_RUNS, n_runs);
        goto done;
    }
    if ((r = tally_params_string(&p, "key", &key, resp)) < 0)
        goto done;
    if (r == 0 && (r = tally_params_string(&p, "metric_key", &key, resp)) < 0)
        goto done;
    if (r == 0 || !*key) {
        tally_params_missing(resp, "key");
        goto done;
    }
    if (tally_params_enum(&p, "x_axis", tally__answer_axis_names, axis_values, 3, &axis, resp) < 0 ||
        tally_params_enum(&p, "method", tally__answer_method_names, method_values, 3, &method, resp) < 0 ||
        tally_params_int32(&p, "width", &width, resp) < 0 ||
        (has_lo = tally_params_int64(&p, "x_lo", &x_lo, resp)) < 0 ||
        (has_hi = tally_params_int64(&p, "x_hi", &x_hi, resp)) < 0 ||
        tally_params_string(&p, "format", &format, resp) < 0)
        goto done;
    if (width < 1 || width > QUERY_MAX_WIDTH) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "width must be between 1 and %d; got %" PRId32 ".", QUERY_MAX_WIDTH, width);
        goto done;
    }
    if ((uint64_t)n_runs * (uint64_t)width > QUERY_MAX_CELLS) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "runs x width may be at most %u; got %zu x %" PRId32 ".", QUERY_MAX_CELLS,
                         n_runs, width);
        goto done;
    }
    if (has_lo != has_hi) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "x_lo and x_hi must be given together.");
        goto done;
    }
    if (has_lo && x_lo > x_hi) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "x_lo (%" PRId64 ") must not exceed x_hi (%" PRId64 ").", x_lo, x_hi);
        goto done;
    }
    if (format && *format && strcasecmp(format, "json") != 0 && strcasecmp(format, "binary") != 0 &&
        strcasecmp(format, "binary32") != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "format must be json, binary or binary32; got '%.40s'.", format);
        goto done;
    }

    tally__answer_format fmt = format && strcasecmp(format, "binary32") == 0 ? TALLY__ANSWER_BINARY32
                               : wants_binary(req, format)                   ? TALLY__ANSWER_BINARY
                                                                             : TALLY__ANSWER_JSON;
    if (fmt == TALLY__ANSWER_BINARY32 && method == TALLY_DS_BUCKETS) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "format binary32 serves method m4 or lttb, not buckets.");
        goto done;
    }
    tally_ds_req q = {(tally_ds_method)method, (tally_x_axis)axis, !has_lo, x_lo, x_hi,
                      (uint32_t)width};
    ids = malloc(n_runs * sizeof *ids);
    res = calloc(n_runs, sizeof *res);
    if (!ids || !res || !(ans = tally__answer_new(fmt, &q, srv->engine, ids, runs, n_runs))) {
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "Out of memory.");
        goto done;
    }
    size_t key_len = strlen(key);
    for (size_t i = 0; i < n_runs; i++)
        ids[i] = tally_series_id_of(runs[i], strlen(runs[i]), key, key_len);
    /* each series is encoded by the worker that computed it (native_answer.h) */
    int rc = tally_downsample_bulk_each(srv->engine, ids, n_runs, &q, res, tally__answer_series,
                                        ans);
    if (rc != 0) {
        tally__engine_error(resp, rc, 0);
        goto done;
    }
    char why[200];
    rc = tally__answer_gather(ans, key, why, sizeof why);
    if (rc == 1) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "%s.", why);
        goto done;
    }
    if (rc != 0) {
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "Out of memory.");
        goto done;
    }
    /* the answer's pieces go out as they are; http.c frees them once sent */
    resp->pieces = ans->ranges;
    resp->n_pieces = ans->n_ranges;
    resp->pieces_free = tally__answer_free;
    resp->pieces_ctx = ans;
    ans = NULL;
    if (fmt != TALLY__ANSWER_JSON)
        resp->content_type = "application/octet-stream";
    resp->status = 200;
done:
    if (res)
        for (size_t i = 0; i < n_runs; i++)
            tally_ds_result_free(&res[i]);
    tally__answer_free(ans);
    free(res);
    free(ids);
    tally_params_close(&p);
}

/* ------------------------------------------------------------------------ */
/* Routes                                                                    */
/* ------------------------------------------------------------------------ */

const tally_route tally_routes_native[] = {
    {TALLY_POST, "tally/ingest", 1, 0, 0, 0, handle_ingest, "tally/ingest"},
    {TALLY_GET | TALLY_POST, "tally/query", 1, 0, 0, 0, handle_query, "tally/query"},
    {0, NULL, 0, 0, 0, 0, NULL, NULL},
};
