/*
 * api_metrics.c — MLflow's metric endpoints (mlflow-rest-api.md §3.3, §3.4,
 * §4.1, §4.4-§4.6):
 *
 *   POST mlflow/runs/log-metric                   one point (general path, params.c)
 *   POST mlflow/runs/log-batch                    the hot path (logbatch.c, jsmn)
 *   GET  mlflow/metrics/get-history               paged, (timestamp, step, value) order
 *   GET  mlflow/metrics/get-history-bulk-interval sampled multi-run history (§4.6)
 *   GET  mlflow/metrics/get-history-bulk          ajax only: several runs, full history
 *
 * Writes go to the engine as ONE tally_engine_append per request, so a
 * batch's metrics are all or nothing. log-batch writes params and tags first
 * (the store checks the run inside its transaction), then the metrics: a
 * client retrying after a 429 on the metrics repeats params with the same
 * values (a no-op) and tags (last wins), so the retry is safe.
 *
 * Non-finite values: NaN is stored bit-exactly and returned as "NaN"; +-inf
 * are stored as such and returned as "Infinity"/"-Infinity" — MLflow's SQL
 * store clamps them to +-1.7976931348623157e308 instead (§4.1). Both parse
 * in MLflow's clients; keeping them is lossless. Latest-value ordering treats
 * NaN as 0 (engine.h, MLflow's rule).
 *
 * Reads never check the run in the store: an unknown run simply has no
 * series, which is MLflow's answer (get-history of an unknown run is {}).
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
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
#include "params.h"
#include "stats.h"
#include "store.h"
#include "tally/query.h"

#define HISTORY_PAGE_MAX 25000     /* get-history: max_results is clamped to this */
#define HISTORY_FULL_PAGE 65536    /* points per engine page when max_results is absent */
#define BULK_INTERVAL_MAX_RUNS 100
#define BULK_INTERVAL_MAX_RESULTS 2500
#define BULK_MAX_RUNS 100
#define BULK_MAX_RESULTS 25000

/* ------------------------------------------------------------------------ */
/* Per-thread scratch                                                        */
/* ------------------------------------------------------------------------ */

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_destroy(void *p)
{
    tally__scratch *s = p;
    if (!s)
        return;
    tally_logbatch_free(&s->lb);
    tally_frame_decoder_free(&s->frame);
    free(s->points);
    free(s);
}

static void scratch_key_init(void) { scratch_key_ok = pthread_key_create(&scratch_key, scratch_destroy) == 0; }

tally__scratch *tally__scratch_get(void)
{
    pthread_once(&scratch_once, scratch_key_init);
    if (!scratch_key_ok)
        return NULL;
    tally__scratch *s = pthread_getspecific(scratch_key);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    tally_logbatch_init(&s->lb);
    tally_frame_decoder_init(&s->frame);
    if (pthread_setspecific(scratch_key, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

int tally__scratch_points(tally__scratch *s, size_t n)
{
    if (s->points_cap >= n)
        return 0;
    tally_point *p = realloc(s->points, n * sizeof *p);
    if (!p)
        return -1;
    s->points = p;
    s->points_cap = n;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                            */
/* ------------------------------------------------------------------------ */

void tally__engine_error(tally_resp *resp, int rc, int writing)
{
    switch (rc) {
    case TALLY_EBUSY:
    case TALLY_ENOMEM:
        tally_resp_error(resp, TALLY_API_REQUEST_LIMIT_EXCEEDED,
                         "The metric engine's memory budget is full; retry shortly (%s).",
                         tally_strerror(rc));
        tally_resp_header(resp, "Retry-After", "1");
        return;
    case TALLY_ETOOBIG:
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "The batch is larger than the metric engine's memory budget allows; "
                         "split it into smaller requests.");
        return;
    case TALLY_ECOLLISION:
        tally_resp_error(resp, TALLY_API_RESOURCE_CONFLICT,
                         "Series id collision between two (run, key) pairs: %s.",
                         tally_strerror(rc));
        return;
    case TALLY_EINVAL:
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid request: %s.",
                         tally_strerror(rc));
        return;
    case TALLY_ECORRUPT:
        if (!writing) {
            tally_resp_error(resp, TALLY_API_DATA_LOSS, "Stored metric data is damaged: %s.",
                             tally_strerror(rc));
            return;
        }
        break;
    case TALLY_ERETRY:
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE,
                         "Writes are paused after a disk error (%s); the server retries the "
                         "disk by itself and resumes.",
                         tally_strerror(rc));
        tally_resp_header(resp, "Retry-After", "1");
        return;
    case TALLY_EPOISONED:
    case TALLY_ECLOSED:
    case TALLY_ENOTFOUND:
    case TALLY_EVERSION:
    case TALLY_ELOCKED:
    default:
        break;
    }
    tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "The metric engine cannot %s now: %s.",
                     writing ? "accept writes" : "answer", tally_strerror(rc));
    tally_resp_header(resp, "Retry-After", "5");
}

