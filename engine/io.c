/*
 * io.c — io_uring and pwrite backends of io.h.
 *
 * io_uring: one small ring owned by the writer thread. A write with sync is
 * submitted as a linked pair (writev, fsync with IORING_FSYNC_DATASYNC) and
 * both completions are reaped before returning. A short write completion is
 * finished with further writes. Kernels where the ring cannot be set up
 * (seccomp, old kernels, io_uring_disabled) fall back to pwrite when the
 * backend is TALLY_IO_AUTO.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "io.h"

#define IOV_MAX_LOCAL 64

struct tally__io {
    int use_uring;          /* nonzero when ring is set up */
    struct io_uring ring;   /* valid when use_uring */
    tally_io_fault_fn hook; /* fault injection, or NULL */
    void *hook_ctx;
};

int tally__io_new(tally_io_backend backend, tally_io_fault_fn hook, void *hook_ctx, tally__io **out)
{
    tally__io *io = tally__calloc(1, sizeof *io);
    if (!io)
        return TALLY_ENOMEM;
    io->hook = hook;
    io->hook_ctx = hook_ctx;
    if (backend != TALLY_IO_PWRITE && !getenv("TALLY_IO_FORCE_PWRITE")) {
        int rc = io_uring_queue_init(8, &io->ring, 0);
        if (rc == 0) {
            io->use_uring = 1;
        } else if (backend == TALLY_IO_URING) {
            tally__free(io);
            return rc < 0 ? rc : -ENOSYS;
        }
    }
    *out = io;
    return 0;
}

void tally__io_free(tally__io *io)
{
    if (!io)
        return;
    if (io->use_uring)
        io_uring_queue_exit(&io->ring);
    tally__free(io);
}

int tally__io_is_uring(const tally__io *io) { return io->use_uring; }

int tally__io_fault(tally__io *io, tally_io_op op, size_t len)
{
    return io->hook ? io->hook(io->hook_ctx, op, len) : 0;
}

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t n = 0;
    for (int i = 0; i < iovcnt; i++)
        n += iov[i].iov_len;
    return n;
}

/* Drops the first `done` bytes from a copy of the iovec array. */
static int iov_advance(struct iovec *iov, int iovcnt, size_t done)
{
    int i = 0;
    while (i < iovcnt && done >= iov[i].iov_len)
        done -= iov[i++].iov_len;
    if (i < iovcnt) {
        iov[i].iov_base = (char *)iov[i].iov_base + done;
        iov[i].iov_len -= done;
    }
    memmove(iov, iov + i, (size_t)(iovcnt - i) * sizeof *iov);
    return iovcnt - i;
}

/* Writes a short prefix for an injected short write, then reports EIO. */
static int inject_short_write(int fd, const struct iovec *iov, int iovcnt, uint64_t off, size_t n)
{
    for (int i = 0; i < iovcnt && n > 0; i++) {
        size_t part = iov[i].iov_len < n ? iov[i].iov_len : n;
        if (pwrite(fd, iov[i].iov_base, part, (off_t)off) < 0)
            return -errno;
        off += part;
        n -= part;
    }
    return -EIO;
}

