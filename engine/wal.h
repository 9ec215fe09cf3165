/*
 * wal.h — the write-ahead log's records and files. Private to the engine.
 *
 * A WAL file is wal/<number:016x>.wal, preallocated, holding a file header
 * and then records back to back; the bytes after the last record are zeros
 * (preallocation) or a torn record. Numbers only grow; a file is never reused.
 *
 *   file:   [wal file header 32 B][record][record]...[zeros]
 *   record: [record header 32 B][payload, LZ4 or raw]
 *
 * Record header (little-endian; the structs are in format.h):
 *   OFFSET SIZE DESCRIPTION
 *        0    4 magic TALLY_WAL_RECORD_MAGIC
 *        4    1 type (1 = batch)
 *        5    1 flags (1 = payload LZ4-compressed)
 *        6    2 reserved, zero
 *        8    4 stored payload length
 *       12    4 raw payload length
 *       16    8 sequence number (consecutive across files)
 *       24    8 checksum: XXH3-64 of the header with this field zero, then the stored payload
 *
 * Raw batch payload:
 *   u32 n_series; per series: u16 run_len, u16 key_len, u32 n_points, run, key;
 *   then per series in the same order: steps[n] and timestamps[n] as int64
 *   differences from the previous value (the first from 0, wrapping), and
 *   values[n] XORed with the previous value's bits (the first with 0) and
 *   split into 8 byte planes (plane b holds byte b of every value, LSB first).
 *
 * Invariants:
 *  (1) A record is valid only if its magic, lengths, sequence number (previous
 *      + 1) and checksum all hold; replay stops at the first invalid one.
 *  (2) A decoded batch is bounds-checked: lengths must add up exactly to the
 *      raw payload length.
 */
#ifndef TALLY_WAL_H
#define TALLY_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "tally/engine.h"

/* Reusable buffers for encoding records (kept by the engine in a small pool
 * so large batches do not fault in fresh pages every time). */
typedef struct tally__wal_scratch {
    uint8_t *raw;     /* raw payload */
    size_t raw_cap;
    uint8_t *out;     /* header + stored payload */
    size_t out_cap;
    struct tally__wal_scratch *next; /* pool link */
} tally__wal_scratch;

void tally__wal_scratch_free(tally__wal_scratch *s);

/* An encoded record waiting for its sequence number and checksum. */
typedef struct tally__wal_record {
    uint8_t *buf;     /* header + stored payload, in the scratch's out buffer */
    size_t len;       /* total bytes */
    size_t raw_len;   /* raw payload bytes (for memory accounting) */
} tally__wal_record;

/* Size of the raw payload for a batch; TALLY_EINVAL / TALLY_ETOOBIG if invalid. */
int tally__wal_batch_size(const tally_series_batch *series, size_t n_series, size_t *raw_len);

/* Encodes a batch into rec using scratch's buffers (grown as needed; rec
 * points into them until the scratch is reused or freed). The header's
 * sequence number and checksum are left for tally__wal_seal_record. */
int tally__wal_encode_batch(const tally_series_batch *series, size_t n_series,
                            tally__wal_scratch *scratch, tally__wal_record *rec);

/* Sets the record's sequence number and checksum. */
void tally__wal_seal_record(tally__wal_record *rec, uint64_t seq);

/* Called for every series of a decoded batch. */
typedef int (*tally__wal_series_fn)(void *ctx, const tally_series_batch *series);

/* Checks the record at [p, end) whose sequence number must be expect_seq.
 * On success *rec_len gets its total size, and its payload (decompressed into
 * *scratch, grown as needed) is decoded, calling fn per series.
 * Returns 0, 1 when [p, end) holds no valid record (end of log), or an error
 * (TALLY_ENOMEM, or fn's error). */
int tally__wal_read_record(const uint8_t *p, const uint8_t *end, uint64_t expect_seq,
                           uint8_t **scratch, size_t *scratch_cap, tally__wal_series_fn fn,
                           void *ctx, size_t *rec_len);

/* File header for a new WAL file. */
void tally__wal_file_hdr_init(tally__wal_file_hdr *h, uint64_t number, uint64_t first_seq);
/* Checks a file header; 0 or TALLY_ECORRUPT. */
int tally__wal_file_hdr_check(const tally__wal_file_hdr *h, uint64_t number);

#endif /* TALLY_WAL_H */
