/*
 * http.c — the HTTP/1.1 layer (http.h) over libmicrohttpd (MHD).
 *
 * Threads: with cfg.threads = 0 (the default) MHD gives every connection a
 * thread of its own (MHD_USE_THREAD_PER_CONNECTION; one listening thread
 * accepts), kept for the connection's life; handlers run synchronously on
 * it. Handlers block (a write waits for its group commit's fsync), so a
 * connection must not share its thread with others. With cfg.threads = N
 * MHD runs N worker threads, each with its own epoll loop, sharing the
 * listening socket (ours, so that "port in use" is a clear error and port 0
 * works); a connection stays on the worker that accepted it. No thread is
 * created per request.
 *
 * Per-connection state (conn, below) is created when MHD accepts a
 * connection (MHD_OPTION_NOTIFY_CONNECTION) and reused by every request on
 * that keep-alive connection: the URL buffer, the argument array, the body
 * buffer and the response buffer keep their memory between requests, so a
 * steady stream of requests allocates nothing here.
 *
 * One request, in MHD's callbacks:
 *
 *   uri_log        raw request-target copied into conn->url; clock starts
 *   access (1st)   headers known: parse the URL, find the route, check
 *                  Content-Length against the limit; answer early errors
 *   access (data)  body pieces appended (or streamed to the sink, or
 *                  discarded after an error)
 *   access (last)  build tally_req, call the handler, queue the response
 *   completed      stats, one log line, free oversized buffers
 *
 * Invariants:
 *  (1) At most one request per connection is in progress (MHD serialises a
 *      connection's requests), so conn needs no lock; it is only touched by
 *      its worker thread.
 *  (2) The response body is handed to MHD without a copy
 *      (MHD_RESPMEM_PERSISTENT) from conn->resp.body, which is not touched
 *      again until the next request's uri_log — after MHD sent this one;
 *      a gathered body (resp.pieces) is handed over with its free callback,
 *      which runs exactly once (sent, dropped, or the connection closed).
 *  (3) A request counted by tally_stats_request_begin is ended exactly once,
 *      in the completed callback (conn->counted).
 *  (4) Every response queued has a Content-Type; every failure to build one
 *      becomes a 500 INTERNAL_ERROR JSON, never a crash or a dropped
 *      connection (except MHD's own out-of-memory paths).
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_error.h"
#include "app.h"
#include "authz.h"
#include "budget.h"
#include "http_url.h"
#include "json_out.h"
#include "routes.h"
#include "stats.h"

#define KEEP_BUF_BYTES (1u << 20)   /* buffers larger than this are freed after a request */
#define SMALL_DISCARD (64u * 1024u) /* bodies this small are read and dropped to keep the connection */
#define MAX_DISCARD ((uint64_t)64 << 20) /* past this much unwanted body we drop the connection */
#define MHD_POOL_BYTES (64u * 1024u)     /* MHD's per-connection memory (headers, read buffer) */

struct tally_http {
    struct MHD_Daemon *mhd;
    tally_server *srv;
    int listen_fd;           /* ours; closed after MHD_stop_daemon */
    int port;                /* the bound port */
    atomic_int draining;     /* set by tally_http_stop: new responses say Connection: close */
    char *tls_cert, *tls_key; /* PEM bytes of cfg.tls_cert / tls_key when serving HTTPS */
    tally_budget budget;     /* request bodies held now (budget.h) */
};

typedef enum phase {
    PH_IDLE = 0,   /* between requests */
    PH_NEW,        /* uri_log seen, access handler not yet called */
    PH_BODY,       /* headers processed, receiving the body */
    PH_REPLIED     /* a response is queued */
} phase;

