/*
 * rollup.h — the in-memory upper levels of the rollup pyramid, one cache
 * entry per series. Private to query/.
 *
 * The pyramid over one series, lowest level first:
 *
 *   level            lives in       holds, per node                       built
 *   ---------------  -------------  ------------------------------------  --------------------
 *   chunk (128 pts)  block body     min/max/sum/argmin/argmax/n_nan,       by the engine
 *                                   first/last point (engine.h)
 *                    + this cache   the same with the min and max points   lazily per block, here
 *                                   resolved, and "steps are dense"
 *   block (<=64 Ki)  block header   min/max/sum/n_nan, first/last point    by the engine
 *                    + this cache   + the min and max *points*             lazily, here
 *   L1..Lk           this cache     tally__rnode over 16^k blocks in x     lazily per axis, here
 *                                   order (min/max values and the block
 *                                   holding each, first/last, count, sum)
 *
 *   cache: hash (engine, series id) -> tally__rollup (refcounted)
 *            |  block[i]  seal order: header summary + lazily resolved extremes
 *            |  pyr[axis] blocks sorted by their least x; level 0 = blocks,
 *            |            level k node = 16 nodes of level k-1 (the last may hold fewer)
 *
 * A block header gives the min and max *values* but not which point holds
 * them; M4 must output points, so an entry resolves a block's extreme points
 * once (one open of the block: chunk table, argmin/argmax, decode of one
 * point) the first time a query needs them, and keeps them.
 *
 * The engine's chunk summaries cost a block open plus six column look-ups
 * per chunk on every call, and name the min/max point only by index. A query
 * that cuts a block at column edges reads them all, so the entry keeps a
 * compact copy per block (tally__rchunk, 112 bytes per 128 points, plus a
 * 40-byte copy of the min/max fields, tally__rchunk_mm, and a byte of
 * bound per 16-point eighth and side, tally__rchunk_oct), built the first time a
 * query needs that block's chunks: the block is decoded once then to
 * resolve each chunk's min/max points, bound its eighths, and
 * to learn whether its steps are dense (step of point i = first step + i)
 * and its timestamps linear (first + i * d, as a timer-driven logger
 * writes), which lets a later query skip decoding those columns.
 *
 * Invariants:
 *  (1) An entry describes the first n_blocks blocks of one series of one
 *      engine. Blocks are append-only in an engine, so an entry stays true
 *      for any later snapshot with at least as many blocks: an acquire with a
 *      snapshot of more blocks builds a new entry that copies the old one's
 *      resolved extremes and reads only the new headers.
 *  (2) Engines can be closed and another opened at the same address: an
 *      acquire checks block 0 and block min(n, entry n) - 1 of the snapshot
 *      against the entry (place in the segment and every header field) and
 *      rebuilds on any difference.
 *  (3) An entry's arrays never change after it is published, except the
 *      extreme points of block i, written once under the entry's mutex before
 *      the release-store of have_extremes[i]; readers load that flag with
 *      acquire. A pyramid is published once per axis, and a block's chunk
 *      records once per block, by compare-and-swap; both are immutable.
 *  (4) Pyramid levels combine nodes strictly left to right in x order: min
 *      and max keep the first occurrence (a later node wins only with a
 *      strictly smaller/greater value), exactly as a left-to-right scan does.
 *  (5) The table holds at most its budget of bytes of entries
 *      (tally__rollup_set_budget; TALLY__ROLLUP_BUDGET until set): past it,
 *      the least recently used entries leave the table, and an entry that
 *      alone passes it leaves too once published or grown (its query keeps
 *      using it).
 *      An entry that a newer one of the same series replaces (extended to
 *      more blocks, or rebuilt) leaves the table at once. An entry out of
 *      the table is freed when its last reader releases it; until then its
 *      bytes are counted as retained (tally__rollup_stats).
 */
#ifndef TALLY_ROLLUP_H
#define TALLY_ROLLUP_H

#include <stdatomic.h>
#include <stdint.h>

#include "tally/engine.h"

#define TALLY__ROLLUP_FANOUT 16u                  /* nodes per parent node */
#define TALLY__ROLLUP_BUDGET (256ull << 20)       /* default bytes of cached entries (5) */

