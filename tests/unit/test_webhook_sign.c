/*
 * test_webhook_sign.c — the pure parts of webhook delivery (webhooks.h):
 * the signature against mlflow-webhooks.md §6's test vector, the body
 * layout, uuid4 ids, the backoff schedule, retryable statuses, Retry-After
 * parsing, URL scheme checks and the table of the 14 valid events.
 */
#include <time.h>

#include "test.h"
#include "webhooks.h"

static void test_signature_vector(void)
{
    const char *body = "{\"entity\": \"model_version_alias\", \"action\": \"deleted\", "
                       "\"timestamp\": \"2025-07-31T08:27:32.080217+00:00\", \"data\": "
                       "{\"name\": \"m\", \"alias\": \"prod\"}}";
    char sig[TALLY_WEBHOOK_SIGNATURE_CAP];
    ASSERT_OK(tally_webhook_sign("s3cret", "2b9b5f2e-8f43-4c52-9a38-1f0c3d6e7a10", 1753950452,
                                 body, strlen(body), sig));
    ASSERT_STR_EQ(sig, "v1,HU7fdUQc4gTkYWh0lECJTv3gtxpRBRZ1Hx6MiOkOXN8=");
    ASSERT_EQ(strlen(sig), 47);
    /* Any change to a signed part changes the signature. */
    char other[TALLY_WEBHOOK_SIGNATURE_CAP];
    ASSERT_OK(tally_webhook_sign("s3cret", "2b9b5f2e-8f43-4c52-9a38-1f0c3d6e7a10", 1753950453,
                                 body, strlen(body), other));
    ASSERT(strcmp(sig, other) != 0);
    ASSERT_OK(tally_webhook_sign("s3creT", "2b9b5f2e-8f43-4c52-9a38-1f0c3d6e7a10", 1753950452,
                                 body, strlen(body), other));
    ASSERT(strcmp(sig, other) != 0);
    /* A key longer than SHA-256's block (64 bytes) works as HMAC says. */
    char longkey[200];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    ASSERT_OK(tally_webhook_sign(longkey, "id", 1, "", 0, other));
    ASSERT_EQ(strlen(other), 47);
}

static void test_body_layout(void)
{
    tally_buf b = {0};
    /* 2025-07-31T08:27:32.080217Z */
    tally_webhook_body(&b, "model_version_alias", "deleted", 1753950452080217LL,
                       "{\"name\": \"m\", \"alias\": \"prod\"}");
    ASSERT_STR_EQ(b.data, "{\"entity\": \"model_version_alias\", \"action\": \"deleted\", "
                          "\"timestamp\": \"2025-07-31T08:27:32.080217+00:00\", \"data\": "
                          "{\"name\": \"m\", \"alias\": \"prod\"}}");
    /* Python's isoformat drops a zero fraction. */
    tally_buf_reset(&b);
    tally_webhook_body(&b, "prompt", "created", 1753950452000000LL, "{}");
    ASSERT_STR_EQ(b.data, "{\"entity\": \"prompt\", \"action\": \"created\", "
                          "\"timestamp\": \"2025-07-31T08:27:32+00:00\", \"data\": {}}");
    tally_buf_free(&b);
}

static void test_uuid4(void)
{
    char a[TALLY_WEBHOOK_ID_LEN + 1], b[TALLY_WEBHOOK_ID_LEN + 1];
    tally_webhook_uuid4(a);
    tally_webhook_uuid4(b);
    ASSERT_EQ(strlen(a), 36);
    ASSERT(strcmp(a, b) != 0);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            ASSERT_EQ(a[i], '-');
        else
            ASSERT(strchr("0123456789abcdef", a[i]) != NULL);
    }
    ASSERT_EQ(a[14], '4');
    ASSERT(strchr("89ab", a[19]) != NULL);
}

static void test_backoff_schedule(void)
{
    tally_webhook_policy p;
    tally_webhook_policy_defaults(&p);
    ASSERT_EQ(p.max_attempts, 4);
    ASSERT_EQ(p.timeout_ms, 30000);
    /* urllib3 >= 2 with backoff_factor 1: no wait before the first retry,
     * then 2 s, 4 s, 8 s, ... plus up to 1 s of jitter, capped at 60 s. */
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 1, 0.0), 0);
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 1, 0.9), 0);
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 2, 0.0), 2000);
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 3, 0.0), 4000);
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 4, 0.0), 8000);
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 5, 0.0), 16000);
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 6, 0.0), 32000);
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 7, 0.0), 60000);
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 1000, 0.0), 60000);
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 2, 0.5), 2500);
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 6, 0.999), 32999);
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 7, 0.999), 60000);
    /* Jitter stays within [0, jitter). */
    for (int i = 0; i < 100; i++) {
        uint64_t v = tally_webhook_backoff_ms(&p, 3, i / 100.0);
        ASSERT(v >= 4000 && v < 5000);
    }
    /* Scaled policy (what the integration tests use). */
    p.backoff_base_ms = 50;
    p.jitter_ms = 0;
    p.backoff_cap_ms = 150;
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 2, 0.7), 100);
    ASSERT_U64_EQ(tally_webhook_backoff_ms(&p, 3, 0.7), 150);
}

