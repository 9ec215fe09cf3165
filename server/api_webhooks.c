/*
 * api_webhooks.c — MLflow's webhook endpoints (mlflow-webhooks.md §3, §4,
 * §7) and Tally's delivery-log extensions, all under /api/2.0/ and
 * /ajax-api/2.0/:
 *
 *   POST   mlflow/webhooks                       create
 *   GET    mlflow/webhooks                       list (newest first, paged)
 *   GET    mlflow/webhooks/{id}                  get
 *   PATCH  mlflow/webhooks/{id}                  partial update
 *   DELETE mlflow/webhooks/{id}                  soft delete
 *   POST   mlflow/webhooks/{id}/test             one synchronous delivery
 *   -- Tally extensions (docs/api.md) --
 *   GET    mlflow/webhooks/{id}/deliveries       the delivery log, newest first, paged
 *   POST   mlflow/webhooks/{id}/deliveries       queue an example event (through the queue)
 *   GET    mlflow/webhooks/{id}/deliveries/{d}   one delivery with its attempts
 *   POST   mlflow/webhooks/{id}/deliveries/{d}/redeliver   queue it again (new id, fresh time)
 *
 * The id is only ever read from the path. Secrets are accepted and never
 * written into any response. Handlers never wait on a receiver except
 * /test, whose synchronous answer is MLflow's contract.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api_error.h"
#include "api_tracking.h"
#include "app.h"
#include "json_out.h"
#include "params.h"
#include "store_webhooks.h"
#include "webhooks.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000
#define URL_MAX 500
#define DESCRIPTION_MAX 1000
#define TEST_BODY_CAP (1u << 20) /* response_body of /test, bytes */

static const char *const status_names[2] = {"ACTIVE", "DISABLED"};
static const int status_values[2] = {TALLY_WEBHOOK_ACTIVE, TALLY_WEBHOOK_DISABLED};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The running dispatcher, or NULL (the hook is ours only when it is
 * tally_webhooks_registry_event). */
static tally_webhooks *dispatcher(tally_server *srv)
{
    return srv->registry_event == tally_webhooks_registry_event ? srv->registry_event_ctx : NULL;
}

/* The policy in force: the dispatcher's, or the environment's. */
static void policy(tally_server *srv, tally_webhook_policy *p)
{
    tally_webhooks *w = dispatcher(srv);
    char err[256];
    if (w)
        *p = *tally_webhooks_policy(w);
    else if (tally_webhook_policy_from_env(p, err, sizeof err) != 0)
        tally_webhook_policy_defaults(p);
}

/* ------------------------------------------------------------------------ */
/* JSON out                                                                  */
/* ------------------------------------------------------------------------ */

static void json_upper(tally_json *j, const char *key, const char *lower)
{
    char up[64];
    size_t i = 0;
    for (; lower[i] && i + 1 < sizeof up; i++)
        up[i] = (char)toupper((unsigned char)lower[i]);
    up[i] = 0;
    tally_json_kv_string(j, key, up);
}

static void write_webhook(tally_json *j, const tally_webhook *w)
{
    tally_json_object_open(j);
    tally_json_kv_string(j, "webhook_id", w->webhook_id);
    tally_json_kv_string(j, "name", w->name);
    if (w->description && *w->description)
        tally_json_kv_string(j, "description", w->description);
    tally_json_kv_string(j, "url", w->url);
    tally_json_key(j, "events");
    tally_json_array_open(j);
    for (size_t i = 0; i < w->n_events; i++) {
        tally_json_object_open(j);
        json_upper(j, "entity", w->events[i].entity);
        json_upper(j, "action", w->events[i].action);
        tally_json_object_close(j);
    }
    tally_json_array_close(j);
    tally_json_kv_string(j, "status", w->status == TALLY_WEBHOOK_DISABLED ? "DISABLED" : "ACTIVE");
    tally_json_kv_int(j, "creation_timestamp", w->creation_ms);
    tally_json_kv_int(j, "last_updated_timestamp", w->last_updated_ms);
    /* Invariant: w->secret is never written. */
    tally_json_object_close(j);
}

