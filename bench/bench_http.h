/*
 * bench_http.h — what the server-level suites (http, ui, artifacts,
 * registry, crash, soak) share: `tally serve` as a child on a data
 * directory that may outlive it (start, SIGTERM or SIGKILL, start again),
 * its RSS and open files, a minimal HTTP/1.1 keep-alive client over plain
 * sockets, and the encoder of native ingest frames.
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

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct bench_server {
    pid_t pid;
    int port;
} bench_server;

/* Starts the `tally` binary next to tally-bench on data_dir with extra
 * arguments (NULL-terminated list, may be NULL); its stderr goes to
 * log_path (appended), or stays tally-bench's when log_path is NULL.
 * 0 or -1 (message on stderr). */
int bench_server_start(bench_server *s, const char *data_dir, const char *log_path,
                       const char *const *extra_args);

/* Sends sig (SIGTERM: graceful; SIGKILL: crash) and reaps the child.
 * Returns its wait status. */
int bench_server_stop(bench_server *s, int sig);

/* The child's resident set in MiB and its open file descriptors (0 / -1 if
 * unreadable). bench_proc_status_mib reads any kB field of
 * /proc/<pid>/status by name ("VmRSS", "RssAnon", ...), 0 if absent. */
double bench_proc_rss_mib(pid_t pid);
double bench_proc_status_mib(pid_t pid, const char *field);
int bench_proc_open_fds(pid_t pid);

/* Peak VmRSS of a process while something runs: a thread samples it every
 * 10 ms from start to stop. */
typedef struct bench_rss_sampler {
    pthread_t th;
    pid_t pid;
    atomic_int stop;
    double peak; /* MiB */
} bench_rss_sampler;
void bench_rss_sampler_start(bench_rss_sampler *s, pid_t pid);
/* Stops the sampling; the peak in MiB. */
double bench_rss_sampler_stop(bench_rss_sampler *s);

typedef struct bench_hconn {
    int fd;
    char *buf;       /* the last response: headers then body, NUL after the body */
    size_t cap, len;
    size_t body_off, body_len;
    const char *auth; /* Authorization header value sent with every request, or
                         NULL; set it after bench_hconn_open */
} bench_hconn;

int bench_hconn_open(bench_hconn *h, int port);
void bench_hconn_close(bench_hconn *h);

/* One request; returns the HTTP status, or -1 when the connection failed
 * (the server went away). The body is bench_hbody(h), NUL-terminated. */
int bench_hreq(bench_hconn *h, const char *method, const char *path, const char *ctype,
               const void *body, size_t body_len);
const char *bench_hbody(const bench_hconn *h);

/* Streaming, for bodies too large to hold in memory. bench_hreq_file sends
 * size bytes of file_fd (from offset 0) as the body with sendfile(2) and
 * reads the answer as bench_hreq does. bench_hreq_sink sends a request
 * without a body and hands the answer's body to sink in pieces of at most
 * piece bytes as they arrive (bench_hbody is then empty). Both return the
 * status, or -1. */
int bench_hreq_file(bench_hconn *h, const char *method, const char *path, const char *ctype,
                    int file_fd, uint64_t size);
typedef void (*bench_hsink)(void *arg, const void *p, size_t n);
int bench_hreq_sink(bench_hconn *h, const char *method, const char *path, size_t piece,
                    bench_hsink sink, void *arg);

/* Creates an experiment named name (or finds its id) and a run in it;
 * writes the run id (<= 63 chars). 0 or -1. */
int bench_create_run(bench_hconn *h, const char *exp_name, char run_id[64]);

/* A native ingest frame (docs/api.md, "Native API"), uncompressed, built
 * in place: bench_frame_begin empties f (keeping its memory), each
 * bench_frame_series appends a record of n points of (run, key) and points
 * *steps, *ts, *vals at its three columns for the caller to fill (valid
 * until the next append), bench_frame_end writes the header (counts, sizes,
 * XXH3 of the payload). f->p, f->len are then the frame to send.
 * bench_frame_free releases it. 0 or -1 (out of memory). */
typedef struct bench_frame {
    uint8_t *p;
    size_t len, cap;
    uint32_t n_series, n_points;
} bench_frame;

int bench_frame_begin(bench_frame *f);
int bench_frame_series(bench_frame *f, const char *run, const char *key, uint32_t n,
                       int64_t **steps, int64_t **ts, double **vals);
void bench_frame_end(bench_frame *f);
void bench_frame_free(bench_frame *f);

/* A native ingest frame of one series: run, key, n points (steps[i],
 * ts[i], vals[i]), uncompressed. *out is malloc'd (caller frees), *len its
 * size. 0 or -1. */
int bench_frame_one(const char *run, const char *key, uint32_t n, const int64_t *steps,
                    const int64_t *ts, const double *vals, uint8_t **out, size_t *len);

#endif /* TALLY_BENCH_HTTP_H */
