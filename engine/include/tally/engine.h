/*
 * tally/engine.h — the whole public contract of Tally's metric engine.
 *
 * The engine stores metric points (step int64, timestamp int64 ms, value
 * float64) for series named by (run id, metric key). It knows nothing of
 * HTTP, JSON, runs or SQLite: a run id is an opaque byte string here.
 *
 *   callers --append--> WAL (io_uring, group commit) --> per-series head buffers
 *                                                   \--> sealed blocks in segments (mmap)
 *   readers --snapshot--> block list + copy of the head --> iterators, summaries
 *
 * Conventions (see docs/format.md and docs/engine.md for the details):
 *  - Every function that can fail returns int: 0 or a negative error code.
 *    Codes are the TALLY_E* below, or a system error passed through as -errno
 *    (e.g. -ENOSPC). tally_strerror() names either kind.
 *  - Results come back through out-pointers. Who owns returned memory, and for
 *    how long, is stated on each function.
 *  - Values are stored bit-exactly: NaN payloads, -0.0, +-inf and subnormals
 *    come back as they went in.
 *  - Thread safety: any number of threads may append and read concurrently
 *    through one tally_engine. A tally_snapshot, tally_iter or tally_appender
 *    belongs to one thread at a time.
 */
#ifndef TALLY_ENGINE_H
#define TALLY_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TALLY_API __attribute__((visibility("default")))
#else
#define TALLY_API
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* One list makes both the enum and tally_strerror(). Codes sit far below
 * -4095 so they never collide with a negated errno. */
#define TALLY_ERRORS(X)                                                          \
    X(TALLY_EINVAL, -30001, "invalid argument")                                  \
    X(TALLY_ENOMEM, -30002, "out of memory")                                     \
    X(TALLY_ECORRUPT, -30003, "stored data is corrupt (checksum or bounds)")     \
    X(TALLY_ENOTFOUND, -30004, "no such series")                                 \
    X(TALLY_ECOLLISION, -30005, "series id collision: two keys hash alike")      \
    X(TALLY_EPOISONED, -30006, "engine is in an error state after a failed write") \
    X(TALLY_EVERSION, -30007, "unsupported on-disk format version")              \
    X(TALLY_ELOCKED, -30008, "data directory is locked by another process")      \
    X(TALLY_ECLOSED, -30009, "engine is closing")                                \
    X(TALLY_ETOOBIG, -30010, "request exceeds a configured limit")               \
    X(TALLY_EBUSY, -30011, "memory budget exhausted, retry later")              \
    X(TALLY_ERETRY, -30012, "writes paused after an I/O error; the engine retries by itself")

enum tally_error {
#define TALLY_ERROR_ENUM_(name, code, text) name = code,
    TALLY_ERRORS(TALLY_ERROR_ENUM_)
#undef TALLY_ERROR_ENUM_
};

/* A static string naming err: a TALLY_E* code, a -errno, or 0. Never NULL. */
TALLY_API const char *tally_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Allocation hook                                                           */
/* ------------------------------------------------------------------------ */

/* Every allocation of the engine and query libraries goes through these, so
 * tests can fail them one by one. Call before opening anything; passing NULLs
 * restores the C library's functions. Returns TALLY_EINVAL if only some are
 * given. */
TALLY_API int tally_replace_allocator(void *(*malloc_fn)(size_t),
                                      void *(*realloc_fn)(void *, size_t),
                                      void *(*calloc_fn)(size_t, size_t),
                                      void (*free_fn)(void *));

/* ------------------------------------------------------------------------ */
/* Opening and closing                                                       */
/* ------------------------------------------------------------------------ */

typedef struct tally_engine tally_engine;

typedef enum tally_durability {
    TALLY_DURABILITY_SYNC = 0,  /* ack after the caller's write group is fsynced, no waiting for others */
    TALLY_DURABILITY_GROUP = 1, /* ack after fsync; the writer waits up to group_window_us for other producers */
    TALLY_DURABILITY_ASYNC = 2  /* ack after write to the page cache; fsync every async_interval_ms */
} tally_durability;

