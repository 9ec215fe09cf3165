/*
 * api_runs.c — MLflow's run endpoints (mlflow-rest-api.md §3.2, §3.3
 * log-parameter, §4.3, §4.7, §5.1, §5.2, §6):
 *
 *   POST mlflow/runs/create        POST mlflow/runs/update
 *   POST mlflow/runs/delete        POST mlflow/runs/restore
 *   GET  mlflow/runs/get           POST mlflow/runs/search
 *   POST mlflow/runs/set-tag       POST mlflow/runs/delete-tag
 *   POST mlflow/runs/log-parameter POST mlflow/runs/log-inputs
 *
 * runs/search, the one with volume (10,000 runs and more per experiment):
 *
 *   filter, order_by --search.h--> clauses, order keys
 *      |  plan_search(): attribute/param/tag/dataset clauses -> store preds
 *      |                 (SQL, index-backed); metric clauses -> post-filter
 *   tally_store_search_runs: candidate rows + param/tag values the order needs
 *      |  latest metric values the filter/order need, from the engine's
 *      |  series directory (O(1) per run and key, no point decoded)
 *   metric clauses (tally_search_match_clause), sort (tally_search_compare:
 *   missing last both ways, tie-breakers), page by offset token
 *      |  tally_store_runs_data: params/tags/inputs for the page only
 *   JSON
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_error.h"
#include "api_tracking.h"
#include "authz.h"
#include "app.h"
#include "json_out.h"
#include "params.h"
#include "search.h"
#include "store.h"
#include "store_logged_models.h"
#include "tally/engine.h"

#define RUN_SEARCH_DEFAULT 1000
#define RUN_SEARCH_MAX 50000

static const char *const status_names[] = {"RUNNING", "SCHEDULED", "FINISHED", "FAILED",
                                           "KILLED"};
static const int status_values[] = {1, 2, 3, 4, 5};





static void respond_run(tally_server *srv, tally_resp *resp, const tally_run *run)
{
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, "run");
    tally_api_write_run(&j, srv->engine, run);
    tally_api_json_end(&j, resp);
}

/* ------------------------------------------------------------------------ */

static void handle_create(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    const char *exp = NULL, *user = NULL, *name = NULL;
    int64_t start = 0;
    tally_kv *tags;
    size_t n_tags;
    if (tally_params_string(&p, "experiment_id", &exp, resp) < 0 ||
        tally_params_string(&p, "user_id", &user, resp) < 0 ||
        tally_params_string(&p, "run_name", &name, resp) < 0 ||
        tally_params_int64(&p, "start_time", &start, resp) < 0 ||
        tally_api_read_kvs(&p, "tags", a, &tags, &n_tags, resp) < 0)
        goto out;
    tally_run_create rq;
    memset(&rq, 0, sizeof rq);
    /* Clients always send experiment_id; an empty one means Default. */
    if (exp && *exp && tally_api_parse_experiment_id(exp, &rq.experiment_id, resp) < 0)
        goto out;
    rq.user_id = user ? user : "";
    rq.run_name = name;
    rq.start_time_ms = start;
    rq.tags = tags;
    rq.n_tags = n_tags;
    tally_run run;
    int rc = tally_store_create_run(srv->store, &rq, a, &run, err, sizeof err);
    if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        respond_run(srv, resp, &run);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_get(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    char err[1024] = "";
    const char *run_id;
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require_run_id(&p, &run_id, resp) < 0)
        goto out;
    tally_run run;
    int rc = tally_store_get_run(srv->store, run_id, a, &run, err, sizeof err);
    if (rc == 0) /* RunOutputs: the logged models the run produced */
        rc = tally_store_run_outputs(srv->store, run_id, a, &run.outputs, &run.n_outputs, err,
                                     sizeof err);
    if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        respond_run(srv, resp, &run);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_update(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    char err[1024] = "";
    const char *run_id, *name = NULL;
    int status = 0;
    int64_t end_time = 0;
    int has_end;
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require_run_id(&p, &run_id, resp) < 0 ||
        tally_params_enum(&p, "status", status_names, status_values, 5, &status, resp) < 0 ||
        (has_end = tally_params_int64(&p, "end_time", &end_time, resp)) < 0 ||
        tally_params_string(&p, "run_name", &name, resp) < 0)
        goto out;
    tally_run_info info;
    int rc = tally_store_update_run(srv->store, run_id, status, has_end == 1, end_time,
                                    name && *name ? name : NULL, a, &info, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, "run_info");
    tally_api_write_run_info(&j, &info);
    tally_api_json_end(&j, resp);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

/* delete and restore: run_id in, {} out. */
static void run_lifecycle(tally_server *srv, const tally_req *req, tally_resp *resp,
                          int (*change)(tally_store *, const char *, char *, size_t))
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    char err[1024] = "";
    const char *run_id;
    if (tally_api_require_run_id(&p, &run_id, resp) >= 0)
        tally_api_store_done(resp, change(srv->store, run_id, err, sizeof err), err);
    tally_params_close(&p);
}

