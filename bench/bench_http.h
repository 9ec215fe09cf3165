/*
 * bench_http.h — what the server-level suites that restart or watch the
 * server (crash, soak) share: `tally serve` as a child on a data directory
 * that outlives it (start, SIGTERM or SIGKILL, start again), its RSS and
 * open files, and a minimal HTTP/1.1 keep-alive client over plain sockets.
 *
 * Invariants:
 *  (1) bench_server_start returns only once the child printed its listening
 *      line (it is accepting), or fails having reaped the child.
 *  (2) A bench_hconn is used by one thread; its response body stays valid
 *      until its next request. Every response the server sends has a
 *      Content-Length, which the client relies on.
 */
#ifndef TALLY_BENCH_HTTP_H
#define TALLY_BENCH_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct bench_server {
    pid_t pid;
    int port;
} bench_server;

/* Starts the `tally` binary next to tally-bench on data_dir with extra
 * arguments (NULL-terminated list, may be NULL); its stderr goes to
 * log_path (appended). 0 or -1 (message on stderr). */
int bench_server_start(bench_server *s, const char *data_dir, const char *log_path,
                       const char *const *extra_args);

/* Sends sig (SIGTERM: graceful; SIGKILL: crash) and reaps the child.
 * Returns its wait status. */
int bench_server_stop(bench_server *s, int sig);

/* The child's resident set in MiB and its open file descriptors (0 / -1 if
 * unreadable). */
double bench_proc_rss_mib(pid_t pid);
int bench_proc_open_fds(pid_t pid);

typedef struct bench_hconn {
    int fd;
    char *buf;       /* the last response: headers then body, NUL after the body */
    size_t cap, len;
    size_t body_off, body_len;
} bench_hconn;

int bench_hconn_open(bench_hconn *h, int port);
void bench_hconn_close(bench_hconn *h);

/* One request; returns the HTTP status, or -1 when the connection failed
 * (the server went away). The body is bench_hbody(h), NUL-terminated. */
int bench_hreq(bench_hconn *h, const char *method, const char *path, const char *ctype,
               const void *body, size_t body_len);
const char *bench_hbody(const bench_hconn *h);

/* Creates an experiment named name (or finds its id) and a run in it;
 * writes the run id (<= 63 chars). 0 or -1. */
int bench_create_run(bench_hconn *h, const char *exp_name, char run_id[64]);

/* A native ingest frame (docs/api.md, "Native API") of one series: run,
 * key, n points (steps[i], ts[i], vals[i]), uncompressed. *out is
 * malloc'd (caller frees), *len its size. 0 or -1. */
int bench_frame_one(const char *run, const char *key, uint32_t n, const int64_t *steps,
                    const int64_t *ts, const double *vals, uint8_t **out, size_t *len);

#endif /* TALLY_BENCH_HTTP_H */