typedef enum tally_io_backend {
    TALLY_IO_AUTO = 0,   /* io_uring when it can be set up, else pwrite */
    TALLY_IO_URING = 1,  /* io_uring or fail to open */
    TALLY_IO_PWRITE = 2  /* plain pwrite/fdatasync */
} tally_io_backend;

/* I/O operations the fault hook can fail. */
typedef enum tally_io_op {
    TALLY_IO_OP_WAL_WRITE = 0,
    TALLY_IO_OP_WAL_SYNC = 1,
    TALLY_IO_OP_SEGMENT_WRITE = 2,
    TALLY_IO_OP_SEGMENT_SYNC = 3,
    TALLY_IO_OP_CHECKPOINT_WRITE = 4,
    TALLY_IO_OP_CHECKPOINT_SYNC = 5
} tally_io_op;

/* Fault injection for tests: called before each I/O operation with the number
 * of bytes it will write (0 for a sync). Return 0 to let it run, a negative
 * errno (-ENOSPC, -EIO) to fail it, or a positive n smaller than len to make
 * a write short (only n bytes reach the file, then it fails with -EIO). */
typedef int (*tally_io_fault_fn)(void *ctx, tally_io_op op, size_t len);

typedef struct tally_engine_options {
    tally_durability durability;   /* default TALLY_DURABILITY_GROUP */
    uint32_t group_window_us;      /* group mode: longest wait for more producers, default 2000 */
    uint32_t async_interval_ms;    /* async mode: fsync period, default 100 */
    uint64_t segment_bytes;        /* segment roll-over size, default 256 MiB */
    uint64_t wal_file_bytes;       /* WAL file roll-over (preallocated) size, default 64 MiB */
    uint64_t checkpoint_wal_bytes; /* checkpoint once this much WAL is live, default 256 MiB */
    uint64_t memory_budget_bytes;  /* head buffers + queued batches, default 512 MiB */
    uint32_t block_points;         /* max points per sealed block, 128..65536, default 4096 */
    uint64_t map_trim_bytes;       /* readers release the segment mappings' pages
                                      (tally_engine_trim_maps) once reads have mapped
                                      about this many bytes of them (64 KiB windows,
                                      each counted once between trims); 0 (default):
                                      never */
    tally_io_backend io_backend;   /* default TALLY_IO_AUTO */
    int read_only;                 /* nonzero: no WAL, no writes, no recovery truncation */
    tally_io_fault_fn fault_hook;  /* tests only; NULL in production */
    void *fault_ctx;               /* passed to fault_hook */
} tally_engine_options;

/* Fills o with the defaults above. */
TALLY_API void tally_engine_options_init(tally_engine_options *o);

/* Opens (creating if needed) the data directory dir and recovers it: loads the
 * last valid checkpoint, truncates torn tails, replays the WAL written since.
 * opts may be NULL for defaults. On success *out owns the engine until
 * tally_engine_close(). Errors: TALLY_EINVAL, TALLY_ELOCKED, TALLY_EVERSION,
 * TALLY_ECORRUPT (an unrecoverable checkpoint), -errno. */
TALLY_API int tally_engine_open(const char *dir, const tally_engine_options *opts,
                                tally_engine **out);

/* Stops accepting appends, drains the queue, seals every head buffer, writes a
 * checkpoint and frees the engine. Returns the first error met while doing so
 * (the engine is freed regardless). NULL is a no-op. */
TALLY_API int tally_engine_close(tally_engine *e);

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */
/* ------------------------------------------------------------------------ */

/* One series' share of a batch: parallel columns of n_points. The engine
 * copies what it needs; the caller's memory is free once append returns. */
typedef struct tally_series_batch {
    const char *run_id;       /* opaque bytes, 1..1024 */
    size_t run_id_len;
    const char *key;          /* opaque bytes, 1..1024 */
    size_t key_len;
    uint32_t n_points;
    const int64_t *steps;         /* n_points steps, any order */
    const int64_t *timestamps_ms; /* n_points wall times in ms */
    const double *values;         /* n_points values, any bit pattern */
} tally_series_batch;