static void handle_delete(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    run_lifecycle(srv, req, resp, tally_store_delete_run);
}

static void handle_restore(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    run_lifecycle(srv, req, resp, tally_store_restore_run);
}

static void handle_set_tag(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    char err[1024] = "";
    const char *run_id, *key, *value = NULL;
    if (tally_api_require_run_id(&p, &run_id, resp) < 0 ||
        tally_api_require(&p, "key", &key, resp) < 0 ||
        tally_params_string(&p, "value", &value, resp) < 0)
        goto out;
    int rc = tally_store_set_tag(srv->store, run_id, key, value ? value : "", err, sizeof err);
    tally_api_store_done(resp, rc, err);
out:
    tally_params_close(&p);
}

static void handle_delete_tag(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    char err[1024] = "";
    const char *run_id, *key;
    if (tally_api_require_run_id(&p, &run_id, resp) < 0 ||
        tally_api_require(&p, "key", &key, resp) < 0)
        goto out;
    int rc = tally_store_delete_tag(srv->store, run_id, key, err, sizeof err);
    tally_api_store_done(resp, rc, err);
out:
    tally_params_close(&p);
}

static void handle_log_param(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    char err[1024] = "";
    const char *run_id, *key, *value = NULL;
    if (tally_api_require_run_id(&p, &run_id, resp) < 0 ||
        tally_api_require(&p, "key", &key, resp) < 0 ||
        tally_params_string(&p, "value", &value, resp) < 0)
        goto out;
    int rc = tally_store_log_param(srv->store, run_id, key, value ? value : "", err, sizeof err);
    tally_api_store_done(resp, rc, err);
out:
    tally_params_close(&p);
}

/* log-inputs: datasets[] {tags[], dataset*{name*, digest*, source_type*,
 * source*, schema, profile}}; models[] are accepted and ignored (LoggedModel
 * is not implemented). Limits of §6. */
