/*
 * store_logged_models_sqlite.c — logged models and run outputs
 * (store_logged_models.h) on the SQLite store, through the module API of
 * store_internal.h. Tables (migration 5, store_schema.c):
 *
 *   logged_models        model_id PK ("m-" + 32 hex), experiment_id, name,
 *                        artifact_location, creation/last_updated (ms),
 *                        status (LoggedModelStatus number), lifecycle_stage,
 *                        model_type, source_run_id, status_message (NULLable)
 *   logged_model_params  (model_id, key) PK, value — write-once
 *   logged_model_tags    (model_id, key) PK, value
 *   run_outputs          (run_key, model_id, step) PK, seq (record order)
 *
 * Invariants:
 *  (1) A deleted model (lifecycle_stage 'deleted') is never returned and
 *      never changed again; its rows stay (soft delete, as MLflow).
 *  (2) Every write is one transaction: on any error nothing is written.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "store_internal.h"
#include "store_logged_models.h"

#define LM_COLS "model_id, experiment_id, name, artifact_location, creation_timestamp_ms, " \
                "last_updated_timestamp_ms, status, model_type, source_run_id, status_message"

static const char SQL_EXPERIMENT[] =
    "SELECT artifact_location, lifecycle_stage FROM experiments WHERE experiment_id = ?1";
static const char SQL_INSERT[] =
    "INSERT INTO logged_models(model_id, experiment_id, name, artifact_location, "
    "creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, model_type, "
    "source_run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, 'active', ?6, ?7)";
static const char SQL_GET[] =
    "SELECT " LM_COLS " FROM logged_models WHERE model_id = ?1 AND lifecycle_stage = 'active'";
static const char SQL_LIST[] =
    "SELECT " LM_COLS " FROM logged_models WHERE experiment_id = ?1 AND lifecycle_stage = "
    "'active' ORDER BY creation_timestamp_ms DESC, model_id";
static const char SQL_TAGS[] =
    "SELECT key, value FROM logged_model_tags WHERE model_id = ?1 ORDER BY key";
static const char SQL_PARAMS[] =
    "SELECT key, value FROM logged_model_params WHERE model_id = ?1 ORDER BY key";
static const char SQL_SET_TAG[] =
    "INSERT INTO logged_model_tags(model_id, key, value) VALUES (?1, ?2, ?3) "
    "ON CONFLICT(model_id, key) DO UPDATE SET value = excluded.value";
static const char SQL_SET_PARAM[] =
    "INSERT INTO logged_model_params(model_id, key, value) VALUES (?1, ?2, ?3) "
    "ON CONFLICT(model_id, key) DO UPDATE SET value = excluded.value";
static const char SQL_GET_PARAM[] =
    "SELECT value FROM logged_model_params WHERE model_id = ?1 AND key = ?2";
static const char SQL_DELETE_TAG[] =
    "DELETE FROM logged_model_tags WHERE model_id = ?1 AND key = ?2";
static const char SQL_FINALIZE[] =
    "UPDATE logged_models SET status = ?2, last_updated_timestamp_ms = ?3 WHERE model_id = ?1 "
    "AND lifecycle_stage = 'active'";
static const char SQL_DELETE[] =
    "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = ?2 "
    "WHERE model_id = ?1 AND lifecycle_stage = 'active'";
static const char SQL_RUN[] = "SELECT run_key, lifecycle_stage FROM runs WHERE run_uuid = ?1";
static const char SQL_ADD_OUTPUT[] =
    "INSERT OR IGNORE INTO run_outputs(run_key, model_id, step, seq) VALUES (?1, ?2, ?3, "
    "(SELECT coalesce(max(seq), 0) + 1 FROM run_outputs WHERE run_key = ?1))";
static const char SQL_OUTPUTS[] =
    "SELECT o.model_id, o.step FROM run_outputs o JOIN runs r ON r.run_key = o.run_key "
    "WHERE r.run_uuid = ?1 ORDER BY o.seq";

const char *tally_logged_model_status_name(int status)
{
    static const char *const names[] = {"LOGGED_MODEL_STATUS_UNSPECIFIED", "LOGGED_MODEL_PENDING",
                                        "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"};
    return status >= 0 && status <= 3 ? names[status] : NULL;
}

int tally_logged_model_check_name(const char *name, char *err, size_t cap)
{
    if (!name)
        return 0;
    if (!*name || strpbrk(name, "/:.%\"'")) {
        snprintf(err, cap,
                 "Invalid model name ('%.200s') provided. Model name must be a non-empty string "
                 "and cannot contain the following characters: ('/', ':', '.', '%%', '\"', \"'\")",
                 name);
        return TALLY_STORE_EINVAL;
    }
    return 0;
}

static void not_found(const char *model_id, char *err, size_t cap)
{
    snprintf(err, cap, "Logged model with ID '%.100s' not found.", model_id);
}

/* Reads the key/value rows of sql (?1 = model_id) into a new array. */
static int read_kvs(tally__conn *c, const char *sql, const char *model_id, tally_arena *a,
                    tally_kv **out, size_t *n_out, char *err, size_t cap)
{
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
    size_t n = 0, vcap = 0;
    tally_kv *v = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__arena_reserve(a, &v, sizeof *v, n, &vcap, 8) != 0) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        v[n].key = tally__col_dup_null(a, st, 0);
        v[n].value = tally__col_dup_null(a, st, 1);
        if (!v[n].key || !v[n].value) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        n++;
    }
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    *out = v;
    *n_out = n;
    return 0;
}

