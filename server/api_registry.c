/*
 * api_registry.c — helpers shared by the model registry handlers: JSON
 * shapes, the version field, search paging, registry events
 * (api_registry.h).
 */
#include "api_registry.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_error.h"
#include "api_tracking.h"
#include "authz.h"
#include "store_auth.h"

void tally_api_write_model_version(tally_json *j, const tally_model_version *v)
{
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)v->version);
    tally_json_object_open(j);
    tally_json_kv_string(j, "name", v->name);
    tally_json_kv_string(j, "version", num);
    tally_json_kv_int(j, "creation_timestamp", v->creation_time_ms);
    tally_json_kv_int(j, "last_updated_timestamp", v->last_updated_time_ms);
    tally_json_kv_string(j, "current_stage", tally_stage_name(v->stage));
    tally_json_kv_string(j, "description", v->description ? v->description : "");
    tally_json_kv_string(j, "source", v->source);
    tally_json_kv_string(j, "run_id", v->run_id ? v->run_id : "");
    tally_json_kv_string(j, "status", v->status ? v->status : "READY");
    tally_api_write_kvs(j, "tags", v->tags, v->n_tags);
    tally_json_kv_string(j, "run_link", v->run_link ? v->run_link : "");
    if (v->n_aliases) {
        tally_json_key(j, "aliases");
        tally_json_array_open(j);
        for (size_t i = 0; i < v->n_aliases; i++)
            tally_json_string(j, v->aliases[i]);
        tally_json_array_close(j);
    }
    if (v->model_id)
        tally_json_kv_string(j, "model_id", v->model_id);
    tally_json_object_close(j);
}

void tally_api_write_registered_model(tally_json *j, const tally_registered_model *m)
{
    tally_json_object_open(j);
    tally_json_kv_string(j, "name", m->name);
    tally_json_kv_int(j, "creation_timestamp", m->creation_time_ms);
    tally_json_kv_int(j, "last_updated_timestamp", m->last_updated_time_ms);
    tally_json_kv_string(j, "description", m->description ? m->description : "");
    if (m->n_latest) {
        tally_json_key(j, "latest_versions");
        tally_json_array_open(j);
        for (size_t i = 0; i < m->n_latest; i++)
            tally_api_write_model_version(j, &m->latest[i]);
        tally_json_array_close(j);
    }
    tally_api_write_kvs(j, "tags", m->tags, m->n_tags);
    if (m->n_aliases) {
        tally_json_key(j, "aliases");
        tally_json_array_open(j);
        for (size_t i = 0; i < m->n_aliases; i++) {
            char num[24];
            snprintf(num, sizeof num, "%lld", (long long)m->aliases[i].version);
            tally_json_object_open(j);
            tally_json_kv_string(j, "alias", m->aliases[i].alias);
            tally_json_kv_string(j, "version", num);
            tally_json_object_close(j);
        }
        tally_json_array_close(j);
    }
    if (m->deployment_job_id)
        tally_json_kv_string(j, "deployment_job_id", m->deployment_job_id);
    tally_json_object_close(j);
}

void tally_api_respond_model_version(tally_resp *resp, const char *key,
                                     const tally_model_version *v)
{
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, key);
    tally_api_write_model_version(&j, v);
    tally_api_json_end(&j, resp);
}

void tally_api_respond_registered_model(tally_resp *resp, const tally_registered_model *m)
{
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, "registered_model");
    tally_api_write_registered_model(&j, m);
    tally_api_json_end(&j, resp);
}

int tally_api_require_version(tally_params *p, int64_t *out, const char **text,
                              tally_resp *resp)
{
    const char *s;
    char err[256];
    if (tally_api_require(p, "version", &s, resp) < 0)
        return -1;
    if (tally_registry_parse_version(s, out, err, sizeof err) != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "%s", err);
        return -1;
    }
    if (text)
        *text = s;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Search                                                                    */
/* ------------------------------------------------------------------------ */