static void respond_webhook(tally_resp *resp, const tally_webhook *w)
{
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, "webhook");
    write_webhook(&j, w);
    tally_api_json_end(&j, resp);
}

static void write_delivery(tally_json *j, const tally_delivery *d)
{
    char ev[96];
    snprintf(ev, sizeof ev, "%s.%s", d->entity, d->action);
    tally_json_object_open(j);
    tally_json_kv_string(j, "delivery_id", d->delivery_id);
    tally_json_kv_string(j, "webhook_id", d->webhook_id);
    tally_json_kv_string(j, "event", ev);
    int state = d->state == TALLY_DELIVERY_IN_FLIGHT ? TALLY_DELIVERY_PENDING : d->state;
    tally_json_kv_string(j, "state", tally_delivery_state_name(state));
    tally_json_kv_int(j, "attempts", d->attempts);
    tally_json_kv_int(j, "timestamp", d->timestamp_s);
    tally_json_kv_int(j, "creation_timestamp", d->created_ms);
    if (state == TALLY_DELIVERY_PENDING)
        tally_json_kv_int(j, "next_attempt_timestamp", d->next_attempt_ms);
    else
        tally_json_kv_int(j, "finished_timestamp", d->finished_ms);
    if (d->last_status)
        tally_json_kv_int(j, "last_response_status", d->last_status);
    if (d->last_error && *d->last_error)
        tally_json_kv_string(j, "last_error", d->last_error);
    tally_json_kv_string(j, "payload", d->body);
    tally_json_key(j, "attempt_log");
    tally_json_array_open(j);
    for (size_t i = 0; i < d->n_log; i++) {
        const tally_delivery_attempt *t = &d->log[i];
        tally_json_object_open(j);
        tally_json_kv_int(j, "attempt", t->attempt);
        tally_json_kv_int(j, "timestamp", t->started_ms);
        tally_json_kv_int(j, "duration_ms", t->duration_ms);
        if (t->response_status)
            tally_json_kv_int(j, "response_status", t->response_status);
        if (t->error && *t->error)
            tally_json_kv_string(j, "error", t->error);
        if (t->response_snippet && *t->response_snippet)
            tally_json_kv_string(j, "response_snippet", t->response_snippet);
        tally_json_object_close(j);
    }
    tally_json_array_close(j);
    tally_json_object_close(j);
}

static void respond_delivery(tally_resp *resp, const tally_delivery *d)
{
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, "delivery");
    write_delivery(&j, d);
    tally_api_json_end(&j, resp);
}

/* ------------------------------------------------------------------------ */
/* Validation (§4)                                                           */
/* ------------------------------------------------------------------------ */

static int validate_name(const char *name, tally_resp *resp)
{
    size_t n = strlen(name);
    int ok = n >= 1 && n <= 63 && isalnum((unsigned char)name[0]) &&
             isalnum((unsigned char)name[n - 1]);
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        ok = (ch < 128 && isalnum(ch)) || ch == '.' || ch == '_' || ch == '-';
    }
    if (ok)
        return 1;
    tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                     "Invalid webhook name '%.100s'. Name must be 1 to 63 characters long, "
                     "contain only letters, digits, '.', '_' and '-', and start and end with a "
                     "letter or digit.",
                     name);
    return -1;
}

static int validate_url(const tally_webhook_policy *pol, const char *url, tally_resp *resp)
{
    const char *p = url;
    while (*p && isspace((unsigned char)*p))
        p++;
    if (!*p) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Webhook URL cannot be empty.");
        return -1;
    }
    if (strlen(url) > URL_MAX) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Webhook URL must be at most %d characters long.", URL_MAX);
        return -1;
    }
    if (!tally_webhook_scheme_allowed(pol->allowed_schemes, url)) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid webhook URL scheme in '%.200s'. Allowed schemes are: %s.", url,
                         pol->allowed_schemes);
        return -1;
    }
    return 1;
}

