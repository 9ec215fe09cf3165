/*
 * authz.c — authorization (authz.h): the rule table, the checks, the
 * after-request effects and the audit record.
 *
 * RULES lists (methods, path, need, resource, effects) per endpoint, paths
 * spelled as in the route tables (relative "mlflow/..." for API routes,
 * absolute "/health" otherwise). Rules for endpoints this build does not
 * serve (the model registry, written elsewhere) are harmless: only routes
 * without a rule are an error (authz.h invariant (1)).
 *
 * Needs (mlflow-auth.md §4):
 *   PUBLIC          no credentials (/health only)
 *   AUTHED          any authenticated user (searches filter their results)
 *   READ/EDIT/MANAGE the caller's effective level on the resource
 *   SELF            the `username` parameter is the caller, or an admin
 *   ADMIN           admins only
 *
 * Resources: EXP (experiment_id), EXP0 (experiment_id, empty = "0":
 * runs/create), EXP_NAME (experiment_name), RUN (run_id / run_uuid -> its
 * experiment), RUNS (every run_id / run_ids -> each experiment), MODEL
 * (name), FRAME (every run of a native ingest frame), APATH (the leading
 * all-digit segment of an artifact path; else the default permission).
 *
 * Parameter reading follows params.c's choice of source (query string for
 * GET and for DELETE with an empty body, else the JSON body, read by
 * authz_body.c without building a tree: log-batch bodies are large and the
 * handler parses them anyway). Every spelling of the parameter is
 * collected; two different values are refused (authz.h invariant (3)).
 */
#include "authz.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_error.h"
#include "api_tracking.h"
#include "audit.h"
#include "native_frame.h"
#include "params.h"
#include "routes.h"
#include "store.h"
#include "store_auth.h"

typedef enum need { PUBLIC, AUTHED, READ, EDIT, MANAGE, SELF, ADMIN } need;
typedef enum res { NONE, EXP, EXP0, EXP_NAME, RUN, RUNS, MODEL, FRAME, APATH } res;

enum {
    AUDIT = 1,         /* state-changing: one audit record per request */
    GRANT_EXP = 2,     /* experiments/create: MANAGE row for the creator */
    GRANT_MODEL = 4,   /* registered-models/create: MANAGE row for the creator */
    RENAME_MODEL = 8,  /* registered-models/rename: rows follow the name */
    DROP_MODEL = 16    /* registered-models/delete: the sender's row goes */
};

typedef struct rule {
    unsigned methods;  /* OR of tally_method */
    const char *path;
    need need;
    res res;
    unsigned fx;
} rule;

#define G TALLY_GET
#define P TALLY_POST
#define PA TALLY_PATCH
#define D TALLY_DELETE
#define PU TALLY_PUT
#define ANY (TALLY_GET | TALLY_POST | TALLY_PUT | TALLY_PATCH | TALLY_DELETE | TALLY_HEAD)

