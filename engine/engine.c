/*
 * engine.c — opening and closing a data directory, the append path and the
 * writer thread (group commit, apply, seal, checkpoint).
 *
 * Writer state machine (one thread, owns the WAL, heads and segments):
 *
 *   IDLE --queue non-empty--> GATHER --(group: wait <= window while more
 *     producers are active than requests taken)--> WRITE (one writev +
 *     fdatasync for the whole group) --> APPLY (heads; full ones go to the
 *     sealer thread, sealer.c)
 *     --> ACK (wake producers) --> CHECKPOINT if the live WAL is large,
 *     or asked --> IDLE.
 *
 * Failures (docs/engine.md, "Failures", has the reasoning):
 *
 *   WRITING --WAL write/fsync/roll, segment write, checkpoint write fails-->
 *     PAUSED: the group is not acknowledged (its sequence numbers are taken
 *     back, its WAL bytes [fail_lo, fail_hi) noted); appends fail at once
 *     with TALLY_ERETRY; reads go on.
 *   PAUSED --after retry_delay_ms (100 ms, doubling to 5 s)--> PROBE: zero
 *     and fdatasync the failed group's WAL bytes, roll to a new WAL file
 *     (preallocation proves there is room), let the sealer retry its frozen
 *     heads and drain. All succeed --> WRITING (a later checkpoint retries
 *     itself); any fails --> PAUSED with the delay doubled.
 *   WRITING --segment fsync fails, WAL fsync fails in async mode (pages the
 *     kernel may have dropped after acknowledging them), or applying a
 *     written record fails--> STOPPED: TALLY_EPOISONED until reopen, which
 *     replays the WAL.
 *
 * Invariants:
 *  (1) A producer is acknowledged only after its record is written (and,
 *      except in async mode, fdatasync'ed) and applied to the heads, so a
 *      reader that starts after the ack sees the points.
 *  (2) Records are written in sequence-number order; apply follows the same
 *      order, so replay rebuilds the same heads.
 *  (3) WAL files are deleted only after a checkpoint that covers them is
 *      durable (tally__checkpoint_write returned 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "block.h"
#include "internal.h"

#define GATHER_MAX_BYTES (64u << 20) /* at most this much WAL per write group */
#define SCRATCH_POOL_MAX 8           /* encoding buffers kept between appends */
#define SCRATCH_KEEP_MAX (64u << 20) /* larger ones are freed after use */
#define PROBE_FIRST_MS 100u          /* the first probe after a failure */
#define PROBE_MAX_MS 5000u           /* the longest wait between probes */

uint64_t tally__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void tally__log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tally engine: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void tally_engine_options_init(tally_engine_options *o)
{
    memset(o, 0, sizeof *o);
    o->durability = TALLY_DURABILITY_GROUP;
    o->group_window_us = 2000;
    o->async_interval_ms = 100;
    o->segment_bytes = 256ull << 20;
    o->wal_file_bytes = 64ull << 20;
    o->checkpoint_wal_bytes = 256ull << 20;
    o->memory_budget_bytes = 512ull << 20;
    o->block_points = 4096;
    o->map_trim_bytes = 0; /* never: a server sets its mapped budget */
    o->io_backend = TALLY_IO_AUTO;
}

static void timespec_after_ns(struct timespec *ts, uint64_t ns)
{
    clock_gettime(CLOCK_REALTIME, ts);
    uint64_t t = (uint64_t)ts->tv_nsec + ns;
    ts->tv_sec += (time_t)(t / 1000000000ull);
    ts->tv_nsec = (long)(t % 1000000000ull);
}

/* --- checkpoint (writer thread) ------------------------------------------ */