typedef struct conn {
    tally_http *http;
    struct MHD_Connection *mhd;
    char remote[64];             /* "ip:port" of the peer */

    /* Request state, reset by uri_log. */
    phase phase;
    int counted;                 /* stats begin was called (invariant 3) */
    struct timespec t0;          /* request start (monotonic) */
    char *url;                   /* raw request-target, then decoded in place */
    size_t url_cap;
    const char *path;            /* decoded path, inside url */
    tally_query_arg *args;       /* decoded arguments, inside url */
    size_t n_args, args_cap;
    tally_method method;
    const char *method_name;     /* as sent, for the log */
    tally_route_match match;
    tally_buf body;              /* the request body (non-streaming routes) */
    uint64_t body_limit;         /* cfg.max_body_bytes */
    int discarding;              /* drop further body bytes */
    uint64_t discarded;          /* bytes dropped so far */
    int too_large;               /* reply 413 at the end */
    int early;                   /* resp already holds the reply (an error found early) */
    int close_after;             /* add Connection: close */
    int streaming;               /* the route takes the body through sink */
    tally_body_sink sink;
    int sink_finished;
    uint64_t reserved;           /* bytes taken from the budget for this request's body */
    int over_budget;             /* a chunked body outgrew the budget: reply 429 at the end */
    tally_req req;
    tally_resp resp;
    int status;                  /* queued status, 0 if none */
    uint64_t bytes_out;          /* response body bytes */
    tally_buf log;               /* the log line */
    tally_authz_state az;        /* who is calling and what they named (auth on only) */
} conn;

/* ------------------------------------------------------------------------ */
/* Small helpers (also used by handlers)                                      */
/* ------------------------------------------------------------------------ */

void tally_resp_header(tally_resp *r, const char *name, const char *value)
{
    size_t used = strnlen(r->extra_headers, sizeof r->extra_headers);
    size_t need = strlen(name) + 2 + strlen(value) + 2;
    if (used + need >= sizeof r->extra_headers)
        return;
    snprintf(r->extra_headers + used, sizeof r->extra_headers - used, "%s: %s\r\n", name, value);
}

const char *tally_req_arg(const tally_req *r, const char *key)
{
    for (size_t i = 0; i < r->n_args; i++)
        if (strcmp(r->args[i].key, key) == 0)
            return r->args[i].value;
    return NULL;
}

const char *tally_req_header(const tally_req *r, const char *name)
{
    const conn *cx = r->conn;
    if (!cx || !cx->mhd)
        return NULL;
    return MHD_lookup_connection_value(cx->mhd, MHD_HEADER_KIND, name);
}

static int64_t elapsed_us(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)(t.tv_sec - t0->tv_sec) * 1000000 + (t.tv_nsec - t0->tv_nsec) / 1000;
}

/* Splits and decodes conn->url into path and args (http_url.h). -1 on a bad URL. */
static int parse_url(conn *cx)
{
    return tally_url_parse(cx->url, &cx->path, &cx->args, &cx->n_args, &cx->args_cap);
}