/* Fills m from the current row of a statement selecting LM_COLS, plus its
 * tags and params. */
static int read_model(sqlite3_stmt *st, tally_arena *a, tally_logged_model *m)
{
    memset(m, 0, sizeof *m);
    const char *id = (const char *)sqlite3_column_text(st, 0);
    snprintf(m->model_id, sizeof m->model_id, "%s", id ? id : "");
    m->experiment_id = sqlite3_column_int64(st, 1);
    m->name = tally__col_dup_null(a, st, 2);
    m->artifact_location = tally__col_dup_null(a, st, 3);
    m->creation_timestamp_ms = sqlite3_column_int64(st, 4);
    m->last_updated_timestamp_ms = sqlite3_column_int64(st, 5);
    m->status = sqlite3_column_int(st, 6);
    m->model_type = tally__col_dup_null(a, st, 7);
    m->source_run_id = tally__col_dup_null(a, st, 8);
    m->status_message = tally__col_dup_null(a, st, 9);
    if (!m->name || !m->artifact_location)
        return TALLY_STORE_ENOMEM;
    return 0;
}

static int read_children(tally__conn *c, tally_arena *a, tally_logged_model *m, char *err,
                         size_t cap)
{
    int rc = read_kvs(c, SQL_TAGS, m->model_id, a, &m->tags, &m->n_tags, err, cap);
    if (rc == 0)
        rc = read_kvs(c, SQL_PARAMS, m->model_id, a, &m->params, &m->n_params, err, cap);
    return rc;
}

/* The live model model_id into out (ENOTFOUND otherwise). */
static int load(tally__conn *c, const char *model_id, tally_arena *a, tally_logged_model *out,
                char *err, size_t cap)
{
    sqlite3_stmt *st = tally__conn_stmt(c, SQL_GET);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        tally__stmt_done(st);
        not_found(model_id, err, cap);
        return TALLY_STORE_ENOTFOUND;
    }
    if (rc != SQLITE_ROW) {
        tally__stmt_done(st);
        return tally__conn_error(c, err, cap);
    }
    rc = read_model(st, a, out);
    tally__stmt_done(st);
    return rc ? rc : read_children(c, a, out, err, cap);
}

/* Exists and is live: 0, ENOTFOUND, or a database error. */
static int check_live(tally__conn *c, const char *model_id, char *err, size_t cap)
{
    sqlite3_stmt *st = tally__conn_stmt(c, SQL_GET);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    tally__stmt_done(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE) {
        not_found(model_id, err, cap);
        return TALLY_STORE_ENOTFOUND;
    }
    return tally__conn_error(c, err, cap);
}

/* Runs a statement binding (?1 model_id, ?2 key, ?3 value) to completion. */
static int exec_kv(tally__conn *c, const char *sql, const char *model_id, const char *key,
                   const char *value, char *err, size_t cap)
{
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    if (value)
        sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    tally__stmt_done(st);
    return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
}

