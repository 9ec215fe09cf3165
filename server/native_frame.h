/*
 * native_frame.h — the native ingest frame: a versioned, checksummed,
 * columnar batch of metric points for many series, optionally LZ4-compressed.
 * `POST /api/2.0/tally/ingest` takes one frame as its body (native.c); the
 * byte layout is specified for client writers in docs/api.md, "Native API".
 *
 * Every integer is little-endian. A frame is a 32-byte header followed by the
 * payload as transmitted (raw or LZ4-compressed):
 *
 *   OFFSET SIZE DESCRIPTION
 *   0      4    magic "TLYF" (bytes 54 4C 59 46)
 *   4      2    version, u16 = 1
 *   6      2    flags, u16: bit 0 = payload is one LZ4 block; bit 1 = the
 *                checksum is CRC-32 instead of XXH3-64; other bits 0
 *   8      4    n_series, u32: series records in the payload
 *   12     4    n_points, u32: sum of the records' point counts
 *   16     4    payload_len, u32: payload bytes as transmitted (= frame - 32)
 *   20     4    raw_len, u32: payload bytes after decompression
 *                (= payload_len when not compressed)
 *   24     8    checksum, u64: XXH3-64 (seed 0) of the payload_len bytes
 *                as transmitted (verified before decompressing); with
 *                flag bit 1, the CRC-32 (zlib's crc32, the ISO-HDLC
 *                polynomial) of the same bytes, upper 32 bits zero. The
 *                CRC option exists for clients whose language has a fast
 *                CRC-32 but no XXH3 (Python's zlib.crc32).
 *
 * The raw payload is n_series records back to back; each starts at an
 * 8-byte-aligned offset of the raw payload, so the columns can be used in
 * place on little-endian hosts:
 *
 *   OFFSET SIZE       DESCRIPTION
 *   0      2          run_id_len, u16, 1..TALLY_FRAME_MAX_RUN_ID
 *   2      2          key_len, u16, 1..TALLY_FRAME_MAX_KEY
 *   4      4          n, u32: points of this series (0 allowed: skipped)
 *   8      r          run id bytes (r = run_id_len)
 *   8+r    k          metric key bytes (k = key_len)
 *   8+r+k  p          zero padding to the next multiple of 8 (p = 0..7)
 *   A      8n         steps, i64[n]                        (A = 8+r+k+p)
 *   A+8n   8n         timestamps in ms since the epoch, i64[n]
 *   A+16n  8n         values, f64[n] (IEEE 754 bits; NaN and inf allowed)
 *
 * Invariants a decoded frame satisfies (checked in this order; each failure
 * is an error naming the first problem, never an assert):
 *  (1) len >= 32, magic, version == 1, no unknown flag bit.
 *  (2) payload_len == len - 32; raw_len <= TALLY_FRAME_MAX_RAW; without the
 *      LZ4 flag raw_len == payload_len.
 *  (3) The checksum (of the kind flag bit 1 names) matches the transmitted
 *      payload.
 *  (4) With the LZ4 flag, the payload decompresses to exactly raw_len bytes.
 *  (5) Every record lies inside the raw payload, its lengths are in range,
 *      its padding is zero; the records fill the payload exactly; their
 *      count is n_series and their points sum to n_points.
 * Run ids and keys are bytes here; what they must look like (existing run,
 * MLflow's key rule) is the server's business (native.c).
 */
#ifndef TALLY_SERVER_NATIVE_FRAME_H
#define TALLY_SERVER_NATIVE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "tally/engine.h"

#define TALLY_FRAME_MAGIC_BYTES "TLYF"
#define TALLY_FRAME_VERSION 1u
#define TALLY_FRAME_HEADER_BYTES 32u
#define TALLY_FRAME_RECORD_BYTES 8u          /* fixed part of a series record */
#define TALLY_FRAME_F_LZ4 0x0001u            /* payload is one LZ4 block */
#define TALLY_FRAME_F_CRC32 0x0002u          /* checksum is CRC-32, not XXH3-64 */
#define TALLY_FRAME_KNOWN_FLAGS (TALLY_FRAME_F_LZ4 | TALLY_FRAME_F_CRC32)
#define TALLY_FRAME_MAX_RUN_ID 256u          /* bytes; MLflow's run id rule allows 256 chars */
#define TALLY_FRAME_MAX_KEY 1000u            /* bytes; 250 characters of up to 4 bytes */
#define TALLY_FRAME_MAX_RAW (256u << 20)     /* raw payload bytes (~11 M points) */

/* A decoder holds the scratch a decode needs (decompression buffer, aligned
 * copy, the series table) and reuses it across frames: one per thread. */
typedef struct tally_frame_decoder {
    uint8_t *raw;                /* decompressed or aligned copy of the payload */
    size_t raw_cap;              /* bytes allocated at raw */
    tally_series_batch *series;  /* decoded series, n_series of them */
    size_t series_cap;           /* entries allocated at series */
    size_t n_series;             /* series records decoded (zero-point ones skipped) */
    uint64_t n_points;           /* points decoded */
} tally_frame_decoder;

void tally_frame_decoder_init(tally_frame_decoder *d);
/* Frees the scratch; the decoder may be initialised again. NULL is a no-op. */
void tally_frame_decoder_free(tally_frame_decoder *d);

/* Decodes and validates frame[0..len) (invariants (1)-(5)). On success
 * d->series[0..d->n_series) describe the points, in frame order, with
 * zero-point records left out; the pointers are borrowed from frame or from
 * d and live until the next decode on d or until frame is freed.
 * Errors: TALLY_ECORRUPT (bad bytes of any kind), TALLY_EVERSION (another
 * version), TALLY_ETOOBIG (raw_len over max_raw), TALLY_ENOMEM; err (cap
 * bytes, may be NULL) gets a one-line message. max_raw 0 means
 * TALLY_FRAME_MAX_RAW. */
int tally_frame_decode(tally_frame_decoder *d, const void *frame, size_t len, size_t max_raw,
                       char *err, size_t cap);

/* Bytes of the raw payload for these series (no header, no compression). */
size_t tally_frame_raw_size(const tally_series_batch *s, size_t n);

/* Encodes n series into a new frame (LZ4-compressed when flags has
 * TALLY_FRAME_F_LZ4). *out is allocated here and freed with
 * tally_frame_buf_free(). Errors: TALLY_EINVAL (a length out of range, too
 * many points, raw payload over TALLY_FRAME_MAX_RAW, unknown flag),
 * TALLY_ENOMEM. */
int tally_frame_encode(const tally_series_batch *s, size_t n, unsigned flags, uint8_t **out,
                       size_t *out_len);
void tally_frame_buf_free(uint8_t *buf);

#endif /* TALLY_SERVER_NATIVE_FRAME_H */
