/*
 * store_auth_sqlite.c — store_auth.h on SQLite (tables of migration 4 in
 * store_schema.c), through the module API of store_internal.h: every write
 * in tally__store_write (one IMMEDIATE transaction), every read in
 * tally__store_read, static SQL cached per connection.
 *
 * Tables:
 *   users                         id PK, username UNIQUE, password_hash, is_admin
 *   experiment_permissions        (experiment_id TEXT, user_id) PK, permission
 *   registered_model_permissions  (name, user_id) PK, permission
 *   auth_tokens                   id PK, user_id, name, token_hash UNIQUE (32 bytes),
 *                                 created_time, expires_time, revoked_time (ms, NULL = none)
 *   audit_log                     id PK, time_ms, username, method, route, path,
 *                                 resource, status, remote
 *
 * The two permission tables have the same shape; each statement exists once
 * per table (SQL is static: table names cannot be bound), picked by kind.
 */
#include <stdio.h>
#include <string.h>

#include "store_auth.h"
#include "store_internal.h"

static const char *const perm_names[] = {"NO_PERMISSIONS", "READ", "EDIT", "MANAGE"};

const char *tally_perm_name(int perm)
{
    return perm >= 0 && perm <= 3 ? perm_names[perm] : NULL;
}

int tally_perm_parse(const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, perm_names[i]) == 0)
            return i;
    return -1;
}

static void set_err(char *err, size_t cap, const char *fmt, const char *a, const char *b)
{
    if (err && cap)
        snprintf(err, cap, fmt, a, b);
}

/* ------------------------------------------------------------------------ */
/* Users                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct user_op {
    const char *username;
    const char *hash;
    int is_admin;
    int64_t id;
    tally_arena *a;
    tally_user *out;
    tally_user *list;
    size_t n, cap;
} user_op;

static int not_found_user(const char *username, char *err, size_t cap)
{
    set_err(err, cap, "User with username=%s not found%s", username, "");
    return TALLY_STORE_ENOTFOUND;
}

static int user_id_of(tally__conn *c, const char *username, int64_t *id, char *err, size_t cap)
{
    static const char sql[] = "SELECT id FROM users WHERE username = ?1";
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = not_found_user(username, err, cap);
    } else {
        rc = tally__conn_error(c, err, cap);
    }
    tally__stmt_done(st);
    return rc;
}

static int do_user_create(tally__conn *c, void *arg, char *err, size_t cap)
{
    user_op *o = arg;
    static const char sql[] =
        "INSERT INTO users (username, password_hash, is_admin) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (username) DO NOTHING";
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_text(st, 1, o->username, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, o->hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, o->is_admin ? 1 : 0);
    int rc = sqlite3_step(st);
    int changed = sqlite3_changes(tally__conn_db(c));
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    if (!changed) {
        set_err(err, cap, "User '%s' already exists.%s", o->username, "");
        return TALLY_STORE_EEXISTS;
    }
    o->id = sqlite3_last_insert_rowid(tally__conn_db(c));
    return 0;
}

int tally_store_user_create(tally_store *s, const char *username, const char *password_hash,
                            int is_admin, int64_t *id_out, char *err, size_t cap)
{
    user_op o = {.username = username, .hash = password_hash, .is_admin = is_admin};
    int rc = tally__store_write(s, do_user_create, &o, err, cap);
    if (rc == 0 && id_out)
        *id_out = o.id;
    return rc;
}

static int read_user_row(sqlite3_stmt *st, tally_arena *a, tally_user *u)
{
    u->id = sqlite3_column_int64(st, 0);
    u->username = tally__col_dup(a, st, 1);
    u->password_hash = tally__col_dup(a, st, 2);
    u->is_admin = sqlite3_column_int(st, 3);
    return u->username && u->password_hash ? 0 : TALLY_STORE_ENOMEM;
}

static int do_user_get(tally__conn *c, void *arg, char *err, size_t cap)
{
    user_op *o = arg;
    static const char by_name[] =
        "SELECT id, username, password_hash, is_admin FROM users WHERE username = ?1";
    static const char by_id[] =
        "SELECT id, username, password_hash, is_admin FROM users WHERE id = ?1";
    sqlite3_stmt *st = tally__conn_stmt(c, o->username ? by_name : by_id);
    if (!st)
        return tally__conn_error(c, err, cap);
    if (o->username)
        sqlite3_bind_text(st, 1, o->username, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, o->id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = read_user_row(st, o->a, o->out);
    } else if (rc == SQLITE_DONE) {
        if (o->username) {
            rc = not_found_user(o->username, err, cap);
        } else {
            char id[32];
            snprintf(id, sizeof id, "%lld", (long long)o->id);
            set_err(err, cap, "User with id=%s not found%s", id, "");
            rc = TALLY_STORE_ENOTFOUND;
        }
    } else {
        rc = tally__conn_error(c, err, cap);
    }
    tally__stmt_done(st);
    return rc;
}

int tally_store_user_get(tally_store *s, const char *username, tally_arena *a, tally_user *out,
                         char *err, size_t cap)
{
    user_op o = {.username = username, .a = a, .out = out};
    return tally__store_read(s, do_user_get, &o, err, cap);
}

int tally_store_user_get_by_id(tally_store *s, int64_t id, tally_arena *a, tally_user *out,
                               char *err, size_t cap)
{
    user_op o = {.id = id, .a = a, .out = out};
    return tally__store_read(s, do_user_get, &o, err, cap);
}

/* Runs a prepared one-user UPDATE (bound by the caller): 0, or
 * TALLY_STORE_ENOTFOUND when no user has that name. */
