/*
 * cmd_webhooks.c — `tally webhooks`: a running server's webhooks and their
 * delivery log, over HTTP (the server's MLflow webhook API and Tally's
 * delivery-log extension, docs/api.md):
 *
 *   tally webhooks list                       webhooks, newest first
 *   tally webhooks deliveries WEBHOOK_ID      deliveries, newest first, with attempts
 *   tally webhooks redeliver WEBHOOK_ID DELIVERY_ID
 *   tally webhooks test WEBHOOK_ID            one synchronous test delivery
 *
 * The server is --url URL or $MLFLOW_TRACKING_URI. Credentials as MLflow's
 * clients take them: $MLFLOW_TRACKING_TOKEN (bearer) or
 * $MLFLOW_TRACKING_USERNAME / $MLFLOW_TRACKING_PASSWORD (basic).
 * Exit codes: 0 done, 1 the server refused or could not be reached, 2 usage.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"

static const char usage[] =
    "usage: tally webhooks COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  list                              webhooks, newest first\n"
    "  deliveries WEBHOOK_ID             a webhook's deliveries, newest first, with attempts\n"
    "  redeliver WEBHOOK_ID DELIVERY_ID  queue a delivery again (new id, fresh timestamp)\n"
    "  test WEBHOOK_ID                   send one test delivery now and print the result\n"
    "\n"
    "options:\n"
    "  --url URL           the server (default $MLFLOW_TRACKING_URI)\n"
    "  --max-results N     page size for list and deliveries (default 100, at most 1000)\n"
    "  --page-token T      the next_page_token printed by a previous page\n"
    "  --json              print the server's JSON answer as it is\n";

typedef struct growbuf {
    char *p;
    size_t n;
} growbuf;

static size_t collect(char *data, size_t size, size_t nmemb, void *ud)
{
    growbuf *b = ud;
    size_t len = size * nmemb;
    char *q = realloc(b->p, b->n + len + 1);
    if (!q)
        return 0;
    memcpy(q + b->n, data, len);
    b->n += len;
    q[b->n] = 0;
    b->p = q;
    return len;
}

/* One request; *out the parsed JSON answer (caller deletes). 0 on a 2xx
 * JSON answer, 1 otherwise (message printed). */
static int call(const char *base, const char *method, const char *path, const char *body,
                cJSON **out, char **raw)
{
    *out = NULL;
    *raw = NULL;
    char url[4096];
    size_t bl = strlen(base);
    if (bl > 1024)
        bl = 1024;
    while (bl && base[bl - 1] == '/')
        bl--;
    snprintf(url, sizeof url, "%.*s%s", (int)bl, base, path);
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "tally webhooks: out of memory\n");
        return 1;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    const char *token = getenv("MLFLOW_TRACKING_TOKEN");
    char auth[1024];
    if (token && *token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    } else if (getenv("MLFLOW_TRACKING_USERNAME") && getenv("MLFLOW_TRACKING_PASSWORD")) {
        curl_easy_setopt(c, CURLOPT_USERNAME, getenv("MLFLOW_TRACKING_USERNAME"));
        curl_easy_setopt(c, CURLOPT_PASSWORD, getenv("MLFLOW_TRACKING_PASSWORD"));
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    }
    growbuf b = {NULL, 0};
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        fprintf(stderr, "tally webhooks: %s: %s\n", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        free(b.p);
        return 1;
    }
    cJSON *j = b.p ? cJSON_Parse(b.p) : NULL;
    if (status < 200 || status > 299 || !cJSON_IsObject(j)) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "error_code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
        if (cJSON_IsString(code) && cJSON_IsString(msg))
            fprintf(stderr, "tally webhooks: HTTP %ld %s: %s\n", status, code->valuestring,
                    msg->valuestring);
        else
            fprintf(stderr, "tally webhooks: HTTP %ld from %s: %.300s\n", status, url,
                    b.p ? b.p : "");
        cJSON_Delete(j);
        free(b.p);
        return 1;
    }
    *out = j;
    *raw = b.p;
    return 0;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static long long num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
}

static const char *fmt_time(long long ms, char *buf, size_t cap)
{
    if (ms <= 0)
        return "-";
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static void print_list(const cJSON *j)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "webhooks");
    printf("%-36s  %-20s  %-8s  %-40s  %s\n", "WEBHOOK_ID", "NAME", "STATUS", "EVENTS", "URL");
    const cJSON *w;
    cJSON_ArrayForEach(w, arr)
    {
        char events[512] = "";
        size_t n = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(w, "events"))
        {
            int k = snprintf(events + n, sizeof events - n, "%s%s.%s", n ? "," : "",
                             str(e, "entity"), str(e, "action"));
            if (k < 0 || (size_t)k >= sizeof events - n)
                break;
            n += (size_t)k;
        }
        for (char *p = events; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        printf("%-36s  %-20s  %-8s  %-40s  %s\n", str(w, "webhook_id"), str(w, "name"),
               str(w, "status"), events, str(w, "url"));
    }
}

