/*
 * webhook_http.c — one delivery attempt over HTTP with libcurl, and the
 * retry policy around it (webhooks.h): which outcomes are retried, the
 * backoff schedule, Retry-After, and the policy's environment variables.
 *
 * Timeouts per attempt (policy.timeout_ms, MLflow's 30 s): connecting may
 * take timeout_ms; once connected, a receiver silent for timeout_ms (rounded
 * up to whole seconds: curl's low-speed check) is a read timeout; the whole
 * attempt is capped at 2 x timeout_ms so a receiver trickling bytes cannot
 * hold a worker forever.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "webhooks.h"

/* ------------------------------------------------------------------------ */
/* Policy                                                                    */
/* ------------------------------------------------------------------------ */

void tally_webhook_policy_defaults(tally_webhook_policy *p)
{
    memset(p, 0, sizeof *p);
    p->workers = 10;
    p->max_attempts = 4;
    p->timeout_ms = 30000;
    p->backoff_base_ms = 1000;
    p->backoff_cap_ms = 60000;
    p->jitter_ms = 1000;
    p->retry_after_cap_ms = 3600000;
    p->batch = 4;
    p->log_keep = 1000;
    snprintf(p->allowed_schemes, sizeof p->allowed_schemes, "https");
}

/* An unsigned env value in [lo, hi], scaled by mul (seconds -> ms accepts a
 * decimal fraction). 0 absent/ok, -1 malformed. */
static int env_uint(const char *name, double mul, double lo, double hi, unsigned *out, char *err,
                    size_t cap)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || d < lo || d > hi || (mul == 1 && d != (double)(long)d)) {
        snprintf(err, cap, "%s=%.64s: expected a number from %g to %g", name, v, lo, hi);
        return -1;
    }
    *out = (unsigned)(d * mul + 0.5);
    return 0;
}

int tally_webhook_policy_from_env(tally_webhook_policy *p, char *err, size_t cap)
{
    tally_webhook_policy_defaults(p);
    unsigned retries = p->max_attempts - 1;
    if (env_uint("MLFLOW_WEBHOOK_DELIVERY_MAX_WORKERS", 1, 1, 256, &p->workers, err, cap) ||
        env_uint("MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES", 1, 0, 100, &retries, err, cap) ||
        env_uint("MLFLOW_WEBHOOK_REQUEST_TIMEOUT", 1000, 0.001, 3600, &p->timeout_ms, err, cap) ||
        env_uint("TALLY_WEBHOOK_BACKOFF_BASE_MS", 1, 0, 86400000, &p->backoff_base_ms, err, cap) ||
        env_uint("TALLY_WEBHOOK_BACKOFF_CAP_MS", 1, 0, 86400000, &p->backoff_cap_ms, err, cap) ||
        env_uint("TALLY_WEBHOOK_BACKOFF_JITTER_MS", 1, 0, 3600000, &p->jitter_ms, err, cap) ||
        env_uint("TALLY_WEBHOOK_RETRY_AFTER_CAP_MS", 1, 0, 86400000, &p->retry_after_cap_ms, err,
                 cap) ||
        env_uint("TALLY_WEBHOOK_BATCH", 1, 1, 64, &p->batch, err, cap) ||
        env_uint("TALLY_WEBHOOK_LOG_KEEP", 1, 0, 100000000, &p->log_keep, err, cap))
        return -1;
    p->max_attempts = retries + 1;
    const char *s = getenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES");
    if (s && *s) {
        if (strlen(s) >= sizeof p->allowed_schemes) {
            snprintf(err, cap, "MLFLOW_WEBHOOK_ALLOWED_SCHEMES is too long");
            return -1;
        }
        snprintf(p->allowed_schemes, sizeof p->allowed_schemes, "%s", s);
    }
    return 0;
}

int tally_webhook_scheme_allowed(const char *allowed, const char *url)
{
    /* urlparse: a scheme is a letter then letters, digits, '+', '-', '.',
     * before the first ':'; lower-cased. */
    char scheme[32];
    size_t n = 0;
    if (!isalpha((unsigned char)url[0]))
        return 0;
    while (url[n] && url[n] != ':') {
        unsigned char ch = (unsigned char)url[n];
        if (!(isalnum(ch) || ch == '+' || ch == '-' || ch == '.') || n + 1 >= sizeof scheme)
            return 0;
        scheme[n] = (char)tolower(ch);
        n++;
    }
    if (url[n] != ':')
        return 0;
    scheme[n] = 0;
    const char *p = allowed;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t len = strcspn(p, ", ");
        if (len == n && strncasecmp(p, scheme, n) == 0)
            return 1;
        p += len;
    }
    return 0;
}

uint64_t tally_webhook_backoff_ms(const tally_webhook_policy *p, unsigned retry, double jitter01)
{
    if (retry <= 1)
        return 0;
    double v = (double)p->backoff_base_ms;
    for (unsigned i = 1; i < retry - 1 && v < 1e12; i++)
        v *= 2;
    v *= 2; /* base x 2^(retry-1) */
    if (jitter01 < 0)
        jitter01 = 0;
    if (jitter01 >= 1)
        jitter01 = 0.999999;
    v += jitter01 * p->jitter_ms;
    if (v > p->backoff_cap_ms)
        v = p->backoff_cap_ms;
    return (uint64_t)v;
}