/* An enum field of an event object: a name (any case) or a number of
 * names[]. 1 with *out, or -1 (resp filled). */
static int event_enum(const cJSON *obj, const char *field, const char *where,
                      const char *const *names, int n, const char *type, int *out,
                      tally_resp *resp)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!v || cJSON_IsNull(v)) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Missing value for required parameter '%s.%s'.", where, field);
        return -1;
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d >= 0 && d < n && d == (double)(int)d) {
            *out = (int)d;
            return 1;
        }
    } else if (cJSON_IsString(v) && v->valuestring) {
        for (int i = 0; i < n; i++)
            if (strcasecmp(v->valuestring, names[i]) == 0) {
                *out = i;
                return 1;
            }
    }
    char *txt = cJSON_PrintUnformatted(v);
    tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                     "Invalid value %.100s for parameter '%s.%s': expected a %s name or number.",
                     txt ? txt : "?", where, field, type);
    free(txt);
    return -1;
}

/* One WebhookEvent object into lower-case (entity, action). */
static int parse_event(const cJSON *obj, const char *where, tally_webhook_event *out,
                       tally_resp *resp)
{
    if (!cJSON_IsObject(obj)) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid value for parameter '%s': expected a WebhookEvent object.",
                         where);
        return -1;
    }
    int e, a;
    if (event_enum(obj, "entity", where, tally_webhook_entities, 10, "WebhookEntity", &e, resp) <
            0 ||
        event_enum(obj, "action", where, tally_webhook_actions, 5, "WebhookAction", &a, resp) < 0)
        return -1;
    if (e == 0 || a == 0) {
        /* MLflow fails with a 500 here; a client mistake is a 400. */
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid webhook event in '%s': entity and action must be specified "
                         "(not ENTITY_UNSPECIFIED or ACTION_UNSPECIFIED).",
                         where);
        return -1;
    }
    out->entity = tally_webhook_entities[e];
    out->action = tally_webhook_actions[a];
    if (!tally_webhook_event_valid(out->entity, out->action)) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid action '%s' for entity '%s'. Valid actions are: %s",
                         out->action, out->entity, tally_webhook_valid_actions(out->entity));
        return -1;
    }
    return 1;
}

/* The events array: 1 with a de-duplicated list in a, 0 when absent or
 * empty, -1 on error. */
static int read_events(tally_params *p, tally_arena *a, tally_webhook_event **out, size_t *n,
                       tally_resp *resp)
{
    *out = NULL;
    *n = 0;
    cJSON *arr;
    int rc = tally_params_array(p, "events", &arr, resp);
    if (rc <= 0)
        return rc;
    int count = cJSON_GetArraySize(arr);
    if (count == 0)
        return 0;
    *out = tally_arena_alloc(a, (size_t)count * sizeof **out);
    if (!*out) {
        tally_api_oom(resp);
        return -1;
    }
    int i = 0;
    for (const cJSON *el = arr->child; el; el = el->next, i++) {
        char where[32];
        snprintf(where, sizeof where, "events[%d]", i);
        tally_webhook_event ev;
        if (parse_event(el, where, &ev, resp) < 0)
            return -1;
        int dup = 0;
        for (size_t k = 0; k < *n && !dup; k++)
            dup = (*out)[k].entity == ev.entity && (*out)[k].action == ev.action;
        if (!dup)
            (*out)[(*n)++] = ev;
    }
    return 1;
}

static int events_missing(tally_resp *resp)
{
    tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                     "Webhook events must be a non-empty list of WebhookEvent objects: []");
    return -1;
}

/* ------------------------------------------------------------------------ */
/* CRUD                                                                      */
/* ------------------------------------------------------------------------ */