static const rule RULES[] = {
    /* operations */
    {ANY, "/health", PUBLIC, NONE, 0},
    {ANY, "/version", AUTHED, NONE, 0},
    {ANY, "/metrics", AUTHED, NONE, 0},
    /* experiments */
    {ANY, "mlflow/experiments/create", AUTHED, NONE, AUDIT | GRANT_EXP},
    {ANY, "mlflow/experiments/get", READ, EXP, 0},
    {ANY, "mlflow/experiments/get-by-name", READ, EXP_NAME, 0},
    {ANY, "mlflow/experiments/search", AUTHED, NONE, 0},
    {ANY, "mlflow/experiments/list", AUTHED, NONE, 0},
    {ANY, "mlflow/experiments/update", EDIT, EXP, AUDIT},
    {ANY, "mlflow/experiments/delete", MANAGE, EXP, AUDIT},
    {ANY, "mlflow/experiments/restore", MANAGE, EXP, AUDIT},
    {ANY, "mlflow/experiments/set-experiment-tag", EDIT, EXP, AUDIT},
    {ANY, "mlflow/experiments/delete-experiment-tag", EDIT, EXP, AUDIT},
    {ANY, "mlflow/experimentsset-experiment-tag", EDIT, EXP, AUDIT},
    /* runs */
    {ANY, "mlflow/runs/create", EDIT, EXP0, AUDIT},
    {ANY, "mlflow/runs/get", READ, RUN, 0},
    {ANY, "mlflow/runs/update", EDIT, RUN, AUDIT},
    {ANY, "mlflow/runs/delete", MANAGE, RUN, AUDIT},
    {ANY, "mlflow/runs/restore", MANAGE, RUN, AUDIT},
    {ANY, "mlflow/runs/search", AUTHED, NONE, 0},
    {ANY, "mlflow/runs/set-tag", EDIT, RUN, AUDIT},
    {ANY, "mlflow/runs/delete-tag", EDIT, RUN, AUDIT},
    {ANY, "mlflow/runs/log-parameter", EDIT, RUN, AUDIT},
    {ANY, "mlflow/runs/log-metric", EDIT, RUN, AUDIT},
    {ANY, "mlflow/runs/log-batch", EDIT, RUN, AUDIT},
    {ANY, "mlflow/runs/log-model", EDIT, RUN, AUDIT},
    {ANY, "mlflow/runs/log-inputs", EDIT, RUN, AUDIT},    /* MLflow: unchecked; §4 "Do" */
    {ANY, "mlflow/runs/outputs", EDIT, RUN, AUDIT},       /* the same */
    /* metrics and artifacts */
    {ANY, "mlflow/metrics/get-history", READ, RUN, 0},
    {ANY, "mlflow/metrics/get-history-bulk", READ, RUNS, 0},
    {ANY, "mlflow/metrics/get-history-bulk-interval", READ, RUNS, 0},
    {ANY, "mlflow/artifacts/list", READ, RUN, 0},
    {ANY, "/get-artifact", READ, RUN, 0},
    {G | TALLY_HEAD, "mlflow-artifacts/artifacts/", READ, APATH, 0},
    {PU, "mlflow-artifacts/artifacts/", EDIT, APATH, AUDIT},
    {D, "mlflow-artifacts/artifacts/", MANAGE, APATH, AUDIT},
    {ANY, "mlflow-artifacts/artifacts", AUTHED, NONE, 0},
    {ANY, "mlflow/upload-artifact", EDIT, RUN, AUDIT},
    /* multipart uploads: always 501 NOT_IMPLEMENTED (§3.6), nothing to guard */
    {P, "mlflow-artifacts/mpu/create/", AUTHED, NONE, 0},
    {P, "mlflow-artifacts/mpu/complete/", AUTHED, NONE, 0},
    {P, "mlflow-artifacts/mpu/abort/", AUTHED, NONE, 0},
    /* native API */
    {ANY, "tally/ingest", EDIT, FRAME, AUDIT},
    {ANY, "tally/query", READ, RUNS, 0},
    {ANY, "tally/run-summaries", READ, RUNS, 0},
    /* the web UI's pages and assets (ui_static.c): signed-in users, so a
     * browser asks for credentials at once (401 + WWW-Authenticate) and
     * sends them with every API call the app makes */
    {ANY, "/", AUTHED, NONE, 0},
    {ANY, "/experiments", AUTHED, NONE, 0},
    {ANY, "/runs/", AUTHED, NONE, 0},
    {ANY, "/compare", AUTHED, NONE, 0},
    {ANY, "/models", AUTHED, NONE, 0},
    {ANY, "/assets/", AUTHED, NONE, 0},
    /* model registry (mlflow-auth.md §4; routes on the registry branch) */
    {ANY, "mlflow/registered-models/create", AUTHED, NONE, AUDIT | GRANT_MODEL},
    {ANY, "mlflow/registered-models/get", READ, MODEL, 0},
    {ANY, "mlflow/registered-models/search", AUTHED, NONE, 0},
    {ANY, "mlflow/registered-models/get-latest-versions", READ, MODEL, 0},
    {ANY, "mlflow/registered-models/update", EDIT, MODEL, AUDIT},
    {ANY, "mlflow/registered-models/rename", EDIT, MODEL, AUDIT | RENAME_MODEL},
    {ANY, "mlflow/registered-models/set-tag", EDIT, MODEL, AUDIT},
    {ANY, "mlflow/registered-models/delete-tag", EDIT, MODEL, AUDIT},
    {ANY, "mlflow/registered-models/delete", MANAGE, MODEL, AUDIT | DROP_MODEL},
    {G | TALLY_HEAD, "mlflow/registered-models/alias", READ, MODEL, 0},
    {P, "mlflow/registered-models/alias", EDIT, MODEL, AUDIT},
    {D, "mlflow/registered-models/alias", MANAGE, MODEL, AUDIT},
    {ANY, "mlflow/model-versions/create", EDIT, MODEL, AUDIT},
    {ANY, "mlflow/model-versions/get", READ, MODEL, 0},
    {ANY, "mlflow/model-versions/get-download-uri", READ, MODEL, 0},
    {ANY, "mlflow/model-versions/search", AUTHED, NONE, 0},
    {ANY, "mlflow/model-versions/update", EDIT, MODEL, AUDIT},
    {ANY, "mlflow/model-versions/transition-stage", EDIT, MODEL, AUDIT},
    {ANY, "mlflow/model-versions/set-tag", EDIT, MODEL, AUDIT},
    {ANY, "mlflow/model-versions/delete-tag", MANAGE, MODEL, AUDIT},
    {ANY, "mlflow/model-versions/delete", MANAGE, MODEL, AUDIT},
    {ANY, "/model-versions/get-artifact", READ, MODEL, 0},
    /* webhooks (other branch). MLflow: any authenticated user; a webhook sees
     * every registry event of every model, so here: admins only. */
    {G | TALLY_HEAD, "mlflow/webhooks", ADMIN, NONE, 0},
    {P, "mlflow/webhooks", ADMIN, NONE, AUDIT},
    {G | TALLY_HEAD, "mlflow/webhooks/", ADMIN, NONE, 0},
    {P | PA | D, "mlflow/webhooks/", ADMIN, NONE, AUDIT},
    /* logged models (other branch). The id routes need a model id ->
     * experiment lookup this branch does not have: admins only until one is
     * wired (see the report / docs/api.md). */
    {P, "mlflow/logged-models", EDIT, EXP, AUDIT},
    {ANY, "mlflow/logged-models/search", AUTHED, NONE, 0},
    {G | TALLY_HEAD, "mlflow/logged-models/", ADMIN, NONE, 0},
    {P | PA | D | PU, "mlflow/logged-models/", ADMIN, NONE, AUDIT},
    /* users and permissions (api_auth.c; mlflow-auth.md §6) */
    {ANY, "mlflow/users/create", ADMIN, NONE, AUDIT},
    {ANY, "mlflow/users/get", SELF, NONE, 0},
    {ANY, "mlflow/users/update-password", SELF, NONE, AUDIT},
    {ANY, "mlflow/users/update-admin", ADMIN, NONE, AUDIT},
    {ANY, "mlflow/users/delete", ADMIN, NONE, AUDIT},
    {ANY, "mlflow/experiments/permissions/create", MANAGE, EXP, AUDIT},
    {ANY, "mlflow/experiments/permissions/get", MANAGE, EXP, 0},
    {ANY, "mlflow/experiments/permissions/update", MANAGE, EXP, AUDIT},
    {ANY, "mlflow/experiments/permissions/delete", MANAGE, EXP, AUDIT},
    {ANY, "mlflow/registered-models/permissions/create", MANAGE, MODEL, AUDIT},
    {ANY, "mlflow/registered-models/permissions/get", MANAGE, MODEL, 0},
    {ANY, "mlflow/registered-models/permissions/update", MANAGE, MODEL, AUDIT},
    {ANY, "mlflow/registered-models/permissions/delete", MANAGE, MODEL, AUDIT},
    /* tokens and audit (api_auth.c, api_audit.c) */
    {ANY, "tally/tokens/create", AUTHED, NONE, AUDIT},
    {ANY, "tally/tokens/list", AUTHED, NONE, 0},
    {ANY, "tally/tokens/revoke", AUTHED, NONE, AUDIT},
    {ANY, "tally/audit/search", ADMIN, NONE, 0},
};
#define N_RULES (sizeof RULES / sizeof RULES[0])

