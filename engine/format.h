/*
 * format.h — every on-disk structure of the engine, in one place. Private to
 * the engine; the byte-level spec with the same tables is docs/format.md.
 *
 * Rules for everything in this file:
 *  (1) All integers and doubles are little-endian. The engine only builds on
 *      little-endian hosts (checked below), so a struct is read by copying its
 *      bytes (memcpy) into an aligned local and written the same way.
 *  (2) Fixed-width fields only, natural alignment, explicit padding fields
 *      that are written as zero and checked to be zero, no pointers.
 *  (3) Every structure starts with (or sits inside one that starts with) a
 *      magic and a format version, and is covered by an XXH3-64 checksum.
 *  (4) Sizes and field offsets are pinned with _Static_assert: changing one is
 *      a format change and needs a new version number.
 */
#ifndef TALLY_FORMAT_H
#define TALLY_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "tally/engine.h" /* tally_point, inside the checkpoint's series entry */

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "Tally's on-disk format is little-endian and is only read natively on little-endian hosts"
#endif

_Static_assert(sizeof(double) == 8, "double must be IEEE-754 binary64");

/* ======================================================================== */
/* Blocks (engine/block.c)                                                   */
/* ======================================================================== */

/*
 * A sealed block holds 1..65536 points of one series, sorted by (step,
 * timestamp, value bits), exact duplicates collapsed. It is a fixed header
 * followed by the body, stored raw or LZ4-compressed:
 *
 *   block (header + stored body)
 *   +-----------------------------+ 0
 *   | tally_disk_block_header     |   144 bytes
 *   +-----------------------------+ 144
 *   | stored body                 |   body_len bytes: the raw body, or one
 *   |                             |   LZ4 block (LZ4_compress_default) that
 *   |                             |   decompresses to exactly raw_body_len
 *   +-----------------------------+ 144 + body_len
 *
 *   raw body (raw_body_len bytes)
 *   +-----------------------------+ 0 (= data_off of chunk 0)
 *   | chunk 0: steps      (i64)   |   one column chunk each, codec.h encoding,
 *   |          timestamps (i64)   |   self-describing; each one's size is
 *   |          values     (f64)   |   found with tally__codec_*_size. Steps
 *   |                             |   and timestamps are left out when the
 *   |                             |   block says they are linear (flags).
 *   +-----------------------------+ data_off of chunk 1
 *   | chunk 1: ...                |
 *   +-----------------------------+ columns_len
 *   | chunk table                 |   per group of up to 128 chunks, seven
 *   |                             |   column chunks of one entry per chunk
 *   +-----------------------------+ raw_body_len
 *
 * Chunk k holds block points [k * 128, min(n_points, (k + 1) * 128)).
 *
 * Linear columns: a training loop's steps go 0, 1, 2, ... and timers log at
 * fixed intervals, so a column that is exactly arithmetic over the whole
 * block is not stored at all. With TALLY_BLOCK_F_STEPS_LINEAR, step i is
 * min_step + i * d, d = (max_step - min_step) / (n_points - 1) (0 when
 * n_points = 1), computed in unsigned 64-bit arithmetic; the division must
 * be exact. TALLY_BLOCK_F_TS_LINEAR is the same for timestamps with
 * min/max_timestamp_ms, and is only valid with TALLY_BLOCK_F_TS_SORTED.
 *
 * The chunk table is stored by column, encoded with the same column codecs
 * as the points, because its fields are smooth across chunks (offsets grow
 * steadily, mins and sums drift, argmin/argmax/n_nan are tiny): a counter's
 * table shrinks from 32 bytes a chunk to well under one. Group g covers
 * chunks [128 g, min(n_chunks, 128 (g + 1))), m of them, and is these seven
 * column chunks of m values each, back to back:
 *
 *   ORDER CODEC DESCRIPTION (one value per chunk)
 *       1 i64   data_off: offset of the chunk's column data in the raw body
 *       2 f64   min value: least non-NaN value; NaN if all are NaN
 *       3 f64   max value: greatest non-NaN value; NaN if all are NaN
 *       4 f64   sum of non-NaN values, left to right; 0 if none
 *       5 i64   argmin: chunk index of the first least non-NaN value
 *       6 i64   argmax: chunk index of the first greatest non-NaN value
 *                 (argmin and argmax are 0 when all values are NaN)
 *       7 i64   n_nan: NaN values in the chunk
 *
 * Min and max compare with < and >, so -0.0 and +0.0 tie and the first wins;
 * +-inf take part like any number, and a sum that meets both +inf and -inf
 * is NaN. A reader decodes the whole table once when it opens the block.
 *
 * Block header (tally_disk_block_header), 144 bytes:
 *
 *   OFFSET SIZE DESCRIPTION
 *        0    4 magic, TALLY_BLOCK_MAGIC ("TBLK")
 *        4    2 format version, TALLY_BLOCK_VERSION
 *        6    2 flags: TALLY_BLOCK_F_TS_SORTED (0x1), TALLY_BLOCK_F_LZ4 (0x2),
 *                 TALLY_BLOCK_F_STEPS_LINEAR (0x4), TALLY_BLOCK_F_TS_LINEAR (0x8);
 *                 other bits 0
 *        8    8 series id
 *       16    4 n_points, 1..65536
 *       20    4 n_chunks = ceil(n_points / 128)
 *       24    4 n_nan: points whose value is a NaN
 *       28    4 body_len: bytes of the stored body
 *       32    4 raw_body_len: bytes of the body once decompressed
 *       36    4 columns_len: bytes of column data; the table follows it
 *       40    8 min_step (= step of the first point)
 *       48    8 max_step (= step of the last point)
 *       56    8 min_timestamp_ms
 *       64    8 max_timestamp_ms
 *       72    8 min_value: least non-NaN value, NaN if all are NaN
 *       80    8 max_value: greatest non-NaN value, NaN if all are NaN
 *       88    8 sum of non-NaN values, left to right in block order
 *       96    8 first point's timestamp_ms
 *      104    8 first point's value
 *      112    8 last point's timestamp_ms
 *      120    8 last point's value
 *      128    8 body_checksum: XXH3-64 (seed 0) of the stored body
 *      136    8 header_checksum: XXH3-64 (seed 0) of header bytes [0, 136)
 */

