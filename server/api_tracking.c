/*
 * api_tracking.c — helpers shared by the tracking handlers: MLflow's JSON
 * shapes of experiments and runs, store errors to MLflow errors, required
 * fields, page tokens (api_tracking.h).
 */
#include "api_tracking.h"

#include "authz.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_error.h"
#include "tally/engine.h"

void tally_api_store_error(tally_resp *resp, int rc, const char *msg)
{
    if (!msg || !*msg)
        msg = "metadata store error";
    switch (rc) {
    case TALLY_STORE_ENOTFOUND:
        tally_resp_error(resp, TALLY_API_RESOURCE_DOES_NOT_EXIST, "%s", msg);
        break;
    case TALLY_STORE_EEXISTS:
        tally_resp_error(resp, TALLY_API_RESOURCE_ALREADY_EXISTS, "%s", msg);
        break;
    case TALLY_STORE_EINVAL:
    case TALLY_STORE_ESTATE:
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "%s", msg);
        break;
    case TALLY_STORE_ECONFLICT:
        tally_resp_error(resp, TALLY_API_BAD_REQUEST, "%s", msg);
        break;
    case TALLY_STORE_ENOMEM:
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "Out of memory.");
        tally_resp_header(resp, "Retry-After", "1");
        break;
    default:
        /* EIO: a database error is not the client's fault and may pass
         * (busy, disk full): 503 lets clients retry. */
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "%s", msg);
        tally_resp_header(resp, "Retry-After", "1");
        break;
    }
}

int tally_api_require(tally_params *p, const char *name, const char **out, tally_resp *resp)
{
    int rc = tally_params_string(p, name, out, resp);
    if (rc < 0)
        return -1;
    if (rc == 0 || !*out || !**out)
        return tally_params_missing(resp, name);
    return 1;
}

int tally_api_require_run_id(tally_params *p, const char **out, tally_resp *resp)
{
    int rc = tally_params_string(p, "run_id", out, resp);
    if (rc < 0)
        return -1;
    if (rc == 1 && *out && **out)
        return 1;
    rc = tally_params_string(p, "run_uuid", out, resp);
    if (rc < 0)
        return -1;
    if (rc == 1 && *out && **out)
        return 1;
    return tally_params_missing(resp, "run_id");
}

int tally_api_parse_experiment_id(const char *s, int64_t *out, tally_resp *resp)
{
    const char *p = s;
    if (*p == '-')
        p++;
    size_t nd = strspn(p, "0123456789");
    if (nd == 0 || p[nd] != 0 || nd > 19) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid experiment ID: '%.100s'",
                         s);
        return -1;
    }
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "Invalid experiment ID: '%.100s'",
                         s);
        return -1;
    }
    *out = v;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Page tokens                                                               */