#undef G
#undef P
#undef PA
#undef D
#undef PU

/* method bit -> slot 0..5 */
static int method_slot(unsigned m)
{
    for (int i = 0; i < 6; i++)
        if (m == (1u << i))
            return i;
    return -1;
}

static const rule **rule_index; /* [route index * 6 + method slot] */

int tally_authz_verify_routes(void)
{
    if (rule_index)
        return 0;
    if (tally_routes_init() != 0)
        return -1;
    size_t n = tally_routes_count();
    const rule **idx = calloc(n ? n * 6 : 1, sizeof *idx);
    if (!idx)
        return -1;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const tally_route *r = tally_routes_get(i);
        for (int s = 0; s < 6; s++) {
            unsigned m = 1u << s;
            /* HEAD is served by the GET route unless the route lists HEAD. */
            if (!(r->methods & m) && !(m == TALLY_HEAD && (r->methods & TALLY_GET)))
                continue;
            for (size_t k = 0; k < N_RULES && !idx[i * 6 + (size_t)s]; k++)
                if ((RULES[k].methods & m) && strcmp(RULES[k].path, r->path) == 0)
                    idx[i * 6 + (size_t)s] = &RULES[k];
            if (!idx[i * 6 + (size_t)s] && m != TALLY_HEAD) {
                fprintf(stderr,
                        "tally: route '%s' (%s, method %u) has no permission rule in "
                        "server/authz.c RULES\n",
                        r->name, r->path, m);
                bad = 1;
            }
        }
    }
    if (bad) {
        free(idx);
        return -1;
    }
    rule_index = idx; /* set once at start, before any request; never freed */
    return 0;
}