#define TALLY_BLOCK_MAGIC 0x4B4C4254u   /* bytes "TBLK" */
#define TALLY_BLOCK_VERSION 1u
#define TALLY_BLOCK_MAX_POINTS 65536u   /* points per block, at most */
#define TALLY_BLOCK_CHUNK_POINTS 128u   /* = TALLY_CHUNK_POINTS of engine.h */
#define TALLY_BLOCK_TABLE_GROUP 128u    /* chunk table entries per column chunk */
#define TALLY_BLOCK_TABLE_COLUMNS 7u    /* column chunks per table group */

#define TALLY_BLOCK_F_TS_SORTED 0x0001u /* = TALLY_BLOCK_TS_SORTED: timestamps non-decreasing */
#define TALLY_BLOCK_F_LZ4 0x0002u       /* the stored body is one LZ4 block */
#define TALLY_BLOCK_F_STEPS_LINEAR 0x0004u /* steps not stored: step i = min_step + i * d */
#define TALLY_BLOCK_F_TS_LINEAR 0x0008u /* timestamps not stored: ts i = min_ts + i * d */
#define TALLY_BLOCK_F_KNOWN                                                                     \
    (TALLY_BLOCK_F_TS_SORTED | TALLY_BLOCK_F_LZ4 | TALLY_BLOCK_F_STEPS_LINEAR |                 \
     TALLY_BLOCK_F_TS_LINEAR)

typedef struct tally_disk_block_header {
    uint32_t magic;            /* TALLY_BLOCK_MAGIC */
    uint16_t version;          /* TALLY_BLOCK_VERSION */
    uint16_t flags;            /* TALLY_BLOCK_F_* */
    uint64_t series_id;        /* XXH3-64 of (run id, 0, key) */
    uint32_t n_points;         /* points in the block, 1..TALLY_BLOCK_MAX_POINTS */
    uint32_t n_chunks;         /* ceil(n_points / TALLY_BLOCK_CHUNK_POINTS) */
    uint32_t n_nan;            /* NaN values in the block */
    uint32_t body_len;         /* bytes of the body as stored after the header */
    uint32_t raw_body_len;     /* bytes of the body once decompressed (= body_len if raw) */
    uint32_t columns_len;      /* bytes of column data at the start of the raw body */
    int64_t min_step;          /* step of the first point */
    int64_t max_step;          /* step of the last point */
    int64_t min_timestamp_ms;  /* least timestamp, ms since the epoch */
    int64_t max_timestamp_ms;  /* greatest timestamp, ms since the epoch */
    double min_value;          /* least non-NaN value; NaN if every value is NaN */
    double max_value;          /* greatest non-NaN value; NaN if every value is NaN */
    double sum;                /* sum of non-NaN values in block order; 0 if none */
    int64_t first_timestamp_ms; /* first point (step = min_step): timestamp */
    double first_value;        /* first point: value, any bit pattern */
    int64_t last_timestamp_ms; /* last point (step = max_step): timestamp */
    double last_value;         /* last point: value, any bit pattern */
    uint64_t body_checksum;    /* XXH3-64 of the stored body (body_len bytes) */
    uint64_t header_checksum;  /* XXH3-64 of bytes [0, offsetof(header_checksum)) */
} tally_disk_block_header;