static tally_method method_of(const char *m)
{
    switch (m[0]) {
    case 'G': return strcmp(m, "GET") == 0 ? TALLY_GET : 0;
    case 'P':
        if (strcmp(m, "POST") == 0)
            return TALLY_POST;
        if (strcmp(m, "PUT") == 0)
            return TALLY_PUT;
        return strcmp(m, "PATCH") == 0 ? TALLY_PATCH : 0;
    case 'D': return strcmp(m, "DELETE") == 0 ? TALLY_DELETE : 0;
    case 'H': return strcmp(m, "HEAD") == 0 ? TALLY_HEAD : 0;
    default: return 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                  */
/* ------------------------------------------------------------------------ */

static void add_extra_headers(struct MHD_Response *r, char *lines)
{
    char *save = NULL;
    for (char *line = strtok_r(lines, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = 0;
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        MHD_add_response_header(r, line, v);
    }
}

_Static_assert(sizeof(tally_resp_piece) == sizeof(struct MHD_IoVec) &&
                   offsetof(tally_resp_piece, base) == offsetof(struct MHD_IoVec, iov_base) &&
                   offsetof(tally_resp_piece, len) == offsetof(struct MHD_IoVec, iov_len),
               "a response piece is an MHD_IoVec");

/* Frees a gathered body not handed to MHD (invariant 2). */
static void drop_pieces(tally_resp *r)
{
    if (r->pieces_free)
        r->pieces_free(r->pieces_ctx);
    r->pieces = NULL;
    r->n_pieces = 0;
    r->pieces_free = NULL;
    r->pieces_ctx = NULL;
}

void tally_resp_release(tally_resp *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    drop_pieces(r);
    tally_buf_free(&r->body);
}

/* Queues cx->resp (invariants 2 and 4). */
static enum MHD_Result send_resp(conn *cx, struct MHD_Connection *c)
{
    tally_resp *r = &cx->resp;
    if (r->status < 100 || r->status > 599 || tally_buf_failed(&r->body)) {
        int was = r->status;
        tally_resp_error(r, TALLY_API_INTERNAL_ERROR, "%s",
                         was ? "The response could not be built (out of memory)."
                             : "The handler produced no response.");
    }
    struct MHD_Response *mr = NULL;
    int ok2xx = r->status >= 200 && r->status < 300;
    if (r->fd >= 0 && !ok2xx) {
        close(r->fd);
        r->fd = -1;
    }
    if (r->pieces_free && !ok2xx)
        drop_pieces(r);
    if (r->pieces_free) {
        mr = MHD_create_response_from_iovec((const struct MHD_IoVec *)(const void *)r->pieces,
                                            r->n_pieces, r->pieces_free, r->pieces_ctx);
        uint64_t bytes = 0;
        for (unsigned k = 0; k < r->n_pieces; k++)
            bytes += r->pieces[k].len;
        cx->bytes_out = mr ? bytes : 0;
        if (mr) { /* MHD owns them now */
            r->pieces_free = NULL;
            drop_pieces(r);
        } else {
            drop_pieces(r);
            tally_resp_error(r, TALLY_API_INTERNAL_ERROR, "Cannot build the response.");
        }
    }
    if (r->fd >= 0) {
        mr = MHD_create_response_from_fd_at_offset64(r->fd_len, r->fd, r->fd_off);
        if (!mr)
            close(r->fd);
        r->fd = -1; /* MHD owns it now (or it is closed) */
        cx->bytes_out = mr ? r->fd_len : 0;
        if (!mr)
            tally_resp_error(r, TALLY_API_INTERNAL_ERROR, "Cannot stream the file.");
    }
    if (!mr) {
        mr = MHD_create_response_from_buffer(r->body.len, r->body.len ? r->body.data : NULL,
                                             MHD_RESPMEM_PERSISTENT);
        cx->bytes_out = r->body.len;
    }
    if (!mr)
        return MHD_NO;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type ? r->content_type : "application/json");
    if (r->extra_headers[0])
        add_extra_headers(mr, r->extra_headers);
    if (cx->close_after || atomic_load_explicit(&cx->http->draining, memory_order_relaxed))
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    cx->status = r->status;
    cx->phase = PH_REPLIED;
    return rc;
}

/* An error found before the body was read. With no body or a small one,
 * the reply waits for the end of the request (the small body is read and
 * dropped) so that the connection stays alive: MHD closes a connection whose
 * response was queued before its request was complete. A large or chunked
 * body is not worth reading: reply now and close. */
static enum MHD_Result early_error(conn *cx, struct MHD_Connection *c, uint64_t content_length,
                                   int have_length)
{
    int chunked = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                              MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
    if (!chunked && (!have_length || content_length <= SMALL_DISCARD)) {
        cx->early = 1;
        cx->discarding = 1;
        return MHD_YES;
    }
    cx->close_after = 1;
    return send_resp(cx, c);
}

/* ------------------------------------------------------------------------ */
/* MHD callbacks                                                              */
/* ------------------------------------------------------------------------ */

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
    tally_http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn *cx = calloc(1, sizeof *cx);
        *socket_context = cx;
        if (!cx)
            return;
        cx->http = h;
        cx->mhd = c;
        cx->resp.fd = -1;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        char ip[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (sa && sa->sa_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
            inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
            port = ntohs(in->sin_port);
            snprintf(cx->remote, sizeof cx->remote, "%s:%d", ip, port);
        } else if (sa && sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
            port = ntohs(in6->sin6_port);
            snprintf(cx->remote, sizeof cx->remote, "[%s]:%d", ip, port);
        } else {
            snprintf(cx->remote, sizeof cx->remote, "?");
        }
        return;
    }
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn *cx = *socket_context;
        if (!cx)
            return;
        if (cx->reserved) /* defensive: request_completed gives it back first */
            tally_budget_give(&cx->http->budget, cx->reserved);
        if (cx->resp.fd >= 0)
            close(cx->resp.fd);
        drop_pieces(&cx->resp);
        free(cx->url);
        free(cx->args);
        tally_buf_free(&cx->body);
        tally_buf_free(&cx->resp.body);
        tally_buf_free(&cx->log);
        free(cx);
        *socket_context = NULL;
    }
}

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn *cx = ci ? ci->socket_context : NULL;
    if (!cx)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, &cx->t0);
    size_t n = strlen(uri);
    if (n + 1 > cx->url_cap) {
        size_t cap = n + 1 < 256 ? 256 : n + 1;
        char *u = realloc(cx->url, cap);
        if (!u) {
            free(cx->url);
            cx->url = NULL;
            cx->url_cap = 0;
        } else {
            cx->url = u;
            cx->url_cap = cap;
        }
    }
    if (cx->url)
        memcpy(cx->url, uri, n + 1);
    /* Reset the request state; buffers keep their memory (file comment). */
    cx->phase = PH_NEW;
    cx->counted = 0;
    cx->path = NULL;
    cx->n_args = 0;
    cx->method = 0;
    cx->method_name = "?";
    memset(&cx->match, 0, sizeof cx->match);
    tally_buf_reset(&cx->body);
    cx->discarding = 0;
    cx->discarded = 0;
    cx->too_large = 0;
    cx->early = 0;
    cx->close_after = 0;
    cx->streaming = 0;
    memset(&cx->sink, 0, sizeof cx->sink);
    cx->sink_finished = 0;
    cx->over_budget = 0;
    memset(&cx->req, 0, sizeof cx->req);
    tally_buf_reset(&cx->resp.body);
    cx->resp.status = 0;
    cx->resp.content_type = NULL;
    cx->resp.extra_headers[0] = 0;
    cx->resp.fd = -1;
    cx->resp.fd_off = cx->resp.fd_len = 0;
    drop_pieces(&cx->resp);
    cx->status = 0;
    cx->bytes_out = 0;
    return cx;
}

