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
#include "native_compact.h"
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

static const char *const method_names[] = {"m4", "lttb", "buckets"};
static const int method_values[] = {TALLY_DS_M4, TALLY_DS_LTTB, TALLY_DS_BUCKETS};
static const char *const axis_names[] = {"step", "time", "relative"};
static const int axis_values[] = {TALLY_X_STEP, TALLY_X_TIME, TALLY_X_RELATIVE_TIME};

static void put_u32(tally_buf *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    tally_buf_append(b, t, 4);
}

static void put_u64(tally_buf *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    tally_buf_append(b, t, 8);
}

/* A point's x in the request's axis; base is the series' first timestamp
 * for relative time (the engine's downsampler uses the same origin). */
static int64_t x_of(const tally_ds_req *q, int64_t base, const tally_point *p)
{
    switch (q->x_axis) {
    case TALLY_X_STEP:
        return p->step;
    case TALLY_X_TIME:
        return p->timestamp_ms;
    case TALLY_X_RELATIVE_TIME:
    default:
        return (int64_t)((uint64_t)p->timestamp_ms - (uint64_t)base);
    }
}

/* Appends n little-endian float64 taken from src by get(i); the buffer has
 * been reserved, so this writes straight into it. */
#define PUT_F64_COLUMN(b, n, expr)                                                          \
    do {                                                                                    \
        uint8_t *o_ = (uint8_t *)(b)->data + (b)->len;                                      \
        for (size_t k = 0; k < (n); k++, o_ += 8) {                                         \
            double d_ = (expr);                                                             \
            uint64_t u_;                                                                    \
            memcpy(&u_, &d_, 8);                                                            \
            for (int i_ = 0; i_ < 8; i_++)                                                  \
                o_[i_] = (uint8_t)(u_ >> (8 * i_));                                         \
        }                                                                                   \
        (b)->len += 8 * (size_t)(n);                                                        \
    } while (0)

/* Binary layout: docs/api.md, "Native API" > "Query response, binary". */
static void write_binary(tally_buf *b, const tally_ds_req *q, const tally_ds_result *res,
                         const int64_t *base, size_t n)
{
    size_t bytes = 16;
    for (size_t i = 0; i < n; i++)
        bytes += 32 + (q->method == TALLY_DS_BUCKETS ? 56 * res[i].n_buckets : 16 * res[i].n_points);
    if (tally_buf_reserve(b, bytes) != 0)
        return;
    tally_buf_append(b, "TLYQ", 4);
    uint8_t v[4] = {1, 0, (uint8_t)q->method, (uint8_t)q->x_axis};
    tally_buf_append(b, v, 4);
    put_u32(b, (uint32_t)n);
    put_u32(b, q->width);
    for (size_t i = 0; i < n; i++) {
        const tally_ds_result *r = &res[i];
        size_t cnt = q->method == TALLY_DS_BUCKETS ? r->n_buckets : r->n_points;
        put_u32(b, (uint32_t)cnt);
        put_u32(b, 0);
        put_u64(b, r->n_source);
        put_u64(b, (uint64_t)(r->n_source ? r->x_lo : 0));
        put_u64(b, (uint64_t)(r->n_source ? r->x_hi : 0));
        const tally_bucket *bk = r->buckets;
        const tally_point *pt = r->points;
        if (q->method == TALLY_DS_BUCKETS) {
            PUT_F64_COLUMN(b, cnt, (double)bk[k].x_lo);
            PUT_F64_COLUMN(b, cnt, (double)bk[k].x_hi);
            PUT_F64_COLUMN(b, cnt, (double)bk[k].count);
            PUT_F64_COLUMN(b, cnt, (double)bk[k].n_nan);
            PUT_F64_COLUMN(b, cnt, bk[k].min);
            PUT_F64_COLUMN(b, cnt, bk[k].max);
            PUT_F64_COLUMN(b, cnt, bk[k].mean);
        } else {
            PUT_F64_COLUMN(b, cnt, (double)x_of(q, base[i], &pt[k]));
            PUT_F64_COLUMN(b, cnt, pt[k].value);
        }
    }
    b->data[b->len] = 0; /* buf.h keeps the bytes NUL-terminated */
}

/* A JSON string at the end of b (escaped, quoted). */
static void put_string(tally_buf *b, const char *str)
{
    tally_json j;
    tally_json_start(&j, b);
    tally_json_string(&j, str);
}

