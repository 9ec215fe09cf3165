/*
 * recovery.c — WAL files on disk: naming, rolling over to a new file, and
 * replay at open.
 *
 * Replay reads every WAL file numbered above the checkpoint's wal_covered,
 * in order, and applies each valid record to the head buffers exactly as the
 * writer would have. It stops at the first record that fails a check (torn
 * or corrupt): that file is truncated there, and any later files are renamed
 * aside (*.wal.orphan) and reported, never replayed past a gap. A file that
 * ends cleanly is cut back to its last record too (its preallocated zeros
 * would otherwise stay on disk, one whole file per restart). Segments
 * were already cut back to the checkpoint's lengths, so every point is
 * applied exactly once. Cost: the WAL since the last checkpoint, not the
 * store.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "internal.h"

void tally__wal_path(const tally_engine *e, uint64_t number, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/wal/%016" PRIx64 ".wal", e->dir, number);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Numbers of the files in sub named <hex>.<ext>, sorted. */
static int list_numbered(const char *dir, const char *ext, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *dot = strchr(de->d_name, '.');
        if (!dot || strcmp(dot + 1, ext) != 0 || dot == de->d_name)
            continue;
        char *endp;
        uint64_t num = strtoull(de->d_name, &endp, 16);
        if (endp != dot)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nb = tally__realloc(*out, cap * sizeof *nb);
            if (!nb) {
                closedir(d);
                return TALLY_ENOMEM;
            }
            *out = nb;
        }
        (*out)[(*n)++] = num;
    }
    closedir(d);
    if (*n)
        qsort(*out, *n, sizeof **out, cmp_u64);
    return 0;
}

typedef struct replay_ctx {
    tally_engine *e;
    uint64_t wal_number;
} replay_ctx;

static int replay_series(void *ctx, const tally_series_batch *b)
{
    replay_ctx *rc = ctx;
    if (b->n_points == 0)
        return 0;
    tally__series *s;
    int r = tally__dir_get_or_create(rc->e, b->run_id, b->run_id_len, b->key, b->key_len, &s);
    if (r == TALLY_ECOLLISION)
        return 0; /* refused when first written, so refused again */
    if (r)
        return r;
    return tally__series_append(rc->e, s, b, rc->wal_number);
}

static void sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Whether bytes [off, len) of fd are all zero. Only the file's data
 * regions are read: holes, and on most filesystems the unwritten extents
 * of a preallocation, read as zeros by definition (SEEK_DATA skips them),
 * so a mostly empty preallocated WAL file costs a few reads, not a read of
 * wal_file_bytes. Where SEEK_DATA is not supported every byte is read. */
static int zeros_after(int fd, uint64_t off, uint64_t len)
{
    static _Thread_local uint8_t buf[65536];
    while (off < len) {
        uint64_t end = len;
        off_t d = lseek(fd, (off_t)off, SEEK_DATA);
        if (d < 0 && errno == ENXIO)
            return 1; /* only holes from off to the end */
        if (d >= 0) {
            off = (uint64_t)d;
            off_t h = lseek(fd, d, SEEK_HOLE);
            if (h > d && (uint64_t)h < end)
                end = (uint64_t)h;
        }
        while (off < end) {
            size_t want = end - off < sizeof buf ? (size_t)(end - off) : sizeof buf;
            ssize_t r = pread(fd, buf, want, (off_t)off);
            if (r <= 0)
                return 1; /* the file ends here */
            for (ssize_t i = 0; i < r; i++)
                if (buf[i])
                    return 0;
            off += (uint64_t)r;
        }
    }
    return 1;
}

