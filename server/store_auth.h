/*
 * store_auth.h — the store interface of authentication and authorization:
 * users, per-experiment and per-registered-model permission rows
 * (mlflow-auth.md §1, §3, §6), API tokens and the audit log. SQLite
 * implementation: store_auth_sqlite.c (migration 4); a PostgreSQL backend
 * implements the same set.
 *
 * Conventions as store.h: 0 or a negative TALLY_STORE_E* code with MLflow's
 * message in err (cap bytes, may be NULL); results in a caller-owned arena;
 * inputs borrowed for the call; any thread.
 *
 * Invariants:
 *  (1) Usernames are unique; user ids are never reused while the row exists.
 *  (2) Deleting a user deletes its permission rows and its tokens in the same
 *      transaction (MLflow refuses with a constraint error; we cascade).
 *  (3) At most one permission row per (resource, user); a row may name an
 *      experiment or model that does not exist.
 *  (4) Tokens are stored only as a 32-byte BLAKE2b hash of the secret; the
 *      secret itself is shown once, at creation.
 *  (5) Audit records are append-only: nothing here updates or deletes them.
 */
#ifndef TALLY_SERVER_STORE_AUTH_H
#define TALLY_SERVER_STORE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Permission levels, ordered so that a higher level includes the lower ones
 * (NO_PERMISSIONS < READ < EDIT < MANAGE). */
typedef enum tally_perm {
    TALLY_PERM_NONE = 0,   /* "NO_PERMISSIONS" */
    TALLY_PERM_READ = 1,
    TALLY_PERM_EDIT = 2,
    TALLY_PERM_MANAGE = 3
} tally_perm;

/* "READ", ... for a level; NULL for anything else. */
const char *tally_perm_name(int perm);
/* The level of an exact name ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS"),
 * or -1. */
int tally_perm_parse(const char *name);

/* What a permission row is about. */
typedef enum tally_perm_kind {
    TALLY_PERM_EXPERIMENT = 0,    /* resource = experiment id as decimal text */
    TALLY_PERM_MODEL = 1          /* resource = registered model name */
} tally_perm_kind;

typedef struct tally_user {
    int64_t id;                   /* users.id */
    const char *username;
    const char *password_hash;    /* libsodium crypto_pwhash_str (argon2id) string */
    int is_admin;
} tally_user;

typedef struct tally_perm_row {
    const char *resource;         /* experiment id or model name */
    int64_t user_id;
    int perm;                     /* tally_perm */
} tally_perm_row;

/* ---- users --------------------------------------------------------------- */

/* EEXISTS "User '<u>' already exists." when the name is taken. */
int tally_store_user_create(tally_store *s, const char *username, const char *password_hash,
                            int is_admin, int64_t *id_out, char *err, size_t cap);
/* ENOTFOUND "User with username=<u> not found". */
int tally_store_user_get(tally_store *s, const char *username, tally_arena *a, tally_user *out,
                         char *err, size_t cap);
int tally_store_user_get_by_id(tally_store *s, int64_t id, tally_arena *a, tally_user *out,
                               char *err, size_t cap);
/* ENOTFOUND for an unknown user. */
int tally_store_user_set_password(tally_store *s, const char *username, const char *password_hash,
                                  char *err, size_t cap);
int tally_store_user_set_admin(tally_store *s, const char *username, int is_admin, char *err,
                               size_t cap);
/* Invariant (2). ENOTFOUND for an unknown user. */
int tally_store_user_delete(tally_store *s, const char *username, char *err, size_t cap);
/* Every user in id order. */
int tally_store_user_list(tally_store *s, tally_arena *a, tally_user **out, size_t *n, char *err,
                          size_t cap);

/* ---- permission rows ----------------------------------------------------- */

/* The REST API's operations (mlflow-auth.md §6), by username. create:
 * ENOTFOUND (user), EEXISTS (row). get/update/delete: ENOTFOUND (user or row,
 * with MLflow's messages). get fills *perm and *user_id. */
int tally_store_perm_create(tally_store *s, tally_perm_kind kind, const char *resource,
                            const char *username, int perm, int64_t *user_id, char *err,
                            size_t cap);
int tally_store_perm_get(tally_store *s, tally_perm_kind kind, const char *resource,
                         const char *username, int *perm, int64_t *user_id, char *err, size_t cap);
int tally_store_perm_update(tally_store *s, tally_perm_kind kind, const char *resource,
                            const char *username, int perm, char *err, size_t cap);
