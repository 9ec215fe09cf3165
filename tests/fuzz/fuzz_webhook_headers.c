/*
 * fuzz_webhook_headers.c — libFuzzer target for what webhook delivery reads
 * from untrusted bytes (server/webhook_http.c): a receiver's Retry-After
 * header value and a webhook URL's scheme.
 *
 *   Retry-After   the input (up to the first NUL) as the header value, with
 *                 "now" carved from its first 4 bytes: parsing never
 *                 crashes, and a parsed delay is never negative; a value of
 *                 only digits parses to exactly that many seconds.
 *   scheme        the input split at its first '\n' into an allowed-schemes
 *                 list and a URL: the check never crashes, and a URL whose
 *                 scheme is allowed has a ':' after a letter-led scheme.
 *
 * Seeds: tests/fuzz/corpus/fuzz_webhook_headers/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webhooks.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond))                                                                          \
            abort();                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;

    int64_t now = 0;
    for (size_t i = 0; i < 4 && i < size; i++)
        now = now << 8 | data[i];
    int64_t d = -1;
    if (tally_webhook_parse_retry_after(s, now, &d) == 0) {
        CHECK(d >= 0);
        size_t len = strlen(s);
        if (len > 0 && len <= 12 && strspn(s, "0123456789") == len)
            CHECK(d == strtoll(s, NULL, 10) * 1000);
    }

    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = 0;
        const char *url = nl + 1;
        if (tally_webhook_scheme_allowed(s, url)) {
            const char *colon = strchr(url, ':');
            CHECK(colon && colon > url);
            CHECK((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z'));
        }
    }
    free(s);
    return 0;
}