/* Appends every point of n_series series as one WAL record and returns once
 * the durability mode acknowledges it (see tally_durability). Points may come
 * in any order, repeat steps, or repeat exactly; reads return them ordered by
 * (step, timestamp) and may collapse exact duplicates of (step, ts, value).
 * All or nothing: on error no point of the batch is visible or recovered.
 * Errors: TALLY_EINVAL (empty key, lengths), TALLY_ECOLLISION, TALLY_ETOOBIG
 * (batch larger than the memory budget allows), TALLY_EBUSY (budget full),
 * TALLY_ERETRY (writes are paused after an I/O failure; the engine probes
 * the disk and resumes by itself: retry later), TALLY_EPOISONED (a failure
 * the engine cannot undo in place; reopen), TALLY_ECLOSED, -errno of the
 * failed write or fsync. A batch that failed was not acknowledged: after a
 * crash it may or may not be there (docs/engine.md, "Failures"). */
TALLY_API int tally_engine_append(tally_engine *e, const tally_series_batch *series,
                                  size_t n_series);

/* Makes every point acknowledged so far durable (fsync), whatever the mode. */
TALLY_API int tally_engine_sync(tally_engine *e);

/* Seals every head buffer into blocks, writes a directory checkpoint and
 * deletes the WAL files it covers. Runs on its own as the WAL grows. */
TALLY_API int tally_engine_checkpoint(tally_engine *e);

/* Per-point appends for convenience: an appender buffers points per series
 * and sends them as batches. A point is acknowledged only when a flush that
 * covers it returns 0 (tally_appender_add flushes by itself when its buffer
 * holds flush_points points; the error of such a flush is returned by add). */
typedef struct tally_appender tally_appender;

/* flush_points: 0 for the default (65536). *out is owned by the caller. */
TALLY_API int tally_appender_new(tally_engine *e, uint32_t flush_points, tally_appender **out);
TALLY_API int tally_appender_add(tally_appender *a, const char *run_id, size_t run_id_len,
                                 const char *key, size_t key_len, int64_t step,
                                 int64_t timestamp_ms, double value);
TALLY_API int tally_appender_flush(tally_appender *a);
/* Frees without flushing; buffered points are dropped. NULL is a no-op. */
TALLY_API void tally_appender_free(tally_appender *a);

/* ------------------------------------------------------------------------ */
/* Series                                                                    */
/* ------------------------------------------------------------------------ */

typedef uint64_t tally_series_id;

typedef struct tally_point {
    int64_t step;         /* training step */
    int64_t timestamp_ms; /* wall time, ms since the epoch */
    double value;         /* any bit pattern */
} tally_point;

/* XXH3-64 of the run id, one zero byte, then the key. */
TALLY_API tally_series_id tally_series_id_of(const char *run_id, size_t run_id_len,
                                             const char *key, size_t key_len);

/* Finds the series (run_id, key). TALLY_ENOTFOUND if it has no point. */
TALLY_API int tally_engine_lookup(tally_engine *e, const char *run_id, size_t run_id_len,
                                  const char *key, size_t key_len, tally_series_id *out);

typedef struct tally_series_info {
    tally_series_id id;
    const char *run_id;   /* borrowed: valid until tally_engine_close() */
    size_t run_id_len;
    const char *key;      /* borrowed: valid until tally_engine_close() */
    size_t key_len;
    uint64_t n_points;    /* points stored (sealed + head); exact duplicates may be counted until sealed */
    uint32_t n_blocks;    /* sealed blocks */
    tally_point latest;   /* greatest by (step, timestamp, value), NaN compared as 0.0 (MLflow's rule) */
    tally_point first;    /* least by (step, timestamp) */
    int64_t min_step, max_step;
    int64_t min_timestamp_ms, max_timestamp_ms;
    double min_value, max_value; /* over non-NaN values; NaN if all are NaN */
} tally_series_info;

/* A consistent summary of one series. TALLY_ENOTFOUND if unknown. */
TALLY_API int tally_engine_series_info(tally_engine *e, tally_series_id id, tally_series_info *out);

/* Enumeration. Each writes up to cap ids into ids and the total count into
 * *n_total (which may exceed cap: call again with a larger buffer). Order is
 * the order in which the series were created. */
