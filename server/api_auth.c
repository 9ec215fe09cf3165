/*
 * api_auth.c — the users and permissions REST API of MLflow's basic-auth app
 * (mlflow-auth.md §6) and Tally's API tokens:
 *
 *   POST   mlflow/users/create                       admin
 *   GET    mlflow/users/get                          self or admin
 *   PATCH  mlflow/users/update-password              self or admin
 *   PATCH  mlflow/users/update-admin                 admin
 *   DELETE mlflow/users/delete                       admin (rows and tokens go too)
 *   POST/GET/PATCH/DELETE mlflow/experiments/permissions/{create,get,update,delete}
 *   POST/GET/PATCH/DELETE mlflow/registered-models/permissions/{create,get,update,delete}
 *                                                    MANAGE on the resource
 *   POST   tally/tokens/create  {name, username?, expires_in_s?}
 *                               -> {"token": secret, "token_info": {...}}
 *   GET    tally/tokens/list    {username?}  -> {"tokens": [...]}
 *   POST   tally/tokens/revoke  {id}         -> {}
 *
 * Who may call what is authz.c's table; this file only checks what depends
 * on the stored data (token ownership). Every change here tells auth.c, so
 * that its caches forget (auth.h invariants (1), (2)) before the reply.
 * With authentication off every route answers 404 ENDPOINT_NOT_FOUND.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api_error.h"
#include "api_tracking.h"
#include "app.h"
#include "auth.h"
#include "json_out.h"
#include "params.h"
#include "store_auth.h"

#define MIN_PASSWORD 12
#define MAX_TOKEN_NAME 256

static int auth_on(tally_server *srv, tally_resp *resp)
{
    if (srv->auth)
        return 1;
    tally_resp_error(resp, TALLY_API_ENDPOINT_NOT_FOUND,
                     "Authentication is not enabled on this server (start it with --auth).");
    return 0;
}

static void plain_400(tally_resp *resp, const char *text)
{
    tally_buf_reset(&resp->body);
    tally_buf_append(&resp->body, text, strlen(text));
    resp->status = 400;
    resp->content_type = "text/plain; charset=utf-8";
}

static int parse_perm(const char *s, int *out, tally_resp *resp)
{
    *out = tally_perm_parse(s);
    if (*out < 0) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Invalid permission '%s'. Valid permissions are: ('READ', 'EDIT', "
                         "'MANAGE', 'NO_PERMISSIONS')",
                         s);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Users                                                                     */
/* ------------------------------------------------------------------------ */

static void write_rows(tally_json *j, const char *field, const char *res_field,
                       const tally_perm_row *rows, size_t n)
{
    tally_json_key(j, field);
    tally_json_array_open(j);
    for (size_t i = 0; i < n; i++) {
        tally_json_object_open(j);
        tally_json_kv_string(j, res_field, rows[i].resource);
        tally_json_kv_int(j, "user_id", rows[i].user_id);
        tally_json_kv_string(j, "permission", tally_perm_name(rows[i].perm));
        tally_json_object_close(j);
    }
    tally_json_array_close(j);
}

/* {"user": {...}} with the user's rows. */
static void respond_user(tally_server *srv, tally_resp *resp, const tally_user *u, tally_arena *a)
{
    tally_perm_row *er = NULL, *mr = NULL;
    size_t ne = 0, nm = 0;
    char err[512] = "";
    int rc = tally_store_perm_list_user(srv->store, TALLY_PERM_EXPERIMENT, u->id, a, &er, &ne, err,
                                        sizeof err);
    if (rc == 0)
        rc = tally_store_perm_list_user(srv->store, TALLY_PERM_MODEL, u->id, a, &mr, &nm, err,
                                        sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        return;
    }
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, "user");
    tally_json_object_open(&j);
    tally_json_kv_int(&j, "id", u->id);
    tally_json_kv_string(&j, "username", u->username);
    tally_json_kv_bool(&j, "is_admin", u->is_admin);
    write_rows(&j, "experiment_permissions", "experiment_id", er, ne);
    write_rows(&j, "registered_model_permissions", "name", mr, nm);
    tally_json_key(&j, "scorer_permissions");
    tally_json_array_open(&j);
    tally_json_array_close(&j);
    tally_json_object_close(&j);
    tally_api_json_end(&j, resp);
}

