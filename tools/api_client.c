/*
 * api_client.c — the blocking HTTP/1.1 client of api_client.h. One request
 * per connection (Connection: close): the commands make a handful of calls,
 * so simplicity beats keep-alive. The response body is read to EOF (or
 * Content-Length) and capped at 64 MiB.
 */
#ifdef TALLY_HAVE_SERVER
#include "api_client.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <netdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY ((size_t)64 << 20)

static int set_url(tally_client *c, const char *url, const char *cmd)
{
    if (strncasecmp(url, "https://", 8) == 0) {
        fprintf(stderr, "tally %s: %s: this command speaks plain HTTP only; use a loopback "
                        "http:// listener or curl for a TLS-only server\n", cmd, url);
        return -1;
    }
    const char *p = url;
    if (strncasecmp(p, "http://", 7) == 0)
        p += 7;
    const char *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    char hostport[300];
    if (hl == 0 || hl >= sizeof hostport) {
        fprintf(stderr, "tally %s: bad server URL '%s'\n", cmd, url);
        return -1;
    }
    memcpy(hostport, p, hl);
    hostport[hl] = 0;
    char *colon = hostport[0] == '[' ? strstr(hostport, "]:") : strrchr(hostport, ':');
    if (hostport[0] == '[') {
        char *end = strchr(hostport, ']');
        if (!end) {
            fprintf(stderr, "tally %s: bad server URL '%s'\n", cmd, url);
            return -1;
        }
        *end = 0;
        snprintf(c->host, sizeof c->host, "%.250s", hostport + 1);
        snprintf(c->port, sizeof c->port, "%s", colon ? colon + 2 : "80");
    } else {
        if (colon)
            *colon = 0;
        snprintf(c->host, sizeof c->host, "%.250s", hostport);
        snprintf(c->port, sizeof c->port, "%s", colon ? colon + 1 : "80");
    }
    snprintf(c->prefix, sizeof c->prefix, "%s", slash ? slash : "");
    size_t pl = strlen(c->prefix);
    while (pl && c->prefix[pl - 1] == '/')
        c->prefix[--pl] = 0;
    return 0;
}

static void set_basic(tally_client *c, const char *user, const char *password)
{
    char raw[1400];
    int n = snprintf(raw, sizeof raw, "%s:%s", user, password ? password : "");
    if (n < 0 || (size_t)n >= sizeof raw)
        n = (int)sizeof raw - 1;
    memcpy(c->authorization, "Basic ", 6);
    sodium_bin2base64(c->authorization + 6, sizeof c->authorization - 6, (unsigned char *)raw,
                      (size_t)n, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(raw, sizeof raw);
}

int tally_client_init(tally_client *c, int argc, char **argv, const char *cmd)
{
    memset(c, 0, sizeof *c);
    const char *url = getenv("TALLY_URL");
    if (!url || !*url)
        url = getenv("MLFLOW_TRACKING_URI");
    if (!url || !*url || strncmp(url, "http", 4) != 0)
        url = "http://127.0.0.1:5000";
    const char *user = getenv("MLFLOW_TRACKING_USERNAME");
    const char *password = getenv("MLFLOW_TRACKING_PASSWORD");
    const char *token = getenv("MLFLOW_TRACKING_TOKEN");
    int flag_user = 0, flag_token = 0, out = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--url") == 0)
            dst = &url;
        else if (strcmp(a, "--user") == 0)
            dst = &user, flag_user = 1;
        else if (strcmp(a, "--password") == 0)
            dst = &password;
        else if (strcmp(a, "--token") == 0)
            dst = &token, flag_token = 1;
        if (!dst) {
            argv[out++] = argv[i];
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "tally %s: %s needs a value\n", cmd, a);
            return -1;
        }
        *dst = argv[++i];
    }
    if (set_url(c, url, cmd) != 0)
        return -1;
    /* Flags beat the environment; between the environment's two, Basic wins
     * as in MLflow's client (mlflow-auth.md §7). */
    if (flag_token && !flag_user)
        user = NULL;
    if (user && *user && !(flag_token && !flag_user))
        set_basic(c, user, password);
    else if (token && *token)
        snprintf(c->authorization, sizeof c->authorization, "Bearer %s", token);
    return out;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int tally_client_call(const tally_client *c, const char *method, const char *path,
                      const char *json_body, tally_client_resp *out)
{
    memset(out, 0, sizeof *out);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(c->host, c->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "tally: cannot resolve %s: %s\n", c->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "tally: cannot connect to %s:%s: %s (is `tally serve` running? see --url)\n",
                c->host, c->port, strerror(errno));
        return -1;
    }
    size_t blen = json_body ? strlen(json_body) : 0;
    size_t cap = 4096 + strlen(path) + strlen(c->prefix) + strlen(c->authorization);
    char *head = malloc(cap);
    if (!head) {
        close(fd);
        return -1;
    }
    int hn = snprintf(head, cap,
                      "%s %s/api/2.0/%s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n"
                      "Accept: application/json\r\n%s%s%s%s%s%s%zu\r\n\r\n",
                      method, c->prefix, path, c->host, c->port,
                      c->authorization[0] ? "Authorization: " : "", c->authorization,
                      c->authorization[0] ? "\r\n" : "",
                      json_body ? "Content-Type: application/json\r\n" : "",
                      "", "Content-Length: ", blen);
    int ok = hn > 0 && (size_t)hn < cap && send_all(fd, head, (size_t)hn) == 0 &&
             (!blen || send_all(fd, json_body, blen) == 0);
    free(head);
    if (!ok) {
        fprintf(stderr, "tally: sending the request failed: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    size_t len = 0, bcap = 8192;
    char *buf = malloc(bcap + 1);
    while (buf) {
        if (len == bcap) {
            if (bcap >= MAX_BODY)
                break;
            char *nb = realloc(buf, bcap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            bcap *= 2;
        }
        ssize_t r = recv(fd, buf + len, bcap - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (!buf) {
        fprintf(stderr, "tally: out of memory reading the response\n");
        return -1;
    }
    buf[len] = 0;
    int status = 0;
    char *body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || sscanf(buf + 8, " %d", &status) != 1 || !body) {
        fprintf(stderr, "tally: the server's answer is not HTTP (is it serving TLS?)\n");
        free(buf);
        return -1;
    }
    body += 4;
    out->status = status;
    out->len = len - (size_t)(body - buf);
    out->body = malloc(out->len + 1);
    if (!out->body) {
        free(buf);
        return -1;
    }
    memcpy(out->body, body, out->len);
    out->body[out->len] = 0;
    free(buf);
    return 0;
}

void tally_client_resp_free(tally_client_resp *r)
{
    free(r->body);
    r->body = NULL;
}

void tally_client_print_error(const char *cmd, const tally_client_resp *r)
{
    cJSON *j = cJSON_Parse(r->body ? r->body : "");
    const cJSON *code = j ? cJSON_GetObjectItemCaseSensitive(j, "error_code") : NULL;
    const cJSON *msg = j ? cJSON_GetObjectItemCaseSensitive(j, "message") : NULL;
    if (cJSON_IsString(code) && cJSON_IsString(msg))
        fprintf(stderr, "tally %s: %d %s: %s\n", cmd, r->status, code->valuestring,
                msg->valuestring);
    else
        fprintf(stderr, "tally %s: HTTP %d: %.300s\n", cmd, r->status, r->body ? r->body : "");
    cJSON_Delete(j);
}

void tally_client_urlencode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = 0;
}
#endif /* TALLY_HAVE_SERVER */