static void fill_req(conn *cx, struct MHD_Connection *c)
{
    tally_req *q = &cx->req;
    /* HEAD served by a GET route looks like GET to the handler. */
    q->method = cx->method == TALLY_HEAD && cx->match.route &&
                        !(cx->match.route->methods & TALLY_HEAD)
                    ? TALLY_GET
                    : cx->method;
    q->path = cx->path;
    q->sub_path = cx->match.sub_path;
    q->is_ajax = cx->match.is_ajax;
    q->args = cx->args;
    q->n_args = cx->n_args;
    q->content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    q->body = cx->body.len ? cx->body.data : "";
    q->body_len = cx->body.len;
    q->remote_addr = cx->remote;
    q->user = cx->az.authed ? cx->az.who.username : NULL;
    q->principal = cx->az.authed ? &cx->az.who : NULL;
    q->conn = cx;
    q->sink = cx->streaming ? &cx->sink : NULL;
}

static void finish_sink(conn *cx, int complete)
{
    if (cx->streaming && cx->sink.write && !cx->sink_finished) {
        cx->sink_finished = 1;
        if (cx->sink.finish)
            cx->sink.finish(cx->sink.ctx, complete, complete ? &cx->resp : NULL);
    }
}

/* 429 REQUEST_LIMIT_EXCEEDED with Retry-After: the request-body budget is
 * full. Sent before the body is read, so the connection is closed after. */