static void handle_create(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    tally_webhook_policy pol;
    policy(srv, &pol);
    tally_webhook w;
    memset(&w, 0, sizeof w);
    const char *desc = NULL, *secret = NULL;
    char *sealed = NULL; /* the secret's stored form (secret_box.h) */
    int status = TALLY_WEBHOOK_ACTIVE;
    char err[512] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "name", &w.name, resp) < 0 ||
        validate_name(w.name, resp) < 0 ||
        tally_api_require(&p, "url", &w.url, resp) < 0 ||
        validate_url(&pol, w.url, resp) < 0)
        goto out;
    int rc = read_events(&p, a, &w.events, &w.n_events, resp);
    if (rc < 0 || (rc == 0 && events_missing(resp) < 0))
        goto out;
    if (tally_params_string(&p, "description", &desc, resp) < 0 ||
        tally_params_string(&p, "secret", &secret, resp) < 0 ||
        tally_params_enum(&p, "status", status_names, status_values, 2, &status, resp) < 0)
        goto out;
    if (desc && strlen(desc) > DESCRIPTION_MAX) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Webhook description must be at most %d characters long.",
                         DESCRIPTION_MAX);
        goto out;
    }
    tally_webhook_uuid4(w.webhook_id);
    w.description = desc ? desc : "";
    sealed = tally_webhooks_seal_secret(dispatcher(srv), secret ? secret : "");
    if (!sealed) {
        tally_api_oom(resp);
        goto out;
    }
    w.secret = sealed;
    w.status = status;
    w.creation_ms = w.last_updated_ms = wall_ms();
    rc = tally_store_webhook_create(srv->store, &w, err, sizeof err);
    if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        respond_webhook(resp, &w);
out:
    free(sealed);
    tally_arena_free(a);
    tally_params_close(&p);
}

/* max_results (1..LIST_MAX) and page_token. 0, or -1 (resp filled). */
static int read_paging(tally_params *p, size_t *max, uint64_t *offset, tally_resp *resp)
{
    int32_t m = LIST_DEFAULT;
    const char *tok = NULL;
    if (tally_params_int32(p, "max_results", &m, resp) < 0 ||
        tally_params_string(p, "page_token", &tok, resp) < 0)
        return -1;
    if (m < 1 || m > LIST_MAX) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "max_results must be between 1 and %d.", LIST_MAX);
        return -1;
    }
    if (tally_api_page_token_decode(tok, offset) != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid page token.");
        return -1;
    }
    *max = (size_t)m;
    return 0;
}