TALLY_API int tally_engine_series_of_run(tally_engine *e, const char *run_id, size_t run_id_len,
                                         tally_series_id *ids, size_t cap, size_t *n_total);
TALLY_API int tally_engine_series_of_key(tally_engine *e, const char *key, size_t key_len,
                                         tally_series_id *ids, size_t cap, size_t *n_total);
TALLY_API int tally_engine_series_all(tally_engine *e, tally_series_id *ids, size_t cap,
                                      size_t *n_total);

/* ------------------------------------------------------------------------ */
/* Reading: snapshots, block summaries, iterators                            */
/* ------------------------------------------------------------------------ */

/* A snapshot fixes one series at one moment: the sealed blocks that existed
 * then, plus a private sorted copy of the head buffer. Later appends are not
 * seen. Taking one costs a copy of the head (at most block_points points) and
 * never blocks the writer for longer than that copy. */
typedef struct tally_snapshot tally_snapshot;

TALLY_API int tally_snapshot_open(tally_engine *e, tally_series_id id, tally_snapshot **out);
TALLY_API void tally_snapshot_close(tally_snapshot *s);

/* Sealed blocks, in the order they were sealed. Blocks are each sorted by
 * (step, timestamp) but may overlap one another in step range. */
TALLY_API uint32_t tally_snapshot_n_blocks(const tally_snapshot *s);

/* Head points not yet sealed, sorted by (step, timestamp), exact duplicates
 * collapsed. *pts is owned by the snapshot. */
TALLY_API void tally_snapshot_head(const tally_snapshot *s, const tally_point **pts, size_t *n);

#define TALLY_BLOCK_TS_SORTED 0x1u    /* timestamps are non-decreasing in (step, ts) order */
#define TALLY_BLOCK_STEPS_LINEAR 0x4u /* step i = min_step + i * (max_step - min_step) / (n - 1) */
#define TALLY_BLOCK_TS_LINEAR 0x8u    /* the same for timestamps */

typedef struct tally_block_summary {
    uint32_t n_points;          /* points in the block (after collapsing exact duplicates) */
    uint32_t n_chunks;          /* sub-blocks ("chunks") of up to TALLY_CHUNK_POINTS points */
    uint32_t flags;             /* TALLY_BLOCK_* */
    uint32_t n_nan;             /* NaN values in the block */
    int64_t min_step, max_step; /* = first.step, last.step */
    int64_t min_timestamp_ms, max_timestamp_ms;
    double min_value, max_value; /* over non-NaN values; NaN if every value is NaN */
    double sum;                  /* over non-NaN values */
    tally_point first, last;     /* by (step, timestamp) */
    uint32_t segment;            /* where the block lives, for error reports */
    uint64_t offset;             /* byte offset of the block in that segment */
} tally_block_summary;

/* Reads block i's header (verifying its checksum). TALLY_ECORRUPT if damaged. */
TALLY_API int tally_snapshot_block(const tally_snapshot *s, uint32_t i, tally_block_summary *out);

/* What the engine keeps of every block in memory: enough to choose blocks
 * by step or time range without touching the file. */
typedef struct tally_block_range {
    uint32_t n_points;           /* points in the block */
    uint32_t flags;              /* TALLY_BLOCK_* */
    int64_t min_step, max_step;
    int64_t min_timestamp_ms, max_timestamp_ms;
} tally_block_range;

/* Block i's range, from memory: no I/O, no checksum, cannot fail for
 * i < tally_snapshot_n_blocks(s). */
TALLY_API void tally_snapshot_block_range(const tally_snapshot *s, uint32_t i,
                                          tally_block_range *out);

#define TALLY_CHUNK_POINTS 128u /* points per chunk, except the last of a block */

typedef struct tally_chunk_summary {
    uint32_t first_index;        /* index of the chunk's first point in the block */
    uint32_t n_points;           /* 1..TALLY_CHUNK_POINTS */
    uint32_t n_nan;              /* NaN values in the chunk */
    uint32_t argmin, argmax;     /* block indexes of the first min and first max (non-NaN) point */
    double min_value, max_value; /* over non-NaN values; NaN if all are NaN */
    double sum;                  /* over non-NaN values */
    tally_point first, last;     /* by (step, timestamp) */
} tally_chunk_summary;