static int pwrite_all(int fd, struct iovec *iov, int iovcnt, uint64_t off)
{
    while (iovcnt > 0) {
        ssize_t w = pwritev(fd, iov, iovcnt > IOV_MAX_LOCAL ? IOV_MAX_LOCAL : iovcnt, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        off += (uint64_t)w;
        iovcnt = iov_advance(iov, iovcnt, (size_t)w);
    }
    return 0;
}

/* Submits the writes (and the sync) through the ring and reaps them. */
static int uring_write(tally__io *io, int fd, struct iovec *iov, int iovcnt, uint64_t off,
                       int do_sync)
{
    while (iovcnt > 0) {
        int n_iov = iovcnt > IOV_MAX_LOCAL ? IOV_MAX_LOCAL : iovcnt;
        size_t want = iov_total(iov, n_iov);
        int last = n_iov == iovcnt;
        struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
        if (!sqe)
            return -EBUSY;
        io_uring_prep_writev(sqe, fd, iov, (unsigned)n_iov, off);
        sqe->user_data = 1;
        int n_sqe = 1;
        if (last && do_sync) {
            sqe->flags |= IOSQE_IO_LINK;
            struct io_uring_sqe *s2 = io_uring_get_sqe(&io->ring);
            if (!s2)
                return -EBUSY;
            io_uring_prep_fsync(s2, fd, IORING_FSYNC_DATASYNC);
            s2->user_data = 2;
            n_sqe = 2;
        }
        int rc = io_uring_submit_and_wait(&io->ring, (unsigned)n_sqe);
        if (rc < 0)
            return rc;
        int write_res = 0, sync_res = 0;
        for (int i = 0; i < n_sqe; i++) {
            struct io_uring_cqe *cqe;
            rc = io_uring_wait_cqe(&io->ring, &cqe);
            if (rc < 0)
                return rc;
            if (cqe->user_data == 1)
                write_res = cqe->res;
            else
                sync_res = cqe->res;
            io_uring_cqe_seen(&io->ring, cqe);
        }
        if (write_res < 0)
            return write_res;
        if (write_res == 0)
            return -EIO;
        off += (uint64_t)write_res;
        iovcnt = iov_advance(iov, iovcnt, (size_t)write_res);
        if ((size_t)write_res < want) {
            /* Short write: a linked fsync was cancelled; loop writes the rest. */
            continue;
        }
        if (last && do_sync && sync_res < 0)
            return sync_res;
    }
    return 0;
}

int tally__io_write(tally__io *io, int fd, const struct iovec *iov_in, int iovcnt, uint64_t off,
                    int do_sync, tally_io_op write_op, tally_io_op sync_op)
{
    size_t total = iov_total(iov_in, iovcnt);
    int verdict = tally__io_fault(io, write_op, total);
    if (verdict < 0)
        return verdict;
    if (verdict > 0 && (size_t)verdict < total)
        return inject_short_write(fd, iov_in, iovcnt, off, (size_t)verdict);
    if (do_sync) {
        verdict = tally__io_fault(io, sync_op, 0);
        if (verdict < 0) {
            /* The data is written, the sync fails: exactly what a failed fsync looks like. */
            struct iovec copy[IOV_MAX_LOCAL];
            int n = iovcnt > IOV_MAX_LOCAL ? IOV_MAX_LOCAL : iovcnt;
            memcpy(copy, iov_in, (size_t)n * sizeof *copy);
            (void)pwrite_all(fd, copy, n, off);
            return verdict;
        }
    }
    struct iovec local[IOV_MAX_LOCAL];
    struct iovec *iov = local;
    if (iovcnt > IOV_MAX_LOCAL) {
        iov = tally__malloc((size_t)iovcnt * sizeof *iov);
        if (!iov)
            return TALLY_ENOMEM;
    }
    memcpy(iov, iov_in, (size_t)iovcnt * sizeof *iov);
    int rc;
    if (io->use_uring) {
        rc = uring_write(io, fd, iov, iovcnt, off, do_sync);
    } else {
        rc = pwrite_all(fd, iov, iovcnt, off);
        if (rc == 0 && do_sync && fdatasync(fd) != 0)
            rc = -errno;
    }
    if (iov != local)
        tally__free(iov);
    return rc;
}

int tally__io_sync(tally__io *io, int fd, tally_io_op op)
{
    int verdict = tally__io_fault(io, op, 0);
    if (verdict < 0)
        return verdict;
    if (io->use_uring) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
        if (!sqe)
            return -EBUSY;
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
        int rc = io_uring_submit_and_wait(&io->ring, 1);
        if (rc < 0)
            return rc;
        struct io_uring_cqe *cqe;
        rc = io_uring_wait_cqe(&io->ring, &cqe);
        if (rc < 0)
            return rc;
        rc = cqe->res;
        io_uring_cqe_seen(&io->ring, cqe);
        return rc < 0 ? rc : 0;
    }
    return fdatasync(fd) != 0 ? -errno : 0;
}