static void handle_list(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    size_t max = 0, n = 0;
    uint64_t offset = 0;
    int more = 0;
    tally_webhook *v = NULL;
    char err[512] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (read_paging(&p, &max, &offset, resp) < 0)
        goto out;
    int rc = tally_store_webhook_list(srv->store, max, offset, a, &v, &n, &more, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_json j;
    tally_api_list_begin(&j, resp, "webhooks", n);
    for (size_t i = 0; i < n; i++)
        write_webhook(&j, &v[i]);
    tally_api_list_end(&j, resp, n, more, offset + n);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void do_get(tally_server *srv, const char *id, tally_resp *resp)
{
    tally_arena *a = tally_arena_new();
    char err[512] = "";
    tally_webhook w;
    if (!a) {
        tally_api_oom(resp);
        return;
    }
    int rc = tally_store_webhook_get(srv->store, id, a, &w, err, sizeof err);
    if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        respond_webhook(resp, &w);
    tally_arena_free(a);
}

static void do_update(tally_server *srv, const char *id, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    tally_webhook_policy pol;
    policy(srv, &pol);
    tally_webhook_patch patch;
    memset(&patch, 0, sizeof patch);
    const char *name = NULL, *desc = NULL, *url = NULL, *secret = NULL;
    char *sealed = NULL; /* the new secret's stored form (secret_box.h) */
    tally_webhook_event *ev = NULL;
    size_t n_ev = 0;
    int status = 0;
    char err[512] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_params_string(&p, "name", &name, resp) < 0 ||
        tally_params_string(&p, "description", &desc, resp) < 0 ||
        tally_params_string(&p, "url", &url, resp) < 0 ||
        tally_params_string(&p, "secret", &secret, resp) < 0 ||
        read_events(&p, a, &ev, &n_ev, resp) < 0 ||
        tally_params_enum(&p, "status", status_names, status_values, 2, &status, resp) < 0)
        goto out;
    /* §3: each non-empty field replaces; "" / [] / absent = unchanged. */
    if (name && *name) {
        if (validate_name(name, resp) < 0)
            goto out;
        patch.name = name;
    }
    if (url && *url) {
        if (validate_url(&pol, url, resp) < 0)
            goto out;
        patch.url = url;
    }
    if (desc && *desc) {
        if (strlen(desc) > DESCRIPTION_MAX) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                             "Webhook description must be at most %d characters long.",
                             DESCRIPTION_MAX);
            goto out;
        }
        patch.description = desc;
    }
    if (secret && *secret) {
        if (!(sealed = tally_webhooks_seal_secret(dispatcher(srv), secret))) {
            tally_api_oom(resp);
            goto out;
        }
        patch.secret = sealed;
    }
    patch.events = ev;
    patch.n_events = n_ev;
    patch.status = status;
    tally_webhook w;
    int rc = tally_store_webhook_update(srv->store, id, &patch, wall_ms(), a, &w, err, sizeof err);
    if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        respond_webhook(resp, &w);
out:
    free(sealed);
    tally_arena_free(a);
    tally_params_close(&p);
}

static void do_delete(tally_server *srv, const char *id, tally_resp *resp)
{
    char err[512] = "";
    tally_api_store_done(resp, tally_store_webhook_delete(srv->store, id, wall_ms(), err, sizeof err),
                         err);
}

/* ------------------------------------------------------------------------ */
/* Test (§7) and the delivery log                                            */
/* ------------------------------------------------------------------------ */

/* The optional "event" field, else the webhook's first event. 0 or -1. */
static int test_event(tally_params *p, const tally_webhook *w, tally_webhook_event *ev,
                      tally_resp *resp)
{
    const cJSON *v = p->root ? cJSON_GetObjectItemCaseSensitive(p->root, "event") : NULL;
    if (v && !cJSON_IsNull(v))
        return parse_event(v, "event", ev, resp) < 0 ? -1 : 0;
    if (w->n_events == 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Webhook has no events.");
        return -1;
    }
    *ev = w->events[0];
    return 0;
}

