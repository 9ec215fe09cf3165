/*
 * test_secret_box.c — webhook secrets sealed at rest (server/secret_box.h):
 * round trips, fresh nonces, wrong keys and damage refused, plain text
 * stored before sealing read as itself, and the key file (created 0600,
 * read back, refused when missing or malformed).
 */
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret_box.h"
#include "test.h"

static char dir[512], path[600];

static void write_file(const char *p, const char *text)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_key_file(void)
{
    test_tmpdir(dir, sizeof dir, "secret-key");
    snprintf(path, sizeof path, "%s/webhook-secret.key", dir);
    tally_secret_key k1, k2;
    int created = -1;
    char err[512] = "";
    /* Missing, not to be created: an error naming the file. */
    ASSERT_EQ(tally_secret_key_load(path, 0, &k1, &created, err, sizeof err), -1);
    ASSERT(strstr(err, path) != NULL);
    ASSERT_OK(tally_secret_key_load(path, 1, &k1, &created, err, sizeof err));
    ASSERT_EQ(created, 1);
    struct stat st;
    ASSERT_OK(stat(path, &st));
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_EQ(st.st_size, 65);
    /* Read back: the same key, not created again. */
    ASSERT_OK(tally_secret_key_load(path, 1, &k2, &created, err, sizeof err));
    ASSERT_EQ(created, 0);
    ASSERT_EQ(memcmp(k1.k, k2.k, sizeof k1.k), 0);
    /* Malformed: short, not hex, trailing junk. */
    static const char *const bad[] = {
        "00112233\n",
        "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff extra\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i]);
        ASSERT_EQ(tally_secret_key_load(path, 1, &k2, &created, err, sizeof err), -1);
        ASSERT(strstr(err, "malformed") != NULL);
    }
    write_file(path, "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\n");
    ASSERT_OK(tally_secret_key_load(path, 0, &k2, &created, err, sizeof err));
    ASSERT_EQ(k2.k[0], 0x00);
    ASSERT_EQ(k2.k[10], 0xAA);
    ASSERT_EQ(k2.k[31], 0xFF);
    test_rmdir(dir);
}

static void test_seal_open(void)
{
    tally_secret_key k, other;
    randombytes_buf(k.k, sizeof k.k);
    randombytes_buf(other.k, sizeof other.k);
    const char *secrets[] = {"s3cret", "x", "a secret with spaces, UTF-8 \xc3\xa9 and \"quotes\"",
                             "0123456789012345678901234567890123456789012345678901234567890123456789"};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        char *a = tally_secret_seal(&k, secrets[i]), *b = tally_secret_seal(&k, secrets[i]);
        ASSERT(a && b);
        ASSERT(tally_secret_is_sealed(a));
        ASSERT(strlen(secrets[i]) < 4 || strstr(a, secrets[i]) == NULL); /* not in clear */
        ASSERT(strcmp(a, b) != 0); /* a fresh nonce each time */
        char *plain = NULL;
        ASSERT_OK(tally_secret_open(&k, a, &plain));
        ASSERT_STR_EQ(plain, secrets[i]);
        free(plain);
        /* Another key, or any damage: refused, never a wrong secret. */
        ASSERT_EQ(tally_secret_open(&other, a, &plain), -1);
        ASSERT(plain == NULL);
        size_t n = strlen(a);
        for (size_t at = sizeof TALLY_SECRET_SEALED_PREFIX - 1; at < n; at += 7) {
            char saved = a[at];
            a[at] = saved == 'A' ? 'B' : 'A';
            ASSERT_EQ(tally_secret_open(&k, a, &plain), -1);
            a[at] = saved;
        }
        a[n - 3] = 0; /* truncated */
        ASSERT_EQ(tally_secret_open(&k, a, &plain), -1);
        free(a);
        free(b);
    }
    /* "" is never sealed; plain text from before sealing reads as itself. */
    char *empty = tally_secret_seal(&k, "");
    ASSERT_STR_EQ(empty, "");
    free(empty);
    char *plain = NULL;
    ASSERT_OK(tally_secret_open(&k, "legacy-secret", &plain));
    ASSERT_STR_EQ(plain, "legacy-secret");
    free(plain);
    ASSERT_OK(tally_secret_open(&k, "", &plain));
    ASSERT_STR_EQ(plain, "");
    free(plain);
    ASSERT_EQ(tally_secret_open(&k, TALLY_SECRET_SEALED_PREFIX, &plain), -1);
    ASSERT_EQ(tally_secret_open(&k, TALLY_SECRET_SEALED_PREFIX "not base64!", &plain), -1);
    ASSERT(!tally_secret_is_sealed("tally-sealed:v2:x"));
    ASSERT(!tally_secret_is_sealed(NULL));
}

int main(void)
{
    ASSERT(sodium_init() >= 0);
    TEST_RUN(test_key_file);
    TEST_RUN(test_seal_open);
    return TEST_DONE();
}