static void fill_over_budget(conn *cx)
{
    tally_budget *b = &cx->http->budget;
    tally_resp_error(&cx->resp, TALLY_API_REQUEST_LIMIT_EXCEEDED,
                     "The server is holding as many request bodies as its memory budget "
                     "allows (request_budget %" PRIu64 " bytes); retry shortly.",
                     b->limit);
    char ra[16];
    snprintf(ra, sizeof ra, "%u", tally_budget_retry_after(b));
    tally_resp_header(&cx->resp, "Retry-After", ra);
}

static enum MHD_Result over_budget(conn *cx, struct MHD_Connection *c)
{
    fill_over_budget(cx);
    cx->close_after = 1;
    return send_resp(cx, c);
}

/* Whether a body still arriving has passed cfg.body_timeout_s since the
 * request began (slow senders; streaming uploads set their own pace). */
static int body_too_slow(const conn *cx)
{
    return !cx->streaming &&
           elapsed_us(&cx->t0) > (int64_t)cx->http->srv->cfg.body_timeout_s * 1000000;
}

/* The first access call: headers are in. */
static enum MHD_Result begin(conn *cx, struct MHD_Connection *c, const char *method)
{
    tally_http *h = cx->http;
    tally_server *srv = h->srv;
    cx->phase = PH_BODY;
    cx->counted = 1;
    tally_stats_request_begin(srv->stats);
    cx->method_name = method;
    cx->method = method_of(method);
    cx->body_limit = srv->cfg.max_body_bytes;

    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t content_length = cl ? strtoull(cl, NULL, 10) : 0;

    if (!cx->url || parse_url(cx) != 0) {
        cx->path = NULL;
        tally_resp_error(&cx->resp, TALLY_API_INVALID_PARAMETER_VALUE, "Malformed request URL.");
        return early_error(cx, c, content_length, cl != NULL);
    }
    int found = cx->method && tally_route_find(cx->method, cx->path, &cx->match);
    /* Authentication before anything else answers (auth.h, authz.h). */
    if (srv->auth &&
        tally_authz_authenticate(srv, found ? cx->match.route : NULL, cx->method,
                                 MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                             MHD_HTTP_HEADER_AUTHORIZATION),
                                 &cx->az, &cx->resp) != 0) {
        if (!found)
            cx->match.index = tally_routes_count();
        return early_error(cx, c, content_length, cl != NULL);
    }
    if (found && cx->match.route->streaming_body) {
        cx->streaming = 1;
        fill_req(cx, c);
        if (srv->auth &&
            tally_authz_check(srv, &cx->req, cx->match.route, &cx->az, &cx->resp) != 0)
            return early_error(cx, c, content_length, cl != NULL);
        cx->match.route->fn(srv, &cx->req, &cx->resp);
        if (cx->resp.status || !cx->sink.write) {
            cx->sink.write = NULL; /* refused: finish is not owed */
            return early_error(cx, c, content_length, cl != NULL);
        }
        return MHD_YES;
    }
    /* The size limit comes before the 404, so that no unread giant body is
     * ever answered as if it had been read. */
    if (cl && content_length > cx->body_limit) {
        tally_resp_error_status(&cx->resp, 413, TALLY_API_RESOURCE_EXHAUSTED,
                                "Request body of %" PRIu64 " bytes exceeds the limit of %" PRIu64
                                " bytes (max_body_bytes).",
                                content_length, cx->body_limit);
        cx->close_after = 1;
        return send_resp(cx, c);
    }
    if (!found) {
        cx->match.index = tally_routes_count();
        tally_resp_error(&cx->resp, TALLY_API_ENDPOINT_NOT_FOUND,
                         "No endpoint serves %s %s.", method, cx->path);
        return early_error(cx, c, content_length, cl != NULL);
    }
    /* Admission (budget.h): refuse, before reading any of it, a body the
     * budget cannot hold now. */
    if (cl && content_length > 0) {
        if (tally_budget_take(&h->budget, content_length) != 0)
            return over_budget(cx, c);
        cx->reserved = content_length;
    }
    if (cl && content_length > 0 && tally_buf_reserve(&cx->body, (size_t)content_length) != 0) {
        tally_resp_error(&cx->resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "Out of memory.");
        cx->close_after = 1;
        return send_resp(cx, c);
    }
    return MHD_YES;
}