int tally_webhook_retryable_status(int status)
{
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

int tally_webhook_parse_retry_after(const char *value, int64_t now_s, int64_t *delay_ms)
{
    while (*value == ' ' || *value == '\t')
        value++;
    size_t len = strlen(value);
    while (len && (value[len - 1] == ' ' || value[len - 1] == '\t' || value[len - 1] == '\r' ||
                   value[len - 1] == '\n'))
        len--;
    if (len == 0 || len > 64)
        return -1;
    char v[72];
    memcpy(v, value, len);
    v[len] = 0;
    if (strspn(v, "0123456789") == len) {
        if (len > 12)
            return -1;
        *delay_ms = strtoll(v, NULL, 10) * 1000;
        return 0;
    }
    time_t when = curl_getdate(v, NULL);
    if (when == (time_t)-1)
        return -1;
    /* Compare before subtracting: a far date must not overflow. */
    int64_t w = (int64_t)when;
    if (w <= now_s)
        *delay_ms = 0;
    else if (w - now_s > INT64_MAX / 1000 / 2)
        *delay_ms = INT64_MAX / 2;
    else
        *delay_ms = (w - now_s) * 1000;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* One attempt                                                               */
/* ------------------------------------------------------------------------ */

typedef struct xfer {
    tally_webhook_attempt_result *r;
    size_t body_cap;
    const volatile int *stop;
    char retry_after[72];        /* of the last response's headers */
} xfer;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    size_t room = x->body_cap > x->r->body.len ? x->body_cap - x->r->body.len : 0;
    if (room)
        tally_buf_append(&x->r->body, p, len < room ? len : room);
    return len; /* the rest is read and dropped */
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        x->retry_after[0] = 0; /* a new response (after a redirect) */
        tally_buf_reset(&x->r->body);
    } else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        size_t vlen = len - 12;
        if (vlen >= sizeof x->retry_after)
            vlen = sizeof x->retry_after - 1;
        memcpy(x->retry_after, p + 12, vlen);
        x->retry_after[vlen] = 0;
    }
    return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    xfer *x = ud;
    return x->stop && __atomic_load_n(x->stop, __ATOMIC_ACQUIRE) ? 1 : 0;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A tally_webhook_client is a libcurl easy handle: reset between attempts,
 * it keeps its connection cache. */
void tally_webhook_client_free(tally_webhook_client *c)
{
    if (c)
        curl_easy_cleanup((CURL *)c);
}

void tally_webhook_attempt(const tally_webhook_policy *p, const char *url, const char *secret,
                           const char *delivery_id, int64_t timestamp_s, const char *body,
                           size_t body_cap, const volatile int *stop,
                           tally_webhook_client **client, tally_webhook_attempt_result *r)
{
    memset(r, 0, sizeof *r);
    r->retry_after_ms = -1;
    r->started_ms = wall_ms();
    int64_t t0 = mono_ms();
    xfer x = {r, body_cap, stop, ""};
    CURL *c = client && *client ? (CURL *)*client : curl_easy_init();
    if (client && *client)
        curl_easy_reset(c);
    else if (client)
        *client = (tally_webhook_client *)c;
    struct curl_slist *h = NULL;
    char line[160], sig[TALLY_WEBHOOK_SIGNATURE_CAP], errbuf[CURL_ERROR_SIZE] = "";
    if (!c) {
        snprintf(r->error, sizeof r->error, "cannot create an HTTP client (out of memory)");
        r->retryable = 1;
        goto out;
    }
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    snprintf(line, sizeof line, "X-MLflow-Delivery-Id: %s", delivery_id);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "X-MLflow-Timestamp: %lld", (long long)timestamp_s);
    h = curl_slist_append(h, line);
    if (secret && *secret) {
        if (tally_webhook_sign(secret, delivery_id, timestamp_s, body, strlen(body), sig) != 0) {
            snprintf(r->error, sizeof r->error, "cannot sign the delivery (libsodium)");
            r->retryable = 1;
            goto out;
        }
        snprintf(line, sizeof line, "X-MLflow-Signature: %s", sig);
        h = curl_slist_append(h, line);
    }
    if (!h) {
        snprintf(r->error, sizeof r->error, "out of memory");
        r->retryable = 1;
        goto out;
    }
    long timeout_s = (long)((p->timeout_ms + 999) / 1000);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tally-webhooks/1");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, timeout_s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2L * (long)p->timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        r->status = (int)status;
        r->retryable = tally_webhook_retryable_status(r->status);
        int64_t d;
        if ((status == 413 || status == 429 || status == 503) && x.retry_after[0] &&
            tally_webhook_parse_retry_after(x.retry_after, r->started_ms / 1000, &d) == 0)
            r->retry_after_ms = d;
    } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
        r->aborted = 1;
        snprintf(r->error, sizeof r->error, "aborted: the server is stopping");
    } else {
        const char *kind = rc == CURLE_OPERATION_TIMEDOUT ? "timeout"
                           : rc == CURLE_COULDNT_CONNECT  ? "connection refused or unreachable"
                                                          : "transport error";
        snprintf(r->error, sizeof r->error, "%s: %.200s", kind,
                 errbuf[0] ? errbuf : curl_easy_strerror(rc));
        r->retryable = rc != CURLE_UNSUPPORTED_PROTOCOL && rc != CURLE_URL_MALFORMAT;
        tally_buf_reset(&r->body);
    }
out:
    curl_slist_free_all(h);
    if (c && !client)
        curl_easy_cleanup(c);
    r->duration_ms = mono_ms() - t0;
}
