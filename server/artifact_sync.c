/*
 * artifact_sync.c — the background syncer of artifact uploads
 * (artifact_sync.h): a bounded ring of (file, directory, replaced file)
 * descriptors and one thread that fsyncs them in batches.
 */
#include "artifact_sync.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct entry {
    int file_fd, dir_fd;
    int old_fd;               /* the replaced file, closed after the batch, or -1 */
    int failed;               /* set by sync_batch: the file's or the directory's fsync failed */
    int dir_failed;           /* set by sync_batch: the directory's fsync failed */
} entry;

struct tally_artifact_syncer {
    pthread_mutex_t mu;
    pthread_cond_t wake;      /* an entry arrived, or stopping */
    entry *ring;              /* capacity entries */
    size_t capacity, head, count;
    entry *batch;             /* the thread's (or the drain's) working copy */
    int stopping;             /* no more pushes; the thread drains and exits */
    int thread_started;
    pthread_t thread;
    tally_artifact_sync_stats st;
};

int tally_artifact_syncer_new(size_t capacity, tally_artifact_syncer **out)
{
    *out = NULL;
    if (capacity == 0)
        return -EINVAL;
    tally_artifact_syncer *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->ring = calloc(capacity, sizeof *s->ring);
    s->batch = calloc(capacity, sizeof *s->batch);
    if (!s->ring || !s->batch) {
        free(s->ring);
        free(s->batch);
        free(s);
        return -ENOMEM;
    }
    s->capacity = capacity;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    *out = s;
    return 0;
}

int tally_artifact_syncer_push(tally_artifact_syncer *s, int file_fd, int dir_fd, int old_fd)
{
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->stopping) {
        rc = -ESHUTDOWN;
    } else if (s->count == s->capacity) {
        s->st.refused++;
        rc = -EAGAIN;
    } else {
        s->ring[(s->head + s->count) % s->capacity] = (entry){file_fd, dir_fd, old_fd, 0, 0};
        s->count++;
        s->st.pushed++;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Logs one failed fsync (invariant 3): the name is gone from our hands, the
 * inode identifies the file. */
static void log_failure(const char *what, int fd, int err)
{
    struct stat st;
    unsigned long long dev = 0, ino = 0;
    if (fstat(fd, &st) == 0) {
        dev = (unsigned long long)st.st_dev;
        ino = (unsigned long long)st.st_ino;
    }
    char line[320];
    int n = snprintf(line, sizeof line,
                     "{\"level\":\"error\",\"component\":\"artifact-sync\",\"message\":\"fsync of an "
                     "acknowledged artifact %s failed: %s\",\"dev\":%llu,\"inode\":%llu}\n",
                     what, strerror(err), dev, ino);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
}

/* fsyncs and closes n entries of batch: every file, then every distinct
 * directory once. Returns how many entries failed. */
static uint64_t sync_batch(entry *batch, size_t n)
{
    uint64_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (fsync(batch[i].file_fd) != 0) {
            log_failure("file", batch[i].file_fd, errno);
            batch[i].failed = 1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct stat di;
        size_t same = i; /* an earlier entry of the same directory, or i */
        if (fstat(batch[i].dir_fd, &di) == 0) {
            for (size_t j = 0; j < i && same == i; j++) {
                struct stat dj;
                if (fstat(batch[j].dir_fd, &dj) == 0 && dj.st_dev == di.st_dev &&
                    dj.st_ino == di.st_ino)
                    same = j;
            }
        }
        if (same != i) {
            batch[i].dir_failed = batch[same].dir_failed;
        } else if (fsync(batch[i].dir_fd) != 0) {
            log_failure("directory", batch[i].dir_fd, errno);
            batch[i].dir_failed = 1;
        }
        batch[i].failed |= batch[i].dir_failed;
    }
    for (size_t i = 0; i < n; i++) {
        failed += (uint64_t)batch[i].failed;
        close(batch[i].file_fd);
        close(batch[i].dir_fd);
        if (batch[i].old_fd >= 0)
            close(batch[i].old_fd); /* frees the replaced file here, not before the 200 */
    }
    return failed;
}

/* Moves everything queued into s->batch; called with mu held. */
static size_t take_all(tally_artifact_syncer *s)
{
    size_t n = s->count;
    for (size_t i = 0; i < n; i++)
        s->batch[i] = s->ring[(s->head + i) % s->capacity];
    s->head = (s->head + n) % s->capacity;
    s->count = 0;
    return n;
}

static void *sync_loop(void *arg)
{
    tally_artifact_syncer *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->count == 0 && !s->stopping)
            pthread_cond_wait(&s->wake, &s->mu);
        if (s->count == 0 && s->stopping)
            break;
        size_t n = take_all(s);
        pthread_mutex_unlock(&s->mu);
        /* Pushes go on while this batch syncs: they form the next batch. */
        uint64_t failed = sync_batch(s->batch, n);
        pthread_mutex_lock(&s->mu);
        s->st.synced += n - failed;
        s->st.failed += failed;
        s->st.batches++;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int tally_artifact_syncer_start(tally_artifact_syncer *s)
{
    int rc = pthread_create(&s->thread, NULL, sync_loop, s);
    if (rc)
        return -rc;
    s->thread_started = 1;
    return 0;
}

void tally_artifact_syncer_stats(tally_artifact_syncer *s, tally_artifact_sync_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->queued = s->count;
    pthread_mutex_unlock(&s->mu);
}

uint64_t tally_artifact_syncer_stop(tally_artifact_syncer *s, tally_artifact_sync_stats *final)
{
    if (final)
        memset(final, 0, sizeof *final);
    if (!s)
        return 0;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    if (s->thread_started)
        pthread_join(s->thread, NULL); /* it drains before it exits */
    /* Never started (or the thread is gone): drain here. */
    size_t n = take_all(s);
    if (n) {
        uint64_t failed = sync_batch(s->batch, n);
        s->st.synced += n - failed;
        s->st.failed += failed;
        s->st.batches++;
    }
    uint64_t failed_total = s->st.failed;
    if (final)
        *final = s->st;
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->mu);
    free(s->ring);
    free(s->batch);
    free(s);
    return failed_total;
}
