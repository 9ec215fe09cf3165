/*
 * artifact_sync.h — the background syncer of artifact uploads
 * (`--artifact-fsync background`, docs/api.md "Artifact durability").
 *
 * In background mode an upload is written to its temporary file, renamed
 * into place and acknowledged without waiting for fsync
 * (tally_artifact_upload_commit with a syncer, artifact_fs.h). The commit
 * hands the file's and its directory's descriptors to this queue; one
 * thread takes everything queued as one batch, fsyncs each file, then each
 * distinct directory once (group commit), closes the descriptors, and takes
 * the next batch. A file is therefore durable against power loss as soon
 * as the batch before it and its own writeback are done; the process being
 * killed (kill -9, OOM) loses nothing either way, since the bytes are in
 * the page cache and the rename is atomic.
 *
 * Invariants:
 *  (1) Bounded: at most `capacity` entries (up to three descriptors each) are
 *      queued. tally_artifact_syncer_push refuses (-EAGAIN) when full and
 *      the caller fsyncs the file and directory itself, as in `always` mode.
 *  (2) Every entry pushed is fsync'd and closed exactly once: by the thread,
 *      or by tally_artifact_syncer_stop, which drains the queue before it
 *      returns (graceful shutdown loses nothing acknowledged).
 *  (3) An fsync that fails after the acknowledgement cannot be reported to
 *      the client: it is counted (failed) and logged as one JSON line on
 *      stderr naming the file's device and inode.
 */
#ifndef TALLY_SERVER_ARTIFACT_SYNC_H
#define TALLY_SERVER_ARTIFACT_SYNC_H

#include <stddef.h>
#include <stdint.h>

typedef struct tally_artifact_syncer tally_artifact_syncer;

/* Counters since creation (monotonic). */
typedef struct tally_artifact_sync_stats {
    uint64_t pushed;      /* files handed to the queue */
    uint64_t synced;      /* of those, fsync'd (file and directory) */
    uint64_t failed;      /* of those, whose fsync failed (invariant 3) */
    uint64_t refused;     /* pushes refused because the queue was full */
    uint64_t batches;     /* batches taken by the thread (or the final drain) */
    size_t queued;        /* entries waiting now */
} tally_artifact_sync_stats;

/* A syncer holding at most capacity entries (>= 1). The thread is not
 * running yet: pushes queue until tally_artifact_syncer_start. 0 or -errno. */
int tally_artifact_syncer_new(size_t capacity, tally_artifact_syncer **out);

/* Starts the thread. 0 or -errno (the syncer stays usable; stop drains). */
int tally_artifact_syncer_start(tally_artifact_syncer *s);

/* Queues file_fd (the committed file) and dir_fd (its directory) to be
 * fsync'd and closed, and old_fd (the file the rename replaced, or -1) to
 * be closed after them: the last close of a replaced file frees its pages
 * and blocks (about 0.3 s for a cached 1 GiB file), which then happens on
 * the syncer's thread instead of before the 200. On success the syncer owns
 * the descriptors; on -EAGAIN (full, invariant 1) or -ESHUTDOWN (stopping)
 * the caller keeps them. */
int tally_artifact_syncer_push(tally_artifact_syncer *s, int file_fd, int dir_fd, int old_fd);

/* A snapshot of the counters. */
void tally_artifact_syncer_stats(tally_artifact_syncer *s, tally_artifact_sync_stats *out);

/* Refuses further pushes, fsyncs everything queued (invariant 2), joins
 * the thread and frees s. final (may be NULL) gets the last counters.
 * Returns the number of failed fsyncs over the syncer's life (0: every
 * acknowledged file reached the disk). NULL is a no-op returning 0. */
uint64_t tally_artifact_syncer_stop(tally_artifact_syncer *s, tally_artifact_sync_stats *final);

#endif /* TALLY_SERVER_ARTIFACT_SYNC_H */