/* Key rule and value length of a tag or param (what = "tag" / "param"). */
static int check_kvs(const char *what, const tally_kv *v, size_t n, size_t max_value, char *err,
                     size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        int rc = tally_store_check_key(what, v[i].key, err, cap);
        if (rc)
            return rc;
        if (tally_utf8_chars(v[i].key) > TALLY_MAX_KEY_LEN) {
            snprintf(err, cap, "%s key '%.100s...' had length %zu, which exceeded length limit of %d",
                     what, v[i].key, tally_utf8_chars(v[i].key), TALLY_MAX_KEY_LEN);
            return TALLY_STORE_EINVAL;
        }
        const char *value = v[i].value ? v[i].value : "";
        if (tally_utf8_chars(value) > max_value) {
            snprintf(err, cap, "%s value '%.100s...' had length %zu, which exceeded length limit of %zu",
                     what, value, tally_utf8_chars(value), max_value);
            return TALLY_STORE_EINVAL;
        }
    }
    return 0;
}

/* Params are write-once: a key already stored with another value is an
 * error; the same value is fine. */
static int add_params(tally__conn *c, const char *model_id, const tally_kv *v, size_t n,
                      int check_existing, char *err, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        const char *value = v[i].value ? v[i].value : "";
        if (check_existing) {
            sqlite3_stmt *st = tally__conn_stmt(c, SQL_GET_PARAM);
            if (!st)
                return tally__conn_error(c, err, cap);
            sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, v[i].key, -1, SQLITE_STATIC);
            int rc = sqlite3_step(st);
            if (rc == SQLITE_ROW) {
                const char *old = (const char *)sqlite3_column_text(st, 0);
                int same = old && strcmp(old, value) == 0;
                if (!same)
                    snprintf(err, cap,
                             "Changing param values is not allowed. Param with key='%.100s' was "
                             "already logged with value='%.100s' for logged model ID='%.100s'. "
                             "Attempted logging new value '%.100s'.",
                             v[i].key, old ? old : "", model_id, value);
                tally__stmt_done(st);
                if (!same)
                    return TALLY_STORE_EINVAL;
                continue;
            }
            tally__stmt_done(st);
            if (rc != SQLITE_DONE)
                return tally__conn_error(c, err, cap);
        }
        int rc = exec_kv(c, SQL_SET_PARAM, model_id, v[i].key, value, err, cap);
        if (rc)
            return rc;
    }
    return 0;
}

static int set_tags(tally__conn *c, const char *model_id, const tally_kv *v, size_t n, char *err,
                    size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        int rc = exec_kv(c, SQL_SET_TAG, model_id, v[i].key, v[i].value ? v[i].value : "", err,
                         cap);
        if (rc)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Create                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct create_arg {
    const tally_logged_model_create *req;
    tally_arena *a;
    tally_logged_model *out;
} create_arg;

static void new_model_id(char out[TALLY_LOGGED_MODEL_ID_LEN + 1])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        long long t = tally__store_now_ms();
        for (int i = 0; i < 16; i++)
            b[i] = (unsigned char)((t >> (i % 8 * 8)) ^ (i * 73) ^ (uintptr_t)out >> (i % 4));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* uuid4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    out[0] = 'm';
    out[1] = '-';
    for (int i = 0; i < 16; i++) {
        out[2 + 2 * i] = hex[b[i] >> 4];
        out[3 + 2 * i] = hex[b[i] & 15];
    }
    out[TALLY_LOGGED_MODEL_ID_LEN] = 0;
}