static void do_test(tally_server *srv, const char *id, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    tally_webhook_policy pol;
    policy(srv, &pol);
    char err[512] = "";
    tally_webhook w;
    tally_webhook_event ev;
    tally_buf body = {0};
    tally_webhook_attempt_result r;
    memset(&r, 0, sizeof r);
    char *secret = NULL; /* opened from its stored form (secret_box.h) */
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    int rc = tally_store_webhook_get(srv->store, id, a, &w, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    if (test_event(&p, &w, &ev, resp) < 0)
        goto out;
    rc = tally_webhooks_open_secret(dispatcher(srv), w.secret, &secret);
    if (rc == -2) {
        tally_api_oom(resp);
        goto out;
    }
    if (rc != 0) {
        tally_resp_error(resp, TALLY_API_INTERNAL_ERROR,
                         "The webhook's secret cannot be opened with this server's key "
                         "(secret_key_file).");
        goto out;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    tally_webhook_body(&body, ev.entity, ev.action, now_us,
                       tally_webhook_example_data(ev.entity, ev.action));
    char delivery_id[TALLY_WEBHOOK_ID_LEN + 1];
    tally_webhook_uuid4(delivery_id);
    if (tally_buf_failed(&body)) {
        tally_api_oom(resp);
        goto out;
    }
    /* §7: same headers, signing, timeout and retries as a delivery; but a
     * caller is waiting, so Retry-After waits at most the backoff cap, and
     * a server shutdown ends the attempts and the waits at once. */
    const volatile int *shutdown = tally_webhooks_shutdown_flag(dispatcher(srv));
    int64_t wait_cap = pol.retry_after_cap_ms < pol.backoff_cap_ms ? pol.retry_after_cap_ms
                                                                   : pol.backoff_cap_ms;
    for (unsigned attempt = 1;; attempt++) {
        tally_buf_free(&r.body);
        tally_webhook_attempt(&pol, w.url, secret, delivery_id, now_us / 1000000, body.data,
                              TEST_BODY_CAP, shutdown, NULL, &r);
        if (r.aborted || !r.retryable || attempt >= pol.max_attempts)
            break;
        int64_t delay = r.retry_after_ms >= 0
                            ? (r.retry_after_ms < wait_cap ? r.retry_after_ms : wait_cap)
                            : (int64_t)tally_webhook_backoff_ms(&pol, attempt,
                                                                randombytes_uniform(1000000) / 1e6);
        for (int64_t slept = 0; slept < delay;) {
            if (shutdown && __atomic_load_n(shutdown, __ATOMIC_ACQUIRE))
                break;
            int64_t step = delay - slept < 100 ? delay - slept : 100;
            struct timespec ts = {0, (long)step * 1000000L};
            nanosleep(&ts, NULL);
            slept += step;
        }
    }
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, "result");
    tally_json_object_open(&j);
    if (r.status > 0) {
        tally_json_kv_bool(&j, "success", r.status < 400);
        tally_json_kv_int(&j, "response_status", r.status);
        tally_json_key(&j, "response_body");
        tally_json_string_n(&j, r.body.data ? r.body.data : "", r.body.len);
    } else {
        char msg[400];
        snprintf(msg, sizeof msg, "Failed to test webhook: %s", r.error);
        tally_json_kv_bool(&j, "success", 0);
        tally_json_kv_string(&j, "error_message", msg);
    }
    tally_json_object_close(&j);
    tally_api_json_end(&j, resp);
out:
    if (secret) {
        sodium_memzero(secret, strlen(secret));
        free(secret);
    }
    tally_buf_free(&r.body);
    tally_buf_free(&body);
    tally_arena_free(a);
    tally_params_close(&p);
}

static void do_deliveries(tally_server *srv, const char *id, const tally_req *req,
                          tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    size_t max = 0, n = 0;
    uint64_t offset = 0;
    int more = 0;
    tally_delivery *v = NULL;
    char err[512] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (read_paging(&p, &max, &offset, resp) < 0)
        goto out;
    int rc = tally_store_webhook_deliveries(srv->store, id, max, offset, a, &v, &n, &more, err,
                                            sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_json j;
    tally_api_list_begin(&j, resp, "deliveries", n);
    for (size_t i = 0; i < n; i++)
        write_delivery(&j, &v[i]);
    tally_api_list_end(&j, resp, n, more, offset + n);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static int need_dispatcher(tally_server *srv, tally_resp *resp)
{
    if (dispatcher(srv))
        return 1;
    tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE,
                     "Webhook deliveries are not running on this server.");
    return -1;
}

/* POST {id}/deliveries: the test endpoint's example event, queued. */
static void do_queue_example(tally_server *srv, const char *id, const tally_req *req,
                             tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    char err[512] = "";
    tally_webhook w;
    tally_webhook_event ev;
    tally_delivery d;
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    int rc = tally_store_webhook_get(srv->store, id, a, &w, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    if (test_event(&p, &w, &ev, resp) < 0 || need_dispatcher(srv, resp) < 0)
        goto out;
    rc = tally_webhooks_enqueue(dispatcher(srv), id, ev.entity, ev.action,
                                tally_webhook_example_data(ev.entity, ev.action), a, &d, err,
                                sizeof err);
    if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        respond_delivery(resp, &d);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void do_delivery(tally_server *srv, const char *id, const char *did, int redeliver,
                        tally_resp *resp)
{
    tally_arena *a = tally_arena_new();
    char err[512] = "";
    tally_delivery d, nd;
    if (!a) {
        tally_api_oom(resp);
        return;
    }
    int rc = tally_store_webhook_delivery(srv->store, id, did, a, &d, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
    } else if (!redeliver) {
        respond_delivery(resp, &d);
    } else if (need_dispatcher(srv, resp) > 0) {
        rc = tally_webhooks_enqueue(dispatcher(srv), id, d.entity, d.action, d.data_json, a, &nd,
                                    err, sizeof err);
        if (rc != 0)
            tally_api_store_error(resp, rc, err);
        else
            respond_delivery(resp, &nd);
    }
    tally_arena_free(a);
}

/* ------------------------------------------------------------------------ */
/* Routing of mlflow/webhooks/...                                            */
/* ------------------------------------------------------------------------ */

static void not_found_endpoint(const tally_req *req, tally_resp *resp)
{
    tally_resp_error(resp, TALLY_API_ENDPOINT_NOT_FOUND, "No API endpoint for %.200s", req->path);
}

static void handle_item(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    /* sub_path: "{id}", "{id}/test", "{id}/deliveries", "{id}/deliveries/{d}",
     * "{id}/deliveries/{d}/redeliver". */
    char buf[512];
    if (snprintf(buf, sizeof buf, "%s", req->sub_path) >= (int)sizeof buf) {
        not_found_endpoint(req, resp);
        return;
    }
    char *seg[5];
    int n = 0;
    char *save = NULL;
    for (char *s = strtok_r(buf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (n == 5) {
            not_found_endpoint(req, resp);
            return;
        }
        seg[n++] = s;
    }
    size_t sl = strlen(req->sub_path);
    if (n == 0 || (sl && req->sub_path[sl - 1] == '/') || strstr(req->sub_path, "//")) {
        not_found_endpoint(req, resp);
        return;
    }
    tally_method m = req->method == TALLY_HEAD ? TALLY_GET : req->method;
    const char *id = seg[0];
    if (n == 1) {
        if (m == TALLY_GET)
            do_get(srv, id, resp);
        else if (m == TALLY_PATCH)
            do_update(srv, id, req, resp);
        else if (m == TALLY_DELETE)
            do_delete(srv, id, resp);
        else
            not_found_endpoint(req, resp);
    } else if (n == 2 && strcmp(seg[1], "test") == 0 && m == TALLY_POST) {
        do_test(srv, id, req, resp);
    } else if (n == 2 && strcmp(seg[1], "deliveries") == 0 && m == TALLY_GET) {
        do_deliveries(srv, id, req, resp);
    } else if (n == 2 && strcmp(seg[1], "deliveries") == 0 && m == TALLY_POST) {
        do_queue_example(srv, id, req, resp);
    } else if (n == 3 && strcmp(seg[1], "deliveries") == 0 && m == TALLY_GET) {
        do_delivery(srv, id, seg[2], 0, resp);
    } else if (n == 4 && strcmp(seg[1], "deliveries") == 0 && strcmp(seg[3], "redeliver") == 0 &&
               m == TALLY_POST) {
        do_delivery(srv, id, seg[2], 1, resp);
    } else {
        not_found_endpoint(req, resp);
    }
}

const tally_route tally_routes_webhooks[] = {
    {TALLY_POST, "mlflow/webhooks", 1, 0, 0, 0, handle_create, "webhooks/create"},
    {TALLY_GET, "mlflow/webhooks", 1, 0, 0, 0, handle_list, "webhooks/list"},
    {TALLY_GET | TALLY_PATCH | TALLY_DELETE | TALLY_POST, "mlflow/webhooks/", 1, 0, 1, 0,
     handle_item, "webhooks/item"},
    {0},
};
