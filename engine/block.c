/*
 * block.c — sealed blocks: sort and deduplicate a series' points, encode them
 * into a block (header, chunk table, column chunks, LZ4), and read blocks
 * back: header, verified view, chunk summaries and range decode. The byte
 * layout is in format.h ("Blocks") and docs/format.md; the column chunk
 * encodings are codec.c's.
 *
 *   encode:  points --summaries--> header fields
 *                   --per 128 points--> steps/ts/values column chunks
 *                   --per 128 chunks--> 7 table column chunks
 *                   --> raw body in scratch --LZ4 if it saves >= 1/8--> out
 *   read:    header (checksum) --> view (body checksum, LZ4 -> owned buffer,
 *            chunk table decoded and checked) --> chunks / decode (codec,
 *            bounded per chunk)
 *
 * Invariants (numbers continue block.h's (1)-(4)):
 *  (5) A header that passed tally__block_header is structurally sane: known
 *      magic, version and flags, 1 <= n_points <= 65536, n_chunks =
 *      ceil(n_points / 128), n_nan <= n_points, a byte of column data per
 *      stored column per chunk at least and 7 bytes of table per group at
 *      least, linear columns whose increment divides their range, raw_body_len
 *      within raw_body_bound(n_points), body_len = raw_body_len if raw and
 *      < raw_body_len if LZ4, and the whole block lies inside [p, end).
 *  (6) A view that opened has decoded its whole chunk table, which filled
 *      [columns_len, raw_body_len) exactly, and every entry is sane: chunk 0's
 *      data starts at 0, each chunk's data is at least a byte per stored
 *      column and ends where the next begins (the last at columns_len),
 *      n_nan, argmin and argmax are within the chunk. Every column chunk is
 *      then decoded against the end of its own chunk's data, so a damaged
 *      chunk can never make the codec read a neighbour or past the body.
 *      A reopen of a block whose body the process verified (the open that
 *      verified it checked all of this; blocks are immutable) decodes only
 *      the offsets of a one-group table, skipping the other columns.
 *  (7) encode never allocates: the raw body is built in the caller's scratch
 *      and LZ4 writes straight into the caller's output, sized by
 *      tally__block_bound() to hold LZ4's worst case. The chunk table is
 *      gathered on the stack (7 x 8 bytes x 512 chunks at most).
 *  (8) Every summary field is computed by one rule, shared by the block and
 *      its chunks: min/max with < and > over non-NaN values, first occurrence
 *      wins; sums left to right over non-NaN values.
 *  (9) A view's owned buffer holds the decoded chunk table (n_chunks
 *      chunk_entry) and, for an LZ4 block, the decompressed body after it.
 * (10) A read of a few points of a chunk uses the codecs' random access; if a
 *      column it needs is stored sequentially, a prefix of the chunk is
 *      decoded into one of the view's two decoded slots (dec[i].k names the
 *      chunk, dec[i].valid how many of its points are there; see
 *      from_decoded) and later few-point reads of it are served from there:
 *      callers read the two edges of a column, alternating between two
 *      chunks. Every open of a block empties both slots.
 */
#include <assert.h>
#include <lz4.h>
#include <math.h>
#include <string.h>
#include <xxhash.h>

#include "alloc.h"
#include "block.h"
#include "codec.h"
#include "format.h"

_Static_assert(TALLY_BLOCK_CHUNK_POINTS == TALLY_CHUNK_POINTS, "format.h and engine.h agree");
_Static_assert(TALLY_BLOCK_F_TS_SORTED == TALLY_BLOCK_TS_SORTED, "format.h and engine.h agree");
_Static_assert(TALLY_BLOCK_F_STEPS_LINEAR == TALLY_BLOCK_STEPS_LINEAR, "format.h and engine.h agree");
_Static_assert(TALLY_BLOCK_F_TS_LINEAR == TALLY_BLOCK_TS_LINEAR, "format.h and engine.h agree");

#define HEADER_SIZE ((uint32_t)sizeof(tally_disk_block_header))
#define CHUNK TALLY_BLOCK_CHUNK_POINTS
#define GROUP TALLY_BLOCK_TABLE_GROUP
#define MAX_CHUNKS (TALLY_BLOCK_MAX_POINTS / TALLY_BLOCK_CHUNK_POINTS)

/* One chunk table entry, decoded (see format.h for the stored form). */
typedef struct chunk_entry {
    uint32_t data_off;  /* the chunk's column data: [data_off, data_end) of the raw body */
    uint32_t data_end;
    uint32_t n_points;  /* 1..128 */
    uint32_t n_nan;     /* NaN values in the chunk */
    uint32_t argmin;    /* chunk index of the first least non-NaN value */
    uint32_t argmax;    /* chunk index of the first greatest non-NaN value */
    double min_value;   /* least non-NaN value; NaN if all are NaN */
    double max_value;   /* greatest non-NaN value; NaN if all are NaN */
    double sum;         /* sum of non-NaN values, in chunk order */
} chunk_entry;

_Static_assert(sizeof(chunk_entry) % 8 == 0, "entries keep the body after them aligned");

#define RETURN_ERROR_IF(cond, code)                                                           \
    do {                                                                                      \
        if (cond)                                                                             \
            return (code);                                                                    \
    } while (0)

static inline uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static inline uint32_t n_chunks_of(uint32_t n)
{
    return (n + CHUNK - 1) / CHUNK;
}

static inline uint32_t n_groups_of(uint32_t n_chunks)
{
    return (n_chunks + GROUP - 1) / GROUP;
}

static inline uint64_t table_group_bound(uint32_t m)
{
    return 4 * (uint64_t)tally__codec_i64_bound(m) + 3 * (uint64_t)tally__codec_f64_bound(m);
}

/* Largest raw body of n points: every column chunk and every table column
 * chunk at its codec bound. Computed in 64 bits; for n <= 65536 it is far
 * below 4 GiB. */
