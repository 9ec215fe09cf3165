/*
 * secret_box.c — webhook secrets sealed at rest (secret_box.h): the key file
 * and crypto_secretbox over base64.
 */
#include "secret_box.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define PREFIX_LEN (sizeof TALLY_SECRET_SEALED_PREFIX - 1)
#define KEY_HEX (2 * TALLY_SECRET_KEY_BYTES)
#define B64 sodium_base64_VARIANT_ORIGINAL

/* fsync of the directory holding path, so a new file's name is durable. */
static int sync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int create_key(const char *path, tally_secret_key *out, char *err, size_t cap)
{
    randombytes_buf(out->k, sizeof out->k);
    char hex[KEY_HEX + 2];
    sodium_bin2hex(hex, sizeof hex, out->k, sizeof out->k);
    hex[KEY_HEX] = '\n';
    hex[KEY_HEX + 1] = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, cap, "cannot create the webhook secret key %s: %s", path, strerror(errno));
        return -1;
    }
    ssize_t w = write(fd, hex, KEY_HEX + 1);
    int ok = w == KEY_HEX + 1 && fsync(fd) == 0;
    int e = errno;
    close(fd);
    if (!ok || sync_parent(path) != 0) {
        unlink(path);
        snprintf(err, cap, "cannot write the webhook secret key %s: %s", path,
                 strerror(ok ? errno : e));
        return -1;
    }
    return 0;
}

int tally_secret_key_load(const char *path, int create, tally_secret_key *out, int *created,
                          char *err, size_t cap)
{
    *created = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        if (create_key(path, out, err, cap) != 0)
            return -1;
        *created = 1;
        return 0;
    }
    if (fd < 0) {
        snprintf(err, cap, "cannot open the webhook secret key %s: %s", path, strerror(errno));
        return -1;
    }
    char text[KEY_HEX + 8];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    size_t got = 0;
    const char *end = NULL;
    if (n >= KEY_HEX) {
        text[n] = 0;
        if (sodium_hex2bin(out->k, sizeof out->k, text, (size_t)n, "\n", &got, &end) != 0)
            got = 0;
    }
    if (got != sizeof out->k || (end && *end && *end != '\n')) {
        sodium_memzero(out->k, sizeof out->k);
        snprintf(err, cap, "the webhook secret key %s is malformed (want %d hex digits)", path,
                 KEY_HEX);
        return -1;
    }
    return 0;
}

int tally_secret_is_sealed(const char *stored)
{
    return stored && strncmp(stored, TALLY_SECRET_SEALED_PREFIX, PREFIX_LEN) == 0;
}

char *tally_secret_seal(const tally_secret_key *key, const char *plain)
{
    size_t n = strlen(plain);
    if (n == 0)
        return strdup(""); /* (1) */
    size_t raw_len = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + n;
    unsigned char *raw = malloc(raw_len);
    size_t b64_len = sodium_base64_ENCODED_LEN(raw_len, B64);
    char *out = malloc(PREFIX_LEN + b64_len);
    if (!raw || !out) {
        free(raw);
        free(out);
        return NULL;
    }
    randombytes_buf(raw, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(raw + crypto_secretbox_NONCEBYTES, (const unsigned char *)plain, n,
                          raw, key->k);
    memcpy(out, TALLY_SECRET_SEALED_PREFIX, PREFIX_LEN);
    sodium_bin2base64(out + PREFIX_LEN, b64_len, raw, raw_len, B64);
    free(raw);
    return out;
}

int tally_secret_open(const tally_secret_key *key, const char *stored, char **plain)
{
    *plain = NULL;
    if (!tally_secret_is_sealed(stored)) { /* (2) */
        *plain = strdup(stored ? stored : "");
        return *plain ? 0 : -2;
    }
    const char *b64 = stored + PREFIX_LEN;
    size_t b64_len = strlen(b64), raw_cap = b64_len / 4 * 3 + 3, raw_len = 0;
    unsigned char *raw = malloc(raw_cap);
    if (!raw)
        return -2;
    const char *end = NULL;
    if (sodium_base642bin(raw, raw_cap, b64, b64_len, NULL, &raw_len, &end, B64) != 0 ||
        (end && *end) ||
        raw_len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
        free(raw);
        return -1;
    }
    size_t n = raw_len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    char *out = malloc(n + 1);
    if (!out) {
        free(raw);
        return -2;
    }
    int rc = crypto_secretbox_open_easy((unsigned char *)out, raw + crypto_secretbox_NONCEBYTES,
                                        raw_len - crypto_secretbox_NONCEBYTES, raw, key->k);
    free(raw);
    if (rc != 0) { /* (3) */
        free(out);
        return -1;
    }
    out[n] = 0;
    *plain = out;
    return 0;
}