static void print_deliveries(const cJSON *j)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "deliveries");
    printf("%-36s  %-28s  %-9s  %8s  %6s  %s\n", "DELIVERY_ID", "EVENT", "STATE", "ATTEMPTS",
           "STATUS", "CREATED");
    const cJSON *d;
    char t1[32];
    cJSON_ArrayForEach(d, arr)
    {
        long long st = num(d, "last_response_status");
        char sts[16] = "-";
        if (st)
            snprintf(sts, sizeof sts, "%lld", st);
        printf("%-36s  %-28s  %-9s  %8lld  %6s  %s\n", str(d, "delivery_id"), str(d, "event"),
               str(d, "state"), num(d, "attempts"), sts,
               fmt_time(num(d, "creation_timestamp"), t1, sizeof t1));
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(d, "attempt_log"))
        {
            long long as = num(a, "response_status");
            const char *err = str(a, "error");
            const char *snip = str(a, "response_snippet");
            char ass[16] = "-";
            if (as)
                snprintf(ass, sizeof ass, "%lld", as);
            printf("    #%lld  %s  %5lldms  %6s  %.100s\n", num(a, "attempt"),
                   fmt_time(num(a, "timestamp"), t1, sizeof t1), num(a, "duration_ms"), ass,
                   *err ? err : snip);
        }
        if (strcmp(str(d, "state"), "PENDING") == 0)
            printf("    next attempt %s\n",
                   fmt_time(num(d, "next_attempt_timestamp"), t1, sizeof t1));
        else if (*str(d, "last_error") && !cJSON_GetArraySize(
                                              cJSON_GetObjectItemCaseSensitive(d, "attempt_log")))
            printf("    %s\n", str(d, "last_error"));
    }
}

/* Percent-encodes s for a path segment or query value. */
static void enc(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~')
            out[n++] = (char)ch;
        else
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", ch);
    }
    out[n] = 0;
}

int cmd_webhooks(int argc, char **argv)
{
    const char *url = getenv("MLFLOW_TRACKING_URI");
    const char *max_results = NULL, *page_token = NULL;
    int json = 0;
    const char *pos[4];
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if ((strcmp(a, "--url") == 0 || strcmp(a, "--max-results") == 0 ||
                    strcmp(a, "--page-token") == 0)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tally webhooks: %s needs a value\n%s", a, usage);
                return 2;
            }
            const char *v = argv[++i];
            if (a[2] == 'u')
                url = v;
            else if (a[2] == 'm')
                max_results = v;
            else
                page_token = v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "tally webhooks: unknown option %s\n%s", a, usage);
            return 2;
        } else if (npos < 4) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "tally webhooks: too many arguments\n%s", usage);
            return 2;
        }
    }
    if (npos == 0) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = pos[0];
    int want = strcmp(cmd, "list") == 0         ? 1
               : strcmp(cmd, "deliveries") == 0 ? 2
               : strcmp(cmd, "test") == 0       ? 2
               : strcmp(cmd, "redeliver") == 0  ? 3
                                                : -1;
    if (want < 0) {
        fprintf(stderr, "tally webhooks: unknown command '%s'\n%s", cmd, usage);
        return 2;
    }
    if (npos != want) {
        fprintf(stderr, "tally webhooks: wrong number of arguments for %s\n%s", cmd, usage);
        return 2;
    }
    if (!url || !*url) {
        fprintf(stderr, "tally webhooks: no server: give --url URL or set MLFLOW_TRACKING_URI\n");
        return 2;
    }
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        fprintf(stderr, "tally webhooks: the server URL must start with http:// or https://\n");
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "tally webhooks: cannot initialise libcurl\n");
        return 1;
    }
    char path[2048], id1[300] = "", id2[300] = "", q1[64] = "", q2[600] = "";
    if (npos > 1)
        enc(pos[1], id1, sizeof id1);
    if (npos > 2)
        enc(pos[2], id2, sizeof id2);
    if (max_results)
        enc(max_results, q1, sizeof q1);
    if (page_token)
        enc(page_token, q2, sizeof q2);
    char query[800];
    snprintf(query, sizeof query, "%s%s%s%s%s%s", (max_results || page_token) ? "?" : "",
             max_results ? "max_results=" : "", q1, max_results && page_token ? "&" : "",
             page_token ? "page_token=" : "", q2);
    const char *method = "GET", *body = NULL;
    if (want == 1) {
        snprintf(path, sizeof path, "/api/2.0/mlflow/webhooks%s", query);
    } else if (strcmp(cmd, "deliveries") == 0) {
        snprintf(path, sizeof path, "/api/2.0/mlflow/webhooks/%s/deliveries%s", id1, query);
    } else if (strcmp(cmd, "test") == 0) {
        snprintf(path, sizeof path, "/api/2.0/mlflow/webhooks/%s/test", id1);
        method = "POST";
        body = "{}";
    } else {
        snprintf(path, sizeof path, "/api/2.0/mlflow/webhooks/%s/deliveries/%s/redeliver", id1,
                 id2);
        method = "POST";
        body = "{}";
    }
    cJSON *j;
    char *raw;
    int rc = call(url, method, path, body, &j, &raw);
    if (rc == 0) {
        if (json) {
            printf("%s\n", raw);
        } else if (want == 1) {
            print_list(j);
        } else if (strcmp(cmd, "deliveries") == 0) {
            print_deliveries(j);
        } else if (strcmp(cmd, "test") == 0) {
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "result");
            const cJSON *ok = cJSON_GetObjectItemCaseSensitive(r, "success");
            printf("success: %s\n", cJSON_IsTrue(ok) ? "yes" : "no");
            if (num(r, "response_status"))
                printf("response status: %lld\nresponse body: %.2000s\n",
                       num(r, "response_status"), str(r, "response_body"));
            if (*str(r, "error_message"))
                printf("error: %s\n", str(r, "error_message"));
            rc = cJSON_IsTrue(ok) ? 0 : 1;
        } else {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "delivery");
            printf("queued delivery %s (%s)\n", str(d, "delivery_id"), str(d, "event"));
        }
        const char *next = str(j, "next_page_token");
        if (!json && *next)
            printf("next page: --page-token %s\n", next);
    }
    cJSON_Delete(j);
    free(raw);
    curl_global_cleanup();
    return rc;
}