static int step_user_update(tally__conn *c, sqlite3_stmt *st, const char *username, char *err,
                            size_t cap)
{
    int rc = sqlite3_step(st);
    int changed = sqlite3_changes(tally__conn_db(c));
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    return changed ? 0 : not_found_user(username, err, cap);
}

static int do_user_set_password(tally__conn *c, void *arg, char *err, size_t cap)
{
    user_op *o = arg;
    static const char sql[] = "UPDATE users SET password_hash = ?2 WHERE username = ?1";
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_text(st, 1, o->username, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, o->hash, -1, SQLITE_STATIC);
    return step_user_update(c, st, o->username, err, cap);
}

int tally_store_user_set_password(tally_store *s, const char *username, const char *password_hash,
                                  char *err, size_t cap)
{
    user_op o = {.username = username, .hash = password_hash};
    return tally__store_write(s, do_user_set_password, &o, err, cap);
}

static int do_user_set_admin(tally__conn *c, void *arg, char *err, size_t cap)
{
    user_op *o = arg;
    static const char sql[] = "UPDATE users SET is_admin = ?2 WHERE username = ?1";
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_text(st, 1, o->username, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, o->is_admin ? 1 : 0);
    return step_user_update(c, st, o->username, err, cap);
}

int tally_store_user_set_admin(tally_store *s, const char *username, int is_admin, char *err,
                               size_t cap)
{
    user_op o = {.username = username, .is_admin = is_admin};
    return tally__store_write(s, do_user_set_admin, &o, err, cap);
}

/* One statement with a single int64 parameter, stepped to completion. */
static int exec_id(tally__conn *c, const char *sql, int64_t id, char *err, size_t cap)
{
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    tally__stmt_done(st);
    return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
}

static int do_user_delete(tally__conn *c, void *arg, char *err, size_t cap)
{
    user_op *o = arg;
    static const char del_exp[] = "DELETE FROM experiment_permissions WHERE user_id = ?1";
    static const char del_model[] = "DELETE FROM registered_model_permissions WHERE user_id = ?1";
    static const char del_tokens[] = "DELETE FROM auth_tokens WHERE user_id = ?1";
    static const char del_user[] = "DELETE FROM users WHERE id = ?1";
    int64_t id;
    int rc = user_id_of(c, o->username, &id, err, cap);
    if (rc == 0)
        rc = exec_id(c, del_exp, id, err, cap);
    if (rc == 0)
        rc = exec_id(c, del_model, id, err, cap);
    if (rc == 0)
        rc = exec_id(c, del_tokens, id, err, cap);
    if (rc == 0)
        rc = exec_id(c, del_user, id, err, cap);
    return rc;
}

int tally_store_user_delete(tally_store *s, const char *username, char *err, size_t cap)
{
    user_op o = {.username = username};
    return tally__store_write(s, do_user_delete, &o, err, cap);
}

static int do_user_list(tally__conn *c, void *arg, char *err, size_t cap)
{
    user_op *o = arg;
    static const char sql[] =
        "SELECT id, username, password_hash, is_admin FROM users ORDER BY id";
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__arena_reserve(o->a, &o->list, sizeof *o->list, o->n, &o->cap, 16) != 0) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        if (read_user_row(st, o->a, &o->list[o->n]) != 0) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        o->n++;
    }
    tally__stmt_done(st);
    return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
}

