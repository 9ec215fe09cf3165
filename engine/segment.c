/*
 * segment.c — segment files: seg/<number:08x>.seg, append-only, holding
 * sealed blocks back to back (no file header: each block carries its own
 * magic and checksums). Each is mapped read-only with MAP_SHARED over
 * segment_bytes + the largest block, so the mapping never moves while the
 * file grows; readers only touch bytes a published block reference covers.
 * The pages readers touch stay mapped (and count in the process's resident
 * memory) until tally_engine_trim_maps madvises MADV_DONTNEED over every
 * mapping (the page cache keeps the data; the next read is a minor fault):
 * the reader that brings the bytes read since the last trim to
 * opt.map_trim_bytes runs it.
 * A segment is never rewritten in place: recovery may only cut a tail that
 * no checkpoint references.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "block.h"
#include "internal.h"

void tally__segment_path(const tally_engine *e, uint32_t number, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/seg/%08x.seg", e->dir, number);
}

tally__segment *tally__segment_get(tally_engine *e, uint32_t number)
{
    tally__segment *page = atomic_load_explicit(&e->seg_pages[number / TALLY_SEG_PAGE],
                                                memory_order_acquire);
    return page ? &page[number % TALLY_SEG_PAGE] : NULL;
}

static size_t map_size(const tally_engine *e)
{
    return (size_t)e->opt.segment_bytes + tally__block_bound(65536);
}

/* Makes slot `number` exist and returns it. */
static tally__segment *slot(tally_engine *e, uint32_t number)
{
    if (number / TALLY_SEG_PAGE >= TALLY_SEG_PAGES)
        return NULL;
    tally__segment *page = atomic_load_explicit(&e->seg_pages[number / TALLY_SEG_PAGE],
                                                memory_order_acquire);
    if (!page) {
        page = tally__calloc(TALLY_SEG_PAGE, sizeof *page);
        if (!page)
            return NULL;
        for (uint32_t i = 0; i < TALLY_SEG_PAGE; i++)
            page[i].fd = -1;
        atomic_store_explicit(&e->seg_pages[number / TALLY_SEG_PAGE], page, memory_order_release);
    }
    return &page[number % TALLY_SEG_PAGE];
}

