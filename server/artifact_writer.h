/*
 * artifact_writer.h — a file written by a thread of its own, so that a large
 * upload's receiving (libmicrohttpd's thread: recv, one copy) and writing
 * run on two cores at once.
 *
 * The caller's bytes are copied into a ring of TALLY_WRITER_BUFS buffers of
 * TALLY_WRITER_BUF bytes, the memory a writer holds; a full ring makes
 * tally_file_writer_put wait for the thread (back-pressure, so memory stays
 * bounded however fast the client sends). The thread writes the buffers in
 * order at the file's current offset.
 *
 * Direct writing (the default of uploads, docs/api.md "Artifact direct
 * writes"): a buffer that starts at an offset aligned to TALLY_WRITER_ALIGN
 * is written with O_DIRECT, from the buffer to the disk: no page-cache
 * pages are allocated, dirtied or written back for it, and the cache keeps
 * what it held (the metric store's pages). What cannot go that way — an
 * unaligned head or tail, a file system that refuses O_DIRECT, a device
 * that wants a coarser alignment (EINVAL) — goes through the page cache,
 * with writeback started every TALLY_WRITEBACK_BYTES (sync_file_range), as
 * the uploader does when it writes itself.
 *
 * Invariants:
 *  (1) Bytes reach the file in the order they were put, after whatever the
 *      caller wrote before starting the writer.
 *  (2) The first write error sticks: every later put and the finish return
 *      it; nothing more is written after it.
 *  (3) After finish or cancel the thread has exited, no memory is held, and
 *      the fd's flags are as they were at start (O_DIRECT cleared).
 *  (4) Buffers are TALLY_WRITER_ALIGN-aligned in memory; the first one is
 *      short by written_before % TALLY_WRITER_ALIGN, so every later one
 *      starts at an aligned offset of the file.
 */
#ifndef TALLY_SERVER_ARTIFACT_WRITER_H
#define TALLY_SERVER_ARTIFACT_WRITER_H

#include <stddef.h>
#include <stdint.h>

#define TALLY_WRITER_BUF (1u << 20)
#define TALLY_WRITER_BUFS 4
#define TALLY_WRITER_ALIGN 4096u /* O_DIRECT alignment of memory, offsets and lengths */
#define TALLY_WRITEBACK_BYTES ((uint64_t)8 << 20)

typedef struct tally_file_writer tally_file_writer;

/* Starts writeback of the bytes written since *kicked once they reach
 * TALLY_WRITEBACK_BYTES (best effort); written counts every byte written to
 * fd so far. Bounds the dirty pages and leaves little for a final fsync. */
void tally_writeback_kick(int fd, uint64_t *kicked, uint64_t written);

/* write(2) of all n bytes, retried on EINTR and short writes. 0 or -errno. */
int tally_write_all(int fd, const char *p, size_t n);

/* Starts a writer thread for fd, whose first written bytes (already in the
 * file) number written_before, of which writeback was started for the
 * first kicked_before; direct: write aligned buffers with O_DIRECT. 0 or
 * -errno (then nothing was started). */
int tally_file_writer_start(int fd, uint64_t written_before, uint64_t kicked_before, int direct,
                            tally_file_writer **out);

/* Copies n bytes for the thread to write. 0, or the sticky -errno of a
 * failed write (2). */
int tally_file_writer_put(tally_file_writer *w, const void *data, size_t n);

/* Writes what is left, stops the thread, frees w. 0 or the first -errno. */
int tally_file_writer_finish(tally_file_writer *w);

/* Stops the thread without writing what is left, frees w. NULL: no-op. */
void tally_file_writer_cancel(tally_file_writer *w);

#endif /* TALLY_SERVER_ARTIFACT_WRITER_H */