int tally_store_user_list(tally_store *s, tally_arena *a, tally_user **out, size_t *n, char *err,
                          size_t cap)
{
    user_op o = {.a = a};
    int rc = tally__store_read(s, do_user_list, &o, err, cap);
    *out = o.list;
    *n = rc == 0 ? o.n : 0;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Permission rows                                                           */
/* ------------------------------------------------------------------------ */

enum { Q_INSERT, Q_SELECT, Q_UPDATE, Q_DELETE, Q_UPSERT, Q_BY_USER, N_Q };

static const char *const exp_sql[N_Q] = {
    "INSERT INTO experiment_permissions (experiment_id, user_id, permission) VALUES (?1, ?2, ?3) "
    "ON CONFLICT DO NOTHING",
    "SELECT permission FROM experiment_permissions WHERE experiment_id = ?1 AND user_id = ?2",
    "UPDATE experiment_permissions SET permission = ?3 WHERE experiment_id = ?1 AND user_id = ?2",
    "DELETE FROM experiment_permissions WHERE experiment_id = ?1 AND user_id = ?2",
    "INSERT INTO experiment_permissions (experiment_id, user_id, permission) VALUES (?1, ?2, ?3) "
    "ON CONFLICT DO UPDATE SET permission = excluded.permission",
    "SELECT experiment_id, user_id, permission FROM experiment_permissions WHERE user_id = ?2 "
    "ORDER BY experiment_id",
};
static const char *const model_sql[N_Q] = {
    "INSERT INTO registered_model_permissions (name, user_id, permission) VALUES (?1, ?2, ?3) "
    "ON CONFLICT DO NOTHING",
    "SELECT permission FROM registered_model_permissions WHERE name = ?1 AND user_id = ?2",
    "UPDATE registered_model_permissions SET permission = ?3 WHERE name = ?1 AND user_id = ?2",
    "DELETE FROM registered_model_permissions WHERE name = ?1 AND user_id = ?2",
    "INSERT INTO registered_model_permissions (name, user_id, permission) VALUES (?1, ?2, ?3) "
    "ON CONFLICT DO UPDATE SET permission = excluded.permission",
    "SELECT name, user_id, permission FROM registered_model_permissions WHERE user_id = ?2 "
    "ORDER BY name",
};

typedef struct perm_op {
    tally_perm_kind kind;
    const char *resource;
    const char *username;         /* by name (REST API) or ... */
    int64_t user_id;              /* ... by id (username NULL) */
    int perm;
    const char *new_name;
    tally_arena *a;
    tally_perm_row *rows;
    size_t n, cap;
} perm_op;

static sqlite3_stmt *perm_stmt(tally__conn *c, tally_perm_kind kind, int q)
{
    return tally__conn_stmt(c, kind == TALLY_PERM_MODEL ? model_sql[q] : exp_sql[q]);
}

static int row_not_found(const perm_op *o, char *err, size_t cap)
{
    if (o->kind == TALLY_PERM_MODEL)
        set_err(err, cap, "Registered model permission with name=%s and username=%s not found",
                o->resource, o->username ? o->username : "?");
    else
        set_err(err, cap, "Experiment permission with experiment_id=%s and username=%s not found",
                o->resource, o->username ? o->username : "?");
    return TALLY_STORE_ENOTFOUND;
}

/* Binds ?1 resource, ?2 user id, ?3 permission name (when perm >= 0). */
static void perm_bind(sqlite3_stmt *st, const perm_op *o, int64_t uid)
{
    sqlite3_bind_text(st, 1, o->resource, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, uid);
    if (o->perm >= 0 && sqlite3_bind_parameter_count(st) >= 3)
        sqlite3_bind_text(st, 3, tally_perm_name(o->perm), -1, SQLITE_STATIC);
}

static int resolve_user(tally__conn *c, perm_op *o, char *err, size_t cap)
{
    return o->username ? user_id_of(c, o->username, &o->user_id, err, cap) : 0;
}

/* Runs statement q; *changed = rows changed. */
static int perm_exec(tally__conn *c, perm_op *o, int q, int *changed, char *err, size_t cap)
{
    sqlite3_stmt *st = perm_stmt(c, o->kind, q);
    if (!st)
        return tally__conn_error(c, err, cap);
    perm_bind(st, o, o->user_id);
    int rc = sqlite3_step(st);
    *changed = sqlite3_changes(tally__conn_db(c));
    tally__stmt_done(st);
    return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
}

static int do_perm_create(tally__conn *c, void *arg, char *err, size_t cap)
{
    perm_op *o = arg;
    int changed = 0;
    int rc = resolve_user(c, o, err, cap);
    if (rc == 0)
        rc = perm_exec(c, o, Q_INSERT, &changed, err, cap);
    if (rc == 0 && !changed) {
        if (o->kind == TALLY_PERM_MODEL)
            set_err(err, cap, "Registered model permission (name=%s, username=%s) already exists.",
                    o->resource, o->username);
        else
            set_err(err, cap,
                    "Experiment permission (experiment_id=%s, username=%s) already exists.",
                    o->resource, o->username);
        rc = TALLY_STORE_EEXISTS;
    }
    return rc;
}

int tally_store_perm_create(tally_store *s, tally_perm_kind kind, const char *resource,
                            const char *username, int perm, int64_t *user_id, char *err,
                            size_t cap)
{
    perm_op o = {.kind = kind, .resource = resource, .username = username, .perm = perm};
    int rc = tally__store_write(s, do_perm_create, &o, err, cap);
    if (rc == 0 && user_id)
        *user_id = o.user_id;
    return rc;
}

static int do_perm_get(tally__conn *c, void *arg, char *err, size_t cap)
{
    perm_op *o = arg;
    int rc = resolve_user(c, o, err, cap);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = perm_stmt(c, o->kind, Q_SELECT);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_text(st, 1, o->resource, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, o->user_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        o->perm = tally_perm_parse((const char *)sqlite3_column_text(st, 0));
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        o->perm = -1;
        rc = o->username ? row_not_found(o, err, cap) : 0;
    } else {
        rc = tally__conn_error(c, err, cap);
    }
    tally__stmt_done(st);
    return rc;
}

int tally_store_perm_get(tally_store *s, tally_perm_kind kind, const char *resource,
                         const char *username, int *perm, int64_t *user_id, char *err, size_t cap)
{
    perm_op o = {.kind = kind, .resource = resource, .username = username, .perm = -1};
    int rc = tally__store_read(s, do_perm_get, &o, err, cap);
    if (rc == 0) {
        *perm = o.perm;
        if (user_id)
            *user_id = o.user_id;
    }
    return rc;
}

int tally_store_perm_lookup(tally_store *s, tally_perm_kind kind, const char *resource,
                            int64_t user_id, int *perm, char *err, size_t cap)
{
    perm_op o = {.kind = kind, .resource = resource, .user_id = user_id, .perm = -1};
    int rc = tally__store_read(s, do_perm_get, &o, err, cap);
    *perm = rc == 0 ? o.perm : -1;
    return rc;
}

static int do_perm_change(tally__conn *c, void *arg, int q, char *err, size_t cap)
{
    perm_op *o = arg;
    int changed = 0;
    int rc = resolve_user(c, o, err, cap);
    if (rc == 0)
        rc = perm_exec(c, o, q, &changed, err, cap);
    if (rc == 0 && !changed && o->username)
        rc = row_not_found(o, err, cap);
    return rc;
}

static int do_perm_update(tally__conn *c, void *arg, char *err, size_t cap)
{
    return do_perm_change(c, arg, Q_UPDATE, err, cap);
}

static int do_perm_delete(tally__conn *c, void *arg, char *err, size_t cap)
{
    return do_perm_change(c, arg, Q_DELETE, err, cap);
}

static int do_perm_upsert(tally__conn *c, void *arg, char *err, size_t cap)
{
    return do_perm_change(c, arg, Q_UPSERT, err, cap);
}

int tally_store_perm_update(tally_store *s, tally_perm_kind kind, const char *resource,
                            const char *username, int perm, char *err, size_t cap)
{
    perm_op o = {.kind = kind, .resource = resource, .username = username, .perm = perm};
    return tally__store_write(s, do_perm_update, &o, err, cap);
}

int tally_store_perm_delete(tally_store *s, tally_perm_kind kind, const char *resource,
                            const char *username, char *err, size_t cap)
{
    perm_op o = {.kind = kind, .resource = resource, .username = username, .perm = -1};
    return tally__store_write(s, do_perm_delete, &o, err, cap);
}

int tally_store_perm_upsert(tally_store *s, tally_perm_kind kind, const char *resource,
                            int64_t user_id, int perm, char *err, size_t cap)
{
    perm_op o = {.kind = kind, .resource = resource, .user_id = user_id, .perm = perm};
    return tally__store_write(s, do_perm_upsert, &o, err, cap);
}

int tally_store_perm_remove(tally_store *s, tally_perm_kind kind, const char *resource,
                            int64_t user_id, char *err, size_t cap)
{
    perm_op o = {.kind = kind, .resource = resource, .user_id = user_id, .perm = -1};
    return tally__store_write(s, do_perm_delete, &o, err, cap);
}

static int do_perm_rename(tally__conn *c, void *arg, char *err, size_t cap)
{
    perm_op *o = arg;
    /* A row the user already holds under the new name wins over the moved one. */
    static const char drop_clash[] =
        "DELETE FROM registered_model_permissions WHERE name = ?1 AND user_id IN "
        "(SELECT user_id FROM registered_model_permissions WHERE name = ?2)";
    static const char move[] = "UPDATE registered_model_permissions SET name = ?2 WHERE name = ?1";
    const char *sqls[2] = {drop_clash, move};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st = tally__conn_stmt(c, sqls[i]);
        if (!st)
            return tally__conn_error(c, err, cap);
        sqlite3_bind_text(st, 1, o->resource, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, o->new_name, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        tally__stmt_done(st);
        if (rc != SQLITE_DONE)
            return tally__conn_error(c, err, cap);
    }
    return 0;
}

int tally_store_perm_rename_model(tally_store *s, const char *old_name, const char *new_name,
                                  char *err, size_t cap)
{
    perm_op o = {.kind = TALLY_PERM_MODEL, .resource = old_name, .new_name = new_name};
    return tally__store_write(s, do_perm_rename, &o, err, cap);
}

static int do_perm_list(tally__conn *c, void *arg, char *err, size_t cap)
{
    perm_op *o = arg;
    sqlite3_stmt *st = perm_stmt(c, o->kind, Q_BY_USER);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_int64(st, 2, o->user_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__arena_reserve(o->a, &o->rows, sizeof *o->rows, o->n, &o->cap, 16) != 0) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        tally_perm_row *r = &o->rows[o->n];
        r->resource = tally__col_dup(o->a, st, 0);
        r->user_id = sqlite3_column_int64(st, 1);
        r->perm = tally_perm_parse((const char *)sqlite3_column_text(st, 2));
        if (!r->resource) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        o->n++;
    }
    tally__stmt_done(st);
    return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
}