static int create_fn(tally__conn *c, void *argp, char *err, size_t cap)
{
    create_arg *arg = argp;
    const tally_logged_model_create *r = arg->req;
    sqlite3_stmt *st = tally__conn_stmt(c, SQL_EXPERIMENT);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_int64(st, 1, r->experiment_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        tally__stmt_done(st);
        if (rc != SQLITE_DONE)
            return tally__conn_error(c, err, cap);
        snprintf(err, cap, "No Experiment with id=%lld exists", (long long)r->experiment_id);
        return TALLY_STORE_ENOTFOUND;
    }
    char location[TALLY_MAX_ARTIFACT_LOCATION + 128];
    const char *exp_loc = (const char *)sqlite3_column_text(st, 0);
    const char *stage = (const char *)sqlite3_column_text(st, 1);
    int active = stage && strcmp(stage, "active") == 0;
    char model_id[TALLY_LOGGED_MODEL_ID_LEN + 1];
    new_model_id(model_id);
    size_t el = exp_loc ? strlen(exp_loc) : 0;
    snprintf(location, sizeof location, "%s%smodels/%s/artifacts", exp_loc ? exp_loc : "",
             el && exp_loc[el - 1] == '/' ? "" : "/", model_id);
    tally__stmt_done(st);
    if (!active) {
        snprintf(err, cap,
                 "The experiment %lld must be in the 'active' state. Current state is deleted.",
                 (long long)r->experiment_id);
        return TALLY_STORE_ESTATE;
    }
    char random_name[128];
    const char *name = r->name;
    if (!name) {
        tally__store_random_name(random_name, sizeof random_name);
        name = random_name;
    }
    st = tally__conn_stmt(c, SQL_INSERT);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->experiment_id);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, location, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, tally__store_now_ms());
    if (r->model_type)
        sqlite3_bind_text(st, 6, r->model_type, -1, SQLITE_STATIC);
    if (r->source_run_id)
        sqlite3_bind_text(st, 7, r->source_run_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    if ((rc = add_params(c, model_id, r->params, r->n_params, 0, err, cap)) != 0 ||
        (rc = set_tags(c, model_id, r->tags, r->n_tags, err, cap)) != 0)
        return rc;
    return load(c, model_id, arg->a, arg->out, err, cap);
}

int tally_store_create_logged_model(tally_store *s, const tally_logged_model_create *req,
                                    tally_arena *a, tally_logged_model *out, char *err, size_t cap)
{
    int rc = tally_logged_model_check_name(req->name, err, cap);
    if (rc == 0)
        rc = check_kvs("param", req->params, req->n_params, TALLY_MAX_PARAM_VALUE, err, cap);
    if (rc == 0)
        rc = check_kvs("tag", req->tags, req->n_tags, TALLY_MAX_TAG_VALUE, err, cap);
    if (rc)
        return rc;
    create_arg arg = {req, a, out};
    return tally__store_write(s, create_fn, &arg, err, cap);
}

/* ------------------------------------------------------------------------ */
/* Get, finalize, delete                                                      */
/* ------------------------------------------------------------------------ */

typedef struct model_arg {
    const char *model_id;
    int status;
    int64_t now_ms;
    const tally_kv *kv;
    size_t n;
    const char *key;
    tally_arena *a;
    tally_logged_model *out;
} model_arg;

static int get_fn(tally__conn *c, void *argp, char *err, size_t cap)
{
    model_arg *arg = argp;
    return load(c, arg->model_id, arg->a, arg->out, err, cap);
}

int tally_store_get_logged_model(tally_store *s, const char *model_id, tally_arena *a,
                                 tally_logged_model *out, char *err, size_t cap)
{
    model_arg arg = {.model_id = model_id, .a = a, .out = out};
    return tally__store_read(s, get_fn, &arg, err, cap);
}

/* Runs an UPDATE (?1 model_id, ?2 and ?3 as given) that must change one
 * live row. */
static int update_one(tally__conn *c, const char *sql, const char *model_id, int64_t p2,
                      int64_t p3, int has_p3, char *err, size_t cap)
{
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, p2);
    if (has_p3)
        sqlite3_bind_int64(st, 3, p3);
    int rc = sqlite3_step(st);
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    if (sqlite3_changes(tally__conn_db(c)) == 0) {
        not_found(model_id, err, cap);
        return TALLY_STORE_ENOTFOUND;
    }
    return 0;
}

static int finalize_fn(tally__conn *c, void *argp, char *err, size_t cap)
{
    model_arg *arg = argp;
    int rc = update_one(c, SQL_FINALIZE, arg->model_id, arg->status, arg->now_ms, 1, err, cap);
    return rc ? rc : load(c, arg->model_id, arg->a, arg->out, err, cap);
}

int tally_store_finalize_logged_model(tally_store *s, const char *model_id, int status,
                                      tally_arena *a, tally_logged_model *out, char *err,
                                      size_t cap)
{
    if (status != TALLY_LM_READY && status != TALLY_LM_UPLOAD_FAILED) {
        snprintf(err, cap,
                 "Invalid status for finalizing a logged model: must be LOGGED_MODEL_READY or "
                 "LOGGED_MODEL_UPLOAD_FAILED");
        return TALLY_STORE_EINVAL;
    }
    model_arg arg = {.model_id = model_id, .status = status, .now_ms = tally__store_now_ms(),
                     .a = a, .out = out};
    return tally__store_write(s, finalize_fn, &arg, err, cap);
}