int tally__run_writable(tally_server *srv, const char *run_id, tally_resp *resp)
{
    tally_run_state st;
    int rc = tally_store_run_state(srv->store, run_id, &st);
    if (rc != 0) {
        tally_api_store_error(resp, rc, "Could not read the run's state.");
        return -1;
    }
    if (!st.exists) {
        tally_resp_error(resp, TALLY_API_RESOURCE_DOES_NOT_EXIST, "Run with id=%.300s not found",
                         run_id);
        return -1;
    }
    if (!st.active) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "The run %.300s must be in the 'active' state. Current state is deleted.",
                         run_id);
        return -1;
    }
    return 1;
}

int tally__require_json_type(const tally_req *req, tally_resp *resp)
{
    const char *ct = req->content_type;
    if (!ct) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Bad Request. Content-Type header is missing.");
        return -1;
    }
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen("application/json");
    const char *p = ct + n;
    if (strncasecmp(ct, "application/json", n) == 0) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == 0 || *p == ';')
            return 1;
    }
    tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                     "Bad Request. Content-Type must be one of ['application/json'].");
    return -1;
}

void tally__put_int(tally_buf *b, int64_t v)
{
    char tmp[24], *e = tmp + sizeof tmp, *p = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    tally_buf_append(b, p, (size_t)(e - p));
}



static void out_of_memory(tally_resp *resp)
{
    tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "Out of memory.");
    tally_resp_header(resp, "Retry-After", "1");
}

/* '"key"' escaped once, to be repeated in every point of a series. */
static int escaped_key(const char *key, size_t len, tally_buf *out)
{
    tally_json j;
    tally_json_start(&j, out);
    tally_json_string_n(&j, key, len);
    return tally_buf_failed(out) ? -1 : 0;
}

/* Decimal digits of v at o; returns the end. */
static char *put_int_raw(char *o, int64_t v)
{
    char tmp[24], *e = tmp + sizeof tmp, *p = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    memcpy(o, p, (size_t)(e - p));
    return o + (e - p);
}

#define LIT(o, s) (memcpy((o), (s), sizeof(s) - 1), (o) + sizeof(s) - 1)

/* {"key":K,"value":V,"timestamp":T,"step":S[,"run_id":R]} with K and R
 * already JSON-escaped (quotes included). One reserve, then direct writes:
 * this runs once per point of every history answer. */
static void put_point(tally_buf *b, const tally_buf *key, const tally_point *pt,
                      const tally_buf *run_id)
{
    size_t need = key->len + (run_id ? run_id->len : 0) + 160;
    if (tally_buf_reserve(b, need) != 0)
        return;
    char *o = b->data + b->len;
    o = LIT(o, "{\"key\":");
    memcpy(o, key->data, key->len);
    o += key->len;
    o = LIT(o, ",\"value\":");
    b->len = (size_t)(o - b->data);
    tally_buf_put_double(b, pt->value); /* reserved above: no reallocation */
    o = b->data + b->len;
    o = LIT(o, ",\"timestamp\":");
    o = put_int_raw(o, pt->timestamp_ms);
    o = LIT(o, ",\"step\":");
    o = put_int_raw(o, pt->step);
    if (run_id) {
        o = LIT(o, ",\"run_id\":");
        memcpy(o, run_id->data, run_id->len);
        o += run_id->len;
    }
    *o++ = '}';
    *o = 0;
    b->len = (size_t)(o - b->data);
}

