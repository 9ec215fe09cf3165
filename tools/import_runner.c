/*
 * import_runner.c — runs an importer's per-run tasks on a few threads and
 * draws the progress line (runs, with rate and ETA) from the main thread.
 * Tasks are handed out by an atomic index, so a slow run never holds up
 * the others; the first failure sets c->failed and the rest stop taking
 * work.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "import_sources.h"
#include "progress.h"

typedef struct runner {
    import_ctx *c;
    size_t n;
    import_task_fn fn;
    void *arg;
    atomic_size_t next;     /* next task index to hand out */
    atomic_size_t finished; /* tasks completed (ok or not) */
    atomic_int active;      /* worker threads still running */
} runner;

static void *worker(void *p)
{
    runner *r = p;
    for (;;) {
        if (atomic_load(&r->c->failed))
            break;
        size_t i = atomic_fetch_add(&r->next, 1);
        if (i >= r->n)
            break;
        if (r->fn(r->c, i, r->arg) != 0)
            atomic_store(&r->c->failed, 1);
        atomic_fetch_add(&r->finished, 1);
    }
    atomic_fetch_sub(&r->active, 1);
    return NULL;
}

int import_run_tasks(import_ctx *c, size_t n, import_task_fn fn, void *arg, const char *label,
                     int quiet)
{
    runner r = {.c = c, .n = n, .fn = fn, .arg = arg};
    atomic_init(&r.next, 0);
    atomic_init(&r.finished, 0);
    int nt = c->threads;
    if ((size_t)nt > n)
        nt = n ? (int)n : 1;
    atomic_init(&r.active, nt);
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    if (!th) {
        fprintf(stderr, "tally import: out of memory\n");
        return 1;
    }
    tally_progress pr;
    tally_progress_start(&pr, label, "runs", n, quiet);
    int started = 0;
    for (; started < nt; started++)
        if (pthread_create(&th[started], NULL, worker, &r) != 0)
            break;
    if (started < nt) /* fewer threads than asked: the ones running do it all */
        atomic_fetch_sub(&r.active, nt - started);
    if (started == 0)
        worker(&r);
    size_t shown = 0;
    while (atomic_load(&r.active) > 0) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        size_t f = atomic_load(&r.finished);
        tally_progress_add(&pr, f - shown);
        shown = f;
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
    tally_progress_add(&pr, atomic_load(&r.finished) - shown);
    tally_progress_finish(&pr);
    return atomic_load(&c->failed) ? 1 : 0;
}
