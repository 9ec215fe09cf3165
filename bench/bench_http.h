/*
 * bench_http.h — what a suite needs to measure the server over real HTTP:
 * start `tally serve` (the binary next to tally-bench) as a child on a
 * scratch data directory, and a minimal HTTP/1.1 keep-alive client over
 * plain sockets (one connection per thread). Used by suite_registry.c.
 *
 * Invariants:
 *  (1) bench_server_stop always reaps the child (SIGTERM, waitpid).
 *  (2) A response is read whole by Content-Length (the server always sends
 *      one); bench_http_req returns -1 on any transport or framing error.
 */
#ifndef TALLY_BENCH_HTTP_H
#define TALLY_BENCH_HTTP_H

#include <stddef.h>
#include <sys/types.h>

#include "bench.h"

typedef struct bench_server {
    pid_t pid;                    /* the child, 0 when not running */
    int port;                     /* where it listens */
} bench_server;

/* Starts the server on a fresh subdirectory `name` of c->work_dir with the
 * extra NULL-terminated arguments (may be NULL). 0 or -1 (message on stderr). */
int bench_server_start(bench_ctx *c, const char *name, const char *const *extra,
                       bench_server *s);
void bench_server_stop(bench_server *s);

typedef struct bench_http {
    int fd;
    char *buf;                    /* the last response: headers then body */
    size_t cap, len;              /* allocated, filled */
    const char *body;             /* into buf: the last response's body */
    size_t body_len;
} bench_http;

int bench_http_open(bench_http *h, int port);
void bench_http_close(bench_http *h);
/* One request (ctype NULL = application/json); the status, or -1. The body
 * is at h->body (NUL-terminated) until the next request. */
int bench_http_req(bench_http *h, const char *method, const char *path, const char *ctype,
                   const void *body, size_t body_len);

#endif /* TALLY_BENCH_HTTP_H */