int tally_store_perm_list_user(tally_store *s, tally_perm_kind kind, int64_t user_id,
                               tally_arena *a, tally_perm_row **out, size_t *n, char *err,
                               size_t cap)
{
    perm_op o = {.kind = kind, .user_id = user_id, .a = a};
    int rc = tally__store_read(s, do_perm_list, &o, err, cap);
    *out = o.rows;
    *n = rc == 0 ? o.n : 0;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Tokens                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct token_op {
    int64_t user_id;
    const char *name;
    const unsigned char *hash;
    int64_t expires_ms;
    int64_t id;
    tally_arena *a;
    tally_token *out;
    tally_token *list;
    size_t n, cap;
} token_op;

#define TOKEN_COLS                                                                            \
    "SELECT t.id, t.user_id, u.username, t.name, t.created_time, t.expires_time, "          \
    "t.revoked_time FROM auth_tokens t JOIN users u ON u.id = t.user_id "

static int read_token_row(sqlite3_stmt *st, tally_arena *a, tally_token *t)
{
    t->id = sqlite3_column_int64(st, 0);
    t->user_id = sqlite3_column_int64(st, 1);
    t->username = tally__col_dup(a, st, 2);
    t->name = tally__col_dup(a, st, 3);
    t->created_ms = sqlite3_column_int64(st, 4);
    t->expires_ms = sqlite3_column_int64(st, 5);
    t->revoked_ms = sqlite3_column_int64(st, 6);
    return t->username && t->name ? 0 : TALLY_STORE_ENOMEM;
}

static int do_token_create(tally__conn *c, void *arg, char *err, size_t cap)
{
    token_op *o = arg;
    static const char sql[] = "INSERT INTO auth_tokens (user_id, name, token_hash, created_time, "
                              "expires_time) VALUES (?1, ?2, ?3, ?4, ?5)";
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_int64(st, 1, o->user_id);
    sqlite3_bind_text(st, 2, o->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, o->hash, TALLY_TOKEN_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, tally__store_now_ms());
    if (o->expires_ms > 0)
        sqlite3_bind_int64(st, 5, o->expires_ms);
    int rc = sqlite3_step(st);
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    o->id = sqlite3_last_insert_rowid(tally__conn_db(c));
    return 0;
}

int tally_store_token_create(tally_store *s, int64_t user_id, const char *name,
                             const unsigned char hash[TALLY_TOKEN_HASH_BYTES], int64_t expires_ms,
                             int64_t *id_out, char *err, size_t cap)
{
    token_op o = {.user_id = user_id, .name = name, .hash = hash, .expires_ms = expires_ms};
    int rc = tally__store_write(s, do_token_create, &o, err, cap);
    if (rc == 0 && id_out)
        *id_out = o.id;
    return rc;
}

static int do_token_find(tally__conn *c, void *arg, char *err, size_t cap)
{
    token_op *o = arg;
    static const char by_hash[] = TOKEN_COLS "WHERE t.token_hash = ?1";
    static const char by_id[] = TOKEN_COLS "WHERE t.id = ?2";
    sqlite3_stmt *st = tally__conn_stmt(c, o->hash ? by_hash : by_id);
    if (!st)
        return tally__conn_error(c, err, cap);
    if (o->hash)
        sqlite3_bind_blob(st, 1, o->hash, TALLY_TOKEN_HASH_BYTES, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 2, o->id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = read_token_row(st, o->a, o->out);
    } else if (rc == SQLITE_DONE) {
        set_err(err, cap, "Token not found%s%s", "", "");
        rc = TALLY_STORE_ENOTFOUND;
    } else {
        rc = tally__conn_error(c, err, cap);
    }
    tally__stmt_done(st);
    return rc;
}

int tally_store_token_find(tally_store *s, const unsigned char hash[TALLY_TOKEN_HASH_BYTES],
                           tally_arena *a, tally_token *out, char *err, size_t cap)
{
    token_op o = {.hash = hash, .a = a, .out = out};
    return tally__store_read(s, do_token_find, &o, err, cap);
}

int tally_store_token_get(tally_store *s, int64_t id, tally_arena *a, tally_token *out, char *err,
                          size_t cap)
{
    token_op o = {.id = id, .a = a, .out = out};
    return tally__store_read(s, do_token_find, &o, err, cap);
}

static int do_token_list(tally__conn *c, void *arg, char *err, size_t cap)
{
    token_op *o = arg;
    static const char sql[] = TOKEN_COLS "WHERE ?1 < 0 OR t.user_id = ?1 ORDER BY t.id";
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_int64(st, 1, o->user_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tally__arena_reserve(o->a, &o->list, sizeof *o->list, o->n, &o->cap, 16) != 0 ||
            read_token_row(st, o->a, &o->list[o->n]) != 0) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        o->n++;
    }
    tally__stmt_done(st);
    return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
}