_Static_assert(sizeof(tally_disk_block_header) == 144, "block header size");
_Static_assert(offsetof(tally_disk_block_header, version) == 4, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, flags) == 6, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, series_id) == 8, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, n_points) == 16, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, n_chunks) == 20, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, n_nan) == 24, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, body_len) == 28, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, raw_body_len) == 32, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, columns_len) == 36, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, min_step) == 40, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, max_step) == 48, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, min_timestamp_ms) == 56, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, max_timestamp_ms) == 64, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, min_value) == 72, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, max_value) == 80, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, sum) == 88, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, first_timestamp_ms) == 96, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, first_value) == 104, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, last_timestamp_ms) == 112, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, last_value) == 120, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, body_checksum) == 128, "block header layout");
_Static_assert(offsetof(tally_disk_block_header, header_checksum) == 136, "block header layout");
_Static_assert(TALLY_BLOCK_MAX_POINTS % TALLY_BLOCK_CHUNK_POINTS == 0, "whole chunks");

/* ======================================================================== */
/* WAL records, segment files, directory checkpoints                         */
/* ======================================================================== */

/* WAL files (engine/wal.c, engine/recovery.c): wal/<number:016x>.wal holds a
 * file header, then records back to back, then zeros (preallocation). The
 * record payload layout is described in wal.h and docs/format.md. */
#define TALLY_WAL_FILE_MAGIC 0x464C5754u   /* "TWLF" */
#define TALLY_WAL_RECORD_MAGIC 0x43525754u /* "TWRC" */
#define TALLY_WAL_VERSION 1u
#define TALLY_WAL_TYPE_BATCH 1u
#define TALLY_WAL_FLAG_LZ4 1u
#define TALLY_WAL_FILE_HDR_SIZE 32u
#define TALLY_WAL_RECORD_HDR_SIZE 32u
#define TALLY_WAL_MAX_RECORD (1u << 30)

typedef struct tally__wal_file_hdr {
    uint32_t magic;      /* TALLY_WAL_FILE_MAGIC */
    uint32_t version;    /* TALLY_WAL_VERSION */
    uint64_t number;     /* file number, as in its name */
    uint64_t first_seq;  /* sequence number of the first record */
    uint64_t checksum;   /* XXH3-64 of the previous 24 bytes */
} tally__wal_file_hdr;
_Static_assert(sizeof(tally__wal_file_hdr) == TALLY_WAL_FILE_HDR_SIZE, "wal file header size");

typedef struct tally__wal_record_hdr {
    uint32_t magic;      /* TALLY_WAL_RECORD_MAGIC */
    uint8_t type;        /* TALLY_WAL_TYPE_* */
    uint8_t flags;       /* TALLY_WAL_FLAG_* */
    uint16_t reserved;   /* zero */
    uint32_t stored_len; /* payload bytes as stored */
    uint32_t raw_len;    /* payload bytes decompressed */
    uint64_t seq;        /* record sequence number */
    uint64_t checksum;   /* see the file comment */
} tally__wal_record_hdr;
_Static_assert(sizeof(tally__wal_record_hdr) == TALLY_WAL_RECORD_HDR_SIZE, "wal record header size");
_Static_assert(offsetof(tally__wal_record_hdr, checksum) == 24, "wal checksum offset");


/* Segment files (engine/segment.c): seg/<number:08x>.seg hold sealed blocks
 * back to back and nothing else; each block carries its own magic and
 * checksums, and only the checkpoint says which bytes are live. */

/* The directory checkpoint (engine/checkpoint.c): directory.tck. */
#define CKPT_MAGIC 0x504B4354u /* "TCKP" */
#define CKPT_VERSION 2u

typedef struct tally__ckpt_hdr {
    uint32_t magic;
    uint32_t version;
    uint64_t wal_covered;
    uint64_t next_seq;
    uint32_t first_segment;
    uint32_t n_segments;
    uint64_t n_series;
    uint64_t payload_len;
    uint64_t payload_checksum;
    uint64_t header_checksum;
} tally__ckpt_hdr;
_Static_assert(sizeof(tally__ckpt_hdr) == 64, "checkpoint header size");

typedef struct tally__ckpt_series {
    uint64_t id;           /* series id */
    uint32_t run_len;      /* bytes of run id following this struct */
    uint32_t key_len;      /* bytes of key following the run id */
    uint32_t n_blocks;     /* block references following the names */
    uint32_t reserved;     /* zero */
    uint64_t n_points;     /* sealed points */
    tally_point latest;    /* see tally_series_info */
    tally_point first;
    int64_t min_step, max_step, min_ts, max_ts;
} tally__ckpt_series;
_Static_assert(sizeof(tally__ckpt_series) == 112, "checkpoint series size");

/* min/max value follow the fixed part (16 bytes), making 128. */
#define CKPT_SERIES_FIXED 128u
/* A block reference: u32 segment, u32 length, u64 offset, then the block's
 * range: u32 n_points, u32 flags (TALLY_BLOCK_*), i64 min_step, max_step,
 * min_ts, max_ts. */
#define CKPT_BLOCK_REF 56u


#endif /* TALLY_FORMAT_H */
