/*
 * bulk.c — tally_downsample_bulk: one downsampling query over many series,
 * spread over a small fixed pool of worker threads.
 *
 *   caller --enqueue job--> queue (FIFO of jobs) <--claim one series index-- workers
 *     ^                                                 |
 *     +------ done_cv when done == n <------ tally_downsample(ids[i]) -> out[i]
 *                                            then each(ctx, i, &out[i]), if any
 *
 * The pool is created once, on the first bulk call that pays: one worker
 * per online CPU, at most BULK_MAX_WORKERS, and lives until the process
 * exits. A child made by fork() inherits no thread, so the pool remembers
 * the pid that started it and a child starts its own. Several callers may share it: their jobs queue in order and
 * each worker takes the next unclaimed series of the oldest job.
 *
 * Invariants:
 *  (1) Results land at the index of their id, so the output order is the
 *      input order whatever thread ran each series.
 *  (2) A job lives on its caller's stack; the caller returns only after
 *      done == n, i.e. after every claimed series finished, so no worker
 *      touches a job after its caller returned.
 *  (3) A job leaves the queue when its last index is claimed, so a worker
 *      never claims an index >= n.
 *  (4) On any error every result is freed and zeroed and the first error is
 *      returned: the caller never gets a partly filled array.
 *  (5) queue, next, done, rc, pool_pid and n_workers are guarded by pool_mu.
 */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "tally/query.h"

#define BULK_MAX_WORKERS 8
#define BULK_MIN_SERIES 2 /* below this the work runs in the calling thread */

typedef struct bulk_job {
    tally_engine *e;
    const tally_series_id *ids;
    size_t n;                  /* series */
    const tally_ds_req *req;
    tally_ds_result *out;      /* n results (1) */
    tally_ds_each_fn each;     /* or NULL */
    void *each_ctx;
    size_t next;               /* next unclaimed index (5) */
    size_t done;               /* finished series (5) */
    int rc;                    /* first error, or 0 (5) */
    pthread_cond_t done_cv;    /* signalled when done == n */
    struct bulk_job *next_job; /* queue link (5) */
} bulk_job;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;
static bulk_job *queue_head, *queue_tail; /* pool_mu */
static int n_workers;                     /* pool_mu: workers of this process */
static pid_t pool_pid;                    /* pool_mu: process that started them */

/* Series i of a bulk call: its downsampling, then the caller's callback. */
static int one_series(tally_engine *e, tally_series_id id, const tally_ds_req *req,
                      tally_ds_result *out, size_t i, tally_ds_each_fn each, void *ctx)
{
    int rc = tally_downsample(e, id, req, out);
    return rc == 0 && each ? each(ctx, i, out) : rc;
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool_mu);
    for (;;) {
        while (!queue_head)
            pthread_cond_wait(&work_cv, &pool_mu);
        bulk_job *j = queue_head;
        size_t i = j->next++;
        if (j->next == j->n) { /* (3) */
            queue_head = j->next_job;
            if (!queue_head)
                queue_tail = NULL;
        }
        pthread_mutex_unlock(&pool_mu);
        int rc = one_series(j->e, j->ids[i], j->req, &j->out[i], i, j->each, j->each_ctx);
        pthread_mutex_lock(&pool_mu);
        if (rc && !j->rc)
            j->rc = rc;
        if (++j->done == j->n)
            pthread_cond_signal(&j->done_cv);
    }
    return NULL;
}

/* Starts the workers if this process has none yet; returns how many run. */
static int pool_start(void)
{
    pthread_mutex_lock(&pool_mu);
    if (pool_pid != getpid()) {
        queue_head = queue_tail = NULL; /* a forked child's copy of its parent's queue */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        int want = cpus < 1 ? 1 : cpus > BULK_MAX_WORKERS ? BULK_MAX_WORKERS : (int)cpus;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        n_workers = 0;
        for (int i = 0; i < want; i++) {
            pthread_t t;
            if (pthread_create(&t, &attr, worker, NULL) != 0)
                break;
            n_workers++;
        }
        pthread_attr_destroy(&attr);
        pool_pid = getpid();
    }
    int n = n_workers;
    pthread_mutex_unlock(&pool_mu);
    return n;
}

int tally_downsample_bulk(tally_engine *e, const tally_series_id *ids, size_t n,
                          const tally_ds_req *req, tally_ds_result *out)
{
    return tally_downsample_bulk_each(e, ids, n, req, out, NULL, NULL);
}

int tally_downsample_bulk_each(tally_engine *e, const tally_series_id *ids, size_t n,
                               const tally_ds_req *req, tally_ds_result *out,
                               tally_ds_each_fn each, void *ctx)
{
    if (!e || !req || (n && (!ids || !out)))
        return TALLY_EINVAL;
    if (n)
        memset(out, 0, n * sizeof *out);
    int rc = 0;
    if (n < BULK_MIN_SERIES || pool_start() < 2) {
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = one_series(e, ids[i], req, &out[i], i, each, ctx);
    } else {
        bulk_job j;
        memset(&j, 0, sizeof j);
        j.e = e;
        j.ids = ids;
        j.n = n;
        j.req = req;
        j.out = out;
        j.each = each;
        j.each_ctx = ctx;
        pthread_cond_init(&j.done_cv, NULL);
        pthread_mutex_lock(&pool_mu);
        if (queue_tail)
            queue_tail->next_job = &j;
        else
            queue_head = &j;
        queue_tail = &j;
        pthread_cond_broadcast(&work_cv);
        while (j.done < j.n) /* (2) */
            pthread_cond_wait(&j.done_cv, &pool_mu);
        rc = j.rc;
        pthread_mutex_unlock(&pool_mu);
        pthread_cond_destroy(&j.done_cv);
    }
    if (rc) /* (4) */
        for (size_t i = 0; i < n; i++)
            tally_ds_result_free(&out[i]);
    return rc;
}