static const rule *rule_for(const tally_route *route, tally_method m)
{
    if (!route || !rule_index)
        return NULL;
    for (size_t i = 0; i < tally_routes_count(); i++) {
        if (tally_routes_get(i) != route)
            continue;
        int s = method_slot((unsigned)m);
        const rule *r = s >= 0 ? rule_index[i * 6 + (size_t)s] : NULL;
        if (!r && m == TALLY_HEAD)
            r = rule_index[i * 6 + (size_t)method_slot(TALLY_GET)];
        return r;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                 */
/* ------------------------------------------------------------------------ */

static void unauthenticated(tally_resp *resp)
{
    tally_resp_error(resp, TALLY_API_UNAUTHENTICATED,
                     "You are not authenticated. Please see the Tally documentation "
                     "(docs/api.md, Authentication) on how to authenticate.");
    tally_resp_header(resp, "WWW-Authenticate", "Basic realm=\"tally\"");
}

static void denied(tally_resp *resp)
{
    tally_resp_error(resp, TALLY_API_PERMISSION_DENIED, "Permission denied");
}

int tally_authz_authenticate(tally_server *srv, const tally_route *route, tally_method method,
                             const char *authorization, tally_authz_state *st, tally_resp *resp)
{
    memset(st, 0, sizeof *st);
    const rule *r = rule_for(route, method);
    st->rule = r;
    if (r && r->need == PUBLIC)
        return 0;
    if (tally_auth_authenticate(srv->auth, authorization, &st->who) != 0) {
        unauthenticated(resp);
        return -1;
    }
    st->authed = 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Reading the resource parameter (the body side is authz_body.c)             */
/* ------------------------------------------------------------------------ */

/* Values of tally__authz_body_field (authz.h). */
enum { P_ABSENT = 0, P_FOUND = 1, P_AMBIGUOUS = -1, P_BAD = -2 };

static int is_name(const char *key, size_t n, const char *const *names)
{
    for (; *names; names++)
        if (strlen(*names) == n && memcmp(key, *names, n) == 0)
            return 1;
    return 0;
}

static int body_field(const char *body, size_t len, const char *const *names, char *out,
                      size_t cap)
{
    return tally__authz_body_field(body, len, names, out, cap, 0);
}

static int all_ws(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

/* Where params.c reads this request's fields from. */
static int from_query(const tally_req *req)
{
    int is_get = req->method == TALLY_GET || req->method == TALLY_HEAD;
    int empty = all_ws(req->body ? req->body : "", req->body ? req->body_len : 0);
    return (is_get || req->method == TALLY_DELETE) && req->n_args > 0 && (is_get || empty);
}

/* One resource parameter, any of its spellings (names[0] is the canonical
 * one). P_FOUND with out, P_ABSENT, or -1 with resp filled. */
static int get_param(const tally_req *req, const char *const *names, char *out, size_t cap,
                     tally_resp *resp)
{
    int rc;
    if (from_query(req)) {
        rc = P_ABSENT;
        for (size_t i = 0; i < req->n_args && rc != P_AMBIGUOUS; i++) {
            if (!is_name(req->args[i].key, strlen(req->args[i].key), names) ||
                !*req->args[i].value)
                continue;
            const char *v = req->args[i].value;
            if (rc == P_FOUND && strcmp(out, v) != 0)
                rc = P_AMBIGUOUS;
            else if (strlen(v) + 1 > cap)
                rc = P_BAD;
            else {
                memcpy(out, v, strlen(v) + 1);
                rc = P_FOUND;
            }
            if (rc == P_BAD)
                break;
        }
    } else {
        rc = body_field(req->body ? req->body : "", req->body ? req->body_len : 0, names, out,
                        cap);
        if (rc == P_BAD) {
            /* Not a plain object (a double-encoded body, a value that is not
             * a string): read it exactly as the handler will. */
            tally_params p;
            if (tally_params_open(&p, req, resp) != 0)
                return -1;
            const char *v = NULL;
            int r = tally_params_string(&p, names[0], &v, resp);
            if (r > 0 && v && *v && strlen(v) < cap) {
                memcpy(out, v, strlen(v) + 1);
                rc = P_FOUND;
            } else {
                rc = r < 0 ? -2 : P_ABSENT;
            }
            tally_params_close(&p);
            if (rc == -2)
                return -1;
        }
    }
    if (rc == P_AMBIGUOUS) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Parameter '%s' is given more than once (or in more than one "
                         "spelling) with different values.",
                         names[0]);
        return -1;
    }
    if (rc == P_BAD) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid value for parameter '%s'.", names[0]);
        return -1;
    }
    if (rc == P_FOUND && !*out)
        rc = P_ABSENT;
    return rc;
}

static int missing(tally_resp *resp, const char *name)
{
    tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                     "Missing value for required parameter '%s'. See the API docs for more "
                     "information about request parameters.",
                     name);
    return -1;
}

static const char *const N_EXP[] = {"experiment_id", "experimentId", NULL};
static const char *const N_EXP_NAME[] = {"experiment_name", "experimentName", NULL};
static const char *const N_RUN[] = {"run_id", "runId", "run_uuid", "runUuid", NULL};
static const char *const N_NAME[] = {"name", NULL};
static const char *const N_USER[] = {"username", NULL};

/* ------------------------------------------------------------------------ */
/* The check                                                                 */
/* ------------------------------------------------------------------------ */

/* Checks level `want` on a resource of `kind` (an experiment id as decimal
 * text, or a model name). 0 or -1 (resp). */
static int check_perm(tally_server *srv, tally_authz_state *st, tally_perm_kind kind,
                      const char *resource, int want, tally_resp *resp)
{
    int perm;
    if (tally_auth_effective(srv->auth, &st->who, kind, resource, &perm) != 0) {
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE,
                         "Permission lookup failed (metadata store unavailable).");
        return -1;
    }
    if (perm < want) {
        denied(resp);
        return -1;
    }
    return 0;
}

