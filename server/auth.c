/*
 * auth.c — authentication (auth.h): the Authorization header parser,
 * argon2id passwords and API tokens through libsodium, the admin bootstrap,
 * and the two caches that keep argon2id and permission lookups off the hot
 * path.
 *
 * Caches (both fixed-size, open addressing over PROBE slots, one mutex each,
 * held only to copy an entry in or out):
 *
 *   creds  keyed BLAKE2b-256(header value) -> principal, epoch, expiry
 *   perms  (user id, kind, resource) -> row level or -1 (no row), epoch
 *
 * An entry is live only while its epoch equals the cache's current epoch
 * (auth.h invariants (1), (2)) and, for creds, before its expiry. A full
 * probe window evicts the slot at the home position.
 */
#include "auth.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"

#define CRED_SLOTS 1024u
#define PERM_SLOTS 4096u
#define PROBE 8u
#define CACHE_TTL_S 300          /* a cached verification is redone after this long */
#define PERM_RES_MAX 127         /* longer resources are not cached */
#define MIN_ADMIN_PASSWORD 12    /* MLflow's users/create rule */

typedef struct cred_entry {
    unsigned char digest[crypto_generichash_BYTES]; /* keyed hash of the header value */
    uint64_t epoch;              /* creds epoch when verified; 0 = empty slot */
    int64_t expires_s;           /* monotonic seconds */
    tally_principal who;
} cred_entry;

typedef struct perm_entry {
    uint64_t epoch;              /* perms epoch when read; 0 = empty slot */
    int64_t user_id;
    int kind;                    /* tally_perm_kind */
    int row;                     /* the row's level, or -1: no row */
    char resource[PERM_RES_MAX + 1];
} perm_entry;

struct tally_auth {
    tally_store *store;
    int default_perm;                          /* tally_perm */
    unsigned char key[crypto_generichash_KEYBYTES]; /* cache digest key, per process */
    char dummy_hash[TALLY_AUTH_PWHASH_BYTES];  /* verified against for unknown users */
    atomic_uint_fast64_t cred_epoch;           /* starts at 1 */
    atomic_uint_fast64_t perm_epoch;
    pthread_mutex_t cred_lock, perm_lock;
    cred_entry creds[CRED_SLOTS];
    perm_entry perms[PERM_SLOTS];
};

static int64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------ */
/* Header parsing                                                            */
/* ------------------------------------------------------------------------ */