static void handle_log_inputs(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    char err[1024] = "";
    const char *run_id;
    cJSON *arr = NULL;
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require_run_id(&p, &run_id, resp) < 0 ||
        tally_params_array(&p, "datasets", &arr, resp) < 0)
        goto out;
    size_t n = arr ? (size_t)cJSON_GetArraySize(arr) : 0;
    tally_dataset_input_req *in = tally_arena_alloc(a, (n ? n : 1) * sizeof *in);
    if (!in) {
        tally_api_oom(resp);
        goto out;
    }
    size_t i = 0;
    const cJSON *el;
    cJSON_ArrayForEach(el, arr)
    {
        char where[64], dwhere[80];
        snprintf(where, sizeof where, "datasets[%zu]", i);
        snprintf(dwhere, sizeof dwhere, "datasets[%zu].dataset", i);
        const cJSON *ds = cJSON_IsObject(el) ? cJSON_GetObjectItemCaseSensitive(el, "dataset")
                                             : NULL;
        if (!ds || !cJSON_IsObject(ds)) {
            char field[96];
            snprintf(field, sizeof field, "%s.dataset", where);
            tally_params_missing(resp, field);
            goto out;
        }
        static const char *const req_fields[] = {"name", "digest", "source_type", "source"};
        static const size_t limits[] = {500, 36, 0, 65535};
        const char *vals[4];
        for (int k = 0; k < 4; k++) {
            int r = tally_json_field_string(ds, req_fields[k], dwhere, &vals[k], resp);
            if (r < 0)
                goto out;
            if (r == 0 || !*vals[k]) {
                char field[128];
                snprintf(field, sizeof field, "%s.%s", dwhere, req_fields[k]);
                tally_params_missing(resp, field);
                goto out;
            }
            if (limits[k] && tally_utf8_chars(vals[k]) > limits[k]) {
                tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                                 "Dataset %s '%.100s' exceeds the maximum length of %zu",
                                 req_fields[k], vals[k], limits[k]);
                goto out;
            }
        }
        const char *schema = NULL, *profile = NULL;
        if (tally_json_field_string(ds, "schema", dwhere, &schema, resp) < 0 ||
            tally_json_field_string(ds, "profile", dwhere, &profile, resp) < 0)
            goto out;
        if ((schema && strlen(schema) > 1048575) || (profile && strlen(profile) > 16777215)) {
            tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                             "Dataset schema or profile exceeds the maximum length");
            goto out;
        }
        in[i].dataset.name = vals[0];
        in[i].dataset.digest = vals[1];
        in[i].dataset.source_type = vals[2];
        in[i].dataset.source = vals[3];
        in[i].dataset.schema = schema;
        in[i].dataset.profile = profile;
        /* input tags */
        const cJSON *tags = cJSON_GetObjectItemCaseSensitive(el, "tags");
        size_t nt = tags && cJSON_IsArray(tags) ? (size_t)cJSON_GetArraySize(tags) : 0;
        tally_kv *kv = nt ? tally_arena_alloc(a, nt * sizeof *kv) : NULL;
        if (nt && !kv) {
            tally_api_oom(resp);
            goto out;
        }
        size_t t = 0;
        const cJSON *tg;
        if (nt) {
            cJSON_ArrayForEach(tg, tags)
            {
                char twhere[96];
                snprintf(twhere, sizeof twhere, "%s.tags[%zu]", where, t);
                const char *k = NULL, *v = NULL;
                if (!cJSON_IsObject(tg) ||
                    tally_json_field_string(tg, "key", twhere, &k, resp) <= 0 || !k || !*k) {
                    if (resp->status == 0) {
                        char field[128];
                        snprintf(field, sizeof field, "%s.key", twhere);
                        tally_params_missing(resp, field);
                    }
                    goto out;
                }
                if (tally_json_field_string(tg, "value", twhere, &v, resp) < 0)
                    goto out;
                if (!v)
                    v = "";
                if (tally_utf8_chars(k) > 255 || tally_utf8_chars(v) > 500) {
                    tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                                     "Input tag '%.100s' exceeds the maximum key (255) or value "
                                     "(500) length",
                                     k);
                    goto out;
                }
                kv[t].key = k;
                kv[t].value = v;
                t++;
            }
        }
        in[i].tags = kv;
        in[i].n_tags = t;
        i++;
    }
    int rc = tally_store_log_inputs(srv->store, run_id, in, i, err, sizeof err);
    tally_api_store_done(resp, rc, err);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

/* ------------------------------------------------------------------------ */
/* Search                                                                    */
/* ------------------------------------------------------------------------ */

/* What one search needs beyond the store's rows. */
typedef struct plan {
    tally_store_pred *preds;             /* pushed into the store */
    size_t n_preds;
    const tally_search_clause **post;    /* metric clauses, evaluated in C */
    size_t n_post;
    const char **param_keys;             /* values the order needs */
    size_t n_param_keys;
    const char **tag_keys;
    size_t n_tag_keys;
    const char **metric_keys;            /* latest values the filter/order need */
    size_t n_metric_keys;
} plan;