/* ------------------------------------------------------------------------ */
/* POST mlflow/runs/log-metric                                               */
/* ------------------------------------------------------------------------ */

static void handle_log_metric(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    tally_params p;
    if (tally_params_open(&p, req, resp) != 0)
        return;
    const char *run_id, *key;
    double value;
    int64_t ts, step = 0;
    if (tally_api_require_run_id(&p, &run_id, resp) < 0 ||
        tally_api_require(&p, "key", &key, resp) < 0 ||
        tally_params_require_double(&p, "value", &value, resp) < 0 ||
        tally_params_require_int64(&p, "timestamp", &ts, resp) < 0 ||
        tally_params_int64(&p, "step", &step, resp) < 0)
        goto done;
    char msg[512];
    if (tally__key_check(key, strlen(key), "Metric", "key", msg, sizeof msg) != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "%s", msg);
        goto done;
    }
    if (ts < 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid value %" PRId64 " for parameter 'timestamp' supplied: metric "
                         "timestamp must be a nonnegative long (64-bit integer) ",
                         ts);
        goto done;
    }
    if (tally__run_writable(srv, run_id, resp) < 0)
        goto done;
    tally_series_batch b = {run_id, strlen(run_id), key, strlen(key), 1, &step, &ts, &value};
    int rc = tally_engine_append(srv->engine, &b, 1);
    if (rc != 0) {
        tally__engine_error(resp, rc, 1);
        goto done;
    }
    tally_stats_add_points(srv->stats, 1);
    tally_api_ok_empty(resp);
done:
    tally_params_close(&p);
}

/* ------------------------------------------------------------------------ */
/* POST mlflow/runs/log-batch                                                */
/* ------------------------------------------------------------------------ */

static void handle_log_batch(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    if (tally__require_json_type(req, resp) < 0)
        return;
    tally__scratch *s = tally__scratch_get();
    if (!s) {
        out_of_memory(resp);
        return;
    }
    tally_logbatch *lb = &s->lb;
    const char *body = req->body ? req->body : "";
    size_t len = req->body ? req->body_len : 0;
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) { /* a UTF-8 BOM */
        body += 3;
        len -= 3;
    }
    int rc = tally_logbatch_parse(lb, body, len);
    if (rc != 0) {
        if (rc == -1)
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "%s", lb->message);
        else
            out_of_memory(resp);
        goto done;
    }
    if (lb->n_params || lb->n_tags) {
        /* Checks the run (exists, active) in the same transaction. */
        char err[512];
        err[0] = 0;
        rc = tally_store_log_batch_params_tags(srv->store, lb->run_id, lb->params, lb->n_params,
                                               lb->tags, lb->n_tags, err, sizeof err);
        if (rc != 0) {
            tally_api_store_error(resp, rc, err);
            goto done;
        }
    } else if (tally__run_writable(srv, lb->run_id, resp) < 0) {
        goto done;
    }
    if (lb->n_series) {
        rc = tally_engine_append(srv->engine, lb->series, lb->n_series);
        if (rc != 0) {
            tally__engine_error(resp, rc, 1);
            goto done;
        }
        tally_stats_add_points(srv->stats, lb->n_metrics);
    }
    tally_api_ok_empty(resp);
done:
    tally_logbatch_trim(lb);
}

/* ------------------------------------------------------------------------ */
/* GET mlflow/metrics/get-history                                            */
/* ------------------------------------------------------------------------ */