int tally_store_perm_delete(tally_store *s, tally_perm_kind kind, const char *resource,
                            const char *username, char *err, size_t cap);

/* The caller's level for one resource: 0 with *perm = the row's level, or
 * *perm = -1 when the user has no row (the default permission applies). */
int tally_store_perm_lookup(tally_store *s, tally_perm_kind kind, const char *resource,
                            int64_t user_id, int *perm, char *err, size_t cap);
/* Every row of one user of one kind, ordered by resource. */
int tally_store_perm_list_user(tally_store *s, tally_perm_kind kind, int64_t user_id,
                               tally_arena *a, tally_perm_row **out, size_t *n, char *err,
                               size_t cap);
/* After-request effects (mlflow-auth.md §5, with the "Do" fixes): upsert a
 * row; delete one row (a missing row is not an error); move every row of a
 * model name to a new name. */
int tally_store_perm_upsert(tally_store *s, tally_perm_kind kind, const char *resource,
                            int64_t user_id, int perm, char *err, size_t cap);
int tally_store_perm_remove(tally_store *s, tally_perm_kind kind, const char *resource,
                            int64_t user_id, char *err, size_t cap);
int tally_store_perm_rename_model(tally_store *s, const char *old_name, const char *new_name,
                                  char *err, size_t cap);

/* ---- API tokens ---------------------------------------------------------- */

#define TALLY_TOKEN_HASH_BYTES 32

typedef struct tally_token {
    int64_t id;
    int64_t user_id;
    const char *username;
    const char *name;             /* the owner's label */
    int64_t created_ms;
    int64_t expires_ms;           /* 0: never */
    int64_t revoked_ms;           /* 0: not revoked */
} tally_token;

int tally_store_token_create(tally_store *s, int64_t user_id, const char *name,
                             const unsigned char hash[TALLY_TOKEN_HASH_BYTES], int64_t expires_ms,
                             int64_t *id_out, char *err, size_t cap);
/* The token with this hash (revoked ones included). ENOTFOUND. */
int tally_store_token_find(tally_store *s, const unsigned char hash[TALLY_TOKEN_HASH_BYTES],
                           tally_arena *a, tally_token *out, char *err, size_t cap);
int tally_store_token_get(tally_store *s, int64_t id, tally_arena *a, tally_token *out, char *err,
                          size_t cap);
/* Tokens of one user (user_id >= 0) or of everyone (-1), in id order. */
int tally_store_token_list(tally_store *s, int64_t user_id, tally_arena *a, tally_token **out,
                           size_t *n, char *err, size_t cap);
/* Sets revoked_time (idempotent). ENOTFOUND for an unknown id. */
int tally_store_token_revoke(tally_store *s, int64_t id, char *err, size_t cap);

/* ---- audit log ----------------------------------------------------------- */

typedef struct tally_audit_record {
    int64_t id;                   /* assigned by the store, increasing */
    int64_t time_ms;              /* wall time of the request's end */
    const char *username;         /* who ("" when unauthenticated) */
    const char *method;           /* "POST" */
    const char *route;            /* route name, e.g. "runs/log-batch" */
    const char *path;             /* request path */
    const char *resource;         /* e.g. "experiment_id=3", "run_id=ab12..", "" */
    int status;                   /* HTTP status sent */
    const char *remote;           /* "ip:port" */
} tally_audit_record;

typedef struct tally_audit_query {
    const char *username;         /* NULL: any */
    const char *route;            /* NULL: any */
    int64_t since_ms;             /* 0: no lower bound (inclusive) */
    int64_t until_ms;             /* 0: no upper bound (exclusive) */
    int64_t before_id;            /* 0: from the newest; else records with id < before_id */
    size_t limit;                 /* records wanted (1..1000) */
} tally_audit_query;

int tally_store_audit_append(tally_store *s, const tally_audit_record *r, char *err, size_t cap);
/* n records in one transaction (all or none), ids in array order. */
int tally_store_audit_append_many(tally_store *s, const tally_audit_record *r, size_t n, char *err,
                                  size_t cap);
/* Newest first. *more = 1 when older matching records remain. */
int tally_store_audit_search(tally_store *s, const tally_audit_query *q, tally_arena *a,
                             tally_audit_record **out, size_t *n, int *more, char *err,
                             size_t cap);

#endif /* TALLY_SERVER_STORE_AUTH_H */