static int wal_sync(tally_engine *e)
{
    if (e->wal_fd < 0 || !e->wal_unsynced)
        return 0;
    uint64_t t0 = tally__now_ns();
    int rc = tally__io_sync(e->io, e->wal_fd, TALLY_IO_OP_WAL_SYNC);
    if (rc == 0) {
        e->wal_unsynced = 0;
        atomic_fetch_add(&e->fsyncs, 1);
        atomic_fetch_add(&e->fsync_ns, tally__now_ns() - t0);
    }
    e->last_sync_ns = tally__now_ns();
    return rc;
}

/* Hands every non-empty head to the sealer. */
static int freeze_all(tally_engine *e)
{
    for (size_t i = 0; i < e->n_series; i++) {
        int rc = tally__series_freeze(e, e->all_series[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* *sticky is set when the failure cannot be retried in place (a failed
 * fsync of data already acknowledged or published). */
static int do_checkpoint(tally_engine *e, int *sticky)
{
    *sticky = 0;
    int rc = wal_sync(e);
    if (rc) {
        *sticky = 1;
        return rc;
    }
    uint64_t covered = e->wal_number;
    rc = freeze_all(e);
    if (rc == 0)
        rc = tally__sealer_drain(e);
    if (rc == 0) {
        rc = tally__segment_sync_all(e);
        *sticky = rc != 0;
    }
    if (rc == 0)
        rc = tally__checkpoint_write(e, covered);
    if (rc)
        return rc;
    if (e->wal_fd >= 0) {
        close(e->wal_fd);
        e->wal_fd = -1;
    }
    for (uint64_t n = e->wal_first_live; n <= covered; n++) {
        char path[4096];
        tally__wal_path(e, n, path, sizeof path);
        unlink(path);
    }
    e->wal_first_live = covered + 1;
    e->live_wal_bytes = 0;
    atomic_fetch_add(&e->checkpoints, 1);
    return 0;
}

/* --- writer thread ------------------------------------------------------- */

typedef struct apply_ctx {
    tally_engine *e;
} apply_ctx;

static int apply_request(tally_engine *e, const tally__request *r)
{
    for (size_t i = 0; i < r->n_series; i++) {
        const tally_series_batch *b = &r->series[i];
        if (b->n_points == 0)
            continue;
        tally__series *s;
        int rc = tally__dir_get_or_create(e, b->run_id, b->run_id_len, b->key, b->key_len, &s);
        if (rc)
            return rc;
        rc = tally__series_append(e, s, b, e->wal_number);
        if (rc)
            return rc;
    }
    return 0;
}

static int paused_error(const tally_engine *e)
{
    return e->fail_sticky ? TALLY_EPOISONED : TALLY_ERETRY;
}

/* Writes, syncs and applies one group; returns the group's verdict. On a
 * failure *sticky says whether only a reopen can recover (see the top). */
static int process_group(tally_engine *e, tally__request *group, int *sticky)
{
    *sticky = 0;
    if (e->poisoned)
        return paused_error(e);
    size_t total = 0, n_recs = 0;
    int want_sync = e->opt.durability != TALLY_DURABILITY_ASYNC;
    for (tally__request *r = group; r; r = r->next) {
        if (r->is_sync)
            want_sync = 1;
        else {
            total += r->rec.len;
            n_recs++;
        }
    }
    int rc = 0;
    if (n_recs) {
        if (e->wal_fd < 0 || (e->wal_off + total > e->wal_alloc && e->wal_off > TALLY_WAL_FILE_HDR_SIZE)) {
            if (e->wal_fd >= 0)
                rc = wal_sync(e);
            if (rc) {
                *sticky = 1; /* async mode: acknowledged pages may be gone */
                return rc;
            }
            rc = tally__wal_roll(e);
            if (rc)
                return rc;
        }
        struct iovec local[64];
        struct iovec *iov = n_recs <= 64 ? local : tally__malloc(n_recs * sizeof *iov);
        if (!iov)
            return TALLY_ENOMEM;
        size_t k = 0;
        uint64_t first_seq = e->next_seq;
        for (tally__request *r = group; r; r = r->next) {
            if (r->is_sync)
                continue;
            tally__wal_seal_record(&r->rec, e->next_seq++);
            iov[k].iov_base = r->rec.buf;
            iov[k].iov_len = r->rec.len;
            k++;
        }
        uint64_t t0 = tally__now_ns();
        rc = tally__io_write(e->io, e->wal_fd, iov, (int)k, e->wal_off, want_sync,
                             TALLY_IO_OP_WAL_WRITE, TALLY_IO_OP_WAL_SYNC);
        if (iov != local)
            tally__free(iov);
        if (rc) {
            /* Not acknowledged: take the sequence numbers back and note the
             * bytes the group may have reached, for the probe to zero. In
             * async mode a failed write+fsync may also have lost earlier,
             * acknowledged records: only a reopen can tell. */
            e->next_seq = first_seq;
            e->fail_lo = e->wal_off;
            e->fail_hi = e->wal_off + total;
            *sticky = e->opt.durability == TALLY_DURABILITY_ASYNC && e->wal_unsynced && want_sync;
            return rc;
        }
        if (want_sync) {
            atomic_fetch_add(&e->fsyncs, 1);
            atomic_fetch_add(&e->fsync_ns, tally__now_ns() - t0);
            e->last_sync_ns = tally__now_ns();
            e->wal_unsynced = 0;
        } else {
            e->wal_unsynced = 1;
        }
        e->wal_off += total;
        e->live_wal_bytes += total;
        atomic_fetch_add(&e->wal_records, n_recs);
        for (tally__request *r = group; r && rc == 0; r = r->next)
            if (!r->is_sync)
                rc = apply_request(e, r);
        if (rc)
            *sticky = 1; /* written but not applied: heads differ from the WAL */
    } else if (want_sync) {
        rc = wal_sync(e);
        *sticky = rc != 0;
    }
    return rc;
}

/* Pauses writes after the failure rc (caller holds no lock). */
static void poison(tally_engine *e, int rc, int sticky)
{
    pthread_mutex_lock(&e->queue_mu);
    if (!e->poisoned) {
        e->poisoned = rc;
        atomic_fetch_add(&e->write_failures, 1);
        if (e->retry_delay_ms == 0)
            e->retry_delay_ms = PROBE_FIRST_MS;
        e->next_probe_ns = tally__now_ns() + (uint64_t)e->retry_delay_ms * 1000000ull;
        if (!sticky)
            tally__log("%s: write failed (%s); writes paused, probing the disk in %u ms", e->dir,
                       tally_strerror(rc), e->retry_delay_ms);
    }
    if (sticky && !e->fail_sticky) {
        e->fail_sticky = 1;
        tally__log("%s: write failed (%s); writes refused until the directory is reopened",
                   e->dir, tally_strerror(rc));
    }
    pthread_mutex_unlock(&e->queue_mu);
}

/* Zeroes the WAL bytes a failed group may have reached (cutting any growth
 * past the preallocation first) and fdatasyncs them, so that neither replay
 * nor a later record can meet a record that was never acknowledged. */
static int wal_clear_failed(tally_engine *e)
{
    if (e->wal_fd < 0 || e->fail_hi <= e->fail_lo)
        return 0;
    struct stat st;
    if (fstat(e->wal_fd, &st) != 0)
        return -errno;
    uint64_t size = (uint64_t)st.st_size;
    uint64_t keep = e->wal_alloc > e->fail_lo ? e->wal_alloc : e->fail_lo;
    int cut = 0;
    if (size > keep) {
        if (ftruncate(e->wal_fd, (off_t)keep) != 0)
            return -errno;
        size = keep;
        cut = 1;
    }
    uint64_t hi = e->fail_hi < size ? e->fail_hi : size;
    static const uint8_t zeros[65536];
    int rc = 0;
    for (uint64_t off = e->fail_lo; off < hi && rc == 0;) {
        size_t n = hi - off < sizeof zeros ? (size_t)(hi - off) : sizeof zeros;
        struct iovec iov = {(void *)zeros, n};
        rc = tally__io_write(e->io, e->wal_fd, &iov, 1, off, off + n >= hi,
                             TALLY_IO_OP_WAL_WRITE, TALLY_IO_OP_WAL_SYNC);
        off += n;
    }
    if (rc == 0 && cut && hi <= e->fail_lo)
        rc = tally__io_sync(e->io, e->wal_fd, TALLY_IO_OP_WAL_SYNC);
    if (rc == 0)
        e->fail_lo = e->fail_hi = 0;
    return rc;
}

/* The probe of a paused engine (writer thread, no lock held): undoes what a
 * failure may have left and proves the disk takes writes again. */
static int probe(tally_engine *e)
{
    int rc = wal_clear_failed(e);
    if (rc == 0)
        rc = tally__wal_roll(e); /* a fresh, preallocated WAL file */
    if (rc == 0) {
        tally__sealer_resume(e);
        rc = tally__sealer_drain(e);
    }
    return rc;
}

/* Runs a due probe; called and returns with queue_mu held. */
static void run_probe(tally_engine *e)
{
    pthread_mutex_unlock(&e->queue_mu);
    int rc = probe(e);
    pthread_mutex_lock(&e->queue_mu);
    if (rc == 0) {
        tally__log("%s: the disk takes writes again; writes resumed", e->dir);
        e->poisoned = 0;
        atomic_fetch_add(&e->write_recoveries, 1);
        pthread_cond_broadcast(&e->done_cv);
        return;
    }
    e->retry_delay_ms = e->retry_delay_ms * 2 > PROBE_MAX_MS ? PROBE_MAX_MS : e->retry_delay_ms * 2;
    e->next_probe_ns = tally__now_ns() + (uint64_t)e->retry_delay_ms * 1000000ull;
    if (rc != e->poisoned || e->retry_delay_ms < PROBE_MAX_MS)
        tally__log("%s: probe failed (%s); next in %u ms", e->dir, tally_strerror(rc),
                   e->retry_delay_ms);
}

static int probe_due(const tally_engine *e)
{
    return e->poisoned && !e->fail_sticky && !e->closing && tally__now_ns() >= e->next_probe_ns;
}

static void *writer_main(void *arg)
{
    tally_engine *e = arg;
    pthread_mutex_lock(&e->queue_mu);
    for (;;) {
        while (!e->queue_head && !e->closing && e->checkpoint_gen_wanted == e->checkpoint_gen_done) {
            if (e->poisoned && !e->fail_sticky) {
                /* Paused: sleep until the next probe is due. */
                if (probe_due(e))
                    break;
                struct timespec ts;
                uint64_t now = tally__now_ns();
                timespec_after_ns(&ts, e->next_probe_ns > now ? e->next_probe_ns - now : 0);
                pthread_cond_timedwait(&e->queue_cv, &e->queue_mu, &ts);
            } else if (e->opt.durability == TALLY_DURABILITY_ASYNC && e->wal_unsynced) {
                struct timespec ts;
                timespec_after_ns(&ts, (uint64_t)e->opt.async_interval_ms * 1000000ull);
                if (pthread_cond_timedwait(&e->queue_cv, &e->queue_mu, &ts) == ETIMEDOUT) {
                    pthread_mutex_unlock(&e->queue_mu);
                    int rc = wal_sync(e);
                    if (rc)
                        poison(e, rc, 1);
                    pthread_mutex_lock(&e->queue_mu);
                }
            } else {
                pthread_cond_wait(&e->queue_cv, &e->queue_mu);
            }
        }
        if (probe_due(e)) {
            run_probe(e);
            continue;
        }
        if (!e->queue_head && e->closing)
            break;
        /* Group commit: while other producers are encoding a record (inside
         * append, not yet queued), give them a short window to join this
         * group, bounded by group_window_us. Producers already queued or
         * waiting for an earlier group's verdict are not waited for. */
        if (e->queue_head && e->opt.durability == TALLY_DURABILITY_GROUP) {
            uint64_t deadline = tally__now_ns() + (uint64_t)e->opt.group_window_us * 1000ull;
            while (e->n_encoding > 0 && tally__now_ns() < deadline) {
                struct timespec ts;
                timespec_after_ns(&ts, 100000);
                pthread_cond_timedwait(&e->queue_cv, &e->queue_mu, &ts);
            }
        }
        tally__request *group = e->queue_head, *tail = group;
        size_t bytes = 0, taken = 0;
        while (tail && tail->next && bytes + tail->rec.len < GATHER_MAX_BYTES) {
            bytes += tail->rec.len;
            tail = tail->next;
            taken++;
        }
        if (group) {
            e->queue_head = tail->next;
            if (!e->queue_head)
                e->queue_tail = NULL;
            tail->next = NULL;
            e->queue_len -= taken + 1;
        }
        pthread_mutex_unlock(&e->queue_mu);

        int sticky = 0;
        int rc = group ? process_group(e, group, &sticky) : 0;
        if (rc && rc != TALLY_EPOISONED && rc != TALLY_ERETRY)
            poison(e, rc, sticky);
        else if (rc == 0 && group)
            e->retry_delay_ms = 0; /* a group went through: the next failure starts the backoff afresh */
        int ckpt_rc = 0, did_ckpt = 0;
        pthread_mutex_lock(&e->queue_mu);
        int want_ckpt = e->checkpoint_gen_wanted != e->checkpoint_gen_done;
        uint64_t gen = e->checkpoint_gen_wanted;
        pthread_mutex_unlock(&e->queue_mu);
        if (!e->poisoned && (want_ckpt || e->live_wal_bytes >= e->opt.checkpoint_wal_bytes)) {
            int ckpt_sticky;
            ckpt_rc = do_checkpoint(e, &ckpt_sticky);
            did_ckpt = 1;
            if (ckpt_rc)
                poison(e, ckpt_rc, ckpt_sticky);
        } else if (!e->poisoned && atomic_load(&e->head_bytes) > e->opt.memory_budget_bytes / 2) {
            /* Heads outgrew their share of the budget: hand them all to the sealer. */
            int src = freeze_all(e);
            if (src)
                poison(e, src, 1);
        }
        pthread_mutex_lock(&e->seal_mu);
        int seal_rc = e->seal_error;
        pthread_mutex_unlock(&e->seal_mu);
        if (seal_rc && !e->poisoned)
            poison(e, seal_rc, 0);
        pthread_mutex_lock(&e->queue_mu);
        for (tally__request *r = group; r;) {
            tally__request *next = r->next;
            r->result = rc;
            r->done = 1;
            r = next;
        }
        if (want_ckpt || did_ckpt) {
            if (want_ckpt) {
                e->checkpoint_result = did_ckpt ? ckpt_rc : (e->poisoned ? paused_error(e) : 0);
                e->checkpoint_gen_done = gen;
            }
        }
        pthread_cond_broadcast(&e->done_cv);
    }
    pthread_mutex_unlock(&e->queue_mu);
    return NULL;
}

/* Queues r and waits for the writer's verdict. With encoding set, the caller
 * was counted in n_encoding, which this leaves. */
static int submit(tally_engine *e, tally__request *r, int encoding)
{
    pthread_mutex_lock(&e->queue_mu);
    if (encoding)
        e->n_encoding--;
    if (e->closing) {
        pthread_mutex_unlock(&e->queue_mu);
        return TALLY_ECLOSED;
    }
    if (e->poisoned) {
        int rc = paused_error(e);
        pthread_mutex_unlock(&e->queue_mu);
        return rc;
    }
    if (e->queue_tail)
        e->queue_tail->next = r;
    else
        e->queue_head = r;
    e->queue_tail = r;
    e->queue_len++;
    pthread_cond_signal(&e->queue_cv);
    while (!r->done)
        pthread_cond_wait(&e->done_cv, &e->queue_mu);
    pthread_mutex_unlock(&e->queue_mu);
    return r->result;
}

int tally_engine_append(tally_engine *e, const tally_series_batch *series, size_t n_series)
{
    if (!e || !series)
        return TALLY_EINVAL;
    if (e->opt.read_only)
        return TALLY_EINVAL;
    for (size_t i = 0; i < n_series; i++) {
        int rc = tally__dir_check_collision(e, &series[i]);
        if (rc)
            return rc;
    }
    tally__request r = {0};
    r.series = series;
    r.n_series = n_series;
    pthread_mutex_lock(&e->queue_mu);
    e->n_encoding++;
    tally__wal_scratch *scratch = e->scratch_pool;
    if (scratch) {
        e->scratch_pool = scratch->next;
        e->n_scratch_pool--;
    }
    pthread_mutex_unlock(&e->queue_mu);
    if (!scratch)
        scratch = tally__calloc(1, sizeof *scratch);
    int rc = scratch ? tally__wal_encode_batch(series, n_series, scratch, &r.rec) : TALLY_ENOMEM;
    uint64_t charge = rc == 0 ? r.rec.raw_len : 0;
    if (rc == 0 && charge > e->opt.memory_budget_bytes / 2)
        rc = TALLY_ETOOBIG;
    if (rc == 0) {
        /* Back-pressure: wait (bounded) while queued batches and heads exceed the budget. */
        uint64_t deadline = tally__now_ns() + 5000000000ull;
        while (atomic_load(&e->memory_bytes) + charge > e->opt.memory_budget_bytes) {
            if (tally__now_ns() > deadline) {
                rc = TALLY_EBUSY;
                break;
            }
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (rc == 0) {
        atomic_fetch_add(&e->memory_bytes, charge);
        rc = submit(e, &r, 1);
        atomic_fetch_sub(&e->memory_bytes, charge);
    } else {
        pthread_mutex_lock(&e->queue_mu);
        e->n_encoding--;
        pthread_mutex_unlock(&e->queue_mu);
    }
    pthread_mutex_lock(&e->queue_mu);
    /* Keep a few buffers of moderate size for the next appends. */
    if (scratch && e->n_scratch_pool < SCRATCH_POOL_MAX && scratch->out_cap <= SCRATCH_KEEP_MAX) {
        scratch->next = e->scratch_pool;
        e->scratch_pool = scratch;
        e->n_scratch_pool++;
        scratch = NULL;
    }
    pthread_mutex_unlock(&e->queue_mu);
    tally__wal_scratch_free(scratch);
    return rc;
}

int tally_engine_sync(tally_engine *e)
{
    if (!e)
        return TALLY_EINVAL;
    if (e->opt.read_only)
        return 0;
    tally__request r = {0};
    r.is_sync = 1;
    return submit(e, &r, 0);
}

int tally_engine_checkpoint(tally_engine *e)
{
    if (!e)
        return TALLY_EINVAL;
    if (e->opt.read_only)
        return 0;
    pthread_mutex_lock(&e->queue_mu);
    if (e->poisoned) {
        int rc = paused_error(e);
        pthread_mutex_unlock(&e->queue_mu);
        return rc;
    }
    uint64_t gen = ++e->checkpoint_gen_wanted;
    pthread_cond_signal(&e->queue_cv);
    while (e->checkpoint_gen_done < gen)
        pthread_cond_wait(&e->done_cv, &e->queue_mu);
    int rc = e->checkpoint_result;
    pthread_mutex_unlock(&e->queue_mu);
    return rc;
}

/* --- open and close ------------------------------------------------------ */

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Removes segment files a checkpoint does not reference (written after it). */
static void remove_unreferenced_segments(tally_engine *e)
{
    for (uint32_t n = e->n_segments + 1;; n++) {
        char path[4096];
        tally__segment_path(e, n, path, sizeof path);
        if (unlink(path) != 0)
            break;
    }
}

static void engine_free(tally_engine *e)
{
    tally__sealer_stop(e);
    while (e->scratch_pool) {
        tally__wal_scratch *next = e->scratch_pool->next;
        tally__wal_scratch_free(e->scratch_pool);
        e->scratch_pool = next;
    }
    tally__segment_close_all(e);
    tally__dir_free(e);
    tally__io_free(e->io);
    tally__io_free(e->seg_io);
    tally__free(e->seal_steps);
    tally__free(e->seal_ts);
    tally__free(e->seal_vals);
    tally__free(e->seal_out);
    tally__free(e->seal_scratch);
    if (e->wal_fd >= 0)
        close(e->wal_fd);
    if (e->dir_fd >= 0)
        close(e->dir_fd);
    if (e->lock_fd >= 0)
        close(e->lock_fd);
    pthread_mutex_destroy(&e->queue_mu);
    pthread_cond_destroy(&e->queue_cv);
    pthread_cond_destroy(&e->done_cv);
    pthread_mutex_destroy(&e->seal_mu);
    pthread_cond_destroy(&e->seal_cv);
    pthread_cond_destroy(&e->sealed_cv);
    tally__free(e->dir);
    tally__free(e);
}

static int check_options(const tally_engine_options *o)
{
    if ((int)o->durability < 0 || o->durability > TALLY_DURABILITY_ASYNC)
        return TALLY_EINVAL;
    if (o->block_points < 128 || o->block_points > 65536)
        return TALLY_EINVAL;
    if (o->segment_bytes < (1u << 20) || o->wal_file_bytes < (1u << 16))
        return TALLY_EINVAL;
    if (o->memory_budget_bytes < (8u << 20))
        return TALLY_EINVAL;
    if ((int)o->io_backend < 0 || o->io_backend > TALLY_IO_PWRITE)
        return TALLY_EINVAL;
    return 0;
}

int tally_engine_open(const char *dir, const tally_engine_options *opts, tally_engine **out)
{
    if (!dir || !*dir || !out)
        return TALLY_EINVAL;
    tally_engine_options o;
    if (opts)
        o = *opts;
    else
        tally_engine_options_init(&o);
    int rc = check_options(&o);
    if (rc)
        return rc;
    tally_engine *e = tally__calloc(1, sizeof *e);
    if (!e)
        return TALLY_ENOMEM;
    e->opt = o;
    e->lock_fd = e->dir_fd = e->wal_fd = -1;
    e->dir = tally__strndup(dir, strlen(dir));
    pthread_mutex_init(&e->queue_mu, NULL);
    pthread_cond_init(&e->queue_cv, NULL);
    pthread_cond_init(&e->done_cv, NULL);
    pthread_mutex_init(&e->seal_mu, NULL);
    pthread_cond_init(&e->seal_cv, NULL);
    pthread_cond_init(&e->sealed_cv, NULL);
    if (!e->dir) {
        engine_free(e);
        return TALLY_ENOMEM;
    }
    char path[4096];
    if (!o.read_only) {
        rc = make_dir(dir);
        snprintf(path, sizeof path, "%s/wal", dir);
        if (rc == 0)
            rc = make_dir(path);
        snprintf(path, sizeof path, "%s/seg", dir);
        if (rc == 0)
            rc = make_dir(path);
        if (rc) {
            engine_free(e);
            return rc;
        }
    }
    e->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    snprintf(path, sizeof path, "%s/LOCK", dir);
    e->lock_fd = o.read_only ? open(path, O_RDONLY | O_CLOEXEC)
                             : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (e->dir_fd < 0 || (e->lock_fd < 0 && !o.read_only)) {
        rc = -errno;
        engine_free(e);
        return rc;
    }
    if (e->lock_fd >= 0 && flock(e->lock_fd, (o.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        engine_free(e);
        return TALLY_ELOCKED;
    }
    uint32_t bp = o.block_points;
    e->seal_steps = tally__malloc((size_t)bp * 8);
    e->seal_ts = tally__malloc((size_t)bp * 8);
    e->seal_vals = tally__malloc((size_t)bp * 8);
    e->seal_out = tally__malloc(tally__block_bound(bp));
    e->seal_scratch = tally__malloc(tally__block_encode_scratch_size(bp));
    if (!e->seal_steps || !e->seal_ts || !e->seal_vals || !e->seal_out || !e->seal_scratch) {
        engine_free(e);
        return TALLY_ENOMEM;
    }
    rc = tally__io_new(o.io_backend, o.fault_hook, o.fault_ctx, &e->io);
    if (rc == 0)
        rc = tally__io_new(o.io_backend, o.fault_hook, o.fault_ctx, &e->seg_io);
    if (rc == 0)
        rc = tally__dir_init(e);
    uint64_t covered = 0, next_seq = 1;
    if (rc == 0)
        rc = tally__checkpoint_load(e, &covered, &next_seq);
    if (rc == 0 && !o.read_only)
        remove_unreferenced_segments(e);
    if (rc == 0 && !o.read_only)
        rc = tally__sealer_start(e); /* seals replayed heads while replay goes on */
    if (rc == 0)
        rc = tally__recover_wal(e, covered, next_seq);
    if (rc == 0 && !o.read_only) {
        rc = pthread_create(&e->writer, NULL, writer_main, e) ? TALLY_ENOMEM : 0;
        e->writer_started = rc == 0;
    }
    if (rc) {
        engine_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

int tally_engine_close(tally_engine *e)
{
    if (!e)
        return 0;
    int rc = 0;
    if (e->writer_started) {
        /* Final checkpoint first, then stop the writer. */
        rc = tally_engine_checkpoint(e);
        pthread_mutex_lock(&e->queue_mu);
        e->closing = 1;
        pthread_cond_signal(&e->queue_cv);
        pthread_mutex_unlock(&e->queue_mu);
        pthread_join(e->writer, NULL);
        if (rc == 0 && e->poisoned)
            rc = e->poisoned;
    }
    engine_free(e);
    return rc;
}

int tally_engine_stats_get(tally_engine *e, tally_engine_stats *out)
{
    if (!e || !out)
        return TALLY_EINVAL;
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&e->dir_lock);
    out->n_series = e->n_series;
    pthread_rwlock_unlock(&e->dir_lock);
    out->n_points = atomic_load(&e->n_points_total);
    out->n_head_points = atomic_load(&e->n_head_points);
    out->n_blocks = atomic_load(&e->n_blocks_total);
    out->segment_bytes = atomic_load(&e->segment_bytes);
    out->wal_records = atomic_load(&e->wal_records);
    out->fsyncs = atomic_load(&e->fsyncs);
    out->fsync_ns_total = atomic_load(&e->fsync_ns);
    out->checkpoints = atomic_load(&e->checkpoints);
    out->recovered_records = atomic_load(&e->recovered_records);
    out->memory_bytes = atomic_load(&e->memory_bytes);
    out->map_trims = atomic_load(&e->map_trims);
    out->io_uring = tally__io_is_uring(e->io);
    pthread_mutex_lock(&e->queue_mu);
    out->n_segments = __atomic_load_n(&e->n_segments, __ATOMIC_RELAXED);
    out->wal_bytes = atomic_load(&e->live_wal_bytes);
    out->queue_depth = e->queue_len;
    out->poisoned = e->poisoned;
    out->writes_paused = !e->poisoned ? 0 : e->fail_sticky ? 2 : 1;
    if (out->writes_paused == 1) {
        uint64_t now = tally__now_ns();
        out->retry_in_ms = e->next_probe_ns > now ? (uint32_t)((e->next_probe_ns - now) / 1000000u) : 0;
    }
    out->write_failures = atomic_load(&e->write_failures);
    out->write_recoveries = atomic_load(&e->write_recoveries);
    pthread_mutex_unlock(&e->queue_mu);
    return 0;
}