static int delete_fn(tally__conn *c, void *argp, char *err, size_t cap)
{
    model_arg *arg = argp;
    return update_one(c, SQL_DELETE, arg->model_id, arg->now_ms, 0, 0, err, cap);
}

int tally_store_delete_logged_model(tally_store *s, const char *model_id, char *err, size_t cap)
{
    model_arg arg = {.model_id = model_id, .now_ms = tally__store_now_ms()};
    return tally__store_write(s, delete_fn, &arg, err, cap);
}

/* ------------------------------------------------------------------------ */
/* Tags and params                                                            */
/* ------------------------------------------------------------------------ */

static int set_tags_fn(tally__conn *c, void *argp, char *err, size_t cap)
{
    model_arg *arg = argp;
    int rc = check_live(c, arg->model_id, err, cap);
    return rc ? rc : set_tags(c, arg->model_id, arg->kv, arg->n, err, cap);
}

int tally_store_set_logged_model_tags(tally_store *s, const char *model_id, const tally_kv *tags,
                                      size_t n, char *err, size_t cap)
{
    int rc = check_kvs("tag", tags, n, TALLY_MAX_TAG_VALUE, err, cap);
    if (rc)
        return rc;
    model_arg arg = {.model_id = model_id, .kv = tags, .n = n};
    return tally__store_write(s, set_tags_fn, &arg, err, cap);
}

static int delete_tag_fn(tally__conn *c, void *argp, char *err, size_t cap)
{
    model_arg *arg = argp;
    int rc = check_live(c, arg->model_id, err, cap);
    if (rc)
        return rc;
    if ((rc = exec_kv(c, SQL_DELETE_TAG, arg->model_id, arg->key, NULL, err, cap)) != 0)
        return rc;
    if (sqlite3_changes(tally__conn_db(c)) == 0) {
        snprintf(err, cap, "No tag with key '%.200s' found for model with ID '%.100s'.", arg->key,
                 arg->model_id);
        return TALLY_STORE_ENOTFOUND;
    }
    return 0;
}

int tally_store_delete_logged_model_tag(tally_store *s, const char *model_id, const char *key,
                                        char *err, size_t cap)
{
    model_arg arg = {.model_id = model_id, .key = key};
    return tally__store_write(s, delete_tag_fn, &arg, err, cap);
}

static int params_fn(tally__conn *c, void *argp, char *err, size_t cap)
{
    model_arg *arg = argp;
    int rc = check_live(c, arg->model_id, err, cap);
    return rc ? rc : add_params(c, arg->model_id, arg->kv, arg->n, 1, err, cap);
}

int tally_store_log_logged_model_params(tally_store *s, const char *model_id,
                                        const tally_kv *params, size_t n, char *err, size_t cap)
{
    int rc = check_kvs("param", params, n, TALLY_MAX_PARAM_VALUE, err, cap);
    if (rc)
        return rc;
    model_arg arg = {.model_id = model_id, .kv = params, .n = n};
    return tally__store_write(s, params_fn, &arg, err, cap);
}

/* ------------------------------------------------------------------------ */
/* List                                                                       */
/* ------------------------------------------------------------------------ */

typedef struct list_arg {
    const int64_t *ids;
    size_t n_ids;
    tally_arena *a;
    tally_logged_model *v;
    size_t n, cap;
} list_arg;