/* One candidate, seen by search.h through tally_search_row callbacks. */
typedef struct cand {
    const tally_run_row *row;
    const plan *pl;
    const double *mval;                  /* n_metric_keys latest values */
    const uint8_t *mhas;                 /* 1 where the run has the metric */
} cand;

static ssize_t key_index(const char *const *keys, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return (ssize_t)i;
    return -1;
}

static int cand_attr_str(void *ctx, tally_search_attr attr, const char **out)
{
    const cand *c = ctx;
    const tally_run_info *in = &c->row->info;
    if (attr == TALLY_SEARCH_A_RUN_ID)
        *out = in->run_id;
    else if (attr == TALLY_SEARCH_A_RUN_NAME)
        *out = in->run_name;
    else if (attr == TALLY_SEARCH_A_USER_ID)
        *out = in->user_id;
    else if (attr == TALLY_SEARCH_A_STATUS)
        *out = tally_run_status_name(in->status);
    else if (attr == TALLY_SEARCH_A_ARTIFACT_URI)
        *out = in->artifact_uri;
    else
        return 0;
    return *out != NULL;
}

static int cand_attr_num(void *ctx, tally_search_attr attr, double *out)
{
    const cand *c = ctx;
    const tally_run_info *in = &c->row->info;
    if (attr == TALLY_SEARCH_A_START_TIME)
        *out = (double)in->start_time_ms;
    else if (attr == TALLY_SEARCH_A_END_TIME && in->has_end_time)
        *out = (double)in->end_time_ms;
    else if (attr == TALLY_SEARCH_A_EXPERIMENT_ID)
        *out = (double)in->experiment_id;
    else
        return 0;
    return 1;
}

static int cand_param(void *ctx, const char *key, const char **out)
{
    const cand *c = ctx;
    ssize_t i = key_index(c->pl->param_keys, c->pl->n_param_keys, key);
    if (i < 0 || !c->row->param_vals || !c->row->param_vals[i])
        return 0;
    *out = c->row->param_vals[i];
    return 1;
}

static int cand_tag(void *ctx, const char *key, const char **out)
{
    const cand *c = ctx;
    ssize_t i = key_index(c->pl->tag_keys, c->pl->n_tag_keys, key);
    if (i < 0 || !c->row->tag_vals || !c->row->tag_vals[i])
        return 0;
    *out = c->row->tag_vals[i];
    return 1;
}

static int cand_metric(void *ctx, const char *key, double *out)
{
    const cand *c = ctx;
    ssize_t i = key_index(c->pl->metric_keys, c->pl->n_metric_keys, key);
    if (i < 0 || !c->mhas[i])
        return 0;
    *out = c->mval[i];
    return 1;
}

static tally_search_row cand_row(const cand *c)
{
    tally_search_row r;
    memset(&r, 0, sizeof r);
    r.ctx = (void *)c;
    r.attr_str = cand_attr_str;
    r.attr_num = cand_attr_num;
    r.param = cand_param;
    r.tag = cand_tag;
    r.metric = cand_metric;
    return r;
}

static int cand_cmp(const void *x, const void *y, void *ctx)
{
    const tally_search_order *o = ctx;
    tally_search_row a = cand_row(*(const cand *const *)x);
    tally_search_row b = cand_row(*(const cand *const *)y);
    return tally_search_compare(o, &a, &b);
}

static int add_key(tally_arena *a, const char ***keys, size_t *n, size_t cap, const char *key)
{
    (void)a;
    if (key_index(*keys, *n, key) >= 0)
        return 0;
    if (*n >= cap)
        return -1;
    (*keys)[(*n)++] = key;
    return 0;
}