int tally_store_token_list(tally_store *s, int64_t user_id, tally_arena *a, tally_token **out,
                           size_t *n, char *err, size_t cap)
{
    token_op o = {.user_id = user_id, .a = a};
    int rc = tally__store_read(s, do_token_list, &o, err, cap);
    *out = o.list;
    *n = rc == 0 ? o.n : 0;
    return rc;
}

static int do_token_revoke(tally__conn *c, void *arg, char *err, size_t cap)
{
    token_op *o = arg;
    static const char sql[] =
        "UPDATE auth_tokens SET revoked_time = coalesce(revoked_time, ?2) WHERE id = ?1";
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_int64(st, 1, o->id);
    sqlite3_bind_int64(st, 2, tally__store_now_ms());
    int rc = sqlite3_step(st);
    int changed = sqlite3_changes(tally__conn_db(c));
    tally__stmt_done(st);
    if (rc != SQLITE_DONE)
        return tally__conn_error(c, err, cap);
    if (!changed) {
        set_err(err, cap, "Token not found%s%s", "", "");
        return TALLY_STORE_ENOTFOUND;
    }
    return 0;
}

int tally_store_token_revoke(tally_store *s, int64_t id, char *err, size_t cap)
{
    token_op o = {.id = id};
    return tally__store_write(s, do_token_revoke, &o, err, cap);
}