static void handle_user_create(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    if (!auth_on(srv, resp))
        return;
    /* MLflow: exactly "application/json", else plain text. */
    if (!req->content_type || strcmp(req->content_type, "application/json") != 0) {
        plain_400(resp, "Invalid content type. Must be application/json");
        return;
    }
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *user = NULL, *pw = NULL;
    char err[512] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_params_string(&p, "username", &user, resp) < 0 ||
        tally_params_string(&p, "password", &pw, resp) < 0)
        goto out;
    if (!user || !*user || !pw || !*pw) {
        plain_400(resp, "Username and password cannot be empty.");
        goto out;
    }
    if (strlen(user) > TALLY_AUTH_MAX_USERNAME || strchr(user, ':')) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Username must be at most %d bytes and hold no ':'.",
                         TALLY_AUTH_MAX_USERNAME);
        goto out;
    }
    if (strlen(pw) < MIN_PASSWORD || strlen(pw) > TALLY_AUTH_MAX_PASSWORD) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Password must be a string longer than 12 characters.");
        goto out;
    }
    char hash[TALLY_AUTH_PWHASH_BYTES];
    if (tally_auth_hash_password(pw, hash, sizeof hash) != 0) {
        tally_api_oom(resp);
        goto out;
    }
    int64_t id;
    int rc = tally_store_user_create(srv->store, user, hash, 0, &id, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_user u = {.id = id, .username = user, .password_hash = hash, .is_admin = 0};
    respond_user(srv, resp, &u, a);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_user_get(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    if (!auth_on(srv, resp))
        return;
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *user;
    char err[512] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "username", &user, resp) < 0)
        goto out;
    tally_user u;
    int rc = tally_store_user_get(srv->store, user, a, &u, err, sizeof err);
    if (rc != 0)
        tally_api_store_error(resp, rc, err);
    else
        respond_user(srv, resp, &u, a);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_update_password(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    if (!auth_on(srv, resp))
        return;
    TALLY_API_OPEN_PARAMS(p, req, resp);
    const char *user, *pw;
    char err[512] = "";
    if (tally_api_require(&p, "username", &user, resp) < 0 ||
        tally_api_require(&p, "password", &pw, resp) < 0)
        goto out;
    /* MLflow performs no length check here; we keep the upper bound the
     * header parser can carry. */
    if (strlen(pw) > TALLY_AUTH_MAX_PASSWORD) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Password must be at most %d bytes.", TALLY_AUTH_MAX_PASSWORD);
        goto out;
    }
    char hash[TALLY_AUTH_PWHASH_BYTES];
    if (tally_auth_hash_password(pw, hash, sizeof hash) != 0) {
        tally_api_oom(resp);
        goto out;
    }
    int rc = tally_store_user_set_password(srv->store, user, hash, err, sizeof err);
    if (rc == 0)
        tally_auth_credentials_changed(srv->auth);
    tally_api_store_done(resp, rc, err);
out:
    tally_params_close(&p);
}

static void handle_update_admin(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    if (!auth_on(srv, resp))
        return;
    TALLY_API_OPEN_PARAMS(p, req, resp);
    const char *user;
    int is_admin = 0, r;
    char err[512] = "";
    if (tally_api_require(&p, "username", &user, resp) < 0 ||
        (r = tally_params_bool(&p, "is_admin", &is_admin, resp)) < 0)
        goto out;
    if (r == 0) {
        tally_params_missing(resp, "is_admin");
        goto out;
    }
    int rc = tally_store_user_set_admin(srv->store, user, is_admin, err, sizeof err);
    if (rc == 0)
        tally_auth_credentials_changed(srv->auth);
    tally_api_store_done(resp, rc, err);
out:
    tally_params_close(&p);
}