static uint64_t raw_body_bound(uint32_t n)
{
    uint32_t full = n / CHUNK, tail = n % CHUNK;
    uint32_t nc = n_chunks_of(n), gfull = nc / GROUP, gtail = nc % GROUP;
    uint64_t b = (uint64_t)full * (2 * tally__codec_i64_bound(CHUNK) + tally__codec_f64_bound(CHUNK));
    if (tail)
        b += 2 * tally__codec_i64_bound(tail) + tally__codec_f64_bound(tail);
    b += gfull * table_group_bound(GROUP);
    if (gtail)
        b += table_group_bound(gtail);
    return b;
}

size_t tally__block_bound(uint32_t n)
{
    if (n == 0 || n > TALLY_BLOCK_MAX_POINTS)
        return 0;
    return HEADER_SIZE + (size_t)LZ4_COMPRESSBOUND(raw_body_bound(n));
}

size_t tally__block_encode_scratch_size(uint32_t n)
{
    if (n == 0 || n > TALLY_BLOCK_MAX_POINTS)
        return 0;
    return (size_t)raw_body_bound(n);
}

/* ------------------------------------------------------------------------ */
/* Sorting and deduplication                                                 */
/* ------------------------------------------------------------------------ */

/*
 * Points are ordered by (step, timestamp, value bits as an unsigned 64-bit
 * integer). That is a total order in which equal keys are identical points,
 * so stability is moot and an in-place introsort (quicksort with a heapsort
 * fallback past 2 log2 n levels, insertion sort for short ranges) gives the
 * unique result in O(n log n) worst case without memory of its own.
 */
typedef struct cols {
    int64_t *s;
    int64_t *t;
    double *v;
} cols;

static inline int key_cmp(int64_t s1, int64_t t1, uint64_t b1, int64_t s2, int64_t t2,
                          uint64_t b2)
{
    if (s1 != s2)
        return s1 < s2 ? -1 : 1;
    if (t1 != t2)
        return t1 < t2 ? -1 : 1;
    if (b1 != b2)
        return b1 < b2 ? -1 : 1;
    return 0;
}

static inline int pt_cmp(cols c, size_t i, size_t j)
{
    return key_cmp(c.s[i], c.t[i], dbits(c.v[i]), c.s[j], c.t[j], dbits(c.v[j]));
}

static inline void pt_swap(cols c, size_t i, size_t j)
{
    int64_t s = c.s[i], t = c.t[i];
    double v = c.v[i];
    c.s[i] = c.s[j];
    c.t[i] = c.t[j];
    c.v[i] = c.v[j];
    c.s[j] = s;
    c.t[j] = t;
    c.v[j] = v;
}

static void insertion_sort(cols c, size_t lo, size_t hi)
{
    for (size_t i = lo + 1; i < hi; i++) {
        int64_t s = c.s[i], t = c.t[i];
        double v = c.v[i];
        uint64_t b = dbits(v);
        size_t j = i;
        while (j > lo && key_cmp(s, t, b, c.s[j - 1], c.t[j - 1], dbits(c.v[j - 1])) < 0) {
            c.s[j] = c.s[j - 1];
            c.t[j] = c.t[j - 1];
            c.v[j] = c.v[j - 1];
            j--;
        }
        c.s[j] = s;
        c.t[j] = t;
        c.v[j] = v;
    }
}

static void sift_down(cols c, size_t base, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && pt_cmp(c, base + child, base + child + 1) < 0)
            child++;
        if (pt_cmp(c, base + root, base + child) >= 0)
            return;
        pt_swap(c, base + root, base + child);
        root = child;
    }
}

static void heap_sort(cols c, size_t lo, size_t hi)
{
    size_t n = hi - lo;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(c, lo, i, n);
    for (size_t end = n - 1; end > 0; end--) {
        pt_swap(c, lo, lo + end);
        sift_down(c, lo, 0, end);
    }
}

/* Sorts [lo, hi). Recurses on the smaller side, loops on the larger, so the
 * stack stays O(log n). */
static void intro_sort(cols c, size_t lo, size_t hi, int depth)
{
    while (hi - lo > 16) {
        if (depth-- == 0) {
            heap_sort(c, lo, hi);
            return;
        }
        /* Median of three, moved to lo: Hoare's scheme with the pivot at lo
         * always returns lo <= j < hi - 1, so both parts shrink. */
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        if (pt_cmp(c, mid, lo) < 0)
            pt_swap(c, mid, lo);
        if (pt_cmp(c, last, mid) < 0) {
            pt_swap(c, last, mid);
            if (pt_cmp(c, mid, lo) < 0)
                pt_swap(c, mid, lo);
        }
        pt_swap(c, lo, mid);
        int64_t ps = c.s[lo], pt = c.t[lo];
        uint64_t pb = dbits(c.v[lo]);
        size_t i = lo, j = hi; /* i - 1 and j + 1 in the textbook's terms */
        for (;;) {
            while (key_cmp(c.s[i], c.t[i], dbits(c.v[i]), ps, pt, pb) < 0)
                i++;
            j--;
            while (key_cmp(c.s[j], c.t[j], dbits(c.v[j]), ps, pt, pb) > 0)
                j--;
            if (i >= j)
                break;
            pt_swap(c, i, j);
            i++;
        }
        /* [lo, j] <= pivot <= [j + 1, hi) */
        if (j + 1 - lo < hi - (j + 1)) {
            intro_sort(c, lo, j + 1, depth);
            lo = j + 1;
        } else {
            intro_sort(c, j + 1, hi, depth);
            hi = j + 1;
        }
    }
    insertion_sort(c, lo, hi);
}