/* ------------------------------------------------------------------------ */
/* Audit log                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct audit_op {
    const tally_audit_record *rec;
    size_t n_rec;                 /* records at rec (appends) */
    const tally_audit_query *q;
    tally_arena *a;
    tally_audit_record *list;
    size_t n, cap;
    int more;
} audit_op;

static int audit_insert(tally__conn *c, const tally_audit_record *r, char *err, size_t cap)
{
    static const char sql[] =
        "INSERT INTO audit_log (time_ms, username, method, route, path, resource, status, "
        "remote) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    sqlite3_bind_int64(st, 1, r->time_ms);
    sqlite3_bind_text(st, 2, r->username ? r->username : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->method ? r->method : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->route ? r->route : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->path ? r->path : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, r->resource ? r->resource : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, r->status);
    sqlite3_bind_text(st, 8, r->remote ? r->remote : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    tally__stmt_done(st);
    return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
}

static int do_audit_append(tally__conn *c, void *arg, char *err, size_t cap)
{
    audit_op *o = arg;
    for (size_t i = 0; i < o->n_rec; i++) {
        int rc = audit_insert(c, &o->rec[i], err, cap);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int tally_store_audit_append(tally_store *s, const tally_audit_record *r, char *err, size_t cap)
{
    audit_op o = {.rec = r, .n_rec = 1};
    return tally__store_write(s, do_audit_append, &o, err, cap);
}

int tally_store_audit_append_many(tally_store *s, const tally_audit_record *r, size_t n, char *err,
                                  size_t cap)
{
    audit_op o = {.rec = r, .n_rec = n};
    return n ? tally__store_write(s, do_audit_append, &o, err, cap) : 0;
}

static int do_audit_search(tally__conn *c, void *arg, char *err, size_t cap)
{
    audit_op *o = arg;
    const tally_audit_query *q = o->q;
    static const char sql[] =
        "SELECT id, time_ms, username, method, route, path, resource, status, remote "
        "FROM audit_log WHERE (?1 IS NULL OR username = ?1) AND (?2 IS NULL OR route = ?2) "
        "AND (?3 = 0 OR time_ms >= ?3) AND (?4 = 0 OR time_ms < ?4) "
        "AND (?5 = 0 OR id < ?5) ORDER BY id DESC LIMIT ?6";
    sqlite3_stmt *st = tally__conn_stmt(c, sql);
    if (!st)
        return tally__conn_error(c, err, cap);
    if (q->username)
        sqlite3_bind_text(st, 1, q->username, -1, SQLITE_STATIC);
    if (q->route)
        sqlite3_bind_text(st, 2, q->route, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, q->since_ms);
    sqlite3_bind_int64(st, 4, q->until_ms);
    sqlite3_bind_int64(st, 5, q->before_id);
    sqlite3_bind_int64(st, 6, (int64_t)q->limit + 1); /* one more tells whether more remain */
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (o->n == q->limit) {
            o->more = 1;
            continue;
        }
        if (tally__arena_reserve(o->a, &o->list, sizeof *o->list, o->n, &o->cap, 32) != 0) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        tally_audit_record *r = &o->list[o->n];
        r->id = sqlite3_column_int64(st, 0);
        r->time_ms = sqlite3_column_int64(st, 1);
        r->username = tally__col_dup(o->a, st, 2);
        r->method = tally__col_dup(o->a, st, 3);
        r->route = tally__col_dup(o->a, st, 4);
        r->path = tally__col_dup(o->a, st, 5);
        r->resource = tally__col_dup(o->a, st, 6);
        r->status = sqlite3_column_int(st, 7);
        r->remote = tally__col_dup(o->a, st, 8);
        if (!r->username || !r->method || !r->route || !r->path || !r->resource || !r->remote) {
            tally__stmt_done(st);
            return TALLY_STORE_ENOMEM;
        }
        o->n++;
    }
    tally__stmt_done(st);
    return rc == SQLITE_DONE ? 0 : tally__conn_error(c, err, cap);
}

int tally_store_audit_search(tally_store *s, const tally_audit_query *q, tally_arena *a,
                             tally_audit_record **out, size_t *n, int *more, char *err,
                             size_t cap)
{
    audit_op o = {.q = q, .a = a};
    int rc = tally__store_read(s, do_audit_search, &o, err, cap);
    *out = o.list;
    *n = rc == 0 ? o.n : 0;
    *more = o.more;
    return rc;
}