/* Writes the summaries of every chunk of block i (cap >= its n_chunks, at most
 * 65536 / TALLY_CHUNK_POINTS) into out. Verifies the block's checksum.
 * TALLY_ECORRUPT if damaged, TALLY_EINVAL if cap is too small. */
TALLY_API int tally_snapshot_block_chunks(tally_snapshot *s, uint32_t i, tally_chunk_summary *out,
                                          size_t cap);

/* A hint that block i will be read soon: starts loading its header (and the
 * chunk table at the end of a raw body) into the CPU cache, so a caller
 * walking many blocks overlaps their memory latency.
 * Never fails, never blocks. */
TALLY_API void tally_snapshot_block_prefetch(const tally_snapshot *s, uint32_t i);

/* A hint that chunks[0..n) of block i (chunk k holds points
 * [k * TALLY_CHUNK_POINTS, ...)) will be decoded soon: opens the block as a
 * decode would (so errors are a decode's) and starts loading those chunks'
 * first bytes into the CPU cache, so a caller that then reads a few points
 * of each pays their memory latency once, not once per chunk. Chunk numbers
 * past the block's are ignored. */
/* The same hint for single points of block i (indexes, any order; past the
 * block's are ignored): besides each point's chunk start, the bytes where
 * the point most likely lies (its share of the chunk's data, which is exact
 * for fixed-width columns), for a caller about to read a point or two of
 * many chunks, such as the two beside each column edge. */
TALLY_API int tally_snapshot_block_prefetch_points(tally_snapshot *s, uint32_t i,
                                                   const uint32_t *points, size_t n);

TALLY_API int tally_snapshot_block_prefetch_chunks(tally_snapshot *s, uint32_t i,
                                                   const uint32_t *chunks, size_t n);

/* Decodes points [from, from + n) of block i into the given columns (any may
 * be NULL to skip it). Decoding a range inside one chunk touches only that
 * chunk. A block's body checksum is verified the first time the process
 * reads it and remembered (blocks are immutable), so later reads of the same
 * block cost only the decode. TALLY_ECORRUPT if damaged, TALLY_EINVAL if out
 * of range. */
TALLY_API int tally_snapshot_block_decode(tally_snapshot *s, uint32_t i, uint32_t from, uint32_t n,
                                          int64_t *steps, int64_t *timestamps_ms, double *values);

/* An iterator over a snapshot's points with lo <= step <= hi, merged across
 * blocks and the head, ordered by (step, timestamp) (then by value bits),
 * exact duplicates collapsed. The snapshot must outlive the iterator. */
typedef struct tally_iter tally_iter;

TALLY_API int tally_iter_start(tally_snapshot *s, int64_t step_lo, int64_t step_hi,
                               tally_iter **out);
/* Fills up to cap points; *n = 0 at the end. TALLY_ECORRUPT if a block is
 * damaged (the iterator stops there; the error names no data as valid). */
TALLY_API int tally_iter_next(tally_iter *it, tally_point *buf, size_t cap, size_t *n);
TALLY_API void tally_iter_stop(tally_iter *it);

/* ------------------------------------------------------------------------ */
/* Statistics and verification                                               */
/* ------------------------------------------------------------------------ */

typedef struct tally_engine_stats {
    uint64_t n_series;
    uint64_t n_points;          /* sealed + head */
    uint64_t n_head_points;     /* not yet sealed */
    uint64_t n_blocks;
    uint64_t n_segments;
    uint64_t segment_bytes;     /* bytes of sealed blocks on disk */
    uint64_t wal_bytes;         /* live WAL bytes (since the last checkpoint) */
    uint64_t wal_records;       /* WAL records written since open */
    uint64_t fsyncs;            /* WAL fsyncs since open */
    uint64_t fsync_ns_total;    /* time spent in them */
    uint64_t queue_depth;       /* batches waiting for the writer now */
    uint64_t memory_bytes;      /* head buffers + queued batches now */
    uint64_t checkpoints;       /* since open */
    uint64_t recovered_records; /* WAL records replayed at open */
    int io_uring;               /* nonzero when io_uring is in use */
    int poisoned;               /* the error that stopped writes, or 0 (see writes_paused) */
    int writes_paused;          /* 0 writing; 1 paused, probing the disk (TALLY_ERETRY);
                                   2 stopped until reopen (TALLY_EPOISONED) */
    uint32_t retry_in_ms;       /* when paused: time to the next probe */
    uint64_t write_failures;    /* I/O failures that paused writes, since open */
    uint64_t write_recoveries;  /* times writes resumed after a probe succeeded */
    uint64_t map_trims;         /* tally_engine_trim_maps runs since open */
} tally_engine_stats;