static tally_pred_op pred_op(tally_search_op op)
{
    switch (op) {
    case TALLY_SEARCH_EQ: return TALLY_OP_EQ;
    case TALLY_SEARCH_NE: return TALLY_OP_NE;
    case TALLY_SEARCH_GT: return TALLY_OP_GT;
    case TALLY_SEARCH_GE: return TALLY_OP_GE;
    case TALLY_SEARCH_LT: return TALLY_OP_LT;
    case TALLY_SEARCH_LE: return TALLY_OP_LE;
    case TALLY_SEARCH_LIKE: return TALLY_OP_LIKE;
    case TALLY_SEARCH_ILIKE: return TALLY_OP_ILIKE;
    case TALLY_SEARCH_IN: return TALLY_OP_IN;
    case TALLY_SEARCH_NOT_IN: return TALLY_OP_NOT_IN;
    case TALLY_SEARCH_N_OPS: break;
    }
    return TALLY_OP_EQ;
}

/* The one place that knows search.h's AST: splits the parsed filter and
 * order into store predicates (attributes, params, tags, datasets: SQL) and
 * what is evaluated here (metrics), and lists the keys whose values the
 * order needs. 0 or -1 (out of memory). */
static int plan_search(const tally_search_filter *f, const tally_search_order *o,
                       tally_arena *a, plan *pl)
{
    memset(pl, 0, sizeof *pl);
    size_t nc = f ? f->n_clauses : 0, nk = o ? o->n_keys : 0;
    size_t cap = nc + nk + 1;
    pl->preds = tally_arena_alloc(a, cap * sizeof *pl->preds);
    pl->post = tally_arena_alloc(a, cap * sizeof *pl->post);
    pl->param_keys = tally_arena_alloc(a, cap * sizeof *pl->param_keys);
    pl->tag_keys = tally_arena_alloc(a, cap * sizeof *pl->tag_keys);
    pl->metric_keys = tally_arena_alloc(a, cap * sizeof *pl->metric_keys);
    if (!pl->preds || !pl->post || !pl->param_keys || !pl->tag_keys || !pl->metric_keys)
        return -1;
    for (size_t i = 0; i < nc; i++) {
        const tally_search_clause *c = &f->clauses[i];
        tally_store_pred *sp = &pl->preds[pl->n_preds];
        memset(sp, 0, sizeof *sp);
        switch (c->entity) {
        case TALLY_SEARCH_METRIC:
            pl->post[pl->n_post++] = c;
            if (add_key(a, &pl->metric_keys, &pl->n_metric_keys, cap, c->key) != 0)
                return -1;
            continue;
        case TALLY_SEARCH_ATTR: sp->entity = TALLY_PRED_ATTR; break;
        case TALLY_SEARCH_PARAM: sp->entity = TALLY_PRED_PARAM; break;
        case TALLY_SEARCH_TAG: sp->entity = TALLY_PRED_TAG; break;
        case TALLY_SEARCH_DATASET: sp->entity = TALLY_PRED_DATASET; break;
        case TALLY_SEARCH_N_ENTITIES: continue;
        }
        sp->key = c->key;
        sp->op = pred_op(c->op);
        if (c->value.type == TALLY_SEARCH_V_NUM) {
            sp->numeric = 1;
            sp->num = c->value.num;
        } else if (c->value.type == TALLY_SEARCH_V_LIST) {
            sp->list = c->value.list;
            sp->n_list = c->value.n_list;
        } else {
            sp->str = c->value.text;
        }
        pl->n_preds++;
    }
    for (size_t i = 0; i < nk; i++) {
        const tally_search_order_key *k = &o->keys[i];
        int rc = 0;
        if (k->entity == TALLY_SEARCH_PARAM)
            rc = add_key(a, &pl->param_keys, &pl->n_param_keys, cap, k->key);
        else if (k->entity == TALLY_SEARCH_TAG)
            rc = add_key(a, &pl->tag_keys, &pl->n_tag_keys, cap, k->key);
        else if (k->entity == TALLY_SEARCH_METRIC)
            rc = add_key(a, &pl->metric_keys, &pl->n_metric_keys, cap, k->key);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Latest values of the plan's metric keys for every row, from the engine. */
static int fetch_metrics(tally_engine *e, const plan *pl, const tally_run_row *rows, size_t n,
                         double *mval, uint8_t *mhas)
{
    size_t nk = pl->n_metric_keys;
    memset(mhas, 0, n * nk);
    if (!e || nk == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *rid = rows[i].info.run_id;
        size_t rlen = strlen(rid);
        for (size_t k = 0; k < nk; k++) {
            tally_series_id id;
            tally_series_info si;
            if (tally_engine_lookup(e, rid, rlen, pl->metric_keys[k], strlen(pl->metric_keys[k]),
                                    &id) != 0 ||
                tally_engine_series_info(e, id, &si) != 0 || si.n_points == 0)
                continue;
            mval[i * nk + k] = si.latest.value;
            mhas[i * nk + k] = 1;
        }
    }
    return 0;
}

static void handle_search(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    tally_search_filter *f = NULL;
    tally_search_order *o = NULL;
    double *mval = NULL;
    uint8_t *mhas = NULL;
    cand *cands = NULL;
    cand **hits = NULL;
    char err[1024] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    const char **exp_ids = NULL, **order_by = NULL;
    size_t n_exp = 0, n_order = 0;
    const char *filter = NULL, *token = NULL;
    int view = TALLY_VIEW_ACTIVE_ONLY;
    int32_t max_results = 0;
    int has_max;
    if (tally_params_strings(&p, "experiment_ids", &exp_ids, &n_exp, resp) < 0 ||
        tally_params_string(&p, "filter", &filter, resp) < 0 ||
        tally_params_enum(&p, "run_view_type", tally_api_view_names, tally_api_view_values, 3, &view, resp) < 0 ||
        (has_max = tally_params_int32(&p, "max_results", &max_results, resp)) < 0 ||
        tally_params_strings(&p, "order_by", &order_by, &n_order, resp) < 0 ||
        tally_params_string(&p, "page_token", &token, resp) < 0)
        goto out;
    if (has_max == 0 || max_results == 0)
        max_results = RUN_SEARCH_DEFAULT;
    if (max_results < 0 || max_results > RUN_SEARCH_MAX) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid value for parameter max_results. It must be at most %d, but "
                         "got value %d",
                         RUN_SEARCH_MAX, (int)max_results);
        goto out;
    }
    uint64_t offset;
    if (tally_api_page_token_decode(token, &offset) != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid page token, could not base64-decode");
        goto out;
    }
    int64_t *ids = tally_arena_alloc(a, (n_exp ? n_exp : 1) * sizeof *ids);
    if (!ids) {
        tally_api_oom(resp);
        goto out;
    }
    for (size_t i = 0; i < n_exp; i++)
        if (tally_api_parse_experiment_id(exp_ids[i], &ids[i], resp) < 0)
            goto out;
    /* With authentication on, the experiments the caller may not read leave
     * the query itself (their ids never reach the SQL), so pages stay full
     * and page tokens stay right (mlflow-auth.md §5, "Do: filter"). */
    size_t n_asked = n_exp;
    if (tally_api_keep_readable_experiments(srv, req, a, ids, &n_exp, resp) < 0)
        goto out;
    if (n_asked > 0 && n_exp == 0) {
        tally_buf_reset(&resp->body);
        tally_buf_append(&resp->body, "{}", 2);
        tally_api_ok_json(resp);
        goto out;
    }

    tally_search_error se;
    memset(&se, 0, sizeof se);
    int rc = tally_search_filter_parse(TALLY_SEARCH_RUNS, filter, filter ? strlen(filter) : 0, &f,
                                       &se);
    if (rc == 0)
        rc = tally_search_order_parse(TALLY_SEARCH_RUNS, order_by, n_order, &o, &se);
    if (rc == TALLY_ENOMEM) {
        tally_api_oom(resp);
        goto out;
    }
    if (rc != 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE, "%s", se.msg);
        goto out;
    }
    plan pl;
    if (plan_search(f, o, a, &pl) != 0) {
        tally_api_oom(resp);
        goto out;
    }
    tally_run_query q;
    memset(&q, 0, sizeof q);
    q.experiment_ids = ids;
    q.n_experiment_ids = n_exp;
    q.view = (tally_view_type)view;
    q.preds = pl.preds;
    q.n_preds = pl.n_preds;
    q.param_keys = pl.param_keys;
    q.n_param_keys = pl.n_param_keys;
    q.tag_keys = pl.tag_keys;
    q.n_tag_keys = pl.n_tag_keys;
    tally_run_row *rows;
    size_t n;
    rc = tally_store_search_runs(srv->store, &q, a, &rows, &n, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    size_t nk = pl.n_metric_keys;
    if (nk) {
        mval = malloc((n ? n : 1) * nk * sizeof *mval);
        mhas = malloc((n ? n : 1) * nk);
        if (!mval || !mhas) {
            tally_api_oom(resp);
            goto out;
        }
        fetch_metrics(srv->engine, &pl, rows, n, mval, mhas);
    }
    cands = malloc((n ? n : 1) * sizeof *cands);
    hits = malloc((n ? n : 1) * sizeof *hits);
    if (!cands || !hits) {
        tally_api_oom(resp);
        goto out;
    }
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        cands[i].row = &rows[i];
        cands[i].pl = &pl;
        cands[i].mval = nk ? mval + i * nk : NULL;
        cands[i].mhas = nk ? mhas + i * nk : NULL;
        tally_search_row r = cand_row(&cands[i]);
        int keep = 1;
        for (size_t c = 0; keep && c < pl.n_post; c++)
            keep = tally_search_match_clause(pl.post[c], &r);
        if (keep)
            hits[nh++] = &cands[i];
    }
    if (nh > 1)
        qsort_r(hits, nh, sizeof *hits, cand_cmp, o);
    size_t from = offset < nh ? (size_t)offset : nh;
    size_t to = nh - from > (size_t)max_results ? from + (size_t)max_results : nh;
    size_t np = to - from;
    tally_run_info *infos = tally_arena_alloc(a, (np ? np : 1) * sizeof *infos);
    tally_run *page = tally_arena_alloc(a, (np ? np : 1) * sizeof *page);
    if (!infos || !page) {
        tally_api_oom(resp);
        goto out;
    }
    for (size_t i = 0; i < np; i++)
        infos[i] = hits[from + i]->row->info;
    rc = tally_store_runs_data(srv->store, infos, np, a, page, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_json j;
    tally_api_list_begin(&j, resp, "runs", np);
    for (size_t i = 0; i < np; i++)
        tally_api_write_run(&j, srv->engine, &page[i]);
    tally_api_list_end(&j, resp, np, to < nh, to);
out:
    free(mval);
    free(mhas);
    free(cands);
    free(hits);
    tally_search_filter_free(f);
    tally_search_order_free(o);
    tally_arena_free(a);
    tally_params_close(&p);
}