/* Drops exact duplicates from sorted columns; returns the new count. */
static uint32_t dedupe_sorted(cols c, uint32_t n)
{
    if (n == 0)
        return 0;
    uint32_t w = 1;
    for (uint32_t i = 1; i < n; i++) {
        if (c.s[i] == c.s[w - 1] && c.t[i] == c.t[w - 1] && dbits(c.v[i]) == dbits(c.v[w - 1]))
            continue;
        c.s[w] = c.s[i];
        c.t[w] = c.t[i];
        c.v[w] = c.v[i];
        w++;
    }
    return w;
}

uint32_t tally__block_sort_points(int64_t *steps, int64_t *timestamps_ms, double *values,
                                  uint32_t n)
{
    cols c = {steps, timestamps_ms, values};
    if (n < 2)
        return n;
    /* Fast path: heads are almost always in order already. */
    int has_dup = 0;
    uint32_t i;
    for (i = 1; i < n; i++) {
        int r = pt_cmp(c, i - 1, i);
        if (r > 0)
            break;
        has_dup |= r == 0;
    }
    if (i == n)
        return has_dup ? dedupe_sorted(c, n) : n;
    int depth = 0;
    for (uint32_t m = n; m > 1; m >>= 1)
        depth += 2;
    intro_sort(c, 0, n, depth);
    return dedupe_sorted(c, n);
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */
/* ------------------------------------------------------------------------ */

/* Whether v[0..n) is non-decreasing and v[0] + i * d for one d (format.h,
 * "Linear columns"). Non-decreasing makes every increment a true difference,
 * so (n - 1) * d = v[n-1] - v[0] never wraps and a reader can recover d. */
static int is_linear(const int64_t *v, uint32_t n)
{
    if (n < 2)
        return 1;
    if (v[1] < v[0])
        return 0;
    uint64_t d = (uint64_t)v[1] - (uint64_t)v[0];
    for (uint32_t i = 1; i < n; i++)
        if (v[i] < v[i - 1] || (uint64_t)v[i] - (uint64_t)v[i - 1] != d)
            return 0;
    return 1;
}

/* Value i of a linear column. */
static inline int64_t linear_at(int64_t v0, uint64_t d, uint32_t i)
{
    return (int64_t)((uint64_t)v0 + (uint64_t)i * d);
}

static inline void linear_fill(int64_t *out, int64_t v0, uint64_t d, uint32_t from, uint32_t n)
{
    uint64_t x = (uint64_t)v0 + (uint64_t)from * d;
    for (uint32_t i = 0; i < n; i++, x += d)
        out[i] = (int64_t)x;
}

/* Min/max/sum of one run of values by rule (8). */
typedef struct vstats {
    double min, max, sum;
    uint32_t argmin, argmax, n_nan;
    int any; /* a non-NaN value was seen */
} vstats;

static inline void vstats_init(vstats *st)
{
    st->min = st->max = NAN;
    st->sum = 0.0;
    st->argmin = st->argmax = st->n_nan = 0;
    st->any = 0;
}

static inline void vstats_add(vstats *st, double x, uint32_t i)
{
    if (isnan(x)) {
        st->n_nan++;
        return;
    }
    st->sum += x;
    if (!st->any) {
        st->min = st->max = x;
        st->argmin = st->argmax = i;
        st->any = 1;
        return;
    }
    if (x < st->min) {
        st->min = x;
        st->argmin = i;
    }
    if (x > st->max) {
        st->max = x;
        st->argmax = i;
    }
}

size_t tally__block_encode(uint64_t series_id, const int64_t *steps, const int64_t *timestamps_ms,
                           const double *values, uint32_t n, uint8_t *out, uint8_t *scratch)
{
    /* Caller bugs, not bad bytes: the contract is 1 <= n <= 65536, sorted. */
    if (n == 0 || n > TALLY_BLOCK_MAX_POINTS)
        return 0;

    /* The chunk table, by column, as the codecs take it. */
    struct {
        int64_t off[MAX_CHUNKS], argmin[MAX_CHUNKS], argmax[MAX_CHUNKS], n_nan[MAX_CHUNKS];
        double min[MAX_CHUNKS], max[MAX_CHUNKS], sum[MAX_CHUNKS];
    } tab;
    tally_disk_block_header h;
    memset(&h, 0, sizeof h);
    uint32_t n_chunks = n_chunks_of(n);
    uint8_t *raw = scratch;
    size_t pos = 0;
    vstats block;
    vstats_init(&block);
    int64_t min_ts = timestamps_ms[0], max_ts = timestamps_ms[0];
    int ts_sorted = 1;
    int steps_linear = is_linear(steps, n), ts_linear = is_linear(timestamps_ms, n);

    for (uint32_t k = 0; k < n_chunks; k++) {
        uint32_t first = k * CHUNK;
        uint32_t m = n - first < CHUNK ? n - first : CHUNK;
        vstats ch;
        vstats_init(&ch);
        for (uint32_t i = 0; i < m; i++) {
            double x = values[first + i];
            vstats_add(&ch, x, i);
            if (!isnan(x))
                block.sum += x;
            int64_t t = timestamps_ms[first + i];
            min_ts = t < min_ts ? t : min_ts;
            max_ts = t > max_ts ? t : max_ts;
        }
        for (uint32_t i = first ? first : 1; i < first + m; i++)
            ts_sorted &= timestamps_ms[i] >= timestamps_ms[i - 1];
        /* Block min/max from chunk min/max: the first chunk holding the
         * block's extreme also holds its first occurrence. */
        block.n_nan += ch.n_nan;
        if (ch.any) {
            if (!block.any || ch.min < block.min)
                block.min = ch.min;
            if (!block.any || ch.max > block.max)
                block.max = ch.max;
            block.any = 1;
        }
        tab.off[k] = (int64_t)pos;
        tab.argmin[k] = ch.argmin;
        tab.argmax[k] = ch.argmax;
        tab.n_nan[k] = ch.n_nan;
        tab.min[k] = ch.min;
        tab.max[k] = ch.max;
        tab.sum[k] = ch.sum;
        if (!steps_linear)
            pos += tally__codec_i64_encode(steps + first, m, raw + pos);
        if (!ts_linear)
            pos += tally__codec_i64_encode(timestamps_ms + first, m, raw + pos);
        pos += tally__codec_f64_encode(values + first, m, raw + pos);
    }
    h.columns_len = (uint32_t)pos;
    for (uint32_t g = 0; g < n_chunks; g += GROUP) {
        uint32_t m = n_chunks - g < GROUP ? n_chunks - g : GROUP;
        pos += tally__codec_i64_encode(tab.off + g, m, raw + pos);
        pos += tally__codec_f64_encode(tab.min + g, m, raw + pos);
        pos += tally__codec_f64_encode(tab.max + g, m, raw + pos);
        pos += tally__codec_f64_encode(tab.sum + g, m, raw + pos);
        pos += tally__codec_i64_encode(tab.argmin + g, m, raw + pos);
        pos += tally__codec_i64_encode(tab.argmax + g, m, raw + pos);
        pos += tally__codec_i64_encode(tab.n_nan + g, m, raw + pos);
    }

    assert(pos <= raw_body_bound(n)); /* (7): the scratch was big enough */

    h.magic = TALLY_BLOCK_MAGIC;
    h.version = TALLY_BLOCK_VERSION;
    h.flags = (uint16_t)((ts_sorted ? TALLY_BLOCK_F_TS_SORTED : 0) |
                         (steps_linear ? TALLY_BLOCK_F_STEPS_LINEAR : 0) |
                         (ts_linear ? TALLY_BLOCK_F_TS_LINEAR : 0));
    h.series_id = series_id;
    h.n_points = n;
    h.n_chunks = n_chunks;
    h.n_nan = block.n_nan;
    h.raw_body_len = (uint32_t)pos;
    h.min_step = steps[0];
    h.max_step = steps[n - 1];
    h.min_timestamp_ms = min_ts;
    h.max_timestamp_ms = max_ts;
    h.min_value = block.min;
    h.max_value = block.max;
    h.sum = block.sum;
    h.first_timestamp_ms = timestamps_ms[0];
    h.first_value = values[0];
    h.last_timestamp_ms = timestamps_ms[n - 1];
    h.last_value = values[n - 1];

    /* Invariant (3): LZ4 only when it saves at least 1/8. The output holds
     * LZ4's worst case, so the compressor runs without output checks. */
    uint8_t *body = out + HEADER_SIZE;
    int lz = LZ4_compress_default((const char *)raw, (char *)body, (int)pos,
                                  LZ4_COMPRESSBOUND((int)pos));
    if (lz > 0 && (uint64_t)lz * 8 <= (uint64_t)pos * 7) {
        h.flags |= TALLY_BLOCK_F_LZ4;
        h.body_len = (uint32_t)lz;
    } else {
        memcpy(body, raw, pos);
        h.body_len = (uint32_t)pos;
    }
    h.body_checksum = XXH3_64bits(body, h.body_len);
    h.header_checksum = XXH3_64bits(&h, offsetof(tally_disk_block_header, header_checksum));
    memcpy(out, &h, sizeof h);
    return HEADER_SIZE + (size_t)h.body_len;
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                   */
/* ------------------------------------------------------------------------ */

/* Reads and checks the header at [p, end) by invariant (5). */
/* Reads and checks the header at p; the checksum is skipped (verified = 1)
 * only for a block whose header and body this process verified before:
 * blocks are immutable. */
static int read_header_ex(const uint8_t *p, const uint8_t *end, tally_disk_block_header *h,
                          int verified)
{
    RETURN_ERROR_IF(p == NULL || end < p || (size_t)(end - p) < HEADER_SIZE, TALLY_ECORRUPT);
    memcpy(h, p, sizeof *h);
    RETURN_ERROR_IF(h->magic != TALLY_BLOCK_MAGIC, TALLY_ECORRUPT);
    RETURN_ERROR_IF(!verified &&
                        h->header_checksum !=
                            XXH3_64bits(p, offsetof(tally_disk_block_header, header_checksum)),
                    TALLY_ECORRUPT);
    /* A checksummed header of another version was written by another Tally. */
    RETURN_ERROR_IF(h->version != TALLY_BLOCK_VERSION, TALLY_EVERSION);
    RETURN_ERROR_IF((h->flags & ~TALLY_BLOCK_F_KNOWN) != 0, TALLY_ECORRUPT);
    RETURN_ERROR_IF(h->n_points == 0 || h->n_points > TALLY_BLOCK_MAX_POINTS, TALLY_ECORRUPT);
    RETURN_ERROR_IF(h->n_chunks != n_chunks_of(h->n_points), TALLY_ECORRUPT);
    RETURN_ERROR_IF(h->n_nan > h->n_points, TALLY_ECORRUPT);
    RETURN_ERROR_IF(h->min_step > h->max_step || h->min_timestamp_ms > h->max_timestamp_ms,
                    TALLY_ECORRUPT);
    uint64_t cols_per_chunk = 1 + !(h->flags & TALLY_BLOCK_F_STEPS_LINEAR) +
                              !(h->flags & TALLY_BLOCK_F_TS_LINEAR);
    RETURN_ERROR_IF((uint64_t)h->columns_len < cols_per_chunk * h->n_chunks ||
                        (uint64_t)h->columns_len + TALLY_BLOCK_TABLE_COLUMNS * n_groups_of(h->n_chunks) >
                            h->raw_body_len ||
                        h->raw_body_len > raw_body_bound(h->n_points),
                    TALLY_ECORRUPT);
    if (h->flags & TALLY_BLOCK_F_LZ4)
        RETURN_ERROR_IF(h->body_len == 0 || h->body_len >= h->raw_body_len, TALLY_ECORRUPT);
    else
        RETURN_ERROR_IF(h->body_len != h->raw_body_len, TALLY_ECORRUPT);
    RETURN_ERROR_IF((uint64_t)(end - p) - HEADER_SIZE < h->body_len, TALLY_ECORRUPT);
    /* Linear columns: the increment must divide the range exactly, and
     * linear timestamps are sorted ones, running from first to last. */
    uint64_t gaps = h->n_points - 1u;
    if ((h->flags & TALLY_BLOCK_F_STEPS_LINEAR) && gaps)
        RETURN_ERROR_IF(((uint64_t)h->max_step - (uint64_t)h->min_step) % gaps != 0,
                        TALLY_ECORRUPT);
    if (h->flags & TALLY_BLOCK_F_TS_LINEAR) {
        RETURN_ERROR_IF(!(h->flags & TALLY_BLOCK_F_TS_SORTED) ||
                            h->first_timestamp_ms != h->min_timestamp_ms ||
                            h->last_timestamp_ms != h->max_timestamp_ms,
                        TALLY_ECORRUPT);
        if (gaps)
            RETURN_ERROR_IF(((uint64_t)h->max_timestamp_ms - (uint64_t)h->min_timestamp_ms) %
                                    gaps !=
                                0,
                            TALLY_ECORRUPT);
    }
    return 0;
}

static int read_header(const uint8_t *p, const uint8_t *end, tally_disk_block_header *h)
{
    return read_header_ex(p, end, h, 0);
}

int tally__block_header(const uint8_t *p, const uint8_t *end, tally_block_summary *summary,
                        uint32_t *block_len, uint64_t *series_id)
{
    tally_disk_block_header h;
    int rc = read_header(p, end, &h);
    if (rc != 0)
        return rc;
    if (summary) {
        memset(summary, 0, sizeof *summary);
        summary->n_points = h.n_points;
        summary->n_chunks = h.n_chunks;
        summary->flags = h.flags & (TALLY_BLOCK_F_TS_SORTED | TALLY_BLOCK_F_STEPS_LINEAR |
                                    TALLY_BLOCK_F_TS_LINEAR);
        summary->n_nan = h.n_nan;
        summary->min_step = h.min_step;
        summary->max_step = h.max_step;
        summary->min_timestamp_ms = h.min_timestamp_ms;
        summary->max_timestamp_ms = h.max_timestamp_ms;
        summary->min_value = h.min_value;
        summary->max_value = h.max_value;
        summary->sum = h.sum;
        summary->first.step = h.min_step;
        summary->first.timestamp_ms = h.first_timestamp_ms;
        summary->first.value = h.first_value;
        summary->last.step = h.max_step;
        summary->last.timestamp_ms = h.last_timestamp_ms;
        summary->last.value = h.last_value;
    }
    if (block_len)
        *block_len = HEADER_SIZE + h.body_len;
    if (series_id)
        *series_id = h.series_id;
    return 0;
}

/* The decoded chunk table at the start of the owned buffer (9). */
static inline const chunk_entry *entries(const tally__block_view *v)
{
    return (const chunk_entry *)(const void *)v->owned;
}

/* Decodes the chunk table in [columns_len, raw_body_len) of the raw body
 * into the owned buffer and checks it by invariant (6). */
static int load_table(tally__block_view *v, uint32_t columns_len, int with_summaries,
                      int body_verified)
{
    int64_t min_len = 1 + !(v->flags & TALLY_BLOCK_F_STEPS_LINEAR) +
                      !(v->flags & TALLY_BLOCK_F_TS_LINEAR);
    chunk_entry *e = (chunk_entry *)(void *)v->owned;
    const uint8_t *at = v->body + columns_len, *end = v->body_end;
    int64_t ti[4][GROUP];
    double td[3][GROUP];
    for (uint32_t g = 0; g < v->n_chunks; g += GROUP) {
        uint32_t m = v->n_chunks - g < GROUP ? v->n_chunks - g : GROUP;
        size_t used;
        /* Stored order: data_off, min, max, sum, argmin, argmax, n_nan. A
         * block verified earlier in the process passed this whole walk then
         * (6); with one group, its offsets are all a reopen needs. */
        int only_offsets = body_verified && !with_summaries && v->n_chunks <= GROUP;
        for (int c = 0; c < (only_offsets ? 1 : (int)TALLY_BLOCK_TABLE_COLUMNS); c++) {
            int rc;
            /* Without summaries only the offsets are decoded; the other
             * columns are stepped over by their encoded size. */
            if (c >= 1 && c <= 3)
                rc = with_summaries ? tally__codec_f64_decode(at, end, m, td[c - 1], &used)
                                    : tally__codec_f64_size(at, end, m, &used);
            else if (c == 0 || with_summaries)
                rc = tally__codec_i64_decode(at, end, m, ti[c == 0 ? 0 : c - 3], &used);
            else
                rc = tally__codec_i64_size(at, end, m, &used);
            RETURN_ERROR_IF(rc != 0 || used > (size_t)(end - at), TALLY_ECORRUPT);
            at += used;
        }
        if (only_offsets) { /* g = 0, and the open that verified the block checked each entry */
            for (uint32_t j = 0; j < m; j++) {
                e[j].data_off = (uint32_t)ti[0][j];
                e[j].data_end = j + 1 < m ? (uint32_t)ti[0][j + 1] : columns_len;
                e[j].n_points = j + 1 < m ? CHUNK : v->n_points - j * CHUNK;
            }
            continue;
        }
        for (uint32_t j = 0; j < m; j++) {
            uint32_t k = g + j;
            uint32_t np = v->n_points - k * CHUNK < CHUNK ? v->n_points - k * CHUNK : CHUNK;
            int64_t off = ti[0][j];
            RETURN_ERROR_IF(k == 0 ? off != 0 : off < (int64_t)e[k - 1].data_off + min_len,
                            TALLY_ECORRUPT);
            RETURN_ERROR_IF(off > (int64_t)columns_len - min_len, TALLY_ECORRUPT);
            e[k].data_off = (uint32_t)off;
            if (k > 0)
                e[k - 1].data_end = (uint32_t)off;
            e[k].data_end = columns_len;
            e[k].n_points = np;
            if (!with_summaries)
                continue;
            int64_t amin = ti[1][j], amax = ti[2][j], nnan = ti[3][j];
            RETURN_ERROR_IF(amin < 0 || amin >= np || amax < 0 || amax >= np || nnan < 0 ||
                                nnan > np,
                            TALLY_ECORRUPT);
            e[k].n_nan = (uint32_t)nnan;
            e[k].argmin = (uint32_t)amin;
            e[k].argmax = (uint32_t)amax;
            e[k].min_value = td[0][j];
            e[k].max_value = td[1][j];
            e[k].sum = td[2][j];
        }
    }
    RETURN_ERROR_IF(at != end && !(body_verified && !with_summaries && v->n_chunks <= GROUP),
                    TALLY_ECORRUPT);
    v->summaries_loaded = with_summaries;
    return 0;
}

int tally__block_view_open(tally__block_view *v, const uint8_t *p, const uint8_t *end)
{
    return tally__block_view_open_ex(v, p, end, 0);
}

int tally__block_view_open_ex(tally__block_view *v, const uint8_t *p, const uint8_t *end,
                              int body_verified)
{
    tally_disk_block_header h;
    int rc = read_header_ex(p, end, &h, body_verified);
    v->body = v->body_end = NULL;
    v->n_points = v->n_chunks = 0;
    v->dec[0].k = v->dec[1].k = UINT32_MAX;
    if (rc != 0)
        return rc;
    uint64_t gaps = h.n_points - 1u;
    v->flags = h.flags;
    v->step0 = h.min_step;
    v->ts0 = h.min_timestamp_ms;
    v->dstep = gaps ? ((uint64_t)h.max_step - (uint64_t)h.min_step) / gaps : 0;
    v->dts = gaps ? ((uint64_t)h.max_timestamp_ms - (uint64_t)h.min_timestamp_ms) / gaps : 0;
    const uint8_t *stored = p + HEADER_SIZE;
    RETURN_ERROR_IF(!body_verified && XXH3_64bits(stored, h.body_len) != h.body_checksum,
                    TALLY_ECORRUPT);
    size_t table_size = (size_t)h.n_chunks * sizeof(chunk_entry);
    size_t need = table_size + ((h.flags & TALLY_BLOCK_F_LZ4) ? h.raw_body_len : 0);
    if (v->owned_cap < need) {
        /* Grow by half again, so a run of growing blocks reallocates rarely. */
        size_t cap = need + need / 2;
        tally__free(v->owned);
        v->owned_cap = 0;
        v->owned = tally__malloc(cap);
        if (!v->owned)
            return TALLY_ENOMEM;
        v->owned_cap = cap;
    }
    if (h.flags & TALLY_BLOCK_F_LZ4) {
        uint8_t *raw = v->owned + table_size;
        int got = LZ4_decompress_safe((const char *)stored, (char *)raw, (int)h.body_len,
                                      (int)h.raw_body_len);
        RETURN_ERROR_IF(got < 0 || (uint32_t)got != h.raw_body_len, TALLY_ECORRUPT);
        v->body = raw;
    } else {
        v->body = stored;
    }
    v->body_end = v->body + h.raw_body_len;
    v->n_points = h.n_points;
    v->n_chunks = h.n_chunks;
    v->columns_len = h.columns_len;
    /* Offsets now; the chunk summaries only when someone asks for them. */
    rc = load_table(v, h.columns_len, 0, body_verified);
    if (rc != 0) {
        v->body = v->body_end = NULL;
        v->n_points = v->n_chunks = 0;
    }
    return rc;
}

void tally__block_view_free(tally__block_view *v)
{
    if (!v)
        return;
    tally__free(v->owned);
    memset(v, 0, sizeof *v);
}

int tally__block_view_chunks(tally__block_view *v, tally_chunk_summary *out, size_t cap)
{
    RETURN_ERROR_IF(v->body == NULL || cap < v->n_chunks, TALLY_EINVAL);
    if (!v->summaries_loaded) {
        /* A damaged summary column fails this call; the points stay readable. */
        int lrc = load_table(v, v->columns_len, 1, 0);
        if (lrc != 0)
            return lrc;
    }
    const chunk_entry *tab = entries(v);
    for (uint32_t k = 0; k < v->n_chunks; k++) {
        const chunk_entry *e = &tab[k];
        const uint8_t *lo = v->body + e->data_off, *hi = v->body + e->data_end;
        size_t used;
        uint32_t m = e->n_points, last = m - 1;
        tally_chunk_summary *cs = &out[k];
        cs->first_index = k * CHUNK;
        cs->n_points = m;
        cs->n_nan = e->n_nan;
        cs->argmin = k * CHUNK + e->argmin;
        cs->argmax = k * CHUNK + e->argmax;
        cs->min_value = e->min_value;
        cs->max_value = e->max_value;
        cs->sum = e->sum;
        /* Steps, then timestamps, then values; each ends where the next
         * starts, the last at the chunk's end. */
        int rc = 0;
        if (v->flags & TALLY_BLOCK_F_STEPS_LINEAR) {
            cs->first.step = linear_at(v->step0, v->dstep, k * CHUNK);
            cs->last.step = linear_at(v->step0, v->dstep, k * CHUNK + last);
        } else {
            rc = tally__codec_i64_get(lo, hi, m, 0, &cs->first.step);
            if (rc == 0)
                rc = tally__codec_i64_get(lo, hi, m, last, &cs->last.step);
            if (rc == 0)
                rc = tally__codec_i64_size(lo, hi, m, &used);
            RETURN_ERROR_IF(rc != 0 || used > (size_t)(hi - lo), TALLY_ECORRUPT);
            lo += used;
        }
        if (v->flags & TALLY_BLOCK_F_TS_LINEAR) {
            cs->first.timestamp_ms = linear_at(v->ts0, v->dts, k * CHUNK);
            cs->last.timestamp_ms = linear_at(v->ts0, v->dts, k * CHUNK + last);
        } else {
            rc = tally__codec_i64_get(lo, hi, m, 0, &cs->first.timestamp_ms);
            if (rc == 0)
                rc = tally__codec_i64_get(lo, hi, m, last, &cs->last.timestamp_ms);
            if (rc == 0)
                rc = tally__codec_i64_size(lo, hi, m, &used);
            RETURN_ERROR_IF(rc != 0 || used > (size_t)(hi - lo), TALLY_ECORRUPT);
            lo += used;
        }
        rc = tally__codec_f64_get(lo, hi, m, 0, &cs->first.value);
        if (rc == 0)
            rc = tally__codec_f64_get(lo, hi, m, last, &cs->last.value);
        RETURN_ERROR_IF(rc != 0, TALLY_ECORRUPT);
    }
    return 0;
}

/* Points [a, b) of chunk k, one by one through the codecs' random access:
 * for a point or two this skips decoding the whole chunk. */
/* Up to this many points of a chunk are read one by one with the codecs'
 * random access (O(1) each for the fixed-width kernels) rather than by
 * decoding the whole chunk: a few points beside a column edge, an eighth of
 * a chunk (16) that could hold a column's min. */
#define GET_POINTS_MAX 16u

/* Reads points [a, b) of chunk k one by one with the codecs' random access.
 * Returns 1, reading nothing, when a column it needs is stored with a
 * sequential method: the caller decodes the chunk whole instead. */
static int get_points(const tally__block_view *v, const chunk_entry *e, uint32_t k, uint32_t a,
                      uint32_t b, int64_t *steps, int64_t *ts, double *values)
{
    const uint8_t *lo = v->body + e->data_off, *hi = v->body + e->data_end;
    uint32_t m = e->n_points;
    size_t used;
    int rc;
    /* Each column: its method byte first, then its points and its size (to
     * find the next) in one parse. */
    if (v->flags & TALLY_BLOCK_F_STEPS_LINEAR) {
        if (steps)
            linear_fill(steps, v->step0, v->dstep, k * CHUNK + a, b - a);
    } else {
        if (steps && !tally__codec_random_access(lo, hi))
            return 1;
        rc = steps ? tally__codec_i64_get_range(lo, hi, m, a, b - a, steps, &used)
                   : tally__codec_i64_size(lo, hi, m, &used);
        RETURN_ERROR_IF(rc != 0 || used > (size_t)(hi - lo), TALLY_ECORRUPT);
        lo += used;
    }
    if (v->flags & TALLY_BLOCK_F_TS_LINEAR) {
        if (ts)
            linear_fill(ts, v->ts0, v->dts, k * CHUNK + a, b - a);
    } else if (ts || values) {
        if (ts && !tally__codec_random_access(lo, hi))
            return 1;
        rc = ts ? tally__codec_i64_get_range(lo, hi, m, a, b - a, ts, &used)
                : tally__codec_i64_size(lo, hi, m, &used);
        RETURN_ERROR_IF(rc != 0 || used > (size_t)(hi - lo), TALLY_ECORRUPT);
        lo += used;
    }
    if (values) {
        if (!tally__codec_random_access(lo, hi))
            return 1;
        rc = tally__codec_f64_get_range(lo, hi, m, a, b - a, values, NULL);
        RETURN_ERROR_IF(rc != 0, TALLY_ECORRUPT);
    }
    return 0;
}

static int decode_range(tally__block_view *v, uint32_t k, uint32_t a, uint32_t b, int64_t *steps,
                        int64_t *ts, double *values, int roomy);

/* Points [a, b) of chunk k from the view's decoded copy of it (10). A copy
 * holds a prefix of the chunk, up to the end of the sixteenth-of-a-chunk
 * group holding b - 1 (a sequential method decodes no further: a column
 * edge near the chunk's start costs that much, and the group after the
 * edge, which a column's min or max search reads next, comes with it); a
 * read past it decodes the chunk again, whole (a caller reading on through
 * a chunk, as sampling does, pays at most two decodes of it). A new copy
 * takes the least recently filled slot. */
static int from_decoded(tally__block_view *v, uint32_t k, uint32_t a, uint32_t b, int64_t *steps,
                        int64_t *ts, double *values)
{
    struct tally__decoded_chunk *d = v->dec[0].k == k ? &v->dec[0]
                                     : v->dec[1].k == k ? &v->dec[1]
                                                        : NULL;
    int st_lin = (v->flags & TALLY_BLOCK_F_STEPS_LINEAR) != 0;
    int ts_lin = (v->flags & TALLY_BLOCK_F_TS_LINEAR) != 0;
    if (!d || b > d->valid) { /* linear columns are not kept: filled on the way out */
        uint32_t m = entries(v)[k].n_points, want = (b + 15u) & ~15u;
        if (!d) {
            d = &v->dec[v->dec_next];
            v->dec_next ^= 1u;
            want = want < m ? want : m;
        } else {
            want = m; /* reading on through the chunk: decode it to its end once */
        }
        d->k = UINT32_MAX;
        int rc = decode_range(v, k, 0, want, st_lin ? NULL : d->st, ts_lin ? NULL : d->ts, d->v, 1);
        if (rc)
            return rc;
        d->k = k;
        d->valid = want;
    }
    size_t len = (size_t)(b - a);
    if (steps && st_lin)
        linear_fill(steps, v->step0, v->dstep, k * CHUNK + a, b - a);
    else if (steps)
        memcpy(steps, d->st + a, len * sizeof *steps);
    if (ts && ts_lin)
        linear_fill(ts, v->ts0, v->dts, k * CHUNK + a, b - a);
    else if (ts)
        memcpy(ts, d->ts + a, len * sizeof *ts);
    if (values)
        memcpy(values, d->v + a, len * sizeof *values);
    return 0;
}

/* Decodes points [a, b) of chunk k (0 <= a < b <= its n_points) into the
 * columns at index 0: a few through the codecs' random access or the
 * view's decoded copy (10), more with decode_range. */
static int decode_chunk(tally__block_view *v, uint32_t k, uint32_t a, uint32_t b, int64_t *steps,
                        int64_t *ts, double *values)
{
    const chunk_entry *e = &entries(v)[k];
    int whole = a == 0 && b == e->n_points;
    if (b - a <= GET_POINTS_MAX && !whole) {
        if (v->dec[0].k == k || v->dec[1].k == k)
            return from_decoded(v, k, a, b, steps, ts, values);
        int got = get_points(v, e, k, a, b, steps, ts, values);
        return got == 1 ? from_decoded(v, k, a, b, steps, ts, values) : got;
    }
    return decode_range(v, k, a, b, steps, ts, values, 0);
}

/* Decodes points [a, b) of chunk k (0 <= a < b <= its n_points) into the
 * columns at index 0, each column only up to b where its method allows.
 * Whole chunks, and prefixes (a = 0) when the caller's columns are roomy
 * (room for a whole chunk: a method that cannot stop early writes it all),
 * decode straight into the caller's columns; other parts go through a stack
 * buffer. */
static int decode_range(tally__block_view *v, uint32_t k, uint32_t a, uint32_t b, int64_t *steps,
                        int64_t *ts, double *values, int roomy)
{
    const chunk_entry *e = &entries(v)[k];
    const uint8_t *lo = v->body + e->data_off, *hi = v->body + e->data_end;
    size_t used;
    int rc;
    uint32_t m = e->n_points;
    int direct = a == 0 && (b == m || roomy); /* straight into the caller's columns */
    union {
        int64_t i[TALLY_BLOCK_CHUNK_POINTS];
        double d[TALLY_BLOCK_CHUNK_POINTS];
    } tmp;

    if (v->flags & TALLY_BLOCK_F_STEPS_LINEAR) {
        if (steps)
            linear_fill(steps, v->step0, v->dstep, k * CHUNK + a, b - a);
    } else {
        if (steps) {
            rc = tally__codec_i64_decode_prefix(lo, hi, m, b, direct ? steps : tmp.i, &used);
            if (rc == 0 && !direct)
                memcpy(steps, tmp.i + a, (size_t)(b - a) * sizeof *steps);
        } else if (ts || values) {
            rc = tally__codec_i64_size(lo, hi, m, &used);
        } else {
            return 0;
        }
        RETURN_ERROR_IF(rc != 0 || used > (size_t)(hi - lo), TALLY_ECORRUPT);
        lo += used;
    }

    if (v->flags & TALLY_BLOCK_F_TS_LINEAR) {
        if (ts)
            linear_fill(ts, v->ts0, v->dts, k * CHUNK + a, b - a);
    } else {
        if (ts) {
            rc = tally__codec_i64_decode_prefix(lo, hi, m, b, direct ? ts : tmp.i, &used);
            if (rc == 0 && !direct)
                memcpy(ts, tmp.i + a, (size_t)(b - a) * sizeof *ts);
        } else if (values) {
            rc = tally__codec_i64_size(lo, hi, m, &used);
        } else {
            return 0;
        }
        RETURN_ERROR_IF(rc != 0 || used > (size_t)(hi - lo), TALLY_ECORRUPT);
        lo += used;
    }

    if (values) {
        rc = tally__codec_f64_decode_prefix(lo, hi, m, b, direct ? values : tmp.d, &used);
        RETURN_ERROR_IF(rc != 0 || used > (size_t)(hi - lo), TALLY_ECORRUPT);
        if (!direct)
            memcpy(values, tmp.d + a, (size_t)(b - a) * sizeof *values);
    }
    return 0;
}

int tally__block_view_decode(tally__block_view *v, uint32_t from, uint32_t n,
                             int64_t *steps, int64_t *timestamps_ms, double *values)
{
    RETURN_ERROR_IF(v->body == NULL, TALLY_EINVAL);
    RETURN_ERROR_IF((uint64_t)from + n > v->n_points, TALLY_EINVAL);
    uint32_t at = from, stop = from + n;
    while (at < stop) {
        uint32_t k = at / CHUNK, base = k * CHUNK;
        uint32_t b = stop - base < CHUNK ? stop - base : CHUNK;
        uint32_t done = at - from;
        int rc = decode_chunk(v, k, at - base, b, steps ? steps + done : NULL,
                              timestamps_ms ? timestamps_ms + done : NULL,
                              values ? values + done : NULL);
        if (rc != 0)
            return rc;
        at = base + b;
    }
    return 0;
}

void tally__block_view_prefetch_chunk(const tally__block_view *v, uint32_t k)
{
    if (v->body == NULL || k >= v->n_chunks)
        return;
    const chunk_entry *e = &entries(v)[k];
    const uint8_t *q = v->body + e->data_off, *end = v->body + e->data_end;
    /* Four lines hold a chunk's column headers and, for the packed kernels
     * of typical data, most of its first two columns. */
    for (int l = 0; l < 4 && q < end; l++, q += 64)
        __builtin_prefetch(q, 0, 3);
}

void tally__block_view_prefetch_point(const tally__block_view *v, uint32_t p)
{
    if (v->body == NULL || p >= v->n_points)
        return;
    const chunk_entry *e = &entries(v)[p / CHUNK];
    const uint8_t *q = v->body + e->data_off, *end = v->body + e->data_end;
    size_t len = (size_t)(end - q);
    __builtin_prefetch(q, 0, 3);
    if (len > 64)
        __builtin_prefetch(q + 64, 0, 3);
    const uint8_t *at = q + len * (p % CHUNK) / e->n_points;
    if (at > q + 64 && at < end)
        __builtin_prefetch(at, 0, 3);
}
