/*
 * webhook_sign.c — the bytes of an outgoing delivery: MLflow's body layout,
 * its HMAC-SHA256 signature and the uuid4 delivery ids
 * (mlflow-webhooks.md §6), with libsodium.
 *
 * The signature covers exactly the bytes sent: callers sign the body they
 * POST, never a re-serialisation of it.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "webhooks.h"

static int sodium_ready(void)
{
    /* sodium_init is thread-safe and idempotent (0 first time, 1 after). */
    return sodium_init() >= 0 ? 0 : -1;
}

int tally_webhook_sign(const char *secret, const char *delivery_id, int64_t timestamp_s,
                       const char *body, size_t body_len, char out[TALLY_WEBHOOK_SIGNATURE_CAP])
{
    out[0] = 0;
    if (sodium_ready() != 0)
        return -1;
    char ts[32];
    int ts_len = snprintf(ts, sizeof ts, "%lld", (long long)timestamp_s);
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    /* The key is the secret's UTF-8 bytes, any length (libsodium hashes keys
     * longer than the block size, as RFC 2104 says). */
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)delivery_id, strlen(delivery_id));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (unsigned long long)ts_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, "v1,", 3);
    sodium_bin2base64(out + 3, TALLY_WEBHOOK_SIGNATURE_CAP - 3, mac, sizeof mac,
                      sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(&st, sizeof st);
    return 0;
}

void tally_webhook_uuid4(char out[TALLY_WEBHOOK_ID_LEN + 1])
{
    unsigned char b[16];
    if (sodium_ready() == 0) {
        randombytes_buf(b, sizeof b);
    } else {
        /* libsodium failed to initialise (no entropy source): the ids only
         * need to be unique, not secret. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        static unsigned long counter;
        unsigned long n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        memcpy(b, &ts, sizeof b < sizeof ts ? sizeof b : sizeof ts);
        memcpy(b + 8, &n, sizeof n < 8 ? sizeof n : 8);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, TALLY_WEBHOOK_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

void tally_webhook_body(tally_buf *b, const char *entity, const char *action, int64_t time_us,
                        const char *data_json)
{
    time_t secs = (time_t)(time_us / 1000000);
    long frac = (long)(time_us % 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char ts[64];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac)
        snprintf(ts + n, sizeof ts - n, ".%06ld+00:00", frac);
    else
        snprintf(ts + n, sizeof ts - n, "+00:00");
    /* entity and action are fixed lower-case identifiers (validated), so
     * they need no escaping. */
    tally_buf_printf(b, "{\"entity\": \"%s\", \"action\": \"%s\", \"timestamp\": \"%s\", "
                        "\"data\": %s}",
                     entity, action, ts, data_json && *data_json ? data_json : "{}");
}