const tally_route tally_routes_runs[] = {
    {TALLY_POST, "mlflow/runs/create", 1, 0, 0, 0, handle_create, "runs/create"},
    {TALLY_GET, "mlflow/runs/get", 1, 0, 0, 0, handle_get, "runs/get"},
    {TALLY_POST, "mlflow/runs/update", 1, 0, 0, 0, handle_update, "runs/update"},
    {TALLY_POST, "mlflow/runs/delete", 1, 0, 0, 0, handle_delete, "runs/delete"},
    {TALLY_POST, "mlflow/runs/restore", 1, 0, 0, 0, handle_restore, "runs/restore"},
    {TALLY_POST, "mlflow/runs/search", 1, 0, 0, 0, handle_search, "runs/search"},
    {TALLY_POST, "mlflow/runs/set-tag", 1, 0, 0, 0, handle_set_tag, "runs/set-tag"},
    {TALLY_POST, "mlflow/runs/delete-tag", 1, 0, 0, 0, handle_delete_tag, "runs/delete-tag"},
    {TALLY_POST, "mlflow/runs/log-parameter", 1, 0, 0, 0, handle_log_param,
     "runs/log-parameter"},
    {TALLY_POST, "mlflow/runs/log-inputs", 1, 0, 0, 0, handle_log_inputs, "runs/log-inputs"},
    {0},
};