int tally_api_search_req_parse(tally_params *p, tally_search_mode mode, int64_t def, int64_t max,
                               tally_api_search_req *out, tally_resp *resp)
{
    memset(out, 0, sizeof *out);
    int64_t max_results = def;
    const char *token = NULL, *filter = NULL;
    const char **order_by = NULL;
    size_t n_order = 0;
    int rc = tally_params_int64(p, "max_results", &max_results, resp);
    if (rc < 0 || tally_params_string(p, "page_token", &token, resp) < 0 ||
        tally_params_string(p, "filter", &filter, resp) < 0 ||
        tally_params_strings(p, "order_by", &order_by, &n_order, resp) < 0)
        return -1;
    if (max_results < 1 || max_results > max) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid value %lld for parameter 'max_results' supplied. It must be a "
                         "positive integer at most %lld",
                         (long long)max_results, (long long)max);
        return -1;
    }
    if (tally_api_page_token_decode(token, &out->offset) != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid page token, could not base64-decode");
        return -1;
    }
    out->max_results = (size_t)max_results;
    tally_search_error se;
    memset(&se, 0, sizeof se);
    rc = tally_search_filter_parse(mode, filter, filter ? strlen(filter) : 0, &out->filter, &se);
    if (rc == 0)
        rc = tally_search_order_parse(mode, order_by, n_order, &out->order, &se);
    if (rc == TALLY_ENOMEM) {
        tally_api_search_req_free(out);
        tally_api_oom(resp);
        return -1;
    }
    if (rc != 0) {
        tally_api_search_req_free(out);
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "%s", se.msg);
        return -1;
    }
    return 1;
}

void tally_api_search_req_free(tally_api_search_req *r)
{
    tally_search_filter_free(r->filter);
    tally_search_order_free(r->order);
    r->filter = NULL;
    r->order = NULL;
}

/* ------------------------------------------------------------------------ */
/* Events                                                                    */
/* ------------------------------------------------------------------------ */

void tally_api_registry_search(tally_server *srv, const tally_req *req, tally_resp *resp,
                               tally_search_mode mode, int64_t def, int64_t max)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    int versions = mode == TALLY_SEARCH_VERSIONS;
    tally_arena *a = tally_arena_new();
    tally_api_search_req sr;
    memset(&sr, 0, sizeof sr);
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_search_req_parse(&p, mode, def, max, &sr, resp) < 0)
        goto out;
    tally_model_names names;
    const tally_model_names *only;
    if (tally_api_readable_models(srv, req, a, &names, &only, resp) < 0)
        goto out;
    tally_registered_model *models = NULL;
    tally_model_version *vers = NULL;
    size_t n;
    int more;
    int rc = versions ? tally_registry_search_versions(srv->store, sr.filter, sr.order, only,
                                                       sr.offset, sr.max_results, a, &vers, &n,
                                                       &more, err, sizeof err)
                      : tally_registry_search_models(srv->store, sr.filter, sr.order, only,
                                                     sr.offset, sr.max_results, a, &models, &n,
                                                     &more, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_json j;
    tally_api_list_begin(&j, resp, versions ? "model_versions" : "registered_models", n);
    for (size_t i = 0; i < n; i++) {
        if (versions)
            tally_api_write_model_version(&j, &vers[i]);
        else
            tally_api_write_registered_model(&j, &models[i]);
    }
    tally_api_list_end(&j, resp, n, more, sr.offset + n);
out:
    tally_api_search_req_free(&sr);
    tally_arena_free(a);
    tally_params_close(&p);
}

int tally_api_readable_models(tally_server *srv, const tally_req *req, tally_arena *a,
                              tally_model_names *out, const tally_model_names **only,
                              tally_resp *resp)
{
    tally_readable_set set;
    int rc = tally_authz_readable_models(srv, req, a, &set);
    if (rc != 0) {
        tally_api_store_error(resp, rc, "cannot read the caller's model permissions");
        return -1;
    }
    *only = NULL;
    if (set.all)
        return 0;
    /* authz.h: with a readable default, leave out the NO_PERMISSIONS rows;
     * without it, keep only the rows granting READ or more. */
    const char **names = tally_arena_alloc(a, (set.n_rows ? set.n_rows : 1) * sizeof *names);
    if (!names) {
        tally_api_oom(resp);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < set.n_rows; i++) {
        int readable = set.rows[i].perm >= TALLY_PERM_READ;
        if (set.default_readable ? !readable : readable)
            names[n++] = set.rows[i].resource;
    }
    out->exclude = set.default_readable;
    out->names = names;
    out->n = n;
    *only = out;
    return 0;
}

