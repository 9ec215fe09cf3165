/*
 * internal.h — the engine's shared state, private to engine/. Each part says
 * which lock guards it; the memory model is written down here once.
 *
 * Threads:
 *   producers  call tally_engine_append: encode a WAL record in their own
 *              thread, queue it, wait for the writer's verdict.
 *   writer     one thread: writes queued records to the WAL (group commit),
 *              applies them to head buffers, freezes full heads, checkpoints.
 *   sealer     one thread: encodes frozen heads into blocks, appends them to
 *              segments and publishes them (sealer.c).
 *   readers    look series up, take snapshots, decode blocks from the mmap.
 *
 * Locks and what they guard (take them in this order, never the reverse):
 *   e->dir_lock (rwlock)  the series table, the run/key indexes, e->all_series.
 *                         Readers hold it shared; the writer takes it
 *                         exclusively only to insert a series.
 *   s->mu (mutex)         one series' head buffer, block list and totals.
 *                         Held by the writer while appending points or
 *                         publishing a block, by readers while copying.
 *   e->queue_mu (mutex)   the request queue, the poison state, counters that
 *                         producers read.
 *   e->seal_mu (mutex)    the seal queue and the count of frozen heads not
 *                         yet sealed. Never held together with s->mu.
 *
 * Memory model (why readers never see a torn block):
 *  (1) Only the writer mutates heads and the WAL; only the sealer appends to
 *      segments and block lists, except that the writer syncs segments and
 *      reads block lists during a checkpoint, when no frozen head is pending
 *      (the sealer is idle; e->seal_mu orders the two).
 *  (2) The sealer writes a block's bytes to its segment file (pwrite or
 *      io_uring; the page cache is shared with the MAP_SHARED read mapping)
 *      and only then, under s->mu, appends the block's reference. A reader
 *      that sees the reference under s->mu therefore sees the bytes.
 *  (3) Segment mappings are created before any reference into them is
 *      published and unmapped only at close; segment slots are written once
 *      (release) and read with acquire.
 *  (4) Series structs, their names and ids are immutable after insertion
 *      and freed only at close, so pointers from lookups stay valid.
 */
#ifndef TALLY_INTERNAL_H
#define TALLY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "io.h"
#include "tally/engine.h"
#include "wal.h"

#define TALLY_SEG_PAGE 1024u        /* segment slots per page */
#define TALLY_SEG_PAGES 1024u       /* pages: at most 1 Mi segments */

/* Where a sealed block lives, and its range (kept in memory and in the
 * checkpoint so queries choose blocks without touching the file). */
typedef struct tally__block_ref {
    uint32_t segment;     /* segment number */
    uint32_t len;         /* block bytes */
    uint64_t offset;      /* byte offset in the segment */
    tally_block_range range; /* from the block's header */
} tally__block_ref;

/* A full head buffer handed to the sealer; immutable once frozen. */
typedef struct tally__frozen {
    int64_t *steps, *ts;       /* n points each, arrival order */
    double *vals;
    uint32_t n, cap;           /* points, allocated capacity */
    struct tally__frozen *next;
} tally__frozen;

typedef struct tally__series {
    uint64_t id;               /* XXH3-64 of run, 0, key */
    char *run;                 /* run id bytes, zero-terminated copy */
    char *key;                 /* metric key bytes, zero-terminated copy */
    uint32_t run_len, key_len;
    struct tally__series *next_in_run; /* run index chain (dir_lock) */
    struct tally__series *next_in_key; /* key index chain (dir_lock) */
    pthread_mutex_t mu;        /* guards everything below */
    /* head buffer: unsealed points, in arrival order */
    int64_t *h_steps, *h_ts;   /* h_cap entries each */
    double *h_vals;
    uint32_t h_n, h_cap;       /* points held, capacity */
    int h_sorted;              /* nonzero while arrivals were in (step, ts) order */
    uint64_t h_oldest_wal;     /* WAL file number of the oldest head point, 0 if empty */
    tally__frozen *frozen;     /* frozen heads awaiting the sealer, oldest first */
    int seal_queued;           /* on the seal queue (seal_mu) */
    struct tally__series *next_seal; /* seal queue link (seal_mu) */
    /* sealed blocks, in sealing order */
    tally__block_ref *blocks;
    uint32_t n_blocks, blocks_cap;
    /* totals over all points (sealed + head) */
    uint64_t n_points;
    tally_point latest, first;
    int64_t min_step, max_step, min_ts, max_ts;
    double min_value, max_value;
} tally__series;

typedef struct tally__segment {
    _Atomic(uint64_t *) verified; /* bit per 64-byte granule: block body checksum verified */
    _Atomic(uint64_t *) touched;  /* bit per TALLY__FAULT_AROUND window: read since the last
                                     trim (segment.c) */
    int fd;             /* read-write for the current one, read-only otherwise */
    uint8_t *map;       /* PROT_READ mapping of map_len bytes */
    size_t map_len;
    uint64_t len;       /* bytes of blocks written */
    int dirty;          /* written since its last fdatasync (writer only) */
} tally__segment;