tally_cred_kind tally_auth_parse_header(const char *value, tally_cred *out)
{
    memset(out, 0, sizeof *out);
    if (!value)
        return out->kind = TALLY_CRED_NONE;
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return out->kind = TALLY_CRED_NONE;
    const char *sp = p;
    while (*sp && *sp != ' ' && *sp != '\t')
        sp++;
    size_t scheme_len = (size_t)(sp - p);
    const char *arg = sp;
    while (*arg == ' ' || *arg == '\t')
        arg++;
    size_t arg_len = strlen(arg);
    while (arg_len && (arg[arg_len - 1] == ' ' || arg[arg_len - 1] == '\t'))
        arg_len--;
    out->kind = TALLY_CRED_INVALID;
    if (scheme_len == 5 && strncasecmp(p, "Basic", 5) == 0) {
        /* (user + ':' + password) decoded can be at most this long. */
        unsigned char bin[TALLY_AUTH_MAX_USERNAME + 1 + TALLY_AUTH_MAX_PASSWORD + 1];
        size_t n = 0;
        if (arg_len == 0 || arg_len > 4 * (sizeof bin / 3) + 4)
            return out->kind;
        if (sodium_base642bin(bin, sizeof bin - 1, arg, arg_len, NULL, &n, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 &&
            sodium_base642bin(bin, sizeof bin - 1, arg, arg_len, NULL, &n, NULL,
                              sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0)
            return out->kind;
        if (memchr(bin, 0, n))
            return out->kind;
        unsigned char *colon = memchr(bin, ':', n);
        if (!colon)
            return out->kind;
        size_t ul = (size_t)(colon - bin), pl = n - ul - 1;
        if (ul == 0 || ul > TALLY_AUTH_MAX_USERNAME || pl > TALLY_AUTH_MAX_PASSWORD)
            return out->kind;
        memcpy(out->user, bin, ul);
        out->user[ul] = 0;
        memcpy(out->password, colon + 1, pl);
        out->password[pl] = 0;
        sodium_memzero(bin, sizeof bin);
        return out->kind = TALLY_CRED_BASIC;
    }
    if (scheme_len == 6 && strncasecmp(p, "Bearer", 6) == 0) {
        if (arg_len != TALLY_TOKEN_CHARS ||
            strncmp(arg, TALLY_TOKEN_PREFIX, sizeof TALLY_TOKEN_PREFIX - 1) != 0)
            return out->kind;
        for (size_t i = sizeof TALLY_TOKEN_PREFIX - 1; i < arg_len; i++) {
            char c = arg[i];
            int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_';
            if (!ok)
                return out->kind;
        }
        memcpy(out->token, arg, arg_len);
        out->token[arg_len] = 0;
        return out->kind = TALLY_CRED_BEARER;
    }
    return out->kind;
}

/* ------------------------------------------------------------------------ */
/* Passwords and tokens                                                      */
/* ------------------------------------------------------------------------ */

int tally_auth_hash_password(const char *password, char *out, size_t cap)
{
    if (cap < crypto_pwhash_STRBYTES)
        return -1;
    return crypto_pwhash_str_alg(out, password, strlen(password),
                                 crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                 crypto_pwhash_MEMLIMIT_INTERACTIVE,
                                 crypto_pwhash_ALG_ARGON2ID13) == 0
               ? 0
               : -1;
}

void tally_auth_token_hash(const char *secret, unsigned char hash[TALLY_TOKEN_HASH_BYTES])
{
    crypto_generichash(hash, TALLY_TOKEN_HASH_BYTES, (const unsigned char *)secret,
                       strlen(secret), NULL, 0);
}

int tally_auth_token_new(char secret[TALLY_TOKEN_CHARS + 1],
                         unsigned char hash[TALLY_TOKEN_HASH_BYTES])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    memcpy(secret, TALLY_TOKEN_PREFIX, sizeof TALLY_TOKEN_PREFIX - 1);
    sodium_bin2base64(secret + sizeof TALLY_TOKEN_PREFIX - 1,
                      TALLY_TOKEN_CHARS + 1 - (sizeof TALLY_TOKEN_PREFIX - 1), raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    if (strlen(secret) != TALLY_TOKEN_CHARS)
        return -1;
    tally_auth_token_hash(secret, hash);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Open, close                                                               */
/* ------------------------------------------------------------------------ */

int tally_auth_open(tally_store *store, const tally_config *cfg, tally_auth **out, char *err,
                    size_t cap)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, cap, "cannot initialise libsodium");
        return -1;
    }
    int dp = tally_perm_parse(cfg->default_permission);
    if (dp < 0) {
        snprintf(err, cap,
                 "default_permission must be READ, EDIT, MANAGE or NO_PERMISSIONS, not '%s'",
                 cfg->default_permission);
        return -1;
    }
    tally_auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    a->store = store;
    a->default_perm = dp;
    atomic_init(&a->cred_epoch, 1);
    atomic_init(&a->perm_epoch, 1);
    pthread_mutex_init(&a->cred_lock, NULL);
    pthread_mutex_init(&a->perm_lock, NULL);
    crypto_generichash_keygen(a->key);
    unsigned char junk[24];
    char junk_pw[64];
    randombytes_buf(junk, sizeof junk);
    sodium_bin2base64(junk_pw, sizeof junk_pw, junk, sizeof junk, sodium_base64_VARIANT_ORIGINAL);
    if (tally_auth_hash_password(junk_pw, a->dummy_hash, sizeof a->dummy_hash) != 0) {
        snprintf(err, cap, "out of memory hashing a password");
        tally_auth_close(a);
        return -1;
    }

    /* Admin bootstrap: only when the name is absent. */
    tally_arena *ar = tally_arena_new();
    tally_user u;
    char serr[512] = "";
    int rc = ar ? tally_store_user_get(store, cfg->admin_username, ar, &u, serr, sizeof serr)
                : TALLY_STORE_ENOMEM;
    tally_arena_free(ar);
    if (rc == TALLY_STORE_ENOTFOUND) {
        if (strlen(cfg->admin_password) < MIN_ADMIN_PASSWORD) {
            snprintf(err, cap,
                     "authentication is on and admin user '%s' does not exist yet: set its "
                     "password (at least %d characters) with --admin-password, "
                     "TALLY_ADMIN_PASSWORD or admin_password in the config file",
                     cfg->admin_username, MIN_ADMIN_PASSWORD);
            tally_auth_close(a);
            return -1;
        }
        char hash[TALLY_AUTH_PWHASH_BYTES];
        if (tally_auth_hash_password(cfg->admin_password, hash, sizeof hash) != 0) {
            snprintf(err, cap, "out of memory hashing a password");
            tally_auth_close(a);
            return -1;
        }
        rc = tally_store_user_create(store, cfg->admin_username, hash, 1, NULL, serr, sizeof serr);
    }
    if (rc != 0) {
        snprintf(err, cap, "cannot set up the admin user: %s", serr);
        tally_auth_close(a);
        return -1;
    }
    *out = a;
    return 0;
}