int tally__segment_open(tally_engine *e, uint32_t number, uint64_t len, int writable)
{
    char path[4096];
    tally__segment_path(e, number, path, sizeof path);
    tally__segment *sg = slot(e, number);
    if (!sg)
        return TALLY_ETOOBIG;
    int fd = open(path, (writable ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    if ((uint64_t)st.st_size < len) {
        tally__log("segment %s is %lld bytes, the checkpoint says %llu", path,
                   (long long)st.st_size, (unsigned long long)len);
        close(fd);
        return TALLY_ECORRUPT;
    }
    if (writable && (uint64_t)st.st_size > len && ftruncate(fd, (off_t)len) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    size_t ml = map_size(e);
    void *map = mmap(NULL, ml, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    sg->fd = fd;
    sg->map = map;
    sg->map_len = ml;
    sg->len = len;
    sg->dirty = 0;
    if (number > e->n_segments)
        __atomic_store_n(&e->n_segments, number, __ATOMIC_RELEASE);
    return 0;
}

/* Creates the next segment file and fsyncs the directory entry. */
static int segment_create(tally_engine *e)
{
    uint32_t number = e->n_segments + 1;
    char path[4096];
    tally__segment_path(e, number, path, sizeof path);
    unlink(path); /* a leftover from before a crash holds nothing referenced */
    int rc = tally__segment_open(e, number, 0, 1);
    if (rc)
        return rc;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/seg", e->dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int tally__segment_append(tally_engine *e, const uint8_t *block, uint32_t len,
                          tally__block_ref *ref)
{
    tally__segment *sg = e->n_segments ? tally__segment_get(e, e->n_segments) : NULL;
    if (!sg || (sg->len > 0 && sg->len + len > e->opt.segment_bytes)) {
        int rc = segment_create(e);
        if (rc)
            return rc;
        sg = tally__segment_get(e, e->n_segments);
    }
    struct iovec iov = {(void *)block, len};
    int rc = tally__io_write(e->seg_io, sg->fd, &iov, 1, sg->len, 0, TALLY_IO_OP_SEGMENT_WRITE,
                             TALLY_IO_OP_SEGMENT_SYNC);
    if (rc)
        return rc;
    ref->segment = e->n_segments;
    ref->offset = sg->len;
    ref->len = len;
    sg->len += len;
    sg->dirty = 1;
    atomic_fetch_add(&e->segment_bytes, len);
    return 0;
}

/* The verified-bodies bitmap: one bit per 64-byte granule of the mapping
 * (every block is longer than 64 bytes, so each block has its own bit). */
static _Atomic uint64_t *verified_bits(tally__segment *sg)
{
    uint64_t *bits = atomic_load_explicit(&sg->verified, memory_order_acquire);
    if (bits)
        return (_Atomic uint64_t *)bits;
    size_t words = sg->map_len / 64 / 64 + 1;
    uint64_t *fresh = tally__calloc(words, sizeof *fresh);
    if (!fresh)
        return NULL;
    uint64_t *expected = NULL;
    if (!atomic_compare_exchange_strong(&sg->verified, &expected, fresh)) {
        tally__free(fresh);
        return (_Atomic uint64_t *)expected;
    }
    return (_Atomic uint64_t *)fresh;
}

int tally__segment_is_verified(tally__segment *sg, uint64_t offset)
{
    uint64_t *bits = atomic_load_explicit(&sg->verified, memory_order_acquire);
    if (!bits)
        return 0;
    uint64_t g = offset / 64;
    return (atomic_load_explicit((_Atomic uint64_t *)&bits[g / 64], memory_order_relaxed) >>
            (g % 64)) & 1;
}

void tally__segment_set_verified(tally__segment *sg, uint64_t offset)
{
    _Atomic uint64_t *bits = verified_bits(sg);
    if (!bits)
        return; /* out of memory: the block is simply verified again next time */
    uint64_t g = offset / 64;
    atomic_fetch_or_explicit(&bits[g / 64], 1ull << (g % 64), memory_order_relaxed);
}

int tally__segment_sync_all(tally_engine *e)
{
    for (uint32_t n = e->first_segment; n >= 1 && n <= e->n_segments; n++) {
        tally__segment *sg = tally__segment_get(e, n);
        if (!sg || !sg->dirty)
            continue;
        int rc = tally__io_sync(e->seg_io, sg->fd, TALLY_IO_OP_SEGMENT_SYNC);
        if (rc)
            return rc;
        sg->dirty = 0;
    }
    return 0;
}

void tally__segment_close_all(tally_engine *e)
{
    for (uint32_t p = 0; p < TALLY_SEG_PAGES; p++) {
        tally__segment *page = atomic_load(&e->seg_pages[p]);
        if (!page)
            continue;
        for (uint32_t i = 0; i < TALLY_SEG_PAGE; i++) {
            if (page[i].map)
                munmap(page[i].map, page[i].map_len);
            if (page[i].fd >= 0)
                close(page[i].fd);
            tally__free(atomic_load(&page[i].verified));
            tally__free(atomic_load(&page[i].touched));
        }
        tally__free(page);
        atomic_store(&e->seg_pages[p], NULL);
    }
}

int tally_engine_trim_maps(tally_engine *e)
{
    if (!e)
        return TALLY_EINVAL;
    /* Slots and mappings live until close (internal.h (3)); n_segments only
     * grows and is stored (release) after its slot's mapping is set. */
    uint32_t last = __atomic_load_n(&e->n_segments, __ATOMIC_ACQUIRE);
    atomic_store_explicit(&e->map_read_bytes, 0, memory_order_relaxed);
    for (uint32_t n = 1; n <= last; n++) {
        tally__segment *sg = tally__segment_get(e, n);
        if (!sg || !sg->map)
            continue;
        uint64_t *bits = atomic_load_explicit(&sg->touched, memory_order_acquire);
        for (size_t w = 0; bits && w < sg->map_len / TALLY__FAULT_AROUND / 64 + 1; w++)
            atomic_store_explicit((_Atomic uint64_t *)&bits[w], 0, memory_order_relaxed);
        madvise(sg->map, sg->map_len, MADV_DONTNEED);
    }
    atomic_fetch_add_explicit(&e->map_trims, 1, memory_order_relaxed);
    return 0;
}

static _Atomic uint64_t *touched_bits(tally__segment *sg)
{
    uint64_t *bits = atomic_load_explicit(&sg->touched, memory_order_acquire);
    if (bits)
        return (_Atomic uint64_t *)bits;
    size_t words = sg->map_len / TALLY__FAULT_AROUND / 64 + 1;
    uint64_t *fresh = tally__calloc(words, sizeof *fresh);
    if (!fresh)
        return NULL;
    uint64_t *expected = NULL;
    if (!atomic_compare_exchange_strong(&sg->touched, &expected, fresh)) {
        tally__free(fresh);
        return (_Atomic uint64_t *)expected;
    }
    return (_Atomic uint64_t *)fresh;
}

void tally__segment_note_read(tally_engine *e, tally__segment *sg, uint64_t offset, uint64_t len)
{
    uint64_t limit = e->opt.map_trim_bytes;
    if (!limit || !sg || !len)
        return;
    _Atomic uint64_t *bits = touched_bits(sg);
    uint64_t fresh = 0;
    for (uint64_t w = offset / TALLY__FAULT_AROUND; w <= (offset + len - 1) / TALLY__FAULT_AROUND;
         w++) {
        uint64_t bit = 1ull << (w % 64);
        if (!bits) /* out of memory: count every window */
            fresh += TALLY__FAULT_AROUND;
        else if (!(atomic_load_explicit(&bits[w / 64], memory_order_relaxed) & bit) &&
                 !(atomic_fetch_or_explicit(&bits[w / 64], bit, memory_order_relaxed) & bit))
            fresh += TALLY__FAULT_AROUND;
    }
    if (!fresh)
        return;
    uint64_t before = atomic_fetch_add_explicit(&e->map_read_bytes, fresh, memory_order_relaxed);
    if (before < limit && before + fresh >= limit) /* one reader passes the mark */
        tally_engine_trim_maps(e);
}