/* ------------------------------------------------------------------------ */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void tally_api_page_token_encode(uint64_t offset, char *out, size_t cap)
{
    char json[48];
    int n = snprintf(json, sizeof json, "{\"offset\": %llu}", (unsigned long long)offset);
    size_t o = 0;
    for (int i = 0; i < n && o + 5 < cap; i += 3) {
        unsigned v = (unsigned char)json[i] << 16;
        int rem = n - i;
        if (rem > 1)
            v |= (unsigned char)json[i + 1] << 8;
        if (rem > 2)
            v |= (unsigned char)json[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = rem > 1 ? b64[(v >> 6) & 63] : '=';
        out[o++] = rem > 2 ? b64[v & 63] : '=';
    }
    if (cap)
        out[o < cap ? o : cap - 1] = 0;
}

static int b64_val(int c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    if (p)
        return (int)(p - b64);
    if (c == '-') /* URL-safe alphabet too */
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int tally_api_page_token_decode(const char *token, uint64_t *offset)
{
    *offset = 0;
    if (!token || !*token)
        return 0;
    size_t n = strlen(token);
    if (n > 256)
        return -1;
    char buf[200];
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (token[i] == '=')
            break;
        int v = b64_val((unsigned char)token[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= sizeof buf)
                return -1;
            buf[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    buf[o] = 0;
    if (memchr(buf, 0, o))
        return -1;
    /* {"offset": N} with optional spaces; nothing else. */
    const char *p = buf;
    while (*p == ' ')
        p++;
    if (strncmp(p, "{", 1) != 0)
        return -1;
    p++;
    while (*p == ' ')
        p++;
    if (strncmp(p, "\"offset\"", 8) != 0)
        return -1;
    p += 8;
    while (*p == ' ')
        p++;
    if (*p++ != ':')
        return -1;
    while (*p == ' ')
        p++;
    size_t nd = strspn(p, "0123456789");
    if (nd == 0 || nd > 18)
        return -1;
    unsigned long long v = strtoull(p, NULL, 10);
    p += nd;
    while (*p == ' ')
        p++;
    if (*p++ != '}')
        return -1;
    while (*p == ' ')
        p++;
    if (*p)
        return -1;
    *offset = v;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* JSON shapes                                                               */
/* ------------------------------------------------------------------------ */

void tally_api_write_kvs(tally_json *j, const char *name, const tally_kv *kv, size_t n)
{
    if (n == 0)
        return;
    tally_json_key(j, name);
    tally_json_array_open(j);
    for (size_t i = 0; i < n; i++) {
        tally_json_object_open(j);
        tally_json_kv_string(j, "key", kv[i].key);
        tally_json_kv_string(j, "value", kv[i].value ? kv[i].value : "");
        tally_json_object_close(j);
    }
    tally_json_array_close(j);
}

void tally_api_write_experiment(tally_json *j, const tally_experiment *e)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)e->experiment_id);
    tally_json_object_open(j);
    tally_json_kv_string(j, "experiment_id", id);
    tally_json_kv_string(j, "name", e->name);
    tally_json_kv_string(j, "artifact_location", e->artifact_location);
    tally_json_kv_string(j, "lifecycle_stage",
                         e->lifecycle == TALLY_LIFECYCLE_ACTIVE ? "active" : "deleted");
    tally_json_kv_int(j, "last_update_time", e->last_update_time_ms);
    tally_json_kv_int(j, "creation_time", e->creation_time_ms);
    tally_api_write_kvs(j, "tags", e->tags, e->n_tags);
    tally_json_object_close(j);
}

void tally_api_write_run_info(tally_json *j, const tally_run_info *info)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)info->experiment_id);
    const char *status = tally_run_status_name(info->status);
    tally_json_object_open(j);
    tally_json_kv_string(j, "run_id", info->run_id);
    tally_json_kv_string(j, "run_uuid", info->run_id);
    tally_json_kv_string(j, "run_name", info->run_name);
    tally_json_kv_string(j, "experiment_id", id);
    tally_json_kv_string(j, "user_id", info->user_id);
    tally_json_kv_string(j, "status", status ? status : "RUNNING");
    tally_json_kv_int(j, "start_time", info->start_time_ms);
    if (info->has_end_time)
        tally_json_kv_int(j, "end_time", info->end_time_ms);
    tally_json_kv_string(j, "artifact_uri", info->artifact_uri);
    tally_json_kv_string(j, "lifecycle_stage",
                         info->lifecycle == TALLY_LIFECYCLE_ACTIVE ? "active" : "deleted");
    tally_json_object_close(j);
}

/* Latest value per key from the engine (§4.2), as Metric objects. */
static void write_metrics(tally_json *j, tally_engine *engine, const char *run_id)
{
    if (!engine)
        return;
    tally_series_id small[64];
    tally_series_id *ids = small;
    size_t n_total = 0;
    size_t rid_len = strlen(run_id);
    if (tally_engine_series_of_run(engine, run_id, rid_len, ids, 64, &n_total) != 0 ||
        n_total == 0)
        return;
    if (n_total > 64) {
        ids = malloc(n_total * sizeof *ids);
        size_t again = 0;
        if (!ids || tally_engine_series_of_run(engine, run_id, rid_len, ids, n_total, &again) != 0) {
            free(ids);
            return;
        }
        if (again < n_total)
            n_total = again;
    }
    int opened = 0;
    for (size_t i = 0; i < n_total; i++) {
        tally_series_info si;
        if (tally_engine_series_info(engine, ids[i], &si) != 0 || si.n_points == 0)
            continue;
        if (!opened) {
            tally_json_key(j, "metrics");
            tally_json_array_open(j);
            opened = 1;
        }
        tally_json_object_open(j);
        tally_json_key(j, "key");
        tally_json_string_n(j, si.key, si.key_len);
        tally_json_kv_double(j, "value", si.latest.value);
        tally_json_kv_int(j, "timestamp", si.latest.timestamp_ms);
        tally_json_kv_int(j, "step", si.latest.step);
        tally_json_object_close(j);
    }
    if (opened)
        tally_json_array_close(j);
    if (ids != small)
        free(ids);
}

void tally_api_write_run(tally_json *j, tally_engine *engine, const tally_run *run)
{
    tally_json_object_open(j);
    tally_json_key(j, "info");
    tally_api_write_run_info(j, &run->info);
    tally_json_key(j, "data");
    tally_json_object_open(j);
    write_metrics(j, engine, run->info.run_id);
    tally_api_write_kvs(j, "params", run->params, run->n_params);
    tally_api_write_kvs(j, "tags", run->tags, run->n_tags);
    tally_json_object_close(j);
    tally_json_key(j, "inputs");
    tally_json_object_open(j);
    if (run->n_inputs) {
        tally_json_key(j, "dataset_inputs");
        tally_json_array_open(j);
        for (size_t i = 0; i < run->n_inputs; i++) {
            const tally_dataset_input *in = &run->inputs[i];
            tally_json_object_open(j);
            tally_api_write_kvs(j, "tags", in->tags, in->n_tags);
            tally_json_key(j, "dataset");
            tally_json_object_open(j);
            tally_json_kv_string(j, "name", in->dataset.name);
            tally_json_kv_string(j, "digest", in->dataset.digest);
            tally_json_kv_string(j, "source_type", in->dataset.source_type);
            tally_json_kv_string(j, "source", in->dataset.source);
            if (in->dataset.schema)
                tally_json_kv_string(j, "schema", in->dataset.schema);
            if (in->dataset.profile)
                tally_json_kv_string(j, "profile", in->dataset.profile);
            tally_json_object_close(j);
            tally_json_object_close(j);
        }
        tally_json_array_close(j);
    }
    tally_json_object_close(j);
    if (run->n_outputs) {
        tally_json_key(j, "outputs");
        tally_json_object_open(j);
        tally_json_key(j, "model_outputs");
        tally_json_array_open(j);
        for (size_t i = 0; i < run->n_outputs; i++) {
            tally_json_object_open(j);
            tally_json_kv_string(j, "model_id", run->outputs[i].model_id);
            tally_json_kv_int(j, "step", run->outputs[i].step);
            tally_json_object_close(j);
        }
        tally_json_array_close(j);
        tally_json_object_close(j);
    }
    tally_json_object_close(j);
}

