/*
 * auth.h — authentication: who is calling (mlflow-auth.md §2, §7, §8).
 *
 * Credentials come in the Authorization header, either
 *   Basic base64("<user>:<password>")   (scheme case-insensitive; split at the
 *                                        first ':', so passwords may hold ':')
 *   Bearer <token>                      (an API token made by tally/tokens/create)
 * Passwords are stored as libsodium crypto_pwhash_str strings (argon2id,
 * OPSLIMIT/MEMLIMIT_INTERACTIVE: ~64 MiB, tens of ms per check). Tokens are
 * "tly_" + 43 base64url characters (32 random bytes) and stored as the
 * BLAKE2b-256 of the whole string (store_auth.h invariant (4)).
 *
 * Verified-credential cache: argon2id runs once per credential, not per
 * request. The cache maps a keyed BLAKE2b-256 of the header value (key drawn
 * at start, never stored) to the principal; entries hold the credential
 * epoch they were made in and live at most CACHE_TTL_S seconds.
 *
 * Invariants:
 *  (1) Any change that could make a cached verification wrong — password
 *      change, user delete, admin flag change, token revoke — calls
 *      tally_auth_credentials_changed() after it committed, which bumps the
 *      credential epoch: every older entry is dead at once (a revoked token
 *      is refused by the very next request).
 *  (2) Any change of a permission row calls tally_auth_permissions_changed(),
 *      which does the same for the permission cache (user, resource) -> level.
 *  (3) Digests and hashes are compared in constant time (sodium_memcmp,
 *      crypto_pwhash_str_verify); an unknown username still costs one
 *      argon2id verification, against a dummy hash.
 *  (4) Neither cache ever holds a password or a token, only keyed digests.
 */
#ifndef TALLY_SERVER_AUTH_H
#define TALLY_SERVER_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "store_auth.h"

typedef struct tally_config tally_config;

#define TALLY_AUTH_MAX_USERNAME 255
#define TALLY_AUTH_MAX_PASSWORD 1024
#define TALLY_AUTH_PWHASH_BYTES 128  /* >= crypto_pwhash_STRBYTES */
#define TALLY_TOKEN_PREFIX "tly_"
#define TALLY_TOKEN_CHARS 47         /* "tly_" + 43 base64url characters */

/* The authenticated caller. */
typedef struct tally_principal {
    int64_t user_id;              /* users.id */
    int is_admin;
    int64_t token_id;             /* the token used, 0 for Basic */
    char username[TALLY_AUTH_MAX_USERNAME + 1];
} tally_principal;

/* ---- parsing the header (pure; fuzzed by tests/fuzz/fuzz_auth_header.c) --- */

typedef enum tally_cred_kind {
    TALLY_CRED_NONE = 0,          /* no header or an empty one */
    TALLY_CRED_BASIC = 1,
    TALLY_CRED_BEARER = 2,
    TALLY_CRED_INVALID = 3        /* another scheme, bad base64, no ':', too long, NUL inside */
} tally_cred_kind;

typedef struct tally_cred {
    tally_cred_kind kind;
    char user[TALLY_AUTH_MAX_USERNAME + 1];     /* Basic */
    char password[TALLY_AUTH_MAX_PASSWORD + 1]; /* Basic */
    char token[TALLY_TOKEN_CHARS + 1];          /* Bearer */
} tally_cred;

/* Parses an Authorization header value (NULL = absent) into out; returns
 * out->kind. Never reads past the terminating NUL. */
tally_cred_kind tally_auth_parse_header(const char *value, tally_cred *out);

/* ---- the authenticator ----------------------------------------------------- */

typedef struct tally_auth tally_auth;

/* Initialises libsodium, validates cfg->default_permission, and creates the
 * admin cfg->admin_username with cfg->admin_password when no such user exists
 * (mlflow-auth.md §1; a later config edit does not reset it). Refuses, with
 * a message, when the admin must be created and no password is configured,
 * or the password is shorter than 12 characters. */
int tally_auth_open(tally_store *store, const tally_config *cfg, tally_auth **out, char *err,
                    size_t cap);
void tally_auth_close(tally_auth *a); /* NULL is a no-op */

/* Authenticates an Authorization header value. 0 with *who filled, or -1
 * (missing, malformed, unknown user, wrong password, unknown/revoked/expired
 * token, or the store failed). */
int tally_auth_authenticate(tally_auth *a, const char *header, tally_principal *who);

/* Invariants (1) and (2). */
void tally_auth_credentials_changed(tally_auth *a);
void tally_auth_permissions_changed(tally_auth *a);

/* The configured default permission (tally_perm). */
int tally_auth_default_permission(const tally_auth *a);

/* The caller's effective level on a resource: its row, else the default
 * (mlflow-auth.md §3); admins get MANAGE. Cached (invariant (2)). 0, or a
 * store error (then *perm = TALLY_PERM_NONE). */
int tally_auth_effective(tally_auth *a, const tally_principal *who, tally_perm_kind kind,
                         const char *resource, int *perm);

/* A crypto_pwhash_str (argon2id) string of password into out (cap >=
 * TALLY_AUTH_PWHASH_BYTES). 0, or -1 (out of memory). */
int tally_auth_hash_password(const char *password, char *out, size_t cap);

/* A new token: the secret (shown once) and its stored hash. 0 or -1. */
int tally_auth_token_new(char secret[TALLY_TOKEN_CHARS + 1],
                         unsigned char hash[TALLY_TOKEN_HASH_BYTES]);

/* The stored hash of a token secret. */
void tally_auth_token_hash(const char *secret, unsigned char hash[TALLY_TOKEN_HASH_BYTES]);

#endif /* TALLY_SERVER_AUTH_H */