static enum MHD_Result body_piece(conn *cx, const char *data, size_t n)
{
    if (body_too_slow(cx))
        return MHD_NO; /* closes the connection: it cannot hold a socket forever */
    if (cx->discarding) {
        cx->discarded += n;
        return cx->discarded > MAX_DISCARD ? MHD_NO : MHD_YES;
    }
    if (cx->streaming) {
        if (cx->sink.write(cx->sink.ctx, data, n, &cx->resp) != 0) {
            if (!cx->resp.status)
                tally_resp_error(&cx->resp, TALLY_API_INTERNAL_ERROR, "Upload failed.");
            finish_sink(cx, 0);
            cx->early = 1;
            cx->discarding = 1;
            cx->close_after = 1;
        }
        return MHD_YES;
    }
    if (cx->body.len + n > cx->body_limit) {
        /* Chunked body over the limit: stop buffering (invariant (5) of http.h). */
        cx->too_large = 1;
        cx->discarding = 1;
        cx->discarded = cx->body.len + n;
        tally_buf_free(&cx->body);
        return MHD_YES;
    }
    if (cx->body.len + n > cx->reserved) {
        /* Chunked (or longer than announced): reserve as it comes. */
        uint64_t more = cx->body.len + n - cx->reserved;
        if (tally_budget_take(&cx->http->budget, more) != 0) {
            cx->over_budget = 1;
            cx->discarding = 1;
            cx->discarded = cx->body.len + n;
            tally_buf_free(&cx->body);
            return MHD_YES;
        }
        cx->reserved += more;
    }
    tally_buf_append(&cx->body, data, n);
    return MHD_YES;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    conn *cx = *req_cls;
    if (!cx)
        return MHD_NO; /* out of memory at accept */
    if (cx->phase == PH_NEW)
        return begin(cx, c, method);
    if (cx->phase == PH_REPLIED) {
        *upload_data_size = 0; /* defensive: MHD should not call us again */
        return MHD_YES;
    }
    if (*upload_data_size) {
        enum MHD_Result rc = body_piece(cx, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return rc;
    }
    /* The whole body is in. */
    tally_server *srv = cx->http->srv;
    if (cx->too_large) {
        tally_resp_error_status(&cx->resp, 413, TALLY_API_RESOURCE_EXHAUSTED,
                                "Request body exceeds the limit of %" PRIu64
                                " bytes (max_body_bytes).",
                                cx->body_limit);
        cx->close_after = 1;
    } else if (cx->over_budget) {
        fill_over_budget(cx);
        cx->close_after = 1;
    } else if (cx->early) {
        /* resp already holds the error */
    } else if (cx->streaming) {
        finish_sink(cx, 1);
        if (srv->auth)
            tally_authz_after(srv, &cx->req, cx->match.route, cx->method_name, &cx->az,
                              &cx->resp);
    } else if (tally_buf_failed(&cx->body)) {
        tally_resp_error(&cx->resp, TALLY_API_TEMPORARILY_UNAVAILABLE, "Out of memory.");
    } else {
        fill_req(cx, c);
        if (!srv->auth ||
            tally_authz_check(srv, &cx->req, cx->match.route, &cx->az, &cx->resp) == 0)
            cx->match.route->fn(srv, &cx->req, &cx->resp);
        if (srv->auth)
            tally_authz_after(srv, &cx->req, cx->match.route, cx->method_name, &cx->az,
                              &cx->resp);
    }
    return send_resp(cx, c);
}

static void write_log(conn *cx, int status)
{
    tally_buf *b = &cx->log;
    tally_buf_reset(b);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char ts[96];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
    tally_json j;
    tally_json_start(&j, b);
    tally_json_object_open(&j);
    tally_json_kv_string(&j, "ts", ts);
    tally_json_kv_string(&j, "method", cx->method_name);
    tally_json_kv_string(&j, "path", cx->path ? cx->path : (cx->url ? cx->url : ""));
    tally_json_kv_string(&j, "route", tally_routes_name(cx->match.index));
    tally_json_kv_int(&j, "status", status);
    tally_json_kv_int(&j, "bytes", (int64_t)cx->bytes_out);
    tally_json_kv_int(&j, "duration_us", elapsed_us(&cx->t0));
    tally_json_kv_string(&j, "remote", cx->remote);
    tally_json_object_close(&j);
    tally_buf_putc(b, '\n');
    if (!tally_buf_failed(b)) {
        ssize_t w = write(STDERR_FILENO, b->data, b->len); /* one write: lines never interleave */
        (void)w;
    }
    if (b->cap > KEEP_BUF_BYTES)
        tally_buf_free(b);
}

static void request_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
    tally_http *h = cls;
    (void)c;
    conn *cx = *req_cls;
    if (!cx)
        return;
    finish_sink(cx, 0);
    if (cx->counted) {
        /* 499: the client went away before a response was queued (nginx's code). */
        int status = cx->status ? cx->status : 499;
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && cx->status)
            status = cx->status;
        tally_stats_request_end(h->srv->stats, cx->match.index, status,
                                (uint64_t)elapsed_us(&cx->t0), cx->bytes_out);
        if (h->srv->cfg.log_requests)
            write_log(cx, status);
        cx->counted = 0;
    }
    cx->phase = PH_IDLE;
    if (cx->reserved) {
        tally_budget_give(&h->budget, cx->reserved);
        cx->reserved = 0;
    }
    if (cx->body.cap > KEEP_BUF_BYTES)
        tally_buf_free(&cx->body);
    if (cx->resp.body.cap > KEEP_BUF_BYTES)
        tally_buf_free(&cx->resp.body);
    if (cx->resp.fd >= 0) {
        close(cx->resp.fd);
        cx->resp.fd = -1;
    }
    drop_pieces(&cx->resp);
    *req_cls = NULL;
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    tally_buf b = {0};
    tally_json j;
    tally_json_start(&j, &b);
    tally_json_object_open(&j);
    tally_json_kv_string(&j, "level", "warn");
    tally_json_kv_string(&j, "component", "http");
    tally_json_kv_string(&j, "message", msg);
    tally_json_object_close(&j);
    tally_buf_putc(&b, '\n');
    if (!tally_buf_failed(&b)) {
        ssize_t w = write(STDERR_FILENO, b.data, b.len);
        (void)w;
    }
    tally_buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Start and stop                                                             */
