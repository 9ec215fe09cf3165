/*
 * http.h — the server's HTTP/1.1 layer over libmicrohttpd, as seen by
 * handlers. Handlers never touch libmicrohttpd: they read a tally_req and
 * fill a tally_resp.
 *
 * Lifecycle of a request: libmicrohttpd accepts it; http.c collects the body
 * (up to the configured limit, else 413 before reading it all), builds a
 * tally_req, finds the route (routes.c), calls the handler on a worker
 * thread, sends the tally_resp, writes one JSON log line and records the
 * route's latency histogram. With authentication on (srv->auth), the
 * credentials are checked as soon as the headers are in and the route's
 * permission right before the handler (authz.h).
 *
 * Invariants:
 *  (1) A handler is called with the whole body in memory, NUL-terminated
 *      (body[body_len] == 0), except streaming routes (artifact uploads),
 *      which receive it in pieces through tally_req.on_body.
 *  (2) Every response a handler forgets to fill is a 500 INTERNAL_ERROR JSON.
 *  (3) Strings in a tally_req live until the handler returns.
 *  (4) Every response carries a Content-Type. A path no route serves, or a
 *      known path with a method its routes do not accept, is answered 404
 *      ENDPOINT_NOT_FOUND JSON (mlflow-rest-api.md §1.5). HEAD is served by
 *      a GET route (unless a route lists TALLY_HEAD) and sends no body.
 *  (5) A non-streaming body larger than cfg.max_body_bytes is answered 413
 *      RESOURCE_EXHAUSTED without being buffered: at once when
 *      Content-Length says so, else (chunked) after discarding the rest.
 *  (6) Bodies being received count against cfg.request_budget_bytes
 *      (budget.h): one that does not fit is answered 429
 *      REQUEST_LIMIT_EXCEEDED with Retry-After before it is buffered. A
 *      non-streaming body still arriving cfg.body_timeout_s after the
 *      request began closes the connection; at most
 *      cfg.max_connections_per_ip connections per client address.
 */
#ifndef TALLY_SERVER_HTTP_H
#define TALLY_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef enum tally_method {
    TALLY_GET = 1,
    TALLY_POST = 2,
    TALLY_PUT = 4,
    TALLY_PATCH = 8,
    TALLY_DELETE = 16,
    TALLY_HEAD = 32
} tally_method;

typedef struct tally_query_arg {
    const char *key;   /* URL-decoded */
    const char *value; /* URL-decoded; "" when absent */
} tally_query_arg;

typedef struct tally_resp tally_resp;

typedef struct tally_req {
    tally_method method;
    const char *path;            /* URL-decoded path, e.g. "/api/2.0/mlflow/runs/get" */
    const char *sub_path;        /* after the route's prefix, e.g. "mlflow/runs/get", or the tail of a prefix route */
    int is_ajax;                 /* came in under /ajax-api/ */
    const tally_query_arg *args; /* query-string arguments in order (repeats kept) */
    size_t n_args;
    const char *content_type;    /* or NULL */
    const char *body;            /* NUL-terminated; "" when none */
    size_t body_len;
    const char *remote_addr;     /* "ip:port" */
    const char *user;            /* authenticated user, or NULL (security issue) */
    const struct tally_principal *principal; /* the same in full (auth.h), or NULL when auth is off */
    void *conn;                  /* private to http.c */
    struct tally_body_sink *sink; /* streaming routes only, else NULL: see below */
} tally_req;

/* Streaming request bodies (routes with streaming_body set, e.g. artifact
 * uploads). The handler is called once when the headers have arrived, with
 * an empty body and req->sink pointing at a zeroed sink. To take the body it
 * sets sink->write (and finish, ctx) and leaves resp->status 0; to refuse
 * the request it fills resp (e.g. tally_resp_error) and sets no writer.
 * Then, on the same worker thread:
 *   write(ctx, piece, n, resp) for each piece in order: return 0 to go on,
 *       or fill resp and return -1 to stop (the rest is discarded);
 *   finish(ctx, 1, resp) once after the last piece, to fill the response;
 *   or finish(ctx, 0, NULL) instead when the request ends early (client
 *       gone, write returned -1, server stopping): free ctx, reply nothing.
 * finish is called exactly once whenever write was set. No body-size limit
 * applies to streaming routes: the handler enforces its own. */
typedef struct tally_body_sink {
    int (*write)(void *ctx, const char *data, size_t len, tally_resp *resp);
    void (*finish)(void *ctx, int complete, tally_resp *resp);
    void *ctx;
} tally_body_sink;

struct tally_resp {
    int status;                 /* HTTP status; 0 = not filled */
    const char *content_type;   /* static string; default "application/json" */
    tally_buf body;             /* response bytes */
    char extra_headers[512];    /* "Name: value\r\n" lines, e.g. Retry-After */
    /* Streaming responses (artifact downloads): when fd >= 0 the body is the
     * file's bytes [fd_off, fd_off + fd_len), sent by libmicrohttpd, which
     * closes fd. http.c starts every response with fd = -1; an fd left in a
     * non-2xx response is closed by http.c and the buffer body is sent. */
    int fd;
    uint64_t fd_off, fd_len;
    /* Gathered responses (tally/query): when pieces_free is set the body is
     * pieces[0 .. n_pieces) in order, sent by libmicrohttpd without a copy.
     * http.c calls pieces_free(pieces_ctx) exactly once: when the response
     * is sent or dropped; a non-2xx response drops them and sends the buffer
     * body. */
    const struct tally_resp_piece *pieces;
    unsigned n_pieces;
    void (*pieces_free)(void *ctx);
    void *pieces_ctx;
};

/* One byte range of a gathered response (laid out as libmicrohttpd's
 * struct MHD_IoVec, which http.c checks). */
typedef struct tally_resp_piece {
    const void *base;
    size_t len;
} tally_resp_piece;

/* Frees what a response holds (its body, its file, its gathered pieces)
 * when it is not handed to http.c: for callers of handlers other than the
 * server (tests, fuzz targets). */
void tally_resp_release(tally_resp *r);

/* Adds "Name: value" to the response's headers (dropped whole if the
 * remaining room in extra_headers is too small). */
void tally_resp_header(tally_resp *r, const char *name, const char *value);

/* The first query argument named key, or NULL. */
const char *tally_req_arg(const tally_req *r, const char *key);

/* A request header by name (case-insensitive), or NULL. Lives until the
 * handler returns. NULL for requests not made by http.c (unit tests). */
const char *tally_req_header(const tally_req *r, const char *name);

/* ------------------------------------------------------------------------ */
/* The server side (server.c)                                                */
/* ------------------------------------------------------------------------ */

typedef struct tally_http tally_http;
struct tally_server;

/* Binds cfg.host:cfg.port of srv (port 0: any free port), starts
 * libmicrohttpd's worker threads (cfg.threads, epoll each) and serves the
 * route tables. srv must outlive the tally_http. Errors (port in use,
 * unknown host, duplicate routes) return -1 with a message in err. */
int tally_http_start(struct tally_server *srv, tally_http **out, char *err, size_t cap);

/* The port actually listened on. */
int tally_http_port(const tally_http *h);

/* Graceful stop: stops accepting connections, lets requests in flight
 * finish (up to drain_ms; idle keep-alive connections are told to close),
 * then closes every connection, joins the threads and frees h. Returns the
 * number of requests still in flight when it gave up waiting (0: clean).
 * NULL is a no-op. */
int tally_http_stop(tally_http *h, unsigned drain_ms);

#endif /* TALLY_SERVER_HTTP_H */