static int check_exp(tally_server *srv, tally_authz_state *st, const char *exp, int want,
                     tally_resp *resp)
{
    return check_perm(srv, st, TALLY_PERM_EXPERIMENT, exp, want, resp);
}

static int check_model(tally_server *srv, tally_authz_state *st, const char *name, int want,
                       tally_resp *resp)
{
    return check_perm(srv, st, TALLY_PERM_MODEL, name, want, resp);
}

/* Experiment of a run as decimal text; -1 with 404 when unknown. */
static int run_experiment(tally_server *srv, const char *run_id, char *exp, size_t cap,
                          tally_resp *resp)
{
    tally_run_state rs;
    if (tally_store_run_state(srv->store, run_id, &rs) != 0) {
        tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE,
                         "Permission lookup failed (metadata store unavailable).");
        return -1;
    }
    if (!rs.exists) {
        tally_resp_error(resp, TALLY_API_RESOURCE_DOES_NOT_EXIST, "Run with id=%.300s not found",
                         run_id);
        return -1;
    }
    snprintf(exp, cap, "%" PRId64, rs.experiment_id);
    return 0;
}

/* RUNS: every run id of run_ids / run_id (query strings repeat them; JSON
 * gives arrays), each checked. */
static int check_runs(tally_server *srv, const tally_req *req, tally_authz_state *st, int want,
                      tally_resp *resp)
{
    tally_params p;
    if (tally_params_open(&p, req, resp) != 0)
        return -1;
    static const char *const keys[] = {"run_ids", "run_id"};
    int rc = 0, n_total = 0;
    for (size_t k = 0; k < 2 && rc == 0; k++) {
        const char **ids = NULL;
        size_t n = 0;
        int r = tally_params_strings(&p, keys[k], &ids, &n, resp);
        if (r < 0) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            char exp[32];
            n_total++;
            if (run_experiment(srv, ids[i], exp, sizeof exp, resp) != 0 ||
                check_exp(srv, st, exp, want, resp) != 0)
                rc = -1;
            else if (n_total == 1)
                snprintf(st->resource, sizeof st->resource, "run_id=%.100s", ids[i]);
        }
    }
    tally_params_close(&p);
    return rc;
}