static void test_retry_rules(void)
{
    int retry[] = {429, 500, 502, 503, 504};
    for (size_t i = 0; i < sizeof retry / sizeof retry[0]; i++)
        ASSERT(tally_webhook_retryable_status(retry[i]));
    int final[] = {200, 201, 204, 301, 400, 401, 403, 404, 408, 413, 501, 505};
    for (size_t i = 0; i < sizeof final / sizeof final[0]; i++)
        ASSERT(!tally_webhook_retryable_status(final[i]));

    int64_t d = -1;
    ASSERT_OK(tally_webhook_parse_retry_after("5", 0, &d));
    ASSERT_EQ(d, 5000);
    ASSERT_OK(tally_webhook_parse_retry_after(" 0\r\n", 0, &d));
    ASSERT_EQ(d, 0);
    /* HTTP date: Wed, 21 Oct 2015 07:28:00 GMT = 1445412480. */
    ASSERT_OK(tally_webhook_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470, &d));
    ASSERT_EQ(d, 10000);
    ASSERT_OK(tally_webhook_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490, &d));
    ASSERT_EQ(d, 0); /* in the past: now */
    /* A far date must not overflow (found by fuzz_webhook_headers). */
    d = -1;
    if (tally_webhook_parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 0, &d) == 0)
        ASSERT_GT(d, 0);
    ASSERT_EQ(tally_webhook_parse_retry_after("soon", 0, &d), -1);
    ASSERT_EQ(tally_webhook_parse_retry_after("", 0, &d), -1);
    ASSERT_EQ(tally_webhook_parse_retry_after("-3", 0, &d), -1);
    ASSERT_EQ(tally_webhook_parse_retry_after("99999999999999999999", 0, &d), -1);
}

static void test_schemes(void)
{
    ASSERT(tally_webhook_scheme_allowed("https", "https://example.com/hook"));
    ASSERT(tally_webhook_scheme_allowed("https", "HTTPS://example.com/hook"));
    ASSERT(!tally_webhook_scheme_allowed("https", "http://example.com/hook"));
    ASSERT(tally_webhook_scheme_allowed("http,https", "http://127.0.0.1:1/"));
    ASSERT(tally_webhook_scheme_allowed("http, https", "https://x"));
    ASSERT(!tally_webhook_scheme_allowed("http,https", "ftp://x"));
    ASSERT(!tally_webhook_scheme_allowed("https", "example.com/hook"));
    ASSERT(!tally_webhook_scheme_allowed("https", "://x"));
    ASSERT(!tally_webhook_scheme_allowed("https", ""));
    ASSERT(!tally_webhook_scheme_allowed("https,", "h://x"));
}

static void test_events_table(void)
{
    int n = 0;
    for (int e = 0; e < 10; e++)
        for (int a = 0; a < 5; a++)
            if (tally_webhook_event_valid(tally_webhook_entities[e], tally_webhook_actions[a])) {
                n++;
                ASSERT(strcmp(tally_webhook_actions[a], "updated") != 0);
                ASSERT(strcmp(tally_webhook_example_data(tally_webhook_entities[e],
                                                         tally_webhook_actions[a]),
                              "{}") != 0);
            }
    ASSERT_EQ(n, 14);
    ASSERT(!tally_webhook_event_valid("registered_model", "deleted"));
    ASSERT_STR_EQ(tally_webhook_valid_actions("registered_model"), "['created']");
    ASSERT_STR_EQ(tally_webhook_valid_actions("prompt_alias"), "['created', 'deleted']");
}

int main(void)
{
    TEST_RUN(test_signature_vector);
    TEST_RUN(test_body_layout);
    TEST_RUN(test_uuid4);
    TEST_RUN(test_backoff_schedule);
    TEST_RUN(test_retry_rules);
    TEST_RUN(test_schemes);
    TEST_RUN(test_events_table);
    return TEST_DONE();
}