static void handle_get_history(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    tally_params p;
    if (tally_params_open(&p, req, resp) != 0)
        return;
    tally_buf key_json = {0};
    const char *run_id, *key, *token = NULL;
    int32_t max_results = 0;
    int has_max;
    if (tally_api_require_run_id(&p, &run_id, resp) < 0 ||
        tally_api_require(&p, "metric_key", &key, resp) < 0 ||
        (has_max = tally_params_int32(&p, "max_results", &max_results, resp)) < 0 ||
        tally_params_string(&p, "page_token", &token, resp) < 0)
        goto done;
    if (has_max && max_results <= 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid value %" PRId32 " for parameter 'max_results' supplied: it "
                         "must be a positive integer.",
                         max_results);
        goto done;
    }
    size_t page = has_max ? (max_results > HISTORY_PAGE_MAX ? HISTORY_PAGE_MAX : (size_t)max_results)
                          : HISTORY_FULL_PAGE;
    tally__scratch *s = tally__scratch_get();
    if (!s || tally__scratch_points(s, page) != 0 || escaped_key(key, strlen(key), &key_json) != 0) {
        out_of_memory(resp);
        goto done;
    }
    tally_history_req hr = {tally_series_id_of(run_id, strlen(run_id), key, strlen(key)),
                            TALLY_HISTORY_BY_TIME, INT64_MIN, INT64_MAX, token, page};
    /* Two token buffers: the request's token must not be the buffer the
     * next token is written into. */
    char tokens[2][TALLY_PAGE_TOKEN_MAX];
    char *next = tokens[0];
    tally_buf *b = &resp->body;
    tally_buf_reset(b);
    size_t total = 0;
    for (int round = 0;; round++) {
        size_t n = 0;
        next = tokens[round & 1];
        int rc = tally_history_page(srv->engine, &hr, s->points, page, &n, next);
        if (rc != 0) {
            if (rc == TALLY_EINVAL)
                tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                                 "Invalid page token for metric '%.250s' of run %.64s.", key,
                                 run_id);
            else
                tally__engine_error(resp, rc, 0);
            goto done;
        }
        if (n && total == 0) {
            tally_buf_reserve(b, n * 80 + 64);
            tally_buf_append(b, "{\"metrics\":[", 12);
        }
        for (size_t i = 0; i < n; i++) {
            if (total + i)
                tally_buf_putc(b, ',');
            put_point(b, &key_json, &s->points[i], NULL);
        }
        total += n;
        /* A page of max_results ends here; without max_results, follow the
         * engine's own tokens until the series is exhausted. */
        if (has_max || !next[0] || n == 0)
            break;
        if (hr.page_token && strcmp(hr.page_token, next) == 0) {
            /* A token that does not move would loop forever: refuse. */
            tally_resp_error(resp, TALLY_API_INTERNAL_ERROR,
                             "History paging made no progress for metric '%.250s'.", key);
            goto done;
        }
        hr.page_token = next;
    }
    if (total == 0) {
        if (has_max && next[0]) {
            tally_buf_puts(b, "{\"next_page_token\":\"");
            tally_buf_puts(b, next);
            tally_buf_puts(b, "\"}");
        } else {
            tally_buf_puts(b, "{}");
        }
    } else {
        tally_buf_putc(b, ']');
        if (has_max && next[0]) {
            tally_buf_puts(b, ",\"next_page_token\":\"");
            tally_buf_puts(b, next); /* printable ASCII, no escaping needed */
            tally_buf_putc(b, '"');
        }
        tally_buf_putc(b, '}');
    }
    tally_api_ok_json(resp);
done:
    tally_buf_free(&key_json);
    tally_params_close(&p);
}

/* ------------------------------------------------------------------------ */
/* GET mlflow/metrics/get-history-bulk-interval                              */
/* ------------------------------------------------------------------------ */

