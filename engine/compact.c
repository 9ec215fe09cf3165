/*
 * compact.c — tally_engine_compact(): permanently removes series from a
 * data directory and reclaims their space, offline (the caller's process
 * holds the directory's lock for the whole operation).
 *
 * Steps, and what a crash at each leaves (docs/engine.md, "Dropping series
 * and compaction"):
 *
 *   1. open + close the engine: recovery, then every head sealed and one
 *      checkpoint C0 covering the whole WAL (no WAL file is left live);
 *   2. take the LOCK (flock, exclusive) again and read C0; delete segment
 *      files C0 does not name (leftovers of an earlier interrupted compaction);
 *   3. copy the blocks of every kept series, verbatim (a block carries its
 *      own series id and checksums, never its location), into NEW segment
 *      files numbered after C0's last, fdatasync them and the seg directory;
 *         crash here: C0 is intact and names none of the new files; they
 *         are deleted by the next compaction or replaced when the engine
 *         creates a segment of that number;
 *   4. write checkpoint C1 (kept series, references into the new segments,
 *      first_segment = the first new number) to directory.tck.tmp, fsync,
 *      rename over directory.tck, fsync the directory — the commit point;
 *         crash before the rename: as in 3; after it: C1 is the state, the
 *         old segment files are garbage below first_segment;
 *   5. delete the old segment files and fsync the seg directory.
 *         crash here: leftovers below first_segment, deleted by step 2 of
 *         the next compaction; nothing references them.
 *
 * Invariants:
 *  (1) At every instant directory.tck is C0 or C1, whole, and every segment
 *      byte it references is durable: a reader of the directory (the engine
 *      at open, tally_verify) sees either every dropped series or none, and
 *      every kept series whole.
 *  (2) Blocks are copied, not re-encoded: their bytes and checksums are
 *      those that were verified when sealed.
 *  (3) Nothing is changed when no series is dropped and no leftover exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <xxhash.h>

#include "alloc.h"
#include "format.h"
#include "internal.h"

/* Tests only: called at stage 1 (new segments durable, before the commit)
 * and stage 2 (after the commit, before the old segments are deleted). */
void (*tally__compact_stage_hook)(int stage);

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

static int write_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int read_exact(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return TALLY_ECORRUPT; /* a reference past the end of its segment */
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static uint64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static void seg_path(const char *dir, uint32_t n, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/seg/%08x.seg", dir, n);
}

/* Deletes seg/ files numbered outside [first, last] (last 0: all). */
static int remove_unnamed_segments(const char *dir, uint32_t first, uint32_t last, int *removed)
{
    char sd[4096], path[4200];
    snprintf(sd, sizeof sd, "%s/seg", dir);
    DIR *d = opendir(sd);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned n;
        char tail;
        if (sscanf(de->d_name, "%8x.se%c", &n, &tail) != 2 || tail != 'g' ||
            strlen(de->d_name) != 12)
            continue;
        if (last && n >= first && n <= last)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", sd, de->d_name) >= (int)sizeof path)
            continue;
        if (unlink(path) == 0)
            (*removed)++;
    }
    closedir(d);
    return *removed ? fsync_path(sd) : 0;
}

typedef struct out_seg {
    int fd;
    uint32_t number;
    uint64_t len;
} out_seg;

int tally_engine_compact(const char *dir, const tally_series_id *drop, size_t n_drop,
                         tally_compact_stats *stats)
{
    return tally_engine_compact_progress(dir, drop, n_drop, stats, NULL, NULL);
}