static void handle_user_delete(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    if (!auth_on(srv, resp))
        return;
    TALLY_API_OPEN_PARAMS(p, req, resp);
    const char *user;
    char err[512] = "";
    if (tally_api_require(&p, "username", &user, resp) < 0)
        goto out;
    int rc = tally_store_user_delete(srv->store, user, err, sizeof err);
    if (rc == 0) {
        tally_auth_credentials_changed(srv->auth);
        tally_auth_permissions_changed(srv->auth);
    }
    tally_api_store_done(resp, rc, err);
out:
    tally_params_close(&p);
}

/* ------------------------------------------------------------------------ */
/* Permission rows                                                           */
/* ------------------------------------------------------------------------ */

typedef enum op { OP_CREATE, OP_GET, OP_UPDATE, OP_DELETE } op;

/* The resource of a permission request: experiment ids are normalised to
 * the decimal form authz.c checks with. */
static int read_resource(tally_params *p, tally_perm_kind kind, char *out, size_t cap,
                         tally_resp *resp)
{
    const char *v;
    if (kind == TALLY_PERM_MODEL) {
        if (tally_api_require(p, "name", &v, resp) < 0)
            return -1;
        snprintf(out, cap, "%s", v);
        return 0;
    }
    int64_t id;
    if (tally_api_require(p, "experiment_id", &v, resp) < 0 ||
        tally_api_parse_experiment_id(v, &id, resp) < 0)
        return -1;
    snprintf(out, cap, "%" PRId64, id);
    return 0;
}

static void permission(tally_server *srv, const tally_req *req, tally_resp *resp,
                       tally_perm_kind kind, op o)
{
    if (!auth_on(srv, resp))
        return;
    TALLY_API_OPEN_PARAMS(p, req, resp);
    char res[600];
    const char *user, *perm_s = NULL;
    int perm = -1, rc;
    int64_t uid = 0;
    char err[512] = "";
    if (read_resource(&p, kind, res, sizeof res, resp) < 0 ||
        tally_api_require(&p, "username", &user, resp) < 0)
        goto out;
    if (o == OP_CREATE || o == OP_UPDATE) {
        if (tally_api_require(&p, "permission", &perm_s, resp) < 0 ||
            parse_perm(perm_s, &perm, resp) < 0)
            goto out;
    }
    switch (o) {
    case OP_CREATE:
        rc = tally_store_perm_create(srv->store, kind, res, user, perm, &uid, err, sizeof err);
        break;
    case OP_GET:
        rc = tally_store_perm_get(srv->store, kind, res, user, &perm, &uid, err, sizeof err);
        break;
    case OP_UPDATE:
        rc = tally_store_perm_update(srv->store, kind, res, user, perm, err, sizeof err);
        break;
    case OP_DELETE:
    default:
        rc = tally_store_perm_delete(srv->store, kind, res, user, err, sizeof err);
        break;
    }
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    if (o != OP_GET)
        tally_auth_permissions_changed(srv->auth);
    if (o == OP_UPDATE || o == OP_DELETE) {
        tally_api_ok_empty(resp);
        goto out;
    }
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, kind == TALLY_PERM_MODEL ? "registered_model_permission"
                                                : "experiment_permission");
    tally_json_object_open(&j);
    tally_json_kv_string(&j, kind == TALLY_PERM_MODEL ? "name" : "experiment_id", res);
    tally_json_kv_int(&j, "user_id", uid);
    tally_json_kv_string(&j, "permission", tally_perm_name(perm));
    tally_json_object_close(&j);
    tally_api_json_end(&j, resp);
out:
    tally_params_close(&p);
}

#define PERM_HANDLER(fn, kind, o)                                                            \
    static void fn(tally_server *srv, const tally_req *req, tally_resp *resp)                \
    {                                                                                        \
        permission(srv, req, resp, kind, o);                                                 \
    }