int tally_api_read_kvs(tally_params *p, const char *name, tally_arena *a, tally_kv **out,
                       size_t *n, tally_resp *resp)
{
    *out = NULL;
    *n = 0;
    cJSON *arr = NULL;
    int rc = tally_params_array(p, name, &arr, resp);
    if (rc <= 0)
        return rc;
    size_t count = (size_t)cJSON_GetArraySize(arr);
    if (count == 0)
        return 1;
    tally_kv *v = tally_arena_alloc(a, count * sizeof *v);
    if (!v) {
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "Out of memory.");
        return -1;
    }
    size_t i = 0;
    const cJSON *el;
    cJSON_ArrayForEach(el, arr)
    {
        char where[64];
        snprintf(where, sizeof where, "%s[%zu]", name, i);
        if (!cJSON_IsObject(el)) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                             "Invalid value for parameter '%s': expected an object", where);
            return -1;
        }
        const char *key = NULL, *value = NULL;
        int r = tally_json_field_string(el, "key", where, &key, resp);
        if (r < 0)
            return -1;
        if (r == 0) {
            char field[80];
            snprintf(field, sizeof field, "%s.key", where);
            return tally_params_missing(resp, field);
        }
        if (tally_json_field_string(el, "value", where, &value, resp) < 0)
            return -1;
        v[i].key = key;
        v[i].value = value ? value : "";
        i++;
    }
    *out = v;
    *n = i;
    return 1;
}

const char *const tally_api_view_names[3] = {"ACTIVE_ONLY", "DELETED_ONLY", "ALL"};
const int tally_api_view_values[3] = {1, 2, 3};

void tally_api_ok_empty(tally_resp *resp)
{
    tally_buf_reset(&resp->body);
    tally_buf_puts(&resp->body, "{}");
    resp->status = 200;
}

void tally_api_oom(tally_resp *resp)
{
    tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "Out of memory.");
    tally_resp_header(resp, "Retry-After", "1");
}

void tally_api_ok_json(tally_resp *resp)
{
    if (tally_buf_failed(&resp->body)) {
        tally_buf_free(&resp->body);
        memset(&resp->body, 0, sizeof resp->body);
        tally_api_oom(resp);
        return;
    }
    resp->status = 200;
}

void tally_api_json_begin(tally_json *j, tally_resp *resp)
{
    tally_buf_reset(&resp->body);
    tally_json_start(j, &resp->body);
    tally_json_object_open(j);
}

void tally_api_json_end(tally_json *j, tally_resp *resp)
{
    tally_json_object_close(j);
    tally_api_ok_json(resp);
}

void tally_api_list_begin(tally_json *j, tally_resp *resp, const char *key, size_t n)
{
    tally_api_json_begin(j, resp);
    if (n) {
        tally_json_key(j, key);
        tally_json_array_open(j);
    }
}

void tally_api_list_end(tally_json *j, tally_resp *resp, size_t n, int more, uint64_t next_offset)
{
    if (n)
        tally_json_array_close(j);
    if (more) {
        char tok[64];
        tally_api_page_token_encode(next_offset, tok, sizeof tok);
        tally_json_kv_string(j, "next_page_token", tok);
    }
    tally_api_json_end(j, resp);
}

void tally_api_store_done(tally_resp *resp, int rc, const char *err)
{
    if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        tally_api_ok_empty(resp);
}

int tally_api_keep_readable_experiments(tally_server *srv, const tally_req *req, tally_arena *a,
                                        int64_t *ids, size_t *n, tally_resp *resp)
{
    tally_readable_set can_read;
    int rc = tally_authz_readable_experiments(srv, req, a, &can_read);
    if (rc != 0) {
        tally_api_store_error(resp, rc, "Permission lookup failed (metadata store unavailable).");
        return -1;
    }
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++)
        if (tally_readable_has_experiment(&can_read, ids[i]))
            ids[kept++] = ids[i];
    *n = kept;
    return 0;
}