/* One producer's append waiting for the writer. */
typedef struct tally__request {
    tally__wal_record rec;                /* encoded record */
    const tally_series_batch *series;     /* the caller's batch (valid until done) */
    size_t n_series;
    int is_sync;                          /* a tally_engine_sync request: no record */
    int done;                             /* set by the writer under queue_mu */
    int result;                           /* 0 or an error */
    struct tally__request *next;
} tally__request;

struct tally_engine {
    char *dir;                     /* data directory path */
    tally_engine_options opt;
    int lock_fd;                   /* flock'd LOCK file */
    int dir_fd;                    /* the data directory, for fsync after renames */
    tally__io *io;                 /* the writer's: WAL and checkpoint */
    tally__io *seg_io;             /* the sealer's: segments (the writer's during a checkpoint) */

    /* series directory (dir_lock) */
    pthread_rwlock_t dir_lock;
    tally__series **table;         /* open addressing by id; NULL = empty */
    size_t table_cap;              /* power of two */
    tally__series **all_series;    /* creation order */
    size_t n_series, all_cap;
    tally__series **run_index;     /* chains by hash of run; run_index_cap slots */
    tally__series **key_index;     /* chains by hash of key */
    size_t index_cap;              /* power of two */

    /* segments (writer; slots published with release) */
    _Atomic(tally__segment *) seg_pages[TALLY_SEG_PAGES];
    uint32_t n_segments;           /* numbers 1..n_segments exist (0 unused) */
    uint32_t first_segment;        /* lowest live segment number */

    /* WAL (writer) */
    int wal_fd;
    uint64_t wal_number;           /* current file number */
    uint64_t wal_off;              /* next write offset in it */
    uint64_t wal_alloc;            /* preallocated size of it */
    uint64_t wal_first_live;       /* lowest WAL file number not yet checkpointed */
    uint64_t next_seq;             /* next record sequence number */
    _Atomic uint64_t live_wal_bytes; /* WAL bytes since the last checkpoint */
    uint64_t last_sync_ns;         /* async mode: time of the last fsync */
    uint64_t fail_lo, fail_hi;     /* WAL bytes [lo, hi) of the current file a failed
                                      group may have reached; zeroed by the probe */
    int wal_unsynced;              /* async mode: bytes written since the last fsync */

    /* sealer (sealer.c): its scratch, queue and thread */
    int64_t *seal_steps, *seal_ts;
    double *seal_vals;
    uint8_t *seal_out, *seal_scratch;
    pthread_mutex_t seal_mu;
    pthread_cond_t seal_cv;        /* the sealer waits here */
    pthread_cond_t sealed_cv;      /* waiters for pending == 0 */
    tally__series *seal_head, *seal_tail;
    uint64_t seal_pending;         /* frozen heads not yet sealed */
    int seal_error;                /* first sealing error, or 0 */
    int seal_stop;
    pthread_t sealer;
    int sealer_started;

    /* queue (queue_mu) */
    pthread_mutex_t queue_mu;
    pthread_cond_t queue_cv;       /* the writer waits here */
    pthread_cond_t done_cv;        /* producers wait here */
    tally__request *queue_head, *queue_tail;
    size_t queue_len;
    int n_encoding;                /* producers inside append that have not queued yet */
    int closing;
    int poisoned;                  /* the write error that paused writes, or 0 */
    int fail_sticky;               /* with poisoned: only a reopen recovers (engine.c) */
    uint64_t next_probe_ns;        /* paused: when the writer probes the disk next */
    uint32_t retry_delay_ms;       /* the probe backoff: doubles per failure, <= 5 s */
    int checkpoint_requested;
    tally__wal_scratch *scratch_pool; /* idle encoding buffers (queue_mu) */
    int n_scratch_pool;
    int checkpoint_result;
    uint64_t checkpoint_gen_done, checkpoint_gen_wanted;
    pthread_t writer;
    int writer_started;

    /* accounting (atomics: read by anyone) */
    _Atomic uint64_t memory_bytes;  /* heads + frozen heads + queued records */
    _Atomic uint64_t head_bytes;    /* heads alone (not frozen) */
    _Atomic uint64_t n_points_total, n_head_points, n_blocks_total, segment_bytes;
    _Atomic uint64_t wal_records, fsyncs, fsync_ns, checkpoints, recovered_records;
    _Atomic uint64_t write_failures, write_recoveries;
    _Atomic uint64_t map_trims;     /* tally_engine_trim_maps calls (segment.c) */
    _Atomic uint64_t map_read_bytes;/* block bytes read since the last trim (segment.c) */
};

/* --- series directory (series.c) ---------------------------------------- */

/* Finds a series by id (caller holds dir_lock, shared or exclusive). */
tally__series *tally__dir_find(tally_engine *e, uint64_t id);
/* Finds or creates (run, key) under the exclusive lock it takes itself.
 * TALLY_ECOLLISION when the id belongs to other names. */