PERM_HANDLER(handle_exp_perm_create, TALLY_PERM_EXPERIMENT, OP_CREATE)
PERM_HANDLER(handle_exp_perm_get, TALLY_PERM_EXPERIMENT, OP_GET)
PERM_HANDLER(handle_exp_perm_update, TALLY_PERM_EXPERIMENT, OP_UPDATE)
PERM_HANDLER(handle_exp_perm_delete, TALLY_PERM_EXPERIMENT, OP_DELETE)
PERM_HANDLER(handle_model_perm_create, TALLY_PERM_MODEL, OP_CREATE)
PERM_HANDLER(handle_model_perm_get, TALLY_PERM_MODEL, OP_GET)
PERM_HANDLER(handle_model_perm_update, TALLY_PERM_MODEL, OP_UPDATE)
PERM_HANDLER(handle_model_perm_delete, TALLY_PERM_MODEL, OP_DELETE)

/* ------------------------------------------------------------------------ */
/* Tokens                                                                    */
/* ------------------------------------------------------------------------ */

static void write_token(tally_json *j, const tally_token *t)
{
    tally_json_object_open(j);
    tally_json_kv_int(j, "id", t->id);
    tally_json_kv_string(j, "name", t->name);
    tally_json_kv_string(j, "username", t->username);
    tally_json_kv_int(j, "created_time", t->created_ms);
    if (t->expires_ms)
        tally_json_kv_int(j, "expires_time", t->expires_ms);
    if (t->revoked_ms)
        tally_json_kv_int(j, "revoked_time", t->revoked_ms);
    tally_json_object_close(j);
}

/* The user a token request is about: `username` when given (another user:
 * admins only), else the caller. */
static int token_subject(tally_server *srv, const tally_req *req, tally_params *p, tally_arena *a,
                         tally_user *u, tally_resp *resp)
{
    const char *user = NULL;
    char err[512] = "";
    if (tally_params_string(p, "username", &user, resp) < 0)
        return -1;
    const tally_principal *who = req->principal;
    if (!user || !*user)
        user = who->username;
    if (strcmp(user, who->username) != 0 && !who->is_admin) {
        tally_resp_error(resp, TALLY_API_PERMISSION_DENIED, "Permission denied");
        return -1;
    }
    int rc = tally_store_user_get(srv->store, user, a, u, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        return -1;
    }
    return 0;
}