/* ------------------------------------------------------------------------ */

static int open_listener(const tally_config *cfg, int *port_out, char *err, size_t cap)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int rc = getaddrinfo(cfg->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, cap, "cannot resolve listen address '%s': %s", cfg->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* not SO_REUSEPORT: a second server must fail */
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (saved == EADDRINUSE)
            snprintf(err, cap, "cannot listen on %s:%d: the port is already in use (is another "
                               "server running? choose one with --port)",
                     cfg->host, cfg->port);
        else
            snprintf(err, cap, "cannot listen on %s:%d: %s", cfg->host, cfg->port, strerror(saved));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    *port_out = cfg->port;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            *port_out = ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            *port_out = ntohs(((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
    }
    return fd;
}

/* Reads a whole PEM file into a NUL-terminated buffer (libmicrohttpd takes
 * certificate and key from memory). */
static char *read_pem(const char *path, const char *what, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "cannot read the TLS %s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    tally_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < (1u << 20))
        tally_buf_append(&b, chunk, n);
    fclose(f);
    tally_buf_putc(&b, 0);
    if (tally_buf_failed(&b) || b.len < 2 || !strstr(b.data, "-----BEGIN")) {
        snprintf(err, cap, "the TLS %s %s is not a PEM file", what, path);
        tally_buf_free(&b);
        return NULL;
    }
    return b.data; /* freed with free() by free_tls */
}

static void free_tls(tally_http *h)
{
    if (h->tls_key) {
        memset(h->tls_key, 0, strlen(h->tls_key));
        free(h->tls_key);
    }
    free(h->tls_cert);
    h->tls_cert = h->tls_key = NULL;
}

static int load_tls(tally_http *h, const tally_config *cfg, char *err, size_t cap)
{
    if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
        snprintf(err, cap, "HTTPS needs both --tls-cert and --tls-key");
        return -1;
    }
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, cap, "this libmicrohttpd was built without TLS support; serve HTTPS "
                           "through a proxy instead");
        return -1;
    }
    h->tls_cert = read_pem(cfg->tls_cert, "certificate", err, cap);
    if (h->tls_cert)
        h->tls_key = read_pem(cfg->tls_key, "key", err, cap);
    if (!h->tls_cert || !h->tls_key) {
        free_tls(h);
        return -1;
    }
    return 0;
}