int tally__dir_get_or_create(tally_engine *e, const char *run, size_t run_len, const char *key,
                             size_t key_len, tally__series **out);
/* Checks, under the shared lock, that (run, key) does not collide. */
int tally__dir_check_collision(tally_engine *e, const tally_series_batch *s);
void tally__dir_free(tally_engine *e);
int tally__dir_init(tally_engine *e);

/* Adds points to a series' head (writer only; takes s->mu). The columns may
 * be unaligned. wal_number is the WAL file holding them. */
int tally__series_append(tally_engine *e, tally__series *s, const tally_series_batch *b,
                         uint64_t wal_number);
/* Hands the head of s to the sealer (writer only). No-op on an empty head. */
int tally__series_freeze(tally_engine *e, tally__series *s);
/* Seals the oldest frozen head of s (sealer, or the only thread during
 * recovery). Returns 1 when s had none. */
int tally__series_seal_frozen(tally_engine *e, tally__series *s);

/* --- sealer (sealer.c) --------------------------------------------------- */

int tally__sealer_start(tally_engine *e);
void tally__sealer_stop(tally_engine *e);
/* Queues s for sealing (s has a new frozen head). */
void tally__sealer_enqueue(tally_engine *e, tally__series *s);
/* After a sealing error: clears it and queues again every series that still
 * has frozen heads (the sealer skipped them while failed). Writer only. */
void tally__sealer_resume(tally_engine *e);
/* Waits until every frozen head is sealed; returns the sealer's error. */
int tally__sealer_drain(tally_engine *e);
/* Updates the totals of s with one point (caller holds s->mu). */
void tally__series_account(tally__series *s, int64_t step, int64_t ts, double v);
/* Publishes a block reference (takes s->mu). */
int tally__series_add_block(tally__series *s, const tally__block_ref *ref);

/* --- segments (segment.c) ------------------------------------------------ */

tally__segment *tally__segment_get(tally_engine *e, uint32_t number);
/* Opens existing segment number (truncating it to len when writable). */
int tally__segment_open(tally_engine *e, uint32_t number, uint64_t len, int writable);
/* Appends a block to the current segment (rolling over when full). */
int tally__segment_append(tally_engine *e, const uint8_t *block, uint32_t len,
                          tally__block_ref *ref);
/* Whether the block at offset of segment sg had its body verified, and
 * remembering that it has (lock-free; the bitmap is made on first use). */
int tally__segment_is_verified(tally__segment *sg, uint64_t offset);
void tally__segment_set_verified(tally__segment *sg, uint64_t offset);
/* fdatasyncs every dirty segment. */
int tally__segment_sync_all(tally_engine *e);
void tally__segment_close_all(tally_engine *e);
/* Readers: bytes [offset, offset + len) of segment sg were just read
 * through its mapping. A read fault maps the pages of its aligned window
 * that are in the page cache (Linux's fault-around, 64 KiB by default), so
 * what a read can add to the process's resident memory is the windows it
 * touches; each window is counted once until the next trim, and the
 * mappings are trimmed (tally_engine_trim_maps) each time the windows
 * counted since the last trim reach opt.map_trim_bytes. */
#define TALLY__FAULT_AROUND 65536u
void tally__segment_note_read(tally_engine *e, tally__segment *sg, uint64_t offset, uint64_t len);
/* Path of segment number into buf. */
void tally__segment_path(const tally_engine *e, uint32_t number, char *buf, size_t cap);

/* --- checkpoint (checkpoint.c) ------------------------------------------- */

/* Writes the directory checkpoint (writer; segments already synced). */
int tally__checkpoint_write(tally_engine *e, uint64_t wal_covered);
/* Loads the checkpoint if there is one: series, blocks, segments. Sets
 * *wal_covered (0 without a checkpoint) and *next_seq. */
int tally__checkpoint_load(tally_engine *e, uint64_t *wal_covered, uint64_t *next_seq);

/* --- WAL files and recovery (recovery.c) --------------------------------- */

void tally__wal_path(const tally_engine *e, uint64_t number, char *buf, size_t cap);
/* Replays WAL files after wal_covered into the heads; sets e->wal_number etc. */
int tally__recover_wal(tally_engine *e, uint64_t wal_covered, uint64_t next_seq);
/* Starts a new WAL file numbered e->wal_number + 1 (writer). */
int tally__wal_roll(tally_engine *e);

/* --- compaction (compact.c) --------------------------------------------- */

/* Tests only: called with stage 1 (new segments durable, before the commit)
 * and 2 (after the commit, before the old segments are deleted). */
extern void (*tally__compact_stage_hook)(int stage);

/* --- misc ---------------------------------------------------------------- */

uint64_t tally__now_ns(void);
/* Logs one line to stderr with the engine's prefix. */
void tally__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Orders points by (step, timestamp, value bits): <0, 0, >0. */
int tally__point_cmp(int64_t s1, int64_t t1, double v1, int64_t s2, int64_t t2, double v2);

#endif /* TALLY_INTERNAL_H */