int tally_engine_compact_progress(const char *dir, const tally_series_id *drop, size_t n_drop,
                                  tally_compact_stats *stats, tally_progress_fn progress,
                                  void *progress_ctx)
{
    tally_compact_stats st;
    memset(&st, 0, sizeof st);
    if (!dir)
        return TALLY_EINVAL;

    /* 1. recovery, seal, checkpoint covering the whole WAL */
    tally_engine_options o;
    tally_engine_options_init(&o);
    tally_engine *e;
    int rc = tally_engine_open(dir, &o, &e);
    if (rc)
        return rc;
    rc = tally_engine_close(e);
    if (rc)
        return rc;

    /* 2. the lock, C0, leftovers */
    char path[4200], tmp[4200];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0)
        return -errno;
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        close(lock_fd);
        return TALLY_ELOCKED;
    }
    uint8_t *buf = NULL, *copy = NULL, *entries = NULL;
    uint64_t *ids = NULL;
    out_seg *outs = NULL;
    size_t n_outs = 0, outs_cap = 0, len = 0, kept_bytes = 0;
    int *old_fds = NULL, removed = 0;
    uint32_t n_old = 0;
    uint64_t n_kept = 0;
    const uint8_t *p, *end, *series_start;
    uint8_t *q;
    tally__ckpt_hdr h;
    snprintf(path, sizeof path, "%s/directory.tck", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? 0 : -errno; /* an empty directory: nothing to drop */
        goto out;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !(buf = tally__malloc((size_t)sb.st_size + 1))) {
        rc = buf ? -errno : TALLY_ENOMEM;
        close(fd);
        goto out;
    }
    len = (size_t)sb.st_size;
    rc = read_exact(fd, buf, len, 0);
    close(fd);
    if (rc)
        goto out;
    if (len < sizeof h) {
        rc = TALLY_ECORRUPT;
        goto out;
    }
    memcpy(&h, buf, sizeof h);
    if (h.magic != CKPT_MAGIC ||
        h.header_checksum != XXH3_64bits(&h, offsetof(tally__ckpt_hdr, header_checksum)) ||
        h.payload_len != len - sizeof h ||
        XXH3_64bits(buf + sizeof h, h.payload_len) != h.payload_checksum) {
        rc = TALLY_ECORRUPT;
        goto out;
    }
    if (h.version != CKPT_VERSION) {
        rc = TALLY_EVERSION;
        goto out;
    }
    rc = remove_unnamed_segments(dir, h.first_segment, h.n_segments, &removed);
    if (rc)
        goto out;

    /* which series go */
    ids = tally__malloc((n_drop ? n_drop : 1) * sizeof *ids);
    if (!ids) {
        rc = TALLY_ENOMEM;
        goto out;
    }
    if (n_drop) {
        memcpy(ids, drop, n_drop * sizeof *ids);
        qsort(ids, n_drop, sizeof *ids, cmp_u64);
    }
    n_old = h.n_segments ? h.n_segments - h.first_segment + 1 : 0;
    p = buf + sizeof h;
    end = buf + len;
    if ((size_t)(end - p) / 8 < n_old) {
        rc = TALLY_ECORRUPT;
        goto out;
    }
    p += (size_t)n_old * 8;
    series_start = p;
    for (uint64_t i = 0; i < h.n_series; i++) {
        tally__ckpt_series cs;
        if ((size_t)(end - p) < CKPT_SERIES_FIXED) {
            rc = TALLY_ECORRUPT;
            goto out;
        }
        memcpy(&cs, p, sizeof cs);
        size_t entry = CKPT_SERIES_FIXED + pad8((size_t)cs.run_len + cs.key_len) +
                       (size_t)CKPT_BLOCK_REF * cs.n_blocks;
        if ((size_t)(end - p) < entry) {
            rc = TALLY_ECORRUPT;
            goto out;
        }
        int dropped = n_drop && bsearch(&cs.id, ids, n_drop, sizeof *ids, cmp_u64);
        if (dropped) {
            st.series_dropped++;
            st.points_dropped += cs.n_points;
            st.blocks_dropped += cs.n_blocks;
        } else {
            kept_bytes += entry;
            n_kept++;
        }
        p += entry;
    }
    if (p != end) {
        rc = TALLY_ECORRUPT;
        goto out;
    }
    for (uint32_t n = h.first_segment; n_old && n <= h.n_segments; n++) {
        seg_path(dir, n, path, sizeof path);
        st.bytes_before += file_size(path);
    }
    if (st.series_dropped == 0) { /* invariant (3) */
        st.bytes_after = st.bytes_before;
        rc = 0;
        goto out;
    }

    /* 3. kept blocks into new segments */
    old_fds = tally__calloc(n_old ? n_old : 1, sizeof *old_fds);
    copy = tally__malloc(1u << 20);
    if (!old_fds || !copy) {
        rc = TALLY_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < n_old; i++)
        old_fds[i] = -1;
    for (uint32_t i = 0; i < n_old; i++) {
        seg_path(dir, h.first_segment + i, path, sizeof path);
        if ((old_fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            rc = -errno;
            goto out;
        }
    }
    uint64_t seg_limit = o.segment_bytes;
    /* the kept series entries, rewritten; the checkpoint is assembled once
     * the number of new segments is known */
    entries = tally__malloc(kept_bytes ? kept_bytes : 1);
    if (!entries) {
        rc = TALLY_ENOMEM;
        goto out;
    }
    q = entries;
    p = series_start;
    for (uint64_t i = 0; i < h.n_series && rc == 0; i++) {
        tally__ckpt_series cs;
        memcpy(&cs, p, sizeof cs);
        size_t head = CKPT_SERIES_FIXED + pad8((size_t)cs.run_len + cs.key_len);
        size_t entry = head + (size_t)CKPT_BLOCK_REF * cs.n_blocks;
        if (n_drop && bsearch(&cs.id, ids, n_drop, sizeof *ids, cmp_u64)) {
            p += entry;
            continue;
        }
        memcpy(q, p, head);
        q += head;
        const uint8_t *r = p + head;
        for (uint32_t b = 0; b < cs.n_blocks && rc == 0; b++, r += CKPT_BLOCK_REF) {
            uint32_t seg, blen;
            uint64_t off;
            memcpy(&seg, r, 4);
            memcpy(&blen, r + 4, 4);
            memcpy(&off, r + 8, 8);
            if (seg < h.first_segment || seg > h.n_segments || blen == 0 || blen > (1u << 20)) {
                rc = TALLY_ECORRUPT;
                break;
            }
            if (!n_outs || outs[n_outs - 1].len + blen > seg_limit) {
                if (n_outs == outs_cap) {
                    outs_cap = outs_cap ? outs_cap * 2 : 8;
                    out_seg *no = tally__realloc(outs, outs_cap * sizeof *no);
                    if (!no) {
                        rc = TALLY_ENOMEM;
                        break;
                    }
                    outs = no;
                }
                out_seg *os = &outs[n_outs];
                os->number = h.n_segments + 1 + (uint32_t)n_outs;
                os->len = 0;
                seg_path(dir, os->number, path, sizeof path);
                os->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (os->fd < 0) {
                    rc = -errno;
                    break;
                }
                n_outs++;
            }
            out_seg *os = &outs[n_outs - 1];
            if (progress)
                progress(progress_ctx, blen, 0);
            rc = read_exact(old_fds[seg - h.first_segment], copy, blen, off);
            if (rc == 0)
                rc = write_all(os->fd, copy, blen, os->len);
            memcpy(q, r, CKPT_BLOCK_REF);
            memcpy(q, &os->number, 4);
            memcpy(q + 8, &os->len, 8);
            q += CKPT_BLOCK_REF;
            os->len += blen;
        }
        p += entry;
    }
    if (rc == 0 && n_outs == 0) { /* every block dropped: one empty segment keeps numbering simple */
        outs = tally__malloc(sizeof *outs);
        if (!outs)
            rc = TALLY_ENOMEM;
        else {
            outs[0].number = h.n_segments + 1;
            outs[0].len = 0;
            seg_path(dir, outs[0].number, path, sizeof path);
            outs[0].fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            rc = outs[0].fd < 0 ? -errno : 0;
            n_outs = outs[0].fd < 0 ? 0 : 1;
        }
    }
    for (size_t i = 0; i < n_outs && rc == 0; i++)
        if (fdatasync(outs[i].fd) != 0)
            rc = -errno;
    snprintf(path, sizeof path, "%s/seg", dir);
    if (rc == 0)
        rc = fsync_path(path);
    if (rc)
        goto out;
    if (tally__compact_stage_hook)
        tally__compact_stage_hook(1);

    /* 4. C1, the commit */
    size_t payload = n_outs * 8 + (size_t)(q - entries);
    uint8_t *pb = tally__malloc(sizeof h + payload);
    if (!pb) {
        rc = TALLY_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_outs; i++) {
        memcpy(pb + sizeof h + i * 8, &outs[i].len, 8);
        st.bytes_after += outs[i].len;
    }
    memcpy(pb + sizeof h + n_outs * 8, entries, (size_t)(q - entries));
    tally__ckpt_hdr nh = h;
    nh.first_segment = outs[0].number;
    nh.n_segments = outs[n_outs - 1].number;
    nh.n_series = n_kept;
    nh.payload_len = payload;
    nh.payload_checksum = XXH3_64bits(pb + sizeof h, payload);
    nh.header_checksum = XXH3_64bits(&nh, offsetof(tally__ckpt_hdr, header_checksum));
    memcpy(pb, &nh, sizeof nh);
    snprintf(tmp, sizeof tmp, "%s/directory.tck.tmp", dir);
    snprintf(path, sizeof path, "%s/directory.tck", dir);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    rc = fd < 0 ? -errno : write_all(fd, pb, sizeof h + payload, 0);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    tally__free(pb);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc == 0)
        rc = fsync_path(dir);
    if (rc) {
        unlink(tmp);
        goto out;
    }
    if (tally__compact_stage_hook)
        tally__compact_stage_hook(2);

    /* 5. the old segments */
    for (uint32_t i = 0; i < n_old; i++) {
        close(old_fds[i]);
        old_fds[i] = -1;
        seg_path(dir, h.first_segment + i, path, sizeof path);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/seg", dir);
    rc = fsync_path(path);
out:
    for (size_t i = 0; i < n_outs; i++)
        if (outs[i].fd >= 0)
            close(outs[i].fd);
    if (old_fds)
        for (uint32_t i = 0; i < n_old; i++)
            if (old_fds[i] >= 0)
                close(old_fds[i]);
    tally__free(outs);
    tally__free(old_fds);
    tally__free(copy);
    tally__free(entries);
    tally__free(ids);
    tally__free(buf);
    close(lock_fd);
    if (stats)
        *stats = st;
    return rc;
}