void tally_auth_close(tally_auth *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->cred_lock);
    pthread_mutex_destroy(&a->perm_lock);
    sodium_memzero(a, sizeof *a);
    free(a);
}

void tally_auth_credentials_changed(tally_auth *a)
{
    atomic_fetch_add(&a->cred_epoch, 1);
}

void tally_auth_permissions_changed(tally_auth *a)
{
    atomic_fetch_add(&a->perm_epoch, 1);
}

int tally_auth_default_permission(const tally_auth *a)
{
    return a->default_perm;
}

/* ------------------------------------------------------------------------ */
/* Authentication                                                            */
/* ------------------------------------------------------------------------ */

static size_t slot_of(const unsigned char *d, size_t slots)
{
    uint64_t h;
    memcpy(&h, d, sizeof h);
    return (size_t)(h & (slots - 1));
}

static int cred_cache_get(tally_auth *a, const unsigned char *digest, tally_principal *who)
{
    uint64_t epoch = atomic_load(&a->cred_epoch);
    int64_t now = mono_s();
    size_t home = slot_of(digest, CRED_SLOTS);
    int hit = 0;
    pthread_mutex_lock(&a->cred_lock);
    for (size_t i = 0; i < PROBE && !hit; i++) {
        const cred_entry *e = &a->creds[(home + i) & (CRED_SLOTS - 1)];
        if (e->epoch == epoch && e->expires_s > now &&
            sodium_memcmp(e->digest, digest, sizeof e->digest) == 0) {
            *who = e->who;
            hit = 1;
        }
    }
    pthread_mutex_unlock(&a->cred_lock);
    return hit;
}

static void cred_cache_put(tally_auth *a, const unsigned char *digest, uint64_t epoch,
                           int64_t ttl_s, const tally_principal *who)
{
    size_t home = slot_of(digest, CRED_SLOTS), pick = home;
    uint64_t cur = atomic_load(&a->cred_epoch);
    pthread_mutex_lock(&a->cred_lock);
    for (size_t i = 0; i < PROBE; i++) {
        size_t s = (home + i) & (CRED_SLOTS - 1);
        if (a->creds[s].epoch != cur) { /* empty or dead */
            pick = s;
            break;
        }
    }
    cred_entry *e = &a->creds[pick];
    memcpy(e->digest, digest, sizeof e->digest);
    e->epoch = epoch;
    e->expires_s = mono_s() + ttl_s;
    e->who = *who;
    pthread_mutex_unlock(&a->cred_lock);
}

/* Verifies a credential against the store. 0 with *who and *ttl_s. */
static int verify(tally_auth *a, const tally_cred *c, tally_principal *who, int64_t *ttl_s)
{
    tally_arena *ar = tally_arena_new();
    if (!ar)
        return -1;
    int ok = 0;
    tally_user u;
    memset(who, 0, sizeof *who);
    *ttl_s = CACHE_TTL_S;
    if (c->kind == TALLY_CRED_BASIC) {
        int rc = tally_store_user_get(a->store, c->user, ar, &u, NULL, 0);
        /* Invariant (3): the same work whether or not the user exists. */
        const char *hash = rc == 0 ? u.password_hash : a->dummy_hash;
        int match = crypto_pwhash_str_verify(hash, c->password, strlen(c->password)) == 0;
        if (rc == 0 && match) {
            who->user_id = u.id;
            who->is_admin = u.is_admin;
            snprintf(who->username, sizeof who->username, "%s", u.username);
            ok = 1;
        }
    } else if (c->kind == TALLY_CRED_BEARER) {
        unsigned char h[TALLY_TOKEN_HASH_BYTES];
        tally_auth_token_hash(c->token, h);
        tally_token t;
        int64_t now = wall_ms();
        if (tally_store_token_find(a->store, h, ar, &t, NULL, 0) == 0 && t.revoked_ms == 0 &&
            (t.expires_ms == 0 || t.expires_ms > now) &&
            tally_store_user_get_by_id(a->store, t.user_id, ar, &u, NULL, 0) == 0) {
            who->user_id = u.id;
            who->is_admin = u.is_admin;
            who->token_id = t.id;
            snprintf(who->username, sizeof who->username, "%s", u.username);
            if (t.expires_ms) {
                int64_t left = (t.expires_ms - now) / 1000;
                if (left < *ttl_s)
                    *ttl_s = left;
            }
            ok = 1; /* a ttl of 0 (expiring within the second) is just not cached */
        }
    }
    tally_arena_free(ar);
    return ok ? 0 : -1;
}