/* ,"name":[v,v,...] for column c of a result (see write_json). */
static void put_column(tally_buf *b, const char *name, const tally_ds_req *q,
                       const tally_ds_result *r, int64_t base, int c)
{
    tally_buf_puts(b, ",\"");
    tally_buf_puts(b, name);
    tally_buf_puts(b, "\":[");
    size_t n = q->method == TALLY_DS_BUCKETS ? r->n_buckets : r->n_points;
    for (size_t k = 0; k < n; k++) {
        if (k)
            tally_buf_putc(b, ',');
        const tally_bucket *bk = q->method == TALLY_DS_BUCKETS ? &r->buckets[k] : NULL;
        switch (c) {
        case 0: tally__put_int(b, bk->x_lo); break;
        case 1: tally__put_int(b, bk->x_hi); break;
        case 2: tally__put_int(b, (int64_t)bk->count); break;
        case 3: tally__put_int(b, (int64_t)bk->n_nan); break;
        case 4: tally_buf_put_double(b, bk->min); break;
        case 5: tally_buf_put_double(b, bk->max); break;
        case 6: tally_buf_put_double(b, bk->mean); break;
        case 7: tally__put_int(b, x_of(q, base, &r->points[k])); break;
        default: tally_buf_put_double(b, r->points[k].value); break;
        }
    }
    tally_buf_putc(b, ']');
}

/* JSON layout: docs/api.md, "Native API" > "Query response, JSON". Written
 * by hand: the columns are where the bytes are. */
static void write_json(tally_buf *b, const tally_ds_req *q, const char *key, const char *const *runs,
                       const tally_ds_result *res, const int64_t *base, size_t n)
{
    static const char *const bucket_cols[] = {"x_lo", "x_hi", "count", "n_nan", "min", "max",
                                              "mean"};
    tally_buf_puts(b, "{\"key\":");
    put_string(b, key);
    tally_buf_puts(b, ",\"x_axis\":\"");
    tally_buf_puts(b, axis_names[q->x_axis]);
    tally_buf_puts(b, "\",\"method\":\"");
    tally_buf_puts(b, method_names[q->method]);
    tally_buf_puts(b, "\",\"width\":");
    tally__put_int(b, q->width);
    tally_buf_puts(b, ",\"series\":[");
    for (size_t i = 0; i < n; i++) {
        const tally_ds_result *r = &res[i];
        tally_buf_puts(b, i ? ",{\"run_id\":" : "{\"run_id\":");
        put_string(b, runs[i]);
        tally_buf_puts(b, ",\"n_source\":");
        tally__put_int(b, (int64_t)r->n_source);
        if (r->n_source) {
            tally_buf_puts(b, ",\"range\":[");
            tally__put_int(b, r->x_lo);
            tally_buf_putc(b, ',');
            tally__put_int(b, r->x_hi);
            tally_buf_putc(b, ']');
        }
        if (q->method == TALLY_DS_BUCKETS) {
            for (int c = 0; c < 7; c++)
                put_column(b, bucket_cols[c], q, r, base[i], c);
        } else {
            put_column(b, "x", q, r, base[i], 7);
            put_column(b, "y", q, r, base[i], 8);
        }
        tally_buf_putc(b, '}');
    }
    tally_buf_puts(b, "]}");
}

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
    int64_t *base = NULL;

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
    if (tally_params_enum(&p, "x_axis", axis_names, axis_values, 3, &axis, resp) < 0 ||
        tally_params_enum(&p, "method", method_names, method_values, 3, &method, resp) < 0 ||
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

    tally_ds_req q = {(tally_ds_method)method, (tally_x_axis)axis, !has_lo, x_lo, x_hi,
                      (uint32_t)width};
    ids = malloc(n_runs * sizeof *ids);
    res = calloc(n_runs, sizeof *res);
    base = calloc(n_runs, sizeof *base);
    if (!ids || !res || !base) {
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "Out of memory.");
        goto done;
    }
    size_t key_len = strlen(key);
    for (size_t i = 0; i < n_runs; i++)
        ids[i] = tally_series_id_of(runs[i], strlen(runs[i]), key, key_len);
    int rc = tally_downsample_bulk(srv->engine, ids, n_runs, &q, res);
    if (rc != 0) {
        tally__engine_error(resp, rc, 0);
        goto done;
    }
    if (q.x_axis == TALLY_X_RELATIVE_TIME) {
        for (size_t i = 0; i < n_runs; i++) {
            tally_series_info info;
            if (res[i].n_source && tally_engine_series_info(srv->engine, ids[i], &info) == 0)
                base[i] = info.min_timestamp_ms;
        }
    }
    tally_buf *b = &resp->body;
    tally_buf_reset(b);
    if (format && strcasecmp(format, "binary32") == 0) { /* native_compact.h */
        char why[200];
        if (tally__compact_check(&q, res, base, n_runs, why, sizeof why) != 0) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "%s.", why);
            goto done;
        }
        tally__compact_write(b, &q, res, base, n_runs);
        resp->content_type = "application/octet-stream";
    } else if (wants_binary(req, format)) {
        write_binary(b, &q, res, base, n_runs);
        resp->content_type = "application/octet-stream";
    } else {
        write_json(b, &q, key, runs, res, base, n_runs);
    }
    if (tally_buf_failed(b)) {
        tally_buf_free(b);
        memset(b, 0, sizeof *b);
        resp->content_type = NULL;
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "Out of memory.");
        goto done;
    }
    resp->status = 200;
done:
    if (res)
        for (size_t i = 0; i < n_runs; i++)
            tally_ds_result_free(&res[i]);
    free(res);
    free(ids);
    free(base);
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