static void handle_bulk_interval(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    tally_params p;
    if (tally_params_open(&p, req, resp) != 0)
        return;
    const char **run_ids = NULL, *key;
    size_t n_runs = 0;
    int64_t start_step = 0, end_step = 0;
    int32_t max_results = BULK_INTERVAL_MAX_RESULTS;
    int has_start, has_end;
    tally_series_id *ids = NULL;
    tally_run_points *res = NULL;
    tally_buf key_json = {0}, run_json = {0};

    /* MLflow's order: run_ids, metric_key, max_results, then the range. */
    int r = tally_params_strings(&p, "run_ids", &run_ids, &n_runs, resp);
    if (r < 0)
        goto done;
    if (r == 0 || n_runs == 0) {
        tally_params_missing(resp, "run_ids");
        goto done;
    }
    if (n_runs > BULK_INTERVAL_MAX_RUNS) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "GetMetricHistoryBulkInterval request must specify at most %d run_ids. "
                         "Received %zu run_ids.",
                         BULK_INTERVAL_MAX_RUNS, n_runs);
        goto done;
    }
    if (tally_api_require(&p, "metric_key", &key, resp) < 0 ||
        tally_params_int32(&p, "max_results", &max_results, resp) < 0)
        goto done;
    if (max_results < 1 || max_results > BULK_INTERVAL_MAX_RESULTS) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "max_results must be between 1 and %d.", BULK_INTERVAL_MAX_RESULTS);
        goto done;
    }
    if ((has_start = tally_params_int64(&p, "start_step", &start_step, resp)) < 0 ||
        (has_end = tally_params_int64(&p, "end_step", &end_step, resp)) < 0)
        goto done;
    if (has_start != has_end) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "If either start step or end step are specified, both must be "
                         "specified.");
        goto done;
    }
    if (has_start && start_step > end_step) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "end_step must be greater than start_step. Found start_step=%" PRId64
                         " and end_step=%" PRId64 ".",
                         start_step, end_step);
        goto done;
    }

    ids = calloc(n_runs, sizeof *ids);
    res = calloc(n_runs, sizeof *res);
    if (!ids || !res || escaped_key(key, strlen(key), &key_json) != 0) {
        out_of_memory(resp);
        goto done;
    }
    size_t key_len = strlen(key);
    for (size_t i = 0; i < n_runs; i++)
        ids[i] = tally_series_id_of(run_ids[i], strlen(run_ids[i]), key, key_len);
    int rc = tally_mlflow_bulk_interval(srv->engine, ids, n_runs, has_start, start_step, end_step,
                                        (uint32_t)max_results, res);
    if (rc != 0) {
        tally__engine_error(resp, rc, 0);
        goto done;
    }
    tally_buf *b = &resp->body;
    tally_buf_reset(b);
    size_t total = 0;
    for (size_t i = 0; i < n_runs; i++)
        total += res[i].n_points;
    if (total == 0) {
        tally_buf_puts(b, "{}");
    } else {
        tally_buf_reserve(b, total * 120 + 64);
        tally_buf_append(b, "{\"metrics\":[", 12);
        size_t k = 0;
        for (size_t i = 0; i < n_runs; i++) {
            if (!res[i].n_points)
                continue;
            tally_buf_reset(&run_json);
            if (escaped_key(run_ids[i], strlen(run_ids[i]), &run_json) != 0) {
                out_of_memory(resp);
                goto done;
            }
            for (size_t j = 0; j < res[i].n_points; j++, k++) {
                if (k)
                    tally_buf_putc(b, ',');
                put_point(b, &key_json, &res[i].points[j], &run_json);
            }
        }
        tally_buf_append(b, "]}", 2);
    }
    tally_api_ok_json(resp);
done:
    if (res)
        for (size_t i = 0; i < n_runs; i++)
            tally_run_points_free(&res[i]);
    free(res);
    free(ids);
    tally_buf_free(&key_json);
    tally_buf_free(&run_json);
    tally_params_close(&p);
}