int tally_auth_authenticate(tally_auth *a, const char *header, tally_principal *who)
{
    if (!header || !*header)
        return -1;
    unsigned char digest[crypto_generichash_BYTES];
    crypto_generichash(digest, sizeof digest, (const unsigned char *)header, strlen(header), a->key,
                       sizeof a->key);
    if (cred_cache_get(a, digest, who))
        return 0;
    tally_cred *c = malloc(sizeof *c); /* ~1.3 KiB: keep it off the worker's stack */
    if (!c)
        return -1;
    int rc = -1;
    /* The epoch read before verifying: a change committed meanwhile makes
     * this entry dead on arrival rather than stale. */
    uint64_t epoch = atomic_load(&a->cred_epoch);
    int64_t ttl_s = 0;
    if (tally_auth_parse_header(header, c) != TALLY_CRED_INVALID && c->kind != TALLY_CRED_NONE &&
        verify(a, c, who, &ttl_s) == 0) {
        rc = 0;
        if (ttl_s > 0)
            cred_cache_put(a, digest, epoch, ttl_s, who);
    }
    sodium_memzero(c, sizeof *c);
    free(c);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Effective permissions                                                     */
/* ------------------------------------------------------------------------ */

static uint64_t perm_hash(int64_t user_id, int kind, const char *res)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)user_id * 0x9E3779B97F4A7C15ull ^ (uint64_t)kind;
    for (const unsigned char *p = (const unsigned char *)res; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h ^ (h >> 29);
}

int tally_auth_effective(tally_auth *a, const tally_principal *who, tally_perm_kind kind,
                         const char *resource, int *perm)
{
    if (who->is_admin) {
        *perm = TALLY_PERM_MANAGE;
        return 0;
    }
    size_t rlen = strlen(resource);
    int cacheable = rlen <= PERM_RES_MAX;
    uint64_t epoch = atomic_load(&a->perm_epoch);
    size_t home = (size_t)(perm_hash(who->user_id, kind, resource) & (PERM_SLOTS - 1));
    int row = -2;
    if (cacheable) {
        pthread_mutex_lock(&a->perm_lock);
        for (size_t i = 0; i < PROBE; i++) {
            const perm_entry *e = &a->perms[(home + i) & (PERM_SLOTS - 1)];
            if (e->epoch == epoch && e->user_id == who->user_id && e->kind == (int)kind &&
                strcmp(e->resource, resource) == 0) {
                row = e->row;
                break;
            }
        }
        pthread_mutex_unlock(&a->perm_lock);
    }
    if (row == -2) {
        int rc = tally_store_perm_lookup(a->store, kind, resource, who->user_id, &row, NULL, 0);
        if (rc != 0) {
            *perm = TALLY_PERM_NONE;
            return rc;
        }
        if (cacheable) {
            pthread_mutex_lock(&a->perm_lock);
            size_t pick = home;
            uint64_t cur = atomic_load(&a->perm_epoch);
            for (size_t i = 0; i < PROBE; i++) {
                size_t s = (home + i) & (PERM_SLOTS - 1);
                if (a->perms[s].epoch != cur) {
                    pick = s;
                    break;
                }
            }
            perm_entry *e = &a->perms[pick];
            e->epoch = epoch;
            e->user_id = who->user_id;
            e->kind = (int)kind;
            e->row = row;
            memcpy(e->resource, resource, rlen + 1);
            pthread_mutex_unlock(&a->perm_lock);
        }
    }
    *perm = row >= 0 ? row : a->default_perm;
    return 0;
}