/* Replays one file; *stop set when it ended in a bad record. */
static int replay_file(tally_engine *e, uint64_t number, uint64_t *seq, int *stop,
                       uint8_t **scratch, size_t *scratch_cap)
{
    char path[4096];
    tally__wal_path(e, number, path, sizeof path);
    int fd = open(path, (e->opt.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    size_t len = (size_t)st.st_size;
    uint64_t valid_end = 0;
    int rc = 0;
    if (len >= TALLY_WAL_FILE_HDR_SIZE) {
        uint8_t *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            rc = -errno;
            close(fd);
            return rc;
        }
        tally__wal_file_hdr h;
        memcpy(&h, map, sizeof h);
        if (tally__wal_file_hdr_check(&h, number) == 0 && h.first_seq == *seq) {
            replay_ctx ctx = {e, number};
            size_t off = TALLY_WAL_FILE_HDR_SIZE;
            valid_end = off;
            for (;;) {
                size_t rec_len;
                int r = tally__wal_read_record(map + off, map + len, *seq, scratch, scratch_cap,
                                               replay_series, &ctx, &rec_len);
                if (r == 1)
                    break;
                if (r < 0) {
                    rc = r;
                    break;
                }
                off += rec_len;
                valid_end = off;
                (*seq)++;
                atomic_fetch_add(&e->recovered_records, 1);
                e->live_wal_bytes += rec_len;
            }
        }
        munmap(map, len);
    }
    if (rc == 0) {
        /* Anything after the last valid record must be zeros (preallocation). */
        int torn = valid_end == 0 || !zeros_after(fd, valid_end, len);
        if (torn) {
            tally__log("WAL %s: invalid record at byte %" PRIu64 "%s", path, valid_end,
                       e->opt.read_only ? " (read-only: left as is)" : ", truncating there");
            *stop = 1;
            if (e->opt.read_only) {
            } else if (valid_end == 0) {
                unlink(path); /* its header never became durable: nothing in it was acknowledged */
            } else if (ftruncate(fd, (off_t)valid_end) != 0) {
                rc = -errno;
            }
        } else if (!e->opt.read_only && valid_end < len) {
            /* A clean end followed by preallocated zeros: this file is never
             * appended to again (the writer starts a new one), so give the
             * preallocation back. Without this, every crash-restart would
             * keep a whole wal_file_bytes of disk and make the next replay
             * read it. */
            if (ftruncate(fd, (off_t)valid_end) != 0)
                rc = -errno;
        }
    }
    close(fd);
    return rc;
}

int tally__recover_wal(tally_engine *e, uint64_t wal_covered, uint64_t next_seq)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/wal", e->dir);
    uint64_t *nums;
    size_t n;
    int rc = list_numbered(dir, "wal", &nums, &n);
    if (rc)
        return rc;
    uint8_t *scratch = NULL;
    size_t scratch_cap = 0;
    uint64_t seq = next_seq, last = wal_covered;
    int stop = 0;
    e->wal_first_live = wal_covered + 1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[4096];
        tally__wal_path(e, nums[i], path, sizeof path);
        if (nums[i] <= wal_covered) {
            if (!e->opt.read_only)
                unlink(path); /* covered by the checkpoint; a crash came before its deletion */
            continue;
        }
        if (stop) {
            char aside[4200];
            snprintf(aside, sizeof aside, "%s.orphan", path);
            tally__log("WAL %s follows a damaged file; moved aside to %s", path, aside);
            if (!e->opt.read_only && rename(path, aside) != 0)
                rc = -errno;
            continue;
        }
        if (e->wal_first_live == wal_covered + 1 && nums[i] > wal_covered + 1)
            e->wal_first_live = nums[i];
        rc = replay_file(e, nums[i], &seq, &stop, &scratch, &scratch_cap);
        last = nums[i];
    }
    tally__free(scratch);
    tally__free(nums);
    if (!e->opt.read_only)
        sync_dir(dir);
    e->next_seq = seq;
    e->wal_number = last; /* the writer starts at last + 1 */
    return rc;
}

int tally__wal_roll(tally_engine *e)
{
    uint64_t number = e->wal_number + 1;
    char path[4096];
    tally__wal_path(e, number, path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = 0;
    /* Preallocate so that group-commit fdatasyncs need not update the size. */
    if (fallocate(fd, 0, 0, (off_t)e->opt.wal_file_bytes) != 0 && errno != EOPNOTSUPP)
        rc = -errno;
    tally__wal_file_hdr h;
    tally__wal_file_hdr_init(&h, number, e->next_seq);
    struct iovec iov = {&h, sizeof h};
    if (rc == 0)
        rc = tally__io_write(e->io, fd, &iov, 1, 0, 1, TALLY_IO_OP_WAL_WRITE, TALLY_IO_OP_WAL_SYNC);
    if (rc) {
        close(fd);
        unlink(path);
        return rc;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/wal", e->dir);
    sync_dir(dir);
    if (e->wal_fd >= 0)
        close(e->wal_fd);
    e->wal_fd = fd;
    e->wal_number = number;
    e->wal_off = TALLY_WAL_FILE_HDR_SIZE;
    e->wal_alloc = e->opt.wal_file_bytes;
    e->live_wal_bytes += TALLY_WAL_FILE_HDR_SIZE;
    return 0;
}
