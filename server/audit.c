/*
 * audit.c — the batched audit log writer (audit.h).
 *
 * State, under one mutex:
 *   q[0..n)        queued records (each owns one malloc'd block of strings)
 *   queued_seq     records ever queued
 *   done_seq       records ever committed (or given up on after an error)
 * The writer swaps the queue out, commits it without the lock held, then
 * advances done_seq and wakes waiters (sync callers, producers held back by
 * a full queue).
 */
#include "audit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLUSH_MS 20
#define BATCH 512
#define MAX_QUEUED 65536

struct tally_audit {
    tally_store *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;         /* the writer: work or stop */
    pthread_cond_t done;         /* waiters: done_seq moved */
    tally_audit_record *q;       /* queued records */
    size_t n, cap;
    uint64_t queued_seq, done_seq;
    uint64_t sync_wanted;        /* a sync waits for done_seq >= this */
    int stopping;
    int last_error;              /* store code of the last failed commit, 0 */
};

static void free_record(tally_audit_record *r)
{
    free((void *)r->username); /* the one block holding every string */
}

/* Copies r's strings into one block. */
static int copy_record(tally_audit_record *dst, const tally_audit_record *r)
{
    const char *f[6] = {r->username, r->method, r->route, r->path, r->resource, r->remote};
    size_t len[6], total = 0;
    for (int i = 0; i < 6; i++) {
        len[i] = f[i] ? strlen(f[i]) : 0;
        total += len[i] + 1;
    }
    char *b = malloc(total);
    if (!b)
        return -1;
    const char *out[6];
    size_t o = 0;
    for (int i = 0; i < 6; i++) {
        if (len[i])
            memcpy(b + o, f[i], len[i]);
        b[o + len[i]] = 0;
        out[i] = b + o;
        o += len[i] + 1;
    }
    *dst = *r;
    dst->username = out[0];
    dst->method = out[1];
    dst->route = out[2];
    dst->path = out[3];
    dst->resource = out[4];
    dst->remote = out[5];
    return 0;
}

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += ms * 1000000L;
    ts->tv_sec += ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

static void *writer_main(void *arg)
{
    tally_audit *a = arg;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->n && !a->stopping)
            pthread_cond_wait(&a->wake, &a->lock);
        if (!a->n && a->stopping)
            break;
        /* Let a batch gather, unless someone waits or it is big already. */
        if (!a->stopping && a->sync_wanted <= a->done_seq && a->n < BATCH) {
            struct timespec ts;
            deadline_in(&ts, FLUSH_MS);
            pthread_cond_timedwait(&a->wake, &a->lock, &ts);
        }
        tally_audit_record *batch = a->q;
        size_t n = a->n;
        a->q = NULL;
        a->n = a->cap = 0;
        pthread_mutex_unlock(&a->lock);

        char err[512] = "";
        int rc = tally_store_audit_append_many(a->store, batch, n, err, sizeof err);
        if (rc != 0)
            fprintf(stderr,
                    "{\"level\":\"error\",\"component\":\"audit\",\"message\":\"%zu audit records "
                    "not written: %s\"}\n",
                    n, err);
        for (size_t i = 0; i < n; i++)
            free_record(&batch[i]);
        free(batch);

        pthread_mutex_lock(&a->lock);
        a->done_seq += n;
        a->last_error = rc;
        pthread_cond_broadcast(&a->done);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

int tally_audit_open(tally_store *store, tally_audit **out)
{
    *out = NULL;
    tally_audit *a = calloc(1, sizeof *a);
    if (!a)
        return -1;
    a->store = store;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake, NULL);
    pthread_cond_init(&a->done, NULL);
    if (pthread_create(&a->thread, NULL, writer_main, a) != 0) {
        pthread_cond_destroy(&a->wake);
        pthread_cond_destroy(&a->done);
        pthread_mutex_destroy(&a->lock);
        free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void tally_audit_close(tally_audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stopping = 1;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    pthread_cond_destroy(&a->wake);
    pthread_cond_destroy(&a->done);
    pthread_mutex_destroy(&a->lock);
    free(a->q);
    free(a);
}

int tally_audit_add(tally_audit *a, const tally_audit_record *r)
{
    tally_audit_record copy;
    if (copy_record(&copy, r) != 0)
        goto sync_write;
    pthread_mutex_lock(&a->lock);
    while (a->n >= MAX_QUEUED && !a->stopping)
        pthread_cond_wait(&a->done, &a->lock);
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        tally_audit_record *q = realloc(a->q, nc * sizeof *q);
        if (!q) {
            pthread_mutex_unlock(&a->lock);
            free_record(&copy);
            goto sync_write;
        }
        a->q = q;
        a->cap = nc;
    }
    a->q[a->n++] = copy;
    a->queued_seq++;
    if (a->n == 1 || a->n >= BATCH)
        pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    return 0;
sync_write: {
    char err[512] = "";
    if (tally_store_audit_append(a->store, r, err, sizeof err) != 0) {
        fprintf(stderr,
                "{\"level\":\"error\",\"component\":\"audit\",\"message\":\"audit record lost "
                "(out of memory): %s\"}\n",
                err);
        return -1;
    }
    return 0;
}
}

int tally_audit_sync(tally_audit *a)
{
    pthread_mutex_lock(&a->lock);
    uint64_t want = a->queued_seq;
    if (want > a->sync_wanted)
        a->sync_wanted = want;
    pthread_cond_signal(&a->wake);
    while (a->done_seq < want)
        pthread_cond_wait(&a->done, &a->lock);
    int rc = a->last_error;
    pthread_mutex_unlock(&a->lock);
    return rc;
}
