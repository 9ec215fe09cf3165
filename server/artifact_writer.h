/*
 * artifact_writer.h — a file written by a thread of its own, so that a large
 * upload's receiving (libmicrohttpd's thread: recv, one copy) and writing
 * (write(2) into the page cache, writeback) run on two cores at once.
 *
 * The caller's bytes are copied into a ring of TALLY_WRITER_BUFS buffers of
 * TALLY_WRITER_BUF bytes, the memory a writer holds; a full ring makes
 * tally_file_writer_put wait for the thread (back-pressure, so memory stays
 * bounded however fast the client sends). The thread writes the buffers in
 * order at the file's current offset, and starts writeback of every
 * TALLY_WRITEBACK_BYTES it wrote (sync_file_range), as the uploader does
 * when it writes itself.
 *
 * Invariants:
 *  (1) Bytes reach the file in the order they were put, after whatever the
 *      caller wrote before starting the writer.
 *  (2) The first write error sticks: every later put and the finish return
 *      it; nothing more is written after it.
 *  (3) After finish or cancel the thread has exited and no memory is held.
 */
#ifndef TALLY_SERVER_ARTIFACT_WRITER_H
#define TALLY_SERVER_ARTIFACT_WRITER_H

#include <stddef.h>
#include <stdint.h>

#define TALLY_WRITER_BUF (1u << 20)
#define TALLY_WRITER_BUFS 4
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
 * first kicked_before. 0 or -errno (then nothing was started). */
int tally_file_writer_start(int fd, uint64_t written_before, uint64_t kicked_before,
                            tally_file_writer **out);

/* Copies n bytes for the thread to write. 0, or the sticky -errno of a
 * failed write (2). */
int tally_file_writer_put(tally_file_writer *w, const void *data, size_t n);

/* Writes what is left, stops the thread, frees w. 0 or the first -errno. */
int tally_file_writer_finish(tally_file_writer *w);

/* Stops the thread without writing what is left, frees w. NULL: no-op. */
void tally_file_writer_cancel(tally_file_writer *w);

#endif /* TALLY_SERVER_ARTIFACT_WRITER_H */