/* ------------------------------------------------------------------------ */
/* GET /ajax-api/2.0/mlflow/metrics/get-history-bulk                         */
/* ------------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void handle_bulk(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    tally_params p;
    if (tally_params_open(&p, req, resp) != 0)
        return;
    const char **run_ids = NULL, *key;
    size_t n_runs = 0;
    int32_t max_results = BULK_MAX_RESULTS;
    const char **sorted = NULL;
    tally_buf key_json = {0}, run_json = {0};

    int r = tally_params_strings(&p, "run_id", &run_ids, &n_runs, resp);
    if (r < 0)
        goto done;
    if (r == 0 || n_runs == 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "GetMetricHistoryBulk request must specify at least one run_id.");
        goto done;
    }
    if (n_runs > BULK_MAX_RUNS) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "GetMetricHistoryBulk request cannot specify more than %d run_ids. "
                         "Received %zu run_ids.",
                         BULK_MAX_RUNS, n_runs);
        goto done;
    }
    r = tally_params_string(&p, "metric_key", &key, resp);
    if (r < 0)
        goto done;
    if (r == 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "GetMetricHistoryBulk request must specify a metric_key.");
        goto done;
    }
    if (tally_params_int32(&p, "max_results", &max_results, resp) < 0)
        goto done;
    if (max_results <= 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "max_results must be a positive integer.");
        goto done;
    }
    if (max_results > BULK_MAX_RESULTS)
        max_results = BULK_MAX_RESULTS;

    /* (run_id, timestamp, step, value): runs in id order, each run's points
     * in get-history order; a run id given twice is read once. */
    sorted = malloc(n_runs * sizeof *sorted);
    tally__scratch *s = tally__scratch_get();
    if (!sorted || !s || tally__scratch_points(s, (size_t)max_results) != 0 ||
        escaped_key(key, strlen(key), &key_json) != 0) {
        out_of_memory(resp);
        goto done;
    }
    memcpy(sorted, run_ids, n_runs * sizeof *sorted);
    qsort(sorted, n_runs, sizeof *sorted, cmp_str);
    tally_buf *b = &resp->body;
    tally_buf_reset(b);
    tally_buf_append(b, "{\"metrics\":[", 12);
    size_t left = (size_t)max_results, k = 0;
    for (size_t i = 0; i < n_runs && left > 0; i++) {
        if (i && strcmp(sorted[i], sorted[i - 1]) == 0)
            continue;
        tally_history_req hr = {tally_series_id_of(sorted[i], strlen(sorted[i]), key, strlen(key)),
                                TALLY_HISTORY_BY_TIME, INT64_MIN, INT64_MAX, NULL, left};
        size_t n = 0;
        char next[TALLY_PAGE_TOKEN_MAX];
        int rc = tally_history_page(srv->engine, &hr, s->points, left, &n, next);
        if (rc != 0) {
            tally__engine_error(resp, rc, 0);
            goto done;
        }
        if (!n)
            continue;
        tally_buf_reset(&run_json);
        if (escaped_key(sorted[i], strlen(sorted[i]), &run_json) != 0) {
            out_of_memory(resp);
            goto done;
        }
        for (size_t j = 0; j < n; j++, k++) {
            if (k)
                tally_buf_putc(b, ',');
            put_point(b, &key_json, &s->points[j], &run_json);
        }
        left -= n;
    }
    tally_buf_append(b, "]}", 2);
    tally_api_ok_json(resp);
done:
    free(sorted);
    tally_buf_free(&key_json);
    tally_buf_free(&run_json);
    tally_params_close(&p);
}

/* ------------------------------------------------------------------------ */
/* Routes                                                                    */
/* ------------------------------------------------------------------------ */

const tally_route tally_routes_metrics[] = {
    {TALLY_POST, "mlflow/runs/log-metric", 1, 0, 0, 0, handle_log_metric, "runs/log-metric"},
    {TALLY_POST, "mlflow/runs/log-batch", 1, 0, 0, 0, handle_log_batch, "runs/log-batch"},
    {TALLY_GET, "mlflow/metrics/get-history", 1, 0, 0, 0, handle_get_history,
     "metrics/get-history"},
    {TALLY_GET, "mlflow/metrics/get-history-bulk-interval", 1, 0, 0, 0, handle_bulk_interval,
     "metrics/get-history-bulk-interval"},
    {TALLY_GET, "mlflow/metrics/get-history-bulk", 1, 1, 0, 0, handle_bulk,
     "metrics/get-history-bulk"},
    {0, NULL, 0, 0, 0, 0, NULL, NULL},
};
