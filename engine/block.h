/*
 * block.h — sealed blocks: one series' points, sorted by (step, timestamp),
 * encoded column by column in chunks of TALLY_CHUNK_POINTS points, with a
 * header of summaries and checksums. Private to the engine. The byte layout
 * is in format.h and docs/format.md ("Blocks").
 *
 *   +--------------------+  fixed-size header: magic, version, series id,
 *   | block header       |  counts, step/time ranges, min/max/sum, first and
 *   |                    |  last point, body sizes, flags, checksums
 *   +--------------------+
 *   | body (raw or LZ4)  |  per chunk, the steps, timestamps and values
 *   |                    |  column chunks (steps or timestamps left out
 *   |                    |  when linear over the block), then the chunk
 *   |                    |  table (per chunk: offset, min, max, sum,
 *   |                    |  argmin, argmax, n_nan), itself stored as
 *   |                    |  column chunks
 *   +--------------------+
 *
 * Invariants:
 *  (1) The header checksum covers the header; the body checksum covers the
 *      body as stored. Nothing is trusted before its checksum is verified.
 *  (2) Points are sorted by (step, timestamp, value bits) and exact duplicates
 *      of (step, timestamp, value bits) are collapsed by the encoder.
 *  (3) The body is stored LZ4-compressed only when that saves at least 1/8
 *      of it; otherwise raw, so chunks can be decoded in place from the mmap.
 *  (4) Every read is bounds-checked against the block's end: damaged bytes
 *      give TALLY_ECORRUPT, never a crash.
 */
#ifndef TALLY_BLOCK_H
#define TALLY_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "tally/engine.h"

/* Upper bound of an encoded block of n points (1 <= n <= 65536). */
size_t tally__block_bound(uint32_t n);

/* Bytes of scratch memory tally__block_encode needs for n points. */
size_t tally__block_encode_scratch_size(uint32_t n);

/* Sorts and deduplicates the n points in place (columns permuted together)
 * and returns the new count. The encoder requires its input in this form. */
uint32_t tally__block_sort_points(int64_t *steps, int64_t *timestamps_ms, double *values,
                                  uint32_t n);

/* Encodes n sorted, deduplicated points (1 <= n <= 65536) of series_id into
 * out (at least tally__block_bound(n) bytes), using scratch (at least
 * tally__block_encode_scratch_size(n) bytes). Returns the block's size. */
size_t tally__block_encode(uint64_t series_id, const int64_t *steps, const int64_t *timestamps_ms,
                           const double *values, uint32_t n, uint8_t *out, uint8_t *scratch);

/* Reads and verifies the header of the block at [p, end). Writes its summary
 * (segment and offset left 0 for the caller), its total size in bytes and its
 * series id; each out-pointer may be NULL. Does not read the body, but checks
 * that the whole block lies inside [p, end). Returns 0, TALLY_ECORRUPT, or
 * TALLY_EVERSION for a well-checksummed header of an unknown format version. */
int tally__block_header(const uint8_t *p, const uint8_t *end, tally_block_summary *summary,
                        uint32_t *block_len, uint64_t *series_id);

/* A verified, readable view of one block. The view owns a buffer holding the
 * decoded chunk table and, if the body is LZ4-compressed, the decompressed
 * body; a raw body is read in place, so the caller's bytes must outlive the
 * view. Fields are block.c's; callers read n_points and n_chunks only. */
typedef struct tally__block_view {
    const uint8_t *body;     /* the raw body (NULL while no block is open) */
    const uint8_t *body_end; /* its end */
    uint8_t *owned;          /* decoded chunk table, then the LZ4-decompressed body */
    size_t owned_cap;        /* capacity of owned in bytes, reused across opens */
    uint32_t n_points;       /* points in the open block */
    uint32_t n_chunks;       /* chunks in the open block */
    uint32_t flags;          /* the block's TALLY_BLOCK_F_* (format.h) */
    int64_t step0, ts0;      /* first step and timestamp, for linear columns */
    uint64_t dstep, dts;     /* their increments per point, for linear columns */
    uint32_t columns_len;    /* bytes of column data before the chunk table */
    int summaries_loaded;    /* the table's summary columns are decoded (lazily, for chunks()) */
    struct tally__decoded_chunk { /* two chunks read a point or two at a time although */
        uint32_t k;               /* stored sequentially, decoded in part (10); UINT32_MAX: none */
        uint32_t valid;           /* points [0, valid) of chunk k are here */
        int64_t st[TALLY_CHUNK_POINTS], ts[TALLY_CHUNK_POINTS];
        double v[TALLY_CHUNK_POINTS];
    } dec[2];
    unsigned dec_next;       /* the slot the next decoded chunk replaces */
} tally__block_view;

/* Opens the block at [p, end) into v (zero v before its first use; reuse it
 * for later blocks to keep its buffer). Verifies both checksums and decodes
 * and checks the chunk table. Returns 0, TALLY_ECORRUPT, TALLY_EVERSION or
 * TALLY_ENOMEM; on error v stays usable (for another open or free) but has
 * no block open. */
int tally__block_view_open(tally__block_view *v, const uint8_t *p, const uint8_t *end);

/* The same, skipping the header and body checksums and the chunk table's
 * per-entry checks when the caller already verified this block earlier in
 * the process, or wrote it from memory (blocks are immutable). */
int tally__block_view_open_ex(tally__block_view *v, const uint8_t *p, const uint8_t *end,
                              int body_verified);

/* Frees the view's buffer and zeroes it. NULL is a no-op. */
void tally__block_view_free(tally__block_view *v);

/* Summaries of every chunk (cap >= n_chunks) into out[0..n_chunks). min, max,
 * sum, n_nan and argmin/argmax come from the chunk table; first and last
 * points from the column chunks' random access. Returns 0, TALLY_EINVAL (no
 * block open, cap too small) or TALLY_ECORRUPT. */
int tally__block_view_chunks(tally__block_view *v, tally_chunk_summary *out, size_t cap);

/* Decodes points [from, from + n) into the columns (each may be NULL).
 * Touches only the chunks that hold them. Returns 0, TALLY_EINVAL (no block
 * open, range past n_points) or TALLY_ECORRUPT. */
int tally__block_view_decode(tally__block_view *v, uint32_t from, uint32_t n,
                             int64_t *steps, int64_t *timestamps_ms, double *values);

/* Starts loading the first bytes of chunk k's column data (where the column
 * headers and the first packed words are) into the CPU cache: a hint, no
 * effect on results; k >= n_chunks or no open block is ignored. */
void tally__block_view_prefetch_chunk(const tally__block_view *v, uint32_t k);

/* Starts loading point p's chunk start (column headers) and the line where p
 * most likely lies: its proportional share of the chunk's data, exact for
 * fixed-width columns, the last column (values) being the widest. A hint;
 * p >= n_points or no open block is ignored. */
void tally__block_view_prefetch_point(const tally__block_view *v, uint32_t p);

#endif /* TALLY_BLOCK_H */
