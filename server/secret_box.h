/*
 * secret_box.h — webhook secrets sealed at rest: libsodium's
 * crypto_secretbox (XSalsa20-Poly1305) under a server key kept in a file of
 * the data directory, so that the database, its backups and its dumps do
 * not carry the secrets that sign deliveries (MLflow keeps them
 * Fernet-encrypted under MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY; a key it
 * invents per process loses them at the next restart — ours is a file and
 * survives).
 *
 * Stored form: TALLY_SECRET_SEALED_PREFIX, then base64 (RFC 4648, with
 * padding) of nonce (24 random bytes) | MAC (16) | ciphertext.
 *
 * Invariants:
 *  (1) "" (no secret: deliveries go unsigned) is stored as "", never sealed.
 *  (2) A value without the prefix was stored before sealing existed: it
 *      opens as itself; the webhook dispatcher seals such rows at start.
 *  (3) Opening never yields a wrong secret: a value that fails
 *      authentication (another key, damage) is an error, so a delivery is
 *      never signed with garbage.
 *  (4) The key file holds 64 hex digits and a newline, mode 0600, and is
 *      created once (O_EXCL) from the system's random source, then fsync'd
 *      with its directory. The key lives only in process memory.
 */
#ifndef TALLY_SERVER_SECRET_BOX_H
#define TALLY_SERVER_SECRET_BOX_H

#include <stddef.h>

#define TALLY_SECRET_SEALED_PREFIX "tally-sealed:v1:"
#define TALLY_SECRET_KEY_BYTES 32

typedef struct tally_secret_key {
    unsigned char k[TALLY_SECRET_KEY_BYTES];
} tally_secret_key;

/* Reads the key at path. When the file does not exist and create is 1, it
 * is created with a new random key (*created = 1). 0, or -1 with a message
 * naming the file (missing with create 0, unreadable, malformed). Needs
 * sodium_init() done. */
int tally_secret_key_load(const char *path, int create, tally_secret_key *out, int *created,
                          char *err, size_t cap);

/* Whether stored is in the sealed form. */
int tally_secret_is_sealed(const char *stored);

/* The stored form of plain (malloc'd; "" for ""), or NULL out of memory. */
char *tally_secret_seal(const tally_secret_key *key, const char *plain);

/* The secret stored as `stored` (malloc'd) into *plain: 0, -1 when it cannot
 * be opened with key (3), -2 out of memory. */
int tally_secret_open(const tally_secret_key *key, const char *stored, char **plain);

#endif /* TALLY_SERVER_SECRET_BOX_H */