int tally_http_start(tally_server *srv, tally_http **out, char *err, size_t cap)
{
    *out = NULL;
    if (tally_routes_init() != 0 || tally_authz_verify_routes() != 0) {
        snprintf(err, cap, "the route tables are inconsistent (see above)");
        return -1;
    }
    tally_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    h->srv = srv;
    atomic_init(&h->draining, 0);
    /* At least one largest body must fit, or it could never be admitted. */
    tally_budget_init(&h->budget, srv->cfg.request_budget_bytes > srv->cfg.max_body_bytes
                                      ? srv->cfg.request_budget_bytes
                                      : srv->cfg.max_body_bytes);
    h->listen_fd = open_listener(&srv->cfg, &h->port, err, cap);
    if (h->listen_fd < 0) {
        free(h);
        return -1;
    }
    unsigned threads = srv->cfg.threads;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                     (threads ? MHD_USE_EPOLL : MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL);
    if (srv->cfg.tls_cert[0] || srv->cfg.tls_key[0]) {
        if (load_tls(h, &srv->cfg, err, cap) != 0) {
            close(h->listen_fd);
            free(h);
            return -1;
        }
        flags |= MHD_USE_TLS;
    }
    /* The optional items are appended, never written as MHD_OPTION_END in
     * place: MHD stops reading the array at the first END, so an absent
     * TLS pair once ended it before the thread pool (one thread served
     * every connection). */
    struct MHD_OptionItem ops[16] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, NULL}, /* must come first */
        {MHD_OPTION_LISTEN_SOCKET, h->listen_fd, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)srv->cfg.connection_timeout_s, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)srv->cfg.max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)srv->cfg.max_connections_per_ip, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)MHD_POOL_BYTES, NULL},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify_connection, h},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_log, h},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_completed, h},
    };
    size_t n_ops = 9;
    if (h->tls_cert) {
        ops[n_ops++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert};
        ops[n_ops++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key};
    }
    if (threads > 1)
        ops[n_ops++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL};
    ops[n_ops] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, access_handler, h, MHD_OPTION_ARRAY, ops,
                              MHD_OPTION_END);
    if (!h->mhd) {
        snprintf(err, cap, "cannot start the HTTP server (libmicrohttpd refused the options%s)",
                 h->tls_cert ? "; is the TLS certificate/key pair valid PEM?" : "");
        close(h->listen_fd);
        free_tls(h);
        free(h);
        return -1;
    }
    *out = h;
    return 0;
}

int tally_http_port(const tally_http *h)
{
    return h->port;
}

int tally_http_stop(tally_http *h, unsigned drain_ms)
{
    if (!h)
        return 0;
    atomic_store(&h->draining, 1);
    MHD_quiesce_daemon(h->mhd); /* returns our listen_fd, closed below */
    /* MHD only stops polling the socket; the kernel would keep completing
     * handshakes into the backlog. shutdown() makes new clients see a
     * refusal at once while the fd stays valid for MHD until stop. */
    shutdown(h->listen_fd, SHUT_RDWR);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t left;
    while ((left = tally_stats_in_flight(h->srv->stats)) > 0 &&
           elapsed_us(&t0) < (int64_t)drain_ms * 1000) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(h->mhd);
    close(h->listen_fd);
    free_tls(h);
    free(h);
    return left > 0 ? (int)left : 0;
}
