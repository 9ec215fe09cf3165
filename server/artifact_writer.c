/*
 * artifact_writer.c — a file written by a thread of its own from a ring of
 * buffers (see artifact_writer.h for the invariants).
 *
 * The ring: slots [head, head + count) are queued for the thread, in order;
 * the slot after them, (head + count) % BUFS, is the one the caller fills.
 * The caller queues its slot when it is full (or at finish) and waits while
 * every slot is queued; the thread writes the slot at head and frees it.
 * Everything shared is read and written under mu; the thread alone touches
 * the file and the writeback counters.
 */
#include "artifact_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tally_file_writer {
    int fd;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;              /* any change of count, err, stopping */
    char *mem;                      /* TALLY_WRITER_BUFS x TALLY_WRITER_BUF */
    size_t len[TALLY_WRITER_BUFS];  /* bytes in each queued slot */
    unsigned head, count;           /* queued slots, under mu */
    int err;                        /* first -errno of a write, under mu */
    int stopping, cancelled;        /* under mu */
    unsigned cur;                   /* the caller's slot (caller only) */
    size_t fill;                    /* bytes in it (caller only) */
    size_t cap;                     /* bytes it takes (caller only; see slot_cap) */
    uint64_t written, kicked;       /* the thread's */
    int direct;                     /* the thread's: may write with O_DIRECT */
    int direct_on;                  /* the thread's: O_DIRECT is set on fd now */
};

void tally_writeback_kick(int fd, uint64_t *kicked, uint64_t written)
{
    if (written - *kicked >= TALLY_WRITEBACK_BYTES) {
        sync_file_range(fd, (off_t)*kicked, (off_t)(written - *kicked), SYNC_FILE_RANGE_WRITE);
        *kicked = written;
    }
}

int tally_write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static char *slot(tally_file_writer *w, unsigned i)
{
    return w->mem + (size_t)i * TALLY_WRITER_BUF;
}

/* Sets or clears O_DIRECT on the fd when it differs from what is set.
 * A file system that refuses it turns direct writing off for good. */
static void set_direct(tally_file_writer *w, int on)
{
    if (w->direct_on == on)
        return;
    int fl = fcntl(w->fd, F_GETFL);
    if (fl < 0 || fcntl(w->fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) != 0) {
        w->direct = 0;
        return; /* left as it was: buffered if setting failed */
    }
    w->direct_on = on;
}

/* Writes n bytes of a slot at the file's offset: the aligned part with
 * O_DIRECT when the offset is aligned (straight from the slot to the disk,
 * no page cache), the rest, or everything when direct writing is off or
 * refused, through the page cache. 0 or -errno. */
static int write_slot(tally_file_writer *w, const char *p, size_t n)
{
    while (n) {
        int direct = w->direct && w->written % TALLY_WRITER_ALIGN == 0 &&
                     n >= TALLY_WRITER_ALIGN && (uintptr_t)p % TALLY_WRITER_ALIGN == 0;
        set_direct(w, direct);
        direct = direct && w->direct_on;
        size_t k = direct ? n - n % TALLY_WRITER_ALIGN : n;
        uint64_t at = w->written;
        ssize_t r = write(w->fd, p, k);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (direct && errno == EINVAL) { /* alignment the device wants is coarser */
                w->direct = 0;
                continue;
            }
            return -errno;
        }
        p += r;
        n -= (size_t)r;
        w->written += (uint64_t)r;
        if (!direct) {
            tally_writeback_kick(w->fd, &w->kicked, w->written);
        } else { /* nothing of it waits in the page cache; what came before may */
            if (at > w->kicked)
                sync_file_range(w->fd, (off_t)w->kicked, (off_t)(at - w->kicked),
                                SYNC_FILE_RANGE_WRITE);
            w->kicked = w->written;
        }
    }
    return 0;
}

static void *writer_main(void *arg)
{
    tally_file_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->count == 0 && !w->stopping && !w->cancelled)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->cancelled || w->count == 0)
            break; /* cancelled, or stopping with nothing left */
        unsigned i = w->head;
        int failed = w->err != 0;
        pthread_mutex_unlock(&w->mu);
        int rc = 0;
        if (!failed) /* invariant (2): nothing more after an error */
            rc = write_slot(w, slot(w, i), w->len[i]);
        pthread_mutex_lock(&w->mu);
        if (rc && !w->err)
            w->err = rc;
        w->head = (w->head + 1) % TALLY_WRITER_BUFS;
        w->count--;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    set_direct(w, 0); /* the fd goes back to its owner as it came */
    return NULL;
}

int tally_file_writer_start(int fd, uint64_t written_before, uint64_t kicked_before, int direct,
                            tally_file_writer **out)
{
    *out = NULL;
    tally_file_writer *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->fd = fd;
    w->written = written_before;
    w->kicked = kicked_before;
    w->direct = direct;
    /* the first slot ends where the file's offset is aligned (invariant (4)) */
    w->cap = TALLY_WRITER_BUF - (size_t)(written_before % TALLY_WRITER_ALIGN);
    w->mem = aligned_alloc(TALLY_WRITER_ALIGN, (size_t)TALLY_WRITER_BUFS * TALLY_WRITER_BUF);
    if (!w->mem) {
        free(w);
        return -ENOMEM;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    int e = pthread_create(&w->th, NULL, writer_main, w);
    if (e) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w->mem);
        free(w);
        return -e;
    }
    *out = w;
    return 0;
}

/* Queues the caller's slot; with wait, waits for a free one to fill next.
 * 0 or the sticky error. */
static int queue_slot(tally_file_writer *w, int wait)
{
    pthread_mutex_lock(&w->mu);
    w->len[w->cur] = w->fill;
    w->count++;
    pthread_cond_broadcast(&w->cv);
    while (wait && w->count == TALLY_WRITER_BUFS)
        pthread_cond_wait(&w->cv, &w->mu);
    w->cur = (w->head + w->count) % TALLY_WRITER_BUFS;
    int err = w->err;
    pthread_mutex_unlock(&w->mu);
    w->fill = 0;
    w->cap = TALLY_WRITER_BUF;
    return err;
}

int tally_file_writer_put(tally_file_writer *w, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        size_t k = w->cap - w->fill;
        if (k > n)
            k = n;
        memcpy(slot(w, w->cur) + w->fill, p, k);
        w->fill += k;
        p += k;
        n -= k;
        if (w->fill == w->cap) {
            int err = queue_slot(w, 1);
            if (err)
                return err;
        }
    }
    return 0;
}

/* Stops the thread (cancel: without writing what is queued), frees w;
 * returns the first write error or 0. */
static int stop_and_free(tally_file_writer *w, int cancel)
{
    pthread_mutex_lock(&w->mu);
    if (cancel)
        w->cancelled = 1;
    w->stopping = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    int err = w->err; /* the thread has exited: no lock needed */
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->mem);
    free(w);
    return err;
}

int tally_file_writer_finish(tally_file_writer *w)
{
    if (w->fill)
        queue_slot(w, 0); /* a free slot is not needed: nothing more is put */
    return stop_and_free(w, 0);
}

void tally_file_writer_cancel(tally_file_writer *w)
{
    if (w)
        (void)stop_and_free(w, 1);
}