/* The axis a pyramid orders blocks by. */
typedef enum tally__axis {
    TALLY__AXIS_STEP = 0, /* by min_step; every block is sorted on it */
    TALLY__AXIS_TIME = 1  /* by min_timestamp_ms; only TS_SORTED blocks are sorted on it */
} tally__axis;

/* A summary of consecutive points in x order. */
typedef struct tally__rnode {
    tally_point first, last; /* first and last points in x order */
    double min_v, max_v;     /* least and greatest non-NaN value; NaN if none */
    uint32_t min_pos;        /* pyramid position of the block holding the first min */
    uint32_t max_pos;        /* pyramid position of the block holding the first max */
    uint64_t count;          /* points, NaN included */
    uint64_t n_nan;          /* NaN points */
    double sum;              /* sum of non-NaN values, left to right by node */
} tally__rnode;

/* One axis' pyramid over an entry's blocks. */
typedef struct tally__pyramid {
    uint32_t n;              /* blocks (= level 0 nodes) */
    uint32_t n_levels;       /* levels, level 0 included */
    uint32_t *order;         /* n: block seal index at each position */
    uint32_t *pos_of;        /* n: position of each seal index */
    tally__rnode *level[8];  /* level[k] has ceil(n / 16^k) nodes */
    uint32_t level_n[8];     /* nodes per level */
} tally__pyramid;

/* One chunk, as the cache keeps it. */
#define TALLY__RCHUNK_STEPS_DENSE 0x1u /* step of point i is first.step + i */
#define TALLY__RCHUNK_TS_LINEAR 0x2u   /* timestamp of point i is first.timestamp_ms + i * d */
typedef struct tally__rchunk {
    tally_point first, last;     /* first and last points of the chunk */
    tally_point min_pt, max_pt;  /* first least / greatest non-NaN point; unset if n_nan = n_points */
    double sum;                  /* sum of non-NaN values (the engine's) */
    uint16_t n_points;           /* 1..TALLY_CHUNK_POINTS */
    uint16_t n_nan;              /* NaN points */
    uint16_t flags;              /* TALLY__RCHUNK_* */
    uint8_t argmin, argmax;      /* indexes of min_pt and max_pt in the chunk */
} tally__rchunk;

/* What M4 reads of each chunk inside a column: the min and max values and
 * where they are, 40 bytes side by side (a scan of the chunks of a column
 * stays in a few cache lines instead of one 112-byte record each). */
typedef struct tally__rchunk_mm {
    double min_v, max_v;    /* = min_pt.value, max_pt.value (NaN if no non-NaN value) */
    int64_t min_ts, max_ts; /* = min_pt.timestamp_ms, max_pt.timestamp_ms */
    uint8_t argmin, argmax; /* as in tally__rchunk */
    uint8_t strict;         /* TALLY__RCHUNK_STRICT_*: the values only rise or only fall */
    uint8_t pad[5];
} tally__rchunk_mm;

/* tally__rchunk_mm.strict: every value of the chunk (2 points or more, no
 * NaN) is greater (less) than the one before it. The extremes of any part of
 * such a chunk are then its two ends, one at each end, each the first
 * occurrence of its value: a column edge that cuts the chunk needs no read
 * beyond the points beside the edge (lazy learning, steps, smoothed losses,
 * counters). */
#define TALLY__RCHUNK_STRICT_RISE 0x1u
#define TALLY__RCHUNK_STRICT_FALL 0x2u

/* Bounds of the values of each 16-point eighth of a chunk, one byte each:
 * step q of 255 between the chunk's min and max (tally__rchunk_eighth_bound),
 * rounded outwards when built (bound(lo[e]) <= every value of eighth e <=
 * bound(hi[e])). When a column edge cuts a chunk they tell which eighths of
 * a side could hold the column's min or max, and only those are read. */
#define TALLY__RCHUNK_EIGHTH 16u
typedef struct tally__rchunk_oct {
    uint8_t lo[8], hi[8];
} tally__rchunk_oct;

/* The value step q (0..255) stands for, between a chunk's min and max. The
 * one formula both the builder and the readers use, so a bound checked when
 * built holds when read; q = 0 and 255 are the min and max themselves (also
 * when their range is not a finite positive number, where the builder uses
 * only those). */
static inline double tally__rchunk_eighth_bound(double min_v, double max_v, unsigned q)
{
    if (q == 0)
        return min_v;
    if (q >= 255)
        return max_v;
    return min_v + (max_v - min_v) * (double)q * (1.0 / 255.0); /* multiplies: no division */
}