static int check_frame(tally_server *srv, const tally_req *req, tally_authz_state *st, int want,
                       tally_resp *resp)
{
    tally_frame_decoder d;
    tally_frame_decoder_init(&d);
    int rc = 0;
    if (tally_frame_decode(&d, req->body, req->body_len, 0, NULL, 0) != 0) {
        /* The handler refuses the same bytes with the decoder's message and
         * writes nothing. */
        tally_frame_decoder_free(&d);
        return 0;
    }
    char run[TALLY_FRAME_MAX_RUN_ID + 1];
    const char *prev = NULL;
    size_t prev_len = 0;
    for (size_t i = 0; i < d.n_series && rc == 0; i++) {
        const tally_series_batch *s = &d.series[i];
        if (prev && prev_len == s->run_id_len && memcmp(prev, s->run_id, prev_len) == 0)
            continue;
        prev = s->run_id;
        prev_len = s->run_id_len;
        if (s->run_id_len > TALLY_FRAME_MAX_RUN_ID || memchr(s->run_id, 0, s->run_id_len))
            continue; /* the handler refuses it */
        memcpy(run, s->run_id, s->run_id_len);
        run[s->run_id_len] = 0;
        tally_run_state rs;
        if (tally_store_run_state(srv->store, run, &rs) != 0) {
            tally_resp_error(resp, TALLY_API_TEMPORARILY_UNAVAILABLE,
                             "Permission lookup failed (metadata store unavailable).");
            rc = -1;
        } else if (rs.exists) { /* unknown runs: the handler answers 404 */
            char exp[32];
            snprintf(exp, sizeof exp, "%" PRId64, rs.experiment_id);
            rc = check_exp(srv, st, exp, want, resp);
            if (rc == 0 && !st->resource[0])
                snprintf(st->resource, sizeof st->resource, "run_id=%.100s", run);
        }
    }
    tally_frame_decoder_free(&d);
    return rc;
}

