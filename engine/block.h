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
 *   | body (raw or LZ4)  |  chunk table (per chunk: offset, min, max, sum,
 *   |                    |  argmin, argmax, n_nan) then, per chunk, the
 *   |                    |  steps, timestamps and values column chunks
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
 * series id. Does not read the body. Returns 0 or TALLY_ECORRUPT. */
int tally__block_header(const uint8_t *p, const uint8_t *end, tally_block_summary *summary,
                        uint32_t *block_len, uint64_t *series_id);

/* A verified, readable view of one block. If the body is LZ4-compressed, it
 * is decompressed into a buffer the view owns; otherwise the view points into
 * the caller's bytes, which must outlive it. */
typedef struct tally__block_view {
    const uint8_t *body;     /* the raw body */
    const uint8_t *body_end;
    uint8_t *owned;          /* decompressed body, or NULL */
    size_t owned_cap;        /* capacity of owned, reused across opens */
    uint32_t n_points;
    uint32_t n_chunks;
} tally__block_view;

/* Opens the block at [p, end) into v (zero v before its first use; reuse it
 * for later blocks to keep its buffer). Verifies the body checksum.
 * Returns 0, TALLY_ECORRUPT or TALLY_ENOMEM. */
int tally__block_view_open(tally__block_view *v, const uint8_t *p, const uint8_t *end);

/* Frees the view's buffer. */
void tally__block_view_free(tally__block_view *v);

/* Summaries of every chunk (cap >= n_chunks). Returns 0, TALLY_EINVAL or
 * TALLY_ECORRUPT. */
int tally__block_view_chunks(const tally__block_view *v, tally_chunk_summary *out, size_t cap);

/* Decodes points [from, from + n) into the columns (each may be NULL).
 * Touches only the chunks that hold them. Returns 0, TALLY_EINVAL or
 * TALLY_ECORRUPT. */
int tally__block_view_decode(const tally__block_view *v, uint32_t from, uint32_t n,
                             int64_t *steps, int64_t *timestamps_ms, double *values);

#endif /* TALLY_BLOCK_H */