static void handle_token_create(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    if (!auth_on(srv, resp))
        return;
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *name;
    int64_t ttl_s = 0;
    char err[512] = "";
    tally_user u;
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_api_require(&p, "name", &name, resp) < 0 ||
        tally_params_int64(&p, "expires_in_s", &ttl_s, resp) < 0 ||
        token_subject(srv, req, &p, a, &u, resp) < 0)
        goto out;
    if (strlen(name) > MAX_TOKEN_NAME) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "Token name must be at most %d bytes.", MAX_TOKEN_NAME);
        goto out;
    }
    if (ttl_s < 0 || ttl_s > (int64_t)100 * 365 * 86400) {
        tally_resp_error(resp, TALLY_API_INVALID_PARAMETER_VALUE,
                         "expires_in_s must be from 0 (never) to 100 years in seconds.");
        goto out;
    }
    char secret[TALLY_TOKEN_CHARS + 1];
    unsigned char hash[TALLY_TOKEN_HASH_BYTES];
    if (tally_auth_token_new(secret, hash) != 0) {
        tally_api_oom(resp);
        goto out;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t id;
    int rc = tally_store_token_create(srv->store, u.id, name, hash, ttl_s ? now + ttl_s * 1000 : 0,
                                      &id, err, sizeof err);
    tally_token t;
    if (rc == 0)
        rc = tally_store_token_get(srv->store, id, a, &t, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_kv_string(&j, "token", secret);
    tally_json_key(&j, "token_info");
    write_token(&j, &t);
    tally_api_json_end(&j, resp);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_token_list(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    if (!auth_on(srv, resp))
        return;
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    const char *user = NULL;
    char err[512] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_params_string(&p, "username", &user, resp) < 0)
        goto out;
    int64_t uid = -1; /* admins without a username: every token */
    if ((user && *user) || !req->principal->is_admin) {
        tally_user u;
        if (token_subject(srv, req, &p, a, &u, resp) < 0)
            goto out;
        uid = u.id;
    }
    tally_token *list;
    size_t n;
    int rc = tally_store_token_list(srv->store, uid, a, &list, &n, err, sizeof err);
    if (rc != 0) {
        tally_api_store_error(resp, rc, err);
        goto out;
    }
    tally_json j;
    tally_api_json_begin(&j, resp);
    tally_json_key(&j, "tokens");
    tally_json_array_open(&j);
    for (size_t i = 0; i < n; i++)
        write_token(&j, &list[i]);
    tally_json_array_close(&j);
    tally_api_json_end(&j, resp);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

static void handle_token_revoke(tally_server *srv, const tally_req *req, tally_resp *resp)
{
    if (!auth_on(srv, resp))
        return;
    TALLY_API_OPEN_PARAMS(p, req, resp);
    tally_arena *a = tally_arena_new();
    int64_t id;
    char err[512] = "";
    if (!a) {
        tally_api_oom(resp);
        goto out;
    }
    if (tally_params_require_int64(&p, "id", &id, resp) < 0)
        goto out;
    tally_token t;
    int rc = tally_store_token_get(srv->store, id, a, &t, err, sizeof err);
    /* Someone else's token looks the same as no token at all. */
    if (rc == 0 && t.user_id != req->principal->user_id && !req->principal->is_admin)
        rc = TALLY_STORE_ENOTFOUND;
    if (rc == TALLY_STORE_ENOTFOUND)
        snprintf(err, sizeof err, "Token with id=%" PRId64 " not found", id);
    if (rc == 0)
        rc = tally_store_token_revoke(srv->store, id, err, sizeof err);
    if (rc == 0)
        tally_auth_credentials_changed(srv->auth);
    tally_api_store_done(resp, rc, err);
out:
    tally_arena_free(a);
    tally_params_close(&p);
}

const tally_route tally_routes_auth[] = {
    {TALLY_POST, "mlflow/users/create", 1, 0, 0, 0, handle_user_create, "users/create"},
    {TALLY_GET, "mlflow/users/get", 1, 0, 0, 0, handle_user_get, "users/get"},
    {TALLY_PATCH, "mlflow/users/update-password", 1, 0, 0, 0, handle_update_password,
     "users/update-password"},
    {TALLY_PATCH, "mlflow/users/update-admin", 1, 0, 0, 0, handle_update_admin,
     "users/update-admin"},
    {TALLY_DELETE, "mlflow/users/delete", 1, 0, 0, 0, handle_user_delete, "users/delete"},
    {TALLY_POST, "mlflow/experiments/permissions/create", 1, 0, 0, 0, handle_exp_perm_create,
     "experiments/permissions/create"},
    {TALLY_GET, "mlflow/experiments/permissions/get", 1, 0, 0, 0, handle_exp_perm_get,
     "experiments/permissions/get"},
    {TALLY_PATCH, "mlflow/experiments/permissions/update", 1, 0, 0, 0, handle_exp_perm_update,
     "experiments/permissions/update"},
    {TALLY_DELETE, "mlflow/experiments/permissions/delete", 1, 0, 0, 0, handle_exp_perm_delete,
     "experiments/permissions/delete"},
    {TALLY_POST, "mlflow/registered-models/permissions/create", 1, 0, 0, 0,
     handle_model_perm_create, "registered-models/permissions/create"},
    {TALLY_GET, "mlflow/registered-models/permissions/get", 1, 0, 0, 0, handle_model_perm_get,
     "registered-models/permissions/get"},
    {TALLY_PATCH, "mlflow/registered-models/permissions/update", 1, 0, 0, 0,
     handle_model_perm_update, "registered-models/permissions/update"},
    {TALLY_DELETE, "mlflow/registered-models/permissions/delete", 1, 0, 0, 0,
     handle_model_perm_delete, "registered-models/permissions/delete"},
    {TALLY_POST, "tally/tokens/create", 1, 0, 0, 0, handle_token_create, "tokens/create"},
    {TALLY_GET, "tally/tokens/list", 1, 0, 0, 0, handle_token_list, "tokens/list"},
    {TALLY_POST, "tally/tokens/revoke", 1, 0, 0, 0, handle_token_revoke, "tokens/revoke"},
    {0},
};
