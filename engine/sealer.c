/*
 * sealer.c — the sealer thread: turns frozen heads into blocks.
 *
 * The writer freezes a head when it fills (or at a checkpoint, or under
 * memory pressure) and queues its series here; the sealer sorts, encodes
 * (block.c), appends the block to the current segment and publishes it,
 * then frees the frozen buffer. Encoding is the costliest step of ingestion,
 * so moving it off the writer lets WAL writes, applying batches and encoding
 * blocks run on different cores.
 *
 * Invariants:
 *  (1) e->seal_pending counts frozen heads not yet sealed; it reaches 0 only
 *      when every frozen head is a published block (or sealing failed).
 *  (2) Frozen heads of one series are sealed oldest first, by this thread
 *      only (during recovery, before the thread starts, by the opener).
 *  (3) A sealing error is kept in e->seal_error and pauses writes; the
 *      frozen head stays readable and its points stay in the WAL. While it
 *      is set the sealer drops series from its queue without sealing them;
 *      tally__sealer_resume (the writer's probe) clears it and queues every
 *      series with a frozen head again.
 */
#include "alloc.h"
#include "internal.h"

void tally__sealer_enqueue(tally_engine *e, tally__series *s)
{
    pthread_mutex_lock(&e->seal_mu);
    e->seal_pending++;
    if (!s->seal_queued) {
        s->seal_queued = 1;
        s->next_seal = NULL;
        if (e->seal_tail)
            e->seal_tail->next_seal = s;
        else
            e->seal_head = s;
        e->seal_tail = s;
    }
    pthread_cond_signal(&e->seal_cv);
    pthread_mutex_unlock(&e->seal_mu);
}

/* Seals every frozen head of s; 0 or the first error. */
static int seal_series(tally_engine *e, tally__series *s)
{
    for (;;) {
        int rc = tally__series_seal_frozen(e, s);
        if (rc == 1)
            return 0;
        if (rc)
            return rc;
        pthread_mutex_lock(&e->seal_mu);
        e->seal_pending--;
        if (e->seal_pending == 0)
            pthread_cond_broadcast(&e->sealed_cv);
        pthread_mutex_unlock(&e->seal_mu);
    }
}

static void *sealer_main(void *arg)
{
    tally_engine *e = arg;
    pthread_mutex_lock(&e->seal_mu);
    for (;;) {
        while (!e->seal_head && !e->seal_stop)
            pthread_cond_wait(&e->seal_cv, &e->seal_mu);
        if (!e->seal_head && e->seal_stop)
            break;
        tally__series *s = e->seal_head;
        e->seal_head = s->next_seal;
        if (!e->seal_head)
            e->seal_tail = NULL;
        s->seal_queued = 0;
        int failed = e->seal_error != 0;
        pthread_mutex_unlock(&e->seal_mu);
        int rc = failed ? 0 : seal_series(e, s);
        pthread_mutex_lock(&e->seal_mu);
        if (rc && !e->seal_error) {
            e->seal_error = rc;
            pthread_cond_broadcast(&e->sealed_cv);
        }
    }
    pthread_mutex_unlock(&e->seal_mu);
    return NULL;
}

int tally__sealer_start(tally_engine *e)
{
    if (pthread_create(&e->sealer, NULL, sealer_main, e) != 0)
        return TALLY_ENOMEM;
    e->sealer_started = 1;
    return 0;
}

void tally__sealer_stop(tally_engine *e)
{
    if (!e->sealer_started)
        return;
    pthread_mutex_lock(&e->seal_mu);
    e->seal_stop = 1;
    pthread_cond_signal(&e->seal_cv);
    pthread_mutex_unlock(&e->seal_mu);
    pthread_join(e->sealer, NULL);
    e->sealer_started = 0;
}

int tally__sealer_drain(tally_engine *e)
{
    if (!e->sealer_started) {
        /* Recovery: no thread yet, so seal inline in queue order. */
        int rc = 0;
        while (e->seal_head && rc == 0) {
            tally__series *s = e->seal_head;
            e->seal_head = s->next_seal;
            if (!e->seal_head)
                e->seal_tail = NULL;
            s->seal_queued = 0;
            rc = seal_series(e, s);
        }
        return rc ? rc : e->seal_error;
    }
    pthread_mutex_lock(&e->seal_mu);
    while (e->seal_pending > 0 && !e->seal_error)
        pthread_cond_wait(&e->sealed_cv, &e->seal_mu);
    int rc = e->seal_error;
    pthread_mutex_unlock(&e->seal_mu);
    return rc;
}

void tally__sealer_resume(tally_engine *e)
{
    /* Clear the error first: the sealer skips (and drops from its queue)
     * every series it takes while seal_error is set. */
    pthread_mutex_lock(&e->seal_mu);
    e->seal_error = 0;
    pthread_mutex_unlock(&e->seal_mu);
    pthread_rwlock_rdlock(&e->dir_lock);
    for (size_t i = 0; i < e->n_series; i++) {
        tally__series *s = e->all_series[i];
        pthread_mutex_lock(&s->mu);
        int has_frozen = s->frozen != NULL;
        pthread_mutex_unlock(&s->mu);
        if (!has_frozen)
            continue;
        pthread_mutex_lock(&e->seal_mu);
        if (!s->seal_queued) {
            s->seal_queued = 1;
            s->next_seal = NULL;
            if (e->seal_tail)
                e->seal_tail->next_seal = s;
            else
                e->seal_head = s;
            e->seal_tail = s;
        }
        pthread_cond_signal(&e->seal_cv);
        pthread_mutex_unlock(&e->seal_mu);
    }
    pthread_rwlock_unlock(&e->dir_lock);
}