int tally_authz_check(tally_server *srv, const tally_req *req, const tally_route *route,
                      tally_authz_state *st, tally_resp *resp)
{
    const rule *r = st->rule ? st->rule : rule_for(route, req->method);
    st->rule = r;
    if (!r) {
        denied(resp); /* cannot happen after tally_authz_verify_routes */
        return -1;
    }
    if (r->need == PUBLIC)
        return 0;
    if (!st->authed) {
        unauthenticated(resp);
        return -1;
    }
    char v[512];
    int want = r->need == READ ? TALLY_PERM_READ : r->need == EDIT ? TALLY_PERM_EDIT
                                                                   : TALLY_PERM_MANAGE;
    int rc;
    /* The resource is read for the audit log even when an admin skips the
     * check (authz.h invariant (2)). */
    switch (r->res) {
    case EXP:
    case EXP0:
        rc = get_param(req, N_EXP, v, sizeof v, resp);
        if (rc < 0)
            return -1;
        if (rc == P_ABSENT) {
            if (r->res == EXP)
                return missing(resp, "experiment_id");
            snprintf(v, sizeof v, "0");
        }
        int64_t id;
        if (tally_api_parse_experiment_id(v, &id, resp) < 0)
            return -1;
        snprintf(v, sizeof v, "%" PRId64, id);
        snprintf(st->resource, sizeof st->resource, "experiment_id=%.100s", v);
        return st->who.is_admin ? 0 : check_exp(srv, st, v, want, resp);
    case EXP_NAME: {
        rc = get_param(req, N_EXP_NAME, v, sizeof v, resp);
        if (rc < 0)
            return -1;
        if (rc == P_ABSENT)
            return missing(resp, "experiment_name");
        tally_arena *a = tally_arena_new();
        tally_experiment e;
        char err[512] = "";
        int src = a ? tally_store_get_experiment_by_name(srv->store, v, a, &e, err, sizeof err)
                    : TALLY_STORE_ENOMEM;
        tally_arena_free(a);
        if (src != 0) {
            tally_api_store_error(resp, src, err);
            return -1;
        }
        snprintf(v, sizeof v, "%" PRId64, e.experiment_id);
        snprintf(st->resource, sizeof st->resource, "experiment_id=%.100s", v);
        return st->who.is_admin ? 0 : check_exp(srv, st, v, want, resp);
    }
    case RUN: {
        rc = get_param(req, N_RUN, v, sizeof v, resp);
        if (rc < 0)
            return -1;
        if (rc == P_ABSENT)
            return missing(resp, "run_id");
        snprintf(st->resource, sizeof st->resource, "run_id=%.150s", v);
        if (st->who.is_admin)
            return 0;
        char exp[32];
        if (run_experiment(srv, v, exp, sizeof exp, resp) != 0)
            return -1;
        return check_exp(srv, st, exp, want, resp);
    }
    case RUNS:
        return st->who.is_admin ? 0 : check_runs(srv, req, st, want, resp);
    case FRAME:
        return st->who.is_admin ? 0 : check_frame(srv, req, st, want, resp);
    case MODEL:
        rc = get_param(req, N_NAME, v, sizeof v, resp);
        if (rc < 0)
            return -1;
        if (rc == P_ABSENT)
            return missing(resp, "name");
        snprintf(st->resource, sizeof st->resource, "name=%.150s", v);
        return st->who.is_admin ? 0 : check_model(srv, st, v, want, resp);
    case APATH: {
        const char *s = req->sub_path ? req->sub_path : "";
        size_t nd = 0;
        while (isdigit((unsigned char)s[nd]))
            nd++;
        snprintf(st->resource, sizeof st->resource, "path=%.150s", s);
        if (st->who.is_admin)
            return 0;
        if (nd && s[nd] == '/' && nd < 20) {
            snprintf(v, sizeof v, "%.*s", (int)nd, s);
            return check_exp(srv, st, v, want, resp);
        }
        if (tally_auth_default_permission(srv->auth) < want) {
            denied(resp);
            return -1;
        }
        return 0;
    }
    case NONE:
        break;
    }
    switch (r->need) {
    case ADMIN:
        if (!st->who.is_admin) {
            denied(resp);
            return -1;
        }
        return 0;
    case SELF:
        rc = get_param(req, N_USER, v, sizeof v, resp);
        if (rc < 0)
            return -1;
        if (rc == P_ABSENT)
            return missing(resp, "username");
        snprintf(st->resource, sizeof st->resource, "username=%.150s", v);
        if (!st->who.is_admin && strcmp(v, st->who.username) != 0) {
            denied(resp);
            return -1;
        }
        return 0;
    case PUBLIC:
    case AUTHED:
    case READ:
    case EDIT:
    case MANAGE:
        break;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* After the handler                                                         */
/* ------------------------------------------------------------------------ */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_warn(const char *what, const char *err)
{
    fprintf(stderr, "{\"level\":\"warn\",\"component\":\"auth\",\"message\":\"%s: %s\"}\n", what,
            err);
}

void tally_authz_after(tally_server *srv, const tally_req *req, const tally_route *route,
                       const char *method_name, tally_authz_state *st, const tally_resp *resp)
{
    const rule *r = st->rule ? st->rule : rule_for(route, req->method);
    if (!r || !st->authed)
        return;
    char err[512] = "";
    int status = resp->status ? resp->status : 500;
    tally_resp scratch; /* get_param's errors, unused here: the reply is already made */
    memset(&scratch, 0, sizeof scratch);
    scratch.fd = -1;
    if (status < 400 && r->fx & (GRANT_EXP | GRANT_MODEL | RENAME_MODEL | DROP_MODEL)) {
        char v[512], nn[512];
        int rc = 0, changed = 0;
        if (r->fx & GRANT_EXP) {
            /* The new id is in the handler's reply {"experiment_id": "N"}. */
            if (body_field(resp->body.data ? resp->body.data : "", resp->body.len, N_EXP, v,
                           sizeof v) == P_FOUND) {
                rc = tally_store_perm_upsert(srv->store, TALLY_PERM_EXPERIMENT, v, st->who.user_id,
                                             TALLY_PERM_MANAGE, err, sizeof err);
                snprintf(st->resource, sizeof st->resource, "experiment_id=%.100s", v);
                changed = 1;
            }
        } else if (get_param(req, N_NAME, v, sizeof v, &scratch) == P_FOUND) {
            static const char *const N_NEW[] = {"new_name", "newName", NULL};
            if (r->fx & GRANT_MODEL) {
                rc = tally_store_perm_upsert(srv->store, TALLY_PERM_MODEL, v, st->who.user_id,
                                             TALLY_PERM_MANAGE, err, sizeof err);
                changed = 1;
            } else if (r->fx & DROP_MODEL) {
                rc = tally_store_perm_remove(srv->store, TALLY_PERM_MODEL, v, st->who.user_id, err,
                                             sizeof err);
                changed = 1;
            } else if (get_param(req, N_NEW, nn, sizeof nn, &scratch) == P_FOUND) {
                rc = tally_store_perm_rename_model(srv->store, v, nn, err, sizeof err);
                changed = 1;
            }
            snprintf(st->resource, sizeof st->resource, "name=%.150s", v);
        }
        tally_buf_free(&scratch.body);
        if (changed)
            tally_auth_permissions_changed(srv->auth);
        if (rc != 0)
            log_warn("permission row effect failed", err);
    }
    if ((r->fx & AUDIT) && srv->audit) {
        tally_audit_record rec;
        memset(&rec, 0, sizeof rec);
        rec.time_ms = wall_ms();
        rec.username = st->who.username;
        rec.method = method_name;
        rec.route = route ? route->name : "";
        rec.path = req->path;
        rec.resource = st->resource;
        rec.status = status;
        rec.remote = req->remote_addr;
        tally_audit_add(srv->audit, &rec); /* audit.c reports its own failures */
    }
}

/* ------------------------------------------------------------------------ */
/* Readable sets                                                             */
/* ------------------------------------------------------------------------ */

static int readable(tally_server *srv, const tally_req *req, tally_perm_kind kind,
                    tally_arena *a, tally_readable_set *out)
{
    memset(out, 0, sizeof *out);
    const tally_principal *who = req->principal;
    if (!srv->auth || !who || who->is_admin) {
        out->all = 1;
        return 0;
    }
    out->default_readable = tally_auth_default_permission(srv->auth) >= TALLY_PERM_READ;
    tally_perm_row *rows;
    size_t n;
    int rc = tally_store_perm_list_user(srv->store, kind, who->user_id, a, &rows, &n, NULL, 0);
    if (rc != 0)
        return rc;
    out->rows = rows;
    out->n_rows = n;
    return 0;
}

int tally_authz_readable_experiments(tally_server *srv, const tally_req *req, tally_arena *a,
                                     tally_readable_set *out)
{
    return readable(srv, req, TALLY_PERM_EXPERIMENT, a, out);
}

int tally_authz_readable_models(tally_server *srv, const tally_req *req, tally_arena *a,
                                tally_readable_set *out)
{
    return readable(srv, req, TALLY_PERM_MODEL, a, out);
}

int tally_readable_has(const tally_readable_set *set, const char *resource)
{
    if (set->all)
        return 1;
    size_t lo = 0, hi = set->n_rows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(set->rows[mid].resource, resource);
        if (c == 0)
            return set->rows[mid].perm >= TALLY_PERM_READ;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return set->default_readable;
}

int tally_readable_has_experiment(const tally_readable_set *set, int64_t experiment_id)
{
    if (set->all)
        return 1;
    char id[32];
    snprintf(id, sizeof id, "%" PRId64, experiment_id);
    return tally_readable_has(set, id);
}