static int list_fn(tally__conn *c, void *argp, char *err, size_t cap)
{
    list_arg *arg = argp;
    for (size_t e = 0; e < arg->n_ids; e++) {
        int dup = 0;
        for (size_t k = 0; k < e; k++)
            dup |= arg->ids[k] == arg->ids[e];
        if (dup)
            continue;
        sqlite3_stmt *st = tally__conn_stmt(c, SQL_LIST);
        if (!st)
            return tally__conn_error(c, err, cap);
        sqlite3_bind_int64(st, 1, arg->ids[e]);
        size_t first = arg->n;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (tally__arena_reserve(arg->a, &arg->v, sizeof *arg->v, arg->n, &arg->cap, 16) != 0 ||
                read_model(st, arg->a, &arg->v[arg->n]) != 0) {
                tally__stmt_done(st);
                return TALLY_STORE_ENOMEM;
            }
            arg->n++;
        }
        tally__stmt_done(st);
        if (rc != SQLITE_DONE)
            return tally__conn_error(c, err, cap);
        for (size_t i = first; i < arg->n; i++)
            if ((rc = read_children(c, arg->a, &arg->v[i], err, cap)) != 0)
                return rc;
    }
    return 0;
}

int tally_store_list_logged_models(tally_store *s, const int64_t *experiment_ids, size_t n_ids,
                                   tally_arena *a, tally_logged_model **out, size_t *n_out,
                                   char *err, size_t cap)
{
    list_arg arg = {.ids = experiment_ids, .n_ids = n_ids, .a = a};
    int rc = tally__store_read(s, list_fn, &arg, err, cap);
    *out = rc ? NULL : arg.v;
    *n_out = rc ? 0 : arg.n;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Run outputs                                                                */
/* ------------------------------------------------------------------------ */

typedef struct outputs_arg {
    const char *run_id;
    const tally_model_output *v;
    size_t n;
    tally_arena *a;
    tally_model_output *out;
    size_t n_out, cap;
} outputs_arg;

static int log_outputs_fn(tally__conn *c, void *argp, char *err, size_t cap)
{
    outputs_arg *arg = argp;
    sqlite3_stmt *st = tally__conn_stmt(c, SQL_RUN);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_text(st, 1, arg->run_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        tally__stmt_done(st);
        if (rc != SQLITE_DONE)
            return tally__conn_error(c, err, cap);
        snprintf(err, cap, "Run with id=%.100s not found", arg->run_id);
        return TALLY_STORE_ENOTFOUND;
    }
    int64_t run_key = sqlite3_column_int64(st, 0);
    const char *stage = (const char *)sqlite3_column_text(st, 1);
    int active = stage && strcmp(stage, "active") == 0;
    tally__stmt_done(st);
    if (!active) {
        snprintf(err, cap, "The run %.100s must be in the 'active' state. Current state is deleted.",
                 arg->run_id);
        return TALLY_STORE_ESTATE;
    }
    for (size_t i = 0; i < arg->n; i++) {
        st = tally__conn_stmt(c, SQL_ADD_OUTPUT);
        if (!st)
            return tally__conn_error(c, err, cap);
        sqlite3_bind_int64(st, 1, run_key);
        sqlite3_bind_text(st, 2, arg->v[i].model_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, arg->v[i].step);
        rc = sqlite3_step(st);
        tally__stmt_done(st);
        if (rc != SQLITE_DONE)
            return tally__conn_error(c, err, cap);
    }
    return 0;
}

int tally_store_log_run_outputs(tally_store *s, const char *run_id, const tally_model_output *v,
                                size_t n, char *err, size_t cap)
{
    outputs_arg arg = {.run_id = run_id, .v = v, .n = n};
    return tally__store_write(s, log_outputs_fn, &arg, err, cap);
}

static int outputs_fn(tally__conn *c, void *argp, char *err, size_t cap)
{
    outputs_arg *arg = argp;
    sqlite3_stmt *st = tally__conn_stmt(c, SQL_OUTPUTS);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_text(st, 1, arg->run_id, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__arena_reserve(arg->a, &arg->out, sizeof *arg->out, arg->n_out, &arg->cap, 4) !=
                0 ||
            !(arg->out[arg->n_out].model_id = tally__col_dup_null(arg->a, st, 0))) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        arg->out[arg->n_out].step = sqlite3_column_int64(st, 1);
        arg->n_out++;
    }
    tally__stmt_done(st);
    return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
}

int tally_store_run_outputs(tally_store *s, const char *run_id, tally_arena *a,
                            tally_model_output **out, size_t *n_out, char *err, size_t cap)
{
    outputs_arg arg = {.run_id = run_id, .a = a};
    int rc = tally__store_read(s, outputs_fn, &arg, err, cap);
    *out = rc ? NULL : arg.out;
    *n_out = rc ? 0 : arg.n_out;
    return rc;
}