TALLY_API int tally_engine_stats_get(tally_engine *e, tally_engine_stats *out);

/* Releases the pages of every segment mapping from the process
 * (madvise MADV_DONTNEED on the read-only MAP_SHARED mappings): the data
 * stays in the kernel's page cache and the next read of a page maps it
 * again (a minor fault, about a microsecond per 64 KiB). Safe while
 * readers read. Readers call it themselves each time map_trim_bytes of
 * blocks have been read (a block opened counts its whole length, and
 * every read 64 KiB more: a fault maps the pages around the one read),
 * which bounds the file-backed resident memory the
 * mappings hold to about map_trim_bytes; an idle process can call it to
 * release the rest. 0 or TALLY_EINVAL. */
TALLY_API int tally_engine_trim_maps(tally_engine *e);

/* Walks every file of a closed data directory and checks every checksum.
 * report (may be NULL) is called once per problem with the file, the byte
 * offset and a message. *n_problems gets the count. Returns 0 when the walk
 * itself worked (whatever it found), or -errno. */
typedef void (*tally_verify_report_fn)(void *ctx, const char *file, uint64_t offset,
                                       const char *message);
TALLY_API int tally_verify(const char *dir, tally_verify_report_fn report, void *ctx,
                           uint64_t *n_problems);

/* Progress of a long offline operation: done units more are finished (the
 * calls add up); total is the expected number of units if known now, else 0.
 * Called from the caller's thread. */
typedef void (*tally_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* tally_verify, calling progress (may be NULL) with the blocks checked after
 * each series. */
TALLY_API int tally_verify_progress(const char *dir, tally_verify_report_fn report, void *ctx,
                                    tally_progress_fn progress, void *progress_ctx,
                                    uint64_t *n_problems);

/* ------------------------------------------------------------------------ */
/* Dropping series (offline)                                                 */
/* ------------------------------------------------------------------------ */

typedef struct tally_compact_stats {
    uint64_t series_dropped;  /* series removed */
    uint64_t points_dropped;  /* their points */
    uint64_t blocks_dropped;  /* their blocks */
    uint64_t bytes_before;    /* segment file bytes before */
    uint64_t bytes_after;     /* segment file bytes after */
} tally_compact_stats;

/* Permanently removes the series drop[0..n_drop) (ids unknown to the
 * directory are ignored) from the data directory dir and reclaims their
 * space: recovers and checkpoints the directory, copies every other
 * series' blocks into new segment files, commits a new checkpoint with one
 * atomic rename, then deletes the old segment files. Crash-safe at every
 * step: the directory holds either all dropped series or none, and every
 * other series whole (docs/engine.md). Offline: takes the directory's lock,
 * so no engine may have it open (TALLY_ELOCKED). With nothing to drop it
 * changes nothing. stats may be NULL. Errors: TALLY_ELOCKED, TALLY_ECORRUPT,
 * TALLY_EVERSION, TALLY_ENOMEM, -errno; on error the directory is as it
 * was, or already compacted if the error came after the commit. */
TALLY_API int tally_engine_compact(const char *dir, const tally_series_id *drop, size_t n_drop,
                                   tally_compact_stats *stats);
/* The same, calling progress (may be NULL) with the bytes of each kept block
 * as it is copied. */
TALLY_API int tally_engine_compact_progress(const char *dir, const tally_series_id *drop,
                                            size_t n_drop, tally_compact_stats *stats,
                                            tally_progress_fn progress, void *progress_ctx);

#ifdef __cplusplus
}
#endif

#endif /* TALLY_ENGINE_H */
