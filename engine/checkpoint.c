/*
 * checkpoint.c — the series directory checkpoint, DIR/directory.tck.
 *
 * Written by the writer after every head is sealed and every segment is
 * fdatasync'ed: to directory.tck.tmp, fdatasync, rename over
 * directory.tck, fsync of the directory. A reader therefore finds either the
 * old or the new checkpoint whole, never a mix. Layout (little-endian):
 *
 *   header, 64 bytes (tally__ckpt_hdr):
 *     OFFSET SIZE DESCRIPTION
 *          0    4 magic "TCKP"
 *          4    4 version (1)
 *          8    8 wal_covered: WAL files numbered <= this are fully sealed
 *         16    8 next_seq: sequence number of the next WAL record
 *         24    4 first_segment: lowest live segment number (>= 1)
 *         28    4 n_segments: highest segment number (0: none)
 *         32    8 n_series
 *         40    8 payload_len
 *         48    8 payload checksum (XXH3-64)
 *         56    8 header checksum (XXH3-64 of bytes 0..55)
 *   payload:
 *     u64 length of each segment first_segment..n_segments (valid bytes)
 *     per series (tally__ckpt_series, 128 bytes, then run, key, zero
 *     padding to 8, then n_blocks block references of 16 bytes:
 *     u32 segment, u32 length, u64 offset)
 *
 * Invariants:
 *  (1) Everything is checksummed; a checkpoint that fails a check is
 *      TALLY_ECORRUPT, never half-loaded into a running engine.
 *  (2) Every block reference lies inside its segment's recorded length.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "alloc.h"
#include "format.h"
#include "internal.h"

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int tally__checkpoint_write(tally_engine *e, uint64_t wal_covered)
{
    size_t n_segs = e->n_segments >= e->first_segment ? e->n_segments - e->first_segment + 1 : 0;
    size_t len = n_segs * 8;
    for (size_t i = 0; i < e->n_series; i++) {
        tally__series *s = e->all_series[i];
        len += CKPT_SERIES_FIXED + pad8(s->run_len + s->key_len) + (size_t)CKPT_BLOCK_REF * s->n_blocks;
    }
    uint8_t *payload = tally__calloc(1, len);
    if (!payload)
        return TALLY_ENOMEM;
    uint8_t *p = payload;
    for (uint32_t n = e->first_segment; n_segs && n <= e->n_segments; n++) {
        tally__segment *sg = tally__segment_get(e, n);
        uint64_t l = sg ? sg->len : 0;
        memcpy(p, &l, 8);
        p += 8;
    }
    for (size_t i = 0; i < e->n_series; i++) {
        tally__series *s = e->all_series[i];
        tally__ckpt_series cs = {0};
        cs.id = s->id;
        cs.run_len = s->run_len;
        cs.key_len = s->key_len;
        cs.n_blocks = s->n_blocks;
        cs.n_points = s->n_points;
        cs.latest = s->latest;
        cs.first = s->first;
        cs.min_step = s->min_step;
        cs.max_step = s->max_step;
        cs.min_ts = s->min_ts;
        cs.max_ts = s->max_ts;
        memcpy(p, &cs, sizeof cs);
        memcpy(p + sizeof cs, &s->min_value, 8);
        memcpy(p + sizeof cs + 8, &s->max_value, 8);
        p += CKPT_SERIES_FIXED;
        memcpy(p, s->run, s->run_len);
        memcpy(p + s->run_len, s->key, s->key_len);
        p += pad8(s->run_len + s->key_len);
        for (uint32_t b = 0; b < s->n_blocks; b++) {
            const tally__block_ref *r = &s->blocks[b];
            memcpy(p, &r->segment, 4);
            memcpy(p + 4, &r->len, 4);
            memcpy(p + 8, &r->offset, 8);
            memcpy(p + 16, &r->range.n_points, 4);
            memcpy(p + 20, &r->range.flags, 4);
            memcpy(p + 24, &r->range.min_step, 8);
            memcpy(p + 32, &r->range.max_step, 8);
            memcpy(p + 40, &r->range.min_timestamp_ms, 8);
            memcpy(p + 48, &r->range.max_timestamp_ms, 8);
            p += CKPT_BLOCK_REF;
        }
    }
    tally__ckpt_hdr h = {0};
    h.magic = CKPT_MAGIC;
    h.version = CKPT_VERSION;
    h.wal_covered = wal_covered;
    h.next_seq = e->next_seq;
    h.first_segment = e->first_segment;
    h.n_segments = e->n_segments;
    h.n_series = e->n_series;
    h.payload_len = len;
    h.payload_checksum = XXH3_64bits(payload, len);
    h.header_checksum = XXH3_64bits(&h, offsetof(tally__ckpt_hdr, header_checksum));

    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s/directory.tck.tmp", e->dir);
    snprintf(path, sizeof path, "%s/directory.tck", e->dir);
    int rc = tally__io_fault(e->io, TALLY_IO_OP_CHECKPOINT_WRITE, sizeof h + len);
    int fd = -1;
    if (rc == 0) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        rc = fd < 0 ? -errno : 0;
    } else if (rc > 0) {
        rc = -EIO;
    }
    if (rc == 0)
        rc = write_all(fd, &h, sizeof h);
    if (rc == 0)
        rc = write_all(fd, payload, len);
    if (rc == 0)
        rc = tally__io_sync(e->io, fd, TALLY_IO_OP_CHECKPOINT_SYNC);
    if (fd >= 0)
        close(fd);
    tally__free(payload);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc == 0 && fsync(e->dir_fd) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

/* Reads the whole file into memory; *buf NULL with rc 0 if it is absent. */
static int read_file(const char *path, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    uint8_t *b = tally__malloc((size_t)st.st_size);
    if (!b) {
        close(fd);
        return TALLY_ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
        if (r <= 0) {
            int rc = r < 0 ? -errno : TALLY_ECORRUPT;
            close(fd);
            tally__free(b);
            return rc;
        }
        got += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = got;
    return 0;
}

#define CORRUPT(why)                                                                          \
    do {                                                                                      \
        tally__log("checkpoint %s: %s", path, why);                                           \
        rc = TALLY_ECORRUPT;                                                                  \
        goto out;                                                                             \
    } while (0)

int tally__checkpoint_load(tally_engine *e, uint64_t *wal_covered, uint64_t *next_seq)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/directory.tck", e->dir);
    uint8_t *buf;
    size_t len;
    int rc = read_file(path, &buf, &len);
    *wal_covered = 0;
    *next_seq = 1;
    e->first_segment = 1;
    if (rc || !buf)
        return rc;
    tally__ckpt_hdr h;
    const uint8_t *p, *end = buf + len;
    if (len < sizeof h)
        CORRUPT("shorter than its header");
    memcpy(&h, buf, sizeof h);
    if (h.magic != CKPT_MAGIC ||
        h.header_checksum != XXH3_64bits(&h, offsetof(tally__ckpt_hdr, header_checksum)))
        CORRUPT("bad header");
    if (h.version != CKPT_VERSION) {
        rc = TALLY_EVERSION;
        goto out;
    }
    if (h.payload_len != len - sizeof h || XXH3_64bits(buf + sizeof h, h.payload_len) != h.payload_checksum)
        CORRUPT("payload checksum mismatch");
    if (h.first_segment == 0 || (h.n_segments && h.n_segments < h.first_segment))
        CORRUPT("bad segment range");
    p = buf + sizeof h;
    e->first_segment = h.first_segment;
    if (h.n_segments) {
        if ((size_t)(end - p) / 8 < (size_t)(h.n_segments - h.first_segment + 1))
            CORRUPT("truncated segment table");
        for (uint32_t n = h.first_segment; n <= h.n_segments; n++) {
            uint64_t l;
            memcpy(&l, p, 8);
            p += 8;
            rc = tally__segment_open(e, n, l, !e->opt.read_only);
            if (rc)
                goto out;
        }
    }
    for (uint64_t i = 0; i < h.n_series; i++) {
        tally__ckpt_series cs;
        if ((size_t)(end - p) < CKPT_SERIES_FIXED)
            CORRUPT("truncated series");
        memcpy(&cs, p, sizeof cs);
        size_t names = pad8((size_t)cs.run_len + cs.key_len);
        if (cs.run_len == 0 || cs.key_len == 0 || cs.run_len > 1024 || cs.key_len > 1024 ||
            (size_t)(end - p) - CKPT_SERIES_FIXED < names ||
            ((size_t)(end - p) - CKPT_SERIES_FIXED - names) / CKPT_BLOCK_REF < cs.n_blocks)
            CORRUPT("bad series entry");
        const char *run = (const char *)p + CKPT_SERIES_FIXED;
        tally__series *s;
        rc = tally__dir_get_or_create(e, run, cs.run_len, run + cs.run_len, cs.key_len, &s);
        if (rc)
            goto out;
        if (s->id != cs.id || s->n_points != 0)
            CORRUPT("series id does not match its names, or appears twice");
        s->n_points = cs.n_points;
        s->latest = cs.latest;
        s->first = cs.first;
        s->min_step = cs.min_step;
        s->max_step = cs.max_step;
        s->min_ts = cs.min_ts;
        s->max_ts = cs.max_ts;
        memcpy(&s->min_value, p + sizeof cs, 8);
        memcpy(&s->max_value, p + sizeof cs + 8, 8);
        p += CKPT_SERIES_FIXED + names;
        for (uint32_t b = 0; b < cs.n_blocks; b++) {
            tally__block_ref ref;
            memcpy(&ref.segment, p, 4);
            memcpy(&ref.len, p + 4, 4);
            memcpy(&ref.offset, p + 8, 8);
            memcpy(&ref.range.n_points, p + 16, 4);
            memcpy(&ref.range.flags, p + 20, 4);
            memcpy(&ref.range.min_step, p + 24, 8);
            memcpy(&ref.range.max_step, p + 32, 8);
            memcpy(&ref.range.min_timestamp_ms, p + 40, 8);
            memcpy(&ref.range.max_timestamp_ms, p + 48, 8);
            p += CKPT_BLOCK_REF;
            if (ref.range.n_points == 0 || ref.range.min_step > ref.range.max_step ||
                ref.range.min_timestamp_ms > ref.range.max_timestamp_ms)
                CORRUPT("bad block range");
            tally__segment *sg = ref.segment >= h.first_segment && ref.segment <= h.n_segments
                                     ? tally__segment_get(e, ref.segment)
                                     : NULL;
            if (!sg || ref.offset > sg->len || ref.len > sg->len - ref.offset || ref.len == 0)
                CORRUPT("block reference outside its segment");
            rc = tally__series_add_block(s, &ref);
            if (rc)
                goto out;
            atomic_fetch_add(&e->segment_bytes, ref.len);
        }
        atomic_fetch_add(&e->n_points_total, s->n_points);
        atomic_fetch_add(&e->n_blocks_total, s->n_blocks);
    }
    if (p != end)
        CORRUPT("trailing bytes");
    *wal_covered = h.wal_covered;
    *next_seq = h.next_seq;
    rc = 0;
out:
    tally__free(buf);
    return rc;
}