int tally_api_event_scope_begin(tally_server *srv, tally_resp *resp)
{
    if (!srv->registry_event)
        return 0;
    char err[512] = "";
    int rc = tally_store_scope_begin(srv->store, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        return -1;
    }
    return 1;
}

void tally_api_event_scope_end(tally_server *srv, int scoped, tally_resp *resp)
{
    if (scoped != 1)
        return;
    int ok = resp->status < 400; /* 0: not filled, no error either */
    char err[512] = "";
    int rc = tally_store_scope_end(srv->store, ok, err, sizeof err);
    if (!ok)
        return;
    if (rc != 0) {
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE,
                         "The change was not saved: %s", err);
        return;
    }
    if (srv->registry_events_committed)
        srv->registry_events_committed(srv->registry_event_ctx);
}

int tally_api_event_begin(tally_server *srv, tally_api_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (!srv->registry_event)
        return 0;
    tally_json_start(&ev->j, &ev->buf);
    tally_json_object_open(&ev->j);
    return 1;
}

void tally_api_event_emit(tally_server *srv, tally_api_event *ev, const char *entity,
                          const char *action, tally_resp *resp)
{
    if (!srv->registry_event)
        return;
    tally_json_object_close(&ev->j);
    char err[512] = "Out of memory.";
    if (tally_buf_failed(&ev->buf) ||
        srv->registry_event(srv->registry_event_ctx, entity, action, ev->buf.data, err,
                            sizeof err) != 0)
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE,
                         "The change was not saved: its %s.%s webhook event could not be "
                         "queued: %s",
                         entity, action, err);
    tally_buf_free(&ev->buf);
}

static int skipped(const char *key, const char *const *skip)
{
    for (; skip && *skip; skip++)
        if (strcmp(key, *skip) == 0)
            return 1;
    return 0;
}

typedef struct tag_ref {
    const char *key;
    size_t first;                 /* index of the key's first occurrence */
    size_t last;                  /* index of its last occurrence (the value kept) */
} tag_ref;

static int by_key_then_index(const void *x, const void *y)
{
    const tag_ref *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    if (c)
        return c;
    return a->first < b->first ? -1 : a->first > b->first;
}

static int by_first(const void *x, const void *y)
{
    const tag_ref *a = x, *b = y;
    return a->first < b->first ? -1 : a->first > b->first;
}

/* O(n log n): a request may carry very many tags. */
void tally_api_event_tags(tally_json *j, const tally_kv *tags, size_t n,
                          const char *const *skip)
{
    tally_json_key(j, "tags");
    tally_json_object_open(j);
    tag_ref *r = n ? malloc(n * sizeof *r) : NULL;
    if (n && !r) {
        /* Out of memory: asking the buffer for an impossible size marks it
         * failed (buf.h), so tally_api_event_emit drops the event. */
        tally_buf_reserve(j->out, SIZE_MAX / 2);
        tally_json_object_close(j);
        return;
    }
    for (size_t i = 0; i < n; i++)
        r[i] = (tag_ref){tags[i].key, i, i};
    if (n > 1)
        qsort(r, n, sizeof *r, by_key_then_index);
    size_t g = 0; /* groups: one per key, first and last occurrence */
    for (size_t i = 0; i < n; i++) {
        if (g && strcmp(r[g - 1].key, r[i].key) == 0)
            r[g - 1].last = r[i].first;
        else
            r[g++] = r[i];
    }
    if (g > 1)
        qsort(r, g, sizeof *r, by_first);
    for (size_t i = 0; i < g; i++)
        if (!skipped(r[i].key, skip))
            tally_json_kv_string(j, r[i].key, tags[r[i].last].value ? tags[r[i].last].value : "");
    free(r);
    tally_json_object_close(j);
}

void tally_api_string_or_null(tally_json *j, const char *s)
{
    if (s && *s)
        tally_json_string(j, s);
    else
        tally_json_null(j);
}
