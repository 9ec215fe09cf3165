/*
 * io.h — the engine's write path to files: io_uring when it can be set up,
 * plain pwrite/fdatasync otherwise (the libuv pattern: the io_uring helpers
 * report "unavailable" and the caller falls back). Private to the engine.
 *
 * Every operation first asks the fault hook (tests only) whether to fail, so
 * tests can inject ENOSPC, EIO, short writes and fsync failures.
 *
 * Invariants:
 *  (1) A write returns 0 only when every byte reached the file; a short
 *      write is retried for the rest, and an error returns -errno.
 *  (2) write_sync returns 0 only after the data is written and fdatasync
 *      succeeded; through io_uring the two are linked (IOSQE_IO_LINK) and
 *      submitted together.
 *  (3) One tally__io is used by one thread at a time (the engine's writer).
 */
#ifndef TALLY_IO_H
#define TALLY_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "tally/engine.h"

typedef struct tally__io tally__io;

/* Creates the backend. TALLY_IO_URING fails with -ENOSYS (or the setup error)
 * when io_uring is unusable; TALLY_IO_AUTO falls back to pwrite. */
int tally__io_new(tally_io_backend backend, tally_io_fault_fn hook, void *hook_ctx,
                  tally__io **out);
void tally__io_free(tally__io *io);

/* Nonzero when io_uring is in use. */
int tally__io_is_uring(const tally__io *io);

/* Writes the iovecs at offset off of fd; with do_sync, then fdatasync.
 * write_op/sync_op name the operations for the fault hook. 0 or -errno. */
int tally__io_write(tally__io *io, int fd, const struct iovec *iov, int iovcnt, uint64_t off,
                    int do_sync, tally_io_op write_op, tally_io_op sync_op);

/* fdatasync(fd). 0 or -errno. */
int tally__io_sync(tally__io *io, int fd, tally_io_op op);

/* The fault hook's verdict for an operation outside this backend (e.g. a
 * checkpoint file written with plain calls): 0, -errno or a short length. */
int tally__io_fault(tally__io *io, tally_io_op op, size_t len);

#endif /* TALLY_IO_H */