_Static_assert(sizeof(tally__rchunk) % _Alignof(tally__rchunk_mm) == 0,
               "the min/max copies that follow the records stay aligned");
_Static_assert(TALLY_CHUNK_POINTS == 8 * TALLY__RCHUNK_EIGHTH, "eight eighths per chunk");

/* A block's chunk records are one allocation: n tally__rchunk, then n
 * tally__rchunk_mm, then n tally__rchunk_oct. */
static inline size_t tally__rchunk_bytes(uint32_t n)
{
    return (size_t)n *
           (sizeof(tally__rchunk) + sizeof(tally__rchunk_mm) + sizeof(tally__rchunk_oct));
}

static inline const tally__rchunk_mm *tally__rchunk_minmax(const tally__rchunk *ch, uint32_t n)
{
    return (const tally__rchunk_mm *)(const void *)(ch + n);
}

static inline const tally__rchunk_oct *tally__rchunk_eighths(const tally__rchunk *ch, uint32_t n)
{
    return (const tally__rchunk_oct *)(const void *)(tally__rchunk_minmax(ch, n) + n);
}

typedef struct tally__rollup tally__rollup;

/* Finds or builds the entry of series id for snapshot s (invariants (1),
 * (2)) and takes a reference. Reads block headers only. Returns 0, ENOMEM or
 * the engine's error for a damaged header. */
int tally__rollup_acquire(tally_engine *e, tally_series_id id, tally_snapshot *s,
                          tally__rollup **out);

/* Drops the reference. NULL is a no-op. */
void tally__rollup_release(tally__rollup *r);

/* Header summary of the block with seal index i (< the snapshot's n_blocks).
 * Borrowed: valid while the reference is held. */
const tally_block_summary *tally__rollup_block(const tally__rollup *r, uint32_t i);

/* The points holding block i's first min and first max (by the engine's
 * rule: < and >, first occurrence), resolved through s on first use.
 * TALLY_EINVAL if the block holds only NaN. */
int tally__rollup_block_extremes(tally__rollup *r, tally_snapshot *s, uint32_t i,
                                 tally_point *min_pt, tally_point *max_pt);

/* The chunk records of block i (its n_chunks of them), built through s on
 * first use. Borrowed like tally__rollup_block. Returns 0, ENOMEM or the
 * engine's error for a damaged block. */
int tally__rollup_chunks(tally__rollup *r, tally_snapshot *s, uint32_t i,
                         const tally__rchunk **out);

/* Block i's chunk records if they are built already, else NULL: for
 * prefetching, never builds. */
const tally__rchunk *tally__rollup_chunks_peek(const tally__rollup *r, uint32_t i);

/* The pyramid for axis, built on first use. Borrowed like tally__rollup_block.
 * NULL only when out of memory. */
const tally__pyramid *tally__rollup_pyramid(tally__rollup *r, tally__axis axis);

/* Combines the level 0 nodes at positions [p, q] (q < n) left to right into
 * *out, reading the coarsest nodes that fit (O(16 * levels)). */
void tally__rollup_range(const tally__pyramid *pyr, uint32_t p, uint32_t q, tally__rnode *out);

/* Appends b after a (a precedes b in x order) by invariant (4). */
void tally__rnode_combine(tally__rnode *a, const tally__rnode *b);

/* Cache statistics (tally_query_cache_stats_get, tests, benchmarks). */
typedef struct tally__rollup_stats {
    uint64_t entries;        /* entries in the table */
    uint64_t bytes;          /* bytes they hold */
    uint64_t retained_bytes; /* bytes of entries out of the table still held by a reader (5) */
    uint64_t budget;         /* bytes the table may hold (5) */
    uint64_t hits;           /* acquires served by an existing entry */
    uint64_t builds;         /* entries built or extended */
    uint64_t evictions;      /* entries dropped for the budget */
} tally__rollup_stats;
void tally__rollup_stats_get(tally__rollup_stats *out);

/* Sets the budget (5) and evicts least recently used entries past it. */
void tally__rollup_set_budget(uint64_t bytes);

/* Drops every entry that is not in use (tests). */
void tally__rollup_clear(void);

#endif /* TALLY_ROLLUP_H */
